//! Pocket ID's OAuth 2.0 / OpenID Connect side: `/authorize` with interaction
//! sessions (v2.10+), the interaction API the sign-in page uses, and the token
//! endpoint, answering like fosite.

use super::api::{self, ApiError, Session};
use super::users::User;
use super::{Client, HTML_UTF8, PocketId, Store};
use crate::Fault;
use crate::wire;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The scopes Pocket ID knows; others are dropped silently (`IgnoreUnknownScopes`).
pub(super) const SUPPORTED_SCOPES: [&str; 5] =
    ["openid", "profile", "email", "groups", "offline_access"];
/// Interaction sessions live one hour (`interaction_session_service.go`).
const INTERACTION_TTL: Duration = Duration::from_secs(3600);
/// Authorization codes live fosite's default 15 minutes.
const CODE_TTL: Duration = Duration::from_secs(15 * 60);
/// Lifetime of id_tokens and access tokens (the client's default 60 minutes).
const TOKEN_SECONDS: u64 = 3600;
/// fosite's minimum state length ("entropy").
const MIN_STATE_LEN: usize = 8;

/// A step the user still has to complete on the sign-in page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    Authenticate,
    Consent,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Authenticate => "authenticate",
            Step::Consent => "consent",
        }
    }
}

/// A pending browser login: what `/authorize` stored while the user signs in.
pub(super) struct Interaction {
    /// The authorize parameters, replayed when the browser comes back to
    /// `/authorize?interaction=<id>`.
    params: Vec<(String, String)>,
    /// The scopes requested, unknown ones dropped.
    scopes: Vec<String>,
    /// The remaining steps, in order.
    steps: Vec<Step>,
    /// The user who signed in for it, once known.
    user_id: Option<String>,
    created: Instant,
}

/// An issued authorization code and what redeeming it needs.
pub(super) struct CodeGrant {
    client_id: String,
    /// `redirect_uri` as the authorize request sent it ("" when it sent none).
    redirect_uri: String,
    user_id: String,
    scopes: Vec<String>,
    nonce: Option<String>,
    /// The PKCE challenge and method; fosite deletes it before comparing.
    pkce: Option<(String, String)>,
    /// When the user authenticated (the session's `iat`) and how (`amr`).
    auth_time: u64,
    amr: String,
    /// When the authorize request came (`rat`).
    requested_at: u64,
    created: Instant,
    used: bool,
}

/// An access token the token endpoint issued: what userinfo's introspection finds.
pub(super) struct IssuedToken {
    user_id: String,
    scopes: Vec<String>,
    /// Its `exp` (Unix seconds).
    expires: u64,
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

    fn invalid_grant_hint(hint: &str) -> OAuthError {
        OAuthError {
            hint: Some(hint.to_string()),
            ..OAuthError::invalid_grant()
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

    fn access_denied(hint: &str) -> OAuthError {
        OAuthError {
            status: StatusCode::FORBIDDEN,
            error: "access_denied",
            description: "The resource owner or authorization server denied the request.",
            hint: Some(hint.to_string()),
        }
    }

    fn consent_required() -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "consent_required",
            description: "The Authorization Server requires End-User consent.",
            hint: None,
        }
    }

