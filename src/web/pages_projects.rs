//! Projects: the projects of my teams grouped by team, with a "New project" form
//! (`/projects`), and one project's settings: rename, describe, archive or reactivate,
//! delete (`/projects/{id}/settings`). The board and list views of a project are other pages.

use askama::Template;
use poem::web::{Data, Form, Path};
use poem::{Response, Route, get, handler, post};
use serde::Deserialize;

use super::error::WebResult;
use super::pages_auth::FormErrors;
use super::pages_teams::{parse_id, unprocessable};
use super::session::WebUser;
use super::{Chrome, render, see_other};
use crate::domain::project::ProjectStatus;
use crate::domain::{ProjectId, TeamId};
use crate::service::{Error, NewProject, ProjectPatch, ProjectView, Service};

/// The most projects and teams the page lists.
const LIST_LIMIT: u32 = 200;

pub fn routes(route: Route) -> Route {
    route
        .at("/projects", get(projects_page).post(create_project))
        .at(
            "/projects/:id/settings",
            get(settings_page).post(save_settings),
        )
        .at("/projects/:id/settings/archive", post(archive))
        .at("/projects/:id/settings/reactivate", post(reactivate))
        .at("/projects/:id/settings/delete", post(delete))
}

pub struct ProjectItem {
    pub id: String,
    pub name: String,
    pub description: String,
    pub can_edit: bool,
}

impl ProjectItem {
    fn new(view: &ProjectView) -> Self {
        Self {
            id: view.project.id.to_string(),
            name: view.project.name.as_str().to_string(),
            description: view.project.description.clone(),
            can_edit: view.can_edit,
        }
    }
}

pub struct TeamGroup {
    pub id: String,
    pub name: String,
    pub active: Vec<ProjectItem>,
    pub archived: Vec<ProjectItem>,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    chrome: Chrome,
    groups: Vec<TeamGroup>,
    more: bool,
    team_id: String,
    name: String,
    description: String,
    errors: FormErrors,
}

#[derive(Deserialize)]
pub struct NewProjectForm {
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

async fn projects_view(
    service: &Service,
    user: WebUser,
    form: NewProjectForm,
    errors: FormErrors,
) -> WebResult<ProjectsPage> {
    let auth = &user.0;
    let teams = service.teams(auth, None, Some(LIST_LIMIT)).await?;
    let projects = service.projects(auth, None, None, Some(LIST_LIMIT)).await?;
    let groups = teams
        .items
        .iter()
        .map(|t| {
            let of_team = || {
                projects
                    .items
                    .iter()
                    .filter(move |p| p.project.team_id == t.team.id)
            };
            TeamGroup {
                id: t.team.id.to_string(),
                name: t.team.name.as_str().to_string(),
                active: of_team()
                    .filter(|p| p.project.status == ProjectStatus::Active)
                    .map(ProjectItem::new)
                    .collect(),
                archived: of_team()
                    .filter(|p| p.project.status == ProjectStatus::Archived)
                    .map(ProjectItem::new)
                    .collect(),
            }
        })
        .collect();
    Ok(ProjectsPage {
        chrome: Chrome::load(service, user, "projects").await?,
        groups,
        more: projects.next_cursor.is_some(),
        team_id: form.team_id,
        name: form.name,
        description: form.description,
        errors,
    })
}

/// `GET /projects`.
#[handler]
pub async fn projects_page(user: WebUser, service: Data<&Service>) -> WebResult<Response> {
    let empty = NewProjectForm {
        team_id: String::new(),
        name: String::new(),
        description: String::new(),
    };
    render(&projects_view(&service, user, empty, FormErrors::default()).await?)
}

/// `POST /projects`: a new project in one of my teams; then its board.
#[handler]
pub async fn create_project(
    user: WebUser,
    service: Data<&Service>,
    Form(form): Form<NewProjectForm>,
) -> WebResult<Response> {
    let result = match form.team_id.parse::<TeamId>() {
        Ok(team_id) => {
            let input = NewProject {
                team_id,
                name: form.name.clone(),
                description: Some(form.description.clone()),
            };
            service.create_project(&user.0, input, None).await
        }
        Err(_) => Err(Error::invalid("team_id", "choose a team")),
    };
    match result {
        Ok(view) => Ok(see_other(&format!("/projects/{}", view.project.id))),
        Err(Error::Validation(fields)) => {
            let errors = FormErrors { fields, form: None };
            unprocessable(&projects_view(&service, user, form, errors).await?)
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "project_settings.html")]
struct SettingsPage {
    chrome: Chrome,
    id: String,
    team_id: String,
    name: String,
    archived: bool,
    can_edit: bool,
    form_name: String,
    form_description: String,
    errors: FormErrors,
}

async fn settings_view(service: &Service, user: WebUser, id: ProjectId) -> WebResult<SettingsPage> {
    let view = service.project(&user.0, id).await?;
    let project = view.project;
    Ok(SettingsPage {
        chrome: Chrome::load(service, user, "projects").await?,
        id: project.id.to_string(),
        team_id: project.team_id.to_string(),
        name: project.name.as_str().to_string(),
        archived: project.status == ProjectStatus::Archived,
        can_edit: view.can_edit,
        form_name: project.name.as_str().to_string(),
        form_description: project.description,
        errors: FormErrors::default(),
    })
}

/// `GET /projects/{id}/settings`.
#[handler]
pub async fn settings_page(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    render(&settings_view(&service, user, parse_id(&id)?).await?)
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /projects/{id}/settings`: rename and re-describe.
#[handler]
pub async fn save_settings(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Form(form): Form<SettingsForm>,
) -> WebResult<Response> {
    let id: ProjectId = parse_id(&id)?;
    let patch = ProjectPatch {
        name: Some(form.name.clone()),
        description: Some(form.description.clone()),
        status: None,
    };
    let errors = match service.update_project(&user.0, id, patch, None).await {
        Ok(_) => return Ok(see_other(&format!("/projects/{id}/settings"))),
        Err(Error::Validation(fields)) => FormErrors { fields, form: None },
        Err(e @ Error::ProjectArchived) => FormErrors {
            fields: vec![],
            form: Some(format!("{}.", super::views::capitalized(&e.to_string()))),
        },
        Err(other) => return Err(other.into()),
    };
    let mut page = settings_view(&service, user, id).await?;
    page.errors = errors;
    page.form_name = form.name;
    page.form_description = form.description;
    unprocessable(&page)
}

async fn set_status(
    user: WebUser,
    service: &Service,
    id: &str,
    status: ProjectStatus,
) -> WebResult<Response> {
    let id: ProjectId = parse_id(id)?;
    let patch = ProjectPatch {
        status: Some(status),
        ..ProjectPatch::default()
    };
    service.update_project(&user.0, id, patch, None).await?;
    Ok(see_other(&format!("/projects/{id}/settings")))
}

/// `POST /projects/{id}/settings/archive`: read-only until reactivated.
#[handler]
pub async fn archive(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    set_status(user, &service, &id, ProjectStatus::Archived).await
}

/// `POST /projects/{id}/settings/reactivate`.
#[handler]
pub async fn reactivate(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    set_status(user, &service, &id, ProjectStatus::Active).await
}

/// `POST /projects/{id}/settings/delete`.
#[handler]
pub async fn delete(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    service
        .delete_project(&user.0, parse_id(&id)?, None)
        .await?;
    Ok(see_other("/projects"))
}
