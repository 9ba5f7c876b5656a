//! oauth2-proxy's wire rules (v7, provider `oidc`): how its answers are recognised and
//! what they mean. Keyed on what oauth2-proxy documents and its source emits — status
//! codes, headers, cookie names and the fixed messages of its error page — never on one
//! page's markup: custom templates (`--custom-templates-dir`) change the markup, not
//! these. No network here.

use crate::http::Response;
use url::Url;

/// `--proxy-prefix`'s default: oauth2-proxy's own endpoints live under it.
pub const DEFAULT_PREFIX: &str = "/oauth2";
/// `--cookie-name`'s default: the session cookie (`_oauth2_proxy_0`, `_1`, … when
/// split above 4 KB).
pub const SESSION_COOKIE: &str = "_oauth2_proxy";
/// The header oauth2-proxy names the signed-in user in on every authenticated answer.
pub const GAP_AUTH: &str = "gap-auth";
/// The id_token signing algorithms oauth2-proxy's verifier (go-oidc, go-jose) takes.
pub const VERIFIED_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA",
];

/// The fixed messages of oauth2-proxy's error page (`pkg/app/pagewriter`), which
/// custom templates show as `{{.Message}}`.
pub mod messages {
    /// A failure its log explains (the code's redemption, the state).
    pub const GENERIC_500: &str = "Oops! Something went wrong.";
    /// The session failed an authorization rule (e-mail domain, group, verified e-mail).
    pub const GENERIC_403: &str = "You do not have permission to access this resource.";
    /// The login's CSRF cookie was missing or did not match.
    pub const CSRF: &str = "Unable to find a valid CSRF token";
    /// Pocket ID answered the callback with `error=…`.
    pub const UPSTREAM_IDP_ERROR: &str = "The upstream identity provider returned an error";
    /// oauth2-proxy could not reach its `--upstream`.
    pub const UPSTREAM_DOWN: &str = "There was a problem connecting to the upstream server";
}

/// The login an oauth2-proxy in front of the site offers an anonymous visitor.
#[derive(Debug, Clone)]
pub struct ProxyLogin {
    /// Where a login starts: `…/oauth2/start?rd=PATH` (or `…/oauth2/sign_in`, when
    /// that is all the site named).
    pub start: Url,
    /// oauth2-proxy's base: the origin and prefix its endpoints live under
    /// (`https://service.example.com/oauth2`).
    pub base: Url,
    /// How the site sent the visitor there.
    pub via: Via,
    /// With [`Via::Straight`], the site's own redirect to the authorization endpoint:
    /// the login is already started (its CSRF cookie set), so it is not asked again.
    pub started: Option<std::sync::Arc<Response>>,
}

impl ProxyLogin {
    /// One of oauth2-proxy's endpoints: `callback`, `auth`, `userinfo`, `sign_out`.
    pub fn endpoint(&self, name: &str) -> Url {
        let mut url = self.base.clone();
        let path = format!("{}/{name}", self.base.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_query(None);
        url
    }

    /// The callback oauth2-proxy must send to Pocket ID as `redirect_uri`.
    pub fn callback(&self) -> String {
        self.endpoint("callback").to_string()
    }

    /// One of the paths oauth2-proxy answers at the root of its host (`/ping`,
    /// `/ready`), whatever its prefix.
    pub fn root_path(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url.set_query(None);
        url
    }
}

/// How the site sent an anonymous browser to oauth2-proxy's login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Its sign-in page, with the provider button (`--skip-provider-button=false`).
    SignInPage,
    /// A redirect to `…/oauth2/start` or `…/oauth2/sign_in` (a front proxy's
    /// forward-auth: nginx `auth_request`, Caddy `forward_auth`, Traefik).
    Redirect,
    /// Straight to Pocket ID, the login's CSRF cookie set (`--skip-provider-button`).
    Straight,
}

impl Via {
    /// In words, for a summary.
    pub fn text(self) -> &'static str {
        match self {
            Via::SignInPage => "its sign-in page",
            Via::Redirect => "a redirect to its login",
            Via::Straight => "a redirect straight to Pocket ID",
        }
    }
}

