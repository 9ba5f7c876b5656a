//! The result model of every check: a [`Status`], a [`CheckResult`], and [`Findings`],
//! which collects one check's problems (each with its hint) and decides its status.
//! The probe's checks (`checks/`) and the configuration checks (`doctor/`) both yield
//! these; the reports render them.

use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;
use tokio::time::Instant;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// All is as it should be.
    Pass,
    /// Works, but something needs attention.
    Warn,
    /// Broken.
    Fail,
    /// Not run: a prerequisite failed.
    Skip,
}

impl Status {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Stable dotted id.
    pub id: String,
    /// Verdict.
    pub status: Status,
    /// Time the check itself took (not the time it waited for prerequisites).
    #[serde(serialize_with = "as_millis", rename = "duration_ms")]
    pub duration: Duration,
    /// One-line finding.
    pub summary: String,
    /// On warn/fail: the likely cause and fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The failure is that the check could not run (no answer: DNS, connection, TLS,
    /// timeout), not that it found something wrong. JUnit reports it as an error.
    #[serde(skip)]
    pub could_not_run: bool,
    /// A skip because the configuration does not ask for the check (no API token for
    /// `config.*`, say), not because an earlier check failed: it does not turn a passing
    /// run into a warning.
    #[serde(skip)]
    pub not_asked: bool,
    /// A skip because the run's deadline had passed before the check's request could be
    /// sent: it decides nothing, so a run whose other checks did not fail cannot pass
    /// (the runner's `settle_unsent`).
    #[serde(skip)]
    pub unsent: bool,
    /// Facts found on the way.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// How a summary ends that leaves out some of the check's problems ("(+2 more, see
/// details)"): `details.problems` holds them all.
const MORE_SEE_DETAILS: &str = " more, see details)";

impl CheckResult {
    /// The summary with its pointer to the problems it leaves out ("(+2 more, see
    /// details)") made to point at `to` instead ("-v lists them": "(+2 more: -v lists
    /// them)"; "below": "(+2 more, below)"), for a report that shows them elsewhere.
    pub fn summary_pointing(&self, to: &str) -> String {
        let separator = if to.starts_with('-') { ": " } else { ", " };
        self.summary.strip_suffix(MORE_SEE_DETAILS).map_or_else(
            || self.summary.clone(),
            |head| format!("{head} more{separator}{to})"),
        )
    }

    /// A skipped check.
    pub fn skip(id: &str, reason: impl Into<String>) -> CheckResult {
        CheckResult {
            id: id.to_string(),
            status: Status::Skip,
            duration: Duration::ZERO,
            summary: reason.into(),
            hint: None,
            could_not_run: false,
            not_asked: false,
            unsent: false,
            details: Map::new(),
        }
    }

    /// A skipped check that the configuration does not ask for (see [`Self::not_asked`]).
    pub fn not_asked(id: &str, reason: impl Into<String>) -> CheckResult {
        CheckResult {
            not_asked: true,
            ..CheckResult::skip(id, reason)
        }
    }
}

/// Collects the findings of one check; the worst decides its status.
pub struct Findings {
    id: String,
    started: Instant,
    /// Time spent waiting for another check's result, not charged to this one.
    waited: Duration,
    /// Set when the check could not even start its request (the deadline had passed).
    not_run: Option<String>,
    problems: Vec<(Status, String, String)>,
    details: Map<String, Value>,
    could_not_run: bool,
}

impl Findings {
    /// Starts the clock of check `id`.
    pub fn start(id: &str) -> Findings {
        Findings {
            id: id.to_string(),
            started: Instant::now(),
            waited: Duration::ZERO,
            not_run: None,
            problems: Vec::new(),
            details: Map::new(),
            could_not_run: false,
        }
    }

    /// Awaits another check's result (the discovery document, say) without charging
    /// the wait to this check's duration.
    pub async fn waiting_for<T>(&mut self, other: impl Future<Output = T>) -> T {
        let since = Instant::now();
        let value = other.await;
        self.waited += since.elapsed();
        value
    }

    /// Records a failure with its hint: the likely cause and the fix. There is no way to
    /// record a problem without one.
    pub fn fail(&mut self, finding: impl Into<String>, hint: impl Into<String>) {
        self.problem(Status::Fail, finding.into(), hint.into());
    }

    /// Counts `spent` into this check's duration: its request was made before it
    /// started, by the walk that looked for Pocket ID.
    pub fn spent_before(&mut self, spent: Duration) {
        self.started = self.started.checked_sub(spent).unwrap_or(self.started);
    }

    /// Leaves `waited` out of this check's duration (time it spent waiting for another
    /// check, measured by the caller).
    pub fn not_charged(&mut self, waited: Duration) {
        self.waited += waited;
    }

