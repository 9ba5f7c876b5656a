//! The habits of curl, hurl and xh: -v, -q, -k, -H, --no-color, --connect-timeout, and a
//! progress line on a terminal only.

mod common;

use common::{Lab, run};
use std::process::Command;

/// The lab's `check` arguments, without an output format.
fn check_args<'a>(lab: &'a Lab, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["check"];
    args.extend(lab.check.iter().map(String::as_str));
    args.extend_from_slice(extra);
    args
}

#[test]
fn short_flags_mean_what_they_mean_in_curl() {
    let lab = Lab::start(&[]);
    // -v is the hop trace (also spelled --verbose and --trace).
    for flag in ["-v", "--verbose", "--trace"] {
        let r = run(&check_args(&lab, &[flag]));
        assert_eq!(r.code, 0, "{flag}\n{}", r.dump());
        assert!(
            r.stderr.contains("[trace] service.redirect"),
            "{flag}\n{}",
            r.dump()
        );
    }
    // -k is --insecure, with its warning.
    let r = run(&check_args(&lab, &["-k"]));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stderr.contains("warning: --insecure"), "{}", r.dump());
    // --connect-timeout within the timeout is accepted.
    let r = run(&check_args(&lab, &["--connect-timeout", "5s"]));
    assert_eq!(r.code, 0, "{}", r.dump());
}

#[test]
fn verbose_lists_the_problems_a_check_line_leaves_out() {
    // Pocket ID's discovery names two internal URLs; the check's line shows the first.
    let hidden = "jwks_uri http://pocket-id:1411/.well-known/jwks.json is not on the public host id.example.com";
    let plain = run(&["demo", "--fault", "internal-url", "--no-login"]);
    assert_eq!(plain.code, 2, "{}", plain.dump());
    assert!(
        plain.stdout.contains("(+1 more: -v lists them)") && !plain.stdout.contains(hidden),
        "{}",
        plain.dump()
    );
    let verbose = run(&["demo", "--fault", "internal-url", "--no-login", "-v"]);
    assert_eq!(verbose.code, 2, "{}", verbose.dump());
    assert!(
        verbose.stdout.contains(&format!("also: ✘ {hidden}\n")),
        "{}",
        verbose.dump()
    );
    // Listed once: the problem the line shows is not repeated.
    assert_eq!(
        verbose
            .stdout
            .matches("token_endpoint http://pocket-id:1411/api/oidc/token is not on")
            .count(),
        1,
        "{}",
        verbose.dump()
    );
}

