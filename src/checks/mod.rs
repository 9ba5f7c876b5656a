//! The checks and the runner that composes them.
//!
//! `spec.rs` declares every check (what it needs, yields and proves); `runner.rs`
//! starts each check the run asks for and lets it wait for its facts, so the order, the
//! concurrency and the skips follow from the declaration; the families (`access`,
//! `idp`, `login`, `tls`) hold the checks themselves. This file holds the run's frame:
//! the deadline's guard, `settle_unsent`, `attribute_causes`, the time thresholds
//! (`judge_time`) and what the run found.

mod access;
pub mod causes;
mod idp;
mod login;
mod o2p;
mod runner;
pub mod spec;
mod tls;

use crate::cloudflare::{self, EdgePage};
use crate::config::Config;
use crate::finding::{CheckResult, Findings, IDP_UNKNOWN, Status};
use crate::http::{Http, Response};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// The stable check ids.
pub mod ids {
    /// The site redirects anonymous visitors to this team's Access login.
    pub const SERVICE_REDIRECT: &str = "service.redirect";
    /// Access sends the login to Pocket ID with the right parameters.
    pub const ACCESS_LOGIN: &str = "access.login";
    /// Pocket ID accepts the client and callback.
    pub const IDP_AUTHORIZE: &str = "idp.authorize";
    /// The discovery document agrees with the public URL.
    pub const IDP_DISCOVERY: &str = "idp.discovery";
    /// The JWKS has usable signing keys.
    pub const IDP_JWKS: &str = "idp.jwks";
    /// The token endpoint answers like one.
    pub const IDP_TOKEN: &str = "idp.token";
    /// Pocket ID's health endpoint.
    pub const IDP_HEALTH: &str = "idp.health";
    /// The software passkey signs in to Pocket ID.
    pub const PASSKEY_LOGIN: &str = "passkey.login";
    /// Pocket ID issues a code for Access's client to Access's callback.
    pub const IDP_CODE: &str = "idp.code";
    /// ssoprobe's own code flow for the client verifies (with the client secret).
    pub const IDP_EXCHANGE: &str = "idp.exchange";
    /// Access accepts the code and sets CF_Authorization.
    pub const ACCESS_CALLBACK: &str = "access.callback";
    /// The site answers with the session.
    pub const SERVICE_REACH: &str = "service.reach";
    /// CF_Authorization verifies against the team's certs.
    pub const ACCESS_TOKEN: &str = "access.token";
    /// oauth2-proxy's `/oauth2/start` sends the login to Pocket ID with the right
    /// parameters.
    pub const O2P_START: &str = "o2p.start";
    /// oauth2-proxy accepts the code and sets its session cookie.
    pub const O2P_CALLBACK: &str = "o2p.callback";
    /// oauth2-proxy's own endpoints answer (`/ping`, `/ready`, `/oauth2/auth`,
    /// `/oauth2/userinfo`).
    pub const O2P_ENDPOINTS: &str = "o2p.endpoints";
    /// Signing out of oauth2-proxy ends the session.
    pub const O2P_SESSION: &str = "o2p.session";
    /// Prefix of the per-host certificate checks.
    pub const TLS_PREFIX: &str = "tls.";
    /// The run as a whole, reported only when it overran its deadline.
    pub const RUN: &str = "run";
    /// The run's time against `--warning`/`--critical`, reported only when they are
    /// given.
    pub const RUN_TIME: &str = "run.time";
}

/// What a JWT or JWK failure means, in words rather than the library's (no
/// `ImmatureSignature` or `InvalidAudience` in a finding). Claim failures get their
/// values from [`verify_jwt`]'s caller; this names the kind.
pub fn jwt_problem(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => {
            "it is not a well-formed JWT".into()
        }
        K::InvalidSignature => "its signature does not verify with the key it names".into(),
        K::InvalidEcdsaKey | K::InvalidEddsaKey | K::InvalidRsaKey(_) | K::InvalidKeyFormat => {
            "the key is malformed or of the wrong type".into()
        }
        K::InvalidAlgorithmName
        | K::UnsupportedAlgorithm
        | K::InvalidAlgorithm
        | K::MissingAlgorithm => {
            "its algorithm is not the key's, or not one verifiers accept".into()
        }
        K::MissingRequiredClaim(c) => format!("it lacks the {c} claim"),
        K::InvalidClaimFormat(c) => format!("its {c} claim is malformed"),
        K::ExpiredSignature => "it has expired".into(),
        K::ImmatureSignature => "it is not valid yet (its nbf is in the future)".into(),
        K::InvalidIssuer => "its issuer (iss) is not the expected one".into(),
        K::InvalidAudience => "its audience (aud) is not the expected one".into(),
        K::InvalidSubject => "its subject (sub) is not the expected one".into(),
        _ => "it does not verify".into(),
    }
}

