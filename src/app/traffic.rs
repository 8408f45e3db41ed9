//! The Traffic view's rows, and the per-stream bookkeeping of gateway logs: which format each
//! stream is in, how many lines matched and how many were skipped.

use std::cmp::Ordering;

use hashbrown::HashMap;

use crate::analysis::traffic::Resolver;
use crate::model::accesslog::Format;
use crate::model::accesslog::zone::LogZone;
use crate::model::pod::PodKey;
use crate::model::time::UnixSecs;
use crate::model::traffic::{Family, Summary, Traffic};

use super::rows::cmp_opt;
use super::table::Column;

/// One log stream: a gateway pod's log, a file, stdin.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// Set by `--log-format`, or detected from the first line that any format reads.
    pub format: Option<Format>,
    pub matched: u64,
    /// Lines no format reads (the controller's own logs, a torn write): counted, skipped.
    pub skipped: u64,
    /// An incomplete last line, kept until the rest arrives.
    partial: String,
    /// Read from its start, it reached the end of what was written ([`Update::LogCaughtUp`]).
    ///
    /// [`Update::LogCaughtUp`]: crate::model::update::Update::LogCaughtUp
    pub caught_up: bool,
    /// Lines older than this are read and counted here, not in the traffic: a snapshot's
    /// `--window` over a log, in the log's own time.
    pub since: Option<UnixSecs>,
    pub before_window: u64,
    /// Lines older than the longest window when read: in the totals only.
    pub late: u64,
    /// Where zone-less times (HAProxy) were written.
    pub zone: LogZone,
    /// A mesh sidecar's log: only its outbound lines (the calls its pod made) are counted; the
    /// inbound ones are the callee's side of calls counted where they were made.
    outbound_only: bool,
}

impl Stream {
    pub fn with_format(format: Option<Format>) -> Stream {
        Stream { format, ..Stream::default() }
    }

    /// A mesh sidecar's log stream.
    pub fn outbound_calls() -> Stream {
        Stream { outbound_only: true, ..Stream::default() }
    }

    pub fn in_zone(self, zone: LogZone) -> Stream {
        Stream { zone, ..self }
    }

