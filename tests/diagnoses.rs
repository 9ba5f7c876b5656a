//! Every lab fault under every lab variant: the real binary against the lab, asserting
//! the exit code, the first failing (else warning) check and a substring of its hint,
//! and that no finding or hint is empty or quotes a library's error text. The same
//! table generates the README's "What ssoprobe diagnoses" section; a test fails when
//! the two drift (`SSOPROBE_BLESS=1 cargo test --test diagnoses` rewrites it).

// They run the binary against the embedded lab.
#![cfg(feature = "lab")]

mod common;

use common::{Run, run};
use std::sync::Mutex;

/// One fault's diagnosis.
struct Scenario {
    /// The lab fault.
    fault: &'static str,
    /// The exit code.
    exit: i32,
    /// The first failing check, else the first warning one.
    check: &'static str,
    /// Its status.
    status: &'static str,
    /// A substring of its hint.
    hint: &'static str,
    /// The fix, in a few words, for the README.
    fix: &'static str,
    /// Extra `demo` arguments.
    args: &'static [&'static str],
}

const fn s(
    fault: &'static str,
    exit: i32,
    check: &'static str,
    status: &'static str,
    hint: &'static str,
    fix: &'static str,
) -> Scenario {
    Scenario {
        fault,
        exit,
        check,
        status,
        hint,
        fix,
        args: &[],
    }
}

/// A configuration fault the probe does not see (or sees later): with `--doctor`, the
/// `config.*` checks name it.
const fn d(
    fault: &'static str,
    exit: i32,
    check: &'static str,
    status: &'static str,
    hint: &'static str,
    fix: &'static str,
) -> Scenario {
    Scenario {
        args: &["--doctor"],
        ..s(fault, exit, check, status, hint, fix)
    }
}

/// A fault of the oauth2-proxy gateway: `demo --gateway oauth2-proxy`.
const fn o(
    fault: &'static str,
    exit: i32,
    check: &'static str,
    status: &'static str,
    hint: &'static str,
    fix: &'static str,
) -> Scenario {
    Scenario {
        args: &["--gateway", "oauth2-proxy"],
        ..s(fault, exit, check, status, hint, fix)
    }
}

