//! The `users` collection. Password hashes stay inside this module: callers
//! get [`User`], and the hash only through [`UsersRepo::credentials_by_email`].
//!
//! Timestamps are written with `$currentDate`, never `$set` of a date value
//! (see the README's MongoDB compatibility notes).

use futures::TryStreamExt;
use mongodb::{
    bson::{doc, oid::ObjectId, to_bson, DateTime, Document},
    options::{FindOneAndUpdateOptions, ReturnDocument},
    ClientSession, Collection, Database,
};
use serde::{Deserialize, Serialize};

use super::{regex_escape, PageRequest};
use crate::{
    db,
    domain::{
        permission::Rule,
        user::{Role, User},
        UserId,
    },
    error::{AppError, Result},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserDoc {
    #[serde(rename = "_id")]
    id: UserId,
    name: String,
    email: String,
    password_hash: String,
    role: Role,
    #[serde(default)]
    permission_overrides: Vec<Rule>,
    #[serde(deserialize_with = "db::lenient_bool")]
    active: bool,
    token_version: i64,
    #[serde(default)]
    failed_logins: i32,
    /// When the latest counted login attempt began.
    #[serde(default)]
    login_attempt_at: Option<DateTime>,
    avatar_file_id: Option<ObjectId>,
    #[serde(default)]
    time_zone: Option<String>,
    created_at: DateTime,
    created_by: Option<UserId>,
    updated_at: DateTime,
    updated_by: Option<UserId>,
    last_login_at: Option<DateTime>,
}

impl From<UserDoc> for User {
    fn from(d: UserDoc) -> Self {
        User {
            id: d.id,
            name: d.name,
            email: d.email,
            role: d.role,
            permission_overrides: d.permission_overrides,
            active: d.active,
            token_version: d.token_version,
            failed_logins: d.failed_logins,
            login_attempt_at: d.login_attempt_at,
            avatar_file_id: d.avatar_file_id,
            time_zone: d.time_zone,
            created_at: d.created_at,
            created_by: d.created_by,
            updated_at: d.updated_at,
            updated_by: d.updated_by,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub permission_overrides: Vec<Rule>,
    pub created_by: Option<UserId>,
}

/// Fields an update may change; `None` leaves a field as it is.
#[derive(Default, Clone)]
pub struct UserChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub permission_overrides: Option<Vec<Rule>>,
    pub active: Option<bool>,
    pub password_hash: Option<String>,
    /// `Some(None)` clears it (back to UTC).
    pub time_zone: Option<Option<String>>,
    /// Invalidates every access token issued so far.
    pub bump_token_version: bool,
}

/// The outcome of [`UsersRepo::claim_login_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// Counted: the password may be checked. The count includes this one.
    Counted(i32),
    /// Every attempt of the streak is spent (some may still be running).
    Locked { until: DateTime },
}

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub q: Option<String>,
    /// `q` matches the name only (the directory, which shows no e-mails).
    pub name_only: bool,
}

#[derive(Clone)]
pub struct UsersRepo {
    coll: Collection<UserDoc>,
}

impl UsersRepo {
    pub fn new(db: &Database) -> Self {
        UsersRepo {
            coll: db.collection("users"),
        }
    }

    /// Creates an account outside any transaction (the seed, tests).
    pub async fn create(&self, new: NewUser) -> Result<User> {
        let mut session = self.coll.client().start_session().await?;
        self.create_in(&mut session, new).await
    }

    #[tracing::instrument(skip_all)]
    pub async fn create_in(&self, s: &mut ClientSession, new: NewUser) -> Result<User> {
        let now = DateTime::now();
        let doc = UserDoc {
            id: UserId::new(),
            name: new.name,
            email: new.email.to_lowercase(),
            password_hash: new.password_hash,
            role: new.role,
            permission_overrides: new.permission_overrides,
            active: true,
            token_version: 0,
            failed_logins: 0,
            login_attempt_at: None,
            avatar_file_id: None,
            time_zone: None,
            created_at: now,
            created_by: new.created_by,
            updated_at: now,
            updated_by: new.created_by,
            last_login_at: None,
        };
        self.coll
            .insert_one(&doc)
            .session(s)
            .await
            .map_err(|e| AppError::unique_violation(e, "email"))?;
        Ok(doc.into())
    }

    pub async fn find(&self, id: UserId) -> Result<Option<User>> {
        Ok(self
            .coll
            .find_one(doc! { "_id": id })
            .await?
            .map(User::from))
    }

