//! Scenarios are data: nodes, services, a load curve and faults with start times. The format is
//! documented at the top of demo/scenarios/shop.toml, the built-in default.

use serde::Deserialize;

use crate::model::quantity::{parse_bytes, parse_cpu_millis};

/// The most pods a scenario (or `--pods`) may ask for: ten times the scale target, so a typo
/// (`--pods 10000000`) is refused instead of filling memory.
pub const MAX_PODS: u32 = 100_000;

/// The most nodes a scenario may ask for (5,000 is Kubernetes' own documented limit).
const MAX_NODES: u64 = 5_000;

/// A rate, a share or a size must be a plain number, 0 or more: NaN or a negative value would
/// spread through every derived figure.
fn non_negative(what: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(format!("{what} must be a number of 0 or more, not {value}"))
    }
}

pub const SHOP: &str = include_str!("../../demo/scenarios/shop.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub nodes: Vec<NodeSpec>,
    pub services: Vec<ServiceSpec>,
    pub load: LoadSpec,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Broker queues between services (served as RabbitMQ's per-object exposition).
    #[serde(default)]
    pub queues: Vec<QueueSpec>,
    /// How the mesh sidecars write their access log, as Istio's `meshConfig.accessLogEncoding`
    /// says: its default text line, or its JSON object.
    #[serde(default)]
    pub mesh_log_encoding: MeshLogEncoding,
    /// For the scenario suite: the hotspot that must rank first, and how soon.
    #[serde(default)]
    pub expect: Option<Expectation>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub enum MeshLogEncoding {
    #[default]
    #[serde(rename = "TEXT", alias = "text")]
    Text,
    #[serde(rename = "JSON", alias = "json")]
    Json,
}

/// A queue: every request the producer serves publishes `per_request` messages; the consumer's
/// pods take them as fast as their CPU allows (`cpu_per_rps_m` per message a second).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    pub name: String,
    pub producer: String,
    pub consumer: String,
    #[serde(default = "default_per_request")]
    pub per_request: f64,
}

fn default_per_request() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// A prefix of the first hotspot's label: `shop/payment-` (a container of those pods),
    /// `svc shop/order`, `node node-b`, `gateway`.
    pub culprit: String,
    /// A prefix of its verdict, e.g. `CPU-starved`.
    pub verdict: Option<String>,
    /// Words one line of its evidence must hold, e.g. the path of a dependency chain.
    pub evidence: Option<String>,
    /// Seconds after the first fault's onset by which it must rank first (and stay there).
    pub within_secs: i64,
    /// Simulated seconds `kpulse snapshot --demo` plays when no --window is given.
    #[serde(default = "default_play_secs")]
    pub play_secs: i64,
}

fn default_play_secs() -> i64 {
    300
}

fn default_seed() -> u64 {
    42
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    pub cpu: String,
    pub memory: String,
    #[serde(default = "default_max_pods")]
    pub pods: u32,
    /// Replicate this node as name-1 … name-N.
    #[serde(default)]
    pub count: Option<u32>,
}

fn default_max_pods() -> u32 {
    110
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    pub namespace: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    pub replicas: u32,
    pub image: String,
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
    #[serde(default)]
    pub share: f64,
    #[serde(default)]
    pub base_cpu_m: f64,
    #[serde(default)]
    pub cpu_per_rps_m: f64,
    #[serde(default = "default_base_memory")]
    pub base_memory: String,
    #[serde(default)]
    pub memory_per_rps: f64,
    #[serde(default)]
    pub sidecars: Vec<String>,
    /// The API gateway: its pods write an ingress-nginx access log line per request.
    #[serde(default)]
    pub gateway: bool,
    /// Upstream latency at rest, in milliseconds; it climbs as the service saturates.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: f64,
    /// Services (by name) each of its requests calls in turn, through the mesh: they serve its
    /// load too, and their time adds to its own. Every service in a call has an `istio-proxy`
    /// sidecar that logs its outbound calls.
    #[serde(default)]
    pub calls: Vec<String>,
}

pub use crate::model::mesh::{MESH_LABEL, SIDECAR as MESH_SIDECAR};

/// Calls one request may make down a scenario's call graph (each logged by a sidecar).
const MAX_CALLS_PER_REQUEST: u64 = 64;

