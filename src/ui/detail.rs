//! The detail pane of the selected container: what it is, what happened to it, and its usage
//! against its request and limit over the retained window.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};

use super::placeholder;
use super::theme::Theme;
use crate::app::State;
use crate::app::rows::{ContainerRow, ContainerTrack};
use crate::model::quantity::{format_bytes, format_cpu_millis};
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
    let [cpu, mem] = Layout::vertical([Constraint::Percentage(50), Constraint::Fill(1)]).areas(right);
    let r = &row.resources;
    draw_chart(
        state,
        frame,
        cpu,
        theme,
        " CPU ",
        track.map(|t| &t.cpu),
        r.cpu_request_m,
        r.cpu_limit_m,
        format_cpu_millis,
    );
    draw_chart(
        state,
        frame,
        mem,
        theme,
        " Memory (working set) ",
        track.map(|t| &t.mem),
        r.mem_request,
        r.mem_limit,
        format_bytes,
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
        Line::from(Span::styled("status history (oldest first):", theme.dim)),
    ];
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

#[allow(clippy::too_many_arguments)]
fn draw_chart(
    state: &State,
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    title: &str,
    series: Option<&Series>,
    request: Option<f64>,
    limit: Option<f64>,
    fmt: fn(f64) -> String,
) {
    let points: Vec<(f64, f64)> =
        series.map(|s| s.points().map(|(t, v)| ((t - state.now) as f64, v)).collect()).unwrap_or_default();
    if points.is_empty() {
        frame.render_widget(
            placeholder("no usage samples yet (metrics pending or unavailable)", theme).block(block(title, theme)),
            area,
        );
        return;
    }
    let window = state.config.retention.as_secs() as f64;
    let top =
        [series.and_then(|s| s.max()), request, limit].into_iter().flatten().fold(0.0f64, f64::max).max(1e-9) * 1.1;
    let req_line: Vec<(f64, f64)> = request.map(|r| vec![(-window, r), (0.0, r)]).unwrap_or_default();
    let lim_line: Vec<(f64, f64)> = limit.map(|l| vec![(-window, l), (0.0, l)]).unwrap_or_default();
    // Gaps: split the points into runs so a missing sample is not drawn as a line across it.
    let step = series.map_or(1, |s| s.step()) as f64;
    let mut runs: Vec<Vec<(f64, f64)>> = vec![];
    for p in &points {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|last| p.0 - last.0 <= step * 1.5) => run.push(*p),
            _ => runs.push(vec![*p]),
        }
    }
    let mut datasets: Vec<Dataset> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let d = Dataset::default()
                .marker(Marker::Braille)
                .graph_type(if run.len() > 1 { GraphType::Line } else { GraphType::Scatter })
                .style(Style::default().fg(theme.chart_primary))
                .data(run);
            if i == 0 { d.name("used") } else { d }
        })
        .collect();
    if !req_line.is_empty() {
        datasets.push(
            Dataset::default()
                .name("request")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(theme.chart_request))
                .data(&req_line),
        );
    }
    if !lim_line.is_empty() {
        datasets.push(
            Dataset::default()
                .name("limit")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(theme.chart_limit))
                .data(&lim_line),
        );
    }
    let current = points.last().map(|p| fmt(p.1)).unwrap_or_default();
    let chart_title = format!("{title}now {current} ");
    let chart = Chart::new(datasets)
        .block(block(&chart_title, theme))
        .x_axis(
            Axis::default()
                .style(theme.dim)
                .bounds([-window, 0.0])
                .labels([Span::raw(format!("-{}", format_age(window as i64))), Span::raw("now")]),
        )
        .y_axis(
            Axis::default().style(theme.dim).bounds([0.0, top]).labels([Span::raw("0"), Span::raw(fmt(top / 1.1))]),
        );
    frame.render_widget(chart, area);
}
