//! The facts the hotspot rules read, gathered from the state's rows, tracks, nodes and traffic.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::analysis::hotspots::{
    CallFacts, CapacityFacts, ContainerFacts, Hotspot, Inputs, NodeFacts, OOM_KILL_WINDOW_SECS, QueueFacts, Rules,
    ServiceFacts, rank,
};
use crate::analysis::traffic::{Resolver, namespaces_of, pods_by_ip};
use crate::model::broker::{QueueKey, QueueStats};
use crate::model::metrics::Usage;
use crate::model::node::NodeInfo;
use crate::model::pod::{PodInfo, PodKey};
use crate::model::replicas::ReplicaDrop;
use crate::model::series::Series;
use crate::model::store::Store;
use crate::model::time::UnixSecs;
use crate::model::traffic::{Summary, Traffic};

use super::rows::{ContainerRow, ContainerTrack, PodTracks, Tracks};
use super::traffic::Stream;

/// A replica's share of its service is judged over its newest closed slices, this many: one that
/// turned hot shows within a poll or two, where the minute's share lags most of a minute.
const SHARE_SLICES: usize = 2;
/// Requests those slices must hold across the service before its replicas are judged on them
/// (fewer, and chance alone can give one replica twice its share): else the minute's rates.
const SHARE_MIN_REQUESTS: f64 = 150.0;

/// Requests per second over the newest `slices` closed slices, if they are recent (the newest at
/// most two slices old: a replica no longer served has no recent rate).
fn recent_rps(rps: &Series, slices: usize, now: UnixSecs) -> Option<f64> {
    // Read from the newest end only: this runs for every upstream pod at every ranking.
    let newest = rps.newest_slot()? * rps.step();
    if slices == 0 || newest < now - (SHARE_SLICES as i64 + 1) * rps.step() || rps.len() < slices {
        return None;
    }
    let sum = rps.tail(slices).sum::<Option<f64>>()?;
    Some(sum / slices as f64)
}

/// A replica as the gateway saw it: its rate over the minute, its rate per closed slice, and
/// when it was sent its first request.
struct Replica<'a> {
    pod: &'a PodKey,
    minute_rps: f64,
    rps: &'a Series,
    first_seen: UnixSecs,
}

/// The replicas' rates their shares are judged on, and whether they can be judged yet.
/// - The newest closed slices, when they hold enough requests to mean something: one that turned
///   hot shows within a poll or two, where the minute's share lags most of a minute.
/// - Else the minute, or the part of it every replica was served in: one that joined half a
///   minute ago would look cold against the minute of siblings that carried the load alone.
/// - Not judged while a replica has served fewer than [`SHARE_SLICES`] whole slices.
fn replica_rates(pods: Vec<Replica<'_>>, now: UnixSecs) -> (Vec<(&PodKey, f64)>, bool) {
    let slice = crate::model::traffic::SLICE_SECS;
    // Whole closed slices since the newest replica's first request.
    let newest_arrival = pods.iter().map(|r| r.first_seen).max().unwrap_or(i64::MIN);
    let common_slices = (now.div_euclid(slice) - 1 - newest_arrival.div_euclid(slice)).max(0);
    let settled = common_slices >= SHARE_SLICES as i64;
    let rates_over =
        |slices: usize| -> Option<Vec<f64>> { pods.iter().map(|r| recent_rps(r.rps, slices, now)).collect() };
    let recent = rates_over(SHARE_SLICES)
        .filter(|recent| recent.iter().sum::<f64>() * (SHARE_SLICES as i64 * slice) as f64 >= SHARE_MIN_REQUESTS);
    let minute = crate::model::traffic::WINDOWS[0] / slice;
    let common = || if common_slices < minute { rates_over(common_slices as usize) } else { None };
    let rates = match recent.filter(|_| settled).or_else(common) {
        Some(rates) => pods.iter().zip(rates).map(|(r, rate)| (r.pod, rate)).collect(),
        None => pods.iter().map(|r| (r.pod, r.minute_rps)).collect(),
    };
    (rates, settled)
}

