//! Whole-screen snapshots on a fixed scenario and clock (ratatui TestBackend + insta), and
//! `update()` transitions driven by keys, without a terminal.

use insta::assert_snapshot;
use kpulse::app::{Command, Msg, Overlay, State, View};
use kpulse::config::Config;
use kpulse::demo::scenario::Scenario;
use kpulse::demo::sim::Sim;
use kpulse::demo::{gateway_updates, updates_from_sim};
use kpulse::model::broker::Direction;
use kpulse::sources::Update;
use kpulse::sources::kube::Scope;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// Snapshots must not move when a default changes: a fixed 10 s sample step.
fn test_config() -> Config {
    Config { metrics_interval: std::time::Duration::from_secs(10), ..Config::default() }
}

/// The shop, played for `secs` with metrics sampled every 10 s, fed into a fresh state.
fn state_after(secs: i64) -> State {
    let mut sim = Sim::new(Scenario::shop(), START);
    let mut state =
        State::new(test_config(), "kpulse-demo".into(), vec!["kpulse-demo".into(), "prod".into()], Scope::All, START);
    let (mut t, mut log_seq) = (0, 0);
    while t < secs {
        sim.advance(10);
        t += 10;
        state.update(Msg::Tick(sim.now));
        for u in updates_from_sim(&sim) {
            state.update(Msg::Source(u));
        }
        let (gateway, last) = gateway_updates(&sim, log_seq);
        log_seq = last;
        for u in gateway {
            state.update(Msg::Source(u));
        }
    }
    state.refresh();
    state
}

fn key(state: &mut State, code: KeyCode) -> Vec<Command> {
    let cmds = state.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    state.refresh();
    cmds
}

fn render(state: &State, w: u16, h: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| kpulse::ui::draw(state, f)).unwrap();
    terminal.backend().clone()
}

#[test]
fn containers_screen() {
    let state = state_after(300);
    assert_snapshot!("containers", render(&state, 180, 30));
}

#[test]
fn containers_screen_narrow_drops_columns_not_health() {
    let state = state_after(300);
    let screen = render(&state, 100, 24).to_string();
    assert!(screen.contains("HEALTH"), "{screen}");
    assert!(!screen.contains("WORKLOAD"));
    // Short terminals keep their lines for the table: one hotspot at 24 lines, none at 12.
    assert_eq!(screen.lines().filter(|l| l.contains(" container ") || l.contains(" service ")).count(), 1, "{screen}");
    let tiny = render(&state, 100, 12).to_string();
    assert!(!tiny.contains("to see all") && tiny.contains("HEALTH"), "{tiny}");
    assert_snapshot!("containers_narrow", screen);
}

#[test]
fn nodes_screen() {
    let mut state = state_after(300);
    key(&mut state, KeyCode::Char('2'));
    assert_eq!(state.view, View::Nodes);
    assert_snapshot!("nodes", render(&state, 180, 12));
}

/// At 100 columns the node names used to shrink to one letter (every other column had a fixed
/// width): the least useful columns give way instead, and the name, status, use and pressure stay.
#[test]
fn nodes_screen_in_a_narrow_terminal() {
    let mut state = state_after(300);
    key(&mut state, KeyCode::Char('2'));
    let screen = render(&state, 100, 8).to_string();
    for name in ["node-a", "node-b", "node-c"] {
        assert!(screen.contains(&format!("│{name} ")), "{name} is readable:\n{screen}");
    }
    for kept in ["STATUS", "CPU USED", "MEM USED", "CONDITIONS", "no pressure"] {
        assert!(screen.contains(kept), "{kept} kept:\n{screen}");
    }
    assert_snapshot!("nodes_narrow", screen);
}

#[test]
fn help_screen_lists_every_key() {
    let mut state = state_after(20);
    key(&mut state, KeyCode::Char('?'));
    assert_eq!(state.overlay, Overlay::Help);
    let screen = render(&state, 120, 36);
    for (_, name, _, what) in kpulse::app::keymap::ACTIONS {
        assert!(screen.to_string().contains(what), "help shows {name}");
    }
    assert_snapshot!("help", screen);
    key(&mut state, KeyCode::Esc);
    assert_eq!(state.overlay, Overlay::None);
}

