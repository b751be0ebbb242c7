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

/// Cheap to clone: everything inside is reference-counted.
#[derive(Clone)]
pub struct AppState {
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
        let config = Arc::new(config);
        let workflows = Ctx::new(&db, config.clone());
        let background = tokio_util::task::TaskTracker::new();
        let audit = crate::http::audit_log::AuditLog::new(
            workflows.repos.audit.clone(),
            workflows.gate.clone(),
            background.clone(),
            config.audit_queue_capacity,
        );
        AppState {
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
        }
    }
}
