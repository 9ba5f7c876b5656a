//! The protected site itself, behind the edge. Like a well-configured origin it
//! trusts nobody but Access: it verifies the `Cf-Access-Jwt-Assertion` header
//! against the team's certs before it answers.

use super::{AUD, TEAM_HOST, Variant, wire};
use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;

/// The header Access adds with the application token.
pub(super) const JWT_ASSERTION: &str = "cf-access-jwt-assertion";
/// The header Access adds with the signed-in user's e-mail address.
pub(super) const AUTHENTICATED_USER_EMAIL: &str = "cf-access-authenticated-user-email";

/// The page the origin serves; `{{WHO}}` says who reached it.
const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>service.example.com</title></head>\n<body><h1>Welcome to service.example.com</h1><p>You reached the protected site.</p>{{WHO}}</body>\n</html>\n";

/// The claims of an Access application token the origin reads.
#[derive(Deserialize)]
pub(super) struct AppClaims {
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    common_name: Option<String>,
    #[serde(rename = "type")]
    kind: String,
}

/// The origin: the team's public keys by kid, or nothing to check when no Access
/// application covers the site (fault site-public, where the origin was never told
/// to expect Access).
pub(super) struct Origin {
    keys: Option<HashMap<String, DecodingKey>>,
}

impl Origin {
    /// An origin that verifies assertions against `keys` (kid → key), as fetched
    /// from `/cdn-cgi/access/certs`.
    pub(super) fn verifying(keys: HashMap<String, DecodingKey>) -> Origin {
        Origin { keys: Some(keys) }
    }

    /// An origin that trusts every request.
    pub(super) fn open() -> Origin {
        Origin { keys: None }
    }

    /// What the origin answers for any path, given the request headers the edge
    /// forwarded.
    pub(super) fn serve(&self, headers: &HeaderMap) -> Response {
        let Some(keys) = &self.keys else {
            return page("");
        };
        let assertion = headers
            .get(JWT_ASSERTION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if assertion.is_empty() {
            return forbidden("no access token in request");
        }
        match verify(keys, assertion) {
            Some(claims) => {
                let who = match (claims.email, claims.common_name) {
                    (Some(email), _) if !email.is_empty() => {
                        format!("<p>Signed in as {}.</p>", wire::html_escape(&email))
                    }
                    (_, Some(name)) => {
                        format!("<p>Service token {}.</p>", wire::html_escape(&name))
                    }
                    _ => String::new(),
                };
                page(&who)
            }
            None => forbidden("invalid access token"),
        }
    }
}

/// The token's claims when it is an application token for this application,
/// signed by a current Access key, already valid (`nbf`, with the library's minute
/// of leeway) and not expired.
pub(super) fn verify(keys: &HashMap<String, DecodingKey>, token: &str) -> Option<AppClaims> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let key = keys.get(header.kid.as_deref()?)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_nbf = true;
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[format!("https://{TEAM_HOST}")]);
    let claims = jsonwebtoken::decode::<AppClaims>(token, key, &validation)
        .ok()?
        .claims;
    (claims.kind == "app").then_some(claims)
}

/// The page as oauth2-proxy's upstream serves it to the signed-in `email` (from
/// `X-Forwarded-Email`: oauth2-proxy lets nothing else through).
pub(super) fn signed_in_page(email: &str) -> Response {
    page(&format!(
        "<p>Signed in as {}.</p>",
        wire::html_escape(email)
    ))
}

fn page(who: &str) -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        wire::fill(PAGE, &[("WHO", who)]),
    )
        .into_response()
}

/// The application's own 404 for a URL it does not serve (fault origin-404: it is
/// mounted under another path), as each face's origin writes it: Go's `http.NotFound`
/// line, nginx's page in front of the application, or a bare status with no body — the
/// same bytes as cloudflared's catch-all, so only the configuration tells them apart.
pub(super) fn not_found(variant: Variant) -> Response {
    match variant {
        Variant::Classic => (
            StatusCode::NOT_FOUND,
            [
                (CONTENT_TYPE, "text/plain; charset=utf-8"),
                (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            "404 page not found\n",
        )
            .into_response(),
        Variant::Rebranded => (
            StatusCode::NOT_FOUND,
            [(CONTENT_TYPE, "text/html")],
            NGINX_NOT_FOUND,
        )
            .into_response(),
        Variant::Terse => (StatusCode::NOT_FOUND, Body::empty()).into_response(),
    }
}

/// nginx's page for a path it routes nowhere.
const NGINX_NOT_FOUND: &str = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// A refusal like cloudflared's origin-side Access check writes it.
fn forbidden(reason: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("403 Forbidden: {reason}\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn status(origin: &Origin, assertion: Option<&'static str>) -> StatusCode {
        let mut headers = HeaderMap::new();
        if let Some(value) = assertion {
            headers.insert(JWT_ASSERTION, HeaderValue::from_static(value));
        }
        origin.serve(&headers).status()
    }

    #[test]
    fn a_protected_origin_wants_a_verified_assertion() {
        let origin = Origin::verifying(HashMap::new());
        assert_eq!(status(&origin, None), StatusCode::FORBIDDEN);
        assert_eq!(status(&origin, Some("not.a.jwt")), StatusCode::FORBIDDEN);
        let open = Origin::open();
        assert_eq!(status(&open, None), StatusCode::OK);
    }
}
