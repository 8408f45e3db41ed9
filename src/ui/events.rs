//! The Events view: broker queues and consumer groups, growing backlogs first, with rates, the
//! trend, time to drain and the pods that consume each.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use super::cells::{format_rps, series_sparkline};
use super::theme::Theme;
use crate::app::State;
use crate::model::broker::Direction;
use crate::model::time::format_age;
use crate::model::update::{SourceId, SourceState};

const HEADER: [&str; 14] = [
    "BROKER",
    "QUEUE/TOPIC",
    "GROUP",
    "BACKLOG",
    "UNACK",
    "IN/s",
    "ACK/s",
    "TREND",
    "DRAIN",
    "CONS",
    "REDLV/s",
    "DLQ/s",
    "CONSUMER PODS",
    "BACKLOG HISTORY",
];

pub fn draw_events(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    state.layout.table.set(area);
    // Kept on screen when the broker stops answering, marked stale with the reason.
    let stale = state.sources.get(&SourceId::Brokers).and_then(|s| match &s.state {
        SourceState::Connected | SourceState::Connecting => None,
        other => other.reason().map(str::to_string),
    });
    let mut title = vec![
        Span::styled(" Events ", theme.title),
        Span::styled("queues and consumer groups, growing first ", theme.dim),
    ];
    if let Some(reason) = &stale {
        title.push(Span::styled(format!("· stale: {reason} "), theme.warn));
    }
    let block = Block::default().borders(Borders::ALL).border_style(theme.border).title(Line::from(title));
    if state.queues.is_empty() {
        let msg = if state.config.events.brokers.is_empty() {
            "no broker configured: --broker rabbitmq=http://HOST:15692/metrics/per-object (or kafka=…, nats=…), or [events] brokers in the config"
        } else {
            "waiting for the first scrape of the brokers"
        };
        frame.render_widget(Paragraph::new(Span::styled(msg, theme.dim)).block(block), area);
        return;
    }
    let order = state.queue_order();
    let body_height = area.height.saturating_sub(3) as usize;
    let selected = state.queue_selected.min(order.len().saturating_sub(1));
    let offset = super::scroll_offset(state, selected, body_height);
    let rows = order.iter().enumerate().skip(offset).take(body_height).map(|(i, key)| {
        let track = &state.queues[*key];
        let s = &track.stats;
        let opt = |v: Option<f64>| v.map_or("-".to_string(), format_rps);
        // This broker's own last answer, not the source's: one dead broker leaves the others live.
        let silent_for = state.now - track.last_at;
        let row_stale = silent_for > 3 * state.config.metrics_interval.as_secs() as i64;
        let (trend, trend_style) = match s.direction {
            _ if row_stale => (format!("stale {}", format_age(silent_for)), theme.warn),
            Direction::Growing => {
                let since = s.growing_since.map(|t| format!(" {}", format_age(state.now - t))).unwrap_or_default();
                (format!("↑ {:+.0}/s{since}", s.backlog_per_sec), theme.bad)
            }
            Direction::Draining => (format!("↓ {:.0}/s", s.backlog_per_sec), theme.good),
            Direction::Steady => ("→ steady".to_string(), theme.dim),
        };
        let drain = match (s.direction, s.drain_secs) {
            (_, Some(d)) => format_age(d.round() as i64),
            (Direction::Growing, None) => "never".into(),
            _ => "-".into(),
        };
        let consumers = state.consumer_pods(key);
        let consumers_text = match consumers.len() {
            0 => "-".to_string(),
            1 => consumers[0].clone(),
            n => format!("{} +{}", consumers[0], n - 1),
        };
        let style = if i == selected {
            theme.selected
        } else if row_stale {
            theme.dim
        } else {
            theme.base
        };
        Row::new(vec![
            Cell::from(key.broker.clone()),
            Cell::from(key.queue.clone()),
            Cell::from(if key.group.is_empty() { "-".to_string() } else { key.group.clone() }),
            Cell::from(format!("{:.0}", s.backlog)),
            Cell::from(s.unacked.map_or("-".into(), |u| format!("{u:.0}"))),
            Cell::from(opt(s.publish_rate)),
            Cell::from(opt(s.ack_rate)),
            Cell::from(Span::styled(trend, trend_style)),
            Cell::from(drain),
            Cell::from(s.consumers.map_or("-".into(), |c| format!("{c:.0}"))),
            Cell::from(opt(s.redelivery_rate)),
            Cell::from(opt(s.dead_letter_rate)),
            Cell::from(consumers_text),
            Cell::from(series_sparkline(&track.backlog, 24, None)),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(11),
        Constraint::Min(14),
        Constraint::Length(12),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(16),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Min(18),
        Constraint::Length(24),
    ];
    let header = Row::new(HEADER.iter().map(|h| Cell::from(*h))).style(theme.header);
    frame.render_widget(Table::new(rows, widths).header(header).block(block), area);
}
