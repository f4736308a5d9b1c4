//! The admin socket, `DATA_DIR/admin.sock`: while the server runs it holds the database lock,
//! so tools that need the data ask the server over this socket instead.
//!
//! It serves only the admin routes (today `GET /api/admin/backup`) with admin rights and no
//! token: whoever can open a file in the data dir (mode 0700; the socket itself is 0600) can
//! read the database anyway. The CLI speaks the few lines of HTTP/1.1 it needs (one GET, a
//! status line, headers, a chunked or close-delimited body) over a blocking unix stream.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The socket's name in the data dir.
pub const ADMIN_SOCKET: &str = "admin.sock";
/// The backup route, on the socket and (for admins with a token) on the API.
pub const BACKUP_PATH: &str = "/api/admin/backup";
/// The longest status line plus headers the client accepts.
const MAX_HEAD_BYTES: usize = 64 << 10;

/// Where the admin socket of `data_dir` lives.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(ADMIN_SOCKET)
}

/// Binds the admin socket (replacing a stale one: the caller holds the database lock, so no
/// other server can be using it) with mode 0600, non-blocking for tokio.
#[cfg(unix)]
pub fn bind(data_dir: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(data_dir);
    remove(data_dir)?;
    let listener = std::os::unix::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Removes the admin socket file if it is there.
pub fn remove(data_dir: &Path) -> io::Result<()> {
    match std::fs::remove_file(socket_path(data_dir)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Asks the server that holds `data_dir` for a backup and writes the archive to `out`.
/// The caller verifies the archive (its manifest) afterwards.
#[cfg(unix)]
pub fn fetch_backup(data_dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let path = socket_path(data_dir);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).with_context(|| {
        format!(
            "the server holds the data dir, but its admin socket {} does not answer",
            path.display()
        )
    })?;
    stream.write_all(
        format!("GET {BACKUP_PATH} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )?;
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let (status, chunked) = read_head(&mut reader)?;
    if status != 200 {
        let mut body = Vec::new();
        let _ = reader.take(MAX_HEAD_BYTES as u64).read_to_end(&mut body);
        let detail = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        bail!("the server refused the backup ({status}): {detail}");
    }
    if chunked {
        copy_chunked(&mut reader, out)
    } else {
        io::copy(&mut reader, out).context("the backup stream broke off")?;
        Ok(())
    }
}

/// Reads the status line and headers; returns the status and whether the body is chunked.
fn read_head(reader: &mut impl BufRead) -> anyhow::Result<(u16, bool)> {
    let mut line = String::new();
    let mut read = 0;
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP answer: {:?}", line.trim_end()))?;
    let mut chunked = false;
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        read += n;
        if n == 0 || read > MAX_HEAD_BYTES {
            bail!("the server's answer broke off in its headers");
        }
        let header = line.trim_end();
        if header.is_empty() {
            return Ok((status, chunked));
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("transfer-encoding")
            && value.trim().eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
}

/// Copies a chunked body; a body that ends before its last (empty) chunk is an error.
fn copy_chunked(reader: &mut impl BufRead, out: &mut impl Write) -> anyhow::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("the backup stream broke off (the server may have failed; see its log)");
        }
        let size = line.trim_end().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size.trim(), 16)
            .with_context(|| format!("bad chunk size {:?}", line.trim_end()))?;
        if size == 0 {
            return Ok(());
        }
        let copied = io::copy(&mut reader.take(size), out)?;
        if copied != size {
            bail!("the backup stream broke off (the server may have failed; see its log)");
        }
        line.clear();
        reader.read_line(&mut line)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_decoded_and_truncation_noticed() {
        let mut out = Vec::new();
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        copy_chunked(&mut &body[..], &mut out).unwrap();
        assert_eq!(out, b"hello world");
        let cut = b"5\r\nhello\r\n6\r\n wo";
        assert!(copy_chunked(&mut &cut[..], &mut Vec::new()).is_err());
    }

    #[test]
    fn head_parsing() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\nbody";
        let mut reader = &head[..];
        assert_eq!(read_head(&mut reader).unwrap(), (200, true));
        assert_eq!(reader, b"body");
    }
}
