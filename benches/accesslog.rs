//! Gateway access logs: parse + aggregate ingress-nginx `upstreaminfo` lines into the traffic
//! windows, on one core. Lines come from a generator with realistic variety (ids in paths, 40
//! services, 400 pod IPs, retries, 5xx, 503s with no upstream).
//!
//! `KPULSE_INGEST_FILE=access.log cargo bench --bench accesslog` instead reads that file once
//! (the side-by-side run against goaccess in scripts/gateway-bench.sh) and prints lines/s.

use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group};
use kpulse::app::traffic::Stream;
use kpulse::model::accesslog::Format;
use kpulse::model::traffic::Traffic;

pub const START: i64 = 1_767_225_600;

/// `n` lines over `n / 2000` seconds (2,000 requests per second).
fn lines(n: usize) -> String {
    lines_from(0, n)
}

/// Lines `first..first + n` of one long log: times keep rising across calls.
fn lines_from(first: usize, n: usize) -> String {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (first as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out = String::with_capacity(n * 260);
    for i in first..first + n {
        let r = next();
        let svc = r % 40;
        let t = START + (i / 2000) as i64;
        let time = format_clf(t);
        let path = match r % 4 {
            0 => format!("/api/svc{svc}/orders/{}", r % 100_000),
            1 => format!("/api/svc{svc}/items/{:x}", r),
            2 => format!("/svc{svc}/"),
            _ => format!("/api/svc{svc}/search?q={}", r % 977),
        };
        let status = if r % 97 == 0 {
            503
        } else if r % 31 == 0 {
            500
        } else {
            200
        };
        let up_ms = 2 + r % 300;
        let total = (up_ms + 1) as f64 / 1000.0;
        let ip = format!("10.244.{}.{}:8080", svc % 10, (r >> 20) % 40);
        let (addr, up_time, up_status) = if status == 503 {
            ("-".to_string(), "-".to_string(), "-".to_string())
        } else if r % 53 == 0 {
            (format!("10.244.9.9:8080, {ip}"), format!("0.001, {:.3}", up_ms as f64 / 1000.0), format!("502, {status}"))
        } else {
            (ip, format!("{:.3}", up_ms as f64 / 1000.0), status.to_string())
        };
        out.push_str(&format!(
            "203.0.113.{} - - [{time}] \"GET {path} HTTP/1.1\" {status} {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" 420 {total:.3} [shop-svc{svc}-80] [] {addr} 512 {up_time} {up_status} {:032x}\n",
            r % 250,
            200 + r % 4000,
            r as u128 * 7919
        ));
    }
    out
}

fn format_clf(t: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(t).unwrap().strftime("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

fn ingest(text: &str, format: &Format) -> (Stream, Traffic) {
    let mut traffic = Traffic::new(START, 900);
    let mut stream = Stream::with_format(Some(format.clone()));
    let end = START + 300;
    stream.ingest(text, &mut traffic, end);
    (stream, traffic)
}

fn bench(c: &mut Criterion) {
    let text = lines(200_000);
    let format = Format::by_name("ingress-nginx").unwrap();
    let (stream, traffic) = ingest(&text, &format);
    assert_eq!((stream.matched, stream.skipped), (200_000, 0), "every generated line is read");
    assert_eq!(traffic.gateway.total().requests, 200_000);
    eprintln!(
        "{} bytes, {} routes, {} backends, {} upstreams",
        text.len(),
        traffic.routes.stats.len(),
        traffic.backends.stats.len(),
        traffic.upstreams.stats.len()
    );

    let mut group = c.benchmark_group("ingress_nginx_200k_lines");
    group.sample_size(10);
    group.throughput(Throughput::Elements(200_000));
    group.bench_function("parse_only", |b| {
        b.iter(|| text.lines().filter_map(|l| format.parse(l)).map(|r| r.status as u64).sum::<u64>())
    });
    group.bench_function("parse_and_aggregate", |b| b.iter(|| ingest(&text, &format).0.matched));
    group.bench_function("detect_then_parse_and_aggregate", |b| {
        b.iter(|| {
            let mut traffic = Traffic::new(START, 900);
            let mut stream = Stream::default();
            stream.ingest(&text, &mut traffic, START + 300);
            stream.matched
        })
    });
    group.finish();

    // Memory stays bounded under unique paths: a million distinct routes keep the cap.
    let mut traffic = Traffic::new(START, 900);
    let mut stream = Stream::with_format(Some(format.clone()));
    let unique: String = text
        .lines()
        .take(100_000)
        .enumerate()
        .map(|(i, l)| l.replacen("GET /", &format!("GET /u{i}x/"), 1) + "\n")
        .collect();
    stream.ingest(&unique, &mut traffic, START + 300);
    assert!(traffic.routes.stats.len() <= kpulse::model::traffic::MAX_ROUTES + 1);
}

/// One pass over a file, reported as lines per second (for the goaccess comparison).
fn ingest_file(path: &str) {
    let format = Format::by_name("ingress-nginx").unwrap();
    let started = Instant::now();
    let mut file = std::fs::File::open(path).expect("KPULSE_INGEST_FILE is readable");
    let mut traffic = Traffic::new(START, 900);
    // As `kpulse snapshot --gateway file+all:` reads a log without a cluster: the windows move
    // with the log's times.
    traffic.follow_log_time();
    let mut stream = Stream::with_format(Some(format));
    let mut pending = kpulse::model::accesslog::LineBuffer::default();
    let mut bytes = 0u64;
    loop {
        // Read and chunked into whole lines as the file source does it (256 KiB reads).
        let (n, chunk) = pending.fill_from(&mut file, 256 * 1024).expect("read");
        if n == 0 {
            break;
        }
        bytes += n as u64;
        if let Some(chunk) = chunk {
            stream.ingest(&chunk, &mut traffic, START + 300);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "kpulse: {} lines ({} skipped, {bytes} bytes) in {secs:.2} s = {:.0} lines/s; {} routes, {} backends, {} upstreams",
        stream.matched,
        stream.skipped,
        stream.matched as f64 / secs,
        traffic.routes.stats.len(),
        traffic.backends.stats.len(),
        traffic.upstreams.stats.len()
    );
}

/// Writes `n` generated lines to `path` (for scripts/gateway-bench.sh).
fn generate(path: &str, n: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let batch = 100_000;
    for i in 0..n.div_ceil(batch) {
        let text = lines_from(i * batch, batch.min(n - i * batch));
        f.write_all(text.as_bytes()).expect("write");
    }
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(path) = std::env::var("KPULSE_GENERATE_FILE") {
        let n = std::env::var("KPULSE_GENERATE_LINES").ok().and_then(|n| n.parse().ok()).unwrap_or(4_000_000);
        return generate(&path, n);
    }
    if let Ok(path) = std::env::var("KPULSE_INGEST_FILE") {
        return ingest_file(&path);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
