//! Which Access application covers a URL, and what its policies decide for a user, by
//! the rules Cloudflare documents: `*.example.com` covers one label, a host covers all
//! its paths, the most specific path wins; Bypass and Service Auth policies first, then
//! Allow and Block in order, the first match deciding. Rules ssoprobe cannot evaluate
//! from configuration alone (an IP range, device posture) make the answer "unknown",
//! never a guess.

use super::model::{App, Group, Policy};
use serde_json::Value;

/// How well a pattern covers a host and path: `None` when it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    /// Length of the path prefix matched.
    path: usize,
    /// The host matched exactly (not by a wildcard).
    exact_host: bool,
}

/// Whether `pattern` (`host[/path]`, the host possibly with `*` labels) covers `host`
/// and `path`.
pub fn covers(pattern: &str, host: &str, path: &str) -> Option<Specificity> {
    let pattern = pattern
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let (p_host, p_path) = match pattern.find('/') {
        Some(i) => pattern.split_at(i),
        None => (pattern, ""),
    };
    // A port is not part of an application's path.
    let p_host = p_host.rsplit_once(':').map_or(p_host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            p_host
        }
    });
    let p_host = p_host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let p_labels: Vec<&str> = p_host.split('.').collect();
    let labels: Vec<&str> = host.split('.').collect();
    if p_labels.len() != labels.len() {
        return None;
    }
    let mut exact_host = true;
    for (p, l) in p_labels.iter().zip(&labels) {
        if p.contains('*') {
            exact_host = false;
            if !glob(p, l) {
                return None;
            }
        } else if p != l {
            return None;
        }
    }
    let p_path = p_path
        .trim_end_matches("/*")
        .trim_end_matches('*')
        .trim_end_matches('/');
    let path = if path.is_empty() { "/" } else { path };
    if !p_path.is_empty() {
        let rest = path.strip_prefix(p_path)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
    }
    Some(Specificity {
        path: p_path.len(),
        exact_host,
    })
}

/// `*` matches any run of characters within one label.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let Some(mut rest) = text.strip_prefix(first).and_then(|r| r.strip_suffix(last)) else {
        return false;
    };
    for part in &parts[1..parts.len() - 1] {
        match rest.split_once(part) {
            Some((_, after)) => rest = after,
            None => return false,
        }
    }
    true
}

/// The self-hosted application that covers `host` and `path`, most specific first, and
/// the pattern that matched.
pub fn covering_app<'a>(apps: &'a [App], host: &str, path: &str) -> Option<(&'a App, String)> {
    apps.iter()
        .filter(|a| a.kind.as_deref().is_none_or(|k| k == "self_hosted"))
        .flat_map(|a| {
            a.patterns()
                .into_iter()
                .filter_map(move |p| covers(&p, host, path).map(|s| (s, a, p)))
        })
        .max_by_key(|(s, _, _)| *s)
        .map(|(_, a, p)| (a, p))
}

/// Who is logging in, as Access will see them.
pub struct Person<'a> {
    /// E-mail address (from the `email` claim).
    pub email: &'a str,
    /// The login method's id.
    pub idp_id: &'a str,
    /// The `groups` claim, when the login method asks for it (`None`: never sent).
    pub groups: Option<&'a [String]>,
}

/// What one rule says about the person: `None` when configuration cannot tell.
fn rule(rule: &Value, person: &Person<'_>, groups: &[Group], depth: u8) -> Option<bool> {
    let obj = rule.as_object()?;
    let (kind, value) = obj.iter().next()?;
    let text = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default();
    let email = person.email.to_ascii_lowercase();
    match kind.as_str() {
        "everyone" => Some(true),
        "email" => Some(text("email").eq_ignore_ascii_case(&email)),
        "email_domain" => {
            let domain = text("domain").trim_start_matches('@').to_ascii_lowercase();
            Some(email.rsplit_once('@').is_some_and(|(_, d)| d == domain))
        }
        "login_method" => Some(text("id") == person.idp_id),
        "group" => {
            let group = groups.iter().find(|g| g.id == text("id"))?;
            if depth >= 3 {
                return None;
            }
            matches(
                &group.include,
                &group.require,
                &group.exclude,
                person,
                groups,
                depth + 1,
            )
        }
        "oidc" => {
            let provider = text("identity_provider_id");
            if !provider.is_empty() && provider != person.idp_id {
                return Some(false);
            }
            match text("claim_name") {
                "groups" => Some(
                    person
                        .groups
                        .is_some_and(|g| g.iter().any(|n| n == text("claim_value"))),
                ),
                _ => None,
            }
        }
        // Service Auth and mTLS rules never match a person's login.
        "service_token" | "any_valid_service_token" | "certificate" | "common_name" => Some(false),
        _ => None,
    }
}

