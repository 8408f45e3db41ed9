//! One table, kept the same way for the Containers, Nodes and Traffic views: its rows, the ones the
//! filter shows in the sort's order, a cursor that stays on its row through rebuilds and re-sorts,
//! and the sort. A view brings its column type ([`Column`]); the rest is here once (bottom's
//! DataTable with a column trait is the model).

use std::cmp::Ordering;

use crate::model::time::UnixSecs;

/// What a table needs of its column type: the columns in order, how each sorts, and what
/// identifies and filters a row.
pub trait Column: Copy + PartialEq + 'static {
    type Row;
    /// What names a row across rebuilds, so the cursor can stay on it.
    type Key;

    fn all() -> &'static [Self];
    fn title(self) -> &'static str;
    /// Numbers read best largest first; names A→Z.
    fn descending_by_default(self) -> bool;
    /// The rows' order by this column, ascending; `now` for columns that age.
    fn compare(self, a: &Self::Row, b: &Self::Row, now: UnixSecs) -> Ordering;
    fn key(row: &Self::Row) -> Self::Key;
    /// Whether the row is the one `key` names, without building the row's key: the cursor's
    /// row is looked for among every row shown, at each refresh.
    fn is(row: &Self::Row, key: &Self::Key) -> bool;
    /// Whether the filter text shows the row (see [`super::rows::matches_filter`]).
    fn matches(row: &Self::Row, filter: &str) -> bool;
}

pub struct Table<C: Column> {
    /// Every row, in the order the view builds them (its tiebreak order).
    pub rows: Vec<C::Row>,
    /// Indexes into `rows` of the rows shown, in display order.
    visible: Vec<u32>,
    /// The cursor, an index into `visible`.
    selected: usize,
    selected_key: Option<C::Key>,
    pub sort: (C, bool),
}

impl<C: Column> Table<C> {
    pub fn new(sort: (C, bool)) -> Table<C> {
        Table { rows: Vec::new(), visible: Vec::new(), selected: 0, selected_key: None, sort }
    }

