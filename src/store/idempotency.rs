//! `Idempotency-Key` for creates: the key is checked and recorded in the same write
//! transaction as the create, so two concurrent retries cannot both create.

use chrono::{DateTime, Duration, Utc};
use redb::ReadableTable;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::codec::{decode, encode};
use super::tables::{IDEMPOTENCY, IDEMPOTENCY_BY_TIME};
use super::tx::Tx;
use super::{Store, StoreError};
use crate::domain::UserId;

/// How long a key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::hours(24);

/// A create request's key: who sent it, the key, and a hash of the request's content.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub user: UserId,
    pub key: String,
    pub request_hash: String,
}

/// What a create led to.
#[derive(Debug)]
pub enum Created<T> {
    /// Created now.
    New(T),
    /// A retry: the first result, nothing created.
    Replayed(T),
}

#[derive(Serialize, Deserialize)]
struct Record {
    request_hash: String,
    created_at: DateTime<Utc>,
    result: serde_json::Value,
}

impl Tx<'_> {
    /// Looks the key up inside the create's transaction: the earlier result when it is a retry
    /// of the same request, an error when the key was used for a different one, and
    /// [`StoreError::IdempotentResourceGone`] when what the first request created has since
    /// been deleted (`exists` says, reading through this transaction): a retry is not told
    /// "created" with the id of something that is gone.
    pub(super) fn replayed<T: DeserializeOwned>(
        &self,
        idempotency: Option<&Idempotency>,
        now: DateTime<Utc>,
        exists: impl FnOnce(&Self, &T) -> Result<bool, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let Some(idem) = idempotency else {
            return Ok(None);
        };
        let table = self.txn().open_table(IDEMPOTENCY)?;
        let Some(row) = table.get((idem.user.as_u128(), idem.key.as_str()))? else {
            return Ok(None);
        };
        let record: Record = decode("idempotency", row.value())?;
        if record.created_at + IDEMPOTENCY_TTL <= now {
            return Ok(None);
        }
        if record.request_hash != idem.request_hash {
            return Err(StoreError::IdempotencyKeyReused);
        }
        let first: T = serde_json::from_value(record.result)
            .map_err(|e| StoreError::Corrupt(format!("idempotency record: {e}")))?;
        if !exists(self, &first)? {
            return Err(StoreError::IdempotentResourceGone);
        }
        Ok(Some(first))
    }

    /// Records a create's result under its key, inside the create's transaction.
    pub(super) fn remember<T: Serialize>(
        &self,
        idempotency: Option<&Idempotency>,
        now: DateTime<Utc>,
        result: &T,
    ) -> Result<(), StoreError> {
        let Some(idem) = idempotency else {
            return Ok(());
        };
        let mut table = self.txn().open_table(IDEMPOTENCY)?;
        let mut by_time = self.txn().open_table(IDEMPOTENCY_BY_TIME)?;
        let key = (idem.user.as_u128(), idem.key.as_str());
        if let Some(old) = table.get(key)? {
            // An expired record under the same key is replaced.
            let old: Record = decode("idempotency", old.value())?;
            by_time.remove((old.created_at.timestamp(), key.0, key.1))?;
        }
        let result = serde_json::to_value(result)
            .map_err(|e| StoreError::Corrupt(format!("idempotency record: {e}")))?;
        let record = Record {
            request_hash: idem.request_hash.clone(),
            created_at: now,
            result,
        };
        table.insert(key, encode(&record)?.as_slice())?;
        by_time.insert((now.timestamp(), key.0, key.1), ())?;
        Ok(())
    }
}

impl Store {
    /// Forgets up to `limit` keys older than the TTL; returns how many.
    pub fn sweep_idempotency_keys(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            let mut table = tx.txn().open_table(IDEMPOTENCY)?;
            let mut by_time = tx.txn().open_table(IDEMPOTENCY_BY_TIME)?;
            let cutoff = (now - IDEMPOTENCY_TTL).timestamp();
            let mut old: Vec<(i64, u128, String)> = Vec::new();
            for entry in by_time.range((i64::MIN, 0, "")..(cutoff, 0, ""))? {
                let (entry, _) = entry?;
                let (at, user, key) = entry.value();
                old.push((at, user, key.to_string()));
                if old.len() == limit {
                    break;
                }
            }
            for (at, user, key) in &old {
                by_time.remove((*at, *user, key.as_str()))?;
                table.remove((*user, key.as_str()))?;
            }
            Ok(old.len())
        })
    }
}
