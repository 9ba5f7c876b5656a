//! `service.redirect` and `access.login`: the anonymous hops through Cloudflare Access.

use super::{CheckResult, Findings, ids, unexpected};
use crate::cloudflare::{self, AccessLogin, EdgePage};
use crate::config::Config;
use crate::http::{Accept, Http, Request, Response};
use crate::pocketid::{Discovery, normalise_base, paths};
use crate::redact::{self, Secret};
use std::future::Future;
use std::sync::Arc;
use url::Url;

/// The authorization request Access built, to be replayed at Pocket ID.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The full authorize URL, as Access sent it.
    pub url: Url,
    /// `client_id`.
    pub client_id: String,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `state` (secret).
    pub state: Option<Secret>,
}

fn short(aud: &str) -> String {
    if aud.len() > 12 {
        format!("{}…{}", &aud[..6], &aud[aud.len() - 4..])
    } else {
        aud.to_string()
    }
}

/// `service.redirect`: an anonymous GET must be redirected to this team's Access login.
pub async fn service_redirect(config: &Config, http: &Http) -> (CheckResult, Option<AccessLogin>) {
    let mut f = Findings::start(ids::SERVICE_REDIRECT);
    let service_host = config
        .service
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let leaves_host = |r: &crate::http::Response| match r.location() {
        Some(Ok(u)) => u
            .host_str()
            .is_some_and(|h| !h.eq_ignore_ascii_case(&service_host)),
        _ => true,
    };
    let chain = match http
        .follow(
            ids::SERVICE_REDIRECT,
            config.service.clone(),
            Accept::Json,
            leaves_host,
        )
        .await
    {
        Ok(c) => c,
        Err(e) => {
            f.fail_transport(
                format!("GET {}: {e}", redact::url(&config.service)),
                e.hint(),
            );
            return (f.finish(""), None);
        }
    };
    f.detail("hops", chain.hops.len() + 1);
    let last = &chain.last;
    f.detail("status", last.status.as_u16());
    if let Some(Ok(location)) = last.location() {
        let Some(login) = cloudflare::parse_login_url(&location) else {
            f.fail(
                format!("redirects to {} instead of a Cloudflare Access login", redact::url(&location)),
                format!(
                    "Access is not in front of {service_host}, or something answers before it (the app's own login, a proxy redirect); add a self-hosted Access application for this hostname in Zero Trust → Access → Applications"
                ),
            );
            return (f.finish(""), None);
        };
        judge_login(&mut f, config, &service_host, &login, last);
        let summary = format!(
            "redirects to Access team {} ({}), AUD {}",
            login.team,
            login.team_domain,
            login.aud.as_deref().map(short).unwrap_or_default()
        );
        let ok = !f.failed();
        return (f.finish(summary), ok.then_some(login));
    }
    judge_no_redirect(&mut f, config, last);
    (f.finish(""), None)
}

/// Records what the Access login URL says (team, application host, AUD) and judges it
/// against the expectations.
fn judge_login(
    f: &mut Findings,
    config: &Config,
    service_host: &str,
    login: &AccessLogin,
    last: &Response,
) {
    f.detail("team_domain", login.team_domain.clone());
    f.detail("app_host", login.app_host.clone());
    if let Some(aud) = &login.aud {
        f.detail("aud", aud.clone());
    }
    if let Some(r) = &login.redirect_url {
        f.detail("redirect_url", r.clone());
    }
    f.detail(
        "app_session_cookie",
        last.cookies_set().iter().any(|c| c == "CF_AppSession"),
    );
    if let Some(expected) = &config.team_domain
        && &login.team_domain != expected
    {
        f.fail(
            format!(
                "redirects to Access team '{}' ({}), expected {expected}",
                login.team, login.team_domain
            ),
            format!(
                "{service_host} is protected by another Zero Trust organization than the one you named; check which account owns the hostname's Access application, or correct --team"
            ),
        );
    }
    if login.app_host != service_host {
        f.warn(
            format!("the Access login is for application host {}, not {service_host}", login.app_host),
            "the hostname is covered by another application's domain (a wildcard or multi-domain app); check the application list in Zero Trust".to_string(),
        );
    }
    match (&login.aud, &config.aud) {
        (None, _) => f.fail(
            "the Access login URL carries no kid (application AUD)",
            "this does not look like Access's own redirect; check for a Worker or page rule rewriting it".to_string(),
        ),
        (Some(aud), Some(expected)) if aud != expected => f.fail(
            format!("redirects to the Access application with AUD {}, expected {}", short(aud), short(expected)),
            "another Access application (a more specific path or a wildcard) covers this URL; check Zero Trust → Access → Applications".to_string(),
        ),
        (Some(aud), _) if !cloudflare::is_aud(aud) => f.warn(
            format!("the AUD '{}' is not 64 hex characters", short(aud)),
            "Access AUD tags are 64 hex characters; this login URL was probably rewritten by a Worker or proxy rule, copy the AUD from Zero Trust → Access → Applications → the application → Overview",
        ),
        _ => {}
    }
}

