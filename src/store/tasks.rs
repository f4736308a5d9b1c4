//! Tasks and their indexes, always written together (`TaskTables`, which notes every task it
//! writes on the [`Tx`] for the read cache), board order (`rank` within a column, see
//! `domain::rank`), and the cascades that delete tasks with their team or project and unassign
//! a member who leaves.
//!
//! A task's index entries are a function of its row ([`IndexKeys::of`]); a rewrite removes
//! only the entries that changed and inserts only the new ones. What one edit costs: the row,
//! plus for an edit of `updated_at` alone (every edit) one removal and one insertion in
//! `TASKS_SORTED` per list the task is on (each assignee, its creator, its project: usually
//! 2 to 4; a team's lists are its projects', see `task_lists.rs`), and a move between columns two more in `TASKS_BY_RANK` (and
//! `TASKS_BY_PROJECT_STATUS`).

use std::collections::BTreeSet;
use std::ops::Bound;

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, Table};

use super::codec::{encode, read_row};
use super::tables::*;
use super::task_changes::{about_task, task_change, task_created, task_diff};
use super::tx::{Cause, Rx, Tx};
use super::{Created, Idempotency, Store, StoreError};
use crate::domain::change::{ChangeAction, EntityKind, FieldChange};
use crate::domain::rank::{Rank, between};
use crate::domain::task::{Column, Task, TaskSort, TaskStatus};
use crate::domain::team::TeamRole;
use crate::domain::{ProjectId, TaskId, TeamId, UserId, access};

/// A `TASKS_BY_RANK` key, owned.
pub(super) type RankKey = (u8, u128, u8, String, u128);
/// A `TASKS_SORTED` key.
pub(super) type SortedKey = (u8, u128, u8, u64, u128);

/// Every index entry of one task row.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct IndexKeys {
    pub assignee: BTreeSet<(u128, u128)>,
    pub creator: BTreeSet<(u128, u128)>,
    pub project: BTreeSet<(u128, u128)>,
    pub project_status: BTreeSet<(u128, u8, u128)>,
    pub rank: BTreeSet<RankKey>,
    pub sorted: BTreeSet<SortedKey>,
}

impl IndexKeys {
    pub(super) fn of(task: &Task) -> Self {
        let id = task.id.as_u128();
        let mut keys = Self::default();
        // The lists a task is on, as (source kind, source id): the `TaskIndex` variants but
        // the team, whose lists are its projects' (kind 3 was the team, until migration 16).
        let mut sources = Vec::new();
        for user in &task.assignee_ids {
            keys.assignee.insert((user.as_u128(), id));
            sources.push((0, user.as_u128()));
        }
        keys.creator.insert((task.created_by.as_u128(), id));
        sources.push((1, task.created_by.as_u128()));
        if let Some(project) = task.project_id {
            keys.project.insert((project.as_u128(), id));
            keys.project_status
                .insert((project.as_u128(), task.status as u8, id));
            sources.push((2, project.as_u128()));
        }
        if !task.rank.is_unplaced() {
            let (kind, board, status) = task.column().key();
            keys.rank
                .insert((kind, board, status, task.rank.as_str().to_string(), id));
        }
        for (kind, source) in sources {
            for sort in TaskSort::INDEXED {
                keys.sorted
                    .insert((kind, source, sort.tag(), task.sort_key(sort), id));
            }
        }
        keys
    }
}

/// Removes the keys only `before` has and inserts those only `after` has.
fn sync<K, Q>(
    table: &mut Table<'_, K, ()>,
    before: &BTreeSet<Q>,
    after: &BTreeSet<Q>,
    borrow: impl for<'q> Fn(&'q Q) -> K::SelfType<'q>,
) -> Result<(), StoreError>
where
    K: redb::Key + 'static,
    Q: Ord,
{
    for gone in before.difference(after) {
        table.remove(borrow(gone))?;
    }
    for new in after.difference(before) {
        table.insert(borrow(new), ())?;
    }
    Ok(())
}

/// Where a task goes in its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Top,
    Bottom,
    /// Right after the first (`after`) and before the second (`before`); at least one given.
    Between {
        after: Option<TaskId>,
        before: Option<TaskId>,
    },
}

/// Why a place names no spot in the target column: the field to blame and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misplaced {
    pub field: &'static str,
    pub message: String,
}

impl Misplaced {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The task table and its indexes, opened together so that no code path can update one
/// without the others.
pub(super) struct TaskTables<'a> {
    tx: &'a Tx<'a>,
    rows: Table<'a, u128, &'static [u8]>,
    by_assignee: Table<'a, (u128, u128), ()>,
    by_creator: Table<'a, (u128, u128), ()>,
    by_project: Table<'a, (u128, u128), ()>,
    by_project_status: Table<'a, (u128, u8, u128), ()>,
    by_rank: Table<'a, (u8, u128, u8, &'static str, u128), ()>,
    sorted: Table<'a, (u8, u128, u8, u64, u128), ()>,
}

