//! Teams, their members' roles, and invitations.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{InvitationId, TeamId};
use super::name::{Name, Named};
use super::{Email, UserId};

/// Team name bounds, in characters.
pub const TEAM_NAME_MAX_CHARS: usize = 100;
/// Longest team description, in characters.
pub const TEAM_DESCRIPTION_MAX_CHARS: usize = 2000;

/// A team's name: trimmed, 1 to 100 characters, no control characters.
pub type TeamName = Name<Team>;

impl Named for Team {
    const NAME_MAX_CHARS: usize = TEAM_NAME_MAX_CHARS;
}

/// A free-text description, up to 2,000 characters (line breaks allowed).
pub fn parse_description(raw: &str) -> Result<String, String> {
    if raw.chars().count() > TEAM_DESCRIPTION_MAX_CHARS {
        return Err(format!(
            "must be at most {TEAM_DESCRIPTION_MAX_CHARS} characters"
        ));
    }
    if raw
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err("must not contain control characters other than line breaks and tabs".into());
    }
    Ok(raw.trim().to_string())
}

/// A member's role in a team: `owner` > `admin` > `member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    Member,
    Admin,
    Owner,
}

impl TeamRole {
    /// Owners and admins manage the team: its settings, members and invitations.
    pub fn can_manage(self) -> bool {
        self >= TeamRole::Admin
    }

    /// Whether someone with this role may give `role` to somebody (never above their own).
    pub fn can_grant(self, role: TeamRole) -> bool {
        self.can_manage() && role <= self
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Member => "member",
            TeamRole::Admin => "admin",
            TeamRole::Owner => "owner",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub name: TeamName,
    pub description: String,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// One user's membership of one team.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Membership {
    pub team_id: TeamId,
    pub user_id: UserId,
    pub role: TeamRole,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Declined,
    Revoked,
}

/// An invitation to join a team, addressed to an email (which may not have an account yet).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invitation {
    pub id: InvitationId,
    pub team_id: TeamId,
    pub email: Email,
    pub role: TeamRole,
    pub invited_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: InvitationStatus,
}

impl Invitation {
    /// Still waiting for an answer, and not expired.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.status == InvitationStatus::Pending && self.expires_at > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_grant_no_higher() {
        assert!(TeamRole::Owner > TeamRole::Admin && TeamRole::Admin > TeamRole::Member);
        assert!(TeamRole::Owner.can_grant(TeamRole::Owner));
        assert!(TeamRole::Admin.can_grant(TeamRole::Admin));
        assert!(!TeamRole::Admin.can_grant(TeamRole::Owner));
        assert!(!TeamRole::Member.can_grant(TeamRole::Member));
    }

    #[test]
    fn team_names_and_descriptions() {
        assert_eq!(TeamName::parse(" Platform ").unwrap().as_str(), "Platform");
        assert!(TeamName::parse("").is_err());
        assert!(TeamName::parse(&"x".repeat(101)).is_err());
        assert!(TeamName::parse("tab\there").is_err());
        assert_eq!(
            parse_description("line one\nline two").unwrap(),
            "line one\nline two"
        );
        assert!(parse_description("bell\u{7}").is_err());
        assert!(parse_description(&"x".repeat(2001)).is_err());
    }
}
