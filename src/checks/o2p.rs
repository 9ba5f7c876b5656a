//! The oauth2-proxy gateway's own checks: `o2p.start`, `o2p.callback`,
//! `o2p.endpoints`, `o2p.session`, and `service.reach` behind it. Pocket ID's checks
//! (`idp.*`, `passkey.login`) are shared with the Access gateway.

use super::access::AuthorizeRequest;
use super::{ids, login, unexpected};
use crate::config::{Config, Gateway};
use crate::finding::{CheckResult, Findings};
use crate::http::{Accept, Http, Request, Response};
use crate::oauth2proxy::{self, CookieLine, Page, ProxyLogin, Via};
use crate::redact::{self, Secret};
use std::future::Future;
use url::Url;

/// A request shaped like a browser's navigation: oauth2-proxy answers a script 401.
fn browse(url: Url) -> Request {
    Request::get(url, Accept::Html).like_browser()
}

/// The CSRF cookie lines of `responses`.
fn csrf_lines<'a>(responses: impl Iterator<Item = &'a Response>) -> Vec<CookieLine> {
    responses
        .flat_map(oauth2proxy::cookie_lines)
        .filter(|c| oauth2proxy::is_csrf_cookie(&c.name))
        .collect()
}

/// `o2p.start`: oauth2-proxy's `/oauth2/start` must send the browser to Pocket ID's
/// authorization endpoint with its client, its exact callback, `state` and PKCE, and set
/// its CSRF cookie. `adopt` sees the answer that carries the authorization request
/// (Pocket ID's URL is adopted from it when it is not given).
pub async fn start(
    config: &Config,
    http: &Http,
    login: &ProxyLogin,
    adopt: impl FnOnce(&Response),
) -> (CheckResult, Option<AuthorizeRequest>) {
    let mut f = Findings::start(ids::O2P_START);
    if login.via == Via::SignInPage {
        f.warn(
            "oauth2-proxy shows its sign-in page, with one button, before the login",
            "start oauth2-proxy with --skip-provider-button (OAUTH2_PROXY_SKIP_PROVIDER_BUTTON=true) to send visitors straight to Pocket ID; the check goes on as a person pressing the button would",
        );
    }
    // The login the site's redirect already started, else the one `…/start` starts.
    let asked;
    let (hops, last): (&[Response], &Response) = match login.started.as_deref() {
        Some(started) => (&[], started),
        None => {
            let Some(chain) = ask_start(&mut f, config, http, login).await else {
                return (f.finish(""), None);
            };
            asked = chain;
            (&asked.hops, &asked.last)
        }
    };
    f.detail("status", last.status.as_u16());
    let Some(Ok(authorize)) = last.location() else {
        let (finding, hint) = unexpected(
            &format!(
                "instead of sending the login to Pocket ID, {}",
                redact::url(&last.url)
            ),
            last,
        );
        let hint = if last.status.as_u16() == 404 {
            format!(
                "the front proxy does not pass {}/ to oauth2-proxy: route every path under it to oauth2-proxy (nginx `location {}/`, Caddy `handle {}/*`)",
                login.base.path(),
                login.base.path(),
                login.base.path()
            )
        } else {
            hint
        };
        f.fail(finding, hint);
        return (f.finish(""), None);
    };
    adopt(last);
    f.detail("authorize_url", redact::url(&authorize));
    judge_csrf(&mut f, config, hops.iter().chain([last]));
    if config.idp_source != crate::config::IdpSource::Unknown {
        let expected = crate::pocketid::normalise_base(&config.idp);
        let at = authorize.origin().ascii_serialization();
        if at != expected {
            f.fail(
                format!(
                    "oauth2-proxy sends the login to {}, not to Pocket ID at {expected}",
                    crate::text::server_text(&at)
                ),
                format!(
                    "start oauth2-proxy with --oidc-issuer-url={expected} (Pocket ID's APP_URL, exactly), or correct --idp"
                ),
            );
        }
    }
    let params = Params::of(&authorize);
    judge_params(&mut f, config, login, &params);
    let summary = format!(
        "oauth2-proxy sends the login to {}{} with client {}, its callback{}",
        authorize.host_str().unwrap_or_default(),
        authorize.path(),
        params.client_id.as_deref().unwrap_or("?"),
        if params.pkce.as_deref() == Some("S256") {
            " and PKCE"
        } else {
            ""
        }
    );
    let request = (!f.failed()).then(|| AuthorizeRequest {
        url: authorize.clone(),
        client_id: params.client_id.clone().unwrap_or_default(),
        redirect_uri: params.redirect_uri.clone(),
        expected_callback: login.callback(),
        gateway: Gateway::OAuth2Proxy,
        state: params.state.clone().map(Secret::new),
    });
    (f.finish(summary), request)
}

