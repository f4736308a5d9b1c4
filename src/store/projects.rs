//! Projects and the per-team project index.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable};

use super::codec::{encode, read_row};
use super::tables::*;
use super::tx::Tx;
use super::{Created, Idempotency, Store, StoreError};
use crate::domain::change::{ChangeAction, EntityKind, FieldChange, NewChange};
use crate::domain::project::{Project, ProjectStatus};
use crate::domain::{ProjectId, TeamId, UserId};

fn project_change(
    project: &Project,
    at: DateTime<Utc>,
    actor: UserId,
    action: ChangeAction,
    fields: Vec<FieldChange>,
) -> NewChange {
    NewChange {
        at,
        actor,
        entity: EntityKind::Project,
        entity_id: project.id.as_uuid(),
        team_id: Some(project.team_id),
        project_id: Some(project.id),
        audience: vec![],
        previous_team_id: None,
        previous_project_id: None,
        task_id: None,
        action,
        fields,
    }
}

/// A project's `Created` entry.
pub(super) fn project_created(project: &Project) -> NewChange {
    let fields = vec![
        FieldChange::set("name", &project.name),
        FieldChange::set("description", &project.description),
        FieldChange::set("status", &project.status),
    ];
    project_change(
        project,
        project.created_at,
        project.created_by,
        ChangeAction::Created,
        fields,
    )
}

fn diff(before: &Project, after: &Project) -> Vec<FieldChange> {
    [
        FieldChange::of("name", &before.name, &after.name),
        FieldChange::of("description", &before.description, &after.description),
        FieldChange::of("status", &before.status, &after.status),
    ]
    .into_iter()
    .flatten()
    .collect()
}

