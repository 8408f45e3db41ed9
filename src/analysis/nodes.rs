//! Per-node sums of the requests and limits of the pods scheduled on it.

use std::collections::HashMap;

use crate::model::pod::PodInfo;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NodeAllocation {
    pub pods: u32,
    pub cpu_requests_m: f64,
    pub cpu_limits_m: f64,
    pub mem_requests: f64,
    pub mem_limits: f64,
}

/// Pods that have finished no longer hold their requests (as the scheduler counts them).
pub fn allocations<'a>(pods: impl IntoIterator<Item = &'a PodInfo>) -> HashMap<String, NodeAllocation> {
    let mut out: HashMap<String, NodeAllocation> = HashMap::new();
    for pod in pods {
        let Some(node) = &pod.node else { continue };
        if pod.phase == "Succeeded" || pod.phase == "Failed" {
            continue;
        }
        let a = out.entry(node.clone()).or_default();
        a.pods += 1;
        for c in pod.containers.iter().filter(|c| !c.init) {
            a.cpu_requests_m += c.resources.cpu_request_m.unwrap_or(0.0);
            a.cpu_limits_m += c.resources.cpu_limit_m.unwrap_or(0.0);
            a.mem_requests += c.resources.mem_request.unwrap_or(0.0);
            a.mem_limits += c.resources.mem_limit.unwrap_or(0.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pod::{ContainerInfo, PodKey, Resources, StateInfo};

    fn pod(node: Option<&str>, phase: &str, cpu: f64) -> PodInfo {
        PodInfo {
            key: PodKey::new("n", "p"),
            node: node.map(String::from),
            phase: phase.into(),
            containers: vec![ContainerInfo {
                name: "c".into(),
                init: false,
                image: String::new(),
                resources: Resources { cpu_request_m: Some(cpu), mem_limit: Some(10.0), ..Default::default() },
                ready: true,
                restarts: 0,
                state: StateInfo::Unknown,
                last_termination: None,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn sums_running_pods_per_node_only() {
        let pods = [
            pod(Some("a"), "Running", 100.0),
            pod(Some("a"), "Running", 250.0),
            pod(Some("a"), "Succeeded", 1000.0),
            pod(None, "Pending", 4000.0),
            pod(Some("b"), "Running", 50.0),
        ];
        let sums = allocations(&pods);
        assert_eq!(sums["a"].pods, 2);
        assert_eq!(sums["a"].cpu_requests_m, 350.0);
        assert_eq!(sums["a"].mem_limits, 20.0);
        assert_eq!(sums["b"].cpu_requests_m, 50.0);
        assert_eq!(sums.len(), 2);
    }
}
