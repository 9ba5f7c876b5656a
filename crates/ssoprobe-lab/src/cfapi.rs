//! api.cloudflare.example.com: a read-only subset of Cloudflare's API v4 (reference
//! `cloudflare-api.md` §1–2) describing the account the lab's edge simulates: the
//! Zero Trust organization, its identity providers, Access applications, policies
//! and groups, the tunnels, the zone's DNS records and Bot Fight Mode. Every value
//! the edge uses (AUD, client id, team domain, identity provider ids, the service
//! token) comes from the same place as the edge's, and the faults change the
//! objects the way they change the edge (or only the objects, for configuration
//! faults). Decoys (another wiki app, an old tunnel, an old Pocket ID) sit in front
//! of the real objects, and lists are at most 2 long, so clients must page.
//!
//! Authentication is a bearer API token, owned by a user (by the account under fault
//! cf-token-cannot-list-accounts's classic face); errors, codes and messages are
//! Cloudflare's (reference §1.4), and the refusals of the API faults have a face per
//! variant. Only GET is served.

use super::access::{self, ServiceToken};
use super::{ACCOUNT_ID, AUD, CF_API_HOST, Fault, FaultSet, IDP_HOST, SERVICE_HOST, Variant};
use super::{TEAM, TEAM_HOST, apilog, edge, wire};
use axum::Router;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// The lab caps `per_page` at this, whatever is asked.
pub(super) const PER_PAGE: usize = 2;
/// How many distinct paths fault cf-api-rate-limited remembers; a hostile client
/// cannot make the set grow past it (later paths are served at once).
const RATE_LIMITED_PATHS: usize = 4096;
/// Paths quoted in error messages are cut to this many bytes.
const MAX_QUOTED_PATH: usize = 256;

/// The zone example.com.
pub(super) const ZONE_ID: &str = "0da42c8d2132a9ddaf714f9e7c920711";
const ZONE_NAME: &str = "example.com";
const ACCOUNT_NAME: &str = "Example Corp";

/// The account's identity providers besides Pocket ID and GitHub (whose ids come
/// from the edge).
pub(super) const OTP_IDP_ID: &str = "f174e90a-fafe-4643-bbbc-4a0ed4fc8415";
pub(super) const OLD_IDP_ID: &str = "3c9d1e7a-5b2f-4c8e-9a1d-6f0b2e4c7a93";
/// The client id of the old Pocket ID's login method (another instance's client).
pub(super) const OLD_IDP_CLIENT_ID: &str = "5b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const OLD_IDP_HOST: &str = "old-id.example.com";

/// Access applications, in list order (the real one last).
pub(super) const WIKI_APP_ID: &str = "6a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
pub(super) const EVERYTHING_APP_ID: &str = "7b2e1d3f-4c5e-4f60-9bac-1d2e3f4a5b6c";
pub(super) const SERVICE_ADMIN_APP_ID: &str = "8c3f2e4a-5d6f-4a71-8cbd-2e3f4a5b6c7d";
pub(super) const SERVICE_APP_ID: &str = "9d4a3f5b-6e7a-4b82-9dce-3f4a5b6c7d8e";
/// The application over Pocket ID (fault idp-behind-access).
pub(super) const IDP_APP_ID: &str = "ae5b4a6c-7f8b-4c93-8edf-4a5b6c7d8e9f";
const WIKI_AUD: &str = "5f0e8d7c6b5a49382716f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0";
const EVERYTHING_AUD: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const SERVICE_ADMIN_AUD: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const IDP_APP_AUD: &str = "77e1d2c3b4a5968778695a4b3c2d1e0f77e1d2c3b4a5968778695a4b3c2d1e0f";
/// The AUD the tunnel checks under fault origin-access-aud: another application's.
pub(super) const WRONG_ORIGIN_AUD: &str = SERVICE_ADMIN_AUD;

/// Policies.
pub(super) const BLOCK_CONTRACTORS_POLICY_ID: &str = "b1c2d3e4-0a1b-4c2d-8e3f-4a5b6c7d8e01";
pub(super) const PEOPLE_POLICY_ID: &str = "b1c2d3e4-0a1b-4c2d-8e3f-4a5b6c7d8e02";
pub(super) const MONITOR_POLICY_ID: &str = "b1c2d3e4-0a1b-4c2d-8e3f-4a5b6c7d8e03";
pub(super) const PUBLIC_POLICY_ID: &str = "b1c2d3e4-0a1b-4c2d-8e3f-4a5b6c7d8e04";
const WIKI_POLICY_ID: &str = "b1c2d3e4-0a1b-4c2d-8e3f-4a5b6c7d8e05";
const EVERYTHING_POLICY_ID: &str = "b1c2d3e4-0a1b-4c2d-8e3f-4a5b6c7d8e06";
const SERVICE_ADMIN_POLICY_ID: &str = "b1c2d3e4-0a1b-4c2d-8e3f-4a5b6c7d8e07";
const IDP_APP_POLICY_ID: &str = "b1c2d3e4-0a1b-4c2d-8e3f-4a5b6c7d8e08";

/// Access groups.
pub(super) const STAFF_GROUP_ID: &str = "d1b2c3a4-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
pub(super) const CONTRACTORS_GROUP_ID: &str = "d1b2c3a4-5e6f-4a7b-8c9d-0e1f2a3b4c5e";

