//! Gateway traffic, aggregated from access-log records: per route, per backend as the gateway
//! names it, per upstream IP, and for the whole gateway. Each keeps totals since start and
//! sliding 1-minute and 5-minute windows made of 10-second slices: a slice's counts and sketches
//! are added to each window when recorded and subtracted when it leaves, so reading a window
//! never rescans history.

use std::collections::VecDeque;

use super::accesslog::Record;
use super::bytes::same_bytes;
use super::keyed::Keyed;
use super::series::Series;
use super::sketch::{Bin, BinMemo, Sketch, Tally};
use super::time::UnixSecs;

pub const SLICE_SECS: i64 = 10;
/// The windows kept, in seconds: the table reads the first, the detail both.
pub const WINDOWS: [i64; 2] = [60, 300];

/// Caps that keep memory bounded under a stream of unique paths or churning pods; what does
/// not fit is counted under an overflow key instead of being dropped.
pub const MAX_ROUTES: usize = 2_000;
pub const MAX_BACKENDS: usize = 2_000;
pub const MAX_UPSTREAMS: usize = 50_000;
pub const OVERFLOW_KEY: &str = "(other)";

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub requests: u64,
    /// By status class: 1xx … 5xx; status 0 (client gone before a response) is in none.
    pub by_class: [u64; 5],
    /// 401 and 403: refused by authentication/authorisation, often at the gateway.
    pub auth_denied: u64,
    pub bytes: u64,
    /// Extra upstream attempts (the gateway tried another server).
    pub retries: u64,
    /// Requests whose backend answered differently from what the client got, or not at all.
    pub upstream_failed: u64,
    pub cache_hits: u64,
    pub cache_lookups: u64,
    /// Requests with both a total and an upstream time, and those times summed.
    pub timed: u64,
    pub total_secs: f64,
    pub upstream_secs: f64,
}

impl Counts {
    /// `self += o`.
    fn plus(&mut self, o: &Counts) {
        self.requests += o.requests;
        for (a, b) in self.by_class.iter_mut().zip(o.by_class) {
            *a += b;
        }
        self.auth_denied += o.auth_denied;
        self.bytes += o.bytes;
        self.retries += o.retries;
        self.upstream_failed += o.upstream_failed;
        self.cache_hits += o.cache_hits;
        self.cache_lookups += o.cache_lookups;
        self.timed += o.timed;
        self.total_secs += o.total_secs;
        self.upstream_secs += o.upstream_secs;
    }

    fn add(&mut self, o: &Counts, sign: i64) {
        let f = |a: &mut u64, b: u64| *a = (*a as i64 + sign * b as i64).max(0) as u64;
        f(&mut self.requests, o.requests);
        for (a, b) in self.by_class.iter_mut().zip(o.by_class) {
            f(a, b);
        }
        f(&mut self.auth_denied, o.auth_denied);
        f(&mut self.bytes, o.bytes);
        f(&mut self.retries, o.retries);
        f(&mut self.upstream_failed, o.upstream_failed);
        f(&mut self.cache_hits, o.cache_hits);
        f(&mut self.cache_lookups, o.cache_lookups);
        f(&mut self.timed, o.timed);
        self.total_secs = (self.total_secs + sign as f64 * o.total_secs).max(0.0);
        self.upstream_secs = (self.upstream_secs + sign as f64 * o.upstream_secs).max(0.0);
    }

    pub fn errors(&self) -> u64 {
        self.by_class[4]
    }
}

/// One slice's counts while it is open, as u32 lanes (a 10-second slice never holds four billion
/// requests): a line adds its [`Observation`] here, twelve lanes as one array, in several stats.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct SliceCounts {
    /// requests, by status class ×5, auth denied, retries, upstream failed, cache hits, cache
    /// lookups, timed: as in [`Counts`].
    lanes: [u32; 12],
    bytes: u64,
    total_secs: f64,
    upstream_secs: f64,
}

const REQUESTS: usize = 0;
const BY_CLASS: usize = 1;
const AUTH_DENIED: usize = 6;
const RETRIES: usize = 7;
const UPSTREAM_FAILED: usize = 8;
const CACHE_HITS: usize = 9;
const CACHE_LOOKUPS: usize = 10;
const TIMED: usize = 11;

impl SliceCounts {
    fn of(r: &Record) -> SliceCounts {
        let mut c = SliceCounts::default();
        let lanes = &mut c.lanes;
        lanes[REQUESTS] = 1;
        if (100..600).contains(&r.status) {
            lanes[BY_CLASS + usize::from(r.status / 100 - 1)] = 1;
        }
        lanes[AUTH_DENIED] = u32::from(r.status == 401 || r.status == 403);
        lanes[RETRIES] = u32::from(r.attempts.saturating_sub(1));
        let failed = match r.upstream_status {
            Some(up) => up >= 500 || (r.attempts > 0 && up != r.status && r.status >= 500),
            None => r.attempts == 0 && r.status >= 500,
        };
        lanes[UPSTREAM_FAILED] = u32::from(failed);
        if !r.cache.is_empty() {
            lanes[CACHE_LOOKUPS] = 1;
            lanes[CACHE_HITS] = u32::from(r.cache == "HIT");
        }
        c.bytes = r.bytes_sent;
        if let (Some(t), Some(u)) = (r.total_secs, r.upstream_secs) {
            lanes[TIMED] = 1;
            c.total_secs = t;
            c.upstream_secs = u;
        }
        c
    }

