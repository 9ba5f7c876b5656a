//! The man pages: `ssoprobe man` prints ssoprobe(1), `ssoprobe man --dir DIR` writes one
//! page per subcommand. Every page passes `mandoc -T lint -W warning` without a message
//! and renders with man(1) (or mandoc), carries its options with their environment
//! variables (never their values) and its exit codes and examples, and names in SEE ALSO
//! only pages that `--dir` writes.
//!
//! mandoc is a real tool these tests need (`.ci/run` installs it); without it they fail,
//! unless SSOPROBE_SKIP_REAL_TOOLS=1 says to skip the real-tool checks, as in
//! tests/formats.rs.

mod common;

use common::{Run, bin};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The pages `man --dir` writes: one per subcommand and nested subcommand, none for
/// clap's `help`.
const PAGES: &[&str] = &[
    "ssoprobe",
    "ssoprobe-check",
    "ssoprobe-doctor",
    "ssoprobe-demo",
    "ssoprobe-lab",
    "ssoprobe-enroll",
    "ssoprobe-passkey",
    "ssoprobe-passkey-show",
    "ssoprobe-passkey-remove",
    "ssoprobe-serve",
    "ssoprobe-config",
    "ssoprobe-config-check",
    "ssoprobe-checks",
    "ssoprobe-schema",
    "ssoprobe-completions",
    "ssoprobe-man",
];

/// 2026-11-29, so that the pages (and their date) are the same from run to run.
const SOURCE_DATE_EPOCH: &str = "1795910400";

/// A fresh directory of the test's own.
fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ssoprobe-man-{what}-{}", common::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `ssoprobe man --dir DIR` with `envs` set; the run must succeed.
fn write_pages(dir: &Path, envs: &[(String, String)]) -> Run {
    let started = Instant::now();
    let output = bin()
        .args(["man", "--dir"])
        .arg(dir)
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run ssoprobe");
    let run = Run::from(output, started.elapsed());
    assert_eq!(run.code, 0, "man --dir {}\n{}", dir.display(), run.dump());
    run
}

/// Whether a real tool may be missing (SSOPROBE_SKIP_REAL_TOOLS=1), said on stderr.
fn skip_real_tool(tool: &str) -> bool {
    if std::env::var("SSOPROBE_SKIP_REAL_TOOLS").as_deref() == Ok("1") {
        eprintln!("{tool} not found; SSOPROBE_SKIP_REAL_TOOLS=1: check skipped");
        return true;
    }
    false
}

/// Runs mandoc with `args`, or None when it is missing and the real-tool checks are
/// skipped on purpose. A missing mandoc otherwise fails the test.
fn mandoc(args: &[&str], page: &Path) -> Option<std::process::Output> {
    match Command::new("mandoc").args(args).arg(page).output() {
        Ok(output) => Some(output),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if skip_real_tool("mandoc") {
                return None;
            }
            panic!(
                "mandoc is not on PATH: the man page tests lint every page with it. .ci/run \
                 installs it (Debian package `mandoc`: apt-get install -y mandoc); or set \
                 SSOPROBE_SKIP_REAL_TOOLS=1 to skip the checks with real tools"
            );
        }
        Err(e) => panic!("cannot run mandoc: {e}"),
    }
}

/// Text as a terminal shows it: without the overstrike of bold and underline
/// (`X\bX`, `_\bX`).
fn plain(rendered: &[u8]) -> String {
    let text = String::from_utf8_lossy(rendered);
    let mut out: Vec<char> = Vec::new();
    for c in text.chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out.into_iter().collect()
}

/// Whitespace runs as one space (the renderers justify and wrap).
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The page as mandoc renders it for an 80-column terminal, and as man(1) does when
/// man-db is installed. Either renderer must say nothing on stderr.
fn renderings(page: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(r) = mandoc(&["-T", "utf8", "-O", "width=80"], page) {
        assert!(
            r.status.success() && r.stderr.is_empty(),
            "mandoc -T utf8 {}: {}\n{}",
            page.display(),
            r.status,
            String::from_utf8_lossy(&r.stderr)
        );
        out.push(("mandoc -T utf8".to_string(), plain(&r.stdout)));
    }
    let man = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .stdin(Stdio::null())
        .output();
    match man {
        Ok(r) => {
            assert!(
                r.status.success() && r.stderr.is_empty(),
                "MANWIDTH=80 man --warnings -l {}: {}\n{}",
                page.display(),
                r.status,
                String::from_utf8_lossy(&r.stderr)
            );
            out.push(("man -l".to_string(), plain(&r.stdout)));
        }
        // No man-db: mandoc alone renders the pages.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot run man: {e}"),
    }
    out
}

