//! The `travel` collection: one travel record per patient, keyed by the
//! patient's id.

use mongodb::{bson::doc, ClientSession, Collection, Database};

use crate::{
    domain::{travel::Travel, PatientId},
    error::{AppError, Result},
};

#[derive(Clone)]
pub struct TravelRepo {
    coll: Collection<Travel>,
}

impl TravelRepo {
    pub fn new(db: &Database) -> Self {
        TravelRepo {
            coll: db.collection("travel"),
        }
    }

    /// Records whose arrival is in `from..before`, earliest first, at most
    /// `limit`.
    pub async fn arriving(
        &self,
        from: mongodb::bson::DateTime,
        before: mongodb::bson::DateTime,
        limit: i64,
    ) -> Result<Vec<Travel>> {
        use futures::TryStreamExt;
        Ok(self
            .coll
            .find(doc! { "arrival.at": { "$gte": from, "$lt": before } })
            .sort(doc! { "arrival.at": 1, "_id": 1 })
            .limit(limit)
            .await?
            .try_collect()
            .await?)
    }

    pub async fn find(&self, patient: PatientId) -> Result<Option<Travel>> {
        Ok(self.coll.find_one(doc! { "_id": patient }).await?)
    }

    /// The first record of a patient; 409 when another request made it first.
    pub async fn insert(&self, s: &mut ClientSession, t: &Travel) -> Result<()> {
        match self.coll.insert_one(t).session(s).await {
            Ok(_) => Ok(()),
            Err(e) if crate::db::is_duplicate_key(&e) => Err(AppError::conflict(
                "the travel record was created meanwhile; reload and send its version",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the record if it is still at `expected_version`.
    pub async fn replace(
        &self,
        s: &mut ClientSession,
        t: &Travel,
        expected_version: i64,
    ) -> Result<bool> {
        let res = self
            .coll
            .replace_one(doc! { "_id": t.patient_id, "version": expected_version }, t)
            .session(s)
            .await?;
        Ok(res.matched_count == 1)
    }
}
