//! Invitations: `POST /teams/invite`, a team's list, mine, claim, accept, decline, revoke.
//!
//! What lets someone see and answer an invitation is its accept token, returned once by
//! `POST /teams/invite` (with the web app's accept link): the first account to present it
//! claims the invitation. Holding the invited address is not enough (nobody's address is
//! verified). A wrong token answers exactly as an unknown id: 404 `not_found`.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::error::ApiResult;
use super::page::{Page, PageItem};
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::teams::TeamRoleBody;
use super::text::Text;
use super::{ApiTags, NoContent};
use crate::domain::page;
use crate::domain::team::{Invitation, InvitationStatus};
use crate::domain::user::EMAIL_MAX_CHARS;
use crate::domain::{InvitationId, TeamId};
use crate::service::{InvitationPreview, IssuedInvitation, Service};

/// The longest accept token accepted (they are 101 characters).
const TOKEN_MAX_CHARS: usize = 200;

/// Where an invitation stands: `pending` until answered or revoked (an expired one stays
/// `pending` but cannot be accepted).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "InvitationStatus", rename_all = "snake_case")]
pub enum InvitationStatusBody {
    Pending,
    Accepted,
    Declined,
    Revoked,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct InviteRequest {
    pub team_id: Uuid,
    /// Who to invite. They need not have an account yet: the invitation waits for them.
    pub email: Text<1, EMAIL_MAX_CHARS>,
    /// The role they get on accepting; never above your own.
    pub role: TeamRoleBody,
}

#[derive(Object)]
#[oai(rename = "Invitation")]
pub struct InvitationBody {
    pub id: Uuid,
    pub team_id: Uuid,
    pub email: String,
    pub role: TeamRoleBody,
    pub status: InvitationStatusBody,
    pub invited_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<Invitation> for InvitationBody {
    fn from(invitation: Invitation) -> Self {
        Self {
            id: invitation.id.as_uuid(),
            team_id: invitation.team_id.as_uuid(),
            email: invitation.email.into(),
            role: invitation.role.into(),
            status: match invitation.status {
                InvitationStatus::Pending => InvitationStatusBody::Pending,
                InvitationStatus::Accepted => InvitationStatusBody::Accepted,
                InvitationStatus::Declined => InvitationStatusBody::Declined,
                InvitationStatus::Revoked => InvitationStatusBody::Revoked,
            },
            invited_by: invitation.invited_by.as_uuid(),
            created_at: invitation.created_at,
            expires_at: invitation.expires_at,
        }
    }
}

/// A new invitation with its accept token, shown this once.
#[derive(Object)]
#[oai(rename = "IssuedInvitation")]
pub struct IssuedInvitationBody {
    #[oai(flatten)]
    pub invitation: InvitationBody,
    /// The accept token: whoever presents it first claims the invitation (see `POST
    /// /invitations/claim`, `POST /invitations/accept`). Shown only in this answer; the server
    /// keeps only its SHA-256. Pass it (or `accept_url`) on to the invitee.
    pub token: String,
    /// The web app's accept page for this token, relative to the site:
    /// `/invitations/accept?token=…`.
    pub accept_url: String,
}

impl From<IssuedInvitation> for IssuedInvitationBody {
    fn from(issued: IssuedInvitation) -> Self {
        Self {
            accept_url: issued.accept_path(),
            token: issued.token,
            invitation: issued.invitation.into(),
        }
    }
}

/// An invitation as its claimant sees it before answering.
#[derive(Object)]
#[oai(rename = "InvitationPreview")]
pub struct InvitationPreviewBody {
    #[oai(flatten)]
    pub invitation: InvitationBody,
    /// The team's name (the invitee is no member yet).
    pub team_name: String,
    /// The inviter's name.
    pub invited_by_name: String,
}

impl From<InvitationPreview> for InvitationPreviewBody {
    fn from(preview: InvitationPreview) -> Self {
        Self {
            invitation: preview.invitation.into(),
            team_name: preview.team_name,
            invited_by_name: preview.inviter_name,
        }
    }
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct InvitationTokenRequest {
    /// The accept token (`token` of `POST /teams/invite`, the `token` of the accept link).
    #[oai(write_only)]
    pub token: Text<1, TOKEN_MAX_CHARS>,
}

pub type InvitationPage = Page<InvitationBody>;

impl PageItem for InvitationBody {
    const PAGE_NAME: &'static str = "InvitationPage";
    const PAGE_DESCRIPTION: Option<&'static str> = Some("A page of invitations.");
}

impl From<page::Page<Invitation>> for InvitationPage {
    fn from(page: page::Page<Invitation>) -> Self {
        Page::map(page, InvitationBody::from)
    }
}

#[derive(ApiResponse)]
pub enum InvitationCreated {
    /// The invitation with its accept token (shown only here); it expires after 7 days.
    #[oai(status = 201)]
    Created(
        Json<IssuedInvitationBody>,
        /// The invitation's URL, `/api/invitations/{id}` (where it is revoked).
        #[oai(header = "Location")]
        String,
    ),
}

pub struct InvitationsApi;

#[OpenApi(tag = "ApiTags::Invitations")]
impl InvitationsApi {
    /// Invite someone to a team
    ///
    /// Owners and admins, for a role no higher than their own. One pending invitation per
    /// email and team. The answer carries the accept `token` and `accept_url`, this once:
    /// pass the link on to the invitee. Whoever presents the token first may join (the email
    /// only names who it is for, and who is notified); accepting needs the inviter to still
    /// hold a role that may grant the invited one. The 201's `Location` is the invitation's URL.
    #[oai(path = "/teams/invite", method = "post", operation_id = "inviteToTeam")]
    async fn invite(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        body: Json<InviteRequest>,
    ) -> ApiResult<InvitationCreated> {
        let InviteRequest {
            team_id,
            email,
            role,
        } = body.0;
        let invitation = service
            .invite(&auth.0, TeamId::from_uuid(team_id), &email.0, role.into())
            .await?;
        let body = IssuedInvitationBody::from(invitation);
        let location = format!("/api/invitations/{}", body.invitation.id);
        Ok(InvitationCreated::Created(Json(body), location))
    }

