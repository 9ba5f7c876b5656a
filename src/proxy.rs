//! Proxies, read as curl reads them.
//!
//! Where a request goes out: `--proxy URL` (`SSOPROBE_PROXY`, the config file's
//! `proxy`) for every request, else `https_proxy`/`HTTPS_PROXY` for https and
//! `http_proxy`/`HTTP_PROXY` for http, else `all_proxy`/`ALL_PROXY` (the lower-case name
//! first, as curl reads them; an empty value counts as unset). `--proxy ""` sends every
//! request directly, whatever the environment says. `--noproxy LIST` (`SSOPROBE_NOPROXY`,
//! `noproxy`) replaces `no_proxy`/`NO_PROXY`: hosts that are reached directly.
//!
//! As with curl, `localhost` and loopback addresses go through the proxy too unless the
//! list names them (`NO_PROXY=localhost,127.0.0.1,::1`): what `curl URL` does on a host,
//! ssoprobe does. Where ssoprobe departs from curl, on purpose:
//! - a host pinned with `--resolve` or `--connect-to` is reached at its pinned address,
//!   directly (curl asks the proxy for the name, so that `--resolve` has no effect and a
//!   pinned check would silently test another server): a pin names the address to
//!   connect to;
//! - a `--noproxy` entry may name a port (`host:8443`, `[::1]:8443`): it then applies to
//!   that port only.
//!
//! The proxy schemes are `http://` (a tunnel for https, plain forwarding for http) and
//! `socks5://` / `socks5h://` (names resolved here / by the proxy); a URL without a
//! scheme is `http://`, and a proxy URL without a port means port 1080, as with curl.
//! Credentials in the URL (`http://user:password@proxy:3128`) go to the proxy alone and
//! are never shown: a proxy is shown as `http://***@proxy:3128`.

use crate::redact::Secret;
use crate::text::server_text;
use crate::timefmt::human_duration;
use std::net::IpAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

/// The port of a proxy URL that names none (curl's).
pub const DEFAULT_PORT: u16 = 1080;

/// How ssoprobe speaks to a proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// An HTTP proxy: `CONNECT` tunnels for https, plain forwarding for http.
    Http,
    /// SOCKS5, names resolved on this host.
    Socks5,
    /// SOCKS5, names resolved by the proxy.
    Socks5h,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Socks5 => "socks5",
            Scheme::Socks5h => "socks5h",
        }
    }
}

/// One proxy, and the setting that named it.
#[derive(Clone, Debug)]
pub struct Proxy {
    scheme: Scheme,
    /// The host as in a URL (an IPv6 address without brackets).
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<Secret>,
    /// The setting it came from: "--proxy", "HTTPS_PROXY", "sites.toml: key `proxy`".
    pub setting: String,
}

