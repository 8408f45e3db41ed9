//! The gateway itself: the time it adds on top of its upstreams, and its own errors.

use crate::model::time::format_latency;

use super::{Board, Inputs, Rules, Subject, scaled};

pub(super) fn gateway_rules(inputs: &Inputs, rules: &Rules, board: &mut Board) {
    let Some((summary, pods)) = &inputs.gateway else { return };
    if summary.requests < rules.min_requests {
        return;
    }
    let Some(overhead) = summary.overhead_p95 else { return };
    let threshold = rules.gateway_overhead_ms / 1000.0;
    if overhead < threshold {
        return;
    }
    let share =
        summary.upstream_share.map(|u| format!(" ({:.0}% of request time)", (1.0 - u) * 100.0)).unwrap_or_default();
    let evidence = format!("the gateway adds {} at p95 (total − upstream){share}", format_latency(overhead));
    let busy: Vec<String> = inputs
        .containers
        .iter()
        .filter(|c| pods.contains(&c.pod))
        .filter(|c| {
            c.throttle.is_some_and(|t| t >= rules.cpu_throttled)
                || c.resources.cpu_limit_m.is_some_and(|l| c.cpu_m >= rules.cpu_at_limit * l)
        })
        .map(|c| c.pod.name.clone())
        .collect();
    let score = scaled(rules.weights.gateway_overhead, overhead, threshold, 10.0 * threshold);
    board.add(Subject::Gateway, "Gateway overhead", evidence, score);
    // Its own pods at their CPU ceiling explain the overhead: one finding, on the gateway.
    if !busy.is_empty() {
        let evidence = format!("its pods are CPU-bound: {}", busy.join(", "));
        board.add(Subject::Gateway, "Gateway CPU-bound", evidence, rules.weights.cpu_starved);
    }
}
