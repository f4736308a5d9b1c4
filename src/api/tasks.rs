//! `/tasks`: tasks, their lists and their history.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::conditional::{Created, Deleted, Located, Read, Versioned, Written, if_match};
use super::error::ApiResult;
use super::page::{Page, PageItem};
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::text::Text;
use crate::domain::change::{Change, ChangeAction};
use crate::domain::task::{
    DESCRIPTION_MAX_CHARS, LABEL_MAX_CHARS, Priority, TITLE_MAX_CHARS, TaskSort, TaskStatus,
};
use crate::domain::{ProjectId, TaskId, UserId};
use crate::service::{
    Edit, NewTask, Position, Scope, SearchQuery, Service, TaskPatch, TaskQuery, TaskView,
};

/// A task's status, which is also its board column.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "TaskStatus", rename_all = "snake_case")]
pub enum TaskStatusBody {
    Todo,
    InProgress,
    Blocked,
    Done,
}

/// A task's priority, from `low` to `urgent`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "Priority", rename_all = "snake_case")]
pub enum PriorityBody {
    Low,
    Medium,
    High,
    Urgent,
}

/// Which tasks a list starts from: `assigned` to me (default), `created` by me, or `all` I
/// can see. Filters then narrow it.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "TaskScope", rename_all = "snake_case")]
pub enum ScopeParam {
    Assigned,
    Created,
    All,
}

/// List order; a leading `-` reverses it. `created` (default: oldest first), `updated`
/// (least recently edited first), `due_date` (soonest first; tasks without a due date come
/// last in both directions), `priority` (`low` first). Ties are in creation order (reversed
/// with `-`). A cursor belongs to the sort it was given for.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "TaskSort")]
pub enum SortParam {
    #[oai(rename = "created")]
    Created,
    #[oai(rename = "-created")]
    CreatedDesc,
    #[oai(rename = "updated")]
    Updated,
    #[oai(rename = "-updated")]
    UpdatedDesc,
    #[oai(rename = "due_date")]
    DueDate,
    #[oai(rename = "-due_date")]
    DueDateDesc,
    #[oai(rename = "priority")]
    Priority,
    #[oai(rename = "-priority")]
    PriorityDesc,
}

impl SortParam {
    /// The sort and whether it is reversed.
    fn order(self) -> (TaskSort, bool) {
        match self {
            SortParam::Created => (TaskSort::Created, false),
            SortParam::CreatedDesc => (TaskSort::Created, true),
            SortParam::Updated => (TaskSort::Updated, false),
            SortParam::UpdatedDesc => (TaskSort::Updated, true),
            SortParam::DueDate => (TaskSort::DueDate, false),
            SortParam::DueDateDesc => (TaskSort::DueDate, true),
            SortParam::Priority => (TaskSort::Priority, false),
            SortParam::PriorityDesc => (TaskSort::Priority, true),
        }
    }
}

/// An end of a board column.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "BoardPosition", rename_all = "snake_case")]
pub enum PositionBody {
    Top,
    Bottom,
}

impl From<PositionBody> for Position {
    fn from(value: PositionBody) -> Self {
        match value {
            PositionBody::Top => Position::Top,
            PositionBody::Bottom => Position::Bottom,
        }
    }
}

macro_rules! enum_conversions {
    ($api:ident <-> $domain:ident { $($variant:ident),* }) => {
        impl From<$domain> for $api {
            fn from(value: $domain) -> Self {
                match value { $($domain::$variant => $api::$variant),* }
            }
        }
        impl From<$api> for $domain {
            fn from(value: $api) -> Self {
                match value { $($api::$variant => $domain::$variant),* }
            }
        }
    };
}
enum_conversions!(TaskStatusBody <-> TaskStatus { Todo, InProgress, Blocked, Done });
enum_conversions!(PriorityBody <-> Priority { Low, Medium, High, Urgent });

