//! Comments and attachments of tasks: rows, per-task indexes, the task's counts, blob
//! references and upload totals, each change in one transaction with its change-log entry.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::blobs::{add_ref, drop_ref};
use super::changes::append;
use super::codec::{encode, read_row};
use super::notifications::{self, Cause};
use super::tables::*;
use super::tasks::{add_to_counts, require_active_project, task_and_role};
use super::teams::{ids_after, read_membership};
use super::{Created, Idempotency, Store, StoreError};
use crate::domain::attachment::Attachment;
use crate::domain::change::{ChangeAction, EntityKind, FieldChange, NewChange};
use crate::domain::comment::Comment;
use crate::domain::task::Task;
use crate::domain::team::TeamRole;
use crate::domain::{AttachmentId, CommentId, TaskId, UserId};

/// Up to `limit` rows of `rows` (a task's comments or attachments, listed by `by_task`)
/// after `after`, oldest first: one snapshot.
fn children_page<T: serde::de::DeserializeOwned>(
    store: &Store,
    by_task: redb::TableDefinition<(u128, u128), ()>,
    rows: redb::TableDefinition<u128, &'static [u8]>,
    name: &str,
    task: TaskId,
    after: Option<u128>,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let txn = store.db().begin_read()?;
    let ids = ids_after(&txn.open_table(by_task)?, task.as_u128(), after, limit)?;
    let rows = txn.open_table(rows)?;
    let mut page = Vec::with_capacity(ids.len());
    for id in ids {
        page.extend(read_row::<T>(&rows, name, id)?);
    }
    Ok(page)
}

fn entry(
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
        audience: super::tasks::audience(task),
        previous_team_id: None,
        previous_project_id: None,
        task_id: Some(task.id),
        action,
        fields,
    }
}

/// A comment's `Created` entry.
pub(super) fn comment_created(task: &Task, comment: &Comment) -> NewChange {
    let fields = vec![
        FieldChange::set("task_id", &comment.task_id),
        FieldChange::set("body", &comment.body),
    ];
    entry(
        task,
        EntityKind::Comment,
        comment.id.as_uuid(),
        comment.created_at,
        comment.author_id,
        ChangeAction::Created,
        fields,
    )
}

/// An attachment's `Created` entry.
pub(super) fn attachment_created(task: &Task, attachment: &Attachment) -> NewChange {
    let fields = vec![
        FieldChange::set("task_id", &attachment.task_id),
        FieldChange::set("filename", &attachment.filename),
        FieldChange::set("content_type", &attachment.content_type),
        FieldChange::set("size", &attachment.size),
    ];
    entry(
        task,
        EntityKind::Attachment,
        attachment.id.as_uuid(),
        attachment.created_at,
        attachment.uploaded_by,
        ChangeAction::Created,
        fields,
    )
}

/// What a permission decision about a task was made on: the task's version and the actor's
/// role in its team. A write that relied on it confirms both inside its transaction.
#[derive(Debug, Clone, Copy)]
pub struct TaskSeen {
    pub version: u64,
    pub role: Option<TeamRole>,
}

/// Fails with `Superseded` when `actor`'s role in the task's team is no longer `seen` (they
/// were promoted, demoted, removed, or left): the caller decides again.
fn confirm_role(
    txn: &WriteTransaction,
    task: &Task,
    actor: UserId,
    seen: Option<TeamRole>,
) -> Result<(), StoreError> {
    let Some(team) = task.team_id else {
        return Ok(());
    };
    let role = read_membership(&txn.open_table(TEAM_MEMBERS)?, team, actor)?.map(|m| m.role);
    if role == seen {
        Ok(())
    } else {
        Err(StoreError::Superseded)
    }
}

/// Reads the task a write is about: still the version and the actor's role the permission
/// check saw (`Stale` or `Superseded` otherwise), and not in an archived project.
fn current_task(
    txn: &WriteTransaction,
    task: TaskId,
    actor: UserId,
    seen: TaskSeen,
) -> Result<Task, StoreError> {
    let found = read_task(txn, task)?;
    if found.version != seen.version {
        return Err(StoreError::Stale);
    }
    confirm_role(txn, &found, actor, seen.role)?;
    require_active_project(txn, found.project_id)?;
    Ok(found)
}