#[test]
fn quiet_prints_nothing_but_errors() {
    let lab = Lab::start(&["callback-not-registered"]);
    let r = run(&check_args(&lab, &["-q"]));
    assert_eq!(r.code, 2, "{}", r.dump());
    assert_eq!(r.stdout, "", "{}", r.dump());
    assert_eq!(r.stderr, "", "{}", r.dump());
    // The same in every format: the exit code is the answer.
    let r = run(&check_args(&lab, &["--quiet", "--format", "nagios"]));
    assert_eq!((r.code, r.stdout.as_str()), (2, ""), "{}", r.dump());
    // A report asked for in a file is still written.
    let out = lab.dir.join("report.json");
    let out_arg = out.display().to_string();
    let r = run(&check_args(
        &lab,
        &["-q", "--format", "json", "--output", &out_arg],
    ));
    assert_eq!((r.code, r.stdout.as_str()), (2, ""), "{}", r.dump());
    let report = std::fs::read_to_string(&out).unwrap();
    assert!(report.contains("\"idp.authorize\""), "{report}");
    // An error that stops the run still says why, on stderr.
    let r = run(&[
        "check",
        "-q",
        "--format",
        "nagios",
        "--service",
        "https://s.example",
        "--timeout",
        "soon",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (3, ""), "{}", r.dump());
    assert!(r.stderr.contains("--timeout"), "{}", r.dump());
    // With the trace it would not be quiet: a usage error.
    let r = run(&["check", "-q", "-v", "--service", "https://s.example"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("--quiet"), "{}", r.dump());
}

#[test]
fn no_color_is_color_never() {
    let base = [
        "check",
        "--service",
        "https://s.example",
        "--idp",
        "https://id.example",
    ];
    let mut args = base.to_vec();
    args.extend(["--no-color", "--color", "always"]);
    let r = run(&args);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("--no-color"), "{}", r.dump());
    let lab = Lab::start(&[]);
    let r = run(&check_args(&lab, &["--color", "always"]));
    assert!(r.stdout.contains('\u{1b}'), "{}", r.dump());
    let r = run(&check_args(&lab, &["--no-color"]));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(!r.stdout.contains('\u{1b}'), "{}", r.dump());
}

#[test]
fn connect_timeout_cannot_exceed_the_timeout() {
    let r = run(&[
        "check",
        "--service",
        "https://s.example",
        "--idp",
        "https://id.example",
        "--timeout",
        "5s",
        "--connect-timeout",
        "20s",
    ]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("--connect-timeout") && r.stderr.contains("--timeout"),
        "{}",
        r.dump()
    );
    let r = common::bin()
        .args([
            "check",
            "--service",
            "https://s.example",
            "--idp",
            "https://id.example",
        ])
        .env("SSOPROBE_CONNECT_TIMEOUT", "1h")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("SSOPROBE_CONNECT_TIMEOUT"), "{stderr}");
}

#[test]
fn headers_are_checked_and_never_printed() {
    let site = [
        "--service",
        "https://s.example",
        "--idp",
        "https://id.example",
    ];
    for (header, says) in [
        ("X-Probe", "colon"),
        ("X Probe: 1", "not a header name"),
        ("Host: evil.example", "--service"),
        ("Cookie: a=b", "cookie jar"),
        ("CF-Access-Client-Id: x", "--service-token-id"),
        ("X-Probe: a\u{7}b", "printable"),
    ] {
        let mut args = vec!["check"];
        args.extend(site);
        args.extend(["-H", header]);
        let r = run(&args);
        assert_eq!(r.code, 3, "{header}\n{}", r.dump());
        assert!(
            r.stderr.contains("--header") && r.stderr.contains(says),
            "{header}\n{}",
            r.dump()
        );
    }
    // From the file, the key is named.
    let dir = std::env::temp_dir().join(format!("ssoprobe-headers-{}", common::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("probe.toml");
    std::fs::write(
        &file,
        "service = \"https://s.example\"\nidp = \"https://id.example\"\nheader = [\"Bad Name: 1\"]\n",
    )
    .unwrap();
    let r = run(&["config", "check", "--config", &file.display().to_string()]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("key `header`"), "{}", r.dump());
    let _ = std::fs::remove_dir_all(&dir);

    // A good header goes out (its name in the trace), its value never shows.
    let lab = Lab::start(&[]);
    let canary = "waf-skip-canary-5f1d0c";
    let header = format!("X-Waf-Skip: {canary}");
    let r = run(&check_args(
        &lab,
        &["-H", &header, "-v", "--format", "json"],
    ));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stderr.contains("headers: x-waf-skip"), "{}", r.dump());
    assert!(
        !r.stdout.contains(canary) && !r.stderr.contains(canary),
        "{}",
        r.dump()
    );
    // Not even in the help when it comes from the environment.
    let help = common::bin()
        .args(["check", "--help"])
        .env("SSOPROBE_HEADER", &header)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains(canary));
}

