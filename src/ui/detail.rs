//! The detail pane of the selected container: what it is, what happened to it, and its usage
//! against its request and limit over the retained window.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};

use super::cells::format_rate;
use super::placeholder;
use super::theme::Theme;
use crate::analysis::hotspots::OOM_KILL_WINDOW_SECS;
use crate::app::State;
use crate::app::rows::{ContainerRow, ContainerTrack};
use crate::model::quantity::{format_bytes, format_cpu_millis, format_ratio};
use crate::model::series::Series;
use crate::model::time::format_age;

pub fn draw_detail(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let Some(row) = state.selected_row() else {
        frame.render_widget(placeholder("no container selected", theme), area);
        return;
    };
    let track = state.tracks.get(&row.pod, &row.container);
    let [left, right] = Layout::horizontal([Constraint::Percentage(45), Constraint::Fill(1)]).areas(area);
    let [info, events] = Layout::vertical([Constraint::Percentage(55), Constraint::Fill(1)]).areas(left);
    draw_info(state, row, track, frame, info, theme);
    draw_events(state, row, frame, events, theme);
    let [cpu, mem, bottom] =
        Layout::vertical([Constraint::Percentage(38), Constraint::Percentage(31), Constraint::Fill(1)]).areas(right);
    let [throttle, net] = Layout::horizontal([Constraint::Percentage(50), Constraint::Fill(1)]).areas(bottom);
    let r = &row.resources;
    let lines = |request: Option<f64>, limit: Option<f64>| {
        let mut v = Vec::new();
        if let Some(x) = request {
            v.push(("request", x, theme.chart_request));
        }
        if let Some(x) = limit {
            v.push(("limit", x, theme.chart_limit));
        }
        v
    };
    let empty = Series::new(1, 2);
    let series = |pick: fn(&ContainerTrack) -> &Series| track.map_or(&empty, pick);
    draw_chart(
        state,
        frame,
        cpu,
        theme,
        ChartSpec {
            title: " CPU ",
            series: vec![("used", series(|t| &t.cpu), theme.chart_primary)],
            lines: lines(r.cpu_request_m, r.cpu_limit_m),
            fmt: format_cpu_millis,
        },
    );
    draw_chart(
        state,
        frame,
        mem,
        theme,
        ChartSpec {
            title: " Memory (working set) ",
            series: vec![("used", series(|t| &t.mem), theme.chart_primary)],
            lines: lines(r.mem_request, r.mem_limit),
            fmt: format_bytes,
        },
    );
    draw_chart(
        state,
        frame,
        throttle,
        theme,
        ChartSpec {
            title: " CPU throttled ",
            series: vec![("periods", series(|t| &t.throttle), theme.chart_limit)],
            // The kubernetes-mixin's CPUThrottlingHigh threshold.
            lines: vec![("25% alert", 0.25, theme.chart_request)],
            fmt: format_ratio,
        },
    );
    let (rx, tx) = state.tracks.pod_net(&row.pod).map_or((&empty, &empty), |(rx, tx)| (rx, tx));
    draw_chart(
        state,
        frame,
        net,
        theme,
        ChartSpec {
            title: " Pod network /s ",
            series: vec![("rx", rx, theme.chart_primary), ("tx", tx, theme.chart_request)],
            lines: vec![],
            fmt: format_rate,
        },
    );
}

fn block<'a>(title: &'a str, theme: &Theme) -> Block<'a> {
    Block::default().borders(Borders::ALL).border_style(theme.border).title(Span::styled(title, theme.title))
}