/// Memory growth is fitted over this much history: long enough to see through GC saw-teeth,
/// short enough to catch a leak that started minutes ago.
const MEMORY_TREND_SECS: i64 = 600;
/// Readiness flapping is counted over this much status history.
const FLAPPING_SECS: i64 = 600;
/// How straight the growth must be (R²), and over how long, to be called a leak.
const LEAK_MIN_FIT: f64 = 0.9;
const LEAK_MIN_SPAN_SECS: i64 = 90;
/// A leak fast enough to kill within this many minutes is called after a climb this short
/// (every sample above the one before, past every earlier high of the instance)...
const LEAK_CLIMB_HORIZON_MINUTES: f64 = 10.0;
const LEAK_CLIMB_SECS: i64 = 30;
/// ... by an instance running this long before the climb: a start-up's warm-up climbs too.
const LEAK_SETTLED_SECS: i64 = 60;
/// The latency baseline leaves out the most recent minutes, where the regression itself is.
const BASELINE_GAP_SECS: i64 = 120;
/// The latency baseline: the service's own p95 over the retained quarter hour.
const BASELINE_SECS: i64 = 900;
/// Slices a baseline needs before it is trusted (one minute of 10-second slices).
const BASELINE_MIN_SLICES: usize = 6;

/// The working set's growth per second when it is a leak: a line that fits over minutes, not a
/// load wave or a GC cycle; or, sooner, a climb that would reach the limit within minutes. Such a
/// leak kills before the long proof is in.
fn leak_growth(
    track: &ContainerTrack,
    started: Option<UnixSecs>,
    limit: f64,
    since: UnixSecs,
    now: UnixSecs,
) -> Option<f64> {
    let fits = track.mem_fits(since, LEAK_CLIMB_SECS);
    if let Some(t) = fits.steady.filter(|t| t.r2 >= LEAK_MIN_FIT && t.span_secs >= LEAK_MIN_SPAN_SECS) {
        return Some(t.per_sec);
    }
    if started.is_none_or(|s| s > now - LEAK_CLIMB_SECS - LEAK_SETTLED_SECS) {
        return None;
    }
    let climb = fits.climb.filter(|t| t.r2 >= LEAK_MIN_FIT && t.per_sec > 0.0)?;
    let minutes_to_limit = (limit - track.mem.latest()?).max(0.0) / climb.per_sec / 60.0;
    (minutes_to_limit <= LEAK_CLIMB_HORIZON_MINUTES).then_some(climb.per_sec)
}

pub struct Sources<'a> {
    pub rows: &'a [ContainerRow],
    pub pods: &'a Store<PodKey, PodInfo>,
    pub tracks: &'a Tracks,
    pub nodes: &'a Store<String, NodeInfo>,
    pub node_usage: &'a HashMap<String, Usage>,
    pub traffic: &'a Traffic,
    /// Gateway log streams by name; pod streams are named `namespace/pod`.
    pub streams: &'a BTreeMap<String, Stream>,
    /// Workloads whose pod count fell in the last minutes.
    pub replica_drops: Vec<ReplicaDrop>,
    /// Each followed mesh sidecar's calls, by the pod that made them.
    pub mesh: &'a BTreeMap<PodKey, Traffic>,
    /// Gateway backend names → `namespace/service`, from the Services.
    pub backend_services: &'a hashbrown::HashMap<String, String>,
    /// Each queue, its latest stats and its consumer pods.
    pub queues: Vec<(&'a QueueKey, &'a QueueStats, Vec<String>)>,
    pub now: UnixSecs,
}

