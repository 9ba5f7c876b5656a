//! End-to-end tests of the unattended use: several targets in one config file,
//! `config check`, `--output`, and the `--ping-url` dead-man's switch.

// They run the binary against the embedded lab.
#![cfg(feature = "lab")]

mod common;
use common::{Lab, run};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A config file with two targets sharing defaults, both pointing at `lab`.
fn two_targets(lab: &Lab, extra_b: &str) -> String {
    let ca = lab
        .routes
        .chunks(2)
        .find(|p| p[0] == "--ca-file")
        .map(|p| p[1].clone())
        .unwrap_or_default();
    let resolve: Vec<String> = lab
        .routes
        .chunks(2)
        .filter(|p| p[0] == "--resolve")
        .map(|p| format!("\"{}\"", p[1]))
        .collect();
    let connect: Vec<String> = lab
        .routes
        .chunks(2)
        .filter(|p| p[0] == "--connect-to")
        .map(|p| format!("\"{}\"", p[1]))
        .collect();
    let text = format!(
        "team = \"xyz\"\nidp = \"https://id.example.com\"\nca_file = \"{ca}\"\nresolve = [{}]\nconnect_to = [{}]\ntimeout = \"5s\"\n\n[targets.main]\nservice = \"https://service.example.com\"\n\n[targets.admin]\nservice = \"https://service.example.com/admin/\"\n{extra_b}\n",
        resolve.join(", "),
        connect.join(", ")
    );
    let path = lab.dir.join("sites.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn several_targets_are_checked_and_reported_together() {
    let lab = Lab::start(&[]);
    let cfg = two_targets(&lab, "");
    let all = run(&["check", "--config", &cfg, "--format", "json"]);
    assert_eq!(all.code, 0, "{}", all.dump());
    let doc = all.json();
    let names: Vec<&str> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "main"], "{}", all.dump());
    assert_eq!(
        doc["targets"][0]["checks"][3]["details"]["redirect_url"],
        "/admin/"
    );
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../src/report/report.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");

    let one = run(&[
        "check", "--config", &cfg, "--target", "main", "--format", "json",
    ]);
    assert_eq!(one.code, 0, "{}", one.dump());
    assert_eq!(one.json()["name"], "main");

    let human = run(&["check", "--config", &cfg, "--color", "never"]);
    assert!(
        human.stdout.contains("target admin") && human.stdout.contains("target main"),
        "{}",
        human.stdout
    );

    let unknown = run(&["check", "--config", &cfg, "--target", "nope"]);
    assert_eq!(unknown.code, 3, "{}", unknown.dump());
    assert!(
        unknown.stderr.contains("'nope' is not a target") && unknown.stderr.contains("admin, main"),
        "{}",
        unknown.dump()
    );
}

#[test]
fn the_worst_target_decides_the_exit_code() {
    let lab = Lab::start(&[]);
    // The admin target expects a status the site never answers anonymously… but no
    // login runs, so make it fail another way: a wrong AUD.
    let cfg = two_targets(
        &lab,
        "aud = \"0000000000000000000000000000000000000000000000000000000000000000\"",
    );
    let all = run(&["check", "--config", &cfg, "--format", "json"]);
    assert_eq!(all.code, 2, "{}", all.dump());
    let doc = all.json();
    assert_eq!(doc["status"], "fail");
    assert_eq!(doc["targets"][0]["status"], "fail");
    assert_eq!(doc["targets"][1]["status"], "pass");
}

