//! Gateway access logs from real gateways (Debian nginx, HAProxy and Caddy on 127.0.0.1) in
//! front of test backends with known latencies and failures: a bounded load goes through each,
//! kpulse's file source follows the log the gateway wrote, and its counts must be exact and its
//! percentiles within the sketch's stated error of the exact ones computed from the same log.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use common::{KillOnDrop, Tmux, free_port, http_get, real_binary, wait_http_ok};
use kpulse::app::traffic::Stream;
use kpulse::model::accesslog::Format;
use kpulse::model::sketch::RELATIVE_ERROR;
use kpulse::model::time::now_unix;
use kpulse::model::traffic::{Stats, Traffic};
use kpulse::sources::Update;
use kpulse::sources::local_log::tail_file;

/// Backends with known behaviour: `/api/cart/{id}` 20 ms, `/api/pay` 5 ms with every 4th
/// answer a 500, `/api/slow` 100 ms.
async fn spawn_backend() -> u16 {
    let pays = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/api/cart/{id}",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                "cart"
            }),
        )
        .route(
            "/api/pay",
            get(move || {
                let n = pays.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if n.is_multiple_of(4) {
                        (StatusCode::INTERNAL_SERVER_ERROR, "boom")
                    } else {
                        (StatusCode::OK, "paid")
                    }
                }
            }),
        )
        .route(
            "/api/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                "slow"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// The bounded load: (path, how many). Returns the statuses the client saw.
const LOAD: &[(&str, usize)] =
    &[("/api/cart/17", 30), ("/api/cart/42", 30), ("/api/pay", 40), ("/api/slow", 10), ("/admin", 5)];

async fn send_load(addr: String, load: &'static [(&'static str, usize)]) -> Vec<(String, u16)> {
    tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for (path, n) in load {
            for _ in 0..*n {
                let (code, _) = http_get(&addr, path).expect("the gateway answers");
                seen.push((path.to_string(), code));
            }
        }
        seen
    })
    .await
    .unwrap()
}

fn wait_lines(path: &Path, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text;
        }
        assert!(Instant::now() < deadline, "{} has {} of {n} lines:\n{text}", path.display(), text.lines().count());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// kpulse's own file source follows `path` into a fresh Traffic until `n` lines were read.
async fn read_with_kpulse(path: PathBuf, n: u64, format: Option<Format>) -> (Traffic, Stream) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let task = tokio::spawn(tail_file(path, true, tx));
    let now = now_unix();
    let mut traffic = Traffic::new(now, 900);
    let mut stream = Stream::with_format(format);
    let deadline = Instant::now() + Duration::from_secs(20);
    while stream.matched + stream.skipped < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(Update::AccessLog { chunk, .. })) => stream.ingest(&chunk, &mut traffic, now_unix()),
            Ok(Some(_)) => {}
            _ => panic!("kpulse read {} + {} skipped of {n} lines", stream.matched, stream.skipped),
        }
    }
    task.abort();
    // As the app's clock tick does before anything is read: the windows end at the slice a
    // summary is then read in (a read in a later slice than the last ingest saw nothing, when a
    // slow run crossed a 10 s boundary).
    traffic.advance(now_unix());
    (traffic, stream)
}

/// What one gateway did with the load: the statuses the client saw, the log it wrote, and what
/// kpulse's file source and parser made of it (every line read, none skipped, format detected).
struct Driven {
    seen: Vec<(String, u16)>,
    text: String,
    traffic: Traffic,
}

async fn drive(gateway: Command, port: u16, log: PathBuf, format: &str) -> Driven {
    let mut gateway = gateway;
    let _gateway = KillOnDrop(gateway.spawn().unwrap());
    let addr = format!("127.0.0.1:{port}");
    wait_http_ok(&addr, "/healthz", &format!("the gateway logging {format}"));
    let seen = send_load(addr, LOAD).await;
    let total = seen.len();
    let text = wait_lines(&log, total);
    let (traffic, stream) = read_with_kpulse(log, total as u64, None).await;
    assert_eq!(stream.format.as_ref().map(Format::name), Some(format), "detected from the lines:\n{text}");
    assert_eq!((stream.matched, stream.skipped), (total as u64, 0), "{text}");
    assert_eq!(traffic.gateway.total().requests, total as u64);
    Driven { seen, text, traffic }
}

