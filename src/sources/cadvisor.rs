//! Usage straight from the kubelets, without Prometheus: each node's exposition through the API
//! server's node proxy, parsed and turned into rates here. Every byte of it passes through the
//! API server, so it asks for little: CPU and memory from the small `/metrics/resource` each
//! interval, the full `/metrics/cadvisor` (throttling, network) once a minute, gzipped, spread
//! over the interval, only from the nodes running pods in scope. Needs `nodes/proxy` get; when
//! that is forbidden or absent, or the cluster is too large, the caller uses metrics.k8s.io.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::sync::mpsc::UnboundedSender;

use super::api_get::classify_client_error;
use super::http::EXPOSITION_LIMIT;
use super::placement::PodPlacement;
use super::{SourceId, SourceState, Update};
use crate::model::cadvisor::{AWAITING_RATES, DerivedUsage, UsageRates, derive, derive_machine, extract};
use crate::model::exposition::Format;
use crate::model::metrics::ContainerUsage;
use crate::model::time::now_unix;

/// How many kubelets are scraped at once.
const CONCURRENT_SCRAPES: usize = 8;
/// A round's scrapes start spread over half the interval, at most this far apart, instead of
/// in one burst through the API server.
const MAX_SPACING: Duration = Duration::from_millis(250);

/// Rates need two samples: until the first rates come, the next round comes this soon rather
/// than a whole interval later (15 s of `-` in every CPU cell). A real kubelet's cAdvisor
/// refreshes its stats every 10 s, so a round may find the same sample and try again.
const FIRST_RATES_AFTER: Duration = Duration::from_secs(4);
/// At most this many such early rounds.
const EARLY_ROUNDS: u32 = 4;

/// What a round asks each kubelet for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `/metrics/cadvisor`: everything, throttling and network included (hundreds of kB a node).
    Cadvisor,
    /// `/metrics/resource`: CPU and working set only, a few kB a node.
    Resource,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Cadvisor => "metrics/cadvisor",
            Endpoint::Resource => "metrics/resource",
        }
    }

    fn other(self) -> Endpoint {
        match self {
            Endpoint::Cadvisor => Endpoint::Resource,
            Endpoint::Resource => Endpoint::Cadvisor,
        }
    }
}

/// One kubelet endpoint through the node proxy; where a kubelet does not serve it (404), the
/// other one (an old kubelet without `/metrics/resource`, or one without cAdvisor).
async fn fetch_node(client: &Client, node: &str, endpoint: Endpoint, timeout: Duration) -> Result<String, SourceState> {
    let path = |e: Endpoint| format!("/api/v1/nodes/{node}/proxy/{}", e.path());
    match fetch_path(client, &path(endpoint), timeout).await {
        Err(SourceState::Absent(_)) => fetch_path(client, &path(endpoint.other()), timeout).await,
        other => other,
    }
}

