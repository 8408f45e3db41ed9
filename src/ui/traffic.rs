//! The Traffic view: what the gateway logs say per service, pod or route, and a detail pane
//! with both windows side by side.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::cells::{error_cell, format_rate, format_rps, series_sparkline};
use super::theme::Theme;
use super::{placeholder, table};
use crate::app::State;
use crate::app::table::Column;
use crate::app::traffic::{TrafficColumn, TrafficGroup, TrafficRow};
use crate::model::quantity::format_ratio;
use crate::model::time::format_latency;
use crate::model::traffic::{Family, Summary, WINDOWS};

fn width(col: TrafficColumn) -> Constraint {
    match col {
        TrafficColumn::Name => Constraint::Fill(3),
        TrafficColumn::Target => Constraint::Fill(2),
        TrafficColumn::Trend => Constraint::Length(12),
        TrafficColumn::Upstream | TrafficColumn::Requests5m | TrafficColumn::Overhead => Constraint::Length(7),
        _ => Constraint::Length(6),
    }
}

fn latency(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), format_latency)
}

fn family(state: &State) -> &Family {
    match state.traffic_group {
        TrafficGroup::Services => &state.traffic.backends,
        TrafficGroup::Pods => &state.traffic.upstreams,
        TrafficGroup::Routes => &state.traffic.routes,
    }
}

fn cell(col: TrafficColumn, row: &TrafficRow, state: &State, theme: &Theme) -> Line<'static> {
    let s = &row.now;
    let plain = |t: String| Line::from(Span::styled(t, theme.base));
    match col {
        TrafficColumn::Name => plain(row.name.clone()),
        TrafficColumn::Target => Line::from(Span::styled(row.target.clone(), theme.dim)),
        TrafficColumn::Rps => plain(format_rps(s.rps)),
        TrafficColumn::ErrPct => Line::from(error_cell(s.error_ratio, s.requests, theme)),
        TrafficColumn::P50 => plain(latency(s.p50)),
        TrafficColumn::P95 => plain(latency(s.p95)),
        TrafficColumn::P99 => plain(latency(s.p99)),
        TrafficColumn::Overhead => {
            // The gateway adding more than 50 ms at p95 is itself a bottleneck.
            let style = if s.overhead_p95.is_some_and(|o| o >= 0.05) { theme.bad } else { theme.base };
            Line::from(Span::styled(latency(s.overhead_p95), style))
        }
        TrafficColumn::Upstream => plain(s.upstream_share.map_or_else(|| "-".into(), format_ratio)),
        TrafficColumn::Auth => plain(s.auth_denied.to_string()),
        TrafficColumn::Retries => {
            let style = if s.retries > 0 { theme.warn } else { theme.base };
            Line::from(Span::styled(s.retries.to_string(), style))
        }
        TrafficColumn::Bytes => plain(format_rate(s.bytes_per_sec)),
        TrafficColumn::Requests5m => plain(row.five_min.requests.to_string()),
        TrafficColumn::Trend => Line::from(Span::styled(
            family(state).stats.get(&row.key).map(|s| series_sparkline(s.rps(), 12, None)).unwrap_or_default(),
            theme.accent,
        )),
    }
}

/// `2 streams · 12,345 lines · 3 skipped · ingress-nginx · last 1m`
fn streams_summary(state: &State) -> String {
    let matched: u64 = state.streams.values().map(|s| s.matched).sum();
    let skipped: u64 = state.streams.values().map(|s| s.skipped).sum();
    let mut formats: Vec<&str> = state.streams.values().filter_map(|s| s.format.as_ref().map(|f| f.name())).collect();
    formats.sort_unstable();
    formats.dedup();
    let mut text = format!(
        "{} stream{} · {matched} lines · {skipped} skipped",
        state.streams.len(),
        if state.streams.len() == 1 { "" } else { "s" }
    );
    if !formats.is_empty() {
        text.push_str(&format!(" · {}", formats.join(", ")));
    }
    // The window of RPS, 5XX%, the latencies and the hotspots' evidence: one figure, one window.
    text.push_str(&format!(" · last {}m", crate::model::traffic::WINDOWS[0] / 60));
    if state.traffic.late > 0 {
        text.push_str(&format!(" · {} older than 5m", state.traffic.late));
    }
    // Windows on the log's clock end at its newest line, not now.
    if let Some(at) = state.traffic.log_now() {
        text.push_str(&format!(" · log time {}", crate::model::time::format_utc(at)));
    }
    text
}

