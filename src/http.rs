//! The one HTTP client of a run.
//!
//! Redirects are never followed by the client: every hop is a request of its own, so
//! that each can be checked, timed and traced. Cookies live in one jar per run, scoped
//! per host by the jar's RFC 6265 rules. Every request is bounded by the per-request
//! timeout and by what is left of the run's deadline; every body is read with a cap.
//!
//! What a hostile server cannot make the client do:
//! - a pin (`--resolve`, `--connect-to`) captures only its own host and port, in the
//!   HTTP requests and in the `tls.*` checks alike ([`route_for`], one table for both);
//! - a cookie scoped to a public suffix (`Domain=com`, `co.uk`, `cloudflareaccess.com`)
//!   never enters the jar ([`Jar`]);
//! - a redirect from https to http is not followed ([`HttpError::InsecureRedirect`]);
//! - a request's secret headers go only to the scheme, host and port they were built
//!   for ([`Http::follow_request`]);
//! - no error text carries the server's control characters or unbounded length
//!   ([`server_text`]).

use crate::redact::{self, Secret};
use crate::text::server_text;
use crate::timefmt::human_duration;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderMap, HeaderValue, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use reqwest_cookie_store::{CookieStoreMutex, RawCookie};
use std::net::{IpAddr, SocketAddr};
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
/// A desktop browser's User-Agent, ssoprobe's own token at its end: for the requests
/// to a site whose Access tells browsers apart by it (Managed OAuth answers other
/// clients 401), so that the login is checked the way a browser gets it.
pub const BROWSER_USER_AGENT: &str = concat!(
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 ssoprobe/",
    env!("CARGO_PKG_VERSION")
);

/// A host and port pinned to an address, from `--resolve` or `--connect-to`, with
/// curl's meaning: the pin applies to requests for that host AND that port only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Host name as it appears in URLs (lower case); [`Route::ANY_HOST`] for any host.
    pub host: String,
    /// The port the route applies to in URLs; [`Route::ANY_PORT`] for any port.
    pub port: u16,
    /// Where connections for that host and port actually go.
    pub addr: SocketAddr,
    /// Which flag made it; decides precedence, as in curl.
    pub kind: RouteKind,
}

/// Which flag a [`Route`] comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RouteKind {
    /// `--resolve HOST:PORT:ADDR`: the last one given for a host and port wins, and one
    /// for the host by name wins over the wildcard `*`.
    #[default]
    Resolve,
    /// `--connect-to HOST:PORT:ADDR:PORT2`: the first one that matches wins, before any
    /// `--resolve` (curl applies it first, and its target is an address).
    ConnectTo,
}

impl Route {
    /// `host` of a route that applies to every host (curl's `*` and empty HOST).
    pub const ANY_HOST: &'static str = "*";
    /// `port` of a route that applies to every port (curl's empty PORT in --connect-to).
    pub const ANY_PORT: u16 = 0;

    /// Whether this route applies to a request for `host` (lower case) on `port`.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        (self.host == Self::ANY_HOST || self.host.eq_ignore_ascii_case(host))
            && (self.port == Self::ANY_PORT || self.port == port)
    }
}

/// The route for a request to `host` on `port`, if one applies: the one routing table
/// of the HTTP client and of the `tls.*` checks.
pub fn route_for<'a>(routes: &'a [Route], host: &str, port: u16) -> Option<&'a Route> {
    let host = host.trim_end_matches('.');
    if let Some(r) = routes
        .iter()
        .find(|r| r.kind == RouteKind::ConnectTo && r.matches(host, port))
    {
        return Some(r);
    }
    let resolve = || routes.iter().rev().filter(|r| r.kind == RouteKind::Resolve);
    resolve()
        .find(|r| r.host != Route::ANY_HOST && r.matches(host, port))
        .or_else(|| resolve().find(|r| r.matches(host, port)))
}

/// Everything the client needs to know, taken from the validated configuration.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Most time to set up a connection (TCP and TLS), at most `timeout`.
    pub connect_timeout: Duration,
    /// The site's host and port: the only place `site_headers` go.
    pub site: Option<(String, u16)>,
    /// Extra headers for the site (`--header`); their values are secrets.
    pub site_headers: Vec<(String, Secret)>,
    /// The origins the operator named (flags, environment, config file, passkey file):
    /// the only ones a request carrying a credential header may go to.
    pub credential_origins: Vec<url::Origin>,
    /// How the operator sets the run's deadline, for hints ("--deadline", "the scrape
    /// timeout").
    pub deadline_limit: &'static str,
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
    /// The proxies requests go through (none for a pinned host: [`proxy_for`]).
    pub proxies: crate::proxy::Proxies,
}

/// The proxy a request for `url` goes through: none when a pin (`--resolve`,
/// `--connect-to`) applies to its host and port — a pin names the address to connect
/// to — else the one [`crate::proxy::Proxies`] chooses. The one rule of the HTTP client
/// and of the `tls.*` checks' own handshakes.
pub fn proxy_for<'a>(
    routes: &[Route],
    proxies: &'a crate::proxy::Proxies,
    url: &Url,
) -> Option<&'a crate::proxy::Proxy> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(0);
    if route_for(routes, host, port).is_some() {
        return None;
    }
    proxies.for_url(url)
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
    /// The run's deadline was reached, while the request was under way (`cut`) or
    /// before it could be sent.
    #[error("{}", deadline_text(*total, *before, cut.as_ref()))]
    Deadline {
        /// The deadline.
        total: Duration,
        /// The request that had waited longest when it came: "idp.discovery's GET
        /// https://id.example.com/… (waiting 1.9 s)".
        culprit: Option<String>,
        /// The request under way that the deadline cut: the host it waited on and how
        /// long; `None` when it had not been sent.
        cut: Option<Cut>,
        /// How the operator sets the deadline ("--deadline", "the scrape timeout").
        limit: &'static str,
        /// How much of it went before the checks began (the demo's lab and
        /// enrolment, a start ping).
        before: Duration,
    },
    /// A request that would carry a credential to an origin the operator did not name.
    #[error("not sent: it would carry a credential to {origin}, which you did not name")]
    CredentialWithheld {
        /// The origin the request was for, printable.
        origin: String,
    },
    /// No connection (TCP and TLS) could be set up in time.
    #[error("no connection to {host} within {}", human_duration(*after))]
    ConnectTimeout {
        /// The host.
        host: String,
        /// The connect timeout.
        after: Duration,
    },
    /// The proxy the request went through failed it (or could not be reached).
    #[error("{0}")]
    Proxy(crate::proxy::ProxyFailure),
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
    /// A redirect from https to plain http, which is not followed: the request (its
    /// cookies, its headers) would cross the network in clear.
    #[error("the server redirects from https to http ({to}); ssoprobe does not follow it")]
    InsecureRedirect {
        /// The http URL the redirect points to, redacted and made printable.
        to: String,
    },
    /// Anything else the transport reported.
    #[error("{0}")]
    Other(String),
}