const SCENARIOS: &[Scenario] = &[
    s(
        "site-public",
        2,
        "service.redirect",
        "fail",
        "no Access application covers",
        "add a self-hosted Access application for the hostname; proxy its DNS record",
    ),
    s(
        "wrong-team",
        2,
        "service.redirect",
        "fail",
        "another Zero Trust organization",
        "find the account that owns the hostname's application, or correct --team",
    ),
    s(
        "challenge",
        2,
        "service.redirect",
        "fail",
        "Bot Fight Mode",
        "skip WAF/bot rules for the path; Bot Fight Mode cannot be skipped",
    ),
    s(
        "service-auth-only",
        2,
        "service.redirect",
        "fail",
        "Service Auth",
        "add an Allow policy for people, or probe with a service token",
    ),
    // A browser still gets the login: the chain goes on shaped like one, and passes.
    s(
        "managed-oauth",
        1,
        "service.redirect",
        "warn",
        "turn off Managed OAuth for the application (Zero Trust → Access → Applications → the application) if scripts",
        "turn off Managed OAuth if scripts should not need OAuth tokens",
    ),
    s(
        "managed-oauth-everyone",
        2,
        "service.redirect",
        "fail",
        "turn off Managed OAuth for the application (Zero Trust → Access → Applications → the application), or probe it with a service token",
        "turn off Managed OAuth, or probe with a service token",
    ),
    s(
        "no-instant-auth",
        1,
        "access.login",
        "warn",
        "Instant Auth",
        "keep Pocket ID as the only login method and turn on Instant Auth",
    ),
    s(
        "idp-chooser-via-team",
        1,
        "access.login",
        "warn",
        "Instant Auth",
        "keep Pocket ID as the only login method and turn on Instant Auth",
    ),
    s(
        "wrong-auth-url",
        2,
        "access.login",
        "fail",
        "set Auth URL to https://id.example.com/authorize",
        "set Cloudflare's Auth URL to Pocket ID's authorization endpoint",
    ),
    s(
        "no-pkce",
        2,
        "idp.authorize",
        "fail",
        "PKCE",
        "tick PKCE in Cloudflare's identity provider settings",
    ),
    s(
        "unknown-client",
        2,
        "idp.authorize",
        "fail",
        "App ID must be the Client ID",
        "set Cloudflare's App ID to the Pocket ID client's id",
    ),
    s(
        "callback-not-registered",
        2,
        "idp.authorize",
        "fail",
        "add exactly https://xyz.cloudflareaccess.com/cdn-cgi/access/callback",
        "register the team callback in the Pocket ID client",
    ),
    s(
        "callback-trailing-slash",
        2,
        "idp.authorize",
        "fail",
        "Access sends https://xyz.cloudflareaccess.com/cdn-cgi/access/callback/, which is not its team callback https://xyz.cloudflareaccess.com/cdn-cgi/access/callback",
        "make Access send its team callback, and register exactly that URL",
    ),
    s(
        "issuer-mismatch",
        2,
        "idp.discovery",
        "fail",
        "APP_URL=https://id.example.com",
        "set Pocket ID's APP_URL to its public https URL",
    ),
    s(
        "internal-url",
        2,
        "idp.discovery",
        "fail",
        "INTERNAL_APP_URL",
        "set APP_URL to the public URL; keep the internal one in INTERNAL_APP_URL",
    ),
    s(
        "jwks-empty",
        2,
        "idp.jwks",
        "fail",
        "Failed to verify oidc token",
        "restore Pocket ID's signing key (its data volume), then restart it",
    ),
    s(
        "token-404",
        2,
        "idp.token",
        "fail",
        "not forwarding /api",
        "forward /api to Pocket ID; set Cloudflare's Token URL to /api/oidc/token",
    ),
    s(
        "token-challenge",
        2,
        "idp.token",
        "fail",
        "WAF custom rule",
        "skip security features for /api/oidc/token",
    ),
    s(
        "token-blocked-for-access",
        2,
        "access.callback",
        "fail",
        "User-Agent cloudflare-access",
        "skip the WAF or bot rule that stops Cloudflare's own token request",
    ),
    s(
        "token-url-wrong",
        2,
        "access.callback",
        "fail",
        "set the Token URL of Access's login method to https://id.example.com/api/oidc/token",
        "set Cloudflare's Token URL to Pocket ID's /api/oidc/token",
    ),
    s(
        "idp-down",
        2,
        "idp.authorize",
        "fail",
        "service behind it is down",
        "start Pocket ID; check the tunnel's ingress rule",
    ),
    s(
        "idp-behind-tunnel-down",
        2,
        "idp.authorize",
        "fail",
        "cloudflared",
        "start cloudflared for Pocket ID's hostname",
    ),
    Scenario {
        args: &["--timeout", "1s", "--deadline", "20s"],
        ..s(
            "idp-slow",
            2,
            "idp.authorize",
            "fail",
            "did not answer in time",
            "find what stalls Pocket ID or its proxy",
        )
    },
    s(
        "cert-expiring",
        1,
        "tls.service.example.com",
        "warn",
        "renew the certificate of service.example.com",
        "renew the certificate (or fix its automatic renewal)",
    ),
    s(
        "cert-expired",
        2,
        "tls.id.example.com",
        "fail",
        "renew the certificate of id.example.com",
        "renew the certificate",
    ),
    s(
        "passkey-revoked",
        2,
        "passkey.login",
        "fail",
        "re-enrol",
        "enrol the monitoring user's passkey again",
    ),
    s(
        "user-disabled",
        2,
        "passkey.login",
        "fail",
        "enable the monitoring user",
        "enable the user in Pocket ID",
    ),
    s(
        "wrong-rp-id",
        2,
        "passkey.login",
        "fail",
        "APP_URL=https://id.example.com",
        "set Pocket ID's APP_URL to the host users log in at",
    ),
    // Hostile: the session must not be taken to another host.
    s(
        "interaction-elsewhere",
        2,
        "idp.code",
        "fail",
        "only to its own /authorize",
        "find the proxy that rewrites Pocket ID's answers; check its APP_URL",
    ),
    s(
        "user-not-allowed",
        2,
        "idp.code",
        "fail",
        "allowed group",
        "add the monitoring user to an allowed group of the client",
    ),
    s(
        "access-bad-secret",
        2,
        "access.callback",
        "fail",
        "Client secret",
        "copy the client's secret into Cloudflare's identity provider",
    ),
    s(
        "access-jwks-unreachable",
        2,
        "access.callback",
        "fail",
        "Certificate URL",
        "set Cloudflare's Certificate URL to Pocket ID's JWKS, reachable from Cloudflare",
    ),
    s(
        "jwks-blocked-for-access",
        2,
        "access.callback",
        "fail",
        "User-Agent cloudflare-access",
        "skip the WAF or bot rule that stops Cloudflare's own request for the keys",
    ),
    s(
        "access-policy-deny",
        2,
        "access.callback",
        "fail",
        "policy",
        "add the monitoring user to an Allow policy",
    ),
    s(
        "clock-skew",
        2,
        "service.reach",
        "fail",
        "clock",
        "set the clocks right (NTP) where the token is issued or checked",
    ),
    // Only a service token meets this one (tests/login.rs); the demo's login passes.
    s(
        "no-service-auth",
        0,
        "",
        "",
        "",
        "add a Service Auth policy that admits the token",
    ),
    s(
        "tunnel-down",
        2,
        "service.reach",
        "fail",
        "cloudflared",
        "start cloudflared for the site's tunnel",
    ),
    s(
        "origin-down",
        2,
        "service.reach",
        "fail",
        "service behind it is down",
        "start the site's service; check the tunnel's ingress rule",
    ),
    s(
        "client-no-callback",
        2,
        "idp.authorize",
        "fail",
        "add exactly https://xyz.cloudflareaccess.com/cdn-cgi/access/callback",
        "add Access's callback to the Pocket ID client (Pocket ID ≥ 2.10 refuses clients without one)",
    ),
    s(
        "callback-other-team",
        2,
        "idp.authorize",
        "fail",
        "add exactly https://xyz.cloudflareaccess.com/cdn-cgi/access/callback",
        "register this team's callback; the old team's can go",
    ),
    s(
        "par-required",
        2,
        "idp.authorize",
        "fail",
        "most likely: turn off \"Requires Pushed Authorization Requests\" on the Cloudflare client",
        "turn off \"Requires Pushed Authorization Requests\" on the Pocket ID client: Access does not push its requests (`--api-key-file` confirms it)",
    ),
    s(
        "idp-database-readonly",
        2,
        "idp.authorize",
        "fail",
        "else: let Pocket ID write to its database again",
        "let Pocket ID write to its database again (disk space, a read-write volume); `--api-key-file` rules out PAR",
    ),
    s(
        "public-client-no-pkce",
        2,
        "idp.authorize",
        "fail",
        "tick 'PKCE'",
        "turn on PKCE in Access: public clients must use it",
    ),
    s(
        "secret-expired",
        2,
        "access.callback",
        "fail",
        "Client secret",
        "create a new client secret in Pocket ID and paste it into Access",
    ),
    s(
        "bypass-everyone",
        2,
        "service.redirect",
        "fail",
        "a Bypass policy lets everyone in",
        "remove the Bypass policy or narrow it to public paths (`config.policy` names it)",
    ),
    s(
        "scopes-without-email",
        2,
        "access.login",
        "fail",
        "add email to the OIDC scopes of Access's Pocket ID login method",
        "ask for the scopes openid email profile in Access's login method",
    ),
    d(
        "scope-unsupported",
        1,
        "config.scopes",
        "warn",
        "remove offline",
        "remove the scope Pocket ID does not offer (it ignores it)",
    ),
    s(
        "email-claim-name",
        2,
        "access.callback",
        "fail",
        "set the Email claim of Access's login method to email",
        "set the login method's Email claim to email",
    ),
    s(
        "userinfo-fails",
        2,
        "access.callback",
        "fail",
        "give the monitoring user an e-mail address in Pocket ID",
        "give the monitoring user an e-mail address in Pocket ID",
    ),
    s(
        "error-text-markup",
        2,
        "idp.authorize",
        "fail",
        "Pocket ID's own words",
        "read Pocket ID's error as text: every report escapes it (serve's pages included)",
    ),
    d(
        "groups-claim-display-name",
        2,
        "config.policy",
        "fail",
        "change the rule's claim value to probers",
        "match the groups claim on Pocket ID's group name, not its display name",
    ),
    d(
        "groups-claim-missing",
        2,
        "config.policy",
        "fail",
        "add the scope groups",
        "add the scope groups to the login method (policies match Pocket ID's group name)",
    ),
    d(
        "pkce-not-enforced",
        1,
        "config.pkce",
        "warn",
        "turn on PKCE on the Pocket ID client",
        "require PKCE on the Pocket ID client too",
    ),
    d(
        "secret-expiring",
        1,
        "config.client",
        "warn",
        "before the old one expires",
        "create a new client secret and paste it into Access before the old one expires",
    ),
    d(
        "reauth-required",
        1,
        "config.client",
        "warn",
        "Requires re-authentication",
        "turn off \"Requires re-authentication\" unless intended",
    ),
    d(
        "app-hides-idp",
        2,
        "config.app",
        "fail",
        "to the application's login methods",
        "add Pocket ID to the application's login methods",
    ),
    d(
        "instant-auth-ambiguous",
        1,
        "config.app",
        "warn",
        "exactly one login method",
        "allow only Pocket ID when Instant Auth is on",
    ),
    d(
        "policy-login-method",
        2,
        "config.policy",
        "fail",
        "Emails: probe@example.com",
        "drop the login-method requirement, or require Pocket ID's",
    ),
    d(
        "approval-required",
        1,
        "config.policy",
        "warn",
        "without approval by an approver",
        "give the monitoring user an Allow policy without human approval",
    ),
    d(
        "tunnel-degraded",
        1,
        "config.tunnel",
        "warn",
        "pending reconnect",
        "restart the connector whose connections are pending reconnect",
    ),
    d(
        "ingress-missing",
        2,
        "service.reach",
        "fail",
        "add a public hostname service.example.com",
        "add the public hostname to the tunnel's configuration",
    ),
    d(
        "origin-404",
        2,
        "service.reach",
        "fail",
        "make the application behind the tunnel serve https://service.example.com/",
        "serve the site's URL from the application the public hostname points at",
    ),
    d(
        "origin-access-aud",
        2,
        "config.tunnel",
        "fail",
        "set the AUD tag",
        "set the ingress rule's Access AUD tag to the application's",
    ),
    d(
        "dns-not-tunnel",
        2,
        "config.tunnel",
        "fail",
        "repoint the CNAME service.example.com",
        "point the hostname's CNAME at the tunnel that serves it",
    ),
    d(
        "idp-behind-access",
        2,
        "config.app",
        "fail",
        "do not protect id.example.com with Access",
        "keep Pocket ID out of Access, or bypass its token and JWKS paths",
    ),
    d(
        "cf-token-missing-permission",
        1,
        "config.tunnel",
        "warn",
        "Account → Cloudflare Tunnel → Read",
        "add the named Read permission to the API token",
    ),
    d(
        "cf-api-rate-limited",
        0,
        "",
        "",
        "",
        "nothing: doctor waits for a short Retry-After and reads on",
    ),
    d(
        "cf-api-rate-limit-exhausted",
        2,
        "config.token",
        "fail",
        "wait for the Retry-After time",
        "wait out Cloudflare's rate limit; find what else uses the token",
    ),
    d(
        "cf-token-cannot-list-accounts",
        2,
        "config.token",
        "fail",
        "pass --cf-account-id",
        "pass --cf-account-id (the token cannot list accounts)",
    ),
    d(
        "cf-bot-management-unavailable",
        1,
        "config.waf",
        "warn",
        "Zone → Bot Management → Read",
        "give the token Bot Management Read, or look at Bot Fight Mode in the dashboard",
    ),
    // The oauth2-proxy gateway (`demo --gateway oauth2-proxy`).
    o(
        "o2p-callback-not-registered",
        2,
        "idp.authorize",
        "fail",
        "add exactly https://service.example.com/oauth2/callback",
        "register oauth2-proxy's exact callback at its Pocket ID client",
    ),
    o(
        "o2p-redirect-http",
        2,
        "o2p.start",
        "fail",
        "--redirect-url=https://service.example.com/oauth2/callback",
        "start oauth2-proxy with an https --redirect-url",
    ),
    o(
        "o2p-pkce-required",
        2,
        "idp.authorize",
        "fail",
        "--code-challenge-method=S256",
        "start oauth2-proxy with --code-challenge-method=S256",
    ),
    o(
        "o2p-bad-secret",
        2,
        "o2p.callback",
        "fail",
        "most likely: oauth2-proxy's client secret is wrong",
        "give oauth2-proxy its client's current secret",
    ),
    o(
        "o2p-email-unverified",
        2,
        "o2p.callback",
        "fail",
        "not verified in Pocket ID",
        "verify the user's e-mail in Pocket ID",
    ),
    o(
        "o2p-domain-not-allowed",
        2,
        "o2p.callback",
        "fail",
        "most likely: --email-domain",
        "admit the user's e-mail domain in oauth2-proxy",
    ),
    o(
        "o2p-group-not-allowed",
        2,
        "o2p.callback",
        "fail",
        "most likely: --allowed-group",
        "add the user to an --allowed-group group",
    ),
    o(
        "o2p-not-running",
        2,
        "service.redirect",
        "fail",
        "most likely: oauth2-proxy exited at start-up: Pocket ID answers now and publishes the issuer https://id.example.com",
        "start oauth2-proxy again; if it exits, fix what its log's last line names",
    ),
    o(
        "o2p-upstream-down",
        2,
        "service.reach",
        "fail",
        "--upstream",
        "start the application behind oauth2-proxy",
    ),
    o(
        "o2p-sign-in-page",
        1,
        "o2p.start",
        "warn",
        "--skip-provider-button",
        "start oauth2-proxy with --skip-provider-button",
    ),
    o(
        "o2p-path-rule",
        2,
        "service.reach",
        "fail",
        "admit the monitoring user in the rule that guards this path",
        "admit the user in the path's rule (allowed_groups=, --allowed-group)",
    ),
    o(
        "o2p-cookie-split",
        1,
        "o2p.callback",
        "warn",
        "--session-store-type=redis, or ask for fewer scopes",
        "keep sessions server-side, or make them smaller",
    ),
    o(
        "o2p-cookie-session",
        1,
        "o2p.session",
        "warn",
        "--session-store-type=redis",
        "keep sessions server-side (--session-store-type=redis)",
    ),
];

