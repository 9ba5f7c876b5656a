//! `ssoprobe serve`: a Prometheus multi-target exporter, in the manner of
//! blackbox_exporter. Prometheus schedules and stores; ssoprobe answers
//! `GET /probe?target=NAME` with that target's check in the Prometheus format plus the
//! metrics of blackbox_exporter's HTTP probe that ssoprobe measures with the same meaning
//! (`probe_success`, `probe_duration_seconds`, `probe_http_status_code`, `probe_http_ssl`,
//! `probe_tls_version_info`, `probe_ssl_earliest_cert_expiry`: see
//! [`report::prometheus::blackbox`]), so that dashboards and alert rules written for
//! blackbox_exporter read it. `--listen` takes blackbox_exporter's `:PORT` too.
//!
//! Every scrape of a target shares the run of that target under way, if there is one,
//! instead of starting another: a target holds at most one of the `--concurrency` run
//! slots, so a target that hangs cannot starve the others. Pocket ID rate-limits passkey
//! logins, so a target with a passkey logs in at most once per `--min-login-interval`:
//! a scrape inside it gets the last result with its age.
//!
//! A scrape never answers later than Prometheus waits
//! (`X-Prometheus-Scrape-Timeout-Seconds`, less half a second; the target's deadline
//! when the header is missing): waiting for a run slot or for another scrape's run of
//! the same target counts, and a scrape whose time ran out while it waited answers at
//! once with `probe_success 0` and `ssoprobe_probe_not_run{reason=…} 1`. A run the
//! scrape's time cut ends with a verdict like any other (the check whose request it cut
//! fails, naming the wait): a silent site is never `probe_success 1`.
//!
//! The server is reachable by anyone who can reach its address, so it holds its own
//! against hostile clients: the request head must arrive within
//! [`HEADER_READ_TIMEOUT`] (idle keep-alive connections included), request bodies are
//! never read, a request is answered within [`REQUEST_SLACK`] of the longest scrape, and
//! at most [`MAX_CONNECTIONS`] connections are open: when a new one arrives at the limit,
//! the oldest connection without a request under way is closed to make room (so a flood
//! of idle connections cannot lock Prometheus out), and when every connection has a
//! request under way, the new one is told 503 and closed. No panic reaches the network:
//! a handler that panicked answers 500.
//!
//! SIGTERM or Ctrl-C stops accepting, cancels the runs under way (their scrapes are
//! answered `probe_success 0`, reason `shutdown`), closes the connections and exits
//! within [`STOP_GRACE`]; a second one stops at once.

use super::{AppError, NoOrigins, wait_for_stop};
use crate::checks::{self, Outcome};
use crate::config::{Config, Origin, OriginOf};
use crate::finding::{Findings, Status};
use crate::http::Http;
use crate::report::{self, Target, TargetRun};
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::FutureExt as _;
use futures::future::{Shared, WeakShared};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, mpsc, watch};

/// How long a client has to send a request head, counted from the moment the server
/// waits for one (so it also bounds an idle keep-alive connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections open at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Time a request may take beyond the longest scrape budget before it is cut off.
pub const REQUEST_SLACK: Duration = Duration::from_secs(10);
/// The shortest scrape budget (a smaller or garbage scrape timeout is not believed).
const MIN_SCRAPE: Duration = Duration::from_millis(500);
/// The longest scrape budget a scrape timeout header can ask for.
const MAX_SCRAPE: Duration = Duration::from_secs(300);
/// Prometheus's scrape timeout less this is the budget: the answer must travel too.
const SCRAPE_MARGIN: f64 = 0.5;
/// A run needs at least this much of its budget left to be worth starting.
const MIN_RUN: Duration = Duration::from_millis(100);
/// How much past its own deadline a scrape waits for a run another scrape started
/// (less than [`SCRAPE_MARGIN`]: the answer still reaches Prometheus in time).
const JOIN_GRACE: Duration = Duration::from_millis(250);
/// After the first signal, the most time connections get to take their answers and
/// close (systemd and Kubernetes wait a few seconds before they kill).
pub const STOP_GRACE: Duration = Duration::from_millis(1500);

/// `ssoprobe serve`: validates the flags and runs the exporter until SIGTERM or Ctrl-C.
pub(crate) async fn run(
    args: &crate::cli::ServeArgs,
    origins: Option<&dyn OriginOf>,
) -> Result<u8, AppError> {
    let origins = origins.unwrap_or(&NoOrigins);
    // `serve` answers in the Prometheus format on its own endpoints: output settings of
    // `check` would be silently ignored, so they are refused.
    for (id, flag, env) in [
        ("format", "--format", "SSOPROBE_FORMAT"),
        ("output", "--output", "SSOPROBE_OUTPUT"),
        ("ping_url", "--ping-url", "SSOPROBE_PING_URL"),
        ("color", "--color", "SSOPROBE_COLOR"),
        ("no_color", "--no-color", "--no-color"),
        ("quiet", "--quiet", "SSOPROBE_QUIET"),
        ("har", "--har", "SSOPROBE_HAR"),
        ("print_config", "--print-config", "--print-config"),
        ("report_json", "--report-json", "SSOPROBE_REPORT_JSON"),
        ("report_junit", "--report-junit", "SSOPROBE_REPORT_JUNIT"),
        ("report_nagios", "--report-nagios", "SSOPROBE_REPORT_NAGIOS"),
        (
            "report_prometheus",
            "--report-prometheus",
            "SSOPROBE_REPORT_PROMETHEUS",
        ),
    ] {
        if let Some(origin) = origins.origin_of(id) {
            let named = if matches!(origin, Origin::Env) {
                env
            } else {
                flag
            };
            return Err(AppError::Usage(format!(
                "{named} has no effect on `ssoprobe serve`, which answers in the Prometheus format on /probe and /metrics (each recent probe's report and HAR are on / and /report?id=N); leave it out"
            )));
        }
    }
    let targets = Config::targets_from_check_args(&args.check, origins)?;
    super::known_checks(&targets)?;
    let listen = resolve_listen(&args.listen, &crate::config::named(origins, "listen")).await?;
    let min_login_interval = crate::config::parse_duration(
        "min_login_interval",
        &args.min_login_interval,
        &origins
            .origin_of("min_login_interval")
            .unwrap_or(Origin::Flag),
    )?;
    let options = ServeOptions {
        listen,
        min_login_interval,
        concurrency: args.concurrency,
    };
    // The first signal stops gracefully, the second at once.
    let (signals_tx, signals) = watch::channel(0u32);
    tokio::spawn(async move {
        for n in 1..=2 {
            wait_for_stop().await;
            signals_tx.send_replace(n);
        }
    });
    let nth = |n: u32| {
        let mut signals = signals.clone();
        async move {
            let _ = signals.wait_for(|&count| count >= n).await;
        }
    };
    match serve(targets, options, nth(1), nth(2)).await {
        Ok(Stopped::Gracefully) => Ok(0),
        Ok(Stopped::Forced { runs }) => Err(AppError::Io(format!(
            "stopped at once by a second signal; {runs} run{} in progress abandoned",
            if runs == 1 { "" } else { "s" }
        ))),
        Err(e) => Err(AppError::Io(e.to_string())),
    }
}