    fn server_error() -> OAuthError {
        OAuthError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "The authorization server encountered an unexpected condition that prevented it from fulfilling the request.",
            hint: None,
        }
    }

    /// fosite's `ErrorToRFC6749Error` for an error that is no `RFC6749Error` (Pocket
    /// ID's `apperror`s, database errors): `error=error`, a fixed description, no
    /// hint; the cause goes to the debug field, which Pocket ID does not send.
    fn unrecognizable() -> OAuthError {
        OAuthError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "error",
            description: "The error is unrecognizable",
            hint: None,
        }
    }

    /// fosite's `ErrRequestUnauthorized`: introspection found no such token (none
    /// sent, not a bearer token, unknown, forged, or not an access token).
    fn request_unauthorized() -> OAuthError {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            error: "request_unauthorized",
            description: "The request could not be authorized.",
            hint: Some(
                "Check that you provided valid credentials in the right format.".to_string(),
            ),
        }
    }

    /// fosite's `ErrTokenExpired` for an access token past its `exp`.
    fn token_expired() -> OAuthError {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_token",
            description: "Token expired.",
            hint: Some("The token expired.".to_string()),
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

    /// userinfo's error (`writeUserInfoError`): Gin's JSON, not fosite's writer, and a
    /// Bearer challenge repeating the error when the status is 401.
    fn userinfo_response(&self) -> Response {
        let description = self.error_description();
        let body = json!({ "error": self.error, "error_description": description });
        let mut response = (
            self.status,
            [(CONTENT_TYPE, super::JSON_UTF8)],
            body.to_string(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = format!(
                "Bearer error=\"{}\", error_description=\"{description}\"",
                self.error
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(WWW_AUTHENTICATE, value);
            }
        }
        response
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
        let pairs = vec![
            ("error".to_string(), self.error.to_string()),
            ("error_description".to_string(), self.error_description()),
            ("state".to_string(), state.to_string()),
        ];
        see_other(redirect_uri, pairs).unwrap_or_else(|| self.interaction_error_redirect())
    }
}

/// fosite's query-mode authorize response: 303 to `redirect_uri` with `pairs`
/// merged into its query (`url.Values.Encode`, so sorted by key); `None` when the
/// result cannot be a header.
fn see_other(redirect_uri: &url::Url, mut pairs: Vec<(String, String)>) -> Option<Response> {
    pairs.extend(
        redirect_uri
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned())),
    );
    let mut target = redirect_uri.clone();
    target.set_fragment(None);
    target.set_query(None);
    let location = format!("{target}?{}", wire::go_encode_query(&pairs));
    let location = HeaderValue::from_str(&location).ok()?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(LOCATION, location);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Some(response)
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

/// The requested scopes Pocket ID knows, in request order.
fn supported(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| SUPPORTED_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect()
}

/// `GET /authorize` (also with `?interaction=<id>` to resume).
pub(super) async fn authorize_get(
    State(pocket_id): State<Arc<PocketId>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes());
    pocket_id.authorize(params, &headers)
}

/// `POST /authorize`: fosite reads the query and a form body together.
pub(super) async fn authorize_post(
    State(pocket_id): State<Arc<PocketId>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = parse_form(query.unwrap_or_default().as_bytes());
    if is_form(&headers) {
        params.extend(parse_form(&body));
    }
    pocket_id.authorize(params, &headers)
}

/// Whether the request's `prompt` lists `value` (`prompt` is space-separated).
fn prompted(params: &[(String, String)], value: &str) -> bool {
    param(params, "prompt").split(' ').any(|p| p == value)
}

/// Whether `user` still has to approve `scopes` for the client.
fn needs_consent(store: &Store, client: &super::Client, user_id: &str, scopes: &[String]) -> bool {
    if client.skip_consent {
        return false;
    }
    let approved = store
        .consents
        .get(&(user_id.to_string(), client.id.to_string()));
    !approved.is_some_and(|approved| scopes.iter().all(|s| approved.contains(s)))
}

/// Records that `user_id` approved `scopes` for the client (merged with earlier
/// approvals).
fn record_consent(store: &mut Store, client_id: &str, user_id: &str, scopes: &[String]) {
    let approved = store
        .consents
        .entry((user_id.to_string(), client_id.to_string()))
        .or_default();
    for scope in scopes {
        if !approved.contains(scope) {
            approved.push(scope.clone());
        }
    }
}

