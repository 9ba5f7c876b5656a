//! The login as a person makes it: `passkey.login`, `idp.code`, `access.callback`,
//! `service.reach`, `access.token`. Each step depends on the one before; the first
//! that fails makes the rest `skip`.

use super::access::AuthorizeRequest;
use super::{ids, unexpected};
use crate::cloudflare::{self, AccessLogin, EdgePage};
use crate::config::{Config, Gateway};
use crate::finding::{CheckResult, Findings};
use crate::http::{Accept, Http, HttpError, MAX_HOPS, Request, Response};
use crate::passkey::{self, SoftPasskey};
use crate::pocketid::{self, Api, ApiError, AuthorizeOutcome, Discovery, normalise_base};
use crate::redact;
use reqwest::Method;
use std::sync::Arc;
use url::Url;

/// What the anonymous chain found, needed to log in.
pub struct Chain<'a> {
    /// The Access login (team, AUD).
    pub login: &'a AccessLogin,
    /// Access's authorization request (state, callback).
    pub authorize: &'a AuthorizeRequest,
}

/// The team's certs as fetched early: the team domain asked, and the answer.
pub type Certs = (String, Result<Arc<Response>, HttpError>);

/// GET `https://TEAM/cdn-cgi/access/certs` for `access.token`.
pub async fn fetch_certs(http: &Http, team: String) -> Certs {
    let result = match Url::parse(&format!("https://{team}/cdn-cgi/access/certs")) {
        Ok(url) => http
            .send(ids::ACCESS_TOKEN, Request::get(url, Accept::Json))
            .await
            .map(Arc::new),
        Err(_) => Err(HttpError::Other(format!(
            "no certificate URL can be made from the team domain {team}"
        ))),
    };
    (team, result)
}

fn api_failure(what: &str, e: &ApiError, config: &Config) -> (String, String) {
    let enroll = format!(
        "re-enrol: ssoprobe enroll --idp {} --api-key-file KEY --user EMAIL --out FILE",
        normalise_base(&config.idp)
    );
    match (e.status(), e.code()) {
        (_, Some("webauthn_authentication_failed")) => (
            format!("{what}: Pocket ID does not accept the passkey ({e})"),
            format!(
                "the passkey was deleted in Pocket ID (or the file belongs to another instance); {enroll}"
            ),
        ),
        (_, Some("user_disabled")) => (
            format!("{what}: the user is disabled in Pocket ID"),
            "enable the monitoring user in Pocket ID → Users".to_string(),
        ),
        (_, Some("passkey_user_verification_required")) => (
            format!("{what}: Pocket ID requires user verification the assertion lacks"),
            format!("ssoprobe's passkey always asserts user verification; a passkey file written by another tool may not: {enroll}"),
        ),
        (_, Some("invalid_webauthn_session")) | (_, Some("missing_session_id")) => (
            format!("{what}: Pocket ID lost the login session ({e})"),
            "the session cookie of login/start did not come back: a proxy strips cookies, or the login took over 60 s".to_string(),
        ),
        (Some(429), _) => (
            format!(
                "{what}: rate limited by Pocket ID ({e}){}",
                e.retry_after()
                    .map(|r| format!(", Retry-After: {} s", crate::redact::terminal_safe(r)))
                    .unwrap_or_default()
            ),
            format!(
                "Pocket ID allows 10 passkey logins, then one per 5 s per client address; run the login less often (ssoprobe never retries){}",
                e.retry_after()
                    .map(|r| format!("; the next login is allowed in {} s", crate::redact::terminal_safe(r)))
                    .unwrap_or_default()
            ),
        ),
        _ => (
            format!("{what}: {e}"),
            match e {
                ApiError::Http(h) => h.hint(),
                _ => "Pocket ID's answer names what it refused; run again with --trace to see the request and the answer".to_string(),
            },
        ),
    }
}

/// `passkey.login`: the software passkey signs Pocket ID's challenge; Pocket ID answers
/// with a session for the passkey's user.
pub async fn passkey_begin(config: &Config, http: &Http) -> Result<Begun, CheckResult> {
    let mut f = Findings::start(ids::PASSKEY_LOGIN);
    let Some((_, path)) = &config.passkey else {
        f.fail(
            "no passkey configured",
            "pass --passkey FILE (made by ssoprobe enroll) to test the login",
        );
        return Err(f.finish(""));
    };
    // The file is read again under an exclusive lock held until the new counter is saved:
    // parallel runs on one passkey sign with strictly increasing counters.
    let (wait, _) = http.budget();
    let locked = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            passkey::CredentialFile::load_locked_within(&path, wait)
        })
        .await
    };
    let (file, _lock) = match locked {
        Ok(Ok(locked)) => locked,
        Ok(Err(e)) => {
            f.fail(
                e.to_string(),
                format!(
                    "another ssoprobe run may be using {} (runs on one passkey take turns; stagger them or give each its own passkey), or the file changed since the run started",
                    path.display()
                ),
            );
            return Err(f.finish(""));
        }
        Err(_) => {
            f.fail(
                format!("the passkey file {} could not be read", path.display()),
                "run again; if it persists, report it with the --trace output",
            );
            return Err(f.finish(""));
        }
    };
    let file = &file;
    let api = Api::new(http, &config.idp, ids::PASSKEY_LOGIN);
    let options = match api.login_start().await {
        Ok(o) => o,
        Err(e) => {
            let (finding, hint) = api_failure("GET /api/webauthn/login/start", &e, config);
            f.fail(finding, hint);
            return Err(f.finish(""));
        }
    };
    let host = config
        .idp
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let rp_id = options
        .get("rpId")
        .and_then(|r| r.as_str())
        .unwrap_or("")
        .to_string();
    f.detail("rp_id", rp_id.clone());
    if !rp_id.eq_ignore_ascii_case(&host) {
        f.fail(
            format!("Pocket ID's relying party id is '{rp_id}', not {host}"),
            format!(
                "Pocket ID binds passkeys to the host of its APP_URL; set APP_URL={} (its public URL) and restart it — browsers refuse this login too",
                normalise_base(&config.idp)
            ),
        );
        return Err(f.finish(""));
    }
    let options = match passkey::parse_request_options(options) {
        Ok(o) => o,
        Err(e) => {
            f.fail(
                format!("login/start answered options ssoprobe cannot read: {e}"),
                "Pocket ID's login/start answer is not WebAuthn request options: is this path answered by Pocket ID (v2 or later)? See the answer with --trace",
            );
            return Err(f.finish(""));
        }
    };
    let mut authenticator = match SoftPasskey::new(file.clone()) {
        Ok(a) => a,
        Err(e) => {
            f.fail(e.to_string(), format!("the passkey file {} does not hold a usable key; enrol again: ssoprobe enroll --idp {} --api-key-file KEY --user EMAIL --out FILE --force", path.display(), normalise_base(&config.idp)));
            return Err(f.finish(""));
        }
    };
    let assertion = match authenticator.assert(&config.idp, options) {
        Ok(a) => a,
        Err(e) => {
            f.fail(e.to_string(), format!("the passkey belongs to relying party {}, so it cannot sign for {}; use the passkey file enrolled at this Pocket ID, or enrol one: ssoprobe enroll --idp {}", file.rp_id, config.idp.host_str().unwrap_or_default(), normalise_base(&config.idp)));
            return Err(f.finish(""));
        }
    };
    // The counter moved: save it before anything else can fail.
    if let Err(e) = authenticator.file().save(path) {
        f.warn(format!("the passkey's counter was not saved: {e}"), format!("ssoprobe must be able to rewrite {} (and create a temporary file beside it); check the directory's permissions and free space, or the next login may be refused as a cloned passkey", path.display()));
    }
    Ok(Begun {
        f,
        assertion: passkey::assertion_json(&assertion),
        user_id: file.user_id.clone(),
        ready: tokio::time::Instant::now(),
    })
}

