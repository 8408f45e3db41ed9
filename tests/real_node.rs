//! kpulse watching real containers: a real node (scripts/real-node.sh: kubelet, containerd, runc,
//! the CNI bridge, the control plane, nginx as the ingress-nginx gateway) running the shop of
//! demo/real-node/shop.yaml, whose troubles the kernel and the kubelet make — CFS throttling, a
//! memory-cgroup OOM kill, a crash loop with back-off, a pod that fits no node, a slow upstream.
//! kpulse reads it as the read-only ServiceAccount (snapshot and the TUI in tmux), each trouble
//! must rank as the hotspot it is, the audit log must hold only reads, and the simulator is held
//! to the real kubelet on everything kpulse relies on (cAdvisor families and labels, pod status
//! shapes, events, the log endpoint).
//!
//! One test, one node: starting a node and letting its troubles happen takes a minute or two,
//! and two kubelets on one small machine would slow each other's probes into false troubles.

#[path = "common/apiserver.rs"]
mod apiserver;
mod common;
#[path = "common/fidelity.rs"]
mod fidelity;
// Only for the re-export in apiserver.rs.
#[allow(dead_code)]
#[path = "common/mirror.rs"]
mod mirror;
#[path = "common/node.rs"]
mod node;

use std::time::Duration;

use apiserver::READONLY_USER;
use common::{Tmux, run};
use node::RealNode;
use serde_json::Value;

/// The first pod of the shop whose name starts with `app-`.
fn pod<'a>(pods: &'a Value, app: &str) -> Option<&'a Value> {
    pods["items"]
        .as_array()?
        .iter()
        .find(|p| p["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(&format!("{app}-"))))
}

fn first_status(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]
}