impl PocketId {
    /// `/authorize`: the validation order of fosite's `NewAuthorizeRequest` and
    /// Pocket ID's `authorize`. Without a session it stores an interaction for the
    /// sign-in page; with one it checks the client's groups and consent, then issues
    /// a code.
    fn authorize(&self, params: Vec<(String, String)>, headers: &HeaderMap) -> Response {
        // Resuming an interaction replays its stored parameters (the browser only
        // carries the id back).
        let interaction_id = param(&params, "interaction").to_string();
        let resumed = (!interaction_id.is_empty()).then_some(interaction_id.as_str());
        let params = match resumed {
            Some(id) => match self.interaction_params(id) {
                Ok(stored) => stored,
                Err(error) => return error.interaction_error_redirect(),
            },
            None => params,
        };

        let requested: Vec<String> = param(&params, "scope")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let (client, redirect_uri) = match self.check_client_and_redirect_uri(&params, &requested) {
            Ok(checked) => checked,
            Err(error) => return error.interaction_error_redirect(),
        };
        // From here on the redirect URI is trusted: errors go back to the client.
        if let Err(error) = self.check_code_flow_params(client, &params) {
            return error.client_redirect(&redirect_uri, param(&params, "state"));
        }
        // Pocket ID's `authorize` (authorization_service.go), after the client's PKCE
        // requirement: a client that requires PAR refuses a request that is neither
        // pushed nor a resumed interaction (the lab implements no PAR endpoint, so every
        // fresh request is one). `apperror.OidcPARRequired` is no RFC 6749 error, so
        // fosite's `WriteAuthorizeError` sends the client its catch-all: only Pocket ID's
        // log names PAR.
        if resumed.is_none()
            && client.requires_par
            && !param(&params, "request_uri").starts_with("urn:ietf:params:oauth:request_uri:")
        {
            return OAuthError::unrecognizable()
                .client_redirect(&redirect_uri, param(&params, "state"));
        }
        let scopes = supported(&requested);

        // `optionalBrowserAuth`: a missing or invalid session means "anonymous", but
        // a disabled user is refused outright.
        match self.verify_session(headers) {
            Ok(session) => {
                self.authorize_signed_in(client, params, resumed, session, scopes, &redirect_uri)
            }
            Err(e) if e.code == "user_disabled" => e.into_response(),
            Err(_) => {
                if prompted(&params, "none") {
                    return OAuthError::login_required()
                        .client_redirect(&redirect_uri, param(&params, "state"));
                }
                let mut steps = vec![Step::Authenticate];
                if prompted(&params, "consent") {
                    steps.push(Step::Consent);
                }
                if let Some(error) = self.storage_error() {
                    return error.client_redirect(&redirect_uri, param(&params, "state"));
                }
                self.start_interaction(params, scopes, steps, None)
            }
        }
    }

    /// The parameters an unexpired interaction stored, for `/authorize` to replay.
    fn interaction_params(&self, id: &str) -> Result<Vec<(String, String)>, OAuthError> {
        self.store()
            .interactions
            .get(id)
            .filter(|i| i.created.elapsed() < INTERACTION_TTL)
            .map(|i| i.params.clone())
            .ok_or_else(|| {
                OAuthError::invalid_request("The interaction session is invalid or has expired.")
            })
    }

    /// The checks whose errors Pocket ID shows on its own page, never sending them to
    /// the client: the client, then the redirect URI, which is trusted once they pass.
    fn check_client_and_redirect_uri(
        &self,
        params: &[(String, String)],
        requested: &[String],
    ) -> Result<(&Client, url::Url), OAuthError> {
        let Some(client) = self.login_client(param(params, "client_id")) else {
            let mut error = OAuthError::invalid_client();
            error.hint = Some("The requested OAuth 2.0 Client does not exist.".to_string());
            return Err(error);
        };
        // Fault error-text-markup: error text a hostile or compromised IdP could send.
        if self.faults.has(Fault::ErrorTextMarkup) {
            return Err(OAuthError::invalid_request(
                "The request was refused <script>alert(\"ssoprobe\")</script><img src=x onerror=alert(1)> by policy",
            ));
        }
        let uri = self.redirect_uri(client, param(params, "redirect_uri"), requested)?;
        Ok((client, uri))
    }

    /// fosite's checks of the code flow's own parameters, whose errors go back to the
    /// client: the response type, the state's length, then PKCE where the client
    /// requires it.
    fn check_code_flow_params(
        &self,
        client: &Client,
        params: &[(String, String)],
    ) -> Result<(), OAuthError> {
        let response_types: Vec<&str> = param(params, "response_type")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        if response_types.is_empty() {
            // The stray backtick is fosite's.
            return Err(OAuthError::unsupported_response_type(
                "`The request is missing the 'response_type' parameter.".to_string(),
            ));
        }
        if response_types != ["code"] {
            return Err(OAuthError::unsupported_response_type(format!(
                "The client is not allowed to request response_type '{}'.",
                param(params, "response_type")
            )));
        }
        if param(params, "state").len() < MIN_STATE_LEN {
            return Err(OAuthError::invalid_state());
        }
        if client.pkce_enabled && param(params, "code_challenge").is_empty() {
            return Err(OAuthError::invalid_request(
                "This client requires PKCE, but the 'code_challenge' parameter is missing.",
            ));
        }
        // fosite's EnforcePKCEForPublicClients.
        if client.is_public && param(params, "code_challenge").is_empty() {
            return Err(OAuthError::invalid_request(
                "Clients must include a code_challenge when performing the authorize code flow, but it is missing.",
            ));
        }
        Ok(())
    }