#[test]
fn config_check_validates_without_the_network() {
    let dir = std::env::temp_dir().join(format!("ssoprobe-cfgcheck-{}", common::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    // Hosts that do not resolve: config check must not try.
    std::fs::write(
        &good,
        "idp = \"https://id.invalid\"\n[targets.a]\nservice = \"https://a.invalid\"\n[targets.b]\nservice = \"https://b.invalid\"\nteam = \"xyz\"\n",
    )
    .unwrap();
    let ok = run(&["config", "check", "--config", good.to_str().unwrap()]);
    assert_eq!(ok.code, 0, "{}", ok.dump());
    assert!(
        ok.stdout.contains("2 targets") && ok.stdout.contains("a: https://a.invalid/"),
        "{}",
        ok.stdout
    );

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "idp = \"https://id.invalid\"\n[targets.a]\nservice = \"https://a.invalid\"\n[targets.b]\nservice = \"https://b.invalid\"\ntimeout = \"soon\"\n",
    )
    .unwrap();
    let e = run(&["config", "check", "--config", bad.to_str().unwrap()]);
    assert_eq!(e.code, 3, "{}", e.dump());
    assert!(
        e.stderr.contains("[targets.b]: key `timeout`: 'soon'"),
        "{}",
        e.dump()
    );

    let nested = dir.join("unknown.toml");
    std::fs::write(&nested, "[targets.a]\nservce = \"https://a.invalid\"\n").unwrap();
    let e = run(&["config", "check", "--config", nested.to_str().unwrap()]);
    assert_eq!(e.code, 3, "{}", e.dump());
    assert!(e.stderr.contains("servce"), "{}", e.dump());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn output_is_written_to_the_file_not_stdout() {
    let lab = Lab::start(&[]);
    let out = lab.dir.join("report.json");
    let r = lab.check(&["--output", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stdout.is_empty(), "{}", r.dump());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["status"], "pass");
    // No temporary file is left next to it.
    let leftovers: Vec<_> = std::fs::read_dir(&lab.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `METHOD path` and body of each request the ping server saw.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A tiny HTTP server that records `METHOD path` and the body of each request.
fn ping_server() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8).flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut length = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let parts: Vec<&str> = line.split_whitespace().collect();
            record.lock().unwrap().push((
                format!("{} {}", parts[0], parts[1]),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            let mut s = stream;
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK");
        }
    });
    (format!("http://{addr}/ping/0f6c1a2e-probe"), seen)
}

#[test]
fn ping_url_brackets_the_run_and_reports_the_exit_code() {
    let lab = Lab::start(&[]);
    let (url, seen) = ping_server();
    let ok = lab.check(&["--ping-url", &url]);
    assert_eq!(ok.code, 0, "{}", ok.dump());
    assert!(
        !ok.stderr.contains("0f6c1a2e-probe"),
        "the ping URL is never printed\n{}",
        ok.dump()
    );
    let requests = seen.lock().unwrap().clone();
    assert_eq!(
        requests[0].0, "POST /ping/0f6c1a2e-probe/start",
        "{requests:?}"
    );
    assert_eq!(requests[1].0, "POST /ping/0f6c1a2e-probe", "{requests:?}");
    assert!(
        requests[1].1.contains("PASS ·") && requests[1].1.len() <= 10_000,
        "{requests:?}"
    );
    drop(lab);

    let lab = Lab::start(&["jwks-empty"]);
    let (url, seen) = ping_server();
    let failed = lab.check(&["--ping-url", &url]);
    assert_eq!(failed.code, 2, "{}", failed.dump());
    let requests = seen.lock().unwrap().clone();
    assert_eq!(
        requests.last().unwrap().0,
        "POST /ping/0f6c1a2e-probe/2",
        "{requests:?}"
    );
}

#[test]
fn a_failed_ping_does_not_change_the_result() {
    let lab = Lab::start(&[]);
    // Nothing listens on port 1.
    let r = lab.check(&["--ping-url", "http://127.0.0.1:1/ping/x"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stderr.contains("warning: the start ping failed"),
        "{}",
        r.dump()
    );
}

/// A real tool from Debian's packages; missing means the test cannot judge, which is a
/// failure unless SSOPROBE_SKIP_REAL_TOOLS=1 says so on purpose.
fn real_tool(name: &str) -> Option<std::process::Command> {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(std::process::Command::new(name));
    }
    assert!(
        std::env::var_os("SSOPROBE_SKIP_REAL_TOOLS").is_some(),
        "{name} is not installed (Debian package: prometheus / libxml2-utils); .ci/run installs it"
    );
    None
}

#[test]
fn alerting_rules_pass_promtool_and_use_metrics_ssoprobe_writes() {
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/prometheus/alerts.yml"
    );
    if let Some(mut promtool) = real_tool("promtool") {
        let out = promtool.args(["check", "rules", rules]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let scrape = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/packaging/prometheus/scrape.yml"
        );
        let out = std::process::Command::new("promtool")
            .args(["check", "config", scrape])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let metrics = run(&["demo", "--format", "prometheus"]);
    assert_eq!(metrics.code, 0, "{}", metrics.dump());
    let text = std::fs::read_to_string(rules).unwrap();
    for name in [
        "ssoprobe_check_success",
        "ssoprobe_tls_cert_expiry_timestamp_seconds",
        "ssoprobe_run_timestamp_seconds",
    ] {
        assert!(text.contains(name), "the rules use {name}");
        assert!(
            metrics.stdout.contains(&format!("\n{name}{{")),
            "ssoprobe writes {name}\n{}",
            metrics.stdout
        );
    }
}

#[test]
fn systemd_units_verify() {
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        // Not every machine has systemd; the unit syntax is still checked where it does.
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/systemd");
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", &format!("{dir}/ssoprobe.timer")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    // The timer's unit is checked with it; a missing binary or man page is not a syntax error.
    for line in text.lines() {
        assert!(
            line.contains("man ssoprobe")
                || line.contains("/usr/local/bin/ssoprobe")
                || line.trim().is_empty(),
            "systemd-analyze: {line}"
        );
    }
}

/// A free loopback port (bound, then released for the server under test).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP GET on loopback: (status, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_with(port, path, "")
}

