//! Every redb table of tasker, in one place.
//!
//! Names carry a version suffix (`users-1`): a change to a table's key or value layout gets a
//! new name and a migration in `migrations.rs` that copies the rows, so an old file never
//! meets code that misreads it. Values are JSON (see `codec.rs`): self-describing, so adding
//! an optional field needs no migration. A value is stored compressed (zstd against a fixed
//! dictionary of tasker's field names, marker byte `0x02`; `0x01` LZ4 values of migration 15
//! still read) when that is smaller: "JSON" below means the value in any of those forms.
//!
//! Secondary indexes are written in the same write transaction as the row they point at.

use redb::TableDefinition;

/// `key -> value` of small store-wide facts. Key `schema_version`: the last migration applied.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta-1");

/// `table name -> the highest id ever given out in it`, for tables whose ids grow with commit
/// order (`next_id`): an id is never handed out twice, even after the newest row is deleted.
pub const ID_HIGH_WATER: TableDefinition<&str, u128> = TableDefinition::new("id_high_water-1");

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

/// `seq -> JSON domain::change::Change`: the change log, one entry per committed mutation,
/// `seq` gap-free and global.
pub const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes-1");

/// `(entity id, seq) -> ()`: an entity's history, oldest first.
pub const CHANGES_BY_ENTITY: TableDefinition<(u128, u64), ()> =
    TableDefinition::new("changes_by_entity-1");

/// `team id -> JSON domain::team::Team`.
pub const TEAMS: TableDefinition<u128, &[u8]> = TableDefinition::new("teams-1");

/// `(team id, user id) -> JSON domain::team::Membership`: a team's members.
pub const TEAM_MEMBERS: TableDefinition<(u128, u128), &[u8]> =
    TableDefinition::new("team_members-1");

/// `(user id, team id) -> ()`: a user's teams.
pub const MEMBERSHIPS_BY_USER: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("memberships_by_user-1");

/// `invitation id -> JSON domain::team::Invitation`.
pub const INVITATIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("invitations-1");

/// `(team id, invitation id) -> ()`: every invitation of a team, answered or not.
pub const INVITATIONS_BY_TEAM: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("invitations_by_team-1");

/// `(email, invitation id) -> ()`: pending invitations only (removed when answered or
/// revoked), so "my invitations" and the duplicate check read a handful of rows.
pub const INVITATIONS_BY_EMAIL: TableDefinition<(&str, u128), ()> =
    TableDefinition::new("invitations_by_email-1");

/// `(claimant user id, invitation id) -> ()`: pending invitations an account claimed (presented
/// the accept token of), removed when answered or revoked: "my invitations".
pub const INVITATIONS_BY_CLAIMANT: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("invitations_by_claimant-1");

/// `project id -> JSON domain::project::Project`.
pub const PROJECTS: TableDefinition<u128, &[u8]> = TableDefinition::new("projects-1");

/// `(team id, project id) -> ()`: a team's projects, oldest first.
pub const PROJECTS_BY_TEAM: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("projects_by_team-1");

/// `task id -> JSON domain::task::Task`.
pub const TASKS: TableDefinition<u128, &[u8]> = TableDefinition::new("tasks-1");

/// `(user id, task id) -> ()`: tasks assigned to a user.
pub const TASKS_BY_ASSIGNEE: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("tasks_by_assignee-1");

/// `(user id, task id) -> ()`: tasks a user created.
pub const TASKS_BY_CREATOR: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("tasks_by_creator-1");

/// `(project id, task id) -> ()`: a project's tasks.
pub const TASKS_BY_PROJECT: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("tasks_by_project-1");

/// `(project id, status, task id) -> ()`: a project's tasks by status (board columns).
pub const TASKS_BY_PROJECT_STATUS: TableDefinition<(u128, u8, u128), ()> =
    TableDefinition::new("tasks_by_project_status-1");

/// `(board kind, board id, status, rank, task id) -> ()`: board columns in rank order. Board
/// kind 0 is a project (board id: the project's), 1 the personal tasks of a creator (board
/// id: the user's); see `domain::task::Column`. A column is one bounded range read.
pub const TASKS_BY_RANK: TableDefinition<(u8, u128, u8, &str, u128), ()> =
    TableDefinition::new("tasks_by_rank-1");

