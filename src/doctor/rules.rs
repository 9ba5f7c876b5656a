//! Which Access application covers a URL, and what its policies decide for a user, by
//! the rules Cloudflare documents: `*.example.com` covers one label, a host covers all
//! its paths, the most specific path wins; Bypass and Service Auth policies first, then
//! Allow and Block in order, the first match deciding. Rules ssoprobe cannot evaluate
//! from configuration alone (an IP range, device posture) make the answer "unknown",
//! never a guess.

use super::model::{App, Group, Policy};
use crate::text::server_text;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

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

/// The most rule evaluations one [`Evaluator`] makes. Rule: policy evaluation is
/// bounded whatever the API answers — each group is evaluated once (memoised), a
/// cycle of groups is "cannot tell", and past this budget every further rule is
/// "cannot tell" too. With the work so bounded, evaluation stays on the async worker:
/// at this budget it costs milliseconds, never the run's deadline.
pub const BUDGET: usize = 100_000;

/// Groups nested deeper than this (a group in a group in a group …) are not followed.
const MAX_NESTING: usize = 3;

/// Why configuration alone cannot tell what a rule decides. The names and kinds it
/// carries are cut by [`super::text::one`], ready for a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknowable {
    /// A rule that depends on the request or the device (an IP range, device posture,
    /// a list), or of a shape ssoprobe does not know: its kind (empty for no shape).
    Rule(String),
    /// Access groups that include one another: their names along the cycle, the first
    /// one again at the end.
    Cycle(Vec<String>),
    /// A rule names an Access group that is not among those read: its id.
    MissingGroup(String),
    /// Groups nested deeper than ssoprobe follows.
    TooDeep,
    /// The rules took more than [`BUDGET`] evaluations.
    OverBudget,
}

/// A rule's answer for the person: three-valued, an unknown carrying why.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Truth {
    Yes,
    No,
    Unknown(Unknowable),
}

impl From<bool> for Truth {
    fn from(b: bool) -> Truth {
        if b { Truth::Yes } else { Truth::No }
    }
}

/// Evaluates rules for one person against one account's groups, each group at most
/// once, counting every rule it evaluates against [`BUDGET`].
pub struct Evaluator<'a> {
    person: &'a Person<'a>,
    /// The `groups` claim as a set (`None`: never sent).
    claim: Option<HashSet<&'a str>>,
    /// The groups by id: one lookup per reference, not a scan.
    groups: HashMap<&'a str, &'a Group>,
    /// What each group evaluated to.
    memo: HashMap<&'a str, Truth>,
    /// The groups being evaluated, outermost first: a reference to one of them is a cycle.
    stack: Vec<&'a str>,
    /// Rules evaluated so far.
    evaluations: usize,
}

