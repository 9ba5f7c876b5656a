//! Pocket ID's admin and session API (`/api/...`): its error shape, users, and a small
//! client that carries either the admin API key or a login session, with paginated
//! lists read to their end or refused.

use crate::http::{Http, HttpError, Request, Response};
use crate::redact::Secret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

/// Items asked for per page of a list.
pub const PAGE_LIMIT: u64 = 100;
/// A list longer than this many pages is not read further (and not used).
pub const MAX_PAGES: u64 = 100;

/// An error answer of Pocket ID's JSON API: `{"error":…,"code":…}` (v2.13+), or any
/// other failure to get the expected answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The request did not complete.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A secret (the admin API key) would have been sent without TLS; nothing was sent.
    #[error(
        "refused to send the admin API key to {url}: it is not https, and the key would travel in clear"
    )]
    Insecure {
        /// Where it would have gone.
        url: String,
    },
    /// A request path would have been built from something that is not an id.
    #[error("{0}")]
    BadPath(String),
    /// A list had more pages than ssoprobe reads: what was read is not used.
    #[error("a list longer than ssoprobe reads ({MAX_PAGES} pages of {}, {PAGE_LIMIT} per page)", total.map_or_else(|| "more".to_string(), |t| t.to_string()))]
    Truncated {
        /// Pages in all, as Pocket ID said (`None`: it did not say).
        total: Option<u64>,
    },
    /// Pocket ID answered an error.
    #[error("HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Answer {
        /// HTTP status.
        status: u16,
        /// Pocket ID's stable error code (`rate_limited`, `user_disabled`, …).
        code: Option<String>,
        /// Its message (or the start of a non-JSON body).
        message: String,
        /// `Retry-After`, on 429.
        retry_after: Option<String>,
    },
}

impl ApiError {
    /// Pocket ID's error code, if it answered one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Answer { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The `Retry-After` value of a 429, as sent.
    pub fn retry_after(&self) -> Option<&str> {
        match self {
            ApiError::Answer { retry_after, .. } => retry_after.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status, if there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Answer { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The fields of Pocket ID's UserDto that ssoprobe uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// UUID.
    pub id: String,
    /// Username.
    pub username: String,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Disabled users cannot log in.
    #[serde(default)]
    pub disabled: bool,
    /// Whether the e-mail address is verified (oauth2-proxy refuses unverified ones).
    #[serde(default)]
    pub email_verified: Option<bool>,
}

/// A client of Pocket ID's API for one check (or command), sharing the run's client.
pub struct Api<'a> {
    http: &'a Http,
    base: Url,
    label: &'a str,
    api_key: Option<Secret>,
}

impl<'a> Api<'a> {
    /// A client for Pocket ID at `base`, tracing as `label`.
    pub fn new(http: &'a Http, base: &Url, label: &'a str) -> Api<'a> {
        Api {
            http,
            base: base.clone(),
            label,
            api_key: None,
        }
    }

    /// Authenticates admin calls with `X-API-Key`.
    pub fn with_api_key(mut self, key: Secret) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Resolves `path` (absolute path, possibly with a query) against Pocket ID's URL.
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    /// Pocket ID's URL with the path `segments`, each percent-encoded as one segment
    /// (a `/`, `?` or `#` inside one stays inside it). Empty, `.` and `..` segments are
    /// refused: they would change the path's meaning.
    pub fn endpoint(&self, segments: &[&str]) -> Result<Url, ApiError> {
        endpoint(&self.base, segments)
    }

    /// Sends a JSON request; returns the response on 2xx, else Pocket ID's error.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        admin: bool,
    ) -> Result<Response, ApiError> {
        self.call_url(method, self.url(path), body, admin).await
    }

    /// [`Api::call`] to a URL built with [`Api::endpoint`]. An admin call never sends
    /// the API key but over https.
    pub async fn call_url(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<serde_json::Value>,
        admin: bool,
    ) -> Result<Response, ApiError> {
        let key = match &self.api_key {
            Some(key) if admin => {
                if url.scheme() != "https" {
                    return Err(ApiError::Insecure {
                        url: url.origin().ascii_serialization(),
                    });
                }
                Some(key)
            }
            _ => None,
        };
        let mut request = Request::json(method, url, body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = self.http.send(self.label, request).await?;
        if response.status.is_success() {
            return Ok(response);
        }
        Err(answer_error(&response))
    }

    /// Calls and parses the JSON answer.
    pub async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        admin: bool,
    ) -> Result<T, ApiError> {
        self.call_json_url(method, self.url(path), body, admin)
            .await
    }

