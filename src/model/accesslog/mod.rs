//! Gateway access-log lines → [`Record`]s. One borrowed record per line, no allocation on the
//! common path: text formats are compiled templates ([`template`]), JSON formats one serde struct
//! ([`json`]), HAProxy's `httplog` a positional parser ([`haproxy`]).
//!
//! Formats and sample lines: ../shared/reference/data-sources.md §4.

pub mod haproxy;
pub mod json;
pub mod template;
pub mod zone;

use std::borrow::Cow;

use super::bytes::{bytes_equal_to, find_byte, find_literal, same_bytes};

use template::Template;

/// One request as a gateway logged it. Times are seconds; `None` where the format has no such
/// field or the gateway wrote `-` (no upstream contacted).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record<'a> {
    /// Unix seconds of the request, when the line carries a parseable time.
    pub time: Option<i64>,
    /// `time` was written without a zone (HAProxy): local wall-clock time, read as UTC until
    /// the stream's [`zone::LogZone`] says where it was.
    pub zoneless: bool,
    pub method: Cow<'a, str>,
    /// `Host`/`:authority` where logged; empty otherwise.
    pub host: Cow<'a, str>,
    /// Path as requested, query string included (normalised later).
    pub path: Cow<'a, str>,
    /// What the client got.
    pub status: u16,
    /// What the backend answered (the last one tried), where logged.
    pub upstream_status: Option<u16>,
    pub bytes_sent: u64,
    /// Whole request as seen by the gateway.
    pub total_secs: Option<f64>,
    /// Time spent waiting for the backend (all attempts).
    pub upstream_secs: Option<f64>,
    /// The backend as the gateway names it: ingress-nginx `ns-svc-port`, an Istio cluster
    /// `outbound|80||svc.ns.svc.cluster.local`, a Traefik router, a HAProxy backend.
    pub backend: Cow<'a, str>,
    /// Address of the last upstream tried (`10.244.0.5:8080`), empty when none.
    pub upstream_addr: Cow<'a, str>,
    /// Upstream attempts (1 normally; more when the gateway retried on another server).
    pub attempts: u8,
    /// Cache status (`HIT`, `MISS`, …) where logged.
    pub cache: Cow<'a, str>,
    /// The gateway answered itself, before choosing a backend (a deny rule, a request it could
    /// not read): a request of the gateway's, of no service's.
    pub refused: bool,
}

/// A log format: built in, or compiled from the user's `log_format` string.
#[derive(Debug, Clone)]
pub enum Format {
    Template {
        name: &'static str,
        template: Box<Template>,
    },
    /// JSON lines: Istio/Envoy Gateway, Traefik and Caddy keys are all understood.
    Json,
    HaproxyHttplog,
}

/// The ingress-nginx controller's default `log-format-upstream`.
pub const INGRESS_NGINX: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id"#;
/// nginx's predefined `combined`.
pub const NGINX_COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
/// Envoy's default access log format.
pub const ENVOY_DEFAULT: &str = r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%""#;
/// Istio's default text format (`EnvoyTextLogFormat`).
pub const ISTIO_TEXT: &str = r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%"#;
/// Traefik's `common` format, written with template variables of our own for its extra fields.
pub const TRAEFIK_CLF: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $traefik_request_count "$traefik_router" "$traefik_server_url" $traefik_duration"#;

/// Names accepted by `--log-format`, in the order auto-detection tries them: the most specific
/// first, since `combined` is a prefix of both ingress-nginx and Traefik lines.
pub const BUILT_IN: &[&str] = &["json", "ingress-nginx", "istio", "envoy", "traefik", "haproxy", "combined"];

