//! The lab's one TLS listener: binding, the accept loop, and routing each request to
//! the router of the host it names.

use super::{IDP_HOST, LabError, SERVICE_HOST, TEAM_HOST, Variant};
use axum::Router;
use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
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
}

impl Hosts {
    /// The router for the request's host (absolute-form URI first, then `Host`,
    /// port stripped), or `None` for a host the lab does not serve.
    fn route(&self, request: &Request<Incoming>) -> Option<&Router> {
        let authority = request
            .uri()
            .host()
            .or_else(|| request.headers().get(HOST).and_then(|v| v.to_str().ok()))?;
        let name = match authority.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => authority,
        };
        match name.to_ascii_lowercase().as_str() {
            SERVICE_HOST => Some(&self.service),
            TEAM_HOST => Some(&self.team),
            IDP_HOST => Some(&self.idp),
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

/// Accepts connections until the task is aborted. Connection tasks live in a
/// `JoinSet` owned by this future, so aborting it tears down every connection,
/// including handlers stalled on purpose. `variant` picks the header case.
pub(super) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    hosts: Hosts,
    variant: Variant,
) {
    let hosts = Arc::new(hosts);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    // Small responses must not wait for a delayed ACK (Nagle), or a hop
                    // that takes 1 ms shows as 40.
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(connection(
                        tcp,
                        acceptor.clone(),
                        Arc::clone(&hosts),
                        variant,
                    ));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One client connection: TLS handshake, then HTTP/1.1 requests routed by host.
async fn connection(tcp: TcpStream, acceptor: TlsAcceptor, hosts: Arc<Hosts>, variant: Variant) {
    let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
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
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // HTTP/1 header names are case-insensitive; servers and proxies write them
        // lower-case (hyper, HTTP/2 edges) or Title-Case (many HTTP/1 servers).
        .title_case_headers(variant == Variant::Terse);
    // A client that goes away mid-request is not the lab's problem.
    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
}

/// 421: the connection reached the lab, but the request names a host it does not
/// serve.
fn misdirected() -> Response<Body> {
    (
        StatusCode::MISDIRECTED_REQUEST,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "421 Misdirected Request: this lab serves service.example.com, xyz.cloudflareaccess.com and id.example.com\n",
    )
        .into_response()
}