/// A passkey login signed and waiting to be sent: Pocket ID's session starts with
/// login/finish, which must not come before the anonymous `/authorize` (a session
/// would change its answer).
pub struct Begun {
    f: Findings,
    assertion: serde_json::Value,
    user_id: String,
    /// When it was ready to be sent: the wait for idp.authorize is not this check's.
    ready: tokio::time::Instant,
}

/// `passkey.login`, second half: login/finish with the signed assertion.
pub async fn passkey_finish(config: &Config, http: &Http, begun: Begun) -> (CheckResult, bool) {
    let Begun {
        mut f,
        assertion,
        user_id,
        ready,
    } = begun;
    f.not_charged(ready.elapsed());
    let api = Api::new(http, &config.idp, ids::PASSKEY_LOGIN);
    let user = match api.login_finish(assertion).await {
        Ok(u) => u,
        Err(e) => {
            let (finding, hint) = api_failure("POST /api/webauthn/login/finish", &e, config);
            f.fail(finding, hint);
            return (f.finish(""), false);
        }
    };
    f.detail("user_id", user.id.clone());
    // Evidence for checks::causes: Access identifies users by their e-mail address.
    f.detail(
        "user_has_email",
        user.email.as_deref().is_some_and(|e| !e.trim().is_empty()),
    );
    // Evidence for o2p.callback: oauth2-proxy refuses an unverified e-mail address.
    if let Some(verified) = user.email_verified {
        f.detail("email_verified", verified);
    }
    if user.id != user_id {
        f.fail(
            format!(
                "Pocket ID signed in user {}, not the passkey's user {}",
                user.id, user_id
            ),
            "the passkey file and the Pocket ID account disagree (the file was copied from another user's, or the user was re-created); enrol the monitoring user again",
        );
    }
    let who = user.email.clone().unwrap_or(user.username.clone());
    let ok = !f.failed();
    (
        f.finish(format!(
            "signed in to Pocket ID as {who} with the software passkey"
        )),
        ok,
    )
}

/// `idp.code`: finish Pocket ID's interaction (authenticate, consent) and get the code
/// for Access's client at Access's callback; `state` and `iss` must round-trip.
pub async fn code(
    config: &Config,
    http: &Http,
    authorize: &AuthorizeRequest,
    discovery: Option<Arc<Discovery>>,
    interaction: &Url,
) -> (CheckResult, Option<Url>) {
    let mut f = Findings::start(ids::IDP_CODE);
    let Some(id) = interaction
        .query_pairs()
        .find(|(k, _)| k == "interaction")
        .map(|(_, v)| v.into_owned())
    else {
        f.fail(
            "Pocket ID's interaction redirect carries no interaction id",
            "Pocket ID v2.14 sends the browser to /interaction?interaction=ID after a login; a proxy may be rewriting the redirect, see it with --trace",
        );
        return (f.finish(""), None);
    };
    let api = Api::new(http, &config.idp, ids::IDP_CODE);
    let Some((redirect, steps)) = complete_interaction(&mut f, config, &api, &id).await else {
        return (f.finish(""), None);
    };
    f.detail("steps", steps.clone());
    let Some(location) = code_redirect(&mut f, config, http, &api, authorize, &redirect).await
    else {
        return (f.finish(""), None);
    };
    judge_code_redirect(&mut f, config, authorize, discovery, &location);
    let ok = !f.failed();
    let result = f.finish(format!(
        "Pocket ID issued a code for client {} to {}'s callback after {}; state and iss match",
        authorize.client_id,
        authorize.gateway.who(),
        steps.join(" + ")
    ));
    (result, ok.then_some(location))
}

/// Completes the interaction's steps (authenticate, then consent on a first login):
/// the URL Pocket ID continues at and the steps taken, or `None` with the finding.
async fn complete_interaction(
    f: &mut Findings,
    config: &Config,
    api: &Api<'_>,
    id: &str,
) -> Option<(String, Vec<String>)> {
    let path = format!("/api/oidc/interactions/{id}/complete");
    let mut step = "authenticate".to_string();
    let mut steps = Vec::new();
    let mut redirect = None;
    for _ in 0..5 {
        let answer: serde_json::Value = match api
            .call_json(
                Method::POST,
                &path,
                Some(serde_json::json!({ "step": step })),
                false,
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let (finding, hint) =
                    api_failure(&format!("completing the '{step}' step"), &e, config);
                f.fail(finding, hint);
                return None;
            }
        };
        steps.push(step.clone());
        if let Some(r) = answer.get("redirectUrl").and_then(|r| r.as_str()) {
            redirect = Some(r.to_string());
            break;
        }
        let next = answer
            .pointer("/interaction/currentStep")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string();
        match next.as_str() {
            "consent" | "select_account" => step = next,
            "reauthenticate" => {
                f.fail(
                    "the Pocket ID client asks for re-authentication on every login",
                    "turn off 'Requires re-authentication' on the Cloudflare client in Pocket ID, or accept that this check cannot complete it".to_string(),
                );
                return None;
            }
            other => {
                f.fail(
                    format!("Pocket ID's interaction asks for an unknown step '{other}'"),
                    "this Pocket ID asks for a step ssoprobe does not know (a newer release?); report it with the --trace output",
                );
                return None;
            }
        }
    }
    match redirect {
        Some(r) => Some((r, steps)),
        None => {
            f.fail(
                "Pocket ID's interaction did not finish after 5 steps",
                "Pocket ID kept asking for more steps; report it with the --trace output",
            );
            None
        }
    }
}