/// Pocket ID's URL from the gateway's answer, if its Location is an authorization
/// request for the gateway's callback (a URL whose path ends in `callback_path`) that
/// may be adopted; else why the checks skip.
fn adopted_idp(answer: &Response, callback_path: &str) -> Result<url::Url, String> {
    let Some(Ok(authorize)) = answer.location() else {
        return Err(IDP_UNKNOWN.to_string());
    };
    let mut client = false;
    let mut callback = false;
    for (k, v) in authorize.query_pairs() {
        client |= k == "client_id" && !v.is_empty();
        callback |= k == "redirect_uri"
            && url::Url::parse(&v).is_ok_and(|u| u.path().ends_with(callback_path));
    }
    if !(client && callback) {
        return Err(IDP_UNKNOWN.to_string());
    }
    if let Some(why) = implausible_idp(&authorize) {
        let origin = crate::text::server_text(&authorize.origin().ascii_serialization());
        return Err(format!(
            "skipped: IdP not adopted: the authorization request to {origin} {why}; pass --idp {origin} to check it anyway, if it really is your Pocket ID"
        ));
    }
    crate::pocketid::oidc::app_url_of_authorize(&authorize).ok_or_else(|| IDP_UNKNOWN.to_string())
}

/// Why an authorize URL is not adopted as Pocket ID, if it is not.
fn implausible_idp(authorize: &url::Url) -> Option<&'static str> {
    if authorize.scheme() != "https" {
        return Some("is not https");
    }
    if !authorize.username().is_empty() || authorize.password().is_some() {
        return Some("carries a user name or password in its URL");
    }
    if !matches!(authorize.host(), Some(url::Host::Domain(_))) {
        return Some("names an address, not a host name");
    }
    if authorize.port().is_some_and(|p| p != 443) {
        return Some("names a port other than 443");
    }
    None
}

/// Rule: a run ends with a verdict on the site. A check whose request the deadline
/// stopped before it was sent stays a skip while another check's failure explains the
/// run; when none does, it is a failure that names the wait. A run in which no check
/// decided anything gets a failing `run` check saying why: it never passes.
pub fn settle_unsent(checks: &mut Vec<CheckResult>, limit: &str) {
    if !checks.iter().any(|c| c.status == Status::Fail) {
        for c in checks.iter_mut().filter(|c| c.unsent) {
            c.status = Status::Fail;
            c.could_not_run = true;
            c.unsent = false;
            c.summary = c
                .summary
                .strip_prefix("skipped: ")
                .unwrap_or(&c.summary)
                .to_string();
            c.hint = Some(format!(
                "the run's time ran out before this check could ask: the wait named above took it; make that server answer, or give the run more time ({limit})"
            ));
        }
    }
    let decided = checks.iter().any(|c| c.status != Status::Skip);
    if !decided {
        let why = checks
            .first()
            .map(|c| {
                c.summary
                    .strip_prefix("skipped: ")
                    .unwrap_or(&c.summary)
                    .to_string()
            })
            .unwrap_or_else(|| "no check ran".into());
        let mut f = Findings::start(ids::RUN);
        f.fail_transport(
            format!("no check could decide: {why}"),
            "nothing of the login was checked, so nothing about it is known; run again with --trace to see what stopped the checks",
        );
        checks.push(f.finish(""));
    }
}

/// Pocket ID's endpoint checks: when several of them fail with the host down, the first
/// in report order names it and the others follow from it.
const IDP_ENDPOINTS: &[&str] = &[
    ids::IDP_AUTHORIZE,
    ids::IDP_DISCOVERY,
    ids::IDP_JWKS,
    ids::IDP_TOKEN,
    ids::IDP_HEALTH,
];

/// Whether a failed check found its host down: no answer at all, or a 5xx (a proxy
/// that failed the request says nothing of the host).
fn host_down(c: &CheckResult) -> bool {
    c.status == Status::Fail
        && !no_answer_in_time(c)
        && !through_proxy(c)
        && (c.could_not_run
            || c.details
                .get("status")
                .and_then(Value::as_u64)
                .is_some_and(|s| s >= 500))
}

/// A check whose request the proxy failed (unreachable, refused, or no tunnel).
fn through_proxy(c: &CheckResult) -> bool {
    c.status == Status::Fail && c.details.contains_key(crate::finding::PROXY_FAILED)
}

/// A check that asked and got no answer within its time: slow, which is not down.
fn no_answer_in_time(c: &CheckResult) -> bool {
    c.status == Status::Fail && c.details.get("no_answer_in_time") == Some(&Value::Bool(true))
}

/// The site's front proxy answers 5xx with nothing behind it: when that may be
/// oauth2-proxy, which exits at start-up and never retries, what Pocket ID's checks
/// found now tells its start-up failures apart — Pocket ID down (most likely the cause
/// then), or up and publishing the issuer `--oidc-issuer-url` must name.
fn front_proxy_alone(checks: &mut [CheckResult]) {
    let Some(at) = checks.iter().position(|c| {
        c.id == ids::SERVICE_REDIRECT
            && c.status == Status::Fail
            && c.details.get("symptom").and_then(Value::as_str) == Some("service.front_proxy_alone")
    }) else {
        return;
    };
    let down = checks
        .iter()
        .find(|c| IDP_ENDPOINTS.contains(&c.id.as_str()) && host_down(c))
        .map(|c| c.id.clone());
    let issuer = checks
        .iter()
        .find(|c| c.id == ids::IDP_DISCOVERY && c.status == Status::Pass)
        .and_then(|c| c.details.get("issuer"))
        .and_then(Value::as_str)
        .map(str::to_string);
    // Only when --gateway says oauth2-proxy stands there: without it, the front proxy
    // may hide anything.
    if checks[at]
        .details
        .get("expected_gateway")
        .and_then(Value::as_str)
        != Some(crate::config::Gateway::OAuth2Proxy.name())
    {
        return;
    }
    let proxy = "oauth2-proxy";
    let hint = match (down, issuer) {
        (Some(by), _) => format!(
            "most likely: Pocket ID is down ({by} finds it down now), so {proxy} exited at start-up and did not retry: start Pocket ID, then oauth2-proxy; else: oauth2-proxy's --oidc-issuer-url is not exactly Pocket ID's APP_URL, or its cookie secret is not 16, 24 or 32 bytes — the last line of its log says which"
        ),
        (None, Some(issuer)) => format!(
            "most likely: {proxy} exited at start-up: Pocket ID answers now and publishes the issuer {issuer} (idp.discovery), so start oauth2-proxy again (it does not retry after a Pocket ID that was down when it started); else: its --oidc-issuer-url is not exactly {issuer}, or its cookie secret is not 16, 24 or 32 bytes — if it exits again, the last line of its log says which"
        ),
        (None, None) => return,
    };
    checks[at].hint = Some(crate::redact::terminal_safe(&hint));
}

