//! `ssoprobe check URL`: one argument, the team, AUD, Pocket ID and client id found from
//! the chain; given values are expectations; `--print-config` pins what was found.

mod common;

use common::{Lab, run};
use serde_json::Value;

/// The lab's routing and CA flags (what the one-argument form needs besides the URL).
fn routes(lab: &Lab) -> Vec<&str> {
    lab.routes.iter().map(String::as_str).collect()
}

fn check(lab: &Lab, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["check", "https://service.example.com"];
    args.extend(routes(lab));
    args.extend_from_slice(extra);
    args.extend(["--format", "json"]);
    let r = run(&args);
    let json = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    (r.code, json, r.dump())
}

fn statuses(json: &Value) -> Vec<(String, String)> {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status(json: &Value, id: &str) -> (String, String) {
    let c = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id}: {json}"));
    (
        c["status"].as_str().unwrap().to_string(),
        format!(
            "{} {}",
            c["summary"].as_str().unwrap_or(""),
            c["hint"].as_str().unwrap_or("")
        ),
    )
}

#[test]
fn the_url_alone_finds_the_rest_and_checks_what_the_full_form_checks() {
    let lab = Lab::start(&[]);
    let (code, short, dump) = check(&lab, &[]);
    assert_eq!(code, 0, "{dump}");
    // The full form the lab prints (service, idp, team, aud given).
    let full = lab.check(&[]);
    assert_eq!(full.code, 0, "{}", full.dump());
    assert_eq!(statuses(&short), statuses(&full.json()));
    let d = &short["discovered"];
    assert_eq!(d["team"]["value"], "xyz.cloudflareaccess.com");
    assert_eq!(d["team"]["from"], "the Access redirect");
    assert_eq!(d["aud"]["from"], "the Access redirect");
    assert_eq!(d["idp"]["value"], "https://id.example.com");
    assert_eq!(d["idp"]["from"], "Access's redirect to it");
    assert_eq!(
        d["client_id"]["value"],
        "2f0408cf-25d7-4daa-9fb9-7b072516a681"
    );
    assert_eq!(short["target"]["idp"], "https://id.example.com");
    assert_eq!(d["gateway"]["value"], "access");
    assert_eq!(d["gateway"]["from"], "the site's answer");
    // Given values are not "discovered": the full form gives all but the gateway and
    // the client id.
    assert_eq!(
        full.json()["discovered"].as_object().map(|o| o.len()),
        Some(2),
        "{}",
        full.json()["discovered"]
    );
    // The human header says what was found, and from where.
    let mut args = vec!["check", "https://service.example.com", "--color", "never"];
    args.extend(routes(&lab));
    let human = run(&args);
    assert!(
        human
            .stdout
            .contains("found: team xyz.cloudflareaccess.com, from the Access redirect"),
        "{}",
        human.dump()
    );
}

#[test]
fn with_a_passkey_pocket_id_is_the_passkey_files_and_the_login_runs() {
    let lab = Lab::start(&[]);
    let passkey = lab.path("probe.passkey");
    assert_eq!(lab.enroll(&passkey).code, 0);
    let (code, json, dump) = check(&lab, &["--passkey", &passkey]);
    assert_eq!(code, 0, "{dump}");
    assert_eq!(json["discovered"]["idp"]["from"], "the passkey file");
    assert_eq!(status(&json, "service.reach").0, "pass");
    assert_eq!(status(&json, "access.token").0, "pass");
}

#[test]
fn given_values_are_expectations() {
    let lab = Lab::start(&[]);
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["--team", "abc"],
            "service.redirect",
            "expected abc.cloudflareaccess.com",
        ),
        (&["--aud", &"0".repeat(64)], "service.redirect", "AUD"),
        (
            &["--client-id", "6d1c0f3e-0000-4000-8000-000000000000"],
            "access.login",
            "6d1c0f3e-0000-4000-8000-000000000000",
        ),
        (
            &["--idp", "https://login.example.org"],
            "access.login",
            "login.example.org",
        ),
    ];
    for (extra, id, wanted) in cases {
        let (code, json, dump) = check(&lab, extra);
        assert_eq!(code, 2, "{extra:?}: {dump}");
        let (st, text) = status(&json, id);
        assert_eq!(st, "fail", "{extra:?}: {id}: {text}");
        assert!(text.contains(wanted), "{extra:?}: {id}: {text}");
    }
}

