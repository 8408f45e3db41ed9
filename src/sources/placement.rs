//! Which nodes run the pods in scope, as the pods watch last saw them: a session scoped to one
//! namespace scrapes only those kubelets, not every node of the cluster.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::model::pod::{PodInfo, PodKey};
use crate::model::store::Change;

#[derive(Clone, Default)]
pub struct PodPlacement(Arc<Mutex<Placement>>);

#[derive(Default)]
struct Placement {
    nodes: HashMap<PodKey, String>,
    /// A relist under way: its pods replace the old ones when it is done.
    relisting: Option<HashMap<PodKey, String>>,
    listed: bool,
}

impl PodPlacement {
    pub fn observe(&self, change: &Change<PodInfo>) {
        let Ok(mut p) = self.0.lock() else { return };
        let node_of = |pod: &PodInfo| pod.node.clone().filter(|n| !n.is_empty());
        match change {
            Change::InitStart => p.relisting = Some(HashMap::new()),
            Change::InitItem(pod) => {
                if let (Some(node), Some(relisting)) = (node_of(pod), p.relisting.as_mut()) {
                    relisting.insert(pod.key.clone(), node);
                }
            }
            Change::InitDone => {
                if let Some(fresh) = p.relisting.take() {
                    p.nodes = fresh;
                }
                p.listed = true;
            }
            Change::Applied(pod) => match node_of(pod) {
                Some(node) => {
                    p.nodes.insert(pod.key.clone(), node);
                }
                None => {
                    p.nodes.remove(&pod.key);
                }
            },
            Change::Deleted(pod) => {
                p.nodes.remove(&pod.key);
            }
        }
    }

    /// The nodes with at least one pod in scope; `None` before the first pod list.
    pub fn nodes(&self) -> Option<BTreeSet<String>> {
        let p = self.0.lock().ok()?;
        p.listed.then(|| p.nodes.values().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: Option<&str>) -> PodInfo {
        PodInfo { key: PodKey::new("shop", name), node: node.map(str::to_string), ..Default::default() }
    }

    #[test]
    fn follows_the_pods_watch_through_relists_moves_and_deletions() {
        let placement = PodPlacement::default();
        assert_eq!(placement.nodes(), None, "unknown before the first list");
        placement.observe(&Change::InitStart);
        placement.observe(&Change::InitItem(pod("a", Some("node-1"))));
        placement.observe(&Change::InitItem(pod("b", None)));
        placement.observe(&Change::InitDone);
        assert_eq!(placement.nodes(), Some(BTreeSet::from(["node-1".to_string()])));
        placement.observe(&Change::Applied(pod("b", Some("node-2"))));
        placement.observe(&Change::Deleted(pod("a", Some("node-1"))));
        assert_eq!(placement.nodes(), Some(BTreeSet::from(["node-2".to_string()])));
        // A relist replaces what was known; until it is done the old placement stands.
        placement.observe(&Change::InitStart);
        placement.observe(&Change::InitItem(pod("c", Some("node-3"))));
        assert_eq!(placement.nodes(), Some(BTreeSet::from(["node-2".to_string()])));
        placement.observe(&Change::InitDone);
        assert_eq!(placement.nodes(), Some(BTreeSet::from(["node-3".to_string()])));
    }
}