/// Makes a failure that follows from an earlier one say so, instead of giving its own
/// fix for a consequence: "follows from idp.discovery — fix that first: …". The check's
/// own finding stays; `details.follows_from` names the cause.
pub fn attribute_causes(checks: &mut [CheckResult]) {
    front_proxy_alone(checks);
    let failed = |checks: &[CheckResult], id: &str| {
        checks
            .iter()
            .find(|c| c.id == id && c.status == Status::Fail)
            .map(|c| (c.id.clone(), c.hint.clone().unwrap_or_default()))
    };
    // A request that failed on a certificate follows from that host's tls.* check.
    let mut by_tls = Vec::new();
    for i in 0..checks.len() {
        if checks[i].status != Status::Fail || !checks[i].could_not_run {
            continue;
        }
        let tls_check = checks
            .iter()
            .filter(|t| t.id.starts_with(ids::TLS_PREFIX) && t.status == Status::Fail)
            .find(|t| {
                let host = &t.id[ids::TLS_PREFIX.len()..];
                checks[i]
                    .summary
                    .contains(&format!("TLS with {host} failed"))
            })
            .map(|t| (t.id.clone(), t.hint.clone().unwrap_or_default()));
        if let Some((cause, hint)) = tls_check {
            follows(&mut checks[i], &cause, &hint);
            by_tls.push(i);
        }
    }
    // Pocket ID down, or too slow, everywhere: one finding, the others follow from it.
    // Never both words in one finding: a request that got no answer in time is slow.
    // "all" only when every endpoint checked is in the group: one that answered makes
    // it "n of its m", and Pocket ID neither down nor slow as a whole.
    type Alike = fn(&CheckResult) -> bool;
    let groups: [(Alike, &str, &str); 3] = [
        (
            host_down,
            "Pocket ID is down: all {n} of its endpoints checked fail alike",
            "{n} of Pocket ID's {m} endpoints checked fail alike",
        ),
        (
            no_answer_in_time,
            "Pocket ID answers too slowly: all {n} of its endpoints checked got no answer in time",
            "{n} of Pocket ID's {m} endpoints checked got no answer in time",
        ),
        (
            through_proxy,
            "Pocket ID is not reached through the proxy: all {n} of its endpoints checked fail alike",
            "{n} of Pocket ID's {m} endpoints checked are not reached through the proxy",
        ),
    ];
    let checked = checks
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            IDP_ENDPOINTS.contains(&c.id.as_str())
                && c.status != Status::Skip
                && !by_tls.contains(i)
        })
        .count();
    for (alike, all, some) in groups {
        let group: Vec<usize> = checks
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                IDP_ENDPOINTS.contains(&c.id.as_str()) && alike(c) && !by_tls.contains(i)
            })
            .map(|(i, _)| i)
            .collect();
        if let [root, rest @ ..] = group.as_slice()
            && !rest.is_empty()
        {
            let root_id = checks[*root].id.clone();
            let root_hint = checks[*root].hint.clone().unwrap_or_default();
            let n = rest.len() + 1;
            let lead = if n >= checked { all } else { some };
            checks[*root].summary = format!(
                "{}; {}",
                lead.replace("{n}", &n.to_string())
                    .replace("{m}", &checked.to_string()),
                checks[*root].summary
            );
            for &i in rest {
                follows(&mut checks[i], &root_id, &root_hint);
            }
        }
    }
    team_not_used(checks);
    // Which failure explains which is declared with the checks (spec::Spec::explained_by).
    for (id, causes) in spec::PROBE
        .iter()
        .filter(|s| !s.explained_by.is_empty())
        .map(|s| (s.id, s.explained_by))
    {
        let Some(i) = checks
            .iter()
            .position(|c| c.id == *id && c.status == Status::Fail)
        else {
            continue;
        };
        if checks[i].details.contains_key("follows_from") {
            continue;
        }
        if let Some((cause, hint)) = causes.iter().find_map(|c| failed(checks, c)) {
            follows(&mut checks[i], &cause, &hint);
        }
    }
}