/// GET `…/start` as pressing the sign-in button does, up to the answer that leaves
/// oauth2-proxy's host (or `…/sign_in`'s page, then its way to `…/start`); `None`
/// with the failure recorded when no answer came.
async fn ask_start(
    f: &mut Findings,
    config: &Config,
    http: &Http,
    login: &ProxyLogin,
) -> Option<crate::http::Chain> {
    let proxy_origin = login.base.origin();
    let stays = |r: &Response| {
        r.location()
            .and_then(Result::ok)
            .is_some_and(|l| l.origin() == proxy_origin)
    };
    let follow =
        |start: &Url| http.follow_request(ids::O2P_START, browse(start.clone()), |r| !stays(r));
    let chain = match follow(&login.start).await {
        Ok(c) => c,
        Err(e) => {
            f.request_failed(format!("GET {}", redact::url(&login.start)), &e);
            return None;
        }
    };
    if chain.last.is_redirect() {
        return Some(chain);
    }
    // `…/sign_in` named by the site: its page leads on to `…/start`.
    match oauth2proxy::recognise(&chain.last, &config.service) {
        Some(found) if found.start != login.start => match follow(&found.start).await {
            Ok(c) => Some(c),
            Err(e) => {
                f.request_failed(format!("GET {}", redact::url(&found.start)), &e);
                None
            }
        },
        _ => Some(chain),
    }
}

/// The CSRF cookie `/oauth2/start` sets: present, and one the browser sends back.
fn judge_csrf<'a>(f: &mut Findings, config: &Config, answers: impl Iterator<Item = &'a Response>) {
    let lines = csrf_lines(answers);
    let Some(csrf) = lines.iter().find(|c| !c.clears()) else {
        f.fail(
            "oauth2-proxy set no CSRF cookie (NAME_csrf) with the login",
            "without it oauth2-proxy's callback answers 403 \"Unable to find a valid CSRF token\": check that no proxy in front strips Set-Cookie from /oauth2/start",
        );
        return;
    };
    f.detail("csrf_cookie", csrf.name.clone());
    let https = config.service.scheme() == "https";
    if csrf.secure && !https {
        f.fail(
            format!("oauth2-proxy's CSRF cookie {} is Secure, but the site is served over http: a browser does not keep it, and the callback answers 403 \"Unable to find a valid CSRF token\"", csrf.name),
            "serve the site over https (a TLS front proxy), or start oauth2-proxy with --cookie-secure=false for a plain-http test set-up",
        );
    } else if !csrf.secure && https {
        f.warn(
            format!("oauth2-proxy's CSRF cookie {} is not Secure", csrf.name),
            "remove --cookie-secure=false from oauth2-proxy's flags: its cookies should only travel over https",
        );
    }
    if !csrf.http_only {
        f.warn(
            format!("oauth2-proxy's CSRF cookie {} is not HttpOnly", csrf.name),
            "remove --cookie-httponly=false from oauth2-proxy's flags: scripts on the site should not read its cookies",
        );
    }
}

/// The parameters of oauth2-proxy's authorization request.
struct Params {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    pkce: Option<String>,
    challenge: bool,
}

impl Params {
    fn of(url: &Url) -> Params {
        let param = |n: &str| {
            url.query_pairs()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.into_owned())
        };
        Params {
            client_id: param("client_id").filter(|c| !c.is_empty()),
            redirect_uri: param("redirect_uri"),
            response_type: param("response_type"),
            scope: param("scope"),
            state: param("state"),
            pkce: param("code_challenge_method"),
            challenge: param("code_challenge").is_some_and(|c| !c.is_empty()),
        }
    }
}

