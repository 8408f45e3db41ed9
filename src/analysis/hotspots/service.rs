//! A service's findings (errors, latency against its baseline, traffic lost), pinned on the most
//! specific culprit: its saturated pods, a lone bad replica, a new ReplicaSet, or downstream.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use crate::model::pod::PodKey;
use crate::model::quantity::format_ratio;
use crate::model::time::{UnixSecs, format_age, format_latency};

use super::chain::{Along, blame_the_chain, chain_evidence, follow, short_name};
use super::pods::{replica_set_of, serving_container, troubled_containers};
use super::{Board, ContainerFacts, Inputs, Rules, ServiceFacts, Subject, container_subject, scaled};

/// Latency against the service's own past, or against an absolute bar while it has none.
pub(super) fn latency_finding(s: &ServiceFacts, rules: &Rules) -> Option<(String, f64)> {
    let p95 = s.now.p95?;
    let floor = rules.latency_floor_ms / 1000.0;
    match s.baseline_p95.filter(|b| *b > 0.0) {
        Some(base) if p95 >= floor && p95 >= rules.latency_vs_baseline * base => {
            let factor = p95 / base;
            let text = format!("p95 {} ({factor:.0}× its baseline {})", format_latency(p95), format_latency(base));
            Some((text, scaled(rules.weights.latency, factor, rules.latency_vs_baseline, 10.0)))
        }
        None if p95 >= rules.latency_absolute_ms / 1000.0 => {
            Some((format!("p95 {} (no baseline yet)", format_latency(p95)), rules.weights.latency))
        }
        _ => None,
    }
}