    /// The per-line path: branch-free, the lanes as one array.
    fn plus(&mut self, o: &SliceCounts) {
        for (a, b) in self.lanes.iter_mut().zip(o.lanes) {
            *a = a.wrapping_add(b);
        }
        self.bytes += o.bytes;
        self.total_secs += o.total_secs;
        self.upstream_secs += o.upstream_secs;
    }

    fn widen(&self) -> Counts {
        let lane = |i: usize| u64::from(self.lanes[i]);
        Counts {
            requests: lane(REQUESTS),
            by_class: std::array::from_fn(|k| lane(BY_CLASS + k)),
            auth_denied: lane(AUTH_DENIED),
            bytes: self.bytes,
            retries: lane(RETRIES),
            upstream_failed: lane(UPSTREAM_FAILED),
            cache_hits: lane(CACHE_HITS),
            cache_lookups: lane(CACHE_LOOKUPS),
            timed: lane(TIMED),
            total_secs: self.total_secs,
            upstream_secs: self.upstream_secs,
        }
    }
}

/// One request reduced once to what every bucket it lands in adds (a line lands in up to twelve).
struct Observation {
    counts: SliceCounts,
    latency: Option<Bin>,
    overhead: Option<Bin>,
}

impl Observation {
    fn of(r: &Record, bins: &mut BinMemo) -> Observation {
        Observation {
            counts: SliceCounts::of(r),
            latency: r.total_secs.map(|t| bins.of(t)),
            overhead: r.total_secs.zip(r.upstream_secs).map(|(t, u)| bins.of(t - u)),
        }
    }
}

/// The slice being filled, kept inside its stats: per line, twelve lanes added and one pair of
/// bins pushed. The bins reach the sketches in batches ([`Tally`]), when the list is full and when
/// the slice closes; a search in a sketch per line and stats was a fifth of the ingest.
#[derive(Debug, Clone, Default, PartialEq)]
struct OpenSlice {
    start: i64,
    counts: SliceCounts,
    /// Latency and overhead bins ([`Bin::pack`]) not yet in `latency` and `overhead`.
    pending: Vec<(u16, u16)>,
    latency: Sketch,
    overhead: Sketch,
}

/// Bins an open slice holds before they go to its sketches: 4 KiB.
const PENDING_MAX: usize = 1024;

impl OpenSlice {
    fn is_empty(&self) -> bool {
        self.counts.lanes[REQUESTS] == 0
    }

    fn observe(&mut self, o: &Observation, tally: &mut Tally) {
        self.counts.plus(&o.counts);
        self.pending.push((Bin::pack(o.latency), Bin::pack(o.overhead)));
        if self.pending.len() >= PENDING_MAX {
            self.fold(tally);
        }
    }

    /// Brings the pending bins into the sketches, latency then overhead.
    fn fold(&mut self, tally: &mut Tally) {
        self.pending.iter().filter_map(|pair| Bin::unpack(pair.0)).for_each(|bin| tally.add(bin));
        tally.drain_into(&mut self.latency);
        self.pending.iter().filter_map(|pair| Bin::unpack(pair.1)).for_each(|bin| tally.add(bin));
        tally.drain_into(&mut self.overhead);
        self.pending.clear();
    }

    /// The slice as a closed bucket, leaving it empty (its pending list keeps its capacity).
    fn close(&mut self, tally: &mut Tally) -> Bucket {
        self.fold(tally);
        let bucket = Bucket {
            counts: self.counts.widen(),
            latency: std::mem::take(&mut self.latency),
            overhead: std::mem::take(&mut self.overhead),
        };
        self.counts = SliceCounts::default();
        bucket
    }

