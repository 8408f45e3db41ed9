//! Hotspots: which container, service, node or gateway is the likely bottleneck right now, and
//! why, in plain words with the numbers behind them.
//!
//! Each rule reads plain facts (built by the app from what the sources delivered), and a rule that
//! fires is a [`Finding`]: a verdict, its evidence and a score. A subject's score is its strongest
//! finding plus a quarter of the others (two problems are worse than one, but five warnings do not
//! outrank a crash loop). Where a slow or failing service is slow because its own pods are
//! saturated, the service's evidence is attached to those pods and they rank first; where its
//! pods are idle, the service itself is the hotspot and the verdict says to look downstream.
//!
//! The thresholds and weights are [`Rules`]: data, with the reasoning next to each, overridable
//! under `[hotspots]` in the config.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use crate::model::broker::{QueueKey, QueueStats};
use serde::{Deserialize, Serialize};

use crate::analysis::health::Health;
use crate::model::pod::{PodKey, Resources};
use crate::model::quantity::{format_bytes, format_cpu_millis, format_ratio};
use crate::model::time::{UnixSecs, format_age, format_latency};
use crate::model::traffic::Summary;

/// Thresholds: when a signal becomes a finding.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Share of CFS periods throttled. The kubernetes-mixin's CPUThrottlingHigh alert fires at 25 %:
    /// beyond it, request latency suffers even when average usage looks fine.
    pub cpu_throttled: f64,
    /// CPU usage at this share of the limit is running at its ceiling (for usage sources that
    /// cannot see throttling, such as metrics.k8s.io).
    pub cpu_at_limit: f64,
    /// Memory working set at this share of the limit: the kernel reclaims page cache hard and the
    /// next spike is an OOM kill (the usual "memory near limit" alert uses 90 %).
    pub memory_near_limit: f64,
    /// A working set growing steadily that would reach the limit within this many minutes is a
    /// leak headed for an OOM kill (the line is fitted over the last ten minutes and must fit:
    /// R² ≥ 0.9 over at least 90 seconds, so a load wave or a GC cycle is not a leak).
    pub oom_horizon_minutes: f64,
    /// Restarts in the last hour that make a running container unstable. The mixin's
    /// KubePodCrashLooping fires on any restart in 15 minutes; three an hour is a pattern.
    pub restarts_per_hour: u32,
    /// Share of 5xx answers at the gateway. At 5 %, a 99.9 % monthly availability objective is
    /// spent in under a day (the SRE workbook's fast-burn page).
    pub error_ratio: f64,
    /// Share of requests the gateway had to send to another upstream (retries after a timeout or
    /// a refused connection): replicas failing behind a gateway that hides it from clients.
    pub retry_ratio: f64,
    /// p95 latency this many times the service's own baseline (the median p95 of the retained
    /// history, the last two minutes excluded) is a regression.
    pub latency_vs_baseline: f64,
    /// ...and only when the p95 is at least this slow (ms), so 2 ms → 5 ms is not a hotspot.
    pub latency_floor_ms: f64,
    /// Without a baseline yet, a p95 this slow (ms) is a hotspot on its own.
    pub latency_absolute_ms: f64,
    /// Gateway overhead (p95 of total − upstream time per request, ms) above this means the
    /// gateway itself is slow: ingress-nginx adds well under 5 ms when healthy.
    pub gateway_overhead_ms: f64,
    /// A replica taking this many times its fair share of a service's requests is a balancing
    /// problem (sticky sessions, a broken endpoint list, client-side pooling).
    pub replica_imbalance: f64,
    /// Node CPU usage at this share of allocatable: pods without limits start starving each other.
    pub node_cpu_busy: f64,
    /// A container using this many times its CPU request on a busy node is a noisy neighbour.
    pub neighbour_burst: f64,
    /// Times a running container went not ready within ten minutes that make it flapping: its
    /// endpoints come and go, and the load on its replicas jumps each time.
    pub readiness_flaps: u32,
    /// Traffic rules need this many requests in the last minute; fewer is noise.
    pub min_requests: u64,
    /// Pods created this recently (minutes) when a service starts failing point to a rollout.
    pub rollout_minutes: i64,
    /// A queue's backlog growing without a break for this long means its consumers fall behind
    /// (shorter bursts are what queues are for).
    pub queue_growing_secs: i64,
    /// ... and only once this many messages wait.
    pub queue_min_backlog: f64,
    pub weights: Weights,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            cpu_throttled: 0.25,
            cpu_at_limit: 0.9,
            memory_near_limit: 0.9,
            oom_horizon_minutes: 30.0,
            restarts_per_hour: 3,
            error_ratio: 0.05,
            retry_ratio: 0.05,
            latency_vs_baseline: 2.0,
            latency_floor_ms: 100.0,
            latency_absolute_ms: 1000.0,
            gateway_overhead_ms: 50.0,
            replica_imbalance: 2.0,
            node_cpu_busy: 0.9,
            neighbour_burst: 3.0,
            readiness_flaps: 3,
            min_requests: 20,
            rollout_minutes: 15,
            queue_growing_secs: 120,
            queue_min_backlog: 100.0,
            weights: Weights::default(),
        }
    }
}

/// The score of each finding at its threshold; stronger signals scale it up to 1.5× (capped at
/// 100). The order says what an operator should look at first: a container that is down beats
/// one that is slow, which beats one that will be slow.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    pub crash_loop: f64,
    pub oom_killed: f64,
    pub image_pull: f64,
    pub config_error: f64,
    pub unschedulable: f64,
    pub not_ready: f64,
    pub restarting: f64,
    pub cpu_starved: f64,
    pub memory_leak: f64,
    pub memory_near_limit: f64,
    pub errors: f64,
    pub retries: f64,
    pub latency: f64,
    pub gateway_overhead: f64,
    pub imbalance: f64,
    pub node_pressure: f64,
    pub node_not_ready: f64,
    pub node_busy: f64,
    pub noisy_neighbour: f64,
    pub consumer_lag: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            crash_loop: 80.0,
            oom_killed: 75.0,
            image_pull: 65.0,
            config_error: 65.0,
            unschedulable: 60.0,
            not_ready: 50.0,
            restarting: 40.0,
            cpu_starved: 55.0,
            memory_leak: 50.0,
            memory_near_limit: 45.0,
            errors: 55.0,
            retries: 45.0,
            latency: 50.0,
            gateway_overhead: 60.0,
            imbalance: 45.0,
            node_pressure: 60.0,
            node_not_ready: 80.0,
            node_busy: 35.0,
            noisy_neighbour: 60.0,
            consumer_lag: 60.0,
        }
    }
}

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

/// What a hotspot is about, and where Enter on it leads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Subject {
    Container {
        namespace: String,
        pod: String,
        container: String,
    },
    Service {
        name: String,
        backend: String,
    },
    Node {
        name: String,
    },
    /// A Deployment, StatefulSet…: `workload` as pods name it (`deploy/catalog`).
    Workload {
        namespace: String,
        workload: String,
    },
    Gateway,
    /// A queue, or a consumer group on a topic or stream (`broker/queue[/group]`).
    Queue {
        name: String,
    },
}

impl Subject {
    /// How the subject is written in lists, reports and scenario expectations.
    pub fn label(&self) -> String {
        match self {
            Subject::Container { namespace, pod, container } => format!("{namespace}/{pod}/{container}"),
            Subject::Service { name, .. } => format!("svc {name}"),
            Subject::Node { name } => format!("node {name}"),
            Subject::Workload { namespace, workload } => match workload.split_once('/') {
                Some((kind, name)) => format!("{kind} {namespace}/{name}"),
                None => format!("{namespace}/{workload}"),
            },
            Subject::Gateway => "gateway".into(),
            Subject::Queue { name } => format!("queue {name}"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Container { .. } => "container",
            Subject::Service { .. } => "service",
            Subject::Node { .. } => "node",
            Subject::Workload { .. } => "workload",
            Subject::Gateway => "gateway",
            Subject::Queue { .. } => "queue",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Plain words: `CPU-starved`, `Memory leak`, `Slow, pods idle`…
    pub verdict: String,
    /// The numbers behind it, as a phrase.
    pub evidence: String,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hotspot {
    pub subject: Subject,
    /// 0–100.
    pub score: u32,
    /// Strongest first; never empty.
    pub findings: Vec<Finding>,
}

impl Hotspot {
    /// The strongest finding's verdict.
    pub fn verdict(&self) -> &str {
        &self.findings[0].verdict
    }

    /// Every finding's evidence, strongest first.
    pub fn evidence(&self) -> Vec<&str> {
        self.findings.iter().map(|f| f.evidence.as_str()).collect()
    }

    /// `CPU-starved: throttled 62% …; p95 1.8s (5× its baseline)`.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.verdict(), self.evidence().join("; "))
    }
}

/// A finding's score: the weight at the threshold, up to 1.5× as the signal reaches `strong`.
fn scaled(weight: f64, value: f64, threshold: f64, strong: f64) -> f64 {
    let over = if strong > threshold { ((value - threshold) / (strong - threshold)).clamp(0.0, 1.0) } else { 1.0 };
    (weight * (1.0 + 0.5 * over)).min(100.0)
}

/// Findings per subject, accumulated by the rules.
#[derive(Default)]
struct Board {
    findings: BTreeMap<Subject, Vec<Finding>>,
}

impl Board {
    fn add(&mut self, subject: Subject, verdict: impl Into<String>, evidence: String, score: f64) {
        self.findings.entry(subject).or_default().push(Finding { verdict: verdict.into(), evidence, score });
    }
}

fn container_subject(c: &ContainerFacts) -> Subject {
    Subject::Container {
        namespace: c.pod.namespace.clone(),
        pod: c.pod.name.clone(),
        container: c.container.to_string(),
    }
}

/// Ranks every subject with at least one finding, highest score first; ties by label, so the
/// order never depends on the order of the inputs.
pub fn rank(inputs: &Inputs, rules: &Rules) -> Vec<Hotspot> {
    let mut board = Board::default();
    for c in &inputs.containers {
        container_rules(c, rules, &mut board);
    }
    node_rules(inputs, rules, &mut board);
    // The services' and the workloads' rules both look pods up: one index, only if either runs.
    let containers_of = if inputs.services.is_empty() && inputs.capacity.is_empty() {
        HashMap::new()
    } else {
        containers_by_pod(&inputs.containers)
    };
    service_rules(inputs, &containers_of, rules, &mut board);
    capacity_rules(inputs, &containers_of, &mut board);
    gateway_rules(inputs, rules, &mut board);
    queue_rules(inputs, rules, &mut board);
    let mut hotspots: Vec<Hotspot> = board
        .findings
        .into_iter()
        .map(|(subject, mut findings)| {
            findings.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.verdict.cmp(&b.verdict)));
            let score = combined_score(&findings).round() as u32;
            Hotspot { score, findings, subject }
        })
        .collect();
    hotspots.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.subject.cmp(&b.subject)));
    hotspots
}

