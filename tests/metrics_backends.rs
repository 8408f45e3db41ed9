//! Past one Prometheus: kpulse's `--prometheus` against the other engines of the Prometheus
//! query API, real and on loopback. A VictoriaMetrics (Debian `victoria-metrics`) and a
//! Prometheus scrape the same simulated cluster and kpulse reads both, figure by figure; vmauth
//! (the same package) in front of VictoriaMetrics asks for a bearer token; and a real Prometheus
//! whose remote storage is down answers in part, as Thanos and Mimir do when a store is.
//!
//! Differences between the engines, as their documentation names them, and the tolerance each
//! gets below: VictoriaMetrics' `rate`/`increase` do not extrapolate to the window's edges
//! (Prometheus' do), and its queries see samples only after `-search.latencyOffset` (30 s by
//! default; 1 s here).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Harness, Kpulse, kpulse, real_binary, run, sim_kubeconfig, sim_scrape_config, spawn_prometheus};
use kpulse::app::State;
use kpulse::demo::scenario::Scenario;
use kpulse::demo::server::ServerOptions;
use kpulse::model::promql::Queries;
use kpulse::sources::{SourceId, SourceState, Update};

/// The default queries over 10 s windows: the defaults' [1m] and [5m] under-report until a
/// series is that old, and the test should not wait minutes.
fn quick_queries() -> Queries {
    let q = Queries::default();
    Queries {
        cpu: q.cpu.replace("[1m]", "[10s]"),
        throttle: q.throttle.replace("[5m]", "[10s]"),
        net_rx: q.net_rx.replace("[1m]", "[10s]"),
        net_tx: q.net_tx.replace("[1m]", "[10s]"),
        ..q
    }
}

/// (pod, container) → (CPU millicores, working set bytes, throttled share, restarts in the last hour).
type Figures = HashMap<(String, String), (f64, f64, Option<f64>, u32)>;

fn figures(state: &State) -> Figures {
    state
        .container_table
        .rows
        .iter()
        .map(|r| ((r.pod.name.clone(), r.container.clone()), (r.usage.cpu_m, r.usage.mem, r.throttle, r.restarts_1h)))
        .collect()
}

/// The same figures as Prometheus', container by container, within the engines' differences:
/// every working set within 5 % (a gauge: the same scrape's value or the next one's), the shop's
/// CPU within 15 % (rates over 10 s of a usage with 10 % noise, read a moment apart,
/// extrapolated by one engine and not another), throttling within 0.2 and restarts in the last
/// hour within 1 (`increase()` over an hour in which the counter began, extrapolated or not).
fn same_figures(engine: &str, theirs: &Figures, prometheus: &Figures) {
    let both: Vec<_> = prometheus.keys().filter(|k| theirs.contains_key(*k)).collect();
    assert!(both.len() >= 10, "the same containers from both: {theirs:?} / {prometheus:?}");
    let (mut their_cpu, mut prom_cpu) = (0.0, 0.0);
    let mut compared_memory = 0;
    for key in &both {
        let (tc, tmem, tt, tr) = theirs[*key];
        let (pc, pmem, pt, pr) = prometheus[*key];
        if pmem.is_finite() && tmem.is_finite() {
            assert!((tmem - pmem).abs() / pmem < 0.05, "{key:?} memory: {engine} {tmem}, Prometheus {pmem}");
            compared_memory += 1;
        } else if pmem.is_finite() != tmem.is_finite() {
            // A crash-looping container has no working set between its runs: one engine's last
            // scrape may fall in a run and the other's in a gap. Any other container must agree.
            assert!(key.0.starts_with("notification"), "{key:?} memory: {engine} {tmem}, Prometheus {pmem}");
        }
        if pc.is_finite() && tc.is_finite() {
            their_cpu += tc;
            prom_cpu += pc;
        }
        if let (Some(t), Some(p)) = (tt, pt) {
            assert!((t - p).abs() < 0.2, "{key:?} throttled: {engine} {t}, Prometheus {p}");
        }
        assert!(tr.abs_diff(pr) <= 1, "{key:?} restarts/1h: {engine} {tr}, Prometheus {pr}");
    }
    assert!(compared_memory >= 10, "working sets from both engines: {compared_memory} compared");
    assert!(
        prom_cpu > 0.0 && (their_cpu - prom_cpu).abs() / prom_cpu < 0.15,
        "CPU: {engine} {their_cpu}m, Prometheus {prom_cpu}m"
    );
    eprintln!("CPU of the shop: {engine} {their_cpu:.0}m, Prometheus {prom_cpu:.0}m");
}

