//! Text formats as templates: literals and fields, compiled once from an nginx `log_format`
//! (`$var`) or an Envoy format string (`%OPERATOR%`), then matched left to right by finding each
//! field's closing literal — no regex, no allocation.

use std::borrow::Cow;

use super::{
    Record, find_literal, last_attempt, number, parse_clf_time, parse_iso_time, split_request, strip_scheme,
    sum_attempts, unsigned,
};

/// What a template field carries. Unknown variables are kept as [`Field::Skip`] so any
/// `log_format` compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Skip,
    TimeClf,
    TimeIso,
    TimeEpoch,
    /// `METHOD TARGET PROTOCOL`
    Request,
    Method,
    Path,
    Host,
    Status,
    UpstreamStatus,
    BytesSent,
    TotalSecs,
    TotalMs,
    /// Traefik's `55ms`.
    TotalMsSuffixed,
    UpstreamSecs,
    UpstreamMs,
    Backend,
    UpstreamAddr,
    Cache,
}

impl Field {
    fn nginx(var: &str) -> Field {
        match var {
            "time_local" => Field::TimeClf,
            "time_iso8601" => Field::TimeIso,
            "msec" => Field::TimeEpoch,
            "request" => Field::Request,
            "request_method" => Field::Method,
            "request_uri" | "uri" => Field::Path,
            "host" | "http_host" => Field::Host,
            "status" => Field::Status,
            "upstream_status" => Field::UpstreamStatus,
            "body_bytes_sent" | "bytes_sent" => Field::BytesSent,
            "request_time" => Field::TotalSecs,
            "upstream_response_time" => Field::UpstreamSecs,
            "proxy_upstream_name" | "traefik_router" => Field::Backend,
            "upstream_addr" | "traefik_server_url" => Field::UpstreamAddr,
            "upstream_cache_status" => Field::Cache,
            "traefik_duration" => Field::TotalMsSuffixed,
            _ => Field::Skip,
        }
    }

    fn envoy(operator: &str) -> Field {
        let op = operator.replace("REQUEST_HEADER(", "REQ(").replace("RESPONSE_HEADER(", "RESP(");
        // `%REQ(USER-AGENT):10%` truncates; the length does not change what the field is.
        let op = op.split_once("):").map_or(op.as_str(), |(head, _)| head).trim_end_matches(')');
        match op {
            o if o.starts_with("START_TIME") => Field::TimeIso,
            "REQ(:METHOD" => Field::Method,
            "REQ(X-ENVOY-ORIGINAL-PATH?:PATH" | "REQ(:PATH" => Field::Path,
            "REQ(:AUTHORITY" => Field::Host,
            "RESPONSE_CODE" => Field::Status,
            "BYTES_SENT" => Field::BytesSent,
            "DURATION" => Field::TotalMs,
            "RESP(X-ENVOY-UPSTREAM-SERVICE-TIME" => Field::UpstreamMs,
            "UPSTREAM_HOST" => Field::UpstreamAddr,
            "UPSTREAM_CLUSTER" | "UPSTREAM_CLUSTER_RAW" => Field::Backend,
            _ => Field::Skip,
        }
    }

    /// Fields that may hold nginx's `a, b : c` lists, whose separators contain spaces (unknown
    /// variables too: `$upstream_response_length` is one).
    fn is_list(self) -> bool {
        matches!(self, Field::UpstreamAddr | Field::UpstreamStatus | Field::UpstreamSecs | Field::Skip)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Literal text before the first field.
    lead: String,
    /// Each field with the literal that follows it (empty for a field that ends the line).
    fields: Vec<(Field, String)>,
}

impl Template {
    /// Compiles an nginx `log_format` string (`$var` and `${var}`).
    pub fn nginx(format: &str) -> Result<Template, String> {
        Template::compile(format, |rest| {
            let rest = rest.strip_prefix('$')?;
            if let Some(braced) = rest.strip_prefix('{') {
                let end = braced.find('}')?;
                return Some((Field::nginx(&braced[..end]), end + 3));
            }
            let len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
            (len > 0).then(|| (Field::nginx(&rest[..len]), len + 1))
        })
    }