fn exact_quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((q * values.len() as f64).ceil() as usize).max(1) - 1]
}

/// The sketch's p50/p95/p99 against the exact quantiles of the logged durations.
fn assert_percentiles(stats: &Stats, at: i64, mut durations: Vec<f64>, what: &str) {
    let s = stats.summary(1, at);
    for (q, got) in [(0.5, s.p50), (0.95, s.p95), (0.99, s.p99)] {
        let want = exact_quantile(&mut durations, q);
        let got = got.unwrap_or_else(|| panic!("{what}: no p{q}"));
        // Below 0.1 ms the sketch counts zero: an absolute error of at most 0.1 ms.
        let allowed = (want * RELATIVE_ERROR).max(1e-4) + 1e-9;
        assert!((got - want).abs() <= allowed, "{what} p{}: {got} vs exact {want}", q * 100.0);
    }
}

fn count(seen: &[(String, u16)], pred: impl Fn(&str, u16) -> bool) -> u64 {
    seen.iter().filter(|(p, c)| pred(p, *c)).count() as u64
}

/// Debian's nginx set up as ingress-nginx is, in `dir`, in front of `backend` (and a dead replica
/// of the payment service, whose port is returned), logging to `log`.
fn nginx_gateway(nginx: &Path, dir: &Path, port: u16, backend: u16, log: &Path) -> (Command, u16) {
    let dead = free_port();
    let d = dir.display();
    // ingress-nginx's own default log_format, with the variables it defines set per location.
    let conf = format!(
        r#"worker_processes 1;
error_log stderr;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  log_format upstreaminfo '{format}';
  access_log {log} upstreaminfo;
  upstream shop-cart {{ server 127.0.0.1:{backend}; }}
  # A dead replica that is never marked down: requests sent to it are retried on the live one.
  upstream shop-payment {{ server 127.0.0.1:{dead} max_fails=0; server 127.0.0.1:{backend}; }}
  server {{
    listen 127.0.0.1:{port};
    set $proxy_upstream_name "upstream-default-backend";
    set $proxy_alternative_upstream_name "";
    set $req_id $request_id;
    location /healthz {{ access_log off; return 200 "ok"; }}
    location /api/cart/ {{ set $proxy_upstream_name "shop-cart-80"; proxy_pass http://shop-cart; }}
    location /api/pay {{ set $proxy_upstream_name "shop-payment-80"; proxy_pass http://shop-payment; }}
    location /api/slow {{ set $proxy_upstream_name "shop-search-80"; proxy_pass http://shop-cart; }}
    location /admin {{ set $proxy_upstream_name "shop-admin-80"; return 401; }}
  }}
}}
"#,
        format = kpulse::model::accesslog::INGRESS_NGINX,
        log = log.display(),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut nginx = Command::new(nginx);
    nginx
        .args(["-p", &d.to_string(), "-c", &conf_path.display().to_string(), "-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    (nginx, dead)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_as_an_ingress_gateway() {
    let Some(nginx) = real_binary("nginx", "apt-get install -y nginx-light") else { return };
    let backend = spawn_backend().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let (nginx, dead) = nginx_gateway(&nginx, dir.path(), port, backend, &log);
    let Driven { seen, text, traffic } = drive(nginx, port, log, "ingress-nginx").await;
    let total = seen.len();
    let g = &traffic.gateway.total();
    assert_eq!(g.errors(), count(&seen, |_, c| c >= 500), "5xx as the client saw them");
    assert_eq!(g.auth_denied, count(&seen, |_, c| c == 401));
    assert_eq!(g.by_class[1], count(&seen, |_, c| c / 100 == 2));
    let backends = &traffic.backends.stats;
    assert_eq!(backends["shop-cart-80"].total().requests, 60);
    assert_eq!(backends["shop-payment-80"].total().requests, 40);
    assert_eq!(backends["shop-payment-80"].total().errors(), 10, "every 4th payment failed at the backend");
    assert_eq!(traffic.routes.stats["/api/cart/:id"].total().requests, 60, "ids collapse into one route");
    // Retries: the lines whose upstream list names two servers, counted independently.
    let retried = text.lines().filter(|l| l.contains(&format!("127.0.0.1:{dead}, "))).count() as u64;
    assert!(retried > 0, "round robin sent some payments to the dead replica first:\n{text}");
    assert_eq!(g.retries, retried);
    assert_eq!(traffic.upstreams.stats["127.0.0.1"].total().requests, (total - 5) as u64, "all but the 401s");

    // Exact quantiles of $request_time, read from the lines without kpulse's parser: it follows
    // the quoted user agent and $request_length.
    let durations: Vec<f64> = text
        .lines()
        .map(|l| l.rsplit_once("\" ").unwrap().1.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_percentiles(&traffic.gateway, traffic.slice_start(), durations, "nginx");
    let slow = traffic.backends.stats["shop-search-80"].summary(1, traffic.slice_start());
    assert!(slow.p50.unwrap() >= 0.099, "the 100 ms backend is slow in the log too: {slow:?}");
    let upstream_share =
        traffic.backends.stats["shop-cart-80"].summary(1, traffic.slice_start()).upstream_share.unwrap();
    assert!(upstream_share > 0.8, "nginx adds little to a 20 ms backend: {upstream_share}");
}

/// Three backends whose servers are named alike (`pod0` in each, as HAProxy's ingress and most
/// hand-written configs name them): each server is its backend's, never merged across them. A
/// deny rule and an unreadable request are answered by the frontend: no service's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_httplog() {
    let Some(haproxy) = real_binary("haproxy", "apt-get install -y haproxy") else { return };
    let backend = spawn_backend().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut haproxy = haproxy_gateway(&haproxy, dir.path(), port, backend, &log);
    let _haproxy = KillOnDrop(haproxy.spawn().unwrap());
    let addr = format!("127.0.0.1:{port}");
    wait_http_ok(&addr, "/healthz", "haproxy");
    let mut seen = send_load(addr.clone(), LOAD).await;
    // A request line HAProxy cannot read: it answers 400 itself and logs `<BADREQ>`.
    let (code, _) = raw_request(&addr, "NOT A REQUEST\r\n\r\n");
    assert_eq!(code, 400);
    seen.push(("<BADREQ>".into(), code));
    let total = seen.len();
    let text = wait_lines(&log, total);
    let (traffic, stream) = read_with_kpulse(log, total as u64, None).await;
    check_haproxy_log(&seen, &text, &traffic, &stream);
}

/// Debian's HAProxy in `dir` in front of `backend`: three backends whose servers are named alike,
/// a deny rule for /admin; `option httplog` to `log`.
fn haproxy_gateway(haproxy: &Path, dir: &Path, port: u16, backend: u16, log: &Path) -> Command {
    let cfg = format!(
        "global\n  log stdout format raw local0 info\n\
         defaults\n  mode http\n  log global\n  option httplog\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  acl health path /healthz\n  http-request set-log-level silent if health\n  \
         http-request return status 200 if health\n  http-request deny deny_status 401 if {{ path_beg /admin }}\n  \
         use_backend shop-pay-80 if {{ path_beg /api/pay }}\n  use_backend shop-search-80 if {{ path_beg /api/slow }}\n  \
         default_backend shop-cart-80\n\
         backend shop-cart-80\n  balance roundrobin\n  server pod0 127.0.0.1:{backend}\n  server pod1 127.0.0.1:{backend}\n\
         backend shop-pay-80\n  server pod0 127.0.0.1:{backend}\n\
         backend shop-search-80\n  server pod0 127.0.0.1:{backend}\n"
    );
    let cfg_path = dir.join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let out = std::fs::File::create(log).unwrap();
    let mut haproxy = Command::new(haproxy);
    haproxy.args(["-f", &cfg_path.display().to_string(), "-db"]).stdout(Stdio::from(out)).stderr(Stdio::null());
    haproxy
}

/// What kpulse read of the HAProxy log must match the client's counts exactly.
fn check_haproxy_log(seen: &[(String, u16)], text: &str, traffic: &Traffic, stream: &Stream) {
    let total = seen.len();
    assert_eq!(stream.format.as_ref().map(Format::name), Some("haproxy"), "{text}");
    assert_eq!((stream.matched, stream.skipped), (total as u64, 0), "{text}");
    let g = &traffic.gateway.total();
    assert_eq!(g.requests, total as u64, "the gateway counts every request it answered");
    assert_eq!(g.errors(), count(seen, |_, c| c >= 500));
    assert_eq!(g.auth_denied, 5);
    assert_eq!(traffic.refused, 6, "5 denied and 1 unreadable, answered by the frontend:\n{text}");
    let backends = &traffic.backends.stats;
    let mut names: Vec<&str> = backends.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["shop-cart-80", "shop-pay-80", "shop-search-80"], "a frontend is not a service");
    assert_eq!(backends["shop-cart-80"].total().requests, 60);
    assert_eq!(backends["shop-pay-80"].total().requests, 40);
    assert_eq!(backends["shop-pay-80"].total().errors(), 10);
    // Each server counted within its backend; round robin splits the cart evenly.
    let servers = &traffic.upstreams.stats;
    assert_eq!(servers["shop-cart-80/pod0"].total().requests, 30, "{text}");
    assert_eq!(servers["shop-cart-80/pod1"].total().requests, 30);
    assert_eq!(servers["shop-pay-80/pod0"].total().requests, 40);
    assert_eq!(servers["shop-search-80/pod0"].total().requests, 10);
    assert_eq!(servers.len(), 4, "no server row for the frontend: {:?}", servers.keys().collect::<Vec<_>>());
    assert!(!traffic.routes.stats.contains_key("/"), "an unreadable request has no route");
    assert_eq!(traffic.routes.stats["/admin"].total().requests, 5, "a denied request keeps its route");
    // %Ta in ms, the 5th of the timers, read without kpulse's parser (`+3001`: a request that
    // never completed); the bad request has none to compare.
    let durations: Vec<f64> = text
        .lines()
        .map(|l| {
            l.split(' ').nth(4).unwrap().split('/').nth(4).unwrap().trim_start_matches('+').parse::<f64>().unwrap()
                / 1000.0
        })
        .collect();
    assert_percentiles(&traffic.gateway, traffic.slice_start(), durations, "haproxy");
}

/// Sends `raw` as it is and returns the status the server answered.
fn raw_request(addr: &str, raw: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let code = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_json_access_log() {
    let Some(caddy) = real_binary("caddy", "apt-get install -y caddy") else { return };
    let backend = spawn_backend().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let caddyfile = format!(
        "{{\n  admin off\n  auto_https off\n}}\n\
         http://127.0.0.1:{port} {{\n  log {{\n    output file {}\n    format json\n  }}\n  skip_log /healthz\n  \
         handle /healthz {{\n    respond 200\n  }}\n  handle /admin* {{\n    respond 401\n  }}\n  \
         handle {{\n    reverse_proxy 127.0.0.1:{backend}\n  }}\n}}\n",
        log.display()
    );
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, caddyfile).unwrap();
    let mut caddy = Command::new(caddy);
    caddy
        .args(["run", "--config", &path.display().to_string(), "--adapter", "caddyfile"])
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let Driven { seen, text, traffic } = drive(caddy, port, log, "json").await;
    let g = &traffic.gateway.total();
    assert_eq!(g.errors(), count(&seen, |_, c| c >= 500));
    assert_eq!(g.auth_denied, 5);
    assert_eq!(traffic.routes.stats["127.0.0.1/api/cart/:id"].total().requests, 60);
    let durations: Vec<f64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["duration"].as_f64().unwrap())
        .collect();
    assert_percentiles(&traffic.gateway, traffic.slice_start(), durations, "caddy");
}

const LINE: &str = r#"10.0.0.9 - - [01/Jan/2024:12:00:00 +0000] "GET /api/cart/7 HTTP/1.1" 200 12 "-" "k6" 100 0.020 [shop-cart-80] [] 10.1.0.4:8080 12 0.015 200 abc"#;

fn append(path: &Path, lines: usize) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for _ in 0..lines {
        writeln!(f, "{LINE}").unwrap();
    }
}

/// `tail -F` semantics: lines before and after a rename-and-recreate rotation and an in-place
/// truncation, each read exactly once; a file that does not exist yet is waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_file_survives_rotation_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let task = tokio::spawn(tail_file(path.clone(), false, tx));
    let mut traffic = Traffic::new(now_unix(), 900);
    let mut stream = Stream::default();
    let mut read_until = async |n: u64, stream: &mut Stream, traffic: &mut Traffic| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while stream.matched < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(Update::AccessLog { chunk, .. })) => stream.ingest(&chunk, traffic, now_unix()),
                Ok(Some(_)) => {}
                _ => panic!("read {} of {n}", stream.matched),
            }
        }
        // Nothing more than expected arrives.
        tokio::time::sleep(Duration::from_millis(600)).await;
        while let Ok(u) = rx.try_recv() {
            if let Update::AccessLog { chunk, .. } = u {
                stream.ingest(&chunk, traffic, now_unix());
            }
        }
        assert_eq!(stream.matched, n, "no line read twice");
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    append(&path, 10);
    read_until(10, &mut stream, &mut traffic).await;
    append(&path, 5);
    std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
    append(&dir.path().join("access.log.1"), 2); // written by the gateway before it reopened
    append(&path, 7);
    read_until(24, &mut stream, &mut traffic).await;
    std::fs::write(&path, "").unwrap(); // copytruncate
    tokio::time::sleep(Duration::from_millis(500)).await;
    append(&path, 3);
    read_until(27, &mut stream, &mut traffic).await;
    assert_eq!(traffic.gateway.total().requests, 27);
    task.abort();
}

