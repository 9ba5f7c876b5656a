//! `config.api_key`, `config.discovery`, `config.client`, `config.user`: Pocket ID's admin
//! API key, its discovery document, the OIDC client Access uses and the monitoring user.

use super::model::{PidClient, PidUser};
use super::{
    EXPIRY_WARN_DAYS, Facts, NO_PID, Pid, access_client, callback_matches, host_of, norm_url,
    pid_problem, text,
};
use crate::finding::Findings;
use crate::pocketid::api::ApiError;
use crate::text::server_text;
use std::collections::BTreeSet;

impl Facts<'_> {
    pub(super) fn api_key(&self, f: &mut Findings) -> Result<String, String> {
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

    pub(super) fn discovery_check(&self, f: &mut Findings) -> Result<String, String> {
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
                    server_text(&issuer)
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

    pub(super) fn client(&self, f: &mut Findings) -> Result<String, String> {
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
                return Err(match self.relying {
                    Some(r) => format!("skipped: which client? no Pocket ID client lists {}'s callback {}, and the run saw no client id; pass --client-id", r.gateway.who(), r.callback),
                    None => "skipped: which client? no Cloudflare login method names one, and no Pocket ID client lists an Access callback; pass --client-id or --cf-api-token-file".into(),
                });
            }
            Some(Err(ApiError::Answer { status: 404, .. })) => {
                self.fail_unknown_client(f, pid);
                return Ok(String::new());
            }
            Some(Err(e)) => {
                pid_problem(f, "the OIDC client", e);
                return Ok(String::new());
            }
            Some(Ok(c)) => c,
        };
        let name = server_text(&client.name);
        f.detail("client", name.clone());
        let who = self.who();
        match (self.relying, self.team_domain()) {
            (Some(r), _) => judge_callback(f, client, &name, &r.callback, who),
            (None, Some(team)) => judge_callback(
                f,
                client,
                &name,
                &crate::cloudflare::callback_url(&team),
                who,
            ),
            (None, None) => f.detail(
                "callback",
                "not checked: the team is unknown (pass --team or --cf-api-token-file)",
            ),
        }
        // Evidence for idp.authorize's "error=error": Pocket ID's answer to a client that
        // requires PAR names nothing.
        f.detail(
            "requires_par",
            client.requires_pushed_authorization_requests,
        );
        if client.requires_pushed_authorization_requests {
            f.fail(
                format!("Pocket ID's client \"{name}\" requires pushed authorization requests (PAR), which {who} does not send"),
                format!("turn off \"Requires Pushed Authorization Requests\" on the client (OIDC Clients → {name} → Show Advanced Options)"),
            );
        }
        if !client.is_public {
            judge_secrets(f, client, &name, self.relying.is_some());
        }
        if client.requires_reauthentication {
            f.warn(
                format!("Pocket ID's client \"{name}\" requires re-authentication: every {who} login asks for the passkey again"),
                format!("turn off \"Requires re-authentication\" on the client (OIDC Clients → {name}) unless that is intended"),
            );
        }
        Ok(format!(
            "Pocket ID's client \"{name}\" lists {who}'s callback"
        ))
    }

    /// Fails a client id Pocket ID does not know, suggesting the client whose callback is
    /// Access's when there is one.
    fn fail_unknown_client(&self, f: &mut Findings, pid: &Pid) {
        let id = self
            .idp
            .and_then(|i| i.config.client_id.clone())
            .or_else(|| self.config.client_id.clone())
            .unwrap_or_default();
        let callback = match self.relying {
            Some(r) => Some(r.callback.clone()),
            None => self
                .team_domain()
                .map(|t| crate::cloudflare::callback_url(&t)),
        };
        let suggestion = pid
            .clients
            .as_ref()
            .ok()
            .and_then(|cs| access_client(cs, callback.as_deref()));
        f.fail(
            format!("client id {} is not a Pocket ID OIDC client", server_text(&id)),
            match (suggestion, self.relying) {
                (Some(s), Some(_)) => format!("start oauth2-proxy with --client-id={s}, the Pocket ID client whose callback is oauth2-proxy's"),
                (None, Some(r)) => format!("create an OIDC client for oauth2-proxy in Pocket ID (OIDC Clients → Add) with the callback {}, and give its Client ID and secret to oauth2-proxy", r.callback),
                (Some(s), None) => format!("set the login method's App ID to {s}, the Pocket ID client whose callback is Access's (Settings → Authentication → Pocket ID)"),
                (None, None) => "create an OIDC client for Cloudflare in Pocket ID (OIDC Clients → Add) and paste its Client ID into the login method's App ID".into(),
            },
        );
    }

    pub(super) fn user(&self, f: &mut Findings) -> Result<String, String> {
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
        let uname = server_text(&user.username);
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
            judge_allowed_groups(f, client, user, &uname);
        }
        // oauth2-proxy refuses an unverified address (one 403 for all its rules).
        if let Some(verified) = user.email_verified {
            f.detail("email_verified", verified);
            if !verified && self.relying.is_some() {
                f.fail(
                    format!("Pocket ID user {uname}'s e-mail address {email} is not verified: oauth2-proxy refuses the login with its generic 403"),
                    format!("mark the address verified (Users → {uname}), or start oauth2-proxy with --insecure-oidc-allow-unverified-email"),
                );
            }
        }
        f.detail(
            "groups",
            user.user_groups
                .iter()
                .take(20)
                .map(|g| server_text(&g.name))
                .collect::<Vec<_>>(),
        );
        Ok(format!(
            "Pocket ID user {uname} is enabled, has a passkey and may use the client"
        ))
    }
}

