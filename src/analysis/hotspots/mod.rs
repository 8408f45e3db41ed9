//! Hotspots: which container, service, node or gateway is the likely bottleneck right now, and
//! why, in plain words with the numbers behind them.
//!
//! Each rule reads plain facts (built by the app from what the sources delivered), and a rule that
//! fires is a [`Finding`]: a verdict, its evidence and a score. A subject's score is its strongest
//! finding plus a quarter of the others (two problems are worse than one, but five warnings do not
//! outrank a crash loop). Where a slow or failing service is slow because its own pods are
//! saturated, the service's evidence is attached to those pods and they rank first; where its
//! pods are idle, the service itself is the hotspot and the verdict says to look downstream.
//!
//! The thresholds and weights are [`Rules`]: data, with the reasoning next to each, overridable
//! under `[hotspots]` in the config.

use std::collections::BTreeMap;

use hashbrown::HashMap;
use serde::Serialize;

use crate::model::pod::PodKey;

mod capacity;
mod chain;
mod container;
mod facts;
mod gateway;
mod node;
mod pods;
mod queue;
mod rules;
mod service;
#[cfg(test)]
mod tests;

use capacity::capacity_rules;
use container::container_rules;
use gateway::gateway_rules;
use node::node_rules;
use queue::queue_rules;
use service::service_rules;

pub use facts::*;
pub use rules::{Rules, Weights};

/// What a hotspot is about, and where Enter on it leads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Subject {
    Container {
        namespace: String,
        pod: String,
        container: String,
    },
    Service {
        name: String,
        backend: String,
    },
    Node {
        name: String,
    },
    /// A Deployment, StatefulSet…: `workload` as pods name it (`deploy/catalog`).
    Workload {
        namespace: String,
        workload: String,
    },
    Gateway,
    /// A queue, or a consumer group on a topic or stream (`broker/queue[/group]`).
    Queue {
        name: String,
    },
}

impl Subject {
    /// How the subject is written in lists, reports and scenario expectations.
    pub fn label(&self) -> String {
        match self {
            Subject::Container { namespace, pod, container } => format!("{namespace}/{pod}/{container}"),
            Subject::Service { name, .. } => format!("svc {name}"),
            Subject::Node { name } => format!("node {name}"),
            Subject::Workload { namespace, workload } => match workload.split_once('/') {
                Some((kind, name)) => format!("{kind} {namespace}/{name}"),
                None => format!("{namespace}/{workload}"),
            },
            Subject::Gateway => "gateway".into(),
            Subject::Queue { name } => format!("queue {name}"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Container { .. } => "container",
            Subject::Service { .. } => "service",
            Subject::Node { .. } => "node",
            Subject::Workload { .. } => "workload",
            Subject::Gateway => "gateway",
            Subject::Queue { .. } => "queue",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Plain words: `CPU-starved`, `Memory leak`, `Slow, pods idle`…
    pub verdict: String,
    /// The numbers behind it, as a phrase.
    pub evidence: String,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hotspot {
    pub subject: Subject,
    /// 0–100.
    pub score: u32,
    /// Strongest first; never empty.
    pub findings: Vec<Finding>,
}

impl Hotspot {
    /// The strongest finding's verdict.
    pub fn verdict(&self) -> &str {
        &self.findings[0].verdict
    }

    /// Every finding's evidence, strongest first.
    pub fn evidence(&self) -> Vec<&str> {
        self.findings.iter().map(|f| f.evidence.as_str()).collect()
    }

    /// `CPU-starved: throttled 62% …; p95 1.8s (5× its baseline)`.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.verdict(), self.evidence().join("; "))
    }
}

/// A finding's score: the weight at the threshold, up to 1.5× as the signal reaches `strong`.
fn scaled(weight: f64, value: f64, threshold: f64, strong: f64) -> f64 {
    let over = if strong > threshold { ((value - threshold) / (strong - threshold)).clamp(0.0, 1.0) } else { 1.0 };
    (weight * (1.0 + 0.5 * over)).min(100.0)
}

/// Findings per subject, accumulated by the rules.
#[derive(Default)]
struct Board {
    findings: BTreeMap<Subject, Vec<Finding>>,
}

impl Board {
    fn add(&mut self, subject: Subject, verdict: impl Into<String>, evidence: String, score: f64) {
        self.findings.entry(subject).or_default().push(Finding { verdict: verdict.into(), evidence, score });
    }
}

fn container_subject(c: &ContainerFacts) -> Subject {
    Subject::Container {
        namespace: c.pod.namespace.clone(),
        pod: c.pod.name.clone(),
        container: c.container.to_string(),
    }
}

/// Ranks every subject with at least one finding, highest score first; ties by label, so the
/// order never depends on the order of the inputs.
pub fn rank(inputs: &Inputs, rules: &Rules) -> Vec<Hotspot> {
    let mut board = Board::default();
    for c in &inputs.containers {
        container_rules(c, rules, &mut board);
    }
    node_rules(inputs, rules, &mut board);
    // The services' and the workloads' rules both look pods up: one index, only if either runs.
    let containers_of = if inputs.services.is_empty() && inputs.capacity.is_empty() {
        HashMap::new()
    } else {
        containers_by_pod(&inputs.containers)
    };
    service_rules(inputs, &containers_of, rules, &mut board);
    capacity_rules(inputs, &containers_of, &mut board);
    gateway_rules(inputs, rules, &mut board);
    queue_rules(inputs, rules, &mut board);
    let mut hotspots: Vec<Hotspot> = board
        .findings
        .into_iter()
        .map(|(subject, mut findings)| {
            findings.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.verdict.cmp(&b.verdict)));
            let score = combined_score(&findings).round() as u32;
            Hotspot { score, findings, subject }
        })
        .collect();
    hotspots.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.subject.cmp(&b.subject)));
    hotspots
}

/// A subject's score from its findings: the strongest, plus a quarter of the others.
fn combined_score(findings: &[Finding]) -> f64 {
    let top = findings.iter().map(|f| f.score).fold(0.0, f64::max);
    let all: f64 = findings.iter().map(|f| f.score).sum();
    (top + 0.25 * (all - top)).min(100.0)
}

/// `: a, b, c (+2 more)` naming up to three; empty for none.
fn named(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    if all.is_empty() {
        return String::new();
    }
    let more = all.len().saturating_sub(3);
    let shown = all[..all.len().min(3)].join(", ");
    if more > 0 { format!(": {shown} (+{more} more)") } else { format!(": {shown}") }
}

/// The running (not init) containers of each pod.
fn containers_by_pod<'a>(containers: &'a [ContainerFacts<'a>]) -> HashMap<&'a PodKey, Vec<&'a ContainerFacts<'a>>> {
    let mut containers_of: HashMap<&PodKey, Vec<&ContainerFacts>> = HashMap::new();
    for c in containers.iter().filter(|c| !c.init) {
        containers_of.entry(c.pod).or_default().push(c);
    }
    containers_of
}
