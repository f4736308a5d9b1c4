//! Session rows and their three indexes: by user, by expiry, by refresh-token hash.
//!
//! A user has at most [`MAX_SESSIONS_PER_USER`] sessions (a new login evicts the oldest), and
//! expired sessions are removed in bounded batches through the expiry index, so neither a
//! login nor the sweep ever reads more than a bounded number of rows.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, Table};

use super::codec::{encode, read_row};
use super::tables::*;
use super::tx::{Rx, Tx};
use super::{Store, StoreError};
use crate::domain::session::RefreshHash;
use crate::domain::{Session, SessionId, User, UserId};

/// The most sessions one account keeps; a new login beyond it ends the oldest.
pub const MAX_SESSIONS_PER_USER: usize = 100;

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// The token was current: the session now has the new hash and a later expiry.
    Rotated {
        session: Box<Session>,
        user: Box<User>,
    },
    /// The token had already been used: the session was revoked (the token was probably stolen).
    Reused,
    /// No session knows this token, or it expired.
    Invalid,
}

/// The session table and its indexes, opened together in one write transaction so that no
/// code path can update one without the others.
struct SessionTables<'a> {
    tx: &'a Tx<'a>,
    rows: Table<'a, u128, &'static [u8]>,
    by_user: Table<'a, (u128, u128), ()>,
    by_expiry: Table<'a, (i64, u128), ()>,
    refresh: Table<'a, &'static str, u128>,
}

impl<'a> SessionTables<'a> {
    fn open(tx: &'a Tx<'a>) -> Result<Self, StoreError> {
        let txn = tx.txn();
        Ok(Self {
            tx,
            rows: txn.open_table(SESSIONS)?,
            by_user: txn.open_table(SESSIONS_BY_USER)?,
            by_expiry: txn.open_table(SESSIONS_BY_EXPIRY)?,
            refresh: txn.open_table(REFRESH_TOKENS)?,
        })
    }

    fn get(&self, id: u128) -> Result<Option<Session>, StoreError> {
        read_row(&self.rows, "sessions", id)
    }

    fn insert(&mut self, session: &Session) -> Result<(), StoreError> {
        let id = session.id.as_u128();
        self.rows.insert(id, encode(session)?.as_slice())?;
        self.by_user.insert((session.user_id.as_u128(), id), ())?;
        self.by_expiry
            .insert((session.expires_at.timestamp(), id), ())?;
        self.refresh.insert(session.refresh_hash.as_str(), id)?;
        Ok(())
    }

    /// Removes a session and every index entry pointing at it.
    fn delete(&mut self, session: &Session) -> Result<(), StoreError> {
        self.tx.note_auth_changed();
        let id = session.id.as_u128();
        self.rows.remove(id)?;
        self.by_user.remove((session.user_id.as_u128(), id))?;
        self.by_expiry
            .remove((session.expires_at.timestamp(), id))?;
        for hash in session.all_refresh_hashes() {
            self.refresh.remove(hash.as_str())?;
        }
        Ok(())
    }

    /// The session a refresh-token hash (current or superseded) belongs to.
    fn session_of_refresh(&self, hash: &RefreshHash) -> Result<Option<u128>, StoreError> {
        Ok(self.refresh.get(hash.as_str())?.map(|v| v.value()))
    }

    /// Keeps recognising a superseded hash of session `sid` (reuse detection).
    fn remember_refresh(&mut self, hash: &RefreshHash, sid: u128) -> Result<(), StoreError> {
        self.refresh.insert(hash.as_str(), sid)?;
        Ok(())
    }

    /// The ids of a user's sessions, oldest first (bounded by `MAX_SESSIONS_PER_USER`).
    fn ids_of_user(&self, user: UserId) -> Result<Vec<u128>, StoreError> {
        let user = user.as_u128();
        let mut ids = Vec::new();
        for entry in self.by_user.range((user, 0)..=(user, u128::MAX))? {
            ids.push(entry?.0.value().1);
        }
        Ok(ids)
    }

    /// Deletes every session of `user` except `keep`.
    fn delete_all_of_user(
        &mut self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<(), StoreError> {
        for id in self.ids_of_user(user)? {
            if Some(id) == keep.map(|s| s.as_u128()) {
                continue;
            }
            if let Some(session) = self.get(id)? {
                self.delete(&session)?;
            }
        }
        Ok(())
    }
}

impl Tx<'_> {
    /// Deletes every session of `user` except `keep` (a password change, a disabled account).
    pub(super) fn delete_sessions_of_user(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<(), StoreError> {
        SessionTables::open(self)?.delete_all_of_user(user, keep)
    }
}

impl Rx {
    pub(super) fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        read_row(&self.txn().open_table(SESSIONS)?, "sessions", id.as_u128())
    }
}

