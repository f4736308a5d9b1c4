//! `/projects`: a team's projects.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::conditional::{Created, Deleted, Located, Read, Versioned, Written, if_match};
use super::error::ApiResult;
use super::page::{Page, PageItem};
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use super::text::Text;
use crate::domain::project::{
    PROJECT_DESCRIPTION_MAX_CHARS, PROJECT_NAME_MAX_CHARS, ProjectStatus,
};
use crate::domain::{ProjectId, TeamId};
use crate::service::{AuthUser, NewProject, ProjectPatch, ProjectView, Service};

/// `archived` projects are read-only until set back to `active`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "ProjectStatus", rename_all = "snake_case")]
pub enum ProjectStatusBody {
    Active,
    Archived,
}

impl From<ProjectStatus> for ProjectStatusBody {
    fn from(status: ProjectStatus) -> Self {
        match status {
            ProjectStatus::Active => ProjectStatusBody::Active,
            ProjectStatus::Archived => ProjectStatusBody::Archived,
        }
    }
}

impl From<ProjectStatusBody> for ProjectStatus {
    fn from(status: ProjectStatusBody) -> Self {
        match status {
            ProjectStatusBody::Active => ProjectStatus::Active,
            ProjectStatusBody::Archived => ProjectStatus::Archived,
        }
    }
}

type NameText = Text<1, PROJECT_NAME_MAX_CHARS>;
type DescriptionText = Text<0, PROJECT_DESCRIPTION_MAX_CHARS>;

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateProjectRequest {
    /// A team you are a member of.
    pub team_id: Uuid,
    /// 1 to 200 characters.
    pub name: NameText,
    /// Up to 10,000 characters; `null` or absent means none.
    #[oai(nullable)]
    pub description: Option<DescriptionText>,
}

/// Only the fields present change; `null` leaves a field unchanged. While a project is
/// archived, only `status: active` is accepted (with or without other fields).
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateProjectRequest {
    #[oai(nullable)]
    pub name: Option<NameText>,
    #[oai(nullable)]
    pub description: Option<DescriptionText>,
    #[oai(nullable)]
    pub status: Option<ProjectStatusBody>,
}

#[derive(Object)]
#[oai(rename = "Project")]
pub struct ProjectBody {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    pub description: String,
    pub status: ProjectStatusBody,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented on every change; also the `ETag`.
    pub version: u64,
    /// Whether the caller may edit, archive and delete it.
    pub can_edit: bool,
}

impl Located for ProjectBody {
    fn location(&self) -> String {
        format!("/api/projects/{}", self.id)
    }
}

impl Versioned for ProjectBody {
    fn version(&self) -> u64 {
        self.version
    }
}

impl From<ProjectView> for ProjectBody {
    fn from(view: ProjectView) -> Self {
        let p = view.project;
        Self {
            id: p.id.as_uuid(),
            team_id: p.team_id.as_uuid(),
            name: p.name.as_str().to_string(),
            description: p.description,
            status: p.status.into(),
            created_by: p.created_by.as_uuid(),
            created_at: p.created_at,
            updated_at: p.updated_at,
            version: p.version,
            can_edit: view.can_edit,
        }
    }
}

pub type ProjectPage = Page<ProjectBody>;

impl PageItem for ProjectBody {
    const PAGE_NAME: &'static str = "ProjectPage";
    const PAGE_DESCRIPTION: Option<&'static str> = Some("A page of projects.");
}

async fn update(
    service: &Service,
    auth: &AuthUser,
    id: Uuid,
    if_match_header: Option<&str>,
    body: UpdateProjectRequest,
) -> ApiResult<Written<ProjectBody>> {
    let patch = ProjectPatch {
        name: body.name.map(String::from),
        description: body.description.map(String::from),
        status: body.status.map(ProjectStatus::from),
    };
    let expected = if_match(if_match_header);
    Ok(Written::new(
        service
            .update_project(auth, ProjectId::from_uuid(id), patch, expected)
            .await?,
    ))
}

pub struct ProjectsApi;