/// For each fault whose first finding is a symptom several causes produce
/// (`src/checks/causes.rs`): the causes the run's evidence leaves, without and with
/// the configuration (`--doctor`) — `=cause` when one is confirmed, else the causes
/// still alive. Every variant must leave the same.
const CANDIDATES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "access-bad-secret",
        "access.callback",
        &[
            "client_secret_wrong",
            "secret_expired",
            "token_url_wrong",
            "token_blocked_for_access",
        ],
        &["client_secret_wrong", "token_blocked_for_access"],
    ),
    (
        "secret-expired",
        "access.callback",
        &[
            "client_secret_wrong",
            "secret_expired",
            "token_url_wrong",
            "token_blocked_for_access",
        ],
        &["=secret_expired"],
    ),
    (
        "token-url-wrong",
        "access.callback",
        &[
            "client_secret_wrong",
            "secret_expired",
            "token_url_wrong",
            "token_blocked_for_access",
        ],
        &["=token_url_wrong"],
    ),
    (
        "token-blocked-for-access",
        "access.callback",
        &["=token_blocked_for_access"],
        &["=token_blocked_for_access"],
    ),
    (
        "access-jwks-unreachable",
        "access.callback",
        &["certs_url_wrong", "jwks_blocked_for_access"],
        &["=certs_url_wrong"],
    ),
    (
        "jwks-blocked-for-access",
        "access.callback",
        &["=jwks_blocked_for_access"],
        &["=jwks_blocked_for_access"],
    ),
    (
        "par-required",
        "idp.authorize",
        &["par_required", "database_unwritable"],
        &["=par_required"],
    ),
    (
        "idp-database-readonly",
        "idp.authorize",
        &["par_required", "database_unwritable"],
        &["database_unwritable"],
    ),
    (
        "email-claim-name",
        "access.callback",
        &["email_claim_wrong"],
        &["=email_claim_wrong"],
    ),
    (
        "userinfo-fails",
        "access.callback",
        &["=user_without_email"],
        &["=user_without_email"],
    ),
    (
        "ingress-missing",
        "service.reach",
        &["ingress_missing", "origin_404"],
        &["=ingress_missing"],
    ),
    (
        "origin-404",
        "service.reach",
        &["ingress_missing", "origin_404"],
        &["=origin_404"],
    ),
];

