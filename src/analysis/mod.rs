//! Pure analysis over the model: health rules and per-node aggregation.

pub mod health;
pub mod nodes;
pub mod traffic;
