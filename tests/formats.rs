//! End-to-end tests of the machine formats: the real binary against the lab, healthy
//! and broken, each output checked by the real tool that reads it where there is one —
//! `promtool check metrics` for the Prometheus exposition, `xmllint` with the JUnit XML
//! schema in `fixtures/junit/junit.xsd` — and by a parser of the plugin output grammar
//! for the nagios format.
//!
//! A missing tool fails the test with the Debian package to install (`prometheus`,
//! `libxml2-utils`). `SSOPROBE_SKIP_REAL_TOOLS=1` skips only the real-tool checks, for
//! machines that cannot have them; every other assertion still runs.

// They run the binary against the embedded lab.
#![cfg(feature = "lab")]

mod common;
use common::{Run, run};
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// `ssoprobe demo --format FORMAT --trace` with `extra` arguments (faults, timeouts).
fn demo(format: &str, extra: &[&str]) -> Run {
    let mut args = vec!["demo", "--format", format, "--trace"];
    args.extend_from_slice(extra);
    run(&args)
}

/// Runs `tool args` with `input` on stdin. `None` when the tool is missing and the
/// real-tool checks may be skipped; a panic naming the package when it is missing and
/// they may not.
fn real_tool(tool: &str, package: &str, args: &[&str], input: &str) -> Option<Output> {
    let child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var("SSOPROBE_SKIP_REAL_TOOLS").as_deref() == Ok("1") {
                eprintln!("{tool} not found; SSOPROBE_SKIP_REAL_TOOLS=1: check skipped");
                return None;
            }
            panic!(
                "{tool} is not on PATH: install the Debian package `{package}` \
                 (apt-get install -y {package}), or set SSOPROBE_SKIP_REAL_TOOLS=1 to skip \
                 the checks with real tools"
            );
        }
        Err(e) => panic!("cannot run {tool}: {e}"),
    };
    let mut stdin = child.stdin.take().expect("stdin");
    // A thread feeds stdin so that a tool that answers before reading everything cannot
    // deadlock against us.
    let input = input.to_string();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("wait for the tool");
    feeder.join().expect("stdin thread").expect("write stdin");
    Some(output)
}

fn tool_said(output: &Output) -> String {
    format!(
        "exit status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// ---------------------------------------------------------------------------------
// Prometheus

/// `promtool check metrics` accepts `text` without a single lint message.
fn assert_promtool_accepts(text: &str, run: &Run) {
    let Some(out) = real_tool("promtool", "prometheus", &["check", "metrics"], text) else {
        return;
    };
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics refused the output:\n{}\n{}",
        tool_said(&out),
        run.dump()
    );
}

/// The value of the sample `series` (name and labels exactly as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

fn prometheus(extra: &[&str], code: i32) -> (Run, String) {
    let run = demo("prometheus", extra);
    assert_eq!(run.code, code, "{}", run.dump());
    assert!(run.stdout.ends_with('\n'), "{}", run.dump());
    assert_promtool_accepts(&run.stdout, &run);
    for line in run.stdout.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.contains("{target=\"service.example.com\""),
            "sample without the target label: {line}\n{}",
            run.dump()
        );
        assert!(!line.contains("NaN"), "{line}");
    }
    let text = run.stdout.clone();
    (run, text)
}

const T: &str = "target=\"service.example.com\"";

