//! Verified sessions, so most authenticated requests skip the session read.
//!
//! An entry records a session check that passed, stamped with the store's auth epoch read
//! *before* the session was read. The store bumps the epoch after every commit that deletes a
//! session (logout, revocation, password change, expiry sweep, reuse detection) or changes an
//! account, so a cached check is trusted only while nothing that could revoke it has happened
//! since; otherwise the session is read again. Revocation stays immediate.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};

use crate::domain::{Role, SessionId, UserId};

/// Entries kept before the cache is emptied (it refills from the store on demand).
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone, Copy)]
pub struct CachedSession {
    pub user_id: UserId,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    epoch: u64,
}

#[derive(Default)]
pub struct SessionCache {
    entries: RwLock<HashMap<SessionId, CachedSession>>,
}

impl SessionCache {
    /// A check of `session` that is still valid at `epoch`.
    pub fn get(&self, session: SessionId, epoch: u64) -> Option<CachedSession> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&session)
            .copied()
            .filter(|hit| hit.epoch == epoch)
    }

    /// Records a check that passed; `epoch` must have been read before the session was.
    pub fn insert(
        &self,
        session: SessionId,
        user_id: UserId,
        role: Role,
        expires_at: DateTime<Utc>,
        epoch: u64,
    ) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            session,
            CachedSession {
                user_id,
                role,
                expires_at,
                epoch,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_trusted_only_at_its_epoch() {
        let cache = SessionCache::default();
        let (session, user) = (SessionId::new(), UserId::new());
        cache.insert(session, user, Role::User, Utc::now(), 7);
        assert!(cache.get(session, 7).is_some());
        assert!(
            cache.get(session, 8).is_none(),
            "something was revoked since"
        );
        assert!(cache.get(SessionId::new(), 7).is_none());
    }
}
