//! Board order: `POST /tasks/{id}/move` and `GET /projects/{id}/board`.

use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::conditional::{Written, if_match};
use super::error::ApiResult;
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::tasks::{PositionBody, TaskBody, TaskStatusBody};
use crate::domain::task::TaskStatus;
use crate::domain::{ProjectId, TaskId};
use crate::service::{Board, BoardColumn, Position, Service, TaskMove};

/// Where a task goes: a status, and a place in that status's column of its board.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct MoveTaskRequest {
    /// The column (status) the task goes to; its own for a move within its column.
    pub status: TaskStatusBody,
    /// Put the task right after this task, which must be in the target column.
    #[oai(nullable)]
    pub after_id: Option<Uuid>,
    /// Put the task right before this task, which must be in the target column (and after
    /// `after_id` when both are given).
    #[oai(nullable)]
    pub before_id: Option<Uuid>,
    /// Without `after_id` and `before_id`: the `top` (default) or `bottom` of the column.
    #[oai(nullable)]
    pub position: Option<PositionBody>,
}

/// One status column of a board.
#[derive(Object)]
#[oai(rename = "BoardColumn")]
pub struct BoardColumnBody {
    pub status: TaskStatusBody,
    /// The column's first tasks, in rank order (top first).
    pub tasks: Vec<TaskBody>,
    /// True when the column holds more tasks than `per_column`.
    pub more: bool,
}

/// A project's board: one column per status (`todo`, `in_progress`, `blocked`, `done`).
#[derive(Object)]
#[oai(rename = "Board")]
pub struct BoardBody {
    pub project_id: Uuid,
    pub columns: Vec<BoardColumnBody>,
}

impl From<BoardColumn> for BoardColumnBody {
    fn from(column: BoardColumn) -> Self {
        Self {
            status: column.status.into(),
            tasks: column.tasks.into_iter().map(TaskBody::from).collect(),
            more: column.more,
        }
    }
}

impl From<Board> for BoardBody {
    fn from(board: Board) -> Self {
        Self {
            project_id: board.project_id.as_uuid(),
            columns: board.columns.into_iter().map(Into::into).collect(),
        }
    }
}

pub struct BoardApi;

#[OpenApi(tag = "ApiTags::Tasks")]
impl BoardApi {
    /// Move a task on its board
    ///
    /// Sets the task's status and its place in that status's column of its board (its project's;
    /// for a personal task, its creator's personal tasks), in one write that changes only this task
    /// (its `rank`, `status`, `version`). Who may edit the task may move it. Name a neighbour in
    /// the target column (`after_id`, `before_id` or both), or an end (`position`, default `top`);
    /// a neighbour not in that column is a 422. Send `If-Match` with the `ETag` you read: a stale
    /// one (or a weak `W/` tag: the comparison is strong) gets 412, a problem `precondition_failed`
    /// whose `current` is the current task, with its `ETag`; nothing changed. Watchers see a task
    /// `updated` change with the `status` and `rank` fields.
    #[oai(path = "/tasks/:id/move", method = "post", operation_id = "moveTask")]
    async fn move_task(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The `ETag` the move is based on.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
        body: Json<MoveTaskRequest>,
    ) -> ApiResult<Written<TaskBody>> {
        let b = body.0;
        let to = TaskMove {
            status: TaskStatus::from(b.status),
            after_id: b.after_id.map(TaskId::from_uuid),
            before_id: b.before_id.map(TaskId::from_uuid),
            position: b.position.map(Position::from),
        };
        let expected = if_match(if_match_header.0.as_deref());
        Ok(Written::new(
            service
                .move_task(&auth.0, TaskId::from_uuid(id.0), to, expected)
                .await?,
        ))
    }

    /// A project's board
    ///
    /// The project's tasks by status, each column in rank order (top first), at most
    /// `per_column` tasks per column (`more` tells when a column holds more). For members
    /// of the project's team; to anyone else the project does not exist (404).
    #[oai(
        path = "/projects/:id/board",
        method = "get",
        operation_id = "getBoard"
    )]
    async fn board(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Tasks per column, 1 to 500 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        per_column: Query<Option<u32>>,
    ) -> ApiResult<Json<BoardBody>> {
        let board = service
            .board(&auth.0, ProjectId::from_uuid(id.0), per_column.0)
            .await?;
        Ok(Json(board.into()))
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for BoardApi {
    const ERRORS: &'static [OperationErrors] = &[("moveTask", &[409, 422]), ("getBoard", &[422])];
}