impl Proxy {
    /// Parses a proxy URL given by `setting`; the error says what is wrong and what to
    /// write instead.
    pub fn parse(value: &str, setting: &str) -> Result<Proxy, SettingError> {
        let fail = |problem: String| SettingError {
            setting: setting.to_string(),
            problem,
        };
        let v = value.trim();
        // A scheme is letters (then letters, digits, + - .) before "://" and before any
        // "@": "u:pa://ss@host" is a user and a password, never a scheme to quote.
        let scheme_end = v.find("://").filter(|&at| {
            v.get(..at).is_some_and(|s| {
                s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            }) && v.find('@').is_none_or(|a| at < a)
        });
        let with_scheme = if scheme_end.is_some() {
            v.to_string()
        } else {
            format!("http://{v}")
        };
        // Never quoted back whole: it may hold a password.
        let scheme_given = with_scheme
            .split("://")
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let scheme = match scheme_given.as_str() {
            "http" => Scheme::Http,
            "socks5" => Scheme::Socks5,
            "socks5h" => Scheme::Socks5h,
            "socks4" | "socks4a" | "socks" => {
                return Err(fail(format!(
                    "ssoprobe speaks SOCKS version 5 only, not {scheme_given}: write socks5h://HOST:PORT (the proxy resolves names) or socks5://HOST:PORT, if the proxy speaks version 5; else point {setting} at an HTTP proxy, or give --proxy '' to connect directly"
                )));
            }
            "https" => {
                return Err(fail(format!(
                    "ssoprobe speaks to a proxy in plain HTTP (http://HOST:PORT, which still tunnels https end to end) or SOCKS5 (socks5h://HOST:PORT), not over TLS: change the scheme of {setting}, or give --proxy '' to connect directly"
                )));
            }
            other => {
                return Err(fail(format!(
                    "'{}' is not a proxy scheme: write http://HOST:PORT, socks5://HOST:PORT or socks5h://HOST:PORT",
                    crate::redact::terminal_safe(other)
                )));
            }
        };
        let url = Url::parse(&with_scheme).map_err(|_| {
            fail("is not a proxy URL: write http://HOST:PORT (user:password@ before the host when the proxy asks for them)".into())
        })?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err(fail("names no proxy host: write http://HOST:PORT".into())),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(fail(
                "has a path or query, which a proxy URL does not take: write http://HOST:PORT"
                    .into(),
            ));
        }
        let port = match explicit_port(&with_scheme) {
            Some(Ok(p)) => p,
            Some(Err(())) => {
                return Err(fail(
                    "has a port that is not a number from 1 to 65535: write http://HOST:PORT"
                        .into(),
                ));
            }
            None => DEFAULT_PORT,
        };
        let decode = |s: &str| {
            percent_encoding_decode(s).ok_or_else(|| {
                fail("has user information that is not valid percent-encoded UTF-8".into())
            })
        };
        let user = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = match url.password() {
            Some(p) => Some(decode(p)?),
            None => None,
        };
        // A user name alone can be the credential (a token as the user): never shown
        // either, when it is long enough to be one.
        if password.is_none()
            && let Some(u) = user.as_deref().filter(|u| u.len() >= 8)
        {
            Secret::configured(u.to_string());
        }
        let password = password.map(|p| {
            // Pinned for the life of the process: never shown, in any encoding, nor
            // the `user:password` pair a Basic credential is made of.
            Secret::configured(format!("{}:{p}", user.as_deref().unwrap_or("")));
            Secret::configured(p)
        });
        Ok(Proxy {
            scheme,
            host,
            port,
            user,
            password,
            setting: setting.to_string(),
        })
    }

    /// The proxy as output shows it: scheme, host and port; `***@` when it has
    /// credentials, which are never shown.
    pub fn shown(&self) -> String {
        format!(
            "{}://{}{}:{}",
            self.scheme.as_str(),
            if self.has_credentials() { "***@" } else { "" },
            server_text(&self.host_in_url()),
            self.port
        )
    }

    /// Whether the URL carried a user name or password.
    pub fn has_credentials(&self) -> bool {
        self.user.is_some() || self.password.is_some()
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    fn host_in_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// The URL the HTTP client is given, credentials included (percent-encoded).
    pub fn client_url(&self) -> String {
        let enc = |s: &str| {
            url::form_urlencoded::byte_serialize(s.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        };
        let userinfo = match (&self.user, &self.password) {
            (None, None) => String::new(),
            (user, password) => format!(
                "{}{}@",
                enc(user.as_deref().unwrap_or("")),
                password
                    .as_ref()
                    .map(|p| format!(":{}", enc(p.expose())))
                    .unwrap_or_default()
            ),
        };
        format!(
            "{}://{userinfo}{}:{}",
            self.scheme.as_str(),
            self.host_in_url(),
            self.port
        )
    }

    /// The failure of a connection through this proxy to `host`:`port`.
    pub fn failure(&self, host: &str, port: u16, problem: Problem) -> ProxyFailure {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        ProxyFailure {
            proxy: self.shown(),
            setting: self.setting.clone(),
            target: server_text(&target),
            credentials: self.has_credentials(),
            socks: self.scheme != Scheme::Http,
            problem,
        }
    }
}

/// The port written in a URL's authority, if one is (the URL parser forgets a port
/// that is its scheme's default, and a proxy's default is 1080, not 80).
fn explicit_port(url: &str) -> Option<Result<u16, ()>> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let after_host = match host_port.rfind(']') {
        Some(i) => host_port.get(i + 1..)?,
        None => host_port,
    };
    let port = after_host.rsplit_once(':')?.1;
    Some(match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(()),
    })
}

/// Percent-decodes URL user information into UTF-8.
fn percent_encoding_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A proxy setting that cannot be used: which one, and why.
#[derive(Debug, Clone)]
pub struct SettingError {
    /// "--proxy", "HTTPS_PROXY", …
    pub setting: String,
    /// What is wrong, and what to do.
    pub problem: String,
}

/// The hosts reached directly although a proxy is set (`--noproxy`, `NO_PROXY`).
#[derive(Clone, Debug, Default)]
pub struct NoProxy {
    /// `*`: every host.
    all: bool,
    entries: Vec<Bypass>,
}

