//! The simulator's HTTP server: the Kubernetes API paths kpulse (and kubectl) use, on 127.0.0.1,
//! read-only. Lists page with limit/continue, watches stream with bookmarks, stale versions get
//! 410 Gone, and errors are `Status` objects as the real apiserver sends them.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::sim::Sim;
use super::store::{Collection, Selector, WatchRecord};
use crate::model::api_cost::RequestKind;
use crate::model::metrics::MetricsList;
use crate::sources::api_traffic::{ApiTraffic, CountedBody};

/// Knobs for tests: make parts of the API forbidden or absent, as on real clusters.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// No metrics.k8s.io (a cluster without metrics-server): 404.
    pub metrics_absent: bool,
    /// metrics.k8s.io answers 403.
    pub metrics_forbidden: bool,
    /// When set, the user may read only these namespaces: cluster-wide lists and nodes get 403.
    pub allowed_namespaces: Option<Vec<String>>,
    /// The kubelet endpoints behind `nodes/{node}/proxy` answer 403 (no `nodes/proxy` permission).
    pub node_proxy_forbidden: bool,
    /// Every cAdvisor scrape answers this body instead (garbage-input tests).
    pub cadvisor_override: Option<String>,
    /// The kubelets serve no `/metrics/cadvisor` (404), only `/metrics/resource`.
    pub cadvisor_absent: bool,
    /// A Prometheus to expose as Service monitoring/prometheus-operated, reachable through the
    /// service proxy as on a real cluster.
    pub prometheus_upstream: Option<SocketAddr>,
}

/// The latest requests received, (method, path and query), oldest first: tests assert kpulse only
/// ever GETs. Bounded: a `--serve` simulator runs for hours.
pub type RequestLog = Arc<Mutex<VecDeque<(String, String)>>>;

/// The request log keeps this many.
pub const REQUEST_LOG_LIMIT: usize = 50_000;

#[derive(Clone)]
pub struct Shared {
    pub sim: Arc<Mutex<Sim>>,
    pub options: Arc<Mutex<ServerOptions>>,
    pub requests: RequestLog,
    /// Requests and answer bytes by kind since the start, as an API server's metrics would count
    /// them: `GET /sim/api-traffic` reads it (the scale run's cost figures).
    pub traffic: Arc<ApiTraffic>,
    shutdown: CancellationToken,
}

pub struct RunningServer {
    pub addr: SocketAddr,
    pub shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops the server and ends every open watch, like an apiserver going away.
    pub async fn stop(self) {
        self.shared.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// A kubeconfig pointing at the simulator over plain HTTP, with an empty user.
pub fn kubeconfig_yaml(addr: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kpulse-demo\n  cluster:\n    server: http://{addr}\n\
         users:\n- name: kpulse-demo\n  user: {{}}\ncontexts:\n- name: kpulse-demo\n  context:\n    cluster: kpulse-demo\n    user: kpulse-demo\n\
         current-context: kpulse-demo\n"
    )
}

pub async fn serve(
    sim: Arc<Mutex<Sim>>,
    options: ServerOptions,
    requests: RequestLog,
    addr: SocketAddr,
) -> std::io::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Shared {
        sim,
        options: Arc::new(Mutex::new(options)),
        requests,
        traffic: Arc::default(),
        shutdown: CancellationToken::new(),
    };
    let app = Router::new().fallback(handle).with_state(shared.clone());
    let stop = shared.shutdown.clone();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
    });
    Ok(RunningServer { addr, shared, task })
}

/// Advances the simulation in real time (`speed` simulated seconds per second) until cancelled.
pub fn spawn_clock(sim: Arc<Mutex<Sim>>, speed: u32, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {
                    if let Ok(mut s) = sim.lock() {
                        s.advance(i64::from(speed.max(1)));
                    }
                }
            }
        }
    });
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()
    });
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

fn json_response(value: serde_json::Value) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(value.to_string()))
        .unwrap_or_default()
}

fn forbidden(resource: &str, verb: &str, namespace: Option<&str>, group: &str) -> Response {
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".into(),
    };
    status(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!(
            "{resource} is forbidden: User \"kpulse-demo\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
        ),
    )
}