type TitleText = Text<1, TITLE_MAX_CHARS>;
type DescriptionText = Text<0, DESCRIPTION_MAX_CHARS>;
type LabelText = Text<1, LABEL_MAX_CHARS>;

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// 1 to 200 characters.
    pub title: TitleText,
    /// Up to 20,000 characters (Markdown is the client's business).
    #[oai(nullable)]
    pub description: Option<DescriptionText>,
    /// Default `todo`.
    #[oai(nullable)]
    pub status: Option<TaskStatusBody>,
    /// Default `medium`.
    #[oai(nullable)]
    pub priority: Option<PriorityBody>,
    #[oai(nullable)]
    pub due_date: Option<DateTime<Utc>>,
    /// Up to 20 labels of 1 to 40 characters; duplicates are dropped.
    #[oai(nullable)]
    pub labels: Option<Vec<LabelText>>,
    /// A project of one of your teams (must be active); absent for a personal task.
    #[oai(nullable)]
    pub project_id: Option<Uuid>,
    /// Members of the project's team (personal task: you, or people sharing a team with you).
    #[oai(nullable)]
    pub assignee_ids: Option<Vec<Uuid>>,
    /// Where the task goes in its board column (its project's, or your personal tasks',
    /// for its status): `bottom` (default) or `top`.
    #[oai(nullable)]
    pub position: Option<PositionBody>,
}

/// `PUT`: only the fields present change; `null` leaves a field unchanged.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ReplaceTaskRequest {
    #[oai(nullable)]
    pub title: Option<TitleText>,
    #[oai(nullable)]
    pub description: Option<DescriptionText>,
    #[oai(nullable)]
    pub status: Option<TaskStatusBody>,
    #[oai(nullable)]
    pub priority: Option<PriorityBody>,
    #[oai(nullable)]
    pub due_date: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub labels: Option<Vec<LabelText>>,
    /// Move the task to another project (of one of your teams).
    #[oai(nullable)]
    pub project_id: Option<Uuid>,
    #[oai(nullable)]
    pub assignee_ids: Option<Vec<Uuid>>,
}

/// `PATCH`: only the fields present change; `null` clears a field (`description`,
/// `due_date`, `labels`, `assignee_ids`; `project_id: null` makes it a personal task).
/// `title`, `status` and `priority` cannot be cleared.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct PatchTaskRequest {
    pub title: MaybeUndefined<TitleText>,
    #[oai(nullable)]
    pub description: MaybeUndefined<DescriptionText>,
    pub status: MaybeUndefined<TaskStatusBody>,
    pub priority: MaybeUndefined<PriorityBody>,
    #[oai(nullable)]
    pub due_date: MaybeUndefined<DateTime<Utc>>,
    #[oai(nullable)]
    pub labels: MaybeUndefined<Vec<LabelText>>,
    #[oai(nullable)]
    pub project_id: MaybeUndefined<Uuid>,
    #[oai(nullable)]
    pub assignee_ids: MaybeUndefined<Vec<Uuid>>,
}

#[derive(Object)]
#[oai(rename = "Task")]
pub struct TaskBody {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub status: TaskStatusBody,
    pub priority: PriorityBody,
    #[oai(nullable)]
    pub due_date: Option<DateTime<Utc>>,
    pub labels: Vec<String>,
    /// Null for a personal task.
    #[oai(nullable)]
    pub project_id: Option<Uuid>,
    /// The project's team; null for a personal task.
    #[oai(nullable)]
    pub team_id: Option<Uuid>,
    pub assignee_ids: Vec<Uuid>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented on every edit. The `ETag` is `"<version>.<comment_count>.<attachment_count>"`;
    /// `If-Match` compares only the version, so a comment posted meanwhile does not fail an edit.
    pub version: u64,
    /// Comments on the task.
    pub comment_count: u64,
    /// Files attached to the task.
    pub attachment_count: u64,
    /// Whether the caller may change it, comment on it and attach files to it.
    pub can_edit: bool,
    /// Whether the caller may delete it.
    pub can_delete: bool,
    /// Its place in its board column (the project's, or for a personal task its creator's,
    /// column of its status): columns list tasks in ascending string (byte) order of `rank`.
    /// An opaque fractional index: change it with `POST /tasks/{id}/move`. A change of
    /// status or project by `PUT`/`PATCH` puts the task at the bottom of its new column.
    pub rank: String,
}

