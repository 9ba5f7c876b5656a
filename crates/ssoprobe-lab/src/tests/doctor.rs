//! The doctor's side of the lab: the Cloudflare API (answered in process, and over
//! HTTPS where the listener matters) and Pocket ID's admin API additions, with the
//! objects every fault changes.

use super::*;
use crate::cfapi::{self, CfApi};
use axum::http::{HeaderMap as AxumHeaders, HeaderValue, Method};
use serde_json::json;

const TOKEN: &str = "lab-test-token-0123456789abcdefghijABCDEF";

/// The Cloudflare API with `faults`, answered in process.
fn api(faults: &[Fault]) -> CfApi {
    CfApi::new(
        FaultSet::new(faults),
        TOKEN.to_string(),
        access::ServiceToken::generate(),
    )
}

/// `method path?query` with `authorization` (none: no header): status, headers,
/// JSON body.
fn call(
    api: &CfApi,
    method: Method,
    target: &str,
    authorization: Option<&str>,
) -> (u16, AxumHeaders, Value) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = AxumHeaders::new();
    if let Some(value) = authorization {
        headers.insert(
            "authorization",
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    let response = cfapi::answer(api, &method, path, query, &headers);
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
        .expect("a body");
    let json = serde_json::from_slice(&body).expect("a JSON body");
    (status, headers, json)
}

/// A GET with the lab token.
fn get(api: &CfApi, target: &str) -> (u16, Value) {
    let (status, _, body) = call(api, Method::GET, target, Some(&format!("Bearer {TOKEN}")));
    (status, body)
}

/// The result of a successful GET.
fn result(api: &CfApi, target: &str) -> Value {
    let (status, body) = get(api, target);
    assert_eq!(status, 200, "{target}: {body}");
    assert_eq!(body["success"], true);
    body["result"].clone()
}

/// Every item of a list, paging until an empty page (as Cloudflare's SDK does).
fn all(api: &CfApi, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    for page in 1..20 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page_items = result(api, &format!("{path}{sep}page={page}&per_page=50"));
        let page_items = page_items.as_array().expect("a list").clone();
        if page_items.is_empty() {
            return items;
        }
        items.extend(page_items);
    }
    panic!("{path} never ends");
}

fn acct(path: &str) -> String {
    format!("/client/v4/accounts/{ACCOUNT_ID}{path}")
}

fn named<'a>(items: &'a [Value], name: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {items:?}"))
}

fn pocket_id_idp(api: &CfApi) -> Value {
    named(&all(api, &acct("/access/identity_providers")), "Pocket ID").clone()
}

fn service_app(api: &CfApi) -> Value {
    named(&all(api, &acct("/access/apps")), "service").clone()
}

fn service_policies(api: &CfApi) -> Vec<Value> {
    all(
        api,
        &acct(&format!("/access/apps/{}/policies", cfapi::SERVICE_APP_ID)),
    )
}

fn tunnel(api: &CfApi, name: &str) -> Value {
    named(&all(api, &acct("/cfd_tunnel?is_deleted=false")), name).clone()
}

