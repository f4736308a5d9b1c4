//! Ids are UUIDv7: unique without coordination, and ordered by creation time, so a range
//! over an id-keyed redb table is also a range over time (which is what pagination uses).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// The redb key form: the UUID's 128 bits, which sort like the UUID.
            pub fn as_u128(&self) -> u128 {
                self.0.as_u128()
            }

            pub fn from_u128(value: u128) -> Self {
                Self(Uuid::from_u128(value))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// Identifies an account.
    UserId
);
id_type!(
    /// Identifies a login session (the `sid` claim of an access token).
    SessionId
);
id_type!(
    /// Identifies a team.
    TeamId
);
id_type!(
    /// Identifies an invitation to a team.
    InvitationId
);
id_type!(
    /// Identifies a project.
    ProjectId
);
id_type!(
    /// Identifies a task.
    TaskId
);
id_type!(
    /// Identifies a comment.
    CommentId
);
id_type!(
    /// Identifies an attachment (one upload of a file to a task).
    AttachmentId
);
id_type!(
    /// Identifies a personal access token.
    AccessTokenId
);
id_type!(
    /// Identifies a team's webhook.
    WebhookId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_time() {
        let first = UserId::new();
        let second = UserId::new();
        assert!(first.as_u128() < second.as_u128());
        assert_eq!(UserId::from_u128(first.as_u128()), first);
    }

    #[test]
    fn ids_round_trip_through_text() {
        let id = SessionId::new();
        assert_eq!(id.to_string().parse::<SessionId>().unwrap(), id);
        assert!("not-a-uuid".parse::<SessionId>().is_err());
    }
}
