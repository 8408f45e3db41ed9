//! Prometheus text exposition (0.0.4) and OpenMetrics 1.0, parsed in one pass over the bytes.
//!
//! No regexes and no allocation per sample: names and label values borrow from the input (a `Cow`
//! owns only when escapes had to be decoded), and the label list is one buffer reused for every
//! line. Samples are handed to a callback. A malformed line is counted and skipped, never fatal.
//! Exemplars are skipped; `# EOF` ends an OpenMetrics document.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format: timestamps are integer milliseconds.
    Text,
    /// OpenMetrics: timestamps are (possibly fractional) seconds; `# EOF` ends the document.
    OpenMetrics,
}

impl Format {
    /// From a Content-Type header, else from the document's last line.
    pub fn detect(content_type: Option<&str>, body: &str) -> Format {
        if content_type.is_some_and(|c| c.contains("openmetrics")) {
            return Format::OpenMetrics;
        }
        if body.trim_end().ends_with("# EOF") { Format::OpenMetrics } else { Format::Text }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Untyped,
}

impl MetricType {
    fn parse(s: &str) -> MetricType {
        match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            _ => MetricType::Untyped,
        }
    }
}

pub type Label<'a> = (Cow<'a, str>, Cow<'a, str>);

#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'s, 'a> {
    pub name: Cow<'a, str>,
    pub labels: &'s [Label<'a>],
    pub value: f64,
    pub timestamp_ms: Option<i64>,
    /// The type declared for this sample's family (`foo` for `foo_total`, `foo_bucket`…).
    pub family_type: MetricType,
}

impl<'a> Sample<'_, 'a> {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
    }

    /// The label value borrowed from the input (cloning a borrowed `Cow` copies no bytes).
    pub fn label_cow(&self, name: &str) -> Option<Cow<'a, str>> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseStats {
    pub samples: usize,
    pub skipped_lines: usize,
    /// The first few problems, for the status bar; the rest are only counted.
    pub errors: Vec<LineError>,
    pub saw_eof: bool,
}

const MAX_REPORTED_ERRORS: usize = 5;

/// Parses `input`, calling `on_sample` for every sample. HELP text is not needed by kpulse and is
/// skipped; TYPE lines set the family type of the samples that follow.
pub fn parse<'a>(input: &'a str, format: Format, on_sample: impl FnMut(&Sample<'_, 'a>)) -> ParseStats {
    parse_wanted(input, format, |_| true, on_sample)
}

/// Like [`parse`], but lines whose (unquoted) metric name `wanted` rejects are skipped before
/// their labels are parsed: most of a cAdvisor document is families kpulse does not read.
pub fn parse_wanted<'a>(
    input: &'a str,
    format: Format,
    wanted: impl Fn(&str) -> bool,
    mut on_sample: impl FnMut(&Sample<'_, 'a>),
) -> ParseStats {
    let mut stats = ParseStats::default();
    let mut labels: Vec<Label<'a>> = Vec::with_capacity(16);
    let mut family: Option<(&'a str, MetricType)> = None;
    for (index, raw) in input.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start_matches([' ', '\t']);
            if rest == "EOF" {
                stats.saw_eof = true;
                break;
            }
            if let Some(decl) = rest.strip_prefix("TYPE")
                && let Some((name, kind)) = split_name(decl.trim_start())
            {
                family = Some((name, MetricType::parse(kind.trim())));
            }
            continue;
        }
        if line.as_bytes()[0] != b'{' && line.as_bytes()[0] != b'"' {
            let end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
            if !wanted(&line[..end]) {
                continue;
            }
        }
        labels.clear();
        match parse_sample(line, format, &mut labels) {
            Ok((name, value, timestamp_ms)) => {
                let family_type = match family {
                    Some((fam, t)) if belongs_to(&name, fam, t) => t,
                    _ => MetricType::Untyped,
                };
                stats.samples += 1;
                on_sample(&Sample { name, labels: &labels, value, timestamp_ms, family_type });
            }
            Err(message) => {
                stats.skipped_lines += 1;
                if stats.errors.len() < MAX_REPORTED_ERRORS {
                    stats.errors.push(LineError { line: index + 1, message });
                }
            }
        }
    }
    stats
}

/// `foo_total`, `foo_created` belong to counter `foo`; `_bucket`, `_sum`, `_count` to histograms…
fn belongs_to(name: &str, family: &str, t: MetricType) -> bool {
    let Some(suffix) = name.strip_prefix(family) else { return false };
    match suffix {
        "" => true,
        "_total" | "_created" => matches!(t, MetricType::Counter | MetricType::Histogram | MetricType::Summary),
        "_bucket" | "_sum" | "_count" => matches!(t, MetricType::Histogram | MetricType::Summary),
        "_gcount" | "_gsum" => t == MetricType::GaugeHistogram,
        "_info" => t == MetricType::Info,
        _ => false,
    }
}

