//! Display names of users and hospitals, for the `*_name` fields beside
//! every id in a response.
//!
//! Users and hospitals are few (hundreds), so the cache holds all of them:
//! one projection query each, repeated at most once per TTL
//! (`NAME_CACHE_TTL_MS`), never a query per row. A rename or a new record
//! made through this process shows at once (its workflow invalidates the
//! cache); one made by another instance shows within the TTL. When the
//! database cannot be read, the last names are served for another TTL (a
//! slow database is not asked again by every waiting request).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
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
    /// When the snapshot was taken (`None`: reload before use), and it.
    current: RwLock<(Option<Instant>, Arc<Names>)>,
    /// Bumped by every invalidation: a reload that began before one does
    /// not store what it read.
    generation: AtomicU64,
    /// One reload at a time; the others wait for it and take its result.
    reload: tokio::sync::Mutex<()>,
}

impl NameCache {
    pub fn new(ttl: Duration) -> Self {
        NameCache {
            inner: Arc::new(Inner {
                ttl,
                current: RwLock::new((None, Arc::default())),
                generation: AtomicU64::new(0),
                reload: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn fresh(&self) -> Option<Arc<Names>> {
        let current = self.inner.current.read().unwrap_or_else(|p| p.into_inner());
        match current.0 {
            Some(at) if at.elapsed() < self.inner.ttl => Some(current.1.clone()),
            _ => None,
        }
    }

    fn store(&self, generation: u64, names: Arc<Names>) {
        let mut current = self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if self.inner.generation.load(Ordering::SeqCst) == generation {
            *current = (Some(Instant::now()), names);
        }
    }

    /// The names as of at most one TTL ago, reloading them when older. A
    /// failed reload is logged and the last names serve for another TTL.
    pub async fn get(&self, repos: &Repos) -> Arc<Names> {
        if let Some(names) = self.fresh() {
            crate::metrics::cache_lookup("names", true);
            return names;
        }
        crate::metrics::cache_lookup("names", false);
        let _one = self.inner.reload.lock().await;
        if let Some(names) = self.fresh() {
            return names;
        }
        let generation = self.inner.generation.load(Ordering::SeqCst);
        match load(repos).await {
            Ok(names) => {
                let names = Arc::new(names);
                self.store(generation, names.clone());
                names
            }
            Err(e) => {
                tracing::warn!(error = %e, "names could not be reloaded; serving the last ones");
                let last = self.last();
                self.store(generation, last.clone());
                last
            }
        }
    }

    /// The last snapshot, however old.
    pub fn last(&self) -> Arc<Names> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Forgets the snapshot: the next read reloads (after a rename here).
    pub fn invalidate(&self) {
        let mut current = self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner());
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        current.0 = None;
    }
}

async fn load(repos: &Repos) -> Result<Names> {
    let (users, hospitals) = tokio::try_join!(repos.users.names(), repos.hospitals.names())?;
    Ok(Names {
        users: users.into_iter().collect(),
        hospitals: hospitals.into_iter().collect(),
    })
}
