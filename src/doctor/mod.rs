//! `ssoprobe doctor`, and the `config.*` checks `check` runs beside the probe when API
//! credentials are configured: read Cloudflare's configuration (Access application,
//! policies, login method, tunnel, DNS) and Pocket ID's (OIDC client, monitoring user,
//! discovery) through their APIs, read-only, and name every mismatch between them with
//! its fix — before a user meets it as a failed login.
//!
//! Only GET requests are sent: the two API clients here have no other method.
//!
//! Laid out like `checks/`: the reads (`read_cf.rs` through `cfapi.rs`, `read_pid.rs`
//! through `pocketid::api`) gather facts into `Cf` and `Pid`; the judgements, one
//! file per family of `config.*` checks (`access.rs`, `login_method.rs`, `tunnel.rs`,
//! `pocket_id.rs`), are methods of `Facts` dispatched by `Facts::check`; policy
//! evaluation is `rules.rs`, the API's shapes `model.rs`, cutting quoted lists `text.rs`.

pub mod cfapi;
pub mod model;
pub mod rules;
pub mod text;

mod access;
mod login_method;
mod pocket_id;
mod read_cf;
mod read_pid;
mod tunnel;

pub use read_cf::idp_from_cloudflare;

use crate::config::Config;
use crate::finding::{CheckResult, Findings};
use crate::http::Http;
use crate::pocketid::api::ApiError;
use crate::pocketid::oidc::Discovery;
use crate::text::server_text;
use cfapi::CfError;
use model::{
    App, BotManagement, Connector, DnsRecord, Group, IdentityProvider, Organization, PidClient,
    PidUser, Policy, TokenStatus, Tunnel, TunnelConfiguration, Zone,
};
use read_cf::{idp_unread_by, pick_idp, read_cloudflare};
use read_pid::{read_pocket_id, read_pocket_id_base};
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
    /// The checks of Cloudflare's configuration alone: not part of a run behind
    /// another gateway.
    pub const CLOUDFLARE: &[&str] = &[
        TOKEN,
        TEAM,
        APP,
        POLICY,
        LOGIN_METHOD,
        SCOPES,
        TUNNEL,
        DNS,
        WAF,
    ];
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

/// Whether reading the OIDC clients proved the admin API key: a list too long to read
/// whole proves it as well as a whole one.
fn key_proven(clients: &Result<Vec<serde_json::Value>, ApiError>) -> bool {
    matches!(clients, Ok(_) | Err(ApiError::Truncated { .. }))
}

/// The configuration checks of one run, in report order.
/// `idp_known`: whether Pocket ID's URL is known (without it, its side is not read).
pub async fn run(
    config: &Config,
    http: &Http,
    idp_known: bool,
    relying: Option<&Relying>,
) -> Vec<CheckResult> {
    // The site's gateway: the run's (found on the chain), else --gateway's. Behind
    // oauth2-proxy there is no Cloudflare configuration to read, and its client's
    // callback is oauth2-proxy's.
    let proxied = match relying {
        Some(r) => Some(r.clone()),
        None if config.gateway == Some(crate::config::Gateway::OAuth2Proxy) => {
            let mut callback = config.service.clone();
            callback.set_path(&format!("{}/callback", crate::oauth2proxy::DEFAULT_PREFIX));
            callback.set_query(None);
            Some(Relying {
                gateway: crate::config::Gateway::OAuth2Proxy,
                callback: callback.to_string(),
                client_id: None,
            })
        }
        None => None,
    }
    .filter(|r| r.gateway == crate::config::Gateway::OAuth2Proxy);
    let mut checks = run_for(config, http, idp_known, proxied.as_ref()).await;
    if proxied.is_some() {
        checks.retain(|c| !ids::CLOUDFLARE.contains(&c.id.as_str()));
    }
    checks
}

/// The gateway whose client the Pocket ID checks judge, and its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relying {
    /// The gateway in front of the site.
    pub gateway: crate::config::Gateway,
    /// The callback it sends to Pocket ID as `redirect_uri`.
    pub callback: String,
    /// The client id it sends, when the run saw it.
    pub client_id: Option<String>,
}

async fn run_for(
    config: &Config,
    http: &Http,
    idp_known: bool,
    relying: Option<&Relying>,
) -> Vec<CheckResult> {
    // Pocket ID's side needs its URL, and its admin key goes only to a Pocket ID the
    // operator named: otherwise its checks skip, saying how to run them.
    let withheld = if !idp_known {
        Some(IDP_NOT_KNOWN.to_string())
    } else if config.doctor.api_key.is_some() && !config.idp_named() {
        Some(config.idp_not_named("the Pocket ID API key"))
    } else {
        None
    };
    let Some(why) = withheld else {
        return crate::http::without_cookies(run_without_cookies(config, http, true, relying))
            .await
            .0;
    };
    let mut without = config.clone();
    without.doctor.api_key = None;
    let (mut checks, unread_by) =
        crate::http::without_cookies(run_without_cookies(&without, http, idp_known, relying)).await;
    let why = if idp_known {
        why
    } else {
        idp_unknown_reason(config, unread_by)
    };
    for c in &mut checks {
        if c.summary == NO_PID || c.summary == IDP_NOT_KNOWN {
            *c = CheckResult::skip(&c.id, why.clone());
        }
    }
    checks
}

