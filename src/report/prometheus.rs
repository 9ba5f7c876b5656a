//! Prometheus text exposition renderer, for node_exporter's textfile collector (and,
//! later, the answer of `ssoprobe serve`'s `/probe`).
//!
//! Every sample carries `target="<name>"`; the samples of one family are together even
//! with several targets, under one `# HELP` and one `# TYPE` line, as the format
//! requires. Everything is a gauge: each file describes one run. No sample has a
//! timestamp (the textfile collector refuses them); `ssoprobe_run_timestamp_seconds`
//! says when the run started, so staleness can be alerted on
//! (`time() - ssoprobe_run_timestamp_seconds > 3600`).
//!
//! Semantics:
//! - `ssoprobe_success` is 1 when no check failed: a warning (a certificate expiring in
//!   three weeks, a login page without Instant Auth) still lets users sign in, and has
//!   its own metric to alert on. It is 0 exactly when the exit code is 2.
//! - `ssoprobe_check_success` is 1 for pass and warn, 0 for fail. A skipped check is
//!   left out: it did not run, and a 0 would page for every consequence of one broken
//!   prerequisite. `ssoprobe_check_status` (one-hot over pass, warn, fail, skip) shows
//!   skips and warnings.
//! - `ssoprobe_check_duration_seconds` is left out for skipped checks (they measured
//!   nothing).
//! - `ssoprobe_login_duration_seconds` is the time the browser-equivalent login took:
//!   the sum of `passkey.login`, `idp.code`, `access.callback`, `service.reach` and
//!   `access.token` among those that ran. It is left out when none ran. A failed login
//!   still reports its time until the failure; read it with `ssoprobe_success`.

use super::TargetRun;
use crate::checks::{Outcome, ids};
use crate::finding::Status;
use std::fmt::Write as _;
use std::time::Duration;

/// The checks whose durations make up a login, in the order a browser goes through
/// them. `idp.exchange` is ssoprobe's own second code flow, not part of a user's login.
const LOGIN_CHECKS: [&str; 5] = [
    ids::PASSKEY_LOGIN,
    ids::IDP_CODE,
    ids::ACCESS_CALLBACK,
    ids::SERVICE_REACH,
    ids::ACCESS_TOKEN,
];

/// Every status, for the one-hot `ssoprobe_check_status`.
const STATUSES: [Status; 4] = [Status::Pass, Status::Warn, Status::Fail, Status::Skip];

/// Renders `runs` as Prometheus text exposition (version 0.0.4).
/// The exposition when ssoprobe could not run (exit 3): not a success, and why.
pub fn unknown(error: &str) -> String {
    format!(
        "# HELP ssoprobe_success Whether every check passed (1) or not (0).\n# TYPE ssoprobe_success gauge\nssoprobe_success 0\n# HELP ssoprobe_error ssoprobe could not run: bad usage, configuration or files (the reason is in the label).\n# TYPE ssoprobe_error gauge\nssoprobe_error{{reason=\"{}\"}} 1\n",
        escape(&crate::redact::terminal_safe(error))
    )
}

