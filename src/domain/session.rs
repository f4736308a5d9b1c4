//! A session is what an access token points at (`sid`). Deleting it revokes every token of
//! it at once, which is why logout and password changes really sign people out.
//!
//! Refresh tokens rotate: each use replaces the session's current refresh hash. The last few
//! superseded hashes are kept so that a replayed old token is recognised as theft and revokes
//! the session (OAuth 2.0 Security BCP, refresh token rotation).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{SessionId, UserId};

/// How many superseded refresh-token hashes a session remembers for reuse detection.
pub const REMEMBERED_REFRESH_HASHES: usize = 32;

/// SHA-256 of a refresh token, hex encoded. Tokens themselves are never stored.
pub type RefreshHash = String;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    /// Last login or refresh.
    pub last_seen_at: DateTime<Utc>,
    /// After this the refresh token no longer works; each refresh moves it forward.
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub refresh_hash: RefreshHash,
    /// Superseded refresh hashes, oldest first, at most `REMEMBERED_REFRESH_HASHES`.
    #[serde(default)]
    pub previous_refresh_hashes: Vec<RefreshHash>,
}

impl Session {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// Replaces the refresh hash; returns the hash that fell out of the remembered window, if
    /// any, so the caller can drop it from the lookup index.
    pub fn rotate(
        &mut self,
        new_hash: RefreshHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Option<RefreshHash> {
        let old = std::mem::replace(&mut self.refresh_hash, new_hash);
        self.previous_refresh_hashes.push(old);
        self.last_seen_at = now;
        self.expires_at = expires_at;
        if self.previous_refresh_hashes.len() > REMEMBERED_REFRESH_HASHES {
            Some(self.previous_refresh_hashes.remove(0))
        } else {
            None
        }
    }

    /// Every refresh hash that points at this session (current and remembered).
    pub fn all_refresh_hashes(&self) -> impl Iterator<Item = &RefreshHash> {
        std::iter::once(&self.refresh_hash).chain(self.previous_refresh_hashes.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let now = Utc::now();
        Session {
            id: SessionId::new(),
            user_id: UserId::new(),
            created_at: now,
            last_seen_at: now,
            expires_at: now,
            user_agent: None,
            ip: None,
            refresh_hash: "h0".into(),
            previous_refresh_hashes: vec![],
        }
    }

    #[test]
    fn rotation_remembers_a_bounded_window() {
        let mut s = session();
        let now = Utc::now();
        for i in 1..=REMEMBERED_REFRESH_HASHES {
            assert_eq!(s.rotate(format!("h{i}"), now, now), None);
        }
        assert_eq!(s.rotate("next".into(), now, now), Some("h0".to_string()));
        assert_eq!(s.previous_refresh_hashes.len(), REMEMBERED_REFRESH_HASHES);
        assert_eq!(
            s.all_refresh_hashes().count(),
            REMEMBERED_REFRESH_HASHES + 1
        );
        assert_eq!(s.refresh_hash, "next");
    }
}
