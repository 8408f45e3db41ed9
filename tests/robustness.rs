//! When kpulse cannot see: a dead, hung or refusing API server, a hostile exposition endpoint, a
//! binary "log" file, a broken kubeconfig, signals and odd terminal sizes. Each case is met the
//! way a user meets it (the binary, a real terminal) and must end in a plain reason, a bounded
//! process and a restored terminal; never a panic and never a false "all clear".

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::{Harness, KillOnDrop, Tmux, dashboard_command, dashboard_through_a_freeze, kpulse, rows_shown, run};
use kpulse::demo::scenario::Scenario;
use kpulse::demo::server::{ServerOptions, kubeconfig_yaml};

const TOKEN: &str = "SECRET-TOKEN-do-not-print";

/// A kubeconfig for `server` holding a bearer token that must never be printed.
fn kubeconfig_for(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    \
             insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: {TOKEN}\n\
             contexts:\n- name: prod\n  context:\n    cluster: c\n    user: u\ncurrent-context: prod\n"
        ),
    )
    .unwrap();
    path
}

/// A port nothing listens on: bound, then released.
fn dead_server() -> String {
    format!("https://127.0.0.1:{}", common::free_port())
}

fn snapshot(kubeconfig: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = kpulse();
    cmd.args(["snapshot", "--kubeconfig", kubeconfig.to_str().unwrap()]).args(extra);
    let (code, out, err) = run(&mut cmd);
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN), "the token never reaches the output:\n{out}\n{err}");
    (code, out, err)
}

#[test]
fn a_dead_api_server_makes_an_incomplete_snapshot_that_exits_1_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let server = dead_server();
    let kc = kubeconfig_for(dir.path(), &server);
    let (code, out, err) = snapshot(&kc, &["--window", "3s"]);
    assert_eq!(code, 1, "blind is not a pass:\n{out}\n{err}");
    let reason = format!("cannot reach {server} (connection refused), retrying");
    assert!(out.contains(&format!("cannot see: {reason}")), "the report says what it could not see:\n{out}");
    assert!(!out.contains("nothing looks like a bottleneck"), "no false all-clear:\n{out}");
    assert!(err.contains("nothing was judged"), "{err}");

    let (code, out, _) = snapshot(&kc, &["--window", "3s", "--format", "json", "--fail-on", "50"]);
    assert_eq!(code, 1, "--fail-on cannot pass a cluster it did not see");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["complete"], false);
    assert_eq!(report["incomplete"][0]["source"], "pods");
    assert_eq!(report["incomplete"][0]["reach"], "blind");
    assert_eq!(report["incomplete"][0]["reason"], reason.as_str());
}

