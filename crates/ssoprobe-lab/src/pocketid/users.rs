//! Users: the admin API (`/api/users…`, `X-API-Key` or an admin session), the
//! signed-in user's `/api/users/me`, and one-time login codes.

use super::api::{self, AMR_ONE_TIME_CODE, ApiError, FieldError, with_cookie};
use super::groups::{self, GroupMinimalDto};
use super::{PocketId, Store};
use crate::PROBE_EMAIL;
use crate::wire;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The user Pocket ID creates for `STATIC_API_KEY` (`common.StaticApiKeyUserID`).
const STATIC_API_USER_ID: &str = "00000000-0000-0000-0000-000000000000";
/// One-time codes live 15 minutes unless the admin asks otherwise.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// The longest one-time code lifetime (31 days).
const MAX_TOKEN_TTL: Duration = Duration::from_secs(31 * 24 * 3600);
/// `GenerateRandomUnambiguousString`'s alphabet: no i, l, o, I, L, O.
const UNAMBIGUOUS: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ0123456789";

/// A Pocket ID user.
#[derive(Clone, Debug)]
pub(super) struct User {
    pub(super) id: String,
    pub(super) username: String,
    pub(super) email: Option<String>,
    pub(super) email_verified: bool,
    pub(super) first_name: String,
    pub(super) last_name: String,
    pub(super) display_name: String,
    pub(super) is_admin: bool,
    pub(super) locale: Option<String>,
    pub(super) disabled: bool,
    /// Ids of the user's groups.
    pub(super) groups: Vec<String>,
}

impl User {
    /// `FullName`: first and last name.
    pub(super) fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string()
    }

    /// `WebAuthnDisplayName`.
    pub(super) fn webauthn_display_name(&self) -> String {
        if self.display_name.is_empty() {
            self.full_name()
        } else {
            self.display_name.clone()
        }
    }

    /// `dto.UserDto`.
    pub(super) fn dto(&self) -> UserDto<'_> {
        UserDto {
            id: &self.id,
            username: &self.username,
            email: self.email.as_deref(),
            email_verified: self.email_verified,
            first_name: &self.first_name,
            last_name: &self.last_name,
            display_name: &self.display_name,
            is_admin: self.is_admin,
            locale: self.locale.as_deref(),
            custom_claims: Vec::new(),
            user_groups: groups::minimal_of(&self.groups),
            ldap_id: None,
            disabled: self.disabled,
        }
    }
}

/// `dto.UserDto`, members in Pocket ID's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UserDto<'a> {
    id: &'a str,
    username: &'a str,
    email: Option<&'a str>,
    email_verified: bool,
    first_name: &'a str,
    last_name: &'a str,
    display_name: &'a str,
    is_admin: bool,
    locale: Option<&'a str>,
    custom_claims: Vec<Value>,
    user_groups: Vec<GroupMinimalDto>,
    ldap_id: Option<&'a str>,
    disabled: bool,
}

/// The users, in creation order (the order the list endpoint returns them in).
#[derive(Default)]
pub(super) struct Users(Vec<User>);

impl Users {
    pub(super) fn get(&self, id: &str) -> Option<&User> {
        self.0.iter().find(|u| u.id == id)
    }

    /// The users in group `group_id`, in creation order.
    pub(super) fn in_group<'a>(&'a self, group_id: &'a str) -> impl Iterator<Item = &'a User> {
        self.0
            .iter()
            .filter(move |u| u.groups.iter().any(|g| g == group_id))
    }

    /// How many users group `group_id` has.
    pub(super) fn count_in_group(&self, group_id: &str) -> usize {
        self.in_group(group_id).count()
    }

    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut User> {
        self.0.iter_mut().find(|u| u.id == id)
    }