    /// List a team's invitations
    ///
    /// Owners and admins; every invitation, answered or not, oldest first.
    #[oai(
        path = "/teams/:id/invitations",
        method = "get",
        operation_id = "listTeamInvitations"
    )]
    async fn team_invitations(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<InvitationPage>> {
        let page = service
            .team_invitations(
                &auth.0,
                TeamId::from_uuid(id.0),
                cursor.0.as_deref(),
                limit.0,
            )
            .await?;
        Ok(Json(page.into()))
    }

    /// List my invitations
    ///
    /// Open invitations I claimed: I opened their accept link, presented their token (`POST
    /// /invitations/claim`), or registered with it. An invitation addressed to my email is not
    /// listed until I do (addresses are not verified).
    #[oai(
        path = "/invitations",
        method = "get",
        operation_id = "listMyInvitations"
    )]
    async fn mine(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<InvitationPage>> {
        Ok(Json(
            service
                .my_invitations(&auth.0, cursor.0.as_deref(), limit.0)
                .await?
                .into(),
        ))
    }

    /// Claim an invitation by its token
    ///
    /// Shows what the invitation offers (team, role, inviter) and makes it mine: it is listed
    /// in `GET /invitations` and answered by id from then on, by me only. 404 for a wrong
    /// token or one another account claimed (as for an unknown invitation); 409
    /// `invitation_closed` when it was answered, revoked or expired, `already_member` when I
    /// am in the team already.
    #[oai(
        path = "/invitations/claim",
        method = "post",
        operation_id = "claimInvitation"
    )]
    async fn claim(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        body: Json<InvitationTokenRequest>,
    ) -> ApiResult<Json<InvitationPreviewBody>> {
        Ok(Json(
            service
                .claim_invitation(&auth.0, &body.0.token.0)
                .await?
                .into(),
        ))
    }

    /// Accept an invitation by its token
    ///
    /// Claims and accepts the invitation the token opens: makes me a member with its role.
    /// 404 for a wrong token or one another account claimed; 409 `invitation_closed` when it
    /// was answered, revoked or expired (a token works once), `inviter_lacks_role` when its
    /// inviter no longer holds a role that may grant the invited one (nothing changes).
    #[oai(
        path = "/invitations/accept",
        method = "post",
        operation_id = "acceptInvitationByToken"
    )]
    async fn accept_by_token(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        body: Json<InvitationTokenRequest>,
    ) -> ApiResult<Json<InvitationBody>> {
        Ok(Json(
            service
                .answer_invitation_by_token(&auth.0, &body.0.token.0, true)
                .await?
                .into(),
        ))
    }

    /// Decline an invitation by its token
    ///
    /// Claims and declines the invitation the token opens. 404 and 409 as for accepting.
    #[oai(
        path = "/invitations/decline",
        method = "post",
        operation_id = "declineInvitationByToken"
    )]
    async fn decline_by_token(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        body: Json<InvitationTokenRequest>,
    ) -> ApiResult<Json<InvitationBody>> {
        Ok(Json(
            service
                .answer_invitation_by_token(&auth.0, &body.0.token.0, false)
                .await?
                .into(),
        ))
    }

    /// Accept an invitation
    ///
    /// One of mine (`GET /invitations`: I claimed it): makes me a member with its role. 404
    /// for any other (use `POST /invitations/accept` with the token); 409
    /// `inviter_lacks_role` when its inviter no longer holds a role that may grant the
    /// invited one (nothing changes).
    #[oai(
        path = "/invitations/:id/accept",
        method = "post",
        operation_id = "acceptInvitation"
    )]
    async fn accept(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Json<InvitationBody>> {
        Ok(Json(
            service
                .answer_invitation(&auth.0, InvitationId::from_uuid(id.0), None, true)
                .await?
                .into(),
        ))
    }

    /// Decline an invitation
    ///
    /// One of mine (`GET /invitations`: I claimed it); 404 for any other.
    #[oai(
        path = "/invitations/:id/decline",
        method = "post",
        operation_id = "declineInvitation"
    )]
    async fn decline(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Json<InvitationBody>> {
        Ok(Json(
            service
                .answer_invitation(&auth.0, InvitationId::from_uuid(id.0), None, false)
                .await?
                .into(),
        ))
    }

    /// Revoke an invitation
    ///
    /// Owners and admins of its team, while it is pending.
    #[oai(
        path = "/invitations/:id",
        method = "delete",
        operation_id = "revokeInvitation"
    )]
    async fn revoke(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        service
            .revoke_invitation(&auth.0, InvitationId::from_uuid(id.0))
            .await?;
        Ok(NoContent::Done)
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for InvitationsApi {
    const ERRORS: &'static [OperationErrors] = &[
        ("inviteToTeam", &[404, 409, 422]),
        ("listTeamInvitations", &[422]),
        ("listMyInvitations", &[404, 422]),
        ("claimInvitation", &[404, 409, 422]),
        ("acceptInvitationByToken", &[404, 409, 422]),
        ("declineInvitationByToken", &[404, 409, 422]),
        ("acceptInvitation", &[409]),
        ("declineInvitation", &[409]),
        ("revokeInvitation", &[409]),
    ];
}
