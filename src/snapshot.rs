//! `kpulse snapshot`: collect for a window, print a report, exit. Against a cluster the sources
//! run exactly as in the dashboard; with `--demo` the simulated cluster plays its scenario in
//! simulated time, as fast as the machine allows, and the run records when the top hotspot changed.

use std::time::Duration;

use crate::app::{Msg, State};
use crate::config::Config;
use crate::demo::Player;
use crate::demo::scenario::Scenario;
use crate::demo::sim::Sim;
use crate::kubeconfig::Connection;
use crate::model::time::{UnixSecs, now_unix};
use crate::model::update::Scope;
use crate::report::{ExpectationResult, ScenarioRun, TopChange};
use crate::sources::gateway::GatewaySpec;

/// Exit code when `--fail-on SCORE` is given and a hotspot reaches it.
pub const EXIT_HOTSPOT: i32 = 3;

/// Exit code when the window ended blind (no pod list), or, with `--fail-on`, missing anything
/// it was asked to read: a gate must never pass on a cluster it could not see.
pub const EXIT_INCOMPLETE: i32 = 1;

/// The snapshot's exit code, telling `say` why when it is not 0. Blindness wins over a hotspot:
/// a score judged without pods means nothing.
pub fn exit_code(state: &State, fail_on: Option<u32>, mut say: impl FnMut(String)) -> i32 {
    let spots = state.blind_spots();
    for spot in &spots {
        say(format!("incomplete: {}", spot.text));
    }
    if crate::app::visibility::any_blind(&spots) {
        say(match state.logs_only {
            Some(_) => "no log line read: nothing was judged".into(),
            None => "no pod list in the window: nothing was judged".into(),
        });
        return EXIT_INCOMPLETE;
    }
    let top = state.hotspots.first().map_or(0, |h| h.score);
    match fail_on {
        Some(threshold) if top >= threshold => {
            say(format!("a hotspot scored {top}, at or above --fail-on {threshold}"));
            EXIT_HOTSPOT
        }
        Some(threshold) if !spots.is_empty() => {
            say(format!("top score {top} is below --fail-on {threshold}, but what was not seen could be above it"));
            EXIT_INCOMPLETE
        }
        _ => 0,
    }
}

/// Simulated seconds between two rounds of the sources in a demo run (a metrics poll).
const DEMO_STEP_SECS: i64 = 10;

/// When a `snapshot --demo` run's simulated clock starts (2026-01-01T00:00:00Z), whatever the
/// wall clock says: traffic windows are slices aligned to the clock, so a start read from the
/// wall clock gave the same scenario and seed different rates and scores from run to run.
pub const DEMO_EPOCH: UnixSecs = 1_767_225_600;

/// The longest window: a week, of wall-clock time or of simulated time for `--demo`.
const MAX_WINDOW_SECS: i64 = 7 * 24 * 3600;

/// `30s`, `5m`, `1h` or plain seconds.
pub fn parse_window(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: i64 = digits.parse().map_err(|_| format!("bad window {text:?} (try 30s, 5m)"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("bad window {text:?}: unit must be s, m or h")),
    };
    match n.checked_mul(unit_secs) {
        Some(0) => Err("the window must be longer than 0s".into()),
        Some(secs) if secs <= MAX_WINDOW_SECS => Ok(secs),
        _ => Err(format!("window {text:?} is too long: at most {}h", MAX_WINDOW_SECS / 3600)),
    }
}

/// Runs the sources for `window_secs` of wall-clock time, and reads every log taken from its
/// start (`file+all:`, stdin) to its end however long that takes, then ranks what was collected.
/// Without a cluster (`connection` is `None`) only the logs are read, on their own clock.
/// `log_window`: the `--window` asked for over such logs, in the log's time (from its newest line).
pub async fn collect(
    connection: Option<Connection>,
    mut state: State,
    window_secs: i64,
    log_window: Option<i64>,
) -> Result<State, String> {
    let cluster = connection.is_some();
    let mut sources = match connection {
        Some(connection) => crate::tui::start_sources(connection, &state),
        None => {
            state.traffic.follow_log_time();
            crate::tui::Sources::none()
        }
    };
    let history: Vec<String> = state.config.gateway.iter().filter_map(GatewaySpec::history_stream).collect();
    if let Some(window) = log_window {
        limit_logs_to_window(&mut state, window);
    }
    let local_cancel = tokio_util::sync::CancellationToken::new();
    let mut local = crate::tui::start_local_sources(&state, &local_cancel);
    // With no cluster and every log read from its start, nothing waits for the wall clock.
    let follows_now = state.config.gateway.iter().any(|g| g.is_local() && g.history_stream().is_none());
    let mut window_over = !cluster && !follows_now;
    let deadline = tokio::time::sleep(Duration::from_secs(window_secs as u64));
    tokio::pin!(deadline);
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    loop {
        if window_over && history.iter().all(|name| state.streams.get(name).is_some_and(|s| s.caught_up)) {
            break;
        }
        tokio::select! {
            _ = &mut deadline, if !window_over => window_over = true,
            Some(update) = sources.updates.recv() => { state.update(Msg::Source(update)); }
            Some(update) = local.recv() => { state.update(Msg::Source(update)); }
            _ = clock.tick() => {
                state.update(Msg::Tick(now_unix()));
                state.refresh();
            }
        }
    }
    sources.cancel.cancel();
    local_cancel.cancel();
    state.sources_stopped();
    state.update(Msg::Tick(now_unix()));
    state.refresh_for_report();
    Ok(state)
}