/// `--listen`: `ADDR:PORT` (`127.0.0.1:9797`, `[::1]:9797`) or `HOST:PORT`
/// (`localhost:9797`), resolved to every address the name has; `:PORT`, as
/// blackbox_exporter's `--web.listen-address=:9115`, is every interface (IPv6 and IPv4,
/// or IPv4 alone where the machine has no IPv6); a bare `PORT` keeps the default's
/// loopback address and changes the port only. Errors name it as given (`named`:
/// "--listen" or "SSOPROBE_LISTEN").
async fn resolve_listen(listen: &str, named: &str) -> Result<Vec<SocketAddr>, AppError> {
    let usage = |why: &str| {
        AppError::Usage(format!(
            "{named}: '{}' {why}, e.g. 127.0.0.1:9797, localhost:9797, :9797 (every interface) or 9797 (loopback)",
            listen.replace(['\n', '\r'], " ")
        ))
    };
    if let Some(port) = port_only(listen) {
        return Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    }
    if let Some(port) = listen.strip_prefix(':') {
        let Some(port) = port_only(port) else {
            return Err(usage("is not :PORT with a port from 0 to 65535"));
        };
        return Ok(vec![
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)),
            SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port)),
        ]);
    }
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let Some((host, port)) = listen.rsplit_once(':') else {
        return Err(usage("is not ADDR:PORT or HOST:PORT"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(usage("is not ADDR:PORT or HOST:PORT"));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| usage(&format!("does not resolve ({e})")))?
        .collect();
    if addrs.is_empty() {
        return Err(usage("resolves to no address"));
    }
    Ok(addrs)
}

/// A port number alone: ASCII digits only (no sign, no space), within 0..=65535.
fn port_only(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// How the exporter runs.
pub struct ServeOptions {
    /// Where to listen (loopback by default): the first of these that can be bound.
    pub listen: Vec<SocketAddr>,
    /// Least time between two full logins of one target.
    pub min_login_interval: Duration,
    /// Most target runs at once.
    pub concurrency: usize,
}

/// How the exporter stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// After the first signal: the runs under way cancelled, their scrapes answered.
    Gracefully,
    /// At a second signal, abandoning `runs` runs.
    Forced {
        /// Runs that were under way.
        runs: u64,
    },
}

/// A finished run of a target: its answer to a scrape, and its record for the pages.
struct Cached {
    /// Its report in the Prometheus format.
    text: String,
    /// blackbox_exporter's metrics of the site's final answer, where ssoprobe has them.
    blackbox: String,
    /// Whether it succeeded: its checks decided, and none failed.
    success: bool,
    /// The run as `/`, `/report` and `debug=true` show it.
    record: Arc<super::pages::Record>,
    /// When it ended.
    at: Instant,
}

struct TargetState {
    name: String,
    config: Config,
    /// The last result: a target with a passkey reuses it within --min-login-interval.
    last: std::sync::Mutex<Option<Arc<Cached>>>,
    /// The run under way, shared by every scrape of the target while it lasts. Weak:
    /// when every scrape waiting on it has hung up, the run is dropped.
    running: std::sync::Mutex<Option<WeakShared<RunFuture>>>,
    /// Where the last run found the team and Pocket ID: the next run opens their
    /// connections at once (and still finds them itself).
    found: std::sync::Mutex<checks::Found>,
}

/// One run of a target, as its scrapes share it.
type RunFuture = futures::future::BoxFuture<'static, Done>;

/// How a shared run ended.
#[derive(Clone)]
enum Done {
    /// The checks ran.
    Ran(Arc<Cached>),
    /// The run did not happen (no slot in time, or serve is stopping).
    NotRun { reason: &'static str, why: String },
}

impl Done {
    /// The run of `target` cancelled because serve is stopping.
    fn shutdown(target: &str) -> Done {
        Done::NotRun {
            reason: "shutdown",
            why: format!(
                "target {target}: serve is stopping (SIGTERM or Ctrl-C); the run under way was cancelled"
            ),
        }
    }
}

impl TargetState {
    fn last(&self) -> Option<Arc<Cached>> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The run of this target under way, or a new one started for a scrape that must
    /// answer by `deadline`; and whether this call started it.
    fn join_or_start(
        self: &Arc<Self>,
        exporter: &Arc<Exporter>,
        deadline: tokio::time::Instant,
        limit: &'static str,
    ) -> (Shared<RunFuture>, bool) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(run) = running.as_ref().and_then(WeakShared::upgrade)
            && run.peek().is_none()
        {
            return (run, false);
        }
        let run = run_target(exporter.clone(), self.clone(), deadline, limit)
            .boxed()
            .shared();
        *running = run.downgrade();
        (run, true)
    }
}

struct Exporter {
    targets: BTreeMap<String, Arc<TargetState>>,
    options: ServeOptions,
    runs: Semaphore,
    started: Instant,
    runs_total: AtomicU64,
    failures_total: AtomicU64,
    cached_total: AtomicU64,
    not_run_total: AtomicU64,
    /// True once serve is stopping: runs under way are cancelled.
    stopping: watch::Receiver<bool>,
    connections: Connections,
    /// The recent probes, for `/` and `/report`.
    recent: std::sync::Mutex<super::pages::Recent>,
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct ServeError {
    addr: String,
    source: std::io::Error,
}

/// Runs the exporter until `stop` (gracefully: the runs under way finish) or `force`
/// (at once, after `stop`).
pub async fn serve(
    targets: Vec<(String, Config)>,
    options: ServeOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    force: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Stopped, ServeError> {
    let listener = bind(&options.listen).await?;
    let local = listener.local_addr().map_err(|source| ServeError {
        addr: "the bound socket".into(),
        source,
    })?;
    if !local.ip().is_loopback() {
        eprintln!(
            "warning: --listen {local} is reachable from other machines; ssoprobe's endpoints carry no secrets, but anyone who reaches them can trigger logins"
        );
    }
    let request_timeout = request_timeout(&targets);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let exporter = Exporter::new(targets, options, shutdown_rx.clone());
    // Reports rendered here are read in a browser or by curl, never on a terminal.
    colored::control::set_override(false);
    eprintln!(
        "ssoprobe serve: listening on http://{local} ({} target{}: {})",
        exporter.targets.len(),
        if exporter.targets.len() == 1 { "" } else { "s" },
        exporter
            .targets
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Every connection task holds a sender; all have ended when `recv` says None.
    let (alive_tx, alive_rx) = mpsc::channel::<()>(1);
    let server = ConnectionServer {
        app: router(exporter.clone(), request_timeout),
        builder: connection_builder(),
        exporter: exporter.clone(),
        shutdown: shutdown_rx,
        alive: alive_tx,
    };
    accept_until(listener, stop, &server).await;
    Ok(stop_serving(&exporter, shutdown_tx, server, alive_rx, force).await)
}

/// How long a request may take: as long as the longest scrape budget, and a little more.
fn request_timeout(targets: &[(String, Config)]) -> Duration {
    let longest = targets
        .iter()
        .map(|(_, c)| c.http.deadline)
        .chain([MAX_SCRAPE])
        .max()
        .unwrap_or(MAX_SCRAPE);
    longest.saturating_add(REQUEST_SLACK)
}

impl Exporter {
    /// The exporter of `targets`, none run yet; its runs are cancelled once `stopping`
    /// turns true.
    fn new(
        targets: Vec<(String, Config)>,
        options: ServeOptions,
        stopping: watch::Receiver<bool>,
    ) -> Arc<Exporter> {
        Arc::new(Exporter {
            targets: targets
                .into_iter()
                .map(|(name, config)| {
                    (
                        name.clone(),
                        Arc::new(TargetState {
                            name,
                            config,
                            last: std::sync::Mutex::new(None),
                            running: std::sync::Mutex::new(None),
                            found: std::sync::Mutex::new(checks::Found::default()),
                        }),
                    )
                })
                .collect(),
            runs: Semaphore::new(options.concurrency.max(1)),
            options,
            started: Instant::now(),
            runs_total: AtomicU64::new(0),
            failures_total: AtomicU64::new(0),
            cached_total: AtomicU64::new(0),
            not_run_total: AtomicU64::new(0),
            stopping,
            connections: Connections::default(),
            recent: std::sync::Mutex::new(super::pages::Recent::default()),
        })
    }

    /// Target runs under way: the run slots taken.
    fn runs_in_flight(&self) -> u64 {
        let slots = self.options.concurrency.max(1);
        slots.saturating_sub(self.runs.available_permits()) as u64
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, super::pages::Recent> {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The endpoints, each request under [`guard`] with `request_timeout`.
fn router(exporter: Arc<Exporter>, request_timeout: Duration) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/report", get(report_page))
        .route("/probe", get(probe))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { StatusCode::NO_CONTENT }))
        .layer(axum::middleware::from_fn(move |req, next| {
            guard(req, next, request_timeout)
        }))
        .with_state(exporter)
}

/// HTTP/1 only, with keep-alive, and a request head due within [`HEADER_READ_TIMEOUT`].
fn connection_builder() -> Arc<auto::Builder<TokioExecutor>> {
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    Arc::new(builder)
}

/// What serves an accepted connection; each connection task holds a clone.
#[derive(Clone)]
struct ConnectionServer {
    app: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    exporter: Arc<Exporter>,
    /// True once serve is stopping: connections close once their answers are out.
    shutdown: watch::Receiver<bool>,
    /// Held for as long as the task lives.
    alive: mpsc::Sender<()>,
}

/// Accepts connections until `stop`, admitting each to the table of connections
/// (closing the oldest idle one at the limit, or refusing with 503 when none is idle)
/// and serving it on a task of its own.
async fn accept_until(
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()>,
    server: &ConnectionServer,
) {
    // A connection closed to make room holds its socket until its task ends: a permit per
    // live connection task keeps the sockets (and the runtime's bookkeeping for them) at
    // the limit, however fast a flood arrives.
    let live = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, _peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    // Out of descriptors or a connection reset before it was accepted:
                    // wait a little rather than spin, and go on.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small answers must not wait for a delayed ACK (Nagle).
        let _ = stream.set_nodelay(true);
        let Some(slot) = server.exporter.connections.admit() else {
            // Every connection has a request under way: say so, best effort, and close.
            let _ = stream.try_write(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            continue;
        };
        let Ok(permit) = Arc::clone(&live).acquire_owned().await else {
            continue;
        };
        tokio::spawn(server.clone().serve_connection(stream, slot, permit));
    }
}

impl ConnectionServer {
    /// Serves one connection until it ends or is closed to make room; once serve stops,
    /// it closes after the answers under way. It leaves the table when it ends.
    async fn serve_connection(
        self,
        stream: tokio::net::TcpStream,
        slot: Arc<Slot>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let service =
            TowerToHyperService::new(self.app.clone().layer(axum::Extension(slot.clone())));
        let _alive = self.alive;
        let _permit = permit;
        let _registered = Registered {
            connections: &self.exporter.connections,
            id: slot.id,
        };
        let mut shutdown = self.shutdown;
        let conn = self.builder.serve_connection(TokioIo::new(stream), service);
        let mut conn = std::pin::pin!(conn);
        let mut closing = false;
        if *shutdown.borrow_and_update() {
            conn.as_mut().graceful_shutdown();
            closing = true;
        }
        loop {
            tokio::select! {
                _ = conn.as_mut() => break,
                // Closed to make room for a newer connection: drop it now.
                () = slot.evict.notified() => break,
                _ = shutdown.changed(), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// The stop after the first signal: says what it cancels, cancels the runs (their
/// scrapes answer at once) and closes idle connections, then waits for the connections
/// to end, at most [`STOP_GRACE`], or for `force`.
async fn stop_serving(
    exporter: &Exporter,
    shutdown_tx: watch::Sender<bool>,
    server: ConnectionServer,
    mut alive_rx: mpsc::Receiver<()>,
    force: impl std::future::Future<Output = ()>,
) -> Stopped {
    let runs = exporter.runs_in_flight();
    eprintln!(
        "ssoprobe serve: stopping; {runs} run{} under way cancelled, {} scrapes answered probe_success 0",
        if runs == 1 { "" } else { "s" },
        if runs == 1 { "its" } else { "their" }
    );
    // Cancels the runs (their scrapes answer at once) and closes idle connections.
    let _ = shutdown_tx.send(true);
    // The connection tasks hold the other senders.
    drop(server);
    tokio::select! {
        _ = alive_rx.recv() => Stopped::Gracefully,
        // A client that neither reads its answer nor closes does not hold the exit.
        () = tokio::time::sleep(STOP_GRACE) => Stopped::Gracefully,
        () = force => {
            let runs = exporter.runs_in_flight();
            eprintln!("ssoprobe serve: second signal; stopping now");
            Stopped::Forced { runs }
        }
    }
}

/// Binds the first address that works.
async fn bind(addrs: &[SocketAddr]) -> Result<tokio::net::TcpListener, ServeError> {
    let mut last = None;
    for addr in addrs {
        let bound = if addr.ip() == std::net::Ipv6Addr::UNSPECIFIED {
            bind_every_interface(*addr)
        } else {
            tokio::net::TcpListener::bind(addr).await
        };
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some((*addr, e)),
        }
    }
    let (addr, source) = last.unwrap_or_else(|| {
        (
            SocketAddr::from(([127, 0, 0, 1], 0)),
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on"),
        )
    });
    let addr = if addrs.len() > 1 {
        format!(
            "any of {}",
            addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        addr.to_string()
    };
    Err(ServeError { addr, source })
}

/// Listens on `[::]:port` for IPv6 and IPv4 alike (IPV6_V6ONLY off, as Go's `:9115`
/// does), whatever the system's default for IPv6 sockets.
fn bind_every_interface(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, None)?;
    socket.set_only_v6(false)?;
    // As tokio's own bind: a restarted exporter takes its port back at once.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// The open connections, oldest first, so that the oldest idle one can make room.
#[derive(Default)]
struct Connections {
    table: std::sync::Mutex<ConnTable>,
    evicted_total: AtomicU64,
    refused_total: AtomicU64,
}

#[derive(Default)]
struct ConnTable {
    next_id: u64,
    open: BTreeMap<u64, Arc<Slot>>,
    /// Most connections open since the table was last empty.
    peak: usize,
}

/// One connection.
struct Slot {
    id: u64,
    /// Requests under way on it, or [`EVICTED`].
    busy: AtomicU32,
    /// Told when the connection is to close at once.
    evict: Notify,
}

/// [`Slot::busy`] of a connection closed to make room.
const EVICTED: u32 = u32::MAX;

impl Connections {
    fn table(&self) -> std::sync::MutexGuard<'_, ConnTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection: free, or taken from the oldest idle connection;
    /// None when every connection has a request under way.
    fn admit(&self) -> Option<Arc<Slot>> {
        let mut table = self.table();
        if table.open.len() >= MAX_CONNECTIONS {
            let oldest_idle = table
                .open
                .iter()
                .find(|(_, slot)| {
                    slot.busy
                        .compare_exchange(0, EVICTED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                })
                .map(|(id, _)| *id);
            let Some(id) = oldest_idle else {
                self.refused_total.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            if let Some(slot) = table.open.remove(&id) {
                slot.evict.notify_one();
                self.evicted_total.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        let slot = Arc::new(Slot {
            id,
            busy: AtomicU32::new(0),
            evict: Notify::new(),
        });
        table.open.insert(id, slot.clone());
        table.peak = table.peak.max(table.open.len());
        Some(slot)
    }

    fn open(&self) -> usize {
        self.table().open.len()
    }
}

/// Removes a connection from the table when its task ends.
struct Registered<'a> {
    connections: &'a Connections,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut table = self.connections.table();
        table.open.remove(&self.id);
        // After a flood of connections, hand their freed buffers back to the system, or
        // the exporter keeps the flood's memory for good.
        if table.open.len() <= RELEASE_WHEN_OPEN && table.peak > RELEASE_AFTER_PEAK {
            table.peak = table.open.len();
            drop(table);
            release_freed_memory();
            // The runtime frees a closed socket's bookkeeping on its next turn: once more
            // a little later.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    release_freed_memory();
                });
            }
        }
    }
}

/// Connections open at once after which the freed memory is returned once they close.
const RELEASE_AFTER_PEAK: usize = 32;
/// "Closed" for that purpose: no more than a scraper's few connections left.
const RELEASE_WHEN_OPEN: usize = 2;

/// Returns freed heap memory to the operating system (glibc keeps it in its arenas).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointer
    // and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A request under way on a connection (which is then not closed to make room).
struct Busy(Arc<Slot>);

impl Busy {
    fn enter(slot: Arc<Slot>) -> Option<Busy> {
        slot.busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < EVICTED - 1).then_some(n + 1)
            })
            .ok()
            .map(|_| Busy(slot))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self
            .0
            .busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != EVICTED && n > 0).then(|| n - 1)
            });
    }
}

/// Around every request: marks the connection busy, never reads the body (no endpoint
/// takes one), bounds the time, and turns a panic into a 500.
async fn guard(req: Request, next: Next, timeout: Duration) -> Response {
    let busy = match req.extensions().get::<Arc<Slot>>().cloned() {
        Some(slot) => match Busy::enter(slot) {
            Some(busy) => Some(busy),
            None => return text(StatusCode::SERVICE_UNAVAILABLE, "closing\n".into()),
        },
        None => None,
    };
    let req = req.map(|_| axum::body::Body::empty());
    let answer = tokio::time::timeout(
        timeout,
        std::panic::AssertUnwindSafe(next.run(req)).catch_unwind(),
    )
    .await;
    drop(busy);
    match answer {
        Ok(Ok(response)) => response,
        Ok(Err(_panic)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (a bug in ssoprobe; its stderr has the details)\n".into(),
        ),
        Err(_elapsed) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the request took too long\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The time a scrape may take, from Prometheus's scrape timeout header: that less half
/// a second, within [`MIN_SCRAPE`]..[`MAX_SCRAPE`]; None when the header is missing or
/// not a positive number.
fn scrape_budget(header: Option<&HeaderValue>) -> Option<Duration> {
    let seconds: f64 = header?.to_str().ok()?.trim().parse().ok()?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return None;
    }
    let seconds =
        (seconds - SCRAPE_MARGIN).clamp(MIN_SCRAPE.as_secs_f64(), MAX_SCRAPE.as_secs_f64());
    Duration::try_from_secs_f64(seconds).ok()
}

/// `/probe?target=NAME`: the target's metrics, from its recent result (a target with a
/// passkey), the run under way or a new run; with `debug=true`, the human report.
async fn probe(
    State(exporter): State<Arc<Exporter>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let arrived = Instant::now();
    let Some(name) = query.get("target") else {
        return text(StatusCode::BAD_REQUEST, "missing ?target=NAME\n".into());
    };
    let Some(state) = exporter.targets.get(name).cloned() else {
        return unknown_target(&exporter, name);
    };
    // Prometheus says how long it will wait; answer within it, waiting included.
    let (budget, limit) = scrape_limit(&headers, state.config.http.deadline);
    let deadline = tokio::time::Instant::from_std(arrived) + budget;
    let debug = query
        .get("debug")
        .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "yes"));

    // A target with a passkey reuses a recent result: Pocket ID rate-limits logins.
    if state.config.passkey.is_some()
        && let Some(cached) = state.last()
        && cached.at.elapsed() < exporter.options.min_login_interval
    {
        exporter.cached_total.fetch_add(1, Ordering::Relaxed);
        if debug {
            return debug_answer(&cached.record, Some(cached.at.elapsed()));
        }
        return text(
            StatusCode::OK,
            with_probe_metrics(&cached, cached.at.elapsed()),
        );
    }
    // Rule: one run per target at a time, whoever scrapes it; a scrape that finds one
    // under way waits for it (within its own time) instead of taking another slot.
    let (run, started) = state.join_or_start(&exporter, deadline, limit);
    let done = if started {
        // The run is bounded by this scrape's deadline already.
        run.await
    } else {
        // The run ends at its own deadline, then renders: a joiner that arrived just
        // after it waits that little longer, within the half second kept for the answer.
        match tokio::time::timeout_at(deadline + JOIN_GRACE, run).await {
            Ok(done) => done,
            Err(_elapsed) => Done::NotRun {
                reason: "run_under_way",
                why: format!(
                    "target {}: the run another scrape started was still under way when this scrape's {:.1} s ran out (a target runs once at a time)",
                    state.name,
                    budget.as_secs_f64()
                ),
            },
        }
    };
    match done {
        Done::Ran(cached) => {
            if debug {
                return debug_answer(&cached.record, None);
            }
            text(StatusCode::OK, with_probe_metrics(&cached, Duration::ZERO))
        }
        Done::NotRun { reason, why } => not_run(&exporter, reason, &why, arrived.elapsed()),
    }
}

