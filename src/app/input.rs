//! Keys, mouse and `:` commands: what the user asks for, as state changes and commands.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::keymap::Action;
use super::traffic::TrafficGroup;
use crate::analysis::hotspots::Subject;
use crate::model::pod::PodKey;
use crate::model::update::Scope;

use super::{Command, InputMode, Overlay, PickerKind, State, View};

impl State {
    /// Enter on a hotspot: the rows behind it, with their detail open.
    pub(super) fn open_hotspot(&mut self) {
        let Some(subject) = self.selected_hotspot().map(|h| h.subject.clone()) else { return };
        self.filter.clear();
        self.namespace_filter = None;
        match subject {
            Subject::Container { namespace, pod, container } => {
                self.view = View::Containers;
                self.container_table.follow((PodKey::new(namespace, pod), container));
            }
            Subject::Service { backend, .. } => {
                self.view = View::Traffic;
                if self.traffic_group != TrafficGroup::Services {
                    self.traffic_group = TrafficGroup::Services;
                    self.refresh_traffic();
                }
                self.apply_view();
                self.traffic_table.select_where(|r| r.key == backend);
            }
            Subject::Node { name } => {
                self.view = View::Nodes;
                self.apply_view();
                self.node_table.select_where(|r| r.info.name == name);
            }
            Subject::Workload { namespace, workload } => {
                // Its pods, as the Containers view filters by name.
                self.view = View::Containers;
                self.namespace_filter = Some(namespace);
                self.filter = workload.split_once('/').map_or(workload.clone(), |(_, name)| format!("{name}-"));
                self.show_detail = false;
                self.apply_view();
                self.dirty.view = true;
                return;
            }
            Subject::Gateway => {
                self.view = View::Traffic;
                self.show_detail = false;
                self.dirty.view = true;
                return;
            }
            Subject::Queue { name } => {
                self.view = View::Events;
                self.queue_selected = self.queue_order().iter().position(|k| k.label() == name).unwrap_or(0);
                return;
            }
        }
        self.show_detail = true;
        self.dirty.view = true;
    }

    pub(super) fn move_selection(&mut self, delta: isize) {
        let (len, cur) = match self.view {
            View::Containers => return self.container_table.move_selection(delta),
            View::Nodes => return self.node_table.move_selection(delta),
            View::Traffic => return self.traffic_table.move_selection(delta),
            View::Hotspots => (self.hotspots.len(), self.hotspot_selected),
            // The rows on screen: the filter's, not every queue.
            View::Events => (self.queue_order().len(), self.queue_selected),
        };
        if len == 0 {
            return;
        }
        let next = (cur as isize).saturating_add(delta).clamp(0, len as isize - 1) as usize;
        match self.view {
            View::Events => self.queue_selected = next,
            _ => self.hotspot_selected = next,
        }
    }

    /// The cursor's row in the current view (an index into the rows shown).
    fn cursor(&self) -> usize {
        match self.view {
            View::Containers => self.container_table.selected(),
            View::Nodes => self.node_table.selected(),
            View::Traffic => self.traffic_table.selected(),
            View::Hotspots => self.hotspot_selected,
            View::Events => self.queue_selected,
        }
    }

    pub(super) fn cycle_sort(&mut self, forward: bool) {
        match self.view {
            View::Containers => self.container_table.cycle_sort(forward),
            View::Nodes => self.node_table.cycle_sort(forward),
            View::Traffic => self.traffic_table.cycle_sort(forward),
            // Ranked: there is no other order.
            View::Hotspots | View::Events => {}
        }
        self.dirty.view = true;
    }

    /// Sorts by the column with this index in the current view (a header click); a second click
    /// on the same column reverses it.
    pub fn sort_by_index(&mut self, index: usize) {
        match self.view {
            View::Containers => self.container_table.sort_by_index(index),
            View::Nodes => self.node_table.sort_by_index(index),
            View::Traffic => self.traffic_table.sort_by_index(index),
            View::Hotspots | View::Events => {}
        }
        self.dirty.view = true;
    }

