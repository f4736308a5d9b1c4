//! Team memberships, kept both ways: a team's members (`TEAM_MEMBERS`, with the role) and a
//! user's teams (`MEMBERSHIPS_BY_USER`). Every membership write notes it on the [`Tx`], so the
//! read cache drops the roles it holds around the commit.

use chrono::{DateTime, Utc};
use redb::ReadableTable;

use super::codec::{decode, encode, ids_after};
use super::tables::*;
use super::tx::{Cause, Rx, Tx};
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

    /// Gives `user` the role `role` in `team`, with a change-log entry (`NotFound` when they
    /// are not a member). A team never loses its last owner (`LastOwner`). Whether `actor` may
    /// do it is the caller's to decide, on roles read through this `tx`.
    pub fn set_member_role(
        &self,
        team: TeamId,
        user: UserId,
        role: TeamRole,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<Membership, StoreError> {
        let mut membership = {
            let members = self.txn().open_table(TEAM_MEMBERS)?;
            let Some(membership) = membership_in(&members, team, user)? else {
                return Err(StoreError::NotFound);
            };
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
        self.insert_membership(&membership)?;
        let fields = FieldChange::of("role", &before, &role)
            .into_iter()
            .collect();
        let (entity, action) = (EntityKind::Membership, ChangeAction::Updated);
        self.append_in_team(now, actor, entity, user.as_uuid(), team, action, fields)?;
        Ok(membership)
    }

    /// Removes `user` from `team` (or lets them leave), unassigns them from the team's tasks
    /// and tells them (`NotFound` when they are not a member). A team never loses its last
    /// owner (`LastOwner`). Whether `actor` may do it is the caller's to decide, on roles read
    /// through this `tx`.
    pub fn remove_member(
        &self,
        team: TeamId,
        user: UserId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        {
            let members = self.txn().open_table(TEAM_MEMBERS)?;
            let Some(membership) = membership_in(&members, team, user)? else {
                return Err(StoreError::NotFound);
            };
            if membership.role == TeamRole::Owner && owner_count(&members, team)? == 1 {
                return Err(StoreError::LastOwner);
            }
        }
        self.remove_membership(team, user)?;
        self.unassign_from_team(team, user, actor, now)?;
        let (entity, action) = (EntityKind::Membership, ChangeAction::Deleted);
        let seq = self.append_in_team(now, actor, entity, user.as_uuid(), team, action, vec![])?;
        let name = self.team_name(team)?;
        let cause = Cause {
            seq,
            actor,
            at: now,
        };
        self.notify_removal(cause, team, user, &name)
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

    /// The ids of every team `user` belongs to, as this transaction sees them.
    pub fn team_ids_of(&self, user: UserId) -> Result<Vec<TeamId>, StoreError> {
        team_ids_in(&self.txn().open_table(MEMBERSHIPS_BY_USER)?, user)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_keeps_its_last_owner_and_a_refused_write_leaves_it_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (team, membership) = super::super::owned_team(&store);
        let (owner, now) = (membership.user_id, Utc::now());
        let seq = store.last_seq().unwrap();

        let demote =
            store.write(|tx| tx.set_member_role(team.id, owner, TeamRole::Admin, owner, now));
        assert!(matches!(demote, Err(StoreError::LastOwner)), "{demote:?}");
        let leave = store.write(|tx| tx.remove_member(team.id, owner, owner, now));
        assert!(matches!(leave, Err(StoreError::LastOwner)), "{leave:?}");
        let same =
            store.write(|tx| tx.set_member_role(team.id, owner, TeamRole::Owner, owner, now));
        assert_eq!(same.unwrap().role, TeamRole::Owner);
        assert_eq!(store.last_seq().unwrap(), seq, "nothing was logged");

        // A second owner lets the first one step down, in the same transaction that sees them.
        let other = UserId::new();
        store
            .write(|tx| {
                tx.insert_membership(&Membership {
                    user_id: other,
                    ..membership.clone()
                })?;
                assert_eq!(
                    tx.membership(team.id, other)?.map(|m| m.role),
                    Some(TeamRole::Owner)
                );
                tx.set_member_role(team.id, owner, TeamRole::Admin, other, now)
            })
            .unwrap();
        let (_, mine) = store.team_for(team.id, owner).unwrap().unwrap();
        assert_eq!(mine.map(|m| m.role), Some(TeamRole::Admin));
        let missing = store.write(|tx| tx.remove_member(team.id, UserId::new(), owner, now));
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    }
}
