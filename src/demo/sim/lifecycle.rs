//! The control plane's part: pods created for a ReplicaSet, scheduled on a node that fits or
//! reported unschedulable, rolled out and retired, deleted; Services added.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec as K8sServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::demo::scenario::FaultKind;
use crate::demo::store::Selectable;

use super::{
    CState, GATEWAY_CONTAINER, SYSTEM_RESERVED_CPU_M, SYSTEM_RESERVED_MEM, Sim, SimContainer, SimPod, ts,
    unschedulable_message,
};

impl Sim {
    /// Removes a pod for good (its controller does not replace it): a rollout's old version.
    pub(super) fn remove_pod(&mut self, name: &str) {
        let Some(idx) = self.pods.iter().position(|p| p.name == name) else { return };
        let pod = self.pods.remove(idx);
        let rv = self.next_rv();
        let mut obj = self.pod_object(&pod, rv);
        obj.metadata.deletion_timestamp = Some(ts(self.now));
        let json = serde_json::to_vec(&obj).unwrap_or_default();
        self.pods_api.delete(rv, &pod.namespace, &pod.name, json);
    }

    pub(super) fn create_pod(&mut self, svc: usize, replica: u32, hash: &str, created: i64) {
        let spec = self.service(svc).clone();
        let name = if spec.kind == "StatefulSet" {
            format!("{}-{replica}", spec.name)
        } else {
            format!("{}-{hash}-{}", spec.name, self.rng.suffix(5))
        };
        let r = self.res[svc];
        let node = self.schedule(r.cpu_req, r.mem_req);
        // A faulty rollout: the crash-looping version started when the scenario did.
        let started = if self.fault_active(FaultKind::CrashLoop, svc).is_some() { self.now } else { created + 5 };
        self.pod_seq += 1;
        let seq = self.pod_seq;
        let mut containers = vec![SimContainer {
            name: if spec.gateway { GATEWAY_CONTAINER.into() } else { "app".into() },
            main: true,
            restarts: 0,
            state: CState::Running { since: started },
            last_term: None,
            ready: true,
            cpu_m: 0.0,
            mem: r.base_mem,
            leak: 0.0,
            backoff_level: 0,
            cpu_seconds: 0.0,
            cfs_periods: 0.0,
            cfs_throttled_periods: 0.0,
            cfs_throttled_seconds: 0.0,
            oom_events: 0,
            worker_kills_due: 0.0,
        }];
        for side in &spec.sidecars {
            let mut c = containers[0].clone();
            c.name = side.clone();
            c.main = false;
            containers.push(c);
        }
        let image_pull = self.fault_active(FaultKind::ImagePull, svc).is_some();
        if node.is_none() || image_pull {
            for c in &mut containers {
                c.ready = false;
                c.state = CState::Waiting {
                    reason: if image_pull { "ErrImagePull".into() } else { String::new() },
                    message: String::new(),
                    until: i64::MAX,
                };
            }
        }
        let pod = SimPod {
            svc,
            name,
            namespace: spec.namespace.clone(),
            uid: format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                self.rng.next_u64() as u32,
                seq & 0xffff,
                seq % 4096,
                (seq * 7) % 4096,
                self.rng.next_u64() & 0xffff_ffff_ffff
            ),
            node,
            created,
            ip: format!("10.244.{}.{}", node.unwrap_or(0) % 250, 2 + (seq % 250)),
            template_hash: hash.to_string(),
            containers,
            deleting: false,
            evicted: None,
            net_rx_bytes: 0.0,
            net_tx_bytes: 0.0,
        };
        self.pods.push(pod);
        let idx = self.pods.len() - 1;
        self.publish_pod(idx);
        if node.is_none() {
            self.report_unschedulable(idx);
        }
    }

    /// Least-allocated node that fits the requests, as the default scheduler scores it.
    pub(super) fn schedule(&self, cpu_req: f64, mem_req: f64) -> Option<usize> {
        let mut used: Vec<(f64, f64, u32)> = vec![(0.0, 0.0, 0); self.nodes.len()];
        for p in self.pods.iter().filter(|p| !p.deleting && p.evicted.is_none()) {
            if let Some(n) = p.node {
                let r = self.res[p.svc];
                used[n].0 += r.cpu_req;
                used[n].1 += r.mem_req;
                used[n].2 += 1;
            }
        }
        (0..self.nodes.len())
            .filter(|&i| {
                let n = &self.nodes[i];
                // The node.kubernetes.io/disk-pressure:NoSchedule taint.
                !n.disk_pressure
                    && used[i].0 + cpu_req <= n.cpu_m - SYSTEM_RESERVED_CPU_M
                    && used[i].1 + mem_req <= n.mem - SYSTEM_RESERVED_MEM
                    && used[i].2 < n.max_pods
            })
            .min_by(|&a, &b| {
                let free = |i: usize| (self.nodes[i].cpu_m - used[i].0) / self.nodes[i].cpu_m;
                free(b).total_cmp(&free(a)).then(a.cmp(&b))
            })
    }

    pub(super) fn report_unschedulable(&mut self, idx: usize) {
        let msg = unschedulable_message(self.nodes.len());
        let (ns, name) = (self.pods[idx].namespace.clone(), self.pods[idx].name.clone());
        self.emit_event(&ns, "Pod", &name, "FailedScheduling", &msg, "default-scheduler");
    }

    /// Old pods of a rollout go once every pod of the new version is ready.
    pub(super) fn retire_old_versions(&mut self) {
        let mut done = Vec::new();
        for (i, (svc, hash, _)) in self.retiring.iter().enumerate() {
            let mut new = self.pods.iter().filter(|p| p.svc == *svc && &p.template_hash == hash).peekable();
            if new.peek().is_some() && new.all(|p| p.containers.iter().all(|c| c.ready)) {
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            let (_, _, old) = self.retiring.remove(i);
            for name in old {
                self.remove_pod(&name);
            }
        }
    }

    /// Deletes a pod as `kubectl delete pod` would; its ReplicaSet replaces it at once.
    pub fn delete_pod(&mut self, namespace: &str, name: &str) -> bool {
        let Some(pod) = self.find_pod(namespace, name).cloned() else {
            return false;
        };
        self.remove_pod(name);
        let replica = if self.service(pod.svc).kind == "StatefulSet" {
            pod.name.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0)
        } else {
            0
        };
        self.create_pod(pod.svc, replica, &pod.template_hash, self.now);
        true
    }

    /// A ClusterIP Service selecting `app=NAME`, with one port. Public so a test can stand up
    /// what an installation has beside the workloads (a `prometheus-operated`).
    pub fn add_service(&mut self, namespace: &str, name: &str, port_name: &str, port: i32, created: i64) {
        let rv = self.next_rv();
        let labels: BTreeMap<String, String> = [("app".to_string(), name.to_string())].into();
        let n = self.services_api.objects.len() as u64;
        let obj = Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                uid: Some(format!("svc-{namespace}-{name}")),
                resource_version: Some(rv.to_string()),
                creation_timestamp: Some(ts(created)),
                labels: Some(labels.clone()),
                ..Default::default()
            },
            spec: Some(K8sServiceSpec {
                type_: Some("ClusterIP".into()),
                cluster_ip: Some(format!("10.96.{}.{}", n / 250, n % 250 + 2)),
                selector: Some(labels.clone()),
                ports: Some(vec![ServicePort {
                    name: Some(port_name.into()),
                    port,
                    protocol: Some("TCP".into()),
                    target_port: Some(IntOrString::Int(8080)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let select = Selectable {
            labels,
            fields: vec![("metadata.name", name.to_string()), ("metadata.namespace", namespace.to_string())],
        };
        let json = serde_json::to_vec(&obj).unwrap_or_default();
        self.services_api.upsert(rv, namespace, name, json, select);
    }
}
