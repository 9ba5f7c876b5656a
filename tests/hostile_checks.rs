//! Hostile answers to the checks: a server started by each test on loopback answers for
//! the site, the team domain and Pocket ID with what a misconfigured or compromised
//! deployment could send — a page nested 80,000 deep, an AUD of multi-byte characters,
//! escape sequences and an echoed secret in an error page, a secret key in the JWKS, a
//! service URL carrying a token. The real binary must finish with a report, never
//! panic, and print none of it raw.

mod common;

use common::Run;
use common::hostile::{Answer, Server};

const HOSTS: [&str; 4] = [
    "service.example.com",
    "xyz.cloudflareaccess.com",
    "id.example.com",
    // Whoever controls the site or a hop of its chain can name this one.
    "idp.attacker.example",
];

/// The hostile server for [`HOSTS`], answering with `route` (host, path and query);
/// every answer says `server: cloudflare`.
fn start(route: impl Fn(&str, &str) -> Answer + Send + Sync + 'static) -> Server {
    Server::start(&HOSTS, move |host, target, _| {
        let mut answer = route(host, target);
        answer
            .headers
            .insert(0, ("server".to_string(), "cloudflare".to_string()));
        answer
    })
}

/// `ssoprobe check` of the pinned target against the server, cut at 8 s, with `extra`.
fn check(hostile: &Server, extra: &[&str]) -> Run {
    hostile.check(&[&["--deadline", "8s"], extra].concat())
}

/// `ssoprobe check URL` (the one-argument form) against the server, JSON, with `extra`.
fn check_url(hostile: &Server, extra: &[&str]) -> Run {
    let mut args = vec![
        "check",
        "https://service.example.com/",
        "--timeout",
        "3s",
        "--deadline",
        "8s",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    hostile.run(&args)
}

const LOGIN: &str = "https://xyz.cloudflareaccess.com/cdn-cgi/access/login/service.example.com?kid=2b908b8615d3590ac9e46d606f2fd778750e496e57ee106291aa5ad570aa069d&redirect_url=%2F";

/// A site behind Access whose team login answers `login`; Pocket ID answers 404.
fn access_then(login: impl Fn() -> Answer + Send + Sync + 'static) -> Server {
    start(move |host, _| match host {
        "service.example.com" => Answer::redirect(LOGIN),
        "xyz.cloudflareaccess.com" => login(),
        _ => Answer::new(404, "{}").header("content-type", "application/json"),
    })
}

fn report(run: &Run) -> serde_json::Value {
    assert_ne!(run.code, 101, "panicked\n{}", run.dump());
    run.json()
}

#[test]
fn a_page_nested_80000_deep_is_refused_within_the_deadline() {
    let deep = format!(
        "<html><title>Sign in ・ Cloudflare Access</title>{}",
        "<div>".repeat(80_000)
    );
    let hostile =
        access_then(move || Answer::new(200, deep.clone()).header("content-type", "text/html"));
    let run = check(&hostile, &["--format", "json"]);
    let json = report(&run);
    assert_eq!(run.code, 2, "{}", run.dump());
    let login = run.check("access.login");
    assert_eq!(login["status"], "fail", "{}", run.dump());
    run.assert_says(&login, "summary", "could not be read");
    assert!(json["checks"].as_array().unwrap().len() > 5);
}

#[test]
fn a_multibyte_aud_is_shortened_without_a_panic() {
    let hostile = start(|host, _| match host {
        "service.example.com" => Answer::redirect(
            "https://xyz.cloudflareaccess.com/cdn-cgi/access/login/service.example.com?kid=a%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9&redirect_url=%2F",
        ),
        _ => Answer::new(404, ""),
    });
    let run = check(&hostile, &["--format", "json", "--aud", &"b".repeat(64)]);
    report(&run);
    let redirect = run.check("service.redirect");
    assert_eq!(redirect["status"], "fail", "{}", run.dump());
    run.assert_says(&redirect, "summary", "aéééé");
}

#[test]
fn escape_sequences_and_echoed_secrets_never_reach_the_terminal() {
    let secret = "client-secret-echoed-0123456789";
    let page = format!(
        "<html><title>Error ・ Cloudflare Access</title><h1>\u{1b}[2J\u{1b}[32m✔ all good {secret}\r\n  ✔ forged line</h1>"
    );
    let hostile =
        access_then(move || Answer::new(403, page.clone()).header("content-type", "text/html"));
    let secret_path = hostile.secret_file("secret.txt", secret);
    for format in ["human", "json", "nagios", "junit", "prometheus"] {
        let run = check(
            &hostile,
            &[
                "--format",
                format,
                "--client-id",
                "2f0408cf-25d7-4daa-9fb9-7b072516a681",
                "--client-secret-file",
                &secret_path,
            ],
        );
        assert_ne!(run.code, 101, "{}", run.dump());
        for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains(secret),
                "{format} {name} shows the secret\n{}",
                run.dump()
            );
            assert!(
                !text.contains('\u{1b}'),
                "{format} {name} has an escape\n{}",
                run.dump()
            );
        }
        if format == "human" {
            assert!(
                !run.stdout
                    .lines()
                    .any(|l| l.trim_start().starts_with("✔ forged")),
                "{}",
                run.dump()
            );
        }
    }
}

#[test]
fn a_secret_key_in_the_jwks_fails_idp_jwks() {
    let hostile = start(|host, path| {
        match (host, path) {
        ("id.example.com", "/.well-known/jwks.json") => Answer::new(
            200,
            r#"{"keys":[{"kty":"oct","kid":"k","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}"#,
        )
        .header("content-type", "application/json"),
        _ => Answer::new(404, ""),
    }
    });
    let run = check(&hostile, &["--format", "json"]);
    report(&run);
    let jwks = run.check("idp.jwks");
    assert_eq!(jwks["status"], "fail", "{}", run.dump());
    run.assert_says(&jwks, "summary", "symmetric");
}

