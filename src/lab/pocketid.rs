//! id.example.com: Pocket ID v2.14 as the reference describes it (fosite for OAuth,
//! interaction sessions for the browser flow), behind Cloudflare's edge, plus the
//! ways real deployments of it break.

use super::keys::RsaKey;
use super::{CALLBACK_URL, CLIENT_ID, Fault, FaultSet, IDP_HOST, edge, wire};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a stalled Pocket ID (fault idp-slow) sits on each request.
const STALL: Duration = Duration::from_secs(120);
/// Interaction sessions live one hour (`interaction_session_service.go`).
const INTERACTION_TTL: Duration = Duration::from_secs(3600);
/// The internal URL a misconfigured INTERNAL_APP_URL points at (fault internal-url).
const INTERNAL_APP_URL: &str = "http://pocket-id:1411";
/// Pocket ID's answer to any API path it has no route for.
const API_NOT_FOUND: &str = r#"{"error":"API endpoint not found"}"#;
/// The SvelteKit page Pocket ID serves for every non-API path.
const SPA_PAGE: &str = include_str!("../../fixtures/pocketid/spa.html");

const JSON_UTF8: &str = "application/json; charset=utf-8";
const HTML_UTF8: &str = "text/html; charset=utf-8";
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The lab's OIDC client: the one Cloudflare Access uses.
struct Client {
    id: &'static str,
    name: &'static str,
    callback_urls: Vec<String>,
    /// Confidential clients authenticate at the token endpoint with this secret.
    secret: String,
    /// "PKCE required" ticked in Pocket ID's admin UI.
    pkce_enabled: bool,
}

/// A pending browser login: what `/authorize` stored while the user signs in.
struct Interaction {
    /// The authorize parameters, replayed when the browser comes back to
    /// `/authorize?interaction=<id>`.
    params: Vec<(String, String)>,
    scopes: Vec<String>,
    created: Instant,
}

/// Pocket ID's state.
pub(super) struct PocketId {
    client: Client,
    /// Served verbatim at both discovery paths.
    discovery: String,
    jwks: String,
    interactions: Mutex<HashMap<String, Interaction>>,
}

impl PocketId {
    /// Pocket ID with its signing `key`, the Access client holding `client_secret`,
    /// configured as `faults` say.
    pub(super) fn new(faults: &FaultSet, key: &RsaKey, client_secret: String) -> PocketId {
        let callback = if faults.has(Fault::CallbackNotRegistered) {
            // An admin pasted the URL with a trailing slash; Access sends it without.
            format!("{CALLBACK_URL}/")
        } else {
            CALLBACK_URL.to_string()
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
        PocketId {
            client: Client {
                id: CLIENT_ID,
                name: "Cloudflare Access",
                callback_urls: vec![callback],
                secret: client_secret,
                pkce_enabled: true,
            },
            discovery: discovery(&app_url, &internal_url).to_string(),
            jwks: json!({ "keys": keys }).to_string(),
            interactions: Mutex::new(HashMap::new()),
        }
    }

    fn interactions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Interaction>> {
        // A panic while holding the lock cannot leave the map half-written.
        self.interactions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
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
        "scopes_supported": ["openid", "profile", "email", "groups", "offline_access"],
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
/// that sit in front of it (a dead or stalled upstream, a proxy or WAF rule on the
/// token path) applied outside Pocket ID itself.
pub(super) fn router(faults: &FaultSet, pocket_id: Arc<PocketId>) -> Router {
    let mut front = Router::new();
    if faults.has(Fault::IdpDown) {
        front = front.fallback(|| async { edge::bad_gateway(IDP_HOST) });
    } else {
        if faults.has(Fault::Token404) {
            front = front.route("/api/oidc/token", any(traefik_not_found));
        } else if faults.has(Fault::TokenChallenge) {
            front = front.route(
                "/api/oidc/token",
                any(|uri: Uri| async move { edge::challenge(IDP_HOST, uri.path()) }),
            );
        }
        front = front.fallback_service(pocket_id_app(pocket_id));
    }
    let front = front.layer(middleware::map_response(edge::stamp));
    if faults.has(Fault::IdpSlow) {
        front.layer(middleware::from_fn(stall))
    } else {
        front
    }
}

/// Pocket ID's own routes and middleware.
fn pocket_id_app(pocket_id: Arc<PocketId>) -> Router {
    // The token endpoint and the well-known documents carry CORS headers
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
        .route(
            "/api/oidc/token",
            axum::routing::post(token).fallback(api_not_found),
        )
        .layer(middleware::from_fn(cors));
    Router::new()
        .merge(cors)
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/api/oidc/interactions/{id}", get(interaction))
        .route("/healthz", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/{*rest}", any(api_not_found))
        .route("/.well-known/{*rest}", any(api_not_found))
        .fallback(spa)
        .with_state(pocket_id)
        .layer(middleware::from_fn(request_id))
}

/// The request id Pocket ID puts in `X-Request-ID` and in error envelopes.
#[derive(Clone)]
struct RequestId(String);

/// Pocket ID's per-request middleware: an `X-Request-ID` on every answer and
/// `Cache-Control: private, no-store` where the handler set none.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
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

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, JSON_UTF8)], body).into_response()
}

