//! The records of an export file, one type per section, and their conversions.
//!
//! These are the documented, stable shape of the file, kept apart from the domain types (which
//! are the storage shape and may change). Export converts domain -> record; import parses
//! record -> domain with the same rules the API applies, so a hand-edited file cannot put a
//! value into the store that the API would refuse. Every record refuses unknown fields: a typo
//! in a hand-written file is an error, not silently dropped data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::attachment::Attachment;
use crate::domain::comment::{Comment, parse_comment_body};
use crate::domain::project::{Project, ProjectName, ProjectStatus, parse_project_description};
use crate::domain::task::{
    MAX_ASSIGNEES, Priority, Task, TaskStatus, TaskTitle, parse_labels, parse_task_description,
};
use crate::domain::team::{Membership, Team, TeamName, TeamRole, parse_description};
use crate::domain::user::PasswordHash;
use crate::domain::{
    AttachmentId, CommentId, Email, ProjectId, Role, TaskId, TeamId, User, UserId, UserName,
};
use crate::files::Hash;
use crate::files::names::sanitize_filename;

/// The value of the file's `format` field.
pub const FORMAT: &str = "tasker-export";
/// The version of the format this build writes and reads.
pub const VERSION: u64 = 1;

/// An account, without its password hash or anything else secret.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub name: String,
    /// `admin` or `user`.
    pub role: String,
    #[serde(default)]
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// A team with its members.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamRecord {
    pub id: TeamId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
    pub members: Vec<MemberRecord>,
}

/// One member of a team.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRecord {
    pub user_id: UserId,
    /// `owner`, `admin` or `member`.
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

/// A project of a team.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectRecord {
    pub id: ProjectId,
    pub team_id: TeamId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `active` or `archived`.
    pub status: String,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// A task. Its team is its project's (not repeated here); its comment and attachment counts
/// are recomputed from those sections.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRecord {
    pub id: TaskId,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// `todo`, `in_progress`, `blocked` or `done`.
    pub status: String,
    /// `low`, `medium`, `high` or `urgent`.
    pub priority: String,
    #[serde(default)]
    pub due_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub project_id: Option<ProjectId>,
    #[serde(default)]
    pub assignee_ids: Vec<UserId>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// A comment on a task.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentRecord {
    pub id: CommentId,
    pub task_id: TaskId,
    pub author_id: UserId,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub edited_at: Option<DateTime<Utc>>,
    pub version: u64,
}

/// An attachment's metadata; the bytes are the blob file named by `sha256`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRecord {
    pub id: AttachmentId,
    pub task_id: TaskId,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    /// 64 lowercase hex digits.
    pub sha256: String,
    pub uploaded_by: UserId,
    pub created_at: DateTime<Utc>,
}

/// `field: message`, the form every record error takes.
fn at(field: &str) -> impl Fn(String) -> String + '_ {
    move |message| format!("{field}: {message}")
}

fn version(version: u64) -> Result<u64, String> {
    if version == 0 {
        return Err("version: must be at least 1".into());
    }
    Ok(version)
}

fn timestamps(created: DateTime<Utc>, updated: DateTime<Utc>) -> Result<(), String> {
    if updated < created {
        return Err("updated_at: must not be before created_at".into());
    }
    Ok(())
}

fn team_role(raw: &str) -> Result<TeamRole, String> {
    match raw {
        "owner" => Ok(TeamRole::Owner),
        "admin" => Ok(TeamRole::Admin),
        "member" => Ok(TeamRole::Member),
        other => Err(format!(
            "unknown role {other:?}: use owner, admin or member"
        )),
    }
}

impl From<User> for UserRecord {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email.into(),
            name: user.name.into(),
            role: match user.role {
                Role::Admin => "admin",
                Role::User => "user",
            }
            .into(),
            disabled: user.disabled,
            created_at: user.created_at,
            updated_at: user.updated_at,
            version: user.version,
        }
    }
}