    /// The id of the static API key's user, created on the key's first use as
    /// Pocket ID does.
    pub(super) fn static_api_user(&mut self) -> &'static str {
        if self.get(STATIC_API_USER_ID).is_none() {
            self.0.push(User {
                id: STATIC_API_USER_ID.to_string(),
                username: format!(
                    "static-api-user-{}",
                    wire::random_alphanumeric(6).to_ascii_lowercase()
                ),
                email: None,
                email_verified: false,
                first_name: "Static API User".to_string(),
                last_name: String::new(),
                display_name: "Static API User".to_string(),
                is_admin: true,
                locale: None,
                disabled: false,
                groups: Vec::new(),
            });
        }
        STATIC_API_USER_ID
    }

    /// `checkDuplicatedFields`: e-mail first, then username, ignoring `except`.
    fn check_unique(&self, candidate: &User, except: Option<&str>) -> Result<(), ApiError> {
        let others = || self.0.iter().filter(|u| Some(u.id.as_str()) != except);
        if candidate.email.is_some() && others().any(|u| u.email == candidate.email) {
            return Err(ApiError::already_in_use("email"));
        }
        if others().any(|u| u.username == candidate.username) {
            return Err(ApiError::already_in_use("username"));
        }
        // A taken id is not one of Pocket ID's checks (the insert fails); the lab
        // reports it the same way.
        if except.is_none() && self.get(&candidate.id).is_some() {
            return Err(ApiError::already_in_use("id"));
        }
        Ok(())
    }
}

/// `dto.UserCreateDto` (also the body of `PUT /api/users/:id`). Go leaves absent or
/// null members at their zero value.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct UserInput {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    is_admin: Option<bool>,
    #[serde(default)]
    locale: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// Pocket ID's username rule: letters, digits and `_.@-`, starting and ending with
/// a letter or digit.
fn valid_username(username: &str) -> bool {
    let bytes = username.as_bytes();
    let edge = |b: &u8| b.is_ascii_alphanumeric();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            edge(first)
                && edge(last)
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(b))
        }
        _ => false,
    }
}

/// A plausible e-mail address: one `@` with something on both sides, a dot in the
/// domain, no spaces.
fn valid_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

impl UserInput {
    /// The binding rules of `UserCreateDto`, field by field in struct order, then
    /// `requireUserEmail`.
    fn validate(self, require_email: bool) -> Result<User, ApiError> {
        let mut fields = Vec::new();
        let id = self.id.unwrap_or_default();
        if !id.is_empty() && uuid::Uuid::parse_str(&id).is_err() {
            fields.push(FieldError {
                field: "id",
                code: "uuid",
                message: "is invalid".into(),
            });
        }
        let username = self.username.unwrap_or_default();
        if username.is_empty() {
            fields.push(FieldError {
                field: "username",
                code: "required",
                message: "is required".into(),
            });
        } else if !valid_username(&username) {
            fields.push(FieldError {
                field: "username",
                code: "invalid_format",
                message: "must only contain letters, numbers, underscores, dots, hyphens, and '@' symbols and not start or end with a special character".into(),
            });
        } else if username.chars().count() > 50 {
            fields.push(too_long("username", 50));
        }
        if let Some(email) = self.email.as_deref()
            && !email.is_empty()
            && !valid_email(email)
        {
            fields.push(FieldError {
                field: "email",
                code: "invalid_format",
                message: "must be a valid email address".into(),
            });
        }
        let first_name = self.first_name.unwrap_or_default();
        let last_name = self.last_name.unwrap_or_default();
        let display_name = self.display_name.unwrap_or_default();
        for (field, value, max) in [
            ("firstName", &first_name, 50),
            ("lastName", &last_name, 50),
            ("displayName", &display_name, 100),
        ] {
            if value.chars().count() > max {
                fields.push(too_long(field, max));
            }
        }
        if !fields.is_empty() {
            return Err(ApiError::validation(fields));
        }
        if require_email && self.email.is_none() {
            return Err(ApiError::validation(vec![FieldError {
                field: "email",
                code: "required",
                message: "is required".into(),
            }]));
        }
        Ok(User {
            id: if id.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                id
            },
            username,
            email: self.email,
            email_verified: self.email_verified.unwrap_or(false),
            first_name,
            last_name,
            display_name,
            is_admin: self.is_admin.unwrap_or(false),
            locale: self.locale,
            disabled: self.disabled.unwrap_or(false),
            groups: Vec::new(),
        })
    }
}

fn too_long(field: &'static str, max: usize) -> FieldError {
    FieldError {
        field,
        code: "too_long",
        message: format!("must be at most {max} characters long"),
    }
}

/// `POST /api/users` → 201 UserDto.
pub(super) async fn create(
    State(pocket_id): State<Arc<PocketId>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let mut user =
        api::bind_json::<UserInput>(&headers, &body)?.validate(pocket_id.requires_user_email())?;
    let mut store = pocket_id.store();
    store.users.check_unique(&user, None)?;
    // A lab convenience, not Pocket ID's: the probe user starts in group `probers`,
    // so that a policy on the `groups` claim has a group to match.
    if user
        .email
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(PROBE_EMAIL))
    {
        user.groups.push(groups::PROBERS_GROUP_ID.to_string());
    }
    let response = api::json(StatusCode::CREATED, &user.dto());
    store.users.0.push(user);
    Ok(response)
}