fn read_task(txn: &WriteTransaction, task: TaskId) -> Result<Task, StoreError> {
    let found: Option<Task> = read_row(&txn.open_table(TASKS)?, "tasks", task.as_u128())?;
    found.ok_or(StoreError::NotFound)
}

/// Deletes a task's comments and attachments inside the caller's transaction (the task is
/// being deleted, alone or in a cascade; its own `Deleted` entry covers them). Blobs left
/// without a reference are freed.
pub(super) fn delete_children(txn: &WriteTransaction, task: TaskId) -> Result<(), StoreError> {
    let t = task.as_u128();
    {
        let mut by_task = txn.open_table(COMMENTS_BY_TASK)?;
        let mut rows = txn.open_table(COMMENTS)?;
        for id in ids_after(&by_task, t, None, usize::MAX)? {
            rows.remove(id)?;
            by_task.remove((t, id))?;
        }
    }
    let mut gone = Vec::new();
    {
        let mut by_task = txn.open_table(ATTACHMENTS_BY_TASK)?;
        let mut rows = txn.open_table(ATTACHMENTS)?;
        for id in ids_after(&by_task, t, None, usize::MAX)? {
            gone.extend(read_row::<Attachment>(&rows, "attachments", id)?);
            rows.remove(id)?;
            by_task.remove((t, id))?;
        }
    }
    for attachment in &gone {
        release(txn, attachment)?;
    }
    Ok(())
}

/// Drops an attachment's blob reference and its uploader's total.
fn release(txn: &WriteTransaction, attachment: &Attachment) -> Result<(), StoreError> {
    drop_ref(txn, attachment.sha256)?;
    let mut totals = txn.open_table(UPLOAD_BYTES_BY_USER)?;
    let user = attachment.uploaded_by.as_u128();
    let total = totals.get(user)?.map_or(0, |v| v.value());
    match total.saturating_sub(attachment.size) {
        0 => totals.remove(user)?,
        left => totals.insert(user, left)?,
    };
    Ok(())
}