impl Format {
    /// A built-in format by name, or a user's template: `nginx:<log_format>` / `envoy:<format>`.
    pub fn by_name(name: &str) -> Result<Format, String> {
        let template = |name: &'static str, t: Result<Template, String>| {
            t.map(|template| Format::Template { name, template: Box::new(template) })
        };
        match name {
            "json" | "istio-json" | "envoy-gateway" | "traefik-json" | "caddy" => Ok(Format::Json),
            "haproxy" => Ok(Format::HaproxyHttplog),
            "ingress-nginx" | "upstreaminfo" => template("ingress-nginx", Template::nginx(INGRESS_NGINX)),
            "combined" | "nginx" => template("combined", Template::nginx(NGINX_COMBINED)),
            "envoy" => template("envoy", Template::envoy(ENVOY_DEFAULT)),
            "istio" => template("istio", Template::envoy(ISTIO_TEXT)),
            "traefik" => template("traefik", Template::nginx(TRAEFIK_CLF)),
            custom => {
                if let Some(f) = custom.strip_prefix("nginx:") {
                    template("custom nginx", Template::nginx(f))
                } else if let Some(f) = custom.strip_prefix("envoy:") {
                    template("custom envoy", Template::envoy(f))
                } else {
                    Err(format!(
                        "unknown log format {custom:?}: use one of {} or nginx:'<log_format>' / envoy:'<format>'",
                        BUILT_IN.join(", ")
                    ))
                }
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Format::Template { name, .. } => name,
            Format::Json => "json",
            Format::HaproxyHttplog => "haproxy",
        }
    }

    /// The record in `line`, or `None` when the line is not in this format (a controller's own
    /// log line, a truncated write).
    pub fn parse<'a>(&self, line: &'a str) -> Option<Record<'a>> {
        let line = trim_line_end(line);
        match self {
            Format::Template { template, .. } => template.parse(line),
            Format::Json => json::parse(line),
            Format::HaproxyHttplog => haproxy::parse(line),
        }
    }

    /// The first built-in format that reads `line`. (Compiled once: a stream of lines that are
    /// not access logs tries them all on every line.)
    pub fn detect(line: &str) -> Option<Format> {
        static BUILT: std::sync::OnceLock<Vec<Format>> = std::sync::OnceLock::new();
        BUILT
            .get_or_init(|| BUILT_IN.iter().filter_map(|name| Format::by_name(name).ok()).collect())
            .iter()
            .find(|format| format.parse(line).is_some())
            .cloned()
    }
}

/// `line` without its trailing `\r` and `\n` (a byte loop: the char-pattern trim cost more).
pub fn trim_line_end(line: &str) -> &str {
    let end = line.as_bytes().iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(0, |i| i + 1);
    &line[..end]
}

/// Splits `"GET /path?q HTTP/1.1"` into method and target; `-` or garbage gives empty parts.
pub fn split_request(request: &str) -> (&str, &str) {
    // Two byte searches, not `splitn`'s char searcher (a twentieth of the ingest).
    let Some(space) = find_byte(request.as_bytes(), b' ') else { return (request, "") };
    let rest = &request[space + 1..];
    let target = match find_byte(rest.as_bytes(), b' ') {
        Some(end) => &rest[..end],
        None => rest,
    };
    (&request[..space], target)
}

/// A decimal number as gateways print it; `-` and empty mean "not there".
pub fn number(text: &str) -> Option<f64> {
    match text {
        "" | "-" => None,
        t => simple_decimal(t).or_else(|| t.parse().ok()),
    }
}

/// `123.456` without the general float parser: digits, one dot, at most 15 significant digits,
/// so `mantissa / 10^scale` is a single correctly rounded division — the same `f64` as `parse`.
fn simple_decimal(t: &str) -> Option<f64> {
    const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let (mut mantissa, mut scale, mut digits, mut dot) = (0u64, 0usize, 0usize, false);
    for &b in t.as_bytes() {
        match b {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 15 {
                    return None;
                }
                mantissa = mantissa * 10 + u64::from(b - b'0');
                scale += usize::from(dot);
            }
            b'.' if !dot => dot = true,
            _ => return None,
        }
    }
    (digits > 0 && digits <= 15).then(|| mantissa as f64 / POW10[scale])
}

/// Calls `f` with each upstream value of nginx's lists: attempts are separated by `, `, internal
/// redirects by ` : ` (a bare `:` is part of an address); `-` means none.
fn for_each_attempt<'a>(list: &'a str, mut f: impl FnMut(&'a str)) {
    let mut visit = |part: &'a str| {
        // Separators are ASCII spaces: the Unicode-aware `trim` decoded every char.
        let part = part.trim_ascii();
        if !part.is_empty() && part != "-" {
            f(part);
        }
    };
    // Almost always a single attempt: no splitting then.
    if !has_separator(list.as_bytes()) {
        return visit(list);
    }
    for group in list.split(',') {
        for part in group.split(" : ") {
            visit(part);
        }
    }
}