/// Tunnels, in list order.
pub(super) const OLD_HOMELAB_TUNNEL_ID: &str = "0e4a7c2b-9d1f-4e63-8b5a-2c7d9e1f3a64";
pub(super) const HOMELAB_TUNNEL_ID: &str = "c1744f8b-faa1-48a4-9e5c-02ac921467fa";
pub(super) const POCKET_ID_TUNNEL_ID: &str = "5d2b8e4f-7a1c-4b96-9e3d-8f6a2c4e1b07";
const HOMELAB_CONNECTORS: [&str; 2] = [
    "1bedc50d-42b3-473c-b108-ff3d10c0d925",
    "2cfed61e-53c4-484d-8c19-0a4e21d1ea36",
];
const POCKET_ID_CONNECTOR: &str = "3d0fe72f-64d5-495e-9d2a-1b5f32e2fb47";

/// DNS records of the zone.
const SERVICE_RECORD_ID: &str = "372e67954025e0ba6aaa6d586b9e0b59";
const IDP_RECORD_ID: &str = "4a8f78065136f1cb7bbb7e697cae1c6a";
const WIKI_RECORD_ID: &str = "5b9089176247a2dc8ccc8f7a8dbf2d7b";

/// Token permissions (the `x-api-token-group` names the API checks).
const ORGANIZATIONS_READ: &str = "Access: Organizations, Identity Providers, and Groups Read";
const APPS_READ: &str = "Access: Apps and Policies Read";
const SERVICE_TOKENS_READ: &str = "Access: Service Tokens Read";
const TUNNEL_READ: &str = "Cloudflare Tunnel Read";
const ZONE_READ: &str = "Zone Read";
const DNS_READ: &str = "DNS Read";
const BOT_MANAGEMENT_READ: &str = "Bot Management Read";

/// The API's configuration: the token it accepts, the service token the Service
/// Auth policy names, and the faults.
pub(super) struct CfApi {
    faults: FaultSet,
    /// The API token (a secret: never printed).
    token: String,
    /// The token's id, as verify shows it.
    token_id: String,
    service_token: ServiceToken,
    /// When the lab started (Unix seconds), for relative timestamps.
    started: u64,
    /// Paths already answered 429 once (fault cf-api-rate-limited).
    limited: Mutex<HashSet<String>>,
    /// The face of the API's refusals under faults cf-token-cannot-list-accounts and
    /// cf-bot-management-unavailable.
    variant: Variant,
}

impl CfApi {
    pub(super) fn new(faults: FaultSet, token: String, service_token: ServiceToken) -> CfApi {
        CfApi {
            faults,
            token,
            token_id: wire::random_hex(16),
            service_token,
            started: wire::unix_now(),
            limited: Mutex::new(HashSet::new()),
            variant: Variant::default(),
        }
    }

    /// The API under `variant`'s face.
    pub(super) fn with_variant(mut self, variant: Variant) -> CfApi {
        self.variant = variant;
        self
    }
}

/// The api.cloudflare.example.com router: every request answered by [`answer`],
/// stamped like the edge, and recorded in `log`.
pub(super) fn router(api: Arc<CfApi>, log: Arc<apilog::ApiLog>) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(api)
        .layer(middleware::map_response(edge::stamp))
        .layer(middleware::from_fn_with_state(
            apilog::Recorder {
                log,
                host: CF_API_HOST,
                keyed_api_only: false,
            },
            apilog::record,
        ))
}

async fn handle(
    State(api): State<Arc<CfApi>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    answer(
        &api,
        &method,
        uri.path(),
        uri.query().unwrap_or(""),
        &headers,
    )
}

// ---------------------------------------------------------------------------------
// Envelopes and errors.

/// A JSON answer.
fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `{"success":false,"errors":[…],"messages":[],"result":null}`.
fn failure_with(status: StatusCode, errors: Value) -> Response {
    json_response(
        status,
        &json!({ "success": false, "errors": errors, "messages": [], "result": null }),
    )
}

fn failure(status: StatusCode, code: u32, message: &str) -> Response {
    failure_with(status, json!([{ "code": code, "message": message }]))
}

/// A single object.
fn success(result: Value) -> Response {
    json_response(
        StatusCode::OK,
        &json!({ "success": true, "errors": [], "messages": [], "result": result }),
    )
}

/// 429 with `Retry-After`, the body the contract gives.
fn rate_limited(retry_after: u64) -> Response {
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({ "success": false, "errors": [{ "code": 10429, "message": "Too many requests" }] }),
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

fn no_route() -> Response {
    failure(StatusCode::NOT_FOUND, 7000, "No route for that URI")
}

/// Cloudflare's 7003 text for an identifier that routes nowhere, quoting at most
/// [`MAX_QUOTED_PATH`] bytes of the path (cut on a character boundary).
fn could_not_route_text(path: &str) -> String {
    let mut end = path.len().min(MAX_QUOTED_PATH);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "Could not route to {}, perhaps your object identifier is invalid?",
        path.get(..end).unwrap_or_default()
    )
}

/// 404 7003 for an identifier that routes nowhere (account, zone, tunnel).
fn could_not_route(path: &str) -> Response {
    failure(StatusCode::NOT_FOUND, 7003, &could_not_route_text(path))
}

/// An Access object that does not exist.
fn access_not_found() -> Response {
    failure(StatusCode::NOT_FOUND, 12135, "access.api.error.not_found")
}