#[test]
fn without_the_idp_its_checks_skip_saying_how_to_run_them() {
    let lab = Lab::start(&["site-public"]);
    let (code, json, dump) = check(&lab, &[]);
    assert_eq!(code, 2, "{dump}");
    assert_eq!(status(&json, "service.redirect").0, "fail");
    for id in ["idp.discovery", "idp.jwks", "idp.token", "idp.health"] {
        let (st, text) = status(&json, id);
        assert_eq!(st, "skip", "{id}");
        assert!(
            text.contains("IdP unknown: pass --idp to check it anyway"),
            "{id}: {text}"
        );
    }
    assert!(
        json["discovered"].get("idp").is_none(),
        "{}",
        json["discovered"]
    );
    // With --idp they run.
    let (_, json, dump) = check(&lab, &["--idp", "https://id.example.com"]);
    assert_eq!(status(&json, "idp.discovery").0, "pass", "{dump}");
    assert_eq!(status(&json, "idp.health").0, "pass", "{dump}");
}

#[test]
fn print_config_round_trips_through_check_config() {
    let lab = Lab::start(&[]);
    let mut args = vec!["check", "https://service.example.com", "--print-config"];
    args.extend(routes(&lab));
    let printed = run(&args);
    assert_eq!(printed.code, 0, "{}", printed.dump());
    for key in [
        "service = \"https://service.example.com/\"",
        "team = \"xyz.cloudflareaccess.com\"",
        "idp = \"https://id.example.com\"",
        "client_id = \"2f0408cf-25d7-4daa-9fb9-7b072516a681\"",
        "aud = \"",
    ] {
        assert!(printed.stdout.contains(key), "{key} in {}", printed.stdout);
    }
    // The run's routing and trust settings come along: the file alone checks the same
    // origins (here the lab's, with its CA).
    assert!(
        printed.stdout.contains("resolve = [") || printed.stdout.contains("connect_to = ["),
        "{}",
        printed.stdout
    );
    assert!(
        printed.stdout.contains("ca_file = \"/"),
        "{}",
        printed.stdout
    );
    let file = lab.path("pinned.toml");
    std::fs::write(&file, &printed.stdout).unwrap();
    let pinned = run(&["check", "--config", &file, "--format", "json"]);
    assert_eq!(pinned.code, 0, "{}", pinned.dump());
    // Everything is given now: nothing discovered, every expectation met.
    assert_eq!(pinned.json()["discovered"], serde_json::json!({}));
    // Against another lab (another AUD is impossible here; another team is a fault):
    // the pinned team is an expectation.
    let other = Lab::start(&["wrong-team"]);
    let mut args = vec!["check", "--config", &file, "--format", "json"];
    args.extend(routes(&other));
    let moved = run(&args);
    assert_eq!(moved.code, 2, "{}", moved.dump());
    assert_eq!(status(&moved.json(), "service.redirect").0, "fail");
}

#[test]
fn the_site_is_given_once() {
    let r = run(&[
        "check",
        "https://a.example.com",
        "--service",
        "https://b.example.com",
    ]);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("the URL argument and --service"),
        "{}",
        r.dump()
    );
    let r = common::bin()
        .args(["check", "https://a.example.com"])
        .env("SSOPROBE_SERVICE", "https://b.example.com")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&r.stderr).contains("SSOPROBE_SERVICE"));
    let r = run(&[
        "doctor",
        "https://service.example.com",
        "--api-key-file",
        "/nonexistent",
    ]);
    assert_eq!(r.code, 3);
}

#[test]
fn the_lab_prints_the_short_form_first_and_it_passes() {
    let lab = Lab::start(&[]);
    assert_eq!(
        lab.short.first().map(String::as_str),
        Some("https://service.example.com")
    );
    for given in ["--idp", "--team", "--aud", "--service"] {
        assert!(
            !lab.short.iter().any(|a| a == given),
            "{given} in {:?}",
            lab.short
        );
    }
    let mut args = vec!["check"];
    args.extend(lab.short.iter().map(String::as_str));
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.dump());
    // The full form (expectations pinned) is printed too.
    assert!(lab.check.iter().any(|a| a == "--team"), "{:?}", lab.check);
}
