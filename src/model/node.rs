//! Nodes, trimmed to capacity, allocatable, conditions and schedulability.

use k8s_openapi::api::core::v1::Node;

use super::quantity::{parse_bytes, parse_cpu_millis};
use super::time::{UnixSecs, to_unix};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeInfo {
    pub name: String,
    pub created: Option<UnixSecs>,
    pub unschedulable: bool,
    pub cpu_capacity_m: f64,
    pub mem_capacity: f64,
    pub cpu_allocatable_m: f64,
    pub mem_allocatable: f64,
    pub pods_allocatable: u32,
    /// `Ready` as reported: "True", "False" or "Unknown".
    pub ready: String,
    /// Conditions other than Ready whose status is True (MemoryPressure, DiskPressure, PIDPressure…).
    pub pressures: Vec<String>,
}

impl NodeInfo {
    pub fn from_node(node: &Node) -> NodeInfo {
        let status = node.status.as_ref();
        let resource = |map: Option<
            &std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >,
                        key: &str| { map.and_then(|m| m.get(key)).map(|q| q.0.clone()) };
        let capacity = status.and_then(|s| s.capacity.as_ref());
        let allocatable = status.and_then(|s| s.allocatable.as_ref());
        let cpu = |q: Option<String>| q.and_then(|q| parse_cpu_millis(&q).ok()).unwrap_or(0.0);
        let mem = |q: Option<String>| q.and_then(|q| parse_bytes(&q).ok()).unwrap_or(0.0);
        let conditions = status.and_then(|s| s.conditions.as_ref());
        let ready = conditions
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map_or_else(|| "Unknown".to_string(), |c| c.status.clone());
        let pressures = conditions
            .into_iter()
            .flatten()
            .filter(|c| c.type_ != "Ready" && c.status == "True")
            .map(|c| c.type_.clone())
            .collect();
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            created: node.metadata.creation_timestamp.as_ref().map(|t| to_unix(t.0)),
            unschedulable: node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
            cpu_capacity_m: cpu(resource(capacity, "cpu")),
            mem_capacity: mem(resource(capacity, "memory")),
            cpu_allocatable_m: cpu(resource(allocatable, "cpu")),
            mem_allocatable: mem(resource(allocatable, "memory")),
            pods_allocatable: resource(allocatable, "pods").and_then(|p| p.parse().ok()).unwrap_or(0),
            ready,
            pressures,
        }
    }
}
