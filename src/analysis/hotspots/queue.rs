//! A broker's queues and consumer groups: a backlog that grows, consumers that fall behind.

use crate::model::time::format_age;

use super::{Board, Inputs, Rules, Subject, scaled};

/// A consumer that falls behind: the backlog grows for longer than a burst, so events arrive ever
/// later and the gateway never sees it.
pub(super) fn queue_rules(inputs: &Inputs, rules: &Rules, board: &mut Board) {
    for q in &inputs.queues {
        let s = q.stats;
        let Some(since) = s.growing_since else { continue };
        let growing_for = inputs.now - since;
        if growing_for < rules.queue_growing_secs || s.backlog < rules.queue_min_backlog {
            continue;
        }
        let rates = match (s.publish_rate, s.ack_rate) {
            (Some(p), Some(a)) => format!(" (in {p:.0}/s, acknowledged {a:.0}/s)"),
            _ => String::new(),
        };
        let who = match (q.consumers.is_empty(), s.consumers) {
            (false, _) => format!("; consumed by {}", q.consumers.join(", ")),
            (true, Some(n)) if n < 1.0 => "; no consumer is connected".to_string(),
            (true, _) => String::new(),
        };
        let evidence = format!(
            "backlog {:.0} growing {:+.0}/s for {}{rates}{who}",
            s.backlog,
            s.backlog_per_sec,
            format_age(growing_for)
        );
        let strong = 10.0 * rules.queue_growing_secs as f64;
        let score = scaled(rules.weights.consumer_lag, growing_for as f64, rules.queue_growing_secs as f64, strong);
        board.add(Subject::Queue { name: q.key.label() }, "Consumer falling behind", evidence, score);
    }
}
