//! kpulse against a real kube-apiserver + etcd (built by scripts/k8s-assets.sh): the simulator's
//! conformance for everything kpulse relies on, the read-only proof from the audit log, a user
//! bound to one namespace, an apiserver restart, and `kubectl pulse` through kubectl's plugin
//! discovery.

#[path = "common/apiserver.rs"]
mod apiserver;
mod common;
#[path = "common/mirror.rs"]
mod mirror;

use std::collections::BTreeMap;
use std::time::Duration;

use apiserver::{NAMESPACE_VIEWER, READONLY_USER, RealCluster, SimObjects, mirror};
use common::{
    Harness, Kpulse, Tmux, dashboard_command, dashboard_through_a_freeze, fingerprint, run, state_fingerprint,
};
use kpulse::app::State;
use kpulse::demo::scenario::Scenario;
use kpulse::demo::server::ServerOptions;
use kpulse::demo::sim::Sim;
use kpulse::model::time::now_unix;
use kpulse::sources::kube::Scope;
use kpulse::sources::{SourceId, SourceState};

/// Everything a container row shows that comes from the API (not the clock, not the server's
/// own creationTimestamp): what "the same rows" means between the two servers.
fn rows(state: &State) -> Vec<String> {
    let mut v: Vec<String> = state
        .container_table
        .rows
        .iter()
        .map(|r| {
            format!(
                "{}/{} node={} workload={} health={:?} ready={} restarts={} last={:?} started={:?} res={:?}",
                r.pod,
                r.container,
                r.node,
                r.workload,
                r.health,
                r.ready,
                r.restarts,
                r.last_reason,
                r.started,
                r.resources
            )
        })
        .collect();
    v.sort();
    v
}

fn nodes(state: &State) -> Vec<String> {
    let mut v: Vec<String> = state
        .nodes
        .values()
        .map(|n| {
            format!(
                "{} ready={} unschedulable={} pressures={:?} cpu={}/{} mem={}/{} pods={}",
                n.name,
                n.ready,
                n.unschedulable,
                n.pressures,
                n.cpu_allocatable_m,
                n.cpu_capacity_m,
                n.mem_allocatable,
                n.mem_capacity,
                n.pods_allocatable
            )
        })
        .collect();
    v.sort();
    v
}

/// Only reads: the verbs RBAC's read-only role grants and nothing else, ever.
fn assert_only_reads(cluster: &RealCluster, user: &str) -> BTreeMap<String, usize> {
    let audited = cluster.audit_of(user);
    assert!(!audited.is_empty(), "the audit log has requests from {user}");
    let mut verbs = BTreeMap::new();
    for a in &audited {
        assert!(matches!(a.verb.as_str(), "get" | "list" | "watch"), "{user} sent a {} to {}", a.verb, a.uri);
        *verbs.entry(a.verb.clone()).or_insert(0) += 1;
    }
    verbs
}