/// The pages a page refers to, `name(1)`, from its roff source (SUBCOMMANDS and SEE
/// ALSO).
fn references(roff: &str) -> BTreeSet<String> {
    let text = roff
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "");
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("(1)") {
        let name: String = text[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if !name.is_empty() {
            names.insert(name);
        }
    }
    names
}

/// The text of a section of the roff source, from its `.SH` line to the next one.
fn roff_section<'a>(roff: &'a str, heading: &str) -> Option<&'a str> {
    let start = roff.find(&format!("\n.SH {heading}\n"))? + 1;
    let body = &roff[start..];
    let end = body[1..].find("\n.SH ").map_or(body.len(), |e| e + 1);
    Some(&body[..end])
}

#[test]
fn man_dir_writes_a_page_per_subcommand_that_lints_and_renders() {
    let dir = temp_dir("pages").join("man1");
    // Missing, with its parent: created.
    assert!(!dir.exists());
    let run = write_pages(&dir, &[]);

    // Exactly the expected pages, listed on stdout, and nothing else (no temporary file).
    let expected: Vec<PathBuf> = PAGES.iter().map(|p| dir.join(format!("{p}.1"))).collect();
    let listed: Vec<PathBuf> = run.stdout.lines().map(PathBuf::from).collect();
    assert_eq!(listed, expected, "{}", run.dump());
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut wanted: Vec<String> = PAGES.iter().map(|p| format!("{p}.1")).collect();
    wanted.sort();
    assert_eq!(on_disk, wanted, "files in {}", dir.display());

    let version = common::run(&["--version"]);
    let version = version.stdout.trim();
    assert!(version.starts_with("ssoprobe "), "--version: {version:?}");

    for name in PAGES {
        let path = dir.join(format!("{name}.1"));
        let roff = std::fs::read_to_string(&path).unwrap();

        // mandoc's lint, warnings and worse: not one message.
        if let Some(lint) = mandoc(&["-T", "lint", "-W", "warning"], &path) {
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&lint.stdout),
                String::from_utf8_lossy(&lint.stderr)
            );
            assert!(
                lint.status.success() && said.trim().is_empty(),
                "mandoc -T lint -W warning {}: {}\n{said}",
                path.display(),
                lint.status
            );
        }

        // The title names the page and carries the version and the date.
        let title = roff
            .lines()
            .find(|l| l.starts_with(".TH "))
            .unwrap_or_else(|| panic!("{name}: no .TH line"));
        assert!(
            title.starts_with(&format!(".TH {} 1 2026-11-29 ", name.to_uppercase())),
            "{name}: {title}"
        );
        assert!(title.contains(&format!("\"{version}\"")), "{name}: {title}");
        assert!(
            roff.contains(&format!("\n.SH NAME\n{}", name.replace('-', "\\-"))),
            "{name}: NAME section\n{roff}"
        );
        // Only ssoprobe(1) is there for clap's help subcommand.
        assert!(
            !roff.contains("help(1)"),
            "{name}: names a help page\n{roff}"
        );

        // Every page it names is written, and SEE ALSO names at least one.
        let see_also = roff_section(&roff, "\"SEE ALSO\"")
            .unwrap_or_else(|| panic!("{name}: no SEE ALSO\n{roff}"));
        assert!(!references(see_also).is_empty(), "{name}: {see_also}");
        for reference in references(&roff) {
            assert!(
                dir.join(format!("{reference}.1")).is_file(),
                "{name} names {reference}(1), which man --dir did not write\n{roff}"
            );
        }

        for (renderer, text) in renderings(&path) {
            assert!(
                text.contains(&name.to_uppercase()) && text.contains(version),
                "{renderer} {name}: no title with {version:?}\n{text}"
            );
        }
    }

    // The top page lists the subcommands and points at their pages.
    let top = std::fs::read_to_string(dir.join("ssoprobe.1")).unwrap();
    let subcommands = roff_section(&top, "SUBCOMMANDS").expect("SUBCOMMANDS in ssoprobe(1)");
    for page in PAGES.iter().filter(|p| p.matches('-').count() == 1) {
        assert!(
            references(subcommands).contains(*page),
            "ssoprobe(1) does not list {page}\n{subcommands}"
        );
    }

    // check's page: its options with their variables, its exit codes and example.
    let check = dir.join("ssoprobe-check.1");
    for (renderer, text) in renderings(&check) {
        let flat = words(&text);
        for wanted in [
            "--passkey <FILE>",
            "--deadline <DURATION>",
            "--ping-url <URL>",
            "--format <FORMAT>",
            "Possible values:",
            "SSOPROBE_DEADLINE",
            "[env: SSOPROBE_DEADLINE]",
            "[env: SSOPROBE_PING_URL]",
            "EXIT STATUS",
            "Exit codes: 0 all checks passed, 1 warnings only, 2 at least one check failed, \
             3 ssoprobe could not run",
            "EXAMPLES",
            "ssoprobe check --service https://service.example.com",
            "ENVIRONMENT",
            "SEE ALSO ssoprobe(1)",
        ] {
            assert!(
                flat.contains(wanted),
                "{renderer} ssoprobe-check.1 lacks {wanted:?}\n{text}"
            );
        }
    }
    // Nested pages: their synopsis has the whole command, SEE ALSO the parent.
    for (renderer, text) in renderings(&dir.join("ssoprobe-config-check.1")) {
        let flat = words(&text);
        for wanted in [
            "ssoprobe config check [",
            "--passkey <FILE>",
            "SEE ALSO ssoprobe-config(1)",
        ] {
            assert!(
                flat.contains(wanted),
                "{renderer} ssoprobe-config-check.1 lacks {wanted:?}\n{text}"
            );
        }
    }
    for (renderer, text) in renderings(&dir.join("ssoprobe-enroll.1")) {
        let flat = words(&text);
        for wanted in ["EXAMPLES", "--login-code", "NOTES", "mode 0600"] {
            assert!(
                flat.contains(wanted),
                "{renderer} ssoprobe-enroll.1 lacks {wanted:?}\n{text}"
            );
        }
    }

    // `ssoprobe man` prints the same top page; a second --dir run replaces the pages.
    let printed = bin()
        .arg("man")
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(String::from_utf8_lossy(&printed.stdout), top);
    let again = write_pages(&dir, &[]);
    assert_eq!(again.stdout, run.stdout);
    assert_eq!(
        std::fs::read_to_string(dir.join("ssoprobe.1")).unwrap(),
        top
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), PAGES.len());

    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

