//! Command line: kubectl's flag conventions, a `demo` subcommand, and the wiring of each mode.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::app::State;
use crate::config::Config;
use crate::demo::scenario::Scenario;
use crate::demo::server::{ServerOptions, kubeconfig_yaml, serve, spawn_clock};
use crate::demo::sim::Sim;
use crate::kubeconfig::Connector;
use crate::model::time::now_unix;
use crate::sources::gateway::GatewaySpec;
use crate::sources::kube::{Scope, UsageMode};

/// `--version`: the release and the commit it was built from (build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KPULSE_BUILD"), ")");

#[derive(Debug, Parser)]
#[command(
    name = "kpulse",
    version = VERSION,
    about = "Which container is the bottleneck, and why: a terminal dashboard for Kubernetes",
    after_help = "Run `kpulse demo` to try it on an embedded simulated cluster, no cluster needed.\n\
                  Keys: ? in the dashboard. Config: $XDG_CONFIG_HOME/kpulse/config.toml."
)]
pub struct Cli {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: current-context)
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace to watch (default: the context's namespace)
    #[arg(short = 'n', long, global = true, value_name = "NAME", conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,
    /// Watch all namespaces
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,
    /// Where container usage comes from: auto (kubelet cAdvisor via the node proxy, else
    /// metrics.k8s.io), cadvisor, metrics-api
    #[arg(long, global = true, value_name = "SOURCE", value_parser = ["auto", "cadvisor", "metrics-api"])]
    pub usage: Option<String>,
    /// Read usage, throttling, network and history from Prometheus: http(s)://host:9090, or "auto" to
    /// find it in the cluster and query it through the API server's service proxy
    #[arg(long, global = true, value_name = "URL|auto")]
    pub prometheus: Option<String>,
    /// A header for every Prometheus request, as curl's -H: 'X-Scope-OrgID: tenant-1' (Mimir,
    /// Cortex), an API key; repeatable. Values are never printed
    #[arg(long, global = true, value_name = "'NAME: VALUE'")]
    pub prometheus_header: Vec<String>,
    /// Send the token in FILE as `Authorization: Bearer` to Prometheus, read again at each
    /// request so a rotated token is used; never printed
    #[arg(long, global = true, value_name = "FILE")]
    pub prometheus_bearer_token_file: Option<PathBuf>,
    /// Scrape this cAdvisor-style exposition URL (http:// or https://) for usage instead of the
    /// kubelets; repeatable
    #[arg(long, global = true, value_name = "URL")]
    pub scrape: Vec<String>,
    /// Gateway access logs to read: auto (the default: ingress-nginx, Istio, Traefik, Envoy
    /// Gateway, HAProxy ingress found by their labels), pods:NAMESPACE/SELECTOR[#CONTAINER],
    /// file:PATH (followed from its end, like tail -F), file+all:PATH (read from its start, then
    /// followed; a snapshot reads it to its end and reports the whole log), or - for stdin;
    /// repeatable
    #[arg(long, global = true, value_name = "SOURCE")]
    pub gateway: Vec<String>,
    /// Gateway log format instead of detecting it: ingress-nginx, combined, envoy, istio, json,
    /// traefik, haproxy, or nginx:'<log_format>' / envoy:'<format>'
    #[arg(long, global = true, value_name = "NAME")]
    pub log_format: Option<String>,
    /// The zone of gateway log times written without one (HAProxy's): UTC, local (the default),
    /// an offset such as -05:00, or a name such as America/New_York
    #[arg(long, global = true, value_name = "ZONE")]
    pub log_tz: Option<String>,
    /// A message broker's Prometheus endpoint for the Events view: rabbitmq=URL (RabbitMQ's
    /// /metrics/per-object), kafka=URL (kafka-exporter), nats=URL (the NATS exporter);
    /// KIND/NAME=URL names it; KIND=prometheus:URL reads its series from a Prometheus; repeatable
    #[arg(long, global = true, value_name = "KIND=URL")]
    pub broker: Vec<String>,
    /// Config file (default: $XDG_CONFIG_HOME/kpulse/config.toml)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Append a log of what kpulse saw and did (sources connecting, failing, recovering;
    /// notices) to FILE, never to the terminal; secrets masked. KPULSE_LOG sets the level
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Open the dashboard on an embedded simulated cluster (no cluster, no Docker needed)
    Demo(DemoArgs),
    /// Collect for a window, print containers, traffic and the ranked hotspots, and exit
    /// (exit code 3 when --fail-on SCORE is reached, 1 when a source could not be seen)
    Snapshot(SnapshotArgs),
    /// Print a completion script: bash, zsh, fish, powershell, elvish, or kubectl (the
    /// kubectl_complete-pulse executable that completes `kubectl pulse …`)
    Completions(CompletionsArgs),
    /// Print the man page (roff), e.g. `kpulse man > ~/.local/share/man/man1/kpulse.1`
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
    /// kubectl's plugin completion: save as `kubectl_complete-pulse` on PATH, executable
    Kubectl,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// How long to collect: 30s, 5m… (with --demo: simulated time played, default the scenario's
    /// own length or 300s)
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,
    /// table (for people), json (versioned schema, docs/snapshot-schema.md) or markdown
    #[arg(long, default_value = "table", value_name = "FORMAT")]
    pub format: String,
    /// Exit with code 3 when a hotspot's score reaches SCORE (0-100)
    #[arg(long, value_name = "SCORE", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub fail_on: Option<u32>,
    /// Run against the embedded simulated cluster instead of a real one
    #[arg(long)]
    pub demo: bool,
    /// With --demo: the scenario file to play (default: the built-in shop)
    #[arg(long, value_name = "FILE", requires = "demo")]
    pub scenario: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Only run the simulated cluster, headless, until interrupted (for kubectl, tests, benchmarks)
    #[arg(long)]
    pub serve: bool,
    /// Write a kubeconfig for the simulated cluster to FILE
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Scenario file to play (default: the built-in shop; format in demo/scenarios/shop.toml)
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Scale the scenario up to about N pods (three containers per added pod)
    #[arg(long, value_name = "N")]
    pub pods: Option<u32>,
    /// Simulated seconds per real second (rates read from logs and brokers are then per real
    /// second, X times the scenario's)
    #[arg(long, default_value_t = 1, value_name = "X")]
    pub speed: u32,
    /// Port on 127.0.0.1 for the simulated API server (default: any free port)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// Exit code for usage errors and missing inputs, as clap uses.
pub const EXIT_USAGE: i32 = 2;

/// The command as this binary was invoked: `kpulse`, or kubectl's plugin `kubectl pulse`.
fn command_as_invoked() -> clap::Command {
    let invoked_as = std::env::args_os().next().unwrap_or_default();
    let command = Cli::command();
    if invoked_as.to_string_lossy().ends_with("kubectl-pulse") {
        command.bin_name("kubectl pulse").name("kubectl-pulse")
    } else {
        command
    }
}

pub fn main() {
    crate::heap::limit_arenas();
    let _ = color_eyre::install();
    let words: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    // kubectl's plugin completion (kubectl_complete-pulse) asks before any parsing.
    if words.first().map(String::as_str) == Some("__complete") {
        print!("{}", crate::completion::complete(command_as_invoked(), &words[1..]));
        std::process::exit(0);
    }
    let cli = match Cli::from_arg_matches(&command_as_invoked().get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match &cli.command {
        Some(Cmd::Completions(args)) => {
            std::process::exit(crate::completion::print_script(args.shell, command_as_invoked()))
        }
        Some(Cmd::Man) => std::process::exit(crate::completion::print_man_page(command_as_invoked())),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kpulse: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(run(cli));
    // Background watch tasks may still be running; do not wait for them.
    runtime.shutdown_background();
    std::process::exit(code);
}

/// The command line for the log: a header's value (a key, a tenant) never, other secrets masked.
fn logged_args() -> String {
    let mut out = Vec::new();
    let mut header_next = false;
    for arg in std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()) {
        let header = std::mem::take(&mut header_next);
        if header || arg.starts_with("--prometheus-header=") {
            out.push("[header]".to_string());
        } else {
            header_next = arg == "--prometheus-header";
            out.push(crate::logging::redact(&arg));
        }
    }
    out.join(" ")
}

async fn run(cli: Cli) -> i32 {
    if let Some(path) = &cli.log_file {
        if let Err(e) = crate::logging::init(path) {
            eprintln!("kpulse: {e}");
            return EXIT_USAGE;
        }
        tracing::info!("kpulse {VERSION} started: {}", logged_args());
    }
    let config_path = cli.config.clone().or_else(Config::default_path);
    let (mut config, config_error) = match &config_path {
        Some(p) => Config::load(p),
        None => (Config::default(), None),
    };
    // NO_COLOR (no-color.org): set and not empty, no colour whatever the theme; every state
    // is a word too, so the mono theme loses nothing.
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        config.theme = "mono".into();
    }
    config.usage = match cli.usage.as_deref() {
        Some("cadvisor") => UsageMode::Cadvisor,
        Some("metrics-api") => UsageMode::MetricsApi,
        Some(_) => UsageMode::Auto,
        None => config.usage,
    };
    for url in &cli.scrape {
        if let Err(e) = crate::sources::http::check_url(url, "scrape") {
            eprintln!("kpulse: {e}");
            return EXIT_USAGE;
        }
    }
    if !cli.scrape.is_empty() {
        config.scrape = cli.scrape.clone();
    }
    if !cli.broker.is_empty() {
        match cli.broker.iter().map(|b| crate::model::broker::BrokerTarget::parse(b)).collect::<Result<Vec<_>, _>>() {
            Ok(brokers) => {
                config.events.brokers.clear();
                for b in brokers {
                    config.events.add_broker(b);
                }
            }
            Err(e) => {
                eprintln!("kpulse: {e}");
                return EXIT_USAGE;
            }
        }
    }
    if !cli.gateway.is_empty() {
        match cli.gateway.iter().map(|g| crate::sources::gateway::GatewaySpec::parse(g)).collect() {
            Ok(specs) => config.gateway = specs,
            Err(e) => {
                eprintln!("kpulse: {e}");
                return EXIT_USAGE;
            }
        }
    }
    if let Some(format) = &cli.log_format {
        if let Err(e) = crate::model::accesslog::Format::by_name(format) {
            eprintln!("kpulse: --log-format: {e}");
            return EXIT_USAGE;
        }
        config.log_format = Some(format.clone());
    }
    if let Some(zone) = &cli.log_tz {
        if let Err(e) = crate::model::accesslog::zone::LogZone::parse(zone) {
            eprintln!("kpulse: --log-tz: {e}");
            return EXIT_USAGE;
        }
        config.log_tz = Some(zone.clone());
    }
    for header in &cli.prometheus_header {
        if let Err(e) = config.prometheus_headers.add(header) {
            eprintln!("kpulse: --prometheus-header: {e}");
            return EXIT_USAGE;
        }
    }
    if let Some(path) = &cli.prometheus_bearer_token_file
        && let Err(e) = config.prometheus_headers.set_bearer_token_file(path.clone())
    {
        eprintln!("kpulse: --prometheus-bearer-token-file: {e}");
        return EXIT_USAGE;
    }
    if let Some(url) = &cli.prometheus {
        if url != "auto"
            && let Err(e) = crate::sources::prometheus::Endpoint::direct(url, Default::default())
        {
            eprintln!("kpulse: {e}");
            return EXIT_USAGE;
        }
        // The flag wins over the config file, for every context.
        config.prometheus = Some(url.clone());
        config.prometheus_contexts.clear();
    }
    if let (Some(err), Some(_)) = (&config_error, &cli.config)
        && cli.config.as_ref().is_some_and(|p| !p.exists())
    {
        eprintln!("kpulse: {err}");
        return EXIT_USAGE;
    }
    if let Some(p) = cli.config.as_ref().filter(|p| !p.exists()) {
        eprintln!("kpulse: config file {} does not exist", p.display());
        return EXIT_USAGE;
    }
    let result = match cli.command {
        Some(Cmd::Demo(ref args)) => run_demo(&cli, args, config, config_error).await,
        Some(Cmd::Snapshot(ref args)) => run_snapshot(&cli, args, config, config_error).await,
        None => run_cluster(&cli, config, config_error).await.map(|()| 0),
        // Answered in main, before the runtime starts.
        Some(Cmd::Completions(_) | Cmd::Man) => Ok(0),
    };
    match result {
        Ok(code) => code,
        Err(Failure::Usage(msg)) => {
            eprintln!("kpulse: {msg}");
            EXIT_USAGE
        }
        Err(Failure::Runtime(msg)) => {
            eprintln!("kpulse: {msg}");
            1
        }
    }
}

enum Failure {
    Usage(String),
    Runtime(String),
}

fn new_state(
    config: Config,
    config_error: Option<String>,
    context: String,
    contexts: Vec<String>,
    scope: Scope,
) -> State {
    let mut state = State::new(config, context, contexts, scope, now_unix());
    if let Some(e) = config_error {
        state.notice(e);
    }
    state
}

async fn run_cluster(cli: &Cli, config: Config, config_error: Option<String>) -> Result<(), Failure> {
    let connector = match Connector::discover(cli.kubeconfig.as_deref()) {
        Err(e) if reads_only_local_logs(cli, &config) => {
            // A log and no cluster: the Traffic view of the log alone.
            let mut state = new_state(config, config_error, String::new(), vec![], Scope::All);
            state.without_cluster(e.to_string());
            state.view = crate::app::View::Traffic;
            if state.config.gateway.iter().all(|g| g.history_stream().is_some()) {
                // A log read after the fact is shown where it ends, not against today's clock.
                state.traffic.follow_log_time();
            }
            return crate::tui::run(None, state).await.map_err(|e| Failure::Runtime(format!("{e:#}")));
        }
        discovered => discovered.map_err(|e| Failure::Usage(e.to_string()))?,
    };
    let context = connector.resolve_context(cli.context.as_deref()).map_err(|e| Failure::Usage(e.to_string()))?;
    // Connected once, here: a credential plugin that fails is a usage error, before the screen.
    let connection = connector.connect(&context).await.map_err(|e| Failure::Usage(e.to_string()))?;
    let scope = scope_of(cli, &config, connection.namespace.clone());
    let state = new_state(config, config_error, context, connector.contexts(), scope);
    crate::tui::run(Some((connector, connection)), state).await.map_err(|e| Failure::Runtime(format!("{e:#}")))
}

/// Every `--gateway` is a file or stdin and no kubeconfig was named: kpulse can run on the logs
/// alone when no cluster is found.
fn reads_only_local_logs(cli: &Cli, config: &Config) -> bool {
    cli.kubeconfig.is_none() && !config.gateway.is_empty() && config.gateway.iter().all(GatewaySpec::is_local)
}

async fn run_demo(cli: &Cli, args: &DemoArgs, config: Config, config_error: Option<String>) -> Result<i32, Failure> {
    let scenario = match &args.scenario {
        Some(path) => Scenario::load(path).map_err(Failure::Usage)?,
        None => Scenario::shop(),
    };
    let scenario = match args.pods {
        Some(n) if n > crate::demo::scenario::MAX_PODS => {
            return Err(Failure::Usage(format!("--pods {n}: at most {}", crate::demo::scenario::MAX_PODS)));
        }
        Some(n) => scenario.scaled_to(n),
        None => scenario,
    };
    let queues_scenario = scenario.clone();
    let sim = Arc::new(Mutex::new(Sim::new(scenario, now_unix())));
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let server = serve(sim.clone(), ServerOptions::default(), Default::default(), addr)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot listen on {addr}: {e}")))?;
    let mut config = config;
    crate::demo::demo_events(&queues_scenario, &mut config.events, Some(server.addr));
    let clock = tokio_util::sync::CancellationToken::new();
    spawn_clock(sim.clone(), args.speed, clock.clone());
    let kubeconfig = kubeconfig_yaml(server.addr);
    if let Some(path) = &args.kubeconfig_out {
        std::fs::write(path, &kubeconfig)
            .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    if args.serve {
        let pods = sim.lock().map(|s| s.pod_count()).unwrap_or(0);
        println!("kpulse demo: simulated cluster with {pods} pods at http://{}", server.addr);
        if let Some(path) = &args.kubeconfig_out {
            println!("kubeconfig: {}   (try: kubectl --kubeconfig {} get pods -A)", path.display(), path.display());
        }
        let _ = tokio::signal::ctrl_c().await;
        clock.cancel();
        server.stop().await;
        return Ok(0);
    }
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig).map_err(|e| Failure::Runtime(e.to_string()))?;
    let connector = Connector::Kubeconfig(Box::new(kc));
    let scope = match &cli.namespace {
        Some(ns) => Scope::Namespace(ns.clone()),
        None => Scope::All,
    };
    let connection = connector.connect("kpulse-demo").await.map_err(|e| Failure::Runtime(e.to_string()))?;
    let mut state = new_state(config, config_error, "kpulse-demo".into(), connector.contexts(), scope);
    state.demo = true;
    let result =
        crate::tui::run(Some((connector, connection)), state).await.map_err(|e| Failure::Runtime(format!("{e:#}")));
    clock.cancel();
    result.map(|()| 0)
}

fn scope_of(cli: &Cli, config: &Config, default_ns: String) -> Scope {
    if cli.all_namespaces || (cli.namespace.is_none() && config.all_namespaces) {
        Scope::All
    } else {
        Scope::Namespace(cli.namespace.clone().unwrap_or(default_ns))
    }
}

async fn run_snapshot(
    cli: &Cli,
    args: &SnapshotArgs,
    config: Config,
    config_error: Option<String>,
) -> Result<i32, Failure> {
    use crate::report::{ReportFormat, render};
    let format = ReportFormat::parse(&args.format).map_err(|e| Failure::Usage(format!("--format: {e}")))?;
    let window = args.window.as_deref().map(crate::snapshot::parse_window).transpose().map_err(Failure::Usage)?;
    let (state, window_secs, run) = if args.demo {
        let scenario = match &args.scenario {
            Some(path) => Scenario::load(path).map_err(Failure::Usage)?,
            None => Scenario::shop(),
        };
        let play = window.or(scenario.expect.as_ref().map(|e| e.play_secs)).unwrap_or(300);
        let (state, run) = crate::snapshot::play_demo(scenario, play, config, crate::snapshot::DEMO_EPOCH);
        (state, play, Some(run))
    } else {
        let wall_window = window.unwrap_or(30);
        let logs_only = reads_only_local_logs(cli, &config);
        let log_window = window.filter(|_| config.gateway.iter().any(|g| g.history_stream().is_some()));
        let state = match Connector::discover(cli.kubeconfig.as_deref()) {
            Err(e) if logs_only => {
                // A log after an incident, and no cluster: the traffic is what there is.
                let mut state = new_state(config, config_error, String::new(), vec![], Scope::All);
                state.without_cluster(e.to_string());
                eprintln!("kpulse snapshot: no cluster ({e}); reading the gateway logs only");
                crate::snapshot::collect(None, state, wall_window, log_window).await.map_err(Failure::Runtime)?
            }
            discovered => {
                let connector = discovered.map_err(|e| Failure::Usage(e.to_string()))?;
                let context =
                    connector.resolve_context(cli.context.as_deref()).map_err(|e| Failure::Usage(e.to_string()))?;
                let connection = connector.connect(&context).await.map_err(|e| Failure::Usage(e.to_string()))?;
                let scope = scope_of(cli, &config, connection.namespace.clone());
                let mut state = new_state(config, config_error, context, connector.contexts(), scope);
                state.server = connector.server(&state.context);
                eprintln!("kpulse snapshot: collecting for {wall_window}s from context {}", state.context);
                crate::snapshot::collect(Some(connection), state, wall_window, log_window)
                    .await
                    .map_err(Failure::Runtime)?
            }
        };
        // What the status bar would have shown for a moment (a dropped log line, a fallback).
        for (_, text) in &state.notices {
            eprintln!("kpulse snapshot: {text}");
        }
        (state, wall_window, None)
    };
    print!("{}", render(&state, format, window_secs, run.as_ref()));
    Ok(crate::snapshot::exit_code(&state, args.fail_on, |line| eprintln!("kpulse snapshot: {line}")))
}