    pub(super) fn on_key(&mut self, key: KeyEvent) -> Vec<Command> {
        // Ctrl-C always quits, whatever the keymap or mode.
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return vec![Command::Quit];
        }
        match self.input.clone() {
            InputMode::Filter => {
                self.on_filter_key(key);
                return vec![];
            }
            InputMode::Command(text) => return self.on_command_key(key, text),
            InputMode::Normal => {}
        }
        if let Overlay::Picker { .. } = self.overlay {
            return self.on_picker_key(key);
        }
        if self.overlay == Overlay::Help {
            if matches!(key.code, KeyCode::Esc) || self.keymap.action(&key) == Some(Action::Help) {
                self.overlay = Overlay::None;
            } else if self.keymap.action(&key) == Some(Action::Quit) {
                return vec![Command::Quit];
            }
            return vec![];
        }
        if key.code == KeyCode::Esc {
            if self.show_detail {
                self.show_detail = false;
            } else if !self.filter.is_empty() {
                self.filter.clear();
                self.dirty.view = true;
            }
            return vec![];
        }
        let Some(action) = self.keymap.action(&key) else { return vec![] };
        match action {
            Action::Quit => return vec![Command::Quit],
            Action::Help => self.overlay = Overlay::Help,
            Action::Filter => self.input = InputMode::Filter,
            Action::Command => self.input = InputMode::Command(String::new()),
            Action::Namespace => {
                let mut items = vec!["all".to_string()];
                items.extend(self.namespaces());
                if let Scope::Namespace(ns) = &self.scope
                    && !items.contains(ns)
                {
                    items.push(ns.clone());
                }
                self.overlay = Overlay::Picker { kind: PickerKind::Namespace, items, selected: 0 };
            }
            Action::Context => {
                let selected = self.contexts.iter().position(|c| *c == self.context).unwrap_or(0);
                self.overlay = Overlay::Picker { kind: PickerKind::Context, items: self.contexts.clone(), selected };
            }
            Action::Detail if self.view == View::Hotspots => self.open_hotspot(),
            Action::Detail => self.show_detail = !self.show_detail,
            Action::Containers => self.view = View::Containers,
            Action::Nodes => self.view = View::Nodes,
            Action::Traffic => self.view = View::Traffic,
            Action::Hotspots => self.view = View::Hotspots,
            Action::Events => self.view = View::Events,
            Action::NextView => {
                let i = View::ORDER.iter().position(|v| *v == self.view).unwrap_or(0);
                self.view = View::ORDER[(i + 1) % View::ORDER.len()];
            }
            Action::TrafficGroup => {
                self.view = View::Traffic;
                self.traffic_group = self.traffic_group.next();
                self.traffic_table.to_top_unless_kept();
                self.refresh_traffic();
            }
            Action::Up => self.move_selection(-1),
            Action::Down => self.move_selection(1),
            Action::PageUp => self.move_selection(-(self.page_size() as isize)),
            Action::PageDown => self.move_selection(self.page_size() as isize),
            Action::Top => self.move_selection(isize::MIN / 2),
            Action::Bottom => self.move_selection(isize::MAX / 2),
            Action::SortNext => self.cycle_sort(true),
            Action::SortPrev => self.cycle_sort(false),
            Action::SortReverse => {
                match self.view {
                    View::Containers => self.container_table.reverse_sort(),
                    View::Nodes => self.node_table.reverse_sort(),
                    View::Traffic => self.traffic_table.reverse_sort(),
                    View::Hotspots | View::Events => {}
                }
                self.dirty.view = true;
            }
        }
        vec![]
    }

    pub(super) fn on_filter_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => self.input = InputMode::Normal,
            KeyCode::Esc => {
                self.filter.clear();
                self.input = InputMode::Normal;
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => self.filter.push(c),
            _ => return,
        }
        self.container_table.to_top_unless_kept();
        self.dirty.view = true;
    }

    pub(super) fn on_command_key(&mut self, key: KeyEvent, mut text: String) -> Vec<Command> {
        match key.code {
            KeyCode::Esc => self.input = InputMode::Normal,
            KeyCode::Enter => {
                self.input = InputMode::Normal;
                return self.run_command(text.trim());
            }
            KeyCode::Backspace => {
                text.pop();
                self.input = InputMode::Command(text);
            }
            KeyCode::Char(c) => {
                text.push(c);
                self.input = InputMode::Command(text);
            }
            _ => {}
        }
        vec![]
    }

    /// `:ns NAME`, `:ns all`, `:ctx NAME`, `:nodes`, `:pods`, `:q`.
    pub fn run_command(&mut self, text: &str) -> Vec<Command> {
        let mut words = text.split_whitespace();
        match (words.next(), words.next()) {
            (Some("q" | "quit" | "q!"), _) => vec![Command::Quit],
            (Some("ns" | "namespace"), Some(ns)) => self.switch_namespace(ns),
            (Some("ns" | "namespace"), None) => {
                self.on_key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE));
                vec![]
            }
            (Some("ctx" | "context"), Some(ctx)) => self.switch_context(ctx),
            (Some("no" | "node" | "nodes"), _) => {
                self.view = View::Nodes;
                vec![]
            }
            (Some("co" | "pods" | "po" | "containers"), _) => {
                self.view = View::Containers;
                vec![]
            }
            (None, _) => vec![],
            (Some(other), _) => {
                self.notice(format!("unknown command :{other} (try :ns, :ctx, :nodes, :pods, :q)"));
                vec![]
            }
        }
    }

    pub(super) fn switch_namespace(&mut self, ns: &str) -> Vec<Command> {
        let all = matches!(ns, "all" | "-A" | "*");
        self.container_table.to_top_unless_kept();
        self.dirty.view = true;
        match (&self.scope, all) {
            // Watching everything already: narrowing is a view filter, instant and free.
            (Scope::All, true) => {
                self.namespace_filter = None;
                vec![]
            }
            (Scope::All, false) => {
                self.namespace_filter = Some(ns.to_string());
                vec![]
            }
            (Scope::Namespace(cur), false) if cur == ns => vec![],
            (Scope::Namespace(_), _) => {
                let scope = if all { Scope::All } else { Scope::Namespace(ns.to_string()) };
                self.scope = scope.clone();
                self.namespace_filter = None;
                self.reset_data();
                vec![Command::Rescope(scope)]
            }
        }
    }

    pub(super) fn switch_context(&mut self, ctx: &str) -> Vec<Command> {
        if ctx == self.context {
            return vec![];
        }
        if !self.contexts.iter().any(|c| c == ctx) {
            self.notice(format!("no context named {ctx:?} in the kubeconfig"));
            return vec![];
        }
        self.context = ctx.to_string();
        self.namespace_filter = None;
        self.reset_data();
        vec![Command::SwitchContext(ctx.to_string())]
    }

    pub(super) fn on_picker_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Overlay::Picker { kind, items, selected } = &mut self.overlay else { return vec![] };
        let kind = *kind;
        match key.code {
            KeyCode::Esc => self.overlay = Overlay::None,
            KeyCode::Up | KeyCode::Char('k') => *selected = selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => *selected = (*selected + 1).min(items.len().saturating_sub(1)),
            KeyCode::Enter => {
                let choice = items.get(*selected).cloned();
                self.overlay = Overlay::None;
                if let Some(choice) = choice {
                    return match kind {
                        PickerKind::Namespace => self.switch_namespace(&choice),
                        PickerKind::Context => self.switch_context(&choice),
                    };
                }
            }
            _ => {}
        }
        vec![]
    }

    pub(super) fn on_mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollDown => self.move_selection(3),
            MouseEventKind::ScrollUp => self.move_selection(-3),
            MouseEventKind::Down(MouseButton::Left) => {
                let area = self.layout.table.get();
                if m.column < area.x
                    || m.column >= area.x + area.width
                    || m.row < area.y
                    || m.row >= area.y + area.height
                {
                    return;
                }
                // Row 0 of the area is the border, row 1 the header.
                let inner_row = (m.row - area.y) as usize;
                if inner_row == 1 {
                    let header = self.layout.header.get();
                    if let Some(i) = header.iter().position(|(x, w)| *w > 0 && m.column >= *x && m.column < x + w) {
                        self.sort_by_index(i);
                    }
                } else if inner_row >= 2 {
                    let target = self.layout.offset.get() + inner_row - 2;
                    self.move_selection(target as isize - self.cursor() as isize);
                }
            }
            _ => {}
        }
    }
}