fn dns(api: &CfApi, host: &str) -> Value {
    let records = all(
        api,
        &format!(
            "/client/v4/zones/{}/dns_records?name.exact={host}",
            cfapi::ZONE_ID
        ),
    );
    assert_eq!(records.len(), 1, "{records:?}");
    records[0].clone()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

#[test]
fn cf_lists_are_capped_at_two_per_page_and_end_with_an_empty_page() {
    let api = api(&[]);
    let (status, page1) = get(&api, &acct("/access/identity_providers?per_page=50"));
    assert_eq!(status, 200);
    assert_eq!(
        page1["result_info"],
        json!({ "page": 1, "per_page": 2, "count": 2, "total_count": 4, "total_pages": 2 })
    );
    let names: Vec<_> = page1["result"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|i| i["name"].clone())
        .collect();
    assert_eq!(names, [json!("One-time PIN"), json!("GitHub")]);
    let (_, page2) = get(&api, &acct("/access/identity_providers?page=2&per_page=1"));
    assert_eq!(page2["result_info"]["count"], 2);
    assert_eq!(page2["result"][1]["name"], "Pocket ID");
    let (status, past) = get(&api, &acct("/access/identity_providers?page=3"));
    assert_eq!(status, 200);
    assert_eq!(past["result"], json!([]));
    assert_eq!(past["result_info"]["count"], 0);
    assert_eq!(past["result_info"]["total_count"], 4);
    // Hostile page numbers are not a problem.
    for page in [
        "0",
        "-1",
        "x",
        "18446744073709551615",
        "99999999999999999999",
    ] {
        let (status, body) = get(
            &api,
            &acct(&format!("/access/identity_providers?page={page}")),
        );
        assert_eq!(status, 200, "{page}");
        assert!(body["result"].is_array());
    }
    // Unknown parameters are ignored; the real application is past page 1.
    let (_, apps) = get(&api, &acct("/access/apps?page=1&foo=bar"));
    assert!(
        apps["result"]
            .as_array()
            .expect("a list")
            .iter()
            .all(|a| a["name"] != "service")
    );
    assert_eq!(apps["result_info"]["total_count"], 5);
}

#[test]
fn cf_auth_errors_are_cloudflares() {
    let api = api(&[]);
    let verify = "/client/v4/user/tokens/verify";
    let (status, _, body) = call(&api, Method::GET, verify, None);
    assert_eq!(status, 400);
    assert_eq!(body["success"], false);
    assert_eq!(body["errors"][0]["code"], 9106);
    assert_eq!(
        body["errors"][0]["message"],
        "Missing X-Auth-Key, X-Auth-Email or Authorization headers"
    );
    for bad in [TOKEN, "Basic abc", "Bearer", "Bearer ", "Bearer a b"] {
        let (status, _, body) = call(&api, Method::GET, verify, Some(bad));
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["errors"][0]["code"], 6003);
        assert_eq!(body["errors"][0]["message"], "Invalid request headers");
        assert_eq!(body["errors"][0]["error_chain"][0]["code"], 6111);
        assert_eq!(
            body["errors"][0]["error_chain"][0]["message"],
            "Invalid format for Authorization header"
        );
    }
    let wrong = Some("Bearer not-the-token-at-all-0123456789abcdef");
    let (status, _, body) = call(&api, Method::GET, verify, wrong);
    assert_eq!(status, 401);
    assert_eq!(
        body["errors"][0],
        json!({ "code": 1000, "message": "Invalid API Token" })
    );
    let (status, _, body) = call(&api, Method::GET, &acct("/access/apps"), wrong);
    assert_eq!(status, 403);
    assert_eq!(
        body["errors"][0],
        json!({ "code": 9109, "message": "Invalid access token" })
    );

    let (status, body) = get(&api, verify);
    assert_eq!(status, 200);
    assert_eq!(body["result"]["status"], "active");
    assert!(is_hex(body["result"]["id"].as_str().expect("an id"), 32));
    assert!(
        body["result"]["expires_on"]
            .as_str()
            .expect("a date")
            .ends_with('Z')
    );
    assert_eq!(body["messages"][0]["code"], 10000);
    // The lab token is user-owned.
    let (status, body) = get(&api, &acct("/tokens/verify"));
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["code"], 1000);

    let other = "/client/v4/accounts/0123456789abcdef0123456789abcdef/access/apps";
    let (status, body) = get(&api, other);
    assert_eq!(status, 404);
    assert_eq!(body["errors"][0]["code"], 7003);
    assert_eq!(
        body["errors"][0]["message"],
        format!("Could not route to {other}, perhaps your object identifier is invalid?")
    );
    for unknown in [
        "/client/v4/nothing",
        "/client/v4/",
        "/client/v5/accounts",
        "/",
        "/client/v4/accounts/x/../../user/tokens/verify",
    ] {
        let (status, body) = get(&api, unknown);
        assert!(status == 404, "{unknown}: {status}");
        assert!(
            [7000, 7003].contains(&body["errors"][0]["code"].as_u64().unwrap_or(0)),
            "{unknown}: {body}"
        );
    }
    let (status, body) = get(&api, &acct("/access/nothing"));
    assert_eq!(
        (status, body["errors"][0]["code"].clone()),
        (404, json!(7000))
    );
    let (status, body) = get(&api, &acct("/access/apps/no-such-app"));
    assert_eq!(status, 404);
    assert_eq!(body["errors"][0]["message"], "access.api.error.not_found");

    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        for path in [acct("/access/apps"), "/nowhere".to_string()] {
            let (status, _, body) = call(&api, method.clone(), &path, None);
            assert_eq!(status, 405, "{method} {path}");
            assert_eq!(
                body["errors"][0],
                json!({ "code": 10405, "message": "Method not allowed" })
            );
        }
    }
    let (status, accounts) = get(&api, "/client/v4/accounts");
    assert_eq!(status, 200);
    assert_eq!(accounts["result"][0]["id"], ACCOUNT_ID, "{accounts}");
    assert_eq!(accounts["result"][0]["name"], "Example Corp");
}

#[test]
fn cf_token_without_tunnel_read_gets_403_on_tunnels_only() {
    let api = api(&[Fault::CfTokenMissingPermission]);
    let tunnel = cfapi::HOMELAB_TUNNEL_ID;
    for path in [
        acct("/cfd_tunnel"),
        acct(&format!("/cfd_tunnel/{tunnel}")),
        acct(&format!("/cfd_tunnel/{tunnel}/connections")),
        acct(&format!("/cfd_tunnel/{tunnel}/configurations")),
    ] {
        let (status, body) = get(&api, &path);
        assert_eq!(status, 403, "{path}");
        assert_eq!(
            body["errors"][0],
            json!({ "code": 10000, "message": "Authentication error" })
        );
    }
    assert_eq!(get(&api, &acct("/access/apps")).0, 200);
    assert_eq!(get(&api, "/client/v4/user/tokens/verify").0, 200);
    // Healthy: the token has the permission.
    assert_eq!(get(&self::api(&[]), &acct("/cfd_tunnel")).0, 200);
}

