//! The entries of a HAR 1.2 archive (`--har FILE`): every request with its headers,
//! cookies, query, body, timings, status and answer — redacted as it is recorded, by
//! the trace's rules, so that the file can be attached to a public issue. Entries are
//! built from plain facts (the HTTP client fills them in); the document with one page
//! per check and its finding is assembled in `report::har`. A secret is never stored: cookie values, credentials,
//! codes, `state`, `nonce`, `meta`, interaction ids, tokens in bodies and passkey
//! assertions become the same `[redacted:xxxxxx]` fingerprint the trace shows, so one
//! value can be followed from request to request without being shown.

use crate::redact::{self, fingerprint};
use serde_json::{Map, Value, json};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};
use url::Url;

/// The most of a response (or request) body kept in the archive.
pub const BODY_KEEP: usize = 64 * 1024;
/// The most entries one run records (a run makes a few dozen).
const MAX_ENTRIES: usize = 2000;

/// Request headers whose values are credentials.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "x-api-key",
    "cf-access-client-id",
    "cf-access-client-secret",
    "cf-access-token",
    "cf-access-jwt-assertion",
    "proxy-authorization",
];

/// JSON keys whose string values are secrets (tokens, codes, passkey assertions).
const SECRET_KEYS: &[&str] = &[
    "id_token",
    "access_token",
    "refresh_token",
    "token",
    "code",
    "state",
    "nonce",
    "challenge",
    "client_secret",
    "secret",
    "password",
    "apikey",
    "api_key",
    "clientdatajson",
    "authenticatordata",
    "signature",
    "userhandle",
    "attestationobject",
    "rawid",
    "session",
    "private_key",
    "code_verifier",
    "meta",
];

/// One recorded exchange, already redacted.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The check (trace label) that sent it.
    pub check: String,
    /// When it started.
    pub started: SystemTime,
    /// The request, as HAR's `request` object.
    pub request: Value,
    /// The answer, as HAR's `response` object (status 0 and `_error` when none came).
    pub response: Value,
    /// Time to the response's headers.
    pub wait: Duration,
    /// Time to read the body.
    pub receive: Duration,
    /// The server's address.
    pub server_ip: Option<String>,
    /// The connection's local port (HTTP/2 requests on one connection share it).
    pub connection: Option<String>,
    /// The proxy the request went through, credentials hidden (`_proxy`; the
    /// `serverIPAddress` is then the proxy's).
    pub proxy: Option<String>,
}

/// An answer as the archive records it: the facts the HTTP client read, in plain
/// terms, not yet redacted.
#[derive(Debug)]
pub struct Answer<'a> {
    /// The HTTP version spoken (`HTTP/1.1`, `HTTP/2`).
    pub version: &'static str,
    /// The URL that answered: relative locations resolve against it.
    pub url: &'a Url,
    /// The status code.
    pub status: u16,
    /// Its reason phrase (empty when the code has none).
    pub status_text: &'static str,
    /// Every header, in order, its value as text (lossy).
    pub headers: Vec<(String, String)>,
    /// The `Content-Type` value, when present and printable.
    pub content_type: Option<&'a str>,
    /// The `Location` value, when present and printable.
    pub location: Option<&'a str>,
    /// The body as read.
    pub body: &'a [u8],
    /// Time to the response's headers.
    pub wait: Duration,
    /// Time to read the body.
    pub receive: Duration,
    /// The server's address.
    pub remote: Option<IpAddr>,
    /// The connection's local port.
    pub local_port: Option<u16>,
}

impl Entry {
    /// The entry of an answered request.
    pub fn answered(
        check: &str,
        started: SystemTime,
        mut request: Value,
        answer: Answer<'_>,
    ) -> Entry {
        request["httpVersion"] = json!(answer.version);
        let base = answer.url;
        let set_cookies: Vec<String> = answer
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.clone())
            .collect();
        let mime = answer.content_type.unwrap_or("").to_string();
        let (text, comment) = body(answer.body, &mime);
        let mut content = json!({"size": answer.body.len(), "mimeType": if mime.is_empty() { "x-unknown" } else { mime.as_str() }});
        if let Some(t) = text {
            content["text"] = json!(t);
        }
        if let Some(c) = comment {
            content["comment"] = json!(c);
        }
        let redirect = answer
            .location
            .map(|l| uri(&redact::location(base, l)))
            .unwrap_or_default();
        let response_value = json!({
            "status": answer.status,
            "statusText": answer.status_text,
            "httpVersion": answer.version,
            "cookies": response_cookies(&set_cookies),
            "headers": headers(&answer.headers, base),
            "content": content,
            "redirectURL": redirect,
            "headersSize": -1,
            "bodySize": answer.body.len(),
        });
        Entry {
            check: check.to_string(),
            started,
            request: scrubbed(request),
            response: scrubbed(response_value),
            wait: answer.wait,
            receive: answer.receive,
            server_ip: answer.remote.map(|a| a.to_string()),
            connection: answer.local_port.map(|p| p.to_string()),
            proxy: None,
        }
    }

    /// The entry of a request that got no answer (`error` says why): status 0 and the
    /// reason in `_error` (as browsers write it).
    pub fn failed(
        check: &str,
        started: SystemTime,
        request: Value,
        error: &str,
        took: Duration,
    ) -> Entry {
        let response = json!({
            "status": 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
            "_error": redact::terminal_safe(&redact::scrub(error)),
        });
        Entry {
            check: check.to_string(),
            started,
            request: scrubbed(request),
            response,
            wait: took,
            receive: Duration::ZERO,
            server_ip: None,
            connection: None,
            proxy: None,
        }
    }

    /// The entry of a request that went through `proxy` (as shown: no credentials).
    pub fn via(mut self, proxy: Option<String>) -> Entry {
        self.proxy = proxy;
        self
    }
}

