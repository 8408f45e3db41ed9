//! Requests: load spread over ready replicas, answers and latencies per pod, the gateway's and
//! the mesh sidecars' access-log lines, and the pod logs they are read from.

use k8s_openapi::jiff::Timestamp;

use crate::demo::scenario::{FaultKind, MESH_SIDECAR, MeshLogEncoding};

use super::{ACCESS_LOG_LINES, GATEWAY_CONTAINER, LogEntry, Rng, Sim, SimPod};

impl Sim {
    /// The requests per second one pod serves: an even share, unless the service's load is uneven
    /// (then its first ready replica by name takes `factor` of it).
    pub(super) fn pod_rps(&self, idx: usize, ready: u32) -> f64 {
        let svc = self.pods[idx].svc;
        let load = self.load_rps(svc);
        match self.fault_active(FaultKind::UnevenLoad, svc).and_then(|f| f.factor) {
            Some(factor) if ready > 1 => {
                if self.hot_replica(svc) == Some(idx) {
                    load * factor
                } else {
                    load * (1.0 - factor) / (ready - 1) as f64
                }
            }
            _ => load / ready.max(1) as f64,
        }
    }

    /// The service's scheduled pod first by name, ready or not.
    pub(super) fn first_replica(&self, svc: usize) -> Option<usize> {
        (0..self.pods.len())
            .filter(|&i| self.pods[i].svc == svc && self.pods[i].node.is_some())
            .min_by(|&a, &b| self.pods[a].name.cmp(&self.pods[b].name))
    }

    pub(super) fn hot_replica(&self, svc: usize) -> Option<usize> {
        (0..self.pods.len())
            .filter(|&i| {
                self.pods[i].svc == svc
                    && self.pods[i].node.is_some()
                    && self.pods[i].containers.iter().all(|c| c.ready)
            })
            .min_by(|&a, &b| self.pods[a].name.cmp(&self.pods[b].name))
    }

    pub(super) fn load_rps(&self, svc: usize) -> f64 {
        let l = &self.scenario.load;
        let t = (self.now - self.start) as f64;
        let wave = 1.0 + l.amplitude * (2.0 * std::f64::consts::PI * t / l.period_secs.max(1.0)).sin();
        let spike = self.fault_active(FaultKind::LoadSpike, svc).and_then(|f| f.factor).unwrap_or(1.0);
        // Every request of a caller calls it once (calls never loop: the scenario checks).
        let called: f64 = self.callers[svc].iter().map(|&caller| self.load_rps(caller)).sum();
        l.base_rps * self.service(svc).share * wave * spike + called
    }

    /// The ready pods of a service: what a gateway or a sidecar may send a request to.
    pub(super) fn ready_pods(&self, svc: usize) -> Vec<&SimPod> {
        self.pods.iter().filter(|p| p.svc == svc && p.node.is_some() && p.containers.iter().all(|c| c.ready)).collect()
    }

    /// How long one request takes in the service's own pods: its latency at rest, climbing as
    /// it nears its CPU limit, plus what a slow dependency adds.
    pub(super) fn own_secs(&self, rng: &mut Rng, svc: usize) -> f64 {
        let spec = self.service(svc);
        let pressure = (self.saturation[svc] - 0.8).max(0.0);
        let slow_s = self.fault_sum(FaultKind::SlowDependency, svc, |f| f.extra_ms) / 1000.0;
        spec.latency_ms / 1000.0 * (0.6 + 0.8 * rng.unit()) * (1.0 + 8.0 * pressure) + slow_s * (0.8 + 0.4 * rng.unit())
    }

    /// What a pod of the service answers: some 504s when it is far past its CPU limit, the
    /// error burst's 500s (a new version's from its own pods only), else 200.
    pub(super) fn answer_status(&self, rng: &mut Rng, svc: usize, pod: &SimPod) -> u16 {
        let pressure = (self.saturation[svc] - 0.8).max(0.0);
        let error_share = self
            .fault_active(FaultKind::ErrorBurst, svc)
            .filter(|f| !f.rollout || pod.created >= self.start + f.start_secs)
            .map_or(0.0, |f| f.factor.unwrap_or(0.0));
        if pressure > 0.3 && rng.unit() < 0.05 {
            504
        } else if rng.unit() < error_share {
            500
        } else {
            200
        }
    }

