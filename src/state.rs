//! Shared application state handed to every handler and middleware.

use std::{sync::Arc, time::Duration};

use mongodb::Database;

use crate::{
    auth::{
        cache::{PermissionCache, PrincipalCache},
        jwt::JwtKeys,
        lockout::UnknownAccounts,
        password::Hasher,
        rate_limit::RateLimiter,
    },
    config::Config,
    repo::Repos,
    workflow::Ctx,
};

/// Cheap to clone: one reference count. Axum clones the state for every
/// extractor and middleware layer of every request; as a struct of a
/// dozen reference-counted handles (and the JWT keys' allocations) those
/// clones and drops were about 15% of the server's CPU on an authenticated
/// read (docs/benchmarks.md, the profile of 2026-11-26).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] shares; its fields are read through `Deref`.
pub struct Shared {
    pub db: Database,
    pub config: Arc<Config>,
    pub repos: Repos,
    /// What the workflows run with (the same repositories).
    pub workflows: Ctx,
    pub jwt: JwtKeys,
    pub hasher: Hasher,
    pub principals: PrincipalCache,
    pub permissions: PermissionCache,
    pub auth_rate_limit: RateLimiter,
    /// The lockout for emails with no account.
    pub unknown_accounts: UnknownAccounts,
    /// Writes finished after the response (audit events); shutdown waits
    /// for them.
    pub background: tokio_util::task::TaskTracker,
    /// The bounded audit writer and the refused-call tally.
    pub audit: crate::http::audit_log::AuditLog,
}

impl AppState {
    pub fn new(db: Database, config: Config) -> Self {
        Self::build(db, config, None)
    }

    /// The state with the workflows' clock set to `clock` (tests fix it).
    pub fn with_clock(db: Database, config: Config, clock: crate::workflow::Clock) -> Self {
        Self::build(db, config, Some(clock))
    }

    fn build(db: Database, config: Config, clock: Option<crate::workflow::Clock>) -> Self {
        let config = Arc::new(config);
        let mut workflows = Ctx::new(&db, config.clone());
        if let Some(clock) = clock {
            workflows.clock = clock;
        }
        let background = tokio_util::task::TaskTracker::new();
        let audit = crate::http::audit_log::AuditLog::new(
            workflows.repos.audit.clone(),
            workflows.gate.clone(),
            background.clone(),
            config.audit_queue_capacity,
        );
        AppState(Arc::new(Shared {
            repos: workflows.repos.clone(),
            workflows,
            jwt: JwtKeys::new(config.jwt_secret_bytes()),
            hasher: Hasher::new(config.password_hash_concurrency, Duration::from_secs(10)),
            principals: PrincipalCache::new(config.user_cache_ttl),
            permissions: PermissionCache::new(config.permission_cache_ttl),
            auth_rate_limit: RateLimiter::per_minute(config.auth_rate_limit_per_minute),
            unknown_accounts: UnknownAccounts::default(),
            audit,
            background,
            db,
            config,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
