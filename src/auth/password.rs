//! Argon2id password hashing with OWASP parameters (m = 19 MiB, t = 2, p = 1).
//!
//! Hashing is CPU- and memory-heavy by design, so it runs on the blocking
//! pool, and a semaphore bounds how many hashes run at once: a login flood
//! queues behind the permits instead of occupying every core.
//!
//! The 19 MiB of argon2 memory is allocated once per permit and reused.
//! Allocating it per hash on whichever blocking thread ran it left a copy in
//! each thread's malloc arena: the server's resident memory grew by about
//! 10 MiB per login until every arena held one (measured by bench_load).

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use argon2::{
    password_hash::{Output, PasswordHash, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::{AppError, FieldErrors};

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

fn params() -> Params {
    // OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1.
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

/// Argon2 memory, reused across hashes.
type Blocks = Vec<Block>;

/// `password` hashed with `salt` into `out`, in `blocks` (resized to fit).
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    blocks: &mut Blocks,
) -> Result<(), argon2::Error> {
    blocks.resize(params.block_count(), Block::default());
    Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt,
        out,
        blocks.as_mut_slice(),
    )
}

/// A PHC string for an argon2id hash with our parameters.
fn hash_with(password: &[u8], blocks: &mut Blocks) -> Result<String, AppError> {
    let mut salt_bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(AppError::internal)?;
    let params = params();
    let mut out = [0u8; 32];
    compute(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password,
        &salt_bytes,
        &mut out,
        blocks,
    )
    .map_err(AppError::internal)?;
    let output = Output::new(&out).map_err(AppError::internal)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        salt.as_str(),
        output
    ))
}

/// Whether `password` matches the PHC string `hash` (any argon2 variant and
/// parameters it names). The comparison is constant-time (`Output`'s `==`).
fn verify_with(password: &[u8], hash: &str, blocks: &mut Blocks) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    // Stored parameters are ours; refuse absurd ones rather than allocate.
    if params.m_cost() > 256 * 1024 || expected.len() > 64 {
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    if compute(algorithm, version, params, password, salt, &mut out, blocks).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|o| o == expected)
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

/// What the hasher has done, for tests, benchmarks and metrics.
#[derive(Debug, Default)]
pub struct HashStats {
    /// Hashes and verifications computing right now.
    running: AtomicUsize,
    /// The most that ever computed at once.
    peak: AtomicUsize,
    /// Verifications computed (dummy ones for unknown accounts included).
    verifications: AtomicU64,
}

impl HashStats {
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::SeqCst)
    }
}

/// Counts one computation as running until dropped (a panic included).
struct Running<'a>(&'a HashStats);

impl<'a> Running<'a> {
    fn start(stats: &'a HashStats) -> Self {
        let now = stats.running.fetch_add(1, Ordering::SeqCst) + 1;
        stats.peak.fetch_max(now, Ordering::SeqCst);
        Running(stats)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    stats: Arc<HashStats>,
    /// One argon2 memory block set per permit in use, kept for reuse.
    memory: Arc<std::sync::Mutex<Vec<Blocks>>>,
    queue_timeout: Duration,
    dummy: Arc<OnceCell<String>>,
}

impl Hasher {
    /// `concurrency` hashes at once; a request waits at most `queue_timeout`
    /// for a turn before answering 503.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Self {
        Hasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            stats: Arc::default(),
            memory: Arc::default(),
            queue_timeout,
            dummy: Arc::new(OnceCell::new()),
        }
    }

    pub fn stats(&self) -> &HashStats {
        &self.stats
    }

    /// Runs `work` on the blocking pool once a permit is free.
    ///
    /// The permit and the memory travel into the blocking task and are
    /// given back only when the computation ends: a request cancelled while
    /// its hash runs (the client closed the socket) cannot free its turn
    /// early and push more hashes than the cap onto the machine.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Blocks) -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let waiting = std::time::Instant::now();
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                crate::metrics::hash_waited(waiting, false);
                AppError::ServiceUnavailable("password hashing queue is full".into())
            })?
            .map_err(AppError::internal)?;
        crate::metrics::hash_waited(waiting, true);
        let memory = self.memory.clone();
        let stats = self.stats.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = Running::start(&stats);
            // At most one set per permit exists: a permit holder takes one
            // or, the first time, allocates it.
            let mut blocks = memory
                .lock()
                .ok()
                .and_then(|mut pool| pool.pop())
                .unwrap_or_default();
            let result = work(&mut blocks);
            if let Ok(mut pool) = memory.lock() {
                pool.push(blocks);
            }
            result
        })
        .await
        .map_err(AppError::internal)
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, AppError> {
        let password = password.clone();
        self.run(move |blocks| hash_with(password.expose_secret().as_bytes(), blocks))
            .await?
    }

    /// Verifies `password` against a stored PHC string.
    pub async fn verify(&self, password: &SecretString, hash: &str) -> Result<bool, AppError> {
        let password = password.clone();
        let hash = hash.to_owned();
        let stats = self.stats.clone();
        self.run(move |blocks| {
            stats.verifications.fetch_add(1, Ordering::SeqCst);
            verify_with(password.expose_secret().as_bytes(), &hash, blocks)
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

    #[tokio::test]
    async fn hashes_interoperate_with_the_reference_implementation() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let h = Hasher::new(1, Duration::from_secs(5));
        let pw = SecretString::from("correct horse battery");
        // Ours verifies under the argon2 crate's own verifier...
        let ours = h.hash(&pw).await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        // ...and hashes it made (other parameters too) verify under ours.
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 3, 1, None).expect("params"),
        )
        .hash_password(b"correct horse battery", &salt)
        .expect("hash")
        .to_string();
        assert!(h.verify(&pw, &theirs).await.expect("verify"));
        assert!(!h
            .verify(&SecretString::from("correct horse batterY"), &theirs)
            .await
            .expect("verify"));
        // One permit: one memory set, reused.
        assert_eq!(h.memory.lock().expect("lock").len(), 1);
    }

    #[test]
    fn policy() {
        assert!(check_policy("short", "a@b.c", "password").is_err());
        assert!(check_policy(&"x".repeat(129), "a@b.c", "password").is_err());
        assert!(check_policy("someone@example.com", "Someone@Example.com", "password").is_err());
        assert!(check_policy("a perfectly fine passphrase", "a@b.c", "password").is_ok());
    }
}
