//! End-to-end tests of the command line: the healthy demo, the JSON schema, the lab
//! with a separate `check`, configuration sources and their errors, secrets in traces.

// They run the binary against the embedded lab.
#![cfg(feature = "lab")]

mod common;
use common::{Run, bin, demo, run};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

const ALL_CHECKS: &[&str] = &[
    "tls.service.example.com",
    "tls.xyz.cloudflareaccess.com",
    "tls.id.example.com",
    "service.redirect",
    "access.login",
    "idp.authorize",
    "idp.discovery",
    "idp.jwks",
    "idp.token",
    "idp.health",
    "passkey.login",
    "idp.code",
    "access.callback",
    "service.reach",
    "access.token",
];

fn validate(run: &Run) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../src/report/report.schema.json"))
            .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let doc = run.json();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match the schema: {errors:#?}\n{}",
        run.dump()
    );
}

#[test]
fn healthy_demo_passes_every_check() {
    let run = demo(&[], &[]);
    assert_eq!(run.code, 0, "{}", run.dump());
    let json = run.json();
    assert_eq!(json["status"], "pass");
    let ids: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ALL_CHECKS, "{}", run.dump());
    for c in json["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "pass", "{c}\n{}", run.dump());
        assert!(c.get("hint").is_none(), "{c}");
    }
    assert_eq!(
        run.check("service.redirect")["details"]["team_domain"],
        "xyz.cloudflareaccess.com"
    );
    assert_eq!(run.check("access.login")["details"]["pkce"], "S256");
    validate(&run);
}

#[test]
fn faulty_reports_match_the_schema_too() {
    for fault in ["site-public", "callback-not-registered", "cert-expired"] {
        validate(&demo(&[fault], &[]));
    }
}

