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

/// The hint for the API key step's refusals: 401 means the key itself was refused.
const API_KEY_HINT: &str = "Pocket ID did not accept the key in --api-key-file: make one in Pocket ID → Settings → API Keys (signed in as an admin) and put it in the file, or set STATIC_API_KEY in Pocket ID's environment and use that value";

/// An error of a step that uses the session (or nothing).
fn step(step: &str) -> impl Fn(ApiError) -> EnrollError + '_ {
    move |source| {
        let hint = match (source.status(), source.code()) {
            (Some(401), Some("token_invalid_or_expired")) => Some(
                "the login code is wrong, used or expired: create a new one in Pocket ID → Users → (user) → Login Code".to_string(),
            ),
            (Some(403), Some("user_disabled")) => Some("the user is disabled in Pocket ID".to_string()),
            (Some(429), _) => Some("Pocket ID rate-limits this; wait and try again once".to_string()),
            _ => insecure_hint(&source),
        };
        EnrollError {
            step: step.to_string(),
            source,
            hint,
        }
    }
}

/// An error of a step that uses the admin API key: a 401 is the key refused, whatever
/// Pocket ID's code (`not_signed_in` when it does not know the key).
fn admin_step(step: &str) -> impl Fn(ApiError) -> EnrollError + '_ {
    move |source| {
        match source.status() {
        Some(401) => EnrollError {
            step: format!("{step}: Pocket ID refused the API key"),
            source,
            hint: Some(API_KEY_HINT.to_string()),
        },
        Some(403) => EnrollError {
            step: format!("{step}: the API key may not do this"),
            source,
            hint: Some(
                "the API key's owner is not an admin: make the key as an admin (Pocket ID → Settings → API Keys), or use STATIC_API_KEY".to_string(),
            ),
        },
        _ => self::step(step)(source),
    }
    }
}

fn insecure_hint(source: &ApiError) -> Option<String> {
    matches!(source, ApiError::Insecure { .. }).then(|| {
        "give Pocket ID's https URL (its APP_URL, e.g. https://id.example.com)".to_string()
    })
}

/// What `passkey remove` found at Pocket ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The passkey was deleted now.
    Deleted,
    /// Pocket ID no longer had it (deleted in its UI, or by an earlier remove).
    AlreadyGone,
}

/// A step that cannot start: the error carries no answer of Pocket ID.
fn local(step: &str, source: ApiError, hint: Option<String>) -> EnrollError {
    EnrollError {
        step: step.to_string(),
        source,
        hint,
    }
}

/// Why a secret (API key, login code) may not go to `idp`: only https carries one.
fn insecure(idp: &Url) -> Option<EnrollError> {
    if idp.scheme() == "https" {
        return None;
    }
    let source = ApiError::Insecure {
        url: idp.origin().ascii_serialization(),
    };
    let hint = insecure_hint(&source);
    Some(local("checking Pocket ID's URL", source, hint))
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
    if let Some(e) = insecure(idp) {
        return Err(e);
    }
    let label = "enroll";
    let mut api = Api::new(http, idp, label);
    let user: User = match how {
        Bootstrap::ApiKey { key, user } => {
            api = api.with_api_key(key.clone());
            let user = find_or_create_user(&api, &user).await?;
            sign_in_as(&api, &user).await?
        }
        Bootstrap::LoginCode(code) => exchange(&api, &code).await?,
    };
    let (made, stored) = register_passkey(&api, idp).await?;
    // Leave no session behind.
    let _ = api
        .call(Method::POST, "/api/webauthn/logout", None, false)
        .await;
    Ok(credential_file(idp, user, made, stored))
}

/// The Pocket ID user whose e-mail address or username is `user`, created (an ordinary
/// user, not an admin) when there is none.
async fn find_or_create_user(api: &Api<'_>, user: &str) -> Result<User, EnrollError> {
    let found: UserList = api
        .admin_get(&["api", "users"], &[("search", user.to_string())])
        .await
        .map_err(admin_step("looking up the user"))?;
    let wanted = user.to_ascii_lowercase();
    let existing = found.data.into_iter().find(|u| {
        u.email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(&wanted))
            || u.username.eq_ignore_ascii_case(&wanted)
    });
    if let Some(u) = existing {
        return Ok(u);
    }
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
    .map_err(admin_step("creating the user"))
}

/// A session for `user`: a one-time login code minted with the admin API key, exchanged.
async fn sign_in_as(api: &Api<'_>, user: &User) -> Result<User, EnrollError> {
    const MINTING: &str = "creating a one-time login code for the user";
    if !passkey::is_uuid(&user.id) {
        return Err(local(
            MINTING,
            ApiError::BadPath("Pocket ID answered a user id that is not a UUID".into()),
            Some("is this Pocket ID (v2 or later)? See its answers with --trace".into()),
        ));
    }
    let url = api
        .endpoint(&["api", "users", &user.id, "one-time-access-token"])
        .map_err(step(MINTING))?;
    let code: OneTimeToken = api
        .call_json_url(Method::POST, url, Some(serde_json::json!({})), true)
        .await
        .map_err(admin_step(MINTING))?;
    exchange(api, &code.token).await
}

/// Registers a new software passkey for the signed-in user: the credential made, and
/// the passkey as Pocket ID stored it.
async fn register_passkey(
    api: &Api<'_>,
    idp: &Url,
) -> Result<(passkey::NewCredential, StoredPasskey), EnrollError> {
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
    Ok((made, stored))
}