#[derive(Clone, Debug)]
enum Bypass {
    /// A host name and every name under it.
    Name { name: String, port: Option<u16> },
    /// An address, or a network (`10.0.0.0/8`).
    Net {
        addr: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
}

impl NoProxy {
    /// Parses a list as curl does: entries separated by commas (or white space); `*`
    /// alone for every host; a host name for itself and every name under it (a leading
    /// `.` or `*.` is the same); an IP address, or a network in CIDR notation; any of
    /// them with `:PORT` for that port only (IPv6 in brackets then). Returns the list
    /// and the entries it could not read.
    pub fn parse(list: &str) -> (NoProxy, Vec<String>) {
        let mut out = NoProxy::default();
        let mut bad = Vec::new();
        for entry in list.split(|c: char| c == ',' || c.is_whitespace()) {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                out.all = true;
                continue;
            }
            match parse_bypass(entry) {
                Some(b) => out.entries.push(b),
                None => bad.push(server_text(entry)),
            }
        }
        (out, bad)
    }

    /// Whether a request to `host` on `port` goes directly.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = bare_host(host);
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|e| match e {
            Bypass::Name { name, port: p } => {
                p.is_none_or(|p| p == port)
                    && (host == *name
                        || host
                            .strip_suffix(name.as_str())
                            .is_some_and(|front| front.ends_with('.')))
            }
            Bypass::Net {
                addr,
                prefix,
                port: p,
            } => p.is_none_or(|p| p == port) && ip.is_some_and(|ip| in_net(ip, *addr, *prefix)),
        })
    }
}

/// A host as compared: lower case, without a trailing dot or IPv6 brackets.
fn bare_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn parse_bypass(entry: &str) -> Option<Bypass> {
    // [v6], [v6]:port, [v6]/n
    if let Some(rest) = entry.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let addr: IpAddr = inside.parse().ok()?;
        let (prefix, port) = match after {
            "" => (None, None),
            a if a.starts_with(':') => (None, Some(parse_entry_port(&a[1..])?)),
            a if a.starts_with('/') => (Some(a[1..].parse::<u8>().ok()?), None),
            _ => return None,
        };
        return net(addr, prefix, port);
    }
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return net(addr, None, None);
    }
    if let Some((addr, prefix)) = entry.split_once('/') {
        return net(addr.parse().ok()?, Some(prefix.parse().ok()?), None);
    }
    let (host, port) = match entry.rsplit_once(':') {
        Some((h, p)) => (h, Some(parse_entry_port(p)?)),
        None => (entry, None),
    };
    if let Ok(addr) = host.parse::<IpAddr>() {
        return net(addr, None, port);
    }
    let name = host
        .strip_prefix("*.")
        .or_else(|| host.strip_prefix('.'))
        .unwrap_or(host)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    valid.then_some(Bypass::Name { name, port })
}

fn parse_entry_port(p: &str) -> Option<u16> {
    p.parse::<u16>().ok().filter(|p| *p > 0)
}

fn net(addr: IpAddr, prefix: Option<u8>, port: Option<u16>) -> Option<Bypass> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some(Bypass::Net { addr, prefix, port })
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if prefix == 0 {
        return true;
    }
    let shift = bits - u32::from(prefix);
    (ip >> shift) == (net >> shift)
}

/// The proxies of a run: which one each request goes through, if any.
#[derive(Clone, Debug, Default)]
pub struct Proxies {
    /// For https URLs.
    https: Option<Proxy>,
    /// For http URLs.
    http: Option<Proxy>,
    /// Hosts reached directly.
    bypass: NoProxy,
}

/// Reads an environment variable, lower-case name first; an empty value is unset.
/// Returns the value and the name it was read from.
fn first_env(env: &dyn Fn(&str) -> Option<String>, upper: &str) -> Option<(String, String)> {
    let lower = upper.to_ascii_lowercase();
    [lower.as_str(), upper].into_iter().find_map(|name| {
        env(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v, name.to_string()))
    })
}

impl Proxies {
    /// No proxy at all.
    pub fn none() -> Proxies {
        Proxies::default()
    }