/// Every request: logged, counted by kind with its answer's bytes, then routed.
async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: http::HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let path_and_query = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    if let Ok(mut r) = shared.requests.lock() {
        if r.len() >= REQUEST_LOG_LIMIT {
            r.pop_front();
        }
        r.push_back((method.to_string(), path_and_query));
    }
    // The simulator's own endpoints (`/sim/…`) are not API server traffic.
    if uri.path().starts_with("/sim/") {
        return route(&shared, method, &uri, &headers, &query, &body).await;
    }
    let kind = RequestKind::of(uri.path(), uri.query());
    shared.traffic.count_request(kind);
    let answer = route(&shared, method, &uri, &headers, &query, &body).await;
    let traffic = shared.traffic.clone();
    answer.map(|b| Body::new(CountedBody::new(b, traffic, kind)))
}

async fn route(
    shared: &Shared,
    method: Method,
    uri: &Uri,
    headers: &http::HeaderMap,
    query: &HashMap<String, String>,
    body: &Bytes,
) -> Response {
    // `Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`: metadata only.
    let metadata_only = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadataList"));
    // The kubelet's exposition handler compresses when asked, and the node proxy passes it on.
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.split(',').any(|e| e.trim().starts_with("gzip")));
    if method == Method::POST && uri.path() == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" {
        let options = shared.options.lock().map(|o| o.clone()).unwrap_or_default();
        return self_subject_access_review(&options, body);
    }
    if method != Method::GET {
        return status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "the kpulse simulator is read-only");
    }
    let shared = shared.clone();
    let query = query.clone();
    let options = shared.options.lock().map(|o| o.clone()).unwrap_or_default();
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    match segments.as_slice() {
        // Not an apiserver path: what clients have asked of this API server since it started.
        ["sim", "api-traffic"] => {
            let t = shared.traffic.totals();
            let kinds: serde_json::Map<String, serde_json::Value> = RequestKind::ALL
                .iter()
                .map(|k| {
                    (k.label().to_string(), json!({"requests": t.requests[k.index()], "bytes": t.bytes[k.index()]}))
                })
                .collect();
            json_response(json!({"requests": t.total_requests(), "bytes": t.total_bytes(), "by_kind": kinds}))
        }
        // Not an apiserver path: the simulated RabbitMQ's Prometheus endpoint, for `--broker`.
        ["sim", "rabbitmq", "metrics", "per-object"] => {
            match shared.sim.lock().ok().and_then(|s| s.rabbitmq_exposition()) {
                Some(text) => Response::builder()
                    .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                    .body(Body::from(text))
                    .unwrap_or_default(),
                None => status(StatusCode::NOT_FOUND, "NotFound", "this scenario has no queues"),
            }
        }
        // Likewise kube-state-metrics, for a Prometheus scraping the simulator.
        ["sim", "kube-state-metrics", "metrics"] => {
            let text = shared.sim.lock().map(|s| s.kube_state_metrics_exposition()).unwrap_or_default();
            Response::builder()
                .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                .body(Body::from(text))
                .unwrap_or_default()
        }
        ["version"] => json_response(json!({
            "major": "1", "minor": "37", "gitVersion": "v1.37.0-kpulse-sim", "platform": "linux/amd64"
        })),
        ["api"] => json_response(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
        ["apis"] => {
            let mut groups = vec![json!({"name": "authorization.k8s.io",
                "versions": [{"groupVersion": "authorization.k8s.io/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "authorization.k8s.io/v1", "version": "v1"}})];
            if !options.metrics_absent {
                groups.push(json!({"name": "metrics.k8s.io", "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
                        "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}}));
            }
            json_response(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        ["api", "v1"] => json_response(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get", "list", "watch"], "shortNames": ["po"]},
            {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]},
            {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "Node", "verbs": ["get", "list", "watch"], "shortNames": ["no"]},
            {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event", "verbs": ["get", "list", "watch"], "shortNames": ["ev"]},
            {"name": "services", "singularName": "service", "namespaced": true, "kind": "Service", "verbs": ["get", "list", "watch"], "shortNames": ["svc"]},
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]}
        ]})),
        ["apis", "metrics.k8s.io", "v1beta1", rest @ ..] => metrics(&shared, &options, rest),
        ["api", "v1", "services"] => collection(&shared, &options, "services", None, None, &query, metadata_only).await,
        ["api", "v1", "namespaces", "monitoring", "services", "prometheus-operated:9090", "proxy", ..] => match options
            .prometheus_upstream
        {
            Some(upstream) => {
                let prefix = "/api/v1/namespaces/monitoring/services/prometheus-operated:9090/proxy";
                let rest = uri.path_and_query().map(|p| p.as_str()).unwrap_or("").strip_prefix(prefix).unwrap_or("/");
                proxy_get(upstream, rest).await
            }
            None => status(StatusCode::NOT_FOUND, "NotFound", "services \"prometheus-operated\" not found"),
        },
        ["api", "v1", "namespaces"] => {
            if options.allowed_namespaces.is_some() {
                return forbidden("namespaces", "list", None, "");
            }
            let names = shared.sim.lock().map(|s| s.namespaces()).unwrap_or_default();
            let items: Vec<_> =
                names.iter().map(|n| json!({"metadata": {"name": n}, "status": {"phase": "Active"}})).collect();
            json_response(json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {}, "items": items}))
        }
        ["api", "v1", "pods"] => collection(&shared, &options, "pods", None, None, &query, metadata_only).await,
        ["api", "v1", "events"] => collection(&shared, &options, "events", None, None, &query, metadata_only).await,
        ["api", "v1", "nodes"] => collection(&shared, &options, "nodes", None, None, &query, metadata_only).await,
        ["api", "v1", "nodes", name] => {
            collection(&shared, &options, "nodes", None, Some(name), &query, metadata_only).await
        }
        ["api", "v1", "nodes", node, "proxy", "metrics", "resource"] => {
            if options.node_proxy_forbidden || options.allowed_namespaces.is_some() {
                return forbidden("nodes/proxy", "get", None, "");
            }
            match shared.sim.lock().ok().and_then(|s| s.resource_exposition(node)) {
                Some(text) => exposition_response(text, gzip_ok),
                None => status(StatusCode::NOT_FOUND, "NotFound", &format!("nodes \"{node}\" not found")),
            }
        }
        ["api", "v1", "nodes", node, "proxy", "metrics", "cadvisor"] => {
            if options.node_proxy_forbidden || options.allowed_namespaces.is_some() {
                return forbidden("nodes/proxy", "get", None, "");
            }
            if options.cadvisor_absent {
                return Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(Body::from("404 page not found\n"))
                    .unwrap_or_default();
            }
            let body = match &options.cadvisor_override {
                Some(text) => Some(text.clone()),
                None => shared.sim.lock().ok().and_then(|s| s.cadvisor_exposition(node)),
            };
            match body {
                Some(text) => exposition_response(text, gzip_ok),
                None => status(StatusCode::NOT_FOUND, "NotFound", &format!("nodes \"{node}\" not found")),
            }
        }
        ["api", "v1", "namespaces", ns, kind @ ("pods" | "events" | "services")] => {
            collection(&shared, &options, kind, Some(ns), None, &query, metadata_only).await
        }
        ["api", "v1", "namespaces", ns, "pods", name, "log"] => {
            if options.allowed_namespaces.as_ref().is_some_and(|a| !a.iter().any(|x| x == ns)) {
                return forbidden("pods/log", "get", Some(ns), "");
            }
            pod_log(&shared, ns, name, &query)
        }
        ["api", "v1", "namespaces", ns, kind @ ("pods" | "events" | "services"), name] => {
            collection(&shared, &options, kind, Some(ns), Some(name), &query, metadata_only).await
        }
        _ => status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource"),
    }
}

/// A kubelet's exposition answer, gzipped when the client accepts it (as promhttp does).
fn exposition_response(text: String, gzip_ok: bool) -> Response {
    let builder = Response::builder().header(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    if gzip_ok {
        use std::io::Write;
        let mut encoder =
            flate2::write::GzEncoder::new(Vec::with_capacity(text.len() / 8), flate2::Compression::fast());
        if encoder.write_all(text.as_bytes()).is_ok()
            && let Ok(compressed) = encoder.finish()
        {
            return builder.header(header::CONTENT_ENCODING, "gzip").body(Body::from(compressed)).unwrap_or_default();
        }
    }
    builder.body(Body::from(text)).unwrap_or_default()
}

/// `kubectl auth can-i` and k9s ask before they list: allowed is what the simulator serves (the
/// reads of the read-only role), less what its options forbid; every write is refused.
fn self_subject_access_review(options: &ServerOptions, body: &Bytes) -> Response {
    let Ok(mut review) = serde_json::from_slice::<serde_json::Value>(body) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "the body is not a SelfSubjectAccessReview");
    };
    let attrs = &review["spec"]["resourceAttributes"];
    let text = |key: &str| attrs[key].as_str().unwrap_or_default().to_string();
    let (verb, resource, subresource, group, namespace) =
        (text("verb"), text("resource"), text("subresource"), text("group"), text("namespace"));
    // What the simulator serves, and how: the reads of config/rbac-readonly.yaml's role.
    let served: &[&str] = match (group.as_str(), resource.as_str(), subresource.as_str()) {
        ("", "pods" | "nodes" | "events" | "services", "") => &["get", "list", "watch"],
        ("", "namespaces", "") | ("metrics.k8s.io", "pods" | "nodes", "") => &["get", "list"],
        ("", "pods", "log") | ("", "nodes" | "services", "proxy") => &["get"],
        _ => &[],
    };
    let denied_because = if !["get", "list", "watch"].contains(&verb.as_str()) {
        Some("the kpulse simulator is read-only")
    } else if !served.contains(&verb.as_str()) {
        Some("the kpulse simulator does not serve this")
    } else if options.node_proxy_forbidden && resource == "nodes" && subresource == "proxy" {
        Some("nodes/proxy is not granted")
    } else if options.metrics_forbidden && group == "metrics.k8s.io" {
        Some("metrics.k8s.io is not granted")
    } else if let Some(allowed) = &options.allowed_namespaces {
        (!allowed.contains(&namespace)).then_some("only some namespaces are granted")
    } else {
        None
    };
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["metadata"] = json!({"creationTimestamp": null});
    review["status"] = match denied_because {
        None => json!({"allowed": true, "reason": "RBAC: allowed by the kpulse simulator"}),
        Some(why) => json!({"allowed": false, "denied": true, "reason": why}),
    };
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(review.to_string()))
        .unwrap_or_default()
}

/// Forwards a GET to `upstream` (HTTP/1.0, so the answer ends with the connection) and relays
/// status, content type and body: the API server's service proxy, reduced to what is needed.
async fn proxy_get(upstream: SocketAddr, path_and_query: &str) -> Response {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(upstream).await?;
        stream.write_all(format!("GET {path_and_query} HTTP/1.0\r\nHost: {upstream}\r\n\r\n").as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = match tokio::time::timeout(Duration::from_secs(30), fetch).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => {
            return status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                &format!("error trying to reach service: {e}"),
            );
        }
        Err(_) => return status(StatusCode::GATEWAY_TIMEOUT, "Timeout", "the upstream did not answer in time"),
    };
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&raw[..split]);
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok()).unwrap_or(502);
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: ").or_else(|| l.strip_prefix("content-type: ")))
        .unwrap_or("application/octet-stream")
        .trim()
        .to_string();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(raw[split..].to_vec()))
        .unwrap_or_default()
}

