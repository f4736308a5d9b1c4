//! The task lists: every task the caller can see (`/tasks`) and one project's
//! (`/projects/{id}/list`). The whole view (filters, sort, page) lives in the URL, set by a
//! plain GET form, so a view can be bookmarked, shared and reloaded.
//!
//! A bulk status change posts the selected rows, each with the version it was shown at, to
//! `<list>/bulk-status?<the view>`. Each task is updated on its own through the service, so one
//! stale or forbidden row does not stop the others, and the list is shown again with a line
//! per task saying what happened.

use askama::Template;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, Route, get, handler};
use uuid::Uuid;

use super::error::{WebError, WebResult};
use super::session::WebUser;
use super::views::{Choice, TaskRow, priority_key, priority_label, status_key, status_label};
use super::{Chrome, html_response, see_other};
use crate::domain::task::{Priority, TaskSort, TaskStatus};
use crate::domain::{ProjectId, TaskId, User, UserId};
use crate::service::{AuthUser, Edit, Error, Scope, Service, TaskPatch, TaskQuery, Write};

/// Rows per page.
const PAGE_SIZE: u32 = 50;
/// People offered in the assignee filter, and the most tasks one bulk change takes.
const MAX_CHOICES: u32 = 200;
const MAX_BULK: usize = 200;

/// The sorts offered, as the URL spells them (the API's `sort` values), with their labels.
const SORTS: [(&str, &str, TaskSort, bool); 8] = [
    ("-created", "Newest first", TaskSort::Created, true),
    ("created", "Oldest first", TaskSort::Created, false),
    ("-updated", "Recently updated", TaskSort::Updated, true),
    (
        "updated",
        "Least recently updated",
        TaskSort::Updated,
        false,
    ),
    ("due_date", "Due soonest", TaskSort::DueDate, false),
    ("-due_date", "Due latest", TaskSort::DueDate, true),
    ("-priority", "Most urgent first", TaskSort::Priority, true),
    ("priority", "Least urgent first", TaskSort::Priority, false),
];
const DEFAULT_SORT: &str = "-created";

pub fn routes(route: Route) -> Route {
    route
        .at("/tasks", get(all_tasks))
        .at("/tasks/bulk-status", get(back_to_all).post(bulk_all))
        .at("/projects/:id/list", get(project_tasks))
        .at(
            "/projects/:id/list/bulk-status",
            get(back_to_project).post(bulk_project),
        )
}

/// What a list URL asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ListView {
    statuses: Vec<TaskStatus>,
    /// `""` anyone, `"me"`, or a user id.
    assignee: String,
    label: String,
    priority: Option<Priority>,
    due_from: Option<NaiveDate>,
    due_to: Option<NaiveDate>,
    sort: &'static str,
    cursor: Option<String>,
}

impl Default for ListView {
    fn default() -> Self {
        Self {
            statuses: vec![],
            assignee: String::new(),
            label: String::new(),
            priority: None,
            due_from: None,
            due_to: None,
            sort: DEFAULT_SORT,
            cursor: None,
        }
    }
}

fn invalid(field: &str, message: impl std::fmt::Display) -> WebError {
    WebError::Invalid(format!(
        "This list's address is not valid: {field} {message}."
    ))
}

fn parse_date(field: &str, raw: &str) -> WebResult<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| invalid(field, "is not a YYYY-MM-DD date"))
}