/// The credential file of the passkey `made` for `user` at `idp`.
fn credential_file(
    idp: &Url,
    user: User,
    made: passkey::NewCredential,
    stored: StoredPasskey,
) -> CredentialFile {
    let user_handle = String::from_utf8(made.user_handle).unwrap_or_else(|_| user.id.clone());
    CredentialFile {
        version: FILE_VERSION,
        idp: idp.origin().ascii_serialization(),
        rp_id: made.rp_id,
        user_id: user_handle,
        username: user.username,
        email: user.email,
        credential_id: URL_SAFE_NO_PAD.encode(&made.credential_id),
        // Pocket ID's ids are UUIDs; anything else is left out (remove then looks it up).
        pocket_id_passkey_id: passkey::is_uuid(&stored.id).then_some(stored.id),
        private_key: made.pkcs8,
        counter: 0,
        created_at: crate::timefmt::unix_now(),
        last_used_at: None,
    }
}

async fn exchange(api: &Api<'_>, code: &Secret) -> Result<User, EnrollError> {
    const EXCHANGING: &str = "signing in with the one-time login code";
    let url = api
        .endpoint(&["api", "one-time-access-token", code.expose()])
        .map_err(step(EXCHANGING))?;
    api.call_json_url(Method::POST, url, None, false)
        .await
        .map_err(step(EXCHANGING))
}

/// Deletes the file's passkey at Pocket ID (admin API, https only). A passkey Pocket ID
/// no longer has is [`Removal::AlreadyGone`]: removing the file is still right.
pub async fn remove(
    http: &Http,
    file: &CredentialFile,
    key: Secret,
) -> Result<Removal, EnrollError> {
    const READING: &str = "reading the passkey file";
    let idp = Url::parse(&file.idp).map_err(|e| {
        local(
            READING,
            ApiError::BadPath(format!("its idp is not a URL: {e}")),
            None,
        )
    })?;
    if let Some(e) = insecure(&idp) {
        return Err(e);
    }
    // Ids come from a file: they go into the path only when they are ids.
    if !passkey::is_uuid(&file.user_id) {
        return Err(local(
            READING,
            ApiError::BadPath("its user_id is not a Pocket ID user id (a UUID)".into()),
            Some(
                "enrol again, or delete the passkey in Pocket ID → Users → (user) → Passkeys"
                    .into(),
            ),
        ));
    }
    let api = Api::new(http, &idp, "passkey.remove").with_api_key(key);
    let id = match &file.pocket_id_passkey_id {
        Some(id) if passkey::is_uuid(id) => id.clone(),
        Some(_) => {
            return Err(local(
                READING,
                ApiError::BadPath(
                    "its pocket_id_passkey_id is not a Pocket ID passkey id (a UUID)".into(),
                ),
                None,
            ));
        }
        // Older files: find the row by credential id.
        None => match find_passkey_id(&api, file).await? {
            Some(id) => id,
            None => return Ok(Removal::AlreadyGone),
        },
    };
    const DELETING: &str = "deleting the passkey at Pocket ID";
    let url = api
        .endpoint(&["api", "users", &file.user_id, "webauthn-credentials", &id])
        .map_err(step(DELETING))?;
    match api.call_url(Method::DELETE, url, None, true).await {
        Ok(_) => Ok(Removal::Deleted),
        // Already gone at Pocket ID: removing the file is still right.
        Err(e) if e.status() == Some(404) => Ok(Removal::AlreadyGone),
        Err(e) => Err(admin_step(DELETING)(e)),
    }
}

/// The id of the file's passkey among its user's at Pocket ID, found by its credential
/// id; None when the user or the passkey is gone.
async fn find_passkey_id(
    api: &Api<'_>,
    file: &CredentialFile,
) -> Result<Option<String>, EnrollError> {
    const LISTING: &str = "listing the user's passkeys";
    let list: Vec<serde_json::Value> = match api
        .admin_get(
            &["api", "users", &file.user_id, "webauthn-credentials"],
            &[],
        )
        .await
    {
        Ok(list) => list,
        // The user is gone, and its passkeys with it.
        Err(e) if e.status() == Some(404) => return Ok(None),
        Err(e) => return Err(admin_step(LISTING)(e)),
    };
    let raw = String::from_utf8_lossy(&file.credential_id_bytes()).into_owned();
    let found = list
        .iter()
        .filter(|p| {
            p.get("credentialID").and_then(|c| c.as_str()) == Some(raw.as_str())
                || p.get("credentialID").and_then(|c| c.as_str())
                    == Some(file.credential_id.as_str())
        })
        .find_map(|p| p.get("id").and_then(|i| i.as_str()).map(str::to_string));
    match found {
        Some(id) if passkey::is_uuid(&id) => Ok(Some(id)),
        Some(_) => Err(local(
            LISTING,
            ApiError::BadPath("Pocket ID answered a passkey id that is not a UUID".into()),
            None,
        )),
        None => Ok(None),
    }
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

    #[test]
    fn a_refused_api_key_says_so_and_how_to_make_one() {
        let refused = ApiError::Answer {
            status: 401,
            code: Some("not_signed_in".into()),
            message: "You are not signed in".into(),
            retry_after: None,
        };
        let e = admin_step("looking up the user")(refused.clone()).to_string();
        assert!(e.contains("Pocket ID refused the API key"), "{e}");
        assert!(
            e.contains("Settings → API Keys") && e.contains("STATIC_API_KEY"),
            "{e}"
        );
        // A session step's 401 is not about the key.
        let e = step("signing in with the one-time login code")(refused).to_string();
        assert!(!e.contains("API key"), "{e}");
    }

    #[test]
    fn secrets_go_to_https_only() {
        assert!(insecure(&Url::parse("https://id.example.com").unwrap()).is_none());
        let e = insecure(&Url::parse("http://id.example.com").unwrap())
            .unwrap()
            .to_string();
        assert!(
            e.contains("not https") && e.contains("https://id.example.com"),
            "{e}"
        );
    }
}
