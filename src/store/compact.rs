//! Giving the database file's free space back (`tasker compact`, and the end of `tasker
//! import`).
//!
//! redb never shrinks its file by itself: pages a write frees are reused by later writes, but
//! the file keeps the size of its high-water mark. An import's one big transaction leaves
//! many free pages behind (pages its cache spilled to the file and later rewrote: a third of
//! the file at 200,000 tasks), and index tables filled in random key order have half-empty
//! pages. [`compact`] writes a new file from one snapshot, every table in key order (full
//! pages) and every JSON value in the current stored form (`codec.rs`: old plain-JSON rows
//! come out compressed), lets redb give back what that one transaction left free, makes it
//! durable and renames it over the database. The database stays open (locked) until the new
//! file is in place, so no server can start on the old one meanwhile. An interruption
//! (`kill -9`, a full disk) leaves the old file as it was and at most a stale
//! `tasker.redb.compacting`, which the next compaction removes. It needs free disk space for
//! the new file (at most the old file's size).

use std::path::{Path, PathBuf};

use super::{DEFAULT_CACHE_MIB, Store, StoreError, builder};

/// A compaction's before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// The file's size before, in bytes.
    pub before: u64,
    /// The file's size after, in bytes.
    pub after: u64,
}

/// Compacts the database file at `path`, which must exist and not be open anywhere (a
/// server holding it is [`StoreError::Locked`]). Opens it as it is: no migration, and a file
/// of a newer schema is refused like every offline command refuses it.
pub fn compact(path: &Path) -> Result<Compacted, StoreError> {
    let before = file_size(path)?;
    let store = Store::open_existing(path)?;
    let temp = temp_path(path);
    let _ = std::fs::remove_file(&temp);
    let written = (|| -> Result<(), StoreError> {
        store.snapshot()?.rewrite_to(&temp)?;
        let mut db = builder(DEFAULT_CACHE_MIB << 20).open(&temp)?;
        db.compact().map_err(|e| StoreError::Database(e.into()))?;
        drop(db);
        std::fs::File::open(&temp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&temp, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            // The rename itself is durable once the directory is.
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    drop(store);
    written?;
    Ok(Compacted {
        before,
        after: file_size(path)?,
    })
}

/// `tasker.redb.compacting` next to `tasker.redb`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".compacting");
    path.with_file_name(name)
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Database(redb::StorageError::Io(e).into())
}

fn file_size(path: &Path) -> Result<u64, StoreError> {
    std::fs::metadata(path).map(|m| m.len()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::tables::{BLOBS, PREFERENCES};
    use redb::ReadableDatabase;

    const PLAIN: &str = r#"{"time_zone":"Europe/Berlin","reminders":true,"digest":false,"delivery":{"task_assigned":"email","task_updated":"email"}}"#;

    #[test]
    fn compaction_gives_freed_pages_back_and_keeps_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let store = Store::open(&path).unwrap();
            let write = store.db().begin_write().unwrap();
            {
                let mut blobs = write.open_table(BLOBS).unwrap();
                for i in 0..20_000u32 {
                    let mut key = [0u8; 32];
                    key[..4].copy_from_slice(&i.to_be_bytes());
                    blobs.insert(key, 1).unwrap();
                }
            }
            {
                // A row from before values were compressed: plain JSON.
                let mut rows = write.open_table(PREFERENCES).unwrap();
                rows.insert(7, PLAIN.as_bytes()).unwrap();
            }
            write.commit().unwrap();
            let write = store.db().begin_write().unwrap();
            {
                let mut blobs = write.open_table(BLOBS).unwrap();
                for i in 100..20_000u32 {
                    let mut key = [0u8; 32];
                    key[..4].copy_from_slice(&i.to_be_bytes());
                    blobs.remove(key).unwrap();
                }
            }
            write.commit().unwrap();
        }
        let compacted = compact(&path).unwrap();
        assert!(!temp_path(&path).exists());
        assert!(
            compacted.after < compacted.before,
            "{compacted:?}: the freed pages are given back"
        );
        let store = Store::open(&path).unwrap();
        assert!(store.blob_referenced([0u8; 32]).unwrap());
        let mut last = [0u8; 32];
        last[..4].copy_from_slice(&99u32.to_be_bytes());
        assert!(store.blob_referenced(last).unwrap());
        let read = store.db().begin_read().unwrap();
        let rows = read.open_table(PREFERENCES).unwrap();
        let stored = rows.get(7).unwrap().unwrap().value().to_vec();
        assert_eq!(stored[0], crate::store::codec::ZSTD_DICT_1, "re-encoded");
        let value: serde_json::Value = crate::store::codec::decode("preferences", &stored).unwrap();
        assert_eq!(
            value,
            serde_json::from_str::<serde_json::Value>(PLAIN).unwrap()
        );
        drop((rows, read));
        assert!(
            matches!(compact(&path), Err(StoreError::Locked)),
            "a database in use is left alone"
        );
    }
}
