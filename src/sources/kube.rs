//! Kubernetes API sources: list+watch for pods, nodes, Services and Warning events (kube-runtime watchers),
//! and a poller for metrics.k8s.io, which cannot be watched. Every request is a GET.

use std::fmt::Debug;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event as K8sEvent, Node, Pod, Service};
use kube::runtime::WatchStreamExt;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::api_get::classify_client_error;
use super::cadvisor::{ScrapeEnd, ScrapePlan, Targets};
use super::mesh::{MeshedPods, follow_mesh};
use super::placement::PodPlacement;
use super::prometheus::{Endpoint, PrometheusConfig};
use super::{SourceId, SourceState, Update};
use crate::model::event::EventInfo;
use crate::model::metrics::{MetricsList, NodeMetrics, PodMetrics, container_usages, node_usages};
use crate::model::node::NodeInfo;
use crate::model::pod::PodInfo;
use crate::model::promql::Queries;
use crate::model::service::ServiceInfo;
use crate::model::store::Change;
use crate::model::time::now_unix;

pub use crate::model::update::Scope;

/// Where per-container usage comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsageMode {
    /// cAdvisor through the node proxy (throttling, network), else metrics.k8s.io.
    #[default]
    Auto,
    Cadvisor,
    MetricsApi,
}

#[derive(Debug, Clone)]
pub struct KubeSourceConfig {
    pub scope: Scope,
    pub usage: UsageMode,
    /// A Prometheus base URL or "auto": when set, usage and history come from it.
    pub prometheus: Option<String>,
    /// Sent with every Prometheus request (tenant, auth); secret values.
    pub prometheus_headers: super::http::RequestHeaders,
    pub queries: Queries,
    pub retention: Duration,
    /// Exposition URLs to scrape directly instead of the kubelets (`--scrape`).
    pub scrape: Vec<String>,
    pub metrics_interval: Duration,
    /// How often the kubelets' full cAdvisor text is read (throttling, network).
    pub cadvisor_full_interval: Duration,
    /// In `auto` usage, above this many nodes the kubelets are not scraped one by one.
    pub cadvisor_max_nodes: usize,
    /// Mesh sidecars whose call logs are followed at most.
    pub mesh_max_pods: usize,
    /// The context's namespace, used when cluster-wide reads are forbidden.
    pub fallback_namespace: String,
}

/// Starts every Kubernetes source; they stop when `cancel` fires or the receiver is dropped.
pub fn spawn_all(client: Client, cfg: KubeSourceConfig, tx: UnboundedSender<Update>, cancel: CancellationToken) {
    let run = |fut: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = fut => {}
            }
        });
    };
    // Where the pods in scope run, for the kubelet scrapes.
    let placement = PodPlacement::default();
    let observed = placement.clone();
    let meshed = MeshedPods::default();
    let observed_mesh = meshed.clone();
    run(Box::pin(watch_scoped::<Pod, _>(
        client.clone(),
        cfg.clone(),
        SourceId::Pods,
        None,
        move |p| {
            let change = p.map(|p| PodInfo::from_pod(&p));
            observed.observe(&change);
            observed_mesh.observe(&change);
            Update::Pods(change)
        },
        tx.clone(),
    )));
    run(Box::pin(watch_scoped::<K8sEvent, _>(
        client.clone(),
        cfg.clone(),
        SourceId::Events,
        // Only Warnings: Normal events are most of the volume and say nothing is wrong.
        Some("type=Warning"),
        |e| Update::Events(e.map(|e| EventInfo::from_event(&e))),
        tx.clone(),
    )));
    // Services name the gateway's backends exactly; without them names are split by namespace.
    run(Box::pin(watch_scoped::<Service, _>(
        client.clone(),
        cfg.clone(),
        SourceId::Services,
        None,
        |s| Update::Services(s.map(|s| ServiceInfo::from_service(&s))),
        tx.clone(),
    )));
    let nodes_tx = tx.clone();
    let nodes_client = client.clone();
    run(Box::pin(async move {
        let nodes = Api::<Node>::all(nodes_client);
        watch_api(nodes, SourceId::Nodes, None, |n| Update::Nodes(n.map(|n| NodeInfo::from_node(&n))), nodes_tx, false)
            .await;
    }));
    let node_client = client.clone();
    let interval = cfg.metrics_interval;
    let node_tx = tx.clone();
    run(Box::pin(async move { poll_node_metrics(node_client, interval, node_tx).await }));
    if cfg.mesh_max_pods > 0 {
        run(Box::pin(follow_mesh(client.clone(), meshed, cfg.mesh_max_pods, tx.clone())));
    }
    run(Box::pin(pod_usage(client, cfg, placement, tx)));
}

