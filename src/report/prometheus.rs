//! Prometheus text exposition renderer.

use super::TargetRun;

/// Renders `runs` as Prometheus text exposition.
pub fn render(runs: &[TargetRun<'_>]) -> String {
    let _ = runs;
    String::new()
}
