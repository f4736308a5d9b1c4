//! The redb store: the source of truth.
//!
//! Each public method is one transaction. They are synchronous and must never run on the
//! async executor: the service calls them through [`Store::run`], which moves the work to
//! tokio's blocking pool. A write is on disk before the caller acknowledges it: each commit is
//! durable (tools), or group-committed and awaited in [`Store::run`] (the server).
//!
//! Every write is [`Store::write`] with a [`Tx`] (see `tx.rs`). Rows live one file per entity
//! (users, sessions, teams, members, invitations, projects, tasks, comments, attachments,
//! notifications, changes, blobs); each adds its operations to `Tx` and reads only its own
//! tables, so cascades are calls on the `tx` and no row file imports another.

/// Personal access tokens: rows, the hash index, each user's tokens.
mod access_tokens;
/// Attachments: rows, the per-task index, upload totals.
mod attachments;
/// Blob reference counts (the files live under `DATA_DIR/blobs/`).
mod blobs;
/// Calendar feeds: one per user, found by the hash of their token.
mod calendar;
/// Appending to and reading the change log.
mod changes;
/// Consistency checks of rows and indexes (`tasker check`).
pub mod check;
/// Row values as JSON, and reading rows and composite keys.
mod codec;
/// Comments and the per-task index.
mod comments;
/// Giving the database file's free space back.
mod compact;
/// Group commit: one fsync for many concurrent writes.
mod durability;
/// Idempotency keys for creates.
mod idempotency;
/// Invitations to teams and their two indexes.
mod invitations;
/// Team memberships, both ways (a team's members, a user's teams), and role checks.
mod members;
/// Ordered schema migrations and the schema version check.
pub mod migrations;
/// The notification inbox, written by the writes that cause its entries.
mod notifications;
/// The outbox: messages queued by the writes that cause them, sent by one worker.
mod outbox;
/// Bulk import and one-snapshot export (`tasker import`, `tasker export`).
pub mod portable;
/// Projects and the per-team index.
mod projects;
/// In-memory task rows and roles for the hottest read.
mod read_cache;
/// The reminder schedule (by time), digests waiting, notification preferences.
mod reminders;
/// Reads that feed the search index.
mod search_rows;
/// Sessions and refresh-token rotation.
mod sessions;
/// A consistent copy of every table (backups) and the list of every table.
pub mod snapshot;
/// Every table definition, documented.
pub mod tables;
/// The change-log entries of task writes and who sees them.
mod task_changes;
/// Task lists: merged scans of the task indexes.
mod task_lists;
/// Tasks, their five indexes and the cascades that delete or unassign them.
mod tasks;
/// Teams.
mod teams;
/// The write transaction (`Store::write`, `Tx`) and what a commit does afterwards (`Effects`).
mod tx;
/// Accounts and the email index.
mod users;
/// Webhooks: rows, the team index, delivery state (the durable cursor) and delivery logs.
mod webhooks;

use std::path::Path;
use std::sync::Arc;

use redb::Database;

pub use access_tokens::TokenRefused;
pub use compact::{Compacted, compact};
pub use idempotency::{Created, IDEMPOTENCY_TTL, Idempotency};
pub use notifications::Inbox;
pub use outbox::{EmailMessage, Message, OUTBOX_GIVE_UP, OutboxEntry, OutboxStats, PushMessage};
#[cfg(test)]
pub(crate) use projects::projects_in;
pub use reminders::{DIGEST_MAX_TASKS, DIGEST_SUBJECT, ReminderKey, Scheduled};
pub use search_rows::IndexedTask;
pub use sessions::{MAX_SESSIONS_PER_USER, RefreshOutcome};
pub use snapshot::{Snapshot, SnapshotStats};
pub use task_lists::{SCAN_BUDGET, TaskIndex, TaskOrder, TaskScan};
pub use tasks::{BoardColumn, Misplaced, Place};
pub use teams::TeamChanges;
#[cfg(test)]
pub(crate) use teams::owned_team;
pub use tx::Tx;
pub use users::UserChanges;
pub use webhooks::Outcome as WebhookOutcome;

/// The database file inside the data directory.
pub const DB_FILE: &str = "tasker.redb";

/// The database cache when nothing else is asked for (`--db-cache`), in MiB. redb's page cache
/// holds recently read pages and, up to half of it, pages a write transaction has not yet
/// written to the file: it is what bounds the store's memory however large the data (redb's
/// own default, 1 GiB, is more than a small box has to give).
pub const DEFAULT_CACHE_MIB: usize = 64;

