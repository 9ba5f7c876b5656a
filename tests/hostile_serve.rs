//! `ssoprobe serve` against hostile and unlucky clients, all on loopback: scrape
//! timeout headers that are not numbers, idle half-sent requests, many scrapes at once,
//! clients that hang up, host names for `--listen`, a site that accepts connections and
//! never answers (alone and beside a healthy target), and a stop signal during a run.

// They run the binary against the embedded lab.
#![cfg(feature = "lab")]

mod common;
use common::Lab;
use common::hostile::{Answer, Server};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A config file in the lab's directory: the lab's routes (`connect_to` extended by
/// `more_connect_to`), then `rest`. Returns its path.
fn lab_config(lab: &Lab, more_connect_to: &[String], rest: &str) -> String {
    let pick = |flag: &str| -> Vec<String> {
        lab.routes
            .chunks(2)
            .filter(|p| p[0] == flag)
            .map(|p| p[1].clone())
            .collect()
    };
    let quoted = |v: Vec<String>| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ca = pick("--ca-file").pop().unwrap_or_default();
    let text = format!(
        "ca_file = \"{ca}\"\nresolve = [{}]\nconnect_to = [{}]\n{rest}",
        quoted(pick("--resolve")),
        quoted([pick("--connect-to"), more_connect_to.to_vec()].concat()),
    );
    let path = lab.dir.join(format!("serve-{}.toml", common::uuid_like()));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A config file with the target `main` (anonymous, or with `passkey`) on `lab`.
fn config(lab: &Lab, defaults: &str, passkey: Option<&str>) -> String {
    let passkey = passkey
        .map(|p| format!("passkey = \"{p}\"\n"))
        .unwrap_or_default();
    lab_config(
        lab,
        &[],
        &format!(
            "team = \"xyz\"\nidp = \"https://id.example.com\"\n{defaults}\n\n[targets.main]\nservice = \"https://service.example.com\"\n{passkey}"
        ),
    )
}

/// A config whose hosts do not resolve: enough for everything but `/probe`.
fn offline_config() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("ssoprobe-hostile-{}", common::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("offline.toml");
    std::fs::write(
        &path,
        "idp = \"https://id.invalid\"\n[targets.main]\nservice = \"https://a.invalid\"\n",
    )
    .unwrap();
    let text = path.display().to_string();
    (dir, text)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET on loopback with extra header lines (each ending in \r\n): (status, body).
fn get(host: &str, port: u16, path: &str, headers: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect((host, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n{headers}\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
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
        body.to_string()
    };
    Some((status, body))
}

/// The value of an unlabelled sample in a metrics text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A scrape of `target` as Prometheus sends it, with a scrape timeout of `seconds`.
fn scrape(port: u16, target: &str, seconds: u32) -> Option<(u16, String)> {
    get(
        "127.0.0.1",
        port,
        &format!("/probe?target={target}"),
        &format!("x-prometheus-scrape-timeout-seconds: {seconds}\r\n"),
    )
}

/// `n` scrapes of `target` at once (see [`scrape`]), each on a thread of its own.
fn scrapes_at_once(
    port: u16,
    target: &'static str,
    n: usize,
    seconds: u32,
) -> Vec<JoinHandle<Option<(u16, String)>>> {
    (0..n)
        .map(|_| std::thread::spawn(move || scrape(port, target, seconds)))
        .collect()
}

struct Serve {
    child: Child,
    port: u16,
    stderr: std::path::PathBuf,
}

impl Serve {
    fn start(config: &str, extra: &[&str]) -> Serve {
        let port = free_port();
        Serve::start_on(config, &format!("127.0.0.1:{port}"), port, extra)
    }

    fn start_on(config: &str, listen: &str, port: u16, extra: &[&str]) -> Serve {
        let mut command = common::bin();
        command
            .args(["serve", "--config", config, "--listen", listen])
            .args(extra);
        Serve::start_command(command, port)
    }

    /// Starts `command` (a `serve` that listens on loopback's `port`, among others).
    fn start_command(mut command: std::process::Command, port: u16) -> Serve {
        let stderr =
            std::env::temp_dir().join(format!("ssoprobe-serve-{}.err", common::uuid_like()));
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut serve = Serve {
            child,
            port,
            stderr,
        };
        common::wait_for("serve to answer /healthz", || {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("serve exited with {status}\n{}", serve.stderr());
            }
            get("127.0.0.1", port, "/healthz", "").map(|r| r.0) == Some(204)
                || get("localhost", port, "/healthz", "").map(|r| r.0) == Some(204)
        });
        serve
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn metrics(&self) -> String {
        let (status, body) = get("127.0.0.1", self.port, "/metrics", "").expect("/metrics answers");
        assert_eq!(status, 200, "{body}");
        body
    }

    fn signal(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits at most `limit` for the process to exit.
    fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Polls `/metrics` (at most `limit`) until the runs-in-flight gauge is `want`.
    fn wait_in_flight(&self, want: f64, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if sample(&self.metrics(), "ssoprobe_exporter_runs_in_flight") == Some(want) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

#[test]
fn hostile_scrape_timeout_headers_get_an_answer_not_a_panic() {
    let lab = Lab::start(&[]);
    let cfg = config(&lab, "timeout = \"5s\"", None);
    let serve = Serve::start(&cfg, &[]);
    for value in [
        "1e20",
        "1e308",
        "1.7976931348623157e308",
        "inf",
        "-inf",
        "NaN",
        "-1",
        "0",
        "1e-300",
        "abc",
        "0x10",
        "",
        "10",
    ] {
        let answer = get(
            "127.0.0.1",
            serve.port,
            "/probe?target=main",
            &format!("x-prometheus-scrape-timeout-seconds: {value}\r\n"),
        );
        let Some((status, body)) = answer else {
            panic!(
                "no answer to a scrape timeout of {value:?}\n{}",
                serve.stderr()
            );
        };
        assert_eq!(status, 200, "{value:?}: {body}");
        assert!(body.contains("\nprobe_success "), "{value:?}: {body}");
    }
    assert!(!serve.stderr().contains("panicked"), "{}", serve.stderr());
    assert_eq!(
        get("127.0.0.1", serve.port, "/healthz", "").map(|r| r.0),
        Some(204)
    );
}

#[test]
fn idle_half_sent_requests_are_closed_and_healthz_still_answers() {
    let (dir, cfg) = offline_config();
    let serve = Serve::start(&cfg, &[]);
    // More than the connection limit (256), each with half a request line.
    let mut idle = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
        s.write_all(b"GET /healthz HT").unwrap();
        idle.push(s);
    }
    // Meanwhile, Prometheus and the liveness probe still get through.
    for _ in 0..3 {
        assert_eq!(
            get("127.0.0.1", serve.port, "/healthz", "").map(|r| r.0),
            Some(204),
            "{}",
            serve.stderr()
        );
    }
    let during = serve.metrics();
    // Every idle connection is closed by the server: evicted to make room, or at the
    // header-read timeout (10 s). 40 s is the bound of this loop, not the expectation.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut still_open = 0;
    for mut s in idle {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        s.set_read_timeout(Some(left)).unwrap();
        let mut rest = Vec::new();
        match s.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                still_open += 1
            }
            Err(_) => {} // reset: closed too
        }
    }
    assert_eq!(
        still_open, 0,
        "idle half-sent connections left open by the server"
    );
    let open = sample(&during, "ssoprobe_exporter_connections_open");
    assert!(open.is_some_and(|n| n <= 256.0), "{during}");
    assert!(
        sample(&during, "ssoprobe_exporter_connections_evicted_total").is_some_and(|n| n > 0.0),
        "{during}"
    );
    assert_eq!(
        get("127.0.0.1", serve.port, "/healthz", "").map(|r| r.0),
        Some(204)
    );
    let metrics = serve.metrics();
    assert!(
        sample(&metrics, "ssoprobe_exporter_connections_open").is_some_and(|n| n <= 2.0),
        "{metrics}"
    );
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_scrapes_of_a_target_share_its_run() {
    // Pocket ID stalls: every run takes its whole budget.
    let lab = Lab::start(&["idp-slow"]);
    let cfg = config(&lab, "timeout = \"5s\"", None);
    let serve = Serve::start(&cfg, &["--concurrency", "2"]);
    let scrapes = scrapes_at_once(serve.port, "main", 6, 3);
    for scrape in scrapes {
        let (status, body) = scrape.join().unwrap().expect("an answer");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\nprobe_success 0\n"), "{body}");
        assert!(!body.contains("ssoprobe_probe_not_run"), "{body}");
    }
    let metrics = serve.metrics();
    // Six scrapes arriving together share one run (a straggler may start a second).
    let runs = sample(&metrics, "ssoprobe_exporter_runs_total").unwrap_or(0.0);
    assert!((1.0..=2.0).contains(&runs), "{metrics}");
    assert!(
        serve.wait_in_flight(0.0, Duration::from_secs(10)),
        "{}",
        serve.metrics()
    );
}

/// A listener on loopback that accepts every connection and never sends a byte (a
/// stalled proxy or tunnel in front of a site). Serves until the test process ends.
fn tarpit() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(10_000).flatten() {
            held.push(conn);
        }
    });
    port
}

/// Targets `main` (the lab, pinned) and `tarpit` (a site that accepts connections and
/// never answers, in the one-argument form: nothing but its URL).
fn config_with_tarpit(lab: &Lab) -> String {
    lab_config(
        lab,
        &[format!("tarpit.example.com:443:127.0.0.1:{}", tarpit())],
        "\n[targets.main]\nservice = \"https://service.example.com\"\nteam = \"xyz\"\nidp = \"https://id.example.com\"\n\n[targets.tarpit]\nservice = \"https://tarpit.example.com\"\n",
    )
}

#[test]
fn a_site_that_accepts_and_never_answers_is_never_healthy() {
    let lab = Lab::start(&[]);
    let serve = Serve::start(&config_with_tarpit(&lab), &[]);
    // Prometheus's default scrape timeout, 10 s: serve gives the run 9.5 s, less than
    // the per-request timeout of 10 s.
    let (status, body) = scrape(serve.port, "tarpit", 10).expect("an answer");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nprobe_success 0\n"), "{body}");
    assert!(
        body.contains("ssoprobe_check_success{target=\"tarpit\",check=\"service.redirect\"} 0"),
        "{body}"
    );
    // The finding (in the probe's report, kept for the pages) names the host and the
    // wait, and the limit that cut it.
    let (status, report) =
        get("127.0.0.1", serve.port, "/report?id=1&format=json", "").expect("an answer");
    assert_eq!(status, 200, "{report}");
    assert!(
        report.contains("tarpit.example.com sent no answer in 9."),
        "{report}"
    );
    assert!(report.contains("scrape timeout"), "{report}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["status"], "fail", "{report}");
}

#[test]
fn a_hanging_target_does_not_starve_the_others() {
    let lab = Lab::start(&[]);
    let serve = Serve::start(&config_with_tarpit(&lab), &["--concurrency", "2"]);
    // Many scrapes of the hanging target at once, each waiting its whole 3 s...
    let hanging = scrapes_at_once(serve.port, "tarpit", 20, 3);
    std::thread::sleep(Duration::from_millis(300));
    // ...and the healthy target still gets a slot and its verdict, every time.
    for _ in 0..4 {
        let (status, body) = scrape(serve.port, "main", 3).expect("an answer");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\nprobe_success 1\n"), "{body}");
    }
    for scrape in hanging {
        let (_, body) = scrape.join().unwrap().expect("an answer");
        assert!(body.contains("\nprobe_success 0\n"), "{body}");
    }
}

#[test]
fn concurrent_scrapes_of_a_passkey_target_still_log_in_once() {
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    assert_eq!(lab.enroll(&pk).code, 0);
    let cfg = config(&lab, "timeout = \"5s\"", Some(&pk));
    let serve = Serve::start(&cfg, &["--min-login-interval", "60s"]);
    let scrapes = scrapes_at_once(serve.port, "main", 3, 30);
    for scrape in scrapes {
        let (status, body) = scrape.join().unwrap().expect("an answer");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\nprobe_success 1\n"), "{body}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pk).unwrap()).unwrap();
    assert_eq!(
        v["counter"].as_u64(),
        Some(1),
        "one login for three scrapes"
    );
}

#[test]
fn a_client_that_hangs_up_takes_its_run_off_the_in_flight_gauge() {
    let lab = Lab::start(&["idp-slow"]);
    // The run would wait a minute on the stalled Pocket ID.
    let cfg = config(&lab, "timeout = \"60s\"\ndeadline = \"120s\"", None);
    let serve = Serve::start(&cfg, &[]);
    let mut client = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    client
        .write_all(b"GET /probe?target=main HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .unwrap();
    assert!(
        serve.wait_in_flight(1.0, Duration::from_secs(15)),
        "{}",
        serve.metrics()
    );
    client.shutdown(Shutdown::Both).unwrap();
    drop(client);
    assert!(
        serve.wait_in_flight(0.0, Duration::from_secs(15)),
        "the gauge still counts the abandoned run\n{}",
        serve.metrics()
    );
    assert_eq!(
        get("127.0.0.1", serve.port, "/healthz", "").map(|r| r.0),
        Some(204)
    );
}

#[test]
fn listen_accepts_a_host_name() {
    let (dir, cfg) = offline_config();
    let port = free_port();
    let serve = Serve::start_on(&cfg, &format!("localhost:{port}"), port, &[]);
    assert_eq!(
        get("localhost", port, "/healthz", "").map(|r| r.0),
        Some(204)
    );
    assert!(
        !serve.stderr().contains("warning: --listen"),
        "localhost is loopback\n{}",
        serve.stderr()
    );
    drop(serve);
    let bad = common::run(&["serve", "--config", &cfg, "--listen", "localhost"]);
    assert_eq!(bad.code, 3, "{}", bad.dump());
    assert!(
        bad.stderr
            .contains("--listen: 'localhost' is not ADDR:PORT or HOST:PORT"),
        "{}",
        bad.dump()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn listen_takes_blackbox_exporters_colon_port_and_a_port_alone() {
    let (dir, cfg) = offline_config();
    // `:PORT`, as blackbox_exporter's `--web.listen-address=:9115`: every interface.
    let port = free_port();
    let serve = Serve::start_on(&cfg, &format!(":{port}"), port, &[]);
    let stderr = serve.stderr();
    let ipv6 = TcpListener::bind("[::1]:0").is_ok();
    let every = if ipv6 {
        format!("listening on http://[::]:{port} ")
    } else {
        format!("listening on http://0.0.0.0:{port} ")
    };
    assert!(stderr.contains(&every), "{stderr}");
    assert!(
        stderr.contains("is reachable from other machines"),
        "{stderr}"
    );
    if ipv6 {
        assert_eq!(get("::1", port, "/healthz", "").map(|r| r.0), Some(204));
    }
    drop(serve);
    // A port alone, from the flag or SSOPROBE_LISTEN: loopback, as the default.
    for from_env in [false, true] {
        let port = free_port();
        let mut command = common::bin();
        command.args(["serve", "--config", &cfg]);
        if from_env {
            command.env("SSOPROBE_LISTEN", port.to_string());
        } else {
            command.args(["--listen", &port.to_string()]);
        }
        let serve = Serve::start_command(command, port);
        let stderr = serve.stderr();
        assert!(
            stderr.contains(&format!("listening on http://127.0.0.1:{port} ")),
            "{stderr}"
        );
        assert!(!stderr.contains("warning: --listen"), "{stderr}");
        drop(serve);
    }
    let bad = common::run(&["serve", "--config", &cfg, "--listen", ":http"]);
    assert_eq!(bad.code, 3, "{}", bad.dump());
    assert!(
        bad.stderr.contains("--listen: ':http' is not :PORT"),
        "{}",
        bad.dump()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_cancels_the_runs_answers_their_scrapes_and_exits() {
    let lab = Lab::start(&[]);
    let mut serve = Serve::start(&config_with_tarpit(&lab), &[]);
    let port = serve.port;
    // A scrape whose run would wait half a minute on the silent site.
    let waiting = std::thread::spawn(move || scrape(port, "tarpit", 60));
    assert!(
        serve.wait_in_flight(1.0, Duration::from_secs(15)),
        "{}",
        serve.metrics()
    );
    serve.signal();
    // systemd and Kubernetes wait a little, then kill: serve is gone within 2 s.
    let status = serve
        .exited_within(Duration::from_secs(2))
        .unwrap_or_else(|| panic!("SIGTERM did not stop serve within 2 s\n{}", serve.stderr()));
    assert!(status.success(), "{status}\n{}", serve.stderr());
    let (status, body) = waiting.join().unwrap().expect("the scrape got an answer");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nprobe_success 0\n"), "{body}");
    assert!(
        body.contains("ssoprobe_probe_not_run{reason=\"shutdown\"} 1"),
        "{body}"
    );
    assert!(
        serve.stderr().contains("1 run under way cancelled"),
        "{}",
        serve.stderr()
    );
}

#[test]
fn a_request_body_that_never_comes_does_not_hold_the_connection() {
    let (dir, cfg) = offline_config();
    let serve = Serve::start(&cfg, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    // A megabyte announced, none sent: no endpoint reads a body, so none is waited for.
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1000000\r\n\r\n")
        .unwrap();
    // The bound of this read, not the expectation.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut raw = Vec::new();
    let closed = match s.read_to_end(&mut raw) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 204"), "{raw}");
    assert!(closed, "the connection waits for the body\n{raw}");
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTPS server on loopback for service.example.com that redirects every request to
/// the next of an endless chain of URLs `url_len` characters long.
fn long_redirect_site(url_len: usize) -> Server {
    let hops = AtomicU64::new(0);
    Server::start(&["service.example.com"], move |_, _, _| {
        let hop = hops.fetch_add(1, Ordering::Relaxed) + 1;
        let base = format!("https://service.example.com/hop/{hop}?pad=");
        Answer::redirect(&format!("{base}{}", "a".repeat(url_len - base.len())))
    })
}

#[test]
fn a_chain_of_long_redirects_keeps_a_bounded_report() {
    // Every hop's URL, and so its Location, is 60,000 characters long.
    let site = long_redirect_site(60_000);
    let cfg = site.path("long.toml");
    std::fs::write(
        &cfg,
        format!(
            "idp = \"https://id.example.com\"\nteam = \"xyz\"\nca_file = \"{}\"\nconnect_to = [\"service.example.com:443:127.0.0.1:{}\"]\ntimeout = \"5s\"\n[targets.main]\nservice = \"https://service.example.com/\"\n",
            site.path("ca.pem"),
            site.port
        ),
    )
    .unwrap();
    let serve = Serve::start(&cfg, &[]);
    let (status, body) = get("127.0.0.1", serve.port, "/probe?target=main", "")
        .unwrap_or_else(|| panic!("no answer\n{}", serve.stderr()));
    assert_eq!(status, 200, "{body}");
    // The trace is kept cut (64 KiB at most): the report stays small.
    let (status, page) = get("127.0.0.1", serve.port, "/report?id=1", "").unwrap();
    assert_eq!(status, 200, "{page:.2000}");
    assert!(
        page.contains("more characters)"),
        "the URLs are not cut\n{page:.3000}"
    );
    assert!(page.len() < 96 * 1024, "/report is {} bytes", page.len());
    let (_, debug) = get("127.0.0.1", serve.port, "/probe?target=main&debug=true", "").unwrap();
    assert!(
        debug.len() < 96 * 1024,
        "debug=true is {} bytes",
        debug.len()
    );
    // The HAR, megabytes with these URLs, is over the 512 KiB serve keeps: not kept.
    let (status, har) = get("127.0.0.1", serve.port, "/report?id=1&format=har", "").unwrap();
    assert_eq!(status, 404, "a HAR of {} bytes is kept", har.len());
    assert!(har.contains("512 KiB"), "{har}");
}