fn draw_info(
    state: &State,
    row: &ContainerRow,
    track: Option<&ContainerTrack>,
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
) {
    let label = |l: &str| Span::styled(format!("{l:>10} "), theme.dim);
    let opt_cpu = |v: Option<f64>| v.map_or_else(|| "unset".to_string(), format_cpu_millis);
    let opt_mem = |v: Option<f64>| v.map_or_else(|| "unset".to_string(), format_bytes);
    let r = &row.resources;
    let image = state
        .pods
        .get(&row.pod)
        .and_then(|p| p.containers.iter().find(|c| c.name == row.container))
        .map(|c| c.image.clone())
        .unwrap_or_default();
    let mut lines = vec![
        Line::from(vec![label("pod"), Span::styled(row.pod.to_string(), theme.base)]),
        Line::from(vec![
            label("container"),
            Span::styled(row.container.clone(), theme.base),
            Span::styled(format!("  {image}"), theme.dim),
        ]),
        Line::from(vec![
            label("node"),
            Span::styled(if row.node.is_empty() { "(not scheduled)".into() } else { row.node.clone() }, theme.base),
            Span::styled(format!("   {}", row.workload), theme.dim),
        ]),
        Line::from(vec![
            label("health"),
            Span::styled(row.health.word.clone(), theme.severity(row.health.severity)),
            Span::styled(row.health.detail.as_ref().map(|d| format!("  {d}")).unwrap_or_default(), theme.base),
        ]),
        Line::from(vec![
            label("restarts"),
            Span::styled(format!("{} total, {} in the last hour", row.restarts, row.restarts_1h), theme.base),
            Span::styled(row.last_reason.as_ref().map(|r| format!("  last: {r}")).unwrap_or_default(), theme.warn),
        ]),
        Line::from(vec![
            label("cpu"),
            Span::styled(format!("request {}  limit {}", opt_cpu(r.cpu_request_m), opt_cpu(r.cpu_limit_m)), theme.base),
        ]),
        Line::from(vec![
            label("memory"),
            Span::styled(format!("request {}  limit {}", opt_mem(r.mem_request), opt_mem(r.mem_limit)), theme.base),
        ]),
    ];
    // OOM kills the kernel reported (cAdvisor), also of processes that left the container running.
    let oom_kills = track.map_or(0, |t| t.oom_kills_since(state.now - OOM_KILL_WINDOW_SECS));
    if oom_kills > 0 {
        lines.push(Line::from(vec![
            label("oom kills"),
            Span::styled(format!("{oom_kills} in the last {} min", OOM_KILL_WINDOW_SECS / 60), theme.bad),
        ]));
    }
    // The queues this pod consumes, with their backlog: the lag the gateway never sees.
    let pod = state.pods.get(&row.pod);
    for (key, track) in state.queues.iter().filter(|(k, _)| pod.is_some_and(|p| state.consumes(k, p))) {
        let s = &track.stats;
        lines.push(Line::from(vec![
            label("consumes"),
            Span::styled(key.label(), theme.base),
            Span::styled(
                format!("  backlog {:.0} {} {:+.0}/s", s.backlog, s.direction.word(), s.backlog_per_sec),
                if s.growing_since.is_some() { theme.bad } else { theme.dim },
            ),
        ]));
    }
    lines.push(Line::from(Span::styled("status history (oldest first):", theme.dim)));
    if let Some(t) = track {
        let skip = t.history.len().saturating_sub(area.height.saturating_sub(10) as usize);
        for (at, word, detail) in t.history.iter().skip(skip) {
            lines.push(Line::from(vec![
                Span::styled(format!("{:>10} ", format!("{} ago", format_age(state.now - at))), theme.dim),
                Span::styled(word.clone(), theme.base),
                Span::styled(detail.as_ref().map(|d| format!("  {d}")).unwrap_or_default(), theme.dim),
            ]));
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }).block(block(" Container ", theme)), area);
}

