//! Per-client request limits for the auth endpoints (login, refresh).
//!
//! In memory, per instance: it blunts floods and password spraying; the
//! per-account lockout (in the database) is what holds across instances.
//! The limiter is `governor`'s keyed GCRA: `limit` requests at once, then
//! one more every `60 s / limit`, with no window edge at which a client
//! gets twice the limit. Clients are keyed by [`ClientKey`]: an IPv6 client
//! by its /64, since one host can hold a whole /64.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::Arc,
};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota};

/// What a client is counted as: its IPv4 address, or its IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        };
        ClientKey(ip)
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Keys kept before idle ones are swept.
const SWEEP_ABOVE: usize = 100_000;

#[derive(Clone)]
pub struct RateLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<ClientKey>>,
}

impl RateLimiter {
    /// `per_minute` requests per minute per client, all of them at once if
    /// the client has been quiet.
    pub fn per_minute(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        RateLimiter {
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// Counts one request from `ip`; `Err(seconds)` to wait when over the limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        if self.limiter.len() > SWEEP_ABOVE {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&ClientKey::of(ip))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
            .map(|_| ())
            .map_err(|secs| secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_client() {
        let rl = RateLimiter::per_minute(3);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        for _ in 0..3 {
            assert!(rl.check(a).is_ok());
        }
        let wait = rl.check(a).expect_err("fourth is limited");
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(rl.check(b).is_ok(), "other clients unaffected");
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let rl = RateLimiter::per_minute(2);
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let same_64: IpAddr = "2001:db8:1:2:ffff:eeee:dddd:cccc".parse().expect("ip");
        let other_64: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert!(rl.check(one).is_ok());
        assert!(rl.check(same_64).is_ok());
        assert!(rl.check(one).is_err(), "the /64 shares one budget");
        assert!(rl.check(other_64).is_ok());
        assert_eq!(ClientKey::of(same_64).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(ClientKey::of(mapped).to_string(), "192.0.2.1");
    }
}
