//! The embedded lab: a simulated Cloudflare Access edge, Pocket ID and the protected
//! origin, served over HTTPS on loopback with a throw-away CA, so that `ssoprobe demo`
//! and the end-to-end tests exercise the real checker against something that answers
//! like the real servers (see `reference/cloudflare-access.md` and
//! `reference/pocket-id.md`). Faults break it the way real deployments break;
//! variants give Cloudflare another face (markup, header case and order, link
//! shapes, cookie attributes) so that checks cannot lean on one.
//!
//! The checker reaches the lab only through the routing flags a user has
//! ([`Lab::route_args`]) and the CA file ([`Lab::ca_pem`]). Pocket ID starts empty,
//! like a fresh instance with `STATIC_API_KEY` set: users and passkeys are enrolled
//! through its admin API with [`Lab::static_api_key`]. Access accepts one service
//! token, [`Lab::service_token`].
//!
//! The gateway in front of the site is Cloudflare Access by default; with
//! [`Gateway::Oauth2Proxy`] it is oauth2-proxy instead (`reference/oauth2-proxy.md`),
//! with its own client at Pocket ID ([`O2P_CLIENT_ID`]). Each fault belongs to one
//! gateway ([`Fault::gateway`]).

mod access;
mod apilog;
mod cfapi;
mod delay;
mod edge;
mod keys;
mod o2p;
mod origin;
mod pocketid;
mod relying;
mod server;
mod tls;
mod wire;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub use apilog::ApiRequest;

/// The protected site.
pub const SERVICE_HOST: &str = "service.example.com";
/// The Zero Trust team name.
pub const TEAM: &str = "xyz";
/// The Access team domain.
pub const TEAM_HOST: &str = "xyz.cloudflareaccess.com";
/// Pocket ID.
pub const IDP_HOST: &str = "id.example.com";
/// The Pocket ID client Cloudflare Access uses (Pocket ID client ids are UUIDs).
pub const CLIENT_ID: &str = "2f0408cf-25d7-4daa-9fb9-7b072516a681";
/// The Access application's audience tag.
pub const AUD: &str = "2b908b8615d3590ac9e46d606f2fd778750e496e57ee106291aa5ad570aa069d";
/// The callback Access sends every identity provider back to.
pub const CALLBACK_URL: &str = "https://xyz.cloudflareaccess.com/cdn-cgi/access/callback";
/// The monitoring user the lab expects: enrolled through Pocket ID's admin API, put
/// in Pocket ID group `probers` by the lab when it is created (a lab convenience, so
/// that a policy on the `groups` claim has a group to match).
pub const PROBE_EMAIL: &str = "probe@example.com";
/// Cloudflare's API (v4), which the lab serves a read-only subset of.
pub const CF_API_HOST: &str = "api.cloudflare.example.com";
/// The base URL of the lab's Cloudflare API.
pub const CF_API_URL: &str = "https://api.cloudflare.example.com/client/v4";
/// The Cloudflare account that holds the team, the tunnels and the zone.
pub const ACCOUNT_ID: &str = "9a7806061c88ada191ed06f989cc3dac";

/// The client oauth2-proxy uses at Pocket ID, when the lab's gateway is oauth2-proxy.
pub const O2P_CLIENT_ID: &str = "6b1d3f0e-8c4a-4e2b-9f71-5a0c2d8e4b39";
/// oauth2-proxy's callback (`--redirect-url`), which its Pocket ID client lists.
pub const O2P_CALLBACK_URL: &str = "https://service.example.com/oauth2/callback";

/// What stands in front of service.example.com and sends anonymous visitors to log in
/// at Pocket ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Gateway {
    /// Cloudflare Access, through its team domain (the default).
    #[default]
    Access,
    /// oauth2-proxy v7 (provider `oidc`) behind a TLS reverse proxy, with its own
    /// client at Pocket ID.
    Oauth2Proxy,
}

impl Gateway {
    /// Every gateway, the default first.
    pub const ALL: [Gateway; 2] = [Gateway::Access, Gateway::Oauth2Proxy];

    /// The name `--gateway` takes.
    pub fn name(self) -> &'static str {
        match self {
            Gateway::Access => "access",
            Gateway::Oauth2Proxy => "oauth2-proxy",
        }
    }

    /// One line: what runs in front of the site.
    pub fn description(self) -> &'static str {
        match self {
            Gateway::Access => "Cloudflare Access on Cloudflare's edge, the site behind a tunnel",
            Gateway::Oauth2Proxy => {
                "oauth2-proxy (provider oidc, PKCE S256) behind a TLS reverse proxy, the site as its upstream"
            }
        }
    }
}

impl fmt::Display for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Gateway {
    type Err = UnknownGateway;

    fn from_str(s: &str) -> Result<Gateway, UnknownGateway> {
        Gateway::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| UnknownGateway(s.to_string()))
    }
}

/// A gateway name the lab does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown gateway `{0}`; the lab knows: {names}",
    names = Gateway::ALL.map(Gateway::name).join(", ")
)]
pub struct UnknownGateway(pub String);

