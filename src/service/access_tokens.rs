//! Personal access tokens (issue 16): create (the secret is shown once), list, revoke, and the
//! check behind a `tkr_pat_` bearer.
//!
//! Only a signed-in person manages tokens ([`AuthUser::require_session`]): a token can never
//! create, list or revoke tokens. Verification is cached like sessions' (`session_cache.rs`):
//! an entry is trusted only at the auth epoch it was read at, and revoking a token, disabling
//! an account or changing its role bumps the epoch, so a revocation counts at once (the
//! real-time feed closes the token's sockets on the same bump). `last_used_at` is written at
//! most once a minute per token, off the request path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use rand::RngCore;

use super::{AuthError, AuthUser, Error, Result, Service, TokenGrant};
use crate::domain::scope::{
    AccessToken, MAX_TOKEN_TEAMS, Scopes, TokenName, issue_token, presented_hash,
};
use crate::domain::{AccessTokenId, Role, SessionId, TeamId, UserId, Validator};
use crate::store::TokenRefused;

/// How often a token's `last_used_at` is written, at most.
pub const LAST_USED_GRANULARITY: chrono::Duration = chrono::Duration::seconds(60);

/// Entries kept before the cache is emptied (it refills from the store on demand).
const MAX_ENTRIES: usize = 100_000;

/// A token to create.
pub struct NewAccessToken {
    pub name: String,
    pub scopes: Vec<String>,
    /// Required: at most the server's maximum lifetime (`--token-max-lifetime`) ahead.
    pub expires_at: Option<DateTime<Utc>>,
    /// Limit the token to these teams (the caller must be a member of each).
    pub team_ids: Option<Vec<TeamId>>,
}

/// A new token: the secret (shown once, never stored) and its record.
pub struct IssuedToken {
    pub token: String,
    pub record: AccessToken,
}

#[derive(Clone)]
struct Cached {
    user_id: UserId,
    role: Role,
    grant: TokenGrant,
    expires_at: DateTime<Utc>,
    epoch: u64,
}

/// Verified tokens by hash, and when each token's use was last written.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, Cached>>,
    written: Mutex<HashMap<AccessTokenId, DateTime<Utc>>>,
}

impl TokenCache {
    fn get(&self, hash: &str, epoch: u64) -> Option<Cached> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(hash).filter(|c| c.epoch == epoch).cloned()
    }

    fn insert(&self, hash: String, cached: Cached) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, cached);
    }

    /// Whether the use of `id` at `now` should be written: none was for a minute.
    /// `stored` is the `last_used_at` read from the store, when it was read.
    fn due(&self, id: AccessTokenId, now: DateTime<Utc>, stored: Option<DateTime<Utc>>) -> bool {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.len() >= MAX_ENTRIES {
            written.clear();
        }
        let last = written.get(&id).copied().or(stored);
        if last.is_some_and(|last| now - last < LAST_USED_GRANULARITY) {
            if let Some(stored) = stored {
                written.entry(id).or_insert(stored);
            }
            return false;
        }
        written.insert(id, now);
        true
    }
}

/// The caller a token stands for: its user, with the `admin` role only under the `admin` scope.
fn caller(token: &AccessToken, account_role: Role) -> (Role, TokenGrant) {
    let role = if token.scopes.admin() {
        account_role
    } else {
        Role::User
    };
    let grant = TokenGrant {
        id: token.id,
        scopes: token.scopes,
        teams: token.team_ids.as_ref().map(|t| Arc::from(t.as_slice())),
    };
    (role, grant)
}

impl Service {
    /// The longest a new token may live (`--token-max-lifetime`).
    pub fn token_max_lifetime(&self) -> std::time::Duration {
        self.config.token_max_lifetime
    }

