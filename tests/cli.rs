//! The command line as a user meets it: help, bad flags, missing kubeconfig, the plugin name,
//! the headless simulator, and a scripted session in a real terminal (tmux).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Tmux, kpulse, run};

#[test]
fn help_lists_kubectl_style_flags_and_the_demo() {
    let (code, out, _) = run(kpulse().arg("--help"));
    assert_eq!(code, 0);
    for flag in ["--kubeconfig", "--context", "-n, --namespace", "-A, --all-namespaces", "demo"] {
        assert!(out.contains(flag), "help mentions {flag}:\n{out}");
    }
    let (code, out, _) = run(kpulse().args(["demo", "--help"]));
    assert_eq!(code, 0);
    assert!(out.contains("--serve") && out.contains("--scenario") && out.contains("--pods"));
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    let (code, _, err) = run(kpulse().arg("--bogus"));
    assert_eq!(code, 2);
    assert!(err.contains("--bogus"), "{err}");
    let (code, _, err) = run(kpulse().args(["-n", "a", "-A"]));
    assert_eq!(code, 2);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn a_missing_kubeconfig_is_a_clear_error_with_exit_2() {
    let (code, _, err) = run(kpulse().args(["--kubeconfig", "/nonexistent/kubeconfig"]));
    assert_eq!(code, 2);
    assert_eq!(err.trim(), "kpulse: kubeconfig /nonexistent/kubeconfig does not exist");
}

#[test]
fn unknown_context_names_the_known_ones_and_never_prints_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
         users:\n- name: u\n  user:\n    token: SUPER-SECRET-TOKEN\ncontexts:\n- name: prod\n  context:\n    cluster: c\n    user: u\n\
         current-context: prod\n",
    )
    .unwrap();
    let (code, _, err) = run(kpulse().args(["--kubeconfig", path.to_str().unwrap(), "--context", "staging"]));
    assert_eq!(code, 2);
    assert!(err.contains("\"staging\"") && err.contains("prod"), "{err}");
    assert!(!err.contains("SUPER-SECRET-TOKEN"));
}

#[test]
fn kubeconfig_env_with_several_files_is_merged_like_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, "apiVersion: v1\nkind: Config\ncurrent-context: one\ncontexts: []\nclusters: []\nusers: []\n")
        .unwrap();
    std::fs::write(
        &b,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\nusers:\n- name: u\n  user: {}\n\
         contexts:\n- name: two\n  context:\n    cluster: c\n    user: u\n",
    )
    .unwrap();
    let joined = std::env::join_paths([&a, &dir.path().join("missing"), &b]).unwrap();
    // current-context comes from the first file and names a context that exists nowhere.
    let (code, _, err) = run(kpulse().env("KUBECONFIG", &joined).env("HOME", dir.path()));
    assert_eq!(code, 2);
    assert!(err.contains("\"one\"") && err.contains("two"), "merged contexts are listed: {err}");
}

#[test]
fn kubectl_plugin_binary_names_itself_kubectl_pulse() {
    let (code, out, _) = run(Command::new(env!("CARGO_BIN_EXE_kubectl-pulse")).arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("kubectl pulse"), "{out}");
}

