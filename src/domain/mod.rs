//! Plain types and rules. No I/O, no HTTP, no storage: everything here can be unit tested.
//!
//! Values that have rules are parsed once at the edge (`Email::parse`, `UserName::parse`,
//! `Password::parse`); inner code only ever holds valid ones.

/// Who may see and do what: the one rule, for every entity and every change-log entry.
pub mod access;
/// Attachments: metadata of files uploaded to tasks.
pub mod attachment;
/// Calendar feeds: secret tokens and the iCalendar they serve.
pub mod calendar;
/// Change-log entries: what changed, by whom, field by field.
pub mod change;
/// Comments on tasks.
pub mod comment;
/// Typed UUIDv7 ids, so a session id can never be passed where a user id is expected.
pub mod ids;
/// One-line names (accounts, teams, projects): one type, one rule.
pub mod name;
/// A user's inbox entries.
pub mod notification;
/// Opaque pagination cursors and page sizes.
pub mod page;
/// Projects.
pub mod project;
/// Board order: fractional-index ranks of tasks within a column.
pub mod rank;
/// Reminders, the daily digest and a user's notification preferences (time zone, delivery).
pub mod reminder;
/// Personal access tokens: scopes per area, team limits, the token format.
pub mod scope;
/// Sessions: the server-side record behind every access and refresh token.
pub mod session;
/// Tasks.
pub mod task;
/// Teams, member roles and invitations.
pub mod team;
/// Accounts: email, name, password rules, roles.
pub mod user;
/// Webhooks: event filters, secrets, Standard Webhooks signatures, the retry schedule.
pub mod webhooks;

pub use ids::{
    AccessTokenId, AttachmentId, CommentId, InvitationId, ProjectId, SessionId, TaskId, TeamId,
    UserId, WebhookId,
};
pub use page::{Cursor, PageLimit};
pub use session::Session;
pub use user::{Email, Password, Role, User, UserName};

/// One invalid field of a request, as shown to clients in `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Collects the field errors of one request, so a client learns about all of them at once.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// Parses a value with `parse`, recording its error under `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.errors.push(FieldError::new(field, message));
                None
            }
        }
    }

    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// `Ok(())` when nothing failed, otherwise every recorded error.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

/// True for characters that must never appear in a single-line text field: controls,
/// bidirectional controls ([`is_bidi_control`]), invisible characters (zero-width space,
/// joiners, word joiner, byte-order mark) and line and paragraph separators.
pub(crate) fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || is_bidi_control(c)
        || matches!(
            c,
            '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}'
        )
}

/// True for the bidirectional formatting characters, which change how the text around them is
/// displayed (a name that shows as `txt.exe` but is `exe.txt`, "Trojan Source"): embeddings
/// and overrides (U+202A-U+202E), isolates (U+2066-U+2069) and the direction marks (U+200E,
/// U+200F, U+061C). A name in a right-to-left script needs none of them.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Why a one-line text (a name, a title) may not be kept, naming bidirectional controls apart
/// from other forbidden characters so the message says what to remove.
pub(crate) fn single_line_problem(text: &str) -> Option<&'static str> {
    if text.chars().any(is_bidi_control) {
        Some("must not contain bidirectional control characters")
    } else if text.chars().any(is_forbidden_char) {
        Some("must not contain control characters")
    } else {
        None
    }
}
