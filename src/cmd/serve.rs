//! `ssoprobe serve`: a Prometheus multi-target exporter, in the manner of
//! blackbox_exporter. Prometheus schedules and stores; ssoprobe answers
//! `GET /probe?target=NAME` with that target's check in the Prometheus format plus
//! `probe_success` and `probe_duration_seconds`.
//!
//! Pocket ID rate-limits passkey logins, so a target with a passkey logs in at most once
//! per `--min-login-interval`: a scrape inside it gets the last result with its age, and
//! a scrape that arrives while a run is under way waits for that run instead of starting
//! a second login.

use super::{AppError, NoOrigins, wait_for_stop};
use crate::checks::{self, Outcome, Status};
use crate::config::{Config, Origin, OriginOf};
use crate::http::Http;
use crate::report::{self, Target, TargetRun};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// `ssoprobe serve`: validates the flags and runs the exporter until SIGTERM or Ctrl-C.
pub(crate) async fn run(
    args: &crate::cli::ServeArgs,
    origins: Option<&dyn OriginOf>,
) -> Result<u8, AppError> {
    let targets = Config::targets_from_check_args(&args.check, origins.unwrap_or(&NoOrigins))?;
    let listen: std::net::SocketAddr = args.listen.parse().map_err(|_| {
        AppError::Usage(format!(
            "--listen: '{}' is not ADDR:PORT, e.g. 127.0.0.1:9797",
            args.listen
        ))
    })?;
    if !listen.ip().is_loopback() {
        eprintln!(
            "warning: --listen {listen} is reachable from other machines; ssoprobe's endpoints carry no secrets, but anyone who reaches them can trigger logins"
        );
    }
    let min_login_interval = crate::config::parse_duration(
        "min_login_interval",
        &args.min_login_interval,
        &Origin::Flag,
    )?;
    let options = ServeOptions {
        listen,
        min_login_interval,
        concurrency: args.concurrency,
    };
    serve(targets, options, wait_for_stop())
        .await
        .map_err(|e| AppError::Io(e.to_string()))?;
    Ok(0)
}

/// How the exporter runs.
pub struct ServeOptions {
    /// Where to listen (loopback by default).
    pub listen: SocketAddr,
    /// Least time between two full logins of one target.
    pub min_login_interval: Duration,
    /// Most target runs at once.
    pub concurrency: usize,
}

/// The last result of a target.
struct Cached {
    text: String,
    success: bool,
    duration: Duration,
    at: Instant,
}

struct TargetState {
    name: String,
    config: Config,
    /// Held for the whole of a run: a second scrape waits, then reuses the result.
    last: Mutex<Option<Cached>>,
}

