//! `GET /tasks/{id}`: the page, and the model its template and fragments share.

use std::collections::HashMap;

use askama::Template;
use chrono::Utc;
use poem::web::{Data, Path, Query};
use poem::{Response, handler};
use serde::Deserialize;
use serde_json::Value;

use super::super::pages_auth::FormErrors;
use super::super::views::{priority_key, priority_label, status_key, status_label};
use super::super::{Chrome, markdown, render};
use super::{date_input, moment_label, name_of, parse_id, size_label};
use crate::domain::change::{Change, ChangeAction};
use crate::domain::task::{Priority, Task, TaskStatus};
use crate::domain::{TaskId, UserId};
use crate::service::{AttachmentView, CommentView, Service, TaskAbilities};
use crate::web::error::WebResult;
use crate::web::session::WebUser;

/// The most comments, files and history entries a page shows.
const REGION_LIMIT: u32 = 200;
/// The most recent history entries shown.
const ACTIVITY_SHOWN: usize = 50;

pub const STATUSES: [(&str, &str); 4] = [
    ("todo", "To do"),
    ("in_progress", "In progress"),
    ("blocked", "Blocked"),
    ("done", "Done"),
];
pub const PRIORITIES: [(&str, &str); 4] = [
    ("low", "Low"),
    ("medium", "Medium"),
    ("high", "High"),
    ("urgent", "Urgent"),
];

/// The editable fields as the form holds them (strings, as typed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFields {
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    /// `YYYY-MM-DD` or empty.
    pub due: String,
    /// Comma-separated.
    pub labels: String,
    /// User ids.
    pub assignees: Vec<String>,
}

impl TaskFields {
    pub fn of(task: &Task) -> Self {
        Self {
            title: task.title.as_str().to_string(),
            description: task.description.clone(),
            status: status_key(task.status).to_string(),
            priority: priority_key(task.priority).to_string(),
            due: date_input(task.due_date),
            labels: task.labels.join(", "),
            assignees: task
                .assignee_ids
                .iter()
                .map(|u| u.as_uuid().to_string())
                .collect(),
        }
    }

    pub fn has_assignee(&self, id: &str) -> bool {
        self.assignees.iter().any(|a| a == id)
    }

    pub fn is_status(&self, key: &str) -> bool {
        self.status == key
    }

    pub fn is_priority(&self, key: &str) -> bool {
        self.priority == key
    }

    /// The base assignees as one hidden field.
    pub fn assignee_list(&self) -> String {
        self.assignees.join(",")
    }
}

pub struct Person {
    pub id: String,
    pub name: String,
}

/// One row of the conflict panel.
pub struct ConflictRow {
    pub field: &'static str,
    pub theirs: String,
    pub yours: String,
    /// Both sides changed this field (to different values).
    pub clash: bool,
}

pub struct Conflict {
    pub rows: Vec<ConflictRow>,
}

/// What the edit form shows: the task as loaded, or what the person submitted.
pub struct FormState {
    pub editing: bool,
    /// The form holds values the person typed that are not saved (after a refused save).
    pub unsaved: bool,
    pub values: TaskFields,
    /// The values the form was loaded with: what "your changes" are measured against.
    pub base: TaskFields,
    pub version: u64,
    pub errors: FormErrors,
    pub conflict: Option<Conflict>,
}

impl FormState {
    pub fn of(task: &Task, editing: bool) -> Self {
        Self {
            editing,
            unsaved: false,
            values: TaskFields::of(task),
            base: TaskFields::of(task),
            version: task.version,
            errors: FormErrors::default(),
            conflict: None,
        }
    }
}

/// The task's fields as shown.
pub struct Summary {
    pub id: String,
    pub title: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub priority: &'static str,
    pub priority_label: &'static str,
    pub due: Option<String>,
    pub due_iso: String,
    pub overdue: bool,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    pub project: Option<(String, String)>,
    pub created_by: String,
    pub created_at: String,
    pub created_iso: String,
    pub updated_at: String,
    pub description_html: String,
}

