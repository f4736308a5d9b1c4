//! Tasks and their five indexes, always written together (`TaskTables`), and the merged
//! index scans that serve every task list.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, Table, WriteTransaction};

use super::changes::append;
use super::codec::{encode, read_row};
use super::notifications::{self, Cause};
use super::tables::*;
use super::{Created, Idempotency, Store, StoreError, read_cache};
use crate::domain::change::{ChangeAction, EntityKind, FieldChange, NewChange};
use crate::domain::project::{Project, ProjectStatus};
use crate::domain::task::Task;
use crate::domain::team::TeamRole;
use crate::domain::{ProjectId, TaskId, TeamId, UserId};

/// An index a task list can be read from, with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskIndex {
    Assignee(UserId),
    Creator(UserId),
    Project(ProjectId),
    Team(TeamId),
}

/// The most index entries one list request examines before it answers with what it found
/// (and a cursor to continue from).
pub const SCAN_BUDGET: usize = 20_000;

/// Task ids read from one index range, in list order.
type IdStream = Box<dyn Iterator<Item = Result<u128, redb::StorageError>>>;

/// One page of a task list: the matches, and where the next page starts.
#[derive(Debug)]
pub struct TaskScan {
    pub tasks: Vec<Task>,
    pub next_after: Option<u128>,
}

pub(super) struct TaskTables<'txn> {
    rows: Table<'txn, u128, &'static [u8]>,
    by_assignee: Table<'txn, (u128, u128), ()>,
    by_creator: Table<'txn, (u128, u128), ()>,
    by_project: Table<'txn, (u128, u128), ()>,
    by_team: Table<'txn, (u128, u128), ()>,
    by_project_status: Table<'txn, (u128, u8, u128), ()>,
}

impl<'txn> TaskTables<'txn> {
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
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
        read_cache::mark_task_written(task.id.as_u128());
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
        read_cache::mark_task_written(task.id.as_u128());
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
        read_cache::mark_task_written(task.id.as_u128());
        self.rows
            .insert(task.id.as_u128(), encode(task)?.as_slice())?;
        Ok(())
    }

    /// Replaces a task's row and re-indexes it.
    fn replace(&mut self, before: &Task, after: &Task) -> Result<(), StoreError> {
        self.delete(before)?;
        self.insert(after)
    }

    fn ids(table: &Table<'txn, (u128, u128), ()>, prefix: u128) -> Result<Vec<u128>, StoreError> {
        let mut ids = Vec::new();
        for entry in table.range((prefix, 0)..=(prefix, u128::MAX))? {
            ids.push(entry?.0.value().1);
        }
        Ok(ids)
    }
}

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

