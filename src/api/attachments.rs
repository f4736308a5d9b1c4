//! `/tasks/{id}/attachments` and `/attachments/{id}`: files on a task.
//!
//! Uploads are `multipart/form-data` read field by field and streamed to disk (never buffered
//! whole); the global 1 MiB body limit does not apply to them (`middleware::limit_body`), the
//! per-file limit does. Downloads are streamed from the blob with `Range` support and served
//! so that a browser never renders them: `Content-Disposition: attachment`, `nosniff`, a
//! sandboxing CSP, and active types (HTML, SVG, XML, JavaScript) as
//! `application/octet-stream`.

use chrono::{DateTime, Utc};
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Multipart};
use poem::{Body, FromRequest, IntoResponse, Request, RequestBody, Response};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::registry::{
    MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, ReadBuf};
use tokio_util::io::ReaderStream;
use uuid::Uuid;

use super::conditional::{Read, Versioned, none_match_hits};
use super::error::{ApiError, ApiResult, ErrorCode, PROBLEM_JSON, Problem};
use super::security::BearerAuth;
use super::spec::OperationErrors;
use super::{ApiTags, NoContent};
use crate::domain::{AttachmentId, TaskId};
use crate::files::range::{ByteRange, content_range, parse_range, unsatisfied_range};
use crate::files::{names, sniff};
use crate::service::{AttachmentView, IncomingFile, MAX_FILES_PER_UPLOAD, Service};

/// Non-file fields of an upload are read and dropped; none may be larger than this.
const MAX_OTHER_FIELD_BYTES: u64 = 64 << 10;
/// How much of a file one read of a download takes (larger reads, fewer wake-ups).
const DOWNLOAD_CHUNK_BYTES: usize = 256 << 10;
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

/// Whether a request is an upload, which streams its body instead of the JSON limit.
pub fn is_upload(req: &Request) -> bool {
    let path = req.uri().path();
    req.method() == poem::http::Method::POST
        && path.starts_with("/api/tasks/")
        && path.ends_with("/attachments")
}

#[derive(Object)]
#[oai(rename = "Attachment")]
pub struct AttachmentBody {
    pub id: Uuid,
    pub task_id: Uuid,
    pub uploaded_by: Uuid,
    /// The uploaded name, sanitized: no path parts or control characters, at most 255 bytes.
    pub filename: String,
    /// Judged from the bytes, never from what the client claimed. Downloads of active types
    /// (HTML, SVG, XML, JavaScript) are served as `application/octet-stream`.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the content, hex; also the download's `ETag`.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    /// Where to download it (`GET` or `HEAD`, `Range` supported).
    pub content_url: String,
    /// Whether the caller may delete it (the uploader, the task's creator, team owners and
    /// admins).
    pub can_delete: bool,
}

impl Versioned for AttachmentBody {
    /// Attachments never change: one version.
    fn version(&self) -> u64 {
        1
    }

    fn etag(&self) -> String {
        format!("\"{}\"", self.sha256)
    }
}

impl From<AttachmentView> for AttachmentBody {
    fn from(view: AttachmentView) -> Self {
        let a = view.attachment;
        Self {
            id: a.id.as_uuid(),
            task_id: a.task_id.as_uuid(),
            uploaded_by: a.uploaded_by.as_uuid(),
            sha256: a.sha256_hex(),
            content_url: format!("/api/attachments/{}/content", a.id),
            filename: a.filename,
            content_type: a.content_type,
            size: a.size,
            created_at: a.created_at,
            can_delete: view.can_delete,
        }
    }
}

/// The attachments an upload created, in the order of its `file` fields.
#[derive(Object)]
pub struct UploadedAttachments {
    pub items: Vec<AttachmentBody>,
}

#[derive(ApiResponse)]
pub enum Uploaded {
    /// Stored and recorded, every file of the request.
    #[oai(status = 201)]
    Created(Json<UploadedAttachments>),
}

/// A page of attachments, oldest first.
#[derive(Object)]
pub struct AttachmentPage {
    pub items: Vec<AttachmentBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A download: the bytes (200), a range of them (206), 304, or 416. Built by hand because its
/// `Content-Type` is the file's.
pub struct Download(Response);

impl IntoResponse for Download {
    fn into_response(self) -> Response {
        self.0
    }
}

fn header_meta(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.to_string(),
        description: Some(description.to_string()),
        required: true,
        deprecated: false,
        schema: String::schema_ref(),
    }
}

fn content_headers() -> Vec<MetaHeader> {
    vec![
        header_meta("ETag", "The SHA-256 of the content, quoted."),
        header_meta(
            "Content-Disposition",
            "`attachment` with the file name (RFC 6266 `filename*`).",
        ),
        header_meta("X-Content-Type-Options", "`nosniff`."),
        header_meta("Accept-Ranges", "`bytes`."),
    ]
}