/// The entries of one run.
#[derive(Debug, Default)]
pub struct Recorder {
    entries: std::sync::Mutex<Vec<Entry>>,
}

impl Recorder {
    /// Adds an entry (at most [`MAX_ENTRIES`]; more are dropped).
    pub fn push(&self, entry: Entry) {
        if let Ok(mut entries) = self.entries.lock()
            && entries.len() < MAX_ENTRIES
        {
            entries.push(entry);
        }
    }

    /// The entries so far, in the order they were sent.
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = self.entries.lock().map(|e| e.clone()).unwrap_or_default();
        entries.sort_by_key(|e| e.started);
        entries
    }
}

/// `value` with every string scrubbed ([`redact::scrub`]). Rule: nothing reaches the
/// archive without passing the scrubber last, whatever path it took — header and
/// parameter names, cookie attributes, a MIME type, and text that redaction rewrote
/// (a URL re-encoded) are all server text. Object keys are the archive's own field
/// names; a body's keys are scrubbed in [`json_body`].
fn scrubbed(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(redact::scrub(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(scrubbed).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, scrubbed(v))).collect())
        }
        other => other,
    }
}

fn pair(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// A redacted URL as a valid URI for HAR viewers: remembered secrets fingerprinted (a
/// query value may hold one under any name), and the brackets of the fingerprints in
/// its path and query percent-encoded (a viewer that decodes it shows the same
/// `[redacted:…]`); an IPv6 host keeps its own.
pub fn uri(shown: &str) -> String {
    let shown = redact::scrub(shown);
    let shown = shown.as_str();
    let authority_end = shown
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| shown[start..].find('/').map(|j| start + j))
        .unwrap_or(shown.len());
    let (head, tail) = shown.split_at(authority_end);
    format!("{head}{}", tail.replace('[', "%5B").replace(']', "%5D"))
}

/// A header's value fit for the archive.
pub fn header_value(name: &str, value: &str, base: &Url) -> String {
    let lower = name.to_ascii_lowercase();
    if SECRET_HEADERS.contains(&lower.as_str()) {
        return fingerprint(value);
    }
    match lower.as_str() {
        "location" | "content-location" | "refresh" => redact::location(base, value),
        "set-cookie" => set_cookie(value).0,
        _ => redact::scrub(value),
    }
}

/// A `Set-Cookie` value with its value fingerprinted, and the HAR cookie object.
fn set_cookie(value: &str) -> (String, Value) {
    let (name, val, attrs) = crate::text::split_set_cookie(value);
    let shown = fingerprint(val);
    let mut cookie = Map::new();
    cookie.insert("name".into(), json!(name));
    cookie.insert("value".into(), json!(shown));
    for a in &attrs {
        let (k, v) = crate::text::cookie_attribute(a);
        match k.as_str() {
            "path" => {
                cookie.insert("path".into(), json!(v));
            }
            "domain" => {
                cookie.insert("domain".into(), json!(v));
            }
            "httponly" => {
                cookie.insert("httpOnly".into(), json!(true));
            }
            "secure" => {
                cookie.insert("secure".into(), json!(true));
            }
            _ => {}
        }
    }
    let mut text = format!("{name}={shown}");
    for a in attrs {
        text.push_str("; ");
        text.push_str(a);
    }
    (text, Value::Object(cookie))
}

/// A JSON body with every secret value fingerprinted and every URL redacted. Rule: keys
/// are server text like values (an echo may put a secret in one), so they are redacted
/// too — here, before escaping could hide a secret from a scrub of the serialized text.
pub fn json_body(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let secret = SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str());
                    let v = match v {
                        Value::String(s) if secret => Value::String(fingerprint(s)),
                        other if secret && !other.is_null() => {
                            Value::String(fingerprint(&other.to_string()))
                        }
                        other => json_body(other),
                    };
                    (text_body(k), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json_body).collect()),
        Value::String(s) => Value::String(text_body(s)),
        other => other.clone(),
    }
}

