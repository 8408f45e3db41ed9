//! The Events view's source against a real RabbitMQ (Debian `rabbitmq-server` with its
//! rabbitmq_prometheus plugin, on 127.0.0.1): a bounded producer publishes faster than a slow
//! consumer acknowledges, and kpulse must report the growing backlog with the broker's numbers,
//! rank the lagging consumer, keep its history when the broker disappears, and recover.

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Harness, KillOnDrop, free_port, real_binary, spawn_prometheus, wait_http_ok};
use kpulse::app::{Msg, State};
use kpulse::config::Config;
use kpulse::demo::scenario::Scenario;
use kpulse::demo::server::ServerOptions;
use kpulse::model::broker::{BrokerKind, BrokerTarget, Direction, QueueKey};
use kpulse::model::time::now_unix;
use kpulse::sources::kube::Scope;
use kpulse::sources::{SourceId, SourceState, Update};
use tokio::sync::mpsc;

struct Rabbit {
    dir: tempfile::TempDir,
    amqp_port: u16,
    /// Erlang's distribution port (by default AMQP's + 20000, which may be taken).
    dist_port: u16,
    prom_port: u16,
    epmd_port: u16,
    server: Option<std::process::Child>,
}

impl Rabbit {
    fn start() -> Option<Rabbit> {
        real_binary("rabbitmq-server", "apt-get install -y rabbitmq-server")?;
        real_binary("amqp-publish", "apt-get install -y amqp-tools")?;
        let dir = tempfile::tempdir().unwrap();
        // The Debian script runs the broker as the rabbitmq user.
        let _ = Command::new("chmod").arg("777").arg(dir.path()).status();
        let mut rabbit = Rabbit {
            dir,
            amqp_port: free_port(),
            dist_port: free_port(),
            prom_port: free_port(),
            epmd_port: free_port(),
            server: None,
        };
        std::fs::write(rabbit.dir.path().join("enabled_plugins"), "[rabbitmq_prometheus].\n").unwrap();
        std::fs::write(
            rabbit.dir.path().join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{}\nprometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = {}\n",
                rabbit.amqp_port, rabbit.prom_port
            ),
        )
        .unwrap();
        rabbit.start_server();
        Some(rabbit)
    }

    fn start_server(&mut self) {
        let d = self.dir.path();
        let child = Command::new("rabbitmq-server")
            .env("RABBITMQ_NODENAME", format!("kpulse{}@localhost", self.amqp_port))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_FEATURE_FLAGS_FILE", d.join("feature_flags"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("rabbitmq-server starts");
        self.server = Some(child);
        wait_http_ok(&self.prometheus(), "/metrics", "rabbitmq_prometheus");
    }

    /// The Debian script starts the Erlang VM as the rabbitmq user in a session of its own, so
    /// the VM is found by the epmd port only this instance uses: SIGTERM, SIGKILL if it lingers.
    fn kill_group(&mut self) {
        let Some(mut child) = self.server.take() else { return };
        let vm = format!("-epmd_port {} ", self.epmd_port);
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", child.id())]).output();
        let _ = Command::new("pkill").args(["-TERM", "-f", "--", &vm]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline
            && Command::new("pgrep").args(["-f", "--", &vm]).output().is_ok_and(|o| o.status.success())
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("pkill").args(["-KILL", "-f", "--", &vm]).status();
        let _ = child.kill();
        let _ = child.wait();
    }

    fn stop_server(&mut self) {
        self.kill_group();
        // The broker is gone when its endpoint stops answering.
        let deadline = Instant::now() + Duration::from_secs(30);
        while common::http_get(&self.prometheus(), "/metrics").is_ok() {
            assert!(Instant::now() < deadline, "rabbitmq did not stop");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn prometheus(&self) -> String {
        format!("127.0.0.1:{}", self.prom_port)
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}", self.amqp_port)
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        self.kill_group();
        let _ = Command::new("epmd").args(["-port", &self.epmd_port.to_string(), "-kill"]).output();
    }
}

/// kpulse's broker source feeding a State, as the dashboard runs it.
struct Events {
    state: State,
    updates: mpsc::Receiver<Update>,
    task: tokio::task::JoinHandle<()>,
}

impl Events {
    /// `spec` as given to `--broker`.
    fn start(spec: &str, config: Config) -> Events {
        let target = BrokerTarget::parse(spec).unwrap();
        let (tx, updates) = mpsc::channel(4);
        let brokers = vec![(target, BrokerKind::Rabbitmq.default_mapping())];
        let task = tokio::spawn(kpulse::sources::broker::poll(brokers, Duration::from_secs(1), tx));
        let state = State::new(config, "test".into(), vec![], Scope::All, now_unix());
        Events { state, updates, task }
    }

    async fn wait_for(&mut self, what: &str, secs: u64, done: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            self.state.update(Msg::Tick(now_unix()));
            self.state.refresh();
            if done(&self.state) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for: {what}\nsources: {:?}\nqueues: {:#?}",
                self.state.sources,
                self.state.queues.values().map(|t| &t.stats).collect::<Vec<_>>()
            );
            if let Ok(Some(u)) = tokio::time::timeout(Duration::from_millis(200), self.updates.recv()).await {
                self.state.update(Msg::Source(u));
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const MESSAGES: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_falling_behind_on_a_real_rabbitmq() {
    let Some(mut rabbit) = Rabbit::start() else { return };
    let url = rabbit.url();
    let ok = Command::new("amqp-declare-queue").args(["--url", &url, "-d", "-q", "order-events"]).output();
    assert!(ok.is_ok_and(|o| o.status.success()), "queue declared");

    let mut config = Config { metrics_interval: Duration::from_secs(1), ..Default::default() };
    config.hotspots.queue_growing_secs = 8;
    let mut events = Events::start(&format!("rabbitmq=http://{}/metrics/per-object", rabbit.prometheus()), config);
    let key = QueueKey { broker: "rabbitmq".into(), queue: "order-events".into(), group: String::new() };

    // The slow consumer: one message at a time, 0.2 s each, counted in a file it appends to.
    let consumed = rabbit.dir.path().join("consumed");
    let mut consumer = KillOnDrop(
        Command::new("amqp-consume")
            .args(["--url", &url, "-q", "order-events", "--prefetch-count=1", "--", "sh", "-c"])
            .arg(format!("cat >/dev/null; sleep 0.2; echo x >> {}", consumed.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("amqp-consume starts"),
    );
    // The bounded producer: MESSAGES lines at about 30 a second through one channel.
    let mut producer = Command::new("amqp-publish")
        .args(["--url", &url, "-r", "order-events", "-l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("amqp-publish starts");
    let mut stdin = producer.stdin.take().unwrap();
    let started = Instant::now();
    let feeder = std::thread::spawn(move || {
        for i in 0..MESSAGES {
            writeln!(stdin, "order {i}").unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(33));
        }
    });

    events
        .wait_for("the backlog seen growing", 40, |s| {
            s.queues.get(&key).is_some_and(|t| t.stats.direction == Direction::Growing && t.stats.backlog > 100.0)
        })
        .await;
    let stats = events.state.queues[&key].stats.clone();
    let publish = stats.publish_rate.expect("publish rate");
    let ack = stats.ack_rate.expect("ack rate");
    assert!((15.0..=40.0).contains(&publish), "about 30 published a second: {publish}");
    assert!((1.0..=6.0).contains(&ack), "about 4.5 acknowledged a second: {ack}");
    assert_eq!(stats.consumers, Some(1.0));
    assert!((10.0..=35.0).contains(&stats.backlog_per_sec), "{}", stats.backlog_per_sec);
    events
        .wait_for("the lagging consumer ranked", 30, |s| {
            s.hotspots.iter().any(|h| h.subject.label() == "queue rabbitmq/order-events")
        })
        .await;
    let hotspot = events.state.hotspots.iter().find(|h| h.subject.label() == "queue rabbitmq/order-events").unwrap();
    assert_eq!(hotspot.verdict(), "Consumer falling behind");
    assert!(hotspot.evidence()[0].contains("growing"), "{:?}", hotspot.evidence());

    // The count: with the producer done and the consumer stopped (its unacknowledged message goes
    // back to the queue), the backlog is everything published minus everything consumed — give or
    // take the one message whose handler ran but whose ack the kill cut off.
    feeder.join().unwrap();
    drop(producer.stdin.take());
    let _ = producer.wait();
    let elapsed = started.elapsed().as_secs_f64();
    drop(consumer.0.kill());
    let _ = consumer.0.wait();
    std::thread::sleep(Duration::from_millis(500));
    let done = std::fs::read_to_string(&consumed).unwrap_or_default().lines().count();
    let expected = (MESSAGES - done) as f64;
    events
        .wait_for(&format!("the backlog equal to {MESSAGES} published minus {done} consumed"), 20, |s| {
            s.queues
                .get(&key)
                .is_some_and(|t| (t.stats.backlog - expected).abs() <= 1.0 && t.stats.consumers == Some(0.0))
        })
        .await;
    eprintln!(
        "published {MESSAGES} in {elapsed:.1} s, consumed {done}; kpulse: backlog {expected}, in {publish:.1}/s, acked {ack:.1}/s"
    );

    // The broker disappears: the queue and its history stay, marked stale; then it comes back.
    let history = events.state.queues[&key].backlog.len();
    rabbit.stop_server();
    events
        .wait_for("the outage reported", 20, |s| {
            matches!(s.sources.get(&SourceId::Brokers).map(|x| &x.state), Some(SourceState::Reconnecting(_)))
        })
        .await;
    assert!(events.state.queues[&key].backlog.len() >= history, "nothing collected is lost");
    let last = events.state.queues[&key].stats.backlog;
    assert!((last - expected).abs() <= 1.0, "the last numbers stay on screen: {last}");
    rabbit.start_server();
    events
        .wait_for("recovery after the broker restarts", 40, |s| {
            s.sources.get(&SourceId::Brokers).is_some_and(|x| x.state == SourceState::Connected)
                && s.queues.contains_key(&key)
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_read_through_a_real_prometheus_federation() {
    // The simulator's RabbitMQ endpoint, scraped every second by a real Prometheus; kpulse reads
    // the broker's series from Prometheus (`rabbitmq=prometheus:URL`), not from the broker.
    let h = Harness::start(Scenario::shop(), ServerOptions::default()).await;
    h.sim.lock().unwrap().advance(60);
    let config = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: rabbitmq\n  metrics_path: /sim/rabbitmq/metrics/per-object\n  static_configs: [{{targets: ['{}']}}]\n",
        h.addr
    );
    let Some((_prometheus, addr, _dir)) = spawn_prometheus(&config) else { return };
    let mut config = Config { metrics_interval: Duration::from_secs(1), ..Default::default() };
    config.hotspots.queue_growing_secs = 8;
    let mut events = Events::start(&format!("rabbitmq=prometheus:http://{addr}"), config);
    let key = QueueKey { broker: "rabbitmq".into(), queue: "order-events".into(), group: String::new() };
    // Simulated time runs 10 s per real second meanwhile.
    let sim = h.sim.clone();
    let clock = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            sim.lock().unwrap().advance(10);
        }
    });
    events
        .wait_for("order-events through Prometheus, with rates", 60, |s| {
            s.queues
                .get(&key)
                .is_some_and(|t| t.stats.publish_rate.is_some_and(|r| r > 0.0) && t.stats.consumers == Some(1.0))
        })
        .await;
    clock.abort();
    // The numbers are the broker's, a scrape or two behind (at most ~2 s of real time, 20 s of
    // simulated time at well under 50 messages a second of growth).
    let text = common::http_get(&h.addr.to_string(), "/sim/rabbitmq/metrics/per-object").unwrap().1;
    let direct = kpulse::model::broker::read("rabbitmq", &BrokerKind::Rabbitmq.default_mapping(), &text).unwrap();
    let (seen, now) = (events.state.queues[&key].stats.backlog, direct[&key].backlog);
    assert!(seen > 0.0 && (seen - now).abs() <= 1_000.0, "backlog via Prometheus {seen}, from the broker {now}");
    assert_eq!(events.state.queues.len(), 1, "only the mapped series: {:?}", events.state.queues.keys());
}
