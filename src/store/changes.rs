//! Appending to and reading the change log. Every write appends its entries through its
//! [`Tx`] (`tx.append`), which notes the newest `seq` so `log_end` moves after the commit.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, Table};
use uuid::Uuid;

use super::codec::{decode, encode};
use super::tables::{CHANGES, CHANGES_BY_ENTITY};
use super::tx::Tx;
use super::{Store, StoreError};
use crate::domain::change::{Change, ChangeAction, EntityKind, FieldChange, NewChange};
use crate::domain::{TeamId, UserId};

/// The newest `seq` in `db`'s log.
pub(super) fn last_seq_of(db: &redb::Database) -> Result<u64, StoreError> {
    let txn = db.begin_read()?;
    Ok(match txn.open_table(CHANGES) {
        Ok(log) => log.last()?.map_or(0, |(key, _)| key.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => 0,
        Err(e) => return Err(e.into()),
    })
}

/// A change to something of `team` that its members see (a team, a membership, an
/// invitation).
pub(super) fn in_team(
    at: DateTime<Utc>,
    actor: UserId,
    entity: EntityKind,
    entity_id: Uuid,
    team: TeamId,
    action: ChangeAction,
    fields: Vec<FieldChange>,
) -> NewChange {
    NewChange {
        at,
        actor,
        entity,
        entity_id,
        team_id: Some(team),
        project_id: None,
        audience: vec![],
        previous_team_id: None,
        previous_project_id: None,
        task_id: None,
        action,
        fields,
    }
}

impl Tx<'_> {
    /// Appends a change and returns its `seq`. The caller must not hold the change tables
    /// open.
    pub(super) fn append(&self, change: NewChange) -> Result<u64, StoreError> {
        ChangeLog::open(self)?.append(change)
    }

    /// Appends [`in_team`]`(..)` and returns its `seq`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn append_in_team(
        &self,
        at: DateTime<Utc>,
        actor: UserId,
        entity: EntityKind,
        entity_id: Uuid,
        team: TeamId,
        action: ChangeAction,
        fields: Vec<FieldChange>,
    ) -> Result<u64, StoreError> {
        self.append(in_team(at, actor, entity, entity_id, team, action, fields))
    }
}

/// The change tables held open, for a write that appends many entries (bulk import).
pub(super) struct ChangeLog<'a> {
    tx: &'a Tx<'a>,
    log: Table<'a, u64, &'static [u8]>,
    by_entity: Table<'a, (u128, u64), ()>,
}

impl<'a> ChangeLog<'a> {
    pub(super) fn open(tx: &'a Tx<'a>) -> Result<Self, StoreError> {
        Ok(Self {
            tx,
            log: tx.txn().open_table(CHANGES)?,
            by_entity: tx.txn().open_table(CHANGES_BY_ENTITY)?,
        })
    }

    /// Appends `change` and returns its `seq`.
    pub(super) fn append(&mut self, change: NewChange) -> Result<u64, StoreError> {
        let seq = self.log.last()?.map_or(0, |(key, _)| key.value()) + 1;
        self.tx.note_appended(seq);
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
        let rx = self.read()?;
        let session_id = session;
        let session = rx.session(session)?;
        let alive = match session {
            Some(s) => s.user_id == user && !s.is_expired(now),
            // A personal access token's connection: its id stands in the session's place.
            None => self.access_token_alive(
                crate::domain::AccessTokenId::from_u128(session_id.as_u128()),
                now,
            )?,
        };
        let teams = rx.team_ids_of(user)?;
        let end = rx
            .txn()
            .open_table(CHANGES)?
            .last()?
            .map_or(0, |(key, _)| key.value());
        Ok((alive, teams, end))
    }
}
