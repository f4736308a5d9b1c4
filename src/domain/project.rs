//! Projects: a team's containers for tasks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::UserId;
use super::ids::{ProjectId, TeamId};
use super::name::{Name, Named};

/// Project name bounds, in characters.
pub const PROJECT_NAME_MAX_CHARS: usize = 200;
/// Longest project description, in characters.
pub const PROJECT_DESCRIPTION_MAX_CHARS: usize = 10_000;

/// A project's name: trimmed, 1 to 200 characters, no control characters.
pub type ProjectName = Name<Project>;

impl Named for Project {
    const NAME_MAX_CHARS: usize = PROJECT_NAME_MAX_CHARS;
}

/// A description up to 10,000 characters (line breaks and tabs allowed).
pub fn parse_project_description(raw: &str) -> Result<String, String> {
    if raw.chars().count() > PROJECT_DESCRIPTION_MAX_CHARS {
        return Err(format!(
            "must be at most {PROJECT_DESCRIPTION_MAX_CHARS} characters"
        ));
    }
    if raw
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err("must not contain control characters other than line breaks and tabs".into());
    }
    Ok(raw.trim().to_string())
}

/// `archived` projects are read-only: nothing in them changes until they are reactivated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    Active,
    Archived,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub team_id: TeamId,
    pub name: ProjectName,
    pub description: String,
    pub status: ProjectStatus,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        assert_eq!(ProjectName::parse("  Launch ").unwrap().as_str(), "Launch");
        assert!(ProjectName::parse("").is_err());
        assert!(ProjectName::parse(&"x".repeat(201)).is_err());
        assert!(ProjectName::parse(&"x".repeat(200)).is_ok());
        assert!(parse_project_description(&"x".repeat(10_001)).is_err());
    }
}
