//! The rules on hand-made facts: each verdict, its evidence and its rank.

use super::*;
use crate::analysis::health::Health;
use crate::analysis::health::Severity;
use crate::model::pod::{PodKey, Resources};
use crate::model::time::UnixSecs;
use crate::model::traffic::Summary;

const NOW: UnixSecs = 1_700_000_000;

struct Owned {
    pods: Vec<PodKey>,
    health: Vec<Health>,
    resources: Resources,
}

fn owned(n: usize) -> Owned {
    Owned {
        pods: (0..n).map(|i| PodKey::new("shop", format!("payment-{i}"))).collect(),
        health: vec![Health { severity: Severity::Good, word: "Running".into(), detail: None }; n],
        resources: Resources {
            cpu_request_m: Some(100.0),
            cpu_limit_m: Some(500.0),
            mem_request: Some(128.0 * 1048576.0),
            mem_limit: Some(256.0 * 1048576.0),
        },
    }
}

fn facts(o: &Owned, i: usize) -> ContainerFacts<'_> {
    ContainerFacts {
        pod: &o.pods[i],
        container: "app",
        init: false,
        node: "node-a",
        health: &o.health[i],
        restarts_1h: 0,
        last_reason: None,
        resources: &o.resources,
        cpu_m: 50.0,
        mem: 100.0 * 1048576.0,
        throttle: Some(0.0),
        mem_growth: None,
        created: Some(NOW - 86_400),
        not_ready_spells: 0,
        oom_kills: 0,
    }
}

/// node-a with every allocatable millicore in use and no pressure.
fn node_a_at_full_cpu() -> NodeFacts<'static> {
    NodeFacts { name: "node-a", ready: "True", pressures: &[], cpu_used_m: Some(3900.0), cpu_allocatable_m: 3900.0 }
}

