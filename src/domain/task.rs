//! Tasks and the rules on their fields.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{ProjectId, TaskId, TeamId};
use super::rank::Rank;
use super::{Cursor, UserId, is_forbidden_char, single_line_problem};

pub const TITLE_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 20_000;
pub const MAX_LABELS: usize = 20;
pub const LABEL_MAX_CHARS: usize = 40;
pub const MAX_ASSIGNEES: usize = 20;

/// A task title: trimmed, 1 to 200 characters, no control, bidirectional control or
/// invisible characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskTitle(String);

impl TaskTitle {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > TITLE_MAX_CHARS {
            return Err(format!("must be at most {TITLE_MAX_CHARS} characters"));
        }
        let title = raw.trim();
        if title.is_empty() {
            return Err("must not be empty".into());
        }
        if let Some(problem) = single_line_problem(title) {
            return Err(problem.into());
        }
        Ok(Self(title.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A description up to 20,000 characters (line breaks and tabs allowed).
pub fn parse_task_description(raw: &str) -> Result<String, String> {
    if raw.chars().count() > DESCRIPTION_MAX_CHARS {
        return Err(format!(
            "must be at most {DESCRIPTION_MAX_CHARS} characters"
        ));
    }
    if raw
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err("must not contain control characters other than line breaks and tabs".into());
    }
    Ok(raw.to_string())
}

/// Up to 20 labels of 1 to 40 characters each, trimmed, duplicates removed, order kept.
pub fn parse_labels(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > MAX_LABELS {
        return Err(format!("at most {MAX_LABELS} labels"));
    }
    let mut seen = BTreeSet::new();
    let mut labels = Vec::with_capacity(raw.len());
    for label in raw {
        if label.chars().count() > LABEL_MAX_CHARS {
            return Err(format!(
                "each label must be at most {LABEL_MAX_CHARS} characters"
            ));
        }
        let label = label.trim();
        if label.is_empty() || label.chars().any(is_forbidden_char) {
            return Err(
                "labels must not be empty or contain control, bidirectional control or invisible characters"
                    .into(),
            );
        }
        if seen.insert(label.to_string()) {
            labels.push(label.to_string());
        }
    }
    Ok(labels)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Todo,
    InProgress,
    Blocked,
    Done,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 4] = [
        TaskStatus::Todo,
        TaskStatus::InProgress,
        TaskStatus::Blocked,
        TaskStatus::Done,
    ];

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "todo" => Ok(TaskStatus::Todo),
            "in_progress" => Ok(TaskStatus::InProgress),
            "blocked" => Ok(TaskStatus::Blocked),
            "done" => Ok(TaskStatus::Done),
            other => Err(format!(
                "unknown status {other:?}: use todo, in_progress, blocked or done"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "low" => Ok(Priority::Low),
            "medium" => Ok(Priority::Medium),
            "high" => Ok(Priority::High),
            "urgent" => Ok(Priority::Urgent),
            other => Err(format!(
                "unknown priority {other:?}: use low, medium, high or urgent"
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub title: TaskTitle,
    pub description: String,
    pub status: TaskStatus,
    pub priority: Priority,
    pub due_date: Option<DateTime<Utc>>,
    pub labels: Vec<String>,
    pub project_id: Option<ProjectId>,
    /// The project's team; `None` for a personal task.
    pub team_id: Option<TeamId>,
    pub assignee_ids: Vec<UserId>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
    /// Comments on the task. Kept with the row so lists show it; a comment does not change
    /// the task's `version` (it is no edit of the task), only its `ETag`.
    #[serde(default)]
    pub comment_count: u64,
    /// Attachments of the task; like `comment_count`.
    #[serde(default)]
    pub attachment_count: u64,
    /// Its place in its column ([`Task::column`]); empty in rows from before ranks existed
    /// (the migration gives them one) and on tasks not yet stored.
    #[serde(default)]
    pub rank: Rank,
}

/// Whose board a column belongs to: a project's, or (personal tasks) their creator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Board {
    Project(ProjectId),
    Personal(UserId),
}

/// One column of a board: the tasks ranked against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Column {
    pub board: Board,
    pub status: TaskStatus,
}

impl Column {
    /// The column as index key prefix: `(board kind, board id, status)`.
    pub fn key(self) -> (u8, u128, u8) {
        match self.board {
            Board::Project(p) => (0, p.as_u128(), self.status as u8),
            Board::Personal(u) => (1, u.as_u128(), self.status as u8),
        }
    }
}

impl Task {
    pub fn is_assigned_to(&self, user: UserId) -> bool {
        self.assignee_ids.contains(&user)
    }

    /// Creator or assignee: the people the seed's rule lets update a task.
    pub fn is_involved(&self, user: UserId) -> bool {
        self.created_by == user || self.is_assigned_to(user)
    }

    /// The board a task is on: its project's, or for a personal task its creator's.
    pub fn board(&self) -> Board {
        match self.project_id {
            Some(project) => Board::Project(project),
            None => Board::Personal(self.created_by),
        }
    }

    /// The column its `rank` orders it in.
    pub fn column(&self) -> Column {
        Column {
            board: self.board(),
            status: self.status,
        }
    }

    /// Its key in a sorted list's index (see [`TaskSort`]).
    pub fn sort_key(&self, sort: TaskSort) -> u64 {
        match sort {
            TaskSort::Created => 0,
            TaskSort::Updated => time_key(self.updated_at),
            TaskSort::DueDate => self.due_date.map_or(NO_DUE_DATE, time_key),
            TaskSort::Priority => self.priority as u64,
        }
    }
}

/// What a task list is ordered by; ties are broken by id (creation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskSort {
    /// Creation (the id order of the `TASKS_BY_*` indexes).
    #[default]
    Created,
    Updated,
    /// Tasks without a due date come last in both directions.
    DueDate,
    Priority,
}

impl TaskSort {
    /// The sorts with their own index (every one but `Created`), with their index tags.
    pub const INDEXED: [TaskSort; 3] = [TaskSort::Updated, TaskSort::DueDate, TaskSort::Priority];

    /// Its tag in index keys and cursors.
    pub fn tag(self) -> u8 {
        self as u8
    }
}

/// The sort key of a task without a due date: above every date, and kept last when the
/// list is descending (see `store/task_lists.rs`).
pub const NO_DUE_DATE: u64 = u64::MAX;

/// A time as an order-preserving `u64` (microseconds since 1970, sign bit flipped).
pub fn time_key(at: DateTime<Utc>) -> u64 {
    (at.timestamp_micros() as u64) ^ (1 << 63)
}

/// Where a task list's next page starts: after this task, at this sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListPosition {
    pub key: u64,
    pub id: u128,
}

impl ListPosition {
    /// The cursor text: for `Created` the plain id cursor every list uses (so cursors from
    /// before sorts keep working); for the others the sort's tag, the key and the id.
    pub fn encode(self, sort: TaskSort) -> String {
        use base64::Engine;
        if sort == TaskSort::Created {
            return Cursor::after(self.id).encode();
        }
        let mut bytes = vec![sort.tag()];
        bytes.extend(self.key.to_be_bytes());
        bytes.extend(self.id.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a cursor [`ListPosition::encode`] made for the same `sort`.
    pub fn parse(text: &str, sort: TaskSort) -> Result<Self, String> {
        use base64::Engine;
        if sort == TaskSort::Created {
            return Ok(Self {
                key: 0,
                id: Cursor::parse(text)?.key(),
            });
        }
        let invalid = || "is not a cursor this server gave for this sort".to_string();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid())?;
        if bytes.len() != 25 || bytes[0] != sort.tag() {
            return Err(invalid());
        }
        Ok(Self {
            key: u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes")),
            id: u128::from_be_bytes(bytes[9..].try_into().expect("16 bytes")),
        })
    }
}

/// What a task list or a search narrows by: any of `statuses` (none: any), the project, an
/// assignee, a label (exact).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub statuses: Vec<TaskStatus>,
    pub project: Option<ProjectId>,
    pub assignee: Option<UserId>,
    pub label: Option<String>,
}

impl TaskFilter {
    pub fn matches(&self, task: &Task) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&task.status))
            && self.project.is_none_or(|p| task.project_id == Some(p))
            && self.assignee.is_none_or(|a| task.is_assigned_to(a))
            && self
                .label
                .as_deref()
                .is_none_or(|l| task.labels.iter().any(|x| x == l))
    }
}