/// Follows the interaction's redirect to `/authorize`, which must answer with a
/// redirect to Access's callback carrying a code: that Location, or `None` with the
/// finding.
async fn code_redirect(
    f: &mut Findings,
    config: &Config,
    http: &Http,
    api: &Api<'_>,
    authorize: &AuthorizeRequest,
    redirect: &str,
) -> Option<Url> {
    let url = api.url(redirect);
    // Only Pocket ID's own origin: an interaction that sends the session elsewhere (another
    // host, port or scheme) is not followed.
    if url.origin() != config.idp.origin() {
        f.fail(
            format!(
                "Pocket ID's interaction continues at {}, not at Pocket ID ({})",
                redact::url(&url),
                normalise_base(&config.idp)
            ),
            "Pocket ID redirects the browser only to its own /authorize after a login; check its APP_URL and any proxy rewriting its answers",
        );
        return None;
    }
    let response = match http
        .send(ids::IDP_CODE, Request::get(url, Accept::Html))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            f.request_failed("GET /authorize after the login", &e);
            return None;
        }
    };
    let location = match response.location() {
        Some(Ok(u)) => Some(u),
        _ => None,
    };
    let callback = authorize.redirect_uri.clone().unwrap_or_default();
    match pocketid::classify_authorize(response.status.as_u16(), location.as_ref(), Some(&callback))
    {
        AuthorizeOutcome::CallbackCode => {}
        AuthorizeOutcome::InteractionError(message) => {
            let (finding, hint) = if message.contains("not allowed to access") {
                (
                    format!(
                        "Pocket ID refuses the user for client {}: {message}",
                        authorize.client_id
                    ),
                    format!(
                        "the OIDC client is restricted to user groups the monitoring user is not in; add the user to an allowed group (Pocket ID → OIDC Clients → {} → Allowed user groups)",
                        authorize.gateway.client()
                    ),
                )
            } else {
                (
                    format!("Pocket ID refused to issue a code: {message}"),
                    format!(
                        "Pocket ID's own words name what it refused for client {}; fix that setting in Pocket ID → OIDC Clients",
                        authorize.client_id
                    ),
                )
            };
            f.fail(finding, hint);
            return None;
        }
        AuthorizeOutcome::CallbackError { error, description } => {
            f.fail(
                format!(
                    "Pocket ID sent {} an error instead of a code: {error}: {}",
                    authorize.gateway.who(),
                    description.unwrap_or_default()
                ),
                format!("Pocket ID refused {}'s request after the login; its error names the client setting to fix in Pocket ID → OIDC Clients", authorize.gateway.who()),
            );
            return None;
        }
        _ => {
            let (finding, hint) = unexpected("GET /authorize after the login", &response);
            f.fail(finding, hint);
            return None;
        }
    }
    if location.is_none() {
        f.fail("no Location", "Pocket ID answers /authorize after a login with a redirect to the callback; something in front of it swallowed the Location header");
    }
    location
}

/// Judges the code's redirect: the state Access sent comes back, and so does Pocket ID's
/// issuer (RFC 9207).
fn judge_code_redirect(
    f: &mut Findings,
    config: &Config,
    authorize: &AuthorizeRequest,
    discovery: Option<Arc<Discovery>>,
    location: &Url,
) {
    let param = |n: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.into_owned())
    };
    let state_ok = match (&authorize.state, param("state")) {
        (Some(sent), Some(back)) => sent.expose() == back,
        _ => false,
    };
    if !state_ok {
        f.fail(
            format!("the state Pocket ID returned is not the one {} sent", authorize.gateway.who()),
            match authorize.gateway {
                Gateway::Access => "Access will refuse this login ('Invalid login session'); something rewrites the authorization request".to_string(),
                Gateway::OAuth2Proxy => "oauth2-proxy will refuse this login (its 403 \"Unable to find a valid CSRF token\"); something rewrites the authorization request".to_string(),
            },
        );
    }
    let issuer = discovery
        .as_ref()
        .and_then(|d| d.issuer.clone())
        .unwrap_or_else(|| normalise_base(&config.idp));
    match param("iss") {
        Some(iss) if iss == issuer => {}
        Some(iss) => f.fail(
            format!("the code comes with iss {iss}, expected {issuer}"),
            "Pocket ID's APP_URL differs from its public URL".to_string(),
        ),
        None => f.warn("the code comes without iss (RFC 9207)", "Pocket ID v2 sends iss with every code; an older release works with Access but cannot be told apart from a forged answer: upgrade Pocket ID"),
    }
}

/// `access.callback`: Access redeems the code server-side and, through
/// `/cdn-cgi/access/authorized`, sets `CF_Authorization` on the site.
pub async fn access_callback(
    config: &Config,
    http: &Http,
    chain: &Chain<'_>,
    callback: Url,
) -> (CheckResult, Option<Url>) {
    let mut f = Findings::start(ids::ACCESS_CALLBACK);
    let service_host = config
        .service
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let team = chain.login.team_domain.clone();
    let mut next = callback;
    for hop in 0..=MAX_HOPS {
        let response = match http
            .send(
                ids::ACCESS_CALLBACK,
                Request::get(next.clone(), Accept::Html).like_browser_if(chain.login.as_browser),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                f.request_failed(format!("GET {}", redact::url(&next)), &e);
                return (f.finish(""), None);
            }
        };
        if let Some(Ok(location)) = response.location() {
            if let Err(e) = crate::http::refuse_downgrade(&next, &location) {
                f.fail(e.to_string(), e.hint());
                return (f.finish(""), None);
            }
            let host = location.host_str().unwrap_or_default().to_ascii_lowercase();
            let in_access = location.path().starts_with("/cdn-cgi/access/")
                && (host == team || host == service_host);
            if cloudflare::parse_login_url(&location).is_some()
                && http
                    .cookie_value(&config.service, "CF_Authorization")
                    .is_some()
            {
                let on_site = if next.host_str() == config.service.host_str() {
                    next.clone()
                } else {
                    config.service.clone()
                };
                let (finding, hint) = login_loop(&mut f, http, &on_site, &response);
                f.fail(finding, hint);
                return (f.finish(""), None);
            }
            if cloudflare::parse_login_url(&location).is_some() {
                f.fail(
                    "Access sent the browser back to its login page instead of admitting it",
                    "the session was not accepted: cookies did not stick (CF_AppSession / CF_Session), or the login took too long".to_string(),
                );
                return (f.finish(""), None);
            }
            if in_access && hop < MAX_HOPS {
                next = location;
                continue;
            }
            if host != service_host {
                f.fail(
                    format!(
                        "Access redirected to {} after the callback",
                        redact::url(&location)
                    ),
                    format!("after the callback Access sends the browser to the application ({service_host}); another host means the application's domain in Access is not {service_host}: check Zero Trust → Access → Applications"),
                );
                return (f.finish(""), None);
            }
            f.detail("hops", hop + 1);
            if http
                .cookie_value(&config.service, "CF_Authorization")
                .is_none()
            {
                f.fail(
                    format!("Access set no CF_Authorization cookie on {service_host}"),
                    "a proxy, Worker or page rule on the site strips Set-Cookie from /cdn-cgi/access/authorized".to_string(),
                );
                return (f.finish(""), None);
            }
            let result = f.finish(format!(
                "Access accepted the code and set CF_Authorization on {service_host}"
            ));
            return (result, Some(location));
        }
        let (finding, hint) = callback_refusal(config, &response);
        // Symptoms with several causes: the run's evidence decides the hint
        // (checks::causes).
        if finding.contains("exchange code for token") {
            f.detail("symptom", "access.code_exchange_failed");
            exchange_failure(&mut f, config, http, chain).await;
        } else if finding.contains("fresh keys") {
            f.detail("symptom", "access.token_verification_failed");
            jwks_failure(&mut f, config, http).await;
        } else if finding.contains(NO_IDENTITY) {
            f.detail("symptom", "access.identity_unavailable");
        }
        f.fail(finding, hint);
        return (f.finish(""), None);
    }
    f.fail(crate::http::HttpError::TooManyRedirects.to_string(), "Access kept redirecting between its own URLs: a redirect loop between the team domain and the site; look at the hops with --trace (cookies not sticking, or a clock far off)");
    (f.finish(""), None)
}

