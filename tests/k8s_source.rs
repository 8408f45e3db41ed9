//! kpulse's Kubernetes source against the simulator over real HTTP: list, watch, delete, restart,
//! 410 Gone, 403s and absent APIs, pagination — and proof that every request was a GET.

mod common;

use common::{Harness, Kpulse, fingerprint, state_fingerprint};
use kpulse::demo::scenario::{MeshLogEncoding, Scenario};
use kpulse::demo::server::ServerOptions;
use kpulse::sources::kube::{Scope, UsageMode};
use kpulse::sources::{SourceId, SourceState, Update};

fn assert_only_gets(h: &Harness) {
    assert!(h.requests.lock().unwrap().len() > 3, "kpulse made requests");
    assert_eq!(h.non_get_requests(), vec![], "kpulse must only ever send GETs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_then_follows_watch_updates_and_deletions() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let mut k = Kpulse::start(&h, Scope::All, "default").await;
    let expected = fingerprint(&h.expected_pods());
    k.wait_for("the initial list", |s| s.pods.synced() && state_fingerprint(s) == expected).await;
    let containers = expected.len();
    assert_eq!(k.state.container_table.rows.len(), containers, "one row per container, no duplicates");
    k.wait_for("nodes and usage", |s| {
        s.nodes.len() == 3 && s.container_table.rows.iter().any(|r| r.usage.cpu_m.is_finite())
    })
    .await;

    // Time passes: the leak, the crash loop and readiness flaps change pod status via watch.
    h.sim.lock().unwrap().advance(90);
    let expected = fingerprint(&h.expected_pods());
    k.wait_for("watch updates", |s| state_fingerprint(s) == expected).await;
    let crash = k.state.container_table.rows.iter().find(|r| r.pod.name.starts_with("notification")).unwrap().clone();
    assert!(matches!(crash.health.word.as_str(), "CrashLoop" | "Starting"), "{:?}", crash.health);
    assert!(crash.restarts >= 2);

    let victim = h.expected_pods().into_iter().find(|p| p.label("app") == Some("frontend")).unwrap();
    assert!(h.sim.lock().unwrap().delete_pod(&victim.key.namespace, &victim.key.name));
    let expected = fingerprint(&h.expected_pods());
    k.wait_for("deletion and replacement", |s| s.pods.get(&victim.key).is_none() && state_fingerprint(s) == expected)
        .await;
    // Only one LIST per kind: updates came from the watch, never from relisting.
    assert_eq!(h.pod_lists(), 1, "{:?}", h.requests.lock().unwrap());
    assert!(h.requests_matching("fieldSelector=type%3DWarning") >= 1, "events are narrowed to Warnings");
    k.wait_for("BackOff Warning events of the crash-looping pod", |s| {
        s.pod_events(&crash.pod).iter().any(|e| e.reason == "BackOff" && e.warning)
    })
    .await;
    assert_only_gets(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_restart_mid_watch_resumes_without_loss_or_duplicates() {
    let mut h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let mut k = Kpulse::start(&h, Scope::All, "default").await;
    let expected = fingerprint(&h.expected_pods());
    k.wait_for("the initial list", |s| s.pods.synced() && state_fingerprint(s) == expected).await;
    h.stop().await;
    k.wait_for("the outage is noticed", |s| matches!(s.sources[&SourceId::Pods].state, SourceState::Reconnecting(_)))
        .await;
    let rows_during_outage = k.state.container_table.rows.len();
    assert_eq!(rows_during_outage, expected.len(), "nothing collected is lost while disconnected");
    h.sim.lock().unwrap().advance(60);
    h.restart().await;
    let expected = fingerprint(&h.expected_pods());
    k.wait_for("convergence after restart", |s| {
        s.sources[&SourceId::Pods].state == SourceState::Connected && state_fingerprint(s) == expected
    })
    .await;
    assert_eq!(k.state.container_table.rows.len(), expected.len());
    assert_only_gets(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_resource_version_triggers_a_relist() {
    let mut h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let mut k = Kpulse::start(&h, Scope::All, "default").await;
    let expected = fingerprint(&h.expected_pods());
    k.wait_for("the initial list", |s| s.pods.synced() && state_fingerprint(s) == expected).await;
    let lists_before = h.pod_lists();
    h.stop().await;
    {
        let mut sim = h.sim.lock().unwrap();
        sim.advance(45);
        let victim = h.expected_pods_locked(&sim);
        sim.delete_pod(&victim.0, &victim.1);
        sim.compact();
    }
    h.restart().await;
    let expected = fingerprint(&h.expected_pods());
    k.wait_for("relist after 410", |s| state_fingerprint(s) == expected).await;
    let lists_after = h.pod_lists();
    assert!(lists_after > lists_before, "a 410 makes the watcher list again ({lists_before} → {lists_after})");
    assert_only_gets(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_and_absent_metrics_degrade_only_the_usage_columns() {
    for (options, want) in [
        (ServerOptions { metrics_forbidden: true, ..Default::default() }, "forbidden"),
        (ServerOptions { metrics_absent: true, ..Default::default() }, "absent"),
    ] {
        let h = Harness::start(Scenario::shop(), options).await;
        let mut k = Kpulse::start(&h, Scope::All, "default").await;
        k.wait_for("metrics state", |s| s.sources.get(&SourceId::PodMetrics).is_some_and(|m| m.state.word() == want))
            .await;
        let expected = fingerprint(&h.expected_pods());
        k.wait_for("rows without metrics", |s| state_fingerprint(s) == expected && s.nodes.len() == 3).await;
        assert!(k.state.container_table.rows.iter().all(|r| r.usage.cpu_m.is_nan()), "no usage without metrics");
        let reason = k.state.sources[&SourceId::PodMetrics].state.reason().unwrap().to_string();
        if want == "absent" {
            assert!(reason.contains("metrics-server"), "the status bar says why: {reason}");
        } else {
            assert!(reason.contains("forbidden"), "{reason}");
        }
        assert_only_gets(&h);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_allowed_one_namespace_gets_its_rows_and_one_notice() {
    let options = ServerOptions { allowed_namespaces: Some(vec!["shop".into()]), ..Default::default() };
    let h = Harness::start(Scenario::shop(), options).await;
    let mut k = Kpulse::start(&h, Scope::All, "shop").await;
    let expected: Vec<_> = fingerprint(&h.expected_pods()).into_iter().filter(|f| f.0.starts_with("shop/")).collect();
    k.wait_for("shop rows through the fallback", |s| state_fingerprint(s) == expected).await;
    k.wait_for("nodes forbidden", |s| s.sources[&SourceId::Nodes].state.word() == "forbidden").await;
    let notices: Vec<_> = k.state.notices.iter().filter(|(_, n)| n.contains("not allowed to list pods")).collect();
    assert_eq!(notices.len(), 1, "one clear notice, no flood: {:?}", k.state.notices);
    assert!(k.state.container_table.rows.iter().all(|r| r.pod.namespace == "shop"));
    // The forbidden node watch keeps retrying with backoff but reports its state once.
    let node_statuses = k
        .log
        .iter()
        .filter(|u| {
            matches!(u, kpulse::sources::Update::Status { source: SourceId::Nodes, state: SourceState::Forbidden(_) })
        })
        .count();
    assert_eq!(node_statuses, 1);
    assert_only_gets(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_lists_every_pod_of_a_large_cluster() {
    let h = Harness::start(Scenario::shop().scaled_to(1_200), ServerOptions::default()).await;
    let mut k = Kpulse::start(&h, Scope::All, "default").await;
    let expected = fingerprint(&h.expected_pods());
    assert!(expected.len() > 3_000);
    k.wait_for("the paged list", |s| s.pods.synced() && state_fingerprint(s) == expected).await;
    assert!(h.requests_matching("limit=500") >= 3, "kube's watcher pages by 500");
    assert!(h.requests_matching("continue=") >= 2, "continue tokens are followed");
    assert_only_gets(&h);
}

/// Advances the simulated clock 10 s per real second, so successive scrapes see new counters.
fn run_clock(h: &Harness) -> tokio_util::sync::CancellationToken {
    let cancel = tokio_util::sync::CancellationToken::new();
    kpulse::demo::server::spawn_clock(h.sim.clone(), 10, cancel.clone());
    cancel
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cadvisor_through_the_node_proxy_gives_cpu_throttling_and_network() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let clock = run_clock(&h);
    let mut k = Kpulse::start_with(&h, Scope::All, "default", UsageMode::Auto).await;
    k.wait_for("throttling of the CPU-starved payment service", |s| {
        s.container_table
            .rows
            .iter()
            .filter(|r| r.pod.name.starts_with("payment"))
            .all(|r| r.throttle.is_some_and(|t| t > 0.25))
    })
    .await;
    for r in k.state.container_table.rows.iter().filter(|r| r.pod.name.starts_with("payment")) {
        // Usage is capped at the 150m limit; a rate over an interval can only be at or below it.
        assert!(r.usage.cpu_m > 90.0 && r.usage.cpu_m <= 150.5, "{:?}", r.usage);
        assert_eq!(r.cpu_pct_limit().map(|p| p <= 100.4), Some(true));
    }
    k.wait_for("network rates", |s| {
        s.container_table.rows.iter().any(|r| r.pod.name.starts_with("frontend") && r.net.is_some_and(|n| n.1 > n.0))
    })
    .await;
    // Usage came from cAdvisor, not from metrics.k8s.io.
    assert_eq!(k.state.sources[&SourceId::Cadvisor].state, SourceState::Connected);
    assert!(!k.state.sources.contains_key(&SourceId::PodMetrics));
    assert!(h.requests_matching("/proxy/metrics/cadvisor") >= 6, "one scrape per node per round");
    clock.cancel();
    assert_only_gets(&h);
}

/// Without metrics-server (kind, a bare cluster) node usage comes from each kubelet's root cgroup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_server_node_usage_comes_from_cadvisor_root_cgroups() {
    let h = Harness::start(Scenario::shop(), ServerOptions { metrics_absent: true, ..Default::default() }).await;
    let clock = run_clock(&h);
    let mut k = Kpulse::start_with(&h, Scope::All, "default", UsageMode::Auto).await;
    k.wait_for("every node's CPU and memory from cAdvisor", |s| {
        s.nodes.len() == 3
            && s.nodes.values().all(|n| s.node_usage.get(&n.name).is_some_and(|u| u.cpu_m.is_finite() && u.mem > 1e9))
    })
    .await;
    assert_eq!(k.state.sources[&SourceId::NodeMetrics].state.word(), "absent");
    clock.cancel();
}

/// CPU needs two samples; with a 10-minute interval they still come seconds apart at the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_cpu_rates_come_from_an_early_second_scrape_not_a_full_interval_later() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let clock = run_clock(&h);
    let mut k = Kpulse::start_cadvisor_every(&h, std::time::Duration::from_secs(600)).await;
    k.wait_for("CPU rates before the second full interval", |s| {
        s.container_table.rows.iter().any(|r| r.pod.name.starts_with("payment") && r.usage.cpu_m.is_finite())
    })
    .await;
    assert!(h.requests_matching("/proxy/metrics/cadvisor") >= 6, "two rounds over three nodes");
    // Meanwhile the status bar said when CPU would come.
    let waited = k
        .log
        .iter()
        .position(|u| matches!(u, Update::Notice(n) if n == "CPU usage in 4s: a rate needs a second sample"));
    let rates = k
        .log
        .iter()
        .position(|u| matches!(u, Update::PodUsage { usages, .. } if usages.iter().any(|c| c.usage.cpu_m.is_finite())));
    assert!(
        waited.is_some() && rates.is_some() && waited < rates,
        "the wait said before the first rates: {waited:?} {rates:?}"
    );
    // And it is gone once they came.
    assert!(!k.state.notices.iter().any(|(_, n)| n.starts_with("CPU usage in")), "{:?}", k.state.notices);
    clock.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_node_proxy_falls_back_to_metrics_api_with_a_notice() {
    let h = Harness::start(Scenario::shop(), ServerOptions { node_proxy_forbidden: true, ..Default::default() }).await;
    let mut k = Kpulse::start_with(&h, Scope::All, "default", UsageMode::Auto).await;
    k.wait_for("usage from metrics.k8s.io", |s| {
        s.sources.get(&SourceId::PodMetrics).is_some_and(|p| p.state == SourceState::Connected)
            && s.container_table.rows.iter().any(|r| r.usage.cpu_m.is_finite())
    })
    .await;
    assert_eq!(k.state.sources[&SourceId::Cadvisor].state.word(), "absent");
    assert!(k.state.notices.iter().any(|(_, n)| n.contains("usage from metrics.k8s.io")), "{:?}", k.state.notices);
    assert_only_gets(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_exposition_is_reported_not_fatal() {
    let good = "container_memory_working_set_bytes{container=\"app\",namespace=\"shop\",pod=\"x\"} 5 1000\n";
    let garbage = format!(
        "{good}this is {{ not exposition\n\u{0}\u{1}binary\ncontainer_cpu_usage_seconds_total{{container=\"app\" 1\n"
    );
    let options = ServerOptions { cadvisor_override: Some(garbage), ..Default::default() };
    let h = Harness::start(Scenario::shop(), options).await;
    let mut k = Kpulse::start_with(&h, Scope::All, "default", UsageMode::Cadvisor).await;
    k.wait_for("a notice about malformed lines", |s| s.notices.iter().any(|(_, n)| n.contains("malformed line"))).await;
    let expected = fingerprint(&h.expected_pods());
    k.wait_for("rows unaffected and the source still connected", |s| {
        state_fingerprint(s) == expected && s.sources[&SourceId::Cadvisor].state == SourceState::Connected
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_urls_are_read_directly_like_the_kubelets() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let clock = run_clock(&h);
    let nodes = h.sim.lock().unwrap().node_names();
    let mut urls: Vec<String> =
        nodes.iter().map(|n| format!("http://{}/api/v1/nodes/{n}/proxy/metrics/cadvisor", h.addr)).collect();
    urls.push(format!("http://{}/no/such/metrics", h.addr));
    let mut k = Kpulse::start_scrape(&h, urls).await;
    k.wait_for("usage and throttling from the URLs", |s| {
        let payment: Vec<_> = s.container_table.rows.iter().filter(|r| r.pod.name.starts_with("payment")).collect();
        !payment.is_empty() && payment.iter().all(|r| r.throttle.is_some_and(|t| t > 0.25))
    })
    .await;
    // One URL is wrong: the others still count, and the status says which one failed.
    k.wait_for("the failing URL named", |s| {
        s.sources
            .get(&SourceId::Cadvisor)
            .and_then(|c| c.state.reason())
            .is_some_and(|r| r.contains("1 of 4") && r.contains("/no/such/metrics"))
    })
    .await;
    clock.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_pod_log_streams_access_lines_consistent_with_the_load() {
    use futures::AsyncBufReadExt;
    use futures::TryStreamExt;
    use kube::api::LogParams;
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    h.sim.lock().unwrap().advance(30);
    let gateway = h.expected_pods().into_iter().find(|p| p.label("app") == Some("ingress-nginx-controller")).unwrap();
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(h.client().await, "ingress-nginx");
    let text = pods.logs(&gateway.key.name, &LogParams { tail_lines: Some(2000), ..Default::default() }).await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 500, "about half of 30 s × 120 rps: {}", lines.len());
    // ingress-nginx upstreaminfo: … request_time [upstream-name] [] addr length upstream_time status id
    let upstream_time = |svc: &str| {
        let times: Vec<f64> = lines
            .iter()
            .filter(|l| l.contains(&format!("[shop-{svc}-80]")) && l.contains("\" 200 "))
            .filter_map(|l| l.split(" [] ").nth(1)?.split(' ').nth(2)?.parse().ok())
            .collect();
        assert!(!times.is_empty(), "{svc} has served requests");
        times.iter().sum::<f64>() / times.len() as f64
    };
    assert!(upstream_time("payment") > 2.0 * upstream_time("catalog"), "the CPU-starved service is slow in the log");
    assert!(lines.iter().all(|l| l.contains("HTTP/1.1\" ")), "every line is an access line");
    // follow=true keeps the stream open and delivers new lines as they are written.
    let params = LogParams { follow: true, tail_lines: Some(0), timestamps: true, ..Default::default() };
    let mut stream = pods.log_stream(&gateway.key.name, &params).await.unwrap().lines();
    h.sim.lock().unwrap().advance(2);
    let line =
        tokio::time::timeout(std::time::Duration::from_secs(10), stream.try_next()).await.unwrap().unwrap().unwrap();
    assert!(line.starts_with("20") && line.contains(" HTTP/1.1\" "), "timestamped access line: {line}");
    assert_eq!(h.non_get_requests(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelets_without_cadvisor_are_read_through_metrics_resource() {
    let h = Harness::start(Scenario::shop(), ServerOptions { cadvisor_absent: true, ..Default::default() }).await;
    let clock = run_clock(&h);
    let mut k = Kpulse::start_with(&h, Scope::All, "default", UsageMode::Auto).await;
    k.wait_for("CPU and memory from /metrics/resource", |s| {
        s.container_table
            .rows
            .iter()
            .any(|r| r.pod.name.starts_with("payment") && r.usage.cpu_m > 50.0 && r.usage.mem.is_finite())
    })
    .await;
    assert!(
        k.state.container_table.rows.iter().all(|r| r.throttle.is_none()),
        "the resource endpoint has no throttling"
    );
    assert!(h.requests_matching("/proxy/metrics/resource") > 0);
    assert!(!k.state.sources.contains_key(&SourceId::PodMetrics), "no fallback to metrics.k8s.io was needed");
    clock.cancel();
}

/// The gateway's pod logs, followed through the API server: every replica found by the
/// ingress-nginx chart's labels, the last five minutes read at start, and an apiserver restart
/// mid-stream costs no line and repeats none (reconnect with sinceTime, duplicates skipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_pod_logs_survive_an_apiserver_restart_without_loss_or_duplicates() {
    use kpulse::sources::Update;
    use kpulse::sources::gateway::{GatewaySpec, follow_pods};
    use std::collections::HashMap;

    let mut h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    h.sim.lock().unwrap().advance(20);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(follow_pods(h.client().await, GatewaySpec::Auto, Scope::All, tx));
    let mut got: HashMap<String, Vec<String>> = HashMap::new();
    let expected = |h: &Harness| -> HashMap<String, Vec<String>> {
        let sim = h.sim.lock().unwrap();
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for e in &sim.access_log {
            m.entry(format!("{}/{}", e.namespace, e.pod)).or_default().push(e.line.clone());
        }
        m
    };
    async fn collect(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<Update>,
        got: &mut HashMap<String, Vec<String>>,
        want: &HashMap<String, Vec<String>>,
    ) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while got != want {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(Update::AccessLog { stream, chunk })) => {
                    got.entry(stream).or_default().extend(chunk.lines().map(String::from));
                }
                Ok(Some(_)) => {}
                _ => {
                    let counts = |m: &HashMap<String, Vec<String>>| {
                        m.iter().map(|(k, v)| (k.clone(), v.len())).collect::<std::collections::BTreeMap<_, _>>()
                    };
                    panic!("lines per stream: got {:?}, want {:?}", counts(got), counts(want));
                }
            }
        }
    }
    let want = expected(&h);
    assert_eq!(want.len(), 2, "two gateway replicas");
    collect(&mut rx, &mut got, &want).await;

    h.sim.lock().unwrap().advance(5);
    h.restart().await;
    h.sim.lock().unwrap().advance(5);
    let want = expected(&h);
    collect(&mut rx, &mut got, &want).await;
    // And nothing more: a duplicate would arrive after the match.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    while let Ok(u) = rx.try_recv() {
        if let Update::AccessLog { stream, chunk } = u {
            got.entry(stream).or_default().extend(chunk.lines().map(String::from));
        }
    }
    assert_eq!(got, want, "every line exactly once");
    assert!(h.requests_matching("sinceTime=") >= 2, "each replica resumed from where it was");
    assert!(h.requests_matching("labelSelector=app.kubernetes.io%2Fname%3Dingress-nginx") >= 1);
    task.abort();
    assert_only_gets(&h);
}

/// What the kubelet scrapes cost the API server (issue 19): CPU and memory from the small
/// `/metrics/resource` every round, the full cAdvisor text only every full interval, both
/// gzipped — and throttling is still shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_scrapes_read_cadvisor_only_every_full_interval_and_gzipped() {
    use kpulse::model::api_cost::RequestKind;
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let clock = run_clock(&h);
    let config = kpulse::config::Config {
        metrics_interval: std::time::Duration::from_secs(1),
        cadvisor_full_interval: std::time::Duration::from_secs(4),
        ..Default::default()
    };
    let mut k = Kpulse::start_kubelets_with(&h, Scope::All, config).await;
    let payment_throttled = |s: &kpulse::app::State| {
        let payment: Vec<_> = s.container_table.rows.iter().filter(|r| r.pod.name.starts_with("payment")).collect();
        !payment.is_empty() && payment.iter().all(|r| r.throttle.is_some_and(|t| t > 0.25) && r.usage.cpu_m > 50.0)
    };
    k.wait_for("CPU and throttling of the CPU-starved payment", payment_throttled).await;
    let started = std::time::Instant::now();
    let (cadvisor_before, resource_before) =
        (h.requests_matching("/proxy/metrics/cadvisor"), h.requests_matching("/proxy/metrics/resource"));
    tokio::time::sleep(std::time::Duration::from_secs(9)).await;
    k.drain();
    let secs = started.elapsed().as_secs_f64();
    let cadvisor = h.requests_matching("/proxy/metrics/cadvisor") - cadvisor_before;
    let resource = h.requests_matching("/proxy/metrics/resource") - resource_before;
    // Three kubelets: a round a second, a full one every 4 s.
    assert!(resource >= 3 * 4, "small rounds every second: {resource} in {secs:.1}s");
    assert!(cadvisor <= 3 * ((secs / 4.0).ceil() as usize + 1), "full rounds every 4 s: {cadvisor} in {secs:.1}s");
    assert!(cadvisor >= 3, "at least one full round in {secs:.1}s");
    // Throttling and CPU stay on screen between full rounds.
    assert!(payment_throttled(&k.state), "throttling is still shown");
    // Gzipped: every node-proxy byte together is a fraction of what the cAdvisor reads alone
    // would have been as plain text.
    let (scrapes, bytes) = h.api_traffic(RequestKind::NodeProxy);
    let plain_cadvisor: usize = {
        let sim = h.sim.lock().unwrap();
        sim.node_names().iter().filter_map(|n| sim.cadvisor_exposition(n)).map(|t| t.len()).sum::<usize>() / 3
    };
    let all_cadvisor = h.requests_matching("/proxy/metrics/cadvisor") * plain_cadvisor;
    assert!(
        (bytes as usize) * 4 < all_cadvisor,
        "{scrapes} node-proxy answers took {bytes} bytes; the cAdvisor ones alone, unzipped, ~{all_cadvisor}"
    );
    clock.cancel();
    assert_only_gets(&h);
}

/// `-n NAMESPACE`: only the kubelets of nodes that run that namespace's pods are asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_session_scrapes_only_the_kubelets_running_its_pods() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let clock = run_clock(&h);
    let all_nodes = h.sim.lock().unwrap().node_names();
    // The gateway's namespace: its two replicas run on fewer nodes than the cluster has.
    let namespace = "ingress-nginx";
    let its_nodes: std::collections::BTreeSet<String> =
        h.expected_pods().iter().filter(|p| p.key.namespace == namespace).filter_map(|p| p.node.clone()).collect();
    assert!(!its_nodes.is_empty() && its_nodes.len() < all_nodes.len(), "{its_nodes:?} of {all_nodes:?}");
    let config = kpulse::config::Config { metrics_interval: std::time::Duration::from_secs(1), ..Default::default() };
    let mut k = Kpulse::start_kubelets_with(&h, Scope::Namespace(namespace.into()), config).await;
    k.wait_for("CPU of the gateway pods", |s| {
        !s.container_table.rows.is_empty()
            && s.container_table.rows.iter().all(|r| r.pod.namespace == namespace && r.usage.cpu_m.is_finite())
    })
    .await;
    let asked: std::collections::BTreeSet<String> = h
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, p)| p.strip_prefix("/api/v1/nodes/")?.split_once("/proxy/").map(|(n, _)| n.to_string()))
        .collect();
    // The first round may come before the first pod list (then every node is asked once).
    let rounds_on_other_nodes = all_nodes
        .iter()
        .filter(|n| !its_nodes.contains(*n))
        .map(|n| h.requests_matching(&format!("/api/v1/nodes/{n}/proxy/")))
        .max()
        .unwrap_or(0);
    assert!(rounds_on_other_nodes <= 1, "nodes without its pods were asked {rounds_on_other_nodes} times: {asked:?}");
    for n in &its_nodes {
        assert!(h.requests_matching(&format!("/api/v1/nodes/{n}/proxy/")) >= 2, "{n} is scraped every round");
    }
    clock.cancel();
}

/// Above `cadvisor_max_nodes`, `usage = "auto"` does not scrape kubelet by kubelet: usage comes
/// from metrics.k8s.io, and the status says why and what is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn above_the_node_limit_usage_comes_from_metrics_api_and_says_what_is_lost() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let config = kpulse::config::Config {
        metrics_interval: std::time::Duration::from_secs(1),
        cadvisor_max_nodes: 2,
        ..Default::default()
    };
    let mut k = Kpulse::start_kubelets_with(&h, Scope::All, config).await;
    k.wait_for("usage from metrics.k8s.io", |s| {
        s.sources.get(&SourceId::PodMetrics).is_some_and(|p| p.state == SourceState::Connected)
            && s.container_table.rows.iter().any(|r| r.usage.cpu_m.is_finite())
    })
    .await;
    let cadvisor = &k.state.sources[&SourceId::Cadvisor].state;
    assert_eq!(cadvisor.word(), "absent");
    assert_eq!(cadvisor.reason(), Some("not scraped: 3 nodes, above cadvisor_max_nodes = 2"));
    assert!(
        k.state.notices.iter().any(|(_, n)| n.contains("usage from metrics.k8s.io, so no CPU throttling")),
        "{:?}",
        k.state.notices
    );
    assert_eq!(h.requests_matching("/proxy/metrics/"), 0, "no kubelet was scraped");
    assert_only_gets(&h);
}

/// Peers such as k9s ask `can-i` before they list: the simulator answers SelfSubjectAccessReview
/// as an API server does, following its own read permissions, and refuses every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_answers_self_subject_access_reviews() {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let h = Harness::start(Scenario::shop(), ServerOptions { node_proxy_forbidden: true, ..Default::default() }).await;
    let reviews: kube::Api<SelfSubjectAccessReview> = kube::Api::all(h.client().await);
    let can_i = |verb: &str, resource: &str, subresource: Option<&str>| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some(resource.into()),
                subresource: subresource.map(str::to_string),
                namespace: Some("shop".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let allowed = |r: SelfSubjectAccessReview| r.status.map(|s| s.allowed);
    let post = kube::api::PostParams::default();
    assert_eq!(allowed(reviews.create(&post, &can_i("list", "pods", None)).await.unwrap()), Some(true));
    assert_eq!(allowed(reviews.create(&post, &can_i("watch", "events", None)).await.unwrap()), Some(true));
    assert_eq!(allowed(reviews.create(&post, &can_i("delete", "pods", None)).await.unwrap()), Some(false));
    assert_eq!(allowed(reviews.create(&post, &can_i("get", "nodes", Some("proxy"))).await.unwrap()), Some(false));
}

/// In a mesh, each meshed pod's istio-proxy log is followed through the API server (the pods
/// found by the label Istio's injector sets, from the pods watch, no list of their own), its
/// outbound lines counted as that pod's calls and joined to the callee's pods by IP; pods
/// without a sidecar are never asked for one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_sidecar_logs_are_followed_and_their_calls_joined_to_the_callees() {
    mesh_calls_followed(MeshLogEncoding::Text).await;
}

/// The same with Istio's JSON access log (`meshConfig.accessLogEncoding: JSON`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_sidecar_json_logs_are_followed_as_the_text_ones() {
    mesh_calls_followed(MeshLogEncoding::Json).await;
}

async fn mesh_calls_followed(encoding: MeshLogEncoding) {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/slow-dependency-chain.toml");
    let mut scenario = Scenario::load(&file).unwrap();
    scenario.mesh_log_encoding = encoding;
    let h = Harness::start(scenario, ServerOptions::default()).await;
    h.sim.lock().unwrap().advance(10);
    let clock = run_clock(&h);
    let mut k = Kpulse::start(&h, Scope::All, "default").await;
    let calls_to = |s: &kpulse::app::State, caller: &str, callee: &str| -> u64 {
        let cluster = format!("outbound|8080||{callee}.shop.svc.cluster.local");
        s.mesh
            .iter()
            .filter(|(pod, _)| pod.name.starts_with(caller))
            .filter_map(|(_, t)| t.backends.stats.get(&cluster))
            .map(|stats| stats.total().requests)
            .sum()
    };
    k.wait_for("payment's calls to bank-adapter and bank-adapter's to fraud-check", |s| {
        calls_to(s, "payment-", "bank-adapter") > 50 && calls_to(s, "bank-adapter-", "fraud-check") > 50
    })
    .await;
    assert_eq!(k.state.sources.get(&SourceId::Mesh).map(|s| s.state.clone()), Some(SourceState::Connected));
    // Each call reached a pod of its callee: the upstream address is a fraud-check pod's IP.
    let fraud_ips: Vec<String> = h
        .expected_pods()
        .into_iter()
        .filter(|p| p.key.name.starts_with("fraud-check-"))
        .filter_map(|p| p.pod_ip)
        .collect();
    let adapter = k.state.mesh.iter().find(|(pod, _)| pod.name.starts_with("bank-adapter-")).unwrap().1;
    assert!(
        adapter.upstreams.stats.keys().all(|ip| fraud_ips.contains(ip)),
        "{:?} vs {fraud_ips:?}",
        adapter.upstreams.stats.keys().collect::<Vec<_>>()
    );
    // Only the sidecars' logs were asked for, and only of meshed pods.
    assert!(h.requests_matching("container=istio-proxy") >= 4);
    assert_eq!(h.requests_matching("/pods/storefront-"), 0, "storefront has no sidecar to read");
    // The sidecars wrote the encoding asked for.
    let payment = k.state.mesh.keys().find(|p| p.name.starts_with("payment-")).unwrap().name.clone();
    let lines = h.sim.lock().unwrap().pod_log(&payment, "istio-proxy", 0);
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|(_, _, l)| l.starts_with('{') == (encoding == MeshLogEncoding::Json)), "{:?}", lines[0]);
    clock.cancel();
}