pub fn render(runs: &[TargetRun<'_>]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: &mut dyn Iterator<Item = Sample>| {
        let mut samples = samples.peekable();
        // An empty family says nothing; leaving it out keeps the file short.
        if samples.peek().is_none() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for s in samples {
            let _ = write!(out, "{name}{{");
            for (i, (k, v)) in s.labels.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(out, "{sep}{k}=\"{}\"", escape(v));
            }
            let _ = writeln!(out, "}} {}", s.value);
        }
    };

    family(
        "ssoprobe_success",
        "Whether no check of the target failed (1) or at least one did (0); warnings count as success.",
        &mut runs.iter().map(|r| {
            let failed = r.outcome.checks.iter().any(|c| c.status == Status::Fail);
            Sample::new(r, [], bool_value(!failed))
        }),
    );
    family(
        "ssoprobe_check_success",
        "Whether the check passed or warned (1) or failed (0); skipped checks have no sample.",
        &mut runs.iter().flat_map(|r| {
            r.outcome
                .checks
                .iter()
                .filter(|c| c.status != Status::Skip)
                .map(move |c| {
                    Sample::new(
                        r,
                        [("check", c.id.as_str())],
                        bool_value(c.status != Status::Fail),
                    )
                })
        }),
    );
    family(
        "ssoprobe_check_status",
        "The check's status, one-hot over pass, warn, fail and skip.",
        &mut runs.iter().flat_map(|r| {
            r.outcome.checks.iter().flat_map(move |c| {
                STATUSES.iter().map(move |s| {
                    Sample::new(
                        r,
                        [("check", c.id.as_str()), ("status", s.as_str())],
                        bool_value(c.status == *s),
                    )
                })
            })
        }),
    );
    family(
        "ssoprobe_check_duration_seconds",
        "Time the check itself took, without waiting for its prerequisites; skipped checks have no sample.",
        &mut runs.iter().flat_map(|r| {
            r.outcome
                .checks
                .iter()
                .filter(|c| c.status != Status::Skip)
                .map(move |c| Sample::new(r, [("check", c.id.as_str())], seconds(c.duration)))
        }),
    );
    family(
        "ssoprobe_tls_cert_expiry_timestamp_seconds",
        "When the host's leaf certificate expires (its notAfter), in Unix seconds.",
        &mut runs.iter().flat_map(|r| {
            r.outcome.checks.iter().filter_map(move |c| {
                let host = c.id.strip_prefix(ids::TLS_PREFIX)?;
                let not_after = c.details.get("not_after_unix")?.as_i64()?;
                Some(Sample::new(r, [("host", host)], not_after.to_string()))
            })
        }),
    );
    family(
        "ssoprobe_login_duration_seconds",
        "Time the passkey login took, from Pocket ID's sign-in to the site's answer and the verified Access token.",
        &mut runs.iter().filter_map(|r| {
            let ran: Vec<Duration> = r
                .outcome
                .checks
                .iter()
                .filter(|c| c.status != Status::Skip && LOGIN_CHECKS.contains(&c.id.as_str()))
                .map(|c| c.duration)
                .collect();
            (!ran.is_empty()).then(|| Sample::new(r, [], seconds(ran.iter().sum())))
        }),
    );
    family(
        "ssoprobe_run_duration_seconds",
        "Wall time of the target's run.",
        &mut runs
            .iter()
            .map(|r| Sample::new(r, [], seconds(r.outcome.duration))),
    );
    family(
        "ssoprobe_run_timestamp_seconds",
        "When the target's run started, in Unix seconds.",
        &mut runs
            .iter()
            .map(|r| Sample::new(r, [], r.started_unix.to_string())),
    );
    out
}

/// The site's final answer in a run, as its recorded requests show it: the last request
/// of `service.reach` (the site once logged in), else of `service.redirect` (the site
/// before the login, when the run did not log in or stopped before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalAnswer {
    /// Its status code; 0 when no answer came, as blackbox_exporter reports it.
    pub status: u16,
    /// The URL asked, as recorded (redacted).
    pub url: String,
}