/// Three-valued AND/OR of a rule set: include any, require all, exclude none.
fn matches(
    include: &[Value],
    require: &[Value],
    exclude: &[Value],
    person: &Person<'_>,
    groups: &[Group],
    depth: u8,
) -> Option<bool> {
    let any = |rules: &[Value]| -> Option<bool> {
        let mut unknown = false;
        for r in rules {
            match rule(r, person, groups, depth) {
                Some(true) => return Some(true),
                None => unknown = true,
                Some(false) => {}
            }
        }
        if unknown { None } else { Some(false) }
    };
    let included = any(include);
    let mut required = Some(true);
    for r in require {
        match rule(r, person, groups, depth) {
            Some(false) => required = Some(false),
            None if required == Some(true) => required = None,
            _ => {}
        }
    }
    let excluded = if exclude.is_empty() {
        Some(false)
    } else {
        any(exclude)
    };
    match (included, required, excluded) {
        (Some(false), _, _) | (_, Some(false), _) | (_, _, Some(true)) => Some(false),
        (Some(true), Some(true), Some(false)) => Some(true),
        _ => None,
    }
}

/// A rule in words, for findings.
pub fn describe(rule: &Value, idp_names: &dyn Fn(&str) -> String) -> String {
    let Some((kind, value)) = rule.as_object().and_then(|o| o.iter().next()) else {
        return "an empty rule".into();
    };
    let text = |k: &str| {
        value
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let out = match kind.as_str() {
        "everyone" => "Everyone".into(),
        "email" => format!("Emails: {}", text("email")),
        "email_domain" => format!("Emails ending in: @{}", text("domain")),
        "login_method" => format!("Login Methods: {}", idp_names(&text("id"))),
        "group" => format!("Access group {}", text("id")),
        "oidc" => format!(
            "OIDC Claim {} = {}",
            text("claim_name"),
            text("claim_value")
        ),
        other => format!("a {other} rule"),
    };
    crate::redact::terminal_safe(&out)
}

/// What the application's policies decide for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A Bypass policy lets everyone through without a login.
    Bypassed(String),
    /// Admitted by this Allow policy.
    Allowed(String),
    /// Blocked by this Block policy.
    Blocked(String),
    /// No policy matches: Access denies by default.
    NoMatch,
    /// A policy that may match has rules configuration cannot evaluate.
    Unknown(String),
}

/// The values the policies' OIDC-claim rules on `groups` match (include, require and
/// exclude alike); one entry per rule, empty when a rule names no value.
pub fn groups_claim_values(policies: &[Policy]) -> Vec<&str> {
    policies
        .iter()
        .flat_map(|p| p.include.iter().chain(&p.require).chain(&p.exclude))
        .filter_map(|r| {
            let o = r.get("oidc")?;
            (o.get("claim_name")?.as_str()? == "groups")
                .then(|| o.get("claim_value").and_then(Value::as_str).unwrap_or(""))
        })
        .collect()
}

/// The first (by precedence) Bypass policy that includes everyone without a
/// requirement: it makes the application public.
pub fn bypass_for_everyone(policies: &[Policy]) -> Option<&Policy> {
    policies
        .iter()
        .filter(|p| {
            p.decision == "bypass"
                && p.require.is_empty()
                && p.include.iter().any(|r| r.get("everyone").is_some())
        })
        .min_by_key(|p| p.precedence.unwrap_or(i64::MAX))
}

/// Evaluates `policies` (any order; sorted here by precedence) for `person`.
pub fn decide(policies: &[Policy], person: &Person<'_>, groups: &[Group]) -> Decision {
    let mut sorted: Vec<&Policy> = policies.iter().collect();
    sorted.sort_by_key(|p| p.precedence.unwrap_or(i64::MAX));
    if let Some(p) = bypass_for_everyone(policies) {
        return Decision::Bypassed(p.name.clone());
    }
    for p in sorted
        .iter()
        .filter(|p| p.decision == "allow" || p.decision == "deny")
    {
        match matches(&p.include, &p.require, &p.exclude, person, groups, 0) {
            Some(true) if p.decision == "allow" => return Decision::Allowed(p.name.clone()),
            Some(true) => return Decision::Blocked(p.name.clone()),
            Some(false) => {}
            None => return Decision::Unknown(p.name.clone()),
        }
    }
    Decision::NoMatch
}

