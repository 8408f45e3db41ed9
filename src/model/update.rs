//! What the sources send the app, one owned message at a time: data (pods, usage, log lines,
//! queues) and how each source is doing. Plain data, so the app and the UI depend on the
//! messages and never on the sources that send them.

use super::event::EventInfo;
use super::metrics::{ContainerHistory, ContainerUsage, Usage};
use super::node::NodeInfo;
use super::pod::{PodInfo, PodKey};
use super::service::ServiceInfo;
use super::store::Change;
use super::time::UnixSecs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceId {
    Pods,
    Nodes,
    Events,
    PodMetrics,
    NodeMetrics,
    Cadvisor,
    Prometheus,
    /// Gateway access logs (pod logs, files, stdin).
    Gateway,
    /// Message brokers' exposition endpoints (`--broker`).
    Brokers,
    /// Services: what gateway backend names stand for.
    Services,
    /// Mesh sidecars' access logs: the calls between services.
    Mesh,
}

impl SourceId {
    /// The sources every session has; usage sources announce themselves when started.
    pub const ALWAYS: [SourceId; 3] = [SourceId::Pods, SourceId::Nodes, SourceId::Events];

    /// A helper source (Services only refine backend names) takes status-bar room only when it
    /// has a problem to tell.
    pub fn shown_when_healthy(self) -> bool {
        !matches!(self, SourceId::Services | SourceId::Mesh)
    }

    /// Polled sources deliver on every interval, so old data means stale data; watches deliver
    /// only on change.
    pub fn is_polled(self) -> bool {
        // A quiet gateway log means no requests, not stale data.
        !matches!(self, SourceId::Pods | SourceId::Nodes | SourceId::Events | SourceId::Gateway | SourceId::Mesh)
    }

    pub fn label(self) -> &'static str {
        match self {
            SourceId::Pods => "pods",
            SourceId::Nodes => "nodes",
            SourceId::Events => "events",
            SourceId::PodMetrics => "pod metrics",
            SourceId::NodeMetrics => "node metrics",
            SourceId::Cadvisor => "cadvisor",
            SourceId::Prometheus => "prometheus",
            SourceId::Gateway => "gateway",
            SourceId::Brokers => "brokers",
            SourceId::Services => "services",
            SourceId::Mesh => "mesh",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    Connecting,
    Connected,
    /// Failing and retrying with backoff; the text says why.
    Reconnecting(String),
    /// The API answered 403: this part stays empty, the rest works.
    Forbidden(String),
    /// The API does not exist on this cluster (e.g. no metrics-server).
    Absent(String),
}

impl SourceState {
    pub fn word(&self) -> &'static str {
        match self {
            SourceState::Connecting => "connecting",
            SourceState::Connected => "connected",
            SourceState::Reconnecting(_) => "reconnecting",
            SourceState::Forbidden(_) => "forbidden",
            SourceState::Absent(_) => "absent",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            SourceState::Reconnecting(r) | SourceState::Forbidden(r) | SourceState::Absent(r) => Some(r),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Pods(Change<PodInfo>),
    Nodes(Change<NodeInfo>),
    Events(Change<EventInfo>),
    Services(Change<ServiceInfo>),
    PodUsage {
        at: UnixSecs,
        source: SourceId,
        usages: Vec<ContainerUsage>,
    },
    /// CPU and memory history from before kpulse started (the Prometheus back-fill).
    UsageHistory(Vec<ContainerHistory>),
    /// Bytes per second received and sent, per pod (a pod shares one network namespace).
    PodNetwork {
        at: UnixSecs,
        usages: Vec<(PodKey, f64, f64)>,
    },
    NodeUsage {
        at: UnixSecs,
        usages: Vec<(String, Usage)>,
    },
    Status {
        source: SourceId,
        state: SourceState,
    },
    /// A failing source waits this long before it tries again (its backoff), so the screen can
    /// say "retrying in 4 s" rather than a bare "retrying".
    Retrying {
        source: SourceId,
        after: std::time::Duration,
    },
    /// Complete lines (or a line's continuation) read from one gateway log stream, named e.g.
    /// `ingress-nginx/ingress-nginx-controller-7d9f-abcde`, `file:/var/log/nginx/access.log`, `stdin`.
    AccessLog {
        stream: String,
        chunk: String,
    },
    /// A stream read from its start has reached the end of what was written so far (a file's
    /// end, stdin closed): its history is all in. A snapshot of a log waits for this.
    LogCaughtUp {
        stream: String,
    },
    /// One scrape of one broker: every queue or consumer group it reported.
    Queues {
        at: UnixSecs,
        broker: String,
        readings: std::collections::BTreeMap<crate::model::broker::QueueKey, crate::model::broker::Reading>,
    },
    /// What kpulse asked of the API server since the last such update (requests, answer bytes).
    ApiCost {
        at: UnixSecs,
        increment: crate::model::api_cost::ApiCost,
    },
    /// Something the user should read once (a fallback taken, a config problem).
    Notice(String),
}

/// Which namespace(s) the pod and event watchers cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Namespace(String),
}

const MESH_STREAM_PREFIX: &str = "mesh:";

/// The stream a sidecar's lines are sent as: `mesh:namespace/pod`.
pub fn mesh_stream_name(namespace: &str, pod: &str) -> String {
    format!("{MESH_STREAM_PREFIX}{namespace}/{pod}")
}

/// The pod a mesh stream comes from; `None` for any other stream.
pub fn mesh_stream_pod(stream: &str) -> Option<PodKey> {
    let (namespace, pod) = stream.strip_prefix(MESH_STREAM_PREFIX)?.split_once('/')?;
    Some(PodKey::new(namespace, pod))
}