/// The follow reads on a thread of its own; cancelling it (the task aborted, as a quit or a context
/// switch does) ends that thread, which lets go of the channel: the receiver then sees it closed.
/// Also while the thread waits on a full channel, or for a file that is not there yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_follow_ends_its_reader_thread() {
    let dir = tempfile::tempdir().unwrap();
    let busy = dir.path().join("busy.log");
    append(&busy, 20_000); // far more than a channel of one chunk holds
    for (path, from_start) in [(busy, true), (dir.path().join("not-yet.log"), false)] {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let task = tokio::spawn(tail_file(path.clone(), from_start, tx));
        // Something arrives: the reader runs (for the busy file, it now waits on a full channel).
        let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(matches!(first, Ok(Some(_))), "{}: nothing read", path.display());
        tokio::time::sleep(Duration::from_millis(300)).await;
        task.abort();
        let closed = tokio::time::timeout(Duration::from_secs(10), async { while rx.recv().await.is_some() {} }).await;
        assert!(closed.is_ok(), "{}: the reader thread still holds the channel after the cancel", path.display());
    }
}

/// `kubectl logs -f … | kpulse --gateway -`: the real binary reads stdin while its dashboard runs
/// on the terminal, and shows the traffic.
#[test]
fn stdin_feeds_the_traffic_view_of_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("piped.log");
    append(&log, 1234);
    std::fs::write(dir.path().join("noise"), "I0902 19:52:29.236097 6 status.go:85] updating Ingress status\n")
        .unwrap();
    let cmd = format!(
        "cat {} {} | {} demo --gateway - ; sleep 30",
        dir.path().join("noise").display(),
        log.display(),
        env!("CARGO_BIN_EXE_kpulse")
    );
    let Some(term) = Tmux::start("kpulse-stdin", (180, 30), &cmd) else { return };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut screen = String::new();
    while Instant::now() < deadline {
        term.keys(&["3"]);
        std::thread::sleep(Duration::from_millis(500));
        screen = term.screen();
        if screen.contains("1234 lines") {
            break;
        }
    }
    term.keys(&["q"]);
    assert!(screen.contains("1 stream · 1234 lines · 1 skipped · ingress-nginx"), "{screen}");
    assert!(screen.contains("shop-cart-80"), "the backend as logged is shown: {screen}");
}

