//! `/cdn-cgi/access/callback` on the team domain: Access redeems the identity
//! provider's code server to server, checks the id_token against the Certificate
//! URL, evaluates the application's policy and hands the browser on to the
//! application's `/authorized`.

use super::tokens::{self, Ticket};
use super::{Access, PendingLogin, lock};
use crate::{ACCESS_USER_AGENT, AUD, CLIENT_ID, SERVICE_HOST, Variant, edge, relying, wire};
use axum::extract::{RawQuery, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

const DENIED_PAGE: edge::Faces = edge::Faces {
    classic: include_str!("../../../../fixtures/cloudflare/access-denied.html"),
    rebranded: include_str!("../../../../fixtures/cloudflare/access-denied-rebranded.html"),
    terse: include_str!("../../../../fixtures/cloudflare/access-denied-terse.html"),
};

/// The texts Access shows when the IdP leg of a login fails (reference §5.1).
const EXCHANGE_FAILED: &str =
    "OIDC ERROR: Failed to exchange code for token. Make sure the client secret is correct.";
const VERIFY_FAILED: &str = "Failed to verify oidc token with fresh keys";
const NO_IDENTITY: &str = "Failed to fetch user/group information from the identity provider";

/// How Access reaches the identity provider from Cloudflare's network: an HTTPS
/// client that resolves id.example.com to the lab (so the lab's faults in front of
/// Pocket ID hit it too), with the client secret the Zero Trust settings hold.
pub(crate) struct IdpLink {
    client: reqwest::Client,
    /// `https://id.example.com`, with the lab's port when it is not 443.
    base: String,
    client_secret: String,
    /// The `redirect_uri` of the code grant: the one the authorize request sent.
    callback_url: String,
    /// The configured Token URL's path.
    token_path: &'static str,
    /// The configured Certificate URL's path.
    jwks_path: &'static str,
}

impl IdpLink {
    /// A link to the lab's Pocket ID at `addr`, trusting `ca_pem`, with the client
    /// secret, callback URL, Token URL and Certificate URL as the faults configure them.
    pub(crate) fn new(
        addr: SocketAddr,
        ca_pem: &str,
        client_secret: String,
        callback_url: String,
        token_path: &'static str,
        jwks_path: &'static str,
    ) -> Result<IdpLink, reqwest::Error> {
        // A WAF rule can single Access out by its User-Agent (faults
        // token-blocked-for-access, jwks-blocked-for-access).
        let (client, base) = relying::client(addr, ca_pem, ACCESS_USER_AGENT)?;
        Ok(IdpLink {
            client,
            base,
            client_secret,
            callback_url,
            token_path,
            jwks_path,
        })
    }

    /// The code grant at the Token URL, client secret in HTTP Basic; the id_token, or
    /// `None` for any failure.
    async fn exchange(&self, code: &str, verifier: Option<&str>) -> Option<String> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.callback_url),
        ];
        if let Some(verifier) = verifier {
            form.push(("code_verifier", verifier));
        }
        let response = self
            .client
            .post(format!("{}{}", self.base, self.token_path))
            .header(
                AUTHORIZATION,
                relying::basic(CLIENT_ID, &self.client_secret),
            )
            .form(&form)
            .send()
            .await
            .ok()?;
        relying::id_token(response).await
    }

    /// The keys at the Certificate URL, fetched fresh, or `None`.
    async fn keys(&self) -> Option<JwkSet> {
        relying::keys(&self.client, &format!("{}{}", self.base, self.jwks_path)).await
    }
}