impl Located for TaskBody {
    fn location(&self) -> String {
        format!("/api/tasks/{}", self.id)
    }
}

impl Versioned for TaskBody {
    fn version(&self) -> u64 {
        self.version
    }

    fn etag(&self) -> String {
        format!(
            "\"{}.{}.{}\"",
            self.version, self.comment_count, self.attachment_count
        )
    }
}

impl From<TaskView> for TaskBody {
    fn from(view: TaskView) -> Self {
        let t = view.task;
        Self {
            id: t.id.as_uuid(),
            title: t.title.as_str().to_string(),
            description: t.description,
            status: t.status.into(),
            priority: t.priority.into(),
            due_date: t.due_date,
            labels: t.labels,
            project_id: t.project_id.map(|p| p.as_uuid()),
            team_id: t.team_id.map(|t| t.as_uuid()),
            assignee_ids: t.assignee_ids.iter().map(|a| a.as_uuid()).collect(),
            created_by: t.created_by.as_uuid(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            version: t.version,
            comment_count: t.comment_count,
            attachment_count: t.attachment_count,
            can_edit: view.can_edit,
            can_delete: view.can_delete,
            rank: t.rank.as_str().to_string(),
        }
    }
}

pub type TaskPage = Page<TaskBody>;

impl PageItem for TaskBody {
    const PAGE_NAME: &'static str = "TaskPage";
    const PAGE_DESCRIPTION: Option<&'static str> = Some(
        "A page of tasks. A page may hold fewer than `limit` tasks when a filter is selective;\nkeep following `next_cursor` until it is null.",
    );
    const CURSOR_DESCRIPTION: Option<&'static str> = None;
}

/// What matched, marked: the text with each matching word wrapped in `<mark>`…`</mark>` and
/// everything else HTML-escaped, so it can be shown as HTML as it is. Absent when nothing
/// matched in that field.
#[derive(Object)]
pub struct SearchHighlights {
    /// The whole title, marked.
    #[oai(skip_serializing_if_is_none)]
    pub title: Option<String>,
    /// About 200 characters of the description around its first match, marked; `…` shows
    /// where it was cut.
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
}

/// One search result.
#[derive(Object)]
pub struct SearchItem {
    pub task: TaskBody,
    /// BM25 relevance: higher is better; comparable only within one result list.
    pub score: f64,
    pub highlights: SearchHighlights,
}

pub type SearchPage = Page<SearchItem>;

impl PageItem for SearchItem {
    const PAGE_NAME: &'static str = "SearchPage";
    const PAGE_DESCRIPTION: Option<&'static str> = Some(
        "A page of search results, best first. A page may hold fewer than `limit` results when\nthe index had not yet caught up with a change; keep following `next_cursor` until it is\nnull.",
    );
    const CURSOR_DESCRIPTION: Option<&'static str> = None;
}

/// One field's change.
#[derive(Object)]
pub struct FieldChangeBody {
    pub field: String,
    /// The value before (null when unset).
    pub from: serde_json::Value,
    /// The value after (null when cleared).
    pub to: serde_json::Value,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "ChangeAction", rename_all = "snake_case")]
pub enum ChangeActionBody {
    Created,
    Updated,
    Deleted,
}

/// Who changed what, when.
#[derive(Object)]
pub struct ActivityEntry {
    /// Position in the global change log.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor_id: Uuid,
    pub action: ChangeActionBody,
    pub changes: Vec<FieldChangeBody>,
}

impl From<Change> for ActivityEntry {
    fn from(change: Change) -> Self {
        let c = change.change;
        Self {
            seq: change.seq,
            at: c.at,
            actor_id: c.actor.as_uuid(),
            action: match c.action {
                ChangeAction::Created => ChangeActionBody::Created,
                ChangeAction::Updated => ChangeActionBody::Updated,
                ChangeAction::Deleted => ChangeActionBody::Deleted,
            },
            changes: c
                .fields
                .into_iter()
                .map(|f| FieldChangeBody {
                    field: f.field,
                    from: f.before,
                    to: f.after,
                })
                .collect(),
        }
    }
}