    /// Creates a token for the caller; the answer carries the secret, which is not stored.
    pub async fn create_access_token(
        &self,
        auth: &AuthUser,
        input: NewAccessToken,
    ) -> Result<IssuedToken> {
        auth.require_session()?;
        let now = Utc::now();
        let mut v = Validator::default();
        let name = v.check("name", TokenName::parse(&input.name));
        let scopes = v.check("scopes", Scopes::parse(&input.scopes));
        let max = chrono::Duration::from_std(self.config.token_max_lifetime)
            .unwrap_or(chrono::Duration::days(365));
        match input.expires_at {
            None => v.push("expires_at", "is required: a token must expire"),
            Some(at) if at <= now => v.push("expires_at", "must be in the future"),
            Some(at) if at > now + max => v.push(
                "expires_at",
                format!(
                    "must be at most {} days from now (--token-max-lifetime)",
                    max.num_days().max(1)
                ),
            ),
            Some(_) => {}
        }
        let mut teams = input.team_ids.clone();
        if let Some(teams) = &mut teams {
            teams.sort();
            teams.dedup();
            if teams.is_empty() {
                v.push("team_ids", "must name at least one team, or be left out");
            } else if teams.len() > MAX_TOKEN_TEAMS {
                v.push(
                    "team_ids",
                    format!("must name at most {MAX_TOKEN_TEAMS} teams"),
                );
            }
        }
        v.finish().map_err(Error::Validation)?;
        let (name, scopes) = (name.expect("validated"), scopes.expect("validated"));
        if scopes.admin() && !crate::domain::access::may_administer(auth.role) {
            return Err(Error::Forbidden(
                "only a site admin may create a token with the admin scope".into(),
            ));
        }
        if let Some(wanted) = &teams {
            let standing = self.standing_of(auth.user_id).await?;
            if let Some(stranger) = wanted.iter().find(|t| standing.role(**t).is_none()) {
                return Err(Error::invalid(
                    "team_ids",
                    format!("you are not a member of team {stranger}"),
                ));
            }
        }
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let (token, token_hash) = issue_token(secret);
        let record = AccessToken {
            id: AccessTokenId::new(),
            user_id: auth.user_id,
            name,
            scopes,
            team_ids: teams,
            token_hash,
            created_at: now,
            expires_at: input.expires_at.expect("validated"),
            last_used_at: None,
        };
        let stored = record.clone();
        self.store
            .run(move |s| s.insert_access_token(&stored))
            .await
            .map_err(|e| match e {
                TokenRefused::TooMany => Error::invalid(
                    "name",
                    format!(
                        "you already hold {} tokens: revoke one first",
                        crate::domain::scope::MAX_TOKENS_PER_USER
                    ),
                ),
                TokenRefused::Store(e) => Error::Internal(e),
            })?;
        tracing::info!(user_id = %auth.user_id, token_id = %record.id, scopes = %record.scopes, "access token created");
        Ok(IssuedToken { token, record })
    }

    /// The caller's tokens, oldest first (never their secrets).
    pub async fn access_tokens(&self, auth: &AuthUser) -> Result<Vec<AccessToken>> {
        auth.require_session()?;
        let user = auth.user_id;
        Ok(self
            .store
            .run(move |s| s.access_tokens_of_user(user))
            .await?)
    }

    /// Revokes one of the caller's tokens: it stops working at once, sockets included.
    /// Someone else's token is 404.
    pub async fn revoke_access_token(&self, auth: &AuthUser, id: AccessTokenId) -> Result<()> {
        auth.require_session()?;
        let user = auth.user_id;
        if self
            .store
            .run(move |s| s.delete_access_token(user, id))
            .await?
        {
            tracing::info!(user_id = %user, token_id = %id, "access token revoked");
            Ok(())
        } else {
            Err(Error::NotFound("access token"))
        }
    }

    /// The check behind a `tkr_pat_` bearer: a stored, unexpired token of an enabled account.
    pub(super) async fn authenticate_access_token(&self, bearer: &str) -> Result<AuthUser> {
        let hash = presented_hash(bearer).ok_or(AuthError::InvalidToken)?;
        let now = Utc::now();
        // Read the epoch before the token, so a revocation in between is never cached.
        let epoch = self.store.auth_epoch();
        let (cached, stored_use) = match self.access_tokens.get(&hash, epoch) {
            Some(hit) => (hit, None),
            None => {
                let lookup = hash.clone();
                let found = self
                    .store
                    .run(move |s| s.access_token_by_hash(&lookup))
                    .await?;
                let Some((token, account)) = found else {
                    return Err(AuthError::InvalidToken.into());
                };
                if account.disabled {
                    return Err(AuthError::AccountDisabled.into());
                }
                let (role, grant) = caller(&token, account.role);
                let cached = Cached {
                    user_id: token.user_id,
                    role,
                    grant,
                    expires_at: token.expires_at,
                    epoch,
                };
                self.access_tokens.insert(hash, cached.clone());
                (cached, Some(token.last_used_at))
            }
        };
        if cached.expires_at <= now {
            return Err(AuthError::AccessTokenExpired.into());
        }
        let id = cached.grant.id;
        if self.access_tokens.due(id, now, stored_use.flatten()) {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.run(move |s| s.touch_access_token(id, now)).await {
                    tracing::warn!(error = %e, token_id = %id, "could not record a token's use");
                }
            });
        }
        Ok(AuthUser {
            user_id: cached.user_id,
            session_id: SessionId::from_u128(id.as_u128()),
            role: cached.role,
            token: Some(cached.grant),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_is_written_at_most_once_a_minute_per_token() {
        let cache = TokenCache::default();
        let (a, b) = (AccessTokenId::new(), AccessTokenId::new());
        let now = Utc::now();
        assert!(cache.due(a, now, None));
        assert!(!cache.due(a, now + chrono::Duration::seconds(30), None));
        assert!(cache.due(b, now, None), "per token");
        assert!(cache.due(a, now + chrono::Duration::seconds(61), None));
        let c = AccessTokenId::new();
        assert!(!cache.due(c, now, Some(now - chrono::Duration::seconds(10))));
    }
}
