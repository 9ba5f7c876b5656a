//! JUnit XML renderer, for CI systems that show test reports (GitLab, Jenkins, GitHub
//! actions that read JUnit).
//!
//! One `<testsuite>` per target, one `<testcase>` per check. JUnit knows four outcomes
//! and ssoprobe's statuses map onto them as hurl's report does:
//!
//! - `fail` of a check that ran and found a problem → `<failure type="fail">`;
//! - `fail` of a check that could not run (no answer: DNS, connection, TLS, timeout) →
//!   `<error type="error">`, so that "the site is misconfigured" and "the probe could
//!   not reach it" are told apart;
//! - `warn` → a passing testcase with the warning in `<system-out>`: JUnit has no
//!   warning, and a failed CI job for a certificate that expires in three weeks would
//!   teach people to ignore the report;
//! - `skip` → `<skipped>`.
//!
//! The document validates against `fixtures/junit/junit.xsd`.

use super::TargetRun;
use crate::finding::{CheckResult, Status};
use std::fmt::Write as _;
use std::time::Duration;

/// Renders `runs` as a JUnit XML document.
/// The document when ssoprobe could not run (exit 3): one `<error>`, which is what
/// JUnit readers call a test that could not be carried out.
pub fn unknown(error: &str) -> String {
    let message = escape(&crate::redact::terminal_safe(error));
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"ssoprobe\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\">\n  <testsuite name=\"ssoprobe\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\">\n    <testcase name=\"configuration\" classname=\"ssoprobe\" time=\"0.000\">\n      <error message=\"{message}\" type=\"unusable\">{message}</error>\n    </testcase>\n  </testsuite>\n</testsuites>\n"
    )
}

pub fn render(runs: &[TargetRun<'_>]) -> String {
    let suites: Vec<Counts> = runs.iter().map(|r| Counts::of(&r.outcome.checks)).collect();
    let total = suites.iter().fold(Counts::default(), |a, b| a.add(b));
    // Targets may be checked concurrently; like other JUnit producers we report the sum
    // of the suites' times, not the wall time.
    let time: Duration = runs.iter().map(|r| r.outcome.duration).sum();

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"ssoprobe\" {} time=\"{}\">",
        total.attributes(),
        seconds(time)
    );
    for (run, counts) in runs.iter().zip(&suites) {
        suite(&mut out, run, counts);
    }
    out.push_str("</testsuites>\n");
    out
}

fn suite(out: &mut String, run: &TargetRun<'_>, counts: &Counts) {
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" {} time=\"{}\" timestamp=\"{}\">",
        escape(run.name),
        counts.attributes(),
        seconds(run.outcome.duration),
        crate::timefmt::rfc3339(run.started_unix)
    );
    // What was checked, so that a report read later in CI still says which site and
    // which Pocket ID it was about.
    out.push_str("    <properties>\n");
    let mut property = |name: &str, value: &str| {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            escape(value)
        );
    };
    property("service", &run.target.service);
    property("idp", &run.target.idp);
    if let Some(team) = &run.target.team_domain {
        property("team_domain", team);
    }
    out.push_str("    </properties>\n");
    let classname = escape(&format!("ssoprobe.{}", run.name));
    for check in &run.outcome.checks {
        testcase(out, &classname, check);
    }
    out.push_str("  </testsuite>\n");
}

fn testcase(out: &mut String, classname: &str, check: &CheckResult) {
    let _ = write!(
        out,
        "    <testcase classname=\"{classname}\" name=\"{}\" time=\"{}\"",
        escape(&check.id),
        seconds(check.duration)
    );
    let summary = escape(&check.summary);
    // The message attribute is a one-liner in most UIs; the body is what GitLab and
    // Jenkins show expanded, so it carries the summary and the hint.
    let body = {
        let mut b = summary.clone();
        if let Some(hint) = &check.hint {
            b.push_str("\nhint: ");
            b.push_str(&escape(hint));
        }
        b
    };
    match check.status {
        Status::Pass => out.push_str("/>\n"),
        Status::Warn => {
            let _ = writeln!(
                out,
                ">\n      <system-out>warning: {body}</system-out>\n    </testcase>"
            );
        }
        Status::Fail => {
            let kind = if check.could_not_run {
                "error"
            } else {
                "failure"
            };
            let ty = if check.could_not_run { "error" } else { "fail" };
            let _ = writeln!(
                out,
                ">\n      <{kind} message=\"{summary}\" type=\"{ty}\">{body}</{kind}>\n    </testcase>"
            );
        }
        Status::Skip => {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{summary}\"/>\n    </testcase>"
            );
        }
    }
}

/// The counters of a `<testsuite>` or `<testsuites>`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

impl Counts {
    fn of(checks: &[CheckResult]) -> Counts {
        let mut c = Counts {
            tests: checks.len(),
            ..Counts::default()
        };
        for check in checks {
            match check.status {
                Status::Fail if check.could_not_run => c.errors += 1,
                Status::Fail => c.failures += 1,
                Status::Skip => c.skipped += 1,
                Status::Pass | Status::Warn => {}
            }
        }
        c
    }

    fn add(self, other: &Counts) -> Counts {
        Counts {
            tests: self.tests + other.tests,
            failures: self.failures + other.failures,
            errors: self.errors + other.errors,
            skipped: self.skipped + other.skipped,
        }
    }

