//! Display names of users and hospitals, for the `*_name` fields beside
//! every id in a response.
//!
//! Users and hospitals are few (hundreds), so the cache holds all of them:
//! one projection query each, repeated at most once per TTL
//! (`NAME_CACHE_TTL_SECS`), never a query per row. A rename or a new record
//! made through this process shows at once (its workflow invalidates the
//! cache); one made by another instance shows within the TTL.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use crate::{
    domain::{HospitalId, UserId},
    error::Result,
    repo::Repos,
};

/// One snapshot of every user's and hospital's name.
#[derive(Debug, Default)]
pub struct Names {
    users: HashMap<UserId, String>,
    hospitals: HashMap<HospitalId, String>,
}

impl Names {
    pub fn user(&self, id: UserId) -> Option<String> {
        self.users.get(&id).cloned()
    }

    pub fn hospital(&self, id: HospitalId) -> Option<String> {
        self.hospitals.get(&id).cloned()
    }
}

/// The shared cache (cheap to clone).
#[derive(Clone)]
pub struct NameCache {
    inner: Arc<Inner>,
}

struct Inner {
    ttl: Duration,
    current: RwLock<Option<(Instant, Arc<Names>)>>,
    /// One reload at a time; the others wait for it and take its result.
    reload: tokio::sync::Mutex<()>,
}

impl NameCache {
    pub fn new(ttl: Duration) -> Self {
        NameCache {
            inner: Arc::new(Inner {
                ttl,
                current: RwLock::new(None),
                reload: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn fresh(&self) -> Option<Arc<Names>> {
        let current = self.inner.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.inner.ttl)
            .map(|(_, names)| names.clone())
    }

    /// The names as of at most one TTL ago, reloading them when older.
    pub async fn get(&self, repos: &Repos) -> Result<Arc<Names>> {
        if let Some(names) = self.fresh() {
            return Ok(names);
        }
        let _one = self.inner.reload.lock().await;
        if let Some(names) = self.fresh() {
            return Ok(names);
        }
        let (users, hospitals) = tokio::try_join!(repos.users.names(), repos.hospitals.names())?;
        let names = Arc::new(Names {
            users: users.into_iter().collect(),
            hospitals: hospitals.into_iter().collect(),
        });
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), names.clone()));
        Ok(names)
    }

    /// The last snapshot, however old (when a reload fails).
    pub fn last(&self) -> Arc<Names> {
        let current = self.inner.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .map(|(_, names)| names.clone())
            .unwrap_or_default()
    }

    /// Forgets the snapshot: the next read reloads (after a rename here).
    pub fn invalidate(&self) {
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }
}
