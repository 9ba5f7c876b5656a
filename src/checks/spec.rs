//! The declaration of every check: its id, what it proves, what it needs (the facts it
//! reads) and what it yields, when a run asks for it, and which checks' failures can
//! explain its own. `ssoprobe checks`, the README's tables and the runner's "follows
//! from" are derived from it.

use serde::Serialize;

/// A fact a check reads or yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    /// The site's URL (given).
    Site,
    /// The site's answer to an anonymous visitor: the Access login URL.
    AccessLogin,
    /// The site's answer to an anonymous visitor: oauth2-proxy's login.
    ProxyLogin,
    /// The Zero Trust team domain.
    TeamDomain,
    /// The Access application's AUD tag.
    Aud,
    /// The authorization request the gateway sends to Pocket ID (client id, callback,
    /// PKCE).
    AuthorizeRequest,
    /// That request has gone to Pocket ID: a session opened after it cannot change
    /// Pocket ID's answer to it.
    AuthorizeAsked,
    /// Pocket ID's public URL (given, from the passkey file, or from the authorization
    /// request).
    IdpUrl,
    /// Pocket ID's discovery document.
    Discovery,
    /// Pocket ID's login interaction for the gateway's client.
    Interaction,
    /// The passkey file (given).
    Passkey,
    /// A session at Pocket ID, signed in with the passkey.
    IdpSession,
    /// An authorization code for the gateway's callback.
    Code,
    /// The client secret (given).
    ClientSecret,
    /// A service token (given).
    ServiceToken,
    /// The site's session: `CF_Authorization` after Access's callback (in service-token
    /// mode, the token itself), or oauth2-proxy's session cookie after its callback.
    AppSession,
    /// Cloudflare's configuration, read with the API token (given).
    CloudflareConfig,
    /// Pocket ID's configuration, read with the admin API key (given).
    PocketIdConfig,
}

impl Fact {
    /// The fact in words.
    pub fn text(self) -> &'static str {
        match self {
            Fact::Site => "the site's URL",
            Fact::AccessLogin => "the Access login the site redirects to",
            Fact::ProxyLogin => "the oauth2-proxy login the site sends to",
            Fact::TeamDomain => "the team domain",
            Fact::Aud => "the application's AUD",
            Fact::AuthorizeRequest => "the gateway's authorization request to Pocket ID",
            Fact::AuthorizeAsked => "the anonymous authorization request sent",
            Fact::IdpUrl => "Pocket ID's URL",
            Fact::Discovery => "Pocket ID's discovery document",
            Fact::Interaction => "Pocket ID's login interaction",
            Fact::Passkey => "the passkey file",
            Fact::IdpSession => "a Pocket ID session",
            Fact::Code => "an authorization code",
            Fact::ClientSecret => "the client secret",
            Fact::ServiceToken => "a service token",
            Fact::AppSession => "the site's session (CF_Authorization or _oauth2_proxy)",
            Fact::CloudflareConfig => "Cloudflare's configuration (API token)",
            Fact::PocketIdConfig => "Pocket ID's configuration (admin API key)",
        }
    }

    /// Given by the operator (a flag, the environment, a file), not found by a check.
    fn given(self) -> Option<&'static str> {
        match self {
            Fact::Site => Some("the URL argument"),
            Fact::Passkey => Some("--passkey"),
            Fact::ClientSecret => Some("--client-secret-file"),
            Fact::ServiceToken => Some("--service-token-id and --service-token-secret-file"),
            Fact::CloudflareConfig => Some("--cf-api-token-file"),
            Fact::PocketIdConfig => Some("--api-key-file"),
            _ => None,
        }
    }
}

/// When a run asks for a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Runs {
    /// In every `check` run.
    Always,
    /// With `--passkey`.
    WithPasskey,
    /// With `--passkey` and `--client-secret-file`.
    WithPasskeyAndSecret,
    /// With `--passkey` or a service token.
    WithLoginOrServiceToken,
    /// With the Cloudflare API token or the Pocket ID API key (`doctor`, or `check`
    /// with them).
    WithApiCredentials,
}