/// A way the lab breaks, as real deployments break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The origin answers anonymous requests with 200.
    SitePublic,
    /// Access redirects to another team's domain.
    WrongTeam,
    /// Bot protection answers 403 `cf-mitigated: challenge`.
    Challenge,
    /// The team login answers the HTML sign-in page.
    NoInstantAuth,
    /// Access's Auth URL points at a wrong path on the IdP.
    WrongAuthUrl,
    /// Access sends no PKCE; the Pocket ID client requires it.
    NoPkce,
    /// Access's client id is not a Pocket ID client.
    UnknownClient,
    /// The Access callback URL is missing from the client.
    CallbackNotRegistered,
    /// Discovery's issuer is `http://id.example.com`.
    IssuerMismatch,
    /// Token and JWKS URLs in discovery use an internal host.
    InternalUrl,
    /// The JWKS has no keys.
    JwksEmpty,
    /// The token endpoint answers 404.
    Token404,
    /// The token endpoint answers a Cloudflare challenge.
    TokenChallenge,
    /// Pocket ID answers 502.
    IdpDown,
    /// Pocket ID stalls past any timeout.
    IdpSlow,
    /// The service certificate expires in 10 days.
    CertExpiring,
    /// The Pocket ID certificate has expired.
    CertExpired,
    /// Every passkey is deleted at Pocket ID right after it is registered.
    PasskeyRevoked,
    /// Users are disabled after they enrolled: passkey logins are refused.
    UserDisabled,
    /// The Access client is restricted to a group the user is not in.
    UserNotAllowed,
    /// Access holds a wrong client secret for Pocket ID.
    AccessBadSecret,
    /// Access cannot fetch its Certificate URL.
    AccessJwksUnreachable,
    /// The application's policy does not include the user.
    AccessPolicyDeny,
    /// After login the site answers 530 / Cloudflare error 1033.
    TunnelDown,
    /// After login cloudflared answers 502: the local service is down.
    OriginDown,
    /// Pocket ID checks passkey logins against another RP ID than its public host.
    WrongRpId,
    /// The application has no Service Auth policy.
    NoServiceAuth,
    /// Instant Auth is off and the Pocket ID button goes back through the team domain.
    IdpChooserViaTeam,
    /// Access sends its callback with a trailing slash; Pocket ID refuses it.
    CallbackTrailingSlash,
    /// The application admits only service tokens: anonymous requests get 403.
    ServiceAuthOnly,
    /// Managed OAuth is on: non-browser requests get 401 with a Bearer challenge.
    ManagedOauth,
    /// Managed OAuth is on and Access answers 401 to browsers too.
    ManagedOauthEveryone,
    /// Access's application tokens are issued 10 minutes in the future.
    ClockSkew,
    /// A WAF rule challenges Access's own requests to Pocket ID's token endpoint.
    TokenBlockedForAccess,
    /// Access's Token URL points at another path on Pocket ID.
    TokenUrlWrong,
    /// A WAF rule challenges Access's own requests to Pocket ID's JWKS.
    JwksBlockedForAccess,
    /// The tunnel to Pocket ID is down: id.example.com answers 530 / error 1033.
    IdpBehindTunnelDown,
    /// After the login, Pocket ID's interaction continues on another host.
    InteractionElsewhere,
    /// Access's login method asks for scopes without `email`.
    ScopesWithoutEmail,
    /// Access's login method asks for a scope Pocket ID does not know.
    ScopeUnsupported,
    /// Access reads the e-mail address from claim `mail`.
    EmailClaimName,
    /// The monitoring user has no e-mail address in Pocket ID.
    UserinfoFails,
    /// The Allow policy needs a `groups` claim Access never asks for.
    GroupsClaimMissing,
    /// The Allow policy matches the `groups` claim against a group's display name.
    GroupsClaimDisplayName,
    /// Pocket ID refuses the login with an error text that carries markup and a script.
    ErrorTextMarkup,
    /// The Pocket ID client has no callback URL.
    ClientNoCallback,
    /// The Pocket ID client lists another team's callback.
    CallbackOtherTeam,
    /// The Pocket ID client requires pushed authorization requests.
    ParRequired,
    /// Pocket ID cannot write to its database: storing a login's interaction fails.
    IdpDatabaseReadonly,
    /// The Pocket ID client is public and Access's PKCE is off.
    PublicClientNoPkce,
    /// The Pocket ID client does not require PKCE.
    PkceNotEnforced,
    /// Every secret of the Pocket ID client has expired.
    SecretExpired,
    /// The Pocket ID client's only secret expires in 5 days.
    SecretExpiring,
    /// The Pocket ID client requires reauthentication.
    ReauthRequired,
    /// The application allows only GitHub as identity provider.
    AppHidesIdp,
    /// Instant Auth is on with every identity provider allowed.
    InstantAuthAmbiguous,
    /// The Allow policy requires the one-time PIN login method.
    PolicyLoginMethod,
    /// The Allow policy requires human approval.
    ApprovalRequired,
    /// A Bypass policy includes everyone: Access is not enforced.
    BypassEveryone,
    /// The site's tunnel is degraded: one connector is reconnecting.
    TunnelDegraded,
    /// The site's tunnel has no ingress rule for the site: cloudflared's catch-all
    /// answers an empty 404.
    IngressMissing,
    /// The tunnel routes the site, but the application answers 404 for its URL.
    Origin404,
    /// The tunnel checks Access tokens for another application.
    OriginAccessAud,
    /// The site's DNS record points at a dead tunnel.
    DnsNotTunnel,
    /// An Access application covers Pocket ID.
    IdpBehindAccess,
    /// The Cloudflare API token lacks Cloudflare Tunnel Read.
    CfTokenMissingPermission,
    /// The Cloudflare API answers 429 once per path.
    CfApiRateLimited,
    /// The Cloudflare API answers 429 to everything.
    CfApiRateLimitExhausted,
    /// The Cloudflare API token cannot list its accounts.
    CfTokenCannotListAccounts,
    /// The Cloudflare API does not offer the zone's Bot Management settings.
    CfBotManagementUnavailable,
    /// oauth2-proxy's callback is not registered at its Pocket ID client.
    O2pCallbackNotRegistered,
    /// oauth2-proxy sends no PKCE; its Pocket ID client requires it.
    O2pPkceRequired,
    /// oauth2-proxy holds a wrong client secret.
    O2pBadSecret,
    /// oauth2-proxy refused to start: the front proxy answers 502.
    O2pNotRunning,
    /// oauth2-proxy's upstream, the site, is down.
    O2pUpstreamDown,
    /// The user's e-mail address is not verified in Pocket ID.
    O2pEmailUnverified,
    /// oauth2-proxy admits only another e-mail domain (`--email-domain`).
    O2pDomainNotAllowed,
    /// oauth2-proxy admits only a group the user is not in (`--allowed-group`).
    O2pGroupNotAllowed,
    /// oauth2-proxy sends an http callback (`--redirect-url=http://…`).
    O2pRedirectHttp,
    /// oauth2-proxy shows its sign-in page before the login (no
    /// `--skip-provider-button`).
    O2pSignInPage,
    /// oauth2-proxy keeps the session in the cookie alone: sign-out does not end it.
    O2pCookieSession,
    /// oauth2-proxy's session cookie exceeds 4 KB and is split in parts.
    O2pCookieSplit,
    /// The site's path admits only a group the user is not in (forward-auth with
    /// `allowed_groups=`), though the login itself admits them.
    O2pPathRule,
}

