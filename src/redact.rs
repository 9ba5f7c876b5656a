//! Keeping secrets out of output.
//!
//! Codes, tokens, `state`, cookie values and keys never reach a report, a trace or an
//! error message. A secret is shown, where anything must be shown, as a short
//! fingerprint so that two hops carrying the same value can still be matched up.

use sha2::{Digest, Sha256};
use std::fmt;
use url::Url;

/// A secret value whose `Debug` and `Display` print only a fingerprint. It serializes
/// as itself: only the credential file stores one.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value, and remembers it so that a server that echoes it back (an
    /// `error_description` reflecting the client secret) cannot get it printed.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        remember(&value);
        Secret(value)
    }

    /// A value sent the way secrets are (a request header whose value is never traced)
    /// but that is no secret itself, so server text quoting it is left alone: a
    /// User-Agent, say.
    pub fn unlisted(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fingerprint(&self.0))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fingerprint(&self.0))
    }
}

/// `[redacted:1a2b3c]`: the first 6 hex digits of the value's SHA-256.
pub fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    format!(
        "[redacted:{:02x}{:02x}{:02x}]",
        digest[0], digest[1], digest[2]
    )
}

/// Query parameters whose values are secrets or one-time capabilities.
const SECRET_PARAMS: &[&str] = &[
    "code",
    "state",
    "code_verifier",
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "client_secret",
    "meta",
    "nonce",
    "interaction",
    "session_state",
    "authorization",
    "__cf_chl_f_tk",
    "__cf_chl_tk",
];

/// Whether a query parameter's value must not be shown.
pub fn is_secret_param(name: &str) -> bool {
    SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// Path segments whose next segment is a secret or a capability: one-time login codes,
/// login links, interaction ids.
const SECRET_AFTER_SEGMENTS: &[&str] = &["one-time-access-token", "lc", "interactions"];

/// A URL fit for output: secret query values, secret path segments and any user-info
/// replaced by fingerprints.
pub fn url(url: &Url) -> String {
    shown(url, is_secret_param)
}

/// [`url`] with the query values that `secret` names fingerprinted.
fn shown(url: &Url, secret: fn(&str) -> bool) -> String {
    let mut shown = url.clone();
    if let Some(segments) = url.path_segments() {
        let segments: Vec<&str> = segments.collect();
        let mut out = Vec::with_capacity(segments.len());
        let mut secret_next = false;
        for seg in &segments {
            if secret_next && !seg.is_empty() {
                out.push(fingerprint(seg));
            } else {
                out.push((*seg).to_string());
            }
            secret_next = SECRET_AFTER_SEGMENTS.contains(seg);
        }
        if out.iter().zip(&segments).any(|(a, b)| a != b) {
            shown.set_path(&format!("/{}", out.join("/")));
        }
    }
    if !shown.username().is_empty() || shown.password().is_some() {
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
    }
    if shown.query().is_some() {
        // Built by hand so that the fingerprint stays readable (not percent-encoded).
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let query: Vec<String> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) { fingerprint(&v) } else { enc(&v) };
                format!("{}={v}", enc(&k))
            })
            .collect();
        shown.set_query(Some(&query.join("&")));
    }
    if let Some(fragment) = url.fragment() {
        // Implicit-flow responses put tokens in the fragment.
        shown.set_fragment(Some(&fingerprint(fragment)));
    }
    shown.to_string()
}

/// A `Location` value (absolute or relative) fit for output.
pub fn location(base: &Url, value: &str) -> String {
    match base.join(value) {
        Ok(resolved) => url(&resolved),
        Err(_) => "[unparsable Location]".to_string(),
    }
}

/// A URL the user configured, as reports show it: like [`url`], and every query value
/// fingerprinted too — a monitored URL may carry an access key under any name.
pub fn configured_url(configured: &Url) -> String {
    shown(configured, |_| true)
}

/// Secret values of this process, for [`scrub`]: the newest [`REMEMBERED`], each at
/// least [`SCRUB_MIN`] long (shorter ones would blot out ordinary words).
static SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
const REMEMBERED: usize = 256;
const SCRUB_MIN: usize = 8;

fn remember(value: &str) {
    if value.len() < SCRUB_MIN {
        return;
    }
    if let Ok(mut secrets) = SECRETS.lock()
        && !secrets.iter().any(|s| s == value)
    {
        if secrets.len() >= REMEMBERED {
            secrets.remove(0);
        }
        secrets.push(value.to_string());
    }
}