impl<'a> Evaluator<'a> {
    /// An evaluator for `person` with the account's `groups`.
    pub fn new(person: &'a Person<'a>, groups: &'a [Group]) -> Evaluator<'a> {
        Evaluator {
            person,
            claim: person
                .groups
                .map(|g| g.iter().map(String::as_str).collect()),
            groups: groups
                .iter()
                .fold(HashMap::with_capacity(groups.len()), |mut by_id, g| {
                    // The first of two groups with one id, as a scan would find it.
                    by_id.entry(g.id.as_str()).or_insert(g);
                    by_id
                }),
            memo: HashMap::new(),
            stack: Vec::new(),
            evaluations: 0,
        }
    }

    /// A group's name for findings (its id when it has none), cut: the reasons that
    /// carry it are copied once per reference to a group.
    fn group_name(&self, id: &str) -> String {
        match self.groups.get(id) {
            Some(g) if !g.name.is_empty() => server_text(&g.name),
            _ => server_text(id),
        }
    }

    /// What one rule says about the person.
    fn rule(&mut self, rule: &'a Value) -> Truth {
        self.evaluations += 1;
        if self.evaluations > BUDGET {
            return Truth::Unknown(Unknowable::OverBudget);
        }
        let Some((kind, value)) = rule.as_object().and_then(|o| o.iter().next()) else {
            return Truth::Unknown(Unknowable::Rule(String::new()));
        };
        let text = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default();
        match kind.as_str() {
            "everyone" => Truth::Yes,
            "email" => text("email").eq_ignore_ascii_case(self.person.email).into(),
            "email_domain" => {
                let domain = text("domain").trim_start_matches('@');
                self.person
                    .email
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
                    .into()
            }
            "login_method" => (text("id") == self.person.idp_id).into(),
            "group" => self.group(text("id")),
            "oidc" => {
                let provider = text("identity_provider_id");
                if !provider.is_empty() && provider != self.person.idp_id {
                    return Truth::No;
                }
                match text("claim_name") {
                    "groups" => self
                        .claim
                        .as_ref()
                        .is_some_and(|c| c.contains(text("claim_value")))
                        .into(),
                    _ => Truth::Unknown(Unknowable::Rule(server_text(kind))),
                }
            }
            // Service Auth and mTLS rules never match a person's login.
            "service_token" | "any_valid_service_token" | "certificate" | "common_name" => {
                Truth::No
            }
            other => Truth::Unknown(Unknowable::Rule(server_text(other))),
        }
    }

    /// What the group `id` says about the person: evaluated once, then remembered.
    fn group(&mut self, id: &str) -> Truth {
        let Some(&group) = self.groups.get(id) else {
            return Truth::Unknown(Unknowable::MissingGroup(server_text(id)));
        };
        let id = group.id.as_str();
        if let Some(pos) = self.stack.iter().position(|g| *g == id) {
            let mut cycle: Vec<String> = self.stack[pos..]
                .iter()
                .map(|g| self.group_name(g))
                .collect();
            cycle.push(self.group_name(id));
            return Truth::Unknown(Unknowable::Cycle(cycle));
        }
        // Remembering a group's answer is sound even inside a cycle: three-valued logic
        // is monotone, so an answer reached with a cyclic reference unknown holds
        // whatever that reference is, and an unknown stays unknown.
        if let Some(known) = self.memo.get(id) {
            return known.clone();
        }
        if self.stack.len() >= MAX_NESTING {
            return Truth::Unknown(Unknowable::TooDeep);
        }
        self.stack.push(id);
        let truth = self.matches(&group.include, &group.require, &group.exclude);
        self.stack.pop();
        self.memo.insert(id, truth.clone());
        truth
    }

    /// Whether any of `rules` holds (Kleene OR).
    fn any(&mut self, rules: &'a [Value]) -> Truth {
        self.kleene(rules, true)
    }

    /// Whether all of `rules` hold (Kleene AND).
    fn all(&mut self, rules: &'a [Value]) -> Truth {
        self.kleene(rules, false)
    }

    /// Kleene OR (`decisive` true) or AND (`decisive` false) of `rules`: `decisive` as
    /// soon as a rule says it, else the first unknown's reason when one cannot tell,
    /// else the opposite of `decisive`.
    fn kleene(&mut self, rules: &'a [Value], decisive: bool) -> Truth {
        let mut unknown = None;
        for r in rules {
            if self.evaluations >= BUDGET {
                return Truth::Unknown(Unknowable::OverBudget);
            }
            match self.rule(r) {
                Truth::Unknown(why) => {
                    unknown.get_or_insert(why);
                }
                truth if truth == Truth::from(decisive) => return truth,
                _ => {}
            }
        }
        unknown.map_or(Truth::from(!decisive), Truth::Unknown)
    }

    /// A rule set: include any, require all, exclude none.
    fn matches(
        &mut self,
        include: &'a [Value],
        require: &'a [Value],
        exclude: &'a [Value],
    ) -> Truth {
        let included = self.any(include);
        if included == Truth::No {
            return Truth::No;
        }
        let required = self.all(require);
        if required == Truth::No {
            return Truth::No;
        }
        let excluded = self.any(exclude);
        if excluded == Truth::Yes {
            return Truth::No;
        }
        match (included, required, excluded) {
            (Truth::Yes, Truth::Yes, Truth::No) => Truth::Yes,
            (Truth::Unknown(why), _, _)
            | (_, Truth::Unknown(why), _)
            | (_, _, Truth::Unknown(why)) => Truth::Unknown(why),
            _ => Truth::No,
        }
    }

    /// Evaluates `policies` (any order; sorted here by precedence).
    pub fn decide(&mut self, policies: &'a [Policy]) -> Decision {
        let mut sorted: Vec<&Policy> = policies.iter().collect();
        sorted.sort_by_key(|p| p.precedence.unwrap_or(i64::MAX));
        if let Some(p) = bypass_for_everyone(policies) {
            return Decision::Bypassed(p.name.clone());
        }
        for p in sorted
            .iter()
            .filter(|p| p.decision == "allow" || p.decision == "deny")
        {
            match self.matches(&p.include, &p.require, &p.exclude) {
                Truth::Yes if p.decision == "allow" => return Decision::Allowed(p.name.clone()),
                Truth::Yes => return Decision::Blocked(p.name.clone()),
                Truth::No => {}
                Truth::Unknown(why) => {
                    return Decision::Unknown {
                        policy: p.name.clone(),
                        why,
                    };
                }
            }
        }
        Decision::NoMatch
    }

    /// Why an Allow policy does not admit the person: the first rule set that fails.
    pub fn why_not(&mut self, policy: &'a Policy, idp_names: &dyn Fn(&str) -> String) -> String {
        for r in &policy.require {
            if self.rule(r) == Truth::No {
                return format!("it requires {}", describe(r, idp_names));
            }
        }
        for r in &policy.exclude {
            if self.rule(r) == Truth::Yes {
                return format!("it excludes {}", describe(r, idp_names));
            }
        }
        if policy.include.is_empty() {
            "it includes nobody".into()
        } else {
            let includes = policy.include.iter().map(|r| describe(r, idp_names));
            format!("it includes only {}", super::text::list(includes, ", "))
        }
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
    server_text(&out)
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
    Unknown {
        /// The policy's name.
        policy: String,
        /// Why it cannot be evaluated.
        why: Unknowable,
    },
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

    fn decide(policies: &[Policy], person: &Person<'_>, groups: &[Group]) -> Decision {
        Evaluator::new(person, groups).decide(policies)
    }

    fn unknown(policy: &str, why: Unknowable) -> Decision {
        Decision::Unknown {
            policy: policy.into(),
            why,
        }
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
            Evaluator::new(&person, &groups)
                .why_not(&otp, &|id| id.to_string())
                .contains("Login Methods: otp")
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
            unknown("office", Unknowable::Rule("ip".into()))
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
        assert!(matches!(
            decide(&[odd], &no_claim, &groups),
            Decision::Unknown { policy, why: Unknowable::Rule(_) } if policy == "odd"
        ));
    }

    fn group(id: &str, name: &str, include: Vec<Value>) -> Group {
        serde_json::from_value(json!({"id": id, "name": name, "include": include})).unwrap()
    }

    fn refs(id: &str, n: usize) -> Vec<Value> {
        (0..n).map(|_| json!({"group": {"id": id}})).collect()
    }

    const PROBE: Person<'static> = Person {
        email: "probe@example.com",
        idp_id: "pid",
        groups: None,
    };

    #[test]
    fn a_group_that_includes_itself_is_a_cycle_evaluated_once() {
        let groups = vec![group("loop", "Loop", refs("loop", 3_000))];
        let policies = [policy(
            json!({"name": "staff", "decision": "allow", "include": [{"group": {"id": "loop"}}]}),
        )];
        let mut eval = Evaluator::new(&PROBE, &groups);
        assert_eq!(
            eval.decide(&policies),
            unknown(
                "staff",
                Unknowable::Cycle(vec!["Loop".into(), "Loop".into()])
            )
        );
        // The policy's rule and the group's 3,000: each once (unbounded, it was 3,000³).
        assert_eq!(eval.evaluations, 3_001);
        assert!(eval.evaluations < BUDGET);
    }

    #[test]
    fn a_cycles_names_are_cut_once_not_copied_whole_per_reference() {
        let long = "n".repeat(100_000);
        let groups = vec![group("loop", &long, refs("loop", 50))];
        let policies = [policy(
            json!({"name": "staff", "decision": "allow", "include": [{"group": {"id": "loop"}}]}),
        )];
        let Decision::Unknown {
            why: Unknowable::Cycle(names),
            ..
        } = decide(&policies, &PROBE, &groups)
        else {
            panic!("not a cycle");
        };
        assert_eq!(names.len(), 2);
        assert!(
            names
                .iter()
                .all(|n| n.chars().count() <= crate::text::SERVER_TEXT_CAP)
        );
    }

    #[test]
    fn groups_that_include_each_other_are_named_as_a_cycle() {
        let groups = vec![
            group("a", "Alpha", refs("b", 1)),
            group(
                "b",
                "Beta",
                vec![
                    json!({"group": {"id": "a"}}),
                    json!({"email": {"email": "someone@example.com"}}),
                ],
            ),
        ];
        let policies = [policy(
            json!({"name": "staff", "decision": "allow", "include": [{"group": {"id": "a"}}]}),
        )];
        let mut eval = Evaluator::new(&PROBE, &groups);
        assert_eq!(
            eval.decide(&policies),
            unknown(
                "staff",
                Unknowable::Cycle(vec!["Alpha".into(), "Beta".into(), "Alpha".into()])
            )
        );
        assert_eq!(eval.evaluations, 4);
        // A rule that admits the person decides whatever the cycle would: OR with a
        // true rule is true for any value of the rest.
        let groups = vec![group(
            "a",
            "Alpha",
            vec![
                json!({"email": {"email": "probe@example.com"}}),
                json!({"group": {"id": "a"}}),
            ],
        )];
        assert_eq!(
            decide(&policies, &PROBE, &groups),
            Decision::Allowed("staff".into())
        );
    }

    #[test]
    fn a_group_referred_to_many_times_is_evaluated_once() {
        let emails: Vec<Value> = (0..100)
            .map(|i| json!({"email": {"email": format!("user{i}@example.com")}}))
            .collect();
        let groups = vec![group("g", "Staff", emails)];
        let policies = [policy(
            json!({"name": "staff", "decision": "allow", "include": refs("g", 1_000)}),
        )];
        let mut eval = Evaluator::new(&PROBE, &groups);
        assert_eq!(eval.decide(&policies), Decision::NoMatch);
        assert_eq!(eval.evaluations, 1_000 + 100);
    }

    #[test]
    fn past_the_budget_the_answer_is_cannot_tell() {
        let many: Vec<Value> = (0..BUDGET + 10)
            .map(|i| json!({"email": {"email": format!("user{i}@example.com")}}))
            .collect();
        let policies = [policy(
            json!({"name": "huge", "decision": "allow", "include": many}),
        )];
        let mut eval = Evaluator::new(&PROBE, &[]);
        assert_eq!(
            eval.decide(&policies),
            unknown("huge", Unknowable::OverBudget)
        );
        assert!(eval.evaluations <= BUDGET + 1, "{}", eval.evaluations);
        // Asking why not, after, costs nothing more than the budget either.
        let _ = eval.why_not(&policies[0], &|id| id.to_string());
        assert!(eval.evaluations <= BUDGET + 1, "{}", eval.evaluations);
    }

    #[test]
    fn groups_nested_too_deep_or_missing_are_unknown() {
        let groups = vec![
            group("g1", "One", refs("g2", 1)),
            group("g2", "Two", refs("g3", 1)),
            group("g3", "Three", refs("g4", 1)),
            group("g4", "Four", vec![json!({"everyone": {}})]),
        ];
        let deep = [policy(
            json!({"name": "deep", "decision": "allow", "include": refs("g1", 1)}),
        )];
        assert_eq!(
            decide(&deep, &PROBE, &groups),
            unknown("deep", Unknowable::TooDeep)
        );
        let nested = [policy(
            json!({"name": "nested", "decision": "allow", "include": refs("g2", 1)}),
        )];
        assert_eq!(
            decide(&nested, &PROBE, &groups),
            Decision::Allowed("nested".into())
        );
        let missing = [policy(
            json!({"name": "gone", "decision": "allow", "include": refs("nope", 1)}),
        )];
        assert_eq!(
            decide(&missing, &PROBE, &groups),
            unknown("gone", Unknowable::MissingGroup("nope".into()))
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