/// `PUT /api/users/:id` → 200 UserDto (a full replace of the editable fields).
pub(super) async fn update(
    State(pocket_id): State<Arc<PocketId>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let input =
        api::bind_json::<UserInput>(&headers, &body)?.validate(pocket_id.requires_user_email())?;
    let mut store = pocket_id.store();
    store.users.check_unique(&input, Some(&id))?;
    let user = store
        .users
        .get_mut(&id)
        .ok_or_else(ApiError::user_not_found)?;
    if user.email != input.email {
        // A changed address is no longer verified (`emailsVerified` is off).
        user.email_verified = false;
    } else {
        user.email_verified = input.email_verified;
    }
    user.username = input.username;
    user.email = input.email;
    user.first_name = input.first_name;
    user.last_name = input.last_name;
    user.display_name = input.display_name;
    user.is_admin = input.is_admin;
    user.locale = input.locale;
    user.disabled = input.disabled;
    Ok(api::json(StatusCode::OK, &user.dto()))
}

/// `GET /api/users?search=&pagination[page]=&pagination[limit]=` →
/// `{"data":[UserDto…],"pagination":{…}}`; the search matches e-mail, names and
/// username, case-insensitively (SQLite's LIKE). The lab caps the limit at 2.
pub(super) async fn list(
    State(pocket_id): State<Arc<PocketId>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let request = api::ListRequest::parse(query.as_deref());
    let store = pocket_id.store();
    let matching: Vec<UserDto<'_>> = store
        .users
        .0
        .iter()
        .filter(|u| {
            request.matches(&[
                u.email.as_deref().unwrap_or(""),
                &u.first_name,
                &u.last_name,
                &u.username,
            ])
        })
        .map(User::dto)
        .collect();
    Ok(api::json(StatusCode::OK, &request.paginate(matching)))
}

/// `GET /api/users/:id`.
pub(super) async fn get_one(
    State(pocket_id): State<Arc<PocketId>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let store = pocket_id.store();
    let user = store.users.get(&id).ok_or_else(ApiError::user_not_found)?;
    Ok(api::json(StatusCode::OK, &user.dto()))
}

/// `GET /api/users/:id/groups` → the user's groups (`UserGroupDto`s without their
/// users and clients; the lab returns the minimal DTOs).
pub(super) async fn groups_of(
    State(pocket_id): State<Arc<PocketId>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let store = pocket_id.store();
    let user = store.users.get(&id).ok_or_else(ApiError::user_not_found)?;
    Ok(api::json(StatusCode::OK, &groups::minimal_of(&user.groups)))
}

/// `GET /api/users/me`: the session's user (or the static API user for the key).
pub(super) async fn me(
    State(pocket_id): State<Arc<PocketId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = pocket_id.require_user_or_key(&headers, false)?;
    let store = pocket_id.store();
    let user = store.users.get(&id).ok_or_else(ApiError::user_not_found)?;
    Ok(api::json(StatusCode::OK, &user.dto()))
}

/// A one-time login code in the actor store.
pub(super) struct OneTimeToken {
    user_id: String,
    expires: Instant,
}

/// `tokenCreateDto`: `ttl` as seconds or a Go duration string.
#[derive(Deserialize)]
struct TokenRequest {
    #[serde(default)]
    ttl: Option<Value>,
}

/// `utils.JSONDuration`: a number is seconds, a string a Go duration; `None` when
/// the value cannot be read.
fn json_duration(value: Option<&Value>) -> Option<Duration> {
    match value {
        None | Some(Value::Null) => Some(Duration::ZERO),
        Some(Value::Number(n)) => Some(Duration::from_secs(n.as_f64()?.max(0.0) as u64)),
        Some(Value::String(s)) if s.is_empty() => Some(Duration::ZERO),
        Some(Value::String(s)) => go_duration(s),
        Some(_) => None,
    }
}

/// Go's `time.ParseDuration` for whole numbers of h, m, s and ms (`1h30m`, `15m`).
fn go_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let value: u64 = rest.get(..digits)?.parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += match unit {
            "h" => Duration::from_secs(value.checked_mul(3600)?),
            "m" => Duration::from_secs(value.checked_mul(60)?),
            "s" => Duration::from_secs(value),
            "ms" => Duration::from_millis(value),
            _ => return None,
        };
    }
    Some(total)
}