async fn mirrored_cluster(sim: &Sim) -> Option<RealCluster> {
    let cluster = RealCluster::start()?;
    mirror(&cluster.client("admin").await, &SimObjects::of(sim))
        .await
        .expect("the simulator mirrored into the real apiserver");
    Some(cluster)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_apiserver_and_the_simulator_give_the_same_rows() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let objects = SimObjects::of(&h.sim.lock().unwrap());
    let Some(cluster) = RealCluster::start() else { return };
    let admin = cluster.client("admin").await;
    mirror(&admin, &objects).await.expect("the simulator mirrored into the real apiserver");
    cluster.readonly_kubeconfig();

    let mut real = Kpulse::start_on(cluster.client(READONLY_USER).await, Scope::All, "default").await;
    let mut simulated = Kpulse::start(&h, Scope::All, "default").await;
    let expected = fingerprint(&h.expected_pods());
    real.wait_for("the initial list from the real apiserver", |s| {
        s.pods.synced() && state_fingerprint(s) == expected && s.nodes.len() == 3
    })
    .await;
    simulated.wait_for("the initial list from the simulator", |s| state_fingerprint(s) == expected).await;
    assert_eq!(rows(&real.state), rows(&simulated.state), "the same rows from both servers");
    assert_eq!(nodes(&real.state), nodes(&simulated.state), "the same nodes from both servers");
    // The Services the gateway's backend names are resolved against, the same from both (the
    // real one also has default/kubernetes).
    let services = |s: &State| {
        let mut v: Vec<_> = s
            .services
            .values()
            .filter(|svc| svc.key.to_string() != "default/kubernetes")
            .map(|svc| (svc.key.to_string(), svc.ports.clone()))
            .collect();
        v.sort();
        v
    };
    real.wait_for("the Services from the real apiserver", |s| s.services.synced() && s.services.len() > 1).await;
    simulated.wait_for("the Services from the simulator", |s| s.services.synced()).await;
    assert_eq!(services(&real.state), services(&simulated.state), "the same Services from both servers");
    assert!(services(&real.state).iter().any(|(k, p)| k == "shop/payment" && p == &[(80, Some("http".into()))]));

    // Time passes in the simulator; the harness writes the new statuses as a kubelet would, and
    // both kpulses follow through their watches.
    h.sim.lock().unwrap().advance(90);
    let objects = SimObjects::of(&h.sim.lock().unwrap());
    mirror(&admin, &objects).await.expect("the simulator mirrored into the real apiserver");
    let expected = fingerprint(&h.expected_pods());
    real.wait_for("watch updates from the real apiserver", |s| state_fingerprint(s) == expected).await;
    simulated.wait_for("watch updates from the simulator", |s| state_fingerprint(s) == expected).await;
    assert_eq!(rows(&real.state), rows(&simulated.state), "the same rows after 90 s of changes");
    let crash =
        real.state.container_table.rows.iter().find(|r| r.pod.name.starts_with("notification")).unwrap().pod.clone();
    real.wait_for("Warning events of the crash-looping pod", |s| {
        s.pod_events(&crash).iter().any(|e| e.reason == "BackOff" && e.warning)
    })
    .await;

    // A deletion, seen through the watch.
    let victim = h.expected_pods().into_iter().find(|p| p.label("app") == Some("frontend")).unwrap();
    assert!(h.sim.lock().unwrap().delete_pod(&victim.key.namespace, &victim.key.name));
    let objects = SimObjects::of(&h.sim.lock().unwrap());
    mirror(&admin, &objects).await.expect("the simulator mirrored into the real apiserver");
    let expected = fingerprint(&h.expected_pods());
    real.wait_for("the deletion", |s| s.pods.get(&victim.key).is_none() && state_fingerprint(s) == expected).await;

    // No metrics-server here: the usage source says so instead of failing.
    real.wait_for("metrics.k8s.io reported absent", |s| {
        matches!(s.sources[&SourceId::PodMetrics].state, SourceState::Absent(_))
    })
    .await;
    drop(real);
    let verbs = assert_only_reads(&cluster, READONLY_USER);
    let audited = cluster.audit_of(READONLY_USER);
    let lists = |prefix: &str| audited.iter().filter(|a| a.verb == "list" && a.uri.starts_with(prefix)).count();
    assert_eq!(lists("/api/v1/pods?"), 1, "one LIST of pods; updates came from the watch: {audited:#?}");
    assert_eq!(lists("/api/v1/nodes?"), 1, "one LIST of nodes");
    assert_eq!(lists("/api/v1/events?"), 1, "one LIST of events");
    assert_eq!(lists("/api/v1/services?"), 1, "one LIST of Services");
    assert!(audited.iter().any(|a| a.uri.contains("fieldSelector=type%3DWarning")), "events narrowed to Warnings");
    eprintln!("requests by kpulse, by verb: {verbs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_and_a_dashboard_session_as_the_readonly_user_only_read() {
    let mut sim = Sim::new(Scenario::shop(), now_unix());
    sim.advance(120); // the notification service is crash-looping by then
    let Some(cluster) = mirrored_cluster(&sim).await else { return };
    let kubeconfig = cluster.readonly_kubeconfig();

    let (code, out, err) = run(common::kpulse()
        .arg("snapshot")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["-A", "--window", "4s", "--format", "json"]));
    assert_eq!(code, 0, "snapshot as the read-only user: {err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    let containers = report["containers"].as_array().unwrap();
    assert_eq!(containers.len(), fingerprint(&Harness::pods_of(&sim)).len(), "every container: {out}");
    assert!(
        report["hotspots"].as_array().unwrap().iter().any(|h| h["verdict"] == "Crash-looping"),
        "the crash-looping notification pod ranks from API facts alone: {}",
        report["hotspots"]
    );
    let source = |name: &str| report["sources"].as_array().unwrap().iter().find(|s| s["source"] == name).cloned();
    assert_eq!(source("pods").unwrap()["state"], "connected");
    let snapshot_verbs = assert_only_reads(&cluster, READONLY_USER);

    // The dashboard in a real terminal, driven by keys across every view.
    let command = format!("{} --kubeconfig {} -A", env!("CARGO_BIN_EXE_kpulse"), kubeconfig.display());
    let Some(tmux) = Tmux::start("kpulse-real", (160, 45), &command) else { return };
    let screen = tmux.wait_for("rows from the real apiserver", |s| s.contains("notification") && s.contains("payment"));
    assert!(screen.contains(READONLY_USER) || screen.contains("kpulse"), "{screen}");
    for key in ["2", "3", "4", "1", "j", "j", "Enter", "Escape", "/", "pay", "Enter"] {
        tmux.keys(&[key]);
        std::thread::sleep(Duration::from_millis(300));
    }
    let screen = tmux.wait_for("the filtered table", |s| s.contains("filter: pay") && s.contains("2/"));
    assert!(screen.contains("shop/payment"), "{screen}");
    tmux.keys(&["q"]);
    std::thread::sleep(Duration::from_millis(500));
    let verbs = assert_only_reads(&cluster, READONLY_USER);
    eprintln!("read-only user: snapshot {snapshot_verbs:?}; snapshot + dashboard session {verbs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_bound_to_one_namespace_gets_its_rows_and_one_notice() {
    let sim = Sim::new(Scenario::shop(), now_unix());
    let Some(cluster) = mirrored_cluster(&sim).await else { return };
    // config/rbac-readonly.yaml's ClusterRole, granted in the shop namespace only.
    cluster.kubectl_ok(&[
        "-n",
        "shop",
        "create",
        "rolebinding",
        "shop-viewer",
        "--clusterrole=kpulse-readonly",
        &format!("--user={NAMESPACE_VIEWER}"),
    ]);
    let mut k = Kpulse::start_on(cluster.client(NAMESPACE_VIEWER).await, Scope::All, "shop").await;
    let shop: Vec<_> = fingerprint(&Harness::pods_of(&sim)).into_iter().filter(|r| r.0.starts_with("shop/")).collect();
    assert!(!shop.is_empty());
    k.wait_for("the shop namespace's rows", |s| state_fingerprint(s) == shop).await;
    k.wait_for("a notice naming the fallback", |s| {
        s.notices.iter().any(|n| n.1.contains("not allowed to list pods in all namespaces; showing namespace shop"))
    })
    .await;
    // Give the forbidden parts (nodes are cluster-scoped) time to retry, then count.
    tokio::time::sleep(Duration::from_secs(8)).await;
    // What arrived while asleep (`wait_for` returns at once when its condition already holds).
    k.drain();
    k.wait_for("still the shop rows", |s| state_fingerprint(s) == shop).await;
    k.wait_for("the nodes source marked forbidden", |s| {
        matches!(s.sources[&SourceId::Nodes].state, SourceState::Forbidden(_))
    })
    .await;
    let notices: Vec<_> = k.state.notices.iter().filter(|n| n.1.contains("not allowed")).collect();
    assert!(notices.len() <= 3, "one notice per narrowed source, not a flood: {notices:#?}");
    drop(k);
    let audited = cluster.audit_of(NAMESPACE_VIEWER);
    let refused = audited.iter().filter(|a| a.code == 403).count();
    // Per path: one refused cluster-wide LIST for each namespaced kind (then narrowed); the nodes
    // watch retried with backoff, node metrics at most once per poll interval (1 s here) — never
    // a tight loop.
    let mut by_path: BTreeMap<&str, usize> = BTreeMap::new();
    for a in audited.iter().filter(|a| a.code == 403) {
        *by_path.entry(a.uri.split('?').next().unwrap_or(&a.uri)).or_default() += 1;
    }
    eprintln!("refused, by path: {by_path:?}");
    assert!(by_path.values().all(|n| *n <= 12), "a path refused again and again is an error flood: {by_path:#?}");
    assert!(refused <= 24, "{refused} refused requests in ~10 s is an error flood: {audited:#?}");
    assert_only_reads(&cluster, NAMESPACE_VIEWER);
    eprintln!("namespace viewer: {} requests, {refused} refused", audited.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apiserver_restart_mid_session_converges() {
    let mut sim = Sim::new(Scenario::shop(), now_unix());
    let Some(mut cluster) = mirrored_cluster(&sim).await else { return };
    cluster.readonly_kubeconfig();
    let mut k = Kpulse::start_on(cluster.client(READONLY_USER).await, Scope::All, "default").await;
    let expected = fingerprint(&Harness::pods_of(&sim));
    k.wait_for("the initial list", |s| s.pods.synced() && state_fingerprint(s) == expected).await;

    cluster.stop_apiserver();
    k.wait_for("the outage is noticed", |s| matches!(s.sources[&SourceId::Pods].state, SourceState::Reconnecting(_)))
        .await;
    assert_eq!(k.state.container_table.rows.len(), expected.len(), "nothing collected is lost while disconnected");
    sim.advance(60);
    cluster.start_apiserver();
    mirror(&cluster.client("admin").await, &SimObjects::of(&sim))
        .await
        .expect("the simulator mirrored into the real apiserver");
    let expected = fingerprint(&Harness::pods_of(&sim));
    k.wait_for("convergence after the restart", |s| {
        s.sources[&SourceId::Pods].state == SourceState::Connected && state_fingerprint(s) == expected
    })
    .await;
    assert_only_reads(&cluster, READONLY_USER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_apiserver_is_named_and_the_session_recovers_when_it_thaws() {
    let sim = Sim::new(Scenario::shop(), now_unix());
    let Some(cluster) = mirrored_cluster(&sim).await else { return };
    cluster.readonly_kubeconfig();
    let mut k = Kpulse::start_on(cluster.client(READONLY_USER).await, Scope::All, "default").await;
    let expected = fingerprint(&Harness::pods_of(&sim));
    k.wait_for("the initial list", |s| s.pods.synced() && state_fingerprint(s) == expected).await;

    // Frozen, not dead: the watch's connection stays open and silent. A quiet watch asks its
    // server after 30 s, and the probe gives up after 5.
    cluster.pause_apiserver();
    let frozen = |s: &State| {
        matches!(&s.sources[&SourceId::Pods].state,
            SourceState::Reconnecting(r) if r.contains("no answer from the API server"))
    };
    k.wait_for_within("the frozen server is named", Duration::from_secs(50), frozen).await;
    let spots = k.state.blind_spots();
    assert!(
        spots.iter().any(|b| b.text.starts_with("lost the pods at") && b.text.contains("showing them as they were")),
        "the screen says the rows are as last seen: {spots:?}"
    );
    assert_eq!(k.state.container_table.rows.len(), expected.len(), "nothing collected is lost while frozen");

    cluster.resume_apiserver();
    k.wait_for_within("live again after the thaw", Duration::from_secs(30), |s| {
        s.sources[&SourceId::Pods].state == SourceState::Connected && state_fingerprint(s) == expected
    })
    .await;
    assert!(k.state.blind_spots().iter().all(|b| b.source != SourceId::Pods), "{:?}", k.state.blind_spots());
}

/// The same freeze seen by a user: the dashboard keeps answering keys, its strip says the pods
/// are shown as last seen, the rows stay on screen, and the line clears after the thaw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_answers_keys_through_a_frozen_apiserver_and_clears_after_the_thaw() {
    let sim = Sim::new(Scenario::shop(), now_unix());
    let Some(cluster) = mirrored_cluster(&sim).await else { return };
    let kubeconfig = cluster.readonly_kubeconfig();
    let containers = fingerprint(&Harness::pods_of(&sim)).len();
    let all_rows = format!(" {containers}/{containers} rows");
    let dir = tempfile::tempdir().unwrap();
    let cmd = dashboard_command(dir.path(), &kubeconfig, "-A");
    let Some(term) = Tmux::start("kpulse-frozen-apiserver", (160, 40), &cmd) else { return };
    term.wait_for("every container listed", |s| s.contains(&all_rows));

    dashboard_through_a_freeze(
        &term,
        (containers, containers),
        || cluster.pause_apiserver(),
        || cluster.resume_apiserver(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_credential_plugin_authenticates_a_snapshot() {
    let sim = Sim::new(Scenario::shop(), now_unix());
    let Some(cluster) = mirrored_cluster(&sim).await else { return };
    let readonly = std::fs::read_to_string(cluster.readonly_kubeconfig()).unwrap();
    let token = readonly.lines().find_map(|l| l.trim().strip_prefix("token: ")).expect("a token").to_string();
    // The plugin as cloud CLIs ship them (aws eks get-token, gke-gcloud-auth-plugin): it prints
    // an ExecCredential on stdout; kpulse must call it, use it, and print none of it.
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    let plugin = dir.path().join("get-token");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\necho called >> {calls}\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\
             \"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"}}}}'\n",
            calls = calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: real\n  cluster:\n    server: {server}\n    \
             certificate-authority: {ca}\nusers:\n- name: sso\n  user:\n    exec:\n      \
             apiVersion: client.authentication.k8s.io/v1\n      command: {plugin}\n      interactiveMode: Never\n\
             contexts:\n- name: sso\n  context:\n    cluster: real\n    user: sso\ncurrent-context: sso\n",
            server = cluster.server(),
            ca = cluster.dir.path().join("certs/apiserver.crt").display(),
            plugin = plugin.display()
        ),
    )
    .unwrap();
    let (code, out, err) = run(common::kpulse()
        .arg("snapshot")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["-A", "--window", "4s", "--format", "json"]));
    assert_eq!(code, 0, "a snapshot through the plugin's token: {err}");
    assert!(!out.contains(&token) && !err.contains(&token), "the plugin's token is never printed");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    // This tier has no kubelets: usage and pod logs are missing, and said to be; the pods are not.
    let unseen: Vec<&str> =
        report["incomplete"].as_array().unwrap().iter().map(|i| i["source"].as_str().unwrap()).collect();
    assert!(unseen.iter().all(|s| ["cadvisor", "gateway"].contains(s)), "{}", report["incomplete"]);
    assert_eq!(report["containers"].as_array().unwrap().len(), fingerprint(&Harness::pods_of(&sim)).len());
    assert!(std::fs::read_to_string(&calls).is_ok_and(|c| c.contains("called")), "the plugin was run");
    assert_only_reads(&cluster, READONLY_USER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_and_a_client_certificate_authenticate_like_kubectl() {
    // A client CA the apiserver trusts, and a certificate it signed for one user.
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    let run_openssl = |line: &str| {
        let ok = std::process::Command::new("openssl")
            .current_dir(p)
            .args(line.split(' '))
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl {line} (apt-get install -y openssl)");
    };
    run_openssl("req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=kpulse-test-ca");
    run_openssl(&format!("req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN={CERT_USER}"));
    // Extensions make it an X.509 v3 certificate, as kubeadm's and every CA's are (rustls refuses v1).
    std::fs::write(p.join("client.ext"), "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
        .unwrap();
    let sign =
        "x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 1 -extfile client.ext";
    run_openssl(sign);
    let client_ca = format!("--client-ca-file={}", p.join("ca.crt").display());
    let sim = Sim::new(Scenario::shop(), now_unix());
    let Some(cluster) = RealCluster::start_with(&[&client_ca]) else { return };
    mirror(&cluster.client("admin").await, &SimObjects::of(&sim)).await.expect("mirrored");
    cluster.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "cert-user-readonly",
        "--clusterrole=kpulse-readonly",
        &format!("--user={CERT_USER}"),
    ]);
    let readonly = std::fs::read_to_string(cluster.readonly_kubeconfig()).unwrap();
    let token = readonly.lines().find_map(|l| l.trim().strip_prefix("token: ")).expect("a token").to_string();
    std::fs::write(p.join("token"), &token).unwrap();
    let key = std::fs::read_to_string(p.join("client.key")).unwrap();
    let kubeconfig = p.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: real\n  cluster:\n    server: {server}\n    \
             certificate-authority: {ca}\nusers:\n- name: token-file\n  user:\n    tokenFile: {dir}/token\n\
             - name: cert\n  user:\n    client-certificate: {dir}/client.crt\n    client-key: {dir}/client.key\n\
             contexts:\n- name: token-file\n  context:\n    cluster: real\n    user: token-file\n\
             - name: cert\n  context:\n    cluster: real\n    user: cert\ncurrent-context: token-file\n",
            server = cluster.server(),
            ca = cluster.dir.path().join("certs/apiserver.crt").display(),
            dir = p.display()
        ),
    )
    .unwrap();
    let expected = fingerprint(&Harness::pods_of(&sim)).len();
    for (context, user) in [("token-file", READONLY_USER), ("cert", CERT_USER)] {
        let (code, out, err) = run(common::kpulse().arg("snapshot").arg("--kubeconfig").arg(&kubeconfig).args([
            "--context",
            context,
            "-A",
            "--window",
            "3s",
            "--format",
            "json",
        ]));
        assert_eq!(code, 0, "{context}: {err}");
        for secret in [token.as_str(), key.lines().nth(1).unwrap()] {
            assert!(!out.contains(secret) && !err.contains(secret), "{context}: a credential was printed");
        }
        let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
        assert_eq!(report["containers"].as_array().unwrap().len(), expected, "{context}");
        let verbs = assert_only_reads(&cluster, user);
        assert!(!verbs.is_empty(), "{context}: the apiserver saw {user}");
    }
}