/// `kpulse snapshot ARGS --format json` on a machine with no cluster (no kubeconfig), kpulse in
/// time zone `tz`: the report of the logs alone.
fn snapshot_of_logs(args: &[&str], tz: &str) -> serde_json::Value {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kpulse"))
        .arg("snapshot")
        .args(args)
        .args(["--format", "json"])
        .env("KUBECONFIG", home.path().join("no-kubeconfig"))
        .env("HOME", home.path())
        .env("TZ", tz)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "a snapshot of logs without a cluster is a report: {stderr}");
    assert!(stderr.contains("no cluster"), "says what it does not see: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The service row of `backend` in a snapshot report.
fn service<'a>(report: &'a serde_json::Value, backend: &str) -> &'a serde_json::Value {
    let rows = report["traffic"].as_array().unwrap();
    rows.iter().find(|r| r["backend"] == backend).unwrap_or_else(|| panic!("no {backend} in {rows:#?}"))
}

fn requests_of(report: &serde_json::Value, backend: &str) -> (u64, u64) {
    let row = service(report, backend);
    (row["requests"].as_u64().unwrap(), row["server_errors"].as_u64().unwrap())
}

/// The client's own counts of one path prefix: (requests, 5xx).
fn client_counts(seen: &[(String, u16)], prefix: &str) -> (u64, u64) {
    (count(seen, |p, _| p.starts_with(prefix)), count(seen, |p, c| p.starts_with(prefix) && c >= 500))
}