impl Fault {
    /// Every fault, in the order `ssoprobe lab --list-faults` shows them.
    pub const ALL: &'static [Fault] = &[
        Fault::SitePublic,
        Fault::WrongTeam,
        Fault::Challenge,
        Fault::NoInstantAuth,
        Fault::WrongAuthUrl,
        Fault::NoPkce,
        Fault::UnknownClient,
        Fault::CallbackNotRegistered,
        Fault::IssuerMismatch,
        Fault::InternalUrl,
        Fault::JwksEmpty,
        Fault::Token404,
        Fault::TokenChallenge,
        Fault::IdpDown,
        Fault::IdpSlow,
        Fault::CertExpiring,
        Fault::CertExpired,
        Fault::PasskeyRevoked,
        Fault::UserDisabled,
        Fault::UserNotAllowed,
        Fault::AccessBadSecret,
        Fault::AccessJwksUnreachable,
        Fault::AccessPolicyDeny,
        Fault::TunnelDown,
        Fault::OriginDown,
        Fault::WrongRpId,
        Fault::NoServiceAuth,
        Fault::IdpChooserViaTeam,
        Fault::CallbackTrailingSlash,
        Fault::ServiceAuthOnly,
        Fault::ManagedOauth,
        Fault::ManagedOauthEveryone,
        Fault::ClockSkew,
        Fault::TokenBlockedForAccess,
        Fault::TokenUrlWrong,
        Fault::JwksBlockedForAccess,
        Fault::IdpBehindTunnelDown,
        Fault::InteractionElsewhere,
        Fault::ScopesWithoutEmail,
        Fault::ScopeUnsupported,
        Fault::EmailClaimName,
        Fault::UserinfoFails,
        Fault::GroupsClaimMissing,
        Fault::GroupsClaimDisplayName,
        Fault::ErrorTextMarkup,
        Fault::ClientNoCallback,
        Fault::CallbackOtherTeam,
        Fault::ParRequired,
        Fault::IdpDatabaseReadonly,
        Fault::PublicClientNoPkce,
        Fault::PkceNotEnforced,
        Fault::SecretExpired,
        Fault::SecretExpiring,
        Fault::ReauthRequired,
        Fault::AppHidesIdp,
        Fault::InstantAuthAmbiguous,
        Fault::PolicyLoginMethod,
        Fault::ApprovalRequired,
        Fault::BypassEveryone,
        Fault::TunnelDegraded,
        Fault::IngressMissing,
        Fault::Origin404,
        Fault::OriginAccessAud,
        Fault::DnsNotTunnel,
        Fault::IdpBehindAccess,
        Fault::CfTokenMissingPermission,
        Fault::CfApiRateLimited,
        Fault::CfApiRateLimitExhausted,
        Fault::CfTokenCannotListAccounts,
        Fault::CfBotManagementUnavailable,
        Fault::O2pCallbackNotRegistered,
        Fault::O2pPkceRequired,
        Fault::O2pBadSecret,
        Fault::O2pNotRunning,
        Fault::O2pUpstreamDown,
        Fault::O2pEmailUnverified,
        Fault::O2pDomainNotAllowed,
        Fault::O2pGroupNotAllowed,
        Fault::O2pRedirectHttp,
        Fault::O2pSignInPage,
        Fault::O2pCookieSession,
        Fault::O2pCookieSplit,
        Fault::O2pPathRule,
    ];

    /// The gateway the fault breaks the lab under: the oauth2-proxy faults need
    /// [`Gateway::Oauth2Proxy`], every other fault [`Gateway::Access`] (the lab
    /// refuses a fault under another gateway rather than ignore it).
    pub fn gateway(self) -> Gateway {
        match self {
            Fault::O2pCallbackNotRegistered
            | Fault::O2pPkceRequired
            | Fault::O2pBadSecret
            | Fault::O2pNotRunning
            | Fault::O2pUpstreamDown
            | Fault::O2pEmailUnverified
            | Fault::O2pDomainNotAllowed
            | Fault::O2pGroupNotAllowed
            | Fault::O2pRedirectHttp
            | Fault::O2pSignInPage
            | Fault::O2pCookieSession
            | Fault::O2pCookieSplit
            | Fault::O2pPathRule => Gateway::Oauth2Proxy,
            _ => Gateway::Access,
        }
    }

    /// The name `--fault` takes.
    pub fn name(self) -> &'static str {
        match self {
            Fault::SitePublic => "site-public",
            Fault::WrongTeam => "wrong-team",
            Fault::Challenge => "challenge",
            Fault::NoInstantAuth => "no-instant-auth",
            Fault::WrongAuthUrl => "wrong-auth-url",
            Fault::NoPkce => "no-pkce",
            Fault::UnknownClient => "unknown-client",
            Fault::CallbackNotRegistered => "callback-not-registered",
            Fault::IssuerMismatch => "issuer-mismatch",
            Fault::InternalUrl => "internal-url",
            Fault::JwksEmpty => "jwks-empty",
            Fault::Token404 => "token-404",
            Fault::TokenChallenge => "token-challenge",
            Fault::IdpDown => "idp-down",
            Fault::IdpSlow => "idp-slow",
            Fault::CertExpiring => "cert-expiring",
            Fault::CertExpired => "cert-expired",
            Fault::PasskeyRevoked => "passkey-revoked",
            Fault::UserDisabled => "user-disabled",
            Fault::UserNotAllowed => "user-not-allowed",
            Fault::AccessBadSecret => "access-bad-secret",
            Fault::AccessJwksUnreachable => "access-jwks-unreachable",
            Fault::AccessPolicyDeny => "access-policy-deny",
            Fault::TunnelDown => "tunnel-down",
            Fault::OriginDown => "origin-down",
            Fault::WrongRpId => "wrong-rp-id",
            Fault::NoServiceAuth => "no-service-auth",
            Fault::IdpChooserViaTeam => "idp-chooser-via-team",
            Fault::CallbackTrailingSlash => "callback-trailing-slash",
            Fault::ServiceAuthOnly => "service-auth-only",
            Fault::ManagedOauth => "managed-oauth",
            Fault::ManagedOauthEveryone => "managed-oauth-everyone",
            Fault::ClockSkew => "clock-skew",
            Fault::TokenBlockedForAccess => "token-blocked-for-access",
            Fault::TokenUrlWrong => "token-url-wrong",
            Fault::JwksBlockedForAccess => "jwks-blocked-for-access",
            Fault::IdpBehindTunnelDown => "idp-behind-tunnel-down",
            Fault::InteractionElsewhere => "interaction-elsewhere",
            Fault::ScopesWithoutEmail => "scopes-without-email",
            Fault::ScopeUnsupported => "scope-unsupported",
            Fault::EmailClaimName => "email-claim-name",
            Fault::UserinfoFails => "userinfo-fails",
            Fault::GroupsClaimMissing => "groups-claim-missing",
            Fault::GroupsClaimDisplayName => "groups-claim-display-name",
            Fault::ErrorTextMarkup => "error-text-markup",
            Fault::ClientNoCallback => "client-no-callback",
            Fault::CallbackOtherTeam => "callback-other-team",
            Fault::ParRequired => "par-required",
            Fault::IdpDatabaseReadonly => "idp-database-readonly",
            Fault::PublicClientNoPkce => "public-client-no-pkce",
            Fault::PkceNotEnforced => "pkce-not-enforced",
            Fault::SecretExpired => "secret-expired",
            Fault::SecretExpiring => "secret-expiring",
            Fault::ReauthRequired => "reauth-required",
            Fault::AppHidesIdp => "app-hides-idp",
            Fault::InstantAuthAmbiguous => "instant-auth-ambiguous",
            Fault::PolicyLoginMethod => "policy-login-method",
            Fault::ApprovalRequired => "approval-required",
            Fault::BypassEveryone => "bypass-everyone",
            Fault::TunnelDegraded => "tunnel-degraded",
            Fault::IngressMissing => "ingress-missing",
            Fault::Origin404 => "origin-404",
            Fault::OriginAccessAud => "origin-access-aud",
            Fault::DnsNotTunnel => "dns-not-tunnel",
            Fault::IdpBehindAccess => "idp-behind-access",
            Fault::CfTokenMissingPermission => "cf-token-missing-permission",
            Fault::CfApiRateLimited => "cf-api-rate-limited",
            Fault::CfApiRateLimitExhausted => "cf-api-rate-limit-exhausted",
            Fault::CfTokenCannotListAccounts => "cf-token-cannot-list-accounts",
            Fault::CfBotManagementUnavailable => "cf-bot-management-unavailable",
            Fault::O2pCallbackNotRegistered => "o2p-callback-not-registered",
            Fault::O2pPkceRequired => "o2p-pkce-required",
            Fault::O2pBadSecret => "o2p-bad-secret",
            Fault::O2pNotRunning => "o2p-not-running",
            Fault::O2pUpstreamDown => "o2p-upstream-down",
            Fault::O2pEmailUnverified => "o2p-email-unverified",
            Fault::O2pDomainNotAllowed => "o2p-domain-not-allowed",
            Fault::O2pGroupNotAllowed => "o2p-group-not-allowed",
            Fault::O2pRedirectHttp => "o2p-redirect-http",
            Fault::O2pSignInPage => "o2p-sign-in-page",
            Fault::O2pCookieSession => "o2p-cookie-session",
            Fault::O2pCookieSplit => "o2p-cookie-split",
            Fault::O2pPathRule => "o2p-path-rule",
        }
    }

    /// One line: what breaks.
    pub fn description(self) -> &'static str {
        match self {
            Fault::SitePublic => {
                "no Access application covers the site: the origin answers anonymous requests with 200"
            }
            Fault::WrongTeam => {
                "Access sends the login to another team's domain (other-team.cloudflareaccess.com)"
            }
            Fault::Challenge => {
                "bot protection answers 403 `cf-mitigated: challenge` in front of Access"
            }
            Fault::NoInstantAuth => {
                "Instant Auth is off: the team login shows the Access sign-in page"
            }
            Fault::WrongAuthUrl => {
                "Access's Auth URL is https://id.example.com/oauth2/authorize, a path Pocket ID does not serve"
            }
            Fault::NoPkce => {
                "Access sends no PKCE challenge, but the Pocket ID client requires one"
            }
            Fault::UnknownClient => "Access's App ID is not the Client ID of any Pocket ID client",
            Fault::CallbackNotRegistered => {
                "the Pocket ID client lists the callback with a trailing slash, so Access's callback is refused"
            }
            Fault::IssuerMismatch => {
                "Pocket ID's APP_URL is http://id.example.com, so discovery's issuer is wrong"
            }
            Fault::InternalUrl => {
                "INTERNAL_APP_URL=http://pocket-id:1411 puts discovery's token and JWKS URLs on an internal host"
            }
            Fault::JwksEmpty => "Pocket ID's JWKS publishes no keys",
            Fault::Token404 => {
                "the reverse proxy answers 404 for Pocket ID's token endpoint (/api not forwarded)"
            }
            Fault::TokenChallenge => {
                "a WAF rule answers Pocket ID's token endpoint with a Cloudflare managed challenge"
            }
            Fault::IdpDown => {
                "Pocket ID is down: Cloudflare answers 502 Bad Gateway for id.example.com"
            }
            Fault::IdpSlow => "Pocket ID stalls 120 s on every request",
            Fault::CertExpiring => "service.example.com's certificate expires in 10 days",
            Fault::CertExpired => "id.example.com's certificate expired 2 days ago",
            Fault::PasskeyRevoked => {
                "an admin deletes every passkey at Pocket ID right after it is registered"
            }
            Fault::UserDisabled => {
                "the user is disabled in Pocket ID after enrolling: passkey logins get 403 user_disabled"
            }
            Fault::UserNotAllowed => {
                "the Pocket ID client is restricted to a user group the user is not in"
            }
            Fault::AccessBadSecret => {
                "Access holds a wrong client secret: its code exchange at Pocket ID gets 401 invalid_client"
            }
            Fault::AccessJwksUnreachable => {
                "Access's Certificate URL is https://id.example.com/.well-known/jwks.jsonx, which answers 404"
            }
            Fault::AccessPolicyDeny => {
                "the application's Allow policy does not include the user's e-mail address"
            }
            Fault::TunnelDown => {
                "cloudflared is not running: after login the site answers 530 with Cloudflare error 1033"
            }
            Fault::OriginDown => {
                "the tunnel is up but the local service is down: after login cloudflared answers 502"
            }
            Fault::WrongRpId => {
                "Pocket ID's APP_URL changed to https://pocket-id.internal after enrolment: logins ask for RP ID pocket-id.internal"
            }
            Fault::NoServiceAuth => {
                "the application has no Service Auth policy: service tokens are sent to the login like anonymous requests"
            }
            Fault::IdpChooserViaTeam => {
                "Instant Auth is off and the sign-in page's Pocket ID button goes back through the team domain, which redirects to Pocket ID"
            }
            Fault::CallbackTrailingSlash => {
                "Access sends redirect_uri https://xyz.cloudflareaccess.com/cdn-cgi/access/callback/ (trailing slash), which the Pocket ID client does not list"
            }
            Fault::ServiceAuthOnly => {
                "the application admits only service tokens: anonymous requests get Access's 403 with cf-access-aud and no login"
            }
            Fault::ManagedOauth => {
                "Managed OAuth is on: requests that are not a browser's (by Accept and User-Agent) get 401 with a Bearer resource_metadata challenge"
            }
            Fault::ManagedOauthEveryone => {
                "Managed OAuth is on and Access answers every anonymous request 401 with a Bearer resource_metadata challenge, a browser's too"
            }
            Fault::ClockSkew => {
                "Access's signer clock is 10 minutes fast: the site's CF_Authorization is not valid yet, so the login loops"
            }
            Fault::TokenBlockedForAccess => {
                "a WAF rule challenges Pocket ID's token endpoint for User-Agent cloudflare-access only: Access cannot redeem codes"
            }
            Fault::TokenUrlWrong => {
                "Access's Token URL is https://id.example.com/api/oidc/tokens: its code exchange gets Pocket ID's 404"
            }
            Fault::JwksBlockedForAccess => {
                "a WAF rule challenges Pocket ID's JWKS for User-Agent cloudflare-access only: Access cannot verify id_tokens"
            }
            Fault::IdpBehindTunnelDown => {
                "the tunnel to Pocket ID is down: every id.example.com URL answers 530 with Cloudflare error 1033"
            }
            Fault::InteractionElsewhere => {
                "after the login Pocket ID's interaction continues at https://login.example.net (a proxy rewriting its answers)"
            }
            Fault::ScopesWithoutEmail => {
                "Access's Pocket ID login method asks for scopes openid profile, without email: Pocket ID's id_token carries no e-mail address and Access cannot identify the user"
            }
            Fault::ScopeUnsupported => {
                "Access's Pocket ID login method asks for scope `offline`, which Pocket ID does not support (configuration only)"
            }
            Fault::EmailClaimName => {
                "Access's Pocket ID login method reads the e-mail from claim `mail`, which Pocket ID does not issue: \"Failed to fetch user/group information from the identity provider\""
            }
            Fault::UserinfoFails => {
                "the monitoring user was created without an e-mail address (Pocket ID with REQUIRE_USER_EMAIL=false; enrolled as `probe`): Access cannot identify it, \"Failed to fetch user/group information from the identity provider\""
            }
            Fault::GroupsClaimMissing => {
                "the Allow policy matches OIDC claim groups=probers, but Access's login method does not ask for scope groups (configuration only)"
            }
            Fault::ErrorTextMarkup => {
                "Pocket ID (or a proxy rewriting it) refuses the login with an error text carrying HTML and a <script>: reports must show it as text"
            }
            Fault::GroupsClaimDisplayName => {
                "the Allow policy matches OIDC claim groups=Probers, the group's display name; the claim carries its name, probers (configuration only)"
            }
            Fault::ClientNoCallback => {
                "the Pocket ID client lists no callback URL, so Pocket ID refuses Access's callback"
            }
            Fault::CallbackOtherTeam => {
                "the Pocket ID client lists only https://old-team.cloudflareaccess.com/cdn-cgi/access/callback, so Access's callback is refused"
            }
            Fault::ParRequired => {
                "the Pocket ID client requires pushed authorization requests, which Access never sends: authorize sends Access error=error (\"The error is unrecognizable\"), naming nothing"
            }
            Fault::IdpDatabaseReadonly => {
                "Pocket ID cannot write to its database (a full disk, a read-only volume): authorize cannot store the login's interaction and sends Access error=error (\"The error is unrecognizable\")"
            }
            Fault::PublicClientNoPkce => {
                "the Pocket ID client is public (no secret) while Access's login method has PKCE off (configuration only)"
            }
            Fault::PkceNotEnforced => {
                "the Pocket ID client does not require PKCE; Access sends it anyway, so logins work (configuration only)"
            }
            Fault::SecretExpired => {
                "every secret of the Pocket ID client has expired: Access's code exchange gets 401 invalid_client"
            }
            Fault::SecretExpiring => {
                "the only active secret of the Pocket ID client expires in 5 days (configuration only)"
            }
            Fault::ReauthRequired => {
                "the Pocket ID client requires reauthentication on every authorize (configuration only)"
            }
            Fault::AppHidesIdp => {
                "the Access application allows only the GitHub login method, not Pocket ID (configuration only)"
            }
            Fault::InstantAuthAmbiguous => {
                "the Access application has Instant Auth on but allows every identity provider (4 in the account) (configuration only)"
            }
            Fault::PolicyLoginMethod => {
                "the application's Allow policy requires login method One-time PIN, which Pocket ID logins never match (configuration only)"
            }
            Fault::ApprovalRequired => {
                "the application's Allow policy requires an administrator's approval for each session (configuration only)"
            }
            Fault::BypassEveryone => {
                "a Bypass policy for everyone comes first on the application: the origin answers anonymous requests with 200"
            }
            Fault::TunnelDegraded => {
                "the site's tunnel is degraded: one of its two connectors has only connections pending reconnect (configuration only)"
            }
            Fault::IngressMissing => {
                "the site's tunnel has no public hostname for service.example.com, only the http_status:404 catch-all: after login cloudflared answers an empty 404"
            }
            Fault::Origin404 => {
                "the tunnel routes service.example.com, but the application behind it is served under another path: after login it answers 404 itself (an empty answer or a small page, by variant)"
            }
            Fault::OriginAccessAud => {
                "the tunnel's ingress rule for the site validates Access tokens for another application's AUD (configuration only)"
            }
            Fault::DnsNotTunnel => {
                "service.example.com's CNAME points at the old, down tunnel instead of the one serving it (configuration only)"
            }
            Fault::IdpBehindAccess => {
                "an Access application covers id.example.com, so Access's own requests to Pocket ID would hit a login (configuration only)"
            }
            Fault::CfTokenMissingPermission => {
                "the Cloudflare API token lacks Cloudflare Tunnel Read: the tunnel endpoints answer 403 with error 10000"
            }
            Fault::CfApiRateLimited => {
                "the Cloudflare API answers the first request to each path 429 with Retry-After: 1, then serves it"
            }
            Fault::CfApiRateLimitExhausted => {
                "the token's Cloudflare API rate limit is used up: every request answers 429 with Retry-After: 300"
            }
            Fault::CfTokenCannotListAccounts => {
                "the Cloudflare API token cannot list its accounts (an account-owned token, or one without the permission): GET /accounts is refused"
            }
            Fault::CfBotManagementUnavailable => {
                "the Cloudflare API does not offer the zone's Bot Management settings: GET /zones/…/bot_management answers 404 No route (or 403 for the plan)"
            }
            Fault::O2pCallbackNotRegistered => {
                "oauth2-proxy's Pocket ID client lists only https://service.example.com/auth/callback, so Pocket ID refuses its redirect_uri …/oauth2/callback"
            }
            Fault::O2pPkceRequired => {
                "oauth2-proxy runs without --code-challenge-method while its Pocket ID client requires PKCE: the callback answers 403 \"Login Failed\" with invalid_request"
            }
            Fault::O2pBadSecret => {
                "oauth2-proxy holds a wrong client secret: its code exchange gets 401 invalid_client and the callback answers a generic 500"
            }
            Fault::O2pNotRunning => {
                "oauth2-proxy refused to start (issuer URL ≠ APP_URL, a cookie secret of the wrong length, or Pocket ID down at its start): the front proxy answers 502"
            }
            Fault::O2pUpstreamDown => {
                "oauth2-proxy's upstream, the site, refuses connections: after login oauth2-proxy answers its own 502 page"
            }
            Fault::O2pEmailUnverified => {
                "the user's e-mail address is not verified in Pocket ID: oauth2-proxy's callback answers its generic 403"
            }
            Fault::O2pDomainNotAllowed => {
                "oauth2-proxy runs with --email-domain=other.org: the user's example.com address gets the callback's generic 403"
            }
            Fault::O2pGroupNotAllowed => {
                "oauth2-proxy runs with --allowed-group=admins (and asks for the groups scope): the user is not in it, and the callback answers its generic 403"
            }
            Fault::O2pRedirectHttp => {
                "oauth2-proxy runs with --redirect-url=http://service.example.com/oauth2/callback: Pocket ID refuses that redirect_uri"
            }
            Fault::O2pSignInPage => {
                "oauth2-proxy runs without --skip-provider-button: anonymous visitors get its sign-in page (403) with one button before the login"
            }
            Fault::O2pCookieSession => {
                "oauth2-proxy keeps the session in the cookie alone (its default cookie session store): sign-out clears the cookie, but a copy of it still works"
            }
            Fault::O2pPathRule => {
                "the front proxy asks oauth2-proxy /oauth2/auth?allowed_groups=admins for the site's path: the login passes, then the site answers oauth2-proxy's 403 and clears the session"
            }
            Fault::O2pCookieSplit => {
                "oauth2-proxy keeps a session larger than 4 KB in the cookie (many groups, say): it splits it into _oauth2_proxy_0 and _oauth2_proxy_1"
            }
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Fault, UnknownFault> {
        Fault::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFault(s.to_string()))
    }
}

