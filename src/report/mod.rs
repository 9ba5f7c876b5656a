//! Renderers. They see only the results of a run, the target it was run against and
//! (for the HAR archive) the exchanges recorded on the way.

pub mod har;
pub mod junit;
pub mod nagios;
pub mod prometheus;

use crate::checks::Outcome;
use crate::finding::Status;
use colored::Colorize;
use serde_json::json;
use std::time::Duration;

/// The JSON Schema of the `--format json` document.
pub const JSON_SCHEMA: &str = include_str!("report.schema.json");

/// What was checked, for the report's header.
#[derive(Debug, Clone)]
pub struct Target {
    /// The protected site.
    pub service: String,
    /// Pocket ID.
    pub idp: String,
    /// The team domain, if known beforehand.
    pub team_domain: Option<String>,
    /// What the run used for team, AUD, Pocket ID and client id, and where it came from.
    pub found: crate::checks::Found,
}

impl Target {
    /// What `config` checked, with Pocket ID and the team as the run found them when
    /// they were not given. URLs as configured are shown redacted (a query or user info
    /// may carry a token).
    pub fn of(config: &crate::config::Config, found: crate::checks::Found) -> Target {
        let idp = match &found.idp {
            Some(v) if v.from != "given" => v.value.clone(),
            Some(_) => crate::redact::configured_url(&config.idp),
            None => "(unknown)".to_string(),
        };
        // Pocket ID's URL as its APP_URL is written, without a trailing slash: the
        // same in the header, the JSON, the hints and --print-config.
        let idp = match idp.strip_suffix('/') {
            Some(base) if base.matches('/').count() == 2 => base.to_string(),
            _ => idp,
        };
        Target {
            service: crate::redact::configured_url(&config.service),
            idp,
            team_domain: found
                .team
                .as_ref()
                .map(|t| t.value.clone())
                .or_else(|| config.team_domain.clone()),
            found,
        }
    }
}

/// `--print-config`: what each run found, as a config file that pins it — `check
/// --config FILE` then reports any change as a finding.
pub fn config_toml(runs: &[TargetRun<'_>], routing: &[String]) -> String {
    let mut out = format!(
        "# Found by ssoprobe {}. Pin it for monitoring: ssoprobe check --config FILE\n",
        env!("CARGO_PKG_VERSION")
    );
    if !routing.is_empty() {
        out.push_str("# The run's routing, trust and login settings, for every target:\n");
        for line in routing {
            out.push_str(line);
            out.push('\n');
        }
    }
    let several = runs.len() > 1;
    for run in runs {
        let f = &run.target.found;
        // Service first, then what the run found, in the order of the chain.
        let mut lines = vec![format!(
            "service = {}",
            toml::Value::String(run.target.service.clone())
        )];
        let mut missing = Vec::new();
        for (key, value) in [
            ("gateway", &f.gateway),
            ("team", &f.team),
            ("aud", &f.aud),
            ("idp", &f.idp),
            ("client_id", &f.client_id),
        ] {
            match value {
                Some(v) => lines.push(format!("{key} = {}", toml::Value::String(v.value.clone()))),
                None => missing.push(key),
            }
        }
        if several {
            out.push_str(&format!("\n[targets.{}]\n", toml_key(run.name)));
        } else {
            out.push('\n');
        }
        if run.target.service.contains("[redacted:") {
            out.push_str("# the site's URL had a query or user info, shown redacted: put the real one back\n");
        }
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
        for key in missing {
            out.push_str(&format!(
                "# {key}: not found (the chain did not get that far; see the report)\n"
            ));
        }
    }
    out
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_string()
    } else {
        serde_json::to_string(name).unwrap_or_else(|_| "\"target\"".into())
    }
}

/// One target's run, for the renderers that cover several targets.
pub struct TargetRun<'a> {
    /// The target's name (the config's target name, or the site's host).
    pub name: &'a str,
    /// What was checked.
    pub target: &'a Target,
    /// The results.
    pub outcome: &'a Outcome,
    /// When the run started (Unix seconds).
    pub started_unix: i64,
}

/// A hint's lines in the human report: one line, or — for a hint naming several
/// causes ("most likely: A; else: B — symptom has 2 causes; to tell them apart, …") —
/// each cause on its own line, then what the evidence says.
fn hint_lines(hint: &str) -> Vec<String> {
    if !hint.starts_with("most likely: ") {
        return vec![hint.to_string()];
    }
    // The causes end at the first " — " after the last "; else: " (a consequence's
    // " — this follows from …" comes later).
    let after_last_cause = hint.rfind("; else: ").unwrap_or(0);
    let (causes, rest) = match hint
        .get(after_last_cause..)
        .and_then(|tail| tail.find(" — "))
        .map(|at| after_last_cause + at)
    {
        Some(at) => (
            hint.get(..at).unwrap_or(hint),
            hint.get(at + " — ".len()..).unwrap_or_default(),
        ),
        None => (hint, ""),
    };
    let mut lines: Vec<String> = causes.split("; else: ").map(str::to_string).collect();
    for line in lines.iter_mut().skip(1) {
        line.insert_str(0, "else: ");
    }
    if !rest.is_empty() {
        lines.push(format!("({rest})"));
    }
    lines
}