/// What the deadline cut: the host a request under way waited on, and how long.
#[derive(Debug, Clone)]
pub struct Cut {
    /// The host, printable.
    pub host: String,
    /// How long the request had waited.
    pub waited: Duration,
    /// Whether the host had completed a TLS handshake with this run's client.
    pub handshake: bool,
}

/// The words of a deadline error: the request it cut names its host and the wait
/// ("service.example.com sent nothing in 9.5 s"), not only the deadline.
fn deadline_text(total: Duration, before: Duration, cut: Option<&Cut>) -> String {
    let deadline = deadline_words(total, before);
    match cut {
        Some(cut) => format!(
            "{} sent no answer in {}{} ({deadline} ended the wait)",
            cut.host,
            human_duration(cut.waited),
            if cut.handshake {
                ""
            } else {
                ": no TLS handshake completed"
            }
        ),
        None => format!("not sent: {deadline} had passed"),
    }
}

/// "the run's deadline of 6 s", and — when a tenth of a second or more of it went
/// before the checks began — how much, so that the times add up to the wait.
pub fn deadline_words(total: Duration, before: Duration) -> String {
    if before >= Duration::from_millis(100) {
        format!(
            "the run's deadline of {}, {} of which went before the checks began,",
            human_duration(total),
            human_duration(before)
        )
    } else {
        format!("the run's deadline of {}", human_duration(total))
    }
}

impl HttpError {
    /// The likely cause and fix, in the operator's terms.
    pub fn hint(&self) -> String {
        let hint = match self {
            HttpError::Timeout(_) => Some(
                "the server accepted the connection but did not answer in time: check that the service behind the proxy is running and not overloaded (or raise --timeout)".into(),
            ),
            HttpError::Deadline { cut: Some(cut), limit, .. } => Some(format!(
                "{} {}: check that the service (and the proxy or tunnel in front of it) is running and not overloaded; if it is only slow, give the run more time ({limit})",
                cut.host,
                if cut.handshake {
                    "completed the TLS handshake but sent no HTTP answer"
                } else {
                    "completed no TLS handshake (a silent listener, a stalled proxy or tunnel, or packets dropped)"
                }
            )),
            HttpError::Deadline { culprit: Some(culprit), limit, .. } => Some(format!(
                "the deadline came while {culprit}: that server is slow to answer; find out why (its logs, the proxy in front of it), or give the run more time ({limit})"
            )),
            HttpError::Deadline { culprit: None, limit, .. } => Some(format!(
                "the requests of this run took longer than the whole deadline; run again with --trace to see which was slow, or give the run more time ({limit})"
            )),
            HttpError::CredentialWithheld { origin } => Some(format!(
                "ssoprobe sends a client secret, API key, service token or --header value only to an origin you named (a flag, the environment, the config file or the passkey file), never to one a redirect or a discovery document chose; if {origin} is really meant, name it (--idp {origin} for Pocket ID)"
            )),
            HttpError::ConnectTimeout { host, .. } => Some(format!(
                "nothing completed a connection for {host} in time: packets dropped by a firewall, a wrong address, or an overloaded proxy; check the DNS record or pin the address with --resolve (or raise --connect-timeout)"
            )),
            HttpError::Proxy(failure) => Some(failure.hint()),
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
                "the server's redirect has a Location that is not an http(s) URL; look at the hop with --trace and fix the proxy or application that sends it".into(),
            ),
            HttpError::InsecureRedirect { .. } => Some(
                "the server redirects from https to http, which would send cookies in clear: make it redirect to https (the application's external URL or base URL setting, or the proxy's HTTPS redirect)".into(),
            ),
            HttpError::Other(_) => None,
        };
        hint.unwrap_or_else(|| {
            "the request failed below HTTP; run again with --trace, and check the network path to the host".into()
        })
    }
}

