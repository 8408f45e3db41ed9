//! The scenario's faults: which are active for a service now, and the ones that fire once.

use crate::demo::scenario::FaultKind;

use super::Sim;

impl Sim {
    /// The faults of `kind` on the service that have begun.
    pub(super) fn active_faults(
        &self,
        kind: FaultKind,
        svc: usize,
    ) -> impl Iterator<Item = &crate::demo::scenario::FaultSpec> {
        let name = &self.scenario.services[svc].name;
        let elapsed = self.now - self.start;
        self.scenario
            .faults
            .iter()
            .filter(move |f| f.kind == kind && f.service.as_ref() == Some(name) && elapsed >= f.start_secs)
    }

    pub(super) fn fault_active(&self, kind: FaultKind, svc: usize) -> Option<&crate::demo::scenario::FaultSpec> {
        self.active_faults(kind, svc).next()
    }

    /// Sum of `value` over the faults of `kind` active for the service.
    pub(super) fn fault_sum(
        &self,
        kind: FaultKind,
        svc: usize,
        value: impl Fn(&crate::demo::scenario::FaultSpec) -> Option<f64>,
    ) -> f64 {
        self.active_faults(kind, svc).filter_map(value).sum()
    }

    /// One-time actions of faults whose time has come: a rollout of a new version, a scale-out
    /// or a scale-in.
    pub(super) fn fire_faults(&mut self) {
        for i in 0..self.scenario.faults.len() {
            let f = self.scenario.faults[i].clone();
            if self.fired[i] || self.now - self.start < f.start_secs {
                continue;
            }
            self.fired[i] = true;
            let Some(svc) = f.service.as_ref().and_then(|n| self.scenario.services.iter().position(|s| &s.name == n))
            else {
                continue;
            };
            if f.kind == FaultKind::ScaleOut {
                let have = self.pods.iter().filter(|p| p.svc == svc).count() as u32;
                let hash = self.pods.iter().find(|p| p.svc == svc).map(|p| p.template_hash.clone()).unwrap_or_default();
                for r in 0..f.replicas.unwrap_or(1) {
                    self.create_pod(svc, have + r, &hash, self.now);
                }
            } else if f.kind == FaultKind::ScaleIn {
                // Someone scaled the Deployment down (by hand, an HPA on the wrong metric): the
                // newest pods go and are not replaced; the load stays and lands on the rest.
                let mut mine: Vec<(i64, String)> =
                    self.pods.iter().filter(|p| p.svc == svc).map(|p| (p.created, p.name.clone())).collect();
                mine.sort();
                let keep = mine.len().saturating_sub(f.replicas.unwrap_or(1) as usize).max(1);
                for (_, name) in mine.split_off(keep) {
                    self.remove_pod(&name);
                }
            } else if f.rollout {
                let hash = self.rng.suffix(9);
                if f.kind == FaultKind::ImagePull {
                    // maxSurge 1: the new version's first pod cannot start, so the rollout stalls.
                    self.create_pod(svc, 0, &hash, self.now);
                } else if let Some(surge) = f.surge {
                    // A canary, or a rollout in progress: new pods beside the old ones.
                    let have = self.pods.iter().filter(|p| p.svc == svc).count() as u32;
                    for r in 0..surge {
                        self.create_pod(svc, have + r, &hash, self.now);
                    }
                } else {
                    // Every pod replaced: the old ones go once the new ones are ready, as a
                    // Deployment's rollout keeps serving through it.
                    let old: Vec<String> = self.pods.iter().filter(|p| p.svc == svc).map(|p| p.name.clone()).collect();
                    for replica in 0..self.scenario.services[svc].replicas {
                        self.create_pod(svc, replica, &hash, self.now);
                    }
                    self.retiring.push((svc, hash, old));
                }
            }
        }
    }
}
