//! The record of admin API requests: every request to the Cloudflare API host and
//! every request to Pocket ID's `/api/*` that carries `X-API-Key`, as
//! [`Lab::api_requests`](crate::Lab::api_requests) lists them and
//! [`Lab::subscribe_api_requests`](crate::Lab::subscribe_api_requests) streams them.
//! Only the method, host, path (with its query) and status are kept: never a header, so
//! never a token or key.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

/// How many requests the log keeps (the oldest go first): a hostile client cannot
/// make it grow without bound.
const KEPT: usize = 4096;
/// How many requests a slow subscriber may fall behind before it misses some.
const CHANNEL: usize = 1024;
/// Paths longer than this are cut (on a character boundary) in the record.
const MAX_PATH: usize = 512;

/// One admin API request the lab answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The host it was sent to: [`CF_API_HOST`](crate::CF_API_HOST) or
    /// [`IDP_HOST`](crate::IDP_HOST).
    pub host: String,
    /// The request path and query.
    pub path: String,
    /// The status the lab answered with.
    pub status: u16,
}

/// The requests recorded so far, and the channel that streams new ones.
pub(super) struct ApiLog {
    kept: Mutex<VecDeque<ApiRequest>>,
    sender: broadcast::Sender<ApiRequest>,
}

impl ApiLog {
    pub(super) fn new() -> ApiLog {
        ApiLog {
            kept: Mutex::new(VecDeque::new()),
            sender: broadcast::channel(CHANNEL).0,
        }
    }

    fn push(&self, request: ApiRequest) {
        {
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            if kept.len() == KEPT {
                kept.pop_front();
            }
            kept.push_back(request.clone());
        }
        // Nobody listening is fine.
        let _ = self.sender.send(request);
    }

    /// Every request kept, oldest first.
    pub(super) fn requests(&self) -> Vec<ApiRequest> {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// A receiver of every request recorded from now on.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<ApiRequest> {
        self.sender.subscribe()
    }
}

/// What a recording layer records: the host it sits in front of, and whether only
/// Pocket ID's keyed API requests count.
#[derive(Clone)]
pub(super) struct Recorder {
    pub(super) log: Arc<ApiLog>,
    pub(super) host: &'static str,
    /// Record only `/api/*` requests that carry `X-API-Key` (Pocket ID).
    pub(super) keyed_api_only: bool,
}

/// Middleware: records the request with the status of its answer.
pub(super) async fn record(
    State(recorder): State<Recorder>,
    request: Request,
    next: Next,
) -> Response {
    let counts = !recorder.keyed_api_only
        || request.uri().path().starts_with("/api/") && request.headers().contains_key("x-api-key");
    if !counts {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_string();
    let mut path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_string(),
        |p| p.as_str().to_string(),
    );
    if path.len() > MAX_PATH {
        let mut end = MAX_PATH;
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        path.truncate(end);
    }
    let response = next.run(request).await;
    recorder.log.push(ApiRequest {
        method,
        host: recorder.host.to_string(),
        path,
        status: response.status().as_u16(),
    });
    response
}