#[test]
fn cf_token_that_cannot_list_accounts_is_refused_the_list_in_every_face() {
    for variant in Variant::ALL {
        let api = api(&[Fault::CfTokenCannotListAccounts]).with_variant(variant);
        let (status, body) = get(&api, "/client/v4/accounts");
        let wanted = match variant {
            Variant::Classic => (400, 1001),
            Variant::Rebranded => (403, 10000),
            Variant::Terse => (403, 9109),
        };
        assert_eq!(
            (status, body["errors"][0]["code"].as_i64().unwrap()),
            (wanted.0, wanted.1 as i64),
            "{variant}: {body}"
        );
        assert_eq!(body["success"], false);
        // Everything else reads as in the healthy lab, with the account's id.
        assert_eq!(get(&api, &acct("/access/apps")).0, 200, "{variant}");
        assert_eq!(
            get(
                &api,
                &format!("/client/v4/zones/{}/bot_management", cfapi::ZONE_ID)
            )
            .0,
            200
        );
        // Account-owned (the classic face): only the account's verify endpoint knows it.
        let user_verify = get(&api, "/client/v4/user/tokens/verify").0;
        let account_verify = get(&api, &acct("/tokens/verify")).0;
        if variant == Variant::Classic {
            assert_eq!((user_verify, account_verify), (401, 200));
        } else {
            assert_eq!((user_verify, account_verify), (200, 401));
        }
    }
    // Healthy: the token lists its one account.
    assert_eq!(get(&api(&[]), "/client/v4/accounts").0, 200);
}

#[test]
fn cf_bot_management_route_is_unavailable_in_every_face() {
    let path = format!("/client/v4/zones/{}/bot_management", cfapi::ZONE_ID);
    for variant in Variant::ALL {
        let api = api(&[Fault::CfBotManagementUnavailable]).with_variant(variant);
        let (status, body) = get(&api, &path);
        let codes: Vec<i64> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_i64().unwrap())
            .collect();
        match variant {
            Variant::Classic => assert_eq!((status, codes), (404, vec![7003, 7000]), "{body}"),
            Variant::Rebranded => assert_eq!((status, codes), (404, vec![7000]), "{body}"),
            Variant::Terse => assert_eq!((status, codes), (403, vec![10010]), "{body}"),
        }
        assert_eq!(body["success"], false);
        // The zone and its records read as in the healthy lab.
        assert_eq!(
            get(
                &api,
                &format!("/client/v4/zones/{}/dns_records", cfapi::ZONE_ID)
            )
            .0,
            200
        );
        assert_eq!(get(&api, "/client/v4/accounts").0, 200);
    }
}

#[test]
fn cf_rate_limits() {
    let api = api(&[Fault::CfApiRateLimited]);
    let bearer = format!("Bearer {TOKEN}");
    for path in [acct("/access/apps"), acct("/access/identity_providers")] {
        let (status, headers, body) = call(&api, Method::GET, &path, Some(&bearer));
        assert_eq!(status, 429);
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(
            body,
            json!({ "success": false, "errors": [{ "code": 10429, "message": "Too many requests" }] })
        );
        // The query is not part of the path: the next request is served.
        let (status, _, _) = call(&api, Method::GET, &format!("{path}?page=2"), Some(&bearer));
        assert_eq!(status, 200);
    }
    let api = self::api(&[Fault::CfApiRateLimitExhausted]);
    for _ in 0..3 {
        let (status, headers, body) = call(&api, Method::GET, &acct("/access/apps"), Some(&bearer));
        assert_eq!(status, 429);
        assert_eq!(headers["retry-after"], "300");
        assert_eq!(body["errors"][0]["code"], 10429);
    }
}