/// History from before `started` back-filled through `engine`'s query_range, and the crash
/// loop's restarts from its kube-state-metrics series.
async fn history_and_restarts(k: &mut Kpulse, engine: &str, started: i64) {
    k.wait_for(&format!("history back-filled from {engine}'s query_range"), |s| {
        s.container_table
            .rows
            .iter()
            .any(|r| s.tracks.get(&r.pod, &r.container).is_some_and(|t| t.mem.points().any(|(at, _)| at < started - 5)))
    })
    .await;
    k.wait_for(&format!("restarts/1h from kube-state-metrics through {engine}"), |s| {
        s.container_table.rows.iter().any(|r| r.pod.name.starts_with("notification") && r.restarts_1h >= 1)
    })
    .await;
}

/// `kpulse snapshot --prometheus URL`, the binary as a user runs it: payment's CPU and throttling.
async fn snapshot_reads_payment(h: &Harness, url: String, engine: &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sim_kubeconfig(h, dir.path());
    std::fs::write(dir.path().join("config.toml"), "metrics_interval_secs = 1\n").unwrap();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run(kpulse()
            .args(["snapshot", "-A", "--window", "4s", "--format", "json", "--prometheus", &url])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--config")
            .arg(dir.path().join("config.toml")))
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let payment = report["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["pod"].as_str().is_some_and(|p| p.starts_with("payment")))
        .unwrap_or_else(|| panic!("payment in the snapshot: {out}"));
    assert!(payment["cpu_millicores"].as_f64().is_some_and(|m| m > 50.0), "payment's CPU from {engine}: {payment}");
    assert!(payment["cpu_throttled_ratio"].as_f64().is_some(), "payment's throttling from {engine}: {payment}");
}

fn payment_starved(s: &State) -> bool {
    let payment: Vec<_> = s.container_table.rows.iter().filter(|r| r.pod.name.starts_with("payment")).collect();
    !payment.is_empty() && payment.iter().all(|r| r.throttle.is_some_and(|t| t > 0.25) && r.usage.cpu_m > 100.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoriametrics_gives_the_figures_prometheus_gives_over_the_same_scrapes() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let _clock = h.run_clock(1);
    let scrape = sim_scrape_config(&h);
    let Some((_vm, vm, _vm_dir)) = common::spawn_victoria_metrics(&scrape) else { return };
    let Some((_prom, prom, _prom_dir)) = spawn_prometheus(&scrape) else { return };
    // History before kpulse starts, for the back-fill to find: the back-fill asks for a point
    // every 15 s, so 30 s hold at least one well before the start.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let started = kpulse::model::time::now_unix();
    let mut from_vm = Kpulse::start_prometheus(&h, &format!("http://{vm}"), quick_queries()).await;
    let mut from_prom = Kpulse::start_prometheus(&h, &format!("http://{prom}"), quick_queries()).await;
    from_vm.wait_for("payment CPU-starved, from VictoriaMetrics", payment_starved).await;
    history_and_restarts(&mut from_vm, "VictoriaMetrics", started).await;
    from_prom.wait_for("payment CPU-starved, from Prometheus", payment_starved).await;
    from_vm
        .wait_for("the Prometheus source connected to VictoriaMetrics", |s| {
            s.sources.get(&SourceId::Prometheus).is_some_and(|p| p.state == SourceState::Connected)
        })
        .await;

    // The two read one second apart at most; both engines scraped the same targets each second.
    from_vm.drain();
    from_prom.drain();
    let (vm_figures, prom_figures) = (figures(&from_vm.state), figures(&from_prom.state));
    same_figures("VictoriaMetrics", &vm_figures, &prom_figures);
    snapshot_reads_payment(&h, format!("http://{vm}"), "VictoriaMetrics").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_reaches_victoriametrics_through_vmauth_and_is_never_printed() {
    const TOKEN: &str = "kpulse-test-token-7f3a9c";
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let _clock = h.run_clock(1);
    let Some((_vm, vm, dir)) = common::spawn_victoria_metrics(&sim_scrape_config(&h)) else { return };
    let Some(vmauth) = real_binary("vmauth", "apt-get install -y victoria-metrics") else { return };
    std::fs::write(
        dir.path().join("auth.yml"),
        format!("users:\n- bearer_token: \"{TOKEN}\"\n  url_prefix: \"http://{vm}\"\n"),
    )
    .unwrap();
    let auth = format!("127.0.0.1:{}", common::free_port());
    let _vmauth = common::KillOnDrop(
        std::process::Command::new(vmauth)
            .arg(format!("-auth.config={}", dir.path().join("auth.yml").display()))
            .arg(format!("-httpListenAddr={auth}"))
            .arg("-loggerLevel=ERROR")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("vmauth.log")).unwrap())
            .spawn()
            .expect("vmauth starts"),
    );
    common::wait_http_ok(&auth, "/health", "vmauth");
    sim_kubeconfig(&h, dir.path());
    std::fs::write(dir.path().join("config.toml"), "metrics_interval_secs = 1\n").unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let base = dir.path().to_path_buf();
    let snapshot = move |auth_args: Vec<String>| {
        let mut cmd = kpulse();
        cmd.args(["snapshot", "-A", "--window", "4s", "--format", "json", "--prometheus"])
            .arg(format!("http://{auth}"))
            .args(auth_args)
            .arg("--kubeconfig")
            .arg(base.join("kubeconfig"))
            .arg("--config")
            .arg(base.join("config.toml"));
        run(&mut cmd)
    };
    let prometheus = |out: &str| -> serde_json::Value {
        let report: serde_json::Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
        report["sources"].as_array().unwrap().iter().find(|s| s["source"] == "prometheus").cloned().unwrap()
    };

    // With the token from its file: answered. VictoriaMetrics needs a few scrapes before a rate.
    let token_file = vec!["--prometheus-bearer-token-file".to_string(), dir.path().join("token").display().to_string()];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let run = snapshot.clone();
        let args = token_file.clone();
        let (code, out, err) = tokio::task::spawn_blocking(move || run(args)).await.unwrap();
        assert_eq!(code, 0, "{err}");
        assert!(!out.contains(TOKEN) && !err.contains(TOKEN), "the token printed:\n{out}\n{err}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        let used = report["containers"].as_array().unwrap().iter().any(|c| c["cpu_millicores"].as_f64() > Some(0.0));
        if prometheus(&out)["state"] == "connected" && used {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no usage through vmauth: {}", prometheus(&out));
    }
    // The same token as a header works too; without one vmauth refuses, and kpulse says so.
    let header = vec!["--prometheus-header".to_string(), format!("Authorization: Bearer {TOKEN}")];
    let run_with = snapshot.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || run_with(header)).await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(prometheus(&out)["state"], "connected", "{}", prometheus(&out));
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN), "the token printed:\n{out}\n{err}");
    let run_without = snapshot.clone();
    let (_, out, err) = tokio::task::spawn_blocking(move || run_without(vec![])).await.unwrap();
    let refused = prometheus(&out);
    assert!(
        refused["reason"].as_str().is_some_and(|r| r.contains("HTTP 401")),
        "vmauth's refusal named: {refused}\n{err}"
    );
    // A token file that is not there is named as the reason; its would-be content never is.
    let missing = vec!["--prometheus-bearer-token-file".to_string(), "/no/such/token".to_string()];
    let (_, out, _) = tokio::task::spawn_blocking(move || snapshot(missing)).await.unwrap();
    let reason = prometheus(&out)["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("bearer token file /no/such/token: No such file"), "{reason}");
    // A token file and an Authorization header at once: which one was meant is not guessed.
    let (code, _, err) = run(kpulse().args([
        "snapshot",
        "--demo",
        "--prometheus-header",
        "Authorization: Bearer x",
        "--prometheus-bearer-token-file",
        "/no/such/token",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("give one") && !err.contains("Bearer x"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_answer_is_named_in_the_status_and_its_figures_kept() {
    // A Prometheus whose remote storage cannot be reached answers each query with what it has
    // and a warning: the shape of a Thanos or Mimir answer with a store down.
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let _clock = h.run_clock(1);
    let dead = format!("127.0.0.1:{}", common::free_port());
    let config =
        format!("{}remote_read:\n- url: http://{dead}/api/v1/read\n  read_recent: true\n", sim_scrape_config(&h));
    let Some((_prom, addr, _dir)) = spawn_prometheus(&config) else { return };
    let mut k = Kpulse::start_prometheus(&h, &format!("http://{addr}"), quick_queries()).await;
    k.wait_for("usage from the local part of the answer", |s| {
        s.container_table.rows.iter().any(|r| r.usage.cpu_m > 0.0)
    })
    .await;
    k.wait_for("the partial answer in the status", |s| {
        s.notices.iter().any(|(_, n)| {
            n.starts_with("prometheus answered in part: remote_read: error sending request") && n.contains(&dead)
        })
    })
    .await;
    k.wait_for("connected all the same", |s| {
        s.sources.get(&SourceId::Prometheus).is_some_and(|p| p.state == SourceState::Connected)
    })
    .await;
    // Said once while it lasts, not every round.
    tokio::time::sleep(Duration::from_secs(3)).await;
    k.drain();
    let said =
        k.log.iter().filter(|u| matches!(u, Update::Notice(n) if n.starts_with("prometheus answered in part"))).count();
    assert_eq!(said, 1, "{:?}", k.state.notices);
}

/// Thanos as scripts/thanos-assets.sh builds it (`KPULSE_THANOS_BIN`, else the cache), or `None`
/// (a failure under `KPULSE_REQUIRE_REAL`) naming the step that builds it.
fn thanos_binary() -> Option<std::path::PathBuf> {
    let from_env = std::env::var_os("KPULSE_THANOS_BIN").map(std::path::PathBuf::from);
    let cached = || {
        let root = std::env::var_os("KPULSE_K8S_CACHE")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/kpulse")))?;
        let mut found: Vec<_> = std::fs::read_dir(root)
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("thanos-"))
            .map(|e| e.path().join("bin/thanos"))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found.pop()
    };
    let found = from_env.filter(|p| p.is_file()).or_else(cached);
    if found.is_none() {
        let msg = "real component `thanos` is missing: build it with `scripts/thanos-assets.sh` (scripts/test.sh does)";
        assert!(std::env::var_os("KPULSE_REQUIRE_REAL").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    found
}

/// A Thanos component on loopback, its log in `dir`.
fn spawn_thanos(bin: &std::path::Path, dir: &std::path::Path, name: &str, args: &[String]) -> common::KillOnDrop {
    common::KillOnDrop(
        std::process::Command::new(bin)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("thanos {name} starts: {e}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thanos_query_over_two_prometheus_replicas_deduplicates_and_says_when_one_is_missing() {
    let Some(thanos) = thanos_binary() else { return };
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let _clock = h.run_clock(1);
    // Two Prometheus replicas of one job, told apart by an external label as in an HA pair; a
    // sidecar beside each serves its data to Thanos Query over gRPC.
    let mut replicas = Vec::new();
    let mut endpoints = Vec::new();
    for replica in ["a", "b"] {
        let config = sim_scrape_config(&h).replacen(
            "global:\n",
            &format!("global:\n  external_labels: {{replica: {replica}}}\n"),
            1,
        );
        let Some((prom, addr, dir)) = common::spawn_prometheus_with(&config, &[], tempfile::tempdir().unwrap()) else {
            return;
        };
        common::wait_http_ok(&addr, "/-/ready", "prometheus");
        let grpc = format!("127.0.0.1:{}", common::free_port());
        let sidecar = spawn_thanos(
            &thanos,
            dir.path(),
            "sidecar",
            &[
                "sidecar".into(),
                format!("--prometheus.url=http://{addr}"),
                format!("--tsdb.path={}", dir.path().join("data").display()),
                format!("--grpc-address={grpc}"),
                format!("--http-address=127.0.0.1:{}", common::free_port()),
            ],
        );
        endpoints.push(format!("--endpoint={grpc}"));
        replicas.push((prom, addr, dir, sidecar));
    }
    let query = format!("127.0.0.1:{}", common::free_port());
    let mut args = vec![
        "query".to_string(),
        format!("--http-address={query}"),
        format!("--grpc-address=127.0.0.1:{}", common::free_port()),
        "--query.replica-label=replica".into(),
    ];
    args.extend(endpoints);
    let _query = spawn_thanos(&thanos, replicas[0].2.path(), "query", &args);
    common::wait_http_ok(&query, "/-/ready", "thanos query");
    // History before kpulse starts, for the back-fill through the sidecars (see above).
    tokio::time::sleep(Duration::from_secs(30)).await;
    let started = kpulse::model::time::now_unix();

    let mut from_thanos = Kpulse::start_prometheus(&h, &format!("http://{query}"), quick_queries()).await;
    let mut from_prom = Kpulse::start_prometheus(&h, &format!("http://{}", replicas[0].1), quick_queries()).await;
    from_thanos
        .wait_for_within("payment CPU-starved, from Thanos Query", Duration::from_secs(60), payment_starved)
        .await;
    history_and_restarts(&mut from_thanos, "Thanos Query", started).await;
    from_prom.wait_for("payment CPU-starved, from one replica", payment_starved).await;
    from_thanos.drain();
    from_prom.drain();
    let (thanos_figures, prom_figures) = (figures(&from_thanos.state), figures(&from_prom.state));
    assert_eq!(
        thanos_figures.keys().collect::<std::collections::BTreeSet<_>>(),
        prom_figures.keys().collect(),
        "one row per container: the two replicas deduplicated"
    );
    same_figures("Thanos Query", &thanos_figures, &prom_figures);
    snapshot_reads_payment(&h, format!("http://{query}"), "Thanos Query").await;
    assert!(
        !from_thanos.state.notices.iter().any(|(_, n)| n.contains("answered in part")),
        "{:?}",
        from_thanos.state.notices
    );

    // Replica b's Prometheus goes down, its sidecar stays: Thanos answers from a, and warns.
    let (prom_b, _, _dir_b, _sidecar_b) = replicas.pop().unwrap();
    drop(prom_b);
    from_thanos
        .wait_for_within("Thanos' partial answer in the status", Duration::from_secs(60), |s| {
            s.notices.iter().any(|(_, n)| n.starts_with("prometheus answered in part:"))
        })
        .await;
    let notice =
        from_thanos.state.notices.iter().rev().find(|(_, n)| n.contains("answered in part")).unwrap().1.clone();
    eprintln!("with one replica's Prometheus down: {notice}");
    // Said once while it lasts, not every round.
    tokio::time::sleep(Duration::from_secs(4)).await;
    from_thanos.drain();
    let said = from_thanos
        .log
        .iter()
        .filter(|u| matches!(u, Update::Notice(n) if n.starts_with("prometheus answered in part")))
        .count();
    assert_eq!(said, 1, "{:?}", from_thanos.state.notices);
    let rows_before = from_thanos.state.container_table.rows.iter().filter(|r| r.usage.cpu_m.is_finite()).count();
    from_thanos
        .wait_for("usage from the replica that is up", |s| {
            s.sources.get(&SourceId::Prometheus).is_some_and(|p| p.state == SourceState::Connected)
                && s.container_table.rows.iter().filter(|r| r.usage.cpu_m.is_finite()).count() >= rows_before
        })
        .await;
}