#[test]
fn prometheus_healthy() {
    let (run, text) = prometheus(&[], 0);
    let s = |series: &str| sample(&text, series);
    assert_eq!(
        s(&format!("ssoprobe_success{{{T}}}")),
        Some(1.0),
        "{}",
        run.dump()
    );
    let checks: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ssoprobe_check_success{"))
        .collect();
    assert_eq!(checks.len(), 15, "{}", run.dump());
    assert!(checks.iter().all(|l| l.ends_with(" 1")), "{}", run.dump());
    let started = s(&format!("ssoprobe_run_timestamp_seconds{{{T}}}")).unwrap();
    for host in [
        "service.example.com",
        "xyz.cloudflareaccess.com",
        "id.example.com",
    ] {
        let expiry = s(&format!(
            "ssoprobe_tls_cert_expiry_timestamp_seconds{{{T},host=\"{host}\"}}"
        ))
        .unwrap_or_else(|| panic!("no expiry for {host}\n{}", run.dump()));
        assert!(expiry > started + 80.0 * 86_400.0, "{host}: {expiry}");
    }
    let login = s(&format!("ssoprobe_login_duration_seconds{{{T}}}")).unwrap();
    let run_duration = s(&format!("ssoprobe_run_duration_seconds{{{T}}}")).unwrap();
    assert!(login > 0.0 && login <= run_duration, "{}", run.dump());
}

#[test]
fn prometheus_callback_not_registered_leaves_skipped_checks_out() {
    let (run, text) = prometheus(&["--fault", "callback-not-registered"], 2);
    let s = |series: &str| sample(&text, series);
    assert_eq!(
        s(&format!("ssoprobe_success{{{T}}}")),
        Some(0.0),
        "{}",
        run.dump()
    );
    assert_eq!(
        s(&format!(
            "ssoprobe_check_success{{{T},check=\"idp.authorize\"}}"
        )),
        Some(0.0),
        "{}",
        run.dump()
    );
    // The passkey signed in beside the chain; the rest of the login was skipped: no
    // success, no duration, no login time; the one-hot status says why.
    assert_eq!(
        s(&format!(
            "ssoprobe_check_success{{{T},check=\"passkey.login\"}}"
        )),
        Some(1.0),
        "{}",
        run.dump()
    );
    assert_eq!(
        s(&format!("ssoprobe_check_success{{{T},check=\"idp.code\"}}")),
        None
    );
    assert_eq!(
        s(&format!(
            "ssoprobe_check_duration_seconds{{{T},check=\"idp.code\"}}"
        )),
        None
    );
    assert_eq!(
        s(&format!(
            "ssoprobe_check_status{{{T},check=\"idp.code\",status=\"skip\"}}"
        )),
        Some(1.0),
        "{}",
        run.dump()
    );
    // The login time counts what ran of it: the passkey's sign-in.
    assert!(
        s(&format!("ssoprobe_login_duration_seconds{{{T}}}")).is_some(),
        "{}",
        run.dump()
    );
}

#[test]
fn prometheus_cert_expired() {
    let (run, text) = prometheus(&["--fault", "cert-expired"], 2);
    let s = |series: &str| sample(&text, series);
    assert_eq!(
        s(&format!("ssoprobe_success{{{T}}}")),
        Some(0.0),
        "{}",
        run.dump()
    );
    let started = s(&format!("ssoprobe_run_timestamp_seconds{{{T}}}")).unwrap();
    let expiry = s(&format!(
        "ssoprobe_tls_cert_expiry_timestamp_seconds{{{T},host=\"id.example.com\"}}"
    ))
    .unwrap();
    assert!(expiry < started, "{}", run.dump());
}

// ---------------------------------------------------------------------------------
// JUnit

const XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/junit/junit.xsd");

/// `xmllint` validates `xml` against the schema, or the test fails with its complaint.
fn xmllint(xml: &str) -> Option<Output> {
    real_tool(
        "xmllint",
        "libxml2-utils",
        &["--noout", "--schema", XSD, "-"],
        xml,
    )
}

/// The element of the testcase `name` (self-closing, or up to its end tag).
fn testcase<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<testcase classname=\"ssoprobe.service.example.com\" name=\"{name}\"");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no testcase {name} in\n{xml}"));
    let rest = &xml[start..];
    let tag_end = rest.find('>').expect("end of the start tag");
    if rest[..tag_end].ends_with('/') {
        return &rest[..=tag_end];
    }
    let end = rest.find("</testcase>").expect("end tag") + "</testcase>".len();
    &rest[..end]
}

/// What JUnit makes of a check: passed, warning (passed with output), failure, error,
/// skipped.
fn outcome(xml: &str, name: &str) -> &'static str {
    let case = testcase(xml, name);
    let has = |s: &str| case.contains(s);
    match (
        has("<failure "),
        has("<error "),
        has("<skipped "),
        has("<system-out>warning: "),
    ) {
        (false, false, false, false) => "passed",
        (true, false, false, false) => "failure",
        (false, true, false, false) => "error",
        (false, false, true, false) => "skipped",
        (false, false, false, true) => "warning",
        _ => panic!("testcase {name} has several outcomes: {case}"),
    }
}

/// The value of `attribute` in the first element `tag`.
fn attribute<'a>(xml: &'a str, tag: &str, attribute: &str) -> &'a str {
    let start = xml.find(&format!("<{tag} ")).expect("element");
    let element = &xml[start..start + xml[start..].find('>').unwrap()];
    let key = format!(" {attribute}=\"");
    let at = element.find(&key).expect("attribute") + key.len();
    &element[at..at + element[at..].find('"').unwrap()]
}

fn junit(extra: &[&str], code: i32) -> (Run, String) {
    let run = demo("junit", extra);
    assert_eq!(run.code, code, "{}", run.dump());
    let xml = run.stdout.clone();
    if let Some(out) = xmllint(&xml) {
        assert!(
            out.status.success(),
            "the JUnit report does not validate against {XSD}:\n{}\n{}",
            tool_said(&out),
            run.dump()
        );
    }
    // The counters agree with the elements (a schema cannot say so).
    for (attr, element) in [
        ("failures", "<failure "),
        ("errors", "<error "),
        ("skipped", "<skipped "),
        ("tests", "<testcase "),
    ] {
        let n = xml.matches(element).count().to_string();
        assert_eq!(attribute(&xml, "testsuite", attr), n, "{attr}\n{xml}");
        assert_eq!(attribute(&xml, "testsuites", attr), n, "{attr}\n{xml}");
    }
    assert_eq!(
        attribute(&xml, "testsuite", "name"),
        "service.example.com",
        "{xml}"
    );
    (run, xml)
}

