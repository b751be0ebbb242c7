//! In-memory caches for the request path.
//!
//! - [`PrincipalCache`]: per-user role, active flag, token version and
//!   overrides, so authenticating a request needs no database read. Every
//!   change this instance makes to a user invalidates their entry at once;
//!   the short TTL bounds how long another instance can lag.
//! - [`PermissionCache`]: the role matrix. Replaced right after an admin
//!   changes it, and refreshed in the background once older than its TTL so
//!   several instances converge without a database read on the hot path.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use crate::{
    domain::{
        permission::{Matrix, Rule},
        user::{Role, User},
        UserId,
    },
    error::Result,
    repo::{permissions::PermissionsRepo, users::UsersRepo},
};

/// What the request path needs to know about the caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub id: UserId,
    pub role: Role,
    pub active: bool,
    pub token_version: i64,
    pub overrides: Arc<[Rule]>,
    /// The profile's time zone (`None`: UTC, or a stored name no longer known).
    pub time_zone: Option<crate::domain::zone::Tz>,
}

impl From<&User> for Principal {
    fn from(u: &User) -> Self {
        Principal {
            id: u.id,
            role: u.role,
            active: u.active,
            token_version: u.token_version,
            overrides: u.permission_overrides.clone().into(),
            time_zone: u.time_zone.as_deref().and_then(crate::domain::zone::parse),
        }
    }
}

const MAX_CACHED_USERS: usize = 10_000;

#[derive(Clone)]
pub struct PrincipalCache {
    ttl: Duration,
    entries: Arc<RwLock<HashMap<UserId, (Principal, Instant)>>>,
}

impl PrincipalCache {
    pub fn new(ttl: Duration) -> Self {
        PrincipalCache {
            ttl,
            entries: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// The cached principal, or a fresh read (`None`: no such user).
    pub async fn get(&self, id: UserId, users: &UsersRepo) -> Result<Option<Principal>> {
        if let Ok(entries) = self.entries.read() {
            if let Some((p, at)) = entries.get(&id) {
                if at.elapsed() < self.ttl {
                    crate::metrics::cache_lookup("users", true);
                    return Ok(Some(p.clone()));
                }
            }
        }
        crate::metrics::cache_lookup("users", false);
        let Some(user) = users.find(id).await? else {
            self.invalidate(id);
            return Ok(None);
        };
        let principal = Principal::from(&user);
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_CACHED_USERS {
                entries.clear();
            }
            entries.insert(id, (principal.clone(), Instant::now()));
        }
        Ok(Some(principal))
    }

    pub fn invalidate(&self, id: UserId) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(&id);
        }
    }
}

struct Loaded {
    matrix: Arc<Matrix>,
    at: Instant,
}

#[derive(Clone)]
pub struct PermissionCache {
    ttl: Duration,
    loaded: Arc<RwLock<Option<Loaded>>>,
    refreshing: Arc<AtomicBool>,
}

impl PermissionCache {
    pub fn new(ttl: Duration) -> Self {
        PermissionCache {
            ttl,
            loaded: Arc::new(RwLock::new(None)),
            refreshing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The current matrix. Only the very first call reads the database in
    /// line; a stale matrix is served while a background task reloads it.
    pub async fn get(&self, repo: &PermissionsRepo) -> Result<Arc<Matrix>> {
        let current = self.loaded.read().ok().and_then(|l| {
            l.as_ref()
                .map(|l| (l.matrix.clone(), l.at.elapsed() >= self.ttl))
        });
        crate::metrics::cache_lookup("permissions", matches!(current, Some((_, false))));
        match current {
            Some((matrix, false)) => Ok(matrix),
            Some((matrix, true)) => {
                if !self.refreshing.swap(true, Ordering::AcqRel) {
                    let cache = self.clone();
                    let repo = repo.clone();
                    tokio::spawn(async move {
                        if let Err(e) = cache.reload(&repo).await {
                            tracing::warn!(error = %e, "permission matrix refresh failed");
                        }
                        cache.refreshing.store(false, Ordering::Release);
                    });
                }
                Ok(matrix)
            }
            None => self.reload(repo).await,
        }
    }

    /// Reads the matrix from the database now (after an admin change).
    pub async fn reload(&self, repo: &PermissionsRepo) -> Result<Arc<Matrix>> {
        let roles = repo.all().await?;
        let matrix = Arc::new(Matrix::from_roles(
            roles
                .into_iter()
                .map(|r| (r.role, r.rules.iter().map(|s| s.rule()).collect())),
        ));
        if let Ok(mut loaded) = self.loaded.write() {
            *loaded = Some(Loaded {
                matrix: matrix.clone(),
                at: Instant::now(),
            });
        }
        Ok(matrix)
    }
}
