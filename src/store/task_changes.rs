//! The change-log entries a task write appends: the fields a creation or an update records,
//! and who sees them (`domain::access::change_audience`). Plain functions of `domain` values, used by
//! the task, comment and attachment writes (through `Tx` methods) and by import.

use chrono::{DateTime, Utc};

use crate::domain::change::{ChangeAction, EntityKind, FieldChange, NewChange};
use crate::domain::task::Task;
use crate::domain::{UserId, access};

pub(super) fn task_change(
    task: &Task,
    at: DateTime<Utc>,
    actor: UserId,
    action: ChangeAction,
    fields: Vec<FieldChange>,
) -> NewChange {
    NewChange {
        at,
        actor,
        entity: EntityKind::Task,
        entity_id: task.id.as_uuid(),
        team_id: task.team_id,
        project_id: task.project_id,
        audience: access::change_audience(None, task),
        previous_team_id: None,
        previous_project_id: None,
        task_id: None,
        action,
        fields,
    }
}

/// A change to something on `task` (a comment, an attachment), seen by whoever sees the task.
pub(super) fn about_task(
    task: &Task,
    entity: EntityKind,
    id: uuid::Uuid,
    at: DateTime<Utc>,
    actor: UserId,
    action: ChangeAction,
    fields: Vec<FieldChange>,
) -> NewChange {
    NewChange {
        at,
        actor,
        entity,
        entity_id: id,
        team_id: task.team_id,
        project_id: task.project_id,
        audience: access::change_audience(None, task),
        previous_team_id: None,
        previous_project_id: None,
        task_id: Some(task.id),
        action,
        fields,
    }
}

/// The fields that differ between two versions of a task (`rank` too: a move within a
/// column is a change live boards must see).
pub(super) fn task_diff(before: &Task, after: &Task) -> Vec<FieldChange> {
    [
        FieldChange::of("title", &before.title, &after.title),
        FieldChange::of("description", &before.description, &after.description),
        FieldChange::of("status", &before.status, &after.status),
        FieldChange::of("priority", &before.priority, &after.priority),
        FieldChange::of("due_date", &before.due_date, &after.due_date),
        FieldChange::of("labels", &before.labels, &after.labels),
        FieldChange::of("project_id", &before.project_id, &after.project_id),
        FieldChange::of("assignee_ids", &before.assignee_ids, &after.assignee_ids),
        FieldChange::of("rank", &before.rank, &after.rank),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn creation_fields(task: &Task) -> Vec<FieldChange> {
    let mut fields = vec![
        FieldChange::set("title", &task.title),
        FieldChange::set("status", &task.status),
        FieldChange::set("priority", &task.priority),
        FieldChange::set("rank", &task.rank),
    ];
    if !task.description.is_empty() {
        fields.push(FieldChange::set("description", &task.description));
    }
    if task.due_date.is_some() {
        fields.push(FieldChange::set("due_date", &task.due_date));
    }
    if !task.labels.is_empty() {
        fields.push(FieldChange::set("labels", &task.labels));
    }
    if task.project_id.is_some() {
        fields.push(FieldChange::set("project_id", &task.project_id));
    }
    if !task.assignee_ids.is_empty() {
        fields.push(FieldChange::set("assignee_ids", &task.assignee_ids));
    }
    fields
}

/// A task's `Created` entry.
pub(super) fn task_created(task: &Task) -> NewChange {
    task_change(
        task,
        task.created_at,
        task.created_by,
        ChangeAction::Created,
        creation_fields(task),
    )
}

/// An imported task's `Created` entry: who created it and when, without field values. The
/// values it was created with are the row as imported (nothing happened to it before the
/// import that this log knows of), and at a million tasks repeating them doubled the log.
pub(super) fn task_imported(task: &Task) -> NewChange {
    task_change(
        task,
        task.created_at,
        task.created_by,
        ChangeAction::Created,
        vec![],
    )
}