/// The user a client certificate names (its CN).
const CERT_USER: &str = "kpulse-cert-user";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_finds_the_plugin_and_passes_context_and_namespace_through() {
    let sim = Sim::new(Scenario::shop(), now_unix());
    let Some(cluster) = mirrored_cluster(&sim).await else { return };
    let kubeconfig = cluster.readonly_kubeconfig();
    let plugins = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kubectl-pulse"), plugins.path().join("kubectl-pulse")).unwrap();
    let path = format!("{}:{}", plugins.path().display(), std::env::var("PATH").unwrap_or_default());
    let kubectl = || {
        let mut cmd = std::process::Command::new(cluster.bin.join("kubectl"));
        cmd.env("PATH", &path).env("KUBECONFIG", &kubeconfig);
        cmd
    };
    let (code, out, err) = run(kubectl().args(["plugin", "list"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kubectl-pulse"), "kubectl discovers the plugin: {out}");
    let (code, out, err) = run(kubectl().args(["pulse", "--help"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kubectl pulse"), "the plugin names itself as kubectl does: {out}");

    let (code, out, err) = run(kubectl().args([
        "pulse",
        "snapshot",
        "--context",
        READONLY_USER,
        "-n",
        "shop",
        "--window",
        "3s",
        "--format",
        "json",
    ]));
    assert_eq!(code, 0, "kubectl pulse snapshot: {err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["context"], READONLY_USER, "--context passed through");
    let namespaces: Vec<&str> =
        report["containers"].as_array().unwrap().iter().filter_map(|c| c["namespace"].as_str()).collect();
    let shop = fingerprint(&Harness::pods_of(&sim)).into_iter().filter(|r| r.0.starts_with("shop/")).count();
    assert_eq!(namespaces.len(), shop, "-n shop passed through: {namespaces:?}");
    assert!(namespaces.iter().all(|ns| *ns == "shop"));

    let (code, _, err) = run(kubectl().args(["pulse", "snapshot", "--context", "nope", "--window", "1s"]));
    assert_ne!(code, 0);
    assert!(err.contains("nope"), "an unknown context is named: {err}");
    assert_only_reads(&cluster, READONLY_USER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kind_demo_manifests_pass_server_side_dry_run() {
    let Some(cluster) = RealCluster::start() else { return };
    // A server-side dry run does not persist the Namespace objects, so everything inside them would
    // be refused for a missing namespace: those two are created for real first.
    cluster.kubectl_ok(&["create", "namespace", "shop"]);
    cluster.kubectl_ok(&["create", "namespace", "monitoring"]);
    let manifests = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/kind/manifests");
    let out = cluster.kubectl_ok(&["apply", "--dry-run=server", "-f", manifests]);
    for object in [
        "configmap/shop-svc",
        "deployment.apps/frontend",
        "deployment.apps/payment",
        "deployment.apps/notification",
        "deployment.apps/event-consumer",
        "deployment.apps/loadgen",
        "statefulset.apps/search",
        "service/payment",
        "ingress.networking.k8s.io/shop",
        "clusterrole.rbac.authorization.k8s.io/kpulse-demo-prometheus",
        "deployment.apps/prometheus",
        "service/prometheus",
    ] {
        assert!(
            out.contains(&format!("{object} created (server dry run)")),
            "{object} validated by the apiserver:\n{out}"
        );
    }
    let created = cluster.kubectl_ok(&["get", "deployments,statefulsets,services", "-A", "-o", "name"]);
    assert!(!created.contains("frontend") && !created.contains("prometheus"), "a dry run creates nothing: {created}");
}

/// GET through a kube client, raw: (status, JSON body), with an optional Accept header.
async fn get_raw(client: &kube::Client, path: &str, accept: Option<&str>) -> (u16, serde_json::Value) {
    use http_body_util::BodyExt;
    let mut req = http::Request::get(path);
    if let Some(accept) = accept {
        req = req.header(http::header::ACCEPT, accept);
    }
    let resp = client.send(req.body(kube::client::Body::empty()).unwrap()).await.expect("a response");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("a body").to_bytes();
    // A watch answers with one JSON event per line: the first is what these tests look at.
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    (code, serde_json::from_slice(&bytes).or_else(|_| serde_json::from_slice(first_line)).unwrap_or_default())
}

fn item_names(list: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["metadata"]["name"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Who recorded an event: `reportingComponent`, else `source.component`.
fn event_component(event: &serde_json::Value) -> String {
    let reporting = event["reportingComponent"].as_str().unwrap_or_default();
    let source = event["source"]["component"].as_str().unwrap_or_default();
    if reporting.is_empty() { source } else { reporting }.to_string()
}

/// Keeps the real apiserver's events recorded by the components the simulator plays (kubelet,
/// scheduler), which the mirror copied over. The control plane records events of its own — its
/// Service IP repair loop's `ClusterIPNotAllocated` when its cache lags behind Services just
/// created, and others named by UUID — seen on a loaded CI machine; the simulator has no such
/// controllers, so those are not compared.
fn keep_simulated_components(real: &mut serde_json::Value, simulated: &serde_json::Value) {
    let played: std::collections::BTreeSet<String> =
        simulated["items"].as_array().into_iter().flatten().map(event_component).collect();
    if let Some(items) = real["items"].as_array_mut() {
        items.retain(|e| played.contains(&event_component(e)));
    }
}

/// Every page of a paged LIST: the names, and how many pages it took.
async fn paged_names(client: &kube::Client, path: &str, limit: usize) -> (Vec<String>, usize) {
    let (mut names, mut pages, mut token) = (Vec::new(), 0, String::new());
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (code, page) = get_raw(client, &format!("{path}{sep}limit={limit}&continue={token}"), None).await;
        assert_eq!(code, 200, "{page}");
        pages += 1;
        let items = page["items"].as_array().unwrap().len();
        names.extend(item_names(&page));
        token = page["metadata"]["continue"].as_str().unwrap_or_default().to_string();
        if token.is_empty() {
            return (names, pages);
        }
        assert_eq!(items, limit, "a page that is not the last is full");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_answers_requests_as_the_real_apiserver_does() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    h.sim.lock().unwrap().advance(120);
    let objects = SimObjects::of(&h.sim.lock().unwrap());
    let Some(cluster) = RealCluster::start() else { return };
    let admin = cluster.client("admin").await;
    mirror(&admin, &objects).await.expect("the simulator mirrored into the real apiserver");
    let sim = h.client().await;

    // Pagination: the same pods in the same number of pages, each but the last full.
    let (real_pods, real_pages) = paged_names(&admin, "/api/v1/pods", 5).await;
    let (sim_pods, sim_pages) = paged_names(&sim, "/api/v1/pods", 5).await;
    assert_eq!(real_pods, sim_pods);
    assert_eq!((real_pages, real_pods.len()), (sim_pages, sim_pods.len()));
    assert!(real_pages > 2);

    // Selectors kpulse sends: events narrowed to Warnings, gateway pods by label, pods of a namespace.
    for path in [
        "/api/v1/events?fieldSelector=type%3DWarning",
        "/api/v1/pods?labelSelector=app.kubernetes.io%2Fname%3Dingress-nginx%2Capp.kubernetes.io%2Fcomponent%3Dcontroller",
        "/api/v1/namespaces/shop/pods?labelSelector=app%3Dpayment",
        "/api/v1/pods?fieldSelector=metadata.namespace%3Dingress-nginx",
    ] {
        let (real_code, mut real) = get_raw(&admin, path, None).await;
        let (sim_code, simulated) = get_raw(&sim, path, None).await;
        if path.contains("/events") {
            keep_simulated_components(&mut real, &simulated);
        }
        assert_eq!((real_code, real["kind"].clone()), (sim_code, simulated["kind"].clone()), "{path}");
        assert_eq!(item_names(&real), item_names(&simulated), "{path}");
        assert!(!item_names(&real).is_empty(), "{path} selects something");
        assert!(
            real["metadata"]["resourceVersion"].is_string() && simulated["metadata"]["resourceVersion"].is_string()
        );
    }

    // Metadata-only lists (the cAdvisor poller's node names).
    let accept = Some("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1");
    let (_, real) = get_raw(&admin, "/api/v1/nodes", accept).await;
    let (_, simulated) = get_raw(&sim, "/api/v1/nodes", accept).await;
    for list in [&real, &simulated] {
        assert_eq!(list["kind"], "PartialObjectMetadataList", "{list}");
        assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
        assert!(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["kind"] == "PartialObjectMetadata" && i["status"].is_null())
        );
    }
    assert_eq!(item_names(&real), item_names(&simulated));

    // Error bodies: a Status with the same code and reason.
    for path in ["/api/v1/namespaces/shop/pods/no-such-pod", "/api/v1/nodes/no-such-node"] {
        let (real_code, real) = get_raw(&admin, path, None).await;
        let (sim_code, simulated) = get_raw(&sim, path, None).await;
        assert_eq!(real_code, 404);
        assert_eq!(
            (sim_code, &simulated["kind"], &simulated["reason"], &simulated["code"]),
            (real_code, &real["kind"], &real["reason"], &real["code"]),
            "{path}: {real} vs {simulated}"
        );
    }
}

#[test]
fn krew_installs_the_plugin_from_its_manifest() {
    let Some(bin) = apiserver::k8s_bin_dir() else { return };
    let dist = tempfile::tempdir().unwrap();
    let krew_root = tempfile::tempdir().unwrap();
    let (code, out, err) = run(std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/krew-package.sh"))
        .env("KPULSE_PLUGIN_BIN", env!("CARGO_BIN_EXE_kubectl-pulse"))
        .env("KPULSE_DIST", dist.path()));
    assert_eq!(code, 0, "krew-package.sh: {out}{err}");
    let archive = std::fs::read_dir(dist.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("an archive");
    // kubectl and kubectl-krew from scripts/k8s-assets.sh; the installed plugin lands in KREW_ROOT/bin.
    let path = format!("{}:{}:/usr/bin:/bin", krew_root.path().join("bin").display(), bin.display());
    let kubectl = || {
        let mut cmd = std::process::Command::new(bin.join("kubectl"));
        cmd.env("PATH", &path).env("KREW_ROOT", krew_root.path());
        cmd
    };
    let (code, out, err) = run(kubectl()
        .args(["krew", "install"])
        .arg(format!("--manifest={}", dist.path().join("pulse.yaml").display()))
        .arg(format!("--archive={}", archive.display())));
    assert_eq!(code, 0, "krew install: {out}{err}");
    assert!(format!("{out}{err}").contains("Installed plugin: pulse"), "{out}{err}");
    let (code, out, _) = run(kubectl().args(["plugin", "list"]));
    assert_eq!(code, 0);
    assert!(out.contains(&krew_root.path().join("bin/kubectl-pulse").display().to_string()), "{out}");
    let (code, out, err) = run(kubectl().args(["pulse", "--version"]));
    let version = concat!("kubectl-pulse ", env!("CARGO_PKG_VERSION"), " (", env!("KPULSE_BUILD"), ")");
    assert_eq!((code, out.trim()), (0, version), "{err}");
    assert!(version.contains("commit "), "the version names the commit: {version}");

    // `kubectl pulse <TAB>`: kubectl (≥ 1.26) runs kubectl_complete-pulse from PATH, which the
    // plugin itself prints.
    let (code, script, err) = run(kubectl().args(["pulse", "completions", "kubectl"]));
    assert_eq!(code, 0, "{err}");
    let complete = krew_root.path().join("bin/kubectl_complete-pulse");
    std::fs::write(&complete, script).unwrap();
    std::fs::set_permissions(&complete, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, out, err) = run(kubectl().args(["__complete", "pulse", "--prometheus-h"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("--prometheus-header\tA header for every Prometheus request"), "{out}");
    let (_, out, _) = run(kubectl().args(["__complete", "pulse", "--usage", ""]));
    let offered: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(offered[..3], ["auto", "cadvisor", "metrics-api"], "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_pods_take_one_paged_list_and_one_watch() {
    let sim = Sim::new(Scenario::shop().scaled_to(10_000), now_unix());
    let Some(cluster) = mirrored_cluster(&sim).await else { return };
    cluster.readonly_kubeconfig();
    let expected = fingerprint(&Harness::pods_of(&sim));
    assert!(expected.len() > 29_000, "{}", expected.len());
    let mut k = Kpulse::start_on(cluster.client(READONLY_USER).await, Scope::All, "default").await;
    k.wait_for("every container of 10,000 pods", |s| s.pods.synced() && s.container_table.rows.len() == expected.len())
        .await;
    assert_eq!(state_fingerprint(&k.state), expected);
    // The steady state: a few seconds of watching adds no LIST.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(k);
    let audited = cluster.audit_of(READONLY_USER);
    let pods: Vec<&apiserver::Audited> =
        audited.iter().filter(|a| a.uri.starts_with("/api/v1/pods?") && !a.uri.contains("labelSelector")).collect();
    let lists: Vec<_> = pods.iter().filter(|a| a.verb == "list").collect();
    let pages = lists.len();
    assert_eq!(lists.iter().filter(|a| !a.uri.contains("continue=")).count(), 1, "one LIST of pods: {lists:#?}");
    assert_eq!(pages, 20, "10,000 pods in pages of 500");
    assert_eq!(pods.iter().filter(|a| a.verb == "watch").count(), 1, "one WATCH of pods");
    eprintln!("10,000 pods: {} requests by kpulse, pods in {pages} pages + 1 watch", audited.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_compacted_resource_version_is_410_on_both_servers() {
    // Without the watch cache the apiserver serves a watch from etcd, so compacting etcd makes an
    // old resourceVersion gone exactly as a long-disconnected client meets it in production.
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let objects = SimObjects::of(&h.sim.lock().unwrap());
    let Some(cluster) = RealCluster::start_with(&["--watch-cache=false"]) else { return };
    let admin = cluster.client("admin").await;
    mirror(&admin, &objects).await.expect("the simulator mirrored into the real apiserver");
    let (_, list) = get_raw(&admin, "/api/v1/pods?limit=1", None).await;
    let old_rv: u64 = list["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    h.sim.lock().unwrap().advance(30);
    let objects = SimObjects::of(&h.sim.lock().unwrap());
    mirror(&admin, &objects).await.expect("status changes written");
    cluster.compact_etcd();
    h.sim.lock().unwrap().compact();

    let real_path = format!("/api/v1/pods?watch=true&resourceVersion={old_rv}&timeoutSeconds=2");
    let (real_code, real) = get_raw(&admin, &real_path, None).await;
    let (sim_code, simulated) =
        get_raw(&h.client().await, "/api/v1/pods?watch=true&resourceVersion=1&timeoutSeconds=2", None).await;
    // Either a 410 response or a 200 whose first event is an ERROR with code 410: kube-runtime
    // relists on both. The simulator must give what this apiserver gives.
    let gone = |code: u16, v: &serde_json::Value| {
        if code == 410 {
            v["code"].as_u64()
        } else {
            (v["type"] == "ERROR").then(|| v["object"]["code"].as_u64()).flatten()
        }
    };
    assert_eq!(gone(real_code, &real), Some(410), "real apiserver: {real_code} {real}");
    assert_eq!((sim_code, gone(sim_code, &simulated)), (real_code, Some(410)), "simulator: {sim_code} {simulated}");
}

/// Peers such as k9s ask `can-i` (SelfSubjectAccessReview) before they list: the simulator
/// answers as the real apiserver does for the read-only role, on reads it grants and writes and
/// kinds it does not, in the same shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_subject_access_reviews_agree_with_the_real_apiserver() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let Some(cluster) = RealCluster::start() else { return };
    cluster.readonly_kubeconfig();
    let real = cluster.client(READONLY_USER).await;
    let sim = h.client().await;
    let review = |client: kube::Client, verb: &str, group: &str, resource: &str, subresource: &str| {
        let body = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "shop", "verb": verb, "group": group,
                                            "resource": resource, "subresource": subresource}}
        });
        async move {
            let request = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&body).unwrap())
                .unwrap();
            client.request::<serde_json::Value>(request).await.expect("a SelfSubjectAccessReview answer")
        }
    };
    for (verb, group, resource, subresource) in [
        ("list", "", "pods", ""),
        ("watch", "", "events", ""),
        ("get", "", "pods", "log"),
        ("get", "", "nodes", "proxy"),
        ("list", "metrics.k8s.io", "pods", ""),
        ("watch", "metrics.k8s.io", "pods", ""),
        ("delete", "", "pods", ""),
        ("create", "", "pods", "exec"),
        ("list", "", "secrets", ""),
        ("patch", "apps", "deployments", ""),
    ] {
        let r = review(real.clone(), verb, group, resource, subresource).await;
        let s = review(sim.clone(), verb, group, resource, subresource).await;
        let what = format!("can-i {verb} {group}/{resource}/{subresource}");
        assert_eq!((&r["kind"], &r["apiVersion"]), (&s["kind"], &s["apiVersion"]), "{what}: {r} vs {s}");
        assert_eq!(r["status"]["allowed"], s["status"]["allowed"], "{what}: real {r} vs simulator {s}");
        assert_eq!(r["spec"]["resourceAttributes"]["verb"], s["spec"]["resourceAttributes"]["verb"], "{what}");
    }
}