    /// What the slice holds so far, without changing it (for a reader).
    fn snapshot(&self) -> Bucket {
        let mut bucket =
            Bucket { counts: self.counts.widen(), latency: self.latency.clone(), overhead: self.overhead.clone() };
        for &(latency, overhead) in &self.pending {
            if let Some(bin) = Bin::unpack(latency) {
                bucket.latency.add_bin(bin);
            }
            if let Some(bin) = Bin::unpack(overhead) {
                bucket.overhead.add_bin(bin);
            }
        }
        bucket
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Bucket {
    counts: Counts,
    latency: Sketch,
    /// Total minus upstream time per request: what the gateway itself added.
    overhead: Sketch,
}

impl Bucket {
    fn observe(&mut self, o: &Observation) {
        self.counts.plus(&o.counts.widen());
        if let Some(bin) = o.latency {
            self.latency.add_bin(bin);
        }
        if let Some(bin) = o.overhead {
            self.overhead.add_bin(bin);
        }
    }

    fn add(&mut self, o: &Bucket, sign: i64) {
        self.counts.add(&o.counts, sign);
        if sign > 0 {
            self.latency.merge(&o.latency);
            self.overhead.merge(&o.overhead);
        } else {
            self.latency.subtract(&o.latency);
            self.overhead.subtract(&o.overhead);
        }
    }
}

/// What a window says, ready to show.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub requests: u64,
    pub rps: f64,
    /// 5xx share of requests.
    pub error_ratio: f64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub auth_denied: u64,
    pub retries: u64,
    pub upstream_failed: u64,
    pub bytes_per_sec: f64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    /// p95 of (total − upstream) per request.
    pub overhead_p95: Option<f64>,
    /// Mean upstream share of the total time, 0–1.
    pub upstream_share: Option<f64>,
    pub cache_hit_ratio: Option<f64>,
}

/// Per line, only the open slice is touched: totals are the retired slices plus the live ones,
/// and the windows (kept out of line, read once a second) change when a slice closes.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// The slice the windows end at, being filled.
    open: OpenSlice,
    /// Slices older than the longest window, and lines that arrived that late: in the totals
    /// and the whole-log summary.
    retired: Bucket,
    /// Closed slices, newest last; start times ascending, within the longest window, all before
    /// the open slice's.
    slices: VecDeque<(i64, Bucket)>,
    /// For a route or an upstream address: the backend it last served.
    pub backend: String,
    read_side: Box<ReadSide>,
}

#[derive(Debug, Clone, PartialEq)]
struct ReadSide {
    windows: [Bucket; WINDOWS.len()],
    /// Requests per second per slice, for sparklines.
    rps: Series,
    /// p95 latency per slice with requests: the baseline a regression is measured against.
    p95: Series,
    first_seen: i64,
}

impl Stats {
    fn new(retention_secs: i64, at: i64) -> Stats {
        Stats {
            open: OpenSlice::default(),
            retired: Bucket::default(),
            slices: VecDeque::new(),
            backend: String::new(),
            read_side: Box::new(ReadSide {
                windows: Default::default(),
                rps: Series::new(SLICE_SECS, retention_secs),
                p95: Series::new(SLICE_SECS, retention_secs),
                first_seen: at,
            }),
        }
    }

    /// Everything counted since start.
    pub fn total(&self) -> Counts {
        let mut total = self.retired.counts;
        for (_, b) in &self.slices {
            total.plus(&b.counts);
        }
        total.plus(&self.open.counts.widen());
        total
    }

    /// Requests per second per slice, for sparklines.
    pub fn rps(&self) -> &Series {
        &self.read_side.rps
    }

    /// When the first request was counted.
    pub fn first_seen(&self) -> UnixSecs {
        self.read_side.first_seen
    }

    /// p95 latency per finished slice that had requests.
    pub fn p95_series(&self) -> &Series {
        &self.read_side.p95
    }

    /// Remembers the backend served last. A pod behind several services changes backend line
    /// by line: the string's buffer is reused, not reallocated each time.
    fn note_backend(&mut self, backend: &str) {
        if !backend.is_empty() && !same_bytes(self.backend.as_bytes(), backend.as_bytes()) {
            self.backend.clear();
            self.backend.push_str(backend);
        }
    }

    /// Adds a request to its slice. The windows hold the closed slices only; a late line for a
    /// closed slice still in a window is added there too.
    fn record(&mut self, o: &Observation, slice: Option<i64>, current: i64, tally: &mut Tally) {
        let Some(slice) = slice else {
            self.retired.observe(o);
            return;
        };
        if slice == current {
            if self.open.start != current {
                // Every slice change closes open slices ([`Stats::advance`]): this one is empty
                // unless a caller skipped that, and then it is kept, closed, all the same.
                self.close_open(tally);
                self.open.start = current;
            }
            return self.open.observe(o, tally);
        }
        if slice < current {
            for (w, window) in WINDOWS.iter().zip(self.read_side.windows.iter_mut()) {
                if slice > current - w {
                    window.observe(o);
                }
            }
        }
        self.closed_slice(slice).observe(o);
    }

    /// The closed slice starting at `slice`, made (empty) if missing.
    fn closed_slice(&mut self, slice: i64) -> &mut Bucket {
        // Nearly always the newest: a slice that just closed. (A search through the slices reads
        // a cold cache line per step.)
        let at = match self.slices.back() {
            Some((newest, _)) if *newest >= slice => self.slices.partition_point(|(s, _)| *s < slice),
            _ => self.slices.len(),
        };
        if self.slices.get(at).is_none_or(|(s, _)| *s != slice) {
            self.slices.insert(at, (slice, Bucket::default()));
        }
        &mut self.slices[at].1
    }

    /// Moves the open slice, if it holds anything, among the closed ones.
    fn close_open(&mut self, tally: &mut Tally) {
        if !self.open.is_empty() {
            let b = self.open.close(tally);
            let slot = self.closed_slice(self.open.start);
            // Nearly always a new slice: moved in, not merged.
            if slot.counts.requests == 0 {
                *slot = b;
            } else {
                slot.add(&b, 1);
            }
        }
    }

