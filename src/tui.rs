//! The interactive session: terminal setup and restore, the input thread, the clock, the sources,
//! and the loop that feeds messages to `State::update` and draws. No logic of its own.

use std::io::stdout;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::execute;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::{Command, Msg, State};
use crate::kubeconfig::{Connection, Connector};
use crate::model::time::now_unix;
use crate::model::update::Update;
use crate::sources::gateway::{self, GatewaySpec};
use crate::sources::kube::{KubeSourceConfig, Scope, spawn_all};
use crate::sources::local_log;

/// Restores the terminal on every exit path: normal return, error, and panic (the hook runs before
/// the panic message is printed, so it is readable).
fn install_terminal() -> std::io::Result<ratatui::DefaultTerminal> {
    let terminal = ratatui::try_init()?;
    execute!(stdout(), EnableMouseCapture)?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(stdout(), DisableMouseCapture);
        ratatui::restore();
        previous(info);
    }));
    Ok(terminal)
}

/// SIGTERM, SIGHUP and SIGQUIT end the session as `q` does, so the terminal is restored (their
/// default action would leave it raw, with the alternate screen up).
struct StopSignals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
            _ = self.quit.recv() => "SIGQUIT",
        }
    }
}

fn restore_terminal() {
    let _ = execute!(stdout(), DisableMouseCapture);
    ratatui::restore();
}

pub struct Sources {
    pub cancel: CancellationToken,
    pub updates: mpsc::UnboundedReceiver<Update>,
}

impl Sources {
    /// No cluster: a channel nothing sends on.
    pub fn none() -> Sources {
        let (_, updates) = mpsc::unbounded_channel();
        Sources { cancel: CancellationToken::new(), updates }
    }
}

pub fn start_sources(connection: Connection, state: &State) -> Sources {
    let Connection { client, namespace: fallback_namespace, traffic } = connection;
    let (tx, updates) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    {
        let report = crate::sources::api_traffic::report(traffic, tx.clone());
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = report => {}
            }
        });
    }
    let cfg = KubeSourceConfig {
        scope: state.scope.clone(),
        usage: state.config.usage,
        prometheus: state.config.prometheus_for(&state.context),
        prometheus_headers: state.config.prometheus_headers.clone(),
        queries: state.config.queries.clone(),
        retention: state.config.retention,
        scrape: state.config.scrape.clone(),
        metrics_interval: state.config.metrics_interval,
        cadvisor_full_interval: state.config.cadvisor_full_interval,
        cadvisor_max_nodes: state.config.cadvisor_max_nodes,
        mesh_max_pods: state.config.mesh_max_pods,
        fallback_namespace,
    };
    for spec in state.config.gateway.iter().filter(|g| !g.is_local()) {
        let follow = gateway::follow_pods(client.clone(), spec.clone(), state.scope.clone(), tx.clone());
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = follow => {}
            }
        });
    }
    spawn_all(client, cfg, tx, cancel.clone());
    Sources { cancel, updates }
}

/// Files and stdin do not depend on the cluster: started once, they outlive context switches.
/// Their channel is bounded: a log is read as fast as the app parses it, not into memory.
pub fn start_local_sources(state: &State, cancel: &CancellationToken) -> mpsc::Receiver<Update> {
    let (tx, rx) = mpsc::channel(local_log::LOCAL_QUEUE);
    for spec in &state.config.gateway {
        let task: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = match spec {
            GatewaySpec::File { path, from_start } => {
                Box::pin(local_log::tail_file(path.clone(), *from_start, tx.clone()))
            }
            GatewaySpec::Stdin => Box::pin(local_log::read_stdin(tx.clone())),
            _ => continue,
        };
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = task => {}
            }
        });
    }
    let events = &state.config.events;
    if !events.brokers.is_empty() {
        let brokers = events.brokers.iter().map(|b| (b.clone(), events.mapping(b.kind))).collect();
        let poll = crate::sources::broker::poll(brokers, state.config.metrics_interval, tx.clone());
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = poll => {}
            }
        });
    }
    rx
}

/// How long a namespace or context switch may take to connect before it is given up on: past
/// the credential plugin's own 30 s, which kube may run several times for one client.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(45);

/// Connections being made for a namespace or context switch, off the UI loop. Each switch gets
/// the next generation; an answer for an older one (the user switched again meanwhile) is dropped.
struct ConnectJobs {
    generation: u64,
    tx: mpsc::UnboundedSender<Connected>,
    done: mpsc::UnboundedReceiver<Connected>,
}

struct Connected {
    generation: u64,
    /// A context switch takes the new context's namespace as its scope.
    rescope_to_its_namespace: bool,
    result: Result<Connection, String>,
}

impl ConnectJobs {
    fn new() -> ConnectJobs {
        let (tx, done) = mpsc::unbounded_channel();
        ConnectJobs { generation: 0, tx, done }
    }

    fn start(&mut self, connector: &Connector, context: String, rescope_to_its_namespace: bool) {
        self.generation += 1;
        let generation = self.generation;
        let (connector, tx) = (connector.clone(), self.tx.clone());
        tokio::spawn(async move {
            let result = match tokio::time::timeout(SWITCH_TIMEOUT, connector.connect(&context)).await {
                Ok(Ok(connection)) => Ok(connection),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("connecting to context {context} timed out after {}s", SWITCH_TIMEOUT.as_secs())),
            };
            let _ = tx.send(Connected { generation, rescope_to_its_namespace, result });
        });
    }
}

