//! Gateway access logs: followed pod logs through the API server (one stream per gateway
//! replica), a file tailed like `tail -F` (from its end, or from its start with `file+all:`), or
//! stdin. Each sends whole lines as [`Update::AccessLog`] chunks; parsing happens in the model.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::{Sender, UnboundedSender};
use tokio::task::JoinHandle;

use super::api_get::classify_client_error;
use super::kube::Scope;
use super::{SourceId, SourceState, Update};
use crate::model::accesslog::zone::LogZone;
use crate::model::accesslog::{Format, LineBuffer, MAX_LINE_BYTES};

/// Where gateway logs come from (`--gateway`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewaySpec {
    /// `pods:NAMESPACE/SELECTOR[#CONTAINER]`; an empty namespace means every namespace in scope.
    Pods { namespace: Option<String>, selector: String, container: Option<String> },
    /// `auto` (and the default): the well-known gateways, found by their labels.
    Auto,
    /// `file:PATH`: followed from its end, like `tail -F`; `file+all:PATH`: read from its start
    /// (the history, counted where it happened), then followed.
    File { path: PathBuf, from_start: bool },
    /// `-`
    Stdin,
}

/// Well-known gateways: (what, label selector, log container).
pub const KNOWN_GATEWAYS: &[(&str, &str, &str)] = &[
    ("ingress-nginx", "app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/component=controller", "controller"),
    ("istio ingress gateway", "istio=ingressgateway", "istio-proxy"),
    ("traefik", "app.kubernetes.io/name=traefik", "traefik"),
    ("envoy gateway", "app.kubernetes.io/managed-by=envoy-gateway", "envoy"),
    ("haproxy ingress", "app.kubernetes.io/name=kubernetes-ingress", "kubernetes-ingress-controller"),
];

impl GatewaySpec {
    pub fn parse(text: &str) -> Result<GatewaySpec, String> {
        if text == "-" {
            return Ok(GatewaySpec::Stdin);
        }
        if text == "auto" {
            return Ok(GatewaySpec::Auto);
        }
        for (prefix, from_start) in [("file:", false), ("file+all:", true)] {
            if let Some(path) = text.strip_prefix(prefix) {
                if path.is_empty() {
                    return Err(format!("--gateway {prefix} needs a path"));
                }
                return Ok(GatewaySpec::File { path: PathBuf::from(path), from_start });
            }
        }
        if let Some(rest) = text.strip_prefix("pods:") {
            let (rest, container) = match rest.split_once('#') {
                Some((r, c)) => (r, Some(c.to_string()).filter(|c| !c.is_empty())),
                None => (rest, None),
            };
            let (namespace, selector) = rest
                .split_once('/')
                .ok_or_else(|| format!("--gateway {text}: expected pods:NAMESPACE/LABEL-SELECTOR"))?;
            if selector.is_empty() {
                return Err(format!("--gateway {text}: the label selector is empty"));
            }
            return Ok(GatewaySpec::Pods {
                namespace: Some(namespace.to_string()).filter(|n| !n.is_empty()),
                selector: selector.to_string(),
                container: container.filter(|c| !c.is_empty()),
            });
        }
        Err(format!("--gateway {text}: use pods:NAMESPACE/SELECTOR, file:PATH, file+all:PATH, - (stdin) or auto"))
    }

    /// File and stdin do not depend on the cluster connection; they outlive a context switch.
    pub fn is_local(&self) -> bool {
        matches!(self, GatewaySpec::File { .. } | GatewaySpec::Stdin)
    }

    /// The stream of a source read from its start (`file+all:`, stdin): what a snapshot reads to
    /// its end before it reports.
    pub fn history_stream(&self) -> Option<String> {
        match self {
            GatewaySpec::File { path, from_start: true } => Some(file_stream_name(path)),
            GatewaySpec::Stdin => Some(STDIN_STREAM.to_string()),
            _ => None,
        }
    }
}

/// The stream name of a followed file, as the Traffic view and the snapshot name it.
pub fn file_stream_name(path: &std::path::Path) -> String {
    format!("file:{}", path.display())
}

