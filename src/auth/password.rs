//! Argon2id password hashing with OWASP parameters (m = 19 MiB, t = 2, p = 1).
//!
//! Hashing is CPU- and memory-heavy by design, so it runs on the blocking
//! pool, and a semaphore bounds how many hashes run at once: a login flood
//! queues behind the permits instead of occupying every core.

use std::{sync::Arc, time::Duration};

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::{AppError, FieldErrors};

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The policy: 12 to 128 characters, and not the account's own email.
pub fn check_policy(password: &str, email: &str, field: &str) -> Result<(), AppError> {
    let len = password.chars().count();
    let problem = if len < MIN_LEN {
        Some(format!("must be at least {MIN_LEN} characters"))
    } else if len > MAX_LEN {
        Some(format!("must be at most {MAX_LEN} characters"))
    } else if password.trim().eq_ignore_ascii_case(email.trim()) {
        Some("must not be the account's email address".to_owned())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(message) => {
            let mut details = FieldErrors::new();
            details.insert(field.to_owned(), vec![message.clone()]);
            Err(AppError::Validation {
                message: format!("{field} {message}"),
                details,
            })
        }
    }
}

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    dummy: Arc<OnceCell<String>>,
}

impl Hasher {
    /// `concurrency` hashes at once; a request waits at most `queue_timeout`
    /// for a turn before answering 503.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Self {
        Hasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_timeout,
            dummy: Arc::new(OnceCell::new()),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let _permit = tokio::time::timeout(self.queue_timeout, self.permits.acquire())
            .await
            .map_err(|_| AppError::ServiceUnavailable("password hashing queue is full".into()))?
            .map_err(AppError::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(AppError::internal)
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, AppError> {
        let password = password.clone();
        self.run(move || {
            let mut salt_bytes = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt_bytes);
            let salt = SaltString::encode_b64(&salt_bytes).map_err(AppError::internal)?;
            argon2()
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(AppError::internal)
        })
        .await?
    }

    /// Verifies `password` against a stored PHC string.
    pub async fn verify(&self, password: &SecretString, hash: &str) -> Result<bool, AppError> {
        let password = password.clone();
        let hash = hash.to_owned();
        self.run(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            argon2()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok()
        })
        .await
    }

    /// Spends the same work as a real verification, for logins of unknown
    /// emails, so response time does not reveal whether an account exists.
    pub async fn verify_dummy(&self, password: &SecretString) -> Result<(), AppError> {
        let dummy = self
            .dummy
            .get_or_try_init(|| async {
                self.hash(&SecretString::from("dummy-password-for-timing"))
                    .await
            })
            .await?
            .clone();
        self.verify(password, &dummy).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id_with_owasp_parameters() {
        let h = Hasher::new(2, Duration::from_secs(5));
        let pw = SecretString::from("correct horse battery");
        let hash = h.hash(&pw).await.expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(h.verify(&pw, &hash).await.expect("verify"));
        assert!(!h
            .verify(&SecretString::from("wrong password!"), &hash)
            .await
            .expect("verify"));
        assert!(!h.verify(&pw, "not a phc string").await.expect("verify"));
        h.verify_dummy(&pw).await.expect("dummy");
    }

    #[test]
    fn policy() {
        assert!(check_policy("short", "a@b.c", "password").is_err());
        assert!(check_policy(&"x".repeat(129), "a@b.c", "password").is_err());
        assert!(check_policy("someone@example.com", "Someone@Example.com", "password").is_err());
        assert!(check_policy("a perfectly fine passphrase", "a@b.c", "password").is_ok());
    }
}
