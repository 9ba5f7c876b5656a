//! What Cloudflare's edge adds to every answer and the pages it answers itself:
//! `server: cloudflare` and `cf-ray`, its redirects, managed challenges, 5xx pages
//! and Access's own HTML pages.

use super::{Variant, wire};
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_TYPE, EXPIRES, LOCATION, RETRY_AFTER, SERVER, SET_COOKIE,
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

/// One page as each face of the edge renders it.
pub(super) struct Faces {
    pub(super) classic: &'static str,
    pub(super) rebranded: &'static str,
    pub(super) terse: &'static str,
}

impl Faces {
    /// The page of `variant`.
    pub(super) fn of(&self, variant: Variant) -> &'static str {
        match variant {
            Variant::Classic => self.classic,
            Variant::Rebranded => self.rebranded,
            Variant::Terse => self.terse,
        }
    }
}

const CHALLENGE_PAGE: Faces = Faces {
    classic: include_str!("../../../fixtures/cloudflare/challenge.html"),
    rebranded: include_str!("../../../fixtures/cloudflare/challenge-rebranded.html"),
    terse: include_str!("../../../fixtures/cloudflare/challenge-terse.html"),
};
const BAD_GATEWAY_PAGE: Faces = Faces {
    classic: include_str!("../../../fixtures/cloudflare/502.html"),
    rebranded: include_str!("../../../fixtures/cloudflare/502-rebranded.html"),
    terse: include_str!("../../../fixtures/cloudflare/502-terse.html"),
};
const ACCESS_ERROR_PAGE: Faces = Faces {
    classic: include_str!("../../../fixtures/cloudflare/access-error.html"),
    rebranded: include_str!("../../../fixtures/cloudflare/access-error-rebranded.html"),
    terse: include_str!("../../../fixtures/cloudflare/access-error-terse.html"),
};
const TUNNEL_ERROR_PAGE: Faces = Faces {
    classic: include_str!("../../../fixtures/cloudflare/1033.html"),
    rebranded: include_str!("../../../fixtures/cloudflare/1033-rebranded.html"),
    // The one line older edges answered; the documented code is all there is.
    terse: "error code: 1033",
};

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

/// [`stamp`] for the hosts whose answers are the edge's own (the application and
/// the team domain), in the face's header order: the terse face writes header
/// names sorted, as a Go front end does (`net/http` sorts them), where the others
/// keep the order the handlers set them in. Pocket ID's answers keep its order.
pub(super) async fn stamp_access(State(variant): State<Variant>, response: Response) -> Response {
    let mut response = stamp(response).await;
    if variant == Variant::Terse {
        sort_headers(response.headers_mut());
    }
    response
}

/// Rewrites `headers` with the names in byte order; the values of one name keep
/// their order (several `Set-Cookie`s stay as set).
fn sort_headers(headers: &mut HeaderMap) {
    let mut names: Vec<HeaderName> = headers.keys().cloned().collect();
    names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut sorted = HeaderMap::with_capacity(headers.len());
    for name in names {
        for value in headers.get_all(&name) {
            sorted.append(name.clone(), value.clone());
        }
    }
    *headers = sorted;
}

/// Appends a `Set-Cookie` for `line`, written as captured (`name=value; Attr=v;
/// Flag…`), in the face's attribute order and case: browsers and cookie jars take
/// attributes in any order and case, and edges do not all write them alike.
pub(super) fn append_cookie(headers: &mut HeaderMap, variant: Variant, line: &str) {
    if let Ok(value) = HeaderValue::from_str(&cookie_line(variant, line)) {
        headers.append(SET_COOKIE, value);
    }
}

/// `line` restyled for `variant`: the rebranded face writes attribute names in
/// lower case with `path` first, the terse face writes the flags first.
fn cookie_line(variant: Variant, line: &str) -> String {
    let order: [&str; 5] = match variant {
        Variant::Classic => return line.to_string(),
        Variant::Rebranded => ["path", "expires", "secure", "samesite", "httponly"],
        Variant::Terse => ["httponly", "secure", "samesite", "path", "expires"],
    };
    let mut parts = line.split(';').map(str::trim).filter(|p| !p.is_empty());
    let mut out = parts.next().unwrap_or_default().to_string();
    let mut attributes: Vec<(&str, Option<&str>)> = parts
        .map(|part| match part.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (part, None),
        })
        .collect();
    // Attributes the order does not name keep their place after the named ones.
    attributes.sort_by_key(|(name, _)| {
        order
            .iter()
            .position(|o| o.eq_ignore_ascii_case(name))
            .unwrap_or(order.len())
    });
    for (name, value) in attributes {
        let same_site = name.eq_ignore_ascii_case("samesite");
        let (name, value) = match variant {
            Variant::Rebranded => (
                name.to_ascii_lowercase(),
                value.map(|v| {
                    if same_site {
                        v.to_ascii_lowercase()
                    } else {
                        v.to_string()
                    }
                }),
            ),
            _ => (
                canonical_attribute(name).to_string(),
                value.map(|v| {
                    if same_site {
                        capitalised(v)
                    } else {
                        v.to_string()
                    }
                }),
            ),
        };
        out.push_str("; ");
        out.push_str(&name);
        if let Some(value) = value {
            out.push('=');
            out.push_str(&value);
        }
    }
    out
}

