//! Tasks (DESIGN.md section 3): create, read, list, update, move, delete. Who may see, edit,
//! delete and assign is `domain::access`'s to say; this module loads the facts it needs (the
//! caller's [`Standing`], the assignees' teams) and asks it. A write reads those facts and
//! decides inside the write transaction that performs it (redb has one writer at a time), so
//! what it decided on cannot change before it commits.

use chrono::{DateTime, Utc};

use super::teams::Write;
use super::{AuthUser, Error, Reach, Result, Service};
use crate::domain::access::{self, Standing};
use crate::domain::change::Change;
use crate::domain::page::Page;
use crate::domain::scope::{Access, Area};
use crate::domain::task::{
    ListPosition, MAX_ASSIGNEES, Priority, Task, TaskFilter, TaskSort, TaskStatus, TaskTitle,
    parse_labels, parse_task_description,
};
use crate::domain::team::TeamRole;
use crate::domain::{Cursor, PageLimit, ProjectId, TaskId, TeamId, UserId, Validator};
use crate::store::{Created, Place, SCAN_BUDGET, StoreError, TaskIndex, TaskOrder, Tx};

/// A field of an update: leave it, clear it (`null` in PATCH), or set it.
#[derive(Debug, Clone, Default)]
pub enum Edit<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

pub struct NewTask {
    pub title: String,
    pub description: Option<String>,
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
    pub due_date: Option<DateTime<Utc>>,
    pub labels: Option<Vec<String>>,
    pub project_id: Option<ProjectId>,
    pub assignee_ids: Option<Vec<UserId>>,
    /// Where in its column: the bottom unless `Top`.
    pub position: Option<Position>,
}

/// An end of a board column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    Top,
    Bottom,
}

#[derive(Default, Clone)]
pub struct TaskPatch {
    pub title: Edit<String>,
    pub description: Edit<String>,
    pub status: Edit<TaskStatus>,
    pub priority: Edit<Priority>,
    pub due_date: Edit<DateTime<Utc>>,
    pub labels: Edit<Vec<String>>,
    pub project_id: Edit<ProjectId>,
    pub assignee_ids: Edit<Vec<UserId>>,
}

/// Which tasks a list starts from, before filters narrow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Assigned to me (the default).
    #[default]
    Assigned,
    /// Created by me.
    Created,
    /// Every task I can see.
    All,
}

#[derive(Default)]
pub struct TaskQuery {
    pub scope: Scope,
    /// Comma-separated statuses.
    pub status: Option<String>,
    pub project_id: Option<ProjectId>,
    pub assignee: Option<UserId>,
    pub label: Option<String>,
    pub priority: Option<Priority>,
    pub due_before: Option<DateTime<Utc>>,
    pub due_after: Option<DateTime<Utc>>,
    /// What the list is ordered by (default: creation).
    pub sort: TaskSort,
    /// Largest first (newest, latest due, most urgent); tasks without a due date stay last.
    pub descending: bool,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// One page of a task list; `next_cursor` (opaque) continues it in the same sort.
#[derive(Debug, Clone)]
pub struct TaskList {
    pub items: Vec<TaskView>,
    pub next_cursor: Option<String>,
}

/// A task and what the caller may do with it.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub task: Task,
    pub can_edit: bool,
    pub can_delete: bool,
}

/// What `standing` may do with a task it can see.
pub(super) fn view(standing: &Standing, task: Task) -> TaskView {
    TaskView {
        can_edit: standing.may_edit_task(&task),
        can_delete: standing.may_delete_task(&task),
        task,
    }
}

/// What `me` may do with a task they can see, given their role in its team.
pub(super) fn view_as(me: UserId, task: Task, role: Option<TeamRole>) -> TaskView {
    TaskView {
        can_edit: access::may_edit_task(me, &task, role),
        can_delete: access::may_delete_task(me, &task, role),
        task,
    }
}

pub(super) fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::NotFound => Error::NotFound("task"),
        StoreError::Archived => Error::ProjectArchived,
        StoreError::NotAMember => Error::invalid(
            "assignee_ids",
            "every assignee must be a member of the project's team",
        ),
        other => Error::Internal(other),
    }
}

/// The project an edit leaves a task in (`None` for personal), when it changes it.
fn project_of(edit: &Edit<ProjectId>) -> Option<ProjectId> {
    match edit {
        Edit::Set(p) => Some(*p),
        _ => None,
    }
}