    /// `/authorize` with a session: fosite's remaining check, the client's groups,
    /// the steps still due (sent to the sign-in page), then a code for the client.
    fn authorize_signed_in(
        &self,
        client: &Client,
        params: Vec<(String, String)>,
        resumed: Option<&str>,
        session: Session,
        scopes: Vec<String>,
        redirect_uri: &url::Url,
    ) -> Response {
        let state = param(&params, "state");
        // fosite's remaining checks run now (an unsupported challenge method is only
        // noticed here).
        if !matches!(
            param(&params, "code_challenge_method"),
            "" | "plain" | "S256"
        ) {
            return OAuthError::invalid_request(
                "The code_challenge_method is not supported, use S256 instead.",
            )
            .client_redirect(redirect_uri, state);
        }
        let mut store = self.store();
        let Some(user) = store.users.get(&session.user_id).cloned() else {
            return ApiError::user_not_found().into_response();
        };
        if !client.admits(&user) {
            // Deliberately never sent to the client as access_denied.
            return OAuthError::access_denied("You are not allowed to access this service.")
                .interaction_error_redirect();
        }
        let steps = self.pending_steps(client, &store, resumed, &user.id, &scopes, &params);
        if !steps.is_empty() {
            if let Some(id) = resumed {
                return go_redirect(StatusCode::FOUND, &format!("/interaction?interaction={id}"));
            }
            if prompted(&params, "none") {
                return OAuthError::consent_required().client_redirect(redirect_uri, state);
            }
            if let Some(error) = self.storage_error() {
                return error.client_redirect(redirect_uri, state);
            }
            drop(store);
            return self.start_interaction(params, scopes, steps, Some(user.id));
        }
        // Deleting the interaction and recording the consent are writes too.
        if let Some(error) = self.storage_error() {
            return error.client_redirect(redirect_uri, state);
        }
        // Each interaction yields one code.
        if let Some(id) = resumed
            && store.interactions.remove(id).is_none()
        {
            return OAuthError::invalid_request("The interaction session has already been used.")
                .interaction_error_redirect();
        }
        record_consent(&mut store, client.id, &user.id, &scopes);
        let code = self.issue_code(client, &mut store, &params, &user.id, &scopes, session);
        drop(store);
        self.code_redirect(redirect_uri, code, &scopes, state)
    }

    /// The steps the signed-in user still has to complete: a resumed interaction's
    /// remaining ones; otherwise consent, when the scopes are not yet approved or the
    /// request asks for it (`prompt=consent`).
    fn pending_steps(
        &self,
        client: &Client,
        store: &Store,
        resumed: Option<&str>,
        user_id: &str,
        scopes: &[String],
        params: &[(String, String)],
    ) -> Vec<Step> {
        if let Some(id) = resumed {
            store
                .interactions
                .get(id)
                .map(|i| i.steps.clone())
                .unwrap_or_default()
        } else if needs_consent(store, client, user_id, scopes) || prompted(params, "consent") {
            vec![Step::Consent]
        } else {
            Vec::new()
        }
    }

