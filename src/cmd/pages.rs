//! `serve`'s pages for people: `/` lists every target with its last result and the
//! recent probes; `/report?id=N` shows one probe's report (HTML, JSON or HAR);
//! `/probe?target=T&debug=true` answers the human report with its hop trace, as
//! blackbox_exporter's `debug=true` does.
//!
//! Plain server-rendered HTML: no script, readable on a phone, every status shown by a
//! symbol and a word beside its colour. Everything that came from a server (findings
//! quote IdP error texts) is escaped.

use crate::checks::Outcome;
use crate::finding::Status;
use crate::report::{self, Target, TargetRun};
use std::collections::VecDeque;
use std::sync::Arc;

/// Probes kept for `/` and `/report`.
pub const RECENT: usize = 100;
/// The newest probes whose HAR archive is kept (the others keep their report only).
pub const RECENT_HAR: usize = 20;
/// The largest HAR kept for one probe; a larger one keeps no archive.
pub const HAR_KEEP: usize = 512 * 1024;
/// The most bytes of hop trace kept for one probe (see [`trace`]).
pub const TRACE_KEEP: usize = 64 * 1024;
/// The most characters of one URL or error a kept trace shows.
pub const TRACE_TEXT_CHARS: usize = 2000;
/// The most cookie names one answer of a kept trace lists.
pub const TRACE_COOKIES: usize = 20;
/// The most characters of one cookie name a kept trace shows.
pub const TRACE_NAME_CHARS: usize = 64;
/// The most hops a kept trace lists.
pub const TRACE_HOPS: usize = 200;

/// One probe, as `/` and `/report` show it.
pub struct Record {
    /// Its number, from 1, in the order the probes ran.
    pub id: u64,
    /// The target's name.
    pub target: String,
    /// What was checked.
    pub info: Target,
    /// When it started (Unix seconds).
    pub started_unix: i64,
    /// Its results.
    pub outcome: Outcome,
    /// Its requests, one line per hop (redacted).
    pub trace: String,
    /// Its HAR archive (JSON), while it is among the newest [`RECENT_HAR`].
    pub har: std::sync::Mutex<Option<String>>,
}

impl Record {
    /// The run as the renderers take it.
    pub fn run(&self) -> TargetRun<'_> {
        TargetRun {
            name: &self.target,
            target: &self.info,
            outcome: &self.outcome,
            started_unix: self.started_unix,
        }
    }

    /// The human report, every problem of each check listed, and its hop trace (the
    /// `debug=true` answer; serve turns colour off for the process).
    pub fn debug_text(&self) -> String {
        format!(
            "{}\nRequests of this run (secrets redacted):\n{}",
            report::human_all_with(&[self.run()], true),
            if self.trace.is_empty() {
                "  (none)\n"
            } else {
                &self.trace
            }
        )
    }
}

/// The recent probes: a ring of [`RECENT`], and each target's newest.
#[derive(Default)]
pub struct Recent {
    next: u64,
    runs: VecDeque<Arc<Record>>,
    last: std::collections::BTreeMap<String, Arc<Record>>,
}

impl Recent {
    /// Adds a probe; the oldest falls out, and HAR archives older than the newest
    /// [`RECENT_HAR`] are let go.
    pub fn push(
        &mut self,
        target: &str,
        info: Target,
        started_unix: i64,
        outcome: Outcome,
        trace: String,
        har: Option<String>,
    ) -> Arc<Record> {
        self.next += 1;
        let record = Arc::new(Record {
            id: self.next,
            target: target.to_string(),
            info,
            started_unix,
            outcome,
            trace,
            har: std::sync::Mutex::new(har.filter(|h| h.len() <= HAR_KEEP)),
        });
        self.runs.push_back(record.clone());
        while self.runs.len() > RECENT {
            self.runs.pop_front();
        }
        if self.runs.len() > RECENT_HAR
            && let Some(old) = self.runs.get(self.runs.len() - RECENT_HAR - 1)
            && let Ok(mut har) = old.har.lock()
        {
            *har = None;
        }
        self.last.insert(target.to_string(), record.clone());
        record
    }