pub const STDIN_STREAM: &str = "stdin";

/// Updates read from local logs queue at most this many chunks (of [`CHUNK_BYTES`]) ahead of
/// the parser: a file is read as fast as it is parsed, never into memory.
pub const LOCAL_QUEUE: usize = 4;

/// Sends on the bounded local channel: waits while the parser is behind.
async fn send_local(tx: &Sender<Update>, update: Update) {
    let _ = tx.send(update).await;
}

/// Lines are sent in chunks of about this size, or after [`FLUSH_AFTER`] when the stream is quiet.
const CHUNK_BYTES: usize = 256 * 1024;
const FLUSH_AFTER: Duration = Duration::from_millis(250);
const REDISCOVER_EVERY: Duration = Duration::from_secs(30);
/// At start-up, read this much of each gateway pod's log so the 5-minute window starts full.
const BACKFILL_SECS: i64 = 300;

fn status(tx: &UnboundedSender<Update>, state: SourceState) {
    let _ = tx.send(Update::Status { source: SourceId::Gateway, state });
}

/// One pod log to follow, and what its lines are sent as.
pub(super) struct PodLog {
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    /// The stream name the chunks carry.
    pub stream: String,
    /// Whose status a failing follow reports.
    pub source: SourceId,
}

/// Follows the logs of every pod the spec selects, starting a stream per new replica and stopping
/// it when the pod goes. Runs until cancelled by the caller.
pub async fn follow_pods(client: Client, spec: GatewaySpec, scope: Scope, tx: UnboundedSender<Update>) {
    let mut streams = PodStreams::default();
    let mut announced = false;
    let targets: Vec<(Option<String>, String, Option<String>)> = match &spec {
        GatewaySpec::Pods { namespace, selector, container } => {
            vec![(namespace.clone(), selector.clone(), container.clone())]
        }
        _ => KNOWN_GATEWAYS.iter().map(|(_, sel, c)| (None, sel.to_string(), Some(c.to_string()))).collect(),
    };
    loop {
        let mut found: Vec<(String, String, Option<String>)> = Vec::new();
        for (namespace, selector, container) in &targets {
            let api: Api<Pod> = match (namespace, &scope) {
                (Some(ns), _) => Api::namespaced(client.clone(), ns),
                (None, Scope::Namespace(ns)) if !matches!(spec, GatewaySpec::Auto) => {
                    Api::namespaced(client.clone(), ns)
                }
                _ => Api::all(client.clone()),
            };
            match api.list(&ListParams::default().labels(selector)).await {
                Ok(list) => {
                    for pod in list.items {
                        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                        let (Some(ns), Some(name)) = (pod.metadata.namespace.clone(), pod.metadata.name.clone()) else {
                            continue;
                        };
                        if running {
                            found.push((ns, name, pick_container(&pod, container.as_deref())));
                        }
                    }
                }
                Err(e) => {
                    // Auto-detection across gateways that may not exist: only a real problem counts.
                    let state = classify_client_error(&e);
                    if matches!(spec, GatewaySpec::Pods { .. }) || matches!(state, SourceState::Forbidden(_)) {
                        status(&tx, state);
                    }
                }
            }
        }
        if !announced && matches!(spec, GatewaySpec::Auto) && found.is_empty() {
            status(&tx, SourceState::Absent("no gateway pods found (use --gateway pods:NS/SELECTOR)".into()));
        }
        if !found.is_empty() && !announced {
            let names: Vec<String> = found.iter().map(|(ns, n, _)| format!("{ns}/{n}")).collect();
            let _ = tx.send(Update::Notice(format!("gateway logs from {}", names.join(", "))));
            status(&tx, SourceState::Connected);
            announced = true;
        }
        streams.0.retain(|key, handle| {
            let keep = found.iter().any(|(ns, n, _)| (ns, n) == (&key.0, &key.1)) && !handle.is_finished();
            if !keep {
                handle.abort();
            }
            keep
        });
        for (ns, name, container) in found {
            let key = (ns.clone(), name.clone());
            if streams.0.contains_key(&key) {
                continue;
            }
            let stream = format!("{ns}/{name}");
            let log = PodLog { namespace: ns, pod: name, container, stream, source: SourceId::Gateway };
            let task = follow_pod_log(client.clone(), log, tx.clone());
            streams.0.insert(key, tokio::spawn(task));
        }
        tokio::time::sleep(REDISCOVER_EVERY).await;
    }
}