pub(super) fn service_rules<'a>(
    inputs: &Inputs,
    containers_of: &HashMap<&PodKey, Vec<&'a ContainerFacts<'a>>>,
    rules: &Rules,
    board: &mut Board,
) {
    let w = &rules.weights;
    if inputs.services.is_empty() {
        return;
    }
    for s in &inputs.services {
        if s.now.requests < rules.min_requests {
            continue;
        }
        let subject = Subject::Service { name: s.name.clone(), backend: s.backend.to_string() };
        let mut symptoms: Vec<(String, String, f64)> = Vec::new();
        if s.now.error_ratio >= rules.error_ratio {
            let text = format!(
                "{:.0}% 5xx at the gateway ({} of {} in the last minute)",
                s.now.error_ratio * 100.0,
                s.now.server_errors,
                s.now.requests
            );
            symptoms.push(("Errors".into(), text, scaled(w.errors, s.now.error_ratio, rules.error_ratio, 0.5)));
        }
        if let Some((text, score)) = latency_finding(s, rules) {
            symptoms.push(("Slow".into(), text, score));
        }
        let retry_ratio = s.now.retries as f64 / s.now.requests as f64;
        if retry_ratio >= rules.retry_ratio {
            let text = format!(
                "the gateway retried {} of {} requests in the last minute on another upstream ({:.0}%)",
                s.now.retries,
                s.now.requests,
                retry_ratio * 100.0
            );
            symptoms.push(("Upstream retries".into(), text, scaled(w.retries, retry_ratio, rules.retry_ratio, 0.5)));
        }
        // Imbalance: one replica far above its fair share. The replica is what an operator acts
        // on (delete it, fix its session affinity): it ranks first, the service is the context.
        let total_rps: f64 = s.pods.iter().map(|(_, r)| r).sum();
        let mut hot_replica = None;
        if s.shares_settled && s.pods.len() >= 2 && total_rps > 0.0 {
            let fair = total_rps / s.pods.len() as f64;
            if let Some((pod, rps)) = s.pods.iter().max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(a.0)))
                && *rps >= rules.replica_imbalance * fair
            {
                let text = format!(
                    "{} gets {} of requests across {} replicas ({:.1}× its fair share)",
                    pod.name,
                    format_ratio(rps / total_rps),
                    s.pods.len(),
                    rps / fair
                );
                let score = scaled(w.imbalance, rps / fair, rules.replica_imbalance, s.pods.len() as f64);
                match serving_container(containers_of, pod) {
                    Some(c) => hot_replica = Some((c, *rps, total_rps, fair, score)),
                    None => symptoms.push(("Uneven load".into(), text, score)),
                }
            }
        }
        if let Some((c, rps, total, fair, score)) = hot_replica {
            let saturation = c
                .resources
                .cpu_limit_m
                .filter(|l| *l > 0.0 && c.cpu_m.is_finite())
                .map(|l| format!("; its CPU at {:.0}% of its limit", c.cpu_m / l * 100.0))
                .unwrap_or_default();
            let evidence = format!(
                "{} of {}'s requests ({:.1} of {:.1}/s across {} replicas, {:.1}× its fair share){saturation}",
                format_ratio(rps / total),
                s.name,
                rps,
                total,
                s.pods.len(),
                rps / fair
            );
            board.add(container_subject(c), "Hot replica", evidence, score);
            board.add(
                subject.clone(),
                "Uneven load: see its pod",
                format!(
                    "{} gets {} of its requests across {} replicas",
                    c.pod.name,
                    format_ratio(rps / total),
                    s.pods.len()
                ),
                score * 0.8,
            );
        }
        // One replica flapping while its siblings stay ready: that replica is what to act on
        // (its probe, its node), sooner than the flapping rule alone would say and above a
        // node that is merely busy.
        if let Some((c, spells)) = lone_flapper(s, containers_of, rules) {
            let siblings = s.pods.len() - 1;
            let rps = s.pods.iter().find(|(pod, _)| *pod == c.pod).map_or(0.0, |(_, r)| *r);
            let evidence = format!(
                "went not ready {spells} times in the last 10 minutes while its {siblings} {} stayed ready; each time {} loses it as an endpoint ({rps:.1} of {total_rps:.1}/s before)",
                if siblings == 1 { "sibling" } else { "siblings" },
                s.name
            );
            let cs = container_subject(c);
            if let Some(findings) = board.findings.get_mut(&cs) {
                findings.retain(|f| f.verdict != "Readiness flapping");
            }
            let score = scaled(w.not_ready * 1.2, spells as f64, 2.0, 10.0);
            board.add(cs, "Readiness flapping", evidence, score);
        }
        // Only the new version fails (a rollout in progress, a canary): its pods are what to act
        // on (roll back), from its first requests, before the service's minute crosses a rule.
        // With the service's own errors past the rule too, those pods "explain it" below.
        if let Some(split) = version_split(s, containers_of, inputs.now, rules) {
            let score = scaled(w.errors, split.new_ratio(), rules.error_ratio, 0.5);
            for c in &split.new_pods {
                board.add(container_subject(c), "Errors from the new version", split.evidence(), score);
            }
            if !symptoms.iter().any(|(verdict, ..)| verdict == "Errors") {
                let evidence = format!("only its new version fails: {}", split.evidence());
                board.add(subject.clone(), "Errors after a rollout: see its new pods", evidence, score * 0.8);
            }
        }
        if symptoms.is_empty() {
            continue;
        }
        // Its own pods in trouble (a finding of their own, or simply not serving: starting, not
        // ready, waiting) explain the symptoms: the evidence goes to them and they rank first; the
        // service says where to look.
        let troubled = troubled_containers(s.pods.iter().map(|(pod, _)| *pod), containers_of, board);
        if !troubled.is_empty() {
            for (cs, _) in &troubled {
                for (verdict, text, score) in &symptoms {
                    board.add(cs.clone(), verdict.clone(), format!("{text} for {}", s.name), score * 0.5);
                }
            }
            let names: Vec<String> = troubled.iter().take(3).map(|(cs, v)| format!("{} ({v})", cs.label())).collect();
            for (verdict, text, score) in symptoms {
                let evidence = format!("{text}; its own pods explain it: {}", names.join(", "));
                board.add(subject.clone(), format!("{verdict}: see its pods"), evidence, score * 0.8);
            }
            continue;
        }
        // Healthy, idle pods: the time is spent elsewhere.
        let pods: Vec<&ContainerFacts> =
            s.pods.iter().flat_map(|(pod, _)| containers_of.get(pod).into_iter().flatten().copied()).collect();
        let idle = pods
            .iter()
            .filter_map(|c| Some(c.cpu_m / c.resources.cpu_limit_m.filter(|l| *l > 0.0)?))
            .filter(|r| r.is_finite())
            .reduce(f64::max);
        let newest = s.pods.iter().filter_map(|(pod, _)| containers_of.get(pod)?.first()?.created).max();
        // Most of the time at the gateway itself: the gateway's finding explains it.
        let at_gateway = s.now.overhead_p95.zip(s.now.p95).filter(|(o, p)| *p > 0.0 && *o >= 0.5 * *p);
        let chain =
            if at_gateway.is_none() { follow(Along::Latency, &s.name, s.now.p95, &inputs.calls) } else { Vec::new() };
        // 5xx that its healthy pods answer because a call failed: what failed further down.
        let failing = follow(Along::Errors, &s.name, Some(s.now.error_ratio), &inputs.calls);
        for (verdict, text, mut score) in symptoms {
            let mut evidence = text;
            let mut verdict = verdict;
            if verdict == "Slow" && !chain.is_empty() {
                blame_the_chain(Along::Latency, s, &chain, &evidence, score, containers_of, board);
                let deepest = chain.last().map_or("", |c| c.callee.as_str());
                verdict = format!("Slow: waits on {}", short_name(deepest, &s.name));
                evidence.push_str(&format!("; {}", chain_evidence(Along::Latency, &s.name, &chain)));
                score *= 0.8;
            } else if verdict == "Errors" && !failing.is_empty() {
                blame_the_chain(Along::Errors, s, &failing, &evidence, score, containers_of, board);
                let deepest = failing.last().map_or("", |c| c.callee.as_str());
                verdict = format!("Errors: from {}", short_name(deepest, &s.name));
                evidence.push_str(&format!("; {}", chain_evidence(Along::Errors, &s.name, &failing)));
                score *= 0.8;
            } else if verdict == "Slow" {
                if let Some((overhead, _)) = at_gateway {
                    verdict = "Slow at the gateway".into();
                    evidence.push_str(&format!(
                        "; {} of it is the gateway's own time (total − upstream): see the gateway",
                        format_latency(overhead)
                    ));
                    score *= 0.5;
                } else if let Some(r) = idle.filter(|r| *r < 0.5) {
                    verdict = "Slow, pods idle".into();
                    evidence.push_str(&format!(
                        "; its pods are healthy and idle (CPU at most {:.0}% of limit): a downstream dependency or the network",
                        r * 100.0
                    ));
                }
            } else if verdict == "Errors"
                && let Some(age) = newest.map(|n| inputs.now - n).filter(|a| *a <= rules.rollout_minutes * 60)
            {
                verdict = "Errors after a rollout".into();
                evidence.push_str(&format!("; its newest pod is {} old", format_age(age)));
            }
            board.add(subject.clone(), verdict, evidence, score);
        }
    }
}

