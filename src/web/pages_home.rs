//! My work: the open tasks assigned to me across projects, grouped overdue / today / this week
//! / later / no date, soonest first within a group.

use askama::Template;
use chrono::Utc;
use poem::web::Data;
use poem::{Request, Response, handler};

use super::error::WebResult;
use super::session::WebUser;
use super::views::{Due, TaskRow};
use super::{Chrome, render, see_other};
use crate::service::{Scope, Service, TaskQuery, TaskView};

/// The most tasks My work shows (the list view pages through more).
const MY_WORK_LIMIT: u32 = 200;

pub struct Group {
    pub key: &'static str,
    pub label: &'static str,
    pub tasks: Vec<TaskRow>,
}

#[derive(Template)]
#[template(path = "my_work.html")]
struct MyWorkPage {
    chrome: Chrome,
    groups: Vec<Group>,
    total: usize,
    /// More open tasks are assigned than shown.
    more: bool,
}

/// Sorts open tasks into the groups of My work.
pub fn group(mut tasks: Vec<TaskView>, now: chrono::DateTime<Utc>) -> Vec<Group> {
    tasks.sort_by(|a, b| {
        let key = |t: &TaskView| {
            (
                t.task.due_date.is_none(),
                t.task.due_date,
                std::cmp::Reverse(t.task.priority),
            )
        };
        key(a).cmp(&key(b))
    });
    Due::ALL
        .iter()
        .map(|due| Group {
            key: due.key(),
            label: due.label(),
            tasks: tasks
                .iter()
                .filter(|t| Due::of(t.task.due_date, now) == *due)
                .map(|t| TaskRow::new(&t.task, now))
                .collect(),
        })
        .collect()
}

/// `GET /`: My work for a signed-in user; a visitor signs in (or sets up a fresh server).
#[handler]
pub async fn my_work(req: &Request, service: Data<&Service>) -> WebResult<Response> {
    let Some(user) = WebUser::of(req).await else {
        let target = if service.needs_setup().await? {
            "/setup"
        } else {
            "/signin"
        };
        return Ok(see_other(target));
    };
    let query = TaskQuery {
        scope: Scope::Assigned,
        status: Some("todo,in_progress,blocked".into()),
        limit: Some(MY_WORK_LIMIT),
        ..TaskQuery::default()
    };
    let page = service.tasks(&user.0, query).await?;
    let more = page.next_cursor.is_some();
    let total = page.items.len();
    let chrome = Chrome::load(&service, user, "mywork").await?;
    render(&MyWorkPage {
        chrome,
        groups: group(page.items, Utc::now()),
        total,
        more,
    })
}
