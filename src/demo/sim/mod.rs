//! The simulated cluster: pods scheduled on nodes, load that moves over time, usage that follows
//! load, CPU capped at the limit, leaks that end in OOMKilled, crash loops with the kubelet's
//! back-off, image pulls that fail and pods that fit no node. Objects are k8s-openapi types, so
//! what the server sends is the real wire format.
//!
//! Here: the cluster's state and the clock (`new`, `advance`). Beside it: lifecycle.rs (the
//! control plane: create, schedule, roll out, delete), kubelet.rs (each second on the nodes),
//! faults.rs, traffic.rs (requests and access logs), objects.rs (the wire format), metrics.rs
//! (the exposition endpoints).

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::scenario::{Scenario, ServiceSpec};
use super::store::Collection;
use crate::model::quantity::{parse_bytes, parse_cpu_millis};

mod faults;
mod kubelet;
mod lifecycle;
mod metrics;
mod objects;
#[cfg(test)]
mod tests;
mod traffic;

/// splitmix64: tiny, seedable, good enough for noise and names.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len).map(|_| ALPHABET[(self.next_u64() % ALPHABET.len() as u64) as usize] as char).collect()
    }
}

fn ts(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[derive(Debug, Clone, PartialEq)]
enum CState {
    Running { since: i64 },
    Waiting { reason: String, message: String, until: i64 },
}

#[derive(Debug, Clone)]
struct SimContainer {
    name: String,
    main: bool,
    restarts: u32,
    state: CState,
    last_term: Option<(String, i32, i64, i64)>,
    ready: bool,
    cpu_m: f64,
    mem: f64,
    leak: f64,
    backoff_level: u32,
    /// cAdvisor-style cumulative counters of the current container instance (reset on restart).
    cpu_seconds: f64,
    cfs_periods: f64,
    cfs_throttled_periods: f64,
    cfs_throttled_seconds: f64,
    oom_events: u64,
    /// Worker OOM kills owed but not yet counted (a fraction a second).
    worker_kills_due: f64,
}

#[derive(Debug, Clone)]
struct SimPod {
    svc: usize,
    name: String,
    namespace: String,
    uid: String,
    node: Option<usize>,
    created: i64,
    ip: String,
    template_hash: String,
    containers: Vec<SimContainer>,
    deleting: bool,
    /// Evicted by its node's kubelet (the message it wrote): Failed, kept until deleted.
    evicted: Option<String>,
    net_rx_bytes: f64,
    net_tx_bytes: f64,
}

/// kube-scheduler 1.36's words for a pod that asks for more CPU than any of `n` nodes has free.
fn unschedulable_message(n: usize) -> String {
    format!(
        "0/{n} nodes are available: {n} Insufficient cpu. no new claims to deallocate, preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling."
    )
}

/// A back-off as Go prints a time.Duration, as the kubelet's messages do: 40s, 1m20s, 5m0s.
fn go_duration(secs: i64) -> String {
    if secs < 60 { format!("{secs}s") } else { format!("{}m{}s", secs / 60, secs % 60) }
}

/// Where the simulator's scheduler runs, for its events' reportingInstance.
const SCHEDULER_HOST: &str = "control-plane";

/// The sandbox image a kubelet's pods run their pause container from.
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// A pod's sandbox (pause container) id: 64 hex digits, stable per pod, as containerd's are.
fn sandbox_id(uid: &str) -> String {
    // FNV-1a, four rounds of different seeds: only stability and the shape matter.
    (0..4u64)
        .map(|round| {
            let mut h = 0xcbf2_9ce4_8422_2325u64 ^ round;
            for b in uid.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            format!("{h:016x}")
        })
        .collect()
}

#[derive(Debug, Clone)]
struct SimNode {
    name: String,
    cpu_m: f64,
    mem: f64,
    max_pods: u32,
    created: i64,
    memory_pressure: bool,
    disk_pressure: bool,
    usage: (f64, f64),
    /// The root cgroup's CPU counter: all the node's CPU time, for cAdvisor's `id="/"` row.
    cpu_seconds: f64,
}

#[derive(Debug, Clone, Copy)]
struct Res {
    cpu_req: f64,
    cpu_lim: Option<f64>,
    mem_req: f64,
    mem_lim: Option<f64>,
    base_mem: f64,
}

pub struct Sim {
    pub scenario: Scenario,
    pub now: i64,
    start: i64,
    rng: Rng,
    rv: u64,
    nodes: Vec<SimNode>,
    pods: Vec<SimPod>,
    res: Vec<Res>,
    pub pods_api: Collection,
    pub nodes_api: Collection,
    pub events_api: Collection,
    pub services_api: Collection,
    event_names: HashMap<(String, String, String), (String, u32, i64)>,
    pod_seq: u64,
    /// How close each service is to its CPU limit this second (demand / limit, worst pod).
    saturation: Vec<f64>,
    /// Pod logs: the gateway's access log and the mesh sidecars' call logs, bounded.
    pub access_log: std::collections::VecDeque<LogEntry>,
    /// Per service, the services it calls and those that call it (`[[services]] calls`).
    callees: Vec<Vec<usize>>,
    callers: Vec<Vec<usize>>,
    log_seq: u64,
    /// Its own random stream, so the access log does not change the rest of the simulation.
    log_rng: Rng,
    /// Rollouts under way: (service, the new version's template hash, the old pods to remove).
    retiring: Vec<(usize, String, Vec<String>)>,
    /// Faults whose one-time action (a rollout, a scale-out) has happened.
    fired: Vec<bool>,
    /// Per node, last second: CPU used by containers of a CPU-hog fault, and CPU wanted by
    /// everything else. A hog takes all but half of what the others want; they share the rest.
    node_hog_m: Vec<f64>,
    node_other_m: Vec<f64>,
    /// One per scenario queue.
    queues: Vec<SimQueue>,
}

/// The gateway's container, named as in the ingress-nginx chart.
pub const GATEWAY_CONTAINER: &str = "controller";

/// One line a container wrote to its log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub line: String,
}