fn inputs(containers: Vec<ContainerFacts<'_>>) -> Inputs<'_> {
    Inputs {
        now: NOW,
        containers,
        services: vec![],
        nodes: vec![],
        gateway: None,
        queues: vec![],
        calls: vec![],
        capacity: vec![],
    }
}

fn summary(requests: u64, errors: u64, p95: f64) -> Summary {
    Summary {
        requests,
        rps: requests as f64 / 60.0,
        error_ratio: errors as f64 / requests as f64,
        server_errors: errors,
        p50: Some(p95 / 2.0),
        p95: Some(p95),
        p99: Some(p95 * 1.2),
        overhead_p95: Some(0.001),
        upstream_share: Some(0.99),
        ..Summary::default()
    }
}

fn top(inputs: &Inputs) -> Hotspot {
    rank(inputs, &Rules::default()).into_iter().next().expect("a hotspot")
}

#[test]
fn a_backlog_growing_longer_than_a_burst_is_a_lagging_consumer() {
    use crate::model::broker::{Direction, QueueKey, QueueStats};
    let key = QueueKey { broker: "rabbitmq".into(), queue: "order-events".into(), group: String::new() };
    let stats = |growing_for: i64, backlog: f64| QueueStats {
        backlog,
        unacked: Some(1.0),
        consumers: Some(1.0),
        publish_rate: Some(30.0),
        ack_rate: Some(5.0),
        redelivery_rate: None,
        dead_letter_rate: None,
        direction: Direction::Growing,
        backlog_per_sec: 25.0,
        growing_since: Some(NOW - growing_for),
        drain_secs: None,
        clients: Default::default(),
    };
    let rules = Rules::default();
    let run = |s: &QueueStats| {
        let mut i = inputs(vec![]);
        i.queues = vec![QueueFacts { key: &key, stats: s, consumers: vec!["shop/event-consumer-abc".into()] }];
        rank(&i, &rules)
    };
    assert!(run(&stats(60, 5_000.0)).is_empty(), "a one-minute burst is what queues are for");
    assert!(run(&stats(600, 50.0)).is_empty(), "a handful of messages is no backlog");
    let ranked = run(&stats(600, 5_000.0));
    assert_eq!(ranked[0].subject.label(), "queue rabbitmq/order-events");
    assert_eq!(ranked[0].verdict(), "Consumer falling behind");
    assert_eq!(
        ranked[0].evidence()[0],
        "backlog 5000 growing +25/s for 10m (in 30/s, acknowledged 5/s); consumed by shop/event-consumer-abc"
    );
    assert!(run(&stats(1_800, 5_000.0))[0].score > ranked[0].score, "longer lag, stronger finding");
}

#[test]
fn healthy_containers_are_no_hotspot() {
    let o = owned(3);
    assert!(rank(&inputs((0..3).map(|i| facts(&o, i)).collect()), &Rules::default()).is_empty());
}

#[test]
fn throttled_container_is_cpu_starved_with_the_numbers() {
    let o = owned(1);
    let mut c = facts(&o, 0);
    c.throttle = Some(0.62);
    c.cpu_m = 480.0;
    let h = top(&inputs(vec![c]));
    assert_eq!(h.subject.label(), "shop/payment-0/app");
    assert_eq!(h.summary(), "CPU-starved: throttled 62% of periods at 480m of a 500m limit");
    assert!(h.score > 55, "{}", h.score);
    // Below the mixin's 25 %: nothing.
    let mut c = facts(&o, 0);
    c.throttle = Some(0.2);
    assert!(rank(&inputs(vec![c]), &Rules::default()).is_empty());
}

#[test]
fn without_throttling_data_usage_at_the_limit_counts() {
    let o = owned(1);
    let mut c = facts(&o, 0);
    c.throttle = None;
    c.cpu_m = 470.0;
    assert_eq!(top(&inputs(vec![c])).summary(), "CPU-starved: using 94% of its 500m CPU limit");
}

#[test]
fn a_leak_says_when_it_will_be_killed() {
    let o = owned(1);
    let mut c = facts(&o, 0);
    c.mem = 156.0 * 1048576.0;
    c.mem_growth = Some(10.0 * 1048576.0 / 60.0);
    let h = top(&inputs(vec![c.clone()]));
    assert_eq!(h.verdict(), "Memory leak");
    assert_eq!(h.evidence()[0], "working set 156Mi of 256Mi and growing 10Mi/min: OOM in ~10m");
    // Slow growth beyond the horizon is not a leak worth a hotspot; near the limit still is.
    c.mem_growth = Some(1024.0);
    assert!(rank(&inputs(vec![c.clone()]), &Rules::default()).is_empty());
    c.mem = 240.0 * 1048576.0;
    assert_eq!(top(&inputs(vec![c])).verdict(), "Memory near limit");
}

/// Seen outside the suite: a crash-looping container kept "growing 28.9Mi/min: OOM in ~48s"
/// from its last run's samples.
#[test]
fn a_container_that_is_not_running_gets_no_memory_forecast() {
    let mut o = owned(1);
    o.health[0] = Health {
        severity: Severity::Bad,
        word: "CrashLoop".into(),
        detail: Some("back-off after OOMKilled (exit 137)".into()),
    };
    let mut c = facts(&o, 0);
    c.mem = 250.0 * 1048576.0;
    c.mem_growth = Some(28.9 * 1048576.0 / 60.0);
    c.restarts_1h = 3;
    let ranked = rank(&inputs(vec![c]), &Rules::default());
    assert_eq!(ranked[0].verdict(), "Crash-looping");
    let all: Vec<String> = ranked.iter().flat_map(|h| h.evidence().into_iter().map(String::from)).collect();
    assert!(all.iter().all(|e| !e.contains("OOM in") && !e.contains("working set")), "{all:?}");
}

/// A saturated node without one bursting neighbour says who uses its CPU.
#[test]
fn node_cpu_saturation_names_its_biggest_users() {
    let mut o = owned(4);
    // Each within its request: no one is a noisy neighbour, the node is simply full.
    o.resources.cpu_request_m = Some(1000.0);
    o.resources.cpu_limit_m = None;
    let mut input = inputs(
        (0..4)
            .map(|i| {
                let mut c = facts(&o, i);
                c.cpu_m = 900.0 + 10.0 * i as f64;
                c
            })
            .collect(),
    );
    input.nodes.push(node_a_at_full_cpu());
    let ranked = rank(&input, &Rules::default());
    let node = ranked.iter().find(|h| h.subject.label() == "node node-a").expect("the node ranked");
    assert_eq!(
        node.evidence()[0],
        "node-a at 100% of allocatable CPU; most used by: payment-3/app 930m, payment-2/app 920m, payment-1/app 910m (+1 more)"
    );
}

#[test]
fn health_words_become_verdicts() {
    for (word, detail, last, verdict) in [
        ("CrashLoop", "back-off after Error (exit 1)", None, "Crash-looping"),
        ("ImagePull", "Back-off pulling image", None, "Image pull failing"),
        ("ConfigError", "secret \"db\" not found", None, "Cannot start"),
        ("Unschedulable", "0/3 nodes are available: 3 Insufficient cpu.", None, "Pending: fits no node"),
        ("NotReady", "", None, "Not ready"),
        ("OOMKilled", "exit 137", Some("OOMKilled"), "OOMKilled"),
    ] {
        let mut o = owned(1);
        o.health[0] = Health { severity: Severity::Bad, word: word.into(), detail: Some(detail.into()) };
        let mut c = facts(&o, 0);
        c.last_reason = last;
        c.restarts_1h = 1;
        assert_eq!(top(&inputs(vec![c])).verdict(), verdict, "{word}");
    }
    let mut o = owned(1);
    o.health[0] = Health { severity: Severity::Bad, word: "CrashLoop".into(), detail: None };
    let mut c = facts(&o, 0);
    c.last_reason = Some("OOMKilled");
    c.restarts_1h = 7;
    assert_eq!(top(&inputs(vec![c])).evidence()[0], "OOMKilled at its 256Mi limit; 7 restarts in the last hour");
}

#[test]
fn oom_kills_that_left_the_container_running_are_named() {
    let o = owned(1);
    let mut c = facts(&o, 0);
    c.oom_kills = 3;
    c.mem = 250.0 * 1024.0 * 1024.0;
    let h = top(&inputs(vec![c.clone()]));
    assert_eq!(h.verdict(), "Processes OOM-killed");
    assert_eq!(
        h.evidence()[0],
        "the kernel OOM-killed a process 3 times in the last 15 min, the container kept running; \
         working set 250Mi of its 256Mi limit"
    );
    // When the container itself died of it, the OOMKilled finding says so: no second one.
    c.last_reason = Some("OOMKilled");
    c.restarts_1h = 1;
    let h = top(&inputs(vec![c]));
    assert_eq!(h.verdict(), "OOMKilled");
    assert!(h.findings.iter().all(|f| f.verdict != "Processes OOM-killed"), "{h:?}");
}

#[test]
fn readiness_flapping() {
    let o = owned(1);
    let mut c = facts(&o, 0);
    c.not_ready_spells = 4;
    assert_eq!(
        top(&inputs(vec![c.clone()])).summary(),
        "Readiness flapping: went not ready 4 times in the last 10 minutes"
    );
    c.not_ready_spells = 2;
    assert!(rank(&inputs(vec![c]), &Rules::default()).is_empty());
}

#[test]
fn one_replica_flapping_among_steady_siblings_ranks_above_a_busy_node() {
    let o = owned(3);
    let mut flapper = facts(&o, 0);
    flapper.not_ready_spells = 2;
    let mut input = inputs(vec![flapper, facts(&o, 1), facts(&o, 2)]);
    input.nodes.push(node_a_at_full_cpu());
    input.services.push(ServiceFacts {
        name: "shop/payment".into(),
        backend: "shop-payment-80",
        now: summary(600, 0, 0.05),
        baseline_p95: Some(0.05),
        pods: vec![(&o.pods[0], 3.0), (&o.pods[1], 3.5), (&o.pods[2], 3.5)],
        pod_errors: vec![],
        shares_settled: true,
    });
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "shop/payment-0/app", "{ranked:#?}");
    assert_eq!(
        ranked[0].summary(),
        "Readiness flapping: went not ready 2 times in the last 10 minutes while its 2 siblings stayed ready; each time shop/payment loses it as an endpoint (3.0 of 10.0/s before)"
    );
    assert_eq!(ranked[1].subject.label(), "node node-a");
    // Two replicas flapping: a wider cause (the node, the probe's dependency), not one pod.
    input.containers[1].not_ready_spells = 2;
    assert!(rank(&input, &Rules::default()).iter().all(|h| h.verdict() != "Readiness flapping"));
}

