//! What the sources need to know of the pods in scope, as the pods watch last saw them
//! ([`PodIndex`]): which nodes run them (a session scoped to one namespace scrapes only those
//! kubelets, not every node of the cluster), which are meshed (`mesh.rs`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::model::pod::{PodInfo, PodKey};
use crate::model::store::Change;

#[derive(Clone, Default)]
pub struct PodPlacement(Arc<Mutex<PodIndex<String>>>);

/// One thing about each pod of interest, as the pods watch last saw it: a relist's pods replace
/// the old ones only when it is done, a change updates (or drops) its pod, a deletion drops it.
#[derive(Debug)]
pub struct PodIndex<V> {
    pub items: HashMap<PodKey, V>,
    relisting: Option<HashMap<PodKey, V>>,
    /// The first list is done.
    pub listed: bool,
}

impl<V> Default for PodIndex<V> {
    fn default() -> Self {
        PodIndex { items: HashMap::new(), relisting: None, listed: false }
    }
}

impl<V> PodIndex<V> {
    /// Applies one change of the pods watch; `of` says what is kept of a pod (`None`: not kept).
    pub fn observe(&mut self, change: &Change<PodInfo>, of: impl Fn(&PodInfo) -> Option<V>) {
        match change {
            Change::InitStart => self.relisting = Some(HashMap::new()),
            Change::InitItem(pod) => {
                if let (Some(value), Some(relisting)) = (of(pod), self.relisting.as_mut()) {
                    relisting.insert(pod.key.clone(), value);
                }
            }
            Change::InitDone => {
                if let Some(fresh) = self.relisting.take() {
                    self.items = fresh;
                }
                self.listed = true;
            }
            Change::Applied(pod) => match of(pod) {
                Some(value) => {
                    self.items.insert(pod.key.clone(), value);
                }
                None => {
                    self.items.remove(&pod.key);
                }
            },
            Change::Deleted(pod) => {
                self.items.remove(&pod.key);
            }
        }
    }
}

impl PodPlacement {
    pub fn observe(&self, change: &Change<PodInfo>) {
        let Ok(mut p) = self.0.lock() else { return };
        p.observe(change, |pod| pod.node.clone().filter(|n| !n.is_empty()));
    }

    /// The nodes with at least one pod in scope; `None` before the first pod list.
    pub fn nodes(&self) -> Option<BTreeSet<String>> {
        let p = self.0.lock().ok()?;
        p.listed.then(|| p.items.values().cloned().collect())
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