/// Whether `run` looks like a JWT (or JWE): base64url segments joined by dots, the
/// first a JSON header.
fn is_jwt(run: &str) -> bool {
    let parts: Vec<&str> = run.split('.').collect();
    (parts.len() == 3 || parts.len() == 5)
        && run.starts_with("eyJ")
        && parts[..2].iter().all(|p| p.len() >= 8)
}

/// A text body (HTML, a form, an error page) with secrets fingerprinted: remembered
/// secrets, JWT-shaped tokens, URLs (by [`redact::url`]), and the values of secret
/// parameters written `name=value` or as a form field `name="…" value="…"`.
pub fn text_body(text: &str) -> String {
    let text = redact::scrub(text);
    // Runs of token characters: JWTs, and name=value pairs.
    let token_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '%' | '+' | '/');
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while !rest.is_empty() {
        // URLs first: each is redacted as the trace shows it.
        if rest.starts_with("https://") || rest.starts_with("http://") {
            let end = rest
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')')
                })
                .unwrap_or(rest.len());
            let (candidate, after) = rest.split_at(end);
            let unescaped = candidate.replace("&amp;", "&");
            match Url::parse(&unescaped) {
                Ok(u) => out.push_str(&redact::url(&u)),
                Err(_) => out.push_str(candidate),
            }
            rest = after;
            continue;
        }
        let run_len: usize = rest
            .chars()
            .take_while(|c| token_char(*c))
            .map(char::len_utf8)
            .sum();
        if run_len > 0 {
            let (run, after) = rest.split_at(run_len);
            if is_jwt(run) {
                out.push_str(&fingerprint(run));
            } else {
                out.push_str(run);
            }
            rest = after;
            // `name=value`: the value of a secret parameter.
            if let Some(value_part) = rest.strip_prefix('=')
                && redact::is_secret_param(run.rsplit(['?', '&', ';', ' ']).next().unwrap_or(run))
            {
                let value_len: usize = value_part
                    .chars()
                    .take_while(|c| {
                        !c.is_whitespace() && !matches!(c, '&' | '"' | '\'' | '<' | '>' | ';' | '#')
                    })
                    .map(char::len_utf8)
                    .sum();
                let (value, after) = value_part.split_at(value_len);
                out.push('=');
                if !value.is_empty() {
                    out.push_str(&fingerprint(value));
                }
                rest = after;
            }
            continue;
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    hidden_fields(&out)
}

/// `name="state" … value="…"` (a form's hidden field) with the value fingerprinted.
fn hidden_fields(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("name=") {
        let (before, at) = rest.split_at(i);
        out.push_str(before);
        let after_name = &at["name=".len()..];
        let quote = after_name
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'');
        let Some(q) = quote else {
            out.push_str("name=");
            rest = after_name;
            continue;
        };
        let inner = &after_name[1..];
        let Some(close) = inner.find(q) else {
            out.push_str(at);
            return out;
        };
        let name = &inner[..close];
        let tail = &inner[close + 1..];
        out.push_str("name=");
        out.push(q);
        out.push_str(name);
        out.push(q);
        rest = tail;
        if !redact::is_secret_param(name) {
            continue;
        }
        // The value attribute of the same element.
        let element_end = rest.find('>').unwrap_or(rest.len());
        let Some(v) = rest[..element_end].find("value=") else {
            continue;
        };
        let (pre, from_value) = rest.split_at(v);
        let after_value = &from_value["value=".len()..];
        let Some(vq) = after_value
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
        else {
            continue;
        };
        let vinner = &after_value[1..];
        let Some(vclose) = vinner.find(vq) else {
            continue;
        };
        out.push_str(pre);
        out.push_str("value=");
        out.push(vq);
        out.push_str(&fingerprint(&vinner[..vclose]));
        out.push(vq);
        rest = &vinner[vclose + 1..];
    }
    out.push_str(rest);
    out
}

/// A body for the archive: JSON walked, form parameters and text redacted, binary
/// noted; at most [`BODY_KEEP`] bytes.
pub fn body(bytes: &[u8], mime: &str) -> (Option<String>, Option<String>) {
    if bytes.is_empty() {
        return (None, None);
    }
    let kept = &bytes[..bytes.len().min(BODY_KEEP)];
    let cut = (bytes.len() > BODY_KEEP)
        .then(|| format!("first {} KiB of {} bytes", BODY_KEEP / 1024, bytes.len()));
    let Ok(text) =
        std::str::from_utf8(kept).or_else(|e| std::str::from_utf8(&kept[..e.valid_up_to()]))
    else {
        return (None, Some("binary body not kept".into()));
    };
    let mime = mime.to_ascii_lowercase();
    let shown = if mime.contains("json") {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => json_body(&v).to_string(),
            Err(_) => text_body(text),
        }
    } else if mime.contains("x-www-form-urlencoded") {
        form_body(text)
    } else {
        text_body(text)
    };
    (Some(shown), cut)
}

