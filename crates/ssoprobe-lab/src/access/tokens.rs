//! Access's session tokens: the application's `/cdn-cgi/access/authorized` that
//! turns a finished login into the application's `CF_Authorization`, the tokens
//! themselves, and the edge's decision on each request to the application.

use super::callback::invalid_login_session;
use super::{Access, CF_ACCESS_CLIENT_ID, CF_ACCESS_CLIENT_SECRET, LOGIN_TTL, lock};
use crate::{AUD, Fault, SERVICE_HOST, TEAM_HOST, Variant, edge, wire};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Session length of the application and of the global session (Access's default,
/// 24 hours).
pub(super) const SESSION_TTL: u64 = 24 * 3600;
/// The cookie that carries Access tokens, on the team domain and on the application.
const CF_AUTHORIZATION: &str = "CF_Authorization";
/// How far ahead Access's signer clock runs under fault clock-skew: far beyond the
/// minute of leeway token checks allow.
const CLOCK_SKEW: u64 = 600;

/// A login the callback finished, waiting for the application's `/authorized`.
pub(super) struct Ticket {
    /// The state of the login, which comes back with the nonce.
    pub(super) state: String,
    pub(super) email: String,
    pub(super) redirect_url: String,
    /// SHA-256 (hex) of the `CF_AppSession` values that may claim it.
    pub(super) app_sessions: Vec<String>,
    pub(super) created: Instant,
}

/// A request Access lets through, with what it tells the origin.
pub(super) struct Admitted {
    /// The application token, for `Cf-Access-Jwt-Assertion`.
    pub(super) token: String,
    /// The user's e-mail (none for a service token).
    pub(super) email: Option<String>,
    /// A `Set-Cookie` to return with the origin's answer, as captured (the face
    /// restyles it).
    pub(super) set_cookie: Option<String>,
}

/// The edge's decision on a request to the application.
pub(super) enum Admission {
    Admitted(Admitted),
    /// Service-token headers that do not match a token the Service Auth policy
    /// accepts.
    Refused,
    /// Nothing Access accepts: the request is sent to log in.
    Anonymous,
}

/// Access's verdict on a request to the application: a service token (when the
/// application has a Service Auth policy), else a valid `CF_Authorization`.
pub(super) fn admit(access: &Access, headers: &HeaderMap) -> Admission {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let (id, secret) = (
        header(&CF_ACCESS_CLIENT_ID),
        header(&CF_ACCESS_CLIENT_SECRET),
    );
    // Without a Service Auth policy the token headers mean nothing to the
    // application's Allow policy.
    if (id.is_some() || secret.is_some()) && !access.faults.has(Fault::NoServiceAuth) {
        let token = &access.service_token;
        if id != Some(token.id.as_str()) || secret != Some(token.secret.as_str()) {
            return Admission::Refused;
        }
        return match service_token_jwt(access, &token.id) {
            Ok(jwt) => Admission::Admitted(Admitted {
                set_cookie: Some(app_cookie(&jwt)),
                token: jwt,
                email: None,
            }),
            Err(_) => Admission::Refused,
        };
    }
    if let Some(token) = wire::cookie(headers, CF_AUTHORIZATION)
        && let Some(claims) = crate::origin::verify(&access.keys, token)
    {
        return Admission::Admitted(Admitted {
            token: token.to_string(),
            email: claims.email,
            set_cookie: None,
        });
    }
    Admission::Anonymous
}

/// A stable user id per e-mail address (Access keeps one per user of the
/// organisation).
fn subject(email: &str) -> String {
    let digest = Sha256::digest(email.to_ascii_lowercase().as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// An identity token of `kind` (`app` or `org`) for `email` and audience `aud`,
/// issued at `now` by the signer's clock.
fn identity_token(
    access: &Access,
    kind: &str,
    aud: &str,
    email: &str,
    now: u64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = json!({
        "aud": [aud],
        "email": email,
        "exp": now + SESSION_TTL,
        "iat": now,
        "nbf": now,
        "iss": format!("https://{TEAM_HOST}"),
        "type": kind,
        "identity_nonce": wire::random_alphanumeric(16),
        "sub": subject(email),
        "country": "XX",
    });
    access.current.key.sign(&claims)
}

/// The global session token set on the team domain. Its audience is the
/// organisation's, not an application's.
pub(super) fn org_token(
    access: &Access,
    email: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    identity_token(
        access,
        "org",
        &wire::sha256_hex(TEAM_HOST.as_bytes()),
        email,
        wire::unix_now(),
    )
}

/// The application token of a service token: its Client ID as `common_name`, no
/// user.
fn service_token_jwt(
    access: &Access,
    client_id: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = wire::unix_now();
    let claims = json!({
        "aud": [AUD],
        "common_name": client_id,
        "exp": now + SESSION_TTL,
        "iat": now,
        "nbf": now,
        "iss": format!("https://{TEAM_HOST}"),
        "sub": "",
        "type": "app",
    });
    access.current.key.sign(&claims)
}

/// `CF_Authorization` on the application host.
fn app_cookie(token: &str) -> String {
    format!(
        "{CF_AUTHORIZATION}={token}; Expires={}; Path=/; Secure; SameSite=none; HttpOnly",
        wire::imf_fixdate(wire::unix_now() + SESSION_TTL)
    )
}

/// Only a path on the application is a place to return to; anything else could
/// send the browser to another host.
fn return_path(redirect_url: &str) -> &str {
    if redirect_url.starts_with('/') && !redirect_url.starts_with("//") {
        redirect_url
    } else {
        "/"
    }
}

/// `GET https://<app>/cdn-cgi/access/authorized?nonce&state`: with the
/// `CF_AppSession` the first redirect set, 302 back to where the user was going
/// with the application's `CF_Authorization`; anything else is an invalid login
/// session.
pub(super) async fn authorized(
    State(access): State<Arc<Access>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let (Some(nonce), Some(state)) = (params.get("nonce"), params.get("state")) else {
        return invalid_login_session(access.variant);
    };
    let app_session =
        wire::cookie(&headers, "CF_AppSession").map(|v| wire::sha256_hex(v.as_bytes()));
    let ticket = {
        let mut tickets = lock(&access.tickets);
        let claimable = tickets.get(nonce).is_some_and(|t| {
            t.state == *state
                && t.created.elapsed() < LOGIN_TTL
                && app_session
                    .as_ref()
                    .is_some_and(|h| t.app_sessions.contains(h))
        });
        // A ticket is claimed once; a failed attempt leaves it for the right browser.
        if claimable {
            tickets.remove(nonce)
        } else {
            None
        }
    };
    let Some(ticket) = ticket else {
        return invalid_login_session(access.variant);
    };
    // Only the application token is skewed: that is the token the edge checks on
    // every request, so the login loops instead of failing once.
    let issued = if access.faults.has(Fault::ClockSkew) {
        wire::unix_now() + CLOCK_SKEW
    } else {
        wire::unix_now()
    };
    let token = match identity_token(&access, "app", AUD, &ticket.email, issued) {
        Ok(token) => token,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("lab: cannot sign the application token: {e}"),
            )
                .into_response();
        }
    };
    // The return stays on the application's host: the rebranded face says so with
    // a relative Location.
    let path = return_path(&ticket.redirect_url);
    let location = match access.variant {
        Variant::Rebranded => path.to_string(),
        Variant::Classic | Variant::Terse => format!("https://{SERVICE_HOST}{path}"),
    };
    let mut response = edge::found(access.variant, &location);
    edge::append_cookie(response.headers_mut(), access.variant, &app_cookie(&token));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_stable_uuids_per_address() {
        let a = subject("probe@example.com");
        assert_eq!(a, subject("Probe@Example.com"));
        assert_ne!(a, subject("other@example.com"));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn only_paths_are_returned_to() {
        assert_eq!(return_path("/admin?x=1"), "/admin?x=1");
        assert_eq!(return_path("//evil.example"), "/");
        assert_eq!(return_path("@evil.example"), "/");
        assert_eq!(return_path(""), "/");
    }
}
