//! monitoring-plugins output renderer, for Nagios, Icinga, Naemon, Checkmk and Sensu.
//!
//! Follows the monitoring-plugins development guidelines: a first line
//!
//! ```text
//! SSOPROBE <STATE> - <summary> | <perfdata>
//! ```
//!
//! then one line per check that did not pass (`[CRITICAL] id: summary (hint: …)`,
//! `[WARNING] …`, `[SKIPPED] …`; prefixed with the target's name when there are several
//! targets) and one count line per target. All performance data is on the first line,
//! so no other line contains a `|` (the monitoring core would take the rest of such a
//! line for performance data): text has every `|` replaced with `/`.
//!
//! The state is CRITICAL if any check of any target failed, WARNING if any warned (or,
//! only after a failure, was skipped), OK otherwise — the run's exit code (2, 1, 0)
//! already says the same. UNKNOWN (exit code 3) belongs to runs that could not start
//! (bad usage or configuration); they print an error instead of a report, so this
//! renderer never produces it.
//!
//! Performance data, per target: each check's duration in seconds (skipped checks
//! measured nothing and are left out), each certificate's days left (unit-less, as `d`
//! is not a unit the guidelines allow, with the expiry thresholds as ranges: `21:`)
//! and the checks' time as a whole, `time` (check_http's label), all as
//! `'label'=value[UOM];[warn];[crit];[min];[max]`. The time thresholds of `--warning`
//! and `--critical` (for `time`, or `CHECK=DURATION` for a check's item) are read from
//! the `run.time` check's details and fill warn and crit, in seconds.
//!
//! Labels are short and unique: the check's id with `_` for `.` (`service_redirect`,
//! `passkey_login`), a certificate by its host's role (`tls_site`, `tls_access`,
//! `tls_idp`, and `tls_site_days` for its days left; another host by its name), the
//! target's name before each when there are several (`blog_tls_site`). A label that
//! would repeat gets `_2`, `_3`.

use super::{Target, TargetRun};
use crate::checks::ids;
use crate::finding::{CheckResult, Status};
use std::fmt::Write as _;
use std::time::Duration;

/// The longest check summary quoted on the status line, in characters; the full text is
/// on the following lines. Dashboards and notifications show only the first line, and
/// cut it.
const STATUS_LINE_SUMMARY: usize = 100;

/// Renders `runs` as monitoring-plugins output.
/// The status line when ssoprobe could not run (exit 3): a monitoring plugin always
/// prints one.
pub fn unknown(error: &str) -> String {
    format!("SSOPROBE UNKNOWN - {}\n", shorten(&text(error), 200))
}

pub fn render(runs: &[TargetRun<'_>]) -> String {
    let status = runs
        .iter()
        .map(|r| r.outcome.status())
        .max()
        .unwrap_or(Status::Pass);
    let several = runs.len() > 1;

    let mut out = format!("SSOPROBE {} - {}", state(status), summary(runs, status));
    let perfdata = perfdata(runs);
    if !perfdata.is_empty() {
        out.push_str(" | ");
        out.push_str(&perfdata.join(" "));
    }
    out.push('\n');

    for run in runs {
        for check in run
            .outcome
            .checks
            .iter()
            .filter(|c| c.status != Status::Pass)
        {
            let target = if several {
                format!("{}: ", text(run.name))
            } else {
                String::new()
            };
            let hint = check
                .hint
                .as_deref()
                .map(|h| format!(" (hint: {})", text(h)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "[{}] {target}{}: {}{hint}",
                tag(check.status),
                text(&check.id),
                text(&check.summary)
            );
        }
    }
    for run in runs {
        let count = |s: Status| run.outcome.checks.iter().filter(|c| c.status == s).count();
        let _ = writeln!(
            out,
            "{}: {}, {}: {} passed, {} warned, {} failed, {} skipped, {} s",
            text(run.name),
            state(run.outcome.status()),
            checks(run.outcome.checks.len()),
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip),
            seconds(run.outcome.duration)
        );
    }
    out
}

/// The plugin state of a run. A run's status is never `Skip` (see
/// [`crate::checks::Outcome::status`]); were it, it would be a failure, as it is for the
/// exit code.
fn state(status: Status) -> &'static str {
    match status {
        Status::Pass => "OK",
        Status::Warn => "WARNING",
        Status::Fail | Status::Skip => "CRITICAL",
    }
}

