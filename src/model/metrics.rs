//! metrics.k8s.io/v1beta1 wire types (k8s-openapi has none) and their conversion to usage samples.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::pod::PodKey;
use super::quantity::{parse_bytes, parse_cpu_millis};
use super::time::UnixSecs;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetricsMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerMetrics {
    pub name: String,
    #[serde(default)]
    pub usage: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodMetrics {
    pub metadata: MetricsMeta,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeMetrics {
    pub metadata: MetricsMeta,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub usage: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsList<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

/// CPU (millicores) and memory working set (bytes) at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    pub cpu_m: f64,
    pub mem: f64,
}

impl Usage {
    fn from_map(map: &BTreeMap<String, String>) -> Usage {
        Usage {
            cpu_m: map.get("cpu").and_then(|q| parse_cpu_millis(q).ok()).unwrap_or(f64::NAN),
            mem: map.get("memory").and_then(|q| parse_bytes(q).ok()).unwrap_or(f64::NAN),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerUsage {
    pub pod: PodKey,
    pub container: String,
    pub usage: Usage,
    /// Share of CFS periods throttled (0..1), where the source knows it (cAdvisor, Prometheus).
    pub throttle: Option<f64>,
    /// cAdvisor's `container_oom_events_total`: the kernel's OOM kills in this container so far,
    /// including those of a child process that left the container running.
    pub oom_events: Option<f64>,
    /// Restarts in the last hour as kube-state-metrics' history in Prometheus tells them.
    pub restarts_last_hour: Option<f64>,
}

/// One container's CPU (millicores) and memory (bytes) over a stretch of the past, oldest
/// first; NaN where a sample is missing. The Prometheus back-fill sends these, one container at
/// a time, rather than a whole `ContainerUsage` per container per timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerHistory {
    pub pod: PodKey,
    pub container: String,
    pub points: Vec<(UnixSecs, f32, f32)>,
}

pub fn container_usages(list: &MetricsList<PodMetrics>) -> Vec<ContainerUsage> {
    list.items
        .iter()
        .flat_map(|pm| {
            let pod = PodKey::new(pm.metadata.namespace.clone().unwrap_or_default(), pm.metadata.name.clone());
            pm.containers.iter().map(move |c| ContainerUsage {
                pod: pod.clone(),
                container: c.name.clone(),
                usage: Usage::from_map(&c.usage),
                throttle: None,
                oom_events: None,
                restarts_last_hour: None,
            })
        })
        .collect()
}

pub fn node_usages(list: &MetricsList<NodeMetrics>) -> Vec<(String, Usage)> {
    list.items.iter().map(|nm| (nm.metadata.name.clone(), Usage::from_map(&nm.usage))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_metrics_list_from_the_docs_parses() {
        let json = r#"{ "kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
          "metadata": { "selfLink": "/apis/metrics.k8s.io/v1beta1/pods" },
          "items": [ { "metadata": { "name": "coredns-78fcd69978-f6pqv", "namespace": "kube-system",
                                     "creationTimestamp": "2021-12-17T17:58:01Z" },
                       "timestamp": "2021-12-17T17:57:42Z", "window": "14.982s",
                       "containers": [ { "name": "coredns",
                                         "usage": { "cpu": "7338891n", "memory": "14520Ki" } } ] } ] }"#;
        let list: MetricsList<PodMetrics> = serde_json::from_str(json).unwrap();
        let usages = container_usages(&list);
        assert_eq!(usages.len(), 1);
        assert_eq!(usages[0].pod, PodKey::new("kube-system", "coredns-78fcd69978-f6pqv"));
        assert!((usages[0].usage.cpu_m - 7.338891).abs() < 1e-9);
        assert_eq!(usages[0].usage.mem, 14520.0 * 1024.0);
    }

    #[test]
    fn node_metrics_from_the_docs_parse() {
        let json = r#"{"items":[{ "kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
          "metadata": { "name": "minikube", "creationTimestamp": "2022-01-27T18:48:43Z" },
          "timestamp": "2022-01-27T18:48:33Z", "window": "30s",
          "usage": { "cpu": "487558164n", "memory": "732212Ki" } }]}"#;
        let list: MetricsList<NodeMetrics> = serde_json::from_str(json).unwrap();
        let usages = node_usages(&list);
        assert_eq!(usages[0].0, "minikube");
        assert!((usages[0].1.cpu_m - 487.558164).abs() < 1e-9);
    }
}
