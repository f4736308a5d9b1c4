//! `/teams`: teams and their members.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use super::conditional::{Created, Deleted, Located, Read, Versioned, Written, if_match};
use super::error::ApiResult;
use super::page::{Page, PageItem};
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::text::Text;
use super::{ApiTags, NoContent};
use crate::domain::team::{Membership, TEAM_DESCRIPTION_MAX_CHARS, TEAM_NAME_MAX_CHARS, TeamRole};
use crate::domain::{TeamId, User, UserId};
use crate::service::{NewTeam, Service, TeamPatch, TeamView};

/// A member's role in a team: `owner` > `admin` > `member`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "TeamRole", rename_all = "snake_case")]
pub enum TeamRoleBody {
    Owner,
    Admin,
    Member,
}

impl From<TeamRole> for TeamRoleBody {
    fn from(role: TeamRole) -> Self {
        match role {
            TeamRole::Owner => TeamRoleBody::Owner,
            TeamRole::Admin => TeamRoleBody::Admin,
            TeamRole::Member => TeamRoleBody::Member,
        }
    }
}

impl From<TeamRoleBody> for TeamRole {
    fn from(role: TeamRoleBody) -> Self {
        match role {
            TeamRoleBody::Owner => TeamRole::Owner,
            TeamRoleBody::Admin => TeamRole::Admin,
            TeamRoleBody::Member => TeamRole::Member,
        }
    }
}

type TeamNameText = Text<1, TEAM_NAME_MAX_CHARS>;
type DescriptionText = Text<0, TEAM_DESCRIPTION_MAX_CHARS>;

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateTeamRequest {
    /// 1 to 100 characters.
    pub name: TeamNameText,
    /// Up to 2,000 characters; `null` or absent means none.
    #[oai(nullable)]
    pub description: Option<DescriptionText>,
}

/// Only the fields present change; `null` leaves a field unchanged and an empty
/// `description` clears it.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateTeamRequest {
    #[oai(nullable)]
    pub name: Option<TeamNameText>,
    #[oai(nullable)]
    pub description: Option<DescriptionText>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    /// The new role; never above your own.
    pub role: TeamRoleBody,
}

/// A team, as one of its members sees it.
#[derive(Object)]
#[oai(rename = "Team")]
pub struct TeamBody {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// The caller's role in this team.
    pub my_role: TeamRoleBody,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented on every change; also the `ETag`.
    pub version: u64,
}

impl Located for TeamBody {
    fn location(&self) -> String {
        format!("/api/teams/{}", self.id)
    }
}

impl Versioned for TeamBody {
    fn version(&self) -> u64 {
        self.version
    }
}

impl From<TeamView> for TeamBody {
    fn from(view: TeamView) -> Self {
        let team = view.team;
        Self {
            id: team.id.as_uuid(),
            name: team.name.as_str().to_string(),
            description: team.description,
            my_role: view.role.into(),
            created_by: team.created_by.as_uuid(),
            created_at: team.created_at,
            updated_at: team.updated_at,
            version: team.version,
        }
    }
}

/// Who a member is, as other members see them.
#[derive(Object)]
pub struct MemberUser {
    pub id: Uuid,
    pub name: String,
    pub email: String,
}

#[derive(Object)]
#[oai(rename = "Member")]
pub struct MemberBody {
    pub user: MemberUser,
    pub role: TeamRoleBody,
    pub joined_at: DateTime<Utc>,
}

impl MemberBody {
    fn new(membership: Membership, user: User) -> Self {
        Self {
            user: MemberUser {
                id: user.id.as_uuid(),
                name: user.name.into(),
                email: user.email.into(),
            },
            role: membership.role.into(),
            joined_at: membership.joined_at,
        }
    }
}

pub type TeamPage = Page<TeamBody>;

impl PageItem for TeamBody {
    const PAGE_NAME: &'static str = "TeamPage";
    const PAGE_DESCRIPTION: Option<&'static str> = Some("A page of teams.");
}

pub type MemberPage = Page<MemberBody>;

impl PageItem for MemberBody {
    const PAGE_NAME: &'static str = "MemberPage";
    const PAGE_DESCRIPTION: Option<&'static str> = Some("A page of members.");
}

pub struct TeamsApi;

#[OpenApi(prefix_path = "/teams", tag = "ApiTags::Teams")]
impl TeamsApi {
    /// Create a team
    ///
    /// You become its owner. The 201 names the new team's URL in `Location`.
    #[oai(path = "/", method = "post", operation_id = "createTeam")]
    async fn create(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// Makes a retried create safe: the same key and body within 24 hours return the
        /// first response instead of creating a duplicate (1 to 255 visible ASCII characters); 410
        /// `idempotent_resource_gone` if what the first created has since been deleted.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<CreateTeamRequest>,
    ) -> ApiResult<Created<TeamBody>> {
        let input = NewTeam {
            name: body.0.name.0,
            description: body.0.description.map(String::from),
        };
        Ok(Created::new(
            service
                .create_team(&auth.0, input, idempotency_key.0.as_deref())
                .await?,
        ))
    }