/// A fault name the lab does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fault `{0}`; the lab knows: {names}",
    names = Fault::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
)]
pub struct UnknownFault(pub String);

/// A face of the lab: how Cloudflare's pages, redirects, cookies and headers look.
/// Real edges differ in markup, branding, header case and order, link shapes and
/// cookie attribute order while keeping what Cloudflare documents (status codes,
/// `cf-*` headers, error codes and texts, "Cloudflare Access" in Access titles). A
/// check that passes against one face but not another depends on the lab's markup,
/// not on behaviour. Every fault breaks the lab the same way under every face;
/// Pocket ID's own answers are the same under every face but for header case. The
/// site's application shows its own 404 (fault origin-404) as each face's origin
/// would: a line of plain text, a proxy's small page, or nothing at all — the last
/// byte for byte what cloudflared's catch-all answers (fault ingress-missing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// The pages, redirects and cookies as captured (the default).
    #[default]
    Classic,
    /// A rebranded team: custom title and markup, a second identity provider,
    /// IdP buttons that go back through the team domain, relative same-host
    /// redirects, lower-case cookie attributes.
    Rebranded,
    /// Minimal pages: a form to choose the identity provider, plain edge errors, no
    /// `www-authenticate` hint, Title-Case HTTP/1 header names in another order.
    Terse,
}