#[test]
fn bad_scenario_file_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, "name = \"x\"\nnodes = []\nservices = []\n").unwrap();
    let (code, _, err) = run(kpulse().args(["demo", "--serve", "--scenario", path.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(err.contains("load"), "names the missing field: {err}");
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} was not written", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn demo_serve_runs_headless_and_answers_kubernetes_requests() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let mut child = kpulse()
        .args(["demo", "--serve", "--kubeconfig-out", kc.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_file(&kc);
    let text = std::fs::read_to_string(&kc).unwrap();
    let server = text.lines().find_map(|l| l.trim().strip_prefix("server: ")).unwrap().to_string();
    assert!(server.starts_with("http://127.0.0.1:"), "loopback only: {server}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pods = rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(&kc).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
        let client = kube::Client::try_from(cfg).unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client);
        api.list(&Default::default()).await.unwrap()
    });
    assert!(pods.items.len() >= 18, "the shop is served: {}", pods.items.len());
    child.kill().unwrap();
    let _ = child.wait();
}

/// Runs `kpulse demo` (with `env` prepended) in a real terminal; the shell then writes kpulse's
/// exit code to the returned file and waits, so the screen after exit can be read.
fn start_demo_in_tmux(name: &str, env: &str, dir: &std::path::Path) -> Option<(Tmux, std::path::PathBuf)> {
    start_demo_in_tmux_with(name, env, "", dir)
}

/// `kpulse demo ARGS` in a real terminal, with its own config directory; its exit code lands in
/// the returned file.
fn start_demo_in_tmux_with(
    name: &str,
    env: &str,
    args: &str,
    dir: &std::path::Path,
) -> Option<(Tmux, std::path::PathBuf)> {
    let done = dir.join("exit-code");
    let cmd = format!(
        "{env} XDG_CONFIG_HOME={} {} demo {args}; echo $? > {}; sleep 30",
        dir.display(),
        env!("CARGO_BIN_EXE_kpulse"),
        done.display()
    );
    Some((Tmux::start(name, (180, 40), &cmd)?, done))
}

/// The subject kind of the first ranked line of the Hotspots view (`│ 90 container …`).
fn first_hotspot_kind(screen: &str) -> Option<&str> {
    screen.lines().find_map(|l| {
        let mut words = l.trim_start_matches(['│', ' ']).split_whitespace();
        let score = words.next()?;
        score.parse::<u32>().ok()?;
        words.next().filter(|k| matches!(*k, "container" | "service" | "node" | "gateway" | "queue"))
    })
}

#[test]
fn the_version_names_the_commit() {
    let (code, out, _) = run(kpulse().arg("--version"));
    assert_eq!(code, 0);
    assert!(out.starts_with(concat!("kpulse ", env!("CARGO_PKG_VERSION"), " (commit ")), "{out}");
}

#[test]
fn completions_complete_in_a_real_bash_and_the_man_page_holds_every_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (code, script, err) = run(kpulse().args(["completions", "bash"]));
    assert_eq!(code, 0, "{err}");
    std::fs::write(dir.path().join("kpulse.bash"), &script).unwrap();
    // What bash does on `kpulse --prometheus-h<TAB>` and `kpulse snapshot --fo<TAB>`.
    let complete = |words: &str, index: usize| {
        let line = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={index}; COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; _kpulse kpulse \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            dir.path().join("kpulse.bash").display()
        );
        let (code, out, err) = run(Command::new("bash").args(["--norc", "-c", &line]));
        assert_eq!(code, 0, "{err}");
        out
    };
    let flags = complete("kpulse --prometheus-h", 1);
    assert_eq!(flags.trim(), "--prometheus-header", "{flags}");
    let snapshot = complete("kpulse snapshot --fo", 2);
    assert_eq!(snapshot.trim(), "--format", "{snapshot}");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let (code, out, err) = run(kpulse().args(["completions", shell]));
        assert!(code == 0 && out.contains("prometheus-header"), "{shell}: {err}");
    }
    let (code, out, _) = run(kpulse().args(["completions", "kubectl"]));
    assert!(code == 0 && out.starts_with("#!/bin/sh") && out.contains("exec kubectl-pulse __complete \"$@\""), "{out}");

    let (code, man, err) = run(kpulse().arg("man"));
    assert_eq!(code, 0, "{err}");
    assert!(man.starts_with(".ie \\n(.g .ds Aq \\(aq") || man.contains(".TH kpulse 1"), "{man}");
    for flag in ["kubeconfig", "context", "all\\-namespaces", "prometheus\\-header", "gateway", "log\\-tz"] {
        assert!(man.contains(&format!("\\-\\-{flag}")), "--{flag} in the man page");
    }
    // Rendered by the real man, as a user reads it.
    if let Some(man_bin) = common::real_binary("man", "apt-get install -y man-db") {
        std::fs::write(dir.path().join("kpulse.1"), &man).unwrap();
        let out = Command::new(man_bin)
            .arg("-l")
            .arg(dir.path().join("kpulse.1"))
            .env("MANPAGER", "cat")
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(page.contains("--prometheus-header") && page.contains("Which container is the bottleneck"), "{page}");
    }
}

