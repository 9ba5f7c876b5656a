//! `--har FILE`: the run's requests as a HAR 1.2 archive, valid, complete and safe to
//! attach to a public issue.

mod common;

use common::{Lab, demo, run};
use serde_json::Value;

fn temp(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("ssoprobe-har-{}-{name}", common::uuid_like()))
        .display()
        .to_string()
}

/// Validates `har` against the HAR 1.2 schema (fixtures/, written from the
/// specification) and the rules a schema cannot say: every entry's page exists, `time`
/// is the sum of its timings.
fn assert_valid(har: &Value) {
    let schema: Value =
        serde_json::from_str(include_str!("../fixtures/har-1.2.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(har)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .take(10)
        .collect();
    assert!(errors.is_empty(), "not HAR 1.2: {errors:#?}");
    let pages: Vec<&str> = har["log"]["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    for e in har["log"]["entries"].as_array().unwrap() {
        let pageref = e["pageref"].as_str().unwrap();
        assert!(pages.contains(&pageref), "entry of unknown page {pageref}");
        let t = &e["timings"];
        let sum: f64 = ["send", "wait", "receive"]
            .iter()
            .map(|k| t[k].as_f64().unwrap())
            .sum();
        assert!((sum - e["time"].as_f64().unwrap()).abs() < 0.01, "{e}");
    }
}

fn read(path: &str) -> (Value, String) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let _ = std::fs::remove_file(path);
    (serde_json::from_str(&text).expect("the HAR is JSON"), text)
}

#[test]
fn the_healthy_demo_records_every_request_as_valid_har() {
    let path = temp("healthy.har");
    let r = demo(&[], &["--har", &path]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let (har, _) = read(&path);
    assert_valid(&har);
    let log = &har["log"];
    assert_eq!(log["creator"]["name"], "ssoprobe");
    let entries = log["entries"].as_array().unwrap();
    assert!(entries.len() >= 10, "{} entries", entries.len());
    // The chain from the site to the site, in order, with the redirects named.
    let first = &entries[0];
    assert_eq!(first["request"]["url"], "https://service.example.com/");
    assert_eq!(first["response"]["status"], 302);
    assert!(
        first["response"]["redirectURL"]
            .as_str()
            .unwrap()
            .starts_with("https://xyz.cloudflareaccess.com/cdn-cgi/access/login/")
    );
    assert!(
        first["serverIPAddress"]
            .as_str()
            .unwrap()
            .starts_with("127.")
    );
    assert!(first["connection"].as_str().is_some());
    assert!(
        entries.iter().any(|e| e["request"]["method"] == "POST"
            && e["request"]["postData"]["mimeType"].is_string())
    );
    // One page per check, with its finding.
    let pages = log["pages"].as_array().unwrap();
    let redirect = pages
        .iter()
        .find(|p| p["id"] == "service.redirect")
        .unwrap();
    assert_eq!(redirect["_ssoprobe"]["findings"][0]["status"], "pass");
    for e in entries {
        assert!(e["_ssoprobe"]["check"].is_string());
    }
}

/// The archive holds every request of the run: only its owner may read it, from the
/// moment it exists, also when it replaces a file others could read.
#[cfg(unix)]
#[test]
fn the_archive_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let path = temp("private.har");
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = demo(&[], &["--har", &path]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    let _ = std::fs::remove_file(&path);
    assert_eq!(mode, 0o600, "the HAR is written {mode:o}");
}

#[test]
fn failing_runs_are_recorded_too() {
    for (fault, check, extra) in [
        ("callback-not-registered", "idp.authorize", &[][..]),
        ("tunnel-down", "service.reach", &[][..]),
        (
            "idp-slow",
            "idp.discovery",
            &["--timeout", "1s", "--deadline", "20s"][..],
        ),
    ] {
        let path = temp(&format!("{fault}.har"));
        let mut args = vec!["--har", path.as_str()];
        args.extend_from_slice(extra);
        let r = demo(&[fault], &args);
        assert_eq!(r.code, 2, "{fault}: {}", r.dump());
        let (har, _) = read(&path);
        assert_valid(&har);
        let page = har["log"]["pages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == check)
            .unwrap_or_else(|| panic!("{fault}: no page {check}"));
        let finding = &page["_ssoprobe"]["findings"][0];
        assert_eq!(finding["status"], "fail", "{fault}: {finding}");
        assert!(finding["hint"].is_string(), "{finding}");
        if fault == "idp-slow" {
            // A request without an answer: status 0 and the reason.
            let timed_out = har["log"]["entries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["response"]["status"] == 0)
                .expect("an entry without an answer");
            assert!(
                timed_out["response"]["_error"]
                    .as_str()
                    .unwrap()
                    .contains("timed out"),
                "{timed_out}"
            );
        }
    }
}

/// Every value the archive must never hold, and the shapes no secret may keep.
#[test]
fn a_secret_canary_over_every_field_finds_nothing() {
    let lab = Lab::start(&[]);
    let passkey = lab.path("probe.passkey");
    let enrolled = lab.enroll(&passkey);
    assert_eq!(enrolled.code, 0, "{}", enrolled.dump());
    let har_path = temp("canary.har");
    // A full login, the own code flow with the client secret, and the doctor's reads.
    let mut args: Vec<String> = vec!["check".into()];
    args.extend(lab.doctor.iter().cloned());
    args.extend([
        "--passkey".into(),
        passkey.clone(),
        "--client-id".into(),
        "2f0408cf-25d7-4daa-9fb9-7b072516a681".into(),
        "--client-secret-file".into(),
        lab.path("client-secret.txt"),
        "--har".into(),
        har_path.clone(),
    ]);
    let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "{}", r.dump());
    let (har, text) = read(&har_path);
    assert_valid(&har);
    let file = |name: &str| {
        std::fs::read_to_string(lab.path(name))
            .unwrap()
            .trim()
            .to_string()
    };
    let key_file: Value =
        serde_json::from_str(&std::fs::read_to_string(&passkey).unwrap()).unwrap();
    let canaries = [
        file("api-key.txt"),
        file("client-secret.txt"),
        file("service-token-secret.txt"),
        file("cf-api-token.txt"),
        key_file["private_key"].as_str().unwrap().to_string(),
    ];
    for secret in &canaries {
        assert!(secret.len() >= 16);
        assert!(!text.contains(secret.as_str()), "a secret is in the HAR");
    }
    // Shapes: no JWT, every cookie value and secret parameter fingerprinted.
    assert!(!text.contains("eyJ"), "a JWT-shaped value is in the HAR");
    let entries = har["log"]["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["_ssoprobe"]["check"] == "config"),
        "doctor's reads are recorded"
    );
    let redacted = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.starts_with("[redacted:") && s.len() == 17)
    };
    for e in entries {
        for side in ["request", "response"] {
            for c in e[side]["cookies"].as_array().unwrap() {
                assert!(redacted(&c["value"]), "cookie {} shown: {c}", c["name"]);
            }
            for h in e[side]["headers"].as_array().unwrap() {
                let name = h["name"].as_str().unwrap().to_ascii_lowercase();
                if ["authorization", "x-api-key", "cookie"].contains(&name.as_str())
                    && name != "cookie"
                {
                    assert!(redacted(&h["value"]), "header {name} shown: {h}");
                }
            }
        }
        for q in e["request"]["queryString"].as_array().unwrap() {
            let name = q["name"].as_str().unwrap();
            if [
                "code",
                "state",
                "nonce",
                "meta",
                "interaction",
                "code_challenge_x",
            ]
            .contains(&name)
            {
                assert!(redacted(&q["value"]), "query {name} shown: {q}");
            }
        }
        if let Some(params) = e["request"]["postData"]["params"].as_array() {
            for p in params {
                let name = p["name"].as_str().unwrap();
                if ["code", "client_secret", "code_verifier", "state"].contains(&name) {
                    assert!(redacted(&p["value"]), "form field {name} shown: {p}");
                }
            }
        }
    }
    // The fingerprint of one value is the same everywhere (state: authorize → callback).
    assert!(text.matches("[redacted:").count() > 20);
}

#[test]
fn doctor_writes_its_reads_and_a_bad_path_is_refused_before_the_run() {
    let lab = Lab::start(&["no-pkce"]);
    let path = temp("doctor.har");
    let r = lab.doctor(&["--har", &path]);
    assert_eq!(r.code, 2, "{}", r.dump());
    let (har, text) = read(&path);
    assert_valid(&har);
    let pages = har["log"]["pages"].as_array().unwrap();
    let config = pages
        .iter()
        .find(|p| p["id"] == "config")
        .expect("the config page");
    let findings = config["_ssoprobe"]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 14);
    assert!(
        findings
            .iter()
            .any(|f| f["check"] == "config.pkce" && f["status"] == "fail")
    );
    let token = std::fs::read_to_string(lab.path("cf-api-token.txt")).unwrap();
    assert!(!text.contains(token.trim()));
    // A directory, or a place that cannot be written: exit 3, nothing run.
    let r = lab.doctor(&["--har", "/"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("--har"), "{}", r.dump());
    let r = lab.doctor(&["--har", "/nonexistent-dir/x.har"]);
    assert_eq!(r.code, 3, "{}", r.dump());
}

/// While Access's code exchange fails, a run adds at most one line to Pocket ID's error
/// log: one token request without a secret (shaped like Access's), which also proves
/// the token endpoint for idp.token; with the client secret, none that Pocket ID logs.
#[test]
fn a_failing_code_exchange_costs_pocket_ids_log_one_line_at_most() {
    let path = temp("quiet-log.har");
    let r = demo(&["access-bad-secret"], &["--har", &path]);
    assert_eq!(r.code, 2, "{}", r.dump());
    assert_eq!(r.check("access.callback")["status"], "fail", "{}", r.dump());
    let token = r.check("idp.token");
    assert_eq!(token["status"], "pass", "{token}");
    assert_eq!(token["details"]["proved_by"], "access.callback", "{token}");
    let har: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    let token_posts: Vec<&Value> = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["request"]["method"] == "POST"
                && e["request"]["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with("/api/oidc/token"))
        })
        .collect();
    assert_eq!(token_posts.len(), 1, "{token_posts:#?}");
}

#[test]
fn the_config_files_har_key_writes_the_archive_beside_it() {
    // What cron users want: every run of one config file leaves its archive.
    let lab = Lab::start(&[]);
    let file = lab.path("sites.toml");
    std::fs::write(
        &file,
        "har = \"last-run.har\"\n\n[targets.site]\nservice = \"https://service.example.com\"\n",
    )
    .unwrap();
    let mut args = vec!["check", "--config", &file, "--format", "json"];
    args.extend(lab.routes.iter().map(String::as_str));
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.dump());
    let (har, _) = read(&lab.path("last-run.har"));
    assert_valid(&har);
    assert!(!har["log"]["entries"].as_array().unwrap().is_empty());
    // One archive holds every target's run: a target of its own is refused.
    std::fs::write(
        &file,
        "[targets.site]\nservice = \"https://service.example.com\"\nhar = \"site.har\"\n",
    )
    .unwrap();
    let r = run(&["config", "check", "--config", &file]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("har belongs at the top of the file"),
        "{}",
        r.dump()
    );
}
