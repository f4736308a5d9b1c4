//! Teams, members and invitations (DESIGN.md section 3). Who may see and do what is
//! `domain::access`'s to say: to anyone who may not see a team it does not exist (404). That a
//! team never loses its last owner is checked where the membership is written. Every write
//! decides on the roles (and the invitation) it reads through the write transaction that
//! performs it: a role changed by a commit in between is seen.

use chrono::Utc;
use rand::RngCore;

use super::{Error, Result, Service};
use crate::domain::access::{self, Invitee, TeamAction};
use crate::domain::page::Page;
use crate::domain::team::{
    Invitation, InvitationStatus, InvitationToken, Membership, Team, TeamName, TeamRole,
    parse_description,
};
use crate::domain::{Email, InvitationId, TeamId, User, UserId, Validator};
use crate::service::AuthUser;
use crate::store::{Created, StoreError, TeamChanges, Tx};

/// How long an invitation stays open.
pub const INVITATION_TTL: chrono::Duration = chrono::Duration::days(7);

/// A new invitation, with its accept token: the only time the token is seen (only its hash is
/// stored). The inviter passes the link on.
#[derive(Debug, Clone)]
pub struct IssuedInvitation {
    pub invitation: Invitation,
    pub token: String,
}

impl IssuedInvitation {
    /// The web app's accept page for this token, relative to the site.
    pub fn accept_path(&self) -> String {
        accept_path(&self.token)
    }
}

/// The web app's accept page for `token`, relative to the site (the token is URL-safe).
pub fn accept_path(token: &str) -> String {
    format!("/invitations/accept?token={token}")
}

/// An invitation as the account that holds its token sees it before answering: the team's
/// name and the inviter's (the invitee is no member yet, so neither is theirs to read).
#[derive(Debug, Clone)]
pub struct InvitationPreview {
    pub invitation: Invitation,
    pub team_name: String,
    pub inviter_name: String,
}

/// Whether `user`'s address is verified: its owner opened a verification (or reset) link
/// sent there, since the last address change. Only then does an invitation to that address
/// open for the account without the invitation's own token.
fn email_verified(user: &User) -> bool {
    user.email_verified_at.is_some()
}

/// `user` asking about an invitation, with or without its token.
fn invitee(user: &User, presents_token: bool) -> Invitee<'_> {
    Invitee {
        user: user.id,
        email: &user.email,
        email_verified: email_verified(user),
        presents_token,
    }
}

/// A team as one of its members sees it.
#[derive(Debug, Clone)]
pub struct TeamView {
    pub team: Team,
    pub role: TeamRole,
}

/// The outcome of a conditional write (`If-Match`).
#[derive(Debug)]
pub enum Write<T, C> {
    Done(T),
    /// The expected version was stale; here is the current state.
    Stale(C),
}

pub struct NewTeam {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Default)]
pub struct TeamPatch {
    pub name: Option<String>,
    pub description: Option<String>,
}

fn conflict(e: StoreError) -> Error {
    match e {
        StoreError::NotFound => Error::NotFound("team"),
        StoreError::LastOwner => Error::LastOwner,
        StoreError::AlreadyInvited => Error::AlreadyInvited,
        StoreError::AlreadyMember => Error::AlreadyMember,
        StoreError::InvitationClosed => Error::InvitationClosed,
        other => Error::Internal(other),
    }
}

/// `user`'s membership of `team` as the write transaction `tx` sees it; to a non-member the
/// team does not exist (404).
fn member_in(tx: &Tx<'_>, team: TeamId, user: UserId) -> Result<Membership> {
    match (tx.team(team)?, tx.membership(team, user)?) {
        (Some(_), Some(m)) if access::may_see_team(Some(m.role)) => Ok(m),
        _ => Err(Error::NotFound("team")),
    }
}

/// The membership a member change is about, as `tx` sees it (404 `member` when there is none).
fn target_in(tx: &Tx<'_>, team: TeamId, user: UserId) -> Result<Membership> {
    tx.membership(team, user)?.ok_or(Error::NotFound("member"))
}

/// Gives `user` the role `role` in `team` on `actor`'s behalf, if `domain::access` allows it on
/// the roles `tx` reads: the decision and the write are one transaction.
fn set_role_in(
    tx: &Tx<'_>,
    team: TeamId,
    actor: UserId,
    user: UserId,
    role: TeamRole,
) -> Result<Membership> {
    let me = member_in(tx, team, actor)?;
    let target = target_in(tx, team, user)?;
    if !access::may_set_role(me.role, target.role, role) {
        return Err(Error::Forbidden(
            "you cannot give this role or change this member".into(),
        ));
    }
    tx.set_member_role(team, user, role, actor, Utc::now())
        .map_err(conflict)
}