#[test]
fn junit_healthy() {
    let (run, xml) = junit(&[], 0);
    assert_eq!(
        attribute(&xml, "testsuites", "tests"),
        "15",
        "{}",
        run.dump()
    );
    for id in ["tls.id.example.com", "passkey.login", "access.token"] {
        assert_eq!(outcome(&xml, id), "passed", "{id}\n{}", run.dump());
    }
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "{xml}"
    );
}

#[test]
fn junit_cert_expired_is_a_failure_and_what_could_not_connect_errors() {
    let (run, xml) = junit(&["--fault", "cert-expired"], 2);
    assert_eq!(
        outcome(&xml, "tls.id.example.com"),
        "failure",
        "{}",
        run.dump()
    );
    assert!(
        testcase(&xml, "tls.id.example.com").contains("hint: renew the certificate"),
        "{xml}"
    );
    for id in [
        "idp.authorize",
        "idp.discovery",
        "idp.jwks",
        "idp.token",
        "idp.health",
    ] {
        assert_eq!(outcome(&xml, id), "error", "{id}\n{}", run.dump());
    }
    assert_eq!(
        outcome(&xml, "service.redirect"),
        "passed",
        "{}",
        run.dump()
    );
}

#[test]
fn junit_callback_not_registered_is_a_failure_and_the_login_is_skipped() {
    let (run, xml) = junit(&["--fault", "callback-not-registered"], 2);
    assert_eq!(outcome(&xml, "idp.authorize"), "failure", "{}", run.dump());
    assert!(
        testcase(&xml, "idp.authorize").contains("hint: in Pocket ID"),
        "{xml}"
    );
    // The passkey signed in beside the chain; what needs the code is skipped.
    assert_eq!(outcome(&xml, "passkey.login"), "passed", "{}", run.dump());
    for id in ["idp.code", "access.callback", "service.reach"] {
        assert_eq!(outcome(&xml, id), "skipped", "{id}\n{}", run.dump());
    }
}

#[test]
fn junit_tunnel_down_is_a_failure() {
    // The edge answered (Cloudflare error 1033): the check ran and found the problem.
    let (run, xml) = junit(&["--fault", "tunnel-down"], 2);
    assert_eq!(outcome(&xml, "service.reach"), "failure", "{}", run.dump());
    assert!(
        testcase(&xml, "service.reach").contains("cloudflared"),
        "{xml}"
    );
}

#[test]
fn junit_idp_timeout_is_an_error() {
    let (run, xml) = junit(
        &[
            "--fault",
            "idp-slow",
            "--timeout",
            "1s",
            "--deadline",
            "20s",
        ],
        2,
    );
    for id in ["idp.discovery", "idp.jwks", "idp.token", "idp.health"] {
        assert_eq!(outcome(&xml, id), "error", "{id}\n{}", run.dump());
        assert!(testcase(&xml, id).contains("timed out"), "{id}\n{xml}");
    }
}

#[test]
fn junit_warning_passes_with_output() {
    let (run, xml) = junit(&["--fault", "cert-expiring"], 1);
    assert_eq!(
        outcome(&xml, "tls.service.example.com"),
        "warning",
        "{}",
        run.dump()
    );
    assert_eq!(attribute(&xml, "testsuites", "failures"), "0");
}