    /// The calls one request to `svc`, served by `caller`, makes through the mesh, in turn: each
    /// logged by the caller's sidecar as Istio's default access log line (into `lines`, as
    /// (namespace, pod, line)), the callee's own calls before it. Returns the seconds they took,
    /// and whether one failed: a call is a hard dependency, so a callee that fails (its own 5xx,
    /// or one of its calls') makes its caller answer 500 too, as a service without a fallback does.
    pub(super) fn mesh_calls(
        &self,
        rng: &mut Rng,
        svc: usize,
        caller: &SimPod,
        lines: &mut Vec<(String, String, String)>,
    ) -> (f64, bool) {
        let (mut total, mut failed) = (0.0, false);
        for &callee in &self.callees[svc] {
            let spec = self.service(callee);
            let ready = self.ready_pods(callee);
            let (status, flags, details, upstream, secs) = if ready.is_empty() {
                (503, "UH", "no_healthy_upstream", "-".to_string(), 0.0)
            } else {
                let pod = ready[rng.next_u64() as usize % ready.len()];
                // In the order the random stream has always been drawn: the scenarios' timings
                // stay as they were.
                let own_s = self.own_secs(rng, callee);
                let (calls_s, call_failed) = self.mesh_calls(rng, callee, pod, lines);
                let status = failed_or(call_failed, self.answer_status(rng, callee, pod));
                (status, "-", "via_upstream", format!("{}:8080", pod.ip), own_s + calls_s)
            };
            failed |= status >= 500;
            let service_time = if ready.is_empty() { "-".to_string() } else { format!("{:.0}", secs * 1000.0) };
            // The sidecar's own hop adds a fraction of a millisecond.
            let duration_ms = (secs * 1000.0 + 0.3 + 0.5 * rng.unit()).round();
            let millis = rng.next_u64() % 1000;
            let started = Timestamp::from_second(self.now)
                .map(|t| format!("{}.{millis:03}Z", t.strftime("%Y-%m-%dT%H:%M:%S")))
                .unwrap_or_default();
            let (name, ns) = (&spec.name, &spec.namespace);
            let request_id = format!(
                "{:08x}-{:04x}-4{:03x}",
                rng.next_u64() as u32,
                rng.next_u64() % 0xffff,
                rng.next_u64() % 0xfff
            );
            let bytes = 100 + rng.next_u64() % 2000;
            let port = 32768 + rng.next_u64() % 28000;
            let service_ip = format!("10.96.{}.{}:8080", callee / 250, 1 + callee % 250);
            let (ip, cluster) = (&caller.ip, format!("outbound|8080||{name}.{ns}.svc.cluster.local"));
            let line = match self.scenario.mesh_log_encoding {
                MeshLogEncoding::Text => format!(
                    "[{started}] \"POST /{name}/v1 HTTP/1.1\" {status} {flags} {details} - \"-\" 120 {bytes} {duration_ms} {service_time} \"-\" \"grpc-go/1.68.0\" \"{request_id}\" \"{name}.{ns}:8080\" \"{upstream}\" {cluster} {ip}:{port} {service_ip} {ip}:{} - default",
                    port + 1,
                ),
                // Istio's default JSON fields, in the order it writes them (by name); what is
                // absent is null, numbers are numbers, the service time a string.
                MeshLogEncoding::Json => serde_json::json!({
                    "authority": format!("{name}.{ns}:8080"),
                    "bytes_received": 120,
                    "bytes_sent": bytes,
                    "connection_termination_details": null,
                    "downstream_local_address": service_ip,
                    "downstream_remote_address": format!("{ip}:{}", port + 1),
                    "duration": duration_ms as u64,
                    "method": "POST",
                    "path": format!("/{name}/v1"),
                    "protocol": "HTTP/1.1",
                    "request_id": request_id,
                    "requested_server_name": null,
                    "response_code": status,
                    "response_code_details": details,
                    "response_flags": flags,
                    "route_name": "default",
                    "start_time": started,
                    "upstream_cluster": cluster,
                    "upstream_host": (upstream != "-").then_some(&upstream),
                    "upstream_local_address": format!("{ip}:{port}"),
                    "upstream_service_time": (service_time != "-").then_some(&service_time),
                    "upstream_transport_failure_reason": null,
                    "user_agent": "grpc-go/1.68.0",
                    "x_forwarded_for": null,
                })
                .to_string(),
            };
            lines.push((caller.namespace.clone(), caller.name.clone(), line));
            total += duration_ms / 1000.0;
        }
        (total, failed)
    }

    pub(super) fn push_log(&mut self, namespace: String, pod: String, container: &str, line: String) {
        self.log_seq += 1;
        if self.access_log.len() == ACCESS_LOG_LINES {
            self.access_log.pop_front();
        }
        let (seq, at, container) = (self.log_seq, self.now, container.to_string());
        self.access_log.push_back(LogEntry { seq, at, namespace, pod, container, line });
    }

