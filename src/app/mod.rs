//! Application state and `update(msg) -> commands`: pure, testable without a terminal. Effects
//! (quit, re-scoping the watchers, switching context) are returned as data for `main` to carry out.

pub mod hotspots;
pub mod keymap;
pub mod rows;
pub mod traffic;
pub mod visibility;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use crate::analysis::health::classify;
use crate::analysis::hotspots::{Hotspot, Subject};
use crate::analysis::nodes::allocations;
use crate::config::Config;
use crate::model::accesslog::Format;
use crate::model::accesslog::zone::LogZone;
use crate::model::broker::{QueueKey, QueueTrack};
use crate::model::event::EventInfo;
use crate::model::metrics::Usage;
use crate::model::node::NodeInfo;
use crate::model::pod::{PodInfo, PodKey};
use crate::model::replicas::ReplicaHistory;
use crate::model::series::Series;
use crate::model::service::ServiceInfo;
use crate::model::store::{Change, Store};
use crate::model::time::UnixSecs;
use crate::model::traffic::Traffic;
use crate::sources::kube::Scope;
use crate::sources::{SourceId, SourceState, Update};
use keymap::{Action, KeyMap};
use rows::{
    ConsumedQueue, ContainerColumn, ContainerKey, ContainerRow, ContainerTrack, NodeColumn, NodeRow, SortColumn,
    Tracks, build_container_rows, matches_filter,
};
use traffic::{Stream, TrafficColumn, TrafficGroup, TrafficRow, build_traffic_rows};

/// The next (or previous) column, in its natural direction.
fn cycled<C: SortColumn>((current, _): (C, bool), forward: bool) -> (C, bool) {
    let all = C::all();
    let i = all.iter().position(|c| *c == current).unwrap_or(0);
    let next = all[(i + if forward { 1 } else { all.len() - 1 }) % all.len()];
    (next, next.descending_by_default())
}

/// A header click: that column, or the same column reversed.
fn clicked<C: SortColumn>((current, descending): (C, bool), index: usize) -> (C, bool) {
    match C::all().get(index) {
        Some(&col) if col == current => (col, !descending),
        Some(&col) => (col, col.descending_by_default()),
        None => (current, descending),
    }
}

/// What the gateway saw of each row's pod, by the pod's IP.
fn fill_traffic(rows: &mut [ContainerRow], pods: &Store<PodKey, PodInfo>, traffic: &Traffic, now: UnixSecs) {
    if traffic.upstreams.stats.is_empty() {
        return;
    }
    // Rows come grouped by pod: one pod lookup and one summary per pod, not per container
    // (this runs every second while a gateway is read, over every row).
    let mut summary = None;
    for i in 0..rows.len() {
        if i == 0 || rows[i].pod != rows[i - 1].pod {
            let ip = pods.get(&rows[i].pod).and_then(|p| p.pod_ip.as_deref());
            summary = ip.and_then(|ip| traffic.upstreams.stats.get(ip)).map(|s| s.summary(0, now));
        }
        rows[i].traffic = summary;
    }
}

/// Below this many containers the hotspots are re-ranked on every refresh (well under 1 ms).
const ALWAYS_RANK_BELOW_ROWS: usize = 2000;

/// Above this many containers a ranking costs ~18 ms (benches/hotspots.rs at 29,964): every
/// third second rather than every second keeps an idle dashboard under 5 % of a core.
const RANK_SLOWER_ABOVE_ROWS: usize = 10_000;
const SLOW_RANK_EVERY_SECS: i64 = 3;

/// How often clock-dependent row fields are re-derived.
const CLOCK_REFRESH_SECS: i64 = 5;

// Updates are moved once from a source to `update`; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Tick(UnixSecs),
    Source(Update),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// Restart the pod/event/metrics watchers with a new namespace scope.
    Rescope(Scope),
    SwitchContext(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Containers,
    Nodes,
    Traffic,
    Hotspots,
    /// Message-broker queues and consumer groups.
    Events,
}