pub struct CommentItem {
    pub id: String,
    pub author: String,
    pub at: String,
    pub at_iso: String,
    pub edited: bool,
    pub html: String,
    pub body: String,
    pub version: u64,
    pub can_edit: bool,
    pub can_delete: bool,
    /// The edit form is open (with this message, after a refused save).
    pub editing: bool,
    pub error: Option<String>,
}

impl CommentItem {
    pub fn new(view: &CommentView, names: &HashMap<UserId, String>) -> Self {
        let c = &view.comment;
        Self {
            id: c.id.as_uuid().to_string(),
            author: name_of(names, c.author_id),
            at: moment_label(c.created_at),
            at_iso: c.created_at.to_rfc3339(),
            edited: c.edited_at.is_some(),
            html: markdown::render(&c.body),
            body: c.body.clone(),
            version: c.version,
            can_edit: view.can_edit,
            can_delete: view.can_delete,
            editing: false,
            error: None,
        }
    }
}

/// `partials/comments.html`: the list of comments (`#comments`).
#[derive(Template)]
#[template(path = "partials/comments.html")]
pub struct CommentsRegion {
    pub items: Vec<CommentItem>,
    pub more: bool,
    pub csrf: String,
}

/// `partials/comment.html`: one comment, as htmx appends or replaces it.
#[derive(Template)]
#[template(path = "partials/comment.html")]
pub struct CommentFragment {
    pub c: CommentItem,
    pub csrf: String,
}

pub struct AttachmentItem {
    pub id: String,
    pub filename: String,
    pub size: String,
    pub uploader: String,
    pub at: String,
    pub at_iso: String,
    pub can_delete: bool,
}

impl AttachmentItem {
    pub fn new(view: &AttachmentView, names: &HashMap<UserId, String>) -> Self {
        let a = &view.attachment;
        Self {
            id: a.id.as_uuid().to_string(),
            filename: a.filename.clone(),
            size: size_label(a.size),
            uploader: name_of(names, a.uploaded_by),
            at: moment_label(a.created_at),
            at_iso: a.created_at.to_rfc3339(),
            can_delete: view.can_delete,
        }
    }
}

/// `partials/attachments.html`: the task's files (`#attachments`).
#[derive(Template)]
#[template(path = "partials/attachments.html")]
pub struct AttachmentsRegion {
    pub items: Vec<AttachmentItem>,
    pub more: bool,
    pub csrf: String,
}

pub struct ActivityItem {
    pub actor: String,
    pub at: String,
    pub at_iso: String,
    pub what: Vec<String>,
}

/// `partials/task_activity.html`: the history (`#activity`), newest first.
#[derive(Template)]
#[template(path = "partials/task_activity.html")]
pub struct ActivityRegion {
    pub items: Vec<ActivityItem>,
    pub older: bool,
}

#[derive(Template)]
#[template(path = "task.html")]
pub struct TaskPage {
    pub chrome: Chrome,
    pub t: Summary,
    pub can_edit: bool,
    pub can_delete: bool,
    pub can_comment: bool,
    pub can_attach: bool,
    pub form: FormState,
    pub people: Vec<Person>,
    pub statuses: [(&'static str, &'static str); 4],
    pub priorities: [(&'static str, &'static str); 4],
    pub max_upload: String,
    pub comments_html: String,
    pub attachments_html: String,
    pub activity_html: String,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    edit: Option<String>,
}

