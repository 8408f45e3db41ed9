//! Any bytes as a gateway access-log line, in every format and through detection: no panic,
//! and what parses is sane (a status a gateway can send, finite non-negative sizes). The
//! latency sketch takes whatever durations come out.
#![no_main]

#[path = "../../src/model/accesslog/mod.rs"]
#[allow(dead_code)]
mod accesslog;
#[path = "../../src/model/sketch.rs"]
#[allow(dead_code)]
mod sketch;
#[path = "../../src/model/bytes.rs"]
#[allow(dead_code)]
mod bytes;

use accesslog::{BUILT_IN, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut latencies = sketch::Sketch::default();
    let mut formats: Vec<Format> = BUILT_IN.iter().map(|n| Format::by_name(n).unwrap()).collect();
    // The text itself as a user's log_format, too: compiling any string must not panic.
    if let Ok(f) = Format::by_name(&format!("nginx:{}", text.lines().next().unwrap_or(""))) {
        formats.push(f);
    }
    if let Ok(f) = Format::by_name(&format!("envoy:{}", text.lines().next().unwrap_or(""))) {
        formats.push(f);
    }
    for line in text.lines() {
        let _ = Format::detect(line);
        for f in &formats {
            if let Some(r) = f.parse(line) {
                assert!(r.status < 1000);
                if let Some(t) = r.total_secs {
                    latencies.add(t);
                }
            }
        }
    }
    let _ = latencies.quantile(0.99);
});
