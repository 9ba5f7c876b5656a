//! `ssoprobe doctor`, and the `config.*` checks `check` runs beside the probe when API
//! credentials are configured: read Cloudflare's configuration (Access application,
//! policies, login method, tunnel, DNS) and Pocket ID's (OIDC client, monitoring user,
//! discovery) through their APIs, read-only, and name every mismatch between them with
//! its fix — before a user meets it as a failed login.
//!
//! Only GET requests are sent: the two API clients here have no other method.

pub mod cfapi;
pub mod model;
pub mod rules;
pub mod text;

use crate::config::{CfSettings, Config};
use crate::finding::{CheckResult, Findings};
use crate::http::Http;
use crate::pocketid::api::{Api, ApiError};
use crate::pocketid::oidc::{ACCESS_ALGS, Discovery};
use crate::redact::Secret;
use cfapi::{CfApi, CfError, perm};
use model::*;
use std::collections::BTreeSet;
use url::Url;

/// The stable ids of the configuration checks.
pub mod ids {
    /// The Cloudflare API token works.
    pub const TOKEN: &str = "config.token";
    /// The Zero Trust organization (team domain).
    pub const TEAM: &str = "config.team";
    /// The Access application that covers the site.
    pub const APP: &str = "config.app";
    /// Its policies admit the monitoring user.
    pub const POLICY: &str = "config.policy";
    /// The Pocket ID login method's URLs and client id.
    pub const LOGIN_METHOD: &str = "config.login_method";
    /// Its scopes and claims.
    pub const SCOPES: &str = "config.scopes";
    /// PKCE on both sides.
    pub const PKCE: &str = "config.pkce";
    /// The tunnels serving the site and Pocket ID.
    pub const TUNNEL: &str = "config.tunnel";
    /// The DNS records of the site and Pocket ID.
    pub const DNS: &str = "config.dns";
    /// Bot Fight Mode on Pocket ID's zone.
    pub const WAF: &str = "config.waf";
    /// Pocket ID's admin API key works.
    pub const API_KEY: &str = "config.api_key";
    /// Pocket ID's discovery document as Access needs it.
    pub const DISCOVERY: &str = "config.discovery";
    /// The OIDC client Access uses.
    pub const CLIENT: &str = "config.client";
    /// The monitoring user at Pocket ID.
    pub const USER: &str = "config.user";
    /// Every configuration check, in report order.
    pub const ALL: &[&str] = &[
        TOKEN,
        TEAM,
        APP,
        POLICY,
        LOGIN_METHOD,
        SCOPES,
        PKCE,
        TUNNEL,
        DNS,
        WAF,
        API_KEY,
        DISCOVERY,
        CLIENT,
        USER,
    ];
}

/// The trace label of the API requests.
const LABEL: &str = "config";
/// Days before a token or client secret expires that it is worth a warning.
const EXPIRY_WARN_DAYS: i64 = 14;

/// What Cloudflare's API told.
struct Cf {
    /// The account id and name, or why not.
    account: Result<(String, String), CfError>,
    token: Result<TokenStatus, CfError>,
    org: Result<Organization, CfError>,
    idps: Result<Vec<IdentityProvider>, CfError>,
    apps: Result<Vec<App>, CfError>,
    groups: Result<Vec<Group>, CfError>,
    /// The covering app's policies (app-scoped and reusable).
    policies: Option<Result<Vec<Policy>, CfError>>,
    tunnels: Result<Vec<TunnelFacts>, CfError>,
    /// Per host (site, Pocket ID): the zone and its records for the host.
    dns: Vec<(String, DnsFacts)>,
    /// Bot Fight Mode of Pocket ID's zone.
    bots: Option<Result<BotManagement, CfError>>,
}

/// The zone of a host in the account (none: not in it) with the host's records.
type DnsFacts = Result<Option<(Zone, Vec<DnsRecord>)>, CfError>;

impl Cf {
    /// Nothing read but the account and the token: every read fails with `e` (a
    /// refused token, an unknown account), which `config.token` names once.
    fn unread(
        account: Result<(String, String), CfError>,
        token: Result<TokenStatus, CfError>,
        e: CfError,
    ) -> Cf {
        Cf {
            account,
            token,
            org: Err(e.clone()),
            idps: Err(e.clone()),
            apps: Err(e.clone()),
            groups: Err(e.clone()),
            policies: None,
            tunnels: Err(e),
            dns: Vec::new(),
            bots: None,
        }
    }
}

/// A tunnel with its connectors and (remotely managed) configuration.
struct TunnelFacts {
    tunnel: Tunnel,
    connectors: Result<Vec<Connector>, CfError>,
    config: Option<Result<TunnelConfiguration, CfError>>,
}

/// What Pocket ID told.
struct Pid {
    discovery: Result<Discovery, String>,
    /// Every OIDC client (proves the key).
    clients: Result<Vec<serde_json::Value>, ApiError>,
    /// The client Access uses, by id, or why not.
    client: Option<Result<PidClient, ApiError>>,
    user: Option<Result<Option<PidUser>, ApiError>>,
    passkeys: Option<Result<Vec<serde_json::Value>, ApiError>>,
}

/// The configuration checks of one run, in report order.
/// `idp_known`: whether Pocket ID's URL is known (without it, its side is not read).
pub async fn run(config: &Config, http: &Http, idp_known: bool) -> Vec<CheckResult> {
    // Pocket ID's side needs its URL, and its admin key goes only to a Pocket ID the
    // operator named: otherwise its checks skip, saying how to run them.
    let withheld = if !idp_known {
        Some(crate::finding::IDP_UNKNOWN.to_string())
    } else if config.doctor.api_key.is_some() && !config.idp_named() {
        Some(config.idp_not_named("the Pocket ID API key"))
    } else {
        None
    };
    let Some(why) = withheld else {
        return crate::http::without_cookies(run_without_cookies(config, http)).await;
    };
    let mut without = config.clone();
    without.doctor.api_key = None;
    let mut checks = crate::http::without_cookies(run_without_cookies(&without, http)).await;
    for c in &mut checks {
        if c.summary == NO_PID {
            *c = CheckResult::skip(&c.id, why.clone());
        }
    }
    checks
}

/// [`run`], its API requests without the run's cookies.
async fn run_without_cookies(config: &Config, http: &Http) -> Vec<CheckResult> {
    let doctor = &config.doctor;
    let (cf, pid_base) = futures::join!(
        async {
            match &doctor.cf {
                Some(settings) => Some(read_cloudflare(config, http, settings).await),
                None => None,
            }
        },
        read_pocket_id_base(config, http),
    );
    // The client id: the login method's, else the one given, else found by its callback.
    let access_idp = cf.as_ref().and_then(|cf| pick_idp(config, cf));
    let client_id = access_idp
        .as_ref()
        .and_then(|i| i.config.client_id.clone())
        .or_else(|| config.client_id.clone());
    let user_email = doctor.user.clone().or_else(|| {
        config
            .passkey
            .as_ref()
            .and_then(|(file, _)| file.email.clone())
    });
    // Access's callback for this team, when the team is known.
    let callback = cf
        .as_ref()
        .and_then(|cf| cf.org.as_ref().ok())
        .and_then(|o| o.auth_domain.clone())
        .or_else(|| config.team_domain.clone())
        .map(|t| crate::cloudflare::callback_url(&t.to_ascii_lowercase()));
    let pid = match &doctor.api_key {
        Some(key) => Some(
            read_pocket_id(
                config,
                http,
                key,
                pid_base,
                client_id.as_deref(),
                callback.as_deref(),
                user_email.as_deref(),
            )
            .await,
        ),
        None => None,
    };
    let facts = Facts {
        config,
        cf: cf.as_ref(),
        pid: pid.as_ref(),
        idp: access_idp.as_ref(),
        email: user_email.as_deref(),
        discovery: pid_discovery(pid.as_ref()),
    };
    ids::ALL.iter().map(|id| facts.check(id)).collect()
}

fn pid_discovery(pid: Option<&Pid>) -> Option<&Discovery> {
    pid.and_then(|p| p.discovery.as_ref().ok())
}

