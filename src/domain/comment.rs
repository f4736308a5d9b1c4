//! Comments: plain text (Markdown is the client's business), edited only by their author.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CommentId, TaskId, UserId};

/// The longest comment, in characters.
pub const BODY_MAX_CHARS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub id: CommentId,
    pub task_id: TaskId,
    pub author_id: UserId,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the author last changed the body; `None` for a comment never edited.
    pub edited_at: Option<DateTime<Utc>>,
    pub version: u64,
}

/// A comment body: 1 to 10,000 characters, not only whitespace, no control characters other
/// than line breaks and tabs.
pub fn parse_comment_body(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if raw.chars().count() > BODY_MAX_CHARS {
        return Err(format!("must be at most {BODY_MAX_CHARS} characters"));
    }
    if raw
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err("must not contain control characters other than line breaks and tabs".into());
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked() {
        assert!(parse_comment_body("Looks good\n- ship it").is_ok());
        assert!(parse_comment_body(" \n\t").is_err());
        assert!(parse_comment_body(&"é".repeat(BODY_MAX_CHARS)).is_ok());
        assert!(parse_comment_body(&"x".repeat(BODY_MAX_CHARS + 1)).is_err());
        assert!(parse_comment_body("bell\u{7}").is_err());
    }
}
