//! The TLS probe behind the `tls.<host>` checks.
//!
//! It performs its own handshake, with a verifier that records the presented chain and
//! the verdict of the platform verifier (plus `--ca-file` roots) but lets the handshake
//! finish, so that an expired or untrusted certificate can still be described: names,
//! issuer and exactly when it stops (or stopped) being valid.

use crate::text::server_text;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;

/// What one handshake showed.
#[derive(Debug, Clone)]
pub struct TlsReport {
    /// The verifier's verdict: `None` when the chain is valid for the host.
    pub problem: Option<String>,
    /// The leaf certificate, parsed.
    pub leaf: Option<LeafInfo>,
    /// Negotiated protocol version, e.g. "TLSv1.3".
    pub version: Option<String>,
    /// Certificates presented (leaf included).
    pub chain_len: usize,
}

/// The facts of a leaf certificate an operator cares about.
#[derive(Debug, Clone)]
pub struct LeafInfo {
    /// Subject common name, if any.
    pub subject: String,
    /// Issuer common name or organisation.
    pub issuer: String,
    /// DNS names in the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: i64,
    /// notAfter as a date, YYYY-MM-DD (UTC).
    pub not_after_date: String,
}

impl LeafInfo {
    /// Whole days until notAfter (negative once expired).
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }
}

/// Why the probe could not complete a handshake at all.
#[derive(Debug, thiserror::Error)]
pub enum TlsProbeError {
    /// Resolution failed.
    #[error("DNS lookup for {0} failed: {1}")]
    Dns(String, String),
    /// TCP connect failed.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// The handshake failed for a reason other than the certificate.
    #[error("TLS handshake with {0} failed: {1}")]
    Handshake(String, String),
    /// Out of time.
    #[error("timed out after {}", crate::timefmt::human_duration(*.0))]
    Timeout(Duration),
    /// The proxy the handshake goes through failed it.
    #[error("{0}")]
    Proxy(crate::proxy::ProxyFailure),
    /// Set-up problem (bad CA file, no crypto provider).
    #[error("{0}")]
    Setup(String),
}

/// The verifier of the system's roots plus `extra_roots`, built once per set of extra
/// roots for the whole process: loading the system's roots costs milliseconds of CPU,
/// and a run (or an exporter's every probe) needs it several times.
pub fn verifier(extra_roots: &[Vec<u8>]) -> Result<Arc<dyn ServerCertVerifier>, String> {
    type Cache = Vec<(Vec<Vec<u8>>, Arc<dyn ServerCertVerifier>)>;
    static CACHE: std::sync::OnceLock<Mutex<Cache>> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let mut cache = cache
        .lock()
        .map_err(|_| "trust-root cache poisoned".to_string())?;
    if let Some((_, v)) = cache
        .iter()
        .find(|(roots, _)| roots.as_slice() == extra_roots)
    {
        return Ok(v.clone());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = extra_roots
        .iter()
        .map(|der| CertificateDer::from(der.clone()));
    let v = system_verifier(roots, provider)?;
    cache.push((extra_roots.to_vec(), v.clone()));
    Ok(v)
}

/// On Linux the system's trust is its CA bundle file, as OpenSSL and curl read it:
/// `SSL_CERT_FILE`, else the distribution's bundle. Loaded alone, it is a third of the
/// work of also reading every file of the certificate directory, which holds the same
/// roots again, each twice (file and hash link) — OpenSSL too reads the file at once and
/// the directory only to look up a root the file lacks. Without a bundle file, the
/// platform's own verifier (which reads `SSL_CERT_DIR`), as on other systems.
fn system_verifier(
    extra: impl Iterator<Item = CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    #[cfg(target_os = "linux")]
    {
        let bundle = std::env::var_os("SSL_CERT_FILE")
            .map(std::path::PathBuf::from)
            .or_else(|| openssl_probe::probe().cert_file)
            .filter(|f| f.is_file());
        if let Some(bundle) = bundle {
            let loaded = rustls_native_certs::load_certs_from_paths(Some(&bundle), None);
            let mut store = rustls::RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(loaded.certs);
            if added == 0 {
                return Err(format!(
                    "cannot load trust roots: {} holds no certificate (reinstall the ca-certificates package, or point SSL_CERT_FILE at a CA bundle)",
                    bundle.display()
                ));
            }
            store.add_parsable_certificates(extra);
            return rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                provider,
            )
            .build()
            .map(|v| v as Arc<dyn ServerCertVerifier>)
            .map_err(|e| format!("cannot load trust roots: {e}"));
        }
    }
    Ok(Arc::new(
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
            .map_err(|e| format!("cannot load trust roots: {e}"))?,
    ))
}

