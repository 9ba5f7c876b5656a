//! User groups: the admin API's `/api/user-groups…` (GET only) and the
//! `UserGroupMinimalDto`s users and clients carry. The lab has two fixed groups:
//! `probers`, which the lab puts the probe user in when it is created, and
//! `admins`, which no lab user is ever in (fault user-not-allowed restricts the
//! Access client to it).

use super::api::{self, ApiError};
use super::{Client, PocketId, users};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The group the probe user is put in when it is created.
pub(super) const PROBERS_GROUP_ID: &str = "3d8f6a2c-1b7e-4f90-a5c4-8e2d7b1f6c39";
/// The group a group-restricted client admits (fault user-not-allowed); no lab user
/// is ever in it.
pub(super) const ADMINS_GROUP_ID: &str = "5b0c9ef4-6d0e-4c4c-9f0b-6a1d3c2e8f71";

/// A Pocket ID user group.
pub(super) struct Group {
    pub(super) id: &'static str,
    /// The name the `groups` claim carries.
    pub(super) name: &'static str,
    pub(super) friendly_name: &'static str,
    created_at: &'static str,
}

/// The lab's groups, in creation order.
pub(super) const GROUPS: [Group; 2] = [
    Group {
        id: PROBERS_GROUP_ID,
        name: "probers",
        friendly_name: "Probers",
        created_at: "2025-11-02T09:00:00Z",
    },
    Group {
        id: ADMINS_GROUP_ID,
        name: "admins",
        friendly_name: "Admins",
        created_at: "2025-11-02T09:01:00Z",
    },
];

/// The group with `id`.
pub(super) fn by_id(id: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|g| g.id == id)
}

/// `dto.UserGroupMinimalDto`, members in Pocket ID's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GroupMinimalDto {
    id: &'static str,
    friendly_name: &'static str,
    name: &'static str,
    custom_claims: Vec<Value>,
    user_count: usize,
    ldap_id: Option<&'static str>,
    created_at: &'static str,
}

impl Group {
    /// The minimal DTO; `user_count` is only counted by the group list (embedded
    /// in users and clients it is 0, as Pocket ID leaves it).
    pub(super) fn minimal(&self, user_count: usize) -> GroupMinimalDto {
        GroupMinimalDto {
            id: self.id,
            friendly_name: self.friendly_name,
            name: self.name,
            custom_claims: Vec::new(),
            user_count,
            ldap_id: None,
            created_at: self.created_at,
        }
    }
}

/// The minimal DTOs of the groups with `ids` (unknown ids are skipped).
pub(super) fn minimal_of(ids: &[String]) -> Vec<GroupMinimalDto> {
    ids.iter()
        .filter_map(|id| by_id(id))
        .map(|g| g.minimal(0))
        .collect()
}

/// `GET /api/user-groups?search=&pagination[page]=&pagination[limit]=` →
/// `{"data":[UserGroupMinimalDto…],"pagination":{…}}`; the search matches name and
/// friendly name.
pub(super) async fn list(
    State(pocket_id): State<Arc<PocketId>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let request = api::ListRequest::parse(query.as_deref());
    let store = pocket_id.store();
    let matching: Vec<GroupMinimalDto> = GROUPS
        .iter()
        .filter(|g| request.matches(&[g.name, g.friendly_name]))
        .map(|g| g.minimal(store.users.count_in_group(g.id)))
        .collect();
    Ok(api::json(StatusCode::OK, &request.paginate(matching)))
}

/// `GET /api/user-groups/:id` → `UserGroupDto` with its users and the clients
/// restricted to it; unknown → 404 "User group not found".
pub(super) async fn get_one(
    State(pocket_id): State<Arc<PocketId>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pocket_id.require_user_or_key(&headers, true)?;
    let group = by_id(&id).ok_or_else(|| ApiError::not_found("User group"))?;
    let store = pocket_id.store();
    let members: Vec<users::UserDto<'_>> = store
        .users
        .in_group(group.id)
        .map(users::User::dto)
        .collect();
    let clients: Vec<Value> = pocket_id
        .clients()
        .filter(|c| {
            c.allowed_groups
                .as_ref()
                .is_some_and(|allowed| allowed.iter().any(|g| g == group.id))
        })
        .map(Client::meta)
        .collect();
    Ok(api::json(
        StatusCode::OK,
        &json!({
            "id": group.id,
            "friendlyName": group.friendly_name,
            "name": group.name,
            "customClaims": [],
            "users": members,
            "ldapId": null,
            "createdAt": group.created_at,
            "allowedOidcClients": clients,
        }),
    ))
}
