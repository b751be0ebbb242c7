//! The `guards` collection: one small document per invariant that spans
//! many documents ("some active admin can manage permissions").
//!
//! A transaction that checks such an invariant and then writes first
//! touches its guard. Two transactions that both touch it cannot both
//! commit on MongoDB (the second meets a write conflict and is retried, and
//! its retry reads what the first committed), so a check and its write act
//! as one step even where snapshot isolation alone would let two checks
//! pass side by side (two admins deactivating each other at once).

use mongodb::{
    bson::{doc, Document},
    ClientSession, Collection, Database,
};

use crate::error::Result;

/// The guard of the last-admin rule.
pub const ADMINS: &str = "admins";

#[derive(Clone)]
pub struct GuardsRepo {
    coll: Collection<Document>,
}

impl GuardsRepo {
    pub fn new(db: &Database) -> Self {
        GuardsRepo {
            coll: db.collection("guards"),
        }
    }

    /// Writes guard `name` in the transaction `s`.
    pub async fn touch(&self, s: &mut ClientSession, name: &str) -> Result<()> {
        self.coll
            .update_one(doc! { "_id": name }, doc! { "$inc": { "seq": 1_i64 } })
            .upsert(true)
            .session(s)
            .await?;
        Ok(())
    }
}
