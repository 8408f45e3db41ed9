//! Each simulated second on the nodes: usage follows load, CPU is capped at the limit, leaks end
//! in OOMKilled, crash loops back off, probes pass or fail, nodes come under pressure and evict.

use crate::demo::scenario::FaultKind;

use super::{CState, PREFETCH, SYSTEM_RESERVED_CPU_M, SYSTEM_RESERVED_MEM, Sim, go_duration};

impl Sim {
    pub(super) fn step(&mut self) {
        self.fire_faults();
        let now = self.now;
        let mut ready_count = vec![0u32; self.scenario.services.len()];
        for p in &self.pods {
            if p.node.is_some() && p.containers.iter().all(|c| c.ready) {
                ready_count[p.svc] += 1;
            }
        }
        // A full node: what a CPU hog leaves, shared by everything else on it.
        let squeeze: Vec<f64> = (0..self.nodes.len())
            .map(|n| {
                let hog = self.node_hog_m.get(n).copied().unwrap_or(0.0);
                let other = self.node_other_m.get(n).copied().unwrap_or(0.0);
                let free = self.nodes[n].cpu_m - SYSTEM_RESERVED_CPU_M - hog;
                if hog > 0.0 && other > free { (free / other).clamp(0.05, 1.0) } else { 1.0 }
            })
            .collect();
        let mut changed = Vec::new();
        let mut events: Vec<(String, String, String, String)> = Vec::new();
        let mut saturation = vec![0.0f64; self.scenario.services.len()];
        let (mut hog_used, mut other_wanted) = (vec![0.0; self.nodes.len()], vec![0.0; self.nodes.len()]);
        // A queue's consumers try to take everything waiting plus what arrives this second.
        let published: Vec<f64> = (0..self.queues.len())
            .map(|i| self.load_rps(self.queues[i].producer) * self.scenario.queues[i].per_request)
            .collect();
        let mut queue_wanted: Vec<Option<f64>> = vec![None; self.scenario.services.len()];
        for (q, p) in self.queues.iter().zip(&published) {
            *queue_wanted[q.consumer].get_or_insert(0.0) += q.backlog + p;
        }
        let mut consumed = vec![0.0f64; self.scenario.services.len()];
        // A queue consumer consumes while its process runs, ready for Service traffic or not.
        let mut running = vec![0u32; self.scenario.services.len()];
        // Only scenarios with queues pay for the count (the 10,000-pod scale run has none).
        if !self.queues.is_empty() {
            for p in &self.pods {
                if p.node.is_some() && p.containers.iter().any(|c| c.main && matches!(c.state, CState::Running { .. }))
                {
                    running[p.svc] += 1;
                }
            }
        }
        for idx in 0..self.pods.len() {
            if self.pods[idx].node.is_none() {
                if (now - self.start) % 60 == 0 {
                    self.report_unschedulable(idx);
                }
                continue;
            }
            if self.pods[idx].evicted.is_some() {
                continue;
            }
            let svc = self.pods[idx].svc;
            let spec = self.service(svc).clone();
            let r = self.res[svc];
            let rps = match queue_wanted[svc] {
                // A consumer with a backlog runs flat out: a little past what its CPU limit
                // allows (so CFS throttles it), never the whole backlog in one second.
                Some(wanted) => {
                    let ceiling = r
                        .cpu_lim
                        .map_or(f64::MAX, |l| 1.2 * (l - spec.base_cpu_m).max(0.0) / spec.cpu_per_rps_m.max(0.01));
                    (wanted / running[svc].max(1) as f64).min(ceiling)
                }
                None => self.pod_rps(idx, ready_count[svc]),
            };
            // Leaks and crashes hit the app, or the one container a fault names (a sidecar).
            let leaks: Vec<(Option<String>, f64)> = self
                .active_faults(FaultKind::MemoryLeak, svc)
                .map(|f| (f.container.clone(), f.mib_per_min.unwrap_or(0.0)))
                .collect();
            let crashes: Vec<Option<String>> =
                self.active_faults(FaultKind::CrashLoop, svc).map(|f| f.container.clone()).collect();
            let worker_kills_per_min =
                self.fault_active(FaultKind::WorkerOomKills, svc).and_then(|f| f.factor).unwrap_or(0.0);
            // A new version with a bad image only fails its own pods.
            let image_pull = self
                .fault_active(FaultKind::ImagePull, svc)
                .is_some_and(|f| !f.rollout || self.pods[idx].created >= self.start + f.start_secs);
            let hog_m = self.fault_sum(FaultKind::CpuHog, svc, |f| f.cpu_m)
                + self.fault_sum(FaultKind::GatewaySaturation, svc, |f| f.cpu_m);
            let hog = (hog_m > 0.0).then_some(hog_m);
            // One replica (the first by name) fails its readiness probe 12 s of every 30.
            let flapping_since = self
                .fault_active(FaultKind::ReadinessFlapping, svc)
                .filter(|_| self.first_replica(svc) == Some(idx))
                .map(|f| self.start + f.start_secs);
            let node = self.pods[idx].node;
            let squeezed = if hog.is_some() { 1.0 } else { node.map_or(1.0, |n| squeeze[n]) };
            // A hog without a limit still cannot use more than the node has.
            let node_free = self.pods[idx].node.map_or(f64::MAX, |n| {
                self.nodes[n].cpu_m - SYSTEM_RESERVED_CPU_M - 0.5 * self.node_other_m.get(n).copied().unwrap_or(0.0)
            });
            let mut dirty = false;
            let pod_name = self.pods[idx].name.clone();
            let ns = self.pods[idx].namespace.clone();
            // How the kubelet names a pod in its messages: name_namespace(uid).
            let pod_ref = format!("{pod_name}_{ns}({})", self.pods[idx].uid);
            for ci in 0..self.pods[idx].containers.len() {
                let noise = 0.9 + 0.2 * self.rng.unit();
                let c = &mut self.pods[idx].containers[ci];
                let aimed = |target: &Option<String>| target.as_deref().map_or(c.main, |name| name == c.name);
                let leak: f64 = leaks.iter().filter(|(target, _)| aimed(target)).map(|(_, mib)| mib).sum();
                let crash = crashes.iter().any(aimed);
                // A sidecar's limits are a quarter of the app's (as its pod spec says).
                let mem_limit = r.mem_lim.map(|l| if c.main { l } else { l * 0.25 });
                match c.state.clone() {
                    CState::Waiting { reason, until, .. }
                        if reason.contains("ImagePull") || reason == "ErrImagePull" || image_pull =>
                    {
                        // Alternate like the kubelet: a pull attempt fails, then back-off.
                        if (now - self.start) % 20 == 0 {
                            let (next, msg) = if reason == "ErrImagePull" {
                                ("ImagePullBackOff", format!("Back-off pulling image \"{}\"", spec.image))
                            } else {
                                (
                                    "ErrImagePull",
                                    format!("failed to pull and unpack image \"{}\": not found", spec.image),
                                )
                            };
                            c.state = CState::Waiting { reason: next.into(), message: msg.clone(), until };
                            dirty = true;
                            let ev_reason = if next == "ErrImagePull" { "Failed" } else { "BackOff" };
                            events.push((ns.clone(), pod_name.clone(), ev_reason.into(), msg));
                        }
                    }
                    CState::Waiting { until, .. } => {
                        if now >= until {
                            c.state = CState::Running { since: now };
                            c.ready = false;
                            dirty = true;
                        }
                    }
                    CState::Running { since } => {
                        let demand = (spec.base_cpu_m + spec.cpu_per_rps_m * rps) * noise + hog.unwrap_or(0.0);
                        let demand = if c.main { demand } else { demand * 0.15 };
                        let limit = r.cpu_lim.map(|l| if c.main { l } else { l * 0.25 });
                        if let (true, Some(l)) = (c.main, limit) {
                            saturation[svc] = saturation[svc].max(demand / l);
                        }
                        let wanted = limit.map_or(demand, |l| demand.min(l));
                        if let Some(n) = node {
                            if hog.is_some() {
                                hog_used[n] += wanted.min(node_free);
                            } else {
                                other_wanted[n] += wanted;
                            }
                        }
                        c.cpu_m = wanted.min(node_free) * squeezed;
                        if c.main && queue_wanted[svc].is_some() {
                            consumed[svc] += (c.cpu_m - spec.base_cpu_m).max(0.0) / spec.cpu_per_rps_m.max(0.01);
                        }
                        // CFS: 10 periods of 100 ms per second; near and above the quota a growing
                        // share of periods exhaust it and the container waits for the next one.
                        c.cpu_seconds += c.cpu_m / 1000.0;
                        c.cfs_periods += 10.0;
                        if let Some(l) = limit {
                            let throttled = ((demand / l - 0.85) * 2.0).clamp(0.0, 1.0);
                            c.cfs_throttled_periods += 10.0 * throttled;
                            c.cfs_throttled_seconds += (demand - c.cpu_m).max(0.0) / 1000.0;
                        }
                        c.leak += leak * 1024.0 * 1024.0 / 60.0;
                        if c.main {
                            c.worker_kills_due += worker_kills_per_min / 60.0;
                            if c.worker_kills_due >= 1.0 {
                                c.oom_events += c.worker_kills_due as u64;
                                c.worker_kills_due = c.worker_kills_due.fract();
                            }
                        }
                        let base = if c.main { r.base_mem } else { r.base_mem * 0.3 };
                        c.mem = base * (0.97 + 0.03 * noise) + spec.memory_per_rps * rps + c.leak;
                        let ran = now - since;
                        let oom = (c.main || c.leak > 0.0) && mem_limit.is_some_and(|l| c.mem >= l);
                        let crashed = crash && ran >= 6;
                        if oom || crashed {
                            let (reason, code) = if oom { ("OOMKilled", 137) } else { ("Error", 1) };
                            c.restarts += 1;
                            c.last_term = Some((reason.into(), code, since, now));
                            c.oom_events += u64::from(oom);
                            // A new container instance: its cgroup counters start from zero.
                            c.cpu_seconds = 0.0;
                            c.cfs_periods = 0.0;
                            c.cfs_throttled_periods = 0.0;
                            c.cfs_throttled_seconds = 0.0;
                            if ran > 600 {
                                c.backoff_level = 0;
                            }
                            let backoff = (10i64 << c.backoff_level.min(5)).min(300);
                            c.backoff_level += 1;
                            c.state = CState::Waiting {
                                reason: "CrashLoopBackOff".into(),
                                message: format!(
                                    "back-off {} restarting failed container={} pod={pod_ref}",
                                    go_duration(backoff),
                                    c.name
                                ),
                                until: now + backoff,
                            };
                            c.ready = false;
                            c.leak = 0.0;
                            c.cpu_m = 0.0;
                            dirty = true;
                            events.push((
                                ns.clone(),
                                pod_name.clone(),
                                "BackOff".into(),
                                format!("Back-off restarting failed container {} in pod {pod_ref}", c.name),
                            ));
                            continue;
                        }
                        // Readiness: up after a warm-up; a CPU-starved app misses its probe deadline.
                        let starved =
                            r.cpu_lim.is_some_and(|l| c.main && demand > l * 1.4) || (c.main && squeezed < 0.7);
                        let flapping = c.main && flapping_since.is_some_and(|since| (now - since) % 30 < 12);
                        let ready = ran >= 5 && !starved && !flapping;
                        if ready != c.ready {
                            c.ready = ready;
                            dirty = true;
                            if starved {
                                events.push((
                                    ns.clone(),
                                    pod_name.clone(),
                                    "Unhealthy".into(),
                                    format!("Readiness probe failed: Get \"http://{}:8080/ready\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)", self.pods[idx].ip),
                                ));
                            } else if flapping {
                                events.push((
                                    ns.clone(),
                                    pod_name.clone(),
                                    "Unhealthy".into(),
                                    "Readiness probe failed: HTTP probe failed with statuscode: 503".into(),
                                ));
                            }
                        }
                    }
                }
            }
            // Traffic in and out of the pod's network namespace follows its share of the load.
            let pod = &mut self.pods[idx];
            if pod.containers.iter().any(|c| c.main && matches!(c.state, CState::Running { .. })) {
                pod.net_rx_bytes += rps * 1_800.0;
                pod.net_tx_bytes += rps * 12_000.0;
            }
            if dirty {
                changed.push(idx);
            }
        }
        for (ns, pod, reason, msg) in events {
            self.emit_event(&ns, "Pod", &pod, &reason, &msg, "kubelet");
        }
        for idx in changed {
            self.publish_pod(idx);
        }
        for (q, p) in self.queues.iter_mut().zip(published) {
            let taken = consumed[q.consumer].min(q.backlog + p);
            consumed[q.consumer] -= taken;
            q.backlog += p - taken;
            q.published += p;
            q.acked += taken;
            let consumers = running[q.consumer];
            // A consumer that went away hands its unacknowledged messages back.
            if consumers < q.consumers {
                q.redelivered += PREFETCH.min(q.backlog) * f64::from(q.consumers - consumers);
            }
            q.consumers = consumers;
        }
        self.saturation = saturation;
        self.node_hog_m = hog_used;
        self.node_other_m = other_wanted;
        // After this second's probes: a new pod is ready only once it has warmed up.
        if !self.retiring.is_empty() {
            self.retire_old_versions();
        }
        self.write_access_log(&ready_count);
        self.update_nodes();
    }

