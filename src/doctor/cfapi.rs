//! A read-only client of Cloudflare's API v4: GET only (there is no way to send
//! anything else through it), the `{success, errors, result, result_info}` envelope,
//! page-by-page lists followed to the end, `429` with `Retry-After` honoured a bounded
//! number of times, and every error mapped to what the operator must do — the
//! permission to add to the token, the account id to fix.

use crate::http::{Accept, Http, HttpError, Request, Response};
use crate::redact::Secret;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// The most items asked for per page (the smallest maximum among the lists read).
const PER_PAGE: u32 = 50;
/// A list longer than this many pages is not followed further.
const MAX_PAGES: u32 = 100;
/// The most times one request is repeated after a `429`.
const MAX_RETRIES: u32 = 2;
/// The longest `Retry-After` waited for; a longer one ends the request.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// The token permissions the endpoints need (the names the dashboard shows under
/// My Profile → API Tokens → Create Token → Custom token).
pub mod perm {
    /// Access applications and their policies.
    pub const APPS: &str = "Account → Access: Apps and Policies → Read";
    /// The Zero Trust organization, login methods and Access groups.
    pub const ORG: &str = "Account → Access: Organizations, Identity Providers, and Groups → Read";
    /// Tunnels, their connections and configuration.
    pub const TUNNEL: &str = "Account → Cloudflare Tunnel → Read";
    /// Zones.
    pub const ZONE: &str = "Zone → Zone → Read";
    /// DNS records.
    pub const DNS: &str = "Zone → DNS → Read";
    /// Bot Fight Mode.
    pub const BOTS: &str = "Zone → Bot Management → Read";
    /// Listing the token's accounts (a user-owned token needs none).
    pub const NONE: &str = "";
    /// Every Read permission the doctor uses, as the token's template lists them.
    pub const ALL: &str = "Account → Access: Apps and Policies → Read; Account → Access: Organizations, Identity Providers, and Groups → Read; Account → Cloudflare Tunnel → Read; Zone → Zone → Read; Zone → DNS → Read; Zone → Bot Management → Read";
}