/// The cAdvisor counter of one container on the real node (summed over its series).
fn cadvisor_value(exposition: &str, family: &str, container: &str) -> f64 {
    let mut sum = 0.0;
    kpulse::model::exposition::parse(exposition, kpulse::model::exposition::Format::Text, |s| {
        if s.name == family && s.label("container") == Some(container) {
            sum += s.value;
        }
    });
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpulse_watches_real_containers_on_a_real_node() {
    let Some(node) = RealNode::start() else { return };
    let cadvisor_path = "/api/v1/nodes/kpulse-node/proxy/metrics/cadvisor";

    // ---- The troubles, made by the kernel and the kubelet (read as the admin, not by kpulse).
    node.wait_until("cart OOM-killed by its memory cgroup and restarted", 150, |n| {
        let pods = n.kubectl_json(&["-n", "shop", "get", "pods"]);
        let last = &first_status(pod(&pods, "cart")?)["lastState"]["terminated"];
        (last["reason"] == "OOMKilled" && last["exitCode"] == 137).then_some(())
    });
    // Between restarts kubelet 1.36 reports either `waiting: CrashLoopBackOff` or, for much of
    // a back-off, the dead instance (`terminated: Error`, kubectl's "Error").
    node.wait_until("notification crash-looping after exiting 1", 120, |n| {
        let pods = n.kubectl_json(&["-n", "shop", "get", "pods"]);
        let s = first_status(pod(&pods, "notification")?);
        let backing_off = s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
            || (s["state"]["terminated"]["reason"] == "Error" && s["restartCount"].as_u64() >= Some(2));
        (backing_off && s["lastState"]["terminated"]["exitCode"] == 1).then_some(())
    });
    let pods = node.kubectl_json(&["-n", "shop", "get", "pods"]);
    let search = pod(&pods, "search").expect("the search pod");
    assert_eq!(search["status"]["conditions"][0]["reason"], "Unschedulable", "search fits no node: {search}");
    // inventory fails its readiness check 3 s of every 8: the kubelet turns it not ready, then
    // ready again, and writes each turn into the pod's status.
    let mut readiness_seen = (false, false);
    node.wait_until("inventory not ready, then ready again (its readiness probe flapping)", 60, |n| {
        let pods = n.kubectl_json(&["-n", "shop", "get", "pods"]);
        let ready = first_status(pod(&pods, "inventory")?)["ready"].as_bool()?;
        if ready {
            readiness_seen.0 = true
        } else {
            readiness_seen.1 = true
        }
        (readiness_seen.0 && readiness_seen.1).then_some(())
    });
    node.wait_until("payment throttled by its CFS quota", 60, |n| {
        let text = n.kubectl(&["get", "--raw", cadvisor_path]);
        (cadvisor_value(&text, "container_cpu_cfs_throttled_periods_total", "payment") > 10.0).then_some(())
    });

    // ---- A snapshot as the read-only ServiceAccount: two cAdvisor rounds at least.
    let kubeconfig = node.readonly_kubeconfig();
    let (code, out, err) = run(common::kpulse()
        .arg("snapshot")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["-A", "--window", "35s", "--format", "json"]));
    assert_eq!(code, 0, "snapshot against the real node: {err}");
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    for source in report["sources"].as_array().unwrap() {
        let name = source["source"].as_str().unwrap();
        if name != "node metrics" {
            assert_eq!(source["state"], "connected", "source {name} on the real node: {source}");
        }
    }
    let containers = report["containers"].as_array().unwrap();
    let container = |pod: &str| {
        containers
            .iter()
            .find(|c| c["pod"].as_str().is_some_and(|p| p.starts_with(&format!("{pod}-"))))
            .unwrap_or_else(|| panic!("{pod} in the snapshot: {out}"))
    };
    let payment = container("payment");
    assert!(payment["cpu_millicores"].as_f64().is_some_and(|m| m > 30.0), "payment's real CPU: {payment}");
    eprintln!(
        "real-node: payment at {:.0}m CPU, throttled in {:.0}% of its CFS periods",
        payment["cpu_millicores"].as_f64().unwrap_or(f64::NAN),
        payment["cpu_throttled_ratio"].as_f64().unwrap_or(f64::NAN) * 100.0
    );
    // As throttled as the CPU-starved rule asks, so the hotspot below follows from this figure.
    let starved_at = kpulse::analysis::hotspots::Rules::default().cpu_throttled;
    assert!(
        payment["cpu_throttled_ratio"].as_f64().is_some_and(|r| r >= starved_at),
        "payment's real CFS throttling through the kubelet's cAdvisor, at least {starved_at}: {payment}"
    );
    for app in ["frontend", "catalog", "checkout", "recommendation", "loadgen"] {
        let c = container(app);
        assert!(c["memory_bytes"].as_f64().is_some_and(|b| b > 1e6), "{app}'s real working set: {c}");
    }
    // The gateway's upstream addresses are real pod IPs: requests join to the pods behind them.
    let frontend = container("frontend");
    assert!(frontend["requests_per_second"].as_f64().is_some_and(|r| r > 0.5), "frontend's traffic: {frontend}");
    let traffic = report["traffic"].as_array().unwrap();
    let recommendation =
        traffic.iter().find(|t| t["service"] == "shop/recommendation").expect("recommendation traffic");
    assert!(recommendation["p95_seconds"].as_f64().is_some_and(|p| p > 0.5), "the slow upstream: {recommendation}");

    let hotspots = report["hotspots"].as_array().unwrap();
    let hotspot = |subject: &str| {
        hotspots
            .iter()
            .find(|h| {
                let s = &h["subject"];
                s["pod"].as_str().is_some_and(|p| p.starts_with(&format!("{subject}-")))
                    || s["name"].as_str() == Some(&format!("shop/{subject}"))
            })
            .unwrap_or_else(|| panic!("{subject} ranked as a hotspot: {:#}", report["hotspots"]))
    };
    let text = |h: &Value| format!("{} {}", h["verdict"], h["evidence"]);
    assert!(text(hotspot("cart")).contains("OOMKilled"), "cart: {}", text(hotspot("cart")));
    let notification = text(hotspot("notification"));
    // Between two crashes the real kubelet shows the container Running (it has no readiness
    // probe): then it ranks as restarting, with the reason of its last exit.
    let restarting = notification.contains("Restarting") && notification.contains("last Error");
    assert!(
        notification.contains("exit 1") || notification.contains("Crash") || restarting,
        "notification: {notification}"
    );
    assert!(text(hotspot("payment")).contains("CPU-starved"), "payment: {}", text(hotspot("payment")));
    assert!(text(hotspot("search")).contains("Pending"), "search: {}", text(hotspot("search")));
    assert!(text(hotspot("recommendation")).contains("Slow"), "recommendation: {}", text(hotspot("recommendation")));
    // Four turns to not ready within the 35 s window (three make it flapping), read from the real
    // kubelet's pod status through the watch (the simulator's flapping replica plays the same).
    let inventory = text(hotspot("inventory"));
    assert!(inventory.contains("Readiness flapping"), "inventory: {inventory}");
    eprintln!("real-node: inventory: {inventory}");

    // ---- The dashboard in a real terminal.
    let command = format!("{} --kubeconfig {} -A", env!("CARGO_BIN_EXE_kpulse"), kubeconfig.display());
    let Some(tmux) = Tmux::start("kpulse-real-node", (180, 45), &command) else { return };
    let screen = wait_screen(&tmux, "CPU-starved payment and throttling on screen", 60, |s| {
        s.contains("CPU-starved") && s.contains("throttled") && s.contains("kpulse-nod")
    });
    assert!(screen.contains("OOMKilled"), "the OOM kill on screen:\n{screen}");
    // The real Warning events in a pod's detail pane, and the pod's network from the pause
    // container's cAdvisor rows.
    let detail_of = |app: &str, what: &str, ready: &dyn Fn(&str) -> bool| {
        tmux.keys(&["/"]);
        tmux.keys(&["BSpace"; 16]);
        tmux.keys(&[app, "Enter"]);
        wait_screen(&tmux, &format!("the filter on {app}"), 10, |s| s.contains(&format!("filter: {app}")));
        tmux.keys(&["Enter"]);
        wait_screen(&tmux, what, 30, ready);
        tmux.keys(&["Escape"]);
        wait_screen(&tmux, "the detail pane closed", 10, |s| !s.contains("┌ Container "));
    };
    detail_of("notification", "the kubelet's BackOff event in notification's detail pane", &|s| {
        s.contains("Warning events") && s.contains("BackOff")
    });
    detail_of("payment", "payment's network and throttling in its detail pane", &|s| {
        s.contains("Pod network /s now rx") && s.contains("CPU throttled now")
    });
    tmux.keys(&["/"]);
    tmux.keys(&["BSpace"; 16]);
    tmux.keys(&["Enter"]);
    // No metrics-server on this node: its usage comes from the kubelet's root cgroup.
    tmux.keys(&["2"]);
    wait_screen(&tmux, "the node's CPU used, from cAdvisor's root cgroup", 30, |s| {
        column(s, "CPU USED", "kpulse-node").is_some_and(|v| v != "-" && !v.is_empty())
    });
    tmux.keys(&["4"]);
    wait_screen(&tmux, "the Hotspots view", 10, |s| s.contains("Pending: fits no node") && s.contains("Slow"));
    tmux.keys(&["3"]);
    wait_screen(&tmux, "the Traffic view from the gateway pod's log", 10, |s| {
        s.contains("shop/recommendation") && s.contains("ingress-nginx")
    });
    tmux.keys(&["q"]);
    drop(tmux);

    // ---- The simulator against the real kubelet, on what kpulse relies on. The status shapes
    // are best compared with the crash loop in `waiting` (the simulator's only shape of it): give
    // the kubelet a minute to show it.
    let waiting = |pods: &Value| {
        pod(pods, "notification").is_some_and(|p| first_status(p)["state"]["waiting"]["reason"] == "CrashLoopBackOff")
    };
    let mut real_pods = node.kubectl_json(&["get", "pods", "-A"]);
    for _ in 0..60 {
        if waiting(&real_pods) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        real_pods = node.kubectl_json(&["get", "pods", "-A"]);
    }
    let real_events = node.kubectl_json(&["get", "events", "-A"]);
    let real_cadvisor = node.kubectl(&["get", "--raw", cadvisor_path]);
    let sim = fidelity::shop_sim();
    fidelity::same_cadvisor(&real_cadvisor, &sim);
    let resource_path = "/api/v1/nodes/kpulse-node/proxy/metrics/resource";
    fidelity::same_resource_metrics(&node.kubectl(&["get", "--raw", resource_path]), &sim);
    // What a round costs the API server on a real kubelet: each endpoint, plain and gzipped.
    let admin = node.client().await;
    for path in [cadvisor_path, resource_path] {
        let (plain, gzipped) = fidelity::gzipped_through_the_node_proxy(&admin, path).await;
        eprintln!("real kubelet {path}: {plain} bytes plain, {gzipped} gzipped");
        assert!(gzipped * 4 < plain, "{path}: gzip takes it to a fraction: {gzipped} of {plain}");
    }
    fidelity::same_pod_statuses(&real_pods, &sim);
    fidelity::same_events(&real_events, &sim);
    let gateway = pod(&node.kubectl_json(&["-n", "ingress-nginx", "get", "pods"]), "ingress-nginx-controller")
        .and_then(|p| p["metadata"]["name"].as_str().map(String::from))
        .expect("the gateway pod");
    fidelity::same_log_endpoint(node.client().await, "ingress-nginx", &gateway, "controller").await;
    fidelity::assert_no_differences();

    // ---- Only reads, and the real paths: cAdvisor through the node proxy, the gateway pod's log.
    let audited = node.audit_of(READONLY_USER);
    assert!(!audited.is_empty(), "the audit log has kpulse's requests");
    for a in &audited {
        assert!(matches!(a.verb.as_str(), "get" | "list" | "watch"), "kpulse sent a {} to {}", a.verb, a.uri);
    }
    assert!(
        audited.iter().any(|a| a.uri.starts_with(cadvisor_path) && a.code == 200),
        "cAdvisor through the node proxy"
    );
    assert!(
        audited.iter().any(|a| a.uri.contains(&format!("/pods/{gateway}/log")) && a.code == 200),
        "the gateway's log from the kubelet: {audited:#?}"
    );
}

/// The first word under `header` in the table row that starts with `row`.
fn column(screen: &str, header: &str, row: &str) -> Option<String> {
    // Character (not byte) columns: the table is drawn with box characters.
    let col_of = |line: &str, what: &str| line.find(what).map(|b| line[..b].chars().count());
    let col = screen.lines().find_map(|l| col_of(l, header))?;
    let line = screen.lines().find(|l| l.trim_start_matches(['│', ' ']).starts_with(row))?;
    line.chars().skip(col).collect::<String>().split_whitespace().next().map(String::from)
}

/// The screen once `ready` holds, or a failure after `secs`.
fn wait_screen(tmux: &Tmux, what: &str, secs: u64, ready: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let screen = tmux.screen();
        if ready(&screen) {
            return screen;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}; screen:\n{screen}");
        std::thread::sleep(Duration::from_millis(500));
    }
}
