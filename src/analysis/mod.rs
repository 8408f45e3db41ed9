//! Pure analysis over the model: health rules, per-node aggregation, the gateway joins and the
//! hotspot ranking that brings them together.

pub mod health;
pub mod hotspots;
pub mod nodes;
pub mod traffic;