/// [`http_get`] with extra header lines (each ending in \r\n).
fn http_get_with(port: u16, path: &str, headers: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n{headers}\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Small bodies only in these tests: undo chunked encoding if present.
    let body = if raw
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body.as_str();
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body
    };
    Some((status, body))
}

struct Serve {
    child: std::process::Child,
    port: u16,
}

impl Serve {
    fn start(config: &str, extra: &[&str]) -> Serve {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = common::bin()
            .args(["serve", "--config", config, "--listen", &listen])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        common::wait_for("serve to answer /healthz", || {
            http_get(port, "/healthz").map(|r| r.0) == Some(204)
        });
        Serve { child, port }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let mut status = None;
        common::wait_for("serve to stop on SIGTERM", || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status.expect("an exit status")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_probes_targets_and_logs_in_at_most_once_per_interval() {
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    assert_eq!(lab.enroll(&pk).code, 0);
    let cfg = two_targets(&lab, &format!("passkey = \"{pk}\""));
    let serve = Serve::start(&cfg, &["--min-login-interval", "60s"]);

    let (status, first) = http_get(serve.port, "/probe?target=admin").unwrap();
    assert_eq!(status, 200, "{first}");
    assert!(first.contains("\nprobe_success 1\n"), "{first}");
    assert!(first.contains("ssoprobe_check_success{"), "{first}");
    let (_, second) = http_get(serve.port, "/probe?target=admin").unwrap();
    assert!(second.contains("\nprobe_success 1\n"), "{second}");
    assert!(
        !second.contains("\nssoprobe_result_age_seconds 0.000\n"),
        "the second scrape reuses the first run\n{second}"
    );
    assert_eq!(
        counter(&pk),
        1,
        "exactly one login at the lab for two quick scrapes"
    );

    // Anonymous targets run on every scrape.
    let (_, anon) = http_get(serve.port, "/probe?target=main").unwrap();
    assert!(anon.contains("\nprobe_success 1\n"), "{anon}");

    if let Some(mut promtool) = real_tool("promtool") {
        let mut child = promtool
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(first.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let (status, body) = http_get(serve.port, "/probe?target=nope").unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("admin, main"), "{body}");
    assert!(!body.contains("did you mean"), "{body}");
    let (status, body) = http_get(serve.port, "/probe?target=amdin").unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("did you mean 'admin'?"), "{body}");
    let (status, metrics) = http_get(serve.port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("ssoprobe_exporter_runs_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ssoprobe_exporter_cached_probes_total 1"),
        "{metrics}"
    );
    let key = std::fs::read_to_string(lab.path("api-key.txt")).unwrap();
    assert!(!first.contains(key.trim()) && !metrics.contains(key.trim()));
    assert!(serve.stop().success(), "serve exits 0 on SIGTERM");
}

fn counter(path: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["counter"].as_u64().unwrap()
}

#[test]
fn a_real_prometheus_scrapes_serve() {
    let Some(_) = real_tool("prometheus") else {
        return;
    };
    let healthy = Lab::start(&[]);
    let broken = Lab::start(&["jwks-empty"]);
    let ok_cfg = two_targets(&healthy, "");
    let bad_cfg = two_targets(&broken, "");
    // One config with a healthy and a broken target.
    let ok_text = std::fs::read_to_string(&ok_cfg).unwrap();
    let bad_text = std::fs::read_to_string(&bad_cfg).unwrap();
    let section = |text: &str, name: &str| -> String {
        let defaults: String = text
            .split("\n[targets.")
            .next()
            .unwrap()
            .lines()
            .map(|l| format!("{l}\n"))
            .collect();
        let mut out = format!("[targets.{name}]\nservice = \"https://service.example.com\"\n");
        for line in defaults.lines().filter(|l| !l.trim().is_empty()) {
            out.push_str(line);
            out.push('\n');
        }
        out
    };
    let cfg_path = healthy.dir.join("prom-sites.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "{}\n{}",
            section(&ok_text, "healthy"),
            section(&bad_text, "broken")
        ),
    )
    .unwrap();
    let serve = Serve::start(cfg_path.to_str().unwrap(), &[]);

    let prom_port = free_port();
    let prom_dir = healthy.dir.join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prom_cfg = prom_dir.join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ssoprobe\n    metrics_path: /probe\n    static_configs:\n      - targets: [healthy, broken]\n    relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n      - source_labels: [__param_target]\n        target_label: instance\n      - target_label: __address__\n        replacement: 127.0.0.1:{}\n",
            serve.port
        ),
    )
    .unwrap();
    let mut prometheus = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", prom_cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            prom_dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut seen = BTreeMap::new();
    while started.elapsed().as_secs() < 40 && seen.len() < 2 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let Some((200, body)) = http_get(prom_port, "/api/v1/query?query=probe_success") else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        for r in v["data"]["result"].as_array().cloned().unwrap_or_default() {
            let instance = r["metric"]["instance"].as_str().unwrap_or("").to_string();
            let value = r["value"][1].as_str().unwrap_or("").to_string();
            seen.insert(instance, value);
        }
    }
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert_eq!(
        seen.get("healthy").map(String::as_str),
        Some("1"),
        "{seen:?}"
    );
    assert_eq!(
        seen.get("broken").map(String::as_str),
        Some("0"),
        "{seen:?}"
    );
    drop(serve);
}