impl View {
    const ORDER: [View; 5] = [View::Containers, View::Nodes, View::Traffic, View::Hotspots, View::Events];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    Picker { kind: PickerKind, items: Vec<String>, selected: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickerKind {
    Namespace,
    Context,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputMode {
    Normal,
    Filter,
    Command(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceStatus {
    pub state: SourceState,
    /// When data last arrived from this source.
    pub last_data: Option<UnixSecs>,
    /// When `state` last changed, so a lost source can say since when.
    pub since: UnixSecs,
    /// When a failing source tries again, as its backoff chose.
    pub retry_at: Option<UnixSecs>,
}

impl SourceStatus {
    fn connecting(now: UnixSecs) -> SourceStatus {
        SourceStatus { state: SourceState::Connecting, last_data: None, since: now, retry_at: None }
    }
}

/// Where the UI last drew things, so mouse clicks can be mapped back to rows and columns.
#[derive(Debug, Default)]
pub struct LayoutMemo {
    pub table: Cell<Rect>,
    pub offset: Cell<usize>,
    /// x ranges of the header cells, in column order, packed as (x, width) for up to 24 columns.
    pub header: Cell<[(u16, u16); 24]>,
}

pub struct State {
    pub now: UnixSecs,
    pub config: Config,
    pub keymap: KeyMap,
    pub context: String,
    /// The context's API server address, named when it cannot be reached.
    pub server: Option<String>,
    pub contexts: Vec<String>,
    pub scope: Scope,
    /// A namespace chosen in the UI while the watch covers all namespaces.
    pub namespace_filter: Option<String>,
    pub demo: bool,
    /// Gateway logs with no cluster to join them to (a snapshot or the dashboard), and why.
    pub logs_only: Option<String>,

    pub pods: Store<PodKey, PodInfo>,
    pub nodes: Store<String, NodeInfo>,
    pub events: Store<PodKey, EventInfo>,
    pub tracks: Tracks,
    pub node_usage: HashMap<String, Usage>,
    pub sources: BTreeMap<SourceId, SourceStatus>,
    pub notices: Vec<(UnixSecs, String)>,
    /// What kpulse asked of the API server, over the last minute.
    pub api_cost: crate::model::api_cost::ApiCostWindow,

    pub view: View,
    pub overlay: Overlay,
    pub input: InputMode,
    pub filter: String,
    pub container_sort: (ContainerColumn, bool),
    pub node_sort: (NodeColumn, bool),
    pub show_detail: bool,

    pub rows: Vec<ContainerRow>,
    pub visible: Vec<u32>,
    pub node_rows: Vec<NodeRow>,
    pub node_visible: Vec<u32>,
    pub selected: usize,
    selected_key: Option<ContainerKey>,
    pub node_selected: usize,

    pub traffic: Traffic,
    /// Gateway log streams by name.
    pub streams: BTreeMap<String, Stream>,
    /// Pods per workload over the last quarter hour: where capacity fell.
    pub replicas: ReplicaHistory,
    replicas_counted_at: UnixSecs,
    /// Mesh sidecars' log streams, and the calls each meshed pod made (its outbound lines).
    pub mesh_streams: BTreeMap<String, Stream>,
    pub mesh: BTreeMap<PodKey, Traffic>,
    /// Said that the followed sidecars log nothing kpulse reads.
    mesh_quiet_told: bool,
    /// `--log-format`: every stream is read in it instead of being detected.
    pub log_format: Option<Format>,
    /// Where zone-less log times were written (`--log-tz`, else the system zone).
    pub log_zone: LogZone,
    pub traffic_group: TrafficGroup,
    pub traffic_sort: (TrafficColumn, bool),
    pub traffic_rows: Vec<TrafficRow>,
    pub traffic_visible: Vec<u32>,
    pub traffic_selected: usize,
    traffic_dirty: bool,
    last_traffic_refresh: UnixSecs,
    /// Ranked, re-derived at most once a second when anything they read changed.
    pub hotspots: Vec<Hotspot>,
    pub hotspot_selected: usize,
    hotspots_dirty: bool,
    /// Services, and the gateway backend names they stand for.
    pub services: Store<PodKey, ServiceInfo>,
    backend_services: hashbrown::HashMap<String, String>,
    /// Queues and consumer groups by broker, with their history.
    pub queues: BTreeMap<QueueKey, QueueTrack>,
    /// Each queue's consumer pods, derived in `refresh`.
    queue_consumers: BTreeMap<QueueKey, Vec<String>>,
    pub queue_selected: usize,
    last_hotspot_refresh: Option<UnixSecs>,
    /// What changed since the last refresh, so a refresh redoes only that.
    rebuild_all: bool,
    dirty_pods: HashSet<PodKey>,
    usage_dirty: bool,
    /// New queue readings: the consumer pods' BACKLOG cells are re-derived.
    queues_dirty: bool,
    nodes_dirty: bool,
    last_clock_refresh: UnixSecs,
    view_dirty: bool,
    pub layout: LayoutMemo,
}

/// How long followed sidecars may log nothing readable before kpulse says why.
const MESH_QUIET_SECS: i64 = 120;

/// How often pods are counted per workload while they change, and how far back a drop counts.
const REPLICA_COUNT_SECS: i64 = 5;
pub const REPLICA_WINDOW_SECS: i64 = 15 * 60;

/// Live pods (running or on their way: not finished, not being deleted) per workload, keyed
/// `namespace/deploy/name`.
fn replica_counts<'a>(pods: impl Iterator<Item = &'a PodInfo>) -> std::collections::HashMap<String, u32> {
    let mut counts = std::collections::HashMap::new();
    for p in pods.filter(|p| !p.deleting && (p.phase == "Running" || p.phase == "Pending")) {
        if let Some(workload) = &p.workload {
            *counts.entry(format!("{}/{workload}", p.key.namespace)).or_insert(0) += 1;
        }
    }
    counts
}

/// The gateway log stream named `name`, new ones in the format and zone asked for.
fn stream_entry<'a>(
    streams: &'a mut BTreeMap<String, Stream>,
    name: &str,
    format: &Option<Format>,
    zone: &LogZone,
) -> &'a mut Stream {
    streams.entry(name.to_string()).or_insert_with(|| Stream::with_format(format.clone()).in_zone(zone.clone()))
}

impl State {
    pub fn new(config: Config, context: String, contexts: Vec<String>, scope: Scope, now: UnixSecs) -> State {
        let (keymap, problems) = KeyMap::new(&config.keys);
        let traffic = Traffic::new(now, config.retention.as_secs() as i64);
        let mut state = State {
            now,
            config,
            keymap,
            context,
            server: None,
            contexts,
            scope,
            namespace_filter: None,
            demo: false,
            logs_only: None,
            pods: Store::default(),
            nodes: Store::default(),
            events: Store::default(),
            tracks: Tracks::default(),
            node_usage: HashMap::new(),
            sources: SourceId::ALWAYS.iter().map(|s| (*s, SourceStatus::connecting(now))).collect(),
            notices: Vec::new(),
            api_cost: Default::default(),
            view: View::Containers,
            overlay: Overlay::None,
            input: InputMode::Normal,
            filter: String::new(),
            container_sort: (ContainerColumn::Health, true),
            node_sort: (NodeColumn::Name, false),
            show_detail: false,
            rows: Vec::new(),
            visible: Vec::new(),
            node_rows: Vec::new(),
            node_visible: Vec::new(),
            selected: 0,
            selected_key: None,
            node_selected: 0,
            traffic,
            streams: BTreeMap::new(),
            mesh_streams: BTreeMap::new(),
            mesh: BTreeMap::new(),
            mesh_quiet_told: false,
            replicas: ReplicaHistory::default(),
            replicas_counted_at: UnixSecs::MIN / 2,
            log_format: None,
            log_zone: LogZone::default(),
            traffic_group: TrafficGroup::Services,
            traffic_sort: (TrafficColumn::Rps, true),
            traffic_rows: Vec::new(),
            traffic_visible: Vec::new(),
            traffic_selected: 0,
            traffic_dirty: false,
            hotspots: Vec::new(),
            hotspot_selected: 0,
            services: Store::default(),
            backend_services: Default::default(),
            queues: BTreeMap::new(),
            queue_consumers: BTreeMap::new(),
            queue_selected: 0,
            hotspots_dirty: true,
            last_hotspot_refresh: None,
            last_traffic_refresh: now,
            rebuild_all: true,
            dirty_pods: HashSet::new(),
            usage_dirty: false,
            queues_dirty: false,
            nodes_dirty: true,
            last_clock_refresh: now,
            view_dirty: true,
            layout: LayoutMemo::default(),
        };
        state.log_format = state.config.log_format.as_deref().and_then(|f| Format::by_name(f).ok());
        state.log_zone = state.config.log_tz.as_deref().and_then(|z| LogZone::parse(z).ok()).unwrap_or_default();
        for p in problems {
            state.notice(p);
        }
        state
    }

    /// Sidecars followed for a while and not one access line read: Istio logs none unless told
    /// to, and a user would otherwise never learn why no call chain is ever traced. Said once.
    fn tell_if_the_mesh_is_quiet(&mut self) {
        let Some(mesh) = self.sources.get(&SourceId::Mesh) else { return };
        if self.mesh_quiet_told
            || mesh.state != SourceState::Connected
            || self.now - mesh.since < MESH_QUIET_SECS
            || self.mesh_streams.values().any(|s| s.matched > 0)
        {
            return;
        }
        self.mesh_quiet_told = true;
        let unread: u64 = self.mesh_streams.values().map(|s| s.skipped).sum();
        self.notice(if unread > 0 {
            format!(
                "mesh: {unread} sidecar log lines, none an access line kpulse reads (Istio's default text or JSON format): calls between services are not traced"
            )
        } else {
            "mesh: no sidecar wrote an access line in 2 min: Istio logs calls only when enabled (meshConfig.accessLogFile: /dev/stdout, or a Telemetry resource with accessLogging)".to_string()
        });
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        let text = text.into();
        tracing::info!("notice: {text}");
        self.notices.push((self.now, text));
        if self.notices.len() > 20 {
            self.notices.remove(0);
        }
    }

    fn step_secs(&self) -> i64 {
        self.config.metrics_interval.as_secs().max(1) as i64
    }

    fn retention_secs(&self) -> i64 {
        self.config.retention.as_secs() as i64
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Command> {
        match msg {
            Msg::Tick(now) => {
                self.now = now;
                self.traffic.advance(now);
                self.traffic_dirty |= !self.streams.is_empty();
                for calls in self.mesh.values_mut() {
                    calls.advance(now);
                }
                self.tell_if_the_mesh_is_quiet();
                // A meshed pod that is gone takes its calls with it (pods churn; the map must not).
                if now % 60 == 0 && !self.mesh.is_empty() && self.sources.contains_key(&SourceId::Pods) {
                    let pods = &self.pods;
                    self.mesh.retain(|pod, _| pods.get(pod).is_some());
                    self.mesh_streams.retain(|stream, _| {
                        crate::sources::mesh::stream_pod(stream).is_some_and(|p| pods.get(&p).is_some())
                    });
                }
                vec![]
            }
            Msg::Source(update) => {
                self.apply_source(update);
                vec![]
            }
            Msg::Key(key) => self.on_key(key),
            Msg::Mouse(m) => {
                self.on_mouse(m);
                vec![]
            }
        }
    }

    fn mark_data(&mut self, source: SourceId) {
        if let Some(s) = self.sources.get_mut(&source) {
            s.last_data = Some(self.now);
            s.retry_at = None;
        }
    }

    fn apply_source(&mut self, update: Update) {
        match update {
            Update::Pods(change) => {
                let observed = match &change {
                    Change::InitItem(p) | Change::Applied(p) => Some(p.clone()),
                    _ => None,
                };
                let done = matches!(change, Change::InitDone);
                let touched = match &change {
                    Change::Applied(p) | Change::Deleted(p) => Some(p.key.clone()),
                    _ => None,
                };
                // A deleted pod's history goes with it, so memory stays bounded under churn.
                if let Change::Deleted(p) = &change {
                    self.tracks.remove_pod(&p.key);
                }
                if self.pods.apply(change, |p| p.key.clone()) {
                    match touched {
                        Some(key) => {
                            self.dirty_pods.insert(key);
                        }
                        None => self.rebuild_all = true,
                    }
                    self.nodes_dirty = true;
                    self.mark_data(SourceId::Pods);
                }
                if let Some(pod) = observed {
                    self.observe_pod(&pod);
                }
                if done {
                    self.prune_tracks();
                }
            }
            Update::Nodes(change) => {
                if self.nodes.apply(change, |n| n.name.clone()) {
                    self.nodes_dirty = true;
                    self.mark_data(SourceId::Nodes);
                }
            }
            Update::Events(change) => {
                if self.events.apply(change, |e| e.key.clone()) {
                    self.mark_data(SourceId::Events);
                }
            }
            Update::PodUsage { at, source, usages } => {
                // The wait for the first CPU rate is over: its notice goes.
                if usages.iter().any(|u| u.usage.cpu_m.is_finite()) {
                    self.notices.retain(|(_, n)| !n.starts_with(crate::sources::cadvisor::AWAITING_RATES));
                }
                for u in usages {
                    let track = self.track_mut(&u.pod, &u.container);
                    track.record_usage(at, u.usage);
                    if let Some(t) = u.throttle {
                        track.throttle.push(at, t);
                    }
                    if let Some(n) = u.oom_events {
                        track.observe_oom_counter(at, n);
                    }
                    if let Some(n) = u.restarts_last_hour {
                        track.report_restarts_last_hour(at, n);
                    }
                }
                self.mark_data(source);
                self.usage_dirty = true;
            }
            Update::UsageHistory(history) => {
                for h in history {
                    let track = self.track_mut(&h.pod, &h.container);
                    for (at, cpu_m, mem) in h.points {
                        track.record_usage(at, Usage { cpu_m: cpu_m.into(), mem: mem.into() });
                    }
                }
                self.usage_dirty = true;
            }
            Update::PodNetwork { at, usages } => {
                let (step, retention) = (self.step_secs(), self.retention_secs());
                for (pod, rx, tx) in usages {
                    let net = self
                        .tracks
                        .pod_net_or_insert(&pod, || (Series::new(step, retention), Series::new(step, retention)));
                    net.0.push(at, rx);
                    net.1.push(at, tx);
                }
                self.usage_dirty = true;
            }
            Update::NodeUsage { usages, .. } => {
                self.node_usage = usages.into_iter().collect();
                self.mark_data(SourceId::NodeMetrics);
                self.nodes_dirty = true;
            }
            Update::Status { source, state } => {
                let now = self.now;
                let status = self.sources.entry(source).or_insert(SourceStatus::connecting(now));
                if status.state != state {
                    // The --log-file's record of what each source went through (no-op without one).
                    match state.reason() {
                        Some(why) => tracing::warn!("source {}: {} ({why})", source.label(), state.word()),
                        None => tracing::info!("source {}: {}", source.label(), state.word()),
                    }
                    if !matches!(state, SourceState::Reconnecting(_)) {
                        status.retry_at = None;
                    }
                    status.state = state;
                    status.since = now;
                }
            }
            Update::Retrying { source, after } => {
                if let Some(status) = self.sources.get_mut(&source) {
                    status.retry_at = Some(self.now + after.as_secs_f64().ceil() as UnixSecs);
                }
            }
            Update::AccessLog { stream, chunk } if crate::sources::mesh::stream_pod(&stream).is_some() => {
                let Some(pod) = crate::sources::mesh::stream_pod(&stream) else { return };
                let retention = self.retention_secs();
                let calls = self.mesh.entry(pod).or_insert_with(|| Traffic::new(self.now, retention));
                // Istio's sidecars write their own format; `--log-format` is the gateway's.
                let s = self.mesh_streams.entry(stream).or_insert_with(Stream::outbound_calls);
                s.ingest(&chunk, calls, self.now);
                self.hotspots_dirty = true;
                self.mark_data(SourceId::Mesh);
            }
            Update::AccessLog { stream, chunk } => {
                let s = stream_entry(&mut self.streams, &stream, &self.log_format, &self.log_zone);
                let was_mostly_late = s.mostly_late();
                s.ingest(&chunk, &mut self.traffic, self.now);
                let newest = self.traffic.log_span.map(|(_, last)| last);
                if let Some(text) = s.late_warning(&stream, newest).filter(|_| !was_mostly_late) {
                    self.notice(text);
                }
                self.traffic_dirty = true;
                self.mark_data(SourceId::Gateway);
            }
            Update::LogCaughtUp { stream } => self.stream(&stream).caught_up = true,
            Update::Queues { at, broker, readings } => {
                let (step, retention) = (self.step_secs(), self.retention_secs());
                for (key, reading) in &readings {
                    self.queues
                        .entry(key.clone())
                        .or_insert_with(|| QueueTrack::new(step, retention))
                        .observe(at, reading);
                }
                // A queue the broker stopped reporting was deleted: its history goes with it.
                self.queues.retain(|k, _| k.broker != broker || readings.contains_key(k));
                self.mark_data(SourceId::Brokers);
                self.hotspots_dirty = true;
                self.queues_dirty = true;
            }
            Update::Services(change) => {
                if self.services.apply(change, |s| s.key.clone()) {
                    self.backend_services = crate::analysis::traffic::backend_index(self.services.values());
                    // Names already on screen may now resolve differently.
                    self.traffic_dirty |= !self.streams.is_empty();
                    self.hotspots_dirty = true;
                }
                self.mark_data(SourceId::Services);
            }
            Update::ApiCost { at, increment } => self.api_cost.record(at, increment),
            Update::Notice(text) => self.notice(text),
        }
    }

    /// The Events view's order: growing backlogs first (fastest first), then the largest.
    pub fn queue_order(&self) -> Vec<&QueueKey> {
        let filter = self.filter.to_lowercase();
        let mut keys: Vec<&QueueKey> =
            self.queues.keys().filter(|k| filter.is_empty() || k.label().to_lowercase().contains(&filter)).collect();
        let growth = |k: &QueueKey| {
            let s = &self.queues[k].stats;
            (if s.growing_since.is_some() { s.backlog_per_sec } else { f64::NEG_INFINITY }, s.backlog)
        };
        keys.sort_by(|a, b| {
            let (ga, ba) = growth(a);
            let (gb, bb) = growth(b);
            gb.total_cmp(&ga).then(bb.total_cmp(&ba)).then_with(|| a.cmp(b))
        });
        keys
    }

    /// Whether `pod` consumes the queue: the broker names it as a client (its IP or name), or a
    /// `[[events.consumers]]` selector for the queue matches it, else (no selector given) it is
    /// labelled with the consumer group's name (a Kafka group or JetStream consumer is usually
    /// named after its service).
    pub fn consumes(&self, key: &QueueKey, pod: &PodInfo) -> bool {
        if let Some(track) = self.queues.get(key)
            && !track.stats.clients.is_empty()
            && (track.stats.clients.contains(&pod.key.name)
                || pod.pod_ip.as_ref().is_some_and(|ip| track.stats.clients.contains(ip)))
        {
            return true;
        }
        let mut specs = self.config.events.consumers.iter().filter(|c| c.matches(key)).peekable();
        if specs.peek().is_none() {
            return !key.group.is_empty()
                && ["app", "app.kubernetes.io/name"].iter().any(|l| pod.label(l) == Some(key.group.as_str()));
        }
        specs.any(|spec| {
            spec.selector().is_some_and(|(ns, labels)| {
                pod.key.namespace == ns && labels.iter().all(|(k, v)| pod.label(k) == Some(*v))
            })
        })
    }

    /// Re-derives who consumes what, when queues or pods changed (not per frame): each queue's
    /// consumer pods, and on each consumer's rows its queue (the worst, if several). One pass over
    /// the pods per queue.
    fn refresh_consumers(&mut self) {
        let mut by_pod: HashMap<PodKey, ConsumedQueue> = HashMap::new();
        let mut by_queue = BTreeMap::new();
        for (key, track) in &self.queues {
            let queue = ConsumedQueue { backlog: track.stats.backlog, direction: track.stats.direction };
            let mut names = Vec::new();
            for pod in self.pods.values().filter(|p| self.consumes(key, p)) {
                by_pod.entry(pod.key.clone()).and_modify(|q| *q = q.worse(queue)).or_insert(queue);
                names.push(pod.key.to_string());
            }
            by_queue.insert(key.clone(), names);
        }
        for row in &mut self.rows {
            row.consumed = by_pod.get(&row.pod).copied();
        }
        self.queue_consumers = by_queue;
    }

    /// The pods that consume a queue, as `namespace/pod`, as of the last refresh.
    pub fn consumer_pods(&self, key: &QueueKey) -> &[String] {
        self.queue_consumers.get(key).map_or(&[], Vec::as_slice)
    }

    fn observe_pod(&mut self, pod: &PodInfo) {
        let now = self.now;
        for c in &pod.containers {
            let health = classify(pod, c, now);
            self.track_mut(&pod.key, &c.name).observe(now, c.restarts, &health);
        }
    }

    /// A container's history, begun empty at the configured step and retention.
    fn track_mut(&mut self, pod: &PodKey, container: &str) -> &mut ContainerTrack {
        let (step, retention) = (self.step_secs(), self.retention_secs());
        self.tracks.get_or_insert(pod, container, || ContainerTrack::new(step, retention))
    }

    /// Drops the history of containers whose pods are gone, so memory stays bounded under churn.
    fn prune_tracks(&mut self) {
        let pods = &self.pods;
        self.tracks.retain_pods(|pod| pods.get(pod).is_some());
    }

    /// Forgets everything collected, for a context or scope switch.
    pub fn reset_data(&mut self) {
        self.pods.clear();
        self.nodes.clear();
        self.events.clear();
        self.services.clear();
        self.backend_services.clear();
        self.tracks.clear();
        self.node_usage.clear();
        // Another cluster's gateway is another gateway; a file or stdin stream goes on.
        self.traffic = Traffic::new(self.now, self.retention_secs());
        self.streams.retain(|name, _| name.starts_with("file:") || name == "stdin");
        self.mesh_streams.clear();
        self.mesh.clear();
        self.mesh_quiet_told = false;
        self.replicas = ReplicaHistory::default();
        self.traffic_rows.clear();
        for s in self.sources.values_mut() {
            *s = SourceStatus::connecting(self.now);
        }
        self.rebuild_all = true;
        self.nodes_dirty = true;
    }

    /// Brings rows up to date with what changed, then re-applies filter and sort. Called once
    /// before each draw, never per message: a burst of 10,000 watch events costs one refresh, and
    /// one changed pod rebuilds only its own rows.
    pub fn refresh(&mut self) {
        let consumers_moved = self.queues_dirty || self.rebuild_all || !self.dirty_pods.is_empty();
        // Pod counts per workload: a few seconds late is soon enough to see a scale-in.
        let pods_moved = self.rebuild_all || !self.dirty_pods.is_empty();
        let since_counted = self.now - self.replicas_counted_at;
        if (pods_moved && since_counted >= REPLICA_COUNT_SECS) || since_counted >= 60 {
            self.replicas.observe(self.now, &replica_counts(self.pods.values()), REPLICA_WINDOW_SECS);
            self.replicas_counted_at = self.now;
        }
        // Health ("Starting" for 30 s, "Restarted" for an hour) and restarts/1h move with the clock,
        // slowly: re-deriving them every few seconds is enough.
        let clock_due = self.now - self.last_clock_refresh >= CLOCK_REFRESH_SECS;
        if self.rebuild_all {
            self.rows = build_container_rows(self.pods.values(), &self.tracks, self.now);
            self.rows.sort_by(ContainerColumn::tiebreak);
            let at = self.traffic_now();
            fill_traffic(&mut self.rows, &self.pods, &self.traffic, at);
            self.rebuild_all = false;
            self.dirty_pods.clear();
            self.view_dirty = true;
        } else if !self.dirty_pods.is_empty() {
            // Replace each changed pod's rows in place: its rows are one contiguous, ordered range.
            for key in std::mem::take(&mut self.dirty_pods) {
                let start = self.rows.partition_point(|r| r.pod < key);
                let end = start + self.rows[start..].partition_point(|r| r.pod == key);
                let fresh = build_container_rows(self.pods.get(&key).into_iter(), &self.tracks, self.now);
                let mut fresh = fresh;
                fresh.sort_by(ContainerColumn::tiebreak);
                fill_traffic(&mut fresh, &self.pods, &self.traffic, self.traffic_now());
                self.rows.splice(start..end, fresh);
            }
            self.view_dirty = true;
        }
        if clock_due {
            for row in &mut self.rows {
                if let Some(pod) = self.pods.get(&row.pod) {
                    row.refresh_derived(pod, &self.tracks, self.now);
                }
            }
            self.last_clock_refresh = self.now;
            self.usage_dirty = false;
            self.view_dirty = true;
        } else if self.usage_dirty {
            for row in &mut self.rows {
                row.refresh_usage(&self.tracks);
            }
            self.usage_dirty = false;
            self.view_dirty = true;
        }
        if consumers_moved && (self.queues_dirty || !self.queues.is_empty()) {
            self.refresh_consumers();
            self.queues_dirty = false;
            self.view_dirty = true;
        }
        if self.nodes_dirty {
            let allocs = allocations(self.pods.values());
            self.node_rows = self
                .nodes
                .values()
                .map(|n| NodeRow {
                    info: n.clone(),
                    alloc: allocs.get(&n.name).copied().unwrap_or_default(),
                    usage: self.node_usage.get(&n.name).copied(),
                })
                .collect();
            self.nodes_dirty = false;
            self.view_dirty = true;
        }
        // Traffic moves with every log line: re-derive it at most once a second.
        if self.traffic_dirty && (self.now > self.last_traffic_refresh || self.traffic_rows.is_empty()) {
            self.refresh_traffic();
        }
        if self.view_dirty {
            self.hotspots_dirty = true;
            self.apply_view();
            self.view_dirty = false;
        }
        // Ranking is cheap for a small cluster (always fresh) and bounded for a big one (once a
        // second, every third for the biggest, however many updates arrive).
        let every = if self.rows.len() > RANK_SLOWER_ABOVE_ROWS { SLOW_RANK_EVERY_SECS } else { 1 };
        let hotspots_due = self.last_hotspot_refresh.is_none_or(|last| self.now - last >= every)
            || self.rows.len() < ALWAYS_RANK_BELOW_ROWS;
        if self.hotspots_dirty && hotspots_due {
            self.refresh_hotspots();
        }
    }

    /// The gateway log stream named `name`, new in the format and zone asked for.
    pub fn stream(&mut self, name: &str) -> &mut Stream {
        stream_entry(&mut self.streams, name, &self.log_format, &self.log_zone)
    }

    /// Logs alone, no cluster to join them to (why: `reason`): the gateway is the only source.
    pub fn without_cluster(&mut self, reason: String) {
        self.logs_only = Some(reason);
        self.sources.retain(|id, _| *id == SourceId::Gateway);
    }

    /// The time the traffic windows are read at: now, or for a log read after the fact on the
    /// log's own clock ([`Traffic::follow_log_time`]), its newest line. (Everything else — ages,
    /// notices, staleness — stays on the wall clock.)
    pub fn traffic_now(&self) -> UnixSecs {
        self.traffic.log_now().unwrap_or(self.now)
    }

    /// Re-ranks the hotspots from everything collected so far.
    pub fn refresh_hotspots(&mut self) {
        let sources = hotspots::Sources {
            rows: &self.rows,
            pods: &self.pods,
            tracks: &self.tracks,
            nodes: &self.nodes,
            node_usage: &self.node_usage,
            traffic: &self.traffic,
            streams: &self.streams,
            mesh: &self.mesh,
            replica_drops: self.replicas.drops(self.now, REPLICA_WINDOW_SECS),
            backend_services: &self.backend_services,
            queues: self.queues.iter().map(|(k, t)| (k, &t.stats, self.consumer_pods(k).to_vec())).collect(),
            now: self.traffic_now(),
        };
        self.hotspots = hotspots::compute(sources, &self.config.hotspots);
        self.hotspot_selected = self.hotspot_selected.min(self.hotspots.len().saturating_sub(1));
        self.hotspots_dirty = false;
        self.last_hotspot_refresh = Some(self.now);
    }

    pub fn selected_hotspot(&self) -> Option<&Hotspot> {
        self.hotspots.get(self.hotspot_selected)
    }

    /// Enter on a hotspot: the rows behind it, with their detail open.
    fn open_hotspot(&mut self) {
        let Some(subject) = self.selected_hotspot().map(|h| h.subject.clone()) else { return };
        self.filter.clear();
        self.namespace_filter = None;
        match subject {
            Subject::Container { namespace, pod, container } => {
                self.view = View::Containers;
                self.selected_key = Some((PodKey::new(namespace, pod), container));
            }
            Subject::Service { backend, .. } => {
                self.view = View::Traffic;
                if self.traffic_group != TrafficGroup::Services {
                    self.traffic_group = TrafficGroup::Services;
                    self.refresh_traffic();
                }
                self.apply_view();
                if let Some(pos) =
                    self.traffic_visible.iter().position(|&i| self.traffic_rows[i as usize].key == backend)
                {
                    self.traffic_selected = pos;
                }
            }
            Subject::Node { name } => {
                self.view = View::Nodes;
                self.apply_view();
                if let Some(pos) = self.node_visible.iter().position(|&i| self.node_rows[i as usize].info.name == name)
                {
                    self.node_selected = pos;
                }
            }
            Subject::Workload { namespace, workload } => {
                // Its pods, as the Containers view filters by name.
                self.view = View::Containers;
                self.namespace_filter = Some(namespace);
                self.filter = workload.split_once('/').map_or(workload.clone(), |(_, name)| format!("{name}-"));
                self.show_detail = false;
                self.apply_view();
                self.view_dirty = true;
                return;
            }
            Subject::Gateway => {
                self.view = View::Traffic;
                self.show_detail = false;
                self.view_dirty = true;
                return;
            }
            Subject::Queue { name } => {
                self.view = View::Events;
                self.queue_selected = self.queue_order().iter().position(|k| k.label() == name).unwrap_or(0);
                return;
            }
        }
        self.show_detail = true;
        self.view_dirty = true;
    }

    /// The Traffic view's rows of `group`, unsorted and unfiltered (the snapshot reports them all).
    pub fn traffic_rows_of(&self, group: TrafficGroup) -> Vec<TrafficRow> {
        let by_ip = crate::analysis::traffic::pods_by_ip(self.pods.values());
        let resolver = crate::analysis::traffic::Resolver {
            known: &self.backend_services,
            namespaces: crate::analysis::traffic::namespaces_of(self.pods.values()),
        };
        build_traffic_rows(&self.traffic, group, &by_ip, &resolver, self.traffic_now())
    }

    fn refresh_traffic(&mut self) {
        self.traffic_rows = self.traffic_rows_of(self.traffic_group);
        let at = self.traffic_now();
        fill_traffic(&mut self.rows, &self.pods, &self.traffic, at);
        self.traffic_dirty = false;
        self.last_traffic_refresh = self.now;
        self.view_dirty = true;
    }

    fn apply_view(&mut self) {
        let filter = self.filter.as_str();
        let ns = self.namespace_filter.as_deref();
        let mut visible: Vec<u32> = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| ns.is_none_or(|ns| r.pod.namespace == ns))
            .filter(|(_, r)| matches_filter(filter, &[&r.pod.namespace, &r.pod.name, &r.container, &r.node]))
            .map(|(i, _)| i as u32)
            .collect();
        let (col, desc) = self.container_sort;
        let now = self.now;
        let rows = &self.rows;
        // Rows are kept in (pod, container) order, so a stable sort on the column alone breaks ties
        // the same way every time without comparing names.
        visible.sort_by(|&a, &b| {
            let ord = col.compare(&rows[a as usize], &rows[b as usize], now);
            if desc { ord.reverse() } else { ord }
        });
        self.visible = visible;
        // Keep the cursor on the same container after a re-sort or refresh.
        if let Some(key) = &self.selected_key
            && let Some(pos) = self.visible.iter().position(|&i| {
                let r = &self.rows[i as usize];
                r.pod == key.0 && r.container == key.1
            })
        {
            self.selected = pos;
        }
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
        self.selected_key = self.selected_row().map(|r| r.key());

        let mut nodes: Vec<u32> = self
            .node_rows
            .iter()
            .enumerate()
            .filter(|(_, r)| matches_filter(filter, &[&r.info.name]))
            .map(|(i, _)| i as u32)
            .collect();
        let (ncol, ndesc) = self.node_sort;
        let nrows = &self.node_rows;
        nodes.sort_unstable_by(|&a, &b| {
            let (ra, rb) = (&nrows[a as usize], &nrows[b as usize]);
            let ord = ncol.compare(ra, rb);
            let ord = if ndesc { ord.reverse() } else { ord };
            ord.then_with(|| ra.info.name.cmp(&rb.info.name))
        });
        self.node_visible = nodes;
        self.node_selected = self.node_selected.min(self.node_visible.len().saturating_sub(1));

        let mut traffic: Vec<u32> = self
            .traffic_rows
            .iter()
            .enumerate()
            .filter(|(_, r)| matches_filter(filter, &[&r.name, &r.target]))
            .map(|(i, _)| i as u32)
            .collect();
        let (tcol, tdesc) = self.traffic_sort;
        let trows = &self.traffic_rows;
        // Rows are built in name order: a stable sort keeps ties in that order.
        traffic.sort_by(|&a, &b| {
            let ord = tcol.compare(&trows[a as usize], &trows[b as usize]);
            if tdesc { ord.reverse() } else { ord }
        });
        self.traffic_visible = traffic;
        self.traffic_selected = self.traffic_selected.min(self.traffic_visible.len().saturating_sub(1));
    }

    pub fn selected_traffic(&self) -> Option<&TrafficRow> {
        self.traffic_visible.get(self.traffic_selected).map(|&i| &self.traffic_rows[i as usize])
    }

    pub fn selected_row(&self) -> Option<&ContainerRow> {
        self.visible.get(self.selected).map(|&i| &self.rows[i as usize])
    }

    pub fn selected_node(&self) -> Option<&NodeRow> {
        self.node_visible.get(self.node_selected).map(|&i| &self.node_rows[i as usize])
    }

    /// Warning events about a pod, newest first. The kind matters: a bare pod may share its name
    /// with a Service or Deployment in the same namespace, whose events are not about the pod.
    pub fn pod_events(&self, pod: &PodKey) -> Vec<&EventInfo> {
        let mut evs: Vec<&EventInfo> =
            self.events.values().filter(|e| &e.involved == pod && e.involved_kind == "Pod").collect();
        evs.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
        evs
    }

    /// Namespaces known from the pods seen, for the picker.
    pub fn namespaces(&self) -> Vec<String> {
        crate::analysis::traffic::namespaces_of(self.pods.values()).into_iter().map(String::from).collect()
    }

    pub fn page_size(&self) -> usize {
        (self.layout.table.get().height as usize).saturating_sub(3).max(1)
    }

    fn move_selection(&mut self, delta: isize) {
        let (len, cur) = match self.view {
            View::Containers => (self.visible.len(), self.selected),
            View::Nodes => (self.node_visible.len(), self.node_selected),
            View::Traffic => (self.traffic_visible.len(), self.traffic_selected),
            View::Hotspots => (self.hotspots.len(), self.hotspot_selected),
            // The rows on screen: the filter's, not every queue.
            View::Events => (self.queue_order().len(), self.queue_selected),
        };
        if len == 0 {
            return;
        }
        let next = (cur as isize + delta).clamp(0, len as isize - 1) as usize;
        match self.view {
            View::Containers => {
                self.selected = next;
                self.selected_key = self.selected_row().map(|r| r.key());
            }
            View::Nodes => self.node_selected = next,
            View::Traffic => self.traffic_selected = next,
            View::Hotspots => self.hotspot_selected = next,
            View::Events => self.queue_selected = next,
        }
    }

    fn cycle_sort(&mut self, forward: bool) {
        match self.view {
            View::Containers => self.container_sort = cycled(self.container_sort, forward),
            View::Nodes => self.node_sort = cycled(self.node_sort, forward),
            View::Traffic => self.traffic_sort = cycled(self.traffic_sort, forward),
            // Ranked: there is no other order.
            View::Hotspots | View::Events => {}
        }
        self.view_dirty = true;
    }

    /// Sorts by the column with this index in the current view (a header click); a second click
    /// on the same column reverses it.
    pub fn sort_by_index(&mut self, index: usize) {
        match self.view {
            View::Containers => self.container_sort = clicked(self.container_sort, index),
            View::Nodes => self.node_sort = clicked(self.node_sort, index),
            View::Traffic => self.traffic_sort = clicked(self.traffic_sort, index),
            View::Hotspots | View::Events => {}
        }
        self.view_dirty = true;
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Command> {
        // Ctrl-C always quits, whatever the keymap or mode.
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return vec![Command::Quit];
        }
        match self.input.clone() {
            InputMode::Filter => {
                self.on_filter_key(key);
                return vec![];
            }
            InputMode::Command(text) => return self.on_command_key(key, text),
            InputMode::Normal => {}
        }
        if let Overlay::Picker { .. } = self.overlay {
            return self.on_picker_key(key);
        }
        if self.overlay == Overlay::Help {
            if matches!(key.code, KeyCode::Esc) || self.keymap.action(&key) == Some(Action::Help) {
                self.overlay = Overlay::None;
            } else if self.keymap.action(&key) == Some(Action::Quit) {
                return vec![Command::Quit];
            }
            return vec![];
        }
        if key.code == KeyCode::Esc {
            if self.show_detail {
                self.show_detail = false;
            } else if !self.filter.is_empty() {
                self.filter.clear();
                self.view_dirty = true;
            }
            return vec![];
        }
        let Some(action) = self.keymap.action(&key) else { return vec![] };
        match action {
            Action::Quit => return vec![Command::Quit],
            Action::Help => self.overlay = Overlay::Help,
            Action::Filter => self.input = InputMode::Filter,
            Action::Command => self.input = InputMode::Command(String::new()),
            Action::Namespace => {
                let mut items = vec!["all".to_string()];
                items.extend(self.namespaces());
                if let Scope::Namespace(ns) = &self.scope
                    && !items.contains(ns)
                {
                    items.push(ns.clone());
                }
                self.overlay = Overlay::Picker { kind: PickerKind::Namespace, items, selected: 0 };
            }
            Action::Context => {
                let selected = self.contexts.iter().position(|c| *c == self.context).unwrap_or(0);
                self.overlay = Overlay::Picker { kind: PickerKind::Context, items: self.contexts.clone(), selected };
            }
            Action::Detail if self.view == View::Hotspots => self.open_hotspot(),
            Action::Detail => self.show_detail = !self.show_detail,
            Action::Containers => self.view = View::Containers,
            Action::Nodes => self.view = View::Nodes,
            Action::Traffic => self.view = View::Traffic,
            Action::Hotspots => self.view = View::Hotspots,
            Action::Events => self.view = View::Events,
            Action::NextView => {
                let i = View::ORDER.iter().position(|v| *v == self.view).unwrap_or(0);
                self.view = View::ORDER[(i + 1) % View::ORDER.len()];
            }
            Action::TrafficGroup => {
                self.view = View::Traffic;
                self.traffic_group = self.traffic_group.next();
                self.traffic_selected = 0;
                self.refresh_traffic();
            }
            Action::Up => self.move_selection(-1),
            Action::Down => self.move_selection(1),
            Action::PageUp => self.move_selection(-(self.page_size() as isize)),
            Action::PageDown => self.move_selection(self.page_size() as isize),
            Action::Top => self.move_selection(isize::MIN / 2),
            Action::Bottom => self.move_selection(isize::MAX / 2),
            Action::SortNext => self.cycle_sort(true),
            Action::SortPrev => self.cycle_sort(false),
            Action::SortReverse => {
                match self.view {
                    View::Containers => self.container_sort.1 = !self.container_sort.1,
                    View::Nodes => self.node_sort.1 = !self.node_sort.1,
                    View::Traffic => self.traffic_sort.1 = !self.traffic_sort.1,
                    View::Hotspots | View::Events => {}
                }
                self.view_dirty = true;
            }
        }
        vec![]
    }

    fn on_filter_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => self.input = InputMode::Normal,
            KeyCode::Esc => {
                self.filter.clear();
                self.input = InputMode::Normal;
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => self.filter.push(c),
            _ => return,
        }
        self.selected = 0;
        self.view_dirty = true;
    }

    fn on_command_key(&mut self, key: KeyEvent, mut text: String) -> Vec<Command> {
        match key.code {
            KeyCode::Esc => self.input = InputMode::Normal,
            KeyCode::Enter => {
                self.input = InputMode::Normal;
                return self.run_command(text.trim());
            }
            KeyCode::Backspace => {
                text.pop();
                self.input = InputMode::Command(text);
            }
            KeyCode::Char(c) => {
                text.push(c);
                self.input = InputMode::Command(text);
            }
            _ => {}
        }
        vec![]
    }

    /// `:ns NAME`, `:ns all`, `:ctx NAME`, `:nodes`, `:pods`, `:q`.
    pub fn run_command(&mut self, text: &str) -> Vec<Command> {
        let mut words = text.split_whitespace();
        match (words.next(), words.next()) {
            (Some("q" | "quit" | "q!"), _) => vec![Command::Quit],
            (Some("ns" | "namespace"), Some(ns)) => self.switch_namespace(ns),
            (Some("ns" | "namespace"), None) => {
                self.on_key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE));
                vec![]
            }
            (Some("ctx" | "context"), Some(ctx)) => self.switch_context(ctx),
            (Some("no" | "node" | "nodes"), _) => {
                self.view = View::Nodes;
                vec![]
            }
            (Some("co" | "pods" | "po" | "containers"), _) => {
                self.view = View::Containers;
                vec![]
            }
            (None, _) => vec![],
            (Some(other), _) => {
                self.notice(format!("unknown command :{other} (try :ns, :ctx, :nodes, :pods, :q)"));
                vec![]
            }
        }
    }

    fn switch_namespace(&mut self, ns: &str) -> Vec<Command> {
        let all = matches!(ns, "all" | "-A" | "*");
        self.selected = 0;
        self.view_dirty = true;
        match (&self.scope, all) {
            // Watching everything already: narrowing is a view filter, instant and free.
            (Scope::All, true) => {
                self.namespace_filter = None;
                vec![]
            }
            (Scope::All, false) => {
                self.namespace_filter = Some(ns.to_string());
                vec![]
            }
            (Scope::Namespace(cur), false) if cur == ns => vec![],
            (Scope::Namespace(_), _) => {
                let scope = if all { Scope::All } else { Scope::Namespace(ns.to_string()) };
                self.scope = scope.clone();
                self.namespace_filter = None;
                self.reset_data();
                vec![Command::Rescope(scope)]
            }
        }
    }

    fn switch_context(&mut self, ctx: &str) -> Vec<Command> {
        if ctx == self.context {
            return vec![];
        }
        if !self.contexts.iter().any(|c| c == ctx) {
            self.notice(format!("no context named {ctx:?} in the kubeconfig"));
            return vec![];
        }
        self.context = ctx.to_string();
        self.namespace_filter = None;
        self.reset_data();
        vec![Command::SwitchContext(ctx.to_string())]
    }

    fn on_picker_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Overlay::Picker { kind, items, selected } = &mut self.overlay else { return vec![] };
        let kind = *kind;
        match key.code {
            KeyCode::Esc => self.overlay = Overlay::None,
            KeyCode::Up | KeyCode::Char('k') => *selected = selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => *selected = (*selected + 1).min(items.len().saturating_sub(1)),
            KeyCode::Enter => {
                let choice = items.get(*selected).cloned();
                self.overlay = Overlay::None;
                if let Some(choice) = choice {
                    return match kind {
                        PickerKind::Namespace => self.switch_namespace(&choice),
                        PickerKind::Context => self.switch_context(&choice),
                    };
                }
            }
            _ => {}
        }
        vec![]
    }

    fn on_mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollDown => self.move_selection(3),
            MouseEventKind::ScrollUp => self.move_selection(-3),
            MouseEventKind::Down(MouseButton::Left) => {
                let area = self.layout.table.get();
                if m.column < area.x
                    || m.column >= area.x + area.width
                    || m.row < area.y
                    || m.row >= area.y + area.height
                {
                    return;
                }
                // Row 0 of the area is the border, row 1 the header.
                let inner_row = (m.row - area.y) as usize;
                if inner_row == 1 {
                    let header = self.layout.header.get();
                    if let Some(i) = header.iter().position(|(x, w)| *w > 0 && m.column >= *x && m.column < x + w) {
                        self.sort_by_index(i);
                    }
                } else if inner_row >= 2 {
                    let target = self.layout.offset.get() + inner_row - 2;
                    let cur = match self.view {
                        View::Containers => self.selected,
                        View::Nodes => self.node_selected,
                        View::Traffic => self.traffic_selected,
                        View::Hotspots => self.hotspot_selected,
                        View::Events => self.queue_selected,
                    };
                    self.move_selection(target as isize - cur as isize);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::broker::{QueueKey, Reading};

    #[test]
    fn the_queue_selection_stays_within_the_filtered_rows() {
        let mut state = State::new(Config::default(), "ctx".into(), vec![], Scope::All, 1_000);
        let key = |q: &str| QueueKey { broker: "rabbitmq".into(), queue: q.into(), group: String::new() };
        let readings: BTreeMap<QueueKey, Reading> = ["orders", "payments", "emails"]
            .iter()
            .map(|q| (key(q), Reading { backlog: 1.0, ..Reading::default() }))
            .collect();
        state.update(Msg::Source(Update::Queues { at: 1_000, broker: "rabbitmq".into(), readings }));
        state.view = View::Events;
        state.filter = "pay".into();
        for _ in 0..3 {
            state.move_selection(1);
        }
        assert_eq!(state.queue_order().len(), 1);
        assert_eq!(state.queue_selected, 0, "one row shown: the selection cannot leave it");
    }

    #[test]
    fn a_mesh_whose_sidecars_log_no_calls_is_explained_once() {
        let mut state = State::new(Config::default(), "ctx".into(), vec![], Scope::All, 1_000);
        state.update(Msg::Source(Update::Status { source: SourceId::Mesh, state: SourceState::Connected }));
        // Istio's own startup lines, no access line.
        let chunk = "2026-12-07T03:00:00.000Z\tinfo\tEnvoy proxy is ready\n".to_string();
        state.update(Msg::Source(Update::AccessLog { stream: "mesh:shop/payment-1".into(), chunk }));
        state.update(Msg::Tick(1_060));
        assert!(state.notices.is_empty(), "not yet: {:?}", state.notices);
        state.update(Msg::Tick(1_121));
        state.update(Msg::Tick(1_122));
        let told: Vec<&String> = state.notices.iter().map(|(_, n)| n).filter(|n| n.starts_with("mesh:")).collect();
        assert_eq!(told.len(), 1, "{:?}", state.notices);
        assert!(told[0].contains("none an access line kpulse reads"), "{}", told[0]);

        // Silence, no line at all: the likely cause is that access logging is off.
        let mut quiet = State::new(Config::default(), "ctx".into(), vec![], Scope::All, 1_000);
        quiet.update(Msg::Source(Update::Status { source: SourceId::Mesh, state: SourceState::Connected }));
        quiet.update(Msg::Tick(1_200));
        assert!(quiet.notices.iter().any(|(_, n)| n.contains("meshConfig.accessLogFile")), "{:?}", quiet.notices);
    }
}
