//! Usage and history from a Prometheus server's HTTP API: instant queries every interval (one per
//! metric, for all containers at once) and a `query_range` back-fill at start-up. Reached directly
//! (`--prometheus http://…`) or through the API server's service proxy (`--prometheus auto`),
//! with GETs only.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::http::{HttpClient, PROMETHEUS_LIMIT, RequestHeaders, check_url};
use super::{SourceId, SourceState, Update};
use crate::model::metrics::{ContainerHistory, ContainerUsage, Usage};
use crate::model::pod::PodKey;
use crate::model::promql::{Queries, Sample, SeriesResult, for_each_series};
use crate::model::time::{UnixSecs, now_unix};

/// Where the Prometheus HTTP API is.
#[derive(Clone)]
pub enum Endpoint {
    /// `http://host:port[/prefix]`, queried directly, with the user's headers (a tenant, a token).
    Direct { base: String, client: HttpClient, headers: RequestHeaders },
    /// Through the API server: `/api/v1/namespaces/{ns}/services/{name}:{port}/proxy`, with the
    /// user's headers but the API server's credentials.
    ApiProxy { client: kube::Client, prefix: String, headers: RequestHeaders },
}

impl Endpoint {
    pub fn direct(base: &str, headers: RequestHeaders) -> Result<Endpoint, String> {
        let base = base.trim_end_matches('/').to_string();
        check_url(&base, "Prometheus")?;
        Ok(Endpoint::Direct { base, client: super::http::client(), headers })
    }

    pub fn describe(&self) -> String {
        match self {
            Endpoint::Direct { base, .. } => base.clone(),
            Endpoint::ApiProxy { prefix, .. } => format!("service proxy {prefix}"),
        }
    }

    /// GET `path_and_query` (starting with `/api/v1/…`); the body, or why not.
    async fn get(&self, path_and_query: &str, timeout: Duration) -> Result<bytes::Bytes, String> {
        let fut = async {
            let (status, body) = match self {
                Endpoint::Direct { base, client, headers } => {
                    let uri: http::Uri =
                        format!("{base}{path_and_query}").parse().map_err(|e| format!("bad URL: {e}"))?;
                    super::http::get(client, uri, headers, timeout, PROMETHEUS_LIMIT).await?
                }
                Endpoint::ApiProxy { client, prefix, headers } => {
                    let mut fixed = http::HeaderMap::new();
                    headers.apply_fixed(&mut fixed);
                    let path = format!("{prefix}{path_and_query}");
                    super::api_get::get(client, &path, &fixed, timeout, PROMETHEUS_LIMIT)
                        .await
                        .map_err(|state| format!("service proxy: {}", state.reason().unwrap_or("failed")))?
                }
            };
            // Prometheus answers 400/422/503 with a JSON error body worth showing.
            if !status.is_success() {
                let detail = for_each_series(&body, drop).err().unwrap_or_default();
                return Err(format!(
                    "HTTP {}{}",
                    status.as_u16(),
                    if detail.is_empty() { String::new() } else { format!(": {detail}") }
                ));
            }
            Ok(body)
        };
        tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or_else(|_| Err(format!("timed out after {}s", timeout.as_secs())))
    }
}

fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// (namespace, pod, container) of a series, borrowed from the answer where it can be.
type ContainerId<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>);

fn container_of<'a>(s: &mut SeriesResult<'a>) -> Option<ContainerId<'a>> {
    Some((s.metric.take("namespace")?, s.metric.take("pod")?, s.metric.take("container")?))
}

/// (namespace, pod) of a series.
type PodId<'a> = (Cow<'a, str>, Cow<'a, str>);

fn pod_of<'a>(s: &mut SeriesResult<'a>) -> Option<PodId<'a>> {
    Some((s.metric.take("namespace")?, s.metric.take("pod")?))
}

/// What the answers of one round warned of (a partial response), each said once.
type Warnings = std::collections::BTreeSet<String>;