/// What the evidence left on check `id` of `run`: `=cause` when one is confirmed, else
/// the living causes in declared order.
fn left(run: &Run, id: &str) -> Vec<String> {
    let check = run.check(id);
    let candidates = check["details"]["candidates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let with = |standing: &str| -> Vec<String> {
        candidates
            .iter()
            .filter(|c| c["standing"] == standing)
            .filter_map(|c| c["cause"].as_str().map(str::to_string))
            .collect()
    };
    match with("confirmed").first() {
        Some(confirmed) => vec![format!("={confirmed}")],
        None => with("alive"),
    }
}

/// The causes column of the README table for `fault`.
fn candidates_text(fault: &str) -> String {
    let Some((_, _, without, with)) = CANDIDATES.iter().find(|c| c.0 == fault) else {
        return String::new();
    };
    let words = |causes: &[&str]| -> String {
        match causes {
            [one] if one.starts_with('=') => format!("{} confirmed", one.trim_start_matches('=')),
            _ => causes.join(", "),
        }
    };
    format!("{} → with `--doctor`: {}", words(without), words(with))
}

/// Texts of libraries that must never reach a finding or a hint.
const LIBRARY_TEXTS: &[&str] = &[
    "ImmatureSignature",
    "ExpiredSignature",
    "InvalidAudience",
    "InvalidIssuer",
    "InvalidSignature",
    "InvalidToken",
    "missing field",
    "invalid type:",
    "expected value at",
    "trailing characters",
    "error sending request",
    "error decoding response",
    "hyper::",
    "reqwest::",
    "Kind(",
    "Os {",
    "Custom {",
    "relative URL without a base",
    "os error",
    "Name or service not known",
    "failed to lookup address information",
    "No such file or directory",
];

