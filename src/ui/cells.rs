//! Cell text and style per column: one place that knows how each column reads.

use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};

use super::theme::Theme;
use crate::app::rows::{ContainerColumn, ContainerRow, ContainerTrack, NodeColumn, NodeRow, percent};
use crate::model::broker::Direction;
use crate::model::quantity::{format_bytes, format_cpu_millis};
use crate::model::series::Series;
use crate::model::time::{UnixSecs, format_age, format_latency};

pub fn container_width(col: ContainerColumn) -> Constraint {
    use ContainerColumn::*;
    match col {
        Namespace => Constraint::Length(12),
        Pod => Constraint::Fill(3),
        Container => Constraint::Fill(1),
        Node => Constraint::Length(12),
        Workload => Constraint::Fill(1),
        Health => Constraint::Length(13),
        Ready => Constraint::Length(3),
        Restarts => Constraint::Length(4),
        Restarts1h => Constraint::Length(6),
        LastReason => Constraint::Length(10),
        Age => Constraint::Length(5),
        Cpu | Mem => Constraint::Length(7),
        CpuPctRequest | CpuPctLimit | MemPctRequest | MemPctLimit | Throttle => Constraint::Length(6),
        Net => Constraint::Length(11),
        Rps => Constraint::Length(6),
        ErrPct => Constraint::Length(5),
        P95 => Constraint::Length(6),
        Backlog => Constraint::Length(7),
        CpuTrend => Constraint::Length(10),
    }
}

/// Columns dropped first when the terminal is narrow, least useful first.
pub const CONTAINER_DROP_ORDER: [ContainerColumn; 14] = [
    ContainerColumn::Workload,
    ContainerColumn::Net,
    ContainerColumn::ErrPct,
    ContainerColumn::Age,
    ContainerColumn::MemPctRequest,
    ContainerColumn::CpuPctRequest,
    ContainerColumn::LastReason,
    ContainerColumn::Node,
    ContainerColumn::CpuTrend,
    ContainerColumn::Backlog,
    ContainerColumn::Restarts1h,
    ContainerColumn::Rps,
    ContainerColumn::P95,
    ContainerColumn::Namespace,
];

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A one-line sparkline of a container's CPU, scaled to its limit (or the series maximum).
pub fn sparkline(track: Option<&ContainerTrack>, width: usize, scale: Option<f64>) -> String {
    track.map(|t| series_sparkline(&t.cpu, width, scale)).unwrap_or_default()
}

/// The newest `width` samples of a series as a one-line sparkline scaled to `scale` (or the
/// series maximum); gaps stay blank.
pub fn series_sparkline(series: &Series, width: usize, scale: Option<f64>) -> String {
    let top = scale.filter(|s| *s > 0.0).or(series.max()).unwrap_or(1.0).max(1e-9);
    series
        .tail(width)
        .map(|v| match v {
            None => ' ',
            Some(v) => SPARK[((v / top) * (SPARK.len() as f64 - 1.0)).round().clamp(0.0, 7.0) as usize],
        })
        .collect()
}

