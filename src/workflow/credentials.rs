//! Checking a password under the account lockout.
//!
//! Every attempt is counted before its password is hashed, in one
//! conditional update: a burst of concurrent guesses gets at most
//! `LOGIN_LOCKOUT_THRESHOLD` verifications, and the rest are refused (423)
//! without spending a hash. A correct password ends the streak.

use std::time::SystemTime;

use mongodb::bson::DateTime;
use secrecy::SecretString;

use super::Ctx;
use crate::{
    auth::{lockout::UnknownAccounts, password::Hasher},
    domain::user::User,
    error::AppError,
    repo::users::LoginAttempt,
};

fn locked(until: DateTime) -> AppError {
    AppError::AccountLocked {
        until: until.try_to_rfc3339_string().unwrap_or_default(),
    }
}

/// Whether `password` is `user`'s (`hash`). 423 while the account's
/// attempts are spent; the attempt counts whatever the answer.
pub async fn check(
    ctx: &Ctx,
    hasher: &Hasher,
    user: &User,
    hash: &str,
    password: &SecretString,
) -> Result<bool, AppError> {
    let threshold = ctx.config.lockout_threshold;
    let lockout = ctx.config.lockout_duration;
    let now = ctx.clock.now_bson();
    if let Some(until) = user.locked_until(threshold, lockout, now) {
        return Err(locked(until));
    }
    let claim = {
        // Outside any transaction: on a deployment that does not isolate
        // them, a concurrent abort must not undo the count.
        let _turn = ctx.gate.shared().await;
        ctx.repos
            .users
            .claim_login_attempt(user.id, threshold, lockout, now)
            .await?
    };
    if let LoginAttempt::Locked { until } = claim {
        return Err(locked(until));
    }
    let correct = hasher.verify(password, hash).await?;
    if correct {
        let _turn = ctx.gate.shared().await;
        ctx.repos.users.reset_login_attempts(user.id).await?;
    }
    Ok(correct)
}

/// A login for an email with no account: the same work and the same
/// lockout as a wrong password, so neither time nor status tells the two
/// apart. Always an error: 401, or 423 once the email's attempts are spent.
pub async fn check_unknown(
    ctx: &Ctx,
    hasher: &Hasher,
    unknown: &UnknownAccounts,
    email: &str,
    password: &SecretString,
) -> AppError {
    let claimed = unknown.claim(
        &email.to_lowercase(),
        ctx.config.lockout_threshold,
        ctx.config.lockout_duration,
    );
    if let Err(until) = claimed {
        let millis = until
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        return locked(DateTime::from_millis(millis));
    }
    if let Err(e) = hasher.verify_dummy(password).await {
        return e;
    }
    AppError::Unauthorized("invalid email or password".into())
}
