//! The calendar feed: a per-user secret URL (`/ical/tkc_….ics`) that calendar apps subscribe
//! to, listing the tasks assigned to the user that have a due date.
//!
//! The token is the credential (calendar apps send no headers): `tkc_` and 256 random bits
//! as 64 lower-case hex digits. Only its SHA-256 is stored; a new one replaces the old, which
//! stops working at once. The feed is iCalendar built with the `icalendar` crate: to-dos
//! (`VTODO`) by default, or events (`VEVENT`) for clients that ignore to-dos.

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use icalendar::{Calendar, Event, EventLike, EventStatus, Todo, TodoStatus};
use serde::{Deserialize, Serialize};

use super::UserId;
use super::task::{Priority, Task, TaskStatus};

/// The prefix of a calendar token, so secret scanners and people recognise it.
const TOKEN_PREFIX: &str = "tkc_";

/// The most tasks one feed lists: those due latest (the cap keeps a response small; a
/// calendar shows what is coming, and the most recent past).
pub const MAX_FEED_TASKS: usize = 1000;

/// The longest description a feed entry carries, in characters (then "…").
pub const FEED_DESCRIPTION_MAX_CHARS: usize = 2000;

/// How often calendar apps are asked to fetch the feed again (`REFRESH-INTERVAL`), and how
/// long a response may be reused (`Cache-Control: max-age`).
pub const FEED_REFRESH: std::time::Duration = std::time::Duration::from_secs(300);

/// A user's calendar feed: the hash of its token, and when it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarFeed {
    pub user_id: UserId,
    /// SHA-256 (hex) of the whole token.
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A feed token as presented: the SHA-256 (hex) to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarToken {
    pub hash: String,
}

impl CalendarToken {
    /// A new token from 32 random bytes: the token to show once, and its hash to store.
    pub fn issue(secret: [u8; 32]) -> (String, String) {
        let token = format!("{TOKEN_PREFIX}{}", hex(&secret));
        let hash = hash_token(&token);
        (token, hash)
    }

    /// Reads a presented token; `None` when it cannot be one (it then opens nothing).
    pub fn parse(raw: &str) -> Option<Self> {
        let secret = raw.strip_prefix(TOKEN_PREFIX)?;
        let well_formed = secret.len() == 64
            && secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| Self {
            hash: hash_token(raw),
        })
    }
}

fn hash_token(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The feed's path for `token`.
pub fn feed_path(token: &str) -> String {
    format!("/ical/{token}.ics")
}

/// What a feed lists each task as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeedKind {
    /// `VTODO` with `DUE`, `STATUS` and `PRIORITY` (Apple Reminders, Thunderbird, Outlook,
    /// DAVx⁵ with a tasks app).
    #[default]
    Todos,
    /// `VEVENT` at the due time (30 minutes), or all day when the task is due on a day: for
    /// clients that ignore to-dos (Google Calendar, most phone calendars).
    Events,
}

impl FeedKind {
    /// `?kind=`: `todo` (or nothing) or `event`; `None` for anything else.
    pub fn parse(raw: Option<&str>) -> Option<Self> {
        match raw {
            None | Some("todo") => Some(FeedKind::Todos),
            Some("event") => Some(FeedKind::Events),
            Some(_) => None,
        }
    }
}

/// Where the feed is served and who it is for: what its entries link to and name.
pub struct FeedSite<'a> {
    /// `https://tasks.example.com`: task links are `{origin}/tasks/{id}`.
    pub origin: &'a str,
    /// The host part of UIDs (`{task id}@{host}`).
    pub host: &'a str,
    /// The calendar's name as apps show it.
    pub name: &'a str,
}

/// The day a due date stands for when it is a whole day: the web app stores a day as its
/// last second (23:59:59 UTC), API clients often send midnight. `None`: a due time.
pub fn due_day(due: DateTime<Utc>) -> Option<NaiveDate> {
    let (h, m, s) = (due.hour(), due.minute(), due.second());
    let whole = due.nanosecond() == 0 && ((h, m, s) == (23, 59, 59) || (h, m, s) == (0, 0, 0));
    whole.then(|| due.date_naive())
}

/// iCalendar's `PRIORITY` (1 highest, 9 lowest; 5 is normal).
pub fn ical_priority(priority: Priority) -> u32 {
    match priority {
        Priority::Urgent => 1,
        Priority::High => 3,
        Priority::Medium => 5,
        Priority::Low => 9,
    }
}

/// A to-do's `STATUS`: a blocked task still needs action.
pub fn todo_status(status: TaskStatus) -> TodoStatus {
    match status {
        TaskStatus::Todo | TaskStatus::Blocked => TodoStatus::NeedsAction,
        TaskStatus::InProgress => TodoStatus::InProcess,
        TaskStatus::Done => TodoStatus::Completed,
    }
}

