//! Attachments: one upload of a file to a task. The bytes live once per content hash in the
//! blob store; this is the metadata that points at them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AttachmentId, TaskId, UserId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    pub task_id: TaskId,
    pub uploaded_by: UserId,
    /// Sanitized: no path parts, no control characters, at most 255 bytes.
    pub filename: String,
    /// Judged from the bytes, never from the client's claim.
    pub content_type: String,
    pub size: u64,
    /// SHA-256 of the content: the blob's address.
    pub sha256: [u8; 32],
    pub created_at: DateTime<Utc>,
}

impl Attachment {
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}
