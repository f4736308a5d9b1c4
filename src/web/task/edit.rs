//! Saving the edit form. The form carries the version it was loaded at and the values it was
//! loaded with (`base_*`); a save sends the service only the fields the person changed, with
//! that version. When someone else saved first, nothing is written: the page shows their
//! values beside the person's own, with the form refilled with the person's changes on top
//! of the new version ("Apply my changes again") or a reload ("Discard mine").

use std::collections::HashMap;

use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Response, handler};

use super::super::pages_auth::FormErrors;
use super::super::views::{priority_label, status_label};
use super::super::{html_response, markdown, render, see_other};
use super::page::{Conflict, ConflictRow, FormState, TaskFields, build};
use super::{name_of, normalized, parse_due, parse_id, parse_label_list};
use crate::domain::task::{Priority, TaskStatus};
use crate::domain::{FieldError, TaskId, UserId};
use crate::service::{Edit, Error, Service, TaskAbilities, TaskPatch, Write};
use crate::web::error::{WebError, WebResult};
use crate::web::session::WebUser;

/// The fields of the form, in the order the conflict panel lists them.
const FIELDS: [&str; 7] = [
    "title",
    "status",
    "priority",
    "due",
    "labels",
    "assignees",
    "description",
];

fn label(field: &str) -> &'static str {
    match field {
        "title" => "Title",
        "status" => "Status",
        "priority" => "Priority",
        "due" => "Due date",
        "labels" => "Labels",
        "assignees" => "Assignees",
        _ => "Description",
    }
}

/// Whether `a` and `b` hold different values for `field` (as the task would store them).
fn differs(a: &TaskFields, b: &TaskFields, field: &str) -> bool {
    let sorted = |list: &[String]| {
        let mut list = list.to_vec();
        list.sort();
        list
    };
    match field {
        "title" => a.title.trim() != b.title.trim(),
        "status" => a.status != b.status,
        "priority" => a.priority != b.priority,
        "due" => a.due.trim() != b.due.trim(),
        "labels" => parse_label_list(&a.labels) != parse_label_list(&b.labels),
        "assignees" => sorted(&a.assignees) != sorted(&b.assignees),
        _ => normalized(&a.description) != normalized(&b.description),
    }
}

/// Copies `field` from `from` into `into`.
fn take(into: &mut TaskFields, from: &TaskFields, field: &str) {
    match field {
        "title" => into.title.clone_from(&from.title),
        "status" => into.status.clone_from(&from.status),
        "priority" => into.priority.clone_from(&from.priority),
        "due" => into.due.clone_from(&from.due),
        "labels" => into.labels.clone_from(&from.labels),
        "assignees" => into.assignees.clone_from(&from.assignees),
        _ => into.description.clone_from(&from.description),
    }
}

/// What the form posted: the person's values, the values it was loaded with, its version.
struct Submission {
    yours: TaskFields,
    base: TaskFields,
    version: u64,
}

impl Submission {
    fn parse(pairs: &[(String, String)]) -> WebResult<Self> {
        let one = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let fields = |prefix: &str| TaskFields {
            title: one(&format!("{prefix}title")),
            description: normalized(&one(&format!("{prefix}description"))),
            status: one(&format!("{prefix}status")),
            priority: one(&format!("{prefix}priority")),
            due: one(&format!("{prefix}due")),
            labels: one(&format!("{prefix}labels")),
            assignees: vec![],
        };
        let mut yours = fields("");
        yours.assignees = pairs
            .iter()
            .filter(|(k, _)| k == "assignee")
            .map(|(_, v)| v.clone())
            .collect();
        let mut base = fields("base_");
        base.assignees = one("base_assignees")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let version = one("version").parse().map_err(|_| {
            WebError::BadRequest("The form has no version; reload the page.".into())
        })?;
        Ok(Self {
            yours,
            base,
            version,
        })
    }