/// The file's bytes, as any type a download can be served as.
fn binary() -> Vec<MetaMediaType> {
    sniff::served_types()
        .map(|content_type| MetaMediaType {
            content_type,
            schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format(
                "string", "binary",
            ))),
        })
        .collect()
}

impl ApiResponse for Download {
    fn meta() -> MetaResponses {
        let mut partial = content_headers();
        partial.push(header_meta("Content-Range", "`bytes first-last/size`."));
        MetaResponses {
            responses: vec![
                MetaResponse {
                    description: "The whole file. `Content-Type` is the sniffed type, or `application/octet-stream` for active types.",
                    status: Some(200),
                    status_range: None,
                    content: binary(),
                    headers: content_headers(),
                },
                MetaResponse {
                    description: "The requested byte range (one range per request).",
                    status: Some(206),
                    status_range: None,
                    content: binary(),
                    headers: partial,
                },
                MetaResponse {
                    description: "Unchanged: `If-None-Match` names the content's `ETag`.",
                    status: Some(304),
                    status_range: None,
                    content: vec![],
                    headers: vec![header_meta("ETag", "The SHA-256 of the content, quoted.")],
                },
                MetaResponse {
                    description: "The range starts past the end (`range_not_satisfiable`); `Content-Range: bytes */size`.",
                    status: Some(416),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_JSON,
                        schema: <Problem as Type>::schema_ref(),
                    }],
                    headers: vec![header_meta("Content-Range", "`bytes */size`.")],
                },
            ],
        }
    }

    fn register(registry: &mut Registry) {
        <Problem as Type>::register(registry);
    }
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

/// Opens the blob and answers with the part of it `range` asks for.
async fn stream(
    path: &std::path::Path,
    range: ByteRange,
    size: u64,
    headers: Vec<(header::HeaderName, String)>,
) -> ApiResult<Response> {
    let mut builder = Response::builder();
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let (status, start, length) = match range {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Partial { start, end } => {
            builder = builder.header(header::CONTENT_RANGE, content_range(start, end, size));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        ByteRange::Unsatisfiable => {
            let problem = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::RangeNotSatisfiable,
                format!("the file has {size} bytes; the range starts past its end"),
            );
            return Ok(builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, unsatisfied_range(size))
                .content_type(PROBLEM_JSON)
                .body(problem.to_json_string()));
        }
    };
    let missing = |e: std::io::Error| -> ApiError {
        if e.kind() == std::io::ErrorKind::NotFound {
            // Deleted between the permission check and here.
            crate::service::Error::NotFound("attachment").into()
        } else {
            crate::service::Error::Storage(format!("blob {}: {e}", path.display())).into()
        }
    };
    let mut file = tokio::fs::File::open(path).await.map_err(missing)?;
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(missing)?;
    }
    Ok(builder
        .status(status)
        .header(header::CONTENT_LENGTH, length)
        .body(Body::from_bytes_stream(ReaderStream::with_capacity(
            file.take(length),
            DOWNLOAD_CHUNK_BYTES,
        ))))
}

pub struct AttachmentsApi;