    /// Moves the windows from ending at slice `old` to ending at `new`: a slice that closed joins
    /// them, one that aged out leaves; finished slices' rates go to the sparkline series.
    fn advance(&mut self, old: i64, new: i64, tally: &mut Tally) {
        if self.open.start < new {
            self.close_open(tally);
        }
        let read = &mut *self.read_side;
        // Slices are in time order: those leaving a window are at the front (start ≤ new − w),
        // those joining it at the back (start ≥ old); the rest are not looked at.
        for (w, window) in WINDOWS.iter().zip(read.windows.iter_mut()) {
            for (s, b) in self.slices.iter().take_while(|(s, _)| *s <= new - w) {
                if *s > old - w && *s < old {
                    window.add(b, -1);
                }
            }
            for (s, b) in self.slices.iter().rev().take_while(|(s, _)| *s >= old) {
                if *s < new && *s > new - w {
                    window.add(b, 1);
                }
            }
        }
        // A slice without requests is a zero, not a gap.
        let first = old.max(new - read.rps.capacity() as i64 * SLICE_SECS);
        for s in (first..new).step_by(SLICE_SECS as usize) {
            let slice = self.slices.iter().rev().find(|(at, _)| *at == s).map(|(_, b)| b);
            read.rps.push(s, slice.map_or(0, |b| b.counts.requests) as f64 / SLICE_SECS as f64);
            if let Some(p95) = slice.and_then(|b| b.latency.quantile(0.95)) {
                read.p95.push(s, p95);
            }
        }
        while self.slices.front().is_some_and(|(s, _)| *s <= new - WINDOWS[1]) {
            if let Some((_, b)) = self.slices.pop_front() {
                self.retired.add(&b, 1);
            }
        }
    }

    /// The window of `WINDOWS[w]` seconds ending at `now`.
    pub fn summary(&self, w: usize, now: UnixSecs) -> Summary {
        // The closed slices in the window, plus the one being filled.
        let current = now.div_euclid(SLICE_SECS) * SLICE_SECS;
        let mut merged;
        let b = if self.open.start == current && !self.open.is_empty() {
            merged = self.read_side.windows[w].clone();
            merged.add(&self.open.snapshot(), 1);
            &merged
        } else {
            &self.read_side.windows[w]
        };
        let start = (now / SLICE_SECS * SLICE_SECS + SLICE_SECS - WINDOWS[w]).max(self.read_side.first_seen);
        summarize(b, (now - start).max(1) as f64)
    }

    /// Everything since start (a whole log read from its start), rates over `span_secs`.
    pub fn summary_all(&self, span_secs: i64) -> Summary {
        let mut all = self.retired.clone();
        for (_, b) in &self.slices {
            all.add(b, 1);
        }
        all.add(&self.open.snapshot(), 1);
        summarize(&all, span_secs.max(1) as f64)
    }
}

fn summarize(b: &Bucket, span: f64) -> Summary {
    let c = &b.counts;
    let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    Summary {
        requests: c.requests,
        rps: c.requests as f64 / span,
        error_ratio: ratio(c.errors(), c.requests),
        client_errors: c.by_class[3],
        server_errors: c.errors(),
        auth_denied: c.auth_denied,
        retries: c.retries,
        upstream_failed: c.upstream_failed,
        bytes_per_sec: c.bytes as f64 / span,
        p50: b.latency.quantile(0.50),
        p95: b.latency.quantile(0.95),
        p99: b.latency.quantile(0.99),
        overhead_p95: b.overhead.quantile(0.95),
        upstream_share: (c.total_secs > 0.0).then(|| (c.upstream_secs / c.total_secs).min(1.0)),
        cache_hit_ratio: (c.cache_lookups > 0).then(|| ratio(c.cache_hits, c.cache_lookups)),
    }
}

/// One keyed family of stats with a cap.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub stats: Keyed<Stats>,
    cap: usize,
    /// Distinct keys folded into [`OVERFLOW_KEY`] since start (approximate: counted once each
    /// time a new key arrives at a full family).
    pub overflowed: u64,
}

impl Family {
    fn new(cap: usize) -> Family {
        Family { stats: Keyed::default(), cap, overflowed: 0 }
    }

    fn entry(&mut self, key: &str, retention: i64, at: i64) -> &mut Stats {
        // One lookup on a hit (the common case), allocating only for a new key; a full family
        // looks twice, to send what is new to the overflow key.
        let key = if self.stats.len() >= self.cap && !self.stats.contains_key(key) {
            self.overflowed += 1;
            OVERFLOW_KEY
        } else {
            key
        };
        self.stats.get_or_insert_with(key, || Stats::new(retention, at))
    }
}