#[test]
fn man_pages_name_environment_variables_but_never_their_values() {
    // Every variable any page names, each set to a canary; the ping URL (a capability
    // URL, `hide_env_values`) as a Healthchecks URL.
    let probe = temp_dir("probe");
    write_pages(&probe, &[]);
    let mut variables = BTreeSet::new();
    for entry in std::fs::read_dir(&probe).unwrap() {
        let roff = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for word in roff.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("SSOPROBE_") {
                variables.insert(word.to_string());
            }
        }
    }
    for wanted in [
        "SSOPROBE_PING_URL",
        "SSOPROBE_SERVICE",
        "SSOPROBE_SERVICE_TOKEN_ID",
        "SSOPROBE_DEADLINE",
    ] {
        assert!(variables.contains(wanted), "no page names {wanted}");
    }
    let mut envs: Vec<(String, String)> = variables
        .iter()
        .map(|v| (v.clone(), format!("SECRETCANARY-{v}")))
        .collect();
    envs.retain(|(k, _)| k != "SSOPROBE_PING_URL");
    envs.push((
        "SSOPROBE_PING_URL".to_string(),
        "https://hc.example/SECRETCANARY".to_string(),
    ));

    let dir = temp_dir("canary");
    let run = write_pages(&dir, &envs);
    assert!(!run.stdout.contains("SECRETCANARY"), "{}", run.dump());
    assert!(!run.stderr.contains("SECRETCANARY"), "{}", run.dump());
    for name in PAGES {
        let path = dir.join(format!("{name}.1"));
        let roff = std::fs::read_to_string(&path).unwrap();
        assert!(
            !roff.contains("SECRETCANARY"),
            "{} shows an environment value\n{roff}",
            path.display()
        );
    }
    let top = bin()
        .arg("man")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(top.status.success());
    assert!(!String::from_utf8_lossy(&top.stdout).contains("SECRETCANARY"));
    std::fs::remove_dir_all(&probe).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn man_dir_on_a_regular_file_fails_naming_it() {
    let dir = temp_dir("file");
    let file = dir.join("not-a-directory");
    std::fs::write(&file, "a file\n").unwrap();
    let started = Instant::now();
    let output = bin()
        .args(["man", "--dir"])
        .arg(&file)
        .output()
        .expect("run ssoprobe");
    let run = Run::from(output, started.elapsed());
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(
        run.stderr.contains(&file.display().to_string())
            && run.stderr.contains("not a directory")
            && run.stderr.contains("--dir"),
        "{}",
        run.dump()
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.dump());
    assert!(run.stdout.is_empty(), "{}", run.dump());
    // Left alone.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a file\n");

    // A directory under that file cannot be created either.
    let below = file.join("man1");
    let run = common::run(&["man", "--dir", &below.display().to_string()]);
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(
        run.stderr.contains(&below.display().to_string()) && !run.stderr.contains("panicked"),
        "{}",
        run.dump()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn man_ends_quietly_when_the_reader_goes_away() {
    let dir = temp_dir("pipe");
    let pages = dir.join("man1");
    let runs: [Vec<std::ffi::OsString>; 2] = [
        vec!["man".into()],
        vec!["man".into(), "--dir".into(), pages.clone().into()],
    ];
    for args in runs {
        let mut child = bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the command writes anything (`ssoprobe man | head -1`).
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(101), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
    // The pages are all written before their paths are printed.
    for name in PAGES {
        assert!(
            pages.join(format!("{name}.1")).is_file(),
            "{name}.1 missing"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn man_dir_creates_the_last_directory_only() {
    let dir = temp_dir("parent");
    // A mistyped path: its parent is missing too. Nothing is created.
    let missing = dir.join("mna").join("man1");
    let run = common::run(&["man", "--dir", &missing.display().to_string()]);
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(
        run.stderr.contains("--dir: cannot create")
            && run.stderr.contains(&format!(
                "its parent directory {} does not exist",
                dir.join("mna").display()
            )),
        "{}",
        run.dump()
    );
    assert!(
        !dir.join("mna").exists(),
        "created {}",
        dir.join("mna").display()
    );
    assert!(run.stdout.is_empty(), "{}", run.dump());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_synopsis_shows_what_each_option_takes() {
    let dir = temp_dir("synopsis");
    write_pages(&dir, &[]);
    let page = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.1"))).unwrap();
    let check = page("ssoprobe-check");
    let synopsis = roff_section(&check, "SYNOPSIS").expect("SYNOPSIS");
    for wanted in [
        r"[\fB\-\-timeout\fR \fIDURATION\fR]",
        r"[\fB\-\-resolve\fR \fIHOST:PORT:ADDR\fR]...",
        r"[\fB\-k\fR|\fB\-\-insecure\fR]",
        r"[\fIURL\fR]",
    ] {
        assert!(synopsis.contains(wanted), "{wanted}\n{synopsis}");
    }
    // Required options stand without brackets.
    let enroll = page("ssoprobe-enroll");
    let synopsis = roff_section(&enroll, "SYNOPSIS").expect("SYNOPSIS");
    assert!(
        synopsis.contains(r" \fB\-\-idp\fR \fIURL\fR") && !synopsis.contains(r"[\fB\-\-idp\fR"),
        "{synopsis}"
    );
    // As read.
    for (renderer, text) in renderings(&dir.join("ssoprobe-check.1")) {
        let flat = words(&text);
        for wanted in [
            "[--timeout DURATION]",
            "[--format FORMAT]",
            "[--passkey FILE]",
        ] {
            assert!(flat.contains(wanted), "{renderer}: {wanted:?}\n{text}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
