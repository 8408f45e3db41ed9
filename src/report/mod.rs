//! `kpulse snapshot`: what the dashboard knows, printed once. A table for people, JSON for
//! scripts and CI jobs, Markdown for incident notes. Pure: a [`State`] in, text out.
//!
//! The JSON schema is versioned by its `schema` field ([`SCHEMA`]) and documented in
//! docs/snapshot-schema.md; fields are only ever added within a version.

use serde::Serialize;

use crate::analysis::hotspots::{Hotspot, Subject};
use crate::app::State;
use crate::app::rows::ContainerRow;
use crate::model::api_cost::ApiCostReport;
use crate::model::quantity::{format_bytes, format_cpu_millis, format_ratio};
use crate::model::time::{UnixSecs, format_latency};
use crate::ui::cells::{num_or_dash, pct_text};

mod traffic;

use traffic::{
    GatewayLogReport, ROUTE_HEADERS, RouteReport, SERVICE_HEADERS, ServiceReport, TrafficSection, TrafficWindow,
};

pub const SCHEMA: &str = "kpulse.snapshot/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Table,
    Json,
    Markdown,
}

impl ReportFormat {
    pub fn parse(name: &str) -> Result<ReportFormat, String> {
        match name {
            "table" => Ok(ReportFormat::Table),
            "json" => Ok(ReportFormat::Json),
            "markdown" | "md" => Ok(ReportFormat::Markdown),
            other => Err(format!("unknown format {other:?} (expected table, json or markdown)")),
        }
    }
}

/// How a demo run went: when the top hotspot changed, and whether the scenario's expected culprit
/// got there in time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioRun {
    pub name: String,
    pub played_secs: i64,
    /// Simulated seconds since the start at which each fault began.
    pub fault_onsets_secs: Vec<i64>,
    /// (seconds since start, label, score, verdict) each time the top hotspot changed.
    pub top_changes: Vec<TopChange>,
    pub expectation: Option<ExpectationResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopChange {
    pub at_secs: i64,
    pub subject: String,
    pub score: u32,
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectationResult {
    /// A prefix of the label the first hotspot must have.
    pub culprit: String,
    pub verdict: Option<String>,
    pub evidence: Option<String>,
    pub within_secs: i64,
    /// The earliest fault onset the delay is measured from.
    pub onset_secs: i64,
    /// Seconds after onset at which the culprit first ranked first (and stayed there to the end).
    pub ranked_first_after_secs: Option<i64>,
    pub met: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    schema: &'static str,
    generated_at: UnixSecs,
    context: &'a str,
    window_secs: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scenario: Option<&'a ScenarioRun>,
    /// False when kpulse could not see something it was asked to read: then an empty `hotspots`
    /// does not mean healthy, and `incomplete` says what was missing.
    complete: bool,
    incomplete: Vec<IncompleteReport>,
    sources: Vec<SourceReport>,
    hotspots: Vec<HotspotReport<'a>>,
    containers: Vec<ContainerReport<'a>>,
    /// The requests `traffic` and `routes` cover.
    traffic_window: TrafficWindow,
    traffic: Vec<ServiceReport<'a>>,
    routes: Vec<RouteReport>,
    gateway_logs: Vec<GatewayLogReport<'a>>,
    refused_by_gateway: u64,
    queues: Vec<QueueReport<'a>>,
    notices: Vec<&'a str>,
    /// What kpulse asked of the API server over the run's last minute; absent without a cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_cost: Option<ApiCostReport>,
}

#[derive(Serialize)]
struct QueueReport<'a> {
    broker: &'a str,
    queue: &'a str,
    /// Empty where the broker has no consumer groups (RabbitMQ).
    group: &'a str,
    backlog: f64,
    unacked: Option<f64>,
    consumers: Option<f64>,
    published_per_second: Option<f64>,
    acknowledged_per_second: Option<f64>,
    /// `growing`, `draining` or `steady`.
    trend: &'static str,
    backlog_change_per_second: f64,
    growing_since: Option<UnixSecs>,
    seconds_to_drain: Option<f64>,
    consumer_pods: Vec<String>,
}

