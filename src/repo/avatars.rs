//! Profile images in the `avatars` collection, one document per image.
//!
//! Images are at most 2 MiB, far below MongoDB's 16 MiB document limit, so
//! they are stored whole as BSON binary rather than in GridFS chunks: the
//! local stand-in keeps GridFS files in its own store with a string
//! `uploadDate` that the Rust driver's GridFS download cannot read (see the
//! README's compatibility notes). A plain document behaves the same on both.

use mongodb::{
    bson::{doc, oid::ObjectId, spec::BinarySubtype, Binary, DateTime},
    Collection, Database,
};
use serde::{Deserialize, Serialize};

use crate::{domain::UserId, error::Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AvatarDoc {
    #[serde(rename = "_id")]
    id: ObjectId,
    user_id: UserId,
    content_type: String,
    size: i64,
    data: Binary,
    created_at: DateTime,
}

/// A stored image.
pub struct Avatar {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Clone)]
pub struct AvatarsRepo {
    coll: Collection<AvatarDoc>,
}

impl AvatarsRepo {
    pub fn new(db: &Database) -> Self {
        AvatarsRepo {
            coll: db.collection("avatars"),
        }
    }

    pub async fn store(
        &self,
        user_id: UserId,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<ObjectId> {
        let doc = AvatarDoc {
            id: ObjectId::new(),
            user_id,
            content_type: content_type.to_owned(),
            size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            data: Binary {
                subtype: BinarySubtype::Generic,
                bytes: bytes.to_vec(),
            },
            created_at: DateTime::now(),
        };
        self.coll.insert_one(&doc).await?;
        Ok(doc.id)
    }

    pub async fn load(&self, id: ObjectId) -> Result<Option<Avatar>> {
        Ok(self
            .coll
            .find_one(doc! { "_id": id })
            .await?
            .map(|d| Avatar {
                content_type: d.content_type,
                bytes: d.data.bytes,
            }))
    }

    /// Removes an image; an already missing one is not an error.
    pub async fn delete(&self, id: ObjectId) -> Result<()> {
        self.coll.delete_one(doc! { "_id": id }).await?;
        Ok(())
    }
}
