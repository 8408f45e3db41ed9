//! Usage and history from a Prometheus server's HTTP API: instant queries every interval (one per
//! metric, for all containers at once) and a `query_range` back-fill at start-up. Reached directly
//! (`--prometheus http://…`) or through the API server's service proxy (`--prometheus auto`),
//! with GETs only.

use std::collections::HashMap;
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::sync::mpsc::UnboundedSender;

use super::http::{HttpClient, check_url, error_chain};
use super::{SourceId, SourceState, Update};
use crate::model::metrics::{ContainerUsage, Usage};
use crate::model::pod::PodKey;
use crate::model::promql::{Queries, SeriesResult, parse_response, sample_value};
use crate::model::time::now_unix;

/// Where the Prometheus HTTP API is.
#[derive(Clone)]
pub enum Endpoint {
    /// `http://host:port[/prefix]`, queried directly.
    Direct { base: String, client: HttpClient },
    /// Through the API server: `/api/v1/namespaces/{ns}/services/{name}:{port}/proxy`.
    ApiProxy { client: kube::Client, prefix: String },
}

impl Endpoint {
    pub fn direct(base: &str) -> Result<Endpoint, String> {
        let base = base.trim_end_matches('/').to_string();
        check_url(&base, "Prometheus")
            .map_err(|e| format!("{e} (for HTTPS use --prometheus auto, through the API server)"))?;
        Ok(Endpoint::Direct { base, client: super::http::client() })
    }

    pub fn describe(&self) -> String {
        match self {
            Endpoint::Direct { base, .. } => base.clone(),
            Endpoint::ApiProxy { prefix, .. } => format!("service proxy {prefix}"),
        }
    }

    /// GET `path_and_query` (starting with `/api/v1/…`); the body, or why not.
    async fn get(&self, path_and_query: &str, timeout: Duration) -> Result<Vec<u8>, String> {
        let fut = async {
            let (status, body) = match self {
                Endpoint::Direct { base, client } => {
                    let uri: http::Uri =
                        format!("{base}{path_and_query}").parse().map_err(|e| format!("bad URL: {e}"))?;
                    super::http::get(client, uri, timeout).await.map_err(|e| format!("Prometheus: {e}"))?
                }
                Endpoint::ApiProxy { client, prefix } => {
                    let request = http::Request::get(format!("{prefix}{path_and_query}"))
                        .body(kube::client::Body::empty())
                        .map_err(|e| e.to_string())?;
                    let resp = client.send(request).await.map_err(|e| format!("service proxy: {}", error_chain(&e)))?;
                    let status = resp.status();
                    let body = resp.into_body().collect().await.map_err(|e| format!("reading the answer: {e}"))?;
                    (status, body.to_bytes())
                }
            };
            // Prometheus answers 400/422/503 with a JSON error body worth showing.
            if !status.is_success() {
                let detail = parse_response(&body).err().unwrap_or_default();
                return Err(format!(
                    "HTTP {}{}",
                    status.as_u16(),
                    if detail.is_empty() { String::new() } else { format!(": {detail}") }
                ));
            }
            Ok(body.to_vec())
        };
        tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or_else(|_| Err(format!("timed out after {}s", timeout.as_secs())))
    }
}

fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// (namespace, pod, container) of a series.
type ContainerId = (String, String, String);

/// (namespace, pod, container) → value, from a query's series.
fn by_container(series: &[SeriesResult]) -> HashMap<ContainerId, f64> {
    series
        .iter()
        .filter_map(|s| {
            let label = |k: &str| s.metric.get(k).cloned();
            let v = sample_value(&s.value.as_ref()?.1)?;
            Some(((label("namespace")?, label("pod")?, label("container")?), v))
        })
        .collect()
}

fn by_pod(series: &[SeriesResult]) -> HashMap<(String, String), f64> {
    series
        .iter()
        .filter_map(|s| {
            let v = sample_value(&s.value.as_ref()?.1)?;
            Some(((s.metric.get("namespace")?.clone(), s.metric.get("pod")?.clone()), v))
        })
        .collect()
}

pub struct PrometheusConfig {
    pub endpoint: Endpoint,
    pub queries: Queries,
    pub interval: Duration,
    pub retention: Duration,
}

