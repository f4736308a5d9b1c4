//! Tasks and their five indexes, always written together (`TaskTables`, which notes every task
//! it writes on the [`Tx`] for the read cache), and the cascades that delete tasks with their
//! team or project and unassign a member who leaves.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, Table};

use super::codec::{encode, read_row};
use super::tables::*;
use super::task_changes::{about_task, task_change, task_created, task_diff};
use super::tx::{Cause, Rx, Tx};
use super::{Created, Idempotency, Store, StoreError};
use crate::domain::change::{ChangeAction, EntityKind, FieldChange};
use crate::domain::task::Task;
use crate::domain::team::TeamRole;
use crate::domain::{ProjectId, TaskId, TeamId, UserId, access};

/// The task table and its indexes, opened together so that no code path can update one
/// without the others.
pub(super) struct TaskTables<'a> {
    tx: &'a Tx<'a>,
    rows: Table<'a, u128, &'static [u8]>,
    by_assignee: Table<'a, (u128, u128), ()>,
    by_creator: Table<'a, (u128, u128), ()>,
    by_project: Table<'a, (u128, u128), ()>,
    by_team: Table<'a, (u128, u128), ()>,
    by_project_status: Table<'a, (u128, u8, u128), ()>,
}

impl<'a> TaskTables<'a> {
    pub(super) fn open(tx: &'a Tx<'a>) -> Result<Self, StoreError> {
        let txn = tx.txn();
        Ok(Self {
            tx,
            rows: txn.open_table(TASKS)?,
            by_assignee: txn.open_table(TASKS_BY_ASSIGNEE)?,
            by_creator: txn.open_table(TASKS_BY_CREATOR)?,
            by_project: txn.open_table(TASKS_BY_PROJECT)?,
            by_team: txn.open_table(TASKS_BY_TEAM)?,
            by_project_status: txn.open_table(TASKS_BY_PROJECT_STATUS)?,
        })
    }

    pub(super) fn get(&self, id: u128) -> Result<Option<Task>, StoreError> {
        read_row(&self.rows, "tasks", id)
    }

    pub(super) fn insert(&mut self, task: &Task) -> Result<(), StoreError> {
        self.tx.note_task_written(task.id.as_u128());
        let id = task.id.as_u128();
        self.rows.insert(id, encode(task)?.as_slice())?;
        for user in &task.assignee_ids {
            self.by_assignee.insert((user.as_u128(), id), ())?;
        }
        self.by_creator
            .insert((task.created_by.as_u128(), id), ())?;
        if let Some(project) = task.project_id {
            self.by_project.insert((project.as_u128(), id), ())?;
            self.by_project_status
                .insert((project.as_u128(), task.status as u8, id), ())?;
        }
        if let Some(team) = task.team_id {
            self.by_team.insert((team.as_u128(), id), ())?;
        }
        Ok(())
    }

    fn delete(&mut self, task: &Task) -> Result<(), StoreError> {
        self.tx.note_task_written(task.id.as_u128());
        let id = task.id.as_u128();
        self.rows.remove(id)?;
        for user in &task.assignee_ids {
            self.by_assignee.remove((user.as_u128(), id))?;
        }
        self.by_creator.remove((task.created_by.as_u128(), id))?;
        if let Some(project) = task.project_id {
            self.by_project.remove((project.as_u128(), id))?;
            self.by_project_status
                .remove((project.as_u128(), task.status as u8, id))?;
        }
        if let Some(team) = task.team_id {
            self.by_team.remove((team.as_u128(), id))?;
        }
        Ok(())
    }

    /// Rewrites a task's row when only its counts changed (no index moves).
    pub(super) fn put_counts(&mut self, task: &Task) -> Result<(), StoreError> {
        self.tx.note_task_written(task.id.as_u128());
        self.rows
            .insert(task.id.as_u128(), encode(task)?.as_slice())?;
        Ok(())
    }

    /// Replaces a task's row and re-indexes it.
    fn replace(&mut self, before: &Task, after: &Task) -> Result<(), StoreError> {
        self.delete(before)?;
        self.insert(after)
    }

    fn ids(table: &Table<'a, (u128, u128), ()>, prefix: u128) -> Result<Vec<u128>, StoreError> {
        let mut ids = Vec::new();
        for entry in table.range((prefix, 0)..=(prefix, u128::MAX))? {
            ids.push(entry?.0.value().1);
        }
        Ok(ids)
    }
}

/// Which index a cascade deletes the tasks of.
enum Listed {
    Project(ProjectId),
    Team(TeamId),
}

