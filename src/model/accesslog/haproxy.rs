//! HAProxy `option httplog`:
//! `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`
//! — positional, so parsed by position; a syslog prefix (`… haproxy[123]: `) is skipped.

use std::borrow::Cow;

use super::{Record, parse_clf_time, split_request};

pub fn parse(line: &str) -> Option<Record<'_>> {
    let line = match line.find("]: ") {
        Some(i) if line[..i].contains("haproxy[") => &line[i + 3..],
        _ => line,
    };
    let mut tokens = line.splitn(12, ' ');
    let client = tokens.next()?;
    if !client.contains(':') {
        return None;
    }
    let accepted = tokens.next()?.strip_prefix('[')?.strip_suffix(']')?;
    let frontend = tokens.next()?;
    let backend_server = tokens.next()?;
    let (backend, server) = backend_server.split_once('/')?;
    // A request stopped in the frontend (`http-request deny`, a `<BADREQ>`) is logged with the
    // frontend as its backend and no server: no backend was chosen.
    let refused = server == "<NOSRV>" && backend == frontend.trim_end_matches('~');
    let timers: Vec<i64> = tokens.next()?.split('/').map(|t| t.parse().ok()).collect::<Option<_>>()?;
    let [_receive, _queue, connect, response, active] = timers[..] else { return None };
    let status: u16 = tokens.next()?.parse().ok().filter(|s| (100..600).contains(s))?;
    let bytes: u64 = tokens.next()?.trim_start_matches('+').parse().ok()?;
    let _cookies = (tokens.next()?, tokens.next()?);
    let _termination = tokens.next()?;
    let conns = tokens.next()?;
    if conns.split('/').count() != 5 {
        return None;
    }
    let rest = tokens.next()?;
    // `%sq/%bq`, optional `{captured headers}`, then the quoted request line.
    let request = &rest[rest.find('"')? + 1..];
    let request = request.strip_suffix('"').unwrap_or(request);
    // `<BADREQ>`: HAProxy could not read a request line; there is no method or path.
    let (method, target) = if request.starts_with('<') { ("", "") } else { split_request(request) };
    // The HAProxy Kubernetes ingress logs `host/path` as the target.
    let (host, path) = match target.find('/') {
        Some(0) | None => ("", target),
        Some(i) if !target.starts_with("http") => (&target[..i], &target[i..]),
        Some(_) => ("", target),
    };
    let ms = |v: i64| (v >= 0).then_some(v as f64 / 1000.0);
    let server_time = match (connect, response) {
        (c, r) if c >= 0 && r >= 0 => Some((c + r) as f64 / 1000.0),
        _ => None,
    };
    let contacted = connect >= 0 && server != "<NOSRV>";
    Some(Record {
        time: parse_clf_time(accepted),
        zoneless: true,
        method: Cow::Borrowed(method),
        host: Cow::Borrowed(host),
        path: Cow::Borrowed(path),
        status,
        upstream_status: (contacted && response >= 0).then_some(status),
        bytes_sent: bytes,
        total_secs: ms(active),
        upstream_secs: server_time,
        backend: Cow::Borrowed(if refused { "" } else { backend }),
        // Servers are named per backend (`pod0` of every backend is another pod): the pair is
        // the server. (`option httplog` logs no server address.)
        upstream_addr: Cow::Borrowed(if contacted { backend_server } else { "" }),
        attempts: u8::from(contacted),
        refused,
        ..Record::default()
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn the_documented_examples() {
        let r = parse(r#"haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1""#).unwrap();
        assert_eq!((r.backend.as_ref(), r.upstream_addr.as_ref(), r.status), ("static", "static/srv1", 200));
        assert_eq!((r.total_secs, r.upstream_secs, r.path.as_ref()), (Some(0.109), Some(0.099), "/index.html"));
        assert_eq!(r.time, Some(1_233_922_454));

        let r = parse(r#"10.244.0.1:5793 [10/Apr/2020:10:32:50.132] https~ test-echo1-8080/SRV_TFW8V 0/0/1/2/3 200 653 - - ---- 1/1/0/0/0 0/0 "GET test.k8s.local/ HTTP/2.0""#).unwrap();
        assert_eq!((r.host.as_ref(), r.path.as_ref(), r.backend.as_ref()), ("test.k8s.local", "/", "test-echo1-8080"));

        let r = parse(r#"10.0.0.1:5000 [10/Apr/2020:10:32:50.132] fe be/<NOSRV> 3183/-1/-1/-1/11215 503 0 - - SC-- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#).unwrap();
        assert_eq!((r.status, r.attempts, r.upstream_secs, r.total_secs), (503, 0, None, Some(11.215)));
        assert!(!r.refused, "a backend without a server to take it is the backend's failure");
        assert_eq!(r.backend, "be");
    }

    #[test]
    fn a_request_stopped_in_the_frontend_belongs_to_no_backend() {
        let r = parse(r#"127.0.0.1:41000 [04/Dec/2026:03:10:00.001] http-in http-in/<NOSRV> -1/-1/-1/-1/+3001 400 187 - - CR-- 1/1/0/0/0 0/0 "<BADREQ>""#).unwrap();
        assert!(r.refused);
        assert_eq!(
            (r.backend.as_ref(), r.upstream_addr.as_ref(), r.method.as_ref(), r.path.as_ref()),
            ("", "", "", "")
        );
        let r = parse(r#"127.0.0.1:41002 [04/Dec/2026:03:10:00.002] fe fe/<NOSRV> 0/-1/-1/-1/0 401 150 - - PR-- 1/1/0/0/0 0/0 "GET /admin HTTP/1.1""#).unwrap();
        assert!(r.refused);
        assert_eq!((r.backend.as_ref(), r.path.as_ref(), r.status), ("", "/admin", 401));
    }

    #[test]
    fn other_lines_are_refused() {
        for line in [
            "",
            "[WARNING] 123/456 : Server be/s1 is DOWN",
            "a:b [x] fe be/s 1/2 200 1 - - ---- 1/1/1/1/0 0/0 \"GET / HTTP/1.1\"",
        ] {
            assert!(parse(line).is_none(), "{line}");
        }
    }
}
