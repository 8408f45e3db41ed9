//! Any string as a Kubernetes quantity: an error or a finite number, never a panic.
#![no_main]

#[path = "../../src/model/quantity.rs"]
#[allow(dead_code)]
mod quantity;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(v) = quantity::parse_quantity(text)
    {
        assert!(v.is_finite());
    }
});