impl UserRecord {
    /// The account to store: it has no password ([`PasswordHash::none`]) until an operator
    /// sets one.
    pub fn parse(self) -> Result<User, String> {
        let role = match self.role.as_str() {
            "admin" => Role::Admin,
            // `member` is what `tasker user list` called the role before it said `user`
            // everywhere; a file written by hand from that listing still loads.
            "user" | "member" => Role::User,
            other => return Err(format!("role: unknown role {other:?}: use admin or user")),
        };
        timestamps(self.created_at, self.updated_at)?;
        Ok(User {
            id: self.id,
            email: Email::parse(&self.email).map_err(at("email"))?,
            name: UserName::parse(&self.name).map_err(at("name"))?,
            password_hash: PasswordHash::none(),
            role,
            disabled: self.disabled,
            // Not in the export format: an imported address is verified again by mail.
            email_verified_at: None,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: version(self.version)?,
        })
    }
}

impl TeamRecord {
    /// The record of a stored team and its members.
    pub fn new(team: Team, members: Vec<Membership>) -> Self {
        Self {
            id: team.id,
            name: team.name.as_str().to_string(),
            description: team.description,
            created_by: team.created_by,
            created_at: team.created_at,
            updated_at: team.updated_at,
            version: team.version,
            members: members
                .into_iter()
                .map(|m| MemberRecord {
                    user_id: m.user_id,
                    role: m.role.as_str().to_string(),
                    joined_at: m.joined_at,
                })
                .collect(),
        }
    }

    /// The team and its memberships: distinct users, at least one owner (a team always keeps
    /// one).
    pub fn parse(self) -> Result<(Team, Vec<Membership>), String> {
        timestamps(self.created_at, self.updated_at)?;
        let team = Team {
            id: self.id,
            name: TeamName::parse(&self.name).map_err(at("name"))?,
            description: parse_description(&self.description).map_err(at("description"))?,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: version(self.version)?,
        };
        let mut members: Vec<Membership> = Vec::with_capacity(self.members.len());
        for (i, member) in self.members.into_iter().enumerate() {
            if members.iter().any(|m| m.user_id == member.user_id) {
                return Err(format!(
                    "members[{i}]: user {} is listed twice",
                    member.user_id
                ));
            }
            members.push(Membership {
                team_id: team.id,
                user_id: member.user_id,
                role: team_role(&member.role).map_err(|e| format!("members[{i}].role: {e}"))?,
                joined_at: member.joined_at,
            });
        }
        if !members.iter().any(|m| m.role == TeamRole::Owner) {
            return Err("members: a team needs at least one owner".into());
        }
        Ok((team, members))
    }
}

impl From<Project> for ProjectRecord {
    fn from(project: Project) -> Self {
        Self {
            id: project.id,
            team_id: project.team_id,
            name: project.name.as_str().to_string(),
            description: project.description,
            status: match project.status {
                ProjectStatus::Active => "active",
                ProjectStatus::Archived => "archived",
            }
            .into(),
            created_by: project.created_by,
            created_at: project.created_at,
            updated_at: project.updated_at,
            version: project.version,
        }
    }
}

impl ProjectRecord {
    /// The project, with the rules the API applies.
    pub fn parse(self) -> Result<Project, String> {
        let status = match self.status.as_str() {
            "active" => ProjectStatus::Active,
            "archived" => ProjectStatus::Archived,
            other => {
                return Err(format!(
                    "status: unknown status {other:?}: use active or archived"
                ));
            }
        };
        timestamps(self.created_at, self.updated_at)?;
        Ok(Project {
            id: self.id,
            team_id: self.team_id,
            name: ProjectName::parse(&self.name).map_err(at("name"))?,
            description: parse_project_description(&self.description).map_err(at("description"))?,
            status,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: version(self.version)?,
        })
    }
}

fn status_name(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Todo => "todo",
        TaskStatus::InProgress => "in_progress",
        TaskStatus::Blocked => "blocked",
        TaskStatus::Done => "done",
    }
}

fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Medium => "medium",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

