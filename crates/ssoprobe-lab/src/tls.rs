//! The lab's throw-away CA and one leaf certificate per host, picked by SNI.

use super::{CF_API_HOST, Fault, FaultSet, IDP_HOST, LabError, SERVICE_HOST, TEAM_HOST, wire};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// One day in seconds.
pub(super) const DAY: u64 = 86_400;

/// What the TLS listener needs, and what a client must trust to talk to it.
pub(super) struct Pki {
    /// The CA certificate, PEM.
    pub(super) ca_pem: String,
    /// Serves each lab host its own certificate.
    pub(super) server_config: Arc<rustls::ServerConfig>,
}

/// A validity window in Unix seconds.
#[derive(Clone, Copy)]
pub(super) struct Validity {
    pub(super) not_before: u64,
    pub(super) not_after: u64,
}

impl Validity {
    /// From `days_ago` days ago until `days_ahead` days from now (negative: in the past).
    pub(super) fn around(now: u64, days_ago: u64, days_ahead: i64) -> Validity {
        let offset = days_ahead.unsigned_abs() * DAY;
        Validity {
            not_before: now.saturating_sub(days_ago * DAY),
            not_after: if days_ahead >= 0 {
                now + offset
            } else {
                now.saturating_sub(offset)
            },
        }
    }

    /// Writes the window into certificate parameters.
    pub(super) fn apply(self, params: &mut CertificateParams) {
        // rcgen takes `time` values; starting from its epoch helper avoids a direct
        // dependency on the `time` crate.
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + Duration::from_secs(self.not_before);
        params.not_after = epoch + Duration::from_secs(self.not_after);
    }
}

/// The leaf validity of `host`: a 90-day certificate issued an hour ago, unless a
/// certificate fault says otherwise.
fn leaf_validity(host: &str, faults: &FaultSet, now: u64) -> Validity {
    match host {
        SERVICE_HOST if faults.has(Fault::CertExpiring) => Validity::around(now, 80, 10),
        IDP_HOST if faults.has(Fault::CertExpired) => Validity::around(now, 92, -2),
        _ => Validity {
            not_before: now.saturating_sub(3600),
            not_after: now.saturating_sub(3600) + 90 * DAY,
        },
    }
}

/// Makes the CA, the four leaf certificates and the rustls configuration.
pub(super) fn build(faults: &FaultSet) -> Result<Pki, LabError> {
    let now = wire::unix_now();
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("ssoprobe lab CA (throw-away)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Wide enough to cover every leaf, including the expired one.
    Validity::around(now, 100, 365).apply(&mut ca_params);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut by_host = HashMap::new();
    for host in [SERVICE_HOST, TEAM_HOST, IDP_HOST, CF_API_HOST] {
        let certified = leaf(host, leaf_validity(host, faults, now), &issuer, &provider)?;
        by_host.insert(host, Arc::new(certified));
    }
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni(by_host)));
    // Cloudflare's edge offers HTTP/2; clients that ask only for HTTP/1.1 get that.
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Pki {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(server_config),
    })
}

/// A distinguished name with an organisation and a common name.
pub(super) fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "ssoprobe lab");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A server certificate for `host`, signed by the lab CA, with its key.
fn leaf(
    host: &str,
    validity: Validity,
    issuer: &Issuer<'_, &KeyPair>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, LabError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![host.to_string()])?;
    params.distinguished_name = name(host);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    validity.apply(&mut params);
    let cert = params.signed_by(&key, issuer)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok(CertifiedKey::from_der(
        vec![cert.der().clone()],
        key_der,
        provider,
    )?)
}

/// Picks the certificate by the ClientHello's server name. A hello without one, or
/// for a host the lab does not serve, gets no certificate and the handshake fails,
/// as it does at Cloudflare's edge.
#[derive(Debug)]
struct BySni(HashMap<&'static str, Arc<CertifiedKey>>);

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        self.0.get(name.as_str()).cloned()
    }
}
