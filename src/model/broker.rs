//! Message-broker queues and consumer groups from their Prometheus exposition: RabbitMQ's built-in
//! endpoint (`/metrics/per-object`), kafka-exporter, and the NATS exporter's JetStream metrics.
//! Which metric means what is data ([`Mapping`]), one default per broker, overridable in the
//! config under `[events.mapping.KIND]`. Pure: text in, readings out; rates and trends per queue.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use serde::Deserialize;

use super::exposition::{self, Format};
use super::series::Series;
use super::time::UnixSecs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    Rabbitmq,
    Kafka,
    Nats,
}

impl BrokerKind {
    pub const ALL: [BrokerKind; 3] = [BrokerKind::Rabbitmq, BrokerKind::Kafka, BrokerKind::Nats];

    pub fn parse(s: &str) -> Option<BrokerKind> {
        BrokerKind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Rabbitmq => "rabbitmq",
            BrokerKind::Kafka => "kafka",
            BrokerKind::Nats => "nats",
        }
    }

    /// The metric names and labels each exporter documents.
    pub fn default_mapping(self) -> Mapping {
        let s = |v: &str| Some(v.to_string());
        match self {
            // rabbitmq_prometheus, per-object: queue gauges by (vhost, queue); published counts by
            // (channel, queue); acks and redeliveries by (channel, queue). Dead-lettering is only
            // counted globally in 3.x, so it has no per-queue column here.
            BrokerKind::Rabbitmq => Mapping {
                queue_label: "queue".into(),
                group_label: None,
                backlog: vec!["rabbitmq_queue_messages_ready".into(), "rabbitmq_queue_messages_unacked".into()],
                unacked: s("rabbitmq_queue_messages_unacked"),
                consumers: s("rabbitmq_queue_consumers"),
                published: s("rabbitmq_queue_messages_published_total"),
                acked: s("rabbitmq_channel_messages_acked_total"),
                redelivered: s("rabbitmq_channel_messages_redelivered_total"),
                dead_lettered: None,
                // rabbitmq_prometheus has no per-consumer family naming a connection's peer.
                client_labels: Vec::new(),
            },
            // kafka-exporter: lag and committed offsets by (consumergroup, topic, partition), the
            // log-end offset by (topic, partition), members by consumergroup.
            BrokerKind::Kafka => Mapping {
                queue_label: "topic".into(),
                group_label: s("consumergroup"),
                backlog: vec!["kafka_consumergroup_lag".into()],
                unacked: None,
                consumers: s("kafka_consumergroup_members"),
                published: s("kafka_topic_partition_current_offset"),
                acked: s("kafka_consumergroup_current_offset"),
                redelivered: None,
                dead_lettered: None,
                // kafka-lag-exporter labels each partition's lag with the member that owns it
                // (`member_host` is the consumer's IP or host name); kafka-exporter has neither.
                client_labels: vec!["member_host".into(), "client_id".into()],
            },
            // prometheus-nats-exporter with -jsz: per (stream_name, consumer_name).
            BrokerKind::Nats => Mapping {
                queue_label: "stream_name".into(),
                group_label: s("consumer_name"),
                backlog: vec!["jetstream_consumer_num_pending".into(), "jetstream_consumer_num_ack_pending".into()],
                unacked: s("jetstream_consumer_num_ack_pending"),
                consumers: None,
                published: s("jetstream_stream_last_seq"),
                acked: s("jetstream_consumer_ack_floor_stream_seq"),
                redelivered: s("jetstream_consumer_num_redelivered"),
                dead_lettered: None,
                client_labels: Vec::new(),
            },
        }
    }
}

/// One broker to scrape: `--broker KIND[/NAME]=URL`, or `KIND[/NAME]=prometheus:URL` to read the
/// broker's metrics from a Prometheus server that scrapes it.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerTarget {
    /// What the rows call it: NAME, else the kind.
    pub name: String,
    pub kind: BrokerKind,
    pub url: String,
    /// `url` is a Prometheus server: its `/federate` endpoint gives the mapped series as exposition.
    pub via_prometheus: bool,
}

