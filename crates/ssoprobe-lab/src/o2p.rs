//! oauth2-proxy v7.15 (provider `oidc`) in front of service.example.com, the lab's
//! second gateway (`reference/oauth2-proxy.md`): a TLS reverse proxy (Caddy, nginx or
//! Traefik, by face) hands every request to oauth2-proxy, which sends anonymous
//! visitors to its sign-in page or straight to Pocket ID with its own client, redeems
//! the code server to server at its callback, keeps the session in the
//! `_oauth2_proxy` cookie and passes signed-in requests on to the site.
//!
//! The healthy lab runs oauth2-proxy as a careful operator does: with
//! `--skip-provider-button` (anonymous visitors go straight to Pocket ID) and a
//! server-side session store (`--session-store-type=redis`: the cookie is a ticket,
//! and sign-out ends the session). Faults o2p-sign-in-page and o2p-cookie-session turn
//! them back to oauth2-proxy's defaults.
//!
//! The faces differ in what oauth2-proxy's flags and templates change without
//! changing its protocol: the classic face is the reference configuration's (built-in
//! pages, Caddy in front), the rebranded face custom templates with
//! `--provider-display-name="Pocket ID"` (nginx in front), the terse face minimal custom
//! templates (Traefik in front).

use super::{Fault, FaultSet, IDP_HOST, O2P_CALLBACK_URL, O2P_CLIENT_ID, Variant};
use super::{edge, origin, relying, wire};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header::{
    ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, EXPIRES, LOCATION, SERVER, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The session cookie (`--cookie-name`'s default).
pub(super) const SESSION_COOKIE: &str = "_oauth2_proxy";
/// The CSRF cookie of a login in flight.
pub(super) const CSRF_COOKIE: &str = "_oauth2_proxy_csrf";
/// The header oauth2-proxy names the signed-in user in on every authenticated answer.
const GAP_AUTH: HeaderName = HeaderName::from_static("gap-auth");
/// The version the pages' footers show.
const VERSION: &str = "v7.15.6";
/// The scopes oauth2-proxy's oidc provider asks for.
const SCOPES: &str = "openid email profile";
/// `--cookie-csrf-expire`: 15 minutes.
const CSRF_TTL: u64 = 15 * 60;
/// `--cookie-expire`: 7 days.
const COOKIE_TTL: u64 = 7 * 24 * 3600;
/// A session lasts as long as Pocket ID's access token (60 minutes by default), not
/// as long as its cookie.
const SESSION_TTL: Duration = Duration::from_secs(3600);
/// The User-Agent of Go's HTTP client, which oauth2-proxy's provider uses.
const GO_USER_AGENT: &str = "Go-http-client/1.1";

/// The generic messages of oauth2-proxy's error page.
const GENERIC_500: &str =
    "Oops! Something went wrong. For more information contact your server administrator.";
const GENERIC_403: &str = "You do not have permission to access this resource.";
const CSRF_FAILED: &str = "Login Failed: Unable to find a valid CSRF token. Please try again.";
const UPSTREAM_FAILED: &str = "There was a problem connecting to the upstream server.";

const SIGN_IN_PAGE: edge::Faces = edge::Faces {
    classic: include_str!("../../../fixtures/oauth2-proxy/sign-in.html"),
    rebranded: include_str!("../../../fixtures/oauth2-proxy/sign-in-rebranded.html"),
    terse: include_str!("../../../fixtures/oauth2-proxy/sign-in-terse.html"),
};
const ERROR_PAGE: edge::Faces = edge::Faces {
    classic: include_str!("../../../fixtures/oauth2-proxy/error.html"),
    rebranded: include_str!("../../../fixtures/oauth2-proxy/error-rebranded.html"),
    terse: include_str!("../../../fixtures/oauth2-proxy/error-terse.html"),
};
/// The error page's "Go back" and "Sign in" buttons (`{{RD}}`: where to return).
const ERROR_ACTIONS: edge::Faces = edge::Faces {
    classic: "      <div class=\"buttons is-centered\">\n        <form method=\"GET\" action=\"/\"><button type=\"submit\" class=\"button is-primary\">Go back</button></form>\n        <form method=\"GET\" action=\"/oauth2/sign_in\"><input type=\"hidden\" name=\"rd\" value=\"{{RD}}\"><button type=\"submit\" class=\"button is-primary\">Sign in</button></form>\n      </div>\n",
    rebranded: "<p><a href=\"/\">Back to the intranet</a> · <a href=\"/oauth2/sign_in?rd={{RD_QUERY}}\">Log in again</a></p>\n",
    terse: "<form action=\"/oauth2/sign_in\"><input name=\"rd\" type=\"hidden\" value=\"{{RD}}\"><input type=\"submit\" value=\"Sign in\"></form>",
};

/// What oauth2-proxy is configured with.
pub(super) struct ProxyConfig<'a> {
    pub(super) faults: FaultSet,
    pub(super) variant: Variant,
    /// Where it reaches Pocket ID (id.example.com resolves there).
    pub(super) idp_addr: SocketAddr,
    /// The lab CA (`--provider-ca-file`).
    pub(super) ca_pem: &'a str,
    /// `--client-secret`.
    pub(super) client_secret: String,
}

/// A login oauth2-proxy sent to Pocket ID, by the value of its CSRF cookie (the real
/// one keeps this encrypted in the cookie itself).
struct Login {
    /// The nonce that starts `state`.
    nonce: String,
    /// The PKCE verifier (none without `--code-challenge-method`).
    verifier: Option<String>,
    created: Instant,
}

/// A signed-in session, by the value of its session cookie.
#[derive(Clone)]
struct Session {
    /// The id_token's `sub`.
    user: String,
    email: String,
    preferred_username: String,
    created: Instant,
}

/// oauth2-proxy's configuration and state.
struct Proxy {
    variant: Variant,
    faults: FaultSet,
    client: reqwest::Client,
    /// `https://id.example.com`, with the lab's port when it is not 443.
    idp_base: String,
    client_secret: String,
    /// `--code-challenge-method=S256` (off under fault o2p-pkce-required).
    pkce: bool,
    /// `--skip-provider-button` (off under fault o2p-sign-in-page).
    skip_provider_button: bool,
    /// `--redirect-url` (http under fault o2p-redirect-http).
    callback_url: String,
    /// The session lives in the cookie alone (fault o2p-cookie-session), not in a
    /// server-side store that sign-out clears.
    cookie_store: bool,
    /// `--provider-display-name`.
    provider_name: &'static str,
    logins: Mutex<HashMap<String, Login>>,
    sessions: Mutex<HashMap<String, Session>>,
}

/// Locks a map; a panic while holding the lock cannot leave it half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The service.example.com router: the front proxy, and behind it oauth2-proxy (or
/// nothing, under fault o2p-not-running).
pub(super) fn router(config: ProxyConfig<'_>) -> Result<Router, reqwest::Error> {
    let ProxyConfig {
        faults,
        variant,
        idp_addr,
        ca_pem,
        client_secret,
    } = config;
    let front = middleware::map_response_with_state(variant, stamp_front);
    if faults.has(Fault::O2pNotRunning) {
        // oauth2-proxy exits at start-up (it fetches discovery once and never
        // retries): the front proxy finds nothing listening.
        return Ok(Router::new()
            .fallback(move || async move { front_bad_gateway(variant) })
            .layer(front));
    }
    let (client, idp_base) = relying::client(idp_addr, ca_pem, GO_USER_AGENT)?;
    let proxy = Arc::new(Proxy {
        variant,
        pkce: !faults.has(Fault::O2pPkceRequired),
        client,
        idp_base,
        client_secret,
        skip_provider_button: !faults.has(Fault::O2pSignInPage),
        callback_url: if faults.has(Fault::O2pRedirectHttp) {
            O2P_CALLBACK_URL.replacen("https://", "http://", 1)
        } else {
            O2P_CALLBACK_URL.to_string()
        },
        // A split cookie is the cookie store's: a ticket is small.
        cookie_store: faults.has(Fault::O2pCookieSession) || faults.has(Fault::O2pCookieSplit),
        faults,
        provider_name: match variant {
            Variant::Classic => "OpenID Connect",
            Variant::Rebranded | Variant::Terse => "Pocket ID",
        },
        logins: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
    });
    Ok(Router::new()
        .route("/ping", any(ok))
        .route("/ready", any(ok))
        .route("/robots.txt", any(robots))
        .route("/oauth2/start", any(start))
        .route("/oauth2/sign_in", any(sign_in))
        .route("/oauth2/callback", any(callback))
        .route("/oauth2/auth", any(auth))
        .route("/oauth2/userinfo", any(userinfo))
        .route("/oauth2/sign_out", any(sign_out))
        .route("/oauth2/static/{*file}", any(static_file))
        .fallback(gate)
        .with_state(proxy)
        .layer(front))
}

/// What the front proxy adds to every answer: Caddy's `Server` (classic), nginx's
/// (rebranded); Traefik adds none (terse).
pub(super) async fn stamp_front(
    State(variant): State<Variant>,
    mut response: Response,
) -> Response {
    let server = match variant {
        Variant::Classic => Some("Caddy"),
        Variant::Rebranded => Some("nginx"),
        Variant::Terse => None,
    };
    if let Some(server) = server {
        response
            .headers_mut()
            .insert(SERVER, HeaderValue::from_static(server));
    }
    response
}

/// The front proxy's 502 when nothing listens behind it: Caddy's empty answer,
/// nginx's page, Traefik's line.
fn front_bad_gateway(variant: Variant) -> Response {
    match variant {
        Variant::Classic => StatusCode::BAD_GATEWAY.into_response(),
        Variant::Rebranded => (
            StatusCode::BAD_GATEWAY,
            [(CONTENT_TYPE, "text/html")],
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        )
            .into_response(),
        Variant::Terse => (
            StatusCode::BAD_GATEWAY,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Bad Gateway",
        )
            .into_response(),
    }
}

/// The headers oauth2-proxy sets on its own pages and everything under `/oauth2/`
/// but `/oauth2/auth`.
fn no_cache(headers: &mut HeaderMap) {
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate, max-age=0"),
    );
    headers.insert(
        EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 UTC"),
    );
    headers.insert("x-accel-expires", HeaderValue::from_static("0"));
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn ok() -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "OK",
    )
        .into_response()
}