// ---------------------------------------------------------------------------------
// Reading Cloudflare.

async fn read_cloudflare(config: &Config, http: &Http, settings: &CfSettings) -> Cf {
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
fn pick_idp(config: &Config, cf: &Cf) -> Option<IdentityProvider> {
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

fn covering<'a>(config: &Config, cf: &'a Cf) -> Option<&'a App> {
    let apps = cf.apps.as_ref().ok()?;
    let host = config.service.host_str().unwrap_or_default();
    rules::covering_app(apps, host, config.service.path()).map(|(a, _)| a)
}

// ---------------------------------------------------------------------------------
// Reading Pocket ID.

/// Discovery needs no key: it is read even without one.
async fn read_pocket_id_base(config: &Config, http: &Http) -> Result<Discovery, String> {
    let api = Api::new(http, &config.idp, LABEL);
    let url = api.url(crate::pocketid::oidc::paths::DISCOVERY);
    api.call_json_url::<Discovery>(reqwest::Method::GET, url, None, false)
        .await
        .map_err(|e| e.to_string())
}

async fn read_pocket_id(
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
    if clients
        .as_ref()
        .is_err_and(|e| !matches!(e, ApiError::Truncated { .. }))
    {
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

// ---------------------------------------------------------------------------------
// The checks.

struct Facts<'a> {
    config: &'a Config,
    cf: Option<&'a Cf>,
    pid: Option<&'a Pid>,
    idp: Option<&'a IdentityProvider>,
    email: Option<&'a str>,
    discovery: Option<&'a Discovery>,
}

const NO_CF: &str = "skipped: no Cloudflare API token (pass --cf-api-token-file and, for a token with several accounts, --cf-account-id)";
const NO_PID: &str = "skipped: no Pocket ID admin API key (pass --api-key-file)";

/// Records a failed API read on `f`: a missing permission is a warning naming it, no
/// answer a failure to run, anything else a failure.
fn cf_problem(f: &mut Findings, e: &CfError) {
    match e {
        CfError::Denied { .. } => f.warn(format!("cannot check: {e}"), e.hint()),
        CfError::Http(h) => f.request_failed("Cloudflare's API", h),
        _ => f.fail(e.to_string(), e.hint()),
    }
}

fn pid_problem(f: &mut Findings, what: &str, e: &ApiError) {
    match e {
        ApiError::Http(h) => f.request_failed(format!("Pocket ID's admin API ({what})"), h),
        ApiError::Answer { status: 401, .. } => f.fail(
            format!("Pocket ID refused the admin API key reading {what} ({e})"),
            "the key in --api-key-file is unknown or expired: create one in Pocket ID (Settings → Admin → API Keys) as an admin, or use STATIC_API_KEY",
        ),
        // Rule: a list read only in part never passes, and nothing is "missing" from it.
        ApiError::Truncated { .. } => f.fail(
            format!("Pocket ID's answer for {what} is {e}"),
            format!("ssoprobe reads at most {} pages of {} entries of a list and never judges from part of one: delete the entries Pocket ID no longer needs, or check that --idp is Pocket ID itself", crate::pocketid::api::MAX_PAGES, crate::pocketid::api::PAGE_LIMIT),
        ),
        ApiError::Answer { status: 403, .. } => f.fail(
            format!("the admin API key may not read {what} ({e})"),
            "the key belongs to a user who is not an admin (or is disabled): create the API key as an admin user",
        ),
        _ => f.fail(
            format!("Pocket ID's admin API failed reading {what}: {e}"),
            "run again with --trace to see the request and Pocket ID's answer",
        ),
    }
}

/// Lower-cased URL without a trailing slash and default port, for comparing.
fn norm_url(u: &str) -> String {
    match Url::parse(u.trim()) {
        Ok(url) => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{}{}",
                url.scheme(),
                url.host_str().unwrap_or_default().to_ascii_lowercase(),
                port,
                url.path().trim_end_matches('/')
            )
        }
        Err(_) => u.trim().to_string(),
    }
}

fn host_of(u: &str) -> Option<String> {
    Url::parse(u).ok()?.host_str().map(str::to_ascii_lowercase)
}

/// The id of the Pocket ID client Access uses, by its callback URLs: the one that lists
/// `callback` (this team's, when known), else one that lists any Access callback.
fn access_client(clients: &[serde_json::Value], callback: Option<&str>) -> Option<String> {
    let lists = |c: &serde_json::Value, exact: bool| {
        c.get("callbackURLs")
            .and_then(|v| v.as_array())
            .is_some_and(|cbs| {
                cbs.iter()
                    .filter_map(|u| u.as_str())
                    .any(|u| match (callback, exact) {
                        (Some(cb), true) => callback_matches(u, cb),
                        (None, true) => false,
                        (_, false) => u.contains("/cdn-cgi/access/callback"),
                    })
            })
    };
    clients
        .iter()
        .find(|c| lists(c, true))
        .or_else(|| clients.iter().find(|c| lists(c, false)))
        .and_then(|c| c.get("id")?.as_str().map(str::to_string))
}

/// Whether a Pocket ID callback entry admits `url`: exactly, or as a pattern where `*`
/// stands for any characters but `/` and `**` for any.
fn callback_matches(entry: &str, url: &str) -> bool {
    if entry == url {
        return true;
    }
    if !entry.contains('*') {
        return false;
    }
    if entry.len() > 512 || url.len() > 512 {
        return false;
    }
    // Tokens: a literal byte, `*` (no `/`) or `**` (anything).
    #[derive(Clone, Copy)]
    enum Tok {
        Byte(u8),
        Star,
        AnyStar,
    }
    let bytes = entry.as_bytes();
    let mut toks = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'*' {
            if bytes.get(i + 1) == Some(&b'*') {
                toks.push(Tok::AnyStar);
                i += 2;
            } else {
                toks.push(Tok::Star);
                i += 1;
            }
        } else {
            toks.push(Tok::Byte(bytes[i]));
            i += 1;
        }
    }
    // Dynamic programming over (tokens, text): linear in their product, whatever the
    // number of stars (a hostile list cannot make it backtrack).
    let t = url.as_bytes();
    let mut row = vec![false; t.len() + 1];
    row[0] = true;
    for tok in toks {
        let mut next = vec![false; t.len() + 1];
        match tok {
            Tok::Byte(c) => {
                for k in 0..t.len() {
                    next[k + 1] = row[k] && t[k] == c;
                }
            }
            Tok::Star | Tok::AnyStar => {
                let mut reach = false;
                for k in 0..=t.len() {
                    reach |= row[k];
                    next[k] = reach;
                    // `*` stops at a `/`: what follows it must start again after it.
                    if matches!(tok, Tok::Star) && k < t.len() && t[k] == b'/' {
                        reach = false;
                    }
                }
            }
        }
        row = next;
    }
    row[t.len()]
}