/// What kpulse costs the API server is on the help screen: the last minute's requests and
/// bytes, by kind, from the increments the client's counting layer reports.
#[test]
fn help_screen_says_what_kpulse_asked_of_the_api_server_in_the_last_minute() {
    use kpulse::model::api_cost::{ApiCost, RequestKind};
    let mut state = state_after(20);
    let scrapes = |n: u64| {
        let mut c = ApiCost::default();
        c.requests[RequestKind::NodeProxy.index()] = n;
        c.bytes[RequestKind::NodeProxy.index()] = n * 60_000;
        c
    };
    let now = state.now;
    // Ninety seconds ago (out of the minute), then three rounds of three kubelets within it.
    state.update(Msg::Source(Update::ApiCost { at: now - 90, increment: scrapes(50) }));
    for at in [now - 40, now - 25, now - 10] {
        state.update(Msg::Source(Update::ApiCost { at, increment: scrapes(3) }));
    }
    key(&mut state, KeyCode::Char('?'));
    let screen = render(&state, 120, 40).to_string();
    assert!(screen.contains("API server  last minute: 9 requests, 540 kB (node proxy 9 · 540 kB)"), "{screen}");
}

#[test]
fn detail_pane_of_the_leaking_cart() {
    let mut state = state_after(600);
    key(&mut state, KeyCode::Char('/'));
    for c in "cart".chars() {
        key(&mut state, KeyCode::Char(c));
    }
    key(&mut state, KeyCode::Enter);
    key(&mut state, KeyCode::Enter);
    assert!(state.show_detail);
    let row = state.selected_row().unwrap().clone();
    assert!(row.pod.name.starts_with("cart"));
    assert!(row.restarts >= 1 && row.last_reason.as_deref() == Some("OOMKilled"), "{row:?}");
    assert_snapshot!("detail_cart", render(&state, 160, 44));
}

#[test]
fn sorting_filtering_and_selection_follow_the_keys() {
    let mut state = state_after(120);
    let total = state.container_table.shown_len();
    assert!(total >= 18);
    // Default sort: worst health first.
    let first = state.selected_row().unwrap();
    assert_eq!(first.health.severity, kpulse::analysis::health::Severity::Bad);
    // Sort by CPU %limit: the starved payment pods and the event consumer working off its
    // backlog (both at 100 % of their limits) come first.
    while state.container_table.sort.0 != kpulse::app::rows::ContainerColumn::CpuPctLimit {
        key(&mut state, KeyCode::Char('s'));
    }
    let at_limit = |state: &kpulse::app::State| {
        let name = &state.selected_row().unwrap().pod.name;
        name.starts_with("payment") || name.starts_with("event-consumer")
    };
    key(&mut state, KeyCode::Char('g'));
    assert!(at_limit(&state));
    key(&mut state, KeyCode::Char('r'));
    key(&mut state, KeyCode::Char('g'));
    assert!(!at_limit(&state));
    // Moving stays in bounds.
    key(&mut state, KeyCode::Char('G'));
    assert_eq!(state.container_table.selected(), total - 1);
    key(&mut state, KeyCode::Down);
    assert_eq!(state.container_table.selected(), total - 1);
    // Fuzzy filter.
    key(&mut state, KeyCode::Char('/'));
    for c in "~ntfcatn".chars() {
        key(&mut state, KeyCode::Char(c));
    }
    key(&mut state, KeyCode::Enter);
    let names: Vec<&str> = state.container_table.shown().map(|r| r.pod.name.as_str()).collect();
    assert!(names.iter().any(|n| n.starts_with("notification")), "fuzzy ~ntfcatn finds notification: {names:?}");
    assert!(names.len() < total / 2, "and narrows the list: {names:?}");
    key(&mut state, KeyCode::Esc);
    assert_eq!(state.container_table.shown_len(), total);
}

