//! One table on screen, for the Containers, Nodes and Traffic views alike: the rows that fit
//! around the cursor, a header with the sort's arrow whose column positions are kept for mouse
//! clicks, the cursor highlighted, and a line saying why when no row is shown.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};

use super::theme::Theme;
use super::{placeholder, remember_header, scroll_offset};
use crate::app::State;
use crate::app::table::{Column, Table as RowTable};

/// How one view draws its table.
pub struct Look<'a, C> {
    /// The columns shown, in order (a narrow terminal drops some).
    pub columns: Vec<C>,
    pub widths: Vec<Constraint>,
    /// A column's header before the sort arrow, where a view names it its own way.
    pub heading: &'a dyn Fn(C) -> String,
    pub title: Line<'a>,
    /// Said inside the table when no row is shown.
    pub empty: Option<&'a str>,
}

/// Drops columns in `drop_order` until the rest, each at its `least` width, fit inside `area`'s
/// borders: a narrow terminal loses the least useful columns rather than squeezing all to slivers.
pub fn fit_columns<C: Column>(columns: &mut Vec<C>, drop_order: &[C], area: Rect, least: impl Fn(C) -> u16) {
    let needed = |cols: &[C]| -> u16 { cols.iter().map(|c| least(*c) + 1).sum() };
    for drop in drop_order {
        if needed(columns) <= area.width.saturating_sub(2) {
            return;
        }
        columns.retain(|c| c != drop);
    }
}

/// The rows of the table that fit in `area` around the cursor: (offset, how many).
pub fn window<C: Column>(state: &State, table: &RowTable<C>, area: Rect) -> (usize, usize) {
    let body_height = area.height.saturating_sub(3) as usize;
    (scroll_offset(state, table.selected(), body_height), body_height)
}

pub fn draw<'r, C: Column>(
    state: &State,
    table: &'r RowTable<C>,
    look: Look<'_, C>,
    cell: impl Fn(C, &'r C::Row) -> Line<'r>,
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
) {
    state.layout.table.set(area);
    let (offset, height) = window(state, table, area);
    let rows = table.window(offset, height).map(|row| Row::new(look.columns.iter().map(|c| Cell::from(cell(*c, row)))));
    let header = Row::new(look.columns.iter().map(|c| table.heading(*c, &(look.heading)(*c)))).style(theme.header);
    let all_index: Vec<usize> =
        look.columns.iter().map(|c| C::all().iter().position(|a| a == c).unwrap_or(usize::MAX)).collect();
    remember_header(state, area, &look.widths, &all_index);
    let widget = Table::new(rows, look.widths)
        .header(header)
        .column_spacing(1)
        .block(Block::default().borders(Borders::ALL).border_style(theme.border).title(look.title))
        .row_highlight_style(theme.selected);
    let mut cursor = TableState::default();
    if table.shown_len() > 0 {
        cursor.select(Some(table.selected() - offset.min(table.selected())));
    }
    frame.render_stateful_widget(widget, area, &mut cursor);
    if let Some(why) = look.empty.filter(|_| table.shown_len() == 0) {
        let inner = Rect { y: area.y + 2, height: 1, x: area.x + 2, width: area.width.saturating_sub(4) };
        frame.render_widget(placeholder(why, theme), inner);
    }
}