/// A broker queue's counters, as RabbitMQ keeps them.
#[derive(Debug, Clone, Default)]
struct SimQueue {
    producer: usize,
    consumer: usize,
    backlog: f64,
    published: f64,
    acked: f64,
    /// Messages a consumer asked for and got back when it died.
    redelivered: f64,
    consumers: u32,
}

/// Messages a consumer holds unacknowledged at once (its prefetch).
const PREFETCH: f64 = 10.0;

/// Log lines kept for the pod log API (about a minute at the demo's load, mesh calls included).
const ACCESS_LOG_LINES: usize = 40_000;

/// Node allocatable = capacity minus what the kubelet reserves for the system.
const SYSTEM_RESERVED_CPU_M: f64 = 100.0;
const SYSTEM_RESERVED_MEM: f64 = 512.0 * 1024.0 * 1024.0;

impl Sim {
    pub fn new(scenario: Scenario, start: i64) -> Sim {
        let mut rng = Rng::new(scenario.seed);
        let mut nodes = Vec::new();
        for spec in &scenario.nodes {
            let names: Vec<String> = match spec.count {
                Some(n) => (1..=n).map(|i| format!("{}-{i}", spec.name)).collect(),
                None => vec![spec.name.clone()],
            };
            for name in names {
                nodes.push(SimNode {
                    name,
                    cpu_m: parse_cpu_millis(&spec.cpu).unwrap_or(4000.0),
                    mem: parse_bytes(&spec.memory).unwrap_or(8e9),
                    max_pods: spec.pods,
                    created: start - 86_400 * 12,
                    memory_pressure: false,
                    disk_pressure: false,
                    usage: (0.0, 0.0),
                    // As if up for its 12 days at a steady 10 % of its CPU.
                    cpu_seconds: 86_400.0 * 12.0 * 0.1 * parse_cpu_millis(&spec.cpu).unwrap_or(4000.0) / 1000.0,
                });
            }
        }
        let q = |s: &Option<String>, cpu: bool| {
            s.as_ref().and_then(|s| if cpu { parse_cpu_millis(s).ok() } else { parse_bytes(s).ok() })
        };
        let res: Vec<Res> = scenario
            .services
            .iter()
            .map(|s| Res {
                cpu_req: q(&s.cpu_request, true).unwrap_or(0.0),
                cpu_lim: q(&s.cpu_limit, true),
                mem_req: q(&s.memory_request, false).unwrap_or(0.0),
                mem_lim: q(&s.memory_limit, false),
                base_mem: parse_bytes(&s.base_memory).unwrap_or(64e6),
            })
            .collect();
        let mut sim = Sim {
            now: start,
            start,
            rv: 1000,
            nodes,
            pods: Vec::new(),
            res,
            pods_api: Collection::new("Pod", "v1", true),
            nodes_api: Collection::new("Node", "v1", false),
            events_api: Collection::new("Event", "v1", true),
            services_api: Collection::new("Service", "v1", true),
            event_names: HashMap::new(),
            pod_seq: 0,
            saturation: vec![0.0; scenario.services.len()],
            queues: scenario
                .queues
                .iter()
                .map(|q| {
                    let index = |name: &str| scenario.services.iter().position(|s| s.name == name).unwrap_or(0);
                    SimQueue { producer: index(&q.producer), consumer: index(&q.consumer), ..Default::default() }
                })
                .collect(),
            access_log: std::collections::VecDeque::new(),
            callees: Vec::new(),
            callers: vec![Vec::new(); scenario.services.len()],
            log_seq: 0,
            log_rng: Rng::new(scenario.seed ^ 0x05ee_d106),
            fired: vec![false; scenario.faults.len()],
            retiring: Vec::new(),
            node_hog_m: Vec::new(),
            node_other_m: Vec::new(),
            rng: Rng::new(rng.next_u64()),
            scenario,
        };
        let index = |name: &str| sim.scenario.services.iter().position(|s| s.name == name);
        sim.callees = sim.scenario.services.iter().map(|s| s.calls.iter().filter_map(|c| index(c)).collect()).collect();
        for (caller, callees) in sim.callees.iter().enumerate() {
            for &callee in callees {
                sim.callers[callee].push(caller);
            }
        }
        for i in 0..sim.nodes.len() {
            sim.publish_node(i);
        }
        for svc in 0..sim.scenario.services.len() {
            let (ns, name) = (sim.scenario.services[svc].namespace.clone(), sim.scenario.services[svc].name.clone());
            // The gateway's backend names (`<namespace>-<service>-80`) refer to this port.
            sim.add_service(&ns, &name, "http", 80, start - 4 * 86_400);
            let hash = sim.rng.suffix(9);
            for replica in 0..sim.scenario.services[svc].replicas {
                // Pods of an established cluster: created over the last days.
                let age = 3600 + (sim.rng.unit() * 86_400.0 * 3.0) as i64;
                sim.create_pod(svc, replica, &hash, start - age);
            }
        }
        sim
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    fn service(&self, svc: usize) -> &ServiceSpec {
        &self.scenario.services[svc]
    }

    /// Advances the simulation by `secs` seconds, one second at a time.
    pub fn advance(&mut self, secs: i64) {
        for _ in 0..secs {
            self.now += 1;
            self.step();
        }
    }

    /// The containers of a pod, by name; `None` when there is no such pod.
    pub fn container_names(&self, namespace: &str, name: &str) -> Option<Vec<String>> {
        Some(self.find_pod(namespace, name)?.containers.iter().map(|c| c.name.clone()).collect())
    }

    pub fn has_pod(&self, namespace: &str, name: &str) -> bool {
        self.find_pod(namespace, name).is_some()
    }

    /// The node a pod runs on, by name.
    fn pod_node_name(&self, namespace: &str, name: &str) -> Option<String> {
        self.find_pod(namespace, name)?.node.map(|n| self.nodes[n].name.clone())
    }

    fn find_pod(&self, namespace: &str, name: &str) -> Option<&SimPod> {
        self.pods.iter().find(|p| p.namespace == namespace && p.name == name)
    }

    /// Forgets watch history, so any watch from an older resourceVersion gets 410 Gone.
    pub fn compact(&mut self) {
        let rv = self.rv;
        self.pods_api.compact(rv);
        self.nodes_api.compact(rv);
        self.events_api.compact(rv);
        self.services_api.compact(rv);
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    pub fn namespaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self.scenario.services.iter().map(|s| s.namespace.clone()).collect();
        v.push("default".into());
        v.push("kube-system".into());
        v.sort();
        v.dedup();
        v
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }
}