impl ListView {
    /// Reads a list's query string; empty fields mean "no filter".
    pub fn parse(query: Option<&str>) -> WebResult<Self> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|_| WebError::BadRequest("The list's address could not be read.".into()))?;
        let mut view = Self::default();
        for (key, value) in pairs {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match key.as_str() {
                "status" => {
                    for part in value.split(',').filter(|p| !p.trim().is_empty()) {
                        let status = TaskStatus::parse(part).map_err(|e| invalid("status", e))?;
                        if !view.statuses.contains(&status) {
                            view.statuses.push(status);
                        }
                    }
                }
                "assignee" => {
                    if value != "me" {
                        Uuid::parse_str(value)
                            .map_err(|_| invalid("assignee", "is not a person"))?;
                    }
                    view.assignee = value.to_string();
                }
                "label" => view.label = value.to_string(),
                "priority" => {
                    view.priority =
                        Some(Priority::parse(value).map_err(|e| invalid("priority", e))?)
                }
                "due_from" => view.due_from = Some(parse_date("due_from", value)?),
                "due_to" => view.due_to = Some(parse_date("due_to", value)?),
                "sort" => {
                    view.sort = SORTS
                        .iter()
                        .find(|s| s.0 == value)
                        .map(|s| s.0)
                        .ok_or_else(|| invalid("sort", "is not a known order"))?
                }
                "cursor" => view.cursor = Some(value.to_string()),
                // Unknown parameters (a tracking tag, an old bookmark's) are ignored.
                _ => {}
            }
        }
        // Keep the statuses in their usual order, so equal views have equal URLs.
        view.statuses.sort_by_key(|s| *s as u8);
        Ok(view)
    }

    /// The query string of this view (without `?`); `cursor` included or not.
    pub fn encode(&self, with_cursor: bool) -> String {
        let mut pairs: Vec<(&str, String)> = self
            .statuses
            .iter()
            .map(|s| ("status", status_key(*s).to_string()))
            .collect();
        let optional = [
            ("assignee", self.assignee.clone()),
            ("label", self.label.clone()),
            (
                "priority",
                self.priority.map(priority_key).unwrap_or("").into(),
            ),
            (
                "due_from",
                self.due_from.map(|d| d.to_string()).unwrap_or_default(),
            ),
            (
                "due_to",
                self.due_to.map(|d| d.to_string()).unwrap_or_default(),
            ),
        ];
        pairs.extend(optional.into_iter().filter(|(_, v)| !v.is_empty()));
        if self.sort != DEFAULT_SORT {
            pairs.push(("sort", self.sort.to_string()));
        }
        if let Some(cursor) = self.cursor.as_ref().filter(|_| with_cursor) {
            pairs.push(("cursor", cursor.clone()));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    /// `path` with this view's query string, if any.
    fn url(&self, path: &str, with_cursor: bool) -> String {
        match self.encode(with_cursor) {
            q if q.is_empty() => path.to_string(),
            q => format!("{path}?{q}"),
        }
    }

    /// The service query for this view: everything `me` can see (or one project), narrowed.
    fn query(&self, me: UserId, project: Option<ProjectId>) -> TaskQuery {
        let assignee = match self.assignee.as_str() {
            "" => None,
            "me" => Some(me),
            id => Uuid::parse_str(id).ok().map(UserId::from_uuid),
        };
        let (_, _, sort, descending) =
            *SORTS.iter().find(|s| s.0 == self.sort).unwrap_or(&SORTS[0]);
        TaskQuery {
            scope: Scope::All,
            status: (!self.statuses.is_empty()).then(|| {
                let keys: Vec<&str> = self.statuses.iter().map(|s| status_key(*s)).collect();
                keys.join(",")
            }),
            project_id: project,
            assignee,
            label: (!self.label.is_empty()).then(|| self.label.clone()),
            priority: self.priority,
            // The service's bounds are strict; the form's days are inclusive (UTC days).
            due_after: self
                .due_from
                .map(|d| midnight(d) - Duration::nanoseconds(1)),
            due_before: self.due_to.map(|d| midnight(d) + Duration::days(1)),
            sort,
            descending,
            cursor: self.cursor.clone(),
            limit: Some(PAGE_SIZE),
        }
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

/// A row: the task, whether the caller may change it, and (on `/tasks`) its project's name.
pub struct ListItem {
    pub task: TaskRow,
    pub can_edit: bool,
    pub project: Option<String>,
}

/// What a bulk change did to one task.
pub struct Outcome {
    pub id: String,
    pub title: String,
    /// `done`, `stale`, `denied`, `missing` or `failed`.
    pub kind: &'static str,
    pub detail: String,
}

impl Outcome {
    pub fn kind_label(&self) -> &'static str {
        match self.kind {
            "done" => "Changed",
            "stale" => "Changed by someone else",
            "denied" => "Not allowed",
            "missing" => "Not found",
            _ => "Failed",
        }
    }
}

/// What a bulk change did, shown above the list.
#[derive(Default)]
pub struct BulkReport {
    pub status_label: &'static str,
    pub outcomes: Vec<Outcome>,
    /// Why nothing was done (no task selected, no status chosen).
    pub note: Option<String>,
}

impl BulkReport {
    pub fn done(&self) -> usize {
        self.outcomes.iter().filter(|o| o.kind == "done").count()
    }
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListPage {
    chrome: Chrome,
    heading: String,
    /// The project of a project list: its id and name.
    project: Option<(String, String)>,
    /// The list's own path (the filter form's action).
    path: String,
    /// This view's URL, for the live refresh and the bulk form's return.
    self_url: String,
    bulk_action: String,
    statuses: Vec<Choice>,
    assignees: Vec<Choice>,
    priorities: Vec<Choice>,
    sorts: Vec<Choice>,
    label: String,
    due_from: String,
    due_to: String,
    items: Vec<ListItem>,
    editable: bool,
    targets: Vec<Choice>,
    next_url: Option<String>,
    first_url: Option<String>,
    report: Option<BulkReport>,
}

/// The list's context: its heading, path, project and the people its assignee filter offers.
struct Context {
    heading: String,
    path: String,
    project: Option<(String, String)>,
    people: Vec<User>,
    /// Project names by id, for the rows of `/tasks`.
    project_names: Vec<(ProjectId, String)>,
}

async fn context(
    service: &Service,
    auth: &AuthUser,
    project: Option<ProjectId>,
) -> WebResult<Context> {
    let Some(id) = project else {
        let people = service
            .teammates(auth, None, None, Some(MAX_CHOICES))
            .await?
            .items;
        let projects = service
            .projects(auth, None, None, Some(MAX_CHOICES))
            .await?
            .items;
        return Ok(Context {
            heading: "All tasks".into(),
            path: "/tasks".into(),
            project: None,
            people,
            project_names: projects
                .into_iter()
                .map(|p| (p.project.id, p.project.name.as_str().to_string()))
                .collect(),
        });
    };
    let view = service.project(auth, id).await?;
    let members = service
        .members(auth, view.project.team_id, None, Some(MAX_CHOICES))
        .await?;
    let id = id.as_uuid().to_string();
    Ok(Context {
        heading: format!("{}: list", view.project.name.as_str()),
        path: format!("/projects/{id}/list"),
        project: Some((id, view.project.name.as_str().to_string())),
        people: members.items.into_iter().map(|(_, user)| user).collect(),
        project_names: vec![],
    })
}

fn assignee_choices(view: &ListView, me: UserId, people: &[User]) -> Vec<Choice> {
    let mut choices = vec![
        Choice::new("", "Anyone", view.assignee.is_empty()),
        Choice::new("me", "Me", view.assignee == "me"),
    ];
    for person in people.iter().filter(|p| p.id != me) {
        let id = person.id.as_uuid().to_string();
        let selected = view.assignee == id;
        choices.push(Choice::new(id, person.name.as_str(), selected));
    }
    if !view.assignee.is_empty() && !choices.iter().any(|c| c.selected) {
        choices.push(Choice::new(
            view.assignee.clone(),
            "The chosen person",
            true,
        ));
    }
    choices
}

fn filter_choices(view: &ListView) -> (Vec<Choice>, Vec<Choice>, Vec<Choice>) {
    let statuses = TaskStatus::ALL
        .iter()
        .map(|s| Choice::new(status_key(*s), status_label(*s), view.statuses.contains(s)))
        .collect();
    let mut priorities = vec![Choice::new("", "Any", view.priority.is_none())];
    for p in [
        Priority::Urgent,
        Priority::High,
        Priority::Medium,
        Priority::Low,
    ] {
        priorities.push(Choice::new(
            priority_key(p),
            priority_label(p),
            view.priority == Some(p),
        ));
    }
    let sorts = SORTS
        .iter()
        .map(|(value, label, ..)| Choice::new(*value, *label, view.sort == *value))
        .collect();
    (statuses, priorities, sorts)
}

/// Renders a list for `view`, with a bulk change's report if there was one.
async fn show(
    service: &Service,
    user: WebUser,
    project: Option<ProjectId>,
    view: ListView,
    report: Option<BulkReport>,
) -> WebResult<Response> {
    let auth = user.0.clone();
    let ctx = context(service, &auth, project).await?;
    let list = service
        .tasks(&auth, view.query(auth.user_id, project))
        .await?;
    let now = Utc::now();
    let items: Vec<ListItem> = list
        .items
        .iter()
        .map(|t| ListItem {
            task: TaskRow::new(&t.task, now),
            can_edit: t.can_edit,
            project: t.task.project_id.and_then(|p| {
                ctx.project_names
                    .iter()
                    .find(|(id, _)| *id == p)
                    .map(|(_, name)| name.clone())
            }),
        })
        .collect();
    let next_url = list.next_cursor.map(|cursor| {
        let next = ListView {
            cursor: Some(cursor),
            ..view.clone()
        };
        next.url(&ctx.path, true)
    });
    let (statuses, priorities, sorts) = filter_choices(&view);
    let status = if report.as_ref().is_some_and(|r| r.note.is_some()) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = ListPage {
        chrome: Chrome::load(
            service,
            user,
            if project.is_some() {
                "projects"
            } else {
                "tasks"
            },
        )
        .await?,
        assignees: assignee_choices(&view, auth.user_id, &ctx.people),
        heading: ctx.heading,
        project: ctx.project,
        self_url: view.url(&ctx.path, true),
        bulk_action: view.url(&format!("{}/bulk-status", ctx.path), true),
        first_url: view.cursor.is_some().then(|| view.url(&ctx.path, false)),
        path: ctx.path,
        statuses,
        priorities,
        sorts,
        label: view.label.clone(),
        due_from: view.due_from.map(|d| d.to_string()).unwrap_or_default(),
        due_to: view.due_to.map(|d| d.to_string()).unwrap_or_default(),
        editable: items.iter().any(|i| i.can_edit),
        items,
        targets: TaskStatus::ALL
            .iter()
            .map(|s| Choice::new(status_key(*s), status_label(*s), false))
            .collect(),
        next_url,
        report,
    };
    Ok(html_response(page.render()?)
        .with_status(status)
        .into_response())
}

/// `GET /tasks`: every task the caller can see, as the URL filters and sorts it.
#[handler]
pub async fn all_tasks(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
) -> WebResult<Response> {
    let view = ListView::parse(req.uri().query())?;
    show(&service, user, None, view, None).await
}

/// `GET /projects/{id}/list`: one project's tasks (404 for who cannot see the project).
#[handler]
pub async fn project_tasks(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<Uuid>,
) -> WebResult<Response> {
    let view = ListView::parse(req.uri().query())?;
    show(&service, user, Some(ProjectId::from_uuid(id)), view, None).await
}

/// `POST /tasks/bulk-status?<view>`: sets the status of the selected tasks, then shows the list.
#[handler]
pub async fn bulk_all(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    Form(fields): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let view = ListView::parse(req.uri().query())?;
    let report = bulk(&service, &user.0, &fields).await?;
    show(&service, user, None, view, Some(report)).await
}

/// `POST /projects/{id}/list/bulk-status?<view>`: the same within a project's list.
#[handler]
pub async fn bulk_project(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let view = ListView::parse(req.uri().query())?;
    let project = ProjectId::from_uuid(id);
    // Who cannot see the project gets its 404 before anything is written.
    service.project(&user.0, project).await?;
    let report = bulk(&service, &user.0, &fields).await?;
    show(&service, user, Some(project), view, Some(report)).await
}

/// A reload of a bulk change's result page (its address is the form's): back to the list.
#[handler]
pub async fn back_to_all(req: &Request, _user: WebUser) -> Response {
    let view = ListView::parse(req.uri().query()).unwrap_or_default();
    see_other(&view.url("/tasks", true))
}

#[handler]
pub async fn back_to_project(req: &Request, _user: WebUser, Path(id): Path<Uuid>) -> Response {
    let view = ListView::parse(req.uri().query()).unwrap_or_default();
    see_other(&view.url(&format!("/projects/{id}/list"), true))
}

/// The selected rows of a bulk form: `task=<id>:<version>` fields.
fn selection(fields: &[(String, String)]) -> WebResult<Vec<(TaskId, u64)>> {
    let unreadable = || WebError::BadRequest("The selected tasks could not be read.".into());
    let mut picked: Vec<(TaskId, u64)> = Vec::new();
    for (_, value) in fields.iter().filter(|(k, _)| k == "task") {
        let (id, version) = value.split_once(':').ok_or_else(unreadable)?;
        let id = TaskId::from_uuid(Uuid::parse_str(id).map_err(|_| unreadable())?);
        let version = version.parse::<u64>().map_err(|_| unreadable())?;
        if !picked.iter().any(|(p, _)| *p == id) {
            picked.push((id, version));
        }
    }
    if picked.len() > MAX_BULK {
        return Err(WebError::Invalid(format!(
            "Change at most {MAX_BULK} tasks at a time."
        )));
    }
    Ok(picked)
}

/// Sets each selected task's status through the service, with the version its row showed.
async fn bulk(
    service: &Service,
    auth: &AuthUser,
    fields: &[(String, String)],
) -> WebResult<BulkReport> {
    let picked = selection(fields)?;
    let target = fields
        .iter()
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v.as_str());
    let Some(status) = target.and_then(|t| TaskStatus::parse(t).ok()) else {
        return Ok(BulkReport {
            note: Some("Choose the status to set.".into()),
            ..BulkReport::default()
        });
    };
    if picked.is_empty() {
        return Ok(BulkReport {
            note: Some("Select at least one task first.".into()),
            ..BulkReport::default()
        });
    }
    let mut report = BulkReport {
        status_label: status_label(status),
        ..BulkReport::default()
    };
    for (id, version) in picked {
        let patch = TaskPatch {
            status: Edit::Set(status),
            ..TaskPatch::default()
        };
        let result = service.update_task(auth, id, patch, Some(version)).await;
        report
            .outcomes
            .push(outcome(service, auth, id, result).await);
    }
    Ok(report)
}

/// One task's line in the report.
async fn outcome(
    service: &Service,
    auth: &AuthUser,
    id: TaskId,
    result: Result<Write<crate::service::TaskView, crate::service::TaskView>, Error>,
) -> Outcome {
    let line = |title: &str, kind, detail: &str| Outcome {
        id: id.as_uuid().to_string(),
        title: title.to_string(),
        kind,
        detail: detail.to_string(),
    };
    match result {
        Ok(Write::Done(view)) => line(view.task.title.as_str(), "done", ""),
        Ok(Write::Stale(current)) => line(
            current.task.title.as_str(),
            "stale",
            "someone changed it after this list was loaded; it was left as they left it",
        ),
        Err(Error::NotFound(_)) => line(
            "A task",
            "missing",
            "it was deleted, or you no longer have access",
        ),
        Err(e) => {
            // The row's title, for the report (the caller could see the task in the list).
            let title = match service.task(auth, id).await {
                Ok(view) => view.task.title.as_str().to_string(),
                Err(_) => "A task".to_string(),
            };
            match e {
                Error::Forbidden(why) => line(&title, "denied", &why),
                Error::Internal(_) | Error::Storage(_) | Error::Search(_) => {
                    tracing::error!(error = %e, "a bulk status change failed");
                    line(
                        &title,
                        "failed",
                        "the server could not change it; try again",
                    )
                }
                other => line(&title, "failed", &other.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_survives_its_own_url() {
        let view = ListView::parse(Some(
            "status=done&status=todo&assignee=me&label=a+b&priority=high&due_from=2026-01-02&due_to=2026-02-03&sort=-priority&cursor=abc&utm=x&label=",
        ))
        .unwrap();
        assert_eq!(view.statuses, vec![TaskStatus::Todo, TaskStatus::Done]);
        assert_eq!(view.label, "a b");
        assert_eq!(ListView::parse(Some(&view.encode(true))).unwrap(), view);
        assert!(!view.encode(false).contains("cursor"));
        assert_eq!(ListView::default().url("/tasks", true), "/tasks");
    }

    #[test]
    fn bad_filters_are_refused_with_their_name() {
        for bad in [
            "status=nope",
            "sort=title",
            "due_from=tomorrow",
            "assignee=bob",
            "priority=x",
        ] {
            match ListView::parse(Some(bad)) {
                Err(WebError::Invalid(m)) => {
                    assert!(m.contains(bad.split('=').next().unwrap()), "{m}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn due_days_are_inclusive() {
        let view = ListView::parse(Some("due_from=2026-03-01&due_to=2026-03-01")).unwrap();
        let q = view.query(UserId::new(), None);
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let (after, before) = (q.due_after.unwrap(), q.due_before.unwrap());
        for inside in ["2026-03-01T00:00:00Z", "2026-03-01T23:59:59Z"] {
            assert!(at(inside) > after && at(inside) < before, "{inside}");
        }
        assert!(at("2026-03-02T00:00:00Z") >= before);
        assert!(at("2026-02-28T23:59:59Z") <= after);
    }

    #[test]
    fn a_selection_is_ids_with_versions() {
        let id = Uuid::now_v7();
        let fields = vec![
            ("task".to_string(), format!("{id}:3")),
            ("task".to_string(), format!("{id}:4")),
            ("csrf".to_string(), "x".to_string()),
        ];
        assert_eq!(
            selection(&fields).unwrap(),
            vec![(TaskId::from_uuid(id), 3)]
        );
        let bad = vec![("task".to_string(), "nope".to_string())];
        assert!(matches!(selection(&bad), Err(WebError::BadRequest(_))));
    }
}
