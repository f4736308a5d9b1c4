//! Receiving an upload: stream it to a temp file in `blobs/tmp/` while hashing it.
//!
//! Memory stays at one 64 KiB chunk plus the 8 KiB head, whatever the size of the file. The
//! temp file lives in the data dir (not `/tmp`) so that storing it is a `rename` on the same
//! file system, and it is removed whenever the upload goes no further.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{BlobStore, Hash, remove_file_if_present, sniff};

/// How much of an upload is read (and written) at a time.
const CHUNK_BYTES: usize = 64 * 1024;
/// How much of the start of an upload is kept for content sniffing.
const HEAD_BYTES: usize = 8 * 1024;
const TEMP_SUFFIX: &str = ".part";

/// Why an upload could not be received. Either way, nothing was kept.
#[derive(Debug)]
pub enum ReceiveError {
    /// The upload is larger than `limit` bytes.
    TooLarge { limit: u64 },
    /// Reading the upload or writing the temp file failed.
    Io(io::Error),
}

impl fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiveError::TooLarge { limit } => {
                write!(f, "the file is larger than the limit of {limit} bytes")
            }
            ReceiveError::Io(error) => write!(f, "could not receive the file: {error}"),
        }
    }
}

impl std::error::Error for ReceiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReceiveError::TooLarge { .. } => None,
            ReceiveError::Io(error) => Some(error),
        }
    }
}

impl From<io::Error> for ReceiveError {
    fn from(error: io::Error) -> Self {
        ReceiveError::Io(error)
    }
}

/// An upload that is fully on disk in `blobs/tmp/` but not yet stored under its hash.
///
/// Dropping it removes the temp file; [`BlobStore::persist`] keeps the content.
pub struct Received {
    pub hash: Hash,
    pub size: u64,
    /// The first (up to) 8 KiB, for [`sniff::sniff`].
    pub head: Vec<u8>,
    pub(super) temp: TempFile,
}

/// Without the head's 8 KiB of bytes, which would drown a log line.
impl fmt::Debug for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("hash", &self.hash)
            .field("size", &self.size)
            .field("head_len", &self.head.len())
            .field("temp", &self.temp.path)
            .finish()
    }
}

impl Received {
    /// The MIME type judged from the content (see [`sniff::sniff`]).
    pub fn sniffed_type(&self) -> &'static str {
        sniff::sniff(&self.head)
    }
}

impl BlobStore {
    /// Streams `reader` into a new temp file in 64 KiB chunks, hashing it on the way.
    ///
    /// Stops reading at once, and removes the temp file, when more than `limit` bytes arrive.
    pub async fn receive<R: AsyncRead + Unpin>(
        &self,
        reader: R,
        limit: u64,
    ) -> Result<Received, ReceiveError> {
        let path = self.inner.temp.join(temp_file_name());
        let file = create_private_file(&path).await?;
        // From here on every way out removes the file, unless it ends up in a `Received`.
        let temp = TempFile::new(path);
        let tally = copy_limited(reader, file, limit).await?;
        Ok(tally.finish(temp))
    }
}

/// Copies `reader` into `file`, stopping with `TooLarge` past `limit` bytes. Takes the file by
/// value so it is closed before the caller's guard removes it.
async fn copy_limited<R: AsyncRead + Unpin>(
    mut reader: R,
    mut file: tokio::fs::File,
    limit: u64,
) -> Result<Tally, ReceiveError> {
    let mut tally = Tally::new();
    let mut chunk = vec![0u8; CHUNK_BYTES];
    loop {
        let read = reader.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        let data = &chunk[..read];
        tally.add(data);
        if tally.size > limit {
            return Err(ReceiveError::TooLarge { limit });
        }
        file.write_all(data).await?;
    }
    // tokio writes in the background: flush waits until the last write has landed.
    file.flush().await?;
    Ok(tally)
}

/// Size, hash and head of an upload, accumulated chunk by chunk.
struct Tally {
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            hasher: Sha256::new(),
            size: 0,
            head: Vec::with_capacity(HEAD_BYTES),
        }
    }

    fn add(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.size += data.len() as u64;
        let wanted = HEAD_BYTES.saturating_sub(self.head.len()).min(data.len());
        self.head.extend_from_slice(&data[..wanted]);
    }

    fn finish(self, temp: TempFile) -> Received {
        Received {
            hash: Hash(self.hasher.finalize().into()),
            size: self.size,
            head: self.head,
            temp,
        }
    }
}

