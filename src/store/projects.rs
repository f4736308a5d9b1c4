//! Projects and the per-team project index.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::changes::append;
use super::codec::{encode, read_row};
use super::tables::*;
use super::{Created, Idempotency, Store, StoreError};
use crate::domain::change::{ChangeAction, EntityKind, FieldChange, NewChange};
use crate::domain::project::Project;
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

/// Deletes every project of a team inside the caller's transaction (team deletion).
pub(super) fn delete_projects_of_team(
    txn: &WriteTransaction,
    team: TeamId,
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut deleted = Vec::new();
    {
        let mut by_team = txn.open_table(PROJECTS_BY_TEAM)?;
        let mut rows = txn.open_table(PROJECTS)?;
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
        append(
            txn,
            project_change(project, now, actor, ChangeAction::Deleted, vec![]),
        )?;
    }
    Ok(())
}

impl Store {
    /// Creates a project (or replays an earlier create with the same idempotency key).
    pub fn create_project(
        &self,
        project: &Project,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created<Project>, StoreError> {
        let txn = self.begin_write()?;
        if let Some(first) =
            super::idempotency::check::<Project>(&txn, idempotency, project.created_at)?
        {
            // Committed empty, so the answer waits for the flush that covers the first write.
            self.commit(txn)?;
            return Ok(Created::Replayed(first));
        }
        if txn
            .open_table(TEAMS)?
            .get(project.team_id.as_u128())?
            .is_none()
        {
            return Err(StoreError::NotFound);
        }
        let mut project = project.clone();
        project.id = ProjectId::from_u128(super::next_id(&txn, PROJECTS, project.id.as_u128())?);
        let project = &project;
        txn.open_table(PROJECTS)?
            .insert(project.id.as_u128(), encode(project)?.as_slice())?;
        txn.open_table(PROJECTS_BY_TEAM)?
            .insert((project.team_id.as_u128(), project.id.as_u128()), ())?;
        append(&txn, project_created(project))?;
        super::idempotency::record(&txn, idempotency, project.created_at, project)?;
        self.commit(txn)?;
        Ok(Created::New(project.clone()))
    }

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

    /// Applies `change` to a project inside one transaction, if it is still at
    /// `expected_version` (when given). `change` sees the current row and may refuse.
    pub fn update_project(
        &self,
        id: ProjectId,
        expected_version: Option<u64>,
        actor: UserId,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut Project) -> Result<(), StoreError>,
    ) -> Result<Project, StoreError> {
        let txn = self.begin_write()?;
        let mut rows = txn.open_table(PROJECTS)?;
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
            // Nothing changed; committed empty so the answer waits until what it shows is durable.
            drop(rows);
            self.commit(txn)?;
            return Ok(before);
        }
        project.version += 1;
        project.updated_at = now;
        rows.insert(id.as_u128(), encode(&project)?.as_slice())?;
        drop(rows);
        append(
            &txn,
            project_change(&project, now, actor, ChangeAction::Updated, fields),
        )?;
        self.commit(txn)?;
        Ok(project)
    }

    /// Deletes a project, if it is still at `expected_version` (when given).
    pub fn delete_project(
        &self,
        id: ProjectId,
        expected_version: Option<u64>,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        let project = {
            let mut rows = txn.open_table(PROJECTS)?;
            let Some(project): Option<Project> = read_row(&rows, "projects", id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            if expected_version.is_some_and(|v| v != project.version) {
                return Err(StoreError::Stale);
            }
            rows.remove(id.as_u128())?;
            project
        };
        txn.open_table(PROJECTS_BY_TEAM)?
            .remove((project.team_id.as_u128(), id.as_u128()))?;
        super::tasks::delete_tasks_in(&txn, super::TaskIndex::Project(id), actor, now)?;
        append(
            &txn,
            project_change(&project, now, actor, ChangeAction::Deleted, vec![]),
        )?;
        self.commit(txn)?;
        Ok(())
    }

    /// The ids of every team `user` belongs to (bounded by that user's memberships).
    pub fn team_ids_of_user(&self, user: UserId) -> Result<Vec<TeamId>, StoreError> {
        teams_of(&self.db().begin_read()?, user)
    }
}

/// The ids of every team `user` belongs to, read from an open transaction.
pub(super) fn teams_of(
    txn: &redb::ReadTransaction,
    user: UserId,
) -> Result<Vec<TeamId>, StoreError> {
    let u = user.as_u128();
    let mut teams = Vec::new();
    for entry in txn
        .open_table(MEMBERSHIPS_BY_USER)?
        .range((u, 0)..=(u, u128::MAX))?
    {
        teams.push(TeamId::from_u128(entry?.0.value().1));
    }
    Ok(teams)
}
