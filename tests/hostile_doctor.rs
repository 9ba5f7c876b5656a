//! Hostile answers to `doctor`: a server started by each test on loopback answers for
//! Cloudflare's API and Pocket ID's admin API with what a misconfigured or compromised
//! account could send — an Access group that includes itself 3,000 times, lists longer
//! than ssoprobe reads, a client with 90 callback URLs of 7,000 characters. The real
//! binary must finish with a report within its deadline, never pass on a list it read
//! only in part, and never print an answer's list whole.

mod common;

use common::Run;
use common::hostile::{Answer, Server, TARGET};
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

const CF_API: &str = "api.cloudflare.com";
const IDP: &str = "id.example.com";
const HOSTS: [&str; 3] = [CF_API, IDP, "service.example.com"];
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const CALLBACK: &str = "https://xyz.cloudflareaccess.com/cdn-cgi/access/callback";

fn not_found() -> Answer {
    Answer::new(404, r#"{"error":"not found"}"#).header("content-type", "application/json")
}

/// The hostile server for [`HOSTS`], answering with `route` (host, path and query), and
/// the files `doctor` reads: a Cloudflare API token and a Pocket ID API key.
fn start(route: impl Fn(&str, &str) -> Answer + Send + Sync + 'static) -> Server {
    let server = Server::start(&HOSTS, move |host, target, _| route(host, target));
    server.secret_file("cf-token.txt", "hostile-cf-token-0123456789abcdefghijkl");
    server.secret_file("api-key.txt", "hostile-api-key-0123456789abcdef");
    server
}

/// `ssoprobe doctor` against the server.
trait Doctor {
    /// `ssoprobe doctor` against it with `extra` arguments, killed (and the test failed)
    /// if it has not ended after a minute: a guard against a hang, not a timing bound.
    fn doctor(&self, extra: &[&str]) -> Run;
    /// `doctor` reading Cloudflare's API with the token file, with `extra`.
    fn doctor_cloudflare(&self, extra: &[&str]) -> Run;
    /// `doctor` reading Pocket ID's admin API with the API key file for client
    /// `client-1`, with `extra`.
    fn doctor_pocket_id(&self, extra: &[&str]) -> Run;
}

impl Doctor for Server {
    fn doctor(&self, extra: &[&str]) -> Run {
        let started = Instant::now();
        let mut child = common::bin()
            .arg("doctor")
            .args(TARGET)
            .args(["--user", "probe@example.com"])
            .args(&self.flags)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ssoprobe");
        // Read both pipes on their own threads: a full pipe must not stall the run.
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut status = None;
        while started.elapsed() < Duration::from_secs(60) {
            if let Some(s) = child.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let killed = status.is_none();
        if killed {
            let _ = child.kill();
        }
        // Reaps it (after `try_wait` saw it end, this returns at once).
        let _ = child.wait();
        let run = Run {
            code: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
            elapsed: started.elapsed(),
        };
        assert!(
            !killed,
            "doctor was still running after a minute\n{}",
            run.dump()
        );
        assert_ne!(run.code, 101, "panicked\n{}", run.dump());
        run
    }

    fn doctor_cloudflare(&self, extra: &[&str]) -> Run {
        let token = self.path("cf-token.txt");
        let mut args = vec![
            "--cf-api-url",
            "https://api.cloudflare.com/client/v4",
            "--cf-account-id",
            ACCOUNT,
            "--cf-api-token-file",
            &token,
        ];
        args.extend_from_slice(extra);
        self.doctor(&args)
    }

    fn doctor_pocket_id(&self, extra: &[&str]) -> Run {
        let key = self.path("api-key.txt");
        let mut args = vec!["--api-key-file", &key, "--client-id", "client-1"];
        args.extend_from_slice(extra);
        self.doctor(&args)
    }
}

/// A Cloudflare list envelope of one page.
fn cf_list(items: serde_json::Value) -> Answer {
    let n = items.as_array().map_or(0, Vec::len);
    Answer::json(serde_json::json!({
        "success": true, "errors": [], "messages": [], "result": items,
        "result_info": {"page": 1, "per_page": 50, "count": n, "total_count": n, "total_pages": 1}
    }))
}

/// Cloudflare's API for an account whose site is covered by one application, whose one
/// Allow policy includes the Access group `groups[0]`; the other paths answer empty.
fn cloudflare(path: &str, groups: &serde_json::Value) -> Answer {
    let path = path.split('?').next().unwrap_or_default();
    let Some(rest) = path.strip_prefix("/client/v4/") else {
        return not_found();
    };
    let account = format!("accounts/{ACCOUNT}/");
    match rest.strip_prefix(account.as_str()).unwrap_or(rest) {
        "user/tokens/verify" | "tokens/verify" => Answer::json(serde_json::json!({
            "success": true, "errors": [], "result": {"id": "t", "status": "active"}
        })),
        "access/organizations" => Answer::json(serde_json::json!({
            "success": true, "errors": [],
            "result": {"auth_domain": "xyz.cloudflareaccess.com", "name": "xyz"}
        })),
        "access/identity_providers" => cf_list(serde_json::json!([{
            "id": "pid", "name": "Pocket ID", "type": "oidc",
            "config": {
                "client_id": "client-1",
                "auth_url": "https://id.example.com/authorize",
                "token_url": "https://id.example.com/api/oidc/token",
                "certs_url": "https://id.example.com/.well-known/jwks.json",
                "pkce_enabled": true,
                "scopes": ["openid", "email", "profile"]
            }
        }])),
        "access/apps" => cf_list(serde_json::json!([{
            "id": "app", "name": "Service", "type": "self_hosted",
            "domain": "service.example.com", "allowed_idps": ["pid"],
            "auto_redirect_to_identity": true
        }])),
        "access/groups" => cf_list(groups.clone()),
        "access/apps/app/policies" => cf_list(serde_json::json!([{
            "id": "p1", "name": "Staff", "decision": "allow", "precedence": 1,
            "include": [{"group": {"id": groups[0]["id"]}}]
        }])),
        _ => cf_list(serde_json::json!([])),
    }
}

fn report(run: &Run) -> serde_json::Value {
    let json = run.json();
    assert!(
        json["checks"].as_array().is_some_and(|c| c.len() > 5),
        "{}",
        run.dump()
    );
    json
}

#[test]
fn a_group_that_includes_itself_3000_times_is_named_within_the_deadline() {
    let include: Vec<serde_json::Value> = (0..3_000)
        .map(|_| serde_json::json!({"group": {"id": "loop"}}))
        .collect();
    let groups = serde_json::json!([{"id": "loop", "name": "Loop", "include": include}]);
    // The group list alone is about 75 KB: well under any cap on an answer's size.
    assert!(groups.to_string().len() > 70_000);
    let hostile = start(move |host, path| match host {
        CF_API => cloudflare(path, &groups),
        _ => not_found(),
    });
    let run = hostile.doctor_cloudflare(&["--deadline", "3s", "--format", "json"]);
    report(&run);
    let policy = run.check("config.policy");
    assert_eq!(policy["status"], "warn", "{}", run.dump());
    run.assert_says(&policy, "summary", "cannot tell");
    run.assert_says(&policy, "summary", "\"Loop\" → \"Loop\"");
    run.assert_says(&policy, "hint", "Access groups");
}

#[test]
fn groups_that_include_each_other_are_a_cycle_not_a_guess() {
    let groups = serde_json::json!([
        {"id": "a", "name": "Alpha", "include": [{"group": {"id": "b"}}]},
        {"id": "b", "name": "Beta", "include": [{"group": {"id": "a"}}, {"email": {"email": "someone@example.com"}}]}
    ]);
    let hostile = start(move |host, path| match host {
        CF_API => cloudflare(path, &groups),
        _ => not_found(),
    });
    let run = hostile.doctor_cloudflare(&["--format", "json"]);
    report(&run);
    let policy = run.check("config.policy");
    assert_eq!(policy["status"], "warn", "{}", run.dump());
    run.assert_says(&policy, "summary", "\"Alpha\" → \"Beta\" → \"Alpha\"");
}

#[test]
fn a_cloudflare_list_longer_than_ssoprobe_reads_says_how_long() {
    let groups = serde_json::json!([{"id": "g", "name": "Staff", "include": []}]);
    // 150 pages of one application each; ssoprobe reads 100.
    let hostile = start(move |host, target| match host {
        CF_API if target.contains("/access/apps?") => {
            let page = page_of(target, &["page="]);
            Answer::json(serde_json::json!({
                "success": true, "errors": [],
                "result": [{"id": format!("app-{page}"), "name": "x", "type": "self_hosted", "domain": format!("a{page}.example.com")}],
                "result_info": {"page": page, "per_page": 1, "count": 1, "total_count": 150, "total_pages": 150}
            }))
        }
        CF_API => cloudflare(target, &groups),
        _ => not_found(),
    });
    let run = hostile.doctor_cloudflare(&["--format", "json"]);
    report(&run);
    let app = run.check("config.app");
    assert_eq!(app["status"], "fail", "{}", run.dump());
    run.assert_says(&app, "summary", "100 pages of 150");
    run.assert_says(&app, "hint", "never judges from part of one");
}

/// Pocket ID's list envelope: one item per page, `total` pages.
fn pid_page(item: serde_json::Value, page: u64, total: u64) -> Answer {
    Answer::json(serde_json::json!({
        "data": [item],
        "pagination": {"totalPages": total, "totalItems": total, "currentPage": page, "itemsPerPage": 1}
    }))
}

/// The page number a request target asks for after one of `keys` (1 when absent).
fn page_of(target: &str, keys: &[&str]) -> u64 {
    target
        .split(['?', '&'])
        .find_map(|p| keys.iter().find_map(|k| p.strip_prefix(k)))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Pocket ID: discovery, the client `client-1` as `client`, a passkey for user `u1`;
/// the lists of clients and users as `clients` and `users` answer.
fn pocket_id(
    target: &str,
    client: &serde_json::Value,
    clients: &dyn Fn(u64) -> Answer,
    users: &dyn Fn(u64) -> Answer,
) -> Answer {
    let path = target.split('?').next().unwrap_or_default();
    let page = page_of(target, &["pagination%5Bpage%5D=", "pagination[page]="]);
    match path {
        "/.well-known/openid-configuration" => Answer::json(serde_json::json!({
            "issuer": "https://id.example.com",
            "authorization_endpoint": "https://id.example.com/authorize",
            "token_endpoint": "https://id.example.com/api/oidc/token",
            "jwks_uri": "https://id.example.com/.well-known/jwks.json",
            "scopes_supported": ["openid", "profile", "email", "groups"],
            "id_token_signing_alg_values_supported": ["RS256"]
        })),
        "/api/oidc/clients" => clients(page),
        "/api/oidc/clients/client-1" => Answer::json(client.clone()),
        "/api/users" => users(page),
        "/api/users/u1/webauthn-credentials" => Answer::json(serde_json::json!([{"id": "k"}])),
        _ => not_found(),
    }
}

fn user(id: &str, email: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "username": id, "email": email, "disabled": false, "userGroups": []})
}

fn good_client() -> serde_json::Value {
    serde_json::json!({
        "id": "client-1", "name": "Cloudflare Access", "callbackURLs": [CALLBACK],
        "pkceEnabled": true, "isPublic": false
    })
}

#[test]
fn a_pocket_id_list_longer_than_ssoprobe_reads_never_passes() {
    // 150 pages of one client each, and a search whose match is on page 101: ssoprobe
    // reads 100 pages.
    let hostile = start(|host, target| match host {
        IDP => pocket_id(
            target,
            &good_client(),
            &|page| {
                pid_page(
                    serde_json::json!({"id": format!("c-{page}"), "name": "x", "callbackURLs": []}),
                    page,
                    150,
                )
            },
            &|page| {
                let email = if page == 101 {
                    "probe@example.com".to_string()
                } else {
                    format!("probe{page}@example.com")
                };
                pid_page(user(&format!("u{page}"), &email), page, 150)
            },
        ),
        _ => not_found(),
    });
    let run = hostile.doctor_pocket_id(&["--format", "json"]);
    report(&run);
    let api_key = run.check("config.api_key");
    assert_eq!(api_key["status"], "fail", "{}", run.dump());
    run.assert_says(&api_key, "summary", "100 pages of 150");
    assert!(!api_key["hint"].as_str().unwrap().is_empty());
    let user = run.check("config.user");
    assert_eq!(user["status"], "fail", "{}", run.dump());
    run.assert_says(&user, "summary", "100 pages of 150");
    assert!(
        !user["summary"].as_str().unwrap().contains("no user"),
        "{}",
        run.dump()
    );
    // The client itself is read by its id: the cut list does not make it "missing".
    assert_eq!(
        run.check("config.client")["status"],
        "pass",
        "{}",
        run.dump()
    );
}

#[test]
fn ninety_callbacks_of_7000_characters_make_a_short_finding() {
    let long: Vec<String> = (0..90)
        .map(|i| format!("https://h{i}.example.com/{}", "é".repeat(3_500)))
        .collect();
    let client = serde_json::json!({
        "id": "client-1", "name": "Cloudflare Access", "callbackURLs": long,
        "pkceEnabled": true
    });
    let hostile = start(move |host, target| match host {
        IDP => pocket_id(
            target,
            &client,
            &|page| pid_page(good_client(), page, 1),
            &|page| pid_page(user("u1", "probe@example.com"), page, 1),
        ),
        _ => not_found(),
    });
    let run = hostile.doctor_pocket_id(&["--format", "json"]);
    report(&run);
    let check = run.check("config.client");
    assert_eq!(check["status"], "fail", "{}", run.dump());
    let summary = check["summary"].as_str().unwrap();
    assert!(
        summary.chars().count() < 2_000 && summary.contains("and 85 more"),
        "{} characters: {}",
        summary.chars().count(),
        summary.chars().take(3_000).collect::<String>()
    );
    // The human report has no line anywhere near the answer's size either.
    let human = hostile.doctor_pocket_id(&[]);
    let longest = human.stdout.lines().map(|l| l.chars().count()).max();
    assert!(
        longest.is_some_and(|n| n < 2_000),
        "a line of {longest:?} characters"
    );
}

#[test]
fn routes_the_api_does_not_offer_are_cannot_check_and_the_others_go_on() {
    let groups = serde_json::json!([{
        "id": "g", "name": "Staff",
        "include": [{"email": {"email": "probe@example.com"}}]
    }]);
    // A plan without tunnels (403 with a code that is neither a missing permission nor
    // the token's refusal), and a zone whose Bot Management route is not there (404,
    // not even Cloudflare's envelope).
    let hostile = start(move |host, target| match host {
        CF_API if target.contains("/cfd_tunnel") => Answer::new(
            403,
            r#"{"success":false,"errors":[{"code":10010,"message":"tunnel.api.not_entitled"}]}"#,
        )
        .header("content-type", "application/json"),
        CF_API if target.contains("/bot_management") => not_found(),
        CF_API if target.contains("/zones?") && target.contains("name=example.com") => {
            cf_list(serde_json::json!([{"id": "z1", "name": "example.com"}]))
        }
        CF_API => cloudflare(target, &groups),
        _ => not_found(),
    });
    let run = hostile.doctor_cloudflare(&["--format", "json"]);
    let json = report(&run);
    for (id, permission) in [
        ("config.tunnel", "Account → Cloudflare Tunnel → Read"),
        ("config.waf", "Zone → Bot Management → Read"),
    ] {
        let c = run.check(id);
        assert_eq!(c["status"], "warn", "{id}: {}", run.dump());
        run.assert_says(&c, "summary", "cannot check");
        run.assert_says(&c, "hint", permission);
    }
    // The others are judged: nothing asks to run again with --trace.
    for id in ["config.token", "config.app", "config.policy"] {
        assert_eq!(run.check(id)["status"], "pass", "{id}: {}", run.dump());
    }
    for c in json["checks"].as_array().unwrap() {
        assert!(
            !c["hint"].as_str().unwrap_or_default().contains("--trace"),
            "{c}"
        );
    }
}
