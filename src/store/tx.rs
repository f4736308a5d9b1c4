//! The write transaction, [`Tx`], and what a commit must do afterwards, [`Effects`].
//!
//! Every mutation is `store.write(|tx| ...)`: the closure gets a [`Tx`], which carries the open
//! redb transaction and the [`Effects`] the write has had so far. The entity files add
//! `impl Tx<'_>` blocks with their rows' operations (`tx.insert_membership(..)`,
//! `tx.delete_tasks_of_team(..)`, `tx.append(..)`), and a cascade is one such method calling
//! others on the same `tx`, so no entity file imports another. A method that has a side effect
//! beyond its rows records it on the `tx` (`note_*` below), where a reader of the call site can
//! see it:
//!
//! - the newest change-log `seq` appended (`log_end` moves to it after the commit);
//! - task ids written and whether a membership changed (the read cache drops them around the
//!   commit, see `read_cache.rs`);
//! - whether a session or an account changed (the auth epoch is bumped after the commit);
//! - blob hashes that lost their last reference (handed to the subscriber once durable).
//!
//! When the closure returns `Err`, the transaction is dropped (redb rolls it back) and none of
//! its effects is applied. The closure's error type is the caller's (anything a
//! [`StoreError`] converts into), so a caller can refuse from inside the transaction with its
//! own reason; with [`Tx::task`] and [`Tx::membership`] a permission check can read what it
//! decides on in the same transaction as the write it allows (redb has one writer at a time),
//! rather than deciding before the transaction and confirming the decision inside it.
//!
//! Reads that span entities use [`Rx`], a read transaction the row files extend the same way.
//!
//! **From the blocking closure back to [`Store::run`].** A write through `run` must not be
//! answered before it is durable, and what it freed is handed over only then. `run` gives its
//! closure a handle of the store that carries a fresh per-call [`Receipts`]; each commit made
//! through that handle adds its group-commit generation and its freed blobs there, and after
//! the closure returns `run` waits for that generation and hands the blobs over. A store used
//! without `run` (tools, tests) has no receipts: its commits are durable when they return
//! (without group commit), and nobody is listening for freed blobs (the sweep at the next start
//! removes such files). A handle cloned inside a `run` closure carries the same receipts, so
//! keep such clones within the closure.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableHandle, WriteTransaction};

use super::tables::ID_HIGH_WATER;
use super::{Store, StoreError};
use crate::domain::UserId;

/// What a committed write must do afterwards: collected while the write runs, applied by
/// [`Store::write`] around its commit, dropped with the transaction when it fails.
#[derive(Debug, Default)]
pub(super) struct Effects {
    /// The newest change-log `seq` appended (0: none).
    last_seq: u64,
    /// Blobs whose last reference went.
    blobs_freed: Vec<[u8; 32]>,
    /// Task ids written (the read cache drops them).
    tasks_written: Vec<u128>,
    /// Whether a membership was added, changed or removed (the read cache drops its roles).
    members_changed: bool,
    /// Whether a session was deleted or an account changed (cached session checks look again).
    auth_changed: bool,
}

/// An open write transaction and its `Effects` (see the module header). Handed out by
/// [`Store::write`].
pub struct Tx<'t> {
    txn: &'t WriteTransaction,
    effects: RefCell<Effects>,
}

impl<'t> Tx<'t> {
    /// The redb transaction, for the row files to open their tables.
    pub(super) fn txn(&self) -> &'t WriteTransaction {
        self.txn
    }

    pub(super) fn note_appended(&self, seq: u64) {
        let mut effects = self.effects.borrow_mut();
        effects.last_seq = effects.last_seq.max(seq);
    }

    pub(super) fn note_blob_freed(&self, hash: [u8; 32]) {
        self.effects.borrow_mut().blobs_freed.push(hash);
    }

    pub(super) fn note_task_written(&self, id: u128) {
        // Past `MAX_PICKED` the read cache drops every task anyway: a write of a million
        // (an import) keeps no list of them.
        let mut effects = self.effects.borrow_mut();
        if effects.tasks_written.len() <= super::read_cache::MAX_PICKED {
            effects.tasks_written.push(id);
        }
    }

    pub(super) fn note_members_changed(&self) {
        self.effects.borrow_mut().members_changed = true;
    }

    pub(super) fn note_auth_changed(&self) {
        self.effects.borrow_mut().auth_changed = true;
    }

    /// `proposed`, or the next id after the highest `table` has ever given out when that is
    /// not below it, recorded as the new high-water mark. Rows created this way have ids that
    /// grow with commit order (writes commit one at a time), so a reader paging oldest-first
    /// never misses a row that commits after a newer-looking one; and no id is handed out
    /// twice, even after the newest row was deleted.
    pub(super) fn next_id(
        &self,
        table: redb::TableDefinition<u128, &'static [u8]>,
        proposed: u128,
    ) -> Result<u128, StoreError> {
        let name = table.name();
        let mut marks = self.txn.open_table(ID_HIGH_WATER)?;
        let mark = marks.get(name)?.map(|m| m.value());
        // Files from before the mark existed: the newest row stands in for it.
        let newest = self.txn.open_table(table)?.last()?.map(|(k, _)| k.value());
        let floor = mark.max(newest).map_or(0, |m| m.saturating_add(1));
        let id = proposed.max(floor);
        marks.insert(name, id)?;
        Ok(id)
    }
}

