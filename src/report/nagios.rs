//! monitoring-plugins output renderer.

use super::TargetRun;

/// Renders `runs` as monitoring-plugins output.
pub fn render(runs: &[TargetRun<'_>]) -> String {
    let _ = runs;
    String::new()
}
