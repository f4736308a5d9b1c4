//! The store's side of `tasker export` and `tasker import` (the file format is in
//! `crate::portable`).
//!
//! Export (`portable/export.rs`) reads every table in one read transaction
//! ([`Snapshot`](super::Snapshot)), row by row, so the file is one consistent point in time and
//! memory stays flat however large the store.
//!
//! Import writes everything in one write transaction ([`Store::import`]): a file that fails
//! half-way leaves the database as it was. Each section of the file gets a sink that holds its
//! tables open for the whole section (opening a table per row would dominate a million-task
//! import). Sinks write rows with their secondary indexes and a `Created` change-log entry
//! like the normal create path's, so activity, the real-time replay and the search indexer see
//! imported rows like any other; an imported task's and comment's entry carries no field
//! values, though (`fields: []`): the row is what it was created with, and those values were
//! half the log at a million tasks. A comment's entry names its task (`task_id`) as every
//! comment entry does. Sinks write no notifications: nobody is told about an import. Sinks hold the import's [`Tx`], so what they write is noted in its `Effects`
//! like any other write. Referential integrity is checked against what the same transaction
//! has written so far, which is why the file's sections come in dependency order.

use redb::{ReadableTable, ReadableTableMetadata, Table, TableHandle};

use super::attachments::attachment_creation_fields;
use super::changes::{ChangeLog, in_team};
use super::codec::{encode, read_row};
use super::projects::project_created;
use super::tables::*;
use super::task_changes::{about_task, task_imported};
use super::tasks::TaskTables;
use super::teams::team_creation_fields;
use super::tx::Tx;
use super::{Store, StoreError};

/// Export: the sections read from one [`Snapshot`].
mod export;
use crate::domain::attachment::Attachment;
use crate::domain::change::{ChangeAction, EntityKind, FieldChange};
use crate::domain::comment::Comment;
use crate::domain::project::Project;
use crate::domain::task::Task;
use crate::domain::team::{Membership, Team};
use crate::domain::{TaskId, User};
pub use export::ExportCounts;

/// A row that passed the checks (`Ok`) or why it cannot be imported (`Err`, a sentence about
/// the row, shown to the operator).
pub type Checked = Result<(), String>;

impl Store {
    /// Runs `f` with an [`Importer`] over one write transaction, committed (durably) only when
    /// `f` succeeds; on any error nothing is written. Afterwards the id high-water marks
    /// cover every imported id, so none is handed out again.
    pub fn import<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Importer<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write(|tx| {
            let importer = Importer { tx };
            let value = f(&importer)?;
            importer.raise_high_water_marks()?;
            Ok(value)
        })
    }
}

/// The write side of an import: hands out one sink per section. See [`Store::import`].
pub struct Importer<'txn> {
    tx: &'txn Tx<'txn>,
}

/// Fails with a sentence when `id` is not a row of `table` (`what` names the reference).
fn require_row(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: u128,
    what: &str,
) -> Result<Checked, StoreError> {
    Ok(match table.get(id)? {
        Some(_) => Ok(()),
        None => Err(format!(
            "{what} {} is not in the file (or comes later)",
            uuid::Uuid::from_u128(id)
        )),
    })
}

/// Fails when `id` is already a row of `table` (a duplicate in the file).
fn require_new(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: u128,
) -> Result<Checked, StoreError> {
    Ok(match table.get(id)? {
        Some(_) => Err(format!(
            "id {} appears twice in the file",
            uuid::Uuid::from_u128(id)
        )),
        None => Ok(()),
    })
}

/// Returns the first failed check of a row.
macro_rules! check {
    ($checked:expr) => {
        if let Err(why) = $checked {
            return Ok(Err(why));
        }
    };
}