/// `text` with every secret value of this process replaced by its fingerprint: for
/// server-supplied text that may echo one.
pub fn scrub(text: &str) -> String {
    let Ok(secrets) = SECRETS.lock() else {
        return text.to_string();
    };
    let mut out = text.to_string();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), &fingerprint(secret));
        }
    }
    out
}

/// `text` made safe to print on a terminal: line breaks and tabs become spaces, other
/// control characters and the bidirectional overrides (which can disguise text) become
/// U+FFFD. Servers put text into findings; none of it may steer the user's terminal.
pub fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{fffd}',
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// Multi-line `text` made safe to print: each line by [`terminal_safe`], the line
/// breaks kept.
pub fn terminal_safe_lines(text: &str) -> String {
    text.split('\n')
        .map(terminal_safe)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn terminal_safe_leaves_no_control_character(text in "\\PC*|[\\x00-\\x1f\\x7f\u{202a}-\u{202e}]*") {
            let safe = terminal_safe(&text);
            let steering = |c: char| {
                c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            };
            let clean = !safe.chars().any(steering);
            proptest::prop_assert!(clean);
            proptest::prop_assert_eq!(safe.chars().count(), text.chars().count());
        }

        #[test]
        fn fingerprints_and_urls_never_panic(text in "\\PC{0,200}") {
            let _ = fingerprint(&text);
            if let Ok(u) = Url::parse(&format!("https://h.example/{text}")) {
                let _ = url(&u);
            }
            let base = Url::parse("https://h.example/a/b").unwrap();
            let _ = location(&base, &text);
        }
    }

    #[test]
    fn configured_urls_hide_every_query_value() {
        let u = Url::parse("https://user:pw@site.example.com/app?key=abc123&token=t&x=1").unwrap();
        let shown = configured_url(&u);
        assert!(
            !shown.contains("abc123") && !shown.contains("pw"),
            "{shown}"
        );
        assert!(
            shown.starts_with("https://site.example.com/app?key=[redacted:"),
            "{shown}"
        );
    }

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let secret = Secret::new("s3cr3t-client-secret-value");
        let echoed = format!("invalid_client: the secret {} is wrong", secret.expose());
        let scrubbed = scrub(&echoed);
        assert!(!scrubbed.contains(secret.expose()), "{scrubbed}");
        assert!(scrubbed.contains("[redacted:"), "{scrubbed}");
        assert_eq!(scrub("short ab"), "short ab");
    }

    #[test]
    fn terminal_safe_neutralises_control_characters() {
        assert_eq!(
            terminal_safe("a\u{1b}[31mred\nnext\u{202e}x\u{7f}"),
            "a\u{fffd}[31mred next\u{fffd}x\u{fffd}"
        );
        assert_eq!(
            terminal_safe("Sign in ・ Cloudflare Access"),
            "Sign in ・ Cloudflare Access"
        );
    }

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("hunter2-very-secret");
        assert!(!format!("{s} {s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn url_redacts_secret_params_and_keeps_the_rest() {
        let u = Url::parse(
            "https://id.example.com/authorize?client_id=abc&state=s3cr3tstate&code=c0de&scope=openid+email",
        )
        .unwrap();
        let shown = url(&u);
        assert!(shown.contains("client_id=abc"), "{shown}");
        assert!(shown.contains("scope=openid+email"), "{shown}");
        assert!(
            !shown.contains("s3cr3tstate") && !shown.contains("c0de"),
            "{shown}"
        );
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn url_redacts_codes_in_paths() {
        let u = Url::parse("https://id.example.com/api/one-time-access-token/5HAHEj").unwrap();
        assert!(!url(&u).contains("5HAHEj"), "{}", url(&u));
        let u =
            Url::parse("https://id.example.com/api/oidc/interactions/abc-123/complete").unwrap();
        let shown = url(&u);
        assert!(
            !shown.contains("abc-123") && shown.ends_with("/complete"),
            "{shown}"
        );
        let u = Url::parse("https://id.example.com/api/users/me").unwrap();
        assert_eq!(url(&u), "https://id.example.com/api/users/me");
    }

    #[test]
    fn url_drops_userinfo_and_fragment_tokens() {
        let u = Url::parse("https://user:pw@x.example/cb#access_token=tok123").unwrap();
        let shown = url(&u);
        assert!(
            !shown.contains("pw@") && !shown.contains("tok123"),
            "{shown}"
        );
    }

    #[test]
    fn relative_location_is_resolved_then_redacted() {
        let base = Url::parse("https://id.example.com/authorize").unwrap();
        let shown = location(&base, "/interaction?interaction=1234-abcd");
        assert!(shown.starts_with("https://id.example.com/interaction?interaction=[redacted:"));
    }
}