#[test]
fn a_node_under_disk_pressure_names_the_pods_it_evicted_and_ranks_above_them() {
    let mut o = owned(3);
    let message = "The node was low on resource: ephemeral-storage. ";
    for h in &mut o.health[..2] {
        *h = Health { severity: Severity::Warn, word: "Evicted".into(), detail: Some(message.into()) };
    }
    let pressures = vec!["DiskPressure".to_string()];
    let mut input = inputs(vec![facts(&o, 0), facts(&o, 1), facts(&o, 2)]);
    input.nodes.push(NodeFacts {
        name: "node-a",
        ready: "True",
        pressures: &pressures,
        cpu_used_m: Some(1000.0),
        cpu_allocatable_m: 3900.0,
    });
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "node node-a", "{ranked:#?}");
    assert_eq!(
        ranked[0].summary(),
        "Node under DiskPressure: DiskPressure on node-a; its kubelet evicted 2 pods: payment-0, payment-1"
    );
    let evicted = &ranked[1];
    assert_eq!(evicted.verdict(), "Evicted");
    assert_eq!(
        evicted.evidence(),
        vec!["by its node's kubelet: The node was low on resource: ephemeral-storage.", "DiskPressure on node node-a"]
    );
    assert_eq!(evicted.findings[1].verdict, "Evicted: see node node-a");
}