/// `POST /api/users/:id/one-time-access-token` (admin) with `{}` or `{"ttl":…}` →
/// 201 `{"token":…}`: 6 characters for codes that expire within 15 minutes, else 12.
pub(super) async fn create_one_time_token(
    State(pocket_id): State<Arc<PocketId>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let request = api::bind_json::<TokenRequest>(&headers, &body)?;
    let ttl = json_duration(request.ttl.as_ref()).ok_or_else(ApiError::invalid_request_body)?;
    if !(ttl.is_zero() || ttl > Duration::from_secs(1) && ttl <= MAX_TOKEN_TTL) {
        return Err(ApiError::validation(vec![FieldError {
            field: "ttl",
            code: "ttl",
            message: "is invalid".into(),
        }]));
    }
    let ttl = if ttl.is_zero() {
        DEFAULT_TOKEN_TTL
    } else {
        ttl
    };
    let mut store = pocket_id.store();
    if store.users.get(&id).is_none() {
        return Err(ApiError::user_not_found());
    }
    let length = if ttl <= DEFAULT_TOKEN_TTL { 6 } else { 12 };
    let token = wire::random_from(UNAMBIGUOUS, length);
    let now = Instant::now();
    store.one_time_tokens.retain(|_, t| t.expires > now);
    store.one_time_tokens.insert(
        token.clone(),
        OneTimeToken {
            user_id: id,
            expires: now + ttl,
        },
    );
    Ok(api::json(StatusCode::CREATED, &json!({ "token": token })))
}

/// `POST /api/one-time-access-token/:token` (no auth) → 200 UserDto and a session
/// cookie (amr `otp`). Single use; a disabled user's code is put back.
pub(super) async fn exchange_one_time_token(
    State(pocket_id): State<Arc<PocketId>>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    // Codes are typed by people: I and O are read as 1 and 0.
    let token: String = token
        .chars()
        .map(|c| match c {
            'I' | 'i' => '1',
            'O' | 'o' => '0',
            c => c,
        })
        .collect();
    let mut store = pocket_id.store();
    let Store {
        one_time_tokens,
        users,
        ..
    } = &mut *store;
    let entry = one_time_tokens
        .remove(&token)
        .filter(|t| t.expires > Instant::now())
        .ok_or_else(ApiError::token_invalid_or_expired)?;
    let user = users
        .get(&entry.user_id)
        .cloned()
        .ok_or_else(ApiError::token_invalid_or_expired)?;
    if user.disabled {
        one_time_tokens.insert(token, entry);
        return Err(ApiError::user_disabled());
    }
    drop(store);
    let cookie = pocket_id.new_session(&user, AMR_ONE_TIME_CODE)?;
    Ok(with_cookie(api::json(StatusCode::OK, &user.dto()), &cookie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_pocket_ids_rule() {
        for ok in ["probe", "a", "probe.monitor", "p@example.com", "a-b_c"] {
            assert!(valid_username(ok), "{ok}");
        }
        for bad in ["", "-probe", "probe-", "pro be", "pröbe", "_"] {
            assert!(!valid_username(bad), "{bad}");
        }
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(json_duration(None), Some(Duration::ZERO));
        assert_eq!(
            json_duration(Some(&json!(900))),
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            json_duration(Some(&json!("1h30m"))),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(json_duration(Some(&json!("15x"))), None);
        assert_eq!(json_duration(Some(&json!(true))), None);
    }

    #[test]
    fn validation_reports_every_field_in_order() {
        let input: UserInput =
            serde_json::from_value(json!({ "username": "-x", "email": "nope" })).expect("parses");
        let error = input.validate(true).expect_err("invalid input refused");
        assert_eq!(error.code, "validation_failed");
        let input: UserInput =
            serde_json::from_value(json!({ "username": "probe" })).expect("parses");
        let error = input
            .clone()
            .validate(true)
            .expect_err("a user without e-mail refused");
        assert_eq!(error.code, "validation_failed");
        // With REQUIRE_USER_EMAIL=false (fault userinfo-fails) it is created.
        assert_eq!(
            input.validate(false).expect("no e-mail required").email,
            None
        );
        let input: UserInput = serde_json::from_value(
            json!({ "username": "probe", "email": "probe@example.com", "lastName": null }),
        )
        .expect("parses");
        assert!(input.validate(true).is_ok());
    }
}