/// Marks the checks that need Pocket ID's URL when it is not known; [`run`] gives them
/// the reason ([`idp_unknown_reason`]).
const IDP_NOT_KNOWN: &str = "skipped: Pocket ID's URL is unknown";

/// Why the checks that need Pocket ID's URL skip without it. `check` finds it on the
/// login chain; doctor reads it from the site's application's login method, and
/// `unread_by`, the check whose finding kept it from that, explains the skip.
fn idp_unknown_reason(config: &Config, unread_by: Option<&str>) -> String {
    if !config.doctor.only {
        return crate::finding::IDP_UNKNOWN.to_string();
    }
    let how = "Pocket ID's URL comes from the Auth URL of the site's application's one OpenID Connect login method (or give --idp https://id.example.com, its APP_URL)";
    match unread_by {
        Some(id) => format!("skipped: follows from {id}: {how}"),
        None => format!("{IDP_NOT_KNOWN}: {how}"),
    }
}

/// [`run`], its API requests without the run's cookies; without Pocket ID's URL, also
/// the check whose finding explains why Cloudflare's configuration did not name it.
async fn run_without_cookies(
    config: &Config,
    http: &Http,
    idp_known: bool,
    relying: Option<&Relying>,
) -> (Vec<CheckResult>, Option<&'static str>) {
    let doctor = &config.doctor;
    // Behind oauth2-proxy, Cloudflare's configuration is not the site's.
    let doctor_cf = if relying.is_some() {
        None
    } else {
        doctor.cf.as_ref()
    };
    let (cf, pid_base) = futures::join!(
        async {
            match doctor_cf {
                Some(settings) => Some(read_cloudflare(config, http, settings, idp_known).await),
                None => None,
            }
        },
        async {
            // Without its URL there is no Pocket ID to ask.
            if idp_known {
                read_pocket_id_base(config, http).await
            } else {
                Err(IDP_NOT_KNOWN.to_string())
            }
        },
    );
    // The client id: the login method's, else the one given, else found by its callback.
    let access_idp = cf.as_ref().and_then(|cf| pick_idp(config, cf, idp_known));
    let client_id = access_idp
        .as_ref()
        .and_then(|i| i.config.client_id.clone())
        .or_else(|| config.client_id.clone())
        .or_else(|| relying.and_then(|r| r.client_id.clone()));
    let user_email = doctor.user.clone().or_else(|| {
        config
            .passkey
            .as_ref()
            .and_then(|(file, _)| file.email.clone())
    });
    // The gateway's callback: oauth2-proxy's, or Access's for this team when the team
    // is known.
    let callback = match relying {
        Some(r) => Some(r.callback.clone()),
        None => cf
            .as_ref()
            .and_then(|cf| cf.org.as_ref().ok())
            .and_then(|o| o.auth_domain.clone())
            .or_else(|| config.team_domain.clone())
            .map(|t| crate::cloudflare::callback_url(&t.to_ascii_lowercase())),
    };
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
        relying,
        idp_known,
        cf: cf.as_ref(),
        pid: pid.as_ref(),
        idp: access_idp.as_ref(),
        email: user_email.as_deref(),
        discovery: pid_discovery(pid.as_ref()),
    };
    let unread_by = match (idp_known, &cf) {
        (false, Some(cf)) => idp_unread_by(config, cf),
        _ => None,
    };
    (
        ids::ALL.iter().map(|id| facts.check(id)).collect(),
        unread_by,
    )
}

fn pid_discovery(pid: Option<&Pid>) -> Option<&Discovery> {
    pid.and_then(|p| p.discovery.as_ref().ok())
}

// ---------------------------------------------------------------------------------
// The checks.

struct Facts<'a> {
    config: &'a Config,
    /// The gateway whose client is judged, when it is not Access.
    relying: Option<&'a Relying>,
    /// Whether `config.idp` is Pocket ID's URL (else the site's, standing in).
    idp_known: bool,
    cf: Option<&'a Cf>,
    pid: Option<&'a Pid>,
    idp: Option<&'a IdentityProvider>,
    email: Option<&'a str>,
    discovery: Option<&'a Discovery>,
}

const NO_CF: &str = "skipped: no Cloudflare API token (pass --cf-api-token-file and, for a token with several accounts, --cf-account-id)";
const NO_PID: &str = "skipped: no Pocket ID admin API key (pass --api-key-file)";

/// Records a failed API read on `f`: a missing permission or a route the API does not
/// offer is a warning naming what it needs, no answer a failure to run, anything else a
/// failure.
fn cf_problem(f: &mut Findings, e: &CfError) {
    match e {
        CfError::Denied { .. } | CfError::Unavailable { .. } => {
            f.warn(format!("cannot check: {e}"), e.hint())
        }
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
        if !key_proven(&pid.clients) {
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
        server_text(&name)
    }

    /// The gateway whose client is judged, in a sentence.
    fn who(&self) -> &'static str {
        match self.relying {
            Some(r) => r.gateway.who(),
            None => "Access",
        }
    }

    fn team_domain(&self) -> Option<String> {
        self.cf
            .and_then(|cf| cf.org.as_ref().ok())
            .and_then(|o| o.auth_domain.clone())
            .map(|d| d.to_ascii_lowercase())
            .or_else(|| self.config.team_domain.clone())
    }
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