/// A real nginx's log, restamped one line a second from 2.5 hours ago (in a +01:00 zone): a
/// snapshot of the file reports the whole log exactly, whatever its age (it used to count the
/// last minute of wall-clock time: nothing), and `--window` counts the log's own last seconds,
/// saying how many lines came before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_nginx_log_is_reported_whole_or_by_its_own_window() {
    let Some(nginx) = real_binary("nginx", "apt-get install -y nginx-light") else { return };
    let backend = spawn_backend().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let (mut nginx, _) = nginx_gateway(&nginx, dir.path(), port, backend, &log);
    let _nginx = KillOnDrop(nginx.spawn().unwrap());
    let addr = format!("127.0.0.1:{port}");
    wait_http_ok(&addr, "/healthz", "nginx");
    let seen = send_load(addr, LOAD).await;
    let text = wait_lines(&log, seen.len());
    let start = now_unix() - 9000;
    let zone = jiff::tz::TimeZone::fixed(jiff::tz::offset(1));
    let aged: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let (head, rest) = line.split_once('[').unwrap();
            let (_, tail) = rest.split_once(']').unwrap();
            let at = jiff::Timestamp::from_second(start + i as i64).unwrap().to_zoned(zone.clone());
            format!("{head}[{}]{tail}\n", at.strftime("%d/%b/%Y:%H:%M:%S %z"))
        })
        .collect();
    let aged_log = dir.path().join("aged.log");
    std::fs::write(&aged_log, aged).unwrap();
    let spec = format!("file+all:{}", aged_log.display());
    let n = seen.len() as i64;

    let whole = snapshot_of_logs(&["--gateway", &spec], "UTC");
    let window = &whole["traffic_window"];
    assert_eq!(
        (window["kind"].as_str(), window["from"].as_i64(), window["to"].as_i64()),
        (Some("whole_log"), Some(start), Some(start + n - 1))
    );
    assert_eq!(requests_of(&whole, "shop-cart-80"), client_counts(&seen, "/api/cart"));
    assert_eq!(requests_of(&whole, "shop-payment-80"), client_counts(&seen, "/api/pay"));
    assert_eq!(requests_of(&whole, "shop-search-80"), client_counts(&seen, "/api/slow"));
    let logs = &whole["gateway_logs"][0];
    assert_eq!(
        (logs["read"].as_i64(), logs["not_in_format"].as_i64(), logs["read_to_end"].as_bool()),
        (Some(n), Some(0), Some(true))
    );
    let routes = whole["routes"].as_array().unwrap();
    let cart = routes.iter().find(|r| r["route"] == "/api/cart/:id").expect("routes are reported");
    assert_eq!(cart["requests"].as_u64(), Some(60));

    // The last 30 s of the log: its last 30 lines.
    let last = snapshot_of_logs(&["--gateway", &spec, "--window", "30s"], "UTC");
    let tail = &seen[seen.len() - 30..];
    assert_eq!(last["traffic_window"]["kind"], "log_window");
    assert_eq!(requests_of(&last, "shop-payment-80"), client_counts(tail, "/api/pay"));
    assert_eq!(requests_of(&last, "shop-search-80"), client_counts(tail, "/api/slow"));
    assert!(
        last["traffic"].as_array().unwrap().iter().all(|r| r["backend"] != "shop-cart-80"),
        "the cart's lines are all older"
    );
    assert_eq!(last["gateway_logs"][0]["before_window"].as_i64(), Some(n - 30), "and it says how many it left out");
}

