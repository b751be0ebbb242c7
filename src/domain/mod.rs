//! Stored documents, enums and typed ids. No HTTP types here.

pub mod appointment;
pub mod dates;
pub mod document;
pub mod hospital;
pub mod ids;
pub mod iso;
pub mod money;
pub mod patient;
pub mod permission;
pub mod quote;
pub mod role;
pub mod travel;
pub mod treatment;
pub mod user;
pub mod zone;

pub use ids::*;