#[test]
fn cf_objects_of_the_healthy_lab_agree_with_the_edge() {
    let api = api(&[]);
    let org = result(&api, &acct("/access/organizations"));
    assert_eq!(org["auth_domain"], TEAM_HOST);
    assert_eq!(org["name"], "Example Corp");
    assert_eq!(org["auto_redirect_to_identity"], false);
    assert_eq!(org["session_duration"], "24h");

    let idps = all(&api, &acct("/access/identity_providers"));
    let names: Vec<_> = idps
        .iter()
        .map(|i| i["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        ["One-time PIN", "GitHub", "Pocket ID (old)", "Pocket ID"]
    );
    let idp = pocket_id_idp(&api);
    assert_eq!(idp["id"], access::IDP_ID);
    assert_eq!(idp["type"], "oidc");
    let config = &idp["config"];
    assert_eq!(config["client_id"], CLIENT_ID);
    assert_eq!(config["auth_url"], "https://id.example.com/authorize");
    assert_eq!(config["token_url"], "https://id.example.com/api/oidc/token");
    assert_eq!(
        config["certs_url"],
        "https://id.example.com/.well-known/jwks.json"
    );
    assert_eq!(config["pkce_enabled"], true);
    assert_eq!(strings(&config["scopes"]), ["openid", "email", "profile"]);
    assert_eq!(config["claims"], json!([]));
    assert_eq!(config["email_claim_name"], "email");
    assert!(config.get("client_secret").is_none());
    let one = result(
        &api,
        &acct(&format!("/access/identity_providers/{}", access::IDP_ID)),
    );
    assert_eq!(one, idp);
    assert_eq!(named(&idps, "GitHub")["id"], access::GITHUB_IDP_ID);

    let apps = all(&api, &acct("/access/apps"));
    let names: Vec<_> = apps
        .iter()
        .map(|a| a["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "wiki",
            "everything",
            "service admin",
            "service",
            "pocket id"
        ]
    );
    let app = service_app(&api);
    assert_eq!(app["id"], cfapi::SERVICE_APP_ID);
    assert_eq!(app["aud"], AUD);
    assert_eq!(app["domain"], SERVICE_HOST);
    assert_eq!(
        app["destinations"],
        json!([{ "type": "public", "uri": SERVICE_HOST }])
    );
    assert_eq!(strings(&app["allowed_idps"]), [access::IDP_ID]);
    assert_eq!(app["auto_redirect_to_identity"], true);
    let policies = service_policies(&api);
    assert_eq!(app["policies"], json!(policies));
    let names: Vec<_> = policies.iter().map(|p| p["name"].clone()).collect();
    assert_eq!(
        names,
        [
            json!("block contractors"),
            json!("people"),
            json!("monitor")
        ]
    );
    assert_eq!(policies[0]["decision"], "deny");
    assert_eq!(policies[0]["reusable"], true);
    assert_eq!(
        policies[1]["include"],
        json!([{ "group": { "id": cfapi::STAFF_GROUP_ID } }])
    );
    assert_eq!(policies[2]["decision"], "non_identity");
    for (i, p) in policies.iter().enumerate() {
        assert_eq!(p["precedence"], i + 1);
        assert_eq!(p["approval_required"], false);
        assert_eq!(p["session_duration"], "24h");
    }
    let reusable = all(&api, &acct("/access/policies"));
    assert_eq!(reusable.len(), 1);
    assert_eq!(reusable[0]["name"], "block contractors");
    assert_eq!(reusable[0]["app_count"], 1);
    let groups = all(&api, &acct("/access/groups"));
    assert_eq!(groups[0]["name"], "Staff");
    assert_eq!(
        groups[0]["include"],
        json!([{ "email_domain": { "domain": "example.com" } }])
    );
    assert_eq!(groups[1]["name"], "Contractors");

    let tunnels = all(&api, &acct("/cfd_tunnel?is_deleted=false"));
    let names: Vec<_> = tunnels.iter().map(|t| t["name"].clone()).collect();
    assert_eq!(
        names,
        [json!("old-homelab"), json!("homelab"), json!("pocket-id")]
    );
    assert_eq!(tunnels[0]["status"], "down");
    let homelab = tunnel(&api, "homelab");
    assert_eq!(homelab["status"], "healthy");
    assert_eq!(homelab["config_src"], "cloudflare");
    let connections = result(
        &api,
        &acct(&format!(
            "/cfd_tunnel/{}/connections",
            cfapi::HOMELAB_TUNNEL_ID
        )),
    );
    assert_eq!(connections.as_array().map(Vec::len), Some(2));
    assert_eq!(connections[0]["conns"][0]["is_pending_reconnect"], false);
    assert!(connections[0]["conns"][0]["colo_name"].is_string());
    let config = result(
        &api,
        &acct(&format!(
            "/cfd_tunnel/{}/configurations",
            cfapi::HOMELAB_TUNNEL_ID
        )),
    );
    assert_eq!(
        config["config"]["ingress"],
        json!([
            { "hostname": SERVICE_HOST, "service": "http://app:8080", "originRequest": {} },
            { "service": "http_status:404" },
        ])
    );
    let config = result(
        &api,
        &acct(&format!(
            "/cfd_tunnel/{}/configurations",
            cfapi::POCKET_ID_TUNNEL_ID
        )),
    );
    assert_eq!(config["config"]["ingress"][0]["hostname"], IDP_HOST);
    assert_eq!(
        config["config"]["ingress"][0]["service"],
        "http://pocket-id:1411"
    );
    let (status, body) = get(&api, &acct("/cfd_tunnel/nope"));
    assert_eq!(
        (status, body["errors"][0]["code"].clone()),
        (404, json!(7003))
    );

    let zones = all(&api, "/client/v4/zones?name=example.com");
    assert_eq!(zones.len(), 1);
    assert_eq!(zones[0]["id"], cfapi::ZONE_ID);
    assert_eq!(zones[0]["account"]["id"], ACCOUNT_ID);
    assert_eq!(zones[0]["status"], "active");
    assert!(all(&api, "/client/v4/zones?name=example.org").is_empty());
    let service = dns(&api, SERVICE_HOST);
    assert_eq!(service["type"], "CNAME");
    assert_eq!(
        service["content"],
        format!("{}.cfargotunnel.com", cfapi::HOMELAB_TUNNEL_ID)
    );
    assert_eq!(service["proxied"], true);
    assert_eq!(
        dns(&api, IDP_HOST)["content"],
        format!("{}.cfargotunnel.com", cfapi::POCKET_ID_TUNNEL_ID)
    );
    assert_eq!(dns(&api, "wiki.example.com")["type"], "A");
    let every = all(
        &api,
        &format!("/client/v4/zones/{}/dns_records", cfapi::ZONE_ID),
    );
    assert_eq!(every.len(), 3);
    let (status, body) = get(
        &api,
        "/client/v4/zones/0123456789abcdef0123456789abcdef/dns_records",
    );
    assert_eq!(
        (status, body["errors"][0]["code"].clone()),
        (404, json!(7003))
    );
    let bots = result(
        &api,
        &format!("/client/v4/zones/{}/bot_management", cfapi::ZONE_ID),
    );
    assert_eq!(bots["fight_mode"], false);
}

/// Every fault's face in the Cloudflare API.
#[test]
fn cf_objects_follow_the_faults() {
    // site-public: no application covers the site, the wildcard is gone too.
    let apps = all(&api(&[Fault::SitePublic]), &acct("/access/apps"));
    assert!(
        apps.iter()
            .all(|a| a["domain"] != SERVICE_HOST && a["domain"] != "*.example.com")
    );
    assert!(!apps.is_empty());
    let org = result(&api(&[Fault::WrongTeam]), &acct("/access/organizations"));
    assert_eq!(org["auth_domain"], "other-team.cloudflareaccess.com");
    assert_eq!(org["name"], "Other team");
    for fault in [
        Fault::Challenge,
        Fault::TokenChallenge,
        Fault::TokenBlockedForAccess,
        Fault::JwksBlockedForAccess,
    ] {
        let bots = result(
            &api(&[fault]),
            &format!("/client/v4/zones/{}/bot_management", cfapi::ZONE_ID),
        );
        assert_eq!(bots["fight_mode"], true, "{fault}");
    }
    for fault in [Fault::NoInstantAuth, Fault::IdpChooserViaTeam] {
        let app = service_app(&api(&[fault]));
        assert_eq!(app["auto_redirect_to_identity"], false);
        assert_eq!(
            strings(&app["allowed_idps"]),
            [access::IDP_ID, access::GITHUB_IDP_ID]
        );
    }
    let idp = |fault| pocket_id_idp(&api(&[fault]))["config"].clone();
    assert_eq!(
        idp(Fault::WrongAuthUrl)["auth_url"],
        "https://id.example.com/oauth2/authorize"
    );
    assert_eq!(idp(Fault::NoPkce)["pkce_enabled"], false);
    assert_eq!(
        idp(Fault::UnknownClient)["client_id"],
        access::UNKNOWN_CLIENT_ID
    );
    assert_eq!(
        idp(Fault::AccessJwksUnreachable)["certs_url"],
        "https://id.example.com/.well-known/jwks.jsonx"
    );
    assert_eq!(
        idp(Fault::TokenUrlWrong)["token_url"],
        "https://id.example.com/api/oidc/tokens"
    );
    assert_eq!(
        idp(Fault::AccessJwksUnreachable)["token_url"],
        "https://id.example.com/api/oidc/token"
    );
    assert_eq!(
        strings(&idp(Fault::ScopesWithoutEmail)["scopes"]),
        ["openid", "profile"]
    );
    assert_eq!(
        strings(&idp(Fault::ScopeUnsupported)["scopes"]),
        ["openid", "email", "profile", "offline"]
    );
    assert_eq!(idp(Fault::EmailClaimName)["email_claim_name"], "mail");
    assert_eq!(idp(Fault::PublicClientNoPkce)["pkce_enabled"], false);

    let people = |fault| named(&service_policies(&api(&[fault])), "people").clone();
    assert_eq!(
        people(Fault::AccessPolicyDeny)["include"],
        json!([{ "email": { "email": "admin@example.com" } }])
    );
    assert_eq!(
        people(Fault::GroupsClaimMissing)["include"],
        json!([{ "oidc": { "claim_name": "groups", "claim_value": "probers", "identity_provider_id": access::IDP_ID } }])
    );
    assert!(!strings(&idp(Fault::GroupsClaimMissing)["scopes"]).contains(&"groups"));
    assert_eq!(
        people(Fault::PolicyLoginMethod)["require"],
        json!([{ "login_method": { "id": cfapi::OTP_IDP_ID } }])
    );
    assert_eq!(people(Fault::ApprovalRequired)["approval_required"], true);
    let only = service_policies(&api(&[Fault::ServiceAuthOnly]));
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["decision"], "non_identity");
    let no_service_auth = service_policies(&api(&[Fault::NoServiceAuth]));
    assert!(
        no_service_auth
            .iter()
            .all(|p| p["decision"] != "non_identity")
    );
    let bypass = service_policies(&api(&[Fault::BypassEveryone]));
    assert_eq!(bypass[0]["name"], "public");
    assert_eq!(bypass[0]["decision"], "bypass");
    assert_eq!(bypass[0]["precedence"], 0);
    assert_eq!(bypass[0]["include"], json!([{ "everyone": {} }]));

    let app = service_app(&api(&[Fault::AppHidesIdp]));
    assert_eq!(strings(&app["allowed_idps"]), [access::GITHUB_IDP_ID]);
    let ambiguous = api(&[Fault::InstantAuthAmbiguous]);
    let app = service_app(&ambiguous);
    assert_eq!(app["auto_redirect_to_identity"], true);
    assert_eq!(app["allowed_idps"], json!([]));
    assert_eq!(
        all(&ambiguous, &acct("/access/identity_providers")).len(),
        4
    );
    let apps = all(&api(&[Fault::IdpBehindAccess]), &acct("/access/apps"));
    let idp_app = named(&apps, "pocket id");
    assert_eq!(idp_app["domain"], IDP_HOST);
    assert_eq!(idp_app["policies"][0]["decision"], "allow");
    // Healthy: Pocket ID's application bypasses Access for everyone.
    let apps = all(&api(&[]), &acct("/access/apps"));
    assert_eq!(
        named(&apps, "pocket id")["policies"][0]["decision"],
        "bypass"
    );

    let down = api(&[Fault::TunnelDown]);
    let homelab = tunnel(&down, "homelab");
    assert_eq!(homelab["status"], "down");
    assert!(homelab["conns_inactive_at"].is_string());
    let connections =
        |api: &CfApi, id: &str| result(api, &acct(&format!("/cfd_tunnel/{id}/connections")));
    assert_eq!(connections(&down, cfapi::HOMELAB_TUNNEL_ID), json!([]));
    let idp_down = api(&[Fault::IdpBehindTunnelDown]);
    assert_eq!(tunnel(&idp_down, "pocket-id")["status"], "down");
    assert_eq!(
        connections(&idp_down, cfapi::POCKET_ID_TUNNEL_ID),
        json!([])
    );
    assert_eq!(tunnel(&idp_down, "homelab")["status"], "healthy");
    let degraded = api(&[Fault::TunnelDegraded]);
    assert_eq!(tunnel(&degraded, "homelab")["status"], "degraded");
    let connectors = connections(&degraded, cfapi::HOMELAB_TUNNEL_ID);
    let pending = |c: &Value| {
        c["conns"]
            .as_array()
            .expect("conns")
            .iter()
            .all(|conn| conn["is_pending_reconnect"] == true)
    };
    assert!(!pending(&connectors[0]));
    assert!(pending(&connectors[1]));

    let ingress = |fault| {
        result(
            &api(&[fault]),
            &acct(&format!(
                "/cfd_tunnel/{}/configurations",
                cfapi::HOMELAB_TUNNEL_ID
            )),
        )["config"]["ingress"]
            .clone()
    };
    assert_eq!(
        ingress(Fault::IngressMissing),
        json!([{ "service": "http_status:404" }])
    );
    // The application's own 404: the tunnel still routes the site.
    assert_eq!(ingress(Fault::Origin404)[0]["hostname"], SERVICE_HOST);
    let access_check = &ingress(Fault::OriginAccessAud)[0]["originRequest"]["access"];
    assert_eq!(access_check["required"], true);
    assert_eq!(access_check["teamName"], TEAM);
    let tags = strings(&access_check["audTag"]);
    assert_eq!(tags.len(), 1);
    assert!(is_hex(tags[0], 64) && tags[0] != AUD);
    assert_eq!(
        dns(&api(&[Fault::DnsNotTunnel]), SERVICE_HOST)["content"],
        format!("{}.cfargotunnel.com", cfapi::OLD_HOMELAB_TUNNEL_ID)
    );
}

