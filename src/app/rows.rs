//! Table rows derived from the model, and the columns they sort by. Rows are rebuilt only when the
//! data changed; the UI formats cells only for the rows on screen.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::VecDeque;

// foldhash (hashbrown's default) instead of SipHash: looked up per container per refresh.
use hashbrown::HashMap;

use crate::analysis::health::{Health, RECENT_RESTART_SECS, classify};
use crate::analysis::nodes::NodeAllocation;
use crate::model::broker::Direction;
use crate::model::metrics::Usage;
use crate::model::node::NodeInfo;
use crate::model::pod::{PodInfo, PodKey, Resources, StateInfo};
use crate::model::series::{Series, Trend};
use crate::model::time::UnixSecs;
use crate::model::traffic::Summary;

use super::table::Column;

/// A container's identity: its pod and its name.
pub type ContainerKey = (PodKey, String);

/// What kpulse remembers about a container across pod updates: usage history, restarts observed
/// and health transitions.
#[derive(Debug, Clone)]
pub struct ContainerTrack {
    pub cpu: Series,
    pub mem: Series,
    /// Share of CFS periods throttled (0..1); empty where the usage source cannot tell.
    pub throttle: Series,
    /// (observed at, restart count): the newest observation older than an hour is kept as a baseline.
    restarts_seen: VecDeque<(UnixSecs, u32)>,
    pub history: VecDeque<(UnixSecs, String, Option<String>)>,
    /// The OOM-kill counter last seen, and when each kill since was first seen (newest last).
    oom_counter: Option<f64>,
    oom_kills: VecDeque<UnixSecs>,
    /// Restarts in the last hour as kube-state-metrics' history says, and when it said so.
    reported_restarts_1h: Option<(UnixSecs, u32)>,
    /// The last memory fits, keyed by (newest sample, start slot, climb span): the hotspots ask
    /// every second, a new sample arrives every poll.
    mem_fits_memo: Cell<Option<FitsMemo>>,
}

type FitsMemo = ((Option<i64>, i64, i64), MemFits);

/// How a working set grew: see [`ContainerTrack::mem_fits`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemFits {
    pub steady: Option<Trend>,
    pub climb: Option<Trend>,
}

const HISTORY_LEN: usize = 50;

impl ContainerTrack {
    /// Records CPU and memory at `at`; a NaN (not measured) leaves a gap.
    pub fn record_usage(&mut self, at: UnixSecs, usage: Usage) {
        if usage.cpu_m.is_finite() {
            self.cpu.push(at, usage.cpu_m);
        }
        if usage.mem.is_finite() {
            self.mem.push(at, usage.mem);
        }
    }

    pub fn new(step_secs: i64, retention_secs: i64) -> ContainerTrack {
        ContainerTrack {
            cpu: Series::new(step_secs, retention_secs),
            mem: Series::new(step_secs, retention_secs),
            throttle: Series::new(step_secs, retention_secs),
            restarts_seen: VecDeque::new(),
            history: VecDeque::new(),
            oom_counter: None,
            oom_kills: VecDeque::new(),
            reported_restarts_1h: None,
            mem_fits_memo: Cell::new(None),
        }
    }

    pub fn observe(&mut self, now: UnixSecs, restarts: u32, health: &Health) {
        if self.restarts_seen.back().is_none_or(|(_, n)| *n != restarts) {
            self.restarts_seen.push_back((now, restarts));
        }
        while self.restarts_seen.len() > 2 && self.restarts_seen[1].0 <= now - RECENT_RESTART_SECS {
            self.restarts_seen.pop_front();
        }
        if self.history.back().is_none_or(|(_, word, detail)| *word != health.word || *detail != health.detail) {
            if self.history.len() == HISTORY_LEN {
                self.history.pop_front();
            }
            self.history.push_back((now, health.word.clone(), health.detail.clone()));
        }
    }

    /// Folds in a reading of the OOM-kill counter. Kills before the first reading cannot be
    /// dated and are not counted; a counter that went down belongs to a new container instance
    /// and counts from zero.
    pub fn observe_oom_counter(&mut self, at: UnixSecs, total: f64) {
        let new = match self.oom_counter {
            Some(before) if total >= before => total - before,
            Some(_) => total,
            None => 0.0,
        };
        self.oom_counter = Some(total);
        for _ in 0..(new as usize).min(HISTORY_LEN) {
            if self.oom_kills.len() == HISTORY_LEN {
                self.oom_kills.pop_front();
            }
            self.oom_kills.push_back(at);
        }
    }

