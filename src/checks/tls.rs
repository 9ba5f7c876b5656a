//! `tls.<host>`: the certificate of each host in the chain.

use super::ids;
use crate::config::Config;
use crate::finding::{CheckResult, Findings};
use crate::http::Http;
use crate::tls::{self, TlsProbeError};
use std::future::Future;
use url::Url;

/// Runs the TLS check of the site, the team domain and Pocket ID (each as soon as it
/// is known), concurrently. `team_domain` is `None` when the site's gateway has no team
/// (oauth2-proxy), `Some(None)` when the team is not known.
pub async fn run_all(
    config: &Config,
    http: &Http,
    team_domain: impl Future<Output = Option<Option<String>>>,
    idp: impl Future<Output = Option<Url>>,
) -> Vec<CheckResult> {
    let service = config
        .service
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let service_check = check_url(config, http, &config.service);
    let idp_check = async {
        let idp = idp.await?;
        let host = idp.host_str().unwrap_or_default().to_ascii_lowercase();
        if host == service {
            None
        } else {
            Some(check_url(config, http, &idp).await)
        }
    };
    let team_check = async {
        Some(match team_domain.await? {
            Some(team) => {
                let url = Url::parse(&format!("https://{team}/")).ok();
                match url {
                    Some(u) => check_url(config, http, &u).await,
                    None => CheckResult::skip(
                        &format!("{}{team}", ids::TLS_PREFIX),
                        "skipped: bad team domain",
                    ),
                }
            }
            None => CheckResult::skip(
                &format!("{}team", ids::TLS_PREFIX),
                format!(
                    "skipped: the team domain is unknown (give --team, or fix {})",
                    ids::SERVICE_REDIRECT
                ),
            ),
        })
    };
    let (s, t, i) = tokio::join!(service_check, team_check, idp_check);
    let mut out = vec![s];
    out.extend(t);
    out.extend(i);
    out
}

async fn check_url(config: &Config, http: &Http, url: &Url) -> CheckResult {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let id = format!("{}{host}", ids::TLS_PREFIX);
    if url.scheme() != "https" {
        return CheckResult::skip(&id, format!("skipped: {url} is not https"));
    }
    let port = url.port_or_known_default().unwrap_or(443);
    // The same routing table, with the same precedence, and the same proxy, as the
    // HTTP requests.
    let via = match crate::http::route_for(&config.http.routes, &host, port) {
        Some(r) => tls::Via::Pin(r.addr),
        None => match crate::http::proxy_for(&config.http.routes, &config.http.proxies, url) {
            Some(proxy) => tls::Via::Proxy(proxy),
            None => tls::Via::Direct,
        },
    };
    let mut f = Findings::start(&id);
    let (budget, _) = http.budget();
    // The HTTP client's own handshake with the host, when a request of this run goes
    // there (all requests of one turn are under way after a yield): its chain, verdict
    // and protocol, instead of a handshake of this check's own.
    for _ in 0..2 {
        tokio::task::yield_now().await;
    }
    if let Some(done) = http.first_request_done(&host, port) {
        let waited = tokio::time::Instant::now();
        let seen = tokio::time::timeout(budget, http.handshakes().wait(&host, done)).await;
        f.not_charged(waited.elapsed());
        if let Ok(Some(report)) = seen {
            f.detail("handshake", "the HTTP client's");
            return judge(f, config, &host, port, report);
        }
    }
    // The wait above counts against the run: what is left now bounds the probe.
    let (budget, on_timeout) = http.budget();
    if budget.is_zero() {
        f.request_failed(format!("the TLS handshake with {host}"), &on_timeout);
        return f.finish("");
    }
    // A handshake is a connection: the connect timeout bounds it.
    let connect_limited = http.connect_timeout() < budget;
    let wait = http
        .waits()
        .begin(&id, &host, format!("the TLS handshake with {host}:{port}"));
    let probed = tls::probe_via(
        &host,
        port,
        via,
        &config.http.extra_roots,
        budget.min(http.connect_timeout()),
    )
    .await;
    let report = match probed {
        Ok(r) => r,
        Err(TlsProbeError::Timeout(_)) => {
            let e = if let (tls::Via::Proxy(proxy), true) = (via, connect_limited) {
                crate::http::HttpError::Proxy(proxy.failure(
                    &host,
                    port,
                    crate::proxy::Problem::Timeout(http.connect_timeout()),
                ))
            } else if connect_limited {
                crate::http::HttpError::ConnectTimeout {
                    host: host.clone(),
                    after: http.connect_timeout(),
                }
            } else if matches!(on_timeout, crate::http::HttpError::Deadline { .. }) {
                http.deadline_error_for(Some(&wait))
            } else {
                on_timeout
            };
            drop(wait);
            f.request_failed(format!("TLS handshake with {host}"), &e);
            return f.finish("");
        }
        Err(TlsProbeError::Proxy(failure)) => {
            drop(wait);
            f.detail(crate::finding::PROXY_FAILED, failure.proxy.clone());
            f.fail_transport(failure.to_string(), failure.hint());
            return f.finish("");
        }
        Err(e) => {
            let hint = match &e {
                TlsProbeError::Dns(..) => format!(
                    "check the DNS record for {host}, or pin it with --resolve {host}:{port}:ADDRESS"
                ),
                TlsProbeError::Connect(..) => format!(
                    "nothing accepts connections for {host}:{port}; check the proxy or tunnel in front of it"
                ),
                _ => format!(
                    "the server at {host}:{port} ended the TLS handshake; check that it serves HTTPS with a certificate for {host} (the proxy's TLS settings)"
                ),
            };
            f.fail_transport(e.to_string(), hint);
            return f.finish("");
        }
    };
    judge(f, config, &host, port, report)
}

