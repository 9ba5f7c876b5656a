//! What runs when: independent requests start early, dependent ones wait for exactly
//! what they need. Asserted on the order of the trace, never on times.

mod common;

use common::Lab;

/// The position of the first trace line that contains every one of `parts`.
fn at(trace: &str, parts: &[&str]) -> usize {
    trace
        .lines()
        .position(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no trace line with {parts:?} in\n{trace}"))
}

#[test]
fn the_login_overlaps_the_anonymous_chain_and_the_certs_come_first() {
    let lab = Lab::start(&[]);
    let passkey = lab.path("probe.passkey");
    let r = lab.enroll(&passkey);
    assert_eq!(r.code, 0, "{}", r.dump());
    let run = lab.check(&["--passkey", &passkey]);
    assert_eq!(run.code, 0, "{}", run.dump());
    let trace = &run.stderr;

    let login_start = at(trace, &["passkey.login", "→", "/api/webauthn/login/start"]);
    let login_finish = at(trace, &["passkey.login", "→", "/api/webauthn/login/finish"]);
    let authorize_sent = at(trace, &["idp.authorize", "→"]);
    let certs = at(trace, &["access.token", "→", "/cdn-cgi/access/certs"]);
    let team_login = at(trace, &["access.login", "→"]);
    let redirect_answered = at(trace, &["service.redirect", "←"]);

    // The passkey's login/start does not wait for the anonymous chain...
    assert!(login_start < authorize_sent, "{trace}");
    // ...and its login/finish (the session) goes out beside idp.authorize, once that
    // request has left without the session: Pocket ID answers it as an anonymous one.
    assert!(authorize_sent < login_finish, "{trace}");
    let authorize_line = trace.lines().nth(authorize_sent).unwrap();
    assert!(!authorize_line.contains("access_token"), "{trace}");
    assert!(
        run.check("idp.authorize")["summary"]
            .as_str()
            .unwrap()
            .contains("asks for a login"),
        "{}",
        run.dump()
    );

    // With --team the certs go out before the site has even answered, and the team
    // login waits for them (their connection), not the other way round.
    assert!(certs < redirect_answered, "{trace}");
    assert!(certs < team_login, "{trace}");
    // The certs are fetched once.
    assert_eq!(
        trace
            .matches("→ GET https://xyz.cloudflareaccess.com/cdn-cgi/access/certs")
            .count(),
        1,
        "{trace}"
    );
}

#[test]
fn a_broken_chain_never_opens_a_session() {
    // The site is public, so the login cannot go on: the passkey's login/start went out
    // beside the chain, but no session is opened and the login checks say why.
    let lab = Lab::start(&["site-public"]);
    let passkey = lab.path("probe.passkey");
    let r = lab.enroll(&passkey);
    assert_eq!(r.code, 0, "{}", r.dump());
    let run = lab.check(&["--passkey", &passkey]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let login = run.check("passkey.login");
    assert_eq!(login["status"], "skip", "{}", run.dump());
    assert!(
        login["summary"]
            .as_str()
            .unwrap()
            .contains("did not reach a login"),
        "{}",
        run.dump()
    );
    // No session was opened: login/finish was never sent.
    assert!(
        !run.stderr.contains("/api/webauthn/login/finish"),
        "{}",
        run.dump()
    );
}

#[test]
fn the_tls_checks_read_the_http_clients_own_handshakes() {
    // No handshake of their own: each tls.* check reports the chain the HTTP client
    // was shown by that host — a valid one here, an expired one under the fault.
    let lab = Lab::start(&["cert-expired"]);
    let run = lab.check(&[]);
    for host in [
        "service.example.com",
        "xyz.cloudflareaccess.com",
        "id.example.com",
    ] {
        let c = run.check(&format!("tls.{host}"));
        assert_eq!(
            c["details"]["handshake"],
            "the HTTP client's",
            "{host}\n{}",
            run.dump()
        );
    }
    let idp = run.check("tls.id.example.com");
    assert_eq!(idp["status"], "fail", "{}", run.dump());
    assert!(
        idp["summary"].as_str().unwrap().contains("expired"),
        "{}",
        run.dump()
    );
    assert_eq!(
        run.check("tls.service.example.com")["details"]["protocol"],
        "TLSv1.3",
        "{}",
        run.dump()
    );
}