async fn robots() -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "User-agent: *\nDisallow: /\n",
    )
        .into_response()
}

/// `/oauth2/static/…`: the pages' style sheets (Bulma), with the no-cache headers.
async fn static_file(uri: Uri) -> Response {
    let mut response = if uri.path().ends_with(".css") {
        (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/css; charset=utf-8")],
            "/*! bulma.io v0.9.4 | MIT License | github.com/jgthms/bulma */\n",
        )
            .into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            "404 page not found\n",
        )
            .into_response()
    };
    no_cache(response.headers_mut());
    response
}

/// A redirect as Go's `http.Redirect` writes it for a GET.
fn go_redirect(location: &str) -> Response {
    let Ok(value) = HeaderValue::from_str(location) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let body = format!("<a href=\"{}\">Found</a>.\n\n", wire::html_escape(location));
    let mut response = (
        StatusCode::FOUND,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    response.headers_mut().insert(LOCATION, value);
    response
}

fn append_cookie(headers: &mut HeaderMap, line: &str) {
    if let Ok(value) = HeaderValue::from_str(line) {
        headers.append(SET_COOKIE, value);
    }
}

/// Whether oauth2-proxy takes the request for a script's: an item of some `Accept`
/// line, split at commas and trimmed, is exactly `application/json`.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| item.trim() == "application/json")
}