impl Variant {
    /// Every face, the default first.
    pub const ALL: [Variant; 3] = [Variant::Classic, Variant::Rebranded, Variant::Terse];

    /// The name `--variant` takes.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Classic => "classic",
            Variant::Rebranded => "rebranded",
            Variant::Terse => "terse",
        }
    }

    /// One line: how the face looks.
    pub fn description(self) -> &'static str {
        match self {
            Variant::Classic => "Cloudflare's pages, redirects and cookies as captured",
            Variant::Rebranded => {
                "a rebranded Access login (Example Corp; Pocket ID and GitHub chosen through the team domain), relative same-host redirects, lower-case cookie attributes"
            }
            Variant::Terse => {
                "minimal Access pages with a form to choose the identity provider, plain edge error pages, Title-Case HTTP/1 headers sorted by name"
            }
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Variant, UnknownVariant> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownVariant(s.to_string()))
    }
}

/// A variant name the lab does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown variant `{0}`; the lab knows: {names}",
    names = Variant::ALL.map(Variant::name).join(", ")
)]
pub struct UnknownVariant(pub String);

/// The User-Agent of Access's server-side requests to the identity provider (seen
/// in Pocket ID's logs), which a WAF rule can single out.
const ACCESS_USER_AGENT: &str = "cloudflare-access";

