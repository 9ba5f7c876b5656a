//! Passkeys: registration for a signed-in user, discoverable (usernameless) login,
//! the login rate limit, and the admin's listing and deletion of a user's passkeys.
//!
//! webauthn-rs verifies every ceremony (an implementation independent of the
//! authenticators that talk to the lab). It names users by the 16 bytes of a UUID,
//! while Pocket ID's user handle is the UTF-8 text of the UUID (`WebAuthnID()`
//! returns `[]byte(u.ID)`), so the lab writes Pocket ID's shapes itself and
//! translates the handle on the way in.

use super::api::{self, AMR_PASSKEY, ApiError, WEBAUTHN_SESSION_SECONDS, with_cookie};
use super::{ACCESS_TOKEN_COOKIE, PocketId, SESSION_COOKIE};
use crate::{Fault, FaultSet, LabError, wire};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::Value;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

/// Ceremonies time out after 60 s, enforced server-side.
const CEREMONY_TIMEOUT: Duration = Duration::from_secs(WEBAUTHN_SESSION_SECONDS);
/// How long an unfinished ceremony is kept before it is forgotten.
const SESSION_RETENTION: Duration = Duration::from_secs(600);
/// The RP ID an APP_URL changed after enrolment would give (fault wrong-rp-id).
const WRONG_RP_ORIGIN: &str = "https://pocket-id.internal";
/// go-webauthn's default `pubKeyCredParams`: ES256, ES384, ES512, RS256, RS384,
/// RS512, PS256, PS384, PS512, EdDSA.
const CREDENTIAL_ALGORITHMS: [i64; 10] = [-7, -35, -36, -257, -258, -259, -37, -38, -39, -8];
/// The name of a passkey whose AAGUID Pocket ID does not know.
const DEFAULT_PASSKEY_NAME: &str = "New Passkey";
/// The `webauthn-login` limiter: a burst of 10, then one attempt per 5 s.
const LOGIN_BURST: f64 = 10.0;
const LOGIN_REFILL: Duration = Duration::from_secs(5);

/// Pocket ID's WebAuthn relying party: RP ID = APP_URL's host, origin = APP_URL.
pub(super) struct RelyingParty {
    /// Verifies registrations.
    registration: Webauthn,
    registration_rp_id: String,
    /// Verifies logins; another RP when APP_URL changed after enrolment.
    login: Webauthn,
    login_rp_id: String,
}

/// A relying party for `origin`, whose host is the RP ID.
fn relying_party(origin: &str) -> Result<(Webauthn, String), LabError> {
    let invalid = |e: &dyn std::fmt::Display| LabError::Passkeys(format!("{origin}: {e}"));
    let url = Url::parse(origin).map_err(|e| invalid(&e))?;
    let rp_id = url
        .host_str()
        .ok_or_else(|| invalid(&"no host"))?
        .to_string();
    let webauthn = WebauthnBuilder::new(&rp_id, &url)
        .and_then(|b| b.rp_name("Pocket ID").timeout(CEREMONY_TIMEOUT).build())
        .map_err(|e| invalid(&e))?;
    Ok((webauthn, rp_id))
}

impl RelyingParty {
    /// The relying party of a Pocket ID whose APP_URL is `app_url`.
    pub(super) fn new(app_url: &str, faults: &FaultSet) -> Result<RelyingParty, LabError> {
        let (registration, registration_rp_id) = relying_party(app_url)?;
        let (login, login_rp_id) = if faults.has(Fault::WrongRpId) {
            relying_party(WRONG_RP_ORIGIN)?
        } else {
            (registration.clone(), registration_rp_id.clone())
        };
        Ok(RelyingParty {
            registration,
            registration_rp_id,
            login,
            login_rp_id,
        })
    }
}

/// A token bucket, refilled continuously.
pub(super) struct TokenBucket {
    tokens: f64,
    capacity: f64,
    refill_every: Duration,
    last: Instant,
}

impl TokenBucket {
    /// The limiter on `POST /api/webauthn/login/finish`.
    pub(super) fn webauthn_login() -> TokenBucket {
        TokenBucket {
            tokens: LOGIN_BURST,
            capacity: LOGIN_BURST,
            refill_every: LOGIN_REFILL,
            last: Instant::now(),
        }
    }

