//! Stored documents, enums and typed ids. No HTTP types here.

pub mod ids;
pub mod permission;
pub mod user;

pub use ids::*;