impl BrokerTarget {
    pub fn parse(spec: &str) -> Result<BrokerTarget, String> {
        let usage = || {
            format!(
                "broker {spec:?}: expected KIND[/NAME]=URL or KIND[/NAME]=prometheus:URL with KIND rabbitmq, kafka or nats"
            )
        };
        let (left, url) = spec.split_once('=').ok_or_else(usage)?;
        let (kind, name) = left.split_once('/').unwrap_or((left, left));
        let kind = BrokerKind::parse(kind).ok_or_else(usage)?;
        let (url, via_prometheus) = match url.strip_prefix("prometheus:") {
            Some(server) => (server.trim_end_matches('/'), true),
            None => (url, false),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) || name.is_empty() {
            return Err(format!("{} (an http:// or https:// URL)", usage()));
        }
        Ok(BrokerTarget { name: name.to_string(), kind, url: url.to_string(), via_prometheus })
    }

    /// What to GET: the exposition URL, or the Prometheus server's federation of exactly the
    /// series the mapping reads (the latest sample of each, as exposition text).
    pub fn fetch_url(&self, mapping: &Mapping) -> String {
        if !self.via_prometheus {
            return self.url.clone();
        }
        let names: Vec<&str> = mapping.metric_names().collect();
        let selector = format!("{{__name__=~\"{}\"}}", names.join("|"));
        let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("match[]", &selector).finish();
        format!("{}/federate?{query}", self.url)
    }
}

/// Who consumes a queue: `[[events.consumers]]` in the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    pub queue: String,
    /// The consumer group, where the broker has them; any group when absent.
    pub group: Option<String>,
    /// `NAMESPACE/LABEL-SELECTOR` of the consuming pods, e.g. `shop/app=notification`.
    pub pods: String,
}

impl ConsumerSpec {
    pub fn matches(&self, key: &QueueKey) -> bool {
        self.queue == key.queue && self.group.as_ref().is_none_or(|g| *g == key.group)
    }

    /// (namespace, [(label, value)]) of the pods.
    pub fn selector(&self) -> Option<(&str, Vec<(&str, &str)>)> {
        let (ns, sel) = self.pods.split_once('/')?;
        let pairs: Option<Vec<(&str, &str)>> = sel.split(',').map(|kv| kv.split_once('=')).collect();
        Some((ns, pairs?))
    }
}

/// Which metrics and labels of an exporter mean what.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The label naming the queue, topic or stream.
    pub queue_label: String,
    /// The label naming the consumer group (Kafka) or durable consumer (JetStream). None for
    /// RabbitMQ, where the consumers of a queue share it.
    pub group_label: Option<String>,
    /// Gauges whose sum is the backlog (waiting + delivered but not acknowledged, or lag).
    pub backlog: Vec<String>,
    pub unacked: Option<String>,
    pub consumers: Option<String>,
    /// Counters (or ever-growing offsets): messages in, messages acknowledged, redeliveries,
    /// dead-lettered.
    pub published: Option<String>,
    pub acked: Option<String>,
    pub redelivered: Option<String>,
    pub dead_lettered: Option<String>,
    /// Labels naming the consuming client (its IP, host name or pod name), where the exporter
    /// has them: they tie a consumer to its pods without any configuration.
    #[serde(default)]
    pub client_labels: Vec<String>,
}

impl Mapping {
    /// Every metric name it reads.
    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        let optional =
            [&self.unacked, &self.consumers, &self.published, &self.acked, &self.redelivered, &self.dead_lettered];
        self.backlog.iter().map(String::as_str).chain(optional.into_iter().flatten().map(String::as_str))
    }
}

/// A queue (RabbitMQ) or a consumer group on a topic/stream (Kafka, JetStream), on one broker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueKey {
    /// The broker as the user named it (`--broker NAME=…`, default its kind).
    pub broker: String,
    pub queue: String,
    /// Empty where the broker has no groups.
    pub group: String,
}

