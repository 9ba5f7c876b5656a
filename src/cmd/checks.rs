//! `ssoprobe checks`: every check as declared in `checks::spec` — its id, what it
//! proves, when a run asks for it, what it needs and what makes it skip.

use crate::checks::spec::{self, Spec};
use crate::cli::ListFormat;

/// Prints the declaration of every check.
pub fn run(format: ListFormat) -> Result<u8, super::AppError> {
    match format {
        ListFormat::Human => print!("{}", human()),
        ListFormat::Json => println!("{}", json()),
    }
    Ok(0)
}

fn human() -> String {
    let mut out = String::new();
    for s in spec::all() {
        out.push_str(&format!("{}\n  proves:     {}\n", s.id, plain(s.proves)));
        out.push_str(&format!(
            "  runs:       {}\n",
            crate::checks::spec::runs_text(s)
        ));
        out.push_str(&format!("  needs:      {}\n", facts(s.needs)));
        if !s.waits.is_empty() {
            out.push_str(&format!(
                "  reads:      {} (once known; it starts without it)\n",
                facts(s.waits)
            ));
        }
        if !s.yields.is_empty() {
            out.push_str(&format!("  yields:     {}\n", facts(s.yields)));
        }
        out.push_str(&format!(
            "  skips when: {}\n",
            spec::skips_when(s).join("; ")
        ));
        if !s.explained_by.is_empty() {
            out.push_str(&format!(
                "  its failure can follow from: {}\n",
                s.explained_by.join(", ")
            ));
        }
        out.push('\n');
    }
    out
}

/// A `proves` text (Markdown, as the README shows it) without its emphasis and code
/// marks: these texts are ssoprobe's own, and mark nothing else (see the test).
fn plain(markdown: &str) -> String {
    markdown.replace(['*', '`'], "")
}

fn facts(facts: &[spec::Fact]) -> String {
    facts
        .iter()
        .map(|f| f.text())
        .collect::<Vec<_>>()
        .join(", ")
}

fn json() -> String {
    let all: Vec<serde_json::Value> = spec::all()
        .map(|s: &Spec| {
            serde_json::json!({
                "id": s.id,
                "proves": s.proves,
                "runs": s.runs,
                "needs": s.needs,
                "waits": s.waits,
                "yields": s.yields,
                "skips_when": spec::skips_when(s),
                "explained_by": s.explained_by,
            })
        })
        .collect();
    serde_json::to_string_pretty(&all).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proves_texts_use_asterisks_and_backticks_only_as_markdown_marks() {
        // `plain` drops every one: a literal one (`*.example.com`) would vanish.
        for s in spec::all() {
            let spans: Vec<&str> = s.proves.split('`').collect();
            assert!(spans.len() % 2 == 1, "{}: an unclosed code span", s.id);
            for (i, span) in spans.iter().enumerate() {
                if i % 2 == 1 {
                    assert!(!span.contains('*'), "{}: a `*` in code: {span}", s.id);
                }
            }
            let emphasis = spans.iter().step_by(2).map(|t| t.matches('*').count());
            assert!(
                emphasis.sum::<usize>() % 2 == 0,
                "{}: an unpaired `*`",
                s.id
            );
        }
        assert_eq!(
            plain("is **not** public: *site*, `x`"),
            "is not public: site, x"
        );
    }
}