async fn api_not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, API_NOT_FOUND.to_string())
}

async fn spa() -> Response {
    (StatusCode::OK, [(CONTENT_TYPE, HTML_UTF8)], SPA_PAGE).into_response()
}

async fn discovery_document(State(pocket_id): State<Arc<PocketId>>) -> Response {
    json_response(StatusCode::OK, pocket_id.discovery.clone())
}

async fn jwks(State(pocket_id): State<Arc<PocketId>>) -> Response {
    json_response(StatusCode::OK, pocket_id.jwks.clone())
}

/// `GET /api/oidc/interactions/:id` (no authentication).
async fn interaction(
    State(pocket_id): State<Arc<PocketId>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
) -> Response {
    let scopes = pocket_id
        .interactions()
        .get(&id)
        .filter(|i| i.created.elapsed() < INTERACTION_TTL)
        .map(|i| i.scopes.clone());
    let Some(scopes) = scopes else {
        let body = json!({
            "error": "OIDC interaction not found or expired",
            "code": "not_found",
            "details": { "resource": "OIDC interaction" },
            "request_id": request_id,
        });
        return json_response(StatusCode::NOT_FOUND, body.to_string());
    };
    let client = &pocket_id.client;
    let body = json!({
        "id": id,
        "scopes": scopes,
        "scopeInfo": [],
        "client": {
            "id": client.id,
            "name": client.name,
            "description": "",
            "hasLogo": false,
            "hasDarkLogo": false,
            "launchURL": null,
            "requiresReauthentication": false,
            "clientType": "registered",
        },
        "currentStep": "authenticate",
        "requiredSteps": ["authenticate"],
    });
    json_response(StatusCode::OK, body.to_string())
}

// ---------------------------------------------------------------------------------
// OAuth errors, as fosite writes them.

const INVALID_REQUEST_DESCRIPTION: &str = "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.";
const INVALID_REQUEST_DEFAULT_HINT: &str = "Make sure that the various parameters are correct, be aware of case sensitivity and trim your parameters. Make sure that the client you are using has exactly whitelisted the redirect_uri you specified.";

/// An RFC 6749 error: fosite's `RFC6749Error` with its description and hint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
    hint: Option<String>,
}

