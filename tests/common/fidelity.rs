//! The simulator held to a real kubelet, on what kpulse relies on: the cAdvisor families it reads
//! (types, label sets, pod-level rows, timestamps), the pod status shapes of each trouble (running,
//! crash-looping, OOM-killed, unschedulable), Warning events' reasons, sources and messages, and
//! the pod log endpoint's behaviour. Each check compares shapes, not values: a difference means
//! the simulator drifted from the real thing and must be mended there.

// Each test binary uses part of the harness.
#![allow(dead_code)]
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kpulse::demo::scenario::Scenario;
use kpulse::demo::sim::Sim;
use kpulse::model::cadvisor::FAMILIES;
use kpulse::model::exposition::{Format, parse};
use kpulse::model::time::now_unix;
use kube::Api;
use kube::api::LogParams;
use serde_json::Value;

/// Every difference found, reported together by [`assert_no_differences`]: one run shows all
/// the ways the simulator drifted, not only the first.
static DIFFERENCES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn differ(what: String) {
    DIFFERENCES.lock().unwrap_or_else(|e| e.into_inner()).push(what);
}

macro_rules! check_eq {
    ($a:expr, $b:expr, $($what:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            differ(format!("{}:\n    real:      {:?}\n    simulator: {:?}", format!($($what)+), a, b));
        }
    }};
}

macro_rules! check {
    ($cond:expr, $($what:tt)+) => {{
        if !$cond {
            differ(format!($($what)+));
        }
    }};
}

/// Fails with every difference the checks above found.
pub fn assert_no_differences() {
    let found = std::mem::take(&mut *DIFFERENCES.lock().unwrap_or_else(|e| e.into_inner()));
    assert!(
        found.is_empty(),
        "the simulator differs from the real kubelet in {} ways:\n- {}",
        found.len(),
        found.join("\n- ")
    );
}

/// The shop scenario after its troubles have happened (crash loops, OOM kills, a pending pod).
pub fn shop_sim() -> Sim {
    let mut sim = Sim::new(Scenario::shop(), now_unix() - 400);
    sim.advance(400);
    sim
}

/// family → (TYPE, the label-name sets of its container rows, of its pod-level rows, whether
/// every sample is stamped).
type Families = BTreeMap<String, (String, BTreeSet<Vec<String>>, BTreeSet<Vec<String>>, bool)>;

fn families(text: &str) -> Families {
    let mut out: Families = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                out.entry(name.to_string())
                    .or_insert_with(|| (kind.to_string(), BTreeSet::new(), BTreeSet::new(), true))
                    .0 = kind.to_string();
            }
        }
    }
    parse(text, Format::Text, |s| {
        let names: Vec<String> =
            s.labels.iter().map(|(k, _)| k.to_string()).collect::<BTreeSet<_>>().into_iter().collect();
        let entry =
            out.entry(s.name.to_string()).or_insert_with(|| (String::new(), BTreeSet::new(), BTreeSet::new(), true));
        let pod = s.label("pod").unwrap_or("");
        let container = s.label("container").unwrap_or("");
        if !container.is_empty() {
            entry.1.insert(names);
        } else if !pod.is_empty() && s.label("image") == Some("") {
            entry.2.insert(names);
        }
        entry.3 &= s.timestamp_ms.is_some();
    });
    out
}