    /// Compiles an Envoy access-log format string (`%OPERATOR%`).
    pub fn envoy(format: &str) -> Result<Template, String> {
        let format = format.trim_end_matches('\n').trim_end_matches("\\n");
        Template::compile(format, |rest| {
            let body = rest.strip_prefix('%')?;
            let end = body.find('%')?;
            (end > 0).then(|| (Field::envoy(&body[..end]), end + 2))
        })
    }

    /// `field_at` recognises a field at the start of its argument: (field, bytes it spans).
    fn compile(format: &str, field_at: impl Fn(&str) -> Option<(Field, usize)>) -> Result<Template, String> {
        let mut lead = String::new();
        let mut fields: Vec<(Field, String)> = Vec::new();
        let mut i = 0;
        while i < format.len() {
            let rest = &format[i..];
            if let Some((field, len)) = field_at(rest) {
                if let Some((_, lit)) = fields.last()
                    && lit.is_empty()
                {
                    return Err(format!("two fields with nothing between them at {:?}", &format[..i + len]));
                }
                fields.push((field, String::new()));
                i += len;
            } else {
                let c = rest.chars().next().unwrap_or(' ');
                fields.last_mut().map_or(&mut lead, |(_, lit)| lit).push(c);
                i += c.len_utf8();
            }
        }
        if fields.is_empty() {
            return Err("the format has no fields".into());
        }
        if !fields.iter().any(|(f, _)| matches!(f, Field::Status)) {
            return Err("the format has no status field ($status / %RESPONSE_CODE%)".into());
        }
        Ok(Template { lead, fields })
    }

    pub fn parse<'a>(&self, line: &'a str) -> Option<Record<'a>> {
        // (Most formats start with a field: skip the call to memcmp for an empty lead.)
        let mut rest = if self.lead.is_empty() { line } else { line.strip_prefix(self.lead.as_str())? };
        let mut rec = Record { attempts: 0, ..Record::default() };
        for (field, lit) in &self.fields {
            let end = if lit.is_empty() { rest.len() } else { field_end(*field, rest, lit)? };
            // Most fields are skipped: a predictable branch, not a jump through `apply`'s table
            // (mispredicted there, that jump cost a fifteenth of the parse).
            if *field != Field::Skip {
                apply(*field, &rest[..end], &mut rec)?;
            }
            rest = &rest[end + lit.len()..];
        }
        rest.trim().is_empty().then_some(rec)
    }
}

/// Where the field's value ends: the next occurrence of its closing literal, except inside an
/// upstream list (`10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80`) whose separators contain spaces.
fn field_end(field: Field, rest: &str, lit: &str) -> Option<usize> {
    let mut from = 0;
    loop {
        let at = from + find_literal(&rest[from..], lit)?;
        let (before, after) = (&rest.as_bytes()[..at], &rest.as_bytes()[at..]);
        let inside_list = field.is_list()
            && lit.as_bytes()[0] == b' '
            && (before.last() == Some(&b',')
                || before.ends_with(b" :")
                || (after.len() >= 3 && after[1] == b':' && after[2] == b' '));
        if !inside_list {
            return Some(at);
        }
        from = at + 1;
    }
}

