//! Small encodings the lab's servers put on the wire: HTTP dates, Go-style query
//! escaping, HTML escaping, random tokens and template filling.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use rand::distr::{Alphanumeric, SampleString as _};
use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Lower-case hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `len` random bytes.
pub(super) fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    rand::rng().fill_bytes(&mut buf);
    buf
}

/// `bytes` random bytes as lower-case hex (twice as many characters).
pub(super) fn random_hex(bytes: usize) -> String {
    hex(&random_bytes(bytes))
}

/// A random string of `len` ASCII letters and digits.
pub(super) fn random_alphanumeric(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// Unpadded base64url, the encoding of JWTs, JWKs and PKCE values.
pub(super) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2).
pub(super) fn pkce_s256(verifier: &str) -> String {
    b64url(&Sha256::digest(verifier.as_bytes()))
}

/// SHA-256 of `bytes` as lower-case hex.
pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `unix` as an HTTP IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the format of
/// cookie `Expires` attributes.
pub(super) fn imf_fixdate(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // 1970-01-01 was a Thursday, the first entry of WEEKDAYS.
    let weekday = WEEKDAYS[(days % 7) as usize];
    let (year, month, day) = civil_from_days(days);
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `unix` as `YYYY-MM-DD HH:MM:SS UTC`, the timestamp on Cloudflare's error pages.
pub(super) fn utc_timestamp(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// (year, month, day) of the `days`-th day after 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // 2440588 is the Julian day number of 1970-01-01.
    let date = i32::try_from(days)
        .ok()
        .and_then(|d| d.checked_add(2_440_588))
        .and_then(|jd| time::Date::from_julian_day(jd).ok())
        .unwrap_or(time::Date::MIN);
    (
        date.year().max(0) as u64,
        u64::from(u8::from(date.month())),
        u64::from(date.day()),
    )
}

/// Go's `url.QueryEscape`: letters, digits and `-_.~` stay, a space becomes `+`, every
/// other byte becomes `%XX`. Pocket ID builds its redirects with it, so the lab's
/// Locations are byte-identical to the real server's.
pub(super) fn go_query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; `None` on a malformed
/// escape or bytes that are not UTF-8.
pub(super) fn go_query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(*bytes.get(i + 1)?).to_digit(16)?;
                let lo = char::from(*bytes.get(i + 2)?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Go's `url.Values.Encode`: pairs sorted by key (stable, so values keep their
/// order), each part escaped with [`go_query_escape`].
pub(super) fn go_encode_query(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", go_query_escape(k), go_query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills the `{{NAME}}` placeholders of a fixture page. Values are inserted as
/// given: callers escape them for the context they land in.
pub(super) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |page, (name, value)| {
            page.replace(&format!("{{{{{name}}}}}"), value)
        })
}

/// `len` random characters drawn from `charset` (ASCII).
pub(super) fn random_from(charset: &[u8], len: usize) -> String {
    use rand::Rng as _;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(charset[rng.random_range(0..charset.len())]))
        .collect()
}

/// `unix` seconds plus `nanos` as RFC 3339 with nanoseconds (`2026-11-29T07:55:12.979885631Z`),
/// the way Go's `time.Time` marshals to JSON.
pub(super) fn rfc3339_nanos(unix: u64, nanos: u32) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    let (year, month, day) = civil_from_days(days);
    let fraction = format!("{nanos:09}");
    let fraction = fraction.trim_end_matches('0');
    let dot = if fraction.is_empty() { "" } else { "." };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{dot}{fraction}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The current time as Go marshals it to JSON.
pub(super) fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339_nanos(now.as_secs(), now.subsec_nanos())
}

/// The value of cookie `name` in the request's `Cookie` headers (the first one, as
/// Go's `Request.Cookie` and Cloudflare's edge pick it).
pub(super) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// JSON as Go's `encoding/json` writes it: serde's output with `<`, `>`, `&`,
/// U+2028, U+2029 and U+FFFD escaped (Go escapes the first five for HTML safety and
/// writes every invalid UTF-8 byte as `\ufffd`). Those characters only occur inside
/// strings, so the replacement keeps the JSON valid.
pub(super) fn go_json<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).unwrap_or_default();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            '\u{fffd}' => out.push_str("\\ufffd"),
            c => out.push(c),
        }
    }
    out
}

/// Bytes converted to a string the way Go's `string(bytes)` then `encoding/json`
/// treat them: valid UTF-8 is kept, every invalid byte becomes U+FFFD.
pub(super) fn go_string_from_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{fffd}');
                // Go replaces one byte at a time, even inside a truncated sequence.
                rest = after.get(1..).unwrap_or_default();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imf_fixdate_matches_the_rfc_examples() {
        assert_eq!(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(imf_fixdate(1), "Thu, 01 Jan 1970 00:00:01 GMT");
        assert_eq!(imf_fixdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        // A leap day.
        assert_eq!(imf_fixdate(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 GMT");
        assert_eq!(utc_timestamp(1_709_164_805), "2024-02-29 00:00:05 UTC");
    }

    #[test]
    fn query_escaping_is_gos() {
        assert_eq!(
            go_query_escape("The 'redirect_uri' (a~b*c)"),
            "The+%27redirect_uri%27+%28a~b%2Ac%29"
        );
        assert_eq!(go_query_unescape("a+b%2Fc%27").as_deref(), Some("a b/c'"));
        assert_eq!(go_query_unescape("bad%2"), None);
        assert_eq!(go_query_unescape("bad%zz"), None);
        let pairs = [
            ("state".to_string(), "s".to_string()),
            ("error".to_string(), "invalid_state".to_string()),
            ("error_description".to_string(), "x y".to_string()),
        ];
        assert_eq!(
            go_encode_query(&pairs),
            "error=invalid_state&error_description=x+y&state=s"
        );
    }

    #[test]
    fn html_and_templates() {
        assert_eq!(
            html_escape(r#"<a href="x">&'"#),
            "&lt;a href=&#34;x&#34;&gt;&amp;&#39;"
        );
        assert_eq!(
            fill("{{A}}-{{B}}-{{A}}", &[("A", "1"), ("B", "2")]),
            "1-2-1"
        );
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn go_json_escapes_like_encoding_json() {
        let mangled = go_string_from_bytes(&[0xa9, b'B', 0xe2, b'\r', b'!', 0x1f, b'>']);
        assert_eq!(mangled, "\u{fffd}B\u{fffd}\r!\u{1f}>");
        assert_eq!(go_json(&mangled), r#""\ufffdB\ufffd\r!\u001f\u003e""#);
        assert_eq!(go_json(&"a&b<c"), r#""a\u0026b\u003cc""#);
    }

    #[test]
    fn rfc3339_like_go() {
        assert_eq!(
            rfc3339_nanos(1_795_938_912, 979_885_631),
            "2026-11-29T07:55:12.979885631Z"
        );
        assert_eq!(
            rfc3339_nanos(1_795_938_912, 500_000_000),
            "2026-11-29T07:55:12.5Z"
        );
        assert_eq!(rfc3339_nanos(1_795_938_912, 0), "2026-11-29T07:55:12Z");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append(
            axum::http::header::COOKIE,
            axum::http::HeaderValue::from_static("a=1; __Host-session=s1"),
        );
        headers.append(
            axum::http::header::COOKIE,
            axum::http::HeaderValue::from_static("b=2"),
        );
        assert_eq!(cookie(&headers, "__Host-session"), Some("s1"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "session"), None);
    }
}