#[OpenApi(tag = "ApiTags::Attachments")]
impl AttachmentsApi {
    /// Upload files to a task
    ///
    /// `multipart/form-data` with one or more `file` fields (at most 20), each streamed to
    /// disk and at most `--max-upload-bytes` (default 25 MiB; over it: 413 and nothing is
    /// kept). The task's creator and assignees and its team's owners and admins (others who
    /// can see the task get 403). Identical files are stored once. With a per-user quota,
    /// going over it is a 413 `quota_exceeded`. All files of a request are kept, or none.
    #[oai(
        path = "/tasks/:id/attachments",
        method = "post",
        operation_id = "uploadAttachments"
    )]
    async fn upload(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// The task.
        id: Path<Uuid>,
        req: &Request,
        body: Body,
    ) -> ApiResult<Uploaded> {
        let task = TaskId::from_uuid(id.0);
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
        let cap = service.max_upload_bytes() * MAX_FILES_PER_UPLOAD as u64 + UPLOAD_OVERHEAD_BYTES;
        let declared = req
            .header(header::CONTENT_LENGTH)
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > cap) {
            return Err(too_large(format!(
                "an upload may carry at most {MAX_FILES_PER_UPLOAD} files of {} bytes",
                service.max_upload_bytes()
            )));
        }
        // Refused before a byte of the files is read.
        service.check_may_attach(&auth.0, task).await?;
        let budget = Arc::new(Budget::default());
        let body = budgeted(body, budget.clone(), cap);
        let multipart = Multipart::from_request(req, &mut RequestBody::new(body))
            .await
            .map_err(bad_upload)?;
        let files = receive_all(&service, multipart, &budget).await?;
        let stored = service.attach(&auth.0, task, files).await?;
        Ok(Uploaded::Created(Json(UploadedAttachments {
            items: stored.into_iter().map(AttachmentBody::from).collect(),
        })))
    }

    /// List a task's attachments
    ///
    /// Oldest first. Anyone who can see the task.
    #[oai(
        path = "/tasks/:id/attachments",
        method = "get",
        operation_id = "listAttachments"
    )]
    async fn list(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// The task.
        id: Path<Uuid>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<AttachmentPage>> {
        let page = service
            .attachments(
                &auth.0,
                TaskId::from_uuid(id.0),
                cursor.0.as_deref(),
                limit.0,
            )
            .await?;
        Ok(Json(AttachmentPage {
            next_cursor: page.next_cursor.map(|c| c.encode()),
            items: page.items.into_iter().map(AttachmentBody::from).collect(),
        }))
    }

    /// Get an attachment's metadata
    ///
    /// Anyone who can see its task.
    #[oai(
        path = "/attachments/:id",
        method = "get",
        operation_id = "getAttachment"
    )]
    async fn get(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// An `ETag` you have: answered 304 (attachments never change).
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> ApiResult<Read<AttachmentBody>> {
        let view = service
            .attachment(&auth.0, AttachmentId::from_uuid(id.0))
            .await?;
        Ok(Read::new(view, if_none_match.0.as_deref()))
    }

    /// Download an attachment
    ///
    /// Streamed, always as a download (`Content-Disposition: attachment`,
    /// `X-Content-Type-Options: nosniff`); HTML, SVG, XML and JavaScript are served as
    /// `application/octet-stream`. `HEAD` gives the headers only. One `Range` per request
    /// (`bytes=a-b`, `bytes=a-`, `bytes=-n`): 206, or 416 past the end; several ranges, or
    /// an `If-Range` that is not the current `ETag`, get the whole file.
    #[oai(
        path = "/attachments/:id/content",
        method = "get",
        operation_id = "downloadAttachment"
    )]
    async fn content(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// `bytes=first-last`, `bytes=first-` or `bytes=-suffix`.
        #[oai(name = "Range")]
        range: Header<Option<String>>,
        /// Honour `Range` only while the content still has this `ETag`.
        #[oai(name = "If-Range")]
        if_range: Header<Option<String>>,
        /// An `ETag` you have: answered 304.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> ApiResult<Download> {
        let (view, path) = service
            .attachment_content(&auth.0, AttachmentId::from_uuid(id.0))
            .await?;
        let a = view.attachment;
        let tag = format!("\"{}\"", a.sha256_hex());
        if none_match_hits(if_none_match.0.as_deref(), &tag) {
            let mut response = Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header(header::ETAG, tag)
                .finish();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache"),
            );
            return Ok(Download(response));
        }
        let range = match if_range.0.as_deref() {
            Some(validator) if validator.trim() != tag => ByteRange::Full,
            _ => parse_range(range.0.as_deref(), a.size),
        };
        let headers = vec![
            (
                header::CONTENT_TYPE,
                sniff::served_type(&a.content_type).to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                names::content_disposition(&a.filename),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_string(),
            ),
            (header::ACCEPT_RANGES, "bytes".to_string()),
            (header::CACHE_CONTROL, "private, no-cache".to_string()),
            (header::ETAG, tag),
        ];
        Ok(Download(stream(&path, range, a.size, headers).await?))
    }

    /// Delete an attachment
    ///
    /// Its uploader, the task's creator, or a team owner or admin. The file's bytes go when no
    /// other attachment has the same content.
    #[oai(
        path = "/attachments/:id",
        method = "delete",
        operation_id = "deleteAttachment"
    )]
    async fn delete(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        service
            .delete_attachment(&auth.0, AttachmentId::from_uuid(id.0))
            .await?;
        Ok(NoContent::Done)
    }
}

/// The request body of `uploadAttachments`, which poem-openapi cannot describe for a
/// streamed multipart body: added to the spec by `spec.rs`.
pub(super) fn upload_request_body() -> serde_json::Value {
    serde_json::json!({
        "required": true,
        "description": "One or more files, each in a `file` field.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": MAX_FILES_PER_UPLOAD,
                            "description": "The files (at most 20)."
                        }
                    }
                }
            }
        }
    })
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
pub(super) const ERRORS: &[OperationErrors] = &[
    ("uploadAttachments", &[409, 422, 503]),
    ("listAttachments", &[422]),
    ("deleteAttachment", &[409]),
    ("downloadAttachment", &[416]),
];
