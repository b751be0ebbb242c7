//! The `idempotency_keys` collection: one record per (user, key), claimed
//! before the work it guards and completed in that work's transaction.
//! A TTL index on `expires_at` lets MongoDB forget them.

use mongodb::{
    bson::{doc, DateTime},
    ClientSession, Collection, Database,
};
use serde::{Deserialize, Serialize};

use crate::{
    domain::UserId,
    error::{AppError, Result},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    /// SHA-256 of the user id and the key, hex.
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: UserId,
    /// SHA-256 of the request (method, path and body), hex.
    pub fingerprint: String,
    /// `running` or `done`.
    pub state: String,
    /// Who holds the claim: a new random value per claim.
    pub token: String,
    /// The stored response, once `done`.
    pub status: Option<i32>,
    pub body: Option<String>,
    pub created_at: DateTime,
    pub expires_at: DateTime,
    /// A `running` claim older than this was abandoned (its process died).
    pub lease_until: DateTime,
}

#[derive(Clone)]
pub struct IdempotencyRepo {
    coll: Collection<KeyRecord>,
}

impl IdempotencyRepo {
    pub fn new(db: &Database) -> Self {
        IdempotencyRepo {
            coll: db.collection("idempotency_keys"),
        }
    }

    /// Inserts a new claim; `false` when a record with that id exists.
    pub async fn insert(&self, record: &KeyRecord) -> Result<bool> {
        match self.coll.insert_one(record).await {
            Ok(_) => Ok(true),
            Err(e) if crate::db::is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn find(&self, id: &str) -> Result<Option<KeyRecord>> {
        Ok(self.coll.find_one(doc! { "_id": id }).await?)
    }

    /// Takes over an abandoned or expired record, as it was seen (`old`);
    /// `false` when it changed meanwhile (for instance its request
    /// finished and stored a response).
    pub async fn take_over(&self, old: &KeyRecord, record: &KeyRecord) -> Result<bool> {
        let seen = doc! {
            "_id": &record.id,
            "token": &old.token,
            "state": &old.state,
            "expires_at": old.expires_at,
        };
        let res = self.coll.replace_one(seen, record).await?;
        Ok(res.matched_count == 1)
    }

    /// Stores the response in `s` (the work's own transaction); `false` when
    /// the claim is no longer this token's.
    pub async fn complete(
        &self,
        s: &mut ClientSession,
        id: &str,
        token: &str,
        status: u16,
        body: &str,
    ) -> Result<bool> {
        let res = self
            .coll
            .update_one(
                doc! { "_id": id, "token": token, "state": "running" },
                doc! { "$set": { "state": "done", "status": i32::from(status), "body": body } },
            )
            .session(s)
            .await
            .map_err(AppError::from)?;
        Ok(res.matched_count == 1)
    }

    /// Drops a claim whose work failed, so the client may retry.
    pub async fn release(&self, id: &str, token: &str) -> Result<()> {
        self.coll
            .delete_one(doc! { "_id": id, "token": token, "state": "running" })
            .await?;
        Ok(())
    }
}