    /// Parses the complete lines of `chunk` into `traffic`; an unfinished last line waits for
    /// the next chunk.
    pub fn ingest(&mut self, chunk: &str, traffic: &mut Traffic, now: UnixSecs) {
        let mut text = chunk;
        let joined;
        if !self.partial.is_empty() {
            joined = std::mem::take(&mut self.partial) + chunk;
            text = &joined;
        }
        let (complete, rest) = match text.rfind('\n') {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => ("", text),
        };
        // A line longer than this is not an access log line; do not hold it forever.
        if rest.len() < 64 * 1024 {
            self.partial = rest.to_string();
        } else {
            self.skipped += 1;
        }
        // memchr's line search, not `str::split`'s char searcher: a tenth of the ingest otherwise.
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', complete.as_bytes()).chain([complete.len()]) {
            let line = crate::model::accesslog::trim_line_end(&complete[start..end]);
            start = end + 1;
            if line.is_empty() {
                continue;
            }
            if self.format.is_none() {
                self.format = Format::detect(line);
            }
            match self.format.as_ref().and_then(|f| f.parse(line)) {
                Some(mut record) => {
                    self.matched += 1;
                    if self.outbound_only && !record.backend.starts_with("outbound|") {
                        continue;
                    }
                    if record.zoneless {
                        record.time = record.time.map(|t| self.zone.to_utc(t));
                    }
                    if let (Some(since), Some(t)) = (self.since, record.time)
                        && t < since
                    {
                        self.before_window += 1;
                        continue;
                    }
                    let late = traffic.late;
                    traffic.record(&record, now);
                    self.late += traffic.late - late;
                }
                None => self.skipped += 1,
            }
        }
    }

    /// Most of what was read is older than every window, which then show next to nothing.
    pub fn mostly_late(&self) -> bool {
        self.matched >= 20 && self.late * 2 > self.matched
    }

    /// Said once, when a stream becomes [`Stream::mostly_late`]: why the windows look empty, and
    /// the likely cause when the times carried no zone.
    pub fn late_warning(&self, name: &str, newest: Option<UnixSecs>) -> Option<String> {
        if !self.mostly_late() {
            return None;
        }
        let zone_hint = match self.format.as_ref().map(Format::name) {
            Some("haproxy") => format!(
                "; its times carry no zone and were read as {}: if the gateway runs elsewhere, set --log-tz",
                self.zone.name()
            ),
            _ => String::new(),
        };
        Some(format!(
            "{name}: {} of {} lines are older than {} min (the newest at {}), so only the totals hold them{zone_hint}",
            self.late,
            self.matched,
            crate::model::traffic::WINDOWS[1] / 60,
            newest.map_or_else(|| "-".to_string(), crate::model::time::format_utc),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficGroup {
    Services,
    Pods,
    Routes,
}

impl TrafficGroup {
    pub fn label(self) -> &'static str {
        match self {
            TrafficGroup::Services => "services",
            TrafficGroup::Pods => "pods",
            TrafficGroup::Routes => "routes",
        }
    }

    pub fn next(self) -> TrafficGroup {
        match self {
            TrafficGroup::Services => TrafficGroup::Pods,
            TrafficGroup::Pods => TrafficGroup::Routes,
            TrafficGroup::Routes => TrafficGroup::Services,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrafficRow {
    /// The key in its [`Family`], for the sparkline series.
    pub key: String,
    /// What the row is: `shop/payment`, a pod, a route.
    pub name: String,
    /// Where it leads: the backend as the gateway names it, a pod's service, a route's service.
    pub target: String,
    pub now: Summary,
    pub five_min: Summary,
}

/// Rows of one group. Upstreams become pods through their IP; an address that is no pod's
/// (yet) is shown as the address.
pub fn build_traffic_rows(
    traffic: &Traffic,
    group: TrafficGroup,
    pods_by_ip: &HashMap<&str, &PodKey>,
    resolver: &Resolver,
    now: UnixSecs,
) -> Vec<TrafficRow> {
    let family: &Family = match group {
        TrafficGroup::Services => &traffic.backends,
        TrafficGroup::Pods => &traffic.upstreams,
        TrafficGroup::Routes => &traffic.routes,
    };
    let mut rows: Vec<TrafficRow> = family
        .stats
        .iter()
        .map(|(key, stats)| {
            let (name, target) = match group {
                TrafficGroup::Services => (resolver.service_of(key).unwrap_or_else(|| key.clone()), key.clone()),
                TrafficGroup::Pods => match pods_by_ip.get(key.as_str()) {
                    Some(pod) => (format!("{}/{}", pod.namespace, pod.name), key.clone()),
                    // A server the gateway names (HAProxy's `backend/server`) leads to its backend.
                    None if key.parse::<std::net::IpAddr>().is_err() && !stats.backend.is_empty() => {
                        let backend = stats.backend.as_str();
                        (key.clone(), resolver.service_of(backend).unwrap_or_else(|| backend.to_string()))
                    }
                    None => (key.clone(), "(no pod with this IP)".to_string()),
                },
                TrafficGroup::Routes => {
                    let backend = stats.backend.as_str();
                    (key.clone(), resolver.service_of(backend).unwrap_or_else(|| backend.to_string()))
                }
            };
            TrafficRow { key: key.clone(), name, target, now: stats.summary(0, now), five_min: stats.summary(1, now) }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.key.cmp(&b.key)));
    rows
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrafficColumn {
    Name,
    Target,
    Rps,
    ErrPct,
    P50,
    P95,
    P99,
    Overhead,
    Upstream,
    Auth,
    Retries,
    Bytes,
    Requests5m,
    Trend,
}

impl TrafficColumn {
    pub const ALL: [TrafficColumn; 14] = [
        TrafficColumn::Name,
        TrafficColumn::Target,
        TrafficColumn::Rps,
        TrafficColumn::ErrPct,
        TrafficColumn::P50,
        TrafficColumn::P95,
        TrafficColumn::P99,
        TrafficColumn::Overhead,
        TrafficColumn::Upstream,
        TrafficColumn::Auth,
        TrafficColumn::Retries,
        TrafficColumn::Bytes,
        TrafficColumn::Requests5m,
        TrafficColumn::Trend,
    ];
}

impl Column for TrafficColumn {
    type Row = TrafficRow;
    type Key = String;
    fn all() -> &'static [Self] {
        &TrafficColumn::ALL
    }
    fn title(self) -> &'static str {
        match self {
            TrafficColumn::Name => "NAME",
            TrafficColumn::Target => "BACKEND",
            TrafficColumn::Rps => "RPS",
            TrafficColumn::ErrPct => "5XX%",
            TrafficColumn::P50 => "P50",
            TrafficColumn::P95 => "P95",
            TrafficColumn::P99 => "P99",
            TrafficColumn::Overhead => "GW P95",
            TrafficColumn::Upstream => "UPSTR%",
            TrafficColumn::Auth => "401/3",
            TrafficColumn::Retries => "RETRY",
            TrafficColumn::Bytes => "OUT/s",
            TrafficColumn::Requests5m => "REQ 5m",
            TrafficColumn::Trend => "RPS TREND",
        }
    }
    fn descending_by_default(self) -> bool {
        !matches!(self, TrafficColumn::Name | TrafficColumn::Target)
    }
    fn compare(self, a: &TrafficRow, b: &TrafficRow, _now: UnixSecs) -> Ordering {
        let (x, y) = (&a.now, &b.now);
        match self {
            TrafficColumn::Name => a.name.cmp(&b.name),
            TrafficColumn::Target => a.target.cmp(&b.target),
            TrafficColumn::Rps | TrafficColumn::Trend => x.rps.total_cmp(&y.rps),
            TrafficColumn::ErrPct => x.error_ratio.total_cmp(&y.error_ratio),
            TrafficColumn::P50 => cmp_opt(x.p50, y.p50),
            TrafficColumn::P95 => cmp_opt(x.p95, y.p95),
            TrafficColumn::P99 => cmp_opt(x.p99, y.p99),
            TrafficColumn::Overhead => cmp_opt(x.overhead_p95, y.overhead_p95),
            TrafficColumn::Upstream => cmp_opt(x.upstream_share, y.upstream_share),
            TrafficColumn::Auth => x.auth_denied.cmp(&y.auth_denied),
            TrafficColumn::Retries => x.retries.cmp(&y.retries),
            TrafficColumn::Bytes => x.bytes_per_sec.total_cmp(&y.bytes_per_sec),
            TrafficColumn::Requests5m => a.five_min.requests.cmp(&b.five_min.requests),
        }
    }
    fn key(row: &TrafficRow) -> String {
        row.key.clone()
    }
    fn is(row: &TrafficRow, key: &String) -> bool {
        row.key == *key
    }
    fn matches(r: &TrafficRow, filter: &str) -> bool {
        super::rows::matches_filter(filter, &[&r.name, &r.target])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"10.0.0.9 - - [01/Jan/2024:12:00:00 +0000] "GET /api/cart/7 HTTP/1.1" 200 12 "-" "k6" 100 0.020 [shop-cart-80] [] 10.1.0.4:8080 12 0.015 200 abc"#;

    #[test]
    fn a_line_split_across_chunks_counts_once_and_controller_logs_are_skipped() {
        let now = 1_704_110_405;
        let mut traffic = Traffic::new(now, 900);
        let mut stream = Stream::default();
        let (head, tail) = LINE.split_at(40);
        stream.ingest(&format!("I0902 19:52:29.236097 6 status.go:85] updating\n{head}"), &mut traffic, now);
        assert_eq!((stream.matched, stream.skipped), (0, 1));
        stream.ingest(&format!("{tail}\n{LINE}\n"), &mut traffic, now);
        assert_eq!((stream.matched, stream.skipped), (2, 1));
        assert_eq!(stream.format.as_ref().map(Format::name), Some("ingress-nginx"));

        let cart = PodKey { namespace: "shop".into(), name: "cart-1".into() };
        let pods: HashMap<&str, &PodKey> = [("10.1.0.4", &cart)].into_iter().collect();
        let known = Default::default();
        let resolver = Resolver { known: &known, namespaces: ["shop"].into() };
        let rows = build_traffic_rows(&traffic, TrafficGroup::Pods, &pods, &resolver, now);
        assert_eq!((rows[0].name.as_str(), rows[0].now.requests), ("shop/cart-1", 2));
        let rows = build_traffic_rows(&traffic, TrafficGroup::Services, &pods, &resolver, now);
        assert_eq!((rows[0].name.as_str(), rows[0].target.as_str()), ("shop/cart", "shop-cart-80"));
        let rows = build_traffic_rows(&traffic, TrafficGroup::Routes, &pods, &resolver, now);
        assert_eq!((rows[0].name.as_str(), rows[0].target.as_str()), ("/api/cart/:id", "shop/cart"));
    }

    #[test]
    fn a_log_mostly_older_than_the_windows_says_so_once_with_the_zone_hint() {
        use crate::app::{Msg, State};
        use crate::config::Config;
        use crate::model::update::Scope;
        use crate::model::update::Update;
        // HAProxy logs local time without a zone; read as UTC, a New York gateway's lines of
        // "now" look five hours old.
        let haproxy = |t: &str| {
            format!(
                r#"10.0.1.2:33317 [{t}] fe shop-cart-80/pod0 0/0/1/20/21 200 12 - - ---- 1/1/1/1/0 0/0 "GET /api/cart/7 HTTP/1.1""#
            )
        };
        let now = 1_704_110_400 + 5 * 3600; // 2024-01-01 17:00 UTC = 12:00 in New York
        let config = Config { log_tz: Some("UTC".into()), ..Config::default() };
        let mut state = State::new(config, "ctx".into(), vec![], Scope::All, now);
        let lines: String = (0..40).map(|i| haproxy(&format!("01/Jan/2024:12:00:{i:02}.000")) + "\n").collect();
        state.update(Msg::Source(Update::AccessLog { stream: "file:haproxy.log".into(), chunk: lines.clone() }));
        state.update(Msg::Source(Update::AccessLog { stream: "file:haproxy.log".into(), chunk: lines }));
        let warnings: Vec<&String> =
            state.notices.iter().map(|(_, n)| n).filter(|n| n.contains("older than")).collect();
        assert_eq!(warnings.len(), 1, "said once: {:?}", state.notices);
        assert!(warnings[0].starts_with("file:haproxy.log: 40 of 40 lines are older than 5 min"), "{}", warnings[0]);
        assert!(warnings[0].contains("read as UTC") && warnings[0].contains("--log-tz"), "{}", warnings[0]);

        // In the gateway's own zone the same lines are now, and in the windows.
        let config = Config { log_tz: Some("America/New_York".into()), ..Config::default() };
        let mut state = State::new(config, "ctx".into(), vec![], Scope::All, now + 60);
        let lines: String = (0..40).map(|i| haproxy(&format!("01/Jan/2024:12:00:{i:02}.000")) + "\n").collect();
        state.update(Msg::Source(Update::AccessLog { stream: "file:haproxy.log".into(), chunk: lines }));
        assert!(state.notices.iter().all(|(_, n)| !n.contains("older than")), "{:?}", state.notices);
        assert_eq!(state.traffic.late, 0);
        assert_eq!(state.traffic.gateway.summary(1, now + 60).requests, 40);
    }
}
