//! Stored documents, enums and typed ids. No HTTP types here.

pub mod appointment;
pub mod hospital;
pub mod ids;
pub mod iso;
pub mod patient;
pub mod permission;
pub mod user;

pub use ids::*;
