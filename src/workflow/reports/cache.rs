//! Reports, dashboards and earnings summaries kept until what they read
//! changes.
//!
//! Every write to a collection the reports read counts itself in the
//! `generations` document, in the writer's transaction
//! (`repo::generations`). A computed report is kept under its parameters
//! together with the counts of the collections it reads; the next request
//! with the same parameters and the same counts is answered from memory,
//! and its [`Tag`] (the response's `ETag`) is the same, so a client holding
//! it gets a 304.
//!
//! Reading the counts is itself a query, so an instance reuses the counts it
//! read for up to `REPORT_CACHE_POLL_MS`, unless it committed a transaction
//! since: its own writes show at once, another instance's within the poll
//! interval. A poll interval of 0 reads them for every request; no entries
//! (`REPORT_CACHE_ENTRIES=0`) computes every request.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::{
    error::Result,
    repo::generations::{Generations, Source},
    workflow::Ctx,
};

/// What a cached value was computed from: its key and the write counts of
/// the collections it reads. Equal tags mean equal figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    key: String,
    counts: Generations,
}

impl Tag {
    /// `key` (the parameters, and the day where the figures depend on it)
    /// over the counts of `reads` in `all`.
    pub fn new(key: String, reads: &[Source], all: Generations) -> Tag {
        let mut counts = Generations::default();
        for s in reads {
            counts.0[*s as usize] = all.of(*s);
        }
        Tag { key, counts }
    }