/// Removes `user` from `team` on `actor`'s behalf (or lets them leave), if `domain::access`
/// allows it on the roles `tx` reads.
fn remove_in(tx: &Tx<'_>, team: TeamId, actor: UserId, user: UserId) -> Result<()> {
    let me = member_in(tx, team, actor)?;
    let target = target_in(tx, team, user)?;
    if !access::may_remove_member(me.role, target.role, user == actor) {
        return Err(Error::Forbidden("you cannot remove this member".into()));
    }
    tx.remove_member(team, user, actor, Utc::now())
        .map_err(conflict)
}

/// The refusal of a team action to a member without the role it needs.
fn needs_role(action: TeamAction) -> Error {
    Error::Forbidden(format!(
        "this needs the {} role in the team",
        action.needs().as_str()
    ))
}

/// `user`'s membership of `team` as `tx` sees it, where they may do `action`: 404 for a
/// non-member, then 403 for a member without the role.
fn member_for(tx: &Tx<'_>, team: TeamId, user: UserId, action: TeamAction) -> Result<Membership> {
    let me = member_in(tx, team, user)?;
    if !access::may_in_team(me.role, action) {
        return Err(needs_role(action));
    }
    Ok(me)
}

/// The team as `tx` sees it, for a `Stale` answer to a member whose role is `role`.
fn current_view(tx: &Tx<'_>, team: TeamId, role: TeamRole) -> Result<TeamView> {
    let team = tx.team(team)?.ok_or(Error::NotFound("team"))?;
    Ok(TeamView { team, role })
}

/// Renames or re-describes `team` on `actor`'s behalf, if `domain::access` allows it on the
/// role `tx` reads; `valid` is the body's validation, answered after the permission.
fn update_in(
    tx: &Tx<'_>,
    team: TeamId,
    actor: UserId,
    changes: TeamChanges,
    valid: Result<()>,
    expected_version: Option<u64>,
) -> Result<Write<TeamView, TeamView>> {
    let role = member_for(tx, team, actor, TeamAction::Manage)?.role;
    valid?;
    match tx.update_team(team, expected_version, changes, actor, Utc::now()) {
        Ok(updated) => Ok(Write::Done(TeamView {
            team: updated,
            role,
        })),
        Err(StoreError::Stale) => Ok(Write::Stale(current_view(tx, team, role)?)),
        Err(e) => Err(conflict(e)),
    }
}

/// Deletes `team` on `actor`'s behalf, if `domain::access` allows it on the role `tx` reads.
fn delete_in(
    tx: &Tx<'_>,
    team: TeamId,
    actor: UserId,
    expected_version: Option<u64>,
) -> Result<Write<(), TeamView>> {
    let role = member_for(tx, team, actor, TeamAction::Delete)?.role;
    match tx.delete_team(team, expected_version, actor, Utc::now()) {
        Ok(()) => Ok(Write::Done(())),
        Err(StoreError::Stale) => Ok(Write::Stale(current_view(tx, team, role)?)),
        Err(e) => Err(conflict(e)),
    }
}

/// Records `invitation` on its inviter's behalf, if `domain::access` allows it on the role
/// `tx` reads.
fn invite_in(tx: &Tx<'_>, invitation: &Invitation) -> Result<()> {
    let (team, inviter) = (invitation.team_id, invitation.invited_by);
    let me = member_for(tx, team, inviter, TeamAction::Manage)?;
    if !access::may_invite(me.role, invitation.role) {
        return Err(Error::Forbidden(
            "you cannot invite with a role above your own".into(),
        ));
    }
    tx.create_invitation(invitation).map_err(conflict)
}

/// Invitation `id` as `tx` reads it, if `domain::access` lets `user` see and answer it, with
/// `token` when one is presented (it must be this invitation's): 404 otherwise, the same as
/// for an id that names nothing, so a stranger learns nothing by probing.
fn invitation_for(
    tx: &Tx<'_>,
    id: InvitationId,
    user: &User,
    token: Option<&InvitationToken>,
) -> Result<Invitation> {
    let invitation = tx.invitation(id)?.ok_or(Error::NotFound("invitation"))?;
    let presents_token = match token {
        Some(token) if invitation.opens_with(token) => true,
        Some(_) => return Err(Error::NotFound("invitation")),
        None => false,
    };
    if !access::may_answer_invitation(&invitation, &invitee(user, presents_token)) {
        return Err(Error::NotFound("invitation"));
    }
    Ok(invitation)
}