/// The one rule for redirects, wherever they are followed: from https, only to https
/// (cookies and tokens would otherwise cross the network in clear).
pub fn refuse_downgrade(from: &Url, to: &Url) -> Result<(), HttpError> {
    if from.scheme() == "https" && to.scheme() != "https" {
        return Err(HttpError::InsecureRedirect {
            to: server_text(&redact::url(to)),
        });
    }
    Ok(())
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

    /// The `Location` header resolved against the request URL; an error unless it is
    /// an http or https URL with a host.
    pub fn location(&self) -> Option<Result<Url, HttpError>> {
        let value = self.headers.get(LOCATION)?;
        Some(
            value
                .to_str()
                .ok()
                .and_then(|v| self.url.join(v).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or(HttpError::BadLocation),
        )
    }

    /// The names of the cookies this response sets (never their values), printable.
    pub fn cookies_set(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split('=').next())
            .map(|n| server_text(n.trim()))
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
    /// Extra headers; their values are credentials (API keys, tokens): never traced,
    /// and sent only to an origin the operator named.
    pub headers: Vec<(&'static str, Secret)>,
    /// Another User-Agent than ssoprobe's (a request shaped like another client's).
    pub user_agent: Option<&'static str>,
    /// Off the critical path: may wait for the request that is opening a connection to
    /// the same host, to share that connection instead of opening one of its own.
    pub patient: bool,
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
            user_agent: None,
            patient: false,
        }
    }

    /// Marks the request as one that may share the connection another request to its
    /// host is opening (HTTP/2 carries both on it; HTTP/1.1 reuses it once idle).
    pub fn patient(mut self) -> Self {
        self.patient = true;
        self
    }

    /// A form POST.
    pub fn post_form(url: Url, form: Vec<(String, String)>) -> Self {
        Request {
            method: Method::POST,
            url,
            accept: Accept::Json,
            body: Body::Form(form),
            headers: Vec::new(),
            user_agent: None,
            patient: false,
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
            user_agent: None,
            patient: false,
        }
    }

    /// Adds a header whose value is a credential.
    pub fn header(mut self, name: &'static str, value: &Secret) -> Self {
        self.headers.push((name, value.clone()));
        self
    }

    /// Sends `agent` as the User-Agent instead of ssoprobe's.
    pub fn user_agent(mut self, agent: &'static str) -> Self {
        self.user_agent = Some(agent);
        self
    }

    /// Shaped like a browser's navigation: a browser's `Accept` and
    /// [`BROWSER_USER_AGENT`].
    pub fn like_browser(mut self) -> Self {
        self.accept = Accept::Html;
        self.user_agent(BROWSER_USER_AGENT)
    }

    /// [`Request::like_browser`] when `browser`, else the request as it is.
    pub fn like_browser_if(self, browser: bool) -> Self {
        if browser { self.like_browser() } else { self }
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

/// The cookie jar of a run: [`cookie_store`]'s RFC 6265 rules, plus the public-suffix
/// rule they leave to a list this jar brings (RFC 6265 §5.3 step 5): a cookie whose
/// `Domain` is a public suffix is refused, unless that suffix is the very host that set
/// it, where it becomes host-only. Without it a service could set `Domain=com` and the
/// jar would send that cookie to every `.com` host of the run.
///
/// Every cookie enters through [`reqwest::cookie::CookieStore::set_cookies`]: nothing
/// else in ssoprobe inserts into the jar.
#[derive(Debug, Default)]
pub struct Jar {
    store: CookieStoreMutex,
    trace: bool,
}

/// Parent domains that host many unrelated tenants but are not (or not yet) on the
/// public-suffix list: every Zero Trust team is `<team>.cloudflareaccess.com`.
const EXTRA_PUBLIC_SUFFIXES: &[&str] = &["cloudflareaccess.com"];

/// Whether `domain` (lower case, ASCII) is a public suffix: `com`, `co.uk`,
/// `github.io`, `cloudflareaccess.com`, or a name under no known suffix at all
/// (`localhost`, `internal`). IP addresses are not.
pub fn is_public_suffix(domain: &str) -> bool {
    let domain = domain.trim_matches('.');
    if domain.is_empty() {
        return true;
    }
    if domain.parse::<IpAddr>().is_ok() {
        return false;
    }
    EXTRA_PUBLIC_SUFFIXES.contains(&domain) || psl::suffix_str(domain) == Some(domain)
}

impl Jar {
    /// An empty jar; with `trace`, every refused cookie is named on stderr.
    pub fn new(trace: bool) -> Jar {
        Jar {
            store: CookieStoreMutex::default(),
            trace,
        }
    }

    /// The store, for reading.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, reqwest_cookie_store::CookieStore> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What may enter the jar of a `Set-Cookie` from `url`: the cookie, made host-only
    /// when its `Domain` is the public suffix that is the host itself; `None` when its
    /// `Domain` is a public suffix above the host.
    fn admit(&self, header: &HeaderValue, url: &Url) -> Option<RawCookie<'static>> {
        let text = std::str::from_utf8(header.as_bytes()).ok()?;
        let mut cookie = RawCookie::parse(text).ok()?.into_owned();
        let Some(domain) = cookie.domain().map(str::to_string) else {
            return Some(cookie);
        };
        let domain = domain.trim_matches('.').to_ascii_lowercase();
        // The jar compares in ASCII (IDNA) form; so does the list.
        let domain = match url::Host::parse(&domain) {
            Ok(url::Host::Domain(d)) => d,
            Ok(_) => return Some(cookie),
            Err(_) => domain,
        };
        if !is_public_suffix(&domain) {
            return Some(cookie);
        }
        let host = url.host_str().unwrap_or_default().trim_end_matches('.');
        if host.eq_ignore_ascii_case(&domain) {
            cookie.unset_domain();
            return Some(cookie);
        }
        if self.trace {
            eprintln!(
                "[trace] refused cookie {} from {}: Domain={} is a public suffix",
                server_text(cookie.name()),
                server_text(host),
                server_text(&domain)
            );
        }
        None
    }
}

tokio::task_local! {
    /// Set while [`without_cookies`] runs its future.
    static WITHOUT_COOKIES: ();
}

/// Runs `requests` with the run's cookie jar out of play: they carry no cookie and
/// store none. For API clients that authenticate with a key: Pocket ID reads a
/// session cookie before an API key, so a login's session would answer for the key.
pub async fn without_cookies<F: Future>(requests: F) -> F::Output {
    WITHOUT_COOKIES.scope((), requests).await
}

fn cookies_muted() -> bool {
    WITHOUT_COOKIES.try_with(|_| ()).is_ok()
}

impl reqwest::cookie::CookieStore for Jar {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        if cookies_muted() {
            return;
        }
        let admitted: Vec<RawCookie<'static>> =
            cookie_headers.filter_map(|h| self.admit(h, url)).collect();
        if !admitted.is_empty() {
            self.lock()
                .store_response_cookies(admitted.into_iter(), url);
        }
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        if cookies_muted() {
            return None;
        }
        let value = self
            .lock()
            .get_request_values(url)
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if value.is_empty() {
            return None;
        }
        HeaderValue::from_str(&value).ok()
    }
}

/// A resolver that answers every name with one address: the client of a route serves
/// only the requests that route applies to.
struct Pinned(SocketAddr);

impl reqwest::dns::Resolve for Pinned {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addr = self.0;
        Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as reqwest::dns::Addrs) })
    }
}

/// The `Accept` header of a request that wants `accept`.
fn accept_header(accept: Accept) -> &'static str {
    match accept {
        Accept::Json => "application/json",
        Accept::Html => "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
    }
}

/// What the transport tells about one exchange besides the response.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    /// Time from sending to the response's headers.
    pub headers_at: Duration,
    /// The server's address.
    pub remote: Option<SocketAddr>,
    /// The connection's local port.
    pub local_port: Option<u16>,
    /// The HTTP version spoken.
    pub version: reqwest::Version,
}

/// What the HAR archive records of an answered request: `response` and its exchange
/// in the archive's plain terms.
fn har_answer<'a>(response: &'a Response, exchange: &Exchange) -> crate::har::Answer<'a> {
    crate::har::Answer {
        version: match exchange.version {
            reqwest::Version::HTTP_2 => "HTTP/2",
            reqwest::Version::HTTP_10 => "HTTP/1.0",
            reqwest::Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        },
        url: &response.url,
        status: response.status.as_u16(),
        status_text: response.status.canonical_reason().unwrap_or(""),
        headers: response
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        content_type: response.header("content-type"),
        location: response.header("location"),
        body: &response.body,
        wait: exchange.headers_at,
        receive: response.elapsed.saturating_sub(exchange.headers_at),
        remote: exchange.remote.map(|a| a.ip()),
        local_port: exchange.local_port,
    }
}

/// The first request to a host is still under way (see `Http::opened`).
const OPENING: u8 = 0;
/// It was answered: its connection is open.
const ANSWERED: u8 = 1;
/// It failed or was cancelled.
const FAILED: u8 = 2;

/// The client of one run.
pub struct Http {
    /// For requests no route applies to (the system's resolver).
    client: reqwest::Client,
    /// One client per route, same order as `routes`: reqwest's own overrides know
    /// host names only, not ports, so each route gets a client whose resolver
    /// answers with that route's address, and is used only for its host and port.
    pinned: Vec<reqwest::Client>,
    routes: Vec<Route>,
    /// The proxies of requests no route applies to.
    proxies: crate::proxy::Proxies,
    jar: Arc<Jar>,
    timeout: Duration,
    connect_timeout: Duration,
    deadline_total: Duration,
    /// How much of the deadline went before this client was made (the demo's lab and
    /// enrolment, a start ping).
    deadline_before: Duration,
    deadline: Instant,
    deadline_limit: &'static str,
    credential_origins: Vec<url::Origin>,
    trace: bool,
    site: Option<(String, u16)>,
    site_headers: Vec<(reqwest::header::HeaderName, Secret)>,
    waits: Arc<Waits>,
    /// Per host and port: how the first request there has ended ([`OPENING`],
    /// [`ANSWERED`]: its connection is then open for others to share, [`FAILED`]).
    opened: std::sync::Mutex<
        std::collections::HashMap<(String, u16), tokio::sync::watch::Receiver<u8>>,
    >,
    /// The certificate chains the client was shown, for the `tls.*` checks.
    handshakes: Arc<crate::tls::Handshakes>,
    /// Every exchange, redacted, when the run writes a HAR archive.
    har: Option<Arc<crate::har::Recorder>>,
    /// Answers asked for ahead of the check that reads them, by URL, each taken once
    /// ([`Http::prefetch`]).
    prefetched: std::sync::Mutex<Vec<(Url, Prefetched)>>,
}

