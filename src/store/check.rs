//! Consistency checks of the database, all inside one snapshot: every row decodes, and the
//! secondary indexes agree with the rows they point at. Full scans: for `tasker check`, never
//! for a request path.

use std::collections::{BTreeSet, HashMap};

use redb::{
    Key, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use serde::de::DeserializeOwned;

use super::codec::decode;
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
        check_children::<Comment>(
            txn,
            COMMENTS,
            COMMENTS_BY_TASK,
            "comments",
            |c| c.task_id.as_u128(),
            &mut problems,
        )?;
        let attachments = check_children::<Attachment>(
            txn,
            ATTACHMENTS,
            ATTACHMENTS_BY_TASK,
            "attachments",
            |a| a.task_id.as_u128(),
            &mut problems,
        )?;

        let mut expected: HashMap<[u8; 32], u64> = HashMap::new();
        for attachment in &attachments {
            *expected.entry(attachment.sha256).or_default() += 1;
        }
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

fn decode_all<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<u128, &'static [u8]>,
    name: &str,
    problems: &mut Problems,
) -> Result<(), StoreError> {
    rows_of::<T>(txn, table, name, problems).map(|_| ())
}

/// Every task has its index entries, and every index entry points at a task that says so.
fn check_tasks(txn: &ReadTransaction, problems: &mut Problems) -> Result<(), StoreError> {
    let tasks: Vec<Task> = rows_of(txn, TASKS, "tasks", problems)?;
    let mut want: [BTreeSet<(u128, u128)>; 4] = Default::default();
    let mut want_status = BTreeSet::new();
    for task in &tasks {
        let id = task.id.as_u128();
        for assignee in &task.assignee_ids {
            want[0].insert((assignee.as_u128(), id));
        }
        want[1].insert((task.created_by.as_u128(), id));
        if let Some(project) = task.project_id {
            want[2].insert((project.as_u128(), id));
            want_status.insert((project.as_u128(), task.status as u8, id));
        }
        if let Some(team) = task.team_id {
            want[3].insert((team.as_u128(), id));
        }
    }
    let indexes = [
        (TASKS_BY_ASSIGNEE, "tasks_by_assignee"),
        (TASKS_BY_CREATOR, "tasks_by_creator"),
        (TASKS_BY_PROJECT, "tasks_by_project"),
        (TASKS_BY_TEAM, "tasks_by_team"),
    ];
    for ((table, name), want) in indexes.into_iter().zip(want) {
        let mut have = BTreeSet::new();
        for entry in txn.open_table(table)?.iter()? {
            have.insert(entry?.0.value());
        }
        for (key, task) in have.difference(&want) {
            problems.push(format!(
                "{name}: entry ({}, task {}) matches no task",
                uuid::Uuid::from_u128(*key),
                uuid::Uuid::from_u128(*task)
            ));
        }
        for (key, task) in want.difference(&have) {
            problems.push(format!(
                "{name}: task {} has no entry under {}",
                uuid::Uuid::from_u128(*task),
                uuid::Uuid::from_u128(*key)
            ));
        }
    }
    let mut have = BTreeSet::new();
    for entry in txn.open_table(TASKS_BY_PROJECT_STATUS)?.iter()? {
        have.insert(entry?.0.value());
    }
    for (_, _, task) in have.symmetric_difference(&want_status) {
        problems.push(format!(
            "tasks_by_project_status: entries for task {} do not match its project and status",
            uuid::Uuid::from_u128(*task)
        ));
    }
    check_board_and_sorts(txn, &tasks, problems)
}

/// Every task has a rank, distinct in its column, and its `tasks_by_rank` and `tasks_sorted`
/// entries are exactly those its row implies.
fn check_board_and_sorts(
    txn: &ReadTransaction,
    tasks: &[Task],
    problems: &mut Problems,
) -> Result<(), StoreError> {
    let (mut want_rank, mut want_sorted) = (BTreeSet::new(), BTreeSet::new());
    let mut ranks = BTreeSet::new();
    for task in tasks {
        if task.rank.is_unplaced() {
            problems.push(format!("tasks: task {} has no rank", task.id));
        } else if !ranks.insert((task.column().key(), task.rank.clone())) {
            problems.push(format!(
                "tasks: task {} shares its rank {} with another task of its column",
                task.id, task.rank
            ));
        }
        let keys = IndexKeys::of(task);
        want_rank.extend(keys.rank);
        want_sorted.extend(keys.sorted);
    }
    let mut have = BTreeSet::new();
    for entry in txn.open_table(TASKS_BY_RANK)?.iter()? {
        let (key, _) = entry?;
        let (kind, board, status, rank, task) = key.value();
        have.insert((kind, board, status, rank.to_string(), task));
    }
    for (_, _, _, rank, task) in have.symmetric_difference(&want_rank) {
        problems.push(format!(
            "tasks_by_rank: entry {rank} for task {} does not match its column and rank",
            uuid::Uuid::from_u128(*task)
        ));
    }
    let mut have = BTreeSet::new();
    for entry in txn.open_table(TASKS_SORTED)?.iter()? {
        have.insert(entry?.0.value());
    }
    for (_, _, sort, _, task) in have.symmetric_difference(&want_sorted) {
        problems.push(format!(
            "tasks_sorted: entry (sort {sort}) for task {} does not match its lists and fields",
            uuid::Uuid::from_u128(*task)
        ));
    }
    Ok(())
}

/// Rows that belong to a task (comments, attachments) and their `(task id, row id)` index
/// agree; returns the rows.
fn check_children<T: DeserializeOwned>(
    txn: &ReadTransaction,
    rows: TableDefinition<u128, &'static [u8]>,
    index: TableDefinition<(u128, u128), ()>,
    name: &str,
    task_of: impl Fn(&T) -> u128,
    problems: &mut Problems,
) -> Result<Vec<T>, StoreError> {
    let mut want = BTreeSet::new();
    let mut decoded = Vec::new();
    for entry in txn.open_table(rows)?.iter()? {
        let (id, row) = entry?;
        let id = id.value();
        match decode::<T>(name, row.value()) {
            Ok(value) => {
                want.insert((task_of(&value), id));
                decoded.push(value);
            }
            Err(e) => problems.push(format!("{e} (id {})", uuid::Uuid::from_u128(id))),
        }
    }
    let tasks = txn.open_table(TASKS)?;
    let mut have = BTreeSet::new();
    for entry in txn.open_table(index)?.iter()? {
        have.insert(entry?.0.value());
    }
    for (task, id) in have.symmetric_difference(&want) {
        problems.push(format!(
            "{name}_by_task: entry for {} under task {} does not match the rows",
            uuid::Uuid::from_u128(*id),
            uuid::Uuid::from_u128(*task)
        ));
    }
    for (task, id) in &want {
        if tasks.get(*task)?.is_none() {
            problems.push(format!(
                "{name}: {} belongs to task {} which does not exist",
                uuid::Uuid::from_u128(*id),
                uuid::Uuid::from_u128(*task)
            ));
        }
    }
    Ok(decoded)
}

fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}
