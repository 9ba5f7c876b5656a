//! The oauth2-proxy gateway end to end against the lab's oauth2-proxy: found from the
//! site's answer with the URL alone, the whole login, `--gateway` as an expectation,
//! `--print-config`, every output format and the HAR — the same as for Access.

// They run the binary against the embedded lab.
#![cfg(feature = "lab")]

mod common;

use common::{Lab, demo, run};
use serde_json::Value;

/// No value of oauth2-proxy's cookies and no Pocket ID code in `text`: every
/// `_oauth2_proxy…=` is followed by a fingerprint, or by nothing (a name alone, a
/// cleared cookie).
fn assert_no_secret_values(text: &str, what: &str) {
    assert!(!text.contains("pocket_id_ac_"), "a code is in {what}");
    for name in ["_oauth2_proxy=", "_oauth2_proxy_csrf="] {
        for (at, _) in text.match_indices(name) {
            let value = &text[at + name.len()..];
            assert!(
                value.starts_with("[redacted:")
                    || value.starts_with([';', '"', ' ', '\n'])
                    || value.is_empty(),
                "{name} shown in {what}: {}",
                value.chars().take(40).collect::<String>()
            );
        }
    }
}

fn ids(run: &common::Run) -> Vec<String> {
    run.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_url_alone_finds_oauth2_proxy_and_the_passkey_logs_in() {
    let lab = Lab::start_gateway("oauth2-proxy", &[]);
    // The URL and the routes only: the gateway, Pocket ID and the client are found.
    let anonymous = lab.check(&[]);
    assert_eq!(anonymous.code, 0, "{}", anonymous.dump());
    let json = anonymous.json();
    let found = &json["discovered"];
    assert_eq!(found["gateway"]["value"], "oauth2-proxy", "{found}");
    assert_eq!(found["gateway"]["from"], "the site's answer");
    assert_eq!(found["idp"]["value"], "https://id.example.com");
    assert_eq!(found["idp"]["from"], "oauth2-proxy's redirect to it");
    assert_eq!(
        found["client_id"]["value"],
        "6b1d3f0e-8c4a-4e2b-9f71-5a0c2d8e4b39"
    );
    assert_eq!(
        found["client_id"]["from"],
        "oauth2-proxy's redirect to Pocket ID"
    );
    let checks = ids(&anonymous);
    assert!(
        !checks.iter().any(|id| id.starts_with("access.")),
        "{checks:?}"
    );
    assert!(!checks.iter().any(|id| id == "tls.team"), "{checks:?}");
    for id in ["o2p.start", "idp.authorize", "o2p.endpoints"] {
        assert!(checks.iter().any(|c| c == id), "{id} missing: {checks:?}");
    }
    anonymous.assert_says(
        &anonymous.check("service.redirect"),
        "summary",
        "scripts asking for JSON get its 401 {}",
    );
    assert_eq!(
        anonymous.check("service.redirect")["details"]["json_401"],
        true
    );

    // The whole login with a passkey enrolled at the lab's Pocket ID.
    let passkey = lab.path("probe.passkey");
    let enrolled = lab.enroll(&passkey);
    assert_eq!(enrolled.code, 0, "{}", enrolled.dump());
    let login = lab.check(&["--passkey", &passkey]);
    assert_eq!(login.code, 0, "{}", login.dump());
    for id in [
        "passkey.login",
        "idp.code",
        "o2p.callback",
        "service.reach",
        "o2p.session",
    ] {
        assert_eq!(login.check(id)["status"], "pass", "{id}\n{}", login.dump());
    }
    let callback = login.check("o2p.callback");
    assert_eq!(callback["details"]["session_cookie"], "_oauth2_proxy");
    assert_eq!(callback["details"]["cookie_max_age_s"], 604_800);
    login.assert_says(&callback, "summary", "(Secure, HttpOnly, 7 days)");
    login.assert_says(
        &login.check("o2p.endpoints"),
        "summary",
        "userinfo names probe@example.com",
    );
    assert_eq!(
        login.check("idp.token")["details"]["proved_by"],
        "o2p.callback"
    );

    // The human header names the gateway.
    let mut args = vec!["check", "--color", "never"];
    args.extend(lab.short.iter().map(String::as_str));
    let human = run(&args);
    assert_eq!(human.code, 0, "{}", human.dump());
    assert!(
        human
            .stdout
            .lines()
            .next()
            .is_some_and(|l| l.contains(" → oauth2-proxy → https://id.example.com")),
        "{}",
        human.dump()
    );

    // --print-config pins the gateway; --gateway is an expectation.
    let mut args = vec!["check", "--print-config"];
    args.extend(lab.short.iter().map(String::as_str));
    let pinned = run(&args);
    assert_eq!(pinned.code, 0, "{}", pinned.dump());
    assert!(
        pinned.stdout.contains("gateway = \"oauth2-proxy\""),
        "{}",
        pinned.dump()
    );
    let wrong = lab.check(&["--gateway", "access"]);
    assert_eq!(wrong.code, 2, "{}", wrong.dump());
    let redirect = wrong.check("service.redirect");
    assert_eq!(redirect["status"], "fail");
    wrong.assert_says(
        &redirect,
        "summary",
        "the site is behind oauth2-proxy, expected Cloudflare Access",
    );
}

#[test]
fn a_bad_gateway_name_is_refused_naming_the_known_ones() {
    let r = run(&[
        "check",
        "https://service.example.com",
        "--gateway",
        "authelia",
    ]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("--gateway")
            && r.stderr
                .contains("'authelia' is not a gateway ssoprobe knows (access, oauth2-proxy)"),
        "{}",
        r.dump()
    );
}

#[test]
fn every_format_and_the_har_speak_of_oauth2_proxy_without_its_secrets() {
    let dir = std::env::temp_dir().join(format!("ssoprobe-o2p-{}", common::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let har = dir.join("run.har").display().to_string();
    let json = demo(&[], &["--gateway", "oauth2-proxy", "--har", &har]);
    assert_eq!(json.code, 0, "{}", json.dump());
    let schema: Value = serde_json::from_str(&run(&["schema"]).stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&json.json()), "{}", json.dump());

    // The HAR: every cookie value (the session and CSRF cookies included) and the code
    // redacted.
    let text = std::fs::read_to_string(&har).unwrap();
    let archive: Value = serde_json::from_str(&text).unwrap();
    let redacted = |v: &Value| v.as_str().is_some_and(|s| s.starts_with("[redacted:"));
    let mut session_cookies = 0;
    for e in archive["log"]["entries"].as_array().unwrap() {
        for side in ["request", "response"] {
            for c in e[side]["cookies"].as_array().unwrap() {
                if c["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("_oauth2_proxy"))
                    && c["value"].as_str().is_some_and(|v| !v.is_empty())
                {
                    session_cookies += 1;
                }
                if c["value"].as_str().is_some_and(|v| !v.is_empty()) {
                    assert!(redacted(&c["value"]), "cookie {} shown: {c}", c["name"]);
                }
            }
        }
        for q in e["request"]["queryString"].as_array().unwrap() {
            if ["code", "state"].contains(&q["name"].as_str().unwrap()) {
                assert!(redacted(&q["value"]), "query {} shown: {q}", q["name"]);
            }
        }
    }
    assert!(session_cookies > 0, "no oauth2-proxy cookie recorded");
    // Nowhere — headers, URLs, bodies, the replayed Cookie header of o2p.session — a
    // value of oauth2-proxy's cookies or Pocket ID's code in the clear.
    assert_no_secret_values(&text, "the HAR");
    // The trace too (stderr of a --trace run).
    let traced = demo(&[], &["--gateway", "oauth2-proxy"]);
    assert_no_secret_values(&traced.stderr, "the trace");
    let _ = std::fs::remove_dir_all(&dir);

    // The other formats name the oauth2-proxy checks.
    let junit = run(&["demo", "--gateway", "oauth2-proxy", "--format", "junit"]);
    assert_eq!(junit.code, 0, "{}", junit.dump());
    assert!(
        junit.stdout.contains("name=\"o2p.callback\""),
        "{}",
        junit.dump()
    );
    let prometheus = run(&[
        "demo",
        "--gateway",
        "oauth2-proxy",
        "--format",
        "prometheus",
    ]);
    assert_eq!(prometheus.code, 0, "{}", prometheus.dump());
    assert!(
        prometheus.stdout.contains("check=\"o2p.session\""),
        "{}",
        prometheus.dump()
    );
    let nagios = run(&["demo", "--gateway", "oauth2-proxy", "--format", "nagios"]);
    assert_eq!(nagios.code, 0, "{}", nagios.dump());
    assert!(
        nagios.stdout.starts_with("SSOPROBE OK"),
        "{}",
        nagios.dump()
    );
}

#[test]
fn doctor_behind_oauth2_proxy_reads_pocket_id_alone() {
    let run = demo(
        &["o2p-callback-not-registered"],
        &["--gateway", "oauth2-proxy", "--doctor"],
    );
    assert_eq!(run.code, 2, "{}", run.dump());
    let ids = ids(&run);
    assert!(
        !ids.iter()
            .any(|id| id == "config.token" || id == "config.app"),
        "{ids:?}"
    );
    let client = run.check("config.client");
    assert_eq!(client["status"], "fail", "{}", run.dump());
    run.assert_says(
        &client,
        "summary",
        "does not list oauth2-proxy's callback https://service.example.com/oauth2/callback",
    );
    let unverified = demo(
        &["o2p-email-unverified"],
        &["--gateway", "oauth2-proxy", "--doctor"],
    );
    let user = unverified.check("config.user");
    assert_eq!(user["status"], "fail", "{}", unverified.dump());
    unverified.assert_says(
        &user,
        "summary",
        "is not verified: oauth2-proxy refuses the login",
    );
}

#[test]
fn doctor_finds_oauth2_proxys_client_by_the_id_its_request_names() {
    // No --client-id: the client id comes from /oauth2/start's request, so the client
    // whose callback list lacks oauth2-proxy's is still found and judged.
    let lab = Lab::start_gateway("oauth2-proxy", &["o2p-callback-not-registered"]);
    let key = lab.path("api-key.txt");
    let run = lab.check(&[
        "--idp",
        "https://id.example.com",
        "--api-key-file",
        &key,
        "--user",
        "probe@example.com",
    ]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let client = run.check("config.client");
    assert_eq!(client["status"], "fail", "{}", run.dump());
    run.assert_says(
        &client,
        "summary",
        "does not list oauth2-proxy's callback https://service.example.com/oauth2/callback",
    );
}
