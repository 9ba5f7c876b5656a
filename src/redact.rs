//! Keeping secrets out of output.
//!
//! Codes, tokens, `state`, cookie values and keys never reach a report, a trace or an
//! error message. A secret is shown, where anything must be shown, as a short
//! fingerprint so that two hops carrying the same value can still be matched up.
//!
//! [`scrub`] hides every remembered value in the forms a server may quote it back in
//! (percent-encoded, base64, hex, split across lines). The operator's configured
//! secrets are pinned for the life of the process; the values servers hand to runs take
//! turns in a bounded area, so that no number of runs pushes a configured one out.

use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use url::Url;

/// A secret value whose `Debug` and `Display` print only a fingerprint. It serializes
/// as itself: only the credential file stores one.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret of the operator's configuration (read from a file, a flag or the
    /// environment: client secret, API key, API token, service token, header value,
    /// passkey key), or made from one (a Basic credential). Remembered for the life of
    /// the process: no number of values from servers evicts it from [`scrub`].
    pub fn configured(value: impl Into<String>) -> Self {
        let value = value.into();
        remember(&value, Area::Configured);
        Secret(value)
    }

    /// A secret a server handed to this run (a `state`, a cookie, a token), remembered
    /// so that a server that echoes it back cannot get it printed: for the run's own
    /// texts while it lasts ([`in_run`]); outside a run, among the newest 256 such values
    /// of the process, the oldest forgotten first.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        remember(&value, Area::Run);
        Secret(value)
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A secret read by serde is pinned like [`Secret::configured`]: it is the passkey
/// file's key (configuration), or enrollment's one-time token (in a command that runs
/// once).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(deserializer).map(Secret::configured)
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

/// The shortest value [`scrub`] hides: shorter ones would blot out ordinary words.
const SCRUB_MIN: usize = 8;
/// How many values from servers are remembered at most; the oldest go first.
const PER_RUN: usize = 256;
/// How many bytes of forms the values from servers may take at most (a hostile server
/// hands out long cookies); the oldest go first.
const PER_RUN_BYTES: usize = 4 * 1024 * 1024;
/// The longest value whose encodings are remembered: secrets and tokens are shorter; a
/// longer value is hidden as itself only.
const ENCODED_MAX: usize = 8 * 1024;

/// Percent-encoders in use, each as the characters it leaves alone besides letters and
/// digits, and whether a space becomes `+`.
const PERCENT: &[(&str, bool)] = &[
    // RFC 3986 (Python's quote, Rust's percent-encoding users).
    ("-._~", false),
    // Go's QueryEscape.
    ("-._~", true),
    // HTML forms (WHATWG; the url crate's form_urlencoded).
    ("*-._", true),
    // JavaScript's encodeURIComponent.
    ("-_.!~*'()", false),
    // JavaScript's encodeURI, which leaves a URL's delimiters alone.
    ("-_.!~*'();,/?:@&=+$#", false),
    // Every byte but letters and digits.
    ("", false),
];

/// The area of [`Remembered`] a value goes to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Area {
    /// Pinned for the life of the process.
    Configured,
    /// Among the newest [`PER_RUN`].
    Run,
}

/// One remembered value: its fingerprint and the forms [`scrub`] looks for.
struct Known {
    value: String,
    shown: String,
    forms: Vec<String>,
}

impl Known {
    fn new(value: String) -> Known {
        Known {
            shown: fingerprint(&value),
            forms: forms(&value),
            value,
        }
    }

    fn bytes(&self) -> usize {
        self.forms.iter().map(String::len).sum()
    }
}

/// The values [`scrub`] hides. Rule: a configured secret is never evicted by values from
/// servers; those live in a bounded area of their own.
struct Remembered {
    /// The operator's secrets and what is made of them: never evicted (there are as
    /// many as the configuration holds).
    configured: Vec<Known>,
    /// Values from servers, oldest first: at most [`PER_RUN`], with at most
    /// [`PER_RUN_BYTES`] of forms.
    runs: VecDeque<Known>,
    /// The bytes of the forms in `runs`.
    run_bytes: usize,
}

