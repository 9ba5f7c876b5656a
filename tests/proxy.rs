//! Proxies as curl reads them: `--proxy`, `--noproxy`, `HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY`, `NO_PROXY`. Each test starts its own forward proxy on loopback — an
//! HTTP proxy that tunnels every `CONNECT` to the lab's address whatever name it is
//! asked for (the proxy, not `--resolve`, does the routing), records what it was asked,
//! and can refuse; and a SOCKS5 one — and runs the real binary against the lab through
//! it. All traffic stays on loopback.

mod common;

use common::{Lab, Run, bin, run};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the test proxy does with a request.
#[derive(Clone)]
enum Mode {
    /// Tunnels every CONNECT to `to`; with `auth`, only when the request carries that
    /// Proxy-Authorization value (407 otherwise). A plain-http request is answered 200
    /// by the proxy itself.
    Tunnel {
        to: SocketAddr,
        auth: Option<String>,
    },
    /// Answers every request with this status.
    Refuse(u16),
}

/// One request the proxy received: its first line and its Proxy-Authorization.
#[derive(Clone, Debug)]
struct Seen {
    line: String,
    auth: Option<String>,
}

/// A forward proxy on 127.0.0.1, for the life of the test process.
struct HttpProxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl HttpProxy {
    fn start(mode: Mode) -> HttpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (mode, log) = (mode.clone(), log.clone());
                std::thread::spawn(move || serve_proxy(conn, &mode, &log));
            }
        });
        HttpProxy { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The hosts and ports it was asked to CONNECT to.
    fn connects(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter_map(|s| s.line.strip_prefix("CONNECT "))
            .filter_map(|rest| rest.split(' ').next())
            .map(str::to_string)
            .collect()
    }
}

/// Reads a request's head, byte by byte, up to its blank line.
fn read_head(conn: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn serve_proxy(mut conn: TcpStream, mode: &Mode, log: &Mutex<Vec<Seen>>) {
    let Some(head) = read_head(&mut conn) else {
        return;
    };
    let line = head.lines().next().unwrap_or("").to_string();
    let auth = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_string())
    });
    log.lock().unwrap().push(Seen {
        line: line.clone(),
        auth: auth.clone(),
    });
    let answer = |conn: &mut TcpStream, code: u16| {
        let reason = match code {
            200 => "OK",
            403 => "Forbidden",
            407 => "Proxy Authentication Required",
            _ => "Bad Gateway",
        };
        let _ = write!(
            conn,
            "HTTP/1.1 {code} {reason}\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    let (to, wanted) = match mode {
        Mode::Refuse(code) => return answer(&mut conn, *code),
        Mode::Tunnel { to, auth } => (*to, auth),
    };
    if wanted.is_some() && *wanted != auth {
        return answer(&mut conn, 407);
    }
    if !line.starts_with("CONNECT ") {
        return answer(&mut conn, 200);
    }
    let Ok(upstream) = TcpStream::connect(to) else {
        return answer(&mut conn, 502);
    };
    let _ = conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    pipe(conn, upstream);
}

/// Copies both ways until either side closes.
fn pipe(a: TcpStream, b: TcpStream) {
    let (mut a_read, mut b_write) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a_read, &mut b_write);
        let _ = b_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut b_read, mut a_write) = (b, a);
    let _ = std::io::copy(&mut b_read, &mut a_write);
    let _ = a_write.shutdown(std::net::Shutdown::Write);
    let _ = forward.join();
}

/// A SOCKS5 proxy without authentication that connects every request to `to` and
/// records the host names it was asked for.
struct SocksProxy {
    port: u16,
    hosts: Arc<Mutex<Vec<String>>>,
}

impl SocksProxy {
    fn start(to: SocketAddr) -> SocksProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let log = hosts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = serve_socks(conn, to, &log);
                });
            }
        });
        SocksProxy { port, hosts }
    }
}