pub type ActivityPage = Page<ActivityEntry>;

impl PageItem for ActivityEntry {
    const PAGE_NAME: &'static str = "ActivityPage";
    const PAGE_DESCRIPTION: Option<&'static str> = None;
    const CURSOR_DESCRIPTION: Option<&'static str> = None;
}

fn strings<const MIN: usize, const MAX: usize>(items: Vec<Text<MIN, MAX>>) -> Vec<String> {
    items.into_iter().map(String::from).collect()
}

fn users(ids: Vec<Uuid>) -> Vec<UserId> {
    ids.into_iter().map(UserId::from_uuid).collect()
}

fn edit<T, U>(value: MaybeUndefined<T>, f: impl FnOnce(T) -> U) -> Edit<U> {
    match value {
        MaybeUndefined::Undefined => Edit::Keep,
        MaybeUndefined::Null => Edit::Clear,
        MaybeUndefined::Value(v) => Edit::Set(f(v)),
    }
}

fn keep_or_set<T, U>(value: Option<T>, f: impl FnOnce(T) -> U) -> Edit<U> {
    value.map_or(Edit::Keep, |v| Edit::Set(f(v)))
}

async fn write(
    service: &Service,
    auth: &BearerAuth,
    id: Uuid,
    tag: Option<&str>,
    patch: TaskPatch,
) -> ApiResult<Written<TaskBody>> {
    Ok(Written::new(
        service
            .update_task(&auth.0, TaskId::from_uuid(id), patch, if_match(tag))
            .await?,
    ))
}

pub struct TasksApi;

#[OpenApi(prefix_path = "/tasks", tag = "ApiTags::Tasks")]
impl TasksApi {
    /// Create a task
    ///
    /// In a project of one of your teams, or personal (no `project_id`). The 201 names the
    /// new task's URL in `Location`.
    #[oai(path = "/", method = "post", operation_id = "createTask")]
    async fn create(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// Makes a retried create safe: the same key and body within 24 hours return the
        /// first response instead of creating a duplicate (1 to 255 visible ASCII characters); 410
        /// `idempotent_resource_gone` if what the first created has since been deleted.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<CreateTaskRequest>,
    ) -> ApiResult<Created<TaskBody>> {
        let b = body.0;
        let input = NewTask {
            title: b.title.0,
            description: b.description.map(String::from),
            status: b.status.map(TaskStatus::from),
            priority: b.priority.map(Priority::from),
            due_date: b.due_date,
            labels: b.labels.map(strings),
            project_id: b.project_id.map(ProjectId::from_uuid),
            assignee_ids: b.assignee_ids.map(users),
            position: b.position.map(Position::from),
        };
        Ok(Created::new(
            service
                .create_task(&auth.0, input, idempotency_key.0.as_deref())
                .await?,
        ))
    }

    /// List tasks
    ///
    /// Without parameters: the tasks assigned to me. `scope` widens it (`created`, `all`);
    /// the other parameters narrow it. Oldest first unless `sort` says otherwise (see
    /// `TaskSort`); every sort pages with `next_cursor` without repeating or skipping a task.
    #[oai(path = "/", method = "get", operation_id = "listTasks")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        scope: Query<Option<ScopeParam>>,
        /// Comma-separated statuses, e.g. `todo,in_progress`.
        status: Query<Option<String>>,
        project_id: Query<Option<Uuid>>,
        /// Tasks assigned to this user.
        assignee: Query<Option<Uuid>>,
        /// Tasks with this label.
        label: Query<Option<String>>,
        priority: Query<Option<PriorityBody>>,
        /// Due strictly before this time.
        due_before: Query<Option<DateTime<Utc>>>,
        /// Due strictly after this time.
        due_after: Query<Option<DateTime<Utc>>>,
        sort: Query<Option<SortParam>>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<TaskPage>> {
        let (sort, descending) = sort.0.map_or((TaskSort::Created, false), SortParam::order);
        let query = TaskQuery {
            scope: match scope.0 {
                Some(ScopeParam::Created) => Scope::Created,
                Some(ScopeParam::All) => Scope::All,
                _ => Scope::Assigned,
            },
            status: status.0,
            project_id: project_id.0.map(ProjectId::from_uuid),
            assignee: assignee.0.map(UserId::from_uuid),
            label: label.0,
            priority: priority.0.map(Priority::from),
            due_before: due_before.0,
            due_after: due_after.0,
            sort,
            descending,
            cursor: cursor.0,
            limit: limit.0,
        };
        let page = service.tasks(&auth.0, query).await?;
        Ok(Json(Page {
            items: page.items.into_iter().map(TaskBody::from).collect(),
            next_cursor: page.next_cursor,
        }))
    }

