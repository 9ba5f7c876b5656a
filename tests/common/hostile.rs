//! The hostile HTTPS server the `hostile_*` tests start on loopback: one certificate for
//! the hosts a test names (from a throw-away CA, see [`tls_acceptor`]), one request per
//! connection, and a `route` of the test's own that decides every answer.

use super::{Run, run};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The target of the pinned form: the site, Pocket ID and the Access team, all named.
pub const TARGET: [&str; 6] = [
    "--service",
    "https://service.example.com/",
    "--idp",
    "https://id.example.com",
    "--team",
    "xyz",
];

/// A request head longer than this is taken as it is (no end of head in sight).
const HEAD_CAP: usize = 65_536;
/// A request body is read up to its content-length, but no further than this.
const BODY_CAP: usize = 1 << 20;

/// One answer: status, extra headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// A 302 to `to`.
    pub fn redirect(to: &str) -> Answer {
        Answer::new(302, "").header("location", to)
    }

    /// A 200 with `body` as `application/json`.
    pub fn json(body: serde_json::Value) -> Answer {
        Answer::new(200, body.to_string()).header("content-type", "application/json")
    }
}

/// What a route is given: host (without port, lower-case), request target (path and
/// query) and the request head.
type Route = dyn Fn(&str, &str, &str) -> Answer + Send + Sync;

/// An HTTPS server for some hosts on a free loopback port, with a CA of its own in
/// `dir`; it serves until dropped, and its directory goes with it.
pub struct Server {
    pub dir: PathBuf,
    /// The loopback port it listens on, for every host.
    pub port: u16,
    /// `--connect-to HOST:443:127.0.0.1:PORT` for every host, and `--ca-file DIR/ca.pem`.
    pub flags: Vec<String>,
    /// Serves until the test ends.
    _runtime: tokio::runtime::Runtime,
    /// Every request received, in order: its head, then its body.
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts it for `hosts`, answering every request with `route` (host, target, head).
    pub fn start(
        hosts: &[&str],
        route: impl Fn(&str, &str, &str) -> Answer + Send + Sync + 'static,
    ) -> Server {
        let dir = std::env::temp_dir().join(format!("ssoprobe-hostile-{}", super::uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        let acceptor = tls_acceptor(&dir, hosts);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let route: Arc<Route> = Arc::new(route);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, route) = (acceptor.clone(), Arc::clone(&route));
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // One request per connection: its head, then as much body as it says.
                    let mut read = Vec::new();
                    let mut buf = [0u8; 4096];
                    let head_end = loop {
                        if let Some(i) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        if read.len() >= HEAD_CAP {
                            break read.len();
                        }
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => read.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
                    let length = header(&head, "content-length")
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0)
                        .min(BODY_CAP);
                    while read.len() < head_end + length {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => read.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&read).into_owned());
                    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let host = host_of(&head).unwrap_or_default();
                    let answer = route(&host, &target, &head);
                    let mut out = format!(
                        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                        answer.status,
                        answer.body.len()
                    )
                    .into_bytes();
                    for (k, v) in &answer.headers {
                        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
                    }
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&answer.body);
                    let _ = tls.write_all(&out).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        let mut flags = Vec::new();
        for host in hosts {
            flags.push("--connect-to".to_string());
            flags.push(format!("{host}:443:127.0.0.1:{port}"));
        }
        flags.push("--ca-file".to_string());
        flags.push(dir.join("ca.pem").display().to_string());
        Server {
            dir,
            port,
            flags,
            _runtime: runtime,
            requests,
        }
    }

    /// The requests received for `host`, in order: each its head, then its body.
    pub fn heads_for(&self, host: &str) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| host_of(r).as_deref() == Some(host))
            .cloned()
            .collect()
    }

    /// The path of `file` in its directory.
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// Writes `secret` to `file` in its directory, readable by its owner only (as
    /// ssoprobe wants a secret file); returns the file's path.
    pub fn secret_file(&self, file: &str, secret: &str) -> String {
        let path = self.dir.join(file);
        std::fs::write(&path, secret).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path.display().to_string()
    }

    /// Runs the binary with `args` and the flags that route every host to the server.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut args = args.to_vec();
        args.extend(self.flags.iter().map(String::as_str));
        run(&args)
    }

    /// `ssoprobe check` of [`TARGET`] against the server, each request cut at 3 s, with
    /// `extra`.
    pub fn check(&self, extra: &[&str]) -> Run {
        let mut args = vec!["check"];
        args.extend(TARGET);
        args.extend(["--timeout", "3s"]);
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A throw-away CA (its PEM written to `dir`/ca.pem, for `--ca-file`) and a TLS
/// acceptor serving one certificate for `hosts`.
fn tls_acceptor(dir: &std::path::Path, hosts: &[&str]) -> tokio_rustls::TlsAcceptor {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hostile test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// The value of header `name` in a request head.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The host a request head names, without its port, in lower case.
fn host_of(head: &str) -> Option<String> {
    header(head, "host").map(|h| h.split(':').next().unwrap_or("").to_ascii_lowercase())
}