impl<'txn> Importer<'txn> {
    /// Whether the store holds no account, team, project or task: the only kind of store an
    /// import writes into.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.tx.txn().open_table(USERS)?.is_empty()?
            && self.tx.txn().open_table(TEAMS)?.is_empty()?
            && self.tx.txn().open_table(PROJECTS)?.is_empty()?
            && self.tx.txn().open_table(TASKS)?.is_empty()?)
    }

    /// The sink of the `users` section (the first).
    pub fn users(&self) -> Result<UserSink<'txn>, StoreError> {
        Ok(UserSink {
            rows: self.tx.txn().open_table(USERS)?,
            by_email: self.tx.txn().open_table(USERS_BY_EMAIL)?,
        })
    }

    /// The sink of the `teams` section (after `users`).
    pub fn teams(&self) -> Result<TeamSink<'txn>, StoreError> {
        Ok(TeamSink {
            tx: self.tx,
            rows: self.tx.txn().open_table(TEAMS)?,
            users: self.tx.txn().open_table(USERS)?,
            log: ChangeLog::open(self.tx)?,
        })
    }

    /// The sink of the `projects` section (after `teams`).
    pub fn projects(&self) -> Result<ProjectSink<'txn>, StoreError> {
        Ok(ProjectSink {
            rows: self.tx.txn().open_table(PROJECTS)?,
            by_team: self.tx.txn().open_table(PROJECTS_BY_TEAM)?,
            teams: self.tx.txn().open_table(TEAMS)?,
            users: self.tx.txn().open_table(USERS)?,
            log: ChangeLog::open(self.tx)?,
        })
    }

    /// The sink of the `tasks` section (after `projects`).
    pub fn tasks(&self) -> Result<TaskSink<'txn>, StoreError> {
        Ok(TaskSink {
            tables: TaskTables::open(self.tx)?,
            projects: self.tx.txn().open_table(PROJECTS)?,
            members: self.tx.txn().open_table(TEAM_MEMBERS)?,
            users: self.tx.txn().open_table(USERS)?,
            log: ChangeLog::open(self.tx)?,
        })
    }

    /// The sink of the `comments` section (after `tasks`).
    pub fn comments(&self) -> Result<CommentSink<'txn>, StoreError> {
        Ok(CommentSink {
            rows: self.tx.txn().open_table(COMMENTS)?,
            by_task: self.tx.txn().open_table(COMMENTS_BY_TASK)?,
            tasks: TaskTables::open(self.tx)?,
            users: self.tx.txn().open_table(USERS)?,
            log: ChangeLog::open(self.tx)?,
        })
    }

    /// The sink of the `attachments` section (after `comments`).
    pub fn attachments(&self) -> Result<AttachmentSink<'txn>, StoreError> {
        Ok(AttachmentSink {
            tx: self.tx,
            rows: self.tx.txn().open_table(ATTACHMENTS)?,
            by_task: self.tx.txn().open_table(ATTACHMENTS_BY_TASK)?,
            tasks: TaskTables::open(self.tx)?,
            users: self.tx.txn().open_table(USERS)?,
            log: ChangeLog::open(self.tx)?,
        })
    }

    /// Sets the high-water mark of every table whose ids `next_id` hands out to at least its
    /// newest id (imported ids are UUIDv7 from the past, but a file may carry any id).
    fn raise_high_water_marks(&self) -> Result<(), StoreError> {
        let mut marks = self.tx.txn().open_table(ID_HIGH_WATER)?;
        for table in [TEAMS, PROJECTS, TASKS, COMMENTS, ATTACHMENTS] {
            let newest = self
                .tx
                .txn()
                .open_table(table)?
                .last()?
                .map(|(k, _)| k.value());
            let mark = marks.get(table.name())?.map(|m| m.value());
            if let Some(high) = newest.max(mark) {
                marks.insert(table.name(), high)?;
            }
        }
        Ok(())
    }
}

/// Accounts and the email index.
pub struct UserSink<'txn> {
    rows: Table<'txn, u128, &'static [u8]>,
    by_email: Table<'txn, &'static str, u128>,
}

impl UserSink<'_> {
    /// An account (its id and email not seen before).
    pub fn insert(&mut self, user: &User) -> Result<Checked, StoreError> {
        check!(require_new(&self.rows, user.id.as_u128())?);
        if self.by_email.get(user.email.as_str())?.is_some() {
            return Ok(Err(format!(
                "email {} is used by two accounts",
                user.email.as_str()
            )));
        }
        self.rows
            .insert(user.id.as_u128(), encode(user)?.as_slice())?;
        self.by_email
            .insert(user.email.as_str(), user.id.as_u128())?;
        Ok(Ok(()))
    }
}

