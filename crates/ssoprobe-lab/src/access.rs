//! Cloudflare Access: the edge gate in front of service.example.com and the team
//! domain xyz.cloudflareaccess.com that hands the login to Pocket ID, takes it back
//! at its callback and issues the application's session.

mod callback;
mod tokens;

use super::keys::AccessKey;
use super::origin::{self, Origin};
use super::{AUD, CALLBACK_URL, CLIENT_ID, Fault, FaultSet, IDP_HOST, SERVICE_HOST, TEAM_HOST};
use super::{edge, wire};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
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
const OTHER_TEAM_HOST: &str = "other-team.cloudflareaccess.com";
/// A client id Pocket ID does not know (fault unknown-client).
const UNKNOWN_CLIENT_ID: &str = "ca908581-9ca6-47a3-bfdb-a1a00b9af6a1";
/// The Zero Trust identity provider id of the lab's Pocket ID integration.
const IDP_ID: &str = "e7e9731d-de4e-4928-a8dc-9057789317a7";
/// `CF_AppSession` lives 24 hours, whatever the application's session duration.
const APP_SESSION_TTL: u64 = 24 * 3600;
/// `CF_Session`, the team domain's CSRF cookie, lives 4 hours.
const TEAM_SESSION_TTL: u64 = 4 * 3600;
/// How long Access remembers a login it sent to the identity provider.
const LOGIN_TTL: Duration = Duration::from_secs(TEAM_SESSION_TTL);

const SIGN_IN_PAGE: &str = include_str!("../../../fixtures/cloudflare/access-sign-in.html");

const CF_ACCESS_CLIENT_ID: HeaderName = HeaderName::from_static("cf-access-client-id");
const CF_ACCESS_CLIENT_SECRET: HeaderName = HeaderName::from_static("cf-access-client-secret");

/// Who may reach the application: the Allow policy's e-mail addresses, and whole
/// domains written `@domain`.
pub(super) struct Policy(Vec<String>);

