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
        out.push_str(&format!(
            "{}\n  proves:     {}\n",
            s.id,
            s.proves.replace(['*', '`'], "")
        ));
        out.push_str(&format!("  runs:       {}\n", s.runs.text()));
        out.push_str(&format!("  needs:      {}\n", facts(s.needs)));
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
                "yields": s.yields,
                "skips_when": spec::skips_when(s),
                "explained_by": s.explained_by,
            })
        })
        .collect();
    serde_json::to_string_pretty(&all).unwrap_or_else(|_| "[]".into())
}