/// The answer to a scrape of a target that is not configured: the nearest configured
/// name, if one is near, and the ones that are.
fn unknown_target(exporter: &Exporter, name: &str) -> Response {
    let configured = exporter.targets.keys().map(String::as_str);
    let names = configured.clone().collect::<Vec<_>>().join(", ");
    text(
        StatusCode::NOT_FOUND,
        format!(
            "unknown target '{}'{}; configured: {names}\n",
            // Whatever a client sent, cut and cleared before it is echoed.
            crate::text::server_text(&name.chars().take(64).collect::<String>()),
            crate::text::did_you_mean(name, configured)
        ),
    )
}

/// How long a scrape may take, and what sets that (for the hint of a run it cuts): the
/// scrape timeout Prometheus sends when it is shorter than the target's deadline, else
/// the deadline.
fn scrape_limit(headers: &HeaderMap, target_deadline: Duration) -> (Duration, &'static str) {
    match scrape_budget(headers.get("x-prometheus-scrape-timeout-seconds")) {
        Some(scrape) if scrape < target_deadline => (
            scrape,
            "the scrape timeout: raise scrape_timeout in Prometheus, which sends it as X-Prometheus-Scrape-Timeout-Seconds",
        ),
        _ => (
            target_deadline,
            "the target's deadline: raise deadline in its [targets.NAME] section",
        ),
    }
}