async fn pod_usage(client: Client, cfg: KubeSourceConfig, placement: PodPlacement, tx: UnboundedSender<Update>) {
    if let Some(target) = &cfg.prometheus {
        let headers = cfg.prometheus_headers.clone();
        let endpoint = if target == "auto" {
            discover_prometheus(&client, headers).await
        } else {
            Endpoint::direct(target, headers)
        };
        match endpoint {
            Ok(endpoint) => {
                let notice = format!("usage from Prometheus at {}", endpoint.describe());
                return poll_prometheus(endpoint, &cfg, notice, tx).await;
            }
            Err(reason) => {
                let _ = tx
                    .send(Update::Status { source: SourceId::Prometheus, state: SourceState::Absent(reason.clone()) });
                let _ = tx.send(Update::Notice(format!("no Prometheus ({reason}); usage from the kubelets instead")));
            }
        }
    }
    if cfg.usage == UsageMode::MetricsApi {
        return poll_pod_metrics(client, cfg, tx).await;
    }
    let targets = if cfg.scrape.is_empty() { Targets::NodeProxy } else { Targets::Urls(cfg.scrape.clone()) };
    let plan = ScrapePlan {
        targets,
        interval: cfg.metrics_interval,
        full_interval: cfg.cadvisor_full_interval,
        // Asked for by name (`usage = "cadvisor"`), the kubelets are scraped at any size.
        max_nodes: (cfg.usage == UsageMode::Auto).then_some(cfg.cadvisor_max_nodes),
        placement: matches!(cfg.scope, Scope::Namespace(_)).then_some(placement),
    };
    match super::cadvisor::poll(client.clone(), plan, tx.clone()).await {
        ScrapeEnd::Closed => {}
        ScrapeEnd::Unavailable(reason) => {
            let _ = tx.send(Update::Status { source: SourceId::Cadvisor, state: SourceState::Absent(reason.clone()) });
            if cfg.usage == UsageMode::Auto {
                let _ = tx.send(Update::Notice(format!(
                    "kubelet cAdvisor not reachable through the node proxy ({reason}); usage from metrics.k8s.io"
                )));
                poll_pod_metrics(client, cfg, tx).await;
            }
        }
        ScrapeEnd::TooManyNodes(nodes) => {
            // Every kubelet's exposition would pass through the API server: a Prometheus in the
            // cluster has it already, metrics-server in one small answer.
            let why = format!("{nodes} nodes, above cadvisor_max_nodes = {}", cfg.cadvisor_max_nodes);
            let reason = format!("not scraped: {why}");
            let _ = tx.send(Update::Status { source: SourceId::Cadvisor, state: SourceState::Absent(reason) });
            if let Ok(endpoint) = discover_prometheus(&client, cfg.prometheus_headers.clone()).await {
                let notice = format!(
                    "{why}: usage from the cluster's Prometheus at {} instead of every kubelet",
                    endpoint.describe()
                );
                return poll_prometheus(endpoint, &cfg, notice, tx).await;
            }
            let _ = tx.send(Update::Notice(format!(
                "{why}: usage from metrics.k8s.io, so no CPU throttling or pod network (usage = \"cadvisor\" scrapes every kubelet anyway)"
            )));
            poll_pod_metrics(client, cfg, tx).await;
        }
    }
}

/// Usage from a Prometheus, after saying where it comes from.
async fn poll_prometheus(endpoint: Endpoint, cfg: &KubeSourceConfig, notice: String, tx: UnboundedSender<Update>) {
    let _ = tx.send(Update::Notice(notice));
    let pcfg = PrometheusConfig {
        endpoint,
        queries: cfg.queries.clone(),
        interval: cfg.metrics_interval,
        retention: cfg.retention,
    };
    super::prometheus::poll(pcfg, tx).await
}

/// Service names Prometheus usually runs under (prometheus-operator, the Helm charts, kube-prometheus).
const PROMETHEUS_SERVICES: [&str; 5] =
    ["prometheus-operated", "kube-prometheus-stack-prometheus", "prometheus-server", "prometheus-k8s", "prometheus"];

