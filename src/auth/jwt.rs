//! Access tokens: HS256 JWTs carrying the user id, role and token version.

use jsonwebtoken::{
    decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation,
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

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
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
    /// refused) and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AppError::TokenExpired,
                _ => AppError::Unauthorized("the access token is invalid".into()),
            })
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
    }
}