    /// One ingress-nginx `upstreaminfo` line per request the gateway served this second, spread
    /// over the services by their share of the load. A saturated service is slow in the log too;
    /// a service with no ready pod answers 503 at the gateway. A service that calls others
    /// waits for them, and its pods' sidecars log each call.
    pub(super) fn write_access_log(&mut self, ready_count: &[u32]) {
        let Some(gw) = self.scenario.services.iter().position(|s| s.gateway) else { return };
        let gateway_pods: Vec<String> =
            self.pods.iter().filter(|p| p.svc == gw && p.node.is_some()).map(|p| p.name.clone()).collect();
        if gateway_pods.is_empty() {
            return;
        }
        let backends: Vec<usize> =
            (0..self.scenario.services.len()).filter(|&i| i != gw && self.scenario.services[i].share > 0.0).collect();
        // A load spike on a service brings it more requests through the gateway, not just CPU.
        let weights: Vec<f64> = backends
            .iter()
            .map(|&b| {
                self.scenario.services[b].share
                    * self.fault_active(FaultKind::LoadSpike, b).and_then(|f| f.factor).unwrap_or(1.0)
            })
            .collect();
        let total_share: f64 = backends.iter().map(|&i| self.scenario.services[i].share).sum();
        let total_weight: f64 = weights.iter().sum();
        let spiked = if total_share > 0.0 { total_weight / total_share } else { 1.0 };
        let requests = ((self.load_rps(gw) * spiked).round() as usize).min(500);
        let time_local = Timestamp::from_second(self.now)
            .map(|t| t.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string())
            .unwrap_or_default();
        // Its own random stream, borrowed for the second: the lines read the rest of the state.
        let mut rng = std::mem::replace(&mut self.log_rng, Rng::new(0));
        for i in 0..requests {
            let mut pick = rng.unit() * total_weight;
            let svc = backends
                .iter()
                .zip(&weights)
                .find(|(_, w)| {
                    pick -= **w;
                    pick <= 0.0
                })
                .map_or(backends[0], |(b, _)| *b);
            let spec = &self.scenario.services[svc];
            let ready = self.ready_pods(svc);
            let (path, method) = match spec.name.as_str() {
                "cart" => (format!("/api/cart/{}", 1000 + rng.next_u64() % 9000), "POST"),
                "order" => (format!("/api/orders/{}", rng.next_u64() % 100_000), "POST"),
                "payment" => ("/api/payments".to_string(), "POST"),
                "catalog" => (format!("/api/products/{}", rng.next_u64() % 500), "GET"),
                name => (format!("/{name}/"), "GET"),
            };
            let upstream_name = format!("{}-{}-80", spec.namespace, spec.name);
            let request_id = format!("{:016x}{:016x}", rng.next_u64(), self.now as u64);
            let bytes = 200 + rng.next_u64() % 4000;
            let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36";
            let client = format!("203.0.113.{}", 1 + rng.next_u64() % 250);
            let uneven = self.fault_active(FaultKind::UnevenLoad, svc).and_then(|f| f.factor);
            let hot = uneven.and_then(|_| self.hot_replica(svc)).map(|i| self.pods[i].name.as_str());
            let gateway_s = self.fault_sum(FaultKind::GatewaySaturation, gw, |f| f.extra_ms) / 1000.0;
            let mut calls = Vec::new();
            let line = if ready.is_empty() || ready_count.get(svc) == Some(&0) {
                format!(
                    "{client} - - [{time_local}] \"{method} {path} HTTP/1.1\" 503 190 \"-\" \"{ua}\" 420 0.000 [{upstream_name}] [] - - - - {request_id}"
                )
            } else {
                let pick = rng.next_u64() as usize;
                let pod = match (uneven, hot) {
                    (Some(share), Some(hot)) if rng.unit() < share => {
                        ready.iter().find(|p| p.name == hot).copied().unwrap_or(ready[pick % ready.len()])
                    }
                    (Some(_), Some(hot)) if ready.len() > 1 => {
                        let cold: Vec<&&SimPod> = ready.iter().filter(|p| p.name != hot).collect();
                        cold[pick % cold.len()]
                    }
                    _ => ready[pick % ready.len()],
                };
                let own_s = self.own_secs(&mut rng, svc);
                let (calls_s, call_failed) = self.mesh_calls(&mut rng, svc, pod, &mut calls);
                let upstream_s = own_s + calls_s;
                let status = failed_or(call_failed, self.answer_status(&mut rng, svc, pod));
                let total_s = upstream_s + 0.0005 + 0.001 * rng.unit() + gateway_s * (0.5 + rng.unit());
                format!(
                    "{client} - - [{time_local}] \"{method} {path} HTTP/1.1\" {status} {bytes} \"-\" \"{ua}\" 420 {total_s:.3} [{upstream_name}] [] {}:8080 {bytes} {upstream_s:.3} {status} {request_id}",
                    pod.ip
                )
            };
            for (namespace, pod, call) in calls {
                self.push_log(namespace, pod, MESH_SIDECAR, call);
            }
            let gateway_pod = gateway_pods[i % gateway_pods.len()].clone();
            self.push_log(self.service(gw).namespace.clone(), gateway_pod, GATEWAY_CONTAINER, line);
        }
        self.log_rng = rng;
    }

    /// Lines one container of a pod wrote after `after_seq`: (sequence, unix seconds, line).
    pub fn pod_log(&self, pod: &str, container: &str, after_seq: u64) -> Vec<(u64, i64, String)> {
        self.access_log
            .iter()
            .filter(|e| e.seq > after_seq && e.pod == pod && e.container == container)
            .map(|e| (e.seq, e.at, e.line.clone()))
            .collect()
    }

    /// Whether the service's pods carry the mesh sidecar (it calls or is called).
    pub(super) fn in_mesh(&self, svc: usize) -> bool {
        !self.callees[svc].is_empty() || !self.callers[svc].is_empty()
    }
}

/// What a service answers: its own status, or 500 when a call it depends on failed and it had
/// not failed already.
fn failed_or(call_failed: bool, own: u16) -> u16 {
    if call_failed && own < 500 { 500 } else { own }
}
