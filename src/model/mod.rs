//! Plain data and pure functions: no I/O, no async, no terminal.

pub mod accesslog;
pub mod api_cost;
pub mod broker;
pub mod bytes;
pub mod cadvisor;
pub mod event;
pub mod exposition;
pub mod keyed;
pub mod mesh;
pub mod metrics;
pub mod node;
pub mod pod;
pub mod promql;
pub mod quantity;
pub mod replicas;
pub mod series;
pub mod service;
pub mod sketch;
pub mod store;
pub mod time;
pub mod traffic;
pub mod update;