/// One run of a target for the scrapes that share it: a run slot within `deadline`,
/// the checks, the result kept for the pages and for reuse. Cancelled when serve stops.
async fn run_target(
    exporter: Arc<Exporter>,
    state: Arc<TargetState>,
    deadline: tokio::time::Instant,
    limit: &'static str,
) -> Done {
    let mut stopping = exporter.stopping.clone();
    let work = async {
        let (permit, remaining) = match take_run_slot(&exporter, &state, deadline).await {
            Ok(slot) => slot,
            Err(not_run) => return not_run,
        };
        let mut config = state.config.clone();
        // Each request's time is capped by what is left of the run (Http::budget): a
        // request the scrape's time cuts is named with its host and its wait.
        config.http.deadline = config.http.deadline.min(remaining);
        config.http.deadline_limit = limit;
        let started_unix = crate::timefmt::unix_now();
        let last = state
            .found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let checked = run_checks(&config, &last).await;
        drop(permit);
        record_run(&exporter, &state, &config, started_unix, checked)
    };
    tokio::select! {
        done = work => done,
        _ = stopping.wait_for(|stop| *stop) => Done::shutdown(&state.name),
    }
}

/// One of the `--concurrency` run slots, taken by `deadline`, and the time left for the
/// run; why the run does not happen when no slot came in time or too little time is
/// left.
async fn take_run_slot<'a>(
    exporter: &'a Exporter,
    state: &TargetState,
    deadline: tokio::time::Instant,
) -> Result<(tokio::sync::SemaphorePermit<'a>, Duration), Done> {
    let arrived = tokio::time::Instant::now();
    let budget = deadline.saturating_duration_since(arrived);
    let permit = match tokio::time::timeout_at(deadline, exporter.runs.acquire()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_closed)) => return Err(Done::shutdown(&state.name)),
        Err(_elapsed) => {
            return Err(Done::NotRun {
                reason: "queue_timeout",
                why: format!(
                    "target {}: no run slot came free within this scrape's {:.1} s (--concurrency {} runs at once)",
                    state.name,
                    budget.as_secs_f64(),
                    exporter.options.concurrency.max(1)
                ),
            });
        }
    };
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    if remaining < MIN_RUN {
        return Err(Done::NotRun {
            reason: "queue_timeout",
            why: format!(
                "target {}: waited {:.1} s of this scrape's {:.1} s for a run slot (--concurrency {}); too little left to run",
                state.name,
                arrived.elapsed().as_secs_f64(),
                budget.as_secs_f64(),
                exporter.options.concurrency.max(1)
            ),
        });
    }
    Ok((permit, remaining))
}

