//! The embedded simulated cluster: scenario → simulation → Kubernetes wire protocol on loopback.

pub mod scenario;
pub mod server;
pub mod sim;
pub mod store;

use k8s_openapi::api::core::v1::{Event, Node, Pod};

use crate::model::event::EventInfo;
use crate::model::metrics::{MetricsList, container_usages, node_usages};
use crate::model::node::NodeInfo;
use crate::model::pod::PodInfo;
use crate::model::store::Change;
use crate::sources::{SourceId, SourceState, Update};

/// Everything the simulator holds, as the updates a fresh list plus one metrics poll would send.
/// Tests, snapshots and benches use it to build a state without a network.
pub fn updates_from_sim(sim: &sim::Sim) -> Vec<Update> {
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
    out.push(Update::PodUsage {
        at: sim.now,
        source: SourceId::PodMetrics,
        usages: container_usages(&MetricsList { items: sim.pod_metrics(None) }),
    });
    out.push(Update::NodeUsage { at: sim.now, usages: node_usages(&MetricsList { items: sim.node_metrics() }) });
    for source in [SourceId::Pods, SourceId::Nodes, SourceId::Events, SourceId::PodMetrics, SourceId::NodeMetrics] {
        out.push(Update::Status { source, state: SourceState::Connected });
    }
    out
}
