//! `/tasks/new`: the create form (opened with `?project=ID` from a project, or from the task
//! page's "New task"), in one of the person's active projects or as a personal task.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;

use super::super::pages_auth::FormErrors;
use super::super::{Chrome, render, see_other};
use super::page::{PRIORITIES, STATUSES};
use super::{normalized, parse_due, parse_label_list};
use crate::domain::project::ProjectStatus;
use crate::domain::task::{Priority, TaskStatus};
use crate::domain::{FieldError, ProjectId};
use crate::service::{Error, NewTask, Service};
use crate::web::error::WebResult;
use crate::web::session::WebUser;

/// The most projects the form offers.
const PROJECTS_OFFERED: u32 = 200;

pub struct ProjectChoice {
    pub id: String,
    pub name: String,
}

#[derive(Deserialize, Default)]
pub struct NewTaskForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    due: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    project: String,
}

impl NewTaskForm {
    fn is_status(&self, key: &str) -> bool {
        self.status == key
    }

    fn is_priority(&self, key: &str) -> bool {
        self.priority == key
    }
}

#[derive(Template)]
#[template(path = "task_new.html")]
struct NewTaskPage {
    chrome: Chrome,
    form: NewTaskForm,
    projects: Vec<ProjectChoice>,
    errors: FormErrors,
    statuses: [(&'static str, &'static str); 4],
    priorities: [(&'static str, &'static str); 4],
}

#[derive(Deserialize)]
pub struct NewQuery {
    project: Option<String>,
}

/// The person's active projects, "Team / Project".
async fn projects(service: &Service, user: WebUser) -> WebResult<Vec<ProjectChoice>> {
    let auth = user.0.clone();
    let teams = service.teams(&auth, None, Some(PROJECTS_OFFERED)).await?;
    let page = service
        .projects(&auth, None, None, Some(PROJECTS_OFFERED))
        .await?;
    Ok(page
        .items
        .into_iter()
        .filter(|p| p.project.status == ProjectStatus::Active)
        .map(|p| {
            let team = teams
                .items
                .iter()
                .find(|t| t.team.id == p.project.team_id)
                .map(|t| format!("{} / ", t.team.name.as_str()))
                .unwrap_or_default();
            ProjectChoice {
                id: p.project.id.as_uuid().to_string(),
                name: format!("{team}{}", p.project.name.as_str()),
            }
        })
        .collect())
}

async fn page(
    service: &Service,
    user: WebUser,
    form: NewTaskForm,
    errors: FormErrors,
) -> WebResult<NewTaskPage> {
    Ok(NewTaskPage {
        projects: projects(service, user.clone()).await?,
        chrome: Chrome::load(service, user, "tasks").await?,
        form,
        errors,
        statuses: STATUSES,
        priorities: PRIORITIES,
    })
}

/// `GET /tasks/new?project=ID`.
#[handler]
pub async fn new_page(
    user: WebUser,
    service: Data<&Service>,
    Query(query): Query<NewQuery>,
) -> WebResult<Response> {
    let form = NewTaskForm {
        project: query.project.unwrap_or_default(),
        status: "todo".into(),
        priority: "medium".into(),
        ..NewTaskForm::default()
    };
    render(&page(&service, user, form, FormErrors::default()).await?)
}

/// `result`'s value, or its message recorded against `field`.
fn check<T>(errors: &mut Vec<FieldError>, field: &str, result: Result<T, String>) -> Option<T> {
    result
        .map_err(|message| errors.push(FieldError::new(field, message)))
        .ok()
}

/// The form as the service takes it, or what is wrong with it.
fn parse(form: &NewTaskForm) -> Result<NewTask, Vec<FieldError>> {
    let mut errors = vec![];
    let status = check(&mut errors, "status", TaskStatus::parse(&form.status));
    let priority = check(&mut errors, "priority", Priority::parse(&form.priority));
    let due_date = check(&mut errors, "due_date", parse_due(&form.due)).flatten();
    let project_id = match form.project.trim() {
        "" => None,
        raw => check(
            &mut errors,
            "project",
            raw.parse::<ProjectId>()
                .map_err(|_| "choose one of your projects".to_string()),
        ),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewTask {
        title: form.title.clone(),
        description: Some(normalized(&form.description)),
        status,
        priority,
        due_date,
        labels: Some(parse_label_list(&form.labels)),
        project_id,
        assignee_ids: None,
        position: None,
    })
}

/// `POST /tasks/new`: creates the task and opens it.
#[handler]
pub async fn submit(
    user: WebUser,
    service: Data<&Service>,
    Form(form): Form<NewTaskForm>,
) -> WebResult<Response> {
    let fields = match parse(&form) {
        Ok(input) => match service.create_task(&user.0, input, None).await {
            Ok(created) => {
                return Ok(see_other(&format!("/tasks/{}", created.task.id.as_uuid())));
            }
            Err(Error::Validation(fields)) => fields,
            Err(Error::NotFound(_)) => {
                vec![FieldError::new("project", "choose one of your projects")]
            }
            Err(e @ Error::ProjectArchived) => vec![FieldError::new("project", e.to_string())],
            Err(other) => return Err(other.into()),
        },
        Err(fields) => fields,
    };
    let errors = FormErrors {
        fields,
        form: Some("The task was not created: correct the fields marked below.".into()),
    };
    let page = page(&service, user, form, errors).await?;
    Ok(render(&page)?
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response())
}