pub fn compute(src: Sources, rules: &Rules) -> Vec<Hotspot> {
    let now = src.now;
    // Rows come grouped by pod: one tracks lookup per pod, not per container.
    let mut pod_tracks: Option<(&PodKey, Option<&PodTracks>)> = None;
    let containers: Vec<ContainerFacts> = src
        .rows
        .iter()
        .map(|r| {
            // A trend only where a limit can be reached: most containers have no reason to fit one.
            // Only this instance's points: a restart's drop is no trend.
            let since = r.started.unwrap_or(0).max(now - MEMORY_TREND_SECS);
            let tracks = match pod_tracks {
                Some((pod, tracks)) if pod == &r.pod => tracks,
                _ => {
                    let tracks = src.tracks.pod(&r.pod);
                    pod_tracks = Some((&r.pod, tracks));
                    tracks
                }
            };
            // Looked up once per row: at 30,000 rows ranked every second, the key comparisons showed.
            let track = tracks.and_then(|t| t.container(&r.container));
            // Readiness flapping: the spells of NotReady in the status history of the last minutes.
            let not_ready_spells = track.map_or(0, |t| {
                t.history.iter().filter(|(at, word, _)| *at >= now - FLAPPING_SECS && word == "NotReady").count() as u32
            });
            let mem_growth = r
                .resources
                .mem_limit
                .filter(|l| r.usage.mem.is_finite() && r.usage.mem >= 0.3 * l)
                .and_then(|limit| leak_growth(track?, r.started, limit, since, now));
            ContainerFacts {
                pod: &r.pod,
                container: &r.container,
                init: r.init,
                node: &r.node,
                health: &r.health,
                restarts_1h: r.restarts_1h,
                last_reason: r.last_reason.as_deref(),
                resources: &r.resources,
                cpu_m: r.usage.cpu_m,
                mem: r.usage.mem,
                throttle: r.throttle,
                mem_growth,
                created: r.created,
                not_ready_spells,
                oom_kills: track.map_or(0, |t| t.oom_kills_since(now - OOM_KILL_WINDOW_SECS)),
            }
        })
        .collect();

    // The joins cost a pass over every pod: only when the gateway saw something.
    let seen_traffic =
        !src.traffic.backends.stats.is_empty() || !src.traffic.upstreams.stats.is_empty() || !src.mesh.is_empty();
    let by_ip = if seen_traffic { pods_by_ip(src.pods.values()) } else { Default::default() };
    let namespaces = if seen_traffic { namespaces_of(src.pods.values()) } else { BTreeSet::new() };
    let resolver = Resolver { known: src.backend_services, namespaces };
    let mut pods_of: HashMap<&str, Vec<Replica>> = HashMap::new();
    let mut pod_errors_of: HashMap<&str, Vec<(&PodKey, u64, u64)>> = HashMap::new();
    for (ip, stats) in src.traffic.upstreams.stats.iter() {
        if let Some(&key) = by_ip.get(ip.as_str()) {
            let minute = stats.summary(0, now);
            let replica =
                Replica { pod: key, minute_rps: minute.rps, rps: stats.rps(), first_seen: stats.first_seen() };
            pods_of.entry(stats.backend.as_str()).or_default().push(replica);
            pod_errors_of.entry(stats.backend.as_str()).or_default().push((key, minute.requests, minute.server_errors));
        }
    }
    let services: Vec<ServiceFacts> = src
        .traffic
        .backends
        .stats
        .iter()
        .map(|(backend, stats)| {
            let (pods, shares_settled) = replica_rates(pods_of.remove(backend.as_str()).unwrap_or_default(), now);
            ServiceFacts {
                name: resolver.service_of(backend).unwrap_or_else(|| backend.clone()),
                backend,
                now: stats.summary(0, now),
                baseline_p95: stats.p95_series().median_between(
                    now - BASELINE_SECS,
                    now - BASELINE_GAP_SECS,
                    BASELINE_MIN_SLICES,
                ),
                pods,
                pod_errors: pod_errors_of.remove(backend.as_str()).unwrap_or_default(),
                shares_settled,
            }
        })
        .map(|mut s| {
            if s.pods.is_empty() {
                s.pods = pods_named_like(src.pods, &s.name).map(|p| (p, 0.0)).collect();
            }
            s
        })
        .collect();

    let nodes: Vec<NodeFacts> = src
        .nodes
        .values()
        .map(|n| NodeFacts {
            name: &n.name,
            ready: &n.ready,
            pressures: &n.pressures,
            cpu_used_m: src.node_usage.get(&n.name).map(|u| u.cpu_m).filter(|c| c.is_finite()),
            cpu_allocatable_m: n.cpu_allocatable_m,
        })
        .collect();

    let calls = mesh_calls(&src, &services, &by_ip, &resolver);
    let capacity = capacity_facts(&src, &services);
    let gateway_pods: Vec<&PodKey> = src
        .streams
        .keys()
        .filter_map(|name| {
            let (namespace, pod) = name.split_once('/')?;
            src.pods.get(&PodKey::new(namespace, pod)).map(|p| &p.key)
        })
        .collect();
    let gateway = Some((src.traffic.gateway.summary(0, now), gateway_pods));
    let queues = src.queues.into_iter().map(|(key, stats, consumers)| QueueFacts { key, stats, consumers }).collect();
    rank(&Inputs { now, containers, services, nodes, gateway, queues, calls, capacity }, rules)
}

