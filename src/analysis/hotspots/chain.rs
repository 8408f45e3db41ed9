//! Call chains from the mesh sidecars: a slow service that waits on a slower one downstream
//! points there, and the one it holds up names it.

use hashbrown::HashMap;

use crate::model::pod::PodKey;
use crate::model::time::format_latency;

use super::pods::troubled_containers;
use super::{Board, CallFacts, ContainerFacts, ServiceFacts, Subject};

/// Where a slow service's time goes, hop by hop through the calls its mesh logged: from the
/// service, the call that takes at least half its p95 (the slowest, if several), then the same
/// from that callee, until no call holds the time. Empty when no call explains it.
pub(super) fn slow_chain<'c, 'a>(
    service: &str,
    p95: Option<f64>,
    calls: &'c [CallFacts<'a>],
) -> Vec<&'c CallFacts<'a>> {
    let mut chain: Vec<&CallFacts> = Vec::new();
    let (mut at, mut time) = (service, p95.unwrap_or(0.0));
    while time > 0.0 && chain.len() < 8 {
        let next = calls
            .iter()
            .filter(|c| c.caller == at && c.now.p95.is_some_and(|p| p >= 0.5 * time))
            // Calls never loop in a request, but a bad join could: never visit a service twice.
            .filter(|c| c.callee != service && !chain.iter().any(|hop| hop.callee == c.callee))
            .max_by(|a, b| a.now.p95.unwrap_or(0.0).total_cmp(&b.now.p95.unwrap_or(0.0)).then(b.callee.cmp(&a.callee)));
        let Some(hop) = next else { break };
        chain.push(hop);
        at = &hop.callee;
        time = hop.now.p95.unwrap_or(0.0);
    }
    chain
}

/// A service as written in a chain: without its namespace when it is the first service's.
pub(super) fn short_name<'a>(service: &'a str, first: &str) -> &'a str {
    match (service.split_once('/'), first.split_once('/')) {
        (Some((ns, name)), Some((first_ns, _))) if ns == first_ns => name,
        _ => service,
    }
}

/// `payment → bank-adapter → fraud-check: 1.1 s of its p95 in fraud-check`
pub(super) fn chain_evidence(service: &str, chain: &[&CallFacts]) -> String {
    let mut path = vec![short_name(service, service)];
    path.extend(chain.iter().map(|hop| short_name(&hop.callee, service)));
    let deepest = chain.last().map_or(service, |hop| short_name(&hop.callee, service));
    let time = chain.last().and_then(|hop| hop.now.p95).map(format_latency).unwrap_or_default();
    format!("{}: p95 {time} waiting on {deepest}", path.join(" → "))
}

/// The end of a slow service's chain is what to act on: its pods in trouble (CPU-starved,
/// crash-looping…) rank above the service, with the path as evidence; pods healthy and idle
/// there make the deepest service itself the finding (what it waits on is outside the mesh).
pub(super) fn blame_the_chain(
    s: &ServiceFacts,
    chain: &[&CallFacts],
    symptom: &str,
    score: f64,
    containers_of: &HashMap<&PodKey, Vec<&ContainerFacts>>,
    board: &mut Board,
) {
    let Some(deepest) = chain.last() else { return };
    let path = chain_evidence(&s.name, chain);
    let troubled = troubled_containers(deepest.callee_pods.iter().copied(), containers_of, board);
    let name = short_name(&deepest.callee, &s.name);
    let caller = short_name(&s.name, &s.name);
    if troubled.is_empty() {
        let evidence = format!(
            "{path}; {caller}: {symptom}; {name}'s pods are healthy: what it waits on is outside the mesh, or the network"
        );
        let subject = Subject::Service { name: deepest.callee.clone(), backend: deepest.callee.clone() };
        board.add(subject, format!("Slow, holds up {caller}"), evidence, (score * 1.05).min(100.0));
        return;
    }
    for (cs, verdict) in troubled {
        let evidence = format!("{path}, whose pods are {verdict}; {caller}: {symptom}");
        board.add(cs, format!("Holds up {caller}"), evidence, (score * 1.1).min(100.0));
    }
}
