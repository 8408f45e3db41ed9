//! `draw(&State, &mut Frame)`: reads state, never does I/O. Only the rows on screen are formatted,
//! so a frame costs the same at 30 rows or 30,000.

pub mod cells;
pub mod detail;
pub mod events;
pub mod hotspots;
pub mod table;
pub mod theme;
pub mod traffic;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};

use crate::app::keymap::ACTIONS;
use crate::app::rows::{ContainerColumn, NodeColumn};
use crate::app::table::Column;
use crate::app::{InputMode, Overlay, PickerKind, State, View};
use crate::model::time::format_age;
use crate::model::update::Scope;
use crate::model::update::SourceState;
use cells::{CONTAINER_DROP_ORDER, NODE_DROP_ORDER, container_cell, container_width, node_cell, node_width};
use theme::Theme;

pub fn draw(state: &State, frame: &mut Frame) {
    let theme = Theme::named(&state.config.theme);
    let area = frame.area();
    let [top, main, status] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(1)]).areas(area);
    draw_title(state, frame, top, &theme);
    // The top hotspots head the first screen: the answer before the table.
    let main = if state.view == View::Containers {
        let [strip, rest] =
            Layout::vertical([Constraint::Length(hotspots::strip_height(state, main.height)), Constraint::Fill(1)])
                .areas(main);
        hotspots::draw_strip(state, frame, strip, &theme);
        rest
    } else {
        main
    };
    let table_area = if state.show_detail && !matches!(state.view, View::Nodes | View::Hotspots | View::Events) {
        let [t, d] = Layout::vertical([Constraint::Percentage(45), Constraint::Fill(1)]).areas(main);
        match state.view {
            View::Traffic => traffic::draw_traffic_detail(state, frame, d, &theme),
            _ => detail::draw_detail(state, frame, d, &theme),
        }
        t
    } else {
        main
    };
    match state.view {
        View::Containers => draw_containers(state, frame, table_area, &theme),
        View::Nodes => draw_nodes(state, frame, table_area, &theme),
        View::Traffic => traffic::draw_traffic(state, frame, table_area, &theme),
        View::Hotspots => hotspots::draw_hotspots(state, frame, table_area, &theme),
        View::Events => events::draw_events(state, frame, table_area, &theme),
    }
    draw_status(state, frame, status, &theme);
    match &state.overlay {
        Overlay::None => {}
        Overlay::Help => draw_help(state, frame, area, &theme),
        Overlay::Picker { kind, items, selected } => draw_picker(*kind, items, *selected, frame, area, &theme),
    }
}

