//! The append-only `audit_events` collection. This module only inserts and
//! reads; nothing in the service updates or deletes an audit event.

use mongodb::{
    bson::{doc, oid::ObjectId, DateTime, Document},
    ClientSession, Collection, Database,
};
use serde::{Deserialize, Serialize};

use super::PageRequest;
use crate::{domain::UserId, error::Result};

/// What `GET /audit` and a patient's access log filter on.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor_id: Option<UserId>,
    pub patient_id: Option<String>,
    pub action: Option<String>,
    pub from: Option<DateTime>,
    /// Exclusive upper bound.
    pub before: Option<DateTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub at: DateTime,
    pub actor_id: Option<UserId>,
    pub role: Option<String>,
    /// What happened, e.g. `auth.login`, `permissions.update`.
    pub action: String,
    pub method: String,
    pub route: String,
    pub status: i32,
    #[serde(default)]
    pub target_ids: Vec<String>,
    #[serde(default)]
    pub patient_ids: Vec<String>,
    pub request_id: String,
    pub ip: Option<String>,
    /// Non-sensitive specifics (e.g. a permission change's before/after).
    /// Never medical details, passwords or tokens.
    pub details: Option<Document>,
}

#[derive(Clone)]
pub struct AuditRepo {
    coll: Collection<AuditEvent>,
}

impl AuditRepo {
    pub fn new(db: &Database) -> Self {
        AuditRepo {
            coll: db.collection("audit_events"),
        }
    }

    /// Records `event` in `s` (the transaction of the change it describes).
    pub async fn record_in(&self, s: &mut ClientSession, event: &AuditEvent) -> Result<()> {
        self.coll.insert_one(event).session(s).await?;
        Ok(())
    }

    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        self.coll.insert_one(event).await?;
        Ok(())
    }

    /// Inserts `events`. Re-inserting one already written is not an error
    /// (a retry after a lost reply): the ids are the events' own.
    pub async fn record_many(&self, events: &[AuditEvent]) -> Result<()> {
        match self.coll.insert_many(events).ordered(false).await {
            Ok(_) => Ok(()),
            Err(e) if only_duplicates(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list(&self, f: &AuditFilter, page: PageRequest) -> Result<(Vec<AuditEvent>, u64)> {
        let mut filter = doc! {};
        if let Some(v) = f.actor_id {
            filter.insert("actor_id", v);
        }
        if let Some(v) = &f.patient_id {
            filter.insert("patient_ids", v);
        }
        if let Some(v) = &f.action {
            filter.insert("action", v);
        }
        let mut at = doc! {};
        if let Some(from) = f.from {
            at.insert("$gte", from);
        }
        if let Some(before) = f.before {
            at.insert("$lt", before);
        }
        if !at.is_empty() {
            filter.insert("at", at);
        }
        let (items, total) =
            super::paged(&self.coll, filter, doc! { "at": -1, "_id": -1 }, page).await?;
        Ok((items, total))
    }
}

/// Whether every write error of an unordered insert was a duplicate `_id`.
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::InsertMany(failure) => {
            failure.write_concern_error.is_none()
                && failure
                    .write_errors
                    .as_ref()
                    .is_some_and(|errs| errs.iter().all(|w| w.code == 11000))
        }
        _ => false,
    }
}
