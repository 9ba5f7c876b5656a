//! Candidate causes, declared per symptom: a symptom several causes produce (Access's
//! "Failed to exchange code for token" after the callback) names the causes that give
//! it, each with its fix and the evidence that confirms or rules it out — a detail
//! another check of the same run recorded (the `config.*` checks read the
//! configuration). The hint then says what the evidence leaves: the confirmed cause
//! with its evidence; else the causes still alive, most likely first, and what would
//! tell them apart. It never names one cause while the declaration keeps two alive.
//! What the run saw can make a living cause the most likely one without deciding
//! ([`LEADS`]): it then comes first, and the hint says why.

use crate::finding::{CheckResult, Status};
use serde_json::{Value, json};

/// A test on a detail another check recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// `true`.
    True,
    /// `false`.
    False,
    /// The number 0.
    Zero,
    /// A number above 0.
    Positive,
}

impl Test {
    fn holds(self, v: &Value) -> bool {
        match self {
            Test::True => v.as_bool() == Some(true),
            Test::False => v.as_bool() == Some(false),
            Test::Zero => v.as_u64() == Some(0),
            Test::Positive => v.as_u64().is_some_and(|n| n > 0),
        }
    }
}

/// What confirms or rules out a cause: check `check`'s detail `key`.
#[derive(Debug, Clone, Copy)]
pub struct Evidence {
    /// The check that records it (a `config.*` check, or a probe check).
    pub check: &'static str,
    /// The detail.
    pub key: &'static str,
    /// When it confirms the cause.
    pub confirms: Option<Test>,
    /// When it rules the cause out.
    pub rules_out: Option<Test>,
    /// What the evidence says when it confirms, in words (else the check's finding).
    pub says: Option<&'static str>,
}

/// One cause of a symptom.
#[derive(Debug, Clone, Copy)]
pub struct Cause {
    /// A short id (`token_url_wrong`), for reports and tests.
    pub id: &'static str,
    /// The fix, first clause of the hint (`{idp}`: Pocket ID's URL; `{KEY}`: the
    /// observing check's detail `KEY`, a string).
    pub fix: &'static str,
    /// The evidence about it.
    pub evidence: &'static [Evidence],
}

/// A symptom a check observes, and its causes, most likely first.
#[derive(Debug, Clone, Copy)]
pub struct Symptom {
    /// The id the observing check records in its `symptom` detail.
    pub id: &'static str,
    /// The symptom in words.
    pub text: &'static str,
    /// Its causes, most likely first.
    pub causes: &'static [Cause],
    /// What would tell the living causes apart when no evidence decided.
    pub tell_apart: &'static str,
}

/// The detail key that stands for "the check passed".
const PASSED: &str = "passed";

const TOKEN_URL: Evidence = Evidence {
    check: "config.login_method",
    key: "token_url_ok",
    confirms: Some(Test::False),
    rules_out: Some(Test::True),
    says: None,
};

const BOT_FIGHT: Evidence = Evidence {
    check: "config.waf",
    key: "bot_fight_mode",
    confirms: Some(Test::True),
    rules_out: None,
    says: None,
};