/// The evidence on why Cloudflare could not redeem the code ("Failed to exchange code
/// for token"), recorded for `checks::causes`, which writes the hint: whether a token
/// request shaped like Access's (its User-Agent) is refused, and — only then — one of
/// ssoprobe's own.
async fn exchange_failure(f: &mut Findings, config: &Config, http: &Http, chain: &Chain<'_>) {
    let token_url = format!("{}{}", normalise_base(&config.idp), pocketid::paths::TOKEN);
    let mut as_access = None;
    let mut as_probe = None;
    if let Ok(url) = Url::parse(&token_url) {
        // With the secret, requests Pocket ID answers without an error-log line.
        let authenticated = config
            .client_id
            .as_deref()
            .zip(config.client_secret.as_ref());
        let request = || match authenticated {
            Some((client_id, secret)) => Request::post_form(
                url.clone(),
                vec![
                    ("grant_type".to_string(), "client_credentials".to_string()),
                    (
                        "resource".to_string(),
                        pocketid::UNKNOWN_RESOURCE.to_string(),
                    ),
                ],
            )
            .header("authorization", &pocketid::client_basic(client_id, secret)),
            None => Request::post_form(
                url.clone(),
                vec![
                    ("grant_type".to_string(), "authorization_code".to_string()),
                    (
                        "code".to_string(),
                        format!("ssoprobe-bogus-{}", uuid::Uuid::new_v4().simple()),
                    ),
                    ("client_id".to_string(), chain.authorize.client_id.clone()),
                    (
                        "redirect_uri".to_string(),
                        chain.authorize.expected_callback.clone(),
                    ),
                ],
            ),
        };
        // One request, shaped like Access's: without a secret Pocket ID logs it as an
        // error, so a run adds at most this one line to its log. When it reaches
        // Pocket ID and gets an OAuth error back, it also proves the token endpoint
        // for idp.token, which then sends nothing; ssoprobe's own shape is asked only
        // when this one is refused (a refused request never reaches Pocket ID).
        let access_like = request().user_agent(ACCESS_USER_AGENT);
        let answer = http.send(ids::ACCESS_CALLBACK, access_like).await;
        if let Ok(r) = &answer {
            f.detail("token_request_like_access_status", r.status.as_u16());
            f.detail(
                "token_request_like_access_oauth_error",
                r.is_json() && r.status.is_client_error(),
            );
        }
        as_access = Some(blocked(&answer));
        if as_access == Some(true) {
            as_probe = Some(blocked(&http.send(ids::ACCESS_CALLBACK, request()).await));
        }
    }
    f.detail(
        "token_request_like_access_blocked",
        as_access.unwrap_or(false),
    );
    if let Some(blocked) = as_probe {
        f.detail("token_request_like_ssoprobe_blocked", blocked);
    }
}

/// Why Cloudflare could not verify the id_token ("Failed to verify oidc token with
/// fresh keys"): a wrong Certificate URL and a block in front of Pocket ID's JWKS that
/// refuses Cloudflare's own request look alike on Access's page. The evidence
/// (`checks::causes` reads it): the JWKS fetched once shaped like Access's request (its
/// User-Agent) and once as ssoprobe.
async fn jwks_failure(f: &mut Findings, config: &Config, http: &Http) {
    let base = normalise_base(&config.idp);
    let Ok(url) = Url::parse(&format!("{base}{}", pocketid::paths::JWKS)) else {
        return;
    };
    let request = || Request::get(url.clone(), Accept::Json);
    let access_like = request().user_agent(ACCESS_USER_AGENT);
    let as_access = blocked(&http.send(ids::ACCESS_CALLBACK, access_like).await);
    let as_probe = blocked(&http.send(ids::ACCESS_CALLBACK, request()).await);
    f.detail("jwks_request_like_access_blocked", as_access);
    f.detail("jwks_request_like_ssoprobe_blocked", as_probe);
}

/// Whether an answer is a refusal in front of Pocket ID (a 403, a Cloudflare
/// challenge, a page that is not Pocket ID's JSON) rather than Pocket ID's own.
fn blocked(r: &Result<Response, HttpError>) -> bool {
    match r {
        Ok(r) => {
            r.status.as_u16() == 403
                || cloudflare::classify(r) == Some(EdgePage::Challenge)
                || (!r.is_json() && r.status.is_client_error())
        }
        Err(_) => false,
    }
}

/// Access's text when Pocket ID's id_token gives it no identity (no e-mail address in
/// the claim it reads).
const NO_IDENTITY: &str = "Failed to fetch user/group information";

/// The User-Agent of Access's server-side requests to the identity provider.
const ACCESS_USER_AGENT: &str = "cloudflare-access";

/// What Access's answer to the callback says instead of admitting the browser: the
/// finding and the fix.
fn callback_refusal(config: &Config, response: &Response) -> (String, String) {
    let text = response.text();
    let page = cloudflare::classify(response);
    let denied = text.contains("That account does not have access");
    match page {
        _ if denied => (
            "Access refuses the user: \"That account does not have access\"".to_string(),
            format!(
                "no Allow policy of the application matches {}; add the monitoring user's e-mail (or its group) to a policy in Zero Trust → Access → Applications",
                config
                    .passkey
                    .as_ref()
                    .and_then(|p| p.0.email.clone())
                    .unwrap_or_else(|| "the monitoring user".into())
            ),
        ),
        Some(EdgePage::AccessError(Some(msg))) if msg.contains("exchange code for token") => (
            format!("Access: {msg}"),
            format!(
                "Cloudflare could not redeem the code at Pocket ID's token endpoint: check the Client secret in Zero Trust → Settings → Authentication → (Pocket ID) against the client's secret in Pocket ID, and that Cloudflare reaches {}/api/oidc/token (no WAF challenge)",
                normalise_base(&config.idp)
            ),
        ),
        Some(EdgePage::AccessError(Some(msg))) if msg.contains("fresh keys") => (
            format!("Access: {msg}"),
            format!(
                "Cloudflare could not verify Pocket ID's id_token: its Certificate URL must be {}/.well-known/jwks.json and reachable from Cloudflare",
                normalise_base(&config.idp)
            ),
        ),
        Some(EdgePage::AccessError(Some(msg))) if msg.contains(NO_IDENTITY) => (
            format!("Access: {msg}"),
            "Access found no e-mail address in Pocket ID's id_token (its scopes, its Email claim, or the user's address in Pocket ID)".to_string(),
        ),
        Some(EdgePage::AccessError(msg)) => (
            format!(
                "Access error page after the callback: {}",
                msg.unwrap_or_else(|| "(no message)".into())
            ),
            "Access could not complete the login with Pocket ID's answer; its message names the setting (Zero Trust → Settings → Authentication → the Pocket ID provider), and its Ray ID lets Cloudflare support find the request".to_string(),
        ),
        _ => unexpected("GET the Access callback", response),
    }
}

