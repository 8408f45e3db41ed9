//! Plain data and pure functions: no I/O, no async, no terminal.

pub mod event;
pub mod metrics;
pub mod node;
pub mod pod;
pub mod quantity;
pub mod series;
pub mod store;
pub mod time;
