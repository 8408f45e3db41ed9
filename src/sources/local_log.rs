//! Gateway logs on this machine: a file followed like `tail -F` (from its end, or from its start
//! with `file+all:`) and stdin. Each sends whole lines as [`Update::AccessLog`] chunks on one
//! bounded channel, so a log is read as fast as it is parsed and never into memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
#[cfg(unix)]
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::Sender;

use super::gateway::CHUNK_BYTES;
use super::{SourceId, SourceState, Update};
use crate::model::accesslog::zone::LogZone;
use crate::model::accesslog::{Format, LineBuffer, MAX_LINE_BYTES};

/// The stream name of a followed file, as the Traffic view and the snapshot name it.
pub fn file_stream_name(path: &Path) -> String {
    format!("file:{}", path.display())
}

pub const STDIN_STREAM: &str = "stdin";

/// Updates read from local logs queue at most this many chunks (of `CHUNK_BYTES`) ahead of
/// the parser: a file is read as fast as it is parsed, never into memory.
pub const LOCAL_QUEUE: usize = 4;

/// How often a followed file that has nothing new is looked at again.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// Sends on the bounded local channel: waits while the parser is behind.
async fn send_local(tx: &Sender<Update>, update: Update) {
    let _ = tx.send(update).await;
}

/// Follows `path` like `tail -F`: new lines as they are written, a new file after rotation (the
/// old one read to its end first), from the top after truncation, a missing file waited for.
/// With `from_start` what the file already holds is read first; without, reading starts at its
/// end (a file that appears later is new, and read whole).
///
/// The follow runs on a thread of its own, with blocking reads and sends: a send waits while the
/// parser is behind. (Run on the runtime, each 256 KiB read took a pool-thread round trip and
/// task wake-ups, a sixth of a snapshot's CPU.) Opening a FIFO with no writer, or reading a
/// stalled network mount, blocks that thread only. It stops when this future is dropped (the
/// source cancelled, its task aborted) or when the receiver is gone.
pub async fn tail_file(path: PathBuf, from_start: bool, tx: Sender<Update>) {
    let stream_name = file_stream_name(&path);
    let stop = Arc::new(AtomicBool::new(false));
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let follower = FileFollower::new(path, from_start, tx.clone(), Arc::clone(&stop));
    let spawned = std::thread::Builder::new().name("kpulse-tail".into()).spawn(move || {
        follower.run();
        drop(done);
    });
    match spawned {
        Ok(thread) => {
            let _stop = StopOnDrop { stop, thread: thread.thread().clone() };
            let _ = finished.await;
        }
        Err(e) => {
            let state = SourceState::Reconnecting(format!("{stream_name}: no thread to read it on: {e}"));
            send_local(&tx, Update::Status { source: SourceId::Gateway, state }).await;
        }
    }
}

/// Tells the follower thread to stop, and wakes it from its wait for more lines.
struct StopOnDrop {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
    }
}

/// Where a followed file stands: the file open (and its identity, to see a rotation), how far it
/// was read, and the unfinished last line.
struct FileFollower {
    path: PathBuf,
    stream_name: String,
    from_start: bool,
    tx: Sender<Update>,
    stop: Arc<AtomicBool>,
    open: Option<OpenFile>,
    offset: u64,
    pending: LineBuffer,
    reported_missing: bool,
    first_open: bool,
    caught_up: bool,
}

/// The file being read.
struct OpenFile {
    file: File,
    /// Device and inode: another one at the path means the file was rotated.
    id: (u64, u64),
    /// A regular file's reads end at its end; a FIFO's or a device's wait for more.
    regular: bool,
}

/// The receiver is gone: nobody reads what the follower would send.
struct Closed;