/// `service.reach`: the original URL answers the expected status (and text) with the session.
/// `as_browser`: asked shaped like a browser's, as the site's redirect to Access was
/// (Managed OAuth), so that a session Access does not take gets its login, not a 401.
pub async fn service_reach(
    config: &Config,
    http: &Http,
    landed: Url,
    as_browser: bool,
) -> CheckResult {
    let mut f = Findings::start(ids::SERVICE_REACH);
    let response = match http
        .send(
            ids::SERVICE_REACH,
            Request::get(landed.clone(), Accept::Html).like_browser_if(as_browser),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            f.request_failed(format!("GET {}", redact::url(&landed)), &e);
            return f.finish("");
        }
    };
    if let Some(Ok(location)) = response.location()
        && cloudflare::parse_login_url(&location).is_some()
    {
        let (finding, hint) = login_loop(&mut f, http, &landed, &response);
        f.fail(finding, hint);
        return f.finish("");
    }
    judge_site(config, f, &response, "after login")
}

/// Why Access sends the browser back to its login right after admitting it, found
/// rather than guessed: the application token's times against this machine's clock and
/// the edge's `Date`, then whether the cookie covers the URL. The finding names the
/// cause with the measured skew.
fn login_loop(f: &mut Findings, http: &Http, url: &Url, response: &Response) -> (String, String) {
    let lead =
        "login loop: with the session just set, the site redirects to the Access login again";
    let Some(token) = http.cookie_value(url, "CF_Authorization") else {
        return (
            format!("{lead}: CF_Authorization was set, but not for {}", redact::url(url)),
            "the cookie's Path or Domain does not cover this URL: check the application's cookie settings (Zero Trust → Access → Applications → the application → Settings), and that no proxy rewrites Set-Cookie on /cdn-cgi/access/authorized".to_string(),
        );
    };
    let now = crate::timefmt::unix_now();
    let edge_now = response
        .header("date")
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    if let Some(edge) = edge_now {
        f.detail("edge_clock_offset_s", edge - now);
    }
    let claims = unverified_claims(token.expose()).unwrap_or_default();
    let time = |name: &str| claims.get(name).and_then(serde_json::Value::as_i64);
    let leeway = JWT_LEEWAY as i64;
    let against_edge = |t: i64| match edge_now {
        Some(edge) => format!(" and {} s after the edge's Date header", t - edge),
        None => String::new(),
    };
    if let Some(nbf) = time("nbf").or(time("iat"))
        && nbf > now + leeway
    {
        f.detail("clock_skew_s", nbf - now);
        let edge_agrees = edge_now.is_some_and(|edge| (edge - now).abs() <= leeway);
        let hint = if edge_agrees {
            format!(
                "the token was issued {} s in the future by the clocks of this machine and of the edge, which agree: the clock of whoever signs or checks the token is off — if the origin validates Cf-Access-Jwt-Assertion, set its clock right (timedatectl set-ntp true); a verifier refuses a token before its nbf",
                nbf - now
            )
        } else {
            format!(
                "this machine's clock is off against the edge's by {} s: set it right (timedatectl set-ntp true), then run again",
                edge_now.map_or(0, |edge| edge - now)
            )
        };
        return (
            format!(
                "{lead}: clock skew — CF_Authorization is not valid before {}, {} s after this machine's clock{}",
                crate::timefmt::rfc3339(nbf),
                nbf - now,
                against_edge(nbf)
            ),
            hint,
        );
    }
    if let Some(exp) = time("exp")
        && exp < now - leeway
    {
        f.detail("clock_skew_s", exp - now);
        return (
            format!(
                "{lead}: CF_Authorization expired at {}, {} s before this machine's clock{}",
                crate::timefmt::rfc3339(exp),
                now - exp,
                against_edge(exp)
            ),
            match edge_now {
                Some(edge) if (edge - now).abs() > leeway => format!(
                    "set this machine's clock right (timedatectl set-ntp true): it is {} s {} the edge's Date header, so the token looks expired here",
                    (now - edge).abs(),
                    if now > edge { "ahead of" } else { "behind" }
                ),
                Some(_) => "set the application's session duration above zero (Zero Trust → Access → Applications → the application): this machine's clock and the edge's agree, so the token was issued already expired".to_string(),
                None => "check this machine's clock (timedatectl) and the application's session duration in Zero Trust: the edge sent no Date header to tell which is off".to_string(),
            },
        );
    }
    (
        format!("{lead}; the token's times agree with this clock (within {leeway} s) and the cookie covers the URL"),
        "Access does not take its own token for this URL: another Access application with a more specific path may cover it (its token is for another AUD), or a proxy strips the CF_Binding cookie (Binding cookie setting); compare the application's domain and path with the URL".to_string(),
    )
}

/// The fix for a status the application behind Access answers itself (no edge page):
/// each cause the status leaves, and where to look — the fix first.
fn origin_status_hint(status: u16, expected: u16) -> String {
    match status {
        401 | 403 => "give the application behind the tunnel this Access application's AUD and team domain if it validates the Cf-Access-Jwt-Assertion header (Zero Trust → Access → Applications → the application → Overview), else let the monitoring user past its own login or allow list — it refuses the request Access admitted, and its log says which".to_string(),
        500..=599 => format!("read the application's log: it (or a proxy inside it) fails with HTTP {status} after Access admitted the request and the tunnel reached it"),
        300..=399 => format!("monitor the URL the application redirects to, or pass --expect-status {status} if the redirect is right: the login did not lead there"),
        _ => format!("check the URL you monitor and the application's log, or pass --expect-status {status} if {status} is what it should answer (expected {expected}): the application behind the tunnel answers it itself"),
    }
}

/// The verdict on the site's answer once Access admitted the request.
pub(super) fn judge_site(
    config: &Config,
    mut f: Findings,
    response: &crate::http::Response,
    when: &str,
) -> CheckResult {
    let status = response.status.as_u16();
    f.detail("status", status);
    if status != config.expect_status {
        let (finding, hint) = match cloudflare::classify(response) {
            Some(_) => unexpected(when, response),
            // Two causes answer it (checks::causes): cloudflared's catch-all rule when
            // the tunnel has no public hostname for the site — the status alone, no
            // body — and the application behind the tunnel, with or without a page.
            None if status == 404 => {
                let host = response.url.host_str().unwrap_or_default();
                let url = redact::url(&response.url);
                f.detail("symptom", "service.not_found");
                f.detail("host", host);
                f.detail("url", url.as_str());
                f.detail("body_bytes", response.body.len());
                let body = if response.body.is_empty() {
                    "an empty 404".to_string()
                } else {
                    format!("HTTP 404 with a {}-byte page", response.body.len())
                };
                (
                    format!(
                        "{when} the site answers {body}, expected {}",
                        config.expect_status
                    ),
                    format!(
                        "add a public hostname {host} to the site's tunnel, or make the application behind it serve {url}"
                    ),
                )
            }
            None => (
                format!(
                    "{when} the site answers HTTP {status}, expected {}",
                    config.expect_status
                ),
                origin_status_hint(status, config.expect_status),
            ),
        };
        f.fail(finding, hint);
        return f.finish("");
    }
    if let Some(text) = &config.expect_body
        && !response.text().contains(text.as_str())
    {
        f.fail(
            format!("the page does not contain \"{text}\""),
            "the origin answers, but not with the expected content".to_string(),
        );
        return f.finish("");
    }
    f.finish(format!(
        "{} answers HTTP {status} {when} ({} bytes{})",
        redact::url(&response.url),
        response.body.len(),
        config
            .expect_body
            .as_deref()
            .map(|t| format!(", contains \"{t}\""))
            .unwrap_or_default()
    ))
}