/// Finds a Prometheus Service in the cluster and returns its API server service-proxy prefix.
async fn discover_prometheus(client: &Client, headers: super::http::RequestHeaders) -> Result<Endpoint, String> {
    let services: Api<Service> = Api::all(client.clone());
    let list = services.list(&Default::default()).await.map_err(|e| match classify_client_error(&e) {
        SourceState::Forbidden(_) => "not allowed to list services".to_string(),
        other => other.reason().unwrap_or("cannot list services").to_string(),
    })?;
    let found = PROMETHEUS_SERVICES
        .iter()
        .find_map(|wanted| list.items.iter().find(|s| s.metadata.name.as_deref() == Some(*wanted)));
    let svc = found.ok_or_else(|| format!("no Service named {} found", PROMETHEUS_SERVICES.join(", ")))?;
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let ports = svc.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| matches!(p.name.as_deref(), Some("web" | "http" | "http-web")))
        .or(ports.first())
        .map_or(9090, |p| p.port);
    Ok(Endpoint::ApiProxy {
        client: client.clone(),
        prefix: format!("/api/v1/namespaces/{ns}/services/{name}:{port}/proxy"),
        headers,
    })
}

/// A `Change` over the raw API type, converted (trimmed) by the caller's function.
pub trait MapChange<K> {
    fn map<T>(self, f: impl Fn(K) -> T) -> Change<T>;
}

impl<K> MapChange<K> for Change<K> {
    fn map<T>(self, f: impl Fn(K) -> T) -> Change<T> {
        match self {
            Change::InitStart => Change::InitStart,
            Change::InitItem(k) => Change::InitItem(f(k)),
            Change::InitDone => Change::InitDone,
            Change::Applied(k) => Change::Applied(f(k)),
            Change::Deleted(k) => Change::Deleted(f(k)),
        }
    }
}

/// Watches a namespaced kind in the configured scope. When the cluster-wide list is forbidden
/// (a user bound to one namespace), it falls back to the context's namespace and says so once.
async fn watch_scoped<K, F>(
    client: Client,
    cfg: KubeSourceConfig,
    source: SourceId,
    fields: Option<&'static str>,
    wrap: F,
    tx: UnboundedSender<Update>,
) where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
    F: Fn(Change<K>) -> Update + Clone,
{
    match &cfg.scope {
        Scope::Namespace(ns) => {
            watch_api(Api::<K>::namespaced(client, ns), source, fields, wrap, tx, false).await;
        }
        Scope::All => {
            let outcome =
                watch_api(Api::<K>::all(client.clone()), source, fields, wrap.clone(), tx.clone(), true).await;
            if outcome == WatchEnd::Forbidden {
                let ns = cfg.fallback_namespace.clone();
                let _ = tx.send(Update::Notice(format!(
                    "not allowed to list {} in all namespaces; showing namespace {ns}",
                    source.label()
                )));
                watch_api(Api::<K>::namespaced(client, &ns), source, fields, wrap, tx, false).await;
            }
        }
    }
}

/// kube-runtime's default watch backoff (0.8 s doubling to 30 s, jittered), with two changes:
/// it tells the pause it chose, and only the watch loop resets it, on real progress (a list done,
/// an event). kube-runtime resets a backoff on any `Ok`, and its watcher yields `Ok(Init)` before
/// every relist, so a refused list was retried every 0.8 s forever, by every watcher at once.
#[derive(Clone, Default)]
struct WatchBackoff(std::sync::Arc<std::sync::Mutex<WatchBackoffState>>);

#[derive(Default)]
struct WatchBackoffState {
    policy: watcher::DefaultBackoff,
    last: Option<Duration>,
}

impl WatchBackoff {
    fn state(&self) -> std::sync::MutexGuard<'_, WatchBackoffState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pause chosen after the last error, until progress resets it.
    fn chosen_pause(&self) -> Option<Duration> {
        self.state().last
    }

    fn progressed(&self) {
        let mut state = self.state();
        state.policy.reset();
        state.last = None;
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let mut state = self.state();
        let next = state.policy.next();
        state.last = next;
        next
    }
}

impl Backoff for WatchBackoff {
    /// Not on kube-runtime's every `Ok`: see the type's comment.
    fn reset(&mut self) {}
}