    /// Stores an authorization code for the signed-in user (expired codes are dropped
    /// first) and returns it.
    fn issue_code(
        &self,
        client: &Client,
        store: &mut Store,
        params: &[(String, String)],
        user_id: &str,
        scopes: &[String],
        session: Session,
    ) -> String {
        let code = format!(
            "pocket_id_ac_{}.{}",
            wire::b64url(&wire::random_bytes(32)),
            wire::b64url(&wire::random_bytes(32))
        );
        let challenge = param(params, "code_challenge");
        let method = match param(params, "code_challenge_method") {
            "" => "plain",
            method => method,
        };
        store.codes.retain(|_, g| g.created.elapsed() < CODE_TTL);
        store.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: client.id.to_string(),
                redirect_uri: param(params, "redirect_uri").to_string(),
                user_id: user_id.to_string(),
                scopes: scopes.to_vec(),
                nonce: Some(param(params, "nonce"))
                    .filter(|n| !n.is_empty())
                    .map(str::to_string),
                pkce: (!challenge.is_empty()).then(|| (challenge.to_string(), method.to_string())),
                auth_time: session.issued_at,
                amr: session.amr,
                requested_at: wire::unix_now(),
                created: Instant::now(),
                used: false,
            },
        );
        code
    }

    /// The successful authorize response: 303 to the client with the code, the
    /// issuer, the granted scopes and the state.
    fn code_redirect(
        &self,
        redirect_uri: &url::Url,
        code: String,
        scopes: &[String],
        state: &str,
    ) -> Response {
        let pairs = vec![
            ("code".to_string(), code),
            ("iss".to_string(), self.app_url.clone()),
            ("scope".to_string(), scopes.join(" ")),
            ("state".to_string(), state.to_string()),
        ];
        see_other(redirect_uri, pairs).unwrap_or_else(|| {
            OAuthError::invalid_request("The redirect URI is not a valid header value.")
                .interaction_error_redirect()
        })
    }

    /// Stores an interaction session and sends the browser to the sign-in page with it.
    fn start_interaction(
        &self,
        params: Vec<(String, String)>,
        scopes: Vec<String>,
        steps: Vec<Step>,
        user_id: Option<String>,
    ) -> Response {
        let id = self.new_interaction(params, scopes, steps, user_id);
        go_redirect(StatusCode::FOUND, &format!("/interaction?interaction={id}"))
    }

    /// The error storing an interaction session gives while the database takes no
    /// writes (fault idp-database-readonly): gorm's error, no RFC 6749 error, so the
    /// client gets fosite's catch-all.
    fn storage_error(&self) -> Option<OAuthError> {
        self.faults
            .has(Fault::IdpDatabaseReadonly)
            .then(OAuthError::unrecognizable)
    }

    /// Stores an interaction session and returns its id.
    fn new_interaction(
        &self,
        mut params: Vec<(String, String)>,
        scopes: Vec<String>,
        steps: Vec<Step>,
        user_id: Option<String>,
    ) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        params.retain(|(k, _)| !matches!(k.as_str(), "request" | "request_uri" | "interaction"));
        let mut store = self.store();
        store
            .interactions
            .retain(|_, i| i.created.elapsed() < INTERACTION_TTL);
        store.interactions.insert(
            id.clone(),
            Interaction {
                params,
                scopes,
                steps,
                user_id,
                created: Instant::now(),
            },
        );
        id
    }

    /// fosite's `validateAuthorizeRedirectURI` with Pocket ID's matcher, for the
    /// client's exact (pattern-free) callback URLs.
    fn redirect_uri(
        &self,
        client: &Client,
        raw: &str,
        scopes: &[String],
    ) -> Result<url::Url, OAuthError> {
        let registered = &client.callback_urls;
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
// The interaction API.

/// `dto.OidcClientMetaDataDto`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClientMeta<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    has_logo: bool,
    has_dark_logo: bool,
    #[serde(rename = "launchURL")]
    launch_url: Option<&'a str>,
    requires_reauthentication: bool,
    client_type: &'a str,
}

/// `interactionSessionForUser`: `requiredSteps` lists the remaining steps.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InteractionDto<'a> {
    id: &'a str,
    scopes: &'a [String],
    scope_info: Vec<Value>,
    client: ClientMeta<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_step: Option<&'static str>,
    required_steps: Vec<&'static str>,
}

impl PocketId {
    /// The client an interaction's authorize request named (Access's when it names
    /// none that logins work with, which `/authorize` never stores).
    fn interaction_client(&self, interaction: &Interaction) -> &Client {
        self.login_client(param(&interaction.params, "client_id"))
            .unwrap_or(&self.client)
    }

    fn interaction_dto<'a>(
        &'a self,
        id: &'a str,
        interaction: &'a Interaction,
    ) -> InteractionDto<'a> {
        let client = self.interaction_client(interaction);
        InteractionDto {
            id,
            scopes: &interaction.scopes,
            scope_info: Vec::new(),
            client: ClientMeta {
                id: client.id,
                name: client.name,
                description: "",
                has_logo: false,
                has_dark_logo: false,
                launch_url: None,
                requires_reauthentication: false,
                client_type: "standard",
            },
            current_step: interaction.steps.first().map(|s| s.name()),
            required_steps: interaction.steps.iter().map(|s| s.name()).collect(),
        }
    }
}

