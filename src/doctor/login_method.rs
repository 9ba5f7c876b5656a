//! `config.login_method`, `config.scopes`, `config.pkce`: Access's login method for Pocket
//! ID against Pocket ID's discovery and client.

use super::read_cf::{app_oidc_methods, covering, pocket_id_of};
use super::{Facts, cf_problem, host_of, ids, norm_url, rules, text};
use crate::finding::Findings;
use crate::pocketid::oidc::ACCESS_ALGS;
use crate::text::server_text;

impl Facts<'_> {
    pub(super) fn login_method(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf()?;
        let idps = match &cf.idps {
            Ok(i) => i,
            Err(e) => {
                cf_problem(f, e);
                return Ok(String::new());
            }
        };
        if !self.idp_known {
            return self.login_method_without_idp(f, idps);
        }
        let idp_url = self.config.idp.as_str().trim_end_matches('/');
        let Some(idp) = self.idp else {
            f.fail(
                format!("no OpenID Connect login method points at {idp_url} (of {} login methods read)", idps.len()),
                format!("add one: Zero Trust → Settings → Authentication → Login methods → Add new → OpenID Connect, with Auth URL {idp_url}/authorize, Token URL {idp_url}/api/oidc/token, Certificate URL {idp_url}/.well-known/jwks.json and PKCE on"),
            );
            return Ok(String::new());
        };
        let name = server_text(&idp.name);
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
            // Evidence for the probe's symptoms (checks::causes).
            f.detail(
                &format!("{field}_ok"),
                got.as_ref()
                    .is_some_and(|g| norm_url(g) == norm_url(&expected)),
            );
            match got {
                Some(got) if norm_url(got) == norm_url(&expected) => {}
                Some(got) => f.fail(
                    format!("{label} of login method \"{name}\" is {}, not {expected}", server_text(got)),
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
                format!("Pocket ID signs id_tokens with {}, which Access cannot verify", server_text(alg)),
                "rotate Pocket ID's signing key to RS256 (`pocket-id key-rotate --alg RS256`, then restart it)",
            );
        }
        Ok(format!(
            "login method \"{name}\" points at {public} with the URLs its discovery document names"
        ))
    }

    /// Without Pocket ID's URL, it is the Auth URL of the one OpenID Connect login
    /// method the site's application offers: says why that does not name it (none,
    /// several, an Auth URL that is not Pocket ID's authorize endpoint). When it does,
    /// the checks of Pocket ID's URLs skip like the others that need it.
    fn login_method_without_idp(
        &self,
        f: &mut Findings,
        idps: &[super::model::IdentityProvider],
    ) -> Result<String, String> {
        let cf = self.cf()?;
        let Some(app) = covering(self.config, cf) else {
            return Err(format!(
                "skipped: follows from {}: no application covers the site",
                ids::APP
            ));
        };
        let app_name = server_text(&app.name);
        let oidc = app_oidc_methods(app, idps);
        match oidc.as_slice() {
            [] => f.fail(
                format!("application \"{app_name}\" offers no OpenID Connect login method (of {} login methods read), so no login reaches Pocket ID", idps.len()),
                format!("add Pocket ID as an OpenID Connect login method (Zero Trust → Settings → Authentication → Login methods → Add new → OpenID Connect; Auth URL: Pocket ID's APP_URL followed by /authorize) and select it under Access → Applications → {app_name} → Login methods"),
            ),
            [one] => match pocket_id_of(one) {
                Some(_) => return Err(super::IDP_NOT_KNOWN.into()),
                None => {
                    let name = server_text(&one.name);
                    let auth_url = one.config.auth_url.as_deref().map(server_text);
                    f.fail(
                        format!(
                            "the Auth URL of login method \"{name}\" ({}) is not an https URL ending in /authorize, so it names no Pocket ID",
                            auth_url.as_deref().unwrap_or("none")
                        ),
                        format!("set Auth URL to Pocket ID's APP_URL followed by /authorize, e.g. https://id.example.com/authorize (Settings → Authentication → {name}), or give --idp with Pocket ID's URL"),
                    );
                }
            },
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|i| format!("\"{}\"", i.name))
                    .collect();
                f.warn(
                    format!(
                        "cannot tell which login method is Pocket ID: application \"{app_name}\" offers {} OpenID Connect login methods ({})",
                        many.len(),
                        text::list(&names, ", ")
                    ),
                    "give --idp with Pocket ID's URL (its APP_URL, e.g. https://id.example.com): doctor then judges the login method whose Auth URL is on it",
                );
            }
        }
        Ok(String::new())
    }

    pub(super) fn scopes(&self, f: &mut Findings) -> Result<String, String> {
        self.cf()?;
        let Some(idp) = self.idp else {
            return Err(format!(
                "skipped: follows from {}: no Pocket ID login method",
                ids::LOGIN_METHOD
            ));
        };
        let name = server_text(&idp.name);
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
        f.detail("scopes_have_email", !missing.contains(&"email"));
        if !missing.is_empty() {
            f.fail(
                format!("login method \"{name}\" does not ask for the scope {}: Pocket ID then sends no e-mail address and Access cannot identify the user", missing.join(" and ")),
                format!("set the scopes to openid email profile (Settings → Authentication → {name} → OIDC scopes; API field config.scopes)"),
            );
        }
        let unsupported: Vec<&String> = scopes.iter().filter(|s| !supported.contains(s)).collect();
        if !unsupported.is_empty() {
            // Pocket ID drops scopes it does not know (IgnoreUnknownScopes): the login
            // goes on without what they would have given.
            f.warn(
                format!("login method \"{name}\" asks for the scope {}, which Pocket ID does not offer: Pocket ID ignores it, so nothing it was meant to give arrives", text::list(&unsupported, ", ")),
                format!("remove {} from the scopes of \"{name}\"; Pocket ID offers {}", text::list(&unsupported, ", "), text::list(&supported, ", ")),
            );
        }
        let mut email_claim_ok = true;
        if let Some(claim) = idp
            .config
            .email_claim_name
            .as_deref()
            .filter(|c| !c.is_empty() && *c != "email")
        {
            let known = self
                .discovery
                .is_some_and(|d| d.claims_supported.iter().any(|x| x == claim));
            email_claim_ok = known;
            if !known {
                f.fail(
                    format!("login method \"{name}\" reads the e-mail address from the claim \"{}\", which Pocket ID does not send", server_text(claim)),
                    format!("set Email claim to email (Settings → Authentication → {name}; API field config.email_claim_name)"),
                );
            }
        }
        f.detail("email_claim_ok", email_claim_ok);
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

    pub(super) fn pkce(&self, f: &mut Findings) -> Result<String, String> {
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
                let name = server_text(&idp.name);
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
            (Err(a), Ok(client)) => {
                let cname = server_text(&client.name);
                // Not read for want of a token, or because reading failed (the
                // check that failed says why).
                let unread = match a.strip_prefix("skipped: ") {
                    _ if self.relying.is_some() => {
                        "oauth2-proxy has no API: o2p.start shows whether it sends it".to_string()
                    }
                    Some(follows) if follows.starts_with("follows from") => follows.to_string(),
                    _ => "pass --cf-api-token-file to see whether it sends it".to_string(),
                };
                if client.pkce_enabled || client.is_public {
                    Ok(format!(
                        "Pocket ID's client \"{cname}\" requires PKCE ({}'s side not read: {unread})",
                        self.who()
                    ))
                } else {
                    f.warn(
                        format!("Pocket ID's client \"{cname}\" does not require PKCE: a stolen code can be redeemed without the verifier"),
                        if self.relying.is_some() {
                            format!("{enforce}, after checking that oauth2-proxy runs with --code-challenge-method=S256")
                        } else {
                            format!("{enforce}, after checking that the Access login method has PKCE on")
                        },
                    );
                    Ok(String::new())
                }
            }
            (Ok(idp), Ok(client)) => {
                let name = server_text(&idp.name);
                let cname = server_text(&client.name);
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
}
