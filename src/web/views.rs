//! What pages show of domain values: labels and CSS classes for statuses and priorities, due
//! dates relative to now. Shared by every page that lists tasks.

use chrono::{DateTime, Datelike, Duration, Utc};

use crate::domain::task::{Priority, Task, TaskStatus};

/// `text` with its first letter in upper case (service messages start in lower case).
pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub fn status_key(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Todo => "todo",
        TaskStatus::InProgress => "in_progress",
        TaskStatus::Blocked => "blocked",
        TaskStatus::Done => "done",
    }
}

pub fn status_label(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Todo => "To do",
        TaskStatus::InProgress => "In progress",
        TaskStatus::Blocked => "Blocked",
        TaskStatus::Done => "Done",
    }
}

pub fn priority_key(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Medium => "medium",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

pub fn priority_label(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "Low",
        Priority::Medium => "Medium",
        Priority::High => "High",
        Priority::Urgent => "Urgent",
    }
}

/// A due date as people say it: "today", "tomorrow", "Mon 7 Dec", "7 Dec 2027".
pub fn due_label(due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let (day, today) = (due.date_naive(), now.date_naive());
    match (day - today).num_days() {
        0 => "today".into(),
        1 => "tomorrow".into(),
        -1 => "yesterday".into(),
        2..=6 => due.format("%a %-d %b").to_string(),
        _ if day.year() == today.year() => due.format("%-d %b").to_string(),
        _ => due.format("%-d %b %Y").to_string(),
    }
}

/// One task in a list or on a card.
pub struct TaskRow {
    pub id: String,
    pub title: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub priority: &'static str,
    pub priority_label: &'static str,
    /// `None` without a due date.
    pub due: Option<String>,
    /// The due date as `YYYY-MM-DD` for `<time datetime>`.
    pub due_iso: String,
    pub overdue: bool,
    pub labels: Vec<String>,
    pub project_id: Option<String>,
    pub version: u64,
    pub comments: u64,
    pub attachments: u64,
    pub assignees: usize,
}

impl TaskRow {
    pub fn new(task: &Task, now: DateTime<Utc>) -> Self {
        Self {
            id: task.id.as_uuid().to_string(),
            title: task.title.as_str().to_string(),
            status: status_key(task.status),
            status_label: status_label(task.status),
            priority: priority_key(task.priority),
            priority_label: priority_label(task.priority),
            due: task.due_date.map(|d| due_label(d, now)),
            due_iso: task
                .due_date
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            overdue: task.status != TaskStatus::Done && task.due_date.is_some_and(|d| d < now),
            labels: task.labels.clone(),
            project_id: task.project_id.map(|p| p.as_uuid().to_string()),
            version: task.version,
            comments: task.comment_count,
            attachments: task.attachment_count,
            assignees: task.assignee_ids.len(),
        }
    }
}

/// One option of a filter control (a `<select>` option or a checkbox).
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    pub fn new(value: impl Into<String>, label: impl Into<String>, selected: bool) -> Self {
        Self {
            value: value.into(),
            label: label.into(),
            selected,
        }
    }
}

/// The groups of My work, in the order shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Overdue,
    Today,
    ThisWeek,
    Later,
    NoDate,
}

impl Due {
    pub const ALL: [Due; 5] = [
        Due::Overdue,
        Due::Today,
        Due::ThisWeek,
        Due::Later,
        Due::NoDate,
    ];

    /// Which group a due date falls in, seen at `now` (days are UTC days).
    pub fn of(due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        let Some(due) = due else {
            return Due::NoDate;
        };
        let start_of_today = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc();
        if due < now && due.date_naive() < now.date_naive() {
            Due::Overdue
        } else if due < start_of_today + Duration::days(1) {
            Due::Today
        } else if due < start_of_today + Duration::days(7) {
            Due::ThisWeek
        } else {
            Due::Later
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Due::Overdue => "Overdue",
            Due::Today => "Today",
            Due::ThisWeek => "This week",
            Due::Later => "Later",
            Due::NoDate => "No date",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Due::Overdue => "overdue",
            Due::Today => "today",
            Due::ThisWeek => "week",
            Due::Later => "later",
            Due::NoDate => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn due_groups_follow_the_calendar() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 15, 0, 0).unwrap();
        let at = |d: u32, h: u32| Some(Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap());
        let nov = |d: u32, h: u32| Some(Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap());
        assert_eq!(Due::of(nov(29, 23), now), Due::Overdue);
        // Earlier today is still today: the day is not over.
        assert_eq!(Due::of(nov(30, 9), now), Due::Today);
        assert_eq!(Due::of(nov(30, 23), now), Due::Today);
        assert_eq!(Due::of(at(1, 0), now), Due::ThisWeek);
        assert_eq!(Due::of(at(6, 23), now), Due::ThisWeek);
        assert_eq!(Due::of(at(7, 0), now), Due::Later);
        assert_eq!(Due::of(None, now), Due::NoDate);
    }

    #[test]
    fn due_labels_are_relative_when_near() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 15, 0, 0).unwrap();
        let day = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap();
        assert_eq!(due_label(day(2026, 11, 30), now), "today");
        assert_eq!(due_label(day(2026, 12, 1), now), "tomorrow");
        assert_eq!(due_label(day(2026, 11, 29), now), "yesterday");
        assert_eq!(due_label(day(2026, 12, 3), now), "Thu 3 Dec");
        assert_eq!(due_label(day(2026, 1, 3), now), "3 Jan");
        assert_eq!(due_label(day(2027, 2, 3), now), "3 Feb 2027");
    }
}
