//! From cAdvisor exposition (kubelet `/metrics/cadvisor`) to per-container usage: CPU rate,
//! working set, CFS throttling ratio, OOM events, and per-pod network rates. Counters are turned
//! into rates here, handling resets (a restarted container starts from zero) and gaps.

use std::borrow::Cow;
use std::collections::HashMap;

use super::exposition::{Format, ParseStats, parse_wanted};
use super::metrics::{ContainerUsage, Usage};
use super::pod::PodKey;

/// How the status bar says CPU usage is on its way (a rate needs two samples); the app drops
/// the notice when the first rates come.
pub const AWAITING_RATES: &str = "CPU usage in ";

/// One scrape's raw counters and gauges for one container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerCounters {
    pub cpu_seconds: Option<f64>,
    pub cfs_periods: Option<f64>,
    pub cfs_throttled_periods: Option<f64>,
    pub working_set: Option<f64>,
    pub oom_events: Option<f64>,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodNetCounters {
    pub rx_bytes: f64,
    pub tx_bytes: f64,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct CadvisorScrape {
    pub containers: HashMap<(PodKey, String), ContainerCounters>,
    pub pods: HashMap<PodKey, PodNetCounters>,
    /// The root cgroup (`id="/"`): the whole node, kubelet and system included.
    pub machine: ContainerCounters,
    pub stats: ParseStats,
}

/// The cAdvisor families kpulse reads; the real-node test holds the simulator to the real
/// kubelet's on these.
pub const FAMILIES: [&str; 7] = [
    "container_cpu_usage_seconds_total",
    "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total",
    "container_memory_working_set_bytes",
    "container_oom_events_total",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
];

/// The node's own rows in the kubelet's `/metrics/resource` (cAdvisor has them as `id="/"`).
const RESOURCE_NODE_FAMILIES: [&str; 2] = ["node_cpu_usage_seconds_total", "node_memory_working_set_bytes"];

/// Keeps container series only: the pod-level cgroup (`container=""`) and the pause container
/// (`POD`) would double-count. Network is per pod (one network namespace per pod).
pub fn extract(text: &str, format: Format) -> CadvisorScrape {
    let mut out = CadvisorScrape::default();
    // Keys borrow from the input while parsing; they are owned once per container at the end.
    type ContainerId<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>);
    let mut containers: HashMap<ContainerId, ContainerCounters> = HashMap::new();
    let mut pods: HashMap<(Cow<str>, Cow<str>), PodNetCounters> = HashMap::new();
    let wanted = |name: &str| FAMILIES.contains(&name) || RESOURCE_NODE_FAMILIES.contains(&name);
    out.stats = parse_wanted(text, format, wanted, |s| {
        let node_field: Option<fn(&mut ContainerCounters) -> &mut Option<f64>> = match s.name.as_ref() {
            "node_cpu_usage_seconds_total" => Some(|c| &mut c.cpu_seconds),
            "node_memory_working_set_bytes" => Some(|c| &mut c.working_set),
            _ => None,
        };
        if let Some(field) = node_field {
            *field(&mut out.machine) = Some(s.value);
            out.machine.timestamp_ms = s.timestamp_ms.or(out.machine.timestamp_ms);
            return;
        }
        let field: fn(&mut ContainerCounters) -> &mut Option<f64> = match s.name.as_ref() {
            "container_cpu_usage_seconds_total" => |c| &mut c.cpu_seconds,
            "container_cpu_cfs_periods_total" => |c| &mut c.cfs_periods,
            "container_cpu_cfs_throttled_periods_total" => |c| &mut c.cfs_throttled_periods,
            "container_memory_working_set_bytes" => |c| &mut c.working_set,
            "container_oom_events_total" => |c| &mut c.oom_events,
            "container_network_receive_bytes_total" | "container_network_transmit_bytes_total" => {
                let (Some(ns), Some(pod)) = (s.label_cow("namespace"), s.label_cow("pod")) else { return };
                // The node's own interfaces (no pod) are not a pod's traffic.
                if pod.is_empty() {
                    return;
                }
                let entry = pods.entry((ns, pod)).or_default();
                if s.name.contains("receive") {
                    entry.rx_bytes += s.value;
                } else {
                    entry.tx_bytes += s.value;
                }
                entry.timestamp_ms = s.timestamp_ms.or(entry.timestamp_ms);
                return;
            }
            _ => return,
        };
        if s.label("id") == Some("/") {
            let slot = field(&mut out.machine);
            *slot = Some(slot.unwrap_or(0.0) + s.value);
            out.machine.timestamp_ms = s.timestamp_ms.or(out.machine.timestamp_ms);
            return;
        }
        let (Some(ns), Some(pod), Some(container)) =
            (s.label_cow("namespace"), s.label_cow("pod"), s.label_cow("container"))
        else {
            return;
        };
        if container.is_empty() || container == "POD" {
            return;
        }
        let entry = containers.entry((ns, pod, container)).or_default();
        // Several series per container (per cpu, per interface) add up.
        let slot = field(entry);
        *slot = Some(slot.unwrap_or(0.0) + s.value);
        entry.timestamp_ms = s.timestamp_ms.or(entry.timestamp_ms);
    });
    out.containers = containers
        .into_iter()
        .map(|((ns, pod, c), v)| ((PodKey::new(ns.into_owned(), pod.into_owned()), c.into_owned()), v))
        .collect();
    out.pods = pods.into_iter().map(|((ns, pod), v)| (PodKey::new(ns.into_owned(), pod.into_owned()), v)).collect();
    out
}