fn judge_params(f: &mut Findings, config: &Config, login: &ProxyLogin, p: &Params) {
    match (&p.client_id, &config.client_id) {
        (None, _) => f.fail(
            "oauth2-proxy's authorization request carries no client_id",
            "start oauth2-proxy with --client-id set to the Client ID of its client in Pocket ID → OIDC Clients",
        ),
        (Some(sent), Some(expected)) if sent != expected => f.fail(
            format!("oauth2-proxy sends client_id {sent}, expected {expected}"),
            format!(
                "start oauth2-proxy with --client-id={expected} (and that client's secret), or correct --client-id"
            ),
        ),
        (Some(sent), _) => f.detail("client_id", sent.clone()),
    }
    let expected = login.callback();
    f.detail("expected_callback", expected.clone());
    match &p.redirect_uri {
        None => f.fail(
            "oauth2-proxy's authorization request carries no redirect_uri",
            format!("start oauth2-proxy with --redirect-url={expected}"),
        ),
        Some(sent) if *sent == expected => f.detail("redirect_uri", sent.clone()),
        Some(sent) => {
            f.detail("redirect_uri", sent.clone());
            let parsed = Url::parse(sent).ok();
            let http_scheme = parsed.as_ref().is_some_and(|u| u.scheme() == "http");
            if http_scheme {
                f.fail(
                    format!("oauth2-proxy sends redirect_uri {sent}: http, not https"),
                    format!(
                        "start oauth2-proxy with --redirect-url={expected} (an http callback is refused by Pocket ID unless registered, and sends the code in the clear); without --redirect-url it takes the scheme from X-Forwarded-Proto, so also have the front proxy send X-Forwarded-Proto: https (and oauth2-proxy run with --reverse-proxy)"
                    ),
                );
            } else if parsed
                .as_ref()
                .is_some_and(|u| u.path().ends_with("/callback"))
            {
                f.warn(
                    format!("oauth2-proxy sends redirect_uri {sent}, not {expected} on the site's own oauth2-proxy"),
                    format!(
                        "the login returns to another host's oauth2-proxy: that works only when its --cookie-domain covers {} and --whitelist-domain admits it; else start oauth2-proxy with --redirect-url={expected}",
                        login.base.host_str().unwrap_or_default()
                    ),
                );
            } else {
                f.fail(
                    format!("oauth2-proxy sends redirect_uri {sent}, which is not its callback {expected}"),
                    format!("start oauth2-proxy with --redirect-url={expected}"),
                );
            }
        }
    }
    if p.response_type.as_deref() != Some("code") {
        f.fail(
            format!(
                "response_type is {}, not code",
                p.response_type.as_deref().unwrap_or("missing")
            ),
            "oauth2-proxy's oidc provider uses the code flow: check that nothing rewrites its authorization request",
        );
    }
    let scopes: Vec<&str> = p.scope.as_deref().unwrap_or("").split(' ').collect();
    f.detail("scope", p.scope.clone().unwrap_or_default());
    f.detail("scope_has_groups", scopes.contains(&"groups"));
    if !scopes.contains(&"openid") {
        f.fail(
            "oauth2-proxy does not ask for the openid scope",
            "set oauth2-proxy's --scope to \"openid email profile\" (or leave it out): without openid Pocket ID issues no id_token",
        );
    } else if !scopes.contains(&"email") {
        f.warn(
            "oauth2-proxy does not ask for the email scope",
            "set oauth2-proxy's --scope to \"openid email profile\": without an e-mail address oauth2-proxy's callback fails unless --oidc-email-claim names another claim",
        );
    }
    match &p.state {
        Some(state) if state.contains(':') => {}
        _ => f.fail(
            "oauth2-proxy's state is missing or has no nonce:redirect shape",
            "something rewrites oauth2-proxy's authorization request (its state is NONCE:PATH, or base64 with --encode-state); look at the hops with --trace",
        ),
    }
    match (p.pkce.as_deref(), p.challenge) {
        (Some("S256"), true) => f.detail("pkce", "S256"),
        (Some(method), true) => f.warn(
            format!("oauth2-proxy uses PKCE method {method}, not S256"),
            "start oauth2-proxy with --code-challenge-method=S256",
        ),
        _ => f.warn(
            "oauth2-proxy sends no PKCE code_challenge",
            "start oauth2-proxy with --code-challenge-method=S256 (and tick PKCE on its client in Pocket ID): the code is then useless to anyone who intercepts it",
        ),
    }
}

/// What the run recorded that tells the causes of oauth2-proxy's one 403 apart.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence {
    /// The monitoring user's e-mail is verified in Pocket ID (passkey.login).
    pub email_verified: Option<bool>,
    /// oauth2-proxy asks for the `groups` scope, which it adds for `--allowed-group`
    /// (o2p.start).
    pub scope_has_groups: Option<bool>,
}