impl OAuthError {
    fn invalid_request(hint: &str) -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: INVALID_REQUEST_DESCRIPTION,
            hint: Some(hint.to_string()),
        }
    }

    fn invalid_client() -> OAuthError {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).",
            hint: None,
        }
    }

    fn invalid_grant() -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            description: "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
            hint: None,
        }
    }

    fn unauthorized_client(hint: &str) -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "unauthorized_client",
            description: "The client is not authorized to request a token using this method.",
            hint: Some(hint.to_string()),
        }
    }

    fn unsupported_response_type(hint: String) -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_response_type",
            description: "The authorization server does not support obtaining a token using this method.",
            hint: Some(hint),
        }
    }

    fn invalid_state() -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_state",
            description: "The state is missing or does not have enough characters and is therefore considered too weak.",
            hint: Some(format!(
                "Request parameter 'state' must be at least be {MIN_STATE_LEN} characters long to ensure sufficient entropy."
            )),
        }
    }

    fn login_required() -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "login_required",
            description: "The Authorization Server requires End-User authentication.",
            hint: None,
        }
    }

    /// fosite's non-legacy `error_description`: the description, a space and the
    /// hint, with `"` turned into `'`.
    fn error_description(&self) -> String {
        let text = match &self.hint {
            Some(hint) => format!("{} {hint}", self.description),
            None => self.description.to_string(),
        };
        text.replace('"', "'")
    }

    /// The token endpoint's JSON error (`writeJsonError`).
    fn token_response(&self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.error_description() });
        (
            self.status,
            [
                (CONTENT_TYPE, "application/json;charset=UTF-8"),
                (CACHE_CONTROL, "no-store"),
                (PRAGMA, "no-cache"),
            ],
            body.to_string(),
        )
            .into_response()
    }

    /// Pocket ID's `redirectToInteractionError`: errors that must not go back to the
    /// client are shown on its own page; the message is the hint, else the description.
    fn interaction_error_redirect(&self) -> Response {
        let message = self.hint.as_deref().unwrap_or(self.description);
        let query = wire::go_encode_query(&[("error".to_string(), message.to_string())]);
        go_redirect(StatusCode::FOUND, &format!("/interaction/error?{query}"))
    }

    /// fosite's `WriteAuthorizeError` in query mode: 303 to the client's redirect URI
    /// with `error`, `error_description` and `state` merged into its query.
    fn client_redirect(&self, redirect_uri: &url::Url, state: &str) -> Response {
        let mut pairs = vec![
            ("error".to_string(), self.error.to_string()),
            ("error_description".to_string(), self.error_description()),
            ("state".to_string(), state.to_string()),
        ];
        pairs.extend(
            redirect_uri
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
        let mut target = redirect_uri.clone();
        target.set_fragment(None);
        target.set_query(None);
        let location = format!("{target}?{}", wire::go_encode_query(&pairs));
        let Ok(location) = HeaderValue::from_str(&location) else {
            return self.interaction_error_redirect();
        };
        let mut response = StatusCode::SEE_OTHER.into_response();
        let headers = response.headers_mut();
        headers.insert(LOCATION, location);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

/// A redirect as Go's `http.Redirect` writes it for a GET: the Location, an HTML
/// content type and a one-line link body.
fn go_redirect(status: StatusCode, location: &str) -> Response {
    let Ok(value) = HeaderValue::from_str(location) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let reason = status.canonical_reason().unwrap_or("Found");
    let body = format!(
        "<a href=\"{}\">{reason}</a>.\n\n",
        wire::html_escape(location)
    );
    let mut response = (status, [(CONTENT_TYPE, HTML_UTF8)], body).into_response();
    response.headers_mut().insert(LOCATION, value);
    response
}

// ---------------------------------------------------------------------------------
// The authorize endpoint.

/// fosite's minimum state length ("entropy").
const MIN_STATE_LEN: usize = 8;

/// The first value of `key`, or "" (Go's `url.Values.Get`).
fn param<'a>(params: &'a [(String, String)], key: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

fn parse_form(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

async fn authorize_get(
    State(pocket_id): State<Arc<PocketId>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes());
    pocket_id.authorize(params)
}

/// `POST /authorize`: fosite reads the query and a form body together.
async fn authorize_post(
    State(pocket_id): State<Arc<PocketId>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = parse_form(query.unwrap_or_default().as_bytes());
    if is_form(&headers) {
        params.extend(parse_form(&body));
    }
    pocket_id.authorize(params)
}

impl PocketId {
    /// `GET /authorize` without a Pocket ID session: the validation order of
    /// fosite's `NewAuthorizeRequest` and Pocket ID's `authorize`, ending in an
    /// interaction session for the sign-in page.
    fn authorize(&self, mut params: Vec<(String, String)>) -> Response {
        // Resuming an interaction replays its stored parameters (the browser only
        // carries the id back).
        let interaction_id = param(&params, "interaction").to_string();
        if !interaction_id.is_empty() {
            let stored = self
                .interactions()
                .get(&interaction_id)
                .filter(|i| i.created.elapsed() < INTERACTION_TTL)
                .map(|i| i.params.clone());
            let Some(stored) = stored else {
                return OAuthError::invalid_request(
                    "The interaction session is invalid or has expired.",
                )
                .interaction_error_redirect();
            };
            params = stored;
        }

        let client = &self.client;
        if param(&params, "client_id") != client.id {
            let mut error = OAuthError::invalid_client();
            error.hint = Some("The requested OAuth 2.0 Client does not exist.".to_string());
            return error.interaction_error_redirect();
        }
        let scopes: Vec<String> = param(&params, "scope")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let redirect_uri = match self.redirect_uri(param(&params, "redirect_uri"), &scopes) {
            Ok(uri) => uri,
            Err(error) => return error.interaction_error_redirect(),
        };
        // From here on the redirect URI is trusted: errors go back to the client.
        let state = param(&params, "state");
        let response_types: Vec<&str> = param(&params, "response_type")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        if response_types.is_empty() {
            // The stray backtick is fosite's.
            return OAuthError::unsupported_response_type(
                "`The request is missing the 'response_type' parameter.".to_string(),
            )
            .client_redirect(&redirect_uri, state);
        }
        if response_types != ["code"] {
            return OAuthError::unsupported_response_type(format!(
                "The client is not allowed to request response_type '{}'.",
                param(&params, "response_type")
            ))
            .client_redirect(&redirect_uri, state);
        }
        if state.len() < MIN_STATE_LEN {
            return OAuthError::invalid_state().client_redirect(&redirect_uri, state);
        }
        if client.pkce_enabled && param(&params, "code_challenge").is_empty() {
            return OAuthError::invalid_request(
                "This client requires PKCE, but the 'code_challenge' parameter is missing.",
            )
            .client_redirect(&redirect_uri, state);
        }
        // The lab's Pocket ID has no signed-in users yet, so every valid request
        // needs the sign-in page.
        let prompts: Vec<&str> = param(&params, "prompt").split(' ').collect();
        if prompts.contains(&"none") {
            return OAuthError::login_required().client_redirect(&redirect_uri, state);
        }
        let id = uuid::Uuid::new_v4().to_string();
        params.retain(|(k, _)| !matches!(k.as_str(), "request" | "request_uri" | "interaction"));
        {
            let mut interactions = self.interactions();
            interactions.retain(|_, i| i.created.elapsed() < INTERACTION_TTL);
            interactions.insert(
                id.clone(),
                Interaction {
                    params,
                    scopes,
                    created: Instant::now(),
                },
            );
        }
        go_redirect(StatusCode::FOUND, &format!("/interaction?interaction={id}"))
    }

    /// fosite's `validateAuthorizeRedirectURI` with Pocket ID's matcher, for the lab
    /// client's exact (pattern-free) callback URLs.
    fn redirect_uri(&self, raw: &str, scopes: &[String]) -> Result<url::Url, OAuthError> {
        let registered = &self.client.callback_urls;
        if raw.is_empty() && scopes.iter().any(|s| s == "openid") {
            return Err(OAuthError::invalid_request(
                "The 'redirect_uri' parameter is required when using OpenID Connect 1.0.",
            ));
        }
        let chosen = match registered.as_slice() {
            [only] if raw.is_empty() => only.as_str(),
            _ if registered.iter().any(|r| r == raw) => raw,
            _ => {
                // Pocket ID's own wording (v2.14), not fosite's.
                return Err(OAuthError::invalid_request(&format!(
                    "The redirect_uri '{raw}' is not registered for this client."
                )));
            }
        };
        url::Url::parse(chosen)
            .ok()
            .filter(|u| u.fragment().is_none())
            .ok_or_else(|| {
                OAuthError::invalid_request(&format!(
                    "The redirect URI '{chosen}' contains an illegal character (for example #) or is otherwise invalid."
                ))
            })
    }
}

// ---------------------------------------------------------------------------------
// The token endpoint.

/// Whether the request body is a URL-encoded form (anything else reads as empty).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The grants Pocket ID's fosite has handlers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    DeviceCode,
}

impl Grant {
    /// A handler claims a request only when `grant_type` is exactly its grant.
    fn parse(grant_types: &[&str]) -> Option<Grant> {
        match grant_types {
            ["authorization_code"] => Some(Grant::AuthorizationCode),
            ["refresh_token"] => Some(Grant::RefreshToken),
            ["client_credentials"] => Some(Grant::ClientCredentials),
            ["urn:ietf:params:oauth:grant-type:device_code"] => Some(Grant::DeviceCode),
            _ => None,
        }
    }
}

async fn token(
    State(pocket_id): State<Arc<PocketId>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = if is_form(&headers) {
        parse_form(&body)
    } else {
        Vec::new()
    };
    match pocket_id.token(&headers, &form) {
        Ok(response) => response,
        Err(error) => error.token_response(),
    }
}

impl PocketId {
    /// fosite's `NewAccessRequest`: body, grant type, client authentication, then
    /// the grant's own checks.
    fn token(
        &self,
        headers: &HeaderMap,
        form: &[(String, String)],
    ) -> Result<Response, OAuthError> {
        if form.is_empty() {
            return Err(OAuthError::invalid_request(
                "The POST body can not be empty.",
            ));
        }
        let grant_types: Vec<&str> = param(form, "grant_type")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        if grant_types.is_empty() {
            return Err(OAuthError::invalid_request(
                "Request parameter 'grant_type' is missing",
            ));
        }
        // fosite authenticates first but reports a client error only once some
        // handler has claimed the grant type.
        let authenticated = self.authenticate_client(headers, form);
        let Some(grant) = Grant::parse(&grant_types) else {
            return Err(OAuthError::invalid_request(INVALID_REQUEST_DEFAULT_HINT));
        };
        authenticated?;
        match grant {
            // The lab issues no codes or refresh tokens yet, so none can be redeemed.
            Grant::AuthorizationCode | Grant::RefreshToken | Grant::DeviceCode => {
                Err(OAuthError::invalid_grant())
            }
            // Real Pocket ID would mint a machine token here; the lab has no use for
            // one and refuses rather than pretend.
            Grant::ClientCredentials => Err(OAuthError::unauthorized_client(
                "The OAuth 2.0 Client is not allowed to use authorization grant 'client_credentials'.",
            )),
        }
    }

    /// fosite's default client authentication: HTTP Basic first, then
    /// `client_id`/`client_secret` in the form. The lab client is confidential, so
    /// its secret is required.
    fn authenticate_client(
        &self,
        headers: &HeaderMap,
        form: &[(String, String)],
    ) -> Result<(), OAuthError> {
        let (id, secret) = match basic_auth(headers) {
            Some((id, secret)) => (
                wire::go_query_unescape(&id).ok_or_else(|| {
                    OAuthError::invalid_request("The client id in the HTTP authorization header could not be decoded from 'application/x-www-form-urlencoded'.")
                })?,
                wire::go_query_unescape(&secret).ok_or_else(|| {
                    OAuthError::invalid_request("The client secret in the HTTP authorization header could not be decoded from 'application/x-www-form-urlencoded'.")
                })?,
            ),
            None => (
                param(form, "client_id").to_string(),
                param(form, "client_secret").to_string(),
            ),
        };
        if id.is_empty() {
            return Err(OAuthError::invalid_request(
                "Client credentials missing or malformed in both HTTP Authorization header and HTTP POST body.",
            ));
        }
        if id != self.client.id || secret.is_empty() || secret != self.client.secret {
            return Err(OAuthError::invalid_client());
        }
        Ok(())
    }
}

/// Go's `Request.BasicAuth`: `Basic base64(id:secret)`, else `None`.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_descriptions_join_description_and_hint() {
        let e = OAuthError::invalid_request("The POST body can not be empty.");
        assert_eq!(
            e.error_description(),
            format!("{INVALID_REQUEST_DESCRIPTION} The POST body can not be empty.")
        );
        let e = OAuthError::invalid_request(r#"say "hi""#);
        assert!(e.error_description().ends_with("say 'hi'"));
        assert_eq!(
            OAuthError::invalid_grant().error_description(),
            OAuthError::invalid_grant().description
        );
    }

    #[test]
    fn basic_auth_is_parsed_like_go() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%20id:s+cret");
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}"))
                .unwrap_or(HeaderValue::from_static("")),
        );
        assert_eq!(
            basic_auth(&headers),
            Some(("my%20id".to_string(), "s+cret".to_string()))
        );
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(basic_auth(&headers), None);
    }

    #[test]
    fn grant_types_must_match_exactly() {
        assert_eq!(
            Grant::parse(&["authorization_code"]),
            Some(Grant::AuthorizationCode)
        );
        assert_eq!(Grant::parse(&["authorization_code", "refresh_token"]), None);
        assert_eq!(Grant::parse(&["password"]), None);
    }

    #[test]
    fn form_content_type_detection() {
        let mut headers = HeaderMap::new();
        assert!(!is_form(&headers));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
        );
        assert!(is_form(&headers));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!is_form(&headers));
    }
}