    /// The proxies from ssoprobe's own settings — `proxy` and `noproxy`, each a value
    /// and the name of the setting it came from — and, where they say nothing, the
    /// environment's variables (`env` reads one).
    pub fn read(
        proxy: Option<(&str, &str)>,
        noproxy: Option<(&str, &str)>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Proxies, SettingError> {
        let (https, http) = match proxy {
            // `--proxy ""`: every request goes directly, whatever the environment says.
            Some((value, _)) if value.trim().is_empty() => (None, None),
            Some((value, setting)) => {
                let p = Proxy::parse(value, setting)?;
                (Some(p.clone()), Some(p))
            }
            None => {
                let all = first_env(env, "ALL_PROXY");
                let pick = |upper: &str| -> Result<Option<Proxy>, SettingError> {
                    match first_env(env, upper).or_else(|| all.clone()) {
                        Some((value, name)) => Proxy::parse(&value, &name).map(Some),
                        None => Ok(None),
                    }
                };
                (pick("HTTPS_PROXY")?, pick("HTTP_PROXY")?)
            }
        };
        let bypass = match noproxy {
            Some((list, setting)) => {
                let (list, bad) = NoProxy::parse(list);
                if let Some(entry) = bad.first() {
                    return Err(SettingError {
                        setting: setting.to_string(),
                        problem: format!(
                            "'{entry}' is not a host name, IP address or network: give a comma-separated list such as example.com,.internal,10.0.0.0/8,[::1]:8443 (or * for every host)"
                        ),
                    });
                }
                list
            }
            // The environment's list is other tools' too: what ssoprobe cannot read in
            // it is left out, as curl does.
            None => first_env(env, "NO_PROXY")
                .map(|(list, _)| NoProxy::parse(&list).0)
                .unwrap_or_default(),
        };
        Ok(Proxies {
            https,
            http,
            bypass,
        })
    }

    /// Whether no request goes through a proxy.
    pub fn is_empty(&self) -> bool {
        self.https.is_none() && self.http.is_none()
    }

    /// The proxy a request for `scheme://host:port` goes through (not minding pins;
    /// see `http::proxy_for`).
    pub fn for_target(&self, scheme: &str, host: &str, port: u16) -> Option<&Proxy> {
        if self.bypass.matches(host, port) {
            return None;
        }
        match scheme {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }
    }

    /// [`Proxies::for_target`] of a URL.
    pub fn for_url(&self, url: &Url) -> Option<&Proxy> {
        self.for_target(
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0),
        )
    }

    /// The proxies as `config check` shows them: "https and http: http://…:3128
    /// (HTTPS_PROXY)"; `None` when there are none.
    pub fn describe(&self) -> Option<String> {
        let one = |p: &Proxy| format!("{} ({})", p.shown(), p.setting);
        match (&self.https, &self.http) {
            (None, None) => None,
            (Some(a), Some(b)) if one(a) == one(b) => Some(format!("https and http: {}", one(a))),
            (a, b) => Some(
                [("https", a), ("http", b)]
                    .into_iter()
                    .filter_map(|(s, p)| p.as_ref().map(|p| format!("{s}: {}", one(p))))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        }
    }
}

/// What went wrong between ssoprobe, a proxy and the host behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The proxy's host name does not resolve.
    NotFound,
    /// Nothing accepts connections at the proxy's address (why, in words).
    Unreachable(String),
    /// No connection through the proxy within the connect timeout.
    Timeout(Duration),
    /// The HTTP proxy answered the request for a tunnel with this status (and reason).
    Status(u16, String),
    /// The SOCKS proxy refused with this reply code.
    SocksRefused(u8),
    /// The SOCKS proxy wants credentials (`sent`: it refused the ones given).
    SocksCredentials {
        /// Whether credentials were sent.
        sent: bool,
    },
    /// With `socks5://`, ssoprobe resolves the host itself, and it did not resolve.
    TargetNotFound,
    /// The proxy closed the connection without an answer.
    Closed,
    /// The answer is not a proxy's.
    NotAProxy,
    /// The tunnel failed and the proxy did not say why.
    Failed,
}

/// A connection through a proxy that failed: the proxy (as shown), the setting that
/// named it, the host it was asked for and what went wrong.
#[derive(Clone, Debug)]
pub struct ProxyFailure {
    /// The proxy, credentials hidden.
    pub proxy: String,
    /// The setting that named it.
    pub setting: String,
    /// The host and port it was asked to connect to, printable.
    pub target: String,
    /// Whether the proxy URL carried credentials.
    pub credentials: bool,
    /// Whether it is a SOCKS proxy.
    pub socks: bool,
    /// What went wrong.
    pub problem: Problem,
}

/// A SOCKS5 reply code in words (RFC 1928 §6).
fn socks_reply(code: u8) -> &'static str {
    match code {
        1 => "general failure",
        2 => "connection not allowed by its rules",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "an unknown reply",
    }
}