/// Whether a list of attempts has a `,` or a space, eight bytes at a time (these values are a
/// few bytes, shorter than memchr2's setup).
fn has_separator(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        if bytes_equal_to(w, b',') | bytes_equal_to(w, b' ') != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b == b',' || b == b' ')
}

/// The last upstream value (the attempt that answered) and how many attempts there were.
pub fn last_attempt(list: &str) -> (&str, u8) {
    let (mut last, mut n) = ("", 0u8);
    for_each_attempt(list, |part| {
        last = part;
        n = n.saturating_add(1);
    });
    (last, n)
}

/// Sum of the per-attempt upstream times (`0.010, 0.020 : 0.005`).
pub fn sum_attempts(list: &str) -> Option<f64> {
    let mut sum = None;
    for_each_attempt(list, |part| {
        if let Some(v) = number(part) {
            *sum.get_or_insert(0.0) += v;
        }
    });
    sum
}

/// The complete lines read so far, as text, leaving an unfinished last line in `pending` for the
/// next read. Valid UTF-8 (nearly always) is moved, neither copied nor re-scanned char by char as
/// a lossy conversion would (that scan alone cost a sixth of the ingest); an invalid byte becomes
/// U+FFFD, and only its line fails to parse.
pub fn take_complete_lines(pending: &mut Vec<u8>) -> Option<String> {
    let end = memchr::memrchr(b'\n', pending)?;
    let rest = pending.split_off(end + 1);
    let bytes = std::mem::replace(pending, rest);
    Some(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// The longest line kept whole; longer is not an access log line (`/dev/zero`, a binary file,
/// a stream without newlines), and holding it would grow without bound.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Bytes read but not yet whole lines, never more than [`MAX_LINE_BYTES`] of them: an overlong
/// line is dropped up to its newline and counted.
#[derive(Debug, Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
    /// Inside an overlong line: everything up to the next newline is dropped.
    discarding: bool,
    pub overlong_lines: u64,
}

impl LineBuffer {
    /// Adds `bytes`; returns the complete lines now available.
    pub fn push(&mut self, bytes: &[u8]) -> Option<String> {
        let start = self.pending.len();
        self.pending.extend_from_slice(bytes);
        self.take_lines(start)
    }

    /// Reads once from `source` straight into the buffer, at most `max` bytes: the bytes read
    /// (0 at the end of the input) and the complete lines now available. (Straight in: a file
    /// read through a buffer of its own is copied once more, a twentieth of the ingest.)
    pub fn read_from(
        &mut self,
        source: &mut impl std::io::Read,
        max: usize,
    ) -> std::io::Result<(usize, Option<String>)> {
        let start = self.pending.len();
        self.pending.resize(start + max, 0);
        let read = source.read(&mut self.pending[start..]);
        self.pending.truncate(start + *read.as_ref().unwrap_or(&0));
        self.lines_read(start, read)
    }

    /// Reads `source` until `max` bytes or its end, straight into the buffer's spare room: the
    /// bytes read (0 at the end) and the complete lines now available. For a regular file, whose
    /// end a read reaches at once: unlike [`LineBuffer::read_from`] nothing is zeroed first (a
    /// fortieth of a snapshot's CPU), but on a pipe it would wait for `max` bytes.
    pub fn fill_from(
        &mut self,
        source: &mut impl std::io::Read,
        max: usize,
    ) -> std::io::Result<(usize, Option<String>)> {
        use std::io::Read;
        let start = self.pending.len();
        self.pending.reserve(max);
        let read = source.by_ref().take(max as u64).read_to_end(&mut self.pending);
        if read.is_err() {
            self.pending.truncate(start);
        }
        self.lines_read(start, read)
    }

    /// After a read of `read` bytes at `start`: how many, and the complete lines now available.
    fn lines_read(&mut self, start: usize, read: std::io::Result<usize>) -> std::io::Result<(usize, Option<String>)> {
        let n = read?;
        Ok((n, if n == 0 { None } else { self.take_lines(start) }))
    }

    /// After bytes were added at `start`: drops what is left of an overlong line, then takes the
    /// complete lines.
    fn take_lines(&mut self, start: usize) -> Option<String> {
        if self.discarding {
            let Some(end) = memchr::memchr(b'\n', &self.pending[start..]) else {
                self.pending.truncate(start);
                return None;
            };
            self.discarding = false;
            self.pending.drain(start..start + end + 1);
        }
        let lines = take_complete_lines(&mut self.pending);
        if self.pending.len() > MAX_LINE_BYTES {
            self.pending.clear();
            self.discarding = true;
            self.overlong_lines += 1;
        }
        lines
    }

    /// The unfinished last line, at the end of the stream.
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() || self.discarding {
            return None;
        }
        self.pending.push(b'\n');
        take_complete_lines(&mut self.pending)
    }

    pub fn clear(&mut self) {
        self.pending.clear();
        self.discarding = false;
    }

    /// Drops what comes up to the next newline: reading began inside a line.
    pub fn skip_to_next_line(&mut self) {
        self.pending.clear();
        self.discarding = true;
    }
}