/// What one run of the checks gave: its outcome, what it found, its recorded requests.
struct Checked {
    outcome: Outcome,
    found: checks::Found,
    entries: Vec<crate::har::Entry>,
}

/// Runs the checks of `config`, recording their requests; a client that cannot be set
/// up fails the run.
async fn run_checks(config: &Config, last: &checks::Found) -> Checked {
    match Http::new(&config.http) {
        Ok(mut http) => {
            // Every probe keeps its requests (redacted) for /report and debug=true.
            http.record_har();
            let (outcome, found) = checks::run_found_after(config, &http, last).await;
            Checked {
                outcome,
                found,
                entries: http.har_entries(),
            }
        }
        Err(e) => {
            let mut f = Findings::start(checks::ids::RUN);
            f.fail_transport(
                format!("the HTTP client could not be set up: {e}"),
                e.hint(),
            );
            Checked {
                outcome: Outcome {
                    checks: vec![f.finish("")],
                    duration: Duration::ZERO,
                    before: Duration::ZERO,
                },
                found: Default::default(),
                entries: Vec::new(),
            }
        }
    }
}

/// Counts a finished run, renders its metrics, keeps its report and HAR for the pages
/// and its result for reuse.
fn record_run(
    exporter: &Exporter,
    state: &TargetState,
    config: &Config,
    started_unix: i64,
    checked: Checked,
) -> Done {
    let Checked {
        outcome,
        found,
        entries,
    } = checked;
    exporter.runs_total.fetch_add(1, Ordering::Relaxed);
    *state
        .found
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = found.clone();
    // Rule: only a run whose checks decided, and none failed, is a success.
    let success = matches!(outcome.status(), Status::Pass | Status::Warn);
    if !success {
        exporter.failures_total.fetch_add(1, Ordering::Relaxed);
    }
    let target = Target::of(config, found);
    let rendered = report::prometheus::render(&[TargetRun {
        name: &state.name,
        target: &target,
        outcome: &outcome,
        started_unix,
    }]);
    let blackbox = report::prometheus::blackbox(
        &outcome,
        report::prometheus::final_answer(&entries).as_ref(),
    );
    let trace = super::pages::trace(&entries);
    let har = serde_json::to_string(&report::har::document(&[report::har::TargetEntries {
        name: &state.name,
        entries,
        checks: &outcome.checks,
    }]))
    .ok();
    let record = exporter
        .recent()
        .push(&state.name, target, started_unix, outcome, trace, har);
    let cached = Arc::new(Cached {
        text: rendered,
        blackbox,
        success,
        record,
        at: Instant::now(),
    });
    *state
        .last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cached.clone());
    Done::Ran(cached)
}

