//! Personal access tokens and what they may do: scopes per area (`tasks:read`,
//! `tasks:write`, ...) plus `admin`, held as a bitset so a check is one AND.
//!
//! A token is `tkr_pat_` and 256 random bits as 64 lower-case hex digits; only its SHA-256 is
//! stored, and a presented token is found by that hash. `write` implies `read` in its area.
//! A token may be limited to some teams: it then reaches nothing outside them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::name::{Name, Named};
use super::{AccessTokenId, TeamId, UserId};

/// The prefix of a personal access token, so secret scanners and people recognise it.
pub const TOKEN_PREFIX: &str = "tkr_pat_";

/// The most tokens one account may hold (expired ones count until they are revoked or swept).
pub const MAX_TOKENS_PER_USER: usize = 100;

/// The most teams one token may be limited to.
pub const MAX_TOKEN_TEAMS: usize = 50;

/// What a token's name names (for [`Name`]).
#[derive(Debug, Clone, Copy)]
pub struct TokenLabel;

impl Named for TokenLabel {
    const NAME_MAX_CHARS: usize = 100;
}

/// A token's name, as its owner gave it ("CI deploy", "Home Assistant").
pub type TokenName = Name<TokenLabel>;

/// What part of the API a scope opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    Tasks,
    Comments,
    Attachments,
    Projects,
    Teams,
    Notifications,
}

impl Area {
    pub const ALL: [Area; 6] = [
        Area::Tasks,
        Area::Comments,
        Area::Attachments,
        Area::Projects,
        Area::Teams,
        Area::Notifications,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Area::Tasks => "tasks",
            Area::Comments => "comments",
            Area::Attachments => "attachments",
            Area::Projects => "projects",
            Area::Teams => "teams",
            Area::Notifications => "notifications",
        }
    }

    fn index(self) -> u32 {
        Area::ALL.iter().position(|a| *a == self).unwrap_or(0) as u32
    }
}

/// Reading or writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// A set of scopes: two bits per area (read, write) and one for `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Scopes(u16);

const ADMIN_BIT: u16 = 1 << 12;

fn bit(area: Area, access: Access) -> u16 {
    1 << (area.index() * 2 + matches!(access, Access::Write) as u32)
}

impl Scopes {
    /// Every scope (what a session may do, `admin` aside).
    pub fn all_areas(access: Access) -> Self {
        let mut s = Scopes::default();
        for area in Area::ALL {
            s.grant(area, access);
        }
        s
    }

    /// Adds `access` to `area` (`write` adds `read` too).
    pub fn grant(&mut self, area: Area, access: Access) {
        self.0 |= bit(area, Access::Read);
        if access == Access::Write {
            self.0 |= bit(area, Access::Write);
        }
    }

    pub fn grant_admin(&mut self) {
        self.0 |= ADMIN_BIT;
    }

    pub fn allows(self, area: Area, access: Access) -> bool {
        self.0 & bit(area, access) != 0
    }

    pub fn admin(self) -> bool {
        self.0 & ADMIN_BIT != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses scope names (`tasks:read`, `comments:write`, `admin`); unknown ones are an
    /// error naming them.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut scopes = Scopes::default();
        let mut unknown = Vec::new();
        for name in names {
            let name = name.as_ref();
            if name == "admin" {
                scopes.grant_admin();
                continue;
            }
            let parsed = name.split_once(':').and_then(|(area, access)| {
                let area = Area::ALL.into_iter().find(|a| a.name() == area)?;
                let access = match access {
                    "read" => Access::Read,
                    "write" => Access::Write,
                    _ => return None,
                };
                Some((area, access))
            });
            match parsed {
                Some((area, access)) => scopes.grant(area, access),
                None => unknown.push(name.to_string()),
            }
        }
        if !unknown.is_empty() {
            return Err(format!(
                "unknown scope {}: use <area>:read or <area>:write for areas {} , or admin",
                unknown.join(", "),
                Area::ALL.map(Area::name).join(", ")
            ));
        }
        if scopes.is_empty() {
            return Err("must name at least one scope".into());
        }
        Ok(scopes)
    }

    /// The names of the scopes held, in a fixed order (`write` stands for both).
    pub fn names(self) -> Vec<String> {
        let mut names = Vec::new();
        for area in Area::ALL {
            if self.allows(area, Access::Write) {
                names.push(format!("{}:write", area.name()));
            } else if self.allows(area, Access::Read) {
                names.push(format!("{}:read", area.name()));
            }
        }
        if self.admin() {
            names.push("admin".into());
        }
        names
    }

    /// Every scope name a token may carry.
    pub fn every_name() -> Vec<String> {
        let mut names: Vec<String> = Area::ALL
            .into_iter()
            .flat_map(|a| [format!("{}:read", a.name()), format!("{}:write", a.name())])
            .collect();
        names.push("admin".into());
        names
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        if names.is_empty() {
            return Ok(Scopes::default());
        }
        Scopes::parse(&names).map_err(serde::de::Error::custom)
    }
}

/// The stored record of a personal access token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub id: AccessTokenId,
    pub user_id: UserId,
    pub name: TokenName,
    pub scopes: Scopes,
    /// `None`: every team the user is in; otherwise only these.
    #[serde(default)]
    pub team_ids: Option<Vec<TeamId>>,
    /// SHA-256 (hex) of the whole token.
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl AccessToken {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

/// A new token from 32 random bytes: the token to show once, and its hash to store.
pub fn issue_token(secret: [u8; 32]) -> (String, String) {
    let token = format!("{TOKEN_PREFIX}{}", hex(&secret));
    let hash = hash_token(&token);
    (token, hash)
}

/// Whether a bearer value is meant as a personal access token (it then takes their path,
/// never the JWT one).
pub fn is_access_token(bearer: &str) -> bool {
    bearer.starts_with(TOKEN_PREFIX)
}

/// The hash to look a presented token up by; `None` when it cannot be one.
pub fn presented_hash(raw: &str) -> Option<String> {
    let secret = raw.strip_prefix(TOKEN_PREFIX)?;
    let well_formed = secret.len() == 64
        && secret
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    well_formed.then(|| hash_token(raw))
}

fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_implies_read_and_areas_are_separate() {
        let s = Scopes::parse(&["tasks:write", "comments:read"]).unwrap();
        assert!(s.allows(Area::Tasks, Access::Read));
        assert!(s.allows(Area::Tasks, Access::Write));
        assert!(s.allows(Area::Comments, Access::Read));
        assert!(!s.allows(Area::Comments, Access::Write));
        assert!(!s.allows(Area::Projects, Access::Read));
        assert!(!s.admin());
        assert_eq!(s.names(), vec!["tasks:write", "comments:read"]);
    }

    #[test]
    fn unknown_and_empty_scopes_are_refused() {
        assert!(
            Scopes::parse(&["tasks:delete"])
                .unwrap_err()
                .contains("tasks:delete")
        );
        assert!(Scopes::parse(&["everything"]).is_err());
        assert!(Scopes::parse::<&str>(&[]).is_err());
        assert!(Scopes::parse(&["admin"]).unwrap().admin());
    }

    #[test]
    fn scopes_round_trip_through_json() {
        let s = Scopes::parse(&["notifications:read", "admin", "teams:write"]).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Scopes>(&json).unwrap(), s);
    }

    #[test]
    fn tokens_hash_and_parse() {
        let (token, hash) = issue_token([7; 32]);
        assert!(is_access_token(&token));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(presented_hash(&token), Some(hash));
        assert_eq!(presented_hash("tkr_pat_short"), None);
        assert_eq!(presented_hash(&token.to_uppercase()), None);
    }
}
