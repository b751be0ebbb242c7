//! The `history` collection: every change to a patient's record and to its
//! appointments and treatments, with the changed fields before and after.

use mongodb::{
    bson::{doc, oid::ObjectId, DateTime, Document},
    ClientSession, Collection, Database,
};
use serde::{Deserialize, Serialize};

use super::PageRequest;
use crate::{
    domain::{PatientId, UserId},
    error::Result,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// 24-hex string, like every stored id.
    #[serde(rename = "_id")]
    pub id: String,
    /// `patient`, `appointment` or `treatment`.
    pub entity: String,
    pub entity_id: String,
    pub patient_id: PatientId,
    /// `create`, `update`, `status_change`, `assign_hospital`, `delete`, `restore`.
    pub action: String,
    pub actor_id: UserId,
    pub at: DateTime,
    /// `{field: {before, after}}`.
    pub changes: Document,
}

impl HistoryEntry {
    pub fn new(
        entity: &str,
        entity_id: String,
        patient_id: PatientId,
        action: &str,
        actor_id: UserId,
        changes: Document,
        at: DateTime,
    ) -> Self {
        HistoryEntry {
            id: ObjectId::new().to_hex(),
            entity: entity.into(),
            entity_id,
            patient_id,
            action: action.into(),
            actor_id,
            at,
            changes,
        }
    }
}

#[derive(Clone)]
pub struct HistoryRepo {
    coll: Collection<HistoryEntry>,
}

impl HistoryRepo {
    pub fn new(db: &Database) -> Self {
        HistoryRepo {
            coll: db.collection("history"),
        }
    }

    pub async fn record(&self, s: &mut ClientSession, entry: HistoryEntry) -> Result<()> {
        self.coll.insert_one(entry).session(s).await?;
        Ok(())
    }

    /// Every entry about a patient record itself (the consistency check).
    pub async fn scan_patient_entries(&self) -> Result<mongodb::Cursor<HistoryEntry>> {
        Ok(self.coll.find(doc! { "entity": "patient" }).await?)
    }

    pub async fn for_patient(
        &self,
        id: PatientId,
        page: PageRequest,
    ) -> Result<(Vec<HistoryEntry>, u64)> {
        let filter = doc! { "patient_id": id };
        let (items, total) =
            super::paged(&self.coll, filter, doc! { "at": 1, "_id": 1 }, page).await?;
        Ok((items, total))
    }
}
