//! The Events view's queues: their order on screen and which pods consume each.

use std::collections::{BTreeMap, HashMap};

use super::rows::ConsumedQueue;
use crate::model::broker::QueueKey;
use crate::model::pod::{PodInfo, PodKey};

/// The next (or previous) column, in its natural direction.
use super::State;

impl State {
    /// The Events view's order: growing backlogs first (fastest first), then the largest.
    pub fn queue_order(&self) -> Vec<&QueueKey> {
        let filter = self.filter.to_lowercase();
        let mut keys: Vec<&QueueKey> =
            self.queues.keys().filter(|k| filter.is_empty() || k.label().to_lowercase().contains(&filter)).collect();
        let growth = |k: &QueueKey| {
            let s = &self.queues[k].stats;
            (if s.growing_since.is_some() { s.backlog_per_sec } else { f64::NEG_INFINITY }, s.backlog)
        };
        keys.sort_by(|a, b| {
            let (ga, ba) = growth(a);
            let (gb, bb) = growth(b);
            gb.total_cmp(&ga).then(bb.total_cmp(&ba)).then_with(|| a.cmp(b))
        });
        keys
    }

    /// Whether `pod` consumes the queue: the broker names it as a client (its IP or name), or a
    /// `[[events.consumers]]` selector for the queue matches it, else (no selector given) it is
    /// labelled with the consumer group's name (a Kafka group or JetStream consumer is usually
    /// named after its service).
    pub fn consumes(&self, key: &QueueKey, pod: &PodInfo) -> bool {
        if let Some(track) = self.queues.get(key)
            && !track.stats.clients.is_empty()
            && (track.stats.clients.contains(&pod.key.name)
                || pod.pod_ip.as_ref().is_some_and(|ip| track.stats.clients.contains(ip)))
        {
            return true;
        }
        let mut specs = self.config.events.consumers.iter().filter(|c| c.matches(key)).peekable();
        if specs.peek().is_none() {
            return !key.group.is_empty()
                && ["app", "app.kubernetes.io/name"].iter().any(|l| pod.label(l) == Some(key.group.as_str()));
        }
        specs.any(|spec| {
            spec.selector().is_some_and(|(ns, labels)| {
                pod.key.namespace == ns && labels.iter().all(|(k, v)| pod.label(k) == Some(*v))
            })
        })
    }

    /// Re-derives who consumes what, when queues or pods changed (not per frame): each queue's
    /// consumer pods, and on each consumer's rows its queue (the worst, if several). One pass over
    /// the pods per queue.
    pub(super) fn refresh_consumers(&mut self) {
        let mut by_pod: HashMap<PodKey, ConsumedQueue> = HashMap::new();
        let mut by_queue = BTreeMap::new();
        for (key, track) in &self.queues {
            let queue = ConsumedQueue { backlog: track.stats.backlog, direction: track.stats.direction };
            let mut names = Vec::new();
            for pod in self.pods.values().filter(|p| self.consumes(key, p)) {
                by_pod.entry(pod.key.clone()).and_modify(|q| *q = q.worse(queue)).or_insert(queue);
                names.push(pod.key.to_string());
            }
            by_queue.insert(key.clone(), names);
        }
        for row in &mut self.container_table.rows {
            row.consumed = by_pod.get(&row.pod).copied();
        }
        self.queue_consumers = by_queue;
    }

    /// The pods that consume a queue, as `namespace/pod`, as of the last refresh.
    pub fn consumer_pods(&self, key: &QueueKey) -> &[String] {
        self.queue_consumers.get(key).map_or(&[], Vec::as_slice)
    }
}
