//! Access tokens are short-lived HS256 JWTs naming a session (`sid`); refresh tokens are
//! random opaque strings of which only a SHA-256 is stored.
//!
//! Verification pins the algorithm to HS256 (so `alg: none` and algorithm confusion are
//! refused), requires `exp`, `iat`, `sub`, `sid` and our issuer, and allows no leeway: the
//! same server issues and checks them.

use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuthError;
use crate::domain::session::RefreshHash;
use crate::domain::{SessionId, UserId};

/// The `iss` claim of every token this server issues.
pub const ISSUER: &str = "tasker";
/// Refresh tokens start with this, so secret scanners and people can recognise them.
const REFRESH_PREFIX: &str = "tkr_";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: chrono::Duration,
}

impl Tokens {
    pub fn new(secret: &[u8], ttl: std::time::Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1)),
        }
    }

    /// A signed access token for a session, and when it expires.
    pub fn issue(
        &self,
        user: UserId,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let expires_at = now + self.ttl;
        let claims = Claims {
            sub: user.to_string(),
            sid: session.to_string(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            iss: ISSUER.to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail");
        let expires_at = Utc
            .timestamp_opt(claims.exp, 0)
            .single()
            .unwrap_or(expires_at);
        (token, expires_at)
    }

    /// Checks signature, algorithm, issuer and expiry; returns the user and session named.
    pub fn verify(&self, token: &str) -> Result<(UserId, SessionId), AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::TokenExpired,
                _ => AuthError::InvalidToken,
            })?;
        let user = data
            .claims
            .sub
            .parse()
            .map_err(|_| AuthError::InvalidToken)?;
        let session = data
            .claims
            .sid
            .parse()
            .map_err(|_| AuthError::InvalidToken)?;
        Ok((user, session))
    }
}

/// A new random refresh token and the hash to store for it.
pub fn new_refresh_token() -> (String, RefreshHash) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{REFRESH_PREFIX}{}", hex(&bytes));
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(token: &str) -> RefreshHash {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tokens() -> Tokens {
        Tokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60))
    }

    #[test]
    fn issued_tokens_verify() {
        let (user, session) = (UserId::new(), SessionId::new());
        let (token, _) = tokens().issue(user, session, Utc::now());
        assert_eq!(tokens().verify(&token).unwrap(), (user, session));
    }

    #[test]
    fn expired_and_foreign_tokens_fail() {
        let t = tokens();
        let (token, _) = t.issue(
            UserId::new(),
            SessionId::new(),
            Utc::now() - chrono::Duration::hours(2),
        );
        assert_eq!(t.verify(&token), Err(AuthError::TokenExpired));
        let other = Tokens::new(
            b"another secret that is long enough!!",
            Duration::from_secs(60),
        );
        let (token, _) = other.issue(UserId::new(), SessionId::new(), Utc::now());
        assert_eq!(t.verify(&token), Err(AuthError::InvalidToken));
        assert_eq!(t.verify("not.a.jwt"), Err(AuthError::InvalidToken));
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, hash_a) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_ne!(a, b);
        assert!(a.starts_with(REFRESH_PREFIX));
        assert_eq!(hash_refresh_token(&a), hash_a);
        assert_eq!(hash_a.len(), 64);
    }
}
