//! JSON access logs: Istio (`accessLogEncoding: JSON`), Envoy Gateway, Traefik (`format: json`)
//! and Caddy. One struct knows all their keys; which gateway wrote the line decides the units
//! (Envoy milliseconds, Traefik nanoseconds, Caddy seconds).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{Record, last_attempt, parse_iso_time, strip_scheme};

#[derive(Deserialize, Default)]
#[allow(non_snake_case)]
struct Line<'a> {
    // Envoy, Istio, Envoy Gateway.
    #[serde(borrow)]
    start_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    path: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "x-envoy-origin-path")]
    origin_path: Option<Cow<'a, str>>,
    response_code: Option<Num>,
    bytes_sent: Option<Num>,
    /// Envoy: milliseconds. Caddy: seconds.
    duration: Option<Num>,
    upstream_service_time: Option<Num>,
    #[serde(rename = "x-envoy-upstream-service-time")]
    eg_upstream_service_time: Option<Num>,
    #[serde(borrow)]
    authority: Option<Cow<'a, str>>,
    #[serde(borrow, rename = ":authority")]
    eg_authority: Option<Cow<'a, str>>,
    #[serde(borrow)]
    upstream_host: Option<Cow<'a, str>>,
    #[serde(borrow)]
    upstream_cluster: Option<Cow<'a, str>>,

    // Traefik.
    #[serde(borrow)]
    StartUTC: Option<Cow<'a, str>>,
    #[serde(borrow)]
    RequestMethod: Option<Cow<'a, str>>,
    #[serde(borrow)]
    RequestPath: Option<Cow<'a, str>>,
    #[serde(borrow)]
    RequestHost: Option<Cow<'a, str>>,
    DownstreamStatus: Option<Num>,
    OriginStatus: Option<Num>,
    DownstreamContentSize: Option<Num>,
    /// Nanoseconds, total.
    Duration: Option<Num>,
    /// Nanoseconds spent on the backend.
    OriginDuration: Option<Num>,
    #[serde(borrow)]
    ServiceName: Option<Cow<'a, str>>,
    #[serde(borrow)]
    RouterName: Option<Cow<'a, str>>,
    /// A string, or (older Traefik) a Go `url.URL` object.
    ServiceURL: Option<ServiceUrl>,
    #[serde(borrow)]
    ServiceAddr: Option<Cow<'a, str>>,
    RetryAttempts: Option<Num>,

    // Caddy.
    ts: Option<Num>,
    #[serde(borrow)]
    request: Option<CaddyRequest<'a>>,
    status: Option<Num>,
    size: Option<Num>,
}

#[derive(Deserialize)]
struct CaddyRequest<'a> {
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ServiceUrl {
    Text(String),
    Url {
        #[serde(rename = "Host")]
        host: String,
    },
}

/// A number written as a number or a string; `"-"`, `""` and `null` are absent.
struct Num(Option<f64>);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, a numeric string or null")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(Some(v as f64)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(Some(v as f64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                Ok(Num(v.trim().parse().ok()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
                Ok(Num(None))
            }
        }
        d.deserialize_any(V)
    }
}

fn get(n: &Option<Num>) -> Option<f64> {
    n.as_ref().and_then(|n| n.0)
}

fn text<'a>(s: Option<Cow<'a, str>>) -> Cow<'a, str> {
    match s {
        Some(s) if s != "-" => s,
        _ => Cow::Borrowed(""),
    }
}

fn status(n: &Option<Num>) -> Option<u16> {
    get(n).filter(|s| (0.0..600.0).contains(s)).map(|s| s as u16)
}