fn draw_title(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let ns = match (&state.scope, &state.namespace_filter) {
        (_, Some(ns)) => ns.clone(),
        (Scope::All, None) => "all".into(),
        (Scope::Namespace(ns), None) => ns.clone(),
    };
    let tab = |label: &str, key: &str, active: bool| {
        let style = if active { theme.selected } else { theme.dim };
        Span::styled(format!(" {key} {label} "), style)
    };
    let (shown, total, sort) = match state.view {
        View::Containers => {
            let t = &state.container_table;
            (t.shown_len(), t.rows.len(), t.sort_label())
        }
        View::Nodes => (state.node_table.shown_len(), state.node_table.rows.len(), state.node_table.sort_label()),
        View::Traffic => {
            let t = &state.traffic_table;
            (t.shown_len(), t.rows.len(), t.sort_label())
        }
        View::Hotspots => (state.hotspots.len(), state.hotspots.len(), "SCORE ↓".to_string()),
        View::Events => (state.queue_order().len(), state.queues.len(), "BACKLOG GROWTH ↓".to_string()),
    };
    let whence = match state.logs_only {
        Some(_) => [Span::styled("logs only, no cluster ", theme.accent), Span::raw("")],
        None => [
            Span::styled(format!("ctx:{} ", state.context), theme.base),
            Span::styled(format!("ns:{ns} "), theme.accent),
        ],
    };
    let mut spans = vec![Span::styled(" kpulse ", theme.title)];
    spans.extend(whence);
    spans.extend([
        tab("Containers", "1", state.view == View::Containers),
        tab("Nodes", "2", state.view == View::Nodes),
        tab("Traffic", "3", state.view == View::Traffic),
        tab("Hotspots", "4", state.view == View::Hotspots),
        tab("Events", "5", state.view == View::Events),
        Span::styled(format!("  {shown}/{total} rows  sort: {sort}"), theme.dim),
    ]);
    if !state.filter.is_empty() {
        spans.push(Span::styled(format!("  filter: {}", state.filter), theme.warn));
    }
    spans.push(Span::styled("  ? help", theme.dim));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Keeps the selection visible, remembering the offset between frames like a TableState.
pub(crate) fn scroll_offset(state: &State, selected: usize, body_height: usize) -> usize {
    let mut offset = state.layout.offset.get();
    if selected < offset {
        offset = selected;
    } else if body_height > 0 && selected >= offset + body_height {
        offset = selected + 1 - body_height;
    }
    state.layout.offset.set(offset);
    offset
}

pub(crate) fn remember_header(state: &State, area: Rect, widths: &[Constraint], all_index: &[usize]) {
    let inner = Rect { x: area.x + 1, width: area.width.saturating_sub(2), ..area };
    let rects = Layout::horizontal(widths.to_vec()).spacing(1).split(inner);
    let mut header = [(0u16, 0u16); 24];
    for (rect, &i) in rects.iter().zip(all_index) {
        if i < header.len() {
            header[i] = (rect.x, rect.width);
        }
    }
    state.layout.header.set(header);
}

fn draw_containers(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    state.layout.table.set(area);
    let mut columns: Vec<ContainerColumn> = ContainerColumn::ALL.to_vec();
    // Only event-driven setups have consumers: elsewhere the column would be all dashes.
    if state.queues.is_empty() {
        columns.retain(|c| *c != ContainerColumn::Backlog);
    }
    // Drop the least useful columns until the rest fit in the width.
    table::fit_columns(&mut columns, &CONTAINER_DROP_ORDER, area, |c| match container_width(c) {
        Constraint::Length(n) => n,
        _ => 11,
    });
    let containers = &state.container_table;
    let (offset, height) = table::window(state, containers, area);
    // Text columns are as wide as their widest visible cell (capped); when the width runs out,
    // the pod name keeps the most and the workload gives way first.
    let visible_rows: Vec<&crate::app::rows::ContainerRow> = containers.window(offset, height).collect();
    let desired = |c: ContainerColumn| -> Option<usize> {
        let (f, cap): (fn(&crate::app::rows::ContainerRow) -> usize, usize) = match c {
            ContainerColumn::Namespace => (|r| r.pod.namespace.chars().count(), 20),
            ContainerColumn::Pod => (|r| r.pod.name.chars().count(), 48),
            ContainerColumn::Container => (|r| r.container.chars().count() + if r.init { 7 } else { 0 }, 24),
            ContainerColumn::Node => (|r| r.node.chars().count(), 20),
            ContainerColumn::Workload => (|r| r.workload.chars().count(), 32),
            _ => return None,
        };
        Some(visible_rows.iter().map(|r| f(r)).max().unwrap_or(0).max(c.title().len() + 1).min(cap))
    };
    let fixed: usize = columns
        .iter()
        .filter(|c| desired(**c).is_none())
        .map(|c| match container_width(*c) {
            Constraint::Length(n) => n as usize,
            _ => 0,
        })
        .sum();
    let mut budget = (area.width as usize).saturating_sub(2 + fixed + columns.len().saturating_sub(1));
    // Two passes: every text column first gets a readable minimum, then what is left goes to the
    // pod name first and the workload last.
    const PRIORITY: [ContainerColumn; 5] = [
        ContainerColumn::Pod,
        ContainerColumn::Namespace,
        ContainerColumn::Container,
        ContainerColumn::Node,
        ContainerColumn::Workload,
    ];
    let mut text_width: std::collections::HashMap<ContainerColumn, usize> = std::collections::HashMap::new();
    for c in PRIORITY {
        if let (true, Some(want)) = (columns.contains(&c), desired(c)) {
            let w = want.min(10).min(budget);
            budget -= w;
            text_width.insert(c, w);
        }
    }
    for c in PRIORITY {
        if let (Some(w), Some(want)) = (text_width.get_mut(&c), desired(c)) {
            let extra = want.saturating_sub(*w).min(budget);
            *w += extra;
            budget -= extra;
        }
    }
    // A sliver of a column helps nobody: drop it instead.
    columns.retain(|c| text_width.get(c).is_none_or(|w| *w >= 6));
    let widths: Vec<Constraint> = columns
        .iter()
        .map(|c| text_width.get(c).map_or_else(|| container_width(*c), |w| Constraint::Length(*w as u16)))
        .collect();
    let title = if state.pods.synced() || !containers.rows.is_empty() {
        " Containers "
    } else if state.connect_failed.is_some() {
        " Containers — not connected "
    } else {
        " Containers — waiting for the first pod list… "
    };
    let empty = (state.pods.synced() || !containers.rows.is_empty()).then_some(if state.filter.is_empty() {
        "no containers in this scope"
    } else {
        "no container matches the filter"
    });
    let look = table::Look {
        columns,
        widths,
        heading: &|c: ContainerColumn| c.title().to_string(),
        title: Line::from(Span::styled(title, theme.title)),
        empty,
    };
    let cell = |c, row| container_cell(c, row, state.tracks.get(&row.pod, &row.container), state.now, theme);
    table::draw(state, containers, look, cell, frame, area, theme);
}

fn draw_nodes(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let mut columns = NodeColumn::ALL.to_vec();
    table::fit_columns(&mut columns, &NODE_DROP_ORDER, area, |c| match (c, node_width(c)) {
        (_, Constraint::Length(n)) => n,
        // The name is what the row is about: never a sliver.
        (NodeColumn::Name, _) => 16,
        _ => 11,
    });
    let look = table::Look {
        widths: columns.iter().map(|c| node_width(*c)).collect(),
        columns,
        heading: &|c: NodeColumn| c.title().to_string(),
        title: Line::from(Span::styled(" Nodes ", theme.title)),
        empty: None,
    };
    table::draw(state, &state.node_table, look, |c, row| node_cell(c, row, state.now, theme), frame, area, theme);
}

fn draw_status(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    match &state.input {
        InputMode::Filter => {
            let line = Line::from(vec![
                Span::styled("/", theme.accent),
                Span::styled(state.filter.clone(), theme.base),
                Span::styled("█", theme.dim),
                Span::styled("   Enter keep · Esc clear · ~ prefix = fuzzy", theme.dim),
            ]);
            frame.render_widget(Paragraph::new(line), area);
            return;
        }
        InputMode::Command(text) => {
            let line = Line::from(vec![
                Span::styled(":", theme.accent),
                Span::styled(text.clone(), theme.base),
                Span::styled("█", theme.dim),
                Span::styled("   ns NAME · ns all · ctx NAME · nodes · pods · q", theme.dim),
            ]);
            frame.render_widget(Paragraph::new(line), area);
            return;
        }
        InputMode::Normal => {}
    }
    // The most useful explanation: the latest notice, else why a source is not connected.
    let reason =
        state.notices.last().filter(|(at, _)| state.now - at < 30).map(|(_, n)| n.clone()).or_else(|| {
            state.sources.iter().find_map(|(id, s)| s.state.reason().map(|r| format!("{}: {r}", id.label())))
        });
    let mut spans = Vec::new();
    let stale_after = 3 * state.config.metrics_interval.as_secs() as i64;
    for (id, s) in &state.sources {
        if !id.shown_when_healthy() && matches!(s.state, SourceState::Connected | SourceState::Connecting) {
            continue;
        }
        let age = s.last_data.map(|t| state.now - t);
        let age_text = age.map(|a| format!(" {}", format_age(a))).unwrap_or_default();
        spans.push(Span::styled(format!("{} ", id.label()), theme.dim));
        // Polled data that stopped arriving is kept on screen, but marked as stale.
        let stale = id.is_polled() && age.is_some_and(|a| a > stale_after);
        let (mark, word, style) = match (&s.state, stale) {
            (SourceState::Connected, true) => ("○", "stale", theme.warn),
            // With something to explain, healthy sources make room for it: a dot each.
            (SourceState::Connected, false) if reason.is_some() => {
                spans.push(Span::styled("●  ", theme.source(&s.state)));
                continue;
            }
            (SourceState::Connected, false) => ("●", "connected", theme.source(&s.state)),
            (SourceState::Connecting, _) => ("…", "connecting", theme.source(&s.state)),
            (other, _) => ("○", other.word(), theme.source(other)),
        };
        spans.push(Span::styled(format!("{mark}{word}{age_text}"), style));
        spans.push(Span::raw("  "));
    }
    if let Some(r) = reason {
        spans.push(Span::styled(format!("│ {r}"), theme.warn));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn draw_help(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    let mut lines: Vec<Line> = ACTIONS
        .iter()
        .map(|(action, _, _, what)| {
            Line::from(vec![
                Span::styled(format!("{:>18}  ", state.keymap.keys_for(*action)), theme.accent),
                Span::styled(*what, theme.base),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    for (k, what) in [
        ("mouse", "wheel scrolls, click selects a row, click a header sorts by it"),
        ("Esc", "close the detail pane or clear the filter"),
        ("health", "Running Restarted Starting NotReady CrashLoop OOMKilled ImagePull"),
        ("", "ConfigError Pending Unschedulable Completed Terminating Failed"),
        ("%CPU/L", "usage as % of the limit (/R: of the request); - = not set or no metrics"),
    ] {
        lines.push(Line::from(vec![Span::styled(format!("{k:>18}  "), theme.accent), Span::styled(what, theme.dim)]));
    }
    // What kpulse costs the API server: an operator on a large cluster asks before anything else.
    if !state.api_cost.is_empty() {
        let minute = state.api_cost.last_minute(state.now);
        let covered = state.api_cost.covered_secs(state.now);
        let span = if covered >= crate::model::api_cost::COST_WINDOW_SECS {
            "last minute".to_string()
        } else {
            format!("first {covered}s")
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:>18}  ", "API server"), theme.accent),
            Span::styled(format!("{span}: {}", crate::model::api_cost::describe(&minute)), theme.dim),
        ]));
    }
    // Lines wrap in a narrow terminal: the box grows by the rows they take, so none is cut off.
    let inner = 86.min(area.width).saturating_sub(2).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let rect = centered(area, 86, rows as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border)
                .title(Span::styled(" Keys — ? or Esc to close ", theme.title))
                .title_alignment(Alignment::Center),
        ),
        rect,
    );
}

fn draw_picker(kind: PickerKind, items: &[String], selected: usize, frame: &mut Frame, area: Rect, theme: &Theme) {
    let title = match kind {
        PickerKind::Namespace => " Namespace ",
        PickerKind::Context => " Context ",
    };
    let height = (items.len() as u16 + 2).min(area.height.saturating_sub(4)).max(3);
    let rect = centered(area, 40, height);
    frame.render_widget(Clear, rect);
    let list = List::new(items.iter().map(|i| ListItem::new(i.as_str())))
        .style(theme.base)
        .highlight_style(theme.selected)
        .block(
            Block::default().borders(Borders::ALL).border_style(theme.border).title(Span::styled(title, theme.title)),
        );
    let mut ls = ListState::default();
    ls.select(Some(selected));
    frame.render_stateful_widget(list, rect, &mut ls);
}

/// Shared by the detail pane and the tables: a dim placeholder for empty content.
pub fn placeholder(text: &str, theme: &Theme) -> Paragraph<'static> {
    Paragraph::new(Span::styled(text.to_string(), theme.dim.patch(Style::default())))
}
