//! Usage straight from the kubelets, without Prometheus: each node's cAdvisor exposition through
//! the API server's node proxy (`GET /api/v1/nodes/{node}/proxy/metrics/cadvisor`), parsed and
//! turned into rates here. Needs `nodes/proxy` get; when that is forbidden or absent, the caller
//! falls back to metrics.k8s.io.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::sync::mpsc::UnboundedSender;

use super::http::{EXPOSITION_LIMIT, read_body};
use super::kube::classify_client_error;
use super::{SourceId, SourceState, Update};
use crate::model::cadvisor::{CounterRates, DerivedUsage, derive, derive_machine, extract};
use crate::model::exposition::Format;
use crate::model::metrics::ContainerUsage;
use crate::model::time::now_unix;

/// How many kubelets are scraped at once.
const CONCURRENT_SCRAPES: usize = 8;

/// Rates need two samples: until the first rates come, the next round comes this soon rather
/// than a whole interval later (15 s of `-` in every CPU cell). A real kubelet's cAdvisor
/// refreshes its stats every 10 s, so a round may find the same sample and try again.
const FIRST_RATES_AFTER: Duration = Duration::from_secs(4);
/// How the status bar says so meanwhile; the notice goes when the first rates come.
pub const AWAITING_RATES: &str = "CPU usage in ";
/// At most this many such early rounds.
const EARLY_ROUNDS: u32 = 4;

/// The kubelet's cAdvisor endpoint; where a kubelet does not serve it (404), its resource
/// metrics endpoint, which has CPU and working set but no throttling or network.
async fn fetch_node(client: &Client, node: &str, timeout: Duration) -> Result<String, SourceState> {
    match fetch_path(client, &format!("/api/v1/nodes/{node}/proxy/metrics/cadvisor"), timeout).await {
        Err(SourceState::Absent(_)) => {
            fetch_path(client, &format!("/api/v1/nodes/{node}/proxy/metrics/resource"), timeout).await
        }
        other => other,
    }
}

/// One GET through the API server, its body capped like any exposition text.
async fn fetch_path(client: &Client, path: &str, timeout: Duration) -> Result<String, SourceState> {
    let request = http::Request::get(path)
        .body(kube::client::Body::empty())
        .map_err(|e| SourceState::Reconnecting(e.to_string()))?;
    let fetch = async {
        let resp = client.send(request).await.map_err(|e| classify_client_error(&e))?;
        let code = resp.status();
        let body = read_body(resp, EXPOSITION_LIMIT).await.map_err(SourceState::Reconnecting)?;
        if code.is_success() {
            return Ok(String::from_utf8_lossy(&body).into_owned());
        }
        // The API server explains a refusal in a Status object; a kubelet may answer in plain text.
        let status = serde_json::from_slice::<kube::core::Status>(&body).unwrap_or_else(|_| {
            kube::core::Status::failure(String::from_utf8_lossy(&body).trim(), "").with_code(code.as_u16())
        });
        Err(classify_client_error(&kube::Error::Api(status.boxed())))
    };
    match tokio::time::timeout(timeout, fetch).await {
        Ok(result) => result,
        Err(_) => Err(SourceState::Reconnecting("scrape timed out".into())),
    }
}

pub(super) async fn fetch_url(
    client: &super::http::HttpClient,
    url: &str,
    timeout: Duration,
) -> Result<String, SourceState> {
    let uri = super::http::check_url(url, "scrape").map_err(SourceState::Reconnecting)?;
    match super::http::get(client, uri, &Default::default(), timeout, EXPOSITION_LIMIT).await {
        Ok((status, body)) if status.is_success() => Ok(String::from_utf8_lossy(&body).into_owned()),
        Ok((status, _)) if status.as_u16() == 404 => Err(SourceState::Absent(format!("HTTP {status}"))),
        Ok((status, _)) => Err(SourceState::Reconnecting(format!("HTTP {status}"))),
        Err(e) => Err(SourceState::Reconnecting(e)),
    }
}

pub enum ScrapeEnd {
    /// Every node answered 403/404 on the first round: use another usage source.
    Unavailable(String),
    Closed,
}

/// What is scraped each round.
#[derive(Debug, Clone)]
pub enum Targets {
    /// Every node's kubelet, through the API server's node proxy.
    NodeProxy,
    /// Exposition URLs given with `--scrape` (plain HTTP, outside the API server).
    Urls(Vec<String>),
}