/// What moves the windows: the caller's clock (live), or the times in the log.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Clock {
    Wall,
    Log { started: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub gateway: Stats,
    /// Host + normalised path.
    pub routes: Family,
    /// The backend as the gateway names it (resolved to services by `analysis::traffic`).
    pub backends: Family,
    /// Upstream IP (the port dropped: a pod is one IP).
    pub upstreams: Family,
    retention: i64,
    /// Start of the newest slice the windows end at.
    slice: i64,
    /// Records older than the longest window: in the totals only.
    pub late: u64,
    /// Requests the gateway answered itself, before any backend (a deny rule, an unreadable
    /// request): in the gateway's figures, in no service's.
    pub refused: u64,
    /// The oldest and newest request times read.
    pub log_span: Option<(UnixSecs, UnixSecs)>,
    clock: Clock,
    route_buf: String,
    /// Scratch for bringing open slices' bins into their sketches.
    tally: Tally,
    bins: BinMemo,
}

impl Traffic {
    pub fn new(now: UnixSecs, retention_secs: i64) -> Traffic {
        Traffic {
            gateway: Stats::new(retention_secs, now),
            routes: Family::new(MAX_ROUTES),
            backends: Family::new(MAX_BACKENDS),
            upstreams: Family::new(MAX_UPSTREAMS),
            retention: retention_secs,
            slice: now.div_euclid(SLICE_SECS) * SLICE_SECS,
            late: 0,
            refused: 0,
            log_span: None,
            clock: Clock::Wall,
            route_buf: String::new(),
            tally: Tally::default(),
            bins: BinMemo::default(),
        }
    }

    /// From now on the windows move with the log's own times, not the caller's clock: a log read
    /// after the fact (no cluster, no live clock to agree with) is judged where it ends.
    pub fn follow_log_time(&mut self) {
        self.clock = Clock::Log { started: false };
    }

    /// The newest time the windows reached on the log's clock ([`Traffic::follow_log_time`]).
    pub fn log_now(&self) -> Option<UnixSecs> {
        match self.clock {
            Clock::Log { started: true } => self.log_span.map(|(_, last)| last),
            _ => None,
        }
    }

    /// The start of the slice the windows end at: summaries read in it see every request so far.
    pub fn slice_start(&self) -> UnixSecs {
        self.slice
    }

    /// Moves every window to end at `now`. Cheap when the slice has not changed. On the log's
    /// clock only the log moves them.
    pub fn advance(&mut self, now: UnixSecs) {
        if self.clock == Clock::Wall {
            self.move_to(now);
        }
    }

    fn move_to(&mut self, now: UnixSecs) {
        let slice = now.div_euclid(SLICE_SECS) * SLICE_SECS;
        if slice <= self.slice {
            return;
        }
        let old = self.slice;
        self.gateway.advance(old, slice, &mut self.tally);
        for family in [&mut self.routes, &mut self.backends, &mut self.upstreams] {
            for stats in family.stats.values_mut() {
                stats.advance(old, slice, &mut self.tally);
            }
        }
        self.slice = slice;
    }

    /// Adds one request. Its own time places it in a slice (a backlog read at start-up lands
    /// where it happened); a line from the future is counted now, one older than the longest
    /// window only in the totals.
    pub fn record(&mut self, r: &Record, now: UnixSecs) {
        if let Some(t) = r.time {
            self.log_span = Some(self.log_span.map_or((t, t), |(first, last)| (first.min(t), last.max(t))));
        }
        let now = match (self.clock, r.time) {
            (Clock::Log { started: false }, Some(t)) => {
                // The windows start where the log does.
                self.slice = t.div_euclid(SLICE_SECS) * SLICE_SECS;
                self.gateway.read_side.first_seen = t;
                self.clock = Clock::Log { started: true };
                t
            }
            (Clock::Log { started: true }, Some(t)) => {
                self.move_to(t);
                t.max(self.slice)
            }
            (Clock::Log { .. }, None) => self.slice,
            (Clock::Wall, _) => now,
        };
        let at = r.time.unwrap_or(now).min(now);
        let slice = at.div_euclid(SLICE_SECS) * SLICE_SECS;
        let slice = if slice > self.slice - WINDOWS[1] {
            Some(slice.min(self.slice))
        } else {
            self.late += 1;
            None
        };
        let (retention, current) = (self.retention, self.slice);
        let o = Observation::of(r, &mut self.bins);
        let tally = &mut self.tally;
        self.gateway.record(&o, slice, current, tally);
        self.refused += u64::from(r.refused);
        // An unreadable request has no route either.
        if !(r.refused && r.path.is_empty()) {
            let mut route = std::mem::take(&mut self.route_buf);
            normalise_route(&r.host, &r.path, &mut route);
            let route_stats = self.routes.entry(&route, retention, at);
            route_stats.record(&o, slice, current, tally);
            route_stats.note_backend(&r.backend);
            self.route_buf = route;
        }
        if !r.backend.is_empty() {
            self.backends.entry(&r.backend, retention, at).record(&o, slice, current, tally);
        }
        let ip = upstream_ip(&r.upstream_addr);
        if !ip.is_empty() {
            let upstream = self.upstreams.entry(ip, retention, at);
            upstream.record(&o, slice, current, tally);
            upstream.note_backend(&r.backend);
        }
    }
}