impl From<Task> for TaskRecord {
    fn from(task: Task) -> Self {
        Self {
            id: task.id,
            title: task.title.as_str().to_string(),
            description: task.description,
            status: status_name(task.status).into(),
            priority: priority_name(task.priority).into(),
            due_date: task.due_date,
            labels: task.labels,
            project_id: task.project_id,
            assignee_ids: task.assignee_ids,
            created_by: task.created_by,
            created_at: task.created_at,
            updated_at: task.updated_at,
            version: task.version,
        }
    }
}

impl TaskRecord {
    /// The task, with no team yet (the store sets its project's) and zero counts.
    pub fn parse(self) -> Result<Task, String> {
        timestamps(self.created_at, self.updated_at)?;
        if self.assignee_ids.len() > MAX_ASSIGNEES {
            return Err(format!("assignee_ids: at most {MAX_ASSIGNEES} assignees"));
        }
        for (i, user) in self.assignee_ids.iter().enumerate() {
            if self.assignee_ids[..i].contains(user) {
                return Err(format!("assignee_ids: user {user} is listed twice"));
            }
        }
        Ok(Task {
            id: self.id,
            title: TaskTitle::parse(&self.title).map_err(at("title"))?,
            description: parse_task_description(&self.description).map_err(at("description"))?,
            status: TaskStatus::parse(&self.status).map_err(at("status"))?,
            priority: Priority::parse(&self.priority).map_err(at("priority"))?,
            due_date: self.due_date,
            labels: parse_labels(&self.labels).map_err(at("labels"))?,
            project_id: self.project_id,
            team_id: None,
            assignee_ids: self.assignee_ids,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: version(self.version)?,
            comment_count: 0,
            attachment_count: 0,
            rank: Default::default(),
        })
    }
}

impl From<Comment> for CommentRecord {
    fn from(comment: Comment) -> Self {
        Self {
            id: comment.id,
            task_id: comment.task_id,
            author_id: comment.author_id,
            body: comment.body,
            created_at: comment.created_at,
            updated_at: comment.updated_at,
            edited_at: comment.edited_at,
            version: comment.version,
        }
    }
}

impl CommentRecord {
    /// The comment, with the rules the API applies.
    pub fn parse(self) -> Result<Comment, String> {
        timestamps(self.created_at, self.updated_at)?;
        Ok(Comment {
            id: self.id,
            task_id: self.task_id,
            author_id: self.author_id,
            body: parse_comment_body(&self.body).map_err(at("body"))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            edited_at: self.edited_at,
            version: version(self.version)?,
        })
    }
}

impl From<Attachment> for AttachmentRecord {
    fn from(attachment: Attachment) -> Self {
        Self {
            sha256: attachment.sha256_hex(),
            id: attachment.id,
            task_id: attachment.task_id,
            filename: attachment.filename,
            content_type: attachment.content_type,
            size: attachment.size,
            uploaded_by: attachment.uploaded_by,
            created_at: attachment.created_at,
        }
    }
}

impl AttachmentRecord {
    /// The attachment; its name must already be what the upload path would have stored.
    pub fn parse(self) -> Result<Attachment, String> {
        if sanitize_filename(Some(&self.filename)) != self.filename {
            return Err(
                "filename: not a safe file name (path parts, control characters or over 255 bytes)"
                    .into(),
            );
        }
        let valid_type = !self.content_type.is_empty()
            && self.content_type.len() <= 255
            && self
                .content_type
                .chars()
                .all(|c| c.is_ascii_graphic() || c == ' ');
        if !valid_type {
            return Err("content_type: must be a media type like text/plain".into());
        }
        let hash = Hash::from_hex(&self.sha256)
            .ok_or_else(|| "sha256: must be 64 hex digits".to_string())?;
        Ok(Attachment {
            id: self.id,
            task_id: self.task_id,
            uploaded_by: self.uploaded_by,
            filename: self.filename,
            content_type: self.content_type,
            size: self.size,
            sha256: hash.0,
            created_at: self.created_at,
        })
    }
}