    /// Restarts in the last hour from kube-state-metrics (via Prometheus), which dates the
    /// restarts before kpulse started; `increase()` extrapolates, so it is rounded.
    pub fn report_restarts_last_hour(&mut self, at: UnixSecs, restarts: f64) {
        if restarts.is_finite() && restarts >= 0.0 {
            self.reported_restarts_1h = Some((at, restarts.round() as u32));
        }
    }

    /// OOM kills seen since `since`.
    pub fn oom_kills_since(&self, since: UnixSecs) -> u32 {
        self.oom_kills.iter().rev().take_while(|at| **at >= since).count() as u32
    }

    /// The working set's fits from `since`, computed once per new sample: the straight line
    /// through all of it (None unless it rose: no line to fit), and the climb of its last
    /// `climb_secs` (see [`Series::climb`]).
    pub fn mem_fits(&self, since: UnixSecs, climb_secs: i64) -> MemFits {
        let key = (self.mem.newest_slot(), since.div_euclid(self.mem.step()), climb_secs);
        if let Some((memo_key, fits)) = self.mem_fits_memo.get()
            && memo_key == key
        {
            return fits;
        }
        let rose = self.mem.latest().zip(self.mem.value_at(since)).is_none_or(|(last, first)| last > first);
        let steady = if rose { self.mem.trend(since) } else { None };
        let fits = MemFits { steady, climb: self.mem.climb(climb_secs, since) };
        self.mem_fits_memo.set(Some((key, fits)));
        fits
    }

    /// Restarts in the last hour: increments observed since the count an hour ago (or since kpulse
    /// started). When none were observed, the last termination counts if it was within the hour;
    /// restarts before kpulse started other than that last one cannot be dated, so are not counted
    /// — unless kube-state-metrics' history (a report from the last five minutes) says more.
    /// A pod created within the hour restarted only within it: its whole count is dated.
    pub fn restarts_last_hour(
        &self,
        now: UnixSecs,
        current: u32,
        last_finished: Option<UnixSecs>,
        pod_created: Option<UnixSecs>,
    ) -> u32 {
        let reported = self.reported_restarts_1h.filter(|(at, _)| now - at <= 300).map_or(0, |(_, n)| n);
        let young = if pod_created.is_some_and(|c| now - c <= RECENT_RESTART_SECS) { current } else { 0 };
        reported.max(self.observed_restarts_last_hour(now, current, last_finished)).max(young)
    }

    fn observed_restarts_last_hour(&self, now: UnixSecs, current: u32, last_finished: Option<UnixSecs>) -> u32 {
        let Some(&(_, first_count)) = self.restarts_seen.front() else { return 0 };
        let hour_ago = now - RECENT_RESTART_SECS;
        let baseline = self.restarts_seen.iter().rev().find(|(at, _)| *at <= hour_ago).map_or(first_count, |(_, n)| *n);
        let observed = current.saturating_sub(baseline);
        let unobserved_recent = observed == 0 && current > 0 && last_finished.is_some_and(|f| f > hour_ago);
        observed + u32::from(unobserved_recent)
    }
}

/// What is remembered per pod: its network (one namespace per pod) and its containers' tracks.
#[derive(Debug, Clone, Default)]
pub struct PodTracks {
    /// Received and sent bytes per second.
    pub net: Option<(Series, Series)>,
    pub containers: Vec<(String, ContainerTrack)>,
}

/// Tracks grouped by pod, so a lookup needs no owned key (no allocation per row).
#[derive(Debug, Clone, Default)]
pub struct Tracks(HashMap<PodKey, PodTracks>);