/// Closes invitation `id` with `status` for `user`, if it is theirs to answer (see
/// [`invitation_for`]); it is claimed by them first. Accepting also needs its inviter to still
/// hold a role that may grant the invited one (409 `inviter_lacks_role`, nothing written).
fn answer_in(
    tx: &Tx<'_>,
    id: InvitationId,
    user: UserId,
    token: Option<&InvitationToken>,
    status: InvitationStatus,
) -> Result<Invitation> {
    let me = tx.user(user)?.ok_or(Error::NotFound("user"))?;
    let invitation = invitation_for(tx, id, &me, token)?;
    let now = Utc::now();
    if !invitation.is_open(now) {
        return Err(Error::InvitationClosed);
    }
    if status == InvitationStatus::Accepted {
        let inviter = tx.membership(invitation.team_id, invitation.invited_by)?;
        if !access::invitation_still_grants(&invitation, inviter.map(|m| m.role)) {
            return Err(Error::InviterLacksRole);
        }
    }
    tx.claim_invitation(id, user).map_err(conflict)?;
    tx.close_invitation(id, status, user, now).map_err(conflict)
}

/// Claims the invitation `token` opens for `user` (see [`invitation_for`]): from now on it is
/// theirs alone, listed in their invitations. Refused with 409 when it is closed, or when
/// `user` is already a member (its inviter trying their own link claims nothing).
fn claim_in(tx: &Tx<'_>, token: &InvitationToken, user: UserId) -> Result<InvitationPreview> {
    let me = tx.user(user)?.ok_or(Error::NotFound("user"))?;
    let invitation = invitation_for(tx, token.id, &me, Some(token))?;
    if !invitation.is_open(Utc::now()) {
        return Err(Error::InvitationClosed);
    }
    if tx.membership(invitation.team_id, user)?.is_some() {
        return Err(Error::AlreadyMember);
    }
    let invitation = tx.claim_invitation(invitation.id, user).map_err(conflict)?;
    let team_name = tx.team_name(invitation.team_id)?;
    let inviter_name = tx
        .user(invitation.invited_by)?
        .map_or_else(|| "Someone".to_string(), |u| u.name.as_str().to_string());
    Ok(InvitationPreview {
        invitation,
        team_name,
        inviter_name,
    })
}

/// Inserts the new account `user`, claiming for it the invitation `token` opens when
/// `domain::access` lets a token holder claim it and it is open. With `required` (invite-only
/// registration) there must be such an invitation, or nothing is written
/// (`invitation_required`). One transaction: a token registers one account.
pub(super) fn insert_invited_user(
    tx: &Tx<'_>,
    user: User,
    token: Option<&InvitationToken>,
    required: bool,
) -> Result<User> {
    let now = Utc::now();
    let invitation = match token {
        Some(token) => tx.invitation(token.id)?.filter(|i| {
            let may = access::may_answer_invitation(i, &invitee(&user, i.opens_with(token)));
            may && i.opens_with(token) && i.is_open(now)
        }),
        None => None,
    };
    if required && invitation.is_none() {
        return Err(Error::InvitationRequired);
    }
    let user = tx.insert_user(user).map_err(|e| match e {
        StoreError::EmailTaken => Error::EmailTaken,
        other => other.into(),
    })?;
    if let Some(invitation) = invitation {
        tx.claim_invitation(invitation.id, user.id)
            .map_err(conflict)?;
    }
    Ok(user)
}

/// Revokes invitation `id` on `actor`'s behalf, if `domain::access` allows it on the role `tx`
/// reads; to a non-member of its team the invitation does not exist.
fn revoke_in(tx: &Tx<'_>, id: InvitationId, actor: UserId) -> Result<()> {
    let Some(invitation) = tx.invitation(id)? else {
        return Err(Error::NotFound("invitation"));
    };
    member_for(tx, invitation.team_id, actor, TeamAction::Manage).map_err(|e| match e {
        Error::NotFound(_) => Error::NotFound("invitation"),
        other => other,
    })?;
    tx.close_invitation(id, InvitationStatus::Revoked, actor, Utc::now())
        .map_err(conflict)?;
    Ok(())
}

