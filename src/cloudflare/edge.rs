//! The edge's own pages, recognised by status codes, headers and Cloudflare's documented
//! texts: challenges, 1xxx and 5xx errors, Access sign-in, error and refusal pages.

use crate::http::Response;

/// A page the Cloudflare edge (or Access) produced instead of what was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgePage {
    /// A bot-protection challenge (`cf-mitigated: challenge`).
    Challenge,
    /// A Cloudflare error (1xxx, or a 5xx the edge generated).
    Error(CloudflareError),
    /// Access's interactive sign-in page (`Sign in ・ Cloudflare Access`).
    AccessSignIn,
    /// Access's error page (`Error ・ Cloudflare Access`), with its message if found.
    AccessError(Option<String>),
    /// Access refused without offering a login (403 with `cf-access-aud`).
    AccessForbidden,
    /// Managed OAuth: a 401 asking for a bearer token.
    ManagedOAuth,
}

/// A Cloudflare error response, from its JSON (RFC 9457) or HTML form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudflareError {
    /// HTTP status.
    pub status: u16,
    /// The 1xxx code, when the edge gave one.
    pub code: Option<u32>,
    /// Cloudflare's name for it.
    pub name: Option<String>,
    /// The Ray ID, to quote to Cloudflare support.
    pub ray: Option<String>,
}

impl CloudflareError {
    /// "Cloudflare error 1033 (530)" or "Cloudflare 502".
    pub fn label(&self) -> String {
        match self.code {
            Some(c) => format!("Cloudflare error {c} (HTTP {})", self.status),
            None => format!("Cloudflare HTTP {}", self.status),
        }
    }

    /// What the error means and what to do for `host`, in the operator's terms.
    pub fn meaning_for(&self, host: &str) -> (&'static str, String) {
        let (meaning, fix) = self.meaning();
        (meaning, fix.replace("{host}", host))
    }

    /// What the error means and what to do (`{host}`: the host that answered).
    fn meaning(&self) -> (&'static str, &'static str) {
        match (self.code, self.status) {
            (Some(1033), _) => (
                "Cloudflare Tunnel error: no healthy cloudflared connector for this hostname",
                "start the cloudflared that serves {host} (systemctl status cloudflared on its machine) and check that {host}'s CNAME points at that tunnel's ID",
            ),
            (Some(1016), _) => (
                "origin DNS error: Cloudflare cannot resolve the origin",
                "fix the DNS record the hostname points to (a dangling CNAME or a deleted tunnel)",
            ),
            (Some(1010), _) => (
                "the zone blocks this client's browser signature",
                "a WAF or Bot Fight Mode rule blocks scripted clients; add a skip rule for ssoprobe's User-Agent",
            ),
            (Some(1015), _) => (
                "rate limited by the zone's rate-limiting rules",
                "lower the probe frequency or exempt the prober's address",
            ),
            (Some(1020), _) | (Some(1005..=1012), _) => (
                "access denied by a firewall rule of the zone",
                "check the zone's WAF custom rules and IP access rules for one that matches the prober",
            ),
            (Some(1000..=1004), _) => (
                "a DNS configuration error at Cloudflare",
                "check the DNS records of the zone in the Cloudflare dashboard",
            ),
            (_, 502) | (_, 504) => (
                "the origin (or the tunnel's local service) did not answer",
                "the tunnel or proxy is up but the service behind it is down or on another port: check the service, and the ingress rule in cloudflared's config",
            ),
            (_, 520..=527) => (
                "Cloudflare could not get a valid answer from the origin",
                "check the origin server and its TLS settings (Cloudflare's SSL mode)",
            ),
            (_, 530) => (
                "Cloudflare cannot reach the origin",
                "check cloudflared and the hostname's DNS record",
            ),
            _ => (
                "the Cloudflare edge answered an error",
                "quote the Ray ID when you ask Cloudflare support",
            ),
        }
    }
}

