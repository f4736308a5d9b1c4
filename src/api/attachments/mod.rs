//! `/tasks/{id}/attachments` and `/attachments/{id}`: files on a task.
//!
//! Uploads are `multipart/form-data` read field by field and streamed to disk (never buffered
//! whole); the global 1 MiB body limit does not apply to them (`middleware::limit_body`), the
//! per-file limit does. Downloads are streamed from the blob with `Range` support and served
//! so that a browser never renders them: `Content-Disposition: attachment`, `nosniff`, a
//! sandboxing CSP, and active types (HTML, SVG, XML, JavaScript) as
//! `application/octet-stream`.

/// Serving a file's bytes: ranges, revalidation, download-only headers.
mod download;
/// Reading a multipart upload within its byte limits (the web app's upload reads the same way).
pub(crate) mod upload;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem::{Body, Request};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::conditional::{Read, Versioned};
use super::error::ApiResult;
use super::page::{Page, PageItem};
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::{ApiTags, NoContent};
use crate::domain::{AttachmentId, TaskId};
use crate::service::{AttachmentView, MAX_FILES_PER_UPLOAD, Service};
use download::Download;

/// Whether a request is an upload, which streams its body instead of the JSON limit.
pub fn is_upload(req: &Request) -> bool {
    let path = req.uri().path();
    // The API's, and the web app's (`web::task::attachments`).
    req.method() == poem::http::Method::POST
        && (path.starts_with("/api/tasks/") || path.starts_with("/tasks/"))
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
    Created(
        Json<UploadedAttachments>,
        /// The first (or only) new attachment's URL, `/api/attachments/{id}`.
        #[oai(header = "Location")]
        String,
    ),
}

pub type AttachmentPage = Page<AttachmentBody>;

impl PageItem for AttachmentBody {
    const PAGE_NAME: &'static str = "AttachmentPage";
    const PAGE_DESCRIPTION: Option<&'static str> = Some("A page of attachments, oldest first.");
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
    /// The 201's `Location` is the first (or only) new attachment's URL.
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
        let cap = upload::check_request(req, service.max_upload_bytes())?;
        // Refused before a byte of the files is read.
        service.check_may_attach(&auth.0, task).await?;
        let files = upload::receive(&service, req, body, cap).await?;
        let stored = service.attach(&auth.0, task, files).await?;
        let items: Vec<AttachmentBody> = stored.into_iter().map(AttachmentBody::from).collect();
        let location = match items.first() {
            Some(first) => format!("/api/attachments/{}", first.id),
            None => format!("/api/tasks/{}/attachments", id.0),
        };
        Ok(Uploaded::Created(
            Json(UploadedAttachments { items }),
            location,
        ))
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
        Ok(Json(Page::map(page, AttachmentBody::from)))
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
        let conditions = download::Conditions {
            range: range.0.as_deref(),
            if_range: if_range.0.as_deref(),
            if_none_match: if_none_match.0.as_deref(),
        };
        download::serve(&view.attachment, &path, conditions).await
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
/// streamed multipart body: added to the spec by `spec.rs` (through [`Documented`]).
fn upload_request_body() -> serde_json::Value {
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
impl Documented for AttachmentsApi {
    const ERRORS: &'static [OperationErrors] = &[
        ("uploadAttachments", &[409, 422]),
        ("listAttachments", &[422]),
        ("deleteAttachment", &[409]),
        ("downloadAttachment", &[416]),
    ];

    const HEAD_OPERATIONS: &'static [(&'static str, &'static str)] =
        &[("downloadAttachment", "headAttachmentContent")];

    fn request_bodies() -> Vec<(&'static str, serde_json::Value)> {
        vec![("uploadAttachments", upload_request_body())]
    }
}