/// The rustls configuration of the HTTP client: the shared verifier — enforced, or with
/// `--insecure` only recorded (signatures are still checked) — recording every
/// certificate chain it is shown in `handshakes`, for the `tls.*` checks.
pub fn client_config(
    extra_roots: &[Vec<u8>],
    insecure: bool,
    handshakes: Arc<Handshakes>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(Recording {
        inner: verifier(extra_roots)?,
        enforce: !insecure,
        handshakes,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // HTTP/2 where the server offers it (Cloudflare's edge does): concurrent requests
    // to a host share one connection.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificate chains a run's HTTP client was shown, by host, with the verifier's
/// verdict and the protocol: the `tls.*` checks read them instead of making a
/// handshake of their own (half of a run's connections).
#[derive(Debug, Default)]
pub struct Handshakes {
    seen: Mutex<Vec<Seen>>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Clone)]
struct Seen {
    host: String,
    chain: Vec<CertificateDer<'static>>,
    verdict: Option<rustls::Error>,
    version: Option<&'static str>,
}

impl Handshakes {
    /// What the client was shown by `host`, as a `tls.*` check reports it.
    pub fn report(&self, host: &str) -> Option<TlsReport> {
        let seen = self.seen.lock().ok()?;
        let s = seen
            .iter()
            .rev()
            .find(|s| s.host.eq_ignore_ascii_case(host))?;
        Some(TlsReport {
            problem: s.verdict.as_ref().map(describe_rustls_error),
            leaf: s.chain.first().and_then(|c| parse_leaf(c.as_ref())),
            version: s.version.map(str::to_string),
            chain_len: s.chain.len(),
        })
    }

    /// Waits until `host`'s chain is recorded, or `done` resolves (the request that
    /// would have shown it ended); then what was recorded.
    pub async fn wait(
        &self,
        host: &str,
        done: impl std::future::Future<Output = ()>,
    ) -> Option<TlsReport> {
        tokio::pin!(done);
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(report) = self.report(host) {
                return Some(report);
            }
            tokio::select! {
                () = &mut changed => {}
                () = &mut done => return self.report(host),
            }
        }
    }

    fn record(
        &self,
        host: String,
        chain: Vec<CertificateDer<'static>>,
        verdict: Option<rustls::Error>,
    ) {
        if let Ok(mut seen) = self.seen.lock() {
            // A handful of hosts per run; bounded all the same.
            if seen.len() >= 64 {
                seen.remove(0);
            }
            seen.push(Seen {
                host,
                chain,
                verdict,
                version: None,
            });
        }
        self.changed.notify_waiters();
    }

    /// The protocol of the handshake whose leaf is `leaf` (the signature check comes
    /// after the chain's).
    fn protocol(&self, leaf: &CertificateDer<'_>, version: &'static str) {
        if let Ok(mut seen) = self.seen.lock()
            && let Some(s) = seen
                .iter_mut()
                .rev()
                .find(|s| s.chain.first().is_some_and(|c| c.as_ref() == leaf.as_ref()))
        {
            s.version = Some(version);
        }
        self.changed.notify_waiters();
    }
}

/// The HTTP client's verifier: the shared one, its chains and verdicts recorded.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ServerCertVerifier>,
    /// False with `--insecure`: the verdict is recorded, not enforced.
    enforce: bool,
    handshakes: Arc<Handshakes>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        self.handshakes.record(
            server_name.to_str().to_ascii_lowercase(),
            chain,
            verdict.as_ref().err().cloned(),
        );
        match verdict {
            Err(e) if self.enforce => Err(e),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = self.inner.verify_tls12_signature(message, cert, dss);
        self.handshakes.protocol(cert, "TLSv1.2");
        valid
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = self.inner.verify_tls13_signature(message, cert, dss);
        self.handshakes.protocol(cert, "TLSv1.3");
        valid
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Where the probe's connection goes: a pinned address, through a proxy, or to what
/// the host name resolves to.
#[derive(Clone, Copy, Debug)]
pub enum Via<'a> {
    /// A pinned address (`--resolve`, `--connect-to`): directly there.
    Pin(SocketAddr),
    /// Through this proxy, which is asked for the host by name.
    Proxy(&'a crate::proxy::Proxy),
    /// To the host name's address.
    Direct,
}

/// Handshakes with `host` at `addr` (or at what `host:port` resolves to) and reports.
pub async fn probe(
    host: &str,
    port: u16,
    addr: Option<SocketAddr>,
    extra_roots: &[Vec<u8>],
    budget: Duration,
) -> Result<TlsReport, TlsProbeError> {
    let via = addr.map_or(Via::Direct, Via::Pin);
    probe_via(host, port, via, extra_roots, budget).await
}

/// Handshakes with `host` where `via` says (a pin, a proxy, or its name's address) and
/// reports.
pub async fn probe_via(
    host: &str,
    port: u16,
    via: Via<'_>,
    extra_roots: &[Vec<u8>],
    budget: Duration,
) -> Result<TlsReport, TlsProbeError> {
    match tokio::time::timeout(budget, probe_inner(host, port, via, extra_roots)).await {
        Ok(r) => r,
        Err(_) => Err(TlsProbeError::Timeout(budget)),
    }
}

async fn probe_inner(
    host: &str,
    port: u16,
    via: Via<'_>,
    extra_roots: &[Vec<u8>],
) -> Result<TlsReport, TlsProbeError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let inner = verifier(extra_roots).map_err(TlsProbeError::Setup)?;
    // The client's recording verifier, not enforcing: this connection carries no data,
    // and the verdict is what the check reports.
    let handshakes = Arc::new(Handshakes::default());
    let recorder = Arc::new(Recording {
        inner,
        enforce: false,
        handshakes: handshakes.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsProbeError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(recorder)
        .with_no_client_auth();
    let tcp = match via {
        Via::Proxy(proxy) => crate::proxy::open(proxy, host, port)
            .await
            .map_err(|problem| TlsProbeError::Proxy(proxy.failure(host, port, problem)))?,
        Via::Pin(addr) => TcpStream::connect(addr)
            .await
            .map_err(|e| TlsProbeError::Connect(shown(host), server_text(&e.to_string())))?,
        Via::Direct => {
            let target = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| TlsProbeError::Dns(shown(host), server_text(&e.to_string())))?
                .next()
                .ok_or_else(|| TlsProbeError::Dns(shown(host), "no addresses".into()))?;
            TcpStream::connect(target)
                .await
                .map_err(|e| TlsProbeError::Connect(shown(host), server_text(&e.to_string())))?
        }
    };
    let name = ServerName::try_from(host.to_string()).map_err(|e| {
        TlsProbeError::Setup(format!(
            "{} is not a valid server name: {}",
            shown(host),
            server_text(&e.to_string())
        ))
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = connector.connect(name, tcp).await;
    let Some(report) = handshakes.report(host) else {
        let detail = handshake
            .err()
            .map(|e| handshake_error(&e))
            .unwrap_or_else(|| "no certificate presented".into());
        return Err(TlsProbeError::Handshake(shown(host), detail));
    };
    if let Err(e) = &handshake
        && report.problem.is_none()
    {
        return Err(TlsProbeError::Handshake(shown(host), handshake_error(e)));
    }
    Ok(report)
}

/// Parses the fields of a DER certificate that the report shows.
pub fn parse_leaf(der: &[u8]) -> Option<LeafInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .or_else(|| {
                name.iter_organization()
                    .next()
                    .and_then(|a| a.as_str().ok())
            })
            .unwrap_or("")
            .to_string()
    };
    let dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    x509_parser::extensions::GeneralName::DNSName(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(LeafInfo {
        subject: cn(cert.subject()),
        issuer: cn(cert.issuer()),
        dns_names,
        not_after: cert.validity().not_after.timestamp(),
        not_before: cert.validity().not_before.timestamp(),
        not_after_date: cert.validity().not_after.to_datetime().date().to_string(),
    })
}

/// One sentence for a rustls error, in the operator's terms.
pub fn describe_rustls_error(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the certificate is not valid yet (check the server's clock)".into()
            }
            CertificateError::UnknownIssuer => {
                "the certificate is not trusted: its chain does not lead to a known root".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the certificate is not valid for this host name".into()
            }
            CertificateError::Revoked => "the certificate has been revoked".into(),
            CertificateError::BadSignature => "the certificate's signature is invalid".into(),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "the certificate is not meant for TLS servers".into()
            }
            other => server_text(&format!("certificate rejected: {other:?}")),
        },
        rustls::Error::AlertReceived(alert) => {
            server_text(&format!("the server sent a TLS alert: {alert:?}"))
        }
        other => server_text(&other.to_string()),
    }
}

/// A host name for an error message: it may come from a server's redirect.
fn shown(host: &str) -> String {
    server_text(host)
}

/// A failed handshake in one bounded, printable sentence: the rustls error inside the
/// I/O error if there is one (a TLS alert, a protocol violation), else the I/O error.
fn handshake_error(error: &std::io::Error) -> String {
    let mut inner = error.get_ref();
    while let Some(e) = inner {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return describe_rustls_error(tls);
        }
        inner = e.downcast_ref::<std::io::Error>().and_then(|n| n.get_ref());
    }
    server_text(&error.to_string())
}
