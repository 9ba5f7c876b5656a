//! `ssoprobe doctor` and the `config.*` checks, end to end: the real binary against the
//! lab's Cloudflare API and Pocket ID admin API.

mod common;

use common::{Lab, demo, run};
use serde_json::Value;

const CONFIG_CHECKS: &[&str] = &[
    "config.token",
    "config.team",
    "config.app",
    "config.policy",
    "config.login_method",
    "config.scopes",
    "config.pkce",
    "config.tunnel",
    "config.dns",
    "config.waf",
    "config.api_key",
    "config.discovery",
    "config.client",
    "config.user",
];

/// Each lab fault the configuration shows, with the check that must name it, its
/// status and a piece of the fix it must give (or of the finding, after `finding:`).
const FAULTS: &[(&str, &str, &str, &str)] = &[
    (
        "site-public",
        "config.app",
        "fail",
        "not protected by Access",
    ),
    (
        "wrong-team",
        "config.team",
        "fail",
        "lives in team other-team.cloudflareaccess.com",
    ),
    ("challenge", "config.waf", "warn", "turn Bot Fight Mode off"),
    (
        "token-challenge",
        "config.waf",
        "warn",
        "turn Bot Fight Mode off",
    ),
    (
        "token-blocked-for-access",
        "config.waf",
        "warn",
        "turn Bot Fight Mode off",
    ),
    (
        "jwks-blocked-for-access",
        "config.waf",
        "warn",
        "turn Bot Fight Mode off",
    ),
    (
        "no-instant-auth",
        "config.app",
        "warn",
        "turn on Instant Auth",
    ),
    (
        "idp-chooser-via-team",
        "config.app",
        "warn",
        "turn on Instant Auth",
    ),
    (
        "wrong-auth-url",
        "config.login_method",
        "fail",
        "set Auth URL to https://id.example.com/authorize",
    ),
    (
        "access-jwks-unreachable",
        "config.login_method",
        "fail",
        "set Certificate URL to https://id.example.com/.well-known/jwks.json",
    ),
    (
        "token-url-wrong",
        "config.login_method",
        "fail",
        "set Token URL to https://id.example.com/api/oidc/token",
    ),
    ("no-pkce", "config.pkce", "fail", "turn on PKCE in Access"),
    (
        "public-client-no-pkce",
        "config.pkce",
        "fail",
        "turn on PKCE in Access",
    ),
    (
        "pkce-not-enforced",
        "config.pkce",
        "warn",
        "turn on PKCE on the Pocket ID client",
    ),
    (
        "unknown-client",
        "config.client",
        "fail",
        "set the login method's App ID to 2f0408cf-25d7-4daa-9fb9-7b072516a681",
    ),
    (
        "callback-not-registered",
        "config.client",
        "fail",
        "remove the trailing slash in the client's Callback URLs",
    ),
    (
        "client-no-callback",
        "config.client",
        "fail",
        "add https://xyz.cloudflareaccess.com/cdn-cgi/access/callback to the client's Callback URLs",
    ),
    (
        "callback-other-team",
        "config.client",
        "fail",
        "finding:another team",
    ),
    (
        "par-required",
        "config.client",
        "fail",
        "turn off \"Requires Pushed Authorization Requests\"",
    ),
    (
        "secret-expired",
        "config.client",
        "fail",
        "create a new client secret",
    ),
    (
        "secret-expiring",
        "config.client",
        "warn",
        "before the old one expires",
    ),
    (
        "reauth-required",
        "config.client",
        "warn",
        "Requires re-authentication",
    ),
    (
        "issuer-mismatch",
        "config.discovery",
        "fail",
        "set APP_URL=https://id.example.com",
    ),
    (
        "internal-url",
        "config.discovery",
        "warn",
        "not discovery's internal URLs",
    ),
    ("user-disabled", "config.user", "fail", "enable the user"),
    ("passkey-revoked", "config.user", "fail", "ssoprobe enroll"),
    (
        "user-not-allowed",
        "config.user",
        "fail",
        "add probe to the group Admins",
    ),
    (
        "access-policy-deny",
        "config.policy",
        "fail",
        "Emails: probe@example.com",
    ),
    (
        "service-auth-only",
        "config.policy",
        "fail",
        "add an Allow policy",
    ),
    (
        "policy-login-method",
        "config.policy",
        "fail",
        "finding:requires Login Methods: One-time PIN",
    ),
    (
        "approval-required",
        "config.policy",
        "warn",
        "without approval by an approver",
    ),
    (
        "bypass-everyone",
        "config.policy",
        "fail",
        "remove the Bypass policy",
    ),
    (
        "scopes-without-email",
        "config.scopes",
        "fail",
        "set the scopes to openid email profile",
    ),
    (
        "scope-unsupported",
        "config.scopes",
        "warn",
        "remove offline",
    ),
    (
        "email-claim-name",
        "config.scopes",
        "fail",
        "set Email claim to email",
    ),
    (
        "groups-claim-display-name",
        "config.policy",
        "fail",
        "change the rule's claim value to probers",
    ),
    (
        "groups-claim-missing",
        "config.scopes",
        "fail",
        "add groups to the scopes",
    ),
    (
        "app-hides-idp",
        "config.app",
        "fail",
        "to the application's login methods",
    ),
    (
        "instant-auth-ambiguous",
        "config.app",
        "warn",
        "exactly one login method",
    ),
    (
        "idp-behind-access",
        "config.app",
        "fail",
        "do not protect id.example.com with Access",
    ),
    (
        "tunnel-down",
        "config.tunnel",
        "fail",
        "start cloudflared for tunnel \"homelab\"",
    ),
    (
        "idp-behind-tunnel-down",
        "config.tunnel",
        "fail",
        "start cloudflared for tunnel \"pocket-id\"",
    ),
    ("tunnel-degraded", "config.tunnel", "warn", "restart"),
    (
        "ingress-missing",
        "config.tunnel",
        "fail",
        "add a public hostname service.example.com",
    ),
    (
        "origin-access-aud",
        "config.tunnel",
        "fail",
        "set the AUD tag",
    ),
    (
        "dns-not-tunnel",
        "config.dns",
        "fail",
        "repoint the CNAME service.example.com",
    ),
    (
        "cf-token-missing-permission",
        "config.tunnel",
        "warn",
        "Account → Cloudflare Tunnel → Read",
    ),
    (
        "cf-token-cannot-list-accounts",
        "config.token",
        "fail",
        "pass --cf-account-id",
    ),
    (
        "cf-bot-management-unavailable",
        "config.waf",
        "warn",
        "Zone → Bot Management → Read",
    ),
];

