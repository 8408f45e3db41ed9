//! Any bytes given to the exposition parser and the cAdvisor reduction: no panic, and every line
//! is either a sample or counted as skipped.
#![no_main]

use kpulse::model::cadvisor::extract;
use kpulse::model::exposition::{Format, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for format in [Format::Text, Format::OpenMetrics] {
        let stats = parse(text, format, |s| {
            let _ = s.label("pod");
        });
        let lines = text.split('\n').filter(|l| !l.is_empty() && !l.starts_with('#')).count();
        assert!(stats.samples + stats.skipped_lines <= lines);
        let _ = extract(text, format);
    }
});