/// Exit code of a run: 0 pass, 1 warnings only, 2 any failure.
pub fn exit_code(status: Status) -> u8 {
    match status {
        Status::Pass => 0,
        Status::Warn => 1,
        Status::Fail | Status::Skip => 2,
    }
}

fn symbol(status: Status) -> &'static str {
    match status {
        Status::Pass => "✔",
        Status::Warn => "⚠",
        Status::Fail => "✘",
        Status::Skip => "-",
    }
}

fn paint(text: &str, status: Status) -> String {
    match status {
        Status::Pass => text.green().to_string(),
        Status::Warn => text.yellow().to_string(),
        Status::Fail => text.red().bold().to_string(),
        Status::Skip => text.dimmed().to_string(),
    }
}

/// The human report: one line per check, hints under problems, a summary line; with
/// `every_problem` (`-v`), a check that found several problems lists the ones its line
/// leaves out ("(+1 more, see details)") under it.
/// Color is decided by the caller through `colored::control`.
pub fn human(outcome: &Outcome, target: &Target, every_problem: bool) -> String {
    let mut out = String::new();
    let proxy = target
        .found
        .gateway
        .as_ref()
        .is_some_and(|g| g.value == crate::config::Gateway::OAuth2Proxy.name());
    let via = match target.team_domain.as_deref() {
        _ if proxy => " → oauth2-proxy".to_string(),
        Some(t) => format!(" → Access ({t})"),
        None => " → Access".to_string(),
    };
    out.push_str(&format!(
        "{} {} · {}{via} → {}\n",
        "ssoprobe".bold(),
        env!("CARGO_PKG_VERSION"),
        target.service,
        target.idp
    ));
    // The gateway is in the header already.
    let discovered: Vec<_> = target
        .found
        .discovered()
        .into_iter()
        .filter(|(k, _)| *k != "gateway")
        .collect();
    if !discovered.is_empty() {
        let words: Vec<String> = discovered
            .iter()
            .map(|(k, v)| {
                let name = match *k {
                    "team" => "team",
                    "aud" => "AUD",
                    "idp" => "Pocket ID",
                    _ => "client id",
                };
                format!(
                    "{name} {}, from {}",
                    crate::redact::terminal_safe(&v.value),
                    v.from
                )
            })
            .collect();
        out.push_str(&format!(
            "{}\n",
            format!("found: {}", words.join("; ")).dimmed()
        ));
    }
    out.push('\n');
    let width = outcome
        .checks
        .iter()
        .map(|c| c.id.chars().count())
        .max()
        .unwrap_or(0);
    for c in &outcome.checks {
        let duration = if c.status == Status::Skip {
            String::new()
        } else {
            format!("{} ms", c.duration.as_millis())
        };
        out.push_str(&format!(
            "  {} {:<width$}  {:>7}  {}\n",
            paint(symbol(c.status), c.status),
            c.id,
            duration.dimmed(),
            if c.status == Status::Skip {
                c.summary.dimmed().to_string()
            } else if every_problem {
                c.summary_pointing("below")
            } else {
                // The details are the JSON report's; here -v lists them.
                c.summary_pointing("-v lists them")
            },
        ));
        if let Some(hint) = &c.hint
            && matches!(c.status, Status::Warn | Status::Fail)
        {
            // A hint naming several causes gets a line each, so that a person under
            // pressure reads the fixes one by one.
            let mut lines = hint_lines(hint).into_iter();
            out.push_str(&format!(
                "  {:width$}  {:>7}  {} {}\n",
                "",
                "",
                "hint:".cyan().bold(),
                lines.next().unwrap_or_default()
            ));
            for line in lines {
                out.push_str(&format!("  {:width$}  {:>7}        {line}\n", "", ""));
            }
        }
        if every_problem {
            for (status, finding) in other_problems(c) {
                out.push_str(&format!(
                    "  {:width$}  {:>7}  {} {} {finding}\n",
                    "",
                    "",
                    "also:".cyan().bold(),
                    paint(symbol(status), status),
                ));
            }
        }
    }
    let count = |s: Status| outcome.checks.iter().filter(|c| c.status == s).count();
    let status = outcome.status();
    let verdict = match status {
        Status::Pass => "PASS",
        Status::Warn => "WARN",
        Status::Fail | Status::Skip => "FAIL",
    };
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    // What came before the checks (the demo's lab and enrolment, a start ping) is
    // part of the wait: the times add up to it.
    let before = if outcome.before >= Duration::from_millis(100) {
        format!(
            " (+ {} before the checks = {})",
            crate::timefmt::human_duration(outcome.before),
            crate::timefmt::human_duration(outcome.before + outcome.duration)
        )
    } else {
        String::new()
    };
    out.push_str(&format!(
        "\n{} · {} passed, {}, {} failed, {} skipped · {} ms{before}\n",
        paint(verdict, status),
        count(Status::Pass),
        plural(count(Status::Warn), "warning"),
        count(Status::Fail),
        count(Status::Skip),
        outcome.duration.as_millis()
    ));
    out
}