#[test]
fn frequent_restarts_of_a_running_container() {
    let o = owned(1);
    let mut c = facts(&o, 0);
    c.restarts_1h = 5;
    c.last_reason = Some("Error");
    assert_eq!(top(&inputs(vec![c.clone()])).summary(), "Restarting: 5 restarts in the last hour, last Error");
    c.restarts_1h = 2;
    assert!(rank(&inputs(vec![c.clone()]), &Rules::default()).is_empty());
    // Not ready again after two crashes: the loop goes on between back-offs.
    let mut o = owned(1);
    o.health[0] = Health { severity: Severity::Warn, word: "Starting".into(), detail: None };
    let mut between = facts(&o, 0);
    between.restarts_1h = 2;
    between.last_reason = Some("Error");
    assert_eq!(
        top(&inputs(vec![between])).summary(),
        "Crash-looping: running again after Error, not ready; 2 restarts in the last hour"
    );
    // One OOM kill is enough to see.
    c.restarts_1h = 1;
    c.last_reason = Some("OOMKilled");
    assert_eq!(top(&inputs(vec![c])).summary(), "OOMKilled: OOMKilled at its 256Mi limit once in the last hour");
}

#[test]
fn a_slow_service_with_saturated_pods_ranks_the_pods_first() {
    let o = owned(2);
    let mut starved = facts(&o, 0);
    starved.throttle = Some(0.6);
    let mut input = inputs(vec![starved, facts(&o, 1)]);
    input.services.push(ServiceFacts {
        name: "shop/payment".into(),
        backend: "shop-payment-80",
        now: summary(600, 72, 1.8),
        baseline_p95: Some(0.36),
        pods: vec![(&o.pods[0], 5.0), (&o.pods[1], 5.0)],
        pod_errors: vec![],
        shares_settled: true,
    });
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "shop/payment-0/app");
    assert_eq!(ranked[0].verdict(), "CPU-starved");
    let all = ranked[0].evidence().join("; ");
    assert!(all.contains("p95 1.8s (5× its baseline 360ms) for shop/payment"), "{all}");
    assert!(all.contains("12% 5xx at the gateway"), "{all}");
    assert_eq!(ranked[1].subject.label(), "svc shop/payment");
    assert_eq!(ranked[1].verdict(), "Slow: see its pods");
    assert!(
        ranked[1].evidence().iter().all(|e| e.ends_with("its own pods explain it: shop/payment-0/app (CPU-starved)"))
    );
}

#[test]
fn a_failing_service_whose_pod_is_not_serving_points_at_that_pod() {
    let mut o = owned(1);
    o.health[0] = Health { severity: Severity::Warn, word: "Starting".into(), detail: None };
    let mut input = inputs(vec![facts(&o, 0)]);
    input.services.push(ServiceFacts {
        name: "shop/notification".into(),
        backend: "shop-notification-80",
        now: summary(84, 84, 0.0),
        baseline_p95: None,
        pods: vec![(&o.pods[0], 0.0)],
        pod_errors: vec![],
        shares_settled: true,
    });
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "svc shop/notification");
    assert!(ranked[0].evidence()[0].ends_with("its own pods explain it: shop/payment-0/app (Starting)"), "{ranked:#?}");
    assert_eq!(
        ranked[1].summary(),
        "Errors: 100% 5xx at the gateway (84 of 84 in the last minute) for shop/notification"
    );
}

#[test]
fn a_slow_service_with_idle_pods_points_downstream() {
    let o = owned(2);
    let mut input = inputs(vec![facts(&o, 0), facts(&o, 1)]);
    input.services.push(ServiceFacts {
        name: "shop/order".into(),
        backend: "shop-order-80",
        now: summary(600, 0, 0.9),
        baseline_p95: Some(0.05),
        pods: vec![(&o.pods[0], 5.0), (&o.pods[1], 5.0)],
        pod_errors: vec![],
        shares_settled: true,
    });
    let h = top(&input);
    assert_eq!(h.subject.label(), "svc shop/order");
    assert_eq!(h.verdict(), "Slow, pods idle");
    assert!(h.evidence()[0].contains("CPU at most 10% of limit): a downstream dependency"), "{}", h.evidence()[0]);
    // Too few requests: noise, not a hotspot.
    input.services[0].now = summary(10, 0, 0.9);
    assert!(rank(&input, &Rules::default()).is_empty());
    // Without a baseline, only an absolutely slow p95 counts.
    input.services[0].now = summary(600, 0, 0.9);
    input.services[0].baseline_p95 = None;
    assert!(rank(&input, &Rules::default()).is_empty());
    input.services[0].now = summary(600, 0, 1.5);
    assert_eq!(top(&input).evidence()[0].split(';').next(), Some("p95 1.5s (no baseline yet)"));
}

