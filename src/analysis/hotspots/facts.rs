//! What the rules read: plain facts per container, service, call, workload, node and queue,
//! built by the app from what the sources delivered.

use crate::analysis::health::Health;
use crate::model::broker::{QueueKey, QueueStats};
use crate::model::pod::{PodKey, Resources};
use crate::model::time::UnixSecs;
use crate::model::traffic::Summary;

/// What the rules know of one container.
#[derive(Debug, Clone)]
pub struct ContainerFacts<'a> {
    pub pod: &'a PodKey,
    pub container: &'a str,
    pub init: bool,
    pub node: &'a str,
    pub health: &'a Health,
    pub restarts_1h: u32,
    pub last_reason: Option<&'a str>,
    pub resources: &'a Resources,
    /// Millicores and bytes; NaN when unknown.
    pub cpu_m: f64,
    pub mem: f64,
    /// Latest share of CFS periods throttled (0..1).
    pub throttle: Option<f64>,
    /// Working-set growth in bytes per second over the last minutes of this container instance.
    pub mem_growth: Option<f64>,
    pub created: Option<UnixSecs>,
    /// Times it went NotReady in the last ten minutes.
    pub not_ready_spells: u32,
    /// OOM kills the kernel reported in it (cAdvisor) within [`OOM_KILL_WINDOW_SECS`].
    pub oom_kills: u32,
}

/// How far back OOM kills inside a container count.
pub const OOM_KILL_WINDOW_SECS: i64 = 15 * 60;

/// What the gateway saw of one backend (a Service, as the gateway names it).
#[derive(Debug, Clone)]
pub struct ServiceFacts<'a> {
    /// `namespace/service` when it could be resolved, else the backend as written.
    pub name: String,
    pub backend: &'a str,
    /// The last minute.
    pub now: Summary,
    /// Median p95 of the retained history before the last two minutes.
    pub baseline_p95: Option<f64>,
    /// Its pods and their requests per second: the pods the gateway reached, or, when it reached
    /// none (every request failed before an upstream), the pods that look like the service's.
    pub pods: Vec<(&'a PodKey, f64)>,
    /// Per pod the gateway reached: requests and 5xx answers in the last minute.
    pub pod_errors: Vec<(&'a PodKey, u64, u64)>,
    /// Every replica has served long enough for their shares to be compared. One that joined
    /// seconds ago (a scale-out, a rollout) has its share still to come, and its siblings are not
    /// hot for carrying the load until it arrives.
    pub shares_settled: bool,
}

/// Calls from one service to another over the last minute, as the callers' mesh sidecars
/// logged them.
#[derive(Debug, Clone)]
pub struct CallFacts<'a> {
    /// `namespace/service` of the caller and of the callee.
    pub caller: String,
    pub callee: String,
    /// Requests, 5xx and p95 (the whole call: the callee's time and its own calls').
    pub now: Summary,
    /// The callee's pods the calls reached.
    pub callee_pods: Vec<&'a PodKey>,
}

/// A workload running fewer pods than it held for most of the last minutes.
#[derive(Debug, Clone)]
pub struct CapacityFacts<'a> {
    pub namespace: String,
    /// `deploy/catalog`, as pods name their workload.
    pub workload: String,
    pub from: u32,
    pub to: u32,
    /// When the count fell.
    pub at: UnixSecs,
    /// Its service's requests per second before the fall and over the last minute, where the
    /// gateway serves it.
    pub load_before: Option<f64>,
    pub load_now: Option<f64>,
    /// Its pods now.
    pub pods: Vec<&'a PodKey>,
}

#[derive(Debug, Clone)]
pub struct NodeFacts<'a> {
    pub name: &'a str,
    pub ready: &'a str,
    pub pressures: &'a [String],
    pub cpu_used_m: Option<f64>,
    pub cpu_allocatable_m: f64,
}

#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub now: UnixSecs,
    pub containers: Vec<ContainerFacts<'a>>,
    pub services: Vec<ServiceFacts<'a>>,
    pub nodes: Vec<NodeFacts<'a>>,
    /// Everything the gateway served in the last minute, and its own pods.
    pub gateway: Option<(Summary, Vec<&'a PodKey>)>,
    pub queues: Vec<QueueFacts<'a>>,
    /// Calls between services, where a mesh's sidecars log them.
    pub calls: Vec<CallFacts<'a>>,
    /// Workloads whose pod count fell.
    pub capacity: Vec<CapacityFacts<'a>>,
}

/// What the rules know of one queue or consumer group.
#[derive(Debug, Clone)]
pub struct QueueFacts<'a> {
    pub key: &'a QueueKey,
    pub stats: &'a QueueStats,
    /// The pods that consume it, as `namespace/pod` (empty when unknown).
    pub consumers: Vec<String>,
}
