//! The scenario suite: each file in tests/scenarios/ injects one or two faults into the simulated
//! cluster at a known time and names the culprit kpulse must rank first. Each is played through
//! the real binary (`kpulse snapshot --demo --scenario FILE --format json`), and the report says
//! whether and how soon after the fault the culprit got to the top. Also: snapshot against a
//! cluster served over HTTP (the simulator's API server), the three formats and --fail-on.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{kpulse, run};

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/scenarios exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn snapshot_json(args: &[&str]) -> Value {
    let (code, out, err) = run(kpulse().args(["snapshot", "--format", "json"]).args(args));
    assert_eq!(code, 0, "snapshot {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("snapshot {args:?} printed no JSON ({e}):\n{out}"))
}

#[test]
fn every_scenario_ranks_its_culprit_first_in_time() {
    let files = scenario_files();
    let with_faults = files.iter().filter(|f| !f.ends_with("healthy.toml")).count();
    assert!(with_faults >= 12, "the suite has at least 12 fault scenarios, found {with_faults}");
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let json = snapshot_json(&["--demo", "--scenario", file.to_str().unwrap()]);
        assert_eq!(json["schema"], "kpulse.snapshot/v1");
        let hotspots = json["hotspots"].as_array().expect("hotspots is a list");
        let Some(expect) = json["scenario"]["expectation"].as_object() else {
            // A healthy control: nothing may be reported, at the end or at any step before.
            assert!(hotspots.is_empty(), "{name}: a healthy shop has no hotspot, got {hotspots:#?}");
            let changes = json["scenario"]["top_changes"].as_array().unwrap();
            assert!(
                changes.iter().all(|c| c["subject"] == ""),
                "{name}: something ranked during the play: {changes:#?}"
            );
            report.push(format!("{name:<28} no hotspot at any step (control)"));
            continue;
        };
        let culprit = expect["culprit"].as_str().unwrap();
        let top = &hotspots.first().unwrap_or_else(|| panic!("{name}: no hotspot at all"));
        let label = top["label"].as_str().unwrap();
        let verdict = top["verdict"].as_str().unwrap();
        let after = expect["ranked_first_after_secs"].as_i64();
        report.push(format!(
            "{name:<28} {label} — {verdict}; first after {} s (allowed {} s)",
            after.map_or("never".into(), |a| a.to_string()),
            expect["within_secs"]
        ));
        let verdict_ok = expect["verdict"].as_str().is_none_or(|v| verdict.starts_with(v));
        if !label.starts_with(culprit) || !verdict_ok || expect["met"] != true {
            failures.push(format!(
                "{name}: expected {culprit} ({}) first within {} s; top is {label} ({verdict}), first after {after:?}\n  changes: {}",
                expect["verdict"],
                expect["within_secs"],
                json["scenario"]["top_changes"]
            ));
        }
        // The evidence is words with numbers, not a bare label.
        let evidence = top["evidence"].as_array().unwrap();
        assert!(
            !evidence.is_empty() && evidence.iter().all(|e| e.as_str().is_some_and(|e| e.len() > 10)),
            "{name}: {top:#}"
        );
    }
    let faulty = report.iter().filter(|r| !r.contains("(control)")).count();
    eprintln!(
        "scenario suite (precision at 1: {} of {faulty} fault scenarios):\n  {}",
        faulty - failures.len(),
        report.join("\n  ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fail_on_exits_3_when_a_hotspot_reaches_the_score_and_0_otherwise() {
    let shop = ["snapshot", "--demo", "--window", "120s", "--fail-on"];
    let (code, out, err) = run(kpulse().args(shop).arg("50"));
    assert_eq!(code, 3, "the shop has hotspots above 50: {err}");
    assert!(out.contains("HOTSPOTS") && err.contains("--fail-on 50"), "{out}\n{err}");
    let healthy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/healthy.toml");
    let (code, out, _) =
        run(kpulse().args(["snapshot", "--demo", "--scenario", healthy.to_str().unwrap(), "--fail-on", "1"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("none: nothing looks like a bottleneck"), "{out}");
    let (code, _, err) = run(kpulse().args(["snapshot", "--demo", "--fail-on", "101"]));
    assert_eq!(code, 2, "a score above 100 is a usage error: {err}");
    let (code, _, err) = run(kpulse().args(["snapshot", "--demo", "--format", "yaml"]));
    assert_eq!(code, 2);
    assert!(err.contains("table, json or markdown"), "{err}");
}

/// Simulated time never reads the wall clock: one scenario played twice, at moments whose
/// phase within a 10-second traffic slice differs, gives the same report to the byte.
#[test]
fn a_scenario_played_twice_at_different_moments_gives_identical_json() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/event-consumer-lag.toml");
    let args = ["snapshot", "--format", "json", "--demo", "--scenario", file.to_str().unwrap()];
    let (_, first, _) = run(kpulse().args(args));
    std::thread::sleep(Duration::from_millis(3_700));
    let (_, second, _) = run(kpulse().args(args));
    assert!(!first.is_empty());
    assert!(first == second, "two plays differ:\n{first}\n---\n{second}");
}

#[test]
fn markdown_and_table_carry_the_same_ranking_as_json() {
    let json = snapshot_json(&["--demo", "--window", "120s"]);
    let first = json["hotspots"][0]["label"].as_str().unwrap().to_string();
    let (_, md, _) = run(kpulse().args(["snapshot", "--demo", "--window", "120s", "--format", "markdown"]));
    assert!(
        md.contains("## Hotspots") && md.contains(&format!("1. **{}** `{first}`", json["hotspots"][0]["score"])),
        "{md}"
    );
    assert!(md.contains("| NAMESPACE | POD/CONTAINER |"), "{md}");
    let (_, table, _) = run(kpulse().args(["snapshot", "--demo", "--window", "120s"]));
    assert!(table.lines().any(|l| l.starts_with(" 1.") && l.contains(&first)), "{table}");
    // Every container is listed, and the JSON numbers are numbers.
    let containers = json["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 18, "the shop has 18 containers");
    assert!(containers.iter().any(|c| c["cpu_throttled_ratio"].as_f64().is_some_and(|t| t > 0.25)), "{containers:#?}");
}

/// `kpulse snapshot` against a cluster: the simulator's API server over HTTP, the same sources
/// as the dashboard (pods, nodes, events, cAdvisor through the node proxy, the gateway's pod log).
#[test]
fn snapshot_of_a_cluster_collects_for_the_window_then_reports() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let mut server = kpulse()
        .args(["demo", "--serve", "--speed", "10", "--kubeconfig-out", kc.to_str().unwrap()])
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !kc.exists() {
        assert!(Instant::now() < deadline, "the demo server wrote no kubeconfig");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let (code, out, err) = run(kpulse().args([
        "snapshot",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "-A",
        "--window",
        "8s",
        "--format",
        "json",
    ]));
    let took = started.elapsed();
    let served = sim_api_traffic(&kc);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, 0, "{err}");
    assert!(took >= Duration::from_secs(8), "it collected for the whole window: {took:?}");
    assert!(err.contains("collecting for 8s"), "{err}");
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(json["window_secs"], 8);
    assert!(json.get("scenario").is_none(), "no scenario block outside --demo");
    assert!(json["containers"].as_array().unwrap().len() >= 18, "{out}");
    let sources: Vec<&str> =
        json["sources"].as_array().unwrap().iter().map(|s| s["source"].as_str().unwrap()).collect();
    assert!(sources.contains(&"pods") && sources.contains(&"gateway"), "{sources:?}");
    let labels: Vec<&str> = json["hotspots"].as_array().unwrap().iter().map(|h| h["label"].as_str().unwrap()).collect();
    assert!(labels.iter().any(|l| l.starts_with("shop/notification-")), "the crash loop is found live: {labels:?}");
    assert!(labels.iter().any(|l| l.starts_with("shop/search-0/")), "the pending pod is found live: {labels:?}");
    // What kpulse says it asked of the API server is what the server counted (the server also
    // saw the last second, after kpulse's last count).
    let cost = &json["api_cost"];
    let by_kind = |v: &Value, kind: &str| -> (u64, u64) {
        let k = &v["by_kind"];
        let entry = k.as_array().map_or(&k[kind], |a| a.iter().find(|e| e["kind"] == kind).unwrap());
        (entry["requests"].as_u64().unwrap(), entry["bytes"].as_u64().unwrap())
    };
    let (scrapes, scrape_bytes) = by_kind(cost, "node proxy");
    let (served_scrapes, served_bytes) = by_kind(&served, "node proxy");
    assert!(scrapes >= 3 && scrapes <= served_scrapes, "{cost:#} vs {served:#}");
    assert!(scrape_bytes * 10 >= served_bytes * 7 && scrape_bytes <= served_bytes, "{cost:#} vs {served:#}");
    let requests = cost["requests"].as_u64().unwrap();
    assert!(requests * 10 >= served["requests"].as_u64().unwrap() * 7, "{cost:#} vs {served:#}");
}

/// The simulator's own count of what its clients asked (`GET /sim/api-traffic`).
fn sim_api_traffic(kubeconfig: &std::path::Path) -> Value {
    use std::io::{Read, Write};
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let server = text.lines().find_map(|l| l.trim().strip_prefix("server: http://")).unwrap().to_string();
    let mut stream = std::net::TcpStream::connect(&server).unwrap();
    write!(stream, "GET /sim/api-traffic HTTP/1.0\r\nHost: {server}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}
