//! The snapshot's traffic: which requests its figures cover (the live last minute, or a log read
//! from its start, whole or the `--window` asked for in the log's own time), per service and per
//! route, and what the logs held that is not in the figures, and why.

use serde::Serialize;

use crate::app::State;
use crate::app::traffic::{TrafficGroup, TrafficRow};
use crate::model::time::{UnixSecs, format_age, format_latency, format_utc};
use crate::model::traffic::{Family, Summary};
use crate::sources::gateway::GatewaySpec;

/// The requests the traffic figures cover.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrafficWindow {
    /// `last_minute` (live), `whole_log` (a log read from its start), `log_window` (the
    /// `--window` asked for, ending at the log's newest line).
    pub kind: &'static str,
    /// The oldest and newest request counted, Unix seconds; null for `last_minute`.
    pub from: Option<UnixSecs>,
    pub to: Option<UnixSecs>,
    /// What rates are per: the window's length, in whole seconds with both ends counted (a log
    /// stamps whole seconds: 3,000 lines from 12:00:00 to 12:04:59 are 300 s of 10 per second).
    pub seconds: i64,
}

impl TrafficWindow {
    pub fn of(state: &State) -> TrafficWindow {
        let read_from_start = state.config.gateway.iter().any(|g| g.history_stream().is_some());
        let asked = state.streams.values().filter_map(|s| s.since).min();
        match (read_from_start, state.traffic.log_span) {
            (true, Some((first, last))) => match asked {
                Some(since) => TrafficWindow {
                    kind: "log_window",
                    from: Some(since),
                    to: Some(last),
                    seconds: (last - since + 1).max(1),
                },
                None => {
                    TrafficWindow { kind: "whole_log", from: Some(first), to: Some(last), seconds: last - first + 1 }
                }
            },
            _ => TrafficWindow { kind: "last_minute", from: None, to: None, seconds: 60 },
        }
    }

    /// For a table's title: `last minute`, `whole log, 2026-12-04 01:00:00 UTC – 01:05:00 UTC (5m)`.
    pub fn title(&self) -> String {
        let span = |from: UnixSecs, to: UnixSecs| format!("{} – {}", format_utc(from), format_utc(to));
        match (self.kind, self.from, self.to) {
            ("whole_log", Some(from), Some(to)) => {
                format!("whole log, {} ({})", span(from, to), format_age(self.seconds))
            }
            ("log_window", Some(from), Some(to)) => {
                format!("last {} of the log, {}", format_age(self.seconds), span(from, to))
            }
            _ => "last minute".into(),
        }
    }

    /// A row's figures over this window.
    fn figures(&self, family: &Family, row: &TrafficRow) -> Summary {
        match self.kind {
            "last_minute" => row.now,
            _ => family.stats.get(&row.key).map_or(row.now, |stats| stats.summary_all(self.seconds)),
        }
    }
}

/// A row's figures as reported: every one over the snapshot's [`TrafficWindow`].
#[derive(Serialize)]
pub struct Figures {
    requests: u64,
    requests_per_second: f64,
    server_errors: u64,
    client_errors: u64,
    /// 5xx share; null without requests (a ratio of nothing is not 0 %).
    error_ratio: Option<f64>,
    p50_seconds: Option<f64>,
    p95_seconds: Option<f64>,
    p99_seconds: Option<f64>,
    gateway_overhead_p95_seconds: Option<f64>,
}

impl From<&Summary> for Figures {
    fn from(s: &Summary) -> Figures {
        Figures {
            requests: s.requests,
            requests_per_second: s.rps,
            server_errors: s.server_errors,
            client_errors: s.client_errors,
            error_ratio: (s.requests > 0).then_some(s.error_ratio),
            p50_seconds: s.p50,
            p95_seconds: s.p95,
            p99_seconds: s.p99,
            gateway_overhead_p95_seconds: s.overhead_p95,
        }
    }
}

#[derive(Serialize)]
pub struct ServiceReport<'a> {
    service: &'a str,
    backend: &'a str,
    /// The live last minute whatever the window (kept from the first schema).
    requests_last_minute: u64,
    #[serde(flatten)]
    figures: Figures,
}

#[derive(Serialize)]
pub struct RouteReport {
    route: String,
    service: String,
    #[serde(flatten)]
    figures: Figures,
}

/// One log stream: how many lines, and why any are not in the figures.
#[derive(Serialize)]
pub struct GatewayLogReport<'a> {
    stream: &'a str,
    format: Option<&'static str>,
    lines: u64,
    /// Lines in the log's format, counted (unless before the window).
    read: u64,
    /// Lines no format reads: the controller's own log, a torn write.
    not_in_format: u64,
    /// Read but older than `--window` in the log's time.
    before_window: u64,
    /// Older than every live window when read: in the totals only (a live snapshot).
    older_than_windows: u64,
    /// Read from its start to its end (`file+all:`, stdin).
    read_to_end: bool,
}

/// What the snapshot reports of the gateway, in one place for the three formats.
pub struct TrafficSection<'a> {
    pub window: TrafficWindow,
    services: Vec<(&'a TrafficRow, Summary)>,
    routes: Vec<(TrafficRow, Summary)>,
}