/// A file in `blobs/tmp/` that is removed when this guard drops, unless kept.
#[derive(Debug)]
pub(super) struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    fn new(path: PathBuf) -> Self {
        TempFile { path, armed: true }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The file has been moved into place: there is nothing left to remove.
    pub(super) fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // A plain `unlink`: cheap enough to run on the executor, and Drop cannot await.
        if let Err(error) = remove_file_if_present(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "could not remove temp upload");
        }
    }
}

/// `<32 random hex digits>.part`: at 128 bits names never collide in practice, and if one did,
/// `create_new` would fail rather than overwrite.
fn temp_file_name() -> String {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random[..16]);
    let hex = Hash(random).to_hex();
    format!("{}{TEMP_SUFFIX}", &hex[..32])
}

async fn create_private_file(path: &Path) -> io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::super::tests::{entries, open_store};
    use super::*;

    /// A reader that always fails: chained after some bytes, a client that disconnects.
    struct Broken;

    impl AsyncRead for Broken {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
        }
    }

    #[tokio::test]
    async fn receives_size_hash_and_head() {
        let (_dir, store) = open_store();
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let received = store.receive(&content[..], 1 << 20).await.expect("receive");
        assert_eq!(received.size, content.len() as u64);
        assert_eq!(received.hash, Hash::of(&content));
        assert_eq!(received.head, &content[..HEAD_BYTES]);
        let on_disk = std::fs::read(received.temp.path()).expect("read temp");
        assert_eq!(on_disk, content);
    }

    #[tokio::test]
    async fn a_short_upload_keeps_all_of_it_as_head() {
        let (_dir, store) = open_store();
        let received = store.receive(&b"hello"[..], 5).await.expect("receive");
        assert_eq!(received.head, b"hello");
        assert_eq!(received.sniffed_type(), "text/plain");
    }

    #[tokio::test]
    async fn an_empty_upload_is_fine() {
        let (_dir, store) = open_store();
        let received = store.receive(&b""[..], 0).await.expect("receive");
        assert_eq!(received.size, 0);
        assert_eq!(received.hash, Hash::of(b""));
    }

    #[tokio::test]
    async fn a_stream_over_the_limit_leaves_no_file() {
        let (dir, store) = open_store();
        let limit = 3 * CHUNK_BYTES as u64 + 10;
        let stream = tokio::io::repeat(b'x').take(limit + 1);
        let error = store.receive(stream, limit).await.expect_err("too large");
        assert!(matches!(error, ReceiveError::TooLarge { limit: l } if l == limit));
        assert!(entries(&dir.path().join("blobs/tmp")).is_empty());
    }

    #[tokio::test]
    async fn a_stream_of_exactly_the_limit_is_accepted() {
        let (_dir, store) = open_store();
        let stream = tokio::io::repeat(b'x').take(1000);
        let received = store.receive(stream, 1000).await.expect("receive");
        assert_eq!(received.size, 1000);
    }

    #[tokio::test]
    async fn a_broken_stream_leaves_no_file() {
        let (dir, store) = open_store();
        let stream = (&b"some bytes"[..]).chain(Broken);
        let error = store.receive(stream, 1 << 20).await.expect_err("broken");
        assert!(matches!(error, ReceiveError::Io(e) if e.kind() == io::ErrorKind::ConnectionReset));
        assert!(entries(&dir.path().join("blobs/tmp")).is_empty());
    }

    #[tokio::test]
    async fn dropping_a_received_upload_removes_its_temp_file() {
        let (dir, store) = open_store();
        let received = store.receive(&b"abc"[..], 10).await.expect("receive");
        assert_eq!(entries(&dir.path().join("blobs/tmp")).len(), 1);
        drop(received);
        assert!(entries(&dir.path().join("blobs/tmp")).is_empty());
    }

    #[test]
    fn receiving_can_run_on_a_multi_threaded_executor() {
        fn assert_send<T: Send>(_: &T) {}
        let (_dir, store) = open_store();
        assert_send(&store.receive(&b""[..], 0));
    }

    #[test]
    fn temp_names_are_random_hex() {
        let (a, b) = (temp_file_name(), temp_file_name());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32 + TEMP_SUFFIX.len());
        assert!(a.ends_with(TEMP_SUFFIX));
    }

    #[test]
    fn errors_read_well() {
        let too_large = ReceiveError::TooLarge { limit: 10 };
        assert_eq!(
            too_large.to_string(),
            "the file is larger than the limit of 10 bytes"
        );
    }
}