/// `debug=true`: the human report with its hop trace, as plain text.
fn debug_answer(record: &super::pages::Record, age: Option<Duration>) -> Response {
    let mut body = String::new();
    if let Some(age) = age {
        body.push_str(&format!(
            "The last run, {:.0} s ago, is reused: a target with a passkey logs in at most once per --min-login-interval.\n\n",
            age.as_secs_f64()
        ));
    }
    body.push_str(&record.debug_text());
    plain(StatusCode::OK, body)
}

fn plain(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn html(body: String) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // No script is ever needed; none may run.
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `/`: every target with its last result, then the recent probes.
async fn index(
    State(exporter): State<Arc<Exporter>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let refresh = query
        .get("refresh")
        .and_then(|r| r.parse::<u32>().ok())
        .map(|r| r.clamp(5, 3600));
    let (targets, recent) = {
        let ring = exporter.recent();
        let targets: Vec<(String, Option<Arc<super::pages::Record>>)> = exporter
            .targets
            .keys()
            .map(|name| (name.clone(), ring.last(name)))
            .collect();
        (targets, ring.newest_first())
    };
    html(super::pages::index(
        &targets,
        &recent,
        crate::timefmt::unix_now(),
        refresh,
    ))
}

/// `/report?id=N`: one recent probe as HTML, JSON (`?format=json` or `Accept:
/// application/json`) or HAR (`?format=har`).
async fn report_page(
    State(exporter): State<Arc<Exporter>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = query.get("id").and_then(|i| i.trim().parse::<u64>().ok()) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "give the probe's number: /report?id=N (see / for the recent ones)\n".into(),
        );
    };
    let Some(record) = exporter.recent().get(id) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!(
                "probe {id} is not among the {} most recent; see / for them\n",
                super::pages::RECENT
            ),
        );
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .unwrap_or("");
    let format = match query.get("format").map(String::as_str) {
        Some("json") => "json",
        Some("har") => "har",
        Some("html") | None if !accept.contains("application/json") => "html",
        None => "json",
        Some(other) => {
            return plain(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown format '{}'; use html, json or har\n",
                    other.replace(['\n', '\r'], " ")
                ),
            );
        }
    };
    match format {
        "json" => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            report::json_all(&[record.run()]),
        )
            .into_response(),
        "har" => match record.har.lock().ok().and_then(|h| h.clone()) {
            Some(har) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/json".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"ssoprobe-probe-{id}.har\""),
                    ),
                ],
                har,
            )
                .into_response(),
            None => plain(
                StatusCode::NOT_FOUND,
                format!(
                    "probe {id}'s HAR is not kept: only the {} newest probes keep theirs, each at most {} KiB\n",
                    super::pages::RECENT_HAR,
                    super::pages::HAR_KEEP / 1024
                ),
            ),
        },
        _ => html(super::pages::report(&record, crate::timefmt::unix_now())),
    }
}