    /// Search tasks
    ///
    /// Ranked full-text search (BM25) over the tasks you can see: their title (weighted
    /// highest), labels, description and comments. Results are best first; `status`,
    /// `project_id`, `assignee` and `label` narrow them as in the list.
    ///
    /// Query syntax (`q`, at most 1 KiB):
    /// - Words are matched case- and accent-insensitively; every word must match somewhere.
    /// - `"quoted words"` must appear together, in that order (an unclosed quote runs to the
    ///   end).
    /// - The last word also matches as a prefix while you type (no trailing space; 2+
    ///   characters): `depl` finds `deploy`.
    /// - Words of 5 or more characters also match with one typo: `relaese` finds `release`.
    /// - Other punctuation and operators separate words; there is no boolean syntax.
    ///
    /// Tasks that match every word exactly rank first; then those that need the last word's
    /// prefix, where it completes in a title or label before a description or comment; then
    /// those that need a typo.
    ///
    /// `q` without a word or number, over 1 KiB, or with more than 32 words and phrases is a
    /// 422. While the index is rebuilt (after an upgrade, or when its files were lost) this
    /// answers 503 `index_rebuilding`; the rest of the API works meanwhile. Changes become
    /// searchable within about a second.
    #[oai(path = "/search", method = "get", operation_id = "searchTasks")]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// What to look for (see above).
        q: Query<Option<String>>,
        /// Comma-separated statuses, e.g. `todo,in_progress`.
        status: Query<Option<String>>,
        project_id: Query<Option<Uuid>>,
        /// Tasks assigned to this user.
        assignee: Query<Option<Uuid>>,
        /// Tasks with this label (exact).
        label: Query<Option<String>>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<SearchPage>> {
        let query = SearchQuery {
            q: q.0,
            status: status.0,
            project_id: project_id.0.map(ProjectId::from_uuid),
            assignee: assignee.0.map(UserId::from_uuid),
            label: label.0,
            limit: limit.0,
            cursor: cursor.0,
        };
        let page = service.search_tasks(&auth.0, query).await?;
        Ok(Json(Page::map(page, |hit| SearchItem {
            score: f64::from(hit.score),
            highlights: SearchHighlights {
                title: hit.title,
                description: hit.description,
            },
            task: TaskBody::from(hit.task),
        })))
    }

    /// Get a task
    ///
    /// Visible to the project's team (personal task: its creator and assignees); to anyone
    /// else it does not exist (404).
    #[oai(path = "/:id", method = "get", operation_id = "getTask")]
    async fn get(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// An `ETag` you have: answered 304 if the task is still at that version.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> ApiResult<Read<TaskBody>> {
        let view = service.task(&auth.0, TaskId::from_uuid(id.0)).await?;
        Ok(Read::new(view, if_none_match.0.as_deref()))
    }

