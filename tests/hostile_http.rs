//! The HTTP client against hostile servers: each test starts its own HTTPS (and plain
//! HTTP) servers on 127.0.0.1 with a CA of its own, and pins the names it uses to them
//! with `--connect-to`-style routes. No traffic leaves the loopback interface.
//!
//! The servers are deliberately raw (a request head read, a canned answer written, the
//! connection closed) so that the tests see exactly what the client sent.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use ssoprobe::config::{Origin, parse_connect_to};
use ssoprobe::http::{Accept, Http, HttpError, HttpOptions, Request, Route};
use ssoprobe::redact::Secret;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

/// Every name the tests' certificates cover.
const NAMES: &[&str] = &[
    "service.example.com",
    "id.example.com",
    "other.com",
    "shop.example.co.uk",
    "other.co.uk",
    "xyz.cloudflareaccess.com",
    "abc.cloudflareaccess.com",
    "localhost",
];

/// A throw-away CA: its certificate (DER) and an issuer for leaves.
struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "hostile_http test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().to_vec(),
        issuer: Issuer::new(params, key),
    }
}

/// A TLS server configuration whose leaf covers [`NAMES`] and is called `label`.
fn tls_config(ca: &Ca, label: &str) -> Arc<rustls::ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(NAMES.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, label);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