fn apply<'a>(field: Field, value: &'a str, rec: &mut Record<'a>) -> Option<()> {
    match field {
        Field::Skip => {}
        Field::TimeClf => rec.time = Some(parse_clf_time(value)?),
        Field::TimeIso => rec.time = Some(parse_iso_time(value)?),
        Field::TimeEpoch => rec.time = Some(number(value)? as i64),
        Field::Request => {
            let (method, target) = split_request(value);
            rec.method = Cow::Borrowed(method);
            rec.path = Cow::Borrowed(target);
        }
        Field::Method => rec.method = Cow::Borrowed(value),
        Field::Path => rec.path = Cow::Borrowed(value),
        Field::Host => rec.host = Cow::Borrowed(if value == "-" { "" } else { value }),
        Field::Status => {
            let status = u16::try_from(unsigned(value)?).ok()?;
            // Envoy logs 0 when the client went away before a response.
            if status != 0 && !(100..=599).contains(&status) {
                return None;
            }
            rec.status = status;
        }
        Field::UpstreamStatus => {
            rec.upstream_status = unsigned(last_attempt(value).0).and_then(|s| u16::try_from(s).ok());
        }
        Field::BytesSent => rec.bytes_sent = if value == "-" { 0 } else { unsigned(value)? },
        Field::TotalSecs => rec.total_secs = optional(value)?,
        Field::TotalMs => rec.total_secs = optional(value)?.map(|ms| ms / 1000.0),
        Field::TotalMsSuffixed => rec.total_secs = Some(number(value.strip_suffix("ms")?)? / 1000.0),
        Field::UpstreamSecs => rec.upstream_secs = sum_attempts(value),
        Field::UpstreamMs => rec.upstream_secs = optional(value)?.map(|ms| ms / 1000.0),
        Field::Backend => rec.backend = Cow::Borrowed(if value == "-" { "" } else { value }),
        Field::UpstreamAddr => {
            let (last, attempts) = last_attempt(value);
            rec.upstream_addr = Cow::Borrowed(strip_scheme(last));
            rec.attempts = attempts;
        }
        Field::Cache => rec.cache = Cow::Borrowed(if value == "-" { "" } else { value }),
    }
    Some(())
}

