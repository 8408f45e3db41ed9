//! Application state and `update(msg) -> commands`: pure, testable without a terminal. Effects
//! (quit, re-scoping the watchers, switching context) are returned as data for `main` to carry out.
//!
//! Here: the messages, the state and `update`. Beside it: ingest.rs (what the sources deliver),
//! derive.rs (the rows and hotspots the screen shows), input.rs (keys, mouse, `:` commands),
//! queues.rs, and the row builders (rows.rs, traffic.rs, hotspots.rs, visibility.rs).

mod derive;
pub mod hotspots;
mod ingest;
mod input;
pub mod keymap;
mod queues;
pub mod rows;
pub mod table;
pub mod traffic;
pub mod visibility;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};

use ratatui::crossterm::event::{KeyEvent, MouseEvent};
use ratatui::layout::Rect;

use crate::analysis::hotspots::Hotspot;
use crate::config::Config;
use crate::model::accesslog::Format;
use crate::model::accesslog::zone::LogZone;
use crate::model::broker::{QueueKey, QueueTrack};
use crate::model::event::EventInfo;
use crate::model::metrics::Usage;
use crate::model::node::NodeInfo;
use crate::model::pod::{PodInfo, PodKey};
use crate::model::replicas::ReplicaHistory;
use crate::model::service::ServiceInfo;
use crate::model::store::Store;
use crate::model::time::UnixSecs;
use crate::model::traffic::Traffic;
use crate::model::update::Scope;
use crate::model::update::{SourceId, SourceState, Update};
use keymap::KeyMap;
use rows::{ContainerColumn, NodeColumn, Tracks};
use table::Table;
use traffic::{Stream, TrafficColumn, TrafficGroup};

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
    /// Kubernetes Warning events (the Events view is the brokers' queues: another thing).
    pub warnings: Store<PodKey, EventInfo>,
    pub tracks: Tracks,
    pub node_usage: HashMap<String, Usage>,
    pub sources: BTreeMap<SourceId, SourceStatus>,
    /// Why the last namespace or context switch could not connect (a failing credential
    /// plugin, a timeout): nothing is being read until the user switches again.
    pub connect_failed: Option<String>,
    pub notices: Vec<(UnixSecs, String)>,
    /// What kpulse asked of the API server, over the last minute.
    pub api_cost: crate::model::api_cost::ApiCostWindow,

    pub view: View,
    pub overlay: Overlay,
    pub input: InputMode,
    pub filter: String,
    pub show_detail: bool,

    pub container_table: Table<ContainerColumn>,
    pub node_table: Table<NodeColumn>,

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
    pub traffic_table: Table<TrafficColumn>,
    last_traffic_refresh: UnixSecs,
    /// Ranked, re-derived at most once a second when anything they read changed.
    pub hotspots: Vec<Hotspot>,
    pub hotspot_selected: usize,
    /// Services, and the gateway backend names they stand for.
    pub services: Store<PodKey, ServiceInfo>,
    backend_services: hashbrown::HashMap<String, String>,
    /// Queues and consumer groups by broker, with their history.
    pub queues: BTreeMap<QueueKey, QueueTrack>,
    /// Each queue's consumer pods, derived in `refresh`.
    queue_consumers: BTreeMap<QueueKey, Vec<String>>,
    pub queue_selected: usize,
    last_hotspot_refresh: Option<UnixSecs>,
    last_clock_refresh: UnixSecs,
    /// What changed since the last refresh, so a refresh redoes only that.
    dirty: Dirty,
    pub layout: LayoutMemo,
}

/// What changed since the last refresh: each flag names the derived data to redo.
#[derive(Default)]
struct Dirty {
    /// Every container row (a relist, a scope change).
    all: bool,
    /// The rows of these pods only.
    pods: HashSet<PodKey>,
    /// Usage arrived: every row's usage cells.
    usage: bool,
    /// New queue readings: the consumer pods' BACKLOG cells.
    queues: bool,
    nodes: bool,
    /// The filter, the sort or the data under them changed: re-filter and re-sort.
    view: bool,
    traffic: bool,
    hotspots: bool,
}

/// How far back a drop in a workload's replicas counts.
pub const REPLICA_WINDOW_SECS: i64 = 15 * 60;

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
            warnings: Store::default(),
            tracks: Tracks::default(),
            node_usage: HashMap::new(),
            sources: SourceId::ALWAYS.iter().map(|s| (*s, SourceStatus::connecting(now))).collect(),
            connect_failed: None,
            notices: Vec::new(),
            api_cost: Default::default(),
            view: View::Containers,
            overlay: Overlay::None,
            input: InputMode::Normal,
            filter: String::new(),
            show_detail: false,
            container_table: Table::new((ContainerColumn::Health, true)),
            node_table: Table::new((NodeColumn::Name, false)),
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
            traffic_table: Table::new((TrafficColumn::Rps, true)),
            hotspots: Vec::new(),
            hotspot_selected: 0,
            services: Store::default(),
            backend_services: Default::default(),
            queues: BTreeMap::new(),
            queue_consumers: BTreeMap::new(),
            queue_selected: 0,
            last_hotspot_refresh: None,
            last_traffic_refresh: now,
            last_clock_refresh: now,
            dirty: Dirty { all: true, nodes: true, view: true, hotspots: true, ..Dirty::default() },
            layout: LayoutMemo::default(),
        };
        state.log_format = state.config.log_format.as_deref().and_then(|f| Format::by_name(f).ok());
        state.log_zone = state.config.log_tz.as_deref().and_then(|z| LogZone::parse(z).ok()).unwrap_or_default();
        for p in problems {
            state.notice(p);
        }
        state
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
                self.dirty.traffic |= !self.streams.is_empty();
                for calls in self.mesh.values_mut() {
                    calls.advance(now);
                }
                self.tell_if_the_mesh_is_quiet();
                // A meshed pod that is gone takes its calls with it (pods churn; the map must not).
                if now % 60 == 0 && !self.mesh.is_empty() && self.sources.contains_key(&SourceId::Pods) {
                    let pods = &self.pods;
                    self.mesh.retain(|pod, _| pods.get(pod).is_some());
                    self.mesh_streams.retain(|stream, _| {
                        crate::model::update::mesh_stream_pod(stream).is_some_and(|p| pods.get(&p).is_some())
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
    fn a_report_sees_every_line_read_even_within_the_second_of_the_last_refresh() {
        let mut state = State::new(Config::default(), "ctx".into(), vec![], Scope::All, 1_000);
        let line = r#"10.0.0.9 - - [01/Jan/1970:00:16:40 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl" 84 0.002 [shop-a-80] [] 10.244.0.5:80 5 0.002 200 x"#;
        let lines = |n: usize| format!("{line}\n").repeat(n);
        state.update(Msg::Source(Update::AccessLog { stream: "file:/tmp/a.log".into(), chunk: lines(1) }));
        state.refresh();
        state.update(Msg::Source(Update::AccessLog { stream: "file:/tmp/a.log".into(), chunk: lines(4) }));
        state.refresh();
        let requests = |s: &State| s.traffic_table.rows.iter().map(|r| r.now.requests).sum::<u64>();
        assert_eq!(requests(&state), 1, "the dashboard re-derives traffic at most once a second");
        state.refresh_for_report();
        assert_eq!(requests(&state), 5);
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