/// Whether `response` is oauth2-proxy's answer to a client it takes for a script: 401,
/// `application/json`, the body `{}`, no Location and no challenge.
pub fn json_refusal(response: &Response) -> bool {
    response.status.as_u16() == 401
        && response.is_json()
        && response.text().trim() == "{}"
        && response.location().is_none()
        && response.header("www-authenticate").is_none()
}

/// Whether a cookie name is one of oauth2-proxy's CSRF cookies (`NAME_csrf`, or
/// `NAME_HASH_csrf` with `--cookie-csrf-per-request`).
pub fn is_csrf_cookie(name: &str) -> bool {
    name.ends_with("_csrf") && name.len() > "_csrf".len()
}

/// The session cookie's name from a CSRF cookie's (`_oauth2_proxy_csrf` →
/// `_oauth2_proxy`); the default when it cannot tell.
pub fn session_cookie_of(csrf: &str) -> String {
    csrf.strip_suffix("_csrf")
        .filter(|n| !n.is_empty())
        .map_or(SESSION_COOKIE.to_string(), |n| {
            // `NAME_HASH_csrf`: the hash is the last part.
            match n.rsplit_once('_') {
                Some((head, hash))
                    if head.starts_with('_') && hash.len() >= 8 && !head.is_empty() =>
                {
                    head.to_string()
                }
                _ => n.to_string(),
            }
        })
}

/// Whether `name` is the session cookie `base` or one of its parts (`base_0`, `base_1`).
pub fn is_session_part(name: &str, base: &str) -> bool {
    name == base
        || name
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a URL path is one of oauth2-proxy's login endpoints: `PREFIX/start` or
/// `PREFIX/sign_in`; the prefix when it is.
fn login_prefix(path: &str) -> Option<&str> {
    path.strip_suffix("/start")
        .or_else(|| path.strip_suffix("/sign_in"))
        .filter(|p| p.starts_with('/') && p.len() > 1)
}

/// oauth2-proxy's login as `response` (the end of the site's redirects for an anonymous
/// browser) shows it; `None` when it is not oauth2-proxy's.
pub fn recognise(response: &Response, site: &Url) -> Option<ProxyLogin> {
    let status = response.status.as_u16();
    if let Some(Ok(location)) = response.location() {
        // A redirect to its login endpoints (forward-auth set-ups redirect there).
        if let Some(prefix) = login_prefix(location.path()) {
            return Some(ProxyLogin {
                base: base_of(&location, prefix),
                start: location,
                via: Via::Redirect,
                started: None,
            });
        }
        // Straight to the authorization endpoint, with its CSRF cookie.
        let csrf = response
            .cookies_set()
            .into_iter()
            .any(|n| is_csrf_cookie(&n));
        let callback = location
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .and_then(|(_, v)| Url::parse(&v).ok());
        let code_flow = location
            .query_pairs()
            .any(|(k, v)| k == "response_type" && v == "code");
        if csrf
            && code_flow
            && let Some(callback) = callback
            && let Some(prefix) = callback.path().strip_suffix("/callback")
            && !prefix.is_empty()
        {
            // On the site's own host, the site's scheme: an http callback is a fault
            // o2p.start names, not where oauth2-proxy lives.
            let at = if callback.host_str() == site.host_str() {
                site
            } else {
                &callback
            };
            let base = base_of(at, prefix);
            return Some(ProxyLogin {
                start: start_url(&base, site),
                base,
                via: Via::Straight,
                started: None,
            });
        }
        return None;
    }
    // The sign-in page: 403 to a visitor, HTML, with the no-cache headers oauth2-proxy
    // puts on it or a way to PREFIX/start. A 200 or 401 (a front proxy's error_page
    // serving it) needs both, or its own PREFIX/sign_in URL: a public page may link to
    // some /start. Its error pages carry the same headers: their fixed messages keep
    // them out.
    if !matches!(status, 200 | 401 | 403) {
        return None;
    }
    let html = response
        .header("content-type")
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("text/html"));
    if !html || page(response) != Page::Other {
        return None;
    }
    let start = start_in_page(response);
    let no_cache = response.header("x-accel-expires") == Some("0");
    let at_sign_in = login_prefix(response.url.path()).is_some();
    if status != 403 && !(start.is_some() && (no_cache || at_sign_in)) {
        return None;
    }
    match start {
        Some(found) => {
            let prefix = found
                .path()
                .strip_suffix("/start")
                .unwrap_or(DEFAULT_PREFIX);
            let base = base_of(&found, prefix);
            Some(ProxyLogin {
                start: start_url(&base, site),
                base,
                via: Via::SignInPage,
                started: None,
            })
        }
        None if no_cache && status == 403 => {
            let base = base_of(&response.url, DEFAULT_PREFIX);
            Some(ProxyLogin {
                start: start_url(&base, site),
                base,
                via: Via::SignInPage,
                started: None,
            })
        }
        None => None,
    }
}

