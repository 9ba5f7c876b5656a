//! Cloudflare Access: the edge gate in front of service.example.com and the team
//! domain xyz.cloudflareaccess.com that hands the login to Pocket ID, takes it back
//! at its callback and issues the application's session.

mod callback;
mod tokens;

use super::keys::AccessKey;
use super::origin::{self, Origin};
use super::{AUD, CALLBACK_URL, CLIENT_ID, Fault, FaultSet, IDP_HOST, SERVICE_HOST, TEAM_HOST};
use super::{Variant, edge, wire};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, COOKIE, USER_AGENT, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::DecodingKey;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub(super) use callback::IdpLink;

/// The team domain Access sends the login to under fault wrong-team.
pub(super) const OTHER_TEAM_HOST: &str = "other-team.cloudflareaccess.com";
/// A client id Pocket ID does not know (fault unknown-client).
pub(super) const UNKNOWN_CLIENT_ID: &str = "ca908581-9ca6-47a3-bfdb-a1a00b9af6a1";
/// The Zero Trust identity provider id of the lab's Pocket ID integration.
pub(super) const IDP_ID: &str = "e7e9731d-de4e-4928-a8dc-9057789317a7";
/// The id of the team's second identity provider, GitHub, which the sign-in pages
/// of the rebranded and terse faces offer too.
pub(super) const GITHUB_IDP_ID: &str = "0c6f3a5e-8d2b-4f71-9a46-2e5b7c1d9f08";
/// The GitHub OAuth app Access uses (GitHub's `Ov23li…` client id format).
pub(super) const GITHUB_CLIENT_ID: &str = "Ov23liq5Xb7LmN0pR2sT";
/// The scopes Access asks Pocket ID for.
pub(super) const SCOPES: &str = "openid email profile";

/// The scopes Access's login method asks for, as the faults configure them.
pub(super) fn scopes(faults: &FaultSet) -> &'static str {
    if faults.has(Fault::ScopesWithoutEmail) {
        "openid profile"
    } else if faults.has(Fault::ScopeUnsupported) {
        "openid email profile offline"
    } else if faults.has(Fault::GroupsClaimDisplayName) {
        // The groups claim is asked for: only its value is wrong.
        "openid email profile groups"
    } else {
        SCOPES
    }
}

/// The claim Access reads the user's e-mail address from (its Email claim setting).
pub(super) fn email_claim(faults: &FaultSet) -> &'static str {
    if faults.has(Fault::EmailClaimName) {
        "mail"
    } else {
        "email"
    }
}
/// `CF_AppSession` lives 24 hours, whatever the application's session duration.
const APP_SESSION_TTL: u64 = 24 * 3600;
/// `CF_Session`, the team domain's CSRF cookie, lives 4 hours.
const TEAM_SESSION_TTL: u64 = 4 * 3600;
/// How long Access remembers a login it sent to the identity provider.
const LOGIN_TTL: Duration = Duration::from_secs(TEAM_SESSION_TTL);

const SIGN_IN_PAGE: edge::Faces = edge::Faces {
    classic: include_str!("../../../fixtures/cloudflare/access-sign-in.html"),
    rebranded: include_str!("../../../fixtures/cloudflare/access-sign-in-rebranded.html"),
    terse: include_str!("../../../fixtures/cloudflare/access-sign-in-terse.html"),
};

const CF_ACCESS_CLIENT_ID: HeaderName = HeaderName::from_static("cf-access-client-id");
const CF_ACCESS_CLIENT_SECRET: HeaderName = HeaderName::from_static("cf-access-client-secret");

/// The only address the application's Allow policy names under fault
/// access-policy-deny (the prober's account is not included).
pub(super) const DENY_POLICY_EMAIL: &str = "admin@example.com";

/// Whether no Access login stands in front of the site: no application covers it
/// (fault site-public), or a Bypass policy for everyone comes first (fault
/// bypass-everyone). Either way the edge passes everything on to the origin.
pub(super) fn site_public(faults: &FaultSet) -> bool {
    faults.has(Fault::SitePublic) || faults.has(Fault::BypassEveryone)
}

/// The path of Access's Auth URL at Pocket ID: `/authorize`, or a path Pocket ID
/// does not serve (fault wrong-auth-url).
pub(super) fn auth_path(faults: &FaultSet) -> &'static str {
    if faults.has(Fault::WrongAuthUrl) {
        "/oauth2/authorize"
    } else {
        "/authorize"
    }
}

