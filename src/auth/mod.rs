//! Authentication: password hashing, access JWTs, refresh tokens, the
//! per-IP rate limiter, and the caches that keep the permission check off
//! the database on the hot path.

pub mod cache;
pub mod jwt;
pub mod lockout;
pub mod password;
pub mod rate_limit;
pub mod refresh;
