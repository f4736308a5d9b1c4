//! Attachments: rows and the per-task index (`ATTACHMENTS_BY_TASK`), the blob each points at
//! (counted in `blobs.rs`) and the uploader's total; each change updates the task's attachment
//! count and appends its change-log entry in the same transaction.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable};

use super::codec::{encode, ids_after, read_row, rows_after};
use super::tables::*;
use super::tx::{Cause, Tx};
use super::{Store, StoreError};
use crate::domain::attachment::Attachment;
use crate::domain::change::{ChangeAction, EntityKind, FieldChange};
use crate::domain::task::Task;
use crate::domain::team::TeamRole;
use crate::domain::{AttachmentId, TaskId, UserId};

/// The fields an attachment's `Created` entry records.
pub(super) fn attachment_creation_fields(attachment: &Attachment) -> Vec<FieldChange> {
    vec![
        FieldChange::set("task_id", &attachment.task_id),
        FieldChange::set("filename", &attachment.filename),
        FieldChange::set("content_type", &attachment.content_type),
        FieldChange::set("size", &attachment.size),
    ]
}

impl Tx<'_> {
    /// Deletes a task's attachments (the task is being deleted, alone or in a cascade; its
    /// own `Deleted` entry covers them). Blobs left without a reference are freed.
    pub(super) fn delete_attachments_of_task(&self, task: TaskId) -> Result<(), StoreError> {
        let t = task.as_u128();
        let mut gone = Vec::new();
        {
            let mut by_task = self.txn().open_table(ATTACHMENTS_BY_TASK)?;
            let mut rows = self.txn().open_table(ATTACHMENTS)?;
            for id in ids_after(&by_task, t, None, usize::MAX)? {
                gone.extend(read_row::<Attachment>(&rows, "attachments", id)?);
                rows.remove(id)?;
                by_task.remove((t, id))?;
            }
        }
        for attachment in &gone {
            self.release(attachment)?;
        }
        Ok(())
    }

    /// Adds to the uploader's total (import: no quota).
    pub(super) fn add_upload_bytes(&self, user: UserId, bytes: u64) -> Result<(), StoreError> {
        let mut totals = self.txn().open_table(UPLOAD_BYTES_BY_USER)?;
        let total = totals.get(user.as_u128())?.map_or(0, |v| v.value());
        totals.insert(user.as_u128(), total.saturating_add(bytes))?;
        Ok(())
    }

    /// Drops an attachment's blob reference and its uploader's total.
    fn release(&self, attachment: &Attachment) -> Result<(), StoreError> {
        self.drop_blob_ref(attachment.sha256)?;
        let mut totals = self.txn().open_table(UPLOAD_BYTES_BY_USER)?;
        let user = attachment.uploaded_by.as_u128();
        let total = totals.get(user)?.map_or(0, |v| v.value());
        match total.saturating_sub(attachment.size) {
            0 => totals.remove(user)?,
            left => totals.insert(user, left)?,
        };
        Ok(())
    }
}