    /// The fields the person changed, as a patch; or what is wrong with them.
    fn patch(&self) -> Result<(TaskPatch, usize), Vec<FieldError>> {
        let (yours, mut patch, mut errors, mut count) =
            (&self.yours, TaskPatch::default(), vec![], 0);
        for field in FIELDS {
            if !differs(yours, &self.base, field) {
                continue;
            }
            count += 1;
            match field {
                "title" => patch.title = Edit::Set(yours.title.clone()),
                "description" => patch.description = Edit::Set(yours.description.clone()),
                "status" => match TaskStatus::parse(&yours.status) {
                    Ok(s) => patch.status = Edit::Set(s),
                    Err(e) => errors.push(FieldError::new("status", e)),
                },
                "priority" => match Priority::parse(&yours.priority) {
                    Ok(p) => patch.priority = Edit::Set(p),
                    Err(e) => errors.push(FieldError::new("priority", e)),
                },
                "due" => match parse_due(&yours.due) {
                    Ok(Some(due)) => patch.due_date = Edit::Set(due),
                    Ok(None) => patch.due_date = Edit::Clear,
                    Err(e) => errors.push(FieldError::new("due_date", e)),
                },
                "labels" => patch.labels = Edit::Set(parse_label_list(&yours.labels)),
                _ => {
                    let ids: Result<Vec<UserId>, _> =
                        yours.assignees.iter().map(|a| a.parse()).collect();
                    match ids {
                        Ok(ids) => patch.assignee_ids = Edit::Set(ids),
                        Err(_) => errors.push(FieldError::new("assignee_ids", "unknown person")),
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok((patch, count))
        } else {
            Err(errors)
        }
    }
}

/// `POST /tasks/{id}`: saves the fields the person changed, if the task is still at the
/// version the form was loaded at.
#[handler]
pub async fn save(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let id: TaskId = parse_id(&id)?;
    let sent = Submission::parse(&pairs)?;
    let abilities = service.task_abilities(&user.0, id).await?;
    if !abilities.view.can_edit {
        return Err(WebError::Forbidden(
            "Only the task's creator and assignees, and the team's owners and admins, may change it."
                .into(),
        ));
    }
    let here = format!("/tasks/{}", id.as_uuid());
    let patch = match sent.patch() {
        Ok((_, 0)) => return Ok(see_other(&here)),
        Ok((patch, _)) => patch,
        Err(fields) => return refused(&service, user, abilities, sent, fields).await,
    };
    match service
        .update_task(&user.0, id, patch, Some(sent.version))
        .await
    {
        Ok(Write::Done(_)) => Ok(see_other(&here)),
        Ok(Write::Stale(current)) => {
            let abilities = TaskAbilities {
                view: current,
                ..abilities
            };
            conflict(&service, user, abilities, sent).await
        }
        Err(Error::Validation(fields)) => refused(&service, user, abilities, sent, fields).await,
        Err(e @ Error::ProjectArchived) => {
            let message = FieldError::new("form", e.to_string());
            refused(&service, user, abilities, sent, vec![message]).await
        }
        Err(other) => Err(other.into()),
    }
}

/// The page again with the form as the person sent it and what is wrong with it (422).
async fn refused(
    service: &Service,
    user: WebUser,
    abilities: TaskAbilities,
    sent: Submission,
    fields: Vec<FieldError>,
) -> WebResult<Response> {
    let form_message = fields
        .iter()
        .find(|f| f.field == "form")
        .map(|f| f.message.clone());
    let form = FormState {
        editing: true,
        unsaved: true,
        values: sent.yours,
        base: sent.base,
        version: sent.version,
        errors: FormErrors {
            form: Some(form_message.unwrap_or_else(|| {
                "The task was not saved: correct the fields marked below.".into()
            })),
            fields,
        },
        conflict: None,
    };
    let page = build(service, user, abilities, form).await?;
    Ok(render(&page)?
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .into_response())
}

/// The conflict panel (409): their values beside the person's, and the form refilled with the
/// person's changes on top of the current version.
async fn conflict(
    service: &Service,
    user: WebUser,
    abilities: TaskAbilities,
    sent: Submission,
) -> WebResult<Response> {
    let theirs = TaskFields::of(&abilities.view.task);
    let names = service.people_names(&user.0).await?;
    let mut merged = theirs.clone();
    let mut rows = Vec::new();
    for field in FIELDS {
        let mine = differs(&sent.yours, &sent.base, field);
        let other = differs(&theirs, &sent.base, field);
        if mine {
            take(&mut merged, &sent.yours, field);
        }
        if mine || other {
            rows.push(ConflictRow {
                field: label(field),
                theirs: shown(&theirs, field, &names),
                yours: if mine {
                    shown(&sent.yours, field, &names)
                } else {
                    "(you did not change it)".into()
                },
                clash: mine && other && differs(&sent.yours, &theirs, field),
            });
        }
    }
    let form = FormState {
        editing: true,
        unsaved: true,
        values: merged,
        version: abilities.view.task.version,
        base: theirs,
        errors: FormErrors::default(),
        conflict: Some(Conflict { rows }),
    };
    let page = build(service, user, abilities, form).await?;
    Ok(render(&page)?
        .with_status(StatusCode::CONFLICT)
        .into_response())
}

/// A field's value in words, for the conflict panel.
fn shown(fields: &TaskFields, field: &str, names: &HashMap<UserId, String>) -> String {
    let none = || "(none)".to_string();
    match field {
        "title" => fields.title.trim().to_string(),
        "status" => TaskStatus::parse(&fields.status)
            .map(status_label)
            .map_or_else(|_| fields.status.clone(), str::to_string),
        "priority" => Priority::parse(&fields.priority)
            .map(priority_label)
            .map_or_else(|_| fields.priority.clone(), str::to_string),
        "due" if fields.due.trim().is_empty() => none(),
        "due" => fields.due.trim().to_string(),
        "labels" => {
            let labels = parse_label_list(&fields.labels);
            if labels.is_empty() {
                none()
            } else {
                labels.join(", ")
            }
        }
        "assignees" if fields.assignees.is_empty() => none(),
        "assignees" => fields
            .assignees
            .iter()
            .map(|a| {
                a.parse()
                    .map_or_else(|_| a.clone(), |id| name_of(names, id))
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ if fields.description.is_empty() => none(),
        _ => fields.description.clone(),
    }
}

/// `POST /tasks/{id}/delete`: deletes the task, then shows its project (or My work).
#[handler]
pub async fn delete(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: TaskId = parse_id(&id)?;
    let task = service.task(&user.0, id).await?;
    service.delete_task(&user.0, id, None).await?;
    Ok(see_other(&match task.task.project_id {
        Some(project) => format!("/projects/{}", project.as_uuid()),
        None => "/".to_string(),
    }))
}

/// `POST /tasks/preview`: Markdown (`description` or `body`) rendered as the page will show
/// it, for the Preview button.
#[handler]
pub async fn preview(
    _user: WebUser,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let source = pairs
        .iter()
        .find(|(k, _)| k == "description" || k == "body")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    Ok(html_response(if source.trim().is_empty() {
        "<p class=\"muted\">Nothing to preview.</p>".to_string()
    } else {
        markdown::render(source)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_what_the_person_changed_is_sent() {
        let form = pairs(&[
            ("version", "3"),
            ("title", "New"),
            ("base_title", "Old"),
            ("description", "a\r\nb"),
            ("base_description", "a\nb"),
            ("status", "todo"),
            ("base_status", "todo"),
            ("labels", "x, y"),
            ("base_labels", "x,y"),
            ("due", ""),
            ("base_due", "2026-01-31"),
            ("assignee", "0190b3a0-0000-7000-8000-000000000001"),
            ("base_assignees", "0190b3a0-0000-7000-8000-000000000001"),
        ]);
        let sent = Submission::parse(&form).unwrap();
        assert_eq!(sent.version, 3);
        let (patch, count) = sent.patch().unwrap();
        assert_eq!(count, 2, "the title and the cleared due date");
        assert!(matches!(patch.title, Edit::Set(ref t) if t == "New"));
        assert!(matches!(patch.due_date, Edit::Clear));
        assert!(matches!(patch.description, Edit::Keep));
        assert!(matches!(patch.labels, Edit::Keep));
    }

    #[test]
    fn bad_dates_and_statuses_are_named() {
        let form = pairs(&[
            ("version", "1"),
            ("due", "tomorrow"),
            ("status", "later"),
            ("base_status", "todo"),
        ]);
        let Err(errors) = Submission::parse(&form).unwrap().patch() else {
            panic!("refused");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["status", "due_date"]);
    }
}