/// A team the run was told (`--team`) that the site's Access does not use: the check of
/// that team's host (which fails when the name is mistyped: no such host) follows from
/// `service.redirect`'s finding, and comes after it, so that the team is the first
/// failure shown.
fn team_not_used(checks: &mut [CheckResult]) {
    let Some(redirect) = checks
        .iter()
        .position(|c| c.id == ids::SERVICE_REDIRECT && c.status == Status::Fail)
    else {
        return;
    };
    let Some(named) = checks[redirect]
        .details
        .get("expected_team_domain")
        .and_then(Value::as_str)
    else {
        return;
    };
    let tls_id = format!("{}{named}", ids::TLS_PREFIX);
    let hint = checks[redirect].hint.clone().unwrap_or_default();
    let Some(tls) = checks
        .iter()
        .position(|c| c.id == tls_id && c.status == Status::Fail)
    else {
        return;
    };
    if !checks[tls].details.contains_key("follows_from") {
        follows(&mut checks[tls], ids::SERVICE_REDIRECT, &hint);
    }
    if tls < redirect {
        checks[tls..=redirect].rotate_left(1);
    }
}

/// A hint's first clause (its fix): up to the first "; " or " — ", without its
/// parenthetical asides ("check that X (and Y) is running; …" → "check that X is
/// running"); an aside left open ends it.
fn first_clause(hint: &str) -> String {
    let end = ["; ", " — "]
        .iter()
        .filter_map(|sep| hint.find(sep))
        .min()
        .unwrap_or(hint.len());
    let mut out = String::new();
    let mut depth = 0usize;
    let mut rest = hint.get(..end).unwrap_or(hint);
    while let Some(c) = rest.chars().next() {
        if depth == 0 && rest.starts_with(" (") {
            if !rest.contains(')') {
                break;
            }
            depth = 1;
            rest = rest.get(2..).unwrap_or_default();
            continue;
        }
        match c {
            '(' if depth > 0 => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
        rest = rest.get(c.len_utf8()..).unwrap_or_default();
    }
    out.trim_end().to_string()
}

fn follows(check: &mut CheckResult, cause: &str, cause_hint: &str) {
    check
        .details
        .insert("follows_from".into(), Value::String(cause.to_string()));
    let own = check.hint.take().unwrap_or_default();
    if !own.is_empty() {
        check.details.insert("own_hint".into(), Value::String(own));
    }
    check.hint = Some(format!(
        "{} — this follows from {cause}; fix that first",
        first_clause(cause_hint)
    ));
}

/// Finding and hint for a response that is not what a check expected: the edge's
/// own pages, rate limiting, missing routes, server errors.
pub fn unexpected(what: &str, response: &Response) -> (String, String) {
    let (finding, hint) = unexpected_or(what, response);
    let hint = hint.unwrap_or_else(|| match response.status.as_u16() {
        404 => format!(
            "nothing is served at {} on {}: check the URL configured for it, and that the proxy routes this path to the right service",
            response.url.path(),
            response.url.host_str().unwrap_or("the host")
        ),
        _ => format!(
            "{} answered something this step of the login never gets from a working deployment; run again with --trace to see the answer",
            response.url.host_str().unwrap_or("the server")
        ),
    });
    (finding, hint)
}

/// Like [`unexpected`], but without a hint where only the calling check knows the
/// likely cause (a 404 or another status of no general meaning).
pub fn unexpected_or(what: &str, response: &Response) -> (String, Option<String>) {
    let (finding, hint) = unexpected_inner(what, response);
    // Every page of the edge carries a Ray ID: quote it the same way everywhere.
    match (cloudflare::ray_id(response), hint) {
        (Some(ray), Some(hint)) if !hint.contains(&ray) => {
            (finding, Some(format!("{hint} (Ray ID {ray})")))
        }
        (_, hint) => (finding, hint),
    }
}

fn unexpected_inner(what: &str, response: &Response) -> (String, Option<String>) {
    let status = response.status.as_u16();
    match cloudflare::classify(response) {
        Some(EdgePage::Challenge) => {
            return (
                format!(
                    "{what}: Cloudflare bot protection answered a challenge (HTTP {status}, cf-mitigated: challenge)"
                ),
                format!(
                    "a WAF rule, Security Level or Bot Fight Mode on {} challenges scripted clients; add a WAF skip rule for this path (Bot Fight Mode cannot be skipped: turn it off or use Super Bot Fight Mode rules)",
                    response.url.host_str().unwrap_or("the zone")
                )
                .into(),
            );
        }
        Some(EdgePage::Error(e)) => {
            let host = crate::text::server_text(response.url.host_str().unwrap_or("the host"));
            let (meaning, fix) = e.meaning_for(&host);
            let ray = e
                .ray
                .as_deref()
                .map(|r| format!(" (Ray ID {r})"))
                .unwrap_or_default();
            return (
                format!("{what}: {}: {meaning}", e.label()),
                Some(format!("{fix}{ray}")),
            );
        }
        Some(EdgePage::AccessError(msg)) => {
            return (
                format!(
                    "{what}: Cloudflare Access error page{}",
                    msg.map(|m| format!(": {m}")).unwrap_or_default()
                ),
                "Access answered its own error page where it should have redirected; the message names the setting (open the same URL in a browser to see the whole page, and quote its Ray ID to Cloudflare support)".to_string().into(),
            );
        }
        _ => {}
    }
    match status {
        429 => {
            let after = response
                .header("retry-after")
                .map(|r| format!(" (Retry-After: {r} s)"))
                .unwrap_or_default();
            (
                format!("{what}: rate limited, HTTP 429{after}"),
                Some("too many requests from this address; run ssoprobe less often (it never retries in a loop)".into()),
            )
        }
        404 => (format!("{what}: HTTP 404 Not Found"), None),
        500..=599 => (
            format!("{what}: HTTP {status}"),
            Some(format!(
                "the server or the proxy in front of {} is failing; check that the service is running and reachable from the proxy",
                response.url.host_str().unwrap_or("it")
            )),
        ),
        _ => (format!("{what}: unexpected HTTP {status}"), None),
    }
}

/// The whole run's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every check, in report order.
    pub checks: Vec<CheckResult>,
    /// Wall time of the run.
    pub duration: Duration,
    /// The part of the deadline that went before the checks began (the demo's lab
    /// and enrolment, a start ping): the human report adds it up with `duration`.
    pub before: Duration,
}

