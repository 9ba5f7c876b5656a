//! Helpers for the end-to-end tests: run the real binary, parse its JSON report, and
//! print everything useful (report and trace) when an assertion fails.

#![allow(dead_code)]

pub mod hostile;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ssoprobe"));
    // Hermetic: no configuration leaks in from the developer's environment.
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        // Nor a proxy of the machine's (any case of the names curl reads).
        let proxy = ["https_proxy", "http_proxy", "all_proxy", "no_proxy"]
            .contains(&k.to_ascii_lowercase().as_str());
        if k.starts_with("SSOPROBE_") || proxy {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1");
    c
}

/// One finished run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn from(output: Output, elapsed: Duration) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        }
    }

    /// Everything, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "exit code {}\n--- stdout ---\n{}\n--- stderr (trace) ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// The JSON report.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.dump()))
    }

    /// A check by id.
    pub fn check(&self, id: &str) -> Value {
        self.json()["checks"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == id).cloned())
            .unwrap_or_else(|| panic!("no check {id}\n{}", self.dump()))
    }

    /// Asserts that `field` of `check` (its summary, hint, …) holds `text`, printing the
    /// run if not.
    #[track_caller]
    pub fn assert_says(&self, check: &Value, field: &str, text: &str) {
        let said = check[field].as_str().unwrap_or_default();
        assert!(
            said.contains(text),
            "the {field} of {} lacks {text:?}: {said:?}\n{}",
            check["id"],
            self.dump()
        );
    }

    /// The first failing check, else the first warning one: (id, status, hint).
    pub fn first_problem(&self) -> (String, String, String) {
        let json = self.json();
        let checks = json["checks"].as_array().cloned().unwrap_or_default();
        let pick = |s: &str| checks.iter().find(|c| c["status"] == s).cloned();
        let c = pick("fail")
            .or_else(|| pick("warn"))
            .unwrap_or_else(|| panic!("no failing or warning check\n{}", self.dump()));
        (
            c["id"].as_str().unwrap_or("").to_string(),
            c["status"].as_str().unwrap_or("").to_string(),
            c["hint"].as_str().unwrap_or("").to_string(),
        )
    }
}

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> Run {
    run_with_env(args, &[])
}

/// Runs the binary with `args` and the environment variables `env`.
pub fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let output = bin()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run ssoprobe");
    Run::from(output, started.elapsed())
}

/// `ssoprobe demo --format json --trace` with the given faults and extra arguments.
pub fn demo(faults: &[&str], extra: &[&str]) -> Run {
    let mut args = vec!["demo", "--format", "json", "--trace"];
    for f in faults {
        args.push("--fault");
        args.push(f);
    }
    args.extend_from_slice(extra);
    run(&args)
}

/// Asserts the scenario of one fault: exit code, first problem check, its status, a
/// hint substring.
pub fn assert_fault(fault: &str, code: i32, check: &str, status: &str, hint: &str) -> Run {
    let run = demo(&[fault], &[]);
    assert_eq!(run.code, code, "fault {fault}: exit code\n{}", run.dump());
    let (id, st, h) = run.first_problem();
    assert_eq!(id, check, "fault {fault}: first problem\n{}", run.dump());
    assert_eq!(st, status, "fault {fault}: status of {id}\n{}", run.dump());
    assert!(
        h.contains(hint),
        "fault {fault}: hint of {id} lacks {hint:?}: {h:?}\n{}",
        run.dump()
    );
    run
}

/// A running `ssoprobe lab` with its files in a directory of the test's own.
pub struct Lab {
    pub child: Child,
    pub dir: PathBuf,
    pub check: Vec<String>,
    /// The `ssoprobe doctor` arguments the lab printed.
    pub doctor: Vec<String>,
    /// The first `ssoprobe check` the lab printed: the short form (URL, routes, CA).
    pub short: Vec<String>,
    pub routes: Vec<String>,
    /// The rest of the lab's standard output (its API access log).
    pub out: Option<BufReader<std::process::ChildStdout>>,
}

impl Lab {
    pub fn start(faults: &[&str]) -> Lab {
        Lab::start_gateway("access", faults)
    }