/// `o2p.callback`: oauth2-proxy redeems the code and sets its session cookie.
pub async fn callback(
    config: &Config,
    http: &Http,
    login: &ProxyLogin,
    code: Url,
    evidence: Evidence,
) -> (CheckResult, Option<Url>) {
    let mut f = Findings::start(ids::O2P_CALLBACK);
    let csrf_sent: Vec<String> = http
        .cookie_names_for(&code)
        .into_iter()
        .filter(|n| oauth2proxy::is_csrf_cookie(n))
        .collect();
    f.detail("csrf_cookie_sent", !csrf_sent.is_empty());
    let response = match http.send(ids::O2P_CALLBACK, browse(code.clone())).await {
        Ok(r) => r,
        Err(e) => {
            f.request_failed("GET oauth2-proxy's callback", &e);
            return (f.finish(""), None);
        }
    };
    f.detail("status", response.status.as_u16());
    let lines = oauth2proxy::cookie_lines(&response);
    let base = csrf_sent
        .first()
        .map_or(oauth2proxy::SESSION_COOKIE.to_string(), |n| {
            oauth2proxy::session_cookie_of(n)
        });
    let parts: Vec<&CookieLine> = lines
        .iter()
        .filter(|c| oauth2proxy::is_session_part(&c.name, &base) && !c.clears())
        .collect();
    let landed = match response.location() {
        Some(Ok(l)) if response.is_redirect() => Some(l),
        _ => None,
    };
    let (Some(landed), false) = (landed, parts.is_empty()) else {
        let (finding, hint) = callback_failure(&mut f, &response, !csrf_sent.is_empty(), evidence);
        f.fail(finding, hint);
        return (f.finish(""), None);
    };
    if landed.origin() != config.service.origin() && landed.origin() != login.base.origin() {
        f.warn(
            format!("oauth2-proxy's callback sends the browser to {}, off the site", redact::url(&landed)),
            "oauth2-proxy returns to the rd of the login; a --whitelist-domain entry lets it leave the site: check that it is meant to",
        );
    }
    judge_session_cookie(&mut f, config, &base, &parts);
    let summary = format!(
        "oauth2-proxy redeemed the code and set its session cookie {}{} ({}), returning to {}",
        base,
        if parts.len() > 1 {
            format!(" in {} parts", parts.len())
        } else {
            String::new()
        },
        cookie_words(parts[0]),
        redact::url(&landed)
    );
    (f.finish(summary), Some(landed))
}

/// A session cookie's attributes in words: "Secure, HttpOnly, 7 days".
fn cookie_words(c: &CookieLine) -> String {
    let mut words = Vec::new();
    if c.secure {
        words.push("Secure".to_string());
    }
    if c.http_only {
        words.push("HttpOnly".to_string());
    }
    match c.max_age {
        Some(s) => words.push(lifetime_words(s)),
        None if c.expires => words.push("with an expiry date".to_string()),
        None => words.push("for the browser session".to_string()),
    }
    words.join(", ")
}

/// A cookie's Max-Age in words: "7 days", "12 h", "90 s".
fn lifetime_words(seconds: i64) -> String {
    match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => {
            let days = s / 86_400;
            format!("{days} day{}", if days == 1 { "" } else { "s" })
        }
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{} s", s.max(0)),
    }
}

fn judge_session_cookie(f: &mut Findings, config: &Config, base: &str, parts: &[&CookieLine]) {
    let first = parts[0];
    f.detail("session_cookie", first.name.clone());
    f.detail("session_cookie_base", base.to_string());
    f.detail("session_cookie_parts", parts.len());
    f.detail(
        "session_cookie_bytes",
        parts.iter().map(|c| c.value_len).sum::<usize>(),
    );
    if let Some(age) = first.max_age {
        f.detail("cookie_max_age_s", age);
    }
    if let Some(domain) = &first.domain {
        f.detail("cookie_domain", domain.clone());
    }
    if config.service.scheme() == "https" && !parts.iter().all(|c| c.secure) {
        f.warn(
            format!("oauth2-proxy's session cookie {} is not Secure: a browser sends it over plain http too", first.name),
            "remove --cookie-secure=false from oauth2-proxy's flags",
        );
    }
    if !parts.iter().all(|c| c.http_only) {
        f.warn(
            format!("oauth2-proxy's session cookie {} is not HttpOnly: scripts on the site can read the session", first.name),
            "remove --cookie-httponly=false from oauth2-proxy's flags",
        );
    }
    if parts.len() > 1 {
        f.warn(
            format!(
                "oauth2-proxy's session is split into {} cookies ({} bytes): it exceeds 4 KB",
                parts.len(),
                parts.iter().map(|c| c.value_len).sum::<usize>()
            ),
            "proxies and browsers drop large cookie headers (a login that works on one browser and loops on another): start oauth2-proxy with --session-store-type=redis, or ask for fewer scopes and claims",
        );
    }
}

