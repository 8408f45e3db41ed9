//! What kpulse costs the API server: requests sent and answer bytes received, by kind of
//! request, and the sum over the last minute. A tool for finding bottlenecks must not become
//! one, so the cost is counted where every request passes (the kube client) and shown.

use std::collections::VecDeque;

use serde::Serialize;

use super::time::UnixSecs;

/// What a request to the API server was for; each kind costs differently (a watch is one
/// request for minutes of events; a node-proxy scrape is one kubelet's whole exposition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    List,
    Watch,
    /// A kubelet endpoint through `nodes/{node}/proxy` (cAdvisor, resource metrics).
    NodeProxy,
    /// A pod's log (the gateway's access log).
    PodLog,
    /// Anything else: discovery, metrics.k8s.io, a service proxy.
    Other,
}

impl RequestKind {
    pub const ALL: [RequestKind; 5] =
        [RequestKind::List, RequestKind::Watch, RequestKind::NodeProxy, RequestKind::PodLog, RequestKind::Other];

    /// Read off the request's path and query: what the API server would log as its verb and
    /// subresource.
    pub fn of(path: &str, query: Option<&str>) -> RequestKind {
        let is_watch = query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
        if path.starts_with("/api/v1/nodes/") && path.contains("/proxy/") {
            RequestKind::NodeProxy
        } else if path.contains("/pods/") && path.ends_with("/log") {
            RequestKind::PodLog
        } else if path.contains("/proxy") || path.starts_with("/apis/metrics.k8s.io/") {
            RequestKind::Other
        } else if is_watch {
            RequestKind::Watch
        } else if path.starts_with("/api/v1/") || path.starts_with("/apis/") {
            RequestKind::List
        } else {
            RequestKind::Other
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            RequestKind::List => "lists",
            RequestKind::Watch => "watches",
            RequestKind::NodeProxy => "node proxy",
            RequestKind::PodLog => "pod logs",
            RequestKind::Other => "other",
        }
    }
}

/// Requests started and answer bytes read, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiCost {
    pub requests: [u64; 5],
    pub bytes: [u64; 5],
}

impl ApiCost {
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.bytes.iter().sum()
    }

    pub fn add(&mut self, other: &ApiCost) {
        for i in 0..self.requests.len() {
            self.requests[i] += other.requests[i];
            self.bytes[i] += other.bytes[i];
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total_requests() == 0 && self.total_bytes() == 0
    }
}

/// The cost over a sliding minute, from the increments the source reports every few seconds.
/// A new connection (a context switch) starts its own counter: increments add up across it.
#[derive(Debug, Clone, Default)]
pub struct ApiCostWindow {
    increments: VecDeque<(UnixSecs, ApiCost)>,
    /// Since kpulse started (or since the first increment).
    pub total: ApiCost,
    first_at: Option<UnixSecs>,
}

/// The window the cost is summed over.
pub const COST_WINDOW_SECS: i64 = 60;

impl ApiCostWindow {
    pub fn record(&mut self, at: UnixSecs, increment: ApiCost) {
        self.first_at.get_or_insert(at);
        self.total.add(&increment);
        self.increments.push_back((at, increment));
        while self.increments.front().is_some_and(|(t, _)| *t <= at - COST_WINDOW_SECS) {
            self.increments.pop_front();
        }
    }

    /// The sum of the increments reported in the minute up to `now`.
    pub fn last_minute(&self, now: UnixSecs) -> ApiCost {
        let mut sum = ApiCost::default();
        for (_, c) in self.increments.iter().filter(|(t, _)| *t > now - COST_WINDOW_SECS) {
            sum.add(c);
        }
        sum
    }

    /// Seconds of counting the last-minute figure covers (less than a minute just after start).
    pub fn covered_secs(&self, now: UnixSecs) -> i64 {
        self.first_at.map_or(0, |first| (now - first).clamp(0, COST_WINDOW_SECS))
    }

    pub fn is_empty(&self) -> bool {
        self.first_at.is_none()
    }
}

/// The cost over the last minute in one line: "26 requests, 1.2 MB (node proxy 24 · 1.1 MB, …)".
pub fn describe(cost: &ApiCost) -> String {
    let parts: Vec<String> = RequestKind::ALL
        .iter()
        .filter(|k| cost.requests[k.index()] > 0 || cost.bytes[k.index()] > 0)
        .map(|k| format!("{} {} · {}", k.label(), cost.requests[k.index()], format_size(cost.bytes[k.index()])))
        .collect();
    let total = format!("{} requests, {}", cost.total_requests(), format_size(cost.total_bytes()));
    if parts.is_empty() { total } else { format!("{total} ({})", parts.join(", ")) }
}

