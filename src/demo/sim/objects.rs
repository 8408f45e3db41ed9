//! Pods, Nodes and Events as the API server serves them (k8s-openapi types, so the real wire
//! format), published to the watch store.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    Event, EventSource, HTTPGetAction, Node, NodeCondition, NodeSpec as K8sNodeSpec, NodeStatus, ObjectReference, Pod,
    PodCondition, PodIP, PodSpec, PodStatus, Probe, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::demo::scenario::MESH_LABEL;
use crate::demo::store::Selectable;

use super::{
    CState, SCHEDULER_HOST, SYSTEM_RESERVED_CPU_M, SYSTEM_RESERVED_MEM, Sim, SimPod, sandbox_id, ts,
    unschedulable_message,
};

impl Sim {
    pub(super) fn publish_pod(&mut self, idx: usize) {
        let rv = self.next_rv();
        let pod = &self.pods[idx];
        let obj = self.pod_object(pod, rv);
        let mut select = Selectable {
            labels: obj.metadata.labels.clone().unwrap_or_default(),
            fields: vec![
                ("metadata.name", pod.name.clone()),
                ("metadata.namespace", pod.namespace.clone()),
                ("spec.nodeName", pod.node.map(|n| self.nodes[n].name.clone()).unwrap_or_default()),
                ("status.phase", obj.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default()),
            ],
        };
        select.fields.push(("spec.restartPolicy", "Always".into()));
        let json = serde_json::to_vec(&obj).unwrap_or_default();
        let (ns, name) = (pod.namespace.clone(), pod.name.clone());
        self.pods_api.upsert(rv, &ns, &name, json, select);
    }

    pub(super) fn publish_node(&mut self, idx: usize) {
        let rv = self.next_rv();
        let obj = self.node_object(idx, rv);
        let n = &self.nodes[idx];
        let select = Selectable {
            labels: obj.metadata.labels.clone().unwrap_or_default(),
            fields: vec![("metadata.name", n.name.clone()), ("spec.unschedulable", "false".into())],
        };
        let json = serde_json::to_vec(&obj).unwrap_or_default();
        let name = n.name.clone();
        self.nodes_api.upsert(rv, "", &name, json, select);
    }