/// Recognises the edge's own pages. `None` means "not recognisably Cloudflare's".
pub fn classify(response: &Response) -> Option<EdgePage> {
    if response
        .header("cf-mitigated")
        .is_some_and(|v| v.eq_ignore_ascii_case("challenge"))
    {
        return Some(EdgePage::Challenge);
    }
    // Status and headers first: they are what Cloudflare documents, and a page's
    // markup and wording can be rebranded.
    let status = response.status.as_u16();
    if status == 403
        && response.location().is_none()
        && (response.header("cf-access-aud").is_some()
            || response.header("cf-access-domain").is_some())
    {
        return Some(EdgePage::AccessForbidden);
    }
    if status == 401
        && response.header("www-authenticate").is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.starts_with("bearer") && v.contains("resource_metadata")
        })
    {
        return Some(EdgePage::ManagedOAuth);
    }
    let body = response.text();
    let title = html_title(&body).unwrap_or_default();
    if title.to_ascii_lowercase().contains("cloudflare access") {
        let error_title = title.to_ascii_lowercase().starts_with("error");
        return Some(
            if status >= 400 || error_title || known_access_error(&body).is_some() {
                EdgePage::AccessError(access_error_message(&body))
            } else {
                EdgePage::AccessSignIn
            },
        );
    }
    let from_edge = response
        .header("server")
        .is_some_and(|s| s.eq_ignore_ascii_case("cloudflare"));
    if !from_edge || status < 400 {
        return None;
    }
    let ray = ray_id(response);
    let mut error = CloudflareError {
        status,
        code: None,
        name: None,
        ray,
    };
    if response.is_json() {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&response.body) {
            error.code = v
                .get("error_code")
                .and_then(|c| c.as_u64())
                .and_then(|c| u32::try_from(c).ok());
            error.name = v
                .get("error_name")
                .or_else(|| v.get("title"))
                .and_then(|n| n.as_str())
                .map(str::to_string);
            if let Some(r) = v.get("ray_id").and_then(|r| r.as_str()) {
                error.ray = normalise_ray(r).or(error.ray.take());
            }
        }
    } else {
        error.code = error_code_in_text(&body);
        if !title.is_empty() {
            error.name = Some(title);
        }
    }
    if error.code.is_some() || matches!(status, 500..=599) {
        Some(EdgePage::Error(error))
    } else {
        None
    }
}

/// Most nesting of elements a page may have to be parsed as HTML. html5ever's tree
/// building is quadratic in nesting; real sign-in and error pages nest a few dozen deep.
pub const MAX_HTML_DEPTH: usize = 256;
/// Most tags a page may have to be parsed as HTML.
pub const MAX_HTML_TAGS: usize = 20_000;