impl Remembered {
    const fn new() -> Remembered {
        Remembered {
            configured: Vec::new(),
            runs: VecDeque::new(),
            run_bytes: 0,
        }
    }

    /// Remembers `value` and the secrets inside it ([`related`]) in `area`.
    fn remember(&mut self, value: &str, area: Area) {
        for value in related(value) {
            self.remember_one(value, area);
        }
    }

    fn remember_one(&mut self, value: String, area: Area) {
        if value.len() < SCRUB_MIN || self.configured.iter().any(|k| k.value == value) {
            return;
        }
        let seen = self
            .runs
            .iter()
            .position(|k| k.value == value)
            .and_then(|i| self.runs.remove(i));
        let known = match seen {
            Some(known) => {
                self.run_bytes -= known.bytes();
                known
            }
            None => Known::new(value),
        };
        match area {
            // A value a server handed out that the operator also configured is pinned.
            Area::Configured => self.configured.push(known),
            // New or seen again, it is the newest; the oldest beyond the bounds go.
            Area::Run => {
                self.run_bytes += known.bytes();
                self.runs.push_back(known);
                while self.runs.len() > PER_RUN
                    || (self.run_bytes > PER_RUN_BYTES && self.runs.len() > 1)
                {
                    if let Some(old) = self.runs.pop_front() {
                        self.run_bytes -= old.bytes();
                    }
                }
            }
        }
    }

    /// `text` with every form of every remembered value replaced by the value's
    /// fingerprint, also where line breaks split it. Overlapping finds (one value's
    /// encoding inside another's) are hidden as one. A text with no find is returned as
    /// it is, uncopied.
    fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if text.len() < SCRUB_MIN || (self.configured.is_empty() && self.runs.is_empty()) {
            return Cow::Borrowed(text);
        }
        let joined = Joined::new(text);
        let mut hits: Vec<(usize, usize, &str)> = Vec::new();
        for known in self.configured.iter().chain(&self.runs) {
            for form in &known.forms {
                if form.len() > joined.text.len() {
                    continue;
                }
                for (at, found) in joined.text.match_indices(form.as_str()) {
                    hits.push((
                        joined.original(at),
                        joined.original(at + found.len() - 1) + 1,
                        &known.shown,
                    ));
                }
            }
        }
        if hits.is_empty() {
            return Cow::Borrowed(text);
        }
        hits.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
        let mut merged: Vec<(usize, usize, &str)> = Vec::with_capacity(hits.len());
        for hit in hits {
            match merged.last_mut() {
                Some(last) if hit.0 < last.1 => last.1 = last.1.max(hit.1),
                _ => merged.push(hit),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut ranges = merged.into_iter().peekable();
        for (i, c) in text.char_indices() {
            while ranges.peek().is_some_and(|&(_, end, _)| end <= i) {
                ranges.next();
            }
            match ranges.peek() {
                Some(&(start, _, shown)) if start <= i => {
                    if start == i {
                        out.push_str(shown);
                    }
                }
                _ => out.push(c),
            }
        }
        Cow::Owned(out)
    }
}

/// A text without its line breaks, so that a secret split across lines is found whole;
/// positions in it lead back to the text's own.
struct Joined<'a> {
    text: Cow<'a, str>,
    /// For each line-break byte taken out, the position in `text` it stood before.
    breaks: Vec<usize>,
}

