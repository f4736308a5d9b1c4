//! Team memberships, kept both ways: a team's members (`TEAM_MEMBERS`, with the role) and a
//! user's teams (`MEMBERSHIPS_BY_USER`). Every membership write notes it on the [`Tx`], so the
//! read cache drops the roles it holds around the commit.

use chrono::{DateTime, Utc};
use redb::ReadableTable;

use super::codec::{decode, encode, ids_after};
use super::tables::*;
use super::tx::{Cause, RolesChecked, Rx, Tx};
use super::{Store, StoreError};
use crate::domain::change::{ChangeAction, EntityKind, FieldChange};
use crate::domain::team::{Membership, Team, TeamRole};
use crate::domain::{TeamId, User, UserId};

fn membership_in(
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

/// The ids of every team `user` belongs to.
fn team_ids_in(
    by_user: &impl ReadableTable<(u128, u128), ()>,
    user: UserId,
) -> Result<Vec<TeamId>, StoreError> {
    let u = user.as_u128();
    let mut teams = Vec::new();
    for entry in by_user.range((u, 0)..=(u, u128::MAX))? {
        teams.push(TeamId::from_u128(entry?.0.value().1));
    }
    Ok(teams)
}

/// Fails with `Superseded` unless `actor`'s role in `team` and the target's (`target`) are
/// still the ones `checked` was decided on.
fn confirm_roles(
    checked: RolesChecked,
    members: &impl ReadableTable<(u128, u128), &'static [u8]>,
    team: TeamId,
    actor: UserId,
    target: TeamRole,
) -> Result<(), StoreError> {
    let actor = membership_in(members, team, actor)?.map(|m| m.role);
    if actor == Some(checked.actor) && target == checked.target {
        Ok(())
    } else {
        Err(StoreError::Superseded)
    }
}

impl Tx<'_> {
    /// `user`'s membership of `team`, as this transaction sees it: what a permission check
    /// made inside the write reads.
    pub fn membership(&self, team: TeamId, user: UserId) -> Result<Option<Membership>, StoreError> {
        membership_in(&self.txn().open_table(TEAM_MEMBERS)?, team, user)
    }

    pub(super) fn is_member(&self, team: TeamId, user: UserId) -> Result<bool, StoreError> {
        Ok(self
            .txn()
            .open_table(TEAM_MEMBERS)?
            .get((team.as_u128(), user.as_u128()))?
            .is_some())
    }

    /// Adds (or replaces) a membership, both ways.
    pub(super) fn insert_membership(&self, membership: &Membership) -> Result<(), StoreError> {
        self.note_members_changed();
        let (team, user) = (membership.team_id.as_u128(), membership.user_id.as_u128());
        self.txn()
            .open_table(TEAM_MEMBERS)?
            .insert((team, user), encode(membership)?.as_slice())?;
        self.txn()
            .open_table(MEMBERSHIPS_BY_USER)?
            .insert((user, team), ())?;
        Ok(())
    }

    fn remove_membership(&self, team: TeamId, user: UserId) -> Result<(), StoreError> {
        self.note_members_changed();
        self.txn()
            .open_table(TEAM_MEMBERS)?
            .remove((team.as_u128(), user.as_u128()))?;
        self.txn()
            .open_table(MEMBERSHIPS_BY_USER)?
            .remove((user.as_u128(), team.as_u128()))?;
        Ok(())
    }

    /// Removes every membership of a team (its deletion), with a change-log entry each.
    pub(super) fn delete_memberships_of_team(
        &self,
        team: TeamId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let members = ids_after(
            &self.txn().open_table(TEAM_MEMBERS)?,
            team.as_u128(),
            None,
            usize::MAX,
        )?;
        for user in members {
            let user = UserId::from_u128(user);
            self.remove_membership(team, user)?;
            let (entity, action) = (EntityKind::Membership, ChangeAction::Deleted);
            self.append_in_team(now, actor, entity, user.as_uuid(), team, action, vec![])?;
        }
        Ok(())
    }
}

impl Rx {
    pub(super) fn membership(
        &self,
        team: TeamId,
        user: UserId,
    ) -> Result<Option<Membership>, StoreError> {
        membership_in(&self.txn().open_table(TEAM_MEMBERS)?, team, user)
    }