/// A subject's score from its findings: the strongest, plus a quarter of the others.
fn combined_score(findings: &[Finding]) -> f64 {
    let top = findings.iter().map(|f| f.score).fold(0.0, f64::max);
    let all: f64 = findings.iter().map(|f| f.score).sum();
    (top + 0.25 * (all - top)).min(100.0)
}

fn container_rules(c: &ContainerFacts, rules: &Rules, board: &mut Board) {
    let w = &rules.weights;
    // Most containers have no finding: nothing is allocated for them (30,000 per refresh).
    let mut found: Vec<Finding> = Vec::new();
    let mut add = |verdict: &str, evidence: String, score: f64| {
        found.push(Finding { verdict: verdict.to_string(), evidence, score });
    };
    let detail = c.health.detail.as_deref().unwrap_or("");
    let oom_last = c.last_reason == Some("OOMKilled");
    let mem_limit =
        || c.resources.mem_limit.map(format_bytes).map(|l| format!(" at its {l} limit")).unwrap_or_default();
    // A healthy container that never restarted has no health finding: skip the word matching.
    let quiet = c.health.severity == crate::analysis::health::Severity::Good && c.restarts_1h == 0;
    match if quiet { "" } else { c.health.word.as_str() } {
        "CrashLoop" => {
            let why = if oom_last { format!("OOMKilled{}", mem_limit()) } else { detail.to_string() };
            let evidence = format!("{why}; {} restarts in the last hour", c.restarts_1h);
            add("Crash-looping", evidence, scaled(w.crash_loop, c.restarts_1h as f64, 1.0, 10.0));
        }
        "OOMKilled" => add("OOMKilled", format!("killed{}", mem_limit()), w.oom_killed),
        "ImagePull" => add("Image pull failing", detail.to_string(), w.image_pull),
        "ConfigError" => add("Cannot start", detail.to_string(), w.config_error),
        "Failed" => add("Failed", detail.to_string(), w.config_error),
        "Evicted" => add("Evicted", format!("by its node's kubelet: {}", detail.trim_end()), w.restarting),
        "Unschedulable" => add("Pending: fits no node", detail.to_string(), w.unschedulable),
        // Between two crashes of a crash loop the container runs, not yet ready: still a loop.
        "Starting" | "NotReady" if c.restarts_1h >= 2 && !oom_last => {
            let why =
                c.last_reason.map(|r| format!("running again after {r}")).unwrap_or_else(|| "running again".into());
            let evidence = format!("{why}, not ready; {} restarts in the last hour", c.restarts_1h);
            add("Crash-looping", evidence, scaled(w.crash_loop, c.restarts_1h as f64, 1.0, 10.0));
        }
        "NotReady" => add("Not ready", "running but failing its readiness probe".into(), w.not_ready),
        // Running again: an OOM kill within the hour is always worth seeing (the next one is
        // coming); other restarts when they are a pattern.
        _ if oom_last && c.restarts_1h >= 1 => {
            let times = if c.restarts_1h == 1 { "once".to_string() } else { format!("{} times", c.restarts_1h) };
            let evidence = format!("OOMKilled{} {times} in the last hour", mem_limit());
            add("OOMKilled", evidence, scaled(w.oom_killed, c.restarts_1h as f64, 1.0, 6.0));
        }
        _ if c.restarts_1h >= rules.restarts_per_hour => {
            let why = c.last_reason.map(|r| format!(", last {r}")).unwrap_or_default();
            let evidence = format!("{} restarts in the last hour{why}", c.restarts_1h);
            add("Restarting", evidence, scaled(w.restarting, c.restarts_1h as f64, 3.0, 12.0));
        }
        _ => {}
    }
    // The kernel killed a process, but the container did not die of it (no OOMKilled restart in
    // the hour): a worker of a multi-process server, invisible in the pod's status.
    if c.oom_kills > 0 && !(oom_last && c.restarts_1h > 0) {
        let times = if c.oom_kills == 1 { "once".to_string() } else { format!("{} times", c.oom_kills) };
        let usage = c
            .resources
            .mem_limit
            .filter(|_| c.mem.is_finite())
            .map(|l| format!("; working set {} of its {} limit", format_bytes(c.mem), format_bytes(l)))
            .unwrap_or_default();
        let evidence = format!(
            "the kernel OOM-killed a process {times} in the last {} min, the container kept running{usage}",
            OOM_KILL_WINDOW_SECS / 60
        );
        add("Processes OOM-killed", evidence, scaled(w.oom_killed * 0.8, c.oom_kills as f64, 1.0, 5.0));
    }
    if c.not_ready_spells >= rules.readiness_flaps {
        let evidence = format!("went not ready {} times in the last 10 minutes", c.not_ready_spells);
        add(
            "Readiness flapping",
            evidence,
            scaled(w.not_ready, c.not_ready_spells as f64, rules.readiness_flaps as f64, 10.0),
        );
    }
    // A finished init container uses nothing: its usage rules do not apply.
    let finished = c.init && c.health.word == "Completed";
    // CPU: throttling when the source sees it, else usage pinned at the limit.
    if let Some(limit) = c.resources.cpu_limit_m.filter(|l| *l > 0.0 && !finished) {
        let usage = || {
            if c.cpu_m.is_finite() {
                format!(" at {} of a {} limit", format_cpu_millis(c.cpu_m), format_cpu_millis(limit))
            } else {
                String::new()
            }
        };
        match c.throttle {
            Some(t) if t >= rules.cpu_throttled => {
                let evidence = format!("throttled {:.0}% of periods{}", t * 100.0, usage());
                add("CPU-starved", evidence, scaled(w.cpu_starved, t, rules.cpu_throttled, 0.75));
            }
            None if c.cpu_m.is_finite() && c.cpu_m >= rules.cpu_at_limit * limit => {
                let evidence =
                    format!("using {} of its {} CPU limit", format_ratio(c.cpu_m / limit), format_cpu_millis(limit));
                add("CPU-starved", evidence, w.cpu_starved);
            }
            _ => {}
        }
    }
    // Memory: a leak (growth towards the limit) or a working set already near it — of a running
    // container only: a crash loop's last sample and trend are history, not a forecast.
    let running = matches!(c.health.word.as_str(), "Running" | "Restarted" | "NotReady" | "Starting");
    if let Some(limit) = c.resources.mem_limit.filter(|l| *l > 0.0 && !finished && running)
        && c.mem.is_finite()
    {
        let growth = c.mem_growth.filter(|g| *g > 0.0);
        let minutes_to_limit = growth.map(|g| (limit - c.mem).max(0.0) / g / 60.0);
        match minutes_to_limit {
            Some(m) if m <= rules.oom_horizon_minutes => {
                let evidence = format!(
                    "working set {} of {} and growing {}/min: OOM in ~{}",
                    format_bytes(c.mem),
                    format_bytes(limit),
                    format_bytes(growth.unwrap_or(0.0) * 60.0),
                    format_age((m * 60.0) as i64)
                );
                let urgency = rules.oom_horizon_minutes - m;
                add("Memory leak", evidence, scaled(w.memory_leak, urgency, 0.0, rules.oom_horizon_minutes));
            }
            _ if c.mem >= rules.memory_near_limit * limit => {
                let evidence = format!("working set {} of its {} limit", format_bytes(c.mem), format_bytes(limit));
                add(
                    "Memory near limit",
                    evidence,
                    scaled(w.memory_near_limit, c.mem / limit, rules.memory_near_limit, 1.0),
                );
            }
            _ => {}
        }
    }
    if !found.is_empty() {
        board.findings.entry(container_subject(c)).or_default().extend(found);
    }
}