#[cfg(test)]
impl Task {
    /// A personal task titled "t" in `todo`, created by `creator` just now: what unit tests
    /// start from, changing the fields they are about (`Task { team_id, ..Task::sample(me) }`).
    pub(crate) fn sample(creator: UserId) -> Self {
        let now = Utc::now();
        Task {
            id: TaskId::new(),
            title: TaskTitle::parse("t").expect("a valid title"),
            description: String::new(),
            status: TaskStatus::Todo,
            priority: Priority::Medium,
            due_date: None,
            labels: vec![],
            project_id: None,
            team_id: None,
            assignee_ids: vec![],
            created_by: creator,
            created_at: now,
            updated_at: now,
            version: 1,
            comment_count: 0,
            attachment_count: 0,
            rank: Rank::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_filter_needs_every_part_to_match() {
        let task: Task = serde_json::from_value(serde_json::json!({
            "id": TaskId::new(), "title": "T", "description": "", "status": "done",
            "priority": "medium", "due_date": null, "labels": ["ops"], "project_id": null,
            "team_id": null, "assignee_ids": [], "created_by": UserId::new(),
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "version": 1
        }))
        .unwrap();
        assert!(TaskFilter::default().matches(&task));
        let done_ops = TaskFilter {
            statuses: vec![TaskStatus::Todo, TaskStatus::Done],
            label: Some("ops".into()),
            ..TaskFilter::default()
        };
        assert!(done_ops.matches(&task));
        for other in [
            TaskFilter {
                statuses: vec![TaskStatus::Todo],
                ..done_ops.clone()
            },
            TaskFilter {
                label: Some("Ops".into()),
                ..done_ops.clone()
            },
            TaskFilter {
                assignee: Some(UserId::new()),
                ..done_ops.clone()
            },
            TaskFilter {
                project: Some(ProjectId::new()),
                ..done_ops.clone()
            },
        ] {
            assert!(!other.matches(&task), "{other:?}");
        }
    }

    use super::*;

    #[test]
    fn titles_and_labels() {
        assert_eq!(
            TaskTitle::parse(" Fix login ").unwrap().as_str(),
            "Fix login"
        );
        assert!(TaskTitle::parse(" ").is_err());
        assert!(TaskTitle::parse(&"x".repeat(201)).is_err());
        let labels = parse_labels(&[" bug ".into(), "bug".into(), "ui".into()]).unwrap();
        assert_eq!(labels, ["bug", "ui"]);
        assert!(parse_labels(&vec!["x".to_string(); 21]).is_err());
        assert!(parse_labels(&["x".repeat(41)]).is_err());
        assert!(parse_labels(&["".into()]).is_err());
        assert!(parse_task_description(&"x".repeat(20_001)).is_err());
    }

    #[test]
    fn titles_and_labels_refuse_bidirectional_controls() {
        for c in ['\u{202E}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}'] {
            assert_eq!(
                TaskTitle::parse(&format!("Pay invoice{c}exe.pdf")).unwrap_err(),
                "must not contain bidirectional control characters"
            );
            assert!(parse_labels(&[format!("bug{c}")]).is_err());
        }
        assert_eq!(
            TaskTitle::parse("a\u{200B}b").unwrap_err(),
            "must not contain control characters"
        );
        assert!(parse_labels(&["a\u{2060}b".into()]).is_err());
        // Right-to-left text itself is welcome.
        assert_eq!(
            TaskTitle::parse("تحديث الصفحة").unwrap().as_str(),
            "تحديث الصفحة"
        );
    }

    #[test]
    fn sort_keys_order_like_their_fields_and_cursors_round_trip() {
        let at = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        let mut early = Task::sample(UserId::new());
        let mut late = early.clone();
        (early.due_date, late.due_date) = (at("1960-01-01T00:00:00Z"), at("2030-01-01T00:00:00Z"));
        (early.priority, late.priority) = (Priority::Low, Priority::Urgent);
        for sort in TaskSort::INDEXED {
            assert!(early.sort_key(sort) <= late.sort_key(sort), "{sort:?}");
        }
        assert!(early.sort_key(TaskSort::DueDate) < late.sort_key(TaskSort::DueDate));
        late.due_date = None;
        assert_eq!(late.sort_key(TaskSort::DueDate), NO_DUE_DATE);
        let position = ListPosition { key: 42, id: 7 };
        for sort in TaskSort::INDEXED {
            assert_eq!(
                ListPosition::parse(&position.encode(sort), sort),
                Ok(position)
            );
            let other = ListPosition::parse(&position.encode(sort), TaskSort::Created);
            assert!(other.is_err(), "a cursor belongs to its sort");
        }
        let created = ListPosition::parse(&position.encode(TaskSort::Created), TaskSort::Created);
        assert_eq!(created.unwrap().id, 7);
    }

    #[test]
    fn status_and_priority_parse() {
        assert_eq!(
            TaskStatus::parse("in_progress").unwrap(),
            TaskStatus::InProgress
        );
        assert!(TaskStatus::parse("doing").is_err());
        assert_eq!(Priority::default(), Priority::Medium);
        assert!(Priority::parse("critical").is_err());
    }
}
