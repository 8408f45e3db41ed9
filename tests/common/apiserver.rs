//! A real Kubernetes control plane for the tests: etcd and kube-apiserver built from source by
//! scripts/k8s-assets.sh, started on 127.0.0.1 the way controller-runtime's envtest starts them,
//! with RBAC, token users and an audit log of every request. No kubelet and no controllers: the
//! harness plays kubelet, writing the simulator's nodes, pods and events through the API (status
//! through the status subresource), so the same scenario can be read from both servers.

// Each test binary uses part of the harness.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::common::{KillOnDrop, free_port, wait_http_ok};
// Not every test binary that includes this module mirrors the simulator.
#[allow(unused_imports)]
pub use crate::mirror::{SimObjects, mirror};

/// The admin: in system:masters, used only by the harness to play kubelet and apply RBAC.
pub const ADMIN_TOKEN: &str = "kpulse-test-admin-token";
/// A user bound to config/rbac-readonly.yaml's ClusterRole in one namespace only.
pub const NAMESPACE_VIEWER: &str = "shop-viewer";
const NAMESPACE_VIEWER_TOKEN: &str = "kpulse-test-shop-viewer-token";
/// The ServiceAccount config/rbac-readonly.yaml creates; its user name in the audit log.
pub const READONLY_USER: &str = "system:serviceaccount:kpulse:kpulse";