/// An answer asked for ahead of its check.
type Prefetched = tokio::sync::oneshot::Receiver<Result<Response, HttpError>>;

/// The requests of a run: those under way (for the progress line, and to name the one
/// the deadline caught) and the slowest one done.
#[derive(Debug, Default)]
pub struct Waits {
    state: std::sync::Mutex<WaitState>,
}

#[derive(Debug, Default)]
struct WaitState {
    next: u64,
    running: Vec<Wait>,
    slowest_done: Option<(Wait, Duration)>,
}

/// One request under way.
#[derive(Debug, Clone)]
pub struct Wait {
    id: u64,
    /// The check that sent it.
    pub check: String,
    /// Method and URL, redacted and printable.
    pub what: String,
    /// When it was sent.
    pub since: Instant,
}

impl Waits {
    /// Records a request (or handshake) under way until the guard is dropped.
    pub fn begin(self: &Arc<Self>, check: &str, host: &str, what: String) -> WaitGuard {
        let since = Instant::now();
        let entry = self.state.lock().ok().map(|mut state| {
            state.next += 1;
            let id = state.next;
            state.running.push(Wait {
                id,
                check: check.to_string(),
                what,
                since,
            });
            (self.clone(), id)
        });
        WaitGuard {
            entry,
            host: host.to_string(),
            since,
        }
    }

    /// The request that has been waiting longest, if any is under way.
    pub fn longest(&self) -> Option<Wait> {
        let state = self.state.lock().ok()?;
        state.running.iter().min_by_key(|w| w.since).cloned()
    }

    /// What the deadline caught: the request `own` when it was under way (it was cut),
    /// else the longest wait under way, else the slowest request done.
    fn culprit(&self, own: Option<&WaitGuard>) -> Option<String> {
        let state = self.state.lock().ok()?;
        let own = own
            .and_then(|g| g.entry.as_ref())
            .and_then(|(_, id)| state.running.iter().find(|w| w.id == *id));
        if let Some(w) = own.or_else(|| state.running.iter().min_by_key(|w| w.since)) {
            return Some(format!(
                "{} was waiting {} for {}",
                w.check,
                human_duration(w.since.elapsed()),
                w.what
            ));
        }
        state.slowest_done.as_ref().map(|(w, took)| {
            format!(
                "{}'s {} had waited {} (the run's slowest request)",
                w.check,
                w.what,
                human_duration(*took)
            )
        })
    }
}

/// Ends a [`Wait`] when the request ends or is dropped (a timeout cancels it).
pub struct WaitGuard {
    /// Its place among the waits under way (none if that list was poisoned).
    entry: Option<(Arc<Waits>, u64)>,
    /// The host it waits on.
    host: String,
    /// When it began.
    since: Instant,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        let Some((waits, id)) = self.entry.take() else {
            return;
        };
        let Ok(mut state) = waits.state.lock() else {
            return;
        };
        if let Some(i) = state.running.iter().position(|w| w.id == id) {
            let wait = state.running.swap_remove(i);
            let took = wait.since.elapsed();
            if state.slowest_done.as_ref().is_none_or(|(_, t)| took > *t) {
                state.slowest_done = Some((wait, took));
            }
        }
    }
}

impl Http {
    /// Builds the client; the run's deadline starts now.
    pub fn new(options: &HttpOptions) -> Result<Http, HttpError> {
        Http::new_until(
            options,
            Instant::now() + options.deadline,
            Arc::new(Waits::default()),
        )
    }