/// `name rest` or `"quoted name" rest` (HELP/TYPE declarations).
fn split_name(s: &str) -> Option<(&str, &str)> {
    if let Some(q) = s.strip_prefix('"') {
        let end = q.find('"')?;
        return Some((&q[..end], &q[end + 1..]));
    }
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((&s[..end], &s[end..]))
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn bare_name(&mut self) -> Result<&'a str, String> {
        let start = self.pos;
        match self.peek() {
            Some(b) if is_name_start(b) => self.pos += 1,
            _ => return Err(format!("expected a name at column {}", start + 1)),
        }
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        Ok(&self.s[start..self.pos])
    }

    /// A double-quoted string; escapes `\\`, `\"`, `\n` are decoded (allocating only then).
    fn quoted(&mut self) -> Result<Cow<'a, str>, String> {
        if self.peek() != Some(b'"') {
            return Err(format!("expected '\"' at column {}", self.pos + 1));
        }
        self.pos += 1;
        let start = self.pos;
        let bytes = self.s.as_bytes();
        let mut owned: Option<String> = None;
        let mut run_start = start;
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'"' => {
                    let value = match owned {
                        None => Cow::Borrowed(&self.s[start..self.pos]),
                        Some(mut o) => {
                            o.push_str(&self.s[run_start..self.pos]);
                            Cow::Owned(o)
                        }
                    };
                    self.pos += 1;
                    return Ok(value);
                }
                b'\\' => {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(&self.s[run_start..self.pos]);
                    match bytes.get(self.pos + 1) {
                        Some(b'n') => o.push('\n'),
                        Some(b'\\') => o.push('\\'),
                        Some(b'"') => o.push('"'),
                        // Undefined escapes are kept as written, as Prometheus does.
                        Some(_) => o.push('\\'),
                        None => return Err("unterminated escape".into()),
                    }
                    self.pos += if matches!(bytes.get(self.pos + 1), Some(b'n' | b'\\' | b'"')) { 2 } else { 1 };
                    run_start = self.pos;
                }
                _ => self.pos += 1,
            }
        }
        Err("unterminated quoted string".into())
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b != b' ' && b != b'\t') {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
}

fn parse_sample<'a>(
    line: &'a str,
    format: Format,
    labels: &mut Vec<Label<'a>>,
) -> Result<(Cow<'a, str>, f64, Option<i64>), String> {
    let mut c = Cursor { s: line, pos: 0 };
    let mut name: Option<Cow<'a, str>> = match c.peek() {
        Some(b'{') => None,
        Some(b'"') => Some(c.quoted()?),
        _ => Some(Cow::Borrowed(c.bare_name()?)),
    };
    if c.peek() == Some(b'{') {
        c.pos += 1;
        loop {
            c.skip_blanks();
            match c.peek() {
                Some(b'}') => {
                    c.pos += 1;
                    break;
                }
                None => return Err("unterminated label set".into()),
                _ => {}
            }
            let key: Cow<'a, str> = if c.peek() == Some(b'"') { c.quoted()? } else { Cow::Borrowed(c.bare_name()?) };
            c.skip_blanks();
            if c.peek() == Some(b'=') {
                c.pos += 1;
                c.skip_blanks();
                let value = c.quoted()?;
                labels.push((key, value));
            } else if name.is_none() {
                // `{"my.dotted.metric", …}`: a quoted metric name inside the braces.
                name = Some(key);
            } else {
                return Err(format!("expected '=' after label {key:?}"));
            }
            c.skip_blanks();
            match c.peek() {
                Some(b',') => c.pos += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' at column {}", c.pos + 1)),
            }
        }
    }
    let name = name.ok_or("sample without a metric name")?;
    if c.skip_blanks() == 0 {
        return Err("expected a space before the value".into());
    }
    let value = parse_value(c.token())?;
    c.skip_blanks();
    let timestamp_ms = match c.peek() {
        None | Some(b'#') => None,
        Some(_) => {
            let t = c.token();
            Some(match format {
                Format::Text => t.parse::<i64>().map_err(|_| format!("bad timestamp {t:?}"))?,
                Format::OpenMetrics => {
                    let secs: f64 = t.parse().map_err(|_| format!("bad timestamp {t:?}"))?;
                    (secs * 1000.0).round() as i64
                }
            })
        }
    };
    c.skip_blanks();
    // What remains may only be an OpenMetrics exemplar (`# {…} value [timestamp]`), which is skipped.
    match c.peek() {
        None | Some(b'#') => Ok((name, value, timestamp_ms)),
        Some(_) => Err(format!("unexpected text at column {}", c.pos + 1)),
    }
}