/// The faults in force, for the hosts to consult.
#[derive(Clone, Debug)]
struct FaultSet(Vec<Fault>);

impl FaultSet {
    /// Sorted, without duplicates, so `Lab::faults` lists each fault once.
    fn new(faults: &[Fault]) -> FaultSet {
        let mut faults = faults.to_vec();
        faults.sort_unstable();
        faults.dedup();
        FaultSet(faults)
    }

    fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }
}

/// How to start the lab. More knobs will come, so it is built from its default:
/// `LabConfig::default().with_faults(faults).with_variant(variant).with_rtt(rtt)`.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct LabConfig {
    /// The faults to inject (order and duplicates do not matter).
    pub faults: Vec<Fault>,
    /// The face Cloudflare shows.
    pub variant: Variant,
    /// The simulated round-trip time between the user and every lab host (zero, the
    /// default: none). See [`LabConfig::with_rtt`].
    pub rtt: Duration,
    /// What stands in front of the site (default: Cloudflare Access).
    pub gateway: Gateway,
}

impl LabConfig {
    /// This configuration with `faults` in force.
    pub fn with_faults(mut self, faults: Vec<Fault>) -> LabConfig {
        self.faults = faults;
        self
    }

    /// This configuration with Cloudflare showing `variant`.
    pub fn with_variant(mut self, variant: Variant) -> LabConfig {
        self.variant = variant;
        self
    }

