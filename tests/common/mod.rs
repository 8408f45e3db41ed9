//! Test harness: the simulator on 127.0.0.1 and kpulse's real sources talking to it through the
//! kube client, feeding a real `State`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kpulse::app::Msg;
use kpulse::app::State;
use kpulse::config::Config;
use kpulse::demo::scenario::Scenario;
use kpulse::demo::server::{RunningServer, ServerOptions, kubeconfig_yaml, serve};
use kpulse::demo::sim::Sim;
use kpulse::kubeconfig::Connector;
use kpulse::model::pod::PodInfo;
use kpulse::model::time::now_unix;
use kpulse::sources::Update;
use kpulse::sources::kube::{KubeSourceConfig, Scope, UsageMode, spawn_all};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct Harness {
    pub sim: Arc<Mutex<Sim>>,
    pub requests: kpulse::demo::server::RequestLog,
    pub server: Option<RunningServer>,
    pub addr: SocketAddr,
    pub options: ServerOptions,
}

impl Harness {
    pub async fn start(scenario: Scenario, options: ServerOptions) -> Harness {
        let sim = Arc::new(Mutex::new(Sim::new(scenario, now_unix())));
        let requests = kpulse::demo::server::RequestLog::default();
        let server = serve(sim.clone(), options.clone(), requests.clone(), SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("simulator listens on loopback");
        let addr = server.addr;
        Harness { sim, requests, server: Some(server), addr, options }
    }

    /// Plays the simulated cluster at `speed`× real time until the guard drops.
    pub fn run_clock(&self, speed: u32) -> tokio_util::sync::DropGuard {
        let clock = tokio_util::sync::CancellationToken::new();
        kpulse::demo::server::spawn_clock(self.sim.clone(), speed, clock.clone());
        clock.drop_guard()
    }

    /// The simulator's count of what clients asked of it: (requests, answer bytes) of one kind.
    pub fn api_traffic(&self, kind: kpulse::model::api_cost::RequestKind) -> (u64, u64) {
        let t = self.server.as_ref().expect("the server is up").shared.traffic.totals();
        (t.requests[kind.index()], t.bytes[kind.index()])
    }

    /// Stops the API server (open watches end), as an apiserver restart does.
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }

    /// Starts the server again on the same address, with the same cluster state.
    pub async fn restart(&mut self) {
        self.stop().await;
        let server = serve(self.sim.clone(), self.options.clone(), self.requests.clone(), self.addr)
            .await
            .expect("rebinds the same port");
        self.server = Some(server);
    }

    pub fn connector(&self) -> Connector {
        let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig_yaml(self.addr)).unwrap();
        Connector::Kubeconfig(Box::new(kc))
    }

    pub async fn client(&self) -> kube::Client {
        self.connector().connect("kpulse-demo").await.expect("client").client
    }

    /// Pods as the simulator holds them, converted the same way kpulse converts.
    pub fn expected_pods(&self) -> Vec<PodInfo> {
        Harness::pods_of(&self.sim.lock().unwrap())
    }

    /// A simulator's pods, converted the same way kpulse converts.
    pub fn pods_of(sim: &Sim) -> Vec<PodInfo> {
        sim.pods_api
            .objects
            .values()
            .map(|s| PodInfo::from_pod(&serde_json::from_slice::<Pod>(&s.json).unwrap()))
            .collect()
    }

    /// A frontend pod (namespace, name), read while the caller holds the lock.
    pub fn expected_pods_locked(&self, sim: &Sim) -> (String, String) {
        let obj = sim.pods_api.objects.iter().find(|(k, _)| k.1.starts_with("frontend")).unwrap();
        obj.0.clone()
    }

    pub fn non_get_requests(&self) -> Vec<(String, String)> {
        self.requests.lock().unwrap().iter().filter(|(m, _)| m != "GET").cloned().collect()
    }

    /// LIST (not WATCH) requests for pods across all namespaces.
    pub fn pod_lists(&self) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p)| p.starts_with("/api/v1/pods") && !p.contains("watch=true"))
            .count()
    }

    pub fn requests_matching(&self, needle: &str) -> usize {
        self.requests.lock().unwrap().iter().filter(|(_, p)| p.contains(needle)).count()
    }
}

