//! The Access login redirect: the team domain and AUD it carries, and the callback
//! every identity provider sends back to.

use url::Url;

/// The suffix of every Access team domain.
pub const TEAM_SUFFIX: &str = ".cloudflareaccess.com";

/// An Access login URL: `https://TEAM.cloudflareaccess.com/cdn-cgi/access/login/HOST?kid=AUD&redirect_url=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogin {
    /// The whole URL, to be requested next.
    pub url: Url,
    /// `TEAM.cloudflareaccess.com`.
    pub team_domain: String,
    /// `TEAM`.
    pub team: String,
    /// The application hostname in the path.
    pub app_host: String,
    /// The application AUD tag (`kid`).
    pub aud: Option<String>,
    /// The original path and query the login returns to.
    pub redirect_url: Option<String>,
    /// Whether the signed `meta` JWT was present.
    pub has_meta: bool,
    /// Whether the site sends only a browser here (Access's Managed OAuth answers
    /// other clients 401): the login's requests to Access and to the site go on shaped
    /// like a browser's. Not in the URL: `false` until the check that followed the
    /// site's redirect says so.
    pub as_browser: bool,
}

/// Parses an Access login URL; `None` when `url` is not one.
pub fn parse_login_url(url: &Url) -> Option<AccessLogin> {
    let host = url.host_str()?.to_ascii_lowercase();
    let team = host.strip_suffix(TEAM_SUFFIX)?.to_string();
    let app_host = url
        .path()
        .strip_prefix("/cdn-cgi/access/login/")?
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let mut aud = None;
    let mut redirect_url = None;
    let mut has_meta = false;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "kid" => aud = Some(v.into_owned()),
            "redirect_url" => redirect_url = Some(v.into_owned()),
            "meta" => has_meta = true,
            _ => {}
        }
    }
    Some(AccessLogin {
        url: url.clone(),
        team_domain: host,
        team,
        app_host,
        aud,
        redirect_url,
        has_meta,
        as_browser: false,
    })
}

/// Whether `aud` looks like an Access application audience tag (64 lowercase hex).
pub fn is_aud(aud: &str) -> bool {
    aud.len() == 64
        && aud
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The callback URL Access uses with every identity provider of team `team_domain`.
pub fn callback_url(team_domain: &str) -> String {
    format!("https://{team_domain}/cdn-cgi/access/callback")
}

/// Normalises `--team`: `xyz` or `xyz.cloudflareaccess.com` → `xyz.cloudflareaccess.com`.
pub fn team_domain(team: &str) -> String {
    let t = team.trim().trim_end_matches('/').to_ascii_lowercase();
    let t = t.strip_prefix("https://").unwrap_or(&t).to_string();
    if t.ends_with(TEAM_SUFFIX) {
        t
    } else {
        format!("{t}{TEAM_SUFFIX}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_login_url() {
        let u = Url::parse("https://xyz.cloudflareaccess.com/cdn-cgi/access/login/service.example.com?kid=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef&redirect_url=%2Fadmin%2F&meta=eyJ").unwrap();
        let l = parse_login_url(&u).unwrap();
        assert_eq!(l.team, "xyz");
        assert_eq!(l.team_domain, "xyz.cloudflareaccess.com");
        assert_eq!(l.app_host, "service.example.com");
        assert!(is_aud(l.aud.as_deref().unwrap()));
        assert_eq!(l.redirect_url.as_deref(), Some("/admin/"));
        assert!(l.has_meta);
    }

    #[test]
    fn other_urls_are_not_login_urls() {
        for u in [
            "https://xyz.cloudflareaccess.com/cdn-cgi/access/callback",
            "https://evil.example.com/cdn-cgi/access/login/service.example.com",
            "https://cloudflareaccess.com.evil.example/cdn-cgi/access/login/x",
        ] {
            assert!(parse_login_url(&Url::parse(u).unwrap()).is_none(), "{u}");
        }
    }

    #[test]
    fn team_domain_accepts_both_forms() {
        assert_eq!(team_domain("xyz"), "xyz.cloudflareaccess.com");
        assert_eq!(
            team_domain("XYZ.cloudflareaccess.com"),
            "xyz.cloudflareaccess.com"
        );
        assert_eq!(
            team_domain("https://xyz.cloudflareaccess.com/"),
            "xyz.cloudflareaccess.com"
        );
    }
}