/// The `TASKS_BY_RANK` range of one column.
fn column_range(column: Column) -> (Bound<RankKey>, Bound<RankKey>) {
    let (kind, board, status) = column.key();
    (
        Bound::Included((kind, board, status, String::new(), 0)),
        Bound::Excluded((kind, board, status + 1, String::new(), 0)),
    )
}

/// One `TASKS_BY_RANK` entry as a range yields it.
type RankEntry<'g> = Result<
    (
        redb::AccessGuard<'g, (u8, u128, u8, &'static str, u128)>,
        redb::AccessGuard<'g, ()>,
    ),
    redb::StorageError,
>;

/// Reads the rank and task id of index entries.
fn entry(e: RankEntry<'_>) -> Result<(Rank, u128), StoreError> {
    let (key, _) = e?;
    let (_, _, _, rank, id) = key.value();
    Ok((Rank::parse(rank).map_err(StoreError::Corrupt)?, id))
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
            by_project_status: txn.open_table(TASKS_BY_PROJECT_STATUS)?,
            by_rank: txn.open_table(TASKS_BY_RANK)?,
            sorted: txn.open_table(TASKS_SORTED)?,
        })
    }

    pub(super) fn get(&self, id: u128) -> Result<Option<Task>, StoreError> {
        read_row(&self.rows, "tasks", id)
    }

    /// The first (`top`) or last rank in a column, leaving out `except`.
    fn end_of(
        &self,
        column: Column,
        top: bool,
        except: Option<u128>,
    ) -> Result<Option<Rank>, StoreError> {
        let range = column_range(column);
        let range = (borrow_bound(&range.0), borrow_bound(&range.1));
        let mut entries = self.by_rank.range(range)?;
        loop {
            let next = if top {
                entries.next()
            } else {
                entries.next_back()
            };
            match next {
                None => return Ok(None),
                Some(e) => {
                    let (rank, id) = entry(e)?;
                    if Some(id) != except {
                        return Ok(Some(rank));
                    }
                }
            }
        }
    }

    /// The nearest rank strictly above (`up`) or below `rank` in a column, leaving out
    /// `except`.
    fn next_to(
        &self,
        column: Column,
        rank: &Rank,
        up: bool,
        except: u128,
    ) -> Result<Option<Rank>, StoreError> {
        let (kind, board, status) = column.key();
        let (start, end) = column_range(column);
        let edge = if up {
            Bound::Excluded((kind, board, status, rank.as_str().to_string(), 0))
        } else {
            Bound::Excluded((kind, board, status, rank.as_str().to_string(), u128::MAX))
        };
        let (start, end) = if up { (start, edge) } else { (edge, end) };
        let mut entries = self
            .by_rank
            .range((borrow_bound(&start), borrow_bound(&end)))?;
        loop {
            let next = if up {
                entries.next_back()
            } else {
                entries.next()
            };
            match next {
                None => return Ok(None),
                Some(e) => {
                    let (found, id) = entry(e)?;
                    if id != except && found != *rank {
                        return Ok(Some(found));
                    }
                }
            }
        }
    }

    /// The rank `place` names in `column` for the task `moving` (which may be in that column
    /// already: it is no neighbour of itself).
    pub(super) fn rank_at(
        &self,
        column: Column,
        place: Place,
        moving: u128,
    ) -> Result<Result<Rank, Misplaced>, StoreError> {
        let (after, before) = match place {
            Place::Top => {
                return Ok(Ok(between(
                    None,
                    self.end_of(column, true, Some(moving))?.as_ref(),
                )));
            }
            Place::Bottom => {
                return Ok(Ok(between(
                    self.end_of(column, false, Some(moving))?.as_ref(),
                    None,
                )));
            }
            Place::Between { after, before } => (after, before),
        };
        let neighbour = |id: Option<TaskId>,
                         field: &'static str|
         -> Result<Result<Option<Rank>, Misplaced>, StoreError> {
            let Some(id) = id else { return Ok(Ok(None)) };
            if id.as_u128() == moving {
                return Ok(Err(Misplaced::new(
                    field,
                    "a task cannot be placed next to itself",
                )));
            }
            match self.get(id.as_u128())? {
                Some(task) if task.column() == column && !task.rank.is_unplaced() => {
                    Ok(Ok(Some(task.rank)))
                }
                _ => Ok(Err(Misplaced::new(
                    field,
                    "must be a task in the column the task moves to (same project and status)",
                ))),
            }
        };
        let low = match neighbour(after, "after_id")? {
            Ok(rank) => rank,
            Err(why) => return Ok(Err(why)),
        };
        let high = match neighbour(before, "before_id")? {
            Ok(rank) => rank,
            Err(why) => return Ok(Err(why)),
        };
        let rank = match (low, high) {
            (Some(low), Some(high)) if low < high => between(Some(&low), Some(&high)),
            (Some(_), Some(_)) => {
                return Ok(Err(Misplaced::new(
                    "before_id",
                    "must come after after_id in the column",
                )));
            }
            (Some(low), None) => {
                let high = self.next_to(column, &low, false, moving)?;
                between(Some(&low), high.as_ref())
            }
            (None, Some(high)) => {
                let low = self.next_to(column, &high, true, moving)?;
                between(low.as_ref(), Some(&high))
            }
            (None, None) => between(None, self.end_of(column, true, Some(moving))?.as_ref()),
        };
        Ok(Ok(rank))
    }

    /// Writes a new task with its index entries; an unplaced task gets the bottom of its
    /// column first.
    pub(super) fn insert(&mut self, task: &mut Task) -> Result<(), StoreError> {
        if task.rank.is_unplaced() {
            task.rank = self
                .rank_at(task.column(), Place::Bottom, task.id.as_u128())?
                .expect("the bottom is always a place");
        }
        self.write(None, task)
    }

    /// Writes `after` over `before` (`None`: a new row), changing only the index entries
    /// that differ.
    fn write(&mut self, before: Option<&Task>, after: &Task) -> Result<(), StoreError> {
        self.tx.note_task_written(after.id.as_u128());
        self.rows
            .insert(after.id.as_u128(), encode(after)?.as_slice())?;
        let old = before.map(IndexKeys::of).unwrap_or_default();
        self.tx.sync_task_reminders(before, Some(after))?;
        self.sync(&old, &IndexKeys::of(after))
    }

    fn sync(&mut self, old: &IndexKeys, new: &IndexKeys) -> Result<(), StoreError> {
        sync(&mut self.by_assignee, &old.assignee, &new.assignee, |k| *k)?;
        sync(&mut self.by_creator, &old.creator, &new.creator, |k| *k)?;
        sync(&mut self.by_project, &old.project, &new.project, |k| *k)?;
        sync(
            &mut self.by_project_status,
            &old.project_status,
            &new.project_status,
            |k| *k,
        )?;
        sync(&mut self.by_rank, &old.rank, &new.rank, |k| {
            (k.0, k.1, k.2, k.3.as_str(), k.4)
        })?;
        sync(&mut self.sorted, &old.sorted, &new.sorted, |k| *k)
    }

    fn delete(&mut self, task: &Task) -> Result<(), StoreError> {
        self.tx.note_task_written(task.id.as_u128());
        self.rows.remove(task.id.as_u128())?;
        self.tx.sync_task_reminders(Some(task), None)?;
        self.sync(&IndexKeys::of(task), &IndexKeys::default())
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
        self.write(Some(before), after)
    }

    fn ids(
        table: &impl ReadableTable<(u128, u128), ()>,
        prefix: u128,
    ) -> Result<Vec<u128>, StoreError> {
        let mut ids = Vec::new();
        for entry in table.range((prefix, 0)..=(prefix, u128::MAX))? {
            ids.push(entry?.0.value().1);
        }
        Ok(ids)
    }
}

