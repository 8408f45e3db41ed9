//! Call chains from the mesh sidecars: a slow or failing service whose time or errors come from
//! a service further down points there, and the one at the end names who it holds up or fails.

use hashbrown::HashMap;

use crate::model::pod::PodKey;
use crate::model::quantity::format_ratio;
use crate::model::time::format_latency;

use super::pods::troubled_containers;
use super::{Board, CallFacts, ContainerFacts, ServiceFacts, Subject};

/// What a chain is followed for.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Along {
    /// Time: each hop the call that takes at least half the time above it.
    Latency,
    /// 5xx: each hop the call that fails at least half as often as the requests above it.
    Errors,
}

impl Along {
    /// How much of the symptom one call carries: its p95, or its share of 5xx.
    fn measure(self, call: &CallFacts) -> Option<f64> {
        match self {
            Along::Latency => call.now.p95,
            Along::Errors => (call.now.requests > 0).then_some(call.now.error_ratio),
        }
    }
}

/// Where a service's symptom goes, hop by hop through the calls its mesh logged: from the
/// service (its p95, or its 5xx share, is `at_service`), the call that carries at least half of
/// it (the most, if several), then the same from that callee, until no call explains it. Empty
/// when no call does.
pub(super) fn follow<'c, 'a>(
    along: Along,
    service: &str,
    at_service: Option<f64>,
    calls: &'c [CallFacts<'a>],
) -> Vec<&'c CallFacts<'a>> {
    let mut chain: Vec<&CallFacts> = Vec::new();
    let (mut at, mut carried) = (service, at_service.unwrap_or(0.0));
    while carried > 0.0 && chain.len() < 8 {
        let next = calls
            .iter()
            .filter(|c| c.caller == at && along.measure(c).is_some_and(|m| m >= 0.5 * carried))
            // Calls never loop in a request, but a bad join could: never visit a service twice.
            .filter(|c| c.callee != service && !chain.iter().any(|hop| hop.callee == c.callee))
            .max_by(|a, b| {
                let (ma, mb) = (along.measure(a).unwrap_or(0.0), along.measure(b).unwrap_or(0.0));
                ma.total_cmp(&mb).then(b.callee.cmp(&a.callee))
            });
        let Some(hop) = next else { break };
        chain.push(hop);
        at = &hop.callee;
        carried = along.measure(hop).unwrap_or(0.0);
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

/// `payment → bank-adapter → fraud-check: p95 1.1s waiting on fraud-check`, or for errors
/// `checkout → payment → bank-adapter: 31% of calls to bank-adapter fail (5xx)`.
pub(super) fn chain_evidence(along: Along, service: &str, chain: &[&CallFacts]) -> String {
    let mut path = vec![short_name(service, service)];
    path.extend(chain.iter().map(|hop| short_name(&hop.callee, service)));
    let deepest = chain.last().map_or(service, |hop| short_name(&hop.callee, service));
    let last = chain.last().map(|hop| &hop.now);
    match along {
        Along::Latency => {
            let time = last.and_then(|s| s.p95).map(format_latency).unwrap_or_default();
            format!("{}: p95 {time} waiting on {deepest}", path.join(" → "))
        }
        Along::Errors => {
            let share = last.map(|s| format_ratio(s.error_ratio)).unwrap_or_default();
            format!("{}: {share} of calls to {deepest} fail (5xx)", path.join(" → "))
        }
    }
}

/// The end of a slow or failing service's chain is what to act on: its pods in trouble
/// (CPU-starved, crash-looping…) rank above the service, with the path as evidence; pods healthy
/// there make the deepest service itself the finding (what it waits on is outside the mesh, or
/// the errors are its own).
pub(super) fn blame_the_chain(
    along: Along,
    s: &ServiceFacts,
    chain: &[&CallFacts],
    symptom: &str,
    score: f64,
    containers_of: &HashMap<&PodKey, Vec<&ContainerFacts>>,
    board: &mut Board,
) {
    let Some(deepest) = chain.last() else { return };
    let path = chain_evidence(along, &s.name, chain);
    let troubled = troubled_containers(deepest.callee_pods.iter().copied(), containers_of, board);
    let name = short_name(&deepest.callee, &s.name);
    let caller = short_name(&s.name, &s.name);
    if troubled.is_empty() {
        let (verdict, why) = match along {
            Along::Latency => {
                (format!("Slow, holds up {caller}"), "what it waits on is outside the mesh, or the network")
            }
            Along::Errors => (
                format!("Errors that fail {caller}"),
                "the errors are its own (a bug, its configuration, what it calls outside the mesh)",
            ),
        };
        let evidence = format!("{path}; {caller}: {symptom}; {name}'s pods are healthy: {why}");
        let subject = Subject::Service { name: deepest.callee.clone(), backend: deepest.callee.clone() };
        board.add(subject, verdict, evidence, (score * 1.05).min(100.0));
        return;
    }
    let verdict = match along {
        Along::Latency => format!("Holds up {caller}"),
        Along::Errors => format!("Fails {caller}"),
    };
    for (cs, why) in troubled {
        let evidence = format!("{path}, whose pods are {why}; {caller}: {symptom}");
        board.add(cs, verdict.clone(), evidence, (score * 1.1).min(100.0));
    }
}