/// kpulse's sources running against the harness, applying every update to a State.
pub struct Kpulse {
    pub state: State,
    pub updates: mpsc::UnboundedReceiver<Update>,
    pub cancel: CancellationToken,
    pub log: Vec<Update>,
}

impl Kpulse {
    /// Usage from metrics.k8s.io, as most tests of the Kubernetes source expect.
    pub async fn start(h: &Harness, scope: Scope, fallback_namespace: &str) -> Kpulse {
        Kpulse::start_with(h, scope, fallback_namespace, UsageMode::MetricsApi).await
    }

    /// Usage from a Prometheus (a URL or "auto"), polled every second.
    pub async fn start_prometheus(h: &Harness, target: &str, queries: kpulse::model::promql::Queries) -> Kpulse {
        Kpulse::start_client(
            h.client().await,
            Scope::All,
            "default",
            UsageMode::Auto,
            Some(target.to_string()),
            queries,
            vec![],
        )
    }

    /// Usage scraped from exposition URLs (`--scrape`).
    pub async fn start_scrape(h: &Harness, urls: Vec<String>) -> Kpulse {
        Kpulse::start_client(
            h.client().await,
            Scope::All,
            "default",
            UsageMode::Cadvisor,
            None,
            Default::default(),
            urls,
        )
    }

    pub async fn start_with(h: &Harness, scope: Scope, fallback_namespace: &str, usage: UsageMode) -> Kpulse {
        Kpulse::start_client(h.client().await, scope, fallback_namespace, usage, None, Default::default(), vec![])
    }

    /// kpulse's sources on any client (a real apiserver's), usage from metrics.k8s.io.
    pub async fn start_on(client: kube::Client, scope: Scope, fallback_namespace: &str) -> Kpulse {
        Kpulse::start_client(client, scope, fallback_namespace, UsageMode::MetricsApi, None, Default::default(), vec![])
    }

    /// cAdvisor through the node proxy, polled every `interval` (the others poll every second).
    pub async fn start_cadvisor_every(h: &Harness, interval: Duration) -> Kpulse {
        let sources = (UsageMode::Cadvisor, None, Default::default(), vec![]);
        let config = Config { metrics_interval: interval, ..Default::default() };
        Kpulse::start_client_every(h.client().await, Scope::All, "default", sources, config)
    }

    fn start_client(
        client: kube::Client,
        scope: Scope,
        fallback_namespace: &str,
        usage: UsageMode,
        prometheus: Option<String>,
        queries: kpulse::model::promql::Queries,
        scrape: Vec<String>,
    ) -> Kpulse {
        let sources = (usage, prometheus, queries, scrape);
        let config = Config { metrics_interval: Duration::from_secs(1), ..Default::default() };
        Kpulse::start_client_every(client, scope, fallback_namespace, sources, config)
    }

    /// The kubelets through the node proxy (`usage = "auto"`) with the config's intervals and
    /// node limit: what the scrapes cost.
    pub async fn start_kubelets_with(h: &Harness, scope: Scope, config: Config) -> Kpulse {
        let sources = (UsageMode::Auto, None, Default::default(), vec![]);
        Kpulse::start_client_every(h.client().await, scope, "default", sources, config)
    }

    fn start_client_every(
        client: kube::Client,
        scope: Scope,
        fallback_namespace: &str,
        (usage, prometheus, queries, scrape): (UsageMode, Option<String>, kpulse::model::promql::Queries, Vec<String>),
        config: Config,
    ) -> Kpulse {
        let (tx, updates) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let cfg = KubeSourceConfig {
            scope: scope.clone(),
            usage,
            prometheus,
            prometheus_headers: Default::default(),
            queries,
            retention: config.retention,
            scrape,
            metrics_interval: config.metrics_interval,
            cadvisor_full_interval: config.cadvisor_full_interval,
            cadvisor_max_nodes: config.cadvisor_max_nodes,
            mesh_max_pods: config.mesh_max_pods,
            fallback_namespace: fallback_namespace.into(),
        };
        spawn_all(client, cfg, tx, cancel.clone());
        let state = State::new(config, "kpulse-demo".into(), vec!["kpulse-demo".into()], scope, now_unix());
        Kpulse { state, updates, cancel, log: Vec::new() }
    }