fn node_rules(inputs: &Inputs, rules: &Rules, board: &mut Board) {
    let w = &rules.weights;
    let busy_ratio =
        |node: &NodeFacts| node.cpu_used_m.filter(|_| node.cpu_allocatable_m > 0.0).map(|u| u / node.cpu_allocatable_m);
    let notable = |node: &NodeFacts| {
        node.ready != "True" || !node.pressures.is_empty() || busy_ratio(node).is_some_and(|b| b >= rules.node_cpu_busy)
    };
    if !inputs.nodes.iter().any(notable) {
        return;
    }
    // One pass over the containers, not one per node.
    let mut by_node: HashMap<&str, Vec<&ContainerFacts>> = HashMap::new();
    for c in inputs.containers.iter().filter(|c| !c.init) {
        by_node.entry(c.node).or_default().push(c);
    }
    for node in &inputs.nodes {
        let subject = Subject::Node { name: node.name.to_string() };
        let on_node = || by_node.get(node.name).into_iter().flatten().copied();
        if node.ready != "True" {
            let pods: std::collections::BTreeSet<&str> = on_node().map(|c| c.pod.name.as_str()).collect();
            board.add(
                subject.clone(),
                "Node not ready",
                format!("Ready={}, {} pods on it", node.ready, pods.len()),
                w.node_not_ready,
            );
        }
        for pressure in node.pressures {
            let affected: std::collections::BTreeSet<&str> = on_node()
                .filter(|c| {
                    c.health.severity >= crate::analysis::health::Severity::Warn
                        || c.throttle.is_some_and(|t| t >= rules.cpu_throttled)
                })
                .map(|c| c.pod.name.as_str())
                .collect();
            // Pods its kubelet evicted: the pressure's victims, named on the node, pointing to it.
            let evicted: Vec<&ContainerFacts> = on_node().filter(|c| c.health.word == "Evicted").collect();
            let evicted_pods: std::collections::BTreeSet<&str> = evicted.iter().map(|c| c.pod.name.as_str()).collect();
            let mut evidence = format!("{pressure} on {}", node.name);
            if !evicted_pods.is_empty() {
                let n = evicted_pods.len();
                evidence.push_str(&format!(
                    "; its kubelet evicted {n} {}{}",
                    if n == 1 { "pod" } else { "pods" },
                    named(evicted_pods.iter().map(|p| p.to_string()))
                ));
            }
            let others: Vec<&str> = affected.iter().filter(|p| !evicted_pods.contains(*p)).take(3).copied().collect();
            if !others.is_empty() {
                evidence.push_str(&format!("; affected pods: {}", others.join(", ")));
            }
            for c in evicted {
                let cs = container_subject(c);
                if let Some(findings) = board.findings.get_mut(&cs) {
                    for f in findings.iter_mut() {
                        f.score *= 0.8;
                    }
                    let text = format!("{pressure} on node {}", node.name);
                    findings.push(Finding {
                        verdict: format!("Evicted: see node {}", node.name),
                        evidence: text,
                        score: 0.0,
                    });
                }
            }
            board.add(subject.clone(), format!("Node under {pressure}"), evidence, w.node_pressure);
        }
        let Some(used) = node.cpu_used_m.filter(|_| node.cpu_allocatable_m > 0.0) else { continue };
        let busy = used / node.cpu_allocatable_m;
        if busy < rules.node_cpu_busy {
            continue;
        }
        // The neighbour: the container using the most CPU above its request on this node.
        let burst = |c: &&ContainerFacts| {
            let request = c.resources.cpu_request_m.unwrap_or(0.0).max(1.0);
            c.cpu_m.is_finite() && c.cpu_m >= rules.neighbour_burst * request && c.cpu_m >= 0.2 * node.cpu_allocatable_m
        };
        let noisy = on_node().filter(burst).max_by(|a, b| a.cpu_m.total_cmp(&b.cpu_m).then_with(|| b.pod.cmp(a.pod)));
        let starved: Vec<&ContainerFacts> = on_node()
            .filter(|c| noisy.is_none_or(|n| n.pod != c.pod))
            .filter(|c| c.throttle.is_some_and(|t| t >= rules.cpu_throttled) || c.health.word == "NotReady")
            .collect();
        let node_busy = format!("{} at {} of allocatable CPU", node.name, format_ratio(used / node.cpu_allocatable_m));
        match noisy {
            Some(n) => {
                let request = n.resources.cpu_request_m.unwrap_or(0.0).max(1.0);
                let evidence = format!(
                    "uses {} ({:.0}× its request) on {node_busy}; {} other {} there starved{}",
                    format_cpu_millis(n.cpu_m),
                    n.cpu_m / request,
                    starved.len(),
                    if starved.len() == 1 { "container" } else { "containers" },
                    named(starved.iter().map(|c| format!("{}/{}", c.pod.name, c.container)))
                );
                let score = scaled(w.noisy_neighbour, starved.len() as f64, 0.0, 5.0);
                board.add(container_subject(n), "Noisy neighbour", evidence, score);
                board.add(
                    subject.clone(),
                    "Node CPU saturated",
                    format!("{node_busy}; {}/{} is bursting", n.pod.name, n.container),
                    w.node_busy,
                );
            }
            None => {
                // Who uses it: the biggest consumers there, none of them bursting past its request.
                let mut users: Vec<&ContainerFacts> =
                    on_node().filter(|c| c.cpu_m.is_finite() && c.cpu_m > 0.0).collect();
                users.sort_by(|a, b| b.cpu_m.total_cmp(&a.cpu_m).then_with(|| a.pod.cmp(b.pod)));
                let top = named(
                    users.iter().map(|c| format!("{}/{} {}", c.pod.name, c.container, format_cpu_millis(c.cpu_m))),
                );
                board.add(
                    subject.clone(),
                    "Node CPU saturated",
                    format!("{node_busy}; most used by{}", if top.is_empty() { " its system".into() } else { top }),
                    scaled(w.node_busy, busy, rules.node_cpu_busy, 1.0),
                )
            }
        }
    }
}

/// `: a, b, c (+2 more)` naming up to three; empty for none.
fn named(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    if all.is_empty() {
        return String::new();
    }
    let more = all.len().saturating_sub(3);
    let shown = all[..all.len().min(3)].join(", ");
    if more > 0 { format!(": {shown} (+{more} more)") } else { format!(": {shown}") }
}

/// Latency against the service's own past, or against an absolute bar while it has none.
fn latency_finding(s: &ServiceFacts, rules: &Rules) -> Option<(String, f64)> {
    let p95 = s.now.p95?;
    let floor = rules.latency_floor_ms / 1000.0;
    match s.baseline_p95.filter(|b| *b > 0.0) {
        Some(base) if p95 >= floor && p95 >= rules.latency_vs_baseline * base => {
            let factor = p95 / base;
            let text = format!("p95 {} ({factor:.0}× its baseline {})", format_latency(p95), format_latency(base));
            Some((text, scaled(rules.weights.latency, factor, rules.latency_vs_baseline, 10.0)))
        }
        None if p95 >= rules.latency_absolute_ms / 1000.0 => {
            Some((format!("p95 {} (no baseline yet)", format_latency(p95)), rules.weights.latency))
        }
        _ => None,
    }
}

/// The running (not init) containers of each pod.
fn containers_by_pod<'a>(containers: &'a [ContainerFacts<'a>]) -> HashMap<&'a PodKey, Vec<&'a ContainerFacts<'a>>> {
    let mut containers_of: HashMap<&PodKey, Vec<&ContainerFacts>> = HashMap::new();
    for c in containers.iter().filter(|c| !c.init) {
        containers_of.entry(c.pod).or_default().push(c);
    }
    containers_of
}

fn service_rules<'a>(
    inputs: &Inputs,
    containers_of: &HashMap<&PodKey, Vec<&'a ContainerFacts<'a>>>,
    rules: &Rules,
    board: &mut Board,
) {
    let w = &rules.weights;
    if inputs.services.is_empty() {
        return;
    }
    for s in &inputs.services {
        if s.now.requests < rules.min_requests {
            continue;
        }
        let subject = Subject::Service { name: s.name.clone(), backend: s.backend.to_string() };
        let mut symptoms: Vec<(String, String, f64)> = Vec::new();
        if s.now.error_ratio >= rules.error_ratio {
            let text = format!(
                "{:.0}% 5xx at the gateway ({} of {} in the last minute)",
                s.now.error_ratio * 100.0,
                s.now.server_errors,
                s.now.requests
            );
            symptoms.push(("Errors".into(), text, scaled(w.errors, s.now.error_ratio, rules.error_ratio, 0.5)));
        }
        if let Some((text, score)) = latency_finding(s, rules) {
            symptoms.push(("Slow".into(), text, score));
        }
        let retry_ratio = s.now.retries as f64 / s.now.requests as f64;
        if retry_ratio >= rules.retry_ratio {
            let text = format!(
                "the gateway retried {} of {} requests in the last minute on another upstream ({:.0}%)",
                s.now.retries,
                s.now.requests,
                retry_ratio * 100.0
            );
            symptoms.push(("Upstream retries".into(), text, scaled(w.retries, retry_ratio, rules.retry_ratio, 0.5)));
        }
        // Imbalance: one replica far above its fair share. The replica is what an operator acts
        // on (delete it, fix its session affinity): it ranks first, the service is the context.
        let total_rps: f64 = s.pods.iter().map(|(_, r)| r).sum();
        let mut hot_replica = None;
        if s.pods.len() >= 2 && total_rps > 0.0 {
            let fair = total_rps / s.pods.len() as f64;
            if let Some((pod, rps)) = s.pods.iter().max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(a.0)))
                && *rps >= rules.replica_imbalance * fair
            {
                let text = format!(
                    "{} gets {} of requests across {} replicas ({:.1}× its fair share)",
                    pod.name,
                    format_ratio(rps / total_rps),
                    s.pods.len(),
                    rps / fair
                );
                let score = scaled(w.imbalance, rps / fair, rules.replica_imbalance, s.pods.len() as f64);
                match serving_container(containers_of, pod) {
                    Some(c) => hot_replica = Some((c, *rps, total_rps, fair, score)),
                    None => symptoms.push(("Uneven load".into(), text, score)),
                }
            }
        }
        if let Some((c, rps, total, fair, score)) = hot_replica {
            let saturation = c
                .resources
                .cpu_limit_m
                .filter(|l| *l > 0.0 && c.cpu_m.is_finite())
                .map(|l| format!("; its CPU at {:.0}% of its limit", c.cpu_m / l * 100.0))
                .unwrap_or_default();
            let evidence = format!(
                "{} of {}'s requests ({:.1} of {:.1}/s across {} replicas, {:.1}× its fair share){saturation}",
                format_ratio(rps / total),
                s.name,
                rps,
                total,
                s.pods.len(),
                rps / fair
            );
            board.add(container_subject(c), "Hot replica", evidence, score);
            board.add(
                subject.clone(),
                "Uneven load: see its pod",
                format!(
                    "{} gets {} of its requests across {} replicas",
                    c.pod.name,
                    format_ratio(rps / total),
                    s.pods.len()
                ),
                score * 0.8,
            );
        }
        // One replica flapping while its siblings stay ready: that replica is what to act on
        // (its probe, its node), sooner than the flapping rule alone would say and above a
        // node that is merely busy.
        if let Some((c, spells)) = lone_flapper(s, containers_of, rules) {
            let siblings = s.pods.len() - 1;
            let rps = s.pods.iter().find(|(pod, _)| *pod == c.pod).map_or(0.0, |(_, r)| *r);
            let evidence = format!(
                "went not ready {spells} times in the last 10 minutes while its {siblings} {} stayed ready; each time {} loses it as an endpoint ({rps:.1} of {total_rps:.1}/s before)",
                if siblings == 1 { "sibling" } else { "siblings" },
                s.name
            );
            let cs = container_subject(c);
            if let Some(findings) = board.findings.get_mut(&cs) {
                findings.retain(|f| f.verdict != "Readiness flapping");
            }
            let score = scaled(w.not_ready * 1.2, spells as f64, 2.0, 10.0);
            board.add(cs, "Readiness flapping", evidence, score);
        }
        // Only the new version fails (a rollout in progress, a canary): its pods are what to act
        // on (roll back), from its first requests, before the service's minute crosses a rule.
        // With the service's own errors past the rule too, those pods "explain it" below.
        if let Some(split) = version_split(s, containers_of, inputs.now, rules) {
            let score = scaled(w.errors, split.new_ratio(), rules.error_ratio, 0.5);
            for c in &split.new_pods {
                board.add(container_subject(c), "Errors from the new version", split.evidence(), score);
            }
            if !symptoms.iter().any(|(verdict, ..)| verdict == "Errors") {
                let evidence = format!("only its new version fails: {}", split.evidence());
                board.add(subject.clone(), "Errors after a rollout: see its new pods", evidence, score * 0.8);
            }
        }
        if symptoms.is_empty() {
            continue;
        }
        // Its own pods in trouble (a finding of their own, or simply not serving: starting, not
        // ready, waiting) explain the symptoms: the evidence goes to them and they rank first; the
        // service says where to look.
        let troubled = troubled_containers(s.pods.iter().map(|(pod, _)| *pod), containers_of, board);
        if !troubled.is_empty() {
            for (cs, _) in &troubled {
                for (verdict, text, score) in &symptoms {
                    board.add(cs.clone(), verdict.clone(), format!("{text} for {}", s.name), score * 0.5);
                }
            }
            let names: Vec<String> = troubled.iter().take(3).map(|(cs, v)| format!("{} ({v})", cs.label())).collect();
            for (verdict, text, score) in symptoms {
                let evidence = format!("{text}; its own pods explain it: {}", names.join(", "));
                board.add(subject.clone(), format!("{verdict}: see its pods"), evidence, score * 0.8);
            }
            continue;
        }
        // Healthy, idle pods: the time is spent elsewhere.
        let pods: Vec<&ContainerFacts> =
            s.pods.iter().flat_map(|(pod, _)| containers_of.get(pod).into_iter().flatten().copied()).collect();
        let idle = pods
            .iter()
            .filter_map(|c| Some(c.cpu_m / c.resources.cpu_limit_m.filter(|l| *l > 0.0)?))
            .filter(|r| r.is_finite())
            .reduce(f64::max);
        let newest = s.pods.iter().filter_map(|(pod, _)| containers_of.get(pod)?.first()?.created).max();
        // Most of the time at the gateway itself: the gateway's finding explains it.
        let at_gateway = s.now.overhead_p95.zip(s.now.p95).filter(|(o, p)| *p > 0.0 && *o >= 0.5 * *p);
        let chain = if at_gateway.is_none() { slow_chain(&s.name, s.now.p95, &inputs.calls) } else { Vec::new() };
        for (verdict, text, mut score) in symptoms {
            let mut evidence = text;
            let mut verdict = verdict;
            if verdict == "Slow" && !chain.is_empty() {
                blame_the_chain(s, &chain, &evidence, score, containers_of, board);
                let deepest = chain.last().map_or("", |c| c.callee.as_str());
                verdict = format!("Slow: waits on {}", short_name(deepest, &s.name));
                evidence.push_str(&format!("; {}", chain_evidence(&s.name, &chain)));
                score *= 0.8;
            } else if verdict == "Slow" {
                if let Some((overhead, _)) = at_gateway {
                    verdict = "Slow at the gateway".into();
                    evidence.push_str(&format!(
                        "; {} of it is the gateway's own time (total − upstream): see the gateway",
                        format_latency(overhead)
                    ));
                    score *= 0.5;
                } else if let Some(r) = idle.filter(|r| *r < 0.5) {
                    verdict = "Slow, pods idle".into();
                    evidence.push_str(&format!(
                        "; its pods are healthy and idle (CPU at most {:.0}% of limit): a downstream dependency or the network",
                        r * 100.0
                    ));
                }
            } else if verdict == "Errors"
                && let Some(age) = newest.map(|n| inputs.now - n).filter(|a| *a <= rules.rollout_minutes * 60)
            {
                verdict = "Errors after a rollout".into();
                evidence.push_str(&format!("; its newest pod is {} old", format_age(age)));
            }
            board.add(subject.clone(), verdict, evidence, score);
        }
    }
}