/// HAProxy stamps its local time without a zone. A gateway running in New York: read in the
/// zone kpulse is told (`--log-tz`) or runs in, the log ends now; read as UTC it would end five
/// hours ago (what kpulse did before: every line outside every window).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_haproxy_log_from_new_york_is_read_in_its_zone() {
    let Some(haproxy) = real_binary("haproxy", "apt-get install -y haproxy") else { return };
    assert!(
        Path::new("/usr/share/zoneinfo/America/New_York").exists(),
        "the time zone database is missing: apt-get install -y tzdata"
    );
    let backend = spawn_backend().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut haproxy = haproxy_gateway(&haproxy, dir.path(), port, backend, &log);
    haproxy.env("TZ", "America/New_York");
    let _haproxy = KillOnDrop(haproxy.spawn().unwrap());
    let addr = format!("127.0.0.1:{port}");
    wait_http_ok(&addr, "/healthz", "haproxy");
    let seen = send_load(addr, LOAD).await;
    wait_lines(&log, seen.len());
    let spec = format!("file+all:{}", log.display());
    let ends_at = |report: &serde_json::Value| report["traffic_window"]["to"].as_i64().unwrap();
    let offset =
        jiff::tz::TimeZone::get("America/New_York").unwrap().to_offset(jiff::Timestamp::now()).seconds() as i64;

    for report in [
        snapshot_of_logs(&["--gateway", &spec, "--log-tz", "America/New_York"], "UTC"),
        snapshot_of_logs(&["--gateway", &spec], "America/New_York"),
    ] {
        let lag = now_unix() - ends_at(&report);
        assert!((0..120).contains(&lag), "the log ends now, not {lag} s ago");
        assert_eq!(requests_of(&report, "shop-cart-80"), client_counts(&seen, "/api/cart"));
        assert_eq!(requests_of(&report, "shop-pay-80"), client_counts(&seen, "/api/pay"));
    }
    let as_utc = snapshot_of_logs(&["--gateway", &spec], "UTC");
    let lag = now_unix() - ends_at(&as_utc) + offset;
    assert!((0..120).contains(&lag), "read in the wrong zone the log is off by the zone's offset ({offset} s)");
}