    /// Applies updates until `done(state)` holds; panics with `what` after 30 s.
    pub async fn wait_for(&mut self, what: &str, done: impl Fn(&State) -> bool) {
        self.wait_for_within(what, Duration::from_secs(30), done).await
    }

    /// Applies every update that has arrived, so the state is as fresh as the sources are.
    pub fn drain(&mut self) {
        while let Ok(u) = self.updates.try_recv() {
            self.log.push(u.clone());
            self.state.update(Msg::Source(u));
        }
        self.state.update(Msg::Tick(now_unix()));
        self.state.refresh();
    }

    pub async fn wait_for_within(&mut self, what: &str, patience: Duration, done: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + patience;
        loop {
            self.state.update(Msg::Tick(now_unix()));
            self.state.refresh();
            if done(&self.state) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "timed out waiting for: {what}\nsource states: {:?}\nnotices: {:?}",
                    self.state.sources, self.state.notices
                );
            }
            if let Ok(Some(u)) = tokio::time::timeout(left.min(Duration::from_millis(200)), self.updates.recv()).await {
                self.log.push(u.clone());
                self.state.update(Msg::Source(u));
                while let Ok(u) = self.updates.try_recv() {
                    self.log.push(u.clone());
                    self.state.update(Msg::Source(u));
                }
            }
        }
    }
}

impl Drop for Kpulse {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// (pod, container, restarts, ready) for every container: what "the same rows" means.
pub fn fingerprint(pods: &[PodInfo]) -> Vec<(String, String, u32, bool)> {
    let mut v: Vec<_> = pods
        .iter()
        .flat_map(|p| p.containers.iter().map(move |c| (p.key.to_string(), c.name.clone(), c.restarts, c.ready)))
        .collect();
    v.sort();
    v
}

pub fn state_fingerprint(state: &State) -> Vec<(String, String, u32, bool)> {
    let pods: Vec<PodInfo> = state.pods.values().cloned().collect();
    fingerprint(&pods)
}

/// A real component's binary, or `None` with a loud message. Under `KPULSE_REQUIRE_REAL` (set by
/// scripts/test.sh and CI) a missing component is a failure, never a silent pass.
pub fn real_binary(name: &str, install: &str) -> Option<std::path::PathBuf> {
    // Daemons (nginx, haproxy) live in /usr/sbin, which a non-root PATH may lack.
    let mut dirs: Vec<std::path::PathBuf> =
        std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).collect()).unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin"].map(std::path::PathBuf::from));
    let found = dirs.iter().map(|p| p.join(name)).find(|p| p.is_file());
    if found.is_none() {
        let msg = format!("real component `{name}` is missing: install it with `{install}` (scripts/test.sh does)");
        assert!(std::env::var_os("KPULSE_REQUIRE_REAL").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    found
}

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed when the test ends, pass or fail.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    /// SIGTERM first, so a master process (nginx, haproxy) takes its workers with it; SIGKILL
    /// after two seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET over plain HTTP/1.0 on loopback: (status, body). Enough for readiness probes and /metrics.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    // One write, no Nagle: a request split over segments waits for a delayed ACK (40 ms), which
    // gateways log as time spent receiving it.
    s.set_nodelay(true)?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, body.to_string()))
}

