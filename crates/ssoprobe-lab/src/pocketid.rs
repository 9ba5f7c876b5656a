//! id.example.com: Pocket ID v2.14 as the reference and a real instance describe it
//! (fosite for OAuth, interaction sessions for the browser flow, go-webauthn for
//! passkeys), behind Cloudflare's edge, plus the ways real deployments of it break.
//!
//! The store is in memory and starts empty: users come from the admin API, as on a
//! fresh instance with `STATIC_API_KEY` set.

mod api;
mod clients;
mod groups;
mod oidc;
mod passkeys;
mod users;

use super::keys::RsaKey;
use super::{ACCESS_USER_AGENT, CALLBACK_URL, CLIENT_ID, Fault, FaultSet, IDP_HOST, LabError};
use super::{O2P_CALLBACK_URL, O2P_CLIENT_ID};
use super::{Variant, apilog, edge, wire};
use api::ApiError;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a stalled Pocket ID (fault idp-slow) sits on each request.
const STALL: Duration = Duration::from_secs(120);
/// The internal URL a misconfigured INTERNAL_APP_URL points at (fault internal-url).
const INTERNAL_APP_URL: &str = "http://pocket-id:1411";
/// Pocket ID's answer to any API path it has no route for.
const API_NOT_FOUND: &str = r#"{"error":"API endpoint not found"}"#;
/// The SvelteKit page Pocket ID serves for every non-API path.
const SPA_PAGE: &str = include_str!("../../../fixtures/pocketid/spa.html");

/// The URL browsers reach Pocket ID at. WebAuthn and cookie names follow it even
/// when APP_URL is misconfigured (fault issuer-mismatch), so that fault shows in
/// discovery and tokens while enrolment keeps working.
const PUBLIC_URL: &str = "https://id.example.com";
/// The session JWT's cookie (`__Host-` because the public URL is https,
/// `cookie_names.go`).
const ACCESS_TOKEN_COOKIE: &str = "__Host-access_token";
/// The cookie that binds a WebAuthn ceremony's start to its finish.
const SESSION_COOKIE: &str = "__Host-session";

pub(super) const JSON_UTF8: &str = "application/json; charset=utf-8";
const HTML_UTF8: &str = "text/html; charset=utf-8";
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// An OIDC client: the one Cloudflare Access uses, the one oauth2-proxy uses (when the
/// lab's gateway is oauth2-proxy), or a decoy only the admin API shows (logins work
/// with the first two only).
struct Client {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    launch_url: Option<&'static str>,
    callback_urls: Vec<String>,
    /// Confidential clients authenticate at the token endpoint with this secret
    /// while one of `secrets` is active.
    secret: String,
    /// What the admin API shows of the client's secrets.
    secrets: Vec<SecretInfo>,
    /// A public client has no secret; fosite does not authenticate it.
    is_public: bool,
    /// "PKCE required" ticked in Pocket ID's admin UI.
    pkce_enabled: bool,
    /// "Requires pushed authorization requests".
    requires_par: bool,
    /// "Requires reauthentication" (shown by the admin API; the lab's authorize does
    /// not add the step).
    requires_reauthentication: bool,
    /// "Skip consent screen".
    skip_consent: bool,
    /// The groups whose members may use the client, when it is group-restricted.
    allowed_groups: Option<Vec<String>>,
}

/// A client secret as the admin API shows it (the hash stays in the database).
struct SecretInfo {
    id: String,
    /// The secret's first 4 characters.
    prefix: String,
    created_at: String,
    /// `None`: never expires.
    expires_at: Option<String>,
    is_active: bool,
}

impl SecretInfo {
    /// A secret created 30 days ago, with its expiry as the faults set it.
    fn for_secret(secret: &str, faults: &FaultSet) -> SecretInfo {
        let now = wire::unix_now();
        let (expires_at, is_active) = if faults.has(Fault::SecretExpired) {
            (Some(now.saturating_sub(2 * 86_400)), false)
        } else if faults.has(Fault::SecretExpiring) {
            (Some(now + 5 * 86_400), true)
        } else {
            (None, true)
        };
        SecretInfo {
            id: uuid::Uuid::new_v4().to_string(),
            prefix: secret.chars().take(4).collect(),
            created_at: wire::rfc3339_nanos(now.saturating_sub(30 * 86_400), 0),
            expires_at: expires_at.map(|t| wire::rfc3339_nanos(t, 0)),
            is_active,
        }
    }
}