/// `GET …/pods/{name}/log` with `follow`, `tailLines`, `timestamps`, `sinceTime`, `sinceSeconds`,
/// as the kubelet serves it through the API server: plain text, one line per entry, and with
/// `follow=true` a stream that stays open and delivers new lines as they are written.
fn pod_log(shared: &Shared, ns: &str, name: &str, query: &HashMap<String, String>) -> Response {
    let Ok(sim) = shared.sim.lock() else {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "simulator state poisoned");
    };
    let Some(containers) = sim.container_names(ns, name) else {
        return status(StatusCode::NOT_FOUND, "NotFound", &format!("pods \"{name}\" not found"));
    };
    if let Some(container) = query.get("container").filter(|c| !containers.contains(c)) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("container {container} is not valid for pod {name}"),
        );
    }
    let container = match query.get("container") {
        Some(c) => c.clone(),
        None if containers.len() == 1 => containers[0].clone(),
        // As the API server answers: a pod of several containers needs one named.
        None => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                ),
            );
        }
    };
    let flag = |k: &str| query.get(k).is_some_and(|v| v == "true" || v == "1");
    let (follow, timestamps) = (flag("follow"), flag("timestamps"));
    let since: Option<i64> = query
        .get("sinceTime")
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| t.as_second())
        .or_else(|| query.get("sinceSeconds").and_then(|s| s.parse::<i64>().ok()).map(|s| sim.now - s));
    let mut lines = sim.pod_log(name, &container, 0);
    if let Some(since) = since {
        lines.retain(|(_, t, _)| *t >= since);
    }
    if let Some(tail) = query.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
        let skip = lines.len().saturating_sub(tail);
        lines.drain(..skip);
    }
    let last_seq =
        lines.last().map(|l| l.0).unwrap_or_else(|| sim.pod_log(name, &container, 0).last().map_or(0, |l| l.0));
    drop(sim);
    let render = move |(seq, t, line): &(u64, i64, String)| {
        if timestamps {
            // The kubelet stamps with nanoseconds, always nine digits (RFC3339NanoFixed); the
            // sequence keeps a pod's stamps rising within one simulated second.
            let nanos = seq % 1_000_000_000;
            let second = k8s_openapi::jiff::Timestamp::from_second(*t).unwrap_or_default();
            let stamp = format!("{}.{nanos:09}Z", second.strftime("%Y-%m-%dT%H:%M:%S"));
            format!("{stamp} {line}\n")
        } else {
            format!("{line}\n")
        }
    };
    let backlog: String = lines.iter().map(render).collect();
    if !follow {
        return Response::builder()
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(backlog))
            .unwrap_or_default();
    }
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let sim = shared.sim.clone();
    let shutdown = shared.shutdown.clone();
    let pod = name.to_string();
    tokio::spawn(async move {
        if !backlog.is_empty() && tx.send(Bytes::from(backlog)).await.is_err() {
            return;
        }
        let mut last = last_seq;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let fresh = match sim.lock() {
                Ok(s) => s.pod_log(&pod, &container, last),
                Err(_) => return,
            };
            if let Some(l) = fresh.last() {
                last = l.0;
            }
            let chunk: String = fresh.iter().map(render).collect();
            if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx)) });
    Response::builder().header(header::CONTENT_TYPE, "text/plain").body(Body::from_stream(stream)).unwrap_or_default()
}

