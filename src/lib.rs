//! healthcrm: the JSON REST API of a CRM for a medical-tourism facilitator.
//!
//! `main.rs` and the extra binaries are thin; everything they share lives here.

pub mod auth;
#[cfg(feature = "bench")]
pub mod bench;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod migrate;
pub mod repo;
pub mod seed;
pub mod server;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod workflow;

pub use http::build_app;
pub use state::AppState;
