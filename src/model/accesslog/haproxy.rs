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
    let _frontend = tokens.next()?;
    let (backend, server) = tokens.next()?.split_once('/')?;
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
    let (method, target) = split_request(request);
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
        method: Cow::Borrowed(method),
        host: Cow::Borrowed(host),
        path: Cow::Borrowed(path),
        status,
        upstream_status: (contacted && response >= 0).then_some(status),
        bytes_sent: bytes,
        total_secs: ms(active),
        upstream_secs: server_time,
        backend: Cow::Borrowed(backend),
        upstream_addr: Cow::Borrowed(if contacted { server } else { "" }),
        attempts: u8::from(contacted),
        ..Record::default()
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn the_documented_examples() {
        let r = parse(r#"haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1""#).unwrap();
        assert_eq!((r.backend.as_ref(), r.upstream_addr.as_ref(), r.status), ("static", "srv1", 200));
        assert_eq!((r.total_secs, r.upstream_secs, r.path.as_ref()), (Some(0.109), Some(0.099), "/index.html"));
        assert_eq!(r.time, Some(1_233_922_454));

        let r = parse(r#"10.244.0.1:5793 [10/Apr/2020:10:32:50.132] https~ test-echo1-8080/SRV_TFW8V 0/0/1/2/3 200 653 - - ---- 1/1/0/0/0 0/0 "GET test.k8s.local/ HTTP/2.0""#).unwrap();
        assert_eq!((r.host.as_ref(), r.path.as_ref(), r.backend.as_ref()), ("test.k8s.local", "/", "test-echo1-8080"));

        let r = parse(r#"10.0.0.1:5000 [10/Apr/2020:10:32:50.132] fe be/<NOSRV> 3183/-1/-1/-1/11215 503 0 - - SC-- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#).unwrap();
        assert_eq!((r.status, r.attempts, r.upstream_secs, r.total_secs), (503, 0, None, Some(11.215)));
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