/// `GET` of Pocket ID's admin API with the static key: status and JSON.
async fn admin_get(p: &Probe, path: &str) -> (StatusCode, Value) {
    let r = p.admin(reqwest::Method::GET, path, None).await;
    let status = r.status();
    (status, r.json().await.expect("JSON"))
}

#[tokio::test]
async fn over_https_the_api_host_is_served_and_recorded() {
    let p = start(&[]).await;
    let mut live = p.lab.subscribe_api_requests();
    assert_eq!(p.lab.cf_api_token().len(), 40);
    assert!(
        p.lab
            .cf_api_token()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let debug = format!("{:?}", p.lab);
    assert!(!debug.contains(p.lab.cf_api_token()), "{debug}");
    let args = p.lab.doctor_route_args();
    assert_eq!(args.len(), 8);
    assert_eq!(args[..6], p.lab.route_args()[..]);
    assert!(args[7].starts_with(&format!("{CF_API_HOST}:443:")));
    assert_eq!(CF_API_URL, format!("https://{CF_API_HOST}/client/v4"));
    assert!(is_hex(ACCOUNT_ID, 32));

    let url = p.url(CF_API_HOST, "/client/v4/user/tokens/verify");
    let r = p
        .client
        .get(&url)
        .bearer_auth(p.lab.cf_api_token())
        .send()
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "server"), "cloudflare");
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["result"]["status"], "active");
    let posted = p.client.post(&url).send().await.expect("a response");
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);

    // The service token the monitor policy names is the lab's.
    let path = format!(
        "/client/v4/accounts/{ACCOUNT_ID}/access/apps/{}/policies?page=2",
        cfapi::SERVICE_APP_ID
    );
    let policies: Value = p
        .client
        .get(p.url(CF_API_HOST, &path))
        .bearer_auth(p.lab.cf_api_token())
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    let monitor = &policies["result"][0];
    assert_eq!(monitor["name"], "monitor");
    let token_id = monitor["include"][0]["service_token"]["token_id"]
        .as_str()
        .expect("a token id")
        .to_string();
    assert!(uuid::Uuid::parse_str(&token_id).is_ok());
    let tokens: Value = p
        .client
        .get(p.url(
            CF_API_HOST,
            &format!("/client/v4/accounts/{ACCOUNT_ID}/access/service_tokens"),
        ))
        .bearer_auth(p.lab.cf_api_token())
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    assert_eq!(tokens["result"][0]["id"], token_id.as_str());
    assert_eq!(tokens["result"][0]["client_id"], p.lab.service_token().0);

    // Pocket ID: keyed API requests are recorded, others are not.
    let _ = p.get(&p.url(IDP_HOST, "/api/users")).await;
    let _ = p
        .get(&p.url(IDP_HOST, "/.well-known/openid-configuration"))
        .await;
    let (status, _) = admin_get(&p, "/api/oidc/clients").await;
    assert_eq!(status, StatusCode::OK);

    let recorded = p.lab.api_requests();
    let lines: Vec<_> = recorded
        .iter()
        .map(|r| format!("{} {} {} {}", r.method, r.host, r.path, r.status))
        .collect();
    assert_eq!(
        lines,
        [
            format!("GET {CF_API_HOST} /client/v4/user/tokens/verify 200"),
            format!("POST {CF_API_HOST} /client/v4/user/tokens/verify 405"),
            format!(
                "GET {CF_API_HOST} /client/v4/accounts/{ACCOUNT_ID}/access/apps/{}/policies?page=2 200",
                cfapi::SERVICE_APP_ID
            ),
            format!("GET {CF_API_HOST} /client/v4/accounts/{ACCOUNT_ID}/access/service_tokens 200"),
            format!("GET {IDP_HOST} /api/oidc/clients 200"),
        ]
    );
    for expected in &recorded {
        let got = live.recv().await.expect("streamed");
        assert_eq!(&got, expected);
    }
    let debug = format!("{recorded:?}");
    assert!(!debug.contains(p.lab.cf_api_token()));
    assert!(!debug.contains(p.lab.static_api_key()));
}