/// `http://10.0.0.1:80/` → `10.0.0.1:80`: the address part of an upstream URL.
pub fn strip_scheme(addr: &str) -> &str {
    // A scheme begins with a letter; an IP address (nearly every upstream) does not.
    let addr = match addr.starts_with(|c: char| c.is_ascii_alphabetic()).then(|| find_literal(addr, "://")).flatten() {
        Some(i) => &addr[i + 3..],
        None => addr,
    };
    addr.trim_end_matches('/')
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str) -> Option<u32> {
    unsigned(s).and_then(|n| u32::try_from(n).ok())
}

/// Decimal digits only, at most 19 (no sign, no overflow): a status or a byte count, read
/// without the general integer parser.
pub fn unsigned(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
}

/// A timestamp's text and what it was read as.
#[derive(Clone, Copy)]
struct TimeMemo {
    text: [u8; 40],
    len: usize,
    secs: i64,
}

type TimeMemoKey = std::thread::LocalKey<std::cell::Cell<TimeMemo>>;

/// `parse(t)`, remembered: a busy gateway writes the same second's stamp on hundreds of lines in
/// a row, and comparing the text costs a tenth of reading it. One memo per thread and parser.
fn memoized(memo: &'static TimeMemoKey, t: &str, parse: fn(&str) -> Option<i64>) -> Option<i64> {
    let last = memo.get();
    if last.len == t.len() && same_bytes(&last.text[..last.len], t.as_bytes()) {
        return Some(last.secs);
    }
    let secs = parse(t)?;
    if t.len() <= last.text.len() {
        let mut text = [0; 40];
        text[..t.len()].copy_from_slice(t.as_bytes());
        memo.set(TimeMemo { text, len: t.len(), secs });
    }
    Some(secs)
}

/// Matches no text (no text is this long).
const NO_TIME: TimeMemo = TimeMemo { text: [0; 40], len: usize::MAX, secs: 0 };

thread_local! {
    static LAST_CLF: std::cell::Cell<TimeMemo> = const { std::cell::Cell::new(NO_TIME) };
    static LAST_ISO: std::cell::Cell<TimeMemo> = const { std::cell::Cell::new(NO_TIME) };
}

/// `10/Oct/2000:13:55:36 -0700` (nginx `$time_local`, CLF) → Unix seconds.
pub fn parse_clf_time(t: &str) -> Option<i64> {
    memoized(&LAST_CLF, t, read_clf_time)
}

fn read_clf_time(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    // The fixed-width part must be ASCII: then every slice below falls on a char boundary.
    if b.len() < 20 || !b[..20].is_ascii() || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let day = digits(&t[0..2])?;
    let month = match &t[3..6] {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year = digits(&t[7..11])? as i64;
    let (h, m, s) = (digits(&t[12..14])?, digits(t.get(15..17)?)?, digits(t.get(18..20)?)?);
    // HAProxy adds milliseconds (`:14.655`); nginx a zone offset.
    let rest = t[20..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit()).trim();
    let offset = parse_offset(rest).unwrap_or(0);
    Some(days_from_civil(year, month, day) * 86_400 + (h * 3600 + m * 60 + s) as i64 - offset)
}

fn parse_offset(z: &str) -> Option<i64> {
    let (sign, rest) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        b'Z' => return Some(0),
        _ => return None,
    };
    // `+0100` or `+01:00`
    let hh = digits(rest.get(0..2)?)? as i64;
    let mm = digits(rest.get(2..4).filter(|m| !m.starts_with(':')).or_else(|| rest.get(3..5))?)? as i64;
    Some(sign * (hh * 3600 + mm * 60))
}

