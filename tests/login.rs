//! End-to-end tests of the passkey login: enrolment, the full login through the lab,
//! each login fault, service tokens, the credential file, and secrets in output.

// They run the binary against the embedded lab.
#![cfg(feature = "lab")]

mod common;
use common::{Lab, assert_fault, bin, demo, run};
use std::path::Path;

#[test]
fn demo_logs_in_and_reaches_the_site() {
    let run = demo(&[], &[]);
    assert_eq!(run.code, 0, "{}", run.dump());
    for id in [
        "passkey.login",
        "idp.code",
        "access.callback",
        "service.reach",
        "access.token",
    ] {
        assert_eq!(run.check(id)["status"], "pass", "{id}\n{}", run.dump());
    }
    assert!(
        run.check("passkey.login")["summary"]
            .as_str()
            .unwrap()
            .contains("probe@example.com")
    );
    assert_eq!(
        run.check("access.token")["details"]["email"],
        "probe@example.com"
    );
}

#[test]
fn access_bad_secret() {
    let run = assert_fault(
        "access-bad-secret",
        2,
        "access.callback",
        "fail",
        "Client secret",
    );
    assert!(
        run.check("access.callback")["summary"]
            .as_str()
            .unwrap()
            .contains("Failed to exchange code for token")
    );
}

#[test]
fn access_jwks_unreachable() {
    let run = assert_fault(
        "access-jwks-unreachable",
        2,
        "access.callback",
        "fail",
        "Certificate URL",
    );
    assert!(
        run.check("access.callback")["summary"]
            .as_str()
            .unwrap()
            .contains("fresh keys")
    );
}

#[test]
fn tunnel_down() {
    let run = assert_fault("tunnel-down", 2, "service.reach", "fail", "cloudflared");
    assert!(
        run.check("service.reach")["summary"]
            .as_str()
            .unwrap()
            .contains("1033"),
        "{}",
        run.dump()
    );
}

#[test]
fn origin_down() {
    let run = assert_fault(
        "origin-down",
        2,
        "service.reach",
        "fail",
        "service behind it is down",
    );
    assert!(
        run.check("service.reach")["summary"]
            .as_str()
            .unwrap()
            .contains("502"),
        "{}",
        run.dump()
    );
}

fn counter(path: &Path) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["counter"].as_u64().unwrap()
}