fn names(args: &[&str]) -> Vec<(String, String)> {
    let listed = run(args);
    assert_eq!(listed.code, 0, "{}", listed.dump());
    listed
        .stdout
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(char::is_whitespace)?;
            Some((name.to_string(), rest.trim().to_string()))
        })
        .collect()
}

/// The faults of both gateways: `lab --list-faults` lists the default (Access) one's,
/// `lab --gateway oauth2-proxy --list-faults` oauth2-proxy's.
fn faults() -> Vec<(String, String)> {
    let mut all = names(&["lab", "--list-faults"]);
    all.extend(names(&[
        "lab",
        "--gateway",
        "oauth2-proxy",
        "--list-faults",
    ]));
    all
}

fn variants() -> Vec<(String, String)> {
    names(&["lab", "--list-variants"])
}

/// What is wrong with one run of a scenario, if anything.
fn judge(scenario: &Scenario, variant: &str, run: &Run) -> Option<String> {
    let at = format!("fault {} under variant {variant}", scenario.fault);
    let json: serde_json::Value = match serde_json::from_str(&run.stdout) {
        Ok(v) => v,
        Err(e) => return Some(format!("{at}: stdout is not JSON ({e})\n{}", run.dump())),
    };
    if run.code != scenario.exit {
        return Some(format!(
            "{at}: exit code {} (expected {})\n{}",
            run.code,
            scenario.exit,
            run.dump()
        ));
    }
    let checks = json["checks"].as_array().cloned().unwrap_or_default();
    for c in &checks {
        let status = c["status"].as_str().unwrap_or("");
        if status != "warn" && status != "fail" {
            continue;
        }
        let id = c["id"].as_str().unwrap_or("");
        let summary = c["summary"].as_str().unwrap_or("");
        let hint = c["hint"].as_str().unwrap_or("");
        if summary.trim().is_empty() || hint.trim().is_empty() {
            return Some(format!(
                "{at}: {id} has an empty finding or hint\n{}",
                run.dump()
            ));
        }
        if let Some(t) = LIBRARY_TEXTS
            .iter()
            .find(|t| summary.contains(*t) || hint.contains(*t))
        {
            return Some(format!(
                "{at}: {id} quotes a library's text {t:?}\n{}",
                run.dump()
            ));
        }
    }
    let pick = |s: &str| checks.iter().find(|c| c["status"] == s);
    if scenario.check.is_empty() {
        return pick("fail")
            .or_else(|| pick("warn"))
            .map(|c| format!("{at}: expected no problem, got {}\n{}", c["id"], run.dump()));
    }
    let Some(first) = pick("fail").or_else(|| pick("warn")) else {
        return Some(format!("{at}: no failing or warning check\n{}", run.dump()));
    };
    let (id, status, hint) = (
        first["id"].as_str().unwrap_or(""),
        first["status"].as_str().unwrap_or(""),
        first["hint"].as_str().unwrap_or(""),
    );
    if id != scenario.check || status != scenario.status || !hint.contains(scenario.hint) {
        return Some(format!(
            "{at}: first problem {id} ({status}) with hint {hint:?}; expected {} ({}) with a hint containing {:?}\n{}",
            scenario.check,
            scenario.status,
            scenario.hint,
            run.dump()
        ));
    }
    None
}