/// Teams and their memberships.
pub struct TeamSink<'txn> {
    tx: &'txn Tx<'txn>,
    rows: Table<'txn, u128, &'static [u8]>,
    users: Table<'txn, u128, &'static [u8]>,
    log: ChangeLog<'txn>,
}

impl TeamSink<'_> {
    /// A team and its members; `members` has distinct users (the caller checked the roles).
    pub fn insert(&mut self, team: &Team, members: &[Membership]) -> Result<Checked, StoreError> {
        check!(require_new(&self.rows, team.id.as_u128())?);
        check!(require_row(
            &self.users,
            team.created_by.as_u128(),
            "created_by: user"
        )?);
        for member in members {
            check!(require_row(
                &self.users,
                member.user_id.as_u128(),
                "member: user"
            )?);
        }
        self.rows
            .insert(team.id.as_u128(), encode(team)?.as_slice())?;
        // As in `create_team`: memberships first, so a follower of the log sees the team from
        // its creation on.
        for member in members {
            self.tx.insert_membership(member)?;
            let fields = vec![FieldChange::set("role", &member.role)];
            self.log.append(in_team(
                member.joined_at,
                member.user_id,
                EntityKind::Membership,
                member.user_id.as_uuid(),
                team.id,
                ChangeAction::Created,
                fields,
            ))?;
        }
        self.log.append(in_team(
            team.created_at,
            team.created_by,
            EntityKind::Team,
            team.id.as_uuid(),
            team.id,
            ChangeAction::Created,
            team_creation_fields(team),
        ))?;
        Ok(Ok(()))
    }
}

/// Projects and the per-team index.
pub struct ProjectSink<'txn> {
    rows: Table<'txn, u128, &'static [u8]>,
    by_team: Table<'txn, (u128, u128), ()>,
    teams: Table<'txn, u128, &'static [u8]>,
    users: Table<'txn, u128, &'static [u8]>,
    log: ChangeLog<'txn>,
}

impl ProjectSink<'_> {
    /// A project of an imported team.
    pub fn insert(&mut self, project: &Project) -> Result<Checked, StoreError> {
        let id = project.id.as_u128();
        check!(require_new(&self.rows, id)?);
        check!(require_row(
            &self.teams,
            project.team_id.as_u128(),
            "team_id: team"
        )?);
        check!(require_row(
            &self.users,
            project.created_by.as_u128(),
            "created_by: user"
        )?);
        self.rows.insert(id, encode(project)?.as_slice())?;
        self.by_team.insert((project.team_id.as_u128(), id), ())?;
        self.log.append(project_created(project))?;
        Ok(Ok(()))
    }
}

/// Tasks with their five indexes.
pub struct TaskSink<'txn> {
    tables: TaskTables<'txn>,
    projects: Table<'txn, u128, &'static [u8]>,
    members: Table<'txn, (u128, u128), &'static [u8]>,
    users: Table<'txn, u128, &'static [u8]>,
    log: ChangeLog<'txn>,
}

impl TaskSink<'_> {
    /// A task; its `team_id` is set from its project, and its comment and attachment counts
    /// start at zero (the comments and attachments sections count them).
    pub fn insert(&mut self, task: &mut Task) -> Result<Checked, StoreError> {
        check!(match self.tables.get(task.id.as_u128())? {
            Some(_) => Err(format!("id {} appears twice in the file", task.id)),
            None => Ok(()),
        });
        check!(require_row(
            &self.users,
            task.created_by.as_u128(),
            "created_by: user"
        )?);
        task.team_id = None;
        if let Some(project) = task.project_id {
            let found: Option<Project> = read_row(&self.projects, "projects", project.as_u128())?;
            match found {
                Some(project) => task.team_id = Some(project.team_id),
                None => {
                    return Ok(Err(format!(
                        "project_id: project {project} is not in the file"
                    )));
                }
            }
        }
        for user in &task.assignee_ids {
            check!(require_row(
                &self.users,
                user.as_u128(),
                "assignee_ids: user"
            )?);
            if let Some(team) = task.team_id
                && self
                    .members
                    .get((team.as_u128(), user.as_u128()))?
                    .is_none()
            {
                return Ok(Err(format!(
                    "assignee_ids: user {user} is not a member of team {team}, the project's team"
                )));
            }
        }
        task.comment_count = 0;
        task.attachment_count = 0;
        self.tables.insert(task)?;
        self.log.append(task_imported(task))?;
        Ok(Ok(()))
    }
}

