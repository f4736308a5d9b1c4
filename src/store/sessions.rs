//! Session rows, the per-user index and the refresh-token index.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, Table};

use super::codec::{encode, read_row};
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::session::RefreshHash;
use crate::domain::{Session, SessionId, User, UserId};

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// The token was current: the session now has `new_hash` and a later expiry.
    Rotated {
        session: Box<Session>,
        user: Box<User>,
    },
    /// The token had already been used: the session was revoked (the token was probably stolen).
    Reused,
    /// No session knows this token, or it expired.
    Invalid,
}

/// Removes a session and every index entry pointing at it.
pub(super) fn delete_session_rows(
    session: &Session,
    sessions: &mut Table<u128, &[u8]>,
    by_user: &mut Table<(u128, u128), ()>,
    refresh: &mut Table<&str, u128>,
) -> Result<(), StoreError> {
    sessions.remove(session.id.as_u128())?;
    by_user.remove((session.user_id.as_u128(), session.id.as_u128()))?;
    for hash in session.all_refresh_hashes() {
        refresh.remove(hash.as_str())?;
    }
    Ok(())
}

fn read_session(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: u128,
) -> Result<Option<Session>, StoreError> {
    read_row(table, "sessions", id)
}

impl Store {
    /// Stores a new session. Expired sessions of the same user are removed in the same
    /// transaction, which keeps the table bounded without a background sweep.
    pub fn insert_session(&self, session: &Session, now: DateTime<Utc>) -> Result<(), StoreError> {
        let txn = self.db().begin_write()?;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut by_user = txn.open_table(SESSIONS_BY_USER)?;
            let mut refresh = txn.open_table(REFRESH_TOKENS)?;
            let user = session.user_id.as_u128();
            let ids: Vec<u128> = by_user
                .range((user, 0)..=(user, u128::MAX))?
                .map(|entry| entry.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            for id in ids {
                if let Some(old) = read_session(&sessions, id)?.filter(|s| s.is_expired(now)) {
                    delete_session_rows(&old, &mut sessions, &mut by_user, &mut refresh)?;
                }
            }
            sessions.insert(session.id.as_u128(), encode(session)?.as_slice())?;
            by_user.insert((user, session.id.as_u128()), ())?;
            refresh.insert(session.refresh_hash.as_str(), session.id.as_u128())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// A live session and its user, read in one snapshot: what the bearer checker needs.
    pub fn session_with_user(&self, id: SessionId) -> Result<Option<(Session, User)>, StoreError> {
        let txn = self.db().begin_read()?;
        let Some(session) = read_session(&txn.open_table(SESSIONS)?, id.as_u128())? else {
            return Ok(None);
        };
        let users = txn.open_table(USERS)?;
        let user: Option<User> = read_row(&users, "users", session.user_id.as_u128())?;
        Ok(user.map(|user| (session, user)))
    }

    /// Exchanges a refresh token (by hash) for a new one, or detects its reuse.
    pub fn rotate_refresh(
        &self,
        presented: &RefreshHash,
        new_hash: RefreshHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<RefreshOutcome, StoreError> {
        let txn = self.db().begin_write()?;
        let outcome = {
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut by_user = txn.open_table(SESSIONS_BY_USER)?;
            let mut refresh = txn.open_table(REFRESH_TOKENS)?;
            let Some(sid) = refresh.get(presented.as_str())?.map(|v| v.value()) else {
                return Ok(RefreshOutcome::Invalid);
            };
            let Some(mut session) = read_session(&sessions, sid)? else {
                return Ok(RefreshOutcome::Invalid);
            };
            let users = txn.open_table(USERS)?;
            let user: Option<User> = read_row(&users, "users", session.user_id.as_u128())?;
            match user {
                _ if session.refresh_hash != *presented => {
                    delete_session_rows(&session, &mut sessions, &mut by_user, &mut refresh)?;
                    RefreshOutcome::Reused
                }
                Some(user) if !session.is_expired(now) && !user.disabled => {
                    refresh.insert(new_hash.as_str(), sid)?;
                    if let Some(forgotten) = session.rotate(new_hash, now, expires_at) {
                        refresh.remove(forgotten.as_str())?;
                    }
                    sessions.insert(sid, encode(&session)?.as_slice())?;
                    RefreshOutcome::Rotated {
                        session: Box::new(session),
                        user: Box::new(user),
                    }
                }
                _ => {
                    delete_session_rows(&session, &mut sessions, &mut by_user, &mut refresh)?;
                    RefreshOutcome::Invalid
                }
            }
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// Deletes `session` if it belongs to `user`; false when there is no such session.
    pub fn delete_session(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        let txn = self.db().begin_write()?;
        let deleted = {
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut by_user = txn.open_table(SESSIONS_BY_USER)?;
            let mut refresh = txn.open_table(REFRESH_TOKENS)?;
            match read_session(&sessions, session.as_u128())?.filter(|s| s.user_id == user) {
                Some(found) => {
                    delete_session_rows(&found, &mut sessions, &mut by_user, &mut refresh)?;
                    true
                }
                None => false,
            }
        };
        txn.commit()?;
        Ok(deleted)
    }

    /// Up to `limit` sessions of `user` after the session id `after`, oldest first.
    pub fn sessions_of_user(
        &self,
        user: UserId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        let txn = self.db().begin_read()?;
        let by_user = txn.open_table(SESSIONS_BY_USER)?;
        let sessions = txn.open_table(SESSIONS)?;
        let user = user.as_u128();
        let start = match after {
            Some(after) if after == u128::MAX => return Ok(vec![]),
            Some(after) => after + 1,
            None => 0,
        };
        let mut page = Vec::with_capacity(limit);
        for entry in by_user.range((user, start)..=(user, u128::MAX))? {
            let (key, _) = entry?;
            if let Some(session) = read_session(&sessions, key.value().1)? {
                page.push(session);
            }
            if page.len() == limit {
                break;
            }
        }
        Ok(page)
    }
}
