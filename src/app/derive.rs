//! The derived views: container, node and traffic rows, filtered and sorted, and the ranked
//! hotspots; rebuilt on `refresh` only where something changed.

use super::rows::{ContainerColumn, ContainerRow, NodeRow, build_container_rows};
use super::traffic::{TrafficGroup, TrafficRow, build_traffic_rows};
use crate::analysis::hotspots::Hotspot;
use crate::analysis::nodes::allocations;
use crate::model::event::EventInfo;
use crate::model::pod::{PodInfo, PodKey};
use crate::model::store::Store;
use crate::model::time::UnixSecs;
use crate::model::traffic::Traffic;

use super::{REPLICA_WINDOW_SECS, State};

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

/// How often pods are counted per workload while they change.
const REPLICA_COUNT_SECS: i64 = 5;

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

impl State {
    /// Brings rows up to date with what changed, then re-applies filter and sort. Called once
    /// before each draw, never per message: a burst of 10,000 watch events costs one refresh, and
    /// one changed pod rebuilds only its own rows.
    pub fn refresh(&mut self) {
        let consumers_moved = self.dirty.queues || self.dirty.all || !self.dirty.pods.is_empty();
        // Pod counts per workload: a few seconds late is soon enough to see a scale-in.
        let pods_moved = self.dirty.all || !self.dirty.pods.is_empty();
        let since_counted = self.now - self.replicas_counted_at;
        if (pods_moved && since_counted >= REPLICA_COUNT_SECS) || since_counted >= 60 {
            self.replicas.observe(self.now, &replica_counts(self.pods.values()), REPLICA_WINDOW_SECS);
            self.replicas_counted_at = self.now;
        }
        // Health ("Starting" for 30 s, "Restarted" for an hour) and restarts/1h move with the clock,
        // slowly: re-deriving them every few seconds is enough.
        let clock_due = self.now - self.last_clock_refresh >= CLOCK_REFRESH_SECS;
        if self.dirty.all {
            self.container_table.rows = build_container_rows(self.pods.values(), &self.tracks, self.now);
            self.container_table.rows.sort_by(ContainerColumn::tiebreak);
            let at = self.traffic_now();
            fill_traffic(&mut self.container_table.rows, &self.pods, &self.traffic, at);
            self.dirty.all = false;
            self.dirty.pods.clear();
            self.dirty.view = true;
        } else if !self.dirty.pods.is_empty() {
            // Replace each changed pod's rows in place: its rows are one contiguous, ordered range.
            for key in std::mem::take(&mut self.dirty.pods) {
                let start = self.container_table.rows.partition_point(|r| r.pod < key);
                let end = start + self.container_table.rows[start..].partition_point(|r| r.pod == key);
                let fresh = build_container_rows(self.pods.get(&key).into_iter(), &self.tracks, self.now);
                let mut fresh = fresh;
                fresh.sort_by(ContainerColumn::tiebreak);
                fill_traffic(&mut fresh, &self.pods, &self.traffic, self.traffic_now());
                self.container_table.rows.splice(start..end, fresh);
            }
            self.dirty.view = true;
        }
        if clock_due {
            for row in &mut self.container_table.rows {
                if let Some(pod) = self.pods.get(&row.pod) {
                    row.refresh_derived(pod, &self.tracks, self.now);
                }
            }
            self.last_clock_refresh = self.now;
            self.dirty.usage = false;
            self.dirty.view = true;
        } else if self.dirty.usage {
            for row in &mut self.container_table.rows {
                row.refresh_usage(&self.tracks);
            }
            self.dirty.usage = false;
            self.dirty.view = true;
        }
        if consumers_moved && (self.dirty.queues || !self.queues.is_empty()) {
            self.refresh_consumers();
            self.dirty.queues = false;
            self.dirty.view = true;
        }
        if self.dirty.nodes {
            let allocs = allocations(self.pods.values());
            self.node_table.rows = self
                .nodes
                .values()
                .map(|n| NodeRow {
                    info: n.clone(),
                    alloc: allocs.get(&n.name).copied().unwrap_or_default(),
                    usage: self.node_usage.get(&n.name).copied(),
                })
                .collect();
            self.dirty.nodes = false;
            self.dirty.view = true;
        }
        // Traffic moves with every log line: re-derive it at most once a second.
        if self.dirty.traffic && (self.now > self.last_traffic_refresh || self.traffic_table.rows.is_empty()) {
            self.refresh_traffic();
        }
        if self.dirty.view {
            self.dirty.hotspots = true;
            self.apply_view();
            self.dirty.view = false;
        }
        // Ranking is cheap for a small cluster (always fresh) and bounded for a big one (once a
        // second, every third for the biggest, however many updates arrive).
        let every = if self.container_table.rows.len() > RANK_SLOWER_ABOVE_ROWS { SLOW_RANK_EVERY_SECS } else { 1 };
        let hotspots_due = self.last_hotspot_refresh.is_none_or(|last| self.now - last >= every)
            || self.container_table.rows.len() < ALWAYS_RANK_BELOW_ROWS;
        if self.dirty.hotspots && hotspots_due {
            self.refresh_hotspots();
        }
    }

