//! The one HTTP client of a run.
//!
//! Redirects are never followed by the client: every hop is a request of its own, so
//! that each can be checked, timed and traced. Cookies live in one jar per run, scoped
//! per host by the jar's RFC 6265 rules. Every request is bounded by the per-request
//! timeout and by what is left of the run's deadline; every body is read with a cap.

use crate::redact::{self, Secret};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use reqwest_cookie_store::CookieStoreMutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// Largest response body ssoprobe reads.
pub const BODY_CAP: usize = 1024 * 1024;
/// Most hops in any redirect chain.
pub const MAX_HOPS: usize = 10;
/// What ssoprobe calls itself on the wire.
pub const USER_AGENT: &str = concat!("ssoprobe/", env!("CARGO_PKG_VERSION"));

/// A host pinned to an address, from `--resolve` or `--connect-to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Host name as it appears in URLs (lower case).
    pub host: String,
    /// The port the route applies to in URLs.
    pub port: u16,
    /// Where connections for that host actually go.
    pub addr: SocketAddr,
}

/// Everything the client needs to know, taken from the validated configuration.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Whole-run deadline, counted from client creation.
    pub deadline: Duration,
    /// Pinned addresses.
    pub routes: Vec<Route>,
    /// Extra trust roots (DER).
    pub extra_roots: Vec<Vec<u8>>,
    /// Accept any certificate (the TLS checks still report on the chain).
    pub insecure: bool,
    /// Print every hop on stderr.
    pub trace: bool,
}

/// What a request wants back; decides the `Accept` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// `application/json`: Cloudflare then answers its own errors as JSON too.
    Json,
    /// A browser's `Accept`, for hops that serve pages.
    Html,
}

/// Why a request produced no usable response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// The request took longer than the per-request timeout.
    #[error("timed out after {}", human_duration(*.0))]
    Timeout(Duration),
    /// The run's deadline was reached.
    #[error("run deadline of {} reached", human_duration(*.0))]
    Deadline(Duration),
    /// The host name did not resolve.
    #[error("DNS lookup for {host} failed: {detail}")]
    Dns { host: String, detail: String },
    /// TCP connection failed.
    #[error("cannot connect to {host}: {detail}")]
    Connect { host: String, detail: String },
    /// The TLS handshake failed (certificate or protocol).
    #[error("TLS with {host} failed: {detail}")]
    Tls { host: String, detail: String },
    /// A redirect chain was longer than [`MAX_HOPS`].
    #[error("more than {MAX_HOPS} redirects")]
    TooManyRedirects,
    /// The body was larger than [`BODY_CAP`].
    #[error("response body larger than {} KiB", BODY_CAP / 1024)]
    BodyTooLarge,
    /// A redirect without a usable `Location`.
    #[error("redirect with an unusable Location header")]
    BadLocation,
    /// Anything else the transport reported.
    #[error("{0}")]
    Other(String),
}

impl HttpError {
    /// The likely cause and fix, in the operator's terms.
    pub fn hint(&self) -> String {
        let hint = match self {
            HttpError::Timeout(_) => Some(
                "the server accepted the connection but did not answer in time: check that the service behind the proxy is running and not overloaded (or raise --timeout)".into(),
            ),
            HttpError::Deadline(_) => Some(
                "earlier requests used up the whole run; look for slow checks above (or raise --deadline)".into(),
            ),
            HttpError::Dns { host, .. } => Some(format!(
                "check the DNS record for {host}, or pin it with --resolve {host}:443:ADDRESS"
            )),
            HttpError::Connect { host, .. } => Some(format!(
                "nothing accepts HTTPS connections for {host} at the address it resolves to; check the proxy or tunnel in front of it"
            )),
            HttpError::Tls { detail, .. } if detail.contains("not trusted") => Some(
                "if the certificate comes from an internal CA, pass it with --ca-file".into(),
            ),
            HttpError::Tls { .. } => Some("see the tls.* check of this host for the certificate details".into()),
            HttpError::TooManyRedirects => Some("a redirect loop: look at the hops with --trace".into()),
            HttpError::BodyTooLarge => Some(format!(
                "a page this large is not what the server should answer here (ssoprobe reads at most {} KiB); look at the answer with --trace, a proxy or captive portal may stand in front of it",
                BODY_CAP / 1024
            )),
            HttpError::BadLocation => Some(
                "the server's redirect has a Location that is not a URL; look at the hop with --trace and fix the proxy or application that sends it".into(),
            ),
            HttpError::Other(_) => None,
        };
        hint.unwrap_or_else(|| {
            "the request failed below HTTP; run again with --trace, and check the network path to the host".into()
        })
    }
}

/// One response, body read (capped).
#[derive(Debug)]
pub struct Response {
    /// The URL requested.
    pub url: Url,
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, at most [`BODY_CAP`] bytes.
    pub body: Vec<u8>,
    /// Time from sending to the end of the body.
    pub elapsed: Duration,
}

impl Response {
    /// A header's value as text, if present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// Whether the status is a redirect that carries a `Location`.
    pub fn is_redirect(&self) -> bool {
        self.status.is_redirection() && self.headers.contains_key(LOCATION)
    }