impl std::fmt::Display for ProxyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (proxy, setting, target) = (&self.proxy, &self.setting, &self.target);
        let the = format!("the proxy {proxy} (from {setting})");
        match &self.problem {
            Problem::NotFound => write!(f, "the host name of {the} does not resolve"),
            Problem::Unreachable(why) => write!(f, "cannot connect to {the}: {why}"),
            Problem::Timeout(d) => write!(
                f,
                "no connection to {target} through {the} within {}",
                human_duration(*d)
            ),
            Problem::Status(407, _) if self.credentials => write!(
                f,
                "{the} refused its credentials (407 Proxy Authentication Required) when asked to connect to {target}"
            ),
            Problem::Status(407, _) => write!(
                f,
                "{the} asks for credentials (407 Proxy Authentication Required) before it connects to {target}"
            ),
            Problem::Status(code, reason) => write!(
                f,
                "{the} did not connect to {target}: it answered {code}{}{reason}",
                if reason.is_empty() { "" } else { " " }
            ),
            Problem::SocksRefused(code) => write!(
                f,
                "{the} did not connect to {target}: {} (SOCKS reply {code})",
                socks_reply(*code)
            ),
            Problem::SocksCredentials { sent: true } => write!(
                f,
                "{the} refused its credentials when asked to connect to {target}"
            ),
            Problem::SocksCredentials { sent: false } => write!(
                f,
                "{the} asks for credentials before it connects to {target}"
            ),
            Problem::TargetNotFound => write!(
                f,
                "{target} does not resolve on this host, which resolves names for {the} (socks5://)"
            ),
            Problem::Closed => write!(
                f,
                "{the} closed the connection when asked to connect to {target}"
            ),
            Problem::NotAProxy => write!(
                f,
                "{the} did not answer as a proxy when asked to connect to {target}"
            ),
            Problem::Failed => write!(f, "{the} did not open a connection to {target}"),
        }
    }
}

impl ProxyFailure {
    /// The fix first, then what the proxy's answer shows.
    pub fn hint(&self) -> String {
        let (proxy, setting) = (&self.proxy, &self.setting);
        let host = self
            .target
            .rsplit_once(':')
            .map_or(self.target.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let target = &self.target;
        let scheme = if self.socks { "socks5h" } else { "http" };
        let direct = "--proxy '' to connect directly";
        match &self.problem {
            Problem::NotFound => format!(
                "correct the proxy's host name in {setting} ({proxy}), or give {direct}: it does not resolve on this host"
            ),
            Problem::Unreachable(why) => format!(
                "correct the proxy address in {setting} ({proxy}), or start the proxy, or give {direct}: nothing accepts connections there ({why})"
            ),
            Problem::Timeout(_) => format!(
                "check that the proxy in {setting} ({proxy}) is up and reachable from this host (a firewall may drop the packets), or raise --connect-timeout: no connection through it completed in time"
            ),
            Problem::Status(407, _) | Problem::SocksCredentials { .. } if self.credentials => {
                format!(
                    "correct the user name or password in the proxy URL of {setting} ({scheme}://USER:PASSWORD@HOST:PORT, special characters percent-encoded): the proxy refused the ones given"
                )
            }
            Problem::Status(407, _) | Problem::SocksCredentials { .. } => format!(
                "put the proxy's user name and password in the proxy URL of {setting} ({scheme}://USER:PASSWORD@HOST:PORT, special characters percent-encoded): the proxy asks for credentials and the URL has none"
            ),
            Problem::Status(403, _) | Problem::SocksRefused(2) => format!(
                "allow {target} in the proxy's rules, or give --noproxy {host} if this host can reach it directly: the proxy {proxy} refuses to connect to it"
            ),
            Problem::Status(502..=504, _) | Problem::SocksRefused(1 | 3..=6) => format!(
                "check that {host} resolves and answers where the proxy runs (its DNS and its way out): the proxy {proxy} could not connect to {target}"
            ),
            Problem::Status(code, _) => format!(
                "look up the proxy's log for {target}: the proxy {proxy} answered {code} when asked to connect to it"
            ),
            Problem::SocksRefused(_) => format!(
                "look up the proxy's log for {target}: the proxy {proxy} refused to connect to it"
            ),
            Problem::TargetNotFound => format!(
                "write socks5h:// in {setting} so that the proxy resolves {host}, or check its DNS record: with socks5:// this host resolves it, and it does not"
            ),
            Problem::Closed | Problem::Failed => format!(
                "look up the proxy's log for {target}, and check that {setting} ({proxy}) names the proxy: it did not open a connection to {target}"
            ),
            Problem::NotAProxy => format!(
                "check that {setting} ({proxy}) names a proxy that speaks {}: what answered there is not one",
                if self.socks { "SOCKS5" } else { "HTTP" }
            ),
        }
    }
}

/// Most bytes of a proxy's answer to a tunnel request read.
const ANSWER_CAP: usize = 16 * 1024;

/// Opens a connection to `host`:`port` through `proxy` (no timeout of its own: the
/// caller bounds it), for a handshake of ssoprobe's own (the `tls.*` checks).
pub async fn open(proxy: &Proxy, host: &str, port: u16) -> Result<TcpStream, Problem> {
    let mut stream = reach(proxy).await?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match proxy.scheme {
        Scheme::Http => tunnel_http(&mut stream, proxy, host, port).await?,
        Scheme::Socks5 | Scheme::Socks5h => socks5(&mut stream, proxy, host, port).await?,
    }
    Ok(stream)
}

/// Asks `proxy` for a connection to `host`:`port` — a tunnel when `tunnel`, else only a
/// connection to the proxy (a plain-http request is forwarded, not tunnelled) — and
/// drops it: what the proxy says when a request through it failed.
pub async fn diagnose(proxy: &Proxy, tunnel: bool, host: &str, port: u16) -> Result<(), Problem> {
    if tunnel {
        open(proxy, host, port).await.map(drop)
    } else {
        reach(proxy).await.map(drop)
    }
}

/// A connection to the proxy itself.
async fn reach(proxy: &Proxy) -> Result<TcpStream, Problem> {
    let addrs: Vec<std::net::SocketAddr> =
        tokio::net::lookup_host((proxy.host.as_str(), proxy.port))
            .await
            .map_err(|_| Problem::NotFound)?
            .collect();
    if addrs.is_empty() {
        return Err(Problem::NotFound);
    }
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(Problem::Unreachable(
        last.map(|e| connect_words(&e)).unwrap_or_default(),
    ))
}

/// A failed connection in words, without the OS's text.
pub fn connect_words(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        ConnectionAborted => "connection aborted".into(),
        HostUnreachable => "host unreachable".into(),
        NetworkUnreachable => "network unreachable".into(),
        TimedOut => "timed out".into(),
        AddrNotAvailable => "address not available".into(),
        _ => crate::text::io_words(e),
    }
}

