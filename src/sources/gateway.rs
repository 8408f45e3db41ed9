//! Gateway access logs followed through the API server: one stream per gateway replica, found
//! by `--gateway` specs. Each sends whole lines as [`Update::AccessLog`] chunks; parsing happens
//! in the model. Logs on this machine (a file, stdin) are read in [`super::local_log`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::api_get::classify_client_error;
use super::kube::Scope;
use super::local_log::{STDIN_STREAM, file_stream_name};
use super::{SourceId, SourceState, Update};

/// Where gateway logs come from (`--gateway`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewaySpec {
    /// `pods:NAMESPACE/SELECTOR[#CONTAINER]`; an empty namespace means every namespace in scope.
    Pods { namespace: Option<String>, selector: String, container: Option<String> },
    /// `auto` (and the default): the well-known gateways, found by their labels.
    Auto,
    /// `file:PATH`: followed from its end, like `tail -F`; `file+all:PATH`: read from its start
    /// (the history, counted where it happened), then followed.
    File { path: PathBuf, from_start: bool },
    /// `-`
    Stdin,
}

/// Well-known gateways: (what, label selector, log container).
pub const KNOWN_GATEWAYS: &[(&str, &str, &str)] = &[
    ("ingress-nginx", "app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/component=controller", "controller"),
    ("istio ingress gateway", "istio=ingressgateway", "istio-proxy"),
    ("traefik", "app.kubernetes.io/name=traefik", "traefik"),
    ("envoy gateway", "app.kubernetes.io/managed-by=envoy-gateway", "envoy"),
    ("haproxy ingress", "app.kubernetes.io/name=kubernetes-ingress", "kubernetes-ingress-controller"),
];

impl GatewaySpec {
    pub fn parse(text: &str) -> Result<GatewaySpec, String> {
        if text == "-" {
            return Ok(GatewaySpec::Stdin);
        }
        if text == "auto" {
            return Ok(GatewaySpec::Auto);
        }
        for (prefix, from_start) in [("file:", false), ("file+all:", true)] {
            if let Some(path) = text.strip_prefix(prefix) {
                if path.is_empty() {
                    return Err(format!("--gateway {prefix} needs a path"));
                }
                return Ok(GatewaySpec::File { path: PathBuf::from(path), from_start });
            }
        }
        if let Some(rest) = text.strip_prefix("pods:") {
            let (rest, container) = match rest.split_once('#') {
                Some((r, c)) => (r, Some(c.to_string()).filter(|c| !c.is_empty())),
                None => (rest, None),
            };
            let (namespace, selector) = rest
                .split_once('/')
                .ok_or_else(|| format!("--gateway {text}: expected pods:NAMESPACE/LABEL-SELECTOR"))?;
            if selector.is_empty() {
                return Err(format!("--gateway {text}: the label selector is empty"));
            }
            return Ok(GatewaySpec::Pods {
                namespace: Some(namespace.to_string()).filter(|n| !n.is_empty()),
                selector: selector.to_string(),
                container: container.filter(|c| !c.is_empty()),
            });
        }
        Err(format!("--gateway {text}: use pods:NAMESPACE/SELECTOR, file:PATH, file+all:PATH, - (stdin) or auto"))
    }

    /// File and stdin do not depend on the cluster connection; they outlive a context switch.
    pub fn is_local(&self) -> bool {
        matches!(self, GatewaySpec::File { .. } | GatewaySpec::Stdin)
    }

    /// The stream of a source read from its start (`file+all:`, stdin): what a snapshot reads to
    /// its end before it reports.
    pub fn history_stream(&self) -> Option<String> {
        match self {
            GatewaySpec::File { path, from_start: true } => Some(file_stream_name(path)),
            GatewaySpec::Stdin => Some(STDIN_STREAM.to_string()),
            _ => None,
        }
    }
}

/// Lines are sent in chunks of about this size, or after [`FLUSH_AFTER`] when the stream is quiet.
pub(super) const CHUNK_BYTES: usize = 256 * 1024;
const FLUSH_AFTER: Duration = Duration::from_millis(250);
const REDISCOVER_EVERY: Duration = Duration::from_secs(30);
/// At start-up, read this much of each gateway pod's log so the 5-minute window starts full.
const BACKFILL_SECS: i64 = 300;

fn status(tx: &UnboundedSender<Update>, state: SourceState) {
    let _ = tx.send(Update::Status { source: SourceId::Gateway, state });
}

/// One pod log to follow, and what its lines are sent as.
pub(super) struct PodLog {
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    /// The stream name the chunks carry.
    pub stream: String,
    /// Whose status a failing follow reports.
    pub source: SourceId,
}

