//! What kpulse cannot see right now. A monitoring tool that says "nothing looks wrong" while it
//! is blind is the worst failure it can have, so these lines take the place of that reassurance on
//! screen, and a snapshot with any of them is incomplete.

use super::{SourceStatus, State};
use crate::model::time::format_age;
use crate::model::update::{SourceId, SourceState};

/// How much a blind spot hides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// No pod list: nothing can be judged, and "no hotspots" means nothing.
    Blind,
    /// One kind of data is missing or old (usage, nodes, events, logs); the rest is judged.
    Partial,
}

impl Reach {
    /// How a screen or report line opens.
    pub fn words(self) -> &'static str {
        match self {
            Reach::Blind => "cannot see",
            Reach::Partial => "not seen",
        }
    }

    /// Its name in the JSON report.
    pub fn key(self) -> &'static str {
        match self {
            Reach::Blind => "blind",
            Reach::Partial => "partial",
        }
    }
}

/// Whether any of `spots` leaves kpulse without pods: then no verdict can be trusted.
pub fn any_blind(spots: &[BlindSpot]) -> bool {
    spots.iter().any(|s| s.reach == Reach::Blind)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlindSpot {
    pub reach: Reach,
    pub source: SourceId,
    pub text: String,
}

/// Where usage can come from; any one of them live is enough.
const USAGE_SOURCES: [SourceId; 3] = [SourceId::Cadvisor, SourceId::PodMetrics, SourceId::Prometheus];

/// A source that has said nothing for this long is not "connecting" any more but unanswered.
const SILENT_AFTER_SECS: i64 = 20;

/// A connection error as a person would say it (the client's chain is long and technical).
pub fn plain_reason(reason: &str) -> String {
    let lower = reason.to_lowercase();
    let known = [
        ("connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("deadline has elapsed", "timed out"),
        ("dns error", "host name not found"),
        ("failed to lookup address", "host name not found"),
        ("certificate", "TLS certificate not accepted"),
        ("connection reset", "connection reset"),
        ("network is unreachable", "network unreachable"),
        ("no route to host", "no route to host"),
    ];
    known
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map_or_else(|| reason.to_string(), |(_, plain)| plain.to_string())
}

impl State {
    /// The API server kpulse reads, as the user's kubeconfig names it.
    fn server_name(&self) -> &str {
        self.server.as_deref().unwrap_or("the API server")
    }

    fn stale_after(&self) -> i64 {
        3 * self.config.metrics_interval.as_secs().max(1) as i64
    }

    /// The sources are stopped for good (a snapshot's window is over): no retry will come, so no
    /// countdown is promised; what failed still says it was "retrying" when the run ended.
    pub fn sources_stopped(&mut self) {
        for status in self.sources.values_mut() {
            status.retry_at = None;
        }
    }

    /// "retrying in 4 s" while a failing source waits out its backoff, else "retrying".
    fn retrying(&self, s: &SourceStatus) -> String {
        match s.retry_at.map(|at| at - self.now) {
            Some(wait) if wait > 0 => format!("retrying in {wait} s"),
            _ => "retrying".into(),
        }
    }

    /// Why one source tells nothing right now, if it does not.
    fn source_gap(&self, id: SourceId) -> Option<String> {
        let s = self.sources.get(&id)?;
        let age = format_age(self.now - s.since);
        match &s.state {
            SourceState::Reconnecting(r) if s.last_data.is_some() => Some(format!(
                "{}: lost {age} ago ({}), showing what was seen before; {}",
                id.label(),
                plain_reason(r),
                self.retrying(s)
            )),
            SourceState::Reconnecting(r) => Some(format!("{}: {}, {}", id.label(), plain_reason(r), self.retrying(s))),
            SourceState::Forbidden(r) => Some(format!("{}: not allowed ({r})", id.label())),
            SourceState::Absent(r) => Some(format!("{}: {r}", id.label())),
            SourceState::Connecting if self.now - s.since >= SILENT_AFTER_SECS => {
                Some(format!("{}: no answer after {age}", id.label()))
            }
            SourceState::Connecting => None,
            SourceState::Connected => {
                let silent = s.last_data.map(|t| self.now - t).filter(|&a| id.is_polled() && a > self.stale_after())?;
                Some(format!("{}: no data for {}", id.label(), format_age(silent)))
            }
        }
    }

    fn pods_spot(&self) -> Option<BlindSpot> {
        let blind = |text: String| Some(BlindSpot { reach: Reach::Blind, source: SourceId::Pods, text });
        if let Some(why) = &self.connect_failed {
            // The reason names the context ("cannot use context \"prod\": …", "connecting to
            // context prod timed out after 45s").
            return blind(format!("{why}; nothing is read until :ctx or :ns tries again"));
        }
        let s = self.sources.get(&SourceId::Pods)?;
        let server = self.server_name();
        if !self.pods.synced() {
            return match &s.state {
                SourceState::Reconnecting(r) => {
                    blind(format!("cannot reach {server} ({}), {}", plain_reason(r), self.retrying(s)))
                }
                SourceState::Forbidden(r) => blind(format!("not allowed to list pods at {server} ({r})")),
                SourceState::Absent(r) => blind(format!("{server} serves no pods ({r})")),
                SourceState::Connecting | SourceState::Connected => {
                    blind(format!("waiting for the first pod list from {server} ({})", format_age(self.now - s.since)))
                }
            };
        }
        let text = match &s.state {
            SourceState::Reconnecting(r) => format!(
                "lost the pods at {server} {} ago ({}); showing them as they were, {}",
                format_age(self.now - s.since),
                plain_reason(r),
                self.retrying(s)
            ),
            _ => self.source_gap(SourceId::Pods)?,
        };
        Some(BlindSpot { reach: Reach::Partial, source: SourceId::Pods, text })
    }

    /// Usage is missing only when every usage source kpulse started tells nothing.
    fn usage_spot(&self) -> Option<BlindSpot> {
        let started: Vec<SourceId> = USAGE_SOURCES.into_iter().filter(|id| self.sources.contains_key(id)).collect();
        if started.is_empty() || !self.pods.synced() {
            return None;
        }
        let mut gaps = Vec::new();
        for id in started {
            match self.source_gap(id) {
                Some(gap) => gaps.push(gap),
                // Live, or still within its first answer's time.
                None => return None,
            }
        }
        let text = format!("no CPU or memory usage: {}", gaps.join("; "));
        Some(BlindSpot { reach: Reach::Partial, source: SourceId::Cadvisor, text })
    }

    /// Everything kpulse cannot see now, the most serious first.
    pub fn blind_spots(&self) -> Vec<BlindSpot> {
        if let Some(why) = &self.logs_only {
            // Chosen, not lost: the log is read, and what a cluster would add is named once.
            let text = format!("no cluster ({why}): traffic from the logs only, not joined to pods");
            let mut spots = vec![BlindSpot { reach: Reach::Partial, source: SourceId::Pods, text }];
            // The logs are all there is: none read (a missing file) is blindness.
            let read_nothing = self.streams.values().all(|s| s.matched == 0);
            spots.extend(self.source_gap(SourceId::Gateway).map(|text| BlindSpot {
                reach: if read_nothing { Reach::Blind } else { Reach::Partial },
                source: SourceId::Gateway,
                text,
            }));
            return spots;
        }
        let mut spots: Vec<BlindSpot> = self.pods_spot().into_iter().collect();
        if spots.first().is_some_and(|s| s.reach == Reach::Blind) {
            // Without pods every other source's gap is noise.
            return spots;
        }
        spots.extend(self.usage_spot());
        for id in [SourceId::Nodes, SourceId::Events, SourceId::Gateway, SourceId::Brokers] {
            if let Some(text) = self.source_gap(id) {
                spots.push(BlindSpot { reach: Reach::Partial, source: id, text });
            }
        }
        spots
    }

    /// No hotspot and not blind: worth a line of its own (the all-clear when `spots` is empty,
    /// else "nothing crosses a rule in what kpulse can see").
    pub fn found_nothing(&self, spots: &[BlindSpot]) -> bool {
        self.hotspots.is_empty() && !any_blind(spots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Msg;
    use crate::config::Config;
    use crate::model::store::Change;
    use crate::model::update::Scope;
    use crate::model::update::Update;

    fn state() -> State {
        let mut s = State::new(Config::default(), "ctx".into(), vec!["ctx".into()], Scope::All, 1_000);
        s.server = Some("https://127.0.0.1:1".into());
        s
    }

    fn status(s: &mut State, source: SourceId, state: SourceState) {
        s.update(Msg::Source(Update::Status { source, state }));
    }

    fn tick(s: &mut State, now: i64) {
        s.update(Msg::Tick(now));
    }

    const REFUSED: &str = "connection: client error (Connect): tcp connect error: Connection refused (os error 111)";

    #[test]
    fn a_refused_api_server_is_named_with_its_reason() {
        let mut s = state();
        status(&mut s, SourceId::Pods, SourceState::Reconnecting(REFUSED.into()));
        let spots = s.blind_spots();
        assert_eq!(spots.len(), 1, "{spots:?}");
        assert_eq!(spots[0].reach, Reach::Blind);
        assert_eq!(spots[0].text, "cannot reach https://127.0.0.1:1 (connection refused), retrying");
        assert!(any_blind(&s.blind_spots()));
    }

    #[test]
    fn a_backing_off_source_says_when_it_tries_again_and_counts_down() {
        let mut s = state();
        status(&mut s, SourceId::Pods, SourceState::Reconnecting(REFUSED.into()));
        s.update(Msg::Source(Update::Retrying {
            source: SourceId::Pods,
            after: std::time::Duration::from_millis(3_200),
        }));
        assert_eq!(s.blind_spots()[0].text, "cannot reach https://127.0.0.1:1 (connection refused), retrying in 4 s");
        tick(&mut s, 1_002);
        assert_eq!(s.blind_spots()[0].text, "cannot reach https://127.0.0.1:1 (connection refused), retrying in 2 s");
        // The pause is over and the next try is under way.
        tick(&mut s, 1_005);
        assert_eq!(s.blind_spots()[0].text, "cannot reach https://127.0.0.1:1 (connection refused), retrying");
        // Back: no retry is pending any more.
        status(&mut s, SourceId::Pods, SourceState::Connected);
        assert_eq!(s.sources[&SourceId::Pods].retry_at, None);
    }

    #[test]
    fn a_switch_that_could_not_connect_says_why_until_the_next_switch() {
        let mut s = state();
        s.connect_failed = Some("cannot use context \"prod\": the credential plugin failed (exit code 1)".into());
        let spots = s.blind_spots();
        assert_eq!(spots[0].reach, Reach::Blind);
        assert_eq!(
            spots[0].text,
            "cannot use context \"prod\": the credential plugin failed (exit code 1); nothing is read until :ctx or :ns tries again"
        );
        s.reset_data();
        assert!(s.blind_spots().iter().all(|b| !b.text.contains("credential plugin")), "{:?}", s.blind_spots());
    }

    #[test]
    fn a_finished_snapshot_promises_no_retry() {
        let mut s = state();
        status(&mut s, SourceId::Pods, SourceState::Reconnecting(REFUSED.into()));
        s.update(Msg::Source(Update::Retrying { source: SourceId::Pods, after: std::time::Duration::from_secs(1) }));
        s.sources_stopped();
        assert_eq!(s.blind_spots()[0].text, "cannot reach https://127.0.0.1:1 (connection refused), retrying");
    }

    #[test]
    fn waiting_for_pods_is_blind_and_says_for_how_long() {
        let mut s = state();
        tick(&mut s, 1_012);
        let spots = s.blind_spots();
        assert_eq!(spots[0].text, "waiting for the first pod list from https://127.0.0.1:1 (12s)");
        assert!(any_blind(&s.blind_spots()));
    }

    fn listed(s: &mut State) {
        s.update(Msg::Source(Update::Pods(Change::InitStart)));
        s.update(Msg::Source(Update::Pods(Change::InitDone)));
        status(s, SourceId::Pods, SourceState::Connected);
        status(s, SourceId::Nodes, SourceState::Connected);
        status(s, SourceId::Events, SourceState::Connected);
    }

    #[test]
    fn a_listed_cluster_with_live_usage_has_no_blind_spot() {
        let mut s = state();
        listed(&mut s);
        status(&mut s, SourceId::Cadvisor, SourceState::Connected);
        s.update(Msg::Source(Update::PodUsage { at: 1_000, source: SourceId::Cadvisor, usages: vec![] }));
        assert_eq!(s.blind_spots(), vec![]);
        assert!(!any_blind(&s.blind_spots()));
    }

    #[test]
    fn one_live_usage_source_is_enough() {
        let mut s = state();
        listed(&mut s);
        status(&mut s, SourceId::Cadvisor, SourceState::Absent("node proxy refused".into()));
        status(&mut s, SourceId::PodMetrics, SourceState::Connected);
        s.update(Msg::Source(Update::PodUsage { at: 1_000, source: SourceId::PodMetrics, usages: vec![] }));
        assert_eq!(s.blind_spots(), vec![]);
    }

    #[test]
    fn every_usage_source_down_is_a_partial_blind_spot_naming_each() {
        let mut s = state();
        listed(&mut s);
        status(&mut s, SourceId::Cadvisor, SourceState::Absent("node proxy refused".into()));
        status(&mut s, SourceId::PodMetrics, SourceState::Absent("metrics.k8s.io is not served".into()));
        let spots = s.blind_spots();
        assert_eq!(spots.len(), 1, "{spots:?}");
        assert_eq!(spots[0].reach, Reach::Partial);
        assert_eq!(
            spots[0].text,
            "no CPU or memory usage: cadvisor: node proxy refused; pod metrics: metrics.k8s.io is not served"
        );
        assert!(!any_blind(&s.blind_spots()));
    }

    #[test]
    fn a_polled_source_that_went_quiet_says_for_how_long() {
        let mut s = state();
        listed(&mut s);
        status(&mut s, SourceId::Cadvisor, SourceState::Connected);
        s.update(Msg::Source(Update::PodUsage { at: 1_000, source: SourceId::Cadvisor, usages: vec![] }));
        let later = 1_000 + 3 * s.config.metrics_interval.as_secs() as i64 + 5;
        tick(&mut s, later);
        let spots = s.blind_spots();
        assert_eq!(spots.len(), 1, "{spots:?}");
        assert!(spots[0].text.starts_with("no CPU or memory usage: cadvisor: no data for "), "{spots:?}");
    }

    #[test]
    fn a_lost_pod_watch_says_since_when_and_keeps_the_rows() {
        let mut s = state();
        listed(&mut s);
        s.update(Msg::Source(Update::Pods(Change::Applied(crate::model::pod::PodInfo::default()))));
        tick(&mut s, 1_030);
        status(&mut s, SourceId::Pods, SourceState::Reconnecting(REFUSED.into()));
        tick(&mut s, 1_045);
        let spots = s.blind_spots();
        assert_eq!(spots[0].reach, Reach::Partial);
        assert_eq!(
            spots[0].text,
            "lost the pods at https://127.0.0.1:1 15s ago (connection refused); showing them as they were, retrying"
        );
        assert_eq!(s.pods.len(), 1);
    }

    #[test]
    fn a_source_that_never_answers_is_named_after_a_while() {
        let mut s = state();
        listed(&mut s);
        status(&mut s, SourceId::Cadvisor, SourceState::Connecting);
        assert_eq!(s.blind_spots(), vec![], "a fresh source gets its time");
        tick(&mut s, 1_000 + SILENT_AFTER_SECS);
        assert_eq!(s.blind_spots()[0].text, "no CPU or memory usage: cadvisor: no answer after 20s");
    }

    #[test]
    fn plain_reasons() {
        assert_eq!(plain_reason(REFUSED), "connection refused");
        assert_eq!(plain_reason("timed out after 5s"), "timed out");
        assert_eq!(plain_reason("HTTP 500: boom"), "HTTP 500: boom");
    }
}