    /// Takes one token at `now`; `false` when the bucket is empty.
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.last).as_secs_f64()
            / self.refill_every.as_secs_f64();
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A WebAuthn ceremony between its start and its finish (`webauthn_sessions`).
pub(super) enum WebauthnSession {
    Registration {
        state: PasskeyRegistration,
        created: Instant,
    },
    Login {
        state: DiscoverableAuthentication,
        created: Instant,
    },
}

impl WebauthnSession {
    fn created(&self) -> Instant {
        match self {
            WebauthnSession::Registration { created, .. }
            | WebauthnSession::Login { created, .. } => *created,
        }
    }
}

/// A registered passkey (`webauthn_credentials`). Pocket ID keeps no signature
/// counter, so the stored credential's counter stays 0 and clone detection never
/// fires.
pub(super) struct StoredCredential {
    /// The row id (what the admin API deletes by).
    id: String,
    user_id: String,
    credential_id: Vec<u8>,
    passkey: Passkey,
    attestation_type: String,
    transports: Option<Vec<String>>,
    backup_eligible: bool,
    backup_state: bool,
    created_at: String,
}

/// `dto.WebauthnCredentialDto`, members in Pocket ID's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CredentialDto<'a> {
    id: &'a str,
    name: &'a str,
    /// The raw id bytes copied into a Go string (not base64: Pocket ID's struct
    /// copier does that), so invalid UTF-8 comes out as U+FFFD.
    #[serde(rename = "credentialID")]
    credential_id: String,
    attestation_type: &'a str,
    transport: Option<&'a [String]>,
    backup_eligible: bool,
    backup_state: bool,
    created_at: &'a str,
}

impl StoredCredential {
    fn dto(&self) -> CredentialDto<'_> {
        CredentialDto {
            id: &self.id,
            name: DEFAULT_PASSKEY_NAME,
            credential_id: wire::go_string_from_bytes(&self.credential_id),
            attestation_type: &self.attestation_type,
            transport: self.transports.as_deref(),
            backup_eligible: self.backup_eligible,
            backup_state: self.backup_state,
            created_at: &self.created_at,
        }
    }

    /// The row for `passkey`, registered by `user_id` with `transports`.
    fn new(
        user_id: &str,
        passkey: Passkey,
        transports: Option<Vec<String>>,
    ) -> Option<StoredCredential> {
        let mut value = serde_json::to_value(&passkey).ok()?;
        let cred = value.get_mut("cred")?;
        cred["counter"] = Value::from(0);
        let flag = |name: &str| cred.get(name).and_then(Value::as_bool).unwrap_or(false);
        let (backup_eligible, backup_state) = (flag("backup_eligible"), flag("backup_state"));
        let attestation_type = cred
            .get("attestation_format")
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_ascii_lowercase();
        let passkey: Passkey = serde_json::from_value(value).ok()?;
        Some(StoredCredential {
            id: Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            credential_id: passkey.cred_id().to_vec(),
            passkey,
            attestation_type,
            transports,
            backup_eligible,
            backup_state,
            created_at: wire::rfc3339_now(),
        })
    }
}

/// The challenge webauthn-rs generated, as it goes on the wire.
fn challenge_of<T: Serialize>(options: &T) -> Result<String, ApiError> {
    serde_json::to_value(options)
        .ok()
        .and_then(|v| v["publicKey"]["challenge"].as_str().map(str::to_string))
        .ok_or_else(ApiError::internal)
}

/// go-webauthn's `PublicKeyCredentialCreationOptions`, members in its order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationOptions<'a> {
    rp: RpEntity<'a>,
    user: UserEntity<'a>,
    challenge: String,
    pub_key_cred_params: Vec<CredentialParameter>,
    timeout: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exclude_credentials: Option<Vec<CredentialDescriptor<'a>>>,
    authenticator_selection: AuthenticatorSelection,
    extensions: Extensions,
}

#[derive(Serialize)]
struct RpEntity<'a> {
    name: &'a str,
    id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserEntity<'a> {
    name: &'a str,
    display_name: String,
    /// base64url of the UTF-8 bytes of the user's UUID string.
    id: String,
}

#[derive(Serialize)]
struct CredentialParameter {
    #[serde(rename = "type")]
    kind: &'static str,
    alg: i64,
}

