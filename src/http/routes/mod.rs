//! One module per resource, each exposing `router()` with its handlers and DTOs.

pub mod health;