    /// Update a task
    ///
    /// The task's creator and assignees, and the team's owners and admins. Only the fields
    /// present change; `null` leaves a field unchanged. Send `If-Match` with the `ETag` you
    /// read: a stale one (or a weak `W/` tag: the comparison is strong) gets 412, a problem
    /// `precondition_failed` whose `current` is the current task, with its `ETag`; nothing changed.
    #[oai(path = "/:id", method = "put", operation_id = "replaceTask")]
    async fn put(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The `ETag` the change is based on.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
        body: Json<ReplaceTaskRequest>,
    ) -> ApiResult<Written<TaskBody>> {
        let b = body.0;
        let patch = TaskPatch {
            title: keep_or_set(b.title, String::from),
            description: keep_or_set(b.description, String::from),
            status: keep_or_set(b.status, TaskStatus::from),
            priority: keep_or_set(b.priority, Priority::from),
            due_date: keep_or_set(b.due_date, |d| d),
            labels: keep_or_set(b.labels, strings),
            project_id: keep_or_set(b.project_id, ProjectId::from_uuid),
            assignee_ids: keep_or_set(b.assignee_ids, users),
        };
        write(&service, &auth, id.0, if_match_header.0.as_deref(), patch).await
    }

    /// Update a task (partial, `null` clears)
    ///
    /// Like `PUT`, except that `null` clears a field. Send `If-Match` with the `ETag` you
    /// read: a stale one (or a weak `W/` tag: the comparison is strong) gets 412, a problem
    /// `precondition_failed` whose `current` is the current task, with its `ETag`; nothing changed.
    #[oai(path = "/:id", method = "patch", operation_id = "updateTask")]
    async fn patch(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The `ETag` the change is based on.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
        body: Json<PatchTaskRequest>,
    ) -> ApiResult<Written<TaskBody>> {
        let b = body.0;
        let patch = TaskPatch {
            title: edit(b.title, String::from),
            description: edit(b.description, String::from),
            status: edit(b.status, TaskStatus::from),
            priority: edit(b.priority, Priority::from),
            due_date: edit(b.due_date, |d| d),
            labels: edit(b.labels, strings),
            project_id: edit(b.project_id, ProjectId::from_uuid),
            assignee_ids: edit(b.assignee_ids, users),
        };
        write(&service, &auth, id.0, if_match_header.0.as_deref(), patch).await
    }

    /// Delete a task
    ///
    /// The task's creator, and the team's owners and admins. A stale `If-Match` (or a
    /// weak `W/` tag: the comparison is strong) gets 412, a problem `precondition_failed` whose
    /// `current` is the current task, with its `ETag`; nothing is deleted.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteTask")]
    async fn delete(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The `ETag` the deletion is based on.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
    ) -> ApiResult<Deleted<TaskBody>> {
        let expected = if_match(if_match_header.0.as_deref());
        Ok(Deleted::new(
            service
                .delete_task(&auth.0, TaskId::from_uuid(id.0), expected)
                .await?,
        ))
    }

    /// A task's history
    ///
    /// Every change, field by field (who, when, from, to), oldest first. The `created` entry
    /// lists the values the task was created with, except for a task brought in by `tasker
    /// import`: its `created` entry has an empty `changes` (its values are the ones it was
    /// imported with), and later edits record before and after as usual.
    #[oai(path = "/:id/activity", method = "get", operation_id = "taskActivity")]
    async fn activity(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<ActivityPage>> {
        let page = service
            .task_activity(
                &auth.0,
                TaskId::from_uuid(id.0),
                cursor.0.as_deref(),
                limit.0,
            )
            .await?;
        Ok(Json(Page::map(page, ActivityEntry::from)))
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for TasksApi {
    const ERRORS: &'static [OperationErrors] = &[
        ("createTask", &[404, 409, 410, 422]),
        ("listTasks", &[404, 422]),
        ("searchTasks", &[404, 422, 503]),
        ("replaceTask", &[409, 422]),
        ("updateTask", &[409, 422]),
        ("deleteTask", &[409]),
        ("taskActivity", &[422]),
    ];

    const REQUIRED_PARAMETERS: &'static [(&'static str, &'static str)] = &[("searchTasks", "q")];

    fn examples() -> Vec<(&'static str, serde_json::Value)> {
        // A personal task: it names no project or people, so it succeeds for anyone.
        vec![(
            "CreateTaskRequest",
            serde_json::json!({
                "title": "Write the release notes",
                "description": "List what changed since the last release and who helped.",
                "status": "todo",
                "priority": "high",
                "due_date": "2027-01-15T17:00:00Z",
                "labels": ["docs", "release"]
            }),
        )]
    }
}
