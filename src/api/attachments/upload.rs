//! Reading an upload: a `multipart/form-data` body read field by field, each `file` field
//! streamed to a temp file by the service (never buffered whole), within byte limits that
//! hold for chunked bodies and for what the multipart parser buffers by itself.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures_util::StreamExt;
use poem::http::{StatusCode, header};
use poem::web::Multipart;
use poem::{Body, FromRequest, Request, RequestBody};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::api::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::service::{IncomingFile, MAX_FILES_PER_UPLOAD, Service};

/// Non-file fields of an upload are read and dropped; none may be larger than this.
const MAX_OTHER_FIELD_BYTES: u64 = 64 << 10;
/// Room for multipart framing and small fields on top of the files themselves.
const UPLOAD_OVERHEAD_BYTES: u64 = 1 << 20;
/// The most bytes of an upload that may have arrived without being taken by a field reader.
/// The multipart parser buffers a preamble or a part's headers whole while it looks for their
/// end; this bounds that buffer (and a body that never shows a boundary).
const UNREAD_ALLOWANCE_BYTES: u64 = 2 << 20;

/// Counts an upload's bytes: those that arrived, and those field readers took.
#[derive(Default)]
struct Budget {
    arrived: AtomicU64,
    taken: AtomicU64,
    exceeded: AtomicBool,
}

/// `body`, failing once more than `cap` bytes arrived (chunked bodies included) or more than
/// [`UNREAD_ALLOWANCE_BYTES`] arrived that no reader took.
fn budgeted(body: Body, budget: Arc<Budget>, cap: u64) -> Body {
    Body::from_bytes_stream(body.into_bytes_stream().map(move |chunk| {
        let chunk = chunk?;
        let arrived = budget
            .arrived
            .fetch_add(chunk.len() as u64, Ordering::SeqCst)
            + chunk.len() as u64;
        let unread = arrived.saturating_sub(budget.taken.load(Ordering::SeqCst));
        if arrived > cap || unread > UNREAD_ALLOWANCE_BYTES {
            budget.exceeded.store(true, Ordering::SeqCst);
            return Err(std::io::Error::other("the upload is over its size limits"));
        }
        Ok(chunk)
    }))
}

/// A field's reader that reports what it takes to the upload's [`Budget`].
struct Counted<R> {
    inner: R,
    budget: Arc<Budget>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.budget.taken.fetch_add(read, Ordering::SeqCst);
        polled
    }
}

/// Checks what can be checked before a byte of the body is read: the content type, and a
/// declared length against the upload's cap. Returns the cap (every file at its limit, plus
/// room for framing).
pub(crate) fn check_request(req: &Request, max_upload_bytes: u64) -> ApiResult<u64> {
    let multipart_type = req
        .content_type()
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart_type {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "send the files as multipart/form-data in `file` fields",
        )
        .into());
    }
    let cap = max_upload_bytes * MAX_FILES_PER_UPLOAD as u64 + UPLOAD_OVERHEAD_BYTES;
    let declared = req
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap) {
        return Err(too_large(format!(
            "an upload may carry at most {MAX_FILES_PER_UPLOAD} files of {max_upload_bytes} bytes"
        )));
    }
    Ok(cap)
}

/// Reads the whole upload in `body` (at most `cap` bytes, from [`check_request`]): its files
/// received by the service, in the order of their fields.
pub(crate) async fn receive(
    service: &Service,
    req: &Request,
    body: Body,
    cap: u64,
) -> ApiResult<Vec<IncomingFile>> {
    let budget = Arc::new(Budget::default());
    let body = budgeted(body, budget.clone(), cap);
    let multipart = Multipart::from_request(req, &mut RequestBody::new(body))
        .await
        .map_err(bad_upload)?;
    receive_all(service, multipart, &budget).await
}

fn bad_upload(e: impl std::fmt::Display) -> ApiError {
    Problem::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
        format!("the multipart body could not be read: {e}"),
    )
    .into()
}

fn too_large(detail: String) -> ApiError {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        detail,
    )
    .into()
}

/// Reads every field of an upload: `file` fields stream to temp files (at most
/// [`MAX_FILES_PER_UPLOAD`]), small other fields are read and dropped.
async fn receive_all(
    service: &Service,
    mut multipart: Multipart,
    budget: &Arc<Budget>,
) -> ApiResult<Vec<IncomingFile>> {
    let over = |e: ApiError| -> ApiError {
        if budget.exceeded.load(Ordering::SeqCst) {
            too_large(format!(
                "the upload is over its limits: at most {MAX_FILES_PER_UPLOAD} files of {} bytes, in a well-formed multipart body",
                service.max_upload_bytes()
            ))
        } else {
            e
        }
    };
    let mut files = Vec::new();
    let mut fields = 0;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| over(bad_upload(e)))?
    {
        fields += 1;
        if fields > 2 * MAX_FILES_PER_UPLOAD {
            return Err(bad_upload("too many fields"));
        }
        if field.name() == Some("file") {
            if field.file_name().is_none() {
                return Err(crate::service::Error::invalid(
                    "file",
                    "each `file` field must be a file upload (a part with a filename)",
                )
                .into());
            }
            if files.len() == MAX_FILES_PER_UPLOAD {
                return Err(crate::service::Error::invalid(
                    "file",
                    format!("at most {MAX_FILES_PER_UPLOAD} files per upload"),
                )
                .into());
            }
            let name = field.file_name().map(str::to_owned);
            let reader = Counted {
                inner: Box::pin(field.into_async_read()),
                budget: budget.clone(),
            };
            let file = service.receive_file(reader, name.as_deref()).await;
            files.push(file.map_err(|e| over(e.into()))?);
        } else {
            let reader = Counted {
                inner: Box::pin(field.into_async_read()),
                budget: budget.clone(),
            };
            let mut reader = reader.take(MAX_OTHER_FIELD_BYTES + 1);
            let read = tokio::io::copy(&mut reader, &mut tokio::io::sink())
                .await
                .map_err(|e| over(bad_upload(e)))?;
            if read > MAX_OTHER_FIELD_BYTES {
                return Err(too_large(format!(
                    "fields other than `file` may hold at most {MAX_OTHER_FIELD_BYTES} bytes"
                )));
            }
        }
    }
    Ok(files)
}