/// Each workload whose pod count fell: its pods now, and its service's load before the fall
/// and now (the service the gateway reached its pods through).
fn capacity_facts<'a>(src: &Sources<'a>, services: &[ServiceFacts<'a>]) -> Vec<CapacityFacts<'a>> {
    src.replica_drops
        .iter()
        .filter_map(|drop| {
            let (namespace, workload) = drop.workload.split_once('/')?;
            let pods: Vec<&PodKey> = src
                .pods
                .values()
                .filter(|p| p.key.namespace == namespace && p.workload.as_deref() == Some(workload) && !p.deleting)
                .map(|p| &p.key)
                .collect();
            let service = services.iter().find(|s| s.pods.iter().any(|(pod, _)| pods.contains(pod)));
            let stats = service.and_then(|s| src.traffic.backends.stats.get(s.backend));
            Some(CapacityFacts {
                namespace: namespace.to_string(),
                workload: workload.to_string(),
                from: drop.from,
                to: drop.to,
                at: drop.at,
                load_before: stats.and_then(|st| st.rps().median_between(drop.at - 180, drop.at, 3)),
                load_now: service.map(|s| s.now.rps),
                pods,
            })
        })
        .collect()
}

/// The calls between services over the last minute, from the mesh sidecars' logs: the caller
/// is the service of the pod whose sidecar wrote the line (as the gateway or another caller
/// reached it, else by its workload's name), the callee the Service of the line's cluster.
fn mesh_calls<'a>(
    src: &Sources<'a>,
    services: &[ServiceFacts<'a>],
    by_ip: &hashbrown::HashMap<&'a str, &'a PodKey>,
    resolver: &Resolver,
) -> Vec<CallFacts<'a>> {
    if src.mesh.is_empty() {
        return Vec::new();
    }
    let now = src.now;
    let mut service_of: HashMap<&PodKey, String> = HashMap::new();
    for s in services {
        for (pod, _) in &s.pods {
            service_of.insert(pod, s.name.clone());
        }
    }
    // Each edge: caller pods' minutes (requests, p95, 5xx) and the callee pods reached.
    type Edge<'a> = (Vec<Summary>, BTreeSet<&'a PodKey>);
    let mut edges: BTreeMap<(String, String), Edge> = BTreeMap::new();
    let mut reached: Vec<(&PodKey, String)> = Vec::new();
    for traffic in src.mesh.values() {
        for (ip, stats) in traffic.upstreams.stats.iter() {
            if let (Some(&pod), Some(callee)) = (by_ip.get(ip.as_str()), resolver.service_of(&stats.backend)) {
                reached.push((pod, callee));
            }
        }
    }
    for (pod, callee) in reached {
        service_of.entry(pod).or_insert(callee);
    }
    for (caller_pod, traffic) in src.mesh {
        let caller = match service_of.get(caller_pod) {
            Some(s) => s.clone(),
            None => match src.pods.get(caller_pod).and_then(|p| p.workload.as_deref()?.split_once('/')) {
                Some((_, workload)) => format!("{}/{workload}", caller_pod.namespace),
                None => continue,
            },
        };
        for (backend, stats) in traffic.backends.stats.iter() {
            let Some(callee) = resolver.service_of(backend) else { continue };
            let minute = stats.summary(0, now);
            if minute.requests == 0 {
                continue;
            }
            edges.entry((caller.clone(), callee)).or_default().0.push(minute);
        }
        for (ip, stats) in traffic.upstreams.stats.iter() {
            if let (Some(&pod), Some(callee)) = (by_ip.get(ip.as_str()), resolver.service_of(&stats.backend))
                && let Some(edge) = edges.get_mut(&(caller.clone(), callee))
            {
                edge.1.insert(pod);
            }
        }
    }
    edges
        .into_iter()
        .map(|((caller, callee), (minutes, pods))| {
            let requests: u64 = minutes.iter().map(|m| m.requests).sum();
            let server_errors: u64 = minutes.iter().map(|m| m.server_errors).sum();
            // Caller pods see the same callee: their p95s, weighted by how much each called.
            let weighted: Vec<(f64, f64)> = minutes.iter().filter_map(|m| Some((m.p95?, m.requests as f64))).collect();
            let weight: f64 = weighted.iter().map(|(_, w)| w).sum();
            let p95 = (weight > 0.0).then(|| weighted.iter().map(|(p, w)| p * w).sum::<f64>() / weight);
            let now = Summary {
                requests,
                rps: minutes.iter().map(|m| m.rps).sum(),
                server_errors,
                error_ratio: server_errors as f64 / requests.max(1) as f64,
                p95,
                ..Summary::default()
            };
            CallFacts { caller, callee, now, callee_pods: pods.into_iter().collect() }
        })
        .collect()
}