/// Every declared symptom.
pub const SYMPTOMS: &[Symptom] = &[
    Symptom {
        id: "access.code_exchange_failed",
        text: "Access: \"Failed to exchange code for token\"",
        causes: &[
            Cause {
                id: "client_secret_wrong",
                fix: "copy the client's secret from Pocket ID (OIDC Clients → the client) into the Client secret of Access's login method (Zero Trust → Settings → Authentication)",
                evidence: &[],
            },
            Cause {
                id: "secret_expired",
                fix: "create a new client secret in Pocket ID (OIDC Clients → the client → Client secrets) and paste it into the Client secret of Access's login method: every secret of the client has expired",
                evidence: &[
                    Evidence {
                        check: "config.client",
                        key: "active_secrets",
                        confirms: Some(Test::Zero),
                        rules_out: Some(Test::Positive),
                        says: None,
                    },
                    Evidence {
                        check: super::ids::IDP_EXCHANGE,
                        key: PASSED,
                        confirms: None,
                        rules_out: Some(Test::True),
                        says: None,
                    },
                ],
            },
            Cause {
                id: "token_url_wrong",
                fix: "set the Token URL of Access's login method to {idp}/api/oidc/token",
                evidence: &[TOKEN_URL],
            },
            Cause {
                id: "token_blocked_for_access",
                fix: "let Cloudflare's own requests reach {idp}/api/oidc/token: a WAF rule, Bot Fight Mode or an Access application in front of it refuses them",
                evidence: &[
                    Evidence {
                        check: super::ids::ACCESS_CALLBACK,
                        key: "token_request_like_access_blocked",
                        confirms: Some(Test::True),
                        rules_out: None,
                        says: Some(
                            "a token request with Cloudflare's User-Agent cloudflare-access was refused",
                        ),
                    },
                    BOT_FIGHT,
                ],
            },
        ],
        tell_apart: "run with --cf-api-token-file and --api-key-file: ssoprobe then reads the Token URL, the client's secrets and Bot Fight Mode, and says which",
    },
    Symptom {
        id: "access.token_verification_failed",
        text: "Access: \"Failed to verify oidc token with fresh keys\"",
        causes: &[
            Cause {
                id: "certs_url_wrong",
                fix: "set the Certificate URL of Access's login method to {idp}/.well-known/jwks.json",
                evidence: &[Evidence {
                    check: "config.login_method",
                    key: "certs_url_ok",
                    confirms: Some(Test::False),
                    rules_out: Some(Test::True),
                    says: None,
                }],
            },
            Cause {
                id: "jwks_blocked_for_access",
                fix: "let Cloudflare's own requests reach {idp}/.well-known/jwks.json: a WAF rule, Bot Fight Mode or an Access application in front of it refuses them",
                evidence: &[
                    Evidence {
                        check: super::ids::ACCESS_CALLBACK,
                        key: "jwks_request_like_access_blocked",
                        confirms: Some(Test::True),
                        rules_out: None,
                        says: Some(
                            "a request for the keys with Cloudflare's User-Agent cloudflare-access was refused",
                        ),
                    },
                    BOT_FIGHT,
                ],
            },
        ],
        tell_apart: "run with --cf-api-token-file: ssoprobe then reads the Certificate URL and Bot Fight Mode, and says which",
    },
    // Pocket ID v2.14 answers an error that is no OAuth error (an `apperror`, a database
    // error) with fosite's catch-all, sent to Access's callback: `error=error`, "The error
    // is unrecognizable". Before a login, only two of its causes remain.
    Symptom {
        id: super::idp::UNRECOGNIZABLE_SYMPTOM,
        text: "Pocket ID's answer error=error (\"The error is unrecognizable\")",
        causes: &[
            Cause {
                id: "par_required",
                fix: "turn off \"Requires Pushed Authorization Requests\" on the Cloudflare client in Pocket ID (OIDC Clients → the client → Show Advanced Options): Access cannot push its authorization requests",
                evidence: &[Evidence {
                    check: "config.client",
                    key: "requires_par",
                    confirms: Some(Test::True),
                    rules_out: Some(Test::False),
                    says: None,
                }],
            },
            Cause {
                id: "database_unwritable",
                fix: "let Pocket ID write to its database again (free space on its data volume, mount it read-write for Pocket ID's user, or give its PostgreSQL user write access): it could not store the login's interaction (its log: \"Failed to authorize request\" with the database's error)",
                evidence: &[],
            },
        ],
        tell_apart: "run with --api-key-file: ssoprobe then reads whether the client requires PAR, and says which",
    },
    // Access identifies a user by the e-mail address in the id_token, read from its
    // Email claim; Pocket ID puts `email` in it only for the scope email and a user
    // with an address (its claims service).
    Symptom {
        id: "access.identity_unavailable",
        text: "Access: \"Failed to fetch user/group information from the identity provider\"",
        causes: &[
            Cause {
                id: "user_without_email",
                fix: "give the monitoring user an e-mail address in Pocket ID (Users → the user → Email) and log in again: Pocket ID's id_token carries no address for a user without one",
                evidence: &[Evidence {
                    check: super::ids::PASSKEY_LOGIN,
                    key: "user_has_email",
                    confirms: Some(Test::False),
                    rules_out: Some(Test::True),
                    says: Some(
                        "Pocket ID's answer to the passkey login gives the user no e-mail address",
                    ),
                }],
            },
            Cause {
                id: "email_claim_wrong",
                fix: "set the Email claim of Access's login method to email (Zero Trust → Settings → Authentication → the Pocket ID login method): Access reads the address from a claim Pocket ID does not send",
                evidence: &[Evidence {
                    check: "config.scopes",
                    key: "email_claim_ok",
                    confirms: Some(Test::False),
                    rules_out: Some(Test::True),
                    says: None,
                }],
            },
            Cause {
                id: "scopes_without_email",
                fix: "add email to the OIDC scopes of Access's login method (openid email profile): without it Pocket ID's id_token carries no e-mail address",
                evidence: &[
                    Evidence {
                        check: super::ids::ACCESS_LOGIN,
                        key: "scope_has_email",
                        confirms: Some(Test::False),
                        rules_out: Some(Test::True),
                        says: Some(
                            "Access's authorization request does not ask for the scope email",
                        ),
                    },
                    Evidence {
                        check: "config.scopes",
                        key: "scopes_have_email",
                        confirms: Some(Test::False),
                        rules_out: Some(Test::True),
                        says: None,
                    },
                ],
            },
        ],
        tell_apart: "run with --cf-api-token-file: ssoprobe then reads the login method's Email claim and scopes, and says which",
    },
    Symptom {
        id: "service.not_found",
        text: "HTTP 404 from the site behind Access",
        causes: &[
            Cause {
                id: "ingress_missing",
                fix: "add a public hostname {host} → the application's address to the tunnel that serves {host} (Networks → Tunnels → the tunnel → Public Hostname): without one, cloudflared's catch-all rule answers 404",
                evidence: &[Evidence {
                    check: SITE_ROUTED.check,
                    key: SITE_ROUTED.key,
                    confirms: Some(Test::False),
                    rules_out: Some(Test::True),
                    says: Some(
                        "the tunnel serving the site has no public hostname for it, so cloudflared's catch-all rule answers",
                    ),
                }],
            },
            Cause {
                id: "origin_404",
                fix: "make the application behind the tunnel serve {url}: it answers 404 there itself (it is served under another path, or the public hostname's service points at another application)",
                evidence: &[SITE_ROUTED],
            },
        ],
        tell_apart: "run with --cf-api-token-file: ssoprobe then reads the tunnel's public hostnames, and says which",
    },
];