/// The site's final answer among a run's recorded requests (see [`FinalAnswer`]).
pub fn final_answer(entries: &[crate::har::Entry]) -> Option<FinalAnswer> {
    [ids::SERVICE_REACH, ids::SERVICE_REDIRECT]
        .iter()
        .find_map(|check| {
            let e = entries.iter().rev().find(|e| e.check == *check)?;
            Some(FinalAnswer {
                status: e.response["status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(0),
                url: e.request["url"].as_str().unwrap_or_default().to_string(),
            })
        })
}

/// blackbox_exporter's metrics of an HTTP probe, where ssoprobe measures the same thing,
/// with its names, types, labels and help texts, for `serve`'s `/probe` answer (no
/// `target` label: the answer is one target's, and Prometheus adds its labels):
///
/// - `probe_http_status_code`: the status of the site's final answer ([`FinalAnswer`]),
///   0 when none came.
/// - `probe_http_ssl`: 1 when that answer came over TLS.
/// - `probe_tls_version_info{version="TLS 1.3"}`: the TLS version of that answer's host,
///   as its `tls.<host>` check recorded it; left out when the answer did not come over
///   TLS or the check recorded none.
/// - `probe_ssl_earliest_cert_expiry`: the earliest notAfter, in Unix seconds, among the
///   leaf certificates the `tls.*` checks read (the site's, the team domain's, Pocket
///   ID's): every one of them must be valid for a login.
///
/// Left out because ssoprobe does not measure them with blackbox_exporter's meaning:
/// `probe_dns_lookup_time_seconds` (the HTTP client does not time its lookups) and
/// `probe_http_redirects` (the final answer is one request, whose redirects the checks
/// before it followed, each its own way).
pub fn blackbox(outcome: &Outcome, answer: Option<&FinalAnswer>) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, labels: String, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{labels} {value}"
        );
    };
    if let Some(answer) = answer {
        gauge(
            "probe_http_status_code",
            "Response HTTP status code",
            String::new(),
            answer.status.to_string(),
        );
        let url = url::Url::parse(&answer.url).ok();
        let tls = answer.status != 0 && url.as_ref().is_some_and(|u| u.scheme() == "https");
        gauge(
            "probe_http_ssl",
            "Indicates if SSL was used for the final redirect",
            String::new(),
            bool_value(tls),
        );
        let version = url
            .as_ref()
            .and_then(|u| u.host_str())
            .filter(|_| tls)
            .and_then(|host| tls_version(outcome, host));
        if let Some(version) = version {
            gauge(
                "probe_tls_version_info",
                "Returns the TLS version used or NaN when unknown",
                format!("{{version=\"{}\"}}", escape(&version)),
                "1".to_string(),
            );
        }
    }
    let earliest = outcome
        .checks
        .iter()
        .filter(|c| c.id.starts_with(ids::TLS_PREFIX))
        .filter_map(|c| c.details.get("not_after_unix")?.as_i64())
        .min();
    if let Some(earliest) = earliest {
        gauge(
            "probe_ssl_earliest_cert_expiry",
            "Returns last SSL chain expiry in unixtime",
            String::new(),
            earliest.to_string(),
        );
    }
    out
}

/// The TLS version the `tls.<host>` check recorded, in blackbox_exporter's words
/// ("TLSv1.3" → "TLS 1.3").
fn tls_version(outcome: &Outcome, host: &str) -> Option<String> {
    let id = format!("{}{}", ids::TLS_PREFIX, host.to_ascii_lowercase());
    let protocol = outcome
        .checks
        .iter()
        .find(|c| c.id == id)?
        .details
        .get("protocol")?
        .as_str()?;
    let number = protocol.strip_prefix("TLSv")?;
    (!number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .then(|| format!("TLS {number}"))
}

/// One sample: its labels (`target` first) and its value, already formatted.
struct Sample<'a> {
    labels: Vec<(&'a str, &'a str)>,
    value: String,
}

impl<'a> Sample<'a> {
    fn new<const N: usize>(
        run: &'a TargetRun<'a>,
        labels: [(&'a str, &'a str); N],
        value: String,
    ) -> Sample<'a> {
        let mut all = Vec::with_capacity(N + 1);
        all.push(("target", run.name));
        all.extend(labels);
        Sample { labels: all, value }
    }
}