/// `service.reach` with an Access service token instead of a login. The token headers
/// go to the site's host only, never across a redirect to another host.
pub async fn service_token_reach(
    config: &Config,
    http: &Http,
    token: &(crate::redact::Secret, crate::redact::Secret),
) -> CheckResult {
    let mut f = Findings::start(ids::SERVICE_REACH);
    f.detail("mode", "service token");
    let host = config
        .service
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut url = config.service.clone();
    for _ in 0..=MAX_HOPS {
        let mut request = Request::get(url.clone(), Accept::Html);
        // The token goes to the site's own origin only: scheme, host and port.
        if url.scheme() == "https" && url.origin() == config.service.origin() {
            request = request
                .header("cf-access-client-id", &token.0)
                .header("cf-access-client-secret", &token.1);
        }
        let response = match http.send(ids::SERVICE_REACH, request).await {
            Ok(r) => r,
            Err(e) => {
                f.request_failed(format!("GET {}", redact::url(&url)), &e);
                return f.finish("");
            }
        };
        match response.location() {
            Some(Ok(location)) => {
                if cloudflare::parse_login_url(&location).is_some() {
                    f.fail(
                        "Access sends the service token to the login page",
                        "the application needs a policy with action Service Auth that includes this service token; an Allow policy sends every request to the identity provider".to_string(),
                    );
                    return f.finish("");
                }
                if let Err(e) = crate::http::refuse_downgrade(&url, &location) {
                    f.fail(e.to_string(), e.hint());
                    return f.finish("");
                }
                if !location
                    .host_str()
                    .is_some_and(|h| h.eq_ignore_ascii_case(&host))
                {
                    f.fail(
                        format!(
                            "with the service token the site redirects to {}",
                            redact::url(&location)
                        ),
                        "with a valid service token Access lets the request through; a redirect elsewhere means the application or the origin redirects, see the hops with --trace",
                    );
                    return f.finish("");
                }
                url = location;
            }
            Some(Err(_)) => {
                f.fail("a redirect with an unusable Location", "a server in the chain sent a Location that is not a URL; see the hop with --trace and fix the proxy or application that sends it");
                return f.finish("");
            }
            None => {
                if matches!(
                    cloudflare::classify(&response),
                    Some(EdgePage::AccessForbidden) | Some(EdgePage::AccessError(_))
                ) || (matches!(response.status.as_u16(), 401 | 403)
                    && response.header("cf-access-aud").is_some())
                {
                    f.fail(
                        format!("Access refuses the service token (HTTP {})", response.status.as_u16()),
                        "the token's id or secret is wrong, it expired or was revoked, or no Service Auth policy includes it".to_string(),
                    );
                    return f.finish("");
                }
                return judge_site(config, f, &response, "with the service token");
            }
        }
    }
    f.fail(
        crate::http::HttpError::TooManyRedirects.to_string(),
        "a redirect loop with the service token; look at the hops with --trace",
    );
    f.finish("")
}

/// `idp.exchange`: ssoprobe's own code flow for the same client, redeemed at the token
/// endpoint with the client secret; the id_token must verify against the JWKS. It tells
/// "Pocket ID is broken" from "Cloudflare's settings are broken".
pub async fn exchange(
    config: &Config,
    http: &Http,
    authorize: &AuthorizeRequest,
    discovery: Option<Arc<Discovery>>,
    secret: &crate::redact::Secret,
) -> CheckResult {
    let mut f = Findings::start(ids::IDP_EXCHANGE);
    let flow = OwnFlow::new();
    let client_id = config
        .client_id
        .clone()
        .unwrap_or_else(|| authorize.client_id.clone());
    let callback = authorize.redirect_uri.clone().unwrap_or_default();
    let base = normalise_base(&config.idp);
    let Some(code) = own_code(&mut f, http, &flow, &base, &client_id, &callback).await else {
        return f.finish("");
    };
    let grant = Grant {
        base: &base,
        client_id: &client_id,
        secret,
        code,
        callback,
        verifier: flow.verifier,
    };
    let Some(id_token) = redeem(&mut f, http, grant).await else {
        return f.finish("");
    };
    let nonce = flow.nonce;
    let issuer = discovery
        .as_ref()
        .and_then(|d| d.issuer.clone())
        .unwrap_or(base.clone());
    match verify_with_jwks(http, &config.idp, &id_token, &issuer, &client_id).await {
        Ok(claims) => {
            if claims.get("nonce").and_then(|n| n.as_str()) != Some(nonce.as_str()) {
                f.fail("the id_token's nonce is not the one sent", "Pocket ID returned an id_token for another request; something caches or replays token responses between ssoprobe and Pocket ID");
            }
            let email = claims
                .get("email")
                .and_then(|e| e.as_str())
                .unwrap_or("(no email)")
                .to_string();
            f.finish(format!(
                "own code flow for client {client_id}: code redeemed with the secret, id_token verifies (iss, aud, exp, nonce), email {email}"
            ))
        }
        Err(e) => {
            f.fail(format!("the id_token does not verify: {e}"), format!("the gateway (Cloudflare Access, oauth2-proxy) verifies Pocket ID's id_tokens the same way (issuer {issuer}, audience {client_id}, keys from the JWKS); fix what is named before it refuses logins"));
            f.finish("")
        }
    }
}

/// The values of one authorization request of our own: PKCE verifier and challenge,
/// state and nonce, all fresh.
struct OwnFlow {
    verifier: String,
    challenge: String,
    state: String,
    nonce: String,
}