    /// The lab with `gateway` (`access`, `oauth2-proxy`) in front of the site.
    pub fn start_gateway(gateway: &str, faults: &[&str]) -> Lab {
        let dir = std::env::temp_dir().join(format!("ssoprobe-login-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = bin();
        cmd.arg("lab").arg("--dir").arg(&dir);
        cmd.args(["--gateway", gateway]);
        for f in faults {
            cmd.args(["--fault", f]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut check = Vec::new();
        let mut doctor = Vec::new();
        let mut short = Vec::new();
        let mut line = String::new();
        let started = Instant::now();
        while started.elapsed().as_secs() < 20 {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if let Some(rest) = line.trim().strip_prefix("ssoprobe check ") {
                check = rest.split_whitespace().map(str::to_string).collect();
                if short.is_empty() {
                    short = check.clone();
                }
            }
            if let Some(rest) = line.trim().strip_prefix("ssoprobe doctor ") {
                doctor = rest.split_whitespace().map(str::to_string).collect();
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        assert!(!check.is_empty(), "the lab printed no check command");
        // The flags that route to the lab, wherever they stand in the line (the
        // short form starts with the URL).
        let mut routes = Vec::new();
        for (i, arg) in check.iter().enumerate() {
            if ["--resolve", "--connect-to", "--ca-file"].contains(&arg.as_str())
                && let Some(value) = check.get(i + 1)
            {
                routes.extend([arg.clone(), value.clone()]);
            }
        }
        Lab {
            child,
            dir,
            check,
            doctor,
            short,
            routes,
            out: Some(reader),
        }
    }

    /// `ssoprobe doctor` as the lab printed it, plus `extra`, in JSON.
    pub fn doctor(&self, extra: &[&str]) -> Run {
        let mut args: Vec<&str> = vec!["doctor"];
        args.extend(self.doctor.iter().map(String::as_str));
        args.extend_from_slice(extra);
        args.extend(["--format", "json"]);
        run(&args)
    }

    /// Stops the lab and returns the API requests it logged: (method, host, path, status).
    pub fn stop_and_read_api_log(&mut self) -> Vec<(String, String, String, String)> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut rest = String::new();
        if let Some(mut out) = self.out.take() {
            let _ = std::io::Read::read_to_string(&mut out, &mut rest);
        }
        rest.lines()
            .filter_map(|l| l.strip_prefix("api: "))
            .filter_map(|l| {
                let mut parts = l.split(' ');
                Some((
                    parts.next()?.to_string(),
                    parts.next()?.to_string(),
                    parts.next()?.to_string(),
                    parts.next()?.to_string(),
                ))
            })
            .collect()
    }

    /// The values of one routing flag (`--resolve`, `--connect-to`, `--ca-file`).
    pub fn route_values(&self, flag: &str) -> Vec<String> {
        self.routes
            .chunks(2)
            .filter(|p| p[0] == flag)
            .map(|p| p[1].clone())
            .collect()
    }

    /// The lab's CA file.
    pub fn ca_file(&self) -> String {
        self.route_values("--ca-file")
            .pop()
            .expect("the lab printed its --ca-file")
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    pub fn enroll(&self, out: &str) -> Run {
        self.enroll_with_key(out, &self.path("api-key.txt"))
    }

    /// `ssoprobe enroll` of probe@example.com into `out` with the API key in `key`.
    pub fn enroll_with_key(&self, out: &str, key: &str) -> Run {
        let mut args = vec![
            "enroll",
            "--idp",
            "https://id.example.com",
            "--api-key-file",
            key,
            "--user",
            "probe@example.com",
            "--out",
            out,
            "--trace",
        ];
        args.extend(self.routes.iter().map(String::as_str));
        run(&args)
    }

    pub fn check(&self, extra: &[&str]) -> Run {
        let mut args: Vec<&str> = vec!["check"];
        args.extend(self.check.iter().map(String::as_str));
        args.extend_from_slice(extra);
        args.extend(["--format", "json", "--trace"]);
        run(&args)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Polls `ready` every 50 ms until it holds. A guard against a hang, not a timing
/// assertion: it gives up, naming `what`, only after 1,200 polls (about a minute).
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    for _ in 0..1_200 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("gave up waiting: {what}");
}

/// Checks that the section between `<!-- NAME: generated by tests/FILE; do not edit -->`
/// and `<!-- end of NAME -->` — in README.md or one of the `docs/` pages, whichever
/// holds the markers — is `wanted` (after `same` made both comparable), or — with
/// SSOPROBE_BLESS=1 — rewrites it.
#[allow(dead_code)]
pub fn readme_section(name: &str, by: &str, wanted: &str, same: impl Fn(&str) -> String) {
    let begin = format!("<!-- {name}: generated by {by}; do not edit -->");
    let end_mark = format!("<!-- end of {name} -->");
    let path = doc_files()
        .into_iter()
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(&begin)))
        .unwrap_or_else(|| {
            panic!("neither README.md nor docs/ has the markers {begin} … {end_mark}")
        });
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(start), Some(end)) = (readme.find(&begin), readme.find(&end_mark)) else {
        panic!("{} lacks the marker {end_mark}", path.display());
    };
    let current = &readme[start + begin.len()..end];
    let wanted = format!("\n{wanted}");
    if same(current) != same(&wanted) {
        if std::env::var_os("SSOPROBE_BLESS").is_some() {
            let updated = format!("{}{begin}{wanted}{}", &readme[..start], &readme[end..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        panic!(
            "{}'s {name} is out of date; run SSOPROBE_BLESS=1 cargo test --test {} to rewrite it. Wanted:\n{wanted}",
            path.display(),
            by.trim_start_matches("tests/").trim_end_matches(".rs")
        );
    }
}

/// README.md and every Markdown page under docs/.
pub fn doc_files() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect()
        })
        .unwrap_or_default();
    pages.sort();
    files.extend(pages);
    files
}