/// Why an API read failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CfError {
    /// No answer.
    #[error("{0}")]
    Http(#[from] HttpError),
    /// The token is valid but lacks the permission (403, code 10000).
    #[error("the API token may not read {what} (HTTP 403, code 10000 \"Authentication error\")")]
    Denied {
        /// What was being read.
        what: String,
        /// The permission to add.
        permission: &'static str,
    },
    /// The API does not offer the route to this token: 404 for a route (not an Access
    /// object that does not exist), or 403 with another code than a missing permission
    /// or a refused token (a plan without the feature).
    #[error("Cloudflare's API does not offer {what} to this token (HTTP {status}{}: {message})", code.map(|c| format!(", code {c}")).unwrap_or_default())]
    Unavailable {
        /// What was being read.
        what: String,
        /// HTTP status.
        status: u16,
        /// Cloudflare's error code.
        code: Option<i64>,
        /// Its message.
        message: String,
        /// The permission the read needs.
        permission: &'static str,
    },
    /// The token's account is not known and cannot be found from the token (it cannot
    /// list accounts, or lists none or several): `--cf-account-id` must name it.
    #[error("{problem}")]
    AccountUnknown {
        /// What the account list showed.
        problem: String,
    },
    /// The token was refused altogether (unknown, revoked, expired, malformed).
    #[error("Cloudflare refused the token (HTTP {status}{}: {message})", code.map(|c| format!(", code {c}")).unwrap_or_default())]
    BadToken {
        /// HTTP status.
        status: u16,
        /// Cloudflare's error code.
        code: Option<i64>,
        /// Its message.
        message: String,
    },
    /// The account id does not route (code 7003/7000).
    #[error("Cloudflare does not know account {account} (HTTP {status}: {message})")]
    WrongAccount {
        /// The account id used.
        account: String,
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// Rate limited, and the wait is longer than allowed (or retried enough).
    #[error("Cloudflare's API rate limit was reached (HTTP 429{})", retry_after.as_ref().map(|r| format!(", Retry-After: {r}")).unwrap_or_default())]
    RateLimited {
        /// `Retry-After` as sent.
        retry_after: Option<String>,
    },
    /// Any other error answer.
    #[error("Cloudflare answered HTTP {status}{} for {what}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Answer {
        /// What was being read.
        what: String,
        /// HTTP status.
        status: u16,
        /// Cloudflare's error code.
        code: Option<i64>,
        /// Its message.
        message: String,
    },
    /// A list had more pages than ssoprobe reads: what was read is not used.
    #[error("Cloudflare's answer for {what} is a list longer than ssoprobe reads ({MAX_PAGES} pages of {}, {PER_PAGE} per page)", total.map_or_else(|| "more".to_string(), |t| t.to_string()))]
    Truncated {
        /// What was being read.
        what: String,
        /// Pages in all, as Cloudflare said (`None`: it did not say).
        total: Option<u64>,
    },
    /// A 2xx answer that is not the envelope, or whose `result` has another shape.
    #[error("Cloudflare's answer for {what} is {problem}")]
    Shape {
        /// What was being read.
        what: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl CfError {
    /// The fix, in the operator's terms.
    pub fn hint(&self) -> String {
        match self {
            CfError::Http(e) => e.hint(),
            CfError::Denied { permission, .. } => format!(
                "add the permission \"{permission}\" to the API token (dash.cloudflare.com → My Profile → API Tokens → Edit; for this account's resources), or use a token that has it"
            ),
            CfError::Unavailable { what, permission, .. } => format!(
                "give the API token \"{permission}\"; if it has it, the plan does not offer {what} through the API: look at it in the dashboard instead"
            ),
            CfError::AccountUnknown { .. } => "pass --cf-account-id with the id of the account that holds the site's Access application (32 hex digits, in the dashboard's URL and on the account's Overview page)".into(),
            CfError::BadToken { .. } => format!(
                "create a token (dash.cloudflare.com → My Profile → API Tokens → Create Token → Custom token) with the Read permissions ({}) and put it alone in --cf-api-token-file: this one is unknown, revoked, expired or not a token at all",
                perm::ALL
            ),
            CfError::WrongAccount { .. } => "copy the account id (32 hex digits) from the dashboard's URL or the account's Overview page into --cf-account-id, and check the token's Account Resources include it".into(),
            CfError::RateLimited { .. } => "the token or this address is over Cloudflare's API limit (1,200 requests per 5 minutes): wait for the Retry-After time, and look for another tool polling with the same token".into(),
            CfError::Answer { status, .. } if *status >= 500 => "Cloudflare's API is failing: check www.cloudflarestatus.com and try again later".into(),
            CfError::Answer { .. } => "run again with --trace to see the request and Cloudflare's answer".into(),
            CfError::Truncated { .. } => format!("ssoprobe reads at most {MAX_PAGES} pages of {PER_PAGE} entries of a list and never judges from part of one: delete the entries the account no longer needs, or check that --cf-api-url is Cloudflare's API v4"),
            CfError::Shape { .. } => "this is not Cloudflare's API v4: check --cf-api-url (the default is https://api.cloudflare.com/client/v4)".into(),
        }
    }
}

/// The envelope every endpoint answers.
#[derive(Debug, serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    errors: Vec<Value>,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ResultInfo {
    #[serde(default)]
    total_pages: Option<u64>,
    #[serde(default)]
    total_count: Option<u64>,
}

/// A client for one run.
pub struct CfApi<'a> {
    http: &'a Http,
    base: Url,
    auth: Secret,
    label: &'a str,
}