/// Judges a site that did not redirect: public, refused by Access, or something else.
fn judge_no_redirect(f: &mut Findings, config: &Config, last: &Response) {
    if last.status.is_success() {
        f.fail(
            format!("site is publicly reachable without login (HTTP {})", last.status.as_u16()),
            format!(
                "no Access application covers {}; add a self-hosted application for this hostname in Zero Trust → Access → Applications, and make sure its DNS record is proxied (orange cloud)",
                redact::url(&config.service)
            ),
        );
        return;
    }
    match cloudflare::classify(last) {
        Some(EdgePage::AccessForbidden) => f.fail(
            format!("Access refuses with HTTP {} and offers no login", last.status.as_u16()),
            "the application has only Service Auth or Block policies; add an Allow policy for the people who log in through Pocket ID".to_string(),
        ),
        Some(EdgePage::ManagedOAuth) => f.fail(
            "Access answers 401 asking for an OAuth bearer token (Managed OAuth is on)",
            "turn off Managed OAuth for the application, or probe it with a service token".to_string(),
        ),
        _ => {
            let (finding, hint) = unexpected("instead of redirecting to Access", last);
            f.fail(finding, hint);
        }
    }
}

/// `access.login`: the team login must send the browser to Pocket ID's authorization
/// endpoint with the right client, callback, scope and PKCE.
pub async fn access_login(
    config: &Config,
    http: &Http,
    login: &AccessLogin,
    discovery: impl Future<Output = Option<Arc<Discovery>>>,
) -> (CheckResult, Option<AuthorizeRequest>) {
    let mut f = Findings::start(ids::ACCESS_LOGIN);
    let response = match http
        .send(
            ids::ACCESS_LOGIN,
            Request::get(login.url.clone(), Accept::Html),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            f.fail_transport(
                format!("GET the Access login at {}: {e}", login.team_domain),
                e.hint(),
            );
            return (f.finish(""), None);
        }
    };
    f.detail("status", response.status.as_u16());
    let idp_host = config
        .idp
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let Some(candidate) = where_access_sends(&mut f, &response, &idp_host) else {
        return (f.finish(""), None);
    };
    let expected = match discovery
        .await
        .and_then(|d| d.authorization_endpoint.clone())
    {
        Some(e) => e,
        None => {
            f.detail(
                "compared_with",
                "discovery unavailable: compared with Pocket ID's fixed path",
            );
            format!("{}{}", normalise_base(&config.idp), paths::AUTHORIZE)
        }
    };
    f.detail("authorize_url", redact::url(&candidate));
    if !judge_destination(&mut f, &candidate, &idp_host, &expected) {
        return (f.finish(""), None);
    }
    let params = judge_parameters(&mut f, config, login, &candidate);
    let summary = format!(
        "Access sends the login to {}{} with client {}, its callback and PKCE",
        idp_host,
        candidate.path(),
        params.client_id.as_deref().unwrap_or("?")
    );
    let request = (!f.failed()).then(|| AuthorizeRequest {
        url: candidate.clone(),
        client_id: params.client_id.clone().unwrap_or_default(),
        redirect_uri: params.redirect_uri.clone(),
        state: params.state.map(Secret::new),
    });
    (f.finish(summary), request)
}

/// Where the team login sends the browser: its redirect, or the Pocket ID button of
/// the sign-in page Access shows when Instant Auth is off. `None` (with the finding
/// recorded) when neither leads on.
fn where_access_sends(f: &mut Findings, response: &Response, idp_host: &str) -> Option<Url> {
    if let Some(Ok(location)) = response.location() {
        return Some(location);
    }
    if matches!(cloudflare::classify(response), Some(EdgePage::AccessSignIn)) {
        f.warn(
            "Access shows its sign-in page instead of sending the login straight to Pocket ID (Instant Auth is off)",
            "in the application's Login methods, keep Pocket ID as the only identity provider and turn on Instant Auth".to_string(),
        );
        let link = idp_link(&response.text(), &response.url, idp_host);
        if link.is_none() {
            f.fail(
                format!("the Access sign-in page has no link to Pocket ID ({idp_host})"),
                "Pocket ID is not among the application's identity providers; add it under the application's Login methods".to_string(),
            );
        }
        return link;
    }
    let (finding, hint) = unexpected("instead of redirecting to the identity provider", response);
    f.fail(finding, hint);
    None
}

/// Whether the login goes to Pocket ID's host (false stops the check) and to its
/// authorization endpoint `expected` (a failure, but the parameters are still judged).
fn judge_destination(f: &mut Findings, candidate: &Url, idp_host: &str, expected: &str) -> bool {
    let host = candidate
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if host != idp_host {
        f.fail(
            format!("Access sends the login to {host}, not to Pocket ID ({idp_host})"),
            format!(
                "the application's identity provider is not the Pocket ID one; in Zero Trust → Settings → Authentication, the OpenID Connect provider's Auth URL must be {expected}"
            ),
        );
        return false;
    }
    if let Ok(e) = Url::parse(expected) {
        let same_host = e.host_str().is_some_and(|h| h.eq_ignore_ascii_case(&host));
        if !same_host || e.path() != candidate.path() {
            f.fail(
                format!(
                    "Access sends the login to {host}{}, but Pocket ID's authorization endpoint is {expected}",
                    candidate.path()
                ),
                format!(
                    "in Zero Trust → Settings → Authentication → (Pocket ID), set Auth URL to {expected}"
                ),
            );
        }
    }
    true
}

