//! Ordered, named schema migrations.
//!
//! The `schema_version` in the META table is the version of the last migration applied. At
//! open, every later migration runs in order, each in its own write transaction together with
//! the version bump, so a crash leaves the file at a consistent version. A file whose version
//! is newer than this build knows is refused: an older binary must not write to it.

use redb::{Database, ReadTransaction, ReadableDatabase, TableDefinition, WriteTransaction};

use super::StoreError;
use super::tables::*;

const SCHEMA_VERSION_KEY: &str = "schema_version";

pub struct Migration {
    pub version: u64,
    pub name: &'static str,
    pub apply: fn(&WriteTransaction) -> Result<(), StoreError>,
}

/// Every migration, oldest first. Append only; never edit one that has shipped.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "create account and session tables",
        apply: create_account_tables,
    },
    Migration {
        version: 2,
        name: "create the change log, team, membership and invitation tables",
        apply: create_team_tables,
    },
    Migration {
        version: 3,
        name: "create the project tables",
        apply: create_project_tables,
    },
    Migration {
        version: 4,
        name: "create the task tables",
        apply: create_task_tables,
    },
    Migration {
        version: 5,
        name: "create the idempotency tables",
        apply: create_idempotency_tables,
    },
    Migration {
        version: 6,
        name: "create the comment, attachment, blob and id high-water tables",
        apply: create_collaboration_tables,
    },
    Migration {
        version: 7,
        name: "create the notification tables",
        apply: create_notification_tables,
    },
    Migration {
        version: 8,
        name: "rank every task in its board column; index tasks by update, due date, priority",
        apply: rank_tasks,
    },
    Migration {
        version: 9,
        name: "index invitations by claimant; revoke pending invitations made without an accept token",
        apply: invitation_tokens,
    },
    Migration {
        version: 10,
        name: "create the calendar feed tables",
        apply: create_calendar_tables,
    },
    Migration {
        version: 11,
        name: "create the personal access token tables",
        apply: create_access_token_tables,
    },
    Migration {
        version: 12,
        name: "create the webhook tables",
        apply: create_webhook_tables,
    },
    Migration {
        version: 13,
        name: "create the outbox tables",
        apply: create_outbox_tables,
    },
    Migration {
        version: 14,
        name: "create the reminder schedule, digest and notification preference tables",
        apply: create_reminder_tables,
    },
    Migration {
        version: 15,
        name: "mark that values may be stored compressed (older builds refuse the file)",
        apply: values_may_be_compressed,
    },
    Migration {
        version: TEAM_LISTS_DROPPED,
        name: "store values compressed with zstd (older builds refuse the file); drop the team task lists, which are their projects'",
        apply: zstd_values_and_no_team_lists,
    },
];

/// The migration that deleted the team task lists (`TASKS_BY_TEAM`, and the `TASKS_SORTED`
/// entries of source kind [`TEAM_SOURCE`]): a team's lists are read from its projects'.
pub const TEAM_LISTS_DROPPED: u64 = 16;

/// The `TASKS_SORTED` source kind of a team's lists, which migration 16 deleted.
pub const TEAM_SOURCE: u8 = 3;

/// The schema version this build writes.
pub fn latest_version() -> u64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

fn create_account_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    fn create<K: redb::Key + 'static, V: redb::Value + 'static>(
        txn: &WriteTransaction,
        table: TableDefinition<K, V>,
    ) -> Result<(), StoreError> {
        txn.open_table(table)?;
        Ok(())
    }
    create(txn, USERS)?;
    create(txn, USERS_BY_EMAIL)?;
    create(txn, SESSIONS)?;
    create(txn, SESSIONS_BY_USER)?;
    create(txn, SESSIONS_BY_EXPIRY)?;
    create(txn, REFRESH_TOKENS)?;
    Ok(())
}

fn create_team_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(CHANGES)?;
    txn.open_table(CHANGES_BY_ENTITY)?;
    txn.open_table(TEAMS)?;
    txn.open_table(TEAM_MEMBERS)?;
    txn.open_table(MEMBERSHIPS_BY_USER)?;
    txn.open_table(INVITATIONS)?;
    txn.open_table(INVITATIONS_BY_TEAM)?;
    txn.open_table(INVITATIONS_BY_EMAIL)?;
    Ok(())
}