/// The cAdvisor exposition through the node proxy: every family kpulse reads has the same type,
/// container label sets and pod-level rows in both, every sample carries the kubelet's timestamp,
/// and every family the simulator serves exists on the real kubelet with the same type.
pub fn same_cadvisor(real_text: &str, sim: &Sim) {
    let node = sim.node_names().into_iter().next().expect("a simulated node");
    let sim_text = sim.cadvisor_exposition(&node).expect("the simulator's cAdvisor");
    let (real, simulated) = (families(real_text), families(&sim_text));
    for family in FAMILIES {
        let r = real.get(family).unwrap_or_else(|| panic!("the real kubelet serves {family}"));
        let s = simulated.get(family).unwrap_or_else(|| panic!("the simulator serves {family}"));
        check_eq!(r.0, s.0, "{family}: TYPE, real vs simulator");
        check_eq!(r.1, s.1, "{family}: the label names of container rows, real vs simulator");
        check_eq!(r.2, s.2, "{family}: the label names of pod-level rows (container=\"\"), real vs simulator");
        check!(r.3 && s.3, "{family}: every sample stamped (real {}, simulator {})", r.3, s.3);
    }
    for (family, (kind, ..)) in &simulated {
        let r = real.get(family).unwrap_or_else(|| panic!("the simulator serves {family}, the real kubelet does not"));
        check_eq!(&r.0, kind, "{family}: TYPE, real vs simulator");
    }
    // The root cgroup's rows, the node's usage: the same label names in both.
    let root = |text: &str, family: &str| {
        let mut names = BTreeSet::new();
        parse(text, Format::Text, |s| {
            if s.name == family && s.label("id") == Some("/") {
                names.insert(s.labels.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>());
            }
        });
        names
    };
    for family in ["container_cpu_usage_seconds_total", "container_memory_working_set_bytes"] {
        let (r, s) = (root(real_text, family), root(&sim_text, family));
        check!(!r.is_empty(), "{family}: the real kubelet serves the root cgroup's row (id=\"/\")");
        check_eq!(r, s, "{family}: the root cgroup's label names");
    }
    // The pause container: a row with container="" and the sandbox image, which kpulse must skip.
    for (who, text) in [("real", real_text), ("simulator", sim_text.as_str())] {
        let mut pause = 0;
        parse(text, Format::Text, |s| {
            if s.name == "container_memory_working_set_bytes"
                && s.label("container") == Some("")
                && s.label("image").is_some_and(|i| i.contains("pause"))
            {
                pause += 1;
            }
        });
        check!(pause > 0, "{who}: the pause containers' rows");
    }
}

fn pods_of(sim: &Sim) -> Vec<Value> {
    sim.pods_api.objects.values().map(|o| serde_json::from_slice(&o.json).expect("pod JSON")).collect()
}

fn events_of(sim: &Sim) -> Vec<Value> {
    sim.events_api.objects.values().map(|o| serde_json::from_slice(&o.json).expect("event JSON")).collect()
}

/// The JSON type at each path (`a.b.c`), "absent" where there is nothing.
fn shape(v: &Value, paths: &[&str]) -> BTreeMap<String, &'static str> {
    paths
        .iter()
        .map(|p| {
            let at = p.split('.').try_fold(v, |v, k| v.get(k));
            let kind = match at {
                None | Some(Value::Null) => "absent",
                Some(Value::Bool(_)) => "bool",
                Some(Value::Number(_)) => "number",
                Some(Value::String(_)) => "string",
                Some(Value::Array(_)) => "array",
                Some(Value::Object(_)) => "object",
            };
            (p.to_string(), kind)
        })
        .collect()
}

const CONTAINER_PATHS: &[&str] = &[
    "name",
    "ready",
    "started",
    "restartCount",
    "image",
    "imageID",
    "containerID",
    "state.running.startedAt",
    "state.waiting.reason",
    "state.waiting.message",
    "lastState.terminated.exitCode",
    "lastState.terminated.reason",
    "lastState.terminated.startedAt",
    "lastState.terminated.finishedAt",
    "lastState.terminated.containerID",
];

const POD_PATHS: &[&str] = &["phase", "podIP", "hostIP", "startTime", "qosClass", "conditions", "containerStatuses"];

/// A trouble's container status: the first container status of any pod that matches.
fn find_status<'a>(pods: &'a [Value], class: &str) -> Option<(&'a Value, &'a Value)> {
    pods.iter().find_map(|p| {
        let statuses = p["status"]["containerStatuses"].as_array()?;
        statuses.iter().find(|c| matches_class(c, class)).map(|c| (p, c))
    })
}

fn matches_class(c: &Value, class: &str) -> bool {
    let last = &c["lastState"]["terminated"]["reason"];
    match class {
        "running" => c["state"]["running"].is_object() && c["ready"] == true && c["restartCount"] == 0,
        // A real kubelet shows a crash loop's container waiting in CrashLoopBackOff or, for much
        // of a back-off, still terminated; the simulator only the former.
        "crash-loop" => {
            last == "Error"
                && (c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
                    || c["state"]["terminated"]["reason"] == "Error")
        }
        "oom-killed" => last == "OOMKilled",
        _ => false,
    }
}