/// Applies a validated patch to the current row: only what the client sent, so a concurrent
/// change to the rest is kept.
fn apply_patch(
    task: &mut Task,
    patch: TaskPatch,
    title: Option<TaskTitle>,
    description: Option<String>,
    labels: Option<Vec<String>>,
    placement: Option<(Option<ProjectId>, Option<TeamId>)>,
    assignees: Option<Vec<UserId>>,
) {
    if let Some(title) = title {
        task.title = title;
    }
    match patch.description {
        Edit::Clear => task.description.clear(),
        Edit::Set(_) => task.description = description.unwrap_or_default(),
        Edit::Keep => {}
    }
    if let Edit::Set(status) = patch.status {
        task.status = status;
    }
    if let Edit::Set(priority) = patch.priority {
        task.priority = priority;
    }
    match patch.due_date {
        Edit::Clear => task.due_date = None,
        Edit::Set(due) => task.due_date = Some(due),
        Edit::Keep => {}
    }
    match patch.labels {
        Edit::Clear => task.labels.clear(),
        Edit::Set(_) => task.labels = labels.unwrap_or_default(),
        Edit::Keep => {}
    }
    if let Some((project, team)) = placement {
        task.project_id = project;
        task.team_id = team;
    }
    if let Some(assignees) = assignees {
        task.assignee_ids = assignees;
    }
}

/// Distinct users in first-seen order.
fn unique(users: &[UserId]) -> Vec<UserId> {
    let mut seen = std::collections::HashSet::new();
    users.iter().copied().filter(|u| seen.insert(*u)).collect()
}

pub(super) fn parse_statuses(raw: &str) -> std::result::Result<Vec<TaskStatus>, String> {
    raw.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(TaskStatus::parse)
        .collect()
}

/// The task `me` asks about and their role in its team, read in the write's transaction; 404
/// (`what`) when they cannot see it.
pub(super) fn visible_in(
    tx: &Tx<'_>,
    id: TaskId,
    me: UserId,
    reach: &Reach,
    what: &'static str,
) -> Result<(Task, Option<TeamRole>)> {
    match tx.task_and_role(id, me)? {
        Some((task, role))
            if access::may_see_task(me, &task, role) && reach.covers(task.team_id) =>
        {
            Ok((task, role))
        }
        _ => Err(Error::NotFound(what)),
    }
}

/// `me`'s role in `team` (none for a personal task), read in the write's transaction.
fn role_in(tx: &Tx<'_>, team: Option<TeamId>, me: UserId) -> Result<Option<TeamRole>> {
    Ok(match team {
        Some(team) => tx.membership(team, me)?.map(|m| m.role),
        None => None,
    })
}

/// The team of a project, given the team read before the write (`None`: no such project; a
/// project never changes team), when the caller can see the project in the write's
/// transaction; 404 otherwise. That the project still exists and is active is checked by the
/// write itself.
fn project_team_in(tx: &Tx<'_>, me: UserId, team: Option<TeamId>) -> Result<TeamId> {
    match team {
        Some(team) if access::may_see_project(tx.membership(team, me)?.map(|m| m.role)) => Ok(team),
        _ => Err(Error::NotFound("project")),
    }
}

/// Checks, in the write's transaction, that every assignee may be assigned by `me`: a member
/// of `team`, or for a personal task `me` or someone sharing a team with `me`. Every
/// membership it decides on is read through `tx`.
fn check_assignees_in(
    tx: &Tx<'_>,
    me: UserId,
    team: Option<TeamId>,
    assignees: &[UserId],
) -> Result<()> {
    if assignees.len() > MAX_ASSIGNEES {
        return Err(Error::invalid(
            "assignee_ids",
            format!("at most {MAX_ASSIGNEES} assignees"),
        ));
    }
    // Of the teams an assignee shares with the caller, only those matter to the rule.
    let candidates: Vec<TeamId> = match team {
        Some(team) => vec![team],
        None if assignees.iter().all(|u| *u == me) => vec![],
        None => tx.team_ids_of(me)?,
    };
    let mut roles = Vec::with_capacity(candidates.len());
    for t in &candidates {
        if let Some(membership) = tx.membership(*t, me)? {
            roles.push((*t, membership.role));
        }
    }
    let now = Standing::new(me, roles);
    for user in assignees {
        // Assigning oneself to a personal task needs no read.
        let mut theirs = Vec::new();
        if team.is_some() || *user != me {
            for t in &candidates {
                if tx.membership(*t, *user)?.is_some() {
                    theirs.push(*t);
                }
            }
        }
        if !now.may_assign(team, *user, &theirs) {
            return Err(if team.is_some() {
                Error::invalid(
                    "assignee_ids",
                    "every assignee must be a member of the project's team",
                )
            } else {
                Error::invalid(
                    "assignee_ids",
                    "assignees of a personal task must be you or share a team with you",
                )
            });
        }
    }
    Ok(())
}

