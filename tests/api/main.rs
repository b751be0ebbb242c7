//! The one integration-test binary. Every test spawns its own app on its own
//! freshly named database (dropped afterwards) and drives it in-process.

mod helpers;

mod appointments;
#[cfg(feature = "faults")]
mod atomicity;
mod audit;
mod auth;
mod bounds;
mod calendars;
mod connections;
mod conventions;
mod cors;
mod crash;
#[cfg(feature = "faults")]
mod deletion_races;
mod doctor;
mod documents;
mod documents_streaming;
mod errors;
mod faults;
mod health;
mod hospitals;
mod hostile;
mod idempotency;
mod metrics;
mod migrations;
mod names;
mod patients;
mod permissions;
mod quotes;
mod report_cache;
mod reports;
mod seed;
#[cfg(feature = "otel")]
mod telemetry;
mod time_zones;
mod travel;
mod treatments;
mod users;