/// Seen on a fault outside the suite: payment slow "pods idle" ranked above the CPU-starved
/// pods two calls below it that cause it. The mesh's calls lead there.
#[test]
fn a_slow_service_is_traced_through_its_calls_to_the_starved_pods_at_the_end() {
    let o = owned(4);
    let mut starved = facts(&o, 3);
    starved.cpu_m = 495.0;
    starved.throttle = Some(0.6);
    let mut input = inputs(vec![facts(&o, 0), facts(&o, 1), facts(&o, 2), starved]);
    input.services.push(ServiceFacts {
        name: "shop/payment".into(),
        backend: "shop-payment-80",
        now: summary(600, 0, 1.2),
        baseline_p95: Some(0.1),
        pods: vec![(&o.pods[0], 5.0), (&o.pods[1], 5.0)],
        pod_errors: vec![],
        shares_settled: true,
    });
    let call = |caller: &str, callee: &str, p95: f64, pods: Vec<&'static PodKey>| CallFacts {
        caller: caller.into(),
        callee: callee.into(),
        now: Summary { requests: 600, p95: Some(p95), ..Summary::default() },
        callee_pods: pods,
    };
    let pods: &'static [PodKey] = Box::leak(o.pods.clone().into_boxed_slice());
    input.calls = vec![
        call("shop/payment", "shop/bank-adapter", 1.15, vec![&pods[2]]),
        // A quick call beside the slow one is not the way.
        call("shop/payment", "shop/ledger", 0.02, vec![]),
        call("shop/bank-adapter", "shop/fraud-check", 1.1, vec![&pods[3]]),
    ];
    let ranked = rank(&input, &Rules::default());
    let labels: Vec<String> = ranked.iter().map(|h| h.subject.label()).collect();
    assert_eq!(labels[0], "shop/payment-3/app", "the starved pod at the end of the chain first: {ranked:#?}");
    let chain = ranked[0].findings.iter().find(|f| f.verdict == "Holds up payment").expect("the chain finding");
    assert!(
        chain.evidence.starts_with("payment → bank-adapter → fraud-check: p95 1.1s waiting on fraud-check, whose pods are CPU-starved; payment: p95 1.2s"),
        "{}",
        chain.evidence
    );
    let service = ranked.iter().find(|h| h.subject.label() == "svc shop/payment").unwrap();
    assert_eq!(service.verdict(), "Slow: waits on fraud-check");
    assert!(service.score < ranked[0].score);

    // Healthy, idle pods at the end: the deepest service is the finding, above the caller.
    input.containers[3] = facts(&o, 3);
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "svc shop/fraud-check", "{ranked:#?}");
    assert_eq!(ranked[0].verdict(), "Slow, holds up payment");
    assert!(ranked[0].evidence()[0].contains("fraud-check's pods are healthy"), "{}", ranked[0].evidence()[0]);

    // No call takes the time (the time is payment's own, or unlogged): as before.
    input.calls.retain(|c| c.callee == "shop/ledger");
    assert_eq!(top(&input).verdict(), "Slow, pods idle");
}

/// A service whose healthy pods answer 5xx because a call two hops down fails: the errors are
/// followed to where they start, which ranks above the service they reach.
#[test]
fn a_failing_service_is_traced_through_its_calls_to_where_the_errors_start() {
    let o = owned(4);
    let mut input = inputs(vec![facts(&o, 0), facts(&o, 1), facts(&o, 2), facts(&o, 3)]);
    input.services.push(ServiceFacts {
        name: "shop/checkout".into(),
        backend: "shop-checkout-80",
        now: summary(600, 180, 0.05),
        baseline_p95: Some(0.05),
        pods: vec![(&o.pods[0], 5.0), (&o.pods[1], 5.0)],
        pod_errors: vec![],
        shares_settled: true,
    });
    let call = |caller: &str, callee: &str, errors: u64, pods: Vec<&'static PodKey>| CallFacts {
        caller: caller.into(),
        callee: callee.into(),
        now: summary(600, errors, 0.02),
        callee_pods: pods,
    };
    let pods: &'static [PodKey] = Box::leak(o.pods.clone().into_boxed_slice());
    input.calls = vec![
        call("shop/checkout", "shop/payment", 180, vec![&pods[2]]),
        // A call that fails now and then is not the way.
        call("shop/checkout", "shop/ledger", 6, vec![]),
        call("shop/payment", "shop/bank-adapter", 180, vec![&pods[3]]),
    ];
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "svc shop/bank-adapter", "{ranked:#?}");
    assert_eq!(ranked[0].verdict(), "Errors that fail checkout");
    assert!(
        ranked[0].evidence()[0].starts_with(
            "checkout → payment → bank-adapter: 30% of calls to bank-adapter fail (5xx); checkout: 30% 5xx at the gateway"
        ),
        "{}",
        ranked[0].evidence()[0]
    );
    let service = ranked.iter().find(|h| h.subject.label() == "svc shop/checkout").unwrap();
    assert_eq!(service.verdict(), "Errors: from bank-adapter");
    assert!(service.score < ranked[0].score);

    // The pods at the end crash-loop: they are what to act on.
    let crash_loop = Health { severity: Severity::Bad, word: "CrashLoop".into(), detail: None };
    input.containers[3].health = &crash_loop;
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "shop/payment-3/app", "{ranked:#?}");
    let fails = ranked[0].findings.iter().find(|f| f.verdict == "Fails checkout").expect("the chain finding");
    assert!(fails.evidence.contains("bank-adapter fail (5xx), whose pods are"), "{}", fails.evidence);

    // No call fails as often as the service: the errors are its own, as before.
    input.containers[3] = facts(&o, 3);
    input.calls.retain(|c| c.callee == "shop/ledger");
    assert!(top(&input).verdict().starts_with("Errors"), "{}", top(&input).verdict());
    assert!(!top(&input).verdict().contains("from"));
}

