//! The board's writes: the quick add at the top of To do, and moving a card (by drag and drop
//! or the "Move to…" dialog). Both call the same service methods as the JSON API.

use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::view::{MessageFragment, QuickAdd, status_of};
use super::{BoardPage, columns_fragment, project_id, wants_fragment};
use crate::domain::TaskId;
use crate::domain::task::TaskStatus;
use crate::service::{Error, NewTask, Position, Service, TaskMove, Write};
use crate::web::error::{WebError, WebResult};
use crate::web::session::WebUser;
use crate::web::views::capitalized;
use crate::web::{html_response, see_other};

/// What a person sees when their move lost a race.
const LOST_RACE: &str = "Someone else changed this card first: it is shown where it is now.";

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    title: String,
    /// `top` (default) or `bottom` of the To do column.
    #[serde(default)]
    position: String,
}

/// `POST /projects/{id}/tasks`: a new task in To do, at its top or bottom. Scripts get the
/// To do column back; a plain form goes back to the board.
#[handler]
pub async fn quick_add(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Form(form): Form<AddForm>,
) -> WebResult<Response> {
    let project = project_id(&id)?;
    let bottom = form.position == "bottom";
    let input = NewTask {
        title: form.title.clone(),
        description: None,
        status: Some(TaskStatus::Todo),
        priority: None,
        due_date: None,
        labels: None,
        project_id: Some(project),
        assignee_ids: None,
        position: Some(if bottom {
            Position::Bottom
        } else {
            Position::Top
        }),
    };
    match service.create_task(&user.0, input, None).await {
        Ok(_) if wants_fragment(req) => {
            let columns = columns_fragment(&service, user, project, &[TaskStatus::Todo], None);
            Ok(fragment(StatusCode::OK, &columns.await?)?)
        }
        Ok(_) => Ok(see_other(&format!("/projects/{id}"))),
        Err(Error::Validation(fields)) => {
            let message = fields
                .iter()
                .map(|f| format!("{}: {}", capitalized(&f.field), f.message))
                .collect::<Vec<_>>()
                .join(" ");
            if wants_fragment(req) {
                return fragment(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &MessageFragment { message: &message },
                );
            }
            let again = QuickAdd {
                csrf: String::new(),
                title: form.title,
                bottom,
                error: Some(message),
            };
            let mut page = BoardPage::load(&service, user, project, Some(again), None).await?;
            if let Some(q) = page.quick_add.as_mut() {
                q.csrf = page.chrome.csrf().to_string();
            }
            fragment(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct MoveForm {
    task: String,
    status: String,
    /// The card now right above it in the target column (empty: none).
    #[serde(default)]
    after: String,
    /// The card now right below it (empty: none).
    #[serde(default)]
    before: String,
    /// Without neighbours: `top` or `bottom`.
    #[serde(default)]
    position: String,
    /// The version of the card the person moved.
    #[serde(default)]
    version: String,
    /// The column it was in on the person's screen.
    #[serde(default)]
    from: String,
}

/// An optional task id from a form field (empty: none).
fn neighbour(value: &str) -> WebResult<Option<TaskId>> {
    match value.trim() {
        "" => Ok(None),
        id => id
            .parse()
            .map(Some)
            .map_err(|_| WebError::BadRequest("No such card.".into())),
    }
}

impl MoveForm {
    fn parse(&self) -> WebResult<(TaskId, TaskMove, Option<u64>)> {
        let bad = |what: &str| WebError::BadRequest(format!("The move names no {what}."));
        let task = self.task.trim().parse().map_err(|_| bad("card"))?;
        let status = status_of(self.status.trim()).ok_or_else(|| bad("column"))?;
        let (after_id, before_id) = (neighbour(&self.after)?, neighbour(&self.before)?);
        let position = match self.position.as_str() {
            _ if after_id.is_some() || before_id.is_some() => None,
            "bottom" => Some(Position::Bottom),
            _ => Some(Position::Top),
        };
        let version = self.version.trim().parse().ok();
        let to = TaskMove {
            status,
            after_id,
            before_id,
            position,
        };
        Ok((task, to, version))
    }
}

/// `POST /projects/{id}/move`: a card to a column and a place in it, if its version is still
/// the one the person saw. Scripts get the columns it left and entered (200), or, when the
/// move lost a race, those and the column it is truly in, with a message (412).
#[handler]
pub async fn move_card(
    req: &Request,
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> WebResult<Response> {
    let project = project_id(&id)?;
    let (task, to, version) = form.parse()?;
    let mut touched = vec![to.status];
    touched.extend(status_of(&form.from));
    let (status, message) = match service.move_task(&user.0, task, to, version).await {
        Ok(Write::Done(_)) => (StatusCode::OK, None),
        Ok(Write::Stale(current)) => {
            touched.push(current.task.status);
            (StatusCode::PRECONDITION_FAILED, Some(LOST_RACE.to_string()))
        }
        // A neighbour left the column meanwhile: the board moved under the person's hand.
        Err(Error::Validation(_)) => {
            if let Ok(current) = service.task(&user.0, task).await {
                touched.push(current.task.status);
            }
            (StatusCode::CONFLICT, Some(LOST_RACE.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    if !wants_fragment(req) {
        if status == StatusCode::OK {
            return Ok(see_other(&format!("/projects/{id}")));
        }
        let page = BoardPage::load(&service, user, project, None, message).await?;
        return fragment(status, &page);
    }
    let columns = columns_fragment(&service, user, project, &touched, message).await?;
    fragment(status, &columns)
}

/// A rendered template with `status`.
fn fragment(status: StatusCode, template: &impl askama::Template) -> WebResult<Response> {
    Ok(html_response(template.render()?)
        .with_status(status)
        .into_response())
}