/// `GET /tasks/{id}` (`?edit=1` opens the form, for browsers without script).
#[handler]
pub async fn show(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> WebResult<Response> {
    let id: TaskId = parse_id(&id)?;
    let abilities = service.task_abilities(&user.0, id).await?;
    let editing = query.edit.is_some() && abilities.view.can_edit;
    let form = FormState::of(&abilities.view.task, editing);
    render(&build(&service, user, abilities, form).await?)
}

/// The page for a task, with the form in `form`'s state.
pub async fn build(
    service: &Service,
    user: WebUser,
    abilities: TaskAbilities,
    form: FormState,
) -> WebResult<TaskPage> {
    let auth = user.0.clone();
    let task = &abilities.view.task;
    let names = service.people_names(&auth).await?;
    let chrome = Chrome::load(service, user, "tasks").await?;
    let csrf = chrome.csrf().to_string();
    let project = match task.project_id {
        Some(project) => service.project(&auth, project).await.ok().map(|p| {
            (
                project.as_uuid().to_string(),
                p.project.name.as_str().to_string(),
            )
        }),
        None => None,
    };
    let comments = service
        .comments(&auth, task.id, None, Some(REGION_LIMIT))
        .await?;
    let attachments = service
        .attachments(&auth, task.id, None, Some(REGION_LIMIT))
        .await?;
    let activity = service
        .task_activity(&auth, task.id, None, Some(REGION_LIMIT))
        .await?;
    let people = assignee_choices(service, &auth, task, &names).await?;
    let comments = CommentsRegion {
        more: comments.next_cursor.is_some(),
        items: comments
            .items
            .iter()
            .map(|c| CommentItem::new(c, &names))
            .collect(),
        csrf: csrf.clone(),
    };
    let attachments = AttachmentsRegion {
        more: attachments.next_cursor.is_some(),
        items: attachments
            .items
            .iter()
            .map(|a| AttachmentItem::new(a, &names))
            .collect(),
        csrf,
    };
    let activity = activity_region(&activity.items, &names);
    Ok(TaskPage {
        t: summary(task, project, &names),
        can_edit: abilities.view.can_edit,
        can_delete: abilities.view.can_delete,
        can_comment: abilities.can_comment,
        can_attach: abilities.can_attach,
        form,
        people,
        statuses: STATUSES,
        priorities: PRIORITIES,
        max_upload: size_label(service.max_upload_bytes()),
        comments_html: comments.render()?,
        attachments_html: attachments.render()?,
        activity_html: activity.render()?,
        chrome,
    })
}

fn summary(
    task: &Task,
    project: Option<(String, String)>,
    names: &HashMap<UserId, String>,
) -> Summary {
    let now = Utc::now();
    Summary {
        id: task.id.as_uuid().to_string(),
        title: task.title.as_str().to_string(),
        status: status_key(task.status),
        status_label: status_label(task.status),
        priority: priority_key(task.priority),
        priority_label: priority_label(task.priority),
        due: task
            .due_date
            .map(|d| super::super::views::due_label(d, now)),
        due_iso: date_input(task.due_date),
        overdue: task.status != TaskStatus::Done && task.due_date.is_some_and(|d| d < now),
        labels: task.labels.clone(),
        assignees: task
            .assignee_ids
            .iter()
            .map(|u| name_of(names, *u))
            .collect(),
        project,
        created_by: name_of(names, task.created_by),
        created_at: moment_label(task.created_at),
        created_iso: task.created_at.to_rfc3339(),
        updated_at: moment_label(task.updated_at),
        description_html: markdown::render(&task.description),
    }
}

/// Whom the task may be assigned to: the members of its project's team; for a personal task,
/// the caller. Current assignees are always offered, so saving keeps them.
async fn assignee_choices(
    service: &Service,
    auth: &crate::service::AuthUser,
    task: &Task,
    names: &HashMap<UserId, String>,
) -> WebResult<Vec<Person>> {
    let mut ids: Vec<UserId> = match task.team_id {
        Some(team) => service
            .members(auth, team, None, Some(REGION_LIMIT))
            .await?
            .items
            .into_iter()
            .map(|(m, _)| m.user_id)
            .collect(),
        None => vec![auth.user_id],
    };
    for id in &task.assignee_ids {
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
    let mut people: Vec<Person> = ids
        .into_iter()
        .map(|id| Person {
            id: id.as_uuid().to_string(),
            name: name_of(names, id),
        })
        .collect();
    people.sort_by_key(|p| p.name.to_lowercase());
    Ok(people)
}

fn activity_region(changes: &[Change], names: &HashMap<UserId, String>) -> ActivityRegion {
    let older = changes.len() > ACTIVITY_SHOWN;
    let items = changes
        .iter()
        .rev()
        .take(ACTIVITY_SHOWN)
        .map(|change| {
            let c = &change.change;
            let what = match c.action {
                ChangeAction::Created => vec!["created the task".to_string()],
                ChangeAction::Deleted => vec!["deleted the task".to_string()],
                ChangeAction::Updated => c
                    .fields
                    .iter()
                    .filter_map(|f| describe(&f.field, &f.before, &f.after, names))
                    .collect(),
            };
            ActivityItem {
                actor: name_of(names, c.actor),
                at: moment_label(c.at),
                at_iso: c.at.to_rfc3339(),
                what,
            }
        })
        .filter(|item| !item.what.is_empty())
        .collect();
    ActivityRegion { items, older }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn users(value: &Value) -> Vec<UserId> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// One field's change in words ("changed status from To do to Done"); `None` for fields the
/// history does not show.
fn describe(
    field: &str,
    before: &Value,
    after: &Value,
    names: &HashMap<UserId, String>,
) -> Option<String> {
    let status = |v: &Value| {
        TaskStatus::parse(&text(v))
            .map(status_label)
            .unwrap_or("none")
    };
    let priority = |v: &Value| {
        Priority::parse(&text(v))
            .map(priority_label)
            .unwrap_or("none")
    };
    Some(match field {
        "title" => format!("renamed it from “{}” to “{}”", text(before), text(after)),
        "description" if text(after).is_empty() => "removed the description".into(),
        "description" => "edited the description".into(),
        "status" => format!(
            "changed status from {} to {}",
            status(before),
            status(after)
        ),
        "priority" => format!(
            "changed priority from {} to {}",
            priority(before),
            priority(after)
        ),
        "due_date" => match serde_json::from_value::<chrono::DateTime<Utc>>(after.clone()) {
            Ok(due) => format!("set the due date to {}", due.format("%-d %b %Y")),
            Err(_) => "removed the due date".into(),
        },
        "labels" => {
            let labels: Vec<String> = serde_json::from_value(after.clone()).unwrap_or_default();
            if labels.is_empty() {
                "removed the labels".into()
            } else {
                format!("set labels to {}", labels.join(", "))
            }
        }
        "project_id" if after.is_null() => "made it a personal task".into(),
        "project_id" => "moved it to another project".into(),
        "assignee_ids" => {
            let (was, now) = (users(before), users(after));
            let added: Vec<String> = now
                .iter()
                .filter(|u| !was.contains(u))
                .map(|u| name_of(names, *u))
                .collect();
            let removed: Vec<String> = was
                .iter()
                .filter(|u| !now.contains(u))
                .map(|u| name_of(names, *u))
                .collect();
            match (added.is_empty(), removed.is_empty()) {
                (false, true) => format!("assigned {}", added.join(", ")),
                (true, false) => format!("unassigned {}", removed.join(", ")),
                (false, false) => format!(
                    "assigned {} and unassigned {}",
                    added.join(", "),
                    removed.join(", ")
                ),
                (true, true) => return None,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_in_words() {
        let (bo, cy) = (UserId::new(), UserId::new());
        let names = HashMap::from([(bo, "Bo".to_string())]);
        let say = |f: &str, b: Value, a: Value| describe(f, &b, &a, &names);
        assert_eq!(
            say("status", json!("todo"), json!("in_progress")).unwrap(),
            "changed status from To do to In progress"
        );
        assert_eq!(
            say("due_date", json!("2026-01-31T23:59:59Z"), Value::Null).unwrap(),
            "removed the due date"
        );
        assert_eq!(
            say("due_date", Value::Null, json!("2026-01-31T23:59:59Z")).unwrap(),
            "set the due date to 31 Jan 2026"
        );
        assert_eq!(
            say("assignee_ids", json!([cy.as_uuid()]), json!([bo.as_uuid()])).unwrap(),
            "assigned Bo and unassigned A former member"
        );
        assert!(say("rank", json!("a"), json!("b")).is_none());
    }
}
