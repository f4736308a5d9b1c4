//! The project board: one column per status with its cards in rank order, an inline quick
//! add, drag and drop and a "Move to…" dialog (assets/app/board.js), and live updates.
//!
//! Scripts ask for fragments with the `X-Board-Fragment` header: then a write answers the
//! affected columns (`partials/board_columns.html`) rather than a redirect, and a move that
//! lost a race answers `412` with the columns as they truly are, so the card snaps back.

mod actions;
mod view;

use poem::web::{Data, Path, Query};
use poem::{Request, Response, Route, get, handler, post};
use serde::Deserialize;

use super::error::{WebError, WebResult};
use super::session::WebUser;
use super::{Chrome, render};
use crate::domain::ProjectId;
use crate::domain::project::ProjectStatus;
use crate::domain::task::TaskStatus;
use crate::service::{MAX_PER_COLUMN, Service};
use view::{BoardPage, ColumnsFragment, QuickAdd};

/// The header scripts send to get fragments instead of redirects and pages.
pub const FRAGMENT_HEADER: &str = "x-board-fragment";

pub fn routes(route: Route) -> Route {
    route
        .at("/projects/:id", get(board_page))
        .at("/projects/:id/columns", get(columns))
        .at("/projects/:id/tasks", post(actions::quick_add))
        .at("/projects/:id/move", post(actions::move_card))
}

/// The project a path names; a malformed id is a project nobody can see.
fn project_id(id: &str) -> WebResult<ProjectId> {
    id.parse().map_err(|_| WebError::NotFound)
}

fn wants_fragment(req: &Request) -> bool {
    req.header(FRAGMENT_HEADER).is_some()
}

impl BoardPage {
    /// The whole board as `user` sees it (404 for who is not in the project's team).
    async fn load(
        service: &Service,
        user: WebUser,
        id: ProjectId,
        quick_add: Option<QuickAdd>,
        notice: Option<String>,
    ) -> WebResult<Self> {
        let auth = user.0.clone();
        let project = service.project(&auth, id).await?;
        let team = service.team(&auth, project.project.team_id).await?;
        let board = service.board(&auth, id, Some(MAX_PER_COLUMN)).await?;
        let active = project.project.status == ProjectStatus::Active;
        let chrome = Chrome::load(service, user, "projects").await?;
        let quick_add = active.then(|| {
            quick_add.unwrap_or(QuickAdd {
                csrf: chrome.csrf().to_string(),
                title: String::new(),
                bottom: false,
                error: None,
            })
        });
        Ok(Self {
            project_id: id.as_uuid().to_string(),
            project_name: project.project.name.as_str().to_string(),
            team_id: team.team.id.as_uuid().to_string(),
            team_name: team.team.name.as_str().to_string(),
            archived: !active,
            can_edit_project: project.can_edit,
            columns: view::columns(board, None, active),
            quick_add,
            statuses: view::status_choices(),
            notice,
            chrome,
        })
    }
}

/// `GET /projects/{id}`: the board.
#[handler]
async fn board_page(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id = project_id(&id)?;
    render(&BoardPage::load(&service, user, id, None, None).await?)
}

#[derive(Deserialize)]
struct ColumnsQuery {
    /// Comma-separated column keys; all columns without it.
    status: Option<String>,
}

/// `GET /projects/{id}/columns?status=todo,done`: some columns as they are now (live updates).
#[handler]
async fn columns(
    user: WebUser,
    service: Data<&Service>,
    Path(id): Path<String>,
    Query(query): Query<ColumnsQuery>,
) -> WebResult<Response> {
    let id = project_id(&id)?;
    let only = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => TaskStatus::ALL.to_vec(),
        Some(keys) => keys
            .split(',')
            .map(|key| view::status_of(key.trim()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| WebError::BadRequest("No such column.".into()))?,
    };
    render(&columns_fragment(&service, user, id, &only, None).await?)
}

/// The columns `only` of project `id`, as `user` sees them now.
async fn columns_fragment(
    service: &Service,
    user: WebUser,
    id: ProjectId,
    only: &[TaskStatus],
    message: Option<String>,
) -> WebResult<ColumnsFragment> {
    let project = service.project(&user.0, id).await?;
    let active = project.project.status == ProjectStatus::Active;
    let board = service.board(&user.0, id, Some(MAX_PER_COLUMN)).await?;
    Ok(ColumnsFragment {
        project_id: id.as_uuid().to_string(),
        columns: view::columns(board, Some(only), active),
        quick_add: None,
        message,
    })
}
