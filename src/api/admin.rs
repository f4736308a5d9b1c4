//! `/admin`: operations for site admins. The same routes are served, without a token, on the
//! admin socket `DATA_DIR/admin.sock` (see `ops::socket`), which `tasker backup` uses while
//! the server holds the data dir.

use std::io;

use poem::web::Data;
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler};
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::error::ApiResult;
use super::security::BearerAuth;
use super::spec::Documented;
use crate::ops::socket::BACKUP_PATH;
use crate::service::Service;

/// Bytes the backup sends per body chunk.
const CHUNK_BYTES: usize = 64 << 10;

#[derive(ApiResponse)]
pub enum BackupArchive {
    /// A tar archive of the database snapshot, the blobs and the secret file, with a
    /// `MANIFEST.json` of checksums as its last entry. Streamed as it is built: a backup that
    /// fails midway ends the connection early, and the archive then lacks its manifest.
    #[oai(status = 200, content_type = "application/x-tar")]
    Archive(
        Binary<Body>,
        /// `attachment; filename="tasker-backup-<timestamp>.tar"`.
        #[oai(header = "Content-Disposition")]
        String,
    ),
}

pub struct AdminApi;

/// The backup declares no errors beyond those its shape implies.
impl Documented for AdminApi {}

#[OpenApi(tag = "ApiTags::Ops")]
impl AdminApi {
    /// Download a backup
    ///
    /// Site admins only (others get 403). A consistent snapshot of everything the server
    /// stores, restorable with `tasker restore --from FILE --data-dir DIR`. On the server's
    /// machine, `tasker backup --out FILE` does the same without a token.
    #[oai(
        path = "/admin/backup",
        method = "get",
        operation_id = "downloadBackup"
    )]
    async fn backup(&self, service: Data<&Service>, auth: BearerAuth) -> ApiResult<BackupArchive> {
        service.require_admin(&auth.0)?;
        Ok(BackupArchive::Archive(
            Binary(backup_body(service.0.clone())),
            disposition(),
        ))
    }
}

fn disposition() -> String {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    format!("attachment; filename=\"tasker-backup-{stamp}.tar\"")
}

/// The archive as a body, built on the blocking pool while it is sent.
fn backup_body(service: Service) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(4);
    let writer = ChannelWriter {
        tx: tx.clone(),
        buffer: Vec::with_capacity(CHUNK_BYTES),
    };
    tokio::spawn(async move {
        if let Err(e) = service.write_backup(writer).await {
            tracing::error!(error = %e, "backup failed");
            let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
        }
    });
    Body::from_bytes_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

/// A blocking `Write` that hands chunks to the response body; it fails once the client is
/// gone, which stops the backup.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Vec<u8>>>,
    buffer: Vec<u8>,
}

impl io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

/// The admin socket's routes: admin rights without a token.
pub fn socket_app(service: Service) -> impl Endpoint<Output = Response> {
    Route::new()
        .at(BACKUP_PATH, get(socket_backup))
        .data(service)
        .catch_all_error(|err| async move { super::error::render_error(err) })
}

#[handler]
fn socket_backup(service: Data<&Service>) -> Response {
    backup_body(service.0.clone())
        .with_content_type("application/x-tar")
        .with_header(poem::http::header::CONTENT_DISPOSITION, disposition())
        .into_response()
}