/// A read transaction for reads that span entities (a task and the reader's role in its
/// team); the row files add `impl Rx` blocks as they add `impl Tx<'_>` ones.
pub(super) struct Rx {
    txn: ReadTransaction,
}

impl Rx {
    pub(super) fn txn(&self) -> &ReadTransaction {
        &self.txn
    }
}

/// What a write knows about the change-log entry it just appended (notifications cite it).
#[derive(Clone, Copy)]
pub(super) struct Cause {
    pub seq: u64,
    pub actor: UserId,
    pub at: DateTime<Utc>,
}

/// What the commits made through one [`Store::run`] call leave for it to do before answering.
#[derive(Debug, Default)]
pub(super) struct Receipts {
    /// The group-commit generation of the newest commit (0: none, or no group commit).
    generation: u64,
    /// Blobs freed by those commits, to hand over once they are durable.
    blobs_freed: Vec<[u8; 32]>,
}

fn lock(receipts: &Mutex<Receipts>) -> std::sync::MutexGuard<'_, Receipts> {
    receipts.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// Runs `f` in one write transaction and commits it when `f` returns `Ok`; on `Err`
    /// nothing is written and no effect applied. Synchronous: call it inside [`Store::run`]
    /// (or from tools). Under group commit the transaction is not durable on return; `run`
    /// waits for that.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut txn = self.db().begin_write().map_err(StoreError::from)?;
        if self.group.is_some() {
            txn.set_durability(redb::Durability::None)
                .map_err(StoreError::from)?;
        }
        let tx = Tx {
            txn: &txn,
            effects: RefCell::default(),
        };
        let value = f(&tx)?;
        let effects = tx.effects.into_inner();
        self.commit(txn, effects)?;
        Ok(value)
    }

    /// Commits `txn` and applies `effects`.
    fn commit(&self, txn: WriteTransaction, effects: Effects) -> Result<(), StoreError> {
        // Counted before it is visible: anyone who sees this write and then waits for
        // everything counted so far to be durable (the real-time feed) waits for it too. The
        // flusher cannot overtake it: its own write transaction waits for this one.
        if let Some(group) = &self.group {
            let generation = group.committed();
            if let Some(receipts) = &self.receipts {
                let mut receipts = lock(receipts);
                receipts.generation = receipts.generation.max(generation);
            }
        }
        let in_flight = self
            .reads
            .before_commit(effects.tasks_written, effects.members_changed);
        let committed = txn.commit();
        self.reads.after_commit(in_flight);
        committed?;
        if let Some(receipts) = &self.receipts {
            lock(receipts).blobs_freed.extend(effects.blobs_freed);
        }
        self.log_end
            .fetch_max(effects.last_seq, std::sync::atomic::Ordering::SeqCst);
        if effects.auth_changed {
            self.auth_epoch
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    /// A read transaction for reads across entities.
    pub(super) fn read(&self) -> Result<Rx, StoreError> {
        Ok(Rx {
            txn: self.db().begin_read()?,
        })
    }

    /// Runs `f` on tokio's blocking pool. Every redb access from async code goes through here.
    /// When `f` committed a write, this returns only once that write is durable.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
    {
        let receipts = Arc::new(Mutex::new(Receipts::default()));
        let store = Store {
            receipts: Some(receipts.clone()),
            ..self.clone()
        };
        let result = tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| E::from(StoreError::Join(e.to_string())))?;
        let Receipts {
            generation,
            blobs_freed,
        } = std::mem::take(&mut *lock(&receipts));
        if generation > 0 {
            if let Some(group) = &self.group {
                group.durable(generation).await.map_err(E::from)?;
            }
            self.written.send_modify(|n| *n += 1);
        }
        if !blobs_freed.is_empty()
            && let Some(subscriber) = self.freed_blobs.get()
        {
            // Nobody listening any more means the server is stopping: the sweep at the next
            // start removes those files.
            let _ = subscriber.send(blobs_freed);
        }
        result
    }
}

#[cfg(test)]
mod tests;
