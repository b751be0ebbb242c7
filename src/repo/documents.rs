//! The `documents` collection: each document's metadata (the bytes are in
//! the document store, `crate::storage`).

use mongodb::{
    bson::{doc, Bson},
    ClientSession, Collection, Database,
};

use super::PageRequest;
use crate::{
    domain::{
        document::{Category, Document},
        DocumentId, PatientId,
    },
    error::Result,
};

#[derive(Clone)]
pub struct DocumentsRepo {
    coll: Collection<Document>,
}

/// Which of a patient's documents a list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct DocumentFilter {
    pub category: Option<Category>,
    /// The deleted ones (the restore screen) instead of the live ones.
    pub deleted: bool,
}

impl DocumentsRepo {
    pub fn new(db: &Database) -> Self {
        DocumentsRepo {
            coll: db.collection("documents"),
        }
    }

    pub async fn insert(&self, s: &mut ClientSession, d: &Document) -> Result<()> {
        self.coll.insert_one(d).session(s).await?;
        Ok(())
    }

    pub async fn find(&self, id: DocumentId) -> Result<Option<Document>> {
        Ok(self.coll.find_one(doc! { "_id": id }).await?)
    }

    /// A page of the patient's documents, newest first.
    pub async fn for_patient(
        &self,
        patient: PatientId,
        filter: DocumentFilter,
        page: PageRequest,
    ) -> Result<(Vec<Document>, u64)> {
        let mut f = doc! {
            "patient_id": patient,
            "deleted_at": if filter.deleted { doc! { "$ne": Bson::Null } } else { doc! { "$eq": Bson::Null } },
        };
        if let Some(c) = filter.category {
            f.insert("category", doc! { "$eq": c.as_str() });
        }
        super::paged(&self.coll, f, doc! { "created_at": -1, "_id": -1 }, page).await
    }

    /// Saves `d` (deleted or live again) if the stored one is in the other
    /// state; false when it is not (someone else got there first).
    pub async fn set_deleted(&self, s: &mut ClientSession, d: &Document) -> Result<bool> {
        let was = if d.deleted_at.is_some() {
            doc! { "$eq": Bson::Null }
        } else {
            doc! { "$ne": Bson::Null }
        };
        let res = self
            .coll
            .replace_one(doc! { "_id": d.id, "deleted_at": was }, d)
            .session(s)
            .await?;
        Ok(res.matched_count == 1)
    }
}