/// A bound over an owned rank key as the borrowed key type a range takes.
fn borrow_bound(bound: &Bound<RankKey>) -> Bound<(u8, u128, u8, &str, u128)> {
    match bound {
        Bound::Included(k) => Bound::Included((k.0, k.1, k.2, k.3.as_str(), k.4)),
        Bound::Excluded(k) => Bound::Excluded((k.0, k.1, k.2, k.3.as_str(), k.4)),
        Bound::Unbounded => Bound::Unbounded,
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
                // A team's tasks are its projects' (which are still there: the team's
                // deletion removes them after their tasks); in id order, as one list.
                Listed::Team(t) => {
                    let projects =
                        TaskTables::ids(&self.txn().open_table(PROJECTS_BY_TEAM)?, t.as_u128())?;
                    let mut ids = Vec::new();
                    for project in projects {
                        ids.extend(TaskTables::ids(&tables.by_project, project)?);
                    }
                    ids.sort_unstable();
                    ids
                }
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
        if let Some(first) = self.replayed(idempotency, task.created_at, |tx, first: &Task| {
            Ok(tx.task(first.id)?.is_some())
        })? {
            // Committed empty, so the answer waits for the flush that covers the first write.
            return Ok(Created::Replayed(first));
        }
        self.require_active_project(task.project_id)?;
        self.require_members(task)?;
        let mut task = task.clone();
        task.id = TaskId::from_u128(self.next_id(TASKS, task.id.as_u128())?);
        TaskTables::open(self)?.insert(&mut task)?;
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
    /// (or moved into) an archived project cannot change. A task the change takes to another
    /// column (status or project) goes to the bottom of it.
    pub fn update_task(
        &self,
        id: TaskId,
        actor: UserId,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut Task) -> Result<(), StoreError>,
    ) -> Result<Task, StoreError> {
        self.rewrite_task(id, actor, now, |tables, task| {
            let column = task.column();
            change(task)?;
            if task.column() != column {
                task.rank = tables
                    .rank_at(task.column(), Place::Bottom, task.id.as_u128())?
                    .expect("the bottom is always a place");
            }
            Ok(())
        })
    }

    /// The rank `place` names for task `id` in its project's (or personal) column `status`;
    /// `Err(Misplaced)` when a neighbour is not in that column. A read: [`Tx::move_task`]
    /// writes it.
    pub fn rank_for_move(
        &self,
        task: &Task,
        status: TaskStatus,
        place: Place,
    ) -> Result<Result<Rank, Misplaced>, StoreError> {
        let column = Column {
            status,
            ..task.column()
        };
        TaskTables::open(self)?.rank_at(column, place, task.id.as_u128())
    }

    /// Moves a task to `rank` (from [`Tx::rank_for_move`]) in its column `status`: one row
    /// and its index entries, recorded like an update of its status (and rank).
    pub fn move_task(
        &self,
        id: TaskId,
        actor: UserId,
        now: DateTime<Utc>,
        status: TaskStatus,
        rank: Rank,
    ) -> Result<Task, StoreError> {
        self.rewrite_task(id, actor, now, |_, task| {
            task.status = status;
            task.rank = rank;
            Ok(())
        })
    }

    /// Reads a task, lets `change` edit it, and writes it back with its index entries, the
    /// change-log entry and notifications; nothing when nothing changed.
    fn rewrite_task(
        &self,
        id: TaskId,
        actor: UserId,
        now: DateTime<Utc>,
        change: impl FnOnce(&TaskTables<'_>, &mut Task) -> Result<(), StoreError>,
    ) -> Result<Task, StoreError> {
        let (before, after) = {
            let mut tables = TaskTables::open(self)?;
            let Some(before) = tables.get(id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            let mut after = before.clone();
            change(&tables, &mut after)?;
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

/// One column of a project's board as read: up to the asked number of tasks in rank order,
/// and whether more follow.
#[derive(Debug, Clone)]
pub struct BoardColumn {
    pub status: TaskStatus,
    pub tasks: Vec<Task>,
    pub more: bool,
}

impl Store {
    /// A project's board in one snapshot: each status column's first `per_column` tasks in
    /// rank order (one bounded range read of `TASKS_BY_RANK` per column).
    pub fn board(
        &self,
        project: ProjectId,
        per_column: usize,
    ) -> Result<Vec<BoardColumn>, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(TASKS)?;
        let index = txn.open_table(TASKS_BY_RANK)?;
        let mut columns = Vec::with_capacity(TaskStatus::ALL.len());
        for status in TaskStatus::ALL {
            let column = Column {
                board: crate::domain::task::Board::Project(project),
                status,
            };
            let (start, end) = column_range(column);
            let mut tasks = Vec::new();
            let mut more = false;
            for e in index.range((borrow_bound(&start), borrow_bound(&end)))? {
                if tasks.len() == per_column {
                    more = true;
                    break;
                }
                let (_, id) = entry(e)?;
                let task: Task = read_row(&rows, "tasks", id)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("tasks_by_rank names a missing task {id}"))
                })?;
                tasks.push(task);
            }
            columns.push(BoardColumn {
                status,
                tasks,
                more,
            });
        }
        Ok(columns)
    }

    /// How many tasks exist: the table's length, which redb keeps (no scan).
    pub fn task_count(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        let txn = self.db().begin_read()?;
        Ok(txn.open_table(TASKS)?.len()?)
    }

    /// Inserts many new tasks in one transaction, with their indexes and change-log entries
    /// (bulk import and benchmark seeding). Projects are not checked: the caller vouches.
    /// Tasks without a rank go to the bottom of their column, in the order given.
    pub fn import_tasks(&self, tasks: &[Task]) -> Result<(), StoreError> {
        let mut tasks = tasks.to_vec();
        self.write(|tx| {
            {
                let mut tables = TaskTables::open(tx)?;
                for task in &mut tasks {
                    tables.insert(task)?;
                }
            }
            for task in &tasks {
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