impl Runs {
    /// When, in words.
    pub fn text(self) -> &'static str {
        match self {
            Runs::Always => "always",
            Runs::WithPasskey => "with --passkey",
            Runs::WithPasskeyAndSecret => "with --passkey and --client-secret-file",
            Runs::WithLoginOrServiceToken => "with --passkey, or a service token",
            Runs::WithApiCredentials => {
                "doctor, or check with --cf-api-token-file / --api-key-file"
            }
        }
    }
}

/// One check, declared.
#[derive(Clone, Copy, Serialize)]
pub struct Spec {
    /// The stable id (`tls.<host>` stands for one check per host).
    pub id: &'static str,
    /// What a pass proves, in the operator's terms.
    pub proves: &'static str,
    /// The facts it needs before it starts: the runner starts it when all are known,
    /// and skips it, with the reason its producer left, when one is missing.
    pub needs: &'static [Fact],
    /// The facts it reads while it runs, without waiting for them to start.
    pub waits: &'static [Fact],
    /// The facts it yields for later checks.
    pub yields: &'static [Fact],
    /// When a run asks for it.
    pub runs: Runs,
    /// The gateway whose chain it belongs to; `None`: every gateway's (Pocket ID's
    /// checks, the passkey, the site). A run reports the checks of the gateway the
    /// site's answer shows (or `--gateway` names, when the answer shows none).
    pub gateway: Option<Gateway>,
    /// Checks whose failure can explain this one's, nearest cause first: its failure
    /// then says "follows from …" instead of giving a fix of its own.
    pub explained_by: &'static [&'static str],
    /// What its failure leaves undone, for the skips of the checks that need what it
    /// yields: "skipped: ID STOPS".
    pub stops: &'static str,
    /// What runs it (`None` for the `config.*` checks: doctor reads the APIs once and
    /// runs them together).
    #[serde(skip)]
    pub step: Option<Step>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

use super::ids;
use super::runner::{self, Step};
use crate::config::Gateway;
use Fact::*;