#[test]
fn junit_schema_has_teeth() {
    // A schema that accepts anything proves nothing: these break one rule each.
    let ok_case = r#"<testcase classname="c" name="n" time="0.001"/>"#;
    let doc = |suite_attrs: &str, case: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><testsuites tests="1" failures="0" errors="0"><testsuite name="s" tests="1" failures="0" errors="0"{suite_attrs}>{case}</testsuite></testsuites>"#
        )
    };
    if let Some(out) = xmllint(&doc(r#" timestamp="2026-11-29T09:00:00Z""#, ok_case)) {
        assert!(out.status.success(), "{}", tool_said(&out));
    }
    for bad in [
        doc(r#" timestamp="2026-11-29T09:00:00""#, ok_case),
        doc("", r#"<testcase classname="c" name="n" time="-1"/>"#),
        doc("", r#"<testcase classname="c" name="n" time="1,5"/>"#),
        doc("", r#"<testcase name="n"/>"#),
        doc(
            "",
            r#"<testcase classname="c" name="n"><skipped/><failure/></testcase>"#,
        ),
        doc(
            "",
            r#"<testcase classname="c" name="n"><warning/></testcase>"#,
        ),
        doc(r#" tests="x""#, ok_case),
    ] {
        if let Some(out) = xmllint(&bad) {
            assert!(!out.status.success(), "the schema accepted:\n{bad}");
        }
    }
}

// ---------------------------------------------------------------------------------
// Nagios (monitoring-plugins)

/// Plugin output, parsed after the monitoring-plugins development guidelines.
#[derive(Debug)]
struct PluginOutput {
    state: String,
    text: String,
    perfdata: Vec<Perf>,
    long_text: Vec<String>,
}

/// One performance data item.
#[derive(Debug)]
struct Perf {
    label: String,
    value: f64,
    uom: String,
    /// warn, crit, min, max, as given (as many as there are).
    fields: Vec<String>,
}

const UOMS: [&str; 10] = ["", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"];

/// Parses plugin output; an error names the rule it breaks.
fn parse_plugin_output(output: &str) -> Result<PluginOutput, String> {
    let mut lines = output.lines();
    let first = lines.next().ok_or("no output")?;
    let (status, perf) = match first.split_once(" | ") {
        Some((s, p)) => (s, p),
        None => (first, ""),
    };
    let rest = status
        .strip_prefix("SSOPROBE ")
        .ok_or("the status line does not start with the service name")?;
    let (state, text) = rest
        .split_once(" - ")
        .ok_or("no ' - ' after the state word")?;
    if !["OK", "WARNING", "CRITICAL", "UNKNOWN"].contains(&state) {
        return Err(format!("unknown state {state:?}"));
    }
    if text.contains('|') {
        return Err("a '|' in the status text".into());
    }
    let perfdata = parse_perfdata(perf)?;
    let long_text: Vec<String> = lines.map(str::to_string).collect();
    if let Some(l) = long_text.iter().find(|l| l.contains('|')) {
        return Err(format!(
            "a '|' in the long text would start performance data: {l}"
        ));
    }
    Ok(PluginOutput {
        state: state.into(),
        text: text.into(),
        perfdata,
        long_text,
    })
}

/// `'label'=value[UOM];[warn];[crit];[min];[max]`, separated by spaces.
fn parse_perfdata(mut s: &str) -> Result<Vec<Perf>, String> {
    let mut items = Vec::new();
    while !s.is_empty() {
        let (label, after) = if let Some(quoted) = s.strip_prefix('\'') {
            // A quoted label ends at a quote that is not doubled.
            let mut label = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().map(|p| p.1) == Some('\'') {
                        chars.next();
                        label.push('\'');
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    label.push(c);
                }
            }
            let end = end.ok_or_else(|| format!("unterminated label in {s:?}"))?;
            (label, &quoted[end..])
        } else {
            let end = s.find('=').ok_or_else(|| format!("no '=' in {s:?}"))?;
            let label = &s[..end];
            if label.contains(' ') || label.contains('\'') {
                return Err(format!("unquoted label with a space or quote: {label:?}"));
            }
            (label.to_string(), &s[end..])
        };
        if label.is_empty() || label.contains('=') {
            return Err(format!("bad label {label:?}"));
        }
        let after = after
            .strip_prefix('=')
            .ok_or_else(|| format!("no '=' after label {label:?}"))?;
        let (item, rest) = after.split_once(' ').unwrap_or((after, ""));
        s = rest;
        let mut fields = item.split(';');
        let value_uom = fields.next().unwrap_or_default();
        let split = value_uom
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(value_uom.len());
        let (value, uom) = value_uom.split_at(split);
        let value = number(value).ok_or_else(|| format!("{label}: bad value {value:?}"))?;
        if !UOMS.contains(&uom) {
            return Err(format!("{label}: {uom:?} is not a unit of measure"));
        }
        let rest: Vec<&str> = fields.collect();
        if rest.len() > 4 {
            return Err(format!("{label}: more than five fields"));
        }
        for (i, field) in rest.iter().enumerate() {
            let ok = if i < 2 {
                field.is_empty() || range(field)
            } else {
                field.is_empty() || number(field).is_some()
            };
            if !ok {
                return Err(format!("{label}: bad field {field:?}"));
            }
        }
        items.push(Perf {
            label,
            value,
            uom: uom.into(),
            fields: rest.iter().map(|f| f.to_string()).collect(),
        });
    }
    Ok(items)
}

/// A decimal number with a `.` separator: `-?digits(.digits)?`.
fn number(s: &str) -> Option<f64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    (all_digits(int) && all_digits(frac)).then(|| s.parse().ok())?
}

/// A threshold range: `[@][start:][end]`, start may be `~`.
fn range(s: &str) -> bool {
    let s = s.strip_prefix('@').unwrap_or(s);
    match s.split_once(':') {
        Some((start, end)) => {
            (start.is_empty() || start == "~" || number(start).is_some())
                && (end.is_empty() || number(end).is_some())
        }
        None => number(s).is_some(),
    }
}

fn nagios(extra: &[&str], code: i32, state: &str) -> (Run, PluginOutput) {
    let run = demo("nagios", extra);
    let out = parse_plugin_output(&run.stdout)
        .unwrap_or_else(|e| panic!("not plugin output: {e}\n{}", run.dump()));
    assert_eq!(out.state, state, "{}", run.dump());
    let expected = match state {
        "OK" => 0,
        "WARNING" => 1,
        "CRITICAL" => 2,
        _ => 3,
    };
    assert_eq!(run.code, expected, "exit code of {state}\n{}", run.dump());
    assert_eq!(run.code, code, "{}", run.dump());
    assert_eq!(
        out.long_text
            .last()
            .map(|l| l.starts_with("service.example.com: ")),
        Some(true),
        "the last line counts the target's checks\n{}",
        run.dump()
    );
    (run, out)
}

fn perf<'a>(out: &'a PluginOutput, label: &str) -> &'a Perf {
    out.perfdata
        .iter()
        .find(|p| p.label == label)
        .unwrap_or_else(|| panic!("no perfdata {label}: {out:?}"))
}

#[test]
fn nagios_parser_rejects_what_the_guidelines_forbid() {
    let line = |perf: &str| format!("SSOPROBE OK - fine | {perf}\n");
    assert!(parse_plugin_output(&line("'a b'=1.5s;;;0; 'it''s'=-2 c=3%;80:;@90;0;100")).is_ok());
    for bad in [
        "'a'=1d",
        "'a'=1,5s",
        "a b=1",
        "'a'=",
        "'a=1",
        "'a'=1;;;;;",
        "'a'=1;x",
    ] {
        assert!(parse_plugin_output(&line(bad)).is_err(), "accepted {bad:?}");
    }
    assert!(parse_plugin_output("SSOPROBE FINE - x\n").is_err());
    assert!(parse_plugin_output("SSOPROBE OK - a | 'a'=1\nmore | text\n").is_err());
}

#[test]
fn nagios_healthy() {
    let (run, out) = nagios(&[], 0, "OK");
    assert_eq!(
        out.text,
        "service.example.com: 15 checks passed",
        "{}",
        run.dump()
    );
    let durations = out.perfdata.iter().filter(|p| p.uom == "s").count();
    // 15 checks and the run.
    assert_eq!(durations, 16, "{}", run.dump());
    // Short labels: the check's id, a certificate by its host's role, the run's time.
    for label in [
        "tls_site",
        "tls_access",
        "tls_idp",
        "service_redirect",
        "passkey_login",
        "time",
    ] {
        assert_eq!(perf(&out, label).uom, "s", "{}", run.dump());
    }
    let days = perf(&out, "tls_idp_days");
    assert!(days.value > 80.0 && days.uom.is_empty(), "{days:?}");
    assert_eq!(out.long_text.len(), 1, "{}", run.dump());
}

#[test]
fn nagios_cert_expiring_warns() {
    let (run, out) = nagios(&["--fault", "cert-expiring"], 1, "WARNING");
    assert!(
        out.text
            .starts_with("service.example.com: tls.service.example.com: certificate expires in"),
        "{}",
        run.dump()
    );
    assert!(
        out.long_text[0].starts_with("[WARNING] tls.service.example.com: ")
            && out.long_text[0].contains("(hint: renew"),
        "{}",
        run.dump()
    );
    let days = perf(&out, "tls_site_days");
    assert!(days.value < 21.0, "{days:?}");
}

#[test]
fn nagios_cert_expired_is_critical() {
    let (run, out) = nagios(&["--fault", "cert-expired"], 2, "CRITICAL");
    assert!(
        out.text
            .starts_with("service.example.com: tls.id.example.com: ")
            && out.text.ends_with("(+5 more problems)"),
        "{}",
        run.dump()
    );
    let days = perf(&out, "tls_idp_days");
    assert!(days.value < 0.0, "{days:?}");
    let critical = out
        .long_text
        .iter()
        .filter(|l| l.starts_with("[CRITICAL] "))
        .count();
    assert_eq!(critical, 6, "{}", run.dump());
}

#[test]
fn nagios_callback_not_registered_is_critical() {
    let (run, out) = nagios(&["--fault", "callback-not-registered"], 2, "CRITICAL");
    assert!(
        out.text.starts_with("service.example.com: idp.authorize: "),
        "{}",
        run.dump()
    );
    assert!(
        out.long_text[0].starts_with("[CRITICAL] idp.authorize: ")
            && out.long_text[0].contains("(hint: in Pocket ID"),
        "{}",
        run.dump()
    );
    // Skipped checks measured nothing: no duration.
    assert!(
        out.perfdata.iter().all(|p| p.label != "idp_code"),
        "{}",
        run.dump()
    );
}

#[test]
fn nagios_tunnel_down_is_critical() {
    let (run, out) = nagios(&["--fault", "tunnel-down"], 2, "CRITICAL");
    assert!(
        out.text.starts_with("service.example.com: service.reach: "),
        "{}",
        run.dump()
    );
}

// ---------------------------------------------------------------------------------
// When ssoprobe cannot run (exit 3), every format still answers

#[test]
fn every_format_answers_when_the_run_cannot_start() {
    let usage = |format: &str| common::run(&["check", "--format", format]);
    let nagios = usage("nagios");
    assert_eq!(nagios.code, 3, "{}", nagios.dump());
    assert!(
        nagios.stdout.starts_with("SSOPROBE UNKNOWN - ") && nagios.stdout.lines().count() == 1,
        "{}",
        nagios.dump()
    );
    assert!(!nagios.stdout.contains('|'), "{}", nagios.dump());

    let json = usage("json");
    assert_eq!(json.code, 3, "{}", json.dump());
    let doc = json.json();
    assert_eq!(doc["status"], "error", "{}", json.dump());
    let schema: serde_json::Value = serde_json::from_str(&common::run(&["schema"]).stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&doc), "{}", json.dump());

    let junit = usage("junit");
    assert_eq!(junit.code, 3, "{}", junit.dump());
    assert!(junit.stdout.contains("<error "), "{}", junit.dump());
    if let Some(out) = xmllint(&junit.stdout) {
        assert!(
            out.status.success(),
            "xmllint refused it:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            junit.dump()
        );
    }

    let prometheus = usage("prometheus");
    assert_eq!(prometheus.code, 3, "{}", prometheus.dump());
    assert!(
        prometheus.stdout.contains("ssoprobe_success 0"),
        "{}",
        prometheus.dump()
    );
    assert_promtool_accepts(&prometheus.stdout, &prometheus);
}

#[test]
fn the_json_verdict_comes_before_the_checks() {
    // A report can run to hundreds of lines of checks: `| head` must show the verdict.
    let run = demo("json", &["--fault", "callback-not-registered"]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let head: Vec<&str> = run.stdout.lines().take(12).collect();
    let keys: Vec<&str> = head
        .iter()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert_eq!(
        keys[..6],
        [
            "schema_version",
            "tool",
            "name",
            "status",
            "exit_code",
            "counts"
        ],
        "{}",
        head.join("\n")
    );
    assert!(
        head.join("\n").contains("\"fail\": 1"),
        "{}",
        head.join("\n")
    );
    // Each check starts with its id and status.
    let check = run.stdout.find("\"checks\": [").expect("checks");
    let first: Vec<&str> = run.stdout[check..].lines().skip(2).take(2).collect();
    assert!(first[0].trim_start().starts_with("\"id\""), "{first:?}");
    assert!(first[1].trim_start().starts_with("\"status\""), "{first:?}");
}

// ---------------------------------------------------------------------------------
// Time thresholds (--warning, --critical)

#[test]
fn nagios_time_thresholds_are_in_the_perfdata_and_within_them_the_run_is_ok() {
    let (run, out) = nagios(&["--warning", "30m", "--critical", "1h"], 0, "OK");
    let time = perf(&out, "time");
    assert_eq!(time.uom, "s", "{}", run.dump());
    assert_eq!(time.fields, ["1800", "3600", "0", ""], "{}", run.dump());
    // run.time passed: the 15 checks and it.
    assert_eq!(
        out.text,
        "service.example.com: 16 checks passed",
        "{}",
        run.dump()
    );
    // Its value is `time`'s: it has no item of its own.
    assert!(
        out.perfdata.iter().all(|p| !p.label.starts_with("run")),
        "{}",
        run.dump()
    );
}

#[test]
fn nagios_a_run_longer_than_the_critical_threshold_is_critical() {
    // Every connection to the lab takes at least 10 ms: the checks take longer than 5 ms.
    let (run, out) = nagios(
        &["--rtt", "10ms", "--warning", "2ms", "--critical", "5ms"],
        2,
        "CRITICAL",
    );
    assert!(
        out.text
            .starts_with("service.example.com: run.time: the checks took ")
            && out
                .text
                .contains(", longer than the critical threshold of 5ms"),
        "{}",
        run.dump()
    );
    assert!(
        out.long_text[0].starts_with("[CRITICAL] run.time: ")
            && out.long_text[0].contains("(hint: find the slow step"),
        "{}",
        run.dump()
    );
    let time = perf(&out, "time");
    assert_eq!(time.fields, ["0.002", "0.005", "0", ""], "{}", run.dump());
    assert!(time.value > 0.005, "{time:?}");
}

#[test]
fn a_check_longer_than_its_own_threshold_warns_in_every_format() {
    // The site's first answer needs a new connection: at least 10 ms.
    let threshold = ["--rtt", "10ms", "--warning", "service.redirect=1ms"];
    let (run, out) = nagios(&threshold, 1, "WARNING");
    assert!(
        out.text
            .starts_with("service.example.com: run.time: service.redirect took ")
            && out
                .text
                .ends_with(", longer than its warning threshold of 1ms"),
        "{}",
        run.dump()
    );
    let redirect = perf(&out, "service_redirect");
    assert_eq!(redirect.fields, ["0.001", "", "0", ""], "{}", run.dump());
    assert_eq!(
        perf(&out, "time").fields,
        ["", "", "0", ""],
        "{}",
        run.dump()
    );

    // The same verdict, and exit code, in the JSON report, with the threshold.
    let json = demo("json", &threshold);
    assert_eq!(json.code, 1, "{}", json.dump());
    let time = json.check("run.time");
    assert_eq!(time["status"], "warn", "{}", json.dump());
    assert_eq!(
        time["details"]["checks"]["service.redirect"]["warning_ms"],
        1,
        "{}",
        json.dump()
    );
    // The check's own verdict stands.
    assert_eq!(json.check("service.redirect")["status"], "pass");
    let schema: serde_json::Value = serde_json::from_str(&common::run(&["schema"]).stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&json.json()), "{}", json.dump());
}

#[test]
fn time_thresholds_that_cannot_work_are_refused() {
    for (args, says) in [
        (
            &["--warning", "passkey.lgin=2s"][..],
            "--warning: 'passkey.lgin' is not a check",
        ),
        (
            &["--warning", "2s", "--critical", "1s"],
            "--warning: the warning threshold 2s is longer than the critical one 1s",
        ),
        (
            &["--critical", "1s", "--critical", "2s"],
            "--critical: gives the checks as a whole two thresholds",
        ),
        (&["--warning", "=2s"], "--warning: '=2s' names no check"),
        (
            &["--warning", "soon"],
            "--warning: 'soon' is not a duration",
        ),
    ] {
        let mut argv = vec!["check", "https://service.example.com"];
        argv.extend_from_slice(args);
        let r = run(&argv);
        assert_eq!(r.code, 3, "{args:?}\n{}", r.dump());
        assert!(r.stderr.contains(says), "{args:?}: {says}\n{}", r.dump());
    }
    let r = common::run_with_env(
        &["check", "https://service.example.com"],
        &[("SSOPROBE_CRITICAL", "1s,tls.=2s")],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("SSOPROBE_CRITICAL: 'tls.' is not a check"),
        "{}",
        r.dump()
    );
}

// ---------------------------------------------------------------------------------
// Report files (--report-json, --report-junit, --report-nagios, --report-prometheus)

/// A directory of the test's own, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("ssoprobe-reports-{}", common::uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name))
            .unwrap_or_else(|e| panic!("{name} was not written: {e}"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `value` without what differs between two runs of the same kind: times (`*_ms`,
/// `*_at`, `*_unix` and times in words), the PKCE values of the authorization request and
/// the lab's fresh user id.
fn without_times(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let volatile = k.ends_with("_ms")
                        || k.ends_with("_at")
                        || k.ends_with("_unix")
                        || k == "authorize_url"
                        || k == "user_id";
                    let v = if volatile {
                        Value::Null
                    } else {
                        without_times(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_times).collect()),
        Value::String(s) => {
            // "in 12 ms": a time in words.
            let mut out = String::new();
            let mut digits = false;
            for c in s.chars() {
                if c.is_ascii_digit() {
                    if !digits {
                        out.push('N');
                    }
                    digits = true;
                } else {
                    digits = false;
                    out.push(c);
                }
            }
            Value::String(out)
        }
        v => v.clone(),
    }
}

#[test]
fn one_run_writes_every_report_file_beside_the_human_report() {
    let dir = TempDir::new();
    let r = run(&[
        "demo",
        "--fault",
        "callback-not-registered",
        "--report-junit",
        &dir.path("junit.xml"),
        "--report-json",
        &dir.path("report.json"),
        "--report-prometheus",
        &dir.path("ssoprobe.prom"),
        "--report-nagios",
        &dir.path("nagios.txt"),
    ]);
    assert_eq!(r.code, 2, "{}", r.dump());
    // The terminal shows the human report.
    assert!(
        r.stdout.contains("✘ idp.authorize") && r.stdout.contains("\nFAIL · "),
        "{}",
        r.dump()
    );

    let xml = dir.read("junit.xml");
    if let Some(out) = xmllint(&xml) {
        assert!(
            out.status.success(),
            "the JUnit file does not validate against {XSD}:\n{}\n{xml}",
            tool_said(&out)
        );
    }
    assert_eq!(outcome(&xml, "idp.authorize"), "failure", "{xml}");

    let prom = dir.read("ssoprobe.prom");
    assert_promtool_accepts(&prom, &r);
    assert_eq!(
        sample(&prom, &format!("ssoprobe_success{{{T}}}")),
        Some(0.0),
        "{prom}"
    );

    let plugin = parse_plugin_output(&dir.read("nagios.txt")).expect("plugin output");
    assert_eq!(plugin.state, "CRITICAL");

    // The JSON file is what --format json prints for such a run.
    let file: serde_json::Value =
        serde_json::from_str(&dir.read("report.json")).expect("the JSON file parses");
    let printed = demo("json", &["--fault", "callback-not-registered"]);
    assert_eq!(printed.code, 2, "{}", printed.dump());
    assert_eq!(
        without_times(&file),
        without_times(&printed.json()),
        "{}",
        printed.dump()
    );
    // Files are replaced whole (atomically): nothing is left beside them.
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["junit.xml", "nagios.txt", "report.json", "ssoprobe.prom"]
    );
}

#[test]
fn a_report_file_is_the_same_run_as_the_printed_report() {
    let dir = TempDir::new();
    let r = demo("json", &["--report-json", &dir.path("r.json")]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(dir.read("r.json"), r.stdout);
}

#[test]
fn a_report_file_that_cannot_be_written_is_refused_before_the_run() {
    let dir = TempDir::new();
    let missing = dir.path("no-such-dir/junit.xml");
    // No lab, no route: the run would fail at once; it must not start at all.
    let r = run(&[
        "check",
        "https://service.example.com",
        "--report-junit",
        &missing,
    ]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("--report-junit: cannot write in ") && r.stderr.contains("no-such-dir"),
        "{}",
        r.dump()
    );
    assert!(r.stdout.is_empty(), "{}", r.dump());
    // Named as given: a variable, a key of the config file (relative to the file).
    let r = common::run_with_env(
        &["check", "https://service.example.com", "--format", "nagios"],
        &[("SSOPROBE_REPORT_PROMETHEUS", missing.as_str())],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("SSOPROBE_REPORT_PROMETHEUS: cannot write in "),
        "{}",
        r.dump()
    );
    assert!(r.stdout.starts_with("SSOPROBE UNKNOWN - "), "{}", r.dump());
    let config = dir.path("sites.toml");
    std::fs::write(
        &config,
        "service = \"https://service.example.com\"\nreport_json = \"no-such-dir/r.json\"\n",
    )
    .unwrap();
    let r = run(&["check", "--config", &config]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("sites.toml: key `report_json`: cannot write in ")
            && r.stderr.contains(&dir.path("no-such-dir")),
        "{}",
        r.dump()
    );
    // Two reports to one file, a flag given twice, a key in a target's table.
    let same = dir.path("same.txt");
    for (args, says) in [
        (
            vec!["--report-json", &same, "--output", &same],
            "--report-json: ",
        ),
        (
            vec!["--report-json", &same, "--report-json", &same],
            "cannot be used multiple times",
        ),
    ] {
        let mut argv = vec!["check", "https://service.example.com"];
        argv.extend(args);
        let r = run(&argv);
        assert_eq!(r.code, 3, "{}", r.dump());
        assert!(r.stderr.contains(says), "{says}\n{}", r.dump());
    }
    std::fs::write(
        &config,
        "[targets.blog]\nservice = \"https://service.example.com\"\nreport_junit = \"j.xml\"\n",
    )
    .unwrap();
    let r = run(&["check", "--config", &config]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("[targets.blog] report_junit: report_junit belongs at the top"),
        "{}",
        r.dump()
    );
}

#[test]
fn the_config_file_names_report_files_relative_to_itself_and_thresholds() {
    let lab = common::Lab::start(&[]);
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("out")).unwrap();
    let config = dir.path("sites.toml");
    std::fs::write(
        &config,
        "report_junit = \"out/junit.xml\"\nwarning = [\"30m\", \"service.redirect=20m\"]\ncritical = 3600\n",
    )
    .unwrap();
    let mut args: Vec<&str> = vec!["check"];
    args.extend(lab.check.iter().map(String::as_str));
    args.extend(["--config", &config]);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stdout.contains("✔ run.time"), "{}", r.dump());
    let xml = dir.read("out/junit.xml");
    assert_eq!(outcome(&xml, "run.time"), "passed", "{xml}");
}