/// The containers of `pods` in trouble: a finding of their own (its strongest verdict), or not
/// serving (starting, not ready, waiting: their health word). Sorted: the pods come in no
/// particular order and the evidence must not depend on it.
fn troubled_containers<'a>(
    pods: impl Iterator<Item = &'a PodKey>,
    containers_of: &HashMap<&PodKey, Vec<&ContainerFacts>>,
    board: &Board,
) -> Vec<(Subject, String)> {
    let mut troubled: Vec<(Subject, String)> = pods
        .flat_map(|pod| containers_of.get(pod).into_iter().flatten())
        .filter_map(|c| {
            let cs = container_subject(c);
            let strongest = board.findings.get(&cs).and_then(|f| f.iter().max_by(|a, b| a.score.total_cmp(&b.score)));
            let verdict = match strongest {
                Some(f) => f.verdict.clone(),
                None if c.health.severity >= crate::analysis::health::Severity::Warn => c.health.word.clone(),
                None => return None,
            };
            Some((cs, verdict))
        })
        .collect();
    troubled.sort();
    troubled.dedup();
    troubled
}

/// Where a slow service's time goes, hop by hop through the calls its mesh logged: from the
/// service, the call that takes at least half its p95 (the slowest, if several), then the same
/// from that callee, until no call holds the time. Empty when no call explains it.
fn slow_chain<'c, 'a>(service: &str, p95: Option<f64>, calls: &'c [CallFacts<'a>]) -> Vec<&'c CallFacts<'a>> {
    let mut chain: Vec<&CallFacts> = Vec::new();
    let (mut at, mut time) = (service, p95.unwrap_or(0.0));
    while time > 0.0 && chain.len() < 8 {
        let next = calls
            .iter()
            .filter(|c| c.caller == at && c.now.p95.is_some_and(|p| p >= 0.5 * time))
            // Calls never loop in a request, but a bad join could: never visit a service twice.
            .filter(|c| c.callee != service && !chain.iter().any(|hop| hop.callee == c.callee))
            .max_by(|a, b| a.now.p95.unwrap_or(0.0).total_cmp(&b.now.p95.unwrap_or(0.0)).then(b.callee.cmp(&a.callee)));
        let Some(hop) = next else { break };
        chain.push(hop);
        at = &hop.callee;
        time = hop.now.p95.unwrap_or(0.0);
    }
    chain
}

/// A service as written in a chain: without its namespace when it is the first service's.
fn short_name<'a>(service: &'a str, first: &str) -> &'a str {
    match (service.split_once('/'), first.split_once('/')) {
        (Some((ns, name)), Some((first_ns, _))) if ns == first_ns => name,
        _ => service,
    }
}

/// `payment → bank-adapter → fraud-check: 1.1 s of its p95 in fraud-check`
fn chain_evidence(service: &str, chain: &[&CallFacts]) -> String {
    let mut path = vec![short_name(service, service)];
    path.extend(chain.iter().map(|hop| short_name(&hop.callee, service)));
    let deepest = chain.last().map_or(service, |hop| short_name(&hop.callee, service));
    let time = chain.last().and_then(|hop| hop.now.p95).map(format_latency).unwrap_or_default();
    format!("{}: p95 {time} waiting on {deepest}", path.join(" → "))
}

/// The end of a slow service's chain is what to act on: its pods in trouble (CPU-starved,
/// crash-looping…) rank above the service, with the path as evidence; pods healthy and idle
/// there make the deepest service itself the finding (what it waits on is outside the mesh).
fn blame_the_chain(
    s: &ServiceFacts,
    chain: &[&CallFacts],
    symptom: &str,
    score: f64,
    containers_of: &HashMap<&PodKey, Vec<&ContainerFacts>>,
    board: &mut Board,
) {
    let Some(deepest) = chain.last() else { return };
    let path = chain_evidence(&s.name, chain);
    let troubled = troubled_containers(deepest.callee_pods.iter().copied(), containers_of, board);
    let name = short_name(&deepest.callee, &s.name);
    let caller = short_name(&s.name, &s.name);
    if troubled.is_empty() {
        let evidence = format!(
            "{path}; {caller}: {symptom}; {name}'s pods are healthy: what it waits on is outside the mesh, or the network"
        );
        let subject = Subject::Service { name: deepest.callee.clone(), backend: deepest.callee.clone() };
        board.add(subject, format!("Slow, holds up {caller}"), evidence, (score * 1.05).min(100.0));
        return;
    }
    for (cs, verdict) in troubled {
        let evidence = format!("{path}, whose pods are {verdict}; {caller}: {symptom}");
        board.add(cs, format!("Holds up {caller}"), evidence, (score * 1.1).min(100.0));
    }
}

/// Fewer replicas for the same load: once the pods left are in trouble (CPU-starved, not
/// ready…), the drop is the cause and the workload ranks above them; while none is, nothing.
/// Only where the gateway shows the load stayed: a scale-in after the load fell is the point.
fn capacity_rules(inputs: &Inputs, containers_of: &HashMap<&PodKey, Vec<&ContainerFacts>>, board: &mut Board) {
    if inputs.capacity.is_empty() {
        return;
    }
    for drop in &inputs.capacity {
        let (Some(before), Some(now)) = (drop.load_before, drop.load_now) else { continue };
        if before <= 0.0 || now < 0.8 * before {
            continue;
        }
        let troubled = troubled_containers(drop.pods.iter().copied(), containers_of, board);
        let strongest =
            troubled.iter().filter_map(|(cs, _)| Some(combined_score(board.findings.get(cs)?))).reduce(f64::max);
        let Some(strongest) = strongest else { continue };
        let names: Vec<String> = troubled
            .iter()
            .take(3)
            .map(|(cs, verdict)| match cs {
                Subject::Container { pod, container, .. } => format!("{pod}/{container} ({verdict})"),
                other => format!("{} ({verdict})", other.label()),
            })
            .collect();
        let evidence = format!(
            "{} → {} replicas {} ago while its load stayed ({before:.1}/s before, {now:.1}/s now); the pods left are in trouble: {}",
            drop.from,
            drop.to,
            format_age(inputs.now - drop.at),
            names.join(", ")
        );
        let subject = Subject::Workload { namespace: drop.namespace.clone(), workload: drop.workload.clone() };
        // The pods left are the drop's victims: they rank below it and say where to look.
        let label = subject.label();
        for (cs, _) in &troubled {
            if let Some(findings) = board.findings.get_mut(cs) {
                for f in findings.iter_mut() {
                    f.score *= 0.85;
                }
                let text = format!(
                    "{label} fell from {} to {} replicas {} ago",
                    drop.from,
                    drop.to,
                    format_age(inputs.now - drop.at)
                );
                findings.push(Finding {
                    verdict: format!("Short of replicas: see {label}"),
                    evidence: text,
                    score: 0.0,
                });
            }
        }
        board.add(subject, "Replicas fell", evidence, strongest);
    }
}

/// The serving container of the one replica of a service that went not ready at least twice in
/// the last minutes while every other replica stayed ready, and how often.
fn lone_flapper<'a>(
    s: &ServiceFacts,
    containers_of: &HashMap<&PodKey, Vec<&'a ContainerFacts<'a>>>,
    rules: &Rules,
) -> Option<(&'a ContainerFacts<'a>, u32)> {
    if s.pods.len() < 2 {
        return None;
    }
    let spells: Vec<(&ContainerFacts, u32)> = s
        .pods
        .iter()
        .filter_map(|(pod, _)| {
            let c = serving_container(containers_of, pod)?;
            Some((c, containers_of.get(*pod)?.iter().map(|c| c.not_ready_spells).max().unwrap_or(0)))
        })
        .collect();
    let flapping: Vec<&(&ContainerFacts, u32)> = spells.iter().filter(|(_, n)| *n >= 2).collect();
    match flapping.as_slice() {
        [(c, n)] if spells.iter().filter(|(_, n)| *n > 0).count() == 1 && *n >= rules.readiness_flaps.min(2) => {
            Some((c, *n))
        }
        _ => None,
    }
}

