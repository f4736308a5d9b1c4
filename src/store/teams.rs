//! Teams, memberships and invitations. Every mutation appends its change-log entries in the
//! same transaction.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use uuid::Uuid;

use super::changes::append;
use super::codec::{decode, encode, read_row};
use super::notifications::{self, Cause};
use super::tables::*;
use super::{Created, Idempotency, Store, StoreError};
use crate::domain::change::{ChangeAction, EntityKind, FieldChange, NewChange};
use crate::domain::team::{Invitation, InvitationStatus, Membership, Team, TeamName, TeamRole};
use crate::domain::{Email, InvitationId, TeamId, User, UserId};

pub(super) fn change(
    at: DateTime<Utc>,
    actor: UserId,
    entity: EntityKind,
    entity_id: Uuid,
    team: TeamId,
    action: ChangeAction,
    fields: Vec<FieldChange>,
) -> NewChange {
    NewChange {
        at,
        actor,
        entity,
        entity_id,
        team_id: Some(team),
        project_id: None,
        audience: vec![],
        previous_team_id: None,
        previous_project_id: None,
        task_id: None,
        action,
        fields,
    }
}

/// The fields a team's `Created` entry records.
pub(super) fn team_creation_fields(team: &Team) -> Vec<FieldChange> {
    vec![
        FieldChange::set("name", &team.name),
        FieldChange::set("description", &team.description),
    ]
}

pub(super) fn read_membership(
    members: &impl ReadableTable<(u128, u128), &'static [u8]>,
    team: TeamId,
    user: UserId,
) -> Result<Option<Membership>, StoreError> {
    members
        .get((team.as_u128(), user.as_u128()))?
        .map(|row| decode("team_members", row.value()))
        .transpose()
}

/// How many owners a team has (a range over that team's members only).
fn owner_count(
    members: &impl ReadableTable<(u128, u128), &'static [u8]>,
    team: TeamId,
) -> Result<usize, StoreError> {
    let mut owners = 0;
    for entry in members.range((team.as_u128(), 0)..=(team.as_u128(), u128::MAX))? {
        let membership: Membership = decode("team_members", entry?.1.value())?;
        owners += usize::from(membership.role == TeamRole::Owner);
    }
    Ok(owners)
}

pub(super) fn insert_membership(
    txn: &WriteTransaction,
    membership: &Membership,
) -> Result<(), StoreError> {
    super::read_cache::mark_members_changed();
    let (team, user) = (membership.team_id.as_u128(), membership.user_id.as_u128());
    txn.open_table(TEAM_MEMBERS)?
        .insert((team, user), encode(membership)?.as_slice())?;
    txn.open_table(MEMBERSHIPS_BY_USER)?
        .insert((user, team), ())?;
    Ok(())
}

fn remove_membership(txn: &WriteTransaction, team: TeamId, user: UserId) -> Result<(), StoreError> {
    super::read_cache::mark_members_changed();
    txn.open_table(TEAM_MEMBERS)?
        .remove((team.as_u128(), user.as_u128()))?;
    txn.open_table(MEMBERSHIPS_BY_USER)?
        .remove((user.as_u128(), team.as_u128()))?;
    Ok(())
}

/// The roles a permission decision about a member was made on: the acting member's and the
/// target's. A write that relies on it fails with `Superseded` when either changed since, so the
/// decision is made again on fresh roles instead of on a superseded snapshot.
#[derive(Debug, Clone, Copy)]
pub struct RolesChecked {
    pub actor: TeamRole,
    pub target: TeamRole,
}

impl RolesChecked {
    fn confirm(
        self,
        members: &impl ReadableTable<(u128, u128), &'static [u8]>,
        team: TeamId,
        actor: UserId,
        target: TeamRole,
    ) -> Result<(), StoreError> {
        let actor = read_membership(members, team, actor)?.map(|m| m.role);
        if actor == Some(self.actor) && target == self.target {
            Ok(())
        } else {
            Err(StoreError::Superseded)
        }
    }
}