impl Tx<'_> {
    /// A task as this transaction sees it: what a permission check made inside the write
    /// reads.
    pub fn task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        read_row(&self.txn().open_table(TASKS)?, "tasks", id.as_u128())
    }

    /// Appends `about_task(..)`: a change to something on `task`, seen by whoever sees the
    /// task. Returns its `seq`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn append_about_task(
        &self,
        task: &Task,
        entity: EntityKind,
        id: uuid::Uuid,
        at: DateTime<Utc>,
        actor: UserId,
        action: ChangeAction,
        fields: Vec<FieldChange>,
    ) -> Result<u64, StoreError> {
        self.append(about_task(task, entity, id, at, actor, action, fields))
    }

    /// Refuses a team task whose assignees are not all members of its team, checked inside
    /// the write so a member removed meanwhile cannot be assigned.
    fn require_members(&self, task: &Task) -> Result<(), StoreError> {
        let Some(team) = task.team_id else {
            return Ok(());
        };
        for user in &task.assignee_ids {
            if !self.is_member(team, *user)? {
                return Err(StoreError::NotAMember);
            }
        }
        Ok(())
    }

    /// A task and `user`'s role in its team (if it has one and they are a member), as this
    /// transaction sees them: what a permission check made inside the write decides on.
    pub fn task_and_role(
        &self,
        id: TaskId,
        user: UserId,
    ) -> Result<Option<(Task, Option<TeamRole>)>, StoreError> {
        let Some(task) = self.task(id)? else {
            return Ok(None);
        };
        let role = match task.team_id {
            Some(team) => self.membership(team, user)?.map(|m| m.role),
            None => None,
        };
        Ok(Some((task, role)))
    }

    /// Reads the task a write about a comment or attachment is about; it must exist and not
    /// be in an archived project. (Who may write was decided by the caller, in this
    /// transaction.)
    pub(super) fn task_to_write_on(&self, task: TaskId) -> Result<Task, StoreError> {
        let found = self.task(task)?.ok_or(StoreError::NotFound)?;
        self.require_active_project(found.project_id)?;
        Ok(found)
    }

    /// Adds `comments` and `attachments` (either may be negative) to a task's counts; the task
    /// must exist. Its `version` stays: a comment is no edit.
    pub(super) fn add_to_task_counts(
        &self,
        task: TaskId,
        comments: i64,
        attachments: i64,
    ) -> Result<Task, StoreError> {
        let mut tables = TaskTables::open(self)?;
        let Some(mut row) = tables.get(task.as_u128())? else {
            return Err(StoreError::NotFound);
        };
        row.comment_count = row.comment_count.saturating_add_signed(comments);
        row.attachment_count = row.attachment_count.saturating_add_signed(attachments);
        tables.put_counts(&row)?;
        Ok(row)
    }

    /// Deletes every task of a team's projects (the team's deletion).
    pub(super) fn delete_tasks_of_team(
        &self,
        team: TeamId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.delete_tasks_listed(Listed::Team(team), actor, now)
    }

    /// Deletes every task of a project (its deletion).
    pub(super) fn delete_tasks_of_project(
        &self,
        project: ProjectId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.delete_tasks_listed(Listed::Project(project), actor, now)
    }

    /// Deletes every task in a project's or a team's index with its comments and attachments,
    /// with a change-log entry (and notifications) for each.
    fn delete_tasks_listed(
        &self,
        index: Listed,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut deleted = Vec::new();
        {
            let mut tables = TaskTables::open(self)?;
            let ids = match index {
                Listed::Project(p) => TaskTables::ids(&tables.by_project, p.as_u128())?,
                Listed::Team(t) => TaskTables::ids(&tables.by_team, t.as_u128())?,
            };
            for id in ids {
                if let Some(task) = tables.get(id)? {
                    tables.delete(&task)?;
                    deleted.push(task);
                }
            }
        }
        for task in &deleted {
            self.delete_comments_of_task(task.id)?;
            self.delete_attachments_of_task(task.id)?;
        }
        for task in &deleted {
            let seq = self.append(task_change(task, now, actor, ChangeAction::Deleted, vec![]))?;
            self.notify_task_deleted(
                Cause {
                    seq,
                    actor,
                    at: now,
                },
                task,
            )?;
        }
        Ok(())
    }

    /// Unassigns `user` from every task of `team` (they left or were removed), with a
    /// change-log entry per task.
    pub(super) fn unassign_from_team(
        &self,
        team: TeamId,
        user: UserId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut changed = Vec::new();
        {
            let mut tables = TaskTables::open(self)?;
            for id in TaskTables::ids(&tables.by_assignee, user.as_u128())? {
                let Some(task) = tables.get(id)?.filter(|t| t.team_id == Some(team)) else {
                    continue;
                };
                let mut after = task.clone();
                after.assignee_ids.retain(|a| *a != user);
                after.version += 1;
                after.updated_at = now;
                tables.replace(&task, &after)?;
                changed.push((task, after));
            }
        }
        for (before, after) in changed {
            let diff = task_diff(&before, &after);
            self.append(task_change(&after, now, actor, ChangeAction::Updated, diff))?;
        }
        Ok(())
    }
}