/// Why oauth2-proxy's callback did not set a session: its page, read by status and its
/// fixed messages, with what the run recorded telling the causes apart.
fn callback_failure(
    f: &mut Findings,
    response: &Response,
    csrf_sent: bool,
    evidence: Evidence,
) -> (String, String) {
    let status = response.status.as_u16();
    let page = oauth2proxy::page(response);
    match page {
        Page::Generic500 => {
            f.detail("symptom", "o2p.code_redemption_failed");
            (
                "oauth2-proxy's callback answers its generic 500 right after Pocket ID issued the code: it could not redeem the code (the page names no cause)".to_string(),
                "most likely: oauth2-proxy's client secret is wrong — copy the secret of its client in Pocket ID → OIDC Clients to --client-secret (or --client-secret-file) and restart it (its log: \"Error redeeming code … invalid_client\"; Pocket ID's log: two 401s on /api/oidc/token); else: oauth2-proxy cannot reach Pocket ID's token endpoint or keys from where it runs (its log: \"token exchange failed\" or an x509 error): check its network and --provider-ca-file".to_string(),
            )
        }
        Page::Forbidden => {
            f.detail("symptom", "o2p.user_refused");
            forbidden(f, evidence)
        }
        Page::Csrf if !csrf_sent => (
            "oauth2-proxy's callback answers 403 \"Unable to find a valid CSRF token\": the CSRF cookie /oauth2/start set did not come back with the callback".to_string(),
            "the cookie does not cover the callback: the callback is on another host than /oauth2/start (--redirect-url's host, or --cookie-domain), or the cookie is Secure on a plain-http site: use one https host for both".to_string(),
        ),
        Page::Csrf => (
            "oauth2-proxy's callback answers 403 \"Unable to find a valid CSRF token\", though the CSRF cookie /oauth2/start set came back".to_string(),
            "most likely: several oauth2-proxy instances answer for the site with different --cookie-secret values (or it restarted with a new one during the login): give every instance the same --cookie-secret; else: something rewrites the state between oauth2-proxy and Pocket ID (look at the hops with --trace)".to_string(),
        ),
        Page::IdpError(error) => (
            format!("oauth2-proxy's callback answers {status} \"Login Failed: The upstream identity provider returned an error: {error}\""),
            "Pocket ID refused the login at oauth2-proxy's callback; idp.code's details and Pocket ID's log name the setting of oauth2-proxy's client to change".to_string(),
        ),
        Page::UpstreamDown | Page::Other => {
            if response.is_redirect() {
                (
                    "oauth2-proxy's callback redirects without setting a session cookie".to_string(),
                    "a proxy in front of oauth2-proxy strips its Set-Cookie, or the session cookie is too large for it (over 4 KB per cookie): look at the callback's answer with --trace".to_string(),
                )
            } else {
                unexpected("at oauth2-proxy's callback", response)
            }
        }
    }
}

/// oauth2-proxy's one 403 for its three rules: the causes the run's evidence leaves.
fn forbidden(f: &mut Findings, evidence: Evidence) -> (String, String) {
    let finding = "oauth2-proxy's callback answers 403 \"You do not have permission to access this resource.\": Pocket ID signed the user in, and an oauth2-proxy rule refused them (the page is the same for its e-mail domain, group and verified-e-mail rules)".to_string();
    const UNVERIFIED: &str = "the monitoring user's e-mail address is not verified in Pocket ID, which oauth2-proxy refuses — mark it verified (Pocket ID → Users → the user), or start oauth2-proxy with --insecure-oidc-allow-unverified-email";
    const GROUP: &str = "--allowed-group names groups the monitoring user is not in — add the user to one of them in Pocket ID → User Groups (and the group to oauth2-proxy's client's allowed groups), or correct --allowed-group";
    const DOMAIN: &str = "--email-domain (or --authenticated-emails-file) does not admit the monitoring user's address — add its domain, or the address, to oauth2-proxy's allow list";
    if evidence.email_verified == Some(false) {
        f.detail("cause", "email_unverified");
        return (
            finding,
            format!("{UNVERIFIED} (confirmed: passkey.login found emailVerified false)"),
        );
    }
    let ruled_out = if evidence.email_verified == Some(true) {
        " (ruled out: an unverified e-mail address, by passkey.login)"
    } else {
        ""
    };
    let hint = match evidence.scope_has_groups {
        Some(true) => format!(
            "most likely: {GROUP} (oauth2-proxy asks for the groups scope, which it adds for --allowed-group); else: {DOMAIN}{}{ruled_out}",
            if evidence.email_verified.is_none() {
                format!("; else: {UNVERIFIED}")
            } else {
                String::new()
            }
        ),
        _ => format!(
            "most likely: {DOMAIN} (oauth2-proxy does not ask for the groups scope, which it adds for --allowed-group); else: {GROUP}{}{ruled_out}",
            if evidence.email_verified.is_none() {
                format!("; else: {UNVERIFIED}")
            } else {
                String::new()
            }
        ),
    };
    (finding, hint)
}