/// `file:` follows from the end, like `tail -F`: what the file held before is not counted; what
/// is written while the snapshot runs is.
#[test]
fn a_followed_file_counts_only_what_is_written_while_kpulse_reads() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let fresh = |n: usize| -> String {
        let now = jiff::Timestamp::now().strftime("%d/%b/%Y:%H:%M:%S +0000").to_string();
        (0..n).map(|_| LINE.replace("01/Jan/2024:12:00:00 +0000", &now) + "\n").collect()
    };
    std::fs::write(&log, fresh(50)).unwrap();
    let home = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kpulse"))
        .args(["snapshot", "--gateway", &format!("file:{}", log.display()), "--window", "6s", "--format", "json"])
        .env("KUBECONFIG", home.path().join("no-kubeconfig"))
        .env("HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once kpulse has the file open (and is at its end), more lines arrive.
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_dir(&fds)
        .into_iter()
        .flatten()
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p == log))
    {
        assert!(Instant::now() < deadline, "kpulse never opened {}", log.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(fresh(7).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["gateway_logs"][0]["read"].as_u64(), Some(7), "{report:#}");
    assert_eq!(report["gateway_logs"][0]["read_to_end"].as_bool(), Some(false));
}

/// A log that is not there: the snapshot does not wait for it forever, says why, and exits 1
/// (it saw nothing), never an empty all-clear.
#[test]
fn a_snapshot_of_a_missing_log_says_so_and_fails() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("gone.log");
    let out = Command::new(env!("CARGO_BIN_EXE_kpulse"))
        .args(["snapshot", "--gateway", &format!("file+all:{}", missing.display())])
        .env("KUBECONFIG", home.path().join("no-kubeconfig"))
        .env("HOME", home.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("No such file") && stderr.contains("no log line read"), "{stderr}");
    assert!(!stdout.contains("nothing looks like a bottleneck"), "{stdout}");
}