    /// Records a request that got no answer: a failure to run (DNS, connection, TLS,
    /// timeout) — or, when the run's deadline had passed before it could be sent, the
    /// check ends as `skip`, naming what took the time (and becomes a failure when no
    /// other check's failure explains the run: the runner's `settle_unsent`).
    pub fn request_failed(&mut self, what: impl std::fmt::Display, e: &crate::http::HttpError) {
        if let crate::http::HttpError::Deadline {
            cut: None,
            culprit,
            total,
            before,
            ..
        } = e
        {
            self.not_run = Some(format!(
                "skipped: {what} was not sent: {} had passed{}",
                crate::http::deadline_words(*total, *before),
                culprit
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ));
            return;
        }
        if let crate::http::HttpError::Proxy(failure) = e {
            // The proxy failed it, not the host: the run's verdict must not call the
            // host down.
            self.detail(PROXY_FAILED, failure.proxy.clone());
        }
        if matches!(
            e,
            crate::http::HttpError::Timeout(_) | crate::http::HttpError::Deadline { .. }
        ) {
            // Asked, and no answer came in time: slow, not (yet) down.
            self.detail("no_answer_in_time", true);
        }
        self.fail_transport(format!("{what}: {e}"), e.hint());
    }

    /// Records a failure to get any answer (the check could not run).
    pub fn fail_transport(&mut self, finding: impl Into<String>, hint: impl Into<String>) {
        self.could_not_run = true;
        self.fail(finding, hint);
    }

    /// Records a warning with its hint.
    pub fn warn(&mut self, finding: impl Into<String>, hint: impl Into<String>) {
        self.problem(Status::Warn, finding.into(), hint.into());
    }

    fn problem(&mut self, status: Status, finding: String, hint: String) {
        let finding = crate::redact::terminal_safe(&crate::redact::scrub(finding.trim()));
        let hint = crate::redact::terminal_safe(&crate::redact::scrub(hint.trim()));
        // An empty text is a bug of the check; it still must not reach the user empty.
        let finding = if finding.is_empty() {
            format!("{} found a problem it could not name", self.id)
        } else {
            finding
        };
        let hint = if hint.is_empty() {
            "run again with --trace to see every request and answer of this check".to_string()
        } else {
            hint
        };
        self.problems.push((status, finding, hint));
    }

    /// Records a fact for the details (texts in it are scrubbed of secret values and
    /// control characters, like findings).
    pub fn detail(&mut self, key: &str, value: impl Into<Value>) {
        let value = match value.into() {
            Value::String(text) => {
                Value::String(crate::redact::terminal_safe(&crate::redact::scrub(&text)))
            }
            other => other,
        };
        self.details.insert(key.to_string(), value);
    }

    /// Whether detail `key` has been recorded.
    pub fn has_detail(&self, key: &str) -> bool {
        self.details.contains_key(key)
    }

    /// Whether a failure has been recorded.
    pub fn failed(&self) -> bool {
        self.problems.iter().any(|p| p.0 == Status::Fail)
    }

    /// Ends the check; `ok` is the summary when nothing went wrong.
    pub fn finish(mut self, ok: impl Into<String>) -> CheckResult {
        if let Some(reason) = self.not_run.take() {
            let reason = crate::redact::terminal_safe(&crate::redact::scrub(&reason));
            return CheckResult {
                unsent: true,
                ..CheckResult::skip(&self.id, reason)
            };
        }
        let worst = self
            .problems
            .iter()
            .map(|p| p.0)
            .max()
            .unwrap_or(Status::Pass);
        let (summary, hint) = match self.problems.iter().find(|p| p.0 == worst) {
            Some((_, finding, hint)) => {
                let others = self.problems.len() - 1;
                let summary = if others > 0 {
                    format!("{finding} (+{others}{MORE_SEE_DETAILS}")
                } else {
                    finding.clone()
                };
                (summary, Some(hint.clone()))
            }
            None => (ok.into(), None),
        };
        if self.problems.len() > 1 {
            let all: Vec<Value> = self
                .problems
                .iter()
                .map(|(s, f, _)| Value::String(format!("{}: {f}", s.as_str())))
                .collect();
            self.details.insert("problems".into(), Value::Array(all));
        }
        CheckResult {
            id: self.id,
            status: worst,
            duration: self.started.elapsed().saturating_sub(self.waited),
            summary,
            hint,
            could_not_run: self.could_not_run && worst == Status::Fail,
            not_asked: false,
            unsent: false,
            details: self.details,
        }
    }
}

/// The detail of a check whose request the proxy failed: the proxy, as shown.
pub const PROXY_FAILED: &str = "proxy_failed";

/// Why a check of Pocket ID did not run without `--idp`.
pub const IDP_UNKNOWN: &str = "skipped: IdP unknown: pass --idp to check it anyway (the chain did not reach the gateway's redirect to Pocket ID, which names it)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_that_leaves_problems_out_points_where_they_are() {
        let mut f = Findings::start("x.y");
        f.fail("first", "fix it");
        f.fail("second", "fix that");
        let r = f.finish("");
        assert_eq!(r.summary, "first (+1 more, see details)");
        assert_eq!(
            r.summary_pointing("-v lists them"),
            "first (+1 more: -v lists them)"
        );
        assert_eq!(r.summary_pointing("below"), "first (+1 more, below)");
        let mut one = Findings::start("x.y");
        one.fail("only", "fix it");
        assert_eq!(one.finish("").summary_pointing("below"), "only");
    }

    #[test]
    fn problems_always_have_a_hint_and_safe_text() {
        let mut f = Findings::start("x");
        f.fail("\u{1b}[2Jcleared", "  ");
        let r = f.finish("");
        assert_eq!(r.summary, "\u{fffd}[2Jcleared");
        assert!(r.hint.as_deref().is_some_and(|h| h.contains("--trace")));
    }
}