impl PodTracks {
    pub fn container(&self, name: &str) -> Option<&ContainerTrack> {
        self.containers.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

impl Tracks {
    pub fn get(&self, pod: &PodKey, container: &str) -> Option<&ContainerTrack> {
        self.0.get(pod)?.container(container)
    }

    pub fn pod(&self, pod: &PodKey) -> Option<&PodTracks> {
        self.0.get(pod)
    }

    pub fn pod_net(&self, pod: &PodKey) -> Option<&(Series, Series)> {
        self.0.get(pod)?.net.as_ref()
    }

    pub fn pod_net_or_insert(
        &mut self,
        pod: &PodKey,
        make: impl FnOnce() -> (Series, Series),
    ) -> &mut (Series, Series) {
        if !self.0.contains_key(pod) {
            self.0.insert(pod.clone(), PodTracks::default());
        }
        self.0.get_mut(pod).expect("inserted above").net.get_or_insert_with(make)
    }

    pub fn get_or_insert(
        &mut self,
        pod: &PodKey,
        container: &str,
        make: impl FnOnce() -> ContainerTrack,
    ) -> &mut ContainerTrack {
        if !self.0.contains_key(pod) {
            self.0.insert(pod.clone(), PodTracks::default());
        }
        let list = &mut self.0.get_mut(pod).expect("inserted above").containers;
        match list.iter().position(|(name, _)| name == container) {
            Some(i) => &mut list[i].1,
            None => {
                list.push((container.to_string(), make()));
                &mut list.last_mut().expect("pushed").1
            }
        }
    }

    pub fn remove_pod(&mut self, pod: &PodKey) {
        self.0.remove(pod);
    }

    pub fn retain_pods(&mut self, keep: impl Fn(&PodKey) -> bool) {
        self.0.retain(|pod, _| keep(pod));
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRow {
    pub pod: PodKey,
    pub container: String,
    pub init: bool,
    pub node: String,
    pub workload: String,
    pub health: Health,
    pub ready: bool,
    pub restarts: u32,
    pub restarts_1h: u32,
    pub last_reason: Option<String>,
    pub created: Option<UnixSecs>,
    /// When this container instance started running.
    pub started: Option<UnixSecs>,
    pub resources: Resources,
    pub usage: Usage,
    /// Latest share of CFS periods throttled (0..1).
    pub throttle: Option<f64>,
    /// Latest pod network rates (rx, tx bytes per second).
    pub net: Option<(f64, f64)>,
    /// What the gateway saw of this pod over the last minute (a pod is one upstream IP).
    pub traffic: Option<Summary>,
    /// The broker queue this pod consumes, when it consumes one: the lag the gateway never sees.
    pub consumed: Option<ConsumedQueue>,
}

/// A consumer pod's queue as the Containers view shows it: its backlog and where it is going.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConsumedQueue {
    pub backlog: f64,
    pub direction: Direction,
}

impl ConsumedQueue {
    /// Of two queues one pod consumes, the one to show: a growing backlog, then the larger.
    pub fn worse(self, other: ConsumedQueue) -> ConsumedQueue {
        let rank = |q: &ConsumedQueue| (q.direction == Direction::Growing, q.backlog);
        if rank(&other) > rank(&self) { other } else { self }
    }
}

impl ContainerRow {
    pub fn key(&self) -> ContainerKey {
        (self.pod.clone(), self.container.clone())
    }

    pub fn cpu_pct_request(&self) -> Option<f64> {
        percent(self.usage.cpu_m, self.resources.cpu_request_m)
    }
    pub fn cpu_pct_limit(&self) -> Option<f64> {
        percent(self.usage.cpu_m, self.resources.cpu_limit_m)
    }
    pub fn mem_pct_request(&self) -> Option<f64> {
        percent(self.usage.mem, self.resources.mem_request)
    }
    pub fn mem_pct_limit(&self) -> Option<f64> {
        percent(self.usage.mem, self.resources.mem_limit)
    }
}

pub fn percent(value: f64, of: Option<f64>) -> Option<f64> {
    match of {
        Some(total) if total > 0.0 && value.is_finite() => Some(value / total * 100.0),
        _ => None,
    }
}

impl ContainerRow {
    /// Refreshes what depends on the clock or on new usage samples, in place.
    pub fn refresh_derived(&mut self, pod: &PodInfo, tracks: &Tracks, now: UnixSecs) {
        let Some(c) = pod.containers.iter().find(|c| c.name == self.container) else { return };
        let track = tracks.get(&pod.key, &c.name);
        self.health = classify(pod, c, now);
        let last_finished = c.last_termination.as_ref().and_then(|t| t.2);
        self.restarts_1h = track.map_or(0, |t| t.restarts_last_hour(now, c.restarts, last_finished, pod.created));
        self.refresh_usage(tracks);
    }

    pub fn refresh_usage(&mut self, tracks: &Tracks) {
        let track = tracks.get(&self.pod, &self.container);
        self.usage = Usage {
            cpu_m: track.and_then(|t| t.cpu.latest()).unwrap_or(f64::NAN),
            mem: track.and_then(|t| t.mem.latest()).unwrap_or(f64::NAN),
        };
        self.throttle = track.and_then(|t| t.throttle.latest());
        self.net = tracks.pod_net(&self.pod).and_then(|(rx, tx)| Some((rx.latest()?, tx.latest()?)));
    }
}

pub fn build_container_rows<'a>(
    pods: impl Iterator<Item = &'a PodInfo>,
    tracks: &Tracks,
    now: UnixSecs,
) -> Vec<ContainerRow> {
    let mut rows = Vec::new();
    for pod in pods {
        for c in &pod.containers {
            let track = tracks.get(&pod.key, &c.name);
            let last_finished = c.last_termination.as_ref().and_then(|t| t.2);
            let last_reason = match &c.state {
                StateInfo::Terminated { reason, .. } if c.init && reason == "Completed" => None,
                StateInfo::Terminated { reason, .. } => Some(reason.clone()),
                _ => c.last_termination.as_ref().map(|t| t.0.clone()),
            };
            rows.push(ContainerRow {
                container: c.name.clone(),
                init: c.init,
                node: pod.node.clone().unwrap_or_default(),
                workload: pod.workload.clone().unwrap_or_default(),
                health: classify(pod, c, now),
                ready: c.ready,
                restarts: c.restarts,
                restarts_1h: track.map_or(0, |t| t.restarts_last_hour(now, c.restarts, last_finished, pod.created)),
                last_reason,
                created: pod.created,
                started: c.started(),
                resources: c.resources.clone(),
                usage: Usage::default(),
                throttle: None,
                net: None,
                traffic: None,
                consumed: None,
                pod: pod.key.clone(),
            });
            if let Some(row) = rows.last_mut() {
                row.refresh_usage(tracks);
            }
        }
    }
    rows
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerColumn {
    Namespace,
    Pod,
    Container,
    Node,
    Workload,
    Health,
    Ready,
    Restarts,
    Restarts1h,
    LastReason,
    Age,
    Cpu,
    CpuPctRequest,
    CpuPctLimit,
    Throttle,
    Mem,
    MemPctRequest,
    MemPctLimit,
    Net,
    Rps,
    ErrPct,
    P95,
    Backlog,
    CpuTrend,
}

impl ContainerColumn {
    pub const ALL: [ContainerColumn; 24] = [
        ContainerColumn::Namespace,
        ContainerColumn::Pod,
        ContainerColumn::Container,
        ContainerColumn::Node,
        ContainerColumn::Workload,
        ContainerColumn::Health,
        ContainerColumn::Ready,
        ContainerColumn::Restarts,
        ContainerColumn::Restarts1h,
        ContainerColumn::LastReason,
        ContainerColumn::Age,
        ContainerColumn::Cpu,
        ContainerColumn::CpuPctRequest,
        ContainerColumn::CpuPctLimit,
        ContainerColumn::Throttle,
        ContainerColumn::Mem,
        ContainerColumn::MemPctRequest,
        ContainerColumn::MemPctLimit,
        ContainerColumn::Net,
        ContainerColumn::Rps,
        ContainerColumn::ErrPct,
        ContainerColumn::P95,
        ContainerColumn::Backlog,
        ContainerColumn::CpuTrend,
    ];

    /// A stable tiebreak so equal keys keep a fixed order across refreshes.
    pub fn tiebreak(a: &ContainerRow, b: &ContainerRow) -> Ordering {
        a.pod.cmp(&b.pod).then_with(|| a.container.cmp(&b.container))
    }
}

impl Column for ContainerColumn {
    type Row = ContainerRow;
    type Key = ContainerKey;
    fn all() -> &'static [Self] {
        &ContainerColumn::ALL
    }
    fn title(self) -> &'static str {
        match self {
            ContainerColumn::Namespace => "NAMESPACE",
            ContainerColumn::Pod => "POD",
            ContainerColumn::Container => "CONTAINER",
            ContainerColumn::Node => "NODE",
            ContainerColumn::Workload => "WORKLOAD",
            ContainerColumn::Health => "HEALTH",
            ContainerColumn::Ready => "RDY",
            ContainerColumn::Restarts => "RST",
            ContainerColumn::Restarts1h => "RST/1h",
            ContainerColumn::LastReason => "LAST EXIT",
            ContainerColumn::Age => "AGE",
            ContainerColumn::Cpu => "CPU",
            ContainerColumn::CpuPctRequest => "%CPU/R",
            ContainerColumn::CpuPctLimit => "%CPU/L",
            ContainerColumn::Throttle => "THROT",
            ContainerColumn::Net => "NET RX/TX",
            ContainerColumn::Rps => "RPS",
            ContainerColumn::ErrPct => "5XX%",
            ContainerColumn::P95 => "P95",
            ContainerColumn::Backlog => "BACKLOG",
            ContainerColumn::Mem => "MEM",
            ContainerColumn::MemPctRequest => "%MEM/R",
            ContainerColumn::MemPctLimit => "%MEM/L",
            ContainerColumn::CpuTrend => "CPU TREND",
        }
    }

    /// Sorting on a number puts the largest first; on text, A→Z.
    fn descending_by_default(self) -> bool {
        !matches!(
            self,
            ContainerColumn::Namespace
                | ContainerColumn::Pod
                | ContainerColumn::Container
                | ContainerColumn::Node
                | ContainerColumn::Workload
                | ContainerColumn::LastReason
                | ContainerColumn::Ready
        )
    }

    fn compare(self, a: &ContainerRow, b: &ContainerRow, _now: UnixSecs) -> Ordering {
        match self {
            ContainerColumn::Namespace => a.pod.namespace.cmp(&b.pod.namespace),
            ContainerColumn::Pod => a.pod.name.cmp(&b.pod.name),
            ContainerColumn::Container => a.container.cmp(&b.container),
            ContainerColumn::Node => a.node.cmp(&b.node),
            ContainerColumn::Workload => a.workload.cmp(&b.workload),
            ContainerColumn::Health => {
                a.health.severity.cmp(&b.health.severity).then(a.restarts_1h.cmp(&b.restarts_1h))
            }
            ContainerColumn::Ready => a.ready.cmp(&b.ready),
            ContainerColumn::Restarts => a.restarts.cmp(&b.restarts),
            ContainerColumn::Restarts1h => a.restarts_1h.cmp(&b.restarts_1h),
            ContainerColumn::LastReason => a.last_reason.cmp(&b.last_reason),
            // Oldest first when descending, like "largest age".
            ContainerColumn::Age => b.created.cmp(&a.created),
            ContainerColumn::Cpu | ContainerColumn::CpuTrend => cmp_num(a.usage.cpu_m, b.usage.cpu_m),
            ContainerColumn::CpuPctRequest => cmp_opt(a.cpu_pct_request(), b.cpu_pct_request()),
            ContainerColumn::CpuPctLimit => cmp_opt(a.cpu_pct_limit(), b.cpu_pct_limit()),
            ContainerColumn::Throttle => cmp_opt(a.throttle, b.throttle),
            ContainerColumn::Net => cmp_opt(a.net.map(|(rx, tx)| rx + tx), b.net.map(|(rx, tx)| rx + tx)),
            ContainerColumn::Rps => cmp_opt(a.traffic.map(|t| t.rps), b.traffic.map(|t| t.rps)),
            ContainerColumn::ErrPct => cmp_opt(a.traffic.map(|t| t.error_ratio), b.traffic.map(|t| t.error_ratio)),
            ContainerColumn::P95 => cmp_opt(a.traffic.and_then(|t| t.p95), b.traffic.and_then(|t| t.p95)),
            ContainerColumn::Backlog => cmp_opt(a.consumed.map(|q| q.backlog), b.consumed.map(|q| q.backlog)),
            ContainerColumn::Mem => cmp_num(a.usage.mem, b.usage.mem),
            ContainerColumn::MemPctRequest => cmp_opt(a.mem_pct_request(), b.mem_pct_request()),
            ContainerColumn::MemPctLimit => cmp_opt(a.mem_pct_limit(), b.mem_pct_limit()),
        }
    }

    fn key(row: &ContainerRow) -> ContainerKey {
        row.key()
    }
    fn is(row: &ContainerRow, (pod, container): &ContainerKey) -> bool {
        row.pod == *pod && row.container == *container
    }
    fn matches(r: &ContainerRow, filter: &str) -> bool {
        matches_filter(filter, &[&r.pod.namespace, &r.pod.name, &r.container, &r.node])
    }
}

/// Missing numbers sort below every present number.
fn cmp_num(a: f64, b: f64) -> Ordering {
    cmp_opt(Some(a).filter(|v| v.is_finite()), Some(b).filter(|v| v.is_finite()))
}

pub fn cmp_opt(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub info: NodeInfo,
    pub alloc: NodeAllocation,
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeColumn {
    Name,
    Status,
    Pods,
    CpuAllocatable,
    CpuRequests,
    CpuLimits,
    CpuUsage,
    MemAllocatable,
    MemRequests,
    MemLimits,
    MemUsage,
    Conditions,
    Age,
}

impl NodeColumn {
    pub const ALL: [NodeColumn; 13] = [
        NodeColumn::Name,
        NodeColumn::Status,
        NodeColumn::Pods,
        NodeColumn::CpuAllocatable,
        NodeColumn::CpuRequests,
        NodeColumn::CpuLimits,
        NodeColumn::CpuUsage,
        NodeColumn::MemAllocatable,
        NodeColumn::MemRequests,
        NodeColumn::MemLimits,
        NodeColumn::MemUsage,
        NodeColumn::Conditions,
        NodeColumn::Age,
    ];
}

impl Column for NodeColumn {
    type Row = NodeRow;
    type Key = String;
    fn all() -> &'static [Self] {
        &NodeColumn::ALL
    }
    fn title(self) -> &'static str {
        match self {
            NodeColumn::Name => "NODE",
            NodeColumn::Status => "STATUS",
            NodeColumn::Pods => "PODS",
            NodeColumn::CpuAllocatable => "CPU CAP/ALLOC",
            NodeColumn::CpuRequests => "CPU REQ",
            NodeColumn::CpuLimits => "CPU LIM",
            NodeColumn::CpuUsage => "CPU USED",
            NodeColumn::MemAllocatable => "MEM CAP/ALLOC",
            NodeColumn::MemRequests => "MEM REQ",
            NodeColumn::MemLimits => "MEM LIM",
            NodeColumn::MemUsage => "MEM USED",
            NodeColumn::Conditions => "CONDITIONS",
            NodeColumn::Age => "AGE",
        }
    }

