//! Access tokens: HS256 JWTs carrying the user id, role and token version.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use jsonwebtoken::{
    decode, encode, errors::ErrorKind, get_current_timestamp, Algorithm, DecodingKey, EncodingKey,
    Header, Validation,
};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{user::Role, UserId},
    error::AppError,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (hex).
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    /// Unique per token.
    pub jti: String,
    /// The user's token version when issued; a password change, reset,
    /// deactivation or role change bumps it and so voids older tokens.
    pub tv: i64,
}

/// Seconds a token is still accepted past its `exp` (clock skew).
const LEEWAY_SECS: u64 = 5;

/// Verified tokens kept at most; a client sends the same token with every
/// request until it expires, and there are far fewer live sessions.
const MAX_VERIFIED: usize = 10_000;

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    verified: Arc<Verified>,
}

/// Tokens whose signature has been checked, by their exact text, with
/// their claims. Only a token that passed [`JwtKeys::verify`] in full gets
/// in, so nobody without the signing key can add an entry; its expiry is
/// checked again on every use, and revocation is the token version, which
/// the caller compares with the account's on every request.
struct Verified {
    capacity: usize,
    tokens: Mutex<HashMap<Box<str>, Arc<Claims>>>,
}

impl Verified {
    fn get(&self, token: &str) -> Option<Arc<Claims>> {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()
    }

    fn forget(&self, token: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }

    /// Keeps `claims`; when full, the expired entries go first, and all of
    /// them if none has expired (each is then verified once more).
    fn keep(&self, token: &str, claims: Arc<Claims>, now: u64) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if tokens.len() >= self.capacity {
            tokens.retain(|_, c| !expired(c, now));
            if tokens.len() >= self.capacity {
                tokens.clear();
            }
        }
        tokens.insert(token.into(), claims);
    }
}

/// jsonwebtoken's own test: expired once `exp` is more than the leeway ago.
fn expired(claims: &Claims, now: u64) -> bool {
    u64::try_from(claims.exp).map_or(true, |exp| exp < now.saturating_sub(LEEWAY_SECS))
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self::keeping_at_most(secret, MAX_VERIFIED)
    }

    fn keeping_at_most(secret: &[u8], capacity: usize) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            verified: Arc::new(Verified {
                capacity,
                tokens: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn issue(
        &self,
        user: UserId,
        role: Role,
        token_version: i64,
        ttl_secs: i64,
    ) -> Result<String, AppError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user.to_string(),
            role,
            iat: now,
            exp: now + ttl_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            tv: token_version,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(AppError::internal)
    }

    /// Verifies signature, algorithm (HS256 only: `none` and others are
    /// refused) and expiry. The signature of a token seen before is not
    /// checked again (its expiry is).
    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, AppError> {
        self.verify_at(token, get_current_timestamp())
    }

    /// [`Self::verify`] at `now` (seconds since the epoch) for a kept token;
    /// a token not kept yet is checked by jsonwebtoken on the wall clock.
    fn verify_at(&self, token: &str, now: u64) -> Result<Arc<Claims>, AppError> {
        if let Some(claims) = self.verified.get(token) {
            if !expired(&claims, now) {
                return Ok(claims);
            }
            self.verified.forget(token);
            return Err(AppError::TokenExpired);
        }
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| Arc::new(d.claims))
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AppError::TokenExpired,
                _ => AppError::Unauthorized("the access token is invalid".into()),
            })?;
        self.verified.keep(token, claims.clone(), now);
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_tokens_verify_and_forgeries_do_not() {
        let keys = JwtKeys::new(SECRET);
        let id = UserId::new();
        let token = keys.issue(id, Role::Staff, 3, 60).expect("issue");
        let claims = keys.verify(&token).expect("valid");
        assert_eq!(claims.sub, id.to_string());
        assert_eq!(claims.tv, 3);

        let other = JwtKeys::new(b"another-secret-another-secret-0000");
        assert!(matches!(
            other.verify(&token),
            Err(AppError::Unauthorized(_))
        ));

        let expired = keys.issue(id, Role::Staff, 0, -120).expect("issue");
        assert!(matches!(keys.verify(&expired), Err(AppError::TokenExpired)));

        // alg "none": header {"alg":"none","typ":"JWT"}, no signature.
        let payload = token.split('.').nth(1).expect("payload");
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(matches!(keys.verify(&none), Err(AppError::Unauthorized(_))));
        assert!(matches!(
            keys.verify("garbage"),
            Err(AppError::Unauthorized(_))
        ));
        assert_eq!(
            keys.verified.tokens.lock().expect("lock").len(),
            1,
            "only the valid token was kept"
        );
    }

    #[test]
    fn a_kept_token_still_expires_and_a_tampered_one_is_checked_in_full() {
        let keys = JwtKeys::new(SECRET);
        let token = keys
            .issue(UserId::new(), Role::Staff, 0, 60)
            .expect("issue");
        let now = get_current_timestamp();
        let first = keys.verify_at(&token, now).expect("valid");
        let again = keys.verify_at(&token, now + 30).expect("still valid");
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second use is the kept one"
        );

        // The signature's first character changed: not the kept token.
        let at = token.rfind('.').expect("a signature") + 1;
        let swap = if token[at..].starts_with('A') {
            "B"
        } else {
            "A"
        };
        let tampered = format!("{}{swap}{}", &token[..at], &token[at + 1..]);
        assert!(matches!(
            keys.verify_at(&tampered, now),
            Err(AppError::Unauthorized(_))
        ));

        // The kept token expires where jsonwebtoken would refuse it: still
        // good at `exp` plus the leeway, expired one second later.
        let exp = u64::try_from(first.exp).expect("a positive exp");
        keys.verify_at(&token, exp + LEEWAY_SECS)
            .expect("within the leeway");
        assert!(matches!(
            keys.verify_at(&token, exp + LEEWAY_SECS + 1),
            Err(AppError::TokenExpired)
        ));
        assert!(
            keys.verified.get(&token).is_none(),
            "forgotten once expired"
        );
    }

    #[test]
    fn the_kept_tokens_are_bounded() {
        let keys = JwtKeys::keeping_at_most(SECRET, 2);
        let now = get_current_timestamp();
        let short = keys.issue(UserId::new(), Role::Staff, 0, 1).expect("issue");
        let long: Vec<String> = (0..2)
            .map(|_| {
                keys.issue(UserId::new(), Role::Staff, 0, 600)
                    .expect("issue")
            })
            .collect();
        keys.verify_at(&short, now).expect("valid");
        keys.verify_at(&long[0], now).expect("valid");
        // Full, with the short token expired by then: only it makes room.
        keys.verify_at(&long[1], now + 60).expect("valid");
        assert!(keys.verified.get(&short).is_none());
        assert!(keys.verified.get(&long[0]).is_some());
        // Full with none expired: all go, and the newcomer stays.
        let third = keys
            .issue(UserId::new(), Role::Staff, 0, 600)
            .expect("issue");
        keys.verify_at(&third, now).expect("valid");
        assert_eq!(keys.verified.tokens.lock().expect("lock").len(), 1);
        assert!(keys.verified.get(&third).is_some());
    }
}