/// The problems of a check its line leaves out ("(+1 more, see details)"): every one
/// recorded in `details.problems` but the first of its status, which the line shows.
fn other_problems(c: &crate::finding::CheckResult) -> Vec<(Status, String)> {
    let Some(all) = c.details.get("problems").and_then(|p| p.as_array()) else {
        return Vec::new();
    };
    let mut shown = false;
    let mut others = Vec::new();
    for text in all.iter().filter_map(|p| p.as_str()) {
        let Some((status, finding)) = text.split_once(": ") else {
            continue;
        };
        let status = match status {
            "pass" => Status::Pass,
            "warn" => Status::Warn,
            "fail" => Status::Fail,
            "skip" => Status::Skip,
            _ => continue,
        };
        if status == c.status && !shown {
            shown = true;
            continue;
        }
        others.push((status, crate::redact::terminal_safe(finding)));
    }
    others
}

/// The human report of every target: one after the other, each under its name when
/// there are several, then how many failed.
pub fn human_all(runs: &[TargetRun<'_>]) -> String {
    human_all_with(runs, false)
}

/// [`human_all`]; with `every_problem` (`-v`), each check's problems its line leaves
/// out are listed under it.
pub fn human_all_with(runs: &[TargetRun<'_>], every_problem: bool) -> String {
    let mut out = String::new();
    for (i, run) in runs.iter().enumerate() {
        if runs.len() > 1 {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("{} {}\n", "target".bold(), run.name));
        }
        out.push_str(&human(run.outcome, run.target, every_problem));
    }
    if runs.len() > 1 {
        out.push_str(&format!("\n{}\n", overall(runs)));
    }
    out
}

/// The last line of a report of several targets: "FAIL · 1 of 2 targets failed (b)".
fn overall(runs: &[TargetRun<'_>]) -> String {
    let with = |wanted: &[Status]| -> Vec<&str> {
        runs.iter()
            .filter(|r| wanted.contains(&r.outcome.status()))
            .map(|r| r.name)
            .collect()
    };
    // The names, a few of them: the reports above have them all.
    let named = |names: &[&str]| {
        let mut shown: Vec<String> = names
            .iter()
            .take(5)
            .map(|n| crate::redact::terminal_safe(n))
            .collect();
        if names.len() > 5 {
            shown.push(format!("{} more", names.len() - 5));
        }
        shown.join(", ")
    };
    let failed = with(&[Status::Fail, Status::Skip]);
    let warned = with(&[Status::Warn]);
    let n = runs.len();
    let warnings = if warned.is_empty() {
        String::new()
    } else {
        format!("; {} warned ({})", warned.len(), named(&warned))
    };
    if !failed.is_empty() {
        format!(
            "{} · {} of {n} targets failed ({}){warnings}",
            paint("FAIL", Status::Fail),
            failed.len(),
            named(&failed)
        )
    } else if !warned.is_empty() {
        format!(
            "{} · none of {n} targets failed{warnings}",
            paint("WARN", Status::Warn)
        )
    } else {
        format!("{} · all {n} targets passed", paint("PASS", Status::Pass))
    }
}

fn json_value(run: &TargetRun<'_>) -> serde_json::Value {
    let outcome = run.outcome;
    let count = |s: Status| outcome.checks.iter().filter(|c| c.status == s).count();
    let status = outcome.status();
    json!({
        "schema_version": 1,
        "tool": format!("ssoprobe {}", env!("CARGO_PKG_VERSION")),
        "name": run.name,
        "status": match status { Status::Skip => Status::Fail, s => s },
        "exit_code": exit_code(status),
        // The verdict first: `| head` shows it (serde_json keeps this order).
        "counts": {
            "pass": count(Status::Pass),
            "warn": count(Status::Warn),
            "fail": count(Status::Fail),
            "skip": count(Status::Skip),
        },
        "started_at": crate::timefmt::rfc3339(run.started_unix),
        "duration_ms": outcome.duration.as_millis() as u64,
        "before_ms": outcome.before.as_millis() as u64,
        "target": {
            "service": run.target.service,
            "idp": run.target.idp,
            "team_domain": run.target.team_domain,
        },
        "discovered": run
            .target
            .found
            .discovered()
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<String, serde_json::Value>>(),
        "checks": outcome.checks,
    })
}

/// The JSON document when ssoprobe could not run (exit 3): `status` is `error`, with
/// the reason (the schema's third shape).
pub fn json_error(error: &str) -> String {
    let doc = serde_json::json!({
        "ssoprobe": format!("ssoprobe {}", env!("CARGO_PKG_VERSION")),
        "status": "error",
        "error": crate::redact::terminal_safe(error),
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
}

/// The JSON document described by [`JSON_SCHEMA`]: one target's report, or, for several
/// targets, `{"schema_version", "tool", "status", "exit_code", "targets": [report…]}`.
pub fn json_all(runs: &[TargetRun<'_>]) -> String {
    let doc = match runs {
        [one] => json_value(one),
        _ => {
            let worst = runs
                .iter()
                .map(|r| r.outcome.status())
                .max()
                .unwrap_or(Status::Pass);
            json!({
                "schema_version": 1,
                "tool": format!("ssoprobe {}", env!("CARGO_PKG_VERSION")),
                "status": match worst { Status::Skip => Status::Fail, s => s },
                "exit_code": exit_code(worst),
                "targets": runs.iter().map(json_value).collect::<Vec<_>>(),
            })
        }
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_with_several_causes_gets_a_line_each() {
        assert_eq!(
            hint_lines("fix it (here); because"),
            ["fix it (here); because"]
        );
        assert_eq!(
            hint_lines("most likely: do A; else: do B — it has 2 causes; to tell them apart, X"),
            [
                "most likely: do A",
                "else: do B",
                "(it has 2 causes; to tell them apart, X)"
            ]
        );
        assert_eq!(hint_lines("most likely: é"), ["most likely: é"]);
        assert_eq!(
            hint_lines("most likely: A; else: B — it has 2 causes — this follows from X"),
            [
                "most likely: A",
                "else: B",
                "(it has 2 causes — this follows from X)"
            ]
        );
    }

    #[test]
    fn several_targets_end_with_how_many_failed() {
        colored::control::set_override(false);
        let target = Target {
            service: "https://a.example/".into(),
            idp: "https://id.example/".into(),
            team_domain: None,
            found: Default::default(),
        };
        let outcome = |status: Status| Outcome {
            checks: vec![crate::finding::CheckResult {
                id: "service.redirect".into(),
                status,
                duration: Duration::ZERO,
                summary: String::new(),
                hint: None,
                could_not_run: false,
                not_asked: false,
                unsent: false,
                details: Default::default(),
            }],
            duration: Duration::ZERO,
            before: Duration::ZERO,
        };
        let (pass, warn, fail) = (
            outcome(Status::Pass),
            outcome(Status::Warn),
            outcome(Status::Fail),
        );
        fn runs(outcomes: &[&Outcome], target: &Target) -> String {
            let names = ["a", "b", "c", "d", "e", "f", "g"];
            let runs: Vec<TargetRun<'_>> = outcomes
                .iter()
                .zip(names)
                .map(|(outcome, name)| TargetRun {
                    name,
                    target,
                    outcome,
                    started_unix: 0,
                })
                .collect();
            overall(&runs)
        }
        let runs = |outcomes: &[&Outcome]| runs(outcomes, &target);
        let (pass, warn, fail) = (&pass, &warn, &fail);
        assert_eq!(runs(&[pass, pass]), "PASS · all 2 targets passed");
        assert_eq!(
            runs(&[pass, warn, pass]),
            "WARN · none of 3 targets failed; 1 warned (b)"
        );
        assert_eq!(
            runs(&[fail, warn, fail, fail, fail, fail, fail]),
            "FAIL · 6 of 7 targets failed (a, c, d, e, f, 1 more); 1 warned (b)"
        );
        assert_eq!(runs(&[pass, fail]), "FAIL · 1 of 2 targets failed (b)");
        // One target: no such line.
        assert!(
            !human_all(&[TargetRun {
                name: "a",
                target: &target,
                outcome: fail,
                started_unix: 0,
            }])
            .contains("targets failed")
        );
    }

    #[test]
    fn exit_codes_follow_the_plugin_convention() {
        assert_eq!(exit_code(Status::Pass), 0);
        assert_eq!(exit_code(Status::Warn), 1);
        assert_eq!(exit_code(Status::Fail), 2);
    }
}
