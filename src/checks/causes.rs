//! Candidate causes, declared per symptom: a symptom several causes produce (Access's
//! "Failed to exchange code for token" after the callback) names the causes that give
//! it, each with its fix and the evidence that confirms or rules it out — a detail
//! another check of the same run recorded (the `config.*` checks read the
//! configuration). The hint then says what the evidence leaves: the confirmed cause
//! with its evidence; else the causes still alive, most likely first, and what would
//! tell them apart. It never names one cause while the declaration keeps two alive.

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
    /// The fix, first clause of the hint (`{idp}`: Pocket ID's URL).
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
                            "a token request with Cloudflare's User-Agent cloudflare-access was refused, and ssoprobe's own was answered",
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
        let fix = |c: &Cause| c.fix.replace("{idp}", idp);
        let own = checks[i].id.clone();
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
                let alive: Vec<&Cause> = standings
                    .iter()
                    .filter(|(_, s)| *s == Standing::Alive)
                    .map(|(c, _)| *c)
                    .collect();
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
                        "most likely: {}; else: {} — {} has {} causes{ruled}; to tell them apart, {}",
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
}
