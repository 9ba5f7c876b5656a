//! Enrolment through Pocket ID's API: give a dedicated monitoring user a software passkey
//! (behind `ssoprobe enroll` and the demo), and delete one (`ssoprobe passkey remove`).

use super::{Api, ApiError, User};
use crate::http::Http;
use crate::passkey::{self, CredentialFile, FILE_VERSION, Registrar};
use crate::redact::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde::Deserialize;
use url::Url;

/// How the first session is obtained.
pub enum Bootstrap {
    /// An admin API key: find or create the user, mint a one-time code, exchange it.
    ApiKey {
        /// The key (X-API-Key).
        key: Secret,
        /// The user's e-mail (or username).
        user: String,
    },
    /// A one-time login code (or `/lc/CODE` link) an admin made in Pocket ID's UI.
    LoginCode(Secret),
}

/// Why enrolment failed: the step and Pocket ID's answer.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}{}", hint.as_deref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
pub struct EnrollError {
    /// What ssoprobe was doing.
    pub step: String,
    /// What went wrong.
    pub source: ApiError,
    /// What to do.
    pub hint: Option<String>,
}

fn step(step: &str) -> impl Fn(ApiError) -> EnrollError + '_ {
    move |source| {
        let hint = match (source.status(), source.code()) {
            (Some(401), Some("invalid_api_key")) | (Some(401), None) if step.contains("user") => Some(
                "the API key is not valid: create one in Pocket ID → Settings → API Keys (as an admin), or use STATIC_API_KEY".to_string(),
            ),
            (Some(403), _) if step.contains("user") => Some("the API key's owner is not an admin".to_string()),
            (Some(401), Some("token_invalid_or_expired")) => Some(
                "the login code is wrong, used or expired: create a new one in Pocket ID → Users → (user) → Login Code".to_string(),
            ),
            (Some(403), Some("user_disabled")) => Some("the user is disabled in Pocket ID".to_string()),
            (Some(429), _) => Some("Pocket ID rate-limits this; wait and try again once".to_string()),
            _ => None,
        };
        EnrollError {
            step: step.to_string(),
            source,
            hint,
        }
    }
}

#[derive(Deserialize)]
struct UserList {
    data: Vec<User>,
}

#[derive(Deserialize)]
struct OneTimeToken {
    token: Secret,
}

#[derive(Deserialize)]
struct StoredPasskey {
    id: String,
}

/// The code in a login code or link (`https://id.example.com/lc/ABC123`).
pub fn login_code(input: &str) -> String {
    let t = input.trim();
    match Url::parse(t) {
        Ok(u) => u
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .or_else(|| {
                u.path_segments()
                    .and_then(|mut s| s.next_back().map(str::to_string))
            })
            .unwrap_or_default(),
        Err(_) => t.to_string(),
    }
}