/// No cluster, a log: the dashboard opens on the Traffic view of the log alone and says so
/// (before: "no kubeconfig found", exit 2).
#[test]
fn the_dashboard_shows_a_log_without_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    append(&log, 1234);
    let cmd = format!(
        "env KUBECONFIG={} HOME={} {} --gateway file+all:{} ; sleep 30",
        dir.path().join("no-kubeconfig").display(),
        dir.path().display(),
        env!("CARGO_BIN_EXE_kpulse"),
        log.display()
    );
    let Some(term) = Tmux::start("kpulse-logs-only", (180, 30), &cmd) else { return };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut screen = String::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        screen = term.screen();
        if screen.contains("1234 lines") && screen.contains("shop-cart-80") {
            break;
        }
    }
    term.keys(&["q"]);
    assert!(screen.contains("logs only, no cluster"), "{screen}");
    assert!(screen.contains("1 stream · 1234 lines · 0 skipped · ingress-nginx"), "{screen}");
    // The log is from 2024: on its own clock its last minutes are in the windows, not "older".
    assert!(!screen.contains("older than 5m"), "{screen}");
    assert!(screen.contains("log time 2024-01-01 12:00:00 UTC"), "and the title says which clock: {screen}");
    assert!(screen.contains("no cluster"), "the missing join is named: {screen}");
}

/// A FIFO with no writer yet (a log shipper not started): opening it blocks until one comes. The
/// file source waits on a blocking-pool thread, not on a runtime worker: on a one-thread runtime a
/// timer still fires meanwhile, and once a writer opens the pipe its lines are read.
#[test]
fn a_fifo_without_a_writer_holds_no_runtime_thread() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("access.log");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (said, heard) = std::sync::mpsc::channel::<String>();
    let path = fifo.clone();
    // Detached: before the fix its one thread stayed in open(2) for good.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::channel(4);
            tokio::spawn(tail_file(path, true, tx));
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = said.send("timer".into());
            while let Some(update) = rx.recv().await {
                if let Update::AccessLog { chunk, .. } = update {
                    let _ = said.send(chunk);
                    return;
                }
            }
        });
        std::mem::forget(runtime);
    });
    let first = heard.recv_timeout(Duration::from_secs(10));
    assert_eq!(first.as_deref(), Ok("timer"), "the runtime's only thread is stuck opening the FIFO");
    let line = "127.0.0.1 - - [07/Dec/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"t\"\n";
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writer.write_all(line.as_bytes()).unwrap();
    drop(writer);
    let chunk = heard.recv_timeout(Duration::from_secs(10)).expect("the line written to the FIFO is read");
    assert!(chunk.contains("GET / HTTP/1.1"), "{chunk}");
}