    /// This configuration with every connection to the lab's listener behind a
    /// simulated network path of round-trip time `rtt` (zero: none). Loopback has no
    /// delay to speak of and needs no privileges this way (no netem): each accepted
    /// connection goes through two user-space delay lines, one per direction.
    ///
    /// With `d = rtt / 2` and `t0` the moment the connection was accepted, bytes the
    /// client sends at `t` reach the server at `max(t, t0 + rtt) + d`, and bytes the
    /// server writes at `t` reach the client at `max(t, t0 + 1.5 rtt) + d`: `d` is the
    /// propagation delay each way, the `max` terms stand for TCP's three-way
    /// handshake, which the kernel completes at once on loopback (the client may send
    /// once the SYN-ACK is back, the server once the last ACK is in). So a request on
    /// a fresh TLS 1.3 connection is answered after 3 rtt (TCP, TLS, the request), a
    /// later request on the same connection after 1 rtt. Chunks are delivered on
    /// time whatever else is in flight (a delay line, not stop-and-wait), in order;
    /// each direction queues at most 256 KiB.
    ///
    /// Access's own requests to Pocket ID (the code exchange and JWKS fetch behind
    /// the callback) are not delayed: they go between Cloudflare's edge and the
    /// origin, not over the user's path. With a round-trip time they use a second
    /// listener on 127.0.0.1.
    pub fn with_rtt(mut self, rtt: Duration) -> LabConfig {
        self.rtt = rtt;
        self
    }

    /// This configuration with `gateway` in front of the site. Under
    /// [`Gateway::Oauth2Proxy`] service.example.com is served by oauth2-proxy (behind
    /// a TLS reverse proxy) with its own client at Pocket ID; the team domain and
    /// Cloudflare's API still answer, but nothing sends a login there.
    pub fn with_gateway(mut self, gateway: Gateway) -> LabConfig {
        self.gateway = gateway;
        self
    }
}