fn task_change(
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

/// The fields that differ between two versions of a task.
pub fn task_diff(before: &Task, after: &Task) -> Vec<FieldChange> {
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

/// Refuses a write into a project that is missing or archived (checked inside the write).
pub(super) fn require_active_project(
    txn: &WriteTransaction,
    project: Option<ProjectId>,
) -> Result<(), StoreError> {
    let Some(project) = project else {
        return Ok(());
    };
    let found: Option<Project> =
        read_row(&txn.open_table(PROJECTS)?, "projects", project.as_u128())?;
    match found {
        None => Err(StoreError::NotFound),
        Some(p) if p.status == ProjectStatus::Archived => Err(StoreError::Archived),
        Some(_) => Ok(()),
    }
}

/// Refuses a team task whose assignees are not all members of its team, checked inside the
/// write so a member removed meanwhile cannot be assigned.
fn require_members(txn: &WriteTransaction, task: &Task) -> Result<(), StoreError> {
    let Some(team) = task.team_id else {
        return Ok(());
    };
    let members = txn.open_table(TEAM_MEMBERS)?;
    for user in &task.assignee_ids {
        if members.get((team.as_u128(), user.as_u128()))?.is_none() {
            return Err(StoreError::NotAMember);
        }
    }
    Ok(())
}

/// A task and `user`'s role in its team (if it has one and they are a member), read from an
/// open transaction.
pub(super) fn task_and_role(
    txn: &redb::ReadTransaction,
    id: TaskId,
    user: UserId,
) -> Result<Option<(Task, Option<TeamRole>)>, StoreError> {
    let Some(task): Option<Task> = read_row(&txn.open_table(TASKS)?, "tasks", id.as_u128())? else {
        return Ok(None);
    };
    let role = match task.team_id {
        Some(team) => super::teams::read_membership(&txn.open_table(TEAM_MEMBERS)?, team, user)?
            .map(|m| m.role),
        None => None,
    };
    Ok(Some((task, role)))
}

/// Adds `comments` and `attachments` (either may be negative) to a task's counts, inside the
/// caller's transaction; the task must exist. Its `version` stays: a comment is no edit.
pub(super) fn add_to_counts(
    txn: &WriteTransaction,
    task: TaskId,
    comments: i64,
    attachments: i64,
) -> Result<Task, StoreError> {
    let mut tables = TaskTables::open(txn)?;
    let Some(mut row) = tables.get(task.as_u128())? else {
        return Err(StoreError::NotFound);
    };
    row.comment_count = row.comment_count.saturating_add_signed(comments);
    row.attachment_count = row.attachment_count.saturating_add_signed(attachments);
    tables.put_counts(&row)?;
    Ok(row)
}

/// Appends a `Deleted` entry for each task removed by a cascade.
fn log_cascaded(
    txn: &WriteTransaction,
    tasks: &[Task],
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for task in tasks {
        let seq = append(
            txn,
            task_change(task, now, actor, ChangeAction::Deleted, vec![]),
        )?;
        notifications::for_task_deleted(
            txn,
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

/// Deletes every task in a project's or a team's index (a cascade) inside the caller's
/// transaction, with a change-log entry for each.
pub(super) fn delete_tasks_in(
    txn: &WriteTransaction,
    index: TaskIndex,
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut deleted = Vec::new();
    {
        let mut tables = TaskTables::open(txn)?;
        let ids = match index {
            TaskIndex::Project(p) => TaskTables::ids(&tables.by_project, p.as_u128())?,
            TaskIndex::Team(t) => TaskTables::ids(&tables.by_team, t.as_u128())?,
            TaskIndex::Assignee(u) => TaskTables::ids(&tables.by_assignee, u.as_u128())?,
            TaskIndex::Creator(u) => TaskTables::ids(&tables.by_creator, u.as_u128())?,
        };
        for id in ids {
            if let Some(task) = tables.get(id)? {
                tables.delete(&task)?;
                deleted.push(task);
            }
        }
    }
    for task in &deleted {
        super::comments::delete_children(txn, task.id)?;
    }
    log_cascaded(txn, &deleted, actor, now)
}

/// Unassigns `user` from every task of `team` (they left or were removed), inside the
/// caller's transaction, with a change-log entry per task.
pub(super) fn unassign_from_team(
    txn: &WriteTransaction,
    team: TeamId,
    user: UserId,
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut changed = Vec::new();
    {
        let mut tables = TaskTables::open(txn)?;
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
        append(
            txn,
            task_change(
                &after,
                now,
                actor,
                ChangeAction::Updated,
                task_diff(&before, &after),
            ),
        )?;
    }
    Ok(())
}

impl Store {
    /// How many tasks exist: the table's length, which redb keeps (no scan).
    pub fn task_count(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        let txn = self.db().begin_read()?;
        Ok(txn.open_table(TASKS)?.len()?)
    }

    /// Stores a new task (or replays an earlier create with the same idempotency key); its
    /// project (if any) must exist and be active at commit time.
    pub fn create_task(
        &self,
        task: &Task,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created<Task>, StoreError> {
        let txn = self.begin_write()?;
        if let Some(first) = super::idempotency::check::<Task>(&txn, idempotency, task.created_at)?
        {
            // Committed empty, so the answer waits for the flush that covers the first write.
            self.commit(txn)?;
            return Ok(Created::Replayed(first));
        }
        require_active_project(&txn, task.project_id)?;
        require_members(&txn, task)?;
        let mut task = task.clone();
        task.id = TaskId::from_u128(super::next_id(&txn, TASKS, task.id.as_u128())?);
        let task = &task;
        TaskTables::open(&txn)?.insert(task)?;
        let seq = append(&txn, task_created(task))?;
        let cause = Cause {
            seq,
            actor: task.created_by,
            at: task.created_at,
        };
        notifications::for_task_created(&txn, cause, task)?;
        super::idempotency::record(&txn, idempotency, task.created_at, task)?;
        self.commit(txn)?;
        Ok(Created::New(task.clone()))
    }

    /// Inserts many new tasks in one transaction, with their indexes and change-log entries
    /// (bulk import and benchmark seeding). Projects are not checked: the caller vouches.
    pub fn import_tasks(&self, tasks: &[Task]) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        {
            let mut tables = TaskTables::open(&txn)?;
            for task in tasks {
                tables.insert(task)?;
            }
        }
        for task in tasks {
            append(&txn, task_created(task))?;
        }
        self.commit(txn)?;
        Ok(())
    }

    /// A task and `user`'s role in its team (if it has one and they are a member), in one
    /// snapshot: everything needed to decide what `user` may do with it.
    pub fn task_for(
        &self,
        id: TaskId,
        user: UserId,
    ) -> Result<Option<(Task, Option<crate::domain::team::TeamRole>)>, StoreError> {
        task_and_role(&self.db().begin_read()?, id, user)
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

    /// Applies `change` to a task in one transaction, if it is still at `expected_version`
    /// (when given). `change` sees the current row and may refuse. A task in (or moved into)
    /// an archived project cannot change.
    pub fn update_task(
        &self,
        id: TaskId,
        expected_version: Option<u64>,
        actor: UserId,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut Task) -> Result<(), StoreError>,
    ) -> Result<Task, StoreError> {
        let txn = self.begin_write()?;
        let (before, after) = {
            let mut tables = TaskTables::open(&txn)?;
            let Some(before) = tables.get(id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            if expected_version.is_some_and(|v| v != before.version) {
                return Err(StoreError::Stale);
            }
            let mut after = before.clone();
            change(&mut after)?;
            if task_diff(&before, &after).is_empty() {
                drop(tables);
                self.commit(txn)?;
                return Ok(before);
            }
            after.version += 1;
            after.updated_at = now;
            tables.replace(&before, &after)?;
            (before, after)
        };
        require_active_project(&txn, before.project_id)?;
        require_active_project(&txn, after.project_id)?;
        require_members(&txn, &after)?;
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
        for user in audience(&before) {
            if !entry.audience.contains(&user) {
                entry.audience.push(user);
            }
        }
        let seq = append(&txn, entry)?;
        let changed: Vec<&str> = changed.iter().map(String::as_str).collect();
        let cause = Cause {
            seq,
            actor,
            at: now,
        };
        notifications::for_task_updated(&txn, cause, &before, &after, &changed)?;
        self.commit(txn)?;
        Ok(after)
    }

    /// Deletes a task, if it is still at `expected_version` (when given).
    pub fn delete_task(
        &self,
        id: TaskId,
        expected_version: Option<u64>,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        let task = {
            let tables = TaskTables::open(&txn)?;
            let Some(task) = tables.get(id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            if expected_version.is_some_and(|v| v != task.version) {
                return Err(StoreError::Stale);
            }
            drop(tables);
            require_active_project(&txn, task.project_id)?;
            let mut tables = TaskTables::open(&txn)?;
            tables.delete(&task)?;
            task
        };
        super::comments::delete_children(&txn, task.id)?;
        let seq = append(
            &txn,
            task_change(&task, now, actor, ChangeAction::Deleted, vec![]),
        )?;
        notifications::for_task_deleted(
            &txn,
            Cause {
                seq,
                actor,
                at: now,
            },
            &task,
        )?;
        self.commit(txn)?;
        Ok(())
    }

    /// Reads tasks from the union of `sources` in id order (newest first when `descending`),
    /// starting after `after`, keeping those `keep` accepts, until `limit + 1` are found or
    /// `budget` entries were examined (the API uses [`SCAN_BUDGET`]). `next_after` is where the next page starts:
    /// after the last returned task, or after the last examined entry when the budget ran
    /// out, so paging never repeats or skips a task.
    pub fn scan_tasks(
        &self,
        sources: &[TaskIndex],
        after: Option<u128>,
        descending: bool,
        limit: usize,
        budget: usize,
        keep: impl Fn(&Task) -> bool,
    ) -> Result<TaskScan, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(TASKS)?;
        let mut streams: Vec<std::iter::Peekable<IdStream>> = Vec::new();
        for source in sources {
            let (table, prefix) = match *source {
                TaskIndex::Assignee(u) => (TASKS_BY_ASSIGNEE, u.as_u128()),
                TaskIndex::Creator(u) => (TASKS_BY_CREATOR, u.as_u128()),
                TaskIndex::Project(p) => (TASKS_BY_PROJECT, p.as_u128()),
                TaskIndex::Team(t) => (TASKS_BY_TEAM, t.as_u128()),
            };
            let index = txn.open_table(table)?;
            let range = match (after, descending) {
                (None, _) => index.range((prefix, 0)..=(prefix, u128::MAX))?,
                (Some(a), false) if a == u128::MAX => continue,
                (Some(a), false) => index.range((prefix, a + 1)..=(prefix, u128::MAX))?,
                (Some(0), true) => continue,
                (Some(a), true) => index.range((prefix, 0)..=(prefix, a - 1))?,
            };
            let ids = range.map(|entry| entry.map(|(key, _)| key.value().1));
            let stream: IdStream = if descending {
                Box::new(ids.rev())
            } else {
                Box::new(ids)
            };
            streams.push(stream.peekable());
        }
        let mut tasks = Vec::new();
        let mut examined = 0;
        let mut last: Option<u128> = None;
        loop {
            // The next id of the merged streams (smallest, or largest when descending).
            let mut best: Option<(usize, u128)> = None;
            for (i, stream) in streams.iter_mut().enumerate() {
                match stream.peek() {
                    Some(Ok(id)) => {
                        let better =
                            best.is_none_or(|(_, b)| if descending { *id > b } else { *id < b });
                        if better {
                            best = Some((i, *id));
                        }
                    }
                    Some(Err(_)) => {
                        return Err(stream
                            .next()
                            .expect("peeked")
                            .expect_err("peeked an error")
                            .into());
                    }
                    None => {}
                }
            }
            let Some((i, id)) = best else {
                return Ok(TaskScan {
                    tasks,
                    next_after: None,
                });
            };
            streams[i].next();
            if last == Some(id) {
                continue;
            }
            last = Some(id);
            examined += 1;
            if let Some(task) = read_row::<Task>(&rows, "tasks", id)?.filter(|t| keep(t)) {
                tasks.push(task);
                if tasks.len() > limit {
                    tasks.truncate(limit);
                    let next = tasks.last().map(|t| t.id.as_u128());
                    return Ok(TaskScan {
                        tasks,
                        next_after: next,
                    });
                }
            }
            if examined >= budget {
                return Ok(TaskScan {
                    tasks,
                    next_after: Some(id),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::{Priority, TaskStatus, TaskTitle};

    fn task(creator: UserId, assignee: UserId, done: bool) -> Task {
        let now = Utc::now();
        Task {
            id: TaskId::new(),
            title: TaskTitle::parse("t").unwrap(),
            description: String::new(),
            status: if done {
                TaskStatus::Done
            } else {
                TaskStatus::Todo
            },
            priority: Priority::Medium,
            due_date: None,
            labels: vec![],
            project_id: None,
            team_id: None,
            assignee_ids: vec![assignee],
            created_by: creator,
            created_at: now,
            updated_at: now,
            version: 1,
            comment_count: 0,
            attachment_count: 0,
        }
    }

    /// With a tiny budget, pages come back short but paging still visits every match once.
    #[test]
    fn a_spent_budget_gives_short_pages_never_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (me, other) = (UserId::new(), UserId::new());
        // Two sources that overlap: tasks I created, and tasks assigned to me.
        let tasks: Vec<Task> = (0..40)
            .map(|i| {
                task(
                    if i % 2 == 0 { me } else { other },
                    if i % 3 == 0 { me } else { other },
                    i % 5 == 0,
                )
            })
            .collect();
        store.import_tasks(&tasks).unwrap();
        let expected: Vec<TaskId> = tasks
            .iter()
            .filter(|t| {
                (t.created_by == me || t.is_assigned_to(me)) && t.status == TaskStatus::Done
            })
            .map(|t| t.id)
            .collect();
        let sources = [TaskIndex::Creator(me), TaskIndex::Assignee(me)];
        let mut seen = Vec::new();
        let mut after = None;
        let mut short_pages = 0;
        loop {
            let page = store
                .scan_tasks(&sources, after, false, 4, 3, |t| {
                    t.status == TaskStatus::Done
                })
                .unwrap();
            short_pages += usize::from(page.tasks.len() < 4 && page.next_after.is_some());
            seen.extend(page.tasks.iter().map(|t| t.id));
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected);
        assert!(short_pages > 0, "the budget cut some pages short");
    }

    #[test]
    fn ids_grow_with_commit_order_and_are_never_given_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let me = UserId::new();
        let (early, late) = (task(me, me, false), task(me, me, false));
        let created = |t: &Task| match store.create_task(t, None).unwrap() {
            Created::New(t) | Created::Replayed(t) => t,
        };
        // `late` commits first; `early` (an older id) must still sort after it.
        let first = created(&late);
        let second = created(&early);
        assert!(second.id.as_u128() > first.id.as_u128());
        // The newest row goes; a third task must not take its id again.
        store.delete_task(second.id, None, me, Utc::now()).unwrap();
        let third = created(&task(me, me, false));
        assert!(third.id.as_u128() > second.id.as_u128());
        let replay = created(&early);
        assert!(replay.id.as_u128() > third.id.as_u128());
    }
}