/// `GET /api/oidc/interactions/:id` (no authentication).
pub(super) async fn interaction(
    State(pocket_id): State<Arc<PocketId>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = pocket_id.store();
    let interaction = store
        .interactions
        .get(&id)
        .filter(|i| i.created.elapsed() < INTERACTION_TTL)
        .ok_or_else(ApiError::interaction_not_found)?;
    Ok(api::json(
        StatusCode::OK,
        &pocket_id.interaction_dto(&id, interaction),
    ))
}

#[derive(Deserialize)]
struct CompleteRequest {
    #[serde(default)]
    step: String,
}

/// `POST /api/oidc/interactions/:id/complete` (session only) with `{"step":…}`:
/// the step must be the first remaining one. Answers the interaction while steps
/// remain, else the URL that resumes `/authorize`.
pub(super) async fn complete_interaction(
    State(pocket_id): State<Arc<PocketId>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let session = pocket_id.require_session(&headers)?;
    let request: CompleteRequest = api::bind_json(&headers, &body)?;
    let mut store = pocket_id.store();
    let Store {
        interactions,
        consents,
        ..
    } = &mut *store;
    let interaction = interactions
        .get_mut(&id)
        .filter(|i| i.created.elapsed() < INTERACTION_TTL)
        .ok_or_else(ApiError::interaction_not_found)?;
    let client = pocket_id.interaction_client(interaction);
    // The interaction belongs to whoever completes it (Pocket ID switches users).
    interaction.user_id = Some(session.user_id.clone());
    if let Some(&expected) = interaction.steps.first() {
        if expected.name() != request.step {
            return Err(ApiError::validation_message(&format!(
                "expected interaction step {} but got {}",
                expected.name(),
                request.step
            )));
        }
        interaction.steps.remove(0);
        let key = (session.user_id.clone(), client.id.to_string());
        match expected {
            Step::Authenticate => {
                let approved = consents.get(&key);
                let consented = client.skip_consent
                    || approved.is_some_and(|a| interaction.scopes.iter().all(|s| a.contains(s)));
                if !consented && !interaction.steps.contains(&Step::Consent) {
                    interaction.steps.push(Step::Consent);
                }
            }
            Step::Consent => {
                let approved = consents.entry(key).or_default();
                for scope in &interaction.scopes {
                    if !approved.contains(scope) {
                        approved.push(scope.clone());
                    }
                }
            }
        }
    }
    if interaction.steps.is_empty() {
        let host = if pocket_id.faults.has(crate::Fault::InteractionElsewhere) {
            "https://login.example.net"
        } else {
            ""
        };
        return Ok(api::json(
            StatusCode::OK,
            &json!({ "redirectUrl": format!("{host}/authorize?interaction={}", wire::go_query_escape(&id)) }),
        ));
    }
    Ok(api::json(
        StatusCode::OK,
        &json!({ "interaction": pocket_id.interaction_dto(&id, interaction) }),
    ))
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

/// `POST /api/oidc/token`.
pub(super) async fn token(
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

/// `GET|POST /api/oidc/userinfo` (`userinfo_handler.go`): fosite introspects the
/// bearer token, then the user's claims for the token's scopes.
pub(super) async fn userinfo(
    State(pocket_id): State<Arc<PocketId>>,
    headers: HeaderMap,
) -> Response {
    match pocket_id.userinfo(&headers) {
        Ok(claims) => super::json_response(StatusCode::OK, claims.to_string()),
        Err(error) => error.userinfo_response(),
    }
}

/// fosite's `AccessTokenFromRequest`: the token of an `Authorization: Bearer …`
/// header ("" when there is none).
fn bearer_token(headers: &HeaderMap) -> &str {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token)
}

/// fosite's PKCE handler: the verifier's shape, then the comparison.
fn check_pkce(pkce: Option<(String, String)>, verifier: &str) -> Result<(), OAuthError> {
    let Some((challenge, method)) = pkce else {
        if verifier.is_empty() {
            return Ok(());
        }
        return Err(OAuthError::invalid_grant_hint(
            "Unable to find initial PKCE data tied to this request",
        ));
    };
    if verifier.len() < 43 {
        return Err(OAuthError::invalid_grant_hint(
            "The PKCE code verifier must be at least 43 characters.",
        ));
    }
    if verifier.len() > 128 {
        return Err(OAuthError::invalid_grant_hint(
            "The PKCE code verifier can not be longer than 128 characters.",
        ));
    }
    if !verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err(OAuthError::invalid_grant_hint(
            "The PKCE code verifier must only contain [a-Z], [0-9], '-', '.', '_', '~'.",
        ));
    }
    let computed = if method == "S256" {
        wire::pkce_s256(verifier)
    } else {
        verifier.to_string()
    };
    if computed != challenge {
        return Err(OAuthError::invalid_grant_hint(
            "The PKCE code challenge did not match the code verifier.",
        ));
    }
    Ok(())
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
        let client = authenticated?;
        match grant {
            Grant::AuthorizationCode => self.redeem_code(client, form),
            // The lab issues no refresh tokens it would honour and has no devices.
            Grant::RefreshToken | Grant::DeviceCode => Err(OAuthError::invalid_grant()),
            // Real Pocket ID would mint a machine token here; the lab has no use for
            // one and refuses rather than pretend.
            Grant::ClientCredentials => Err(OAuthError::unauthorized_client(
                "The OAuth 2.0 Client is not allowed to use authorization grant 'client_credentials'.",
            )),
        }
    }

    /// The authorization-code grant: the code, its client and redirect URI, PKCE
    /// (the record is gone after one attempt, right or wrong), then the user.
    fn redeem_code(
        &self,
        client: &Client,
        form: &[(String, String)],
    ) -> Result<Response, OAuthError> {
        let mut store = self.store();
        let Store {
            codes,
            users,
            access_tokens,
            ..
        } = &mut *store;
        let grant = codes
            .get_mut(param(form, "code"))
            .ok_or_else(OAuthError::invalid_grant)?;
        if grant.used {
            return Err(OAuthError::invalid_grant_hint(
                "The authorization code has already been used.",
            ));
        }
        if grant.created.elapsed() > CODE_TTL {
            return Err(OAuthError::invalid_grant());
        }
        if grant.client_id != client.id {
            return Err(OAuthError::invalid_grant_hint(
                "The OAuth 2.0 Client ID from this request does not match the one from the authorize request.",
            ));
        }
        if !grant.redirect_uri.is_empty() && grant.redirect_uri != param(form, "redirect_uri") {
            return Err(OAuthError::invalid_grant_hint(
                "The 'redirect_uri' from this request does not match the one from the authorize request.",
            ));
        }
        check_pkce(grant.pkce.take(), param(form, "code_verifier"))?;
        let user = users
            .get(&grant.user_id)
            .cloned()
            .ok_or_else(|| OAuthError::invalid_grant_hint("The user account no longer exists."))?;
        if user.disabled {
            return Err(OAuthError::invalid_grant_hint(
                "The user account is disabled.",
            ));
        }
        if !client.admits(&user) {
            return Err(OAuthError::access_denied(
                "You are not allowed to access this service.",
            ));
        }
        grant.used = true;
        let tokens = self.mint_tokens(grant, &user);
        let issued = IssuedToken {
            user_id: user.id.clone(),
            scopes: grant.scopes.clone(),
            expires: wire::unix_now() + TOKEN_SECONDS + 1,
        };
        let body = tokens.ok_or_else(OAuthError::server_error)?;
        if let Some(token) = body["access_token"].as_str() {
            access_tokens.insert(token.to_string(), issued);
        }
        drop(store);
        Ok((
            StatusCode::OK,
            [
                (CONTENT_TYPE, "application/json;charset=UTF-8"),
                (CACHE_CONTROL, "no-store"),
                (PRAGMA, "no-cache"),
            ],
            body.to_string(),
        )
            .into_response())
    }

    /// The token response for a redeemed code: an RFC 9068 access token, the
    /// id_token with the claims its scopes allow, and an opaque refresh token.
    fn mint_tokens(&self, grant: &CodeGrant, user: &User) -> Option<Value> {
        let now = wire::unix_now();
        let scope = grant.scopes.join(" ");
        let access_token = self
            .key
            .sign_typed(
                "at+jwt",
                &json!({
                    "aud": [grant.client_id, self.app_url],
                    "client_id": grant.client_id,
                    // Pocket ID's access tokens outlive `expires_in` by a second.
                    "exp": now + TOKEN_SECONDS + 1,
                    "iat": now,
                    "iss": self.app_url,
                    "jti": uuid::Uuid::new_v4().to_string(),
                    "scope": scope,
                    "scp": grant.scopes,
                    "sub": user.id,
                }),
            )
            .ok()?;
        let digest = Sha256::digest(access_token.as_bytes());
        let mut claims = json!({
            "amr": [grant.amr],
            "at_hash": wire::b64url(&digest[..16]),
            "aud": [grant.client_id],
            "auth_time": grant.auth_time,
            "exp": now + TOKEN_SECONDS,
            "iat": now,
            "iss": self.app_url,
            "jti": uuid::Uuid::new_v4().to_string(),
            "rat": grant.requested_at,
            "sub": user.id,
            "type": "id-token",
        });
        if let Some(nonce) = &grant.nonce {
            claims["nonce"] = json!(nonce);
        }
        self.add_scope_claims(&mut claims, user, &grant.scopes);
        let id_token = self.key.sign(&claims).ok()?;
        Some(json!({
            "access_token": access_token,
            "expires_in": TOKEN_SECONDS,
            "id_token": id_token,
            "refresh_token": format!(
                "pocket_id_rt_{}.{}",
                wire::b64url(&wire::random_bytes(32)),
                wire::b64url(&wire::random_bytes(32))
            ),
            "scope": scope,
            "token_type": "bearer",
        }))
    }

    /// userinfo's checks: a known, unexpired access token (anything else, an
    /// id_token or a session JWT included, is `request_unauthorized`) granted
    /// `openid`, whose user still exists.
    fn userinfo(&self, headers: &HeaderMap) -> Result<Value, OAuthError> {
        let store = self.store();
        let issued = store
            .access_tokens
            .get(bearer_token(headers))
            .ok_or_else(OAuthError::request_unauthorized)?;
        if issued.expires <= wire::unix_now() {
            return Err(OAuthError::token_expired());
        }
        if !issued.scopes.iter().any(|s| s == "openid") {
            let mut error = OAuthError::access_denied("");
            error.hint = None;
            error.description = "The access token is missing the openid scope.";
            return Err(error);
        }
        let user = store
            .users
            .get(&issued.user_id)
            .cloned()
            .ok_or_else(OAuthError::request_unauthorized)?;
        let scopes = issued.scopes.clone();
        drop(store);
        let mut claims = json!({ "sub": user.id });
        self.add_scope_claims(&mut claims, &user, &scopes);
        Ok(claims)
    }

    /// The claims `scopes` allow about `user` (`claims_service.go`), added to `claims`:
    /// the id_token's and userinfo's alike.
    fn add_scope_claims(&self, claims: &mut Value, user: &User, scopes: &[String]) {
        let has = |scope: &str| scopes.iter().any(|s| s == scope);
        if has("profile") {
            claims["given_name"] = json!(user.first_name);
            claims["family_name"] = json!(user.last_name);
            claims["name"] = json!(user.full_name());
            claims["display_name"] = json!(user.display_name);
            claims["preferred_username"] = json!(user.username);
            claims["picture"] = json!(format!(
                "{}/api/users/{}/profile-picture.png",
                self.app_url, user.id
            ));
        }
        if has("email")
            && let Some(email) = &user.email
        {
            claims["email"] = json!(email);
            claims["email_verified"] = json!(user.email_verified);
        }
        if has("groups") {
            // Group names, not friendly names.
            let names: Vec<&str> = user
                .groups
                .iter()
                .filter_map(|id| super::groups::by_id(id))
                .map(|g| g.name)
                .collect();
            claims["groups"] = json!(names);
        }
    }

    /// fosite's default client authentication: HTTP Basic first, then
    /// `client_id`/`client_secret` in the form. The lab's clients are confidential
    /// (but Access's under fault public-client-no-pkce), so a secret is required.
    fn authenticate_client(
        &self,
        headers: &HeaderMap,
        form: &[(String, String)],
    ) -> Result<&Client, OAuthError> {
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
        let client = self
            .login_client(&id)
            .ok_or_else(OAuthError::invalid_client)?;
        // fosite does not authenticate public clients; a confidential one needs the
        // secret while it is active (an expired secret no longer authenticates).
        let active = client.secrets.iter().any(|s| s.is_active);
        if !client.is_public && (secret.is_empty() || secret != client.secret || !active) {
            return Err(OAuthError::invalid_client());
        }
        Ok(client)
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