/// Judges the client's callback URLs: the gateway's `callback` (Access's for this team,
/// or oauth2-proxy's) must be among them; `who` names the gateway.
fn judge_callback(f: &mut Findings, client: &PidClient, name: &str, callback: &str, who: &str) {
    if client.callback_urls.is_empty() {
        f.fail(
            format!("Pocket ID's client \"{name}\" has no callback URL: Pocket ID refuses every login for it"),
            format!("add {callback} to the client's Callback URLs (OIDC Clients → {name})"),
        );
    } else if !client
        .callback_urls
        .iter()
        .any(|u| callback_matches(u, callback))
    {
        let team = url::Url::parse(callback)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let other_team = client.callback_urls.iter().find(|u| {
            callback.contains(".cloudflareaccess.com/")
                && u.contains(".cloudflareaccess.com/")
                && !u.contains(&team)
        });
        let near = client
            .callback_urls
            .iter()
            .find_map(|u| crate::text::small_difference(u, callback).map(|fix| (u, fix)));
        if let Some((listed, fix)) = near {
            f.fail(
                format!(
                    "Pocket ID's client \"{name}\" lists {}, {who} sends {callback}",
                    server_text(listed)
                ),
                format!(
                    "{fix} in the client's Callback URLs (OIDC Clients → {name}): it must read exactly {callback}"
                ),
            );
            return;
        }
        let finding = match other_team {
            Some(o) => format!(
                "Pocket ID's client \"{name}\" lists the callback of another team ({}), not {callback}",
                server_text(o)
            ),
            None => format!(
                "Pocket ID's client \"{name}\" does not list {who}'s callback {callback} (it lists {})",
                text::list(&client.callback_urls, ", ")
            ),
        };
        f.fail(finding, format!("add exactly {callback} (no trailing slash) to the client's Callback URLs (OIDC Clients → {name})"));
    }
}

/// Judges a confidential client's secrets: every one expired fails (Access's code
/// exchange would get invalid_client), the last ones expiring soon warns.
fn judge_secrets(f: &mut Findings, client: &PidClient, name: &str, proxied: bool) {
    let (who, paste) = if proxied {
        (
            "oauth2-proxy",
            "give it to oauth2-proxy (--client-secret-file) and restart it",
        )
    } else {
        (
            "Access",
            "paste it into the Access login method's Client secret",
        )
    };
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
            format!("every secret of Pocket ID's client \"{name}\" has expired: {who}'s code exchange gets invalid_client"),
            format!("create a new client secret (OIDC Clients → {name} → Client secrets) and {paste}"),
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
            format!(
                "the last active secret of Pocket ID's client \"{name}\" expires in {days} days"
            ),
            format!(
                "create a new secret (OIDC Clients → {name}) and {paste} before the old one expires"
            ),
        );
    }
}

/// Fails a user in none of the groups a group-restricted client admits: Pocket ID
/// refuses the login.
fn judge_allowed_groups(f: &mut Findings, client: &PidClient, user: &PidUser, uname: &str) {
    let allowed: BTreeSet<&str> = client
        .allowed_user_groups
        .iter()
        .map(|g| g.id.as_str())
        .collect();
    if user
        .user_groups
        .iter()
        .any(|g| allowed.contains(g.id.as_str()))
    {
        return;
    }
    let names: Vec<String> = client
        .allowed_user_groups
        .iter()
        .map(|g| server_text(&g.friendly_name))
        .collect();
    f.fail(
        format!(
            "Pocket ID's client \"{}\" admits only {}, and user {uname} is in none of them: Pocket ID answers \"You are not allowed to access this service\"",
            server_text(&client.name),
            if names.is_empty() { "members of no group".to_string() } else { format!("the groups {}", text::list(&names, ", ")) }
        ),
        format!(
            "add {uname} to {} (User Groups → the group → Users), or allow one of the user's groups on the client (OIDC Clients → {} → Allowed user groups)",
            names.first().map_or_else(|| "an allowed group".to_string(), |n| format!("the group {n}")),
            server_text(&client.name)
        ),
    );
}