#[derive(Debug, PartialEq, Eq)]
enum WatchEnd {
    /// The first list was refused with 403; the caller may narrow the scope.
    Forbidden,
    Closed,
}

async fn watch_api<K, F>(
    api: Api<K>,
    source: SourceId,
    fields: Option<&str>,
    wrap: F,
    tx: UnboundedSender<Update>,
    narrow_on_forbidden: bool,
) -> WatchEnd
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    F: Fn(Change<K>) -> Update,
{
    let mut config = watcher::Config::default().any_semantic();
    if let Some(f) = fields {
        config = config.fields(f);
    }
    let status = |state: SourceState| tx.send(Update::Status { source, state }).is_ok();
    let _ = status(SourceState::Connecting);
    let probe_api = api.clone();
    let backoff = WatchBackoff::default();
    let mut stream = watcher::watcher(api, config).backoff(backoff.clone()).boxed();
    let mut synced_once = false;
    let mut last_state = SourceState::Connecting;
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        // A live watch may be quiet for hours, so a quiet live watch is only asked after a while
        // whether its server still answers (a stopped or black-holed server keeps the connection
        // open and says nothing). One that is not live yet must not be quiet: a server that
        // accepts and never answers is named, and a watch that resumed without a new event (the
        // usual case after an API server restart) is seen live by asking the server directly.
        let patience = if last_state == SourceState::Connected { LIVE_QUIET_CHECK } else { QUIET_CHECK };
        let next = match tokio::time::timeout(patience, stream.try_next()).await {
            Ok(next) => next,
            Err(_) => {
                let state = if synced_once {
                    probe(&probe_api).await
                } else if matches!(last_state, SourceState::Connecting)
                    || last_state.reason().is_some_and(|r| r.starts_with(NO_ANSWER))
                {
                    SourceState::Reconnecting(format!("{NO_ANSWER} after {}s", quiet_since.elapsed().as_secs()))
                } else {
                    // Failing with a reason of its own, and backing off: that reason stands.
                    continue;
                };
                if state != last_state {
                    last_state = state.clone();
                    if !status(state) {
                        return WatchEnd::Closed;
                    }
                }
                continue;
            }
        };
        quiet_since = tokio::time::Instant::now();
        let item = match next {
            Ok(Some(item)) => item,
            Ok(None) => return WatchEnd::Closed,
            Err(err) => {
                let state = classify_watch_error(&err);
                if matches!(state, SourceState::Forbidden(_)) && !synced_once && narrow_on_forbidden {
                    let _ = status(state);
                    return WatchEnd::Forbidden;
                }
                if state != last_state {
                    last_state = state.clone();
                    if tx.send(Update::Status { source, state }).is_err() {
                        return WatchEnd::Closed;
                    }
                }
                // The backoff has already chosen its pause when the error reaches us.
                if let Some(after) = backoff.chosen_pause()
                    && tx.send(Update::Retrying { source, after }).is_err()
                {
                    return WatchEnd::Closed;
                }
                continue;
            }
        };
        let change = match item {
            WatchEvent::Init => Change::InitStart,
            WatchEvent::InitApply(obj) => Change::InitItem(obj),
            WatchEvent::InitDone => {
                synced_once = true;
                Change::InitDone
            }
            WatchEvent::Apply(obj) => Change::Applied(obj),
            WatchEvent::Delete(obj) => Change::Deleted(obj),
        };
        let mark_connected = matches!(change, Change::InitDone | Change::Applied(_) | Change::Deleted(_));
        if mark_connected {
            backoff.progressed();
        }
        if tx.send(wrap(change)).is_err() {
            return WatchEnd::Closed;
        }
        if mark_connected && last_state != SourceState::Connected {
            last_state = SourceState::Connected;
            let _ = status(SourceState::Connected);
        }
    }
}

const NO_ANSWER: &str = "no answer from the API server";

/// How long a watch that is not live yet may stay quiet before kpulse asks why.
const QUIET_CHECK: Duration = Duration::from_secs(10);

/// How long a live watch may stay quiet before kpulse asks its server (one 1-item list) whether
/// it still answers.
const LIVE_QUIET_CHECK: Duration = Duration::from_secs(30);