impl OwnFlow {
    fn new() -> OwnFlow {
        use base64::Engine;
        use sha2::Digest;
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        OwnFlow {
            verifier,
            challenge,
            state: uuid::Uuid::new_v4().simple().to_string(),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// Asks `/authorize` for a code with the login's session: the code, or `None` with the
/// finding.
async fn own_code(
    f: &mut Findings,
    http: &Http,
    flow: &OwnFlow,
    base: &str,
    client_id: &str,
    callback: &str,
) -> Option<String> {
    let mut authorize = match Url::parse(&format!("{base}{}", pocketid::paths::AUTHORIZE)) {
        Ok(u) => u,
        Err(_) => {
            f.fail(format!("no authorize URL can be made from {base}"), "the IdP URL cannot carry Pocket ID's paths; give --idp as https://HOST (Pocket ID's APP_URL)");
            return None;
        }
    };
    authorize
        .query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", callback)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email profile")
        .append_pair("state", &flow.state)
        .append_pair("nonce", &flow.nonce)
        .append_pair("code_challenge", &flow.challenge)
        .append_pair("code_challenge_method", "S256");
    let response = match http
        .send(ids::IDP_EXCHANGE, Request::get(authorize, Accept::Html))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            f.request_failed("GET /authorize", &e);
            return None;
        }
    };
    let location = match response.location() {
        Some(Ok(u)) => u,
        _ => {
            let (finding, hint) = unexpected("GET /authorize with the session", &response);
            f.fail(finding, hint);
            return None;
        }
    };
    let param = |n: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.into_owned())
    };
    let Some(code) = param("code") else {
        f.fail(
            format!(
                "with a session Pocket ID did not issue a code: {}",
                param("error")
                    .or_else(|| param("error_description"))
                    .unwrap_or_else(|| redact::url(&location))
            ),
            "Pocket ID did not give this client a code for the logged-in user; its error names why (callback not registered for the client given with --client-id, or a group restriction)",
        );
        return None;
    };
    if param("state").as_deref() != Some(flow.state.as_str()) {
        f.fail("the state did not round-trip", "Pocket ID returned a state that is not the one sent; something rewrites the redirect between Pocket ID and the callback");
    }
    Some(code)
}

/// A code to redeem at the token endpoint with the client secret.
struct Grant<'a> {
    base: &'a str,
    client_id: &'a str,
    secret: &'a crate::redact::Secret,
    code: String,
    callback: String,
    verifier: String,
}

/// Redeems the code with the client secret (HTTP Basic, as Access does): the id_token,
/// or `None` with the finding.
async fn redeem(f: &mut Findings, http: &Http, grant: Grant<'_>) -> Option<crate::redact::Secret> {
    let Grant {
        base,
        client_id,
        secret,
        code,
        callback,
        verifier,
    } = grant;
    let basic = pocketid::client_basic(client_id, secret);
    let token_url = match Url::parse(&format!("{base}{}", pocketid::paths::TOKEN)) {
        Ok(u) => u,
        Err(_) => {
            f.fail(format!("no token URL can be made from {base}"), "the IdP URL cannot carry Pocket ID's paths; give --idp as https://HOST (Pocket ID's APP_URL)");
            return None;
        }
    };
    let request = Request::post_form(
        token_url,
        vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code),
            ("redirect_uri".into(), callback),
            ("code_verifier".into(), verifier),
        ],
    )
    .header("authorization", &basic);
    let response = match http.send(ids::IDP_EXCHANGE, request).await {
        Ok(r) => r,
        Err(e) => {
            f.request_failed("POST /api/oidc/token", &e);
            return None;
        }
    };
    if !response.status.is_success() {
        let err: Option<pocketid::OAuthError> = serde_json::from_slice(&response.body).ok();
        let (finding, hint) = match err {
            Some(e) if e.error == "invalid_client" => (
                "Pocket ID refuses the client secret (invalid_client)".to_string(),
                "the secret given to ssoprobe is not the client's; if Cloudflare holds the same one, its token exchange fails too: create a new secret in Pocket ID and set it in both".to_string(),
            ),
            Some(e) => (
                format!("the code exchange failed: {}: {}", e.error, e.error_description.unwrap_or_default()),
                "Pocket ID refused to redeem a code it had just issued to this client; its error names the mismatch (redirect_uri, PKCE verifier or client), see the request with --trace".to_string(),
            ),
            None => unexpected("POST /api/oidc/token", &response),
        };
        f.fail(finding, hint);
        return None;
    }
    let id_token = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| {
            v.get("id_token")
                .and_then(|t| t.as_str())
                .map(crate::redact::Secret::new)
        });
    if id_token.is_none() {
        f.fail("the token response has no id_token", "Pocket ID answers every code redeemed with the openid scope with an id_token; something in front of /api/oidc/token changes the answer");
    }
    id_token
}

async fn verify_with_jwks(
    http: &Http,
    idp: &Url,
    token: &crate::redact::Secret,
    issuer: &str,
    audience: &str,
) -> Result<serde_json::Value, String> {
    let mut url = idp.clone();
    url.set_path(pocketid::paths::JWKS);
    let response = http
        .send(ids::IDP_EXCHANGE, Request::get(url, Accept::Json))
        .await
        .map_err(|e| e.to_string())?;
    verify_jwt(&response.body, token, None, issuer, Some(audience))
}

/// Verifies `token` with the key its `kid` names in the JWKS `jwks` (extra members, as in
/// Cloudflare's certs, are ignored): signature with `algorithm` (else the token's own,
/// which the key's type must fit), issuer, audience when given (string or array),
/// exp and nbf with 60 s of leeway. Returns the claims.
fn verify_jwt(
    jwks: &[u8],
    token: &crate::redact::Secret,
    algorithm: Option<jsonwebtoken::Algorithm>,
    issuer: &str,
    audience: Option<&str>,
) -> Result<serde_json::Value, String> {
    let keys: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(jwks).map_err(|e| {
        format!(
            "the key set is not a JWKS: {}",
            crate::text::json_problem(&e)
        )
    })?;
    let header = jsonwebtoken::decode_header(token.expose())
        .map_err(|e| format!("the token: {}", super::jwt_problem(&e)))?;
    let kid = header.kid.clone().ok_or("the token has no kid")?;
    let jwk = keys
        .find(&kid)
        .ok_or_else(|| format!("it is signed with key {kid}, which the key set does not hold"))?;
    let jwk_json = serde_json::to_value(jwk).unwrap_or_default();
    if let Err((finding, _)) = super::idp::judge_key_material(&kid, &jwk_json) {
        return Err(finding);
    }
    // The algorithm comes from the key, never from the token: a token that names another
    // (HS256 with a published secret, PS256 under an RS256 key) is refused.
    let key_alg = algorithm
        .or_else(|| algorithm_of(jwk))
        .ok_or_else(|| format!("key {kid} names no algorithm Cloudflare Access verifies"))?;
    if header.alg != key_alg {
        return Err(format!(
            "it is signed with {:?}, but key {kid} is for {:?}",
            header.alg, key_alg
        ));
    }
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)
        .map_err(|e| format!("key {kid}: {}", super::jwt_problem(&e)))?;
    let mut validation = jsonwebtoken::Validation::new(key_alg);
    validation.set_issuer(&[issuer]);
    match audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    validation.validate_nbf = true;
    validation.leeway = JWT_LEEWAY;
    jsonwebtoken::decode::<serde_json::Value>(token.expose(), &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| claim_problem(&e, token, issuer, audience))
}