/// A plain-HTTP API server that answers every request with a 500; the paths it was asked, in order.
fn failing_server() -> (std::net::SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = asked.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let record = record.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let mut head = Vec::new();
                // One request per connection: read its head, answer, close.
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                record.lock().unwrap().push(path);
                let body =
                    r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcd is down","code":500}"#;
                let _ = write!(
                    conn,
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (addr, asked)
}

/// Every watch relists after an error: kube-runtime's watcher restarts with an `Ok(Init)` that
/// reset its backoff, so a failing server was asked for pods every 0.8 s by every watcher. The
/// pause grows now (0.8 s doubling, jittered).
#[test]
fn a_failing_api_server_is_asked_less_and_less_often() {
    let (addr, asked) = failing_server();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig_for(dir.path(), &format!("http://{addr}"));
    let (code, out, err) = snapshot(&kc, &["--window", "12s"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let pod_lists = asked.lock().unwrap().iter().filter(|p| p.starts_with("/api/v1/namespaces/default/pods")).count();
    // Growing pauses fit at most 5 lists in 12 s (0, ≥0.8, ≥2.4, ≥5.6, ≥12); a fixed 0.8 s, 15.
    assert!((2..=5).contains(&pod_lists), "pods were listed {pod_lists} times in 12 s: {:?}", asked.lock().unwrap());
    // The window is over and nothing will retry: the report promises no countdown (the dashboard does).
    assert!(out.contains(", retrying") && !out.contains("retrying in "), "{out}");
}

/// A server that accepts connections and never says a word (a stopped process, a black-holed
/// proxy); its address.
fn hung_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

#[test]
fn a_hung_api_server_is_named_as_not_answering() {
    let addr = hung_server();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig_for(dir.path(), &format!("https://{addr}"));
    let (code, out, err) = snapshot(&kc, &["--window", "14s"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("no answer from the API server after 10s"), "a silent server is named:\n{out}");
}

#[test]
fn the_dashboard_answers_keys_while_its_server_hangs() {
    let addr = hung_server();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig_for(dir.path(), &format!("https://{addr}"));
    let cmd = dashboard_command(dir.path(), &kc, "");
    let Some(term) = Tmux::start("kpulse-hung", (160, 30), &cmd) else { return };
    term.wait_for("the dashboard", |s| s.contains("Hotspots"));
    term.keys(&["?"]);
    term.wait_for("help while the server hangs", |s| s.contains("Keys — ? or Esc to close"));
    term.keys(&["Escape"]);
    term.wait_for("help closed", |s| !s.contains("Keys — ? or Esc to close"));
    // The strip's own line: another watch may name the silence in the status bar a moment first.
    let blind = format!("cannot see: cannot reach https://{addr}");
    let screen = term.wait_for("the hung server named", |s| s.contains(&blind));
    assert!(screen.contains(&format!("{blind} (no answer from the API server")), "{screen}");
}

/// The simulated cluster on loopback, and a kubeconfig for it.
fn simulator(rt: &tokio::runtime::Runtime, dir: &Path) -> (Harness, PathBuf) {
    let harness = rt.block_on(Harness::start(Scenario::shop(), ServerOptions::default()));
    let kc = dir.join("sim-kubeconfig");
    std::fs::write(&kc, kubeconfig_yaml(harness.addr)).unwrap();
    (harness, kc)
}

#[test]
fn an_exposition_larger_than_32_mib_is_refused_not_read() {
    // 40 MiB of valid exposition, streamed without a Content-Length.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let line = "container_cpu_usage_seconds_total{namespace=\"shop\",pod=\"p\",container=\"c\"} 1\n".repeat(1000);
        for mut conn in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n");
            let mut sent = 0;
            while sent < 40 << 20 && conn.write_all(line.as_bytes()).is_ok() {
                sent += line.len();
            }
        }
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_sim, kc) = simulator(&rt, dir.path());
    let url = format!("http://{addr}/metrics");
    let (code, out, err) = snapshot(&kc, &["-A", "--window", "6s", "--scrape", &url]);
    assert_eq!(code, 0, "pods were seen; usage was not:\n{out}\n{err}");
    assert!(
        out.contains(&format!("not seen: no CPU or memory usage: cadvisor: {url}: answer larger than 32 MiB")),
        "the refusal is the reason shown:\n{out}"
    );
    assert!(err.contains("incomplete: no CPU or memory usage"), "{err}");
}

#[test]
fn a_binary_file_as_gateway_log_is_dropped_with_one_notice() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_sim, kc) = simulator(&rt, dir.path());
    // /dev/zero: one endless line with no newline.
    let (code, out, err) = snapshot(&kc, &["-A", "--window", "4s", "--gateway", "file:/dev/zero"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let notices = err.matches("file:/dev/zero: a line longer than 64 KiB was dropped").count();
    assert_eq!(notices, 1, "said once, not once per chunk:\n{err}");
    assert!(out.contains("shop"), "the cluster is still reported:\n{out}");
}

#[test]
fn a_malformed_kubeconfig_is_placed_by_line_without_echoing_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: \"{TOKEN}\n    x: [\ncontexts: {{}}\n"
        ),
    )
    .unwrap();
    let (code, _, err) = snapshot(&kc, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("not a valid kubeconfig (YAML error at line"), "{err}");
}

#[test]
fn a_failing_credential_plugin_is_reported_without_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n\
             users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      \
             command: /bin/sh\n      args: [\"-c\", \"echo {TOKEN} >&2; echo {TOKEN}; exit 1\"]\n      \
             interactiveMode: Never\ncontexts:\n- name: p\n  context:\n    cluster: c\n    user: u\n\
             current-context: p\n",
            dead_server()
        ),
    )
    .unwrap();
    let (code, _, err) = snapshot(&kc, &["--window", "2s"]);
    assert_eq!(code, 2);
    assert!(err.contains("the credential plugin failed (exit code 1)"), "{err}");
}

