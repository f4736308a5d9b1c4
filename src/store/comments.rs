//! Comments: rows and the per-task index (`COMMENTS_BY_TASK`); each change updates the task's
//! comment count and appends its change-log entry in the same transaction.

use chrono::{DateTime, Utc};
use redb::ReadableDatabase;

use super::codec::{encode, ids_after, read_row, rows_after};
use super::tables::*;
use super::tx::{Cause, Tx};
use super::{Created, Idempotency, Store, StoreError};
use crate::domain::change::{ChangeAction, EntityKind, FieldChange};
use crate::domain::comment::Comment;
use crate::domain::task::Task;
use crate::domain::team::TeamRole;
use crate::domain::{CommentId, TaskId, UserId};

/// The fields a comment's `Created` entry records.
pub(super) fn comment_creation_fields(comment: &Comment) -> Vec<FieldChange> {
    vec![
        FieldChange::set("task_id", &comment.task_id),
        FieldChange::set("body", &comment.body),
    ]
}

impl Tx<'_> {
    /// Deletes a task's comments (the task is being deleted, alone or in a cascade; its own
    /// `Deleted` entry covers them).
    pub(super) fn delete_comments_of_task(&self, task: TaskId) -> Result<(), StoreError> {
        let t = task.as_u128();
        let mut by_task = self.txn().open_table(COMMENTS_BY_TASK)?;
        let mut rows = self.txn().open_table(COMMENTS)?;
        for id in ids_after(&by_task, t, None, usize::MAX)? {
            rows.remove(id)?;
            by_task.remove((t, id))?;
        }
        Ok(())
    }
}