/// `service.reach` behind oauth2-proxy: the original URL answers as expected with its
/// session; oauth2-proxy's own refusals (its upstream down, a session its rules now
/// refuse, its login again) are named.
pub async fn service_reach(config: &Config, http: &Http, landed: Url) -> CheckResult {
    let mut f = Findings::start(ids::SERVICE_REACH);
    let url = if landed.origin() == config.service.origin() {
        config.service.clone()
    } else {
        landed
    };
    let response = match http.send(ids::SERVICE_REACH, browse(url.clone())).await {
        Ok(r) => r,
        Err(e) => {
            f.request_failed(format!("GET {}", redact::url(&url)), &e);
            return f.finish("");
        }
    };
    let status = response.status.as_u16();
    if status == config.expect_status {
        if let Some(user) = response.header(oauth2proxy::GAP_AUTH) {
            f.detail("gap_auth", crate::text::server_text(user));
        }
        return login::judge_site(config, f, &response, "after login");
    }
    f.detail("status", status);
    let signed_in = response.header(oauth2proxy::GAP_AUTH).is_some();
    let page = oauth2proxy::page(&response);
    let (finding, hint) = match status {
        502..=504 if signed_in || page == Page::UpstreamDown => (
            format!("after login oauth2-proxy answers HTTP {status}: it accepted the session but cannot reach the site behind it (its upstream)"),
            "start the application oauth2-proxy's --upstream names, or correct --upstream (oauth2-proxy's log: \"Error proxying to upstream server\" names the address it tried)".to_string(),
        ),
        502..=504 => (
            format!("after login the site answers HTTP {status} without oauth2-proxy's user header: the front proxy found nothing answering behind it"),
            "oauth2-proxy stopped answering during the login: look at its log and its service manager (systemctl status, docker ps)".to_string(),
        ),
        403 if page == Page::Forbidden => (
            "after login oauth2-proxy answers 403 \"You do not have permission\": it refuses the session it just issued".to_string(),
            "admit the monitoring user in the rule that guards this path — a forward-auth request's allowed_groups= or allowed_emails= query, or an --email-domain / --allowed-group changed since the login: compare them with the user's address and groups (the login itself was admitted)".to_string(),
        ),
        _ if oauth2proxy::recognise(&response, &config.service).is_some() || response.location().is_some_and(|l| l.is_ok_and(|l| l.path().ends_with("/start") || l.path().ends_with("/sign_in"))) => (
            "login loop: with the session just set, oauth2-proxy sends the browser to its login again".to_string(),
            "the session cookie does not come back to oauth2-proxy: its Domain or Path does not cover the site (--cookie-domain, --cookie-path), or several oauth2-proxy instances use different --cookie-secret values: give every instance the same secret".to_string(),
        ),
        _ if signed_in => (
            format!("after login the site behind oauth2-proxy answers HTTP {status}, expected {}", config.expect_status),
            format!("the application answers {status} itself: oauth2-proxy admitted the user (GAP-Auth) and passed the request on; its log says why — or pass --expect-status {status} if that is what it should answer"),
        ),
        _ => unexpected("after login", &response),
    };
    f.fail(finding, hint);
    f.finish("")
}

/// GET `url` as a browser would; the answer, or the failure recorded.
async fn ask(f: &mut Findings, http: &Http, url: Url) -> Option<Response> {
    match http.send(ids::O2P_ENDPOINTS, browse(url.clone())).await {
        Ok(r) => Some(r),
        Err(e) => {
            f.request_failed(format!("GET {}", redact::url(&url)), &e);
            None
        }
    }
}