    pub(super) fn update_nodes(&mut self) {
        let mut usage = vec![(0.0f64, 0.0f64); self.nodes.len()];
        for p in &self.pods {
            if let Some(n) = p.node {
                for c in &p.containers {
                    if matches!(c.state, CState::Running { .. }) {
                        usage[n].0 += c.cpu_m;
                        usage[n].1 += c.mem;
                    }
                }
            }
        }
        let pressure_nodes: Vec<String> = self
            .scenario
            .faults
            .iter()
            .filter(|f| f.kind == FaultKind::NodePressure && self.now - self.start >= f.start_secs)
            .filter_map(|f| f.node.clone())
            .collect();
        let disk_faults: Vec<(String, i64)> = self
            .scenario
            .faults
            .iter()
            .filter(|f| f.kind == FaultKind::DiskPressure && self.now - self.start >= f.start_secs)
            .filter_map(|f| Some((f.node.clone()?, self.start + f.start_secs)))
            .collect();
        for (node, since) in disk_faults {
            self.evict_for_disk(&node, since);
        }
        for (i, used) in usage.iter().enumerate() {
            let n = &mut self.nodes[i];
            // The system itself uses some: kubelet, runtime, kernel.
            n.usage = (used.0 + 80.0, used.1 + 600.0 * 1024.0 * 1024.0);
            n.cpu_seconds += n.usage.0 / 1000.0;
            let pressure = pressure_nodes.contains(&n.name) || n.usage.1 > (n.mem - SYSTEM_RESERVED_MEM) * 0.95;
            if pressure != n.memory_pressure {
                n.memory_pressure = pressure;
                self.publish_node(i);
            }
        }
    }