pub fn wait_http_ok(addr: &str, path: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = http_get(addr, path) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not become ready at http://{addr}{path}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A real Prometheus (Debian `prometheus`) on a free loopback port with this config, ready:
/// (process, "127.0.0.1:PORT", its data directory).
pub fn spawn_prometheus(config_yaml: &str) -> Option<(KillOnDrop, String, tempfile::TempDir)> {
    let (child, addr, dir) = spawn_prometheus_with(config_yaml, &[], tempfile::tempdir().unwrap())?;
    wait_http_ok(&addr, "/-/ready", "prometheus");
    Some((child, addr, dir))
}

/// The same with extra flags (e.g. `--web.config.file` for TLS) and files already in `dir`;
/// not waited for.
pub fn spawn_prometheus_with(
    config_yaml: &str,
    flags: &[String],
    dir: tempfile::TempDir,
) -> Option<(KillOnDrop, String, tempfile::TempDir)> {
    let bin = real_binary("prometheus", "apt-get install -y prometheus")?;
    std::fs::write(dir.path().join("prom.yml"), config_yaml).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let child = std::process::Command::new(bin)
        .args(flags)
        .arg(format!("--config.file={}", dir.path().join("prom.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus starts");
    Some((KillOnDrop(child), addr, dir))
}

/// A Prometheus-style scrape config for the simulator: every node's cAdvisor path and the
/// kube-state-metrics endpoint, once a second (both Prometheus and VictoriaMetrics read it).
pub fn sim_scrape_config(h: &Harness) -> String {
    let nodes = h.sim.lock().unwrap().node_names();
    let mut config = String::from("global:\n  scrape_interval: 1s\nscrape_configs:\n");
    config.push_str(&format!(
        "- job_name: kube-state-metrics\n  metrics_path: /sim/kube-state-metrics/metrics\n  static_configs:\n  - targets: ['{}']\n",
        h.addr
    ));
    for node in nodes {
        config.push_str(&format!(
            "- job_name: cadvisor-{node}\n  honor_timestamps: false\n  metrics_path: /api/v1/nodes/{node}/proxy/metrics/cadvisor\n  static_configs:\n  - targets: ['{}']\n",
            h.addr
        ));
    }
    config
}

/// A kubeconfig in `dir` for the kpulse binary to reach the simulator, with no credentials.
pub fn sim_kubeconfig(h: &Harness, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: sim, cluster: {{server: 'http://{}'}}}}]\n\
             users: [{{name: u, user: {{}}}}]\ncontexts: [{{name: sim, context: {{cluster: sim, user: u}}}}]\n\
             current-context: sim\n",
            h.addr
        ),
    )
    .unwrap();
    path
}

/// A real single-node VictoriaMetrics (Debian `victoria-metrics`) scraping with `scrape_yaml`,
/// ready, with queries seeing samples a second old instead of its default 30 s
/// (`-search.latencyOffset`, a documented difference from Prometheus) and no response cache.
pub fn spawn_victoria_metrics(scrape_yaml: &str) -> Option<(KillOnDrop, String, tempfile::TempDir)> {
    let bin = real_binary("victoria-metrics", "apt-get install -y victoria-metrics")?;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scrape.yml"), scrape_yaml).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let child = std::process::Command::new(bin)
        .arg(format!("-httpListenAddr={addr}"))
        .arg(format!("-storageDataPath={}", dir.path().join("data").display()))
        .arg(format!("-promscrape.config={}", dir.path().join("scrape.yml").display()))
        .args(["-retentionPeriod=1d", "-search.latencyOffset=1s", "-search.disableCache", "-loggerLevel=ERROR"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("victoria-metrics.log")).unwrap())
        .spawn()
        .expect("victoria-metrics starts");
    let vm = KillOnDrop(child);
    wait_http_ok(&addr, "/health", "victoria-metrics");
    Some((vm, addr, dir))
}

/// The kpulse binary under test.
pub fn kpulse() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kpulse"))
}

/// Runs it to the end with no stdin: (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.stdin(std::process::Stdio::null()).output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The shell command that runs the dashboard on `kubeconfig` (with `args`, e.g. `-A`) in a
/// terminal, its config directory `config_dir`, and keeps the pane open after it exits.
pub fn dashboard_command(config_dir: &std::path::Path, kubeconfig: &std::path::Path, args: &str) -> String {
    format!(
        "XDG_CONFIG_HOME={} {} --kubeconfig {} {args}; sleep 30",
        config_dir.display(),
        env!("CARGO_BIN_EXE_kpulse"),
        kubeconfig.display()
    )
}

/// A real terminal: a detached tmux session running a shell command, killed on drop.
pub struct Tmux {
    tmux: std::path::PathBuf,
    pub session: String,
}

impl Tmux {
    /// `None` (skipped loudly, or a failure under `KPULSE_REQUIRE_REAL`) when tmux is missing.
    pub fn start(name: &str, (width, height): (u16, u16), command: &str) -> Option<Tmux> {
        let tmux = real_binary("tmux", "apt-get install -y tmux")?;
        let session = format!("{name}-{}", std::process::id());
        let (w, h) = (width.to_string(), height.to_string());
        let status =
            Command::new(&tmux).args(["new-session", "-d", "-s", &session, "-x", &w, "-y", &h, command]).status();
        assert!(status.is_ok_and(|s| s.success()), "tmux could not start {command}");
        Some(Tmux { tmux, session })
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        let _ = Command::new(&self.tmux).args(&args).status();
    }