#[test]
fn a_services_event_is_not_shown_on_the_pod_of_the_same_name() {
    use k8s_openapi::api::core::v1::Event;
    use kpulse::model::event::EventInfo;
    use kpulse::model::store::Change;
    use kpulse::sources::Update;
    let mut state = State::new(Config::default(), "c".into(), vec![], Scope::All, START);
    let event = |name: &str, kind: &str, reason: &str| {
        let ev: Event = serde_json::from_value(serde_json::json!({
            "metadata": { "namespace": "shop", "name": name },
            "involvedObject": { "kind": kind, "namespace": "shop", "name": "search-0" },
            "reason": reason, "type": "Warning",
        }))
        .unwrap();
        Msg::Source(Update::Events(Change::Applied(EventInfo::from_event(&ev))))
    };
    state.update(event("search-0.a", "Pod", "BackOff"));
    state.update(event("search-0.b", "Service", "ClusterIPNotAllocated"));
    let pod = kpulse::model::pod::PodKey::new("shop", "search-0");
    let reasons: Vec<&str> = state.pod_events(&pod).iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, ["BackOff"]);
}

#[test]
fn selection_stays_on_the_same_container_when_data_changes() {
    let mut sim = Sim::new(Scenario::shop(), START);
    let mut state = State::new(Config::default(), "c".into(), vec![], Scope::All, START);
    for u in updates_from_sim(&sim) {
        state.update(Msg::Source(u));
    }
    state.refresh();
    key(&mut state, KeyCode::Char('j'));
    key(&mut state, KeyCode::Char('j'));
    let chosen = state.selected_row().unwrap().key();
    sim.advance(200);
    for u in updates_from_sim(&sim) {
        state.update(Msg::Source(u));
    }
    state.update(Msg::Tick(sim.now));
    state.refresh();
    assert_eq!(state.selected_row().unwrap().key(), chosen);
}

#[test]
fn namespace_and_context_commands() {
    let mut state = state_after(20);
    // Watching all namespaces: :ns is a local filter, no re-watch.
    key(&mut state, KeyCode::Char(':'));
    for c in "ns ingress-nginx".chars() {
        key(&mut state, KeyCode::Char(c));
    }
    assert_eq!(key(&mut state, KeyCode::Enter), vec![]);
    assert!(state.container_table.shown().all(|r| r.pod.namespace == "ingress-nginx"));
    assert_eq!(state.container_table.shown_len(), 2);
    // The picker offers "all" first.
    key(&mut state, KeyCode::Char('n'));
    assert!(
        matches!(&state.overlay, Overlay::Picker { items, .. } if items[0] == "all" && items.contains(&"shop".to_string()))
    );
    key(&mut state, KeyCode::Enter);
    assert!(state.container_table.shown_len() > 2);
    // Context switch is an effect for main to carry out, and clears old data.
    key(&mut state, KeyCode::Char('c'));
    key(&mut state, KeyCode::Down);
    assert_eq!(key(&mut state, KeyCode::Enter), vec![Command::SwitchContext("prod".into())]);
    assert_eq!(state.container_table.rows.len(), 0);
    assert_eq!(state.context, "prod");
    // Unknown commands are explained, not fatal.
    assert!(state.run_command("frobnicate").is_empty());
    assert!(state.notices.last().unwrap().1.contains("unknown command"));
    assert_eq!(state.run_command("q"), vec![Command::Quit]);
}

#[test]
fn namespace_switch_from_a_namespaced_watch_rescopes_the_sources() {
    let mut state = State::new(Config::default(), "c".into(), vec![], Scope::Namespace("shop".into()), START);
    assert_eq!(state.run_command("ns ingress-nginx"), vec![Command::Rescope(Scope::Namespace("ingress-nginx".into()))]);
    assert_eq!(state.run_command("ns all"), vec![Command::Rescope(Scope::All)]);
}