/// Every check of the probe, in report order.
pub const PROBE: &[Spec] = &[
    Spec {
        id: "tls.<host>",
        proves: "the certificate of the site, the team domain and Pocket ID is valid for the host; days to expiry (warn/fail thresholds)",
        needs: &[Site],
        waits: &[],
        yields: &[],
        gateway: None,
        runs: Runs::Always,
        explained_by: &[],
        stops: "failed",
        step: Some(runner::tls_hosts),
    },
    Spec {
        id: ids::SERVICE_REDIRECT,
        proves: "the site is **not** public: an anonymous GET is sent to a login — this team's Access login (reports the team domain and AUD) or oauth2-proxy's (its sign-in page, a redirect to `/oauth2/start` or `/oauth2/sign_in`, or straight to Pocket ID with its CSRF cookie; a script's `Accept: application/json` gets its 401 `{}`, so it asks again as a browser); reports which gateway, against `--gateway`. A 200 is a failure: *site is publicly reachable without login*",
        needs: &[Site],
        waits: &[],
        yields: &[AccessLogin, TeamDomain, Aud, ProxyLogin],
        gateway: None,
        runs: Runs::Always,
        explained_by: &[],
        stops: "did not reach a login",
        step: Some(runner::service_redirect),
    },
    Spec {
        id: ids::ACCESS_LOGIN,
        proves: "Access sends the login to Pocket ID's authorization endpoint, with a client_id, the callback `https://TEAM.cloudflareaccess.com/cdn-cgi/access/callback`, `response_type=code`, `openid` and `email` scopes, and PKCE S256 (a warning without)",
        needs: &[AccessLogin],
        waits: &[Discovery],
        yields: &[AuthorizeRequest, IdpUrl],
        gateway: Some(Gateway::Access),
        runs: Runs::Always,
        explained_by: &[],
        stops: "found no usable authorization request",
        step: Some(runner::access_login),
    },
    Spec {
        id: ids::O2P_START,
        proves: "oauth2-proxy's `/oauth2/start` sends the login to Pocket ID's authorization endpoint with a client_id, `redirect_uri` exactly `https://SITE/oauth2/callback` (its host, https), `response_type=code`, `openid` and `email` scopes, a `state` and PKCE S256 (a warning without), and sets its CSRF cookie (Secure, HttpOnly); the sign-in page in front of it is a warning (`--skip-provider-button`)",
        needs: &[ProxyLogin],
        waits: &[],
        yields: &[AuthorizeRequest, IdpUrl],
        gateway: Some(Gateway::OAuth2Proxy),
        runs: Runs::Always,
        explained_by: &[],
        stops: "found no usable authorization request",
        step: Some(runner::o2p_start),
    },
    Spec {
        id: ids::IDP_AUTHORIZE,
        proves: "Pocket ID, without a session, accepts that client and callback and asks for a login",
        needs: &[AuthorizeRequest],
        waits: &[],
        yields: &[Interaction, AuthorizeAsked],
        gateway: None,
        runs: Runs::Always,
        explained_by: &[],
        stops: "did not reach Pocket ID's login",
        step: Some(runner::idp_authorize),
    },
    Spec {
        id: ids::IDP_DISCOVERY,
        proves: "the issuer is exactly Pocket ID's public URL; the authorize, token and JWKS endpoints are the ones Cloudflare is configured with, on the public host",
        needs: &[IdpUrl],
        waits: &[],
        yields: &[Discovery],
        gateway: None,
        runs: Runs::Always,
        explained_by: &[],
        stops: "failed",
        step: Some(runner::idp_discovery),
    },
    Spec {
        id: ids::IDP_JWKS,
        proves: "at least one signing key; every key parses; algorithms agree with discovery and are ones Access can verify; unique kids",
        needs: &[IdpUrl],
        waits: &[Discovery],
        yields: &[],
        gateway: None,
        runs: Runs::Always,
        explained_by: &[],
        stops: "failed",
        step: Some(runner::idp_jwks),
    },
    Spec {
        id: ids::IDP_TOKEN,
        proves: "the token endpoint answers like Pocket ID's OAuth token endpoint, not a 404, a page or a challenge — without filling Pocket ID's error log: with `--client-secret-file` it authenticates and asks for a resource nobody defines (`invalid_target`, which also proves the secret); with `--passkey` the login's own code exchange proves it (the probe runs only when the login fails); otherwise a bogus code is sent (which Pocket ID logs as an error)",
        needs: &[IdpUrl],
        waits: &[],
        yields: &[],
        gateway: None,
        runs: Runs::Always,
        explained_by: &[],
        stops: "failed",
        step: Some(runner::idp_token),
    },
    Spec {
        id: ids::IDP_HEALTH,
        proves: "Pocket ID's `/healthz` answers 204",
        needs: &[IdpUrl],
        waits: &[],
        yields: &[],
        gateway: None,
        runs: Runs::Always,
        explained_by: &[],
        stops: "failed",
        step: Some(runner::idp_health),
    },
    Spec {
        id: ids::PASSKEY_LOGIN,
        proves: "the software passkey signs Pocket ID's challenge (`rpId` must be Pocket ID's host) and gets a session for its user",
        needs: &[Passkey, IdpUrl],
        waits: &[AuthorizeAsked],
        yields: &[IdpSession],
        gateway: None,
        runs: Runs::WithPasskey,
        explained_by: &[ids::IDP_DISCOVERY, ids::IDP_HEALTH],
        stops: "failed",
        step: Some(runner::passkey_login),
    },
    Spec {
        id: ids::IDP_CODE,
        proves: "Pocket ID's interaction completes (authenticate, consent the first time) and a code for the gateway's client goes to its callback (Access's, or oauth2-proxy's); `state` and `iss` round-trip",
        needs: &[Interaction, IdpSession],
        waits: &[Discovery],
        yields: &[Code],
        gateway: None,
        runs: Runs::WithPasskey,
        explained_by: &[ids::IDP_AUTHORIZE, ids::PASSKEY_LOGIN, ids::IDP_DISCOVERY],
        stops: "failed",
        step: Some(runner::idp_code),
    },
    Spec {
        id: ids::IDP_EXCHANGE,
        proves: "ssoprobe's own code flow: code redeemed with the secret, id_token verified against the JWKS (iss, aud, exp, nonce)",
        needs: &[Code, ClientSecret],
        waits: &[Discovery],
        yields: &[],
        gateway: None,
        runs: Runs::WithPasskeyAndSecret,
        explained_by: &[ids::IDP_TOKEN, ids::IDP_JWKS, ids::IDP_DISCOVERY],
        stops: "failed",
        step: Some(runner::idp_exchange),
    },
    Spec {
        id: ids::ACCESS_CALLBACK,
        proves: "Access redeems the code server-side and, through `/cdn-cgi/access/authorized`, sets `CF_Authorization` on the site; Access's error pages are named (failed code exchange, failed token verification, policy denied)",
        needs: &[Code],
        waits: &[Discovery],
        yields: &[AppSession],
        gateway: Some(Gateway::Access),
        runs: Runs::WithPasskey,
        explained_by: &[ids::IDP_TOKEN, ids::IDP_JWKS, ids::IDP_DISCOVERY],
        stops: "failed",
        step: Some(runner::access_callback),
    },
    Spec {
        id: ids::O2P_CALLBACK,
        proves: "oauth2-proxy redeems the code server to server at `/oauth2/callback` and sets its session cookie (`_oauth2_proxy`, or `_0`, `_1`… when split above 4 KB): Secure, HttpOnly, its expiry; its error pages are named (the generic 500 of a failed redemption, the one 403 of its e-mail, group and verified-e-mail rules, the CSRF 403)",
        needs: &[Code],
        waits: &[Discovery],
        yields: &[AppSession],
        gateway: Some(Gateway::OAuth2Proxy),
        runs: Runs::WithPasskey,
        explained_by: &[ids::IDP_TOKEN, ids::IDP_JWKS, ids::IDP_DISCOVERY],
        stops: "failed",
        step: Some(runner::o2p_callback),
    },
    Spec {
        id: ids::SERVICE_REACH,
        proves: "the original URL answers 200 (or `--expect-status`, and `--expect-body`) with the session — or with the service token; Cloudflare 530/1033 (tunnel down), 502 (local service down) are named; a 404 names its causes (no public hostname on the tunnel, the application itself) and, with the tunnel's configuration, which; behind oauth2-proxy, its 502 (upstream down) and a session its rules now refuse are named",
        needs: &[AppSession],
        waits: &[],
        yields: &[],
        gateway: None,
        runs: Runs::WithLoginOrServiceToken,
        explained_by: &[],
        stops: "failed",
        step: Some(runner::service_reach),
    },
    Spec {
        id: ids::ACCESS_TOKEN,
        proves: "`CF_Authorization` verifies against `https://TEAM.cloudflareaccess.com/cdn-cgi/access/certs`: RS256, known kid, `iss`, `aud` contains the AUD, `exp`/`nbf`, `email` is the passkey's user",
        needs: &[AppSession, TeamDomain],
        waits: &[],
        yields: &[],
        gateway: Some(Gateway::Access),
        runs: Runs::WithPasskey,
        explained_by: &[ids::SERVICE_REACH, ids::ACCESS_CALLBACK],
        stops: "failed",
        step: Some(runner::access_token),
    },
    Spec {
        id: ids::O2P_ENDPOINTS,
        proves: "oauth2-proxy's own endpoints through the site's host: `/ping` and `/ready` answer 200 `OK`, `/oauth2/auth` (forward-auth) 401 without a session — and, after the login, 202 with it, and `/oauth2/userinfo` names the passkey's user",
        needs: &[ProxyLogin],
        waits: &[AppSession],
        yields: &[],
        gateway: Some(Gateway::OAuth2Proxy),
        runs: Runs::Always,
        explained_by: &[],
        stops: "failed",
        step: Some(runner::o2p_endpoints),
    },
    Spec {
        id: ids::O2P_SESSION,
        proves: "signing out (`/oauth2/sign_out`) clears the session cookie and ends the session: the old cookie no longer passes `/oauth2/auth` (a warning when it does: the session lives in the cookie alone, so a copied cookie works until it expires)",
        needs: &[AppSession, ProxyLogin],
        waits: &[],
        yields: &[],
        gateway: Some(Gateway::OAuth2Proxy),
        runs: Runs::WithPasskey,
        explained_by: &[ids::SERVICE_REACH, ids::O2P_CALLBACK],
        stops: "failed",
        step: Some(runner::o2p_session),
    },
];