/// `o2p.endpoints`: `/ping`, `/ready`, and `/oauth2/auth` without a session at once;
/// once `session` names the login's session cookie, `/oauth2/auth` and
/// `/oauth2/userinfo` with it (while the jar still holds it: a site that refused the
/// session has cleared it, and service.reach says why).
pub async fn endpoints(
    config: &Config,
    http: &Http,
    login: &ProxyLogin,
    session: impl Future<Output = Option<String>>,
) -> CheckResult {
    let mut f = Findings::start(ids::O2P_ENDPOINTS);
    let mut said = Vec::new();
    let (ping, ready, auth) = crate::http::without_cookies(async {
        tokio::join!(
            http.send(ids::O2P_ENDPOINTS, browse(login.root_path("/ping"))),
            http.send(ids::O2P_ENDPOINTS, browse(login.root_path("/ready"))),
            http.send(ids::O2P_ENDPOINTS, browse(login.endpoint("auth"))),
        )
    })
    .await;
    for (name, answer) in [("/ping", ping), ("/ready", ready)] {
        match answer {
            Ok(r) if r.status.as_u16() == 200 && r.text().trim() == "OK" => {
                said.push(format!("{name} OK"))
            }
            Ok(r)
                if r.status.as_u16() == 404
                    || r.status.as_u16() == 200
                    || oauth2proxy::recognise(&r, &config.service).is_some() =>
            {
                f.detail(&format!("{}_status", &name[1..]), r.status.as_u16());
                f.warn(
                    format!("oauth2-proxy's {name} is not reachable through the site (HTTP {}{})", r.status.as_u16(), if r.status.as_u16() == 200 { ", not oauth2-proxy's `OK`" } else { "" }),
                    format!("a health check of oauth2-proxy then has to reach it directly: have the front proxy pass {name} to oauth2-proxy, or probe its --http-address"),
                );
            }
            Ok(r) => {
                f.detail(&format!("{}_status", &name[1..]), r.status.as_u16());
                f.fail(
                    format!("oauth2-proxy's {name} answers HTTP {}", r.status.as_u16()),
                    if name == "/ready" {
                        "oauth2-proxy is up but not ready: its session store (Redis, with --session-store-type=redis) does not answer; its log says why".to_string()
                    } else {
                        "oauth2-proxy's liveness endpoint fails: look at its log".to_string()
                    },
                );
            }
            Err(e) => f.request_failed(format!("GET {name}"), &e),
        }
    }
    let auth_path = login.endpoint("auth").path().to_string();
    match auth {
        Ok(r) if r.status.as_u16() == 401 => said.push(format!("{auth_path} 401 without a session")),
        Ok(r) if r.status.as_u16() == 404 => {
            f.detail("auth_status", 404);
            said.push(format!("{auth_path} not routed (no forward-auth)"));
        }
        Ok(r) if r.status.is_success() => f.fail(
            format!("oauth2-proxy's {auth_path} answers HTTP {} without a session: a forward-auth front proxy lets everyone in", r.status.as_u16()),
            "a --skip-auth-route, --skip-auth-regex or --trusted-ip rule matches this request: narrow it to the paths meant to be public",
        ),
        Ok(r) => {
            f.detail("auth_status", r.status.as_u16());
            said.push(format!("{auth_path} {} without a session", r.status.as_u16()));
        }
        Err(e) => f.request_failed(format!("GET {auth_path}"), &e),
    }
    if let Some(base) = f.waiting_for(session).await {
        let held = http
            .cookie_names_for(&login.endpoint("auth"))
            .iter()
            .any(|n| oauth2proxy::is_session_part(n, &base));
        if held {
            signed_in(&mut f, config, http, login, &auth_path, &mut said).await;
        } else {
            said.push("the session cookie was cleared before it could be tried".to_string());
        }
    }
    f.finish(format!("oauth2-proxy answers: {}", said.join(", ")))
}

/// `/oauth2/auth` and `/oauth2/userinfo` with the session.
async fn signed_in(
    f: &mut Findings,
    config: &Config,
    http: &Http,
    login: &ProxyLogin,
    auth_path: &str,
    said: &mut Vec<String>,
) {
    let (auth, info) = tokio::join!(
        ask(&mut *f, http, login.endpoint("auth")),
        http.send(ids::O2P_ENDPOINTS, browse(login.endpoint("userinfo"))),
    );
    match auth {
        Some(r) if r.status.as_u16() == 202 => said.push(format!("{auth_path} 202 with it")),
        Some(r) if r.status.as_u16() == 404 => {}
        Some(r) => f.fail(
            format!("oauth2-proxy's {auth_path} answers HTTP {} with the session the site takes", r.status.as_u16()),
            "a front proxy's forward-auth (nginx auth_request, Caddy forward_auth, Traefik) would refuse this user: an allowed_groups= or allowed_emails= rule on the auth request, or a stale session: look at oauth2-proxy's log",
        ),
        None => {}
    }
    let _ = config;
    match info {
        Ok(r) if r.status.as_u16() == 200 && r.is_json() => {
            let body: serde_json::Value =
                serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
            match body.get("email").and_then(serde_json::Value::as_str) {
                Some(email) if !email.is_empty() => {
                    f.detail("userinfo_email", email);
                    said.push(format!(
                        "userinfo names {}",
                        crate::text::server_text(email)
                    ));
                }
                _ => f.fail(
                    "oauth2-proxy's userinfo names no e-mail address for the session",
                    "oauth2-proxy found no e-mail claim in Pocket ID's id_token: ask for the email scope, or set --oidc-email-claim",
                ),
            }
        }
        Ok(r) if r.status.as_u16() == 404 => {}
        Ok(r) => f.warn(
            format!("oauth2-proxy's userinfo answers HTTP {} with the session", r.status.as_u16()),
            "look at oauth2-proxy's log: its userinfo endpoint should answer the signed-in user as JSON",
        ),
        Err(e) => f.request_failed("GET userinfo", &e),
    }
}