/// `url`'s origin with `prefix` as its path.
fn base_of(url: &Url, prefix: &str) -> Url {
    let mut base = url.clone();
    base.set_path(prefix);
    base.set_query(None);
    base.set_fragment(None);
    base
}

/// `BASE/start?rd=PATH`: the login returning to the site's path (and query).
fn start_url(base: &Url, site: &Url) -> Url {
    let mut start = base.clone();
    let path = format!("{}/start", base.path().trim_end_matches('/'));
    start.set_path(&path);
    let rd = match site.query() {
        Some(q) => format!("{}?{q}", site.path()),
        None => site.path().to_string(),
    };
    start.query_pairs_mut().clear().append_pair("rd", &rd);
    start
}

/// The first link or form of the page (parsed as the Access sign-in page's choices
/// are, with `scraper`) whose target is a path ending in `/start` on the page's own
/// origin.
fn start_in_page(response: &Response) -> Option<Url> {
    let doc = scraper::Html::parse_document(&response.text());
    let targets = scraper::Selector::parse("a[href], form[action]").ok()?;
    doc.select(&targets)
        .filter_map(|e| e.value().attr("href").or_else(|| e.value().attr("action")))
        .filter_map(|target| response.url.join(target.trim()).ok())
        .find(|url| url.origin() == response.url.origin() && url.path().ends_with("/start"))
}

/// What oauth2-proxy's page says, by its fixed messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// The generic 500: the code's redemption or the state failed; its log says which.
    Generic500,
    /// The generic 403: an authorization rule refused the user.
    Forbidden,
    /// No valid CSRF cookie came with the callback.
    Csrf,
    /// Pocket ID answered the callback with an error (named).
    IdpError(String),
    /// It could not reach its upstream.
    UpstreamDown,
    /// Something else (a custom message, `--show-debug-on-error`'s internal error).
    Other,
}

/// Reads oauth2-proxy's error page by its status and fixed messages.
pub fn page(response: &Response) -> Page {
    let text = response.text();
    let status = response.status.as_u16();
    if text.contains(messages::UPSTREAM_DOWN) {
        return Page::UpstreamDown;
    }
    if let Some(at) = text.find(messages::UPSTREAM_IDP_ERROR) {
        let error: String = text
            .get(at + messages::UPSTREAM_IDP_ERROR.len()..)
            .unwrap_or_default()
            .trim_start_matches([':', ' '])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Page::IdpError(error);
    }
    if text.contains(messages::CSRF) {
        return Page::Csrf;
    }
    match status {
        500 if text.contains(messages::GENERIC_500) || text.is_empty() => Page::Generic500,
        403 if text.contains(messages::GENERIC_403) => Page::Forbidden,
        _ => Page::Other,
    }
}

/// The attributes of one `Set-Cookie` line, never its value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieLine {
    pub name: String,
    /// Length of its value, in bytes.
    pub value_len: usize,
    pub secure: bool,
    pub http_only: bool,
    pub max_age: Option<i64>,
    pub expires: bool,
    pub domain: Option<String>,
    pub same_site: Option<String>,
}

impl CookieLine {
    /// Whether the line deletes the cookie (an empty value, `Max-Age=0` or less).
    pub fn clears(&self) -> bool {
        self.value_len == 0 || self.max_age.is_some_and(|m| m <= 0)
    }
}

