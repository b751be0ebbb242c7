//! Shared application state handed to every handler and middleware.

use std::sync::Arc;

use mongodb::Database;

use crate::config::Config;

/// Cheap to clone: everything inside is reference-counted.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub config: Arc<Config>,
}

impl AppState {
    pub fn new(db: Database, config: Config) -> Self {
        AppState {
            db,
            config: Arc::new(config),
        }
    }
}