fn default_latency_ms() -> f64 {
    12.0
}

fn default_kind() -> String {
    "Deployment".into()
}

fn default_base_memory() -> String {
    "64Mi".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    pub base_rps: f64,
    #[serde(default = "default_period")]
    pub period_secs: f64,
    #[serde(default)]
    pub amplitude: f64,
}

fn default_period() -> f64 {
    600.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: FaultKind,
    pub service: Option<String>,
    #[serde(default)]
    pub start_secs: i64,
    pub mib_per_min: Option<f64>,
    pub factor: Option<f64>,
    pub cpu_m: Option<f64>,
    pub node: Option<String>,
    /// Milliseconds added to each request (slow_dependency: upstream time; gateway_saturation:
    /// the gateway's own time).
    pub extra_ms: Option<f64>,
    /// scale_out: pods added; scale_in: pods removed.
    pub replicas: Option<u32>,
    /// One container of the pods (a sidecar by name) instead of the app: memory_leak and
    /// crash_loop only.
    pub container: Option<String>,
    /// With `rollout`: only this many pods of the new version, beside the old ones (a canary, or
    /// a rollout in progress), instead of every pod replaced.
    pub surge: Option<u32>,
    /// The fault arrives with a new version: image_pull adds one surge pod of it (the rollout
    /// stalls), other kinds replace every pod.
    #[serde(default)]
    pub rollout: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    MemoryLeak,
    CrashLoop,
    ImagePull,
    LoadSpike,
    CpuHog,
    NodePressure,
    /// The service waits on something downstream: slower answers, no more CPU.
    SlowDependency,
    /// The gateway itself is the bottleneck: its own time per request grows (`cpu_m` adds CPU
    /// demand to its pods).
    GatewaySaturation,
    /// One replica gets `factor` of the service's requests.
    UnevenLoad,
    /// `replicas` more pods than fit.
    ScaleOut,
    /// `replicas` fewer pods (the newest go, none replaced), the load unchanged.
    ScaleIn,
    /// One replica (the first by name) fails its readiness probe 12 s of every 30.
    ReadinessFlapping,
    /// `node`'s disk fills: DiskPressure, and its kubelet evicts a pod every 20 s.
    DiskPressure,
    /// `factor` of the service's answers are 500s.
    ErrorBurst,
    /// The kernel OOM-kills `factor` worker processes a minute in each pod; the main process
    /// restarts them and the container keeps running (nothing shows in the pod's status).
    WorkerOomKills,
}

impl Scenario {
    pub fn shop() -> Scenario {
        Scenario::parse(SHOP).expect("the built-in shop scenario is valid")
    }

