//! Notifications: a user's inbox, derived from the change log in the same transaction as the
//! change. Never for your own actions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{TaskId, TeamId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// You were assigned to a task.
    TaskAssigned,
    /// You were taken off a task.
    TaskUnassigned,
    /// The status, title, due date or priority of a task you created or are assigned to changed.
    TaskUpdated,
    /// A task you created or were assigned to was deleted.
    TaskDeleted,
    /// Someone commented on a task you created or are assigned to.
    CommentAdded,
    /// Someone attached a file to a task you created or are assigned to.
    AttachmentAdded,
    /// You were invited to a team.
    TeamInvited,
    /// Someone accepted your invitation.
    InvitationAccepted,
    /// You were removed from a team.
    MemberRemoved,
    /// A webhook you created was disabled (its retries ran out, or it fell too far behind).
    WebhookDisabled,
}

/// One entry of a user's inbox. Its `seq` is the change-log entry that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub seq: u64,
    pub user_id: UserId,
    pub kind: NotificationKind,
    /// Who did it.
    pub actor_id: UserId,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    pub task_id: Option<TaskId>,
    pub team_id: Option<TeamId>,
    /// The comment, attachment or invitation concerned, if any.
    pub entity_id: Option<Uuid>,
    /// What it is about, as the recipient would name it: the task's title or the team's name.
    pub subject: String,
    /// For `task_updated`: which of status, title, due_date, priority changed.
    pub fields: Vec<String>,
}