fn metrics(shared: &Shared, options: &ServerOptions, rest: &[&str]) -> Response {
    if options.metrics_absent {
        return status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource");
    }
    let resource = if rest.contains(&"nodes") { "nodes" } else { "pods" };
    let namespace = match rest {
        ["namespaces", ns, ..] => Some(*ns),
        _ => None,
    };
    if options.metrics_forbidden {
        return forbidden(resource, "list", namespace, "metrics.k8s.io");
    }
    if let Some(allowed) = &options.allowed_namespaces
        && namespace.is_none_or(|ns| !allowed.iter().any(|a| a == ns))
    {
        return forbidden(resource, "list", namespace, "metrics.k8s.io");
    }
    let Ok(sim) = shared.sim.lock() else {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "simulator state poisoned");
    };
    let body = match rest {
        ["nodes"] => serde_json::to_value(MetricsList { items: sim.node_metrics() }),
        ["pods"] | ["namespaces", _, "pods"] => serde_json::to_value(MetricsList { items: sim.pod_metrics(namespace) }),
        _ => return status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource"),
    };
    let mut body = body.unwrap_or_default();
    body["kind"] = json!(if resource == "nodes" { "NodeMetricsList" } else { "PodMetricsList" });
    body["apiVersion"] = json!("metrics.k8s.io/v1beta1");
    body["metadata"] = json!({});
    json_response(body)
}

