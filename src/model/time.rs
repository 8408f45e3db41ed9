//! Time as whole Unix seconds: compact to store per sample, and the state's clock is injected so
//! tests and snapshots are deterministic.

pub type UnixSecs = i64;

pub fn to_unix(ts: k8s_openapi::jiff::Timestamp) -> UnixSecs {
    ts.as_second()
}

pub fn now_unix() -> UnixSecs {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

/// `45s`, `12m`, `3h`, `5d` — the way kubectl prints ages.
pub fn format_age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Seconds as a latency: `850µs`, `12ms`, `1.8s`.
pub fn format_latency(secs: f64) -> String {
    match secs {
        s if s >= 10.0 => format!("{s:.0}s"),
        s if s >= 1.0 => format!("{s:.1}s"),
        s if s >= 0.01 => format!("{:.0}ms", s * 1e3),
        s if s >= 0.001 => format!("{:.1}ms", s * 1e3),
        s if s > 0.0 => format!("{:.0}µs", s * 1e6),
        _ => "0".into(),
    }
}

/// `2026-12-04 03:10:00 UTC`: a moment in a log, named without the reader's zone.
pub fn format_utc(t: UnixSecs) -> String {
    match k8s_openapi::jiff::Timestamp::from_second(t) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => format!("@{t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::format_age;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(format_age(-3), "0s");
        assert_eq!(format_age(59), "59s");
        assert_eq!(format_age(600), "10m");
        assert_eq!(format_age(3 * 3600), "3h");
        assert_eq!(format_age(5 * 86400), "5d");
    }
}
