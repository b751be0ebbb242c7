//! The append-only `audit_events` collection. This module only inserts and
//! reads; nothing in the service updates or deletes an audit event.

use mongodb::{
    bson::{oid::ObjectId, DateTime, Document},
    Collection, Database,
};
use serde::{Deserialize, Serialize};

use crate::{domain::UserId, error::Result};

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

    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        self.coll.insert_one(event).await?;
        Ok(())
    }

    pub async fn find(&self, filter: Document, limit: i64) -> Result<Vec<AuditEvent>> {
        use futures::TryStreamExt;
        Ok(self
            .coll
            .find(filter)
            .sort(mongodb::bson::doc! { "at": -1, "_id": -1 })
            .limit(limit)
            .await?
            .try_collect()
            .await?)
    }
}
