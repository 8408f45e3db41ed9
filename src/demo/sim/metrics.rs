//! The metrics endpoints: metrics.k8s.io, the kubelet's cAdvisor and resource exposition,
//! kube-state-metrics, and a RabbitMQ exporter for the queues.

use std::collections::BTreeMap;

use crate::model::metrics::{ContainerMetrics, MetricsMeta, NodeMetrics, PodMetrics};

use super::{CState, PAUSE_IMAGE, PREFETCH, Res, Sim, SimContainer, SimPod, SimQueue, sandbox_id, ts};

impl Sim {
    /// metrics.k8s.io PodMetrics for running containers, as metrics-server reports them.
    pub fn pod_metrics(&self, namespace: Option<&str>) -> Vec<PodMetrics> {
        let stamp = ts(self.now).0.to_string();
        self.pods
            .iter()
            .filter(|p| p.node.is_some() && namespace.is_none_or(|ns| p.namespace == ns))
            .filter(|p| p.containers.iter().any(|c| matches!(c.state, CState::Running { .. })))
            .map(|p| PodMetrics {
                metadata: MetricsMeta { name: p.name.clone(), namespace: Some(p.namespace.clone()) },
                timestamp: Some(stamp.clone()),
                window: Some("15.012s".into()),
                containers: p
                    .containers
                    .iter()
                    .filter(|c| matches!(c.state, CState::Running { .. }))
                    .map(|c| {
                        let mut usage = BTreeMap::new();
                        usage.insert("cpu".to_string(), format!("{}n", (c.cpu_m * 1e6) as u64));
                        usage.insert("memory".to_string(), format!("{}Ki", (c.mem / 1024.0) as u64));
                        ContainerMetrics { name: c.name.clone(), usage }
                    })
                    .collect(),
            })
            .collect()
    }

    pub fn node_metrics(&self) -> Vec<NodeMetrics> {
        let stamp = ts(self.now).0.to_string();
        self.nodes
            .iter()
            .map(|n| {
                let mut usage = BTreeMap::new();
                usage.insert("cpu".to_string(), format!("{}n", (n.usage.0 * 1e6) as u64));
                usage.insert("memory".to_string(), format!("{}Ki", (n.usage.1 / 1024.0) as u64));
                NodeMetrics {
                    metadata: MetricsMeta { name: n.name.clone(), namespace: None },
                    timestamp: Some(stamp.clone()),
                    window: Some("20.025s".into()),
                    usage,
                }
            })
            .collect()
    }

