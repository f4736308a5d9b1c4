//! The offline side of backups: `tasker backup` (writing an archive file atomically, directly
//! or through the running server's admin socket) and `tasker restore`. The archive itself is
//! written by [`crate::backup`], which the server uses too.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::CommandError;
use crate::backup::archive::{self, Manifest};
use crate::backup::{TempPath, write_backup};
use crate::files::BlobStore;

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