/// `o2p.session`: signing out clears the cookie and ends the session; the old cookie is
/// tried once more at `/oauth2/auth` (or the site).
pub async fn session(config: &Config, http: &Http, login: &ProxyLogin, base: &str) -> CheckResult {
    let mut f = Findings::start(ids::O2P_SESSION);
    let site = config.service.clone();
    let names: Vec<String> = http
        .cookie_names_for(&site)
        .into_iter()
        .filter(|n| oauth2proxy::is_session_part(n, base))
        .collect();
    let old: Vec<(String, Secret)> = names
        .iter()
        .filter_map(|n| http.cookie_value(&site, n).map(|v| (n.clone(), v)))
        .collect();
    if old.is_empty() {
        f.fail(
            "the session cookie oauth2-proxy set is not in the jar for the site",
            "its Domain or Path does not cover the site's URL: check --cookie-domain and --cookie-path",
        );
        return f.finish("");
    }
    let out_url = login.endpoint("sign_out");
    let out = match http.send(ids::O2P_SESSION, browse(out_url.clone())).await {
        Ok(r) => r,
        Err(e) => {
            f.request_failed(format!("GET {}", redact::url(&out_url)), &e);
            return f.finish("");
        }
    };
    f.detail("sign_out_status", out.status.as_u16());
    let cleared = oauth2proxy::cookie_lines(&out)
        .iter()
        .any(|c| names.contains(&c.name) && c.clears());
    if !cleared {
        f.fail(
            format!(
                "oauth2-proxy's sign-out ({}) answers HTTP {} without clearing the session cookie",
                out_url.path(),
                out.status.as_u16()
            ),
            "a proxy in front strips Set-Cookie from the sign-out, or it is not routed to oauth2-proxy: route every path under its prefix to it",
        );
        return f.finish("");
    }
    // The old cookie, once more.
    let header = Secret::new(
        old.iter()
            .map(|(n, v)| format!("{n}={}", v.expose()))
            .collect::<Vec<_>>()
            .join("; "),
    );
    let replay = |url: Url| {
        let header = header.clone();
        async move {
            crate::http::without_cookies(
                http.send(ids::O2P_SESSION, browse(url).header("cookie", &header)),
            )
            .await
        }
    };
    // Only to the site's own origin (the one the operator named): a forward-auth
    // oauth2-proxy on another host is asked through the site.
    let mut answer = if login.base.origin() == site.origin() {
        replay(login.endpoint("auth")).await
    } else {
        replay(site.clone()).await
    };
    if answer.as_ref().is_ok_and(|r| r.status.as_u16() == 404) {
        answer = replay(site.clone()).await;
    }
    let r = match answer {
        Ok(r) => r,
        Err(e) => {
            f.request_failed("the old session cookie, after sign-out", &e);
            return f.finish("");
        }
    };
    f.detail("after_sign_out_status", r.status.as_u16());
    let still = r.status.is_success() || r.header(oauth2proxy::GAP_AUTH).is_some();
    f.detail("ends_server_side", !still);
    if still {
        f.warn(
            format!(
                "sign-out does not end the session: the old session cookie still passes ({} answers HTTP {} with it)",
                r.url.path(),
                r.status.as_u16()
            ),
            "the session lives in the cookie alone (oauth2-proxy's default cookie session store): a copied cookie works until the session expires, sign-out or not; start oauth2-proxy with --session-store-type=redis so that sign-out ends it",
        );
        return f.finish("");
    }
    f.finish(format!(
        "sign-out cleared the session cookie and ended the session: the old cookie gets HTTP {}",
        r.status.as_u16()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_said_in_the_largest_whole_unit() {
        assert_eq!(lifetime_words(604_800), "7 days");
        assert_eq!(lifetime_words(86_400), "1 day");
        assert_eq!(lifetime_words(3_600), "1 h");
        assert_eq!(lifetime_words(900), "15 min");
        assert_eq!(lifetime_words(61), "61 s");
        assert_eq!(lifetime_words(-5), "0 s");
    }

    #[test]
    fn the_one_403_names_what_the_evidence_leaves() {
        let mut f = Findings::start(ids::O2P_CALLBACK);
        let (_, hint) = forbidden(
            &mut f,
            Evidence {
                email_verified: Some(false),
                scope_has_groups: Some(true),
            },
        );
        assert!(hint.starts_with("the monitoring user's e-mail address is not verified"));
        assert!(!hint.contains("most likely"));
        let (_, hint) = forbidden(
            &mut f,
            Evidence {
                email_verified: Some(true),
                scope_has_groups: Some(true),
            },
        );
        assert!(hint.starts_with("most likely: --allowed-group"), "{hint}");
        assert!(
            hint.contains("ruled out: an unverified e-mail address"),
            "{hint}"
        );
        assert!(
            !hint.contains("else: the monitoring user's e-mail"),
            "{hint}"
        );
        let (_, hint) = forbidden(&mut f, Evidence::default());
        assert!(hint.starts_with("most likely: --email-domain"), "{hint}");
        assert!(hint.contains("; else: --allowed-group"), "{hint}");
        assert!(
            hint.contains("; else: the monitoring user's e-mail"),
            "{hint}"
        );
    }
}