    /// A probe by its number, while it is recent.
    pub fn get(&self, id: u64) -> Option<Arc<Record>> {
        self.runs.iter().find(|r| r.id == id).cloned()
    }

    /// The newest probe of `target`.
    pub fn last(&self, target: &str) -> Option<Arc<Record>> {
        self.last.get(target).cloned()
    }

    /// The recent probes, newest first.
    pub fn newest_first(&self) -> Vec<Arc<Record>> {
        self.runs.iter().rev().cloned().collect()
    }
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The symbol, word and CSS class of a status (the symbol and word carry the meaning;
/// the colour only repeats it).
fn badge(status: Status) -> String {
    let (symbol, class) = match status {
        Status::Pass => ("✔", "pass"),
        Status::Warn => ("⚠", "warn"),
        Status::Fail => ("✘", "fail"),
        Status::Skip => ("–", "skip"),
    };
    format!(
        "<span class=\"badge {class}\">{symbol} {}</span>",
        status.as_str()
    )
}

fn age(now_unix: i64, then: i64) -> String {
    let s = (now_unix - then).max(0);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:.8rem;color:#1b1b1b;background:#fff}\
h1{font-size:1.3rem}h2{font-size:1.1rem;margin-top:1.6rem}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid #ddd}\
.scroll{overflow-x:auto}.hint{color:#444;font-size:.92rem}code,pre{font-family:ui-monospace,monospace;font-size:.88rem}\
pre{white-space:pre-wrap;word-break:break-word;background:#f6f6f6;padding:.6rem}\
.badge{display:inline-block;padding:0 .4rem;border-radius:.3rem;font-weight:600;white-space:nowrap}\
.pass{background:#dbeafe;color:#0b3d91}.warn{background:#fef3c7;color:#7a4b00}.fail{background:#fde2e1;color:#8a1010}.skip{background:#eee;color:#555}.when{white-space:nowrap}footer{margin-top:1.2rem}\
@media (max-width:40rem){body{padding:.6rem}p,td,code{overflow-wrap:anywhere}\
table,tbody,tr{display:block}thead{display:none}tr{padding:.4rem 0;border-bottom:1px solid #ddd}\
td{display:inline-block;padding:.1rem .5rem .1rem 0;border:0}td.text{display:block}}\
@media (prefers-color-scheme:dark){body{background:#111;color:#eee}th,td,tr{border-color:#333}.hint{color:#bbb}pre{background:#1c1c1c}}";

fn page(title: &str, refresh: Option<u32>, body: &str) -> String {
    let refresh = refresh
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}<title>{}</title><style>{STYLE}</style></head><body>\n{body}\n<footer class=\"hint\">ssoprobe {} · <a href=\"/metrics\">/metrics</a> · <a href=\"/\">recent probes</a></footer></body></html>\n",
        escape(title),
        env!("CARGO_PKG_VERSION")
    )
}

/// The first failing check (else the first warning one): its id, finding and hint.
fn first_problem(outcome: &Outcome) -> Option<(&str, &str, Option<&str>)> {
    let pick = |s: Status| outcome.checks.iter().find(|c| c.status == s);
    pick(Status::Fail)
        .or_else(|| pick(Status::Warn))
        .map(|c| (c.id.as_str(), c.summary.as_str(), c.hint.as_deref()))
}

/// `/`: the targets with their last result (or "not probed yet") and a link that probes
/// each now (`debug=true`: the report with its requests), then the recent probes.
pub fn index(
    targets: &[(String, Option<Arc<Record>>)],
    recent: &[Arc<Record>],
    now_unix: i64,
    refresh: Option<u32>,
) -> String {
    let mut body = String::from(
        "<h1>ssoprobe serve</h1>\n<h2>Targets</h2>\n<div class=\"scroll\"><table><thead><tr><th>target</th><th>last result</th><th>when</th><th>first problem</th><th>probe</th></tr></thead><tbody>\n",
    );
    for (name, last) in targets {
        // Runs the target now and answers its report with the requests, as text.
        let probe_now = format!(
            "<td><a class=\"probe-now\" href=\"/probe?target={}&amp;debug=true\">probe now</a></td>",
            escape(&url_escape(name))
        );
        match last {
            Some(r) => {
                let problem = match first_problem(&r.outcome) {
                    Some((id, finding, hint)) => format!(
                        "<code>{}</code> {}{}",
                        escape(id),
                        escape(finding),
                        hint.map(|h| format!("<div class=\"hint\">hint: {}</div>", escape(h)))
                            .unwrap_or_default()
                    ),
                    None => "no problem".to_string(),
                };
                body.push_str(&format!(
                    "<tr class=\"target\" data-status=\"{}\"><td>{}</td><td>{}</td><td class=\"when\"><a href=\"/report?id={}\">{}</a></td><td class=\"text\">{problem}</td>{probe_now}</tr>\n",
                    r.outcome.status().as_str(),
                    escape(name),
                    badge(r.outcome.status()),
                    r.id,
                    age(now_unix, r.started_unix)
                ));
            }
            None => body.push_str(&format!(
                "<tr class=\"target\" data-status=\"none\"><td>{}</td><td>not probed yet</td><td></td><td></td>{probe_now}</tr>\n",
                escape(name),
            )),
        }
    }
    body.push_str("</tbody></table></div>\n<h2>Recent probes</h2>\n");
    if recent.is_empty() {
        body.push_str("<p>None yet.</p>\n");
    } else {
        body.push_str("<div class=\"scroll\"><table><thead><tr><th>#</th><th>target</th><th>result</th><th>when</th><th>took</th><th>checks</th></tr></thead><tbody>\n");
        for r in recent {
            let counts = |s: Status| r.outcome.checks.iter().filter(|c| c.status == s).count();
            body.push_str(&format!(
                "<tr class=\"probe\"><td><a href=\"/report?id={id}\">{id}</a></td><td>{}</td><td>{}</td><td class=\"when\">{}</td><td class=\"when\">{} ms</td><td>{} pass, {} warn, {} fail, {} skip</td></tr>\n",
                escape(&r.target),
                badge(r.outcome.status()),
                age(now_unix, r.started_unix),
                r.outcome.duration.as_millis(),
                counts(Status::Pass),
                counts(Status::Warn),
                counts(Status::Fail),
                counts(Status::Skip),
                id = r.id,
            ));
        }
        body.push_str("</tbody></table></div>\n");
    }
    page("ssoprobe serve", refresh, &body)
}

/// `/report?id=N` as HTML: every check with its finding, hint and details, then the
/// requests.
pub fn report(r: &Record, now_unix: i64) -> String {
    let mut body = format!(
        "<h1>Probe {} · {}</h1>\n<p>{} · {} · {} ms · <a href=\"/report?id={}&amp;format=json\">JSON</a>{}</p>\n<p><code>{}</code> → Access{} → <code>{}</code></p>\n",
        r.id,
        escape(&r.target),
        badge(r.outcome.status()),
        age(now_unix, r.started_unix),
        r.outcome.duration.as_millis(),
        r.id,
        if r.har.lock().map(|h| h.is_some()).unwrap_or(false) {
            format!(" · <a href=\"/report?id={}&amp;format=har\">HAR</a>", r.id)
        } else {
            String::new()
        },
        escape(&r.info.service),
        r.info
            .team_domain
            .as_deref()
            .map(|t| format!(" ({})", escape(t)))
            .unwrap_or_default(),
        escape(&r.info.idp),
    );
    body.push_str("<div class=\"scroll\"><table><thead><tr><th>check</th><th>result</th><th>finding</th></tr></thead><tbody>\n");
    for c in &r.outcome.checks {
        body.push_str(&format!(
            "<tr class=\"check\" data-id=\"{}\" data-status=\"{}\"><td><code>{}</code></td><td>{}</td><td class=\"text\">{}{}</td></tr>\n",
            escape(&c.id),
            c.status.as_str(),
            escape(&c.id),
            badge(c.status),
            escape(&c.summary),
            c.hint
                .as_deref()
                .map(|h| format!("<div class=\"hint\">hint: {}</div>", escape(h)))
                .unwrap_or_default()
        ));
    }
    body.push_str("</tbody></table></div>\n<h2>Requests</h2>\n<pre>");
    body.push_str(&escape(if r.trace.is_empty() {
        "(none)"
    } else {
        &r.trace
    }));
    body.push_str("</pre>\n");
    page(
        &format!("ssoprobe probe {} · {}", r.id, r.target),
        None,
        &body,
    )
}

/// A query value, percent-encoded.
fn url_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The hop trace of a run's recorded requests: one line out, one line back.
///
/// Bounded, as the HAR bounds bodies: serve keeps the trace of each of its recent
/// probes, and a site redirecting through huge URLs made each one megabytes. Each URL
/// and error keeps [`TRACE_TEXT_CHARS`] characters, each answer [`TRACE_COOKIES`]
/// cookie names of [`TRACE_NAME_CHARS`], at most [`TRACE_HOPS`] hops are listed, and
/// the whole stays within [`TRACE_KEEP`] bytes plus one line saying what was left out.
pub fn trace(entries: &[crate::har::Entry]) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for e in entries {
        let hop = hop_lines(e);
        if shown == TRACE_HOPS || out.len() + hop.len() > TRACE_KEEP {
            break;
        }
        out.push_str(&hop);
        shown += 1;
    }
    if shown < entries.len() {
        out.push_str(&format!(
            "… {} more requests not shown (the HAR has them)\n",
            entries.len() - shown
        ));
    }
    out
}

/// One request's two trace lines, cut to the trace's bounds and safe to print.
fn hop_lines(e: &crate::har::Entry) -> String {
    let method = cut(
        e.request["method"].as_str().unwrap_or("?"),
        TRACE_NAME_CHARS,
    );
    let url = cut(e.request["url"].as_str().unwrap_or("?"), TRACE_TEXT_CHARS);
    let mut out = format!("{:<22} → {method} {url}\n", e.check);
    let status = e.response["status"].as_u64().unwrap_or(0);
    let took = (e.wait + e.receive).as_millis();
    if status == 0 {
        let why = cut(
            e.response["_error"].as_str().unwrap_or("no answer"),
            TRACE_TEXT_CHARS,
        );
        out.push_str(&format!("{:<22} ✘ after {took} ms: {why}\n", ""));
    } else {
        out.push_str(&format!("{:<22} ← {status} in {took} ms", ""));
        if let Some(l) = e.response["redirectURL"].as_str().filter(|l| !l.is_empty()) {
            out.push_str(&format!("  location: {}", cut(l, TRACE_TEXT_CHARS)));
        }
        let cookies: Vec<&str> = e.response["cookies"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        if !cookies.is_empty() {
            let mut names: Vec<String> = cookies
                .iter()
                .take(TRACE_COOKIES)
                .map(|c| cut(c, TRACE_NAME_CHARS))
                .collect();
            if cookies.len() > TRACE_COOKIES {
                names.push(format!(
                    "… ({} more cookies)",
                    cookies.len() - TRACE_COOKIES
                ));
            }
            out.push_str(&format!("  set-cookie: {}", names.join(", ")));
        }
        out.push('\n');
    }
    // The archive's URLs percent-encode the fingerprints' brackets; the trace shows them.
    crate::redact::terminal_safe_lines(&out.replace("%5B", "[").replace("%5D", "]"))
}

/// `text` cut to `limit` characters, saying how many more there were.
fn cut(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        None => text.to_string(),
        Some((at, _)) => format!(
            "{}… ({} more characters)",
            &text[..at],
            text[at..].chars().count()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_from_servers_is_escaped() {
        assert_eq!(
            escape("<script>alert(\"x\")</script> & 'q'\u{1b}"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;\u{fffd}"
        );
    }

    /// `n` hops of a redirect chain whose URLs are `url_len` characters long, each
    /// answer setting `cookies` cookies with long names and as many other headers.
    fn long_chain(n: usize, url_len: usize, cookies: usize) -> Vec<crate::har::Entry> {
        let url = |i: usize| {
            let base = format!("https://service.example.com/{i}?q=");
            format!("{base}{}", "a".repeat(url_len.saturating_sub(base.len())))
        };
        (0..n)
            .map(|i| crate::har::Entry {
                check: "service.redirect".into(),
                started: std::time::SystemTime::UNIX_EPOCH,
                request: serde_json::json!({"method": "GET", "url": url(i)}),
                response: serde_json::json!({
                    "status": 302,
                    "redirectURL": url(i + 1),
                    "cookies": (0..cookies)
                        .map(|c| serde_json::json!({"name": format!("{c}-{}", "c".repeat(1000))}))
                        .collect::<Vec<_>>(),
                    "headers": (0..cookies)
                        .map(|h| serde_json::json!({"name": format!("x-{h}"), "value": "v".repeat(1000)}))
                        .collect::<Vec<_>>(),
                }),
                wait: std::time::Duration::ZERO,
                receive: std::time::Duration::ZERO,
                server_ip: None,
                connection: None,
                proxy: None,
            })
            .collect()
    }

    #[test]
    fn a_trace_of_long_hops_is_bounded() {
        // 10 redirects through 60 KB URLs, 200 cookies and headers on each answer.
        let kept = trace(&long_chain(10, 60_000, 200));
        assert!(
            kept.len() <= TRACE_KEEP + 200,
            "the trace keeps {} bytes",
            kept.len()
        );
        // Every hop is still there, each URL cut with the count of what was left out.
        assert_eq!(
            kept.matches("→ GET https://service.example.com/").count(),
            10
        );
        assert!(kept.contains("… (58000 more characters)"), "{kept:.3000}");
        assert!(kept.contains("… (180 more cookies)"), "{kept:.3000}");
        // Many hops: the trace says how many it left out.
        let kept = trace(&long_chain(5000, 100, 1));
        assert!(kept.len() <= TRACE_KEEP + 200, "{} bytes", kept.len());
        let tail: String = kept
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        assert!(
            tail.ends_with("requests not shown (the HAR has them)\n"),
            "{tail}"
        );
        // The report page of such a probe stays small too.
        let mut recent = Recent::default();
        let record = recent.push(
            "t",
            Target {
                service: "https://s.example/".into(),
                idp: "https://i.example/".into(),
                team_domain: None,
                found: Default::default(),
            },
            0,
            Outcome {
                checks: Vec::new(),
                duration: std::time::Duration::ZERO,
                before: std::time::Duration::ZERO,
            },
            trace(&long_chain(10, 60_000, 200)),
            None,
        );
        let page = report(&record, 0);
        assert!(
            page.len() <= TRACE_KEEP + 8 * 1024,
            "/report is {} bytes",
            page.len()
        );
    }

    #[test]
    fn the_ring_is_bounded_and_keeps_only_the_newest_archives() {
        let mut recent = Recent::default();
        let info = Target {
            service: "https://s.example/".into(),
            idp: "https://i.example/".into(),
            team_domain: None,
            found: Default::default(),
        };
        let outcome = Outcome {
            checks: Vec::new(),
            duration: std::time::Duration::ZERO,
            before: std::time::Duration::ZERO,
        };
        for i in 0..(RECENT as u64 + 30) {
            recent.push(
                &format!("t{}", i % 3),
                info.clone(),
                0,
                outcome.clone(),
                String::new(),
                Some("{}".into()),
            );
        }
        let all = recent.newest_first();
        assert_eq!(all.len(), RECENT);
        assert_eq!(all[0].id, RECENT as u64 + 30);
        let with_har = all
            .iter()
            .filter(|r| r.har.lock().unwrap().is_some())
            .count();
        assert_eq!(with_har, RECENT_HAR);
        assert!(recent.get(1).is_none() && recent.get(RECENT as u64 + 30).is_some());
        assert_eq!(recent.last("t0").unwrap().target, "t0");
        // A HAR over the cap is not kept.
        let r = recent.push(
            "big",
            info,
            0,
            outcome,
            String::new(),
            Some("x".repeat(HAR_KEEP + 1)),
        );
        assert!(r.har.lock().unwrap().is_none());
    }
}