/// Bytes per second, compact: `850`, `12k`, `3.4M`.
pub fn format_rate(bytes_per_sec: f64) -> String {
    match bytes_per_sec {
        v if v >= 1e9 => format!("{:.1}G", v / 1e9),
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.0}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

/// Requests per second: `0.3`, `12`, `4.1k`.
pub fn format_rps(rps: f64) -> String {
    match rps {
        r if r >= 1e3 => format!("{:.1}k", r / 1e3),
        r if r >= 10.0 => format!("{r:.0}"),
        r => format!("{r:.1}"),
    }
}

/// A count of messages: `366`, `12.3k`, `4.1M`.
pub fn format_count(n: f64) -> String {
    match n {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e4 => format!("{:.0}k", v / 1e3),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

/// A 5xx ratio with the style it deserves: 1 % is worth a look, 5 % is bad.
pub fn error_cell(ratio: f64, requests: u64, theme: &Theme) -> Span<'static> {
    let style = match ratio {
        _ if requests == 0 => theme.dim,
        r if r >= 0.05 => theme.bad,
        r if r >= 0.01 => theme.warn,
        _ => theme.base,
    };
    let text = if requests == 0 { "-".to_string() } else { format!("{:.1}%", ratio * 100.0) };
    Span::styled(text, style)
}

/// A percentage (0–100, not a ratio), or `-`.
pub fn pct_text(p: Option<f64>) -> String {
    p.map_or_else(|| "-".to_string(), |p| format!("{p:.0}%"))
}

/// A finite number formatted, or `-`.
pub fn num_or_dash(v: f64, f: fn(f64) -> String) -> String {
    if v.is_finite() { f(v) } else { "-".into() }
}

pub fn container_cell<'a>(
    col: ContainerColumn,
    row: &'a ContainerRow,
    track: Option<&ContainerTrack>,
    now: UnixSecs,
    theme: &Theme,
) -> Line<'a> {
    use ContainerColumn::*;
    let plain = |s: String| Line::from(Span::styled(s, theme.base));
    match col {
        Namespace => plain(row.pod.namespace.clone()),
        Pod => plain(row.pod.name.clone()),
        Container => plain(if row.init { format!("{} (init)", row.container) } else { row.container.clone() }),
        Node => plain(row.node.clone()),
        Workload => plain(row.workload.clone()),
        Health => Line::from(Span::styled(row.health.word.clone(), theme.severity(row.health.severity))),
        Ready => Line::from(if row.ready { Span::styled("✓", theme.good) } else { Span::styled("✗", theme.warn) }),
        Restarts => plain(row.restarts.to_string()),
        Restarts1h => {
            let style = if row.restarts_1h > 0 { theme.warn } else { theme.dim };
            Line::from(Span::styled(row.restarts_1h.to_string(), style))
        }
        LastReason => {
            let reason = row.last_reason.clone().unwrap_or_default();
            let style = if reason == "OOMKilled" { theme.bad } else { theme.base };
            Line::from(Span::styled(reason, style))
        }
        Age => plain(row.created.map(|c| format_age(now - c)).unwrap_or_default()),
        Cpu => plain(num_or_dash(row.usage.cpu_m, format_cpu_millis)),
        Mem => plain(num_or_dash(row.usage.mem, format_bytes)),
        CpuPctRequest => Line::from(Span::styled(pct_text(row.cpu_pct_request()), theme.base)),
        CpuPctLimit => Line::from(Span::styled(pct_text(row.cpu_pct_limit()), theme.percent(row.cpu_pct_limit()))),
        MemPctRequest => Line::from(Span::styled(pct_text(row.mem_pct_request()), theme.base)),
        MemPctLimit => Line::from(Span::styled(pct_text(row.mem_pct_limit()), theme.percent(row.mem_pct_limit()))),
        Throttle => {
            // The kubernetes-mixin's CPUThrottlingHigh fires at 25 %.
            let style = match row.throttle {
                Some(t) if t >= 0.25 => theme.bad,
                Some(t) if t >= 0.05 => theme.warn,
                Some(_) => theme.base,
                None => theme.dim,
            };
            Line::from(Span::styled(pct_text(row.throttle.map(|t| t * 100.0)), style))
        }
        Net => plain(row.net.map_or_else(|| "-".into(), |(rx, tx)| format!("{}/{}", format_rate(rx), format_rate(tx)))),
        Rps => plain(row.traffic.map_or_else(|| "-".into(), |t| format_rps(t.rps))),
        ErrPct => match row.traffic {
            Some(t) => Line::from(error_cell(t.error_ratio, t.requests, theme)),
            None => Line::from(Span::styled("-", theme.dim)),
        },
        P95 => plain(row.traffic.and_then(|t| t.p95).map_or_else(|| "-".into(), format_latency)),
        Backlog => match row.consumed {
            Some(q) => {
                let (arrow, style) = match q.direction {
                    Direction::Growing => ("↑", theme.bad),
                    Direction::Draining => ("↓", theme.good),
                    Direction::Steady => ("", theme.base),
                };
                Line::from(Span::styled(format!("{}{arrow}", format_count(q.backlog)), style))
            }
            None => Line::from(Span::styled("-", theme.dim)),
        },
        CpuTrend => Line::from(Span::styled(sparkline(track, 10, row.resources.cpu_limit_m), theme.accent)),
    }
}