/// The path of Access's Token URL at Pocket ID: the token endpoint, or another path
/// under /api that Pocket ID answers 404 (fault token-url-wrong).
pub(super) fn token_path(faults: &FaultSet) -> &'static str {
    if faults.has(Fault::TokenUrlWrong) {
        "/api/oidc/tokens"
    } else {
        "/api/oidc/token"
    }
}

/// The path of Access's Certificate URL at Pocket ID: the JWKS, or a typo that
/// answers 404 (fault access-jwks-unreachable).
pub(super) fn certs_path(faults: &FaultSet) -> &'static str {
    if faults.has(Fault::AccessJwksUnreachable) {
        "/.well-known/jwks.jsonx"
    } else {
        "/.well-known/jwks.json"
    }
}

/// The client id Access sends Pocket ID: the lab client's, or one Pocket ID does
/// not know (fault unknown-client).
pub(super) fn client_id(faults: &FaultSet) -> &'static str {
    if faults.has(Fault::UnknownClient) {
        UNKNOWN_CLIENT_ID
    } else {
        CLIENT_ID
    }
}

/// Who may reach the application: the Allow policy's e-mail addresses, and whole
/// domains written `@domain`.
pub(super) struct Policy(Vec<String>);

impl Policy {
    /// The lab application's policy, as the faults configure it.
    fn for_faults(faults: &FaultSet) -> Policy {
        if faults.has(Fault::AccessPolicyDeny) {
            // The policy names someone else: the prober's account is not included.
            Policy(vec![DENY_POLICY_EMAIL.to_string()])
        } else {
            Policy(vec![
                "probe@example.com".to_string(),
                "@example.com".to_string(),
            ])
        }
    }

    fn allows(&self, email: &str) -> bool {
        let email = email.to_ascii_lowercase();
        self.0.iter().any(|rule| match rule.strip_prefix('@') {
            Some(domain) => email
                .rsplit_once('@')
                .is_some_and(|(local, d)| !local.is_empty() && d == domain),
            None => *rule == email,
        })
    }
}

/// A service token Access knows: its Client ID and the secret that goes with it.
#[derive(Clone)]
pub(super) struct ServiceToken {
    /// The token's id in the Zero Trust API (a UUID), which Service Auth policies
    /// name.
    pub(super) uuid: String,
    /// `<32 hex>.access`.
    pub(super) id: String,
    /// 64 hex (a secret).
    pub(super) secret: String,
}

impl ServiceToken {
    /// A fresh token in the format the dashboard issues.
    pub(super) fn generate() -> ServiceToken {
        ServiceToken {
            uuid: uuid::Uuid::new_v4().to_string(),
            id: format!("{}.access", wire::random_hex(16)),
            secret: wire::random_hex(32),
        }
    }
}

/// What Access is configured with: its keys, how it reaches the identity provider,
/// the application's policy and service token, and the lab's faults.
pub(super) struct AccessConfig {
    pub(super) faults: FaultSet,
    pub(super) variant: Variant,
    pub(super) current: AccessKey,
    pub(super) previous: AccessKey,
    pub(super) idp: IdpLink,
    pub(super) service_token: ServiceToken,
}

/// Access's state: its keys, configuration and the logins in flight.
pub(super) struct Access {
    faults: FaultSet,
    /// The face of every page and redirect.
    variant: Variant,
    /// The callback URL Access sends identity providers back to.
    callback_url: String,
    /// Signs the `meta` JWT on login redirects and every session token.
    current: AccessKey,
    /// `/cdn-cgi/access/certs`, fixed for the lab's lifetime.
    certs: String,
    /// The certs' public keys by kid, to check `CF_Authorization` cookies.
    keys: HashMap<String, DecodingKey>,
    /// The protected site behind the tunnel.
    origin: Origin,
    /// How Access reaches Pocket ID's token endpoint and JWKS.
    idp: IdpLink,
    policy: Policy,
    service_token: ServiceToken,
    /// `CF_AppSession` hashes minted with each `meta` token, so the login the meta
    /// starts is bound to the browser that got them.
    app_sessions: Mutex<HashMap<String, (Vec<String>, Instant)>>,
    /// Logins sent to Pocket ID, by `state`, for the callback to finish.
    logins: Mutex<HashMap<String, PendingLogin>>,
    /// Finished logins waiting for the application's `/authorized`, by nonce.
    tickets: Mutex<HashMap<String, tokens::Ticket>>,
}