/// Finds or creates the monitoring user, gets a session for it, registers a new
/// software passkey and returns the credential file (not yet written).
pub async fn enroll(http: &Http, idp: &Url, how: Bootstrap) -> Result<CredentialFile, EnrollError> {
    let label = "enroll";
    let mut api = Api::new(http, idp, label);
    let user: User = match how {
        Bootstrap::ApiKey { key, user } => {
            api = api.with_api_key(key.clone());
            let found: UserList = api
                .call_json(
                    Method::GET,
                    &format!("/api/users?search={}", urlencode(&user)),
                    None,
                    true,
                )
                .await
                .map_err(step("looking up the user"))?;
            let wanted = user.to_ascii_lowercase();
            let existing = found.data.into_iter().find(|u| {
                u.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(&wanted))
                    || u.username.eq_ignore_ascii_case(&wanted)
            });
            let user = match existing {
                Some(u) => u,
                None => {
                    let username = wanted
                        .split('@')
                        .next()
                        .unwrap_or("ssoprobe")
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c))
                        .collect::<String>();
                    let email = wanted.contains('@').then_some(wanted.clone());
                    api.call_json(
                        Method::POST,
                        "/api/users",
                        Some(serde_json::json!({
                            "username": if username.is_empty() { "ssoprobe".to_string() } else { username },
                            "email": email,
                            "emailVerified": true,
                            "firstName": "ssoprobe",
                            "lastName": "monitor",
                            "displayName": "ssoprobe monitor",
                            "isAdmin": false,
                            "disabled": false,
                        })),
                        true,
                    )
                    .await
                    .map_err(step("creating the user"))?
                }
            };
            let code: OneTimeToken = api
                .call_json(
                    Method::POST,
                    &format!("/api/users/{}/one-time-access-token", user.id),
                    Some(serde_json::json!({})),
                    true,
                )
                .await
                .map_err(step("creating a one-time login code for the user"))?;
            exchange(&api, &code.token).await?
        }
        Bootstrap::LoginCode(code) => exchange(&api, &code).await?,
    };
    let options = api
        .call_json::<serde_json::Value>(Method::GET, "/api/webauthn/register/start", None, false)
        .await
        .map_err(step("starting the passkey registration"))?;
    let options = passkey::parse_creation_options(options).map_err(|e| EnrollError {
        step: "reading the registration options".into(),
        source: ApiError::Answer {
            status: 200,
            code: None,
            message: e,
            retry_after: None,
        },
        hint: None,
    })?;
    let (registration, made) =
        Registrar::default()
            .register(idp, options)
            .map_err(|e| EnrollError {
                step: "creating the passkey".into(),
                source: ApiError::Answer {
                    status: 200,
                    code: None,
                    message: e.to_string(),
                    retry_after: None,
                },
                hint: Some(format!(
                    "Pocket ID's relying party id must be the host of {idp}: check its APP_URL"
                )),
            })?;
    let stored: StoredPasskey = api
        .call_json(
            Method::POST,
            "/api/webauthn/register/finish",
            Some(passkey::registration_json(&registration)),
            false,
        )
        .await
        .map_err(step("finishing the passkey registration"))?;
    // Leave no session behind.
    let _ = api
        .call(Method::POST, "/api/webauthn/logout", None, false)
        .await;
    let user_handle = String::from_utf8(made.user_handle).unwrap_or_else(|_| user.id.clone());
    Ok(CredentialFile {
        version: FILE_VERSION,
        idp: idp.origin().ascii_serialization(),
        rp_id: made.rp_id,
        user_id: user_handle,
        username: user.username,
        email: user.email,
        credential_id: URL_SAFE_NO_PAD.encode(&made.credential_id),
        pocket_id_passkey_id: Some(stored.id),
        private_key: made.pkcs8,
        counter: 0,
        created_at: crate::timefmt::unix_now(),
        last_used_at: None,
    })
}

async fn exchange(api: &Api<'_>, code: &Secret) -> Result<User, EnrollError> {
    let code = urlencode(code.expose());
    api.call_json(
        Method::POST,
        &format!("/api/one-time-access-token/{code}"),
        None,
        false,
    )
    .await
    .map_err(step("signing in with the one-time login code"))
}

/// Deletes the file's passkey at Pocket ID (admin API).
pub async fn remove(http: &Http, file: &CredentialFile, key: Secret) -> Result<(), EnrollError> {
    let idp = Url::parse(&file.idp).map_err(|e| EnrollError {
        step: "reading the passkey file".into(),
        source: ApiError::Answer {
            status: 0,
            code: None,
            message: format!("idp is not a URL: {e}"),
            retry_after: None,
        },
        hint: None,
    })?;
    let api = Api::new(http, &idp, "passkey.remove").with_api_key(key);
    let id = match &file.pocket_id_passkey_id {
        Some(id) => id.clone(),
        None => {
            // Older files: find the row by credential id.
            let list: Vec<serde_json::Value> = api
                .call_json(
                    Method::GET,
                    &format!("/api/users/{}/webauthn-credentials", file.user_id),
                    None,
                    true,
                )
                .await
                .map_err(step("listing the user's passkeys"))?;
            let raw = String::from_utf8_lossy(&file.credential_id_bytes()).into_owned();
            list.iter()
                .find(|p| p.get("credentialID").and_then(|c| c.as_str()) == Some(raw.as_str()))
                .and_then(|p| p.get("id").and_then(|i| i.as_str()).map(str::to_string))
                .unwrap_or_default()
        }
    };
    match api
        .call(
            Method::DELETE,
            &format!("/api/users/{}/webauthn-credentials/{id}", file.user_id),
            None,
            true,
        )
        .await
    {
        Ok(_) => Ok(()),
        // Already gone at Pocket ID: removing the file is still right.
        Err(e) if e.status() == Some(404) => Ok(()),
        Err(e) => Err(step("deleting the passkey at Pocket ID")(e)),
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_codes_and_links() {
        assert_eq!(login_code(" ABC123 "), "ABC123");
        assert_eq!(
            login_code("https://id.example.com/lc/XYZ789abc123"),
            "XYZ789abc123"
        );
        assert_eq!(
            login_code("https://id.example.com/login/alternative/code?code=Q1W2E3"),
            "Q1W2E3"
        );
    }
}