    /// The kubelet's cAdvisor endpoint for one node (`/api/v1/nodes/{node}/proxy/metrics/cadvisor`):
    /// real metric names, label sets and millisecond timestamps, including the pod-level cgroup
    /// rows (`container=""`) that consumers must filter out.
    pub fn cadvisor_exposition(&self, node: &str) -> Option<String> {
        use std::fmt::Write;
        let node_idx = self.nodes.iter().position(|n| n.name == node)?;
        let ts = self.now * 1000;
        let pods: Vec<&SimPod> = self.pods.iter().filter(|p| p.node == Some(node_idx)).collect();
        let mut out = String::with_capacity(pods.len() * 4096);
        let running = |c: &SimContainer| matches!(c.state, CState::Running { .. });
        type Metric<'x> = (&'x str, &'x str, &'x str, fn(&SimContainer, &Res) -> Option<f64>);
        let per_container: [Metric; 9] = [
            ("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.", |c, _| {
                Some(c.cpu_seconds)
            }),
            (
                "container_cpu_cfs_periods_total",
                "counter",
                "Number of elapsed enforcement period intervals.",
                |c, r| r.cpu_lim.map(|_| c.cfs_periods.floor()),
            ),
            (
                "container_cpu_cfs_throttled_periods_total",
                "counter",
                "Number of throttled period intervals.",
                |c, r| r.cpu_lim.map(|_| c.cfs_throttled_periods.floor()),
            ),
            (
                "container_cpu_cfs_throttled_seconds_total",
                "counter",
                "Total time duration the container has been throttled.",
                |c, r| r.cpu_lim.map(|_| c.cfs_throttled_seconds),
            ),
            ("container_memory_working_set_bytes", "gauge", "Current working set in bytes.", |c, _| {
                Some(c.mem.floor())
            }),
            ("container_memory_rss", "gauge", "Size of RSS in bytes.", |c, _| Some((c.mem * 0.8).floor())),
            (
                "container_oom_events_total",
                "counter",
                "Count of out of memory events observed for the container",
                |c, _| Some(c.oom_events as f64),
            ),
            ("container_spec_cpu_quota", "gauge", "CPU quota of the container.", |c, r| {
                r.cpu_lim.map(|l| (if c.main { l } else { l * 0.25 }) * 100.0)
            }),
            ("container_spec_memory_limit_bytes", "gauge", "Memory limit for the container.", |c, r| {
                Some(r.mem_lim.map_or(0.0, |l| if c.main { l } else { l * 0.25 }).floor())
            }),
        ];
        // What a real kubelet's cAdvisor (containerd, cgroup v1) serves for each pod, as the
        // real-node test holds it to: the pod-level cgroup's row (no container, no image), the
        // sandbox's pause container (no container name, the pause image; it alone carries the
        // pod's network), then the containers. CPU usage is broken down by `cpu="total"`.
        // Families the pause container has a row in (it has no CPU quota).
        let pause_has = |name: &str| !name.contains("cfs") && name != "container_spec_cpu_quota";
        let pause_value = |name: &str, p: &SimPod| match name {
            "container_cpu_usage_seconds_total" => 0.02 + (self.now - p.created).max(0) as f64 * 1e-5,
            "container_memory_working_set_bytes" => 315_392.0,
            "container_memory_rss" => 98_304.0,
            _ => 0.0,
        };
        // Each pod's sandbox id, made once per exposition rather than once per row.
        let sandboxes: Vec<String> = pods.iter().map(|p| sandbox_id(&p.uid)).collect();
        // One row of a pod's pause container, its labels in cAdvisor's sorted order.
        let pause_row = |out: &mut String,
                         name: &str,
                         p: &SimPod,
                         sandbox: &str,
                         cpu: &str,
                         interface: &str,
                         value: f64| {
            let _ = writeln!(
                out,
                "{name}{{container=\"\",{cpu}id=\"/kubepods/burstable/pod{}/{sandbox}\",image=\"{PAUSE_IMAGE}\",{interface}name=\"{sandbox}\",namespace=\"{}\",pod=\"{}\"}} {value} {ts}",
                p.uid, p.namespace, p.name
            );
        };
        let node = &self.nodes[node_idx];
        for (name, kind, help, value) in per_container {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let cpu = if name == "container_cpu_usage_seconds_total" { "cpu=\"total\"," } else { "" };
            // The root cgroup: the whole node.
            let root = match name {
                "container_cpu_usage_seconds_total" => Some(node.cpu_seconds),
                "container_memory_working_set_bytes" => Some(node.usage.1.floor()),
                _ => None,
            };
            if let Some(v) = root {
                let _ = writeln!(
                    out,
                    "{name}{{container=\"\",{cpu}id=\"/\",image=\"\",name=\"\",namespace=\"\",pod=\"\"}} {v} {ts}"
                );
            }
            for (p, sandbox) in pods.iter().zip(&sandboxes) {
                let spec = self.service(p.svc);
                let r = &self.res[p.svc];
                let pod_cgroup = format!("/kubepods/burstable/pod{}", p.uid);
                let (rows, sum) = p
                    .containers
                    .iter()
                    .filter(|c| running(c))
                    .filter_map(|c| value(c, r))
                    .fold((0, 0.0), |(n, sum), v| (n + 1, sum + v));
                if rows > 0 {
                    let _ = writeln!(
                        out,
                        "{name}{{container=\"\",{cpu}id=\"{pod_cgroup}\",image=\"\",name=\"\",namespace=\"{}\",pod=\"{}\"}} {sum} {ts}",
                        p.namespace, p.name
                    );
                }
                if pause_has(name) {
                    pause_row(&mut out, name, p, sandbox, cpu, "", pause_value(name, p));
                }
                for c in p.containers.iter().filter(|c| running(c)) {
                    let Some(v) = value(c, r) else { continue };
                    let image = if c.main { spec.image.as_str() } else { "docker.io/istio/proxyv2:1.28.0" };
                    let cid =
                        format!("{:016x}{:08x}", (p.uid.len() as u64) << 40 ^ (c.restarts as u64) << 20, c.name.len());
                    let _ = writeln!(
                        out,
                        "{name}{{container=\"{}\",{cpu}id=\"{pod_cgroup}/{cid}\",image=\"{image}\",name=\"{cid}\",namespace=\"{}\",pod=\"{}\"}} {v} {ts}",
                        c.name, p.namespace, p.name
                    );
                }
            }
        }
        for (name, help, field) in [
            ("container_network_receive_bytes_total", "Cumulative count of bytes received", 0),
            ("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", 1),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (p, sandbox) in pods.iter().zip(&sandboxes) {
                let v = if field == 0 { p.net_rx_bytes } else { p.net_tx_bytes };
                pause_row(&mut out, name, p, sandbox, "", "interface=\"eth0\",", v.floor());
            }
        }
        Some(out)
    }

    /// The kubelet's resource metrics endpoint (`/metrics/resource`) as kubelet 1.36 serves it:
    /// CPU and working set of the node, each pod and each running container, and container
    /// start times; no throttling, no network. A few kB a node where cAdvisor is hundreds.
    pub fn resource_exposition(&self, node: &str) -> Option<String> {
        use std::fmt::Write;
        let node_idx = self.nodes.iter().position(|n| n.name == node)?;
        let n = &self.nodes[node_idx];
        let ts = self.now * 1000;
        let mut out = String::new();
        let pods: Vec<&SimPod> = self.pods.iter().filter(|p| p.node == Some(node_idx)).collect();
        let running = |c: &&SimContainer| matches!(c.state, CState::Running { .. });
        type Value = fn(&SimContainer) -> f64;
        let families: [(&str, &str, &str, Value); 3] = [
            (
                "container_cpu_usage_seconds_total",
                "counter",
                "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
                |c| c.cpu_seconds,
            ),
            (
                "container_memory_working_set_bytes",
                "gauge",
                "[STABLE] Current working set of the container in bytes",
                |c| c.mem.floor(),
            ),
            (
                "container_start_time_seconds",
                "gauge",
                "[STABLE] Start time of the container since unix epoch in seconds",
                |c| match c.state {
                    CState::Running { since } => since as f64,
                    CState::Waiting { .. } => 0.0,
                },
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for p in &pods {
                for c in p.containers.iter().filter(running) {
                    let _ = writeln!(
                        out,
                        "{name}{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {ts}",
                        c.name,
                        p.namespace,
                        p.name,
                        value(c)
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n\
             # TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total {} {ts}",
            n.cpu_seconds
        );
        let _ = writeln!(
            out,
            "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n\
             # TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes {} {ts}",
            n.usage.1.floor()
        );
        // A pod's figure is the sum of its running containers'.
        let pod_families: [(&str, &str, &str, Value); 2] = [
            (
                "pod_cpu_usage_seconds_total",
                "counter",
                "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
                |c| c.cpu_seconds,
            ),
            ("pod_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the pod in bytes", |c| {
                c.mem.floor()
            }),
        ];
        for (name, kind, help, value) in pod_families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for p in &pods {
                let total: f64 = p.containers.iter().filter(running).map(value).sum();
                let _ = writeln!(out, "{name}{{namespace=\"{}\",pod=\"{}\"}} {total} {ts}", p.namespace, p.name);
            }
        }
        out.push_str(
            "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n\
             # TYPE resource_scrape_error gauge\nresource_scrape_error 0\n",
        );
        Some(out)
    }

    /// kube-state-metrics' per-container families, consistent with the pods: restarts, and the
    /// requests and limits of the pod spec (cores and bytes, by `resource` and `unit`), for the
    /// pods that are scheduled. No timestamps: kube-state-metrics stamps none.
    pub fn kube_state_metrics_exposition(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let scheduled = || self.pods.iter().filter(|p| p.node.is_some());
        let labels = |p: &SimPod, c: &SimContainer| {
            format!("namespace=\"{}\",pod=\"{}\",uid=\"{}\",container=\"{}\"", p.namespace, p.name, p.uid, c.name)
        };
        out.push_str(
            "# HELP kube_pod_container_status_restarts_total The number of container restarts per container.\n",
        );
        out.push_str("# TYPE kube_pod_container_status_restarts_total counter\n");
        for p in scheduled() {
            for c in &p.containers {
                let _ = writeln!(out, "kube_pod_container_status_restarts_total{{{}}} {}", labels(p, c), c.restarts);
            }
        }
        for (family, help) in [
            ("kube_pod_container_resource_requests", "The number of requested request resource by a container."),
            ("kube_pod_container_resource_limits", "The number of requested limit resource by a container."),
        ] {
            let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} gauge");
            for p in scheduled() {
                let r = &self.res[p.svc];
                let (cpu, mem) = if family.ends_with("requests") {
                    (Some(r.cpu_req), Some(r.mem_req))
                } else {
                    (r.cpu_lim, r.mem_lim)
                };
                let node = p.node.map(|n| self.nodes[n].name.as_str()).unwrap_or_default();
                for c in &p.containers {
                    let scale = if c.main { 1.0 } else { 0.25 };
                    let l = format!("{},node=\"{node}\"", labels(p, c));
                    if let Some(cpu) = cpu.filter(|v| *v > 0.0) {
                        let _ =
                            writeln!(out, "{family}{{{l},resource=\"cpu\",unit=\"core\"}} {}", cpu * scale / 1000.0);
                    }
                    if let Some(mem) = mem.filter(|v| *v > 0.0) {
                        let _ = writeln!(
                            out,
                            "{family}{{{l},resource=\"memory\",unit=\"byte\"}} {}",
                            (mem * scale).floor()
                        );
                    }
                }
            }
        }
        out
    }

    /// The broker's queues as RabbitMQ's `/metrics/per-object` prints them; None without queues.
    pub fn rabbitmq_exposition(&self) -> Option<String> {
        if self.queues.is_empty() {
            return None;
        }
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(usize, &SimQueue) -> (String, f64)| {
            out.push_str(&format!("# TYPE {name} {kind}\n# HELP {name} {help}\n"));
            for (i, q) in self.queues.iter().enumerate() {
                let (labels, v) = value(i, q);
                out.push_str(&format!("{name}{{{labels}}} {v}\n"));
            }
        };
        let queue = |i: usize| format!("vhost=\"/\",queue=\"{}\"", self.scenario.queues[i].name);
        // One publishing and one consuming channel per queue, as long-lived clients have.
        let channel = |i: usize, base: usize| format!("channel=\"<0.{}.0>\",", base + i);
        let unacked = |q: &SimQueue| q.backlog.min(PREFETCH * f64::from(q.consumers)).floor();
        family("rabbitmq_queue_messages_ready", "gauge", "Messages ready to be delivered to consumers", &|i, q| {
            (queue(i), (q.backlog.floor() - unacked(q)).max(0.0))
        });
        family(
            "rabbitmq_queue_messages_unacked",
            "gauge",
            "Messages delivered to consumers but not yet acknowledged",
            &|i, q| (queue(i), unacked(q)),
        );
        family("rabbitmq_queue_consumers", "gauge", "Consumers on a queue", &|i, q| (queue(i), f64::from(q.consumers)));
        family(
            "rabbitmq_queue_messages_published_total",
            "counter",
            "Total number of messages published to queues",
            &|i, q| {
                let name = &self.scenario.queues[i].name;
                (
                    format!("{}queue_vhost=\"/\",queue=\"{name}\",exchange_vhost=\"/\",exchange=\"\"", channel(i, 800)),
                    q.published.floor(),
                )
            },
        );
        family(
            "rabbitmq_channel_messages_acked_total",
            "counter",
            "Total number of messages acknowledged by consumers",
            &|i, q| (format!("{}{}", channel(i, 900), queue(i)), q.acked.floor()),
        );
        family(
            "rabbitmq_channel_messages_redelivered_total",
            "counter",
            "Total number of messages redelivered to consumers",
            &|i, q| (format!("{}{}", channel(i, 900), queue(i)), q.redelivered.floor()),
        );
        Some(out)
    }
}