fn io_problem(e: &std::io::Error) -> Problem {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Problem::Closed
    } else {
        Problem::Unreachable(connect_words(e))
    }
}

/// `CONNECT host:port`, and the proxy's answer up to its blank line.
async fn tunnel_http(
    stream: &mut TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), Problem> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {}\r\n",
        concat!("ssoprobe/", env!("CARGO_PKG_VERSION"))
    );
    if proxy.has_credentials() {
        use base64::Engine as _;
        let pair = format!(
            "{}:{}",
            proxy.user.as_deref().unwrap_or(""),
            proxy.password.as_ref().map(Secret::expose).unwrap_or("")
        );
        request.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| io_problem(&e))?;
    // Byte by byte up to the blank line: nothing of what follows it is consumed.
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= ANSWER_CAP {
            return Err(Problem::NotAProxy);
        }
        match stream.read(&mut byte).await {
            Ok(0) if answer.is_empty() => return Err(Problem::Closed),
            Ok(0) => break,
            Ok(_) => answer.push(byte[0]),
            Err(e) => return Err(io_problem(&e)),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(Problem::NotAProxy);
    };
    let Ok(code) = code.parse::<u16>() else {
        return Err(Problem::NotAProxy);
    };
    if !version.starts_with("HTTP/1.") || !(100..=599).contains(&code) {
        return Err(Problem::NotAProxy);
    }
    if !answer.ends_with(b"\r\n\r\n") {
        return Err(Problem::Closed);
    }
    if (200..300).contains(&code) {
        return Ok(());
    }
    let reason: String = server_text(parts.next().unwrap_or("").trim())
        .chars()
        .take(60)
        .collect();
    Err(Problem::Status(code, reason))
}