/// The dashboard, on a `cluster` already connected to (its connector makes the connections of
/// later namespace and context switches). Without one (no kubeconfig, only local logs) it shows
/// the logs alone.
pub async fn run(cluster: Option<(Connector, Connection)>, mut state: State) -> color_eyre::Result<()> {
    let (connector, mut sources) = match cluster {
        Some((connector, connection)) => {
            state.server = connector.server(&state.context);
            let sources = start_sources(connection, &state);
            (Some(connector), sources)
        }
        None => (None, Sources::none()),
    };
    let local_cancel = CancellationToken::new();
    let mut local_updates = start_local_sources(&state, &local_cancel);

    let mut signals = StopSignals::install()?;
    let mut terminal = install_terminal().map_err(|e| {
        color_eyre::eyre::eyre!(
            "the dashboard needs a terminal ({e}); without one, `kpulse snapshot` prints a report instead"
        )
    })?;
    let (input_tx, mut input_rx) = mpsc::unbounded_channel::<Msg>();
    let stop_input = CancellationToken::new();
    {
        let stop = stop_input.clone();
        std::thread::spawn(move || {
            while !stop.is_cancelled() {
                // Poll with a timeout so the thread notices shutdown.
                if !event::poll(Duration::from_millis(200)).unwrap_or(false) {
                    continue;
                }
                let msg = match event::read() {
                    Ok(Event::Key(k)) if k.kind == event::KeyEventKind::Press => Msg::Key(k),
                    Ok(Event::Mouse(m)) => Msg::Mouse(m),
                    Ok(Event::Resize(..)) => Msg::Tick(now_unix()),
                    Ok(_) => continue,
                    Err(_) => break,
                };
                if input_tx.send(msg).is_err() {
                    break;
                }
            }
        });
    }
    let mut connects = ConnectJobs::new();
    let mut clock = tokio::time::interval(state.config.refresh_interval);
    let mut frame = tokio::time::interval(Duration::from_millis(100));
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut needs_draw = true;
    let mut last_draw = Instant::now() - Duration::from_secs(1);
    // For the test that proves the panic path restores the terminal.
    let panic_after_draw = std::env::var_os("KPULSE_TEST_PANIC_AFTER_DRAW").is_some();
    let result: color_eyre::Result<()> = async {
        loop {
            let mut commands = Vec::new();
            let mut input_seen = false;
            tokio::select! {
                Some(msg) = input_rx.recv() => {
                    commands.extend(state.update(msg));
                    input_seen = true;
                }
                Some(update) = sources.updates.recv() => {
                    state.update(Msg::Source(update));
                    needs_draw = true;
                }
                Some(update) = local_updates.recv() => {
                    state.update(Msg::Source(update));
                    needs_draw = true;
                }
                _ = clock.tick() => {
                    state.update(Msg::Tick(now_unix()));
                    needs_draw = true;
                }
                _ = frame.tick() => {}
                name = signals.next() => {
                    return Err(color_eyre::eyre::eyre!("stopped by {name}"));
                }
                Some(done) = connects.done.recv() => {
                    if done.generation == connects.generation {
                        match done.result {
                            Ok(connection) => {
                                if done.rescope_to_its_namespace && !state.config.all_namespaces && !state.demo {
                                    state.scope = Scope::Namespace(connection.namespace.clone());
                                }
                                sources = start_sources(connection, &state);
                            }
                            Err(why) => {
                                state.notice(why.clone());
                                state.connect_failed = Some(why);
                            }
                        }
                        needs_draw = true;
                    }
                }
            }
            // Drain what is queued (a 10,000-pod list arrives as a burst) but keep input responsive.
            let mut drained = 0;
            while drained < 20_000 {
                match sources.updates.try_recv() {
                    Ok(update) => state.update(Msg::Source(update)),
                    Err(_) => break,
                };
                drained += 1;
                needs_draw = true;
            }
            for command in commands {
                let Some(connector) = &connector else {
                    if command == Command::Quit {
                        return Ok(());
                    }
                    state.notice("no cluster: kpulse is reading the gateway logs only");
                    continue;
                };
                match command {
                    Command::Quit => return Ok(()),
                    // Connecting may take seconds (a credential plugin, a far server): it runs as a
                    // job, keys keep working meanwhile, and only the latest switch's answer is used.
                    Command::Rescope(_) => {
                        sources.cancel.cancel();
                        sources = Sources::none();
                        connects.start(connector, state.context.clone(), false);
                    }
                    Command::SwitchContext(ctx) => {
                        sources.cancel.cancel();
                        sources = Sources::none();
                        state.server = connector.server(&ctx);
                        state.notice(format!("connecting to context {ctx}…"));
                        connects.start(connector, ctx, true);
                    }
                }
            }
            // Input redraws at once; data redraws at most ten times a second.
            if input_seen || (needs_draw && last_draw.elapsed() >= Duration::from_millis(100)) {
                state.refresh();
                terminal.draw(|f| crate::ui::draw(&state, f))?;
                needs_draw = false;
                last_draw = Instant::now();
                if panic_after_draw && state.pods.synced() {
                    panic!("KPULSE_TEST_PANIC_AFTER_DRAW is set");
                }
            }
        }
    }
    .await;
    stop_input.cancel();
    sources.cancel.cancel();
    local_cancel.cancel();
    restore_terminal();
    result
}