#[test]
fn enroll_check_show_remove() {
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    let enrolled = lab.enroll(&pk);
    assert_eq!(enrolled.code, 0, "{}", enrolled.dump());
    assert!(enrolled.stdout.contains("probe@example.com") && enrolled.stdout.contains("mode 0600"));

    // Enrolling again into the same file needs --force.
    let again = lab.enroll(&pk);
    assert_eq!(again.code, 3, "{}", again.dump());
    assert!(again.stderr.contains("--force"), "{}", again.dump());

    let first = lab.check(&["--passkey", &pk, "--expect-body", "Welcome"]);
    assert_eq!(first.code, 0, "{}", first.dump());
    assert_eq!(counter(Path::new(&pk)), 1);
    let second = lab.check(&["--passkey", &pk]);
    assert_eq!(second.code, 0, "{}", second.dump());
    assert_eq!(
        counter(Path::new(&pk)),
        2,
        "the counter is saved after every assertion"
    );

    let shown = run(&["passkey", "show", &pk]);
    assert_eq!(shown.code, 0, "{}", shown.dump());
    assert!(
        shown.stdout.contains("probe@example.com") && shown.stdout.contains("counter     2"),
        "{}",
        shown.stdout
    );
    let key = std::fs::read_to_string(&pk).unwrap();
    let private = serde_json::from_str::<serde_json::Value>(&key).unwrap()["private_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!shown.stdout.contains(&private));

    // Remove deletes the passkey at Pocket ID, then the file: a copy no longer logs in.
    let copy = lab.path("copy.passkey");
    std::fs::copy(&pk, &copy).unwrap();
    let mut args = vec!["passkey", "remove", pk.as_str(), "--api-key-file"];
    let key_path = lab.path("api-key.txt");
    args.push(&key_path);
    args.extend(lab.routes.iter().map(String::as_str));
    let removed = run(&args);
    assert_eq!(removed.code, 0, "{}", removed.dump());
    assert!(!Path::new(&pk).exists());
    let after = lab.check(&["--passkey", &copy]);
    assert_eq!(after.code, 2, "{}", after.dump());
    let (id, _, hint) = after.first_problem();
    assert_eq!(id, "passkey.login", "{}", after.dump());
    assert!(hint.contains("re-enrol"), "{}", after.dump());
}

#[test]
fn wrong_expectations_fail_service_reach() {
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    assert_eq!(lab.enroll(&pk).code, 0);
    let body = lab.check(&["--passkey", &pk, "--expect-body", "no such text"]);
    assert_eq!(body.code, 2, "{}", body.dump());
    assert_eq!(body.first_problem().0, "service.reach");
    let status = lab.check(&["--passkey", &pk, "--expect-status", "204"]);
    assert_eq!(status.code, 2, "{}", status.dump());
    assert_eq!(status.first_problem().0, "service.reach");
}

#[test]
fn idp_exchange_with_the_client_secret() {
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    assert_eq!(lab.enroll(&pk).code, 0);
    let secret = lab.path("client-secret.txt");
    let run = lab.check(&[
        "--passkey",
        &pk,
        "--client-id",
        "2f0408cf-25d7-4daa-9fb9-7b072516a681",
        "--client-secret-file",
        &secret,
    ]);
    assert_eq!(run.code, 0, "{}", run.dump());
    assert_eq!(
        run.check("idp.exchange")["status"],
        "pass",
        "{}",
        run.dump()
    );

    std::fs::write(
        lab.dir.join("wrong-secret.txt"),
        "not-the-secret-0123456789",
    )
    .unwrap();
    let wrong = lab.path("wrong-secret.txt");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let run = lab.check(&[
        "--passkey",
        &pk,
        "--client-id",
        "2f0408cf-25d7-4daa-9fb9-7b072516a681",
        "--client-secret-file",
        &wrong,
    ]);
    assert_eq!(run.code, 2, "{}", run.dump());
    // With the secret, idp.token proves it first (quietly for Pocket ID's log), and the
    // own code flow then fails on it too.
    let (id, _, hint) = run.first_problem();
    assert_eq!(id, "idp.token", "{}", run.dump());
    assert!(hint.contains("--client-secret-file"), "{}", run.dump());
    assert_eq!(
        run.check("idp.exchange")["status"],
        "fail",
        "{}",
        run.dump()
    );
}

#[test]
fn service_token_reaches_the_site_or_names_the_policy() {
    let lab = Lab::start(&[]);
    let id = lab_token_id(&lab);
    let secret = lab.path("service-token-secret.txt");
    let ok = lab.check(&[
        "--service-token-id",
        &id,
        "--service-token-secret-file",
        &secret,
    ]);
    assert_eq!(ok.code, 0, "{}", ok.dump());
    assert_eq!(
        ok.check("service.reach")["details"]["mode"],
        "service token"
    );
    // Token headers never go to another host.
    for line in ok.stderr.lines().filter(|l| l.contains("→")) {
        assert!(
            !line.to_ascii_lowercase().contains("cf-access-client"),
            "{line}"
        );
    }
    drop(lab);

    let lab = Lab::start(&["no-service-auth"]);
    let id = lab_token_id(&lab);
    let secret = lab.path("service-token-secret.txt");
    let run = lab.check(&[
        "--service-token-id",
        &id,
        "--service-token-secret-file",
        &secret,
    ]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let (check, _, hint) = run.first_problem();
    assert_eq!(check, "service.reach", "{}", run.dump());
    assert!(hint.contains("Service Auth"), "{}", run.dump());
}

fn lab_token_id(lab: &Lab) -> String {
    std::fs::read_to_string(lab.dir.join("service-token-id.txt"))
        .expect("the lab writes its service token id")
        .trim()
        .to_string()
}

#[cfg(unix)]
#[test]
fn a_readable_passkey_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    assert_eq!(lab.enroll(&pk).code, 0);
    std::fs::set_permissions(&pk, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = lab.check(&["--passkey", &pk]);
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(run.stderr.contains("chmod 600"), "{}", run.dump());
}

#[test]
fn no_secret_reaches_any_output() {
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    let enrolled = lab.enroll(&pk);
    assert_eq!(enrolled.code, 0, "{}", enrolled.dump());
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pk).unwrap()).unwrap();
    let secrets = [
        std::fs::read_to_string(lab.path("api-key.txt")).unwrap(),
        std::fs::read_to_string(lab.path("client-secret.txt")).unwrap(),
        std::fs::read_to_string(lab.path("service-token-secret.txt")).unwrap(),
        file["private_key"].as_str().unwrap().to_string(),
    ];
    let secret_file = lab.path("client-secret.txt");
    let token_secret = lab.path("service-token-secret.txt");
    let token_id = lab_token_id(&lab);
    let mut runs = vec![
        enrolled,
        lab.check(&["--passkey", &pk]),
        lab.check(&[
            "--passkey",
            &pk,
            "--client-id",
            "2f0408cf-25d7-4daa-9fb9-7b072516a681",
            "--client-secret-file",
            &secret_file,
        ]),
        lab.check(&[
            "--service-token-id",
            &token_id,
            "--service-token-secret-file",
            &token_secret,
        ]),
        run(&["passkey", "show", &pk]),
    ];
    for fault in [
        "access-bad-secret",
        "user-not-allowed",
        "passkey-revoked",
        "tunnel-down",
    ] {
        runs.push(demo(&[fault], &[]));
    }
    runs.push(run(&["demo", "--trace"]));
    for r in &runs {
        let all = format!("{}\n{}", r.stdout, r.stderr);
        for s in &secrets {
            let s = s.trim();
            assert!(
                !s.is_empty() && !all.contains(s),
                "a secret leaked\n{}",
                r.dump()
            );
        }
        // No JWT (session, id_token, CF_Authorization, meta) in any output.
        assert!(!all.contains("eyJ"), "a JWT leaked\n{}", r.dump());
        for line in all.lines() {
            for param in ["state=", "code=", "meta=", "interaction=", "nonce="] {
                let mut rest = line;
                while let Some(i) = rest.find(param) {
                    let after = &rest[i + param.len()..];
                    if i == 0 || matches!(rest.as_bytes()[i - 1], b'?' | b'&') {
                        assert!(
                            after.starts_with("[redacted:"),
                            "unredacted {param} in: {line}"
                        );
                    }
                    rest = after;
                }
            }
        }
    }
}