impl Rx {
    /// A task and `user`'s role in its team (if it has one and they are a member).
    pub(super) fn task_and_role(
        &self,
        id: TaskId,
        user: UserId,
    ) -> Result<Option<(Task, Option<TeamRole>)>, StoreError> {
        let found: Option<Task> = read_row(&self.txn().open_table(TASKS)?, "tasks", id.as_u128())?;
        let Some(task) = found else {
            return Ok(None);
        };
        let role = match task.team_id {
            Some(team) => self.membership(team, user)?.map(|m| m.role),
            None => None,
        };
        Ok(Some((task, role)))
    }
}

/// A task's writes, called inside the caller's [`Store::write`] once it has decided, in that
/// same transaction, that the actor may make them (see `tx.rs`).
impl Tx<'_> {
    /// Stores a new task (or replays an earlier create with the same idempotency key); its
    /// project (if any) must exist and be active, and its assignees be members of its team.
    pub fn create_task(
        &self,
        task: &Task,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created<Task>, StoreError> {
        if let Some(first) = self.replayed::<Task>(idempotency, task.created_at)? {
            // Committed empty, so the answer waits for the flush that covers the first write.
            return Ok(Created::Replayed(first));
        }
        self.require_active_project(task.project_id)?;
        self.require_members(task)?;
        let mut task = task.clone();
        task.id = TaskId::from_u128(self.next_id(TASKS, task.id.as_u128())?);
        TaskTables::open(self)?.insert(&task)?;
        let seq = self.append(task_created(&task))?;
        let cause = Cause {
            seq,
            actor: task.created_by,
            at: task.created_at,
        };
        self.notify_task_created(cause, &task)?;
        self.remember(idempotency, task.created_at, &task)?;
        Ok(Created::New(task))
    }

    /// Applies `change` to a task. `change` sees the current row and may refuse. A task in
    /// (or moved into) an archived project cannot change.
    pub fn update_task(
        &self,
        id: TaskId,
        actor: UserId,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut Task) -> Result<(), StoreError>,
    ) -> Result<Task, StoreError> {
        let (before, after) = {
            let mut tables = TaskTables::open(self)?;
            let Some(before) = tables.get(id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            let mut after = before.clone();
            change(&mut after)?;
            if task_diff(&before, &after).is_empty() {
                return Ok(before);
            }
            after.version += 1;
            after.updated_at = now;
            tables.replace(&before, &after)?;
            (before, after)
        };
        self.require_active_project(before.project_id)?;
        self.require_active_project(after.project_id)?;
        self.require_members(&after)?;
        let diff = task_diff(&before, &after);
        let changed: Vec<String> = diff.iter().map(|f| f.field.clone()).collect();
        let mut entry = task_change(&after, now, actor, ChangeAction::Updated, diff);
        if before.team_id != after.team_id {
            entry.previous_team_id = before.team_id;
        }
        if before.project_id != after.project_id {
            entry.previous_project_id = before.project_id;
        }
        // Someone taken off a personal task sees the change that took them off.
        entry.audience = access::change_audience(Some(&before), &after);
        let seq = self.append(entry)?;
        let changed: Vec<&str> = changed.iter().map(String::as_str).collect();
        let cause = Cause {
            seq,
            actor,
            at: now,
        };
        self.notify_task_updated(cause, &before, &after, &changed)?;
        Ok(after)
    }

    /// Deletes a task with its comments and attachments.
    pub fn delete_task(
        &self,
        id: TaskId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(task) = self.task(id)? else {
            return Err(StoreError::NotFound);
        };
        self.require_active_project(task.project_id)?;
        TaskTables::open(self)?.delete(&task)?;
        self.delete_comments_of_task(task.id)?;
        self.delete_attachments_of_task(task.id)?;
        let seq = self.append(task_change(
            &task,
            now,
            actor,
            ChangeAction::Deleted,
            vec![],
        ))?;
        let cause = Cause {
            seq,
            actor,
            at: now,
        };
        self.notify_task_deleted(cause, &task)
    }
}

impl Store {
    /// How many tasks exist: the table's length, which redb keeps (no scan).
    pub fn task_count(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        let txn = self.db().begin_read()?;
        Ok(txn.open_table(TASKS)?.len()?)
    }

