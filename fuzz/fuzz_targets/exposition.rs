//! Any bytes given to the exposition parser: no panic, and every non-comment line is either a
//! sample or counted as skipped.
#![no_main]

#[path = "../../src/model/exposition.rs"]
#[allow(dead_code)]
mod exposition;

use exposition::{Format, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for format in [Format::Text, Format::OpenMetrics] {
        let stats = parse(text, format, |s| {
            let _ = s.label("pod");
        });
        let lines = text.split('\n').filter(|l| !l.is_empty() && !l.starts_with('#')).count();
        assert!(stats.samples + stats.skipped_lines <= lines);
    }
});
