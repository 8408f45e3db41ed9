//! Any text as the user's config file (~/.config/kpulse/config.toml): no panic, and what is
//! accepted is bounded (intervals, history) so a typo can neither spin nor ask for gigabytes.
#![no_main]

use kpulse::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(c) = Config::from_user_toml(text) else { return };
    for interval in [c.refresh_interval, c.metrics_interval, c.cadvisor_full_interval] {
        assert!(!interval.is_zero() && interval.as_secs() <= 3600, "{interval:?}");
    }
    assert!(!c.retention.is_zero() && c.retention.as_secs() <= 360 * 60);
    assert!(["dark", "light", "mono"].contains(&c.theme.as_str()));
    // Key bindings are checked where the app reads them: a bad one is a problem listed, not a panic.
    let (_keymap, problems) = kpulse::app::keymap::KeyMap::new(&c.keys);
    assert!(problems.len() <= c.keys.len());
});
