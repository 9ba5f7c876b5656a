//! What Cloudflare's edge adds to every answer and the pages it answers itself:
//! `server: cloudflare` and `cf-ray`, its redirects, managed challenges, 5xx pages
//! and Access's own HTML pages.

use super::wire;
use axum::body::Body;
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_TYPE, EXPIRES, LOCATION, RETRY_AFTER, SERVER,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Header Cloudflare identifies the request with: `<16 hex>-<colo>`.
pub(super) const CF_RAY: HeaderName = HeaderName::from_static("cf-ray");

/// `cache-control` on Access's redirects and pages.
pub(super) const NO_STORE: &str =
    "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0";
/// `expires` next to [`NO_STORE`].
pub(super) const EXPIRED: &str = "Thu, 01 Jan 1970 00:00:01 GMT";

const CHALLENGE_PAGE: &str = include_str!("../../../fixtures/cloudflare/challenge.html");
const BAD_GATEWAY_PAGE: &str = include_str!("../../../fixtures/cloudflare/502.html");
const ACCESS_ERROR_PAGE: &str = include_str!("../../../fixtures/cloudflare/access-error.html");
const TUNNEL_ERROR_PAGE: &str = include_str!("../../../fixtures/cloudflare/1033.html");

/// How long Cloudflare tells clients to wait before retrying a 1033 (its
/// `retry_after` and `Retry-After`).
const TUNNEL_RETRY_AFTER: u64 = 120;

/// What cloudflared answers when its ingress service refuses connections.
const CLOUDFLARED_BAD_GATEWAY: &str = "Unable to reach the origin service. The service may be down or it may not be responding to traffic from cloudflared\n";

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

/// Whether the client asked for JSON (`application/json` or
/// `application/problem+json` listed before any Markdown or HTML), which makes the
/// edge answer its 1xxx errors as RFC 9457 problem details.
pub(super) fn wants_json(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(ACCEPT)?.to_str().ok()?;
    for media in accept.split(',') {
        let media = media.split(';').next().unwrap_or("").trim();
        match media.to_ascii_lowercase().as_str() {
            "application/json" => return Some("application/json; charset=utf-8"),
            "application/problem+json" => return Some("application/problem+json; charset=utf-8"),
            "text/markdown" | "text/html" | "text/*" | "*/*" => return None,
            _ => {}
        }
    }
    None
}

/// HTTP 530 with Cloudflare error 1033: the hostname routes to a tunnel that has no
/// healthy cloudflared connector. JSON (RFC 9457) when the request asked for it,
/// else the HTML page.
pub(super) fn tunnel_error(host: &str, request: &HeaderMap) -> Response {
    let ray = ray_id();
    let now = wire::unix_now();
    let status = StatusCode::from_u16(530).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = match wants_json(request) {
        Some(content_type) => {
            let body = serde_json::json!({
                "type": "https://developers.cloudflare.com/support/troubleshooting/http-status-codes/cloudflare-1xxx-errors/error-1033/",
                "title": "Error 1033: Argo Tunnel error",
                "status": 530,
                "detail": format!("The host {host} is configured as a Cloudflare Tunnel, and Cloudflare is currently unable to resolve it."),
                "instance": ray,
                "error_code": 1033,
                "error_name": "argo_tunnel_error",
                "error_category": "config",
                "ray_id": ray,
                "timestamp": wire::rfc3339_nanos(now, 0),
                "zone": host,
                "retryable": true,
                "retry_after": TUNNEL_RETRY_AFTER,
                "owner_action_required": true,
            });
            (status, [(CONTENT_TYPE, content_type)], body.to_string()).into_response()
        }
        None => {
            let page = wire::fill(
                TUNNEL_ERROR_PAGE,
                &[
                    ("HOST", &wire::html_escape(host)),
                    ("RAY_ID", &ray),
                    ("TIME", &wire::utc_timestamp(now)),
                ],
            );
            (status, [(CONTENT_TYPE, "text/html; charset=UTF-8")], page).into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(CF_RAY, ray_header(&ray));
    headers.insert(RETRY_AFTER, HeaderValue::from(TUNNEL_RETRY_AFTER));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0, no-store, no-cache, must-revalidate"),
    );
    response
}

/// 502 from cloudflared: the tunnel is up but the local service behind it refuses
/// connections. cloudflared writes a plain-text line; the edge passes it through.
pub(super) fn cloudflared_bad_gateway() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        CLOUDFLARED_BAD_GATEWAY,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_body_has_the_captured_length() {
        assert_eq!(FOUND_BODY.len(), 143);
    }

    #[test]
    fn json_is_chosen_only_when_asked_for_first() {
        let mut headers = HeaderMap::new();
        assert_eq!(wants_json(&headers), None);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        assert!(wants_json(&headers).is_some());
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("text/markdown, application/json"),
        );
        assert_eq!(wants_json(&headers), None);
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/problem+json;q=1, text/html"),
        );
        assert_eq!(
            wants_json(&headers),
            Some("application/problem+json; charset=utf-8")
        );
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
            tunnel_error("service.example.com", &HeaderMap::new()),
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