/// A team's name, for notifications ("" when the team is gone).
fn team_name(txn: &WriteTransaction, team: TeamId) -> Result<String, StoreError> {
    let found: Option<Team> = read_row(&txn.open_table(TEAMS)?, "teams", team.as_u128())?;
    Ok(found
        .map(|t| t.name.as_str().to_string())
        .unwrap_or_default())
}

/// Fails with `Stale` when the caller's expected version is not the current one.
fn check_version(current: u64, expected: Option<u64>) -> Result<(), StoreError> {
    match expected {
        Some(expected) if expected != current => Err(StoreError::Stale),
        _ => Ok(()),
    }
}

/// Ids after `after` in the second half of `(prefix, id)` keys, up to `limit`.
pub(super) fn ids_after<V: redb::Value + 'static>(
    table: &impl ReadableTable<(u128, u128), V>,
    prefix: u128,
    after: Option<u128>,
    limit: usize,
) -> Result<Vec<u128>, StoreError> {
    let start = match after {
        Some(u128::MAX) => return Ok(vec![]),
        Some(after) => after + 1,
        None => 0,
    };
    let mut ids = Vec::new();
    for entry in table
        .range((prefix, start)..=(prefix, u128::MAX))?
        .take(limit)
    {
        ids.push(entry?.0.value().1);
    }
    Ok(ids)
}