/// A login Access sent to the identity provider and will finish at its callback.
struct PendingLogin {
    /// The PKCE verifier; `None` when Access sends no PKCE (fault no-pkce).
    verifier: Option<String>,
    /// The application hostname the login is for.
    app_host: String,
    /// Where on the application the user returns to.
    redirect_url: String,
    /// SHA-256 (hex) of the `CF_AppSession` values the login may finish with.
    app_sessions: Vec<String>,
    created: Instant,
}

/// Locks a map; a panic while holding the lock cannot leave it half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Access {
    /// Access with its `current` key signing and both keys published.
    pub(super) fn new(config: AccessConfig) -> Access {
        let AccessConfig {
            faults,
            variant,
            current,
            previous,
            idp,
            service_token,
        } = config;
        let certs = json!({
            "keys": [current.key.jwk(), previous.key.jwk()],
            "public_cert": { "kid": current.key.kid, "cert": current.cert_pem },
            "public_certs": [
                { "kid": current.key.kid, "cert": current.cert_pem },
                { "kid": previous.key.kid, "cert": previous.cert_pem },
            ],
        })
        .to_string();
        let keys: HashMap<String, DecodingKey> = [&current, &previous]
            .into_iter()
            .map(|k| (k.key.kid.clone(), k.key.decoding_key().clone()))
            .collect();
        // With no Access application on the hostname the origin was never set up to
        // expect Access, so it checks nothing.
        let origin = if site_public(&faults) {
            Origin::open()
        } else {
            Origin::verifying(keys.clone())
        };
        Access {
            policy: Policy::for_faults(&faults),
            callback_url: callback_url(&faults),
            faults,
            variant,
            current,
            certs,
            keys,
            origin,
            idp,
            service_token,
            app_sessions: Mutex::new(HashMap::new()),
            logins: Mutex::new(HashMap::new()),
            tickets: Mutex::new(HashMap::new()),
        }
    }
}

/// The callback URL Access is configured with: Cloudflare's, or the one with a
/// trailing slash that no Pocket ID client lists (fault callback-trailing-slash).
pub(super) fn callback_url(faults: &FaultSet) -> String {
    if faults.has(Fault::CallbackTrailingSlash) {
        format!("{CALLBACK_URL}/")
    } else {
        CALLBACK_URL.to_string()
    }
}

/// The service.example.com router: everything goes through the gate.
pub(super) fn service_router(access: Arc<Access>) -> Router {
    let variant = access.variant;
    Router::new()
        .route("/cdn-cgi/access/authorized", get(tokens::authorized))
        .fallback(gate)
        .with_state(access)
        .layer(middleware::map_response_with_state(
            variant,
            edge::stamp_access,
        ))
}

/// The xyz.cloudflareaccess.com router.
pub(super) fn team_router(access: Arc<Access>) -> Router {
    let variant = access.variant;
    Router::new()
        .route(
            "/cdn-cgi/access/login/{host}",
            get(login_get).post(login_post).fallback(team_not_found),
        )
        .route("/cdn-cgi/access/certs", get(certs))
        .route("/cdn-cgi/access/callback", get(callback::callback))
        .fallback(team_not_found)
        .with_state(access)
        .layer(middleware::map_response_with_state(
            variant,
            edge::stamp_access,
        ))
}

/// The edge in front of service.example.com: bot protection first, then Access.
/// A request Access admits goes on through the tunnel to the origin; everything
/// else is sent to log in (Access is evaluated before any origin is chosen, so a
/// dead tunnel only shows after login), refused when the application has no login
/// (fault service-auth-only), or, with Managed OAuth, asked for a bearer token
/// unless it is a browser's (every request, under fault managed-oauth-everyone).
async fn gate(State(access): State<Arc<Access>>, uri: Uri, headers: HeaderMap) -> Response {
    if access.faults.has(Fault::Challenge) {
        return edge::challenge(access.variant, SERVICE_HOST, uri.path());
    }
    // No Access application covers the hostname, so the edge passes everything on.
    if site_public(&access.faults) {
        return access.origin.serve(&headers);
    }
    match tokens::admit(&access, &headers) {
        tokens::Admission::Admitted(admitted) => backend(&access, &headers, admitted),
        tokens::Admission::Refused => service_token_refused(access.variant),
        tokens::Admission::Anonymous if access.faults.has(Fault::ServiceAuthOnly) => {
            service_token_refused(access.variant)
        }
        tokens::Admission::Anonymous
            if access.faults.has(Fault::ManagedOauthEveryone)
                || (access.faults.has(Fault::ManagedOauth)
                    && !is_browser(access.variant, &headers)) =>
        {
            bearer_challenge(&uri)
        }
        tokens::Admission::Anonymous => login_redirect(&access, &uri),
    }
}

