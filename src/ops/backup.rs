//! Backup and restore of a data dir (the archive format is in `archive.rs`).
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

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::CommandError;
use super::archive::{self, ArchiveWriter, DB_ENTRY, Manifest, SECRET_ENTRY};
use crate::files::{BlobStore, Hash};
use crate::store::Store;

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
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Writes `out` through `write` into `out.tmp`, fsyncs it, verifies the archive there (every
/// checksum of its manifest) and only then renames it into place, so `out` is never a half or
/// damaged archive. On error the temp file is removed.
pub fn write_atomically(
    out: &Path,
    write: impl FnOnce(&mut BufWriter<fs::File>) -> anyhow::Result<()>,
) -> anyhow::Result<Manifest> {
    let mut name = out
        .file_name()
        .with_context(|| format!("--out {}: not a file name", out.display()))?
        .to_os_string();
    name.push(".tmp");
    let temp = TempPath(out.with_file_name(name));
    let file =
        fs::File::create(&temp.0).with_context(|| format!("cannot create {}", temp.0.display()))?;
    let mut buffered = BufWriter::with_capacity(1 << 16, file);
    write(&mut buffered)?;
    let file = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write the archive")?;
    file.sync_all()
        .context("cannot flush the archive to disk")?;
    drop(file);
    let manifest = archive::verify(&temp.0).context("the new archive does not verify")?;
    fs::rename(&temp.0, out).with_context(|| format!("cannot rename into {}", out.display()))?;
    std::mem::forget(temp);
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    archive::sync_dir(parent)?;
    Ok(manifest)
}

/// `tasker backup`: archives a stopped data dir itself, or asks the running server for the
/// archive over its admin socket. Either way `out` is written atomically and verified.
pub fn backup_command(data_dir: &Path, out: &Path) -> Result<Manifest, CommandError> {
    match super::open_existing(data_dir) {
        Ok(store) => {
            let blobs = BlobStore::open(data_dir).context("cannot open the blob directory")?;
            Ok(write_atomically(out, |file| {
                write_backup(&store, &blobs, data_dir, file).map(|_| ())
            })?)
        }
        #[cfg(unix)]
        Err(e) if super::is_locked(&e) => Ok(write_atomically(out, |file| {
            super::socket::fetch_backup(data_dir, file)
        })?),
        Err(e) => Err(e.into()),
    }
}

/// Why a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The command was used wrongly (exit code 2): e.g. the target is not empty.
    #[error("{0}")]
    Usage(String),
    /// The archive is bad or the files could not be written (exit code 1). Nothing was left
    /// in the target.
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}

/// Restores the archive at `from` into `data_dir`, which must be empty or absent. Everything
/// is checked before anything is written; the files are written into a temp dir next to
/// `data_dir` and renamed into place, so `data_dir` ends up complete or untouched.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Manifest, RestoreError> {
    match fs::read_dir(data_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(RestoreError::Usage(format!(
                    "--data-dir {} is not empty; restore only into an empty or new directory",
                    data_dir.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(RestoreError::Usage(format!(
                "--data-dir {}: {e}",
                data_dir.display()
            )));
        }
    }
    if !from.is_file() {
        return Err(RestoreError::Usage(format!(
            "--from {}: no such file",
            from.display()
        )));
    }
    let manifest =
        archive::verify(from).with_context(|| format!("{} is not usable", from.display()))?;

    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let name = data_dir
        .file_name()
        .with_context(|| format!("--data-dir {}: not a directory name", data_dir.display()))?;
    let temp = parent.join(format!(
        ".{}.restore-{}",
        name.to_string_lossy(),
        uuid::Uuid::now_v7().simple()
    ));
    let result = (|| -> anyhow::Result<()> {
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        archive::extract(from, &manifest, &temp)?;
        if data_dir.exists() {
            // Empty (checked above); a directory that filled up meanwhile makes this fail.
            fs::remove_dir(data_dir)
                .with_context(|| format!("cannot replace {}", data_dir.display()))?;
        }
        fs::rename(&temp, data_dir)
            .with_context(|| format!("cannot rename into {}", data_dir.display()))?;
        archive::sync_dir(&parent)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&temp);
        return Err(e.into());
    }
    Ok(manifest)
}
