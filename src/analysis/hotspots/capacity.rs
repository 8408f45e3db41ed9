//! A workload's capacity: replicas fell or are short of what it asks, with the pods that left.

use hashbrown::HashMap;

use crate::model::pod::PodKey;
use crate::model::time::format_age;

use super::pods::troubled_containers;
use super::{Board, ContainerFacts, Finding, Inputs, Subject, combined_score};

/// Fewer replicas for the same load: once the pods left are in trouble (CPU-starved, not
/// ready…), the drop is the cause and the workload ranks above them; while none is, nothing.
/// Only where the gateway shows the load stayed: a scale-in after the load fell is the point.
pub(super) fn capacity_rules(
    inputs: &Inputs,
    containers_of: &HashMap<&PodKey, Vec<&ContainerFacts>>,
    board: &mut Board,
) {
    if inputs.capacity.is_empty() {
        return;
    }
    for drop in &inputs.capacity {
        let (Some(before), Some(now)) = (drop.load_before, drop.load_now) else { continue };
        if before <= 0.0 || now < 0.8 * before {
            continue;
        }
        let troubled = troubled_containers(drop.pods.iter().copied(), containers_of, board);
        let strongest =
            troubled.iter().filter_map(|(cs, _)| Some(combined_score(board.findings.get(cs)?))).reduce(f64::max);
        let Some(strongest) = strongest else { continue };
        let names: Vec<String> = troubled
            .iter()
            .take(3)
            .map(|(cs, verdict)| match cs {
                Subject::Container { pod, container, .. } => format!("{pod}/{container} ({verdict})"),
                other => format!("{} ({verdict})", other.label()),
            })
            .collect();
        let evidence = format!(
            "{} → {} replicas {} ago while its load stayed ({before:.1}/s before, {now:.1}/s now); the pods left are in trouble: {}",
            drop.from,
            drop.to,
            format_age(inputs.now - drop.at),
            names.join(", ")
        );
        let subject = Subject::Workload { namespace: drop.namespace.clone(), workload: drop.workload.clone() };
        // The pods left are the drop's victims: they rank below it and say where to look.
        let label = subject.label();
        for (cs, _) in &troubled {
            if let Some(findings) = board.findings.get_mut(cs) {
                for f in findings.iter_mut() {
                    f.score *= 0.85;
                }
                let text = format!(
                    "{label} fell from {} to {} replicas {} ago",
                    drop.from,
                    drop.to,
                    format_age(inputs.now - drop.at)
                );
                findings.push(Finding {
                    verdict: format!("Short of replicas: see {label}"),
                    evidence: text,
                    score: 0.0,
                });
            }
        }
        board.add(subject, "Replicas fell", evidence, strongest);
    }
}
