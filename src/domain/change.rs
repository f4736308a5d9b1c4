//! The change log: one entry per committed mutation, with a global, gap-free `seq`.
//!
//! Entries are written in the same transaction as the change they describe. They are the one
//! source for entity history (activity), and later for search indexing, notifications and the
//! WebSocket feed, which is why each entry names the team whose members may see it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{ProjectId, TaskId, TeamId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Team,
    Membership,
    Invitation,
    Project,
    Task,
    Comment,
    Attachment,
    /// A team's webhook (only its disabling by tasker is logged: it notifies its creator).
    Webhook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    Created,
    Updated,
    Deleted,
}

/// One field's value before and after (null when it did not exist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

impl FieldChange {
    /// A change of `field`, or `None` when the value did not change.
    pub fn of<T: Serialize + PartialEq>(field: &str, before: &T, after: &T) -> Option<Self> {
        (before != after).then(|| Self {
            field: field.to_string(),
            before: serde_json::to_value(before).unwrap_or(Value::Null),
            after: serde_json::to_value(after).unwrap_or(Value::Null),
        })
    }

    /// A field that went with its entity.
    pub fn removed<T: Serialize>(field: &str, value: &T) -> Self {
        Self {
            field: field.to_string(),
            before: serde_json::to_value(value).unwrap_or(Value::Null),
            after: Value::Null,
        }
    }

    /// A field set on creation.
    pub fn set<T: Serialize>(field: &str, value: &T) -> Self {
        Self {
            field: field.to_string(),
            before: Value::Null,
            after: serde_json::to_value(value).unwrap_or(Value::Null),
        }
    }
}

/// A change before the store has given it its `seq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewChange {
    pub at: DateTime<Utc>,
    pub actor: UserId,
    pub entity: EntityKind,
    pub entity_id: Uuid,
    /// The team whose members may see this change.
    pub team_id: Option<TeamId>,
    /// The project it belongs to (a project, or a task, comment or attachment in one): what
    /// the real-time feed's `?projects=` filter matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    /// Who may see a change outside any team (a personal task and its comments and files):
    /// the task's creator and assignees, before and after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<UserId>,
    /// Where a task was before this change moved it (to another project or team): its old
    /// team and project see it leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_team_id: Option<TeamId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_project_id: Option<ProjectId>,
    /// The task a comment or attachment belongs to (what search re-indexes when a comment
    /// changes). Entries written before it existed lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    pub action: ChangeAction,
    pub fields: Vec<FieldChange>,
}

/// A committed change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub seq: u64,
    #[serde(flatten)]
    pub change: NewChange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_fields_are_not_recorded() {
        assert!(FieldChange::of("name", &"a", &"a").is_none());
        let change = FieldChange::of("name", &"a", &"b").unwrap();
        assert_eq!(
            (change.before, change.after),
            (Value::from("a"), Value::from("b"))
        );
    }
}