#[test]
fn fewer_replicas_for_the_same_load_rank_above_the_starved_pods_left_and_only_then() {
    let o = owned(2);
    let starved = |i| {
        let mut c = facts(&o, i);
        c.cpu_m = 498.0;
        c.throttle = Some(0.6);
        c
    };
    let drop = |before: f64, now: f64| CapacityFacts {
        namespace: "shop".into(),
        workload: "deploy/payment".into(),
        from: 4,
        to: 2,
        at: NOW - 90,
        load_before: Some(before),
        load_now: Some(now),
        pods: vec![&o.pods[0], &o.pods[1]],
    };
    let mut input = inputs(vec![starved(0), starved(1)]);
    input.capacity = vec![drop(60.0, 62.0)];
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "deploy shop/payment", "{ranked:#?}");
    assert_eq!(ranked[0].verdict(), "Replicas fell");
    assert!(
        ranked[0].evidence()[0].starts_with("4 → 2 replicas 90s ago while its load stayed (60.0/s before, 62.0/s now)"),
        "{}",
        ranked[0].evidence()[0]
    );
    assert!(ranked[1].evidence().iter().any(|e| e.contains("deploy shop/payment fell from 4 to 2")), "{ranked:#?}");
    // The load fell too: scaling in was right; the starved pods are their own finding.
    input.capacity = vec![drop(120.0, 60.0)];
    assert!(rank(&input, &Rules::default()).iter().all(|h| h.subject.kind() == "container"));
    // The pods left cope: nothing to say.
    let mut coping = inputs(vec![facts(&o, 0), facts(&o, 1)]);
    coping.capacity = vec![drop(60.0, 62.0)];
    assert!(rank(&coping, &Rules::default()).is_empty());
}

#[test]
fn errors_right_after_a_rollout_say_so() {
    let o = owned(2);
    let mut fresh = facts(&o, 1);
    fresh.created = Some(NOW - 120);
    let mut input = inputs(vec![facts(&o, 0), fresh]);
    input.services.push(ServiceFacts {
        name: "shop/catalog".into(),
        backend: "shop-catalog-80",
        now: summary(400, 120, 0.02),
        baseline_p95: Some(0.02),
        pods: vec![(&o.pods[0], 3.0), (&o.pods[1], 3.0)],
        pod_errors: vec![],
        shares_settled: true,
    });
    let h = top(&input);
    assert_eq!(h.verdict(), "Errors after a rollout");
    assert_eq!(h.evidence()[0], "30% 5xx at the gateway (120 of 400 in the last minute); its newest pod is 2m old");
}

#[test]
fn retries_hidden_from_clients_are_a_finding() {
    let o = owned(2);
    let mut input = inputs(vec![facts(&o, 0), facts(&o, 1)]);
    let mut now = summary(600, 0, 0.02);
    now.retries = 90;
    input.services.push(ServiceFacts {
        name: "shop/order".into(),
        backend: "shop-order-80",
        now,
        baseline_p95: Some(0.02),
        pods: vec![(&o.pods[0], 5.0), (&o.pods[1], 5.0)],
        pod_errors: vec![],
        shares_settled: true,
    });
    assert_eq!(
        top(&input).summary(),
        "Upstream retries: the gateway retried 90 of 600 requests in the last minute on another upstream (15%)"
    );
}

#[test]
fn a_node_not_ready_is_a_hotspot() {
    let o = owned(2);
    let mut input = inputs(vec![facts(&o, 0), facts(&o, 1)]);
    input.nodes.push(NodeFacts {
        name: "node-a",
        ready: "Unknown",
        pressures: &[],
        cpu_used_m: None,
        cpu_allocatable_m: 3900.0,
    });
    assert_eq!(top(&input).summary(), "Node not ready: Ready=Unknown, 2 pods on it");
}

