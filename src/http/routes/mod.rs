//! One module per resource, each exposing `router()` with its handlers and DTOs.

pub mod auth;
pub mod health;
pub mod permissions;
pub mod users;