    pub(super) fn emit_event(
        &mut self,
        ns: &str,
        kind: &str,
        involved: &str,
        reason: &str,
        message: &str,
        component: &str,
    ) {
        let key = (ns.to_string(), involved.to_string(), reason.to_string());
        let rv = self.next_rv();
        let now = self.now;
        let entry = self.event_names.entry(key).or_insert_with(|| (format!("{involved}.{:x}", rv * 7919), 0, now));
        entry.1 += 1;
        let (name, count, first) = entry.clone();
        // As a real cluster records them: the kubelet's events name their source and host; the
        // scheduler's go through events.k8s.io, whose core/v1 view has only the reporting fields.
        let (source, instance) = if component == "kubelet" {
            let host = self.pod_node_name(ns, involved);
            (EventSource { component: Some(component.into()), host: host.clone() }, host.unwrap_or_default())
        } else {
            (EventSource::default(), format!("{component}-{SCHEDULER_HOST}"))
        };
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.to_string()),
                resource_version: Some(rv.to_string()),
                creation_timestamp: Some(ts(first)),
                uid: Some(format!("ev-{rv:x}")),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some(kind.into()),
                name: Some(involved.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Warning".into()),
            count: Some(count as i32),
            first_timestamp: Some(ts(first)),
            last_timestamp: Some(ts(now)),
            source: Some(source.clone()),
            reporting_component: Some(component.into()),
            reporting_instance: Some(instance),
            ..Default::default()
        };
        let select = Selectable {
            labels: BTreeMap::new(),
            fields: vec![
                ("metadata.name", name.clone()),
                ("metadata.namespace", ns.to_string()),
                ("type", "Warning".into()),
                ("reason", reason.into()),
                ("involvedObject.kind", kind.into()),
                ("involvedObject.name", involved.into()),
                ("involvedObject.namespace", ns.into()),
                ("source", source.component.clone().unwrap_or_default()),
            ],
        };
        let json = serde_json::to_vec(&ev).unwrap_or_default();
        self.events_api.upsert(rv, ns, &name, json, select);
    }

    pub(super) fn pod_object(&self, pod: &SimPod, rv: u64) -> Pod {
        let spec = self.service(pod.svc);
        let r = self.res[pod.svc];
        let node_name = pod.node.map(|n| self.nodes[n].name.clone());
        let mut labels = BTreeMap::new();
        labels.insert("app.kubernetes.io/name".to_string(), spec.name.clone());
        labels.insert("app".to_string(), spec.name.clone());
        if self.in_mesh(pod.svc) {
            labels.insert(MESH_LABEL.0.to_string(), MESH_LABEL.1.to_string());
        }
        if spec.gateway {
            // The labels of the ingress-nginx chart's controller pods, which gateway detection keys on.
            labels.insert("app.kubernetes.io/name".to_string(), "ingress-nginx".into());
            labels.insert("app.kubernetes.io/component".to_string(), "controller".into());
        }
        let owner = if spec.kind == "StatefulSet" {
            labels.insert("statefulset.kubernetes.io/pod-name".into(), pod.name.clone());
            OwnerReference {
                api_version: "apps/v1".into(),
                kind: "StatefulSet".into(),
                name: spec.name.clone(),
                uid: format!("sts-{}", spec.name),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }
        } else {
            labels.insert("pod-template-hash".into(), pod.template_hash.clone());
            OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: format!("{}-{}", spec.name, pod.template_hash),
                uid: format!("rs-{}", spec.name),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }
        };
        let quantity_map = |cpu: Option<f64>, mem: Option<f64>, scale: f64| {
            let mut m = BTreeMap::new();
            if let Some(c) = cpu.filter(|c| *c > 0.0) {
                m.insert("cpu".to_string(), Quantity(format!("{}m", (c * scale).round() as i64)));
            }
            if let Some(b) = mem.filter(|b| *b > 0.0) {
                m.insert("memory".to_string(), Quantity(format!("{}Mi", ((b * scale) / 1048576.0).round() as i64)));
            }
            (!m.is_empty()).then_some(m)
        };
        let containers: Vec<Container> = pod
            .containers
            .iter()
            .map(|c| {
                let scale = if c.main { 1.0 } else { 0.25 };
                Container {
                    name: c.name.clone(),
                    image: Some(if c.main {
                        spec.image.clone()
                    } else {
                        format!("docker.io/istio/proxyv2:1.28.0#{}", c.name)
                    }),
                    resources: Some(ResourceRequirements {
                        requests: quantity_map(Some(r.cpu_req), Some(r.mem_req), scale),
                        limits: quantity_map(r.cpu_lim, r.mem_lim, scale),
                        ..Default::default()
                    }),
                    readiness_probe: c.main.then(|| Probe {
                        http_get: Some(HTTPGetAction {
                            path: Some("/ready".into()),
                            port: IntOrString::Int(8080),
                            ..Default::default()
                        }),
                        period_seconds: Some(5),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            })
            .collect();
        let scheduled = node_name.is_some();
        let statuses: Option<Vec<ContainerStatus>> = scheduled.then(|| {
            pod.containers
                .iter()
                .map(|c| {
                    let state = match &c.state {
                        // Killed by the eviction: what its last instance ended with.
                        _ if pod.evicted.is_some() => ContainerState {
                            terminated: Some(ContainerStateTerminated {
                                reason: Some("Error".into()),
                                exit_code: 137,
                                finished_at: Some(ts(self.now)),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        CState::Running { since } => ContainerState {
                            running: Some(ContainerStateRunning { started_at: Some(ts(*since)) }),
                            ..Default::default()
                        },
                        CState::Waiting { reason, message, .. } => ContainerState {
                            waiting: Some(ContainerStateWaiting {
                                reason: Some(if reason.is_empty() {
                                    "ContainerCreating".into()
                                } else {
                                    reason.clone()
                                }),
                                message: (!message.is_empty()).then(|| message.clone()),
                            }),
                            ..Default::default()
                        },
                    };
                    let last_state = c.last_term.as_ref().map(|(reason, code, started, finished)| ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            reason: Some(reason.clone()),
                            exit_code: *code,
                            started_at: Some(ts(*started)),
                            finished_at: Some(ts(*finished)),
                            container_id: Some(format!(
                                "containerd://{:064x}",
                                (*finished as u64).wrapping_mul(0x9E37)
                            )),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                    // The instance running now, or the last one while the next waits; none
                    // before the first start.
                    let started_once = matches!(c.state, CState::Running { .. }) || c.last_term.is_some();
                    let container_id = started_once.then(|| {
                        format!("containerd://{}{:08x}", &sandbox_id(&pod.uid)[..56], c.restarts ^ c.name.len() as u32)
                    });
                    ContainerStatus {
                        name: c.name.clone(),
                        container_id,
                        ready: c.ready,
                        restart_count: c.restarts as i32,
                        started: Some(matches!(c.state, CState::Running { .. })),
                        image: spec.image.clone(),
                        image_id: format!("{}@sha256:{:064x}", spec.image, pod.svc as u64 * 0x1F3D5B79),
                        state: Some(state),
                        last_state,
                        ..Default::default()
                    }
                })
                .collect()
        });
        let all_ready = scheduled && pod.containers.iter().all(|c| c.ready);
        let cond = |t: &str, ok: bool| PodCondition {
            type_: t.into(),
            status: if ok { "True".into() } else { "False".into() },
            last_transition_time: Some(ts(pod.created)),
            ..Default::default()
        };
        let conditions = if pod.evicted.is_some() {
            vec![
                PodCondition {
                    type_: "DisruptionTarget".into(),
                    status: "True".into(),
                    reason: Some("TerminationByKubelet".into()),
                    message: Some("Pod was evicted by the kubelet".into()),
                    last_transition_time: Some(ts(self.now)),
                    ..Default::default()
                },
                cond("Ready", false),
                cond("ContainersReady", false),
                cond("PodScheduled", true),
            ]
        } else if scheduled {
            vec![
                cond("PodReadyToStartContainers", true),
                cond("Initialized", true),
                cond("Ready", all_ready),
                cond("ContainersReady", all_ready),
                cond("PodScheduled", true),
            ]
        } else {
            vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("Unschedulable".into()),
                message: Some(unschedulable_message(self.nodes.len())),
                last_transition_time: Some(ts(pod.created)),
                ..Default::default()
            }]
        };
        let phase = if pod.evicted.is_some() {
            "Failed"
        } else if scheduled
            && pod.containers.iter().any(|c| matches!(c.state, CState::Running { .. }) || c.restarts > 0)
        {
            "Running"
        } else {
            "Pending"
        };
        Pod {
            metadata: ObjectMeta {
                name: Some(pod.name.clone()),
                generate_name: (spec.kind != "StatefulSet").then(|| format!("{}-{}-", spec.name, pod.template_hash)),
                namespace: Some(pod.namespace.clone()),
                uid: Some(pod.uid.clone()),
                resource_version: Some(rv.to_string()),
                creation_timestamp: Some(ts(pod.created)),
                labels: Some(labels),
                owner_references: Some(vec![owner]),
                // Real objects carry these; kpulse must trim them before storing.
                managed_fields: Some(vec![ManagedFieldsEntry {
                    manager: Some("kubelet".into()),
                    operation: Some("Update".into()),
                    api_version: Some("v1".into()),
                    subresource: Some("status".into()),
                    time: Some(ts(pod.created)),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers,
                node_name,
                restart_policy: Some("Always".into()),
                service_account_name: Some("default".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                reason: pod.evicted.is_some().then(|| "Evicted".into()),
                message: pod.evicted.clone(),
                conditions: Some(conditions),
                container_statuses: statuses,
                host_ip: pod.node.map(|n| format!("172.18.0.{}", n + 2)),
                pod_ip: scheduled.then(|| pod.ip.clone()),
                pod_ips: scheduled.then(|| vec![PodIP { ip: pod.ip.clone() }]),
                qos_class: Some("Burstable".into()),
                start_time: scheduled.then(|| ts(pod.created)),
                ..Default::default()
            }),
        }
    }

    pub(super) fn node_object(&self, idx: usize, rv: u64) -> Node {
        let n = &self.nodes[idx];
        let mut labels = BTreeMap::new();
        labels.insert("kubernetes.io/hostname".to_string(), n.name.clone());
        labels.insert("kubernetes.io/os".to_string(), "linux".to_string());
        let res = |cpu: f64, mem: f64, pods: u32| {
            let mut m = BTreeMap::new();
            m.insert("cpu".to_string(), Quantity(format!("{}m", cpu as i64)));
            m.insert("memory".to_string(), Quantity(format!("{}Ki", (mem / 1024.0) as i64)));
            m.insert("pods".to_string(), Quantity(pods.to_string()));
            m.insert("ephemeral-storage".to_string(), Quantity("100Gi".into()));
            m
        };
        let cond = |t: &str, status: bool, reason: &str| NodeCondition {
            type_: t.into(),
            status: if status { "True".into() } else { "False".into() },
            reason: Some(reason.into()),
            last_heartbeat_time: Some(ts(self.now)),
            last_transition_time: Some(ts(n.created)),
            ..Default::default()
        };
        Node {
            metadata: ObjectMeta {
                name: Some(n.name.clone()),
                uid: Some(format!("node-{idx}")),
                resource_version: Some(rv.to_string()),
                creation_timestamp: Some(ts(n.created)),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(K8sNodeSpec { pod_cidr: Some(format!("10.244.{}.0/24", idx % 250)), ..Default::default() }),
            status: Some(NodeStatus {
                capacity: Some(res(n.cpu_m, n.mem, n.max_pods)),
                allocatable: Some(res(n.cpu_m - SYSTEM_RESERVED_CPU_M, n.mem - SYSTEM_RESERVED_MEM, n.max_pods)),
                conditions: Some(vec![
                    cond(
                        "MemoryPressure",
                        n.memory_pressure,
                        if n.memory_pressure { "KubeletHasInsufficientMemory" } else { "KubeletHasSufficientMemory" },
                    ),
                    cond(
                        "DiskPressure",
                        n.disk_pressure,
                        if n.disk_pressure { "KubeletHasDiskPressure" } else { "KubeletHasNoDiskPressure" },
                    ),
                    cond("PIDPressure", false, "KubeletHasSufficientPID"),
                    cond("Ready", true, "KubeletReady"),
                ]),
                ..Default::default()
            }),
        }
    }
}