impl Policy {
    /// The lab application's policy, as the faults configure it.
    fn for_faults(faults: &FaultSet) -> Policy {
        if faults.has(Fault::AccessPolicyDeny) {
            // The policy names someone else: the prober's account is not included.
            Policy(vec!["admin@example.org".to_string()])
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
    /// `<32 hex>.access`.
    pub(super) id: String,
    /// 64 hex (a secret).
    pub(super) secret: String,
}

impl ServiceToken {
    /// A fresh token in the format the dashboard issues.
    pub(super) fn generate() -> ServiceToken {
        ServiceToken {
            id: format!("{}.access", wire::random_hex(16)),
            secret: wire::random_hex(32),
        }
    }
}

/// What Access is configured with: its keys, how it reaches the identity provider,
/// the application's policy and service token, and the lab's faults.
pub(super) struct AccessConfig {
    pub(super) faults: FaultSet,
    pub(super) current: AccessKey,
    pub(super) previous: AccessKey,
    pub(super) idp: IdpLink,
    pub(super) service_token: ServiceToken,
}

/// Access's state: its keys, configuration and the logins in flight.
pub(super) struct Access {
    faults: FaultSet,
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
        let origin = if faults.has(Fault::SitePublic) {
            Origin::open()
        } else {
            Origin::verifying(keys.clone())
        };
        Access {
            policy: Policy::for_faults(&faults),
            faults,
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

/// The service.example.com router: everything goes through the gate.
pub(super) fn service_router(access: Arc<Access>) -> Router {
    Router::new()
        .route("/cdn-cgi/access/authorized", get(tokens::authorized))
        .fallback(gate)
        .with_state(access)
        .layer(middleware::map_response(edge::stamp))
}

/// The xyz.cloudflareaccess.com router.
pub(super) fn team_router(access: Arc<Access>) -> Router {
    Router::new()
        .route(
            "/cdn-cgi/access/login/{host}",
            get(login).fallback(team_not_found),
        )
        .route("/cdn-cgi/access/certs", get(certs))
        .route("/cdn-cgi/access/callback", get(callback::callback))
        .fallback(team_not_found)
        .with_state(access)
        .layer(middleware::map_response(edge::stamp))
}

/// The edge in front of service.example.com: bot protection first, then Access.
/// A request Access admits goes on through the tunnel to the origin; everything
/// else is sent to log in (Access is evaluated before any origin is chosen, so a
/// dead tunnel only shows after login).
async fn gate(State(access): State<Arc<Access>>, uri: Uri, headers: HeaderMap) -> Response {
    if access.faults.has(Fault::Challenge) {
        return edge::challenge(SERVICE_HOST, uri.path());
    }
    // No Access application covers the hostname, so the edge passes everything on.
    if access.faults.has(Fault::SitePublic) {
        return access.origin.serve(&headers);
    }
    match tokens::admit(&access, &headers) {
        tokens::Admission::Admitted(admitted) => backend(&access, &headers, admitted),
        tokens::Admission::Refused => service_token_refused(),
        tokens::Admission::Anonymous => login_redirect(&access, &uri),
    }
}

/// An admitted request through the tunnel to the origin, with the headers Access
/// adds; cloudflared or the tunnel may be down (faults tunnel-down, origin-down).
fn backend(access: &Access, request: &HeaderMap, admitted: tokens::Admitted) -> Response {
    if access.faults.has(Fault::TunnelDown) {
        return edge::tunnel_error(SERVICE_HOST, request);
    }
    let mut response = if access.faults.has(Fault::OriginDown) {
        edge::cloudflared_bad_gateway()
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
    if let Some(cookie) = admitted.set_cookie
        && let Ok(value) = HeaderValue::from_str(&cookie)
    {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// 403 for a service token Access does not accept: the error page with the
/// application's `cf-access-aud` and `cf-access-domain`, and no way to log in.
fn service_token_refused() -> Response {
    let mut response = edge::access_error(
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
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("kid", AUD)
        .append_pair("redirect_url", path_and_query)
        .append_pair("meta", &meta)
        .finish();
    let location = format!("https://{team_host}/cdn-cgi/access/login/{SERVICE_HOST}?{query}");

    let mut response = edge::found(&location);
    let headers = response.headers_mut();
    headers.insert(
        "access-control-allow-credentials",
        HeaderValue::from_static("true"),
    );
    // The RFC 9728 hint newer edges add; the path is the one that was asked for.
    let resource = format!(
        "Cloudflare-Access resource_metadata=\"https://{SERVICE_HOST}/.well-known/cloudflare-access-protected-resource{}\"",
        edge::safe_path(uri.path())
    );
    if let Ok(value) = HeaderValue::from_str(&resource) {
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
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(SET_COOKIE, value);
    }
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

async fn team_not_found() -> Response {
    edge::access_error(
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

/// `GET /cdn-cgi/access/login/<host>?kid=<AUD>&redirect_url=…&meta=…` on the team
/// domain: with Instant Auth, 302 to Pocket ID's authorize endpoint; without, the
/// sign-in page.
async fn login(
    State(access): State<Arc<Access>>,
    Path(host): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let Some(kid) = params.get("kid") else {
        return edge::access_error(
            StatusCode::BAD_REQUEST,
            "Invalid login request",
            "The login URL is missing the application's kid parameter.",
        );
    };
    if !host.eq_ignore_ascii_case(SERVICE_HOST) || kid != AUD {
        return edge::access_error(
            StatusCode::NOT_FOUND,
            "Unable to find your Access application!",
            "No Access application of this team matches the login URL.",
        );
    }
    // A login URL without a meta from this edge (hand-built) binds to no browser
    // session, so it can never finish at /authorized.
    let app_sessions = params
        .get("meta")
        .and_then(|meta| lock(&access.app_sessions).get(meta).map(|(h, _)| h.clone()))
        .unwrap_or_default();
    let login = PendingLogin {
        verifier: (!access.faults.has(Fault::NoPkce))
            .then(|| wire::b64url(&wire::random_bytes(32))),
        app_host: SERVICE_HOST.to_string(),
        redirect_url: params
            .get("redirect_url")
            .cloned()
            .unwrap_or_else(|| "/".to_string()),
        app_sessions,
        created: Instant::now(),
    };
    let state = state_for(&login);
    let authorize = authorize_url(&access.faults, &login, &state);
    {
        let mut logins = lock(&access.logins);
        logins.retain(|_, l| l.created.elapsed() < LOGIN_TTL);
        logins.insert(state, login);
    }

    let mut response = if access.faults.has(Fault::NoInstantAuth) {
        sign_in_page(&host, &query, &authorize)
    } else {
        edge::found(&authorize)
    };
    let cookie = format!(
        "CF_Session={}; Expires={}; Path=/; Secure; HttpOnly; SameSite=None",
        wire::random_hex(16),
        wire::imf_fixdate(wire::unix_now() + TEAM_SESSION_TTL)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// Access's `state`: 64 hex, a dot, and base64 of the percent-encoded JSON payload.
fn state_for(login: &PendingLogin) -> String {
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
        idp_id: IDP_ID,
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
fn authorize_url(faults: &FaultSet, login: &PendingLogin, state: &str) -> String {
    let path = if faults.has(Fault::WrongAuthUrl) {
        "/oauth2/authorize"
    } else {
        "/authorize"
    };
    let client_id = if faults.has(Fault::UnknownClient) {
        UNKNOWN_CLIENT_ID
    } else {
        CLIENT_ID
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", CALLBACK_URL)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email profile")
        .append_pair("state", state);
    if let Some(verifier) = &login.verifier {
        query
            .append_pair("code_challenge", &wire::pkce_s256(verifier))
            .append_pair("code_challenge_method", "S256");
    }
    format!("https://{IDP_HOST}{path}?{}", query.finish())
}

/// Access's interactive "Sign in ・ Cloudflare Access" page (Instant Auth off): a
/// one-time-PIN form and one button per identity provider.
fn sign_in_page(app_host: &str, login_query: &str, pocket_id_url: &str) -> Response {
    let login_path = format!("/cdn-cgi/access/login/{app_host}?{login_query}");
    let page = wire::fill(
        SIGN_IN_PAGE,
        &[
            ("APP_DOMAIN", &wire::html_escape(app_host)),
            ("LOGIN_PATH", &wire::html_escape(&login_path)),
            ("POCKET_ID_URL", &wire::html_escape(pocket_id_url)),
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
        let state = state_for(&login);
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