/// The `config.*` checks (`doctor`, or `check` with API credentials), in report order.
pub const CONFIG: &[Spec] = &[
    config(
        "config.token",
        "the token is valid and active (and not about to expire); the account",
        &[CloudflareConfig],
    ),
    config(
        "config.team",
        "the Zero Trust organization's team domain, against `--team`",
        &[CloudflareConfig],
    ),
    config(
        "config.app",
        "the application covering the site (wildcards, the most specific path wins), against `--aud`; Instant Auth on with exactly one login method, which is Pocket ID; Pocket ID's token and keys not behind Access",
        &[CloudflareConfig],
    ),
    config(
        "config.policy",
        "the policies, evaluated for the monitoring user in Cloudflare's order (Bypass, then Allow/Block; include/require/exclude, Access groups, login-method and OIDC-claim rules); a Bypass for everyone, Service Auth only, approval or justification a probe cannot give",
        &[CloudflareConfig],
    ),
    config(
        "config.login_method",
        "Auth, Token and Certificate URLs against Pocket ID's discovery (the public ones where discovery names an internal host); the client id against `--client-id`; a signing algorithm Access can verify; without Pocket ID's URL, that the application offers one OpenID Connect login method whose Auth URL names it",
        &[CloudflareConfig, IdpUrl],
    ),
    config(
        "config.scopes",
        "`openid` and `email` asked for, no scope Pocket ID refuses, the e-mail claim Pocket ID sends, `groups` asked for when a policy matches on it",
        &[CloudflareConfig],
    ),
    config(
        "config.pkce",
        "PKCE in Access against the client's requirement (and a public client's)",
        &[CloudflareConfig, PocketIdConfig],
    ),
    config(
        "config.tunnel",
        "the tunnels serving the site and Pocket ID: status, live connections, a public hostname for the host, the Access check of the ingress rule against the application's AUD and team",
        &[CloudflareConfig],
    ),
    config(
        "config.dns",
        "the records of both hosts: proxied, and pointing at the tunnel whose ingress serves them",
        &[CloudflareConfig],
    ),
    config(
        "config.waf",
        "Bot Fight Mode on Pocket ID's zone (it can challenge Access's own requests for tokens and keys)",
        &[CloudflareConfig, IdpUrl],
    ),
    config(
        "config.api_key",
        "the Pocket ID key reads the admin API (an admin's, not expired)",
        &[PocketIdConfig, IdpUrl],
    ),
    config(
        "config.discovery",
        "issuer is the public URL (APP_URL); no internal token/JWKS URL advertised",
        &[IdpUrl],
    ),
    config(
        "config.client",
        "the OIDC client Access uses exists; Access's callback for this team is registered exactly; PAR not required; an active, not expiring secret; re-authentication",
        &[PocketIdConfig, IdpUrl],
    ),
    config(
        "config.user",
        "the monitoring user exists, is enabled, has a passkey, and is in a group the client admits",
        &[PocketIdConfig, IdpUrl],
    ),
];