/// The per-pod log tasks, aborted when discovery stops (a context switch drops its future).
#[derive(Default)]
pub(super) struct PodStreams(pub HashMap<(String, String), JoinHandle<()>>);

impl Drop for PodStreams {
    fn drop(&mut self) {
        for (_, h) in self.0.drain() {
            h.abort();
        }
    }
}

/// The log container: the one asked for if the pod has it, else the first.
fn pick_container(pod: &Pod, wanted: Option<&str>) -> Option<String> {
    let containers = &pod.spec.as_ref()?.containers;
    if let Some(w) = wanted
        && containers.iter().any(|c| c.name == w)
    {
        return Some(w.to_string());
    }
    containers.first().map(|c| c.name.clone())
}

/// Where a followed log got to: the newest timestamp seen and how many lines carried it, so a
/// reconnect with `sinceTime` (whole seconds) skips exactly what was already read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogCursor {
    last: Option<Timestamp>,
    at_last: usize,
    /// Lines at `last` still to skip after a reconnect.
    replay: usize,
}

impl LogCursor {
    /// Whether a line stamped `ts` is new; updates the cursor.
    pub fn accept(&mut self, ts: Timestamp) -> bool {
        match self.last {
            Some(last) if ts < last => false,
            Some(last) if ts == last => {
                if self.replay > 0 {
                    self.replay -= 1;
                    return false;
                }
                self.at_last += 1;
                true
            }
            _ => {
                self.last = Some(ts);
                self.at_last = 1;
                self.replay = 0;
                true
            }
        }
    }

    /// Before reconnecting: the `sinceTime` to ask for, and arm the skip of lines already read.
    pub fn resume(&mut self) -> Option<Timestamp> {
        let last = self.last?;
        self.replay = self.at_last;
        Timestamp::from_second(last.as_second()).ok()
    }
}

/// Splits `2024-01-01T12:00:00.123456789Z line` into the kubelet's timestamp and the line.
pub fn split_timestamp(line: &str) -> Option<(Timestamp, &str)> {
    let (ts, rest) = line.split_once(' ')?;
    Some((ts.parse().ok()?, rest))
}