/// Bytes in decimal units, as network volumes are usually given.
pub fn format_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// The cost as the snapshot's JSON reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiCostReport {
    /// Seconds the figures cover (a minute, or less for a shorter run).
    pub window_secs: i64,
    pub requests: u64,
    pub bytes: u64,
    pub by_kind: Vec<ApiCostKind>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiCostKind {
    pub kind: &'static str,
    pub requests: u64,
    pub bytes: u64,
}

impl ApiCostReport {
    pub fn new(cost: &ApiCost, window_secs: i64) -> ApiCostReport {
        ApiCostReport {
            window_secs,
            requests: cost.total_requests(),
            bytes: cost.total_bytes(),
            by_kind: RequestKind::ALL
                .iter()
                .map(|k| ApiCostKind {
                    kind: k.label(),
                    requests: cost.requests[k.index()],
                    bytes: cost.bytes[k.index()],
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart_by_what_they_ask() {
        assert_eq!(RequestKind::of("/api/v1/nodes/n1/proxy/metrics/cadvisor", None), RequestKind::NodeProxy);
        assert_eq!(RequestKind::of("/api/v1/nodes/n1/proxy/metrics/resource", None), RequestKind::NodeProxy);
        assert_eq!(
            RequestKind::of("/api/v1/namespaces/ingress/pods/ctl-1/log", Some("follow=true")),
            RequestKind::PodLog
        );
        assert_eq!(RequestKind::of("/api/v1/pods", Some("limit=500")), RequestKind::List);
        assert_eq!(RequestKind::of("/api/v1/pods", Some("allowWatchBookmarks=true&watch=true")), RequestKind::Watch);
        assert_eq!(RequestKind::of("/api/v1/nodes", Some("watch=true&timeoutSeconds=290")), RequestKind::Watch);
        assert_eq!(RequestKind::of("/apis/metrics.k8s.io/v1beta1/pods", None), RequestKind::Other);
        assert_eq!(RequestKind::of("/version", None), RequestKind::Other);
        let service_proxy = "/api/v1/namespaces/monitoring/services/prometheus-operated:9090/proxy/api/v1/query";
        assert_eq!(RequestKind::of(service_proxy, Some("query=up")), RequestKind::Other);
        // A watch of pods named "log" is still a watch: only a pod's log subresource is a log.
        assert_eq!(RequestKind::of("/api/v1/namespaces/log/pods", Some("watch=true")), RequestKind::Watch);
    }

    fn cost(kind: RequestKind, requests: u64, bytes: u64) -> ApiCost {
        let mut c = ApiCost::default();
        c.requests[kind.index()] = requests;
        c.bytes[kind.index()] = bytes;
        c
    }

    #[test]
    fn the_last_minute_sums_only_the_increments_inside_it() {
        let mut w = ApiCostWindow::default();
        w.record(1_000, cost(RequestKind::List, 3, 30_000));
        w.record(1_030, cost(RequestKind::NodeProxy, 10, 2_000_000));
        w.record(1_059, cost(RequestKind::NodeProxy, 10, 2_000_000));
        let minute = w.last_minute(1_059);
        assert_eq!(minute.total_requests(), 23);
        assert_eq!(minute.total_bytes(), 4_030_000);
        // A minute later the first increment has left the window; the total keeps it.
        w.record(1_060, cost(RequestKind::Watch, 1, 500));
        let minute = w.last_minute(1_060);
        assert_eq!(minute.requests[RequestKind::List.index()], 0);
        assert_eq!(minute.total_requests(), 21);
        assert_eq!(w.total.total_requests(), 24);
        assert_eq!(w.covered_secs(1_060), 60);
        assert_eq!(w.covered_secs(1_020), 20);
    }

    #[test]
    fn the_cost_reads_as_a_line() {
        let mut c = cost(RequestKind::NodeProxy, 24, 1_100_000);
        c.add(&cost(RequestKind::Watch, 2, 40_000));
        assert_eq!(describe(&c), "26 requests, 1.1 MB (watches 2 · 40 kB, node proxy 24 · 1.1 MB)");
        assert_eq!(describe(&ApiCost::default()), "0 requests, 0 B");
    }
}