/// Pods that by the usual conventions belong to Service `namespace/name`: its workload has the
/// name, or its `app.kubernetes.io/name` or `app` label does. (kpulse does not watch Services.)
fn pods_named_like<'a>(pods: &'a Store<PodKey, PodInfo>, service: &str) -> impl Iterator<Item = &'a PodKey> + 'a {
    let (namespace, name) = service.split_once('/').unwrap_or(("", service));
    let (namespace, name) = (namespace.to_string(), name.to_string());
    pods.values()
        .filter(move |p| {
            p.key.namespace == namespace
                && (p.workload.as_deref().and_then(|w| w.split_once('/')).is_some_and(|(_, w)| w == name)
                    || p.label("app.kubernetes.io/name") == Some(name.as_str())
                    || p.label("app") == Some(name.as_str()))
        })
        .map(|p| &p.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One closed 10-second slice per entry, the newest last, ending just before `now`.
    fn rates(per_slice: &[f64], now: UnixSecs) -> Series {
        let mut s = Series::new(10, 600);
        let first = now / 10 * 10 - 10 * per_slice.len() as i64;
        for (i, v) in per_slice.iter().enumerate() {
            s.push(first + 10 * i as i64, *v);
        }
        s
    }

    const MI: f64 = 1024.0 * 1024.0;

    /// A working set sampled every 10 s up to `now`: `flat` samples level (with a little noise),
    /// then `climb` rising by `per_sample`.
    fn working_set(now: UnixSecs, flat: usize, climb: usize, per_sample: f64) -> ContainerTrack {
        let mut track = ContainerTrack::new(10, 900);
        let first = now - 10 * (flat + climb - 1) as i64;
        for i in 0..flat + climb {
            let noise = if i % 2 == 0 { 0.1 * MI } else { 0.0 };
            let rise = i.saturating_sub(flat - 1) as f64 * per_sample;
            track.mem.push(first + 10 * i as i64, 100.0 * MI + noise + rise);
        }
        track
    }

    #[test]
    fn a_fast_leak_is_named_after_a_short_climb_a_slow_one_after_minutes() {
        let (now, limit) = (1_000_000, 200.0 * MI);
        let long_ago = Some(now - 3600);
        // 5 MiB every 10 s: the limit in about 3 minutes. Named after 30 s of climbing.
        let fast = working_set(now, 30, 3, 5.0 * MI);
        let growth = leak_growth(&fast, long_ago, limit, now - 600, now).expect("a fast leak");
        assert!((growth * 60.0 / MI - 30.0).abs() < 0.5, "{} MiB/min", growth * 60.0 / MI);
        // An instance that started just before its climb is warming up, not leaking.
        assert_eq!(leak_growth(&fast, Some(now - 60), limit, now - 60, now), None);
        // 0.5 MiB every 10 s would take over half an hour: that wants the long proof.
        let slow = working_set(now, 30, 3, 0.5 * MI);
        assert_eq!(leak_growth(&slow, long_ago, limit, now - 600, now), None);
        let slow = working_set(now, 6, 12, 0.5 * MI);
        assert!(leak_growth(&slow, long_ago, limit, now - 600, now).is_some(), "two minutes of a straight line");
        // A climb back to where the working set had been before is a wave, not a leak.
        let mut wave = working_set(now, 30, 3, 5.0 * MI);
        wave.mem.push(now + 10, 90.0 * MI);
        for i in 2..=4 {
            wave.mem.push(now + 10 * i, 90.0 * MI + (i - 1) as f64 * 5.0 * MI);
        }
        assert_eq!(leak_growth(&wave, long_ago, limit, now - 600, now + 40), None);
    }

    #[test]
    fn a_replica_that_turned_hot_is_judged_on_its_newest_slices_when_they_hold_enough() {
        let now = 1_000_005;
        assert_eq!(recent_rps(&rates(&[10.0, 10.0, 10.0, 40.0, 30.0], now), 2, now), Some(35.0));
        assert_eq!(recent_rps(&rates(&[10.0], now), 2, now), None, "one slice is not enough");
        assert_eq!(recent_rps(&rates(&[], now), 2, now), None);
        // Slices that stopped a minute ago are no recent rate.
        assert_eq!(recent_rps(&rates(&[10.0, 10.0], now - 60), 2, now), None);

        let (a, b) = (PodKey::new("shop", "cart-a"), PodKey::new("shop", "cart-b"));
        let long_ago = now - 3600;
        let replica = |pod, minute_rps, rps, first_seen| Replica { pod, minute_rps, rps, first_seen };
        // 20 s of 40 + 10 requests a second: 1,000 requests, enough to judge on.
        let (hot, even) = (rates(&[10.0, 10.0, 10.0, 10.0, 40.0, 30.0], now), rates(&[10.0; 6], now));
        let judged = replica_rates(vec![replica(&a, 15.0, &hot, long_ago), replica(&b, 15.0, &even, long_ago)], now);
        assert_eq!(judged, (vec![(&a, 35.0), (&b, 10.0)], true));
        // 20 s of 3 + 1 a second: 80 requests, chance could do that; the minute's rates instead.
        let (warm, even) = (rates(&[1.0, 1.0, 1.0, 1.0, 3.0, 3.0], now), rates(&[1.0; 6], now));
        let judged = replica_rates(vec![replica(&a, 2.0, &warm, long_ago), replica(&b, 2.0, &even, long_ago)], now);
        assert_eq!(judged, (vec![(&a, 2.0), (&b, 2.0)], true));
        // b joined 35 s ago: over the minute a carried the load alone for 25 s and would look hot
        // (3.0/s against 1.7/s); over the slices both were served in, they are even.
        let (old, new) = (rates(&[3.0; 6], now), rates(&[3.0, 3.0, 3.0], now));
        let judged = replica_rates(vec![replica(&a, 3.0, &old, long_ago), replica(&b, 1.7, &new, now - 35)], now);
        assert_eq!(judged, (vec![(&a, 3.0), (&b, 3.0)], true));
        // b joined 15 s ago: its share is still to come; nothing is judged.
        let new = rates(&[3.0], now);
        let judged = replica_rates(vec![replica(&a, 3.0, &old, long_ago), replica(&b, 1.0, &new, now - 15)], now);
        assert!(!judged.1, "{judged:?}");
    }
}