/// Follows one container's log from [`BACKFILL_SECS`] ago, resuming after a break where it
/// stopped, until the pod is gone or the task is aborted.
pub(super) async fn follow_pod_log(client: Client, log: PodLog, tx: UnboundedSender<Update>) {
    let PodLog { namespace: ns, pod: name, container, stream: stream_name, source } = log;
    let api: Api<Pod> = Api::namespaced(client, &ns);
    let status = |tx: &UnboundedSender<Update>, state| {
        let _ = tx.send(Update::Status { source, state });
    };
    let mut cursor = LogCursor::default();
    let mut backoff = Duration::from_millis(500);
    loop {
        let params = LogParams {
            container: container.clone(),
            follow: true,
            timestamps: true,
            since_time: cursor.resume(),
            since_seconds: if cursor.last.is_none() { Some(BACKFILL_SECS) } else { None },
            ..LogParams::default()
        };
        match api.log_stream(&name, &params).await {
            Ok(reader) => {
                backoff = Duration::from_millis(500);
                // A follow that failed and came back clears the failure it reported.
                status(&tx, SourceState::Connected);
                let mut lines = reader.lines();
                let mut chunk = String::new();
                loop {
                    match tokio::time::timeout(FLUSH_AFTER, lines.next()).await {
                        Ok(Some(Ok(line))) => {
                            // The kubelet stamps every line; one without a stamp is sent as is.
                            match split_timestamp(&line) {
                                Some((ts, text)) if cursor.accept(ts) => {
                                    chunk.push_str(text);
                                    chunk.push('\n');
                                }
                                Some(_) => {}
                                None => {
                                    chunk.push_str(&line);
                                    chunk.push('\n');
                                }
                            }
                            if chunk.len() >= CHUNK_BYTES {
                                send(&tx, &stream_name, &mut chunk);
                            }
                        }
                        Ok(Some(Err(e))) => {
                            status(&tx, SourceState::Reconnecting(format!("{stream_name}: {e}")));
                            break;
                        }
                        // The kubelet ends a follow on log rotation and when the container stops.
                        Ok(None) => break,
                        Err(_quiet) => send(&tx, &stream_name, &mut chunk),
                    }
                }
                send(&tx, &stream_name, &mut chunk);
            }
            Err(e) => {
                let state = classify_client_error(&e);
                let gone = matches!(state, SourceState::Absent(_));
                status(
                    &tx,
                    match state {
                        SourceState::Forbidden(r) => SourceState::Forbidden(format!("{stream_name} log: {r}")),
                        SourceState::Absent(r) | SourceState::Reconnecting(r) => {
                            SourceState::Reconnecting(format!("{stream_name} log: {r}"))
                        }
                        other => other,
                    },
                );
                if gone {
                    // The pod is gone; discovery starts a stream for its replacement.
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

fn send(tx: &UnboundedSender<Update>, stream: &str, chunk: &mut String) {
    if !chunk.is_empty() {
        let _ = tx.send(Update::AccessLog { stream: stream.to_string(), chunk: std::mem::take(chunk) });
    }
}

/// Follows `path` like `tail -F`: new lines as they are written, a new file after rotation (the
/// old one read to its end first), from the top after truncation, a missing file waited for.
/// With `from_start` what the file already holds is read first; without, reading starts at its
/// end (a file that appears later is new, and read whole).
///
/// Every file operation that can block runs on a blocking pool thread (tokio::fs, or
/// spawn_blocking for the reads; only the seek after a truncation, which does no I/O, does not):
/// opening a FIFO with no writer, or reading a stalled network mount, blocks, and must not hold a
/// runtime worker.
pub async fn tail_file(path: PathBuf, from_start: bool, tx: Sender<Update>) {
    use std::io::{Seek, SeekFrom};
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    use tokio::io::AsyncSeekExt;
    let stream_name = file_stream_name(&path);
    let mut open: Option<(std::sync::Arc<std::fs::File>, (u64, u64))> = None;
    let mut offset = 0u64;
    let mut pending = LineBuffer::default();
    let mut reported_missing = false;
    let mut first_open = true;
    let mut caught_up = false;
    loop {
        let current =
            tokio::fs::metadata(&path).await.ok().map(|m| ((m.dev(), m.ino()), m.is_file().then_some(m.len())));
        let rotated = match (&open, current) {
            (Some((_, id)), Some((now, _))) => *id != now,
            (Some(_), None) => true,
            _ => false,
        };
        let mut more = false;
        if let Some((file, _)) = open.as_ref() {
            // Read what is there; after a rotation this drains the old file before switching. A
            // few chunks at a time, then the task yields: a huge file (or /dev/zero) must not hold
            // a worker thread. Each read goes straight into the line buffer, on a pool thread.
            for _ in 0..READS_PER_TURN {
                let (reading, mut buffer) = (std::sync::Arc::clone(file), std::mem::take(&mut pending));
                let dropped = buffer.overlong_lines;
                let Ok((buffer, read)) = tokio::task::spawn_blocking(move || {
                    let read = buffer.read_from(&mut &*reading, CHUNK_BYTES);
                    (buffer, read)
                })
                .await
                else {
                    break;
                };
                pending = buffer;
                match read {
                    Ok((0, _)) | Err(_) => break,
                    Ok((n, lines)) => {
                        offset += n as u64;
                        send_lines(&tx, &stream_name, dropped, pending.overlong_lines, lines).await;
                        more = true;
                    }
                }
            }
            if !more && !caught_up {
                caught_up = true;
                send_local(&tx, Update::LogCaughtUp { stream: stream_name.clone() }).await;
            }
            // Only a regular file can be truncated: a device or a FIFO (/dev/zero, a named pipe)
            // has no length to compare.
            if let Some((_, Some(len))) = current
                && !rotated
                && len < offset
            {
                // Truncated in place (copytruncate): start again from the top. (A seek does no
                // I/O: no need for a pool thread.)
                let _ = (&**file).seek(SeekFrom::Start(0));
                offset = 0;
                pending.clear();
                send_local(&tx, Update::Notice(format!("{stream_name}: truncated, reading from the start"))).await;
            }
        }
        if rotated {
            open = None;
        }
        if open.is_none() {
            match tokio::fs::File::open(&path).await {
                Ok(mut file) => {
                    let meta = file.metadata().await.ok();
                    let id = meta.as_ref().map_or((0, 0), |m| (m.dev(), m.ino()));
                    offset = 0;
                    pending.clear();
                    if first_open
                        && !from_start
                        && let Some(len) = meta.filter(|m| m.is_file()).map(|m| m.len())
                    {
                        offset = file.seek(SeekFrom::End(0)).await.unwrap_or(0);
                        // Started inside a line: its tail is not a line of its own.
                        if len > 0 && !ends_with_newline(&mut file, len).await {
                            pending.skip_to_next_line();
                        }
                        let _ = file.seek(SeekFrom::Start(offset)).await;
                    }
                    first_open = false;
                    open = Some((std::sync::Arc::new(file.into_std().await), id));
                    reported_missing = false;
                    send_local(&tx, Update::Status { source: SourceId::Gateway, state: SourceState::Connected }).await;
                    continue;
                }
                Err(e) if !reported_missing => {
                    first_open = false;
                    let state = SourceState::Reconnecting(format!("{stream_name}: {e}; waiting for it"));
                    send_local(&tx, Update::Status { source: SourceId::Gateway, state }).await;
                    reported_missing = true;
                    // No history to read: a snapshot waiting for it reports the absence instead.
                    if !caught_up {
                        caught_up = true;
                        send_local(&tx, Update::LogCaughtUp { stream: stream_name.clone() }).await;
                    }
                }
                Err(_) => {}
            }
        }
        if more {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The time of the newest request in the log at `path` (its last line that `format`, or the
/// format detected, reads; a zone-less time read in `zone`): where a window over the log's own
/// time ends.
pub fn log_end_time(path: &std::path::Path, format: Option<&Format>, zone: &mut LogZone) -> Option<i64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let from = len.saturating_sub(2 * MAX_LINE_BYTES as u64);
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut tail = Vec::new();
    file.take(len - from).read_to_end(&mut tail).ok()?;
    let tail = String::from_utf8_lossy(&tail);
    // The first line may be cut (unless the read began at the start).
    let lines = tail.lines().skip(usize::from(from > 0));
    let lines: Vec<&str> = lines.collect();
    let (time, zoneless) = lines.iter().rev().find_map(|line| {
        let record = match format {
            Some(f) => f.parse(line)?,
            None => Format::detect(line)?.parse(line)?,
        };
        Some((record.time?, record.zoneless))
    })?;
    Some(if zoneless { zone.to_utc(time) } else { time })
}

/// Whether the last of a file's `len` bytes is a newline.
async fn ends_with_newline(file: &mut tokio::fs::File, len: u64) -> bool {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut last = [0u8; 1];
    file.seek(std::io::SeekFrom::Start(len - 1)).await.is_ok()
        && file.read_exact(&mut last).await.is_ok()
        && last[0] == b'\n'
}

/// Chunks read from a file before the task yields.
const READS_PER_TURN: usize = 8;

/// Sends the complete lines `bytes` finish, keeping an unfinished last line; says once when a
/// line too long to be a log line is dropped.
async fn flush_lines(tx: &Sender<Update>, stream: &str, pending: &mut LineBuffer, bytes: &[u8]) {
    let dropped = pending.overlong_lines;
    let lines = pending.push(bytes);
    send_lines(tx, stream, dropped, pending.overlong_lines, lines).await;
}

/// Sends complete lines; says once, when the first overlong line was dropped (`dropped` of them
/// before this read, `dropped_now` after it), that a line too long to be a log line was skipped.
async fn send_lines(tx: &Sender<Update>, stream: &str, dropped: u64, dropped_now: u64, lines: Option<String>) {
    if dropped == 0 && dropped_now > 0 {
        let notice = format!(
            "{stream}: a line longer than {} KiB was dropped (not an access log?); reading on after it",
            MAX_LINE_BYTES / 1024
        );
        send_local(tx, Update::Notice(notice)).await;
    }
    if let Some(chunk) = lines {
        send_local(tx, Update::AccessLog { stream: stream.to_string(), chunk }).await;
    }
}

/// Reads stdin to its end (`kubectl logs -f … | kpulse --gateway -`).
pub async fn read_stdin(tx: Sender<Update>) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut pending = LineBuffer::default();
    send_local(&tx, Update::Status { source: SourceId::Gateway, state: SourceState::Connected }).await;
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => flush_lines(&tx, STDIN_STREAM, &mut pending, &buf[..n]).await,
            Err(e) => {
                let state = SourceState::Reconnecting(format!("stdin: {e}"));
                send_local(&tx, Update::Status { source: SourceId::Gateway, state }).await;
                return;
            }
        }
    }
    if let Some(chunk) = pending.finish() {
        send_local(&tx, Update::AccessLog { stream: STDIN_STREAM.into(), chunk }).await;
    }
    send_local(&tx, Update::LogCaughtUp { stream: STDIN_STREAM.into() }).await;
    send_local(&tx, Update::Notice("stdin closed: the gateway log ended; what was read is kept".into())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(GatewaySpec::parse("-"), Ok(GatewaySpec::Stdin));
        assert_eq!(
            GatewaySpec::parse("file:/var/log/nginx/access.log"),
            Ok(GatewaySpec::File { path: "/var/log/nginx/access.log".into(), from_start: false })
        );
        assert_eq!(
            GatewaySpec::parse("file+all:access.log"),
            Ok(GatewaySpec::File { path: "access.log".into(), from_start: true })
        );
        assert!(GatewaySpec::parse("file+all:").is_err());
        assert_eq!(
            GatewaySpec::parse("pods:ingress-nginx/app.kubernetes.io/component=controller#controller"),
            Ok(GatewaySpec::Pods {
                namespace: Some("ingress-nginx".into()),
                selector: "app.kubernetes.io/component=controller".into(),
                container: Some("controller".into())
            })
        );
        assert_eq!(
            GatewaySpec::parse("pods:/istio=ingressgateway"),
            Ok(GatewaySpec::Pods { namespace: None, selector: "istio=ingressgateway".into(), container: None })
        );
        assert!(GatewaySpec::parse("pods:nothing").is_err());
        assert!(GatewaySpec::parse("http://x").is_err());
    }

    #[test]
    fn a_reconnect_skips_exactly_the_lines_already_read() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let mut c = LogCursor::default();
        assert!(c.accept(t("2024-01-01T12:00:00.5Z")));
        assert!(c.accept(t("2024-01-01T12:00:01Z")));
        assert!(c.accept(t("2024-01-01T12:00:01Z")));
        // The stream drops; sinceTime is whole seconds, so the server resends from 12:00:01.
        assert_eq!(c.resume(), Some(t("2024-01-01T12:00:01Z")));
        assert!(!c.accept(t("2024-01-01T12:00:01Z")));
        assert!(!c.accept(t("2024-01-01T12:00:01Z")));
        assert!(c.accept(t("2024-01-01T12:00:01Z")), "a third line in the same second is new");
        assert!(c.accept(t("2024-01-01T12:00:02.25Z")));
        assert!(!c.accept(t("2024-01-01T12:00:00Z")), "older lines are never counted twice");
        assert_eq!(split_timestamp("2024-01-01T12:00:00.123456789Z GET / 200").map(|(_, l)| l), Some("GET / 200"));
    }
}