/// The node columns a narrow terminal gives up, least useful first: the name, its status, its
/// pressure conditions and what it uses are kept longest.
pub const NODE_DROP_ORDER: [NodeColumn; 9] = [
    NodeColumn::Age,
    NodeColumn::MemLimits,
    NodeColumn::CpuLimits,
    NodeColumn::MemAllocatable,
    NodeColumn::CpuAllocatable,
    NodeColumn::Pods,
    NodeColumn::MemRequests,
    NodeColumn::CpuRequests,
    NodeColumn::Conditions,
];

pub fn node_width(col: NodeColumn) -> Constraint {
    match col {
        NodeColumn::Name => Constraint::Fill(2),
        NodeColumn::Status => Constraint::Length(18),
        NodeColumn::Pods => Constraint::Length(8),
        NodeColumn::CpuAllocatable | NodeColumn::MemAllocatable => Constraint::Length(13),
        NodeColumn::CpuRequests
        | NodeColumn::CpuLimits
        | NodeColumn::CpuUsage
        | NodeColumn::MemRequests
        | NodeColumn::MemLimits
        | NodeColumn::MemUsage => Constraint::Length(13),
        NodeColumn::Conditions => Constraint::Fill(2),
        NodeColumn::Age => Constraint::Length(5),
    }
}

pub fn node_cell<'a>(col: NodeColumn, row: &'a NodeRow, now: UnixSecs, theme: &Theme) -> Line<'a> {
    let n = &row.info;
    let cpu_of = |v: f64| format!("{} {}", format_cpu_millis(v), pct_text(percent(v, Some(n.cpu_allocatable_m))));
    let mem_of = |v: f64| format!("{} {}", format_bytes(v), pct_text(percent(v, Some(n.mem_allocatable))));
    let styled_pct =
        |text: String, v: f64, of: f64| Line::from(Span::styled(text, theme.percent(percent(v, Some(of)))));
    match col {
        NodeColumn::Name => Line::from(Span::styled(n.name.clone(), theme.base)),
        NodeColumn::Status => {
            let (word, style) = match n.ready.as_str() {
                "True" => ("Ready", theme.good),
                "False" => ("NotReady", theme.bad),
                _ => ("Unknown", theme.warn),
            };
            let mut spans = vec![Span::styled(word, style)];
            if n.unschedulable {
                spans.push(Span::styled(",Cordoned", theme.warn));
            }
            Line::from(spans)
        }
        NodeColumn::Pods => Line::from(Span::styled(format!("{}/{}", row.alloc.pods, n.pods_allocatable), theme.base)),
        NodeColumn::CpuAllocatable => Line::from(Span::styled(
            format!("{}/{}", format_cpu_millis(n.cpu_capacity_m), format_cpu_millis(n.cpu_allocatable_m)),
            theme.base,
        )),
        NodeColumn::MemAllocatable => Line::from(Span::styled(
            format!("{}/{}", format_bytes(n.mem_capacity), format_bytes(n.mem_allocatable)),
            theme.base,
        )),
        NodeColumn::CpuRequests => {
            styled_pct(cpu_of(row.alloc.cpu_requests_m), row.alloc.cpu_requests_m, n.cpu_allocatable_m)
        }
        NodeColumn::CpuLimits => Line::from(Span::styled(cpu_of(row.alloc.cpu_limits_m), theme.base)),
        NodeColumn::MemRequests => {
            styled_pct(mem_of(row.alloc.mem_requests), row.alloc.mem_requests, n.mem_allocatable)
        }
        NodeColumn::MemLimits => Line::from(Span::styled(mem_of(row.alloc.mem_limits), theme.base)),
        NodeColumn::CpuUsage => match row.usage {
            Some(u) => styled_pct(cpu_of(u.cpu_m), u.cpu_m, n.cpu_allocatable_m),
            None => Line::from(Span::styled("-", theme.dim)),
        },
        NodeColumn::MemUsage => match row.usage {
            Some(u) => styled_pct(mem_of(u.mem), u.mem, n.mem_allocatable),
            None => Line::from(Span::styled("-", theme.dim)),
        },
        NodeColumn::Conditions => {
            if n.pressures.is_empty() {
                Line::from(Span::styled("no pressure", theme.dim))
            } else {
                Line::from(Span::styled(n.pressures.join(","), theme.bad))
            }
        }
        NodeColumn::Age => {
            Line::from(Span::styled(n.created.map(|c| format_age(now - c)).unwrap_or_default(), theme.base))
        }
    }
}