fn forbidden() -> Response {
    failure(StatusCode::FORBIDDEN, 10000, "Authentication error")
}

/// The `page`/`per_page` of a list request and its other parameters.
struct ListQuery {
    page: usize,
    pairs: Vec<(String, String)>,
}

impl ListQuery {
    fn parse(query: &str) -> ListQuery {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let page = pairs
            .iter()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .filter(|&p| p > 0)
            .unwrap_or(1);
        ListQuery { page, pairs }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A list answer: the requested page of `items` (per_page capped at
/// [`PER_PAGE`]); a page past the end is empty.
fn list(items: Vec<Value>, query: &ListQuery) -> Response {
    let total_count = items.len();
    let result: Vec<Value> = items
        .into_iter()
        .skip((query.page - 1).saturating_mul(PER_PAGE))
        .take(PER_PAGE)
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "success": true,
            "errors": [],
            "messages": [],
            "result": result,
            "result_info": {
                "page": query.page,
                "per_page": PER_PAGE,
                "count": result.len(),
                "total_count": total_count,
                "total_pages": total_count.div_ceil(PER_PAGE),
            },
        }),
    )
}

/// The object with `id` among `items`, or Access's not-found.
fn one_of(items: Vec<Value>, id: &str) -> Response {
    items
        .into_iter()
        .find(|item| item["id"] == id)
        .map_or_else(access_not_found, success)
}

// ---------------------------------------------------------------------------------
// Routing, authentication, permissions.

