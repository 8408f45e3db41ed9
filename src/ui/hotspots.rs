//! The Hotspots view (ranked subjects, each with its verdict and evidence) and the strip of the
//! top ones on the Containers screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::theme::Theme;
use crate::analysis::hotspots::Hotspot;
use crate::app::State;
use crate::app::visibility::{BlindSpot, Reach};

/// Lines the strip takes on the Containers screen: a title and the top hotspots.
pub const STRIP_HOTSPOTS: usize = 3;

/// On a short terminal the table needs the lines more: one hotspot, or none below 12 lines;
/// but blindness keeps its one line at any height (rows under it are not the whole truth).
pub fn strip_height(state: &State, available: u16) -> u16 {
    let lines = match available {
        0..2 => return 0,
        2..12 => return u16::from(first_blind(state).is_some()),
        12..24 => 1,
        _ => STRIP_HOTSPOTS,
    };
    let notes = caveat_count(state, &strip_spots(state));
    1 + (notes + state.hotspots.len().min(lines)).clamp(1, lines + 1) as u16
}

/// The strip's blind spots: what cannot be seen at all, line by line, and what is only partly
/// seen folded into one line, so the hotspots keep their lines (the Hotspots view lists each).
fn strip_spots(state: &State) -> Vec<BlindSpot> {
    let (blind, partial): (Vec<BlindSpot>, Vec<BlindSpot>) =
        state.blind_spots().into_iter().partition(|s| s.reach == Reach::Blind);
    let mut spots = blind;
    if let Some(first) = partial.first() {
        let text = partial.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" · ");
        spots.push(BlindSpot { reach: Reach::Partial, source: first.source, text });
    }
    spots
}

/// What kpulse cannot see at all, the most serious first.
fn first_blind(state: &State) -> Option<BlindSpot> {
    state.blind_spots().into_iter().find(|s| s.reach == Reach::Blind)
}

/// How many lines `caveats` gives.
fn caveat_count(state: &State, spots: &[BlindSpot]) -> usize {
    spots.len() + usize::from(state.found_nothing(spots))
}

fn blind_line<'a>(spot: &BlindSpot, indent: &str, theme: &Theme) -> Line<'a> {
    let style = match spot.reach {
        Reach::Blind => theme.bad,
        Reach::Partial => theme.warn,
    };
    Line::from(vec![
        Span::styled(format!("{indent}{}: ", spot.reach.words()), style),
        Span::styled(spot.text.clone(), style),
    ])
}

/// What stands where hotspots would: what kpulse cannot see, and the all-clear only when it sees
/// everything it was asked to.
fn caveats<'a>(state: &State, spots: &[BlindSpot], all_clear: &'a str, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines: Vec<Line> = spots.iter().map(|s| blind_line(s, "   ", theme)).collect();
    if state.found_nothing(spots) {
        let text = if spots.is_empty() { all_clear } else { "   nothing crosses a rule in what kpulse can see" };
        lines.push(Line::from(Span::styled(text, if spots.is_empty() { theme.good } else { theme.dim })));
    }
    lines
}

fn score_style(score: u32, theme: &Theme) -> Style {
    match score {
        75.. => theme.bad,
        50.. => theme.warn,
        _ => theme.base,
    }
}

fn headline<'a>(h: &'a Hotspot, theme: &Theme) -> Vec<Span<'a>> {
    vec![
        Span::styled(format!("{:>3} ", h.score), score_style(h.score, theme)),
        Span::styled(format!("{:<9} ", h.subject.kind()), theme.dim),
        Span::styled(h.subject.label(), theme.accent),
        Span::styled(format!("  {}", h.verdict()), score_style(h.score, theme)),
    ]
}

/// The top hotspots in one line each, above the containers table.
pub fn draw_strip(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    if area.height == 1 {
        // A short terminal: only the blind line, without the strip's title.
        if let Some(spot) = first_blind(state) {
            frame.render_widget(Paragraph::new(blind_line(&spot, " ", theme)), area);
        }
        return;
    }
    let mut lines = vec![Line::from(vec![
        Span::styled(" Hotspots ", theme.title),
        Span::styled(format!("{} found · 4 to see all, with evidence", state.hotspots.len()), theme.dim),
    ])];
    let spots = strip_spots(state);
    lines.extend(caveats(state, &spots, "   nothing looks like a bottleneck right now", theme));
    let room = (area.height as usize).saturating_sub(lines.len());
    for h in state.hotspots.iter().take(room) {
        let mut spans = headline(h, theme);
        spans.push(Span::styled(format!(": {}", h.evidence().join("; ")), theme.base));
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// Every hotspot, two lines each (headline, then evidence), and the selected one's evidence in
/// full below.
pub fn draw_hotspots(state: &State, frame: &mut Frame, area: Rect, theme: &Theme) {
    state.layout.table.set(area);
    // The evidence box only where the list keeps room above it: a short terminal shows the
    // caveats and the ranking first.
    let evidence_height = if area.height >= 18 { 9 } else { 0 };
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(evidence_height)]).areas(area);
    let block = Block::default().borders(Borders::ALL).border_style(theme.border).title(Line::from(vec![
        Span::styled(" Hotspots ", theme.title),
        Span::styled("ranked by score (0-100) · Enter: the rows behind one ", theme.dim),
    ]));
    let mut inner = block.inner(list_area);
    frame.render_widget(block, list_area);
    let spots = state.blind_spots();
    let all_clear = "nothing looks like a bottleneck right now: no container, service, node or gateway crosses a rule";
    let notes = caveats(state, &spots, all_clear, theme);
    let notes_height = (notes.len() as u16).min(inner.height);
    frame.render_widget(Paragraph::new(notes).wrap(Wrap { trim: false }), Rect { height: notes_height, ..inner });
    inner.y += notes_height;
    inner.height -= notes_height;
    if state.hotspots.is_empty() {
        return;
    }
    let per_page = (inner.height as usize / 2).max(1);
    let selected = state.hotspot_selected;
    let offset = super::scroll_offset(state, selected, per_page);
    let mut lines = Vec::new();
    for (i, h) in state.hotspots.iter().enumerate().skip(offset).take(per_page) {
        let mut first = headline(h, theme);
        let mut second = vec![Span::styled(format!("      {}", h.evidence().join("; ")), theme.base)];
        if i == selected {
            for span in first.iter_mut().chain(second.iter_mut()) {
                span.style = span.style.patch(theme.selected);
            }
        }
        lines.push(Line::from(first));
        lines.push(Line::from(second));
    }
    frame.render_widget(Paragraph::new(lines), inner);

    let Some(h) = state.selected_hotspot().filter(|_| evidence_height > 0) else { return };
    let mut detail = vec![Line::from(headline(h, theme))];
    for f in &h.findings {
        detail.push(Line::from(vec![
            Span::styled(format!("  {:>3} ", f.score.round()), theme.dim),
            Span::styled(format!("{}: ", f.verdict), score_style(f.score.round() as u32, theme)),
            Span::styled(f.evidence.clone(), theme.base),
        ]));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(" Evidence ", theme.title));
    frame.render_widget(Paragraph::new(detail).wrap(Wrap { trim: false }).block(block), detail_area);
}
