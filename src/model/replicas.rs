//! How many pods each workload has had over the last minutes, so a drop in capacity (a manual
//! scale-in, an HPA, a rollout that ended short) is seen when it happens — kpulse watches pods,
//! not Deployments, and a drop leaves no trace in the pods that remain.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::model::time::UnixSecs;

/// A workload's changes of pod count, oldest first: (when, how many from then on).
#[derive(Debug, Clone, Default, PartialEq)]
struct Counts(VecDeque<(UnixSecs, u32)>);

/// Per workload (`namespace/deploy/name`), its pod counts over the retained window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicaHistory {
    workloads: BTreeMap<String, Counts>,
}

/// A workload that runs fewer pods than it did for most of the window.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaDrop {
    /// `namespace/deploy/name`.
    pub workload: String,
    pub from: u32,
    pub to: u32,
    /// When the count last fell.
    pub at: UnixSecs,
}

impl ReplicaHistory {
    /// Records the pod count of every workload now; a workload missing from `counts` has none.
    /// History older than `window` goes, except the count it started from.
    pub fn observe(&mut self, now: UnixSecs, counts: &HashMap<String, u32>, window: i64) {
        for (workload, &count) in counts {
            let c = self.workloads.entry(workload.clone()).or_default();
            if c.0.back().is_none_or(|(_, last)| *last != count) {
                c.0.push_back((now, count));
            }
        }
        for (workload, c) in self.workloads.iter_mut() {
            if !counts.contains_key(workload) && c.0.back().is_some_and(|(_, last)| *last != 0) {
                c.0.push_back((now, 0));
            }
            // Keep the last change before the window: the count the window starts with.
            while c.0.len() > 1 && c.0[1].0 <= now - window {
                c.0.pop_front();
            }
        }
        // A workload gone (no pods) for the whole window is forgotten.
        self.workloads
            .retain(|_, c| !(c.0.len() == 1 && c.0.front().is_some_and(|&(at, n)| n == 0 && at <= now - window)));
    }

    /// Workloads below the count they held longest in the window before their last fall: a
    /// rollout's brief surge (N+1 for a minute, then N) is no drop, a scale from 4 to 2 is.
    pub fn drops(&self, now: UnixSecs, window: i64) -> Vec<ReplicaDrop> {
        let mut out = Vec::new();
        for (workload, c) in &self.workloads {
            let Some(&(_, current)) = c.0.back() else { continue };
            let Some(fell) = c.0.iter().zip(c.0.iter().skip(1)).rev().find(|(a, b)| b.1 < a.1).map(|(_, b)| b.0) else {
                continue;
            };
            if fell < now - window {
                continue;
            }
            // How long each count held between the window's start and the fall.
            let start = now - window;
            let mut held: BTreeMap<u32, i64> = BTreeMap::new();
            for (i, &(at, count)) in c.0.iter().enumerate() {
                let until = c.0.get(i + 1).map_or(now, |next| next.0).min(fell);
                let from = at.max(start);
                if until > from {
                    *held.entry(count).or_default() += until - from;
                }
            }
            let Some((&baseline, _)) = held.iter().max_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0))) else { continue };
            if baseline > current {
                out.push(ReplicaDrop { workload: workload.clone(), from: baseline, to: current, at: fell });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: i64 = 900;

    fn observe(h: &mut ReplicaHistory, at: UnixSecs, counts: &[(&str, u32)]) {
        let counts: HashMap<String, u32> = counts.iter().map(|(w, n)| (w.to_string(), *n)).collect();
        h.observe(at, &counts, WINDOW);
    }

    #[test]
    fn a_scale_in_is_a_drop_and_a_rollout_surge_is_not() {
        let mut h = ReplicaHistory::default();
        observe(&mut h, 0, &[("shop/deploy/catalog", 4), ("shop/deploy/cart", 2)]);
        // cart rolls out: one surge pod for a minute, then back to two.
        observe(&mut h, 300, &[("shop/deploy/catalog", 4), ("shop/deploy/cart", 3)]);
        observe(&mut h, 360, &[("shop/deploy/catalog", 4), ("shop/deploy/cart", 2)]);
        // catalog is scaled from 4 to 2.
        observe(&mut h, 400, &[("shop/deploy/catalog", 2), ("shop/deploy/cart", 2)]);
        let drops = h.drops(460, WINDOW);
        assert_eq!(
            drops,
            vec![ReplicaDrop { workload: "shop/deploy/catalog".into(), from: 4, to: 2, at: 400 }],
            "{h:?}"
        );
        // A quarter of an hour later the new size is the size: no drop any more.
        observe(&mut h, 1400, &[("shop/deploy/catalog", 2), ("shop/deploy/cart", 2)]);
        assert_eq!(h.drops(1400, WINDOW), vec![]);
    }

    #[test]
    fn a_workload_whose_pods_all_went_dropped_to_zero_and_is_forgotten_later() {
        let mut h = ReplicaHistory::default();
        observe(&mut h, 0, &[("shop/deploy/search", 3)]);
        observe(&mut h, 100, &[]);
        assert_eq!(h.drops(120, WINDOW)[0].to, 0);
        observe(&mut h, 2000, &[]);
        assert!(h.workloads.is_empty(), "{h:?}");
    }
}
