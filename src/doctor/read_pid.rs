//! Reading Pocket ID's configuration through its admin API: discovery, the OIDC clients,
//! the client Access uses, the monitoring user and its passkeys — GET only.

use super::model::{PidClient, PidUser};
use super::{LABEL, Pid, access_client, key_proven};
use crate::config::Config;
use crate::http::Http;
use crate::pocketid::api::Api;
use crate::pocketid::oidc::Discovery;
use crate::redact::Secret;

/// Discovery needs no key: it is read even without one.
pub(super) async fn read_pocket_id_base(config: &Config, http: &Http) -> Result<Discovery, String> {
    let api = Api::new(http, &config.idp, LABEL);
    let url = api.url(crate::pocketid::oidc::paths::DISCOVERY);
    api.call_json_url::<Discovery>(reqwest::Method::GET, url, None, false)
        .await
        .map_err(|e| e.to_string())
}

pub(super) async fn read_pocket_id(
    config: &Config,
    http: &Http,
    key: &Secret,
    discovery: Result<Discovery, String>,
    client_id: Option<&str>,
    callback: Option<&str>,
    email: Option<&str>,
) -> Pid {
    let api = Api::new(http, &config.idp, LABEL).with_api_key(key.clone());
    let clients = api
        .admin_list::<serde_json::Value>(&["api", "oidc", "clients"], &[])
        .await;
    // A list too long to read whole still proves the key: the rest is read.
    if !key_proven(&clients) {
        return Pid {
            discovery,
            clients,
            client: None,
            user: None,
            passkeys: None,
        };
    }
    // Without a client id, the client whose callbacks are Access's.
    let client_id = client_id
        .map(str::to_string)
        .or_else(|| access_client(clients.as_ref().ok()?, callback));
    let client = async {
        match &client_id {
            Some(id) => Some(
                api.admin_get::<PidClient>(&["api", "oidc", "clients", id], &[])
                    .await,
            ),
            None => None,
        }
    };
    let user = async {
        let email = email?;
        let found = api
            .admin_list::<PidUser>(&["api", "users"], &[("search", email.to_string())])
            .await;
        let user = found.map(|users| {
            users.into_iter().find(|u| {
                u.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
        });
        let passkeys = match &user {
            Ok(Some(u)) => Some(
                api.admin_get::<Vec<serde_json::Value>>(
                    &["api", "users", &u.id, "webauthn-credentials"],
                    &[],
                )
                .await,
            ),
            _ => None,
        };
        Some((user, passkeys))
    };
    let (client, user) = futures::join!(client, user);
    let (user, passkeys) = match user {
        Some((u, p)) => (Some(u), p),
        None => (None, None),
    };
    Pid {
        discovery,
        clients,
        client,
        user,
        passkeys,
    }
}