/// The serving container of the one replica of a service that went not ready at least twice in
/// the last minutes while every other replica stayed ready, and how often.
pub(super) fn lone_flapper<'a>(
    s: &ServiceFacts,
    containers_of: &HashMap<&PodKey, Vec<&'a ContainerFacts<'a>>>,
    rules: &Rules,
) -> Option<(&'a ContainerFacts<'a>, u32)> {
    if s.pods.len() < 2 {
        return None;
    }
    let spells: Vec<(&ContainerFacts, u32)> = s
        .pods
        .iter()
        .filter_map(|(pod, _)| {
            let c = serving_container(containers_of, pod)?;
            Some((c, containers_of.get(*pod)?.iter().map(|c| c.not_ready_spells).max().unwrap_or(0)))
        })
        .collect();
    let flapping: Vec<&(&ContainerFacts, u32)> = spells.iter().filter(|(_, n)| *n >= 2).collect();
    match flapping.as_slice() {
        [(c, n)] if spells.iter().filter(|(_, n)| *n > 0).count() == 1 && *n >= rules.readiness_flaps.min(2) => {
            Some((c, *n))
        }
        _ => None,
    }
}

/// A service whose newest ReplicaSet (a rollout in progress, a canary) answers with errors the
/// older one does not, over the same minute.
pub(super) struct VersionSplit<'a> {
    new_rs: &'a str,
    new_pods: Vec<&'a ContainerFacts<'a>>,
    /// (requests, 5xx) of the new and of the old pods.
    new: (u64, u64),
    old: (u64, u64),
    old_sets: Vec<&'a str>,
    age: i64,
}