/// The answer to `method path?query` with `headers`.
pub(super) fn answer(
    api: &CfApi,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> Response {
    if api.faults.has(Fault::CfApiRateLimitExhausted) {
        return rate_limited(300);
    }
    if api.faults.has(Fault::CfApiRateLimited) && api.first_request_to(path) {
        return rate_limited(1);
    }
    if method != Method::GET {
        return failure(StatusCode::METHOD_NOT_ALLOWED, 10405, "Method not allowed");
    }
    let Some(rest) = path.strip_prefix("/client/v4/") else {
        return no_route();
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let verify = matches!(
        segments.as_slice(),
        ["user", "tokens", "verify"] | ["accounts", _, "tokens", "verify"]
    );
    if let Some(refusal) = api.authenticate(headers, verify) {
        return refusal;
    }
    let query = ListQuery::parse(query);
    match segments.as_slice() {
        ["user", "tokens", "verify"] if api.account_owned() => {
            failure(StatusCode::UNAUTHORIZED, 1000, "Invalid API Token")
        }
        ["user", "tokens", "verify"] => api.verify(),
        ["accounts"] if api.faults.has(Fault::CfTokenCannotListAccounts) => api.accounts_refused(),
        ["accounts"] => list(vec![account()], &query),
        ["accounts", account_id, rest @ ..] => {
            if *account_id != ACCOUNT_ID {
                return could_not_route(path);
            }
            api.account_route(rest, path, &query)
        }
        ["zones"] => api.with(ZONE_READ, || {
            let zones = [zone()]
                .into_iter()
                .filter(|z| query.get("name").is_none_or(|n| z["name"] == n))
                .collect();
            list(zones, &query)
        }),
        ["zones", zone_id, rest @ ..] => {
            if *zone_id != ZONE_ID {
                return could_not_route(path);
            }
            api.zone_route(rest, path, &query)
        }
        _ => no_route(),
    }
}

impl CfApi {
    /// Whether this is the first request to `path` (fault cf-api-rate-limited).
    fn first_request_to(&self, path: &str) -> bool {
        let mut limited = self.limited.lock().unwrap_or_else(PoisonError::into_inner);
        limited.len() < RATE_LIMITED_PATHS && limited.insert(path.to_string())
    }

    /// The bearer token check: the refusal, if any. `verify` marks the token verify endpoints, which
    /// word an unknown token differently.
    fn authenticate(&self, headers: &HeaderMap, verify: bool) -> Option<Response> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Some(failure(
                StatusCode::BAD_REQUEST,
                9106,
                "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty() && !token.contains(' ')
            })
            .map(|(_, token)| token);
        let Some(token) = token else {
            return Some(failure_with(
                StatusCode::BAD_REQUEST,
                json!([{
                    "code": 6003,
                    "message": "Invalid request headers",
                    "error_chain": [{ "code": 6111, "message": "Invalid format for Authorization header" }],
                }]),
            ));
        };
        if token != self.token {
            return Some(if verify {
                failure(StatusCode::UNAUTHORIZED, 1000, "Invalid API Token")
            } else {
                failure(StatusCode::FORBIDDEN, 9109, "Invalid access token")
            });
        }
        None
    }

    /// Whether the token holds `permission`: all the read permissions, but Tunnel
    /// Read under fault cf-token-missing-permission.
    fn has(&self, permission: &str) -> bool {
        !(permission == TUNNEL_READ && self.faults.has(Fault::CfTokenMissingPermission))
    }

    /// `answer()` when the token holds `permission`, else 403 10000.
    fn with(&self, permission: &str, answer: impl FnOnce() -> Response) -> Response {
        if self.has(permission) {
            answer()
        } else {
            forbidden()
        }
    }

    /// Whether the token is owned by the account, not a user (fault
    /// cf-token-cannot-list-accounts, classic face): only the account's verify endpoint
    /// knows it, and it cannot list accounts.
    fn account_owned(&self) -> bool {
        self.faults.has(Fault::CfTokenCannotListAccounts) && self.variant == Variant::Classic
    }

    /// `GET /accounts` for a token that cannot list accounts (fault
    /// cf-token-cannot-list-accounts), by face: an account-owned token's 400 1001
    /// (reference §1.4), a user-owned token without the permission's 403 10000, or a
    /// user-level endpoint's 403 9109.
    fn accounts_refused(&self) -> Response {
        match self.variant {
            Variant::Classic => failure(
                StatusCode::BAD_REQUEST,
                1001,
                "List accounts endpoint does not support account owned tokens.",
            ),
            Variant::Rebranded => forbidden(),
            Variant::Terse => failure(
                StatusCode::FORBIDDEN,
                9109,
                "Unauthorized to access requested resource",
            ),
        }
    }

    /// `GET /zones/ZONE_ID/bot_management` where the API does not offer it (fault
    /// cf-bot-management-unavailable), by face: the gateway's 404 for a route (7003
    /// with 7000, or 7000 alone), or a 403 for a plan without the feature.
    fn bot_management_unavailable(&self, path: &str) -> Response {
        match self.variant {
            Variant::Classic => failure_with(
                StatusCode::NOT_FOUND,
                json!([
                    { "code": 7003, "message": could_not_route_text(path) },
                    { "code": 7000, "message": "No route for that URI" },
                ]),
            ),
            Variant::Rebranded => no_route(),
            Variant::Terse => failure(
                StatusCode::FORBIDDEN,
                10010,
                "botmanagement.api.not_entitled",
            ),
        }
    }

    /// `GET /user/tokens/verify`.
    fn verify(&self) -> Response {
        json_response(
            StatusCode::OK,
            &json!({
                "success": true,
                "errors": [],
                "messages": [{ "code": 10000, "message": "This API Token is valid and active" }],
                "result": {
                    "id": self.token_id,
                    "status": "active",
                    "expires_on": self.at(90 * 86_400),
                },
            }),
        )
    }

    /// `/accounts/ACCOUNT_ID/<rest>`.
    fn account_route(&self, rest: &[&str], path: &str, query: &ListQuery) -> Response {
        match rest {
            [] => success(account()),
            ["tokens", "verify"] if self.account_owned() => self.verify(),
            // The lab's token is user-owned: the account endpoint does not know it.
            ["tokens", "verify"] => failure(StatusCode::UNAUTHORIZED, 1000, "Invalid API Token"),
            ["access", "organizations"] => {
                self.with(ORGANIZATIONS_READ, || success(self.organization()))
            }
            ["access", "identity_providers"] => self.with(ORGANIZATIONS_READ, || {
                list(self.identity_providers(), query)
            }),
            ["access", "identity_providers", id] => {
                self.with(ORGANIZATIONS_READ, || one_of(self.identity_providers(), id))
            }
            ["access", "groups"] => self.with(ORGANIZATIONS_READ, || list(groups(), query)),
            ["access", "groups", id] => self.with(ORGANIZATIONS_READ, || one_of(groups(), id)),
            ["access", "apps"] => self.with(APPS_READ, || list(self.apps(), query)),
            ["access", "apps", id] => self.with(APPS_READ, || one_of(self.apps(), id)),
            ["access", "apps", id, "policies"] => self.with(APPS_READ, || {
                match self.apps().into_iter().find(|app| app["id"] == *id) {
                    Some(app) => list(policies_of(app), query),
                    None => access_not_found(),
                }
            }),
            ["access", "apps", id, "policies", policy] => self.with(APPS_READ, || {
                match self.apps().into_iter().find(|app| app["id"] == *id) {
                    Some(app) => one_of(policies_of(app), policy),
                    None => access_not_found(),
                }
            }),
            ["access", "policies"] => {
                self.with(APPS_READ, || list(self.reusable_policies(), query))
            }
            ["access", "policies", id] => {
                self.with(APPS_READ, || one_of(self.reusable_policies(), id))
            }
            ["access", "service_tokens"] => self.with(SERVICE_TOKENS_READ, || {
                list(vec![self.service_token()], query)
            }),
            ["cfd_tunnel"] => self.with(TUNNEL_READ, || list(self.tunnels(), query)),
            ["cfd_tunnel", id, more @ ..] => self.with(TUNNEL_READ, || {
                let Some(tunnel) = self.tunnels().into_iter().find(|t| t["id"] == *id) else {
                    return could_not_route(path);
                };
                match more {
                    [] => success(tunnel),
                    ["connections"] => success(Value::Array(self.connections(id))),
                    ["configurations"] => success(self.configuration(id)),
                    _ => no_route(),
                }
            }),
            _ => no_route(),
        }
    }

    /// `/zones/ZONE_ID/<rest>`.
    fn zone_route(&self, rest: &[&str], path: &str, query: &ListQuery) -> Response {
        match rest {
            [] => self.with(ZONE_READ, || success(zone())),
            ["dns_records"] => self.with(DNS_READ, || {
                let name = query.get("name.exact").or_else(|| query.get("name"));
                let kind = query.get("type");
                let records = self
                    .dns_records()
                    .into_iter()
                    .filter(|r| name.is_none_or(|n| r["name"].as_str() == Some(n)))
                    .filter(|r| kind.is_none_or(|k| r["type"].as_str() == Some(k)))
                    .collect();
                list(records, query)
            }),
            ["dns_records", id] => self.with(DNS_READ, || {
                self.dns_records()
                    .into_iter()
                    .find(|r| r["id"] == *id)
                    .map_or_else(no_route, success)
            }),
            ["bot_management"] if self.faults.has(Fault::CfBotManagementUnavailable) => {
                self.bot_management_unavailable(path)
            }
            ["bot_management"] => self.with(BOT_MANAGEMENT_READ, || success(self.bot_management())),
            _ => no_route(),
        }
    }

    /// RFC 3339 (seconds) of the lab's start plus `offset` seconds.
    fn at(&self, offset: u64) -> String {
        wire::rfc3339_nanos(self.started + offset, 0)
    }

    /// RFC 3339 (seconds) of the lab's start minus `ago` seconds.
    fn ago(&self, ago: u64) -> String {
        wire::rfc3339_nanos(self.started.saturating_sub(ago), 0)
    }
}

// ---------------------------------------------------------------------------------
// The objects.

fn account() -> Value {
    json!({
        "id": ACCOUNT_ID,
        "name": ACCOUNT_NAME,
        "type": "standard",
        "settings": { "enforce_twofactor": false, "abuse_contact_email": null },
        "created_on": "2023-04-11T12:00:00Z",
    })
}

fn zone() -> Value {
    json!({
        "id": ZONE_ID,
        "name": ZONE_NAME,
        "status": "active",
        "paused": false,
        "type": "full",
        "development_mode": 0,
        "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        "original_name_servers": null,
        "account": { "id": ACCOUNT_ID, "name": ACCOUNT_NAME },
        "plan": { "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "legacy_id": "free" },
        "created_on": "2023-04-11T12:05:00Z",
        "modified_on": "2025-02-18T22:40:00Z",
        "activated_on": "2023-04-11T12:30:00Z",
    })
}

/// An Access rule `{kind: value}`.
fn rule(kind: &str, value: Value) -> Value {
    let mut rule = serde_json::Map::new();
    rule.insert(kind.to_string(), value);
    Value::Object(rule)
}

/// A policy with the lab's defaults for what the faults do not touch.
fn policy(id: &str, name: &str, decision: &str, precedence: u32, include: Vec<Value>) -> Value {
    json!({
        "id": id,
        "name": name,
        "decision": decision,
        "precedence": precedence,
        "include": include,
        "exclude": [],
        "require": [],
        "approval_required": false,
        "purpose_justification_required": false,
        "isolation_required": false,
        "session_duration": "24h",
        "reusable": false,
        "created_at": "2025-02-18T22:45:00Z",
        "updated_at": "2025-02-18T22:45:00Z",
    })
}

/// The reusable policy that blocks contractors, linked to the service app.
fn block_contractors() -> Value {
    let mut policy = policy(
        BLOCK_CONTRACTORS_POLICY_ID,
        "block contractors",
        "deny",
        1,
        vec![rule(
            "email_domain",
            json!({ "domain": "contractors.example.com" }),
        )],
    );
    policy["reusable"] = json!(true);
    policy
}

/// An application's policies, as it carries them inline.
fn policies_of(app: Value) -> Vec<Value> {
    match app.get("policies") {
        Some(Value::Array(policies)) => policies.clone(),
        _ => Vec::new(),
    }
}

/// A self-hosted application on `domain`.
fn app(
    id: &str,
    name: &str,
    domain: &str,
    aud: &str,
    allowed_idps: Vec<&str>,
    auto_redirect: bool,
    policies: Vec<Value>,
) -> Value {
    json!({
        "id": id,
        "type": "self_hosted",
        "name": name,
        "domain": domain,
        "destinations": [{ "type": "public", "uri": domain }],
        "self_hosted_domains": [domain],
        "aud": aud,
        "allowed_idps": allowed_idps,
        "auto_redirect_to_identity": auto_redirect,
        "session_duration": "24h",
        "app_launcher_visible": true,
        "service_auth_401_redirect": false,
        "options_preflight_bypass": false,
        "enable_binding_cookie": false,
        "http_only_cookie_attribute": true,
        "same_site_cookie_attribute": "lax",
        "skip_interstitial": false,
        "allow_authenticate_via_warp": false,
        "custom_deny_message": "",
        "custom_deny_url": "",
        "tags": [],
        "policies": policies,
        "created_at": "2025-02-18T22:44:00Z",
        "updated_at": "2025-02-18T22:44:00Z",
    })
}

fn groups() -> Vec<Value> {
    let group = |id: &str, name: &str, domain: &str| {
        json!({
            "id": id,
            "name": name,
            "include": [rule("email_domain", json!({ "domain": domain }))],
            "exclude": [],
            "require": [],
            "is_default": [],
            "created_at": "2025-02-18T22:43:00Z",
            "updated_at": "2025-02-18T22:43:00Z",
        })
    };
    vec![
        group(STAFF_GROUP_ID, "Staff", ZONE_NAME),
        group(
            CONTRACTORS_GROUP_ID,
            "Contractors",
            "contractors.example.com",
        ),
    ]
}

/// A tunnel's ingress catch-all.
fn catch_all() -> Value {
    json!({ "service": "http_status:404" })
}

/// An ingress rule.
fn ingress(hostname: &str, service: &str) -> Value {
    json!({ "hostname": hostname, "service": service, "originRequest": {} })
}

impl CfApi {
    fn organization(&self) -> Value {
        let (auth_domain, name) = if self.faults.has(Fault::WrongTeam) {
            (access::OTHER_TEAM_HOST, "Other team")
        } else {
            (TEAM_HOST, ACCOUNT_NAME)
        };
        json!({
            "name": name,
            "auth_domain": auth_domain,
            "auto_redirect_to_identity": false,
            "session_duration": "24h",
            "is_ui_read_only": false,
            "allow_authenticate_via_warp": false,
            "warp_auth_session_duration": "24h",
            "user_seat_expiration_inactive_time": "730h",
            "login_design": {
                "background_color": "#ffffff",
                "text_color": "#000000",
                "logo_path": "",
                "header_text": "",
                "footer_text": "",
            },
            "custom_pages": { "forbidden": "", "identity_denied": "" },
            "created_at": "2023-04-11T12:10:00Z",
            "updated_at": "2025-02-18T22:42:00Z",
        })
    }

    /// The identity providers: One-time PIN, GitHub, the old Pocket ID, then the
    /// Pocket ID the edge uses (on page 2), as the faults configure it.
    fn identity_providers(&self) -> Vec<Value> {
        let faults = &self.faults;
        let scim = json!({
            "enabled": false,
            "identity_update_behavior": "no_action",
            "seat_deprovision": false,
            "user_deprovision": false,
        });
        let oidc = |client_id: &str, host: &str, auth_path: &str, certs_path: &str| {
            json!({
                "client_id": client_id,
                "auth_url": format!("https://{host}{auth_path}"),
                "token_url": format!("https://{host}/api/oidc/token"),
                "certs_url": format!("https://{host}{certs_path}"),
                "pkce_enabled": true,
                "scopes": access::SCOPES.split(' ').collect::<Vec<_>>(),
                "claims": [],
                "email_claim_name": "email",
            })
        };
        let mut pocket_id = oidc(
            access::client_id(faults),
            IDP_HOST,
            access::auth_path(faults),
            access::certs_path(faults),
        );
        // The Token URL Access redeems codes at (fault token-url-wrong).
        pocket_id["token_url"] = json!(format!("https://{IDP_HOST}{}", access::token_path(faults)));
        if faults.has(Fault::NoPkce) || faults.has(Fault::PublicClientNoPkce) {
            pocket_id["pkce_enabled"] = json!(false);
        }
        pocket_id["scopes"] = json!(access::scopes(faults).split(' ').collect::<Vec<_>>());
        if faults.has(Fault::GroupsClaimDisplayName) {
            pocket_id["claims"] = json!(["groups"]);
        }
        pocket_id["email_claim_name"] = json!(access::email_claim(faults));
        let idp = |id: &str, name: &str, kind: &str, config: Value| json!({ "id": id, "name": name, "type": kind, "config": config, "scim_config": scim });
        vec![
            idp(OTP_IDP_ID, "One-time PIN", "onetimepin", json!({})),
            idp(
                access::GITHUB_IDP_ID,
                "GitHub",
                "github",
                json!({ "client_id": access::GITHUB_CLIENT_ID }),
            ),
            idp(
                OLD_IDP_ID,
                "Pocket ID (old)",
                "oidc",
                oidc(
                    OLD_IDP_CLIENT_ID,
                    OLD_IDP_HOST,
                    "/authorize",
                    "/.well-known/jwks.json",
                ),
            ),
            idp(access::IDP_ID, "Pocket ID", "oidc", pocket_id),
        ]
    }

    /// The service application's policies, in precedence order.
    fn service_policies(&self) -> Vec<Value> {
        let faults = &self.faults;
        let monitor = policy(
            MONITOR_POLICY_ID,
            "monitor",
            "non_identity",
            3,
            vec![rule(
                "service_token",
                json!({ "token_id": self.service_token.uuid }),
            )],
        );
        if faults.has(Fault::ServiceAuthOnly) {
            return vec![monitor];
        }
        let include = if faults.has(Fault::AccessPolicyDeny) {
            vec![rule("email", json!({ "email": access::DENY_POLICY_EMAIL }))]
        } else if faults.has(Fault::GroupsClaimMissing) || faults.has(Fault::GroupsClaimDisplayName)
        {
            let value = if faults.has(Fault::GroupsClaimDisplayName) {
                "Probers"
            } else {
                "probers"
            };
            vec![rule(
                "oidc",
                json!({
                    "claim_name": "groups",
                    "claim_value": value,
                    "identity_provider_id": access::IDP_ID,
                }),
            )]
        } else {
            vec![rule("group", json!({ "id": STAFF_GROUP_ID }))]
        };
        let mut people = policy(PEOPLE_POLICY_ID, "people", "allow", 2, include);
        if faults.has(Fault::PolicyLoginMethod) {
            people["require"] = json!([rule("login_method", json!({ "id": OTP_IDP_ID }))]);
        }
        if faults.has(Fault::ApprovalRequired) {
            people["approval_required"] = json!(true);
            people["approval_groups"] = json!([{
                "approvals_needed": 1,
                "email_addresses": [access::DENY_POLICY_EMAIL],
            }]);
        }
        let mut policies = Vec::new();
        if faults.has(Fault::BypassEveryone) {
            policies.push(policy(
                PUBLIC_POLICY_ID,
                "public",
                "bypass",
                0,
                vec![rule("everyone", json!({}))],
            ));
        }
        policies.push(block_contractors());
        policies.push(people);
        if !faults.has(Fault::NoServiceAuth) {
            policies.push(monitor);
        }
        policies
    }

    /// The applications: decoys first, the real one on page 2 (none under fault
    /// site-public, which also drops the wildcard), Pocket ID's (a Bypass) last.
    fn apps(&self) -> Vec<Value> {
        let faults = &self.faults;
        let site_public = faults.has(Fault::SitePublic);
        let people_in = |id: &str, precedence: u32| {
            policy(
                id,
                "people",
                "allow",
                precedence,
                vec![rule("group", json!({ "id": STAFF_GROUP_ID }))],
            )
        };
        let mut apps = vec![app(
            WIKI_APP_ID,
            "wiki",
            "wiki.example.com",
            WIKI_AUD,
            vec![access::IDP_ID],
            true,
            vec![people_in(WIKI_POLICY_ID, 1)],
        )];
        if !site_public {
            let mut everyone = policy(
                EVERYTHING_POLICY_ID,
                "anyone with a PIN",
                "allow",
                1,
                vec![rule("everyone", json!({}))],
            );
            everyone["require"] = json!([rule("login_method", json!({ "id": OTP_IDP_ID }))]);
            apps.push(app(
                EVERYTHING_APP_ID,
                "everything",
                "*.example.com",
                EVERYTHING_AUD,
                vec![OTP_IDP_ID],
                false,
                vec![everyone],
            ));
        }
        apps.push(app(
            SERVICE_ADMIN_APP_ID,
            "service admin",
            "service.example.com/admin",
            SERVICE_ADMIN_AUD,
            vec![access::IDP_ID],
            true,
            vec![policy(
                SERVICE_ADMIN_POLICY_ID,
                "admins",
                "allow",
                1,
                vec![rule("email", json!({ "email": access::DENY_POLICY_EMAIL }))],
            )],
        ));
        if !site_public {
            let (allowed_idps, auto_redirect) =
                if faults.has(Fault::NoInstantAuth) || faults.has(Fault::IdpChooserViaTeam) {
                    (vec![access::IDP_ID, access::GITHUB_IDP_ID], false)
                } else if faults.has(Fault::AppHidesIdp) {
                    (vec![access::GITHUB_IDP_ID], true)
                } else if faults.has(Fault::InstantAuthAmbiguous) {
                    (vec![], true)
                } else {
                    (vec![access::IDP_ID], true)
                };
            apps.push(app(
                SERVICE_APP_ID,
                "service",
                SERVICE_HOST,
                AUD,
                allowed_idps,
                auto_redirect,
                self.service_policies(),
            ));
        }
        // Pocket ID's own application: a Bypass for everyone, as Cloudflare's back-channel
        // requests (token exchange, keys) must not meet a login; under fault
        // idp-behind-access its policy admits only people.
        let idp_policy = if faults.has(Fault::IdpBehindAccess) {
            people_in(IDP_APP_POLICY_ID, 1)
        } else {
            policy(
                IDP_APP_POLICY_ID,
                "public",
                "bypass",
                1,
                vec![rule("everyone", json!({}))],
            )
        };
        apps.push(app(
            IDP_APP_ID,
            "pocket id",
            IDP_HOST,
            IDP_APP_AUD,
            vec![access::IDP_ID],
            true,
            vec![idp_policy],
        ));
        apps
    }

    /// The reusable policies, with how many applications use each.
    fn reusable_policies(&self) -> Vec<Value> {
        let app_count = self
            .apps()
            .into_iter()
            .filter(|app| {
                policies_of(app.clone())
                    .iter()
                    .any(|p| p["id"] == BLOCK_CONTRACTORS_POLICY_ID)
            })
            .count();
        let mut policy = block_contractors();
        policy["app_count"] = json!(app_count);
        vec![policy]
    }

    fn service_token(&self) -> Value {
        json!({
            "id": self.service_token.uuid,
            "name": "monitor",
            "client_id": self.service_token.id,
            "duration": "8760h",
            "expires_at": self.at(300 * 86_400),
            "created_at": self.ago(65 * 86_400),
            "updated_at": self.ago(65 * 86_400),
        })
    }

    /// The tunnels: the old one (down), the site's, Pocket ID's.
    fn tunnels(&self) -> Vec<Value> {
        let tunnel = |id: &str, name: &str, status: &str, created: &str| {
            let down = status == "down";
            json!({
                "id": id,
                "account_tag": ACCOUNT_ID,
                "name": name,
                "status": status,
                "config_src": "cloudflare",
                "remote_config": true,
                "tun_type": "cfd_tunnel",
                "created_at": created,
                "deleted_at": null,
                "conns_active_at": if down { Value::Null } else { json!(self.ago(3600)) },
                "conns_inactive_at": if down { json!(self.ago(600)) } else { Value::Null },
                "connections": [],
                "metadata": {},
            })
        };
        let homelab = if self.faults.has(Fault::TunnelDown) {
            "down"
        } else if self.faults.has(Fault::TunnelDegraded) {
            "degraded"
        } else {
            "healthy"
        };
        let pocket_id = if self.faults.has(Fault::IdpBehindTunnelDown) {
            "down"
        } else {
            "healthy"
        };
        let mut old = tunnel(
            OLD_HOMELAB_TUNNEL_ID,
            "old-homelab",
            "down",
            "2024-03-02T10:00:00Z",
        );
        old["conns_inactive_at"] = json!("2024-12-01T08:00:00Z");
        vec![
            old,
            tunnel(
                HOMELAB_TUNNEL_ID,
                "homelab",
                homelab,
                "2025-02-18T22:41:43Z",
            ),
            tunnel(
                POCKET_ID_TUNNEL_ID,
                "pocket-id",
                pocket_id,
                "2025-02-18T22:50:00Z",
            ),
        ]
    }

    /// The connectors of tunnel `id` with their connections to the edge.
    fn connections(&self, id: &str) -> Vec<Value> {
        let connector = |connector_id: &str, pending: bool| {
            let conn = |colo: &str, n: u8| {
                json!({
                    "id": format!("{}{n}", &connector_id[..35]),
                    "uuid": format!("{}{n}", &connector_id[..35]),
                    "client_id": connector_id,
                    "client_version": "2025.11.1",
                    "colo_name": colo,
                    "opened_at": self.ago(3600),
                    "origin_ip": "203.0.113.7",
                    "is_pending_reconnect": pending,
                })
            };
            json!({
                "id": connector_id,
                "arch": "linux_amd64",
                "version": "2025.11.1",
                "run_at": self.ago(3700),
                "config_version": 7,
                "features": ["ha-origin", "serialized_headers"],
                "conns": [conn("FRA", 1), conn("AMS", 2)],
            })
        };
        match id {
            HOMELAB_TUNNEL_ID if self.faults.has(Fault::TunnelDown) => vec![],
            HOMELAB_TUNNEL_ID => vec![
                connector(HOMELAB_CONNECTORS[0], false),
                connector(
                    HOMELAB_CONNECTORS[1],
                    self.faults.has(Fault::TunnelDegraded),
                ),
            ],
            POCKET_ID_TUNNEL_ID if self.faults.has(Fault::IdpBehindTunnelDown) => vec![],
            POCKET_ID_TUNNEL_ID => vec![connector(POCKET_ID_CONNECTOR, false)],
            _ => vec![],
        }
    }

    /// The remotely managed configuration of tunnel `id`.
    fn configuration(&self, id: &str) -> Value {
        let rules = match id {
            HOMELAB_TUNNEL_ID if self.faults.has(Fault::IngressMissing) => vec![catch_all()],
            HOMELAB_TUNNEL_ID => {
                let mut service = ingress(SERVICE_HOST, "http://app:8080");
                if self.faults.has(Fault::OriginAccessAud) {
                    service["originRequest"] = json!({
                        "access": { "required": true, "teamName": TEAM, "audTag": [WRONG_ORIGIN_AUD] },
                    });
                }
                vec![service, catch_all()]
            }
            POCKET_ID_TUNNEL_ID => vec![ingress(IDP_HOST, "http://pocket-id:1411"), catch_all()],
            // What the old tunnel served before the move.
            _ => vec![
                ingress(SERVICE_HOST, "http://192.168.1.20:8080"),
                catch_all(),
            ],
        };
        json!({
            "account_id": ACCOUNT_ID,
            "tunnel_id": id,
            "version": 7,
            "source": "cloudflare",
            "created_at": self.ago(86_400),
            "config": {
                "ingress": rules,
                "warp-routing": { "enabled": false },
                "originRequest": {},
            },
        })
    }

    fn dns_records(&self) -> Vec<Value> {
        let record = |id: &str, name: &str, kind: &str, content: String| {
            json!({
                "id": id,
                "zone_id": ZONE_ID,
                "zone_name": ZONE_NAME,
                "name": name,
                "type": kind,
                "content": content,
                "proxiable": true,
                "proxied": true,
                "ttl": 1,
                "settings": {},
                "meta": {},
                "comment": null,
                "tags": [],
                "created_on": "2025-02-18T22:41:50Z",
                "modified_on": "2025-02-18T22:41:50Z",
            })
        };
        let service_tunnel = if self.faults.has(Fault::DnsNotTunnel) {
            OLD_HOMELAB_TUNNEL_ID
        } else {
            HOMELAB_TUNNEL_ID
        };
        vec![
            record(
                SERVICE_RECORD_ID,
                SERVICE_HOST,
                "CNAME",
                format!("{service_tunnel}.cfargotunnel.com"),
            ),
            record(
                IDP_RECORD_ID,
                IDP_HOST,
                "CNAME",
                format!("{POCKET_ID_TUNNEL_ID}.cfargotunnel.com"),
            ),
            record(
                WIKI_RECORD_ID,
                "wiki.example.com",
                "A",
                "203.0.113.10".to_string(),
            ),
        ]
    }

    /// Bot Fight Mode is on wherever the edge challenges (faults challenge,
    /// token-challenge, token-blocked-for-access, jwks-blocked-for-access).
    fn bot_management(&self) -> Value {
        let fight_mode = [
            Fault::Challenge,
            Fault::TokenChallenge,
            Fault::TokenBlockedForAccess,
            Fault::JwksBlockedForAccess,
        ]
        .into_iter()
        .any(|f| self.faults.has(f));
        json!({
            "fight_mode": fight_mode,
            "enable_js": fight_mode,
            "using_latest_model": true,
            "auto_update_model": true,
            "ai_bots_protection": "disabled",
        })
    }
}