impl<'a> CfApi<'a> {
    /// A client of the API at `base` authenticating with `token`, tracing as `label`.
    pub fn new(http: &'a Http, base: &Url, token: &Secret, label: &'a str) -> CfApi<'a> {
        CfApi {
            http,
            base: base.clone(),
            auth: Secret::configured(format!("Bearer {}", token.expose())),
            label,
        }
    }

    /// The URL of `segments` below the API's base, each percent-encoded as one
    /// segment, with `query`.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, CfError> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut path = url.path_segments_mut().map_err(|_| CfError::Shape {
                what: "the API URL".into(),
                problem: "not a URL that can have a path".into(),
            })?;
            path.pop_if_empty();
            for s in segments {
                if s.is_empty() || *s == "." || *s == ".." {
                    return Err(CfError::Shape {
                        what: "an id in Cloudflare's answers".into(),
                        problem: "empty or a dot segment".into(),
                    });
                }
                path.push(s);
            }
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// GETs one object (`result` parsed as `T`). `what` names it in errors;
    /// `permission` is what the token needs for it.
    pub async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        what: &str,
        permission: &'static str,
    ) -> Result<T, CfError> {
        let url = self.url(segments, query)?;
        let envelope = self.fetch(url, what, permission).await?;
        parse_result(&envelope.result, what)
    }

    /// GETs every page of a list, in order. Rule: a list read only in part is never
    /// returned as the list — past [`MAX_PAGES`] it is [`CfError::Truncated`].
    pub async fn list<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        what: &str,
        permission: &'static str,
    ) -> Result<Vec<T>, CfError> {
        let mut all = Vec::new();
        let mut previous: Option<Vec<Value>> = None;
        let mut total = None;
        for page in 1..=MAX_PAGES {
            let mut q = query.to_vec();
            q.push(("page", page.to_string()));
            q.push(("per_page", PER_PAGE.to_string()));
            let url = self.url(segments, &q)?;
            let envelope = self.fetch(url, what, permission).await?;
            let items = match envelope.result {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                _ => {
                    return Err(CfError::Shape {
                        what: what.into(),
                        problem: "not a list".into(),
                    });
                }
            };
            // An empty page ends the list; so does the same page again (an endpoint
            // that does not paginate ignores `page`).
            if items.is_empty() || previous.as_ref() == Some(&items) {
                return Ok(all);
            }
            for item in &items {
                all.push(parse_result(item, what)?);
            }
            previous = Some(items);
            let info = envelope.result_info.unwrap_or_default();
            total = info.total_pages;
            let last_page = info.total_pages.is_some_and(|t| u64::from(page) >= t);
            let have_all = info.total_count.is_some_and(|t| all.len() as u64 >= t);
            if last_page || have_all {
                return Ok(all);
            }
        }
        Err(CfError::Truncated {
            what: what.into(),
            total,
        })
    }

    /// Sends the GET, repeating it after a `429` when `Retry-After` allows.
    async fn fetch(
        &self,
        url: Url,
        what: &str,
        permission: &'static str,
    ) -> Result<Envelope, CfError> {
        let mut retries = 0;
        loop {
            let request =
                Request::get(url.clone(), Accept::Json).header("authorization", &self.auth);
            let response = self.http.send(self.label, request).await?;
            if response.status.as_u16() == 429 {
                let retry_after = response.header("retry-after").map(str::to_string);
                let wait = retry_after
                    .as_deref()
                    .and_then(parse_retry_after)
                    .unwrap_or(Duration::from_secs(1));
                let room = self
                    .http
                    .deadline()
                    .saturating_duration_since(tokio::time::Instant::now());
                if retries >= MAX_RETRIES
                    || wait > MAX_RETRY_WAIT
                    || wait + self.http.timeout().min(room / 2) > room
                {
                    return Err(CfError::RateLimited { retry_after });
                }
                retries += 1;
                tokio::time::sleep(wait).await;
                continue;
            }
            return envelope_of(&response, what, permission, &url);
        }
    }
}

/// `Retry-After` in seconds (Cloudflare sends seconds; an HTTP date is not waited for).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `value` parsed as `T` (read in place: a page's items are kept to compare with the
/// next page).
fn parse_result<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T, CfError> {
    T::deserialize(value).map_err(|e| CfError::Shape {
        what: what.into(),
        problem: crate::text::json_problem(&e),
    })
}

/// The first error of the envelope: code and message (made printable).
fn first_error(errors: &[Value]) -> (Option<i64>, String) {
    let Some(first) = errors.first() else {
        return (None, "no error message".into());
    };
    let code = first.get("code").and_then(Value::as_i64);
    let message = first
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no error message");
    let message: String = message.chars().take(200).collect();
    (code, crate::redact::terminal_safe(&message))
}