fn queue_reports(state: &State) -> Vec<QueueReport<'_>> {
    state
        .queue_order()
        .into_iter()
        .map(|k| {
            let s = &state.queues[k].stats;
            QueueReport {
                broker: &k.broker,
                queue: &k.queue,
                group: &k.group,
                backlog: s.backlog,
                unacked: s.unacked,
                consumers: s.consumers,
                published_per_second: s.publish_rate.and_then(finite),
                acknowledged_per_second: s.ack_rate.and_then(finite),
                trend: s.direction.word(),
                backlog_change_per_second: s.backlog_per_sec,
                growing_since: s.growing_since,
                seconds_to_drain: s.drain_secs.and_then(finite),
                consumer_pods: state.consumer_pods(k).to_vec(),
            }
        })
        .collect()
}

#[derive(Serialize)]
struct IncompleteReport {
    source: &'static str,
    /// `blind` (no pod list: nothing was judged) or `partial` (one kind of data missing or old).
    reach: &'static str,
    reason: String,
}

fn incomplete_reports(state: &State) -> Vec<IncompleteReport> {
    state
        .blind_spots()
        .into_iter()
        .map(|s| IncompleteReport { source: s.source.label(), reach: s.reach.key(), reason: s.text })
        .collect()
}

/// The lines that stand for "no hotspots" in the text forms: what was not seen, or the all-clear.
fn no_hotspot_lines(state: &State, all_clear: &str, prefix: &str) -> String {
    let spots = state.blind_spots();
    let mut out = String::new();
    for s in &spots {
        out.push_str(&format!("{prefix}{}: {}\n", s.reach.words(), s.text));
    }
    if state.found_nothing(&spots) {
        if spots.is_empty() {
            out.push_str(all_clear);
        } else {
            out.push_str(&format!("{prefix}nothing crosses a rule in what kpulse could see\n"));
        }
    }
    out
}

#[derive(Serialize)]
struct SourceReport {
    source: String,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct HotspotReport<'a> {
    rank: usize,
    score: u32,
    label: String,
    subject: &'a Subject,
    verdict: &'a str,
    evidence: Vec<&'a str>,
}

#[derive(Serialize)]
struct ContainerReport<'a> {
    namespace: &'a str,
    pod: &'a str,
    container: &'a str,
    init: bool,
    node: &'a str,
    health: &'a str,
    health_detail: Option<&'a str>,
    ready: bool,
    restarts: u32,
    restarts_last_hour: u32,
    last_termination_reason: Option<&'a str>,
    cpu_millicores: Option<f64>,
    cpu_request_millicores: Option<f64>,
    cpu_limit_millicores: Option<f64>,
    cpu_throttled_ratio: Option<f64>,
    memory_bytes: Option<f64>,
    memory_request_bytes: Option<f64>,
    memory_limit_bytes: Option<f64>,
    requests_per_second: Option<f64>,
    error_ratio: Option<f64>,
    p95_seconds: Option<f64>,
    consumed_queue_backlog: Option<f64>,
    consumed_queue_trend: Option<&'static str>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn container_report(r: &ContainerRow) -> ContainerReport<'_> {
    ContainerReport {
        namespace: &r.pod.namespace,
        pod: &r.pod.name,
        container: &r.container,
        init: r.init,
        node: &r.node,
        health: &r.health.word,
        health_detail: r.health.detail.as_deref(),
        ready: r.ready,
        restarts: r.restarts,
        restarts_last_hour: r.restarts_1h,
        last_termination_reason: r.last_reason.as_deref(),
        cpu_millicores: finite(r.usage.cpu_m),
        cpu_request_millicores: r.resources.cpu_request_m,
        cpu_limit_millicores: r.resources.cpu_limit_m,
        cpu_throttled_ratio: r.throttle,
        memory_bytes: finite(r.usage.mem),
        memory_request_bytes: r.resources.mem_request,
        memory_limit_bytes: r.resources.mem_limit,
        requests_per_second: r.traffic.map(|t| t.rps),
        error_ratio: r.traffic.filter(|t| t.requests > 0).map(|t| t.error_ratio),
        p95_seconds: r.traffic.and_then(|t| t.p95),
        consumed_queue_backlog: r.consumed.map(|q| q.backlog),
        consumed_queue_trend: r.consumed.map(|q| q.direction.word()),
    }
}

fn containers(state: &State) -> impl Iterator<Item = &ContainerRow> {
    state.container_table.shown()
}

fn hotspot_reports(hotspots: &[Hotspot]) -> Vec<HotspotReport<'_>> {
    hotspots
        .iter()
        .enumerate()
        .map(|(i, h)| HotspotReport {
            rank: i + 1,
            score: h.score,
            label: h.subject.label(),
            subject: &h.subject,
            verdict: h.verdict(),
            evidence: h.evidence(),
        })
        .collect()
}