/// Routes in the text and Markdown tables; JSON has them all.
const ROUTES_SHOWN: usize = 20;

impl<'a> TrafficSection<'a> {
    pub fn of(state: &'a State) -> TrafficSection<'a> {
        let window = TrafficWindow::of(state);
        let services = state.traffic_table.shown().map(|r| (r, window.figures(&state.traffic.backends, r))).collect();
        let mut routes: Vec<(TrafficRow, Summary)> = state
            .traffic_rows_of(TrafficGroup::Routes)
            .into_iter()
            .map(|r| {
                let figures = window.figures(&state.traffic.routes, &r);
                (r, figures)
            })
            .filter(|(_, f)| f.requests > 0)
            .collect();
        routes.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then_with(|| a.0.name.cmp(&b.0.name)));
        TrafficSection { window, services, routes }
    }

    pub fn services_json(&self) -> Vec<ServiceReport<'a>> {
        self.services
            .iter()
            .map(|(r, f)| ServiceReport {
                service: &r.name,
                backend: &r.key,
                requests_last_minute: r.now.requests,
                figures: f.into(),
            })
            .collect()
    }

    pub fn routes_json(&self) -> Vec<RouteReport> {
        self.routes
            .iter()
            .map(|(r, f)| RouteReport { route: r.name.clone(), service: r.target.clone(), figures: f.into() })
            .collect()
    }

    pub fn has_services(&self) -> bool {
        !self.services.is_empty()
    }

    pub fn has_routes(&self) -> bool {
        !self.routes.is_empty()
    }

    pub fn service_rows(&self) -> Vec<Vec<String>> {
        self.services.iter().map(|(r, f)| figure_cells(&r.name, None, f)).collect()
    }

    /// The busiest routes, and how many more there are.
    pub fn route_rows(&self) -> (Vec<Vec<String>>, usize) {
        let rows = self.routes.iter().take(ROUTES_SHOWN).map(|(r, f)| figure_cells(&r.name, Some(&r.target), f));
        (rows.collect(), self.routes.len().saturating_sub(ROUTES_SHOWN))
    }
}

pub const SERVICE_HEADERS: [&str; 8] = ["SERVICE", "REQUESTS", "RPS", "5XX", "P50", "P95", "P99", "GW OVERHEAD P95"];
pub const ROUTE_HEADERS: [&str; 9] =
    ["ROUTE", "SERVICE", "REQUESTS", "RPS", "5XX", "P50", "P95", "P99", "GW OVERHEAD P95"];

fn figure_cells(name: &str, target: Option<&str>, s: &Summary) -> Vec<String> {
    let latency = |v: Option<f64>| v.filter(|v| v.is_finite()).map_or_else(|| "-".into(), format_latency);
    let errors =
        if s.requests == 0 { "-".to_string() } else { format!("{} ({:.1}%)", s.server_errors, s.error_ratio * 100.0) };
    let mut cells = vec![name.to_string()];
    cells.extend(target.map(str::to_string));
    cells.extend([
        s.requests.to_string(),
        format!("{:.1}", s.rps),
        errors,
        latency(s.p50),
        latency(s.p95),
        latency(s.p99),
        latency(s.overhead_p95),
    ]);
    cells
}

pub fn gateway_logs(state: &State) -> Vec<GatewayLogReport<'_>> {
    let from_start: Vec<String> = state.config.gateway.iter().filter_map(GatewaySpec::history_stream).collect();
    state
        .streams
        .iter()
        .map(|(name, s)| GatewayLogReport {
            stream: name,
            format: s.format.as_ref().map(|f| f.name()),
            lines: s.matched + s.skipped,
            read: s.matched,
            not_in_format: s.skipped,
            before_window: s.before_window,
            older_than_windows: s.late,
            read_to_end: s.caught_up && from_start.contains(name),
        })
        .collect()
}

/// One line per stream saying what its figures over `window` leave out, and why.
pub fn gateway_log_lines(window: &TrafficWindow, state: &State) -> Vec<String> {
    let mut lines: Vec<String> = gateway_logs(state)
        .iter()
        .map(|g| {
            let mut parts = vec![format!("{} lines, {} read", g.lines, g.read)];
            if g.not_in_format > 0 {
                parts.push(format!("{} not in the {} format (skipped)", g.not_in_format, g.format.unwrap_or("log")));
            }
            if g.before_window > 0 {
                parts.push(format!("{} before the window ({})", g.before_window, window.title()));
            }
            if g.older_than_windows > 0 && window.kind == "last_minute" {
                parts.push(format!(
                    "{} older than 5 min when read (totals only; read the file with file+all: for them)",
                    g.older_than_windows
                ));
            }
            format!("{}  {}  {}", g.stream, g.format.unwrap_or("-"), parts.join("; "))
        })
        .collect();
    if state.traffic.refused > 0 {
        lines.push(format!(
            "{} requests answered by the gateway itself (a deny rule, an unreadable request): in no service",
            state.traffic.refused
        ));
    }
    lines
}