fn bool_value(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

/// Seconds as a float; Rust prints the shortest exact form, never an exponent or NaN.
fn seconds(d: Duration) -> String {
    d.as_secs_f64().to_string()
}

/// Escapes a label value as the text format requires: backslash, double quote and line
/// feed. Other characters, including other control characters, are valid as they are.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::finding::CheckResult;
    use crate::report::Target;
    use serde_json::{Map, json};

    fn check(id: &str, status: Status, ms: u64) -> CheckResult {
        CheckResult {
            id: id.into(),
            status,
            duration: Duration::from_millis(ms),
            summary: String::new(),
            hint: None,
            could_not_run: false,
            not_asked: false,
            unsent: false,
            details: Map::new(),
        }
    }

    fn target() -> Target {
        Target {
            service: "https://a.example/".into(),
            idp: "https://id.example/".into(),
            team_domain: None,
            found: Default::default(),
        }
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape("é\tx"), "é\tx");
    }

    #[test]
    fn one_target_in_full() {
        let target = target();
        let mut tls = check("tls.a.example", Status::Pass, 17);
        tls.details
            .insert("not_after_unix".into(), json!(1_803_715_659_i64));
        let outcome = Outcome {
            checks: vec![
                tls,
                check("passkey.login", Status::Pass, 12),
                check("access.callback", Status::Warn, 13),
                check("idp.exchange", Status::Pass, 100),
                check("service.reach", Status::Fail, 1),
                check("access.token", Status::Skip, 0),
            ],
            duration: Duration::from_millis(146),
            before: Duration::ZERO,
        };
        let text = render(&[TargetRun {
            name: "a\"b",
            target: &target,
            outcome: &outcome,
            started_unix: 1_795_943_259,
        }]);
        let expected = [
            "# HELP ssoprobe_success Whether no check of the target failed (1) or at least one did (0); warnings count as success.",
            "# TYPE ssoprobe_success gauge",
            "ssoprobe_success{target=\"a\\\"b\"} 0",
            "# HELP ssoprobe_check_success Whether the check passed or warned (1) or failed (0); skipped checks have no sample.",
            "# TYPE ssoprobe_check_success gauge",
            "ssoprobe_check_success{target=\"a\\\"b\",check=\"tls.a.example\"} 1",
            "ssoprobe_check_success{target=\"a\\\"b\",check=\"passkey.login\"} 1",
            "ssoprobe_check_success{target=\"a\\\"b\",check=\"access.callback\"} 1",
            "ssoprobe_check_success{target=\"a\\\"b\",check=\"idp.exchange\"} 1",
            "ssoprobe_check_success{target=\"a\\\"b\",check=\"service.reach\"} 0",
        ];
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..expected.len()], expected, "{text}");
        assert!(text.contains("ssoprobe_check_status{target=\"a\\\"b\",check=\"access.token\",status=\"skip\"} 1\n"), "{text}");
        assert!(text.contains("ssoprobe_check_status{target=\"a\\\"b\",check=\"access.token\",status=\"pass\"} 0\n"), "{text}");
        assert!(
            !text.contains(
                "ssoprobe_check_duration_seconds{target=\"a\\\"b\",check=\"access.token\"}"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "ssoprobe_check_duration_seconds{target=\"a\\\"b\",check=\"tls.a.example\"} 0.017\n"
            ),
            "{text}"
        );
        assert!(text.contains("ssoprobe_tls_cert_expiry_timestamp_seconds{target=\"a\\\"b\",host=\"a.example\"} 1803715659\n"), "{text}");
        // 12 + 13 + 1 ms: idp.exchange is not part of the login, access.token was skipped.
        assert!(
            text.contains("ssoprobe_login_duration_seconds{target=\"a\\\"b\"} 0.026\n"),
            "{text}"
        );
        assert!(
            text.contains("ssoprobe_run_duration_seconds{target=\"a\\\"b\"} 0.146\n"),
            "{text}"
        );
        assert!(
            text.ends_with("ssoprobe_run_timestamp_seconds{target=\"a\\\"b\"} 1795943259\n"),
            "{text}"
        );
        assert!(!text.contains("NaN"));
    }

    fn entry(check: &str, url: &str, status: u16) -> crate::har::Entry {
        crate::har::Entry {
            check: check.into(),
            started: std::time::SystemTime::UNIX_EPOCH,
            request: json!({"method": "GET", "url": url}),
            response: json!({"status": status}),
            wait: Duration::ZERO,
            receive: Duration::ZERO,
            server_ip: None,
            connection: None,
            proxy: None,
        }
    }

    #[test]
    fn blackbox_exporter_metrics_of_a_login() {
        let mut site = check("tls.a.example", Status::Pass, 3);
        site.details.insert("protocol".into(), json!("TLSv1.3"));
        site.details
            .insert("not_after_unix".into(), json!(1_803_715_659_i64));
        let mut idp = check("tls.id.example", Status::Pass, 3);
        idp.details.insert("protocol".into(), json!("TLSv1.2"));
        idp.details
            .insert("not_after_unix".into(), json!(1_790_000_000_i64));
        let outcome = Outcome {
            checks: vec![
                site,
                idp,
                check("service.redirect", Status::Pass, 1),
                check("service.reach", Status::Pass, 1),
            ],
            duration: Duration::from_millis(10),
            before: Duration::ZERO,
        };
        let entries = [
            entry("service.redirect", "https://a.example/", 302),
            entry(
                "idp.discovery",
                "https://id.example/.well-known/openid-configuration",
                200,
            ),
            entry(
                "service.reach",
                "https://A.example/app?x=%5Bredacted:1%5D",
                200,
            ),
            entry(
                "access.token",
                "https://t.example/cdn-cgi/access/certs",
                200,
            ),
        ];
        let answer = final_answer(&entries).unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(
            blackbox(&outcome, Some(&answer)),
            "# HELP probe_http_status_code Response HTTP status code\n# TYPE probe_http_status_code gauge\nprobe_http_status_code 200\n\
# HELP probe_http_ssl Indicates if SSL was used for the final redirect\n# TYPE probe_http_ssl gauge\nprobe_http_ssl 1\n\
# HELP probe_tls_version_info Returns the TLS version used or NaN when unknown\n# TYPE probe_tls_version_info gauge\nprobe_tls_version_info{version=\"TLS 1.3\"} 1\n\
# HELP probe_ssl_earliest_cert_expiry Returns last SSL chain expiry in unixtime\n# TYPE probe_ssl_earliest_cert_expiry gauge\nprobe_ssl_earliest_cert_expiry 1790000000\n"
        );
    }

    #[test]
    fn blackbox_exporter_metrics_without_a_login_or_an_answer() {
        let outcome = Outcome {
            checks: vec![check("service.redirect", Status::Pass, 1)],
            duration: Duration::from_millis(10),
            before: Duration::ZERO,
        };
        // No login: the site's answer before it; over plain HTTP no TLS version.
        let entries = [
            entry("service.redirect", "http://a.example/", 301),
            entry("service.redirect", "http://a.example/login", 302),
        ];
        let text = blackbox(&outcome, final_answer(&entries).as_ref());
        assert!(text.contains("\nprobe_http_status_code 302\n"), "{text}");
        assert!(text.contains("\nprobe_http_ssl 0\n"), "{text}");
        assert!(!text.contains("probe_tls_version_info"), "{text}");
        assert!(!text.contains("probe_ssl_earliest_cert_expiry"), "{text}");
        // The login's request got no answer: status 0, and no TLS without an answer.
        let entries = [
            entry("service.redirect", "https://a.example/", 302),
            entry("service.reach", "https://a.example/", 0),
        ];
        let text = blackbox(&outcome, final_answer(&entries).as_ref());
        assert!(text.contains("\nprobe_http_status_code 0\n"), "{text}");
        assert!(text.contains("\nprobe_http_ssl 0\n"), "{text}");
        // Nothing recorded: nothing invented.
        assert_eq!(final_answer(&[]), None);
        assert_eq!(blackbox(&outcome, None), "");
    }

    #[test]
    fn several_targets_keep_each_family_together() {
        let target = target();
        let a = Outcome {
            checks: vec![check("passkey.login", Status::Pass, 5)],
            duration: Duration::from_secs(1),
            before: Duration::ZERO,
        };
        let b = Outcome {
            checks: vec![check("service.redirect", Status::Fail, 5)],
            duration: Duration::from_secs(2),
            before: Duration::ZERO,
        };
        let text = render(&[
            TargetRun {
                name: "a",
                target: &target,
                outcome: &a,
                started_unix: 1,
            },
            TargetRun {
                name: "b\\\n",
                target: &target,
                outcome: &b,
                started_unix: 2,
            },
        ]);
        // Each family's HELP appears once and its samples follow it without interruption.
        let mut seen = Vec::new();
        let mut current = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!seen.contains(&name), "{name} twice\n{text}");
                seen.push(name);
                current = name;
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "{line} outside its family\n{text}");
            }
        }
        assert!(
            text.contains(
                "ssoprobe_success{target=\"a\"} 1\nssoprobe_success{target=\"b\\\\\\n\"} 0\n"
            ),
            "{text}"
        );
        // Only a ran a login.
        assert!(
            text.contains("ssoprobe_login_duration_seconds{target=\"a\"} 0.005\n# HELP"),
            "{text}"
        );
        assert!(
            !text.contains("ssoprobe_login_duration_seconds{target=\"b"),
            "{text}"
        );
        // No TLS check: no family at all rather than an empty one.
        assert!(
            !text.contains("ssoprobe_tls_cert_expiry_timestamp_seconds"),
            "{text}"
        );
        assert!(text.contains("ssoprobe_run_timestamp_seconds{target=\"a\"} 1\nssoprobe_run_timestamp_seconds{target=\"b\\\\\\n\"} 2\n"), "{text}");
    }
}