    /// The ids of every team `user` belongs to (bounded by that user's memberships).
    pub(super) fn team_ids_of(&self, user: UserId) -> Result<Vec<TeamId>, StoreError> {
        team_ids_in(&self.txn().open_table(MEMBERSHIPS_BY_USER)?, user)
    }
}

impl Store {
    /// Up to `limit` teams of `user` after the team id `after`, oldest first.
    pub fn teams_of_user(
        &self,
        user: UserId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<(Team, Membership)>, StoreError> {
        let rx = self.read()?;
        let ids = ids_after(
            &rx.txn().open_table(MEMBERSHIPS_BY_USER)?,
            user.as_u128(),
            after,
            limit,
        )?;
        let members = rx.txn().open_table(TEAM_MEMBERS)?;
        let mut page = Vec::with_capacity(ids.len());
        for id in ids {
            let team = TeamId::from_u128(id);
            if let (Some(found), Some(membership)) =
                (rx.team(team)?, membership_in(&members, team, user)?)
            {
                page.push((found, membership));
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
        let rx = self.read()?;
        let members = rx.txn().open_table(TEAM_MEMBERS)?;
        let mut page = Vec::with_capacity(limit);
        for id in ids_after(&members, team.as_u128(), after, limit)? {
            let user = UserId::from_u128(id);
            if let (Some(membership), Some(user)) =
                (membership_in(&members, team, user)?, rx.user(user)?)
            {
                page.push((membership, user));
            }
        }
        Ok(page)
    }

    /// The ids of every team `user` belongs to (bounded by that user's memberships).
    pub fn team_ids_of_user(&self, user: UserId) -> Result<Vec<TeamId>, StoreError> {
        self.read()?.team_ids_of(user)
    }

    /// Everyone who shares a team with `user` (including `user`), bounded by the sizes of
    /// that user's teams, in id order.
    pub fn teammates_of(&self, user: UserId) -> Result<Vec<User>, StoreError> {
        let rx = self.read()?;
        let members = rx.txn().open_table(TEAM_MEMBERS)?;
        let mut ids = std::collections::BTreeSet::from([user.as_u128()]);
        for team in rx.team_ids_of(user)? {
            let team = team.as_u128();
            for member in members.range((team, 0)..=(team, u128::MAX))? {
                ids.insert(member?.0.value().1);
            }
        }
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(rx.user(UserId::from_u128(id))?);
        }
        Ok(found)
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
        self.write(|tx| {
            let mut membership = {
                let members = tx.txn().open_table(TEAM_MEMBERS)?;
                let Some(membership) = membership_in(&members, team, user)? else {
                    return Err(StoreError::NotFound);
                };
                confirm_roles(checked, &members, team, actor, membership.role)?;
                if membership.role == role {
                    return Ok(membership);
                }
                if membership.role == TeamRole::Owner && owner_count(&members, team)? == 1 {
                    return Err(StoreError::LastOwner);
                }
                membership
            };
            let before = membership.role;
            membership.role = role;
            tx.insert_membership(&membership)?;
            let fields = FieldChange::of("role", &before, &role)
                .into_iter()
                .collect();
            let (entity, action) = (EntityKind::Membership, ChangeAction::Updated);
            tx.append_in_team(now, actor, entity, user.as_uuid(), team, action, fields)?;
            Ok(membership)
        })
    }

    /// Removes a member (or lets one leave): they are unassigned from the team's tasks. A
    /// team never loses its last owner.
    pub fn remove_member(
        &self,
        team: TeamId,
        user: UserId,
        actor: UserId,
        now: DateTime<Utc>,
        checked: RolesChecked,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            {
                let members = tx.txn().open_table(TEAM_MEMBERS)?;
                let Some(membership) = membership_in(&members, team, user)? else {
                    return Err(StoreError::NotFound);
                };
                confirm_roles(checked, &members, team, actor, membership.role)?;
                if membership.role == TeamRole::Owner && owner_count(&members, team)? == 1 {
                    return Err(StoreError::LastOwner);
                }
            }
            tx.remove_membership(team, user)?;
            tx.unassign_from_team(team, user, actor, now)?;
            let (entity, action) = (EntityKind::Membership, ChangeAction::Deleted);
            let seq =
                tx.append_in_team(now, actor, entity, user.as_uuid(), team, action, vec![])?;
            let name = tx.team_name(team)?;
            let cause = Cause {
                seq,
                actor,
                at: now,
            };
            tx.notify_removal(cause, team, user, &name)
        })
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