    /// [`Api::call_json`] to a URL built with [`Api::endpoint`].
    pub async fn call_json_url<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<serde_json::Value>,
        admin: bool,
    ) -> Result<T, ApiError> {
        let path = url.path().to_string();
        let response = self.call_url(method, url, body, admin).await?;
        serde_json::from_slice(&response.body).map_err(|e| ApiError::Answer {
            status: response.status.as_u16(),
            code: None,
            message: format!(
                "unexpected answer from {path}: {}",
                crate::text::json_problem(&e)
            ),
            retry_after: None,
        })
    }

    /// GETs a JSON document of the admin API at `segments` (see [`Api::endpoint`])
    /// with `query`.
    pub async fn admin_get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let mut url = self.endpoint(segments)?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        self.call_json_url(reqwest::Method::GET, url, None, true)
            .await
    }

    /// Every item of a paginated admin list (`pagination[page]`, `pagination[limit]`),
    /// page by page until `totalPages`, an empty page, or the same page again (a page
    /// past the end is the last page again). Rule: a list read only in part is never
    /// returned as the list — past [`MAX_PAGES`] it is [`ApiError::Truncated`], so that
    /// nothing passes, or is called missing, on part of a list.
    pub async fn admin_list<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Vec<T>, ApiError> {
        let mut all = Vec::new();
        let mut previous: Option<Vec<serde_json::Value>> = None;
        let mut total = None;
        for page in 1..=MAX_PAGES {
            let mut q = query.to_vec();
            q.push(("pagination[page]", page.to_string()));
            q.push(("pagination[limit]", PAGE_LIMIT.to_string()));
            let got: Page = self.admin_get(segments, &q).await?;
            total = got.pagination.and_then(|p| p.total_pages);
            if got.data.is_empty() || previous.as_ref() == Some(&got.data) {
                return Ok(all);
            }
            // A list that says it is longer than ssoprobe reads is cut whatever the
            // pages in between say: asking for them would only cost requests.
            if total.is_some_and(|t| t > MAX_PAGES) {
                return Err(ApiError::Truncated { total });
            }
            for item in &got.data {
                all.push(T::deserialize(item).map_err(|e| ApiError::Answer {
                    status: 200,
                    code: None,
                    message: format!(
                        "unexpected answer from /{}: {}",
                        segments.join("/"),
                        crate::text::json_problem(&e)
                    ),
                    retry_after: None,
                })?);
            }
            // Without totalPages, a short page is the last.
            let last = match total {
                Some(t) => page >= t,
                None => (got.data.len() as u64) < PAGE_LIMIT,
            };
            if last {
                return Ok(all);
            }
            previous = Some(got.data);
        }
        Err(ApiError::Truncated { total })
    }

    /// `GET /api/webauthn/login/start`: the request options (bare, as Pocket ID sends them).
    pub async fn login_start(&self) -> Result<serde_json::Value, ApiError> {
        self.call_json(
            reqwest::Method::GET,
            "/api/webauthn/login/start",
            None,
            false,
        )
        .await
    }

    /// `POST /api/webauthn/login/finish`: the session cookie lands in the run's jar.
    pub async fn login_finish(&self, assertion: serde_json::Value) -> Result<User, ApiError> {
        self.call_json(
            reqwest::Method::POST,
            "/api/webauthn/login/finish",
            Some(assertion),
            false,
        )
        .await
    }
}

/// Pocket ID's list envelope: one page of items and where it is.
#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<serde_json::Value>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

/// Pocket ID's pagination object.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pagination {
    /// Pages in all.
    #[serde(default)]
    total_pages: Option<u64>,
}

/// `base` with the path `segments`, see [`Api::endpoint`].
pub fn endpoint(base: &Url, segments: &[&str]) -> Result<Url, ApiError> {
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        // The segment is not shown: it may come from a file or an answer.
        return Err(ApiError::BadPath(
            "refusing to build a Pocket ID API path with an empty, '.' or '..' segment".into(),
        ));
    }
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|_| ApiError::BadPath(format!("{base} cannot have a path")))?
        .clear()
        .extend(segments);
    Ok(url)
}

/// Pocket ID's error envelope (or what stands in for it) from a non-2xx response.
pub fn answer_error(response: &Response) -> ApiError {
    let status = response.status.as_u16();
    let retry_after = response.header("retry-after").map(str::to_string);
    // Pocket ID's errors carry `error`; other JSON (the edge's own) is read below.
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&response.body)
        .ok()
        .filter(|v: &serde_json::Value| v.get("error").is_some());
    let (code, message) = match &parsed {
        Some(v) => (
            v.get("code").and_then(|c| c.as_str()).map(str::to_string),
            v.get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("no message")
                .to_string(),
        ),
        None => match crate::cloudflare::classify(response) {
            // The edge answered for Pocket ID: say so, not its markup.
            Some(crate::cloudflare::EdgePage::Error(e)) => (None, e.label()),
            Some(crate::cloudflare::EdgePage::Challenge) => {
                (None, "a Cloudflare challenge page".to_string())
            }
            _ => match crate::cloudflare::html_title(&response.text()) {
                Some(title) => (None, format!("a page titled \"{title}\"")),
                None => {
                    let text: String = response.text().chars().take(120).collect();
                    (None, text.split_whitespace().collect::<Vec<_>>().join(" "))
                }
            },
        },
    };
    let message = crate::redact::terminal_safe(&message);
    ApiError::Answer {
        status,
        code,
        message,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_escape_each_segment_and_refuse_dot_segments() {
        let base = Url::parse("https://id.example.com/").unwrap();
        let u = endpoint(
            &base,
            &["api", "users", "a/../b?c#d", "webauthn-credentials"],
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://id.example.com/api/users/a%2F..%2Fb%3Fc%23d/webauthn-credentials"
        );
        for bad in ["..", ".", ""] {
            assert!(
                endpoint(&base, &["api", "users", bad, "x"]).is_err(),
                "{bad:?}"
            );
        }
    }
}