    /// The `Location` header resolved against the request URL.
    pub fn location(&self) -> Option<Result<Url, HttpError>> {
        let value = self.headers.get(LOCATION)?;
        Some(
            value
                .to_str()
                .ok()
                .and_then(|v| self.url.join(v).ok())
                .ok_or(HttpError::BadLocation),
        )
    }

    /// The names of the cookies this response sets (never their values).
    pub fn cookies_set(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split('=').next())
            .map(|n| n.trim().to_string())
            .collect()
    }

    /// Whether the content type is JSON.
    pub fn is_json(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.to_ascii_lowercase().contains("json"))
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    None,
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
    /// `application/json`.
    Json(serde_json::Value),
    /// `text/plain; charset=utf-8`.
    Text(String),
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Target.
    pub url: Url,
    /// What is expected back.
    pub accept: Accept,
    /// The body.
    pub body: Body,
    /// Extra headers; their values are secrets (API keys, tokens) and never traced.
    pub headers: Vec<(&'static str, Secret)>,
}

impl Request {
    /// A GET.
    pub fn get(url: Url, accept: Accept) -> Self {
        Request {
            method: Method::GET,
            url,
            accept,
            body: Body::None,
            headers: Vec::new(),
        }
    }

    /// A form POST.
    pub fn post_form(url: Url, form: Vec<(String, String)>) -> Self {
        Request {
            method: Method::POST,
            url,
            accept: Accept::Json,
            body: Body::Form(form),
            headers: Vec::new(),
        }
    }

    /// A request with a JSON body (or none) expecting JSON back.
    pub fn json(method: Method, url: Url, body: Option<serde_json::Value>) -> Self {
        Request {
            method,
            url,
            accept: Accept::Json,
            body: body.map_or(Body::None, Body::Json),
            headers: Vec::new(),
        }
    }

    /// Adds a header whose value is a secret.
    pub fn header(mut self, name: &'static str, value: &Secret) -> Self {
        self.headers.push((name, value.clone()));
        self
    }
}

/// A followed redirect chain.
#[derive(Debug)]
pub struct Chain {
    /// Every response but the last, in order.
    pub hops: Vec<Response>,
    /// The response the chain stopped at.
    pub last: Response,
}

/// The client of one run.
pub struct Http {
    client: reqwest::Client,
    jar: Arc<CookieStoreMutex>,
    timeout: Duration,
    deadline_total: Duration,
    deadline: Instant,
    trace: bool,
}

impl Http {
    /// Builds the client; the run's deadline starts now.
    pub fn new(options: &HttpOptions) -> Result<Http, HttpError> {
        let jar = Arc::new(CookieStoreMutex::default());
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .user_agent(USER_AGENT)
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .no_proxy();
        for route in &options.routes {
            builder = builder.resolve(&route.host, route.addr);
        }
        // One verifier for the process (system roots + --ca-file), shared with the TLS checks.
        let tls = crate::tls::client_config(&options.extra_roots, options.insecure)
            .map_err(HttpError::Other)?;
        builder = builder.use_preconfigured_tls(tls);
        let client = builder
            .build()
            .map_err(|e| HttpError::Other(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Http {
            client,
            jar,
            timeout: options.timeout,
            deadline_total: options.deadline,
            deadline: Instant::now() + options.deadline,
            trace: options.trace,
        })
    }

    /// The instant the run must end by.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The time budget for one step: the per-request timeout or what is left of the
    /// deadline, whichever is shorter, with the error to report when it runs out.
    pub fn budget(&self) -> (Duration, HttpError) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < self.timeout {
            (left, HttpError::Deadline(self.deadline_total))
        } else {
            (self.timeout, HttpError::Timeout(self.timeout))
        }
    }

    /// Sends one request (no redirect following) and reads the body with the cap.
    pub async fn send(&self, check: &str, request: Request) -> Result<Response, HttpError> {
        let (budget, on_timeout) = self.budget();
        if budget.is_zero() {
            return Err(on_timeout);
        }
        if self.trace {
            let cookies = self.cookie_names_for(&request.url);
            let cookies = if cookies.is_empty() {
                String::new()
            } else {
                format!("  cookies: {}", cookies.join(", "))
            };
            eprintln!(
                "[trace] {check:<22} → {} {}{cookies}",
                request.method,
                redact::url(&request.url)
            );
        }
        let started = Instant::now();
        let url = request.url.clone();
        let result = tokio::time::timeout(budget, self.exchange(request)).await;
        let result = match result {
            Ok(r) => r,
            Err(_) => Err(on_timeout),
        };
        let elapsed = started.elapsed();
        match &result {
            Ok(response) if self.trace => {
                let mut line = format!(
                    "[trace] {check:<22} ← {} in {} ms",
                    response.status.as_u16(),
                    elapsed.as_millis()
                );
                if let Some(Ok(location)) = response.location() {
                    line.push_str(&format!("  location: {}", redact::url(&location)));
                }
                let set = response.cookies_set();
                if !set.is_empty() {
                    line.push_str(&format!("  set-cookie: {}", set.join(", ")));
                }
                eprintln!("{line}");
            }
            Err(e) if self.trace => {
                eprintln!(
                    "[trace] {check:<22} ✘ {} after {} ms: {e}",
                    redact::url(&url),
                    elapsed.as_millis()
                );
            }
            _ => {}
        }
        result
    }

