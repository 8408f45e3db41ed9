//! How the rules find the pods behind a service or workload: its containers by pod, the troubled
//! ones, the serving one, and a pod's ReplicaSet.

use hashbrown::HashMap;

use crate::model::pod::PodKey;

use super::{Board, ContainerFacts, Subject, container_subject};

/// The containers of `pods` in trouble: a finding of their own (its strongest verdict), or not
/// serving (starting, not ready, waiting: their health word). Sorted: the pods come in no
/// particular order and the evidence must not depend on it.
pub(super) fn troubled_containers<'a>(
    pods: impl Iterator<Item = &'a PodKey>,
    containers_of: &HashMap<&PodKey, Vec<&ContainerFacts>>,
    board: &Board,
) -> Vec<(Subject, String)> {
    let mut troubled: Vec<(Subject, String)> = pods
        .flat_map(|pod| containers_of.get(pod).into_iter().flatten())
        .filter_map(|c| {
            let cs = container_subject(c);
            let strongest = board.findings.get(&cs).and_then(|f| f.iter().max_by(|a, b| a.score.total_cmp(&b.score)));
            let verdict = match strongest {
                Some(f) => f.verdict.clone(),
                None if c.health.severity >= crate::analysis::health::Severity::Warn => c.health.word.clone(),
                None => return None,
            };
            Some((cs, verdict))
        })
        .collect();
    troubled.sort();
    troubled.dedup();
    troubled
}

/// The container of a pod that serves its requests: its busiest (a sidecar beside it is not),
/// ties by name so the choice never depends on input order.
pub(super) fn serving_container<'a>(
    containers_of: &HashMap<&PodKey, Vec<&'a ContainerFacts<'a>>>,
    pod: &PodKey,
) -> Option<&'a ContainerFacts<'a>> {
    containers_of
        .get(pod)?
        .iter()
        .copied()
        .max_by(|a, b| a.cpu_m.total_cmp(&b.cpu_m).then(b.container.cmp(a.container)))
}

/// A Deployment pod's ReplicaSet: its name without the pod's own suffix
/// (`catalog-7d9f8c6b5-x2x9z` → `catalog-7d9f8c6b5`); a StatefulSet's `search-0` has none.
pub(super) fn replica_set_of(pod: &str) -> Option<&str> {
    let (rs, _) = pod.rsplit_once('-')?;
    rs.contains('-').then_some(rs)
}
