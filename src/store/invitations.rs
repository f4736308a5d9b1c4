//! Invitations to teams: rows, every invitation of a team (`INVITATIONS_BY_TEAM`), the pending
//! ones by email (`INVITATIONS_BY_EMAIL`) and by claimant (`INVITATIONS_BY_CLAIMANT`), both
//! removed when answered or revoked.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable};

use super::codec::{encode, ids_after, read_row};
use super::tables::*;
use super::tx::{Cause, Tx};
use super::{Store, StoreError};
use crate::domain::change::{ChangeAction, EntityKind, FieldChange};
use crate::domain::team::{Invitation, InvitationStatus, Membership};
use crate::domain::{Email, InvitationId, TeamId, UserId};

impl Tx<'_> {
    /// An invitation, as this transaction sees it.
    pub fn invitation(&self, id: InvitationId) -> Result<Option<Invitation>, StoreError> {
        read_row(
            &self.txn().open_table(INVITATIONS)?,
            "invitations",
            id.as_u128(),
        )
    }

    /// Records an invitation, tells the invitee and logs it (`NotFound` when the team is gone).
    /// One open invitation per email and team (`AlreadyInvited`); none for a member
    /// (`AlreadyMember`). Whether its inviter may invite is the caller's to decide, on roles
    /// read through this `tx`.
    pub fn create_invitation(&self, invitation: &Invitation) -> Result<(), StoreError> {
        if self.team(invitation.team_id)?.is_none() {
            return Err(StoreError::NotFound);
        }
        {
            let mut rows = self.txn().open_table(INVITATIONS)?;
            let mut by_email = self.txn().open_table(INVITATIONS_BY_EMAIL)?;
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
            if let Some(user) = self.user_id_by_email(email)?
                && self.membership(invitation.team_id, user)?.is_some()
            {
                return Err(StoreError::AlreadyMember);
            }
            let id = invitation.id.as_u128();
            rows.insert(id, encode(invitation)?.as_slice())?;
            by_email.insert((email, id), ())?;
            self.txn()
                .open_table(INVITATIONS_BY_TEAM)?
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
        let (entity, action) = (EntityKind::Invitation, ChangeAction::Created);
        let seq = self.append_in_team(
            at,
            actor,
            entity,
            invitation.id.as_uuid(),
            team,
            action,
            fields,
        )?;
        let name = self.team_name(team)?;
        self.notify_invitation(Cause { seq, actor, at }, invitation, &name)
    }

    /// Closes a pending invitation with `status` on `user`'s behalf (`NotFound`; `InvitationClosed`
    /// when it is no longer open); accepting makes `user` a member. Whether `user` may answer
    /// or revoke it is the caller's to decide, on what this `tx` reads.
    pub fn close_invitation(
        &self,
        id: InvitationId,
        status: InvitationStatus,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Invitation, StoreError> {
        let invitation = {
            let mut rows = self.txn().open_table(INVITATIONS)?;
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
            self.txn()
                .open_table(INVITATIONS_BY_EMAIL)?
                .remove((invitation.email.as_str(), id.as_u128()))?;
            if let Some(claimant) = invitation.claimed_by {
                self.txn()
                    .open_table(INVITATIONS_BY_CLAIMANT)?
                    .remove((claimant.as_u128(), id.as_u128()))?;
            }
            invitation
        };
        let team = invitation.team_id;
        let fields = FieldChange::of("status", &InvitationStatus::Pending, &status)
            .into_iter()
            .collect();
        let (entity, action) = (EntityKind::Invitation, ChangeAction::Updated);
        let seq = self.append_in_team(now, user, entity, id.as_uuid(), team, action, fields)?;
        if status == InvitationStatus::Accepted {
            let name = self.team_name(team)?;
            let cause = Cause {
                seq,
                actor: user,
                at: now,
            };
            self.notify_acceptance(cause, &invitation, &name)?;
            let exists = self.membership(team, user)?.is_some();
            if !exists && self.team(team)?.is_some() {
                let membership = Membership {
                    team_id: team,
                    user_id: user,
                    role: invitation.role,
                    joined_at: now,
                };
                self.insert_membership(&membership)?;
                let fields = vec![FieldChange::set("role", &invitation.role)];
                let (entity, action) = (EntityKind::Membership, ChangeAction::Created);
                self.append_in_team(now, user, entity, user.as_uuid(), team, action, fields)?;
            }
        }
        Ok(invitation)
    }

    /// Records `user` as the claimant of pending invitation `id` (`NotFound`); an invitation
    /// keeps its first claimant. Whether `user` may claim it (they present its token) is the
    /// caller's to decide, on what this `tx` reads.
    pub fn claim_invitation(
        &self,
        id: InvitationId,
        user: UserId,
    ) -> Result<Invitation, StoreError> {
        let mut rows = self.txn().open_table(INVITATIONS)?;
        let Some(mut invitation): Option<Invitation> =
            read_row(&rows, "invitations", id.as_u128())?
        else {
            return Err(StoreError::NotFound);
        };
        if invitation.claimed_by.is_none() && invitation.status == InvitationStatus::Pending {
            invitation.claimed_by = Some(user);
            rows.insert(id.as_u128(), encode(&invitation)?.as_slice())?;
            self.txn()
                .open_table(INVITATIONS_BY_CLAIMANT)?
                .insert((user.as_u128(), id.as_u128()), ())?;
        }
        Ok(invitation)
    }

    /// Revokes, on `user`'s behalf, the open invitations addressed to `email` that nobody else
    /// claimed: `user` gave the address up (an email change), so what was offered to it is no
    /// longer theirs to accept.
    pub(super) fn revoke_invitations_to(
        &self,
        email: &Email,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let ids: Vec<u128> = self
            .txn()
            .open_table(INVITATIONS_BY_EMAIL)?
            .range((email.as_str(), 0)..=(email.as_str(), u128::MAX))?
            .map(|entry| entry.map(|(key, _)| key.value().1))
            .collect::<Result<_, _>>()?;
        for id in ids {
            let id = InvitationId::from_u128(id);
            let revocable = self.invitation(id)?.is_some_and(|i| {
                i.is_open(now) && i.claimed_by.is_none_or(|claimant| claimant == user)
            });
            if revocable {
                self.close_invitation(id, InvitationStatus::Revoked, user, now)?;
            }
        }
        Ok(())
    }

    /// Removes every invitation of a team (its deletion), with a change-log entry each.
    pub(super) fn delete_invitations_of_team(
        &self,
        team: TeamId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let t = team.as_u128();
        let txn = self.txn();
        let invitations = ids_after(&txn.open_table(INVITATIONS_BY_TEAM)?, t, None, usize::MAX)?;
        {
            let mut rows = txn.open_table(INVITATIONS)?;
            let mut by_team = txn.open_table(INVITATIONS_BY_TEAM)?;
            let mut by_email = txn.open_table(INVITATIONS_BY_EMAIL)?;
            let mut by_claimant = txn.open_table(INVITATIONS_BY_CLAIMANT)?;
            for inv in invitations.iter().copied() {
                let invitation: Option<Invitation> = read_row(&rows, "invitations", inv)?;
                if let Some(invitation) = invitation {
                    by_email.remove((invitation.email.as_str(), inv))?;
                    if let Some(claimant) = invitation.claimed_by {
                        by_claimant.remove((claimant.as_u128(), inv))?;
                    }
                }
                rows.remove(inv)?;
                by_team.remove((t, inv))?;
            }
        }
        for inv in invitations {
            let entity = uuid::Uuid::from_u128(inv);
            let (kind, action) = (EntityKind::Invitation, ChangeAction::Deleted);
            self.append_in_team(now, actor, kind, entity, team, action, vec![])?;
        }
        Ok(())
    }
}

impl Store {
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

    /// Pending invitations `user` claimed (expired ones included: the caller filters).
    pub fn claimed_invitations(
        &self,
        user: UserId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError> {
        let txn = self.db().begin_read()?;
        super::codec::rows_after(
            &txn,
            INVITATIONS_BY_CLAIMANT,
            INVITATIONS,
            "invitations",
            user.as_u128(),
            after,
            limit,
        )
    }

    /// One invitation.
    pub fn invitation(&self, id: InvitationId) -> Result<Option<Invitation>, StoreError> {
        let txn = self.db().begin_read()?;
        read_row(&txn.open_table(INVITATIONS)?, "invitations", id.as_u128())
    }
}
