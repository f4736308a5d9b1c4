//! `/tasks/{id}/comments` and `/comments/{id}`: discussion on a task.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::conditional::{Created, Deleted, Located, Read, Versioned, Written, if_match};
use super::error::ApiResult;
use super::page::{Page, PageItem};
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::text::Text;
use crate::domain::comment::BODY_MAX_CHARS;
use crate::domain::{CommentId, TaskId};
use crate::service::{CommentView, Service};

type BodyText = Text<1, BODY_MAX_CHARS>;

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CommentRequest {
    /// 1 to 10,000 characters of plain text (Markdown is rendered by clients, if at all);
    /// not only whitespace.
    pub body: BodyText,
}

#[derive(Object)]
#[oai(rename = "Comment")]
pub struct CommentBody {
    pub id: Uuid,
    pub task_id: Uuid,
    pub author_id: Uuid,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the author last changed the body; null if never.
    #[oai(nullable)]
    pub edited_at: Option<DateTime<Utc>>,
    /// Incremented on every edit; also the `ETag`.
    pub version: u64,
    /// Whether the caller may edit it (its author only).
    pub can_edit: bool,
    /// Whether the caller may delete it (its author, the task's creator, team owners and admins).
    pub can_delete: bool,
}

impl Located for CommentBody {
    fn location(&self) -> String {
        format!("/api/comments/{}", self.id)
    }
}

impl Versioned for CommentBody {
    fn version(&self) -> u64 {
        self.version
    }
}

impl From<CommentView> for CommentBody {
    fn from(view: CommentView) -> Self {
        let c = view.comment;
        Self {
            id: c.id.as_uuid(),
            task_id: c.task_id.as_uuid(),
            author_id: c.author_id.as_uuid(),
            body: c.body,
            created_at: c.created_at,
            updated_at: c.updated_at,
            edited_at: c.edited_at,
            version: c.version,
            can_edit: view.can_edit,
            can_delete: view.can_delete,
        }
    }
}

pub type CommentPage = Page<CommentBody>;

impl PageItem for CommentBody {
    const PAGE_NAME: &'static str = "CommentPage";
    const PAGE_DESCRIPTION: Option<&'static str> = Some("A page of comments, oldest first.");
}

pub struct CommentsApi;

#[OpenApi(tag = "ApiTags::Comments")]
impl CommentsApi {
    /// List a task's comments
    ///
    /// Oldest first. Anyone who can see the task.
    #[oai(
        path = "/tasks/:id/comments",
        method = "get",
        operation_id = "listComments"
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
    ) -> ApiResult<Json<CommentPage>> {
        let page = service
            .comments(
                &auth.0,
                TaskId::from_uuid(id.0),
                cursor.0.as_deref(),
                limit.0,
            )
            .await?;
        Ok(Json(Page::map(page, CommentBody::from)))
    }

    /// Comment on a task
    ///
    /// The task's creator and assignees, and its team's owners and admins (others who can see
    /// the task get 403). Not in an archived project (409). The 201 names the new
    /// comment's URL in `Location`.
    #[oai(
        path = "/tasks/:id/comments",
        method = "post",
        operation_id = "createComment"
    )]
    async fn create(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// The task.
        id: Path<Uuid>,
        /// Makes a retried create safe: the same key and body within 24 hours return the
        /// first response instead of posting twice (1 to 255 visible ASCII characters); 410
        /// `idempotent_resource_gone` if what the first created has since been deleted.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<CommentRequest>,
    ) -> ApiResult<Created<CommentBody>> {
        Ok(Created::new(
            service
                .create_comment(
                    &auth.0,
                    TaskId::from_uuid(id.0),
                    &body.0.body.0,
                    idempotency_key.0.as_deref(),
                )
                .await?,
        ))
    }

    /// Get a comment
    ///
    /// Anyone who can see its task.
    #[oai(path = "/comments/:id", method = "get", operation_id = "getComment")]
    async fn get(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// An `ETag` you have: answered 304 if the comment is still at that version.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> ApiResult<Read<CommentBody>> {
        let view = service.comment(&auth.0, CommentId::from_uuid(id.0)).await?;
        Ok(Read::new(view, if_none_match.0.as_deref()))
    }

    /// Edit a comment
    ///
    /// Its author only; sets `edited_at`. Send `If-Match` with the `ETag` you read: a stale one (or
    /// a weak `W/` tag: the comparison is strong) gets 412, a problem `precondition_failed` whose
    /// `current` is the current comment, with its `ETag`; nothing changed.
    #[oai(
        path = "/comments/:id",
        method = "patch",
        operation_id = "updateComment"
    )]
    async fn patch(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The `ETag` the change is based on.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
        body: Json<CommentRequest>,
    ) -> ApiResult<Written<CommentBody>> {
        let expected = if_match(if_match_header.0.as_deref());
        Ok(Written::new(
            service
                .update_comment(
                    &auth.0,
                    CommentId::from_uuid(id.0),
                    &body.0.body.0,
                    expected,
                )
                .await?,
        ))
    }

    /// Delete a comment
    ///
    /// Its author, the task's creator, or a team owner or admin. A stale `If-Match` (or a
    /// weak `W/` tag: the comparison is strong) gets 412, a problem `precondition_failed` whose
    /// `current` is the current comment, with its `ETag`; nothing is deleted.
    #[oai(
        path = "/comments/:id",
        method = "delete",
        operation_id = "deleteComment"
    )]
    async fn delete(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The `ETag` the deletion is based on.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
    ) -> ApiResult<Deleted<CommentBody>> {
        let expected = if_match(if_match_header.0.as_deref());
        Ok(Deleted::new(
            service
                .delete_comment(&auth.0, CommentId::from_uuid(id.0), expected)
                .await?,
        ))
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for CommentsApi {
    const ERRORS: &'static [OperationErrors] = &[
        ("listComments", &[422]),
        ("createComment", &[409, 410, 422]),
        ("updateComment", &[409, 422]),
        ("deleteComment", &[409]),
    ];
}