fn create_project_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(PROJECTS)?;
    txn.open_table(PROJECTS_BY_TEAM)?;
    Ok(())
}

fn create_task_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(TASKS)?;
    txn.open_table(TASKS_BY_ASSIGNEE)?;
    txn.open_table(TASKS_BY_CREATOR)?;
    txn.open_table(TASKS_BY_PROJECT)?;
    txn.open_table(TASKS_BY_TEAM)?;
    txn.open_table(TASKS_BY_PROJECT_STATUS)?;
    Ok(())
}

fn create_idempotency_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(IDEMPOTENCY)?;
    txn.open_table(IDEMPOTENCY_BY_TIME)?;
    Ok(())
}

fn create_collaboration_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(COMMENTS)?;
    txn.open_table(COMMENTS_BY_TASK)?;
    txn.open_table(ATTACHMENTS)?;
    txn.open_table(ATTACHMENTS_BY_TASK)?;
    txn.open_table(BLOBS)?;
    txn.open_table(UPLOAD_BYTES_BY_USER)?;
    txn.open_table(ID_HIGH_WATER)?;
    Ok(())
}

fn create_notification_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(NOTIFICATIONS)?;
    txn.open_table(NOTIFICATIONS_UNREAD)?;
    txn.open_table(NOTIFICATION_UNREAD_COUNTS)?;
    txn.open_table(NOTIFICATIONS_BY_SEQ)?;
    txn.open_table(NOTIFICATIONS_BY_TIME)?;
    Ok(())
}

fn create_calendar_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(CALENDAR_FEEDS)?;
    txn.open_table(CALENDAR_FEEDS_BY_HASH)?;
    Ok(())
}

fn create_access_token_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(ACCESS_TOKENS)?;
    txn.open_table(ACCESS_TOKENS_BY_HASH)?;
    txn.open_table(ACCESS_TOKENS_BY_USER)?;
    Ok(())
}

fn create_webhook_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(WEBHOOKS)?;
    txn.open_table(WEBHOOKS_BY_TEAM)?;
    txn.open_table(WEBHOOK_STATES)?;
    txn.open_table(WEBHOOK_DELIVERIES)?;
    Ok(())
}

fn create_outbox_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(OUTBOX)?;
    txn.open_table(OUTBOX_DUE)?;
    txn.open_table(OUTBOX_FAILED)?;
    Ok(())
}

/// Changes no table: from here on a value may be stored compressed (`codec`, marker
/// `LZ4_DICT_1`), which a build from before it would read as a corrupt row. The version it
/// records makes such a build refuse the file instead, as it refuses any newer one.
fn values_may_be_compressed(_txn: &WriteTransaction) -> Result<(), StoreError> {
    Ok(())
}

/// From here on a value may be stored in the zstd form (`codec`, marker `ZSTD_DICT_1`), which
/// a build of migration 15 would read as a corrupt row; like migration 15, the version this
/// records makes such a build refuse the file instead. And the team task lists go: a team's
/// tasks are exactly its projects' (a task has a team when, and only when, it has a project,
/// and takes the project's), so its lists are read as its projects' (`task_lists.rs`) and
/// `TASKS_BY_TEAM` and the team entries of `TASKS_SORTED` (3 of a task's 12) only cost
/// space. One range delete, however many tasks.
fn zstd_values_and_no_team_lists(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(TASKS_SORTED)?.retain_in(
        (TEAM_SOURCE, 0u128, 0u8, 0u64, 0u128)
            ..=(TEAM_SOURCE, u128::MAX, u8::MAX, u64::MAX, u128::MAX),
        |_, _| false,
    )?;
    txn.delete_table(TASKS_BY_TEAM)?;
    Ok(())
}

fn create_reminder_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(PREFERENCES)?;
    txn.open_table(REMINDERS)?;
    txn.open_table(REMINDERS_BY_SUBJECT)?;
    txn.open_table(DIGEST_ITEMS)?;
    Ok(())
}