    /// Inserts many new tasks in one transaction, with their indexes and change-log entries
    /// (bulk import and benchmark seeding). Projects are not checked: the caller vouches.
    pub fn import_tasks(&self, tasks: &[Task]) -> Result<(), StoreError> {
        self.write(|tx| {
            {
                let mut tables = TaskTables::open(tx)?;
                for task in tasks {
                    tables.insert(task)?;
                }
            }
            for task in tasks {
                tx.append(task_created(task))?;
            }
            Ok(())
        })
    }

    /// A task and `user`'s role in its team (if it has one and they are a member), in one
    /// snapshot: everything needed to decide what `user` may do with it.
    pub fn task_for(
        &self,
        id: TaskId,
        user: UserId,
    ) -> Result<Option<(Task, Option<crate::domain::team::TeamRole>)>, StoreError> {
        self.read()?.task_and_role(id, user)
    }

    /// [`Store::task_for`], answered from memory when it can; otherwise read on the blocking
    /// pool, and remembered unless a commit overtook the read.
    pub async fn read_task_for(
        &self,
        id: TaskId,
        user: UserId,
    ) -> Result<Option<(Task, Option<crate::domain::team::TeamRole>)>, StoreError> {
        if let Some(hit) = self.reads.task_for(id, user) {
            return Ok(Some(hit));
        }
        self.run(move |s| {
            let ticket = s.reads.ticket();
            let found = s.task_for(id, user)?;
            if let Some((task, role)) = &found {
                s.reads.fill(ticket, task, user, *role);
            }
            Ok(found)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::{TaskStatus, TaskTitle};

    fn task(creator: UserId, assignee: UserId, done: bool) -> Task {
        Task {
            status: if done {
                TaskStatus::Done
            } else {
                TaskStatus::Todo
            },
            assignee_ids: vec![assignee],
            ..Task::sample(creator)
        }
    }

    #[test]
    fn ids_grow_with_commit_order_and_are_never_given_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let me = UserId::new();
        let (early, late) = (task(me, me, false), task(me, me, false));
        let created = |t: &Task| match store.write(|tx| tx.create_task(t, None)).unwrap() {
            Created::New(t) | Created::Replayed(t) => t,
        };
        // `late` commits first; `early` (an older id) must still sort after it.
        let first = created(&late);
        let second = created(&early);
        assert!(second.id.as_u128() > first.id.as_u128());
        // The newest row goes; a third task must not take its id again.
        store
            .write(|tx| tx.delete_task(second.id, me, Utc::now()))
            .unwrap();
        let third = created(&task(me, me, false));
        assert!(third.id.as_u128() > second.id.as_u128());
        let replay = created(&early);
        assert!(replay.id.as_u128() > third.id.as_u128());
    }

    /// Renames a task if `actor` may edit it, deciding on what the write's transaction reads
    /// (as the service does); `None` when refused.
    fn rename_if_allowed(
        store: &Store,
        id: TaskId,
        actor: UserId,
        title: &str,
    ) -> Result<Option<Task>, StoreError> {
        store.write(|tx| {
            let (task, role) = tx.task_and_role(id, actor)?.ok_or(StoreError::NotFound)?;
            if !access::may_edit_task(actor, &task, role) {
                return Ok(None);
            }
            let title = TaskTitle::parse(title).unwrap();
            tx.update_task(id, actor, Utc::now(), |t| {
                t.title = title;
                Ok(())
            })
            .map(Some)
        })
    }

    #[test]
    fn a_check_inside_the_write_sees_a_role_changed_after_an_earlier_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (creator, admin, team) = (UserId::new(), UserId::new(), TeamId::new());
        let set_role = |role| {
            let membership = crate::domain::team::Membership {
                team_id: team,
                user_id: admin,
                role,
                joined_at: Utc::now(),
            };
            store.write(|tx| tx.insert_membership(&membership)).unwrap();
        };
        set_role(TeamRole::Admin);
        let mut t = task(creator, creator, false);
        (t.team_id, t.assignee_ids) = (Some(team), vec![]);
        store.import_tasks(std::slice::from_ref(&t)).unwrap();
        let renamed = rename_if_allowed(&store, t.id, admin, "by an admin")
            .unwrap()
            .expect("allowed");
        assert_eq!(renamed.version, 2, "an admin edits a team task");

        // What a check made before the write would have read: still an admin.
        let (_, earlier) = store.task_for(t.id, admin).unwrap().unwrap();
        assert_eq!(earlier, Some(TeamRole::Admin));
        set_role(TeamRole::Member);
        let seq = store.last_seq().unwrap();

        let refused = rename_if_allowed(&store, t.id, admin, "by a member");
        assert!(matches!(refused, Ok(None)), "{refused:?}");
        let (now, _) = store.task_for(t.id, admin).unwrap().unwrap();
        assert_eq!((now.title.as_str(), now.version), ("by an admin", 2));
        assert_eq!(store.last_seq().unwrap(), seq, "nothing appended");
    }
}
