//! Writing a consistent backup archive of a data dir (the format is in [`archive`]): what
//! the running server sends to an admin (`service::admin`) and what `tasker backup` writes on
//! a stopped one (`ops::backup`). It sits beside `store` and `files`, which it reads.
//!
//! # Consistency
//!
//! The database part is one read transaction copied table by table into a fresh redb file
//! ([`crate::store::Snapshot`]). The blobs are the ones that snapshot's BLOBS table refers to.
//! A blob can lose its last reference after the snapshot began, and the server then removes
//! its file, possibly while the archive is still being written. To rule that out, the
//! snapshot is begun and its blob list read *under the blob store's pin lock*, and every
//! listed blob is pinned before the lock is released ([`BlobStore::pin_while`]): a removal
//! either finished before the snapshot began (so the snapshot does not refer to the blob) or
//! comes after and finds the blob pinned. Blobs whose removal was skipped because of a pin are
//! removed when the backup ends (or by the sweep at the next start).
//!
//! A referenced blob that is missing or whose bytes do not match its hash fails the backup:
//! an archive is only written whole and correct (run `tasker check` to see the damage).

/// The archive format: tar entries plus a manifest of sizes and checksums.
pub mod archive;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::files::{BlobStore, Hash};
use crate::store::Store;
use archive::{ArchiveWriter, DB_ENTRY, Manifest, SECRET_ENTRY};

/// The directory under the data dir where a backup keeps its database snapshot while it
/// archives it. Emptied at every server start.
pub const BACKUP_TEMP_DIR: &str = "backup-tmp";

/// Writes a complete archive of the data dir to `out`: a snapshot of `store`, every blob it
/// refers to, and the secret file when there is one. Blocking.
pub fn write_backup<W: Write>(
    store: &Store,
    blobs: &BlobStore,
    data_dir: &Path,
    out: W,
) -> anyhow::Result<(W, Manifest)> {
    let (snapshot, pins) = blobs.pin_while(|| {
        let snapshot = store.snapshot()?;
        let hashes = snapshot.blob_hashes()?.into_iter().map(Hash).collect();
        Ok::<_, crate::store::StoreError>((snapshot, hashes))
    })?;
    let temp = TempPath(temp_snapshot_path(data_dir)?);
    let stats = snapshot
        .write_to(&temp.0)
        .context("cannot copy the database")?;
    drop(snapshot);

    let mut writer = ArchiveWriter::new(out);
    writer.add_file(DB_ENTRY, &temp.0)?;
    drop(temp);
    let secret = data_dir.join(SECRET_ENTRY);
    if secret.is_file() {
        writer.add_file(SECRET_ENTRY, &secret)?;
    }
    let hashes: Vec<Hash> = pins.iter().map(|p| p.hash()).collect();
    for hash in &hashes {
        let path = blobs.path(hash);
        if !path.is_file() {
            bail!(
                "blob {} is referenced by the database but missing from {}; run `tasker check`",
                hash.to_hex(),
                path.display()
            );
        }
        let hex = hash.to_hex();
        let stored = writer.add_file(&format!("blobs/{}/{hex}", &hex[..2]), &path)?;
        if stored != *hash {
            bail!("blob {hex} is corrupt (its bytes do not match its hash); run `tasker check`");
        }
    }
    let result = writer.finish(stats.schema_version)?;
    drop(pins);
    for hash in hashes {
        // A blob freed while it was pinned is removed now; errors leave it to the next sweep.
        let _ = blobs.remove_if_unreferenced(hash, || {
            store.blob_referenced(hash.0).map_err(std::io::Error::other)
        });
    }
    Ok(result)
}

/// A fresh path for a snapshot file under `DATA_DIR/backup-tmp/`.
fn temp_snapshot_path(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join(BACKUP_TEMP_DIR);
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.join(format!("{}.redb", uuid::Uuid::now_v7().simple())))
}

/// Removes what an interrupted backup left under the data dir (call while holding the
/// database lock, before serving).
pub fn clear_temp(data_dir: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(data_dir.join(BACKUP_TEMP_DIR)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A file removed when dropped.
pub(crate) struct TempPath(pub(crate) PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
