//! Files on the task page. Uploads come from `assets/app/task.js` (an XMLHttpRequest, so the
//! page can show progress) as `multipart/form-data` and are read exactly as the JSON API reads
//! them (`api::attachments::upload`: streamed to disk by the service within the same limits);
//! downloads stream the blob the service names, always as a download.

use poem::http::{StatusCode, header};
use poem::web::{Data, Path};
use poem::{Body, IntoResponse, Request, Response, handler};
use tokio_util::io::ReaderStream;

use super::super::pages_auth::FormErrors;
use super::super::{render, see_other};
use super::page::{AttachmentItem, AttachmentsRegion};
use super::{from_htmx, parse_id};
use crate::api::attachments::upload as reading;
use crate::api::error::ApiError;
use crate::domain::{AttachmentId, TaskId};
use crate::files::{names, sniff};
use crate::service::{Error, Service};
use crate::web::error::{WebError, WebResult};
use crate::web::session::WebUser;
use crate::web::views::capitalized;

/// How much of a file one read of a download takes.
const DOWNLOAD_CHUNK_BYTES: usize = 256 << 10;

/// Whether the request came from the page's script rather than a plain form.
fn from_script(req: &Request) -> bool {
    from_htmx(req) || req.header("x-requested-with") == Some("XMLHttpRequest")
}

/// An upload's refusal as the page shows it, with the API's status (413, 415, ...).
fn refused(error: ApiError) -> Response {
    let (status, message) = match error {
        ApiError::BadRequest(p)
        | ApiError::Unauthorized(p, _)
        | ApiError::Forbidden(p)
        | ApiError::NotFound(p)
        | ApiError::Conflict(p)
        | ApiError::Gone(p)
        | ApiError::PayloadTooLarge(p)
        | ApiError::UnsupportedMediaType(p)
        | ApiError::Unprocessable(p)
        | ApiError::TooManyRequests(p)
        | ApiError::Internal(p)
        | ApiError::Unavailable(p) => {
            let p = p.0;
            let fields = FormErrors {
                fields: p
                    .errors
                    .into_iter()
                    .map(|f| crate::domain::FieldError::new(f.field, f.message))
                    .collect(),
                form: None,
            };
            let detail = match fields.field("file") {
                Some(message) => format!("The file {message}."),
                None => capitalized(&p.detail),
            };
            (p.status, detail)
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let page = match status {
        StatusCode::NOT_FOUND => WebError::NotFound,
        StatusCode::FORBIDDEN => WebError::Forbidden(message),
        s if s.is_server_error() => WebError::Unavailable(message),
        _ => WebError::Invalid(message),
    };
    let mut response = page.page();
    response.set_status(status);
    response
}

/// `POST /tasks/{id}/attachments`: one or more `file` fields. Answers the refreshed list of
/// files to the page's script, a redirect to the task otherwise.
#[handler]
pub async fn upload(
    req: &Request,
    body: Body,
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: TaskId = parse_id(&id)?;
    let cap = match reading::check_request(req, service.max_upload_bytes()) {
        Ok(cap) => cap,
        Err(e) => return Ok(refused(e)),
    };
    // Refused before a byte of the files is read.
    service.check_may_attach(&user.0, id).await?;
    let files = match reading::receive(&service, req, body, cap).await {
        Ok(files) => files,
        Err(e) => return Ok(refused(e)),
    };
    if let Err(e) = service.attach(&user.0, id, files).await {
        return match e {
            Error::NotFound(_) | Error::Forbidden(_) => Err(e.into()),
            other => Ok(refused(other.into())),
        };
    }
    if !from_script(req) {
        return Ok(see_other(&format!("/tasks/{}#attachments", id.as_uuid())));
    }
    region(&service, user, id).await
}

/// The task's files as the page shows them (`#attachments`).
async fn region(service: &Service, user: WebUser, id: TaskId) -> WebResult<Response> {
    let names = service.people_names(&user.0).await?;
    let page = service.attachments(&user.0, id, None, Some(200)).await?;
    render(&AttachmentsRegion {
        more: page.next_cursor.is_some(),
        items: page
            .items
            .iter()
            .map(|a| AttachmentItem::new(a, &names))
            .collect(),
        csrf: service.csrf_token(&user.0),
    })
}

/// `GET /attachments/{id}/download`: the file, never shown in the page's origin as a page.
#[handler]
pub async fn download(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: AttachmentId = parse_id(&id)?;
    let (view, path) = service.attachment_content(&user.0, id).await?;
    let a = view.attachment;
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        // Deleted between the permission check and here.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(WebError::NotFound),
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "an attachment's blob cannot be read");
            return Err(WebError::Internal);
        }
    };
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, sniff::served_type(&a.content_type))
        .header(
            header::CONTENT_DISPOSITION,
            names::content_disposition(&a.filename),
        )
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_LENGTH, a.size)
        .header(header::CACHE_CONTROL, "private, no-cache")
        .body(Body::from_bytes_stream(ReaderStream::with_capacity(
            file,
            DOWNLOAD_CHUNK_BYTES,
        ))))
}

/// `POST /attachments/{id}/delete`.
#[handler]
pub async fn delete(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: AttachmentId = parse_id(&id)?;
    let task = service.attachment(&user.0, id).await?.attachment.task_id;
    service.delete_attachment(&user.0, id).await?;
    if from_script(req) {
        return region(&service, user, task).await;
    }
    Ok(see_other(&format!("/tasks/{}#attachments", task.as_uuid())).into_response())
}