/// Whether Managed OAuth takes the request for a browser's, which it sends to log in
/// rather than asking for a bearer token. Cloudflare does not document its rule; each
/// face has one of its own: a navigation's `Accept` (naming `text/html`) and a
/// browser's `User-Agent` (classic: `Mozilla/5.0` first; rebranded: that and a
/// rendering engine's token), or the `User-Agent` alone (terse).
fn is_browser(variant: Variant, headers: &HeaderMap) -> bool {
    let agent = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mozilla = agent.starts_with("Mozilla/5.0 ");
    match variant {
        Variant::Classic => mozilla && accepts_html(headers),
        Variant::Rebranded => {
            mozilla
                && ["AppleWebKit/", "Gecko/"].iter().any(|e| agent.contains(e))
                && accepts_html(headers)
        }
        Variant::Terse => mozilla,
    }
}

/// Whether the request's `Accept` names `text/html`.
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("text/html")
        })
}

/// Managed OAuth's answer to a request that is not a browser's: 401 with an RFC
/// 6750 Bearer challenge pointing at the RFC 9728 resource metadata of the path.
fn bearer_challenge(uri: &Uri) -> Response {
    let metadata = format!(
        "https://{SERVICE_HOST}/.well-known/cloudflare-access-protected-resource{}",
        edge::safe_path(uri.path())
    );
    let body = json!({ "error": "invalid_token", "resource_metadata": metadata }).to_string();
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [(CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    let challenge = format!(
        "Bearer realm=\"OAuth\", error=\"invalid_token\", resource_metadata=\"{metadata}\""
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        headers.insert(WWW_AUTHENTICATE, value);
    }
    edge::no_store(headers);
    response
}

/// An admitted request through the tunnel to the origin, with the headers Access
/// adds; cloudflared or the tunnel may be down (faults tunnel-down, origin-down), the
/// tunnel may have no public hostname for the site (ingress-missing: its catch-all
/// answers), or the application may not serve the URL (origin-404).
fn backend(access: &Access, request: &HeaderMap, admitted: tokens::Admitted) -> Response {
    if access.faults.has(Fault::TunnelDown) {
        return edge::tunnel_error(access.variant, SERVICE_HOST, request);
    }
    let mut response = if access.faults.has(Fault::OriginDown) {
        edge::cloudflared_bad_gateway()
    } else if access.faults.has(Fault::IngressMissing) {
        edge::cloudflared_catch_all()
    } else if access.faults.has(Fault::Origin404) {
        origin::not_found(access.variant)
    } else {
        // The origin sees only what the edge vouches for: client-sent copies of the
        // Access headers are never forwarded.
        let mut forwarded = HeaderMap::new();
        if let Some(cookie) = request.get(COOKIE) {
            forwarded.insert(COOKIE, cookie.clone());
        }
        if let Ok(value) = HeaderValue::from_str(&admitted.token) {
            forwarded.insert(origin::JWT_ASSERTION, value);
        }
        if let Some(email) = admitted.email.as_deref()
            && let Ok(value) = HeaderValue::from_str(email)
        {
            forwarded.insert(origin::AUTHENTICATED_USER_EMAIL, value);
        }
        access.origin.serve(&forwarded)
    };
    if let Some(cookie) = admitted.set_cookie {
        edge::append_cookie(response.headers_mut(), access.variant, &cookie);
    }
    response
}

/// 403 for a request Access refuses without offering a login (a service token it
/// does not accept, or any request to a Service-Auth-only application): the error
/// page with the application's `cf-access-aud` and `cf-access-domain`.
fn service_token_refused(variant: Variant) -> Response {
    let mut response = edge::access_error(
        variant,
        StatusCode::FORBIDDEN,
        "Forbidden",
        "You don't have permission to view this. Please contact your system administrator.",
    );
    let headers = response.headers_mut();
    headers.insert("cf-access-aud", HeaderValue::from_static(AUD));
    headers.insert("cf-access-domain", HeaderValue::from_static(SERVICE_HOST));
    response
}

/// The `meta` JWT on the login redirect (reference §1.1).
#[derive(Serialize)]
struct Meta<'a> {
    service_token_status: bool,
    iat: u64,
    service_token_id: &'a str,
    aud: &'a str,
    hostname: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    nbf: u64,
    redirect_url: &'a str,
    is_gateway: bool,
    is_warp: bool,
    auth_status: &'a str,
}

/// 302 to the team domain's login for this application, with a fresh
/// `CF_AppSession`.
fn login_redirect(access: &Access, uri: &Uri) -> Response {
    let now = wire::unix_now();
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let meta = Meta {
        service_token_status: false,
        iat: now,
        service_token_id: "",
        aud: AUD,
        hostname: SERVICE_HOST,
        kind: "meta",
        nbf: now,
        redirect_url: path_and_query,
        is_gateway: false,
        is_warp: false,
        auth_status: "NONE",
    };
    let meta = match access.current.key.sign(&meta) {
        Ok(jwt) => jwt,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("lab: cannot sign the meta token: {e}"),
            )
                .into_response();
        }
    };
    let team_host = if access.faults.has(Fault::WrongTeam) {
        OTHER_TEAM_HOST
    } else {
        TEAM_HOST
    };
    let mut pairs = [
        ("kid", AUD),
        ("redirect_url", path_and_query),
        ("meta", meta.as_str()),
    ];
    // Captures always show kid, redirect_url, meta, but nothing promises that order.
    if access.variant == Variant::Terse {
        pairs.swap(0, 1);
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let location = format!("https://{team_host}/cdn-cgi/access/login/{SERVICE_HOST}?{query}");

    let mut response = edge::found(access.variant, &location);
    let headers = response.headers_mut();
    headers.insert(
        "access-control-allow-credentials",
        HeaderValue::from_static("true"),
    );
    // The RFC 9728 hint newer edges add (the terse face is an older edge); the path
    // is the one that was asked for.
    let resource = format!(
        "Cloudflare-Access resource_metadata=\"https://{SERVICE_HOST}/.well-known/cloudflare-access-protected-resource{}\"",
        edge::safe_path(uri.path())
    );
    if access.variant != Variant::Terse
        && let Ok(value) = HeaderValue::from_str(&resource)
    {
        headers.insert(WWW_AUTHENTICATE, value);
    }
    let app_session = format!("n{}", wire::random_hex(8));
    {
        let mut sessions = lock(&access.app_sessions);
        sessions.retain(|_, (_, created)| created.elapsed() < LOGIN_TTL);
        let (hashes, _) = sessions
            .entry(meta)
            .or_insert_with(|| (Vec::new(), Instant::now()));
        hashes.push(wire::sha256_hex(app_session.as_bytes()));
    }
    let cookie = format!(
        "CF_AppSession={app_session}; Expires={}; Path=/; Secure; HttpOnly",
        wire::imf_fixdate(now + APP_SESSION_TTL)
    );
    edge::append_cookie(headers, access.variant, &cookie);
    response
}