pub async fn poll(cfg: PrometheusConfig, tx: UnboundedSender<Update>) {
    let status = |state: SourceState| tx.send(Update::Status { source: SourceId::Prometheus, state }).is_ok();
    status(SourceState::Connecting);
    let timeout = cfg.interval.max(Duration::from_secs(5));
    if let Err(e) = backfill(&cfg, &tx, timeout).await {
        let _ = tx.send(Update::Notice(format!("prometheus back-fill skipped: {e}")));
    }
    let mut ticker = tokio::time::interval(cfg.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = SourceState::Connecting;
    loop {
        ticker.tick().await;
        let q = &cfg.queries;
        let instant = |query: &str| {
            let path = format!("/api/v1/query?{}", encode(&[("query", query)]));
            let endpoint = cfg.endpoint.clone();
            async move { endpoint.get(&path, timeout).await.and_then(|b| parse_response(&b)) }
        };
        let (cpu, mem, throttle, oom, restarts, rx, tx_bytes) = futures::join!(
            instant(&q.cpu),
            instant(&q.memory),
            instant(&q.throttle),
            instant(&q.oom),
            instant(&q.restarts_1h),
            instant(&q.net_rx),
            instant(&q.net_tx)
        );
        let at = now_unix();
        let state = match (cpu, mem) {
            (Ok(cpu), Ok(mem)) => {
                let cpu = by_container(&cpu);
                let mem = by_container(&mem);
                // Throttling and network are optional: not every installation has them.
                let throttle = throttle.as_deref().map(by_container).unwrap_or_default();
                // Only containers with OOM kills are returned: absent means none (when the query ran).
                let oom = oom.as_deref().ok().map(by_container);
                // kube-state-metrics is optional too; it also names containers that run nothing
                // (a crash loop in back-off has no cgroup, so no usage series).
                let restarts = restarts.as_deref().map(by_container).unwrap_or_default();
                let mut keys: Vec<&ContainerId> = cpu.keys().chain(mem.keys()).chain(restarts.keys()).collect();
                keys.sort();
                keys.dedup();
                let usages = keys
                    .into_iter()
                    .map(|k| ContainerUsage {
                        pod: PodKey::new(k.0.clone(), k.1.clone()),
                        container: k.2.clone(),
                        usage: Usage {
                            cpu_m: cpu.get(k).map_or(f64::NAN, |c| c * 1000.0),
                            mem: mem.get(k).copied().unwrap_or(f64::NAN),
                        },
                        throttle: throttle.get(k).copied(),
                        oom_events: oom.as_ref().map(|o| o.get(k).copied().unwrap_or(0.0)),
                        restarts_last_hour: restarts.get(k).copied(),
                    })
                    .collect();
                if tx.send(Update::PodUsage { at, source: SourceId::Prometheus, usages }).is_err() {
                    return;
                }
                if let (Ok(rx), Ok(txb)) = (&rx, &tx_bytes) {
                    let (rx, txb) = (by_pod(rx), by_pod(txb));
                    let net = rx
                        .iter()
                        .filter_map(|(k, r)| Some((PodKey::new(k.0.clone(), k.1.clone()), *r, *txb.get(k)?)))
                        .collect();
                    if tx.send(Update::PodNetwork { at, usages: net }).is_err() {
                        return;
                    }
                }
                SourceState::Connected
            }
            (Err(e), _) => SourceState::Reconnecting(format!("cpu query: {e}")),
            (_, Err(e)) => SourceState::Reconnecting(format!("memory query: {e}")),
        };
        if state != last {
            if !status(state.clone()) {
                return;
            }
            last = state;
        }
    }
}

/// (time, value) points of one container's CPU and of its memory, in time order.
type CpuAndMemoryPoints = [Vec<(i64, f64)>; 2];

/// History for the charts at start-up: CPU and memory over the retained window.
async fn backfill(cfg: &PrometheusConfig, tx: &UnboundedSender<Update>, timeout: Duration) -> Result<(), String> {
    let end = now_unix();
    let start = end - cfg.retention.as_secs() as i64;
    // At most 60 points per series keeps the answer small at 30,000 containers.
    let step = (cfg.retention.as_secs() / 60).max(cfg.interval.as_secs()).max(1);
    let range = |query: &str| {
        let (s, e, st) = (start.to_string(), end.to_string(), step.to_string());
        let path =
            format!("/api/v1/query_range?{}", encode(&[("query", query), ("start", &s), ("end", &e), ("step", &st)]));
        let endpoint = cfg.endpoint.clone();
        async move { endpoint.get(&path, timeout * 3).await.and_then(|b| parse_response(&b)) }
    };
    let (cpu, mem) = futures::join!(range(&cfg.queries.cpu), range(&cfg.queries.memory));
    let (cpu, mem) = (cpu?, mem?);
    // Each container once, with its CPU and memory points (borrowed from the answers): at 30,000
    // containers × 60 points, a key cloned per point would cost hundreds of MB.
    let mut containers: HashMap<(&str, &str, &str), CpuAndMemoryPoints> = HashMap::new();
    for (series, which) in [(&cpu, 0), (&mem, 1)] {
        for s in series.iter() {
            let (Some(ns), Some(pod), Some(c)) =
                (s.metric.get("namespace"), s.metric.get("pod"), s.metric.get("container"))
            else {
                continue;
            };
            let points = &mut containers.entry((ns.as_str(), pod.as_str(), c.as_str())).or_default()[which];
            points.extend(s.values.iter().filter_map(|(t, v)| Some((*t as i64, sample_value(v)?))));
        }
    }
    // A set: a few dozen distinct times, not one entry per point.
    let times: std::collections::BTreeSet<i64> =
        containers.values().flat_map(|p| p.iter().flatten().map(|(t, _)| *t)).collect();
    // Sent in time order, as live polls would arrive; one timestamp's usages at a time.
    let mut cursors: Vec<_> = containers.iter().map(|(k, p)| (*k, p, [0usize, 0])).collect();
    for at in times {
        let mut usages = Vec::new();
        for ((ns, pod, c), points, next) in cursors.iter_mut() {
            let mut value = [f64::NAN; 2];
            for which in 0..2 {
                if let Some((t, v)) = points[which].get(next[which])
                    && *t == at
                {
                    value[which] = *v;
                    next[which] += 1;
                }
            }
            if value.iter().any(|v| v.is_finite()) {
                usages.push(ContainerUsage {
                    pod: PodKey::new(*ns, *pod),
                    container: c.to_string(),
                    usage: Usage { cpu_m: value[0] * 1000.0, mem: value[1] },
                    throttle: None,
                    oom_events: None,
                    restarts_last_hour: None,
                });
            }
        }
        if tx.send(Update::PodUsage { at, source: SourceId::Prometheus, usages }).is_err() {
            break;
        }
        // Let the app take it before the next is built, so the queue does not hold them all.
        tokio::task::yield_now().await;
    }
    Ok(())
}
