//! The run as a HAR 1.2 document (`--har FILE`): the recorded exchanges of each target
//! ([`crate::har`], redacted as they were recorded), one page per check that sent
//! requests, with that check's finding.

use crate::finding::CheckResult;
use crate::har::Entry;
use crate::timefmt::iso8601;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

/// One target's run for the archive.
pub struct TargetEntries<'a> {
    /// The target's name (page ids are prefixed with it when there are several).
    pub name: &'a str,
    /// Its exchanges.
    pub entries: Vec<Entry>,
    /// Its findings.
    pub checks: &'a [CheckResult],
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

/// The HAR 1.2 document of the runs.
pub fn document(runs: &[TargetEntries<'_>]) -> Value {
    let several = runs.len() > 1;
    let mut pages = Vec::new();
    let mut entries = Vec::new();
    for run in runs {
        let page_id = |check: &str| {
            if several {
                format!("{}/{check}", run.name)
            } else {
                check.to_string()
            }
        };
        // One page per label that sent requests, in the order of its first request.
        let mut labels: Vec<(&str, SystemTime)> = Vec::new();
        for e in &run.entries {
            if !labels.iter().any(|(l, _)| *l == e.check) {
                labels.push((&e.check, e.started));
            }
        }
        for (label, started) in labels {
            // The findings of the checks this label's requests served: the check of
            // that id, or (the doctor's `config` label) every `config.*` check.
            let findings: Vec<Value> = run
                .checks
                .iter()
                .filter(|c| c.id == label || c.id.starts_with(&format!("{label}.")))
                .map(|c| {
                    let mut f =
                        json!({"check": c.id, "status": c.status.as_str(), "summary": c.summary});
                    if let Some(h) = &c.hint {
                        f["hint"] = json!(h);
                    }
                    f
                })
                .collect();
            pages.push(json!({
                "startedDateTime": iso8601(started),
                "id": page_id(label),
                "title": page_id(label),
                "pageTimings": {"onContentLoad": -1, "onLoad": -1},
                "_ssoprobe": {"target": run.name, "findings": findings},
            }));
        }
        for e in &run.entries {
            let time = ms(e.wait + e.receive);
            let mut entry = json!({
                "pageref": page_id(&e.check),
                "startedDateTime": iso8601(e.started),
                "time": time,
                "request": e.request,
                "response": e.response,
                "cache": {},
                "timings": {
                    "blocked": -1, "dns": -1, "connect": -1, "ssl": -1,
                    "send": 0, "wait": ms(e.wait), "receive": ms(e.receive),
                },
                "_ssoprobe": {"check": e.check, "target": run.name},
            });
            if let Some(ip) = &e.server_ip {
                entry["serverIPAddress"] = json!(ip);
            }
            if let Some(c) = &e.connection {
                entry["connection"] = json!(c);
            }
            if let Some(p) = &e.proxy {
                entry["_proxy"] = json!(p);
            }
            entries.push(entry);
        }
    }
    json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "ssoprobe", "version": env!("CARGO_PKG_VERSION")},
            "pages": pages,
            "entries": entries,
        }
    })
}