#[tokio::test]
async fn pocket_id_lists_clients_and_groups_in_pages() {
    let p = start(&[]).await;
    let (status, page1) = admin_get(&p, "/api/oidc/clients?pagination[limit]=100").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page1["pagination"],
        json!({ "totalPages": 2, "totalItems": 3, "currentPage": 1, "itemsPerPage": 2 })
    );
    assert_eq!(page1["data"][0]["name"], "Grafana");
    assert_eq!(page1["data"][1]["name"], "Old Cloudflare");
    assert_eq!(
        strings(&page1["data"][1]["callbackURLs"]),
        ["https://old-team.cloudflareaccess.com/cdn-cgi/access/callback"]
    );
    assert_eq!(page1["data"][0]["allowedUserGroupsCount"], 1);
    // A page past the end is the last page.
    let (_, past) = admin_get(&p, "/api/oidc/clients?pagination[page]=9").await;
    assert_eq!(past["pagination"]["currentPage"], 2);
    assert_eq!(past["data"][0]["id"], CLIENT_ID);
    assert_eq!(past["data"].as_array().map(Vec::len), Some(1));
    let (_, searched) = admin_get(&p, "/api/oidc/clients?search=CLOUDFLARE").await;
    assert_eq!(searched["pagination"]["totalItems"], 2);
    let (_, none) = admin_get(&p, "/api/oidc/clients?search=nothing").await;
    assert_eq!(
        none["pagination"],
        json!({ "totalPages": 1, "totalItems": 0, "currentPage": 1, "itemsPerPage": 2 })
    );

    let (status, client) = admin_get(&p, &format!("/api/oidc/clients/{CLIENT_ID}")).await;
    assert_eq!(status, StatusCode::OK);
    let secret = &client["credentials"]["secrets"][0];
    assert_eq!(secret["prefix"], &p.lab.client_secret()[..4]);
    assert_eq!(secret["isActive"], true);
    assert_eq!(secret["expiresAt"], Value::Null);
    assert!(uuid::Uuid::parse_str(secret["id"].as_str().expect("an id")).is_ok());
    let mut shown = client.clone();
    shown["credentials"] = json!(null);
    assert_eq!(
        shown,
        json!({
            "id": CLIENT_ID, "name": "Cloudflare Access",
            "description": "Cloudflare Zero Trust in front of service.example.com",
            "hasLogo": false, "hasDarkLogo": false, "launchURL": null,
            "requiresReauthentication": false, "clientType": "standard",
            "callbackURLs": [CALLBACK_URL], "logoutCallbackURLs": [],
            "isPublic": false, "pkceEnabled": true,
            "requiresPushedAuthorizationRequests": false, "skipConsent": false,
            "credentials": null, "isGroupRestricted": false,
            "accessTokenDurationMinutes": 60, "refreshTokenDurationMinutes": 43200,
            "allowedUserGroups": [],
        })
    );
    let r = p
        .admin(
            reqwest::Method::GET,
            "/api/oidc/clients/no-such-client",
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["error"], "OIDC client not found");
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["details"], json!({ "resource": "OIDC client" }));
    let no_key = p.get(&p.url(IDP_HOST, "/api/oidc/clients")).await;
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    let deleted = p
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/oidc/clients/{CLIENT_ID}"),
            None,
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NOT_FOUND);

    // Users: the probe user is in `probers`; the search pages like the rest.
    let id = p.create_user("probe", PROBE_EMAIL).await;
    let _ = p.create_user("other", "other@example.com").await;
    let (_, found) = admin_get(&p, &format!("/api/users?search={PROBE_EMAIL}")).await;
    assert_eq!(found["data"][0]["id"], id.as_str());
    assert_eq!(found["data"][0]["userGroups"][0]["name"], "probers");
    assert_eq!(found["data"][0]["userGroups"][0]["friendlyName"], "Probers");
    // The static API user, the probe and the other user: 3 in pages of 2.
    let (_, everyone) = admin_get(&p, "/api/users?pagination[limit]=50&pagination[page]=5").await;
    assert_eq!(
        everyone["pagination"],
        json!({ "totalPages": 2, "totalItems": 3, "currentPage": 2, "itemsPerPage": 2 })
    );
    let (status, creds) = admin_get(&p, &format!("/api/users/{id}/webauthn-credentials")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(creds, json!([]));
    let (_, mine) = admin_get(&p, &format!("/api/users/{id}/groups")).await;
    assert_eq!(mine[0]["name"], "probers");

    let (_, groups) = admin_get(&p, "/api/user-groups").await;
    assert_eq!(groups["pagination"]["totalItems"], 2);
    assert_eq!(groups["data"][0]["name"], "probers");
    assert_eq!(groups["data"][0]["userCount"], 1);
    assert_eq!(groups["data"][1]["name"], "admins");
    assert_eq!(groups["data"][1]["userCount"], 0);
    let probers = groups["data"][0]["id"].as_str().expect("an id").to_string();
    let (_, group) = admin_get(&p, &format!("/api/user-groups/{probers}")).await;
    assert_eq!(group["users"][0]["id"], id.as_str());
    assert_eq!(group["allowedOidcClients"], json!([]));
    let admins = groups["data"][1]["id"].as_str().expect("an id").to_string();
    let (_, group) = admin_get(&p, &format!("/api/user-groups/{admins}")).await;
    assert_eq!(group["allowedOidcClients"][0]["name"], "Grafana");
    let (status, missing) = admin_get(&p, "/api/user-groups/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"], "User group not found");
}