/// An attachment's writes, called inside the caller's [`Store::write`] once it has decided, in
/// that same transaction, that the actor may make them (see `tx.rs`).
impl Tx<'_> {
    /// An attachment as this transaction sees it: what a permission check made inside the
    /// write reads.
    pub fn attachment(&self, id: AttachmentId) -> Result<Option<Attachment>, StoreError> {
        read_row(
            &self.txn().open_table(ATTACHMENTS)?,
            "attachments",
            id.as_u128(),
        )
    }

    /// Records uploaded files as attachments of a task (which must exist, outside an archived
    /// project): one row, index entry, blob reference and change-log entry each. With a
    /// `quota`, the uploader's total (these included) must stay within it.
    pub fn create_attachments(
        &self,
        attachments: &[Attachment],
        quota: Option<u64>,
    ) -> Result<Vec<Attachment>, StoreError> {
        let Some(first) = attachments.first() else {
            return Ok(vec![]);
        };
        let (task_id, uploader) = (first.task_id, first.uploaded_by);
        let task = self.task_to_write_on(task_id)?;
        let added: u64 = attachments.iter().map(|a| a.size).sum();
        {
            let mut totals = self.txn().open_table(UPLOAD_BYTES_BY_USER)?;
            let total = totals.get(uploader.as_u128())?.map_or(0, |v| v.value()) + added;
            if quota.is_some_and(|q| total > q) {
                return Err(StoreError::QuotaExceeded);
            }
            totals.insert(uploader.as_u128(), total)?;
        }
        let mut stored = Vec::with_capacity(attachments.len());
        for attachment in attachments {
            let mut attachment = attachment.clone();
            let id = self.next_id(ATTACHMENTS, attachment.id.as_u128())?;
            attachment.id = AttachmentId::from_u128(id);
            self.txn()
                .open_table(ATTACHMENTS)?
                .insert(id, encode(&attachment)?.as_slice())?;
            self.txn()
                .open_table(ATTACHMENTS_BY_TASK)?
                .insert((task_id.as_u128(), attachment.id.as_u128()), ())?;
            self.add_blob_ref(attachment.sha256)?;
            let (at, fields) = (
                attachment.created_at,
                attachment_creation_fields(&attachment),
            );
            let (entity, action) = (EntityKind::Attachment, ChangeAction::Created);
            let seq = self.append_about_task(
                &task,
                entity,
                attachment.id.as_uuid(),
                at,
                uploader,
                action,
                fields,
            )?;
            let cause = Cause {
                seq,
                actor: uploader,
                at,
            };
            self.notify_attachment(cause, &task, &attachment)?;
            stored.push(attachment);
        }
        self.add_to_task_counts(task_id, 0, stored.len() as i64)?;
        Ok(stored)
    }

    /// Deletes an attachment; its blob is freed when no other attachment points at it.
    pub fn delete_attachment(
        &self,
        id: AttachmentId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let attachment = {
            let mut rows = self.txn().open_table(ATTACHMENTS)?;
            let Some(attachment): Option<Attachment> =
                read_row(&rows, "attachments", id.as_u128())?
            else {
                return Err(StoreError::NotFound);
            };
            rows.remove(id.as_u128())?;
            attachment
        };
        self.txn()
            .open_table(ATTACHMENTS_BY_TASK)?
            .remove((attachment.task_id.as_u128(), id.as_u128()))?;
        let task = self.add_to_task_counts(attachment.task_id, 0, -1)?;
        self.require_active_project(task.project_id)?;
        self.release(&attachment)?;
        let fields = vec![FieldChange::removed("filename", &attachment.filename)];
        let (entity, action) = (EntityKind::Attachment, ChangeAction::Deleted);
        self.append_about_task(&task, entity, id.as_uuid(), now, actor, action, fields)?;
        Ok(())
    }
}

impl Store {
    /// An attachment, its task and `user`'s role in the task's team, in one snapshot.
    #[allow(clippy::type_complexity)]
    pub fn attachment_for(
        &self,
        id: AttachmentId,
        user: UserId,
    ) -> Result<Option<(Attachment, Task, Option<TeamRole>)>, StoreError> {
        let rx = self.read()?;
        let Some(attachment): Option<Attachment> = read_row(
            &rx.txn().open_table(ATTACHMENTS)?,
            "attachments",
            id.as_u128(),
        )?
        else {
            return Ok(None);
        };
        Ok(rx
            .task_and_role(attachment.task_id, user)?
            .map(|(task, role)| (attachment, task, role)))
    }

    /// Up to `limit` attachments of a task after `after`, oldest first.
    pub fn attachments_of_task(
        &self,
        task: TaskId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<Attachment>, StoreError> {
        let txn = self.db().begin_read()?;
        rows_after(
            &txn,
            ATTACHMENTS_BY_TASK,
            ATTACHMENTS,
            "attachments",
            task.as_u128(),
            after,
            limit,
        )
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