#[derive(Serialize)]
struct CredentialDescriptor<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    transports: Option<&'a [String]>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthenticatorSelection {
    require_resident_key: bool,
    resident_key: &'static str,
    user_verification: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Extensions {
    cred_props: bool,
}

/// The bare `PublicKeyCredentialRequestOptions` of a discoverable login.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestOptions<'a> {
    challenge: String,
    timeout: u64,
    rp_id: &'a str,
    user_verification: &'static str,
}

impl PocketId {
    /// Remembers a ceremony and returns the id its cookie carries.
    fn start_ceremony(&self, session: WebauthnSession) -> String {
        let id = Uuid::new_v4().to_string();
        let mut store = self.store();
        store
            .webauthn_sessions
            .retain(|_, s| s.created().elapsed() < SESSION_RETENTION);
        store.webauthn_sessions.insert(id.clone(), session);
        id
    }
}

/// `GET /api/webauthn/register/start` (session only) → the creation options and
/// a `session` cookie.
pub(super) async fn register_start(
    State(pocket_id): State<Arc<PocketId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = pocket_id.require_session(&headers)?;
    let rp = &pocket_id.relying_party;
    let (body, state) = {
        let store = pocket_id.store();
        let user = store
            .users
            .get(&session.user_id)
            .ok_or_else(ApiError::user_not_found)?;
        let existing: Vec<&StoredCredential> = store
            .credentials
            .iter()
            .filter(|c| c.user_id == user.id)
            .collect();
        let uuid = Uuid::parse_str(&user.id).map_err(|_| ApiError::internal())?;
        let exclude = (!existing.is_empty())
            .then(|| existing.iter().map(|c| c.credential_id.clone()).collect());
        let (options, state) = rp
            .registration
            .start_passkey_registration(
                uuid,
                &user.username,
                &user.webauthn_display_name(),
                exclude,
            )
            .map_err(|_| ApiError::internal())?;
        let body = CreationOptions {
            rp: RpEntity {
                name: "Pocket ID",
                id: &rp.registration_rp_id,
            },
            user: UserEntity {
                name: &user.username,
                display_name: user.webauthn_display_name(),
                id: wire::b64url(user.id.as_bytes()),
            },
            challenge: challenge_of(&options)?,
            pub_key_cred_params: CREDENTIAL_ALGORITHMS
                .iter()
                .map(|&alg| CredentialParameter {
                    kind: "public-key",
                    alg,
                })
                .collect(),
            timeout: CEREMONY_TIMEOUT.as_millis() as u64,
            exclude_credentials: (!existing.is_empty()).then(|| {
                existing
                    .iter()
                    .map(|c| CredentialDescriptor {
                        kind: "public-key",
                        id: wire::b64url(&c.credential_id),
                        transports: c.transports.as_deref(),
                    })
                    .collect()
            }),
            authenticator_selection: AuthenticatorSelection {
                require_resident_key: true,
                resident_key: "required",
                user_verification: "required",
            },
            extensions: Extensions { cred_props: true },
        };
        (api::json(StatusCode::OK, &body), state)
    };
    let id = pocket_id.start_ceremony(WebauthnSession::Registration {
        state,
        created: Instant::now(),
    });
    Ok(with_cookie(body, &api::ceremony_cookie(&id)))
}