/// Gives every task a rank in its column, in creation order (`created_at`, then id), and
/// writes the board and sorted-list index entries of every task.
fn rank_tasks(txn: &WriteTransaction) -> Result<(), StoreError> {
    use std::collections::BTreeMap;

    use super::codec::{decode, encode};
    use super::tasks::IndexKeys;
    use crate::domain::rank::between;
    use crate::domain::task::{Column, Task};

    let mut columns: BTreeMap<Column, Vec<Task>> = BTreeMap::new();
    {
        let rows = txn.open_table(TASKS)?;
        for entry in redb::ReadableTable::iter(&rows)? {
            let (_, row) = entry?;
            let task: Task = decode("tasks", row.value())?;
            columns.entry(task.column()).or_default().push(task);
        }
    }
    let mut rows = txn.open_table(TASKS)?;
    let mut by_rank = txn.open_table(TASKS_BY_RANK)?;
    let mut sorted = txn.open_table(TASKS_SORTED)?;
    for tasks in columns.values_mut() {
        tasks.sort_by_key(|t| (t.created_at, t.id));
        let mut last = None;
        for task in tasks.iter_mut() {
            task.rank = between(last.as_ref(), None);
            last = Some(task.rank.clone());
            rows.insert(task.id.as_u128(), encode(task)?.as_slice())?;
            let keys = IndexKeys::of(task);
            for (kind, board, status, rank, id) in &keys.rank {
                by_rank.insert((*kind, *board, *status, rank.as_str(), *id), ())?;
            }
            for key in keys.sorted {
                sorted.insert(key, ())?;
            }
        }
    }
    Ok(())
}

/// Creates the claimant index, and revokes every pending invitation made before accept tokens:
/// nobody could accept it any more (it has no token to present), and while pending it would
/// keep its inviter from inviting the same email again. The inviter sees it revoked in the
/// team's invitations and invites again (the new invitation comes with a link).
fn invitation_tokens(txn: &WriteTransaction) -> Result<(), StoreError> {
    use super::codec::{decode, encode};
    use crate::domain::team::{Invitation, InvitationStatus};

    txn.open_table(INVITATIONS_BY_CLAIMANT)?;
    let mut legacy = Vec::new();
    {
        let rows = txn.open_table(INVITATIONS)?;
        for entry in redb::ReadableTable::iter(&rows)? {
            let (_, row) = entry?;
            let invitation: Invitation = decode("invitations", row.value())?;
            if invitation.status == InvitationStatus::Pending && invitation.secret_hash.is_none() {
                legacy.push(invitation);
            }
        }
    }
    let mut rows = txn.open_table(INVITATIONS)?;
    let mut by_email = txn.open_table(INVITATIONS_BY_EMAIL)?;
    for mut invitation in legacy {
        invitation.status = InvitationStatus::Revoked;
        let id = invitation.id.as_u128();
        rows.insert(id, encode(&invitation)?.as_slice())?;
        by_email.remove((invitation.email.as_str(), id))?;
    }
    Ok(())
}

/// The version recorded in the file, 0 for a new file.
pub fn current_version(db: &Database) -> Result<u64, StoreError> {
    version_in(&db.begin_read()?)
}

/// The version recorded in the state `txn` reads, 0 for a new file.
pub fn version_in(txn: &ReadTransaction) -> Result<u64, StoreError> {
    let table = match txn.open_table(META) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    Ok(table.get(SCHEMA_VERSION_KEY)?.map_or(0, |v| v.value()))
}

/// Brings the file up to `latest_version()`.
pub fn run(db: &Database) -> Result<(), StoreError> {
    let found = current_version(db)?;
    let known = latest_version();
    if found > known {
        return Err(StoreError::NewerSchema { found, known });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        let txn = db.begin_write()?;
        (migration.apply)(&txn)?;
        txn.open_table(META)?
            .insert(SCHEMA_VERSION_KEY, migration.version)?;
        txn.commit()?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied schema migration"
        );
    }
    Ok(())
}