    /// Everything derived from what was collected, as of now, for a report: the traffic rows too,
    /// which [`State::refresh`] re-derives at most once a second (a snapshot that read the rest of
    /// a log within that second reported last-minute figures from mid-read).
    pub fn refresh_for_report(&mut self) {
        if self.dirty.traffic {
            self.refresh_traffic();
        }
        self.refresh();
        self.refresh_hotspots();
    }

    /// The time the traffic windows are read at: now, or for a log read after the fact on the
    /// log's own clock ([`Traffic::follow_log_time`]), its newest line. (Everything else — ages,
    /// notices, staleness — stays on the wall clock.)
    pub fn traffic_now(&self) -> UnixSecs {
        self.traffic.log_now().unwrap_or(self.now)
    }

    /// Re-ranks the hotspots from everything collected so far.
    pub fn refresh_hotspots(&mut self) {
        let sources = super::hotspots::Sources {
            rows: &self.container_table.rows,
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
        self.hotspots = super::hotspots::compute(sources, &self.config.hotspots);
        self.hotspot_selected = self.hotspot_selected.min(self.hotspots.len().saturating_sub(1));
        self.dirty.hotspots = false;
        self.last_hotspot_refresh = Some(self.now);
    }

    pub fn selected_hotspot(&self) -> Option<&Hotspot> {
        self.hotspots.get(self.hotspot_selected)
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

    pub(super) fn refresh_traffic(&mut self) {
        self.traffic_table.rows = self.traffic_rows_of(self.traffic_group);
        let at = self.traffic_now();
        fill_traffic(&mut self.container_table.rows, &self.pods, &self.traffic, at);
        self.dirty.traffic = false;
        self.last_traffic_refresh = self.now;
        self.dirty.view = true;
    }

    pub(super) fn apply_view(&mut self) {
        let (filter, now) = (self.filter.as_str(), self.now);
        let ns = self.namespace_filter.as_deref();
        self.container_table.apply(filter, |r| ns.is_none_or(|ns| r.pod.namespace == ns), now);
        self.node_table.apply(filter, |_| true, now);
        self.traffic_table.apply(filter, |_| true, now);
    }

    pub fn selected_traffic(&self) -> Option<&TrafficRow> {
        self.traffic_table.selected_row()
    }

    pub fn selected_row(&self) -> Option<&ContainerRow> {
        self.container_table.selected_row()
    }

    pub fn selected_node(&self) -> Option<&NodeRow> {
        self.node_table.selected_row()
    }

    /// Warning events about a pod, newest first. The kind matters: a bare pod may share its name
    /// with a Service or Deployment in the same namespace, whose events are not about the pod.
    pub fn pod_events(&self, pod: &PodKey) -> Vec<&EventInfo> {
        let mut evs: Vec<&EventInfo> =
            self.warnings.values().filter(|e| &e.involved == pod && e.involved_kind == "Pod").collect();
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
}
