//! JUnit XML renderer.

use super::TargetRun;

/// Renders `runs` as JUnit XML.
pub fn render(runs: &[TargetRun<'_>]) -> String {
    let _ = runs;
    String::new()
}