/// `back-off 5m0s restarting failed container=C pod=P_NS(UID)` with the names and the duration
/// replaced, so only the form is compared; the duration must be Go's (`40s`, `1m20s`, `5m0s`).
fn backoff_form(message: &str, pod: &Value, container: &str) -> String {
    let meta = &pod["metadata"];
    let (name, ns, uid) =
        (meta["name"].as_str().unwrap(), meta["namespace"].as_str().unwrap(), meta["uid"].as_str().unwrap());
    let rest = message.strip_prefix("back-off ").unwrap_or_else(|| panic!("a back-off message: {message}"));
    let (duration, rest) = rest.split_once(' ').unwrap();
    check!(is_go_duration(duration), "the back-off is a Go duration: {message}");
    format!("back-off D {rest}")
        .replace(&format!("{name}_{ns}({uid})"), "P_NS(UID)")
        .replace(&format!("container={container} "), "container=C ")
}

fn is_go_duration(d: &str) -> bool {
    let Some(body) = d.strip_suffix('s') else { return false };
    match body.split_once('m') {
        Some((m, s)) => m.parse::<u32>().is_ok_and(|m| m > 0) && s.parse::<u32>().is_ok_and(|s| s < 60),
        None => body.parse::<u32>().is_ok_and(|s| s < 60),
    }
}

