//! OIDC clients in the admin API (`/api/oidc/clients…`, GET only): the one
//! Cloudflare Access uses, as the faults configure it, and two decoys a real
//! instance would have next to it.

use super::api::{self, ApiError};
use super::groups::{self, GroupMinimalDto};
use super::{Client, PocketId, SecretInfo};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The decoy client of a Grafana next to the service.
pub(super) const GRAFANA_CLIENT_ID: &str = "9e3b1c47-2a6d-4f8e-b5c0-7d1a4e6f2b83";
/// The decoy client a previous Zero Trust team used.
pub(super) const OLD_CLOUDFLARE_CLIENT_ID: &str = "c4a7e2d9-5f1b-4e38-9a06-3b8d2f7c1e54";
/// The previous team's callback, still on the decoy (and, under fault
/// callback-other-team, the only one on the Access client).
pub(super) const OLD_TEAM_CALLBACK_URL: &str =
    "https://old-team.cloudflareaccess.com/cdn-cgi/access/callback";

/// `dto.OidcClientSecretDto`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretDto<'a> {
    id: &'a str,
    /// The secret's first 4 characters, as Pocket ID shows them.
    prefix: &'a str,
    created_at: &'a str,
    expires_at: Option<&'a str>,
    is_active: bool,
}

/// `dto.OidcClientCredentialsDto`.
#[derive(Serialize)]
struct CredentialsDto<'a> {
    secrets: Vec<SecretDto<'a>>,
}

/// The allowed groups: their minimal DTOs (get) or how many there are (list).
#[derive(Serialize)]
enum AllowedGroups {
    #[serde(rename = "allowedUserGroups")]
    Groups(Vec<GroupMinimalDto>),
    #[serde(rename = "allowedUserGroupsCount")]
    Count(usize),
}

/// `dto.OidcClientWithAllowedUserGroupsDto` (get) and
/// `dto.OidcClientWithAllowedGroupsCountDto` (list), members in Pocket ID's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClientDto<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    has_logo: bool,
    has_dark_logo: bool,
    #[serde(rename = "launchURL")]
    launch_url: Option<&'a str>,
    requires_reauthentication: bool,
    client_type: &'a str,
    #[serde(rename = "callbackURLs")]
    callback_urls: &'a [String],
    #[serde(rename = "logoutCallbackURLs")]
    logout_callback_urls: &'a [String],
    is_public: bool,
    pkce_enabled: bool,
    requires_pushed_authorization_requests: bool,
    skip_consent: bool,
    credentials: CredentialsDto<'a>,
    is_group_restricted: bool,
    access_token_duration_minutes: u32,
    refresh_token_duration_minutes: u32,
    #[serde(flatten)]
    allowed: AllowedGroups,
}

impl SecretInfo {
    fn dto(&self) -> SecretDto<'_> {
        SecretDto {
            id: &self.id,
            prefix: &self.prefix,
            created_at: &self.created_at,
            expires_at: self.expires_at.as_deref(),
            is_active: self.is_active,
        }
    }
}

impl Client {
    fn dto(&self, with_groups: bool) -> ClientDto<'_> {
        let allowed: &[String] = self.allowed_groups.as_deref().unwrap_or(&[]);
        ClientDto {
            id: self.id,
            name: self.name,
            description: self.description,
            has_logo: false,
            has_dark_logo: false,
            launch_url: self.launch_url,
            requires_reauthentication: self.requires_reauthentication,
            client_type: "standard",
            callback_urls: &self.callback_urls,
            logout_callback_urls: &[],
            is_public: self.is_public,
            pkce_enabled: self.pkce_enabled,
            requires_pushed_authorization_requests: self.requires_par,
            skip_consent: self.skip_consent,
            credentials: CredentialsDto {
                secrets: self.secrets.iter().map(SecretInfo::dto).collect(),
            },
            is_group_restricted: self.allowed_groups.is_some(),
            access_token_duration_minutes: 60,
            refresh_token_duration_minutes: 43_200,
            allowed: if with_groups {
                AllowedGroups::Groups(groups::minimal_of(allowed))
            } else {
                AllowedGroups::Count(allowed.len())
            },
        }
    }

    /// `dto.OidcClientMetaDataDto`, as a group's `allowedOidcClients` lists it.
    pub(super) fn meta(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "hasLogo": false,
            "hasDarkLogo": false,
            "launchURL": self.launch_url,
            "requiresReauthentication": self.requires_reauthentication,
            "clientType": "standard",
        })
    }
}

/// `GET /api/oidc/clients?search=&pagination[page]=&pagination[limit]=` →
/// `{"data":[OidcClientWithAllowedGroupsCountDto…],"pagination":{…}}`, in creation
/// order (the decoys first); the search matches the name.
pub(super) async fn list(
    State(pocket_id): State<Arc<PocketId>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let request = api::ListRequest::parse(query.as_deref());
    let matching: Vec<ClientDto<'_>> = pocket_id
        .clients()
        .filter(|c| request.matches(&[c.name]))
        .map(|c| c.dto(false))
        .collect();
    Ok(api::json(StatusCode::OK, &request.paginate(matching)))
}

/// `GET /api/oidc/clients/:id` → `OidcClientWithAllowedUserGroupsDto`; unknown →
/// 404 "OIDC client not found".
pub(super) async fn get_one(
    State(pocket_id): State<Arc<PocketId>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let client = pocket_id
        .clients()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::not_found("OIDC client"))?;
    Ok(api::json(StatusCode::OK, &client.dto(true)))
}
