//! `config.token`, `config.team`, `config.app`, `config.policy`: the API token, the team,
//! the Access application covering the site, and whether its policies admit the user.

use super::cfapi::{CfError, perm};
use super::model::Policy;
use super::read_cf::covering;
use super::{EXPIRY_WARN_DAYS, Facts, NO_CF, cf_problem, ids, rules, text};
use crate::finding::Findings;
use crate::text::server_text;

impl Facts<'_> {
    pub(super) fn token(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf.ok_or_else(|| NO_CF.to_string())?;
        let account = match &cf.account {
            Ok((id, name)) => {
                f.detail("account_id", id.clone());
                if name.is_empty() {
                    id.clone()
                } else {
                    format!("{} ({id})", server_text(name))
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
                        format!("the API token's status is \"{}\", not active", server_text(&t.status)),
                        "enable or roll the token (My Profile → API Tokens), or create a new one with the Read permissions listed in ssoprobe's docs/doctor.md",
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

    pub(super) fn team(&self, f: &mut Findings) -> Result<String, String> {
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

    pub(super) fn app(&self, f: &mut Findings) -> Result<String, String> {
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
        // (Without Pocket ID's URL there is no host of its to look for.)
        let idp_host = self.config.idp.host_str().unwrap_or_default();
        let idp_paths = if self.idp_known {
            &[
                crate::pocketid::oidc::paths::TOKEN,
                crate::pocketid::oidc::paths::JWKS,
            ][..]
        } else {
            &[]
        };
        for &p in idp_paths {
            if let Some((app, pattern)) = rules::covering_app(apps, idp_host, p)
                && !app.bypasses_everyone()
            {
                f.fail(
                    format!("Access application \"{}\" ({pattern}) covers Pocket ID's {p}", server_text(&app.name)),
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
        let name = server_text(&app.name);
        f.detail("application", name.clone());
        f.detail("application_pattern", server_text(&pattern));
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

    pub(super) fn policy(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf()?;
        let Some(app) = covering(self.config, cf) else {
            return Err(format!(
                "skipped: follows from {}: no application covers the site",
                ids::APP
            ));
        };
        let name = server_text(&app.name);
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
        if self.refuses_people(f, policies, &name) {
            return Ok(String::new());
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
        let scopes_have_groups = self.scopes_have_groups();
        let claim = self.groups_claim(scopes_have_groups);
        let person = rules::Person {
            email,
            idp_id: self.idp.map(|i| i.id.as_str()).unwrap_or_default(),
            groups: claim.as_deref(),
        };
        self.fail_display_name_claims(f, policies, &name);
        let mut eval = rules::Evaluator::new(&person, groups);
        match eval.decide(policies) {
            rules::Decision::Allowed(p) => {
                warn_unattended_steps(f, policies, &p, email, &name);
                Ok(format!(
                    "policy \"{}\" of application \"{name}\" admits {email}",
                    server_text(&p)
                ))
            }
            rules::Decision::Bypassed(p) => {
                f.fail(
                    format!("Bypass policy \"{}\" of application \"{name}\" includes everyone: the site is public", server_text(&p)),
                    format!("remove the Bypass policy or narrow it to the paths that must be public (Access → Applications → {name} → Policies)"),
                );
                Ok(String::new())
            }
            rules::Decision::Blocked(p) => {
                f.fail(
                    format!("Block policy \"{}\" of application \"{name}\" matches {email}", server_text(&p)),
                    format!("narrow the Block policy, or move an Allow policy for {email} above it (Access → Applications → {name} → Policies)"),
                );
                Ok(String::new())
            }
            rules::Decision::NoMatch => {
                let claim_unsent =
                    !scopes_have_groups && !rules::groups_claim_values(policies).is_empty();
                self.fail_no_allow(f, policies, &mut eval, email, &name, claim_unsent);
                Ok(String::new())
            }
            rules::Decision::Unknown { policy, why } => {
                // Rule: what configuration cannot decide is "cannot tell", naming why, never a guess.
                let (finding, hint) = cannot_tell(&server_text(&policy), why, &name, email);
                f.warn(finding, hint);
                Ok(String::new())
            }
        }
    }

    /// Judges the Service Auth policies: true (failed) when they are the only ones, so
    /// that people are refused; a warning when a service token is configured and no
    /// policy would take it.
    fn refuses_people(&self, f: &mut Findings, policies: &[Policy], name: &str) -> bool {
        if !policies.is_empty() && policies.iter().all(|p| p.decision == "non_identity") {
            f.fail(
                format!("application \"{name}\" has only Service Auth policies: people are refused (Access answers 403 Forbidden)"),
                format!("add an Allow policy that includes your users (Access → Applications → {name} → Policies)"),
            );
            return true;
        }
        if self.config.service_token.is_some()
            && !policies.iter().any(|p| p.decision == "non_identity")
        {
            f.warn(
                format!("application \"{name}\" has no Service Auth policy: service tokens are sent to the login"),
                format!("add a Service Auth policy including the service token (Access → Applications → {name} → Policies → Add → Action: Service Auth)"),
            );
        }
        false
    }

    /// Whether the Pocket ID login method asks for the `groups` scope, without which
    /// Access never receives the groups claim.
    fn scopes_have_groups(&self) -> bool {
        self.idp
            .and_then(|i| i.config.scopes.as_ref())
            .is_some_and(|s| s.iter().any(|x| x == "groups"))
    }

    /// The groups claim Access receives for the user: empty without the `groups` scope,
    /// else the names of the user's Pocket ID groups (None when the user was not read).
    fn groups_claim(&self, scopes_have_groups: bool) -> Option<Vec<String>> {
        if !scopes_have_groups {
            return Some(Vec::new());
        }
        self.pid.and_then(|p| match &p.user {
            Some(Ok(Some(u))) => Some(u.user_groups.iter().map(|g| g.name.clone()).collect()),
            _ => None,
        })
    }

    /// Fails each groups-claim rule written with a Pocket ID group's display name of
    /// the user: the claim carries the group's name.
    fn fail_display_name_claims(&self, f: &mut Findings, policies: &[Policy], name: &str) {
        let Some(Ok(Some(user))) = self.pid.and_then(|p| p.user.as_ref()) else {
            return;
        };
        for value in rules::groups_claim_values(policies) {
            if let Some(g) = user
                .user_groups
                .iter()
                .find(|g| g.friendly_name == value && g.name != value)
            {
                f.fail(
                    format!("a policy of application \"{name}\" matches the groups claim against \"{}\", Pocket ID's display name; the claim carries the group's name \"{}\"", server_text(value), server_text(&g.name)),
                    format!("change the rule's claim value to {} (Access → Applications → {name} → Policies)", server_text(&g.name)),
                );
            }
        }
    }

    /// Fails a user no Allow policy admits, saying why each does not; the hint names the
    /// groups scope when a policy matches on a claim Access never receives
    /// (`claim_unsent`).
    fn fail_no_allow<'a>(
        &self,
        f: &mut Findings,
        policies: &'a [Policy],
        eval: &mut rules::Evaluator<'a>,
        email: &str,
        name: &str,
        claim_unsent: bool,
    ) {
        let names = |id: &str| self.idp_name(id);
        let allow: Vec<&Policy> = policies.iter().filter(|p| p.decision == "allow").collect();
        let reasons = text::list(
            allow
                .iter()
                .map(|p| format!("\"{}\": {}", server_text(&p.name), eval.why_not(p, &names))),
            "; ",
        );
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
    }
}

/// Warns for each step of the admitting policy `p` a person must take (approval, a
/// justification, browser isolation): an unattended login cannot.
fn warn_unattended_steps(f: &mut Findings, policies: &[Policy], p: &str, email: &str, name: &str) {
    let Some(policy) = policies.iter().find(|x| x.name == p) else {
        return;
    };
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
                format!("policy \"{}\" admits {email} but requires {what}: an unattended login cannot pass it", server_text(p)),
                format!("give the monitoring user its own Allow policy without {what} (Access → Applications → {name} → Policies)"),
            );
        }
    }
}

/// The finding and hint of a policy whose verdict configuration cannot decide, naming
/// why; the texts `why` carries come cut (see [`rules::Unknowable`]).
fn cannot_tell(policy: &str, why: rules::Unknowable, name: &str, email: &str) -> (String, String) {
    let login = "check with a login: run `ssoprobe check --passkey FILE` with the same settings";
    match why {
        rules::Unknowable::Rule(kind) => (
            format!(
                "policy \"{policy}\" of application \"{name}\" has rules ssoprobe cannot evaluate from configuration (IP ranges, device posture, lists): {}",
                if kind.is_empty() {
                    "a rule of no known shape".to_string()
                } else {
                    format!("a rule of type {kind}")
                }
            ),
            login.to_string(),
        ),
        rules::Unknowable::Cycle(groups) => {
            let first = groups.first().map_or("", String::as_str);
            // The groups along the cycle (no more than the nesting followed), then
            // the first again.
            let along: Vec<String> = groups
                .iter()
                .take(groups.len().saturating_sub(1))
                .map(|g| format!("\"{g}\""))
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
                "ssoprobe cannot tell whether policy \"{policy}\" of application \"{name}\" admits {email}: a rule names Access group {id}, which is not among the groups read"
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
    }
}