/// One kubelet endpoint's text through the node proxy, or why not.
async fn fetch_path(client: &Client, path: &str, timeout: Duration) -> Result<String, SourceState> {
    let (code, body) = super::api_get::get(client, path, &http::HeaderMap::new(), timeout, EXPOSITION_LIMIT).await?;
    if code.is_success() {
        return Ok(String::from_utf8_lossy(&body).into_owned());
    }
    // The API server explains a refusal in a Status object; a kubelet may answer in plain text.
    let status = serde_json::from_slice::<kube::core::Status>(&body).unwrap_or_else(|_| {
        kube::core::Status::failure(String::from_utf8_lossy(&body).trim(), "").with_code(code.as_u16())
    });
    Err(classify_client_error(&kube::Error::Api(status.boxed())))
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
    /// More nodes than `ScrapePlan::max_nodes`: scraping each kubelet would cost the API server
    /// more than a cheaper source does.
    TooManyNodes(usize),
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

/// How often, what and where.
#[derive(Clone)]
pub struct ScrapePlan {
    pub targets: Targets,
    /// Every interval, CPU and memory (the kubelets' small `/metrics/resource`).
    pub interval: Duration,
    /// Every this often, the full cAdvisor text: throttling, network, OOM events.
    pub full_interval: Duration,
    /// Give up on the node proxy above this many nodes (the caller picks a cheaper source).
    pub max_nodes: Option<usize>,
    /// Only the kubelets of nodes running pods in scope (a namespace); `None`: every node.
    pub placement: Option<PodPlacement>,
}

pub async fn poll(client: Client, plan: ScrapePlan, tx: UnboundedSender<Update>) -> ScrapeEnd {
    let ScrapePlan { targets, interval, full_interval, max_nodes, placement } = plan;
    let status = |state: SourceState| tx.send(Update::Status { source: SourceId::Cadvisor, state }).is_ok();
    status(SourceState::Connecting);
    let mut rates = UsageRates::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_state = SourceState::Connecting;
    let mut first_round = true;
    let mut early_rounds = 0;
    let mut last_full: Option<tokio::time::Instant> = None;
    let mut awaiting_rates = true;
    // A container with a CPU quota still without a throttling ratio (the first full rounds
    // may find cAdvisor's sample unchanged): full rounds go on through the first full interval.
    let mut awaiting_throttle = true;
    let started = tokio::time::Instant::now();
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
        let mut nodes = match listed {
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
        if first_round
            && let Some(max) = max_nodes
            && matches!(targets, Targets::NodeProxy)
            && nodes.len() > max
        {
            return ScrapeEnd::TooManyNodes(nodes.len());
        }
        // A namespace's pods run on a few nodes: the other kubelets have nothing of them.
        if let Some(in_scope) = placement.as_ref().and_then(PodPlacement::nodes) {
            nodes.retain(|n| in_scope.contains(n));
        }
        // Until the first rates, and through the first full interval until throttling is known,
        // every round is full; then a full round every full_interval, the small resource
        // endpoint in between. A `--scrape` URL is a cAdvisor of its own: always read whole.
        let full = matches!(targets, Targets::Urls(_))
            || awaiting_rates
            || (awaiting_throttle && started.elapsed() < full_interval)
            || last_full.is_none_or(|at| at.elapsed() + interval / 2 >= full_interval);
        if full {
            last_full = Some(tokio::time::Instant::now());
        }
        let endpoint = if full { Endpoint::Cadvisor } else { Endpoint::Resource };
        let spacing = (interval / 2).checked_div(nodes.len().max(1) as u32).unwrap_or_default().min(MAX_SPACING);
        let round_start = tokio::time::Instant::now();
        let fetches = futures::stream::iter(nodes.into_iter().enumerate().map(|(i, node)| {
            let client = client.clone();
            let http_client = http_client.clone();
            let direct = matches!(targets, Targets::Urls(_));
            async move {
                tokio::time::sleep_until(round_start + spacing * i as u32).await;
                let result = if direct {
                    fetch_url(&http_client, &node, timeout).await
                } else {
                    fetch_node(&client, &node, endpoint, timeout).await
                };
                (node, result)
            }
        }))
        .buffer_unordered(CONCURRENT_SCRAPES);
        futures::pin_mut!(fetches);
        rates.begin_round(full);
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
        rates.finish_round(full);
        if first_round && ok == 0 && refused > 0 {
            return ScrapeEnd::Unavailable(failed.first().cloned().unwrap_or_default());
        }
        first_round = false;
        let at = now_unix();
        awaiting_rates = ok == 0 || usages.iter().all(|u: &DerivedUsage| u.cpu_m.is_none());
        if full {
            awaiting_throttle = ok == 0 || usages.iter().any(|u| u.cfs_limited && u.throttle.is_none());
        }
        if ok > 0 && awaiting_rates && interval > FIRST_RATES_AFTER && early_rounds < EARLY_ROUNDS {
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
