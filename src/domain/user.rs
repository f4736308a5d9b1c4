//! Accounts and the rules on their fields.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::name::{Name, Named};
use super::{UserId, is_forbidden_char};

/// The longest email address accepted (RFC 5321 path limit).
pub const EMAIL_MAX_CHARS: usize = 254;
/// Name length bounds, in characters.
pub const NAME_MAX_CHARS: usize = 100;
/// Password bounds: at least 8 characters, at most 72 bytes (bcrypt ignores anything past
/// 72 bytes, so a longer password is refused rather than silently truncated).
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_BYTES: usize = 72;

/// A syntactically valid email address, trimmed and lower-cased so that lookups and the
/// uniqueness rule ignore case.
///
/// Deserialization (from the store only) does not re-run the rules: a row was valid when it
/// was written, and tightening a rule later must not make existing accounts unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        // The limit applies to the input as sent, so it matches what the API documents.
        if raw.chars().count() > EMAIL_MAX_CHARS {
            return Err(format!("must be at most {EMAIL_MAX_CHARS} characters"));
        }
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("must not be empty".into());
        }
        let invalid = || "must be an email address like name@example.com".to_string();
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let bad_char =
            |c: char| c.is_whitespace() || is_forbidden_char(c) || "<>()[]\\,;:\"@".contains(c);
        if local.is_empty() || local.chars().count() > 64 || local.chars().any(bad_char) {
            return Err(invalid());
        }
        if domain.is_empty() || domain.split('.').any(str::is_empty) || domain.chars().any(bad_char)
        {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters.
pub type UserName = Name<User>;

impl Named for User {
    const NAME_MAX_CHARS: usize = NAME_MAX_CHARS;
}

/// A new password that meets the rules. It is never stored, logged or serialized: only its
/// bcrypt hash is. `Debug` is redacted.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() < PASSWORD_MIN_CHARS {
            return Err(format!("must be at least {PASSWORD_MIN_CHARS} characters"));
        }
        if raw.len() > PASSWORD_MAX_BYTES {
            return Err(format!(
                "must be at most {PASSWORD_MAX_BYTES} bytes in UTF-8 (bcrypt's limit)"
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its bcrypt hash at `cost`, with a fresh random salt. CPU-bound (about 250 ms at cost
    /// 12) but no I/O: the server runs it on the blocking pool behind a concurrency bound
    /// (`service::passwords`), the offline admin commands (`ops::users`) call it directly.
    pub fn hash(&self, cost: u32) -> Result<PasswordHash, bcrypt::BcryptError> {
        bcrypt::hash(&self.0, cost).map(PasswordHash)
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A bcrypt hash (it carries its own salt and cost). `Debug` is redacted so it cannot reach
/// a log by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

/// What an account without a password stores instead of a hash. `!` never starts a bcrypt
/// hash (as in `/etc/shadow`), so nothing verifies against it.
const NO_PASSWORD: &str = "!no-password";

impl PasswordHash {
    pub fn new(hash: String) -> Self {
        Self(hash)
    }

    /// The "hash" of an account that has no password yet (an imported one): no password
    /// verifies against it, and login answers as for a wrong password until an operator
    /// sets one (`tasker user reset-password`).
    pub fn none() -> Self {
        Self(NO_PASSWORD.to_string())
    }

    /// False for [`PasswordHash::none`].
    pub fn is_set(&self) -> bool {
        self.0 != NO_PASSWORD
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The bcrypt cost recorded in the hash (`$2b$12$...` -> 12).
    pub fn cost(&self) -> Option<u32> {
        self.0.split('$').nth(2).and_then(|cost| cost.parse().ok())
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// Server-wide role. The first account on a server is its admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    /// The role of a newly registered account.
    pub fn for_new_account(is_first_account: bool) -> Self {
        if is_first_account {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// An account as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: UserName,
    pub password_hash: PasswordHash,
    pub role: Role,
    /// A disabled account cannot log in and its sessions stop working.
    #[serde(default)]
    pub disabled: bool,
    /// When the owner proved they receive mail at `email` (the link of a verification
    /// message); `None` until then and again after each address change.
    #[serde(default)]
    pub email_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented on every change; the basis of `ETag` and `If-Match`.
    pub version: u64,
}

impl User {
    /// A new, enabled account created `now`, at version 1.
    pub fn new(
        email: Email,
        name: UserName,
        password_hash: PasswordHash,
        role: Role,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: UserId::new(),
            email,
            name,
            password_hash,
            role,
            disabled: false,
            email_verified_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalized() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn email_rejects_bad_shapes() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a b@example.com",
            "alice@example..com",
            "a@b@c.com",
            "alice@exa mple.com",
            "al\u{7}ice@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn email_length_limit() {
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(185));
        assert_eq!(long.len(), 254);
        assert!(Email::parse(&long).is_ok());
        let too_long = format!("{}@{}.com", "a".repeat(64), "b".repeat(186));
        assert!(Email::parse(&too_long).is_err());
    }

    #[test]
    fn name_rules() {
        assert_eq!(
            UserName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"x".repeat(100)).is_ok());
        assert!(UserName::parse(&"x".repeat(101)).is_err());
        assert!(
            UserName::parse(&format!(" {} ", "x".repeat(99))).is_err(),
            "counted as sent"
        );
        assert!(
            UserName::parse(&"é".repeat(100)).is_ok(),
            "limit counts characters, not bytes"
        );
        assert!(UserName::parse("line\nbreak").is_err());
    }

    #[test]
    fn password_rules_count_bytes_at_the_top() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"a".repeat(72)).is_ok());
        assert!(Password::parse(&"a".repeat(73)).is_err(), "never truncated");
        // 25 three-byte characters = 75 bytes: too long although only 25 characters.
        assert!(Password::parse(&"€".repeat(25)).is_err());
        // Four 4-byte characters are 16 bytes but only 4 characters: too short.
        assert!(Password::parse(&"😀".repeat(4)).is_err());
    }

    #[test]
    fn password_debug_is_redacted() {
        let password = Password::parse("correct horse").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }

    #[test]
    fn hash_cost_and_redaction() {
        let hash = PasswordHash::new("$2b$12$abcdefghijklmnopqrstuv".into());
        assert_eq!(hash.cost(), Some(12));
        assert!(!format!("{hash:?}").contains("abcdef"));
        assert_eq!(PasswordHash::new("garbage".into()).cost(), None);
        assert!(hash.is_set());
        assert!(!PasswordHash::none().is_set());
        assert_eq!(PasswordHash::none().cost(), None);
    }

    #[test]
    fn first_account_is_admin() {
        assert_eq!(Role::for_new_account(true), Role::Admin);
        assert_eq!(Role::for_new_account(false), Role::User);
    }
}
