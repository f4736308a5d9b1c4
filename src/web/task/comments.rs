//! Comments on the task page: added at the end of the list without a reload (htmx), edited and
//! deleted in place. Without htmx the same forms post and come back to the page.

use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::super::{html_response, render, see_other};
use super::page::{CommentFragment, CommentItem};
use super::{from_htmx, parse_id};
use crate::domain::{CommentId, TaskId};
use crate::service::{Error, Service, Write};
use crate::web::error::{WebError, WebResult};
use crate::web::session::WebUser;

#[derive(Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    body: String,
    version: Option<u64>,
}

/// What is wrong with a comment's body, in words.
fn body_problem(e: &Error) -> Option<String> {
    match e {
        Error::Validation(fields) => Some(
            fields
                .iter()
                .map(|f| format!("The comment {}.", f.message))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Error::ProjectArchived => Some(format!("{}.", e)),
        _ => None,
    }
}

/// One comment as a fragment.
async fn fragment(service: &Service, user: WebUser, c: CommentItem) -> WebResult<Response> {
    let csrf = service.csrf_token(&user.0);
    render(&CommentFragment { c, csrf })
}

/// `POST /tasks/{id}/comments`.
#[handler]
pub async fn add(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> WebResult<Response> {
    let id: TaskId = parse_id(&id)?;
    let body = super::normalized(&form.body);
    let created = match service.create_comment(&user.0, id, &body, None).await {
        Ok(created) => created,
        Err(e) => match body_problem(&e) {
            Some(message) if from_htmx(req) => {
                let html = format!("<p class=\"field-error\">{}</p>", escape(&message));
                return Ok(html_response(html)
                    .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                    .into_response());
            }
            Some(message) => return Err(WebError::Invalid(message)),
            None => return Err(e.into()),
        },
    };
    if !from_htmx(req) {
        let to = format!(
            "/tasks/{}#comment-{}",
            id.as_uuid(),
            created.comment.id.as_uuid()
        );
        return Ok(see_other(&to));
    }
    let names = service.people_names(&user.0).await?;
    fragment(&service, user, CommentItem::new(&created, &names)).await
}

/// `POST /comments/{id}`: a new body for the author's comment, if it is still at `version`.
/// When it is not (or the body is refused) the comment comes back with its current text and
/// the edit form still holding what the person typed.
#[handler]
pub async fn save(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> WebResult<Response> {
    let id: CommentId = parse_id(&id)?;
    let body = super::normalized(&form.body);
    let outcome = service
        .update_comment(&user.0, id, &body, form.version)
        .await;
    let (view, problem) = match outcome {
        Ok(Write::Done(view)) if !from_htmx(req) => {
            let to = format!("/tasks/{}#comment-{}", view.comment.task_id.as_uuid(), id.as_uuid());
            return Ok(see_other(&to));
        }
        Ok(Write::Done(view)) => (view, None),
        Ok(Write::Stale(current)) => (
            current,
            Some("Someone changed this comment meanwhile: its text now is shown above. Your text is kept below; save again to replace it.".to_string()),
        ),
        Err(e) => match body_problem(&e) {
            Some(message) => (service.comment(&user.0, id).await?, Some(message)),
            None => return Err(e.into()),
        },
    };
    let Some(problem) = problem else {
        let names = service.people_names(&user.0).await?;
        return fragment(&service, user, CommentItem::new(&view, &names)).await;
    };
    if !from_htmx(req) {
        return Err(WebError::Invalid(problem));
    }
    let names = service.people_names(&user.0).await?;
    let mut item = CommentItem::new(&view, &names);
    item.editing = true;
    item.body = body;
    item.error = Some(problem);
    fragment(&service, user, item).await
}

/// `POST /comments/{id}/delete`.
#[handler]
pub async fn delete(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: CommentId = parse_id(&id)?;
    let comment = service.comment(&user.0, id).await?;
    service.delete_comment(&user.0, id, None).await?;
    if from_htmx(req) {
        // The comment's element is swapped for nothing.
        return Ok(html_response(String::new()));
    }
    Ok(see_other(&format!(
        "/tasks/{}#comments",
        comment.comment.task_id.as_uuid()
    )))
}

/// Text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
