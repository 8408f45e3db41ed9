//! Keys are data: every action has a default key, the config can rebind it, and the help screen
//! is generated from the same table so it can never disagree with what the keys do.

use std::collections::{BTreeMap, HashMap};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    Filter,
    Command,
    Namespace,
    Context,
    Detail,
    Containers,
    Nodes,
    Traffic,
    Hotspots,
    Events,
    TrafficGroup,
    NextView,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    SortNext,
    SortPrev,
    SortReverse,
}

/// (action, config name, default keys, what it does)
pub const ACTIONS: &[(Action, &str, &[&str], &str)] = &[
    (Action::Quit, "quit", &["q", "ctrl-c"], "quit"),
    (Action::Help, "help", &["?", "f1"], "show or hide this help"),
    (Action::Filter, "filter", &["/"], "filter rows (substring; start with ~ for fuzzy)"),
    (Action::Command, "command", &[":"], "command: ns NAME | ns all | ctx NAME | q"),
    (Action::Namespace, "namespace", &["n"], "pick a namespace"),
    (Action::Context, "context", &["c"], "pick a kubeconfig context"),
    (Action::Detail, "detail", &["enter"], "open or close the detail pane; on a hotspot, go to its rows"),
    (Action::Containers, "containers", &["1"], "Containers view"),
    (Action::Nodes, "nodes", &["2"], "Nodes view"),
    (Action::Traffic, "traffic", &["3"], "Traffic view (gateway logs)"),
    (Action::Hotspots, "hotspots", &["4", "h"], "Hotspots view: the likely bottlenecks, ranked, with evidence"),
    (Action::Events, "events", &["5", "e"], "Events view: broker queues and consumer lag"),
    (Action::TrafficGroup, "traffic_group", &["t"], "Traffic by services → pods → routes"),
    (Action::NextView, "next_view", &["tab"], "next view"),
    (Action::Up, "up", &["k", "up"], "move up"),
    (Action::Down, "down", &["j", "down"], "move down"),
    (Action::PageUp, "page_up", &["pageup", "ctrl-b"], "page up"),
    (Action::PageDown, "page_down", &["pagedown", "ctrl-f"], "page down"),
    (Action::Top, "top", &["g", "home"], "first row"),
    (Action::Bottom, "bottom", &["G", "end"], "last row"),
    (Action::SortNext, "sort_next", &["s", "right"], "sort by the next column"),
    (Action::SortPrev, "sort_prev", &["S", "left"], "sort by the previous column"),
    (Action::SortReverse, "sort_reverse", &["r"], "reverse the sort order"),
];

#[derive(Debug, Clone)]
pub struct KeyMap {
    bindings: HashMap<(KeyCode, bool), Action>,
    /// Key names per action, for the help screen.
    pub names: BTreeMap<Action, Vec<String>>,
}

impl KeyMap {
    /// Builds the keymap from defaults and overrides (action name → key). Unknown actions or keys
    /// are reported, not fatal.
    pub fn new(overrides: &BTreeMap<String, String>) -> (KeyMap, Vec<String>) {
        let mut names: BTreeMap<Action, Vec<String>> = BTreeMap::new();
        let mut problems = Vec::new();
        for (action, _, defaults, _) in ACTIONS {
            names.insert(*action, defaults.iter().map(|s| s.to_string()).collect());
        }
        for (name, key) in overrides {
            match ACTIONS.iter().find(|(_, n, _, _)| n == name) {
                None => problems.push(format!("unknown action {name:?} in [keys]")),
                Some((action, ..)) if parse_key(key).is_some() => {
                    names.insert(*action, vec![key.clone()]);
                }
                Some(_) => problems.push(format!("unknown key {key:?} for {name}")),
            }
        }
        let mut bindings = HashMap::new();
        for (action, keys) in &names {
            for k in keys {
                if let Some(parsed) = parse_key(k) {
                    bindings.insert(parsed, *action);
                }
            }
        }
        (KeyMap { bindings, names }, problems)
    }

    pub fn action(&self, key: &KeyEvent) -> Option<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        // Terminals report Shift+g as 'G' with SHIFT; the character alone is what counts, so
        // only Ctrl is part of the lookup.
        self.bindings.get(&(key.code, ctrl)).copied()
    }

    pub fn keys_for(&self, action: Action) -> String {
        self.names.get(&action).map(|v| v.join(", ")).unwrap_or_default()
    }
}

impl Default for KeyMap {
    fn default() -> Self {
        KeyMap::new(&BTreeMap::new()).0
    }
}

/// `"q"`, `"ctrl-c"`, `"enter"`, `"pagedown"`… → (code, ctrl held).
pub fn parse_key(text: &str) -> Option<(KeyCode, bool)> {
    let (ctrl, rest) = match text.strip_prefix("ctrl-") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let code = match rest {
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pageup" => KeyCode::PageUp,
        "pagedown" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "space" => KeyCode::Char(' '),
        f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => KeyCode::F(f[1..].parse().ok()?),
        c if c.chars().count() == 1 => KeyCode::Char(c.chars().next()?),
        _ => return None,
    };
    Some((code, ctrl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let mut over = BTreeMap::new();
        over.insert("quit".to_string(), "x".to_string());
        over.insert("bogus".to_string(), "y".to_string());
        over.insert("help".to_string(), "ctrl-nope".to_string());
        let (km, problems) = KeyMap::new(&over);
        assert_eq!(problems.len(), 2);
        let key = |c: KeyCode, m: KeyModifiers| KeyEvent::new(c, m);
        assert_eq!(km.action(&key(KeyCode::Char('x'), KeyModifiers::NONE)), Some(Action::Quit));
        assert_eq!(km.action(&key(KeyCode::Char('q'), KeyModifiers::NONE)), None);
        assert_eq!(km.action(&key(KeyCode::Char('G'), KeyModifiers::SHIFT)), Some(Action::Bottom));
        assert_eq!(km.action(&key(KeyCode::Char('f'), KeyModifiers::CONTROL)), Some(Action::PageDown));
        assert_eq!(km.action(&key(KeyCode::F(1), KeyModifiers::NONE)), Some(Action::Help));
    }
}