/// Writes a schema version directly; tests use it to simulate a file from a newer build.
pub fn force_version(db: &Database, version: u64) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.open_table(META)?.insert(SCHEMA_VERSION_KEY, version)?;
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;
    use crate::domain::task::{Task, TaskStatus};
    use crate::domain::{ProjectId, TeamId, UserId};
    use crate::store::Store;
    use crate::store::codec::{decode, encode};

    /// A file from before accept tokens (version 8): its pending invitations, which have no
    /// token, are revoked (and no longer block a new invitation); answered ones stay as they
    /// were; the claimant index exists.
    #[test]
    fn version_9_revokes_pending_invitations_without_a_token() {
        use crate::domain::team::{Invitation, InvitationStatus, TeamRole};
        use crate::domain::{Email, InvitationId};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let store = Store::open(&path).unwrap();
        let (team, membership) = crate::store::owned_team(&store);
        let (team, owner, now) = (team.id, membership.user_id, Utc::now());
        let old = |email: &str| Invitation {
            id: InvitationId::new(),
            team_id: team,
            email: Email::parse(email).unwrap(),
            role: TeamRole::Member,
            invited_by: owner,
            created_at: now,
            expires_at: now + Duration::days(7),
            status: InvitationStatus::Pending,
            secret_hash: None,
            claimed_by: None,
        };
        let (pending, declined) = (old("p@example.com"), old("d@example.com"));
        store
            .write(|tx| {
                tx.create_invitation(&pending)?;
                tx.create_invitation(&declined)?;
                tx.close_invitation(declined.id, InvitationStatus::Declined, UserId::new(), now)
                    .map(|_| ())
            })
            .unwrap();
        {
            let txn = store.db().begin_write().unwrap();
            txn.delete_table(INVITATIONS_BY_CLAIMANT).unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_VERSION_KEY, 8)
                .unwrap();
            txn.commit().unwrap();
        }
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(current_version(store.db()).unwrap(), latest_version());
        let statuses: Vec<_> = store
            .invitations_of_team(team, None, 10)
            .unwrap()
            .into_iter()
            .map(|i| (i.id, i.status))
            .collect();
        assert!(statuses.contains(&(pending.id, InvitationStatus::Revoked)));
        assert!(statuses.contains(&(declined.id, InvitationStatus::Declined)));
        let email = Email::parse("p@example.com").unwrap();
        assert!(
            store
                .pending_invitations_for(&email, None, 10)
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .claimed_invitations(owner, None, 10)
                .unwrap()
                .is_empty()
        );
        let check = store.snapshot().unwrap().check().unwrap();
        assert!(check.problems.is_empty(), "{:?}", check.problems);
    }

    /// A file from before ranks (version 7: no rank in the rows, no board or sorted
    /// indexes) gets ranks in creation order, per column, and passes `tasker check`.
    #[test]
    fn version_8_ranks_existing_tasks_in_creation_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let store = Store::open(&path).unwrap();
        let (me, project, team) = (UserId::new(), ProjectId::new(), TeamId::new());
        let start = Utc::now();
        // Ids grow with i while creation times fall: the order must follow `created_at`.
        let tasks: Vec<Task> = (0..12)
            .map(|i| {
                let personal = i % 4 == 3;
                Task {
                    status: if i % 3 == 0 {
                        TaskStatus::Done
                    } else {
                        TaskStatus::Todo
                    },
                    project_id: (!personal).then_some(project),
                    team_id: (!personal).then_some(team),
                    created_at: start - Duration::seconds(i),
                    ..Task::sample(me)
                }
            })
            .collect();
        store.import_tasks(&tasks).unwrap();
        {
            let txn = store.db().begin_write().unwrap();
            txn.delete_table(TASKS_BY_RANK).unwrap();
            txn.delete_table(TASKS_SORTED).unwrap();
            {
                let mut rows = txn.open_table(TASKS).unwrap();
                for task in &tasks {
                    let old = Task {
                        rank: Default::default(),
                        ..task.clone()
                    };
                    rows.insert(task.id.as_u128(), encode(&old).unwrap().as_slice())
                        .unwrap();
                }
                txn.open_table(META)
                    .unwrap()
                    .insert(SCHEMA_VERSION_KEY, 7)
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(current_version(store.db()).unwrap(), latest_version());
        let txn = store.db().begin_read().unwrap();
        let rows = txn.open_table(TASKS).unwrap();
        let mut migrated: Vec<Task> = redb::ReadableTable::iter(&rows)
            .unwrap()
            .map(|e| decode("tasks", e.unwrap().1.value()).unwrap())
            .collect();
        assert!(migrated.iter().all(|t| !t.rank.is_unplaced()));
        migrated.sort_by(|a, b| (a.column(), &a.rank).cmp(&(b.column(), &b.rank)));
        for column in migrated.chunk_by(|a, b| a.column() == b.column()) {
            assert!(
                column.windows(2).all(|w| w[0].created_at < w[1].created_at),
                "oldest first within each column"
            );
        }
        let check = store.snapshot().unwrap().check().unwrap();
        assert!(check.problems.is_empty(), "{:?}", check.problems);
    }

    /// A file of version 15 has the team lists (`tasks_by_team` and the team entries of
    /// `tasks_sorted`): `tasker check` and a backup take it as it is, and migration 16
    /// deletes them; the team's lists read the same after, and the file passes the check.
    #[test]
    fn version_16_drops_the_team_lists() {
        use crate::domain::task::TaskSort;
        use crate::store::TaskIndex;
        use crate::store::task_lists::tests::{assert_lists, spread_tasks};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let store = Store::open(&path).unwrap();
        let (team, owner) = crate::store::owned_team(&store);
        let (team, me) = (team.id, owner.user_id);
        let projects: Vec<_> = crate::store::projects_in(&store, team, me, 3)
            .into_iter()
            .map(|p| (p, team))
            .collect();
        let tasks = spread_tasks(me, UserId::new(), &projects, 40);
        store.import_tasks(&tasks).unwrap();
        let team_tasks: Vec<&Task> = tasks.iter().filter(|t| t.team_id.is_some()).collect();
        {
            // What a build of version 15 wrote besides.
            let txn = store.db().begin_write().unwrap();
            {
                let mut by_team = txn.open_table(TASKS_BY_TEAM).unwrap();
                let mut sorted = txn.open_table(TASKS_SORTED).unwrap();
                for task in &team_tasks {
                    let id = task.id.as_u128();
                    by_team.insert((team.as_u128(), id), ()).unwrap();
                    for sort in TaskSort::INDEXED {
                        let key = (
                            TEAM_SOURCE,
                            team.as_u128(),
                            sort.tag(),
                            task.sort_key(sort),
                            id,
                        );
                        sorted.insert(key, ()).unwrap();
                    }
                }
                txn.open_table(META)
                    .unwrap()
                    .insert(SCHEMA_VERSION_KEY, 15)
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        drop(store);
        let team_entries = |store: &Store| {
            let txn = store.db().begin_read().unwrap();
            let sorted = txn.open_table(TASKS_SORTED).unwrap();
            let range = (TEAM_SOURCE, 0u128, 0u8, 0u64, 0u128)
                ..=(TEAM_SOURCE, u128::MAX, u8::MAX, u64::MAX, u128::MAX);
            sorted.range(range).unwrap().count()
        };

        // Not migrated yet: the check passes, a backup copies the old table too.
        let old = Store::open_existing(&path).unwrap();
        assert_eq!(current_version(old.db()).unwrap(), 15);
        assert_eq!(team_entries(&old), team_tasks.len() * 3);
        let check = old.snapshot().unwrap().check().unwrap();
        assert!(check.problems.is_empty(), "{:?}", check.problems);
        let copy = dir.path().join("copy.redb");
        let stats = old.snapshot().unwrap().write_to(&copy).unwrap();
        assert!(
            stats
                .tables
                .contains(&("tasks_by_team-1", team_tasks.len() as u64))
        );
        drop(old);

        for path in [&path, &copy] {
            let store = Store::open(path).unwrap();
            assert_eq!(current_version(store.db()).unwrap(), latest_version());
            assert_eq!(team_entries(&store), 0);
            let txn = store.db().begin_read().unwrap();
            assert!(matches!(
                txn.open_table(TASKS_BY_TEAM),
                Err(redb::TableError::TableDoesNotExist(_))
            ));
            drop(txn);
            let check = store.snapshot().unwrap().check().unwrap();
            assert!(check.problems.is_empty(), "{:?}", check.problems);
            let in_team = |t: &Task| t.team_id == Some(team);
            assert_lists(&store, &[TaskIndex::Team(team)], &tasks, &in_team, 6, 1000);
        }

        // Once migrated, a team entry is a problem the check reports.
        let store = Store::open(&path).unwrap();
        let txn = store.db().begin_write().unwrap();
        let task = team_tasks[0];
        let stray = (
            TEAM_SOURCE,
            team.as_u128(),
            1,
            task.sort_key(TaskSort::Updated),
            task.id.as_u128(),
        );
        txn.open_table(TASKS_SORTED)
            .unwrap()
            .insert(stray, ())
            .unwrap();
        txn.commit().unwrap();
        let check = store.snapshot().unwrap().check().unwrap();
        assert!(
            check.problems.iter().any(|p| p.contains("tasks_sorted")),
            "{:?}",
            check.problems
        );
    }
}
