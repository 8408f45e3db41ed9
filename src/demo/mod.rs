//! The embedded simulated cluster: scenario → simulation → Kubernetes wire protocol on loopback.

pub mod scenario;
pub mod server;
pub mod sim;
pub mod store;
