//! Any text as a scenario file (`kpulse demo --scenario FILE`): no panic, and what is accepted is
//! bounded (pods, nodes) and numerically sane (finite, non-negative rates, a period above 0), so
//! the simulator can neither abort on an allocation nor spread NaN.
#![no_main]

#[path = "../../src/model/quantity.rs"]
#[allow(dead_code)]
pub mod quantity;
#[path = "../../src/model/mesh.rs"]
pub mod mesh;
/// scenario.rs reads quantities and the mesh's names through `crate::model`.
mod model {
    pub use crate::mesh;
    pub use crate::quantity;
}
#[path = "../../src/demo/scenario.rs"]
#[allow(dead_code)]
mod scenario;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(s) = scenario::Scenario::parse(text) else { return };
    let pods: u64 = s.services.iter().map(|svc| u64::from(svc.replicas)).sum();
    assert!(pods <= u64::from(scenario::MAX_PODS));
    assert!(s.load.base_rps.is_finite() && s.load.base_rps >= 0.0);
    assert!(s.load.period_secs.is_finite() && s.load.period_secs > 0.0);
    for svc in &s.services {
        assert!(svc.share.is_finite() && svc.share >= 0.0);
    }
});