    pub fn parse(text: &str) -> Result<Scenario, String> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        s.add_mesh_sidecars();
        Ok(s)
    }

    /// Whether a service calls or is called: its pods carry the mesh sidecar.
    pub fn in_mesh(&self, service: &str) -> bool {
        self.services.iter().any(|s| (s.name == service && !s.calls.is_empty()) || s.calls.iter().any(|c| c == service))
    }

    fn add_mesh_sidecars(&mut self) {
        let meshed: Vec<bool> = self.services.iter().map(|s| self.in_mesh(&s.name)).collect();
        for (s, meshed) in self.services.iter_mut().zip(meshed) {
            if meshed && !s.sidecars.iter().any(|c| c == MESH_SIDECAR) {
                s.sidecars.push(MESH_SIDECAR.into());
            }
        }
    }

    /// Calls name known services, none the gateway, and never loop (a request would never end).
    fn validate_calls(&self) -> Result<(), String> {
        let index = |name: &str| self.services.iter().position(|s| s.name == name);
        for s in &self.services {
            for callee in &s.calls {
                let Some(i) = index(callee) else {
                    return Err(format!("service {} calls unknown service {callee:?}", s.name));
                };
                if self.services[i].gateway || s.gateway {
                    return Err(format!("service {} calls {callee}: the gateway is not part of the mesh", s.name));
                }
            }
        }
        // Depth-first, each service once: one met again on the current path closes a loop.
        // Along the way, how many calls one request makes downstream (every path counted):
        // the simulator writes a log line per call, so a dense graph must not explode.
        fn visit(s: &Scenario, at: usize, path: &mut Vec<usize>, calls: &mut [Option<u64>]) -> Result<u64, String> {
            if let Some(start) = path.iter().position(|&p| p == at) {
                let names: Vec<&str> =
                    path[start..].iter().chain([&at]).map(|&i| s.services[i].name.as_str()).collect();
                return Err(format!("services call each other in a loop: {}", names.join(" → ")));
            }
            if let Some(n) = calls[at] {
                return Ok(n);
            }
            path.push(at);
            let mut total = 0u64;
            for callee in &s.services[at].calls {
                if let Some(i) = s.services.iter().position(|x| &x.name == callee) {
                    total = total.saturating_add(1 + visit(s, i, path, calls)?);
                }
            }
            path.pop();
            if total > MAX_CALLS_PER_REQUEST {
                return Err(format!(
                    "service {}: one request makes {total} calls downstream; at most {MAX_CALLS_PER_REQUEST}",
                    s.services[at].name
                ));
            }
            calls[at] = Some(total);
            Ok(total)
        }
        let mut calls = vec![None; self.services.len()];
        for i in 0..self.services.len() {
            visit(self, i, &mut Vec::new(), &mut calls)?;
        }
        Ok(())
    }

    pub fn load(path: &std::path::Path) -> Result<Scenario, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read scenario {}: {e}", path.display()))?;
        Scenario::parse(&text).map_err(|e| format!("scenario {}: {e}", path.display()))
    }

    fn validate(&self) -> Result<(), String> {
        let nodes: u64 = self.nodes.iter().map(|n| u64::from(n.count.unwrap_or(1))).sum();
        if nodes > MAX_NODES {
            return Err(format!("{nodes} nodes: a scenario holds at most {MAX_NODES}"));
        }
        let pods: u64 = self.services.iter().map(|s| u64::from(s.replicas)).sum::<u64>()
            + self.faults.iter().filter_map(|f| f.replicas).map(u64::from).sum::<u64>()
            + self.faults.iter().filter_map(|f| f.surge).map(u64::from).sum::<u64>();
        if pods > u64::from(MAX_PODS) {
            return Err(format!("{pods} pods: a scenario holds at most {MAX_PODS}"));
        }
        non_negative("load.base_rps", self.load.base_rps)?;
        non_negative("load.amplitude", self.load.amplitude)?;
        if !(self.load.period_secs.is_finite() && self.load.period_secs > 0.0) {
            return Err(format!("load.period_secs must be a number above 0, not {}", self.load.period_secs));
        }
        for q in &self.queues {
            non_negative(&format!("queue {}: per_request", q.name), q.per_request)?;
        }
        for f in &self.faults {
            if f.surge.is_some() && !f.rollout {
                return Err(format!("fault {:?}: surge is the size of a rollout: set rollout = true", f.kind));
            }
            if let Some(container) = &f.container {
                if !matches!(f.kind, FaultKind::MemoryLeak | FaultKind::CrashLoop) {
                    return Err(format!("fault {:?}: container is for memory_leak and crash_loop only", f.kind));
                }
                let service = self.services.iter().find(|s| f.service.as_ref() == Some(&s.name));
                let has = service.is_some_and(|s| container == "app" || s.sidecars.contains(container));
                if !has {
                    return Err(format!(
                        "fault {:?}: service {} has no container {container:?} (app or one of its sidecars)",
                        f.kind,
                        f.service.as_deref().unwrap_or("?")
                    ));
                }
            }
            for (field, value) in
                [("mib_per_min", f.mib_per_min), ("factor", f.factor), ("cpu_m", f.cpu_m), ("extra_ms", f.extra_ms)]
            {
                if let Some(v) = value {
                    non_negative(&format!("fault {:?}: {field}", f.kind), v)?;
                }
            }
        }
        for n in &self.nodes {
            let cpu = parse_cpu_millis(&n.cpu).map_err(|e| format!("node {}: {e}", n.name))?;
            let memory = parse_bytes(&n.memory).map_err(|e| format!("node {}: {e}", n.name))?;
            if cpu <= 0.0 || memory <= 0.0 {
                return Err(format!("node {}: cpu and memory must be above 0", n.name));
            }
        }
        for s in &self.services {
            for q in [&s.cpu_request, &s.cpu_limit, &s.memory_request, &s.memory_limit].into_iter().flatten() {
                let value =
                    crate::model::quantity::parse_quantity(q).map_err(|e| format!("service {}: {e}", s.name))?;
                non_negative(&format!("service {}: {q}", s.name), value)?;
            }
            parse_bytes(&s.base_memory).map_err(|e| format!("service {}: {e}", s.name))?;
            for (field, value) in [
                ("share", s.share),
                ("base_cpu_m", s.base_cpu_m),
                ("cpu_per_rps_m", s.cpu_per_rps_m),
                ("memory_per_rps", s.memory_per_rps),
                ("latency_ms", s.latency_ms),
            ] {
                non_negative(&format!("service {}: {field}", s.name), value)?;
            }
            if s.kind != "Deployment" && s.kind != "StatefulSet" {
                return Err(format!("service {}: kind must be Deployment or StatefulSet", s.name));
            }
        }
        self.validate_calls()?;
        for q in &self.queues {
            for svc in [&q.producer, &q.consumer] {
                if !self.services.iter().any(|s| &s.name == svc) {
                    return Err(format!("queue {:?} names unknown service {svc:?}", q.name));
                }
            }
        }
        for f in &self.faults {
            if let Some(svc) = &f.service
                && !self.services.iter().any(|s| &s.name == svc)
            {
                return Err(format!("fault {:?} names unknown service {svc:?}", f.kind));
            }
        }
        Ok(())
    }

    /// Adds filler services (three containers per pod: app, istio-proxy, log-agent) and nodes
    /// until the scenario has about `pods` pods: the scale harness.
    pub fn scaled_to(mut self, pods: u32) -> Scenario {
        let current: u32 = self.services.iter().map(|s| s.replicas).sum();
        if pods <= current {
            return self;
        }
        let filler = pods - current;
        let per_service = 50;
        let services = filler.div_ceil(per_service);
        for i in 0..services {
            let replicas = per_service.min(filler - i * per_service);
            self.services.push(ServiceSpec {
                name: format!("svc-{i:04}"),
                namespace: format!("team-{:02}", i % 20),
                kind: default_kind(),
                replicas,
                image: format!("ghcr.io/kpulse-demo/filler:{}", i % 7),
                cpu_request: Some("20m".into()),
                cpu_limit: Some("200m".into()),
                memory_request: Some("32Mi".into()),
                memory_limit: Some("128Mi".into()),
                share: 0.002,
                base_cpu_m: 2.0,
                cpu_per_rps_m: 1.0,
                base_memory: "40Mi".into(),
                memory_per_rps: 0.0,
                sidecars: vec!["istio-proxy".into(), "log-agent".into()],
                gateway: false,
                latency_ms: default_latency_ms(),
                calls: Vec::new(),
            });
        }
        let nodes_needed = pods.div_ceil(100);
        self.nodes.push(NodeSpec {
            name: "pool".into(),
            cpu: "64".into(),
            memory: "256Gi".into(),
            pods: 110,
            count: Some(nodes_needed),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_parses_and_bad_scenarios_are_explained() {
        let s = Scenario::shop();
        assert!(s.services.len() >= 9);
        assert!(s.faults.iter().any(|f| f.kind == FaultKind::MemoryLeak));
        let err = Scenario::parse("name = 1").unwrap_err();
        assert!(err.contains("name"), "{err}");
        let bad = SHOP.replace("cpu = \"4\"", "cpu = \"four\"");
        assert!(Scenario::parse(&bad).unwrap_err().contains("node-a"));
        let bad = SHOP.replace("service = \"cart\"", "service = \"nope\"");
        assert!(Scenario::parse(&bad).unwrap_err().contains("nope"));
        // A fault aimed at a container the service does not have would silently do nothing.
        let aimed = |container: &str| {
            SHOP.replacen("service = \"cart\"", &format!("service = \"cart\"\ncontainer = \"{container}\""), 1)
        };
        let err = Scenario::parse(&aimed("envoy")).unwrap_err();
        assert!(err.contains("no container \"envoy\""), "{err}");
        assert!(Scenario::parse(&aimed("app")).is_ok());
        let surge = |n: u64, rollout: bool| {
            SHOP.replacen("service = \"cart\"", &format!("service = \"cart\"\nsurge = {n}\nrollout = {rollout}"), 1)
        };
        assert!(Scenario::parse(&surge(2, false)).unwrap_err().contains("rollout = true"));
        assert!(Scenario::parse(&surge(2, true)).is_ok());
        assert!(Scenario::parse(&surge(4_000_000_000, true)).unwrap_err().contains("at most 100000"));
    }

    #[test]
    fn numbers_that_would_poison_or_exhaust_the_simulation_are_refused() {
        let cases = [
            ("base_rps = 120.0", "base_rps = nan", "load.base_rps"),
            ("base_rps = 120.0", "base_rps = -5.0", "load.base_rps"),
            ("period_secs = 600.0", "period_secs = 0.0", "period_secs"),
            ("replicas = 2", "replicas = 4000000000", "at most 100000"),
            ("cpu = \"4\"", "cpu = \"-4\"", "above 0"),
        ];
        for (from, to, named) in cases {
            assert!(SHOP.contains(from), "the shop has {from}");
            let err = Scenario::parse(&SHOP.replacen(from, to, 1)).unwrap_err();
            assert!(err.contains(named), "{to}: {err}");
        }
    }

    #[test]
    fn calls_name_known_services_never_loop_nor_explode_and_bring_the_mesh_sidecar() {
        let services = |calls: &[(&str, &[&str])]| -> String {
            calls
                .iter()
                .map(|(name, calls)| {
                    let calls: Vec<String> = calls.iter().map(|c| format!("{c:?}")).collect();
                    format!(
                        "[[services]]\nname = \"{name}\"\nnamespace = \"shop\"\nreplicas = 1\nimage = \"x\"\ncalls = [{}]\n",
                        calls.join(", ")
                    )
                })
                .collect()
        };
        let scenario = |calls: &[(&str, &[&str])]| {
            Scenario::parse(&format!(
                "name = \"c\"\n[load]\nbase_rps = 1.0\n[[nodes]]\nname = \"n\"\ncpu = \"4\"\nmemory = \"8Gi\"\n{}",
                services(calls)
            ))
        };
        let ok = scenario(&[("a", &["b"]), ("b", &["c"]), ("c", &[]), ("d", &[])]).unwrap();
        let sidecars = |name: &str| ok.services.iter().find(|s| s.name == name).unwrap().sidecars.clone();
        assert_eq!(sidecars("a"), vec![MESH_SIDECAR.to_string()]);
        assert_eq!(sidecars("c"), vec![MESH_SIDECAR.to_string()], "called: in the mesh too");
        assert!(sidecars("d").is_empty(), "no calls either way: no sidecar");
        assert!(scenario(&[("a", &["zz"])]).unwrap_err().contains("unknown service \"zz\""));
        let err = scenario(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]).unwrap_err();
        assert!(err.contains("loop: a → b → c → a"), "{err}");
        // Ten layers of two services, each calling both below: 2^10 calls per request.
        let layers: Vec<(String, Vec<String>)> = (0..20)
            .map(|i| {
                let below = if i + 2 < 20 {
                    vec![format!("s{}", (i / 2 + 1) * 2), format!("s{}", (i / 2 + 1) * 2 + 1)]
                } else {
                    vec![]
                };
                (format!("s{i}"), below)
            })
            .collect();
        let refs: Vec<(&str, Vec<&str>)> =
            layers.iter().map(|(n, c)| (n.as_str(), c.iter().map(String::as_str).collect())).collect();
        let refs: Vec<(&str, &[&str])> = refs.iter().map(|(n, c)| (*n, c.as_slice())).collect();
        let err = scenario(&refs).unwrap_err();
        assert!(err.contains("calls downstream; at most 64"), "{err}");
    }

    #[test]
    fn scaling_adds_pods_and_nodes() {
        let s = Scenario::shop().scaled_to(10_000);
        let pods: u32 = s.services.iter().map(|s| s.replicas).sum();
        assert_eq!(pods, 10_000);
        assert!(s.nodes.iter().any(|n| n.count == Some(100)));
    }
}