/// `config.tunnel`'s finding that the site's tunnel routes its hostname, for every
/// path, to a service (not to a fixed status).
const SITE_ROUTED: Evidence = Evidence {
    check: "config.tunnel",
    key: "site_hostname_routed",
    confirms: Some(Test::True),
    rules_out: Some(Test::False),
    says: Some(
        "the tunnel serving the site has a public hostname for it, so the 404 comes from the application behind it",
    ),
};

/// What the run saw that makes a living cause of `symptom` the most likely one without
/// confirming it (another cause can give the same in a rarer setup): check `check`'s
/// detail `key` passing `when` puts `cause` first among the living.
#[derive(Debug, Clone, Copy)]
pub struct Lead {
    /// The symptom.
    pub symptom: &'static str,
    /// The cause it puts first.
    pub cause: &'static str,
    /// The check that records it.
    pub check: &'static str,
    /// The detail.
    pub key: &'static str,
    /// When it puts the cause first.
    pub when: Test,
    /// Why, in words.
    pub says: &'static str,
}

/// Every lead, the first that holds for a symptom deciding.
pub const LEADS: &[Lead] = &[
    Lead {
        symptom: "service.not_found",
        cause: "origin_404",
        check: super::ids::SERVICE_REACH,
        key: "body_bytes",
        when: Test::Positive,
        says: "the 404 carries a page, and cloudflared's catch-all answers with the status alone",
    },
    Lead {
        symptom: "service.not_found",
        cause: "ingress_missing",
        check: super::ids::SERVICE_REACH,
        key: "body_bytes",
        when: Test::Zero,
        says: "the 404 is empty, as cloudflared's catch-all answers (an application can answer so too)",
    },
];