fn digits_as_n(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// Pod statuses: the same fields of the same types for each trouble, the same conditions, the same
/// back-off message form, and the unschedulable pod's condition and message form.
pub fn same_pod_statuses(real: &Value, sim: &Sim) {
    let real_pods: Vec<Value> = real["items"].as_array().unwrap().clone();
    let sim_pods = pods_of(sim);
    for class in ["running", "crash-loop", "oom-killed"] {
        let (rp, rc) = find_status(&real_pods, class).unwrap_or_else(|| panic!("a real {class} container"));
        let (sp, sc) = find_status(&sim_pods, class).unwrap_or_else(|| panic!("a simulated {class} container"));
        let waiting = rc["state"]["waiting"].is_object();
        if class == "crash-loop" && !waiting {
            eprintln!("fidelity: the real crash loop is terminated between restarts; its state shape is not compared");
        }
        let paths: Vec<&str> = if class == "oom-killed" || !waiting {
            CONTAINER_PATHS.iter().copied().filter(|p| !p.starts_with("state.")).collect()
        } else {
            CONTAINER_PATHS.to_vec()
        };
        check_eq!(
            shape(rc, &paths),
            shape(sc, &paths),
            "{class}: container status fields, real vs simulator\nreal: {rc}\nsimulator: {sc}"
        );
        check_eq!(shape(&rp["status"], POD_PATHS), shape(&sp["status"], POD_PATHS), "{class}: pod status fields");
        let types = |p: &Value| -> Vec<String> {
            p["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["type"].as_str().unwrap().to_string())
                .collect()
        };
        check_eq!(types(rp), types(sp), "{class}: the pod's condition types, in order");
        check_eq!(
            rc["lastState"]["terminated"]["exitCode"],
            sc["lastState"]["terminated"]["exitCode"],
            "{class}: exit code"
        );
        if class == "crash-loop" && waiting {
            let form = |p: &Value, c: &Value| {
                backoff_form(c["state"]["waiting"]["message"].as_str().unwrap(), p, c["name"].as_str().unwrap())
            };
            check_eq!(form(rp, rc), form(sp, sc), "the CrashLoopBackOff message");
        }
    }
    let pending = |pods: &[Value]| -> Value {
        pods.iter()
            .find(|p| p["status"]["phase"] == "Pending" && p["spec"]["nodeName"].is_null())
            .cloned()
            .expect("an unscheduled pod")
    };
    let (rp, sp) = (pending(&real_pods), pending(&sim_pods));
    check_eq!(shape(&rp["status"], POD_PATHS), shape(&sp["status"], POD_PATHS), "unschedulable: pod status fields");
    let condition = |p: &Value| {
        let c = &p["status"]["conditions"];
        (
            c.as_array().unwrap().len(),
            c[0]["type"].clone(),
            c[0]["status"].clone(),
            c[0]["reason"].clone(),
            digits_as_n(c[0]["message"].as_str().unwrap()),
        )
    };
    check_eq!(condition(&rp), condition(&sp), "unschedulable: the PodScheduled condition and its message form");
}

/// Warning events of the reasons both have: the same type, involved kind, source, reporting
/// component and instance, and the same message form.
pub fn same_events(real: &Value, sim: &Sim) {
    let real_events: Vec<Value> =
        real["items"].as_array().unwrap().iter().filter(|e| e["type"] == "Warning").cloned().collect();
    let sim_events = events_of(sim);
    let form = |e: &Value| {
        let who = |k: &str| if e[k].as_str().is_some_and(|s| !s.is_empty()) { "set" } else { "absent" };
        let message = e["message"].as_str().unwrap_or_default();
        let message_form = match e["reason"].as_str() {
            Some("BackOff") => {
                let name = e["involvedObject"]["name"].as_str().unwrap();
                let ns = e["involvedObject"]["namespace"].as_str().unwrap();
                let pod_part = message.split(" in pod ").nth(1).unwrap_or_default();
                check!(
                    pod_part.starts_with(&format!("{name}_{ns}(")),
                    "BackOff names the pod as kubelet does: {message}"
                );
                "Back-off restarting failed container C in pod P_NS(UID)".to_string()
            }
            Some("FailedScheduling") => digits_as_n(message),
            Some("Unhealthy") => message.split_once(": ").map(|(p, _)| p.to_string()).unwrap_or_default(),
            _ => String::new(),
        };
        (
            e["type"].clone(),
            e["involvedObject"]["kind"].clone(),
            e["source"]["component"].as_str().map(String::from),
            who("reportingComponent"),
            e["reportingComponent"].clone(),
            who("reportingInstance"),
            message_form,
        )
    };
    let by_reason = |events: &[Value]| -> BTreeMap<String, Value> {
        events.iter().map(|e| (e["reason"].as_str().unwrap_or_default().to_string(), e.clone())).collect()
    };
    let (real_by, sim_by) = (by_reason(&real_events), by_reason(&sim_events));
    let shared: Vec<&String> = sim_by.keys().filter(|r| real_by.contains_key(*r)).collect();
    for needed in ["BackOff", "FailedScheduling"] {
        check!(
            shared.iter().any(|r| *r == needed),
            "both have {needed} events (real {:?}, simulator {:?})",
            real_by.keys(),
            sim_by.keys()
        );
    }
    for reason in shared {
        check_eq!(
            form(&real_by[reason]),
            form(&sim_by[reason]),
            "{reason} events, real vs simulator:\nreal: {}\nsimulator: {}",
            real_by[reason],
            sim_by[reason]
        );
    }
}

/// What one log request gives: Ok(lines) or Err((code, message form)).
async fn log_answer(api: &Api<Pod>, pod: &str, params: &LogParams) -> Result<Vec<String>, (u16, String)> {
    match api.logs(pod, params).await {
        Ok(text) => Ok(text.lines().map(String::from).collect()),
        Err(kube::Error::Api(s)) => Err((s.code, s.message.replace(pod, "P"))),
        Err(e) => panic!("log request failed outside the API: {e}"),
    }
}

/// The pod log endpoint as kpulse uses it, on the real kubelet and the simulator's gateway pod:
/// RFC 3339 stamps with nanoseconds, tailLines, sinceTime in the future, an unknown container,
/// and `follow` delivering a fresh line on an open stream.
pub async fn same_log_endpoint(real: kube::Client, ns: &str, pod: &str, container: &str) {
    let harness = crate::common::Harness::start(Scenario::shop(), Default::default()).await;
    let sim_client = harness.client().await;
    let sim_pod = {
        let sim = harness.sim.lock().unwrap();
        pods_of(&sim)
            .into_iter()
            .find(|p| p["metadata"]["namespace"] == "ingress-nginx")
            .and_then(|p| p["metadata"]["name"].as_str().map(String::from))
            .expect("the simulator's gateway pod")
    };
    harness.sim.lock().unwrap().advance(20);
    let sides = [
        ("real", Api::<Pod>::namespaced(real, ns), pod.to_string()),
        ("simulator", Api::<Pod>::namespaced(sim_client, "ingress-nginx"), sim_pod),
    ];
    let mut answers = Vec::new();
    for (who, api, name) in &sides {
        let with = |f: &dyn Fn(&mut LogParams)| {
            let mut p = LogParams { container: Some(container.into()), ..LogParams::default() };
            f(&mut p);
            p
        };
        let stamped = log_answer(
            api,
            name,
            &with(&|p| {
                p.timestamps = true;
                p.tail_lines = Some(3);
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("{who}: stamped log lines: {e:?}"));
        check_eq!(stamped.len(), 3, "{who}: tailLines=3 gives three lines: {stamped:?}");
        for line in &stamped {
            let (ts, _) = line.split_once(' ').unwrap_or_else(|| panic!("{who}: a stamp then the line: {line}"));
            let fraction = ts.split_once('.').map(|(_, f)| f.trim_end_matches('Z').len());
            check_eq!(fraction, Some(9), "{who}: RFC 3339 with nanoseconds, as the kubelet stamps: {line}");
            check!(kpulse::sources::gateway::split_timestamp(line).is_some(), "{who}: kpulse reads the stamp: {line}");
        }
        let future = log_answer(
            api,
            name,
            &with(&|p| {
                p.since_time = "2099-01-01T00:00:00Z".parse().ok();
            }),
        )
        .await;
        let unknown =
            log_answer(api, name, &LogParams { container: Some("no-such-container".into()), ..LogParams::default() })
                .await;
        answers.push((future, unknown));

        // follow: the stream stays open and a fresh line arrives.
        let stream = api
            .log_stream(
                name,
                &with(&|p| {
                    p.follow = true;
                    p.since_seconds = Some(1);
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("{who}: follow: {e}"));
        let mut lines = stream.lines();
        let fresh = tokio::time::timeout(Duration::from_secs(20), async {
            if who == &"simulator" {
                harness.sim.lock().unwrap().advance(2);
            }
            lines.next().await
        })
        .await;
        check!(matches!(fresh, Ok(Some(Ok(_)))), "{who}: a followed log delivers new lines: {fresh:?}");
    }
    let (real_answers, sim_answers) = (&answers[0], &answers[1]);
    check_eq!(real_answers.0, Ok(vec![]), "real: sinceTime in the future gives nothing");
    check_eq!(real_answers.0, sim_answers.0, "sinceTime in the future, real vs simulator");
    check_eq!(real_answers.1, sim_answers.1, "an unknown container, real vs simulator");
}

/// The kubelet's `/metrics/resource` (what kpulse reads each round; cAdvisor only once a minute):
/// the families kpulse reads exist in both, and every family the simulator serves exists on the
/// real kubelet with the same type and label names.
pub fn same_resource_metrics(real_text: &str, sim: &Sim) {
    let node = sim.node_names().into_iter().next().expect("a simulated node");
    let sim_text = sim.resource_exposition(&node).expect("the simulator's resource metrics");
    let label_sets = |text: &str| {
        let mut out: BTreeMap<String, (String, BTreeSet<Vec<String>>)> = BTreeMap::new();
        for line in text.lines() {
            if let Some((name, kind)) = line.strip_prefix("# TYPE ").and_then(|r| r.split_once(' ')) {
                out.entry(name.to_string()).or_default().0 = kind.trim().to_string();
            }
        }
        parse(text, Format::Text, |s| {
            let names: BTreeSet<String> = s.labels.iter().map(|(k, _)| k.to_string()).collect();
            out.entry(s.name.to_string()).or_default().1.insert(names.into_iter().collect());
        });
        out
    };
    let (real, simulated) = (label_sets(real_text), label_sets(&sim_text));
    for family in [
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "node_cpu_usage_seconds_total",
        "node_memory_working_set_bytes",
    ] {
        check!(real.contains_key(family), "the real kubelet's /metrics/resource serves {family}");
        check!(simulated.contains_key(family), "the simulator's /metrics/resource serves {family}");
    }
    for (family, (kind, labels)) in &simulated {
        match real.get(family) {
            None => differ(format!("the simulator's /metrics/resource serves {family}, the real kubelet does not")),
            Some((real_kind, real_labels)) => {
                check_eq!(real_kind, kind, "/metrics/resource {family}: TYPE, real vs simulator");
                check_eq!(real_labels, labels, "/metrics/resource {family}: label names, real vs simulator");
            }
        }
    }
}

/// Asked for gzip through the node proxy, the kubelet answers gzipped and the API server passes
/// it on, as the simulator does: (plain bytes, gzipped bytes) of the real answer.
pub async fn gzipped_through_the_node_proxy(client: &kube::Client, path: &str) -> (usize, usize) {
    use http_body_util::BodyExt;
    let request = http::Request::get(path)
        .header(http::header::ACCEPT_ENCODING, "gzip")
        .body(kube::client::Body::empty())
        .unwrap();
    let answer = client.send(request).await.expect("the node proxy answers");
    let encoding = answer.headers().get(http::header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("").to_string());
    let compressed = answer.into_body().collect().await.expect("the body").to_bytes();
    check_eq!(encoding.as_deref(), Some("gzip"), "{path}: Content-Encoding when asked for gzip");
    let plain = kpulse::sources::http::gunzip(&compressed, 64 << 20).map_or(0, |b| b.len());
    (plain, compressed.len())
}
