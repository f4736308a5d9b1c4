//! Tasks (DESIGN.md section 3): create, read, list, update, move, delete. Who may see, edit,
//! delete and assign is `domain::access`'s to say; this module loads the facts it needs (the
//! caller's [`Standing`], the assignees' teams) and asks it.

use chrono::{DateTime, Utc};

use super::teams::Write;
use super::{AuthUser, Error, Result, Service};
use crate::domain::access::{self, Standing};
use crate::domain::change::Change;
use crate::domain::page::Page;
use crate::domain::task::{
    MAX_ASSIGNEES, Priority, Task, TaskFilter, TaskStatus, TaskTitle, parse_labels,
    parse_task_description,
};
use crate::domain::team::TeamRole;
use crate::domain::{Cursor, PageLimit, ProjectId, TaskId, TeamId, UserId, Validator};
use crate::store::{Created, SCAN_BUDGET, StoreError, TaskIndex};

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
    /// Newest first.
    pub descending: bool,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
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

fn store_error(e: StoreError) -> Error {
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

impl Service {
    /// The caller's teams and roles, read once per request.
    pub(super) async fn standing(&self, auth: &AuthUser) -> Result<Standing> {
        let user = auth.user_id;
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
    async fn project_team(&self, standing: &Standing, project: ProjectId) -> Result<TeamId> {
        match self.store.run(move |s| s.project(project)).await? {
            Some(p) if standing.sees_project(&p) => Ok(p.team_id),
            _ => Err(Error::NotFound("project")),
        }
    }

    /// Checks that every assignee may be assigned: a member of `team`, or for a personal task
    /// the caller or someone sharing a team with the caller.
    async fn check_assignees(
        &self,
        standing: &Standing,
        team: Option<TeamId>,
        assignees: &[UserId],
    ) -> Result<()> {
        if assignees.len() > MAX_ASSIGNEES {
            return Err(Error::invalid(
                "assignee_ids",
                format!("at most {MAX_ASSIGNEES} assignees"),
            ));
        }
        let (standing, people) = (standing.clone(), assignees.to_vec());
        let ok = self
            .store
            .run::<_, StoreError, _>(move |s| {
                for user in people {
                    // Assigning oneself to a personal task needs no read.
                    let theirs = if team.is_none() && user == standing.user {
                        vec![]
                    } else {
                        s.team_ids_of_user(user)?
                    };
                    if !standing.may_assign(team, user, &theirs) {
                        return Ok(false);
                    }
                }
                Ok(true)
            })
            .await?;
        if ok {
            Ok(())
        } else if team.is_some() {
            Err(Error::invalid(
                "assignee_ids",
                "every assignee must be a member of the project's team",
            ))
        } else {
            Err(Error::invalid(
                "assignee_ids",
                "assignees of a personal task must be you or share a team with you",
            ))
        }
    }

    pub async fn create_task(
        &self,
        auth: &AuthUser,
        input: NewTask,
        idempotency_key: Option<&str>,
    ) -> Result<TaskView> {
        let content = serde_json::json!([
            "task",
            input.title,
            input.description,
            input.status,
            input.priority,
            input.due_date,
            input.labels,
            input.project_id,
            input.assignee_ids
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
        let standing = self.standing(auth).await?;
        let team = match input.project_id {
            Some(project) => Some(self.project_team(&standing, project).await?),
            None => None,
        };
        let assignees = unique(&input.assignee_ids.unwrap_or_default());
        self.check_assignees(&standing, team, &assignees).await?;
        let now = Utc::now();
        let task = Task {
            id: TaskId::new(),
            title: title.expect("validated"),
            description: description.expect("validated"),
            status: input.status.unwrap_or(TaskStatus::Todo),
            priority: input.priority.unwrap_or_default(),
            due_date: input.due_date,
            labels: labels.expect("validated"),
            project_id: input.project_id,
            team_id: team,
            assignee_ids: assignees,
            created_by: auth.user_id,
            created_at: now,
            updated_at: now,
            version: 1,
            comment_count: 0,
            attachment_count: 0,
        };
        let created = self
            .store
            .run(move |s| s.create_task(&task, idem.as_ref()))
            .await
            .map_err(|e| super::create_error(e, "project"))?;
        let task = match created {
            Created::New(task) | Created::Replayed(task) => task,
        };
        Ok(view(&standing, task))
    }

    /// A task the caller can see; 404 for anyone else. One read of the task and the caller's
    /// membership of its team.
    pub async fn task(&self, auth: &AuthUser, id: TaskId) -> Result<TaskView> {
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
            Some((task, role)) if access::may_see_task(me, &task, role) => {
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
        let standing = self.standing(auth).await?;
        // Without If-Match the write is still pinned to the version the checks below read, and
        // retried if it moved: permissions and assignee rules always hold for the row written.
        let pinned = expected_version.is_none();
        for attempt in 0.. {
            let current = self.task(auth, id).await?;
            if !current.can_edit {
                return Err(Error::Forbidden(
                    "only the task's creator and assignees, and the team's owners and admins, may change it".into(),
                ));
            }
            let moving = !matches!(patch.project_id, Edit::Keep)
                && project_of(&patch.project_id) != current.task.project_id;
            if moving && !current.can_delete {
                return Err(Error::Forbidden(
                    "only the task's creator and the team's owners and admins may move it to another project".into(),
                ));
            }
            let placement = match &patch.project_id {
                Edit::Keep => None,
                Edit::Clear => Some((None, None)),
                Edit::Set(p) => Some((Some(*p), Some(self.project_team(&standing, *p).await?))),
            };
            let team = placement.map_or(current.task.team_id, |(_, team)| team);
            let assignees = match &patch.assignee_ids {
                Edit::Keep => None,
                Edit::Clear => Some(vec![]),
                Edit::Set(list) => Some(unique(list)),
            };
            if assignees.is_some() || team != current.task.team_id {
                let checked = assignees
                    .clone()
                    .unwrap_or_else(|| current.task.assignee_ids.clone());
                self.check_assignees(&standing, team, &checked).await?;
            }
            let (patch, title, description, labels) = (
                patch.clone(),
                title.clone(),
                description.clone(),
                labels.clone(),
            );
            let apply = move |task: &mut Task| {
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
                // Only what the client sent: a concurrent change to the rest is kept.
                if let Some((project, team)) = placement {
                    task.project_id = project;
                    task.team_id = team;
                }
                if let Some(assignees) = assignees {
                    task.assignee_ids = assignees;
                }
                Ok(())
            };
            let (actor, expected) = (
                auth.user_id,
                expected_version.or(Some(current.task.version)),
            );
            match self
                .store
                .run(move |s| s.update_task(id, expected, actor, Utc::now(), apply))
                .await
            {
                Ok(task) => return Ok(Write::Done(view(&standing, task))),
                Err(StoreError::Stale) if pinned && attempt < 3 => continue,
                Err(StoreError::Stale) => return Ok(Write::Stale(self.task(auth, id).await?)),
                Err(e) => return Err(store_error(e)),
            }
        }
        unreachable!("the loop returns")
    }

    pub async fn delete_task(
        &self,
        auth: &AuthUser,
        id: TaskId,
        expected_version: Option<u64>,
    ) -> Result<Write<(), TaskView>> {
        let current = self.task(auth, id).await?;
        if !current.can_delete {
            return Err(Error::Forbidden(
                "only the task's creator and the team's owners and admins may delete it".into(),
            ));
        }
        let actor = auth.user_id;
        match self
            .store
            .run(move |s| s.delete_task(id, expected_version, actor, Utc::now()))
            .await
        {
            Ok(()) => Ok(Write::Done(())),
            Err(StoreError::Stale) => Ok(Write::Stale(self.task(auth, id).await?)),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Tasks in the caller's scope (default: assigned to them), narrowed by the filters.
    pub async fn tasks(&self, auth: &AuthUser, query: TaskQuery) -> Result<Page<TaskView>> {
        let mut v = Validator::default();
        let (after, limit) = super::page_args(query.cursor.as_deref(), query.limit, &mut v);
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
        let viewer = standing.clone();
        let filter = TaskFilter {
            statuses,
            project: query.project_id,
            assignee: query.assignee,
            label: query.label.clone(),
        };
        let keep = move |task: &Task| {
            standing.sees_task(task)
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
        let descending = query.descending;
        let scan = self
            .store
            .run(move |s| s.scan_tasks(&sources, after, descending, limit.get(), SCAN_BUDGET, keep))
            .await?;
        Ok(Page {
            items: scan.tasks.into_iter().map(|t| view(&viewer, t)).collect(),
            next_cursor: scan.next_after.map(Cursor::after),
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