const fn config(id: &'static str, proves: &'static str, needs: &'static [Fact]) -> Spec {
    // A check of Cloudflare's configuration alone is the Access gateway's.
    let mut i = 0;
    let (mut cloudflare, mut pocket_id) = (false, false);
    while i < needs.len() {
        cloudflare |= matches!(needs[i], CloudflareConfig);
        pocket_id |= matches!(needs[i], PocketIdConfig);
        i += 1;
    }
    Spec {
        id,
        proves,
        needs,
        waits: &[],
        yields: &[],
        gateway: if cloudflare && !pocket_id {
            Some(Gateway::Access)
        } else {
            None
        },
        runs: Runs::WithApiCredentials,
        explained_by: &[],
        stops: "failed",
        step: None,
    }
}

/// Every check, the probe's first.
pub fn all() -> impl Iterator<Item = &'static Spec> {
    PROBE.iter().chain(CONFIG)
}

/// The declaration of check `id` (`tls.<anything>` is `tls.<host>`).
pub fn of(id: &str) -> Option<&'static Spec> {
    let id = if id.starts_with(ids::TLS_PREFIX) {
        "tls.<host>"
    } else {
        id
    };
    all().find(|s| s.id == id)
}

/// When a run asks for `spec`, in words, with the gateway whose chain it belongs to:
/// "always", "with --passkey, behind oauth2-proxy".
pub fn runs_text(spec: &Spec) -> String {
    match spec.gateway {
        Some(g) => format!("{}, behind {}", spec.runs.text(), g.title()),
        None => spec.runs.text().to_string(),
    }
}

