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
use crate::checks::ids;
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