/// How long a probe waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One small list (a single item's metadata): does the server answer this watch's request now?
async fn probe<K>(api: &Api<K>) -> SourceState
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let params = kube::api::ListParams::default().limit(1);
    match tokio::time::timeout(PROBE_TIMEOUT, api.list_metadata(&params)).await {
        Ok(Ok(_)) => SourceState::Connected,
        Ok(Err(e)) => classify_client_error(&e),
        Err(_) => SourceState::Reconnecting(format!("{NO_ANSWER} within {}s", PROBE_TIMEOUT.as_secs())),
    }
}

fn classify_watch_error(err: &watcher::Error) -> SourceState {
    match err {
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            classify_client_error(e)
        }
        watcher::Error::WatchError(status) => {
            SourceState::Reconnecting(format!("watch error {}: {}", status.code, status.message))
        }
        watcher::Error::NoResourceVersion => SourceState::Reconnecting("no resourceVersion in watch result".into()),
    }
}

/// metrics.k8s.io is get/list only, so it is polled. A 404 means no metrics-server (kind has none);
/// a 503 means the aggregated API is registered but metrics-server is down.
pub async fn poll_pod_metrics(client: Client, cfg: KubeSourceConfig, tx: UnboundedSender<Update>) {
    let mut path = match &cfg.scope {
        Scope::All => "/apis/metrics.k8s.io/v1beta1/pods".to_string(),
        Scope::Namespace(ns) => format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods"),
    };
    let mut ticker = tokio::time::interval(cfg.metrics_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = SourceState::Connecting;
    let _ = tx.send(Update::Status { source: SourceId::PodMetrics, state: last.clone() });
    loop {
        ticker.tick().await;
        let timeout = cfg.metrics_interval.max(Duration::from_secs(5));
        let state = match get_json::<MetricsList<PodMetrics>>(&client, &path, timeout).await {
            Ok(list) => {
                let usages = container_usages(&list);
                if tx.send(Update::PodUsage { at: now_unix(), source: SourceId::PodMetrics, usages }).is_err() {
                    return;
                }
                SourceState::Connected
            }
            // Like the pod watch: narrow to the context's namespace when cluster-wide is refused.
            Err(SourceState::Forbidden(reason)) if cfg.scope == Scope::All && !path.contains("/namespaces/") => {
                path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods", cfg.fallback_namespace);
                SourceState::Forbidden(reason)
            }
            Err(state) => metrics_reason(state),
        };
        if state != last {
            last = state.clone();
            if tx.send(Update::Status { source: SourceId::PodMetrics, state }).is_err() {
                return;
            }
        }
    }
}

async fn poll_node_metrics(client: Client, interval: Duration, tx: UnboundedSender<Update>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = SourceState::Connecting;
    let _ = tx.send(Update::Status { source: SourceId::NodeMetrics, state: last.clone() });
    loop {
        ticker.tick().await;
        let timeout = interval.max(Duration::from_secs(5));
        let state =
            match get_json::<MetricsList<NodeMetrics>>(&client, "/apis/metrics.k8s.io/v1beta1/nodes", timeout).await {
                Ok(list) => {
                    if tx.send(Update::NodeUsage { at: now_unix(), usages: node_usages(&list) }).is_err() {
                        return;
                    }
                    SourceState::Connected
                }
                Err(state) => metrics_reason(state),
            };
        if state != last {
            last = state.clone();
            if tx.send(Update::Status { source: SourceId::NodeMetrics, state }).is_err() {
                return;
            }
        }
    }
}

fn metrics_reason(state: SourceState) -> SourceState {
    match state {
        SourceState::Absent(_) => {
            SourceState::Absent("metrics.k8s.io is not served (no metrics-server installed?)".into())
        }
        SourceState::Reconnecting(r) if r.starts_with("HTTP 503") => {
            SourceState::Reconnecting("metrics-server is unavailable (503)".into())
        }
        other => other,
    }
}

async fn get_json<T: DeserializeOwned>(client: &Client, path: &str, timeout: Duration) -> Result<T, SourceState> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| SourceState::Reconnecting(format!("bad request {path}: {e}")))?;
    match tokio::time::timeout(timeout, client.request::<T>(request)).await {
        Err(_) => Err(SourceState::Reconnecting(format!("timed out after {}s", timeout.as_secs()))),
        Ok(Err(e)) => Err(classify_client_error(&e)),
        Ok(Ok(v)) => Ok(v),
    }
}