/// `/cdn-cgi/access/certs`: the keys Access tokens are signed with.
async fn certs(State(access): State<Arc<Access>>) -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "application/json")],
        access.certs.clone(),
    )
        .into_response()
}

async fn team_not_found(State(access): State<Arc<Access>>) -> Response {
    not_found(access.variant)
}

/// The team domain's 404 page.
fn not_found(variant: Variant) -> Response {
    edge::access_error(
        variant,
        StatusCode::NOT_FOUND,
        "Not Found",
        "The page you requested does not exist.",
    )
}

/// The `mtls_auth` member of the state JSON.
#[derive(Serialize)]
struct MtlsAuth {
    cert_issuer_ski: &'static str,
    cert_presented: bool,
    cert_serial: &'static str,
    cert_issuer_dn: &'static str,
    auth_status: &'static str,
}

/// The JSON inside Access's `state` (reference §2.1), members in captured order.
#[derive(Serialize)]
struct StatePayload<'a> {
    iat: u64,
    #[serde(rename = "authDomain")]
    auth_domain: &'a str,
    hostname: &'a str,
    #[serde(rename = "redirectURL")]
    redirect_url: &'a str,
    aud: &'a str,
    #[serde(rename = "isSameSiteNoneCompatible")]
    is_same_site_none_compatible: bool,
    #[serde(rename = "isIDPTest")]
    is_idp_test: bool,
    #[serde(rename = "isRefresh")]
    is_refresh: bool,
    nonce: String,
    #[serde(rename = "idpId")]
    idp_id: &'a str,
    service_token_id: &'a str,
    service_token_status: bool,
    auth_status: &'a str,
    is_warp: bool,
    is_gateway: bool,
    mtls_auth: MtlsAuth,
    #[serde(rename = "appSessionHash")]
    app_session_hash: String,
}