fn config_check<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no {id} in the report: {}", json["checks"]))
}

#[test]
fn the_healthy_lab_passes_every_configuration_check() {
    let r = demo(&[], &["--doctor"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let json = r.json();
    for id in CONFIG_CHECKS {
        let c = config_check(&json, id);
        assert_eq!(c["status"], "pass", "{id}: {c}");
    }
    // The application is on the second page of the lab's lists (two per page).
    assert_eq!(
        config_check(&json, "config.app")["details"]["applications_read"],
        5,
        "{json}"
    );
}

#[test]
fn every_configuration_fault_is_named_with_its_fix() {
    let mut listed = String::new();
    if let Ok(out) = std::process::Command::new(env!("CARGO_BIN_EXE_ssoprobe"))
        .args(["lab", "--list-faults"])
        .output()
    {
        listed = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    assert!(FAULTS.len() >= 25);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for chunk in FAULTS.chunks(FAULTS.len().div_ceil(4)) {
            let failures = &failures;
            let listed = &listed;
            s.spawn(move || {
                for (fault, id, status, wanted) in chunk {
                    if !listed
                        .lines()
                        .any(|l| l.split_whitespace().next() == Some(fault))
                    {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{fault}: not in lab --list-faults"));
                        continue;
                    }
                    let r = demo(&[fault], &["--doctor"]);
                    let json = r.json();
                    let c = config_check(&json, id);
                    let text = match wanted.strip_prefix("finding:") {
                        Some(w) => (
                            c["summary"].as_str().unwrap_or_default().to_string()
                                + " "
                                + &c["details"].to_string(),
                            w,
                        ),
                        None => (c["hint"].as_str().unwrap_or_default().to_string(), *wanted),
                    };
                    if c["status"] != *status || !text.0.contains(text.1) {
                        failures.lock().unwrap().push(format!(
                            "{fault}: {id} wanted {status} with \"{}\", got {c}",
                            text.1
                        ));
                    }
                    if r.code < 1 {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{fault}: exit {} ", r.code));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn doctor_only_reads_and_follows_every_page() {
    // No enrolment: every API request the lab logs is doctor's.
    let mut lab = Lab::start(&[]);
    let r = lab.doctor(&[]);
    let json = r.json();
    // Only the configuration checks: doctor logs nobody in.
    let ids: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, CONFIG_CHECKS, "{}", r.dump());
    // The monitoring user is not enrolled: the one failure.
    assert_eq!(
        config_check(&json, "config.user")["status"],
        "fail",
        "{}",
        r.dump()
    );
    assert_eq!(r.code, 2);
    let log = lab.stop_and_read_api_log();
    // Every list to its end, and nothing read twice: about 30 requests for the lab's
    // two-per-page lists (a pager that loops on an endpoint that does not paginate
    // would make hundreds).
    assert!(
        (15..60).contains(&log.len()),
        "{} requests: {log:?}",
        log.len()
    );
    let writes: Vec<_> = log.iter().filter(|(m, _, _, _)| m != "GET").collect();
    assert!(writes.is_empty(), "doctor sent more than GET: {writes:?}");
    assert!(
        log.iter()
            .any(|(_, _, p, _)| p.contains("/access/apps") && p.contains("page=2")),
        "the second page of applications was not read: {log:?}"
    );
    assert!(
        log.iter()
            .any(|(_, _, p, _)| p.contains("/api/oidc/clients") && p.contains("pagination")),
        "{log:?}"
    );
}

#[test]
fn a_bad_token_and_a_bad_key_are_named_and_nothing_else_is_read_with_them() {
    let lab = Lab::start(&[]);
    let bad = lab.path("bad-token.txt");
    std::fs::write(&bad, "not-a-token-0123456789abcdefghijklmnopqrstu").unwrap();
    set_private(&bad);
    let mut args: Vec<String> = lab.doctor.clone();
    replace_value(&mut args, "--cf-api-token-file", &bad);
    replace_value(&mut args, "--api-key-file", &bad);
    let mut full = vec!["doctor".to_string()];
    full.extend(args);
    full.extend(["--format".into(), "json".into()]);
    let r = run(&full.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 2, "{}", r.dump());
    let json = r.json();
    let token = config_check(&json, "config.token");
    assert_eq!(token["status"], "fail", "{token}");
    assert!(
        token["hint"]
            .as_str()
            .unwrap()
            .contains("unknown, revoked, expired"),
        "{token}"
    );
    assert_eq!(config_check(&json, "config.app")["status"], "skip");
    assert!(
        config_check(&json, "config.app")["summary"]
            .as_str()
            .unwrap()
            .contains("follows from config.token")
    );
    let key = config_check(&json, "config.api_key");
    assert_eq!(key["status"], "fail", "{key}");
    assert!(key["hint"].as_str().unwrap().contains("API Keys"), "{key}");
    assert_eq!(config_check(&json, "config.client")["status"], "skip");
}

#[test]
fn rate_limits_are_waited_for_once_and_not_looped_on() {
    let short = demo(&["cf-api-rate-limited"], &["--doctor"]);
    let json = short.json();
    for id in ["config.token", "config.app", "config.tunnel", "config.dns"] {
        assert_eq!(
            config_check(&json, id)["status"],
            "pass",
            "{id}: {}",
            short.dump()
        );
    }
    let long = demo(&["cf-api-rate-limit-exhausted"], &["--doctor"]);
    let json = long.json();
    let token = config_check(&json, "config.token");
    assert_eq!(token["status"], "fail", "{token}");
    assert!(
        token["summary"]
            .as_str()
            .unwrap()
            .contains("Retry-After: 300"),
        "{token}"
    );
    assert!(
        token["hint"]
            .as_str()
            .unwrap()
            .contains("wait for the Retry-After time"),
        "{token}"
    );
}

#[test]
fn secrets_never_reach_any_format() {
    let lab = Lab::start(&["tunnel-down", "cf-token-missing-permission"]);
    let token = std::fs::read_to_string(lab.path("cf-api-token.txt")).unwrap();
    let key = std::fs::read_to_string(lab.path("api-key.txt")).unwrap();
    assert!(token.trim().len() >= 20 && key.trim().len() >= 16);
    for format in ["human", "json", "junit", "nagios", "prometheus"] {
        let mut args: Vec<&str> = vec!["doctor"];
        args.extend(lab.doctor.iter().map(String::as_str));
        args.extend(["--format", format, "--trace"]);
        let r = run(&args);
        assert!(r.code >= 1, "{}", r.dump());
        for secret in [token.trim(), key.trim()] {
            assert!(
                !r.stdout.contains(secret) && !r.stderr.contains(secret),
                "{format}: a secret was printed"
            );
        }
    }
}

#[test]
fn doctor_settings_that_cannot_take_effect_are_refused() {
    let base = [
        "doctor",
        "--service",
        "https://service.example.com",
        "--idp",
        "https://id.example.com",
    ];
    let r = run(&base);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("--cf-api-token-file"), "{}", r.dump());
    let mut with = base.to_vec();
    with.extend(["--cf-account-id", "0123456789abcdef0123456789abcdef"]);
    let r = run(&with);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("--cf-account-id") && r.stderr.contains("--cf-api-token-file"),
        "{}",
        r.dump()
    );
    let mut with = base.to_vec();
    with.extend(["--cf-account-id", "xyz"]);
    assert!(run(&with).stderr.contains("32 hex digits"));
    let mut with = base.to_vec();
    with.extend(["--user", "probe@example.com"]);
    let r = run(&with);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("--user"), "{}", r.dump());
    let lab = Lab::start(&[]);
    let mut args: Vec<&str> = vec!["doctor"];
    args.extend(lab.doctor.iter().map(String::as_str));
    args.extend(["--expect-status", "200"]);
    let r = run(&args);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("--expect-status has no effect in doctor"),
        "{}",
        r.dump()
    );
    let mut args: Vec<String> = vec!["doctor".into()];
    args.extend(lab.doctor.iter().cloned());
    replace_value(
        &mut args,
        "--cf-api-url",
        "http://api.cloudflare.example.com/client/v4",
    );
    let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("https"), "{}", r.dump());
}

#[test]
fn either_side_alone_says_what_it_could_not_check() {
    let lab = Lab::start(&[]);
    let mut args = vec!["doctor".to_string()];
    args.extend(without_flags(&lab.doctor, &["--api-key-file"]));
    args.extend(["--format".into(), "json".into()]);
    let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let json = r.json();
    assert_eq!(
        config_check(&json, "config.app")["status"],
        "pass",
        "{}",
        r.dump()
    );
    let client = config_check(&json, "config.client");
    assert_eq!(client["status"], "skip");
    assert!(
        client["summary"]
            .as_str()
            .unwrap()
            .contains("--api-key-file"),
        "{client}"
    );
    assert!(
        config_check(&json, "config.pkce")["summary"]
            .as_str()
            .unwrap()
            .contains("--api-key-file")
    );
}

/// `args` without the `flags` given and their values.
fn without_flags(args: &[String], flags: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = args.iter();
    while let Some(a) = args.next() {
        if flags.contains(&a.as_str()) {
            args.next();
        } else {
            out.push(a.clone());
        }
    }
    out
}

fn replace_value(args: &mut [String], flag: &str, value: &str) {
    if let Some(i) = args.iter().position(|a| a == flag) {
        args[i + 1] = value.to_string();
    }
}

fn set_private(path: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn check_with_api_credentials_runs_the_configuration_checks_beside_the_probe() {
    let lab = Lab::start(&["no-pkce"]);
    // The doctor command's arguments are check's plus the API credentials.
    let mut args: Vec<&str> = vec!["check"];
    args.extend(lab.doctor.iter().map(String::as_str));
    args.extend(["--format", "json"]);
    let r = run(&args);
    assert_eq!(r.code, 2, "{}", r.dump());
    let json = r.json();
    // The probe's symptom and the configuration's cause, in one report.
    assert_eq!(config_check(&json, "idp.authorize")["status"], "fail");
    let pkce = config_check(&json, "config.pkce");
    assert_eq!(pkce["status"], "fail", "{pkce}");
    assert!(
        pkce["hint"]
            .as_str()
            .unwrap()
            .contains("turn on PKCE in Access")
    );
}

#[test]
fn a_wrong_account_is_named_once() {
    let lab = Lab::start(&[]);
    let r = lab.doctor(&["--cf-account-id", "0123456789abcdef0123456789abcdef"]);
    assert_eq!(r.code, 2, "{}", r.dump());
    let json = r.json();
    let token = config_check(&json, "config.token");
    assert_eq!(token["status"], "fail", "{token}");
    assert!(
        token["summary"]
            .as_str()
            .unwrap()
            .contains("does not know account 0123456789abcdef0123456789abcdef"),
        "{token}"
    );
    for id in ["config.team", "config.app", "config.tunnel"] {
        assert_eq!(config_check(&json, id)["status"], "skip", "{id}");
    }
}

#[test]
fn doctor_finds_pocket_id_from_cloudflares_login_method() {
    let lab = Lab::start(&[]);
    assert_eq!(lab.enroll(&lab.path("probe.passkey")).code, 0);
    // The doctor command without --idp (and without --team and --aud): the URL is the
    // site, Pocket ID comes from the application's one OpenID Connect login method.
    let mut args: Vec<String> = vec!["doctor".into(), "https://service.example.com".into()];
    args.extend(without_flags(
        &lab.doctor,
        &["--service", "--idp", "--team", "--aud"],
    ));
    args.extend(["--format".into(), "json".into()]);
    let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let json = r.json();
    assert_eq!(
        json["target"]["idp"], "https://id.example.com",
        "{}",
        json["target"]
    );
    assert_eq!(
        json["discovered"]["idp"]["from"],
        "the Auth URL of Cloudflare's login method"
    );
    // The admin key goes only to a Pocket ID the operator named: Cloudflare's side is
    // read, Pocket ID's admin side skips saying what to pass (a warning, not a pass).
    assert_eq!(r.code, 1, "{}", r.dump());
    let key = config_check(&json, "config.api_key");
    assert_eq!(key["status"], "skip", "{key}");
    assert!(
        key["summary"].as_str().unwrap().contains(
            "the Pocket ID API key goes only to a Pocket ID you name, and https://id.example.com was found from the Auth URL of Cloudflare's login method: pass --idp https://id.example.com"
        ),
        "{key}"
    );
    for id in ["config.token", "config.app", "config.login_method"] {
        assert_eq!(
            config_check(&json, id)["status"],
            "pass",
            "{id}: {}",
            r.dump()
        );
    }
    // Named, the key is used and everything passes.
    let mut named = args.clone();
    named.extend(["--idp".into(), "https://id.example.com".into()]);
    let r = run(&named.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "{}", r.dump());
    // Without a Cloudflare token there is nothing to read it from: say what to give.
    let no_cf = without_flags(&args, &["--cf-api-token-file", "--cf-api-url"]);
    let r = run(&no_cf.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("--idp"), "{}", r.dump());
}

/// One symptom, several causes: Access's "Failed to exchange code for token". Without
/// the configuration the hint names every cause alive, most likely first; with it, the
/// one the configuration confirms, and the `config.*` finding points back.
#[test]
fn the_configuration_decides_between_the_causes_of_a_failed_code_exchange() {
    let callback = |run: &common::Run| run.check("access.callback").clone();

    let alone = demo(&["secret-expired"], &[]);
    let c = callback(&alone);
    assert_eq!(c["status"], "fail", "{}", alone.dump());
    let hint = c["hint"].as_str().unwrap();
    assert!(hint.starts_with("most likely: "), "{hint}");
    assert!(hint.contains("has 4 causes"), "{hint}");
    assert!(hint.contains("--cf-api-token-file"), "{hint}");

    let with = demo(&["secret-expired"], &["--doctor"]);
    let c = callback(&with);
    let hint = c["hint"].as_str().unwrap();
    assert!(hint.starts_with("create a new client secret"), "{hint}");
    assert!(hint.contains("confirmed by config.client"), "{hint}");
    assert_eq!(
        config_check(&with.json(), "config.client")["details"]["explains"],
        "access.callback"
    );

    // A wrong secret in Access: the configuration rules out the expired secret and the
    // Token URL, and leaves the two it cannot see (Access's copy of the secret, a rule
    // in front of the token path) — never one of them alone.
    let bad = demo(&["access-bad-secret"], &["--doctor"]);
    let c = callback(&bad);
    let hint = c["hint"].as_str().unwrap();
    assert!(
        hint.starts_with("most likely: copy the client's secret"),
        "{hint}"
    );
    assert!(hint.contains("has 2 causes"), "{hint}");
    let standings: Vec<(String, String)> = c["details"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["cause"].as_str().unwrap().to_string(),
                v["standing"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        standings.contains(&("secret_expired".into(), "ruled_out".into())),
        "{standings:?}"
    );
    assert!(
        standings.contains(&("token_url_wrong".into(), "ruled_out".into())),
        "{standings:?}"
    );
}

#[test]
fn the_configuration_decides_between_the_causes_of_pocket_ids_unnamed_error() {
    let authorize = |run: &common::Run| run.check("idp.authorize").clone();
    let standing = |c: &Value, cause: &str| {
        c["details"]["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["cause"] == cause)
            .map(|v| v["standing"].as_str().unwrap().to_string())
    };

    // Alone, Pocket ID's error=error names nothing: both causes, PAR first, and what
    // tells them apart; never a claim that Pocket ID's words name the setting.
    let alone = demo(&["par-required"], &[]);
    let c = authorize(&alone);
    assert_eq!(c["status"], "fail", "{}", alone.dump());
    assert_eq!(
        c["details"]["symptom"],
        "idp.authorize_unrecognizable_error",
        "{}",
        alone.dump()
    );
    let hint = c["hint"].as_str().unwrap();
    assert!(
        hint.starts_with("most likely: turn off \"Requires Pushed Authorization Requests\""),
        "{hint}"
    );
    assert!(
        hint.contains("else: let Pocket ID write to its database"),
        "{hint}"
    );
    assert!(hint.contains("has 2 causes"), "{hint}");
    assert!(hint.contains("--api-key-file"), "{hint}");
    assert!(!hint.contains("own words"), "{hint}");

    // With the configuration, config.client's requires_par confirms PAR.
    let with = demo(&["par-required"], &["--doctor"]);
    let c = authorize(&with);
    let hint = c["hint"].as_str().unwrap();
    assert!(
        hint.starts_with("turn off \"Requires Pushed Authorization Requests\""),
        "{hint}"
    );
    assert!(hint.contains("confirmed by config.client"), "{hint}");
    assert!(!hint.contains("most likely"), "{hint}");
    let json = with.json();
    let client = config_check(&json, "config.client");
    assert_eq!(client["details"]["requires_par"], true);
    assert_eq!(client["details"]["explains"], "idp.authorize");

    // A database that takes no writes gives the same answer: the configuration rules
    // PAR out and leaves the database alone.
    let db = demo(&["idp-database-readonly"], &["--doctor"]);
    let c = authorize(&db);
    let hint = c["hint"].as_str().unwrap();
    assert!(
        hint.starts_with("let Pocket ID write to its database again"),
        "{hint}"
    );
    assert!(
        hint.contains("ruled out: par_required (by config.client)"),
        "{hint}"
    );
    assert_eq!(standing(&c, "par_required").as_deref(), Some("ruled_out"));
    assert_eq!(
        standing(&c, "database_unwritable").as_deref(),
        Some("alive")
    );
    assert_eq!(
        config_check(&db.json(), "config.client")["details"]["requires_par"],
        false
    );
}

/// The standing of each candidate cause the check recorded.
fn standings(check: &Value) -> Vec<(String, String)> {
    check["details"]["candidates"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    (
                        v["cause"].as_str().unwrap_or_default().to_string(),
                        v["standing"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The other causes of the same two pages: a Token URL at another path (the
/// configuration confirms it; without it, every cause stays alive), and a block in
/// front of the JWKS for Access's requests (this run's own request shaped like
/// Access's confirms it, with or without the configuration), which a wrong Certificate
/// URL is never taken for.
#[test]
fn the_evidence_decides_between_the_causes_of_a_wrong_url_and_a_block() {
    let callback = |run: &common::Run| run.check("access.callback").clone();
    let standing = |c: &Value, cause: &str| {
        standings(c)
            .into_iter()
            .find(|(id, _)| id == cause)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no candidate {cause}: {c}"))
    };

    let alone = demo(&["token-url-wrong"], &[]);
    let c = callback(&alone);
    assert_eq!(c["status"], "fail", "{}", alone.dump());
    let hint = c["hint"].as_str().unwrap();
    assert!(hint.starts_with("most likely: "), "{hint}");
    assert!(
        hint.contains(
            "set the Token URL of Access's login method to https://id.example.com/api/oidc/token"
        ),
        "{hint}"
    );
    assert!(hint.contains("--cf-api-token-file"), "{hint}");
    assert_eq!(standing(&c, "token_url_wrong"), "alive");

    let with = demo(&["token-url-wrong"], &["--doctor"]);
    let c = callback(&with);
    let hint = c["hint"].as_str().unwrap();
    assert!(
        hint.starts_with(
            "set the Token URL of Access's login method to https://id.example.com/api/oidc/token"
        ),
        "{hint}"
    );
    assert!(hint.contains("confirmed by config.login_method"), "{hint}");
    assert!(hint.contains("/api/oidc/tokens"), "{hint}");
    let method = config_check(&with.json(), "config.login_method").clone();
    assert_eq!(method["details"]["token_url_ok"], false, "{method}");
    assert_eq!(method["details"]["explains"], "access.callback", "{method}");

    for args in [&[][..], &["--doctor"][..]] {
        let blocked = demo(&["jwks-blocked-for-access"], args);
        let c = callback(&blocked);
        assert_eq!(c["status"], "fail", "{}", blocked.dump());
        let hint = c["hint"].as_str().unwrap();
        assert!(
            hint.starts_with(
                "let Cloudflare's own requests reach https://id.example.com/.well-known/jwks.json"
            ),
            "{args:?}: {hint}"
        );
        assert!(hint.contains("confirmed by access.callback"), "{hint}");
        assert!(hint.contains("User-Agent cloudflare-access"), "{hint}");
        assert_eq!(c["details"]["jwks_request_like_access_blocked"], true);
        assert_eq!(c["details"]["jwks_request_like_ssoprobe_blocked"], false);
        assert_eq!(standing(&c, "jwks_blocked_for_access"), "confirmed");
    }

    // A wrong Certificate URL: the keys answer Access-shaped requests, so the block
    // stays a candidate and is never confirmed.
    let alone = demo(&["access-jwks-unreachable"], &[]);
    let c = callback(&alone);
    let hint = c["hint"].as_str().unwrap();
    assert!(
        hint.starts_with("most likely: set the Certificate URL"),
        "{hint}"
    );
    assert_eq!(c["details"]["jwks_request_like_access_blocked"], false);
    assert_eq!(standing(&c, "jwks_blocked_for_access"), "alive");
    let with = demo(&["access-jwks-unreachable"], &["--doctor"]);
    let c = callback(&with);
    let hint = c["hint"].as_str().unwrap();
    assert!(hint.starts_with("set the Certificate URL"), "{hint}");
    assert!(hint.contains("confirmed by config.login_method"), "{hint}");
    assert_eq!(standing(&c, "certs_url_wrong"), "confirmed");
    assert_eq!(standing(&c, "jwks_blocked_for_access"), "alive");
}

/// `ssoprobe doctor https://service.example.com` with the lab's Cloudflare token (no
/// --idp, --team or --aud: Pocket ID comes from the application's login method), and
/// `extra`, in JSON.
fn one_argument_doctor(lab: &Lab, extra: &[&str]) -> common::Run {
    let mut args: Vec<String> = vec!["doctor".into(), "https://service.example.com".into()];
    args.extend(without_flags(
        &lab.doctor,
        &[
            "--service",
            "--idp",
            "--team",
            "--aud",
            "--api-key-file",
            "--user",
        ],
    ));
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(["--format".into(), "json".into()]);
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Pocket ID's checks skip naming the check whose finding kept doctor from Pocket ID's
/// URL.
fn assert_pocket_id_follows_from(r: &common::Run, id: &str) {
    let json = r.json();
    for pid in ["config.discovery", "config.client", "config.user"] {
        let c = config_check(&json, pid);
        assert_eq!(c["status"], "skip", "{pid}: {}", r.dump());
        let summary = c["summary"].as_str().unwrap();
        assert!(
            summary.starts_with(&format!("skipped: follows from {id}:"))
                && summary.contains("--idp"),
            "{pid}: {summary}"
        );
    }
}

/// Without --idp, doctor reads Pocket ID's URL from Cloudflare: when that fails, the
/// check whose finding explains it says why, as a diagnosis (exit 2 or 1), never as a
/// usage error (exit 3) about login methods.
#[test]
fn the_one_argument_doctor_names_what_kept_it_from_pocket_id() {
    let lab = Lab::start(&["site-public"]);
    // No application covers the site.
    let r = one_argument_doctor(&lab, &[]);
    assert_eq!(r.code, 2, "{}", r.dump());
    assert!(!r.stderr.contains("could not be found"), "{}", r.dump());
    let json = r.json();
    let app = config_check(&json, "config.app");
    assert_eq!(app["status"], "fail", "{app}");
    assert!(
        app["summary"]
            .as_str()
            .unwrap()
            .contains("no Access application covers service.example.com"),
        "{app}"
    );
    assert_pocket_id_follows_from(&r, "config.app");
    // Nothing is judged against the site standing in for Pocket ID.
    for id in ["config.login_method", "config.waf"] {
        assert_eq!(
            config_check(&json, id)["status"],
            "skip",
            "{id}: {}",
            r.dump()
        );
    }
    assert_eq!(
        config_check(&json, "config.dns")["status"],
        "pass",
        "{}",
        r.dump()
    );

    // A token Cloudflare refuses: the real cause, not "give --idp".
    let bad = lab.path("bad-token.txt");
    std::fs::write(&bad, "not-a-token-0123456789abcdefghijklmnopqrstu").unwrap();
    set_private(&bad);
    let mut args: Vec<String> = vec!["doctor".into(), "https://service.example.com".into()];
    args.extend(without_flags(
        &lab.doctor,
        &[
            "--service",
            "--idp",
            "--team",
            "--aud",
            "--api-key-file",
            "--user",
        ],
    ));
    replace_value(&mut args, "--cf-api-token-file", &bad);
    args.extend(["--format".into(), "json".into()]);
    let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 2, "{}", r.dump());
    let json = r.json();
    let token = config_check(&json, "config.token");
    assert_eq!(token["status"], "fail", "{token}");
    assert!(
        token["summary"]
            .as_str()
            .unwrap()
            .starts_with("Cloudflare refused the token"),
        "{token}"
    );
    let hint = token["hint"].as_str().unwrap();
    for permission in [
        "Account → Access: Apps and Policies → Read",
        "Account → Access: Organizations, Identity Providers, and Groups → Read",
        "Account → Cloudflare Tunnel → Read",
        "Zone → Zone → Read",
        "Zone → DNS → Read",
        "Zone → Bot Management → Read",
    ] {
        assert!(hint.contains(permission), "{permission}: {hint}");
    }
    assert_pocket_id_follows_from(&r, "config.token");
    assert!(!r.stdout.contains("not-a-token") && !r.stderr.contains("not-a-token"));
}

/// The application does not name Pocket ID through one OpenID Connect login method:
/// `config.login_method` says so (none: a failure; several: a warning naming them).
#[test]
fn the_one_argument_doctor_says_which_login_methods_hide_pocket_id() {
    let lab = Lab::start(&["app-hides-idp"]);
    let r = one_argument_doctor(&lab, &[]);
    assert_eq!(r.code, 2, "{}", r.dump());
    let method = config_check(&r.json(), "config.login_method").clone();
    assert_eq!(method["status"], "fail", "{}", r.dump());
    assert!(
        method["summary"]
            .as_str()
            .unwrap()
            .contains("offers no OpenID Connect login method"),
        "{method}"
    );
    assert_pocket_id_follows_from(&r, "config.login_method");
    drop(lab);

    let lab = Lab::start(&["instant-auth-ambiguous"]);
    let r = one_argument_doctor(&lab, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    let method = config_check(&r.json(), "config.login_method").clone();
    assert_eq!(method["status"], "warn", "{}", r.dump());
    let summary = method["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("cannot tell which login method is Pocket ID")
            && summary.contains("\"Pocket ID\""),
        "{method}"
    );
    assert!(
        method["hint"].as_str().unwrap().starts_with("give --idp"),
        "{method}"
    );
    // The application's Instant Auth warning is not what kept Pocket ID unknown.
    assert_pocket_id_follows_from(&r, "config.login_method");
}

/// A token that cannot list its accounts (account-owned, or without the permission):
/// `config.token` asks for --cf-account-id, in every face of the refusal; with it, the
/// token reads everything.
#[test]
fn a_token_that_cannot_list_accounts_asks_for_the_account_id() {
    for variant in ["classic", "rebranded", "terse"] {
        let r = demo(
            &["cf-token-cannot-list-accounts"],
            &["--doctor", "--variant", variant],
        );
        assert_eq!(r.code, 2, "{variant}: {}", r.dump());
        let json = r.json();
        let token = config_check(&json, "config.token");
        assert_eq!(token["status"], "fail", "{variant}: {token}");
        assert!(
            token["summary"]
                .as_str()
                .unwrap()
                .starts_with("the API token cannot list its accounts"),
            "{variant}: {token}"
        );
        assert!(
            token["hint"]
                .as_str()
                .unwrap()
                .starts_with("pass --cf-account-id"),
            "{variant}: {token}"
        );
        // The login itself works: only the configuration checks are held up.
        assert_eq!(r.check("service.reach")["status"], "pass", "{variant}");
    }
    let lab = Lab::start(&["cf-token-cannot-list-accounts"]);
    let r = one_argument_doctor(&lab, &[]);
    assert_eq!(r.code, 2, "{}", r.dump());
    let token = config_check(&r.json(), "config.token").clone();
    assert!(
        token["hint"]
            .as_str()
            .unwrap()
            .starts_with("pass --cf-account-id"),
        "{token}"
    );
    assert_pocket_id_follows_from(&r, "config.token");
    // With the account id, the account-owned token is verified at the account and
    // Pocket ID is found.
    let r = one_argument_doctor(
        &lab,
        &["--cf-account-id", "9a7806061c88ada191ed06f989cc3dac"],
    );
    let json = r.json();
    assert_eq!(
        json["target"]["idp"],
        "https://id.example.com",
        "{}",
        r.dump()
    );
    for id in [
        "config.token",
        "config.app",
        "config.login_method",
        "config.waf",
    ] {
        assert_eq!(
            config_check(&json, id)["status"],
            "pass",
            "{id}: {}",
            r.dump()
        );
    }
}

/// A route the API does not offer to the token (Bot Management answering 404, or 403
/// for the plan) is "cannot check" on the check that needed it, naming the permission;
/// the other checks go on.
#[test]
fn a_route_the_api_does_not_offer_is_a_warning_on_its_check() {
    for variant in ["classic", "rebranded", "terse"] {
        let r = demo(
            &["cf-bot-management-unavailable"],
            &["--doctor", "--variant", variant],
        );
        assert_eq!(r.code, 1, "{variant}: {}", r.dump());
        let json = r.json();
        let waf = config_check(&json, "config.waf");
        assert_eq!(waf["status"], "warn", "{variant}: {waf}");
        assert!(
            waf["summary"].as_str().unwrap().starts_with("cannot check"),
            "{variant}: {waf}"
        );
        let hint = waf["hint"].as_str().unwrap();
        assert!(
            hint.contains("Zone → Bot Management → Read") && !hint.contains("--trace"),
            "{variant}: {waf}"
        );
        for id in CONFIG_CHECKS.iter().filter(|id| **id != "config.waf") {
            assert_eq!(
                config_check(&json, id)["status"],
                "pass",
                "{variant}: {id}: {}",
                r.dump()
            );
        }
    }
}

/// One symptom, two causes: HTTP 404 from the site after the login. cloudflared's
/// catch-all (no public hostname for the site) answers the status alone; the
/// application answers with or without a page. Without the configuration both stay
/// alive under every face — an empty 404 is the same answer from either — and a page
/// puts the application first; with it, config.tunnel names the one.
#[test]
fn the_configuration_decides_between_the_causes_of_a_404_after_login() {
    let reach = |run: &common::Run| run.check("service.reach").clone();
    let standings = |c: &Value| -> Vec<(String, String)> {
        c["details"]["candidates"]
            .as_array()
            .unwrap_or_else(|| panic!("no candidates: {c}"))
            .iter()
            .map(|v| {
                (
                    v["cause"].as_str().unwrap_or_default().to_string(),
                    v["standing"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let mut empty_hints = Vec::new();
    for variant in ["classic", "rebranded", "terse"] {
        for fault in ["ingress-missing", "origin-404"] {
            let alone = demo(&[fault], &["--variant", variant]);
            let c = reach(&alone);
            let at = format!("{fault} under {variant}");
            assert_eq!(c["status"], "fail", "{at}\n{}", alone.dump());
            let hint = c["hint"].as_str().unwrap_or_default();
            assert!(hint.starts_with("most likely: "), "{at}: {hint}");
            assert!(hint.contains("has 2 causes"), "{at}: {hint}");
            assert!(hint.contains("--cf-api-token-file"), "{at}: {hint}");
            assert_eq!(
                standings(&c),
                [
                    ("ingress_missing".into(), "alive".into()),
                    ("origin_404".into(), "alive".into())
                ],
                "{at}"
            );
            let page = c["details"]["body_bytes"].as_u64().unwrap_or_default() > 0;
            let first = if page {
                "origin_404"
            } else {
                "ingress_missing"
            };
            assert_eq!(c["details"]["most_likely"], first, "{at}: {hint}");
            if !page {
                empty_hints.push((at, hint.to_string()));
            }
        }
    }
    // The empty 404 of either cause reads the same: nothing in it picks one.
    assert!(
        empty_hints
            .iter()
            .any(|(at, _)| at.starts_with("origin-404")),
        "{empty_hints:?}"
    );
    assert!(
        empty_hints.windows(2).all(|w| w[0].1 == w[1].1),
        "{empty_hints:#?}"
    );

    let missing = demo(&["ingress-missing"], &["--doctor"]);
    let c = reach(&missing);
    let hint = c["hint"].as_str().unwrap_or_default();
    assert!(
        hint.starts_with("add a public hostname service.example.com"),
        "{hint}"
    );
    assert!(hint.contains("confirmed by config.tunnel"), "{hint}");
    assert!(!hint.contains("most likely"), "{hint}");
    let tunnel = config_check(&missing.json(), "config.tunnel").clone();
    assert_eq!(tunnel["details"]["site_hostname_routed"], false, "{tunnel}");
    assert_eq!(tunnel["details"]["explains"], "service.reach", "{tunnel}");
    // The rule the old, down tunnel kept is no place to point the record.
    assert_eq!(
        config_check(&missing.json(), "config.dns")["status"],
        "pass",
        "{}",
        missing.dump()
    );

    for variant in ["classic", "rebranded", "terse"] {
        let app = demo(&["origin-404"], &["--doctor", "--variant", variant]);
        let c = reach(&app);
        let hint = c["hint"].as_str().unwrap_or_default();
        assert!(
            hint.starts_with("make the application behind the tunnel serve"),
            "{variant}: {hint}"
        );
        assert!(
            hint.contains("confirmed by config.tunnel"),
            "{variant}: {hint}"
        );
        assert!(
            standings(&c).contains(&("ingress_missing".into(), "ruled_out".into())),
            "{variant}: {c}"
        );
        let tunnel = config_check(&app.json(), "config.tunnel").clone();
        assert_eq!(tunnel["status"], "pass", "{variant}: {tunnel}");
        assert_eq!(tunnel["details"]["site_hostname_routed"], true, "{tunnel}");
    }
}

#[test]
fn the_run_and_the_configuration_decide_why_access_finds_no_identity() {
    // "Failed to fetch user/group information": three causes. The passkey login's
    // answer says whether the user has an address, Access's authorization request
    // whether it asks for the scope email; the login method's Email claim only the
    // configuration reads, so without it that cause is left by elimination.
    for variant in ["classic", "rebranded", "terse"] {
        let claim = demo(&["email-claim-name"], &["--variant", variant]);
        let c = claim.check("access.callback");
        let at = format!("email-claim-name under {variant}");
        assert_eq!(
            c["details"]["symptom"], "access.identity_unavailable",
            "{at}"
        );
        let hint = c["hint"].as_str().unwrap_or_default();
        assert!(
            hint.starts_with("set the Email claim of Access's login method to email"),
            "{at}: {hint}"
        );
        assert!(
            hint.contains("ruled out: user_without_email (by passkey.login), scopes_without_email (by access.login)"),
            "{at}: {hint}"
        );
        assert!(!hint.contains("confirmed"), "{at}: {hint}");

        let user = demo(&["userinfo-fails"], &["--variant", variant]);
        let c = user.check("access.callback");
        let hint = c["hint"].as_str().unwrap_or_default();
        assert!(
            hint.starts_with("give the monitoring user an e-mail address in Pocket ID"),
            "{variant}: {hint}"
        );
        assert!(
            hint.contains("confirmed by passkey.login"),
            "{variant}: {hint}"
        );
        assert_eq!(
            user.check("passkey.login")["details"]["user_has_email"],
            false,
            "{variant}"
        );
    }
    let with = demo(&["email-claim-name"], &["--doctor"]);
    let c = with.check("access.callback");
    let hint = c["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("confirmed by config.scopes"), "{hint}");
    let scopes = config_check(&with.json(), "config.scopes").clone();
    assert_eq!(scopes["details"]["email_claim_ok"], false, "{scopes}");
    assert_eq!(scopes["details"]["explains"], "access.callback", "{scopes}");
    // A healthy lab: every piece of evidence says so.
    let healthy = demo(&[], &["--doctor"]);
    assert_eq!(
        healthy.check("passkey.login")["details"]["user_has_email"],
        true
    );
    assert_eq!(
        healthy.check("access.login")["details"]["scope_has_email"],
        true
    );
    let scopes = config_check(&healthy.json(), "config.scopes").clone();
    assert_eq!(scopes["details"]["email_claim_ok"], true, "{scopes}");
    assert_eq!(scopes["details"]["scopes_have_email"], true, "{scopes}");
}
