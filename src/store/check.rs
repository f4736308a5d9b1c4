//! Consistency checks of the database, all inside one snapshot: every row decodes, and the
//! secondary indexes agree with the rows they point at. Full scans: for `tasker check`, never
//! for a request path.

use std::collections::{BTreeSet, HashMap};

use redb::{
    Key, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use serde::de::DeserializeOwned;

use super::codec::decode;
use super::migrations::{TEAM_LISTS_DROPPED, TEAM_SOURCE};
use super::snapshot::Snapshot;
use super::tables::*;
use super::tasks::IndexKeys;
use super::{StoreError, snapshot};
use crate::domain::attachment::Attachment;
use crate::domain::change::Change;
use crate::domain::comment::Comment;
use crate::domain::notification::Notification;
use crate::domain::project::Project;
use crate::domain::task::Task;
use crate::domain::team::{Invitation, Membership, Team};
use crate::domain::{Session, User};

/// What the database checks found.
#[derive(Debug, Default)]
pub struct DbCheck {
    /// Rows per table, in [`snapshot::table_names`] order.
    pub rows: Vec<(&'static str, u64)>,
    /// One line per problem; empty when all is well.
    pub problems: Vec<String>,
    /// Reference count per blob hash, as the BLOBS table records it.
    pub blob_refs: HashMap<[u8; 32], u64>,
}

/// Where the bytes of one table go, from redb's [`redb::TableStats`] (a walk of the table's
/// B-tree pages, not of its entries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableUsage {
    pub name: &'static str,
    pub entries: u64,
    /// Keys and values as stored in leaf pages.
    pub stored_bytes: u64,
    /// Keys in branch pages and other per-page bookkeeping.
    pub metadata_bytes: u64,
    /// The unused parts of the table's pages (half-full pages after random-order inserts).
    pub fragmented_bytes: u64,
    /// Leaf and branch pages.
    pub pages: u64,
}

impl TableUsage {
    /// Every byte the table's pages take in the file.
    pub fn total_bytes(&self) -> u64 {
        self.stored_bytes + self.metadata_bytes + self.fragmented_bytes
    }
}

/// Problems listed per check before the rest are only counted.
const MAX_LISTED: usize = 20;

struct Problems {
    lines: Vec<String>,
    unlisted: usize,
}

impl Problems {
    fn push(&mut self, line: String) {
        if self.lines.len() < MAX_LISTED {
            self.lines.push(line);
        } else {
            self.unlisted += 1;
        }
    }
}

impl Snapshot {
    /// The storage use of every table this build knows, in [`snapshot::table_names`] order
    /// then the retired ones (a table the file does not have is left out). Walks each table's pages, never its
    /// entries: memory is bounded by the tree's height.
    pub fn storage(&self) -> Result<Vec<TableUsage>, StoreError> {
        let txn = self.txn();
        let mut usage = Vec::new();
        macro_rules! usage_all {
            ($($table:ident),*) => {$(
                if let Some(table) = table_usage(txn, $table, $table.name())? {
                    usage.push(table);
                }
            )*};
        }
        snapshot::for_each_table!(usage_all);
        snapshot::for_each_retired_table!(usage_all);
        Ok(usage)
    }

    /// Walks every table of the snapshot (see the module doc).
    pub fn check(&self) -> Result<DbCheck, StoreError> {
        let txn = self.txn();
        let mut problems = Problems {
            lines: Vec::new(),
            unlisted: 0,
        };
        let mut rows = Vec::new();
        macro_rules! count_all {
            ($($table:ident),*) => {$(
                rows.push(($table.name(), count(txn, $table)?));
            )*};
        }
        snapshot::for_each_table!(count_all);

        let users: Vec<User> = rows_of(txn, USERS, "users", &mut problems)?;
        decode_all::<Session>(txn, SESSIONS, "sessions", &mut problems)?;
        decode_all::<Team>(txn, TEAMS, "teams", &mut problems)?;
        decode_all::<Invitation>(txn, INVITATIONS, "invitations", &mut problems)?;
        decode_all::<Project>(txn, PROJECTS, "projects", &mut problems)?;
        decode_all::<super::OutboxEntry>(txn, OUTBOX, "outbox", &mut problems)?;
        decode_all::<super::OutboxEntry>(txn, OUTBOX_FAILED, "outbox_failed", &mut problems)?;
        for entry in txn.open_table(CHANGES)?.iter()? {
            let (seq, row) = entry?;
            if let Err(e) = decode::<Change>("changes", row.value()) {
                problems.push(format!("change {}: {e}", seq.value()));
            }
        }
        for entry in txn.open_table(TEAM_MEMBERS)?.iter()? {
            let (_, row) = entry?;
            if let Err(e) = decode::<Membership>("team_members", row.value()) {
                problems.push(e.to_string());
            }
        }
        for entry in txn.open_table(NOTIFICATIONS)?.iter()? {
            let (_, row) = entry?;
            if let Err(e) = decode::<Notification>("notifications", row.value()) {
                problems.push(e.to_string());
            }
        }

        let by_email = txn.open_table(USERS_BY_EMAIL)?;
        for user in &users {
            if by_email.get(user.email.as_str())?.map(|v| v.value()) != Some(user.id.as_u128()) {
                problems.push(format!(
                    "users_by_email: no entry for user {} ({})",
                    user.id,
                    user.email.as_str()
                ));
            }
        }
        if by_email.len()? != users.len() as u64 {
            problems.push(format!(
                "users_by_email has {} entries for {} users",
                by_email.len()?,
                users.len()
            ));
        }

        check_tasks(txn, &mut problems)?;
        check_access_tokens(txn, &mut problems)?;
        check_children::<Comment>(
            txn,
            COMMENTS,
            COMMENTS_BY_TASK,
            "comments",
            |c| c.task_id.as_u128(),
            |_| {},
            &mut problems,
        )?;
        let mut expected: HashMap<[u8; 32], u64> = HashMap::new();
        check_children::<Attachment>(
            txn,
            ATTACHMENTS,
            ATTACHMENTS_BY_TASK,
            "attachments",
            |a| a.task_id.as_u128(),
            |a| *expected.entry(a.sha256).or_default() += 1,
            &mut problems,
        )?;
        let mut blob_refs = HashMap::new();
        for entry in txn.open_table(BLOBS)?.iter()? {
            let (hash, refs) = entry?;
            blob_refs.insert(hash.value(), refs.value());
        }
        let hashes: BTreeSet<_> = expected.keys().chain(blob_refs.keys()).collect();
        for hash in hashes {
            let (want, have) = (
                expected.get(hash).copied().unwrap_or(0),
                blob_refs.get(hash).copied().unwrap_or(0),
            );
            if want != have {
                problems.push(format!(
                    "blob {}: reference count {have}, but {want} attachment(s) point at it",
                    hex(hash)
                ));
            }
        }

        let mut lines = problems.lines;
        if problems.unlisted > 0 {
            lines.push(format!("... and {} more problems", problems.unlisted));
        }
        Ok(DbCheck {
            rows,
            problems: lines,
            blob_refs,
        })
    }
}

/// Every access token decodes and has its hash and user index entries, and every index entry
/// points at a token that names it.
fn check_access_tokens(txn: &ReadTransaction, problems: &mut Problems) -> Result<(), StoreError> {
    use crate::domain::scope::AccessToken;
    match txn.open_table(ACCESS_TOKENS) {
        // A store from before migration 11 has no tokens to check.
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let tokens: Vec<AccessToken> = rows_of(txn, ACCESS_TOKENS, "access_tokens", problems)?;
    let by_hash = txn.open_table(ACCESS_TOKENS_BY_HASH)?;
    let by_user = txn.open_table(ACCESS_TOKENS_BY_USER)?;
    let ids: HashMap<u128, &AccessToken> = tokens.iter().map(|t| (t.id.as_u128(), t)).collect();
    for token in &tokens {
        let id = token.id.as_u128();
        if by_hash.get(token.token_hash.as_str())?.map(|v| v.value()) != Some(id) {
            problems.push(format!(
                "access_tokens_by_hash: no entry for token {}",
                token.id
            ));
        }
        if by_user.get((token.user_id.as_u128(), id))?.is_none() {
            problems.push(format!(
                "access_tokens_by_user: no entry for token {}",
                token.id
            ));
        }
    }
    for entry in by_hash.iter()? {
        let (hash, id) = entry?;
        if ids
            .get(&id.value())
            .is_none_or(|t| t.token_hash != hash.value())
        {
            problems.push(format!(
                "access_tokens_by_hash: entry for missing token {}",
                uuid::Uuid::from_u128(id.value())
            ));
        }
    }
    for entry in by_user.iter()? {
        let (user, id) = entry?.0.value();
        if ids.get(&id).is_none_or(|t| t.user_id.as_u128() != user) {
            problems.push(format!(
                "access_tokens_by_user: entry for missing token {}",
                uuid::Uuid::from_u128(id)
            ));
        }
    }
    Ok(())
}

fn count<K: Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64, StoreError> {
    match txn.open_table(table) {
        Ok(t) => Ok(t.len()?),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

fn table_usage<K: Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
    name: &'static str,
) -> Result<Option<TableUsage>, StoreError> {
    let opened = match txn.open_table(table) {
        Ok(opened) => opened,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let stats = opened.stats()?;
    Ok(Some(TableUsage {
        name,
        entries: opened.len()?,
        stored_bytes: stats.stored_bytes(),
        metadata_bytes: stats.metadata_bytes(),
        fragmented_bytes: stats.fragmented_bytes(),
        pages: stats.leaf_pages() + stats.branch_pages(),
    }))
}

/// Decodes every row of an id-keyed JSON table, reporting those that do not decode.
fn rows_of<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<u128, &'static [u8]>,
    name: &str,
    problems: &mut Problems,
) -> Result<Vec<T>, StoreError> {
    let mut rows = Vec::new();
    for entry in txn.open_table(table)?.iter()? {
        let (id, row) = entry?;
        match decode(name, row.value()) {
            Ok(value) => rows.push(value),
            Err(e) => problems.push(format!("{e} (id {})", uuid::Uuid::from_u128(id.value()))),
        }
    }
    Ok(rows)
}

/// Like [`rows_of`], keeping nothing.
fn decode_all<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<u128, &'static [u8]>,
    name: &str,
    problems: &mut Problems,
) -> Result<(), StoreError> {
    for entry in txn.open_table(table)?.iter()? {
        let (id, row) = entry?;
        if let Err(e) = decode::<T>(name, row.value()) {
            problems.push(format!("{e} (id {})", uuid::Uuid::from_u128(id.value())));
        }
    }
    Ok(())
}

/// Every task has its index entries, and every index entry points at a task that says so.
///
/// In bounded memory, whatever the number of tasks: each task's entries are looked up
/// (forward), and each index holds exactly as many entries as the rows imply; only when it
/// holds more is it walked entry by entry, each checked against its task's row (backward).
///
/// A file not yet at migration 16 still has the team lists that migration removes
/// (`TASKS_SORTED` entries of source kind 3, and a `tasks_by_team` table): they are left
/// unchecked there, as the next start deletes them.
fn check_tasks(txn: &ReadTransaction, problems: &mut Problems) -> Result<(), StoreError> {
    let tasks = txn.open_table(TASKS)?;
    let (assignee, creator, project, status, rank, sorted) = (
        txn.open_table(TASKS_BY_ASSIGNEE)?,
        txn.open_table(TASKS_BY_CREATOR)?,
        txn.open_table(TASKS_BY_PROJECT)?,
        txn.open_table(TASKS_BY_PROJECT_STATUS)?,
        txn.open_table(TASKS_BY_RANK)?,
        txn.open_table(TASKS_SORTED)?,
    );
    let team_lists_left = super::migrations::version_in(txn)? < TEAM_LISTS_DROPPED;
    // Entries the rows imply, per index, in the order of `expected` below.
    let mut implied = [0u64; 6];
    for entry in tasks.iter()? {
        let (id, row) = entry?;
        let task: Task = match decode("tasks", row.value()) {
            Ok(task) => task,
            Err(e) => {
                problems.push(format!("{e} (id {})", uuid::Uuid::from_u128(id.value())));
                continue;
            }
        };
        if task.rank.is_unplaced() {
            problems.push(format!("tasks: task {} has no rank", task.id));
        }
        let keys = IndexKeys::of(&task);
        let pairs = [
            (&assignee, &keys.assignee, "tasks_by_assignee"),
            (&creator, &keys.creator, "tasks_by_creator"),
            (&project, &keys.project, "tasks_by_project"),
        ];
        for (i, (table, want, name)) in pairs.into_iter().enumerate() {
            implied[i] += want.len() as u64;
            for (key, task) in want {
                if table.get((*key, *task))?.is_none() {
                    problems.push(format!(
                        "{name}: task {} has no entry under {}",
                        uuid::Uuid::from_u128(*task),
                        uuid::Uuid::from_u128(*key)
                    ));
                }
            }
        }
        implied[3] += keys.project_status.len() as u64;
        for key in &keys.project_status {
            if status.get(*key)?.is_none() {
                problems.push(format!(
                    "tasks_by_project_status: entries for task {} do not match its project and status",
                    task.id
                ));
            }
        }
        implied[4] += keys.rank.len() as u64;
        for (kind, board, column, at, id) in &keys.rank {
            if rank
                .get((*kind, *board, *column, at.as_str(), *id))?
                .is_none()
            {
                problems.push(format!(
                    "tasks_by_rank: entry {at} for task {} does not match its column and rank",
                    task.id
                ));
            }
        }
        implied[5] += keys.sorted.len() as u64;
        for key in &keys.sorted {
            if sorted.get(*key)?.is_none() {
                problems.push(format!(
                    "tasks_sorted: entry (sort {}) for task {} does not match its lists and fields",
                    key.2, task.id
                ));
            }
        }
    }

    // Two tasks of one column with the same rank are neighbours in `tasks_by_rank`.
    let mut previous: Option<(u8, u128, u8, String)> = None;
    for entry in rank.iter()? {
        let (key, _) = entry?;
        let (kind, board, column, at, task) = key.value();
        let here = (kind, board, column, at.to_string());
        if previous.as_ref() == Some(&here) {
            problems.push(format!(
                "tasks: task {} shares its rank {at} with another task of its column",
                uuid::Uuid::from_u128(task)
            ));
        }
        previous = Some(here);
    }

    // Entries no row implies: only looked for when an index holds more than the rows imply.
    let row_of = |id: u128| -> Result<Option<IndexKeys>, StoreError> {
        Ok(match tasks.get(id)? {
            Some(row) => decode::<Task>("tasks", row.value())
                .ok()
                .map(|t| IndexKeys::of(&t)),
            None => None,
        })
    };
    let pair_indexes: [(&Table2, PairKeys, &str); 3] = [
        (&assignee, |k| &k.assignee, "tasks_by_assignee"),
        (&creator, |k| &k.creator, "tasks_by_creator"),
        (&project, |k| &k.project, "tasks_by_project"),
    ];
    for (i, (table, keys_of, name)) in pair_indexes.into_iter().enumerate() {
        if table.len()? <= implied[i] {
            continue;
        }
        for entry in table.iter()? {
            let (key, task) = entry?.0.value();
            if !row_of(task)?.is_some_and(|keys| keys_of(&keys).contains(&(key, task))) {
                problems.push(format!(
                    "{name}: entry ({}, task {}) matches no task",
                    uuid::Uuid::from_u128(key),
                    uuid::Uuid::from_u128(task)
                ));
            }
        }
    }
    if status.len()? > implied[3] {
        for entry in status.iter()? {
            let key = entry?.0.value();
            if !row_of(key.2)?.is_some_and(|keys| keys.project_status.contains(&key)) {
                problems.push(format!(
                    "tasks_by_project_status: entries for task {} do not match its project and status",
                    uuid::Uuid::from_u128(key.2)
                ));
            }
        }
    }
    if rank.len()? > implied[4] {
        for entry in rank.iter()? {
            let entry = entry?;
            let (kind, board, column, at, task) = entry.0.value();
            let key = (kind, board, column, at.to_string(), task);
            if !row_of(task)?.is_some_and(|keys| keys.rank.contains(&key)) {
                problems.push(format!(
                    "tasks_by_rank: entry {at} for task {} does not match its column and rank",
                    uuid::Uuid::from_u128(task)
                ));
            }
        }
    }
    if sorted.len()? > implied[5] {
        for entry in sorted.iter()? {
            let key = entry?.0.value();
            if key.0 == TEAM_SOURCE && team_lists_left {
                continue;
            }
            if !row_of(key.4)?.is_some_and(|keys| keys.sorted.contains(&key)) {
                problems.push(format!(
                    "tasks_sorted: entry (sort {}) for task {} does not match its lists and fields",
                    key.2,
                    uuid::Uuid::from_u128(key.4)
                ));
            }
        }
    }
    Ok(())
}

/// A `(u128, u128) -> ()` index table, read-only.
type Table2 = redb::ReadOnlyTable<(u128, u128), ()>;
/// The keys of one such table among a task's [`IndexKeys`].
type PairKeys = fn(&IndexKeys) -> &BTreeSet<(u128, u128)>;

/// Rows that belong to a task (comments, attachments) and their `(task id, row id)` index
/// agree, and their tasks exist; `each` sees every row that decodes. In bounded memory, like
/// [`check_tasks`].
fn check_children<T: DeserializeOwned>(
    txn: &ReadTransaction,
    rows: TableDefinition<u128, &'static [u8]>,
    index: TableDefinition<(u128, u128), ()>,
    name: &str,
    task_of: impl Fn(&T) -> u128,
    mut each: impl FnMut(&T),
    problems: &mut Problems,
) -> Result<(), StoreError> {
    let tasks = txn.open_table(TASKS)?;
    let index = txn.open_table(index)?;
    let rows = txn.open_table(rows)?;
    let mut implied = 0u64;
    for entry in rows.iter()? {
        let (id, row) = entry?;
        let id = id.value();
        let value = match decode::<T>(name, row.value()) {
            Ok(value) => value,
            Err(e) => {
                problems.push(format!("{e} (id {})", uuid::Uuid::from_u128(id)));
                continue;
            }
        };
        let task = task_of(&value);
        each(&value);
        implied += 1;
        if index.get((task, id))?.is_none() {
            problems.push(format!(
                "{name}_by_task: entry for {} under task {} does not match the rows",
                uuid::Uuid::from_u128(id),
                uuid::Uuid::from_u128(task)
            ));
        }
        if tasks.get(task)?.is_none() {
            problems.push(format!(
                "{name}: {} belongs to task {} which does not exist",
                uuid::Uuid::from_u128(id),
                uuid::Uuid::from_u128(task)
            ));
        }
    }
    if index.len()? > implied {
        for entry in index.iter()? {
            let (task, id) = entry?.0.value();
            let matches = match rows.get(id)? {
                Some(row) => decode::<T>(name, row.value()).is_ok_and(|v| task_of(&v) == task),
                None => false,
            };
            if !matches {
                problems.push(format!(
                    "{name}_by_task: entry for {} under task {} does not match the rows",
                    uuid::Uuid::from_u128(id),
                    uuid::Uuid::from_u128(task)
                ));
            }
        }
    }
    Ok(())
}

fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}
