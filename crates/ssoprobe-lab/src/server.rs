//! The lab's TLS listener: binding, the accept loop, and routing each request to the
//! router of the host it names. With a simulated round-trip time, every connection
//! the listener accepts goes through [`delay`](crate::delay); Access's own requests
//! to Pocket ID then come in on a second, undelayed listener (the back channel), as
//! the time between Cloudflare's edge and the origin is not the user's RTT.

use super::{CF_API_HOST, IDP_HOST, LabError, SERVICE_HOST, TEAM_HOST, Variant};
use axum::Router;
use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// How many random loopback addresses to try on port 443 before giving up on it.
const BIND_ATTEMPTS: usize = 8;
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle keep-alive connection that sends no new request head by then is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One router per lab host.
pub(super) struct Hosts {
    pub(super) service: Router,
    pub(super) team: Router,
    pub(super) idp: Router,
    pub(super) cf_api: Router,
}

impl Hosts {
    /// The router for the request's host (absolute-form URI first, then `Host`,
    /// port stripped), or `None` for a host the lab does not serve.
    fn route(&self, request: &Request<Incoming>) -> Option<&Router> {
        let host_header = request.headers().get(HOST).map(|v| v.to_str().ok());
        let without_port = |authority: &'_ str| -> String {
            match authority.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => authority,
            }
            .to_ascii_lowercase()
        };
        let name = match (request.uri().host(), host_header) {
            // HTTP/2: a Host that names another host than :authority makes the request
            // malformed (RFC 9113, 8.3.1).
            (Some(authority), Some(host))
                if host.map(without_port).as_deref() != Some(&without_port(authority)) =>
            {
                return None;
            }
            (Some(authority), _) => without_port(authority),
            (None, Some(Some(host))) => without_port(host),
            (None, _) => return None,
        };
        match name.as_str() {
            SERVICE_HOST => Some(&self.service),
            TEAM_HOST => Some(&self.team),
            IDP_HOST => Some(&self.idp),
            CF_API_HOST => Some(&self.cf_api),
            _ => None,
        }
    }
}

/// Listens on port 443 of a random loopback address 127.R1.R2.R3 (so several labs and
/// a real local server can coexist), else, when port 443 is not available (not
/// root, or only 127.0.0.1 configured), on a free port of 127.0.0.1.
pub(super) async fn bind() -> Result<TcpListener, LabError> {
    for _ in 0..BIND_ATTEMPTS {
        let [r1, r2, r3] = rand::random::<[u8; 3]>();
        // .0 and .255 look like network and broadcast addresses to some tools.
        let ip = Ipv4Addr::new(127, r1, r2, r3.clamp(1, 254));
        match TcpListener::bind((ip, 443)).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
            Err(_) => break,
        }
    }
    let fallback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    TcpListener::bind(fallback)
        .await
        .map_err(|source| LabError::Bind {
            addr: fallback,
            source,
        })
}

/// Where the lab listens: the listener users reach, with its simulated round-trip
/// time (zero: none), and, when there is one, the undelayed back channel on which
/// Access reaches Pocket ID.
pub(super) struct Listeners {
    pub(super) front: TcpListener,
    pub(super) rtt: Duration,
    pub(super) back: Option<TcpListener>,
}

/// A free port of 127.0.0.1 for the back channel.
pub(super) async fn bind_back_channel() -> Result<TcpListener, LabError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    TcpListener::bind(addr)
        .await
        .map_err(|source| LabError::Bind { addr, source })
}

/// The next connection on `listener`, or never when there is none.
async fn accept_on(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Accepts connections until the task is aborted. Connection tasks live in a
/// `JoinSet` owned by this future, so aborting it tears down every connection,
/// including handlers stalled on purpose. `variant` picks the header case.
pub(super) async fn serve(
    listeners: Listeners,
    acceptor: TlsAcceptor,
    hosts: Hosts,
    variant: Variant,
) {
    let Listeners { front, rtt, back } = listeners;
    let hosts = Arc::new(hosts);
    let mut connections = JoinSet::new();
    loop {
        let (accepted, rtt) = tokio::select! {
            accepted = front.accept() => (accepted, rtt),
            accepted = accept_on(back.as_ref()) => (accepted, Duration::ZERO),
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        match accepted {
            Ok((tcp, _)) => {
                let at = tokio::time::Instant::now();
                // Small responses must not wait for a delayed ACK (Nagle), or a hop
                // that takes 1 ms shows as 40.
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let hosts = Arc::clone(&hosts);
                if rtt.is_zero() {
                    connections.spawn(connection(tcp, acceptor, hosts, variant));
                } else {
                    connections.spawn(crate::delay::serve(tcp, rtt, at, move |pipe| {
                        connection(pipe, acceptor, hosts, variant)
                    }));
                }
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// One client connection: TLS handshake, then HTTP/2 or HTTP/1.1 requests (as ALPN
/// chose) routed by host.
async fn connection<S>(io: S, acceptor: TlsAcceptor, hosts: Arc<Hosts>, variant: Variant)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await else {
        return;
    };
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = hosts.route(&request).cloned();
        async move {
            let response = match router {
                Some(router) => match TowerToHyperService::new(router).call(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                None => misdirected(),
            };
            Ok::<_, Infallible>(response)
        }
    });
    // A client that goes away mid-request is not the lab's problem.
    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        // HTTP/2, as Cloudflare's edge speaks it: every request of the client on one
        // connection.
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
        return;
    }
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // HTTP/1 header names are case-insensitive; servers and proxies write them
        // lower-case (hyper, HTTP/2 edges) or Title-Case (many HTTP/1 servers).
        .title_case_headers(variant == Variant::Terse);
    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
}

/// 421: the connection reached the lab, but the request names a host it does not
/// serve.
fn misdirected() -> Response<Body> {
    (
        StatusCode::MISDIRECTED_REQUEST,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "421 Misdirected Request: this lab serves service.example.com, xyz.cloudflareaccess.com, id.example.com and api.cloudflare.example.com\n",
    )
        .into_response()
}