    /// A node whose disk fills: DiskPressure (tainted, no new pods), and every 20 s its kubelet
    /// evicts the pod using the most (its largest by memory here), which goes Failed/Evicted
    /// and stays; its ReplicaSet creates a replacement elsewhere.
    pub(super) fn evict_for_disk(&mut self, node: &str, since: i64) {
        let Some(n) = self.nodes.iter().position(|x| x.name == node) else { return };
        if !self.nodes[n].disk_pressure {
            self.nodes[n].disk_pressure = true;
            self.publish_node(n);
            self.emit_event(
                "default",
                "Node",
                node,
                "EvictionThresholdMet",
                "Attempting to reclaim ephemeral-storage",
                "kubelet",
            );
        }
        if (self.now - since) % 20 != 0 {
            return;
        }
        let victim = (0..self.pods.len())
            .filter(|&i| self.pods[i].node == Some(n) && self.pods[i].evicted.is_none() && !self.pods[i].deleting)
            .filter(|&i| !self.service(self.pods[i].svc).gateway)
            .max_by(|&a, &b| {
                let used = |i: usize| self.pods[i].containers.iter().map(|c| c.mem).sum::<f64>();
                used(a).total_cmp(&used(b)).then(self.pods[b].name.cmp(&self.pods[a].name))
            });
        let Some(idx) = victim else { return };
        let used_gi = 1.5 + (self.pods[idx].containers.iter().map(|c| c.mem).sum::<f64>() / 1e9);
        let message = format!(
            "The node was low on resource: ephemeral-storage. Threshold quantity: 10%, available: 6%. Container app was using {used_gi:.1}Gi, request is 0, has larger consumption of ephemeral storage. "
        );
        let pod = &mut self.pods[idx];
        pod.evicted = Some(message.clone());
        for c in &mut pod.containers {
            c.ready = false;
            c.cpu_m = 0.0;
            c.state = CState::Waiting { reason: "Evicted".into(), message: String::new(), until: i64::MAX };
        }
        let (ns, name, svc, hash) = (pod.namespace.clone(), pod.name.clone(), pod.svc, pod.template_hash.clone());
        self.publish_pod(idx);
        self.emit_event(&ns, "Pod", &name, "Evicted", &message, "kubelet");
        let replica = if self.service(svc).kind == "StatefulSet" {
            name.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0)
        } else {
            0
        };
        self.create_pod(svc, replica, &hash, self.now);
    }
}