    /// Types `:text` and Enter, as a user enters a command (`:ctx prod`).
    pub fn command(&self, text: &str) {
        let chars: Vec<String> = text.chars().map(|c| if c == ' ' { "Space".into() } else { c.to_string() }).collect();
        let mut keys: Vec<&str> = vec![":"];
        keys.extend(chars.iter().map(String::as_str));
        keys.push("Enter");
        self.keys(&keys);
    }

    /// What the terminal shows now; with `history` lines of scrollback above it.
    pub fn screen_with_history(&self, history: u32) -> String {
        let start = format!("-{history}");
        let out = Command::new(&self.tmux).args(["capture-pane", "-p", "-S", &start, "-t", &self.session]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    }

    pub fn screen(&self) -> String {
        self.screen_with_history(0)
    }

    /// The screen with its SGR escape sequences (colours, bold, reverse), as tmux holds them.
    pub fn screen_with_escapes(&self) -> String {
        let out = Command::new(&self.tmux).args(["capture-pane", "-p", "-e", "-t", &self.session]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    }

    /// Resizes the window, as a user dragging the terminal does (the app gets SIGWINCH).
    pub fn resize(&self, width: u16, height: u16) {
        let (w, h) = (width.to_string(), height.to_string());
        let _ = Command::new(&self.tmux).args(["resize-window", "-t", &self.session, "-x", &w, "-y", &h]).status();
    }

    /// The pid of the process named `name` among the pane shell's children.
    pub fn pane_pid_of(&self, name: &str) -> Option<u32> {
        let out = Command::new(&self.tmux).args(["display-message", "-p", "-t", &self.session, "#{pane_pid}"]).output();
        let shell = String::from_utf8_lossy(&out.ok()?.stdout).trim().to_string();
        let children = Command::new("pgrep").args(["-P", &shell, "-x", name]).output().ok()?;
        String::from_utf8_lossy(&children.stdout).split_whitespace().next()?.parse().ok()
    }

    /// The screen once `ready` holds, or a failure naming `what` after 30 seconds.
    pub fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        self.wait_for_within(what, Duration::from_secs(30), ready)
    }

    /// The screen once `ready` holds, or a failure naming `what` after `patience`.
    pub fn wait_for_within(&self, what: &str, patience: Duration, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + patience;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The title line's "12/40 rows": rows shown, rows in all.
pub fn rows_shown(screen: &str) -> Option<(usize, usize)> {
    let before = screen.find(" rows  sort:")?;
    let count = screen[..before].rsplit(' ').next()?;
    let (shown, total) = count.split_once('/')?;
    Some((shown.parse().ok()?, total.parse().ok()?))
}

/// The dashboard in `term`, showing `rows`, while `freeze` stops its API server (SIGSTOP) and
/// `thaw` lets it go: help still opens, the strip says the pods are shown as last seen with the
/// rows kept, and that line clears after the thaw.
pub fn dashboard_through_a_freeze(term: &Tmux, rows: (usize, usize), freeze: impl FnOnce(), thaw: impl FnOnce()) {
    freeze();
    term.keys(&["?"]);
    term.wait_for("the help screen while the server is frozen", |s| s.contains("Keys — ? or Esc to close"));
    term.keys(&["Escape"]);
    // A quiet watch asks its server after 30 s, and the probe gives up after 5.
    let screen = term.wait_for_within("the frozen server named", Duration::from_secs(60), |s| {
        s.contains("not seen: lost the pods at") && s.contains("no answer from the API server")
    });
    assert!(screen.contains("showing them as they were"), "{screen}");
    assert_eq!(rows_shown(&screen), Some(rows), "the rows stay while frozen:\n{screen}");
    thaw();
    let screen = term.wait_for_within("the line gone after the thaw", Duration::from_secs(40), |s| {
        !s.contains("lost the pods") && rows_shown(s) == Some(rows)
    });
    assert!(!screen.contains("cannot see"), "{screen}");
    term.keys(&["q"]);
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new(&self.tmux).args(["kill-session", "-t", &self.session]).status();
    }
}
