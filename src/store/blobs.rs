//! Blob reference counts. The bytes live under `DATA_DIR/blobs/` (the `files` module); the
//! database only counts how many attachments point at each hash. A write that drops the last
//! reference notes the hash on its [`Tx`] (`Effects`); once that write is durable,
//! [`Store::run`] hands the hashes to whoever subscribed ([`Store::on_blobs_freed`]), which
//! removes the files. Never earlier: a crash before the flush would roll the reference back
//! while its file was gone.

use redb::{ReadableDatabase, ReadableTable};

use super::tables::BLOBS;
use super::tx::Tx;
use super::{Store, StoreError};

impl Tx<'_> {
    /// One more attachment points at `hash`.
    pub(super) fn add_blob_ref(&self, hash: [u8; 32]) -> Result<(), StoreError> {
        let mut blobs = self.txn().open_table(BLOBS)?;
        let count = blobs.get(hash)?.map_or(0, |c| c.value());
        blobs.insert(hash, count + 1)?;
        Ok(())
    }

    /// One attachment fewer points at `hash`; at zero the row goes and the file is to be
    /// removed once this write is durable.
    pub(super) fn drop_blob_ref(&self, hash: [u8; 32]) -> Result<(), StoreError> {
        let mut blobs = self.txn().open_table(BLOBS)?;
        let count = blobs.get(hash)?.map_or(0, |c| c.value());
        if count > 1 {
            blobs.insert(hash, count - 1)?;
        } else {
            blobs.remove(hash)?;
            self.note_blob_freed(hash);
        }
        Ok(())
    }
}

impl Store {
    /// Whether any attachment points at `hash` (blob removal and the start-up sweep ask).
    pub fn blob_referenced(&self, hash: [u8; 32]) -> Result<bool, StoreError> {
        let txn = self.db().begin_read()?;
        Ok(txn.open_table(BLOBS)?.get(hash)?.is_some())
    }
}