impl Store {
    /// Stores a new session, ending the user's oldest ones beyond the per-user cap.
    pub fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut tables = SessionTables::open(tx)?;
            let existing = tables.ids_of_user(session.user_id)?;
            let excess = (existing.len() + 1).saturating_sub(MAX_SESSIONS_PER_USER);
            for id in existing.into_iter().take(excess) {
                if let Some(old) = tables.get(id)? {
                    tables.delete(&old)?;
                }
            }
            tables.insert(session)
        })
    }

    /// A session and its user, read in one snapshot: what the bearer checker needs.
    pub fn session_with_user(&self, id: SessionId) -> Result<Option<(Session, User)>, StoreError> {
        let rx = self.read()?;
        let Some(session) = rx.session(id)? else {
            return Ok(None);
        };
        Ok(rx.user(session.user_id)?.map(|user| (session, user)))
    }

    /// Whether a session still exists and has not expired (the real-time feed re-checks its
    /// sockets with this after anything that can revoke one).
    pub fn session_alive(&self, id: SessionId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let txn = self.db().begin_read()?;
        let session: Option<Session> =
            read_row(&txn.open_table(SESSIONS)?, "sessions", id.as_u128())?;
        Ok(session.is_some_and(|s| !s.is_expired(now)))
    }

    /// Exchanges a refresh token (by hash) for a new one, or detects its reuse.
    pub fn rotate_refresh(
        &self,
        presented: &RefreshHash,
        new_hash: RefreshHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<RefreshOutcome, StoreError> {
        /// An unknown token: the transaction is dropped unwritten, as nothing changed.
        enum Unknown {
            Token,
            Failed(StoreError),
        }
        impl From<StoreError> for Unknown {
            fn from(e: StoreError) -> Self {
                Unknown::Failed(e)
            }
        }
        let outcome = self.write(|tx| {
            let mut tables = SessionTables::open(tx)?;
            let Some(sid) = tables.session_of_refresh(presented)? else {
                return Err(Unknown::Token);
            };
            let Some(mut session) = tables.get(sid)? else {
                return Err(Unknown::Token);
            };
            Ok(match tx.user(session.user_id)? {
                _ if session.refresh_hash != *presented => {
                    tables.delete(&session)?;
                    RefreshOutcome::Reused
                }
                Some(user) if !session.is_expired(now) && !user.disabled => {
                    tables.delete(&session)?;
                    session.rotate(new_hash, now, expires_at);
                    tables.insert(&session)?;
                    for hash in &session.previous_refresh_hashes {
                        tables.remember_refresh(hash, sid)?;
                    }
                    RefreshOutcome::Rotated {
                        session: Box::new(session),
                        user: Box::new(user),
                    }
                }
                _ => {
                    tables.delete(&session)?;
                    RefreshOutcome::Invalid
                }
            })
        });
        match outcome {
            Ok(outcome) => Ok(outcome),
            Err(Unknown::Token) => Ok(RefreshOutcome::Invalid),
            Err(Unknown::Failed(e)) => Err(e),
        }
    }

    /// Deletes `session` if it belongs to `user`; false when there is no such session.
    pub fn delete_session(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        self.write(|tx| {
            let mut tables = SessionTables::open(tx)?;
            match tables.get(session.as_u128())?.filter(|s| s.user_id == user) {
                Some(found) => {
                    tables.delete(&found)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }

    /// Up to `limit` live sessions of `user` after the session id `after`, oldest first.
    pub fn sessions_of_user(
        &self,
        user: UserId,
        after: Option<u128>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let txn = self.db().begin_read()?;
        let by_user = txn.open_table(SESSIONS_BY_USER)?;
        let rows = txn.open_table(SESSIONS)?;
        let user = user.as_u128();
        let start = match after {
            Some(u128::MAX) => return Ok(vec![]),
            Some(after) => after + 1,
            None => 0,
        };
        let mut page = Vec::with_capacity(limit);
        for entry in by_user.range((user, start)..=(user, u128::MAX))? {
            let id = entry?.0.value().1;
            let session: Option<Session> = read_row(&rows, "sessions", id)?;
            page.extend(session.filter(|s| !s.is_expired(now)));
            if page.len() == limit {
                break;
            }
        }
        Ok(page)
    }

    /// Deletes up to `limit` sessions that expired before `now`; returns how many.
    pub fn sweep_expired_sessions(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            let mut tables = SessionTables::open(tx)?;
            let mut expired = Vec::new();
            for entry in tables.by_expiry.range(..(now.timestamp(), 0))? {
                expired.push(entry?.0.value());
                if expired.len() == limit {
                    break;
                }
            }
            for key in &expired {
                if let Some(session) = tables.get(key.1)? {
                    tables.delete(&session)?;
                }
                // Also when the row is gone, so the sweep always makes progress.
                tables.by_expiry.remove(*key)?;
            }
            Ok(expired.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::session::RefreshHash;
    use crate::domain::user::PasswordHash;
    use crate::domain::{Email, Role, UserName};
    use chrono::Duration;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        (dir, store)
    }

    fn user(store: &Store) -> User {
        let now = Utc::now();
        store
            .insert_user(User {
                id: UserId::new(),
                email: Email::parse(&format!("{}@example.com", UserId::new())).unwrap(),
                name: UserName::parse("T").unwrap(),
                password_hash: PasswordHash::new("$2b$04$x".into()),
                role: Role::User,
                disabled: false,
                email_verified_at: None,
                created_at: now,
                updated_at: now,
                version: 1,
            })
            .unwrap()
    }

    fn session(user: &User, expires_in: Duration, hash: RefreshHash) -> Session {
        let now = Utc::now();
        Session {
            id: SessionId::new(),
            user_id: user.id,
            created_at: now,
            last_seen_at: now,
            expires_at: now + expires_in,
            user_agent: None,
            ip: None,
            refresh_hash: hash,
            previous_refresh_hashes: vec![],
        }
    }

    fn count<K: redb::Key + 'static>(
        store: &Store,
        table: redb::TableDefinition<'static, K, ()>,
    ) -> u64 {
        use redb::ReadableTableMetadata;
        store
            .db()
            .begin_read()
            .unwrap()
            .open_table(table)
            .unwrap()
            .len()
            .unwrap()
    }

    #[test]
    fn a_user_keeps_at_most_the_cap_and_loses_the_oldest() {
        let (_dir, store) = store();
        let user = user(&store);
        let sessions: Vec<Session> = (0..=MAX_SESSIONS_PER_USER)
            .map(|i| session(&user, Duration::days(1), format!("hash-{i}")))
            .collect();
        for s in &sessions {
            store.insert_session(s).unwrap();
        }
        let live = store
            .sessions_of_user(user.id, None, 1000, Utc::now())
            .unwrap();
        assert_eq!(live.len(), MAX_SESSIONS_PER_USER);
        assert_eq!(live[0].id, sessions[1].id, "the oldest was evicted");
        // Its refresh token no longer resolves.
        let outcome = store
            .rotate_refresh(&"hash-0".to_string(), "new".into(), Utc::now(), Utc::now())
            .unwrap();
        assert!(matches!(outcome, RefreshOutcome::Invalid));
        assert_eq!(
            count(&store, SESSIONS_BY_EXPIRY),
            MAX_SESSIONS_PER_USER as u64
        );
    }

    #[test]
    fn sweeping_removes_expired_sessions_and_their_index_entries() {
        let (_dir, store) = store();
        let user = user(&store);
        for i in 0..5 {
            store
                .insert_session(&session(&user, Duration::seconds(-10), format!("old-{i}")))
                .unwrap();
        }
        let live = session(&user, Duration::days(1), "live".into());
        store.insert_session(&live).unwrap();
        assert_eq!(
            store
                .sessions_of_user(user.id, None, 50, Utc::now())
                .unwrap()
                .len(),
            1,
            "expired are not listed"
        );

        assert_eq!(
            store.sweep_expired_sessions(Utc::now(), 2).unwrap(),
            2,
            "bounded batch"
        );
        assert_eq!(store.sweep_expired_sessions(Utc::now(), 100).unwrap(), 3);
        assert_eq!(store.sweep_expired_sessions(Utc::now(), 100).unwrap(), 0);
        assert_eq!(count(&store, SESSIONS_BY_EXPIRY), 1);
        assert_eq!(count(&store, SESSIONS_BY_USER), 1);
        let outcome = store
            .rotate_refresh(&"old-0".to_string(), "x".into(), Utc::now(), Utc::now())
            .unwrap();
        assert!(matches!(outcome, RefreshOutcome::Invalid));
        assert!(store.session_with_user(live.id).unwrap().is_some());
    }

    #[test]
    fn rotation_moves_the_expiry_index_entry() {
        let (_dir, store) = store();
        let user = user(&store);
        let s = session(&user, Duration::seconds(30), "first".into());
        store.insert_session(&s).unwrap();
        let later = Utc::now() + Duration::days(30);
        let outcome = store
            .rotate_refresh(&"first".to_string(), "second".into(), Utc::now(), later)
            .unwrap();
        assert!(matches!(outcome, RefreshOutcome::Rotated { .. }));
        assert_eq!(count(&store, SESSIONS_BY_EXPIRY), 1);
        // Not swept at the old expiry.
        assert_eq!(
            store
                .sweep_expired_sessions(Utc::now() + Duration::seconds(60), 10)
                .unwrap(),
            0
        );
        // The superseded token is still recognised, as reuse.
        let reused = store
            .rotate_refresh(&"first".to_string(), "third".into(), Utc::now(), later)
            .unwrap();
        assert!(matches!(reused, RefreshOutcome::Reused));
        assert_eq!(count(&store, SESSIONS_BY_EXPIRY), 0);
    }
}