/// A cause's standing after the run's evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Standing {
    /// Confirmed by this check, saying this.
    Confirmed(String, String),
    /// Ruled out by this check's finding.
    RuledOut(String),
    /// Nothing decided it.
    Alive,
}

/// The cause `symptom`'s first holding lead puts first, and why.
fn lead(symptom: &Symptom, checks: &[CheckResult]) -> Option<(&'static str, &'static str)> {
    LEADS
        .iter()
        .filter(|l| l.symptom == symptom.id)
        .find(|l| {
            checks
                .iter()
                .find(|c| c.id == l.check && c.status != Status::Skip)
                .and_then(|c| c.details.get(l.key))
                .is_some_and(|v| l.when.holds(v))
        })
        .map(|l| (l.cause, l.says))
}

/// `fix` with `{idp}` and the observing check's string details (`{KEY}`) filled in.
fn fill(fix: &str, idp: &str, details: &serde_json::Map<String, Value>) -> String {
    let mut out = fix.replace("{idp}", idp);
    for (key, value) in details {
        if let Some(value) = value.as_str() {
            out = out.replace(&format!("{{{key}}}"), value);
        }
    }
    out
}

fn standing(cause: &Cause, checks: &[CheckResult]) -> Standing {
    let mut out = Standing::Alive;
    for e in cause.evidence {
        let Some(c) = checks
            .iter()
            .find(|c| c.id == e.check && c.status != Status::Skip)
        else {
            continue;
        };
        let passed = Value::Bool(c.status == Status::Pass);
        let v = if e.key == PASSED {
            &passed
        } else {
            let Some(v) = c.details.get(e.key) else {
                continue;
            };
            v
        };
        if e.confirms.is_some_and(|t| t.holds(v)) {
            let says = e.says.map_or_else(|| c.summary.clone(), str::to_string);
            return Standing::Confirmed(c.id.clone(), says);
        }
        if e.rules_out.is_some_and(|t| t.holds(v)) {
            out = Standing::RuledOut(c.id.clone());
        }
    }
    out
}

