//! A real single-node cluster for the tests: `scripts/real-node.sh up` in a network namespace and
//! cgroup root of the test's own (so it never meets a developer's node), and `down` on drop. The
//! kernel, kubelet, containerd and runc make the troubles; the harness only starts and reads.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::apiserver::{Audited, k8s_bin_dir, read_audit};

/// What the real node needs on this machine, and the step that installs it.
const NEEDS: &[(&str, &str)] = &[
    ("containerd", "apt-get install -y containerd"),
    ("runc", "apt-get install -y runc"),
    ("socat", "apt-get install -y socat"),
    ("nsenter", "apt-get install -y util-linux"),
    ("ip", "apt-get install -y iproute2"),
];

pub struct RealNode {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
    pub bin: PathBuf,
}

fn missing(msg: &str) -> Option<RealNode> {
    let msg = format!("real node unavailable: {msg}");
    assert!(std::env::var_os("KPULSE_REQUIRE_REAL").is_none(), "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

/// On PATH, or in the sbin directories a non-root PATH may lack.
fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]).any(|d| d.join(name).is_file())
}

impl RealNode {
    /// The node up with the shop applied, or `None` (a failure under `KPULSE_REQUIRE_REAL`) when
    /// a component is missing, naming its install step.
    pub fn start() -> Option<RealNode> {
        let bin = k8s_bin_dir()?;
        if !["kubelet", "kube-scheduler", "kube-controller-manager"].iter().all(|b| bin.join(b).is_file()) {
            return missing(&format!(
                "kubelet/kube-scheduler/kube-controller-manager are not in {}: run scripts/k8s-assets.sh",
                bin.display()
            ));
        }
        for (cmd, install) in NEEDS {
            if !on_path(cmd) {
                return missing(&format!("`{cmd}` is missing: {install}"));
            }
        }
        if !Path::new("/usr/lib/cni/bridge").is_file() {
            return missing("the CNI bridge plugin is missing: apt-get install -y containernetworking-plugins");
        }
        // Network namespaces, cgroups and mounts need root.
        let uid = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if uid.ok().as_deref() != Some("0") {
            return missing("kubelet, containerd and runc need root: run the tests as root");
        }
        let dir = tempfile::Builder::new().prefix("kpulse-node-").tempdir().unwrap();
        let netns = format!("kpulse-test-{}", std::process::id());
        let env = vec![
            ("KPULSE_NODE_DIR", dir.path().join("node").display().to_string()),
            ("KPULSE_NODE_NETNS", netns),
            ("KPULSE_NODE_PORT", crate::common::free_port().to_string()),
        ];
        let node = RealNode { dir, env, bin };
        let out = node.script(&["up"]).output().expect("scripts/real-node.sh runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "scripts/real-node.sh up failed:\n{stderr}\n{}", node.logs_tail());
        eprintln!("{stderr}");
        Some(node)
    }

    fn script(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/real-node.sh")).args(args);
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    }

    pub fn node_dir(&self) -> PathBuf {
        self.dir.path().join("node")
    }

    /// kpulse's kubeconfig: the read-only ServiceAccount, the API server on the host's loopback.
    pub fn readonly_kubeconfig(&self) -> PathBuf {
        self.node_dir().join("kpulse.kubeconfig")
    }

    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.node_dir().join("admin-host.kubeconfig")
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(self.admin_kubeconfig())
            .args(args)
            .output()
            .expect("kubectl runs");
        assert!(out.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kubectl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl prints JSON")
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(self.admin_kubeconfig()).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
        kube::Client::try_from(config).expect("client")
    }

    pub fn audit_of(&self, user: &str) -> Vec<Audited> {
        read_audit(&self.node_dir().join("audit.log")).into_iter().filter(|a| a.user == user).collect()
    }

    /// Polls `check` every second until it gives a value or `secs` pass; fails naming `what`,
    /// with the pods' state and the node's logs.
    pub fn wait_until<T>(&self, what: &str, secs: u64, mut check: impl FnMut(&RealNode) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            if Instant::now() > deadline {
                let pods = self.kubectl(&["get", "pods", "-A", "-o", "wide"]);
                panic!("timed out after {secs}s waiting for {what}\n{pods}\n{}", self.logs_tail());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// The last lines of every component's log, for a failure message.
    fn logs_tail(&self) -> String {
        let mut out = String::new();
        let Ok(entries) = std::fs::read_dir(self.node_dir().join("logs")) else { return out };
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(6).collect();
            out.push_str(&format!("--- {}\n", e.file_name().to_string_lossy()));
            for l in tail.iter().rev() {
                out.push_str(&l.chars().take(300).collect::<String>());
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        let _ = self.script(&["down"]).output();
    }
}