#[test]
fn schema_subcommand_prints_the_shipped_schema() {
    let run = run(&["schema"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, include_str!("../src/report/report.schema.json"));
}

#[test]
fn human_report_without_a_terminal_has_no_color() {
    let run = run(&["demo"]);
    assert_eq!(run.code, 0, "{}", run.dump());
    assert!(
        !run.stdout.contains('\u{1b}'),
        "escape codes in piped output:\n{}",
        run.stdout
    );
    assert!(run.stdout.contains("✔ service.redirect"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("PASS · 15 passed, 0 warnings, 0 failed, 0 skipped"),
        "{}",
        run.stdout
    );
}

#[test]
fn human_report_shows_hints_under_failures() {
    let run = run(&[
        "demo",
        "--fault",
        "callback-not-registered",
        "--color",
        "never",
    ]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("✘ idp.authorize"))
        .expect("failure line");
    assert!(
        lines[at + 1].contains("hint:")
            && lines[at + 1].contains("https://xyz.cloudflareaccess.com/cdn-cgi/access/callback"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("FAIL ·"), "{}", run.stdout);
}

#[test]
fn color_always_colors() {
    let run = run(&["demo", "--color", "always"]);
    assert!(run.stdout.contains('\u{1b}'), "{}", run.stdout);
}

/// Starts `ssoprobe lab`, returns the child and the `check` arguments it printed.
fn start_lab(extra: &[&str]) -> (std::process::Child, Vec<String>, Vec<String>) {
    let mut child = bin()
        .arg("lab")
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start lab");
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut args = Vec::new();
    let mut toml = Vec::new();
    let mut in_toml = false;
    let started = Instant::now();
    let mut line = String::new();
    while started.elapsed().as_secs() < 20 {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("ssoprobe check ") {
            args = rest.split_whitespace().map(str::to_string).collect();
        } else if t.starts_with("or put this in a file") {
            in_toml = true;
        } else if t.starts_with("Press Ctrl-C") {
            break;
        } else if in_toml && !t.is_empty() {
            toml.push(t.to_string());
        } else if in_toml && !toml.is_empty() {
            in_toml = false;
        }
    }
    assert!(!args.is_empty(), "lab printed no check command");
    (child, args, toml)
}

fn stop(mut child: std::process::Child) {
    // SIGTERM, as a service manager would send.
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let mut status = None;
    common::wait_for("the lab to stop on SIGTERM", || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let status = status.expect("an exit status");
    assert!(status.success(), "lab exited with {status}");
}

#[test]
fn lab_then_check_with_the_printed_flags_and_config() {
    let (child, args, toml) = start_lab(&[]);
    let mut argv = vec!["check".to_string()];
    argv.extend(args);
    argv.extend(["--format".into(), "json".into()]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let by_flags = run(&argv);
    assert_eq!(by_flags.code, 0, "{}", by_flags.dump());

    let dir = std::env::temp_dir().join(format!("ssoprobe-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lab.toml");
    std::fs::write(&file, toml.join("\n")).unwrap();
    let by_file = run(&[
        "check",
        "--config",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(by_file.code, 0, "{}\n{}", toml.join("\n"), by_file.dump());

    // The same through SSOPROBE_* variables (repeated flags become comma lists).
    let mut vars: std::collections::BTreeMap<String, String> = Default::default();
    for pair in argv[1..].chunks(2) {
        if let [flag, value] = pair
            && let Some(name) = flag.strip_prefix("--").filter(|n| *n != "format")
        {
            let var = format!("SSOPROBE_{}", name.replace('-', "_").to_ascii_uppercase());
            vars.entry(var)
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_string());
        }
    }
    let started = Instant::now();
    let out = bin()
        .args(["check", "--format", "json"])
        .envs(&vars)
        .output()
        .unwrap();
    let by_env = Run::from(out, started.elapsed());
    assert_eq!(by_env.code, 0, "{vars:?}\n{}", by_env.dump());
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lab_with_a_fault_is_seen_by_check() {
    let (child, args, _) = start_lab(&["--fault", "jwks-empty"]);
    let mut argv = vec!["check".to_string()];
    argv.extend(args);
    argv.extend(["--format".into(), "json".into()]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let run = run(&argv);
    assert_eq!(run.code, 2, "{}", run.dump());
    assert_eq!(run.first_problem().0, "idp.jwks");
    stop(child);
}

#[test]
fn trace_never_shows_secrets() {
    let run = demo(&[], &[]);
    assert!(run.stderr.contains("[trace]"), "{}", run.dump());
    for line in run.stderr.lines() {
        for param in [
            "state=",
            "code=",
            "meta=",
            "interaction=",
            "code_challenge=",
            "client_secret=",
        ] {
            let mut rest = line;
            while let Some(i) = rest.find(param) {
                let after = &rest[i + param.len()..];
                let is_param = i == 0 || matches!(rest.as_bytes()[i - 1], b'?' | b'&');
                if is_param && param != "code_challenge=" {
                    assert!(
                        after.starts_with("[redacted:"),
                        "unredacted {param} in: {line}"
                    );
                }
                rest = after;
            }
        }
        assert!(
            !line.to_ascii_lowercase().contains("cf_appsession="),
            "cookie value in: {line}"
        );
    }
    assert!(
        run.stderr.contains("set-cookie: CF_AppSession"),
        "cookie names are traced\n{}",
        run.dump()
    );
}

#[test]
fn whole_check_runs_concurrently() {
    // Not a timing assertion: the run's wall time is reported next to the sum of the
    // checks' own times, and the sum of the parts must exceed the whole.
    let run = demo(&[], &[]);
    let json = run.json();
    let total = json["duration_ms"].as_u64().unwrap();
    let sum: u64 = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["duration_ms"].as_u64().unwrap())
        .sum();
    eprintln!("run {total} ms, sum of checks {sum} ms");
    assert!(json["checks"].as_array().unwrap().len() == ALL_CHECKS.len());
}

#[test]
fn missing_service_is_a_usage_error() {
    let run = run(&["check", "--idp", "https://id.example.com"]);
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(
        run.stderr.contains("no protected site given")
            && run
                .stderr
                .contains("ssoprobe check https://service.example.com")
            && run.stderr.contains("--service"),
        "{}",
        run.dump()
    );
}

#[test]
fn bad_values_name_their_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--service", "service.example.com"],
            "--service: 'service.example.com' is not a URL",
        ),
        (
            &["--service", "ftp://x.example"],
            "--service: 'ftp://x.example' must be an https:// URL",
        ),
        (&["--idp", "https://id.example.com/sub"], "--idp:"),
        (
            &["--timeout", "soon"],
            "--timeout: 'soon' is not a duration",
        ),
        (&["--deadline", "0"], "--deadline:"),
        (
            &["--resolve", "id.example.com:443"],
            "--resolve: 'id.example.com:443': expected HOST:PORT:ADDR",
        ),
        (
            &["--connect-to", "id.example.com:443:1.2.3.4"],
            "--connect-to:",
        ),
        (&["--aud", "abc"], "--aud: 'abc' is not an Access AUD tag"),
        (&["--team", "bad team"], "--team:"),
        (
            &["--tls-warn-days", "3"],
            "--tls-warn-days: 3 is below the default of --tls-fail-days (7)",
        ),
        (
            &["--ca-file", "/nonexistent/ca.pem"],
            "--ca-file: cannot read /nonexistent/ca.pem",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["check"];
        if !extra.contains(&"--service") {
            args.extend(["--service", "https://service.example.com"]);
        }
        if !extra.contains(&"--idp") {
            args.extend(["--idp", "https://id.example.com"]);
        }
        args.extend_from_slice(extra);
        let run = run(&args);
        assert_eq!(run.code, 3, "{args:?}\n{}", run.dump());
        assert!(
            run.stderr.contains(expected),
            "{args:?}: expected {expected:?}\n{}",
            run.dump()
        );
        assert!(run.stdout.is_empty(), "{args:?}\n{}", run.dump());
    }
}

#[test]
fn bad_environment_values_name_the_variable() {
    let started = Instant::now();
    let out = bin()
        .args(["check"])
        .env("SSOPROBE_SERVICE", "https://service.example.com")
        .env("SSOPROBE_IDP", "https://id.example.com")
        .env("SSOPROBE_TIMEOUT", "fast")
        .output()
        .unwrap();
    let run = Run::from(out, started.elapsed());
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(
        run.stderr.contains("SSOPROBE_TIMEOUT: 'fast'"),
        "{}",
        run.dump()
    );
}

#[test]
fn bad_config_files_name_the_key() {
    let dir = std::env::temp_dir().join(format!("ssoprobe-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "unknown.toml",
            "servce = \"https://x.example\"\n",
            "unknown field `servce`",
        ),
        (
            "badurl.toml",
            "service = \"nope\"\nidp = \"https://id.example.com\"\n",
            "unknown.toml",
        ),
        (
            "syntax.toml",
            "service = \n",
            "not a valid ssoprobe config file",
        ),
        (
            "timeout.toml",
            "service = \"https://s.example\"\nidp = \"https://id.example.com\"\ntimeout = \"x\"\n",
            "key `timeout`: 'x' is not a duration",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let run = run(&["check", "--config", path.to_str().unwrap()]);
        assert_eq!(run.code, 3, "{name}\n{}", run.dump());
        let expected = if name == "badurl.toml" {
            "key `service`: 'nope' is not a URL"
        } else {
            expected
        };
        assert!(
            run.stderr.contains(expected),
            "{name}: expected {expected:?}\n{}",
            run.dump()
        );
    }
    let run = run(&[
        "check",
        "--config",
        dir.join("absent.toml").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(
        run.stderr.contains("--config: cannot read"),
        "{}",
        run.dump()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_3_and_help_exits_0() {
    assert_eq!(run(&["check", "--no-such-flag"]).code, 3);
    assert_eq!(run(&[]).code, 3);
    assert_eq!(run(&["demo", "--fault", "no-such-fault"]).code, 3);
    let unknown = run(&["demo", "--fault", "no-such-fault"]);
    assert!(
        unknown.stderr.contains("ssoprobe lab --list-faults"),
        "where the valid names are listed is said\n{}",
        unknown.dump()
    );
    let help = run(&["check", "--help"]);
    assert_eq!(help.code, 0);
    for flag in [
        "--service",
        "--idp",
        "--team",
        "--resolve",
        "--ca-file",
        "--insecure",
        "--timeout",
        "--deadline",
        "--trace",
        "--format",
        "Exit codes",
    ] {
        assert!(help.stdout.contains(flag), "help lacks {flag}");
    }
    assert_eq!(run(&["--version"]).code, 0);
}

#[test]
fn insecure_warns_on_every_run() {
    let run = run(&[
        "check",
        "--service",
        "https://service.example.com",
        "--idp",
        "https://id.example.com",
        "--insecure",
        "--resolve",
        "service.example.com:443:127.0.0.1",
        "--resolve",
        "id.example.com:443:127.0.0.1",
        "--team",
        "xyz",
        "--resolve",
        "xyz.cloudflareaccess.com:443:127.0.0.1",
        "--timeout",
        "1s",
        "--deadline",
        "3s",
        "--format",
        "json",
    ]);
    assert!(run.stderr.contains("warning: --insecure"), "{}", run.dump());
}

#[test]
fn unreachable_hosts_fail_with_connection_errors_not_hangs() {
    // Nothing listens on 127.0.0.1:1; every check must fail fast and name the cause.
    let run = run(&[
        "check",
        "--service",
        "https://service.example.com",
        "--idp",
        "https://id.example.com",
        "--team",
        "xyz",
        "--connect-to",
        "service.example.com:443:127.0.0.1:1",
        "--connect-to",
        "id.example.com:443:127.0.0.1:1",
        "--connect-to",
        "xyz.cloudflareaccess.com:443:127.0.0.1:1",
        "--format",
        "json",
        "--deadline",
        "5s",
    ]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let s = run.check("service.redirect");
    assert!(
        s["summary"].as_str().unwrap().contains("cannot connect"),
        "{}",
        run.dump()
    );
    // No answer is a failure to run, not a finding about the site.
    assert!(
        s["hint"].as_str().unwrap_or("").contains("nothing accepts"),
        "{}",
        run.dump()
    );
}

#[test]
fn completions_and_man_page_come_from_the_flag_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let r = run(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}\n{}", r.dump());
        assert!(
            r.stdout.contains("passkey") && r.stdout.contains("ping-url"),
            "{shell}"
        );
    }
    let man = run(&["man"]);
    assert_eq!(man.code, 0, "{}", man.dump());
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH ssoprobe"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    assert_eq!(run(&["completions", "tcsh"]).code, 3);
}

#[test]
fn insecure_lets_requests_through_but_tls_checks_still_judge() {
    let lab = common::Lab::start(&["cert-expired"]);
    let strict = lab.check(&[]);
    assert_eq!(
        strict.check("idp.discovery")["status"],
        "fail",
        "{}",
        strict.dump()
    );
    let insecure = lab.check(&["--insecure"]);
    assert!(
        insecure.stderr.contains("warning: --insecure"),
        "{}",
        insecure.dump()
    );
    assert_eq!(
        insecure.check("idp.discovery")["status"],
        "pass",
        "{}",
        insecure.dump()
    );
    assert_eq!(
        insecure.check("tls.id.example.com")["status"],
        "fail",
        "{}",
        insecure.dump()
    );
    assert_eq!(insecure.code, 2, "{}", insecure.dump());
}

#[test]
fn printing_commands_end_quietly_when_the_reader_goes_away() {
    for args in [
        &["schema"][..],
        &["completions", "bash"],
        &["lab", "--list-faults"],
    ] {
        let mut child = common::bin()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the command writes anything.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(101), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn help_never_shows_secret_bearing_environment_values() {
    let output = common::bin()
        .args(["check", "--help"])
        .env(
            "SSOPROBE_PING_URL",
            "https://hc-ping.example.com/secret-ping-uuid",
        )
        .env(
            "SSOPROBE_SERVICE",
            "https://site.example.com/?key=secret-query-key",
        )
        .env("SSOPROBE_SERVICE_TOKEN_ID", "secret-token-id.access")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("SSOPROBE_PING_URL"), "{help}");
    for secret in ["secret-ping-uuid", "secret-query-key", "secret-token-id"] {
        assert!(!help.contains(secret), "{secret} in\n{help}");
    }
}

#[test]
fn settings_that_cannot_take_effect_are_usage_errors() {
    let base = [
        "check",
        "--service",
        "https://service.example.com",
        "--idp",
        "https://id.example.com",
    ];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        run(&args)
    };
    // Without a login the expectations would never be checked: not a silent pass.
    for extra in [
        &["--expect-status", "418"][..],
        &["--expect-body", "NOT THERE"],
    ] {
        let r = with(extra);
        assert_eq!(r.code, 3, "{extra:?}\n{}", r.dump());
        assert!(r.stderr.contains("--passkey"), "{}", r.dump());
    }
    // http is refused for every URL setting, with the https form to use.
    let r = run(&[
        "check",
        "--service",
        "http://service.example.com",
        "--idp",
        "https://id.example.com",
    ]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("use https://service.example.com"),
        "{}",
        r.dump()
    );
    // A query is called a query.
    let r = run(&[
        "check",
        "--service",
        "https://service.example.com",
        "--idp",
        "https://id.example.com/?x=1",
    ]);
    assert!(r.stderr.contains("has a query"), "{}", r.dump());
    // --output that cannot be written is found before the run.
    let r = with(&["--output", "/proc/ssoprobe-cannot-write-here/report.json"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("--output: cannot write in"),
        "{}",
        r.dump()
    );
}

#[test]
fn serve_refuses_output_settings_it_would_ignore() {
    let base = [
        "serve",
        "--service",
        "https://service.example.com",
        "--idp",
        "https://id.example.com",
    ];
    for (extra, named) in [
        (&["--format", "json"][..], "--format"),
        (&["--output", "report.txt"], "--output"),
        (
            &["--ping-url", "https://hc-ping.example.com/x"],
            "--ping-url",
        ),
        (&["--color", "always"], "--color"),
        (&["--report-junit", "junit.xml"], "--report-junit"),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let r = run(&args);
        assert_eq!(r.code, 3, "{extra:?}\n{}", r.dump());
        assert!(
            r.stderr.contains(&format!("{named} has no effect")),
            "{}",
            r.dump()
        );
    }
    let r = common::bin()
        .args(base)
        .env("SSOPROBE_FORMAT", "json")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&r.stderr).contains("SSOPROBE_FORMAT has no effect"));
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_demo_removes_its_temporary_files() {
    use std::time::{Duration, Instant};
    let child = common::bin()
        .args([
            "demo",
            "--fault",
            "idp-slow",
            "--timeout",
            "60s",
            "--deadline",
            "90s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let ours = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(std::env::temp_dir())
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(&format!("ssoprobe-lab-ca-{pid}-")))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let started = Instant::now();
    while ours().is_empty() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!ours().is_empty(), "the demo wrote no CA file");
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(ours().is_empty(), "left behind: {:?}", ours());
}

#[test]
fn boolean_environment_variables_take_the_usual_spellings() {
    for (value, on) in [
        ("1", true),
        ("yes", true),
        ("on", true),
        ("true", true),
        ("0", false),
        ("no", false),
        ("off", false),
        ("false", false),
    ] {
        let r = common::bin()
            .args([
                "check",
                "--service",
                "https://service.example.com",
                "--idp",
                "https://id.example.com",
                "--connect-to",
                "service.example.com:443:127.0.0.1:9",
                "--connect-to",
                "id.example.com:443:127.0.0.1:9",
                "--connect-to",
                "xyz.cloudflareaccess.com:443:127.0.0.1:9",
                "--timeout",
                "1s",
            ])
            .env("SSOPROBE_INSECURE", value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_ne!(r.status.code(), Some(3), "{value}: {stderr}");
        assert_eq!(
            stderr.contains("warning: --insecure"),
            on,
            "{value}: {stderr}"
        );
    }
}

#[test]
fn a_hanging_ping_service_is_given_up_on_quickly() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4).flatten() {
            held.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(6));
    });
    let ping = format!("http://127.0.0.1:{port}/ping");
    let r = run(&[
        "check",
        "--service",
        "https://service.example.com",
        "--idp",
        "https://id.example.com",
        "--connect-to",
        "service.example.com:443:127.0.0.1:9",
        "--connect-to",
        "id.example.com:443:127.0.0.1:9",
        "--connect-to",
        "xyz.cloudflareaccess.com:443:127.0.0.1:9",
        "--timeout",
        "10s",
        "--ping-url",
        &ping,
    ]);
    // Both pings are given up after their own 2 s, not the run's 10 s timeout.
    assert_eq!(r.code, 2, "{}", r.dump());
    assert_eq!(
        r.stderr.matches("timed out after 2 s").count(),
        2,
        "{}",
        r.dump()
    );
    // The start ping counts against the deadline: it gets a quarter of a short one, and
    // the checks still run (and find the hosts down) in the rest.
    let r = run(&[
        "check",
        "--service",
        "https://service.example.com",
        "--idp",
        "https://id.example.com",
        "--connect-to",
        "service.example.com:443:127.0.0.1:9",
        "--connect-to",
        "id.example.com:443:127.0.0.1:9",
        "--deadline",
        "2s",
        "--format",
        "json",
        "--ping-url",
        &ping,
    ]);
    assert_eq!(r.code, 2, "{}", r.dump());
    assert!(
        r.stderr
            .contains("the start ping failed: timed out after 500 ms"),
        "{}",
        r.dump()
    );
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let redirect = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "service.redirect")
        .unwrap()
        .clone();
    assert!(
        redirect["summary"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{}",
        r.dump()
    );
    drop(holder);
}

#[test]
fn checks_lists_every_check_from_the_declaration() {
    let human = run(&["checks"]);
    assert_eq!(human.code, 0, "{}", human.dump());
    let json = run(&["checks", "--format", "json"]);
    assert_eq!(json.code, 0, "{}", json.dump());
    let list: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 32, "{}", json.stdout);
    for c in list {
        let id = c["id"].as_str().unwrap();
        assert!(human.stdout.contains(&format!("{id}\n  proves:")), "{id}");
        assert!(!c["proves"].as_str().unwrap().is_empty(), "{id}");
        assert!(!c["skips_when"].as_array().unwrap().is_empty(), "{id}");
    }
    // What a check needs, and which check yields it, is what makes it skip.
    let code = list.iter().find(|c| c["id"] == "idp.code").unwrap();
    assert_eq!(
        code["needs"],
        serde_json::json!(["interaction", "idp_session"])
    );
    assert_eq!(
        code["skips_when"],
        serde_json::json!(["idp.authorize fails", "passkey.login fails"])
    );
    let yaml = run(&["checks", "--format", "yaml"]);
    assert_eq!(yaml.code, 3, "{}", yaml.dump());
}

/// `ssoprobe config check URL` with the variables `env`.
fn config_check_with(args: &[&str], env: &[(&str, &str)]) -> Run {
    common::run_with_env(
        &[&["config", "check", "https://service.example.com"], args].concat(),
        env,
    )
}

#[test]
fn a_bad_value_from_a_variable_names_the_variable_and_what_it_takes() {
    let r = config_check_with(&[], &[("SSOPROBE_FORMAT", "yaml")]);
    assert_eq!(r.code, 3, "{}", r.dump());
    for wanted in [
        "invalid value 'yaml' for 'SSOPROBE_FORMAT'",
        "human, json, junit, nagios, prometheus",
        "the variable SSOPROBE_FORMAT sets --format",
    ] {
        assert!(r.stderr.contains(wanted), "{wanted:?}\n{}", r.dump());
    }
    assert!(!r.stderr.contains("for '--format"), "{}", r.dump());
    // Typed as a flag, the flag is named, even with the variable set too.
    let r = config_check_with(&["--format", "yaml"], &[("SSOPROBE_FORMAT", "yaml")]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("for '--format <FORMAT>'") && !r.stderr.contains("SSOPROBE_FORMAT"),
        "{}",
        r.dump()
    );
    // A switch's variable: the words it takes.
    for variable in ["SSOPROBE_TRACE", "SSOPROBE_INSECURE"] {
        let r = config_check_with(&[], &[(variable, "maybe")]);
        assert_eq!(r.code, 3, "{}", r.dump());
        assert!(
            r.stderr
                .contains(&format!("invalid value 'maybe' for '{variable}'"))
                && r.stderr.contains("1, true, yes or on")
                && r.stderr.contains("0, false, no or off"),
            "{}",
            r.dump()
        );
    }
    // serve's own settings.
    let r = common::run_with_env(
        &["serve", "https://service.example.com"],
        &[("SSOPROBE_CONCURRENCY", "four")],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("invalid value 'four' for 'SSOPROBE_CONCURRENCY'"),
        "{}",
        r.dump()
    );
    let r = common::run_with_env(
        &["serve", "https://service.example.com"],
        &[("SSOPROBE_LISTEN", "nowhere")],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("SSOPROBE_LISTEN: 'nowhere'"),
        "{}",
        r.dump()
    );
    // Settings ssoprobe reads itself.
    let r = config_check_with(&[], &[("SSOPROBE_PING_URL", "ftp://hc.example/abc")]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("SSOPROBE_PING_URL: must be an http(s) URL"),
        "{}",
        r.dump()
    );
    let r = common::run_with_env(
        &["check", "https://service.example.com"],
        &[("SSOPROBE_OUTPUT", "/nonexistent-ssoprobe-dir/report.txt")],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("SSOPROBE_OUTPUT: cannot write in /nonexistent-ssoprobe-dir"),
        "{}",
        r.dump()
    );
}

#[test]
fn enumerated_values_take_any_case() {
    let r = config_check_with(&["--format", "JSON", "--color", "NEVER"], &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let r = config_check_with(&[], &[("SSOPROBE_FORMAT", "Json")]);
    assert_eq!(r.code, 0, "{}", r.dump());
    // The format is the one named: a run that cannot start answers in it.
    let r = run(&["check", "--format", "Nagios"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stdout.starts_with("SSOPROBE UNKNOWN"), "{}", r.dump());
    let r = run(&["checks", "--format", "JSON"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stdout.starts_with('['), "{}", r.dump());
    assert_eq!(run(&["completions", "Bash"]).code, 0);
}

#[test]
fn a_subcommands_flag_before_the_subcommand_gets_a_tip() {
    for (args, tip) in [
        (
            &["-v", "check", "https://service.example.com"][..],
            "tip: -v goes after the subcommand: ssoprobe check -v URL",
        ),
        (
            &["--format", "json", "check", "https://service.example.com"],
            "tip: --format goes after the subcommand: ssoprobe check --format FORMAT URL",
        ),
        (
            &["--format=json", "doctor"],
            "tip: --format goes after the subcommand: ssoprobe doctor --format FORMAT URL",
        ),
        (
            &["-q", "config", "check"],
            "tip: -q goes after the subcommand: ssoprobe config check -q URL",
        ),
        (
            &["--no-login", "demo"],
            "tip: --no-login goes after the subcommand: ssoprobe demo --no-login",
        ),
    ] {
        let r = run(args);
        assert_eq!(r.code, 3, "{args:?}\n{}", r.dump());
        assert!(r.stderr.contains(tip), "{args:?}: {tip:?}\n{}", r.dump());
    }
    // A flag no subcommand has gets no tip.
    let r = run(&["--no-such-flag", "check"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(!r.stderr.contains("goes after"), "{}", r.dump());
}

#[test]
fn a_second_site_points_at_the_config_files_targets() {
    for command in [&["check"][..], &["serve"], &["config", "check"]] {
        let args = [
            command,
            &["https://wiki.example.com", "https://grafana.example.com"],
        ]
        .concat();
        let r = run(&args);
        assert_eq!(r.code, 3, "{args:?}\n{}", r.dump());
        for wanted in [
            "[targets.NAME]",
            "[targets.wiki]",
            "service = \"https://wiki.example.com\"",
            &format!("ssoprobe {} --config sites.toml", command.join(" ")),
            "ssoprobe config --help",
        ] {
            assert!(
                r.stderr.contains(wanted),
                "{args:?}: {wanted:?}\n{}",
                r.dump()
            );
        }
    }
    // What it points at says how.
    let help = run(&["config", "--help"]);
    assert_eq!(help.code, 0, "{}", help.dump());
    for wanted in ["[targets.NAME]", "[targets.wiki]", "--target NAME"] {
        assert!(help.stdout.contains(wanted), "{wanted:?}\n{}", help.dump());
    }
}

#[test]
fn a_mistyped_name_gets_the_nearest_one() {
    let r = run(&["demo", "--fault", "idp-slw"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("unknown fault 'idp-slw'; did you mean 'idp-slow'?")
            && r.stderr.contains("ssoprobe lab --list-faults"),
        "{}",
        r.dump()
    );
    // The whole list is behind --list-faults, not in the error.
    assert!(!r.stderr.contains("site-public"), "{}", r.dump());
    let r = run(&["lab", "--fault", "jkws-empty"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("did you mean 'jwks-empty'?"),
        "{}",
        r.dump()
    );
    let r = run(&["lab", "--variant", "terce"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("unknown variant 'terce'; did you mean 'terse'?"),
        "{}",
        r.dump()
    );
    // Nothing near: no guess.
    let r = run(&["demo", "--fault", "no-such-fault"]);
    assert!(!r.stderr.contains("did you mean"), "{}", r.dump());

    let dir = std::env::temp_dir().join(format!("ssoprobe-names-{}", common::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sites.toml");
    std::fs::write(
        &file,
        "[targets.wiki]\nservice = \"https://wiki.example.com\"\n[targets.grafana]\nservice = \"https://grafana.example.com\"\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let r = run(&["config", "check", "--config", &file, "--target", "wikki"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("--target: 'wikki' is not a target of")
            && r.stderr.contains("did you mean 'wiki'?")
            && r.stderr.contains("it has: grafana, wiki"),
        "{}",
        r.dump()
    );
    let r = common::run_with_env(
        &["config", "check", "--config", &file],
        &[("SSOPROBE_TARGET", "grafna")],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("SSOPROBE_TARGET: 'grafna'")
            && r.stderr.contains("did you mean 'grafana'?"),
        "{}",
        r.dump()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "lab")]
#[test]
fn completions_offer_the_labs_faults_and_variants() {
    for shell in ["bash", "zsh", "fish"] {
        let r = run(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}\n{}", r.dump());
        for name in ["idp-slow", "jwks-empty", "rebranded", "terse"] {
            assert!(r.stdout.contains(name), "{shell} lacks {name}");
        }
    }
    // With what each one does, where the shell shows it.
    let zsh = run(&["completions", "zsh"]);
    assert!(
        zsh.stdout.contains("minimal Access pages"),
        "{}",
        zsh.stdout
    );
    // --help points at the list instead of printing it.
    let help = run(&["demo", "--help"]);
    assert!(
        help.stdout.contains("lab --list-faults") && !help.stdout.contains("jwks-empty"),
        "{}",
        help.dump()
    );
}

#[cfg(feature = "lab")]
#[test]
fn a_team_that_is_not_the_sites_is_the_first_failure_and_its_host_follows_from_it() {
    let lab = common::Lab::start(&[]);
    let mut args: Vec<&str> = vec!["check"];
    args.extend(lab.short.iter().map(String::as_str));
    // The mistyped team's host: nothing answers there (offline, as when it does not
    // resolve).
    args.extend([
        "--team",
        "xzy",
        "--connect-to",
        "xzy.cloudflareaccess.com:443:127.0.0.1:9",
        "--format",
        "json",
    ]);
    let r = run(&args);
    assert_eq!(r.code, 2, "{}", r.dump());
    let (first, status, hint) = r.first_problem();
    assert_eq!(
        (first.as_str(), status.as_str()),
        ("service.redirect", "fail"),
        "{}",
        r.dump()
    );
    assert!(
        hint.starts_with("correct --team to xyz (you named xzy"),
        "{hint}\n{}",
        r.dump()
    );
    let host = r.check("tls.xzy.cloudflareaccess.com");
    assert_eq!(host["status"], "fail", "{}", r.dump());
    assert_eq!(
        host["details"]["follows_from"],
        "service.redirect",
        "{}",
        r.dump()
    );
    r.assert_says(&host, "hint", "correct --team to xyz");
    // Shown right after its cause.
    let json = r.json();
    let ids: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap_or_default())
        .collect();
    let at = ids.iter().position(|i| *i == "service.redirect").unwrap();
    assert_eq!(
        ids.get(at + 1),
        Some(&"tls.xzy.cloudflareaccess.com"),
        "{ids:?}"
    );
}

#[test]
fn the_oauth2_proxy_gateway_has_its_own_faults_and_its_own_lab() {
    let access = run(&["lab", "--list-faults"]);
    assert_eq!(access.code, 0, "{}", access.dump());
    assert!(access.stdout.contains("jwks-empty"), "{}", access.dump());
    assert!(!access.stdout.contains("o2p-"), "{}", access.dump());
    let o2p = run(&["lab", "--list-faults", "--gateway", "oauth2-proxy"]);
    assert_eq!(o2p.code, 0, "{}", o2p.dump());
    let names: Vec<&str> = o2p
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for name in [
        "o2p-callback-not-registered",
        "o2p-pkce-required",
        "o2p-bad-secret",
        "o2p-not-running",
    ] {
        assert!(names.contains(&name), "{name}\n{}", o2p.dump());
    }
    assert!(names.iter().all(|n| n.starts_with("o2p-")), "{names:?}");

    // A fault of the other gateway is a usage error that says what to run.
    let r = run(&["demo", "--fault", "o2p-bad-secret"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("ssoprobe lab --gateway oauth2-proxy --fault o2p-bad-secret"),
        "{}",
        r.dump()
    );
    let r = run(&["lab", "--gateway", "oauth2-proxy", "--fault", "no-pkce"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("without --gateway"), "{}", r.dump());
    let r = run(&["lab", "--gateway", "oauth2proxy"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("did you mean 'oauth2-proxy'?"),
        "{}",
        r.dump()
    );

    // The lab runs and prints a check command that reaches it.
    let (child, args, _) = start_lab(&["--gateway", "oauth2-proxy"]);
    assert_eq!(args[0], "https://service.example.com", "{args:?}");
    let mut argv = vec!["check".to_string()];
    argv.extend(args);
    argv.extend(["--format".into(), "json".into()]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let checked = run(&argv);
    assert_ne!(checked.code, 3, "{}", checked.dump());
    let json = checked.json();
    assert!(json["checks"].as_array().is_some_and(|c| !c.is_empty()));
    stop(child);
}
