//! The change-log entries a task write appends, and who sees them: the fields a creation or
//! an update records, and the audience of a personal task (its creator and assignees; a team
//! task's changes are seen by the team's members). Plain functions of `domain` values, used by
//! the task, comment and attachment writes (through `Tx` methods) and by import.

use chrono::{DateTime, Utc};

use crate::domain::UserId;
use crate::domain::change::{ChangeAction, EntityKind, FieldChange, NewChange};
use crate::domain::task::Task;

/// Who sees a change of `task` outside any team: for a personal task, its creator and
/// assignees; for a team task, nobody extra (the team's members see it).
pub(super) fn audience(task: &Task) -> Vec<UserId> {
    if task.team_id.is_some() {
        return vec![];
    }
    let mut people: Vec<UserId> = task.assignee_ids.clone();
    people.push(task.created_by);
    people.sort_unstable_by_key(|u| u.as_u128());
    people.dedup();
    people
}

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
        audience: audience(task),
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
        audience: audience(task),
        previous_team_id: None,
        previous_project_id: None,
        task_id: Some(task.id),
        action,
        fields,
    }
}

/// The fields that differ between two versions of a task.
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