/// The container of a pod that serves its requests: its busiest (a sidecar beside it is not),
/// ties by name so the choice never depends on input order.
fn serving_container<'a>(
    containers_of: &HashMap<&PodKey, Vec<&'a ContainerFacts<'a>>>,
    pod: &PodKey,
) -> Option<&'a ContainerFacts<'a>> {
    containers_of
        .get(pod)?
        .iter()
        .copied()
        .max_by(|a, b| a.cpu_m.total_cmp(&b.cpu_m).then(b.container.cmp(a.container)))
}

/// A Deployment pod's ReplicaSet: its name without the pod's own suffix
/// (`catalog-7d9f8c6b5-x2x9z` → `catalog-7d9f8c6b5`); a StatefulSet's `search-0` has none.
fn replica_set_of(pod: &str) -> Option<&str> {
    let (rs, _) = pod.rsplit_once('-')?;
    rs.contains('-').then_some(rs)
}

/// A service whose newest ReplicaSet (a rollout in progress, a canary) answers with errors the
/// older one does not, over the same minute.
struct VersionSplit<'a> {
    new_rs: &'a str,
    new_pods: Vec<&'a ContainerFacts<'a>>,
    /// (requests, 5xx) of the new and of the old pods.
    new: (u64, u64),
    old: (u64, u64),
    old_sets: Vec<&'a str>,
    age: i64,
}

impl VersionSplit<'_> {
    fn new_ratio(&self) -> f64 {
        self.new.1 as f64 / self.new.0.max(1) as f64
    }

    fn evidence(&self) -> String {
        let ratio = |(r, e): (u64, u64)| if r == 0 { 0.0 } else { e as f64 / r as f64 };
        format!(
            "ReplicaSet {} (new, {} pod{}, {} old): {:.0}% 5xx ({} of {} in the last minute) against {:.0}% for {} ({} of {}) over the same minute",
            self.new_rs,
            self.new_pods.len(),
            if self.new_pods.len() == 1 { "" } else { "s" },
            format_age(self.age),
            ratio(self.new) * 100.0,
            self.new.1,
            self.new.0,
            ratio(self.old) * 100.0,
            self.old_sets.join(", "),
            self.old.1,
            self.old.0
        )
    }
}

fn version_split<'a>(
    s: &'a ServiceFacts<'a>,
    containers_of: &HashMap<&PodKey, Vec<&'a ContainerFacts<'a>>>,
    now: UnixSecs,
    rules: &Rules,
) -> Option<VersionSplit<'a>> {
    // Per ReplicaSet: requests, 5xx, its newest pod's creation, its serving containers.
    let mut sets: BTreeMap<&str, (u64, u64, UnixSecs, Vec<&ContainerFacts>)> = BTreeMap::new();
    for (pod, requests, errors) in &s.pod_errors {
        let Some(rs) = replica_set_of(&pod.name) else { continue };
        let Some(serving) = serving_container(containers_of, pod) else { continue };
        let entry = sets.entry(rs).or_insert((0, 0, i64::MIN, Vec::new()));
        entry.0 += requests;
        entry.1 += errors;
        entry.2 = entry.2.max(serving.created.unwrap_or(i64::MIN));
        entry.3.push(serving);
    }
    if sets.len() < 2 {
        return None;
    }
    let (&new_rs, _) = sets.iter().max_by_key(|(rs, v)| (v.2, *rs))?;
    let (requests, errors, created, new_pods) = sets.remove(new_rs)?;
    let age = now - created;
    let old = sets.values().fold((0, 0), |(r, e), v| (r + v.0, e + v.1));
    let ratio = |(r, e): (u64, u64)| if r == 0 { 0.0 } else { e as f64 / r as f64 };
    let (new_ratio, old_ratio) = (ratio((requests, errors)), ratio(old));
    let fails_alone =
        requests >= rules.min_requests && old.0 > 0 && new_ratio >= rules.error_ratio && new_ratio >= 3.0 * old_ratio;
    (fails_alone && age <= rules.rollout_minutes * 60).then(|| VersionSplit {
        new_rs,
        new_pods,
        new: (requests, errors),
        old,
        old_sets: sets.keys().copied().collect(),
        age,
    })
}

/// A consumer that falls behind: the backlog grows for longer than a burst, so events arrive ever
/// later and the gateway never sees it.
fn queue_rules(inputs: &Inputs, rules: &Rules, board: &mut Board) {
    for q in &inputs.queues {
        let s = q.stats;
        let Some(since) = s.growing_since else { continue };
        let growing_for = inputs.now - since;
        if growing_for < rules.queue_growing_secs || s.backlog < rules.queue_min_backlog {
            continue;
        }
        let rates = match (s.publish_rate, s.ack_rate) {
            (Some(p), Some(a)) => format!(" (in {p:.0}/s, acknowledged {a:.0}/s)"),
            _ => String::new(),
        };
        let who = match (q.consumers.is_empty(), s.consumers) {
            (false, _) => format!("; consumed by {}", q.consumers.join(", ")),
            (true, Some(n)) if n < 1.0 => "; no consumer is connected".to_string(),
            (true, _) => String::new(),
        };
        let evidence = format!(
            "backlog {:.0} growing {:+.0}/s for {}{rates}{who}",
            s.backlog,
            s.backlog_per_sec,
            format_age(growing_for)
        );
        let strong = 10.0 * rules.queue_growing_secs as f64;
        let score = scaled(rules.weights.consumer_lag, growing_for as f64, rules.queue_growing_secs as f64, strong);
        board.add(Subject::Queue { name: q.key.label() }, "Consumer falling behind", evidence, score);
    }
}