pub async fn poll(client: Client, targets: Targets, interval: Duration, tx: UnboundedSender<Update>) -> ScrapeEnd {
    let status = |state: SourceState| tx.send(Update::Status { source: SourceId::Cadvisor, state }).is_ok();
    status(SourceState::Connecting);
    let mut rates = CounterRates::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_state = SourceState::Connecting;
    let mut first_round = true;
    let mut early_rounds = 0;
    let mut last_parse_problem: Option<String> = None;
    let nodes_api: Api<Node> = Api::all(client.clone());
    let http_client = super::http::client();
    let timeout = interval.max(Duration::from_secs(5));
    loop {
        ticker.tick().await;
        let listed = match &targets {
            Targets::Urls(urls) => Ok(urls.clone()),
            // Names are all it needs: metadata only, not every node's status and image list.
            Targets::NodeProxy => nodes_api
                .list_metadata(&ListParams::default())
                .await
                .map(|list| list.items.into_iter().filter_map(|n| n.metadata.name).collect::<Vec<_>>()),
        };
        let nodes = match listed {
            Ok(nodes) => nodes,
            Err(e) => {
                let state = classify_client_error(&e);
                if first_round && matches!(state, SourceState::Forbidden(_)) {
                    return ScrapeEnd::Unavailable("nodes cannot be listed".into());
                }
                if state != last_state && !status(state.clone()) {
                    return ScrapeEnd::Closed;
                }
                last_state = state;
                continue;
            }
        };
        let fetches = futures::stream::iter(nodes.into_iter().map(|node| {
            let client = client.clone();
            let http_client = http_client.clone();
            let direct = matches!(targets, Targets::Urls(_));
            async move {
                let result = if direct {
                    fetch_url(&http_client, &node, timeout).await
                } else {
                    fetch_node(&client, &node, timeout).await
                };
                (node, result)
            }
        }))
        .buffer_unordered(CONCURRENT_SCRAPES);
        futures::pin_mut!(fetches);
        rates.begin_round();
        let (mut usages, mut network, mut machines) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ok, mut failed, mut refused) = (0usize, Vec::new(), 0usize);
        let mut parse_problem = None;
        let now_ms = now_unix() * 1000;
        while let Some((node, result)) = fetches.next().await {
            match result {
                Ok(text) => {
                    // Parse and reduce at once: the text of one node is dropped before the next.
                    let scrape = extract(&text, Format::detect(None, &text));
                    if let Some(e) = scrape.stats.errors.first() {
                        parse_problem = Some(format!(
                            "{node}: {} malformed line(s) skipped, first at line {}: {}",
                            scrape.stats.skipped_lines, e.line, e.message
                        ));
                    }
                    let (u, n) = derive(&mut rates, &scrape, now_ms);
                    // A `--scrape` URL is not known to be a node: only the node proxy's are.
                    if matches!(targets, Targets::NodeProxy)
                        && let Some(m) = derive_machine(&mut rates, &node, &scrape, now_ms)
                    {
                        machines.push((node.clone(), m));
                    }
                    usages.extend(u);
                    network.extend(n);
                    ok += 1;
                }
                Err(state) => {
                    if matches!(state, SourceState::Forbidden(_) | SourceState::Absent(_)) {
                        refused += 1;
                    }
                    failed.push(format!("{node}: {}", state.reason().unwrap_or(state.word())));
                }
            }
        }
        rates.finish_round();
        if first_round && ok == 0 && refused > 0 {
            return ScrapeEnd::Unavailable(failed.first().cloned().unwrap_or_default());
        }
        first_round = false;
        let at = now_unix();
        let awaiting_rates = ok > 0 && usages.iter().all(|u: &DerivedUsage| u.cpu_m.is_none());
        if awaiting_rates && interval > FIRST_RATES_AFTER && early_rounds < EARLY_ROUNDS {
            early_rounds += 1;
            ticker.reset_after(FIRST_RATES_AFTER);
            // Until then every CPU cell says `-`: the status bar says why, and for how long.
            let wait = format!("{AWAITING_RATES}{}s: a rate needs a second sample", FIRST_RATES_AFTER.as_secs());
            if early_rounds == 1 && tx.send(Update::Notice(wait)).is_err() {
                return ScrapeEnd::Closed;
            }
        }
        let usages: Vec<ContainerUsage> = usages.into_iter().map(DerivedUsage::into_container_usage).collect();
        if ok > 0 {
            if tx.send(Update::PodUsage { at, source: SourceId::Cadvisor, usages }).is_err() {
                return ScrapeEnd::Closed;
            }
            if tx.send(Update::PodNetwork { at, usages: network }).is_err() {
                return ScrapeEnd::Closed;
            }
            // Node usage where no metrics-server serves it (metrics.k8s.io answers the same).
            if !machines.is_empty() && tx.send(Update::NodeUsage { at, usages: machines }).is_err() {
                return ScrapeEnd::Closed;
            }
        }
        // Malformed lines are skipped, not fatal: say so once per distinct problem.
        if parse_problem.is_some() && parse_problem != last_parse_problem {
            let _ = tx.send(Update::Notice(format!("cadvisor: {}", parse_problem.clone().unwrap_or_default())));
        }
        last_parse_problem = parse_problem;
        let state = match failed.first() {
            Some(f) if ok == 0 => SourceState::Reconnecting(f.clone()),
            Some(f) => {
                SourceState::Reconnecting(format!("{} of {} nodes failed; {f}", failed.len(), failed.len() + ok))
            }
            None => SourceState::Connected,
        };
        if state != last_state {
            if !status(state.clone()) {
                return ScrapeEnd::Closed;
            }
            last_state = state;
        }
    }
}
