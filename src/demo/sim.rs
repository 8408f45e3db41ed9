//! The simulated cluster: pods scheduled on nodes, load that moves over time, usage that follows
//! load, CPU capped at the limit, leaks that end in OOMKilled, crash loops with the kubelet's
//! back-off, image pulls that fail and pods that fit no node. Objects are k8s-openapi types, so
//! what the server sends is the real wire format.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    Event, EventSource, HTTPGetAction, Node, NodeCondition, NodeSpec as K8sNodeSpec, NodeStatus, ObjectReference, Pod,
    PodCondition, PodIP, PodSpec, PodStatus, Probe, ResourceRequirements, Service, ServicePort,
    ServiceSpec as K8sServiceSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::scenario::{FaultKind, MESH_LABEL, MESH_SIDECAR, Scenario, ServiceSpec};
use super::store::{Collection, Selectable};
use crate::model::metrics::{ContainerMetrics, MetricsMeta, NodeMetrics, PodMetrics};
use crate::model::quantity::{parse_bytes, parse_cpu_millis};

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

    /// The faults of `kind` on the service that have begun.
    fn active_faults(&self, kind: FaultKind, svc: usize) -> impl Iterator<Item = &super::scenario::FaultSpec> {
        let name = &self.scenario.services[svc].name;
        let elapsed = self.now - self.start;
        self.scenario
            .faults
            .iter()
            .filter(move |f| f.kind == kind && f.service.as_ref() == Some(name) && elapsed >= f.start_secs)
    }

    fn fault_active(&self, kind: FaultKind, svc: usize) -> Option<&super::scenario::FaultSpec> {
        self.active_faults(kind, svc).next()
    }

    /// Sum of `value` over the faults of `kind` active for the service.
    fn fault_sum(
        &self,
        kind: FaultKind,
        svc: usize,
        value: impl Fn(&super::scenario::FaultSpec) -> Option<f64>,
    ) -> f64 {
        self.active_faults(kind, svc).filter_map(value).sum()
    }

    /// One-time actions of faults whose time has come: a rollout of a new version, a scale-out
    /// or a scale-in.
    fn fire_faults(&mut self) {
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

    /// Removes a pod for good (its controller does not replace it): a rollout's old version.
    fn remove_pod(&mut self, name: &str) {
        let Some(idx) = self.pods.iter().position(|p| p.name == name) else { return };
        let pod = self.pods.remove(idx);
        let rv = self.next_rv();
        let mut obj = self.pod_object(&pod, rv);
        obj.metadata.deletion_timestamp = Some(ts(self.now));
        let json = serde_json::to_vec(&obj).unwrap_or_default();
        self.pods_api.delete(rv, &pod.namespace, &pod.name, json);
    }

    fn create_pod(&mut self, svc: usize, replica: u32, hash: &str, created: i64) {
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
    fn schedule(&self, cpu_req: f64, mem_req: f64) -> Option<usize> {
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

    fn report_unschedulable(&mut self, idx: usize) {
        let msg = unschedulable_message(self.nodes.len());
        let (ns, name) = (self.pods[idx].namespace.clone(), self.pods[idx].name.clone());
        self.emit_event(&ns, "Pod", &name, "FailedScheduling", &msg, "default-scheduler");
    }

    /// Advances the simulation by `secs` seconds, one second at a time.
    pub fn advance(&mut self, secs: i64) {
        for _ in 0..secs {
            self.now += 1;
            self.step();
        }
    }

    /// The requests per second one pod serves: an even share, unless the service's load is uneven
    /// (then its first ready replica by name takes `factor` of it).
    fn pod_rps(&self, idx: usize, ready: u32) -> f64 {
        let svc = self.pods[idx].svc;
        let load = self.load_rps(svc);
        match self.fault_active(FaultKind::UnevenLoad, svc).and_then(|f| f.factor) {
            Some(factor) if ready > 1 => {
                if self.hot_replica(svc) == Some(idx) {
                    load * factor
                } else {
                    load * (1.0 - factor) / (ready - 1) as f64
                }
            }
            _ => load / ready.max(1) as f64,
        }
    }

    /// The service's scheduled pod first by name, ready or not.
    fn first_replica(&self, svc: usize) -> Option<usize> {
        (0..self.pods.len())
            .filter(|&i| self.pods[i].svc == svc && self.pods[i].node.is_some())
            .min_by(|&a, &b| self.pods[a].name.cmp(&self.pods[b].name))
    }

    fn hot_replica(&self, svc: usize) -> Option<usize> {
        (0..self.pods.len())
            .filter(|&i| {
                self.pods[i].svc == svc
                    && self.pods[i].node.is_some()
                    && self.pods[i].containers.iter().all(|c| c.ready)
            })
            .min_by(|&a, &b| self.pods[a].name.cmp(&self.pods[b].name))
    }

    fn load_rps(&self, svc: usize) -> f64 {
        let l = &self.scenario.load;
        let t = (self.now - self.start) as f64;
        let wave = 1.0 + l.amplitude * (2.0 * std::f64::consts::PI * t / l.period_secs.max(1.0)).sin();
        let spike = self.fault_active(FaultKind::LoadSpike, svc).and_then(|f| f.factor).unwrap_or(1.0);
        // Every request of a caller calls it once (calls never loop: the scenario checks).
        let called: f64 = self.callers[svc].iter().map(|&caller| self.load_rps(caller)).sum();
        l.base_rps * self.service(svc).share * wave * spike + called
    }

    /// Old pods of a rollout go once every pod of the new version is ready.
    fn retire_old_versions(&mut self) {
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

    fn step(&mut self) {
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

    /// The ready pods of a service: what a gateway or a sidecar may send a request to.
    fn ready_pods(&self, svc: usize) -> Vec<&SimPod> {
        self.pods.iter().filter(|p| p.svc == svc && p.node.is_some() && p.containers.iter().all(|c| c.ready)).collect()
    }

    /// How long one request takes in the service's own pods: its latency at rest, climbing as
    /// it nears its CPU limit, plus what a slow dependency adds.
    fn own_secs(&self, rng: &mut Rng, svc: usize) -> f64 {
        let spec = self.service(svc);
        let pressure = (self.saturation[svc] - 0.8).max(0.0);
        let slow_s = self.fault_sum(FaultKind::SlowDependency, svc, |f| f.extra_ms) / 1000.0;
        spec.latency_ms / 1000.0 * (0.6 + 0.8 * rng.unit()) * (1.0 + 8.0 * pressure) + slow_s * (0.8 + 0.4 * rng.unit())
    }

    /// What a pod of the service answers: some 504s when it is far past its CPU limit, the
    /// error burst's 500s (a new version's from its own pods only), else 200.
    fn answer_status(&self, rng: &mut Rng, svc: usize, pod: &SimPod) -> u16 {
        let pressure = (self.saturation[svc] - 0.8).max(0.0);
        let error_share = self
            .fault_active(FaultKind::ErrorBurst, svc)
            .filter(|f| !f.rollout || pod.created >= self.start + f.start_secs)
            .map_or(0.0, |f| f.factor.unwrap_or(0.0));
        if pressure > 0.3 && rng.unit() < 0.05 {
            504
        } else if rng.unit() < error_share {
            500
        } else {
            200
        }
    }

    /// The calls one request to `svc`, served by `caller`, makes through the mesh, in turn: each
    /// logged by the caller's sidecar as Istio's default access log line (into `lines`, as
    /// (namespace, pod, line)), the callee's own calls before it. Returns the seconds they took.
    fn mesh_calls(&self, rng: &mut Rng, svc: usize, caller: &SimPod, lines: &mut Vec<(String, String, String)>) -> f64 {
        let mut total = 0.0;
        for &callee in &self.callees[svc] {
            let spec = self.service(callee);
            let ready = self.ready_pods(callee);
            let (status, flags, details, upstream, secs) = if ready.is_empty() {
                (503, "UH", "no_healthy_upstream", "-".to_string(), 0.0)
            } else {
                let pod = ready[rng.next_u64() as usize % ready.len()];
                let secs = self.own_secs(rng, callee) + self.mesh_calls(rng, callee, pod, lines);
                (self.answer_status(rng, callee, pod), "-", "via_upstream", format!("{}:8080", pod.ip), secs)
            };
            let service_time = if ready.is_empty() { "-".to_string() } else { format!("{:.0}", secs * 1000.0) };
            // The sidecar's own hop adds a fraction of a millisecond.
            let duration_ms = (secs * 1000.0 + 0.3 + 0.5 * rng.unit()).round();
            let millis = rng.next_u64() % 1000;
            let started = Timestamp::from_second(self.now)
                .map(|t| format!("{}.{millis:03}Z", t.strftime("%Y-%m-%dT%H:%M:%S")))
                .unwrap_or_default();
            let (name, ns) = (&spec.name, &spec.namespace);
            let request_id = format!(
                "{:08x}-{:04x}-4{:03x}",
                rng.next_u64() as u32,
                rng.next_u64() % 0xffff,
                rng.next_u64() % 0xfff
            );
            let bytes = 100 + rng.next_u64() % 2000;
            let port = 32768 + rng.next_u64() % 28000;
            lines.push((
                caller.namespace.clone(),
                caller.name.clone(),
                format!(
                    "[{started}] \"POST /{name}/v1 HTTP/1.1\" {status} {flags} {details} - \"-\" 120 {bytes} {duration_ms} {service_time} \"-\" \"grpc-go/1.68.0\" \"{request_id}\" \"{name}.{ns}:8080\" \"{upstream}\" outbound|8080||{name}.{ns}.svc.cluster.local {ip}:{port} 10.96.{}.{}:8080 {ip}:{} - default",
                    callee / 250,
                    1 + callee % 250,
                    port + 1,
                    ip = caller.ip,
                ),
            ));
            total += duration_ms / 1000.0;
        }
        total
    }

    fn push_log(&mut self, namespace: String, pod: String, container: &str, line: String) {
        self.log_seq += 1;
        if self.access_log.len() == ACCESS_LOG_LINES {
            self.access_log.pop_front();
        }
        let (seq, at, container) = (self.log_seq, self.now, container.to_string());
        self.access_log.push_back(LogEntry { seq, at, namespace, pod, container, line });
    }

    /// One ingress-nginx `upstreaminfo` line per request the gateway served this second, spread
    /// over the services by their share of the load. A saturated service is slow in the log too;
    /// a service with no ready pod answers 503 at the gateway. A service that calls others
    /// waits for them, and its pods' sidecars log each call.
    fn write_access_log(&mut self, ready_count: &[u32]) {
        let Some(gw) = self.scenario.services.iter().position(|s| s.gateway) else { return };
        let gateway_pods: Vec<String> =
            self.pods.iter().filter(|p| p.svc == gw && p.node.is_some()).map(|p| p.name.clone()).collect();
        if gateway_pods.is_empty() {
            return;
        }
        let backends: Vec<usize> =
            (0..self.scenario.services.len()).filter(|&i| i != gw && self.scenario.services[i].share > 0.0).collect();
        // A load spike on a service brings it more requests through the gateway, not just CPU.
        let weights: Vec<f64> = backends
            .iter()
            .map(|&b| {
                self.scenario.services[b].share
                    * self.fault_active(FaultKind::LoadSpike, b).and_then(|f| f.factor).unwrap_or(1.0)
            })
            .collect();
        let total_share: f64 = backends.iter().map(|&i| self.scenario.services[i].share).sum();
        let total_weight: f64 = weights.iter().sum();
        let spiked = if total_share > 0.0 { total_weight / total_share } else { 1.0 };
        let requests = ((self.load_rps(gw) * spiked).round() as usize).min(500);
        let time_local = Timestamp::from_second(self.now)
            .map(|t| t.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string())
            .unwrap_or_default();
        // Its own random stream, borrowed for the second: the lines read the rest of the state.
        let mut rng = std::mem::replace(&mut self.log_rng, Rng::new(0));
        for i in 0..requests {
            let mut pick = rng.unit() * total_weight;
            let svc = backends
                .iter()
                .zip(&weights)
                .find(|(_, w)| {
                    pick -= **w;
                    pick <= 0.0
                })
                .map_or(backends[0], |(b, _)| *b);
            let spec = &self.scenario.services[svc];
            let ready = self.ready_pods(svc);
            let (path, method) = match spec.name.as_str() {
                "cart" => (format!("/api/cart/{}", 1000 + rng.next_u64() % 9000), "POST"),
                "order" => (format!("/api/orders/{}", rng.next_u64() % 100_000), "POST"),
                "payment" => ("/api/payments".to_string(), "POST"),
                "catalog" => (format!("/api/products/{}", rng.next_u64() % 500), "GET"),
                name => (format!("/{name}/"), "GET"),
            };
            let upstream_name = format!("{}-{}-80", spec.namespace, spec.name);
            let request_id = format!("{:016x}{:016x}", rng.next_u64(), self.now as u64);
            let bytes = 200 + rng.next_u64() % 4000;
            let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36";
            let client = format!("203.0.113.{}", 1 + rng.next_u64() % 250);
            let uneven = self.fault_active(FaultKind::UnevenLoad, svc).and_then(|f| f.factor);
            let hot = uneven.and_then(|_| self.hot_replica(svc)).map(|i| self.pods[i].name.as_str());
            let gateway_s = self.fault_sum(FaultKind::GatewaySaturation, gw, |f| f.extra_ms) / 1000.0;
            let mut calls = Vec::new();
            let line = if ready.is_empty() || ready_count.get(svc) == Some(&0) {
                format!(
                    "{client} - - [{time_local}] \"{method} {path} HTTP/1.1\" 503 190 \"-\" \"{ua}\" 420 0.000 [{upstream_name}] [] - - - - {request_id}"
                )
            } else {
                let pick = rng.next_u64() as usize;
                let pod = match (uneven, hot) {
                    (Some(share), Some(hot)) if rng.unit() < share => {
                        ready.iter().find(|p| p.name == hot).copied().unwrap_or(ready[pick % ready.len()])
                    }
                    (Some(_), Some(hot)) if ready.len() > 1 => {
                        let cold: Vec<&&SimPod> = ready.iter().filter(|p| p.name != hot).collect();
                        cold[pick % cold.len()]
                    }
                    _ => ready[pick % ready.len()],
                };
                let upstream_s = self.own_secs(&mut rng, svc) + self.mesh_calls(&mut rng, svc, pod, &mut calls);
                let status = self.answer_status(&mut rng, svc, pod);
                let total_s = upstream_s + 0.0005 + 0.001 * rng.unit() + gateway_s * (0.5 + rng.unit());
                format!(
                    "{client} - - [{time_local}] \"{method} {path} HTTP/1.1\" {status} {bytes} \"-\" \"{ua}\" 420 {total_s:.3} [{upstream_name}] [] {}:8080 {bytes} {upstream_s:.3} {status} {request_id}",
                    pod.ip
                )
            };
            for (namespace, pod, call) in calls {
                self.push_log(namespace, pod, MESH_SIDECAR, call);
            }
            let gateway_pod = gateway_pods[i % gateway_pods.len()].clone();
            self.push_log(self.service(gw).namespace.clone(), gateway_pod, GATEWAY_CONTAINER, line);
        }
        self.log_rng = rng;
    }

    /// Lines one container of a pod wrote after `after_seq`: (sequence, unix seconds, line).
    pub fn pod_log(&self, pod: &str, container: &str, after_seq: u64) -> Vec<(u64, i64, String)> {
        self.access_log
            .iter()
            .filter(|e| e.seq > after_seq && e.pod == pod && e.container == container)
            .map(|e| (e.seq, e.at, e.line.clone()))
            .collect()
    }

    /// Whether the service's pods carry the mesh sidecar (it calls or is called).
    fn in_mesh(&self, svc: usize) -> bool {
        !self.callees[svc].is_empty() || !self.callers[svc].is_empty()
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

    fn update_nodes(&mut self) {
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
    fn evict_for_disk(&mut self, node: &str, since: i64) {
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

    /// Forgets watch history, so any watch from an older resourceVersion gets 410 Gone.
    pub fn compact(&mut self) {
        let rv = self.rv;
        self.pods_api.compact(rv);
        self.nodes_api.compact(rv);
        self.events_api.compact(rv);
        self.services_api.compact(rv);
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

    fn publish_pod(&mut self, idx: usize) {
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

    fn publish_node(&mut self, idx: usize) {
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

    fn emit_event(&mut self, ns: &str, kind: &str, involved: &str, reason: &str, message: &str, component: &str) {
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

    fn pod_object(&self, pod: &SimPod, rv: u64) -> Pod {
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

    fn node_object(&self, idx: usize, rv: u64) -> Node {
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

    /// metrics.k8s.io PodMetrics for running containers, as metrics-server reports them.
    pub fn pod_metrics(&self, namespace: Option<&str>) -> Vec<PodMetrics> {
        let stamp = ts(self.now).0.to_string();
        self.pods
            .iter()
            .filter(|p| p.node.is_some() && namespace.is_none_or(|ns| p.namespace == ns))
            .filter(|p| p.containers.iter().any(|c| matches!(c.state, CState::Running { .. })))
            .map(|p| PodMetrics {
                metadata: MetricsMeta { name: p.name.clone(), namespace: Some(p.namespace.clone()) },
                timestamp: Some(stamp.clone()),
                window: Some("15.012s".into()),
                containers: p
                    .containers
                    .iter()
                    .filter(|c| matches!(c.state, CState::Running { .. }))
                    .map(|c| {
                        let mut usage = BTreeMap::new();
                        usage.insert("cpu".to_string(), format!("{}n", (c.cpu_m * 1e6) as u64));
                        usage.insert("memory".to_string(), format!("{}Ki", (c.mem / 1024.0) as u64));
                        ContainerMetrics { name: c.name.clone(), usage }
                    })
                    .collect(),
            })
            .collect()
    }

    pub fn node_metrics(&self) -> Vec<NodeMetrics> {
        let stamp = ts(self.now).0.to_string();
        self.nodes
            .iter()
            .map(|n| {
                let mut usage = BTreeMap::new();
                usage.insert("cpu".to_string(), format!("{}n", (n.usage.0 * 1e6) as u64));
                usage.insert("memory".to_string(), format!("{}Ki", (n.usage.1 / 1024.0) as u64));
                NodeMetrics {
                    metadata: MetricsMeta { name: n.name.clone(), namespace: None },
                    timestamp: Some(stamp.clone()),
                    window: Some("20.025s".into()),
                    usage,
                }
            })
            .collect()
    }

    /// The kubelet's cAdvisor endpoint for one node (`/api/v1/nodes/{node}/proxy/metrics/cadvisor`):
    /// real metric names, label sets and millisecond timestamps, including the pod-level cgroup
    /// rows (`container=""`) that consumers must filter out.
    pub fn cadvisor_exposition(&self, node: &str) -> Option<String> {
        use std::fmt::Write;
        let node_idx = self.nodes.iter().position(|n| n.name == node)?;
        let ts = self.now * 1000;
        let pods: Vec<&SimPod> = self.pods.iter().filter(|p| p.node == Some(node_idx)).collect();
        let mut out = String::with_capacity(pods.len() * 4096);
        let running = |c: &SimContainer| matches!(c.state, CState::Running { .. });
        type Metric<'x> = (&'x str, &'x str, &'x str, fn(&SimContainer, &Res) -> Option<f64>);
        let per_container: [Metric; 9] = [
            ("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.", |c, _| {
                Some(c.cpu_seconds)
            }),
            (
                "container_cpu_cfs_periods_total",
                "counter",
                "Number of elapsed enforcement period intervals.",
                |c, r| r.cpu_lim.map(|_| c.cfs_periods.floor()),
            ),
            (
                "container_cpu_cfs_throttled_periods_total",
                "counter",
                "Number of throttled period intervals.",
                |c, r| r.cpu_lim.map(|_| c.cfs_throttled_periods.floor()),
            ),
            (
                "container_cpu_cfs_throttled_seconds_total",
                "counter",
                "Total time duration the container has been throttled.",
                |c, r| r.cpu_lim.map(|_| c.cfs_throttled_seconds),
            ),
            ("container_memory_working_set_bytes", "gauge", "Current working set in bytes.", |c, _| {
                Some(c.mem.floor())
            }),
            ("container_memory_rss", "gauge", "Size of RSS in bytes.", |c, _| Some((c.mem * 0.8).floor())),
            (
                "container_oom_events_total",
                "counter",
                "Count of out of memory events observed for the container",
                |c, _| Some(c.oom_events as f64),
            ),
            ("container_spec_cpu_quota", "gauge", "CPU quota of the container.", |c, r| {
                r.cpu_lim.map(|l| (if c.main { l } else { l * 0.25 }) * 100.0)
            }),
            ("container_spec_memory_limit_bytes", "gauge", "Memory limit for the container.", |c, r| {
                Some(r.mem_lim.map_or(0.0, |l| if c.main { l } else { l * 0.25 }).floor())
            }),
        ];
        // What a real kubelet's cAdvisor (containerd, cgroup v1) serves for each pod, as the
        // real-node test holds it to: the pod-level cgroup's row (no container, no image), the
        // sandbox's pause container (no container name, the pause image; it alone carries the
        // pod's network), then the containers. CPU usage is broken down by `cpu="total"`.
        // Families the pause container has a row in (it has no CPU quota).
        let pause_has = |name: &str| !name.contains("cfs") && name != "container_spec_cpu_quota";
        let pause_value = |name: &str, p: &SimPod| match name {
            "container_cpu_usage_seconds_total" => 0.02 + (self.now - p.created).max(0) as f64 * 1e-5,
            "container_memory_working_set_bytes" => 315_392.0,
            "container_memory_rss" => 98_304.0,
            _ => 0.0,
        };
        // Each pod's sandbox id, made once per exposition rather than once per row.
        let sandboxes: Vec<String> = pods.iter().map(|p| sandbox_id(&p.uid)).collect();
        // One row of a pod's pause container, its labels in cAdvisor's sorted order.
        let pause_row = |out: &mut String,
                         name: &str,
                         p: &SimPod,
                         sandbox: &str,
                         cpu: &str,
                         interface: &str,
                         value: f64| {
            let _ = writeln!(
                out,
                "{name}{{container=\"\",{cpu}id=\"/kubepods/burstable/pod{}/{sandbox}\",image=\"{PAUSE_IMAGE}\",{interface}name=\"{sandbox}\",namespace=\"{}\",pod=\"{}\"}} {value} {ts}",
                p.uid, p.namespace, p.name
            );
        };
        let node = &self.nodes[node_idx];
        for (name, kind, help, value) in per_container {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let cpu = if name == "container_cpu_usage_seconds_total" { "cpu=\"total\"," } else { "" };
            // The root cgroup: the whole node.
            let root = match name {
                "container_cpu_usage_seconds_total" => Some(node.cpu_seconds),
                "container_memory_working_set_bytes" => Some(node.usage.1.floor()),
                _ => None,
            };
            if let Some(v) = root {
                let _ = writeln!(
                    out,
                    "{name}{{container=\"\",{cpu}id=\"/\",image=\"\",name=\"\",namespace=\"\",pod=\"\"}} {v} {ts}"
                );
            }
            for (p, sandbox) in pods.iter().zip(&sandboxes) {
                let spec = self.service(p.svc);
                let r = &self.res[p.svc];
                let pod_cgroup = format!("/kubepods/burstable/pod{}", p.uid);
                let (rows, sum) = p
                    .containers
                    .iter()
                    .filter(|c| running(c))
                    .filter_map(|c| value(c, r))
                    .fold((0, 0.0), |(n, sum), v| (n + 1, sum + v));
                if rows > 0 {
                    let _ = writeln!(
                        out,
                        "{name}{{container=\"\",{cpu}id=\"{pod_cgroup}\",image=\"\",name=\"\",namespace=\"{}\",pod=\"{}\"}} {sum} {ts}",
                        p.namespace, p.name
                    );
                }
                if pause_has(name) {
                    pause_row(&mut out, name, p, sandbox, cpu, "", pause_value(name, p));
                }
                for c in p.containers.iter().filter(|c| running(c)) {
                    let Some(v) = value(c, r) else { continue };
                    let image = if c.main { spec.image.as_str() } else { "docker.io/istio/proxyv2:1.28.0" };
                    let cid =
                        format!("{:016x}{:08x}", (p.uid.len() as u64) << 40 ^ (c.restarts as u64) << 20, c.name.len());
                    let _ = writeln!(
                        out,
                        "{name}{{container=\"{}\",{cpu}id=\"{pod_cgroup}/{cid}\",image=\"{image}\",name=\"{cid}\",namespace=\"{}\",pod=\"{}\"}} {v} {ts}",
                        c.name, p.namespace, p.name
                    );
                }
            }
        }
        for (name, help, field) in [
            ("container_network_receive_bytes_total", "Cumulative count of bytes received", 0),
            ("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", 1),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (p, sandbox) in pods.iter().zip(&sandboxes) {
                let v = if field == 0 { p.net_rx_bytes } else { p.net_tx_bytes };
                pause_row(&mut out, name, p, sandbox, "", "interface=\"eth0\",", v.floor());
            }
        }
        Some(out)
    }

    /// The kubelet's resource metrics endpoint (`/metrics/resource`) as kubelet 1.36 serves it:
    /// CPU and working set of the node, each pod and each running container, and container
    /// start times; no throttling, no network. A few kB a node where cAdvisor is hundreds.
    pub fn resource_exposition(&self, node: &str) -> Option<String> {
        use std::fmt::Write;
        let node_idx = self.nodes.iter().position(|n| n.name == node)?;
        let n = &self.nodes[node_idx];
        let ts = self.now * 1000;
        let mut out = String::new();
        let pods: Vec<&SimPod> = self.pods.iter().filter(|p| p.node == Some(node_idx)).collect();
        let running = |c: &&SimContainer| matches!(c.state, CState::Running { .. });
        type Value = fn(&SimContainer) -> f64;
        let families: [(&str, &str, &str, Value); 3] = [
            (
                "container_cpu_usage_seconds_total",
                "counter",
                "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
                |c| c.cpu_seconds,
            ),
            (
                "container_memory_working_set_bytes",
                "gauge",
                "[STABLE] Current working set of the container in bytes",
                |c| c.mem.floor(),
            ),
            (
                "container_start_time_seconds",
                "gauge",
                "[STABLE] Start time of the container since unix epoch in seconds",
                |c| match c.state {
                    CState::Running { since } => since as f64,
                    CState::Waiting { .. } => 0.0,
                },
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for p in &pods {
                for c in p.containers.iter().filter(running) {
                    let _ = writeln!(
                        out,
                        "{name}{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {ts}",
                        c.name,
                        p.namespace,
                        p.name,
                        value(c)
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n\
             # TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total {} {ts}",
            n.cpu_seconds
        );
        let _ = writeln!(
            out,
            "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n\
             # TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes {} {ts}",
            n.usage.1.floor()
        );
        // A pod's figure is the sum of its running containers'.
        let pod_families: [(&str, &str, &str, Value); 2] = [
            (
                "pod_cpu_usage_seconds_total",
                "counter",
                "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
                |c| c.cpu_seconds,
            ),
            ("pod_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the pod in bytes", |c| {
                c.mem.floor()
            }),
        ];
        for (name, kind, help, value) in pod_families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for p in &pods {
                let total: f64 = p.containers.iter().filter(running).map(value).sum();
                let _ = writeln!(out, "{name}{{namespace=\"{}\",pod=\"{}\"}} {total} {ts}", p.namespace, p.name);
            }
        }
        out.push_str(
            "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n\
             # TYPE resource_scrape_error gauge\nresource_scrape_error 0\n",
        );
        Some(out)
    }

    /// kube-state-metrics' per-container families, consistent with the pods: restarts, and the
    /// requests and limits of the pod spec (cores and bytes, by `resource` and `unit`), for the
    /// pods that are scheduled. No timestamps: kube-state-metrics stamps none.
    pub fn kube_state_metrics_exposition(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let scheduled = || self.pods.iter().filter(|p| p.node.is_some());
        let labels = |p: &SimPod, c: &SimContainer| {
            format!("namespace=\"{}\",pod=\"{}\",uid=\"{}\",container=\"{}\"", p.namespace, p.name, p.uid, c.name)
        };
        out.push_str(
            "# HELP kube_pod_container_status_restarts_total The number of container restarts per container.\n",
        );
        out.push_str("# TYPE kube_pod_container_status_restarts_total counter\n");
        for p in scheduled() {
            for c in &p.containers {
                let _ = writeln!(out, "kube_pod_container_status_restarts_total{{{}}} {}", labels(p, c), c.restarts);
            }
        }
        for (family, help) in [
            ("kube_pod_container_resource_requests", "The number of requested request resource by a container."),
            ("kube_pod_container_resource_limits", "The number of requested limit resource by a container."),
        ] {
            let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} gauge");
            for p in scheduled() {
                let r = &self.res[p.svc];
                let (cpu, mem) = if family.ends_with("requests") {
                    (Some(r.cpu_req), Some(r.mem_req))
                } else {
                    (r.cpu_lim, r.mem_lim)
                };
                let node = p.node.map(|n| self.nodes[n].name.as_str()).unwrap_or_default();
                for c in &p.containers {
                    let scale = if c.main { 1.0 } else { 0.25 };
                    let l = format!("{},node=\"{node}\"", labels(p, c));
                    if let Some(cpu) = cpu.filter(|v| *v > 0.0) {
                        let _ =
                            writeln!(out, "{family}{{{l},resource=\"cpu\",unit=\"core\"}} {}", cpu * scale / 1000.0);
                    }
                    if let Some(mem) = mem.filter(|v| *v > 0.0) {
                        let _ = writeln!(
                            out,
                            "{family}{{{l},resource=\"memory\",unit=\"byte\"}} {}",
                            (mem * scale).floor()
                        );
                    }
                }
            }
        }
        out
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

    /// The broker's queues as RabbitMQ's `/metrics/per-object` prints them; None without queues.
    pub fn rabbitmq_exposition(&self) -> Option<String> {
        if self.queues.is_empty() {
            return None;
        }
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(usize, &SimQueue) -> (String, f64)| {
            out.push_str(&format!("# TYPE {name} {kind}\n# HELP {name} {help}\n"));
            for (i, q) in self.queues.iter().enumerate() {
                let (labels, v) = value(i, q);
                out.push_str(&format!("{name}{{{labels}}} {v}\n"));
            }
        };
        let queue = |i: usize| format!("vhost=\"/\",queue=\"{}\"", self.scenario.queues[i].name);
        // One publishing and one consuming channel per queue, as long-lived clients have.
        let channel = |i: usize, base: usize| format!("channel=\"<0.{}.0>\",", base + i);
        let unacked = |q: &SimQueue| q.backlog.min(PREFETCH * f64::from(q.consumers)).floor();
        family("rabbitmq_queue_messages_ready", "gauge", "Messages ready to be delivered to consumers", &|i, q| {
            (queue(i), (q.backlog.floor() - unacked(q)).max(0.0))
        });
        family(
            "rabbitmq_queue_messages_unacked",
            "gauge",
            "Messages delivered to consumers but not yet acknowledged",
            &|i, q| (queue(i), unacked(q)),
        );
        family("rabbitmq_queue_consumers", "gauge", "Consumers on a queue", &|i, q| (queue(i), f64::from(q.consumers)));
        family(
            "rabbitmq_queue_messages_published_total",
            "counter",
            "Total number of messages published to queues",
            &|i, q| {
                let name = &self.scenario.queues[i].name;
                (
                    format!("{}queue_vhost=\"/\",queue=\"{name}\",exchange_vhost=\"/\",exchange=\"\"", channel(i, 800)),
                    q.published.floor(),
                )
            },
        );
        family(
            "rabbitmq_channel_messages_acked_total",
            "counter",
            "Total number of messages acknowledged by consumers",
            &|i, q| (format!("{}{}", channel(i, 900), queue(i)), q.acked.floor()),
        );
        family(
            "rabbitmq_channel_messages_redelivered_total",
            "counter",
            "Total number of messages redelivered to consumers",
            &|i, q| (format!("{}{}", channel(i, 900), queue(i)), q.redelivered.floor()),
        );
        Some(out)
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pod::{PodInfo, StateInfo};

    const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn pods(sim: &Sim) -> Vec<PodInfo> {
        sim.pods_api
            .objects
            .values()
            .map(|s| PodInfo::from_pod(&serde_json::from_slice::<Pod>(&s.json).unwrap()))
            .collect()
    }

    #[test]
    fn shop_has_every_service_and_a_pending_pod() {
        let sim = Sim::new(Scenario::shop(), START);
        let pods = pods(&sim);
        for svc in &sim.scenario.services {
            assert!(pods.iter().any(|p| p.label("app") == Some(&svc.name)), "{} has pods", svc.name);
        }
        let search = pods.iter().find(|p| p.key.name == "search-0").unwrap();
        assert!(search.node.is_none());
        assert!(search.unschedulable.as_deref().unwrap().contains("Insufficient cpu"));
        assert!(sim.events_api.objects.values().any(|e| String::from_utf8_lossy(&e.json).contains("FailedScheduling")));
    }

    #[test]
    fn leak_ends_in_oomkilled_and_crash_loop_backs_off() {
        let mut sim = Sim::new(Scenario::shop(), START);
        sim.advance(400);
        let pods = pods(&sim);
        let cart = pods.iter().find(|p| p.label("app") == Some("cart")).unwrap();
        let c = &cart.containers[0];
        assert!(c.restarts >= 1, "cart restarted: {c:?}");
        assert_eq!(c.last_termination.as_ref().unwrap().0, "OOMKilled");
        let notif = pods.iter().find(|p| p.label("app") == Some("notification")).unwrap();
        assert!(notif.containers[0].restarts >= 3, "{:?}", notif.containers[0]);
        // The kubelet's back-off doubles: after 400 s there cannot be more than ~6 crashes.
        assert!(notif.containers[0].restarts <= 7);
        let payment: Vec<_> =
            sim.pod_metrics(Some("shop")).into_iter().filter(|m| m.metadata.name.starts_with("payment")).collect();
        let cpu = crate::model::quantity::parse_cpu_millis(&payment[0].containers[0].usage["cpu"]).unwrap();
        assert!(cpu <= 150.0 + 1e-6, "CPU is capped at the limit: {cpu}");
        let _ = StateInfo::Unknown;
    }

    #[test]
    fn same_seed_same_run() {
        let mut a = Sim::new(Scenario::shop(), START);
        let mut b = Sim::new(Scenario::shop(), START);
        a.advance(120);
        b.advance(120);
        assert_eq!(pods(&a), pods(&b));
        assert_eq!(a.resource_version(), b.resource_version());
    }

    #[test]
    fn delete_replaces_the_pod() {
        let mut sim = Sim::new(Scenario::shop(), START);
        let before = sim.pod_count();
        let victim = pods(&sim).into_iter().find(|p| p.label("app") == Some("frontend")).unwrap();
        assert!(sim.delete_pod(&victim.key.namespace, &victim.key.name));
        assert_eq!(sim.pod_count(), before);
        assert!(!pods(&sim).iter().any(|p| p.key == victim.key));
    }
}
