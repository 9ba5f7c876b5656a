//! `--ping-url`: a Healthchecks-style dead-man's switch. `URL/start` before the run,
//! then `URL` on success or `URL/<exit code>` otherwise, with the human report (at most
//! 10 kB) as the body. A failed ping is reported on stderr and never changes the result.
//! The URL is a capability (anyone holding it can report for the check), so it is never
//! printed or traced.

use crate::config::ConfigError;
use crate::http::{Accept, Body, Http, Request};
use reqwest::Method;
use url::Url;

/// Most bytes of report sent with a ping (Healthchecks' default body limit).
pub const BODY_LIMIT: usize = 10_000;

/// A validated ping URL.
pub struct PingUrl(Url);

impl PingUrl {
    /// Parses `--ping-url`.
    pub fn parse(value: &str) -> Result<PingUrl, ConfigError> {
        PingUrl::parse_as(value, "--ping-url")
    }

    /// Parses the ping URL given as `setting` ("--ping-url" or "SSOPROBE_PING_URL"),
    /// which an error names.
    pub fn parse_as(value: &str, setting: &str) -> Result<PingUrl, ConfigError> {
        let url = Url::parse(value.trim()).map_err(|e| ConfigError {
            setting: setting.into(),
            problem: format!("not a URL ({e}); give the check's ping URL, e.g. https://hc-ping.example.com/<uuid>"),
        })?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(ConfigError {
                setting: setting.into(),
                problem: "must be an http(s) URL with a host".into(),
            });
        }
        Ok(PingUrl(url))
    }

    fn with_suffix(&self, suffix: &str) -> Url {
        let mut url = self.0.clone();
        let path = format!("{}/{suffix}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    }

    /// Signals the start of a run.
    pub async fn start(&self, http: &Http) {
        self.send(http, self.with_suffix("start"), String::new(), "start")
            .await;
    }

    /// Signals the end of a run with its exit code and report.
    pub async fn finish(&self, http: &Http, code: u8, report: &str) {
        let url = if code == 0 {
            self.0.clone()
        } else {
            self.with_suffix(&code.to_string())
        };
        self.send(http, url, truncate(report, BODY_LIMIT), "result")
            .await;
    }

    async fn send(&self, http: &Http, url: Url, body: String, what: &str) {
        let mut request = Request::get(url, Accept::Json);
        request.method = Method::POST;
        request.body = Body::Text(body);
        match http.send("ping", request).await {
            Ok(r) if r.status.is_success() => {}
            Ok(r) => eprintln!(
                "warning: the {what} ping was answered with HTTP {}",
                r.status.as_u16()
            ),
            Err(e) => eprintln!("warning: the {what} ping failed: {e}"),
        }
    }
}

/// At most `limit` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn truncate_cuts_any_text_at_a_character_boundary(text in "\\PC*", limit in 0usize..64) {
            let cut = truncate(&text, limit);
            proptest::prop_assert!(cut.len() <= limit.max(text.len().min(limit)));
            proptest::prop_assert!(text.starts_with(&cut));
        }
    }

    #[test]
    fn suffixes_and_truncation() {
        let p = PingUrl::parse("https://hc.example.com/ping/abc/").unwrap();
        assert_eq!(
            p.with_suffix("start").as_str(),
            "https://hc.example.com/ping/abc/start"
        );
        assert_eq!(
            p.with_suffix("2").as_str(),
            "https://hc.example.com/ping/abc/2"
        );
        assert!(PingUrl::parse("ftp://x").is_err());
        assert!(PingUrl::parse("not a url").is_err());
        let long = "é".repeat(6000);
        let t = truncate(&long, BODY_LIMIT);
        assert!(t.len() <= BODY_LIMIT && t.is_char_boundary(t.len()));
    }
}