    fn attributes(&self) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
            self.tests, self.failures, self.errors, self.skipped
        )
    }
}

/// Seconds with millisecond precision, the unit of JUnit's `time`.
fn seconds(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// Escapes `text` for an XML 1.0 attribute value or text node.
///
/// Characters XML 1.0 forbids (C0 controls other than tab, newline and carriage return;
/// U+FFFE, U+FFFF) are dropped: no escape can represent them, and a single one makes
/// the whole report unreadable to the CI. Tab, newline and carriage return become
/// character references so that attribute-value normalisation keeps them.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// XML 1.0's `Char` production (Rust's `char` already excludes surrogates).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{FFFD}' | '\u{10000}'..) && c != '\u{FFFE}'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::report::Target;
    use serde_json::Map;

    fn check(id: &str, status: Status, could_not_run: bool) -> CheckResult {
        CheckResult {
            id: id.into(),
            status,
            duration: Duration::from_millis(12),
            summary: format!("{id} summary"),
            hint: matches!(status, Status::Warn | Status::Fail).then(|| "do this".to_string()),
            could_not_run,
            not_asked: false,
            unsent: false,
            details: Map::new(),
        }
    }

    fn target() -> Target {
        Target {
            service: "https://a.example/".into(),
            idp: "https://id.example/".into(),
            team_domain: Some("t.cloudflareaccess.com".into()),
            found: Default::default(),
        }
    }

    #[test]
    fn escapes_markup_quotes_and_drops_forbidden_characters() {
        assert_eq!(
            escape("a<b>&\"c'd"),
            "a&lt;b&gt;&amp;&quot;c&apos;d".to_string()
        );
        assert_eq!(escape("x\u{0}\u{1b}y\u{FFFE}\u{FFFF}z"), "xyz");
        assert_eq!(escape("1\t2\n3\r"), "1&#9;2&#10;3&#13;");
        assert_eq!(escape("é → 😀"), "é → 😀");
    }

    #[test]
    fn failure_error_warning_and_skip() {
        let target = target();
        let mut nasty = check("idp.token", Status::Fail, false);
        nasty.summary = "HTTP <500> & \"bad\"\u{7}".into();
        let outcome = Outcome {
            checks: vec![
                check("tls.a.example", Status::Pass, false),
                check("access.login", Status::Warn, false),
                nasty,
                check("idp.jwks", Status::Fail, true),
                check("passkey.login", Status::Skip, false),
            ],
            duration: Duration::from_millis(1500),
            before: Duration::ZERO,
        };
        let xml = render(&[TargetRun {
            name: "a.example",
            target: &target,
            outcome: &outcome,
            started_unix: 0,
        }]);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"ssoprobe\" tests=\"5\" failures=\"1\" errors=\"1\" skipped=\"1\" time=\"1.500\">"), "{xml}");
        assert!(xml.contains("timestamp=\"1970-01-01T00:00:00Z\""), "{xml}");
        assert!(
            xml.contains(
                "<testcase classname=\"ssoprobe.a.example\" name=\"tls.a.example\" time=\"0.012\"/>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<system-out>warning: access.login summary\nhint: do this</system-out>"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<failure message=\"HTTP &lt;500&gt; &amp; &quot;bad&quot;\" type=\"fail\">"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<error message=\"idp.jwks summary\" type=\"error\">idp.jwks summary\nhint: do this</error>"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"passkey.login summary\"/>"),
            "{xml}"
        );
        assert!(!xml.contains('\u{7}'));
    }

    #[test]
    fn one_suite_per_target_and_totals_over_all() {
        let target = target();
        let a = Outcome {
            checks: vec![
                check("x", Status::Pass, false),
                check("y", Status::Fail, false),
            ],
            duration: Duration::from_millis(100),
            before: Duration::ZERO,
        };
        let b = Outcome {
            checks: vec![check("x", Status::Fail, true)],
            duration: Duration::from_millis(250),
            before: Duration::ZERO,
        };
        let xml = render(&[
            TargetRun {
                name: "a",
                target: &target,
                outcome: &a,
                started_unix: 60,
            },
            TargetRun {
                name: "b&c",
                target: &target,
                outcome: &b,
                started_unix: 120,
            },
        ]);
        assert!(xml.contains("<testsuites name=\"ssoprobe\" tests=\"3\" failures=\"1\" errors=\"1\" skipped=\"0\" time=\"0.350\">"), "{xml}");
        assert!(xml.contains("<testsuite name=\"a\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"0.100\" timestamp=\"1970-01-01T00:01:00Z\">"), "{xml}");
        assert!(xml.contains("<testsuite name=\"b&amp;c\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.250\" timestamp=\"1970-01-01T00:02:00Z\">"), "{xml}");
        assert!(xml.contains("classname=\"ssoprobe.b&amp;c\""), "{xml}");
        assert_eq!(xml.matches("<testsuite ").count(), 2);
        assert!(xml.ends_with("</testsuites>\n"));
    }

    #[test]
    fn no_targets_is_an_empty_but_valid_document() {
        assert_eq!(
            render(&[]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"ssoprobe\" tests=\"0\" failures=\"0\" errors=\"0\" skipped=\"0\" time=\"0.000\">\n</testsuites>\n"
        );
    }
}
