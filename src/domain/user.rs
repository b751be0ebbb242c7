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
    /// Login attempts counted in the current streak (each is counted before
    /// its password is checked; a correct password resets the streak).
    pub failed_logins: i32,
    /// When the latest counted attempt began.
    pub login_attempt_at: Option<DateTime>,
    pub avatar_file_id: Option<ObjectId>,
    /// IANA name of the user's time zone (`domain::zone`): what "today"
    /// means on their follow-up queue, dashboard and reports. None: UTC.
    pub time_zone: Option<String>,
    pub created_at: DateTime,
    pub created_by: Option<UserId>,
    pub updated_at: DateTime,
    pub updated_by: Option<UserId>,
}

impl User {
    /// The end of the current lockout, if the account is locked at `now`:
    /// `threshold` attempts have been counted and the latest is less than
    /// `lockout` old.
    pub fn locked_until(
        &self,
        threshold: i32,
        lockout: std::time::Duration,
        now: DateTime,
    ) -> Option<DateTime> {
        if self.failed_logins < threshold {
            return None;
        }
        let until = lockout_end(self.login_attempt_at?, lockout);
        (until > now).then_some(until)
    }
}

/// When a lockout that began with an attempt at `attempt_at` ends.
pub fn lockout_end(attempt_at: DateTime, lockout: std::time::Duration) -> DateTime {
    DateTime::from_millis(
        attempt_at
            .timestamp_millis()
            .saturating_add(i64::try_from(lockout.as_millis()).unwrap_or(i64::MAX)),
    )
}