/// The identity providers the team has: Pocket ID, the one the application uses,
/// and GitHub, which only the sign-in page offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Idp {
    PocketId,
    GitHub,
}

impl Idp {
    /// The Zero Trust identity provider id, as `idp=` and the state's `idpId` carry it.
    fn id(self) -> &'static str {
        match self {
            Idp::PocketId => IDP_ID,
            Idp::GitHub => GITHUB_IDP_ID,
        }
    }

    fn from_id(id: &str) -> Option<Idp> {
        [Idp::PocketId, Idp::GitHub]
            .into_iter()
            .find(|idp| idp.id() == id)
    }
}

/// The pairs of a query string or form body.
fn form_pairs(bytes: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// `GET /cdn-cgi/access/login/<host>?kid=<AUD>&redirect_url=…&meta=…[&idp=<id>]` on
/// the team domain: with `idp` (a sign-in page's button) or Instant Auth, 302 to the
/// identity provider; without, the sign-in page.
async fn login_get(
    State(access): State<Arc<Access>>,
    Path(host): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let params = form_pairs(query.as_bytes());
    login(
        &access,
        &host,
        &query,
        &params,
        params.get("idp").map(String::as_str),
    )
}

/// `POST /cdn-cgi/access/login/<host>?kid=…&redirect_url=…&meta=…` with the form
/// `idp=<id>`: the terse sign-in page's choice of identity provider. Other posts
/// (the one-time-PIN form, which the lab does not implement) find nothing.
async fn login_post(
    State(access): State<Arc<Access>>,
    Path(host): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let query = query.unwrap_or_default();
    let params = form_pairs(query.as_bytes());
    match form_pairs(&body).get("idp") {
        Some(idp) => login(&access, &host, &query, &params, Some(idp)),
        None => not_found(access.variant),
    }
}

/// The team login for `host` with the login URL's `query` (parsed: `params`) and
/// the chosen identity provider, if any. Once the URL names the application, every
/// answer sets `CF_Session`.
fn login(
    access: &Access,
    host: &str,
    query: &str,
    params: &HashMap<String, String>,
    idp: Option<&str>,
) -> Response {
    let variant = access.variant;
    let Some(kid) = params.get("kid") else {
        return edge::access_error(
            variant,
            StatusCode::BAD_REQUEST,
            "Invalid login request",
            "The login URL is missing the application's kid parameter.",
        );
    };
    if !host.eq_ignore_ascii_case(SERVICE_HOST) || kid != AUD {
        return edge::access_error(
            variant,
            StatusCode::NOT_FOUND,
            "Unable to find your Access application!",
            "No Access application of this team matches the login URL.",
        );
    }
    let instant_auth =
        !access.faults.has(Fault::NoInstantAuth) && !access.faults.has(Fault::IdpChooserViaTeam);
    let mut response = match idp.map(|id| Idp::from_id(id).ok_or(id)) {
        Some(Ok(Idp::PocketId)) => edge::found(variant, &start_login(access, params)),
        Some(Ok(Idp::GitHub)) => edge::found(variant, &github_authorize_url(access, params)),
        Some(Err(_)) => edge::access_error(
            variant,
            StatusCode::BAD_REQUEST,
            "Invalid login request",
            "The identity provider in the login URL is not enabled for this application.",
        ),
        None if instant_auth => edge::found(variant, &start_login(access, params)),
        None => sign_in_page(access, host, query, params),
    };
    let cookie = format!(
        "CF_Session={}; Expires={}; Path=/; Secure; HttpOnly; SameSite=None",
        wire::random_hex(16),
        wire::imf_fixdate(wire::unix_now() + TEAM_SESSION_TTL)
    );
    edge::append_cookie(response.headers_mut(), variant, &cookie);
    response
}

/// The login the URL's `params` ask for, not yet sent anywhere.
fn pending_login(access: &Access, params: &HashMap<String, String>) -> PendingLogin {
    // A login URL without a meta from this edge (hand-built) binds to no browser
    // session, so it can never finish at /authorized.
    let app_sessions = params
        .get("meta")
        .and_then(|meta| lock(&access.app_sessions).get(meta).map(|(h, _)| h.clone()))
        .unwrap_or_default();
    PendingLogin {
        verifier: (!access.faults.has(Fault::NoPkce)
            && !access.faults.has(Fault::PublicClientNoPkce))
        .then(|| wire::b64url(&wire::random_bytes(32))),
        app_host: SERVICE_HOST.to_string(),
        redirect_url: params
            .get("redirect_url")
            .cloned()
            .unwrap_or_else(|| "/".to_string()),
        app_sessions,
        created: Instant::now(),
    }
}

/// Starts a login at Pocket ID: remembers it for the callback and returns the
/// authorize URL to send the browser to.
fn start_login(access: &Access, params: &HashMap<String, String>) -> String {
    let login = pending_login(access, params);
    let state = state_for(&login, Idp::PocketId);
    let authorize = authorize_url(access, &login, &state);
    let mut logins = lock(&access.logins);
    logins.retain(|_, l| l.created.elapsed() < LOGIN_TTL);
    logins.insert(state, login);
    authorize
}

/// GitHub's authorize URL for the login `params` ask for. GitHub is beyond the lab,
/// so no callback can come back from it and the login is not remembered.
fn github_authorize_url(access: &Access, params: &HashMap<String, String>) -> String {
    let login = pending_login(access, params);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", GITHUB_CLIENT_ID)
        .append_pair("redirect_uri", &access.callback_url)
        .append_pair("response_type", "code")
        .append_pair("scope", "read:org user:email")
        .append_pair("state", &state_for(&login, Idp::GitHub))
        .finish();
    format!("https://github.com/login/oauth/authorize?{query}")
}

/// Access's `state`: 64 hex, a dot, and base64 of the percent-encoded JSON payload.
fn state_for(login: &PendingLogin, idp: Idp) -> String {
    let payload = StatePayload {
        iat: wire::unix_now(),
        auth_domain: TEAM_HOST,
        hostname: &login.app_host,
        redirect_url: &login.redirect_url,
        aud: AUD,
        is_same_site_none_compatible: true,
        is_idp_test: false,
        is_refresh: false,
        nonce: wire::random_alphanumeric(17),
        idp_id: idp.id(),
        service_token_id: "",
        service_token_status: false,
        auth_status: "NONE",
        is_warp: false,
        is_gateway: false,
        mtls_auth: MtlsAuth {
            cert_issuer_ski: "",
            cert_presented: false,
            cert_serial: "",
            cert_issuer_dn: "",
            auth_status: "NONE",
        },
        // The hash of the browser's CF_AppSession, as far as this edge knows it.
        app_session_hash: login
            .app_sessions
            .last()
            .cloned()
            .unwrap_or_else(|| wire::random_hex(32)),
    };
    // Serializing a struct of strings, numbers and booleans cannot fail.
    let json = serde_json::to_string(&payload).unwrap_or_default();
    let encoded: String = url::form_urlencoded::byte_serialize(json.as_bytes()).collect();
    format!("{}.{}", wire::random_hex(32), STANDARD.encode(encoded))
}

/// Pocket ID's authorize URL with the query Access builds for a generic OIDC
/// identity provider, as the lab's Zero Trust settings (and faults) configure it.
/// The faces differ in what no IdP may rely on: the rebranded face writes spaces as
/// `%20`, the terse face the parameters in another order.
fn authorize_url(access: &Access, login: &PendingLogin, state: &str) -> String {
    let path = auth_path(&access.faults);
    let client_id = client_id(&access.faults);
    let challenge = login.verifier.as_deref().map(wire::pkce_s256);
    let mut pairs = vec![
        ("client_id", client_id),
        ("redirect_uri", access.callback_url.as_str()),
        ("response_type", "code"),
        ("scope", scopes(&access.faults)),
        ("state", state),
    ];
    if let Some(challenge) = &challenge {
        pairs.push(("code_challenge", challenge));
        pairs.push(("code_challenge_method", "S256"));
    }
    if access.variant == Variant::Terse {
        const ORDER: [&str; 7] = [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "code_challenge",
            "code_challenge_method",
            "state",
        ];
        pairs.sort_by_key(|(name, _)| ORDER.iter().position(|o| o == name));
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let query = if access.variant == Variant::Rebranded {
        // The serializer writes `+` only for spaces (a literal plus is `%2B`).
        query.replace('+', "%20")
    } else {
        query
    };
    format!("https://{IDP_HOST}{path}?{query}")
}

/// Access's interactive sign-in page (Instant Auth off): a one-time-PIN form and one
/// button per identity provider. As captured (classic face) the Pocket ID button
/// links straight to Pocket ID; with fault idp-chooser-via-team, and in the other
/// faces, each button goes back through the team domain's login with `idp=<id>`:
/// an absolute link (classic), a relative one (rebranded) or a posted form (terse).
fn sign_in_page(
    access: &Access,
    app_host: &str,
    login_query: &str,
    params: &HashMap<String, String>,
) -> Response {
    let login_path = format!("/cdn-cgi/access/login/{app_host}?{login_query}");
    let mut chooser = url::form_urlencoded::Serializer::new(String::new());
    for name in ["kid", "redirect_url", "meta"] {
        if let Some(value) = params.get(name) {
            chooser.append_pair(name, value);
        }
    }
    let chooser_path = format!("/cdn-cgi/access/login/{app_host}?{}", chooser.finish());
    let choose = |idp: Idp| format!("{chooser_path}&idp={}", idp.id());
    let pocket_id_url = match access.variant {
        Variant::Classic if access.faults.has(Fault::IdpChooserViaTeam) => {
            format!("https://{TEAM_HOST}{}", choose(Idp::PocketId))
        }
        Variant::Classic => start_login(access, params),
        Variant::Rebranded | Variant::Terse => choose(Idp::PocketId),
    };
    let page = wire::fill(
        SIGN_IN_PAGE.of(access.variant),
        &[
            ("APP_DOMAIN", &wire::html_escape(app_host)),
            ("LOGIN_PATH", &wire::html_escape(&login_path)),
            ("CHOOSER_PATH", &wire::html_escape(&chooser_path)),
            ("POCKET_ID_URL", &wire::html_escape(&pocket_id_url)),
            ("GITHUB_URL", &wire::html_escape(&choose(Idp::GitHub))),
            ("POCKET_ID_IDP", Idp::PocketId.id()),
            ("GITHUB_IDP", Idp::GitHub.id()),
        ],
    );
    let mut response = (StatusCode::OK, [(CONTENT_TYPE, "text/html")], page).into_response();
    let headers = response.headers_mut();
    edge::no_store(headers);
    if let Ok(value) = HeaderValue::from_str(app_host) {
        headers.insert("cf-access-domain", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_has_the_captured_shape() {
        let login = PendingLogin {
            verifier: None,
            app_host: SERVICE_HOST.to_string(),
            redirect_url: "/admin?x=1".to_string(),
            app_sessions: vec![wire::sha256_hex(b"n0123456789abcdef")],
            created: Instant::now(),
        };
        let state = state_for(&login, Idp::PocketId);
        let (mac, payload) = state.split_once('.').expect("a dot");
        assert_eq!(mac.len(), 64);
        assert!(mac.bytes().all(|b| b.is_ascii_hexdigit()));
        let decoded = STANDARD.decode(payload).expect("base64");
        let json: String = url::form_urlencoded::parse(&[b"x=".as_slice(), &decoded].concat())
            .map(|(_, v)| v.into_owned())
            .collect();
        let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(value["authDomain"], TEAM_HOST);
        assert_eq!(value["hostname"], SERVICE_HOST);
        assert_eq!(value["redirectURL"], "/admin?x=1");
        assert_eq!(value["aud"], AUD);
        assert_eq!(value["nonce"].as_str().map(str::len), Some(17));
        assert_eq!(value["mtls_auth"]["auth_status"], "NONE");
        assert_eq!(
            value["appSessionHash"],
            wire::sha256_hex(b"n0123456789abcdef")
        );
    }

    #[test]
    fn policy_matches_addresses_and_domains() {
        let policy = Policy::for_faults(&FaultSet::new(&[]));
        assert!(policy.allows("probe@example.com"));
        assert!(policy.allows("Someone@Example.com"));
        assert!(!policy.allows("@example.com"));
        assert!(!policy.allows("probe@example.com.evil.test"));
        let deny = Policy::for_faults(&FaultSet::new(&[Fault::AccessPolicyDeny]));
        assert!(!deny.allows("probe@example.com"));
    }
}