impl<'a> Joined<'a> {
    fn new(text: &'a str) -> Joined<'a> {
        if !text.contains(['\r', '\n']) {
            return Joined {
                text: Cow::Borrowed(text),
                breaks: Vec::new(),
            };
        }
        let breaks = text
            .match_indices(['\r', '\n'])
            .enumerate()
            .map(|(taken, (at, _))| at - taken)
            .collect();
        Joined {
            text: Cow::Owned(text.replace(['\r', '\n'], "")),
            breaks,
        }
    }

    /// The position in the original text of the byte at `at` of the joined one.
    fn original(&self, at: usize) -> usize {
        at + self.breaks.partition_point(|&b| b <= at)
    }
}

/// `value` and the secrets inside it, each of which a server may quote back alone: an
/// `Authorization` value's credential without its scheme, and a Basic credential's
/// `id:secret` both as sent (form-encoded parts) and decoded.
fn related(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    let Some((scheme, credential)) = value.split_once(' ') else {
        return out;
    };
    let credential = credential.trim();
    if scheme.is_empty()
        || !scheme.chars().all(|c| c.is_ascii_alphabetic())
        || credential.contains(' ')
    {
        return out;
    }
    out.push(credential.to_string());
    if scheme.eq_ignore_ascii_case("basic")
        && let Some(pair) = STANDARD
            .decode(credential)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    {
        if let Some((id, secret)) = pair.split_once(':') {
            out.push(format!("{}:{}", form_decoded(id), form_decoded(secret)));
        }
        out.push(pair);
    }
    out
}

/// `text` form-decoded (`+` a space, `%XX` a byte); anything else kept as it is.
fn form_decoded(text: &str) -> String {
    let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match (b, hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(high), Some(low)) => {
                out.extend(u8::try_from(high * 16 + low));
                i += 2;
            }
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The forms `value` may take in a server's text. Rule: every usual encoding of a secret
/// is hidden, computed once here rather than at each scrub. Itself; percent-encoded by
/// each of [`PERCENT`] with upper- and lower-case hex, and by any two of them in turn;
/// base64 and base64url, padded and not, and the part of it that stays the same inside
/// a longer base64 text (at each of the three byte alignments); hex in either case;
/// escaped as in a JSON string. Line breaks taken out (the text is searched without
/// them), each at least [`SCRUB_MIN`] long, without repeats.
fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string()];
    if value.len() <= ENCODED_MAX {
        let mut once: Vec<String> = PERCENT
            .iter()
            .flat_map(|(keep, plus)| [true, false].map(|upper| percent(value, keep, *plus, upper)))
            .filter(|encoded| encoded != value)
            .collect();
        once.sort_unstable();
        once.dedup();
        // Twice by any two of the encoders: a server's, then the one that re-encodes a
        // decoded query value for display. (A value no encoder changes has no such form.)
        for (keep, plus) in PERCENT {
            for inner in &once {
                forms.push(percent(inner, keep, *plus, true));
            }
        }
        forms.extend(once);
        let engines: [&GeneralPurpose; 4] =
            [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD];
        for engine in engines {
            forms.push(engine.encode(value));
        }
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            for offset in 0..3 {
                forms.push(base64_inside(value.as_bytes(), offset, engine));
            }
        }
        let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
        forms.push(hex.to_ascii_uppercase());
        forms.push(hex);
        if let Ok(json) = serde_json::to_string(value)
            && let Some(inner) = json.strip_prefix('"').and_then(|j| j.strip_suffix('"'))
        {
            forms.push(inner.to_string());
        }
    }
    let mut forms: Vec<String> = forms
        .into_iter()
        .map(|f| f.replace(['\r', '\n'], ""))
        .filter(|f| f.len() >= SCRUB_MIN)
        .collect();
    forms.sort_unstable();
    forms.dedup();
    forms
}

/// `value` percent-encoded: letters, digits and `keep` as they are, a space as `+` when
/// `plus`, every other byte as `%XX` in upper- or lower-case hex.
fn percent(value: &str, keep: &str, plus: bool, upper: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
            out.push(char::from(b));
        } else if b == b' ' && plus {
            out.push('+');
        } else {
            let digits = if upper {
                b"0123456789ABCDEF"
            } else {
                b"0123456789abcdef"
            };
            out.push('%');
            out.push(char::from(digits[usize::from(b >> 4)]));
            out.push(char::from(digits[usize::from(b & 0xf)]));
        }
    }
    out
}

/// The base64 characters of `bytes` that are the same wherever they stand in a longer
/// base64 text, `offset` bytes (mod 3) after its start: those that encode its bits
/// alone.
fn base64_inside(bytes: &[u8], offset: usize, engine: &GeneralPurpose) -> String {
    let mut shifted = vec![0u8; offset];
    shifted.extend_from_slice(bytes);
    let encoded = engine.encode(&shifted);
    // Character i holds bits 6i..6i+6; the value's are 8·offset.. up to the end.
    let first = (offset * 8).div_ceil(6);
    let last = shifted.len() * 8 / 6;
    encoded
        .chars()
        .skip(first)
        .take(last.saturating_sub(first))
        .collect()
}