impl Client {
    /// `IsUserGroupAllowedToAuthorize`: unrestricted clients admit everybody.
    fn admits(&self, user: &users::User) -> bool {
        self.allowed_groups
            .as_ref()
            .is_none_or(|allowed| user.groups.iter().any(|g| allowed.contains(g)))
    }
}

/// Everything Pocket ID keeps in its database and actor store.
#[derive(Default)]
struct Store {
    users: users::Users,
    credentials: Vec<passkeys::StoredCredential>,
    one_time_tokens: HashMap<String, users::OneTimeToken>,
    webauthn_sessions: HashMap<String, passkeys::WebauthnSession>,
    interactions: HashMap<String, oidc::Interaction>,
    /// The scopes each user approved for each client: (user id, client id) → scopes.
    consents: HashMap<(String, String), Vec<String>>,
    codes: HashMap<String, oidc::CodeGrant>,
    /// The access tokens the token endpoint issued, for userinfo to introspect.
    access_tokens: HashMap<String, oidc::IssuedToken>,
}

/// Pocket ID's configuration and state.
pub(super) struct PocketId {
    pub(super) faults: FaultSet,
    /// APP_URL: issuer, session JWT issuer and audience.
    app_url: String,
    /// Signs session JWTs and OIDC tokens; the JWKS publishes it.
    key: RsaKey,
    /// STATIC_API_KEY (a secret).
    static_api_key: String,
    client: Client,
    /// oauth2-proxy's client, created after `client`, when the lab's gateway is
    /// oauth2-proxy.
    proxy_client: Option<Client>,
    /// Clients only the admin API shows, listed before `client`.
    decoys: Vec<Client>,
    /// Served verbatim at both discovery paths.
    discovery: String,
    jwks: String,
    relying_party: passkeys::RelyingParty,
    /// The `webauthn-login` rate limit on login/finish.
    login_limit: Mutex<passkeys::TokenBucket>,
    store: Mutex<Store>,
}

/// What Pocket ID is configured with.
pub(super) struct PocketIdConfig {
    pub(super) key: RsaKey,
    /// The secret of the Access client.
    pub(super) client_secret: String,
    pub(super) static_api_key: String,
    /// The secret of oauth2-proxy's client, when the lab's gateway is oauth2-proxy.
    pub(super) proxy_client_secret: Option<String>,
}

impl PocketId {
    /// `REQUIRE_USER_EMAIL`: true, but under fault userinfo-fails.
    pub(super) fn requires_user_email(&self) -> bool {
        !self.faults.has(Fault::UserinfoFails)
    }

    /// Pocket ID configured as `faults` say.
    pub(super) fn new(faults: &FaultSet, config: PocketIdConfig) -> Result<PocketId, LabError> {
        let PocketIdConfig {
            key,
            client_secret,
            static_api_key,
            proxy_client_secret,
        } = config;
        let callback_urls = if faults.has(Fault::CallbackNotRegistered) {
            // An admin pasted the URL with a trailing slash; Access sends it without.
            vec![format!("{CALLBACK_URL}/")]
        } else if faults.has(Fault::ClientNoCallback) {
            vec![]
        } else if faults.has(Fault::CallbackOtherTeam) {
            // Set up for a previous team and never updated.
            vec![clients::OLD_TEAM_CALLBACK_URL.to_string()]
        } else {
            vec![CALLBACK_URL.to_string()]
        };
        let is_public = faults.has(Fault::PublicClientNoPkce);
        let secrets = if is_public {
            vec![]
        } else {
            vec![SecretInfo::for_secret(&client_secret, faults)]
        };
        let app_url = if faults.has(Fault::IssuerMismatch) {
            format!("http://{IDP_HOST}")
        } else {
            format!("https://{IDP_HOST}")
        };
        let internal_url = if faults.has(Fault::InternalUrl) {
            INTERNAL_APP_URL.to_string()
        } else {
            app_url.clone()
        };
        let keys = if faults.has(Fault::JwksEmpty) {
            vec![]
        } else {
            vec![key.jwk()]
        };
        Ok(PocketId {
            faults: faults.clone(),
            relying_party: passkeys::RelyingParty::new(PUBLIC_URL, faults)?,
            discovery: discovery(&app_url, &internal_url).to_string(),
            jwks: json!({ "keys": keys }).to_string(),
            app_url,
            key,
            static_api_key,
            client: Client {
                id: CLIENT_ID,
                name: "Cloudflare Access",
                description: "Cloudflare Zero Trust in front of service.example.com",
                launch_url: None,
                callback_urls,
                secret: client_secret,
                secrets,
                is_public,
                pkce_enabled: !faults.has(Fault::PkceNotEnforced),
                requires_par: faults.has(Fault::ParRequired),
                requires_reauthentication: faults.has(Fault::ReauthRequired),
                skip_consent: false,
                allowed_groups: faults
                    .has(Fault::UserNotAllowed)
                    .then(|| vec![groups::ADMINS_GROUP_ID.to_string()]),
            },
            proxy_client: proxy_client_secret.map(|secret| proxy_client(faults, secret)),
            decoys: decoy_clients(),
            login_limit: Mutex::new(passkeys::TokenBucket::webauthn_login()),
            store: Mutex::new(Store::default()),
        })
    }

