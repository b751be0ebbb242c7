//! The `permissions` collection: one document per role with its rules.

use futures::TryStreamExt;
use mongodb::{
    bson::{doc, DateTime},
    options::ReplaceOptions,
    ClientSession, Collection, Database,
};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{permission::Rule, user::Role},
    error::Result,
};

/// A rule as stored, with who last set it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRule {
    pub method: String,
    pub path: String,
    pub allow: bool,
    pub updated_at: Option<DateTime>,
    pub updated_by: Option<crate::domain::UserId>,
    /// True while the rule is exactly as the seed file set it.
    #[serde(default)]
    pub from_seed: bool,
}

impl StoredRule {
    pub fn rule(&self) -> Rule {
        Rule {
            method: self.method.clone(),
            path: self.path.clone(),
            allow: self.allow,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleRules {
    pub role: Role,
    pub rules: Vec<StoredRule>,
}

#[derive(Clone)]
pub struct PermissionsRepo {
    coll: Collection<RoleRules>,
}

impl PermissionsRepo {
    pub fn new(db: &Database) -> Self {
        PermissionsRepo {
            coll: db.collection("permissions"),
        }
    }

    pub async fn all(&self) -> Result<Vec<RoleRules>> {
        Ok(self
            .coll
            .find(doc! {})
            .sort(doc! { "role": 1 })
            .await?
            .try_collect()
            .await?)
    }

    /// Every role's rules as the transaction `s` sees them.
    pub async fn all_in(&self, s: &mut ClientSession) -> Result<Vec<RoleRules>> {
        Ok(self
            .coll
            .find(doc! {})
            .sort(doc! { "role": 1 })
            .session(&mut *s)
            .await?
            .stream(s)
            .try_collect()
            .await?)
    }

    pub async fn for_role(&self, role: Role) -> Result<Option<RoleRules>> {
        Ok(self.coll.find_one(doc! { "role": role.as_str() }).await?)
    }

    /// A role's rules as the transaction `s` sees them.
    pub async fn for_role_in(
        &self,
        s: &mut ClientSession,
        role: Role,
    ) -> Result<Option<RoleRules>> {
        Ok(self
            .coll
            .find_one(doc! { "role": role.as_str() })
            .session(s)
            .await?)
    }

    /// Replaces a role's whole rule list (one single-document write).
    pub async fn replace(
        &self,
        s: &mut ClientSession,
        role: Role,
        rules: Vec<StoredRule>,
    ) -> Result<()> {
        self.coll
            .replace_one(doc! { "role": role.as_str() }, RoleRules { role, rules })
            .with_options(ReplaceOptions::builder().upsert(true).build())
            .session(s)
            .await?;
        Ok(())
    }
}
