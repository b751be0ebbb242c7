//! The lockout as an unknown email sees it.
//!
//! Accounts count their attempts in the database (see
//! `workflow::credentials`). An email with no account gets the same
//! treatment from this in-memory counter: after the threshold it answers
//! 423 until the lockout passes, exactly as a real account would, so the
//! 423 does not tell a guesser which emails exist. Per instance and bounded:
//! past `MAX_TRACKED` emails the expired ones are dropped, and if all are
//! live the oldest streak is forgotten.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

const MAX_TRACKED: usize = 100_000;

#[derive(Clone, Default)]
pub struct UnknownAccounts {
    state: Arc<Mutex<HashMap<String, (u32, Instant)>>>,
}

impl UnknownAccounts {
    /// Counts an attempt for `email`; `Err(until)` when its attempts are spent.
    pub fn claim(&self, email: &str, threshold: i32, lockout: Duration) -> Result<(), SystemTime> {
        let threshold = u32::try_from(threshold).unwrap_or(1).max(1);
        let now = Instant::now();
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.len() >= MAX_TRACKED && !state.contains_key(email) {
            state.retain(|_, (_, at)| now.duration_since(*at) < lockout);
            if state.len() >= MAX_TRACKED {
                let oldest = state
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    state.remove(&k);
                }
            }
        }
        let entry = state.entry(email.to_owned()).or_insert((0, now));
        if entry.0 >= threshold && now.duration_since(entry.1) >= lockout {
            *entry = (0, now);
        }
        if entry.0 >= threshold {
            let left = lockout.saturating_sub(now.duration_since(entry.1));
            return Err(SystemTime::now() + left);
        }
        *entry = (entry.0 + 1, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_threshold_and_lifts_after_the_lockout() {
        let u = UnknownAccounts::default();
        for _ in 0..3 {
            assert!(u.claim("a@x.org", 3, Duration::from_secs(60)).is_ok());
        }
        let until = u
            .claim("a@x.org", 3, Duration::from_secs(60))
            .expect_err("locked");
        assert!(until > SystemTime::now() + Duration::from_secs(50));
        assert!(
            u.claim("b@x.org", 3, Duration::from_secs(60)).is_ok(),
            "others unaffected"
        );
        // A zero lockout has always passed.
        for _ in 0..5 {
            let _ = u.claim("c@x.org", 1, Duration::ZERO);
        }
        assert!(u.claim("c@x.org", 1, Duration::ZERO).is_ok());
    }
}