/// Follows the logs of every pod the spec selects, starting a stream per new replica and stopping
/// it when the pod goes. Runs until cancelled by the caller.
pub async fn follow_pods(client: Client, spec: GatewaySpec, scope: Scope, tx: UnboundedSender<Update>) {
    let mut streams = PodStreams::default();
    let mut announced = false;
    let targets: Vec<(Option<String>, String, Option<String>)> = match &spec {
        GatewaySpec::Pods { namespace, selector, container } => {
            vec![(namespace.clone(), selector.clone(), container.clone())]
        }
        _ => KNOWN_GATEWAYS.iter().map(|(_, sel, c)| (None, sel.to_string(), Some(c.to_string()))).collect(),
    };
    loop {
        let mut found: Vec<(String, String, Option<String>)> = Vec::new();
        for (namespace, selector, container) in &targets {
            let api: Api<Pod> = match (namespace, &scope) {
                (Some(ns), _) => Api::namespaced(client.clone(), ns),
                (None, Scope::Namespace(ns)) if !matches!(spec, GatewaySpec::Auto) => {
                    Api::namespaced(client.clone(), ns)
                }
                _ => Api::all(client.clone()),
            };
            match api.list(&ListParams::default().labels(selector)).await {
                Ok(list) => {
                    for pod in list.items {
                        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                        let (Some(ns), Some(name)) = (pod.metadata.namespace.clone(), pod.metadata.name.clone()) else {
                            continue;
                        };
                        if running {
                            found.push((ns, name, pick_container(&pod, container.as_deref())));
                        }
                    }
                }
                Err(e) => {
                    // Auto-detection across gateways that may not exist: only a real problem counts.
                    let state = classify_client_error(&e);
                    if matches!(spec, GatewaySpec::Pods { .. }) || matches!(state, SourceState::Forbidden(_)) {
                        status(&tx, state);
                    }
                }
            }
        }
        if !announced && matches!(spec, GatewaySpec::Auto) && found.is_empty() {
            status(&tx, SourceState::Absent("no gateway pods found (use --gateway pods:NS/SELECTOR)".into()));
        }
        if !found.is_empty() && !announced {
            let names: Vec<String> = found.iter().map(|(ns, n, _)| format!("{ns}/{n}")).collect();
            let _ = tx.send(Update::Notice(format!("gateway logs from {}", names.join(", "))));
            status(&tx, SourceState::Connected);
            announced = true;
        }
        streams.0.retain(|key, handle| {
            let keep = found.iter().any(|(ns, n, _)| (ns, n) == (&key.0, &key.1)) && !handle.is_finished();
            if !keep {
                handle.abort();
            }
            keep
        });
        for (ns, name, container) in found {
            let key = (ns.clone(), name.clone());
            if streams.0.contains_key(&key) {
                continue;
            }
            let stream = format!("{ns}/{name}");
            let log = PodLog { namespace: ns, pod: name, container, stream, source: SourceId::Gateway };
            let task = follow_pod_log(client.clone(), log, tx.clone());
            streams.0.insert(key, tokio::spawn(task));
        }
        tokio::time::sleep(REDISCOVER_EVERY).await;
    }
}

/// The per-pod log tasks, aborted when discovery stops (a context switch drops its future).
#[derive(Default)]
pub(super) struct PodStreams(pub HashMap<(String, String), JoinHandle<()>>);

impl Drop for PodStreams {
    fn drop(&mut self) {
        for (_, h) in self.0.drain() {
            h.abort();
        }
    }
}

/// The log container: the one asked for if the pod has it, else the first.
fn pick_container(pod: &Pod, wanted: Option<&str>) -> Option<String> {
    let containers = &pod.spec.as_ref()?.containers;
    if let Some(w) = wanted
        && containers.iter().any(|c| c.name == w)
    {
        return Some(w.to_string());
    }
    containers.first().map(|c| c.name.clone())
}

/// Where a followed log got to: the newest timestamp seen and how many lines carried it, so a
/// reconnect with `sinceTime` (whole seconds) skips exactly what was already read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogCursor {
    last: Option<Timestamp>,
    at_last: usize,
    /// Lines at `last` still to skip after a reconnect.
    replay: usize,
}

impl LogCursor {
    /// Whether a line stamped `ts` is new; updates the cursor.
    pub fn accept(&mut self, ts: Timestamp) -> bool {
        match self.last {
            Some(last) if ts < last => false,
            Some(last) if ts == last => {
                if self.replay > 0 {
                    self.replay -= 1;
                    return false;
                }
                self.at_last += 1;
                true
            }
            _ => {
                self.last = Some(ts);
                self.at_last = 1;
                self.replay = 0;
                true
            }
        }
    }

    /// Before reconnecting: the `sinceTime` to ask for, and arm the skip of lines already read.
    pub fn resume(&mut self) -> Option<Timestamp> {
        let last = self.last?;
        self.replay = self.at_last;
        Timestamp::from_second(last.as_second()).ok()
    }
}

/// Splits `2024-01-01T12:00:00.123456789Z line` into the kubelet's timestamp and the line.
pub fn split_timestamp(line: &str) -> Option<(Timestamp, &str)> {
    let (ts, rest) = line.split_once(' ')?;
    Some((ts.parse().ok()?, rest))
}