    fn descending_by_default(self) -> bool {
        !matches!(self, NodeColumn::Name | NodeColumn::Status | NodeColumn::Conditions)
    }

    fn compare(self, a: &NodeRow, b: &NodeRow, _now: UnixSecs) -> Ordering {
        let used = |r: &NodeRow, cpu: bool| r.usage.map(|u| if cpu { u.cpu_m } else { u.mem });
        match self {
            NodeColumn::Name => a.info.name.cmp(&b.info.name),
            NodeColumn::Status => a.info.ready.cmp(&b.info.ready),
            NodeColumn::Pods => a.alloc.pods.cmp(&b.alloc.pods),
            NodeColumn::CpuAllocatable => a.info.cpu_allocatable_m.total_cmp(&b.info.cpu_allocatable_m),
            NodeColumn::CpuRequests => a.alloc.cpu_requests_m.total_cmp(&b.alloc.cpu_requests_m),
            NodeColumn::CpuLimits => a.alloc.cpu_limits_m.total_cmp(&b.alloc.cpu_limits_m),
            NodeColumn::CpuUsage => cmp_opt(used(a, true), used(b, true)),
            NodeColumn::MemAllocatable => a.info.mem_allocatable.total_cmp(&b.info.mem_allocatable),
            NodeColumn::MemRequests => a.alloc.mem_requests.total_cmp(&b.alloc.mem_requests),
            NodeColumn::MemLimits => a.alloc.mem_limits.total_cmp(&b.alloc.mem_limits),
            NodeColumn::MemUsage => cmp_opt(used(a, false), used(b, false)),
            NodeColumn::Conditions => a.info.pressures.len().cmp(&b.info.pressures.len()),
            NodeColumn::Age => b.info.created.cmp(&a.info.created),
        }
    }