impl Tx<'_> {
    /// A project, as this transaction sees it.
    pub fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        read_row(&self.txn().open_table(PROJECTS)?, "projects", id.as_u128())
    }

    /// Creates a project (or replays an earlier create with the same idempotency key);
    /// `NotFound` when its team is gone. Whether its creator may create it is the caller's to
    /// decide, on roles read through this `tx`.
    pub fn create_project(
        &self,
        project: &Project,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created<Project>, StoreError> {
        if let Some(first) =
            self.replayed(idempotency, project.created_at, |tx, first: &Project| {
                Ok(tx.project(first.id)?.is_some())
            })?
        {
            // Committed empty, so the answer waits for the flush that covers the first write.
            return Ok(Created::Replayed(first));
        }
        if self.team(project.team_id)?.is_none() {
            return Err(StoreError::NotFound);
        }
        let mut project = project.clone();
        project.id = ProjectId::from_u128(self.next_id(PROJECTS, project.id.as_u128())?);
        self.txn()
            .open_table(PROJECTS)?
            .insert(project.id.as_u128(), encode(&project)?.as_slice())?;
        self.txn()
            .open_table(PROJECTS_BY_TEAM)?
            .insert((project.team_id.as_u128(), project.id.as_u128()), ())?;
        self.append(project_created(&project))?;
        self.remember(idempotency, project.created_at, &project)?;
        Ok(Created::New(project))
    }

    /// Applies `change` to a project, if it is still at `expected_version` (when given;
    /// `Stale` otherwise, before anything is written). `change` sees the current row and may
    /// refuse. Whether `actor` may change it is the caller's to decide, on what this `tx`
    /// reads.
    pub fn update_project(
        &self,
        id: ProjectId,
        expected_version: Option<u64>,
        actor: UserId,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut Project) -> Result<(), StoreError>,
    ) -> Result<Project, StoreError> {
        let mut rows = self.txn().open_table(PROJECTS)?;
        let Some(mut project): Option<Project> = read_row(&rows, "projects", id.as_u128())? else {
            return Err(StoreError::NotFound);
        };
        if expected_version.is_some_and(|v| v != project.version) {
            return Err(StoreError::Stale);
        }
        let before = project.clone();
        change(&mut project)?;
        let fields = diff(&before, &project);
        if fields.is_empty() {
            // Nothing changed; committed empty so the answer waits until what it shows is
            // durable.
            return Ok(before);
        }
        project.version += 1;
        project.updated_at = now;
        rows.insert(id.as_u128(), encode(&project)?.as_slice())?;
        drop(rows);
        self.append(project_change(
            &project,
            now,
            actor,
            ChangeAction::Updated,
            fields,
        ))?;
        Ok(project)
    }

    /// Deletes a project with its tasks, if it is still at `expected_version` (when given;
    /// `Stale` otherwise, before anything is written). Whether `actor` may delete it is the
    /// caller's to decide, on what this `tx` reads.
    pub fn delete_project(
        &self,
        id: ProjectId,
        expected_version: Option<u64>,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let project = {
            let mut rows = self.txn().open_table(PROJECTS)?;
            let Some(project): Option<Project> = read_row(&rows, "projects", id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            if expected_version.is_some_and(|v| v != project.version) {
                return Err(StoreError::Stale);
            }
            rows.remove(id.as_u128())?;
            project
        };
        self.txn()
            .open_table(PROJECTS_BY_TEAM)?
            .remove((project.team_id.as_u128(), id.as_u128()))?;
        self.delete_tasks_of_project(id, actor, now)?;
        self.append(project_change(
            &project,
            now,
            actor,
            ChangeAction::Deleted,
            vec![],
        ))?;
        Ok(())
    }

    /// Deletes every project of a team (its deletion), with a change-log entry each.
    pub(super) fn delete_projects_of_team(
        &self,
        team: TeamId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut deleted = Vec::new();
        {
            let mut by_team = self.txn().open_table(PROJECTS_BY_TEAM)?;
            let mut rows = self.txn().open_table(PROJECTS)?;
            let t = team.as_u128();
            let ids: Vec<u128> = by_team
                .range((t, 0)..=(t, u128::MAX))?
                .map(|e| e.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            for id in ids {
                deleted.extend(read_row::<Project>(&rows, "projects", id)?);
                rows.remove(id)?;
                by_team.remove((t, id))?;
            }
        }
        for project in &deleted {
            self.append(project_change(
                project,
                now,
                actor,
                ChangeAction::Deleted,
                vec![],
            ))?;
        }
        Ok(())
    }

    /// Refuses a write into a project that is missing or archived (checked inside the write).
    pub(super) fn require_active_project(
        &self,
        project: Option<ProjectId>,
    ) -> Result<(), StoreError> {
        let Some(project) = project else {
            return Ok(());
        };
        let found: Option<Project> = read_row(
            &self.txn().open_table(PROJECTS)?,
            "projects",
            project.as_u128(),
        )?;
        match found {
            None => Err(StoreError::NotFound),
            Some(p) if p.status == ProjectStatus::Archived => Err(StoreError::Archived),
            Some(_) => Ok(()),
        }
    }
}

impl Store {
    pub fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        let txn = self.db().begin_read()?;
        read_row(&txn.open_table(PROJECTS)?, "projects", id.as_u128())
    }

    /// Up to `limit` projects of the given teams with ids after `after`, in id (creation)
    /// order: a merge of one bounded range per team.
    pub fn projects_of_teams(
        &self,
        teams: &[TeamId],
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<Project>, StoreError> {
        let txn = self.db().begin_read()?;
        let by_team = txn.open_table(PROJECTS_BY_TEAM)?;
        let start = match after {
            Some(u128::MAX) => return Ok(vec![]),
            Some(after) => after + 1,
            None => 0,
        };
        let mut ids = Vec::new();
        for team in teams {
            let t = team.as_u128();
            for entry in by_team.range((t, start)..=(t, u128::MAX))?.take(limit) {
                ids.push(entry?.0.value().1);
            }
        }
        ids.sort_unstable();
        ids.truncate(limit);
        let rows = txn.open_table(PROJECTS)?;
        let mut page = Vec::with_capacity(ids.len());
        for id in ids {
            page.extend(read_row::<Project>(&rows, "projects", id)?);
        }
        Ok(page)
    }
}

/// A fixture for unit tests: `n` new projects of `team`, made by `owner`, oldest first.
#[cfg(test)]
pub(crate) fn projects_in(store: &Store, team: TeamId, owner: UserId, n: usize) -> Vec<ProjectId> {
    use crate::domain::project::ProjectName;
    (0..n)
        .map(|i| {
            let now = Utc::now();
            let project = Project {
                id: ProjectId::new(),
                team_id: team,
                name: ProjectName::parse(&format!("P{i}")).unwrap(),
                description: String::new(),
                status: ProjectStatus::Active,
                created_by: owner,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            store
                .write(|tx| tx.create_project(&project, None).map(|_| ()))
                .unwrap();
            project.id
        })
        .collect()
}