/// Reads a task for a child row, failing the row when it is missing.
fn parent_task(tasks: &TaskTables<'_>, id: TaskId) -> Result<Result<Task, String>, StoreError> {
    Ok(tasks
        .get(id.as_u128())?
        .ok_or_else(|| format!("task_id: task {id} is not in the file")))
}

/// Comments, their per-task index and the tasks' comment counts.
pub struct CommentSink<'txn> {
    rows: Table<'txn, u128, &'static [u8]>,
    by_task: Table<'txn, (u128, u128), ()>,
    tasks: TaskTables<'txn>,
    users: Table<'txn, u128, &'static [u8]>,
    log: ChangeLog<'txn>,
}

impl CommentSink<'_> {
    /// A comment on an imported task; the task's comment count goes up.
    pub fn insert(&mut self, comment: &Comment) -> Result<Checked, StoreError> {
        let id = comment.id.as_u128();
        check!(require_new(&self.rows, id)?);
        check!(require_row(
            &self.users,
            comment.author_id.as_u128(),
            "author_id: user"
        )?);
        let mut task = match parent_task(&self.tasks, comment.task_id)? {
            Ok(task) => task,
            Err(why) => return Ok(Err(why)),
        };
        self.rows.insert(id, encode(comment)?.as_slice())?;
        self.by_task.insert((task.id.as_u128(), id), ())?;
        task.comment_count += 1;
        self.tasks.put_counts(&task)?;
        self.log.append(about_task(
            &task,
            EntityKind::Comment,
            comment.id.as_uuid(),
            comment.created_at,
            comment.author_id,
            ChangeAction::Created,
            // The row is what it was created with (see the module doc); `about_task` names
            // the task on the entry.
            vec![],
        ))?;
        Ok(Ok(()))
    }
}

/// Attachments, their per-task index, blob references, upload totals and the tasks'
/// attachment counts.
pub struct AttachmentSink<'txn> {
    tx: &'txn Tx<'txn>,
    rows: Table<'txn, u128, &'static [u8]>,
    by_task: Table<'txn, (u128, u128), ()>,
    tasks: TaskTables<'txn>,
    users: Table<'txn, u128, &'static [u8]>,
    log: ChangeLog<'txn>,
}

impl AttachmentSink<'_> {
    /// An attachment whose blob the caller found on disk.
    pub fn insert(&mut self, attachment: &Attachment) -> Result<Checked, StoreError> {
        let id = attachment.id.as_u128();
        check!(require_new(&self.rows, id)?);
        let uploader = attachment.uploaded_by.as_u128();
        check!(require_row(&self.users, uploader, "uploaded_by: user")?);
        let mut task = match parent_task(&self.tasks, attachment.task_id)? {
            Ok(task) => task,
            Err(why) => return Ok(Err(why)),
        };
        self.rows.insert(id, encode(attachment)?.as_slice())?;
        self.by_task.insert((task.id.as_u128(), id), ())?;
        self.tx.add_blob_ref(attachment.sha256)?;
        self.tx
            .add_upload_bytes(attachment.uploaded_by, attachment.size)?;
        task.attachment_count += 1;
        self.tasks.put_counts(&task)?;
        self.log.append(about_task(
            &task,
            EntityKind::Attachment,
            attachment.id.as_uuid(),
            attachment.created_at,
            attachment.uploaded_by,
            ChangeAction::Created,
            attachment_creation_fields(attachment),
        ))?;
        Ok(Ok(()))
    }
}