#[OpenApi(prefix_path = "/projects", tag = "ApiTags::Projects")]
impl ProjectsApi {
    /// Create a project
    ///
    /// In a team you are a member of. The 201 names the new project's URL in `Location`.
    #[oai(path = "/", method = "post", operation_id = "createProject")]
    async fn create(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// Makes a retried create safe: the same key and body within 24 hours return the
        /// first response instead of creating a duplicate (1 to 255 visible ASCII characters); 410
        /// `idempotent_resource_gone` if what the first created has since been deleted.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<CreateProjectRequest>,
    ) -> ApiResult<Created<ProjectBody>> {
        let input = NewProject {
            team_id: TeamId::from_uuid(body.0.team_id),
            name: body.0.name.0,
            description: body.0.description.map(String::from),
        };
        Ok(Created::new(
            service
                .create_project(&auth.0, input, idempotency_key.0.as_deref())
                .await?,
        ))
    }

    /// List projects
    ///
    /// Projects of all my teams, or of one (`team_id`), oldest first.
    #[oai(path = "/", method = "get", operation_id = "listProjects")]
    async fn list(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// Only this team's projects.
        team_id: Query<Option<Uuid>>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<ProjectPage>> {
        let team = team_id.0.map(TeamId::from_uuid);
        let page = service
            .projects(&auth.0, team, cursor.0.as_deref(), limit.0)
            .await?;
        Ok(Json(Page::map(page, ProjectBody::from)))
    }

    /// Get a project
    ///
    /// Members of its team only; to anyone else it does not exist (404).
    #[oai(path = "/:id", method = "get", operation_id = "getProject")]
    async fn get(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// An `ETag` you have: answered 304 if the project is still at that version.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> ApiResult<Read<ProjectBody>> {
        let view = service.project(&auth.0, ProjectId::from_uuid(id.0)).await?;
        Ok(Read::new(view, if_none_match.0.as_deref()))
    }

    /// Update a project
    ///
    /// Its creator and the team's owners and admins. Same as `PATCH`. Send `If-Match` with the
    /// `ETag` you read: a stale one (or a weak `W/` tag: the comparison is strong) gets 412, a
    /// problem `precondition_failed` whose `current` is the current project, with its `ETag`;
    /// nothing changed.
    #[oai(path = "/:id", method = "put", operation_id = "replaceProject")]
    async fn put(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The `ETag` the change is based on.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
        body: Json<UpdateProjectRequest>,
    ) -> ApiResult<Written<ProjectBody>> {
        update(
            &service,
            &auth.0,
            id.0,
            if_match_header.0.as_deref(),
            body.0,
        )
        .await
    }

    /// Update a project (partial)
    ///
    /// Its creator and the team's owners and admins. Archive with `status: archived`; reactivate
    /// with `status: active`. Send `If-Match` with the `ETag` you read: a stale one (or a weak `W/`
    /// tag: the comparison is strong) gets 412, a problem `precondition_failed` whose `current` is
    /// the current project, with its `ETag`; nothing changed.
    #[oai(path = "/:id", method = "patch", operation_id = "updateProject")]
    async fn patch(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The `ETag` the change is based on.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
        body: Json<UpdateProjectRequest>,
    ) -> ApiResult<Written<ProjectBody>> {
        update(
            &service,
            &auth.0,
            id.0,
            if_match_header.0.as_deref(),
            body.0,
        )
        .await
    }

    /// Delete a project
    ///
    /// Its creator and the team's owners and admins. A stale `If-Match` (or a weak `W/`
    /// tag: the comparison is strong) gets 412, a problem `precondition_failed` whose `current` is
    /// the current project, with its `ETag`; nothing is deleted.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteProject")]
    async fn delete(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The `ETag` the deletion is based on.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
    ) -> ApiResult<Deleted<ProjectBody>> {
        let expected = if_match(if_match_header.0.as_deref());
        Ok(Deleted::new(
            service
                .delete_project(&auth.0, ProjectId::from_uuid(id.0), expected)
                .await?,
        ))
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for ProjectsApi {
    const ERRORS: &'static [OperationErrors] = &[
        ("createProject", &[404, 410, 422]),
        ("listProjects", &[422]),
        ("replaceProject", &[409, 422]),
        ("updateProject", &[409, 422]),
    ];
}