/// The algorithm a JWK is for, among those Access accepts: its `alg` if it names one of
/// them, else what its type and curve imply. Symmetric keys have none.
fn algorithm_of(jwk: &jsonwebtoken::jwk::Jwk) -> Option<jsonwebtoken::Algorithm> {
    use jsonwebtoken::Algorithm as A;
    use jsonwebtoken::jwk::{AlgorithmParameters as P, EllipticCurve as C, KeyAlgorithm as K};
    let accepted = [A::RS256, A::RS512, A::PS512, A::ES256, A::ES384];
    let named = match jwk.common.key_algorithm {
        Some(K::RS256) => Some(A::RS256),
        Some(K::RS512) => Some(A::RS512),
        Some(K::PS512) => Some(A::PS512),
        Some(K::ES256) => Some(A::ES256),
        Some(K::ES384) => Some(A::ES384),
        Some(_) => return None,
        None => None,
    };
    let implied = match &jwk.algorithm {
        P::RSA(_) => Some(A::RS256),
        P::EllipticCurve(ec) => match ec.curve {
            C::P256 => Some(A::ES256),
            C::P384 => Some(A::ES384),
            _ => None,
        },
        _ => None,
    };
    named.or(implied).filter(|a| accepted.contains(a))
}

/// Seconds of clock difference a verifier forgives (Access's own origin libraries use a
/// minute too).
const JWT_LEEWAY: u64 = 60;

/// A verification failure with the values that explain it: times against this
/// machine's clock, the issuer and audience the token carries.
fn claim_problem(
    e: &jsonwebtoken::errors::Error,
    token: &crate::redact::Secret,
    issuer: &str,
    audience: Option<&str>,
) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    let claims = unverified_claims(token.expose()).unwrap_or_default();
    let now = crate::timefmt::unix_now();
    let time = |name: &str| claims.get(name).and_then(serde_json::Value::as_i64);
    let text = |name: &str| match claims.get(name) {
        Some(serde_json::Value::String(s)) => crate::redact::terminal_safe(s),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str())
            .map(crate::redact::terminal_safe)
            .collect::<Vec<_>>()
            .join(", "),
        _ => "(none)".to_string(),
    };
    match e.kind() {
        K::ExpiredSignature => match time("exp") {
            Some(exp) => format!(
                "it expired at {} ({} s before this machine's clock)",
                crate::timefmt::rfc3339(exp),
                now - exp
            ),
            None => "it has expired".into(),
        },
        K::ImmatureSignature => match time("nbf") {
            Some(nbf) => format!(
                "it is not valid before {}, {} s after this machine's clock",
                crate::timefmt::rfc3339(nbf),
                nbf - now
            ),
            None => "it is not valid yet".into(),
        },
        K::InvalidIssuer => format!("its issuer is {}, expected {issuer}", text("iss")),
        K::InvalidAudience => format!(
            "its audience is {}, expected {}",
            text("aud"),
            audience.unwrap_or("(any)")
        ),
        _ => super::jwt_problem(e),
    }
}

/// A JWT's claims without verifying it, to explain why verification failed (the
/// payload is read under the body cap the token came with, and only for its numbers
/// and names).
pub(crate) fn unverified_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `access.token`: `CF_Authorization` verifies against the team's certs; iss, aud, exp,
/// email as expected.
pub async fn access_token(
    config: &Config,
    http: &Http,
    chain: &Chain<'_>,
    certs: Option<Arc<Certs>>,
) -> CheckResult {
    let mut f = Findings::start(ids::ACCESS_TOKEN);
    let Some(token) = http.cookie_value(&config.service, "CF_Authorization") else {
        f.fail("no CF_Authorization cookie for the site", "Access admitted the browser but the cookie is gone: a proxy, Worker or page rule on the site strips Set-Cookie from /cdn-cgi/access/authorized");
        return f.finish("");
    };
    let team = &chain.login.team_domain;
    // Fetched early for the team this run expected; fetched now if Access sent the
    // login to another.
    let fetched = match certs.as_deref() {
        Some((asked, result)) if asked == team => result.clone(),
        _ => fetch_certs(http, team.clone()).await.1,
    };
    let response = match fetched {
        Ok(r) if r.status.is_success() => r,
        Ok(r) => {
            let (finding, hint) = unexpected("GET /cdn-cgi/access/certs", &r);
            f.fail(finding, hint);
            return f.finish("");
        }
        Err(e) => {
            f.request_failed("GET /cdn-cgi/access/certs", &e);
            return f.finish("");
        }
    };
    let issuer = format!("https://{team}");
    let claims = match verify_jwt(
        &response.body,
        &token,
        Some(jsonwebtoken::Algorithm::RS256),
        &issuer,
        chain.login.aud.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => {
            let hint = if e.contains("does not hold") {
                "the token does not come from this team's Access".to_string()
            } else {
                format!(
                    "Access's application token is checked against the team's keys at https://{}/cdn-cgi/access/certs; a token that fails there would be refused by the site's own JWT check too",
                    chain.login.team_domain
                )
            };
            f.fail(format!("CF_Authorization does not verify: {e}"), hint);
            return f.finish("");
        }
    };
    let email = claims
        .get("email")
        .and_then(|e| e.as_str())
        .unwrap_or("")
        .to_string();
    f.detail("email", email.clone());
    if let Some(exp) = claims.get("exp").and_then(|e| e.as_i64()) {
        f.detail("expires_in_s", exp - crate::timefmt::unix_now());
    }
    if claims
        .get("type")
        .and_then(|t| t.as_str())
        .is_some_and(|t| t != "app")
    {
        f.warn(
            "CF_Authorization is not an application token (type is not app)",
            "the cookie that reached the site is not Access's application token; something else sets a cookie named CF_Authorization",
        );
    }
    if let Some((file, _)) = &config.passkey
        && let Some(expected) = &file.email
        && !email.eq_ignore_ascii_case(expected)
    {
        f.fail(
            format!("CF_Authorization is for {email}, expected {expected}"),
            "the passkey file belongs to another user than the one expected; enrol the expected monitoring user, or correct the expected e-mail",
        );
    }
    f.finish(format!(
        "CF_Authorization verifies with the team's key (RS256); iss {issuer}, aud and expiry good, email {email}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Secret;

    fn hs256(secret: &[u8], kid: &str) -> Secret {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.to_string());
        let claims = serde_json::json!({
            "iss": "https://id.example.com", "aud": "c", "exp": 4_000_000_000u64
        });
        Secret::new(
            jsonwebtoken::encode(
                &header,
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn a_symmetric_key_in_the_jwks_never_verifies_a_token() {
        let jwks =
            br#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}"#;
        let token = hs256(b"secret-secret-secret-secret", "s");
        let e = verify_jwt(jwks, &token, None, "https://id.example.com", Some("c")).unwrap_err();
        assert!(e.contains("symmetric"), "{e}");
    }

    #[test]
    fn the_algorithm_comes_from_the_key_not_the_token() {
        let jwks = include_bytes!("../../fixtures/pocketid/jwks.json");
        let token = hs256(b"anything", "3fQxwJIft7k");
        let e = verify_jwt(jwks, &token, None, "https://id.example.com", Some("c")).unwrap_err();
        assert!(e.contains("HS256") && e.contains("RS256"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn unverified_claims_of_any_text_never_panic(token in "\\PC{0,300}") {
            let _ = unverified_claims(&token);
        }
    }
}