impl FileFollower {
    fn new(path: PathBuf, from_start: bool, tx: Sender<Update>, stop: Arc<AtomicBool>) -> FileFollower {
        FileFollower {
            stream_name: file_stream_name(&path),
            path,
            from_start,
            tx,
            stop,
            open: None,
            offset: 0,
            pending: LineBuffer::default(),
            reported_missing: false,
            first_open: true,
            caught_up: false,
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn send(&self, update: Update) -> Result<(), Closed> {
        self.tx.blocking_send(update).map_err(|_| Closed)
    }

    fn run(mut self) {
        while !self.stopped() {
            if self.turn().is_err() {
                return;
            }
        }
    }

    /// One look at the file: read what is new, notice a rotation or a truncation, (re)open it;
    /// waits a little when there was nothing to do.
    fn turn(&mut self) -> Result<(), Closed> {
        let current = std::fs::metadata(&self.path).ok().map(|m| ((m.dev(), m.ino()), m.is_file().then_some(m.len())));
        let rotated = match (&self.open, current) {
            (Some(open), Some((now, _))) => open.id != now,
            (Some(_), None) => true,
            _ => false,
        };
        let mut read_any = false;
        if self.open.is_some() {
            // Read what is there; after a rotation this drains the old file before switching.
            read_any = self.read_to_end()?;
            if !read_any && !self.caught_up {
                self.caught_up = true;
                self.send(Update::LogCaughtUp { stream: self.stream_name.clone() })?;
            }
            // Only a regular file can be truncated: a device or a FIFO (/dev/zero, a named pipe)
            // has no length to compare.
            if let Some((_, Some(len))) = current
                && !rotated
                && len < self.offset
            {
                // Truncated in place (copytruncate): start again from the top.
                if let Some(open) = self.open.as_mut() {
                    let _ = open.file.seek(SeekFrom::Start(0));
                }
                self.offset = 0;
                self.pending.clear();
                self.send(Update::Notice(format!("{}: truncated, reading from the start", self.stream_name)))?;
            }
        }
        if rotated {
            self.open = None;
        }
        let opened = self.open.is_none() && self.reopen()?;
        // After a read, look again at once: the end of a history is reported without a wait.
        if !read_any && !opened {
            std::thread::park_timeout(POLL_EVERY);
        }
        Ok(())
    }

    /// Reads until the end of what the file holds now (or a stop): whether anything was read.
    /// Each read goes straight into the line buffer; the lines it completes are sent at once.
    fn read_to_end(&mut self) -> Result<bool, Closed> {
        let mut read_any = false;
        while !self.stopped() {
            let Some(open) = self.open.as_mut() else { break };
            let dropped = self.pending.overlong_lines;
            let read = if open.regular {
                self.pending.fill_from(&mut open.file, CHUNK_BYTES)
            } else {
                self.pending.read_from(&mut open.file, CHUNK_BYTES)
            };
            match read {
                Ok((0, _)) | Err(_) => break,
                Ok((n, lines)) => {
                    self.offset += n as u64;
                    read_any = true;
                    for update in line_updates(&self.stream_name, dropped, self.pending.overlong_lines, lines) {
                        self.send(update)?;
                    }
                }
            }
        }
        Ok(read_any)
    }

    /// Opens the file (again): whether it is open now.
    fn reopen(&mut self) -> Result<bool, Closed> {
        match File::open(&self.path) {
            Ok(mut file) => {
                let meta = file.metadata().ok();
                let id = meta.as_ref().map_or((0, 0), |m| (m.dev(), m.ino()));
                let regular = meta.as_ref().is_some_and(|m| m.is_file());
                self.offset = 0;
                self.pending.clear();
                if self.first_open
                    && !self.from_start
                    && let Some(len) = meta.filter(|m| m.is_file()).map(|m| m.len())
                {
                    self.offset = file.seek(SeekFrom::End(0)).unwrap_or(0);
                    // Started inside a line: its tail is not a line of its own.
                    if len > 0 && !ends_with_newline(&mut file, len) {
                        self.pending.skip_to_next_line();
                    }
                    let _ = file.seek(SeekFrom::Start(self.offset));
                }
                self.first_open = false;
                self.open = Some(OpenFile { file, id, regular });
                self.reported_missing = false;
                self.send(Update::Status { source: SourceId::Gateway, state: SourceState::Connected })?;
                Ok(true)
            }
            Err(e) if !self.reported_missing => {
                self.first_open = false;
                let state = SourceState::Reconnecting(format!("{}: {e}; waiting for it", self.stream_name));
                self.send(Update::Status { source: SourceId::Gateway, state })?;
                self.reported_missing = true;
                // No history to read: a snapshot waiting for it reports the absence instead.
                if !self.caught_up {
                    self.caught_up = true;
                    self.send(Update::LogCaughtUp { stream: self.stream_name.clone() })?;
                }
                Ok(false)
            }
            Err(_) => Ok(false),
        }
    }
}

/// The time of the newest request in the log at `path` (its last line that `format`, or the
/// format detected, reads; a zone-less time read in `zone`): where a window over the log's own
/// time ends.
pub fn log_end_time(path: &Path, format: Option<&Format>, zone: &mut LogZone) -> Option<i64> {
    let mut file = File::open(path).ok()?;
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
fn ends_with_newline(file: &mut File, len: u64) -> bool {
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1)).is_ok() && file.read_exact(&mut last).is_ok() && last[0] == b'\n'
}

/// What to send for the complete lines of one read: once, when the first overlong line was
/// dropped (`dropped` of them before this read, `dropped_now` after it), a notice that a line too
/// long to be a log line was skipped; then the lines.
fn line_updates(stream: &str, dropped: u64, dropped_now: u64, lines: Option<String>) -> impl Iterator<Item = Update> {
    let notice = (dropped == 0 && dropped_now > 0).then(|| {
        Update::Notice(format!(
            "{stream}: a line longer than {} KiB was dropped (not an access log?); reading on after it",
            MAX_LINE_BYTES / 1024
        ))
    });
    let chunk = lines.map(|chunk| Update::AccessLog { stream: stream.to_string(), chunk });
    notice.into_iter().chain(chunk)
}

/// Sends the complete lines `bytes` finish, keeping an unfinished last line.
async fn flush_lines(tx: &Sender<Update>, stream: &str, pending: &mut LineBuffer, bytes: &[u8]) {
    let dropped = pending.overlong_lines;
    let lines = pending.push(bytes);
    for update in line_updates(stream, dropped, pending.overlong_lines, lines) {
        send_local(tx, update).await;
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
