//! Staff accounts.

use mongodb::bson::{oid::ObjectId, DateTime};

pub use super::role::Role;
use super::{permission::Rule, UserId};

/// A user as the rest of the service sees it: never the password hash.
#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub permission_overrides: Vec<Rule>,
    pub active: bool,
    pub token_version: i64,
    pub failed_logins: i32,
    pub locked_at: Option<DateTime>,
    pub avatar_file_id: Option<ObjectId>,
    pub created_at: DateTime,
    pub created_by: Option<UserId>,
    pub updated_at: DateTime,
    pub updated_by: Option<UserId>,
}

impl User {
    /// The end of the current lockout, if the account is locked at `now`.
    pub fn locked_until(&self, lockout: std::time::Duration, now: DateTime) -> Option<DateTime> {
        let locked_at = self.locked_at?;
        let until = DateTime::from_millis(
            locked_at
                .timestamp_millis()
                .saturating_add(i64::try_from(lockout.as_millis()).unwrap_or(i64::MAX)),
        );
        (until > now).then_some(until)
    }
}