    /// The user and their password hash, for verifying a login only.
    pub async fn credentials_by_email(&self, email: &str) -> Result<Option<(User, String)>> {
        let found = self
            .coll
            .find_one(doc! { "email": email.to_lowercase() })
            .await?;
        Ok(found.map(|d| {
            let hash = d.password_hash.clone();
            (User::from(d), hash)
        }))
    }

    /// The stored hash of one user, for checking their current password.
    pub async fn password_hash(&self, id: UserId) -> Result<Option<String>> {
        Ok(self
            .coll
            .find_one(doc! { "_id": id })
            .await?
            .map(|d| d.password_hash))
    }

    fn filter(f: &UserFilter) -> Document {
        let mut filter = doc! {};
        if let Some(role) = f.role {
            filter.insert("role", role.as_str());
        }
        if let Some(active) = f.active {
            filter.insert("active", active);
        }
        if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let pattern = regex_escape(q);
            if f.name_only {
                filter.insert("name", doc! { "$regex": &pattern, "$options": "i" });
                return filter;
            }
            filter.insert(
                "$or",
                vec![
                    doc! { "name": { "$regex": &pattern, "$options": "i" } },
                    doc! { "email": { "$regex": &pattern, "$options": "i" } },
                ],
            );
        }
        filter
    }

    /// Every user's id and name (the name cache).
    pub async fn names(&self) -> Result<Vec<(UserId, String)>> {
        super::id_names(&self.coll, doc! {}).await
    }

    pub async fn list(&self, f: &UserFilter, page: PageRequest) -> Result<(Vec<User>, u64)> {
        let filter = Self::filter(f);
        let (docs, total) =
            super::paged(&self.coll, filter, doc! { "created_at": 1, "_id": 1 }, page).await?;
        Ok((docs.into_iter().map(User::from).collect(), total))
    }

    /// Applies `changes` in one single-document update; `None` when the user
    /// does not exist.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn update(
        &self,
        s: &mut ClientSession,
        id: UserId,
        changes: UserChanges,
        by: Option<UserId>,
    ) -> Result<Option<User>> {
        let mut set = doc! { "updated_by": by };
        if let Some(name) = changes.name {
            set.insert("name", name);
        }
        if let Some(zone) = changes.time_zone {
            set.insert("time_zone", zone);
        }
        if let Some(email) = changes.email {
            set.insert("email", email.to_lowercase());
        }
        if let Some(role) = changes.role {
            set.insert("role", role.as_str());
        }
        if let Some(rules) = changes.permission_overrides {
            set.insert(
                "permission_overrides",
                to_bson(&rules).map_err(AppError::internal)?,
            );
        }
        if let Some(active) = changes.active {
            set.insert("active", active);
        }
        if let Some(hash) = changes.password_hash {
            set.insert("password_hash", hash);
            // A new password also lifts a lockout.
            set.insert("failed_logins", 0);
            set.insert("login_attempt_at", mongodb::bson::Bson::Null);
        }
        let mut update = doc! { "$set": set, "$currentDate": { "updated_at": true } };
        if changes.bump_token_version {
            update.insert("$inc", doc! { "token_version": 1_i64 });
        }
        let options = FindOneAndUpdateOptions::builder()
            .return_document(ReturnDocument::After)
            .build();
        let updated = self
            .coll
            .find_one_and_update(doc! { "_id": id }, update)
            .with_options(options)
            .session(s)
            .await
            .map_err(|e| AppError::unique_violation(e, "email"))?;
        Ok(updated.map(User::from))
    }

    pub async fn delete(&self, s: &mut ClientSession, id: UserId) -> Result<bool> {
        Ok(self
            .coll
            .delete_one(doc! { "_id": id })
            .session(s)
            .await?
            .deleted_count
            == 1)
    }

    /// Counts a password attempt before the password is checked, so a burst
    /// of concurrent guesses cannot test more than `threshold` passwords:
    /// the count and the check are one conditional update. A lockout whose
    /// latest attempt is older than `lockout` is lifted first.
    pub async fn claim_login_attempt(
        &self,
        id: UserId,
        threshold: i32,
        lockout: std::time::Duration,
        now: DateTime,
    ) -> Result<LoginAttempt> {
        if let Some(count) = self.try_claim(id, threshold).await? {
            return Ok(LoginAttempt::Counted(count));
        }
        let cutoff = DateTime::from_millis(
            now.timestamp_millis()
                .saturating_sub(i64::try_from(lockout.as_millis()).unwrap_or(i64::MAX)),
        );
        self.coll
            .update_one(
                doc! {
                    "_id": id,
                    "failed_logins": { "$gte": threshold },
                    "login_attempt_at": { "$lte": cutoff },
                },
                doc! { "$set": { "failed_logins": 0 } },
            )
            .await?;
        // Claimed again whether or not this call lifted it: a concurrent
        // attempt may have lifted it first and left attempts to claim.
        if let Some(count) = self.try_claim(id, threshold).await? {
            return Ok(LoginAttempt::Counted(count));
        }
        let latest = self
            .coll
            .find_one(doc! { "_id": id })
            .await?
            .and_then(|d| d.login_attempt_at)
            .unwrap_or(now);
        Ok(LoginAttempt::Locked {
            until: crate::domain::user::lockout_end(latest, lockout),
        })
    }

    async fn try_claim(&self, id: UserId, threshold: i32) -> Result<Option<i32>> {
        let options = FindOneAndUpdateOptions::builder()
            .return_document(ReturnDocument::After)
            .build();
        let after = self
            .coll
            .find_one_and_update(
                doc! { "_id": id, "failed_logins": { "$lt": threshold } },
                doc! {
                    "$inc": { "failed_logins": 1 },
                    "$currentDate": { "login_attempt_at": true },
                },
            )
            .with_options(options)
            .await?;
        Ok(after.map(|d| d.failed_logins))
    }

    /// A correct password: the streak of counted attempts ends.
    pub async fn reset_login_attempts(&self, id: UserId) -> Result<()> {
        self.coll
            .update_one(
                // `$gt`, not `$ne: 0`: the stand-in's update filters leave
                // a missing field out of `$ne` (the count is never negative).
                doc! { "_id": id, "failed_logins": { "$gt": 0 } },
                doc! { "$set": { "failed_logins": 0, "login_attempt_at": mongodb::bson::Bson::Null } },
            )
            .await?;
        Ok(())
    }

    pub async fn record_successful_login(&self, id: UserId) -> Result<()> {
        self.coll
            .update_one(
                doc! { "_id": id },
                doc! {
                    "$set": { "failed_logins": 0, "login_attempt_at": mongodb::bson::Bson::Null },
                    "$currentDate": { "last_login_at": true },
                },
            )
            .await?;
        Ok(())
    }

    /// Points the user at a new avatar file; returns the previous file id.
    pub async fn set_avatar(
        &self,
        id: UserId,
        file_id: ObjectId,
        by: UserId,
    ) -> Result<Option<Option<ObjectId>>> {
        let before = self
            .coll
            .find_one_and_update(
                doc! { "_id": id },
                doc! {
                    "$set": { "avatar_file_id": file_id, "updated_by": by },
                    "$currentDate": { "updated_at": true },
                },
            )
            .await?;
        Ok(before.map(|d| d.avatar_file_id))
    }

    /// The id of every account (the consistency check).
    pub async fn all_ids(&self) -> Result<Vec<UserId>> {
        let docs: Vec<UserDoc> = self.coll.find(doc! {}).await?.try_collect().await?;
        Ok(docs.into_iter().map(|d| d.id).collect())
    }

    /// Every active admin account.
    pub async fn active_admins(&self) -> Result<Vec<User>> {
        let docs: Vec<UserDoc> = self
            .coll
            .find(doc! { "role": "admin", "active": true })
            .await?
            .try_collect()
            .await?;
        Ok(docs.into_iter().map(User::from).collect())
    }

    /// Every active admin account, as the transaction `s` sees them.
    pub async fn active_admins_in(&self, s: &mut ClientSession) -> Result<Vec<User>> {
        let docs: Vec<UserDoc> = self
            .coll
            .find(doc! { "role": "admin", "active": true })
            .session(&mut *s)
            .await?
            .stream(s)
            .try_collect()
            .await?;
        Ok(docs.into_iter().map(User::from).collect())
    }

    pub async fn find_in(&self, s: &mut ClientSession, id: UserId) -> Result<Option<User>> {
        Ok(self
            .coll
            .find_one(doc! { "_id": id })
            .session(s)
            .await?
            .map(User::from))
    }

    /// Whether some admin account is active (the seed restores one if not).
    pub async fn active_admin_exists(&self) -> Result<bool> {
        Ok(self
            .coll
            .find_one(doc! { "role": "admin", "active": true })
            .await?
            .is_some())
    }
}
