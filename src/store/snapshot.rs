//! A consistent copy of the whole database, for backups and checks.
//!
//! redb cannot copy its file while it is open, so a snapshot is made the typed way: one read
//! transaction sees one committed state of every table, and each table's rows are copied into
//! a fresh redb file in one write transaction. [`for_each_table!`] is the one list of tables
//! that does it; a test compares it with the tables a migrated database really has, so a new
//! table cannot be left out of backups.

use std::path::Path;

use redb::{
    Database, Key, MultimapTableHandle, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, TableHandle, Value,
};

use super::migrations::current_version;
use super::tables::*;
use super::{Store, StoreError};

/// Calls `$m!(TABLE, TABLE, ...)` with every table in `tables.rs`. Add a new table here (the
/// test `every_table_is_listed` fails until you do).
macro_rules! for_each_table {
    ($m:ident) => {
        $m!(
            META,
            ID_HIGH_WATER,
            USERS,
            USERS_BY_EMAIL,
            SESSIONS,
            SESSIONS_BY_USER,
            SESSIONS_BY_EXPIRY,
            REFRESH_TOKENS,
            CHANGES,
            CHANGES_BY_ENTITY,
            TEAMS,
            TEAM_MEMBERS,
            MEMBERSHIPS_BY_USER,
            INVITATIONS,
            INVITATIONS_BY_TEAM,
            INVITATIONS_BY_EMAIL,
            INVITATIONS_BY_CLAIMANT,
            PROJECTS,
            PROJECTS_BY_TEAM,
            TASKS,
            TASKS_BY_ASSIGNEE,
            TASKS_BY_CREATOR,
            TASKS_BY_PROJECT,
            TASKS_BY_PROJECT_STATUS,
            TASKS_BY_RANK,
            TASKS_SORTED,
            IDEMPOTENCY,
            IDEMPOTENCY_BY_TIME,
            COMMENTS,
            COMMENTS_BY_TASK,
            ATTACHMENTS,
            ATTACHMENTS_BY_TASK,
            BLOBS,
            UPLOAD_BYTES_BY_USER,
            NOTIFICATIONS,
            NOTIFICATIONS_UNREAD,
            NOTIFICATION_UNREAD_COUNTS,
            NOTIFICATIONS_BY_SEQ,
            NOTIFICATIONS_BY_TIME,
            CALENDAR_FEEDS,
            CALENDAR_FEEDS_BY_HASH,
            ACCESS_TOKENS,
            ACCESS_TOKENS_BY_HASH,
            ACCESS_TOKENS_BY_USER,
            WEBHOOKS,
            WEBHOOKS_BY_TEAM,
            WEBHOOK_STATES,
            WEBHOOK_DELIVERIES,
            OUTBOX,
            OUTBOX_DUE,
            OUTBOX_FAILED,
            PREFERENCES,
            REMINDERS,
            REMINDERS_BY_SUBJECT,
            DIGEST_ITEMS
        )
    };
}
pub(crate) use for_each_table;

/// Calls `$m!(TABLE, ...)` with every retired table of `tables.rs`: one a file not yet
/// migrated may still hold. A snapshot copies it when it is there (the copy's migration
/// deletes it later), and never creates it.
macro_rules! for_each_retired_table {
    ($m:ident) => {
        $m!(TASKS_BY_TEAM)
    };
}
pub(crate) use for_each_retired_table;

/// The names of every table a snapshot copies.
pub fn table_names() -> Vec<&'static str> {
    macro_rules! names {
        ($($table:ident),*) => { vec![$($table.name()),*] };
    }
    for_each_table!(names)
}

/// One read transaction over the whole database: everything read through it is one
/// committed state. Hold it only as long as needed (it keeps old pages from being reused).
/// One read transaction over the whole store: a backup's copy and an export read from it.
pub struct Snapshot {
    pub(super) txn: ReadTransaction,
}

/// What [`Snapshot::write_to`] copied.
#[derive(Debug, Clone, Default)]
pub struct SnapshotStats {
    /// `(table name, rows)` for every table, in [`table_names`] order, then each retired one
    /// the source still had.
    pub tables: Vec<(&'static str, u64)>,
    /// The schema version of the copied state.
    pub schema_version: u64,
}

impl Store {
    /// Begins a snapshot (one read transaction).
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            txn: self.db().begin_read()?,
        })
    }
}

impl Snapshot {
    /// The hash of every blob the snapshot's attachments refer to (the BLOBS table's keys).
    pub fn blob_hashes(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        let mut hashes = Vec::new();
        for entry in self.txn.open_table(BLOBS)?.iter()? {
            hashes.push(entry?.0.value());
        }
        Ok(hashes)
    }

