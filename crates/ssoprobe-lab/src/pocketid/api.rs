//! What Pocket ID's JSON API shares: the error envelope (`dto.ErrorDto`, v2.13+),
//! JSON request binding, and authentication by session JWT or `X-API-Key`.

use super::users::User;
use super::{ACCESS_TOKEN_COOKIE, JSON_UTF8, PocketId, SESSION_COOKIE};
use crate::wire;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Session length: the app config's `sessionDuration` default, 60 minutes.
pub(super) const SESSION_SECONDS: u64 = 3600;
/// How long a WebAuthn ceremony's `session` cookie lives.
pub(super) const WEBAUTHN_SESSION_SECONDS: u64 = 60;

/// `amr` of a session made with a passkey ("phishing-resistant").
pub(super) const AMR_PASSKEY: &str = "phr";
/// `amr` of a session made with a one-time login code.
pub(super) const AMR_ONE_TIME_CODE: &str = "otp";

/// An error as Pocket ID's error middleware writes it. Handlers return it; the
/// request-id middleware renders it with the request's id.
#[derive(Debug, Clone)]
pub(super) struct ApiError {
    status: StatusCode,
    pub(super) code: &'static str,
    message: String,
    /// Boxed: an error stays small on the `Err` path.
    details: Option<Box<Value>>,
    retry_after: Option<u64>,
}

/// The envelope, members in `ErrorDto` order.
#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Value>,
    request_id: &'a str,
}

/// One failed validation rule, as in `details.fields`.
pub(super) struct FieldError {
    pub(super) field: &'static str,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: &str) -> ApiError {
        ApiError {
            status,
            code,
            message: message.to_string(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(Box::new(details));
        self
    }

    pub(super) fn not_signed_in() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "not_signed_in",
            "You are not signed in",
        )
    }

    pub(super) fn missing_permission() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "You don't have permission to perform this action",
        )
    }

    pub(super) fn api_key_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "api_key_auth_not_allowed",
            "API key authentication is not allowed for this endpoint",
        )
    }

    pub(super) fn user_disabled() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "user_disabled",
            "User account is disabled",
        )
    }

    pub(super) fn user_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "User not found")
    }

    /// `apperror.NotFound(resource)`.
    pub(super) fn not_found(resource: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("{resource} not found"),
        )
        .with_details(json!({ "resource": resource }))
    }

    pub(super) fn interaction_not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "OIDC interaction not found or expired",
        )
        .with_details(json!({ "resource": "OIDC interaction" }))
    }

    pub(super) fn invalid_request_body() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_body",
            "Request body is invalid",
        )
    }

    /// Struct validation failures: the message joins "field message" pairs.
    pub(super) fn validation(fields: Vec<FieldError>) -> ApiError {
        let message = fields
            .iter()
            .map(|f| format!("{} {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join(", ");
        let details = json!({
            "fields": fields
                .iter()
                .map(|f| json!({ "field": f.field, "code": f.code, "message": f.message }))
                .collect::<Vec<_>>()
        });
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            &capitalize_first(&message),
        )
        .with_details(details)
    }

    /// `apperror.ValidationMessage`: a validation failure without field details.
    pub(super) fn validation_message(message: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            &capitalize_first(message),
        )
    }

    /// `apperror.AlreadyInUse(property)`.
    pub(super) fn already_in_use(property: &str) -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "already_in_use",
            &capitalize_first(&format!("{property} is already in use")),
        )
        .with_details(json!({ "property": property }))
    }

    pub(super) fn token_invalid_or_expired() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_invalid_or_expired",
            "Token is invalid or expired",
        )
    }

    pub(super) fn missing_session_id() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_session_id",
            "Session ID is missing",
        )
    }

    pub(super) fn invalid_webauthn_session() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_webauthn_session",
            "Your passkey request has expired",
        )
    }

    pub(super) fn invalid_webauthn_response() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_webauthn_response",
            "We couldn't process the response from your passkey",
        )
    }

    pub(super) fn webauthn_authentication_failed() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "webauthn_authentication_failed",
            "We couldn't verify your passkey",
        )
    }

    pub(super) fn user_verification_required() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "passkey_user_verification_required",
            "Your passkey couldn't verify you. If you're using a security key, configure a FIDO2 PIN and try again",
        )
    }

    pub(super) fn rate_limited(retry_after: u64) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
        );
        error.retry_after = Some(retry_after);
        error
    }

    /// Something the lab itself could not do (sign a token, …).
    pub(super) fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong",
        )
    }

    /// The JSON answer with the request's id.
    pub(super) fn render(&self, request_id: &str) -> Response {
        let body = wire::go_json(&Envelope {
            error: &self.message,
            code: self.code,
            details: self.details.as_deref(),
            request_id,
        });
        let mut response = (self.status, [(CONTENT_TYPE, JSON_UTF8)], body).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The handler's answer carries the error; the request-id middleware renders it.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Go's `capitalizeFirst`.
fn capitalize_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `pagination[limit]` when the request names none (`Paginate`'s default).
const DEFAULT_PAGE_LIMIT: usize = 20;
/// Pocket ID's largest `pagination[limit]`.
const MAX_PAGE_LIMIT: usize = 100;
/// The lab's own cap on `pagination[limit]`, far below Pocket ID's, so that
/// clients must page through its short lists.
pub(super) const LAB_PAGE_LIMIT: usize = 2;
/// A `search` longer than this matches nothing (Pocket ID has no such limit; the
/// lab does not lowercase megabytes for a hostile client).
const MAX_SEARCH: usize = 256;

/// A list request (`utils.ParseListRequestOptions`): the search term and the page
/// asked for. Sorting and filters are not implemented (ignored).
pub(super) struct ListRequest {
    /// Lower-cased.
    search: String,
    page: usize,
    limit: usize,
}

/// `dto.Pagination`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Pagination {
    total_pages: usize,
    total_items: usize,
    current_page: usize,
    items_per_page: usize,
}

/// `dto.Paginated[T]`.
#[derive(Serialize)]
pub(super) struct Paginated<T> {
    data: Vec<T>,
    pagination: Pagination,
}

impl ListRequest {
    /// The request in a raw query string (`None`: no query).
    pub(super) fn parse(query: Option<&str>) -> ListRequest {
        let mut search = String::new();
        let mut page = None;
        let mut limit = None;
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                // The first value wins, as Gin's `c.Query` reads it.
                "search" if search.is_empty() => search = value.to_lowercase(),
                "pagination[page]" if page.is_none() => page = Some(value.into_owned()),
                "pagination[limit]" if limit.is_none() => limit = Some(value.into_owned()),
                _ => {}
            }
        }
        let limit = match limit.as_deref().map(str::parse::<usize>) {
            Some(Ok(n)) if n > 0 => n.min(MAX_PAGE_LIMIT),
            _ => DEFAULT_PAGE_LIMIT,
        };
        ListRequest {
            search,
            page: page.and_then(|p| p.parse::<usize>().ok()).unwrap_or(1),
            limit: limit.min(LAB_PAGE_LIMIT),
        }
    }

    /// Whether any of `fields` contains the search term, case-insensitively
    /// (SQLite's LIKE); everything matches an empty search.
    pub(super) fn matches(&self, fields: &[&str]) -> bool {
        self.search.is_empty()
            || self.search.len() <= MAX_SEARCH
                && fields
                    .iter()
                    .any(|field| field.to_lowercase().contains(&self.search))
    }

    /// The page asked for of `items`: a page past the end is the last page, one
    /// before the first the first (`Paginate`).
    pub(super) fn paginate<T>(&self, items: Vec<T>) -> Paginated<T> {
        let total_items = items.len();
        let total_pages = total_items.div_ceil(self.limit).max(1);
        let page = self.page.clamp(1, total_pages);
        let data = items
            .into_iter()
            .skip((page - 1).saturating_mul(self.limit))
            .take(self.limit)
            .collect();
        Paginated {
            data,
            pagination: Pagination {
                total_pages,
                total_items,
                current_page: page,
                items_per_page: self.limit,
            },
        }
    }
}