/// Where scripts/k8s-assets.sh put etcd, kube-apiserver and kubectl: `KPULSE_K8S_BIN` (which
/// scripts/test.sh exports), else the newest cached build. `None`, loudly, when there is none.
pub fn k8s_bin_dir() -> Option<PathBuf> {
    let has_all = |d: &Path| ["etcd", "kube-apiserver", "kubectl"].iter().all(|b| d.join(b).is_file());
    let from_env = std::env::var_os("KPULSE_K8S_BIN").map(PathBuf::from).filter(|d| has_all(d));
    let cached = || {
        let root = std::env::var_os("KPULSE_K8S_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kpulse")))?;
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|d| d.file_name().is_some() && has_all(d))
            .collect();
        dirs.sort();
        dirs.pop()
    };
    let found = from_env.or_else(cached);
    if found.is_none() {
        let msg = "real component `kube-apiserver`/`etcd`/`kubectl` is missing: build them with \
                   `scripts/k8s-assets.sh` (scripts/test.sh does; the first build takes about 15 minutes)";
        assert!(std::env::var_os("KPULSE_REQUIRE_REAL").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    found
}

/// One audited request.
#[derive(Debug, Clone)]
pub struct Audited {
    pub user: String,
    pub verb: String,
    pub uri: String,
    pub code: u16,
}

/// At most this many control planes at once: each apiserver's start costs seconds of CPU, and the
/// test threads would otherwise start one per test together on a 2-core machine.
const MAX_CLUSTERS: usize = 3;
static RUNNING: (std::sync::Mutex<usize>, std::sync::Condvar) = (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// A slot among the MAX_CLUSTERS, given back on drop.
struct ClusterSlot;

impl ClusterSlot {
    fn take() -> ClusterSlot {
        let (lock, freed) = &RUNNING;
        let mut running = lock.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= MAX_CLUSTERS {
            running = freed.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        ClusterSlot
    }
}

impl Drop for ClusterSlot {
    fn drop(&mut self) {
        let (lock, freed) = &RUNNING;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// Fields drop in order: the apiserver, then etcd, then their directory, then the slot.
pub struct RealCluster {
    apiserver: Option<KillOnDrop>,
    _etcd: KillOnDrop,
    pub dir: tempfile::TempDir,
    _slot: ClusterSlot,
    pub bin: PathBuf,
    apiserver_args: Vec<String>,
    pub port: u16,
    etcd_port: u16,
}

impl RealCluster {
    /// etcd and kube-apiserver on free loopback ports, ready, with config/rbac-readonly.yaml
    /// applied and the namespace viewer bound. `None` when the binaries are missing (see above).
    pub fn start() -> Option<RealCluster> {
        RealCluster::start_with(&[])
    }

    /// The same, with extra kube-apiserver flags.
    pub fn start_with(extra_args: &[&str]) -> Option<RealCluster> {
        let bin = k8s_bin_dir()?;
        let slot = ClusterSlot::take();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (etcd_port, peer_port, port) = (free_port(), free_port(), free_port());
        let etcd = Command::new(bin.join("etcd"))
            .arg(format!("--data-dir={}", d.join("etcd").display()))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"))
            .arg(format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"))
            .arg("--unsafe-no-fsync=true")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("etcd.log")).unwrap())
            .spawn()
            .expect("etcd starts");
        let etcd = KillOnDrop(etcd);
        wait_http_ok(&format!("127.0.0.1:{etcd_port}"), "/health", "etcd");

        // The service-account signing key; the serving certificate is generated by the apiserver
        // itself into --cert-dir (self-signed for 127.0.0.1 and localhost).
        let sa_key = d.join("sa.key");
        let ok = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&sa_key)
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl genrsa failed (apt-get install -y openssl)");
        std::fs::write(
            d.join("tokens.csv"),
            format!("{ADMIN_TOKEN},admin,1,\"system:masters\"\n{NAMESPACE_VIEWER_TOKEN},{NAMESPACE_VIEWER},2,\n"),
        )
        .unwrap();
        // Metadata for every request, from kpulse and the harness alike: who, which verb, which URI.
        std::fs::write(
            d.join("audit-policy.yaml"),
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
        )
        .unwrap();
        let apiserver_args = vec![
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            format!("--cert-dir={}", d.join("certs").display()),
            "--authorization-mode=RBAC".into(),
            format!("--token-auth-file={}", d.join("tokens.csv").display()),
            format!("--service-account-key-file={}", sa_key.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            format!("--service-account-issuer=https://127.0.0.1:{port}/"),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            // No controller-manager creates the `default` ServiceAccount the pods name (envtest too).
            "--disable-admission-plugins=ServiceAccount".into(),
            "--allow-privileged=true".into(),
            format!("--audit-policy-file={}", d.join("audit-policy.yaml").display()),
            format!("--audit-log-path={}", d.join("audit.log").display()),
            "--audit-log-mode=blocking".into(),
        ];
        let mut apiserver_args = apiserver_args;
        apiserver_args.extend(extra_args.iter().map(|a| a.to_string()));
        let mut cluster =
            RealCluster { bin, dir, _etcd: etcd, apiserver: None, apiserver_args, port, etcd_port, _slot: slot };
        cluster.start_apiserver();
        let admin = cluster.write_kubeconfig("admin", ADMIN_TOKEN, None);
        let viewer = cluster.write_kubeconfig(NAMESPACE_VIEWER, NAMESPACE_VIEWER_TOKEN, Some("shop"));
        let _ = (admin, viewer);
        cluster.kubectl_ok(&["apply", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/config/rbac-readonly.yaml")]);
        Some(cluster)
    }

    /// Starts (or restarts) kube-apiserver on the same port and data; returns once /readyz is ok.
    pub fn start_apiserver(&mut self) {
        assert!(self.apiserver.is_none(), "the apiserver is already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("apiserver.log"));
        let child = Command::new(self.bin.join("kube-apiserver"))
            .args(&self.apiserver_args)
            .stdout(Stdio::null())
            .stderr(log.unwrap())
            .spawn()
            .expect("kube-apiserver starts");
        self.apiserver = Some(KillOnDrop(child));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = Command::new(self.bin.join("kubectl"))
                .args(["--server", &format!("https://127.0.0.1:{}", self.port)])
                .args(["--insecure-skip-tls-verify", "--token", ADMIN_TOKEN, "get", "--raw=/readyz"])
                .stderr(Stdio::null())
                .output();
            if out.is_ok_and(|o| o.status.success()) {
                return;
            }
            let log = std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            assert!(Instant::now() < deadline, "kube-apiserver not ready after 120 s; its log ends:\n{tail:#?}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Compacts etcd's history up to now, as the apiserver does every five minutes: a watch from
    /// an older resourceVersion that etcd must serve can then only get 410 Gone.
    pub fn compact_etcd(&self) {
        let etcd = format!("127.0.0.1:{}", self.etcd_port);
        // etcd's JSON gateway; keys are base64 ("/registry").
        let (code, body) = http_post(&etcd, "/v3/kv/range", r#"{"key":"L3JlZ2lzdHJ5","limit":1}"#);
        assert_eq!(code, 200, "{body}");
        let header: serde_json::Value = serde_json::from_str(&body).expect("etcd answers JSON");
        let revision = header["header"]["revision"].as_str().expect("a revision").to_string();
        let (code, body) =
            http_post(&etcd, "/v3/kv/compaction", &format!(r#"{{"revision":"{revision}","physical":true}}"#));
        assert_eq!(code, 200, "{body}");
    }

    /// Kills kube-apiserver (etcd keeps the data), as a control-plane restart does.
    /// Freezes the apiserver (SIGSTOP): its connections stay open and say nothing, as a hung
    /// process or a black-holed network does. `resume_apiserver` thaws it.
    pub fn pause_apiserver(&self) {
        self.signal_apiserver("-STOP");
    }

    pub fn resume_apiserver(&self) {
        self.signal_apiserver("-CONT");
    }

    fn signal_apiserver(&self, signal: &str) {
        let pid = self.apiserver.as_ref().expect("the apiserver runs").0.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().is_ok_and(|s| s.success()), "kill {signal}");
    }

    pub fn stop_apiserver(&mut self) {
        self.apiserver.take();
    }

    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig with one context named `user`, trusting the apiserver's generated certificate.
    pub fn write_kubeconfig(&self, user: &str, token: &str, namespace: Option<&str>) -> PathBuf {
        let ca = self.dir.path().join("certs/apiserver.crt");
        let ns = namespace.map(|n| format!("\n    namespace: {n}")).unwrap_or_default();
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: real\n  cluster:\n    server: {server}\n    \
             certificate-authority: {ca}\ncontexts:\n- name: {user}\n  context:\n    cluster: real\n    user: {user}{ns}\n\
             current-context: {user}\nusers:\n- name: {user}\n  user:\n    token: {token}\n",
            server = self.server(),
            ca = ca.display(),
        );
        let path = self.kubeconfig_path(user);
        std::fs::write(&path, yaml).unwrap();
        path
    }

    pub fn kubeconfig_path(&self, user: &str) -> PathBuf {
        self.dir.path().join(format!("{}.kubeconfig", user.replace(':', "_")))
    }

    /// A short-lived token for config/rbac-readonly.yaml's ServiceAccount, asked for the way its
    /// header tells a user to (`kubectl -n kpulse create token kpulse`), and a kubeconfig for it.
    pub fn readonly_kubeconfig(&self) -> PathBuf {
        let token = self.kubectl_ok(&["-n", "kpulse", "create", "token", "kpulse", "--duration=1h"]);
        self.write_kubeconfig(READONLY_USER, token.trim(), None)
    }

    /// The built kubectl, as the admin.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.bin.join("kubectl"));
        cmd.arg("--kubeconfig").arg(self.kubeconfig_path("admin"));
        cmd
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl().args(args).output().expect("kubectl runs");
        assert!(out.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub async fn client(&self, user: &str) -> kube::Client {
        let kc = Kubeconfig::read_from(self.kubeconfig_path(user)).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
        kube::Client::try_from(config).expect("client")
    }

    /// Every request the apiserver audited so far (the log is written before each response).
    pub fn audit(&self) -> Vec<Audited> {
        read_audit(&self.dir.path().join("audit.log"))
    }

    pub fn audit_of(&self, user: &str) -> Vec<Audited> {
        self.audit().into_iter().filter(|a| a.user == user).collect()
    }
}

/// Every completed request in a kube-apiserver audit log (JSON lines, Metadata level).
pub fn read_audit(path: &Path) -> Vec<Audited> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete" || e["stage"] == "Panic")
        .map(|e| Audited {
            user: e["user"]["username"].as_str().unwrap_or_default().to_string(),
            verb: e["verb"].as_str().unwrap_or_default().to_string(),
            uri: e["requestURI"].as_str().unwrap_or_default().to_string(),
            code: e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
        })
        .collect()
}

/// POST a JSON body over plain HTTP/1.0 on loopback: (status, body).
fn http_post(addr: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connects");
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("writes");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("reads");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, body.to_string())
}