/// redb's builder with a cache of `cache_bytes`.
fn builder(cache_bytes: usize) -> redb::Builder {
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes);
    builder
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data directory is in use by another tasker process (the database is locked)")]
    Locked,
    #[error(
        "the database was written by a newer tasker (schema version {found}; this build knows up to {known}); upgrade tasker or restore a backup"
    )]
    NewerSchema { found: u64, known: u64 },
    #[error("database error: {0}")]
    Database(#[from] redb::Error),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("email already registered")]
    EmailTaken,
    #[error("not found")]
    NotFound,
    #[error("the row changed since it was read")]
    Stale,
    #[error("a team must keep at least one owner")]
    LastOwner,
    #[error("this email already has a pending invitation to this team")]
    AlreadyInvited,
    #[error("this person is already a member of the team")]
    AlreadyMember,
    #[error("the invitation was already answered, revoked or has expired")]
    InvitationClosed,
    #[error("the project is archived")]
    Archived,
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("what the first request with this Idempotency-Key created has since been deleted")]
    IdempotentResourceGone,

    #[error("blocking task failed: {0}")]
    Join(String),
    #[error("the database cannot be flushed to disk; writes are not durable")]
    NotDurable,
    #[error("an assignee is not a member of the task's team")]
    NotAMember,
    #[error("the upload would take the account over its storage quota")]
    QuotaExceeded,
}

macro_rules! from_redb_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(e: $ty) -> Self {
                StoreError::Database(e.into())
            }
        }
    )*};
}
from_redb_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked,
            other => StoreError::Database(other.into()),
        }
    }
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    /// Set in the server: commits are made durable in groups (see `durability.rs`).
    group: Option<Arc<durability::GroupCommit>>,
    /// Bumped after every commit that deleted a session or changed an account, so cached
    /// session checks know when to look again.
    auth_epoch: Arc<std::sync::atomic::AtomicU64>,
    /// Task rows and team roles served without a read transaction (see `read_cache.rs`).
    reads: Arc<read_cache::ReadCache>,
    /// Where hashes of blobs that lost their last reference go once that is durable.
    freed_blobs: Arc<std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Vec<[u8; 32]>>>>,
    /// Bumped after every durable write made through [`Store::run`]: the real-time feed
    /// wakes on it and reads the change log from where it was.
    written: Arc<tokio::sync::watch::Sender<u64>>,
    /// The newest `seq` of a committed change-log entry (visible, maybe not yet durable).
    log_end: Arc<std::sync::atomic::AtomicU64>,
    /// Set on the handle [`Store::run`] gives its closure: what that call's commits leave it
    /// to do before answering (see `tx.rs`).
    receipts: Option<Arc<std::sync::Mutex<tx::Receipts>>>,
}

impl Store {
    /// Opens (or creates) the database at `path`, refusing a file another process holds or
    /// one written by a newer build, and applies pending migrations. Every commit is durable
    /// when it returns (one fsync each): for tools and tests.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_MIB << 20)
    }

    /// Like [`Store::open`], with a database cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let db = builder(cache_bytes).create(path)?;
        migrations::run(&db)?;
        Self::with_database(db)
    }

    fn with_database(db: Database) -> Result<Self, StoreError> {
        let log_end = changes::last_seq_of(&db)?;
        Ok(Self {
            db: Arc::new(db),
            group: None,
            auth_epoch: Arc::default(),
            reads: Arc::default(),
            freed_blobs: Arc::default(),
            written: Arc::new(tokio::sync::watch::channel(0).0),
            log_end: Arc::new(std::sync::atomic::AtomicU64::new(log_end)),
            receipts: None,
        })
    }

    /// Opens an existing database as it is: no migration, so a backup or a check never
    /// changes the file it looks at. Refuses a missing file, one another process holds, and
    /// one written by a newer build.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        let db = builder(DEFAULT_CACHE_MIB << 20).open(path)?;
        let (found, known) = (
            migrations::current_version(&db)?,
            migrations::latest_version(),
        );
        if found > known {
            return Err(StoreError::NewerSchema { found, known });
        }
        Self::with_database(db)
    }

    /// Like [`Store::open`], with group commit: writes through [`Store::run`] are answered
    /// once durable, and concurrent writes share their fsync; a database cache of
    /// `cache_bytes`. For the server.
    pub fn open_with_group_commit(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let store = Self::open_with_cache(path, cache_bytes)?;
        let group = durability::GroupCommit::start(&store.db);
        Ok(Self {
            group: Some(group),
            ..store
        })
    }

    /// Wakes (`changed()`) after durable writes: what the real-time feed waits on.
    pub fn writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.written.subscribe()
    }

    /// Returns once everything committed so far is durable (at once without group commit).
    pub async fn flushed(&self) -> Result<(), StoreError> {
        match &self.group {
            Some(group) => group.durable(group.committed_so_far()).await,
            None => Ok(()),
        }
    }

    /// Subscribes to blobs that lost their last reference (delivered once durable). One
    /// subscriber per store; a second call is ignored and returns false.
    pub fn on_blobs_freed(
        &self,
        subscriber: tokio::sync::mpsc::UnboundedSender<Vec<[u8; 32]>>,
    ) -> bool {
        self.freed_blobs.set(subscriber).is_ok()
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// The newest `seq` a commit has made visible: read without a transaction.
    pub fn log_end(&self) -> u64 {
        self.log_end.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The current auth epoch: read it before reading a session, and trust a cached check
    /// only while it is unchanged.
    pub fn auth_epoch(&self) -> u64 {
        self.auth_epoch.load(std::sync::atomic::Ordering::SeqCst)
    }
}
