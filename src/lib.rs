//! kpulse: which container is the bottleneck, and why.
//!
//! Data flows one way: `sources` (async I/O) → `model` (plain data) → `analysis` (pure rules) →
//! `app` (state + update) → `ui` (draw) or `report` (`kpulse snapshot`). `demo` is the simulated
//! cluster; `cli`, `tui` and `snapshot` wire it up.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod completion;
pub mod config;
pub mod demo;
pub mod heap;
pub mod kubeconfig;
pub mod logging;
pub mod model;
pub mod report;
pub mod snapshot;
pub mod sources;
pub mod tui;
pub mod ui;
