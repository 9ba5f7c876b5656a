//! What Cloudflare's edge adds to every answer and the pages it answers itself:
//! `server: cloudflare` and `cf-ray`, its redirects, managed challenges, 5xx pages
//! and Access's own HTML pages.

use super::wire;
use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, EXPIRES, LOCATION, SERVER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Header Cloudflare identifies the request with: `<16 hex>-<colo>`.
pub(super) const CF_RAY: HeaderName = HeaderName::from_static("cf-ray");

/// `cache-control` on Access's redirects and pages.
pub(super) const NO_STORE: &str =
    "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0";
/// `expires` next to [`NO_STORE`].
pub(super) const EXPIRED: &str = "Thu, 01 Jan 1970 00:00:01 GMT";

const CHALLENGE_PAGE: &str = include_str!("../../fixtures/cloudflare/challenge.html");
const BAD_GATEWAY_PAGE: &str = include_str!("../../fixtures/cloudflare/502.html");
const ACCESS_ERROR_PAGE: &str = include_str!("../../fixtures/cloudflare/access-error.html");

/// The body of the edge's redirects: nginx's "302 Found" page signed `cloudflare`
/// (143 bytes, as in captures).
const FOUND_BODY: &str = "<html>\r\n<head><title>302 Found</title></head>\r\n<body>\r\n<center><h1>302 Found</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n";

/// A fresh Ray ID: 16 hex digits (the colo suffix is added in the header).
pub(super) fn ray_id() -> String {
    wire::random_hex(8)
}

/// The `cf-ray` header value for `ray`; the lab's "colo" is `LAB`.
fn ray_header(ray: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{ray}-LAB")).unwrap_or(HeaderValue::from_static("0-LAB"))
}

/// Response middleware for every host behind the edge: adds `server: cloudflare` and
/// a `cf-ray`, unless the handler already chose a Ray ID it shows in its page.
pub(super) async fn stamp(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("cloudflare"));
    if !headers.contains_key(CF_RAY) {
        headers.insert(CF_RAY, ray_header(&ray_id()));
    }
    response
}

/// Access's no-cache headers.
pub(super) fn no_store(headers: &mut HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    headers.insert(EXPIRES, HeaderValue::from_static(EXPIRED));
}

/// A 302 to `location` as the edge sends it.
pub(super) fn found(location: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "lab: unusable redirect").into_response();
    };
    let mut response = (StatusCode::FOUND, html(), FOUND_BODY).into_response();
    let headers = response.headers_mut();
    headers.insert(LOCATION, location);
    no_store(headers);
    response
}

/// `content-type: text/html`, as the edge labels its own bodies.
fn html() -> [(HeaderName, HeaderValue); 1] {
    [(CONTENT_TYPE, HeaderValue::from_static("text/html"))]
}

/// Keeps a request path safe to place in HTML attributes, JavaScript strings and
/// quoted header parameters: anything but ordinary path characters is
/// percent-encoded.
pub(super) fn safe_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_ascii_alphanumeric() || "/-._~!$()*,;:@%+=".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// A managed challenge ("Just a moment..."), as bot protection or a WAF rule answers
/// in front of `host`; `path` is the path that was challenged.
pub(super) fn challenge(host: &str, path: &str) -> Response {
    let ray = ray_id();
    let page = wire::fill(
        CHALLENGE_PAGE,
        &[
            ("HOST", &wire::html_escape(host)),
            ("PATH", &safe_path(path)),
            ("RAY_ID", &ray),
            ("TOKEN", &wire::random_alphanumeric(43)),
            ("TIME", &wire::unix_now().to_string()),
        ],
    );
    let mut response = (
        StatusCode::FORBIDDEN,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=UTF-8"),
        )],
        page,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert("cf-mitigated", HeaderValue::from_static("challenge"));
    headers.insert(CF_RAY, ray_header(&ray));
    no_store(headers);
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'nonce-lab' 'unsafe-eval' https://challenges.cloudflare.com; style-src 'unsafe-inline'; img-src 'self'; connect-src 'self'; frame-src https://challenges.cloudflare.com; base-uri 'none'",
        ),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Cloudflare's HTML "Bad gateway" page for `host`: the edge reached no working
/// origin.
pub(super) fn bad_gateway(host: &str) -> Response {
    let ray = ray_id();
    let page = wire::fill(
        BAD_GATEWAY_PAGE,
        &[
            ("HOST", &wire::html_escape(host)),
            ("RAY_ID", &ray),
            ("TIME", &wire::utc_timestamp(wire::unix_now())),
        ],
    );
    let mut response = (
        StatusCode::BAD_GATEWAY,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=UTF-8"),
        )],
        page,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(CF_RAY, ray_header(&ray));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0, no-store, no-cache, must-revalidate"),
    );
    response
}

/// Access's "Error ・ Cloudflare Access" page with `heading` and `message`.
pub(super) fn access_error(status: StatusCode, heading: &str, message: &str) -> Response {
    let ray = ray_id();
    let page = wire::fill(
        ACCESS_ERROR_PAGE,
        &[
            ("HEADING", &wire::html_escape(heading)),
            ("MESSAGE", &wire::html_escape(message)),
            ("RAY_ID", &ray),
        ],
    );
    let mut response = (status, html(), Body::from(page)).into_response();
    let headers = response.headers_mut();
    headers.insert(CF_RAY, ray_header(&ray));
    no_store(headers);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_body_has_the_captured_length() {
        assert_eq!(FOUND_BODY.len(), 143);
    }

    #[test]
    fn paths_cannot_break_out_of_attributes_or_scripts() {
        assert_eq!(safe_path("/a b/'x'\"<&>"), "/a%20b/%27x%27%22%3C%26%3E");
        assert_eq!(safe_path("/api/oidc/token"), "/api/oidc/token");
    }

    #[test]
    fn fixture_placeholders_are_all_filled() {
        for response in [
            challenge("service.example.com", "/x"),
            bad_gateway("id.example.com"),
            access_error(StatusCode::NOT_FOUND, "h", "m"),
        ] {
            assert!(response.headers().contains_key(CF_RAY));
            let body = response.into_body();
            let bytes = futures::executor::block_on(axum::body::to_bytes(body, 1 << 20))
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.is_empty());
            assert!(!text.contains("{{"), "unfilled placeholder in {text}");
        }
    }
}
