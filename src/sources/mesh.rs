//! Mesh sidecars' access logs: in a pod Istio injected, the `istio-proxy` container logs every
//! call the pod makes (an `outbound|…` cluster, the callee pod's address, how long it took).
//! Followed per pod through the API server like the gateway's log, they say which service calls
//! which and how long each waits on the next: what a slow service with idle pods is waiting for.
//!
//! The meshed pods come from the pods watch (their label and containers), not from lists of
//! their own; at most `max_pods` sidecars are followed, spread over the workloads first, so
//! every calling service is heard from before any is heard twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use tokio::sync::mpsc::UnboundedSender;

use super::gateway::{PodLog, PodStreams, follow_pod_log};
use super::placement::PodIndex;
use super::{SourceId, SourceState, Update};
use crate::model::pod::{PodInfo, PodKey};
use crate::model::store::Change;
use crate::model::update::mesh_stream_name;

pub use crate::model::mesh::{MESH_LABEL, SIDECAR};

/// How often the followed set is brought in line with the pods watch.
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

/// Running meshed pods and their workloads, as the pods watch last saw them.
#[derive(Clone, Default)]
pub struct MeshedPods(Arc<Mutex<PodIndex<String>>>);

/// The workload a meshed, running pod belongs to; `None` for any other pod.
fn meshed_workload(pod: &PodInfo) -> Option<String> {
    let labelled = pod.labels.iter().any(|(k, v)| (k.as_str(), v.as_str()) == MESH_LABEL);
    let has_sidecar = pod.containers.iter().any(|c| c.name == SIDECAR);
    (labelled && has_sidecar && pod.phase == "Running" && !pod.deleting)
        .then(|| pod.workload.clone().unwrap_or_else(|| pod.key.name.clone()))
}

impl MeshedPods {
    pub fn observe(&self, change: &Change<PodInfo>) {
        let Ok(mut m) = self.0.lock() else { return };
        m.observe(change, meshed_workload);
    }

    /// Up to `max` pods to follow, one per workload in turn (by name), and how many there are.
    pub fn chosen(&self, max: usize) -> (Vec<PodKey>, usize) {
        let Ok(m) = self.0.lock() else { return (Vec::new(), 0) };
        let mut by_workload: BTreeMap<&str, Vec<&PodKey>> = BTreeMap::new();
        for (pod, workload) in &m.items {
            by_workload.entry(workload).or_default().push(pod);
        }
        for pods in by_workload.values_mut() {
            pods.sort();
        }
        let mut chosen = Vec::new();
        for round in 0.. {
            let before = chosen.len();
            for pods in by_workload.values() {
                if chosen.len() < max
                    && let Some(pod) = pods.get(round)
                {
                    chosen.push((*pod).clone());
                }
            }
            if chosen.len() == before || chosen.len() >= max {
                break;
            }
        }
        (chosen, m.items.len())
    }
}

/// Follows the sidecar logs of the meshed pods (at most `max_pods`), starting and stopping
/// streams as pods come and go. Silent on a cluster without a mesh. Runs until cancelled.
pub async fn follow_mesh(client: Client, pods: MeshedPods, max_pods: usize, tx: UnboundedSender<Update>) {
    let mut streams = PodStreams::default();
    let mut told: Option<(usize, usize)> = None;
    loop {
        let (chosen, total) = pods.chosen(max_pods);
        let wanted: BTreeSet<&PodKey> = chosen.iter().collect();
        streams.0.retain(|(namespace, name), task| {
            let keep = wanted.contains(&PodKey::new(namespace, name)) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for pod in &chosen {
            let key = (pod.namespace.clone(), pod.name.clone());
            if streams.0.contains_key(&key) {
                continue;
            }
            let log = PodLog {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                container: Some(SIDECAR.to_string()),
                stream: mesh_stream_name(&pod.namespace, &pod.name),
                source: SourceId::Mesh,
            };
            streams.0.insert(key, tokio::spawn(follow_pod_log(client.clone(), log, tx.clone())));
        }
        if !chosen.is_empty() && told != Some((chosen.len(), total)) {
            let capped = if total > chosen.len() { format!(" of {total} (mesh_max_pods)") } else { String::new() };
            let _ = tx.send(Update::Notice(format!("mesh calls from {} sidecars{capped}", chosen.len())));
            let _ = tx.send(Update::Status { source: SourceId::Mesh, state: SourceState::Connected });
            told = Some((chosen.len(), total));
        }
        tokio::time::sleep(RECONCILE_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pod::{ContainerInfo, StateInfo};
    use crate::model::update::mesh_stream_pod;

    fn container(name: &str) -> ContainerInfo {
        ContainerInfo {
            name: name.into(),
            init: false,
            image: String::new(),
            resources: Default::default(),
            ready: true,
            restarts: 0,
            state: StateInfo::Running { started: None },
            last_termination: None,
        }
    }

    fn pod(name: &str, workload: &str, meshed: bool) -> PodInfo {
        let mut containers = vec![container("app")];
        let mut labels = vec![("app".to_string(), workload.to_string())];
        if meshed {
            containers.push(container(SIDECAR));
            labels.push((MESH_LABEL.0.into(), MESH_LABEL.1.into()));
        }
        PodInfo {
            key: PodKey::new("shop", name),
            workload: Some(workload.into()),
            phase: "Running".into(),
            labels,
            containers,
            ..Default::default()
        }
    }

    #[test]
    fn every_workload_is_heard_before_any_twice() {
        let meshed = MeshedPods::default();
        meshed.observe(&Change::InitStart);
        for p in [pod("a-1", "a", true), pod("a-2", "a", true), pod("a-3", "a", true), pod("b-1", "b", true)] {
            meshed.observe(&Change::InitItem(p));
        }
        meshed.observe(&Change::InitItem(pod("plain-1", "plain", false)));
        meshed.observe(&Change::InitDone);
        let names = |(pods, total): (Vec<PodKey>, usize)| (pods.into_iter().map(|p| p.name).collect::<Vec<_>>(), total);
        assert_eq!(names(meshed.chosen(2)), (vec!["a-1".into(), "b-1".into()], 4));
        assert_eq!(names(meshed.chosen(3)), (vec!["a-1".into(), "b-1".into(), "a-2".into()], 4));
        assert_eq!(names(meshed.chosen(10)).0.len(), 4, "the pod without a sidecar is not followed");
        // A pod that stops running leaves; one that is deleted too.
        let mut stopped = pod("a-1", "a", true);
        stopped.phase = "Succeeded".into();
        meshed.observe(&Change::Applied(stopped));
        meshed.observe(&Change::Deleted(pod("b-1", "b", true)));
        assert_eq!(names(meshed.chosen(10)), (vec!["a-2".into(), "a-3".into()], 2));
    }

    #[test]
    fn stream_names_round_trip() {
        assert_eq!(mesh_stream_pod(&mesh_stream_name("shop", "payment-1")), Some(PodKey::new("shop", "payment-1")));
        assert_eq!(mesh_stream_pod("shop/payment-1"), None, "a gateway stream is not a mesh stream");
    }
}