impl VersionSplit<'_> {
    fn new_ratio(&self) -> f64 {
        self.new.1 as f64 / self.new.0.max(1) as f64
    }

    fn evidence(&self) -> String {
        let ratio = |(r, e): (u64, u64)| if r == 0 { 0.0 } else { e as f64 / r as f64 };
        format!(
            "ReplicaSet {} (new, {} pod{}, {} old): {:.0}% 5xx ({} of {} in the last minute) against {:.0}% for {} ({} of {}) over the same minute",
            self.new_rs,
            self.new_pods.len(),
            if self.new_pods.len() == 1 { "" } else { "s" },
            format_age(self.age),
            ratio(self.new) * 100.0,
            self.new.1,
            self.new.0,
            ratio(self.old) * 100.0,
            self.old_sets.join(", "),
            self.old.1,
            self.old.0
        )
    }
}

pub(super) fn version_split<'a>(
    s: &'a ServiceFacts<'a>,
    containers_of: &HashMap<&PodKey, Vec<&'a ContainerFacts<'a>>>,
    now: UnixSecs,
    rules: &Rules,
) -> Option<VersionSplit<'a>> {
    // Per ReplicaSet: requests, 5xx, its newest pod's creation, its serving containers.
    let mut sets: BTreeMap<&str, (u64, u64, UnixSecs, Vec<&ContainerFacts>)> = BTreeMap::new();
    for (pod, requests, errors) in &s.pod_errors {
        let Some(rs) = replica_set_of(&pod.name) else { continue };
        let Some(serving) = serving_container(containers_of, pod) else { continue };
        let entry = sets.entry(rs).or_insert((0, 0, i64::MIN, Vec::new()));
        entry.0 += requests;
        entry.1 += errors;
        entry.2 = entry.2.max(serving.created.unwrap_or(i64::MIN));
        entry.3.push(serving);
    }
    if sets.len() < 2 {
        return None;
    }
    let (&new_rs, _) = sets.iter().max_by_key(|(rs, v)| (v.2, *rs))?;
    let (requests, errors, created, new_pods) = sets.remove(new_rs)?;
    let age = now - created;
    let old = sets.values().fold((0, 0), |(r, e), v| (r + v.0, e + v.1));
    let ratio = |(r, e): (u64, u64)| if r == 0 { 0.0 } else { e as f64 / r as f64 };
    let (new_ratio, old_ratio) = (ratio((requests, errors)), ratio(old));
    let fails_alone =
        requests >= rules.min_requests && old.0 > 0 && new_ratio >= rules.error_ratio && new_ratio >= 3.0 * old_ratio;
    (fails_alone && age <= rules.rollout_minutes * 60).then(|| VersionSplit {
        new_rs,
        new_pods,
        new: (requests, errors),
        old,
        old_sets: sets.keys().copied().collect(),
        age,
    })
}