/// Why the lab could not start.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// No loopback address and port could be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address tried last.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The local address of the listener could not be read.
    #[error("cannot read the lab's listening address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// A certificate or key could not be made.
    #[error("cannot make the lab's certificates or keys: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The TLS configuration was refused.
    #[error("cannot configure TLS for the lab: {0}")]
    Tls(#[from] rustls::Error),
    /// A JWT signing key could not be made.
    #[error("cannot make the lab's signing keys: {0}")]
    Keys(String),
    /// A key-generation thread died.
    #[error("key generation failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The WebAuthn relying party could not be configured.
    #[error("cannot configure the lab's passkey relying party: {0}")]
    Passkeys(String),
    /// The client Access uses to reach Pocket ID could not be built.
    #[error("cannot build Access's HTTPS client: {0}")]
    Client(#[source] reqwest::Error),
    /// A fault breaks the lab under another gateway than the one asked for.
    #[error("fault {fault} breaks the {needs} gateway, not {gateway}")]
    FaultForOtherGateway {
        /// The fault.
        fault: Fault,
        /// The gateway it needs.
        needs: Gateway,
        /// The gateway the lab was asked to run.
        gateway: Gateway,
    },
}

impl From<jsonwebtoken::errors::Error> for LabError {
    fn from(e: jsonwebtoken::errors::Error) -> LabError {
        LabError::Keys(e.to_string())
    }
}

/// A running lab. Dropping it stops the servers; [`Lab::shutdown`] also waits until
/// they have stopped.
pub struct Lab {
    addr: SocketAddr,
    ca_pem: String,
    faults: FaultSet,
    variant: Variant,
    client_secret: String,
    static_api_key: String,
    service_token: access::ServiceToken,
    cf_api_token: String,
    api_log: Arc<apilog::ApiLog>,
    rtt: Duration,
    gateway: Gateway,
    proxy_client_secret: Option<String>,
    server: JoinHandle<()>,
}

impl Lab {
    /// Starts the servers; returns once they accept connections.
    pub async fn start(config: LabConfig) -> Result<Lab, LabError> {
        let faults = FaultSet::new(&config.faults);
        let variant = config.variant;
        let gateway = config.gateway;
        if let Some(fault) = faults.0.iter().find(|f| f.gateway() != gateway) {
            return Err(LabError::FaultForOtherGateway {
                fault: *fault,
                needs: fault.gateway(),
                gateway,
            });
        }
        // The RSA keys are the slow part: they are made on blocking threads while
        // the certificates are issued and the listener is bound.
        let keys = keys::spawn_generation();
        let pki = tls::build(&faults)?;
        let listener = server::bind().await?;
        let addr = listener.local_addr().map_err(LabError::LocalAddr)?;
        let rtt = config.rtt;
        // Access reaches Pocket ID on the user's listener when there is no delay
        // (nothing to tell apart), on an undelayed one otherwise.
        let back = if rtt.is_zero() {
            None
        } else {
            Some(server::bind_back_channel().await?)
        };
        let idp_addr = match &back {
            Some(back) => back.local_addr().map_err(LabError::LocalAddr)?,
            None => addr,
        };
        let keys = keys.await?;

        // Pocket ID generates 32-character alphanumeric client secrets.
        let client_secret = wire::random_alphanumeric(32);
        // STATIC_API_KEY needs at least 16 characters; Pocket ID's own keys are 32.
        let static_api_key = wire::random_alphanumeric(32);
        let service_token = access::ServiceToken::generate();
        // Cloudflare API tokens are 40 characters of [A-Za-z0-9_-].
        let cf_api_token = wire::random_alphanumeric(40);
        let api_log = Arc::new(apilog::ApiLog::new());
        // oauth2-proxy's client at Pocket ID has a secret of its own.
        let proxy_client_secret =
            (gateway == Gateway::Oauth2Proxy).then(|| wire::random_alphanumeric(32));
        let access_secret = if faults.has(Fault::AccessBadSecret) {
            // Pasted from another client, or rotated at Pocket ID only.
            wire::random_alphanumeric(32)
        } else {
            client_secret.clone()
        };
        let idp_link = access::IdpLink::new(
            idp_addr,
            &pki.ca_pem,
            access_secret,
            access::callback_url(&faults),
            access::token_path(&faults),
            access::certs_path(&faults),
        )
        .map_err(LabError::Client)?;
        let access = Arc::new(access::Access::new(access::AccessConfig {
            faults: faults.clone(),
            variant,
            current: keys.access_current,
            previous: keys.access_previous,
            idp: idp_link,
            service_token: service_token.clone(),
        }));
        let pocket_id = Arc::new(pocketid::PocketId::new(
            &faults,
            pocketid::PocketIdConfig {
                key: keys.idp,
                client_secret: client_secret.clone(),
                static_api_key: static_api_key.clone(),
                proxy_client_secret: proxy_client_secret.clone(),
            },
        )?);
        let cf_api = Arc::new(
            cfapi::CfApi::new(faults.clone(), cf_api_token.clone(), service_token.clone())
                .with_variant(variant),
        );
        let service = match &proxy_client_secret {
            Some(secret) => o2p::router(o2p::ProxyConfig {
                faults: faults.clone(),
                variant,
                idp_addr,
                ca_pem: &pki.ca_pem,
                client_secret: if faults.has(Fault::O2pBadSecret) {
                    // Pasted from another client.
                    wire::random_alphanumeric(32)
                } else {
                    secret.clone()
                },
            })
            .map_err(LabError::Client)?,
            None => access::service_router(Arc::clone(&access)),
        };
        let hosts = server::Hosts {
            service,
            team: access::team_router(access),
            idp: pocketid::router(&faults, variant, gateway, pocket_id, Arc::clone(&api_log)),
            cf_api: cfapi::router(cf_api, Arc::clone(&api_log)),
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config);
        let listeners = server::Listeners {
            front: listener,
            rtt,
            back,
        };
        let server = tokio::spawn(server::serve(listeners, acceptor, hosts, variant));
        Ok(Lab {
            addr,
            ca_pem: pki.ca_pem,
            faults,
            variant,
            client_secret,
            static_api_key,
            service_token,
            cf_api_token,
            api_log,
            rtt,
            gateway,
            proxy_client_secret,
            server,
        })
    }

    /// The throw-away CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Where the TLS listener is bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The routing flags a user passes to `ssoprobe check` to reach the lab:
    /// `--resolve HOST:443:ADDR` for each host when the lab listens on port 443,
    /// else `--connect-to HOST:443:127.0.0.1:PORT`.
    pub fn route_args(&self) -> Vec<String> {
        match self.gateway {
            Gateway::Access => self.routes_for(&[SERVICE_HOST, TEAM_HOST, IDP_HOST]),
            // No Cloudflare in front of this stack.
            Gateway::Oauth2Proxy => self.routes_for(&[SERVICE_HOST, IDP_HOST]),
        }
    }

    /// [`Lab::route_args`] plus the same for [`CF_API_HOST`]: what `ssoprobe
    /// doctor` needs to reach the lab's Cloudflare API too (behind oauth2-proxy there
    /// is no Cloudflare configuration to read).
    pub fn doctor_route_args(&self) -> Vec<String> {
        match self.gateway {
            Gateway::Access => self.routes_for(&[SERVICE_HOST, TEAM_HOST, IDP_HOST, CF_API_HOST]),
            Gateway::Oauth2Proxy => self.route_args(),
        }
    }

    /// The routing flags for `hosts`.
    fn routes_for(&self, hosts: &[&str]) -> Vec<String> {
        let (ip, port) = (self.addr.ip(), self.addr.port());
        hosts
            .iter()
            .flat_map(|host| {
                if port == 443 {
                    ["--resolve".to_string(), format!("{host}:443:{ip}")]
                } else {
                    [
                        "--connect-to".to_string(),
                        format!("{host}:443:{ip}:{port}"),
                    ]
                }
            })
            .collect()
    }

    /// The faults in force, sorted, each once.
    pub fn faults(&self) -> &[Fault] {
        &self.faults.0
    }

    /// The face Cloudflare shows.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The simulated round-trip time of every connection (zero: none).
    pub fn rtt(&self) -> Duration {
        self.rtt
    }

    /// What stands in front of the site.
    pub fn gateway(&self) -> Gateway {
        self.gateway
    }

    /// The secret of oauth2-proxy's client at Pocket ID ([`O2P_CLIENT_ID`]), when the
    /// gateway is oauth2-proxy (a secret: never print it). Under fault o2p-bad-secret
    /// oauth2-proxy holds another one.
    pub fn proxy_client_secret(&self) -> Option<&str> {
        self.proxy_client_secret.as_deref()
    }

    /// The Pocket ID user the lab's monitoring passkey is enrolled for: its e-mail
    /// address, or under fault userinfo-fails the username `probe`, which enrolment
    /// creates without an address (the lab's Pocket ID then does not require one).
    pub fn monitor_user(&self) -> &'static str {
        if self.faults.has(Fault::UserinfoFails) {
            "probe"
        } else {
            PROBE_EMAIL
        }
    }

    /// The secret of the Pocket ID client Access uses (a secret: never print it).
    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }

    /// Pocket ID's `STATIC_API_KEY`, for `X-API-Key` (a secret: never print it).
    pub fn static_api_key(&self) -> &str {
        &self.static_api_key
    }

    /// The service token the application's Service Auth policy accepts: its Client
    /// ID (`<32 hex>.access`) and Client Secret (64 hex; a secret: never print it),
    /// for `CF-Access-Client-Id` and `CF-Access-Client-Secret`.
    pub fn service_token(&self) -> (&str, &str) {
        (&self.service_token.id, &self.service_token.secret)
    }

    /// The Cloudflare API token the lab's API accepts (`Authorization: Bearer …`;
    /// user-owned, 40 characters; a secret: never print it). It holds every read
    /// permission the doctor needs, but Cloudflare Tunnel Read under fault
    /// cf-token-missing-permission; under fault cf-token-cannot-list-accounts it cannot
    /// list accounts (and is account-owned under the classic face).
    pub fn cf_api_token(&self) -> &str {
        &self.cf_api_token
    }

    /// Every request the lab's Cloudflare API answered and every request to Pocket
    /// ID's `/api/*` that carried `X-API-Key`, oldest first (the last 4096).
    pub fn api_requests(&self) -> Vec<ApiRequest> {
        self.api_log.requests()
    }

    /// A receiver of the requests [`Lab::api_requests`] records, from now on (a
    /// receiver that falls more than 1024 behind misses some: `Lagged`).
    pub fn subscribe_api_requests(&self) -> tokio::sync::broadcast::Receiver<ApiRequest> {
        self.api_log.subscribe()
    }

    /// Stops the servers. Connections in flight, even stalled ones, are cut.
    pub async fn shutdown(mut self) {
        self.server.abort();
        // An aborted task finishes at its next await point; the accept loop is
        // always at one, so this does not wait on stalled handlers.
        let _ = (&mut self.server).await;
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Shows where the lab listens, its faults and face; never a secret.
impl fmt::Debug for Lab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lab")
            .field("addr", &self.addr)
            .field("faults", &self.faults.0)
            .field("variant", &self.variant)
            .field("gateway", &self.gateway)
            .field("rtt", &self.rtt)
            .finish_non_exhaustive()
    }
}
