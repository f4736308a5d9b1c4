//! Personal access tokens: rows (`ACCESS_TOKENS`), the hash index a presented token is found
//! by (`ACCESS_TOKENS_BY_HASH`) and each user's tokens (`ACCESS_TOKENS_BY_USER`), written
//! together. Revoking a token bumps the auth epoch, so cached verifications and open
//! WebSockets look again; recording its use does not.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable};

use super::codec::{encode, read_row};
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::scope::{AccessToken, MAX_TOKENS_PER_USER};
use crate::domain::{AccessTokenId, SessionId, User, UserId};

/// Why a token could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum TokenRefused {
    #[error("this account already holds {MAX_TOKENS_PER_USER} tokens")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Stores a new token, unless its user already holds [`MAX_TOKENS_PER_USER`].
    pub fn insert_access_token(&self, token: &AccessToken) -> Result<(), TokenRefused> {
        self.write(|tx| {
            let mut rows = tx
                .txn()
                .open_table(ACCESS_TOKENS)
                .map_err(StoreError::from)?;
            let mut by_hash = tx
                .txn()
                .open_table(ACCESS_TOKENS_BY_HASH)
                .map_err(StoreError::from)?;
            let mut by_user = tx
                .txn()
                .open_table(ACCESS_TOKENS_BY_USER)
                .map_err(StoreError::from)?;
            let user = token.user_id.as_u128();
            // Tokens that have expired are of no use: creating a token removes them, so
            // they neither pile up nor count toward the limit (read through the user's
            // index, at most the limit of rows).
            let mut held = Vec::new();
            for entry in by_user
                .range((user, 0)..=(user, u128::MAX))
                .map_err(StoreError::from)?
                .take(MAX_TOKENS_PER_USER)
            {
                held.push(entry.map_err(StoreError::from)?.0.value().1);
            }
            let mut live = 0;
            for id in held {
                let row: Option<AccessToken> = read_row(&rows, "access_tokens", id)?;
                match row {
                    Some(old) if old.is_expired(token.created_at) => {
                        rows.remove(id).map_err(StoreError::from)?;
                        by_hash
                            .remove(old.token_hash.as_str())
                            .map_err(StoreError::from)?;
                        by_user.remove((user, id)).map_err(StoreError::from)?;
                    }
                    _ => live += 1,
                }
            }
            if live >= MAX_TOKENS_PER_USER {
                return Err(TokenRefused::TooMany);
            }
            let id = token.id.as_u128();
            rows.insert(id, encode(token)?.as_slice())
                .map_err(StoreError::from)?;
            by_hash
                .insert(token.token_hash.as_str(), id)
                .map_err(StoreError::from)?;
            by_user.insert((user, id), ()).map_err(StoreError::from)?;
            Ok(())
        })
    }

    /// The user's tokens, oldest first (at most [`MAX_TOKENS_PER_USER`]: no more are stored).
    pub fn access_tokens_of_user(&self, user: UserId) -> Result<Vec<AccessToken>, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(ACCESS_TOKENS)?;
        let by_user = txn.open_table(ACCESS_TOKENS_BY_USER)?;
        let user = user.as_u128();
        let mut tokens = Vec::new();
        for entry in by_user
            .range((user, 0)..=(user, u128::MAX))?
            .take(MAX_TOKENS_PER_USER)
        {
            let (_, id) = entry?.0.value();
            if let Some(token) = read_row(&rows, "access_tokens", id)? {
                tokens.push(token);
            }
        }
        Ok(tokens)
    }

    /// Removes one of `user`'s tokens; false when they hold no such token.
    pub fn delete_access_token(&self, user: UserId, id: AccessTokenId) -> Result<bool, StoreError> {
        self.write(|tx| {
            let mut rows = tx.txn().open_table(ACCESS_TOKENS)?;
            let token: Option<AccessToken> = read_row(&rows, "access_tokens", id.as_u128())?;
            let Some(token) = token.filter(|t| t.user_id == user) else {
                return Ok(false);
            };
            rows.remove(id.as_u128())?;
            tx.txn()
                .open_table(ACCESS_TOKENS_BY_HASH)?
                .remove(token.token_hash.as_str())?;
            tx.txn()
                .open_table(ACCESS_TOKENS_BY_USER)?
                .remove((user.as_u128(), id.as_u128()))?;
            tx.note_auth_changed();
            Ok(true)
        })
    }

    /// The token a hash finds and its owner's account, read in one snapshot.
    pub fn access_token_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<(AccessToken, User)>, StoreError> {
        let txn = self.db().begin_read()?;
        let Some(id) = txn
            .open_table(ACCESS_TOKENS_BY_HASH)?
            .get(hash)?
            .map(|id| id.value())
        else {
            return Ok(None);
        };
        let token: Option<AccessToken> =
            read_row(&txn.open_table(ACCESS_TOKENS)?, "access_tokens", id)?;
        let Some(token) = token.filter(|t| t.token_hash == hash) else {
            return Ok(None);
        };
        let account: Option<User> =
            read_row(&txn.open_table(USERS)?, "users", token.user_id.as_u128())?;
        Ok(account.map(|a| (token, a)))
    }

    /// Records that a token was used at `at` (the caller writes this at most once a minute per
    /// token). A token revoked meanwhile stays revoked.
    pub fn touch_access_token(
        &self,
        id: AccessTokenId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut rows = tx.txn().open_table(ACCESS_TOKENS)?;
            let token: Option<AccessToken> = read_row(&rows, "access_tokens", id.as_u128())?;
            if let Some(mut token) = token {
                token.last_used_at = Some(at);
                rows.insert(id.as_u128(), encode(&token)?.as_slice())?;
            }
            Ok(())
        })
    }

    /// Whether the credential a connection was opened with still works: a live session, or a
    /// live access token (whose id stands in the session's place, see `AuthUser::session_id`).
    pub fn credential_alive(&self, id: SessionId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.session_alive(id, now)?
            || self.access_token_alive(AccessTokenId::from_u128(id.as_u128()), now)?)
    }

    /// Whether a token still works at `now`: it exists, has not expired, and its account is
    /// enabled.
    pub fn access_token_alive(
        &self,
        id: AccessTokenId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let txn = self.db().begin_read()?;
        let token: Option<AccessToken> = read_row(
            &txn.open_table(ACCESS_TOKENS)?,
            "access_tokens",
            id.as_u128(),
        )?;
        let Some(token) = token.filter(|t| !t.is_expired(now)) else {
            return Ok(false);
        };
        let account: Option<User> =
            read_row(&txn.open_table(USERS)?, "users", token.user_id.as_u128())?;
        Ok(account.is_some_and(|a| !a.disabled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scope::{Scopes, TokenName, issue_token};

    fn token(user: UserId, secret: u8) -> AccessToken {
        let now = Utc::now();
        AccessToken {
            id: AccessTokenId::new(),
            user_id: user,
            name: TokenName::parse("ci").unwrap(),
            scopes: Scopes::parse(&["tasks:read"]).unwrap(),
            team_ids: None,
            token_hash: issue_token([secret; 32]).1,
            created_at: now,
            expires_at: now + chrono::Duration::days(1),
            last_used_at: None,
        }
    }

    #[test]
    fn stored_tokens_are_found_by_hash_listed_and_revoked_with_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let user = UserId::new();
        let (a, b) = (token(user, 1), token(user, 2));
        store.insert_access_token(&a).unwrap();
        store.insert_access_token(&b).unwrap();
        assert_eq!(store.access_tokens_of_user(user).unwrap().len(), 2);
        assert!(
            store.access_token_by_hash(&a.token_hash).unwrap().is_none(),
            "no account"
        );
        let epoch = store.auth_epoch();
        assert!(
            !store.delete_access_token(UserId::new(), a.id).unwrap(),
            "not theirs"
        );
        assert!(store.delete_access_token(user, a.id).unwrap());
        assert!(store.auth_epoch() > epoch);
        assert!(!store.delete_access_token(user, a.id).unwrap());
        assert_eq!(store.access_tokens_of_user(user).unwrap(), vec![b.clone()]);
        let check = store.snapshot().unwrap().check().unwrap();
        assert!(check.problems.is_empty(), "{:?}", check.problems);
    }

    #[test]
    fn creating_a_token_removes_the_users_expired_ones_and_frees_their_places() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let user = UserId::new();
        let mut expired = token(user, 1);
        expired.expires_at = expired.created_at - chrono::Duration::seconds(1);
        store.insert_access_token(&expired).unwrap();
        for secret in 2..=MAX_TOKENS_PER_USER as u8 {
            store.insert_access_token(&token(user, secret)).unwrap();
        }
        let fresh = token(user, 200);
        store.insert_access_token(&fresh).unwrap();
        let held = store.access_tokens_of_user(user).unwrap();
        assert_eq!(held.len(), MAX_TOKENS_PER_USER);
        assert!(!held.iter().any(|t| t.id == expired.id));
        assert!(matches!(
            store.insert_access_token(&token(user, 201)),
            Err(TokenRefused::TooMany)
        ));
        let check = store.snapshot().unwrap().check().unwrap();
        assert!(check.problems.is_empty(), "{:?}", check.problems);
    }
}
