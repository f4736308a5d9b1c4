//! What the board shows: its columns and cards, built from the service's [`Board`], and the
//! templates that render a whole board or only some of its columns (for a move's answer and
//! live updates).

use askama::Template;
use chrono::Utc;

use crate::domain::task::TaskStatus;
use crate::service::{Board, TaskView};
use crate::web::Chrome;
use crate::web::views::{TaskRow, status_key, status_label};

/// One card: the task as lists show it, and whether this viewer may move it.
pub struct Card {
    pub task: TaskRow,
    pub movable: bool,
}

/// One status column.
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    pub cards: Vec<Card>,
    /// More tasks are in this column than the board shows.
    pub more: bool,
}

/// The quick-add form at the top of the To do column (with what was typed, after an error).
pub struct QuickAdd {
    pub csrf: String,
    pub title: String,
    pub bottom: bool,
    pub error: Option<String>,
}

/// The column statuses, for the move dialog: `(key, label)`.
pub struct StatusChoice {
    pub key: &'static str,
    pub label: &'static str,
}

pub fn status_choices() -> Vec<StatusChoice> {
    TaskStatus::ALL
        .iter()
        .map(|&s| StatusChoice {
            key: status_key(s),
            label: status_label(s),
        })
        .collect()
}

/// The status a column key names (`todo`, `in_progress`, `blocked`, `done`).
pub fn status_of(key: &str) -> Option<TaskStatus> {
    TaskStatus::ALL.into_iter().find(|&s| status_key(s) == key)
}

/// The columns of `board` whose status is in `only` (all of them when `only` is `None`).
/// `active`: the project accepts changes (cards of an archived project cannot be moved).
pub fn columns(board: Board, only: Option<&[TaskStatus]>, active: bool) -> Vec<Column> {
    let now = Utc::now();
    board
        .columns
        .into_iter()
        .filter(|c| only.is_none_or(|only| only.contains(&c.status)))
        .map(|c| Column {
            key: status_key(c.status),
            label: status_label(c.status),
            cards: c
                .tasks
                .iter()
                .map(|view: &TaskView| Card {
                    task: TaskRow::new(&view.task, now),
                    movable: active && view.can_edit,
                })
                .collect(),
            more: c.more,
        })
        .collect()
}

/// The board page.
#[derive(Template)]
#[template(path = "board.html")]
pub struct BoardPage {
    pub chrome: Chrome,
    pub project_id: String,
    pub project_name: String,
    pub team_id: String,
    pub team_name: String,
    pub archived: bool,
    /// The caller may open the project's settings.
    pub can_edit_project: bool,
    pub columns: Vec<Column>,
    /// Present while the project accepts new tasks.
    pub quick_add: Option<QuickAdd>,
    pub statuses: Vec<StatusChoice>,
    /// A message shown above the board (after a move that lost a race, without scripts).
    pub notice: Option<String>,
}

/// Some columns of a board, for scripts to swap in: a move's answer, a live update, a new
/// card. `message` says why the board looks different from what the person did.
#[derive(Template)]
#[template(path = "partials/board_columns.html")]
pub struct ColumnsFragment {
    pub project_id: String,
    pub columns: Vec<Column>,
    pub quick_add: Option<QuickAdd>,
    pub message: Option<String>,
}

/// A short message for scripts (a refused quick add).
#[derive(Template)]
#[template(
    source = r#"<p class="field-error" data-board-message>{{ message }}</p>"#,
    ext = "html"
)]
pub struct MessageFragment<'a> {
    pub message: &'a str,
}