/// The answer of a scrape whose time ran out before its run could start: at once, with
/// the reason as a comment and as a label.
fn not_run(exporter: &Exporter, reason: &str, why: &str, waited: Duration) -> Response {
    exporter.not_run_total.fetch_add(1, Ordering::Relaxed);
    let body = format!(
        "# ssoprobe: not run: {}\n# HELP ssoprobe_probe_not_run Set when the target was not run for this scrape: the scrape timeout ran out while it waited (queue_timeout: for a run slot; run_under_way: for the run another scrape of the target started), or serve was stopping (shutdown).\n# TYPE ssoprobe_probe_not_run gauge\nssoprobe_probe_not_run{{reason=\"{reason}\"}} 1\n{}",
        why.replace(['\n', '\r'], " "),
        probe_metrics(false, waited)
    );
    text(StatusCode::OK, body)
}

/// blackbox_exporter's metrics, and the age of a reused result, after the report.
fn with_probe_metrics(cached: &Cached, age: Duration) -> String {
    format!(
        "{}{}{}# HELP ssoprobe_result_age_seconds Age of this result: above 0 when a recent run was reused (minimum login interval).\n# TYPE ssoprobe_result_age_seconds gauge\nssoprobe_result_age_seconds {:.3}\n",
        cached.text,
        probe_metrics(cached.success, cached.record.outcome.duration),
        cached.blackbox,
        age.as_secs_f64()
    )
}

/// blackbox_exporter's `probe_success` (1 when the run's checks decided and none failed)
/// and `probe_duration_seconds` (the run's wall time), with its help texts.
fn probe_metrics(success: bool, duration: Duration) -> String {
    format!(
        "# HELP probe_success Displays whether or not the probe was a success\n# TYPE probe_success gauge\nprobe_success {}\n# HELP probe_duration_seconds Returns how long the probe took to complete in seconds\n# TYPE probe_duration_seconds gauge\nprobe_duration_seconds {:.3}\n",
        u8::from(success),
        duration.as_secs_f64()
    )
}

async fn metrics(State(exporter): State<Arc<Exporter>>) -> Response {
    let body = format!(
        "# HELP ssoprobe_exporter_build_info ssoprobe's version.\n# TYPE ssoprobe_exporter_build_info gauge\nssoprobe_exporter_build_info{{version=\"{}\"}} 1\n\
# HELP ssoprobe_exporter_targets Configured targets.\n# TYPE ssoprobe_exporter_targets gauge\nssoprobe_exporter_targets {}\n\
# HELP ssoprobe_exporter_runs_total Target runs started by probes.\n# TYPE ssoprobe_exporter_runs_total counter\nssoprobe_exporter_runs_total {}\n\
# HELP ssoprobe_exporter_run_failures_total Target runs with a failing check.\n# TYPE ssoprobe_exporter_run_failures_total counter\nssoprobe_exporter_run_failures_total {}\n\
# HELP ssoprobe_exporter_cached_probes_total Probes answered with a recent result (minimum login interval).\n# TYPE ssoprobe_exporter_cached_probes_total counter\nssoprobe_exporter_cached_probes_total {}\n\
# HELP ssoprobe_exporter_probes_not_run_total Probes answered without a run: the scrape timeout ran out while they waited.\n# TYPE ssoprobe_exporter_probes_not_run_total counter\nssoprobe_exporter_probes_not_run_total {}\n\
# HELP ssoprobe_exporter_runs_in_flight Target runs under way.\n# TYPE ssoprobe_exporter_runs_in_flight gauge\nssoprobe_exporter_runs_in_flight {}\n\
# HELP ssoprobe_exporter_connections_open HTTP connections open.\n# TYPE ssoprobe_exporter_connections_open gauge\nssoprobe_exporter_connections_open {}\n\
# HELP ssoprobe_exporter_connections_evicted_total Idle connections closed to make room for a new one (connection limit).\n# TYPE ssoprobe_exporter_connections_evicted_total counter\nssoprobe_exporter_connections_evicted_total {}\n\
# HELP ssoprobe_exporter_connections_refused_total Connections refused because every open one had a request under way.\n# TYPE ssoprobe_exporter_connections_refused_total counter\nssoprobe_exporter_connections_refused_total {}\n\
# HELP ssoprobe_exporter_uptime_seconds Seconds since the exporter started.\n# TYPE ssoprobe_exporter_uptime_seconds gauge\nssoprobe_exporter_uptime_seconds {:.3}\n",
        env!("CARGO_PKG_VERSION"),
        exporter.targets.len(),
        exporter.runs_total.load(Ordering::Relaxed),
        exporter.failures_total.load(Ordering::Relaxed),
        exporter.cached_total.load(Ordering::Relaxed),
        exporter.not_run_total.load(Ordering::Relaxed),
        exporter.runs_in_flight(),
        exporter.connections.open(),
        exporter.connections.evicted_total.load(Ordering::Relaxed),
        exporter.connections.refused_total.load(Ordering::Relaxed),
        exporter.started.elapsed().as_secs_f64()
    );
    text(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_scrape_timeouts_are_clamped_or_ignored() {
        let budget = |s: &str| scrape_budget(Some(&HeaderValue::from_str(s).unwrap()));
        for garbage in [
            "NaN", "inf", "-inf", "-5", "0", "-0", "abc", "", "0x10", "1,5",
        ] {
            assert_eq!(budget(garbage), None, "{garbage:?}");
        }
        for huge in ["1e20", "1e308", "1.7976931348623157e308", "301", "86400"] {
            assert_eq!(budget(huge), Some(MAX_SCRAPE), "{huge:?}");
        }
        for tiny in ["1e-300", "0.1", "0.5", "1"] {
            assert_eq!(budget(tiny), Some(MIN_SCRAPE), "{tiny:?}");
        }
        assert_eq!(budget(" 10 "), Some(Duration::from_millis(9500)));
        assert_eq!(scrape_budget(None), None);
        assert_eq!(
            scrape_budget(Some(&HeaderValue::from_bytes(b"\xff\xfe").unwrap())),
            None
        );
    }

    #[tokio::test]
    async fn listen_takes_blackbox_exporters_port_forms() {
        let every = |port: u16| {
            vec![
                SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)),
                SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port)),
            ]
        };
        // `:PORT` is every interface, as blackbox_exporter's `:9115`.
        assert_eq!(
            resolve_listen(":9797", "--listen").await.unwrap(),
            every(9797)
        );
        assert_eq!(resolve_listen(":0", "--listen").await.unwrap(), every(0));
        // A bare port keeps the default's loopback address.
        assert_eq!(
            resolve_listen("9797", "--listen").await.unwrap(),
            vec![SocketAddr::from(([127, 0, 0, 1], 9797))]
        );
        assert_eq!(
            resolve_listen("0.0.0.0:9797", "--listen").await.unwrap(),
            vec![SocketAddr::from(([0, 0, 0, 0], 9797))]
        );
        assert_eq!(
            resolve_listen("[::1]:9797", "--listen").await.unwrap(),
            vec![SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 9797))]
        );
        for bad in [
            ":",
            ":x",
            ":65536",
            ": 80",
            ":+80",
            "65536",
            "+80",
            "-1",
            "99999999999",
            "",
        ] {
            let Err(AppError::Usage(why)) = resolve_listen(bad, "--listen").await else {
                panic!("{bad:?} accepted");
            };
            assert!(why.starts_with("--listen: '"), "{why}");
        }
    }

    #[tokio::test]
    async fn every_interface_takes_ipv4_and_ipv6() {
        let addrs = resolve_listen(":0", "--listen").await.unwrap();
        let listener = bind(&addrs).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = tokio::spawn(async move {
            for _ in 0..2 {
                let _ = listener.accept().await.unwrap();
            }
        });
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("IPv4 reaches :PORT");
        // A machine without IPv6 binds 0.0.0.0 instead; with it, ::1 reaches the port too.
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            tokio::net::TcpStream::connect(("::1", port))
                .await
                .expect("IPv6 reaches :PORT");
        } else {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
        }
        accept.await.unwrap();
    }
}