#[test]
fn a_crash_while_saving_the_counter_leaves_the_old_file() {
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    assert_eq!(lab.enroll(&pk).code, 0);
    let before = std::fs::read(&pk).unwrap();
    let mut args: Vec<String> = vec!["check".into()];
    args.extend(lab.check.iter().cloned());
    args.extend(["--passkey".into(), pk.clone()]);
    let out = bin()
        .args(&args)
        .env("SSOPROBE_FAILPOINT", "atomic-write-before-rename")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the process should have died mid-save"
    );
    assert_eq!(
        std::fs::read(&pk).unwrap(),
        before,
        "the old file is intact"
    );
    // And it still works.
    let run = lab.check(&["--passkey", &pk]);
    assert_eq!(run.code, 0, "{}", run.dump());
}

#[test]
fn rate_limited_logins_are_named_and_not_retried() {
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    assert_eq!(lab.enroll(&pk).code, 0);
    // Pocket ID allows a burst of 10 login/finish calls, then one per 5 s.
    for attempt in 1..=12 {
        let run = lab.check(&["--passkey", &pk]);
        let c = run.check("passkey.login");
        if c["status"] == "fail" {
            assert!(
                c["summary"].as_str().unwrap().contains("rate limited"),
                "{}",
                run.dump()
            );
            assert!(
                c["hint"].as_str().unwrap().contains("never retries"),
                "{}",
                run.dump()
            );
            let finishes = run
                .stderr
                .matches("→ POST https://id.example.com/api/webauthn/login/finish")
                .count();
            assert_eq!(finishes, 1, "exactly one attempt\n{}", run.dump());
            assert!(attempt > 10, "limited after {attempt} logins");
            return;
        }
    }
    panic!("no rate limit after 12 logins");
}

#[test]
fn a_passkey_and_a_service_token_together_are_a_usage_error() {
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    assert_eq!(lab.enroll(&pk).code, 0);
    let id = lab_token_id(&lab);
    let secret = lab.path("service-token-secret.txt");
    let run = lab.check(&[
        "--passkey",
        &pk,
        "--service-token-id",
        &id,
        "--service-token-secret-file",
        &secret,
    ]);
    // With a passkey the token would never be sent: say so instead of dropping it.
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(run.stderr.contains("not both"), "{}", run.dump());
}

#[test]
fn a_client_secret_without_a_passkey_says_what_its_code_flow_lacks() {
    // The secret's own code flow logs in with the passkey: without one, the check is a
    // skip line naming it, not silence.
    let lab = Lab::start(&[]);
    let r = lab.check(&[
        "--client-id",
        "2f0408cf-25d7-4daa-9fb9-7b072516a681",
        "--client-secret-file",
        &lab.path("client-secret.txt"),
    ]);
    // A check asked for and not run is never a pass: the run warns.
    assert_eq!(r.code, 1, "{}", r.dump());
    let exchange = r.check("idp.exchange");
    assert_eq!(exchange["status"], "skip", "{}", r.dump());
    r.assert_says(&exchange, "summary", "add --passkey FILE");
}

#[test]
fn a_pinned_config_keeps_the_login() {
    // --print-config with --passkey: the printed file logs in too, not only the
    // anonymous chain.
    let lab = Lab::start(&[]);
    let passkey = lab.path("probe.passkey");
    let enrolled = lab.enroll(&passkey);
    assert_eq!(enrolled.code, 0, "{}", enrolled.dump());
    let mut args = vec![
        "check",
        "https://service.example.com",
        "--print-config",
        "--passkey",
        &passkey,
    ];
    args.extend(lab.routes.iter().map(String::as_str));
    let printed = run(&args);
    assert_eq!(printed.code, 0, "{}", printed.dump());
    assert!(
        printed.stdout.contains("passkey = \"/"),
        "{}",
        printed.stdout
    );
    let file = lab.path("pinned.toml");
    std::fs::write(&file, &printed.stdout).unwrap();
    let pinned = run(&["check", "--config", &file, "--format", "json"]);
    assert_eq!(pinned.code, 0, "{}", pinned.dump());
    assert_eq!(
        pinned.check("passkey.login")["status"],
        "pass",
        "{}",
        pinned.dump()
    );
    assert_eq!(
        pinned.check("service.reach")["status"],
        "pass",
        "{}",
        pinned.dump()
    );
}