/// Per-second rates of counters between scrapes.
#[derive(Debug, Default)]
pub struct CounterRates {
    /// (value, sample timestamp, round it was seen in) per series, keyed by a 64-bit hash of
    /// (pod, container, metric): no allocation per lookup, and a fraction of the memory of owned
    /// keys at 100,000 series. A collision would need two live series among ~1e5 to share a hash.
    last: HashMap<u64, (f64, i64, u64)>,
    round: u64,
}

fn series_hash(pod: &PodKey, container: &str, metric: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (pod, container, metric).hash(&mut h);
    h.finish()
}

impl CounterRates {
    /// Starts a scrape round; series not seen in it are forgotten by [`CounterRates::finish_round`].
    pub fn begin_round(&mut self) {
        self.round += 1;
    }

    /// The increase of a counter since the previous sample and the seconds between them.
    /// A counter that went down was reset (a restarted container): the increase is its new value,
    /// as Prometheus's `rate()` assumes. Returns `None` for the first sample, a repeated
    /// timestamp, or when the previous sample is older than the previous round (a missed scrape:
    /// a gap shows as a gap, not as an average over it).
    pub fn increase(
        &mut self,
        pod: &PodKey,
        container: &str,
        metric: &'static str,
        value: f64,
        timestamp_ms: i64,
    ) -> Option<(f64, f64)> {
        let previous = self.last.insert(series_hash(pod, container, metric), (value, timestamp_ms, self.round));
        let (prev_value, prev_ts, prev_round) = previous?;
        let dt = timestamp_ms - prev_ts;
        if dt <= 0 || prev_round + 1 < self.round {
            return None;
        }
        let delta = if value < prev_value { value } else { value - prev_value };
        Some((delta, dt as f64 / 1000.0))
    }