/// A target probed again: the team and Pocket ID its last run found are asked for at
/// once, and never trusted (see `checks::run_found_after`).
#[cfg(all(test, feature = "lab"))]
mod found_before {
    use crate::checks::{self, Found, FoundValue};
    use crate::cli::{Cli, Command};
    use crate::config::Config;
    use crate::finding::Status;
    use crate::http::Http;
    use clap::Parser;
    use ssoprobe_lab::{self as lab, Lab};

    /// The one-argument form against `lab`, with `more` arguments.
    fn one_argument(lab: &Lab, ca: &std::path::Path, more: &[String]) -> Config {
        let mut argv = vec![
            "ssoprobe".to_string(),
            "check".to_string(),
            format!("https://{}", lab::SERVICE_HOST),
            "--ca-file".to_string(),
            ca.display().to_string(),
        ];
        argv.extend(lab.route_args());
        argv.extend(more.iter().cloned());
        let Command::Check(args) = Cli::parse_from(argv).command else {
            panic!("not a check");
        };
        Config::targets_from_check_args(&args, &super::super::NoOrigins)
            .unwrap()
            .remove(0)
            .1
    }

    fn found(team: &str, idp: &str) -> Found {
        let from = "Access's redirect to it";
        Found {
            team: Some(FoundValue {
                value: team.to_string(),
                from,
            }),
            idp: Some(FoundValue {
                value: idp.to_string(),
                from,
            }),
            ..Found::default()
        }
    }

    fn team_domain() -> String {
        lab::TEAM_HOST.to_string()
    }

    async fn started_lab() -> (Lab, super::super::lab::TempFile) {
        let lab = Lab::start(super::super::lab::lab_config(&[], None, None, None).unwrap())
            .await
            .unwrap();
        let ca = super::super::lab::TempFile::write("ssoprobe-test-ca", lab.ca_pem()).unwrap();
        (lab, ca)
    }

    #[tokio::test]
    async fn pocket_id_found_before_is_asked_at_once_and_asked_once() {
        let (lab, ca) = started_lab().await;
        let config = one_argument(&lab, &ca.0, &[]);
        let mut http = Http::new(&config.http).unwrap();
        http.record_har();
        let last = found(&team_domain(), &format!("https://{}", lab::IDP_HOST));
        let (outcome, found) = checks::run_found_after(&config, &http, &last).await;
        assert_eq!(outcome.status(), Status::Pass, "{:?}", outcome.checks);
        assert_eq!(found.idp.unwrap().from, "Access's redirect to it");
        let entries = http.har_entries();
        let started = |check: &str| {
            let asked: Vec<_> = entries.iter().filter(|e| e.check == check).collect();
            assert_eq!(asked.len(), 1, "{check} asked {} times", asked.len());
            asked[0].started
        };
        // Discovery left before the team login did: it did not wait for the chain.
        assert!(started(checks::ids::IDP_DISCOVERY) < started(checks::ids::ACCESS_LOGIN));
        lab.shutdown().await;
    }

    #[tokio::test]
    async fn a_team_and_pocket_id_that_moved_are_not_trusted_nor_waited_for() {
        let (lab, ca) = started_lab().await;
        // Where the last run found them, a host that accepts and never answers.
        let tarpit = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tarpit.local_addr().unwrap().port();
        let routes: Vec<String> = ["old-team.cloudflareaccess.com", "old-id.example.com"]
            .iter()
            .flat_map(|h| {
                [
                    "--connect-to".to_string(),
                    format!("{h}:443:127.0.0.1:{port}"),
                ]
            })
            .collect();
        let mut routes = routes;
        // Answers that never come would be cut only by the run's deadline.
        routes.extend(["--timeout", "30s", "--deadline", "30s"].map(String::from));
        let config = one_argument(&lab, &ca.0, &routes);
        let http = Http::new(&config.http).unwrap();
        let last = found(
            "old-team.cloudflareaccess.com",
            "https://old-id.example.com",
        );
        let (outcome, found) = checks::run_found_after(&config, &http, &last).await;
        // The verdict is this run's, on the hosts its chain named, and the run ended
        // without the answers that never came: a run that waited for them would have
        // lasted until its deadline.
        assert_eq!(outcome.status(), Status::Pass, "{:?}", outcome.checks);
        assert!(
            outcome.duration < config.http.deadline / 2,
            "{:?}",
            outcome.duration
        );
        assert_eq!(found.team.unwrap().value, team_domain());
        assert_eq!(
            found.idp.unwrap().value,
            format!("https://{}", lab::IDP_HOST)
        );
        assert!(outcome.checks.iter().all(|c| c.id != checks::ids::RUN));
        lab.shutdown().await;
    }
}
