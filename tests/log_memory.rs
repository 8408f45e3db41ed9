//! A gateway log of any size is read in bounded memory: the file reaches the parser through a
//! bounded channel as fast as it is parsed (it used to be queued whole: 371 MB for 2M lines), and
//! what the traffic windows keep is bounded by time and the route caps, not by the file. The
//! real binary, on files of 200,000 and 2,000,000 lines (hours of log), without a cluster.
//!
//! Alone in its test binary: the peak RSS is read from getrusage(RUSAGE_CHILDREN), which covers
//! every child this process waited for.

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// `n` ingress-nginx lines, 100 a second of log time from 2026-01-01, over 40 services, 400 pod
/// IPs and a few hundred routes.
fn write_log(path: &Path, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let start = 1_767_225_600i64;
    for i in 0..n {
        let at = jiff::Timestamp::from_second(start + (i / 100) as i64).unwrap();
        let svc = i % 40;
        let status = if i % 31 == 0 { 500 } else { 200 };
        writeln!(
            f,
            r#"203.0.113.{} - - [{}] "GET /api/svc{svc}/orders/{} HTTP/1.1" {status} 512 "-" "k6" 420 0.{:03} [shop-svc{svc}-80] [] 10.244.{}.{}:8080 512 0.{:03} {status} {i:032x}"#,
            i % 250,
            at.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            i % 9973,
            20 + i % 300,
            svc % 10,
            i % 40,
            19 + i % 300,
        )
        .unwrap();
    }
}

/// The largest peak RSS, in KiB, of any child waited for so far.
fn children_peak_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a rusage into the pointer it is given.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) }, 0);
    // SAFETY: getrusage returned 0, so it filled the struct.
    unsafe { usage.assume_init() }.ru_maxrss
}

/// Reads `log` whole with `kpulse snapshot --gateway file+all:` and returns the lines it read.
fn snapshot_reads(log: &Path) -> u64 {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kpulse"))
        .args(["snapshot", "--gateway", &format!("file+all:{}", log.display()), "--format", "json"])
        .env("KUBECONFIG", home.path().join("no-kubeconfig"))
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["gateway_logs"][0]["read"].as_u64().unwrap()
}

#[test]
fn a_log_ten_times_longer_takes_no_more_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (short, long) = (dir.path().join("short.log"), dir.path().join("long.log"));
    write_log(&short, 200_000);
    write_log(&long, 2_000_000);
    assert_eq!(snapshot_reads(&short), 200_000);
    let short_rss = children_peak_rss_kib();
    assert_eq!(snapshot_reads(&long), 2_000_000, "every line read");
    let long_rss = children_peak_rss_kib();
    eprintln!("peak RSS: {short_rss} KiB reading 200,000 lines; the larger of both runs: {long_rss} KiB");
    // The long log is 2.8 hours against the short one's 33 minutes: past the longest window and
    // the sparklines' retention both, the same windows and series are kept.
    assert!(long_rss <= short_rss + 8 * 1024, "{long_rss} KiB for 2M lines vs {short_rss} KiB for 200k");
    // Unoptimised test builds use more than the release binary's 29 MB (benches/README.md).
    assert!(long_rss < 80 * 1024, "{long_rss} KiB");
}
