//! Startup cleanup: whatever a crash or a failed upload left in the blob directory.
//!
//! A crash can leave temp files (an upload in progress) and blobs without a reference (stored,
//! but the database commit never happened). Both are found here and removed, once, before the
//! server accepts uploads.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::Path;

use super::{BlobStore, Hash, remove_file_if_present};

/// What [`BlobStore::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Leftover uploads removed from `blobs/tmp/`.
    pub temp_removed: usize,
    /// Files removed from the fan-out dirs: unreferenced blobs and misnamed files.
    pub orphans_removed: usize,
    /// Referenced (or pinned) blobs left in place.
    pub kept: usize,
}

impl BlobStore {
    /// Removes every temp file, every misnamed file in the fan-out dirs, and every blob that
    /// `is_referenced` does not know. Blocking.
    ///
    /// Run it at startup, before serving: it would also remove the temp files of uploads in
    /// progress. Anything else in `blobs/` (other dirs, symlinks) is left alone.
    pub fn sweep(
        &self,
        mut is_referenced: impl FnMut(&Hash) -> io::Result<bool>,
    ) -> io::Result<SweepReport> {
        let mut report = SweepReport {
            temp_removed: self.clear_temp()?,
            ..SweepReport::default()
        };
        for entry in fs::read_dir(&self.inner.blobs)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(prefix) = name.to_str().filter(|name| is_fan_out_name(name)) else {
                continue;
            };
            if entry.file_type()?.is_dir() {
                self.sweep_fan_out(&entry.path(), prefix, &mut is_referenced, &mut report)?;
            }
        }
        Ok(report)
    }

    fn clear_temp(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.inner.temp)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                tracing::warn!(path = %entry.path().display(), "directory in blobs/tmp left alone");
                continue;
            }
            remove_file_if_present(&entry.path())?;
            removed += 1;
        }
        Ok(removed)
    }

    fn sweep_fan_out<F>(
        &self,
        dir: &Path,
        prefix: &str,
        is_referenced: &mut F,
        report: &mut SweepReport,
    ) -> io::Result<()>
    where
        F: FnMut(&Hash) -> io::Result<bool>,
    {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                tracing::warn!(path = %entry.path().display(), "non-file in blob store left alone");
                continue;
            }
            let removed = match blob_hash(&entry.file_name(), prefix) {
                Some(hash) => self.remove_if_unreferenced(hash, || is_referenced(&hash))?,
                None => {
                    remove_file_if_present(&entry.path())?;
                    true
                }
            };
            if removed {
                report.orphans_removed += 1;
            } else {
                report.kept += 1;
            }
        }
        Ok(())
    }
}

/// Two lowercase hex digits: the name of a fan-out dir.
fn is_fan_out_name(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The hash a file in fan-out dir `prefix` stands for, if its name is the canonical
/// (lowercase) hex form of a hash that belongs in that dir.
fn blob_hash(file_name: &OsStr, prefix: &str) -> Option<Hash> {
    let name = file_name.to_str()?;
    Hash::from_hex(name).filter(|hash| hash.to_hex() == name && name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::tests::{entries, open_store, store_bytes};
    use super::*;

    #[tokio::test]
    async fn removes_temp_files_bad_names_and_unreferenced_blobs() {
        let (dir, store) = open_store();
        let kept = store_bytes(&store, b"referenced").await;
        let orphan = store_bytes(&store, b"orphan").await;
        let blobs = dir.path().join("blobs");

        // Leftovers of a crash mid-upload.
        fs::write(blobs.join("tmp/0123.part"), b"half").expect("write");
        fs::write(blobs.join("tmp/other"), b"x").expect("write");
        // Misnamed files: not hex, upper case, in the wrong fan-out dir.
        let kept_hex = kept.to_hex();
        let kept_dir = blobs.join(&kept_hex[..2]);
        fs::write(kept_dir.join("notes.txt"), b"x").expect("write");
        fs::write(kept_dir.join(kept_hex.to_uppercase()), b"x").expect("write");
        let stray = Hash::of(b"elsewhere");
        let wrong_dir = blobs.join(if stray.to_hex().starts_with("00") {
            "01"
        } else {
            "00"
        });
        fs::create_dir_all(&wrong_dir).expect("mkdir");
        fs::write(wrong_dir.join(stray.to_hex()), b"elsewhere").expect("write");
        // Not ours to judge: left alone.
        fs::write(blobs.join("README"), b"x").expect("write");
        fs::create_dir(blobs.join("zz")).expect("mkdir");
        fs::write(blobs.join("zz/file"), b"x").expect("write");

        let referenced = HashSet::from([kept, stray]);
        let report = store
            .sweep(|hash| Ok(referenced.contains(hash)))
            .expect("sweep");

        assert_eq!(
            report,
            SweepReport {
                temp_removed: 2,
                orphans_removed: 4,
                kept: 1
            }
        );
        assert!(entries(&blobs.join("tmp")).is_empty());
        assert_eq!(entries(&kept_dir), [kept_hex]);
        assert!(store.verify(&kept).expect("verify"));
        assert!(!store.exists(&orphan));
        assert!(entries(&wrong_dir).is_empty());
        assert!(blobs.join("README").exists());
        assert!(blobs.join("zz/file").exists());
    }

    #[tokio::test]
    async fn keeps_pinned_blobs() {
        let (_dir, store) = open_store();
        let received = store
            .receive(&b"uploading"[..], 100)
            .await
            .expect("receive");
        let pinned = store.persist(received).expect("persist");
        let report = store.sweep(|_| Ok(false)).expect("sweep");
        assert_eq!(report.kept, 1);
        assert!(store.exists(&pinned.hash()));
    }

    #[test]
    fn an_empty_store_sweeps_to_nothing() {
        let (_dir, store) = open_store();
        let report = store.sweep(|_| Ok(true)).expect("sweep");
        assert_eq!(report, SweepReport::default());
    }

    #[tokio::test]
    async fn a_failing_reference_check_stops_the_sweep() {
        let (_dir, store) = open_store();
        let hash = store_bytes(&store, b"x").await;
        let error = store
            .sweep(|_| Err(io::Error::other("db down")))
            .expect_err("fails");
        assert_eq!(error.to_string(), "db down");
        assert!(store.exists(&hash));
    }

    #[test]
    fn fan_out_names() {
        assert!(is_fan_out_name("0a"));
        assert!(!is_fan_out_name("0A"));
        assert!(!is_fan_out_name("tmp"));
        assert!(!is_fan_out_name("g0"));
    }
}