/// `(source kind, source id, sort, sort key, task id) -> ()`: the lists of `TASKS_BY_ASSIGNEE`,
/// `_CREATOR` and `_PROJECT` (source kind 0 to 2) ordered by `updated_at`, `due_date` and
/// `priority` (sort tags of `domain::task::TaskSort`; keys from `Task::sort_key`, no due date
/// = `u64::MAX`). A team's lists are its projects' (kind 3, the team's own, was deleted by
/// migration 16).
pub const TASKS_SORTED: TableDefinition<(u8, u128, u8, u64, u128), ()> =
    TableDefinition::new("tasks_sorted-1");

/// `(user id, Idempotency-Key) -> JSON idempotency::Record`: the first result of a create
/// with that key, kept 24 hours.
pub const IDEMPOTENCY: TableDefinition<(u128, &str), &[u8]> = TableDefinition::new("idempotency-1");

/// `(created_at as Unix seconds, user id, key) -> ()`: idempotency records by age, for the
/// sweep.
pub const IDEMPOTENCY_BY_TIME: TableDefinition<(i64, u128, &str), ()> =
    TableDefinition::new("idempotency_by_time-1");

/// `comment id -> JSON domain::comment::Comment`.
pub const COMMENTS: TableDefinition<u128, &[u8]> = TableDefinition::new("comments-1");

/// `(task id, comment id) -> ()`: a task's comments, oldest first.
pub const COMMENTS_BY_TASK: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("comments_by_task-1");

/// `attachment id -> JSON domain::attachment::Attachment`.
pub const ATTACHMENTS: TableDefinition<u128, &[u8]> = TableDefinition::new("attachments-1");

/// `(task id, attachment id) -> ()`: a task's attachments, oldest first.
pub const ATTACHMENTS_BY_TASK: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("attachments_by_task-1");

/// `SHA-256 -> references`: how many attachments point at each blob under `DATA_DIR/blobs/`.
/// A blob whose count reaches zero is removed (after the commit that dropped it is durable);
/// a file without a row here is an orphan, swept at start.
pub const BLOBS: TableDefinition<[u8; 32], u64> = TableDefinition::new("blobs-1");

/// `user id -> bytes`: the size of every attachment a user has uploaded and not yet lost,
/// for the optional per-user quota.
pub const UPLOAD_BYTES_BY_USER: TableDefinition<u128, u64> =
    TableDefinition::new("upload_bytes_by_user-1");

/// `(user id, seq) -> JSON domain::notification::Notification`: a user's inbox, keyed by the
/// change that caused each entry.
pub const NOTIFICATIONS: TableDefinition<(u128, u64), &[u8]> =
    TableDefinition::new("notifications-1");

/// `(user id, seq) -> ()`: the unread part of each inbox.
pub const NOTIFICATIONS_UNREAD: TableDefinition<(u128, u64), ()> =
    TableDefinition::new("notifications_unread-1");

/// `user id -> count`: unread notifications per user, so the count is one read.
pub const NOTIFICATION_UNREAD_COUNTS: TableDefinition<u128, u64> =
    TableDefinition::new("notification_unread_counts-1");

/// `(seq, user id) -> ()`: who was notified of each change (the real-time feed's lookup).
pub const NOTIFICATIONS_BY_SEQ: TableDefinition<(u64, u128), ()> =
    TableDefinition::new("notifications_by_seq-1");

/// `(created_at as Unix seconds, user id, seq) -> ()`: notifications by age, for retention.
pub const NOTIFICATIONS_BY_TIME: TableDefinition<(i64, u128, u64), ()> =
    TableDefinition::new("notifications_by_time-1");

/// `user id -> JSON domain::calendar::CalendarFeed`: a user's calendar feed (at most one).
pub const CALENDAR_FEEDS: TableDefinition<u128, &[u8]> = TableDefinition::new("calendar_feeds-1");

/// `calendar token SHA-256 (hex) -> user id`: how a feed request finds its user, one read.
pub const CALENDAR_FEEDS_BY_HASH: TableDefinition<&str, u128> =
    TableDefinition::new("calendar_feeds_by_hash-1");