impl Facts<'_> {
    fn check(&self, id: &str) -> CheckResult {
        let mut f = Findings::start(id);
        let ok = match id {
            ids::TOKEN => self.token(&mut f),
            ids::TEAM => self.team(&mut f),
            ids::APP => self.app(&mut f),
            ids::POLICY => self.policy(&mut f),
            ids::LOGIN_METHOD => self.login_method(&mut f),
            ids::SCOPES => self.scopes(&mut f),
            ids::PKCE => self.pkce(&mut f),
            ids::TUNNEL => self.tunnel(&mut f),
            ids::DNS => self.dns(&mut f),
            ids::WAF => self.waf(&mut f),
            ids::API_KEY => self.api_key(&mut f),
            ids::DISCOVERY => self.discovery_check(&mut f),
            ids::CLIENT => self.client(&mut f),
            ids::USER => self.user(&mut f),
            _ => Err(format!("skipped: {id} is not a configuration check")),
        };
        match ok {
            // Names in the summary come from the APIs: made printable like findings.
            Ok(summary) => f.finish(crate::redact::terminal_safe(&summary)),
            // A skip that follows from a failure counts; one for a side not configured
            // (or a question not asked) does not.
            Err(skip) if skip.starts_with("skipped: follows from") => CheckResult::skip(id, skip),
            Err(skip) => CheckResult::not_asked(id, skip),
        }
    }

    /// Cloudflare's facts, or the skip reason (no token, or the token check failed).
    fn cf(&self) -> Result<&Cf, String> {
        let cf = self.cf.ok_or_else(|| NO_CF.to_string())?;
        if cf.account.is_err() || cf.token.is_err() {
            return Err(format!(
                "skipped: follows from {}: Cloudflare's API could not be read",
                ids::TOKEN
            ));
        }
        Ok(cf)
    }

    fn pid(&self) -> Result<&Pid, String> {
        let pid = self.pid.ok_or_else(|| NO_PID.to_string())?;
        // A list of clients too long to read whole still proves the key works.
        if pid
            .clients
            .as_ref()
            .is_err_and(|e| !matches!(e, ApiError::Truncated { .. }))
        {
            return Err(format!(
                "skipped: follows from {}: Pocket ID's admin API could not be read",
                ids::API_KEY
            ));
        }
        Ok(pid)
    }

    fn idp_name(&self, id: &str) -> String {
        let name = self
            .cf
            .and_then(|cf| cf.idps.as_ref().ok())
            .and_then(|list| list.iter().find(|i| i.id == id))
            .map(|i| i.name.clone())
            .unwrap_or_else(|| id.to_string());
        text::one(&name)
    }

    fn team_domain(&self) -> Option<String> {
        self.cf
            .and_then(|cf| cf.org.as_ref().ok())
            .and_then(|o| o.auth_domain.clone())
            .map(|d| d.to_ascii_lowercase())
            .or_else(|| self.config.team_domain.clone())
    }

    fn token(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf.ok_or_else(|| NO_CF.to_string())?;
        let account = match &cf.account {
            Ok((id, name)) => {
                f.detail("account_id", id.clone());
                if name.is_empty() {
                    id.clone()
                } else {
                    format!("{} ({id})", text::one(name))
                }
            }
            Err(e) => {
                cf_problem(f, e);
                return Ok(String::new());
            }
        };
        match &cf.token {
            Ok(t) => {
                if t.status != "active" {
                    f.fail(
                        format!("the API token's status is \"{}\", not active", text::one(&t.status)),
                        "enable or roll the token (My Profile → API Tokens), or create a new one with the Read permissions in ssoprobe's README",
                    );
                }
                if let Some(left) = t
                    .expires_on
                    .as_deref()
                    .and_then(crate::timefmt::parse_rfc3339)
                    .map(|e| e - crate::timefmt::unix_now())
                    && left < EXPIRY_WARN_DAYS * 86_400
                {
                    f.warn(
                        format!("the API token expires in {} days", left.max(0) / 86_400),
                        "roll the token or extend its TTL (My Profile → API Tokens) before monitoring stops reading the configuration",
                    );
                }
            }
            Err(e) => cf_problem(f, e),
        }
        Ok(format!(
            "the API token is active and reads account {account}"
        ))
    }

    fn team(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf()?;
        let org = match &cf.org {
            Ok(o) => o,
            Err(CfError::Answer { status: 404, .. }) => {
                f.fail(
                    "the account has no Zero Trust organization",
                    "create one (Zero Trust → choose a team name) before adding Access applications",
                );
                return Ok(String::new());
            }
            Err(e) => {
                cf_problem(f, e);
                return Ok(String::new());
            }
        };
        let Some(domain) = org.auth_domain.as_deref().map(str::to_ascii_lowercase) else {
            f.fail(
                "the Zero Trust organization has no team domain (auth_domain)",
                "set the team name under Zero Trust → Settings → Custom Pages / Team domain",
            );
            return Ok(String::new());
        };
        f.detail("team_domain", domain.clone());
        if let Some(expected) = &self.config.team_domain
            && *expected != domain
        {
            f.fail(
                format!("the account's team domain is {domain}, not {expected}"),
                format!("the site's Access configuration lives in team {domain}: pass --team {domain}, or use the API token of the account that owns {expected}"),
            );
        }
        Ok(format!("the account's team domain is {domain}"))
    }

    fn app(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf()?;
        let apps = match &cf.apps {
            Ok(a) => a,
            Err(e) => {
                cf_problem(f, e);
                return Ok(String::new());
            }
        };
        let host = self.config.service.host_str().unwrap_or_default();
        let path = self.config.service.path();
        f.detail("applications_read", apps.len());
        // Pocket ID behind Access: Cloudflare's own back-channel calls would meet a login.
        let idp_host = self.config.idp.host_str().unwrap_or_default();
        for p in [
            crate::pocketid::oidc::paths::TOKEN,
            crate::pocketid::oidc::paths::JWKS,
        ] {
            if let Some((app, pattern)) = rules::covering_app(apps, idp_host, p)
                && !app.bypasses_everyone()
            {
                f.fail(
                    format!("Access application \"{}\" ({pattern}) covers Pocket ID's {p}", text::one(&app.name)),
                    format!("Cloudflare's own requests to Pocket ID (token exchange, keys) would meet an Access login: do not protect {idp_host} with Access, or add a Bypass policy for {} and {}", crate::pocketid::oidc::paths::TOKEN, crate::pocketid::oidc::paths::JWKS),
                );
                break;
            }
        }
        let Some((app, pattern)) = rules::covering_app(apps, host, path) else {
            f.fail(
                format!("no Access application covers {host}{path} (of {} applications read)", apps.len()),
                format!("{host} is not protected by Access: add a self-hosted application for {host} (Zero Trust → Access → Applications → Add an application → Self-hosted)"),
            );
            return Ok(String::new());
        };
        let name = text::one(&app.name);
        f.detail("application", name.clone());
        f.detail("application_pattern", text::one(&pattern));
        if let Some(aud) = &app.aud {
            f.detail("aud", aud.clone());
            if let Some(expected) = &self.config.aud
                && !aud.eq_ignore_ascii_case(expected)
            {
                f.fail(
                    format!("application \"{name}\" has AUD {aud}, not {expected}"),
                    format!("pass --aud {aud}, or check that --service names the site the expected application protects"),
                );
            }
        }
        let allowed = app.allowed_idps.clone().unwrap_or_default();
        let all_idps = cf.idps.as_ref().map(Vec::len).unwrap_or(0);
        match self.idp {
            Some(idp) if !allowed.is_empty() && !allowed.contains(&idp.id) => {
                let names: Vec<String> = allowed.iter().map(|i| self.idp_name(i)).collect();
                f.fail(
                    format!("application \"{name}\" does not offer the Pocket ID login method \"{}\"; it allows only {}", self.idp_name(&idp.id), text::list(&names, ", ")),
                    format!("add \"{}\" to the application's login methods (Access → Applications → {name} → Login methods), or the API field allowed_idps", self.idp_name(&idp.id)),
                );
            }
            _ => {}
        }
        match app.auto_redirect_to_identity {
            Some(true) if allowed.len() != 1 && !(allowed.is_empty() && all_idps == 1) => {
                f.warn(
                    format!("Instant Auth is on, but application \"{name}\" allows {} login methods", if allowed.is_empty() { format!("all {all_idps}") } else { allowed.len().to_string() }),
                    format!("Instant Auth needs exactly one login method: select only Pocket ID under Access → Applications → {name} → Login methods (allowed_idps)"),
                );
            }
            Some(true) => {}
            _ => f.warn(
                format!("Instant Auth is off for application \"{name}\": users see Access's sign-in page and must pick Pocket ID"),
                format!("turn on Instant Auth (Access → Applications → {name} → Login methods → Instant Auth; auto_redirect_to_identity) with Pocket ID the only login method"),
            ),
        }
        Ok(format!(
            "Access application \"{name}\" ({pattern}) covers {host}{path}"
        ))
    }

    fn policy(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf()?;
        let Some(app) = covering(self.config, cf) else {
            return Err(format!(
                "skipped: follows from {}: no application covers the site",
                ids::APP
            ));
        };
        let name = text::one(&app.name);
        let policies = match &cf.policies {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                cf_problem(f, e);
                return Ok(String::new());
            }
            None => return Err("skipped: the application's policies were not read".into()),
        };
        let groups = cf.groups.as_ref().map(Vec::as_slice).unwrap_or_default();
        if let Err(e) = &cf.groups {
            cf_problem(f, e);
        }
        f.detail("policies", policies.len());
        if !policies.is_empty() && policies.iter().all(|p| p.decision == "non_identity") {
            f.fail(
                format!("application \"{name}\" has only Service Auth policies: people are refused (Access answers 403 Forbidden)"),
                format!("add an Allow policy that includes your users (Access → Applications → {name} → Policies)"),
            );
            return Ok(String::new());
        }
        if self.config.service_token.is_some()
            && !policies.iter().any(|p| p.decision == "non_identity")
        {
            f.warn(
                format!("application \"{name}\" has no Service Auth policy: service tokens are sent to the login"),
                format!("add a Service Auth policy including the service token (Access → Applications → {name} → Policies → Add → Action: Service Auth)"),
            );
        }
        let Some(email) = self.email else {
            if rules::bypass_for_everyone(policies).is_some() {
                f.fail(
                    format!("a Bypass policy of application \"{name}\" includes everyone: the site is public"),
                    format!("remove the Bypass policy or narrow it to the paths that must be public (Access → Applications → {name} → Policies)"),
                );
            }
            return Err("skipped: which user? pass --user EMAIL (the monitoring user) or --passkey FILE to evaluate the policies for it".into());
        };
        let idp_id = self.idp.map(|i| i.id.as_str()).unwrap_or_default();
        let scopes_have_groups = self
            .idp
            .and_then(|i| i.config.scopes.as_ref())
            .is_some_and(|s| s.iter().any(|x| x == "groups"));
        let user_groups: Option<Vec<String>> = self.pid.and_then(|p| match &p.user {
            Some(Ok(Some(u))) => Some(u.user_groups.iter().map(|g| g.name.clone()).collect()),
            _ => None,
        });
        let claim = if scopes_have_groups {
            user_groups.clone()
        } else {
            Some(Vec::new())
        };
        let person = rules::Person {
            email,
            idp_id,
            groups: claim.as_deref(),
        };
        let names = |id: &str| self.idp_name(id);
        // A groups-claim rule written with Pocket ID's display name: the claim carries
        // the group's name.
        if let Some(Ok(Some(user))) = self.pid.and_then(|p| p.user.as_ref()) {
            let claim_values = rules::groups_claim_values(policies);
            for value in claim_values {
                if let Some(g) = user
                    .user_groups
                    .iter()
                    .find(|g| g.friendly_name == value && g.name != value)
                {
                    f.fail(
                        format!("a policy of application \"{name}\" matches the groups claim against \"{}\", Pocket ID's display name; the claim carries the group's name \"{}\"", text::one(value), text::one(&g.name)),
                        format!("change the rule's claim value to {} (Access → Applications → {name} → Policies)", text::one(&g.name)),
                    );
                }
            }
        }
        let mut eval = rules::Evaluator::new(&person, groups);
        match eval.decide(policies) {
            rules::Decision::Allowed(p) => {
                let policy = policies.iter().find(|x| x.name == p);
                if let Some(policy) = policy {
                    let human = [
                        (policy.approval_required, "approval by an approver"),
                        (
                            policy.purpose_justification_required,
                            "a typed justification",
                        ),
                        (policy.isolation_required, "browser isolation"),
                    ];
                    for (on, what) in human {
                        if on == Some(true) {
                            f.warn(
                                format!("policy \"{}\" admits {email} but requires {what}: an unattended login cannot pass it", text::one(&p)),
                                format!("give the monitoring user its own Allow policy without {what} (Access → Applications → {name} → Policies)"),
                            );
                        }
                    }
                }
                Ok(format!(
                    "policy \"{}\" of application \"{name}\" admits {email}",
                    text::one(&p)
                ))
            }
            rules::Decision::Bypassed(p) => {
                f.fail(
                    format!("Bypass policy \"{}\" of application \"{name}\" includes everyone: the site is public", text::one(&p)),
                    format!("remove the Bypass policy or narrow it to the paths that must be public (Access → Applications → {name} → Policies)"),
                );
                Ok(String::new())
            }
            rules::Decision::Blocked(p) => {
                f.fail(
                    format!("Block policy \"{}\" of application \"{name}\" matches {email}", text::one(&p)),
                    format!("narrow the Block policy, or move an Allow policy for {email} above it (Access → Applications → {name} → Policies)"),
                );
                Ok(String::new())
            }
            rules::Decision::NoMatch => {
                let allow: Vec<&Policy> =
                    policies.iter().filter(|p| p.decision == "allow").collect();
                let reasons = text::list(
                    allow.iter().map(|p| {
                        format!("\"{}\": {}", text::one(&p.name), eval.why_not(p, &names))
                    }),
                    "; ",
                );
                let claim_unsent =
                    !scopes_have_groups && !rules::groups_claim_values(policies).is_empty();
                let hint = if claim_unsent {
                    "a policy matches on the OIDC claim groups, which Access never receives: add the scope groups to the Pocket ID login method (Settings → Authentication → Pocket ID → OIDC Claims / scopes)".to_string()
                } else {
                    format!(
                        "add an Include rule \"Emails: {email}\" (or a group the user is in) to an Allow policy of application \"{name}\" (Access → Applications → {name} → Policies)"
                    )
                };
                f.fail(
                    format!(
                        "no Allow policy of application \"{name}\" admits {email} ({})",
                        if reasons.is_empty() {
                            "it has no Allow policy".to_string()
                        } else {
                            reasons
                        }
                    ),
                    hint,
                );
                Ok(String::new())
            }
            rules::Decision::Unknown { policy, why } => {
                let policy = text::one(&policy);
                let login = "check with a login: run `ssoprobe check --passkey FILE` with the same settings";
                // Rule: what configuration cannot decide is "cannot tell", naming why, never a guess.
                let (finding, hint) = match why {
                    rules::Unknowable::Rule(kind) => (
                        format!(
                            "policy \"{policy}\" of application \"{name}\" has rules ssoprobe cannot evaluate from configuration (IP ranges, device posture, lists): {}",
                            if kind.is_empty() {
                                "a rule of no known shape".to_string()
                            } else {
                                format!("a rule of type {}", text::one(&kind))
                            }
                        ),
                        login.to_string(),
                    ),
                    rules::Unknowable::Cycle(groups) => {
                        let first = text::one(groups.first().map_or("", String::as_str));
                        // The groups along the cycle (no more than the nesting followed), then
                        // the first again.
                        let along: Vec<String> = groups
                            .iter()
                            .take(groups.len().saturating_sub(1))
                            .map(|g| format!("\"{}\"", text::one(g)))
                            .collect();
                        (
                            format!(
                                "ssoprobe cannot tell whether policy \"{policy}\" of application \"{name}\" admits {email}: its Access groups include one another in a cycle ({} → \"{first}\")",
                                text::list(&along, " → ")
                            ),
                            format!(
                                "remove the rule that closes the cycle: a group must not include itself, directly or through other groups (Zero Trust → Access → Access groups → {first})"
                            ),
                        )
                    }
                    rules::Unknowable::MissingGroup(id) => (
                        format!(
                            "ssoprobe cannot tell whether policy \"{policy}\" of application \"{name}\" admits {email}: a rule names Access group {}, which is not among the groups read",
                            text::one(&id)
                        ),
                        format!(
                            "check that the group exists (Zero Trust → Access → Access groups) and that the API token has \"{}\"; or {login}",
                            perm::ORG
                        ),
                    ),
                    rules::Unknowable::TooDeep => (
                        format!(
                            "ssoprobe cannot tell whether policy \"{policy}\" of application \"{name}\" admits {email}: its Access groups are nested deeper than ssoprobe follows"
                        ),
                        format!(
                            "include the user through fewer levels of Access groups (Zero Trust → Access → Access groups), or {login}"
                        ),
                    ),
                    rules::Unknowable::OverBudget => (
                        format!(
                            "ssoprobe cannot tell whether policy \"{policy}\" of application \"{name}\" admits {email}: its rules and Access groups take more than {} rule evaluations, more than ssoprobe makes",
                            rules::BUDGET
                        ),
                        format!(
                            "give the monitoring user a short Allow policy of its own (Access → Applications → {name} → Policies), or {login}"
                        ),
                    ),
                };
                f.warn(finding, hint);
                Ok(String::new())
            }
        }
    }

    fn login_method(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf()?;
        let idps = match &cf.idps {
            Ok(i) => i,
            Err(e) => {
                cf_problem(f, e);
                return Ok(String::new());
            }
        };
        let idp_url = self.config.idp.as_str().trim_end_matches('/');
        let Some(idp) = self.idp else {
            f.fail(
                format!("no OpenID Connect login method points at {idp_url} (of {} login methods read)", idps.len()),
                format!("add one: Zero Trust → Settings → Authentication → Login methods → Add new → OpenID Connect, with Auth URL {idp_url}/authorize, Token URL {idp_url}/api/oidc/token, Certificate URL {idp_url}/.well-known/jwks.json and PKCE on"),
            );
            return Ok(String::new());
        };
        let name = text::one(&idp.name);
        f.detail("login_method", name.clone());
        let c = &idp.config;
        if let (Some(expected), Some(got)) = (&self.config.client_id, &c.client_id)
            && expected != got
        {
            f.fail(
                format!("login method \"{name}\" uses client id {got}, not {expected}"),
                format!("set App ID to {expected} (Settings → Authentication → {name}), or pass --client-id {got}"),
            );
        }
        let disc = self.discovery;
        let issuer = disc
            .and_then(|d| d.issuer.clone())
            .unwrap_or_else(|| idp_url.to_string());
        let public = issuer.trim_end_matches('/');
        // The URLs Access must use: discovery's, unless they name another (internal) host.
        let want = |advertised: Option<&String>, path: &str| -> String {
            match advertised {
                Some(a) if host_of(a) == host_of(public) => a.clone(),
                _ => format!("{public}{path}"),
            }
        };
        let fields = [
            (
                "Auth URL",
                "auth_url",
                &c.auth_url,
                want(
                    disc.and_then(|d| d.authorization_endpoint.as_ref()),
                    "/authorize",
                ),
            ),
            (
                "Token URL",
                "token_url",
                &c.token_url,
                want(
                    disc.and_then(|d| d.token_endpoint.as_ref()),
                    "/api/oidc/token",
                ),
            ),
            (
                "Certificate URL",
                "certs_url",
                &c.certs_url,
                want(
                    disc.and_then(|d| d.jwks_uri.as_ref()),
                    "/.well-known/jwks.json",
                ),
            ),
        ];
        for (label, field, got, expected) in fields {
            match got {
                Some(got) if norm_url(got) == norm_url(&expected) => {}
                Some(got) => f.fail(
                    format!("{label} of login method \"{name}\" is {}, not {expected}", text::one(got)),
                    format!("set {label} to {expected} (Settings → Authentication → {name}; API field config.{field})"),
                ),
                None => f.fail(
                    format!("login method \"{name}\" has no {label}"),
                    format!("set {label} to {expected} (Settings → Authentication → {name})"),
                ),
            }
        }
        if let Some(alg) = disc.and_then(|d| d.id_token_signing_alg_values_supported.first())
            && !ACCESS_ALGS.contains(&alg.as_str())
        {
            f.fail(
                format!("Pocket ID signs id_tokens with {}, which Access cannot verify", text::one(alg)),
                "rotate Pocket ID's signing key to RS256 (`pocket-id key-rotate --alg RS256`, then restart it)",
            );
        }
        Ok(format!(
            "login method \"{name}\" points at {public} with the URLs its discovery document names"
        ))
    }

    fn scopes(&self, f: &mut Findings) -> Result<String, String> {
        self.cf()?;
        let Some(idp) = self.idp else {
            return Err(format!(
                "skipped: follows from {}: no Pocket ID login method",
                ids::LOGIN_METHOD
            ));
        };
        let name = text::one(&idp.name);
        let scopes = idp.config.scopes.clone().unwrap_or_default();
        f.detail("scopes", text::list(&scopes, " "));
        let supported: Vec<String> = match self.discovery {
            Some(d) if !d.scopes_supported.is_empty() => d.scopes_supported.clone(),
            _ => ["openid", "profile", "email", "groups", "offline_access"]
                .map(String::from)
                .to_vec(),
        };
        let missing: Vec<&str> = ["openid", "email"]
            .into_iter()
            .filter(|s| !scopes.iter().any(|x| x == s))
            .collect();
        if !missing.is_empty() {
            f.fail(
                format!("login method \"{name}\" does not ask for the scope {}: Pocket ID then sends no e-mail address and Access cannot identify the user", missing.join(" and ")),
                format!("set the scopes to openid email profile (Settings → Authentication → {name} → OIDC scopes; API field config.scopes)"),
            );
        }
        let unsupported: Vec<&String> = scopes.iter().filter(|s| !supported.contains(s)).collect();
        if !unsupported.is_empty() {
            f.fail(
                format!("login method \"{name}\" asks for the scope {}, which Pocket ID does not offer: it refuses the login (invalid_scope)", text::list(&unsupported, ", ")),
                format!("remove {} from the scopes of \"{name}\"; Pocket ID offers {}", text::list(&unsupported, ", "), text::list(&supported, ", ")),
            );
        }
        if let Some(claim) = idp
            .config
            .email_claim_name
            .as_deref()
            .filter(|c| !c.is_empty() && *c != "email")
        {
            let known = self
                .discovery
                .is_some_and(|d| d.claims_supported.iter().any(|x| x == claim));
            if !known {
                f.fail(
                    format!("login method \"{name}\" reads the e-mail address from the claim \"{}\", which Pocket ID does not send", text::one(claim)),
                    format!("set Email claim to email (Settings → Authentication → {name}; API field config.email_claim_name)"),
                );
            }
        }
        let uses_groups = self
            .cf
            .and_then(|cf| cf.policies.as_ref())
            .and_then(|p| p.as_ref().ok())
            .is_some_and(|ps| !rules::groups_claim_values(ps).is_empty());
        if uses_groups && !scopes.iter().any(|s| s == "groups") {
            f.fail(
                format!("a policy of the site's application matches the OIDC claim groups, but login method \"{name}\" does not ask for the scope groups, so Pocket ID never sends it"),
                format!("add groups to the scopes of \"{name}\" (and to its OIDC claims); policies match Pocket ID's group name, not its display name"),
            );
        }
        Ok(format!(
            "login method \"{name}\" asks for {}",
            text::list(&scopes, " ")
        ))
    }

    fn pkce(&self, f: &mut Findings) -> Result<String, String> {
        // Either side alone says what it can; both cross-check.
        let access = match (self.cf(), self.idp) {
            (Ok(_), Some(idp)) => Ok(idp),
            (Ok(_), None) => Err(format!(
                "skipped: follows from {}: no Pocket ID login method",
                ids::LOGIN_METHOD
            )),
            (Err(e), _) => Err(e),
        };
        let client = match self.pid() {
            Ok(pid) => match &pid.client {
                Some(Ok(c)) => Ok(c),
                _ => Err(format!(
                    "skipped: follows from {}: the client was not read",
                    ids::CLIENT
                )),
            },
            Err(e) => Err(e),
        };
        let enforce = "turn on PKCE on the Pocket ID client (OIDC Clients → the client → PKCE) so that it is enforced";
        match (access, client) {
            (Err(a), Err(c)) => Err(if a.starts_with("skipped: follows from") {
                a
            } else {
                c
            }),
            (Ok(idp), Err(_)) => {
                let name = text::one(&idp.name);
                if idp.config.pkce_enabled == Some(true) {
                    Ok(format!(
                        "login method \"{name}\" uses PKCE (Pocket ID's client not read: pass --api-key-file to see whether it is required)"
                    ))
                } else {
                    f.warn(
                        format!("login method \"{name}\" sends no PKCE"),
                        format!("turn on PKCE in Access (Settings → Authentication → {name} → PKCE; API field config.pkce_enabled), then {enforce}"),
                    );
                    Ok(String::new())
                }
            }
            (Err(_), Ok(client)) => {
                let cname = text::one(&client.name);
                if client.pkce_enabled || client.is_public {
                    Ok(format!(
                        "Pocket ID's client \"{cname}\" requires PKCE (Access's side not read: pass --cf-api-token-file to see whether it sends it)"
                    ))
                } else {
                    f.warn(
                        format!("Pocket ID's client \"{cname}\" does not require PKCE: a stolen code can be redeemed without the verifier"),
                        format!("{enforce}, after checking that the Access login method has PKCE on"),
                    );
                    Ok(String::new())
                }
            }
            (Ok(idp), Ok(client)) => {
                let name = text::one(&idp.name);
                let cname = text::one(&client.name);
                let access = idp.config.pkce_enabled == Some(true);
                let required = client.pkce_enabled || client.is_public;
                if required && !access {
                    let why = if client.is_public {
                        "is public, and public clients must use PKCE"
                    } else {
                        "requires PKCE"
                    };
                    f.fail(
                        format!("Pocket ID's client \"{cname}\" {why}, but login method \"{name}\" sends no PKCE: Pocket ID refuses every login"),
                        format!("turn on PKCE in Access (Settings → Authentication → {name} → PKCE; API field config.pkce_enabled)"),
                    );
                } else if access && !required {
                    f.warn(
                        format!("login method \"{name}\" uses PKCE, but Pocket ID's client \"{cname}\" does not require it"),
                        enforce,
                    );
                } else if !access {
                    f.warn(
                        format!("PKCE is off in login method \"{name}\" and on Pocket ID's client \"{cname}\""),
                        format!("turn on PKCE in Access (Settings → Authentication → {name} → PKCE), then {enforce}"),
                    );
                }
                Ok("PKCE is on in Access and required by Pocket ID".into())
            }
        }
    }

    /// The hosts (site, Pocket ID) with the tunnel each is routed to, if any.
    fn routed(&self, cf: &Cf) -> Vec<(String, Option<String>)> {
        cf.dns
            .iter()
            .map(|(host, dns)| {
                let target = dns
                    .as_ref()
                    .ok()
                    .and_then(|d| d.as_ref())
                    .and_then(|(_, records)| {
                        records
                            .iter()
                            .find(|r| r.kind.eq_ignore_ascii_case("CNAME"))
                            .and_then(|r| {
                                r.content
                                    .to_ascii_lowercase()
                                    .strip_suffix(".cfargotunnel.com")
                                    .map(str::to_string)
                            })
                    });
                (host.clone(), target)
            })
            .collect()
    }

    fn tunnel(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf()?;
        let tunnels = match &cf.tunnels {
            Ok(t) => t,
            Err(e) => {
                cf_problem(f, e);
                return Ok(String::new());
            }
        };
        f.detail("tunnels_read", tunnels.len());
        let aud = covering(self.config, cf).and_then(|a| a.aud.clone());
        let team = self.team_domain();
        let mut serving = Vec::new();
        for (host, dns_target) in self.routed(cf) {
            // The tunnel whose ingress names the host, else the DNS record's.
            let by_ingress = tunnels.iter().find(|t| ingress_for(t, &host).is_some());
            let by_dns = dns_target.as_ref().and_then(|id| {
                tunnels
                    .iter()
                    .find(|t| t.tunnel.id.eq_ignore_ascii_case(id))
            });
            // The DNS record's tunnel first: an old tunnel's stale rule may name the host too.
            let Some(t) = by_dns.or(by_ingress) else {
                continue;
            };
            let tname = text::one(&t.tunnel.name);
            let down =
                |t: &TunnelFacts| matches!(t.tunnel.status.as_deref(), Some("down" | "inactive"));
            // DNS sends the host to a dead tunnel while a live one has its rule: the
            // record is what is wrong, not the tunnel.
            if down(t)
                && let Some(live) = tunnels.iter().find(|o| {
                    o.tunnel.id != t.tunnel.id && !down(o) && ingress_for(o, &host).is_some()
                })
            {
                f.fail(
                    format!("{host}'s DNS record sends it to tunnel \"{tname}\", which is {}; tunnel \"{}\", which is up, has its public hostname", t.tunnel.status.as_deref().unwrap_or_default(), text::one(&live.tunnel.name)),
                    format!("repoint the CNAME {host} at {}.cfargotunnel.com (DNS → Records), or route the hostname with `cloudflared tunnel route dns`", live.tunnel.id),
                );
                continue;
            }
            serving.push(format!("{host} by \"{tname}\""));
            match t.tunnel.status.as_deref() {
                Some("down" | "inactive") => f.fail(
                    format!("tunnel \"{tname}\" serving {host} is {}: no cloudflared is connected{}", t.tunnel.status.as_deref().unwrap_or_default(), t.tunnel.conns_inactive_at.as_deref().map(|at| format!(" (since {})", text::one(at))).unwrap_or_default()),
                    format!("start cloudflared for tunnel \"{tname}\" on the origin (systemctl status cloudflared / docker logs); visitors get Cloudflare error 1033"),
                ),
                Some("degraded") => f.warn(
                    format!("tunnel \"{tname}\" serving {host} is degraded"),
                    format!("look at the connectors of \"{tname}\" (Networks → Tunnels → {tname}): restart the one whose connections are pending reconnect, and check the origin's network"),
                ),
                _ => {}
            }
            if let Err(e) = &t.connectors {
                cf_problem(f, e);
            }
            if let Ok(connectors) = &t.connectors {
                let live: usize = connectors
                    .iter()
                    .map(|c| {
                        c.conns
                            .iter()
                            .filter(|x| x.is_pending_reconnect != Some(true))
                            .count()
                    })
                    .sum();
                let pending: usize = connectors
                    .iter()
                    .map(|c| {
                        c.conns
                            .iter()
                            .filter(|x| x.is_pending_reconnect == Some(true))
                            .count()
                    })
                    .sum();
                if live == 0 && !matches!(t.tunnel.status.as_deref(), Some("down" | "inactive")) {
                    f.fail(
                        format!(
                            "tunnel \"{tname}\" serving {host} has no live connection to Cloudflare"
                        ),
                        format!("start or restart cloudflared for \"{tname}\" on the origin"),
                    );
                } else if pending > 0 && t.tunnel.status.as_deref() != Some("degraded") {
                    f.warn(
                        format!("tunnel \"{tname}\" has {pending} connection(s) pending reconnect"),
                        format!("restart the affected cloudflared of \"{tname}\" and check the origin's network"),
                    );
                }
            }
            match &t.config {
                Some(Ok(_)) => match ingress_for(t, &host) {
                    None => f.fail(
                        format!("tunnel \"{tname}\" has no public hostname for {host}: its catch-all rule answers"),
                        format!("add a public hostname {host} → the service's address to tunnel \"{tname}\" (Networks → Tunnels → {tname} → Public Hostname)"),
                    ),
                    Some(rule) => {
                        let access = rule.origin_request.as_ref().and_then(|o| o.get("access"));
                        if let Some(access) = access
                            && access.get("required").and_then(|v| v.as_bool()) == Some(true)
                        {
                            let tags: Vec<String> = access.get("audTag").and_then(|v| v.as_array()).map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_ascii_lowercase)).collect()).unwrap_or_default();
                            if let Some(aud) = &aud
                                && !tags.contains(&aud.to_ascii_lowercase())
                            {
                                f.fail(
                                    format!("tunnel \"{tname}\" checks Access tokens for {host} against other AUD tags than the application's {aud}"),
                                    format!("set the AUD tag of {host}'s Protect with Access setting to {aud} (Networks → Tunnels → {tname} → Public Hostname → {host} → Access)"),
                                );
                            }
                            let team_name = access.get("teamName").and_then(|v| v.as_str()).unwrap_or_default();
                            if let Some(team) = &team
                                && !team_name.is_empty()
                                && crate::cloudflare::team_domain(team_name) != *team
                            {
                                f.fail(
                                    format!("tunnel \"{tname}\" checks Access tokens for {host} of team {}, not {team}", text::one(team_name)),
                                    format!("set the team name of {host}'s Protect with Access setting to {}", team.trim_end_matches(".cloudflareaccess.com")),
                                );
                            }
                        }
                    }
                },
                Some(Err(e)) => cf_problem(f, e),
                None => f.detail(&format!("ingress_{host}"), "locally managed: cloudflared's config.yml is not readable through the API"),
            }
        }
        if serving.is_empty() {
            return Ok(
                "neither the site nor Pocket ID is served through a tunnel of this account".into(),
            );
        }
        Ok(format!("tunnels healthy: {}", text::list(&serving, ", ")))
    }

    fn dns(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf()?;
        let tunnels = cf.tunnels.as_ref().ok();
        let mut seen = Vec::new();
        for (host, dns) in &cf.dns {
            let (zone, records) = match dns {
                Ok(Some(z)) => z,
                Ok(None) => {
                    f.detail(&format!("zone_{host}"), "not a zone of this account");
                    continue;
                }
                Err(e) => {
                    cf_problem(f, e);
                    continue;
                }
            };
            let zone_name = text::one(&zone.name);
            let Some(record) = records.first() else {
                f.fail(
                    format!("zone {zone_name} has no DNS record for {host}"),
                    format!("add a proxied CNAME {host} → <tunnel id>.cfargotunnel.com (or let the tunnel's Public Hostname create it)"),
                );
                continue;
            };
            let content = text::one(&record.content);
            seen.push(format!("{host} {} {content}", record.kind));
            if record.proxied == Some(false) {
                f.fail(
                    format!("the DNS record of {host} is not proxied: requests bypass Cloudflare and Access"),
                    format!("turn on the proxy (orange cloud) for {host} in DNS → Records"),
                );
            }
            let target = record.content.to_ascii_lowercase();
            let Some(id) = target.strip_suffix(".cfargotunnel.com") else {
                continue;
            };
            let Some(tunnels) = tunnels else {
                continue;
            };
            let serving = tunnels
                .iter()
                .filter(|t| ingress_for(t, host).is_some())
                .max_by_key(|t| t.tunnel.status.as_deref() == Some("healthy"));
            match tunnels.iter().find(|t| t.tunnel.id.eq_ignore_ascii_case(id)) {
                None => f.fail(
                    format!("{host} points at tunnel {id}, which is not a tunnel of this account"),
                    format!("repoint the CNAME {host} at the tunnel that serves it ({}.cfargotunnel.com)", serving.map(|t| t.tunnel.id.as_str()).unwrap_or("<tunnel id>")),
                ),
                Some(t) => {
                    // The record's tunnel has no rule for the host (its configuration was
                    // read), or is down while a healthy tunnel has one: the record points
                    // at the wrong tunnel.
                    let target_lacks_rule =
                        matches!(&t.config, Some(Ok(_))) && ingress_for(t, host).is_none();
                    let down = |t: &TunnelFacts| {
                        matches!(t.tunnel.status.as_deref(), Some("down" | "inactive"))
                    };
                    if let Some(s) = serving
                        && s.tunnel.id != t.tunnel.id
                        && (target_lacks_rule || (down(t) && !down(s)))
                    {
                        let why = if target_lacks_rule {
                            "which has no public hostname for it".to_string()
                        } else {
                            format!("which is {}", t.tunnel.status.as_deref().unwrap_or_default())
                        };
                        f.fail(
                            format!("{host} points at tunnel \"{}\", {why}; its public hostname is served by tunnel \"{}\"", text::one(&t.tunnel.name), text::one(&s.tunnel.name)),
                            format!("repoint the CNAME {host} at {}.cfargotunnel.com (DNS → Records), or route the hostname with `cloudflared tunnel route dns`", s.tunnel.id),
                        );
                    }
                }
            }
        }
        if seen.is_empty() {
            return Ok("no DNS record of the site or Pocket ID is in this account's zones".into());
        }
        Ok(format!("DNS: {}", text::list(&seen, "; ")))
    }

    fn waf(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf()?;
        let idp_host = self.config.idp.host_str().unwrap_or_default();
        match &cf.bots {
            None => Err(format!(
                "skipped: {idp_host} is not in a zone of this account"
            )),
            Some(Err(e)) => {
                cf_problem(f, e);
                Ok(String::new())
            }
            Some(Ok(b)) if b.fight_mode == Some(true) => {
                f.warn(
                    format!("Bot Fight Mode is on for {idp_host}'s zone: it can challenge Access's own token requests to Pocket ID (\"Failed to exchange code for token\")"),
                    format!("turn Bot Fight Mode off for the zone (Security → Bots), or serve {idp_host} from a zone without it; a WAF skip rule cannot exempt it"),
                );
                Ok(String::new())
            }
            Some(Ok(_)) => Ok(format!("Bot Fight Mode is off for {idp_host}'s zone")),
        }
    }

    fn api_key(&self, f: &mut Findings) -> Result<String, String> {
        let pid = self.pid.ok_or_else(|| NO_PID.to_string())?;
        match &pid.clients {
            Ok(clients) => Ok(format!(
                "the admin API key reads Pocket ID ({} OIDC clients)",
                clients.len()
            )),
            Err(e) => {
                pid_problem(f, "its OIDC clients", e);
                Ok(String::new())
            }
        }
    }

    fn discovery_check(&self, f: &mut Findings) -> Result<String, String> {
        let disc = match (self.pid, &self.discovery) {
            (_, Some(d)) => *d,
            (Some(p), None) => {
                if let Err(e) = &p.discovery {
                    f.fail(
                        format!(
                            "Pocket ID's discovery document could not be read: {}",
                            crate::redact::terminal_safe(e)
                        ),
                        "see idp.discovery in `ssoprobe check` for the cause",
                    );
                }
                return Ok(String::new());
            }
            (None, None) => return Err(NO_PID.to_string()),
        };
        let idp = self.config.idp.as_str().trim_end_matches('/');
        let issuer = disc.issuer.clone().unwrap_or_default();
        if norm_url(&issuer) != norm_url(idp) {
            f.fail(
                format!(
                    "Pocket ID's issuer is {}, not its public URL {idp}",
                    text::one(&issuer)
                ),
                format!("set APP_URL={idp} in Pocket ID's environment and restart it"),
            );
        }
        let internal: Vec<&String> = [&disc.token_endpoint, &disc.jwks_uri]
            .into_iter()
            .flatten()
            .filter(|u| host_of(u) != host_of(idp) || !u.starts_with("https://"))
            .collect();
        if !internal.is_empty() {
            f.warn(
                format!("discovery advertises {} (INTERNAL_APP_URL), which Cloudflare cannot reach", text::list(&internal, " and ")),
                format!("in Access use {idp}/api/oidc/token and {idp}/.well-known/jwks.json, not discovery's internal URLs"),
            );
        }
        Ok(format!("discovery's issuer is {idp}"))
    }

    fn client(&self, f: &mut Findings) -> Result<String, String> {
        let pid = self.pid()?;
        let client = match &pid.client {
            None => {
                // The client would have been found by its callback in the list.
                if let Err(e @ ApiError::Truncated { .. }) = &pid.clients {
                    pid_problem(
                        f,
                        "its OIDC clients (to find the one whose callback is Access's)",
                        e,
                    );
                    return Ok(String::new());
                }
                return Err("skipped: which client? no Cloudflare login method names one, and no Pocket ID client lists an Access callback; pass --client-id or --cf-api-token-file".into());
            }
            Some(Err(ApiError::Answer { status: 404, .. })) => {
                let id = self
                    .idp
                    .and_then(|i| i.config.client_id.clone())
                    .or_else(|| self.config.client_id.clone())
                    .unwrap_or_default();
                let callback = self
                    .team_domain()
                    .map(|t| crate::cloudflare::callback_url(&t));
                let suggestion = pid
                    .clients
                    .as_ref()
                    .ok()
                    .and_then(|cs| access_client(cs, callback.as_deref()));
                f.fail(
                    format!("client id {} is not a Pocket ID OIDC client", text::one(&id)),
                    match suggestion {
                        Some(s) => format!("set the login method's App ID to {s}, the Pocket ID client whose callback is Access's (Settings → Authentication → Pocket ID)"),
                        None => "create an OIDC client for Cloudflare in Pocket ID (OIDC Clients → Add) and paste its Client ID into the login method's App ID".into(),
                    },
                );
                return Ok(String::new());
            }
            Some(Err(e)) => {
                pid_problem(f, "the OIDC client", e);
                return Ok(String::new());
            }
            Some(Ok(c)) => c,
        };
        let name = text::one(&client.name);
        f.detail("client", name.clone());
        match self.team_domain() {
            Some(team) => {
                let callback = crate::cloudflare::callback_url(&team);
                if client.callback_urls.is_empty() {
                    f.fail(
                        format!("Pocket ID's client \"{name}\" has no callback URL: Pocket ID refuses every login for it"),
                        format!("add {callback} to the client's Callback URLs (OIDC Clients → {name})"),
                    );
                } else if !client
                    .callback_urls
                    .iter()
                    .any(|u| callback_matches(u, &callback))
                {
                    let other_team = client
                        .callback_urls
                        .iter()
                        .find(|u| u.contains(".cloudflareaccess.com/") && !u.contains(&team));
                    let finding = match other_team {
                        Some(o) => format!(
                            "Pocket ID's client \"{name}\" lists the callback of another team ({}), not {callback}",
                            text::one(o)
                        ),
                        None => format!(
                            "Pocket ID's client \"{name}\" does not list Access's callback {callback} (it lists {})",
                            text::list(&client.callback_urls, ", ")
                        ),
                    };
                    f.fail(finding, format!("add exactly {callback} (no trailing slash) to the client's Callback URLs (OIDC Clients → {name})"));
                }
            }
            None => f.detail(
                "callback",
                "not checked: the team is unknown (pass --team or --cf-api-token-file)",
            ),
        }
        if client.requires_pushed_authorization_requests {
            f.fail(
                format!("Pocket ID's client \"{name}\" requires pushed authorization requests (PAR), which Access does not send"),
                format!("turn off \"Requires PAR\" on the client (OIDC Clients → {name})"),
            );
        }
        if !client.is_public {
            let secrets = client
                .credentials
                .as_ref()
                .map(|c| c.secrets.as_slice())
                .unwrap_or_default();
            let now = crate::timefmt::unix_now();
            let active: Vec<Option<i64>> = secrets
                .iter()
                .filter(|s| s.is_active != Some(false))
                .map(|s| {
                    s.expires_at
                        .as_deref()
                        .and_then(crate::timefmt::parse_rfc3339)
                })
                .filter(|exp| exp.is_none_or(|e| e > now))
                .collect();
            f.detail("active_secrets", active.len());
            if !secrets.is_empty() && active.is_empty() {
                f.fail(
                    format!("every secret of Pocket ID's client \"{name}\" has expired: Access's code exchange gets invalid_client"),
                    format!("create a new client secret (OIDC Clients → {name} → Client secrets) and paste it into the Access login method's Client secret"),
                );
            } else if !active.is_empty()
                && active
                    .iter()
                    .all(|e| e.is_some_and(|e| e - now < EXPIRY_WARN_DAYS * 86_400))
            {
                let days = active
                    .iter()
                    .flatten()
                    .max()
                    .map(|e| (e - now) / 86_400)
                    .unwrap_or(0);
                f.warn(
                    format!("the last active secret of Pocket ID's client \"{name}\" expires in {days} days"),
                    format!("create a new secret (OIDC Clients → {name}) and paste it into Access before the old one expires"),
                );
            }
        }
        if client.requires_reauthentication {
            f.warn(
                format!("Pocket ID's client \"{name}\" requires re-authentication: every Access login asks for the passkey again"),
                format!("turn off \"Requires re-authentication\" on the client (OIDC Clients → {name}) unless that is intended"),
            );
        }
        Ok(format!(
            "Pocket ID's client \"{name}\" lists Access's callback"
        ))
    }

    fn user(&self, f: &mut Findings) -> Result<String, String> {
        let pid = self.pid()?;
        let Some(email) = self.email else {
            return Err(
                "skipped: which user? pass --user EMAIL (the monitoring user) or --passkey FILE"
                    .into(),
            );
        };
        let user = match &pid.user {
            Some(Ok(Some(u))) => u,
            Some(Ok(None)) => {
                f.fail(
                    format!("Pocket ID has no user with the e-mail address {email}"),
                    format!("create the monitoring user {email} (Users → Add) and enrol a passkey with `ssoprobe enroll`"),
                );
                return Ok(String::new());
            }
            Some(Err(e)) => {
                pid_problem(f, "its users", e);
                return Ok(String::new());
            }
            None => return Err("skipped: the user was not read".into()),
        };
        let uname = text::one(&user.username);
        if user.disabled {
            f.fail(
                format!("Pocket ID user {uname} ({email}) is disabled"),
                format!("enable the user (Users → {uname} → Enable)"),
            );
        }
        match &pid.passkeys {
            Some(Ok(p)) if p.is_empty() => f.fail(
                format!("Pocket ID user {uname} has no passkey"),
                "enrol one with `ssoprobe enroll --api-key-file … --user EMAIL --out FILE`",
            ),
            Some(Ok(p)) => f.detail("passkeys", p.len()),
            Some(Err(e)) => pid_problem(f, "the user's passkeys", e),
            None => {}
        }
        if let Some(Ok(client)) = &pid.client
            && client.is_group_restricted
        {
            let allowed: BTreeSet<&str> = client
                .allowed_user_groups
                .iter()
                .map(|g| g.id.as_str())
                .collect();
            if !user
                .user_groups
                .iter()
                .any(|g| allowed.contains(g.id.as_str()))
            {
                let names: Vec<String> = client
                    .allowed_user_groups
                    .iter()
                    .map(|g| text::one(&g.friendly_name))
                    .collect();
                f.fail(
                    format!(
                        "Pocket ID's client \"{}\" admits only {}, and user {uname} is in none of them: Pocket ID answers \"You are not allowed to access this service\"",
                        text::one(&client.name),
                        if names.is_empty() { "members of no group".to_string() } else { format!("the groups {}", text::list(&names, ", ")) }
                    ),
                    format!(
                        "add {uname} to {} (User Groups → the group → Users), or allow one of the user's groups on the client (OIDC Clients → {} → Allowed user groups)",
                        names.first().map_or_else(|| "an allowed group".to_string(), |n| format!("the group {n}")),
                        text::one(&client.name)
                    ),
                );
            }
        }
        Ok(format!(
            "Pocket ID user {uname} is enabled, has a passkey and may use the client"
        ))
    }
}

