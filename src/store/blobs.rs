//! Blob reference counts. The bytes live under `DATA_DIR/blobs/` (the `files` module); the
//! database only counts how many attachments point at each hash. A write that drops the last
//! reference records the hash here; once that write is durable, [`Store::run`] hands the
//! hashes to whoever subscribed ([`Store::on_blobs_freed`]), which removes the files. Never
//! earlier: a crash before the flush would roll the reference back while its file was gone.

use std::cell::RefCell;

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::tables::BLOBS;
use super::{Store, StoreError};

thread_local! {
    /// Hashes the write transaction on this thread dropped to zero references.
    static PENDING: RefCell<Vec<[u8; 32]>> = const { RefCell::new(Vec::new()) };
    /// Hashes freed by writes committed on this thread since [`reset_committed`].
    static COMMITTED: RefCell<Vec<[u8; 32]>> = const { RefCell::new(Vec::new()) };
}

/// Forgets what an uncommitted transaction freed (called when a write begins).
pub(super) fn reset_pending() {
    PENDING.with(|p| p.borrow_mut().clear());
}

/// The write committed: what it freed is now really free.
pub(super) fn pending_committed() {
    let freed = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    COMMITTED.with(|c| c.borrow_mut().extend(freed));
}

pub(super) fn reset_committed() {
    COMMITTED.with(|c| c.borrow_mut().clear());
}

pub(super) fn take_committed() -> Vec<[u8; 32]> {
    COMMITTED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// One more attachment points at `hash`.
pub(super) fn add_ref(txn: &WriteTransaction, hash: [u8; 32]) -> Result<(), StoreError> {
    let mut blobs = txn.open_table(BLOBS)?;
    let count = blobs.get(hash)?.map_or(0, |c| c.value());
    blobs.insert(hash, count + 1)?;
    Ok(())
}

/// One attachment fewer points at `hash`; at zero the row goes and the file is to be removed.
pub(super) fn drop_ref(txn: &WriteTransaction, hash: [u8; 32]) -> Result<(), StoreError> {
    let mut blobs = txn.open_table(BLOBS)?;
    let count = blobs.get(hash)?.map_or(0, |c| c.value());
    if count > 1 {
        blobs.insert(hash, count - 1)?;
    } else {
        blobs.remove(hash)?;
        PENDING.with(|p| p.borrow_mut().push(hash));
    }
    Ok(())
}

impl Store {
    /// Whether any attachment points at `hash` (blob removal and the start-up sweep ask).
    pub fn blob_referenced(&self, hash: [u8; 32]) -> Result<bool, StoreError> {
        let txn = self.db().begin_read()?;
        Ok(txn.open_table(BLOBS)?.get(hash)?.is_some())
    }
}