/// Whether an error is Access's "no such object" (codes 12135 and 12130, messages
/// `access.api.error.…`), not a route the API does not offer.
fn access_object_missing(code: Option<i64>, message: &str) -> bool {
    matches!(code, Some(12130 | 12135)) || message.starts_with("access.api.error")
}

fn envelope_of(
    response: &Response,
    what: &str,
    permission: &'static str,
    url: &Url,
) -> Result<Envelope, CfError> {
    let status = response.status.as_u16();
    let parsed: Result<Envelope, _> = serde_json::from_slice(&response.body);
    let envelope = match parsed {
        Ok(e) => e,
        Err(e) if response.status.is_success() => {
            return Err(CfError::Shape {
                what: what.into(),
                problem: crate::text::json_problem(&e),
            });
        }
        Err(_) => {
            let message = match crate::cloudflare::html_title(&response.text()) {
                Some(title) => format!("a page titled \"{title}\""),
                None => "an answer that is not Cloudflare's JSON".into(),
            };
            return Err(CfError::Answer {
                what: what.into(),
                status,
                code: None,
                message: crate::redact::terminal_safe(&message),
            });
        }
    };
    if response.status.is_success() && envelope.success != Some(false) {
        return Ok(envelope);
    }
    let (code, message) = first_error(&envelope.errors);
    let segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    let account_path = segments
        .iter()
        .position(|s| *s == "accounts")
        .and_then(|i| segments.get(i + 1))
        .map(|s| s.to_string());
    Err(match (status, code) {
        (403, Some(10000)) => CfError::Denied {
            what: what.into(),
            permission,
        },
        (_, Some(1000 | 6003 | 6111 | 9106 | 9109 | 6100 | 6101 | 6102 | 6103 | 10001)) => {
            CfError::BadToken {
                status,
                code,
                message,
            }
        }
        (400 | 404, Some(7003 | 7000)) if account_path.is_some() => CfError::WrongAccount {
            account: account_path.unwrap_or_default(),
            status,
            message,
        },
        // A route the API does not offer here (an Access object that does not exist,
        // the organization say, is an answer of its own), or a refusal that is neither
        // a missing permission nor the token's (a plan without the feature).
        (404, _) if !access_object_missing(code, &message) => CfError::Unavailable {
            what: what.into(),
            status,
            code,
            message,
            permission,
        },
        (403, _) => CfError::Unavailable {
            what: what.into(),
            status,
            code,
            message,
            permission,
        },
        _ => CfError::Answer {
            what: what.into(),
            status,
            code,
            message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            url: Url::parse("https://api.cloudflare.com/client/v4/accounts/0123/access/apps")
                .unwrap(),
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
            elapsed: Duration::ZERO,
        }
    }

    fn answer(status: u16, body: &str) -> Result<Envelope, CfError> {
        let r = response(status, body);
        envelope_of(&r, "the Access applications", perm::APPS, &r.url)
    }

    #[test]
    fn every_answer_maps_to_what_the_operator_must_do() {
        let denied = answer(
            403,
            r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#,
        );
        assert!(
            matches!(&denied, Err(CfError::Denied { permission, .. }) if *permission == perm::APPS)
        );
        assert!(
            denied
                .unwrap_err()
                .hint()
                .contains("Access: Apps and Policies → Read")
        );
        for body in [
            r#"{"success":false,"errors":[{"code":9109,"message":"Invalid access token"}]}"#,
            r#"{"success":false,"errors":[{"code":6003,"message":"Invalid request headers","error_chain":[{"code":6111}]}]}"#,
            r#"{"success":false,"errors":[{"code":1000,"message":"Invalid API Token"}],"messages":null}"#,
        ] {
            assert!(
                matches!(answer(403, body), Err(CfError::BadToken { .. })),
                "{body}"
            );
        }
        let wrong = answer(
            404,
            r#"{"success":false,"errors":[{"code":7003,"message":"Could not route"}]}"#,
        );
        assert!(matches!(&wrong, Err(CfError::WrongAccount { account, .. }) if account == "0123"));
        // An edge page, not the API: named by its title, never pasted.
        let page = answer(
            502,
            "<html><head><title>502 Bad Gateway</title></head><body>x</body></html>",
        );
        let text = page.unwrap_err().to_string();
        assert!(
            text.contains("\"502 Bad Gateway\"") && !text.contains("<html>"),
            "{text}"
        );
        // 200 with something else than the envelope.
        assert!(matches!(
            answer(200, "not json"),
            Err(CfError::Shape { .. })
        ));
        assert!(matches!(
            answer(200, r#"{"success":false,"errors":[]}"#),
            Err(CfError::Answer { .. })
        ));
        let ok = answer(
            200,
            r#"{"success":true,"errors":[],"result":[{"id":"a"}],"result_info":{"page":1,"total_pages":1}}"#,
        );
        assert!(ok.is_ok());
        // A hostile message is cut and made printable.
        let long = format!(
            r#"{{"success":false,"errors":[{{"code":12130,"message":"{}\u001b[2J"}}]}}"#,
            "x".repeat(5000)
        );
        let e = answer(400, &long).unwrap_err().to_string();
        assert!(e.len() < 600 && !e.contains('\u{1b}'), "{}", e.len());
    }

    #[test]
    fn a_route_the_api_does_not_offer_is_told_from_a_missing_object() {
        let bots = |status: u16, body: &str| {
            let mut r = response(status, body);
            r.url = Url::parse(
                "https://api.cloudflare.com/client/v4/zones/0da42c8d2132a9ddaf714f9e7c920711/bot_management",
            )
            .unwrap();
            envelope_of(&r, "Bot Fight Mode", perm::BOTS, &r.url)
        };
        // The gateway's 404 for a route, in its shapes, and a 403 for a plan.
        for (status, body) in [
            (
                404,
                r#"{"success":false,"errors":[{"code":7003,"message":"Could not route to /zones/x/bot_management, perhaps your object identifier is invalid?"},{"code":7000,"message":"No route for that URI"}]}"#,
            ),
            (
                404,
                r#"{"success":false,"errors":[{"code":7000,"message":"No route for that URI"}]}"#,
            ),
            (404, r#"{"error":"not found"}"#),
            (
                403,
                r#"{"success":false,"errors":[{"code":10010,"message":"botmanagement.api.not_entitled"}]}"#,
            ),
        ] {
            let e = bots(status, body).unwrap_err();
            assert!(
                matches!(&e, CfError::Unavailable { permission, .. } if *permission == perm::BOTS),
                "{status} {body}: {e:?}"
            );
            assert!(
                e.hint()
                    .starts_with("give the API token \"Zone → Bot Management → Read\"")
            );
            assert!(!e.hint().contains("--trace"), "{}", e.hint());
        }
        // An Access object that does not exist is an answer (the organization's 404).
        let missing = answer(
            404,
            r#"{"success":false,"errors":[{"code":12135,"message":"access.api.error.not_found"}]}"#,
        );
        assert!(matches!(missing, Err(CfError::Answer { status: 404, .. })));
        // The token's refusal and a missing permission keep their own meaning.
        assert!(matches!(
            bots(
                403,
                r#"{"success":false,"errors":[{"code":9109,"message":"Invalid access token"}]}"#
            ),
            Err(CfError::BadToken { .. })
        ));
        assert!(matches!(
            bots(
                403,
                r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#
            ),
            Err(CfError::Denied { .. })
        ));
    }

    #[test]
    fn results_of_another_shape_are_named_not_parsed_by_guess() {
        let r: Result<Vec<crate::doctor::model::App>, _> =
            parse_result(&serde_json::json!({"id": 3}), "the Access applications");
        assert!(matches!(r, Err(CfError::Shape { .. })));
        let r: Result<crate::doctor::model::App, _> = parse_result(
            &serde_json::json!({"id": "a", "allowed_idps": "x"}),
            "an app",
        );
        assert!(r.unwrap_err().to_string().contains("JSON of another shape"));
    }

    #[test]
    fn retry_after_is_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn errors_keep_code_and_printable_message() {
        let errors =
            vec![serde_json::json!({"code": 10000, "message": "Authentication\u{1b}[2J error"})];
        let (code, message) = first_error(&errors);
        assert_eq!(code, Some(10000));
        assert!(!message.contains('\u{1b}'));
        assert_eq!(first_error(&[]).1, "no error message");
    }
}