impl Outcome {
    /// The report of a run stopped at its deadline's guard: a check did not respect the
    /// deadline, so nothing it found can be trusted; the report still prints.
    pub fn overran(deadline: Duration) -> Outcome {
        let mut f = Findings::start(ids::RUN);
        f.fail_transport(
            format!(
                "the run did not finish within its deadline of {}; no result is reported",
                crate::timefmt::human_duration(deadline)
            ),
            "a server kept ssoprobe busy past every timeout; run again with --trace to see the last requests, and report it",
        );
        Outcome {
            checks: vec![f.finish("")],
            duration: deadline,
            before: Duration::ZERO,
        }
    }

    /// fail if any failed, warn if any warned, else pass; a run in which no check
    /// decided anything fails ([`settle_unsent`] says why).
    pub fn status(&self) -> Status {
        let Some(worst) = self
            .checks
            .iter()
            .map(|c| c.status)
            .filter(|s| *s != Status::Skip)
            .max()
        else {
            return Status::Fail;
        };
        if self
            .checks
            .iter()
            .any(|c| c.status == Status::Skip && !c.not_asked)
            && worst == Status::Pass
        {
            // Skips only follow failures; a run of only skips passed nothing.
            return Status::Warn;
        }
        worst
    }
}

/// One value the run used, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundValue {
    /// The value.
    pub value: String,
    /// "given", or where the run found it ("the Access redirect", …).
    pub from: &'static str,
}

/// What the run used for the team, the AUD, Pocket ID and the client id: given
/// (flags, environment, config file) or found on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Found {
    /// The gateway in front of the site (`access`, `oauth2-proxy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<FoundValue>,
    /// The team domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<FoundValue>,
    /// The Access application's AUD tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<FoundValue>,
    /// Pocket ID's public URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idp: Option<FoundValue>,
    /// The OIDC client id Access uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<FoundValue>,
}

