//! The embedded simulated cluster: scenario → simulation → Kubernetes wire protocol on loopback.

pub mod scenario;
pub mod server;
pub mod sim;
pub mod store;

use crate::config::EventsConfig;
use crate::model::broker::{self, BrokerKind, BrokerTarget, ConsumerSpec};
use k8s_openapi::api::core::v1::{Event, Node, Pod, Service};

use crate::app::{Msg, State};
use crate::model::cadvisor::{DerivedUsage, UsageRates, derive, extract};
use crate::model::event::EventInfo;
use crate::model::exposition::Format;
use crate::model::metrics::{MetricsList, container_usages, node_usages};
use crate::model::node::NodeInfo;
use crate::model::pod::PodInfo;
use crate::model::service::ServiceInfo;
use crate::model::store::Change;
use crate::model::update::{SourceId, SourceState, Update};

/// Everything the simulator holds, as the updates a fresh list plus one metrics poll would send.
/// Tests, snapshots and benches use it to build a state without a network.
pub fn updates_from_sim(sim: &sim::Sim) -> Vec<Update> {
    let mut out = list_updates(sim);
    out.push(Update::PodUsage {
        at: sim.now,
        source: SourceId::PodMetrics,
        usages: container_usages(&MetricsList { items: sim.pod_metrics(None) }),
    });
    out.push(Update::NodeUsage { at: sim.now, usages: node_usages(&MetricsList { items: sim.node_metrics() }) });
    for source in [SourceId::PodMetrics, SourceId::NodeMetrics] {
        out.push(Update::Status { source, state: SourceState::Connected });
    }
    out
}

/// Pods, nodes, events and Services as a fresh list of each would send them (through the same JSON).
pub fn list_updates(sim: &sim::Sim) -> Vec<Update> {
    fn listed<K: serde::de::DeserializeOwned, T>(
        coll: &store::Collection,
        convert: impl Fn(&K) -> T,
        wrap: impl Fn(Change<T>) -> Update,
    ) -> Vec<Update> {
        let mut out = vec![wrap(Change::InitStart)];
        out.extend(
            coll.objects
                .values()
                .filter_map(|s| serde_json::from_slice::<K>(&s.json).ok())
                .map(|k| wrap(Change::InitItem(convert(&k)))),
        );
        out.push(wrap(Change::InitDone));
        out
    }
    let mut out = Vec::new();
    out.extend(listed::<Pod, _>(&sim.pods_api, PodInfo::from_pod, Update::Pods));
    out.extend(listed::<Node, _>(&sim.nodes_api, NodeInfo::from_node, Update::Nodes));
    out.extend(listed::<Event, _>(&sim.events_api, EventInfo::from_event, Update::Events));
    out.extend(listed::<Service, _>(&sim.services_api, ServiceInfo::from_service, Update::Services));
    for source in [SourceId::Pods, SourceId::Nodes, SourceId::Events, SourceId::Services] {
        out.push(Update::Status { source, state: SourceState::Connected });
    }
    out
}

/// Plays a simulation into a [`State`] as fast as it can, without a network: what the sources
/// would deliver against the simulated API server (lists, every kubelet's cAdvisor text through
/// the same parser and rate logic, the gateway's access log), in simulated time. The engine of
/// `kpulse snapshot --demo` and of the scenario suite.
pub struct Player {
    pub sim: sim::Sim,
    rates: UsageRates,
    log_seq: u64,
}

impl Player {
    pub fn new(sim: sim::Sim) -> Player {
        Player { sim, rates: UsageRates::default(), log_seq: 0 }
    }

    /// Advances the simulation by `secs` and delivers one round of every source.
    pub fn step(&mut self, secs: i64, state: &mut State) {
        self.sim.advance(secs);
        let now = self.sim.now;
        // The gateway's lines of these seconds reach the traffic before its clock moves past
        // them: a slice closed first would be counted short in the per-slice series.
        let (gateway, last) = gateway_updates(&self.sim, self.log_seq);
        self.log_seq = last;
        for u in gateway {
            state.update(Msg::Source(u));
        }
        state.update(Msg::Tick(now));
        for u in list_updates(&self.sim) {
            state.update(Msg::Source(u));
        }
        self.rates.begin_round(true);
        let (mut usages, mut network) = (Vec::new(), Vec::new());
        for node in self.sim.node_names() {
            let Some(text) = self.sim.cadvisor_exposition(&node) else { continue };
            let (u, n) = derive(&mut self.rates, &extract(&text, Format::detect(None, &text)), now * 1000);
            usages.extend(u.into_iter().map(DerivedUsage::into_container_usage));
            network.extend(n);
        }
        self.rates.finish_round(true);
        let node_usage = node_usages(&MetricsList { items: self.sim.node_metrics() });
        for u in [
            Update::PodUsage { at: now, source: SourceId::Cadvisor, usages },
            Update::PodNetwork { at: now, usages: network },
            Update::NodeUsage { at: now, usages: node_usage },
            Update::Status { source: SourceId::Cadvisor, state: SourceState::Connected },
            Update::Status { source: SourceId::NodeMetrics, state: SourceState::Connected },
        ] {
            state.update(Msg::Source(u));
        }
        if let Some(text) = self.sim.rabbitmq_exposition() {
            let mapping = state.config.events.mapping(BrokerKind::Rabbitmq);
            if let Ok(readings) = broker::read("rabbitmq", &mapping, &text) {
                state.update(Msg::Source(Update::Queues { at: now, broker: "rabbitmq".into(), readings }));
                state.update(Msg::Source(Update::Status { source: SourceId::Brokers, state: SourceState::Connected }));
            }
        }
        state.refresh();
    }
}

/// Where the demo's simulated RabbitMQ is scraped (`addr`: the simulator's HTTP server; none when
/// the simulation is stepped in-process) and which pods consume each queue.
pub fn demo_events(scenario: &scenario::Scenario, events: &mut EventsConfig, addr: Option<std::net::SocketAddr>) {
    if scenario.queues.is_empty() {
        return;
    }
    if let Some(addr) = addr {
        events.add_broker(BrokerTarget {
            name: "rabbitmq".into(),
            kind: BrokerKind::Rabbitmq,
            url: format!("http://{addr}/sim/rabbitmq/metrics/per-object"),
            via_prometheus: false,
        });
    }
    for q in &scenario.queues {
        let Some(svc) = scenario.services.iter().find(|s| s.name == q.consumer) else { continue };
        events.consumers.push(ConsumerSpec {
            queue: q.name.clone(),
            group: None,
            pods: format!("{}/app={}", svc.namespace, svc.name),
        });
    }
}

/// The log lines written after `after_seq`, one [`Update::AccessLog`] per pod, named as the
/// log sources name their streams (`namespace/pod` for the gateway's, `mesh:namespace/pod` for a
/// mesh sidecar's), and the newest sequence number.
pub fn gateway_updates(sim: &sim::Sim, after_seq: u64) -> (Vec<Update>, u64) {
    let mut by_stream: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut last = after_seq;
    for e in sim.access_log.iter().filter(|e| e.seq > after_seq) {
        let stream = if e.container == scenario::MESH_SIDECAR {
            crate::model::update::mesh_stream_name(&e.namespace, &e.pod)
        } else {
            format!("{}/{}", e.namespace, e.pod)
        };
        let chunk = by_stream.entry(stream).or_default();
        chunk.push_str(&e.line);
        chunk.push('\n');
        last = e.seq;
    }
    let updates = by_stream.into_iter().map(|(stream, chunk)| Update::AccessLog { stream, chunk }).collect();
    (updates, last)
}
