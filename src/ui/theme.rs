//! Colours by meaning. `mono` uses none: every state is also a word, so nothing is lost.

use ratatui::style::{Color, Modifier, Style};

use crate::analysis::health::Severity;
use crate::model::update::SourceState;

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub base: Style,
    pub header: Style,
    pub selected: Style,
    pub border: Style,
    pub title: Style,
    pub dim: Style,
    pub good: Style,
    pub warn: Style,
    pub bad: Style,
    pub accent: Style,
    pub chart_primary: Color,
    pub chart_request: Color,
    pub chart_limit: Color,
}

impl Theme {
    pub fn named(name: &str) -> Theme {
        match name {
            "light" => Theme {
                base: Style::default().fg(Color::Black),
                header: Style::default().fg(Color::Blue).add_modifier(Modifier::BOLD),
                selected: Style::default().bg(Color::Rgb(200, 220, 255)).add_modifier(Modifier::BOLD),
                border: Style::default().fg(Color::Gray),
                title: Style::default().fg(Color::Blue).add_modifier(Modifier::BOLD),
                dim: Style::default().fg(Color::DarkGray),
                good: Style::default().fg(Color::Green),
                warn: Style::default().fg(Color::Rgb(180, 110, 0)),
                bad: Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                accent: Style::default().fg(Color::Magenta),
                chart_primary: Color::Blue,
                chart_request: Color::Green,
                chart_limit: Color::Red,
            },
            "mono" => Theme {
                base: Style::default(),
                header: Style::default().add_modifier(Modifier::BOLD),
                selected: Style::default().add_modifier(Modifier::REVERSED),
                border: Style::default(),
                title: Style::default().add_modifier(Modifier::BOLD),
                dim: Style::default(),
                good: Style::default(),
                warn: Style::default().add_modifier(Modifier::UNDERLINED),
                bad: Style::default().add_modifier(Modifier::BOLD),
                accent: Style::default(),
                chart_primary: Color::Reset,
                chart_request: Color::Reset,
                chart_limit: Color::Reset,
            },
            _ => Theme {
                base: Style::default().fg(Color::Gray),
                header: Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD),
                selected: Style::default().bg(Color::Rgb(40, 50, 80)).add_modifier(Modifier::BOLD),
                border: Style::default().fg(Color::DarkGray),
                title: Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD),
                dim: Style::default().fg(Color::DarkGray),
                good: Style::default().fg(Color::Green),
                warn: Style::default().fg(Color::Yellow),
                bad: Style::default().fg(Color::LightRed).add_modifier(Modifier::BOLD),
                accent: Style::default().fg(Color::Magenta),
                chart_primary: Color::Cyan,
                chart_request: Color::Green,
                chart_limit: Color::LightRed,
            },
        }
    }

    pub fn severity(&self, s: Severity) -> Style {
        match s {
            Severity::Good => self.good,
            Severity::Neutral => self.dim,
            Severity::Warn => self.warn,
            Severity::Bad => self.bad,
        }
    }

    pub fn source(&self, s: &SourceState) -> Style {
        match s {
            SourceState::Connected => self.good,
            SourceState::Connecting | SourceState::Absent(_) => self.dim,
            SourceState::Reconnecting(_) => self.warn,
            SourceState::Forbidden(_) => self.bad,
        }
    }

    /// Percent of a limit: calm below 70, warning to 90, bad above.
    pub fn percent(&self, pct: Option<f64>) -> Style {
        match pct {
            Some(p) if p >= 90.0 => self.bad,
            Some(p) if p >= 70.0 => self.warn,
            Some(_) => self.base,
            None => self.dim,
        }
    }
}
