//! Team rows. A team's members, invitations, projects and tasks live in their own files; deleting
//! a team cascades to them through the [`Tx`].

use chrono::{DateTime, Utc};

use super::codec::{encode, read_row};
use super::tables::TEAMS;
use super::tx::{Rx, Tx};
use super::{Created, Idempotency, Store, StoreError};
use crate::domain::change::{ChangeAction, EntityKind, FieldChange};
use crate::domain::team::{Membership, Team, TeamName};
use crate::domain::{TeamId, UserId};

/// The fields a team's `Created` entry records.
pub(super) fn team_creation_fields(team: &Team) -> Vec<FieldChange> {
    vec![
        FieldChange::set("name", &team.name),
        FieldChange::set("description", &team.description),
    ]
}

/// Fails with `Stale` when the caller's expected version is not the current one.
fn check_version(current: u64, expected: Option<u64>) -> Result<(), StoreError> {
    match expected {
        Some(expected) if expected != current => Err(StoreError::Stale),
        _ => Ok(()),
    }
}

/// What a profile of changes to a team looks like.
#[derive(Debug, Default)]
pub struct TeamChanges {
    pub name: Option<TeamName>,
    pub description: Option<String>,
}

impl Tx<'_> {
    /// A team, as this transaction sees it.
    pub fn team(&self, id: TeamId) -> Result<Option<Team>, StoreError> {
        read_row(&self.txn().open_table(TEAMS)?, "teams", id.as_u128())
    }

    /// A team's name, for notifications ("" when the team is gone).
    pub fn team_name(&self, id: TeamId) -> Result<String, StoreError> {
        Ok(self
            .team(id)?
            .map(|t| t.name.as_str().to_string())
            .unwrap_or_default())
    }
}

impl Rx {
    pub(super) fn team(&self, id: TeamId) -> Result<Option<Team>, StoreError> {
        read_row(&self.txn().open_table(TEAMS)?, "teams", id.as_u128())
    }
}

impl Store {
    /// Creates a team with its creator as owner (or replays an earlier create with the same
    /// idempotency key).
    pub fn create_team(
        &self,
        team: &Team,
        owner: &Membership,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created<Team>, StoreError> {
        self.write(|tx| {
            if let Some(first) = tx.replayed(idempotency, team.created_at, |tx, first: &Team| {
                Ok(tx.team(first.id)?.is_some())
            })? {
                // Committed empty, so the answer waits for the flush that covers the first write.
                return Ok(Created::Replayed(first));
            }
            let (mut team, mut owner) = (team.clone(), owner.clone());
            team.id = TeamId::from_u128(tx.next_id(TEAMS, team.id.as_u128())?);
            owner.team_id = team.id;
            tx.txn()
                .open_table(TEAMS)?
                .insert(team.id.as_u128(), encode(&team)?.as_slice())?;
            tx.insert_membership(&owner)?;
            let (at, actor, id) = (team.created_at, team.created_by, team.id);
            // The owner's membership first: whoever follows the log sees the team from its
            // creation on.
            let role = vec![FieldChange::set("role", &owner.role)];
            let membership = actor.as_uuid();
            tx.append_in_team(
                at,
                actor,
                EntityKind::Membership,
                membership,
                id,
                ChangeAction::Created,
                role,
            )?;
            let fields = team_creation_fields(&team);
            tx.append_in_team(
                at,
                actor,
                EntityKind::Team,
                id.as_uuid(),
                id,
                ChangeAction::Created,
                fields,
            )?;
            tx.remember(idempotency, team.created_at, &team)?;
            Ok(Created::New(team))
        })
    }

    /// A team and the caller's membership of it, in one snapshot.
    pub fn team_for(
        &self,
        team: TeamId,
        user: UserId,
    ) -> Result<Option<(Team, Option<Membership>)>, StoreError> {
        let rx = self.read()?;
        let Some(found) = rx.team(team)? else {
            return Ok(None);
        };
        Ok(Some((found, rx.membership(team, user)?)))
    }
}

impl Tx<'_> {
    /// Renames or re-describes a team, if it is still at `expected_version` (when given;
    /// `Stale` otherwise, before anything is written). Whether `actor` may do it is the
    /// caller's to decide, on roles read through this `tx`.
    pub fn update_team(
        &self,
        id: TeamId,
        expected_version: Option<u64>,
        changes: TeamChanges,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<Team, StoreError> {
        let mut teams = self.txn().open_table(TEAMS)?;
        let Some(mut team): Option<Team> = read_row(&teams, "teams", id.as_u128())? else {
            return Err(StoreError::NotFound);
        };
        check_version(team.version, expected_version)?;
        let before = team.clone();
        if let Some(name) = changes.name {
            team.name = name;
        }
        if let Some(description) = changes.description {
            team.description = description;
        }
        let fields: Vec<FieldChange> = [
            FieldChange::of("name", &before.name, &team.name),
            FieldChange::of("description", &before.description, &team.description),
        ]
        .into_iter()
        .flatten()
        .collect();
        if fields.is_empty() {
            return Ok(team);
        }
        team.version += 1;
        team.updated_at = now;
        teams.insert(id.as_u128(), encode(&team)?.as_slice())?;
        drop(teams);
        self.append_in_team(
            now,
            actor,
            EntityKind::Team,
            id.as_uuid(),
            id,
            ChangeAction::Updated,
            fields,
        )?;
        Ok(team)
    }

    /// Deletes a team with its invitations, tasks, projects and memberships, if it is still at
    /// `expected_version` (when given; `Stale` otherwise, before anything is written). Whether
    /// `actor` may do it is the caller's to decide, on roles read through this `tx`.
    pub fn delete_team(
        &self,
        id: TeamId,
        expected_version: Option<u64>,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        {
            let mut teams = self.txn().open_table(TEAMS)?;
            let Some(team): Option<Team> = read_row(&teams, "teams", id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            check_version(team.version, expected_version)?;
            teams.remove(id.as_u128())?;
        }
        self.delete_invitations_of_team(id, actor, now)?;
        self.delete_tasks_of_team(id, actor, now)?;
        self.delete_projects_of_team(id, actor, now)?;
        self.append_in_team(
            now,
            actor,
            EntityKind::Team,
            id.as_uuid(),
            id,
            ChangeAction::Deleted,
            vec![],
        )?;
        // The memberships go last, so whoever follows the log as a member sees the whole
        // cascade before they stop seeing the team.
        self.delete_memberships_of_team(id, actor, now)
    }
}

/// A fixture for unit tests here and in the service: a team "T" created in `store` by a new
/// user, its owner, with the membership that makes them so.
#[cfg(test)]
pub(crate) fn owned_team(store: &Store) -> (Team, Membership) {
    use crate::domain::team::TeamRole;
    let (owner, now) = (UserId::new(), Utc::now());
    let team = Team {
        id: TeamId::new(),
        name: TeamName::parse("T").unwrap(),
        description: String::new(),
        created_by: owner,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let membership = Membership {
        team_id: team.id,
        user_id: owner,
        role: TeamRole::Owner,
        joined_at: now,
    };
    store.create_team(&team, &membership, None).unwrap();
    (team, membership)
}