// Personal access tokens (issue 16, migration 11).

/// `token id (u128) -> JSON domain::scope::AccessToken`.
pub const ACCESS_TOKENS: TableDefinition<u128, &[u8]> = TableDefinition::new("access_tokens-1");

/// `token SHA-256 (hex) -> token id`: how a presented token is found, one read.
pub const ACCESS_TOKENS_BY_HASH: TableDefinition<&str, u128> =
    TableDefinition::new("access_tokens_by_hash-1");

/// `(user id, token id) -> ()`: a user's tokens, oldest first.
pub const ACCESS_TOKENS_BY_USER: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("access_tokens_by_user-1");
// Webhooks (issue 16, migration 12).

/// `webhook id -> JSON domain::webhooks::Webhook`.
pub const WEBHOOKS: TableDefinition<u128, &[u8]> = TableDefinition::new("webhooks-1");

/// `(team id, webhook id) -> ()`: a team's webhooks.
pub const WEBHOOKS_BY_TEAM: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("webhooks_by_team-1");

/// `webhook id -> JSON domain::webhooks::DeliveryState`: the hook's durable cursor in the
/// change log, its failures at the next entry and when the next attempt is due.
pub const WEBHOOK_STATES: TableDefinition<u128, &[u8]> = TableDefinition::new("webhook_states-1");

/// `(webhook id, delivery number) -> JSON domain::webhooks::Delivery`: the newest
/// `MAX_DELIVERIES` attempts of each hook.
pub const WEBHOOK_DELIVERIES: TableDefinition<(u128, u64), &[u8]> =
    TableDefinition::new("webhook_deliveries-1");

// --- Outbox (issue 17, lane mail): messages waiting to be sent, and those given up on. ---

/// `message id (u128, UUIDv7) -> JSON outbox::OutboxEntry`: every message not yet sent.
pub const OUTBOX: TableDefinition<u128, &[u8]> = TableDefinition::new("outbox-1");

/// `(next attempt as Unix milliseconds, message id) -> ()`: the outbox by when each message is
/// next due, so the worker reads the due ones with a bounded range read, never a scan.
pub const OUTBOX_DUE: TableDefinition<(i64, u128), ()> = TableDefinition::new("outbox_due-1");

/// `message id -> JSON outbox::OutboxEntry`: messages given up on (a permanent refusal, or
/// retried for [`crate::store::OUTBOX_GIVE_UP`]), kept for the operator; counted in /metrics.
pub const OUTBOX_FAILED: TableDefinition<u128, &[u8]> = TableDefinition::new("outbox_failed-1");

// Reminders, digests and notification preferences (issue 17, lane remind; migration 14).

/// `user id -> JSON domain::reminder::Preferences`: time zone, reminders, digest, per-kind
/// delivery, ntfy topic. No row: the defaults.
pub const PREFERENCES: TableDefinition<u128, &[u8]> = TableDefinition::new("preferences-1");

/// `(fire_at as Unix microseconds, user id, subject, kind code) -> JSON reminders::Scheduled`:
/// the reminder schedule by time (subject: a task id, 0 for the digest, or a notification's
/// seq to email at once; kind codes in `domain::reminder::ReminderKind::code`).
pub const REMINDERS: TableDefinition<(i64, u128, u128, u32), &[u8]> =
    TableDefinition::new("reminders-1");

/// `(subject, user id, fire_at, kind code) -> ()`: a task's (or a digest's) entries, to move
/// or drop them when it changes.
pub const REMINDERS_BY_SUBJECT: TableDefinition<(u128, u128, i64, u32), ()> =
    TableDefinition::new("reminders_by_subject-1");

/// `(user id, seq) -> ()`: notifications waiting for the user's next daily digest.
pub const DIGEST_ITEMS: TableDefinition<(u128, u64), ()> = TableDefinition::new("digest_items-1");

// Retired tables: no longer written or read, named only by the migrations that created and
// deleted them (and by backups and compaction of a file not yet migrated, which copy them).

/// `(team id, task id) -> ()`: the tasks of a team's projects. Created by migration 4,
/// deleted by migration 16: a team's tasks are read from its projects' (`task_lists.rs`).
pub const TASKS_BY_TEAM: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("tasks_by_team-1");