#[test]
fn mouse_click_selects_and_header_click_sorts() {
    let mut state = state_after(60);
    render(&state, 180, 30);
    // The table starts under the title bar and the hotspot strip: its border, its header, then
    // the data rows; click the 3rd.
    let table_y = state.layout.table.get().y;
    assert!(table_y > 1, "the hotspot strip is above the table");
    state.update(Msg::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: 10,
        row: table_y + 4,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(state.container_table.selected(), 2);
    state.update(Msg::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 10,
        row: table_y + 4,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(state.container_table.selected(), 5);
    // Click the POD header.
    let (x, _) = state.layout.header.get()[1];
    state.update(Msg::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x + 1,
        row: table_y + 1,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(state.container_table.sort.0, kpulse::app::rows::ContainerColumn::Pod);
}

#[test]
fn ctrl_c_and_q_quit_even_when_rebound() {
    let mut config = Config::default();
    config.keys.insert("quit".into(), "x".into());
    let mut state = State::new(config, "c".into(), vec![], Scope::All, START);
    assert_eq!(key(&mut state, KeyCode::Char('q')), vec![]);
    assert_eq!(key(&mut state, KeyCode::Char('x')), vec![Command::Quit]);
    let cmds = state.update(Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
    assert_eq!(cmds, vec![Command::Quit]);
}

#[test]
fn a_deleted_pod_takes_its_history_with_it() {
    let sim = Sim::new(Scenario::shop(), START);
    let mut state = State::new(test_config(), "c".into(), vec![], Scope::All, START);
    for u in updates_from_sim(&sim) {
        state.update(Msg::Source(u));
    }
    state.refresh();
    let victim = state.pods.values().find(|p| p.key.name.starts_with("frontend")).unwrap().clone();
    assert!(state.tracks.get(&victim.key, "app").is_some());
    state.update(Msg::Source(kpulse::sources::Update::Pods(kpulse::model::store::Change::Deleted(victim.clone()))));
    state.refresh();
    assert!(state.tracks.get(&victim.key, "app").is_none());
    assert!(!state.container_table.rows.iter().any(|r| r.pod == victim.key));
}

#[test]
fn traffic_screen_joins_the_gateway_log_to_services_pods_and_routes() {
    let mut state = state_after(300);
    key(&mut state, KeyCode::Char('3'));
    assert_eq!(state.view, View::Traffic);
    let services = render(&state, 180, 16).to_string();
    // The payment service is CPU-starved in the shop: it is the slow one in the log too.
    // (Over five minutes: its readiness flaps, and while no pod is ready the gateway answers
    // 503 at once.)
    let p95 = |name: &str| {
        let row =
            state.traffic_table.rows.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("{name}: {services}"));
        row.five_min.p95.unwrap()
    };
    assert!(p95("shop/payment") > 2.0 * p95("shop/catalog"), "{services}");
    // The crash-looping notifier has no ready pod: the gateway answers 503 for it.
    let notification = state.traffic_table.rows.iter().find(|r| r.name == "shop/notification").unwrap();
    assert!(notification.now.error_ratio > 0.9, "{services}");
    assert_snapshot!("traffic_services", services);

    key(&mut state, KeyCode::Char('t'));
    let pods = render(&state, 180, 16).to_string();
    assert!(state.traffic_table.rows.iter().any(|r| r.name.starts_with("shop/payment-")), "{pods}");
    assert!(
        state.traffic_table.rows.iter().all(|r| !r.target.contains("no pod")),
        "every upstream IP is a pod: {pods}"
    );

    key(&mut state, KeyCode::Char('t'));
    let routes = render(&state, 180, 16).to_string();
    assert!(
        state.traffic_table.rows.iter().any(|r| r.name == "/api/orders/:id" && r.target == "shop/order"),
        "{routes}"
    );

    // The same numbers sit in the Containers view, next to CPU and memory.
    key(&mut state, KeyCode::Char('1'));
    let catalog = state.container_table.rows.iter().find(|r| r.pod.name.starts_with("catalog-")).unwrap();
    assert!(catalog.traffic.is_some_and(|t| t.rps > 0.0 && t.p95.is_some()));
    key(&mut state, KeyCode::Char('3'));
    key(&mut state, KeyCode::Enter);
    assert_snapshot!("traffic_detail", render(&state, 180, 24));
}

#[test]
fn hotspots_screen_ranks_the_shops_troubles_and_enter_opens_their_rows() {
    let mut state = state_after(300);
    key(&mut state, KeyCode::Char('4'));
    assert_eq!(state.view, View::Hotspots);
    let screen = render(&state, 180, 40).to_string();
    let labels: Vec<String> = state.hotspots.iter().map(|h| format!("{} {}", h.subject.label(), h.verdict())).collect();
    // The shop's four troubles are all there, each as its container, with the right verdict.
    let has = |prefix: &str, verdict: &str| {
        state.hotspots.iter().any(|h| h.subject.label().starts_with(prefix) && h.verdict().starts_with(verdict))
    };
    assert!(has("shop/payment-", "CPU-starved"), "{labels:#?}");
    assert!(has("shop/notification-", "Crash-looping"), "{labels:#?}");
    assert!(has("shop/search-0/", "Pending: fits no node"), "{labels:#?}");
    assert!(
        state.hotspots.iter().any(|h| h.subject.label().starts_with("shop/cart-")
            && h.evidence().iter().any(|e| e.contains("OOM") || e.contains("limit"))),
        "{labels:#?}"
    );
    // Services whose own pods explain their errors rank below those pods.
    fn rank(state: &State, prefix: &str) -> usize {
        state.hotspots.iter().position(|h| h.subject.label().starts_with(prefix)).unwrap()
    }
    assert!(rank(&state, "shop/payment-") < rank(&state, "svc shop/payment"), "{labels:#?}");
    assert!(rank(&state, "shop/notification-") < rank(&state, "svc shop/notification"), "{labels:#?}");
    // Healthy services are not hotspots.
    assert!(
        !labels.iter().any(|l| l.starts_with("svc shop/catalog") || l.starts_with("shop/frontend-")),
        "{labels:#?}"
    );
    assert_snapshot!("hotspots", screen);

    // Enter on a container hotspot: the Containers view, that row selected, its detail open.
    let payment = rank(&state, "shop/payment-");
    state.hotspot_selected = payment;
    let subject = state.hotspots[payment].subject.clone();
    key(&mut state, KeyCode::Enter);
    assert_eq!(state.view, View::Containers);
    assert!(state.show_detail);
    let row = state.selected_row().unwrap();
    assert_eq!(
        subject,
        kpulse::analysis::hotspots::Subject::Container {
            namespace: row.pod.namespace.clone(),
            pod: row.pod.name.clone(),
            container: row.container.clone()
        }
    );
    // Enter on a service hotspot: the Traffic view on that service.
    key(&mut state, KeyCode::Char('4'));
    state.hotspot_selected = rank(&state, "svc shop/payment");
    key(&mut state, KeyCode::Enter);
    assert_eq!(state.view, View::Traffic);
    assert_eq!(state.selected_traffic().unwrap().name, "shop/payment");
}

#[test]
fn events_screen_shows_the_order_queue_falling_behind_and_its_hotspot_leads_there() {
    let mut config = test_config();
    kpulse::demo::demo_events(&Scenario::shop(), &mut config.events, None);
    let mut state = State::new(config, "kpulse-demo".into(), vec!["kpulse-demo".into()], Scope::All, START);
    let mut player = kpulse::demo::Player::new(Sim::new(Scenario::shop(), START));
    // 200 s in: the wave's peak has passed, but the order events still outrun the consumer.
    for _ in 0..20 {
        player.step(10, &mut state);
    }
    key(&mut state, KeyCode::Char('5'));
    assert_eq!(state.view, View::Events);
    assert_snapshot!("events", render(&state, 180, 8));
    let (key_, track) = state.queues.iter().next().expect("the shop's order-events queue");
    assert_eq!(key_.label(), "rabbitmq/order-events");
    assert!(track.stats.growing_since.is_some(), "{:?}", track.stats);
    assert!(track.stats.publish_rate.unwrap() > track.stats.ack_rate.unwrap());
    assert_eq!(state.consumer_pods(key_).len(), 1, "consumed by the event-consumer pod");

    // The lagging consumer is a hotspot; Enter on it opens the Events view on its row.
    key(&mut state, KeyCode::Char('4'));
    let at = state.hotspots.iter().position(|h| h.verdict() == "Consumer falling behind").expect("ranked");
    key(&mut state, KeyCode::Char('g'));
    for _ in 0..at {
        key(&mut state, KeyCode::Down);
    }
    key(&mut state, KeyCode::Enter);
    assert_eq!(state.view, View::Events);
    assert_eq!(state.queue_selected, 0);

    // The consumer's own detail pane names the queue it is behind on.
    key(&mut state, KeyCode::Char('1'));
    key(&mut state, KeyCode::Char('/'));
    for c in "event-consumer".chars() {
        key(&mut state, KeyCode::Char(c));
    }
    key(&mut state, KeyCode::Enter);
    key(&mut state, KeyCode::Enter);
    assert!(state.show_detail);
    let screen = render(&state, 180, 40).to_string();
    assert!(screen.contains("rabbitmq/order-events  backlog") && screen.contains("growing"), "{screen}");

    // Its row in the Containers view carries the queue's backlog, growing; nobody else's does.
    let backlog = state.queues.values().next().unwrap().stats.backlog;
    let consumers: Vec<_> =
        state.container_table.rows.iter().filter_map(|r| r.consumed.map(|q| (&r.pod.name, q))).collect();
    assert_eq!(consumers.len(), 1, "{consumers:?}");
    assert!(consumers[0].0.starts_with("event-consumer-"));
    assert_eq!((consumers[0].1.backlog, consumers[0].1.direction), (backlog, Direction::Growing));
    let header = screen.lines().find(|l| l.contains("POD")).unwrap();
    assert!(header.contains("BACKLOG"), "{header}");
    let shown = format!("{}↑", kpulse::ui::cells::format_count(backlog));
    assert!(screen.lines().any(|l| l.contains("event-consumer-") && l.contains(&shown)), "{shown} in {screen}");
}

#[test]
fn a_broker_naming_its_clients_ties_them_to_pods_by_ip_without_configuration() {
    use kpulse::model::broker::{QueueKey, Reading};
    use kpulse::sources::Update;
    let mut state = state_after(30);
    let pod = state.pods.values().find(|p| p.key.name.starts_with("payment-") && p.pod_ip.is_some()).unwrap();
    let (name, ip) = (pod.key.to_string(), pod.pod_ip.clone().unwrap());
    // A kafka-lag-exporter style group named like no app: only the member's address ties it.
    let key = QueueKey { broker: "kafka".into(), queue: "orders".into(), group: "billing-v2".into() };
    let reading = Reading { backlog: 2_500.0, clients: [ip, "consumer-billing-1".into()].into(), ..Default::default() };
    let readings = [(key.clone(), reading)].into_iter().collect();
    state.update(Msg::Source(Update::Queues { at: START + 30, broker: "kafka".into(), readings }));
    state.refresh();
    assert_eq!(state.consumer_pods(&key), vec![name.clone()]);
    let row = state.container_table.rows.iter().find(|r| r.pod.to_string() == name).unwrap();
    assert_eq!(row.consumed.map(|q| q.backlog), Some(2_500.0));
    assert_eq!(state.container_table.rows.iter().filter(|r| r.consumed.is_some()).count(), 1);
}

/// A log with no upstream in it (Caddy's JSON names none): the Services view says where to look
/// instead of "no requests read yet" under a title counting the lines it read.
#[test]
fn a_log_without_backends_points_to_the_routes() {
    let mut state = State::new(test_config(), "ctx".into(), vec![], Scope::All, START);
    let line = |i: i64| {
        format!(
            r#"{{"level":"info","ts":{}.5,"logger":"http.log.access","msg":"handled request","request":{{"method":"GET","host":"shop","uri":"/api/cart/{i}"}},"duration":0.02,"size":12,"status":200}}"#,
            START - 5 + i % 5
        )
    };
    let chunk: String = (0..40).map(|i| line(i) + "\n").collect();
    state.update(Msg::Source(Update::AccessLog { stream: "file:caddy.log".into(), chunk }));
    state.update(Msg::Key(KeyEvent::new(KeyCode::Char('3'), KeyModifiers::NONE)));
    state.refresh();
    let screen = render(&state, 140, 16).to_string();
    assert!(
        screen.contains("40 lines") && screen.contains("no backend in this log format: see the routes (t)"),
        "{screen}"
    );
    key(&mut state, KeyCode::Char('t'));
    key(&mut state, KeyCode::Char('t'));
    let screen = render(&state, 140, 16).to_string();
    assert!(screen.contains("shop/api/cart/:id"), "the routes have them: {screen}");
}

/// One number, one window: a service hotspot's 5xx evidence names its window, and is the
/// Traffic view's row of that service over the same window, figure for figure.
#[test]
fn the_hotspot_5xx_evidence_is_the_traffic_row_over_the_window_it_names() {
    let state = state_after(300);
    let (backend, errors, requests) = state
        .hotspots
        .iter()
        .find_map(|h| {
            let kpulse::analysis::hotspots::Subject::Service { backend, .. } = &h.subject else { return None };
            let text = h.evidence().into_iter().find(|e| e.contains("in the last minute)"))?;
            let counts = text.split_once("5xx at the gateway (")?.1.split_once(" in the last minute)")?.0.to_string();
            let (errors, requests) = counts.split_once(" of ")?;
            Some((backend.clone(), errors.parse::<u64>().ok()?, requests.parse::<u64>().ok()?))
        })
        .expect("the shop has a service with 5xx at the gateway");
    let row = state.traffic_table.rows.iter().find(|r| r.key == backend).expect("its Traffic row");
    assert_eq!((row.now.server_errors, row.now.requests), (errors, requests), "{backend}");
}

/// A kpulse that never reached its API server, in a terminal too short for the hotspot strip.
fn blind_state() -> State {
    use kpulse::sources::{SourceId, SourceState};
    let mut state = State::new(test_config(), "ctx".into(), vec!["ctx".into()], Scope::All, START);
    state.server = Some("https://127.0.0.1:1".into());
    let refused = "connection: tcp connect error: Connection refused (os error 111)";
    state.update(Msg::Source(Update::Status {
        source: SourceId::Pods,
        state: SourceState::Reconnecting(refused.into()),
    }));
    state.refresh();
    state
}

#[test]
fn blindness_keeps_its_line_in_a_tiny_terminal() {
    let mut state = blind_state();
    for (w, h) in [(100, 8), (60, 5), (20, 5)] {
        let screen = render(&state, w, h).to_string();
        assert!(screen.contains("cannot see"), "{w}×{h}:\n{screen}");
        assert!(!screen.contains("nothing looks like"), "{w}×{h}:\n{screen}");
    }
    let screen = render(&state, 100, 8).to_string();
    assert!(screen.contains("cannot see: cannot reach https://127.0.0.1:1 (connection refused), retrying"), "{screen}");
    // The Hotspots view, too, keeps the caveat above an evidence box it has no room for.
    key(&mut state, KeyCode::Char('4'));
    assert_eq!(state.view, View::Hotspots);
    for (w, h) in [(100, 8), (60, 5)] {
        let screen = render(&state, w, h).to_string();
        assert!(screen.contains("cannot see"), "{w}×{h}:\n{screen}");
    }
    // A terminal tall enough for the strip draws it as before, the blind line under its title.
    key(&mut state, KeyCode::Char('1'));
    let screen = render(&state, 100, 24).to_string();
    assert!(screen.contains(" Hotspots ") && screen.contains("   cannot see: cannot reach"), "{screen}");
}
