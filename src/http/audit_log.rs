//! Where audit events go once a request is answered: a bounded writer, and
//! a per-minute tally of calls refused for want of a valid token.
//!
//! - **Bounded.** `AUDIT_QUEUE_CAPACITY` slots: a request to a protected
//!   route takes one before its handler runs and its event keeps it until
//!   written. When the database is slow and every slot is busy, the next
//!   request waits for one instead of another task piling up in memory:
//!   back-pressure on the clients. Because the slot is taken first, a
//!   handler that has done its work hands its event over without waiting,
//!   so a client that gives up cannot leave its access unrecorded. A failed
//!   write is retried, and one that still fails is logged as an error with
//!   what it was about (never silently lost).
//! - **Batched.** Events handed over are collected for up to
//!   [`BATCH_WINDOW`] (or until [`BATCH_MAX`] are waiting) and written with
//!   one `insert_many`, so under load a read costs its own query plus a
//!   share of one insert rather than an insert of its own. Each event keeps
//!   its slot until its batch is written; the batches are background tasks
//!   of the server's tracker, so the drain at shutdown writes them all.
//! - **Tallied.** A refused call without a valid token is not an event of
//!   its own: it is counted per client, method, route and status in the
//!   current minute, and each minute's counts are written as one
//!   `auth.refused` event per key carrying `details.count`. A flood of
//!   unauthenticated calls costs a counter increment each, and the audit
//!   collection grows by one event per client and route per minute. Past
//!   `MAX_KEYS` keys in a minute, further clients are counted together
//!   under the client `*`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use mongodb::bson::{doc, oid::ObjectId, DateTime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::{
    auth::rate_limit::ClientKey,
    repo::audit::{AuditEvent, AuditRepo},
    workflow::tx::Gate,
};

/// Distinct (client, route) keys tallied per minute before clients merge.
const MAX_KEYS: usize = 10_000;
/// Write attempts per event before it is logged as lost.
const ATTEMPTS: u32 = 4;
/// How long handed-over events wait for others to share their insert.
pub const BATCH_WINDOW: Duration = Duration::from_millis(25);
/// Events that make a batch due before its window ends; also the most one
/// `insert_many` carries.
pub const BATCH_MAX: usize = 100;

