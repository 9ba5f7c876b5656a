//! End-to-end tests of the unattended use: several targets in one config file,
//! `config check`, `--output`, and the `--ping-url` dead-man's switch.

mod common;
use common::{Lab, run};
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
