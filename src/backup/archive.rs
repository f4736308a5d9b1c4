//! The backup archive: a plain tar with a manifest.
//!
//! ```text
//! tasker.redb                 the database snapshot
//! jwt-secret                  the generated token secret (when the data dir has one)
//! blobs/ab/abcd…              every blob the snapshot refers to, named by its SHA-256
//! MANIFEST.json               last: format, versions, and path, size and SHA-256 of each entry
//! ```
//!
//! The manifest comes last because the checksums are computed while the entries are written:
//! the archive can be streamed (the running server sends it as it builds it). A reader
//! therefore reads an archive twice: [`verify`] checks everything before anything is written,
//! [`extract`] writes and checks each file again as it goes. A truncated archive has no
//! manifest (or a short entry) and fails [`verify`].

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::files::Hash;

/// The manifest's name in the archive.
pub const MANIFEST: &str = "MANIFEST.json";
/// The database's name in the archive (and in the data dir).
pub const DB_ENTRY: &str = crate::store::DB_FILE;
/// The generated secret's name in the archive (and in the data dir).
pub const SECRET_ENTRY: &str = crate::config::SECRET_FILE;
/// The archive layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The largest manifest accepted (a million blobs is about 150 MB; this is far above it).
const MAX_MANIFEST_BYTES: u64 = 512 << 20;

/// What an archive holds, written as its last entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The archive layout ([`FORMAT_VERSION`]).
    pub format: u32,
    /// The tasker that wrote it.
    pub tasker_version: String,
    pub created_at: DateTime<Utc>,
    /// The database's schema version (the last migration applied).
    pub schema_version: u64,
    /// Every other entry of the archive, in archive order.
    pub entries: Vec<ManifestEntry>,
}

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

impl Manifest {
    /// How many blobs the archive holds.
    pub fn blob_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.path.starts_with("blobs/"))
            .count()
    }

    /// The bytes of all entries.
    pub fn total_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}

/// Writes an archive entry by entry; [`ArchiveWriter::finish`] appends the manifest.
pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<W>,
    entries: Vec<ManifestEntry>,
    mtime: u64,
}

impl<W: Write> ArchiveWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            tar: tar::Builder::new(out),
            entries: Vec::new(),
            mtime: Utc::now().timestamp().max(0) as u64,
        }
    }

    /// Appends the file at `source` as `path`, hashing it on the way; returns its SHA-256.
    /// Fails if the file changes size while it is read.
    pub fn add_file(&mut self, path: &str, source: &Path) -> anyhow::Result<Hash> {
        let file =
            File::open(source).with_context(|| format!("cannot open {}", source.display()))?;
        let size = file.metadata()?.len();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(0o600);
        header.set_mtime(self.mtime);
        let mut reader = Hashing::new(file.take(size));
        self.tar
            .append_data(&mut header, path, &mut reader)
            .with_context(|| format!("cannot write {path} into the archive"))?;
        if reader.bytes != size {
            bail!(
                "{} changed while it was archived ({} of {size} bytes)",
                source.display(),
                reader.bytes
            );
        }
        let hash = reader.finish();
        self.entries.push(ManifestEntry {
            path: path.to_string(),
            size,
            sha256: hash.to_hex(),
        });
        Ok(hash)
    }

    /// Appends the manifest, ends the tar and returns the writer (flushed) and the manifest.
    pub fn finish(mut self, schema_version: u64) -> anyhow::Result<(W, Manifest)> {
        let manifest = Manifest {
            format: FORMAT_VERSION,
            tasker_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: Utc::now(),
            schema_version,
            entries: std::mem::take(&mut self.entries),
        };
        let json = serde_json::to_vec_pretty(&manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(self.mtime);
        self.tar
            .append_data(&mut header, MANIFEST, json.as_slice())
            .context("cannot write the manifest")?;
        let mut out = self.tar.into_inner().context("cannot end the archive")?;
        out.flush().context("cannot write the archive")?;
        Ok((out, manifest))
    }
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> Hash {
        Hash(self.hasher.finalize().into())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// What kind of file an archive path names; anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Manifest,
    Database,
    Secret,
    Blob(Hash),
}

/// Checks an archive path: relative, no `..`, and one of the names an archive may hold.
fn classify(path: &str) -> anyhow::Result<EntryKind> {
    let unsafe_path = Path::new(path)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)));
    if unsafe_path || path.contains('\\') || path.is_empty() {
        bail!("the archive holds an unsafe path: {path:?}");
    }
    match path {
        MANIFEST => return Ok(EntryKind::Manifest),
        DB_ENTRY => return Ok(EntryKind::Database),
        SECRET_ENTRY => return Ok(EntryKind::Secret),
        _ => {}
    }
    let mut parts = path.split('/');
    if let (Some("blobs"), Some(prefix), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
        && let Some(hash) = Hash::from_hex(name)
        && hash.to_hex() == name
        && name.starts_with(prefix)
        && prefix.len() == 2
    {
        return Ok(EntryKind::Blob(hash));
    }
    bail!("the archive holds a file a tasker backup never has: {path:?}")
}