/// Events handed over and not yet taken by a batch, with their slots.
#[derive(Default)]
struct Pending {
    events: Vec<AuditEvent>,
    slots: Vec<OwnedSemaphorePermit>,
    /// Whether a batch task is on its way to take them.
    scheduled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RefusedKey {
    client: String,
    method: String,
    route: String,
    status: u16,
}

#[derive(Default)]
struct Tally {
    minute: i64,
    counts: HashMap<RefusedKey, u64>,
}

#[derive(Clone)]
pub struct AuditLog {
    repo: AuditRepo,
    gate: Gate,
    background: TaskTracker,
    slots: Arc<Semaphore>,
    capacity: usize,
    tally: Arc<Mutex<Tally>>,
    pending: Arc<Mutex<Pending>>,
    /// Wakes the waiting batch early once [`BATCH_MAX`] events wait.
    full: Arc<tokio::sync::Notify>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl AuditLog {
    pub fn new(repo: AuditRepo, gate: Gate, background: TaskTracker, capacity: usize) -> Self {
        AuditLog {
            repo,
            gate,
            background,
            slots: Arc::new(Semaphore::new(capacity.max(1))),
            capacity: capacity.max(1),
            tally: Arc::default(),
            pending: Arc::default(),
            full: Arc::default(),
        }
    }

    /// Events waiting for or being written (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }

    /// Writes `event` in the background; waits while every slot is busy.
    /// (Not for a request that already holds a slot: see [`Self::slot`].)
    pub async fn submit(&self, event: AuditEvent) {
        self.submit_all(vec![event]).await;
    }

    /// A writer slot, waiting while all are busy. `None` only if the writer
    /// was closed, which nothing does.
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    async fn submit_all(&self, events: Vec<AuditEvent>) {
        if events.is_empty() {
            return;
        }
        let slot = self.slot().await;
        self.submit_in(slot, events);
    }

    /// Writes `events` in the background with a slot already taken: they
    /// join the batch being collected, or start one.
    pub fn submit_in(&self, slot: Option<OwnedSemaphorePermit>, events: Vec<AuditEvent>) {
        crate::metrics::audit_queue_add(events.len() as f64);
        let (start, due) = {
            let mut p = lock(&self.pending);
            p.events.extend(events);
            p.slots.extend(slot);
            let start = !p.scheduled;
            p.scheduled = true;
            (start, p.events.len() >= BATCH_MAX)
        };
        if due {
            self.full.notify_one();
        }
        if start {
            let (repo, gate) = (self.repo.clone(), self.gate.clone());
            let (pending, full) = (self.pending.clone(), self.full.clone());
            self.background.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(BATCH_WINDOW) => {}
                    _ = full.notified() => {}
                }
                let (events, slots) = {
                    let mut p = lock(&pending);
                    p.scheduled = false;
                    (std::mem::take(&mut p.events), std::mem::take(&mut p.slots))
                };
                for batch in events.chunks(BATCH_MAX) {
                    write(&repo, &gate, batch).await;
                    crate::metrics::audit_queue_add(-(batch.len() as f64));
                }
                drop(slots);
            });
        }
    }

    /// Counts a call refused without a valid token.
    pub async fn refused(&self, client: Option<ClientKey>, method: &str, route: &str, status: u16) {
        let minute = DateTime::now().timestamp_millis().div_euclid(60_000);
        let closed = {
            let mut tally = lock(&self.tally);
            let closed = if tally.minute != minute {
                let old = std::mem::take(&mut *tally);
                tally.minute = minute;
                Some(old)
            } else {
                None
            };
            let mut key = RefusedKey {
                client: client.map_or_else(|| "unknown".to_owned(), |c| c.to_string()),
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            };
            if tally.counts.len() >= MAX_KEYS && !tally.counts.contains_key(&key) {
                key.client = "*".to_owned();
            }
            *tally.counts.entry(key).or_insert(0) += 1;
            closed
        };
        if let Some(old) = closed {
            self.submit_all(events_of(old)).await;
        }
    }

    /// Writes the tallies of minutes that have ended (`all`: the current
    /// one too, at shutdown). The server calls this every few seconds, so a
    /// minute's tally is written even if no later refusal comes.
    pub async fn flush_tally(&self, all: bool) {
        let minute = DateTime::now().timestamp_millis().div_euclid(60_000);
        let closed = {
            let mut tally = lock(&self.tally);
            (all || tally.minute < minute).then(|| std::mem::take(&mut *tally))
        };
        if let Some(old) = closed {
            self.submit_all(events_of(old)).await;
        }
    }
}

/// One `auth.refused` event per key of a minute's tally.
fn events_of(tally: Tally) -> Vec<AuditEvent> {
    let from = DateTime::from_millis(tally.minute.saturating_mul(60_000));
    let to = DateTime::from_millis(tally.minute.saturating_add(1).saturating_mul(60_000));
    tally
        .counts
        .into_iter()
        .map(|(key, count)| AuditEvent {
            id: ObjectId::new(),
            at: DateTime::now(),
            actor_id: None,
            role: None,
            action: "auth.refused".to_owned(),
            method: key.method,
            route: key.route,
            status: i32::from(key.status),
            target_ids: Vec::new(),
            patient_ids: Vec::new(),
            request_id: String::new(),
            ip: Some(key.client),
            details: Some(doc! {
                "count": i64::try_from(count).unwrap_or(i64::MAX),
                "from": from,
                "to": to,
            }),
        })
        .collect()
}

/// Writes `events`, retrying with a growing pause; what still fails is
/// logged as an error, event by event.
async fn write(repo: &AuditRepo, gate: &Gate, events: &[AuditEvent]) {
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        let result = {
            // Outside any transaction: where the deployment does not isolate
            // them, wait for the one running so its abort cannot undo this.
            let _turn = gate.shared().await;
            repo.record_many(events).await
        };
        match result {
            Ok(()) => return,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "audit write failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 4;
            }
            Err(e) => {
                for event in events {
                    tracing::error!(
                        error = %e,
                        action = %event.action,
                        route = %event.route,
                        request_id = %event.request_id,
                        actor_id = ?event.actor_id.map(|a| a.to_string()),
                        patients = event.patient_ids.len(),
                        "audit event could not be written"
                    );
                }
            }
        }
    }
}