/// Follows one container's log from [`BACKFILL_SECS`] ago, resuming after a break where it
/// stopped, until the pod is gone or the task is aborted.
pub(super) async fn follow_pod_log(client: Client, log: PodLog, tx: UnboundedSender<Update>) {
    let PodLog { namespace: ns, pod: name, container, stream: stream_name, source } = log;
    let api: Api<Pod> = Api::namespaced(client, &ns);
    let status = |tx: &UnboundedSender<Update>, state| {
        let _ = tx.send(Update::Status { source, state });
    };
    let mut cursor = LogCursor::default();
    let mut backoff = Duration::from_millis(500);
    loop {
        let params = LogParams {
            container: container.clone(),
            follow: true,
            timestamps: true,
            since_time: cursor.resume(),
            since_seconds: if cursor.last.is_none() { Some(BACKFILL_SECS) } else { None },
            ..LogParams::default()
        };
        match api.log_stream(&name, &params).await {
            Ok(reader) => {
                backoff = Duration::from_millis(500);
                // A follow that failed and came back clears the failure it reported.
                status(&tx, SourceState::Connected);
                let mut lines = reader.lines();
                let mut chunk = String::new();
                loop {
                    match tokio::time::timeout(FLUSH_AFTER, lines.next()).await {
                        Ok(Some(Ok(line))) => {
                            // The kubelet stamps every line; one without a stamp is sent as is.
                            match split_timestamp(&line) {
                                Some((ts, text)) if cursor.accept(ts) => {
                                    chunk.push_str(text);
                                    chunk.push('\n');
                                }
                                Some(_) => {}
                                None => {
                                    chunk.push_str(&line);
                                    chunk.push('\n');
                                }
                            }
                            if chunk.len() >= CHUNK_BYTES {
                                send(&tx, &stream_name, &mut chunk);
                            }
                        }
                        Ok(Some(Err(e))) => {
                            status(&tx, SourceState::Reconnecting(format!("{stream_name}: {e}")));
                            break;
                        }
                        // The kubelet ends a follow on log rotation and when the container stops.
                        Ok(None) => break,
                        Err(_quiet) => send(&tx, &stream_name, &mut chunk),
                    }
                }
                send(&tx, &stream_name, &mut chunk);
            }
            Err(e) => {
                let state = classify_client_error(&e);
                let gone = matches!(state, SourceState::Absent(_));
                status(
                    &tx,
                    match state {
                        SourceState::Forbidden(r) => SourceState::Forbidden(format!("{stream_name} log: {r}")),
                        SourceState::Absent(r) | SourceState::Reconnecting(r) => {
                            SourceState::Reconnecting(format!("{stream_name} log: {r}"))
                        }
                        other => other,
                    },
                );
                if gone {
                    // The pod is gone; discovery starts a stream for its replacement.
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

fn send(tx: &UnboundedSender<Update>, stream: &str, chunk: &mut String) {
    if !chunk.is_empty() {
        let _ = tx.send(Update::AccessLog { stream: stream.to_string(), chunk: std::mem::take(chunk) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(GatewaySpec::parse("-"), Ok(GatewaySpec::Stdin));
        assert_eq!(
            GatewaySpec::parse("file:/var/log/nginx/access.log"),
            Ok(GatewaySpec::File { path: "/var/log/nginx/access.log".into(), from_start: false })
        );
        assert_eq!(
            GatewaySpec::parse("file+all:access.log"),
            Ok(GatewaySpec::File { path: "access.log".into(), from_start: true })
        );
        assert!(GatewaySpec::parse("file+all:").is_err());
        assert_eq!(
            GatewaySpec::parse("pods:ingress-nginx/app.kubernetes.io/component=controller#controller"),
            Ok(GatewaySpec::Pods {
                namespace: Some("ingress-nginx".into()),
                selector: "app.kubernetes.io/component=controller".into(),
                container: Some("controller".into())
            })
        );
        assert_eq!(
            GatewaySpec::parse("pods:/istio=ingressgateway"),
            Ok(GatewaySpec::Pods { namespace: None, selector: "istio=ingressgateway".into(), container: None })
        );
        assert!(GatewaySpec::parse("pods:nothing").is_err());
        assert!(GatewaySpec::parse("http://x").is_err());
    }

    #[test]
    fn a_reconnect_skips_exactly_the_lines_already_read() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let mut c = LogCursor::default();
        assert!(c.accept(t("2024-01-01T12:00:00.5Z")));
        assert!(c.accept(t("2024-01-01T12:00:01Z")));
        assert!(c.accept(t("2024-01-01T12:00:01Z")));
        // The stream drops; sinceTime is whole seconds, so the server resends from 12:00:01.
        assert_eq!(c.resume(), Some(t("2024-01-01T12:00:01Z")));
        assert!(!c.accept(t("2024-01-01T12:00:01Z")));
        assert!(!c.accept(t("2024-01-01T12:00:01Z")));
        assert!(c.accept(t("2024-01-01T12:00:01Z")), "a third line in the same second is new");
        assert!(c.accept(t("2024-01-01T12:00:02.25Z")));
        assert!(!c.accept(t("2024-01-01T12:00:00Z")), "older lines are never counted twice");
        assert_eq!(split_timestamp("2024-01-01T12:00:00.123456789Z GET / 200").map(|(_, l)| l), Some("GET / 200"));
    }
}
