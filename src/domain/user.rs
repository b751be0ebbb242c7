//! Staff accounts.

use mongodb::bson::{oid::ObjectId, DateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{permission::Rule, UserId};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Staff,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Admin, Role::Staff];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "staff" => Some(Role::Staff),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
