//! Attachment bytes on disk: content-addressed, stored once, never served as a page.
//!
//! # Layout
//!
//! ```text
//! DATA_DIR/blobs/
//!     tmp/<random hex>.part      uploads in progress; all of them are removed at startup
//!     ab/abcd…(64 hex digits)    one file per SHA-256 of the content, named by it
//! ```
//!
//! The database (not this module) counts references to each hash; this module only stores,
//! finds and removes files.
//!
//! # Life of a blob
//!
//! 1. [`BlobStore::receive`] streams an upload into `tmp/` in 64 KiB chunks while hashing it,
//!    so memory stays flat however large the file; it keeps the first 8 KiB for [`sniff`].
//! 2. [`BlobStore::persist`] (blocking) fsyncs it and renames it to its hash's path, or drops
//!    it when that path already exists: identical files are stored once. It returns a
//!    [`Pinned`] guard.
//! 3. The caller commits the database reference, *then* drops the guard.
//! 4. Deleting the last reference commits first, then calls
//!    [`BlobStore::remove_if_unreferenced`].
//!
//! The pin closes one race: an upload has renamed its blob into place (or found it already
//! there) but not yet committed its reference, while a delete of the last *old* reference asks
//! the database, sees none, and removes the file. A pinned hash's file is never removed, and
//! the pin check and the database question happen under one lock.
//!
//! Whatever a crash leaves behind (temp files, blobs whose reference never got committed) is
//! cleaned by [`BlobStore::sweep`] at the next start.
//!
//! # Threading
//!
//! Only [`BlobStore::receive`] is async. Everything else does blocking file I/O (fsync, rename,
//! hashing) and belongs on `spawn_blocking`, like the database calls it goes with.

/// Safe display names and `Content-Disposition` values.
pub mod names;
/// `Range` headers: one byte range per request.
pub mod range;
/// What a file is (from its bytes) and what `Content-Type` we dare send for it.
pub mod sniff;

/// [`Hash`](struct@Hash): SHA-256, hex in file names.
mod hash;
/// [`SweepReport`] and [`BlobStore::sweep`]: startup cleanup.
mod sweep;
/// [`BlobStore::receive`]: streaming an upload into a temp file.
mod upload;

pub use hash::Hash;
pub use sweep::SweepReport;
pub use upload::{ReceiveError, Received};

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};

const BLOBS_DIR: &str = "blobs";
const TEMP_DIR: &str = "tmp";

/// The blob directory of a data dir. Cheap to clone: clones share the pins.
#[derive(Debug, Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `DATA_DIR/blobs`: holds the fan-out dirs.
    blobs: PathBuf,
    /// `DATA_DIR/blobs/tmp`: uploads in progress.
    temp: PathBuf,
    /// How many [`Pinned`] guards hold each hash; a hash nobody pins is absent.
    pins: Mutex<HashMap<Hash, usize>>,
}

/// Keeps a blob's file from being removed while alive. Hold it until the database reference
/// to the hash is committed (or has failed); dropping it unpins.
#[derive(Debug)]
#[must_use = "dropping the guard unpins the blob before its reference is committed"]
pub struct Pinned {
    store: BlobStore,
    hash: Hash,
}

impl Pinned {
    pub fn hash(&self) -> Hash {
        self.hash
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        self.store.unpin(self.hash);
    }
}