impl Service {
    /// The caller's teams and roles, read once per request.
    /// For a token limited to teams, only those of them the user is in.
    pub(super) async fn standing(&self, auth: &AuthUser) -> Result<Standing> {
        let standing = self.standing_of(auth.user_id).await?;
        if !auth.team_limited() {
            return Ok(standing);
        }
        let reached: Vec<_> = standing
            .team_ids()
            .filter(|t| auth.reaches_team(*t))
            .filter_map(|t| standing.role(t).map(|r| (t, r)))
            .collect();
        Ok(Standing::new(auth.user_id, reached))
    }

    /// Where `user` stands now: their teams and roles.
    pub(super) async fn standing_of(&self, user: UserId) -> Result<Standing> {
        let teams = self
            .store
            .run(move |s| s.teams_of_user(user, None, usize::MAX))
            .await?;
        Ok(Standing::new(
            user,
            teams.into_iter().map(|(t, m)| (t.id, m.role)),
        ))
    }

    /// The team of `project`, which the caller must be able to see (404 otherwise).
    pub(super) async fn project_team(
        &self,
        standing: &Standing,
        project: ProjectId,
    ) -> Result<TeamId> {
        match self.store.run(move |s| s.project(project)).await? {
            Some(p) if standing.sees_project(&p) => Ok(p.team_id),
            _ => Err(Error::NotFound("project")),
        }
    }

    /// The team of `project` (`None` when there is no such project), read before a write that
    /// places a task in it: a project never changes team, and who may see it is decided in
    /// the write ([`project_team_in`]).
    async fn team_of_project(&self, project: ProjectId) -> Result<Option<TeamId>> {
        let found = self.store.run(move |s| s.project(project)).await?;
        Ok(found.map(|p| p.team_id))
    }

    pub async fn create_task(
        &self,
        auth: &AuthUser,
        input: NewTask,
        idempotency_key: Option<&str>,
    ) -> Result<TaskView> {
        auth.allows(Area::Tasks, Access::Write)?;
        let content = serde_json::json!([
            "task",
            input.title,
            input.description,
            input.status,
            input.priority,
            input.due_date,
            input.labels,
            input.project_id,
            input.assignee_ids,
            input.position
        ]);
        let idem = super::idempotency(auth, idempotency_key, content)?;
        let mut v = Validator::default();
        let title = v.check("title", TaskTitle::parse(&input.title));
        let description = v.check(
            "description",
            parse_task_description(input.description.as_deref().unwrap_or("")),
        );
        let labels = v.check(
            "labels",
            parse_labels(input.labels.as_deref().unwrap_or(&[])),
        );
        v.finish().map_err(Error::Validation)?;
        let project_team = match input.project_id {
            Some(project) => self.team_of_project(project).await?,
            None => None,
        };
        let assignees = unique(&input.assignee_ids.unwrap_or_default());
        let now = Utc::now();
        let mut task = Task {
            id: TaskId::new(),
            title: title.expect("validated"),
            description: description.expect("validated"),
            status: input.status.unwrap_or(TaskStatus::Todo),
            priority: input.priority.unwrap_or_default(),
            due_date: input.due_date,
            labels: labels.expect("validated"),
            project_id: input.project_id,
            team_id: None,
            assignee_ids: assignees,
            created_by: auth.user_id,
            created_at: now,
            updated_at: now,
            version: 1,
            comment_count: 0,
            attachment_count: 0,
            // Unplaced: the store puts it at the bottom of its column.
            rank: Default::default(),
        };
        let top = input.position == Some(Position::Top);
        let me = auth.user_id;
        if !auth.reaches(project_team) {
            return Err(match input.project_id {
                Some(_) => Error::NotFound("project"),
                None => Error::invalid(
                    "project_id",
                    "this token is limited to teams: give a project in one of them",
                ),
            });
        }
        self.store
            .run(move |s| {
                s.write(|tx| {
                    if task.project_id.is_some() {
                        task.team_id = Some(project_team_in(tx, me, project_team)?);
                    }
                    check_assignees_in(tx, me, task.team_id, &task.assignee_ids)?;
                    if top {
                        task.rank = tx
                            .rank_for_move(&task, task.status, Place::Top)?
                            .expect("the top is always a place");
                    }
                    let task = match tx
                        .create_task(&task, idem.as_ref())
                        .map_err(|e| super::create_error(e, "project"))?
                    {
                        Created::New(task) | Created::Replayed(task) => task,
                    };
                    let role = role_in(tx, task.team_id, me)?;
                    Ok(view_as(me, task, role))
                })
            })
            .await
    }

