//! Every redb table of tasker, in one place.
//!
//! Names carry a version suffix (`users-1`): a change to a table's key or value layout gets a
//! new name and a migration in `migrations.rs` that copies the rows, so an old file never
//! meets code that misreads it. Values are JSON (see `codec.rs`): self-describing, so adding
//! an optional field needs no migration.
//!
//! Secondary indexes are written in the same write transaction as the row they point at.

use redb::TableDefinition;

/// `key -> value` of small store-wide facts. Key `schema_version`: the last migration applied.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta-1");

/// `user id (u128) -> JSON domain::User`.
pub const USERS: TableDefinition<u128, &[u8]> = TableDefinition::new("users-1");

/// `normalized email -> user id`. Unique: enforces one account per email.
pub const USERS_BY_EMAIL: TableDefinition<&str, u128> = TableDefinition::new("users_by_email-1");

/// `session id (u128) -> JSON domain::Session`.
pub const SESSIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("sessions-1");

/// `(user id, session id) -> ()`: a user's sessions, oldest first (UUIDv7 order).
pub const SESSIONS_BY_USER: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("sessions_by_user-1");

/// `(expires_at as Unix seconds, session id) -> ()`: sessions by expiry, so the sweeper
/// removes expired sessions with a bounded range read instead of a table scan.
pub const SESSIONS_BY_EXPIRY: TableDefinition<(i64, u128), ()> =
    TableDefinition::new("sessions_by_expiry-1");

/// `refresh token SHA-256 (hex) -> session id`, for the current and the remembered
/// superseded hashes of every session (reuse detection needs the old ones).
pub const REFRESH_TOKENS: TableDefinition<&str, u128> = TableDefinition::new("refresh_tokens-1");