/// Waits for the file a shell writes once kpulse has exited.
fn wait_for_exit(term: &Tmux, done: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done.exists() {
        assert!(Instant::now() < deadline, "kpulse did not exit:\n{}", term.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    std::fs::read_to_string(done).unwrap()
}

/// Opens the dashboard on a dead server, checks what it says, sends `signal` and checks the
/// terminal the shell gets back.
fn blind_dashboard_then(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = dead_server();
    let kc = kubeconfig_for(dir.path(), &server);
    let done = dir.path().join("done");
    // After kpulse: its exit code, then the terminal's modes as the shell finds them.
    let cmd = format!(
        "XDG_CONFIG_HOME={dir} {bin} --kubeconfig {kc}; echo \"exit=$?\" > {done}.tmp; stty -a >> {done}.tmp; \
         mv {done}.tmp {done}; sleep 30",
        dir = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_kpulse"),
        kc = kc.display(),
        done = done.display()
    );
    let Some(term) = Tmux::start(&format!("kpulse-blind-{signal}"), (160, 30), &cmd) else { return };
    let screen = term.wait_for("the blind line", |s| s.contains("cannot see: cannot reach"));
    assert!(screen.contains(&format!("cannot see: cannot reach {server} (connection refused)")), "{screen}");
    assert!(!screen.contains("nothing looks like a bottleneck"), "{screen}");
    assert!(!screen.contains(TOKEN));
    // The backoff grows (0.8 s doubling): soon the pause is long enough to be counted down.
    term.wait_for("the countdown to the next try", |s| s.contains("(connection refused), retrying in "));
    let pid = term.pane_pid_of("kpulse").expect("kpulse runs in the pane");
    let sent = std::process::Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status();
    assert!(sent.unwrap().success());
    let after = wait_for_exit(&term, &done);
    assert!(after.starts_with("exit=1"), "{after}");
    let modes: Vec<&str> = after.split_whitespace().collect();
    for mode in ["icanon", "echo", "icrnl", "opost"] {
        assert!(modes.contains(&mode), "after SIG{signal} the terminal is cooked again ({mode}):\n{after}");
    }
    let screen = term.screen();
    assert!(screen.contains(&format!("kpulse: stopped by SIG{signal}")), "{screen}");
    assert!(!screen.contains("cannot see:"), "the alternate screen is gone:\n{screen}");
}

#[test]
fn the_dashboard_says_what_it_cannot_see_and_sigterm_restores_the_terminal() {
    blind_dashboard_then("TERM");
}

#[test]
fn a_hangup_restores_the_terminal_too() {
    blind_dashboard_then("HUP");
}

#[test]
fn tiny_and_huge_terminals_draw_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    let cmd = format!(
        "XDG_CONFIG_HOME={} {} demo; echo $? > {}; sleep 30",
        dir.path().display(),
        env!("CARGO_BIN_EXE_kpulse"),
        done.display()
    );
    let Some(term) = Tmux::start("kpulse-sizes", (20, 5), &cmd) else { return };
    std::thread::sleep(Duration::from_secs(2));
    for (w, h) in [(1, 1), (400, 120), (20, 5), (100, 30)] {
        term.resize(w, h);
        std::thread::sleep(Duration::from_millis(700));
        assert!(!done.exists(), "kpulse exited at {w}x{h}:\n{}", term.screen());
    }
    term.wait_for("the dashboard at 100x30", |s| s.contains("kpulse") && s.contains("Containers"));
    term.keys(&["q"]);
    assert_eq!(wait_for_exit(&term, &done).trim(), "0");
}

/// A kubeconfig whose current context `here` (a dead server, a token that must never be
/// printed) sits beside a context `name` at `server` whose user's credential comes from an exec
/// plugin running the shell `script`.
fn kubeconfig_with_plugin_context(dir: &Path, name: &str, server: &str, script: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {here}\n\
             - name: {name}\n  cluster:\n    server: {server}\n\
             users:\n- name: u\n  user:\n    token: {TOKEN}\n- name: {name}\n  user:\n    exec:\n      \
             apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [\"-c\", {script:?}]\n      \
             interactiveMode: Never\ncontexts:\n- name: here\n  context:\n    cluster: c\n    user: u\n\
             - name: {name}\n  context:\n    cluster: {name}\n    user: {name}\ncurrent-context: here\n",
            here = dead_server()
        ),
    )
    .unwrap();
    path
}