impl Found {
    /// What `config` gave and what `checks` found.
    fn of(config: &Config, checks: &[CheckResult]) -> Found {
        let detail = |id: &str, key: &str| {
            checks
                .iter()
                .find(|c| c.id == id && c.status != Status::Skip)
                .and_then(|c| c.details.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let given = |v: &Option<String>| {
            v.clone().map(|value| FoundValue {
                value,
                from: "given",
            })
        };
        let found =
            |v: Option<String>, from: &'static str| v.map(|value| FoundValue { value, from });
        let idp = match config.idp_source {
            crate::config::IdpSource::Unknown => None,
            source => Some(FoundValue {
                value: crate::pocketid::oidc::normalise_base(&config.idp),
                from: source.from_text(),
            }),
        };
        Found {
            gateway: given(&config.gateway.map(|g| g.name().to_string())).or_else(|| {
                found(
                    detail(ids::SERVICE_REDIRECT, "gateway"),
                    "the site's answer",
                )
            }),
            team: given(&config.team_domain).or_else(|| {
                found(
                    detail(ids::SERVICE_REDIRECT, "team_domain"),
                    "the Access redirect",
                )
            }),
            aud: given(&config.aud)
                .or_else(|| found(detail(ids::SERVICE_REDIRECT, "aud"), "the Access redirect")),
            idp,
            client_id: given(&config.client_id)
                .or_else(|| {
                    found(
                        detail(ids::ACCESS_LOGIN, "client_id"),
                        "Access's redirect to Pocket ID",
                    )
                })
                .or_else(|| {
                    found(
                        detail(ids::O2P_START, "client_id"),
                        "oauth2-proxy's redirect to Pocket ID",
                    )
                }),
        }
    }

    /// The values the run found itself (not given), for reports.
    pub fn discovered(&self) -> Vec<(&'static str, &FoundValue)> {
        [
            ("gateway", &self.gateway),
            ("team", &self.team),
            ("aud", &self.aud),
            ("idp", &self.idp),
            ("client_id", &self.client_id),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().filter(|v| v.from != "given").map(|v| (k, v)))
        .collect()
    }
}

/// Runs every check of `config` with the client `http`.
pub async fn run(config: &Config, http: &Http) -> Outcome {
    run_found(config, http).await.0
}

/// How long a run may go past its deadline before its guard stops it.
const RUN_GUARD_SLACK: Duration = Duration::from_secs(1);

/// [`run`], with what the run used for the team, AUD, Pocket ID and client id.
///
/// Every request is bounded by the client's deadline already; a check that is not is
/// stopped [`RUN_GUARD_SLACK`] after it, and the run still ends with a report
/// ([`Outcome::overran`]).
pub async fn run_found(config: &Config, http: &Http) -> (Outcome, Found) {
    run_found_after(config, http, &Found::default()).await
}

/// [`run_found`] for settings run before (`serve`'s targets): the team and Pocket ID
/// that run found (`last`) are asked for at once — their connections open while the
/// site answers — and this run still finds and judges them itself.
pub async fn run_found_after(config: &Config, http: &Http, last: &Found) -> (Outcome, Found) {
    let found_before = |key: &str| {
        last.discovered()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.value.clone())
    };
    let hints = runner::Hints {
        team: found_before("team"),
        idp: found_before("idp").and_then(|u| url::Url::parse(&u).ok()),
    };
    let guard = http.deadline() + RUN_GUARD_SLACK;
    // The values servers hand this run are its own (redact::in_run). Boxed: the run's
    // future is large, and a worker thread's stack is not.
    let run = crate::redact::in_run(Box::pin(run_scoped(config, http, &hints)));
    let (mut outcome, found) = tokio::time::timeout_at(guard, run)
        .await
        .unwrap_or_else(|_| (Outcome::overran(config.http.deadline), Found::default()));
    if let Some(time) = judge_time(&outcome, &config.time_limits) {
        outcome.checks.push(time);
    }
    (outcome, found)
}

/// `run.time`: the checks' time (the run's, without what came before them) against the
/// thresholds of `--warning` and `--critical`, and each check's time against its own
/// (`CHECK=DURATION`), as check_http's `-w`/`-c` judge a response time. `None` without
/// thresholds. A check that did not run is not timed. The thresholds are in the
/// details (`warning_ms`, `critical_ms`, and per check under `checks`), for the
/// renderers' performance data.
pub fn judge_time(outcome: &Outcome, limits: &[crate::config::TimeLimit]) -> Option<CheckResult> {
    use serde_json::{Map, json};
    if limits.is_empty() {
        return None;
    }
    let limit = |check: &Option<String>, critical: bool| {
        limits
            .iter()
            .find(|l| l.check == *check && l.critical == critical)
            .map(|l| l.over)
    };
    let ms = |d: Duration| d.as_millis() as u64;
    let words = crate::config::duration_text;
    let took = crate::timefmt::human_duration;
    let mut subjects: Vec<Option<String>> = Vec::new();
    for l in limits {
        if !subjects.contains(&l.check) {
            subjects.push(l.check.clone());
        }
    }
    let mut details = Map::new();
    let mut per_check = Map::new();
    // (status, what was over which threshold), worst first below.
    let mut over: Vec<(Status, String)> = Vec::new();
    for subject in &subjects {
        let (warning, critical) = (limit(subject, false), limit(subject, true));
        let duration = match subject {
            None => Some(outcome.duration),
            Some(id) => outcome
                .checks
                .iter()
                .find(|c| c.id == *id && c.status != Status::Skip)
                .map(|c| c.duration),
        };
        let status = match duration {
            Some(d) if critical.is_some_and(|c| d > c) => Status::Fail,
            Some(d) if warning.is_some_and(|w| d > w) => Status::Warn,
            Some(_) => Status::Pass,
            None => Status::Skip,
        };
        let mut entry = Map::new();
        if let Some(d) = duration {
            entry.insert("duration_ms".into(), json!(ms(d)));
        }
        if let Some(w) = warning {
            entry.insert("warning_ms".into(), json!(ms(w)));
        }
        if let Some(c) = critical {
            entry.insert("critical_ms".into(), json!(ms(c)));
        }
        entry.insert("status".into(), json!(status));
        match subject {
            None => details.extend(entry),
            Some(id) => {
                per_check.insert(id.clone(), Value::Object(entry));
            }
        }
        let (Some(d), Some((level, threshold))) = (
            duration,
            match status {
                Status::Fail => critical.map(|c| ("critical", c)),
                Status::Warn => warning.map(|w| ("warning", w)),
                _ => None,
            },
        ) else {
            continue;
        };
        let text = match subject {
            None => format!(
                "the checks took {}, longer than the {level} threshold of {}",
                took(d),
                words(threshold)
            ),
            Some(id) => format!(
                "{id} took {}, longer than its {level} threshold of {}",
                took(d),
                words(threshold)
            ),
        };
        over.push((status, text));
    }
    if !per_check.is_empty() {
        details.insert("checks".into(), Value::Object(per_check));
    }
    over.sort_by_key(|(status, _)| std::cmp::Reverse(*status));
    let status = over.first().map_or(Status::Pass, |(s, _)| *s);
    let (summary, hint) = if over.is_empty() {
        (
            format!(
                "the checks took {}, and every time is within its threshold",
                took(outcome.duration)
            ),
            None,
        )
    } else {
        let slowest = outcome
            .checks
            .iter()
            .filter(|c| c.status != Status::Skip)
            .max_by_key(|c| c.duration)
            .map(|c| format!(" — the slowest check was {} ({})", c.id, took(c.duration)))
            .unwrap_or_default();
        (
            over.into_iter()
                .map(|(_, text)| text)
                .collect::<Vec<_>>()
                .join("; "),
            Some(format!(
                "find the slow step and make it faster (--trace prints each request with its time), or raise the threshold (--warning, --critical) if this time is normal for the site{slowest}"
            )),
        )
    };
    Some(CheckResult {
        id: ids::RUN_TIME.into(),
        status,
        duration: Duration::ZERO,
        summary,
        hint,
        could_not_run: false,
        not_asked: false,
        unsent: false,
        details,
    })
}

async fn run_scoped(config: &Config, http: &Http, hints: &runner::Hints) -> (Outcome, Found) {
    let started = Instant::now();
    if config.doctor.only {
        let mut checks = crate::doctor::run(
            config,
            http,
            config.idp_source != crate::config::IdpSource::Unknown,
            None,
        )
        .await;
        settle_unsent(&mut checks, http.deadline_limit());
        let found = Found::of(config, &checks);
        return (
            Outcome {
                checks,
                duration: started.elapsed(),
                before: Duration::ZERO,
            },
            found,
        );
    }
    // Without --idp (or a passkey file), Pocket ID is found on the way: the authorize
    // URL Access redirects to names it (access.login adopts it).
    let (mut checks, settings) = runner::run(config, http, hints).await;
    settle_unsent(&mut checks, http.deadline_limit());
    causes::attribute(
        &mut checks,
        &crate::pocketid::oidc::normalise_base(&settings.idp),
    );
    attribute_causes(&mut checks);
    let found = Found::of(&settings, &checks);
    let outcome = Outcome {
        checks,
        duration: started.elapsed(),
        before: Duration::ZERO,
    };
    (outcome, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(id: &str, status: Option<u16>, hint: &str) -> CheckResult {
        let mut f = Findings::start(id);
        if let Some(s) = status {
            f.detail("status", s);
        }
        f.fail(format!("{id} is broken"), hint);
        f.finish("")
    }

    #[test]
    fn a_run_stopped_at_its_guard_still_has_a_report() {
        let outcome = Outcome::overran(Duration::from_secs(5));
        assert_eq!(outcome.status(), Status::Fail);
        let run = &outcome.checks[0];
        assert_eq!(run.id, ids::RUN);
        assert!(run.summary.contains("deadline of 5 s"), "{}", run.summary);
        assert!(run.could_not_run);
        assert!(run.hint.as_deref().is_some_and(|h| h.contains("--trace")));
    }

    #[test]
    fn a_consequence_names_its_cause_instead_of_its_own_fix() {
        let mut checks = vec![
            failed(
                ids::IDP_DISCOVERY,
                Some(200),
                "set APP_URL=https://id.example.com",
            ),
            failed(ids::PASSKEY_LOGIN, Some(401), "re-enrol"),
        ];
        attribute_causes(&mut checks);
        let login = &checks[1];
        assert_eq!(
            login.hint.as_deref(),
            Some(
                "set APP_URL=https://id.example.com — this follows from idp.discovery; fix that first"
            )
        );
        assert_eq!(login.details["follows_from"], "idp.discovery");
        assert_eq!(login.details["own_hint"], "re-enrol");
        // The cause keeps its own.
        assert_eq!(
            checks[0].hint.as_deref(),
            Some("set APP_URL=https://id.example.com")
        );
    }

    #[test]
    fn a_consequence_carries_only_the_first_clause_of_its_causes_fix() {
        assert_eq!(first_clause("start it (systemctl); then check"), "start it");
        assert_eq!(first_clause("copy X; else: Y"), "copy X");
        assert_eq!(first_clause("set A — because B"), "set A");
        assert_eq!(first_clause("just this"), "just this");
        assert_eq!(first_clause("é (ü"), "é");
        assert_eq!(
            first_clause("check that X (and Y (in front)) is running; if slow"),
            "check that X is running"
        );
    }

    #[test]
    fn a_certificate_failure_is_the_cause_not_a_host_down() {
        let mut tls = failed(
            "tls.id.example.com",
            None,
            "renew the certificate of id.example.com",
        );
        tls.could_not_run = false;
        let mut checks = vec![tls];
        for id in [ids::IDP_AUTHORIZE, ids::IDP_DISCOVERY, ids::IDP_JWKS] {
            let mut f = Findings::start(id);
            f.fail_transport(
                "GET /x: TLS with id.example.com failed: the certificate has expired",
                "see the tls.* check",
            );
            checks.push(f.finish(""));
        }
        attribute_causes(&mut checks);
        assert!(!checks[1].summary.starts_with("Pocket ID is down"));
        for c in &checks[1..] {
            assert_eq!(c.details["follows_from"], "tls.id.example.com", "{}", c.id);
        }
    }

    #[test]
    fn pocket_id_slow_everywhere_is_slow_not_down() {
        let mut checks: Vec<CheckResult> = [ids::IDP_AUTHORIZE, ids::IDP_DISCOVERY, ids::IDP_JWKS]
            .iter()
            .map(|id| {
                let mut f = Findings::start(id);
                f.request_failed(
                    "GET /x",
                    &crate::http::HttpError::Timeout(Duration::from_secs(9)),
                );
                f.finish("")
            })
            .collect();
        attribute_causes(&mut checks);
        let root = &checks[0].summary;
        assert!(
            root.starts_with("Pocket ID answers too slowly: all 3"),
            "{root}"
        );
        assert!(!root.contains("down"), "{root}");
        for c in &checks[1..] {
            assert_eq!(c.details["follows_from"], "idp.authorize", "{}", c.id);
        }
        // Discovery answered: neither "all" nor Pocket ID slow as a whole.
        let mut answered = Findings::start(ids::IDP_DISCOVERY);
        answered.detail("issuer", "https://id.example.com");
        checks[1] = answered.finish("issuer https://id.example.com");
        for c in &mut checks {
            c.details.remove("follows_from");
            c.hint = Some("old hint".into());
        }
        checks[0].summary = "GET /x: timed out after 9 s".into();
        attribute_causes(&mut checks);
        let root = &checks[0].summary;
        assert!(
            root.starts_with("2 of Pocket ID's 3 endpoints checked got no answer in time"),
            "{root}"
        );
    }

    #[test]
    fn endpoints_a_proxy_fails_are_not_called_down() {
        let proxy = crate::proxy::Proxy::parse("http://127.0.0.1:3128", "HTTPS_PROXY").unwrap();
        let mut checks: Vec<CheckResult> = IDP_ENDPOINTS
            .iter()
            .take(3)
            .map(|id| {
                let mut f = Findings::start(id);
                f.request_failed(
                    "GET /x",
                    &crate::http::HttpError::Proxy(proxy.failure(
                        "id.example.com",
                        443,
                        crate::proxy::Problem::Status(502, "Bad Gateway".into()),
                    )),
                );
                f.finish("")
            })
            .collect();
        attribute_causes(&mut checks);
        let root = &checks[0].summary;
        assert!(
            root.starts_with("Pocket ID is not reached through the proxy: all 3"),
            "{root}"
        );
        assert!(!root.contains("is down"), "{root}");
        for c in &checks[1..] {
            assert_eq!(c.details["follows_from"], checks[0].id.as_str(), "{}", c.id);
        }
    }

    #[test]
    fn pocket_id_down_everywhere_is_one_finding() {
        let mut checks = vec![
            failed(ids::IDP_AUTHORIZE, Some(530), "start cloudflared"),
            failed(ids::IDP_DISCOVERY, Some(530), "start cloudflared"),
            failed(ids::IDP_JWKS, Some(530), "start cloudflared"),
            failed(ids::IDP_HEALTH, None, "nothing accepts connections"),
        ];
        checks[3].could_not_run = true;
        attribute_causes(&mut checks);
        assert!(checks[0].summary.starts_with("Pocket ID is down: all 4"));
        for c in &checks[1..] {
            assert_eq!(c.details["follows_from"], "idp.authorize", "{}", c.id);
        }
        // One failure alone is not "down everywhere".
        let mut one = vec![failed(ids::IDP_JWKS, Some(502), "x")];
        attribute_causes(&mut one);
        assert_eq!(one[0].summary, "idp.jwks is broken");
    }

    fn limit(check: Option<&str>, critical: bool, ms: u64) -> crate::config::TimeLimit {
        crate::config::TimeLimit {
            check: check.map(str::to_string),
            critical,
            over: Duration::from_millis(ms),
            setting: if critical { "--critical" } else { "--warning" }.into(),
        }
    }

    fn timed(id: &str, status: Status, ms: u64) -> CheckResult {
        CheckResult {
            status,
            duration: Duration::from_millis(ms),
            ..CheckResult::skip(id, format!("{id} ran"))
        }
    }

    #[test]
    fn time_thresholds_judge_the_run_and_the_checks_they_name() {
        let outcome = Outcome {
            checks: vec![
                timed(ids::PASSKEY_LOGIN, Status::Pass, 900),
                timed(ids::IDP_CODE, Status::Skip, 0),
                timed(ids::SERVICE_REDIRECT, Status::Fail, 50),
            ],
            duration: Duration::from_millis(1500),
            before: Duration::from_secs(9),
        };
        // No thresholds, no run.time.
        assert!(judge_time(&outcome, &[]).is_none());
        // Within them: a pass; what came before the checks does not count.
        let within = judge_time(
            &outcome,
            &[limit(None, false, 2000), limit(None, true, 5000)],
        )
        .expect("run.time");
        assert_eq!(
            (within.id.as_str(), within.status),
            (ids::RUN_TIME, Status::Pass)
        );
        assert!(within.hint.is_none());
        assert_eq!(within.details["warning_ms"], 2000);
        assert_eq!(within.details["critical_ms"], 5000);
        assert_eq!(within.details["duration_ms"], 1500);
        // Over the run's warning and a check's critical threshold: it fails, the worst
        // first; a check that did not run is not timed.
        let over = judge_time(
            &outcome,
            &[
                limit(None, false, 1000),
                limit(Some(ids::PASSKEY_LOGIN), true, 500),
                limit(Some(ids::IDP_CODE), true, 1),
            ],
        )
        .expect("run.time");
        assert_eq!(over.status, Status::Fail);
        assert_eq!(
            over.summary,
            "passkey.login took 900 ms, longer than its critical threshold of 500ms; \
             the checks took 1.5 s, longer than the warning threshold of 1s"
        );
        let hint = over.hint.as_deref().unwrap_or_default();
        assert!(hint.starts_with("find the slow step"), "{hint}");
        assert!(
            hint.contains("the slowest check was passkey.login (900 ms)"),
            "{hint}"
        );
        assert_eq!(over.details["checks"]["passkey.login"]["critical_ms"], 500);
        assert_eq!(over.details["checks"]["idp.code"]["status"], "skip");
        // The check's own verdict stands.
        assert_eq!(outcome.checks[0].status, Status::Pass);
    }
}
