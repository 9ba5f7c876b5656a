//! What a relying party in front of the site (Access, oauth2-proxy) does server to
//! server with the lab's Pocket ID: one HTTPS client that resolves id.example.com to
//! the lab, the code grant's pieces, and the id_token's verification.

use crate::{IDP_HOST, wire};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a relying party waits for Pocket ID's token endpoint and JWKS.
const IDP_TIMEOUT: Duration = Duration::from_secs(10);

/// The id_token's claims.
pub(crate) type Claims = serde_json::Map<String, serde_json::Value>;

/// A client for the lab's Pocket ID at `addr`, trusting `ca_pem`, identifying itself as
/// `user_agent` (a WAF rule can single a relying party out by it), and the base URL it
/// reaches Pocket ID at (`https://id.example.com`, with the port when it is not 443).
pub(crate) fn client(
    addr: SocketAddr,
    ca_pem: &str,
    user_agent: &str,
) -> Result<(reqwest::Client, String), reqwest::Error> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only([ca])
        .resolve(IDP_HOST, addr)
        .no_proxy()
        .user_agent(user_agent)
        .timeout(IDP_TIMEOUT)
        .build()?;
    let base = if addr.port() == 443 {
        format!("https://{IDP_HOST}")
    } else {
        format!("https://{IDP_HOST}:{}", addr.port())
    };
    Ok((client, base))
}

/// The `Authorization: Basic …` value of a client's credentials, each form-encoded
/// first as RFC 6749 §2.3.1 asks (Go's `url.QueryEscape`).
pub(crate) fn basic(client_id: &str, secret: &str) -> String {
    let credentials = format!(
        "{}:{}",
        wire::go_query_escape(client_id),
        wire::go_query_escape(secret)
    );
    format!("Basic {}", STANDARD.encode(credentials))
}

/// The id_token of a 200 token answer; `None` for any other answer.
pub(crate) async fn id_token(response: reqwest::Response) -> Option<String> {
    if response.status() != reqwest::StatusCode::OK {
        return None;
    }
    #[derive(Deserialize)]
    struct TokenResponse {
        id_token: String,
    }
    response
        .json::<TokenResponse>()
        .await
        .ok()
        .map(|t| t.id_token)
}

/// The key set at `url`, fetched now; `None` for any failure.
pub(crate) async fn keys(client: &reqwest::Client, url: &str) -> Option<JwkSet> {
    let response = client.get(url).send().await.ok()?;
    if response.status() != reqwest::StatusCode::OK {
        return None;
    }
    response.json::<JwkSet>().await.ok()
}

/// `id_token`'s claims when it verifies with one of `keys`: RS256, a known kid, the
/// issuer Pocket ID is configured with, `audience` in `aud`, not expired.
pub(crate) fn verify(id_token: &str, keys: &JwkSet, audience: &str) -> Option<Claims> {
    let header = jsonwebtoken::decode_header(id_token).ok()?;
    let key = DecodingKey::from_jwk(keys.find(header.kid.as_deref()?)?).ok()?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[format!("https://{IDP_HOST}")]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Claims>(id_token, &key, &validation)
        .ok()
        .map(|t| t.claims)
}