/// `POST /api/webauthn/register/finish` (session + `session` cookie) → 200
/// WebauthnCredentialDto. A failed attempt leaves the ceremony open.
pub(super) async fn register_finish(
    State(pocket_id): State<Arc<PocketId>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let session = pocket_id.require_session(&headers)?;
    let ceremony =
        wire::cookie(&headers, SESSION_COOKIE).ok_or_else(ApiError::missing_session_id)?;
    let mut store = pocket_id.store();
    let Some(WebauthnSession::Registration { state, created }) =
        store.webauthn_sessions.get(ceremony)
    else {
        return Err(ApiError::invalid_webauthn_session());
    };
    if created.elapsed() > CEREMONY_TIMEOUT {
        return Err(ApiError::invalid_webauthn_response());
    }
    if store.users.get(&session.user_id).is_none() {
        return Err(ApiError::user_not_found());
    }
    let response: RegisterPublicKeyCredential =
        serde_json::from_slice(&body).map_err(|_| ApiError::invalid_webauthn_response())?;
    let passkey = pocket_id
        .relying_party
        .registration
        .finish_passkey_registration(&response, state)
        .map_err(|e| match e {
            WebauthnError::UserNotVerified => ApiError::user_verification_required(),
            _ => ApiError::invalid_webauthn_response(),
        })?;
    let transports = response.response.transports.as_ref().map(|ts| {
        ts.iter()
            .filter_map(|t| serde_json::to_value(t).ok()?.as_str().map(str::to_string))
            .collect()
    });
    let credential = StoredCredential::new(&session.user_id, passkey, transports)
        .ok_or_else(ApiError::internal)?;
    store.webauthn_sessions.remove(ceremony);
    let answer = api::json(StatusCode::OK, &credential.dto());
    // Fault passkey-revoked: an admin deletes every passkey as soon as it exists.
    if !pocket_id.faults.has(Fault::PasskeyRevoked) {
        store.credentials.push(credential);
    }
    // Fault user-disabled: an admin disables the account once it has a passkey (the
    // admin API shows it disabled).
    if pocket_id.faults.has(Fault::UserDisabled)
        && let Some(user) = store.users.get_mut(&session.user_id)
    {
        user.disabled = true;
    }
    // Fault o2p-email-unverified: an admin clears "email verified" once the account
    // has a passkey (an address changed by hand, say).
    if pocket_id.faults.has(Fault::O2pEmailUnverified)
        && let Some(user) = store.users.get_mut(&session.user_id)
    {
        user.email_verified = false;
    }
    Ok(answer)
}

/// `GET /api/webauthn/login/start` → the request options (no `allowCredentials`)
/// and a `session` cookie.
pub(super) async fn login_start(
    State(pocket_id): State<Arc<PocketId>>,
) -> Result<Response, ApiError> {
    let rp = &pocket_id.relying_party;
    let (options, state) = rp
        .login
        .start_discoverable_authentication()
        .map_err(|_| ApiError::internal())?;
    let body = api::json(
        StatusCode::OK,
        &RequestOptions {
            challenge: challenge_of(&options)?,
            timeout: CEREMONY_TIMEOUT.as_millis() as u64,
            rp_id: &rp.login_rp_id,
            user_verification: "required",
        },
    );
    let id = pocket_id.start_ceremony(WebauthnSession::Login {
        state,
        created: Instant::now(),
    });
    Ok(with_cookie(body, &api::ceremony_cookie(&id)))
}

/// go-webauthn's `ParseCredentialRequestResponseBody`: the JSON shape, `type`,
/// a base64url `id`, clientDataJSON that is JSON, authenticator data of at least
/// 37 bytes.
fn parse_assertion(body: &[u8]) -> Option<PublicKeyCredential> {
    let credential: PublicKeyCredential = serde_json::from_slice(body).ok()?;
    let id_ok = !credential.id.is_empty()
        && URL_SAFE_NO_PAD
            .decode(credential.id.trim_end_matches('='))
            .is_ok();
    let client_data_ok = serde_json::from_slice::<Value>(&credential.response.client_data_json)
        .is_ok_and(|v| v.is_object());
    (credential.type_ == "public-key"
        && id_ok
        && client_data_ok
        && credential.response.authenticator_data.len() >= 37)
        .then_some(credential)
}

