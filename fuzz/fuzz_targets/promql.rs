//! Any bytes as a Prometheus query answer (what a server, a proxy in front of it, or an engine
//! such as VictoriaMetrics or Thanos may send): no panic, either a reason or series whose values
//! are finite or absent (NaN and ±Inf must not reach a ratio or a sparkline).
#![no_main]

#[path = "../../src/model/promql.rs"]
#[allow(dead_code)]
mod promql;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let result = promql::for_each_series(data, |mut series| {
        let _ = series.metric.get("pod");
        let _ = series.metric.take("container");
        for sample in series.value.iter().chain(&series.values) {
            assert!(sample.value.is_none_or(|v| !v.is_nan()), "NaN is no value");
        }
    });
    match result {
        Err(reason) => {
            assert!(!reason.is_empty());
            assert!(!reason.chars().any(|c| c.is_control() && c != '\n'), "a status-bar line: {reason:?}");
        }
        Ok(warnings) => {
            assert!(warnings.iter().all(|w| !w.chars().any(char::is_control)), "status-bar lines: {warnings:?}");
        }
    }
});
