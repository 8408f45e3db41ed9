//! What the sources deliver, folded into the state: pods, nodes, usage, logs, queues, statuses.

use std::collections::BTreeMap;

use super::rows::ContainerTrack;
use super::traffic::Stream;
use crate::analysis::health::classify;
use crate::model::accesslog::Format;
use crate::model::accesslog::zone::LogZone;
use crate::model::broker::QueueTrack;
use crate::model::metrics::Usage;
use crate::model::pod::{PodInfo, PodKey};
use crate::model::replicas::ReplicaHistory;
use crate::model::series::Series;
use crate::model::store::Change;
use crate::model::time::UnixSecs;
use crate::model::traffic::Traffic;
use crate::model::update::{SourceId, SourceState, Update};

/// The next (or previous) column, in its natural direction.
use super::{SourceStatus, State};

/// How long followed sidecars may log nothing readable before kpulse says why.
const MESH_QUIET_SECS: i64 = 120;

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
    /// Sidecars followed for a while and not one access line read: Istio logs none unless told
    /// to, and a user would otherwise never learn why no call chain is ever traced. Said once.
    pub(super) fn tell_if_the_mesh_is_quiet(&mut self) {
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

    pub(super) fn mark_data(&mut self, source: SourceId) {
        if let Some(s) = self.sources.get_mut(&source) {
            s.last_data = Some(self.now);
            s.retry_at = None;
        }
    }

    pub(super) fn apply_source(&mut self, update: Update) {
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
                            self.dirty.pods.insert(key);
                        }
                        None => self.dirty.all = true,
                    }
                    self.dirty.nodes = true;
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
                    self.dirty.nodes = true;
                    self.mark_data(SourceId::Nodes);
                }
            }
            Update::Events(change) => {
                if self.warnings.apply(change, |e| e.key.clone()) {
                    self.mark_data(SourceId::Events);
                }
            }
            Update::PodUsage { at, source, usages } => {
                // The wait for the first CPU rate is over: its notice goes.
                if usages.iter().any(|u| u.usage.cpu_m.is_finite()) {
                    self.notices.retain(|(_, n)| !n.starts_with(crate::model::cadvisor::AWAITING_RATES));
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
                self.dirty.usage = true;
            }
            Update::UsageHistory(history) => {
                for h in history {
                    let track = self.track_mut(&h.pod, &h.container);
                    for (at, cpu_m, mem) in h.points {
                        track.record_usage(at, Usage { cpu_m: cpu_m.into(), mem: mem.into() });
                    }
                }
                self.dirty.usage = true;
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
                self.dirty.usage = true;
            }
            Update::NodeUsage { usages, .. } => {
                self.node_usage = usages.into_iter().collect();
                self.mark_data(SourceId::NodeMetrics);
                self.dirty.nodes = true;
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
            Update::AccessLog { stream, chunk } if crate::model::update::mesh_stream_pod(&stream).is_some() => {
                let Some(pod) = crate::model::update::mesh_stream_pod(&stream) else { return };
                let retention = self.retention_secs();
                let calls = self.mesh.entry(pod).or_insert_with(|| Traffic::new(self.now, retention));
                // Istio's sidecars write their own format; `--log-format` is the gateway's.
                let s = self.mesh_streams.entry(stream).or_insert_with(Stream::outbound_calls);
                s.ingest(&chunk, calls, self.now);
                self.dirty.hotspots = true;
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
                self.dirty.traffic = true;
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
                self.dirty.hotspots = true;
                self.dirty.queues = true;
            }
            Update::Services(change) => {
                if self.services.apply(change, |s| s.key.clone()) {
                    self.backend_services = crate::analysis::traffic::backend_index(self.services.values());
                    // Names already on screen may now resolve differently.
                    self.dirty.traffic |= !self.streams.is_empty();
                    self.dirty.hotspots = true;
                }
                self.mark_data(SourceId::Services);
            }
            Update::ApiCost { at, increment } => self.api_cost.record(at, increment),
            Update::Notice(text) => self.notice(text),
        }
    }

    pub(super) fn observe_pod(&mut self, pod: &PodInfo) {
        let now = self.now;
        for c in &pod.containers {
            let health = classify(pod, c, now);
            self.track_mut(&pod.key, &c.name).observe(now, c.restarts, &health);
        }
    }

    /// A container's history, begun empty at the configured step and retention.
    pub(super) fn track_mut(&mut self, pod: &PodKey, container: &str) -> &mut ContainerTrack {
        let (step, retention) = (self.step_secs(), self.retention_secs());
        self.tracks.get_or_insert(pod, container, || ContainerTrack::new(step, retention))
    }

    /// Drops the history of containers whose pods are gone, so memory stays bounded under churn.
    pub(super) fn prune_tracks(&mut self) {
        let pods = &self.pods;
        self.tracks.retain_pods(|pod| pods.get(pod).is_some());
    }

    /// Forgets everything collected, for a context or scope switch.
    pub fn reset_data(&mut self) {
        self.connect_failed = None;
        self.pods.clear();
        self.nodes.clear();
        self.warnings.clear();
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
        self.traffic_table.rows.clear();
        for s in self.sources.values_mut() {
            *s = SourceStatus::connecting(self.now);
        }
        self.dirty.all = true;
        self.dirty.nodes = true;
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
}