impl Service {
    /// Creates a team; the caller becomes its owner.
    pub async fn create_team(
        &self,
        auth: &AuthUser,
        input: NewTeam,
        idempotency_key: Option<&str>,
    ) -> Result<TeamView> {
        let idem = super::idempotency(
            auth,
            idempotency_key,
            serde_json::json!(["team", input.name, input.description]),
        )?;
        let mut v = Validator::default();
        let name = v.check("name", TeamName::parse(&input.name));
        let description = v.check(
            "description",
            parse_description(input.description.as_deref().unwrap_or("")),
        );
        v.finish().map_err(Error::Validation)?;
        let now = Utc::now();
        let team = Team {
            id: TeamId::new(),
            name: name.expect("validated"),
            description: description.expect("validated"),
            created_by: auth.user_id,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let owner = Membership {
            team_id: team.id,
            user_id: auth.user_id,
            role: TeamRole::Owner,
            joined_at: now,
        };
        let role = owner.role;
        let created = self
            .store
            .run(move |s| s.create_team(&team, &owner, idem.as_ref()))
            .await
            .map_err(|e| super::create_error(e, "team"))?;
        let team = match created {
            Created::New(team) | Created::Replayed(team) => team,
        };
        Ok(TeamView { team, role })
    }

    /// The caller's teams, oldest first.
    pub async fn teams(
        &self,
        auth: &AuthUser,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<TeamView>> {
        let mut v = Validator::default();
        let (after, limit) = super::page_args(cursor, limit, &mut v);
        v.finish().map_err(Error::Validation)?;
        let user = auth.user_id;
        let rows = self
            .store
            .run(move |s| s.teams_of_user(user, after, limit.get() + 1))
            .await?;
        let page = Page::from_overfetch(rows, limit, |(team, _)| team.id.as_u128());
        Ok(page.map(|(team, membership)| TeamView {
            team,
            role: membership.role,
        }))
    }

    /// A team the caller belongs to; 404 for anyone else.
    pub async fn team(&self, auth: &AuthUser, id: TeamId) -> Result<TeamView> {
        let user = auth.user_id;
        match self.store.run(move |s| s.team_for(id, user)).await? {
            Some((team, Some(m))) if access::may_see_team(Some(m.role)) => {
                Ok(TeamView { team, role: m.role })
            }
            _ => Err(Error::NotFound("team")),
        }
    }

    /// The caller's view of a team, where they may do `action` (403 otherwise).
    async fn team_as(&self, auth: &AuthUser, id: TeamId, action: TeamAction) -> Result<TeamView> {
        let view = self.team(auth, id).await?;
        if !access::may_in_team(view.role, action) {
            return Err(needs_role(action));
        }
        Ok(view)
    }

    /// Renames or re-describes a team (owners and admins).
    pub async fn update_team(
        &self,
        auth: &AuthUser,
        id: TeamId,
        patch: TeamPatch,
        expected_version: Option<u64>,
    ) -> Result<Write<TeamView, TeamView>> {
        let mut v = Validator::default();
        let name = patch
            .name
            .as_deref()
            .and_then(|n| v.check("name", TeamName::parse(n)));
        let description = patch
            .description
            .as_deref()
            .and_then(|d| v.check("description", parse_description(d)));
        let valid = v.finish().map_err(Error::Validation);
        let actor = auth.user_id;
        let changes = TeamChanges { name, description };
        self.store
            .run(move |s| s.write(|tx| update_in(tx, id, actor, changes, valid, expected_version)))
            .await
    }

    /// Deletes a team with its memberships and invitations (owners only).
    pub async fn delete_team(
        &self,
        auth: &AuthUser,
        id: TeamId,
        expected_version: Option<u64>,
    ) -> Result<Write<(), TeamView>> {
        let actor = auth.user_id;
        self.store
            .run(move |s| s.write(|tx| delete_in(tx, id, actor, expected_version)))
            .await
    }

    /// A team's members, oldest user id first (any member may list them).
    pub async fn members(
        &self,
        auth: &AuthUser,
        id: TeamId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<(Membership, User)>> {
        let mut v = Validator::default();
        let (after, limit) = super::page_args(cursor, limit, &mut v);
        v.finish().map_err(Error::Validation)?;
        self.team(auth, id).await?;
        let rows = self
            .store
            .run(move |s| s.members_of_team(id, after, limit.get() + 1))
            .await?;
        Ok(Page::from_overfetch(rows, limit, |(m, _)| {
            m.user_id.as_u128()
        }))
    }

    /// Changes a member's role: owners and admins, never above their own role nor on someone
    /// who outranks them.
    pub async fn set_member_role(
        &self,
        auth: &AuthUser,
        id: TeamId,
        user: UserId,
        role: TeamRole,
    ) -> Result<Membership> {
        let actor = auth.user_id;
        self.store
            .run(move |s| s.write(|tx| set_role_in(tx, id, actor, user, role)))
            .await
    }

    /// Removes a member; anyone may leave. Owners and admins remove members up to their rank.
    pub async fn remove_member(&self, auth: &AuthUser, id: TeamId, user: UserId) -> Result<()> {
        let actor = auth.user_id;
        self.store
            .run(move |s| s.write(|tx| remove_in(tx, id, actor, user)))
            .await
    }

    /// Invites an email to a team with a role no higher than the inviter's (owners and admins).
    /// The answer carries the invitation's accept token, once: whoever the inviter gives it to
    /// (the accept link) may join; holding the email is not enough.
    pub async fn invite(
        &self,
        auth: &AuthUser,
        team: TeamId,
        email: &str,
        role: TeamRole,
    ) -> Result<IssuedInvitation> {
        let mut v = Validator::default();
        let email = v.check("email", Email::parse(email));
        v.finish().map_err(Error::Validation)?;
        let email = email.expect("validated");
        let now = Utc::now();
        let id = InvitationId::new();
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let (token, secret_hash) = InvitationToken::issue(id, secret);
        let invitation = Invitation {
            id,
            team_id: team,
            email,
            role,
            invited_by: auth.user_id,
            created_at: now,
            expires_at: now + INVITATION_TTL,
            status: InvitationStatus::Pending,
            secret_hash: Some(secret_hash),
            claimed_by: None,
        };
        let stored = invitation.clone();
        // With mail configured, the accept link is mailed too, queued with the invitation.
        let (mailer, link_token) = (self.invitation_mailer(), token.clone());
        let queued = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    invite_in(tx, &stored)?;
                    let mail = match &mailer {
                        Some(mailer) => Some(super::account_mail::invitation_letter(
                            tx,
                            mailer,
                            &stored,
                            &link_token,
                        )?),
                        None => None,
                    };
                    Ok::<_, Error>(super::account_mail::queue(tx, mail)?)
                })
            })
            .await?;
        if queued {
            self.wake_outbox();
        }
        Ok(IssuedInvitation { invitation, token })
    }

    /// A team's invitations, answered or not (owners and admins).
    pub async fn team_invitations(
        &self,
        auth: &AuthUser,
        team: TeamId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Invitation>> {
        let mut v = Validator::default();
        let (after, limit) = super::page_args(cursor, limit, &mut v);
        v.finish().map_err(Error::Validation)?;
        self.team_as(auth, team, TeamAction::Manage).await?;
        let rows = self
            .store
            .run(move |s| s.invitations_of_team(team, after, limit.get() + 1))
            .await?;
        Ok(Page::from_overfetch(rows, limit, |i| i.id.as_u128()))
    }

    /// Open invitations the caller may see and answer, oldest first: those they claimed (opened
    /// the accept link of, or registered with), and, once addresses are verified, those to
    /// their verified address. Holding the invited address alone shows nothing.
    pub async fn my_invitations(
        &self,
        auth: &AuthUser,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Invitation>> {
        let mut v = Validator::default();
        let (after, limit) = super::page_args(cursor, limit, &mut v);
        v.finish().map_err(Error::Validation)?;
        let me = self.profile(auth).await?;
        let (user, email, n) = (me.id, me.email.clone(), limit.get() + 1);
        let (mut rows, addressed) = self
            .store
            .run(move |s| {
                let claimed = s.claimed_invitations(user, after, n)?;
                let addressed = s.pending_invitations_for(&email, after, n)?;
                Ok::<_, StoreError>((claimed, addressed))
            })
            .await?;
        rows.extend(
            addressed
                .into_iter()
                .filter(|i| access::may_answer_invitation(i, &invitee(&me, false))),
        );
        rows.sort_by_key(|i| i.id.as_u128());
        rows.dedup_by_key(|i| i.id);
        rows.truncate(n);
        let page = Page::from_overfetch(rows, limit, |i| i.id.as_u128());
        let now = Utc::now();
        Ok(Page {
            items: page.items.into_iter().filter(|i| i.is_open(now)).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// The caller's open invitations (see [`Self::my_invitations`]), up to `limit`, with the
    /// names of their teams and inviters: what the caller needs to answer them.
    pub async fn my_invitation_previews(
        &self,
        auth: &AuthUser,
        limit: u32,
    ) -> Result<Vec<InvitationPreview>> {
        let mine = self.my_invitations(auth, None, Some(limit)).await?.items;
        if mine.is_empty() {
            return Ok(vec![]);
        }
        let previews = self
            .store
            .run(move |s| {
                mine.into_iter()
                    .map(|invitation| {
                        let team = s.team_for(invitation.team_id, invitation.invited_by)?;
                        let inviter = s.user(invitation.invited_by)?;
                        Ok(InvitationPreview {
                            team_name: team
                                .map(|(t, _)| t.name.as_str().to_string())
                                .unwrap_or_default(),
                            inviter_name: inviter
                                .map_or_else(|| "Someone".into(), |u| u.name.as_str().to_string()),
                            invitation,
                        })
                    })
                    .collect::<std::result::Result<Vec<_>, StoreError>>()
            })
            .await?;
        Ok(previews)
    }

    /// Accepts or declines an invitation the caller may answer: one they claimed, or (with its
    /// accept `token`) an unclaimed one. Anyone else, and a wrong token, get 404.
    pub async fn answer_invitation(
        &self,
        auth: &AuthUser,
        id: InvitationId,
        token: Option<&str>,
        accept: bool,
    ) -> Result<Invitation> {
        let token = match token {
            Some(raw) => Some(InvitationToken::parse(raw).ok_or(Error::NotFound("invitation"))?),
            None => None,
        };
        let status = if accept {
            InvitationStatus::Accepted
        } else {
            InvitationStatus::Declined
        };
        let user = auth.user_id;
        self.store
            .run(move |s| s.write(|tx| answer_in(tx, id, user, token.as_ref(), status)))
            .await
    }

    /// Accepts or declines the invitation an accept token opens (see [`Self::answer_invitation`]).
    pub async fn answer_invitation_by_token(
        &self,
        auth: &AuthUser,
        token: &str,
        accept: bool,
    ) -> Result<Invitation> {
        let id = InvitationToken::parse(token)
            .ok_or(Error::NotFound("invitation"))?
            .id;
        self.answer_invitation(auth, id, Some(token), accept).await
    }

    /// Claims the invitation an accept token opens for the caller and shows what it offers:
    /// from now on it is theirs alone (listed in their invitations, answered by id). A wrong
    /// token, or one another account claimed, gets 404.
    pub async fn claim_invitation(
        &self,
        auth: &AuthUser,
        token: &str,
    ) -> Result<InvitationPreview> {
        let token = InvitationToken::parse(token).ok_or(Error::NotFound("invitation"))?;
        let user = auth.user_id;
        self.store
            .run(move |s| s.write(|tx| claim_in(tx, &token, user)))
            .await
    }

    /// Revokes a pending invitation (owners and admins of its team).
    pub async fn revoke_invitation(&self, auth: &AuthUser, id: InvitationId) -> Result<()> {
        let actor = auth.user_id;
        self.store
            .run(move |s| s.write(|tx| revoke_in(tx, id, actor)))
            .await
    }
}

/// The longest `q` a people search accepts.
pub const PEOPLE_QUERY_MAX_CHARS: usize = 100;

impl Service {
    /// People who share a team with the caller (the caller included) whose name or email
    /// contains `q` (case-insensitive), in id order: the assignment picker.
    pub async fn teammates(
        &self,
        auth: &AuthUser,
        q: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<User>> {
        let mut v = Validator::default();
        let (after, limit) = super::page_args(cursor, limit, &mut v);
        if q.is_some_and(|q| q.chars().count() > PEOPLE_QUERY_MAX_CHARS) {
            v.push(
                "q",
                format!("must be at most {PEOPLE_QUERY_MAX_CHARS} characters"),
            );
        }
        v.finish().map_err(Error::Validation)?;
        let needle = q.map(|q| q.trim().to_lowercase()).unwrap_or_default();
        let user = auth.user_id;
        let people = self.store.run(move |s| s.teammates_of(user)).await?;
        let matches: Vec<User> = people
            .into_iter()
            .filter(|u| after.is_none_or(|a| u.id.as_u128() > a))
            .filter(|u| {
                needle.is_empty()
                    || u.name.as_str().to_lowercase().contains(&needle)
                    || u.email.as_str().contains(&needle)
            })
            .take(limit.get() + 1)
            .collect();
        Ok(Page::from_overfetch(matches, limit, |u| u.id.as_u128()))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::Store;

    /// A store holding one team with an owner, an admin and a member.
    pub(in crate::service) struct Fixture {
        _dir: tempfile::TempDir,
        pub store: Store,
        pub team: TeamId,
        pub owner: UserId,
        pub admin: UserId,
        pub member: UserId,
    }

    /// An invitation to `team` by `by`, as the service would make it.
    fn invitation(team: TeamId, by: UserId, email: &str, role: TeamRole) -> Invitation {
        let now = Utc::now();
        Invitation {
            id: InvitationId::new(),
            team_id: team,
            email: Email::parse(email).unwrap(),
            role,
            invited_by: by,
            created_at: now,
            expires_at: now + INVITATION_TTL,
            status: InvitationStatus::Pending,
            secret_hash: None,
            claimed_by: None,
        }
    }

    pub(in crate::service) fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (team, membership) = crate::store::owned_team(&store);
        let (team, owner, now) = (team.id, membership.user_id, Utc::now());
        let join = |email: &str, role: TeamRole| {
            let invitation = invitation(team, owner, email, role);
            let user = UserId::new();
            let accepted = InvitationStatus::Accepted;
            store
                .write(|tx| {
                    tx.create_invitation(&invitation)?;
                    tx.close_invitation(invitation.id, accepted, user, now)
                })
                .unwrap();
            user
        };
        let admin = join("admin@example.com", TeamRole::Admin);
        let member = join("member@example.com", TeamRole::Member);
        Fixture {
            _dir: dir,
            store,
            team,
            owner,
            admin,
            member,
        }
    }

    pub(in crate::service) fn role_of(f: &Fixture, user: UserId) -> Option<TeamRole> {
        let (_, membership) = f.store.team_for(f.team, user).unwrap().unwrap();
        membership.map(|m| m.role)
    }

    #[test]
    fn a_member_change_decides_on_the_roles_its_transaction_reads() {
        let f = fixture();
        // What a check made before the transaction would have seen: an admin, who may
        // promote a member and remove them.
        let seen = role_of(&f, f.admin).unwrap();
        assert!(access::may_set_role(
            seen,
            TeamRole::Member,
            TeamRole::Admin
        ));
        assert!(access::may_remove_member(seen, TeamRole::Member, false));

        // A commit in between demotes the admin.
        let demoted = f
            .store
            .write(|tx| set_role_in(tx, f.team, f.owner, f.admin, TeamRole::Member))
            .unwrap();
        assert_eq!(demoted.role, TeamRole::Member);

        let promote = f
            .store
            .write(|tx| set_role_in(tx, f.team, f.admin, f.member, TeamRole::Admin));
        assert!(matches!(promote, Err(Error::Forbidden(_))), "{promote:?}");
        let remove = f.store.write(|tx| remove_in(tx, f.team, f.admin, f.member));
        assert!(matches!(remove, Err(Error::Forbidden(_))), "{remove:?}");
        assert_eq!(role_of(&f, f.member), Some(TeamRole::Member));

        // Promoted again, the same writes go through.
        f.store
            .write(|tx| set_role_in(tx, f.team, f.owner, f.admin, TeamRole::Admin))
            .unwrap();
        let promoted = f
            .store
            .write(|tx| set_role_in(tx, f.team, f.admin, f.member, TeamRole::Admin))
            .unwrap();
        assert_eq!(promoted.role, TeamRole::Admin);
        f.store
            .write(|tx| remove_in(tx, f.team, f.admin, f.member))
            .unwrap();
        assert_eq!(role_of(&f, f.member), None);
    }

    #[test]
    fn a_member_change_answers_404_before_403() {
        let f = fixture();
        let stranger = UserId::new();
        let as_stranger = f
            .store
            .write(|tx| set_role_in(tx, f.team, stranger, f.member, TeamRole::Member));
        assert!(
            matches!(as_stranger, Err(Error::NotFound("team"))),
            "{as_stranger:?}"
        );
        let on_stranger = f
            .store
            .write(|tx| remove_in(tx, f.team, f.member, stranger));
        assert!(
            matches!(on_stranger, Err(Error::NotFound("member"))),
            "{on_stranger:?}"
        );
        // The owner is removed from the team by someone else: the team is gone to them.
        f.store
            .write(|tx| set_role_in(tx, f.team, f.owner, f.admin, TeamRole::Owner))
            .unwrap();
        f.store
            .write(|tx| remove_in(tx, f.team, f.admin, f.owner))
            .unwrap();
        let as_removed = f.store.write(|tx| remove_in(tx, f.team, f.owner, f.member));
        assert!(
            matches!(as_removed, Err(Error::NotFound("team"))),
            "{as_removed:?}"
        );
    }

    #[test]
    fn the_last_owner_stays() {
        let f = fixture();
        let demote = f
            .store
            .write(|tx| set_role_in(tx, f.team, f.owner, f.owner, TeamRole::Admin));
        assert!(matches!(demote, Err(Error::LastOwner)), "{demote:?}");
        let leave = f.store.write(|tx| remove_in(tx, f.team, f.owner, f.owner));
        assert!(matches!(leave, Err(Error::LastOwner)), "{leave:?}");
        assert_eq!(role_of(&f, f.owner), Some(TeamRole::Owner));
    }

    /// Demotes the fixture's admin to a member, as a commit by the owner.
    pub(in crate::service) fn demote_admin(f: &Fixture) {
        f.store
            .write(|tx| set_role_in(tx, f.team, f.owner, f.admin, TeamRole::Member))
            .unwrap();
    }

    fn team_name(f: &Fixture) -> String {
        let (team, _) = f.store.team_for(f.team, f.owner).unwrap().unwrap();
        team.name.as_str().to_string()
    }

    fn rename(name: &str) -> TeamChanges {
        TeamChanges {
            name: Some(TeamName::parse(name).unwrap()),
            description: None,
        }
    }

    #[test]
    fn team_writes_decide_on_the_role_their_transaction_reads() {
        let f = fixture();
        // What a check made before the transaction would have seen: an admin, who may manage
        // the team and invite members.
        let seen = role_of(&f, f.admin).unwrap();
        assert!(access::may_in_team(seen, TeamAction::Manage));
        assert!(access::may_invite(seen, TeamRole::Member));
        let pending = invitation(f.team, f.owner, "pending@example.com", TeamRole::Member);
        f.store.write(|tx| invite_in(tx, &pending)).unwrap();

        // A commit in between demotes the admin.
        demote_admin(&f);

        let update = f
            .store
            .write(|tx| update_in(tx, f.team, f.admin, rename("Mine"), Ok(()), None));
        assert!(matches!(update, Err(Error::Forbidden(_))), "{update:?}");
        let new = invitation(f.team, f.admin, "new@example.com", TeamRole::Member);
        let invite = f.store.write(|tx| invite_in(tx, &new));
        assert!(matches!(invite, Err(Error::Forbidden(_))), "{invite:?}");
        let revoke = f.store.write(|tx| revoke_in(tx, pending.id, f.admin));
        assert!(matches!(revoke, Err(Error::Forbidden(_))), "{revoke:?}");
        assert_eq!(team_name(&f), "T");
        let invitations = f.store.invitations_of_team(f.team, None, 10).unwrap();
        let statuses: Vec<_> = invitations.iter().map(|i| (i.id, i.status)).collect();
        assert!(
            !statuses.iter().any(|(id, _)| *id == new.id),
            "{statuses:?}"
        );
        assert!(statuses.contains(&(pending.id, InvitationStatus::Pending)));

        // Promoted again, the same writes go through.
        f.store
            .write(|tx| set_role_in(tx, f.team, f.owner, f.admin, TeamRole::Admin))
            .unwrap();
        let update = f
            .store
            .write(|tx| update_in(tx, f.team, f.admin, rename("Mine"), Ok(()), None))
            .unwrap();
        assert!(matches!(update, Write::Done(ref v) if v.role == TeamRole::Admin));
        assert_eq!(team_name(&f), "Mine");
        f.store.write(|tx| invite_in(tx, &new)).unwrap();
        f.store
            .write(|tx| revoke_in(tx, pending.id, f.admin))
            .unwrap();
    }

    #[test]
    fn team_writes_answer_404_then_403_then_the_body_then_the_version() {
        let f = fixture();
        let pending = invitation(f.team, f.owner, "pending@example.com", TeamRole::Member);
        f.store.write(|tx| invite_in(tx, &pending)).unwrap();
        let invalid = || Err(Error::invalid("name", "bad"));

        // To a non-member the team and its invitations do not exist, whatever the request.
        let stranger = UserId::new();
        let update = f
            .store
            .write(|tx| update_in(tx, f.team, stranger, rename("X"), invalid(), Some(9)));
        assert!(matches!(update, Err(Error::NotFound("team"))), "{update:?}");
        let delete = f.store.write(|tx| delete_in(tx, f.team, stranger, Some(9)));
        assert!(matches!(delete, Err(Error::NotFound("team"))), "{delete:?}");
        let new = invitation(f.team, stranger, "new@example.com", TeamRole::Owner);
        let invite = f.store.write(|tx| invite_in(tx, &new));
        assert!(matches!(invite, Err(Error::NotFound("team"))), "{invite:?}");
        let revoke = f.store.write(|tx| revoke_in(tx, pending.id, stranger));
        assert!(
            matches!(revoke, Err(Error::NotFound("invitation"))),
            "{revoke:?}"
        );

        // A member without the role: 403 before the body's 422 and the version's 412.
        let update = f
            .store
            .write(|tx| update_in(tx, f.team, f.member, rename("X"), invalid(), Some(9)));
        assert!(matches!(update, Err(Error::Forbidden(_))), "{update:?}");
        let delete = f.store.write(|tx| delete_in(tx, f.team, f.admin, Some(9)));
        assert!(matches!(delete, Err(Error::Forbidden(_))), "{delete:?}");

        // Allowed: the body, then the version, answered with the team this transaction read.
        let update = f
            .store
            .write(|tx| update_in(tx, f.team, f.admin, rename("X"), invalid(), Some(9)));
        assert!(matches!(update, Err(Error::Validation(_))), "{update:?}");
        let update = f
            .store
            .write(|tx| update_in(tx, f.team, f.admin, rename("X"), Ok(()), Some(9)))
            .unwrap();
        assert!(
            matches!(update, Write::Stale(ref v) if v.team.version == 1 && v.role == TeamRole::Admin),
            "{update:?}"
        );
        let delete = f
            .store
            .write(|tx| delete_in(tx, f.team, f.owner, Some(9)))
            .unwrap();
        assert!(matches!(delete, Write::Stale(_)), "{delete:?}");
        assert_eq!(team_name(&f), "T");
    }
}