/// The `Set-Cookie` lines of `response`, their attributes read, their values left.
pub fn cookie_lines(response: &Response) -> Vec<CookieLine> {
    response
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .take(64)
        .filter(|line| {
            line.split(';')
                .next()
                .is_some_and(|first| first.contains('='))
        })
        .map(|line| {
            let (name, value, attributes) = crate::text::split_set_cookie(line);
            let mut cookie = CookieLine {
                name: crate::text::server_text(name),
                value_len: value.len(),
                ..CookieLine::default()
            };
            for attribute in attributes {
                let (key, val) = crate::text::cookie_attribute(attribute);
                match key.as_str() {
                    "secure" => cookie.secure = true,
                    "httponly" => cookie.http_only = true,
                    "max-age" => cookie.max_age = val.parse().ok(),
                    "expires" => cookie.expires = true,
                    "domain" => cookie.domain = Some(crate::text::server_text(val)),
                    "samesite" => cookie.same_site = Some(crate::text::server_text(val)),
                    _ => {}
                }
            }
            cookie
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Response {
            url: Url::parse("https://service.example.com/x?y=1").unwrap(),
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.as_bytes().to_vec(),
            elapsed: std::time::Duration::ZERO,
        }
    }

    fn site() -> Url {
        Url::parse("https://service.example.com/x?y=1").unwrap()
    }

    #[test]
    fn the_json_refusal_is_told_by_status_type_and_body() {
        let json = [("content-type", "application/json")];
        assert!(json_refusal(&response(401, &json, "{}")));
        assert!(!json_refusal(&response(401, &json, "{\"error\":1}")));
        assert!(!json_refusal(&response(
            401,
            &[
                ("content-type", "application/json"),
                ("www-authenticate", "Bearer")
            ],
            "{}"
        )));
        assert!(!json_refusal(&response(403, &json, "{}")));
    }

    #[test]
    fn the_sign_in_page_is_found_by_its_way_to_start_under_any_markup() {
        let html = [("content-type", "text/html; charset=utf-8")];
        for page in [
            "<form method=\"GET\" action=\"/oauth2/start\"><button>Sign in</button></form>",
            "<p><a href='/auth/start?rd=%2F'>Log in</a></p>",
            "<form action=\"/oauth2/start\"><input type=submit></form>",
        ] {
            let login = recognise(&response(403, &html, page), &site()).expect(page);
            assert_eq!(login.via, Via::SignInPage);
            assert!(login.start.path().ends_with("/start"));
            assert_eq!(
                login
                    .start
                    .query_pairs()
                    .find(|(k, _)| k == "rd")
                    .unwrap()
                    .1,
                "/x?y=1"
            );
        }
        // A custom page without the link: the header oauth2-proxy always sets.
        let login = recognise(
            &response(
                403,
                &[("content-type", "text/html"), ("x-accel-expires", "0")],
                "<p>no</p>",
            ),
            &site(),
        )
        .unwrap();
        assert_eq!(login.base.as_str(), "https://service.example.com/oauth2");
        assert_eq!(
            login.callback(),
            "https://service.example.com/oauth2/callback"
        );
        // A public page (200) linking to some /start is not oauth2-proxy's sign-in page;
        // with its no-cache header it is (a front proxy's error_page serving it).
        let docs = "<a href=\"/docs/start\">Get started</a>";
        assert!(recognise(&response(200, &html, docs), &site()).is_none());
        assert!(
            recognise(
                &response(
                    200,
                    &[("content-type", "text/html"), ("x-accel-expires", "0")],
                    docs
                ),
                &site()
            )
            .is_some()
        );
        // Its error pages carry the same headers, and are not the sign-in page.
        let forbidden = "<form action=\"/oauth2/start\"></form>You do not have permission to access this resource.";
        assert!(
            recognise(
                &response(
                    403,
                    &[("content-type", "text/html"), ("x-accel-expires", "0")],
                    forbidden
                ),
                &site()
            )
            .is_none()
        );
        // A link to another origin's /start is not oauth2-proxy's.
        assert!(
            recognise(
                &response(
                    403,
                    &html,
                    "<a href=\"https://evil.example.net/start\">x</a>"
                ),
                &site()
            )
            .is_none()
        );
        assert!(recognise(&response(403, &html, "<p>Forbidden</p>"), &site()).is_none());
    }

    #[test]
    fn redirects_to_its_login_or_straight_to_the_idp_are_recognised() {
        let login = recognise(
            &response(
                302,
                &[(
                    "location",
                    "https://auth.example.com/oauth2/start?rd=https%3A%2F%2Fservice.example.com%2F",
                )],
                "",
            ),
            &site(),
        )
        .unwrap();
        assert_eq!(login.via, Via::Redirect);
        assert_eq!(login.base.as_str(), "https://auth.example.com/oauth2");
        let straight = recognise(
            &response(
                302,
                &[
                    ("location", "https://id.example.com/authorize?client_id=c&redirect_uri=https%3A%2F%2Fservice.example.com%2Foauth2%2Fcallback&response_type=code&state=n%3A%252F"),
                    ("set-cookie", "_oauth2_proxy_csrf=abc; Path=/; HttpOnly; Secure"),
                ],
                "",
            ),
            &site(),
        )
        .unwrap();
        assert_eq!(straight.via, Via::Straight);
        assert_eq!(
            straight.callback(),
            "https://service.example.com/oauth2/callback"
        );
        // Without the CSRF cookie it is somebody else's login.
        assert!(
            recognise(
                &response(
                    302,
                    &[("location", "https://id.example.com/authorize?client_id=c&redirect_uri=https%3A%2F%2Fservice.example.com%2Foauth2%2Fcallback&response_type=code")],
                    "",
                ),
                &site()
            )
            .is_none()
        );
    }

    #[test]
    fn cookie_names_and_lines() {
        assert!(is_csrf_cookie("_oauth2_proxy_csrf"));
        assert!(!is_csrf_cookie("_csrf"));
        assert_eq!(session_cookie_of("_oauth2_proxy_csrf"), "_oauth2_proxy");
        assert_eq!(
            session_cookie_of("_oauth2_proxy_a1b2c3d4e5_csrf"),
            "_oauth2_proxy"
        );
        assert_eq!(session_cookie_of("_sso_csrf"), "_sso");
        assert!(is_session_part("_oauth2_proxy_1", "_oauth2_proxy"));
        assert!(!is_session_part("_oauth2_proxy_csrf", "_oauth2_proxy"));
        let lines = cookie_lines(&response(
            302,
            &[
                (
                    "set-cookie",
                    "_oauth2_proxy_csrf=; Path=/; Max-Age=0; HttpOnly; Secure",
                ),
                (
                    "set-cookie",
                    "_oauth2_proxy=abcd; Path=/; Max-Age=604800; HttpOnly; Secure; Domain=example.com",
                ),
            ],
            "",
        ));
        assert!(lines[0].clears());
        assert_eq!(lines[1].max_age, Some(604_800));
        assert_eq!(lines[1].value_len, 4);
        assert_eq!(lines[1].domain.as_deref(), Some("example.com"));
    }

    #[test]
    fn error_pages_are_read_by_their_fixed_messages() {
        let page_of = |status, body: &str| page(&response(status, &[], body));
        assert_eq!(
            page_of(500, "<p>Oops! Something went wrong. For more</p>"),
            Page::Generic500
        );
        assert_eq!(
            page_of(403, "You do not have permission to access this resource."),
            Page::Forbidden
        );
        assert_eq!(
            page_of(
                403,
                "Login Failed: Unable to find a valid CSRF token. Please try again."
            ),
            Page::Csrf
        );
        assert_eq!(
            page_of(
                403,
                "Login Failed: The upstream identity provider returned an error: invalid_request</p>"
            ),
            Page::IdpError("invalid_request".into())
        );
        assert_eq!(
            page_of(
                502,
                "There was a problem connecting to the upstream server."
            ),
            Page::UpstreamDown
        );
        assert_eq!(page_of(418, "teapot"), Page::Other);
    }
}
