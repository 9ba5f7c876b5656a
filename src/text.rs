//! Words for what came from elsewhere: a server's text cut to fit an error message, a
//! JSON parser's failure said in words. Pure functions over text, below every module
//! that talks to a server, so that each can phrase its findings the same way.

use crate::redact;

/// Longest text from a server (or derived from one) that an error message carries.
pub const SERVER_TEXT_CAP: usize = 200;

/// Text that came from a server (a header, a TLS alert, a transport error that quotes
/// the peer), fit for an error message: no control characters or bidirectional
/// overrides ([`redact::terminal_safe`]) and at most [`SERVER_TEXT_CAP`] characters.
///
/// Only the characters kept are looked at (one more, to know whether to cut), so a
/// server's 100 KB name costs what 200 characters cost.
pub fn server_text(text: &str) -> String {
    // terminal_safe maps one character to one: cutting first gives the same text.
    let Some((over, _)) = text.char_indices().nth(SERVER_TEXT_CAP) else {
        return redact::terminal_safe(text);
    };
    let keep = text[..over]
        .char_indices()
        .nth(SERVER_TEXT_CAP - 1)
        .map_or(over, |(i, _)| i);
    let mut cut = redact::terminal_safe(&text[..keep]);
    cut.push('…');
    cut
}

/// What a JSON parse failure means, in words rather than the parser's: findings never
/// quote a library's error text.
pub fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    match e.classify() {
        Category::Syntax | Category::Eof => format!("not valid JSON ({at})"),
        Category::Data => format!("JSON of another shape than expected ({at})"),
        Category::Io => "JSON that could not be read".to_string(),
    }
}

/// A `Set-Cookie` line in its parts: the name, the value and each attribute as
/// written (`Path=/`, `HttpOnly`), trimmed, empty ones left out.
pub fn split_set_cookie(line: &str) -> (&str, &str, Vec<&str>) {
    let mut parts = line.split(';');
    let first = parts.next().unwrap_or_default();
    let (name, value) = first.split_once('=').unwrap_or((first, ""));
    let attrs = parts.map(str::trim).filter(|a| !a.is_empty()).collect();
    (name.trim(), value.trim(), attrs)
}

/// A `Set-Cookie` attribute as (lower-case name, value): `("max-age", "900")`,
/// `("httponly", "")`.
pub fn cookie_attribute(attr: &str) -> (String, &str) {
    let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
    (k.trim().to_ascii_lowercase(), v.trim())
}

#[cfg(test)]
mod difference_tests {
    use super::small_difference;

    #[test]
    fn small_differences_are_named_as_their_fix() {
        let cb = "https://xyz.cloudflareaccess.com/cdn-cgi/access/callback";
        let d = |got: &str| small_difference(got, cb);
        assert_eq!(
            d(&format!("{cb}/")).as_deref(),
            Some("remove the trailing slash")
        );
        assert_eq!(
            small_difference(cb, &format!("{cb}/")).as_deref(),
            Some("add the trailing slash")
        );
        assert_eq!(
            d(&cb.to_uppercase()).as_deref(),
            Some("write it in the same letter case")
        );
        assert_eq!(
            d(&cb.replace("https://", "http://")).as_deref(),
            Some("use https, not http")
        );
        assert_eq!(
            d(&cb.replace("callback", "calback")).as_deref(),
            Some("insert 'l' at character 52")
        );
        assert_eq!(
            d(&cb.replace("xyz", "xyy")).as_deref(),
            Some("change 'y' to 'z' (character 11)")
        );
        assert_eq!(d(cb), None);
        assert_eq!(d("https://other.example.com/"), None);
        // Multi-byte characters are characters, not bytes.
        assert_eq!(
            small_difference("é/x", "é/y").as_deref(),
            Some("change 'x' to 'y' (character 3)")
        );
    }
}

#[cfg(test)]
mod io_tests {
    use super::io_words;
    use std::io::{Error, ErrorKind};