/// Every Pocket ID fault's face in the admin API, and the edge where it breaks.
#[tokio::test]
async fn pocket_id_clients_follow_the_faults() {
    let client = |faults: &'static [Fault]| async move {
        let p = start(faults).await;
        let (status, client) = admin_get(&p, &format!("/api/oidc/clients/{CLIENT_ID}")).await;
        assert_eq!(status, StatusCode::OK);
        (p, client)
    };
    let (_, c) = client(&[Fault::CallbackNotRegistered]).await;
    assert_eq!(strings(&c["callbackURLs"]), [format!("{CALLBACK_URL}/")]);
    let (_, c) = client(&[Fault::PkceNotEnforced]).await;
    assert_eq!(c["pkceEnabled"], false);
    let (_, c) = client(&[Fault::ReauthRequired]).await;
    assert_eq!(c["requiresReauthentication"], true);
    let (_, c) = client(&[Fault::PublicClientNoPkce]).await;
    assert_eq!(c["isPublic"], true);
    assert_eq!(c["credentials"]["secrets"], json!([]));
    assert_eq!(c["pkceEnabled"], true);
    let (_, c) = client(&[Fault::SecretExpiring]).await;
    let secret = &c["credentials"]["secrets"][0];
    assert_eq!(secret["isActive"], true);
    assert!(secret["expiresAt"].as_str().expect("a date") > wire::rfc3339_now().as_str());
    let (_, c) = client(&[Fault::UserNotAllowed]).await;
    assert_eq!(c["isGroupRestricted"], true);
    assert_eq!(c["allowedUserGroups"][0]["name"], "admins");

    // The callback faults: Pocket ID's authorize refuses Access's callback.
    for (fault, listed) in [
        (Fault::ClientNoCallback, vec![]),
        (
            Fault::CallbackOtherTeam,
            vec!["https://old-team.cloudflareaccess.com/cdn-cgi/access/callback"],
        ),
    ] {
        let (p, c) = client(if fault == Fault::ClientNoCallback {
            &[Fault::ClientNoCallback]
        } else {
            &[Fault::CallbackOtherTeam]
        })
        .await;
        assert_eq!(strings(&c["callbackURLs"]), listed);
        let authorize = p.authorize_url().await;
        let r = p.get(&p.route(authorize.as_str())).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        assert!(
            location(&r).starts_with("/interaction/error?error=The+redirect_uri+"),
            "{fault}: {}",
            location(&r)
        );
    }
    // par-required and idp-database-readonly: Pocket ID's catch-all goes back to Access,
    // naming neither (fosite's `ErrorToRFC6749Error`), with Access's state.
    let (_, c) = client(&[Fault::ParRequired]).await;
    assert_eq!(c["requiresPushedAuthorizationRequests"], true);
    let (_, c) = client(&[Fault::IdpDatabaseReadonly]).await;
    assert_eq!(c["requiresPushedAuthorizationRequests"], false);
    for fault in [Fault::ParRequired, Fault::IdpDatabaseReadonly] {
        let p = start(&[fault]).await;
        let authorize = p.authorize_url().await;
        let state = query(&authorize)["state"].clone();
        let r = p.get(&p.route(authorize.as_str())).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{fault}");
        let to = Url::parse(location(&r)).expect("an absolute URL");
        assert!(
            location(&r).starts_with(&format!(
                "{CALLBACK_URL}?error=error&error_description=The+error+is+unrecognizable&state="
            )),
            "{fault}: {to}"
        );
        assert_eq!(query(&to)["state"], state, "{fault}");
        assert_eq!(query(&to).len(), 3, "{fault}: {to}");
    }

    // secret-expired: Access's code exchange fails.
    let (p, c) = client(&[Fault::SecretExpired]).await;
    let secret = &c["credentials"]["secrets"][0];
    assert_eq!(secret["isActive"], false);
    assert!(secret["expiresAt"].as_str().expect("a date") < wire::rfc3339_now().as_str());
    let mut enrolled = p.enrol().await;
    let (_, r) = p.login_to_callback(&mut enrolled).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.expect("a body");
    assert!(page.contains("Failed to exchange code for token"), "{page}");
}

#[tokio::test]
async fn bypass_everyone_opens_the_site_like_site_public() {
    let p = start(&[Fault::BypassEveryone]).await;
    let r = p.get(&p.url(SERVICE_HOST, "/")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .expect("a body")
            .contains("Welcome to service.example.com")
    );
}

#[tokio::test]
async fn the_probe_users_passkey_is_listed() {
    // After enrolment the doctor finds the probe user's passkey.
    let p = start(&[]).await;
    let enrolled = p.enrol().await;
    let (_, found) = admin_get(&p, &format!("/api/users?search={PROBE_EMAIL}")).await;
    let id = found["data"][0]["id"].as_str().expect("an id").to_string();
    let (_, creds) = admin_get(&p, &format!("/api/users/{id}/webauthn-credentials")).await;
    assert_eq!(creds.as_array().map(Vec::len), Some(1));
    assert!(creds[0]["credentialID"].is_string());
    drop(enrolled);
}
