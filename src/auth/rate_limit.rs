//! A fixed-window request counter per client IP for the auth endpoints.
//! In memory, per instance: it blunts floods and password spraying; the
//! per-account lockout (in the database) is what holds across instances.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

#[derive(Clone)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    state: Arc<Mutex<HashMap<IpAddr, (Instant, u32)>>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            state: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Counts one request from `ip`; `Err(seconds)` to wait when over the limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.len() > 100_000 {
            state.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = state.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.limit {
            let wait = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(wait.as_secs().max(1));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_ip_within_the_window() {
        let rl = RateLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        for _ in 0..3 {
            assert!(rl.check(a).is_ok());
        }
        let wait = rl.check(a).expect_err("fourth is limited");
        assert!((1..=60).contains(&wait));
        assert!(rl.check(b).is_ok(), "other IPs unaffected");
    }
}
