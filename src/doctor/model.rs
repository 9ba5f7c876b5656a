//! The fields of Cloudflare's and Pocket ID's configuration objects that `doctor`
//! compares. Every field is optional or defaulted and unknown fields are ignored: the
//! APIs add fields, and a missing one is a finding, not a parse error.

use serde::Deserialize;
use serde_json::Value;

/// `GET /accounts`.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    /// 32 hex.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// `GET /user/tokens/verify`.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenStatus {
    /// `active`, `disabled` or `expired`.
    #[serde(default)]
    pub status: String,
    /// RFC 3339, when the token expires.
    #[serde(default)]
    pub expires_on: Option<String>,
}

/// The Zero Trust organization.
#[derive(Debug, Clone, Deserialize)]
pub struct Organization {
    /// The team domain, `xyz.cloudflareaccess.com`.
    #[serde(default)]
    pub auth_domain: Option<String>,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
}

/// An Access login method (identity provider).
#[derive(Debug, Clone, Deserialize)]
pub struct IdentityProvider {
    /// UUID.
    pub id: String,
    /// Shown on the login page.
    #[serde(default)]
    pub name: String,
    /// `oidc` for generic OpenID Connect.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Its settings.
    #[serde(default)]
    pub config: IdpConfig,
}

/// A generic-OIDC login method's settings (the client secret is never read).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IdpConfig {
    /// Pocket ID's client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Auth URL.
    #[serde(default)]
    pub auth_url: Option<String>,
    /// Token URL.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Certificate URL.
    #[serde(default)]
    pub certs_url: Option<String>,
    /// Proof Key for Code Exchange.
    #[serde(default)]
    pub pkce_enabled: Option<bool>,
    /// OIDC scopes.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Extra claims copied into the identity.
    #[serde(default)]
    pub claims: Option<Vec<String>>,
    /// The claim the e-mail address comes from.
    #[serde(default)]
    pub email_claim_name: Option<String>,
}

/// An Access application.
#[derive(Debug, Clone, Deserialize)]
pub struct App {
    /// UUID.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// `self_hosted`, `saas`, …
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Primary host and path.
    #[serde(default)]
    pub domain: Option<String>,
    /// Public hostnames and paths (supersede `self_hosted_domains`).
    #[serde(default)]
    pub destinations: Option<Vec<Destination>>,
    /// Deprecated list of host/paths.
    #[serde(default)]
    pub self_hosted_domains: Option<Vec<String>>,
    /// The audience tag.
    #[serde(default)]
    pub aud: Option<String>,
    /// The login methods offered (empty: all of the account's).
    #[serde(default)]
    pub allowed_idps: Option<Vec<String>>,
    /// Instant Auth.
    #[serde(default)]
    pub auto_redirect_to_identity: Option<bool>,
    /// Session length.
    #[serde(default)]
    pub session_duration: Option<String>,
    /// Its policies, inline (a reusable one may be only a link: id and precedence).
    #[serde(default)]
    pub policies: Option<Vec<Policy>>,
}

impl App {
    /// Whether one of its inline policies is a Bypass for everyone.
    pub fn bypasses_everyone(&self) -> bool {
        self.policies
            .as_deref()
            .is_some_and(|p| super::rules::bypass_for_everyone(p).is_some())
    }
}

/// One destination of an application.
#[derive(Debug, Clone, Deserialize)]
pub struct Destination {
    /// `public`, `private`, …
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Host and path of a public destination.
    #[serde(default)]
    pub uri: Option<String>,
}

impl App {
    /// The host/path patterns this application covers.
    pub fn patterns(&self) -> Vec<String> {
        if let Some(d) = &self.destinations
            && !d.is_empty()
        {
            return d
                .iter()
                .filter(|d| d.kind.as_deref().is_none_or(|k| k == "public"))
                .filter_map(|d| d.uri.clone())
                .collect();
        }
        if let Some(list) = &self.self_hosted_domains
            && !list.is_empty()
        {
            return list.clone();
        }
        self.domain.iter().cloned().collect()
    }
}

/// An Access policy (app-scoped or reusable).
#[derive(Debug, Clone, Deserialize)]
pub struct Policy {
    /// UUID.
    #[serde(default)]
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// `allow`, `deny`, `non_identity` (Service Auth) or `bypass`.
    #[serde(default)]
    pub decision: String,
    /// Order within the application.
    #[serde(default)]
    pub precedence: Option<i64>,
    /// OR.
    #[serde(default)]
    pub include: Vec<Value>,
    /// AND.
    #[serde(default)]
    pub require: Vec<Value>,
    /// NOT.
    #[serde(default)]
    pub exclude: Vec<Value>,
    /// Temporary authentication (human approval).
    #[serde(default)]
    pub approval_required: Option<bool>,
    /// The user must type a reason.
    #[serde(default)]
    pub purpose_justification_required: Option<bool>,
    /// Browser isolation.
    #[serde(default)]
    pub isolation_required: Option<bool>,
}

