//! Appending to and reading the change log.

use redb::{ReadableDatabase, ReadableTable, Table, WriteTransaction};

use super::codec::{decode, encode};
use super::tables::{CHANGES, CHANGES_BY_ENTITY};
use super::{Store, StoreError};
use crate::domain::change::{Change, NewChange};

thread_local! {
    /// The newest `seq` appended by the write transaction running on this thread.
    static APPENDED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The newest `seq` appended since the last call on this thread (0 for none).
pub(super) fn take_appended() -> u64 {
    APPENDED.with(|a| a.replace(0))
}

/// The newest `seq` in `db`'s log.
pub(super) fn last_seq_of(db: &redb::Database) -> Result<u64, StoreError> {
    let txn = db.begin_read()?;
    Ok(match txn.open_table(CHANGES) {
        Ok(log) => log.last()?.map_or(0, |(key, _)| key.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => 0,
        Err(e) => return Err(e.into()),
    })
}

/// Appends a change inside the caller's write transaction and returns its `seq`. The caller
/// must not hold the change tables open.
pub(super) fn append(txn: &WriteTransaction, change: NewChange) -> Result<u64, StoreError> {
    ChangeLog::open(txn)?.append(change)
}

/// The change tables held open, for a write that appends many entries (bulk import).
pub(super) struct ChangeLog<'txn> {
    log: Table<'txn, u64, &'static [u8]>,
    by_entity: Table<'txn, (u128, u64), ()>,
}

impl<'txn> ChangeLog<'txn> {
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            log: txn.open_table(CHANGES)?,
            by_entity: txn.open_table(CHANGES_BY_ENTITY)?,
        })
    }

    /// Appends `change` and returns its `seq`.
    pub(super) fn append(&mut self, change: NewChange) -> Result<u64, StoreError> {
        let seq = self.log.last()?.map_or(0, |(key, _)| key.value()) + 1;
        APPENDED.with(|a| a.set(a.get().max(seq)));
        let entity = change.entity_id.as_u128();
        self.log
            .insert(seq, encode(&Change { seq, change })?.as_slice())?;
        self.by_entity.insert((entity, seq), ())?;
        Ok(seq)
    }
}

impl Store {
    /// Up to `limit` changes of one entity after `after`, oldest first.
    pub fn changes_of_entity(
        &self,
        entity: u128,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let txn = self.db().begin_read()?;
        let by_entity = txn.open_table(CHANGES_BY_ENTITY)?;
        let log = txn.open_table(CHANGES)?;
        let start = after.map_or(0, |seq| seq.saturating_add(1));
        let mut page = Vec::with_capacity(limit);
        for entry in by_entity
            .range((entity, start)..=(entity, u64::MAX))?
            .take(limit)
        {
            let seq = entry?.0.value().1;
            if let Some(row) = log.get(seq)? {
                page.push(decode("changes", row.value())?);
            }
        }
        Ok(page)
    }

    /// The newest `seq` (0 for an empty log).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let txn = self.db().begin_read()?;
        Ok(txn
            .open_table(CHANGES)?
            .last()?
            .map_or(0, |(key, _)| key.value()))
    }

    /// One change, if the log still has it.
    pub fn change(&self, seq: u64) -> Result<Option<Change>, StoreError> {
        let txn = self.db().begin_read()?;
        let log = txn.open_table(CHANGES)?;
        log.get(seq)?
            .map(|row| decode("changes", row.value()))
            .transpose()
    }

    /// Up to `limit` changes with `after < seq <= upto`, in order.
    pub fn changes_between(
        &self,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let txn = self.db().begin_read()?;
        let log = txn.open_table(CHANGES)?;
        let mut page = Vec::new();
        if after >= upto {
            return Ok(page);
        }
        for entry in log.range(after + 1..=upto)?.take(limit) {
            page.push(decode("changes", entry?.1.value())?);
        }
        Ok(page)
    }

    /// In one snapshot: whether `session` is alive, `user`'s teams, and the newest `seq`
    /// (what a new real-time connection starts from).
    pub fn feed_snapshot(
        &self,
        user: crate::domain::UserId,
        session: crate::domain::SessionId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(bool, Vec<crate::domain::TeamId>, u64), StoreError> {
        use super::codec::read_row;
        use super::tables::SESSIONS;
        let txn = self.db().begin_read()?;
        let session: Option<crate::domain::Session> =
            read_row(&txn.open_table(SESSIONS)?, "sessions", session.as_u128())?;
        let alive = session.is_some_and(|s| s.user_id == user && !s.is_expired(now));
        let teams = super::projects::teams_of(&txn, user)?;
        let end = txn
            .open_table(CHANGES)?
            .last()?
            .map_or(0, |(key, _)| key.value());
        Ok((alive, teams, end))
    }
}