/// The value of a query or form parameter fit for the archive: a fingerprint for a
/// secret parameter, else the text redacted like a body.
fn param_value(name: &str, value: &str) -> String {
    if redact::is_secret_param(name) {
        fingerprint(value)
    } else {
        text_body(value)
    }
}

/// HAR name/value pairs of parameters, their values by [`param_value`].
fn param_pairs<'a>(
    params: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Value {
    Value::Array(
        params
            .map(|(k, v)| pair(&k, &param_value(&k, &v)))
            .collect(),
    )
}

/// A form body with the values of secret parameters fingerprinted.
pub fn form_body(text: &str) -> String {
    url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| {
            let v = param_value(&k, &v);
            format!(
                "{}={}",
                url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>(),
                v
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// HAR's `queryString` of a URL, redacted.
pub fn query_string(url: &Url) -> Value {
    param_pairs(url.query_pairs())
}

/// HAR's `cookies` of a `Set-Cookie` list.
pub fn response_cookies(values: &[String]) -> Value {
    Value::Array(values.iter().map(|v| set_cookie(v).1).collect())
}

/// HAR's `cookies` of a request (name and value pairs from the jar).
pub fn request_cookies(pairs: &[(String, String)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(n, v)| pair(n, &fingerprint(v)))
            .collect(),
    )
}

/// A header list for HAR.
pub fn headers(list: &[(String, String)], base: &Url) -> Value {
    Value::Array(
        list.iter()
            .map(|(n, v)| pair(n, &header_value(n, v, base)))
            .collect(),
    )
}

/// HAR's `params` of a form body, redacted.
pub fn params(text: &str) -> Value {
    param_pairs(url::form_urlencoded::parse(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bodies_lose_tokens_codes_and_hidden_fields() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9iZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
        let html = format!(
            "<a href=\"https://id.example.com/authorize?client_id=c&amp;state=S3CR3T&amp;x=1\">go</a> meta={jwt} <input type=hidden name=\"state\" value=\"HIDDENSTATE\"><input name='idp' value='pocket'> code=abcdef12&next"
        );
        let shown = text_body(&html);
        for secret in ["S3CR3T", "HIDDENSTATE", "abcdef12", jwt] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("client_id=c") && shown.contains("value='pocket'"),
            "{shown}"
        );
        assert!(shown.contains("[redacted:"), "{shown}");
    }

    #[test]
    fn json_bodies_lose_tokens_and_assertions() {
        let body = json!({"id_token": "a.b.c", "access_token": "tok", "expires_in": 3600,
            "response": {"clientDataJSON": "cdj", "signature": "sig", "authenticatorData": "ad"},
            "publicKey": {"challenge": "chal", "rpId": "id.example.com"},
            "redirect": "https://x.example/cb?code=CODE1&keep=1"});
        let shown = json_body(&body).to_string();
        for secret in ["\"tok\"", "cdj", "\"sig\"", "\"chal\"", "CODE1", "a.b.c"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("3600") && shown.contains("id.example.com") && shown.contains("keep=1"),
            "{shown}"
        );
    }

    #[test]
    fn forms_cookies_and_headers() {
        let form = form_body(
            "grant_type=authorization_code&code=C0DE&client_secret=SHH&redirect_uri=https%3A%2F%2Fx.example%2Fcb",
        );
        assert!(
            !form.contains("C0DE")
                && !form.contains("SHH")
                && form.contains("grant_type=authorization_code"),
            "{form}"
        );
        let base = Url::parse("https://a.example/").unwrap();
        let (text, cookie) = set_cookie("CF_Authorization=eyJsecret; Path=/; HttpOnly; Secure");
        assert!(
            !text.contains("eyJsecret") && text.ends_with("Path=/; HttpOnly; Secure"),
            "{text}"
        );
        assert_eq!(cookie["httpOnly"], true);
        assert!(!header_value("Authorization", "Bearer t0k3n", &base).contains("t0k3n"));
        assert!(!header_value("location", "/cb?code=XYZ", &base).contains("XYZ"));
    }

    #[test]
    fn hostile_bodies_never_panic() {
        for text in [
            "name=",
            "name=\"",
            "name=\"state\"",
            "name=\"state\" value=\"",
            "https://",
            "é=é&code=",
            "eyJ..",
            "\u{0}name='code' value='x'>",
        ] {
            let _ = text_body(text);
            let _ = form_body(text);
        }
        let _ = body(&[0xff, 0xfe, b'a'], "text/html");
        let _ = body(&vec![b'a'; BODY_KEEP + 10], "text/plain");
    }
}