/// What makes `spec` skip, in words: for each fact it needs, the flag that gives it or
/// the checks that yield it.
pub fn skips_when(spec: &Spec) -> Vec<String> {
    let last_request_waits = spec.waits.contains(&AuthorizeAsked).then(|| {
        format!(
            "{} is never sent (its last request waits for it)",
            ids::IDP_AUTHORIZE
        )
    });
    spec.needs
        .iter()
        .map(|fact| match fact.given() {
            Some(_) if *fact == Site => "never: the site's URL is required".to_string(),
            Some(flag) => format!("{} is not given ({flag})", fact.text()),
            None => {
                let from: Vec<&str> = PROBE
                    .iter()
                    .filter(|s| s.yields.contains(fact))
                    .map(|s| s.id)
                    .collect();
                let given = match fact {
                    TeamDomain => " and --team is not given",
                    IdpUrl => " and neither --idp nor --passkey gives it",
                    _ => "",
                };
                if from.is_empty() {
                    format!("{} is unknown", fact.text())
                } else {
                    format!("{} fails{given}", from.join(" or "))
                }
            }
        })
        .chain(last_request_waits)
        .collect()
}

/// The checks as a Markdown table (`| id | what it proves | needs | skips when |`).
pub fn markdown(specs: &[Spec]) -> String {
    let mut out =
        String::from("| id | what it proves | runs | skips when |\n| --- | --- | --- | --- |\n");
    for s in specs {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            s.id,
            s.proves,
            runs_text(s),
            skips_when(s).join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_is_declared_once_and_its_causes_are_checks() {
        let ids: Vec<&str> = all().map(|s| s.id).collect();
        for (i, id) in ids.iter().enumerate() {
            assert!(!ids[..i].contains(id), "{id} declared twice");
        }
        for s in all() {
            for cause in s.explained_by {
                assert!(ids.contains(cause), "{}: unknown cause {cause}", s.id);
                assert_ne!(*cause, s.id, "{} explains itself", s.id);
            }
        }
        for id in [
            ids::SERVICE_REDIRECT,
            ids::ACCESS_LOGIN,
            ids::IDP_AUTHORIZE,
            ids::IDP_DISCOVERY,
            ids::IDP_JWKS,
            ids::IDP_TOKEN,
            ids::IDP_HEALTH,
            ids::PASSKEY_LOGIN,
            ids::IDP_CODE,
            ids::IDP_EXCHANGE,
            ids::ACCESS_CALLBACK,
            ids::SERVICE_REACH,
            ids::ACCESS_TOKEN,
        ] {
            assert!(of(id).is_some(), "{id} is not declared");
        }
        assert_eq!(of("tls.id.example.com").map(|s| s.id), Some("tls.<host>"));
    }

    #[test]
    fn the_checks_of_cloudflare_alone_are_the_access_gateways() {
        let access: Vec<&str> = CONFIG
            .iter()
            .filter(|s| s.gateway == Some(Gateway::Access))
            .map(|s| s.id)
            .collect();
        assert_eq!(access, crate::doctor::ids::CLOUDFLARE);
    }

    #[test]
    fn every_fact_a_check_needs_is_given_or_yielded_by_an_earlier_check() {
        for (i, s) in PROBE.iter().enumerate() {
            for fact in s.needs {
                let yielded = PROBE[..i].iter().any(|e| e.yields.contains(fact));
                assert!(
                    fact.given().is_some() || yielded,
                    "{} needs {fact:?}, which no earlier check yields",
                    s.id
                );
            }
        }
    }
}