#[test]
fn the_log_file_records_the_sources_and_never_a_secret_or_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let token = "eyJhbGciOiJSUzI1NiJ9.kpulse-test-secret.sig";
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: dead, cluster: {{server: 'https://127.0.0.1:1'}}}}]\n\
             users: [{{name: u, user: {{token: '{token}'}}}}]\ncontexts: [{{name: dead, context: {{cluster: dead, user: u}}}}]\n\
             current-context: dead\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("kpulse.log");
    let (code, _, _) = run(kpulse()
        .args(["snapshot", "--window", "3s", "--prometheus", "http://127.0.0.1:1", "--prometheus-header"])
        .arg("X-Api-Key: header-secret-value")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--log-file")
        .arg(&log));
    assert_eq!(code, 1, "a cluster never reached");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("started: snapshot --window 3s"), "{text}");
    assert!(text.contains("connecting to context dead at https://127.0.0.1:1"), "{text}");
    assert!(text.contains("WARN source pods: reconnecting (") && !text.contains("ERROR"), "{text}");
    assert!(!text.contains("kpulse-test-secret") && !text.contains("header-secret-value"), "{text}");

    // The dashboard: the log goes to the file, the terminal shows only the dashboard.
    let tui_log = dir.path().join("tui.log");
    let args = format!("--log-file {}", tui_log.display());
    let Some((term, _)) = start_demo_in_tmux_with("kpulse-log-file", "", &args, dir.path()) else { return };
    let screen = term.wait_for("live rows", |s| s.contains("payment") && s.contains("cadvisor ●"));
    assert!(!screen.contains(" INFO ") && !screen.contains("source pods"), "{screen}");
    term.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&tui_log).unwrap_or_default().contains("source cadvisor: connected") {
        assert!(Instant::now() < deadline, "{}", std::fs::read_to_string(&tui_log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_screenshots_render_from_the_current_binary() {
    let Some(_) = common::real_binary("python3", "apt-get install -y python3") else { return };
    let Some(_) = common::real_binary("tmux", "apt-get install -y tmux") else { return };
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, err) = run(Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/screenshots.sh"))
        .env("KPULSE_BIN", env!("CARGO_BIN_EXE_kpulse"))
        .env("OUT", out.path())
        .env("SETTLE", "3"));
    assert_eq!(code, 0, "scripts/screenshots.sh: {stdout}{err}");
    // Each view as an image of the real screen: its words, its colours, on one grid.
    for (name, words) in [
        ("dashboard", ["Hotspots", "CPU-starved"]),
        ("hotspots", ["ranked by score", "Crash-looping"]),
        ("traffic", ["Traffic", "P95"]),
        ("nodes", ["Nodes", "CPU CAP/ALLOC"]),
        ("detail", ["Container", "CPU throttled"]),
    ] {
        let svg =
            std::fs::read_to_string(out.path().join(format!("{name}.svg"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        let text: String = svg.split('>').filter_map(|p| p.split('<').next()).collect();
        for word in words {
            assert!(text.contains(word), "{name} shows {word:?}");
        }
        let colours: std::collections::BTreeSet<&str> =
            svg.split("fill=\"").skip(1).filter_map(|f| f.split('"').next()).collect();
        assert!(colours.len() >= 4, "{name} in colour: {colours:?}");
    }
    // The recording: every step a frame, shown in turn by a CSS animation.
    let recording = std::fs::read_to_string(out.path().join("demo-session.svg")).unwrap();
    assert!(recording.contains("@keyframes show"), "animated");
    assert_eq!(recording.matches("<g class=\"frame\"").count(), 8, "a frame a step");
    assert!(recording.contains("ranked by score") && recording.contains("CPU CAP/ALLOC"), "the views in it");
}

#[test]
fn no_color_draws_the_dashboard_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let coloured = |env: &str, name: &str| {
        let (term, _) = start_demo_in_tmux(name, env, dir.path())?;
        term.wait_for("live rows", |s| s.contains("payment") && s.contains("Hotspots"));
        let screen = term.screen_with_escapes();
        term.keys(&["q"]);
        // SGR colour parameters: 30–37, 90–97 (foreground), 40–47 (background), 38;… and 48;….
        let colour = sets_a_colour(&screen);
        Some(colour)
    };
    let Some(default) = coloured("", "kpulse-colour") else { return };
    assert!(default, "the default theme draws in colour");
    let Some(no_color) = coloured("NO_COLOR=1", "kpulse-no-color") else { return };
    assert!(!no_color, "NO_COLOR=1 draws without colour");
}

/// Whether an SGR sequence in `screen` sets a colour (not only bold, underline or reverse).
fn sets_a_colour(screen: &str) -> bool {
    screen.split("\x1b[").skip(1).any(|seq| {
        let Some(end) = seq.find('m') else { return false };
        seq[..end].split(';').any(|p| matches!(p.parse::<u32>(), Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)))
    })
}

#[test]
fn scripted_demo_session_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let Some((term, done)) = start_demo_in_tmux("kpulse-test", "", dir.path()) else { return };
    // While a notice is up (the gateway's "gateway logs from …" stays 30 s) healthy sources
    // shrink to their dot: connected either way.
    let screen = term.wait_for("live rows", |s| s.contains("payment") && s.contains("cadvisor ●"));
    for service in [
        "ingress-nginx-controller",
        "frontend",
        "catalog",
        "cart",
        "order",
        "payment",
        "inventory",
        "notification",
        "event-consumer",
        "search-0",
    ] {
        assert!(screen.contains(service), "{service} is shown:\n{screen}");
    }
    assert!(screen.contains("CrashLoop") || screen.contains("Starting"));
    assert!(screen.contains("Unschedulable"));
    // The first screen opens with the top hotspots above the table.
    term.wait_for("hotspot strip", |s| s.contains(" Hotspots ") && s.contains("found · 4 to see all"));
    term.keys(&["2"]);
    term.wait_for("nodes view", |s| s.contains("node-a") && s.contains("CPU CAP/ALLOC"));
    term.keys(&["1", "/", "payment", "Enter", "Enter"]);
    term.wait_for("detail pane", |s| s.contains("request 100m  limit 150m") && s.contains("Warning events"));
    // The Hotspots view, then Enter on the first hotspot: its container's detail.
    // (Two quick Escapes would read as one Alt-Escape: one at a time.)
    term.keys(&["Escape"]);
    term.wait_for("detail closed", |s| !s.contains("Warning events"));
    term.keys(&["Escape"]);
    term.wait_for("filter cleared", |s| !s.contains("filter: payment"));
    term.keys(&["4"]);
    // In its first seconds the demo's ranking can open with a service (5xx before any usage
    // rates): wait until a container leads, which Enter opens below.
    term.wait_for("hotspots view led by a container", |s| {
        s.contains("Evidence")
            && s.contains("CPU-starved")
            && s.contains("Pending: fits no node")
            && first_hotspot_kind(s) == Some("container")
    });
    term.keys(&["g", "Enter"]);
    term.wait_for("the first hotspot's container", |s| s.contains("status history") && s.contains("HEALTH"));
    term.keys(&["?"]);
    term.wait_for("help", |s| s.contains("Keys — ? or Esc to close") && s.contains("Hotspots view"));
    term.keys(&["Escape", "q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done.exists() {
        assert!(Instant::now() < deadline, "kpulse did not exit on q");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(&done).unwrap().trim(), "0");
    // The terminal is restored: the alternate screen is gone.
    let after = term.screen();
    assert!(!after.contains("CPU TREND"), "terminal restored:\n{after}");
}

#[test]
fn a_panic_restores_the_terminal_and_prints_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let Some((term, done)) = start_demo_in_tmux("kpulse-panic", "KPULSE_TEST_PANIC_AFTER_DRAW=1", dir.path()) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done.exists() {
        assert!(Instant::now() < deadline, "kpulse did not exit after the panic:\n{}", term.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(std::fs::read_to_string(&done).unwrap().trim(), "0");
    // The message comes first, then color-eyre's backtrace: read the scrollback too.
    let screen = term.screen_with_history(500);
    assert!(screen.contains("KPULSE_TEST_PANIC_AFTER_DRAW is set"), "the panic message is readable:\n{screen}");
    assert!(!screen.contains("CPU TREND"), "the alternate screen is gone:\n{screen}");
}