/// A comment's writes, called inside the caller's [`Store::write`] once it has decided, in
/// that same transaction, that the actor may make them (see `tx.rs`).
impl Tx<'_> {
    /// A comment as this transaction sees it: what a permission check made inside the write
    /// reads.
    pub fn comment(&self, id: CommentId) -> Result<Option<Comment>, StoreError> {
        read_row(&self.txn().open_table(COMMENTS)?, "comments", id.as_u128())
    }

    /// Adds a comment to a task (which must exist, outside an archived project), or replays
    /// an earlier create with the same idempotency key.
    pub fn create_comment(
        &self,
        comment: &Comment,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created<Comment>, StoreError> {
        if let Some(first) =
            self.replayed(idempotency, comment.created_at, |tx, first: &Comment| {
                Ok(tx.comment(first.id)?.is_some())
            })?
        {
            return Ok(Created::Replayed(first));
        }
        let task = self.task_to_write_on(comment.task_id)?;
        let mut comment = comment.clone();
        comment.id = CommentId::from_u128(self.next_id(COMMENTS, comment.id.as_u128())?);
        self.txn()
            .open_table(COMMENTS)?
            .insert(comment.id.as_u128(), encode(&comment)?.as_slice())?;
        self.txn()
            .open_table(COMMENTS_BY_TASK)?
            .insert((task.id.as_u128(), comment.id.as_u128()), ())?;
        self.add_to_task_counts(task.id, 1, 0)?;
        let (at, actor) = (comment.created_at, comment.author_id);
        let fields = comment_creation_fields(&comment);
        let (entity, action) = (EntityKind::Comment, ChangeAction::Created);
        let seq = self.append_about_task(
            &task,
            entity,
            comment.id.as_uuid(),
            at,
            actor,
            action,
            fields,
        )?;
        self.notify_comment(Cause { seq, actor, at }, &task, &comment)?;
        self.remember(idempotency, comment.created_at, &comment)?;
        Ok(Created::New(comment))
    }

    /// Replaces a comment's body (unchanged: nothing is written).
    pub fn update_comment(
        &self,
        id: CommentId,
        body: String,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<Comment, StoreError> {
        let mut rows = self.txn().open_table(COMMENTS)?;
        let Some(mut comment): Option<Comment> = read_row(&rows, "comments", id.as_u128())? else {
            return Err(StoreError::NotFound);
        };
        if comment.body == body {
            return Ok(comment);
        }
        let task = self.task_to_write_on(comment.task_id)?;
        let fields = FieldChange::of("body", &comment.body, &body)
            .into_iter()
            .collect();
        comment.body = body;
        comment.version += 1;
        comment.updated_at = now;
        comment.edited_at = Some(now);
        rows.insert(id.as_u128(), encode(&comment)?.as_slice())?;
        drop(rows);
        let (entity, action) = (EntityKind::Comment, ChangeAction::Updated);
        self.append_about_task(&task, entity, id.as_uuid(), now, actor, action, fields)?;
        Ok(comment)
    }

    /// Deletes a comment.
    pub fn delete_comment(
        &self,
        id: CommentId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let comment = {
            let mut rows = self.txn().open_table(COMMENTS)?;
            let Some(comment): Option<Comment> = read_row(&rows, "comments", id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            rows.remove(id.as_u128())?;
            comment
        };
        self.txn()
            .open_table(COMMENTS_BY_TASK)?
            .remove((comment.task_id.as_u128(), id.as_u128()))?;
        let task = self.add_to_task_counts(comment.task_id, -1, 0)?;
        self.require_active_project(task.project_id)?;
        let fields = vec![FieldChange::removed("body", &comment.body)];
        let (entity, action) = (EntityKind::Comment, ChangeAction::Deleted);
        self.append_about_task(&task, entity, id.as_uuid(), now, actor, action, fields)?;
        Ok(())
    }
}

impl Store {
    /// A comment, its task and `user`'s role in the task's team, in one snapshot.
    #[allow(clippy::type_complexity)]
    pub fn comment_for(
        &self,
        id: CommentId,
        user: UserId,
    ) -> Result<Option<(Comment, Task, Option<TeamRole>)>, StoreError> {
        let rx = self.read()?;
        let Some(comment): Option<Comment> =
            read_row(&rx.txn().open_table(COMMENTS)?, "comments", id.as_u128())?
        else {
            return Ok(None);
        };
        Ok(rx
            .task_and_role(comment.task_id, user)?
            .map(|(task, role)| (comment, task, role)))
    }

    /// Up to `limit` comments of a task after `after`, oldest first.
    pub fn comments_of_task(
        &self,
        task: TaskId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<Comment>, StoreError> {
        let txn = self.db().begin_read()?;
        rows_after(
            &txn,
            COMMENTS_BY_TASK,
            COMMENTS,
            "comments",
            task.as_u128(),
            after,
            limit,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access;
    use crate::domain::task::{Priority, TaskStatus, TaskTitle};
    use crate::domain::team::Membership;
    use crate::domain::{TeamId, team::TeamRole};

    #[test]
    fn a_check_inside_the_write_sees_a_removal_committed_after_an_earlier_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (creator, admin, team, now) = (UserId::new(), UserId::new(), TeamId::new(), Utc::now());
        let membership = Membership {
            team_id: team,
            user_id: admin,
            role: TeamRole::Admin,
            joined_at: now,
        };
        store.write(|tx| tx.insert_membership(&membership)).unwrap();
        let task = Task {
            id: TaskId::new(),
            title: TaskTitle::parse("t").unwrap(),
            description: String::new(),
            status: TaskStatus::Todo,
            priority: Priority::Medium,
            due_date: None,
            labels: vec![],
            project_id: None,
            team_id: Some(team),
            assignee_ids: vec![],
            created_by: creator,
            created_at: now,
            updated_at: now,
            version: 1,
            comment_count: 0,
            attachment_count: 0,
            rank: Default::default(),
        };
        store.import_tasks(std::slice::from_ref(&task)).unwrap();
        let comment = |body: &str| Comment {
            id: CommentId::new(),
            task_id: task.id,
            author_id: creator,
            body: body.into(),
            created_at: now,
            updated_at: now,
            edited_at: None,
            version: 1,
        };
        let mut ids = vec![];
        for body in ["first", "second"] {
            match store
                .write(|tx| tx.create_comment(&comment(body), None))
                .unwrap()
            {
                Created::New(c) | Created::Replayed(c) => ids.push(c.id),
            }
        }
        // Deletes a comment if the admin may, deciding on what the write's transaction reads
        // (as the service does); `Ok(false)` when refused.
        let delete_as_admin = |id: CommentId| {
            store.write(|tx| {
                let found = tx.comment(id)?.ok_or(StoreError::NotFound)?;
                let (task, role) = tx.task_and_role(found.task_id, admin)?.unwrap();
                if !access::may_delete_comment(admin, &found, &task, role) {
                    return Ok(false);
                }
                tx.delete_comment(id, admin, Utc::now())?;
                Ok::<_, StoreError>(true)
            })
        };
        assert!(
            delete_as_admin(ids[0]).unwrap(),
            "an admin deletes a comment"
        );

        let (_, earlier) = store.task_for(task.id, admin).unwrap().unwrap();
        assert_eq!(earlier, Some(TeamRole::Admin), "what an earlier check read");
        store
            .write(|tx| tx.delete_memberships_of_team(team, admin, Utc::now()))
            .unwrap();

        assert!(!delete_as_admin(ids[1]).unwrap(), "refused once removed");
        let left = store.comments_of_task(task.id, None, 10).unwrap();
        assert_eq!(left.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[1]]);
        let (task, _) = store.task_for(task.id, creator).unwrap().unwrap();
        assert_eq!(task.comment_count, 1);
    }
}