/// Every value of this process that [`scrub`] hides.
static REMEMBERED: Mutex<Remembered> = Mutex::new(Remembered::new());

/// The list, also after a panic elsewhere: text shown unscrubbed would be worse.
fn remembered() -> std::sync::MutexGuard<'static, Remembered> {
    REMEMBERED.lock().unwrap_or_else(PoisonError::into_inner)
}

tokio::task_local! {
    /// The values servers handed to the run under way (see [`in_run`]).
    static RUN: RefCell<Remembered>;
}

/// Runs `run` as one run of checks. Rule: the values servers hand it (each login's
/// `state`, cookies, tokens) live and die with it — remembered for its own texts, never
/// in the process-wide list where, in `serve`, other targets' runs would fill and evict
/// them, and every scrub would search them for ever.
pub async fn in_run<F: std::future::Future>(run: F) -> F::Output {
    RUN.scope(RefCell::new(Remembered::new()), run).await
}

fn remember(value: &str, area: Area) {
    if area == Area::Run
        && RUN
            .try_with(|run| run.borrow_mut().remember(value, Area::Run))
            .is_ok()
    {
        return;
    }
    remembered().remember(value, area);
}

/// `text` with every secret value of this process (and of the run under way), in any of
/// its usual encodings and also split across lines, replaced by its fingerprint: for
/// server-supplied text that may echo one.
pub fn scrub(text: &str) -> String {
    let text = remembered().scrub(text);
    RUN.try_with(|run| run.borrow().scrub(&text).into_owned())
        .unwrap_or_else(|_| text.into_owned())
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

    #[tokio::test]
    async fn a_runs_values_live_and_die_with_it() {
        let configured = Secret::configured("configured-outlives-runs-0001");
        let (inside, other) = in_run(async {
            let state = Secret::new("state-of-one-run-only-0002");
            let echoed = format!("echo {} and {}", state.expose(), configured.expose());
            // Another run beside it has its own values, and scrubs the configured ones.
            let other = in_run(async {
                let _ = Secret::new("state-of-another-run-0003");
                scrub("state-of-another-run-0003 configured-outlives-runs-0001")
            })
            .await;
            (scrub(&echoed), other)
        })
        .await;
        assert!(!inside.contains("state-of-one-run"), "{inside}");
        assert!(!inside.contains("configured-outlives"), "{inside}");
        assert!(
            !other.contains("another-run") && !other.contains("outlives"),
            "{other}"
        );
        // Gone with its run: the process-wide list never held it.
        assert!(
            !remembered()
                .runs
                .iter()
                .any(|k| k.value.starts_with("state-of-"))
        );
        assert_eq!(
            scrub("configured-outlives-runs-0001"),
            configured.to_string()
        );
    }

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

    /// A client secret with characters every encoding treats differently; its base64
    /// differs from its base64url and is padded.
    const AWKWARD: &str = "s3cr3t+/Value= with~*'(x)!?>-end";

    /// A store holding `secret` as configured.
    fn configured(secret: &str) -> Remembered {
        let mut store = Remembered::new();
        store.remember(secret, Area::Configured);
        store
    }

    /// Panics unless `form` is gone from a text holding it, replaced by `shown`.
    fn assert_hidden(store: &Remembered, form: &str, shown: &str) {
        let scrubbed = store.scrub(&format!("before {form} after")).into_owned();
        assert_eq!(scrubbed, format!("before {shown} after"), "form {form:?}");
    }

    fn hex(text: &str) -> String {
        text.bytes().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn configured_secrets_outlive_any_number_of_run_values() {
        let mut store = Remembered::new();
        let header = "X-Waf-Bypass-0123456789";
        store.remember(header, Area::Configured);
        for i in 0..10_000 {
            store.remember(&format!("state-from-a-server-{i:08}"), Area::Run);
        }
        assert_hidden(&store, header, &fingerprint(header));
        // The values from servers stay bounded: the newest kept, the oldest gone.
        assert_eq!(store.runs.len(), PER_RUN);
        let newest = "state-from-a-server-00009999";
        assert_hidden(&store, newest, &fingerprint(newest));
        let oldest = "state-from-a-server-00000000";
        assert_eq!(store.scrub(oldest), oldest);
    }

    #[test]
    fn a_run_value_the_operator_also_configured_is_pinned() {
        let mut store = Remembered::new();
        let value = "shared-value-0123456789";
        store.remember(value, Area::Run);
        store.remember(value, Area::Configured);
        for i in 0..PER_RUN + 1 {
            store.remember(&format!("state-from-a-server-{i:08}"), Area::Run);
        }
        assert_hidden(&store, value, &fingerprint(value));
    }

    #[test]
    fn long_run_values_are_bounded_in_bytes_too() {
        let mut store = Remembered::new();
        for i in 0..64 {
            store.remember(&format!("{i:04}{}", "c".repeat(ENCODED_MAX - 4)), Area::Run);
        }
        assert!(store.run_bytes <= PER_RUN_BYTES, "{}", store.run_bytes);
        assert_eq!(
            store.run_bytes,
            store.runs.iter().map(Known::bytes).sum::<usize>()
        );
    }

    #[test]
    fn configured_and_run_secrets_reach_the_process_list() {
        let pinned = Secret::configured("configured-value-for-the-list-0123");
        let from_server = Secret::new("server-value-for-the-list-0123");
        let list = remembered();
        assert!(list.configured.iter().any(|k| k.value == pinned.expose()));
        assert!(list.runs.iter().any(|k| k.value == from_server.expose()));
        assert!(!list.runs.iter().any(|k| k.value == pinned.expose()));
    }

    #[test]
    fn a_deserialized_secret_is_pinned() {
        let secret: Secret = serde_json::from_str("\"passkey-private-key-0123456789\"").unwrap();
        assert!(
            remembered()
                .configured
                .iter()
                .any(|k| k.value == secret.expose())
        );
    }

    #[test]
    fn percent_encoded_secrets_are_scrubbed_once_and_twice() {
        let store = configured(AWKWARD);
        let shown = fingerprint(AWKWARD);
        let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let once = [
            // RFC 3986, %20 for a space.
            "s3cr3t%2B%2FValue%3D%20with~%2A%27%28x%29%21%3F%3E-end".to_string(),
            // The same with lower-case hex.
            "s3cr3t%2b%2fValue%3d%20with~%2a%27%28x%29%21%3f%3e-end".to_string(),
            // Form encoding: `+` for a space, `%2B` for a plus.
            form(AWKWARD),
            // JavaScript's encodeURIComponent.
            "s3cr3t%2B%2FValue%3D%20with~*'(x)!%3F%3E-end".to_string(),
        ];
        assert!(
            once[2].contains("%2B") && once[2].contains('+'),
            "{}",
            once[2]
        );
        for encoded in &once {
            assert_hidden(&store, encoded, &shown);
            assert_hidden(&store, &form(encoded), &shown);
            // JavaScript's encodeURI escapes only the `%` of these.
            assert_hidden(&store, &encoded.replace('%', "%25"), &shown);
        }
    }

    #[test]
    fn base64_of_a_secret_is_scrubbed_in_both_alphabets_padded_or_not() {
        let store = configured(AWKWARD);
        let shown = fingerprint(AWKWARD);
        let engines: [&GeneralPurpose; 4] =
            [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD];
        let encoded: Vec<String> = engines.iter().map(|e| e.encode(AWKWARD)).collect();
        assert!(encoded[0].contains('/') && encoded[2].contains('_') && encoded[0].ends_with('='));
        for e in &encoded {
            assert_hidden(&store, e, &shown);
        }
    }

    #[test]
    fn base64_of_a_secret_inside_longer_base64_is_scrubbed() {
        let store = configured(AWKWARD);
        for prefix in ["", "a", "ab", "client-id:"] {
            for engine in [&STANDARD, &URL_SAFE_NO_PAD] {
                let blob = engine.encode(format!("{prefix}{AWKWARD} and more"));
                let scrubbed = store.scrub(&blob);
                assert!(scrubbed.contains("[redacted:"), "{prefix:?}: {scrubbed}");
                // At most the two characters that mix the secret's bits with its
                // neighbours' stay on either side.
                let kept = scrubbed.len() - fingerprint(AWKWARD).len();
                let neighbours = engine.encode(format!("{prefix} and more")).len();
                assert!(kept <= neighbours + 4, "{prefix:?}: {scrubbed}");
            }
        }
    }

    #[test]
    fn hex_of_a_secret_is_scrubbed_in_either_case() {
        let store = configured(AWKWARD);
        let shown = fingerprint(AWKWARD);
        assert_hidden(&store, &hex(AWKWARD), &shown);
        assert_hidden(&store, &hex(AWKWARD).to_ascii_uppercase(), &shown);
    }

    #[test]
    fn a_secret_split_by_line_breaks_is_scrubbed() {
        let store = configured(AWKWARD);
        let shown = fingerprint(AWKWARD);
        for split in [
            "s3cr3t+/Va\nlue= with~*'(x)!?>-end",
            "s3cr3t+/Va\r\nlue= with~*'(x)!?>-end",
            "s\r\n3cr3t+/Value= with~*'(x)!?>-en\nd",
            "s3cr3t+/Value= with~*'(x)!?>-end",
        ] {
            assert_hidden(&store, split, &shown);
        }
        // Base64 folded at a line length, as MIME writes it.
        let folded = STANDARD.encode(AWKWARD);
        let (a, b) = folded.split_at(10);
        assert_hidden(&store, &format!("{a}\r\n{b}"), &shown);
        // The text's own line breaks elsewhere are kept.
        assert_eq!(
            store.scrub(&format!("one\ntwo {AWKWARD}\nthree")),
            format!("one\ntwo {shown}\nthree")
        );
    }

    #[test]
    fn a_json_escaped_secret_is_scrubbed() {
        let secret = "quote\"and\\backslash";
        let store = configured(secret);
        assert_hidden(&store, "quote\\\"and\\\\backslash", &fingerprint(secret));
    }

    #[test]
    fn a_basic_credential_is_scrubbed_whole_and_in_its_parts() {
        let id = "2f0408cf-25d7-4daa-9fb9-7b072516a681";
        let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let sent = STANDARD.encode(format!("{}:{}", form(id), form(AWKWARD)));
        let store = configured(&format!("Basic {sent}"));
        let raw_pair = format!("{id}:{AWKWARD}");
        let sent_pair = format!("{}:{}", form(id), form(AWKWARD));
        for (text, value) in [
            (sent.clone(), sent.clone()),
            (URL_SAFE_NO_PAD.encode(&sent_pair), sent_pair.clone()),
            (sent_pair.clone(), sent_pair),
            (STANDARD.encode(&raw_pair), raw_pair.clone()),
            (URL_SAFE_NO_PAD.encode(&raw_pair), raw_pair.clone()),
            (raw_pair.clone(), raw_pair),
        ] {
            assert_hidden(&store, &text, &fingerprint(&value));
        }
        // The client id alone is no secret.
        assert_eq!(store.scrub(id), id);
    }

    #[test]
    fn every_encoding_shows_the_fingerprint_of_the_value() {
        let store = configured(AWKWARD);
        for form in forms(AWKWARD) {
            assert!(form.len() >= SCRUB_MIN);
            assert_hidden(&store, &form, &fingerprint(AWKWARD));
        }
        // Short forms never blot out ordinary text.
        assert_eq!(
            forms("abcdefgh")
                .iter()
                .filter(|f| f.len() < SCRUB_MIN)
                .count(),
            0
        );
    }

    proptest::proptest! {
        #[test]
        fn scrub_never_panics_and_hides_the_secret(
            secret in "[ -~]{8,40}",
            before in "\\PC{0,20}",
            after in "\\PC{0,20}",
            breaks in proptest::collection::vec(0usize..40, 0..3),
        ) {
            let store = configured(&secret);
            let mut split = String::new();
            for (i, c) in secret.chars().enumerate() {
                if breaks.contains(&i) && i > 0 {
                    split.push('\n');
                }
                split.push(c);
            }
            let scrubbed = store.scrub(&format!("{before}{split}{after}")).into_owned();
            proptest::prop_assert!(!scrubbed.replace(['\r', '\n'], "").contains(secret.as_str()), "{}", scrubbed);
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