/// A rollout in progress: the new ReplicaSet's pod answers 40% 5xx, the old ones none over
/// the same minute. The new pod ranks first ("roll back"), the service second.
#[test]
fn errors_of_the_new_replica_set_alone_name_its_pods() {
    let mut o = owned(3);
    o.pods = ["catalog-5c8b9-aaaaa", "catalog-5c8b9-bbbbb", "catalog-7d9f8-ccccc"]
        .iter()
        .map(|n| PodKey::new("shop", *n))
        .collect();
    let mut containers: Vec<ContainerFacts> = (0..3).map(|i| facts(&o, i)).collect();
    containers[2].created = Some(NOW - 90);
    let mut input = inputs(containers);
    input.services.push(ServiceFacts {
        name: "shop/catalog".into(),
        backend: "shop-catalog-80",
        now: summary(600, 80, 0.02),
        baseline_p95: Some(0.02),
        pods: vec![(&o.pods[0], 4.0), (&o.pods[1], 4.0), (&o.pods[2], 2.0)],
        pod_errors: vec![(&o.pods[0], 240, 0), (&o.pods[1], 240, 2), (&o.pods[2], 120, 48)],
        shares_settled: true,
    });
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "shop/catalog-7d9f8-ccccc/app");
    assert_eq!(ranked[0].verdict(), "Errors from the new version");
    assert_eq!(
        ranked[0].evidence()[0],
        "ReplicaSet catalog-7d9f8 (new, 1 pod, 90s old): 40% 5xx (48 of 120 in the last minute) against 0% for catalog-5c8b9 (2 of 480) over the same minute"
    );
    assert_eq!(ranked[1].subject.label(), "svc shop/catalog");
    assert!(
        ranked[1]
            .summary()
            .contains("its own pods explain it: shop/catalog-7d9f8-ccccc/app (Errors from the new version)"),
        "{}",
        ranked[1].summary()
    );
    // Before the service's minute crosses the rule (the canary's first requests), the new
    // pod is named already and the service says where to look.
    input.services[0].now = summary(600, 20, 0.02);
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "shop/catalog-7d9f8-ccccc/app");
    assert_eq!(ranked[1].verdict(), "Errors after a rollout: see its new pods");
    input.services[0].now = summary(600, 80, 0.02);
    // Every version failing alike is not the new one's fault: the service alone, as before.
    input.services[0].pod_errors = vec![(&o.pods[0], 240, 30), (&o.pods[1], 240, 30), (&o.pods[2], 120, 15)];
    assert_eq!(top(&input).subject.label(), "svc shop/catalog");
}

/// One replica taking most of the traffic, not yet saturated: the replica (its serving
/// container, not a sidecar beside it) ranks first with its share and its own saturation;
/// the service follows as the context.
#[test]
fn uneven_load_ranks_the_hot_replica_above_its_service() {
    let o = owned(3);
    let mut containers: Vec<ContainerFacts> = (0..3).map(|i| facts(&o, i)).collect();
    containers[0].cpu_m = 200.0;
    let mut sidecar = facts(&o, 0);
    sidecar.container = "istio-proxy";
    sidecar.cpu_m = 20.0;
    containers.push(sidecar);
    let mut input = inputs(containers);
    input.services.push(ServiceFacts {
        name: "shop/cart".into(),
        backend: "shop-cart-80",
        now: summary(600, 0, 0.02),
        baseline_p95: Some(0.02),
        pods: vec![(&o.pods[0], 8.0), (&o.pods[1], 1.0), (&o.pods[2], 1.0)],
        pod_errors: vec![],
        shares_settled: true,
    });
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "shop/payment-0/app");
    assert_eq!(
        ranked[0].summary(),
        "Hot replica: 80% of shop/cart's requests (8.0 of 10.0/s across 3 replicas, 2.4× its fair share); its CPU at 40% of its limit"
    );
    assert_eq!(ranked[1].subject.label(), "svc shop/cart");
    assert_eq!(ranked[1].summary(), "Uneven load: see its pod: payment-0 gets 80% of its requests across 3 replicas");
    assert!(ranked[1].score < ranked[0].score);
}

#[test]
fn node_pressure_and_noisy_neighbours() {
    let mut o = owned(3);
    o.resources.cpu_limit_m = None;
    let mut hog = facts(&o, 0);
    hog.cpu_m = 3200.0;
    let mut victim = facts(&o, 1);
    victim.throttle = Some(0.5);
    victim.resources = &o.resources;
    let pressures = vec!["MemoryPressure".to_string()];
    let mut input = inputs(vec![hog, victim, facts(&o, 2)]);
    input.nodes.push(node_a_at_full_cpu());
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject.label(), "shop/payment-0/app");
    assert_eq!(ranked[0].verdict(), "Noisy neighbour");
    assert_eq!(
        ranked[0].evidence()[0],
        "uses 3.20 (32× its request) on node-a at 100% of allocatable CPU; 1 other container there starved: payment-1/app"
    );
    assert!(ranked.iter().any(|h| h.subject.label() == "node node-a" && h.verdict() == "Node CPU saturated"));
    input.nodes[0] = NodeFacts {
        name: "node-a",
        ready: "True",
        pressures: &pressures,
        cpu_used_m: Some(100.0),
        cpu_allocatable_m: 3900.0,
    };
    let h = top(&input);
    assert_eq!(h.summary(), "Node under MemoryPressure: MemoryPressure on node-a; affected pods: payment-1");
}