pub fn parse(line: &str) -> Option<Record<'_>> {
    if !line.trim_start().starts_with('{') {
        return None;
    }
    let l: Line = serde_json::from_str(line).ok()?;
    if let Some(req) = l.request {
        // Caddy: `duration` in seconds, `ts` a float Unix time.
        return Some(Record {
            time: get(&l.ts).map(|t| t as i64),
            method: text(req.method),
            host: text(req.host),
            path: text(req.uri),
            status: status(&l.status)?,
            bytes_sent: get(&l.size).unwrap_or(0.0) as u64,
            total_secs: get(&l.duration),
            ..Record::default()
        });
    }
    if l.DownstreamStatus.is_some() || l.RequestPath.is_some() {
        let url = match &l.ServiceURL {
            Some(ServiceUrl::Text(s)) => strip_scheme(s),
            Some(ServiceUrl::Url { host }) => host.as_str(),
            None => "",
        };
        let addr = match l.ServiceAddr {
            Some(a) if !a.is_empty() => a,
            _ => Cow::Owned(url.to_string()),
        };
        let origin = status(&l.OriginStatus).filter(|s| *s != 0);
        return Some(Record {
            time: l.StartUTC.as_deref().and_then(parse_iso_time),
            method: text(l.RequestMethod),
            host: text(l.RequestHost),
            path: text(l.RequestPath),
            status: status(&l.DownstreamStatus)?,
            upstream_status: origin,
            bytes_sent: get(&l.DownstreamContentSize).unwrap_or(0.0) as u64,
            total_secs: get(&l.Duration).map(|ns| ns / 1e9),
            upstream_secs: get(&l.OriginDuration).filter(|_| origin.is_some()).map(|ns| ns / 1e9),
            backend: text(l.ServiceName.or(l.RouterName)),
            attempts: u8::from(!addr.is_empty()).saturating_add(get(&l.RetryAttempts).unwrap_or(0.0) as u8),
            upstream_addr: addr,
            ..Record::default()
        });
    }
    let code = status(&l.response_code)?;
    let upstream = text(l.upstream_host);
    let (addr, attempts) = match upstream {
        Cow::Borrowed(u) => {
            let (last, n) = last_attempt(u);
            (Cow::Borrowed(strip_scheme(last)), n)
        }
        Cow::Owned(u) => {
            let n = last_attempt(&u).1;
            (Cow::Owned(u), n)
        }
    };
    Some(Record {
        time: l.start_time.as_deref().and_then(parse_iso_time),
        method: text(l.method),
        host: text(l.authority.or(l.eg_authority)),
        path: text(l.path.or(l.origin_path)),
        status: code,
        bytes_sent: get(&l.bytes_sent).unwrap_or(0.0) as u64,
        total_secs: get(&l.duration).map(|ms| ms / 1000.0),
        upstream_secs: get(&l.upstream_service_time).or(get(&l.eg_upstream_service_time)).map(|ms| ms / 1000.0),
        backend: text(l.upstream_cluster),
        upstream_addr: addr,
        attempts,
        ..Record::default()
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn istio_json_with_string_and_number_values() {
        let line = r#"{"authority":"reviews:9080","bytes_received":0,"bytes_sent":437,"connection_termination_details":null,"downstream_local_address":"10.96.81.152:9080","downstream_remote_address":"10.244.2.19:55058","duration":142,"method":"GET","path":"/reviews/0","protocol":"HTTP/1.1","request_id":"4e43168a","requested_server_name":null,"response_code":200,"response_code_details":"via_upstream","response_flags":"-","route_name":"default","start_time":"2025-05-04T17:22:59.046Z","upstream_cluster":"outbound|9080||reviews.default.svc.cluster.local","upstream_host":"10.244.1.15:9080","upstream_local_address":"10.244.2.19:60236","upstream_service_time":"141","upstream_transport_failure_reason":null,"user_agent":"Mozilla/5.0","x_forwarded_for":null}"#;
        let r = parse(line).unwrap();
        assert_eq!((r.status, r.total_secs, r.upstream_secs), (200, Some(0.142), Some(0.141)));
        assert_eq!(
            (r.upstream_addr.as_ref(), r.backend.as_ref()),
            ("10.244.1.15:9080", "outbound|9080||reviews.default.svc.cluster.local")
        );
        assert_eq!(r.time, Some(1_746_379_379));
    }

    #[test]
    fn envoy_gateway_keys() {
        let line = r#"{":authority":"www.example.com","bytes_received":0,"bytes_sent":533,"downstream_local_address":"10.244.0.10:10080","duration":3,"method":"GET","protocol":"HTTP/1.1","response_code":200,"response_flags":"-","route_name":"httproute/default/backend/rule/0/match/0/www_example_com","start_time":"2024-01-10T09:00:00.000Z","upstream_cluster":"httproute/default/backend/rule/0","upstream_host":"10.244.0.7:3000","x-envoy-origin-path":"/get","x-envoy-upstream-service-time":"2"}"#;
        let r = parse(line).unwrap();
        assert_eq!((r.path.as_ref(), r.host.as_ref(), r.upstream_secs), ("/get", "www.example.com", Some(0.002)));
    }

    #[test]
    fn traefik_json_with_service_url_as_string_or_object() {
        let s = r#"{"ClientHost":"10.42.0.1","DownstreamContentSize":12,"DownstreamStatus":502,"Duration":30000000,"OriginDuration":29000000,"OriginStatus":502,"RequestHost":"shop.local","RequestMethod":"GET","RequestPath":"/api/x","RetryAttempts":1,"RouterName":"web-shop-cart@kubernetes","ServiceName":"shop-cart-80@kubernetes","ServiceURL":"http://10.42.1.7:8080","StartUTC":"2024-03-01T10:00:00.123456789Z","level":"info","msg":"","time":"2024-03-01T10:00:00Z"}"#;
        let r = parse(s).unwrap();
        assert_eq!((r.status, r.upstream_status, r.attempts), (502, Some(502), 2));
        assert_eq!((r.upstream_addr.as_ref(), r.backend.as_ref()), ("10.42.1.7:8080", "shop-cart-80@kubernetes"));
        assert_eq!((r.total_secs, r.upstream_secs), (Some(0.03), Some(0.029)));
        let o = r#"{"DownstreamStatus":200,"Duration":1000000,"OriginStatus":200,"RequestPath":"/","ServiceURL":{"Scheme":"http","Opaque":"","User":null,"Host":"10.0.1.15:3000","Path":"","RawPath":""}}"#;
        assert_eq!(parse(o).unwrap().upstream_addr, "10.0.1.15:3000");
    }

    #[test]
    fn caddy_json() {
        let line = r#"{"level":"info","ts":1646861401.5241024,"logger":"http.log.access","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"41342","proto":"HTTP/2.0","method":"GET","host":"localhost","uri":"/api/v1/users/42?x=1","headers":{"User-Agent":["curl/7.82.0"]}},"bytes_read":0,"user_id":"","duration":0.000929675,"size":10900,"status":200,"resp_headers":{"Server":["Caddy"]}}"#;
        let r = parse(line).unwrap();
        assert_eq!(
            (r.status, r.bytes_sent, r.time, r.path.as_ref()),
            (200, 10900, Some(1_646_861_401), "/api/v1/users/42?x=1")
        );
        assert!((r.total_secs.unwrap() - 0.000929675).abs() < 1e-12);
    }

    #[test]
    fn json_that_is_not_an_access_log_is_refused() {
        for line in [
            r#"{"level":"info","msg":"server started"}"#,
            "{",
            "{\"status\": \"x\"",
            "[1,2]",
            r#"{"response_code":"abc"}"#,
        ] {
            assert!(parse(line).is_none(), "{line}");
        }
    }
}