struct Exporter {
    targets: BTreeMap<String, Arc<TargetState>>,
    options: ServeOptions,
    runs: Semaphore,
    started: Instant,
    runs_total: AtomicU64,
    failures_total: AtomicU64,
    cached_total: AtomicU64,
    in_flight: AtomicU64,
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct ServeError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Runs the exporter until SIGTERM or Ctrl-C.
pub async fn serve(
    targets: Vec<(String, Config)>,
    options: ServeOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServeError {
            addr: options.listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(options.listen);
    let exporter = Arc::new(Exporter {
        targets: targets
            .into_iter()
            .map(|(name, config)| {
                (
                    name.clone(),
                    Arc::new(TargetState {
                        name,
                        config,
                        last: Mutex::new(None),
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
        in_flight: AtomicU64::new(0),
    });
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
    let app = Router::new()
        .route("/probe", get(probe))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { StatusCode::NO_CONTENT }))
        .with_state(exporter);
    // Small answers must not wait for a delayed ACK (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop.await;
            eprintln!("ssoprobe serve: stopping; runs in progress finish first");
        })
        .await
        .map_err(|source| ServeError {
            addr: local,
            source,
        })?;
    Ok(())
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

async fn probe(
    State(exporter): State<Arc<Exporter>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(name) = query.get("target") else {
        return text(StatusCode::BAD_REQUEST, "missing ?target=NAME\n".into());
    };
    let Some(state) = exporter.targets.get(name).cloned() else {
        let names = exporter
            .targets
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        return text(
            StatusCode::NOT_FOUND,
            format!(
                "unknown target '{}'; configured: {names}\n",
                name.replace(['\n', '\r'], " ")
            ),
        );
    };
    // Prometheus says how long it will wait; answer within it.
    let scrape_timeout = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| Duration::from_secs_f64((v - 0.5).max(0.5)));

    let mut last = state.last.lock().await;
    let login = state.config.passkey.is_some();
    if let Some(cached) = last.as_ref()
        && login
        && cached.at.elapsed() < exporter.options.min_login_interval
    {
        exporter.cached_total.fetch_add(1, Ordering::Relaxed);
        return text(
            StatusCode::OK,
            with_probe_metrics(cached, cached.at.elapsed()),
        );
    }
    let Ok(_permit) = exporter.runs.acquire().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
    };
    exporter.in_flight.fetch_add(1, Ordering::Relaxed);
    let mut config = state.config.clone();
    if let Some(limit) = scrape_timeout {
        config.http.deadline = config.http.deadline.min(limit);
        config.http.timeout = config.http.timeout.min(limit);
    }
    let started_unix = crate::timefmt::unix_now();
    let outcome = match Http::new(&config.http) {
        Ok(http) => checks::run(&config, &http).await,
        Err(e) => Outcome {
            checks: vec![checks::CheckResult::skip("service.redirect", e.to_string())],
            duration: Duration::ZERO,
        },
    };
    exporter.in_flight.fetch_sub(1, Ordering::Relaxed);
    exporter.runs_total.fetch_add(1, Ordering::Relaxed);
    let success = outcome.status() != Status::Fail && outcome.status() != Status::Skip;
    if !success {
        exporter.failures_total.fetch_add(1, Ordering::Relaxed);
    }
    let target = Target {
        service: config.service.to_string(),
        idp: config.idp.to_string(),
        team_domain: config.team_domain.clone(),
    };
    let rendered = report::prometheus::render(&[TargetRun {
        name: &state.name,
        target: &target,
        outcome: &outcome,
        started_unix,
    }]);
    let cached = Cached {
        text: rendered,
        success,
        duration: outcome.duration,
        at: Instant::now(),
    };
    let body = with_probe_metrics(&cached, Duration::ZERO);
    *last = Some(cached);
    text(StatusCode::OK, body)
}

/// blackbox_exporter's two metrics, and the age of a reused result, after the report.
fn with_probe_metrics(cached: &Cached, age: Duration) -> String {
    format!(
        "{}# HELP probe_success Whether the probe succeeded (no check failed).\n# TYPE probe_success gauge\nprobe_success {}\n# HELP probe_duration_seconds How long the probe's checks took.\n# TYPE probe_duration_seconds gauge\nprobe_duration_seconds {:.3}\n# HELP ssoprobe_result_age_seconds Age of this result: above 0 when a recent run was reused (minimum login interval).\n# TYPE ssoprobe_result_age_seconds gauge\nssoprobe_result_age_seconds {:.3}\n",
        cached.text,
        u8::from(cached.success),
        cached.duration.as_secs_f64(),
        age.as_secs_f64()
    )
}

async fn metrics(State(exporter): State<Arc<Exporter>>) -> Response {
    let body = format!(
        "# HELP ssoprobe_exporter_build_info ssoprobe's version.\n# TYPE ssoprobe_exporter_build_info gauge\nssoprobe_exporter_build_info{{version=\"{}\"}} 1\n\
# HELP ssoprobe_exporter_targets Configured targets.\n# TYPE ssoprobe_exporter_targets gauge\nssoprobe_exporter_targets {}\n\
# HELP ssoprobe_exporter_runs_total Target runs started by probes.\n# TYPE ssoprobe_exporter_runs_total counter\nssoprobe_exporter_runs_total {}\n\
# HELP ssoprobe_exporter_run_failures_total Target runs with a failing check.\n# TYPE ssoprobe_exporter_run_failures_total counter\nssoprobe_exporter_run_failures_total {}\n\
# HELP ssoprobe_exporter_cached_probes_total Probes answered with a recent result (minimum login interval).\n# TYPE ssoprobe_exporter_cached_probes_total counter\nssoprobe_exporter_cached_probes_total {}\n\
# HELP ssoprobe_exporter_runs_in_flight Target runs under way.\n# TYPE ssoprobe_exporter_runs_in_flight gauge\nssoprobe_exporter_runs_in_flight {}\n\
# HELP ssoprobe_exporter_uptime_seconds Seconds since the exporter started.\n# TYPE ssoprobe_exporter_uptime_seconds gauge\nssoprobe_exporter_uptime_seconds {:.3}\n",
        env!("CARGO_PKG_VERSION"),
        exporter.targets.len(),
        exporter.runs_total.load(Ordering::Relaxed),
        exporter.failures_total.load(Ordering::Relaxed),
        exporter.cached_total.load(Ordering::Relaxed),
        exporter.in_flight.load(Ordering::Relaxed),
        exporter.started.elapsed().as_secs_f64()
    );
    text(StatusCode::OK, body)
}