/// `--window` over logs read from their start: each file counts from `window` before its newest
/// line (the lines before are read and said so); stdin cannot be looked at ahead, so is whole.
fn limit_logs_to_window(state: &mut State, window: i64) {
    let (forced, mut zone) = (state.log_format.clone(), state.log_zone.clone());
    for spec in state.config.gateway.clone() {
        match spec {
            GatewaySpec::File { path, from_start: true } => {
                let Some(end) = crate::sources::local_log::log_end_time(&path, forced.as_ref(), &mut zone) else {
                    continue;
                };
                // The window's seconds end with the newest line's: `5m` is 300 whole seconds of log.
                state.stream(&crate::sources::local_log::file_stream_name(&path)).since = Some(end - window + 1);
            }
            GatewaySpec::Stdin => {
                state.notice(format!(
                    "--window {window}s is read on files; stdin cannot be looked at ahead, so all of it counts"
                ));
            }
            _ => {}
        }
    }
}

/// Plays `scenario` for `play_secs` simulated seconds from `start`.
pub fn play_demo(scenario: Scenario, play_secs: i64, config: Config, start: UnixSecs) -> (State, ScenarioRun) {
    let onsets: Vec<i64> = scenario.faults.iter().map(|f| f.start_secs).collect();
    let expect = scenario.expect.clone();
    let name = scenario.name.clone();
    let mut config = config;
    crate::demo::demo_events(&scenario, &mut config.events, None);
    let mut state = State::new(config, "kpulse-demo".into(), vec!["kpulse-demo".into()], Scope::All, start);
    state.demo = true;
    let mut player = Player::new(Sim::new(scenario, start));
    let mut top_changes: Vec<TopChange> = Vec::new();
    // Since when the expected culprit has been first without interruption.
    let mut first_since: Option<i64> = None;
    let mut played = 0;
    while played < play_secs {
        let step = DEMO_STEP_SECS.min(play_secs - played);
        player.step(step, &mut state);
        played += step;
        state.refresh_hotspots();
        let top = state.hotspots.first();
        let (label, verdict) =
            top.map_or((String::new(), String::new()), |h| (h.subject.label(), h.verdict().to_string()));
        if top_changes.last().is_none_or(|c| c.subject != label || c.verdict != verdict) {
            top_changes.push(TopChange { at_secs: played, subject: label, score: top.map_or(0, |h| h.score), verdict });
        }
        if let Some(e) = &expect {
            let is_culprit = top.is_some_and(|h| {
                h.subject.label().starts_with(&e.culprit)
                    && e.verdict.as_ref().is_none_or(|v| h.verdict().starts_with(v))
                    && e.evidence.as_ref().is_none_or(|words| h.evidence().iter().any(|line| line.contains(words)))
            });
            first_since = if is_culprit { first_since.or(Some(played)) } else { None };
        }
    }
    let expectation = expect.map(|e| {
        let onset = onsets.iter().copied().min().unwrap_or(0);
        let after = first_since.map(|f| (f - onset).max(0));
        ExpectationResult {
            culprit: e.culprit,
            verdict: e.verdict,
            evidence: e.evidence,
            within_secs: e.within_secs,
            onset_secs: onset,
            ranked_first_after_secs: after,
            met: after.is_some_and(|a| a <= e.within_secs),
        }
    });
    (state, ScenarioRun { name, played_secs: played, fault_onsets_secs: onsets, top_changes, expectation })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(parse_window("30s"), Ok(30));
        assert_eq!(parse_window("5m"), Ok(300));
        assert_eq!(parse_window("90"), Ok(90));
        assert!(parse_window("0s").is_err());
        assert!(parse_window("3d").unwrap_err().contains("unit"));
        assert!(parse_window("soon").is_err());
        assert_eq!(parse_window("168h"), Ok(7 * 24 * 3600));
        // Past a week, and past i64 once multiplied: an error, not an overflow.
        assert!(parse_window("169h").unwrap_err().contains("too long"));
        assert!(parse_window("9223372036854775807h").unwrap_err().contains("too long"));
        assert!(parse_window("99999999999999999999").is_err());
    }
}
