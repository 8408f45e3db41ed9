//! Async I/O only. Each source owns its connection, retries with backoff and sends owned
//! [`Update`]s over a channel; nothing here touches the UI state. The messages themselves are
//! plain data in model/update.rs, so the app and the UI need nothing from here.

pub mod api_get;
pub mod api_traffic;
pub mod broker;
pub mod cadvisor;
pub mod gateway;
pub mod http;
pub mod kube;
pub mod local_log;
pub mod mesh;
pub mod placement;
pub mod prometheus;

pub use crate::model::update::{SourceId, SourceState, Update};