type Answer = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// A server on 127.0.0.1 that records every request head it reads.
struct Server {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts it; `tls` None for plain HTTP. `answer` gets the request head and
    /// returns the status line and headers (without the final blank line).
    async fn start(tls: Option<Arc<rustls::ServerConfig>>, answer: Answer) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                let answer = answer.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(stream) = a.accept(tcp).await {
                                exchange(stream, &seen, &answer).await;
                            }
                        }
                        None => exchange(tcp, &seen, &answer).await,
                    }
                });
            }
        });
        Server { addr, heads }
    }

    /// An HTTPS server that answers every request with `head`.
    async fn https(ca: &Ca, label: &str, head: &str) -> Server {
        let head = head.to_string();
        Server::start(Some(tls_config(ca, label)), Arc::new(move |_| head.clone())).await
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    seen: &Mutex<Vec<String>>,
    answer: &Answer,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    seen.lock().unwrap().push(head.clone());
    let reply = answer(&head);
    let response = format!("{reply}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The value of header `name` in a recorded request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `--connect-to HOST:PORT:127.0.0.1:PORT2`.
fn pin(host: &str, port: u16, to: u16) -> Route {
    parse_connect_to(&format!("{host}:{port}:127.0.0.1:{to}"), &Origin::Flag).unwrap()
}

fn client(ca: &Ca, routes: Vec<Route>) -> Http {
    Http::new(&HttpOptions {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(30),
        site: None,
        site_headers: Vec::new(),
        credential_origins: vec![url("https://service.example.com/").origin()],
        deadline_limit: "--deadline",
        routes,
        extra_roots: vec![ca.der.clone()],
        insecure: false,
        trace: true,
        proxies: ssoprobe::proxy::Proxies::none(),
    })
    .unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// Which server a request reached, by the `X-Server` header each one answers with.
async fn reached(http: &Http, u: &str) -> Result<String, String> {
    http.send("test", Request::get(url(u), Accept::Html))
        .await
        .map(|r| r.header("x-server").unwrap_or("?").to_string())
        .map_err(|e| e.to_string())
}

// 1. A pin applies to its host and port only, in HTTP requests and TLS checks alike.

#[tokio::test]
async fn two_ports_on_one_host_reach_their_own_pins() {
    let ca = ca();
    let a = Server::https(&ca, "A", "HTTP/1.1 200 OK\r\nX-Server: A").await;
    let b = Server::https(&ca, "B", "HTTP/1.1 200 OK\r\nX-Server: B").await;
    for routes in [
        vec![
            pin("service.example.com", 443, a.port()),
            pin("service.example.com", 8443, b.port()),
        ],
        vec![
            pin("service.example.com", 8443, b.port()),
            pin("service.example.com", 443, a.port()),
        ],
    ] {
        let http = client(&ca, routes.clone());
        assert_eq!(
            reached(&http, "https://service.example.com/").await,
            Ok("A".into()),
            "{routes:?}"
        );
        assert_eq!(
            reached(&http, "https://service.example.com:8443/").await,
            Ok("B".into()),
            "{routes:?}"
        );
        // The TLS checks go by the same table: the handshake for :8443 reaches B.
        let addr = http.route("service.example.com", 8443);
        assert_eq!(addr, Some(b.addr));
        let report = ssoprobe::tls::probe(
            "service.example.com",
            8443,
            addr,
            std::slice::from_ref(&ca.der),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(report.leaf.unwrap().subject, "B");
    }
    // The request for :8443 names its port in Host, as it would unpinned.
    let last = b.heads().pop().unwrap();
    assert_eq!(header(&last, "host"), Some("service.example.com:8443"));
    let last = a.heads().pop().unwrap();
    assert_eq!(header(&last, "host"), Some("service.example.com"));
}

#[tokio::test]
async fn a_pin_for_one_port_does_not_capture_another() {
    let ca = ca();
    let b = Server::https(&ca, "B", "HTTP/1.1 200 OK\r\nX-Server: B").await;
    // Only localhost:8443 is pinned; https://localhost/ (port 443) is not, and resolves
    // to the loopback interface by itself.
    let http = client(&ca, vec![pin("localhost", 8443, b.port())]);
    assert_eq!(
        reached(&http, "https://localhost:8443/").await,
        Ok("B".into())
    );
    let unpinned = reached(&http, "https://localhost/").await;
    assert_ne!(unpinned, Ok("B".into()), "the :8443 pin captured :443");
    assert_eq!(b.heads().len(), 1);
}

#[tokio::test]
async fn wildcard_pins() {
    let ca = ca();
    let a = Server::https(&ca, "A", "HTTP/1.1 200 OK\r\nX-Server: A").await;
    let any = parse_connect_to(&format!("::127.0.0.1:{}", a.port()), &Origin::Flag).unwrap();
    let http = client(&ca, vec![any]);
    assert_eq!(
        reached(&http, "https://id.example.com/").await,
        Ok("A".into())
    );
    assert_eq!(
        reached(&http, "https://other.com:9443/").await,
        Ok("A".into())
    );
}

// 2. Cookies scoped to a public suffix never enter the jar.

#[tokio::test]
async fn cookies_for_public_suffixes_are_refused() {
    let ca = ca();
    let answer: Answer = Arc::new(|head: &str| {
        let set = match header(head, "host").unwrap_or_default() {
            "service.example.com" => vec![
                "com1=x; Domain=com; Path=/",
                "caccess=x; Domain=cloudflareaccess.com; Path=/",
                "mine=ok; Domain=example.com; Path=/",
            ],
            "shop.example.co.uk" => vec!["couk=x; Domain=.co.uk; Path=/"],
            "xyz.cloudflareaccess.com" => vec!["team=x; Domain=cloudflareaccess.com; Path=/"],
            _ => vec![],
        };
        let mut out = "HTTP/1.1 200 OK\r\nX-Server: S".to_string();
        for s in set {
            out.push_str("\r\nSet-Cookie: ");
            out.push_str(s);
        }
        out
    });
    let s = Server::start(Some(tls_config(&ca, "S")), answer).await;
    let routes = NAMES.iter().map(|n| pin(n, 443, s.port())).collect();
    let http = client(&ca, routes);
    for u in [
        "https://service.example.com/",
        "https://shop.example.co.uk/",
        "https://xyz.cloudflareaccess.com/",
    ] {
        reached(&http, u).await.unwrap();
    }
    for u in [
        "https://other.com/",
        "https://other.co.uk/",
        "https://abc.cloudflareaccess.com/",
        "https://xyz.cloudflareaccess.com/",
        "https://id.example.com/",
    ] {
        reached(&http, u).await.unwrap();
    }
    let heads = s.heads();
    let cookie_at = |host: &str| {
        heads
            .iter()
            .filter(|h| header(h, "host") == Some(host))
            .filter_map(|h| header(h, "cookie"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    assert_eq!(cookie_at("other.com"), "", "Domain=com reached other.com");
    assert_eq!(
        cookie_at("other.co.uk"),
        "",
        "Domain=co.uk reached other.co.uk"
    );
    assert_eq!(
        cookie_at("abc.cloudflareaccess.com"),
        "",
        "Domain=cloudflareaccess.com reached another team"
    );
    assert_eq!(
        cookie_at("xyz.cloudflareaccess.com"),
        "",
        "a cookie from service.example.com reached the team domain"
    );
    // A cookie for a registrable domain still works.
    assert_eq!(cookie_at("id.example.com"), "mine=ok");
}

// 3. No redirect from https to http is followed.

#[tokio::test]
async fn https_to_http_redirect_is_refused_before_sending() {
    let ca = ca();
    let plain = Server::start(None, Arc::new(|_| "HTTP/1.1 200 OK".to_string())).await;
    let head = format!(
        "HTTP/1.1 302 Found\r\nLocation: http://service.example.com:{}/landing\r\nSet-Cookie: sid=s3cr3t; Path=/",
        plain.port()
    );
    let s = Server::https(&ca, "S", &head).await;
    let http = client(
        &ca,
        vec![
            pin("service.example.com", 443, s.port()),
            pin("service.example.com", plain.port(), plain.port()),
        ],
    );
    let result = http
        .follow(
            "test",
            url("https://service.example.com/"),
            Accept::Html,
            |_| false,
        )
        .await;
    let error = result.expect_err("the downgrade was followed");
    assert!(error.to_string().contains("from https to http"), "{error}");
    assert!(
        error.hint().contains("from https to http"),
        "{}",
        error.hint()
    );
    assert!(plain.heads().is_empty(), "the http request was sent");
}

/// Servers for a chain that leaves and comes back: A answers service.example.com:443
/// (`/` → `/same` → port 8443, served by B, → id.example.com/end, on A again) and
/// id.example.com, where `/end` answers `end`. Returns A, B and the pins.
async fn origin_hops(ca: &Ca, end: &'static str) -> (Server, Server, Vec<Route>) {
    let b = Server::https(
        ca,
        "B",
        "HTTP/1.1 302 Found\r\nLocation: https://id.example.com/end",
    )
    .await;
    let b_port = 8443;
    let answer: Answer = Arc::new(move |head: &str| {
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        match (header(head, "host").unwrap_or_default(), path.as_str()) {
            ("service.example.com", "/") => "HTTP/1.1 302 Found\r\nLocation: /same".into(),
            ("service.example.com", "/same") => format!(
                "HTTP/1.1 302 Found\r\nLocation: https://service.example.com:{b_port}/other-port"
            ),
            ("id.example.com", "/end") => end.into(),
            _ => "HTTP/1.1 200 OK".into(),
        }
    });
    let a = Server::start(Some(tls_config(ca, "A")), answer).await;
    let routes = vec![
        pin("service.example.com", 443, a.port()),
        pin("service.example.com", b_port, b.port()),
        pin("id.example.com", 443, a.port()),
    ];
    (a, b, routes)
}

// 4. Secret headers stay on the scheme, host and port they were built for.

#[tokio::test]
async fn secret_headers_are_dropped_when_the_origin_changes() {
    let ca = ca();
    let (a, b, routes) = origin_hops(&ca, "HTTP/1.1 200 OK").await;
    let http = client(&ca, routes);
    let key = Secret::new("k3y-value");
    let request =
        Request::get(url("https://service.example.com/"), Accept::Json).header("x-api-key", &key);
    let chain = http
        .follow_request("test", request, |_| false)
        .await
        .unwrap();
    assert_eq!(chain.hops.len(), 3);
    let a_heads = a.heads();
    let key_at = |heads: &[String], path: &str| {
        heads
            .iter()
            .find(|h| h.split_whitespace().nth(1) == Some(path))
            .map(|h| header(h, "x-api-key").map(str::to_string))
            .unwrap_or_else(|| panic!("no request for {path}: {heads:?}"))
    };
    assert_eq!(key_at(&a_heads, "/"), Some("k3y-value".into()));
    assert_eq!(key_at(&a_heads, "/same"), Some("k3y-value".into()));
    assert_eq!(key_at(&b.heads(), "/other-port"), None);
    assert_eq!(key_at(&a_heads, "/end"), None);
}

/// A request shaped like a browser's stays one on every hop of its chain (Access with
/// Managed OAuth tells browsers apart on each request); a plain one stays ssoprobe's.
#[tokio::test]
async fn a_browser_shaped_request_stays_one_across_redirects() {
    let ca = ca();
    let (a, b, routes) = origin_hops(&ca, "HTTP/1.1 200 OK").await;
    let http = client(&ca, routes);
    let request = Request::get(url("https://service.example.com/"), Accept::Json).like_browser();
    let chain = http
        .follow_request("test", request, |_| false)
        .await
        .unwrap();
    assert_eq!(chain.hops.len(), 3);
    let heads: Vec<String> = a.heads().into_iter().chain(b.heads()).collect();
    assert_eq!(heads.len(), 4, "{heads:?}");
    for head in &heads {
        assert_eq!(
            header(head, "user-agent"),
            Some(ssoprobe::http::BROWSER_USER_AGENT),
            "{head}"
        );
        assert!(
            header(head, "accept").is_some_and(|a| a.starts_with("text/html")),
            "{head}"
        );
    }
    let (a, b, routes) = origin_hops(&ca, "HTTP/1.1 200 OK").await;
    let http = client(&ca, routes);
    http.follow(
        "test",
        url("https://service.example.com/"),
        Accept::Json,
        |_| false,
    )
    .await
    .unwrap();
    for head in a.heads().iter().chain(b.heads().iter()) {
        assert_eq!(
            header(head, "user-agent"),
            Some(ssoprobe::http::USER_AGENT),
            "{head}"
        );
    }
}

// 4a. A credential goes only to an origin the operator named: a request that would
// carry one elsewhere is refused before anything is sent (no connection, no bytes).

#[tokio::test]
async fn credentials_never_go_to_an_origin_nobody_named() {
    let ca = ca();
    let (a, b, routes) = origin_hops(&ca, "HTTP/1.1 200 OK").await;
    let http = client(&ca, routes);
    let key = Secret::new("k3y-for-named-origins-only");
    for to in [
        "https://id.example.com/end",
        "https://service.example.com:8443/other-port",
        "http://service.example.com/",
    ] {
        let request = Request::get(url(to), Accept::Json).header("authorization", &key);
        let e = http.send("test", request).await.unwrap_err();
        assert!(
            matches!(e, HttpError::CredentialWithheld { .. }),
            "{to}: {e:?}"
        );
        let text = format!("{e} {}", e.hint());
        assert!(!text.contains("k3y-for"), "{text}");
        assert!(text.contains("--idp"), "{text}");
    }
    assert!(a.heads().is_empty(), "{:?}", a.heads());
    assert!(b.heads().is_empty(), "{:?}", b.heads());
    // The named origin gets it; a header that is no credential goes anywhere.
    let named = Request::get(url("https://service.example.com/"), Accept::Json)
        .header("authorization", &key);
    assert!(http.send("test", named).await.is_ok());
    let agent =
        Request::get(url("https://id.example.com/end"), Accept::Json).user_agent("ssoprobe-test");
    assert!(http.send("test", agent).await.is_ok());
}

// 4b. `--header` goes to the site's host and port only, on every hop there.

#[tokio::test]
async fn extra_headers_go_to_the_site_only() {
    let ca = ca();
    let (a, b, routes) = origin_hops(
        &ca,
        "HTTP/1.1 302 Found\r\nLocation: https://service.example.com/back",
    )
    .await;
    let http = Http::new(&HttpOptions {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(30),
        site: Some(("service.example.com".into(), 443)),
        site_headers: vec![("X-Waf-Skip".into(), Secret::new("waf-token-4711"))],
        credential_origins: vec![url("https://service.example.com/").origin()],
        deadline_limit: "--deadline",
        routes,
        extra_roots: vec![ca.der.clone()],
        insecure: false,
        trace: true,
        proxies: ssoprobe::proxy::Proxies::none(),
    })
    .unwrap();
    let chain = http
        .follow(
            "test",
            url("https://service.example.com/"),
            Accept::Html,
            |_| false,
        )
        .await
        .unwrap();
    assert_eq!(chain.hops.len(), 4);
    let value_at = |heads: &[String], path: &str| {
        heads
            .iter()
            .find(|h| h.split_whitespace().nth(1) == Some(path))
            .map(|h| header(h, "x-waf-skip").map(str::to_string))
            .unwrap_or_else(|| panic!("no request for {path}: {heads:?}"))
    };
    let a_heads = a.heads();
    assert_eq!(value_at(&a_heads, "/"), Some("waf-token-4711".into()));
    assert_eq!(value_at(&a_heads, "/same"), Some("waf-token-4711".into()));
    assert_eq!(value_at(&b.heads(), "/other-port"), None);
    assert_eq!(value_at(&a_heads, "/end"), None);
    assert_eq!(value_at(&a_heads, "/back"), Some("waf-token-4711".into()));
}

// 4c. A connection that is never completed is cut by the connect timeout and named so.

#[tokio::test]
async fn a_silent_listener_is_cut_by_the_connect_timeout() {
    // Accepts TCP, never answers the TLS handshake.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let ca = ca();
    let http = Http::new(&HttpOptions {
        timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_millis(300),
        deadline: Duration::from_secs(30),
        site: None,
        site_headers: Vec::new(),
        credential_origins: Vec::new(),
        deadline_limit: "--deadline",
        routes: vec![pin("slow.example.com", 443, port)],
        extra_roots: vec![ca.der.clone()],
        insecure: false,
        trace: false,
        proxies: ssoprobe::proxy::Proxies::none(),
    })
    .unwrap();
    let e = http
        .send(
            "test",
            Request::get(url("https://slow.example.com/"), Accept::Html),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ssoprobe::http::HttpError::ConnectTimeout { .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("no connection to slow.example.com within 300 ms"),
        "{e}"
    );
    assert!(e.hint().contains("--connect-timeout"), "{}", e.hint());
}

// 5. Error texts made from server input are printable and bounded.

#[tokio::test]
async fn errors_from_server_input_are_printable_and_bounded() {
    let ca = ca();
    // A redirect to a host name of 740 characters, pinned to a port nothing listens on.
    let long = format!("{}.example", vec!["a".repeat(60); 12].join("."));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = Server::https(
        &ca,
        "S",
        &format!("HTTP/1.1 302 Found\r\nLocation: https://{long}/"),
    )
    .await;
    let http = client(
        &ca,
        vec![
            pin("service.example.com", 443, s.port()),
            pin(&long, 443, closed),
        ],
    );
    let error = http
        .follow(
            "test",
            url("https://service.example.com/"),
            Accept::Html,
            |_| false,
        )
        .await
        .expect_err("the redirect to a closed port succeeded");
    for text in [error.to_string(), error.hint()] {
        assert!(text.chars().count() < 600, "{} chars: {text}", text.len());
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }

    // A server that answers the TLS handshake with terminal escapes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = tcp.read(&mut buf).await;
            let junk = format!("\u{1b}]0;pwned\u{7}\u{1b}[2J{}\r\n", "x".repeat(5000));
            let _ = tcp.write_all(junk.as_bytes()).await;
            let _ = tcp.shutdown().await;
        }
    });
    let http = client(&ca, vec![pin("service.example.com", 443, port)]);
    let error = reached(&http, "https://service.example.com/")
        .await
        .unwrap_err();
    assert!(error.chars().count() < 600, "{error}");
    assert!(!error.chars().any(char::is_control), "{error:?}");
    let probe = ssoprobe::tls::probe(
        "service.example.com",
        443,
        http.route("service.example.com", 443),
        std::slice::from_ref(&ca.der),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(probe.chars().count() < 600, "{probe}");
    assert!(!probe.chars().any(char::is_control), "{probe:?}");
}