    #[test]
    fn file_errors_are_plain_words() {
        let missing = std::fs::read("/nonexistent/ssoprobe-test").unwrap_err();
        assert_eq!(io_words(&missing), "no such file or directory");
        for kind in [
            ErrorKind::PermissionDenied,
            ErrorKind::Other,
            ErrorKind::StorageFull,
        ] {
            let words = io_words(&Error::new(kind, "x"));
            assert!(!words.contains("os error"), "{words}");
        }
        assert_eq!(io_words(&Error::from_raw_os_error(5)), "input/output error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_is_printable_and_bounded() {
        let long = format!("\u{1b}[2J{}\r\nX-Evil: 1", "a".repeat(5000));
        let shown = server_text(&long);
        assert!(shown.chars().count() <= SERVER_TEXT_CAP, "{}", shown.len());
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(server_text("plain"), "plain");
    }

    #[test]
    fn json_problems_name_the_place_not_the_parser() {
        let syntax = serde_json::from_str::<serde_json::Value>("{\"a\": ").unwrap_err();
        assert_eq!(json_problem(&syntax), "not valid JSON (line 1, column 6)");
        let shape = serde_json::from_str::<Vec<u8>>("{}").unwrap_err();
        assert!(json_problem(&shape).starts_with("JSON of another shape than expected (line 1"));
    }
}

/// How `got` differs from `wanted` when the difference is small enough to name (a
/// trailing slash, letter case, http for https, one character), as the fix that makes
/// `got` into `wanted`: "remove the trailing slash". `None` when they are equal or
/// differ more.
pub fn small_difference(got: &str, wanted: &str) -> Option<String> {
    if got == wanted {
        return None;
    }
    if got.strip_suffix('/') == Some(wanted) {
        return Some("remove the trailing slash".into());
    }
    if wanted.strip_suffix('/') == Some(got) {
        return Some("add the trailing slash".into());
    }
    if got.eq_ignore_ascii_case(wanted) {
        return Some("write it in the same letter case".into());
    }
    if got.strip_prefix("http://") == wanted.strip_prefix("https://") && got.starts_with("http://")
    {
        return Some("use https, not http".into());
    }
    let (g, w): (Vec<char>, Vec<char>) = (got.chars().collect(), wanted.chars().collect());
    let common = g.iter().zip(&w).take_while(|(a, b)| a == b).count();
    let tail = g[common..]
        .iter()
        .rev()
        .zip(w[common..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (extra, missing) = (&g[common..g.len() - tail], &w[common..w.len() - tail]);
    let shown = |c: &[char]| redact::terminal_safe(&c.iter().collect::<String>());
    match (extra.len(), missing.len()) {
        (1, 1) => Some(format!(
            "change '{}' to '{}' (character {})",
            shown(extra),
            shown(missing),
            common + 1
        )),
        (1, 0) => Some(format!(
            "remove the '{}' at character {}",
            shown(extra),
            common + 1
        )),
        (0, 1) => Some(format!(
            "insert '{}' at character {}",
            shown(missing),
            common + 1
        )),
        _ => None,
    }
}

/// The longest text [`nearest`] looks for a name near, in bytes.
const NEAREST_CAP: usize = 256;

/// The name of `names` nearest to `typed`, for a "did you mean 'idp-slow'?" after a
/// mistyped name: one whose spelling differs from it in letter case only, or by at most a
/// third of its letters (one or two for a short name: an edit is a letter added, removed,
/// changed or two swapped), the first of equal ones. `None` when none is that near.
pub fn nearest<'a>(typed: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // A name can come from a request (serve's ?target=): no guess for a long one, whose
    // comparison would cost its length times each name's.
    if typed.len() > NEAREST_CAP {
        return None;
    }
    let typed = typed.trim().to_lowercase();
    let allowed = (typed.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for name in names {
        let distance = strsim::osa_distance(&typed, &name.to_lowercase());
        if distance <= allowed && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, name));
        }
    }
    best.map(|(_, name)| name)
}

/// "; did you mean 'idp-slow'?" for a mistyped name, with the nearest of `names`
/// ([`nearest`]); empty when none is near.
pub fn did_you_mean<'a>(typed: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    nearest(typed, names)
        .map(|name| format!("; did you mean '{}'?", redact::terminal_safe(name)))
        .unwrap_or_default()
}

#[cfg(test)]
mod nearest_tests {
    use super::nearest;

    #[test]
    fn the_nearest_name_within_a_third_of_the_letters() {
        let faults = ["idp-down", "idp-slow", "jwks-empty", "wrong-team"];
        assert_eq!(nearest("idp-slw", faults), Some("idp-slow"));
        assert_eq!(nearest("IDP-SLOW", faults), Some("idp-slow"));
        assert_eq!(nearest("jkws-empty", faults), Some("jwks-empty"));
        assert_eq!(nearest("idp-dwon", faults), Some("idp-down"));
        // Equally near: the first.
        assert_eq!(
            nearest("idp-dowm", ["idp-down", "idp-dowx"]),
            Some("idp-down")
        );
        // Farther than a third of the letters.
        assert_eq!(nearest("idp-sxxx", faults), None);
        assert_eq!(nearest("idp-", faults), None);
        assert_eq!(nearest("something-else", faults), None);
        assert_eq!(nearest("", faults), None);
        assert_eq!(nearest("wiki", std::iter::empty()), None);
        // No guess for a text longer than any name.
        assert_eq!(nearest(&"idp-slow".repeat(40), faults), None);
    }
}

/// A file-system error in plain words, without the operating system's own text or its
/// error number ("no such file", not "No such file or directory (os error 2)").
pub fn io_words(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "no such file or directory".into(),
        K::PermissionDenied => "permission denied".into(),
        K::AlreadyExists => "it already exists".into(),
        K::IsADirectory => "it is a directory".into(),
        K::NotADirectory => "a part of the path is not a directory".into(),
        K::DirectoryNotEmpty => "the directory is not empty".into(),
        K::ReadOnlyFilesystem => "the file system is read-only".into(),
        K::StorageFull => "no space left on the device".into(),
        K::QuotaExceeded => "the disk quota is exceeded".into(),
        K::InvalidFilename => "the file name is too long or not valid".into(),
        K::InvalidData => "its content is not valid text".into(),
        K::UnexpectedEof => "it ended early".into(),
        K::Interrupted => "the read was interrupted".into(),
        K::ResourceBusy | K::WouldBlock => "it is busy".into(),
        K::CrossesDevices => "it is on another device".into(),
        K::TooManyLinks => "too many links".into(),
        K::FileTooLarge => "the file is too large".into(),
        _ => {
            // Any other: the OS's text without "(os error N)".
            let text = e.to_string();
            let plain = match text.find(" (os error") {
                Some(i) => &text[..i],
                None => &text,
            };
            let mut plain = plain.to_string();
            if let Some(first) = plain.get(..1) {
                plain = first.to_lowercase() + plain.get(1..).unwrap_or("");
            }
            plain
        }
    }
}