impl QueueKey {
    pub fn label(&self) -> String {
        if self.group.is_empty() {
            format!("{}/{}", self.broker, self.queue)
        } else {
            format!("{}/{}/{}", self.broker, self.queue, self.group)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Published = 0,
    Acked = 1,
    Redelivered = 2,
    DeadLettered = 3,
}

const COUNTERS: [Counter; 4] = [Counter::Published, Counter::Acked, Counter::Redelivered, Counter::DeadLettered];

/// One scrape of one queue: gauges summed over partitions, counters per series (a RabbitMQ
/// channel, a Kafka partition) so that rates survive series coming and going.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub backlog: f64,
    pub unacked: Option<f64>,
    pub consumers: Option<f64>,
    pub counters: [Vec<(u64, f64)>; 4],
    /// The consuming clients the exporter names, normalised by [`client_address`].
    pub clients: BTreeSet<String>,
    /// The newest sample timestamp (ms), where the exposition has them (a Prometheus `/federate`,
    /// the simulator): rates are per the exporter's clock, not per the poll's.
    pub sampled_ms: Option<i64>,
}

/// A client label's value as a pod name or IP: `/10.0.1.5` (Kafka's member host), `10.0.1.5:4312`
/// and `pod-a.ns.svc` become `10.0.1.5` and `pod-a`.
pub fn client_address(value: &str) -> Option<String> {
    let host = super::traffic::upstream_ip(value.trim().trim_start_matches('/'));
    // An IPv4 address keeps its dots; a host name is a pod's name up to the first dot.
    let name = if host.parse::<std::net::IpAddr>().is_ok() { host } else { host.split('.').next().unwrap_or(host) };
    (!name.is_empty()).then(|| name.to_string())
}

#[derive(Clone, Copy)]
enum Role {
    Backlog,
    Unacked,
    Consumers,
    Counter(Counter),
}

/// Reads one exposition document into per-queue readings. Samples without the group label (a
/// topic's log-end offset) apply to every group of their queue; samples without the queue label
/// (a Kafka group's members) to every queue of their group. Errors only when nothing parsed.
pub fn read(broker: &str, mapping: &Mapping, text: &str) -> Result<BTreeMap<QueueKey, Reading>, String> {
    let mut roles: HashMap<&str, Vec<Role>> = HashMap::new();
    for name in &mapping.backlog {
        roles.entry(name).or_default().push(Role::Backlog);
    }
    let optional = [
        (&mapping.unacked, Role::Unacked),
        (&mapping.consumers, Role::Consumers),
        (&mapping.published, Role::Counter(Counter::Published)),
        (&mapping.acked, Role::Counter(Counter::Acked)),
        (&mapping.redelivered, Role::Counter(Counter::Redelivered)),
        (&mapping.dead_lettered, Role::Counter(Counter::DeadLettered)),
    ];
    for (name, role) in optional {
        if let Some(name) = name {
            roles.entry(name.as_str()).or_default().push(role);
        }
    }
    // (queue, group) → reading; partial keys (one side missing) are spread afterwards.
    let mut direct: BTreeMap<(String, String), Reading> = BTreeMap::new();
    let mut by_queue: Vec<(String, Role, u64, f64)> = Vec::new();
    let mut by_group: Vec<(String, Role, u64, f64)> = Vec::new();
    let stats = exposition::parse(text, Format::detect(None, text), |s| {
        let Some(wanted) = roles.get(s.name.as_ref()) else { return };
        if !s.value.is_finite() {
            return;
        }
        let queue = s.label(&mapping.queue_label).map(str::to_string);
        let group = match &mapping.group_label {
            Some(g) => s.label(g).map(str::to_string),
            None => Some(String::new()),
        };
        let series = series_id(&s.name, s.labels);
        if let (Some(q), Some(g)) = (&queue, &group) {
            let reading = direct.entry((q.clone(), g.clone())).or_default();
            reading.sampled_ms = reading.sampled_ms.max(s.timestamp_ms);
            let clients = mapping.client_labels.iter().filter_map(|l| s.label(l)).filter_map(client_address);
            reading.clients.extend(clients);
        }
        for role in wanted {
            match (&queue, &group) {
                (Some(q), Some(g)) => apply(direct.entry((q.clone(), g.clone())).or_default(), *role, series, s.value),
                (Some(q), None) => by_queue.push((q.clone(), *role, series, s.value)),
                (None, Some(g)) if !g.is_empty() => by_group.push((g.clone(), *role, series, s.value)),
                _ => {}
            }
        }
    });
    if stats.samples == 0 && !stats.errors.is_empty() {
        let e = &stats.errors[0];
        return Err(format!("not Prometheus exposition (line {}: {})", e.line, e.message));
    }
    // Without a group label every sample is direct; a queue-wide sample with no group rows yet
    // (a topic nobody consumes) still gets a row of its own.
    for (queue, role, series, value) in by_queue {
        let mut hit = false;
        for (_, reading) in direct.iter_mut().filter(|((q, _), _)| *q == queue) {
            apply(reading, role, series, value);
            hit = true;
        }
        if !hit && matches!(role, Role::Counter(Counter::Published)) {
            apply(direct.entry((queue, String::new())).or_default(), role, series, value);
        }
    }
    for (group, role, series, value) in by_group {
        for (_, reading) in direct.iter_mut().filter(|((_, g), _)| *g == group) {
            apply(reading, role, series, value);
        }
    }
    Ok(direct
        .into_iter()
        .map(|((queue, group), r)| (QueueKey { broker: broker.to_string(), queue, group }, r))
        .collect())
}

fn apply(r: &mut Reading, role: Role, series: u64, value: f64) {
    match role {
        Role::Backlog => r.backlog += value,
        Role::Unacked => *r.unacked.get_or_insert(0.0) += value,
        Role::Consumers => *r.consumers.get_or_insert(0.0) += value,
        Role::Counter(c) => r.counters[c as usize].push((series, value)),
    }
}

fn series_id(name: &str, labels: &[(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let mut sorted: Vec<_> = labels.iter().collect();
    sorted.sort();
    for (k, v) in sorted {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

/// Which way a backlog is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Growing,
    Draining,
    Steady,
}

impl Direction {
    pub fn word(self) -> &'static str {
        match self {
            Direction::Growing => "growing",
            Direction::Draining => "draining",
            Direction::Steady => "steady",
        }
    }
}

/// The latest view of a queue, derived from its readings.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    pub backlog: f64,
    pub unacked: Option<f64>,
    pub consumers: Option<f64>,
    /// Per second over the last scrape interval; None before two scrapes or without the metric.
    pub publish_rate: Option<f64>,
    pub ack_rate: Option<f64>,
    pub redelivery_rate: Option<f64>,
    pub dead_letter_rate: Option<f64>,
    pub direction: Direction,
    /// Backlog change per second, fitted over the trend window.
    pub backlog_per_sec: f64,
    /// Since when the backlog has been growing without a break.
    pub growing_since: Option<UnixSecs>,
    /// Seconds until empty at the current rates; None when not draining.
    pub drain_secs: Option<f64>,
    /// Pod names or IPs of the consuming clients, where the exporter names them.
    pub clients: BTreeSet<String>,
}

/// The backlog's slope over this window decides its direction.
pub const TREND_WINDOW_SECS: i64 = 60;

/// History and counter state of one queue.
#[derive(Debug, Clone)]
pub struct QueueTrack {
    pub backlog: Series,
    pub publish: Series,
    pub ack: Series,
    pub stats: QueueStats,
    pub last_at: UnixSecs,
    last_sampled_ms: Option<i64>,
    last_counters: [HashMap<u64, f64>; 4],
    rates: [Option<f64>; 4],
}

impl QueueTrack {
    pub fn new(step_secs: i64, retention_secs: i64) -> QueueTrack {
        QueueTrack {
            backlog: Series::new(step_secs, retention_secs),
            publish: Series::new(step_secs, retention_secs),
            ack: Series::new(step_secs, retention_secs),
            stats: QueueStats {
                backlog: 0.0,
                unacked: None,
                consumers: None,
                publish_rate: None,
                ack_rate: None,
                redelivery_rate: None,
                dead_letter_rate: None,
                direction: Direction::Steady,
                backlog_per_sec: 0.0,
                growing_since: None,
                drain_secs: None,
                clients: BTreeSet::new(),
            },
            last_at: 0,
            last_sampled_ms: None,
            last_counters: Default::default(),
            rates: [None; 4],
        }
    }

    /// Folds in one scrape. A counter series seen for the first time adds nothing (a Kafka offset
    /// is a position, not a count since the last scrape); one that went down was reset and counts
    /// from zero.
    pub fn observe(&mut self, at: UnixSecs, reading: &Reading) {
        // The exporter's own clock where the samples carry it: a Prometheus that scraped once
        // between two polls, or twice, must not halve or double the rate.
        let dt = match (reading.sampled_ms, self.last_sampled_ms) {
            (Some(now), Some(before)) => (now - before) as f64 / 1000.0,
            _ => (at - self.last_at) as f64,
        };
        self.last_sampled_ms = reading.sampled_ms;
        for c in COUNTERS {
            let now: HashMap<u64, f64> = reading.counters[c as usize].iter().copied().collect();
            let previous = &self.last_counters[c as usize];
            self.rates[c as usize] = if now.is_empty() {
                None
            } else if self.last_at > 0 && dt > 0.0 {
                let increase: f64 =
                    now.iter().filter_map(|(id, v)| previous.get(id).map(|p| if v >= p { v - p } else { *v })).sum();
                Some(increase / dt)
            } else {
                self.rates[c as usize]
            };
            self.last_counters[c as usize] = now;
        }
        self.last_at = at;
        self.backlog.push(at, reading.backlog);
        if let Some(r) = self.rates[Counter::Published as usize] {
            self.publish.push(at, r);
        }
        if let Some(r) = self.rates[Counter::Acked as usize] {
            self.ack.push(at, r);
        }
        let slope = self.backlog.trend(at - TREND_WINDOW_SECS).map_or(0.0, |t| t.per_sec);
        // Growing or draining by at least one message a second, or 1 % of the backlog a minute.
        let noise = (reading.backlog * 0.01 / 60.0).max(1.0);
        let direction = if slope > noise {
            Direction::Growing
        } else if slope < -noise {
            Direction::Draining
        } else {
            Direction::Steady
        };
        let growing_since = match direction {
            Direction::Growing => Some(self.stats.growing_since.unwrap_or(at)),
            _ => None,
        };
        // At the current rates where both are known (they react within a scrape), else the slope.
        let outflow = match (self.rates[Counter::Acked as usize], self.rates[Counter::Published as usize]) {
            (Some(ack), Some(publish)) => ack - publish,
            _ => -slope,
        };
        let drain_secs = (direction == Direction::Draining && reading.backlog > 0.0 && outflow > 0.0)
            .then(|| reading.backlog / outflow);
        self.stats = QueueStats {
            backlog: reading.backlog,
            unacked: reading.unacked,
            consumers: reading.consumers,
            publish_rate: self.rates[Counter::Published as usize],
            ack_rate: self.rates[Counter::Acked as usize],
            redelivery_rate: self.rates[Counter::Redelivered as usize],
            dead_letter_rate: self.rates[Counter::DeadLettered as usize],
            direction,
            backlog_per_sec: slope,
            growing_since,
            drain_secs,
            clients: reading.clients.clone(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What RabbitMQ 3.10's /metrics/per-object printed for a queue with one publisher channel and
    /// one consumer channel (trimmed to the families read here, plus one that is not).
    const RABBIT: &str = r#"# TYPE rabbitmq_queue_messages_ready gauge
rabbitmq_queue_messages_ready{vhost="/",queue="order-events"} 366
rabbitmq_queue_messages_ready{vhost="/",queue="audit"} 0
# TYPE rabbitmq_queue_messages_unacked gauge
rabbitmq_queue_messages_unacked{vhost="/",queue="order-events"} 1
rabbitmq_queue_messages_unacked{vhost="/",queue="audit"} 0
# TYPE rabbitmq_queue_consumers gauge
rabbitmq_queue_consumers{vhost="/",queue="order-events"} 1
rabbitmq_queue_consumers{vhost="/",queue="audit"} 0
# TYPE rabbitmq_queue_process_memory_bytes gauge
rabbitmq_queue_process_memory_bytes{vhost="/",queue="order-events"} 427000
# TYPE rabbitmq_channel_messages_acked_total counter
rabbitmq_channel_messages_acked_total{channel="<0.830.0>",vhost="/",queue="order-events"} 37
# TYPE rabbitmq_channel_messages_redelivered_total counter
rabbitmq_channel_messages_redelivered_total{channel="<0.830.0>",vhost="/",queue="order-events"} 0
# TYPE rabbitmq_queue_messages_published_total counter
rabbitmq_queue_messages_published_total{channel="<0.822.0>",queue_vhost="/",queue="order-events",exchange_vhost="/",exchange=""} 145
"#;

    /// kafka-exporter's documented families: two partitions, two groups on one topic.
    const KAFKA: &str = r#"# TYPE kafka_topic_partition_current_offset gauge
kafka_topic_partition_current_offset{partition="0",topic="orders"} 1000
kafka_topic_partition_current_offset{partition="1",topic="orders"} 2000
# TYPE kafka_consumergroup_current_offset gauge
kafka_consumergroup_current_offset{consumergroup="billing",partition="0",topic="orders"} 900
kafka_consumergroup_current_offset{consumergroup="billing",partition="1",topic="orders"} 1500
kafka_consumergroup_current_offset{consumergroup="search",partition="0",topic="orders"} 1000
kafka_consumergroup_current_offset{consumergroup="search",partition="1",topic="orders"} 2000
# TYPE kafka_consumergroup_lag gauge
kafka_consumergroup_lag{consumergroup="billing",partition="0",topic="orders"} 100
kafka_consumergroup_lag{consumergroup="billing",partition="1",topic="orders"} 500
kafka_consumergroup_lag{consumergroup="search",partition="0",topic="orders"} 0
kafka_consumergroup_lag{consumergroup="search",partition="1",topic="orders"} 0
# TYPE kafka_consumergroup_members gauge
kafka_consumergroup_members{consumergroup="billing"} 2
kafka_consumergroup_members{consumergroup="search"} 1
"#;

    /// prometheus-nats-exporter -jsz=consumers (labels trimmed to the ones that matter).
    const NATS: &str = r#"# TYPE jetstream_stream_last_seq gauge
jetstream_stream_last_seq{account="A",stream_name="ORDERS",server_id="N1"} 5000
# TYPE jetstream_consumer_num_pending gauge
jetstream_consumer_num_pending{account="A",stream_name="ORDERS",consumer_name="mailer",server_id="N1"} 1200
# TYPE jetstream_consumer_num_ack_pending gauge
jetstream_consumer_num_ack_pending{account="A",stream_name="ORDERS",consumer_name="mailer",server_id="N1"} 30
# TYPE jetstream_consumer_ack_floor_stream_seq gauge
jetstream_consumer_ack_floor_stream_seq{account="A",stream_name="ORDERS",consumer_name="mailer",server_id="N1"} 3770
# TYPE jetstream_consumer_num_redelivered gauge
jetstream_consumer_num_redelivered{account="A",stream_name="ORDERS",consumer_name="mailer",server_id="N1"} 4
"#;

    fn key(broker: &str, queue: &str, group: &str) -> QueueKey {
        QueueKey { broker: broker.into(), queue: queue.into(), group: group.into() }
    }

    #[test]
    fn rabbitmq_per_object_metrics_become_one_reading_per_queue() {
        let r = read("rabbitmq", &BrokerKind::Rabbitmq.default_mapping(), RABBIT).unwrap();
        assert_eq!(r.len(), 2);
        let q = &r[&key("rabbitmq", "order-events", "")];
        assert_eq!((q.backlog, q.unacked, q.consumers), (367.0, Some(1.0), Some(1.0)));
        assert_eq!(q.counters[Counter::Published as usize].iter().map(|c| c.1).sum::<f64>(), 145.0);
        assert_eq!(q.counters[Counter::Acked as usize].iter().map(|c| c.1).sum::<f64>(), 37.0);
        assert_eq!(r[&key("rabbitmq", "audit", "")].backlog, 0.0);
    }

    #[test]
    fn kafka_lag_is_summed_over_partitions_and_topic_offsets_reach_every_group() {
        let r = read("kafka", &BrokerKind::Kafka.default_mapping(), KAFKA).unwrap();
        let billing = &r[&key("kafka", "orders", "billing")];
        assert_eq!(billing.backlog, 600.0);
        assert_eq!(billing.consumers, Some(2.0), "members apply to the group's topics");
        assert_eq!(billing.counters[Counter::Published as usize].len(), 2, "the topic's offsets, per partition");
        assert_eq!(r[&key("kafka", "orders", "search")].backlog, 0.0);
    }

    #[test]
    fn nats_jetstream_consumers_read_pending_and_ack_pending() {
        let r = read("nats", &BrokerKind::Nats.default_mapping(), NATS).unwrap();
        let mailer = &r[&key("nats", "ORDERS", "mailer")];
        assert_eq!((mailer.backlog, mailer.unacked), (1230.0, Some(30.0)));
        assert_eq!(mailer.counters[Counter::Published as usize], vec![(mailer.counters[0][0].0, 5000.0)]);
    }

    #[test]
    fn garbage_is_an_error_and_unrelated_exposition_is_empty() {
        let mapping = BrokerKind::Rabbitmq.default_mapping();
        assert!(read("rabbitmq", &mapping, "<html>502 Bad Gateway</html>\n").is_err());
        assert!(read("rabbitmq", &mapping, "# TYPE up gauge\nup 1\n").unwrap().is_empty());
    }

    /// kafka-lag-exporter's documented families (README "Metrics"): the lag per partition names
    /// the member that owns the partition.
    const KAFKA_LAG_EXPORTER: &str = r#"# TYPE kafka_consumergroup_group_lag gauge
kafka_consumergroup_group_lag{cluster_name="main",group="billing",topic="orders",partition="0",member_host="/10.244.1.7",consumer_id="billing-1-5f2c",client_id="billing-1"} 100 1700000000000
kafka_consumergroup_group_lag{cluster_name="main",group="billing",topic="orders",partition="1",member_host="/10.244.2.9",consumer_id="billing-2-77aa",client_id="billing-2"} 500 1700000000000
# TYPE kafka_consumergroup_group_offset gauge
kafka_consumergroup_group_offset{cluster_name="main",group="billing",topic="orders",partition="0",member_host="/10.244.1.7",consumer_id="billing-1-5f2c",client_id="billing-1"} 900 1700000000000
kafka_consumergroup_group_offset{cluster_name="main",group="billing",topic="orders",partition="1",member_host="/10.244.2.9",consumer_id="billing-2-77aa",client_id="billing-2"} 1500 1700000000000
# TYPE kafka_partition_latest_offset gauge
kafka_partition_latest_offset{cluster_name="main",topic="orders",partition="0"} 1000 1700000000000
kafka_partition_latest_offset{cluster_name="main",topic="orders",partition="1"} 2000 1700000000000
"#;

    #[test]
    fn kafka_lag_exporter_members_name_the_consuming_pods() {
        // Its label and metric names, as a user overrides them in [events.mapping.kafka].
        let mapping = Mapping {
            group_label: Some("group".into()),
            backlog: vec!["kafka_consumergroup_group_lag".into()],
            consumers: None,
            published: Some("kafka_partition_latest_offset".into()),
            acked: Some("kafka_consumergroup_group_offset".into()),
            ..BrokerKind::Kafka.default_mapping()
        };
        let r = read("kafka", &mapping, KAFKA_LAG_EXPORTER).unwrap();
        let billing = &r[&key("kafka", "orders", "billing")];
        assert_eq!(billing.backlog, 600.0);
        let clients: Vec<&str> = billing.clients.iter().map(String::as_str).collect();
        assert_eq!(clients, ["10.244.1.7", "10.244.2.9", "billing-1", "billing-2"]);
        assert_eq!(billing.sampled_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn client_addresses_become_pod_names_or_ips() {
        assert_eq!(client_address("/10.0.1.5").as_deref(), Some("10.0.1.5"));
        assert_eq!(client_address("10.0.1.5:43120").as_deref(), Some("10.0.1.5"));
        assert_eq!(client_address("event-consumer-7d9f-x2x.shop.svc").as_deref(), Some("event-consumer-7d9f-x2x"));
        assert_eq!(client_address("fd00::1").as_deref(), Some("fd00::1"));
        assert_eq!(client_address("[fd00::1]:9092").as_deref(), Some("fd00::1"));
        assert_eq!(client_address(" / "), None);
    }

    #[test]
    fn rates_follow_the_exporters_clock_where_samples_carry_it() {
        // Polled every 5 s, but the Prometheus behind /federate scraped at 0, 15 and 30 s.
        let mut t = QueueTrack::new(5, 900);
        let at_ms = |r: Reading, ms: i64| Reading { sampled_ms: Some(ms), ..r };
        t.observe(100, &at_ms(reading(0.0, 0.0, 0.0), 0));
        t.observe(105, &at_ms(reading(0.0, 150.0, 150.0), 15_000));
        assert_eq!(t.stats.publish_rate, Some(10.0), "150 in 15 s, not in the 5 s between polls");
        t.observe(110, &at_ms(reading(0.0, 150.0, 150.0), 15_000));
        assert_eq!(t.stats.publish_rate, Some(10.0), "no new scrape: the rate stands");
        t.observe(115, &at_ms(reading(0.0, 300.0, 300.0), 30_000));
        assert_eq!(t.stats.publish_rate, Some(10.0));
    }

    fn reading(backlog: f64, published: f64, acked: f64) -> Reading {
        let mut r = Reading { backlog, ..Default::default() };
        r.counters[Counter::Published as usize] = vec![(1, published)];
        r.counters[Counter::Acked as usize] = vec![(2, acked)];
        r
    }

    #[test]
    fn rates_trend_and_time_to_drain() {
        let mut t = QueueTrack::new(5, 900);
        // In 50/s, out 30/s: the backlog grows 20/s.
        for i in 0..30 {
            let at = 1_000 + i * 5;
            t.observe(at, &reading(20.0 * (i * 5) as f64, 50.0 * (i * 5) as f64, 30.0 * (i * 5) as f64));
        }
        let s = &t.stats;
        assert_eq!((s.publish_rate, s.ack_rate), (Some(50.0), Some(30.0)));
        assert_eq!(s.direction, Direction::Growing);
        assert!((s.backlog_per_sec - 20.0).abs() < 0.01, "{}", s.backlog_per_sec);
        assert_eq!(s.growing_since, Some(1_010), "growing since the third scrape: a line needs three points");
        assert_eq!(s.drain_secs, None);
        // Then out 80/s, in 50/s: draining 30/s.
        let (mut backlog, mut p, mut a) = (2_900.0, 7_250.0, 4_350.0);
        for i in 30..45 {
            backlog -= 150.0;
            p += 250.0;
            a += 400.0;
            t.observe(1_000 + i * 5, &reading(backlog, p, a));
        }
        let s = &t.stats;
        assert_eq!(s.direction, Direction::Draining);
        assert_eq!(s.growing_since, None);
        let drain = s.drain_secs.unwrap();
        assert!((drain - s.backlog / 30.0).abs() < 1.0, "{drain}");
    }

    #[test]
    fn a_new_or_reset_counter_series_does_not_fake_a_burst() {
        let mut t = QueueTrack::new(5, 900);
        t.observe(100, &reading(0.0, 1_000_000.0, 10.0));
        t.observe(105, &reading(0.0, 1_000_050.0, 20.0));
        assert_eq!(t.stats.publish_rate, Some(10.0));
        // The publisher's channel was replaced: a new series id, counted from the next scrape.
        let mut r = reading(0.0, 5.0, 30.0);
        r.counters[Counter::Published as usize] = vec![(9, 5.0)];
        t.observe(110, &r);
        assert_eq!(t.stats.publish_rate, Some(0.0));
        // A reset (the consumer restarted): counts from zero.
        t.observe(115, &reading(0.0, 0.0, 5.0));
        assert_eq!(t.stats.ack_rate, Some(1.0));
    }
}