    /// A task the caller can see; 404 for anyone else. One read of the task and the caller's
    /// membership of its team.
    pub async fn task(&self, auth: &AuthUser, id: TaskId) -> Result<TaskView> {
        auth.allows(Area::Tasks, Access::Read)?;
        Ok(self.visible_task(auth, id).await?.0)
    }

    /// A task the caller can see (404 otherwise), and their role in its team.
    pub(super) async fn visible_task(
        &self,
        auth: &AuthUser,
        id: TaskId,
    ) -> Result<(TaskView, Option<TeamRole>)> {
        let me = auth.user_id;
        match self.store.read_task_for(id, me).await? {
            Some((task, role))
                if access::may_see_task(me, &task, role) && auth.reaches(task.team_id) =>
            {
                Ok((view_as(me, task, role), role))
            }
            _ => Err(Error::NotFound("task")),
        }
    }

    pub async fn update_task(
        &self,
        auth: &AuthUser,
        id: TaskId,
        patch: TaskPatch,
        expected_version: Option<u64>,
    ) -> Result<Write<TaskView, TaskView>> {
        auth.allows(Area::Tasks, Access::Write)?;
        let mut v = Validator::default();
        let title = match &patch.title {
            Edit::Set(t) => v.check("title", TaskTitle::parse(t)),
            Edit::Clear => {
                v.push("title", "cannot be cleared");
                None
            }
            Edit::Keep => None,
        };
        if matches!(patch.status, Edit::Clear) {
            v.push("status", "cannot be cleared");
        }
        if matches!(patch.priority, Edit::Clear) {
            v.push("priority", "cannot be cleared");
        }
        let description = match &patch.description {
            Edit::Set(d) => v.check("description", parse_task_description(d)),
            _ => None,
        };
        let labels = match &patch.labels {
            Edit::Set(l) => v.check("labels", parse_labels(l)),
            _ => None,
        };
        v.finish().map_err(Error::Validation)?;
        let target_team = match &patch.project_id {
            Edit::Set(project) => self.team_of_project(*project).await?,
            _ => None,
        };
        let (me, reach) = (auth.user_id, auth.reach());
        // Decided and written in one transaction: permissions and assignee rules hold for the
        // row written, and without If-Match the write applies to the current row.
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let (current, role) = visible_in(tx, id, me, &reach, "task")?;
                    if !access::may_edit_task(me, &current, role) {
                        return Err(Error::Forbidden(
                            "only the task's creator and assignees, and the team's owners and admins, may change it".into(),
                        ));
                    }
                    let moving = !matches!(patch.project_id, Edit::Keep)
                        && project_of(&patch.project_id) != current.project_id;
                    if moving && !access::may_delete_task(me, &current, role) {
                        return Err(Error::Forbidden(
                            "only the task's creator and the team's owners and admins may move it to another project".into(),
                        ));
                    }
                    let placement = match &patch.project_id {
                        Edit::Keep => None,
                        Edit::Clear => Some((None, None)),
                        Edit::Set(p) => Some((Some(*p), Some(project_team_in(tx, me, target_team)?))),
                    };
                    if placement.is_some_and(|(_, team)| !reach.covers(team)) {
                        return Err(Error::NotFound("project"));
                    }
                    let team = placement.map_or(current.team_id, |(_, team)| team);
                    let assignees = match &patch.assignee_ids {
                        Edit::Keep => None,
                        Edit::Clear => Some(vec![]),
                        Edit::Set(list) => Some(unique(list)),
                    };
                    if assignees.is_some() || team != current.team_id {
                        let checked = assignees.as_deref().unwrap_or(&current.assignee_ids);
                        check_assignees_in(tx, me, team, checked)?;
                    }
                    if expected_version.is_some_and(|v| v != current.version) {
                        return Ok(Write::Stale(view_as(me, current, role)));
                    }
                    let apply = |task: &mut Task| {
                        apply_patch(task, patch, title, description, labels, placement, assignees);
                        Ok(())
                    };
                    let task = tx
                        .update_task(id, me, Utc::now(), apply)
                        .map_err(store_error)?;
                    let role = if task.team_id == current.team_id {
                        role
                    } else {
                        role_in(tx, task.team_id, me)?
                    };
                    Ok(Write::Done(view_as(me, task, role)))
                })
            })
            .await
    }

    pub async fn delete_task(
        &self,
        auth: &AuthUser,
        id: TaskId,
        expected_version: Option<u64>,
    ) -> Result<Write<(), TaskView>> {
        auth.allows(Area::Tasks, Access::Write)?;
        let (me, reach) = (auth.user_id, auth.reach());
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let (task, role) = visible_in(tx, id, me, &reach, "task")?;
                    if !access::may_delete_task(me, &task, role) {
                        return Err(Error::Forbidden(
                            "only the task's creator and the team's owners and admins may delete it"
                                .into(),
                        ));
                    }
                    if expected_version.is_some_and(|v| v != task.version) {
                        return Ok(Write::Stale(view_as(me, task, role)));
                    }
                    tx.delete_task(id, me, Utc::now()).map_err(store_error)?;
                    Ok(Write::Done(()))
                })
            })
            .await
    }

    /// Tasks in the caller's scope (default: assigned to them), narrowed by the filters.
    pub async fn tasks(&self, auth: &AuthUser, query: TaskQuery) -> Result<TaskList> {
        auth.allows(Area::Tasks, Access::Read)?;
        let mut v = Validator::default();
        let sort = query.sort;
        let after = query
            .cursor
            .as_deref()
            .and_then(|c| v.check("cursor", ListPosition::parse(c, sort)));
        let limit = v
            .check("limit", PageLimit::parse(query.limit))
            .unwrap_or_default();
        let statuses = query
            .status
            .as_deref()
            .and_then(|s| v.check("status", parse_statuses(s)))
            .unwrap_or_default();
        v.finish().map_err(Error::Validation)?;
        let standing = self.standing(auth).await?;
        if let Some(project) = query.project_id {
            self.project_team(&standing, project).await?;
        }
        let me = standing.user;
        let sources: Vec<TaskIndex> = match (query.scope, query.project_id, query.assignee) {
            // Newest or oldest first with a status filter: exactly the tasks of those
            // statuses, not the whole project filtered.
            (Scope::All, Some(project), _) if sort == TaskSort::Created && !statuses.is_empty() => {
                statuses
                    .iter()
                    .map(|s| TaskIndex::ProjectStatus(project, *s))
                    .collect()
            }
            (Scope::All, Some(project), _) => vec![TaskIndex::Project(project)],
            (Scope::All, None, Some(assignee)) => vec![TaskIndex::Assignee(assignee)],
            (Scope::All, None, None) => standing
                .team_ids()
                .map(TaskIndex::Team)
                .chain([TaskIndex::Creator(me), TaskIndex::Assignee(me)])
                .collect(),
            (Scope::Assigned, ..) => vec![TaskIndex::Assignee(me)],
            (Scope::Created, ..) => vec![TaskIndex::Creator(me)],
        };
        let scope = query.scope;
        let reach = auth.reach();
        let viewer = standing.clone();
        let filter = TaskFilter {
            statuses,
            project: query.project_id,
            assignee: query.assignee,
            label: query.label.clone(),
        };
        let keep = move |task: &Task| {
            standing.sees_task(task)
                && reach.covers(task.team_id)
                && match scope {
                    Scope::Assigned => task.is_assigned_to(me),
                    Scope::Created => task.created_by == me,
                    Scope::All => true,
                }
                && filter.matches(task)
                && query.priority.is_none_or(|p| task.priority == p)
                && query
                    .due_before
                    .is_none_or(|d| task.due_date.is_some_and(|due| due < d))
                && query
                    .due_after
                    .is_none_or(|d| task.due_date.is_some_and(|due| due > d))
        };
        let order = TaskOrder {
            sort,
            descending: query.descending,
        };
        let scan = self
            .store
            .run(move |s| s.scan_tasks(&sources, order, after, limit.get(), SCAN_BUDGET, keep))
            .await?;
        Ok(TaskList {
            items: scan.tasks.into_iter().map(|t| view(&viewer, t)).collect(),
            next_cursor: scan.next_after.map(|at| at.encode(sort)),
        })
    }

    /// A task's history, oldest first.
    pub async fn task_activity(
        &self,
        auth: &AuthUser,
        id: TaskId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Change>> {
        let mut v = Validator::default();
        let after = cursor
            .and_then(|c| v.check("cursor", Cursor::parse(c)))
            .map(|c| c.key() as u64);
        let limit = v
            .check("limit", PageLimit::parse(limit))
            .unwrap_or_default();
        v.finish().map_err(Error::Validation)?;
        self.task(auth, id).await?;
        let entity = id.as_u128();
        let rows = self
            .store
            .run(move |s| s.changes_of_entity(entity, after, limit.get() + 1))
            .await?;
        Ok(Page::from_overfetch(rows, limit, |c| u128::from(c.seq)))
    }
}