fn parse_value(t: &str) -> Result<f64, String> {
    if t.is_empty() {
        return Err("missing value".into());
    }
    // Go's ParseFloat and OpenMetrics accept these spellings; Rust's parser accepts most but not all.
    match t.to_ascii_lowercase().as_str() {
        "nan" => return Ok(f64::NAN),
        "+inf" | "inf" | "+infinity" | "infinity" => return Ok(f64::INFINITY),
        "-inf" | "-infinity" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    t.parse::<f64>().map_err(|_| format!("bad value {t:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, labels sorted, value, timestamp) of a sample.
    type Owned = (String, Vec<(String, String)>, f64, Option<i64>);

    pub fn collect(input: &str, format: Format) -> (Vec<Owned>, ParseStats) {
        let mut out = Vec::new();
        let stats = parse(input, format, |s| {
            let mut labels: Vec<(String, String)> =
                s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            labels.sort();
            out.push((s.name.to_string(), labels, s.value, s.timestamp_ms));
        });
        (out, stats)
    }

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        v.sort();
        v
    }

    #[test]
    fn the_spec_example() {
        let text = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
"#;
        let (samples, stats) = collect(text, Format::Text);
        assert_eq!(stats.skipped_lines, 0, "{:?}", stats.errors);
        assert_eq!(samples.len(), 9);
        assert_eq!(
            samples[0],
            ("http_requests_total".into(), l(&[("code", "200"), ("method", "post")]), 1027.0, Some(1395066363000))
        );
        assert_eq!(samples[2].1, l(&[("error", "Cannot find file:\n\"FILE.TXT\""), ("path", "C:\\DIR\\FILE.TXT")]));
        assert_eq!(samples[3], ("metric_without_timestamp_and_labels".into(), vec![], 12.47, None));
        assert_eq!(samples[4].2, f64::INFINITY);
        assert_eq!(samples[4].3, Some(-3982045));
        assert_eq!(samples[6].1, l(&[("le", "+Inf")]));
    }

    #[test]
    fn family_types_cover_suffixes() {
        let text = "# TYPE c counter\nc_total 1\nc_created 2\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 2\nh_count 1\nother 5\n";
        let mut types = Vec::new();
        parse(text, Format::Text, |s| types.push((s.name.to_string(), s.family_type)));
        assert_eq!(types[0].1, MetricType::Counter);
        assert_eq!(types[1].1, MetricType::Counter);
        assert_eq!(types[2].1, MetricType::Histogram);
        assert_eq!(types[4].1, MetricType::Histogram);
        assert_eq!(types[5].1, MetricType::Untyped);
    }

    #[test]
    fn tricky_label_values_names_and_openmetrics() {
        let text = concat!(
            "m{path=\"/a,b\",code=\"200\"} 1\n",
            "m{q=\"a=b\",code=\"200\"} 2\n",
            "m{ext=\"{plpgsql}\"} 3\n",
            "m{a=\"1\", b=\"2\",} 4\n",
            "job:m:rate5m{a=\"1\"} 5\n",
            "{\"my.dotted.metric\", \"error.message\"=\"Not Found\"} 6\n",
            "foo_bucket{le=\"10\"} 17 1520879607.789 # {trace_id=\"oHg5SJYRHA0\"} 9.8 1520879607.789\n",
            "u 1e-3\n",
            "n NaN\n",
            "# EOF\n",
            "after_eof 1\n",
        );
        let (s, stats) = collect(text, Format::OpenMetrics);
        assert_eq!(stats.skipped_lines, 0, "{:?}", stats.errors);
        assert!(stats.saw_eof);
        assert_eq!(s.len(), 9);
        assert_eq!(s[0].1, l(&[("code", "200"), ("path", "/a,b")]));
        assert_eq!(s[1].1, l(&[("code", "200"), ("q", "a=b")]));
        assert_eq!(s[2].1, l(&[("ext", "{plpgsql}")]));
        assert_eq!(s[3].1, l(&[("a", "1"), ("b", "2")]));
        assert_eq!(s[4].0, "job:m:rate5m");
        assert_eq!((s[5].0.as_str(), s[5].1.clone()), ("my.dotted.metric", l(&[("error.message", "Not Found")])));
        assert_eq!((s[6].2, s[6].3), (17.0, Some(1520879607789)));
        assert_eq!(s[7].2, 0.001);
        assert!(s[8].2.is_nan());
    }

    #[test]
    fn garbage_is_counted_and_skipped_never_fatal() {
        let text = "ok 1\n{broken 2\nno_value\nm{a=\"x} 3\nm{a=x} 4\n9bad 1\nm 1 notatime\nm 1 2 3\nalso_ok 2\n";
        let (s, stats) = collect(text, Format::Text);
        assert_eq!(s.len(), 2);
        assert_eq!(stats.skipped_lines, 7);
        assert_eq!(stats.errors.len(), MAX_REPORTED_ERRORS);
        assert_eq!(stats.errors[0].line, 2);
    }

    #[test]
    fn every_byte_prefix_of_a_document_parses_without_panic() {
        let text = "# TYPE h histogram\nh_bucket{le=\"0.1\",p=\"a\\\"b\"} 3 1000\n{\"x.y\",\"k\"=\"v\\n\"} NaN\n";
        for end in 0..=text.len() {
            if text.is_char_boundary(end) {
                let _ = collect(&text[..end], Format::Text);
                let _ = collect(&text[..end], Format::OpenMetrics);
            }
        }
    }

    #[test]
    fn format_detection() {
        assert_eq!(Format::detect(Some("application/openmetrics-text; version=1.0.0"), ""), Format::OpenMetrics);
        assert_eq!(Format::detect(None, "a 1\n# EOF\n"), Format::OpenMetrics);
        assert_eq!(Format::detect(Some("text/plain; version=0.0.4"), "a 1\n"), Format::Text);
    }
}