/// Rewrites the hint of every check that recorded a declared symptom, from the causes
/// the run's evidence leaves (`idp`: Pocket ID's URL, for the fixes); the `config.*`
/// check that confirmed a cause says which finding it explains.
pub fn attribute(checks: &mut [CheckResult], idp: &str) {
    for i in 0..checks.len() {
        let Some(symptom) = checks[i]
            .details
            .get("symptom")
            .and_then(Value::as_str)
            .and_then(|id| SYMPTOMS.iter().find(|s| s.id == id))
        else {
            continue;
        };
        let standings: Vec<(&Cause, Standing)> = symptom
            .causes
            .iter()
            .map(|c| (c, standing(c, checks)))
            .collect();
        let observed = checks[i].details.clone();
        let fix = |c: &Cause| fill(c.fix, idp, &observed);
        let own = checks[i].id.clone();
        let leading = lead(symptom, checks);
        let hint = match standings
            .iter()
            .find(|(_, s)| matches!(s, Standing::Confirmed(..)))
        {
            Some((cause, Standing::Confirmed(by, finding))) => {
                let (by, finding) = (by.clone(), finding.clone());
                if by != own
                    && let Some(c) = checks.iter_mut().find(|c| c.id == by)
                {
                    c.details
                        .insert("explains".into(), Value::from(own.clone()));
                }
                format!(
                    "{} — {}; confirmed by {by}: {finding}",
                    fix(cause),
                    symptom.text
                )
            }
            _ => {
                let mut alive: Vec<&Cause> = standings
                    .iter()
                    .filter(|(_, s)| *s == Standing::Alive)
                    .map(|(c, _)| *c)
                    .collect();
                // A lead among the living puts its cause first, and says why.
                let mut why_first = String::new();
                if alive.len() > 1
                    && let Some((led, says)) = leading
                    && let Some(at) = alive.iter().position(|c| c.id == led)
                {
                    let first = alive.remove(at);
                    alive.insert(0, first);
                    why_first = format!("; {led} first: {says}");
                }
                if alive.len() > 1 {
                    checks[i]
                        .details
                        .insert("most_likely".into(), Value::from(alive[0].id));
                }
                let ruled_out: Vec<String> = standings
                    .iter()
                    .filter_map(|(c, s)| match s {
                        Standing::RuledOut(by) => Some(format!("{} (by {by})", c.id)),
                        _ => None,
                    })
                    .collect();
                let ruled = if ruled_out.is_empty() {
                    String::new()
                } else {
                    format!("; ruled out: {}", ruled_out.join(", "))
                };
                match alive.as_slice() {
                    [] => continue,
                    [one] => format!("{} — {}{ruled}", fix(one), symptom.text),
                    [first, rest @ ..] => format!(
                        "most likely: {}; else: {} — {} has {} causes{ruled}{why_first}; to tell them apart, {}",
                        fix(first),
                        rest.iter()
                            .map(|c| fix(c))
                            .collect::<Vec<_>>()
                            .join("; else: "),
                        symptom.text,
                        alive.len(),
                        symptom.tell_apart
                    ),
                }
            }
        };
        let check = &mut checks[i];
        check.details.insert(
            "candidates".into(),
            Value::Array(
                standings
                    .iter()
                    .map(|(c, s)| {
                        let (standing, by) = match s {
                            Standing::Confirmed(by, _) => ("confirmed", Some(by.clone())),
                            Standing::RuledOut(by) => ("ruled_out", Some(by.clone())),
                            Standing::Alive => ("alive", None),
                        };
                        json!({"cause": c.id, "standing": standing, "by": by})
                    })
                    .collect(),
            ),
        );
        check.hint = Some(hint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Findings;

    fn callback(symptom: &str) -> CheckResult {
        let mut f = Findings::start(super::super::ids::ACCESS_CALLBACK);
        f.detail("symptom", symptom);
        f.fail("Access: Failed to exchange code for token", "old hint");
        f.finish("")
    }

    fn config_check(id: &str, key: &str, v: Value, failed: bool) -> CheckResult {
        let mut f = Findings::start(id);
        f.detail(key, v);
        if failed {
            f.fail(format!("{id} finding"), "its fix");
        }
        f.finish(format!("{id} ok"))
    }

    #[test]
    fn without_evidence_every_cause_is_named_most_likely_first() {
        let mut checks = vec![callback("access.code_exchange_failed")];
        attribute(&mut checks, "https://id.example.com");
        let hint = checks[0].hint.clone().unwrap();
        assert!(
            hint.starts_with("most likely: copy the client's secret"),
            "{hint}"
        );
        assert!(
            hint.contains("https://id.example.com/api/oidc/token"),
            "{hint}"
        );
        assert!(hint.contains("has 4 causes"), "{hint}");
        assert!(hint.contains("--cf-api-token-file"), "{hint}");
    }

    #[test]
    fn a_confirmed_cause_is_the_hint_and_its_evidence_points_back() {
        let mut checks = vec![
            callback("access.code_exchange_failed"),
            config_check("config.client", "active_secrets", json!(0), true),
        ];
        attribute(&mut checks, "https://id.example.com");
        let hint = checks[0].hint.clone().unwrap();
        assert!(hint.starts_with("create a new client secret"), "{hint}");
        assert!(hint.contains("confirmed by config.client"), "{hint}");
        assert_eq!(checks[1].details["explains"], "access.callback");
    }

    #[test]
    fn ruled_out_causes_leave_the_others_and_one_left_is_named_alone() {
        let mut checks = vec![
            callback("access.code_exchange_failed"),
            config_check("config.client", "active_secrets", json!(2), false),
            config_check("config.login_method", "token_url_ok", json!(true), false),
        ];
        attribute(&mut checks, "https://id.example.com");
        let hint = checks[0].hint.clone().unwrap();
        // Two alive: the secret Access holds, and a block in front of the token path.
        assert!(hint.starts_with("most likely: copy"), "{hint}");
        assert!(hint.contains("has 2 causes"), "{hint}");
        assert!(
            hint.contains("ruled out: secret_expired (by config.client)"),
            "{hint}"
        );
        let mut checks = vec![
            callback("access.token_verification_failed"),
            config_check("config.login_method", "certs_url_ok", json!(true), false),
        ];
        attribute(&mut checks, "https://id.example.com");
        let hint = checks[0].hint.clone().unwrap();
        assert!(
            hint.starts_with("let Cloudflare's own requests reach"),
            "{hint}"
        );
        assert!(!hint.contains("most likely"), "{hint}");
    }

    fn not_found(body_bytes: usize) -> CheckResult {
        let mut f = Findings::start(super::super::ids::SERVICE_REACH);
        f.detail("symptom", "service.not_found");
        f.detail("host", "service.example.com");
        f.detail("url", "https://service.example.com/app");
        f.detail("body_bytes", body_bytes);
        f.fail("after login the site answers HTTP 404", "old hint");
        f.finish("")
    }

    #[test]
    fn what_the_run_saw_puts_a_cause_first_and_never_decides() {
        let hint_of = |checks: &mut Vec<CheckResult>| {
            attribute(checks, "https://id.example.com");
            checks[0].hint.clone().unwrap()
        };
        // Empty: cloudflared's catch-all first, the application still named.
        let hint = hint_of(&mut vec![not_found(0)]);
        assert!(
            hint.starts_with("most likely: add a public hostname service.example.com"),
            "{hint}"
        );
        assert!(
            hint.contains(
                "else: make the application behind the tunnel serve https://service.example.com/app"
            ),
            "{hint}"
        );
        assert!(
            hint.contains("has 2 causes; ingress_missing first"),
            "{hint}"
        );
        // A page: the application first, the missing hostname still named.
        let mut checks = vec![not_found(19)];
        let hint = hint_of(&mut checks);
        assert!(
            hint.starts_with("most likely: make the application behind the tunnel serve"),
            "{hint}"
        );
        assert!(hint.contains("else: add a public hostname"), "{hint}");
        assert!(hint.contains("origin_404 first"), "{hint}");
        assert_eq!(checks[0].details["most_likely"], "origin_404");
        // The configuration decides either way, whatever the run saw.
        let mut checks = vec![
            not_found(19),
            config_check("config.tunnel", "site_hostname_routed", json!(false), true),
        ];
        let hint = hint_of(&mut checks);
        assert!(hint.starts_with("add a public hostname"), "{hint}");
        assert!(hint.contains("confirmed by config.tunnel"), "{hint}");
        assert!(!checks[0].details.contains_key("most_likely"));
        let mut checks = vec![
            not_found(0),
            config_check("config.tunnel", "site_hostname_routed", json!(true), false),
        ];
        let hint = hint_of(&mut checks);
        assert!(
            hint.starts_with("make the application behind the tunnel serve"),
            "{hint}"
        );
        assert!(hint.contains("confirmed by config.tunnel"), "{hint}");
    }

    #[test]
    fn an_access_shaped_request_refused_confirms_the_block_in_front_of_the_keys() {
        let mut blocked = callback("access.token_verification_failed");
        blocked
            .details
            .insert("jwks_request_like_access_blocked".into(), json!(true));
        let mut checks = vec![
            blocked,
            config_check("config.login_method", "certs_url_ok", json!(true), false),
        ];
        attribute(&mut checks, "https://id.example.com");
        let hint = checks[0].hint.clone().unwrap();
        assert!(
            hint.starts_with(
                "let Cloudflare's own requests reach https://id.example.com/.well-known/jwks.json"
            ),
            "{hint}"
        );
        assert!(hint.contains("confirmed by access.callback"), "{hint}");
        assert!(hint.contains("cloudflare-access"), "{hint}");
        // Answered: no evidence either way, both causes stay.
        let mut answered = callback("access.token_verification_failed");
        answered
            .details
            .insert("jwks_request_like_access_blocked".into(), json!(false));
        let mut checks = vec![answered];
        attribute(&mut checks, "https://id.example.com");
        let hint = checks[0].hint.clone().unwrap();
        assert!(
            hint.starts_with("most likely: set the Certificate URL"),
            "{hint}"
        );
        assert!(hint.contains("has 2 causes"), "{hint}");
    }

    #[test]
    fn a_skipped_check_is_no_evidence() {
        let mut skipped = config_check("config.client", "active_secrets", json!(0), false);
        skipped.status = Status::Skip;
        let mut checks = vec![callback("access.code_exchange_failed"), skipped];
        attribute(&mut checks, "https://id.example.com");
        assert!(
            checks[0]
                .hint
                .as_deref()
                .unwrap()
                .starts_with("most likely")
        );
    }

    #[test]
    fn the_clients_par_setting_decides_pocket_ids_unnamed_error() {
        let authorize = || {
            let mut f = Findings::start(super::super::ids::IDP_AUTHORIZE);
            f.detail("symptom", super::super::idp::UNRECOGNIZABLE_SYMPTOM);
            f.fail("error=error", "old hint");
            f.finish("")
        };
        let mut checks = vec![authorize()];
        attribute(&mut checks, "https://id.example.com");
        let hint = checks[0].hint.clone().unwrap();
        assert!(hint.starts_with("most likely: turn off"), "{hint}");
        assert!(hint.contains("has 2 causes"), "{hint}");
        assert!(hint.contains("--api-key-file"), "{hint}");

        let mut checks = vec![
            authorize(),
            config_check("config.client", "requires_par", json!(true), true),
        ];
        attribute(&mut checks, "https://id.example.com");
        let hint = checks[0].hint.clone().unwrap();
        assert!(hint.starts_with("turn off"), "{hint}");
        assert!(hint.contains("confirmed by config.client"), "{hint}");
        assert_eq!(checks[1].details["explains"], "idp.authorize");

        let mut checks = vec![
            authorize(),
            config_check("config.client", "requires_par", json!(false), false),
        ];
        attribute(&mut checks, "https://id.example.com");
        let hint = checks[0].hint.clone().unwrap();
        assert!(
            hint.starts_with("let Pocket ID write to its database"),
            "{hint}"
        );
        assert!(
            hint.contains("ruled out: par_required (by config.client)"),
            "{hint}"
        );
    }

    #[test]
    fn an_unidentified_user_has_three_causes_until_the_run_rules_them_out() {
        let identity = || {
            let mut f = Findings::start(super::super::ids::ACCESS_CALLBACK);
            f.detail("symptom", "access.identity_unavailable");
            f.fail("Access: Failed to fetch user/group information", "old hint");
            f.finish("")
        };
        let mut checks = vec![identity()];
        attribute(&mut checks, "https://id.example.com");
        let hint = checks[0].hint.clone().unwrap();
        assert!(
            hint.starts_with("most likely: give the monitoring user"),
            "{hint}"
        );
        assert!(hint.contains("has 3 causes"), "{hint}");
        let mut checks = vec![
            identity(),
            config_check("passkey.login", "user_has_email", json!(true), false),
            config_check("access.login", "scope_has_email", json!(true), false),
        ];
        attribute(&mut checks, "https://id.example.com");
        let hint = checks[0].hint.clone().unwrap();
        assert!(hint.starts_with("set the Email claim"), "{hint}");
        assert!(!hint.contains("most likely"), "{hint}");
    }
}