/// key → value of an instant answer, its series read one by one; series without the key's
/// labels or without a value are left out. Two series of one key (replicas a Thanos without
/// `--query.replica-label` did not deduplicate) keep the last: each holds the same figure,
/// scraped a moment apart.
fn values_by<'a, K: std::hash::Hash + Eq>(
    answer: &'a Result<bytes::Bytes, String>,
    warnings: &mut Warnings,
    key_of: impl Fn(&mut SeriesResult<'a>) -> Option<K>,
) -> Result<HashMap<K, f64>, String> {
    let mut out = HashMap::new();
    let warned = for_each_series(answer.as_ref().map_err(Clone::clone)?, |mut s| {
        if let (Some(key), Some(Some(v))) = (key_of(&mut s), s.value.map(|v| v.value)) {
            out.insert(key, v);
        }
    })?;
    warnings.extend(warned);
    Ok(out)
}

/// (namespace, pod, container) → value.
fn by_container<'a>(
    answer: &'a Result<bytes::Bytes, String>,
    warnings: &mut Warnings,
) -> Result<HashMap<ContainerId<'a>, f64>, String> {
    values_by(answer, warnings, container_of)
}

/// (namespace, pod) → value.
fn by_pod<'a>(
    answer: &'a Result<bytes::Bytes, String>,
    warnings: &mut Warnings,
) -> Result<HashMap<PodId<'a>, f64>, String> {
    values_by(answer, warnings, pod_of)
}