/// The SOCKS5 handshake (RFC 1928, user and password by RFC 1929) for a connection
/// to `host`:`port`.
async fn socks5(
    stream: &mut TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), Problem> {
    let io = |e: std::io::Error| io_problem(&e);
    let credentials = proxy.has_credentials();
    let greeting: &[u8] = if credentials {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    stream.write_all(greeting).await.map_err(io)?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await.map_err(io)?;
    match choice {
        [5, 0] => {}
        [5, 2] if credentials => {
            let user = proxy.user.as_deref().unwrap_or("").as_bytes();
            let password = proxy
                .password
                .as_ref()
                .map(Secret::expose)
                .unwrap_or("")
                .as_bytes();
            let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(password.len()))
            else {
                return Err(Problem::SocksCredentials { sent: true });
            };
            let mut auth = vec![1, ulen];
            auth.extend_from_slice(user);
            auth.push(plen);
            auth.extend_from_slice(password);
            stream.write_all(&auth).await.map_err(io)?;
            let mut status = [0u8; 2];
            stream.read_exact(&mut status).await.map_err(io)?;
            if status[1] != 0 {
                return Err(Problem::SocksCredentials { sent: true });
            }
        }
        [5, 2] | [5, 0xff] => return Err(Problem::SocksCredentials { sent: credentials }),
        _ => return Err(Problem::NotAProxy),
    }
    let mut request = vec![5, 1, 0];
    let literal = host.parse::<IpAddr>().ok();
    let ip = match (literal, proxy.scheme) {
        (Some(ip), _) => Some(ip),
        (None, Scheme::Socks5h) => None,
        (None, _) => Some(
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| Problem::TargetNotFound)?
                .next()
                .ok_or(Problem::TargetNotFound)?
                .ip(),
        ),
    };
    match ip {
        Some(IpAddr::V4(a)) => {
            request.push(1);
            request.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            request.push(4);
            request.extend_from_slice(&a.octets());
        }
        None => {
            let Ok(len) = u8::try_from(host.len()) else {
                return Err(Problem::TargetNotFound);
            };
            request.push(3);
            request.push(len);
            request.extend_from_slice(host.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).await.map_err(io)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await.map_err(io)?;
    if head[0] != 5 {
        return Err(Problem::NotAProxy);
    }
    if head[1] != 0 {
        return Err(Problem::SocksRefused(head[1]));
    }
    // The address the proxy bound, then its port: read and dropped.
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await.map_err(io)?;
            usize::from(len[0]) + 2
        }
        _ => return Err(Problem::NotAProxy),
    };
    let mut bound = vec![0u8; rest];
    stream.read_exact(&mut bound).await.map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn a_proxy_url_is_read_as_curl_reads_it() {
        let p = Proxy::parse("proxy.example:3128", "--proxy").unwrap();
        assert_eq!(p.shown(), "http://proxy.example:3128");
        let p = Proxy::parse("http://proxy.example", "--proxy").unwrap();
        assert_eq!(p.shown(), "http://proxy.example:1080");
        let p = Proxy::parse("http://proxy.example:80/", "--proxy").unwrap();
        assert_eq!(p.shown(), "http://proxy.example:80");
        let p = Proxy::parse("socks5h://[::1]:9050", "--proxy").unwrap();
        assert_eq!(p.shown(), "socks5h://[::1]:9050");
        let p = Proxy::parse("http://us%40er:p%3Ass%20wd@10.0.0.1:3128", "X").unwrap();
        assert_eq!(p.shown(), "http://***@10.0.0.1:3128");
        assert_eq!(p.user.as_deref(), Some("us@er"));
        assert_eq!(p.password.as_ref().unwrap().expose(), "p:ss wd");
        assert_eq!(p.client_url(), "http://us%40er:p%3Ass%20wd@10.0.0.1:3128");
        for bad in [
            "socks4://proxy:1080",
            "https://proxy:443",
            "ftp://proxy",
            "http://proxy:0",
            "http://proxy:99999",
            "http://proxy:3128/path",
            "http://",
        ] {
            let e = Proxy::parse(bad, "HTTPS_PROXY").unwrap_err();
            assert_eq!(e.setting, "HTTPS_PROXY", "{bad}");
        }
        let e = Proxy::parse("socks4://u:hunter2hunter2@proxy:1080", "ALL_PROXY").unwrap_err();
        assert!(e.problem.contains("socks5h://"), "{}", e.problem);
        assert!(!e.problem.contains("hunter2"), "{}", e.problem);
    }

    #[test]
    fn no_proxy_matches_as_curl_does() {
        let (list, bad) = NoProxy::parse(
            "example.com, .internal,*.corp.example ,10.0.0.0/8,192.168.1.7,[::1]:8443,lab.example:8443,2001:db8::/32",
        );
        assert!(bad.is_empty(), "{bad:?}");
        let m = |h, p| list.matches(h, p);
        assert!(m("example.com", 443));
        assert!(m("www.example.com", 443));
        assert!(m("WWW.Example.COM.", 443));
        assert!(!m("notexample.com", 443));
        assert!(m("internal", 443));
        assert!(m("a.b.internal", 80));
        assert!(m("x.corp.example", 443));
        assert!(m("10.1.2.3", 443));
        assert!(!m("11.1.2.3", 443));
        assert!(m("192.168.1.7", 80));
        assert!(!m("192.168.1.8", 80));
        assert!(m("[::1]", 8443));
        assert!(!m("[::1]", 443));
        assert!(m("lab.example", 8443));
        assert!(!m("lab.example", 443));
        assert!(m("2001:db8::5", 443));
        assert!(!m("2001:db9::5", 443));
        // A name never matches an address, and no lookup is made.
        assert!(!m("10.example", 443));
        let (all, _) = NoProxy::parse("*");
        assert!(all.matches("anything.example", 1));
        let (_, bad) = NoProxy::parse("ok.example,bad host!,10.0.0.0/40");
        assert_eq!(bad, vec!["host!".to_string(), "10.0.0.0/40".to_string()]);
    }

    #[test]
    fn the_settings_win_over_the_environment_and_an_empty_proxy_means_none() {
        let env = env_of(&[
            ("HTTPS_PROXY", "http://upper.example:3128"),
            ("https_proxy", "http://lower.example:3128"),
            ("ALL_PROXY", "socks5h://all.example:1080"),
            ("NO_PROXY", "direct.example"),
        ]);
        let p = Proxies::read(None, None, &env).unwrap();
        let https = p.for_target("https", "service.example", 443).unwrap();
        assert_eq!(https.shown(), "http://lower.example:3128");
        assert_eq!(https.setting, "https_proxy");
        let http = p.for_target("http", "service.example", 80).unwrap();
        assert_eq!(http.setting, "ALL_PROXY");
        assert!(p.for_target("https", "a.direct.example", 443).is_none());
        // As with curl, loopback is not left out unless the list says so.
        assert!(p.for_target("http", "127.0.0.1", 8080).is_some());
        assert!(p.for_target("https", "localhost", 443).is_some());
        let p = Proxies::read(Some(("", "--proxy")), None, &env).unwrap();
        assert!(p.is_empty());
        let p = Proxies::read(
            Some(("http://flag.example:8080", "--proxy")),
            Some(("", "--noproxy")),
            &env,
        )
        .unwrap();
        let used = p.for_target("https", "a.direct.example", 443).unwrap();
        assert_eq!(used.setting, "--proxy");
        assert!(p.for_target("http", "a.direct.example", 80).is_some());
        let e = Proxies::read(None, Some(("ok,b@d", "--noproxy")), &env).unwrap_err();
        assert_eq!(e.setting, "--noproxy");
        // A variable that cannot be used is named.
        let env = env_of(&[("ALL_PROXY", "socks4://proxy:1080")]);
        let e = Proxies::read(None, None, &env).unwrap_err();
        assert_eq!(e.setting, "ALL_PROXY");
        let env = env_of(&[("HTTPS_PROXY", "  "), ("NO_PROXY", "<local>,x")]);
        assert!(Proxies::read(None, None, &env).unwrap().is_empty());
    }

    #[test]
    fn a_failure_names_the_proxy_and_never_its_credentials() {
        let p = Proxy::parse(
            "http://probe:s3cret-proxy-pass@proxy.example:3128",
            "HTTPS_PROXY",
        )
        .unwrap();
        for problem in [
            Problem::NotFound,
            Problem::Unreachable("connection refused".into()),
            Problem::Timeout(Duration::from_secs(5)),
            Problem::Status(407, "Proxy Authentication Required".into()),
            Problem::Status(403, "Forbidden".into()),
            Problem::Status(502, "Bad Gateway".into()),
            Problem::SocksRefused(2),
            Problem::Closed,
        ] {
            let f = p.failure("service.example.com", 443, problem.clone());
            let (text, hint) = (f.to_string(), f.hint());
            assert!(text.contains("http://***@proxy.example:3128"), "{text}");
            assert!(text.contains("HTTPS_PROXY"), "{text}");
            assert!(
                hint.contains("HTTPS_PROXY") || hint.contains("proxy.example"),
                "{hint}"
            );
            for shown in [&text, &hint] {
                assert!(!shown.contains("s3cret"), "{shown}");
                assert!(!shown.contains("probe:"), "{shown}");
            }
        }
        let f = p.failure(
            "service.example.com",
            443,
            Problem::Status(407, String::new()),
        );
        assert!(
            f.hint().starts_with("correct the user name or password"),
            "{}",
            f.hint()
        );
        let bare = Proxy::parse("proxy.example:3128", "--proxy").unwrap();
        let f = bare.failure(
            "service.example.com",
            443,
            Problem::Status(407, String::new()),
        );
        assert!(
            f.hint()
                .starts_with("put the proxy's user name and password"),
            "{}",
            f.hint()
        );
        let f = bare.failure(
            "service.example.com",
            443,
            Problem::Unreachable("connection refused".into()),
        );
        assert!(
            f.hint().contains("--proxy (http://proxy.example:3128)"),
            "{}",
            f.hint()
        );
    }
}