    async fn exchange(&self, request: Request) -> Result<Response, HttpError> {
        let started = Instant::now();
        let host = request.url.host_str().unwrap_or_default().to_string();
        let accept = match request.accept {
            Accept::Json => "application/json",
            Accept::Html => "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
        };
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.clone())
            .header(ACCEPT, accept);
        match &request.body {
            Body::None => {}
            Body::Form(form) => {
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish();
                builder = builder
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body);
            }
            Body::Json(value) => {
                builder = builder
                    .header(CONTENT_TYPE, "application/json")
                    .body(value.to_string());
            }
            Body::Text(text) => {
                builder = builder
                    .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(text.clone());
            }
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.expose());
        }
        let mut response = builder
            .send()
            .await
            .map_err(|e| classify(&host, &e, self.timeout))?;
        let status = response.status();
        let headers = response.headers().clone();
        if response
            .content_length()
            .is_some_and(|len| len > BODY_CAP as u64)
        {
            return Err(HttpError::BodyTooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| classify(&host, &e, self.timeout))?
        {
            if body.len() + chunk.len() > BODY_CAP {
                return Err(HttpError::BodyTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            url: request.url,
            status,
            headers,
            body,
            elapsed: started.elapsed(),
        })
    }

    /// GETs `url` and follows redirects hop by hop until `stop` says so, a response is
    /// not a redirect, or [`MAX_HOPS`] is exceeded.
    pub async fn follow(
        &self,
        check: &str,
        url: Url,
        accept: Accept,
        stop: impl Fn(&Response) -> bool,
    ) -> Result<Chain, HttpError> {
        let mut hops = Vec::new();
        let mut next = url;
        loop {
            let response = self.send(check, Request::get(next, accept)).await?;
            if !response.is_redirect() || stop(&response) {
                return Ok(Chain {
                    hops,
                    last: response,
                });
            }
            if hops.len() >= MAX_HOPS {
                return Err(HttpError::TooManyRedirects);
            }
            next = match response.location() {
                Some(Ok(u)) => u,
                _ => return Err(HttpError::BadLocation),
            };
            hops.push(response);
        }
    }

    /// The value of cookie `name` the jar would send to `url`.
    pub fn cookie_value(&self, url: &Url, name: &str) -> Option<Secret> {
        let store = self.jar.lock().ok()?;
        store
            .matches(url)
            .iter()
            .find(|c| c.name() == name)
            .map(|c| Secret::new(c.value()))
    }

    /// Names of the cookies the jar would send to `url`.
    pub fn cookie_names_for(&self, url: &Url) -> Vec<String> {
        match self.jar.lock() {
            Ok(store) => store
                .matches(url)
                .iter()
                .map(|c| c.name().to_string())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Turns a transport error into one sentence, walking the error chain the way an
/// operator would read it: DNS, connection, TLS, timeout.
fn classify(host: &str, error: &reqwest::Error, timeout: Duration) -> HttpError {
    if error.is_timeout() {
        return HttpError::Timeout(timeout);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut texts = Vec::new();
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return HttpError::Tls {
                host: host.into(),
                detail: crate::tls::describe_rustls_error(tls),
            };
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // The connector nests io::Errors around the rustls error, and io::Error's
            // source() skips the error it wraps: unwrap them by hand.
            let mut inner = io.get_ref();
            while let Some(i) = inner {
                if let Some(tls) = i.downcast_ref::<rustls::Error>() {
                    return HttpError::Tls {
                        host: host.into(),
                        detail: crate::tls::describe_rustls_error(tls),
                    };
                }
                inner = i.downcast_ref::<std::io::Error>().and_then(|n| n.get_ref());
            }
            use std::io::ErrorKind::*;
            let detail = match io.kind() {
                ConnectionRefused => Some("connection refused"),
                ConnectionReset => Some("connection reset"),
                ConnectionAborted => Some("connection aborted"),
                HostUnreachable => Some("host unreachable"),
                NetworkUnreachable => Some("network unreachable"),
                TimedOut => return HttpError::Timeout(timeout),
                _ => None,
            };
            if let Some(detail) = detail {
                return HttpError::Connect {
                    host: host.into(),
                    detail: detail.into(),
                };
            }
        }
        texts.push(e.to_string());
        source = e.source();
    }
    let joined = texts.join(": ");
    let lower = joined.to_ascii_lowercase();
    if lower.contains("dns error") || lower.contains("failed to lookup address") {
        let detail = texts.last().cloned().unwrap_or_default();
        return HttpError::Dns {
            host: host.into(),
            detail,
        };
    }
    if error.is_connect() {
        return HttpError::Connect {
            host: host.into(),
            detail: texts.last().cloned().unwrap_or_default(),
        };
    }
    HttpError::Other(texts.last().cloned().unwrap_or(joined))
}

/// "1.5 s", "250 ms", "10 s".
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