/// `10.0.0.5:8080` → `10.0.0.5`; `[fd00::1]:80` → `fd00::1`; a name stays a name.
pub fn upstream_ip(addr: &str) -> &str {
    if let Some(v6) = addr.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    // Byte loops: an address is a few bytes, shorter than a searcher's setup. The port's digits
    // from the end, then its colon, which must be the only one.
    let bytes = addr.as_bytes();
    let colon = bytes.len() - bytes.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    match colon.checked_sub(1) {
        Some(i) if bytes[i] == b':' && super::bytes::find_byte(&bytes[..i], b':').is_none() => &addr[..i],
        _ => addr,
    }
}

/// Host and path with the parts that vary per request collapsed, so `/api/orders/123` and
/// `/api/orders/456` are one route: numbers → `:id`, UUIDs → `:uuid`, long hex → `:hash`, long
/// random-looking tokens → `:token`. Query strings go; depth is capped.
pub fn normalise_route(host: &str, path: &str, out: &mut String) {
    const MAX_SEGMENTS: usize = 6;
    out.clear();
    // `shop.example:8443` and `shop.example` are one host to a reader.
    let host = match host.as_bytes().iter().rposition(|&b| b == b':') {
        // A bare IPv6 address has colons of its own; a bracketed one keeps its brackets.
        Some(i)
            if (host[..i].ends_with(']') || !host[..i].contains(':'))
                && host.as_bytes()[i + 1..].iter().all(u8::is_ascii_digit) =>
        {
            &host[..i]
        }
        _ => host,
    };
    out.push_str(host);
    // An absolute-form target (`http://host/path`) names its own host.
    let path = match path.starts_with('/') {
        true => path,
        false => {
            let path = match memchr::memchr2(b'?', b'#', path.as_bytes()) {
                Some(i) => &path[..i],
                None => path,
            };
            let path = match super::bytes::find_literal(path, "://") {
                Some(i) => path[i + 3..].find('/').map_or("/", |j| &path[i + 3 + j..]),
                None => path,
            };
            if !path.starts_with('/') {
                out.push_str(if path.is_empty() { "/" } else { "/(invalid)" });
                return;
            }
            path
        }
    };
    // One pass over the bytes, one table lookup each: a segment's class is gathered as it is
    // read, and the path is copied in runs, broken only where a segment is replaced.
    let bytes = path.as_bytes();
    let (mut start, mut all, mut digits, mut segments) = (1, DIGIT | HEX | TOKEN, 0, 0);
    let mut copied_to = 0;
    for i in 1..=bytes.len() {
        let class = bytes.get(i).map_or(PATH_END, |&c| CLASSES[c as usize]);
        if class & (SLASH | PATH_END) == 0 {
            all &= class;
            digits += usize::from(class & DIGIT != 0);
            continue;
        }
        if let Some(name) = segment_class(&bytes[start..i], all, digits) {
            out.push_str(&path[copied_to..start]);
            out.push_str(name);
            copied_to = i;
        }
        segments += 1;
        if class & PATH_END != 0 {
            out.push_str(&path[copied_to..i]);
            return;
        }
        if segments == MAX_SEGMENTS {
            out.push_str(&path[copied_to..i]);
            out.push_str("/…");
            return;
        }
        (start, all, digits) = (i + 1, DIGIT | HEX | TOKEN, 0);
    }
}

/// Byte classes for [`normalise_route`], one table lookup per byte.
const DIGIT: u8 = 1;
const HEX: u8 = 2;
const TOKEN: u8 = 4;
/// Ends a segment.
const SLASH: u8 = 8;
/// Ends the path: the query or the fragment begins (or the text ends).
const PATH_END: u8 = 16;
const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut class = 0;
        if c.is_ascii_digit() {
            class |= DIGIT;
        }
        if c.is_ascii_hexdigit() {
            class |= HEX;
        }
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'=' | b'.') {
            class |= TOKEN;
        }
        if c == b'/' {
            class |= SLASH;
        }
        if c == b'?' || c == b'#' {
            class |= PATH_END;
        }
        t[b] = class;
        b += 1;
    }
    t
};