fn pick<'a>(sim: &'a Sim, kind: &str) -> &'a Collection {
    match kind {
        "pods" => &sim.pods_api,
        "nodes" => &sim.nodes_api,
        "services" => &sim.services_api,
        _ => &sim.events_api,
    }
}

/// Field selectors the real apiserver accepts for each kind (others are a 400, as there).
fn supported_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "pods" => &["metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "spec.restartPolicy"],
        "nodes" => &["metadata.name", "spec.unschedulable"],
        "services" => &["metadata.name", "metadata.namespace"],
        _ => &[
            "metadata.name",
            "metadata.namespace",
            "type",
            "reason",
            "source",
            "involvedObject.kind",
            "involvedObject.name",
            "involvedObject.namespace",
        ],
    }
}

async fn collection(
    shared: &Shared,
    options: &ServerOptions,
    kind: &str,
    namespace: Option<&str>,
    name: Option<&str>,
    query: &HashMap<String, String>,
    metadata_only: bool,
) -> Response {
    if let Some(allowed) = &options.allowed_namespaces {
        let ok = match namespace {
            Some(ns) => allowed.iter().any(|a| a == ns),
            None => false,
        };
        if !ok {
            let verb = if name.is_some() {
                "get"
            } else if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                "watch"
            } else {
                "list"
            };
            return forbidden(kind, verb, namespace, "");
        }
    }
    let labels = match Selector::parse(query.get("labelSelector").map_or("", |s| s.as_str())) {
        Ok(s) => s,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e),
    };
    let fields = match Selector::parse(query.get("fieldSelector").map_or("", |s| s.as_str())) {
        Ok(s) => s,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e),
    };
    if let Some(bad) = fields.keys().find(|k| !supported_fields(kind).contains(k)) {
        return status(StatusCode::BAD_REQUEST, "BadRequest", &format!("field label not supported: {bad}"));
    }
    let Ok(sim) = shared.sim.lock() else {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "simulator state poisoned");
    };
    let coll = pick(&sim, kind);
    if let Some(name) = name {
        return match coll.objects.get(&(namespace.unwrap_or("").to_string(), name.to_string())) {
            Some(obj) => Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(obj.json.as_ref().clone()))
                .unwrap_or_default(),
            None => status(StatusCode::NOT_FOUND, "NotFound", &format!("{kind} \"{name}\" not found")),
        };
    }
    let matches = |ns: &str, sel: &super::store::Selectable| {
        namespace.is_none_or(|n| n == ns) && labels.matches_labels(&sel.labels) && fields.matches_fields(&sel.fields)
    };
    if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let from: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
        let timeout = query.get("timeoutSeconds").and_then(|v| v.parse().ok()).unwrap_or(1800u64);
        let bookmarks = query.get("allowWatchBookmarks").is_some_and(|b| b == "true");
        let backlog = match coll.since(from) {
            Ok(b) => b,
            Err(oldest) => {
                // What the apiserver does: a 200 with one ERROR event, then the stream ends.
                let line = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "message": format!("too old resource version: {from} ({oldest})"),
                    "reason": "Expired", "code": 410}});
                return Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(format!("{line}\n")))
                    .unwrap_or_default();
            }
        };
        let rx = coll.tx.subscribe();
        let current_rv = sim.resource_version();
        let (kind_name, api_version) = (coll.kind, coll.api_version);
        drop(sim);
        let namespace = namespace.map(String::from);
        let filter = move |r: &WatchRecord| {
            namespace.as_deref().is_none_or(|n| n == r.namespace)
                && labels.matches_labels(&r.select.labels)
                && fields.matches_fields(&r.select.fields)
        };
        return watch_response(WatchStream {
            backlog,
            rx,
            filter: Box::new(filter),
            from,
            current_rv,
            timeout: Duration::from_secs(timeout),
            bookmarks,
            kind: kind_name,
            api_version,
            shutdown: shared.shutdown.clone(),
        });
    }
    // LIST, paged with limit/continue. The continue token is "rv:namespace/name" of the last item.
    let limit: usize = query.get("limit").and_then(|v| v.parse().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
    let after: Option<(String, String)> = match query.get("continue").filter(|c| !c.is_empty()) {
        None => None,
        Some(token) => match decode_continue(token) {
            Some((rv, key)) if rv >= coll.compacted_rv => Some(key),
            Some(_) => {
                return status(
                    StatusCode::GONE,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                );
            }
            None => return status(StatusCode::BAD_REQUEST, "BadRequest", "invalid continue token"),
        },
    };
    let rv = sim.resource_version();
    let mut items: Vec<std::borrow::Cow<[u8]>> = Vec::new();
    let mut last_key = None;
    let mut more = false;
    let range = coll.objects.iter().filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a));
    for (key, obj) in range {
        if !matches(&obj.namespace, &obj.select) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(if metadata_only { partial_object_metadata(&obj.json).into() } else { obj.json.as_slice().into() });
        last_key = Some(key.clone());
    }
    let mut body = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 256);
    let continue_token = match (more, last_key) {
        (true, Some((ns, name))) => encode_continue(rv, &ns, &name),
        _ => String::new(),
    };
    let (list_kind, api_version) =
        if metadata_only { ("PartialObjectMetadata", "meta.k8s.io/v1") } else { (coll.kind, coll.api_version) };
    body.extend_from_slice(
        format!(
            "{{\"kind\":\"{list_kind}List\",\"apiVersion\":\"{api_version}\",\"metadata\":{{\"resourceVersion\":\"{rv}\"{}}},\"items\":[",
            if continue_token.is_empty() { String::new() } else { format!(",\"continue\":\"{continue_token}\"") }
        )
        .as_bytes(),
    );
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"]}");
    Response::builder().header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap_or_default()
}