    /// Builds the client for a run that must end by `deadline` (counted from before
    /// the client existed: a start ping, a lab, an enrolment), recording its requests
    /// in `waits` (which a progress line may share).
    pub fn new_until(
        options: &HttpOptions,
        deadline: Instant,
        waits: Arc<Waits>,
    ) -> Result<Http, HttpError> {
        let site_headers = options
            .site_headers
            .iter()
            .map(|(name, value)| {
                reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map(|n| (n, value.clone()))
                    .map_err(|_| HttpError::Other(format!("'{name}' is not a header name")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let jar = Arc::new(Jar::new(options.trace));
        // One verifier for the process (system roots + --ca-file), shared with the TLS checks.
        let handshakes = Arc::new(crate::tls::Handshakes::default());
        let tls =
            crate::tls::client_config(&options.extra_roots, options.insecure, handshakes.clone())
                .map_err(HttpError::Other)?;
        let build = |pin: Option<SocketAddr>| {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_provider(jar.clone())
                .user_agent(USER_AGENT)
                .timeout(options.timeout)
                .connect_timeout(options.connect_timeout.min(options.timeout))
                .pool_idle_timeout(Duration::from_secs(30))
                .no_proxy()
                .tls_backend_preconfigured(tls.clone());
            if let Some(addr) = pin {
                builder = builder.dns_resolver(Pinned(addr));
            } else if !options.proxies.is_empty() {
                // A pinned host is reached at its pin, directly; every other request
                // asks the run's proxies (curl's variables and ssoprobe's settings).
                let proxies = options.proxies.clone();
                builder = builder.proxy(reqwest::Proxy::custom(move |url| {
                    proxies.for_url(url).map(|p| p.client_url())
                }));
            }
            builder
                .build()
                .map_err(|e| HttpError::Other(format!("cannot set up the HTTP client: {e}")))
        };
        let client = build(None)?;
        let pinned = options
            .routes
            .iter()
            .map(|r| build(Some(r.addr)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Http {
            client,
            pinned,
            routes: options.routes.clone(),
            proxies: options.proxies.clone(),
            jar,
            timeout: options.timeout,
            connect_timeout: options.connect_timeout.min(options.timeout),
            deadline_total: options.deadline,
            deadline_before: options
                .deadline
                .saturating_sub(deadline.saturating_duration_since(Instant::now())),
            deadline_limit: options.deadline_limit,
            credential_origins: options.credential_origins.clone(),
            deadline,
            trace: options.trace,
            site: options.site.clone(),
            site_headers,
            waits,
            opened: std::sync::Mutex::new(std::collections::HashMap::new()),
            handshakes,
            har: None,
            prefetched: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Sends `request` for `check` now, ahead of the check: the check's own `send` of
    /// the same anonymous GET (same URL, no credential) takes this answer instead of
    /// asking again. Run it beside the checks; an answer no check takes is dropped.
    /// The caller decides only *when* a request goes: the check still judges the
    /// answer, and asks for itself if its URL turned out to be another.
    pub fn prefetch<'a>(
        &'a self,
        check: &'a str,
        request: Request,
    ) -> impl Future<Output = ()> + 'a {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let shareable = request.method == Method::GET
            && request.headers.is_empty()
            && request.user_agent.is_none();
        if shareable && let Ok(mut list) = self.prefetched.lock() {
            list.push((request.url.clone(), rx));
        }
        async move {
            if shareable {
                let _ = tx.send(self.send_now(check, request).await);
            }
        }
    }

    /// The prefetched answer to an anonymous GET of `url`, if one was asked for (a
    /// request shaped like another client's, by its User-Agent, asks for itself).
    fn take_prefetched(&self, request: &Request) -> Option<Prefetched> {
        if request.method != Method::GET
            || !request.headers.is_empty()
            || request.user_agent.is_some()
        {
            return None;
        }
        let mut list = self.prefetched.lock().ok()?;
        let i = list.iter().position(|(u, _)| *u == request.url)?;
        Some(list.swap_remove(i).1)
    }

    /// Records every exchange from now on, redacted, for a HAR archive.
    pub fn record_har(&mut self) {
        self.har = Some(Arc::default());
    }

    /// The recorded exchanges (none unless [`Http::record_har`] was called).
    pub fn har_entries(&self) -> Vec<crate::har::Entry> {
        self.har.as_ref().map(|h| h.entries()).unwrap_or_default()
    }

    /// The request's side of a HAR entry: what goes out, redacted.
    fn har_request(&self, request: &Request) -> serde_json::Value {
        use crate::har;
        let url = &request.url;
        let mut headers: Vec<(String, String)> = vec![
            (
                "User-Agent".into(),
                request.user_agent.unwrap_or(USER_AGENT).into(),
            ),
            ("Accept".into(), accept_header(request.accept).into()),
        ];
        let (mime, text) = match &request.body {
            Body::None => (None, None),
            Body::Form(form) => (
                Some("application/x-www-form-urlencoded"),
                Some(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(form)
                        .finish(),
                ),
            ),
            Body::Json(value) => (Some("application/json"), Some(value.to_string())),
            Body::Text(text) => (Some("text/plain; charset=utf-8"), Some(text.clone())),
        };
        if let Some(m) = mime {
            headers.push(("Content-Type".into(), m.into()));
        }
        for (name, value) in &request.headers {
            // Every value set here is a credential: fingerprinted.
            headers.push((name.to_string(), crate::redact::fingerprint(value.expose())));
        }
        if !self.site_headers_for(url).is_empty() {
            for (name, value) in &self.site_headers {
                headers.push((name.to_string(), crate::redact::fingerprint(value.expose())));
            }
        }
        let cookies: Vec<(String, String)> = if crate::http::cookies_muted() {
            Vec::new()
        } else {
            self.jar
                .lock()
                .get_request_values(url)
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        if !cookies.is_empty() {
            headers.push((
                "Cookie".into(),
                cookies
                    .iter()
                    .map(|(n, _)| format!("{n}=…"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        let mut value = serde_json::json!({
            "method": request.method.as_str(),
            "url": har::uri(&crate::redact::url(url)),
            "httpVersion": "HTTP/1.1",
            "cookies": har::request_cookies(&cookies),
            "headers": har::headers(&headers, url),
            "queryString": har::query_string(url),
            "headersSize": -1,
            "bodySize": text.as_ref().map_or(0, |t| t.len() as i64),
        });
        if let (Some(mime), Some(text)) = (mime, text) {
            let (shown, _) = har::body(text.as_bytes(), mime);
            let mut post = serde_json::json!({"mimeType": mime, "text": shown.unwrap_or_default()});
            if mime.starts_with("application/x-www-form-urlencoded") {
                post["params"] = har::params(&text);
            }
            value["postData"] = post;
        }
        value
    }

    /// The certificate chains this client was shown, by host.
    pub fn handshakes(&self) -> &crate::tls::Handshakes {
        &self.handshakes
    }

    /// Resolves when the first request to `host`:`port` has ended (answered, failed or
    /// cancelled); `None` when no request went there yet.
    pub fn first_request_done(
        &self,
        host: &str,
        port: u16,
    ) -> Option<impl Future<Output = ()> + use<>> {
        let mut rx = self
            .opened
            .lock()
            .ok()?
            .get(&(host.to_ascii_lowercase(), port))?
            .clone();
        Some(async move {
            let _ = rx.wait_for(|state| *state != OPENING).await;
        })
    }

    /// The first request to a host opens its connection: it returns the sender to
    /// signal how it ended. A patient request to a host whose first request is still
    /// under way waits for that (within `budget`), and learns whether it was answered
    /// (`Some(true)`: the connection is open) or not.
    async fn share_connection(
        &self,
        url: &Url,
        patient: bool,
        budget: Duration,
    ) -> (Option<tokio::sync::watch::Sender<u8>>, Option<bool>) {
        let key = (
            url.host_str().unwrap_or_default().to_ascii_lowercase(),
            url.port_or_known_default().unwrap_or(0),
        );
        let waiting = {
            let Ok(mut opened) = self.opened.lock() else {
                return (None, None);
            };
            match opened.get(&key) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = tokio::sync::watch::channel(OPENING);
                    opened.insert(key, rx);
                    return (Some(tx), None);
                }
            }
        };
        if !patient {
            return (None, None);
        }
        let mut waiting = waiting;
        // A dropped opener (cancelled) ends the wait too, as not answered.
        let ended = tokio::time::timeout(budget, waiting.wait_for(|state| *state != OPENING))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|state| *state == ANSWERED);
        (None, Some(ended.unwrap_or(false)))
    }

    /// The requests of this run under way.
    pub fn waits(&self) -> &Arc<Waits> {
        &self.waits
    }

    /// The error of a request the deadline stopped before it began, naming what was
    /// waiting then.
    pub fn deadline_error(&self) -> HttpError {
        self.deadline_error_for(None)
    }

    /// The error of the request `own` (under way) that the deadline cut.
    pub fn deadline_error_for(&self, own: Option<&WaitGuard>) -> HttpError {
        let cut = own.map(|g| Cut {
            handshake: self.handshakes.report(&g.host).is_some(),
            host: server_text(&g.host),
            waited: g.since.elapsed(),
        });
        HttpError::Deadline {
            total: self.deadline_total,
            before: self.deadline_before,
            culprit: self.waits.culprit(own),
            cut,
            limit: self.deadline_limit,
        }
    }

    /// The most a connection (TCP and TLS) may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Where a connection for `host` on `port` goes when a route applies to it: the
    /// same answer the HTTP requests follow, for the `tls.*` checks.
    pub fn route(&self, host: &str, port: u16) -> Option<SocketAddr> {
        route_for(&self.routes, host, port).map(|r| r.addr)
    }

    /// The proxy a request for `url` goes through, if any ([`proxy_for`]).
    pub fn proxy_for(&self, url: &Url) -> Option<&crate::proxy::Proxy> {
        proxy_for(&self.routes, &self.proxies, url)
    }

    /// The instant the run must end by.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// How the operator sets the run's deadline ("--deadline", "the scrape timeout").
    pub fn deadline_limit(&self) -> &'static str {
        self.deadline_limit
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The time budget for one step: the per-request timeout or what is left of the
    /// deadline, whichever is shorter, with the error to report when it runs out.
    pub fn budget(&self) -> (Duration, HttpError) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        // At a tie the deadline is what ends the wait: its finding names the limit.
        if left <= self.timeout {
            (left, self.deadline_error())
        } else {
            (self.timeout, HttpError::Timeout(self.timeout))
        }
    }

    /// Sends one request (no redirect following) and reads the body with the cap.
    pub async fn send(&self, check: &str, request: Request) -> Result<Response, HttpError> {
        // Rule: a credential (client secret, API key, service token, Cloudflare token)
        // goes only to an origin the operator named — never to one a redirect, a
        // discovery document or the site's chain chose. The checks skip such a request
        // with their own words first; this is the one place that makes it impossible.
        let origin = request.url.origin();
        if !request.headers.is_empty() && !self.credential_origins.contains(&origin) {
            let origin = server_text(&origin.ascii_serialization());
            if self.trace {
                eprintln!(
                    "[trace] {check:<22} ✘ {origin}: not sent: it would carry a credential to an origin you did not name"
                );
            }
            return Err(HttpError::CredentialWithheld { origin });
        }
        if let Some(answer) = self.take_prefetched(&request)
            && let Ok(answer) = answer.await
        {
            return answer;
        }
        self.send_now(check, request).await
    }

    /// [`Http::send`] without looking for a prefetched answer (the credential rule has
    /// been applied).
    async fn send_now(&self, check: &str, request: Request) -> Result<Response, HttpError> {
        let (budget, on_timeout) = self.budget();
        if budget.is_zero() {
            return Err(on_timeout);
        }
        if self.trace {
            // What the jar sends: nothing while it is out of play (`without_cookies`).
            let cookies = if cookies_muted() {
                Vec::new()
            } else {
                self.cookie_names_for(&request.url)
            };
            let cookies = if cookies.is_empty() {
                String::new()
            } else {
                format!("  cookies: {}", cookies.join(", "))
            };
            let extra = self.site_headers_for(&request.url);
            let extra = if extra.is_empty() {
                String::new()
            } else {
                // Names only: the values may be secrets.
                format!("  headers: {}", extra.join(", "))
            };
            // The proxy, credentials hidden.
            let via = self
                .proxy_for(&request.url)
                .map(|p| format!("  via proxy {}", p.shown()))
                .unwrap_or_default();
            eprintln!(
                "[trace] {check:<22} → {} {}{cookies}{extra}{via}",
                request.method,
                redact::url(&request.url)
            );
        }
        let started = Instant::now();
        let started_wall = std::time::SystemTime::now();
        let (opener, opener_answered) = self
            .share_connection(&request.url, request.patient, budget)
            .await;
        let (budget, on_timeout) = self.budget();
        if budget.is_zero() {
            return Err(on_timeout);
        }
        // When the request another one opened the host's connection with got no answer,
        // the wait for it is part of this request's timeout: a host that answers
        // nothing costs --timeout once, not twice. After an answer (the connection is
        // open, the host merely slow) this request gets its own whole timeout.
        let waited = if opener_answered == Some(true) {
            Duration::ZERO
        } else {
            started.elapsed()
        };
        let own_left = self.timeout.saturating_sub(waited);
        let (budget, on_timeout) = if own_left < budget {
            (own_left, HttpError::Timeout(self.timeout))
        } else {
            (budget, on_timeout)
        };
        let har_request = self.har.as_ref().map(|_| self.har_request(&request));
        let har_proxy = self
            .har
            .as_ref()
            .and_then(|_| self.proxy_for(&request.url))
            .map(|p| p.shown());
        let url = request.url.clone();
        // The request by its path alone: a query is long and may carry state.
        let mut bare = request.url.clone();
        bare.set_query(None);
        bare.set_fragment(None);
        let wait = self.waits.begin(
            check,
            url.host_str().unwrap_or_default(),
            format!("{} {}", request.method, server_text(&redact::url(&bare))),
        );
        // Nothing left of it after the wait: the request is not sent.
        let result = if budget.is_zero() {
            None
        } else {
            tokio::time::timeout(budget, self.exchange(request))
                .await
                .ok()
        };
        let result = match result {
            Some(Ok((response, meta))) => {
                if let (Some(har), Some(req)) = (&self.har, har_request.clone()) {
                    har.push(
                        crate::har::Entry::answered(
                            check,
                            started_wall,
                            req,
                            har_answer(&response, &meta),
                        )
                        .via(har_proxy.clone()),
                    );
                }
                Ok(response)
            }
            Some(Err(e)) => Err(e),
            // Named while this request still counts as waiting.
            None if matches!(on_timeout, HttpError::Deadline { .. }) => {
                Err(self.deadline_error_for(Some(&wait)))
            }
            None => Err(on_timeout),
        };
        drop(wait);
        if let (Err(e), Some(har), Some(req)) = (&result, &self.har, har_request) {
            har.push(
                crate::har::Entry::failed(
                    check,
                    started_wall,
                    req,
                    &e.to_string(),
                    started.elapsed(),
                )
                .via(har_proxy),
            );
        }
        if let Some(opener) = opener {
            let _ = opener.send(if result.is_ok() { ANSWERED } else { FAILED });
        }
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

    async fn exchange(&self, request: Request) -> Result<(Response, Exchange), HttpError> {
        let started = Instant::now();
        let host = request.url.host_str().unwrap_or_default().to_string();
        let accept = accept_header(request.accept);
        let port = request.url.port_or_known_default().unwrap_or(0);
        let pinned = route_for(&self.routes, &host, port)
            .and_then(|r| self.routes.iter().position(|x| std::ptr::eq(x, r)));
        let mut builder = match pinned {
            // The route's client connects to the route's address, whose port hyper
            // keeps only when the URL names none: a URL with an explicit port goes out
            // without it, and the Host header keeps it. (The pool of that client serves
            // this one route, so the port-less URL cannot share a connection elsewhere.)
            Some(i) if request.url.port().is_some() => {
                let mut target = request.url.clone();
                let _ = target.set_port(None);
                self.pinned[i]
                    .request(request.method.clone(), target)
                    .header(HOST, format!("{host}:{port}"))
            }
            Some(i) => self.pinned[i].request(request.method.clone(), request.url.clone()),
            None => self
                .client
                .request(request.method.clone(), request.url.clone()),
        }
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
        if let Some(agent) = request.user_agent {
            builder = builder.header(reqwest::header::USER_AGENT, agent);
        }
        if !self.site_headers_for(&request.url).is_empty() {
            for (name, value) in &self.site_headers {
                builder = builder.header(name.clone(), value.expose());
            }
        }
        let mut response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return Err(self.transport_error(&request.url, &host, &e).await),
        };
        // A forwarding proxy answers a plain-http request itself when it wants
        // credentials: its answer, not the server's.
        if response.status() == StatusCode::PROXY_AUTHENTICATION_REQUIRED
            && request.url.scheme() == "http"
            && let Some(proxy) = self.proxy_for(&request.url)
            && proxy.scheme() == crate::proxy::Scheme::Http
        {
            return Err(HttpError::Proxy(proxy.failure(
                &host,
                port,
                crate::proxy::Problem::Status(407, "Proxy Authentication Required".into()),
            )));
        }
        let headers_at = started.elapsed();
        let info = response
            .extensions()
            .get::<hyper_util::client::legacy::connect::HttpInfo>()
            .map(|i| (i.remote_addr(), i.local_addr()));
        let meta = Exchange {
            headers_at,
            remote: response.remote_addr().or(info.map(|i| i.0)),
            local_port: info.map(|i| i.1.port()),
            version: response.version(),
        };
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
            .map_err(|e| self.classify(&host, &e))?
        {
            if body.len() + chunk.len() > BODY_CAP {
                return Err(HttpError::BodyTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((
            Response {
                url: request.url,
                status,
                headers,
                body,
                elapsed: started.elapsed(),
            },
            meta,
        ))
    }

    /// GETs `url` and follows redirects hop by hop until `stop` says so, a response is
    /// not a redirect, or [`MAX_HOPS`] is exceeded. A redirect from https to http is
    /// not followed ([`HttpError::InsecureRedirect`]).
    pub async fn follow(
        &self,
        check: &str,
        url: Url,
        accept: Accept,
        stop: impl Fn(&Response) -> bool,
    ) -> Result<Chain, HttpError> {
        self.follow_request(check, Request::get(url, accept), stop)
            .await
    }

    /// Sends `request` and follows its redirects like [`Http::follow`]; every hop after
    /// the first is a GET without a body, with the request's `Accept` and User-Agent
    /// (a browser-shaped request stays one). The request's secret headers go along only
    /// while the hops stay on the scheme, host and port of `request.url`: from the
    /// first hop elsewhere on, they are dropped for the rest of the chain.
    pub async fn follow_request(
        &self,
        check: &str,
        request: Request,
        stop: impl Fn(&Response) -> bool,
    ) -> Result<Chain, HttpError> {
        let origin = request.url.origin();
        let accept = request.accept;
        let user_agent = request.user_agent;
        let mut headers = request.headers.clone();
        let mut hops = Vec::new();
        let mut next = request;
        loop {
            let from = next.url.clone();
            let response = self.send(check, next).await?;
            if !response.is_redirect() || stop(&response) {
                return Ok(Chain {
                    hops,
                    last: response,
                });
            }
            if hops.len() >= MAX_HOPS {
                return Err(HttpError::TooManyRedirects);
            }
            let to = match response.location() {
                Some(Ok(u)) => u,
                _ => return Err(HttpError::BadLocation),
            };
            refuse_downgrade(&from, &to)?;
            if to.origin() != origin {
                headers.clear();
            }
            next = Request::get(to, accept);
            next.user_agent = user_agent;
            next.headers = headers.clone();
            hops.push(response);
        }
    }

    /// The names of the `--header`s a request to `url` carries (the site's host only).
    fn site_headers_for(&self, url: &Url) -> Vec<String> {
        match &self.site {
            Some((host, port))
                if url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host))
                    && url.port_or_known_default() == Some(*port) =>
            {
                self.site_headers
                    .iter()
                    .map(|(n, _)| n.as_str().to_string())
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// The error of a request that got no response. Through a proxy, a failure to
    /// connect is the proxy's to explain: ssoprobe asks the proxy once more itself, to
    /// learn its answer (the HTTP client says only that the tunnel failed), and names
    /// the proxy and the setting it came from. A TLS failure stays the host's: the
    /// handshake is with the host, through the tunnel.
    async fn transport_error(&self, url: &Url, host: &str, error: &reqwest::Error) -> HttpError {
        let base = self.classify(host, error);
        let Some(proxy) = self.proxy_for(url) else {
            return base;
        };
        if !error.is_connect() {
            return base;
        }
        let port = url.port_or_known_default().unwrap_or(0);
        let problem = match base {
            HttpError::Tls { .. } | HttpError::Timeout(_) | HttpError::Deadline { .. } => {
                return base;
            }
            HttpError::ConnectTimeout { after, .. } => crate::proxy::Problem::Timeout(after),
            _ => {
                let (budget, _) = self.budget();
                let limit = budget.min(self.connect_timeout);
                let tunnel =
                    url.scheme() == "https" || proxy.scheme() != crate::proxy::Scheme::Http;
                match tokio::time::timeout(limit, crate::proxy::diagnose(proxy, tunnel, host, port))
                    .await
                {
                    Ok(Err(problem)) => problem,
                    Ok(Ok(())) => crate::proxy::Problem::Failed,
                    Err(_) => crate::proxy::Problem::Timeout(limit),
                }
            }
        };
        HttpError::Proxy(proxy.failure(host, port, problem))
    }

    fn classify(&self, host: &str, error: &reqwest::Error) -> HttpError {
        if error.is_connect() && error.is_timeout() {
            return HttpError::ConnectTimeout {
                host: server_text(host),
                after: self.connect_timeout,
            };
        }
        classify(host, error, self.timeout)
    }

    /// The value of cookie `name` the jar would send to `url`.
    pub fn cookie_value(&self, url: &Url, name: &str) -> Option<Secret> {
        let store = self.jar.lock();
        store
            .matches(url)
            .iter()
            .find(|c| c.name() == name)
            .map(|c| Secret::new(c.value()))
    }

    /// Names of the cookies the jar would send to `url`.
    pub fn cookie_names_for(&self, url: &Url) -> Vec<String> {
        self.jar
            .lock()
            .matches(url)
            .iter()
            .map(|c| server_text(c.name()))
            .collect()
    }
}

/// Turns a transport error into one sentence, walking the error chain the way an
/// operator would read it: DNS, connection, TLS, timeout.
fn classify(host: &str, error: &reqwest::Error, timeout: Duration) -> HttpError {
    // The host came from a URL, maybe a server's Location; the texts below may quote
    // the peer (a TLS alert, a malformed answer): all of it is made printable and short.
    let host = &server_text(host);
    match classify_raw(host, error, timeout) {
        HttpError::Dns { host, detail } => HttpError::Dns {
            host,
            detail: server_text(&detail),
        },
        HttpError::Connect { host, detail } => HttpError::Connect {
            host,
            detail: server_text(&detail),
        },
        HttpError::Tls { host, detail } => HttpError::Tls {
            host,
            detail: server_text(&detail),
        },
        HttpError::Other(text) => HttpError::Other(server_text(&text)),
        other => other,
    }
}

fn classify_raw(host: &str, error: &reqwest::Error, timeout: Duration) -> HttpError {
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::cookie::CookieStore as _;

    #[tokio::test]
    async fn a_request_shaped_like_another_clients_never_takes_a_prefetched_answer() {
        let http = Http::new(&HttpOptions {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            site: None,
            site_headers: Vec::new(),
            credential_origins: Vec::new(),
            deadline_limit: "--deadline",
            deadline: Duration::from_secs(30),
            routes: Vec::new(),
            extra_roots: Vec::new(),
            insecure: false,
            trace: false,
            proxies: crate::proxy::Proxies::none(),
        })
        .unwrap();
        let url = Url::parse("https://id.example.com/.well-known/jwks.json").unwrap();
        let get = || Request::get(url.clone(), Accept::Json);
        // Registered when asked for, before it is sent (never sent here).
        let _prefetch = http.prefetch("idp.jwks", get());
        let _unshared = http.prefetch("idp.jwks", get().user_agent("cloudflare-access"));
        assert!(
            http.take_prefetched(&get().user_agent("cloudflare-access"))
                .is_none()
        );
        assert!(http.take_prefetched(&get()).is_some());
        assert!(http.take_prefetched(&get()).is_none());
    }

    fn route(host: &str, port: u16, addr: &str, kind: RouteKind) -> Route {
        Route {
            host: host.into(),
            port,
            addr: addr.parse().unwrap(),
            kind,
        }
    }

    #[test]
    fn a_route_applies_to_its_host_and_port_only() {
        let routes = vec![
            route("h.example", 443, "127.0.0.1:443", RouteKind::Resolve),
            route("h.example", 8443, "127.0.0.2:8443", RouteKind::Resolve),
        ];
        let at = |host, port| route_for(&routes, host, port).map(|r| r.addr.to_string());
        assert_eq!(at("h.example", 443).as_deref(), Some("127.0.0.1:443"));
        assert_eq!(at("h.example", 8443).as_deref(), Some("127.0.0.2:8443"));
        assert_eq!(at("h.example", 80), None);
        assert_eq!(at("other.example", 443), None);
        assert_eq!(at("H.example.", 443).as_deref(), Some("127.0.0.1:443"));
    }

    #[test]
    fn route_precedence_is_curls() {
        let routes = vec![
            route("*", 443, "127.0.0.9:443", RouteKind::Resolve),
            route("h.example", 443, "127.0.0.1:443", RouteKind::Resolve),
            route("h.example", 443, "127.0.0.2:443", RouteKind::Resolve),
            route("c.example", 443, "127.0.0.3:1", RouteKind::ConnectTo),
            route("*", 0, "127.0.0.4:2", RouteKind::ConnectTo),
        ];
        let at = |host, port| route_for(&routes, host, port).map(|r| r.addr.to_string());
        // connect-to first, the first that matches.
        assert_eq!(at("c.example", 443).as_deref(), Some("127.0.0.3:1"));
        assert_eq!(at("h.example", 443).as_deref(), Some("127.0.0.4:2"));
        let resolve_only: Vec<Route> = routes[..3].to_vec();
        let at = |host, port| route_for(&resolve_only, host, port).map(|r| r.addr.to_string());
        // --resolve: the last one for the host, before the wildcard.
        assert_eq!(at("h.example", 443).as_deref(), Some("127.0.0.2:443"));
        assert_eq!(at("x.example", 443).as_deref(), Some("127.0.0.9:443"));
        assert_eq!(at("x.example", 8443), None);
    }

    #[test]
    fn public_suffixes() {
        for d in [
            "com",
            "co.uk",
            "cloudflareaccess.com",
            "github.io",
            ".com",
            "COM.",
        ] {
            assert!(is_public_suffix(&d.to_ascii_lowercase()), "{d}");
        }
        for d in [
            "example.com",
            "xyz.cloudflareaccess.com",
            "example.co.uk",
            "127.0.0.1",
        ] {
            assert!(!is_public_suffix(d), "{d}");
        }
    }

    fn set(jar: &Jar, url: &str, header: &str) {
        let url = Url::parse(url).unwrap();
        let value = HeaderValue::from_str(header).unwrap();
        jar.set_cookies(&mut std::iter::once(&value), &url);
    }

    fn sent(jar: &Jar, url: &str) -> String {
        jar.cookies(&Url::parse(url).unwrap())
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn the_jar_refuses_public_suffix_domains() {
        let jar = Jar::new(false);
        set(
            &jar,
            "https://service.example.com/",
            "a=1; Domain=com; Path=/",
        );
        set(&jar, "https://shop.example.co.uk/", "b=2; Domain=.co.uk");
        set(
            &jar,
            "https://xyz.cloudflareaccess.com/",
            "c=3; Domain=cloudflareaccess.com",
        );
        set(
            &jar,
            "https://service.example.com/",
            "d=4; Domain=example.com",
        );
        assert_eq!(sent(&jar, "https://other.com/"), "");
        assert_eq!(sent(&jar, "https://other.co.uk/"), "");
        assert_eq!(sent(&jar, "https://abc.cloudflareaccess.com/"), "");
        assert_eq!(sent(&jar, "https://id.example.com/"), "d=4");
    }

    #[test]
    fn a_public_suffix_host_keeps_its_own_cookie_host_only() {
        let jar = Jar::new(false);
        set(
            &jar,
            "https://cloudflareaccess.com/",
            "s=1; Domain=cloudflareaccess.com",
        );
        assert_eq!(sent(&jar, "https://cloudflareaccess.com/"), "s=1");
        assert_eq!(sent(&jar, "https://xyz.cloudflareaccess.com/"), "");
    }

    #[test]
    fn only_http_locations_are_usable() {
        let response = |location: &str| Response {
            url: Url::parse("https://h.example/a").unwrap(),
            status: StatusCode::FOUND,
            headers: HeaderMap::from_iter([(LOCATION, HeaderValue::from_str(location).unwrap())]),
            body: Vec::new(),
            elapsed: Duration::ZERO,
        };
        assert!(matches!(response("/b").location(), Some(Ok(_))));
        assert!(matches!(
            response("http://h.example/").location(),
            Some(Ok(_))
        ));
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(response(bad).location(), Some(Err(HttpError::BadLocation))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_downgrade_error_says_so() {
        let e = HttpError::InsecureRedirect {
            to: "http://h.example/".into(),
        };
        assert!(e.to_string().contains("from https to http"), "{e}");
        assert!(e.hint().contains("from https to http"), "{}", e.hint());
    }
}