    /// The names of the tables the database holds (whatever this build knows of them).
    pub fn stored_table_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self
            .txn
            .list_tables()?
            .map(|t| t.name().to_string())
            .collect();
        names.extend(
            self.txn
                .list_multimap_tables()?
                .map(|t| t.name().to_string()),
        );
        names.sort();
        Ok(names)
    }

    /// Copies every table into a new redb file at `path` (which must not exist), in one
    /// durable write transaction. Refuses a database with a table this build does not know:
    /// such a copy would silently lose it.
    pub fn write_to(&self, path: &Path) -> Result<SnapshotStats, StoreError> {
        self.copy_to(path, false)
    }

    /// Like [`Snapshot::write_to`], with every JSON value re-encoded in the current stored
    /// form (see `codec.rs`): what `tasker compact` writes. Each table is written in key order,
    /// so its B-tree pages come out full (inserts in random order leave them half empty).
    pub fn rewrite_to(&self, path: &Path) -> Result<SnapshotStats, StoreError> {
        self.copy_to(path, true)
    }

    fn copy_to(&self, path: &Path, recode: bool) -> Result<SnapshotStats, StoreError> {
        let mut known = table_names();
        macro_rules! retired_names {
            ($($table:ident),*) => { known.extend([$($table.name()),*]) };
        }
        for_each_retired_table!(retired_names);
        if let Some(unknown) = self
            .stored_table_names()?
            .into_iter()
            .find(|name| !known.contains(&name.as_str()))
        {
            return Err(StoreError::Corrupt(format!(
                "the database has a table this build does not know ({unknown}); it cannot be copied safely"
            )));
        }
        if path.exists() {
            return Err(StoreError::Corrupt(format!(
                "{} already exists",
                path.display()
            )));
        }
        // A small cache: what the copy has not committed yet goes to the file, not to memory.
        let target = super::builder(super::DEFAULT_CACHE_MIB << 20).create(path)?;
        let write = target.begin_write()?;
        let mut tables = Vec::new();
        macro_rules! copy_all {
            ($($table:ident),*) => {$(
                tables.push(($table.name(), copy_table(&self.txn, &write, $table, recode)?));
            )*};
        }
        for_each_table!(copy_all);
        let present = self.stored_table_names()?;
        macro_rules! copy_retired {
            ($($table:ident),*) => {$(
                if present.iter().any(|name| name == $table.name()) {
                    tables.push(($table.name(), copy_table(&self.txn, &write, $table, recode)?));
                }
            )*};
        }
        for_each_retired_table!(copy_retired);
        write.commit()?;
        drop(target);
        let schema_version = self
            .txn
            .open_table(META)?
            .get("schema_version")?
            .map_or(0, |v| v.value());
        Ok(SnapshotStats {
            tables,
            schema_version,
        })
    }

    /// The underlying read transaction, for checks that walk rows.
    pub(crate) fn txn(&self) -> &ReadTransaction {
        &self.txn
    }
}

/// Copies every row of `table`; a table the source does not have yet is created empty. With
/// `recode`, the values of a table of JSON values (`&[u8]`: every such table holds JSON, see
/// `tables.rs`) are re-encoded on the way (`codec::recode`).
fn copy_table<K: Key + 'static, V: Value + 'static>(
    source: &ReadTransaction,
    target: &redb::WriteTransaction,
    table: TableDefinition<K, V>,
    recode: bool,
) -> Result<u64, StoreError> {
    let recode = recode && V::type_name() == <&[u8] as Value>::type_name();
    let mut to = target.open_table(table)?;
    let from = match source.open_table(table) {
        Ok(from) => from,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut rows = 0;
    for entry in from.iter()? {
        let (key, value) = entry?;
        if recode {
            let value = value.value();
            let stored = super::codec::recode(table.name(), V::as_bytes(&value).as_ref())?;
            to.insert(key.value(), V::from_bytes(&stored))?;
        } else {
            to.insert(key.value(), value.value())?;
        }
        rows += 1;
    }
    Ok(rows)
}

/// The schema version recorded in a database file, opened on its own (not locked by anyone).
pub fn schema_version_of(db: &Database) -> Result<u64, StoreError> {
    current_version(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        let stored = store.snapshot().unwrap().stored_table_names().unwrap();
        let mut listed: Vec<String> = table_names().iter().map(|n| n.to_string()).collect();
        listed.sort();
        assert_eq!(
            stored, listed,
            "for_each_table! in store/snapshot.rs must list exactly the tables migrations create"
        );
    }

    #[test]
    fn a_snapshot_copies_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        let write = store.db().begin_write().unwrap();
        write
            .open_table(BLOBS)
            .unwrap()
            .insert([7u8; 32], 2)
            .unwrap();
        write.commit().unwrap();
        let snapshot = store.snapshot().unwrap();
        assert_eq!(snapshot.blob_hashes().unwrap(), vec![[7u8; 32]]);
        let copy = dir.path().join("copy.redb");
        let stats = snapshot.write_to(&copy).unwrap();
        assert_eq!(
            stats.schema_version,
            super::super::migrations::latest_version()
        );
        assert!(
            stats
                .tables
                .iter()
                .any(|(name, rows)| *name == "blobs-1" && *rows == 1)
        );
        let copied = Store::open(&copy).unwrap();
        assert!(copied.blob_referenced([7u8; 32]).unwrap());
        assert!(snapshot.write_to(&copy).is_err(), "never overwrites");
    }
}
