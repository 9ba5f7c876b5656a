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

/// The config file keys that route to `lab` and trust its CA.
fn routes_toml(lab: &Lab) -> String {
    let list = |flag: &str| {
        lab.route_values(flag)
            .iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "ca_file = \"{}\"\nresolve = [{}]\nconnect_to = [{}]\n",
        lab.ca_file(),
        list("--resolve"),
        list("--connect-to")
    )
}

/// A config file with two targets sharing defaults, both pointing at `lab`.
fn two_targets(lab: &Lab, extra_b: &str) -> String {
    let text = format!(
        "team = \"xyz\"\nidp = \"https://id.example.com\"\n{}timeout = \"5s\"\n\n[targets.main]\nservice = \"https://service.example.com\"\n\n[targets.admin]\nservice = \"https://service.example.com/admin/\"\n{extra_b}\n",
        routes_toml(lab)
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
    // The last line speaks of all of them.
    assert!(
        human.stdout.ends_with("\n\nPASS · all 2 targets passed\n"),
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
    // The human report ends with how many targets failed, and which.
    let human = run(&["check", "--config", &cfg, "--color", "never"]);
    assert_eq!(human.code, 2, "{}", human.dump());
    assert!(
        human
            .stdout
            .ends_with("\n\nFAIL · 1 of 2 targets failed (admin)\n"),
        "{}",
        human.stdout
    );
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
fn serve_probes_an_oauth2_proxy_target_as_it_probes_an_access_one() {
    let lab = Lab::start_gateway("oauth2-proxy", &[]);
    let pk = lab.path("probe.passkey");
    assert_eq!(lab.enroll(&pk).code, 0);
    let cfg = lab.dir.join("o2p.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[targets.wiki]\nservice = \"https://service.example.com\"\ngateway = \"oauth2-proxy\"\npasskey = \"{pk}\"\n",
            routes_toml(&lab)
        ),
    )
    .unwrap();
    let serve = Serve::start(cfg.to_str().unwrap(), &[]);
    let (status, body) = http_get(serve.port, "/probe?target=wiki").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nprobe_success 1\n"), "{body}");
    for check in ["o2p.start", "o2p.callback", "o2p.session", "service.reach"] {
        assert!(
            body.contains(&format!(
                "ssoprobe_check_success{{target=\"wiki\",check=\"{check}\"}} 1"
            )),
            "{check}\n{body}"
        );
    }
    assert!(!body.contains("check=\"access."), "{body}");
    assert!(serve.stop().success(), "serve exits 0 on SIGTERM");
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

    // blackbox_exporter's metrics, with its help texts, for its users' dashboards and
    // alert rules: the site's answer after the login came over TLS 1.3 with a 200.
    for line in [
        "# HELP probe_success Displays whether or not the probe was a success\n",
        "# HELP probe_duration_seconds Returns how long the probe took to complete in seconds\n",
        "\nprobe_http_status_code 200\n",
        "\nprobe_http_ssl 1\n",
        "\nprobe_tls_version_info{version=\"TLS 1.3\"} 1\n",
        "# TYPE probe_ssl_earliest_cert_expiry gauge\n",
    ] {
        assert!(first.contains(line), "{line}\n{first}");
    }
    // The earliest of the certificates the tls.* checks read.
    let values = |name: &str| -> Vec<i64> {
        first
            .lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect()
    };
    let earliest = values("probe_ssl_earliest_cert_expiry ");
    let leaves = values("ssoprobe_tls_cert_expiry_timestamp_seconds{");
    assert_eq!(leaves.len(), 3, "{first}");
    assert_eq!(earliest, [*leaves.iter().min().unwrap()], "{first}");
    // Not measured, so not invented.
    assert!(!first.contains("probe_dns_lookup_time_seconds"), "{first}");

    // Anonymous targets run on every scrape.
    let (_, anon) = http_get(serve.port, "/probe?target=main").unwrap();
    assert!(anon.contains("\nprobe_success 1\n"), "{anon}");
    // Without a login, the site's last answer is its redirect to Access.
    assert!(anon.contains("\nprobe_http_status_code 302\n"), "{anon}");
    assert!(anon.contains("\nprobe_http_ssl 1\n"), "{anon}");

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
    // The scrapes that gave probe_success gave blackbox_exporter's other metrics too.
    let query = |expr: &str| -> BTreeMap<String, String> {
        let Some((200, body)) = http_get(prom_port, &format!("/api/v1/query?query={expr}")) else {
            return BTreeMap::new();
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                (
                    r["metric"]["instance"].as_str().unwrap_or("").to_string(),
                    r["value"][1].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let status_codes = query("probe_http_status_code");
    // A blackbox_exporter rule: certificates expiring within 14 days.
    let expiring = query("probe_ssl_earliest_cert_expiry-time()%3C86400*14");
    let expiry = query("probe_ssl_earliest_cert_expiry");
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert_eq!(
        status_codes.get("healthy").map(String::as_str),
        Some("302"),
        "{status_codes:?}"
    );
    assert!(
        expiry.contains_key("healthy") && expiring.is_empty(),
        "{expiry:?} {expiring:?}"
    );
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
    let config = healthy.dir.join("pages.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.healthy]\n{}\n[targets.faulty]\n{}",
            lab_target(&healthy),
            lab_target(&faulty)
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

/// A `[targets.NAME]` body for `lab`: its site, CA and routes; serve finds the team and
/// Pocket ID from the chain.
fn lab_target(lab: &Lab) -> String {
    format!(
        "service = \"https://service.example.com\"\n{}",
        routes_toml(lab)
    )
}

/// How `html` lays out in a 420-px-wide viewport, measured by Chromium: the viewport's
/// width, the document's scroll width, and every element that scrolls sideways
/// (`tag.class:scrollWidth/clientWidth`). Headless Chromium's window is at least 500 px
/// wide, so the page is laid out in a 420-px frame; serve's pages allow no script, so a
/// copy with a measuring script appended is what is loaded (the same markup and inline
/// style). A screenshot of the frame goes to `shot`. None without Chromium.
fn at_420_px(
    html: &str,
    dir: &std::path::Path,
    name: &str,
    shot: &std::path::Path,
) -> Option<(u64, u64, Vec<String>)> {
    const MEASURE: &str = "<script>addEventListener('load',()=>{const over=[...document.querySelectorAll('*')].filter(e=>e.scrollWidth>e.clientWidth+1&&getComputedStyle(e).overflowX!=='visible').map(e=>e.tagName.toLowerCase()+'.'+e.className+':'+e.scrollWidth+'/'+e.clientWidth);parent.postMessage(JSON.stringify({inner:innerWidth,scroll:document.documentElement.scrollWidth,over}),'*');});</script>";
    assert!(html.contains("</body>"), "{html}");
    std::fs::write(
        dir.join(format!("{name}.html")),
        html.replacen("</body>", &format!("{MEASURE}</body>"), 1),
    )
    .unwrap();
    let frame = dir.join(format!("{name}-at-420.html"));
    std::fs::write(
        &frame,
        format!(
            "<!DOCTYPE html><html><head><style>body{{margin:0;background:#999}}iframe{{border:0;width:420px;height:1600px;display:block;background:#fff}}</style></head><body><iframe src=\"{name}.html\"></iframe><pre id=\"measured\"></pre><script>addEventListener('message',e=>{{document.getElementById('measured').textContent=e.data;}});</script></body></html>"
        ),
    )
    .unwrap();
    let url = format!("file://{}", frame.display());
    let dom = chromium(
        &[
            "--window-size=500,1600",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ],
        &url,
        &dir.join("profile"),
    )?;
    let measured = dom
        .split("<pre id=\"measured\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("no measurement of {name}\n{dom}"));
    let v: serde_json::Value =
        serde_json::from_str(measured).unwrap_or_else(|e| panic!("{e}: {measured}"));
    chromium(
        &[
            "--window-size=500,1600",
            "--virtual-time-budget=5000",
            &format!("--screenshot={}", shot.display()),
        ],
        &url,
        &dir.join("profile"),
    );
    let over = v["over"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    Some((
        v["inner"].as_u64().unwrap(),
        v["scroll"].as_u64().unwrap(),
        over,
    ))
}

#[test]
fn serve_pages_read_on_a_420_px_wide_screen_and_probe_a_target_now() {
    let healthy = Lab::start(&[]);
    // Long findings and hints, and an IdP's error text quoted in them.
    let faulty = Lab::start(&["internal-url"]);
    let config = healthy.dir.join("narrow.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.healthy]\n{}\n[targets.\"faulty one\"]\n{}",
            lab_target(&healthy),
            lab_target(&faulty)
        ),
    )
    .unwrap();
    let serve = Serve::start(&config.display().to_string(), &[]);
    let port = serve.port;
    // Before any probe, each target links to a probe now, beside "not probed yet".
    let (_, before) = http_get(port, "/").unwrap();
    for link in [
        "href=\"/probe?target=healthy&amp;debug=true\">probe now</a>",
        "href=\"/probe?target=faulty+one&amp;debug=true\">probe now</a>",
    ] {
        assert_eq!(before.matches(link).count(), 1, "{link}\n{before}");
    }
    assert_eq!(before.matches("not probed yet").count(), 2, "{before}");
    // The link runs the target and answers its report.
    let (status, now) = http_get(port, "/probe?target=faulty+one&debug=true").unwrap();
    assert_eq!(status, 200, "{now}");
    assert!(
        now.contains("idp.discovery") && now.contains("Requests of this run"),
        "{now}"
    );
    let (_, after) = http_get(port, "/probe?target=healthy").unwrap();
    assert!(after.contains("\nprobe_success 1\n"), "{after}");
    let (_, index) = http_get(port, "/").unwrap();
    assert!(!index.contains("not probed yet"), "{index}");
    assert_eq!(index.matches(">probe now</a>").count(), 2, "{index}");

    // Every page reads on a phone: nothing wider than the screen, nothing to scroll
    // sideways (a table scrolling in its box hides the findings).
    let dir = healthy.dir.join("narrow");
    std::fs::create_dir_all(&dir).unwrap();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-420px");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, path) in [
        ("index-before", None),
        ("index", Some("/")),
        ("report-faulty", Some("/report?id=1")),
        ("report-healthy", Some("/report?id=2")),
    ] {
        let html = match path {
            Some(path) => {
                let (status, html) = http_get(port, path).unwrap();
                assert_eq!(status, 200, "{path}: {html}");
                html
            }
            None => before.clone(),
        };
        let shot = shots.join(format!("{name}.png"));
        let Some((inner, scroll, over)) = at_420_px(&html, &dir, name, &shot) else {
            return;
        };
        assert_eq!(inner, 420, "{name}: the frame is the screen");
        assert!(
            scroll <= 420,
            "{name} is {scroll} px wide at 420 (see {})",
            shot.display()
        );
        assert!(
            over.is_empty(),
            "{name} scrolls sideways at 420 px: {over:?} (see {})",
            shot.display()
        );
        let png = std::fs::read(&shot).expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", shot.display());
    }
    drop(serve);
}