/// A 200 (or other) JSON answer as Go's `c.JSON` writes it.
pub(super) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (status, [(CONTENT_TYPE, JSON_UTF8)], wire::go_json(value)).into_response()
}

/// `httpserver.BindJSON`: the Content-Type must be JSON and the body one JSON value
/// of the expected shape.
pub(super) fn bind_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .and_then(|v| {
            v.strip_prefix("application/")
                .map(|sub| sub == "json" || sub.ends_with("+json") && sub.len() > 5)
        })
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError::invalid_request_body());
    }
    serde_json::from_slice(body).map_err(|_| ApiError::invalid_request_body())
}

/// A signed-in user, from a verified session JWT.
pub(super) struct Session {
    pub(super) user_id: String,
    /// How the session was made: `phr` or `otp`.
    pub(super) amr: String,
    /// When (the JWT's `iat`), for `auth_time`.
    pub(super) issued_at: u64,
}

/// The session JWT's claims (`GenerateAccessToken`).
#[derive(Deserialize)]
struct SessionClaims {
    sub: String,
    iat: u64,
    #[serde(default)]
    amr: Vec<String>,
    #[serde(rename = "type")]
    kind: String,
}

impl PocketId {
    /// The session JWT of a request: the access-token cookie, else the token of any
    /// `Authorization: <scheme> <token>` header (`jwt_auth.go` ignores the scheme).
    fn session_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        if let Some(token) = wire::cookie(headers, ACCESS_TOKEN_COOKIE) {
            return Some(token);
        }
        let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
        let (_, token) = value.split_once(' ')?;
        (!token.is_empty()).then_some(token)
    }

    /// `JwtAuthMiddleware.Verify`: a valid session of an existing, enabled user.
    pub(super) fn verify_session(&self, headers: &HeaderMap) -> Result<Session, ApiError> {
        let token = self
            .session_token(headers)
            .ok_or_else(ApiError::not_signed_in)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.app_url]);
        validation.set_audience(&[&self.app_url]);
        let claims =
            jsonwebtoken::decode::<SessionClaims>(token, self.key.decoding_key(), &validation)
                .map_err(|_| ApiError::not_signed_in())?
                .claims;
        if claims.kind != "access-token" {
            return Err(ApiError::not_signed_in());
        }
        let store = self.store();
        let user = store
            .users
            .get(&claims.sub)
            .ok_or_else(ApiError::not_signed_in)?;
        if user.disabled {
            return Err(ApiError::user_disabled());
        }
        Ok(Session {
            user_id: claims.sub,
            amr: claims.amr.into_iter().next().unwrap_or_default(),
            issued_at: claims.iat,
        })
    }

    /// Routes that need a browser session and refuse API keys
    /// (`WithApiKeyAuthDisabled`).
    pub(super) fn require_session(&self, headers: &HeaderMap) -> Result<Session, ApiError> {
        match self.verify_session(headers) {
            Err(e) if e.code == "not_signed_in" && headers.contains_key("x-api-key") => {
                Err(ApiError::api_key_not_allowed())
            }
            other => other,
        }
    }

    /// `AuthMiddleware`: a session first (a session error other than "not signed
    /// in" is final), then the API key. Returns the acting user's id.
    pub(super) fn require_user_or_key(
        &self,
        headers: &HeaderMap,
        admin_required: bool,
    ) -> Result<String, ApiError> {
        match self.verify_session(headers) {
            Ok(session) => {
                let is_admin = self
                    .store()
                    .users
                    .get(&session.user_id)
                    .is_some_and(|u| u.is_admin);
                if admin_required && !is_admin {
                    return Err(ApiError::missing_permission());
                }
                return Ok(session.user_id);
            }
            Err(e) if e.code != "not_signed_in" => return Err(e),
            Err(_) => {}
        }
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Only the static key exists in the lab; a wrong key is "not signed in".
        if key.is_empty() || key != self.static_api_key {
            return Err(ApiError::not_signed_in());
        }
        Ok(self.store().users.static_api_user().to_string())
    }

    /// A session JWT for `user` and the cookie that carries it.
    pub(super) fn new_session(&self, user: &User, amr: &str) -> Result<String, ApiError> {
        let now = wire::unix_now();
        let mut claims = json!({
            "amr": [amr],
            "aud": [self.app_url],
            "exp": now + SESSION_SECONDS,
            "iat": now,
            "iss": self.app_url,
            "jti": uuid::Uuid::new_v4().to_string(),
            "sub": user.id,
            "type": "access-token",
        });
        if user.is_admin {
            claims["isAdmin"] = json!(true);
        }
        let token = self.key.sign(&claims).map_err(|_| ApiError::internal())?;
        Ok(format!(
            "{ACCESS_TOKEN_COOKIE}={token}; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; Secure; SameSite=Lax"
        ))
    }
}