impl BlobStore {
    /// Opens `data_dir/blobs` and `data_dir/blobs/tmp`, creating them owner-only (0700) when
    /// missing: attachments are as private as the database.
    pub fn open(data_dir: &Path) -> io::Result<BlobStore> {
        let blobs = data_dir.join(BLOBS_DIR);
        let temp = blobs.join(TEMP_DIR);
        private_dir_builder().recursive(true).create(&temp)?;
        Ok(BlobStore {
            inner: Arc::new(Inner {
                blobs,
                temp,
                pins: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Where the blob of `hash` lives, whether or not it exists: `blobs/<2 hex>/<64 hex>`.
    /// The fan-out keeps directories small enough to list.
    pub fn path(&self, hash: &Hash) -> PathBuf {
        self.fan_out_dir(hash).join(hash.to_hex())
    }

    /// Whether the blob of `hash` is on disk (one blocking `stat`).
    pub fn exists(&self, hash: &Hash) -> bool {
        self.path(hash).is_file()
    }

    /// Stores a received upload under its hash. Blocking.
    ///
    /// Fsyncs the content and pins the hash; then drops the temp file when the blob is already
    /// stored (same hash, same bytes), or renames it into place and fsyncs the directories
    /// that changed, so the blob is durable before the database reference to it is.
    ///
    /// On an error after the rename the blob stays, unreferenced, until the next sweep.
    pub fn persist(&self, received: Received) -> io::Result<Pinned> {
        let Received { hash, temp, .. } = received;
        OpenOptions::new()
            .write(true)
            .open(temp.path())?
            .sync_all()?;
        let pinned = self.pin(hash);
        let target = self.path(&hash);
        if target.is_file() {
            // `temp` is removed as it drops.
            return Ok(pinned);
        }
        let fan_out = self.fan_out_dir(&hash);
        let created = create_dir_if_missing(&fan_out)?;
        fs::rename(temp.path(), &target)?;
        temp.keep();
        sync_dir(&fan_out)?;
        if created {
            sync_dir(&self.inner.blobs)?;
        }
        Ok(pinned)
    }

    /// Removes the blob of `hash` unless it is pinned or `is_referenced()` says the database
    /// still refers to it. Returns whether it is gone (a missing file counts). Blocking.
    ///
    /// `is_referenced` runs under the pin lock, so no upload can pin the hash between the
    /// answer and the removal. It must not use this store's pins (that would deadlock).
    pub fn remove_if_unreferenced(
        &self,
        hash: Hash,
        is_referenced: impl FnOnce() -> io::Result<bool>,
    ) -> io::Result<bool> {
        let pins = self.lock_pins();
        if pins.contains_key(&hash) || is_referenced()? {
            return Ok(false);
        }
        remove_file_if_present(&self.path(&hash))?;
        drop(pins);
        Ok(true)
    }

    /// Runs `read` under the pin lock and pins every hash it returns, before any removal can
    /// slip in between. A backup uses it: `read` begins a database snapshot and lists the
    /// blobs it refers to; a blob freed by a later commit then stays on disk (pinned) until
    /// the backup has copied it.
    pub fn pin_while<T, E>(
        &self,
        read: impl FnOnce() -> Result<(T, Vec<Hash>), E>,
    ) -> Result<(T, Vec<Pinned>), E> {
        let mut pins = self.lock_pins();
        let (value, hashes) = read()?;
        let pinned = hashes
            .into_iter()
            .map(|hash| {
                *pins.entry(hash).or_default() += 1;
                Pinned {
                    store: self.clone(),
                    hash,
                }
            })
            .collect();
        drop(pins);
        Ok((value, pinned))
    }

    /// Re-reads the blob of `hash` and checks that its content still has that hash. Blocking.
    /// A missing blob is an error (`NotFound`), not `false`.
    pub fn verify(&self, hash: &Hash) -> io::Result<bool> {
        let mut file = File::open(self.path(hash))?;
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher)?;
        Ok(Hash(hasher.finalize().into()) == *hash)
    }

    fn fan_out_dir(&self, hash: &Hash) -> PathBuf {
        self.inner.blobs.join(&hash.to_hex()[..2])
    }

    fn pin(&self, hash: Hash) -> Pinned {
        *self.lock_pins().entry(hash).or_default() += 1;
        Pinned {
            store: self.clone(),
            hash,
        }
    }

    fn unpin(&self, hash: Hash) {
        if let Entry::Occupied(mut count) = self.lock_pins().entry(hash) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
    }

    fn lock_pins(&self) -> MutexGuard<'_, HashMap<Hash, usize>> {
        // Each change to the map is one operation, so a panic while the lock was held cannot
        // have left it half-updated: poisoning carries no information here.
        self.inner
            .pins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A `DirBuilder` for directories only the server's user may enter (0700 on unix).
fn private_dir_builder() -> fs::DirBuilder {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}

/// Creates `dir` unless it exists; says whether it did.
fn create_dir_if_missing(dir: &Path) -> io::Result<bool> {
    match private_dir_builder().create(dir) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

/// Makes a rename or create in `dir` durable. Only unix can open a directory to fsync it.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes `path`; one that is already gone is fine.
fn remove_file_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A store in a fresh temp dir; keep the dir alive as long as the store.
    pub(crate) fn open_store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::open(dir.path()).expect("open store");
        (dir, store)
    }

    /// The names in `dir`, sorted.
    pub(crate) fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|entry| {
                let entry = entry.expect("dir entry");
                entry.file_name().to_string_lossy().into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// `remove_if_unreferenced` with a database that answers `referenced`.
    fn remove(store: &BlobStore, hash: Hash, referenced: bool) -> bool {
        store
            .remove_if_unreferenced(hash, || Ok(referenced))
            .expect("remove")
    }

    /// Receives and persists `content`, unpinning right away.
    pub(crate) async fn store_bytes(store: &BlobStore, content: &[u8]) -> Hash {
        let received = store.receive(content, 1 << 20).await.expect("receive");
        store.persist(received).expect("persist").hash()
    }

    #[test]
    fn open_creates_the_layout() {
        let (dir, _store) = open_store();
        assert!(dir.path().join("blobs/tmp").is_dir());
        // Opening again is fine.
        BlobStore::open(dir.path()).expect("reopen");
    }

    #[cfg(unix)]
    #[test]
    fn open_creates_private_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, _store) = open_store();
        for sub in ["blobs", "blobs/tmp"] {
            let mode = fs::metadata(dir.path().join(sub))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{sub}");
        }
    }

    #[test]
    fn paths_fan_out_by_the_first_two_hex_digits() {
        let (dir, store) = open_store();
        let hash = Hash::of(b"");
        let expected = dir
            .path()
            .join("blobs/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(store.path(&hash), expected);
        assert!(!store.exists(&hash));
    }

    #[tokio::test]
    async fn persisted_content_is_byte_identical_and_verifies() {
        let (dir, store) = open_store();
        let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let received = store.receive(&content[..], 1 << 20).await.expect("receive");
        let hash = received.hash;
        let pinned = store.persist(received).expect("persist");
        assert_eq!(pinned.hash(), hash);
        assert_eq!(fs::read(store.path(&hash)).expect("read blob"), content);
        assert!(store.verify(&hash).expect("verify"));
        assert!(entries(&dir.path().join("blobs/tmp")).is_empty());
    }

    #[tokio::test]
    async fn identical_uploads_are_stored_once() {
        let (dir, store) = open_store();
        let first = store.receive(&b"same"[..], 10).await.expect("receive");
        let second = store.receive(&b"same"[..], 10).await.expect("receive");
        let hash = first.hash;
        let _one = store.persist(first).expect("persist");
        let _two = store.persist(second).expect("persist");
        let hex = hash.to_hex();
        assert_eq!(entries(&dir.path().join("blobs").join(&hex[..2])), [hex]);
        assert!(entries(&dir.path().join("blobs/tmp")).is_empty());
    }

    #[tokio::test]
    async fn a_pinned_hash_survives_removal() {
        let (_dir, store) = open_store();
        let received = store.receive(&b"racing"[..], 10).await.expect("receive");
        let pinned = store.persist(received).expect("persist");
        let hash = pinned.hash();

        assert!(!remove(&store, hash, false));
        assert!(store.exists(&hash));

        drop(pinned);
        assert!(remove(&store, hash, false));
        assert!(!store.exists(&hash));
    }

    #[tokio::test]
    async fn pins_are_counted() {
        let (_dir, store) = open_store();
        let first = store.receive(&b"twice"[..], 10).await.expect("receive");
        let second = store.receive(&b"twice"[..], 10).await.expect("receive");
        let one = store.persist(first).expect("persist");
        let two = store.persist(second).expect("persist");
        let hash = one.hash();
        drop(one);
        assert!(!remove(&store, hash, false));
        drop(two);
        assert!(remove(&store, hash, false));
    }

    #[tokio::test]
    async fn a_referenced_blob_is_kept() {
        let (_dir, store) = open_store();
        let hash = store_bytes(&store, b"in use").await;
        assert!(!remove(&store, hash, true));
        assert!(store.exists(&hash));
    }

    #[test]
    fn removing_a_missing_blob_is_fine() {
        let (_dir, store) = open_store();
        assert!(remove(&store, Hash::of(b"never stored"), false));
    }

    #[tokio::test]
    async fn a_failing_reference_check_removes_nothing() {
        let (_dir, store) = open_store();
        let hash = store_bytes(&store, b"keep me").await;
        let result = store.remove_if_unreferenced(hash, || Err(io::Error::other("db down")));
        assert!(result.is_err());
        assert!(store.exists(&hash));
    }

    #[tokio::test]
    async fn verify_notices_corruption() {
        let (_dir, store) = open_store();
        let hash = store_bytes(&store, b"original").await;
        fs::write(store.path(&hash), b"tampered").expect("overwrite");
        assert!(!store.verify(&hash).expect("verify"));
        let missing = store.verify(&Hash::of(b"absent")).expect_err("missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
