//! The task page (`/tasks/{id}`): every field shown and, for those who may, edited with the
//! version the form was loaded at, so a stale save shows what changed instead of overwriting
//! it; comments, attachments and the activity history; and the create form (`/tasks/new`).
//!
//! Regions of the page (`#task-main`, `#comments`, `#attachments`, `#activity`) are fragments
//! of the same template that `assets/app/task.js` refetches when a change to this task
//! arrives (and htmx swaps after a comment or a delete), so the page and its live updates
//! never disagree.

/// Upload, download and delete of files, through the service's streaming upload.
mod attachments;
/// Add, edit and delete comments.
mod comments;
/// The create form.
mod create;
/// Saving an edit: the patch of what the person changed, the conflict panel, delete, preview.
mod edit;
/// The page and its regions.
mod page;

use chrono::{DateTime, NaiveDate, Utc};
use poem::{Route, get, post};

use super::error::{WebError, WebResult};
use crate::domain::UserId;

/// The task pages' routes.
pub fn routes(route: Route) -> Route {
    route
        .at("/tasks/new", get(create::new_page).post(create::submit))
        .at("/tasks/preview", post(edit::preview))
        .at("/tasks/:id", get(page::show).post(edit::save))
        .at("/tasks/:id/delete", post(edit::delete))
        .at("/tasks/:id/comments", post(comments::add))
        .at("/comments/:id", post(comments::save))
        .at("/comments/:id/delete", post(comments::delete))
        .at("/tasks/:id/attachments", post(attachments::upload))
        .at("/attachments/:id/download", get(attachments::download))
        .at("/attachments/:id/delete", post(attachments::delete))
}

/// An id in a page's path; anything else is a page that does not exist.
fn parse_id<T: std::str::FromStr>(raw: &str) -> WebResult<T> {
    raw.parse().map_err(|_| WebError::NotFound)
}

/// Whether a request came from htmx (and wants a fragment, not a redirect).
fn from_htmx(req: &poem::Request) -> bool {
    req.header("hx-request").is_some()
}

/// A moment as pages show it: "5 Jan 2026, 14:03 UTC".
fn moment_label(at: DateTime<Utc>) -> String {
    at.format("%-d %b %Y, %H:%M UTC").to_string()
}

/// A due date as `<input type="date">` holds it.
fn date_input(due: Option<DateTime<Utc>>) -> String {
    due.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A date from `<input type="date">` (`YYYY-MM-DD`) as a due date: the end of that day (UTC),
/// so a task is overdue once its day is over. Empty: no due date.
fn parse_due(raw: &str) -> Result<Option<DateTime<Utc>>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| "must be a date like 2026-01-31".to_string())?;
    Ok(Some(
        day.and_hms_opt(23, 59, 59).expect("a valid time").and_utc(),
    ))
}

/// Labels typed as a comma-separated list.
fn parse_label_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A textarea's text with the browser's CRLF line breaks as LF.
fn normalized(text: &str) -> String {
    text.replace("\r\n", "\n")
}

/// Someone's name on a page, or a stand-in for a person the viewer shares no team with.
fn name_of(names: &std::collections::HashMap<UserId, String>, id: UserId) -> String {
    names
        .get(&id)
        .cloned()
        .unwrap_or_else(|| "A former member".to_string())
}

/// A size in bytes as people read it.
fn size_label(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KB {
        format!("{bytes} B")
    } else if b < KB * KB {
        format!("{:.1} KB", b / KB)
    } else {
        format!("{:.1} MB", b / KB / KB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_dates_from_the_date_input() {
        assert_eq!(parse_due("").unwrap(), None);
        let due = parse_due("2026-01-31").unwrap().unwrap();
        assert_eq!(date_input(Some(due)), "2026-01-31");
        assert_eq!(due.format("%H:%M").to_string(), "23:59");
        assert!(parse_due("31/01/2026").is_err());
        assert!(parse_due("2026-02-30").is_err());
    }

    #[test]
    fn labels_and_sizes() {
        assert_eq!(parse_label_list(" a, b ,,c "), ["a", "b", "c"]);
        assert!(parse_label_list(" , ").is_empty());
        assert_eq!(size_label(12), "12 B");
        assert_eq!(size_label(2048), "2.0 KB");
        assert_eq!(size_label(3 * 1024 * 1024), "3.0 MB");
    }
}