fn serve_socks(mut conn: TcpStream, to: SocketAddr, log: &Mutex<Vec<String>>) -> Option<()> {
    let mut head = [0u8; 2];
    conn.read_exact(&mut head).ok()?;
    let mut methods = vec![0u8; usize::from(head[1])];
    conn.read_exact(&mut methods).ok()?;
    conn.write_all(&[5, 0]).ok()?;
    let mut request = [0u8; 4];
    conn.read_exact(&mut request).ok()?;
    let host = match request[3] {
        3 => {
            let mut len = [0u8; 1];
            conn.read_exact(&mut len).ok()?;
            let mut name = vec![0u8; usize::from(len[0])];
            conn.read_exact(&mut name).ok()?;
            String::from_utf8_lossy(&name).into_owned()
        }
        1 => {
            let mut a = [0u8; 4];
            conn.read_exact(&mut a).ok()?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        _ => return None,
    };
    let mut port = [0u8; 2];
    conn.read_exact(&mut port).ok()?;
    log.lock()
        .unwrap()
        .push(format!("{host}:{}", u16::from_be_bytes(port)));
    let upstream = TcpStream::connect(to).ok()?;
    conn.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).ok()?;
    pipe(conn, upstream);
    Some(())
}

/// A server that answers every request 200 and records its first line (a ping
/// receiver reached directly).
struct Receiver {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = lines.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let Some(head) = read_head(&mut conn) else {
                    continue;
                };
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                let _ = conn.read_exact(&mut body);
                log.lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or("").to_string());
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Receiver { port, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// The lab's address: where its `--resolve` (or `--connect-to`) pins send the names.
fn lab_addr(lab: &Lab) -> SocketAddr {
    for pair in lab.routes.chunks(2) {
        let parts: Vec<&str> = pair[1].split(':').collect();
        match (pair[0].as_str(), parts.as_slice()) {
            ("--resolve", [_, port, addr]) => return format!("{addr}:{port}").parse().unwrap(),
            ("--connect-to", [_, _, addr, port]) => {
                return format!("{addr}:{port}").parse().unwrap();
            }
            _ => {}
        }
    }
    panic!("the lab printed no route: {:?}", lab.routes)
}

/// The lab's `check` arguments without its pins: the proxy must do the routing.
fn unrouted(lab: &Lab) -> Vec<String> {
    lab.check
        .chunks(2)
        .filter(|pair| pair[0] != "--resolve" && pair[0] != "--connect-to")
        .flatten()
        .cloned()
        .collect()
}

/// `ssoprobe check` against the lab with `extra` arguments and environment, in JSON
/// with the trace.
fn check(args: &[String], extra: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let output = bin()
        .arg("check")
        .args(args)
        .args(extra)
        .args(["--format", "json", "--trace"])
        .envs(env.iter().copied())
        .output()
        .expect("run ssoprobe");
    Run::from(output, started.elapsed())
}

fn temp(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("ssoprobe-proxy-{}-{name}", common::uuid_like()))
        .display()
        .to_string()
}

/// The lab's hosts, as a proxy is asked for them.
const LAB_HOSTS: [&str; 3] = [
    "service.example.com:443",
    "xyz.cloudflareaccess.com:443",
    "id.example.com:443",
];

#[track_caller]
fn assert_asked_for_every_lab_host(connects: &[String], run: &Run) {
    for host in LAB_HOSTS {
        assert!(
            connects.iter().any(|c| c == host),
            "the proxy was not asked for {host}: {connects:?}\n{}",
            run.dump()
        );
    }
}