/// `rd` when it is a path on this site, else `/` (oauth2-proxy's `IsValidRedirect`
/// for local redirects: no other host, no `//` or `/\` that browsers read as one).
fn local_redirect(rd: &str) -> String {
    let local = rd.starts_with('/')
        && !rd.starts_with("//")
        && !rd.starts_with("/\\")
        && !rd.chars().any(|c| c.is_whitespace() || c.is_control());
    if local { rd } else { "/" }.to_string()
}

fn query_pairs(query: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

impl Proxy {
    /// The scopes it asks for: `--allowed-group` adds `groups`.
    fn scopes(&self) -> String {
        if self.faults.has(Fault::O2pGroupNotAllowed) {
            format!("{SCOPES} groups")
        } else {
            SCOPES.to_string()
        }
    }

    /// Whether its rules admit the id_token's user: `--email-domain` (example.com, or
    /// other.org under fault o2p-domain-not-allowed) and `--allowed-group` (admins,
    /// under fault o2p-group-not-allowed).
    fn admits(&self, claims: &relying::Claims, email: &str) -> bool {
        if self.faults.has(Fault::O2pDomainNotAllowed) && !email.ends_with("@other.org") {
            return false;
        }
        if self.faults.has(Fault::O2pGroupNotAllowed) {
            let in_admins = claims
                .get("groups")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|g| g.iter().any(|n| n.as_str() == Some("admins")));
            return in_admins;
        }
        true
    }

    /// The session the request's cookie carries, if it is one oauth2-proxy made and
    /// it has not ended with its access token.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let value = session_value(headers)?;
        lock(&self.sessions)
            .get(&value)
            .filter(|s| s.created.elapsed() < SESSION_TTL)
            .cloned()
    }

    /// The sign-in page, returning to `rd`.
    fn sign_in_page(&self, status: StatusCode, rd: &str) -> Response {
        let page = wire::fill(
            SIGN_IN_PAGE.of(self.variant),
            &[
                ("RD", &wire::html_escape(rd)),
                ("PROVIDER", self.provider_name),
                ("VERSION", VERSION),
            ],
        );
        let mut response =
            (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
        no_cache(response.headers_mut());
        response
    }

    /// The error page: `status`, one `message`, a request id; with the "Go back" and
    /// "Sign in" buttons unless it is the upstream's 502.
    fn error_page(&self, status: StatusCode, message: &str, rd: &str) -> Response {
        let actions = if status == StatusCode::BAD_GATEWAY {
            String::new()
        } else {
            let rd_query: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
            wire::fill(
                ERROR_ACTIONS.of(self.variant),
                &[
                    ("RD", &wire::html_escape(rd)),
                    ("RD_QUERY", &wire::html_escape(&rd_query)),
                ],
            )
        };
        let page = wire::fill(
            ERROR_PAGE.of(self.variant),
            &[
                ("STATUS", status.as_str()),
                ("TITLE", status.canonical_reason().unwrap_or("Error")),
                ("MESSAGE", &wire::html_escape(message)),
                ("REQUEST_ID", &uuid::Uuid::new_v4().to_string()),
                ("ACTIONS", &actions),
                ("VERSION", VERSION),
            ],
        );
        let mut response =
            (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
        no_cache(response.headers_mut());
        response
    }

    /// Starts a login returning to `rd`: remembers it under a fresh CSRF cookie and
    /// sends the browser to Pocket ID's authorize with oauth2-proxy's client.
    fn start_login(&self, rd: &str) -> Response {
        let nonce = wire::b64url(&wire::random_bytes(32));
        let verifier = self.pkce.then(|| wire::b64url(&wire::random_bytes(72)));
        let mut pairs = vec![
            ("approval_prompt".to_string(), "force".to_string()),
            ("client_id".to_string(), O2P_CLIENT_ID.to_string()),
            ("redirect_uri".to_string(), self.callback_url.clone()),
            ("response_type".to_string(), "code".to_string()),
            ("scope".to_string(), self.scopes()),
            (
                "state".to_string(),
                format!("{nonce}:{}", wire::go_query_escape(rd)),
            ),
        ];
        if let Some(verifier) = &verifier {
            pairs.push(("code_challenge".to_string(), wire::pkce_s256(verifier)));
            pairs.push(("code_challenge_method".to_string(), "S256".to_string()));
        }
        let location = format!(
            "https://{IDP_HOST}/authorize?{}",
            wire::go_encode_query(&pairs)
        );
        // The real cookie holds the encrypted login: 352 characters as captured, 176
        // without the PKCE verifier.
        let csrf = wire::b64url(&wire::random_bytes(if self.pkce { 264 } else { 132 }));
        {
            let mut logins = lock(&self.logins);
            logins.retain(|_, l| l.created.elapsed().as_secs() < CSRF_TTL);
            logins.insert(
                csrf.clone(),
                Login {
                    nonce,
                    verifier,
                    created: Instant::now(),
                },
            );
        }
        let mut response = go_redirect(&location);
        let headers = response.headers_mut();
        no_cache(headers);
        append_cookie(
            headers,
            &format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={CSRF_TTL}; HttpOnly; Secure"),
        );
        response
    }

    /// The code grant at Pocket ID's token endpoint as golang.org/x/oauth2 makes it:
    /// the client secret in HTTP Basic first, then, when that fails, in the form. The
    /// id_token, or `None` for any failure.
    async fn redeem(&self, code: &str, verifier: Option<&str>) -> Option<String> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.callback_url.as_str()),
        ];
        if let Some(verifier) = verifier {
            form.push(("code_verifier", verifier));
        }
        let url = format!("{}/api/oidc/token", self.idp_base);
        let basic = self
            .client
            .post(&url)
            .header(
                AUTHORIZATION,
                relying::basic(O2P_CLIENT_ID, &self.client_secret),
            )
            .form(&form)
            .send()
            .await
            .ok()
            .filter(|r| r.status() == reqwest::StatusCode::OK);
        let response = match basic {
            Some(response) => response,
            None => {
                let mut in_form = form.clone();
                in_form.push(("client_id", O2P_CLIENT_ID));
                in_form.push(("client_secret", self.client_secret.as_str()));
                self.client.post(&url).form(&in_form).send().await.ok()?
            }
        };
        relying::id_token(response).await
    }

    /// The id_token's claims when it verifies against Pocket ID's JWKS (fetched now):
    /// RS256, the issuer discovery names, oauth2-proxy's client in `aud`, unexpired.
    async fn verify(&self, id_token: &str) -> Option<relying::Claims> {
        let keys = relying::keys(
            &self.client,
            &format!("{}/.well-known/jwks.json", self.idp_base),
        )
        .await?;
        relying::verify(id_token, &keys, O2P_CLIENT_ID)
    }
}