    /// Every client, in creation order (the admin API's list order).
    fn clients(&self) -> impl Iterator<Item = &Client> {
        self.decoys
            .iter()
            .chain(std::iter::once(&self.client))
            .chain(self.proxy_client.iter())
    }

    /// The client with id `id` that logins work with: Access's, or oauth2-proxy's.
    fn login_client(&self, id: &str) -> Option<&Client> {
        std::iter::once(&self.client)
            .chain(self.proxy_client.iter())
            .find(|c| c.id == id)
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave the store half-written: every
        // change is a single insert or remove.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// oauth2-proxy's client, set up as the reference's (callback
/// `https://service.example.com/oauth2/callback`, PKCE required, consent not skipped,
/// one secret), unless a fault says otherwise: under fault o2p-callback-not-registered
/// it lists only the path an earlier set-up of the site used.
fn proxy_client(faults: &FaultSet, secret: String) -> Client {
    let callback_urls = if faults.has(Fault::O2pCallbackNotRegistered) {
        vec![O2P_OLD_CALLBACK_URL.to_string()]
    } else {
        vec![O2P_CALLBACK_URL.to_string()]
    };
    Client {
        id: O2P_CLIENT_ID,
        name: "oauth2-proxy",
        description: "oauth2-proxy in front of service.example.com",
        launch_url: Some("https://service.example.com"),
        callback_urls,
        secrets: vec![SecretInfo::for_secret(&secret, &FaultSet::new(&[]))],
        secret,
        is_public: false,
        pkce_enabled: true,
        requires_par: false,
        requires_reauthentication: false,
        skip_consent: false,
        allowed_groups: None,
    }
}

/// The only callback oauth2-proxy's client lists under fault
/// o2p-callback-not-registered: the site's login before oauth2-proxy.
pub(super) const O2P_OLD_CALLBACK_URL: &str = "https://service.example.com/auth/callback";

/// The clients a real instance has next to the Access client: Grafana's, and the
/// one a previous Zero Trust team used.
fn decoy_clients() -> Vec<Client> {
    let healthy = FaultSet::new(&[]);
    let decoy = |id, name, description, launch_url, callback: &str, groups: Option<Vec<String>>| {
        let secret = wire::random_alphanumeric(32);
        Client {
            id,
            name,
            description,
            launch_url,
            callback_urls: vec![callback.to_string()],
            secrets: vec![SecretInfo::for_secret(&secret, &healthy)],
            secret,
            is_public: false,
            pkce_enabled: true,
            requires_par: false,
            requires_reauthentication: false,
            skip_consent: false,
            allowed_groups: groups,
        }
    };
    vec![
        decoy(
            clients::GRAFANA_CLIENT_ID,
            "Grafana",
            "Dashboards",
            Some("https://grafana.example.com"),
            "https://grafana.example.com/login/generic_oauth",
            Some(vec![groups::ADMINS_GROUP_ID.to_string()]),
        ),
        decoy(
            clients::OLD_CLOUDFLARE_CLIENT_ID,
            "Old Cloudflare",
            "The previous Zero Trust team",
            None,
            clients::OLD_TEAM_CALLBACK_URL,
            None,
        ),
    ]
}

/// The discovery document (`computeServerMetadata`): `app_url` is APP_URL,
/// `internal_url` INTERNAL_APP_URL. serde_json writes keys sorted, as Go does for a map.
fn discovery(app_url: &str, internal_url: &str) -> serde_json::Value {
    json!({
        "issuer": app_url,
        "authorization_endpoint": format!("{app_url}/authorize"),
        "token_endpoint": format!("{internal_url}/api/oidc/token"),
        "userinfo_endpoint": format!("{internal_url}/api/oidc/userinfo"),
        "end_session_endpoint": format!("{app_url}/api/oidc/end-session"),
        "introspection_endpoint": format!("{internal_url}/api/oidc/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "Bearer"],
        "device_authorization_endpoint": format!("{app_url}/api/oidc/device/authorize"),
        "jwks_uri": format!("{internal_url}/.well-known/jwks.json"),
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "client_credentials"
        ],
        "scopes_supported": oidc::SUPPORTED_SCOPES,
        "claims_supported": [
            "sub", "given_name", "family_name", "name", "display_name", "email",
            "email_verified", "preferred_username", "picture", "groups", "auth_time", "amr"
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "authorization_response_iss_parameter_supported": true,
        "code_challenge_methods_supported": ["plain", "S256"],
        "request_parameter_supported": true,
        "request_uri_parameter_supported": false,
        "request_object_signing_alg_values_supported": ["none"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "pushed_authorization_request_endpoint": format!("{internal_url}/api/oidc/par"),
        "require_pushed_authorization_requests": false,
        "client_id_metadata_document_supported": false,
        "service_documentation": "https://pocket-id.org/docs",
    })
}

/// The id.example.com router: Pocket ID behind Cloudflare's edge, with the faults
/// that sit in front of it (a dead, unreachable or stalled upstream, a proxy or WAF
/// rule on the token path or the JWKS) applied outside Pocket ID itself. The edge's
/// own pages wear `variant`'s face.
///
/// Every `/api/*` request that carries `X-API-Key` is recorded in `log`, with the
/// status the client saw.
pub(super) fn router(
    faults: &FaultSet,
    variant: Variant,
    gateway: super::Gateway,
    pocket_id: Arc<PocketId>,
    log: Arc<apilog::ApiLog>,
) -> Router {
    let mut front = Router::new();
    if faults.has(Fault::IdpDown) {
        front = front.fallback(move || async move { edge::bad_gateway(variant, IDP_HOST) });
    } else if faults.has(Fault::IdpBehindTunnelDown) {
        front = front.fallback(move |headers: HeaderMap| async move {
            edge::tunnel_error(variant, IDP_HOST, &headers)
        });
    } else {
        if faults.has(Fault::Token404) {
            front = front.route("/api/oidc/token", any(traefik_not_found));
        } else if faults.has(Fault::TokenChallenge) {
            front = front.route(
                "/api/oidc/token",
                any(move |uri: Uri| async move { edge::challenge(variant, IDP_HOST, uri.path()) }),
            );
        }
        front = front.fallback_service(pocket_id_app(pocket_id));
        if faults.has(Fault::TokenBlockedForAccess) {
            front = front.layer(middleware::from_fn_with_state(
                (variant, "/api/oidc/token"),
                challenge_access_at,
            ));
        }
        if faults.has(Fault::JwksBlockedForAccess) {
            front = front.layer(middleware::from_fn_with_state(
                (variant, "/.well-known/jwks.json"),
                challenge_access_at,
            ));
        }
    }
    // Behind Cloudflare with Access; behind the oauth2-proxy stack's own front proxy
    // otherwise.
    let front = match gateway {
        super::Gateway::Access => front.layer(middleware::map_response(edge::stamp)),
        super::Gateway::Oauth2Proxy => front.layer(middleware::map_response_with_state(
            variant,
            super::o2p::stamp_front,
        )),
    };
    let front = if faults.has(Fault::IdpSlow) {
        front.layer(middleware::from_fn(stall))
    } else {
        front
    };
    front.layer(middleware::from_fn_with_state(
        apilog::Recorder {
            log,
            host: IDP_HOST,
            keyed_api_only: true,
        },
        apilog::record,
    ))
}

/// The Content-Security-Policy Pocket ID sets on every answer of its own
/// (`middleware/csp_middleware.go`), with a fresh script nonce.
async fn csp(mut response: Response) -> Response {
    let nonce = wire::b64url(&wire::random_bytes(16));
    let policy = format!(
        "default-src 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; img-src * blob:;font-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'nonce-{nonce}'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("content-security-policy"), value);
    }
    response
}

/// Pocket ID's own routes and middleware.
fn pocket_id_app(pocket_id: Arc<PocketId>) -> Router {
    // The token and userinfo endpoints and the well-known documents carry CORS headers
    // (`middleware/cors.go`); nothing else does.
    let cors = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery_document).fallback(api_not_found),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery_document).fallback(api_not_found),
        )
        .route("/.well-known/jwks.json", get(jwks).fallback(api_not_found))
        .route("/api/oidc/token", post(oidc::token).fallback(api_not_found))
        .route(
            "/api/oidc/userinfo",
            get(oidc::userinfo)
                .post(oidc::userinfo)
                .fallback(api_not_found),
        )
        .layer(middleware::from_fn(cors));
    Router::new()
        .merge(cors)
        .route(
            "/authorize",
            get(oidc::authorize_get).post(oidc::authorize_post),
        )
        .route(
            "/api/oidc/clients",
            get(clients::list).fallback(api_not_found),
        )
        .route(
            "/api/oidc/clients/{id}",
            get(clients::get_one).fallback(api_not_found),
        )
        .route(
            "/api/user-groups",
            get(groups::list).fallback(api_not_found),
        )
        .route(
            "/api/user-groups/{id}",
            get(groups::get_one).fallback(api_not_found),
        )
        .route(
            "/api/users/{id}/groups",
            get(users::groups_of).fallback(api_not_found),
        )
        .route("/api/oidc/interactions/{id}", get(oidc::interaction))
        .route(
            "/api/oidc/interactions/{id}/complete",
            post(oidc::complete_interaction),
        )
        .route("/api/users", get(users::list).post(users::create))
        .route("/api/users/me", get(users::me))
        .route("/api/users/{id}", get(users::get_one).put(users::update))
        .route(
            "/api/users/{id}/one-time-access-token",
            post(users::create_one_time_token),
        )
        .route(
            "/api/users/{id}/webauthn-credentials",
            get(passkeys::list_for_user),
        )
        .route(
            "/api/users/{id}/webauthn-credentials/{credential}",
            delete(passkeys::delete_for_user),
        )
        .route(
            "/api/one-time-access-token/{token}",
            post(users::exchange_one_time_token),
        )
        .route(
            "/api/webauthn/register/start",
            get(passkeys::register_start),
        )
        .route(
            "/api/webauthn/register/finish",
            post(passkeys::register_finish),
        )
        .route("/api/webauthn/login/start", get(passkeys::login_start))
        .route("/api/webauthn/login/finish", post(passkeys::login_finish))
        .route("/api/webauthn/logout", post(passkeys::logout))
        .route("/healthz", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/{*rest}", any(api_not_found))
        .route("/.well-known/{*rest}", any(api_not_found))
        .fallback(spa)
        .with_state(pocket_id)
        .layer(middleware::from_fn(request_id))
        .layer(middleware::map_response(csp))
}

/// Pocket ID's per-request middleware: an `X-Request-Id` on every answer, the error
/// envelope for handlers' [`ApiError`]s (it carries the same id), and
/// `Cache-Control: private, no-store` where the handler set none.
async fn request_id(request: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let mut response = next.run(request).await;
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        response = error.render(&id);
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(X_REQUEST_ID, value);
    }
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("private, no-store"));
    response
}

