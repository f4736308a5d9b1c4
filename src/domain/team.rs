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
/// The email says who it is for and who hears of it; what lets someone see and answer it is
/// its accept secret (see `domain::access::may_answer_invitation`).
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
    /// The SHA-256 (hex) of its accept token; the token itself is shown once, to the inviter.
    /// `None` in invitations made before accept tokens: nobody can accept those (schema
    /// version 9 revoked the pending ones; the inviter invites again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    /// The account that first presented the token (opened the accept link, or registered or
    /// answered with it): from then on the only one who sees and answers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<UserId>,
}

impl Invitation {
    /// Still waiting for an answer, and not expired.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.status == InvitationStatus::Pending && self.expires_at > now
    }

    /// Whether `token` is this invitation's accept token (never for one made without a token).
    pub fn opens_with(&self, token: &InvitationToken) -> bool {
        token.id == self.id && self.secret_hash.as_deref() == Some(token.hash.as_str())
    }
}

/// The prefix of an invitation's accept token: `tki_<invitation id, 32 hex>_<secret, 64 hex>`.
const TOKEN_PREFIX: &str = "tki_";

/// An accept token as presented: the invitation it names, and the SHA-256 of the whole token
/// (what the invitation stores). The id only selects the row; the 256-bit secret is what is
/// checked, through its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationToken {
    pub id: InvitationId,
    pub hash: String,
}

impl InvitationToken {
    /// A new token for invitation `id` from 32 random bytes: the token to hand out once, and
    /// its hash to store.
    pub fn issue(id: InvitationId, secret: [u8; 32]) -> (String, String) {
        let token = format!("{TOKEN_PREFIX}{}_{}", id.as_uuid().simple(), hex(&secret));
        let hash = hash_token(&token);
        (token, hash)
    }

    /// Reads a presented token; `None` when it cannot be one (it then opens nothing).
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.trim().strip_prefix(TOKEN_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let well_formed = id.len() == 32
            && secret.len() == 64
            && secret
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !well_formed {
            return None;
        }
        let id = uuid::Uuid::try_parse(id).ok()?;
        Some(Self {
            id: InvitationId::from_uuid(id),
            hash: hash_token(raw.trim()),
        })
    }
}

fn hash_token(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    fn accept_tokens_name_their_invitation_and_store_only_a_hash() {
        let id = InvitationId::new();
        let (token, hash) = InvitationToken::issue(id, [7; 32]);
        assert!(token.starts_with("tki_") && token.len() == 4 + 32 + 1 + 64);
        assert!(!hash.contains(&"07".repeat(32)));
        let parsed = InvitationToken::parse(&token).unwrap();
        assert_eq!(parsed, InvitationToken { id, hash });
        let mut invitation = Invitation {
            id,
            team_id: TeamId::new(),
            email: Email::parse("a@example.com").unwrap(),
            role: TeamRole::Member,
            invited_by: UserId::new(),
            created_at: Utc::now(),
            expires_at: Utc::now(),
            status: InvitationStatus::Pending,
            secret_hash: Some(parsed.hash.clone()),
            claimed_by: None,
        };
        assert!(invitation.opens_with(&parsed));
        let other = InvitationToken::issue(id, [8; 32]).0;
        assert!(!invitation.opens_with(&InvitationToken::parse(&other).unwrap()));
        invitation.secret_hash = None;
        assert!(
            !invitation.opens_with(&parsed),
            "a token-less invitation opens to nobody"
        );
        for bad in [
            "",
            "tki_",
            &token[..token.len() - 1],
            &token.to_uppercase(),
            "tkr_x",
        ] {
            assert!(InvitationToken::parse(bad).is_none(), "{bad}");
        }
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