/// Whether `body` is cheap enough to parse as HTML: one linear pass estimates its
/// nesting depth and tag count, and pages over [`MAX_HTML_DEPTH`] or [`MAX_HTML_TAGS`]
/// are refused (their readers then find nothing, and say the page could not be read).
pub fn html_tractable(body: &str) -> bool {
    const VOID: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "!doctype", "!--",
    ];
    let bytes = body.as_bytes();
    let (mut depth, mut tags) = (0usize, 0usize);
    let mut i = 0;
    while let Some(offset) = bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|b| *b == b'<'))
    {
        i += offset + 1;
        match bytes.get(i) {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(c) if c.is_ascii_alphabetic() || *c == b'!' => {
                tags += 1;
                let name: String = bytes[i..]
                    .iter()
                    .take(9)
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'!' || **b == b'-')
                    .map(|b| b.to_ascii_lowercase() as char)
                    .collect();
                if !VOID.iter().any(|v| name.starts_with(v)) {
                    depth += 1;
                }
                if depth > MAX_HTML_DEPTH || tags > MAX_HTML_TAGS {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// The `<title>` of an HTML page, whitespace-collapsed.
pub fn html_title(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = lower[start..].find('>')? + start + 1;
    let end = lower[open_end..].find("</title>")? + open_end;
    let raw = body.get(open_end..end)?;
    Some(raw.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `error code: 1033` (plain text) or `<span class="cf-error-code">1033</span>` (HTML).
fn error_code_in_text(body: &str) -> Option<u32> {
    // The marker, then (past quotes, a tag's end, a colon or spaces) the digits.
    let digits_after = |marker: &str| {
        let i = body.find(marker)? + marker.len();
        let rest = body.get(i..)?;
        let skip = rest
            .char_indices()
            .take(40)
            .find(|(_, c)| c.is_ascii_digit())
            .map(|(at, _)| at)?;
        let n: String = rest
            .get(skip..)?
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .take(5)
            .collect();
        n.parse().ok()
    };
    digits_after("cf-error-code")
        .or_else(|| digits_after("error code"))
        .or_else(|| digits_after("Error code"))
}

/// The documented text of an Access error page that `body` carries, if any.
fn known_access_error(body: &str) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        "Failed to exchange code for token",
        "Failed to verify oidc token with fresh keys",
        "Failed to fetch user/group information from the identity provider",
        "That account does not have access",
        "Invalid login session",
        "Invalid session",
    ];
    KNOWN.iter().find(|k| body.contains(*k)).copied()
}

/// The message of an Access error page: the known texts first, else its first heading.
fn access_error_message(body: &str) -> Option<String> {
    if let Some(k) = known_access_error(body) {
        return Some(k.to_string());
    }
    if !html_tractable(body) {
        return None;
    }
    let doc = scraper::Html::parse_document(body);
    let selector = scraper::Selector::parse("h1, h2").ok()?;
    doc.select(&selector)
        .map(|h| h.text().collect::<String>().trim().to_string())
        .find(|t| !t.is_empty())
}

/// The Ray ID of a response the edge answered, in one form wherever it came from: the
/// 16 hex digits Cloudflare support asks for, without the data-centre suffix of the
/// `cf-ray` header (`8d3a1b2c4e5f6a7b-LHR` → `8d3a1b2c4e5f6a7b`).
pub fn ray_id(response: &Response) -> Option<String> {
    response.header("cf-ray").and_then(normalise_ray)
}

/// `raw` as a Ray ID (see [`ray_id`]), or `None` when it is not one.
pub fn normalise_ray(raw: &str) -> Option<String> {
    let id = raw.trim().split('-').next().unwrap_or_default();
    (!id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_error_codes_in_text_and_html() {
        assert_eq!(error_code_in_text("error code: 1033"), Some(1033));
        assert_eq!(
            error_code_in_text("<span class=\"cf-error-code\">1016</span>"),
            Some(1016)
        );
        assert_eq!(error_code_in_text("all good"), None);
    }

    fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Response {
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, v.parse().unwrap());
        }
        Response {
            url: url::Url::parse("https://service.example.com/").unwrap(),
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.as_bytes().to_vec(),
            elapsed: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn access_refusals_are_known_by_status_and_headers() {
        // Whatever the page says, and in whatever case the headers come.
        for body in [
            "<title>Error ・ Cloudflare Access</title>",
            "<h1>Nope</h1>",
            "",
        ] {
            let r = answer(403, &[("CF-Access-Domain", "service.example.com")], body);
            assert_eq!(classify(&r), Some(EdgePage::AccessForbidden), "{body}");
        }
        let oauth = answer(
            401,
            &[(
                "WWW-Authenticate",
                r#"bearer realm="OAuth", error="invalid_token", resource_metadata="https://x/.well-known/cloudflare-access-protected-resource/""#,
            )],
            r#"{"error":"invalid_token"}"#,
        );
        assert_eq!(classify(&oauth), Some(EdgePage::ManagedOAuth));
    }

    #[test]
    fn access_pages_are_known_by_the_documented_texts_not_the_markup() {
        let sign_in = answer(
            200,
            &[],
            "<html><title>Example Corp · Cloudflare Access</title>",
        );
        assert_eq!(classify(&sign_in), Some(EdgePage::AccessSignIn));
        let error = answer(
            200,
            &[],
            "<title>Example Corp ・ Cloudflare Access</title><p>OIDC ERROR: Failed to exchange code for token.</p>",
        );
        assert_eq!(
            classify(&error),
            Some(EdgePage::AccessError(Some(
                "Failed to exchange code for token".into()
            )))
        );
    }

    #[test]
    fn error_codes_in_other_markup() {
        assert_eq!(
            error_code_in_text("<span class='cf-error-code'>1033</span>"),
            Some(1033)
        );
        assert_eq!(
            error_code_in_text("<div data-x class=\"cf-error-code big\">\n 1016\n</div>"),
            Some(1016)
        );
        assert_eq!(error_code_in_text("Error code: 530"), Some(530));
    }

    proptest::proptest! {
        #[test]
        fn page_readers_never_panic_on_any_text(body in "\\PC{0,400}") {
            let _ = html_title(&body);
            let _ = error_code_in_text(&body);
            let _ = access_error_message(&body);
            let _ = normalise_ray(&body);
            for status in [200u16, 403, 401, 502, 530] {
                let _ = classify(&answer(status, &[("server", "cloudflare")], &body));
            }
        }

        #[test]
        fn titles_found_in_any_markup_are_whole(prefix in "\\PC{0,40}", title in "[^<>]{0,40}") {
            let body = format!("{prefix}<title>{title}</title>");
            if !prefix.to_ascii_lowercase().contains("<title") {
                let want = title.split_whitespace().collect::<Vec<_>>().join(" ");
                proptest::prop_assert_eq!(html_title(&body), Some(want));
            }
        }
    }

    #[test]
    fn deep_or_huge_pages_are_not_parsed() {
        let deep = "<div>".repeat(80_000);
        assert!(!html_tractable(&deep));
        assert_eq!(access_error_message(&format!("<h1>x</h1>{deep}")), None);
        let many = "<p>a</p>".repeat(MAX_HTML_TAGS + 1);
        assert!(!html_tractable(&many));
        // Real pages pass.
        for page in [
            include_str!("../../fixtures/cloudflare/access-sign-in.html"),
            include_str!("../../fixtures/cloudflare/1033.html"),
            include_str!("../../fixtures/cloudflare/502.html"),
            include_str!("../../fixtures/cloudflare/access-error.html"),
        ] {
            assert!(html_tractable(page));
        }
    }

    #[test]
    fn ray_ids_have_one_form() {
        assert_eq!(
            normalise_ray("8D3A1B2C4E5F6A7B-LHR").as_deref(),
            Some("8d3a1b2c4e5f6a7b")
        );
        assert_eq!(
            normalise_ray(" 8d3a1b2c4e5f6a7b ").as_deref(),
            Some("8d3a1b2c4e5f6a7b")
        );
        assert_eq!(normalise_ray("<script>"), None);
        assert_eq!(normalise_ray(""), None);
    }

    #[test]
    fn title_is_collapsed() {
        assert_eq!(
            html_title("<html><head><TITLE>\n Sign in ・ Cloudflare Access\n</TITLE>").as_deref(),
            Some("Sign in ・ Cloudflare Access")
        );
    }
}