/// `2016-04-15T20:17:00.310Z` (RFC 3339, as Envoy and Traefik print it) → Unix seconds.
pub fn parse_iso_time(t: &str) -> Option<i64> {
    memoized(&LAST_ISO, t, read_iso_time)
}

fn read_iso_time(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 19 || !b[..19].is_ascii() || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let year = digits(&t[0..4])? as i64;
    let (month, day) = (digits(&t[5..7])?, digits(&t[8..10])?);
    let (h, m, s) = (digits(&t[11..13])?, digits(&t[14..16])?, digits(&t[17..19])?);
    if !(1..=12).contains(&month) {
        return None;
    }
    let rest = t[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = parse_offset(rest).unwrap_or(0);
    Some(days_from_civil(year, month, day) * 86_400 + (h * 3600 + m * 60 + s) as i64 - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_lines_are_taken_and_a_bad_byte_spoils_only_its_line() {
        let mut pending = b"a 1\nb \xff 2\nc 3\nunfinis".to_vec();
        let text = take_complete_lines(&mut pending).unwrap();
        assert_eq!(text, "a 1\nb \u{fffd} 2\nc 3\n");
        assert_eq!(pending, b"unfinis");
        assert_eq!(take_complete_lines(&mut pending), None, "no newline yet");
        pending.extend_from_slice(b"hed\n");
        assert_eq!(take_complete_lines(&mut pending).as_deref(), Some("unfinished\n"));
        assert!(pending.is_empty());
    }

    #[test]
    fn an_overlong_line_is_dropped_to_its_newline_and_memory_stays_bounded() {
        let mut buf = LineBuffer::default();
        let zeros = vec![0u8; 256 * 1024];
        for _ in 0..100 {
            assert_eq!(buf.push(&zeros), None);
            assert!(buf.pending.len() <= MAX_LINE_BYTES);
        }
        assert_eq!(buf.overlong_lines, 1, "one endless line, counted once");
        // Its tail up to the newline is dropped, and the lines after it are read.
        assert_eq!(buf.push(b"\0\0tail\nGET / 200\npart").as_deref(), Some("GET / 200\n"));
        assert_eq!(buf.finish().as_deref(), Some("part\n"));
    }

    #[test]
    fn lines_read_straight_from_a_reader_are_the_lines_pushed() {
        // The overlong line is longer than any read and its limit together: dropped however read.
        let text = format!("a 1\nb 2\n{}\nc 3\nd", "x".repeat(3 * MAX_LINE_BYTES));
        // One read at a time (a pipe) and reads to `max` or the end (a regular file) alike.
        for (max, fill) in [1, 3, 7, 4096, MAX_LINE_BYTES].into_iter().flat_map(|max| [(max, false), (max, true)]) {
            let (mut read, mut pushed) = (LineBuffer::default(), LineBuffer::default());
            let mut source = text.as_bytes();
            let (mut from_reads, mut from_pushes) = (String::new(), String::new());
            loop {
                let before = source;
                let (n, lines) =
                    if fill { read.fill_from(&mut source, max) } else { read.read_from(&mut source, max) }.unwrap();
                from_reads += lines.as_deref().unwrap_or("");
                from_pushes += pushed.push(&before[..n]).as_deref().unwrap_or("");
                if n == 0 {
                    break;
                }
            }
            assert_eq!(from_reads, "a 1\nb 2\nc 3\n", "reads of {max}, filling: {fill}");
            assert_eq!((from_reads, read.overlong_lines), (from_pushes, pushed.overlong_lines), "reads of {max}");
            assert_eq!(read.finish().as_deref(), Some("d\n"));
            assert_eq!(read.overlong_lines, 1);
        }
    }

    #[test]
    fn times_parse_with_their_offsets() {
        assert_eq!(parse_clf_time("01/Jan/2024:12:00:00 +0000"), Some(1_704_110_400));
        assert_eq!(parse_clf_time("01/Jan/2024:13:00:00 +0100"), Some(1_704_110_400));
        assert_eq!(parse_clf_time("06/Feb/2009:12:14:14.655"), Some(1_233_922_454));
        assert_eq!(parse_iso_time("2016-04-15T20:17:00.310Z"), Some(1_460_751_420));
        assert_eq!(parse_iso_time("2016-04-15T22:17:00+02:00"), Some(1_460_751_420));
        assert_eq!(parse_clf_time("not a time at all, no"), None);
        assert_eq!(parse_iso_time("2016-13-15T20:17:00Z"), None);
        // Found by the fuzzer: a multi-byte character inside the fixed-width part.
        assert_eq!(parse_clf_time("01/Jan/2024:1п00:00 +0000"), None);
        assert_eq!(parse_iso_time("2016-04-15T2п:00:00Z"), None);
    }

    #[test]
    fn a_remembered_time_is_the_time_of_that_text_only() {
        let (a, b) = ("01/Jan/2024:12:00:00 +0000", "01/Jan/2024:12:00:01 +0000");
        for _ in 0..3 {
            assert_eq!((parse_clf_time(a), parse_clf_time(a)), (Some(1_704_110_400), Some(1_704_110_400)));
            assert_eq!(parse_clf_time(b), Some(1_704_110_401));
        }
        // A text that fails is not remembered, and the two parsers do not share a memo.
        assert_eq!(parse_clf_time("01/Jan/2024:12:00:0x +0000"), None);
        assert_eq!(parse_iso_time(a), None);
        assert_eq!(parse_clf_time(b), Some(1_704_110_401));
        // Longer than the memo holds: read every time.
        let long = format!("{a}{}", "0".repeat(40));
        assert_eq!((parse_clf_time(&long), parse_clf_time(&long)), (Some(1_704_110_400), Some(1_704_110_400)));
    }

    #[test]
    fn decimals_read_exactly_as_the_float_parser_reads_them() {
        for t in [
            "0.000",
            "0.002",
            "1.505",
            "12",
            "0.1",
            "123456.789",
            "99999999999.9999",
            "0.30000000000000004",
            "99999999999999999999999.5",
        ] {
            assert_eq!(number(t), t.parse().ok(), "{t}");
        }
        assert_eq!(number("1e3"), Some(1000.0));
        assert_eq!(number("-"), None);
        assert_eq!(number("1.2.3"), None);
    }

    #[test]
    fn requests_split_and_lines_end() {
        assert_eq!(split_request("GET /a?b HTTP/1.1"), ("GET", "/a?b"));
        assert_eq!(split_request("GET /a"), ("GET", "/a"));
        assert_eq!(split_request("-"), ("-", ""));
        assert_eq!(split_request(""), ("", ""));
        assert_eq!(trim_line_end("a b\r\n"), "a b");
        assert_eq!(trim_line_end("\r\n"), "");
    }

    #[test]
    fn attempts_are_counted_across_both_separators() {
        assert_eq!(last_attempt("10.0.0.1:80"), ("10.0.0.1:80", 1));
        assert_eq!(last_attempt("10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80"), ("10.0.0.3:80", 3));
        assert_eq!(last_attempt("-"), ("", 0));
        // A separator in a later eight-byte word, or in the tail after the last whole word.
        assert_eq!(last_attempt("10.244.10.5:8080,10.244.10.6:8080"), ("10.244.10.6:8080", 2));
        assert_eq!(last_attempt("10.244.10.5:80,10.2"), ("10.2", 2));
        assert_eq!(last_attempt("10.244.100.250:8080"), ("10.244.100.250:8080", 1));
        let sum = sum_attempts("0.010, 0.020 : 0.005").unwrap();
        assert!((sum - 0.035).abs() < 1e-9);
        assert_eq!(sum_attempts("-"), None);
    }

    #[test]
    fn detection_prefers_the_most_specific_format() {
        let ingress = r#"192.168.49.1 - - [01/Jan/2024:12:00:00 +0000] "GET /frontend HTTP/1.1" 200 250 "-" "curl/7.81.0" 84 0.002 [default-frontend-svc-80] [] 10.244.0.5:80 250 0.002 200 abc123"#;
        assert_eq!(Format::detect(ingress).unwrap().name(), "ingress-nginx");
        let combined = r#"127.0.0.1 - - [01/Jan/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/7.81.0""#;
        assert_eq!(Format::detect(combined).unwrap().name(), "combined");
        assert!(Format::detect("I0902 19:52:29.236097       6 status.go:85] updating Ingress status").is_none());
        assert!(Format::by_name("apache").is_err());
    }
}