/// `GET /cdn-cgi/access/callback?code&state[&iss]`.
pub(super) async fn callback(
    State(access): State<Arc<Access>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    // Each state finishes one login.
    let login = params
        .get("state")
        .and_then(|state| lock(&access.logins).remove(state).map(|l| (state, l)))
        .filter(|(_, l)| l.created.elapsed() < super::LOGIN_TTL);
    let variant = access.variant;
    let Some((state, login)) = login else {
        return invalid_login_session(variant);
    };
    let code = params.get("code").map(String::as_str).unwrap_or("");
    if code.is_empty() {
        // The identity provider sent an OAuth error back instead of a code.
        let error = params.get("error").map(String::as_str).unwrap_or("");
        let description = params
            .get("error_description")
            .map(String::as_str)
            .unwrap_or("");
        return edge::access_error(
            variant,
            StatusCode::BAD_REQUEST,
            "Error",
            &format!("OIDC ERROR: {error} {description}"),
        );
    }
    let Some(id_token) = access.idp.exchange(code, login.verifier.as_deref()).await else {
        return edge::access_error(variant, StatusCode::BAD_REQUEST, "Error", EXCHANGE_FAILED);
    };
    let Some(claims) = access
        .idp
        .keys()
        .await
        .and_then(|keys| relying::verify(&id_token, &keys, CLIENT_ID))
    else {
        return edge::access_error(variant, StatusCode::BAD_REQUEST, "Error", VERIFY_FAILED);
    };
    let email = claims
        .get(super::email_claim(&access.faults))
        .and_then(serde_json::Value::as_str)
        .filter(|e| !e.is_empty())
        .map(str::to_string);
    let Some(email) = email else {
        return edge::access_error(variant, StatusCode::BAD_REQUEST, "Error", NO_IDENTITY);
    };
    if !access.policy.allows(&email) {
        return denied(variant, &email, &login);
    }
    finish(&access, state, login, email)
}

/// The global session on the team domain and the hop to the application's
/// `/authorized`.
fn finish(access: &Access, state: &str, login: PendingLogin, email: String) -> Response {
    let org_token = match tokens::org_token(access, &email) {
        Ok(token) => token,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("lab: cannot sign the session token: {e}"),
            )
                .into_response();
        }
    };
    let nonce = wire::random_alphanumeric(20);
    {
        let mut tickets = lock(&access.tickets);
        tickets.retain(|_, t| t.created.elapsed() < super::LOGIN_TTL);
        tickets.insert(
            nonce.clone(),
            Ticket {
                state: state.to_string(),
                email,
                redirect_url: login.redirect_url,
                app_sessions: login.app_sessions,
                created: Instant::now(),
            },
        );
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("nonce", &nonce)
        .append_pair("state", state)
        .finish();
    let mut response = edge::found(
        access.variant,
        &format!(
            "https://{}/cdn-cgi/access/authorized?{query}",
            login.app_host
        ),
    );
    let cookie = format!(
        "CF_Authorization={org_token}; Expires={}; Path=/; Secure; HttpOnly; SameSite=None",
        wire::imf_fixdate(wire::unix_now() + tokens::SESSION_TTL)
    );
    edge::append_cookie(response.headers_mut(), access.variant, &cookie);
    response
}

/// 400 "Invalid login session": the callback cannot be tied to a login Access
/// started (unknown, expired or replayed state).
pub(super) fn invalid_login_session(variant: Variant) -> Response {
    edge::access_error(
        variant,
        StatusCode::BAD_REQUEST,
        "Invalid login session.",
        "Please go to the application URL again.",
    )
}

/// No Allow policy matched: the sign-in page comes back with Access's default
/// block message.
fn denied(variant: Variant, email: &str, login: &PendingLogin) -> Response {
    let login_url = format!(
        "/cdn-cgi/access/login/{}?{}",
        login.app_host,
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("kid", AUD)
            .append_pair("redirect_url", &login.redirect_url)
            .finish()
    );
    let page = wire::fill(
        DENIED_PAGE.of(variant),
        &[
            ("APP_DOMAIN", &wire::html_escape(SERVICE_HOST)),
            ("EMAIL", &wire::html_escape(email)),
            ("LOGIN_URL", &wire::html_escape(&login_url)),
        ],
    );
    let mut response = (StatusCode::FORBIDDEN, [(CONTENT_TYPE, "text/html")], page).into_response();
    let headers = response.headers_mut();
    edge::no_store(headers);
    headers.insert("cf-access-domain", HeaderValue::from_static(SERVICE_HOST));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_failure_texts_are_cloudflares() {
        assert!(EXCHANGE_FAILED.contains("Failed to exchange code for token"));
        assert_eq!(VERIFY_FAILED, "Failed to verify oidc token with fresh keys");
        for variant in Variant::ALL {
            assert!(
                DENIED_PAGE
                    .of(variant)
                    .contains("That account does not have access")
            );
        }
    }
}