#[test]
fn every_fault_has_a_scenario_and_every_scenario_a_fault() {
    let faults = faults();
    for (name, _) in &faults {
        assert!(
            SCENARIOS.iter().any(|s| s.fault == name),
            "fault {name} has no scenario in tests/diagnoses.rs"
        );
    }
    for s in SCENARIOS {
        assert!(
            faults.iter().any(|(n, _)| n == s.fault),
            "scenario {} names no lab fault",
            s.fault
        );
    }
}

/// Runs `judge` for every scenario under every variant, four at a time; the problems
/// it found.
fn each_scenario_and_variant(
    variants: &[(String, String)],
    judge: impl Fn(&Scenario, &str) -> Option<String> + Sync,
) -> Vec<String> {
    let jobs: Vec<(&Scenario, &str)> = SCENARIOS
        .iter()
        .flat_map(|s| variants.iter().map(move |(v, _)| (s, v.as_str())))
        .collect();
    let jobs = Mutex::new(jobs.into_iter());
    let problems = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let next = jobs.lock().unwrap().next();
                    let Some((scenario, variant)) = next else {
                        break;
                    };
                    if let Some(problem) = judge(scenario, variant) {
                        problems.lock().unwrap().push(problem);
                    }
                }
            });
        }
    });
    problems.into_inner().unwrap()
}

