//! The Prometheus source against a real Prometheus (Debian `prometheus`) scraping the simulator's
//! cAdvisor endpoints on 127.0.0.1; and the failures a user meets: a query error, a Prometheus
//! that never answers, and garbage instead of JSON.

mod common;

use std::time::Duration;

use common::{
    Harness, KillOnDrop, Kpulse, kpulse, real_binary, run, sim_scrape_config, spawn_prometheus, spawn_prometheus_with,
};
use kpulse::demo::scenario::Scenario;
use kpulse::demo::server::{ServerOptions, spawn_clock};
use kpulse::model::promql::Queries;
use kpulse::sources::{SourceId, SourceState};

/// Starts Prometheus scraping every node's cAdvisor path and the kube-state-metrics endpoint on
/// the simulator, once a second.
fn start_prometheus(h: &Harness) -> Option<(KillOnDrop, String, tempfile::TempDir)> {
    spawn_prometheus(&sim_scrape_config(h))
}

fn sim_memory(h: &Harness, pod_prefix: &str) -> f64 {
    let sim = h.sim.lock().unwrap();
    let m = sim.pod_metrics(None).into_iter().find(|m| m.metadata.name.starts_with(pod_prefix)).unwrap();
    kpulse::model::quantity::parse_bytes(&m.containers[0].usage["memory"]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scraping_the_simulator_gives_usage_throttling_and_network() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let clock = tokio_util::sync::CancellationToken::new();
    spawn_clock(h.sim.clone(), 1, clock.clone());
    let Some((_prom, addr, _dir)) = start_prometheus(&h) else { return };
    // The default windows ([1m], [5m]) under-report until a series is a minute old (rate()
    // divides by the range): the same queries over 10 s windows make the test quick.
    let q = Queries::default();
    let queries = Queries {
        cpu: q.cpu.replace("[1m]", "[10s]"),
        throttle: q.throttle.replace("[5m]", "[10s]"),
        net_rx: q.net_rx.replace("[1m]", "[10s]"),
        net_tx: q.net_tx.replace("[1m]", "[10s]"),
        ..q
    };
    let mut k = Kpulse::start_prometheus(&h, &format!("http://{addr}"), queries).await;
    // Tolerance: a rate of a usage capped at the 150m limit, with up to 10 % noise below it
    // (and a third of it while the first samples of the window arrive).
    k.wait_for("payment CPU at its limit and throttled, from Prometheus", |s| {
        let payment: Vec<_> = s.container_table.rows.iter().filter(|r| r.pod.name.starts_with("payment")).collect();
        !payment.is_empty()
            && payment
                .iter()
                .all(|r| r.throttle.is_some_and(|t| t > 0.25) && r.usage.cpu_m > 100.0 && r.usage.cpu_m <= 151.0)
    })
    .await;
    k.wait_for("memory and network", |s| {
        s.container_table
            .rows
            .iter()
            .any(|r| r.pod.name.starts_with("catalog") && r.usage.mem.is_finite() && r.net.is_some())
    })
    .await;
    let catalog = k.state.container_table.rows.iter().find(|r| r.pod.name.starts_with("catalog")).unwrap().clone();
    let truth = sim_memory(&h, &catalog.pod.name);
    // Tolerance: the working set moves by at most a few percent between a scrape and now.
    assert!(
        (catalog.usage.mem - truth).abs() / truth < 0.05,
        "catalog memory {} vs simulator {truth}",
        catalog.usage.mem
    );
    assert_eq!(k.state.sources[&SourceId::Prometheus].state, SourceState::Connected);
    clock.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_kills_inside_running_containers_come_through_prometheus() {
    // catalog's workers are OOM-killed twice a (simulated) minute from 60 s; the simulator runs
    // 10×, so kills arrive every few seconds while kpulse reads Prometheus.
    let scenario = Scenario::load(std::path::Path::new("tests/scenarios/worker-oom-kills.toml")).unwrap();
    let h = Harness::start(scenario, ServerOptions::default()).await;
    let clock = tokio_util::sync::CancellationToken::new();
    spawn_clock(h.sim.clone(), 10, clock.clone());
    let Some((_prom, addr, _dir)) = start_prometheus(&h) else { return };
    let mut k = Kpulse::start_prometheus(&h, &format!("http://{addr}"), Queries::default()).await;
    k.wait_for("catalog's kills ranked, from Prometheus", |s| {
        s.hotspots.iter().any(|h| h.verdict() == "Processes OOM-killed" && h.subject.label().contains("catalog"))
    })
    .await;
    // Only the containers with kills are in the answer (`> 0`), as the source asks.
    let path = format!("/api/v1/query?{}", url_encode_query(&Queries::default().oom));
    let (status, body) = common::http_get(&addr, &path).unwrap();
    let answer = kpulse::model::promql::parse_response(body.as_bytes()).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        !answer.is_empty() && answer.iter().all(|s| s.metric.get("pod").is_some_and(|p| p.starts_with("catalog"))),
        "{body}"
    );
    assert!(
        k.state.hotspots.iter().all(|h| h.verdict() != "Processes OOM-killed" || h.subject.label().contains("catalog")),
        "{:?}",
        k.state.hotspots
    );
    clock.cancel();
}

fn url_encode_query(query: &str) -> String {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("query={encoded}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_state_metrics_history_dates_the_restarts_before_kpulse_started() {
    // The notification service crash-loops from the start; Prometheus records its restart counter
    // while the simulator runs 20× (about seven minutes of back-off in 20 s), then kpulse starts.
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let Some((_prom, addr, _dir)) = start_prometheus(&h) else { return };
    let clock = tokio_util::sync::CancellationToken::new();
    spawn_clock(h.sim.clone(), 20, clock.clone());
    tokio::time::sleep(Duration::from_secs(20)).await;
    clock.cancel();
    tokio::time::sleep(Duration::from_secs(2)).await; // a scrape of the final counts
    let started = kpulse::model::time::now_unix();
    let mut k = Kpulse::start_prometheus(&h, &format!("http://{addr}"), Queries::default()).await;
    // The back-fill: memory points from before kpulse started, out of Prometheus's history.
    k.wait_for("history back-filled from query_range", |s| {
        s.container_table
            .rows
            .iter()
            .any(|r| s.tracks.get(&r.pod, &r.container).is_some_and(|t| t.mem.points().any(|(at, _)| at < started - 5)))
    })
    .await;
    let is_notification = |r: &&kpulse::app::rows::ContainerRow| r.pod.name.starts_with("notification");
    k.wait_for("the notification row with its restarts", |s| {
        s.container_table.rows.iter().any(|r| is_notification(&r) && r.restarts > 2)
    })
    .await;
    // What Prometheus says, asked directly with the same query.
    let path = format!("/api/v1/query?{}", url_encode_query(&Queries::default().restarts_1h));
    let (_, body) = common::http_get(&addr, &path).unwrap();
    let answer = kpulse::model::promql::parse_response(body.as_bytes()).unwrap();
    let truth = answer
        .iter()
        .find(|s| s.metric.get("pod").is_some_and(|p| p.starts_with("notification")))
        .and_then(|s| s.value?.value)
        .unwrap_or_else(|| panic!("kube-state-metrics restarts in Prometheus: {body}"));
    assert!(truth >= 2.0, "the crash loop restarted while Prometheus watched: {truth}");
    eprintln!("kube-state-metrics: notification restarted {truth:.2} times in the last hour");
    // Tolerance: increase() extrapolates, and moves a little between the two reads; kpulse rounds.
    k.wait_for("restarts/1h from kube-state-metrics, not only the one kpulse saw", |s| {
        s.container_table
            .rows
            .iter()
            .filter(is_notification)
            .all(|r| (r.restarts_1h as f64 - truth).abs() <= 1.0 && r.restarts_1h >= 2)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_auto_is_found_and_queried_through_the_service_proxy() {
    let mut h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let clock = tokio_util::sync::CancellationToken::new();
    spawn_clock(h.sim.clone(), 1, clock.clone());
    let Some((_prom, addr, _dir)) = start_prometheus(&h) else { return };
    // What a kube-prometheus installation has: the operator's Service in front of Prometheus.
    h.sim.lock().unwrap().add_service(
        "monitoring",
        "prometheus-operated",
        "web",
        9090,
        kpulse::model::time::now_unix(),
    );
    h.options.prometheus_upstream = Some(addr.parse().unwrap());
    h.restart().await;
    let mut k = Kpulse::start_prometheus(&h, "auto", Queries::default()).await;
    k.wait_for("usage through the service proxy", |s| s.container_table.rows.iter().any(|r| r.usage.cpu_m.is_finite()))
        .await;
    assert!(k.state.notices.iter().any(|(_, n)| {
        n.contains("service proxy /api/v1/namespaces/monitoring/services/prometheus-operated:9090/proxy")
    }));
    assert!(h.requests_matching("/services/prometheus-operated:9090/proxy/api/v1/query") > 0);
    assert_eq!(h.non_get_requests(), vec![]);
    clock.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_error_from_a_real_prometheus_is_shown_with_its_text() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let Some((_prom, addr, _dir)) = start_prometheus(&h) else { return };
    let queries = Queries { cpu: "sum(rate(".into(), ..Queries::default() };
    let mut k = Kpulse::start_prometheus(&h, &format!("http://{addr}"), queries).await;
    k.wait_for("the parse error in the status", |s| {
        s.sources.get(&SourceId::Prometheus).is_some_and(|p| {
            p.state
                .reason()
                .is_some_and(|r| r.starts_with("cpu query: HTTP 400: bad_data:") && r.contains("parse error"))
        })
    })
    .await;
    // Pods and nodes are unaffected.
    k.wait_for("rows", |s| s.pods.synced() && s.nodes.len() == 3).await;
}

/// Fake endpoints for failures a real Prometheus cannot be made to produce on demand.
async fn misbehaving_server(answer: Option<&'static str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                match answer {
                    Some(body) => {
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = sock.write_all(resp.as_bytes()).await;
                    }
                    // Accept and never answer: a hung Prometheus.
                    None => tokio::time::sleep(Duration::from_secs(3600)).await,
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_prometheus_times_out_and_garbage_is_named() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let hung = misbehaving_server(None).await;
    let mut k = Kpulse::start_prometheus(&h, &hung, Queries::default()).await;
    k.wait_for("a timeout", |s| {
        s.sources.get(&SourceId::Prometheus).is_some_and(|p| p.state.reason().is_some_and(|r| r.contains("timed out")))
    })
    .await;
    k.wait_for("rows despite it", |s| s.pods.synced()).await;
    let garbage = misbehaving_server(Some("<html>502 Bad Gateway</html>")).await;
    let mut k = Kpulse::start_prometheus(&h, &garbage, Queries::default()).await;
    k.wait_for("bad JSON named", |s| {
        s.sources
            .get(&SourceId::Prometheus)
            .is_some_and(|p| p.state.reason().is_some_and(|r| r.contains("bad JSON from Prometheus")))
    })
    .await;
}

/// A CA and a server certificate for 127.0.0.1 made with openssl in `dir`: ca.pem, server.pem,
/// server.key.
fn make_certificates(dir: &std::path::Path) -> Option<()> {
    let openssl = real_binary("openssl", "apt-get install -y openssl")?;
    let step = |args: &[&str]| {
        let out = std::process::Command::new(&openssl).args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    step(
        &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2"]
            .into_iter()
            .chain(["-subj", "/CN=kpulse test CA"])
            .collect::<Vec<_>>(),
    );
    step(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    step(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ]);
    Some(())
}

/// The Prometheus source's row of a `snapshot --format json`.
fn prometheus_source(json: &str) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    report["sources"].as_array().unwrap().iter().find(|s| s["source"] == "prometheus").cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_prometheus_is_trusted_through_ssl_cert_file_and_refused_otherwise() {
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    let _clock = h.run_clock(1);
    let dir = tempfile::tempdir().unwrap();
    let Some(()) = make_certificates(dir.path()) else { return };
    let web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        dir.path().join("server.pem").display(),
        dir.path().join("server.key").display()
    );
    std::fs::write(dir.path().join("web.yml"), web).unwrap();
    let flags = [format!("--web.config.file={}", dir.path().join("web.yml").display())];
    let ca = dir.path().join("ca.pem");
    let Some((_prom, addr, dir)) = spawn_prometheus_with(&sim_scrape_config(&h), &flags, dir) else { return };
    common::sim_kubeconfig(&h, dir.path());
    std::fs::write(dir.path().join("config.toml"), "metrics_interval_secs = 1\n").unwrap();
    let base = dir.path().to_path_buf();
    let snapshot = move |trust: Option<std::path::PathBuf>| {
        let mut cmd = kpulse();
        cmd.args(["snapshot", "-A", "--window", "6s", "--format", "json", "--prometheus"])
            .arg(format!("https://{addr}"))
            .arg("--kubeconfig")
            .arg(base.join("kubeconfig"))
            .arg("--config")
            .arg(base.join("config.toml"))
            .env_remove("SSL_CERT_DIR");
        match trust {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        run(&mut cmd)
    };

    // Prometheus needs a few scrapes before a rate has two samples: retry for a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let trusted = loop {
        let run = snapshot.clone();
        let ca = ca.clone();
        let (code, out, err) = tokio::task::spawn_blocking(move || run(Some(ca))).await.unwrap();
        assert_eq!(code, 0, "{err}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        let used =
            report["containers"].as_array().unwrap().iter().any(|c| c["cpu_millicores"].as_f64().unwrap_or(0.0) > 0.0);
        if prometheus_source(&out)["state"] == "connected" && used {
            break out;
        }
        assert!(std::time::Instant::now() < deadline, "no usage over HTTPS: {}", prometheus_source(&out));
    };
    eprintln!("over HTTPS with SSL_CERT_FILE: {}", prometheus_source(&trusted));

    let (code, out, _) = tokio::task::spawn_blocking(move || snapshot(None)).await.unwrap();
    assert_eq!(code, 0);
    let refused = prometheus_source(&out);
    assert_ne!(refused["state"], "connected", "an unknown CA is not trusted: {refused}");
    let reason = refused["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("certificate not trusted"), "the reason names the certificate: {reason}");
    eprintln!("without it: {reason}");
}