/// Why an Allow policy does not admit the person: the first rule set that fails.
pub fn why_not(
    policy: &Policy,
    person: &Person<'_>,
    groups: &[Group],
    idp_names: &dyn Fn(&str) -> String,
) -> String {
    if let Some(r) = policy
        .require
        .iter()
        .find(|r| rule(r, person, groups, 0) == Some(false))
    {
        return format!("it requires {}", describe(r, idp_names));
    }
    if let Some(r) = policy
        .exclude
        .iter()
        .find(|r| rule(r, person, groups, 0) == Some(true))
    {
        return format!("it excludes {}", describe(r, idp_names));
    }
    let includes: Vec<String> = policy
        .include
        .iter()
        .map(|r| describe(r, idp_names))
        .collect();
    if includes.is_empty() {
        "it includes nobody".into()
    } else {
        format!("it includes only {}", includes.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(id: &str, uri: &str) -> App {
        serde_json::from_value(json!({"id": id, "type": "self_hosted", "destinations": [{"type": "public", "uri": uri}]})).unwrap()
    }

    #[test]
    fn hosts_and_paths_follow_cloudflares_rules() {
        assert!(covers("service.example.com", "service.example.com", "/x").is_some());
        assert!(covers("*.example.com", "service.example.com", "/").is_some());
        assert!(covers("*.example.com", "example.com", "/").is_none());
        assert!(covers("*.example.com", "a.b.example.com", "/").is_none());
        assert!(covers("service.example.com/admin", "service.example.com", "/").is_none());
        assert!(
            covers(
                "service.example.com/admin",
                "service.example.com",
                "/admin/x"
            )
            .is_some()
        );
        assert!(
            covers(
                "service.example.com/admin",
                "service.example.com",
                "/administrator"
            )
            .is_none()
        );
        assert!(covers("svc-*.example.com", "svc-a.example.com", "/").is_some());
        assert!(covers("Service.Example.com:443", "service.example.com", "/").is_some());
        let apps = [
            app("wild", "*.example.com"),
            app("exact", "service.example.com"),
            app("admin", "service.example.com/admin"),
        ];
        assert_eq!(
            covering_app(&apps, "service.example.com", "/")
                .unwrap()
                .0
                .id,
            "exact"
        );
        assert_eq!(
            covering_app(&apps, "service.example.com", "/admin")
                .unwrap()
                .0
                .id,
            "admin"
        );
        assert_eq!(
            covering_app(&apps, "wiki.example.com", "/").unwrap().0.id,
            "wild"
        );
        assert!(covering_app(&apps, "example.org", "/").is_none());
    }

    fn policy(v: Value) -> Policy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn policies_are_evaluated_in_order_with_groups_and_unknowns() {
        let groups: Vec<Group> = vec![serde_json::from_value(json!({"id": "g", "name": "Staff", "include": [{"email_domain": {"domain": "example.com"}}]})).unwrap()];
        let claim = vec!["probers".to_string()];
        let person = Person {
            email: "Probe@Example.com",
            idp_id: "pid",
            groups: Some(&claim),
        };
        let allow_group = policy(
            json!({"name": "people", "decision": "allow", "precedence": 2, "include": [{"group": {"id": "g"}}]}),
        );
        let block = policy(
            json!({"name": "contractors", "decision": "deny", "precedence": 1, "include": [{"email_domain": {"domain": "contractors.example.com"}}]}),
        );
        assert_eq!(
            decide(&[allow_group.clone(), block.clone()], &person, &groups),
            Decision::Allowed("people".into())
        );
        let otp = policy(
            json!({"name": "otp", "decision": "allow", "include": [{"everyone": {}}], "require": [{"login_method": {"id": "otp"}}]}),
        );
        assert_eq!(
            decide(std::slice::from_ref(&otp), &person, &groups),
            Decision::NoMatch
        );
        assert!(
            why_not(&otp, &person, &groups, &|id| id.to_string()).contains("Login Methods: otp")
        );
        let claim_rule = policy(
            json!({"name": "c", "decision": "allow", "include": [{"oidc": {"claim_name": "groups", "claim_value": "probers", "identity_provider_id": "pid"}}]}),
        );
        assert_eq!(
            decide(std::slice::from_ref(&claim_rule), &person, &groups),
            Decision::Allowed("c".into())
        );
        let no_claim = Person {
            groups: None,
            ..person
        };
        assert_eq!(decide(&[claim_rule], &no_claim, &groups), Decision::NoMatch);
        let ip = policy(
            json!({"name": "office", "decision": "allow", "include": [{"ip": {"ip": "203.0.113.0/24"}}]}),
        );
        assert_eq!(
            decide(&[ip], &no_claim, &groups),
            Decision::Unknown("office".into())
        );
        let bypass =
            policy(json!({"name": "public", "decision": "bypass", "include": [{"everyone": {}}]}));
        assert_eq!(
            decide(&[block, bypass], &no_claim, &groups),
            Decision::Bypassed("public".into())
        );
        // Hostile shapes are unknown, not a panic.
        let odd = policy(
            json!({"name": "odd", "decision": "allow", "include": [7, {}, {"group": {"id": 3}}]}),
        );
        assert_eq!(
            decide(&[odd], &no_claim, &groups),
            Decision::Unknown("odd".into())
        );
    }

    #[test]
    fn globs_never_panic() {
        for (p, t) in [
            ("*", ""),
            ("a*a", "a"),
            ("**", "x"),
            ("*é*", "aé"),
            ("ab*cd", "abcd"),
        ] {
            let _ = glob(p, t);
        }
        assert!(glob("ab*cd", "abXcd"));
        assert!(!glob("a*a", "a"));
    }
}
