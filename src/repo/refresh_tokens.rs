//! The `refresh_tokens` collection: only SHA-256 hashes of the opaque tokens
//! are stored, grouped in families (one family per login) for reuse
//! detection. A TTL index removes expired tokens.

use mongodb::{
    bson::{doc, oid::ObjectId, DateTime},
    ClientSession, Collection, Database,
};
use serde::{Deserialize, Serialize};

use crate::{domain::UserId, error::Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshTokenDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub token_hash: String,
    pub user_id: UserId,
    pub family_id: String,
    pub expires_at: DateTime,
    pub created_at: DateTime,
    pub spent_at: Option<DateTime>,
    pub revoked_at: Option<DateTime>,
}

#[derive(Clone)]
pub struct RefreshTokensRepo {
    coll: Collection<RefreshTokenDoc>,
}

impl RefreshTokensRepo {
    pub fn new(db: &Database) -> Self {
        RefreshTokensRepo {
            coll: db.collection("refresh_tokens"),
        }
    }

    pub async fn insert(
        &self,
        user_id: UserId,
        family_id: &str,
        token_hash: String,
        expires_at: DateTime,
    ) -> Result<()> {
        let doc = RefreshTokenDoc {
            id: ObjectId::new(),
            token_hash,
            user_id,
            family_id: family_id.to_owned(),
            expires_at,
            created_at: DateTime::now(),
            spent_at: None,
            revoked_at: None,
        };
        self.coll.insert_one(doc).await?;
        Ok(())
    }

    pub async fn find_by_hash(&self, token_hash: &str) -> Result<Option<RefreshTokenDoc>> {
        Ok(self
            .coll
            .find_one(doc! { "token_hash": token_hash })
            .await?)
    }

    /// Marks the token spent if, and only if, it is still unspent and not
    /// revoked. `false` means someone else spent it first (a replay).
    pub async fn spend(&self, id: ObjectId) -> Result<bool> {
        let res = self
            .coll
            .update_one(
                doc! { "_id": id, "spent_at": { "$eq": null }, "revoked_at": { "$eq": null } },
                doc! { "$currentDate": { "spent_at": true } },
            )
            .await?;
        Ok(res.modified_count == 1)
    }

    pub async fn revoke_family(&self, family_id: &str) -> Result<u64> {
        let res = self
            .coll
            .update_many(
                doc! { "family_id": family_id, "revoked_at": { "$eq": null } },
                doc! { "$currentDate": { "revoked_at": true } },
            )
            .await?;
        Ok(res.modified_count)
    }

    pub async fn revoke_all_for_user(&self, s: &mut ClientSession, user_id: UserId) -> Result<u64> {
        let res = self
            .coll
            .update_many(
                doc! { "user_id": user_id, "revoked_at": { "$eq": null } },
                doc! { "$currentDate": { "revoked_at": true } },
            )
            .session(s)
            .await?;
        Ok(res.modified_count)
    }

    /// Revokes one token of `user_id`'s; `false` when there was none to revoke.
    pub async fn revoke_one(&self, token_hash: &str, user_id: UserId) -> Result<bool> {
        let res = self
            .coll
            .update_one(
                doc! { "token_hash": token_hash, "user_id": user_id, "revoked_at": { "$eq": null } },
                doc! { "$currentDate": { "revoked_at": true } },
            )
            .await?;
        Ok(res.modified_count == 1)
    }
}
