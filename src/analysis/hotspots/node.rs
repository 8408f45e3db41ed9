//! A node's findings: pressure conditions, a busy node, noisy neighbours, evictions; and the
//! pods a sick node takes down with it.

use hashbrown::HashMap;

use crate::model::quantity::{format_cpu_millis, format_ratio};

use super::{Board, ContainerFacts, Finding, Inputs, NodeFacts, Rules, Subject, container_subject, named, scaled};

pub(super) fn node_rules(inputs: &Inputs, rules: &Rules, board: &mut Board) {
    let w = &rules.weights;
    let busy_ratio =
        |node: &NodeFacts| node.cpu_used_m.filter(|_| node.cpu_allocatable_m > 0.0).map(|u| u / node.cpu_allocatable_m);
    let notable = |node: &NodeFacts| {
        node.ready != "True" || !node.pressures.is_empty() || busy_ratio(node).is_some_and(|b| b >= rules.node_cpu_busy)
    };
    if !inputs.nodes.iter().any(notable) {
        return;
    }
    // One pass over the containers, not one per node.
    let mut by_node: HashMap<&str, Vec<&ContainerFacts>> = HashMap::new();
    for c in inputs.containers.iter().filter(|c| !c.init) {
        by_node.entry(c.node).or_default().push(c);
    }
    for node in &inputs.nodes {
        let subject = Subject::Node { name: node.name.to_string() };
        let on_node = || by_node.get(node.name).into_iter().flatten().copied();
        if node.ready != "True" {
            let pods: std::collections::BTreeSet<&str> = on_node().map(|c| c.pod.name.as_str()).collect();
            board.add(
                subject.clone(),
                "Node not ready",
                format!("Ready={}, {} pods on it", node.ready, pods.len()),
                w.node_not_ready,
            );
        }
        for pressure in node.pressures {
            let affected: std::collections::BTreeSet<&str> = on_node()
                .filter(|c| {
                    c.health.severity >= crate::analysis::health::Severity::Warn
                        || c.throttle.is_some_and(|t| t >= rules.cpu_throttled)
                })
                .map(|c| c.pod.name.as_str())
                .collect();
            // Pods its kubelet evicted: the pressure's victims, named on the node, pointing to it.
            let evicted: Vec<&ContainerFacts> = on_node().filter(|c| c.health.word == "Evicted").collect();
            let evicted_pods: std::collections::BTreeSet<&str> = evicted.iter().map(|c| c.pod.name.as_str()).collect();
            let mut evidence = format!("{pressure} on {}", node.name);
            if !evicted_pods.is_empty() {
                let n = evicted_pods.len();
                evidence.push_str(&format!(
                    "; its kubelet evicted {n} {}{}",
                    if n == 1 { "pod" } else { "pods" },
                    named(evicted_pods.iter().map(|p| p.to_string()))
                ));
            }
            let others: Vec<&str> = affected.iter().filter(|p| !evicted_pods.contains(*p)).take(3).copied().collect();
            if !others.is_empty() {
                evidence.push_str(&format!("; affected pods: {}", others.join(", ")));
            }
            for c in evicted {
                let cs = container_subject(c);
                if let Some(findings) = board.findings.get_mut(&cs) {
                    for f in findings.iter_mut() {
                        f.score *= 0.8;
                    }
                    let text = format!("{pressure} on node {}", node.name);
                    findings.push(Finding {
                        verdict: format!("Evicted: see node {}", node.name),
                        evidence: text,
                        score: 0.0,
                    });
                }
            }
            board.add(subject.clone(), format!("Node under {pressure}"), evidence, w.node_pressure);
        }
        let Some(used) = node.cpu_used_m.filter(|_| node.cpu_allocatable_m > 0.0) else { continue };
        let busy = used / node.cpu_allocatable_m;
        if busy < rules.node_cpu_busy {
            continue;
        }
        // The neighbour: the container using the most CPU above its request on this node.
        let burst = |c: &&ContainerFacts| {
            let request = c.resources.cpu_request_m.unwrap_or(0.0).max(1.0);
            c.cpu_m.is_finite() && c.cpu_m >= rules.neighbour_burst * request && c.cpu_m >= 0.2 * node.cpu_allocatable_m
        };
        let noisy = on_node().filter(burst).max_by(|a, b| a.cpu_m.total_cmp(&b.cpu_m).then_with(|| b.pod.cmp(a.pod)));
        let starved: Vec<&ContainerFacts> = on_node()
            .filter(|c| noisy.is_none_or(|n| n.pod != c.pod))
            .filter(|c| c.throttle.is_some_and(|t| t >= rules.cpu_throttled) || c.health.word == "NotReady")
            .collect();
        let node_busy = format!("{} at {} of allocatable CPU", node.name, format_ratio(used / node.cpu_allocatable_m));
        match noisy {
            Some(n) => {
                let request = n.resources.cpu_request_m.unwrap_or(0.0).max(1.0);
                let evidence = format!(
                    "uses {} ({:.0}× its request) on {node_busy}; {} other {} there starved{}",
                    format_cpu_millis(n.cpu_m),
                    n.cpu_m / request,
                    starved.len(),
                    if starved.len() == 1 { "container" } else { "containers" },
                    named(starved.iter().map(|c| format!("{}/{}", c.pod.name, c.container)))
                );
                let score = scaled(w.noisy_neighbour, starved.len() as f64, 0.0, 5.0);
                board.add(container_subject(n), "Noisy neighbour", evidence, score);
                board.add(
                    subject.clone(),
                    "Node CPU saturated",
                    format!("{node_busy}; {}/{} is bursting", n.pod.name, n.container),
                    w.node_busy,
                );
            }
            None => {
                // Who uses it: the biggest consumers there, none of them bursting past its request.
                let mut users: Vec<&ContainerFacts> =
                    on_node().filter(|c| c.cpu_m.is_finite() && c.cpu_m > 0.0).collect();
                users.sort_by(|a, b| b.cpu_m.total_cmp(&a.cpu_m).then_with(|| a.pod.cmp(b.pod)));
                let top = named(
                    users.iter().map(|c| format!("{}/{} {}", c.pod.name, c.container, format_cpu_millis(c.cpu_m))),
                );
                board.add(
                    subject.clone(),
                    "Node CPU saturated",
                    format!("{node_busy}; most used by{}", if top.is_empty() { " its system".into() } else { top }),
                    scaled(w.node_busy, busy, rules.node_cpu_busy, 1.0),
                )
            }
        }
    }
}