fn gateway_rules(inputs: &Inputs, rules: &Rules, board: &mut Board) {
    let Some((summary, pods)) = &inputs.gateway else { return };
    if summary.requests < rules.min_requests {
        return;
    }
    let Some(overhead) = summary.overhead_p95 else { return };
    let threshold = rules.gateway_overhead_ms / 1000.0;
    if overhead < threshold {
        return;
    }
    let share =
        summary.upstream_share.map(|u| format!(" ({:.0}% of request time)", (1.0 - u) * 100.0)).unwrap_or_default();
    let evidence = format!("the gateway adds {} at p95 (total − upstream){share}", format_latency(overhead));
    let busy: Vec<String> = inputs
        .containers
        .iter()
        .filter(|c| pods.contains(&c.pod))
        .filter(|c| {
            c.throttle.is_some_and(|t| t >= rules.cpu_throttled)
                || c.resources.cpu_limit_m.is_some_and(|l| c.cpu_m >= rules.cpu_at_limit * l)
        })
        .map(|c| c.pod.name.clone())
        .collect();
    let score = scaled(rules.weights.gateway_overhead, overhead, threshold, 10.0 * threshold);
    board.add(Subject::Gateway, "Gateway overhead", evidence, score);
    // Its own pods at their CPU ceiling explain the overhead: one finding, on the gateway.
    if !busy.is_empty() {
        let evidence = format!("its pods are CPU-bound: {}", busy.join(", "));
        board.add(Subject::Gateway, "Gateway CPU-bound", evidence, rules.weights.cpu_starved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::health::Severity;

    const NOW: UnixSecs = 1_700_000_000;

    struct Owned {
        pods: Vec<PodKey>,
        health: Vec<Health>,
        resources: Resources,
    }

    fn owned(n: usize) -> Owned {
        Owned {
            pods: (0..n).map(|i| PodKey::new("shop", format!("payment-{i}"))).collect(),
            health: vec![Health { severity: Severity::Good, word: "Running".into(), detail: None }; n],
            resources: Resources {
                cpu_request_m: Some(100.0),
                cpu_limit_m: Some(500.0),
                mem_request: Some(128.0 * 1048576.0),
                mem_limit: Some(256.0 * 1048576.0),
            },
        }
    }

    fn facts(o: &Owned, i: usize) -> ContainerFacts<'_> {
        ContainerFacts {
            pod: &o.pods[i],
            container: "app",
            init: false,
            node: "node-a",
            health: &o.health[i],
            restarts_1h: 0,
            last_reason: None,
            resources: &o.resources,
            cpu_m: 50.0,
            mem: 100.0 * 1048576.0,
            throttle: Some(0.0),
            mem_growth: None,
            created: Some(NOW - 86_400),
            not_ready_spells: 0,
            oom_kills: 0,
        }
    }

    /// node-a with every allocatable millicore in use and no pressure.
    fn node_a_at_full_cpu() -> NodeFacts<'static> {
        NodeFacts { name: "node-a", ready: "True", pressures: &[], cpu_used_m: Some(3900.0), cpu_allocatable_m: 3900.0 }
    }

    fn inputs(containers: Vec<ContainerFacts<'_>>) -> Inputs<'_> {
        Inputs {
            now: NOW,
            containers,
            services: vec![],
            nodes: vec![],
            gateway: None,
            queues: vec![],
            calls: vec![],
            capacity: vec![],
        }
    }

    fn summary(requests: u64, errors: u64, p95: f64) -> Summary {
        Summary {
            requests,
            rps: requests as f64 / 60.0,
            error_ratio: errors as f64 / requests as f64,
            server_errors: errors,
            p50: Some(p95 / 2.0),
            p95: Some(p95),
            p99: Some(p95 * 1.2),
            overhead_p95: Some(0.001),
            upstream_share: Some(0.99),
            ..Summary::default()
        }
    }

    fn top(inputs: &Inputs) -> Hotspot {
        rank(inputs, &Rules::default()).into_iter().next().expect("a hotspot")
    }

    #[test]
    fn a_backlog_growing_longer_than_a_burst_is_a_lagging_consumer() {
        use crate::model::broker::{Direction, QueueKey, QueueStats};
        let key = QueueKey { broker: "rabbitmq".into(), queue: "order-events".into(), group: String::new() };
        let stats = |growing_for: i64, backlog: f64| QueueStats {
            backlog,
            unacked: Some(1.0),
            consumers: Some(1.0),
            publish_rate: Some(30.0),
            ack_rate: Some(5.0),
            redelivery_rate: None,
            dead_letter_rate: None,
            direction: Direction::Growing,
            backlog_per_sec: 25.0,
            growing_since: Some(NOW - growing_for),
            drain_secs: None,
            clients: Default::default(),
        };
        let rules = Rules::default();
        let run = |s: &QueueStats| {
            let mut i = inputs(vec![]);
            i.queues = vec![QueueFacts { key: &key, stats: s, consumers: vec!["shop/event-consumer-abc".into()] }];
            rank(&i, &rules)
        };
        assert!(run(&stats(60, 5_000.0)).is_empty(), "a one-minute burst is what queues are for");
        assert!(run(&stats(600, 50.0)).is_empty(), "a handful of messages is no backlog");
        let ranked = run(&stats(600, 5_000.0));
        assert_eq!(ranked[0].subject.label(), "queue rabbitmq/order-events");
        assert_eq!(ranked[0].verdict(), "Consumer falling behind");
        assert_eq!(
            ranked[0].evidence()[0],
            "backlog 5000 growing +25/s for 10m (in 30/s, acknowledged 5/s); consumed by shop/event-consumer-abc"
        );
        assert!(run(&stats(1_800, 5_000.0))[0].score > ranked[0].score, "longer lag, stronger finding");
    }

    #[test]
    fn healthy_containers_are_no_hotspot() {
        let o = owned(3);
        assert!(rank(&inputs((0..3).map(|i| facts(&o, i)).collect()), &Rules::default()).is_empty());
    }

    #[test]
    fn throttled_container_is_cpu_starved_with_the_numbers() {
        let o = owned(1);
        let mut c = facts(&o, 0);
        c.throttle = Some(0.62);
        c.cpu_m = 480.0;
        let h = top(&inputs(vec![c]));
        assert_eq!(h.subject.label(), "shop/payment-0/app");
        assert_eq!(h.summary(), "CPU-starved: throttled 62% of periods at 480m of a 500m limit");
        assert!(h.score > 55, "{}", h.score);
        // Below the mixin's 25 %: nothing.
        let mut c = facts(&o, 0);
        c.throttle = Some(0.2);
        assert!(rank(&inputs(vec![c]), &Rules::default()).is_empty());
    }

    #[test]
    fn without_throttling_data_usage_at_the_limit_counts() {
        let o = owned(1);
        let mut c = facts(&o, 0);
        c.throttle = None;
        c.cpu_m = 470.0;
        assert_eq!(top(&inputs(vec![c])).summary(), "CPU-starved: using 94% of its 500m CPU limit");
    }

    #[test]
    fn a_leak_says_when_it_will_be_killed() {
        let o = owned(1);
        let mut c = facts(&o, 0);
        c.mem = 156.0 * 1048576.0;
        c.mem_growth = Some(10.0 * 1048576.0 / 60.0);
        let h = top(&inputs(vec![c.clone()]));
        assert_eq!(h.verdict(), "Memory leak");
        assert_eq!(h.evidence()[0], "working set 156Mi of 256Mi and growing 10Mi/min: OOM in ~10m");
        // Slow growth beyond the horizon is not a leak worth a hotspot; near the limit still is.
        c.mem_growth = Some(1024.0);
        assert!(rank(&inputs(vec![c.clone()]), &Rules::default()).is_empty());
        c.mem = 240.0 * 1048576.0;
        assert_eq!(top(&inputs(vec![c])).verdict(), "Memory near limit");
    }

    /// Seen outside the suite: a crash-looping container kept "growing 28.9Mi/min: OOM in ~48s"
    /// from its last run's samples.
    #[test]
    fn a_container_that_is_not_running_gets_no_memory_forecast() {
        let mut o = owned(1);
        o.health[0] = Health {
            severity: Severity::Bad,
            word: "CrashLoop".into(),
            detail: Some("back-off after OOMKilled (exit 137)".into()),
        };
        let mut c = facts(&o, 0);
        c.mem = 250.0 * 1048576.0;
        c.mem_growth = Some(28.9 * 1048576.0 / 60.0);
        c.restarts_1h = 3;
        let ranked = rank(&inputs(vec![c]), &Rules::default());
        assert_eq!(ranked[0].verdict(), "Crash-looping");
        let all: Vec<String> = ranked.iter().flat_map(|h| h.evidence().into_iter().map(String::from)).collect();
        assert!(all.iter().all(|e| !e.contains("OOM in") && !e.contains("working set")), "{all:?}");
    }

    /// A saturated node without one bursting neighbour says who uses its CPU.
    #[test]
    fn node_cpu_saturation_names_its_biggest_users() {
        let mut o = owned(4);
        // Each within its request: no one is a noisy neighbour, the node is simply full.
        o.resources.cpu_request_m = Some(1000.0);
        o.resources.cpu_limit_m = None;
        let mut input = inputs(
            (0..4)
                .map(|i| {
                    let mut c = facts(&o, i);
                    c.cpu_m = 900.0 + 10.0 * i as f64;
                    c
                })
                .collect(),
        );
        input.nodes.push(node_a_at_full_cpu());
        let ranked = rank(&input, &Rules::default());
        let node = ranked.iter().find(|h| h.subject.label() == "node node-a").expect("the node ranked");
        assert_eq!(
            node.evidence()[0],
            "node-a at 100% of allocatable CPU; most used by: payment-3/app 930m, payment-2/app 920m, payment-1/app 910m (+1 more)"
        );
    }

    #[test]
    fn health_words_become_verdicts() {
        for (word, detail, last, verdict) in [
            ("CrashLoop", "back-off after Error (exit 1)", None, "Crash-looping"),
            ("ImagePull", "Back-off pulling image", None, "Image pull failing"),
            ("ConfigError", "secret \"db\" not found", None, "Cannot start"),
            ("Unschedulable", "0/3 nodes are available: 3 Insufficient cpu.", None, "Pending: fits no node"),
            ("NotReady", "", None, "Not ready"),
            ("OOMKilled", "exit 137", Some("OOMKilled"), "OOMKilled"),
        ] {
            let mut o = owned(1);
            o.health[0] = Health { severity: Severity::Bad, word: word.into(), detail: Some(detail.into()) };
            let mut c = facts(&o, 0);
            c.last_reason = last;
            c.restarts_1h = 1;
            assert_eq!(top(&inputs(vec![c])).verdict(), verdict, "{word}");
        }
        let mut o = owned(1);
        o.health[0] = Health { severity: Severity::Bad, word: "CrashLoop".into(), detail: None };
        let mut c = facts(&o, 0);
        c.last_reason = Some("OOMKilled");
        c.restarts_1h = 7;
        assert_eq!(top(&inputs(vec![c])).evidence()[0], "OOMKilled at its 256Mi limit; 7 restarts in the last hour");
    }

    #[test]
    fn oom_kills_that_left_the_container_running_are_named() {
        let o = owned(1);
        let mut c = facts(&o, 0);
        c.oom_kills = 3;
        c.mem = 250.0 * 1024.0 * 1024.0;
        let h = top(&inputs(vec![c.clone()]));
        assert_eq!(h.verdict(), "Processes OOM-killed");
        assert_eq!(
            h.evidence()[0],
            "the kernel OOM-killed a process 3 times in the last 15 min, the container kept running; \
             working set 250Mi of its 256Mi limit"
        );
        // When the container itself died of it, the OOMKilled finding says so: no second one.
        c.last_reason = Some("OOMKilled");
        c.restarts_1h = 1;
        let h = top(&inputs(vec![c]));
        assert_eq!(h.verdict(), "OOMKilled");
        assert!(h.findings.iter().all(|f| f.verdict != "Processes OOM-killed"), "{h:?}");
    }

    #[test]
    fn readiness_flapping() {
        let o = owned(1);
        let mut c = facts(&o, 0);
        c.not_ready_spells = 4;
        assert_eq!(
            top(&inputs(vec![c.clone()])).summary(),
            "Readiness flapping: went not ready 4 times in the last 10 minutes"
        );
        c.not_ready_spells = 2;
        assert!(rank(&inputs(vec![c]), &Rules::default()).is_empty());
    }

    #[test]
    fn one_replica_flapping_among_steady_siblings_ranks_above_a_busy_node() {
        let o = owned(3);
        let mut flapper = facts(&o, 0);
        flapper.not_ready_spells = 2;
        let mut input = inputs(vec![flapper, facts(&o, 1), facts(&o, 2)]);
        input.nodes.push(node_a_at_full_cpu());
        input.services.push(ServiceFacts {
            name: "shop/payment".into(),
            backend: "shop-payment-80",
            now: summary(600, 0, 0.05),
            baseline_p95: Some(0.05),
            pods: vec![(&o.pods[0], 3.0), (&o.pods[1], 3.5), (&o.pods[2], 3.5)],
            pod_errors: vec![],
        });
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject.label(), "shop/payment-0/app", "{ranked:#?}");
        assert_eq!(
            ranked[0].summary(),
            "Readiness flapping: went not ready 2 times in the last 10 minutes while its 2 siblings stayed ready; each time shop/payment loses it as an endpoint (3.0 of 10.0/s before)"
        );
        assert_eq!(ranked[1].subject.label(), "node node-a");
        // Two replicas flapping: a wider cause (the node, the probe's dependency), not one pod.
        input.containers[1].not_ready_spells = 2;
        assert!(rank(&input, &Rules::default()).iter().all(|h| h.verdict() != "Readiness flapping"));
    }

    #[test]
    fn a_node_under_disk_pressure_names_the_pods_it_evicted_and_ranks_above_them() {
        let mut o = owned(3);
        let message = "The node was low on resource: ephemeral-storage. ";
        for h in &mut o.health[..2] {
            *h = Health { severity: Severity::Warn, word: "Evicted".into(), detail: Some(message.into()) };
        }
        let pressures = vec!["DiskPressure".to_string()];
        let mut input = inputs(vec![facts(&o, 0), facts(&o, 1), facts(&o, 2)]);
        input.nodes.push(NodeFacts {
            name: "node-a",
            ready: "True",
            pressures: &pressures,
            cpu_used_m: Some(1000.0),
            cpu_allocatable_m: 3900.0,
        });
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject.label(), "node node-a", "{ranked:#?}");
        assert_eq!(
            ranked[0].summary(),
            "Node under DiskPressure: DiskPressure on node-a; its kubelet evicted 2 pods: payment-0, payment-1"
        );
        let evicted = &ranked[1];
        assert_eq!(evicted.verdict(), "Evicted");
        assert_eq!(
            evicted.evidence(),
            vec![
                "by its node's kubelet: The node was low on resource: ephemeral-storage.",
                "DiskPressure on node node-a"
            ]
        );
        assert_eq!(evicted.findings[1].verdict, "Evicted: see node node-a");
    }

    #[test]
    fn frequent_restarts_of_a_running_container() {
        let o = owned(1);
        let mut c = facts(&o, 0);
        c.restarts_1h = 5;
        c.last_reason = Some("Error");
        assert_eq!(top(&inputs(vec![c.clone()])).summary(), "Restarting: 5 restarts in the last hour, last Error");
        c.restarts_1h = 2;
        assert!(rank(&inputs(vec![c.clone()]), &Rules::default()).is_empty());
        // Not ready again after two crashes: the loop goes on between back-offs.
        let mut o = owned(1);
        o.health[0] = Health { severity: Severity::Warn, word: "Starting".into(), detail: None };
        let mut between = facts(&o, 0);
        between.restarts_1h = 2;
        between.last_reason = Some("Error");
        assert_eq!(
            top(&inputs(vec![between])).summary(),
            "Crash-looping: running again after Error, not ready; 2 restarts in the last hour"
        );
        // One OOM kill is enough to see.
        c.restarts_1h = 1;
        c.last_reason = Some("OOMKilled");
        assert_eq!(top(&inputs(vec![c])).summary(), "OOMKilled: OOMKilled at its 256Mi limit once in the last hour");
    }

    #[test]
    fn a_slow_service_with_saturated_pods_ranks_the_pods_first() {
        let o = owned(2);
        let mut starved = facts(&o, 0);
        starved.throttle = Some(0.6);
        let mut input = inputs(vec![starved, facts(&o, 1)]);
        input.services.push(ServiceFacts {
            name: "shop/payment".into(),
            backend: "shop-payment-80",
            now: summary(600, 72, 1.8),
            baseline_p95: Some(0.36),
            pods: vec![(&o.pods[0], 5.0), (&o.pods[1], 5.0)],
            pod_errors: vec![],
        });
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject.label(), "shop/payment-0/app");
        assert_eq!(ranked[0].verdict(), "CPU-starved");
        let all = ranked[0].evidence().join("; ");
        assert!(all.contains("p95 1.8s (5× its baseline 360ms) for shop/payment"), "{all}");
        assert!(all.contains("12% 5xx at the gateway"), "{all}");
        assert_eq!(ranked[1].subject.label(), "svc shop/payment");
        assert_eq!(ranked[1].verdict(), "Slow: see its pods");
        assert!(
            ranked[1]
                .evidence()
                .iter()
                .all(|e| e.ends_with("its own pods explain it: shop/payment-0/app (CPU-starved)"))
        );
    }

    #[test]
    fn a_failing_service_whose_pod_is_not_serving_points_at_that_pod() {
        let mut o = owned(1);
        o.health[0] = Health { severity: Severity::Warn, word: "Starting".into(), detail: None };
        let mut input = inputs(vec![facts(&o, 0)]);
        input.services.push(ServiceFacts {
            name: "shop/notification".into(),
            backend: "shop-notification-80",
            now: summary(84, 84, 0.0),
            baseline_p95: None,
            pods: vec![(&o.pods[0], 0.0)],
            pod_errors: vec![],
        });
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject.label(), "svc shop/notification");
        assert!(
            ranked[0].evidence()[0].ends_with("its own pods explain it: shop/payment-0/app (Starting)"),
            "{ranked:#?}"
        );
        assert_eq!(
            ranked[1].summary(),
            "Errors: 100% 5xx at the gateway (84 of 84 in the last minute) for shop/notification"
        );
    }

    #[test]
    fn a_slow_service_with_idle_pods_points_downstream() {
        let o = owned(2);
        let mut input = inputs(vec![facts(&o, 0), facts(&o, 1)]);
        input.services.push(ServiceFacts {
            name: "shop/order".into(),
            backend: "shop-order-80",
            now: summary(600, 0, 0.9),
            baseline_p95: Some(0.05),
            pods: vec![(&o.pods[0], 5.0), (&o.pods[1], 5.0)],
            pod_errors: vec![],
        });
        let h = top(&input);
        assert_eq!(h.subject.label(), "svc shop/order");
        assert_eq!(h.verdict(), "Slow, pods idle");
        assert!(h.evidence()[0].contains("CPU at most 10% of limit): a downstream dependency"), "{}", h.evidence()[0]);
        // Too few requests: noise, not a hotspot.
        input.services[0].now = summary(10, 0, 0.9);
        assert!(rank(&input, &Rules::default()).is_empty());
        // Without a baseline, only an absolutely slow p95 counts.
        input.services[0].now = summary(600, 0, 0.9);
        input.services[0].baseline_p95 = None;
        assert!(rank(&input, &Rules::default()).is_empty());
        input.services[0].now = summary(600, 0, 1.5);
        assert_eq!(top(&input).evidence()[0].split(';').next(), Some("p95 1.5s (no baseline yet)"));
    }

    /// Seen on a fault outside the suite: payment slow "pods idle" ranked above the CPU-starved
    /// pods two calls below it that cause it. The mesh's calls lead there.
    #[test]
    fn a_slow_service_is_traced_through_its_calls_to_the_starved_pods_at_the_end() {
        let o = owned(4);
        let mut starved = facts(&o, 3);
        starved.cpu_m = 495.0;
        starved.throttle = Some(0.6);
        let mut input = inputs(vec![facts(&o, 0), facts(&o, 1), facts(&o, 2), starved]);
        input.services.push(ServiceFacts {
            name: "shop/payment".into(),
            backend: "shop-payment-80",
            now: summary(600, 0, 1.2),
            baseline_p95: Some(0.1),
            pods: vec![(&o.pods[0], 5.0), (&o.pods[1], 5.0)],
            pod_errors: vec![],
        });
        let call = |caller: &str, callee: &str, p95: f64, pods: Vec<&'static PodKey>| CallFacts {
            caller: caller.into(),
            callee: callee.into(),
            now: Summary { requests: 600, p95: Some(p95), ..Summary::default() },
            callee_pods: pods,
        };
        let pods: &'static [PodKey] = Box::leak(o.pods.clone().into_boxed_slice());
        input.calls = vec![
            call("shop/payment", "shop/bank-adapter", 1.15, vec![&pods[2]]),
            // A quick call beside the slow one is not the way.
            call("shop/payment", "shop/ledger", 0.02, vec![]),
            call("shop/bank-adapter", "shop/fraud-check", 1.1, vec![&pods[3]]),
        ];
        let ranked = rank(&input, &Rules::default());
        let labels: Vec<String> = ranked.iter().map(|h| h.subject.label()).collect();
        assert_eq!(labels[0], "shop/payment-3/app", "the starved pod at the end of the chain first: {ranked:#?}");
        let chain = ranked[0].findings.iter().find(|f| f.verdict == "Holds up payment").expect("the chain finding");
        assert!(
            chain.evidence.starts_with("payment → bank-adapter → fraud-check: p95 1.1s waiting on fraud-check, whose pods are CPU-starved; payment: p95 1.2s"),
            "{}",
            chain.evidence
        );
        let service = ranked.iter().find(|h| h.subject.label() == "svc shop/payment").unwrap();
        assert_eq!(service.verdict(), "Slow: waits on fraud-check");
        assert!(service.score < ranked[0].score);

        // Healthy, idle pods at the end: the deepest service is the finding, above the caller.
        input.containers[3] = facts(&o, 3);
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject.label(), "svc shop/fraud-check", "{ranked:#?}");
        assert_eq!(ranked[0].verdict(), "Slow, holds up payment");
        assert!(ranked[0].evidence()[0].contains("fraud-check's pods are healthy"), "{}", ranked[0].evidence()[0]);

        // No call takes the time (the time is payment's own, or unlogged): as before.
        input.calls.retain(|c| c.callee == "shop/ledger");
        assert_eq!(top(&input).verdict(), "Slow, pods idle");
    }

    #[test]
    fn fewer_replicas_for_the_same_load_rank_above_the_starved_pods_left_and_only_then() {
        let o = owned(2);
        let starved = |i| {
            let mut c = facts(&o, i);
            c.cpu_m = 498.0;
            c.throttle = Some(0.6);
            c
        };
        let drop = |before: f64, now: f64| CapacityFacts {
            namespace: "shop".into(),
            workload: "deploy/payment".into(),
            from: 4,
            to: 2,
            at: NOW - 90,
            load_before: Some(before),
            load_now: Some(now),
            pods: vec![&o.pods[0], &o.pods[1]],
        };
        let mut input = inputs(vec![starved(0), starved(1)]);
        input.capacity = vec![drop(60.0, 62.0)];
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject.label(), "deploy shop/payment", "{ranked:#?}");
        assert_eq!(ranked[0].verdict(), "Replicas fell");
        assert!(
            ranked[0].evidence()[0]
                .starts_with("4 → 2 replicas 90s ago while its load stayed (60.0/s before, 62.0/s now)"),
            "{}",
            ranked[0].evidence()[0]
        );
        assert!(ranked[1].evidence().iter().any(|e| e.contains("deploy shop/payment fell from 4 to 2")), "{ranked:#?}");
        // The load fell too: scaling in was right; the starved pods are their own finding.
        input.capacity = vec![drop(120.0, 60.0)];
        assert!(rank(&input, &Rules::default()).iter().all(|h| h.subject.kind() == "container"));
        // The pods left cope: nothing to say.
        let mut coping = inputs(vec![facts(&o, 0), facts(&o, 1)]);
        coping.capacity = vec![drop(60.0, 62.0)];
        assert!(rank(&coping, &Rules::default()).is_empty());
    }

    #[test]
    fn errors_right_after_a_rollout_say_so() {
        let o = owned(2);
        let mut fresh = facts(&o, 1);
        fresh.created = Some(NOW - 120);
        let mut input = inputs(vec![facts(&o, 0), fresh]);
        input.services.push(ServiceFacts {
            name: "shop/catalog".into(),
            backend: "shop-catalog-80",
            now: summary(400, 120, 0.02),
            baseline_p95: Some(0.02),
            pods: vec![(&o.pods[0], 3.0), (&o.pods[1], 3.0)],
            pod_errors: vec![],
        });
        let h = top(&input);
        assert_eq!(h.verdict(), "Errors after a rollout");
        assert_eq!(h.evidence()[0], "30% 5xx at the gateway (120 of 400 in the last minute); its newest pod is 2m old");
    }

    #[test]
    fn retries_hidden_from_clients_are_a_finding() {
        let o = owned(2);
        let mut input = inputs(vec![facts(&o, 0), facts(&o, 1)]);
        let mut now = summary(600, 0, 0.02);
        now.retries = 90;
        input.services.push(ServiceFacts {
            name: "shop/order".into(),
            backend: "shop-order-80",
            now,
            baseline_p95: Some(0.02),
            pods: vec![(&o.pods[0], 5.0), (&o.pods[1], 5.0)],
            pod_errors: vec![],
        });
        assert_eq!(
            top(&input).summary(),
            "Upstream retries: the gateway retried 90 of 600 requests in the last minute on another upstream (15%)"
        );
    }

    #[test]
    fn a_node_not_ready_is_a_hotspot() {
        let o = owned(2);
        let mut input = inputs(vec![facts(&o, 0), facts(&o, 1)]);
        input.nodes.push(NodeFacts {
            name: "node-a",
            ready: "Unknown",
            pressures: &[],
            cpu_used_m: None,
            cpu_allocatable_m: 3900.0,
        });
        assert_eq!(top(&input).summary(), "Node not ready: Ready=Unknown, 2 pods on it");
    }

    /// A rollout in progress: the new ReplicaSet's pod answers 40% 5xx, the old ones none over
    /// the same minute. The new pod ranks first ("roll back"), the service second.
    #[test]
    fn errors_of_the_new_replica_set_alone_name_its_pods() {
        let mut o = owned(3);
        o.pods = ["catalog-5c8b9-aaaaa", "catalog-5c8b9-bbbbb", "catalog-7d9f8-ccccc"]
            .iter()
            .map(|n| PodKey::new("shop", *n))
            .collect();
        let mut containers: Vec<ContainerFacts> = (0..3).map(|i| facts(&o, i)).collect();
        containers[2].created = Some(NOW - 90);
        let mut input = inputs(containers);
        input.services.push(ServiceFacts {
            name: "shop/catalog".into(),
            backend: "shop-catalog-80",
            now: summary(600, 80, 0.02),
            baseline_p95: Some(0.02),
            pods: vec![(&o.pods[0], 4.0), (&o.pods[1], 4.0), (&o.pods[2], 2.0)],
            pod_errors: vec![(&o.pods[0], 240, 0), (&o.pods[1], 240, 2), (&o.pods[2], 120, 48)],
        });
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject.label(), "shop/catalog-7d9f8-ccccc/app");
        assert_eq!(ranked[0].verdict(), "Errors from the new version");
        assert_eq!(
            ranked[0].evidence()[0],
            "ReplicaSet catalog-7d9f8 (new, 1 pod, 90s old): 40% 5xx (48 of 120 in the last minute) against 0% for catalog-5c8b9 (2 of 480) over the same minute"
        );
        assert_eq!(ranked[1].subject.label(), "svc shop/catalog");
        assert!(
            ranked[1]
                .summary()
                .contains("its own pods explain it: shop/catalog-7d9f8-ccccc/app (Errors from the new version)"),
            "{}",
            ranked[1].summary()
        );
        // Before the service's minute crosses the rule (the canary's first requests), the new
        // pod is named already and the service says where to look.
        input.services[0].now = summary(600, 20, 0.02);
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject.label(), "shop/catalog-7d9f8-ccccc/app");
        assert_eq!(ranked[1].verdict(), "Errors after a rollout: see its new pods");
        input.services[0].now = summary(600, 80, 0.02);
        // Every version failing alike is not the new one's fault: the service alone, as before.
        input.services[0].pod_errors = vec![(&o.pods[0], 240, 30), (&o.pods[1], 240, 30), (&o.pods[2], 120, 15)];
        assert_eq!(top(&input).subject.label(), "svc shop/catalog");
    }

    /// One replica taking most of the traffic, not yet saturated: the replica (its serving
    /// container, not a sidecar beside it) ranks first with its share and its own saturation;
    /// the service follows as the context.
    #[test]
    fn uneven_load_ranks_the_hot_replica_above_its_service() {
        let o = owned(3);
        let mut containers: Vec<ContainerFacts> = (0..3).map(|i| facts(&o, i)).collect();
        containers[0].cpu_m = 200.0;
        let mut sidecar = facts(&o, 0);
        sidecar.container = "istio-proxy";
        sidecar.cpu_m = 20.0;
        containers.push(sidecar);
        let mut input = inputs(containers);
        input.services.push(ServiceFacts {
            name: "shop/cart".into(),
            backend: "shop-cart-80",
            now: summary(600, 0, 0.02),
            baseline_p95: Some(0.02),
            pods: vec![(&o.pods[0], 8.0), (&o.pods[1], 1.0), (&o.pods[2], 1.0)],
            pod_errors: vec![],
        });
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject.label(), "shop/payment-0/app");
        assert_eq!(
            ranked[0].summary(),
            "Hot replica: 80% of shop/cart's requests (8.0 of 10.0/s across 3 replicas, 2.4× its fair share); its CPU at 40% of its limit"
        );
        assert_eq!(ranked[1].subject.label(), "svc shop/cart");
        assert_eq!(
            ranked[1].summary(),
            "Uneven load: see its pod: payment-0 gets 80% of its requests across 3 replicas"
        );
        assert!(ranked[1].score < ranked[0].score);
    }

    #[test]
    fn node_pressure_and_noisy_neighbours() {
        let mut o = owned(3);
        o.resources.cpu_limit_m = None;
        let mut hog = facts(&o, 0);
        hog.cpu_m = 3200.0;
        let mut victim = facts(&o, 1);
        victim.throttle = Some(0.5);
        victim.resources = &o.resources;
        let pressures = vec!["MemoryPressure".to_string()];
        let mut input = inputs(vec![hog, victim, facts(&o, 2)]);
        input.nodes.push(node_a_at_full_cpu());
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject.label(), "shop/payment-0/app");
        assert_eq!(ranked[0].verdict(), "Noisy neighbour");
        assert_eq!(
            ranked[0].evidence()[0],
            "uses 3.20 (32× its request) on node-a at 100% of allocatable CPU; 1 other container there starved: payment-1/app"
        );
        assert!(ranked.iter().any(|h| h.subject.label() == "node node-a" && h.verdict() == "Node CPU saturated"));
        input.nodes[0] = NodeFacts {
            name: "node-a",
            ready: "True",
            pressures: &pressures,
            cpu_used_m: Some(100.0),
            cpu_allocatable_m: 3900.0,
        };
        let h = top(&input);
        assert_eq!(h.summary(), "Node under MemoryPressure: MemoryPressure on node-a; affected pods: payment-1");
    }

    #[test]
    fn gateway_overhead_is_the_gateways_fault() {
        let o = owned(1);
        let mut gw = facts(&o, 0);
        gw.throttle = Some(0.4);
        let mut input = inputs(vec![gw]);
        let mut s = summary(5000, 0, 0.3);
        s.overhead_p95 = Some(0.25);
        s.upstream_share = Some(0.2);
        input.gateway = Some((s, vec![&o.pods[0]]));
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject, Subject::Gateway);
        assert_eq!(ranked[0].evidence()[0], "the gateway adds 250ms at p95 (total − upstream) (80% of request time)");
        assert_eq!(ranked[0].evidence()[1], "its pods are CPU-bound: payment-0");
    }

    /// Seen during a gateway saturation: every service also said "Slow, pods idle… a downstream
    /// dependency or the network" though the time was the gateway's.
    #[test]
    fn a_service_slow_only_at_the_gateway_points_at_the_gateway() {
        let o = owned(2);
        let mut input = inputs(vec![facts(&o, 0), facts(&o, 1)]);
        let mut now = summary(600, 0, 0.3);
        now.overhead_p95 = Some(0.25);
        input.services.push(ServiceFacts {
            name: "shop/order".into(),
            backend: "shop-order-80",
            now,
            baseline_p95: Some(0.05),
            pods: vec![(&o.pods[0], 5.0), (&o.pods[1], 5.0)],
            pod_errors: vec![],
        });
        let mut gw = summary(5000, 0, 0.3);
        gw.overhead_p95 = Some(0.25);
        gw.upstream_share = Some(0.2);
        input.gateway = Some((gw, vec![]));
        let ranked = rank(&input, &Rules::default());
        assert_eq!(ranked[0].subject, Subject::Gateway, "{ranked:#?}");
        let order = ranked.iter().find(|h| h.subject.label() == "svc shop/order").expect("the service still shows");
        assert_eq!(order.verdict(), "Slow at the gateway");
        assert!(
            order.evidence()[0].ends_with("250ms of it is the gateway's own time (total − upstream): see the gateway")
        );
        assert!(!order.evidence()[0].contains("downstream"));
    }

    #[test]
    fn ranking_does_not_depend_on_input_order() {
        let mut o = owned(40);
        for (i, h) in o.health.iter_mut().enumerate() {
            if i % 7 == 0 {
                *h = Health { severity: Severity::Bad, word: "CrashLoop".into(), detail: None };
            }
        }
        let all: Vec<ContainerFacts> = (0..40)
            .map(|i| {
                let mut c = facts(&o, i);
                c.throttle = Some((i % 10) as f64 / 10.0);
                c.restarts_1h = (i % 5) as u32;
                c
            })
            .collect();
        let service = |pods: Vec<(&'static PodKey, f64)>| ServiceFacts {
            name: "shop/payment".into(),
            backend: "shop-payment-80",
            now: summary(600, 90, 0.5),
            baseline_p95: Some(0.05),
            pods,
            pod_errors: vec![],
        };
        // Leaked for the test's lifetime: the facts borrow their pods.
        let keys: &'static [PodKey] = Box::leak(o.pods.clone().into_boxed_slice());
        let service_pods: Vec<(&PodKey, f64)> = keys.iter().take(12).enumerate().map(|(i, k)| (k, i as f64)).collect();
        let with_service = |containers: Vec<ContainerFacts<'_>>, pods: Vec<(&'static PodKey, f64)>| {
            let mut i = inputs(containers);
            i.services.push(service(pods));
            rank(&i, &Rules::default())
        };
        let expected = with_service(all.clone(), service_pods.clone());
        assert!(expected.len() > 10);
        // A deterministic shuffle per round (xorshift), so a failure is reproducible.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..50 {
            let mut next = |bound: usize| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % bound as u64) as usize
            };
            let mut shuffled = all.clone();
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, next(i + 1));
            }
            let mut pods = service_pods.clone();
            for i in (1..pods.len()).rev() {
                pods.swap(i, next(i + 1));
            }
            assert_eq!(with_service(shuffled, pods), expected);
        }
    }

    #[test]
    fn rules_are_overridable_from_toml() {
        let rules: Rules = toml::from_str("cpu_throttled = 0.5\n[weights]\ncrash_loop = 99.0").unwrap();
        assert_eq!(rules.cpu_throttled, 0.5);
        assert_eq!(rules.weights.crash_loop, 99.0);
        assert_eq!(rules.error_ratio, Rules::default().error_ratio);
        assert!(toml::from_str::<Rules>("cpu_throtled = 0.5").is_err(), "a typo is an error, not ignored");
    }
}