#[test]
fn serve_answers_within_prometheus_scrape_timeout() {
    let lab = Lab::start(&["idp-slow"]);
    let cfg = two_targets(&lab, "");
    let serve = Serve::start(&cfg, &[]);
    let (status, body) = http_get_with(
        serve.port,
        "/probe?target=main",
        "x-prometheus-scrape-timeout-seconds: 2\r\n",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nprobe_success 0\n"), "{body}");
    // The stalled check was cut to the scrape's timeout and reported, not waited out.
    assert!(
        body.contains("ssoprobe_check_success{target=\"main\",check=\"idp.discovery\"} 0"),
        "{body}"
    );
}

/// Runs Chromium headless on `url` with `args` (`--dump-dom`, `--screenshot=…`) and its
/// own profile; None when Chromium is not installed and SSOPROBE_SKIP_REAL_TOOLS is set.
fn chromium(args: &[&str], url: &str, profile: &std::path::Path) -> Option<String> {
    let mut cmd = real_tool("chromium")?;
    let mut child = cmd
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out).unwrap();
    }
    let mut status = None;
    common::wait_for("chromium to exit", || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    assert!(
        status.is_some_and(|s| s.success()),
        "chromium failed on {url}"
    );
    Some(out)
}

#[test]
fn serve_pages_render_in_a_real_browser_and_show_server_text_as_text() {
    let healthy = Lab::start(&[]);
    let faulty = Lab::start(&["error-text-markup"]);
    let target = |lab: &Lab| {
        let ca = lab
            .routes
            .chunks(2)
            .find(|p| p[0] == "--ca-file")
            .map(|p| p[1].clone())
            .unwrap();
        let list = |flag: &str| {
            lab.routes
                .chunks(2)
                .filter(|p| p[0] == flag)
                .map(|p| format!("\"{}\"", p[1]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            // No idp, no team: serve finds them from each target's chain.
            "service = \"https://service.example.com\"\nca_file = \"{ca}\"\nresolve = [{}]\nconnect_to = [{}]\n",
            list("--resolve"),
            list("--connect-to")
        )
    };
    let config = healthy.dir.join("pages.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.healthy]\n{}\n[targets.faulty]\n{}",
            target(&healthy),
            target(&faulty)
        ),
    )
    .unwrap();
    let serve = Serve::start(&config.display().to_string(), &[]);
    let port = serve.port;
    // Before any probe: both targets listed as not probed yet.
    let (status, before) = http_get(port, "/").unwrap();
    assert_eq!(status, 200);
    assert_eq!(before.matches("not probed yet").count(), 2, "{before}");
    for t in ["healthy", "faulty"] {
        let (status, _) = http_get(port, &format!("/probe?target={t}")).unwrap();
        assert_eq!(status, 200);
    }
    // The hostile error text is text, in the raw HTML and in the browser's DOM.
    let (_, raw) = http_get(port, "/").unwrap();
    assert!(raw.contains("&lt;script&gt;alert("), "{raw}");
    assert!(
        !raw.to_ascii_lowercase().contains("<script") && !raw.contains("<img"),
        "{raw}"
    );
    let dir = healthy.dir.join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    let Some(dom) = chromium(
        &["--dump-dom"],
        &format!("http://127.0.0.1:{port}/"),
        &dir.join("profile"),
    ) else {
        return;
    };
    assert!(dom.contains("<title>ssoprobe serve</title>"), "{dom}");
    assert!(dom.contains("✔ pass") && dom.contains("✘ fail"), "{dom}");
    assert!(
        dom.contains("data-status=\"pass\"") && dom.contains("data-status=\"fail\""),
        "{dom}"
    );
    assert!(
        dom.contains("&lt;script&gt;alert(\"ssoprobe\")&lt;/script&gt;"),
        "{dom}"
    );
    assert!(
        !dom.to_ascii_lowercase().contains("<script") && !dom.contains("<img"),
        "{dom}"
    );
    assert!(dom.contains("href=\"/report?id=2\""), "{dom}");
    // The faulty probe's report page.
    let report = chromium(
        &["--dump-dom"],
        &format!("http://127.0.0.1:{port}/report?id=2"),
        &dir.join("profile"),
    )
    .unwrap();
    assert!(
        report.contains("data-id=\"idp.authorize\" data-status=\"fail\""),
        "{report}"
    );
    assert!(!report.to_ascii_lowercase().contains("<script"), "{report}");
    // A screenshot, as a person sees the page; also kept where SSOPROBE_SCREENSHOT says
    // (the README's docs/serve.png is made this way).
    let shot = dir.join("serve.png");
    chromium(
        &[
            "--window-size=1000,620",
            &format!("--screenshot={}", shot.display()),
        ],
        &format!("http://127.0.0.1:{port}/"),
        &dir.join("profile"),
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5000,
        "{} bytes",
        png.len()
    );
    if let Some(out) = std::env::var_os("SSOPROBE_SCREENSHOT") {
        std::fs::write(out, &png).unwrap();
    }
    // The other answers of the report and the debug probe.
    let (status, json) =
        http_get_with(port, "/report?id=2", "accept: application/json\r\n").unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap()["status"],
        "fail"
    );
    let (status, har) = http_get(port, "/report?id=2&format=har").unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&har).unwrap()["log"]["version"],
        "1.2"
    );
    assert_eq!(http_get(port, "/report?id=999").unwrap().0, 404);
    assert_eq!(http_get(port, "/report?id=x").unwrap().0, 400);
    let (status, debug) = http_get(port, "/probe?target=faulty&debug=true").unwrap();
    assert_eq!(status, 200);
    assert!(
        debug.contains("idp.authorize") && debug.contains("Requests of this run"),
        "{debug}"
    );
    assert!(
        debug.contains("→ GET https://id.example.com/authorize?"),
        "{debug}"
    );
    drop(serve);
}