/// The ingress rule of tunnel `t` for `host`, from its remote configuration.
fn ingress_for<'a>(t: &'a TunnelFacts, host: &str) -> Option<&'a Ingress> {
    let config = t.config.as_ref()?.as_ref().ok()?.config.as_ref()?;
    config.ingress.iter().find(|r| {
        r.hostname
            .as_deref()
            .is_some_and(|h| rules::covers(h, host, "/").is_some())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_match_exactly_or_by_pattern() {
        let cb = "https://xyz.cloudflareaccess.com/cdn-cgi/access/callback";
        assert!(callback_matches(cb, cb));
        assert!(!callback_matches(&format!("{cb}/"), cb));
        assert!(callback_matches(
            "https://*.cloudflareaccess.com/cdn-cgi/access/callback",
            cb
        ));
        assert!(!callback_matches("https://*/callback", cb));
        assert!(callback_matches("https://**/callback", cb));
        assert!(!callback_matches(&"*".repeat(600), cb));
        // Many stars do not make it backtrack.
        let hostile = format!("{}x", "*a".repeat(200));
        assert!(!callback_matches(&hostile, &"a".repeat(500)));
        assert!(callback_matches("https://xyz.*.com/cdn-cgi/*/callback", cb));
        assert!(!callback_matches(
            "https://*/callback",
            "https://a/b/callback"
        ));
    }

    #[test]
    fn urls_compare_without_case_slash_or_default_port() {
        assert_eq!(
            norm_url("HTTPS://ID.example.com:443/authorize/"),
            norm_url("https://id.example.com/authorize")
        );
        assert_ne!(
            norm_url("https://id.example.com/oauth2/authorize"),
            norm_url("https://id.example.com/authorize")
        );
    }
}