    /// The rows shown, in display order.
    pub fn shown(&self) -> impl ExactSizeIterator<Item = &C::Row> + '_ {
        self.visible.iter().map(|&i| &self.rows[i as usize])
    }

    /// `len` of the rows shown, from the `offset`-th on (what fits on screen).
    pub fn window(&self, offset: usize, len: usize) -> impl Iterator<Item = &C::Row> + '_ {
        let end = (offset + len).min(self.visible.len());
        self.visible[offset.min(end)..end].iter().map(|&i| &self.rows[i as usize])
    }

    pub fn shown_len(&self) -> usize {
        self.visible.len()
    }

    pub fn selected(&self) -> usize {
        self.selected
    }

    pub fn selected_row(&self) -> Option<&C::Row> {
        self.visible.get(self.selected).map(|&i| &self.rows[i as usize])
    }

    /// Filters and sorts again, keeping the cursor on its row if that row is still shown. `keep`
    /// is a view's own condition beside the filter text (the namespace picked). The sort is stable
    /// over rows kept in the view's tiebreak order, so ties fall the same way every time.
    pub fn apply(&mut self, filter: &str, keep: impl Fn(&C::Row) -> bool, now: UnixSecs) {
        let rows = &self.rows;
        let mut visible: Vec<u32> = (0..rows.len() as u32)
            .filter(|&i| {
                let row = &rows[i as usize];
                keep(row) && C::matches(row, filter)
            })
            .collect();
        let (col, descending) = self.sort;
        visible.sort_by(|&a, &b| {
            let ord = col.compare(&rows[a as usize], &rows[b as usize], now);
            if descending { ord.reverse() } else { ord }
        });
        self.visible = visible;
        if let Some(key) = &self.selected_key
            && let Some(pos) = self.visible.iter().position(|&i| C::is(&self.rows[i as usize], key))
        {
            self.selected = pos;
        }
        self.clamp();
    }

    fn clamp(&mut self) {
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
        self.selected_key = self.selected_row().map(C::key);
    }

    /// Moves the cursor by `delta` rows, within the rows shown.
    pub fn move_selection(&mut self, delta: isize) {
        if self.visible.is_empty() {
            return;
        }
        self.selected =
            (self.selected as isize).saturating_add(delta).clamp(0, self.visible.len() as isize - 1) as usize;
        self.clamp();
    }

    /// The cursor to the top, unless its row is still shown after the next [`Table::apply`] (a
    /// filter typed, a namespace picked).
    pub fn to_top_unless_kept(&mut self) {
        self.selected = 0;
    }

    /// The cursor to the row named `key`, when it is next shown.
    pub fn follow(&mut self, key: C::Key) {
        self.selected_key = Some(key);
    }

    /// The cursor to the first row shown that `wanted` picks, if any; whether there was one.
    pub fn select_where(&mut self, wanted: impl Fn(&C::Row) -> bool) -> bool {
        let found = self.shown().position(wanted);
        match found {
            Some(pos) => {
                self.selected = pos;
                self.clamp();
                true
            }
            None => false,
        }
    }

    /// The next (or previous) column, in its natural direction.
    pub fn cycle_sort(&mut self, forward: bool) {
        let all = C::all();
        let i = all.iter().position(|c| *c == self.sort.0).unwrap_or(0);
        let next = all[(i + if forward { 1 } else { all.len() - 1 }) % all.len()];
        self.sort = (next, next.descending_by_default());
    }

    /// A header click on the `index`-th column: that column, or the same one reversed.
    pub fn sort_by_index(&mut self, index: usize) {
        match C::all().get(index) {
            Some(&col) if col == self.sort.0 => self.sort.1 = !self.sort.1,
            Some(&col) => self.sort = (col, col.descending_by_default()),
            None => {}
        }
    }

    pub fn reverse_sort(&mut self) {
        self.sort.1 = !self.sort.1;
    }

    fn arrow(&self) -> &'static str {
        if self.sort.1 { "↓" } else { "↑" }
    }

    /// The column's header text: its title, with an arrow on the sorted column.
    pub fn heading(&self, col: C, title: &str) -> String {
        if col == self.sort.0 { format!("{title}{}", self.arrow()) } else { title.to_string() }
    }

    /// What the title line says of the sort: "HEALTH ↓".
    pub fn sort_label(&self) -> String {
        format!("{} {}", self.sort.0.title(), self.arrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words sorted by length or alphabetically; a word is its own key.
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum WordColumn {
        Word,
        Length,
    }

    impl Column for WordColumn {
        type Row = &'static str;
        type Key = &'static str;
        fn all() -> &'static [Self] {
            &[WordColumn::Word, WordColumn::Length]
        }
        fn title(self) -> &'static str {
            match self {
                WordColumn::Word => "WORD",
                WordColumn::Length => "LEN",
            }
        }
        fn descending_by_default(self) -> bool {
            self == WordColumn::Length
        }
        fn compare(self, a: &&'static str, b: &&'static str, _: UnixSecs) -> Ordering {
            match self {
                WordColumn::Word => a.cmp(b),
                WordColumn::Length => a.len().cmp(&b.len()),
            }
        }
        fn key(row: &&'static str) -> &'static str {
            row
        }
        fn is(row: &&'static str, key: &&'static str) -> bool {
            row == key
        }
        fn matches(row: &&'static str, filter: &str) -> bool {
            row.contains(filter)
        }
    }

    fn table() -> Table<WordColumn> {
        let mut t = Table::new((WordColumn::Word, false));
        t.rows = vec!["pear", "fig", "banana", "apple", "kiwi"];
        t.apply("", |_| true, 0);
        t
    }

    fn shown(t: &Table<WordColumn>) -> Vec<&'static str> {
        t.shown().copied().collect()
    }

    #[test]
    fn the_cursor_stays_on_its_row_through_a_resort_and_a_rebuild() {
        let mut t = table();
        assert_eq!(shown(&t), ["apple", "banana", "fig", "kiwi", "pear"]);
        t.move_selection(2);
        assert_eq!(t.selected_row(), Some(&"fig"));
        t.sort_by_index(1);
        t.apply("", |_| true, 0);
        // Longest first; ties in build order.
        assert_eq!(shown(&t), ["banana", "apple", "pear", "kiwi", "fig"]);
        assert_eq!(t.selected_row(), Some(&"fig"));
        t.rows.insert(0, "cherry");
        t.apply("", |_| true, 0);
        assert_eq!(t.selected_row(), Some(&"fig"));
    }

    #[test]
    fn the_cursor_never_leaves_the_rows_the_filter_shows() {
        let mut t = table();
        t.move_selection(isize::MAX);
        assert_eq!(t.selected_row(), Some(&"pear"));
        t.to_top_unless_kept();
        t.apply("a", |r| *r != "banana", 0);
        // "pear" still shown: the cursor stays on it.
        assert_eq!(shown(&t), ["apple", "pear"]);
        assert_eq!(t.selected_row(), Some(&"pear"));
        t.to_top_unless_kept();
        t.apply("i", |_| true, 0);
        assert_eq!(shown(&t), ["fig", "kiwi"]);
        assert_eq!(t.selected(), 0);
        t.move_selection(5);
        assert_eq!(t.selected(), 1);
        t.apply("zzz", |_| true, 0);
        assert_eq!((t.selected(), t.selected_row()), (0, None));
        t.move_selection(1);
        assert_eq!(t.selected(), 0);
    }

    #[test]
    fn sorting_cycles_clicks_and_reverses() {
        let mut t = table();
        t.cycle_sort(true);
        assert_eq!(t.sort, (WordColumn::Length, true));
        t.cycle_sort(true);
        assert_eq!(t.sort, (WordColumn::Word, false));
        t.cycle_sort(false);
        assert_eq!(t.sort, (WordColumn::Length, true));
        t.sort_by_index(1);
        assert_eq!(t.sort, (WordColumn::Length, false), "a second click reverses");
        t.sort_by_index(7);
        assert_eq!(t.sort, (WordColumn::Length, false), "no such column: nothing changes");
        t.reverse_sort();
        assert_eq!(t.heading(WordColumn::Length, "LEN"), "LEN↓");
        assert_eq!(t.heading(WordColumn::Word, "WORD"), "WORD");
        assert_eq!(t.sort_label(), "LEN ↓");
        assert!(t.select_where(|w| w.starts_with('k')));
        assert!(!t.select_where(|w| w.starts_with('z')));
    }
}
