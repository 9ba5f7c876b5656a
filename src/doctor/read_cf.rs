//! Reading Cloudflare's configuration: the account, the token, the organization, login
//! methods, applications and their policies, Access groups, tunnels, DNS and Bot Fight
//! Mode — GET only, through [`CfApi`].

use super::cfapi::{CfApi, CfError, perm};
use super::model::{
    Account, App, BotManagement, Connector, DnsRecord, Group, IdentityProvider, Organization,
    Policy, TokenStatus, Tunnel, TunnelConfiguration, Zone,
};
use super::{Cf, DnsFacts, LABEL, TunnelFacts, rules, text};
use crate::config::{CfSettings, Config};
use crate::http::Http;
use url::Url;

pub(super) async fn read_cloudflare(config: &Config, http: &Http, settings: &CfSettings) -> Cf {
    let api = CfApi::new(http, &settings.url, &settings.token, LABEL);
    let token = api
        .get::<TokenStatus>(
            &["user", "tokens", "verify"],
            &[],
            "the token's status",
            perm::NONE,
        )
        .await;
    let account = match (&settings.account, &token) {
        (_, Err(e)) if !matches!(e, CfError::BadToken { .. } | CfError::Answer { .. }) => {
            Err(e.clone())
        }
        (Some(id), _) => Ok((id.clone(), String::new())),
        (None, _) => find_account(&api).await,
    };
    // An account-owned token is refused by /user/tokens/verify: ask the account's.
    let token = match (&token, &account) {
        (Err(CfError::BadToken { .. }), Ok((id, _))) => {
            api.get::<TokenStatus>(
                &["accounts", id, "tokens", "verify"],
                &[],
                "the token's status",
                perm::NONE,
            )
            .await
        }
        _ => token,
    };
    let acct = match (&account, &token) {
        (Err(e), _) => return Cf::unread(account.clone(), token, e.clone()),
        // A refused token reads nothing else: say it once.
        (_, Err(e)) => return Cf::unread(account.clone(), token.clone(), e.clone()),
        (Ok((acct, _)), Ok(_)) => acct.clone(),
    };
    let a = acct.as_str();
    let site_host = config
        .service
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let idp_host = config
        .idp
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let not_deleted = [("is_deleted", "false".to_string())];
    let org_path = ["accounts", a, "access", "organizations"];
    let idps_path = ["accounts", a, "access", "identity_providers"];
    let apps_path = ["accounts", a, "access", "apps"];
    let groups_path = ["accounts", a, "access", "groups"];
    let (org, idps, apps, groups, tunnels, site_dns, idp_dns) = futures::join!(
        api.get::<Organization>(&org_path, &[], "the Zero Trust organization", perm::ORG),
        api.list::<IdentityProvider>(&idps_path, &[], "the login methods", perm::ORG),
        api.list::<App>(&apps_path, &[], "the Access applications", perm::APPS),
        api.list::<Group>(&groups_path, &[], "the Access groups", perm::ORG),
        read_tunnels(&api, a, &not_deleted),
        read_dns(&api, a, &site_host),
        read_dns(&api, a, &idp_host),
    );
    // An account id the API does not know fails every account read alike: say it once,
    // as config.token's finding.
    let wrong_account = [
        org.as_ref().err(),
        idps.as_ref().err(),
        apps.as_ref().err(),
        groups.as_ref().err(),
        tunnels.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    .find(|e| matches!(e, CfError::WrongAccount { .. }))
    .cloned();
    if let Some(e) = wrong_account {
        return Cf::unread(Err(e.clone()), token, e);
    }
    let path = config.service.path().to_string();
    let policies = match &apps {
        Ok(apps) => match rules::covering_app(apps, &site_host, &path) {
            Some((app, _)) => Some(
                api.list::<Policy>(
                    &["accounts", a, "access", "apps", &app.id, "policies"],
                    &[],
                    "the application's policies",
                    perm::APPS,
                )
                .await,
            ),
            None => None,
        },
        Err(_) => None,
    };
    let bots = match &idp_dns {
        Ok(Some((zone, _))) => Some(
            api.get::<BotManagement>(
                &["zones", &zone.id, "bot_management"],
                &[],
                "Bot Fight Mode",
                perm::BOTS,
            )
            .await,
        ),
        _ => None,
    };
    Cf {
        account,
        token,
        org,
        idps,
        apps,
        groups,
        policies,
        tunnels,
        dns: vec![(site_host, site_dns), (idp_host, idp_dns)],
        bots,
    }
}

/// Pocket ID's public URL as Cloudflare knows it: the Auth URL (without `/authorize`)
/// of the one OpenID Connect login method the site's application offers. `None` when
/// that cannot be read or is not one.
pub async fn idp_from_cloudflare(config: &Config, http: &Http) -> Option<Url> {
    let settings = config.doctor.cf.as_ref()?;
    let api = CfApi::new(http, &settings.url, &settings.token, LABEL);
    let account = match &settings.account {
        Some(a) => a.clone(),
        None => find_account(&api).await.ok()?.0,
    };
    let apps_path = ["accounts", account.as_str(), "access", "apps"];
    let idps_path = ["accounts", account.as_str(), "access", "identity_providers"];
    let (apps, idps) = futures::join!(
        crate::http::without_cookies(api.list::<App>(
            &apps_path,
            &[],
            "the Access applications",
            perm::APPS
        )),
        crate::http::without_cookies(api.list::<IdentityProvider>(
            &idps_path,
            &[],
            "the login methods",
            perm::ORG
        )),
    );
    let (apps, idps) = (apps.ok()?, idps.ok()?);
    let host = config.service.host_str().unwrap_or_default();
    let (app, _) = rules::covering_app(&apps, host, config.service.path())?;
    let allowed = app.allowed_idps.clone().unwrap_or_default();
    let oidc: Vec<&IdentityProvider> = idps
        .iter()
        .filter(|i| i.kind == "oidc" && (allowed.is_empty() || allowed.contains(&i.id)))
        .collect();
    let [one] = oidc.as_slice() else {
        return None;
    };
    let auth_url = Url::parse(one.config.auth_url.as_deref()?).ok()?;
    crate::pocketid::oidc::app_url_of_authorize(&auth_url)
}

/// The token's one account (a user-owned token lists them).
async fn find_account(api: &CfApi<'_>) -> Result<(String, String), CfError> {
    let accounts = api
        .list::<Account>(&["accounts"], &[], "the token's accounts", perm::NONE)
        .await?;
    match accounts.as_slice() {
        [one] => Ok((one.id.clone(), one.name.clone())),
        [] => Err(CfError::Shape {
            what: "the token's accounts".into(),
            problem: "an empty list: the token reaches no account; pass --cf-account-id".into(),
        }),
        many => Err(CfError::Shape {
            what: "the token's accounts".into(),
            problem: format!(
                "a list of {} accounts; pass --cf-account-id with one of: {}",
                many.len(),
                text::list(many.iter().map(|a| format!("{} ({})", a.id, a.name)), ", ")
            ),
        }),
    }
}

async fn read_tunnels(
    api: &CfApi<'_>,
    account: &str,
    query: &[(&str, String)],
) -> Result<Vec<TunnelFacts>, CfError> {
    let tunnels = api
        .list::<Tunnel>(
            &["accounts", account, "cfd_tunnel"],
            query,
            "the tunnels",
            perm::TUNNEL,
        )
        .await?;
    let reads = tunnels.into_iter().map(|tunnel| async move {
        let connections_path = ["accounts", account, "cfd_tunnel", &tunnel.id, "connections"];
        let config_path = [
            "accounts",
            account,
            "cfd_tunnel",
            &tunnel.id,
            "configurations",
        ];
        // Not a paginated list: one array of connectors.
        let connectors = api.get::<Vec<Connector>>(
            &connections_path,
            &[],
            "a tunnel's connections",
            perm::TUNNEL,
        );
        let remote = tunnel.config_src.as_deref() != Some("local");
        let configuration = async {
            if remote {
                Some(
                    api.get::<TunnelConfiguration>(
                        &config_path,
                        &[],
                        "a tunnel's configuration",
                        perm::TUNNEL,
                    )
                    .await,
                )
            } else {
                None
            }
        };
        let (connectors, config) = futures::join!(connectors, configuration);
        TunnelFacts {
            tunnel,
            connectors,
            config,
        }
    });
    Ok(futures::future::join_all(reads).await)
}

/// The zone of `host` (its name or a parent's) and the host's records in it.
async fn read_dns(api: &CfApi<'_>, account: &str, host: &str) -> DnsFacts {
    let labels: Vec<&str> = host.split('.').collect();
    // From the longest candidate down to the registrable part (two labels).
    for start in 0..labels.len().saturating_sub(1) {
        let name = labels[start..].join(".");
        let zones = api
            .list::<Zone>(
                &["zones"],
                &[("name", name.clone()), ("account.id", account.to_string())],
                "the zones",
                perm::ZONE,
            )
            .await?;
        if let Some(zone) = zones
            .into_iter()
            .find(|z| z.name.eq_ignore_ascii_case(&name))
        {
            let records = api
                .list::<DnsRecord>(
                    &["zones", &zone.id, "dns_records"],
                    &[("name.exact", host.to_string())],
                    "the DNS records",
                    perm::DNS,
                )
                .await?;
            let records = records
                .into_iter()
                .filter(|r| r.name.eq_ignore_ascii_case(host))
                .collect();
            return Ok(Some((zone, records)));
        }
    }
    Ok(None)
}

/// The Access login method that is Pocket ID: generic OIDC whose Auth URL is on
/// Pocket ID's host (the application's allowed one first), else whose client id is
/// the one given.
pub(super) fn pick_idp(config: &Config, cf: &Cf) -> Option<IdentityProvider> {
    let idps = cf.idps.as_ref().ok()?;
    let idp_host = config
        .idp
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let on_host = |i: &&IdentityProvider| {
        i.kind == "oidc"
            && i.config
                .auth_url
                .as_deref()
                .and_then(|u| Url::parse(u).ok())
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                .is_some_and(|h| h == idp_host)
    };
    let allowed: Vec<String> = covering(config, cf)
        .and_then(|a| a.allowed_idps.clone())
        .unwrap_or_default();
    idps.iter()
        .filter(on_host)
        .max_by_key(|i| allowed.contains(&i.id))
        .or_else(|| {
            let wanted = config.client_id.as_deref()?;
            idps.iter()
                .find(|i| i.kind == "oidc" && i.config.client_id.as_deref() == Some(wanted))
        })
        .cloned()
}

pub(super) fn covering<'a>(config: &Config, cf: &'a Cf) -> Option<&'a App> {
    let apps = cf.apps.as_ref().ok()?;
    let host = config.service.host_str().unwrap_or_default();
    rules::covering_app(apps, host, config.service.path()).map(|(a, _)| a)
}
