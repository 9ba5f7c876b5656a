//! The lab's RSA signing keys: Pocket ID's single JWKS key and Cloudflare Access's
//! current and previous keys.

use super::tls::{self, Validity};
use super::{LabError, TEAM_HOST, wire};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rcgen::{CertificateParams, KeyPair, PKCS_RSA_SHA256, PublicKeyData as _};
use serde::Serialize;
use serde_json::{Value, json};
use std::future::Future;

/// An RS256 signing key and the public half a JWKS publishes.
pub(super) struct RsaKey {
    /// The key id JWT headers and the JWKS carry.
    pub(super) kid: String,
    encoding: EncodingKey,
    /// The public half, to verify what this key signed.
    decoding: DecodingKey,
    /// Base64url modulus.
    n: String,
    /// Base64url public exponent.
    e: String,
}

impl RsaKey {
    /// The public JWK, with the members both Pocket ID and Access publish.
    pub(super) fn jwk(&self) -> Value {
        json!({
            "kid": self.kid,
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "e": self.e,
            "n": self.n,
        })
    }

    /// A compact RS256 JWT over `claims`, with this key's `kid`.
    pub(super) fn sign<T: Serialize>(
        &self,
        claims: &T,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign_typed("JWT", claims)
    }

    /// A compact RS256 JWT over `claims` whose header says `typ` (RFC 9068 access
    /// tokens say `at+jwt`).
    pub(super) fn sign_typed<T: Serialize>(
        &self,
        typ: &str,
        claims: &T,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// The key that verifies this key's signatures.
    pub(super) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// An Access signing key with the self-signed certificate `/cdn-cgi/access/certs`
/// publishes next to it.
pub(super) struct AccessKey {
    pub(super) key: RsaKey,
    /// PEM.
    pub(super) cert_pem: String,
}

/// Every key the lab signs with.
pub(super) struct Keys {
    /// Pocket ID's signing key.
    pub(super) idp: RsaKey,
    /// The Access key that signs now.
    pub(super) access_current: AccessKey,
    /// The Access key from before the last rotation, still published.
    pub(super) access_previous: AccessKey,
}

/// Starts generating the keys on blocking threads right away (RSA key generation is
/// the slow part of start-up, so the three keys are made in parallel while the
/// caller does other work); the returned future collects them.
pub(super) fn spawn_generation() -> impl Future<Output = Result<Keys, LabError>> {
    let idp = tokio::task::spawn_blocking(pocket_id_key);
    let current = tokio::task::spawn_blocking(|| access_key(0));
    // Access rotates every six weeks; the previous key was the current one then.
    let previous = tokio::task::spawn_blocking(|| access_key(42));
    async move {
        let (idp, current, previous) = tokio::try_join!(idp, current, previous)?;
        Ok(Keys {
            idp: idp?,
            access_current: current?,
            access_previous: previous?,
        })
    }
}

/// A fresh RSA-2048 key pair and its RS256 JWT signing key.
fn generate(kid: impl FnOnce(&KeyPair) -> String) -> Result<(RsaKey, KeyPair), LabError> {
    let pair = KeyPair::generate_for(&PKCS_RSA_SHA256)?;
    let encoding = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes())?;
    let AlgorithmParameters::RSA(rsa) =
        Jwk::from_encoding_key(&encoding, Algorithm::RS256)?.algorithm
    else {
        return Err(LabError::Keys(
            "an RSA key did not give RSA JWK parameters".to_string(),
        ));
    };
    let decoding = DecodingKey::from_rsa_components(&rsa.n, &rsa.e)?;
    let key = RsaKey {
        kid: kid(&pair),
        encoding,
        decoding,
        n: rsa.n,
        e: rsa.e,
    };
    Ok((key, pair))
}

/// Pocket ID's key: `kid` is 8 random bytes in unpadded base64url (11 characters),
/// as Pocket ID's `generateRandomKeyID` makes it.
fn pocket_id_key() -> Result<RsaKey, LabError> {
    generate(|_| wire::b64url(&wire::random_bytes(8))).map(|(key, _)| key)
}

/// An Access key issued `days_ago` days ago. Access kids are 64 hex characters; the
/// SHA-256 of the public key gives that shape and ties the kid to the key.
fn access_key(days_ago: u64) -> Result<AccessKey, LabError> {
    let (key, pair) = generate(|pair| wire::sha256_hex(&pair.subject_public_key_info()))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = tls::name(TEAM_HOST);
    Validity::around(wire::unix_now(), days_ago, 90).apply(&mut params);
    let cert = params.self_signed(&pair)?;
    Ok(AccessKey {
        key,
        cert_pem: cert.pem(),
    })
}