/// CORS for the OAuth endpoints; a preflight gets 204 without reaching the handler.
async fn cors(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("Authorization"),
    );
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST"),
    );
    response
}

/// Fault idp-slow: the upstream takes longer than any client waits.
async fn stall(request: Request, next: Next) -> Response {
    tokio::time::sleep(STALL).await;
    next.run(request).await
}

/// Faults token-blocked-for-access and jwks-blocked-for-access: a WAF rule (a bot
/// rule that counts the `cloudflare-access` User-Agent as a bot, say) challenges
/// Access's own requests to `path` (the token endpoint, the JWKS); every other
/// client, a prober's included, reaches Pocket ID.
async fn challenge_access_at(
    State((variant, path)): State<(Variant, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let from_access = request
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|agent| agent.eq_ignore_ascii_case(ACCESS_USER_AGENT));
    if from_access && request.uri().path() == path {
        return edge::challenge(variant, IDP_HOST, request.uri().path());
    }
    next.run(request).await
}

/// Fault token-404: Traefik (Go's `http.NotFound`) has no route for the path.
async fn traefik_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (HeaderName::from_static("x-content-type-options"), "nosniff"),
        ],
        "404 page not found\n",
    )
        .into_response()
}

pub(super) fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, JSON_UTF8)], body).into_response()
}

async fn api_not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, API_NOT_FOUND.to_string())
}

/// The SvelteKit shell: never cached, as it embeds a per-request nonce
/// (`frontend_included.go`).
async fn spa() -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, HTML_UTF8), (CACHE_CONTROL, "no-store")],
        SPA_PAGE,
    )
        .into_response()
}

async fn discovery_document(State(pocket_id): State<Arc<PocketId>>) -> Response {
    json_response(StatusCode::OK, pocket_id.discovery.clone())
}

async fn jwks(State(pocket_id): State<Arc<PocketId>>) -> Response {
    json_response(StatusCode::OK, pocket_id.jwks.clone())
}