    /// Sixteen hex digits naming the figures, for an `ETag`: the same on
    /// every instance of this version for the same key and counts.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION"));
        h.update([0]);
        h.update(&self.key);
        for n in self.counts.0 {
            h.update(n.to_be_bytes());
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

struct Seen {
    counts: Generations,
    at: Instant,
    /// [`Inner::commits`] when they were read.
    commits: u64,
}

struct Slot<V> {
    tag: Tag,
    value: OnceCell<Arc<V>>,
    used: AtomicU64,
}

/// One kind of cached value, by key.
struct Memo<V> {
    slots: HashMap<String, Arc<Slot<V>>>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo {
            slots: HashMap::new(),
        }
    }
}

impl<V> Memo<V> {
    /// The slot for `tag`: the kept one when its counts still match,
    /// otherwise a new empty one in its place. With `capacity` slots taken,
    /// the least recently used goes first.
    fn slot(&mut self, tag: &Tag, capacity: usize, tick: u64) -> Arc<Slot<V>> {
        if let Some(slot) = self.slots.get(&tag.key) {
            if slot.tag == *tag {
                slot.used.store(tick, Ordering::Relaxed);
                return slot.clone();
            }
        }
        if !self.slots.contains_key(&tag.key) && self.slots.len() >= capacity {
            let oldest = self
                .slots
                .iter()
                .min_by_key(|(_, s)| s.used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.slots.remove(&k);
            }
        }
        let slot = Arc::new(Slot {
            tag: tag.clone(),
            value: OnceCell::new(),
            used: AtomicU64::new(tick),
        });
        self.slots.insert(tag.key.clone(), slot.clone());
        slot
    }
}

struct Inner {
    /// Transactions this process has committed (see [`Commits`]).
    commits: Arc<AtomicU64>,
    seen: Mutex<Option<Seen>>,
    reports: Mutex<Memo<super::Report>>,
    dashboards: Mutex<Memo<super::Dashboard>>,
    summaries: Mutex<Memo<Vec<crate::repo::treatments::SummaryEntry>>>,
    ticks: AtomicU64,
    poll: Duration,
    capacity: usize,
}

/// Counts the transactions this process commits; the cache re-reads the
/// write counts after each.
#[derive(Clone, Default)]
pub struct Commits(Arc<AtomicU64>);

impl Commits {
    pub fn committed(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// Shared by every clone of the workflow context.
#[derive(Clone)]
pub struct ReportCache {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one still
    // holds consistent data (every update is a single assignment).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ReportCache {
    pub fn new(poll: Duration, capacity: usize) -> Self {
        ReportCache {
            inner: Arc::new(Inner {
                commits: Arc::new(AtomicU64::new(0)),
                seen: Mutex::new(None),
                reports: Mutex::default(),
                dashboards: Mutex::default(),
                summaries: Mutex::default(),
                ticks: AtomicU64::new(0),
                poll,
                capacity,
            }),
        }
    }

    /// What each transaction of this process reports its commit to.
    pub fn commits(&self) -> Commits {
        Commits(self.inner.commits.clone())
    }

    /// The write counts: the ones read last while they are younger than
    /// the poll interval and no local transaction has committed since;
    /// otherwise read now.
    pub async fn generations(&self, ctx: &Ctx) -> Result<Generations> {
        let commits = self.inner.commits.load(Ordering::Acquire);
        if let Some(seen) = lock(&self.inner.seen).as_ref() {
            if seen.commits == commits && seen.at.elapsed() < self.inner.poll {
                return Ok(seen.counts);
            }
        }
        let counts = ctx.repos.generations.read().await?;
        // The commit count was taken before the read: a commit that lands
        // meanwhile makes the next request read again.
        *lock(&self.inner.seen) = Some(Seen {
            counts,
            at: Instant::now(),
            commits,
        });
        Ok(counts)
    }

    pub(super) async fn report<F>(&self, tag: &Tag, compute: F) -> Result<Arc<super::Report>>
    where
        F: Future<Output = Result<super::Report>>,
    {
        self.get(&self.inner.reports, "report", tag, compute).await
    }

    pub(super) async fn dashboard<F>(&self, tag: &Tag, compute: F) -> Result<Arc<super::Dashboard>>
    where
        F: Future<Output = Result<super::Dashboard>>,
    {
        self.get(&self.inner.dashboards, "dashboard", tag, compute)
            .await
    }

    pub(super) async fn summary<F>(
        &self,
        tag: &Tag,
        compute: F,
    ) -> Result<Arc<Vec<crate::repo::treatments::SummaryEntry>>>
    where
        F: Future<Output = Result<Vec<crate::repo::treatments::SummaryEntry>>>,
    {
        self.get(&self.inner.summaries, "earnings_summary", tag, compute)
            .await
    }

    /// The value kept under `tag`, or `compute`d and kept. Requests for the
    /// same tag arriving together share one computation.
    async fn get<V, F>(
        &self,
        memo: &Mutex<Memo<V>>,
        name: &'static str,
        tag: &Tag,
        compute: F,
    ) -> Result<Arc<V>>
    where
        F: Future<Output = Result<V>>,
    {
        if self.inner.capacity == 0 {
            crate::metrics::cache_lookup(name, false);
            return compute.await.map(Arc::new);
        }
        let tick = self.inner.ticks.fetch_add(1, Ordering::Relaxed);
        let slot = lock(memo).slot(tag, self.inner.capacity, tick);
        crate::metrics::cache_lookup(name, slot.value.initialized());
        let value = slot
            .value
            .get_or_try_init(|| async { compute.await.map(Arc::new) })
            .await?;
        Ok(value.clone())
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        lock(&self.inner.reports).slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str, counts: [i64; 4], reads: &[Source]) -> Tag {
        Tag::new(key.into(), reads, Generations(counts))
    }

    #[test]
    fn a_tag_changes_with_the_counts_it_reads_only() {
        let patients = [Source::Patients];
        let base = tag("k", [1, 2, 3, 4], &patients);
        assert_eq!(base, tag("k", [1, 9, 9, 9], &patients));
        assert_eq!(base.digest(), tag("k", [1, 9, 9, 9], &patients).digest());
        assert_ne!(base.digest(), tag("k", [2, 2, 3, 4], &patients).digest());
        assert_ne!(base.digest(), tag("j", [1, 2, 3, 4], &patients).digest());
        assert_eq!(base.digest().len(), 16);
    }

    #[test]
    fn the_least_recently_used_slot_makes_room() {
        let mut memo: Memo<u8> = Memo::default();
        let reads = [Source::Patients];
        let a = memo.slot(&tag("a", [0; 4], &reads), 2, 1);
        memo.slot(&tag("b", [0; 4], &reads), 2, 2);
        // `a` is used again, so `b` is the oldest when `c` arrives.
        assert!(Arc::ptr_eq(&a, &memo.slot(&tag("a", [0; 4], &reads), 2, 3)));
        memo.slot(&tag("c", [0; 4], &reads), 2, 4);
        assert!(memo.slots.contains_key("a") && memo.slots.contains_key("c"));
        assert!(!memo.slots.contains_key("b"));
        // New counts replace the slot in place.
        let a2 = memo.slot(&tag("a", [1; 4], &reads), 2, 5);
        assert!(!Arc::ptr_eq(&a, &a2));
        assert_eq!(memo.slots.len(), 2);
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_kept() {
        let cache = ReportCache::new(Duration::from_secs(60), 4);
        let t = tag("x", [0; 4], &[Source::Patients]);
        let failed = cache
            .dashboard(&t, async { Err(crate::error::AppError::internal("down")) })
            .await;
        assert!(failed.is_err());
        assert_eq!(cache.kept(), 0);
        let slot = lock(&cache.inner.dashboards).slot(&t, 4, 9);
        assert!(!slot.value.initialized(), "the next request computes again");
    }
}
