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
use crate::text::server_text;
use url::Url;

/// Reads what the `config.*` checks judge. `idp_known`: whether `config.idp` is Pocket
/// ID's URL (without it, nothing is read for Pocket ID's host: its zone, records and
/// Bot Fight Mode).
pub(super) async fn read_cloudflare(
    config: &Config,
    http: &Http,
    settings: &CfSettings,
    idp_known: bool,
) -> Cf {
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
        (_, Err(e))
            if !matches!(
                e,
                CfError::BadToken { .. } | CfError::Answer { .. } | CfError::Unavailable { .. }
            ) =>
        {
            Err(e.clone())
        }
        (Some(id), _) => Ok((id.clone(), String::new())),
        (None, _) => find_account(&api, token.is_err()).await,
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
    // Without Pocket ID's URL there is no host of its to read.
    let idp_host = idp_known.then(|| {
        config
            .idp
            .host_str()
            .unwrap_or_default()
            .to_ascii_lowercase()
    });
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
        async {
            match &idp_host {
                Some(host) => Some(read_dns(&api, a, host).await),
                None => None,
            }
        },
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
        Some(Ok(Some((zone, _)))) => Some(
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
    let mut dns = vec![(site_host, site_dns)];
    if let (Some(host), Some(idp_dns)) = (idp_host, idp_dns) {
        dns.push((host, idp_dns));
    }
    Cf {
        account,
        token,
        org,
        idps,
        apps,
        groups,
        policies,
        tunnels,
        dns,
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
        // Whether the token is refused or only cannot list accounts, nothing is found:
        // doctor's own reads name which.
        None => find_account(&api, false).await.ok()?.0,
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
    match app_oidc_methods(app, &idps).as_slice() {
        [one] => pocket_id_of(one),
        _ => None,
    }
}

/// The check whose finding tells why Cloudflare's configuration does not name Pocket
/// ID's URL (see [`idp_from_cloudflare`]): the token or account, the application, or its
/// login methods. `None` when it does name it.
pub(super) fn idp_unread_by(config: &Config, cf: &Cf) -> Option<&'static str> {
    if cf.account.is_err() || cf.token.is_err() {
        return Some(super::ids::TOKEN);
    }
    let Some(app) = covering(config, cf) else {
        return Some(super::ids::APP);
    };
    let Ok(idps) = &cf.idps else {
        return Some(super::ids::LOGIN_METHOD);
    };
    match app_oidc_methods(app, idps).as_slice() {
        [one] if pocket_id_of(one).is_some() => None,
        _ => Some(super::ids::LOGIN_METHOD),
    }
}

/// The OpenID Connect login methods `app` offers (all of the account's when it names
/// none): Pocket ID is one of them.
pub(super) fn app_oidc_methods<'a>(
    app: &App,
    idps: &'a [IdentityProvider],
) -> Vec<&'a IdentityProvider> {
    let allowed = app.allowed_idps.clone().unwrap_or_default();
    idps.iter()
        .filter(|i| i.kind == "oidc" && (allowed.is_empty() || allowed.contains(&i.id)))
        .collect()
}

/// Pocket ID's public URL from an OpenID Connect login method's Auth URL (without
/// `/authorize`); `None` when it is not an https URL ending in `/authorize`.
pub(super) fn pocket_id_of(idp: &IdentityProvider) -> Option<Url> {
    let auth_url = Url::parse(idp.config.auth_url.as_deref()?).ok()?;
    crate::pocketid::oidc::app_url_of_authorize(&auth_url)
}

/// The token's one account (a user-owned token lists them). `verify_failed`: whether
/// verifying the token failed. A token verify accepted that is refused the list cannot
/// list accounts (one without the permission), nor can one whose list is refused with
/// anything but the token's refusal (an account-owned token): `--cf-account-id` makes
/// up for either. A refusal of the token by both is the token's.
async fn find_account(api: &CfApi<'_>, verify_failed: bool) -> Result<(String, String), CfError> {
    let what = "the token's accounts";
    let accounts = match api
        .list::<Account>(&["accounts"], &[], what, perm::NONE)
        .await
    {
        Ok(a) => a,
        Err(e @ (CfError::Http(_) | CfError::RateLimited { .. } | CfError::Shape { .. })) => {
            return Err(e);
        }
        Err(e @ CfError::BadToken { .. }) if verify_failed => return Err(e),
        Err(e) => {
            let why = match &e {
                CfError::Denied { .. } => "HTTP 403, code 10000 \"Authentication error\"".into(),
                CfError::BadToken {
                    status,
                    code,
                    message,
                }
                | CfError::Unavailable {
                    status,
                    code,
                    message,
                    ..
                }
                | CfError::Answer {
                    status,
                    code,
                    message,
                    ..
                } => format!(
                    "HTTP {status}{}: {message}",
                    code.map(|c| format!(", code {c}")).unwrap_or_default()
                ),
                other => other.to_string(),
            };
            return Err(CfError::AccountUnknown {
                problem: format!("the API token cannot list its accounts ({why})"),
            });
        }
    };
    match accounts.as_slice() {
        [one] => Ok((one.id.clone(), one.name.clone())),
        [] => Err(CfError::AccountUnknown {
            problem: "the API token reaches no account: its list of accounts is empty".into(),
        }),
        many => Err(CfError::AccountUnknown {
            problem: format!(
                "the API token reaches {} accounts: {}",
                many.len(),
                text::list(
                    many.iter()
                        .map(|a| format!("{} ({})", a.id, server_text(&a.name))),
                    ", "
                )
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
/// Without Pocket ID's URL (`idp_known` false), the one OpenID Connect login method the
/// site's application offers, if it offers one.
pub(super) fn pick_idp(config: &Config, cf: &Cf, idp_known: bool) -> Option<IdentityProvider> {
    let idps = cf.idps.as_ref().ok()?;
    if !idp_known {
        let app = covering(config, cf)?;
        return match app_oidc_methods(app, idps).as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        };
    }
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