/// The status-bar line for a round's warnings: the first in full, the rest counted.
fn partial_notice(warnings: &Warnings) -> Option<String> {
    let first = warnings.iter().next()?;
    let more = match warnings.len() - 1 {
        0 => String::new(),
        n => format!(" (and {n} more)"),
    };
    Some(format!("prometheus answered in part: {first}{more}"))
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
    let mut last_warnings = Warnings::new();
    loop {
        ticker.tick().await;
        let q = &cfg.queries;
        let instant = |query: &str| {
            let path = format!("/api/v1/query?{}", encode(&[("query", query)]));
            let endpoint = cfg.endpoint.clone();
            async move { endpoint.get(&path, timeout).await }
        };
        let answers = futures::join!(
            instant(&q.cpu),
            instant(&q.memory),
            instant(&q.throttle),
            instant(&q.oom),
            instant(&q.restarts_1h),
            instant(&q.net_rx),
            instant(&q.net_tx)
        );
        let at = now_unix();
        let mut warnings = Warnings::new();
        let state = match (by_container(&answers.0, &mut warnings), by_container(&answers.1, &mut warnings)) {
            (Ok(cpu), Ok(mem)) => {
                // Throttling and network are optional: not every installation has them.
                let throttle = by_container(&answers.2, &mut warnings).unwrap_or_default();
                // Only containers with OOM kills are returned: absent means none (when the query ran).
                let oom = by_container(&answers.3, &mut warnings).ok();
                // kube-state-metrics is optional too; it also names containers that run nothing
                // (a crash loop in back-off has no cgroup, so no usage series).
                let restarts = by_container(&answers.4, &mut warnings).unwrap_or_default();
                let mut keys: Vec<&ContainerId> = cpu.keys().chain(mem.keys()).chain(restarts.keys()).collect();
                keys.sort();
                keys.dedup();
                let usages = keys
                    .into_iter()
                    .map(|k| ContainerUsage {
                        pod: PodKey::new(k.0.as_ref(), k.1.as_ref()),
                        container: k.2.to_string(),
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
                if let (Ok(rx), Ok(txb)) = (by_pod(&answers.5, &mut warnings), by_pod(&answers.6, &mut warnings)) {
                    let net = rx
                        .iter()
                        .filter_map(|(k, r)| Some((PodKey::new(k.0.as_ref(), k.1.as_ref()), *r, *txb.get(k)?)))
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
        drop(answers);
        crate::heap::release_free_pages();
        // A partial answer (a store or a replica down behind Thanos or Mimir) is said when it
        // starts and when it ends, not every round.
        if warnings != last_warnings {
            let notice = partial_notice(&warnings).unwrap_or_else(|| "prometheus answers in full again".into());
            if tx.send(Update::Notice(notice)).is_err() {
                return;
            }
            last_warnings = warnings;
        }
        if state != last {
            if !status(state.clone()) {
                return;
            }
            last = state;
        }
    }
}

/// Points per series in one back-fill request. The history comes in windows, each sent as it
/// arrives, so only one window's answers are in memory: 15 minutes of 30,000 series in one
/// answer is ~60 MB of JSON and as much again parsed.
const BACKFILL_POINTS_PER_REQUEST: i64 = 5;

/// History for the charts at start-up: CPU and memory over the retained window.
async fn backfill(cfg: &PrometheusConfig, tx: &UnboundedSender<Update>, timeout: Duration) -> Result<(), String> {
    let end = now_unix();
    // At most 60 points per series over the window keeps the total small at 30,000 containers.
    let step = (cfg.retention.as_secs() / 60).max(cfg.interval.as_secs()).max(1) as i64;
    let mut from = end - cfg.retention.as_secs() as i64;
    while from <= end {
        let to = (from + step * (BACKFILL_POINTS_PER_REQUEST - 1)).min(end);
        let range = |query: &str| {
            let (s, e, st) = (from.to_string(), to.to_string(), step.to_string());
            let path = format!(
                "/api/v1/query_range?{}",
                encode(&[("query", query), ("start", &s), ("end", &e), ("step", &st)])
            );
            let endpoint = cfg.endpoint.clone();
            async move { endpoint.get(&path, timeout * 3).await }
        };
        let (cpu, mem) = futures::join!(range(&cfg.queries.cpu), range(&cfg.queries.memory));
        let (cpu, mem) = (cpu?, mem?);
        let history = container_histories(&cpu, &mem)?;
        drop((cpu, mem));
        crate::heap::release_free_pages();
        if tx.send(Update::UsageHistory(history)).is_err() {
            break;
        }
        from = to + step;
    }
    Ok(())
}

/// Each container's CPU and memory points of one window, merged by time (each answer's points
/// come in time order).
fn container_histories(cpu: &[u8], mem: &[u8]) -> Result<Vec<ContainerHistory>, String> {
    let mut containers: HashMap<ContainerId, [Vec<Sample>; 2]> = HashMap::new();
    for (body, which) in [(cpu, 0), (mem, 1)] {
        for_each_series(body, |mut s| {
            if let Some(id) = container_of(&mut s) {
                containers.entry(id).or_default()[which] = s.values;
            }
        })?;
    }
    let at = |s: &Sample| s.at as UnixSecs;
    let value = |s: &Sample| s.value.map_or(f32::NAN, |v| v as f32);
    Ok(containers
        .into_iter()
        .map(|((ns, pod, container), [cpu, mem])| {
            let (mut c, mut m) = (cpu.iter().peekable(), mem.iter().peekable());
            let mut points = Vec::with_capacity(cpu.len().max(mem.len()));
            loop {
                let point = match (c.peek(), m.peek()) {
                    (Some(a), Some(b)) if at(a) == at(b) => (at(a), value(c.next().unwrap()), value(m.next().unwrap())),
                    (Some(a), Some(b)) if at(a) < at(b) => (at(a), value(c.next().unwrap()), f32::NAN),
                    (_, Some(b)) => (at(b), f32::NAN, value(m.next().unwrap())),
                    (Some(a), None) => (at(a), value(c.next().unwrap()), f32::NAN),
                    (None, None) => break,
                };
                points.push((point.0, point.1 * 1000.0, point.2));
            }
            ContainerHistory { pod: PodKey::new(ns.as_ref(), pod.as_ref()), container: container.into_owned(), points }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_of_history_merges_cpu_and_memory_by_time() {
        let cpu = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"namespace":"shop","pod":"p","container":"app"},"values":[[10,"0.5"],[25,"NaN"],[40,"0.25"]]}]}}"#;
        let mem = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"namespace":"shop","pod":"p","container":"app"},"values":[[25,"100"],[40,"200"],[55,"300"]]},
            {"metric":{"namespace":"shop","pod":"q","container":"app"},"values":[[10,"7"]]},
            {"metric":{"namespace":"shop","pod":"no-container-label"},"values":[[10,"7"]]}]}}"#;
        let mut history = container_histories(cpu, mem).unwrap();
        history.sort_by(|a, b| a.pod.name.cmp(&b.pod.name));
        assert_eq!(history.len(), 2);
        let p = &history[0];
        assert_eq!((p.pod.name.as_str(), p.container.as_str()), ("p", "app"));
        let shown: Vec<String> = p.points.iter().map(|(t, c, m)| format!("{t}:{c}:{m}")).collect();
        assert_eq!(shown, ["10:500:NaN", "25:NaN:100", "40:250:200", "55:NaN:300"]);
        assert_eq!(history[1].points.len(), 1);
        assert!(history[1].points[0].1.is_nan() && history[1].points[0].2 == 7.0);
    }
}
