//! One end-to-end scenario per lab fault: the real binary against the lab, asserting
//! the exit code, the first failing (or, when nothing fails, warning) check and a
//! substring of its hint.

// They run the binary against the embedded lab.
#![cfg(feature = "lab")]

mod common;
use common::assert_fault;

#[test]
fn site_public() {
    let run = assert_fault(
        "site-public",
        2,
        "service.redirect",
        "fail",
        "no Access application covers",
    );
    let c = run.check("service.redirect");
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("site is publicly reachable without login")
    );
    assert_eq!(
        run.check("access.login")["status"],
        "skip",
        "{}",
        run.dump()
    );
    assert_eq!(
        run.check("idp.authorize")["status"],
        "skip",
        "{}",
        run.dump()
    );
}

#[test]
fn wrong_team() {
    let run = assert_fault(
        "wrong-team",
        2,
        "service.redirect",
        "fail",
        "another Zero Trust organization",
    );
    assert!(
        run.check("service.redirect")["summary"]
            .as_str()
            .unwrap()
            .contains("other-team")
    );
}

#[test]
fn no_instant_auth() {
    let run = assert_fault("no-instant-auth", 1, "access.login", "warn", "Instant Auth");
    // The Pocket ID link on the sign-in page is followed.
    assert_eq!(
        run.check("idp.authorize")["status"],
        "pass",
        "{}",
        run.dump()
    );
}

#[test]
fn wrong_auth_url() {
    assert_fault(
        "wrong-auth-url",
        2,
        "access.login",
        "fail",
        "set Auth URL to https://id.example.com/authorize",
    );
}

#[test]
fn no_pkce() {
    let run = assert_fault("no-pkce", 2, "idp.authorize", "fail", "PKCE");
    assert_eq!(
        run.check("access.login")["status"],
        "warn",
        "{}",
        run.dump()
    );
}

#[test]
fn issuer_mismatch() {
    let run = assert_fault(
        "issuer-mismatch",
        2,
        "idp.discovery",
        "fail",
        "APP_URL=https://id.example.com",
    );
    assert!(
        run.check("idp.discovery")["summary"]
            .as_str()
            .unwrap()
            .contains("http://id.example.com")
    );
}

#[test]
fn idp_down() {
    let run = assert_fault("idp-down", 2, "idp.authorize", "fail", "proxy");
    for id in [
        "idp.authorize",
        "idp.discovery",
        "idp.jwks",
        "idp.token",
        "idp.health",
    ] {
        let c = run.check(id);
        assert_eq!(c["status"], "fail", "{id}\n{}", run.dump());
        assert!(
            c["summary"].as_str().unwrap().contains("502"),
            "{id}\n{}",
            run.dump()
        );
    }
}

#[test]
fn idp_slow() {
    // The deadline is far: each request's own timeout ends it (the lab's start, which a
    // loaded machine may slow down, counts against a demo's deadline).
    let run = common::demo(&["idp-slow"], &["--timeout", "1s", "--deadline", "20s"]);
    assert_eq!(run.code, 2, "{}", run.dump());
    for id in [
        "idp.authorize",
        "idp.discovery",
        "idp.jwks",
        "idp.token",
        "idp.health",
    ] {
        let c = run.check(id);
        assert_eq!(c["status"], "fail", "{id}\n{}", run.dump());
        assert!(
            c["summary"].as_str().unwrap().contains("timed out"),
            "{id}\n{}",
            run.dump()
        );
    }
    // How long it takes is the benchmark's business; here, what it says.
}

