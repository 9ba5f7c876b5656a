//! `config.tunnel`, `config.dns`, `config.waf`: the tunnels that route the site and Pocket
//! ID, their DNS records and Bot Fight Mode.

use super::model::Ingress;
use super::read_cf::covering;
use super::{Cf, Facts, TunnelFacts, cf_problem, rules, text};
use crate::finding::Findings;
use crate::text::server_text;

impl Facts<'_> {
    pub(super) fn tunnel(&self, f: &mut Findings) -> Result<String, String> {
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
        let site = self.config.service.host_str().unwrap_or_default();
        let mut serving = Vec::new();
        for (host, dns_target) in routed(cf) {
            let Some(t) = tunnel_of(tunnels, &host, dns_target.as_deref()) else {
                continue;
            };
            let tname = server_text(&t.tunnel.name);
            if fail_dns_to_dead_tunnel(f, tunnels, t, &host, &tname) {
                continue;
            }
            serving.push(format!("{host} by \"{tname}\""));
            judge_status(f, t, &host, &tname);
            judge_connectors(f, t, &host, &tname);
            if host.eq_ignore_ascii_case(site)
                && let Some(routed) = site_routed(t, &host)
            {
                f.detail("site_hostname_routed", routed);
            }
            match &t.config {
                Some(Ok(_)) => match ingress_for(t, &host) {
                    None => f.fail(
                        format!("tunnel \"{tname}\" has no public hostname for {host}: its catch-all rule answers"),
                        format!("add a public hostname {host} → the service's address to tunnel \"{tname}\" (Networks → Tunnels → {tname} → Public Hostname)"),
                    ),
                    Some(rule) => judge_access_protection(
                        f,
                        rule,
                        &host,
                        &tname,
                        aud.as_deref(),
                        team.as_deref(),
                    ),
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

    pub(super) fn dns(&self, f: &mut Findings) -> Result<String, String> {
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
            let zone_name = server_text(&zone.name);
            let Some(record) = records.first() else {
                f.fail(
                    format!("zone {zone_name} has no DNS record for {host}"),
                    format!("add a proxied CNAME {host} → <tunnel id>.cfargotunnel.com (or let the tunnel's Public Hostname create it)"),
                );
                continue;
            };
            let content = server_text(&record.content);
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
                    // read), or is down, while a tunnel that is up has one: the record
                    // points at the wrong tunnel. A rule left only on a tunnel that is
                    // down is no place to point it (config.tunnel names the missing rule).
                    let target_lacks_rule =
                        matches!(&t.config, Some(Ok(_))) && ingress_for(t, host).is_none();
                    if let Some(s) = serving
                        && s.tunnel.id != t.tunnel.id
                        && !is_down(s)
                        && (target_lacks_rule || is_down(t))
                    {
                        let why = if target_lacks_rule {
                            "which has no public hostname for it".to_string()
                        } else {
                            format!("which is {}", t.tunnel.status.as_deref().unwrap_or_default())
                        };
                        f.fail(
                            format!("{host} points at tunnel \"{}\", {why}; its public hostname is served by tunnel \"{}\"", server_text(&t.tunnel.name), server_text(&s.tunnel.name)),
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

    pub(super) fn waf(&self, f: &mut Findings) -> Result<String, String> {
        let cf = self.cf()?;
        if !self.idp_known {
            return Err(super::IDP_NOT_KNOWN.into());
        }
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
                f.detail("bot_fight_mode", true);
                f.warn(
                    format!("Bot Fight Mode is on for {idp_host}'s zone: it can challenge Access's own requests to Pocket ID's token endpoint and keys (\"Failed to exchange code for token\", \"Failed to verify oidc token with fresh keys\")"),
                    format!("turn Bot Fight Mode off for the zone (Security → Bots), or serve {idp_host} from a zone without it; a WAF skip rule cannot exempt it"),
                );
                Ok(String::new())
            }
            Some(Ok(_)) => {
                f.detail("bot_fight_mode", false);
                Ok(format!("Bot Fight Mode is off for {idp_host}'s zone"))
            }
        }
    }
}

/// The hosts (site, Pocket ID) with the tunnel each is routed to, if any.
fn routed(cf: &Cf) -> Vec<(String, Option<String>)> {
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

/// Whether Cloudflare says no cloudflared is connected to tunnel `t`.
fn is_down(t: &TunnelFacts) -> bool {
    matches!(t.tunnel.status.as_deref(), Some("down" | "inactive"))
}

/// The tunnel that serves `host`: the one its DNS record (`dns_target`, a tunnel id)
/// points at, else the one whose ingress names it.
fn tunnel_of<'a>(
    tunnels: &'a [TunnelFacts],
    host: &str,
    dns_target: Option<&str>,
) -> Option<&'a TunnelFacts> {
    // The DNS record's tunnel first: an old tunnel's stale rule may name the host too.
    dns_target
        .and_then(|id| {
            tunnels
                .iter()
                .find(|t| t.tunnel.id.eq_ignore_ascii_case(id))
        })
        .or_else(|| tunnels.iter().find(|t| ingress_for(t, host).is_some()))
}

/// Fails when DNS sends `host` to tunnel `t`, which is down, while a live tunnel has its
/// rule (the record is what is wrong, not the tunnel); whether it did.
fn fail_dns_to_dead_tunnel(
    f: &mut Findings,
    tunnels: &[TunnelFacts],
    t: &TunnelFacts,
    host: &str,
    tname: &str,
) -> bool {
    if !is_down(t) {
        return false;
    }
    let Some(live) = tunnels
        .iter()
        .find(|o| o.tunnel.id != t.tunnel.id && !is_down(o) && ingress_for(o, host).is_some())
    else {
        return false;
    };
    f.fail(
        format!("{host}'s DNS record sends it to tunnel \"{tname}\", which is {}; tunnel \"{}\", which is up, has its public hostname", t.tunnel.status.as_deref().unwrap_or_default(), server_text(&live.tunnel.name)),
        format!("repoint the CNAME {host} at {}.cfargotunnel.com (DNS → Records), or route the hostname with `cloudflared tunnel route dns`", live.tunnel.id),
    );
    true
}

/// Judges the status Cloudflare gives tunnel `t`: down fails, degraded warns.
fn judge_status(f: &mut Findings, t: &TunnelFacts, host: &str, tname: &str) {
    match t.tunnel.status.as_deref() {
        Some("down" | "inactive") => f.fail(
            format!("tunnel \"{tname}\" serving {host} is {}: no cloudflared is connected{}", t.tunnel.status.as_deref().unwrap_or_default(), t.tunnel.conns_inactive_at.as_deref().map(|at| format!(" (since {})", server_text(at))).unwrap_or_default()),
            format!("start cloudflared for tunnel \"{tname}\" on the origin (systemctl status cloudflared / docker logs); visitors get Cloudflare error 1033"),
        ),
        Some("degraded") => f.warn(
            format!("tunnel \"{tname}\" serving {host} is degraded"),
            format!("look at the connectors of \"{tname}\" (Networks → Tunnels → {tname}): restart the one whose connections are pending reconnect, and check the origin's network"),
        ),
        _ => {}
    }
}

/// Judges the connections of tunnel `t`'s connectors where its status does not already
/// say it: none live fails, some pending reconnect warns.
fn judge_connectors(f: &mut Findings, t: &TunnelFacts, host: &str, tname: &str) {
    let connectors = match &t.connectors {
        Ok(connectors) => connectors,
        Err(e) => {
            cf_problem(f, e);
            return;
        }
    };
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
    if live == 0 && !is_down(t) {
        f.fail(
            format!("tunnel \"{tname}\" serving {host} has no live connection to Cloudflare"),
            format!("start or restart cloudflared for \"{tname}\" on the origin"),
        );
    } else if pending > 0 && t.tunnel.status.as_deref() != Some("degraded") {
        f.warn(
            format!("tunnel \"{tname}\" has {pending} connection(s) pending reconnect"),
            format!(
                "restart the affected cloudflared of \"{tname}\" and check the origin's network"
            ),
        );
    }
}

/// Judges the tunnel's Protect with Access setting for `host` (its ingress `rule`), when
/// on: it must check the application's AUD and the team's tokens.
fn judge_access_protection(
    f: &mut Findings,
    rule: &Ingress,
    host: &str,
    tname: &str,
    aud: Option<&str>,
    team: Option<&str>,
) {
    let access = rule.origin_request.as_ref().and_then(|o| o.get("access"));
    let Some(access) = access else {
        return;
    };
    if access.get("required").and_then(|v| v.as_bool()) != Some(true) {
        return;
    }
    let tags: Vec<String> = access
        .get("audTag")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    if let Some(aud) = aud
        && !tags.contains(&aud.to_ascii_lowercase())
    {
        f.fail(
            format!("tunnel \"{tname}\" checks Access tokens for {host} against other AUD tags than the application's {aud}"),
            format!("set the AUD tag of {host}'s Protect with Access setting to {aud} (Networks → Tunnels → {tname} → Public Hostname → {host} → Access)"),
        );
    }
    let team_name = access
        .get("teamName")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if let Some(team) = team
        && !team_name.is_empty()
        && crate::cloudflare::team_domain(team_name) != team
    {
        f.fail(
            format!(
                "tunnel \"{tname}\" checks Access tokens for {host} of team {}, not {team}",
                server_text(team_name)
            ),
            format!(
                "set the team name of {host}'s Protect with Access setting to {}",
                team.trim_end_matches(".cloudflareaccess.com")
            ),
        );
    }
}

/// Whether tunnel `t` sends every path of the site's `host` to a service, when its
/// configuration says for sure: no rule for the host (cloudflared's catch-all answers)
/// is `false`; a rule to a service without a path is `true`; a rule limited to a path (a
/// regular expression not evaluated here) or to a fixed status (`http_status:NNN`)
/// leaves it unknown, as does a configuration not read.
fn site_routed(t: &TunnelFacts, host: &str) -> Option<bool> {
    if !matches!(&t.config, Some(Ok(_))) {
        return None;
    }
    let Some(rule) = ingress_for(t, host) else {
        return Some(false);
    };
    let fixed_status = rule
        .service
        .as_deref()
        .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("http_status:"));
    let every_path = rule.path.as_deref().is_none_or(|p| p.trim().is_empty());
    (!fixed_status && every_path).then_some(true)
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
    use serde_json::json;

    fn tunnel_with(ingress: serde_json::Value) -> TunnelFacts {
        TunnelFacts {
            tunnel: serde_json::from_value(json!({ "id": "t", "name": "homelab" }))
                .expect("a tunnel"),
            connectors: Ok(Vec::new()),
            config: Some(Ok(serde_json::from_value(
                json!({ "config": { "ingress": ingress } }),
            )
            .expect("a configuration"))),
        }
    }

    #[test]
    fn the_site_is_routed_only_by_a_rule_for_every_path_to_a_service() {
        let host = "service.example.com";
        let catch_all = json!({ "service": "http_status:404" });
        let routed =
            |rule: serde_json::Value| site_routed(&tunnel_with(json!([rule, catch_all])), host);
        assert_eq!(
            site_routed(&tunnel_with(json!([catch_all])), host),
            Some(false)
        );
        assert_eq!(
            routed(json!({ "hostname": host, "service": "http://app:8080" })),
            Some(true)
        );
        // Whether the site's path matches is not evaluated here, and a fixed status is
        // no application: neither decides.
        assert_eq!(
            routed(json!({ "hostname": host, "path": "^/app", "service": "http://app:8080" })),
            None
        );
        assert_eq!(
            routed(json!({ "hostname": host, "service": "http_status:404" })),
            None
        );
        let local = TunnelFacts {
            config: None,
            ..tunnel_with(json!([]))
        };
        assert_eq!(site_routed(&local, host), None);
    }
}