/// What a profile of changes to a team looks like.
#[derive(Debug, Default)]
pub struct TeamChanges {
    pub name: Option<TeamName>,
    pub description: Option<String>,
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
        let txn = self.begin_write()?;
        if let Some(first) = super::idempotency::check::<Team>(&txn, idempotency, team.created_at)?
        {
            // Committed empty, so the answer waits for the flush that covers the first write.
            self.commit(txn)?;
            return Ok(Created::Replayed(first));
        }
        let (mut team, mut owner) = (team.clone(), owner.clone());
        team.id = TeamId::from_u128(super::next_id(&txn, TEAMS, team.id.as_u128())?);
        owner.team_id = team.id;
        let team = &team;
        txn.open_table(TEAMS)?
            .insert(team.id.as_u128(), encode(team)?.as_slice())?;
        insert_membership(&txn, &owner)?;
        let fields = team_creation_fields(team);
        let (at, actor, id) = (team.created_at, team.created_by, team.id);
        // The owner's membership first: whoever follows the log sees the team from its
        // creation on.
        let role = vec![FieldChange::set("role", &owner.role)];
        append(
            &txn,
            change(
                at,
                actor,
                EntityKind::Membership,
                actor.as_uuid(),
                id,
                ChangeAction::Created,
                role,
            ),
        )?;
        append(
            &txn,
            change(
                at,
                actor,
                EntityKind::Team,
                id.as_uuid(),
                id,
                ChangeAction::Created,
                fields,
            ),
        )?;
        super::idempotency::record(&txn, idempotency, team.created_at, team)?;
        self.commit(txn)?;
        Ok(Created::New(team.clone()))
    }

    /// A team and the caller's membership of it, in one snapshot.
    pub fn team_for(
        &self,
        team: TeamId,
        user: UserId,
    ) -> Result<Option<(Team, Option<Membership>)>, StoreError> {
        let txn = self.db().begin_read()?;
        let Some(found): Option<Team> = read_row(&txn.open_table(TEAMS)?, "teams", team.as_u128())?
        else {
            return Ok(None);
        };
        let membership = read_membership(&txn.open_table(TEAM_MEMBERS)?, team, user)?;
        Ok(Some((found, membership)))
    }

    /// Up to `limit` teams of `user` after the team id `after`, oldest first.
    pub fn teams_of_user(
        &self,
        user: UserId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<(Team, Membership)>, StoreError> {
        let txn = self.db().begin_read()?;
        let ids = ids_after(
            &txn.open_table(MEMBERSHIPS_BY_USER)?,
            user.as_u128(),
            after,
            limit,
        )?;
        let (teams, members) = (txn.open_table(TEAMS)?, txn.open_table(TEAM_MEMBERS)?);
        let mut page = Vec::with_capacity(ids.len());
        for id in ids {
            let team: Option<Team> = read_row(&teams, "teams", id)?;
            if let (Some(team), Some(membership)) = (
                team,
                read_membership(&members, TeamId::from_u128(id), user)?,
            ) {
                page.push((team, membership));
            }
        }
        Ok(page)
    }

    /// Up to `limit` members of a team after the user id `after`, with their accounts.
    pub fn members_of_team(
        &self,
        team: TeamId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<(Membership, User)>, StoreError> {
        let txn = self.db().begin_read()?;
        let members = txn.open_table(TEAM_MEMBERS)?;
        let users = txn.open_table(USERS)?;
        let mut page = Vec::with_capacity(limit);
        for id in ids_after(&members, team.as_u128(), after, limit)? {
            let user: Option<User> = read_row(&users, "users", id)?;
            if let (Some(membership), Some(user)) = (
                read_membership(&members, team, UserId::from_u128(id))?,
                user,
            ) {
                page.push((membership, user));
            }
        }
        Ok(page)
    }

    /// Renames or re-describes a team, if it is still at `expected_version` (when given).
    pub fn update_team(
        &self,
        id: TeamId,
        expected_version: Option<u64>,
        changes: TeamChanges,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<Team, StoreError> {
        let txn = self.begin_write()?;
        let mut teams = txn.open_table(TEAMS)?;
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
            drop(teams);
            self.commit(txn)?;
            return Ok(team);
        }
        team.version += 1;
        team.updated_at = now;
        teams.insert(id.as_u128(), encode(&team)?.as_slice())?;
        drop(teams);
        append(
            &txn,
            change(
                now,
                actor,
                EntityKind::Team,
                id.as_uuid(),
                id,
                ChangeAction::Updated,
                fields,
            ),
        )?;
        self.commit(txn)?;
        Ok(team)
    }

    /// Deletes a team with its memberships and invitations, if it is still at
    /// `expected_version` (when given).
    pub fn delete_team(
        &self,
        id: TeamId,
        expected_version: Option<u64>,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        {
            let mut teams = txn.open_table(TEAMS)?;
            let Some(team): Option<Team> = read_row(&teams, "teams", id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            check_version(team.version, expected_version)?;
            teams.remove(id.as_u128())?;
        }
        let team = id.as_u128();
        let invitations: Vec<u128> = ids_after(
            &txn.open_table(INVITATIONS_BY_TEAM)?,
            team,
            None,
            usize::MAX,
        )?;
        {
            let mut rows = txn.open_table(INVITATIONS)?;
            let mut by_team = txn.open_table(INVITATIONS_BY_TEAM)?;
            let mut by_email = txn.open_table(INVITATIONS_BY_EMAIL)?;
            for inv in invitations.iter().copied() {
                let invitation: Option<Invitation> = read_row(&rows, "invitations", inv)?;
                if let Some(invitation) = invitation {
                    by_email.remove((invitation.email.as_str(), inv))?;
                }
                rows.remove(inv)?;
                by_team.remove((team, inv))?;
            }
        }
        for inv in &invitations {
            let entity = uuid::Uuid::from_u128(*inv);
            append(
                &txn,
                change(
                    now,
                    actor,
                    EntityKind::Invitation,
                    entity,
                    id,
                    ChangeAction::Deleted,
                    vec![],
                ),
            )?;
        }
        super::tasks::delete_tasks_in(&txn, super::TaskIndex::Team(id), actor, now)?;
        super::projects::delete_projects_of_team(&txn, id, actor, now)?;
        append(
            &txn,
            change(
                now,
                actor,
                EntityKind::Team,
                id.as_uuid(),
                id,
                ChangeAction::Deleted,
                vec![],
            ),
        )?;
        // The memberships go last, so whoever follows the log as a member sees the whole
        // cascade before they stop seeing the team.
        let members: Vec<u128> = ids_after(&txn.open_table(TEAM_MEMBERS)?, team, None, usize::MAX)?;
        for user in members {
            let user = UserId::from_u128(user);
            remove_membership(&txn, id, user)?;
            append(
                &txn,
                change(
                    now,
                    actor,
                    EntityKind::Membership,
                    user.as_uuid(),
                    id,
                    ChangeAction::Deleted,
                    vec![],
                ),
            )?;
        }
        self.commit(txn)?;
        Ok(())
    }

    /// Changes a member's role. A team never loses its last owner.
    pub fn set_member_role(
        &self,
        team: TeamId,
        user: UserId,
        role: TeamRole,
        actor: UserId,
        now: DateTime<Utc>,
        checked: RolesChecked,
    ) -> Result<Membership, StoreError> {
        let txn = self.begin_write()?;
        let membership = {
            let mut members = txn.open_table(TEAM_MEMBERS)?;
            let Some(mut membership) = read_membership(&members, team, user)? else {
                return Err(StoreError::NotFound);
            };
            checked.confirm(&members, team, actor, membership.role)?;
            if membership.role == role {
                drop(members);
                self.commit(txn)?;
                return Ok(membership);
            }
            if membership.role == TeamRole::Owner && owner_count(&members, team)? == 1 {
                return Err(StoreError::LastOwner);
            }
            let before = membership.role;
            membership.role = role;
            super::read_cache::mark_members_changed();
            members.insert(
                (team.as_u128(), user.as_u128()),
                encode(&membership)?.as_slice(),
            )?;
            drop(members);
            let fields = FieldChange::of("role", &before, &role)
                .into_iter()
                .collect();
            append(
                &txn,
                change(
                    now,
                    actor,
                    EntityKind::Membership,
                    user.as_uuid(),
                    team,
                    ChangeAction::Updated,
                    fields,
                ),
            )?;
            membership
        };
        self.commit(txn)?;
        Ok(membership)
    }

    /// Removes a member (or lets one leave). A team never loses its last owner.
    pub fn remove_member(
        &self,
        team: TeamId,
        user: UserId,
        actor: UserId,
        now: DateTime<Utc>,
        checked: RolesChecked,
    ) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        {
            let members = txn.open_table(TEAM_MEMBERS)?;
            let Some(membership) = read_membership(&members, team, user)? else {
                return Err(StoreError::NotFound);
            };
            checked.confirm(&members, team, actor, membership.role)?;
            if membership.role == TeamRole::Owner && owner_count(&members, team)? == 1 {
                return Err(StoreError::LastOwner);
            }
        }
        remove_membership(&txn, team, user)?;
        super::tasks::unassign_from_team(&txn, team, user, actor, now)?;
        let seq = append(
            &txn,
            change(
                now,
                actor,
                EntityKind::Membership,
                user.as_uuid(),
                team,
                ChangeAction::Deleted,
                vec![],
            ),
        )?;
        let name = team_name(&txn, team)?;
        notifications::for_removal(
            &txn,
            Cause {
                seq,
                actor,
                at: now,
            },
            team,
            user,
            &name,
        )?;
        self.commit(txn)?;
        Ok(())
    }

    /// Records an invitation. One open invitation per email and team; none for a member.
    pub fn create_invitation(&self, invitation: &Invitation) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        {
            if txn
                .open_table(TEAMS)?
                .get(invitation.team_id.as_u128())?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            let mut rows = txn.open_table(INVITATIONS)?;
            let mut by_email = txn.open_table(INVITATIONS_BY_EMAIL)?;
            let email = invitation.email.as_str();
            let pending: Vec<u128> = by_email
                .range((email, 0)..=(email, u128::MAX))?
                .map(|entry| entry.map(|(key, _)| key.value().1))
                .collect::<Result<_, _>>()?;
            for id in pending {
                let other: Option<Invitation> = read_row(&rows, "invitations", id)?;
                if other.is_some_and(|o| {
                    o.team_id == invitation.team_id && o.is_open(invitation.created_at)
                }) {
                    return Err(StoreError::AlreadyInvited);
                }
            }
            let user = txn
                .open_table(USERS_BY_EMAIL)?
                .get(email)?
                .map(|id| UserId::from_u128(id.value()));
            if let Some(user) = user
                && read_membership(&txn.open_table(TEAM_MEMBERS)?, invitation.team_id, user)?
                    .is_some()
            {
                return Err(StoreError::AlreadyMember);
            }
            let id = invitation.id.as_u128();
            rows.insert(id, encode(invitation)?.as_slice())?;
            by_email.insert((email, id), ())?;
            txn.open_table(INVITATIONS_BY_TEAM)?
                .insert((invitation.team_id.as_u128(), id), ())?;
        }
        let fields = vec![
            FieldChange::set("email", &invitation.email),
            FieldChange::set("role", &invitation.role),
        ];
        let (at, actor, team) = (
            invitation.created_at,
            invitation.invited_by,
            invitation.team_id,
        );
        let seq = append(
            &txn,
            change(
                at,
                actor,
                EntityKind::Invitation,
                invitation.id.as_uuid(),
                team,
                ChangeAction::Created,
                fields,
            ),
        )?;
        let name = team_name(&txn, team)?;
        notifications::for_invitation(&txn, Cause { seq, actor, at }, invitation, &name)?;
        self.commit(txn)?;
        Ok(())
    }

    pub fn invitation(&self, id: InvitationId) -> Result<Option<Invitation>, StoreError> {
        let txn = self.db().begin_read()?;
        read_row(&txn.open_table(INVITATIONS)?, "invitations", id.as_u128())
    }

    /// Up to `limit` invitations of a team after `after`, oldest first, whatever their status.
    pub fn invitations_of_team(
        &self,
        team: TeamId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(INVITATIONS)?;
        let mut page = Vec::new();
        for id in ids_after(
            &txn.open_table(INVITATIONS_BY_TEAM)?,
            team.as_u128(),
            after,
            limit,
        )? {
            page.extend(read_row::<Invitation>(&rows, "invitations", id)?);
        }
        Ok(page)
    }

    /// Pending invitations addressed to `email` (expired ones included: the caller filters).
    pub fn pending_invitations_for(
        &self,
        email: &Email,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(INVITATIONS)?;
        let by_email = txn.open_table(INVITATIONS_BY_EMAIL)?;
        let start = match after {
            Some(u128::MAX) => return Ok(vec![]),
            Some(after) => after + 1,
            None => 0,
        };
        let mut page = Vec::new();
        for entry in by_email
            .range((email.as_str(), start)..=(email.as_str(), u128::MAX))?
            .take(limit)
        {
            page.extend(read_row::<Invitation>(
                &rows,
                "invitations",
                entry?.0.value().1,
            )?);
        }
        Ok(page)
    }

    /// Whether `email` has a pending invitation that has not expired at `now`. Reads only that
    /// email's pending invitations (one per inviting team at most).
    pub fn has_open_invitation(
        &self,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(INVITATIONS)?;
        let by_email = txn.open_table(INVITATIONS_BY_EMAIL)?;
        for entry in by_email.range((email.as_str(), 0)..=(email.as_str(), u128::MAX))? {
            let invitation = read_row::<Invitation>(&rows, "invitations", entry?.0.value().1)?;
            if invitation.is_some_and(|i| i.is_open(now)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Closes a pending invitation with `status`; accepting makes `user` a member.
    pub fn close_invitation(
        &self,
        id: InvitationId,
        status: InvitationStatus,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Invitation, StoreError> {
        let txn = self.begin_write()?;
        let invitation = {
            let mut rows = txn.open_table(INVITATIONS)?;
            let Some(mut invitation): Option<Invitation> =
                read_row(&rows, "invitations", id.as_u128())?
            else {
                return Err(StoreError::NotFound);
            };
            if !invitation.is_open(now) {
                return Err(StoreError::InvitationClosed);
            }
            invitation.status = status;
            rows.insert(id.as_u128(), encode(&invitation)?.as_slice())?;
            txn.open_table(INVITATIONS_BY_EMAIL)?
                .remove((invitation.email.as_str(), id.as_u128()))?;
            invitation
        };
        let team = invitation.team_id;
        let fields = FieldChange::of("status", &InvitationStatus::Pending, &status)
            .into_iter()
            .collect();
        let seq = append(
            &txn,
            change(
                now,
                user,
                EntityKind::Invitation,
                id.as_uuid(),
                team,
                ChangeAction::Updated,
                fields,
            ),
        )?;
        if status == InvitationStatus::Accepted {
            let name = team_name(&txn, team)?;
            let cause = Cause {
                seq,
                actor: user,
                at: now,
            };
            notifications::for_acceptance(&txn, cause, &invitation, &name)?;
            let exists = read_membership(&txn.open_table(TEAM_MEMBERS)?, team, user)?.is_some();
            if !exists && txn.open_table(TEAMS)?.get(team.as_u128())?.is_some() {
                let membership = Membership {
                    team_id: team,
                    user_id: user,
                    role: invitation.role,
                    joined_at: now,
                };
                insert_membership(&txn, &membership)?;
                let fields = vec![FieldChange::set("role", &invitation.role)];
                append(
                    &txn,
                    change(
                        now,
                        user,
                        EntityKind::Membership,
                        user.as_uuid(),
                        team,
                        ChangeAction::Created,
                        fields,
                    ),
                )?;
            }
        }
        self.commit(txn)?;
        Ok(invitation)
    }
}

impl Store {
    /// Everyone who shares a team with `user` (including `user`), bounded by the sizes of
    /// that user's teams, in id order.
    pub fn teammates_of(&self, user: UserId) -> Result<Vec<User>, StoreError> {
        let txn = self.db().begin_read()?;
        let by_user = txn.open_table(MEMBERSHIPS_BY_USER)?;
        let members = txn.open_table(TEAM_MEMBERS)?;
        let users = txn.open_table(USERS)?;
        let mut ids = std::collections::BTreeSet::from([user.as_u128()]);
        let u = user.as_u128();
        for team in by_user.range((u, 0)..=(u, u128::MAX))? {
            let team = team?.0.value().1;
            for member in members.range((team, 0)..=(team, u128::MAX))? {
                ids.insert(member?.0.value().1);
            }
        }
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(read_row::<User>(&users, "users", id)?);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::team::TeamName;

    #[test]
    fn a_member_write_decided_on_superseded_roles_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
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
        let as_admin = RolesChecked {
            actor: TeamRole::Admin,
            target: TeamRole::Owner,
        };
        let write = store.set_member_role(team.id, owner, TeamRole::Owner, owner, now, as_admin);
        assert!(matches!(write, Err(StoreError::Superseded)), "{write:?}");
        let removal = store.remove_member(team.id, owner, owner, now, as_admin);
        assert!(
            matches!(removal, Err(StoreError::Superseded)),
            "{removal:?}"
        );
        let as_owner = RolesChecked {
            actor: TeamRole::Owner,
            target: TeamRole::Owner,
        };
        let removal = store.remove_member(team.id, owner, owner, now, as_owner);
        assert!(matches!(removal, Err(StoreError::LastOwner)), "{removal:?}");
    }
}