    pub fn finish_round(&mut self) {
        let round = self.round;
        self.last.retain(|_, (_, _, seen)| *seen == round);
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

/// Counter state for rounds of two sizes: every round reads CPU and memory (from the kubelet's
/// small `/metrics/resource`), and a full round now and then reads cAdvisor's whole text for
/// throttling and network. CPU rates run from round to round; the slower counters (CFS periods,
/// network bytes) from full round to full round, so a small round neither breaks nor fakes them.
#[derive(Debug, Default)]
pub struct UsageRates {
    pub cpu: CounterRates,
    pub full: CounterRates,
}

impl UsageRates {
    pub fn begin_round(&mut self, full: bool) {
        self.cpu.begin_round();
        if full {
            self.full.begin_round();
        }
    }

    pub fn finish_round(&mut self, full: bool) {
        self.cpu.finish_round();
        if full {
            self.full.finish_round();
        }
    }
}

/// What one round of scrapes yields for the UI.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedUsage {
    pub pod: PodKey,
    pub container: String,
    pub cpu_m: Option<f64>,
    pub working_set: Option<f64>,
    /// Share of CFS periods in which the container hit its quota (0..1).
    pub throttle: Option<f64>,
    /// It has a CPU quota (CFS period counters were read): a throttling ratio is due.
    pub cfs_limited: bool,
    pub oom_events: Option<f64>,
}

impl DerivedUsage {
    /// The usage update every usage source sends (unknown values as NaN).
    pub fn into_container_usage(self) -> ContainerUsage {
        ContainerUsage {
            pod: self.pod,
            container: self.container,
            usage: Usage { cpu_m: self.cpu_m.unwrap_or(f64::NAN), mem: self.working_set.unwrap_or(f64::NAN) },
            throttle: self.throttle,
            oom_events: self.oom_events,
            restarts_last_hour: None,
        }
    }
}

pub fn derive(
    rates: &mut UsageRates,
    scrape: &CadvisorScrape,
    now_ms: i64,
) -> (Vec<DerivedUsage>, Vec<(PodKey, f64, f64)>) {
    let mut usages = Vec::with_capacity(scrape.containers.len());
    for ((pod, container), c) in &scrape.containers {
        let ts = c.timestamp_ms.unwrap_or(now_ms);
        let cpu_m = c
            .cpu_seconds
            .and_then(|v| rates.cpu.increase(pod, container, "cpu", v, ts))
            .map(|(d, secs)| d / secs * 1000.0);
        let slow = &mut rates.full;
        let periods = c.cfs_periods.and_then(|v| slow.increase(pod, container, "periods", v, ts));
        let throttled = c.cfs_throttled_periods.and_then(|v| slow.increase(pod, container, "throttled", v, ts));
        let throttle = match (periods, throttled) {
            (Some((p, _)), Some((t, _))) if p > 0.0 => Some((t / p).clamp(0.0, 1.0)),
            _ => None,
        };
        usages.push(DerivedUsage {
            pod: pod.clone(),
            container: container.clone(),
            cpu_m,
            working_set: c.working_set,
            throttle,
            cfs_limited: c.cfs_periods.is_some(),
            oom_events: c.oom_events,
        });
    }
    let mut net = Vec::with_capacity(scrape.pods.len());
    for (pod, n) in &scrape.pods {
        let ts = n.timestamp_ms.unwrap_or(now_ms);
        let rx = rates.full.increase(pod, "", "rx", n.rx_bytes, ts);
        let tx = rates.full.increase(pod, "", "tx", n.tx_bytes, ts);
        if let (Some((rx, secs)), Some((tx, _))) = (rx, tx) {
            net.push((pod.clone(), rx / secs, tx / secs));
        }
    }
    (usages, net)
}

/// A node's CPU (a rate, so from its second scrape on) and working set from its root cgroup:
/// node usage where no metrics-server serves it.
pub fn derive_machine(rates: &mut UsageRates, node: &str, scrape: &CadvisorScrape, now_ms: i64) -> Option<Usage> {
    let m = &scrape.machine;
    let ts = m.timestamp_ms.unwrap_or(now_ms);
    let key = PodKey::new("", node);
    let cpu_m =
        m.cpu_seconds.and_then(|v| rates.cpu.increase(&key, "/", "cpu", v, ts)).map(|(d, secs)| d / secs * 1000.0);
    (cpu_m.is_some() || m.working_set.is_some())
        .then(|| Usage { cpu_m: cpu_m.unwrap_or(f64::NAN), mem: m.working_set.unwrap_or(f64::NAN) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape_text(cpu: f64, periods: f64, throttled: f64, ts: i64) -> String {
        format!(
            "# TYPE container_cpu_usage_seconds_total counter\n\
             container_cpu_usage_seconds_total{{container=\"\",namespace=\"shop\",pod=\"p\"}} 999 {ts}\n\
             container_cpu_usage_seconds_total{{container=\"app\",namespace=\"shop\",pod=\"p\"}} {cpu} {ts}\n\
             container_cpu_usage_seconds_total{{container=\"POD\",namespace=\"shop\",pod=\"p\"}} 5 {ts}\n\
             container_cpu_cfs_periods_total{{container=\"app\",namespace=\"shop\",pod=\"p\"}} {periods} {ts}\n\
             container_cpu_cfs_throttled_periods_total{{container=\"app\",namespace=\"shop\",pod=\"p\"}} {throttled} {ts}\n\
             container_memory_working_set_bytes{{container=\"app\",namespace=\"shop\",pod=\"p\"}} 1048576 {ts}\n\
             container_network_receive_bytes_total{{container=\"\",interface=\"eth0\",namespace=\"shop\",pod=\"p\"}} {} {ts}\n\
             container_network_transmit_bytes_total{{container=\"\",interface=\"eth0\",namespace=\"shop\",pod=\"p\"}} {} {ts}\n",
            cpu * 100.0,
            cpu * 1000.0
        )
    }

    #[test]
    fn rates_throttling_and_network_from_two_scrapes() {
        let mut rates = UsageRates::default();
        let first = extract(&scrape_text(10.0, 1000.0, 100.0, 1_000_000), Format::Text);
        assert_eq!(first.containers.len(), 1, "pod cgroup and pause rows are dropped");
        rates.begin_round(true);
        let (u, net) = derive(&mut rates, &first, 0);
        assert_eq!(u[0].cpu_m, None, "no rate from one sample");
        assert!(net.is_empty());
        // 10 s later: 1.5 CPU-seconds more, 100 periods of which 60 throttled.
        let second = extract(&scrape_text(11.5, 1100.0, 160.0, 1_010_000), Format::Text);
        rates.begin_round(true);
        let (u, net) = derive(&mut rates, &second, 0);
        assert!((u[0].cpu_m.unwrap() - 150.0).abs() < 1e-9);
        assert!((u[0].throttle.unwrap() - 0.6).abs() < 1e-9);
        assert_eq!(u[0].working_set, Some(1048576.0));
        assert!((net[0].1 - 15.0).abs() < 1e-9 && (net[0].2 - 150.0).abs() < 1e-9);
    }

    /// The root cgroup's rows as a real kubelet 1.36 served them, and its system interfaces'
    /// network (no pod): node usage, and no phantom pod.
    #[test]
    fn the_root_cgroup_is_the_node_and_system_interfaces_are_no_pod() {
        let text = |cpu: f64, ts: i64| {
            format!(
                "container_cpu_usage_seconds_total{{container=\"\",cpu=\"total\",id=\"/\",image=\"\",name=\"\",namespace=\"\",pod=\"\"}} {cpu} {ts}\n\
                 container_memory_working_set_bytes{{container=\"\",id=\"/\",image=\"\",name=\"\",namespace=\"\",pod=\"\"}} 2147483648 {ts}\n\
                 container_network_receive_bytes_total{{container=\"\",id=\"/\",image=\"\",interface=\"eth0\",name=\"\",namespace=\"\",pod=\"\"}} 999 {ts}\n"
            )
        };
        let mut rates = UsageRates::default();
        rates.begin_round(true);
        let first = extract(&text(1364.725457813, 1_796_288_407_633), Format::Text);
        assert!(first.containers.is_empty() && first.pods.is_empty(), "{first:?}");
        let u = derive_machine(&mut rates, "kpulse-node", &first, 0).expect("memory from one scrape");
        assert!(u.cpu_m.is_nan() && u.mem == 2147483648.0);
        rates.begin_round(true);
        let second = extract(&text(1374.725457813, 1_796_288_417_633), Format::Text);
        let u = derive_machine(&mut rates, "kpulse-node", &second, 0).unwrap();
        assert!((u.cpu_m - 1000.0).abs() < 1e-6, "10 CPU-seconds in 10 s: one core, {u:?}");
    }

    /// The kubelet's `/metrics/resource` as kubelet 1.36 serves it: CPU and working set per
    /// container and for the node, and nothing for throttling or network.
    fn resource_text(cpu: f64, node_cpu: f64, ts: i64) -> String {
        format!(
            "# TYPE container_cpu_usage_seconds_total counter\n\
             container_cpu_usage_seconds_total{{container=\"app\",namespace=\"shop\",pod=\"p\"}} {cpu} {ts}\n\
             # TYPE container_memory_working_set_bytes gauge\n\
             container_memory_working_set_bytes{{container=\"app\",namespace=\"shop\",pod=\"p\"}} 1048576 {ts}\n\
             # TYPE container_start_time_seconds gauge\n\
             container_start_time_seconds{{container=\"app\",namespace=\"shop\",pod=\"p\"}} 1.7e+09 {ts}\n\
             # TYPE node_cpu_usage_seconds_total counter\n\
             node_cpu_usage_seconds_total {node_cpu} {ts}\n\
             # TYPE node_memory_working_set_bytes gauge\n\
             node_memory_working_set_bytes 4.294967296e+09 {ts}\n\
             # TYPE pod_cpu_usage_seconds_total counter\n\
             pod_cpu_usage_seconds_total{{namespace=\"shop\",pod=\"p\"}} {cpu} {ts}\n"
        )
    }

    /// Full, small, small, full: CPU has a rate every round; throttling and network only from
    /// full round to full round (over the time between them), never from a small round.
    #[test]
    fn small_rounds_keep_cpu_going_and_leave_throttling_to_full_rounds() {
        let mut rates = UsageRates::default();
        let round = |rates: &mut UsageRates, text: &str, full: bool| {
            rates.begin_round(full);
            let scrape = extract(text, Format::Text);
            let (u, net) = derive(rates, &scrape, 0);
            let machine = derive_machine(rates, "node-a", &scrape, 0);
            rates.finish_round(full);
            (u, net, machine)
        };
        let (u, _, _) = round(&mut rates, &scrape_text(10.0, 1000.0, 100.0, 1_000_000), true);
        assert_eq!(u[0].cpu_m, None);
        let (u, net, machine) = round(&mut rates, &resource_text(11.0, 500.0, 1_015_000), false);
        assert!((u[0].cpu_m.unwrap() - 1000.0 / 15.0).abs() < 1e-6, "{u:?}");
        assert_eq!(u[0].throttle, None, "a small round says nothing of throttling");
        assert!(net.is_empty());
        assert_eq!(machine.unwrap().mem, 4_294_967_296.0, "the node's working set from its own row");
        let (u, _, machine) = round(&mut rates, &resource_text(12.5, 515.0, 1_030_000), false);
        assert!((u[0].cpu_m.unwrap() - 100.0).abs() < 1e-6);
        assert!((machine.unwrap().cpu_m - 1000.0).abs() < 1e-6, "15 CPU-seconds in 15 s");
        // 45 s after the first full round: 300 periods more, 150 of them throttled.
        let (u, net, _) = round(&mut rates, &scrape_text(13.0, 1300.0, 250.0, 1_045_000), true);
        assert!((u[0].cpu_m.unwrap() - 500.0 / 15.0).abs() < 1e-6, "CPU from the small round before");
        assert!((u[0].throttle.unwrap() - 0.5).abs() < 1e-9, "{u:?}");
        assert_eq!(net.len(), 1, "network from full round to full round");
        assert!((net[0].1 - 300.0 / 45.0).abs() < 1e-9);
    }

    #[test]
    fn counter_reset_and_gap() {
        let mut rates = CounterRates::default();
        let pod = PodKey::new("n", "p");
        rates.begin_round();
        assert_eq!(rates.increase(&pod, "c", "cpu", 100.0, 0), None);
        // The container restarted: the counter began again from zero and reached 2.
        rates.begin_round();
        assert_eq!(rates.increase(&pod, "c", "cpu", 2.0, 10_000), Some((2.0, 10.0)));
        // A round without this series (a failed scrape): no rate across the gap.
        rates.begin_round();
        rates.begin_round();
        assert_eq!(rates.increase(&pod, "c", "cpu", 8.0, 70_000), None);
        rates.begin_round();
        assert_eq!(rates.increase(&pod, "c", "cpu", 9.0, 80_000), Some((1.0, 10.0)));
        // Same timestamp twice (a cached scrape): no rate.
        rates.begin_round();
        assert_eq!(rates.increase(&pod, "c", "cpu", 9.0, 80_000), None);
    }

    #[test]
    fn forgotten_series_are_pruned_per_round() {
        let mut rates = CounterRates::default();
        let pod = PodKey::new("n", "p");
        rates.begin_round();
        rates.increase(&pod, "a", "cpu", 1.0, 0);
        rates.increase(&pod, "b", "cpu", 1.0, 0);
        rates.finish_round();
        rates.begin_round();
        rates.increase(&pod, "a", "cpu", 2.0, 1);
        rates.finish_round();
        assert_eq!(rates.len(), 1);
    }
}