    fn key(row: &NodeRow) -> String {
        row.info.name.clone()
    }
    fn is(row: &NodeRow, name: &String) -> bool {
        row.info.name == *name
    }
    fn matches(r: &NodeRow, filter: &str) -> bool {
        matches_filter(filter, &[&r.info.name])
    }
}

/// Substring match (case-insensitive) or, with a leading `~`, a fuzzy subsequence match.
pub fn matches_filter(filter: &str, fields: &[&str]) -> bool {
    if filter.is_empty() {
        return true;
    }
    if let Some(pattern) = filter.strip_prefix('~') {
        let hay = fields.join(" ").to_lowercase();
        let mut chars = hay.chars();
        return pattern.to_lowercase().chars().filter(|c| !c.is_whitespace()).all(|p| chars.any(|h| h == p));
    }
    let needle = filter.to_lowercase();
    fields.iter().any(|f| f.to_lowercase().contains(&needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::health::Severity;

    #[test]
    fn filter_substring_and_fuzzy() {
        let fields = ["shop", "payment-7d9f8c6b5-abcde", "app", "node-b"];
        assert!(matches_filter("PAYMENT", &fields));
        assert!(matches_filter("node-b", &fields));
        assert!(!matches_filter("pmt", &fields));
        assert!(matches_filter("~pmt", &fields));
        assert!(matches_filter("~shp pay", &fields));
        assert!(!matches_filter("~zz", &fields));
    }

    #[test]
    fn restarts_in_the_last_hour() {
        let h = Health { severity: Severity::Good, word: "Running".into(), detail: None };
        let mut t = ContainerTrack::new(10, 900);
        // First seen at t=10000 with 3 restarts, the last one 100 s before.
        t.observe(10_000, 3, &h);
        assert_eq!(t.restarts_last_hour(10_000, 3, Some(9_900), None), 1);
        assert_eq!(t.restarts_last_hour(10_000, 3, Some(1_000), None), 0);
        t.observe(10_500, 4, &h);
        t.observe(11_000, 6, &h);
        assert_eq!(t.restarts_last_hour(11_000, 6, Some(10_990), None), 3);
        // Two hours later only the increments within the hour count.
        t.observe(17_500, 7, &h);
        assert_eq!(t.restarts_last_hour(17_500, 7, Some(17_400), None), 1);
        assert_eq!(t.restarts_last_hour(22_000, 7, Some(17_400), None), 0);
        // Clock skew: the termination is stamped a little after kpulse first saw it.
        let mut t = ContainerTrack::new(10, 900);
        t.observe(10_000, 1, &h);
        assert_eq!(t.restarts_last_hour(10_002, 1, Some(10_001), None), 1);
    }

    /// As on the real node: a two-minute-old pod with 4 restarts had "1 restarts in the last
    /// hour" because kpulse had seen only the last.
    #[test]
    fn a_pod_younger_than_the_hour_restarted_only_within_it() {
        let h = Health { severity: Severity::Good, word: "Running".into(), detail: None };
        let mut t = ContainerTrack::new(10, 900);
        t.observe(10_000, 4, &h);
        assert_eq!(t.restarts_last_hour(10_000, 4, Some(9_990), Some(9_880)), 4);
        assert_eq!(t.restarts_last_hour(10_000, 4, Some(9_990), Some(1_000)), 1, "an old pod: only the last is dated");
    }

    #[test]
    fn kube_state_metrics_dates_restarts_from_before_kpulse_started() {
        let h = Health { severity: Severity::Good, word: "Running".into(), detail: None };
        let mut t = ContainerTrack::new(10, 900);
        t.observe(10_000, 5, &h);
        // Alone, kpulse dates only the last of five restarts.
        assert_eq!(t.restarts_last_hour(10_000, 5, Some(9_950), None), 1);
        t.report_restarts_last_hour(10_000, 3.8);
        assert_eq!(t.restarts_last_hour(10_000, 5, Some(9_950), None), 4);
        // A stale report (Prometheus gone) no longer counts.
        assert_eq!(t.restarts_last_hour(10_400, 5, Some(9_950), None), 1);
    }

    #[test]
    fn oom_kills_are_counted_from_the_counters_increases() {
        let mut t = ContainerTrack::new(10, 900);
        // Kills before the first reading cannot be dated.
        t.observe_oom_counter(1_000, 4.0);
        assert_eq!(t.oom_kills_since(0), 0);
        t.observe_oom_counter(1_010, 4.0);
        t.observe_oom_counter(1_020, 6.0);
        assert_eq!(t.oom_kills_since(1_000), 2);
        // A new container instance: its counter starts again.
        t.observe_oom_counter(1_300, 1.0);
        assert_eq!(t.oom_kills_since(1_000), 3);
        assert_eq!(t.oom_kills_since(1_100), 1, "only the newest is within the window");
    }

    #[test]
    fn missing_numbers_sort_below_present_ones() {
        assert_eq!(cmp_num(f64::NAN, 1.0), Ordering::Less);
        assert_eq!(cmp_num(2.0, 1.0), Ordering::Greater);
        assert_eq!(cmp_opt(None, None), Ordering::Equal);
    }
}