/// What a path segment that varies per request stands for, given the classes all its bytes share
/// and how many are digits.
fn segment_class(b: &[u8], all: u8, digits: usize) -> Option<&'static str> {
    if b.is_empty() {
        return None;
    }
    if all & DIGIT != 0 {
        return Some(":id");
    }
    if b.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b.iter().all(|&c| c == b'-' || CLASSES[c as usize] & HEX != 0)
    {
        return Some(":uuid");
    }
    // Long hex; or shorter hex that mixes digits and letters, as ids printed in hex do
    // (`3f9a1c07e2`); a word such as `facade` has no digits and stays.
    if all & HEX != 0 && (b.len() >= 16 || (b.len() >= 8 && digits >= 2 && digits < b.len())) {
        return Some(":hash");
    }
    if b.len() >= 20 && digits >= 3 && all & TOKEN != 0 {
        return Some(":token");
    }
    if b.len() > 64 {
        return Some(":long");
    }
    None
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn req(
        time: i64,
        status: u16,
        total: f64,
        upstream: Option<f64>,
        path: &'static str,
        addr: &'static str,
    ) -> Record<'static> {
        Record {
            time: Some(time),
            method: Cow::Borrowed("GET"),
            path: Cow::Borrowed(path),
            status,
            upstream_status: upstream.map(|_| status),
            total_secs: Some(total),
            upstream_secs: upstream,
            backend: Cow::Borrowed("shop-cart-80"),
            upstream_addr: Cow::Borrowed(addr),
            attempts: u8::from(!addr.is_empty()),
            bytes_sent: 100,
            ..Record::default()
        }
    }

    #[test]
    fn routes_collapse_what_varies_per_request() {
        let mut out = String::new();
        let mut route = |host: &str, path: &str| {
            normalise_route(host, path, &mut out);
            out.clone()
        };
        assert_eq!(route("", "/api/orders/123?x=1"), "/api/orders/:id");
        assert_eq!(route("shop", "/u/3f2504e0-4f89-11d3-9a0c-0305e82c3301/cart"), "shop/u/:uuid/cart");
        assert_eq!(route("shop:8443", "/x"), "shop/x");
        assert_eq!(route("", "/blob/9f86d081884c7d659a2feaa0c55ad015"), "/blob/:hash");
        assert_eq!(route("", "/s/eyJhbGciOiJIUzI1NiJ9x1y2z3"), "/s/:token");
        assert_eq!(route("", "/a/b/c/d/e/f/g/h"), "/a/b/c/d/e/f/…");
        assert_eq!(route("", "http://evil/x/1"), "/x/:id");
        // Only a target that does not start with `/` is absolute-form.
        assert_eq!(route("", "/proxy/http://evil/1"), "/proxy/http://evil/:id");
        assert_eq!(route("[fd00::1]:8080", "/a#frag"), "[fd00::1]/a");
        assert_eq!(route("", "/v2/ab12cd34ef56ab78/ABCDEFGHIJKLMNOPQRSTUV123"), "/v2/:hash/:token");
        assert_eq!(route("", "*"), "/(invalid)");
        assert_eq!(route("", "/products/shoes"), "/products/shoes");
        // Shorter hex ids collapse when they mix digits and letters; hex-letter words stay.
        assert_eq!(route("", "/items/f6e87672acd6661"), "/items/:hash");
        assert_eq!(route("", "/c/3f9a1c07"), "/c/:hash");
        assert_eq!(route("", "/facade/decade/b2b"), "/facade/decade/b2b");
        // Depth, empty segments, the end of the path.
        assert_eq!(route("", "/a/b/c/d/e/f/"), "/a/b/c/d/e/f/…");
        assert_eq!(route("", "/a/b/c/d/e/7"), "/a/b/c/d/e/:id");
        assert_eq!(route("", "/a//42/"), "/a//:id/");
        assert_eq!(route("", "/42#x/1"), "/:id");
        assert_eq!(route("", "/x?"), "/x");
        assert_eq!(route("", "/"), "/");
        assert_eq!(route("", ""), "/");
        assert_eq!(route("", "/caf\u{e9}/12"), "/caf\u{e9}/:id");
    }

    #[test]
    fn windows_slide_and_totals_stay() {
        let t0 = 1_000_000;
        let mut t = Traffic::new(t0, 900);
        for i in 0..60 {
            t.advance(t0 + i);
            t.record(
                &req(t0 + i, if i % 10 == 0 { 502 } else { 200 }, 0.1, Some(0.09), "/api/cart/1", "10.0.0.1:8080"),
                t0 + i,
            );
        }
        let s = t.gateway.summary(0, t0 + 59);
        assert_eq!((s.requests, s.server_errors), (60, 6));
        assert!((s.rps - 1.0).abs() < 0.05, "{}", s.rps);
        assert!((s.error_ratio - 0.1).abs() < 1e-9);
        assert!((s.overhead_p95.unwrap() - 0.01).abs() < 0.001);
        // Two minutes of silence: the 1-minute window empties, the 5-minute one keeps them.
        t.advance(t0 + 180);
        assert_eq!(t.gateway.summary(0, t0 + 180).requests, 0);
        assert_eq!(t.gateway.summary(1, t0 + 180).requests, 60);
        t.advance(t0 + 400);
        assert_eq!(t.gateway.summary(1, t0 + 400).requests, 0);
        assert_eq!(t.gateway.total().requests, 60);
        assert_eq!(t.routes.stats["/api/cart/:id"].total().requests, 60);
        assert_eq!(t.upstreams.stats["10.0.0.1"].total().by_class[4], 6);
        assert!(t.gateway.rps().len() > 5, "the sparkline series got the finished slices");
    }

    #[test]
    fn a_busy_slice_gives_the_answers_of_one_sketch_of_all_its_values() {
        // Several times the pending list's size in one slice, then a late line for it once
        // closed: the open slice's batches must add up to exactly what one sketch says.
        let t0 = 5_000_000;
        let mut t = Traffic::new(t0, 900);
        let (mut latency, mut overhead) = (Sketch::default(), Sketch::default());
        let n = PENDING_MAX * 3 + 17;
        for i in 0..n {
            let total = 0.001 * (1 + i % 700) as f64;
            let upstream = (i % 5 != 0).then_some(total * 0.8);
            latency.add(total);
            if let Some(u) = upstream {
                overhead.add(total - u);
            }
            t.record(&req(t0, if i % 9 == 0 { 500 } else { 200 }, total, upstream, "/a", "10.0.0.1:80"), t0);
        }
        let quantiles = |s: &Summary| (s.p50, s.p95, s.p99, s.overhead_p95);
        let want = (latency.quantile(0.5), latency.quantile(0.95), latency.quantile(0.99), overhead.quantile(0.95));
        let open = t.gateway.summary(0, t0);
        assert_eq!((open.requests, open.server_errors), (n as u64, n.div_ceil(9) as u64));
        assert_eq!(quantiles(&open), want, "read while the slice is open");
        t.advance(t0 + SLICE_SECS);
        let closed = t.gateway.summary(0, t0 + SLICE_SECS);
        assert_eq!((closed.requests, quantiles(&closed)), (n as u64, want), "read once it closed");
        assert_eq!(quantiles(&t.upstreams.stats["10.0.0.1"].summary_all(10)), want);
        t.record(&req(t0, 200, 0.5, Some(0.4), "/a", "10.0.0.1:80"), t0 + SLICE_SECS);
        latency.add(0.5);
        let late = t.gateway.summary(0, t0 + SLICE_SECS);
        assert_eq!((late.requests, late.p99), (n as u64 + 1, latency.quantile(0.99)));
        assert_eq!(t.gateway.total().requests, n as u64 + 1);
        assert_eq!(t.gateway.summary_all(20).p95, latency.quantile(0.95));
    }

    #[test]
    fn windows_on_the_log_clock_count_exactly_the_slices_they_span() {
        // A log read after the fact, lines in time order, busy enough to fold bins mid-slice: each
        // window must hold exactly the requests of the slices it spans, for every key.
        let t0 = 7_000_000;
        let mut t = Traffic::new(t0 + 10_000, 900);
        t.follow_log_time();
        let mut per_slice: std::collections::BTreeMap<(i64, &str), u64> = Default::default();
        let backends = ["a", "b", "c"];
        let mut seed = 1u64;
        for i in 0..120_000i64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let time = t0 + i / 400;
            let backend = backends[(seed >> 33) as usize % 3];
            let r = Record {
                backend: Cow::Borrowed(backend),
                ..req(time, 200, 0.01 * (1 + i % 90) as f64, Some(0.005), "/x", "")
            };
            t.record(&r, 0);
            *per_slice.entry((time.div_euclid(SLICE_SECS) * SLICE_SECS, backend)).or_default() += 1;
        }
        let now = t.log_now().unwrap();
        let current = now.div_euclid(SLICE_SECS) * SLICE_SECS;
        for (w, secs) in WINDOWS.iter().enumerate() {
            for backend in backends {
                let want: u64 =
                    per_slice.iter().filter(|((s, b), _)| *b == backend && *s > current - secs).map(|(_, n)| n).sum();
                assert_eq!(t.backends.stats[backend].summary(w, now).requests, want, "{backend}, window {secs} s");
            }
        }
    }

    #[test]
    fn old_lines_count_in_totals_only_and_future_lines_count_now() {
        let now = 2_000_000;
        let mut t = Traffic::new(now, 900);
        t.record(&req(now - 3600, 200, 0.1, None, "/", ""), now);
        t.record(&req(now + 3600, 200, 0.1, None, "/", ""), now);
        assert_eq!((t.gateway.total().requests, t.late), (2, 1));
        assert_eq!(t.gateway.summary(0, now).requests, 1);
    }

    #[test]
    fn unique_paths_are_capped() {
        let now = 3_000_000;
        let mut t = Traffic::new(now, 900);
        let paths: Vec<String> = (0..MAX_ROUTES + 500).map(|i| format!("/page-{i}-x")).collect();
        for p in &paths {
            let r = Record { path: Cow::Borrowed(p.as_str()), status: 200, ..Record::default() };
            t.record(&r, now);
        }
        assert_eq!(t.routes.stats.len(), MAX_ROUTES + 1);
        assert_eq!(t.routes.stats[OVERFLOW_KEY].total().requests, 500);
        assert_eq!(t.routes.overflowed, 500);
    }

    #[test]
    fn upstream_ips() {
        assert_eq!(upstream_ip("10.0.0.5:8080"), "10.0.0.5");
        assert_eq!(upstream_ip("[fd00::1]:80"), "fd00::1");
        assert_eq!(upstream_ip("srv1"), "srv1");
        assert_eq!(upstream_ip("fd00::1"), "fd00::1");
        assert_eq!(upstream_ip("srv1:http"), "srv1:http");
        assert_eq!(upstream_ip("10.0.0.5:"), "10.0.0.5");
        assert_eq!(upstream_ip(""), "");
    }
}