pub fn draw_traffic(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let heading = |c: TrafficColumn| match (c, state.traffic_group) {
        (TrafficColumn::Name, g) => g.label().to_uppercase(),
        (TrafficColumn::Target, TrafficGroup::Services) => "AS LOGGED".into(),
        (TrafficColumn::Target, TrafficGroup::Pods) => "UPSTREAM IP".into(),
        (TrafficColumn::Target, TrafficGroup::Routes) => "SERVICE".into(),
        _ => c.title().into(),
    };
    let groups: Vec<Span> = [TrafficGroup::Services, TrafficGroup::Pods, TrafficGroup::Routes]
        .iter()
        .map(|g| {
            let style = if *g == state.traffic_group { theme.selected } else { theme.dim };
            Span::styled(format!(" {} ", g.label()), style)
        })
        .collect();
    let mut title = vec![Span::styled(" Traffic ", theme.title)];
    title.extend(groups);
    title.push(Span::styled(format!(" (t)  {} ", streams_summary(state)), theme.dim));
    let rows = &state.traffic_table.rows;
    let empty = if state.streams.is_empty() {
        "no gateway log: start with --gateway pods:NAMESPACE/SELECTOR, --gateway file:PATH or --gateway -"
    } else if rows.is_empty() && state.traffic.gateway.total().requests > 0 {
        match state.traffic_group {
            TrafficGroup::Services => "no backend in this log format: see the routes (t)",
            TrafficGroup::Pods => "no upstream address in this log format: see the routes (t)",
            TrafficGroup::Routes => "no requests read yet",
        }
    } else if rows.is_empty() {
        "no requests read yet"
    } else {
        "no row matches the filter"
    };
    let look = table::Look {
        columns: TrafficColumn::ALL.to_vec(),
        widths: TrafficColumn::ALL.iter().map(|c| width(*c)).collect(),
        heading: &heading,
        title: Line::from(title),
        empty: Some(empty),
    };
    table::draw(state, &state.traffic_table, look, |c, row| cell(c, row, state, theme), frame, area, theme);
}

fn summary_lines(label: &str, s: &Summary, theme: &Theme) -> Vec<Line<'static>> {
    let kv =
        |k: &str, v: String| vec![Span::styled(format!("{k} "), theme.dim), Span::styled(format!("{v}  "), theme.base)];
    let mut first = vec![Span::styled(format!("{label:<6}"), theme.accent)];
    first.extend(kv("requests", s.requests.to_string()));
    first.extend(kv("rps", format_rps(s.rps)));
    first.push(Span::styled("5xx ", theme.dim));
    first.push(error_cell(s.error_ratio, s.requests, theme));
    first.extend(kv(" 4xx", s.client_errors.to_string()));
    first.extend(kv("401/403", s.auth_denied.to_string()));
    let mut second = vec![Span::raw("      ")];
    second.extend(kv("p50", latency(s.p50)));
    second.extend(kv("p95", latency(s.p95)));
    second.extend(kv("p99", latency(s.p99)));
    second.extend(kv("gateway p95", latency(s.overhead_p95)));
    second.extend(kv("upstream share", s.upstream_share.map_or_else(|| "-".into(), format_ratio)));
    second.extend(kv("retries", s.retries.to_string()));
    second.extend(kv("upstream failed", s.upstream_failed.to_string()));
    second.extend(kv("out", format!("{}/s", format_rate(s.bytes_per_sec))));
    if let Some(c) = s.cache_hit_ratio {
        second.extend(kv("cache hits", format_ratio(c)));
    }
    vec![Line::from(first), Line::from(second)]
}

pub fn draw_traffic_detail(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let block = Block::default().borders(Borders::ALL).border_style(theme.border);
    let Some(row) = state.selected_traffic() else {
        frame.render_widget(placeholder(" nothing selected", theme).block(block), area);
        return;
    };
    let block = block.title(Span::styled(format!(" {} → {} ", row.name, row.target), theme.title));
    let mut lines = summary_lines(&format!("{}m", WINDOWS[0] / 60), &row.now, theme);
    lines.extend(summary_lines(&format!("{}m", WINDOWS[1] / 60), &row.five_min, theme));
    if let Some(stats) = family(state).stats.get(&row.key) {
        let width = area.width.saturating_sub(12) as usize;
        lines.push(Line::from(""));
        lines.push(Line::from(vec![
            Span::styled("rps   ", theme.accent),
            Span::styled(series_sparkline(stats.rps(), width, None), theme.accent),
        ]));
        let t = stats.total();
        lines.push(Line::from(Span::styled(
            format!(
                "since start: {} requests, {} 5xx, {} 4xx, {} retries, {} upstream failures",
                t.requests,
                t.errors(),
                t.by_class[3],
                t.retries,
                t.upstream_failed
            ),
            theme.dim,
        )));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}