/// Runs `args` on a pseudo-terminal (util-linux `script`), returning what the terminal
/// showed and the exit code.
fn on_a_terminal(args: &[&str]) -> (i32, String) {
    let bin = env!("CARGO_BIN_EXE_ssoprobe");
    let line = std::iter::once(bin)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .expect("util-linux `script` runs a command on a pseudo-terminal (Debian: bsdutils)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_slow_run_shows_what_it_waits_for_on_a_terminal_only() {
    let slow = [
        "demo",
        "--fault",
        "idp-slow",
        "--no-login",
        "--timeout",
        "3s",
        "--deadline",
        "20s",
    ];
    // On a terminal: a line naming the check and the request it waits for, then cleared
    // (erase-line) before the report.
    let (code, shown) = on_a_terminal(&slow);
    assert_eq!(code, 2, "{shown}");
    assert!(
        shown.contains("waiting") && shown.contains("for GET https://id.example.com/"),
        "{shown}"
    );
    let report_at = shown.find("tls.service.example.com").unwrap();
    let last_progress = shown[..report_at].rfind("waiting").unwrap();
    assert!(
        shown[last_progress..report_at].contains("\u{1b}[2K"),
        "{shown}"
    );
    // Quiet: no progress either.
    let mut quiet = slow.to_vec();
    quiet.push("-q");
    let (code, shown) = on_a_terminal(&quiet);
    assert_eq!(code, 2, "{shown}");
    assert!(!shown.contains("waiting 1"), "{shown}");
    // Not a terminal: nothing on stderr but the report's own lines.
    let r = run(&slow);
    assert_eq!(r.code, 2, "{}", r.dump());
    assert!(!r.stderr.contains("waiting 1"), "{}", r.dump());
}

#[test]
fn a_fast_run_shows_no_progress_line() {
    let (code, shown) = on_a_terminal(&["demo", "--no-login"]);
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains("waiting"), "{shown}");
}

#[test]
fn config_check_shows_every_setting_and_where_it_came_from() {
    // As `git config --show-origin` does: a flag, a variable, the file (and its target
    // table) and the default, each named; a header's value never shown.
    let dir = std::env::temp_dir().join(format!("ssoprobe-origins-{}", common::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sites.toml");
    std::fs::write(
        &file,
        "team = \"xyz\"\ntimeout = \"5s\"\n\n[targets.wiki]\nservice = \"https://wiki.example.com\"\nheader = [\"X-Skip: origin-canary-77\"]\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let output = common::bin()
        .args([
            "config",
            "check",
            "--config",
            &path,
            "--tls-warn-days",
            "30",
        ])
        .env("SSOPROBE_DEADLINE", "20s")
        .output()
        .unwrap();
    let r = common::Run::from(output, std::time::Duration::ZERO);
    assert_eq!(r.code, 0, "{}", r.dump());
    let line = |key: &str| {
        r.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key}\n{}", r.dump()))
            .to_string()
    };
    assert!(
        line("tls_warn_days").contains("# flag --tls-warn-days"),
        "{}",
        r.dump()
    );
    assert!(
        line("deadline").contains("# variable SSOPROBE_DEADLINE"),
        "{}",
        r.dump()
    );
    assert!(
        line("team").contains(&format!("# file {path}")),
        "{}",
        r.dump()
    );
    assert!(
        line("service").contains(&format!("# file {path} [targets.wiki]")),
        "{}",
        r.dump()
    );
    assert!(line("tls_fail_days").contains("7") && line("tls_fail_days").contains("# default"));
    assert!(line("header").contains("X-Skip: …"), "{}", r.dump());
    assert!(!r.stdout.contains("origin-canary-77"), "{}", r.dump());
    let _ = std::fs::remove_dir_all(&dir);
    // A ping URL is a capability and a query may carry a token: neither shows.
    let r = run(&[
        "config",
        "check",
        "https://service.example.com/?token=query-canary-31",
        "--ping-url",
        "https://hc-ping.com/ping-canary-42",
    ]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for canary in ["query-canary-31", "ping-canary-42"] {
        assert!(!r.stdout.contains(canary), "{}", r.dump());
    }
    assert!(r.stdout.contains("ping_url"), "{}", r.dump());
}