/// An object as the apiserver lists it for a metadata-only request: its metadata, nothing else.
fn partial_object_metadata(json: &[u8]) -> Vec<u8> {
    let metadata =
        serde_json::from_slice::<serde_json::Value>(json).map(|mut v| v["metadata"].take()).unwrap_or_default();
    serde_json::to_vec(&json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}))
        .unwrap_or_default()
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let raw = format!("{rv}:{ns}/{name}");
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Option<(u64, (String, String))> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok()).collect();
    let raw = String::from_utf8(bytes?).ok()?;
    let (rv, key) = raw.split_once(':')?;
    let (ns, name) = key.split_once('/')?;
    Some((rv.parse().ok()?, (ns.to_string(), name.to_string())))
}

struct WatchStream {
    backlog: Vec<Arc<WatchRecord>>,
    rx: broadcast::Receiver<Arc<WatchRecord>>,
    filter: Box<dyn Fn(&WatchRecord) -> bool + Send>,
    from: u64,
    current_rv: u64,
    timeout: Duration,
    bookmarks: bool,
    kind: &'static str,
    api_version: &'static str,
    shutdown: CancellationToken,
}

fn watch_line(r: &WatchRecord) -> Bytes {
    let mut line = Vec::with_capacity(r.json.len() + 40);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(r.event_type.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(&r.json);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

fn watch_response(mut w: WatchStream) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let mut last_rv = w.from.max(if w.from == 0 { w.current_rv } else { 0 });
        // resourceVersion=0 or unset on a watch means "start from now" for our purposes.
        if w.from != 0 {
            for r in std::mem::take(&mut w.backlog) {
                if r.rv > last_rv && (w.filter)(&r) && tx.send(watch_line(&r)).await.is_err() {
                    return;
                }
                last_rv = last_rv.max(r.rv);
            }
        }
        let deadline = tokio::time::sleep(w.timeout);
        tokio::pin!(deadline);
        let mut bookmark = tokio::time::interval(Duration::from_secs(10));
        bookmark.tick().await;
        loop {
            tokio::select! {
                _ = w.shutdown.cancelled() => return,
                _ = &mut deadline => return,
                _ = bookmark.tick(), if w.bookmarks => {
                    let line = json!({"type": "BOOKMARK", "object": {"kind": w.kind, "apiVersion": w.api_version,
                        "metadata": {"resourceVersion": last_rv.to_string()}}});
                    if tx.send(Bytes::from(format!("{line}\n"))).await.is_err() { return; }
                }
                rec = w.rx.recv() => match rec {
                    Ok(r) => {
                        if r.rv <= last_rv { continue; }
                        last_rv = r.rv;
                        if (w.filter)(&r) && tx.send(watch_line(&r)).await.is_err() { return; }
                    }
                    // Too slow a reader: end the watch; the client resumes from its last version.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx)) });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "shop", "cart-1");
        assert_eq!(decode_continue(&t), Some((42, ("shop".into(), "cart-1".into()))));
        assert_eq!(decode_continue("zz"), None);
        assert_eq!(decode_continue("abc"), None);
    }
}