/// A description as plain text on one entry: line breaks kept as LF, cut at
/// [`FEED_DESCRIPTION_MAX_CHARS`].
fn plain_description(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.trim();
    if text.chars().count() <= FEED_DESCRIPTION_MAX_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(FEED_DESCRIPTION_MAX_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

/// The feed as iCalendar text (CRLF lines, folded). Everything in it comes from the tasks, so
/// the same tasks give the same bytes (the `ETag` is their hash). Tasks without a due date
/// are skipped.
pub fn render_feed(tasks: &[Task], site: &FeedSite<'_>, kind: FeedKind) -> String {
    let mut calendar = Calendar::empty();
    calendar
        .append_property(("VERSION", "2.0"))
        .append_property(("PRODID", "-//tasker//calendar feed//EN"))
        .append_property(("CALSCALE", "GREGORIAN"))
        .append_property(("METHOD", "PUBLISH"))
        .name(site.name)
        .ttl(&Duration::from_std(FEED_REFRESH).unwrap_or(Duration::minutes(5)));
    for task in tasks {
        let Some(due) = task.due_date else { continue };
        match kind {
            FeedKind::Todos => calendar.push(todo(task, due, site)),
            FeedKind::Events => calendar.push(event(task, due, site)),
        };
    }
    calendar.to_string()
}

/// The properties every entry has: UID, summary, description, link, labels, stamps.
fn common<C: EventLike>(entry: &mut C, task: &Task, site: &FeedSite<'_>, summary: &str) {
    entry
        .uid(&format!("{}@{}", task.id, site.host))
        .summary(summary)
        .url(&format!("{}/tasks/{}", site.origin, task.id))
        .timestamp(task.updated_at)
        .last_modified(task.updated_at)
        .created(task.created_at)
        .sequence(u32::try_from(task.version).unwrap_or(u32::MAX))
        .priority(ical_priority(task.priority));
    let description = plain_description(&task.description);
    if !description.is_empty() {
        entry.description(&description);
    }
    if !task.labels.is_empty() {
        entry.categories(&task.labels);
    }
}

fn todo(task: &Task, due: DateTime<Utc>, site: &FeedSite<'_>) -> Todo {
    let mut todo = Todo::new();
    common(&mut todo, task, site, task.title.as_str());
    match due_day(due) {
        Some(day) => todo.due(day),
        None => todo.due(due),
    };
    todo.status(todo_status(task.status));
    if task.status == TaskStatus::Done {
        todo.percent_complete(100);
    }
    todo.done()
}

fn event(task: &Task, due: DateTime<Utc>, site: &FeedSite<'_>) -> Event {
    let mut event = Event::new();
    let summary = match task.status {
        TaskStatus::Done => format!("Done: {}", task.title.as_str()),
        _ => task.title.as_str().to_string(),
    };
    common(&mut event, task, site, &summary);
    match due_day(due) {
        Some(day) => event.starts(day).ends(day + Duration::days(1)),
        None => event.starts(due).ends(due + Duration::minutes(30)),
    };
    event.status(EventStatus::Confirmed).done()
}

#[cfg(test)]
mod tests {
    use super::*;
    use icalendar::Component;

    #[test]
    fn tokens_are_prefixed_random_hex_and_stored_as_a_hash() {
        let (token, hash) = CalendarToken::issue([7; 32]);
        assert!(token.starts_with("tkc_") && token.len() == 4 + 64);
        assert_eq!(CalendarToken::parse(&token), Some(CalendarToken { hash }));
        for bad in [
            "",
            "tkc_",
            &token[..token.len() - 1],
            &token.to_uppercase(),
            &format!("{token}0"),
            &token.replace("tkc_", "tkr_"),
            &format!(" {token}"),
        ] {
            assert!(CalendarToken::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn whole_days_and_times() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 1, 31);
        assert_eq!(due_day(at("2026-01-31T23:59:59Z")), day);
        assert_eq!(due_day(at("2026-01-31T00:00:00Z")), day);
        assert_eq!(due_day(at("2026-01-31T14:30:00Z")), None);
        assert_eq!(due_day(at("2026-01-31T23:59:59.5Z")), None);
    }

    #[test]
    fn long_descriptions_are_cut_and_line_breaks_kept() {
        assert_eq!(plain_description(" a\r\nb\rc "), "a\nb\nc");
        let long = "x".repeat(FEED_DESCRIPTION_MAX_CHARS + 10);
        let cut = plain_description(&long);
        assert_eq!(cut.chars().count(), FEED_DESCRIPTION_MAX_CHARS);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn feeds_parse_back_with_every_property() {
        let mut task = Task::sample(UserId::new());
        task.title = super::super::task::TaskTitle::parse("Ship, then; rest").unwrap();
        task.description = "line one\nline two, with \\ and ;".into();
        task.due_date = Some("2026-03-01T09:15:00Z".parse().unwrap());
        task.priority = Priority::Urgent;
        task.status = TaskStatus::InProgress;
        task.labels = vec!["a,b".into(), "c".into()];
        let mut undated = task.clone();
        undated.due_date = None;
        let site = FeedSite {
            origin: "https://t.example",
            host: "t.example",
            name: "Tasks",
        };
        let text = render_feed(&[task.clone(), undated], &site, FeedKind::Todos);
        assert!(text.contains("\r\n"));
        let parsed: Calendar = text.parse().unwrap();
        let todos = parsed.todos().collect::<Vec<_>>();
        assert_eq!(todos.len(), 1);
        let todo = todos[0];
        assert_eq!(
            todo.get_uid(),
            Some(format!("{}@t.example", task.id).as_str())
        );
        assert_eq!(todo.get_summary(), Some("Ship, then; rest"));
        assert_eq!(todo.get_description(), Some(task.description.as_str()));
        assert_eq!(todo.get_priority(), Some(1));
        assert_eq!(todo.get_status(), Some(TodoStatus::InProcess));
        assert_eq!(todo.get_due(), Some(task.due_date.unwrap().into()));
        assert_eq!(
            todo.get_categories(),
            Some(vec!["a,b".to_string(), "c".to_string()])
        );
        assert_eq!(
            todo.get_url(),
            Some(format!("https://t.example/tasks/{}", task.id).as_str())
        );
        assert_eq!(text, render_feed(&[task.clone()], &site, FeedKind::Todos));

        task.due_date = Some("2026-03-01T23:59:59Z".parse().unwrap());
        let events: Calendar = render_feed(&[task], &site, FeedKind::Events)
            .parse()
            .unwrap();
        let event = events.events().next().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(event.get_start(), Some(day.into()));
        assert_eq!(event.get_end(), Some(day.succ_opt().unwrap().into()));
    }
}