/// A context switch connects off the UI loop: while the new context's credential plugin is still
/// running, the dashboard answers keys (it used to wait for the plugin, up to 15 s, frozen). kube 5
/// runs the plugin three times to build one client, so the switch takes 15 s here.
#[test]
fn keys_work_while_a_context_switch_waits_for_its_credential_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let (started, finished) = (dir.path().join("plugin-started"), dir.path().join("plugin-finished"));
    let credential =
        r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t"}}"#;
    let plugin = format!(
        "touch {started}; sleep 5; touch {finished}; echo '{credential}'",
        started = started.display(),
        finished = finished.display()
    );
    // The new context's server: it is asked only once the switch has its credential.
    let (far, asked) = failing_server();
    let kc = kubeconfig_with_plugin_context(dir.path(), "slow", &format!("http://{far}"), &plugin);
    let cmd = dashboard_command(dir.path(), &kc, "");
    let Some(term) = Tmux::start("kpulse-ctx-switch", (160, 30), &cmd) else { return };
    term.wait_for("the dashboard", |s| s.contains("Hotspots"));
    term.command("ctx slow");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the plugin never ran:\n{}", term.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    term.keys(&["?"]);
    term.wait_for("help while the plugin runs", |s| s.contains("Keys — ? or Esc to close"));
    assert!(!finished.exists(), "the help screen came only after the plugin finished: keys were frozen");
    term.keys(&["Escape"]);
    // The switch completes when the plugin answers: the new context's server is asked.
    let deadline = Instant::now() + Duration::from_secs(45);
    while asked.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the switch never connected:\n{}", term.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(finished.exists(), "the new server was asked before the credential came");
    term.wait_for("the new context on the title line", |s| s.contains("ctx:slow"));
}

fn signal(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -{name} {pid}");
}

/// The simulated cluster frozen (SIGSTOP), as the real-apiserver tier freezes kube-apiserver:
/// keys keep working, the strip says the pods are as last seen with the rows kept, and the line
/// clears after SIGCONT.
#[test]
fn the_dashboard_answers_keys_through_a_frozen_simulated_cluster_and_clears_after_the_thaw() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let server = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_kpulse"))
            .args(["demo", "--serve", "--kubeconfig-out", kc.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kc.exists() {
        assert!(Instant::now() < deadline, "demo --serve wrote no kubeconfig");
        std::thread::sleep(Duration::from_millis(100));
    }
    let cmd = dashboard_command(dir.path(), &kc, "-A");
    let Some(term) = Tmux::start("kpulse-frozen-sim", (160, 40), &cmd) else { return };
    let screen = term.wait_for("containers listed", |s| rows_shown(s).is_some_and(|(shown, _)| shown > 0));
    let rows = rows_shown(&screen).unwrap();

    let pid = server.0.id();
    dashboard_through_a_freeze(&term, rows, || signal(pid, "STOP"), || signal(pid, "CONT"));
}

/// A context switch whose credential plugin fails: the blind line says so (not "waiting for the
/// first pod list" for ever), never with the plugin's output, until the next switch.
#[test]
fn a_switch_whose_credential_plugin_fails_says_why_on_screen() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = format!("echo {TOKEN} >&2; echo {TOKEN}; exit 1");
    let kc = kubeconfig_with_plugin_context(dir.path(), "broken", &dead_server(), &plugin);
    let cmd = dashboard_command(dir.path(), &kc, "");
    let Some(term) = Tmux::start("kpulse-ctx-broken", (180, 30), &cmd) else { return };
    term.wait_for("the dashboard", |s| s.contains("Hotspots"));
    term.command("ctx broken");
    let screen = term.wait_for("the failed switch on the blind line", |s| {
        s.contains("cannot see: cannot use context \"broken\": the credential plugin failed (exit code 1)")
    });
    assert!(screen.contains("nothing is read until :ctx or :ns tries again"), "{screen}");
    assert!(screen.contains("Containers — not connected"), "{screen}");
    assert!(!screen.contains(TOKEN), "{screen}");
    // Back to a context that connects: the line goes.
    term.command("ctx here");
    term.wait_for("the failure forgotten", |s| !s.contains("credential plugin failed") && s.contains("ctx:here"));
}