/// The report in `format`. The state should be refreshed (rows, traffic rows, hotspots) first.
pub fn render(state: &State, format: ReportFormat, window_secs: i64, scenario: Option<&ScenarioRun>) -> String {
    match format {
        ReportFormat::Json => {
            let traffic = TrafficSection::of(state);
            let report = Report {
                schema: SCHEMA,
                generated_at: state.now,
                context: &state.context,
                window_secs,
                scenario,
                complete: state.blind_spots().is_empty(),
                incomplete: incomplete_reports(state),
                sources: state
                    .sources
                    .iter()
                    .map(|(id, s)| SourceReport {
                        source: id.label().to_string(),
                        state: s.state.word().to_string(),
                        reason: s.state.reason().map(str::to_string),
                    })
                    .collect(),
                hotspots: hotspot_reports(&state.hotspots),
                containers: containers(state).map(container_report).collect(),
                traffic_window: traffic.window,
                traffic: traffic.services_json(),
                routes: traffic.routes_json(),
                gateway_logs: traffic::gateway_logs(state),
                refused_by_gateway: state.traffic.refused,
                queues: queue_reports(state),
                notices: state.notices.iter().map(|(_, n)| n.as_str()).collect(),
                api_cost: (!state.api_cost.is_empty()).then(|| {
                    ApiCostReport::new(&state.api_cost.last_minute(state.now), state.api_cost.covered_secs(state.now))
                }),
            };
            let mut text = serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            text.push('\n');
            text
        }
        ReportFormat::Table => table(state, window_secs, scenario),
        ReportFormat::Markdown => markdown(state, window_secs, scenario),
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.filter(|v| v.is_finite()).map_or_else(|| "-".into(), f)
}

/// One container as table cells, shared by the text table and Markdown.
fn container_cells(r: &ContainerRow) -> [String; 11] {
    [
        r.pod.namespace.clone(),
        format!("{}/{}", r.pod.name, r.container),
        r.node.clone(),
        r.health.word.clone(),
        format!("{} ({} 1h)", r.restarts, r.restarts_1h),
        num_or_dash(r.usage.cpu_m, format_cpu_millis),
        pct_text(r.cpu_pct_limit()),
        opt(r.throttle, format_ratio),
        num_or_dash(r.usage.mem, format_bytes),
        pct_text(r.mem_pct_limit()),
        opt(r.traffic.and_then(|t| t.p95), format_latency),
    ]
}

const CONTAINER_HEADERS: [&str; 11] =
    ["NAMESPACE", "POD/CONTAINER", "NODE", "HEALTH", "RESTARTS", "CPU", "CPU/LIM", "THROT", "MEM", "MEM/LIM", "P95"];

const QUEUE_HEADERS: [&str; 7] = ["QUEUE", "GROUP", "BACKLOG", "IN/s", "ACK/s", "TREND", "CONSUMER PODS"];

fn aligned(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn scenario_lines(run: &ScenarioRun) -> Vec<String> {
    let mut lines = vec![format!("scenario {} played {}s of simulated time", run.name, run.played_secs)];
    if let Some(e) = &run.expectation {
        let when = e.ranked_first_after_secs.map_or("never".to_string(), |s| format!("{s}s after onset"));
        lines.push(format!(
            "expected culprit {}{}: ranked first {when} (allowed {}s) — {}",
            e.culprit,
            e.verdict.as_deref().map(|v| format!(" ({v})")).unwrap_or_default(),
            e.within_secs,
            if e.met { "met" } else { "NOT met" }
        ));
    }
    lines
}

/// What a snapshot is of, for its first line in every text form.
fn what_was_read(state: &State, window_secs: i64) -> String {
    match &state.logs_only {
        Some(_) => "gateway logs only, no cluster".to_string(),
        None => format!(
            "context {} · {} containers · window {}s",
            state.context,
            state.container_table.rows.len(),
            window_secs
        ),
    }
}

fn table(state: &State, window_secs: i64, scenario: Option<&ScenarioRun>) -> String {
    let mut out = format!("kpulse snapshot · {}\n", what_was_read(state, window_secs));
    for line in scenario.map(scenario_lines).unwrap_or_default() {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("\nHOTSPOTS\n");
    out.push_str(&no_hotspot_lines(state, "none: nothing looks like a bottleneck right now\n", ""));
    for (i, h) in state.hotspots.iter().enumerate() {
        out.push_str(&format!("{:>2}. {:>3}  {}  {}\n", i + 1, h.score, h.subject.label(), h.summary()));
    }
    tables(state, &mut out, &TABLE_FORM);
    out
}

/// How one text form writes a section: its heading (a name, and what it covers after it), its
/// tables, a notice, an item of a list.
struct TextForm {
    heading: fn(&str, Option<&str>) -> String,
    table: fn(&[&str], &[Vec<String>]) -> String,
    notice: &'static str,
    item: &'static str,
}

const TABLE_FORM: TextForm = TextForm { heading: table_heading, table: aligned, notice: "note: ", item: "" };
const MARKDOWN_FORM: TextForm =
    TextForm { heading: markdown_heading, table: markdown_table, notice: "\n> Note: ", item: "- " };

fn table_heading(name: &str, covers: Option<&str>) -> String {
    match covers {
        Some(covers) => format!("\n{} ({covers})\n", name.to_uppercase()),
        None => format!("\n{}\n", name.to_uppercase()),
    }
}

fn markdown_heading(name: &str, covers: Option<&str>) -> String {
    match covers {
        Some(covers) => format!("\n## {name} ({covers})\n\n"),
        None => format!("\n## {name}\n\n"),
    }
}

/// The containers, traffic and queue tables and the notices, in one of the text forms.
fn tables(state: &State, out: &mut String, form: &TextForm) {
    let table = form.table;
    if state.logs_only.is_none() || !state.container_table.rows.is_empty() {
        out.push_str(&(form.heading)("Containers", None));
        let rows: Vec<Vec<String>> = containers(state).map(|r| container_cells(r).to_vec()).collect();
        out.push_str(&table(&CONTAINER_HEADERS, &rows));
    }
    let traffic = TrafficSection::of(state);
    let window = traffic.window.title();
    if traffic.has_services() {
        out.push_str(&(form.heading)("Traffic", Some(&window)));
        out.push_str(&table(&SERVICE_HEADERS, &traffic.service_rows()));
    }
    if traffic.has_routes() {
        out.push_str(&(form.heading)("Routes", Some(&window)));
        let (rows, more) = traffic.route_rows();
        out.push_str(&table(&ROUTE_HEADERS, &rows));
        if more > 0 {
            out.push_str(&format!("… and {more} more routes (--format json lists them all)\n"));
        }
    }
    let logs = traffic::gateway_log_lines(&traffic.window, state);
    if !logs.is_empty() {
        out.push_str(&(form.heading)("Gateway logs", None));
        for line in logs {
            out.push_str(&format!("{}{line}\n", form.item));
        }
    }
    if !state.queues.is_empty() {
        out.push_str(&(form.heading)("Queues", None));
        let rows: Vec<Vec<String>> = queue_reports(state)
            .iter()
            .map(|q| {
                vec![
                    format!("{}/{}", q.broker, q.queue),
                    if q.group.is_empty() { "-".into() } else { q.group.to_string() },
                    format!("{:.0}", q.backlog),
                    opt(q.published_per_second, |v| format!("{v:.1}")),
                    opt(q.acknowledged_per_second, |v| format!("{v:.1}")),
                    format!("{} {:+.1}/s", q.trend, q.backlog_change_per_second),
                    if q.consumer_pods.is_empty() { "-".into() } else { q.consumer_pods.join(" ") },
                ]
            })
            .collect();
        out.push_str(&table(&QUEUE_HEADERS, &rows));
    }
    for (_, notice) in &state.notices {
        out.push_str(&format!("{}{notice}\n", form.notice));
    }
}

fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let escape = |s: &str| s.replace('|', "\\|");
    let mut out = format!("| {} |\n|{}\n", headers.join(" | "), "---|".repeat(headers.len()));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

fn markdown(state: &State, window_secs: i64, scenario: Option<&ScenarioRun>) -> String {
    let mut out = format!("# kpulse snapshot\n\n{}.\n", what_was_read(state, window_secs));
    for line in scenario.map(scenario_lines).unwrap_or_default() {
        out.push_str(&format!("\n{line}\n"));
    }
    out.push_str("\n## Hotspots\n\n");
    out.push_str(&no_hotspot_lines(state, "None: nothing looks like a bottleneck right now.\n", "- "));
    for (i, h) in state.hotspots.iter().enumerate() {
        out.push_str(&format!(
            "{}. **{}** `{}` — **{}**: {}\n",
            i + 1,
            h.score,
            h.subject.label(),
            h.verdict(),
            h.evidence().join("; ")
        ));
    }
    tables(state, &mut out, &MARKDOWN_FORM);
    out
}