#[test]
fn every_fault_under_every_variant() {
    let variants = variants();
    assert!(
        variants.len() >= 2,
        "the lab has one face only: {variants:?}"
    );
    let problems = each_scenario_and_variant(&variants, |scenario, variant| {
        let mut args = vec!["--variant", variant];
        args.extend_from_slice(scenario.args);
        let run = common::demo(&[scenario.fault], &args);
        judge(scenario, variant, &run)
    });
    assert!(
        problems.is_empty(),
        "{} of {} runs went wrong:\n\n{}",
        problems.len(),
        SCENARIOS.len() * variants.len(),
        problems.join("\n\n")
    );
}

/// Every fault under every variant again, with the configuration (`--doctor`): no run
/// is a usage error, no finding or hint is empty or quotes a library; and for the
/// symptoms several causes produce, the causes left are the declared ones, without
/// and with the configuration.
#[test]
fn every_fault_under_every_variant_with_the_configuration() {
    let variants = variants();
    let problems = each_scenario_and_variant(&variants, |scenario, variant| {
        let at = format!(
            "fault {} under variant {variant} with --doctor",
            scenario.fault
        );
        let mut args = vec!["--variant", variant, "--doctor"];
        args.extend(scenario.args.iter().filter(|a| **a != "--doctor"));
        let with = common::demo(&[scenario.fault], &args);
        let mut problem = None;
        if with.code == 3 || serde_json::from_str::<serde_json::Value>(&with.stdout).is_err() {
            problem = Some(format!(
                "{at}: exit {} or no JSON report\n{}",
                with.code,
                with.dump()
            ));
        }
        let checks = with.json()["checks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in checks
            .iter()
            .filter(|c| c["status"] == "fail" || c["status"] == "warn")
        {
            let (summary, hint) = (
                c["summary"].as_str().unwrap_or(""),
                c["hint"].as_str().unwrap_or(""),
            );
            if summary.trim().is_empty() || hint.trim().is_empty() {
                problem = Some(format!(
                    "{at}: {} has an empty finding or hint\n{}",
                    c["id"],
                    with.dump()
                ));
            }
            if let Some(t) = LIBRARY_TEXTS
                .iter()
                .find(|t| summary.contains(*t) || hint.contains(*t))
            {
                problem = Some(format!("{at}: {} quotes a library's text {t:?}", c["id"]));
            }
        }
        if let Some((_, id, without_left, with_left)) =
            CANDIDATES.iter().find(|c| c.0 == scenario.fault)
        {
            let without = common::demo(&[scenario.fault], &["--variant", variant]);
            for (mode, run, want) in [
                ("without", &without, without_left),
                ("with", &with, with_left),
            ] {
                let got = left(run, id);
                if got != want.iter().map(|c| c.to_string()).collect::<Vec<_>>() {
                    problem = Some(format!(
                        "{at}: {mode} --doctor, {id} leaves {got:?}, declared {want:?}\n{}",
                        run.dump()
                    ));
                }
            }
        }
        problem
    });
    assert!(
        problems.is_empty(),
        "{} runs went wrong:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn the_healthy_lab_passes_under_every_variant() {
    for (variant, _) in variants() {
        for gateway in ["access", "oauth2-proxy"] {
            let run = common::demo(&[], &["--variant", &variant, "--gateway", gateway]);
            assert_eq!(
                run.code,
                0,
                "variant {variant}, gateway {gateway}\n{}",
                run.dump()
            );
        }
    }
}

/// The README table, from the scenarios and the lab's fault descriptions.
fn table() -> String {
    let faults = faults();
    let mut out = String::from(
        "| What is broken | First finding | Exit | The fix | Causes the evidence leaves |\n| --- | --- | --- | --- | --- |\n",
    );
    for s in SCENARIOS {
        let symptom = faults
            .iter()
            .find(|(n, _)| n == s.fault)
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
        let first = if s.check.is_empty() && s.args.contains(&"--doctor") {
            "none: every check passes".to_string()
        } else if s.check.is_empty() {
            "`service.reach` fail, with a service token".to_string()
        } else {
            format!("`{}` {}", s.check, s.status)
        };
        // The service-token scenario's exit code is the token run's, not the demo's.
        let exit = if s.check.is_empty() && !s.args.contains(&"--doctor") {
            2
        } else {
            s.exit
        };
        let with = if s.args.contains(&"--doctor") {
            " (with `--doctor`)"
        } else {
            ""
        };
        out.push_str(&format!(
            "| {symptom} (`{}`) | {first}{with} | {exit} | {} | {} |\n",
            s.fault,
            s.fix,
            candidates_text(s.fault)
        ));
    }
    out
}

#[test]
fn readme_table_is_generated_from_the_scenarios() {
    common::readme_section("diagnoses", "tests/diagnoses.rs", &table(), str::to_string);
}
