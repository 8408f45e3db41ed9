//! Pods and containers, trimmed to what kpulse reads. Converting from the k8s-openapi types is the
//! trim: nothing else of the API object (managedFields, annotations, env, volumes…) is kept.

use k8s_openapi::api::core::v1::{Container, ContainerState, ContainerStatus, Pod};

use super::quantity::{parse_bytes, parse_cpu_millis};
use super::time::{UnixSecs, to_unix};

/// `namespace/name`, the identity of a pod across updates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodInfo {
    pub key: PodKey,
    pub uid: String,
    pub node: Option<String>,
    /// `deploy/cart`, `sts/db`, `ds/fluent-bit`, `job/x`, or the bare owner kind/name.
    pub workload: Option<String>,
    pub phase: String,
    pub created: Option<UnixSecs>,
    pub deleting: bool,
    pub pod_ip: Option<String>,
    /// PodScheduled=False: the scheduler's reason (e.g. `Unschedulable`) and message.
    pub unschedulable: Option<String>,
    pub reason: Option<String>,
    /// The status' message (an eviction's: which resource ran low).
    pub message: Option<String>,
    pub labels: Vec<(String, String)>,
    pub containers: Vec<ContainerInfo>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resources {
    pub cpu_request_m: Option<f64>,
    pub cpu_limit_m: Option<f64>,
    pub mem_request: Option<f64>,
    pub mem_limit: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StateInfo {
    Running {
        started: Option<UnixSecs>,
    },
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Terminated {
        reason: String,
        exit_code: i32,
        finished: Option<UnixSecs>,
    },
    /// No status reported yet (pod not scheduled or kubelet has not started it).
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    pub name: String,
    pub init: bool,
    pub image: String,
    pub resources: Resources,
    pub ready: bool,
    pub restarts: u32,
    pub state: StateInfo,
    /// The previous termination (reason, exit code, finish time), as `lastState.terminated`.
    pub last_termination: Option<(String, i32, Option<UnixSecs>)>,
}

impl PodInfo {
    pub fn from_pod(pod: &Pod) -> PodInfo {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let key = PodKey::new(meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default());
        let labels: Vec<(String, String)> = meta.labels.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
        let workload = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|owner| workload_name(&owner.kind, &owner.name, &labels));
        let unschedulable = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|conds| conds.iter().find(|c| c.type_ == "PodScheduled" && c.status == "False"))
            .map(|c| c.message.clone().or_else(|| c.reason.clone()).unwrap_or_default());

        let statuses = |init: bool| {
            status.and_then(|s| if init { s.init_container_statuses.as_ref() } else { s.container_statuses.as_ref() })
        };
        let mut containers = Vec::new();
        if let Some(spec) = spec {
            for (init, list) in [(true, spec.init_containers.as_ref()), (false, Some(&spec.containers))] {
                for c in list.into_iter().flatten() {
                    let st = statuses(init).and_then(|all| all.iter().find(|s| s.name == c.name));
                    containers.push(ContainerInfo::from_parts(c, st, init));
                }
            }
        }
        PodInfo {
            uid: meta.uid.clone().unwrap_or_default(),
            node: spec.and_then(|s| s.node_name.clone()),
            workload,
            phase: status.and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into()),
            created: meta.creation_timestamp.as_ref().map(|t| to_unix(t.0)),
            deleting: meta.deletion_timestamp.is_some(),
            pod_ip: status.and_then(|s| s.pod_ip.clone()),
            unschedulable,
            reason: status.and_then(|s| s.reason.clone()),
            message: status.and_then(|s| s.message.clone()),
            key,
            labels,
            containers,
        }
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A ReplicaSet named `cart-7d9f8c6b5` whose pods carry `pod-template-hash=7d9f8c6b5` belongs to
/// Deployment `cart`: derived without watching ReplicaSets.
fn workload_name(kind: &str, name: &str, labels: &[(String, String)]) -> String {
    let hash = labels.iter().find(|(k, _)| k == "pod-template-hash").map(|(_, v)| v.as_str());
    match (kind, hash) {
        ("ReplicaSet", Some(hash)) if name.ends_with(&format!("-{hash}")) => {
            format!("deploy/{}", &name[..name.len() - hash.len() - 1])
        }
        ("ReplicaSet", _) => format!("rs/{name}"),
        ("StatefulSet", _) => format!("sts/{name}"),
        ("DaemonSet", _) => format!("ds/{name}"),
        ("Job", _) => format!("job/{name}"),
        (other, _) => format!("{}/{name}", other.to_lowercase()),
    }
}

impl ContainerInfo {
    /// When this instance started running (None unless it is running and the kubelet said).
    pub fn started(&self) -> Option<UnixSecs> {
        match self.state {
            StateInfo::Running { started } => started,
            _ => None,
        }
    }

    fn from_parts(spec: &Container, status: Option<&ContainerStatus>, init: bool) -> ContainerInfo {
        let quantity = |which: &str, kind: &str| -> Option<f64> {
            let res = spec.resources.as_ref()?;
            let map = if which == "requests" { res.requests.as_ref()? } else { res.limits.as_ref()? };
            let q = map.get(kind)?;
            // A malformed quantity in a spec is the cluster's problem; show it as unset.
            if kind == "cpu" { parse_cpu_millis(&q.0).ok() } else { parse_bytes(&q.0).ok() }
        };
        let resources = Resources {
            cpu_request_m: quantity("requests", "cpu"),
            cpu_limit_m: quantity("limits", "cpu"),
            mem_request: quantity("requests", "memory"),
            mem_limit: quantity("limits", "memory"),
        };
        let last_termination =
            status.and_then(|s| s.last_state.as_ref()).and_then(|ls| ls.terminated.as_ref()).map(|t| {
                (
                    t.reason.clone().unwrap_or_else(|| "Error".into()),
                    t.exit_code,
                    t.finished_at.as_ref().map(|f| to_unix(f.0)),
                )
            });
        ContainerInfo {
            name: spec.name.clone(),
            init,
            image: spec.image.clone().unwrap_or_default(),
            resources,
            ready: status.is_some_and(|s| s.ready),
            restarts: status.map_or(0, |s| s.restart_count.max(0) as u32),
            state: status.and_then(|s| s.state.as_ref()).map_or(StateInfo::Unknown, state_info),
            last_termination,
        }
    }
}

fn state_info(state: &ContainerState) -> StateInfo {
    if let Some(w) = &state.waiting {
        StateInfo::Waiting { reason: w.reason.clone().unwrap_or_else(|| "Waiting".into()), message: w.message.clone() }
    } else if let Some(t) = &state.terminated {
        StateInfo::Terminated {
            reason: t.reason.clone().unwrap_or_else(|| "Error".into()),
            exit_code: t.exit_code,
            finished: t.finished_at.as_ref().map(|f| to_unix(f.0)),
        }
    } else if let Some(r) = &state.running {
        StateInfo::Running { started: r.started_at.as_ref().map(|s| to_unix(s.0)) }
    } else {
        StateInfo::Unknown
    }
}