/// The cookie that binds a WebAuthn ceremony's start to its finish.
pub(super) fn ceremony_cookie(id: &str) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/; Max-Age={WEBAUTHN_SESSION_SECONDS}; HttpOnly; Secure; SameSite=Lax"
    )
}

/// Adds a `Set-Cookie` to an answer.
pub(super) fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_capitalised_like_go() {
        assert_eq!(
            capitalize_first("username is required"),
            "Username is required"
        );
        assert_eq!(capitalize_first(""), "");
        let e = ApiError::validation(vec![
            FieldError {
                field: "username",
                code: "required",
                message: "is required".into(),
            },
            FieldError {
                field: "email",
                code: "invalid_format",
                message: "must be a valid email address".into(),
            },
        ]);
        assert_eq!(
            e.message,
            "Username is required, email must be a valid email address"
        );
        assert_eq!(
            e.details.as_ref().map(|d| d["fields"][1]["code"].clone()),
            Some(json!("invalid_format"))
        );
    }

    #[test]
    fn the_envelope_has_pocket_ids_member_order() {
        let response = ApiError::already_in_use("username").render("rid");
        let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 16))
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&body),
            r#"{"error":"Username is already in use","code":"already_in_use","details":{"property":"username"},"request_id":"rid"}"#
        );
    }

    #[test]
    fn json_bodies_need_a_json_content_type() {
        let mut headers = HeaderMap::new();
        assert!(bind_json::<Value>(&headers, b"{}").is_err());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(bind_json::<Value>(&headers, b"{}").is_ok());
        assert!(bind_json::<Value>(&headers, b"").is_err());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/merge-patch+json"),
        );
        assert!(bind_json::<Value>(&headers, b"{}").is_ok());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(bind_json::<Value>(&headers, b"{}").is_err());
    }
}