#[test]
fn through_the_proxy_flag_every_host_is_reached_and_the_tls_checks_read_the_tunnels() {
    let lab = Lab::start(&[]);
    let proxy = HttpProxy::start(Mode::Tunnel {
        to: lab_addr(&lab),
        auth: None,
    });
    let r = check(&unrouted(&lab), &["--proxy", &proxy.url()], &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_asked_for_every_lab_host(&proxy.connects(), &r);
    // The certificates were judged as the hosts presented them, through the tunnel.
    for host in [
        "service.example.com",
        "xyz.cloudflareaccess.com",
        "id.example.com",
    ] {
        let tls = r.check(&format!("tls.{host}"));
        assert_eq!(tls["status"], "pass", "{}", r.dump());
        r.assert_says(&tls, "summary", &format!("certificate valid for {host}"));
    }
    assert!(
        r.stderr
            .contains(&format!("via proxy http://127.0.0.1:{}", proxy.port)),
        "the trace does not name the proxy\n{}",
        r.dump()
    );
}

#[test]
fn doctor_reads_both_apis_through_the_proxy() {
    let lab = Lab::start(&[]);
    let proxy = HttpProxy::start(Mode::Tunnel {
        to: lab_addr(&lab),
        auth: None,
    });
    let args: Vec<String> = lab
        .doctor
        .chunks(2)
        .filter(|pair| pair[0] != "--resolve" && pair[0] != "--connect-to")
        .flatten()
        .cloned()
        .collect();
    let started = Instant::now();
    let output = bin()
        .arg("doctor")
        .args(&args)
        .args(["--format", "json", "--trace"])
        .env("HTTPS_PROXY", proxy.url())
        .output()
        .unwrap();
    let r = Run::from(output, started.elapsed());
    // Every configuration read through the proxy passes (the lab's monitoring user
    // exists only once a passkey is enrolled).
    for c in r.json()["checks"].as_array().unwrap() {
        if c["id"] != "config.user" {
            assert_eq!(c["status"], "pass", "{}\n{}", c["id"], r.dump());
        }
    }
    let connects = proxy.connects();
    for host in ["api.cloudflare.example.com:443", "id.example.com:443"] {
        assert!(
            connects.iter().any(|c| c == host),
            "doctor did not ask the proxy for {host}: {connects:?}\n{}",
            r.dump()
        );
    }
}

#[test]
fn the_environment_names_the_proxy_as_curl_reads_it_and_a_login_goes_through_it() {
    let lab = Lab::start(&[]);
    let proxy = HttpProxy::start(Mode::Tunnel {
        to: lab_addr(&lab),
        auth: None,
    });
    // Enrolment through --proxy (the flags of enroll), without the lab's pins.
    let passkey = temp("probe.passkey");
    let mut enroll: Vec<String> = [
        "enroll",
        "--idp",
        "https://id.example.com",
        "--api-key-file",
        &lab.path("api-key.txt"),
        "--user",
        "probe@example.com",
        "--out",
        &passkey,
        "--ca-file",
        &lab.path("ca.pem"),
        "--proxy",
        &proxy.url(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    enroll.push("--trace".into());
    let e = run(&enroll.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(e.code, 0, "enroll through the proxy\n{}", e.dump());
    assert!(proxy.connects().iter().any(|c| c == "id.example.com:443"));
    // The login, through HTTPS_PROXY written as curl takes it: no scheme.
    let bare = format!("127.0.0.1:{}", proxy.port);
    let r = check(
        &unrouted(&lab),
        &["--passkey", &passkey],
        &[("HTTPS_PROXY", &bare)],
    );
    let _ = std::fs::remove_file(&passkey);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.check("service.reach")["status"], "pass", "{}", r.dump());
    assert_asked_for_every_lab_host(&proxy.connects(), &r);
    assert!(
        r.stderr.contains(&format!("via proxy http://{bare}")),
        "{}",
        r.dump()
    );
}

#[test]
fn proxy_credentials_reach_the_proxy_and_never_the_output() {
    use base64::Engine as _;
    let (user, password) = ("probe-user", "Pr0xy-S3cret-Passw0rd");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let lab = Lab::start(&[]);
    let proxy = HttpProxy::start(Mode::Tunnel {
        to: lab_addr(&lab),
        auth: Some(basic.clone()),
    });
    let with_credentials = format!("http://{user}:{password}@127.0.0.1:{}", proxy.port);
    let shown = format!("http://***@127.0.0.1:{}", proxy.port);
    let har = temp("run.har");
    let r = check(
        &unrouted(&lab),
        &["--proxy", &with_credentials, "--har", &har],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_asked_for_every_lab_host(&proxy.connects(), &r);
    assert!(
        proxy
            .seen()
            .iter()
            .all(|s| s.auth.as_deref() == Some(&basic)),
        "a request reached the proxy without its credentials: {:?}",
        proxy.seen()
    );
    let har_text = std::fs::read_to_string(&har).unwrap();
    let _ = std::fs::remove_file(&har);
    let har: Value = serde_json::from_str(&har_text).unwrap();
    let entries = har["log"]["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    for e in entries {
        assert_eq!(e["_proxy"], shown.as_str(), "{e}");
    }
    // From SSOPROBE_PROXY, with --print-config and `config check` too.
    let env = [("SSOPROBE_PROXY", with_credentials.as_str())];
    let printed = check(&unrouted(&lab), &["--print-config"], &env);
    assert_eq!(printed.code, 0, "{}", printed.dump());
    let mut config_check = vec!["config".to_string(), "check".to_string()];
    config_check.extend(unrouted(&lab));
    let validated = common::run_with_env(
        &config_check.iter().map(String::as_str).collect::<Vec<_>>(),
        &env,
    );
    assert_eq!(validated.code, 0, "{}", validated.dump());
    assert!(validated.stdout.contains(&shown), "{}", validated.dump());
    let encoded = basic.trim_start_matches("Basic ");
    for (what, text) in [
        ("stdout", &r.stdout),
        ("stderr", &r.stderr),
        ("the HAR", &har_text),
        ("--print-config", &printed.stdout),
        ("--print-config's stderr", &printed.stderr),
        ("config check", &validated.stdout),
    ] {
        for secret in [password, encoded, &format!("{user}:")] {
            assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
        }
    }
}

#[test]
fn a_proxy_that_asks_for_credentials_is_named_with_the_fix() {
    let lab = Lab::start(&[]);
    let proxy = HttpProxy::start(Mode::Refuse(407));
    let r = check(&unrouted(&lab), &[], &[("HTTPS_PROXY", &proxy.url())]);
    assert_eq!(r.code, 2, "{}", r.dump());
    let first = r.check("service.redirect");
    assert_eq!(first["status"], "fail", "{}", r.dump());
    r.assert_says(&first, "summary", &proxy.url());
    r.assert_says(&first, "summary", "(from HTTPS_PROXY)");
    r.assert_says(&first, "summary", "407");
    r.assert_says(&first, "hint", "put the proxy's user name and password");
    r.assert_says(&first, "hint", "HTTPS_PROXY");
    assert!(!r.stdout.contains("DNS"), "{}", r.dump());
    // The tls.* check of the site goes through the same proxy, and says the same.
    let tls = r.check("tls.service.example.com");
    assert_eq!(tls["status"], "fail", "{}", r.dump());
    r.assert_says(&tls, "summary", "407");
    // With credentials the proxy refuses, the fix is to correct them.
    let wrong = format!("http://probe:wrong-password@127.0.0.1:{}", proxy.port);
    let r = check(&unrouted(&lab), &["--proxy", &wrong], &[]);
    let first = r.check("service.redirect");
    r.assert_says(&first, "summary", "refused its credentials");
    r.assert_says(&first, "hint", "correct the user name or password");
    r.assert_says(&first, "hint", "--proxy");
    assert!(!r.stdout.contains("wrong-password"), "{}", r.dump());
}

#[test]
fn a_proxy_that_refuses_a_host_is_named_with_the_fix() {
    let lab = Lab::start(&[]);
    let proxy = HttpProxy::start(Mode::Refuse(403));
    let r = check(&unrouted(&lab), &["--proxy", &proxy.url()], &[]);
    assert_eq!(r.code, 2, "{}", r.dump());
    let first = r.check("service.redirect");
    r.assert_says(&first, "summary", &proxy.url());
    r.assert_says(&first, "summary", "403");
    r.assert_says(
        &first,
        "hint",
        "allow service.example.com:443 in the proxy's rules",
    );
}

#[test]
fn an_unreachable_proxy_is_named_with_the_setting_that_gave_it() {
    let lab = Lab::start(&[]);
    // A port nothing listens on.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{dead}");
    for (flag, env, setting) in [
        (vec!["--proxy", url.as_str()], vec![], "--proxy"),
        (vec![], vec![("ALL_PROXY", url.as_str())], "ALL_PROXY"),
    ] {
        let r = check(&unrouted(&lab), &flag, &env);
        assert_eq!(r.code, 2, "{}", r.dump());
        let first = r.check("service.redirect");
        r.assert_says(
            &first,
            "summary",
            &format!("cannot connect to the proxy {url} (from {setting})"),
        );
        r.assert_says(
            &first,
            "hint",
            &format!("correct the proxy address in {setting}"),
        );
        assert!(!r.stdout.contains("DNS"), "{}", r.dump());
    }
}

#[test]
fn no_proxy_and_noproxy_send_a_host_directly_and_a_pin_is_reached_directly() {
    let lab = Lab::start(&[]);
    let proxy = HttpProxy::start(Mode::Tunnel {
        to: lab_addr(&lab),
        auth: None,
    });
    // The lab's pins are kept: a pinned host is reached at its pin, never through the
    // proxy. The ping receiver has no pin: curl's rules decide.
    let direct = Receiver::start();
    let ping = format!("http://127.0.0.1:{}/ping/abc", direct.port);
    let mut args = lab.check.clone();
    args.extend(["--ping-url".to_string(), ping.clone()]);
    let r = check(&args, &[], &[("HTTP_PROXY", &proxy.url())]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(proxy.connects().is_empty(), "{:?}", proxy.seen());
    let through: Vec<String> = proxy.seen().into_iter().map(|s| s.line).collect();
    assert!(
        through
            .iter()
            .any(|l| l.starts_with(&format!("POST {ping}/start "))),
        "the ping did not go through HTTP_PROXY: {through:?}\n{}",
        r.dump()
    );
    assert!(direct.lines().is_empty(), "{:?}", direct.lines());
    // NO_PROXY and --noproxy (which replaces it) send it directly.
    for (extra, env) in [
        (
            vec![],
            vec![
                ("HTTP_PROXY", proxy.url()),
                ("NO_PROXY", "127.0.0.1".into()),
            ],
        ),
        (
            vec!["--noproxy", "localhost,127.0.0.1"],
            vec![
                ("http_proxy", proxy.url()),
                ("NO_PROXY", "example.net".into()),
            ],
        ),
        (vec!["--noproxy", "*"], vec![("ALL_PROXY", proxy.url())]),
    ] {
        let before = proxy.seen().len();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = check(&args, &extra, &env);
        assert_eq!(r.code, 0, "{}", r.dump());
        assert_eq!(proxy.seen().len(), before, "{:?}", proxy.seen());
        assert!(
            direct
                .lines()
                .iter()
                .any(|l| l.starts_with("POST /ping/abc/start ")),
            "{:?}\n{}",
            direct.lines(),
            r.dump()
        );
    }
}

#[test]
fn a_socks5h_proxy_resolves_the_names_and_carries_the_run() {
    let lab = Lab::start(&[]);
    let socks = SocksProxy::start(lab_addr(&lab));
    let url = format!("socks5h://127.0.0.1:{}", socks.port);
    let r = check(&unrouted(&lab), &["--proxy", &url], &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let hosts = socks.hosts.lock().unwrap().clone();
    for host in LAB_HOSTS {
        assert!(
            hosts.iter().any(|h| h == host),
            "{host}: {hosts:?}\n{}",
            r.dump()
        );
    }
    assert!(
        r.stderr.contains(&format!("via proxy {url}")),
        "{}",
        r.dump()
    );
}

#[test]
fn a_proxy_ssoprobe_cannot_speak_to_is_refused_naming_the_setting_and_the_fix() {
    for (args, env, setting) in [
        (
            vec!["--proxy", "socks4://127.0.0.1:1080"],
            vec![],
            "--proxy",
        ),
        (
            vec![],
            vec![("ALL_PROXY", "socks4a://127.0.0.1:1080")],
            "ALL_PROXY",
        ),
        (
            vec![],
            vec![("https_proxy", "https://127.0.0.1:3128")],
            "https_proxy",
        ),
    ] {
        let mut all = vec![
            "check",
            "https://service.example.com",
            "--resolve",
            "service.example.com:443:127.0.0.1",
        ];
        all.extend(args);
        let r = common::run_with_env(&all, &env);
        assert_eq!(r.code, 3, "{}", r.dump());
        assert!(r.stderr.contains(setting), "{}", r.dump());
        assert!(
            r.stderr.contains("socks5h://") || r.stderr.contains("http://HOST:PORT"),
            "{}",
            r.dump()
        );
    }
}