/// The authorization request's parameters that the login carries on.
struct AuthParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// Judges the authorization request's parameters: client, callback, response type,
/// scopes, state and PKCE.
fn judge_parameters(
    f: &mut Findings,
    config: &Config,
    login: &AccessLogin,
    candidate: &Url,
) -> AuthParams {
    let param = |name: &str| {
        candidate
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let client_id = param("client_id");
    match (&client_id, &config.client_id) {
        (None, _) => f.fail(
            "the authorization request has no client_id",
            "set App ID in Cloudflare's Pocket ID identity provider to the Client ID of the Pocket ID OIDC client".to_string(),
        ),
        (Some(got), Some(want)) if got != want => f.fail(
            format!("Access sends client_id {got}, expected {want}"),
            format!("set App ID in Cloudflare's Pocket ID identity provider to {want}"),
        ),
        _ => {}
    }
    if let Some(c) = &client_id {
        f.detail("client_id", c.clone());
    }
    let callback = cloudflare::callback_url(&login.team_domain);
    let redirect_uri = param("redirect_uri");
    match &redirect_uri {
        Some(r) if *r == callback => {}
        Some(r) => f.fail(
            format!("redirect_uri is {r}, expected {callback}"),
            "something rewrites Access's authorization request (a Worker or a proxy rule); Access always sends its team callback".to_string(),
        ),
        None => f.fail("the authorization request has no redirect_uri", "Access always sends redirect_uri; something rewrites its authorization request (a Worker or a proxy rule on the team domain or the IdP host)"),
    }
    match param("response_type").as_deref() {
        Some("code") => {}
        other => f.fail(
            format!(
                "response_type is {}, expected code",
                other.unwrap_or("missing")
            ),
            "Access always asks for response_type=code; something rewrites its authorization request (a Worker or a proxy rule)",
        ),
    }
    let scope = param("scope").unwrap_or_default();
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    f.detail("scope", scope.clone());
    for needed in ["openid", "email"] {
        if !scopes.contains(&needed) {
            f.fail(
                format!("scope '{scope}' lacks {needed}"),
                "in Cloudflare's Pocket ID identity provider, the OIDC Scopes must include openid and email (default: openid email profile)".to_string(),
            );
        }
    }
    let state = param("state");
    if state.is_none() {
        f.fail("the authorization request has no state", "Access always sends a state; something strips it from its authorization request (a Worker or a proxy rule), and Access will refuse the callback");
    }
    match (param("code_challenge"), param("code_challenge_method")) {
        (Some(_), Some(m)) if m == "S256" => {
            f.detail("pkce", "S256");
        }
        (Some(_), m) => {
            f.detail("pkce", m.clone().unwrap_or_else(|| "plain".into()));
            f.warn(
                format!(
                    "PKCE uses method {}, not S256",
                    m.unwrap_or_else(|| "plain".into())
                ),
                "tick PKCE in Cloudflare's Pocket ID identity provider settings (Zero Trust → Settings → Authentication): Access then uses S256",
            );
        }
        (None, _) => {
            f.detail("pkce", "none");
            f.warn(
                "Access sends no PKCE code_challenge",
                "tick 'PKCE' in Cloudflare's Pocket ID identity provider settings (Zero Trust → Settings → Authentication)".to_string(),
            );
        }
    }
    AuthParams {
        client_id,
        redirect_uri,
        state,
    }
}

/// The first link on an Access sign-in page that leads to the IdP host.
fn idp_link(body: &str, base: &Url, idp_host: &str) -> Option<Url> {
    let doc = scraper::Html::parse_document(body);
    let selector = scraper::Selector::parse("a[href], form[action]").ok()?;
    doc.select(&selector)
        .filter_map(|e| e.value().attr("href").or_else(|| e.value().attr("action")))
        .filter_map(|href| base.join(href).ok())
        .find(|u| {
            u.host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(idp_host))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_idp_link_on_a_sign_in_page() {
        let base = Url::parse("https://xyz.cloudflareaccess.com/cdn-cgi/access/login/x").unwrap();
        let body = r#"<html><title>Sign in ・ Cloudflare Access</title><a href="/help">Help</a>
            <a class="idp" href="https://id.example.com/authorize?client_id=c&amp;state=abcdefgh">Pocket ID</a></html>"#;
        let u = idp_link(body, &base, "id.example.com").unwrap();
        assert_eq!(u.path(), "/authorize");
        assert!(u.query().unwrap().contains("client_id=c"));
        assert!(idp_link(body, &base, "other.example.com").is_none());
    }
}