fn draw_events(state: &State, row: &ContainerRow, frame: &mut Frame, area: Rect, theme: &Theme) {
    let events = state.pod_events(&row.pod);
    let lines: Vec<Line> = if events.is_empty() {
        vec![Line::from(Span::styled("no Warning events for this pod", theme.dim))]
    } else {
        events
            .iter()
            .take(area.height as usize)
            .map(|e| {
                Line::from(vec![
                    Span::styled(
                        format!("{:>4} ", e.last_seen.map(|t| format_age(state.now - t)).unwrap_or_default()),
                        theme.dim,
                    ),
                    Span::styled(format!("{} ", e.reason), theme.warn),
                    Span::styled(if e.count > 1 { format!("(x{}) ", e.count) } else { String::new() }, theme.dim),
                    Span::styled(e.message.clone(), theme.base),
                ])
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }).block(block(" Warning events ", theme)), area);
}

/// A chart over the retained window: one or more series (gaps stay gaps) and horizontal
/// reference lines (request, limit, a threshold).
struct ChartSpec<'a> {
    title: &'a str,
    series: Vec<(&'static str, &'a Series, Color)>,
    lines: Vec<(&'static str, f64, Color)>,
    fmt: fn(f64) -> String,
}

/// A series cut into runs of consecutive samples.
type Runs = Vec<Vec<(f64, f64)>>;

fn draw_chart(state: &State, frame: &mut Frame, area: Rect, theme: &Theme, spec: ChartSpec) {
    let runs_per_series: Vec<(&'static str, Color, Runs)> = spec
        .series
        .iter()
        .map(|(name, series, color)| {
            // Split into runs so a missing sample is not drawn as a line across the gap.
            let step = series.step() as f64;
            let mut runs: Vec<Vec<(f64, f64)>> = vec![];
            for (t, v) in series.points() {
                let p = ((t - state.now) as f64, v);
                match runs.last_mut() {
                    Some(run) if run.last().is_some_and(|last| p.0 - last.0 <= step * 1.5) => run.push(p),
                    _ => runs.push(vec![p]),
                }
            }
            (*name, *color, runs)
        })
        .collect();
    if runs_per_series.iter().all(|(_, _, runs)| runs.is_empty()) {
        frame.render_widget(
            placeholder("no samples yet (metrics pending or unavailable)", theme).block(block(spec.title, theme)),
            area,
        );
        return;
    }
    let window = state.config.retention.as_secs() as f64;
    let top = spec
        .series
        .iter()
        .filter_map(|(_, s, _)| s.max())
        .chain(spec.lines.iter().map(|l| l.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let line_points: Vec<Vec<(f64, f64)>> = spec.lines.iter().map(|(_, v, _)| vec![(-window, *v), (0.0, *v)]).collect();
    let mut datasets: Vec<Dataset> = Vec::new();
    for (name, color, runs) in &runs_per_series {
        for (i, run) in runs.iter().enumerate() {
            let d = Dataset::default()
                .marker(Marker::Braille)
                .graph_type(if run.len() > 1 { GraphType::Line } else { GraphType::Scatter })
                .style(Style::default().fg(*color))
                .data(run);
            datasets.push(if i == 0 { d.name(*name) } else { d });
        }
    }
    for ((name, _, color), points) in spec.lines.iter().zip(&line_points) {
        datasets.push(
            Dataset::default()
                .name(*name)
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(*color))
                .data(points),
        );
    }
    let now_text: Vec<String> = runs_per_series
        .iter()
        .filter_map(|(name, _, runs)| runs.last()?.last().map(|p| format!("{name} {}", (spec.fmt)(p.1))))
        .collect();
    let chart_title = format!("{}now {} ", spec.title, now_text.join(" · "));
    let chart = Chart::new(datasets)
        .block(block(&chart_title, theme))
        .x_axis(
            Axis::default()
                .style(theme.dim)
                .bounds([-window, 0.0])
                .labels([Span::raw(format!("-{}", format_age(window as i64))), Span::raw("now")]),
        )
        .y_axis(
            Axis::default()
                .style(theme.dim)
                .bounds([0.0, top])
                .labels([Span::raw("0"), Span::raw((spec.fmt)(top / 1.1))]),
        );
    frame.render_widget(chart, area);
}
