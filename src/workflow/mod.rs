//! The business workflows: the rules that span repositories, each
//! multi-document write in one transaction.
//!
//! Handlers parse and validate a request, call one function here and shape
//! the response. Workflows take a [`Ctx`] (repositories, clock, config), never
//! HTTP types or the application state, so tests, the seed binary, the doctor
//! and the benchmarks call them without a router. Repositories remain the only
//! code that builds MongoDB filters.

pub mod access;
pub mod appointments;
pub mod arrivals;
pub mod credentials;
pub mod doctor;
pub mod documents;
pub mod faults;
pub mod follow;
pub mod history;
pub mod holds;
pub mod hospitals;
pub mod idempotency;
pub mod names;
pub mod patients;
pub mod quotes;
pub mod reports;
pub mod travel;
pub mod treatments;
pub mod tx;
pub mod users;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use mongodb::{Client, Database};

use crate::{config::Config, repo::Repos};

pub use faults::Faults;

/// Where "now" comes from: the system clock, or a fixed instant in tests.
#[derive(Clone, Default)]
pub struct Clock {
    fixed: Option<DateTime<Utc>>,
}

impl Clock {
    pub fn system() -> Self {
        Clock { fixed: None }
    }

    pub fn fixed(at: DateTime<Utc>) -> Self {
        Clock { fixed: Some(at) }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }

    pub fn now_bson(&self) -> mongodb::bson::DateTime {
        mongodb::bson::DateTime::from_chrono(self.now())
    }

    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

/// What every workflow needs. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub client: Client,
    pub repos: Repos,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub faults: Faults,
    pub gate: tx::Gate,
    /// Reports and dashboards by their parameters and the data's write
    /// counts; shared by every clone.
    pub report_cache: reports::ReportCache,
    /// User and hospital names for responses; shared by every clone.
    pub names: names::NameCache,
    /// The document store; `None` without `DOCUMENT_KEY` (the server does
    /// not start so; the tools that never touch documents do).
    pub vault: Option<crate::storage::Vault>,
}

impl Ctx {
    pub fn new(db: &Database, config: Arc<Config>) -> Self {
        Ctx {
            client: db.client().clone(),
            repos: Repos::new(db),
            clock: Clock::system(),
            faults: Faults::default(),
            gate: tx::Gate::new(db.client().clone(), config.transaction_gate),
            report_cache: reports::ReportCache::new(
                config.report_cache_poll,
                config.report_cache_entries,
            ),
            names: names::NameCache::new(config.name_cache_ttl),
            vault: crate::storage::Vault::open(&config).unwrap_or_else(|e| {
                // `main` opens the vault before serving and stops on this.
                tracing::error!("{e}");
                None
            }),
            config,
        }
    }
}
