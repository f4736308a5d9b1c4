//! Reads that feed the search index: tasks with their comment text, by id or in id order
//! (a rebuild), and the tasks a search found.

use redb::{ReadTransaction, ReadableDatabase};

use super::codec::{decode, read_row};
use super::tables::{COMMENTS, COMMENTS_BY_TASK, TASKS};
use super::{Store, StoreError};
use crate::domain::TaskId;
use crate::domain::comment::Comment;
use crate::domain::task::Task;

/// A task as the index needs it: the row and its comment bodies, oldest first.
pub type IndexedTask = (Task, Vec<String>);

/// The comment bodies of `task`, oldest first, up to about `budget` bytes.
fn comment_bodies(
    txn: &ReadTransaction,
    task: u128,
    budget: usize,
) -> Result<Vec<String>, StoreError> {
    let by_task = txn.open_table(COMMENTS_BY_TASK)?;
    let rows = txn.open_table(COMMENTS)?;
    let mut bodies = Vec::new();
    let mut left = budget;
    for entry in by_task.range((task, 0)..=(task, u128::MAX))? {
        let id = entry?.0.value().1;
        if let Some(comment) = read_row::<Comment>(&rows, "comments", id)? {
            if comment.body.len() > left {
                break;
            }
            left -= comment.body.len();
            bodies.push(comment.body);
        }
    }
    Ok(bodies)
}

impl Store {
    /// For each id, the task with its comments, or `None` when it is gone: one snapshot.
    pub fn tasks_to_index(
        &self,
        ids: &[TaskId],
        comment_budget: usize,
    ) -> Result<Vec<(TaskId, Option<IndexedTask>)>, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(TASKS)?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let found = match read_row::<Task>(&rows, "tasks", id.as_u128())? {
                Some(task) => {
                    let comments = comment_bodies(&txn, id.as_u128(), comment_budget)?;
                    Some((task, comments))
                }
                None => None,
            };
            out.push((id, found));
        }
        Ok(out)
    }

    /// Up to `limit` tasks with ids after `after`, in id order, with their comments: how a
    /// rebuild walks the whole table, one bounded read at a time.
    pub fn tasks_to_index_after(
        &self,
        after: Option<u128>,
        limit: usize,
        comment_budget: usize,
    ) -> Result<Vec<IndexedTask>, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(TASKS)?;
        let start = after.map_or(0, |a| a.saturating_add(1));
        if after == Some(u128::MAX) {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(limit);
        for entry in rows.range(start..)?.take(limit) {
            let (id, row) = entry?;
            let task: Task = decode("tasks", row.value())?;
            let comments = comment_bodies(&txn, id.value(), comment_budget)?;
            out.push((task, comments));
        }
        Ok(out)
    }

    /// The tasks of `ids` that still exist, in the order given: one snapshot.
    pub fn tasks_by_ids(&self, ids: &[TaskId]) -> Result<Vec<Task>, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(TASKS)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(task) = read_row(&rows, "tasks", id.as_u128())? {
                out.push(task);
            }
        }
        Ok(out)
    }
}