/// The tag of a check's line: its state, or SKIPPED for a check that did not run.
fn tag(status: Status) -> &'static str {
    match status {
        Status::Skip => "SKIPPED",
        s => state(s),
    }
}

/// The status line's text: the number of checks when all passed, else the first check
/// that explains the state, and how many other problems there are.
fn summary(runs: &[TargetRun<'_>], status: Status) -> String {
    let all: Vec<(&str, &CheckResult)> = runs
        .iter()
        .flat_map(|r| r.outcome.checks.iter().map(move |c| (r.name, c)))
        .collect();
    if status == Status::Pass {
        return match runs {
            [one] => format!("{}: {} passed", text(one.name), checks(all.len())),
            _ => format!("{} targets: {} passed", runs.len(), checks(all.len())),
        };
    }
    // A warning run may hold skips and no warning (skips only follow failures, so this
    // is unexpected, but then the skip is what explains the state).
    let wanted: &[Status] = match status {
        Status::Warn => &[Status::Warn, Status::Skip],
        _ => &[Status::Fail],
    };
    let first = wanted
        .iter()
        .find_map(|s| all.iter().find(|(_, c)| c.status == *s));
    let Some((name, check)) = first else {
        return format!("{} targets", runs.len());
    };
    let problems = all
        .iter()
        .filter(|(_, c)| matches!(c.status, Status::Warn | Status::Fail))
        .count();
    let more = match problems.saturating_sub(1) {
        0 => String::new(),
        1 => " (+1 more problem)".to_string(),
        n => format!(" (+{n} more problems)"),
    };
    format!(
        "{}: {}: {}{more}",
        text(name),
        text(&check.id),
        shorten(&text(&check.summary), STATUS_LINE_SUMMARY)
    )
}

fn checks(n: usize) -> String {
    format!("{n} check{}", if n == 1 { "" } else { "s" })
}

/// The performance data items of every target.
fn perfdata(runs: &[TargetRun<'_>]) -> Vec<String> {
    // (label, value and the fields after it), labels made unique at the end.
    let mut items: Vec<(String, String)> = Vec::new();
    let several = runs.len() > 1;
    for run in runs {
        let prefix = if several {
            format!("{}_", run.name)
        } else {
            String::new()
        };
        let limits = run
            .outcome
            .checks
            .iter()
            .find(|c| c.id == ids::RUN_TIME)
            .map(|c| &c.details);
        // `;warn;crit;0;` from the thresholds in `limits` (the run's, or a check's).
        let fields = |limits: Option<&serde_json::Map<String, serde_json::Value>>| {
            let threshold = |key: &str| {
                limits
                    .and_then(|l| l.get(key))
                    .and_then(|v| v.as_u64())
                    .map(|ms| seconds_number(Duration::from_millis(ms)))
                    .unwrap_or_default()
            };
            format!(
                ";{};{};0;",
                threshold("warning_ms"),
                threshold("critical_ms")
            )
        };
        for check in &run.outcome.checks {
            // `run.time` measured nothing itself: its value is `time`'s.
            if check.status == Status::Skip || check.id == ids::RUN_TIME {
                continue;
            }
            let check_limits = limits
                .and_then(|l| l.get("checks"))
                .and_then(|c| c.get(&check.id))
                .and_then(|c| c.as_object());
            let name = check_label(&check.id, run.target);
            items.push((
                format!("{prefix}{name}"),
                format!("{}s{}", seconds(check.duration), fields(check_limits)),
            ));
            if check.id.starts_with(ids::TLS_PREFIX)
                && let Some(days) = check.details.get("days_left").and_then(|v| v.as_i64())
            {
                // Thresholds as Nagios ranges: alert when fewer days are left ("21:").
                let threshold = |key: &str| {
                    check
                        .details
                        .get(key)
                        .and_then(|v| v.as_i64())
                        .map(|d| format!("{d}:"))
                        .unwrap_or_default()
                };
                let (warn, crit) = (threshold("warn_days"), threshold("fail_days"));
                let thresholds = if warn.is_empty() && crit.is_empty() {
                    String::new()
                } else {
                    format!(";{warn};{crit};;")
                };
                items.push((
                    format!("{prefix}{name}_days"),
                    format!("{days}{thresholds}"),
                ));
            }
        }
        items.push((
            format!("{prefix}time"),
            format!("{}s{}", seconds(run.outcome.duration), fields(limits)),
        ));
    }
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    items
        .into_iter()
        .map(|(raw, value)| {
            let mut unique = raw.clone();
            let mut n = 1;
            while !seen.insert(unique.clone()) {
                n += 1;
                unique = format!("{raw}_{n}");
            }
            format!("{}={value}", label(&unique))
        })
        .collect()
}

/// A check's short label: its id with `_` for `.`; a certificate's (`tls.HOST`) by
/// the role of its host in the login: `tls_site`, `tls_access` (the team domain),
/// `tls_idp`, or `tls_` and the host for another.
fn check_label(id: &str, target: &Target) -> String {
    let Some(host) = id.strip_prefix(ids::TLS_PREFIX) else {
        return id.replace('.', "_");
    };
    let host_of = |url: &str| {
        url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    };
    let host = host.to_ascii_lowercase();
    let role = if host_of(&target.service).as_deref() == Some(host.as_str()) {
        "site".to_string()
    } else if target
        .team_domain
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(&host))
    {
        "access".to_string()
    } else if host_of(&target.idp).as_deref() == Some(host.as_str()) {
        "idp".to_string()
    } else {
        host
    };
    format!("tls_{role}")
}

/// A quoted performance data label. The guidelines forbid `=` in labels and escape `'`
/// by doubling it; line breaks would end the output's first line.
fn label(raw: &str) -> String {
    let mut out = String::from("'");
    for c in raw.chars() {
        match c {
            '\'' => out.push_str("''"),
            '=' | '|' => out.push('_'),
            c if c.is_control() => out.push('_'),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Free text made safe for one line of plugin output: no `|` (it starts performance
/// data), no line breaks or other control characters.
fn text(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            '|' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// Seconds with millisecond precision and a `.` decimal separator, whatever the locale
/// (Rust's formatting does not follow it).
fn seconds(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// A threshold in seconds, as short as it can be written: `5`, `0.25`, `1.5`.
fn seconds_number(d: Duration) -> String {
    let text = seconds(d);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn shorten_keeps_any_text_within_bounds(text in "\\PC*", max in 1usize..40) {
            let s = shorten(&text, max);
            proptest::prop_assert!(s.chars().count() <= max);
        }
    }
    use crate::checks::Outcome;
    use crate::report::Target;
    use serde_json::{Map, json};

    fn check(id: &str, status: Status, ms: u64) -> CheckResult {
        CheckResult {
            id: id.into(),
            status,
            duration: Duration::from_millis(ms),
            summary: format!("{id} is {}", status.as_str()),
            hint: matches!(status, Status::Warn | Status::Fail).then(|| "fix it".to_string()),
            could_not_run: false,
            not_asked: false,
            unsent: false,
            details: Map::new(),
        }
    }

    fn tls(host: &str, days: i64) -> CheckResult {
        let mut c = check(&format!("tls.{host}"), Status::Pass, 17);
        c.details.insert("days_left".into(), json!(days));
        c
    }

    fn target() -> Target {
        Target {
            service: "https://a.example/".into(),
            idp: "https://id.example/".into(),
            team_domain: None,
            found: Default::default(),
        }
    }

    fn run<'a>(name: &'a str, target: &'a Target, outcome: &'a Outcome) -> TargetRun<'a> {
        TargetRun {
            name,
            target,
            outcome,
            started_unix: 0,
        }
    }

    #[test]
    fn healthy_target() {
        let target = target();
        let outcome = Outcome {
            checks: vec![
                tls("a.example", 89),
                check("service.redirect", Status::Pass, 61),
            ],
            duration: Duration::from_millis(146),
            before: Duration::ZERO,
        };
        assert_eq!(
            render(&[run("a.example", &target, &outcome)]),
            "SSOPROBE OK - a.example: 2 checks passed | \
             'tls_site'=0.017s;;;0; 'tls_site_days'=89 \
             'service_redirect'=0.061s;;;0; 'time'=0.146s;;;0;\n\
             a.example: OK, 2 checks: 2 passed, 0 warned, 0 failed, 0 skipped, 0.146 s\n"
        );
    }

    #[test]
    fn certificate_days_carry_the_thresholds_as_ranges() {
        let target = target();
        let mut cert = tls("a.example", 10);
        cert.details.insert("warn_days".into(), json!(21));
        cert.details.insert("fail_days".into(), json!(7));
        let outcome = Outcome {
            checks: vec![cert],
            duration: Duration::from_millis(20),
            before: Duration::ZERO,
        };
        let out = render(&[run("a.example", &target, &outcome)]);
        assert!(out.contains("'tls_site_days'=10;21:;7:;;"), "{out}");
    }

    #[test]
    fn several_targets_worst_state_first_problem_and_lines_per_problem() {
        let target = target();
        let a = Outcome {
            checks: vec![check("idp.health", Status::Warn, 3)],
            duration: Duration::from_millis(10),
            before: Duration::ZERO,
        };
        let mut broken = check("service.redirect", Status::Fail, 5);
        broken.summary = "site | public\nreally".into();
        let b = Outcome {
            checks: vec![
                tls("b.example", -2),
                broken,
                check("access.login", Status::Skip, 0),
            ],
            duration: Duration::from_millis(20),
            before: Duration::ZERO,
        };
        let out = render(&[run("a.example", &target, &a), run("b'x=y", &target, &b)]);
        let lines: Vec<&str> = out.lines().collect();
        let (status, perf) = lines[0].split_once(" | ").unwrap();
        assert_eq!(
            status,
            "SSOPROBE CRITICAL - b'x=y: service.redirect: site / public really (+1 more problem)"
        );
        assert_eq!(
            perf,
            "'a.example_idp_health'=0.003s;;;0; 'a.example_time'=0.010s;;;0; \
             'b''x_y_tls_b.example'=0.017s;;;0; 'b''x_y_tls_b.example_days'=-2 \
             'b''x_y_service_redirect'=0.005s;;;0; 'b''x_y_time'=0.020s;;;0;"
        );
        assert_eq!(
            &lines[1..],
            [
                "[WARNING] a.example: idp.health: idp.health is warn (hint: fix it)",
                "[CRITICAL] b'x=y: service.redirect: site / public really (hint: fix it)",
                "[SKIPPED] b'x=y: access.login: access.login is skip",
                "a.example: WARNING, 1 check: 0 passed, 1 warned, 0 failed, 0 skipped, 0.010 s",
                "b'x=y: CRITICAL, 3 checks: 1 passed, 0 warned, 1 failed, 1 skipped, 0.020 s",
            ]
        );
        assert_eq!(out.matches('|').count(), 1, "{out}");
    }

    #[test]
    fn warning_and_all_ok_over_several_targets() {
        let target = target();
        let ok = Outcome {
            checks: vec![check("x", Status::Pass, 1)],
            duration: Duration::ZERO,
            before: Duration::ZERO,
        };
        let warn = Outcome {
            checks: vec![check("tls.w", Status::Warn, 1)],
            duration: Duration::ZERO,
            before: Duration::ZERO,
        };
        let both_ok = render(&[run("a", &target, &ok), run("b", &target, &ok)]);
        assert!(
            both_ok.starts_with("SSOPROBE OK - 2 targets: 2 checks passed | "),
            "{both_ok}"
        );
        let one_warns = render(&[run("a", &target, &ok), run("b", &target, &warn)]);
        assert!(
            one_warns.starts_with("SSOPROBE WARNING - b: tls.w: tls.w is warn | "),
            "{one_warns}"
        );
    }

    #[test]
    fn long_summaries_are_cut_on_the_status_line_only() {
        let target = target();
        let mut c = check("idp.token", Status::Fail, 1);
        c.summary = "é".repeat(300);
        let outcome = Outcome {
            checks: vec![c],
            duration: Duration::ZERO,
            before: Duration::ZERO,
        };
        let out = render(&[run("a", &target, &outcome)]);
        let first = out.lines().next().unwrap();
        assert!(first.contains(&format!("{}…", "é".repeat(99))), "{first}");
        assert!(out.contains(&"é".repeat(300)));
    }

    #[test]
    fn labels_name_hosts_by_their_role_and_stay_unique() {
        let target = Target {
            service: "https://site.example/app?key=[redacted:query]".into(),
            idp: "https://ID.example/".into(),
            team_domain: Some("team.cloudflareaccess.com".into()),
            found: Default::default(),
        };
        let outcome = Outcome {
            checks: vec![
                tls("site.example", 80),
                tls("team.cloudflareaccess.com", 70),
                tls("id.example", 60),
                tls("cdn.example", 50),
                check("config.cf_app", Status::Pass, 2),
                // The run's own check, and a check whose label is taken already.
                check("run", Status::Fail, 4),
                check("tls_site", Status::Pass, 1),
            ],
            duration: Duration::from_millis(30),
            before: Duration::ZERO,
        };
        let one = perfdata(&[run("site.example", &target, &outcome)]);
        let labels: Vec<&str> = one
            .iter()
            .map(|item| item.split_once('=').unwrap().0)
            .collect();
        assert_eq!(
            labels,
            [
                "'tls_site'",
                "'tls_site_days'",
                "'tls_access'",
                "'tls_access_days'",
                "'tls_idp'",
                "'tls_idp_days'",
                "'tls_cdn.example'",
                "'tls_cdn.example_days'",
                "'config_cf_app'",
                "'run'",
                "'tls_site_2'",
                "'time'",
            ]
        );
        let two = perfdata(&[
            run("blog", &target, &outcome),
            run("wiki", &target, &outcome),
        ]);
        assert!(
            two.iter().any(|i| i.starts_with("'blog_tls_site'=")),
            "{two:?}"
        );
        assert!(two.iter().any(|i| i.starts_with("'wiki_time'=")), "{two:?}");
        let mut unique = two
            .iter()
            .map(|i| i.split_once('=').unwrap().0)
            .collect::<Vec<_>>();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), two.len(), "{two:?}");
    }

    #[test]
    fn time_thresholds_fill_warn_and_crit_in_seconds() {
        let target = target();
        let limits = |check: Option<&str>, critical: bool, ms: u64| crate::config::TimeLimit {
            check: check.map(str::to_string),
            critical,
            over: Duration::from_millis(ms),
            setting: "--warning".into(),
        };
        let mut outcome = Outcome {
            checks: vec![
                check("passkey.login", Status::Pass, 2500),
                check("idp.code", Status::Skip, 0),
            ],
            duration: Duration::from_millis(3200),
            before: Duration::ZERO,
        };
        let time = crate::checks::judge_time(
            &outcome,
            &[
                limits(None, false, 3000),
                limits(None, true, 10_000),
                limits(Some("passkey.login"), false, 250),
                limits(Some("idp.code"), true, 1),
            ],
        )
        .expect("thresholds give run.time");
        assert_eq!(time.status, Status::Warn);
        outcome.checks.push(time);
        let out = render(&[run("a.example", &target, &outcome)]);
        let (status, perf) = out.lines().next().unwrap().split_once(" | ").unwrap();
        assert!(
            status.starts_with(
                "SSOPROBE WARNING - a.example: run.time: the checks took 3.2 s, longer than the warning threshold of 3s; "
            ),
            "{status}"
        );
        assert_eq!(
            perf,
            "'passkey_login'=2.500s;0.25;;0; 'time'=3.200s;3;10;0;"
        );
        assert!(
            out.contains(
                "[WARNING] run.time: the checks took 3.2 s, longer than the warning threshold of 3s; passkey.login took 2.5 s, longer than its warning threshold of 250ms (hint: "
            ),
            "{out}"
        );
    }

    #[test]
    fn labels_and_text() {
        assert_eq!(label("it's a=b|c\nd"), "'it''s a_b_c_d'");
        assert_eq!(text("a|b\r\nc"), "a/b  c");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abcd", 4), "abcd");
    }
}