#[test]
fn gateway_overhead_is_the_gateways_fault() {
    let o = owned(1);
    let mut gw = facts(&o, 0);
    gw.throttle = Some(0.4);
    let mut input = inputs(vec![gw]);
    let mut s = summary(5000, 0, 0.3);
    s.overhead_p95 = Some(0.25);
    s.upstream_share = Some(0.2);
    input.gateway = Some((s, vec![&o.pods[0]]));
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject, Subject::Gateway);
    assert_eq!(ranked[0].evidence()[0], "the gateway adds 250ms at p95 (total − upstream) (80% of request time)");
    assert_eq!(ranked[0].evidence()[1], "its pods are CPU-bound: payment-0");
}

/// Seen during a gateway saturation: every service also said "Slow, pods idle… a downstream
/// dependency or the network" though the time was the gateway's.
#[test]
fn a_service_slow_only_at_the_gateway_points_at_the_gateway() {
    let o = owned(2);
    let mut input = inputs(vec![facts(&o, 0), facts(&o, 1)]);
    let mut now = summary(600, 0, 0.3);
    now.overhead_p95 = Some(0.25);
    input.services.push(ServiceFacts {
        name: "shop/order".into(),
        backend: "shop-order-80",
        now,
        baseline_p95: Some(0.05),
        pods: vec![(&o.pods[0], 5.0), (&o.pods[1], 5.0)],
        pod_errors: vec![],
        shares_settled: true,
    });
    let mut gw = summary(5000, 0, 0.3);
    gw.overhead_p95 = Some(0.25);
    gw.upstream_share = Some(0.2);
    input.gateway = Some((gw, vec![]));
    let ranked = rank(&input, &Rules::default());
    assert_eq!(ranked[0].subject, Subject::Gateway, "{ranked:#?}");
    let order = ranked.iter().find(|h| h.subject.label() == "svc shop/order").expect("the service still shows");
    assert_eq!(order.verdict(), "Slow at the gateway");
    assert!(order.evidence()[0].ends_with("250ms of it is the gateway's own time (total − upstream): see the gateway"));
    assert!(!order.evidence()[0].contains("downstream"));
}

#[test]
fn ranking_does_not_depend_on_input_order() {
    let mut o = owned(40);
    for (i, h) in o.health.iter_mut().enumerate() {
        if i % 7 == 0 {
            *h = Health { severity: Severity::Bad, word: "CrashLoop".into(), detail: None };
        }
    }
    let all: Vec<ContainerFacts> = (0..40)
        .map(|i| {
            let mut c = facts(&o, i);
            c.throttle = Some((i % 10) as f64 / 10.0);
            c.restarts_1h = (i % 5) as u32;
            c
        })
        .collect();
    let service = |pods: Vec<(&'static PodKey, f64)>| ServiceFacts {
        name: "shop/payment".into(),
        backend: "shop-payment-80",
        now: summary(600, 90, 0.5),
        baseline_p95: Some(0.05),
        pods,
        pod_errors: vec![],
        shares_settled: true,
    };
    // Leaked for the test's lifetime: the facts borrow their pods.
    let keys: &'static [PodKey] = Box::leak(o.pods.clone().into_boxed_slice());
    let service_pods: Vec<(&PodKey, f64)> = keys.iter().take(12).enumerate().map(|(i, k)| (k, i as f64)).collect();
    let with_service = |containers: Vec<ContainerFacts<'_>>, pods: Vec<(&'static PodKey, f64)>| {
        let mut i = inputs(containers);
        i.services.push(service(pods));
        rank(&i, &Rules::default())
    };
    let expected = with_service(all.clone(), service_pods.clone());
    assert!(expected.len() > 10);
    // A deterministic shuffle per round (xorshift), so a failure is reproducible.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..50 {
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        let mut shuffled = all.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, next(i + 1));
        }
        let mut pods = service_pods.clone();
        for i in (1..pods.len()).rev() {
            pods.swap(i, next(i + 1));
        }
        assert_eq!(with_service(shuffled, pods), expected);
    }
}

#[test]
fn rules_are_overridable_from_toml() {
    let rules: Rules = toml::from_str("cpu_throttled = 0.5\n[weights]\ncrash_loop = 99.0").unwrap();
    assert_eq!(rules.cpu_throttled, 0.5);
    assert_eq!(rules.weights.crash_loop, 99.0);
    assert_eq!(rules.error_ratio, Rules::default().error_ratio);
    assert!(toml::from_str::<Rules>("cpu_throtled = 0.5").is_err(), "a typo is an error, not ignored");
}