impl Store {
    /// Adds a comment to a task still as the caller's permission check `seen` it, or replays
    /// an earlier create with the same idempotency key.
    pub fn create_comment(
        &self,
        comment: &Comment,
        seen: TaskSeen,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created<Comment>, StoreError> {
        let txn = self.begin_write()?;
        if let Some(first) =
            super::idempotency::check::<Comment>(&txn, idempotency, comment.created_at)?
        {
            self.commit(txn)?;
            return Ok(Created::Replayed(first));
        }
        let task = current_task(&txn, comment.task_id, comment.author_id, seen)?;
        let mut comment = comment.clone();
        comment.id = CommentId::from_u128(super::next_id(&txn, COMMENTS, comment.id.as_u128())?);
        txn.open_table(COMMENTS)?
            .insert(comment.id.as_u128(), encode(&comment)?.as_slice())?;
        txn.open_table(COMMENTS_BY_TASK)?
            .insert((task.id.as_u128(), comment.id.as_u128()), ())?;
        add_to_counts(&txn, task.id, 1, 0)?;
        let seq = append(&txn, comment_created(&task, &comment))?;
        let cause = Cause {
            seq,
            actor: comment.author_id,
            at: comment.created_at,
        };
        notifications::for_comment(&txn, cause, &task, &comment)?;
        super::idempotency::record(&txn, idempotency, comment.created_at, &comment)?;
        self.commit(txn)?;
        Ok(Created::New(comment))
    }

    /// A comment, its task and `user`'s role in the task's team, in one snapshot.
    #[allow(clippy::type_complexity)]
    pub fn comment_for(
        &self,
        id: CommentId,
        user: UserId,
    ) -> Result<Option<(Comment, Task, Option<TeamRole>)>, StoreError> {
        let txn = self.db().begin_read()?;
        let Some(comment): Option<Comment> =
            read_row(&txn.open_table(COMMENTS)?, "comments", id.as_u128())?
        else {
            return Ok(None);
        };
        Ok(task_and_role(&txn, comment.task_id, user)?.map(|(task, role)| (comment, task, role)))
    }

    /// Up to `limit` comments of a task after `after`, oldest first.
    pub fn comments_of_task(
        &self,
        task: TaskId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<Comment>, StoreError> {
        children_page(
            self,
            COMMENTS_BY_TASK,
            COMMENTS,
            "comments",
            task,
            after,
            limit,
        )
    }

    /// Replaces a comment's body, if the comment is still at `expected_version`.
    pub fn update_comment(
        &self,
        id: CommentId,
        expected_version: u64,
        body: String,
        actor: UserId,
        seen_role: Option<TeamRole>,
        now: DateTime<Utc>,
    ) -> Result<Comment, StoreError> {
        let txn = self.begin_write()?;
        let mut rows = txn.open_table(COMMENTS)?;
        let Some(mut comment): Option<Comment> = read_row(&rows, "comments", id.as_u128())? else {
            return Err(StoreError::NotFound);
        };
        if comment.version != expected_version {
            return Err(StoreError::Stale);
        }
        if comment.body == body {
            drop(rows);
            self.commit(txn)?;
            return Ok(comment);
        }
        let task = read_task(&txn, comment.task_id)?;
        confirm_role(&txn, &task, actor, seen_role)?;
        require_active_project(&txn, task.project_id)?;
        let fields = FieldChange::of("body", &comment.body, &body)
            .into_iter()
            .collect();
        comment.body = body;
        comment.version += 1;
        comment.updated_at = now;
        comment.edited_at = Some(now);
        rows.insert(id.as_u128(), encode(&comment)?.as_slice())?;
        drop(rows);
        append(
            &txn,
            entry(
                &task,
                EntityKind::Comment,
                id.as_uuid(),
                now,
                actor,
                ChangeAction::Updated,
                fields,
            ),
        )?;
        self.commit(txn)?;
        Ok(comment)
    }

    /// Deletes a comment, if it is still at `expected_version` (when given).
    pub fn delete_comment(
        &self,
        id: CommentId,
        expected_version: Option<u64>,
        actor: UserId,
        seen_role: Option<TeamRole>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        let comment = {
            let mut rows = txn.open_table(COMMENTS)?;
            let Some(comment): Option<Comment> = read_row(&rows, "comments", id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            if expected_version.is_some_and(|v| v != comment.version) {
                return Err(StoreError::Stale);
            }
            rows.remove(id.as_u128())?;
            comment
        };
        txn.open_table(COMMENTS_BY_TASK)?
            .remove((comment.task_id.as_u128(), id.as_u128()))?;
        let task = add_to_counts(&txn, comment.task_id, -1, 0)?;
        confirm_role(&txn, &task, actor, seen_role)?;
        require_active_project(&txn, task.project_id)?;
        append(
            &txn,
            entry(
                &task,
                EntityKind::Comment,
                id.as_uuid(),
                now,
                actor,
                ChangeAction::Deleted,
                vec![FieldChange::removed("body", &comment.body)],
            ),
        )?;
        self.commit(txn)?;
        Ok(())
    }

    /// Records uploaded files as attachments of a task still as the caller's check `seen` it: one row, index
    /// entry, blob reference and change-log entry each, all in one transaction. With a
    /// `quota`, the uploader's total (these included) must stay within it.
    pub fn create_attachments(
        &self,
        attachments: &[Attachment],
        seen: TaskSeen,
        quota: Option<u64>,
    ) -> Result<Vec<Attachment>, StoreError> {
        let Some(first) = attachments.first() else {
            return Ok(vec![]);
        };
        let (task_id, uploader) = (first.task_id, first.uploaded_by);
        let txn = self.begin_write()?;
        let task = current_task(&txn, task_id, uploader, seen)?;
        let added: u64 = attachments.iter().map(|a| a.size).sum();
        {
            let mut totals = txn.open_table(UPLOAD_BYTES_BY_USER)?;
            let total = totals.get(uploader.as_u128())?.map_or(0, |v| v.value()) + added;
            if quota.is_some_and(|q| total > q) {
                return Err(StoreError::QuotaExceeded);
            }
            totals.insert(uploader.as_u128(), total)?;
        }
        let mut stored = Vec::with_capacity(attachments.len());
        for attachment in attachments {
            let mut attachment = attachment.clone();
            let id = super::next_id(&txn, ATTACHMENTS, attachment.id.as_u128())?;
            attachment.id = AttachmentId::from_u128(id);
            txn.open_table(ATTACHMENTS)?
                .insert(id, encode(&attachment)?.as_slice())?;
            txn.open_table(ATTACHMENTS_BY_TASK)?
                .insert((task_id.as_u128(), attachment.id.as_u128()), ())?;
            add_ref(&txn, attachment.sha256)?;
            let seq = append(&txn, attachment_created(&task, &attachment))?;
            let cause = Cause {
                seq,
                actor: uploader,
                at: attachment.created_at,
            };
            notifications::for_attachment(&txn, cause, &task, &attachment)?;
            stored.push(attachment);
        }
        add_to_counts(&txn, task_id, 0, stored.len() as i64)?;
        self.commit(txn)?;
        Ok(stored)
    }

    /// An attachment, its task and `user`'s role in the task's team, in one snapshot.
    #[allow(clippy::type_complexity)]
    pub fn attachment_for(
        &self,
        id: AttachmentId,
        user: UserId,
    ) -> Result<Option<(Attachment, Task, Option<TeamRole>)>, StoreError> {
        let txn = self.db().begin_read()?;
        let Some(attachment): Option<Attachment> =
            read_row(&txn.open_table(ATTACHMENTS)?, "attachments", id.as_u128())?
        else {
            return Ok(None);
        };
        Ok(task_and_role(&txn, attachment.task_id, user)?
            .map(|(task, role)| (attachment, task, role)))
    }

    /// Up to `limit` attachments of a task after `after`, oldest first.
    pub fn attachments_of_task(
        &self,
        task: TaskId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<Attachment>, StoreError> {
        children_page(
            self,
            ATTACHMENTS_BY_TASK,
            ATTACHMENTS,
            "attachments",
            task,
            after,
            limit,
        )
    }

    /// Deletes an attachment; its blob is freed when no other attachment points at it.
    pub fn delete_attachment(
        &self,
        id: AttachmentId,
        actor: UserId,
        seen_role: Option<TeamRole>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        let attachment = {
            let mut rows = txn.open_table(ATTACHMENTS)?;
            let Some(attachment): Option<Attachment> =
                read_row(&rows, "attachments", id.as_u128())?
            else {
                return Err(StoreError::NotFound);
            };
            rows.remove(id.as_u128())?;
            attachment
        };
        txn.open_table(ATTACHMENTS_BY_TASK)?
            .remove((attachment.task_id.as_u128(), id.as_u128()))?;
        let task = add_to_counts(&txn, attachment.task_id, 0, -1)?;
        confirm_role(&txn, &task, actor, seen_role)?;
        require_active_project(&txn, task.project_id)?;
        release(&txn, &attachment)?;
        append(
            &txn,
            entry(
                &task,
                EntityKind::Attachment,
                id.as_uuid(),
                now,
                actor,
                ChangeAction::Deleted,
                vec![FieldChange::removed("filename", &attachment.filename)],
            ),
        )?;
        self.commit(txn)?;
        Ok(())
    }

    /// The bytes of attachments `user` has uploaded that still exist.
    pub fn upload_bytes_of(&self, user: UserId) -> Result<u64, StoreError> {
        let txn = self.db().begin_read()?;
        Ok(txn
            .open_table(UPLOAD_BYTES_BY_USER)?
            .get(user.as_u128())?
            .map_or(0, |v| v.value()))
    }
}