/// The RFC 6265 spelling of a cookie attribute name; others as written.
fn canonical_attribute(name: &str) -> &str {
    [
        "Path", "Expires", "Max-Age", "Domain", "Secure", "HttpOnly", "SameSite",
    ]
    .into_iter()
    .find(|known| known.eq_ignore_ascii_case(name))
    .unwrap_or(name)
}

/// `none` → `None`.
fn capitalised(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => {
            first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
        }
        None => String::new(),
    }
}

/// Access's no-cache headers.
pub(super) fn no_store(headers: &mut HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    headers.insert(EXPIRES, HeaderValue::from_static(EXPIRED));
}

/// A 302 to `location` as the edge sends it. The terse face sends no body, as some
/// edges do; nothing should read a redirect's body.
pub(super) fn found(variant: Variant, location: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "lab: unusable redirect").into_response();
    };
    let mut response = match variant {
        Variant::Terse => StatusCode::FOUND.into_response(),
        _ => (StatusCode::FOUND, html(), FOUND_BODY).into_response(),
    };
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
pub(super) fn challenge(variant: Variant, host: &str, path: &str) -> Response {
    let ray = ray_id();
    let page = wire::fill(
        CHALLENGE_PAGE.of(variant),
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
pub(super) fn bad_gateway(variant: Variant, host: &str) -> Response {
    let ray = ray_id();
    let page = wire::fill(
        BAD_GATEWAY_PAGE.of(variant),
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

/// Access's error page ("Error ・ Cloudflare Access" as captured) with `heading`
/// and `message`.
pub(super) fn access_error(
    variant: Variant,
    status: StatusCode,
    heading: &str,
    message: &str,
) -> Response {
    let ray = ray_id();
    let page = wire::fill(
        ACCESS_ERROR_PAGE.of(variant),
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
/// else the HTML page (the terse face: the one-line `error code: 1033` older edges
/// answer).
pub(super) fn tunnel_error(variant: Variant, host: &str, request: &HeaderMap) -> Response {
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
                TUNNEL_ERROR_PAGE.of(variant),
                &[
                    ("HOST", &wire::html_escape(host)),
                    ("RAY_ID", &ray),
                    ("TIME", &wire::utc_timestamp(now)),
                ],
            );
            let content_type = match variant {
                Variant::Terse => "text/plain; charset=UTF-8",
                _ => "text/html; charset=UTF-8",
            };
            (status, [(CONTENT_TYPE, content_type)], page).into_response()
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

/// What cloudflared answers through its catch-all ingress rule `http_status:404` when
/// no public hostname matches the request: the status, no header and no body
/// (cloudflared's `statusCode` origin service); the edge adds only its own headers.
pub(super) fn cloudflared_catch_all() -> Response {
    (StatusCode::NOT_FOUND, Body::empty()).into_response()
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
        for variant in Variant::ALL {
            let challenged = challenge(variant, "service.example.com", "/x");
            assert_eq!(challenged.headers()["cf-mitigated"], "challenge");
            for (response, status) in [
                (challenged, 403),
                (bad_gateway(variant, "id.example.com"), 502),
                (access_error(variant, StatusCode::NOT_FOUND, "h", "m"), 404),
                (
                    tunnel_error(variant, "service.example.com", &HeaderMap::new()),
                    530,
                ),
            ] {
                assert_eq!(response.status().as_u16(), status);
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

    #[test]
    fn each_face_has_its_own_pages() {
        for faces in [
            &CHALLENGE_PAGE,
            &BAD_GATEWAY_PAGE,
            &ACCESS_ERROR_PAGE,
            &TUNNEL_ERROR_PAGE,
        ] {
            let pages = Variant::ALL.map(|v| faces.of(v));
            assert_ne!(pages[0], pages[1]);
            assert_ne!(pages[0], pages[2]);
            assert_ne!(pages[1], pages[2]);
        }
    }

    #[test]
    fn cookies_are_restyled_per_face() {
        let line = "CF_Authorization=t; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/; Secure; SameSite=none; HttpOnly";
        assert_eq!(cookie_line(Variant::Classic, line), line);
        assert_eq!(
            cookie_line(Variant::Rebranded, line),
            "CF_Authorization=t; path=/; expires=Thu, 01 Jan 1970 00:00:01 GMT; secure; samesite=none; httponly"
        );
        assert_eq!(
            cookie_line(Variant::Terse, line),
            "CF_Authorization=t; HttpOnly; Secure; SameSite=None; Path=/; Expires=Thu, 01 Jan 1970 00:00:01 GMT"
        );
        // An attribute no order names stays, after the named ones.
        assert_eq!(
            cookie_line(Variant::Terse, "a=b; Partitioned; Path=/"),
            "a=b; Path=/; Partitioned"
        );
    }

    #[test]
    fn the_terse_face_sorts_header_names_and_keeps_cookie_order() {
        let mut headers = HeaderMap::new();
        headers.insert(SERVER, HeaderValue::from_static("cloudflare"));
        headers.append(SET_COOKIE, HeaderValue::from_static("b=1"));
        headers.insert(CF_RAY, HeaderValue::from_static("0-LAB"));
        headers.append(SET_COOKIE, HeaderValue::from_static("a=2"));
        sort_headers(&mut headers);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["cf-ray", "server", "set-cookie"]);
        let cookies: Vec<_> = headers.get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["b=1", "a=2"]);
    }
}