    /// List my teams
    #[oai(path = "/", method = "get", operation_id = "listTeams")]
    async fn list(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<TeamPage>> {
        let page = service.teams(&auth.0, cursor.0.as_deref(), limit.0).await?;
        Ok(Json(Page::map(page, TeamBody::from)))
    }

    /// Get a team
    ///
    /// Members only; to anyone else the team does not exist (404).
    #[oai(path = "/:id", method = "get", operation_id = "getTeam")]
    async fn get(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// An `ETag` you have: answered 304 if the team is still at that version.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> ApiResult<Read<TeamBody>> {
        let view = service.team(&auth.0, TeamId::from_uuid(id.0)).await?;
        Ok(Read::new(view, if_none_match.0.as_deref()))
    }

    /// Update a team
    ///
    /// Owners and admins. Send `If-Match` with the `ETag` you read to avoid overwriting someone
    /// else's change: a stale one (or a weak `W/` tag: the comparison is strong) gets 412, a
    /// problem `precondition_failed` whose `current` is the current team, with its `ETag`; nothing
    /// changed.
    #[oai(path = "/:id", method = "patch", operation_id = "updateTeam")]
    async fn update(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The `ETag` the change is based on.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
        body: Json<UpdateTeamRequest>,
    ) -> ApiResult<Written<TeamBody>> {
        let patch = TeamPatch {
            name: body.0.name.map(String::from),
            description: body.0.description.map(String::from),
        };
        let expected = if_match(if_match_header.0.as_deref());
        Ok(Written::new(
            service
                .update_team(&auth.0, TeamId::from_uuid(id.0), patch, expected)
                .await?,
        ))
    }

    /// Delete a team
    ///
    /// Owners only. Deletes its memberships and invitations too. A stale `If-Match` (or a
    /// weak `W/` tag: the comparison is strong) gets 412, a problem `precondition_failed` whose
    /// `current` is the current team, with its `ETag`; nothing is deleted.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteTeam")]
    async fn delete(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The `ETag` the deletion is based on.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
    ) -> ApiResult<Deleted<TeamBody>> {
        let expected = if_match(if_match_header.0.as_deref());
        Ok(Deleted::new(
            service
                .delete_team(&auth.0, TeamId::from_uuid(id.0), expected)
                .await?,
        ))
    }

    /// List a team's members
    ///
    /// Any member may list them.
    #[oai(path = "/:id/members", method = "get", operation_id = "listMembers")]
    async fn members(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<MemberPage>> {
        let page = service
            .members(
                &auth.0,
                TeamId::from_uuid(id.0),
                cursor.0.as_deref(),
                limit.0,
            )
            .await?;
        Ok(Json(Page::map(page, |(m, u)| MemberBody::new(m, u))))
    }

    /// Change a member's role
    ///
    /// Owners and admins, never to a role above their own nor for someone who outranks them.
    /// The last owner cannot be demoted.
    #[oai(
        path = "/:id/members/:user_id",
        method = "patch",
        operation_id = "updateMember"
    )]
    async fn update_member(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        user_id: Path<Uuid>,
        body: Json<UpdateMemberRequest>,
    ) -> ApiResult<Json<MemberRoleBody>> {
        let (team, user) = (TeamId::from_uuid(id.0), UserId::from_uuid(user_id.0));
        let membership = service
            .set_member_role(&auth.0, team, user, body.0.role.into())
            .await?;
        Ok(Json(MemberRoleBody {
            user_id: user_id.0,
            role: membership.role.into(),
            joined_at: membership.joined_at,
        }))
    }

    /// Remove a member, or leave
    ///
    /// Anyone may leave (their own user id). Owners and admins remove members up to their own
    /// role. The last owner cannot leave.
    #[oai(
        path = "/:id/members/:user_id",
        method = "delete",
        operation_id = "removeMember"
    )]
    async fn remove_member(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        user_id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        service
            .remove_member(
                &auth.0,
                TeamId::from_uuid(id.0),
                UserId::from_uuid(user_id.0),
            )
            .await?;
        Ok(NoContent::Done)
    }
}

/// A member's role after a change.
#[derive(Object)]
pub struct MemberRoleBody {
    pub user_id: Uuid,
    pub role: TeamRoleBody,
    pub joined_at: DateTime<Utc>,
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for TeamsApi {
    const ERRORS: &'static [OperationErrors] = &[
        ("createTeam", &[410, 422]),
        ("listTeams", &[422]),
        ("updateTeam", &[422]),
        ("listMembers", &[422]),
        ("updateMember", &[409]),
        ("removeMember", &[409]),
    ];
}