/// A number, or `-` for "none"; anything else means the line is not in this format.
fn optional(value: &str) -> Option<Option<f64>> {
    match value {
        "-" | "" => Some(None),
        v => number(v).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ENVOY_DEFAULT, Format, INGRESS_NGINX, ISTIO_TEXT, TRAEFIK_CLF};
    use super::*;

    #[test]
    fn ingress_nginx_lines_from_real_clusters() {
        let t = Template::nginx(INGRESS_NGINX).unwrap();
        let r = t
            .parse(r#"192.168.49.1 - - [01/Jan/2024:12:00:00 +0000] "GET /frontend HTTP/1.1" 200 250 "-" "curl/7.81.0" 84 0.002 [default-frontend-svc-80] [] 10.244.0.5:80 250 0.002 200 abc123"#)
            .unwrap();
        assert_eq!((r.method.as_ref(), r.path.as_ref(), r.status), ("GET", "/frontend", 200));
        assert_eq!((r.backend.as_ref(), r.upstream_addr.as_ref()), ("default-frontend-svc-80", "10.244.0.5:80"));
        assert_eq!((r.total_secs, r.upstream_secs, r.upstream_status), (Some(0.002), Some(0.002), Some(200)));
        assert_eq!((r.time, r.bytes_sent, r.attempts), (Some(1_704_110_400), 250, 1));

        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
        let line = format!(
            r#"172.18.0.1 - - [08/Jul/2024:10:27:02 +0000] "GET / HTTP/1.1" 200 3747 "-" "{ua}" 816 0.019 [todoapp-todoapp-service-80] [] 10.244.1.2:8080 3747 0.019 200 f4d30fe9a4ae61d4379095042778f51b"#
        );
        assert_eq!(t.parse(&line).unwrap().upstream_addr, "10.244.1.2:8080");
    }

    #[test]
    fn retries_and_unreachable_upstreams() {
        let t = Template::nginx(INGRESS_NGINX).unwrap();
        let retried = r#"10.0.0.9 - - [01/Jan/2024:12:00:00 +0000] "POST /api/pay HTTP/1.1" 200 12 "-" "k6" 100 1.505 [shop-payment-80] [] 10.1.0.4:8080, 10.1.0.5:8080 0, 12 1.000, 0.500 502, 200 ffff"#;
        let r = t.parse(retried).unwrap();
        assert_eq!((r.upstream_addr.as_ref(), r.attempts, r.upstream_status), ("10.1.0.5:8080", 2, Some(200)));
        assert!((r.upstream_secs.unwrap() - 1.5).abs() < 1e-9);
        let none = r#"10.0.0.9 - - [01/Jan/2024:12:00:00 +0000] "GET /x HTTP/1.1" 503 190 "-" "k6" 420 0.000 [shop-cart-80] [] - - - - abc"#;
        let r = t.parse(none).unwrap();
        assert_eq!((r.status, r.attempts, r.upstream_secs, r.upstream_addr.as_ref()), (503, 0, None, ""));
    }

    #[test]
    fn envoy_and_istio_default_lines() {
        let envoy = Template::envoy(ENVOY_DEFAULT).unwrap();
        let r = envoy.parse(r#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80""#).unwrap();
        assert_eq!((r.status, r.total_secs, r.upstream_secs), (204, Some(0.226), Some(0.1)));
        assert_eq!((r.host.as_ref(), r.upstream_addr.as_ref()), ("locations", "10.0.2.1:80"));

        let istio = Template::envoy(ISTIO_TEXT).unwrap();
        let r = istio.parse(r#"[2025-05-04T17:22:59.046Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 437 142 141 "-" "Mozilla/5.0 (X11) Safari/537.36" "4e43168a-01e6-907c-ba17-2f72fad816a8" "reviews:9080" "10.244.1.15:9080" outbound|9080||reviews.default.svc.cluster.local 10.244.2.19:60236 10.96.81.152:9080 10.244.2.19:55058 - default"#).unwrap();
        assert_eq!(r.backend, "outbound|9080||reviews.default.svc.cluster.local");
        assert_eq!((r.total_secs, r.upstream_secs, r.bytes_sent), (Some(0.142), Some(0.141), 437));
    }

    #[test]
    fn traefik_common_lines() {
        let t = Template::nginx(TRAEFIK_CLF).unwrap();
        let r = t.parse(r#"10.42.2.19 - - [18/Jun/2026:15:18:46 +0000] "POST /api/v4/jobs/request HTTP/1.1" 204 0 "-" "-" 8086 "websecure-gitlab@kubernetes" "http://10.42.13.162:8181" 2ms"#).unwrap();
        assert_eq!(
            (r.backend.as_ref(), r.upstream_addr.as_ref()),
            ("websecure-gitlab@kubernetes", "10.42.13.162:8181")
        );
        assert_eq!((r.status, r.total_secs), (204, Some(0.002)));
        assert_eq!(Format::detect(r#"87.152.164.121 - - [05/Jul/2022:07:46:05 +0000] "GET /v1/events HTTP/2.0" 200 32619 "-" "-" 99 "websecure-rancher@kubernetes" "http://10.42.0.4:80" 55ms"#).unwrap().name(), "traefik");
    }

    #[test]
    fn a_users_log_format_compiles_once() {
        let t = Template::nginx(r#"$remote_addr [$time_iso8601] $host "$request" $status ${request_time}s up=$upstream_addr cache=$upstream_cache_status"#).unwrap();
        let r = t.parse(r#"1.2.3.4 [2024-01-01T12:00:00+00:00] shop.example "GET /a?b=1 HTTP/2.0" 404 0.250s up=10.0.0.1:80 cache=HIT"#).unwrap();
        assert_eq!(
            (r.host.as_ref(), r.status, r.total_secs, r.cache.as_ref()),
            ("shop.example", 404, Some(0.25), "HIT")
        );
        assert!(Template::nginx("$remote_addr$status").is_err(), "adjacent fields cannot be split");
        assert!(Template::nginx("$remote_addr $body_bytes_sent").is_err(), "a status is required");
    }

    #[test]
    fn lines_of_another_shape_are_refused_not_misread() {
        let t = Template::nginx(INGRESS_NGINX).unwrap();
        for line in
            ["", "-", "[", "I0902 19:52:29.236097 6 status.go:85] updating", "1 - - [x] \"GET / HTTP/1.1\" abc 1"]
        {
            assert!(t.parse(line).is_none(), "{line:?}");
        }
    }
}
