//! Invitations: `POST /teams/invite`, a team's list, mine, accept, decline, revoke.

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
use crate::service::Service;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "InvitationStatus", rename_all = "snake_case")]
pub enum InvitationStatusBody {
    Pending,
    Accepted,
    Declined,
    Revoked,
}

#[derive(Object)]
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
    /// `pending` until answered or revoked (an expired one stays `pending` but cannot be
    /// accepted).
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
    /// The invitation; it expires after 7 days.
    #[oai(status = 201)]
    Created(Json<InvitationBody>),
}

pub struct InvitationsApi;

#[OpenApi(tag = "ApiTags::Invitations")]
impl InvitationsApi {
    /// Invite someone to a team
    ///
    /// Owners and admins, for a role no higher than their own. One pending invitation per
    /// email and team.
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
        Ok(InvitationCreated::Created(Json(invitation.into())))
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
    /// Open invitations addressed to my email, including those sent before I registered.
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

    /// Accept an invitation
    ///
    /// Makes me a member with the invitation's role.
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
                .answer_invitation(&auth.0, InvitationId::from_uuid(id.0), true)
                .await?
                .into(),
        ))
    }

    /// Decline an invitation
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
                .answer_invitation(&auth.0, InvitationId::from_uuid(id.0), false)
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
        ("acceptInvitation", &[409]),
        ("declineInvitation", &[409]),
        ("revokeInvitation", &[409]),
    ];
}