#[test]
fn idp_slow_is_cut_by_the_deadline() {
    // A deadline shorter than the timeout ends the run on time too, and says so. (A
    // lab of its own: the check's deadline, not the demo's, which covers the lab's start.)
    let lab = common::Lab::start(&["idp-slow"]);
    let run = lab.check(&["--timeout", "10s", "--deadline", "2s"]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let c = run.check("idp.discovery");
    assert!(
        c["summary"].as_str().unwrap().contains("deadline"),
        "{}",
        run.dump()
    );
    // The deadline's finding names the request it cut, its host and the wait — this
    // check's own request to Pocket ID, not "slow checks above" — and the hint the
    // limit to raise.
    let summary = c["summary"].as_str().unwrap_or("");
    assert!(
        summary
            .starts_with("GET /.well-known/openid-configuration: id.example.com sent no answer in"),
        "{}",
        run.dump()
    );
    // Both of Pocket ID's waits were cut: the first in the chain carries the hint,
    // discovery follows from it.
    assert_eq!(
        c["details"]["follows_from"],
        "idp.authorize",
        "{}",
        run.dump()
    );
    let hint = run.check("idp.authorize")["hint"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(hint.contains("--deadline"), "{}", run.dump());
    assert!(!hint.contains("above"), "{}", run.dump());
    assert!(
        hint.starts_with("id.example.com completed the TLS handshake but sent no HTTP answer"),
        "{}",
        run.dump()
    );
    // Access's login goes to Pocket ID's fixed authorize path: idp.authorize asks at
    // once, without waiting for discovery, and the deadline cuts its wait too.
    let authorize = run.check("idp.authorize");
    assert_eq!(authorize["status"], "fail", "{}", run.dump());
    assert!(
        authorize["summary"]
            .as_str()
            .unwrap_or("")
            .contains("id.example.com sent no answer in"),
        "{}",
        run.dump()
    );
    assert_eq!(
        run.check("access.login")["details"]["compared_with"],
        "Pocket ID's fixed path",
        "{}",
        run.dump()
    );
    // A check whose request could not be sent any more (it waited for the connection
    // discovery was opening) is skipped, naming the request that took the time.
    let jwks = run.check("idp.jwks");
    assert_eq!(jwks["status"], "skip", "{}", run.dump());
    let why = jwks["summary"].as_str().unwrap_or("");
    assert!(
        why.contains("was not sent") && why.contains("https://id.example.com/"),
        "{}",
        run.dump()
    );
    // access.login waits for the discovery document beside it; that wait is not its
    // own time: it is a small part of the stalled check's.
    let login_ms = run.check("access.login")["duration_ms"].as_u64().unwrap();
    let discovery_ms = c["duration_ms"].as_u64().unwrap();
    assert!(login_ms * 4 < discovery_ms, "{}", run.dump());
}

#[test]
fn demo_deadline_covers_the_lab_and_the_enrolment() {
    // The enrolment gets at most half of what the lab's start left of the deadline, and
    // the checks run in the rest: the whole demo fits in its deadline.
    let run = common::demo(&["idp-slow"], &["--timeout", "30s", "--deadline", "8s"]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let enrol = run
        .stderr
        .lines()
        .find(|l| l.contains("no passkey could be enrolled"))
        .unwrap_or_else(|| panic!("{}", run.dump()));
    // "… timed out after 3.9 s …" (a request's timeout) or "… took longer than 3.9 s"
    // (the enrolment's own): at most half of 8 s.
    let after: f64 = ["timed out after ", "took longer than "]
        .iter()
        .find_map(|said| enrol.split(said).nth(1))
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{enrol}"));
    assert!(after <= 4.0, "{enrol}");
    let report = run.json();
    assert!(
        report["duration_ms"].as_u64().unwrap() <= 8000,
        "{}",
        run.dump()
    );
    let discovery = run.check("idp.discovery");
    assert!(
        discovery["summary"]
            .as_str()
            .unwrap()
            .contains("deadline of 8 s"),
        "{}",
        run.dump()
    );
    // The times add up to the wait: what went before the checks (the lab's start and
    // the enrolment) is said where the deadline is, and counted in the report.
    let before = report["before_ms"].as_u64().unwrap_or_default();
    assert!(before >= 100, "{}", run.dump());
    let summary = discovery["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("deadline of 8 s, ")
            && summary.contains(" of which went before the checks began"),
        "{}",
        run.dump()
    );
}

#[test]
fn cert_expiring() {
    let run = assert_fault(
        "cert-expiring",
        1,
        "tls.service.example.com",
        "warn",
        "renew the certificate of service.example.com",
    );
    let days = run.check("tls.service.example.com")["details"]["days_left"]
        .as_i64()
        .unwrap();
    assert!((7..21).contains(&days), "{days}\n{}", run.dump());
}

#[test]
fn cert_expiring_fails_under_the_fail_threshold() {
    let run = common::demo(
        &["cert-expiring"],
        &["--tls-fail-days", "14", "--tls-warn-days", "30"],
    );
    assert_eq!(run.code, 2, "{}", run.dump());
    assert_eq!(
        run.check("tls.service.example.com")["status"],
        "fail",
        "{}",
        run.dump()
    );
}

#[test]
fn cert_expired() {
    let run = assert_fault(
        "cert-expired",
        2,
        "tls.id.example.com",
        "fail",
        "renew the certificate of id.example.com",
    );
    assert!(
        run.check("tls.id.example.com")["summary"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // Requests to the host name the certificate, not a connection problem.
    let discovery = run.check("idp.discovery");
    assert!(
        discovery["summary"]
            .as_str()
            .unwrap()
            .contains("the certificate has expired"),
        "{}",
        run.dump()
    );
}

/// The lab's faces.
fn variants() -> Vec<String> {
    let listed = common::run(&["lab", "--list-variants"]);
    assert_eq!(listed.code, 0, "{}", listed.dump());
    listed
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// The requests of a HAR file (removed once read): URL and User-Agent, in order.
fn har_requests(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let _ = std::fs::remove_file(path);
    let har: serde_json::Value = serde_json::from_str(&text).expect("the HAR is JSON");
    har["log"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let agent = e["request"]["headers"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|h| {
                    h["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case("user-agent"))
                })
                .and_then(|h| h["value"].as_str())
                .unwrap_or_default();
            (
                e["request"]["url"].as_str().unwrap_or_default().to_string(),
                agent.to_string(),
            )
        })
        .collect()
}

/// Managed OAuth answers ssoprobe's own request 401; asked as a browser asks (its
/// Accept and its User-Agent), Access sends it to log in: a warning, and the whole
/// login goes on, its requests to Access and to the site shaped like a browser's.
#[test]
fn managed_oauth_warns_and_the_login_goes_on_as_a_browser() {
    for variant in variants() {
        let har = std::env::temp_dir()
            .join(format!("ssoprobe-faults-{}.har", common::uuid_like()))
            .display()
            .to_string();
        let run = common::demo(&["managed-oauth"], &["--variant", &variant, "--har", &har]);
        let at = format!("variant {variant}\n{}", run.dump());
        assert_eq!(run.code, 1, "{at}");
        let redirect = run.check("service.redirect");
        assert_eq!(redirect["status"], "warn", "{at}");
        let summary = redirect["summary"].as_str().unwrap();
        assert!(summary.contains("Managed OAuth is on"), "{at}");
        assert!(!summary.contains("even to a browser"), "{at}");
        assert!(
            redirect["hint"]
                .as_str()
                .unwrap()
                .starts_with("turn off Managed OAuth for the application"),
            "{at}"
        );
        for check in run.json()["checks"].as_array().unwrap() {
            if check["id"] != "service.redirect" {
                assert_eq!(check["status"], "pass", "{}: {at}", check["id"]);
            }
        }
        let requests = har_requests(&har);
        let through_access: Vec<&(String, String)> = requests
            .iter()
            .filter(|(url, _)| {
                url.starts_with("https://service.example.com/")
                    || url.starts_with("https://xyz.cloudflareaccess.com/cdn-cgi/access/login/")
                    || url.starts_with("https://xyz.cloudflareaccess.com/cdn-cgi/access/callback")
            })
            .collect();
        let (first, rest) = through_access.split_first().expect("requests to the site");
        assert_eq!(first.0, "https://service.example.com/", "{at}");
        assert!(first.1.starts_with("ssoprobe/"), "{first:?}: {at}");
        // The browser-shaped question, the team login, the callback, /authorized and
        // the site after the login.
        assert!(rest.len() >= 5, "{rest:?}: {at}");
        for (url, agent) in rest {
            assert!(
                agent.starts_with("Mozilla/5.0 ") && agent.contains("ssoprobe/"),
                "{url} asked as {agent:?}: {at}"
            );
        }
    }
}

/// When Access answers a browser-shaped request 401 too, the finding says so.
#[test]
fn managed_oauth_for_everyone_says_even_to_a_browser() {
    let run = assert_fault(
        "managed-oauth-everyone",
        2,
        "service.redirect",
        "fail",
        "turn off Managed OAuth for the application",
    );
    let redirect = run.check("service.redirect");
    assert!(
        redirect["summary"]
            .as_str()
            .unwrap()
            .contains("even to a browser"),
        "{}",
        run.dump()
    );
    assert_eq!(
        redirect["details"]["browser_gets_login"],
        false,
        "{}",
        run.dump()
    );
    assert_eq!(
        run.check("access.login")["status"],
        "skip",
        "{}",
        run.dump()
    );
}

/// After the login, a session Access does not take (its clock runs 10 minutes fast)
/// is sent to log in again: asked as a browser asks, the site says so instead of
/// answering Managed OAuth's 401, and the login loop is named.
#[test]
fn managed_oauth_with_a_login_loop_names_the_loop() {
    let run = common::demo(&["managed-oauth", "clock-skew"], &[]);
    assert_eq!(run.code, 2, "{}", run.dump());
    assert_eq!(
        run.check("service.redirect")["status"],
        "warn",
        "{}",
        run.dump()
    );
    let (id, status, _) = run.first_problem();
    assert_eq!(
        (id.as_str(), status.as_str()),
        ("service.reach", "fail"),
        "{}",
        run.dump()
    );
    let summary = run.check("service.reach")["summary"].clone();
    assert!(
        summary.as_str().unwrap().contains("login loop")
            && summary.as_str().unwrap().contains("clock skew"),
        "{}",
        run.dump()
    );
}

#[test]
fn a_request_behind_an_answered_opener_gets_its_whole_timeout() {
    // Discovery opens Pocket ID's connection in about 3 round trips (TCP, TLS, the
    // request); the JWKS, token and health requests wait for it, then need one round
    // trip. An opener that got its answer leaves them their whole --timeout: a slow
    // path is not a timeout. (Only an opener that got none charges its wait.)
    let run = common::demo(
        &[],
        &[
            "--rtt",
            "1s",
            "--timeout",
            "3800ms",
            "--deadline",
            "60s",
            "--no-login",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.dump());
    for id in ["idp.discovery", "idp.jwks", "idp.token", "idp.health"] {
        assert_eq!(run.check(id)["status"], "pass", "{id}\n{}", run.dump());
    }
}
