//! One module per resource, each exposing `router()` with its handlers and DTOs.

pub mod appointments;
pub mod audit;
pub mod auth;
pub mod documents;
pub mod earnings;
pub mod health;
pub mod hospitals;
pub mod metrics;
pub mod patients;
pub mod permissions;
pub mod quotes;
pub mod reports;
pub mod travel;
pub mod treatments;
pub mod users;