#[test]
fn a_token_in_the_service_url_is_not_printed() {
    let hostile = start(|_, _| Answer::new(404, ""));
    for format in ["human", "json"] {
        let run = hostile.run(&[
            "check",
            "--service",
            "https://service.example.com/app?key=s3cr3t-query-token-value",
            "--idp",
            "https://id.example.com",
            "--team",
            "xyz",
            "--timeout",
            "3s",
            "--format",
            format,
        ]);
        assert_ne!(run.code, 101, "{}", run.dump());
        assert!(
            !run.stdout.contains("s3cr3t-query-token-value"),
            "{format}\n{}",
            run.dump()
        );
    }
}

/// An authorization request to `idp_origin` for Access's callback of team xyz.
fn authorize_at(idp_origin: &str) -> String {
    format!(
        "{idp_origin}/authorize?client_id=c1&redirect_uri=https%3A%2F%2Fxyz.cloudflareaccess.com%2Fcdn-cgi%2Faccess%2Fcallback&response_type=code&scope=openid+email&state=st4te-value&code_challenge=abc&code_challenge_method=S256"
    )
}

#[test]
fn secrets_never_go_to_a_pocket_id_the_chain_chose() {
    // The team login sends the login to a host nobody named: a compromised site, a hop
    // in front of it, or a wrong Access configuration.
    let hostile = access_then(|| Answer::redirect(&authorize_at("https://idp.attacker.example")));
    let secret = hostile.secret_file("secret", "client-secret-canary-0451");
    let key = hostile.secret_file("key", "api-key-canary-0452");
    let run = check_url(
        &hostile,
        &[
            "--client-id",
            "c1",
            "--client-secret-file",
            &secret,
            "--api-key-file",
            &key,
        ],
    );
    let v = report(&run);
    let token = run.check("idp.token");
    assert_eq!(token["status"], "skip", "{}", run.dump());
    run.assert_says(
        &token,
        "summary",
        "the client secret goes only to a Pocket ID you name",
    );
    run.assert_says(&token, "summary", "--idp https://idp.attacker.example");
    let api_key = run.check("config.api_key");
    assert_eq!(api_key["status"], "skip", "{}", run.dump());
    run.assert_says(&api_key, "summary", "the Pocket ID API key goes only");
    // The attacker's host saw requests (discovery, JWKS, …), never a credential.
    let seen = hostile.heads_for("idp.attacker.example");
    assert!(!seen.is_empty(), "the discovered host was checked at all");
    for head in &seen {
        let lower = head.to_ascii_lowercase();
        assert!(
            !lower.contains("authorization:") && !lower.contains("x-api-key:"),
            "a credential went to the discovered host:\n{head}"
        );
        assert!(!head.contains("canary"), "{head}");
    }
    assert!(!run.stdout.contains("canary") && !run.stderr.contains("canary"));
    assert_eq!(
        v["discovered"]["idp"]["value"],
        "https://idp.attacker.example"
    );
}

#[test]
fn an_authorization_request_the_site_itself_sends_is_not_adopted() {
    // No Access in front: the site redirects straight to an authorize URL that names
    // Access's callback. Nothing of it is Access's doing; nothing goes there.
    let hostile = start(|host, _| match host {
        "service.example.com" => Answer::redirect(&authorize_at("https://idp.attacker.example")),
        _ => Answer::new(404, "{}").header("content-type", "application/json"),
    });
    let run = check_url(&hostile, &[]);
    report(&run);
    assert_eq!(
        run.check("service.redirect")["status"],
        "fail",
        "{}",
        run.dump()
    );
    let discovery = run.check("idp.discovery");
    assert_eq!(discovery["status"], "skip", "{}", run.dump());
    // service.redirect found no Access login: nothing after it is followed.
    run.assert_says(&discovery, "summary", "IdP unknown: pass --idp");
    assert!(
        hostile.heads_for("idp.attacker.example").is_empty(),
        "{:?}",
        hostile.heads_for("idp.attacker.example")
    );
}

#[test]
fn a_discovered_idp_is_a_host_name_on_https_443_without_user_info() {
    for (idp, why) in [
        (
            "https://127.0.0.64:2222",
            "names an address, not a host name",
        ),
        ("https://[::1]", "names an address, not a host name"),
        (
            "https://idp.attacker.example:8443",
            "names a port other than 443",
        ),
        (
            "https://probe:hunter2pw@idp.attacker.example",
            "carries a user name or password",
        ),
    ] {
        let to = authorize_at(idp);
        let hostile = access_then(move || Answer::redirect(&to));
        let run = check_url(&hostile, &[]);
        let v = report(&run);
        for id in ["idp.discovery", "idp.jwks", "idp.token", "idp.health"] {
            let c = run.check(id);
            assert_eq!(c["status"], "skip", "{idp}: {}", run.dump());
            run.assert_says(&c, "summary", why);
        }
        // No TLS check, no request, for the address; no password printed.
        let checks = v["checks"].as_array().unwrap();
        assert!(
            checks
                .iter()
                .all(|c| !c["id"].as_str().unwrap_or_default().starts_with("tls.127")),
            "{idp}: {}",
            run.dump()
        );
        assert!(
            hostile.heads_for("idp.attacker.example").is_empty(),
            "{idp}"
        );
        assert!(
            !run.stdout.contains("hunter2pw") && !run.stderr.contains("hunter2pw"),
            "{}",
            run.dump()
        );
    }
}