/// The verdict on what `host` presented.
fn judge(
    mut f: Findings,
    config: &Config,
    host: &str,
    port: u16,
    report: crate::tls::TlsReport,
) -> CheckResult {
    let now = crate::timefmt::unix_now();
    if let Some(v) = &report.version {
        f.detail("protocol", v.clone());
    }
    f.detail("chain_length", report.chain_len);
    let Some(leaf) = &report.leaf else {
        f.fail(
            format!("{host} presented a certificate ssoprobe cannot parse"),
            format!("the certificate of {host} is not valid X.509 for ssoprobe's parser; check it with: openssl s_client -connect {host}:{port} -servername {host}"),
        );
        return f.finish("");
    };
    let days = leaf.days_left(now);
    f.detail("subject", leaf.subject.clone());
    f.detail("issuer", leaf.issuer.clone());
    f.detail("dns_names", leaf.dns_names.clone());
    f.detail("not_after", leaf.not_after_date.clone());
    f.detail("not_after_unix", leaf.not_after);
    f.detail("days_left", days);
    f.detail("warn_days", config.tls_warn_days);
    f.detail("fail_days", config.tls_fail_days);
    let renew = format!(
        "renew the certificate of {host} (behind Cloudflare: SSL/TLS → Edge Certificates; on your own proxy: check its ACME renewal)"
    );
    if let Some(problem) = &report.problem {
        let when = if leaf.not_after < now {
            format!(
                " (not after {}, {} days ago)",
                leaf.not_after_date,
                (now - leaf.not_after) / 86_400
            )
        } else {
            format!(
                " (issuer {}, not after {})",
                leaf.issuer, leaf.not_after_date
            )
        };
        let hint = if problem.contains("expired") {
            renew
        } else if problem.contains("not trusted") {
            format!(
                "{host}'s chain does not lead to a trusted root; if it comes from an internal CA pass it with --ca-file, else install the full chain (intermediates) on the server"
            )
        } else if problem.contains("host name") {
            format!(
                "the certificate names {}; it must cover {host}",
                leaf.dns_names.join(", ")
            )
        } else {
            format!("fix the certificate of {host}")
        };
        f.fail(format!("{problem}{when}"), hint);
        return f.finish("");
    }
    let expiry = format!("expires in {days} days (not after {})", leaf.not_after_date);
    if days < config.tls_fail_days {
        f.fail(
            format!("certificate {expiry}"),
            format!(
                "{renew}; the failure threshold is {} days",
                config.tls_fail_days
            ),
        );
    } else if days < config.tls_warn_days {
        f.warn(
            format!("certificate {expiry}"),
            format!(
                "{renew}; the warning threshold is {} days",
                config.tls_warn_days
            ),
        );
    }
    f.finish(format!(
        "certificate valid for {host}, {days} days left (issuer {}{})",
        leaf.issuer,
        report
            .version
            .as_deref()
            .map(|v| format!(", {v}"))
            .unwrap_or_default()
    ))
}