/// The session cookie's value: the cookie, or its parts (`_0`, `_1`, …) joined.
fn session_value(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = wire::cookie(headers, SESSION_COOKIE) {
        return Some(value.to_string());
    }
    let mut joined = String::new();
    for i in 0..8 {
        match wire::cookie(headers, &format!("{SESSION_COOKIE}_{i}")) {
            Some(part) => joined.push_str(part),
            None => break,
        }
    }
    (!joined.is_empty()).then_some(joined)
}

/// The line that clears the session cookie.
const CLEAR_SESSION: &str = "_oauth2_proxy=; Path=/; Max-Age=0; HttpOnly; Secure";

/// Whether the request carries a session cookie oauth2-proxy cannot load (not one it
/// made, ended, or expired): it answers as without one, and clears it ("Error loading
/// cookied session … removing session").
fn stale_session(proxy: &Proxy, headers: &HeaderMap) -> bool {
    session_value(headers).is_some_and(|v| !v.is_empty()) && proxy.session(headers).is_none()
}

/// Every path oauth2-proxy does not serve itself: the site, for a session; else
/// `401 {}` for a script, the sign-in page (or, with `--skip-provider-button`, the
/// login) for a browser.
async fn gate(State(proxy): State<Arc<Proxy>>, uri: Uri, headers: HeaderMap) -> Response {
    if let Some(session) = proxy.session(&headers) {
        if proxy.faults.has(Fault::O2pPathRule) {
            // The path's rule refuses the session: oauth2-proxy's 403 page, and the
            // session cookie cleared ("removing session"), to a script too.
            let mut response = proxy.error_page(StatusCode::FORBIDDEN, GENERIC_403, "/");
            append_cookie(response.headers_mut(), CLEAR_SESSION);
            return response;
        }
        let mut response = if proxy.faults.has(Fault::O2pUpstreamDown) {
            proxy.error_page(StatusCode::BAD_GATEWAY, UPSTREAM_FAILED, "/")
        } else {
            origin::signed_in_page(&session.email)
        };
        if let Ok(value) = HeaderValue::from_str(&session.email) {
            response.headers_mut().insert(GAP_AUTH, value);
        }
        return response;
    }
    if wants_json(&headers) {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            [(CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response();
        if stale_session(&proxy, &headers) {
            append_cookie(response.headers_mut(), CLEAR_SESSION);
        }
        return response;
    }
    // oauth2-proxy never returns into its own prefix.
    let rd = match uri.path_and_query().map_or("/", |p| p.as_str()) {
        p if p.starts_with("/oauth2/") => "/",
        p => p,
    };
    let stale = stale_session(&proxy, &headers);
    let mut response = if proxy.skip_provider_button {
        proxy.start_login(rd)
    } else {
        proxy.sign_in_page(StatusCode::FORBIDDEN, rd)
    };
    if stale {
        // The session loader clears it, and the sign-in page once more.
        let times = if proxy.skip_provider_button { 1 } else { 2 };
        for _ in 0..times {
            append_cookie(response.headers_mut(), CLEAR_SESSION);
        }
    }
    response
}

/// `/oauth2/start[?rd=…]`: the login, returning to `rd` when it is on this site.
async fn start(State(proxy): State<Arc<Proxy>>, RawQuery(query): RawQuery) -> Response {
    let params = query_pairs(query.as_deref());
    let rd = local_redirect(params.get("rd").map_or("/", String::as_str));
    proxy.start_login(&rd)
}

/// `/oauth2/sign_in[?rd=…]`: the sign-in page (200), or the login straight away.
async fn sign_in(State(proxy): State<Arc<Proxy>>, RawQuery(query): RawQuery) -> Response {
    let params = query_pairs(query.as_deref());
    let rd = local_redirect(params.get("rd").map_or("/", String::as_str));
    if proxy.skip_provider_button {
        proxy.start_login(&rd)
    } else {
        proxy.sign_in_page(StatusCode::OK, &rd)
    }
}

/// `/oauth2/callback`, its checks in oauth2-proxy's order (reference §5.3): an error
/// from Pocket ID, the state's shape, the CSRF cookie, the code and its redemption,
/// the state's nonce against the cookie's, the id_token, the e-mail address.
async fn callback(
    State(proxy): State<Arc<Proxy>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = query_pairs(query.as_deref());
    if let Some(error) = params.get("error") {
        // error_description is not shown.
        return proxy.error_page(
            StatusCode::FORBIDDEN,
            &format!("Login Failed: The upstream identity provider returned an error: {error}"),
            "/",
        );
    }
    let Some((nonce, rd)) = params.get("state").and_then(|s| s.split_once(':')) else {
        return proxy.error_page(StatusCode::INTERNAL_SERVER_ERROR, GENERIC_500, "/");
    };
    let rd = local_redirect(&wire::go_query_unescape(rd).unwrap_or_default());
    let Some(csrf) = wire::cookie(&headers, CSRF_COOKIE).map(str::to_string) else {
        return proxy.error_page(StatusCode::FORBIDDEN, CSRF_FAILED, &rd);
    };
    let login = lock(&proxy.logins)
        .get(&csrf)
        .filter(|l| l.created.elapsed().as_secs() < CSRF_TTL)
        .map(|l| (l.nonce.clone(), l.verifier.clone()));
    let Some((expected_nonce, verifier)) = login else {
        return proxy.error_page(StatusCode::FORBIDDEN, CSRF_FAILED, &rd);
    };
    let code = params.get("code").map_or("", String::as_str);
    if code.is_empty() {
        return proxy.error_page(StatusCode::INTERNAL_SERVER_ERROR, GENERIC_500, &rd);
    }
    let Some(id_token) = proxy.redeem(code, verifier.as_deref()).await else {
        return proxy.error_page(StatusCode::INTERNAL_SERVER_ERROR, GENERIC_500, &rd);
    };
    if nonce != expected_nonce {
        return proxy.error_page(StatusCode::FORBIDDEN, CSRF_FAILED, &rd);
    }
    let Some(claims) = proxy.verify(&id_token).await else {
        return proxy.error_page(StatusCode::INTERNAL_SERVER_ERROR, GENERIC_500, &rd);
    };
    let claim = |name: &str| {
        claims
            .get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let email = claim("email");
    if email.is_empty() {
        return proxy.error_page(StatusCode::INTERNAL_SERVER_ERROR, GENERIC_500, &rd);
    }
    // The login is over either way: its CSRF cookie is cleared below.
    lock(&proxy.logins).remove(&csrf);
    let clear_csrf = format!("{CSRF_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure");
    if claims.get("email_verified") == Some(&serde_json::Value::Bool(false))
        || !proxy.admits(&claims, &email)
    {
        let mut response = proxy.error_page(StatusCode::FORBIDDEN, GENERIC_403, &rd);
        append_cookie(response.headers_mut(), &clear_csrf);
        return response;
    }
    // The cookie store's cookie holds the encrypted session (2844 characters as
    // captured); a server-side store's is a ticket.
    let value = if proxy.faults.has(Fault::O2pCookieSplit) {
        // Above 4 KB (every group of a large directory, say): split in two below.
        wire::b64url(&wire::random_bytes(4500))
    } else if proxy.cookie_store {
        wire::b64url(&wire::random_bytes(2133))
    } else {
        format!(
            "{SESSION_COOKIE}-{}.{}",
            wire::b64url(&wire::random_bytes(16)),
            wire::b64url(&wire::random_bytes(16))
        )
    };
    lock(&proxy.sessions).insert(
        value.clone(),
        Session {
            user: claim("sub"),
            email,
            preferred_username: claim("preferred_username"),
            created: Instant::now(),
        },
    );
    let mut response = go_redirect(&rd);
    let headers = response.headers_mut();
    no_cache(headers);
    append_cookie(headers, &clear_csrf);
    if value.len() > 4000 {
        // oauth2-proxy's split: parts of at most 4 KB per Set-Cookie line.
        let chars: Vec<char> = value.chars().collect();
        for (i, part) in chars.chunks(3900).enumerate() {
            let part: String = part.iter().collect();
            append_cookie(
                headers,
                &format!(
                    "{SESSION_COOKIE}_{i}={part}; Path=/; Max-Age={COOKIE_TTL}; HttpOnly; Secure"
                ),
            );
        }
    } else {
        append_cookie(
            headers,
            &format!("{SESSION_COOKIE}={value}; Path=/; Max-Age={COOKIE_TTL}; HttpOnly; Secure"),
        );
    }
    response
}

/// `/oauth2/auth`, for forward-auth set-ups: 202 with a session, else 401.
async fn auth(State(proxy): State<Arc<Proxy>>, headers: HeaderMap) -> Response {
    match proxy.session(&headers) {
        Some(session) => {
            let mut response = StatusCode::ACCEPTED.into_response();
            if let Ok(value) = HeaderValue::from_str(&session.email) {
                response.headers_mut().insert(GAP_AUTH, value);
            }
            response
        }
        None => {
            let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            if stale_session(&proxy, &headers) {
                append_cookie(response.headers_mut(), CLEAR_SESSION);
            }
            response
        }
    }
}

/// `/oauth2/userinfo`: the session's user, e-mail address and username.
async fn userinfo(State(proxy): State<Arc<Proxy>>, headers: HeaderMap) -> Response {
    let mut response = match proxy.session(&headers) {
        Some(session) => {
            let body = serde_json::json!({
                "user": session.user,
                "email": session.email,
                "preferredUsername": session.preferred_username,
            });
            let mut response = (
                StatusCode::OK,
                [(CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&session.email) {
                response.headers_mut().insert(GAP_AUTH, value);
            }
            response
        }
        None => text(StatusCode::UNAUTHORIZED, "Unauthorized\n"),
    };
    no_cache(response.headers_mut());
    response
}

/// `/oauth2/sign_out[?rd=…]`: asks the browser to drop the session cookie and ends the
/// session in the store — unless it lives in the cookie alone (fault
/// o2p-cookie-session). Pocket ID is not told.
async fn sign_out(
    State(proxy): State<Arc<Proxy>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = query_pairs(query.as_deref());
    let rd = local_redirect(params.get("rd").map_or("/", String::as_str));
    let mut response = go_redirect(&rd);
    let out = response.headers_mut();
    no_cache(out);
    if let Some(value) = session_value(&headers) {
        if !proxy.cookie_store {
            lock(&proxy.sessions).remove(&value);
        }
        // Every cookie of the session: the one, or each part.
        let names: Vec<String> = std::iter::once(SESSION_COOKIE.to_string())
            .chain((0..8).map(|i| format!("{SESSION_COOKIE}_{i}")))
            .filter(|n| wire::cookie(&headers, n).is_some())
            .collect();
        for name in names {
            append_cookie(
                out,
                &format!("{name}=; Path=/; Max-Age=0; HttpOnly; Secure"),
            );
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_told_from_browsers_by_an_exact_json_item() {
        let with = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(ACCEPT, HeaderValue::from_static(v));
            }
            wants_json(&headers)
        };
        assert!(with(&["application/json"]));
        assert!(with(&["application/json, text/plain, */*"]));
        assert!(with(&["text/html, application/json"]));
        assert!(with(&["text/html", "application/json"]));
        assert!(!with(&["application/json;q=0.9"]));
        assert!(!with(&["Application/JSON"]));
        assert!(!with(&["*/*"]));
        assert!(!with(&[]));
    }

    #[test]
    fn only_local_redirects_are_kept() {
        assert_eq!(local_redirect("/x?y=1"), "/x?y=1");
        assert_eq!(local_redirect("https://evil.example.net/"), "/");
        assert_eq!(local_redirect("//evil.example.net/"), "/");
        assert_eq!(local_redirect("/\\evil.example.net/"), "/");
        assert_eq!(local_redirect(""), "/");
    }

    #[test]
    fn each_face_has_its_own_pages() {
        for faces in [&SIGN_IN_PAGE, &ERROR_PAGE, &ERROR_ACTIONS] {
            let pages = Variant::ALL.map(|v| faces.of(v));
            assert_ne!(pages[0], pages[1]);
            assert_ne!(pages[0], pages[2]);
            assert_ne!(pages[1], pages[2]);
        }
        for variant in Variant::ALL {
            assert!(
                SIGN_IN_PAGE
                    .of(variant)
                    .contains("action=\"/oauth2/start\"")
            );
        }
    }
}