/// An Access group.
#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    /// UUID.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// OR.
    #[serde(default)]
    pub include: Vec<Value>,
    /// AND.
    #[serde(default)]
    pub require: Vec<Value>,
    /// NOT.
    #[serde(default)]
    pub exclude: Vec<Value>,
}

/// A Cloudflare Tunnel.
#[derive(Debug, Clone, Deserialize)]
pub struct Tunnel {
    /// UUID; the DNS target is `<id>.cfargotunnel.com`.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// `healthy`, `degraded`, `down` or `inactive`.
    #[serde(default)]
    pub status: Option<String>,
    /// `cloudflare` (remotely managed) or `local`.
    #[serde(default)]
    pub config_src: Option<String>,
    /// When its last connection went away.
    #[serde(default)]
    pub conns_inactive_at: Option<String>,
}

/// A cloudflared instance connected for a tunnel.
#[derive(Debug, Clone, Deserialize)]
pub struct Connector {
    /// cloudflared's version.
    #[serde(default)]
    pub version: Option<String>,
    /// Its connections to Cloudflare's edge.
    #[serde(default)]
    pub conns: Vec<EdgeConnection>,
}

/// One connection of a connector.
#[derive(Debug, Clone, Deserialize)]
pub struct EdgeConnection {
    /// The data centre.
    #[serde(default)]
    pub colo_name: Option<String>,
    /// Disconnected but still tracked.
    #[serde(default)]
    pub is_pending_reconnect: Option<bool>,
}

/// A remotely managed tunnel's configuration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TunnelConfiguration {
    /// The configuration itself.
    #[serde(default)]
    pub config: Option<TunnelConfig>,
}

/// `config` of a tunnel configuration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TunnelConfig {
    /// Ordered rules, first match wins.
    #[serde(default)]
    pub ingress: Vec<Ingress>,
}

/// One ingress rule.
#[derive(Debug, Clone, Deserialize)]
pub struct Ingress {
    /// The public hostname (none: the catch-all).
    #[serde(default)]
    pub hostname: Option<String>,
    /// A path regular expression.
    #[serde(default)]
    pub path: Option<String>,
    /// Where it goes.
    #[serde(default)]
    pub service: Option<String>,
    /// Per-rule settings.
    #[serde(rename = "originRequest", default)]
    pub origin_request: Option<Value>,
}

/// A zone.
#[derive(Debug, Clone, Deserialize)]
pub struct Zone {
    /// 32 hex.
    pub id: String,
    /// `example.com`.
    #[serde(default)]
    pub name: String,
}

/// A DNS record.
#[derive(Debug, Clone, Deserialize)]
pub struct DnsRecord {
    /// Full name.
    #[serde(default)]
    pub name: String,
    /// `A`, `CNAME`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Target.
    #[serde(default)]
    pub content: String,
    /// Orange-clouded.
    #[serde(default)]
    pub proxied: Option<bool>,
}

/// A zone's bot settings.
#[derive(Debug, Clone, Deserialize)]
pub struct BotManagement {
    /// Bot Fight Mode.
    #[serde(default)]
    pub fight_mode: Option<bool>,
}

/// Pocket ID's `OidcClientWithAllowedUserGroupsDto`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PidClient {
    /// Client id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Allowed redirect URIs (patterns allowed).
    #[serde(rename = "callbackURLs", default)]
    pub callback_urls: Vec<String>,
    /// Public client (no secret, PKCE mandatory).
    #[serde(default)]
    pub is_public: bool,
    /// PKCE required.
    #[serde(default)]
    pub pkce_enabled: bool,
    /// PAR required.
    #[serde(default)]
    pub requires_pushed_authorization_requests: bool,
    /// A fresh passkey on every authorization.
    #[serde(default)]
    pub requires_reauthentication: bool,
    /// Secrets (prefixes and dates only).
    #[serde(default)]
    pub credentials: Option<PidCredentials>,
    /// Only members of `allowed_user_groups` may log in.
    #[serde(default)]
    pub is_group_restricted: bool,
    /// The groups allowed.
    #[serde(default)]
    pub allowed_user_groups: Vec<PidGroup>,
}

/// A client's credentials.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PidCredentials {
    /// Its secrets.
    #[serde(default)]
    pub secrets: Vec<PidSecret>,
}

/// One client secret (never the secret itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PidSecret {
    /// Accepted now.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// RFC 3339, or null for never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A user group (minimal form).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PidGroup {
    /// UUID.
    pub id: String,
    /// The name in the `groups` claim.
    #[serde(default)]
    pub name: String,
    /// The name shown in the UI.
    #[serde(default)]
    pub friendly_name: String,
}

/// Pocket ID's `UserDto`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PidUser {
    /// UUID.
    pub id: String,
    /// Username.
    #[serde(default)]
    pub username: String,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Disabled.
    #[serde(default)]
    pub disabled: bool,
    /// Groups.
    #[serde(default)]
    pub user_groups: Vec<PidGroup>,
    /// Whether the e-mail address is verified (oauth2-proxy refuses unverified ones).
    #[serde(default)]
    pub email_verified: Option<bool>,
}