/// `POST /api/webauthn/login/finish` (`session` cookie) → 200 UserDto and a session
/// cookie (amr `phr`). Checks run in Pocket ID's order: rate limit, cookie, body,
/// ceremony, then the assertion and the user. Only success ends the ceremony.
pub(super) async fn login_finish(
    State(pocket_id): State<Arc<PocketId>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let admitted = pocket_id
        .login_limit
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(Instant::now());
    if !admitted {
        return Err(ApiError::rate_limited(LOGIN_REFILL.as_secs()));
    }
    let ceremony =
        wire::cookie(&headers, SESSION_COOKIE).ok_or_else(ApiError::missing_session_id)?;
    let credential = parse_assertion(&body).ok_or_else(ApiError::invalid_webauthn_response)?;
    let mut store = pocket_id.store();
    let Some(WebauthnSession::Login { state, created }) = store.webauthn_sessions.get(ceremony)
    else {
        return Err(ApiError::invalid_webauthn_session());
    };
    if created.elapsed() > CEREMONY_TIMEOUT {
        return Err(ApiError::webauthn_authentication_failed());
    }
    // Pocket ID looks the user up by the handle's text; webauthn-rs wants the UUID's
    // bytes. The handle is not signed, so rewriting it changes nothing verified.
    let user = credential
        .response
        .user_handle
        .as_deref()
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|id| store.users.get(id))
        .cloned()
        .ok_or_else(ApiError::webauthn_authentication_failed)?;
    let uuid = Uuid::parse_str(&user.id).map_err(|_| ApiError::webauthn_authentication_failed())?;
    let mut translated = credential;
    translated.response.user_handle = Some(uuid.as_bytes().to_vec());
    let login = &pocket_id.relying_party.login;
    let (handle, credential_id) = login
        .identify_discoverable_authentication(&translated)
        .map_err(|_| ApiError::webauthn_authentication_failed())?;
    let stored = store
        .credentials
        .iter()
        .find(|c| handle == uuid && c.user_id == user.id && c.credential_id == credential_id)
        .ok_or_else(ApiError::webauthn_authentication_failed)?;
    login
        .finish_discoverable_authentication_v2(&translated, state.clone(), &stored.passkey)
        .map_err(|e| match e {
            WebauthnError::UserNotVerified => ApiError::user_verification_required(),
            _ => ApiError::webauthn_authentication_failed(),
        })?;
    // Fault user-disabled: an admin disabled the account after it enrolled.
    if user.disabled || pocket_id.faults.has(Fault::UserDisabled) {
        return Err(ApiError::user_disabled());
    }
    store.webauthn_sessions.remove(ceremony);
    drop(store);
    let cookie = pocket_id.new_session(&user, AMR_PASSKEY)?;
    Ok(with_cookie(api::json(StatusCode::OK, &user.dto()), &cookie))
}

/// `POST /api/webauthn/logout` → 204; the cookie is overwritten (the JWT itself
/// stays valid until it expires: sessions are stateless).
pub(super) async fn logout(
    State(pocket_id): State<Arc<PocketId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, false)?;
    let cookie =
        format!("{ACCESS_TOKEN_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax");
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

/// `GET /api/users/:id/webauthn-credentials` (admin) → the user's passkeys.
pub(super) async fn list_for_user(
    State(pocket_id): State<Arc<PocketId>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let store = pocket_id.store();
    if store.users.get(&id).is_none() {
        return Err(ApiError::user_not_found());
    }
    let credentials: Vec<CredentialDto<'_>> = store
        .credentials
        .iter()
        .filter(|c| c.user_id == id)
        .map(StoredCredential::dto)
        .collect();
    Ok(api::json(StatusCode::OK, &credentials))
}

/// `DELETE /api/users/:id/webauthn-credentials/:credentialId` (admin; the row id)
/// → 204, or 404 "Passkey not found".
pub(super) async fn delete_for_user(
    State(pocket_id): State<Arc<PocketId>>,
    Path((user_id, row_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let mut store = pocket_id.store();
    let before = store.credentials.len();
    store
        .credentials
        .retain(|c| !(c.id == row_id && c.user_id == user_id));
    if store.credentials.len() == before {
        return Err(ApiError::not_found("Passkey"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_of_ten_then_one_per_five_seconds() {
        let mut bucket = TokenBucket::webauthn_login();
        let start = bucket.last;
        for attempt in 1..=10 {
            assert!(bucket.take(start), "attempt {attempt}");
        }
        assert!(!bucket.take(start));
        assert!(!bucket.take(start + Duration::from_millis(4900)));
        assert!(bucket.take(start + Duration::from_millis(5100)));
        assert!(!bucket.take(start + Duration::from_millis(5200)));
        // A long pause refills only up to the burst.
        let later = start + Duration::from_secs(3600);
        for _ in 0..10 {
            assert!(bucket.take(later));
        }
        assert!(!bucket.take(later));
    }

    #[test]
    fn assertions_must_look_like_webauthn_responses() {
        assert!(parse_assertion(b"this is not json").is_none());
        let fake = br#"{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AAAA","signature":"AAAA","userHandle":"AAAA"},"clientExtensionResults":{}}"#;
        assert!(
            parse_assertion(fake).is_none(),
            "3 bytes of authenticator data"
        );
    }
}