/// Reads every entry of the archive at `path`, checks each against the manifest and the
/// manifest against the entries, and returns the manifest. Writes nothing.
pub fn verify(path: &Path) -> anyhow::Result<Manifest> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 16, file));
    let mut found: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    let entries = archive.entries().context("not a tar archive")?;
    for entry in entries {
        let mut entry = entry.context("the archive is damaged or truncated")?;
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| anyhow::anyhow!("the archive holds a path that is not UTF-8"))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            bail!("the archive holds {path:?}, which is not a regular file");
        }
        let kind = classify(&path)?;
        if found.contains_key(&path) || (kind == EntryKind::Manifest && manifest.is_some()) {
            bail!("the archive holds {path:?} twice");
        }
        if kind == EntryKind::Manifest {
            let mut json = Vec::new();
            (&mut entry)
                .take(MAX_MANIFEST_BYTES)
                .read_to_end(&mut json)
                .context("cannot read the manifest")?;
            manifest = Some(serde_json::from_slice(&json).context("the manifest is not valid")?);
            continue;
        }
        let size = entry.header().size()?;
        let mut reader = Hashing::new(&mut entry);
        io::copy(&mut reader, &mut io::sink())
            .with_context(|| format!("the archive is damaged or truncated in {path}"))?;
        if reader.bytes != size {
            bail!("the archive is truncated in {path}");
        }
        let bytes = reader.bytes;
        let hash = reader.finish();
        if let EntryKind::Blob(expected) = kind
            && hash != expected
        {
            bail!("checksum mismatch: {path} does not hash to its name");
        }
        found.insert(path, (bytes, hash.to_hex()));
    }
    let Some(manifest) = manifest else {
        bail!("the archive has no {MANIFEST}: it is truncated or not a tasker backup");
    };
    if manifest.format != FORMAT_VERSION {
        bail!(
            "the archive has format {} and this tasker reads format {FORMAT_VERSION}",
            manifest.format
        );
    }
    let known = crate::store::migrations::latest_version();
    if manifest.schema_version > known {
        bail!(
            "the backup was made by a newer tasker ({}, schema version {}; this build knows up to {known}); restore it with that version or later",
            manifest.tasker_version,
            manifest.schema_version
        );
    }
    for listed in &manifest.entries {
        match found.remove(&listed.path) {
            None => bail!("{} is in the manifest but not in the archive", listed.path),
            Some((size, sha)) if size != listed.size || sha != listed.sha256 => {
                bail!("checksum mismatch in {}", listed.path)
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = found.keys().next() {
        bail!("{extra} is in the archive but not in the manifest");
    }
    if !manifest.entries.iter().any(|e| e.path == DB_ENTRY) {
        bail!("the archive has no database ({DB_ENTRY})");
    }
    Ok(manifest)
}

/// Writes every entry of a [`verify`]-ed archive under `dir` (which exists and is empty),
/// checking each file against the manifest again, and makes each file durable.
pub fn extract(archive_path: &Path, manifest: &Manifest, dir: &Path) -> anyhow::Result<()> {
    let expected: BTreeMap<&str, &ManifestEntry> = manifest
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    let file = File::open(archive_path)
        .with_context(|| format!("cannot open {}", archive_path.display()))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 16, file));
    let mut written = 0;
    for entry in archive.entries()? {
        let mut entry = entry.context("the archive is damaged or truncated")?;
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| anyhow::anyhow!("the archive changed since it was verified"))?;
        if classify(&path)? == EntryKind::Manifest {
            continue;
        }
        let Some(listed) = expected.get(path.as_str()) else {
            bail!("the archive changed since it was verified ({path})");
        };
        let target = dir.join(&path);
        if let Some(parent) = target.parent() {
            private_dirs().create(parent)?;
        }
        let mut out = private_file(&target)?;
        let mut reader = Hashing::new(&mut entry);
        io::copy(&mut reader, &mut out).with_context(|| format!("cannot write {path}"))?;
        if reader.bytes != listed.size || reader.finish().to_hex() != listed.sha256 {
            bail!("the archive changed since it was verified ({path})");
        }
        out.sync_all()?;
        written += 1;
    }
    if written != manifest.entries.len() {
        bail!("the archive changed since it was verified");
    }
    private_dirs().create(dir.join("blobs/tmp"))?;
    sync_tree(dir)?;
    Ok(())
}

fn private_dirs() -> fs::DirBuilder {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}

/// A new file only its owner may read (the secret and the database are as private as the
/// data dir).
pub(crate) fn private_file(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Fsyncs `dir` and every directory under it, so the new entries are durable.
fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        }
    }
    sync_dir(dir)
}

/// Makes the entries of `dir` durable (only unix can open a directory to fsync it).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_relative_paths_pass() {
        let hash = Hash::of(b"x").to_hex();
        assert_eq!(classify(DB_ENTRY).unwrap(), EntryKind::Database);
        assert!(matches!(
            classify(&format!("blobs/{}/{hash}", &hash[..2])).unwrap(),
            EntryKind::Blob(_)
        ));
        for bad in [
            "../tasker.redb".to_string(),
            "/tasker.redb".to_string(),
            "./tasker.redb".to_string(),
            "blobs/../../etc/passwd".to_string(),
            format!("blobs/00/{hash}"),
            format!("blobs/{}/{}", &hash[..2], hash.to_uppercase()),
            "notes.txt".to_string(),
            String::new(),
        ] {
            assert!(classify(&bad).is_err(), "{bad:?} accepted");
        }
    }
}
