//! Task lists: every list is a merge of bounded range reads over the task indexes, read in
//! one snapshot, with a budget on how many entries one page examines. Sorted by creation a
//! list reads `TASKS_BY_*` (`(source, task id)`: id order is creation order); sorted by
//! `updated_at`, `due_date` or `priority` it reads the same sources' `TASKS_SORTED` ranges
//! (`(source kind, source, sort, key, task id)`), ties broken by id. Tasks without a due date
//! (key `u64::MAX`) come last in both directions: a descending read takes the dated part
//! backwards, then the undated part.

use std::ops::Bound;

use redb::ReadableDatabase;

use super::codec::read_row;
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::task::{ListPosition, NO_DUE_DATE, Task, TaskSort, TaskStatus};
use crate::domain::{ProjectId, TeamId, UserId};

/// An index a task list can be read from, with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskIndex {
    Assignee(UserId),
    Creator(UserId),
    Project(ProjectId),
    Team(TeamId),
    /// A project's tasks of one status: in creation order, `TASKS_BY_PROJECT_STATUS` holds
    /// exactly those (a page of `status=done` reads no other rows); sorted otherwise, it is
    /// the project's list, which the caller filters by status.
    ProjectStatus(ProjectId, TaskStatus),
}

impl TaskIndex {
    /// Its source kind in `TASKS_SORTED` keys (see `IndexKeys::of`) and its id.
    fn sorted_prefix(self) -> (u8, u128) {
        match self {
            TaskIndex::Assignee(u) => (0, u.as_u128()),
            TaskIndex::Creator(u) => (1, u.as_u128()),
            TaskIndex::Project(p) | TaskIndex::ProjectStatus(p, _) => (2, p.as_u128()),
            TaskIndex::Team(t) => (3, t.as_u128()),
        }
    }
}

/// A list's order: what it sorts by, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskOrder {
    pub sort: TaskSort,
    pub descending: bool,
}

impl TaskOrder {
    /// Where `(key, id)` comes in this order, as a value that grows along the list.
    fn place(self, at: ListPosition) -> (bool, u64, u128) {
        let undated = self.sort == TaskSort::DueDate && at.key == NO_DUE_DATE;
        if self.descending {
            (undated, !at.key, !at.id)
        } else {
            (undated, at.key, at.id)
        }
    }
}

/// The most index entries one list request examines before it answers with what it found
/// (and a cursor to continue from).
pub const SCAN_BUDGET: usize = 20_000;

/// Positions read from one index range, in list order.
type Stream = Box<dyn Iterator<Item = Result<ListPosition, redb::StorageError>>>;

/// One page of a task list: the matches, and where the next page starts.
#[derive(Debug)]
pub struct TaskScan {
    pub tasks: Vec<Task>,
    pub next_after: Option<ListPosition>,
}

/// The stream of one source in creation order, after `after`.
fn created_stream(
    txn: &redb::ReadTransaction,
    source: TaskIndex,
    after: Option<ListPosition>,
    descending: bool,
) -> Result<Option<Stream>, StoreError> {
    let (table, prefix) = match source {
        TaskIndex::Assignee(u) => (TASKS_BY_ASSIGNEE, u.as_u128()),
        TaskIndex::Creator(u) => (TASKS_BY_CREATOR, u.as_u128()),
        TaskIndex::Project(p) => (TASKS_BY_PROJECT, p.as_u128()),
        TaskIndex::Team(t) => (TASKS_BY_TEAM, t.as_u128()),
        TaskIndex::ProjectStatus(p, status) => {
            return status_stream(txn, p, status, after, descending);
        }
    };
    let index = txn.open_table(table)?;
    let range = match (after.map(|a| a.id), descending) {
        (None, _) => index.range((prefix, 0)..=(prefix, u128::MAX))?,
        (Some(a), false) if a == u128::MAX => return Ok(None),
        (Some(a), false) => index.range((prefix, a + 1)..=(prefix, u128::MAX))?,
        (Some(0), true) => return Ok(None),
        (Some(a), true) => index.range((prefix, 0)..=(prefix, a - 1))?,
    };
    let ids = range.map(|entry| {
        entry.map(|(key, _)| ListPosition {
            key: 0,
            id: key.value().1,
        })
    });
    Ok(Some(if descending {
        Box::new(ids.rev())
    } else {
        Box::new(ids)
    }))
}

/// [`created_stream`] of a project's tasks of one status, from `TASKS_BY_PROJECT_STATUS`.
fn status_stream(
    txn: &redb::ReadTransaction,
    project: ProjectId,
    status: TaskStatus,
    after: Option<ListPosition>,
    descending: bool,
) -> Result<Option<Stream>, StoreError> {
    let index = txn.open_table(TASKS_BY_PROJECT_STATUS)?;
    let (p, s) = (project.as_u128(), status as u8);
    let range = match (after.map(|a| a.id), descending) {
        (None, _) => index.range((p, s, 0)..=(p, s, u128::MAX))?,
        (Some(a), false) if a == u128::MAX => return Ok(None),
        (Some(a), false) => index.range((p, s, a + 1)..=(p, s, u128::MAX))?,
        (Some(0), true) => return Ok(None),
        (Some(a), true) => index.range((p, s, 0)..=(p, s, a - 1))?,
    };
    let ids = range.map(|entry| {
        entry.map(|(key, _)| ListPosition {
            key: 0,
            id: key.value().2,
        })
    });
    Ok(Some(if descending {
        Box::new(ids.rev())
    } else {
        Box::new(ids)
    }))
}

/// The stream of one source in a `TASKS_SORTED` order, after `after`.
fn sorted_stream(
    txn: &redb::ReadTransaction,
    source: TaskIndex,
    order: TaskOrder,
    after: Option<ListPosition>,
) -> Result<Stream, StoreError> {
    let index = txn.open_table(TASKS_SORTED)?;
    let (kind, id) = source.sorted_prefix();
    let tag = order.sort.tag();
    let key = |at: ListPosition| (kind, id, tag, at.key, at.id);
    let first = key(ListPosition { key: 0, id: 0 });
    let last = key(ListPosition {
        key: u64::MAX,
        id: u128::MAX,
    });
    let positions = |range: redb::Range<'static, (u8, u128, u8, u64, u128), ()>| {
        range.map(|entry| {
            entry.map(|(k, _)| {
                let (_, _, _, key, id) = k.value();
                ListPosition { key, id }
            })
        })
    };
    if !order.descending {
        let start = after.map_or(Bound::Included(first), |a| Bound::Excluded(key(a)));
        return Ok(Box::new(positions(
            index.range((start, Bound::Included(last)))?,
        )));
    }
    // Descending: the part with keys below `NO_DUE_DATE` backwards, then (only due dates
    // have any) the undated part, also backwards.
    let undated = key(ListPosition {
        key: NO_DUE_DATE,
        id: 0,
    });
    let (dated_end, undated_end) = match after {
        None => (Some(Bound::Excluded(undated)), Bound::Included(last)),
        Some(a) if a.key == NO_DUE_DATE => (None, Bound::Excluded(key(a))),
        Some(a) => (Some(Bound::Excluded(key(a))), Bound::Included(last)),
    };
    let undated_part = match after {
        Some(a) if a.key == NO_DUE_DATE && a.id == 0 => None,
        _ => Some(index.range((Bound::Included(undated), undated_end))?),
    };
    let dated_part = match dated_end {
        Some(end) => Some(index.range((Bound::Included(first), end))?),
        None => None,
    };
    let dated = dated_part.into_iter().flat_map(move |r| positions(r).rev());
    let undated = undated_part
        .into_iter()
        .flat_map(move |r| positions(r).rev());
    Ok(Box::new(dated.chain(undated)))
}

impl Store {
    /// Reads tasks from the union of `sources` in `order`, starting after `after`, keeping
    /// those `keep` accepts, until `limit + 1` are found or `budget` entries were examined
    /// (the API uses [`SCAN_BUDGET`]). `next_after` is where the next page starts: after the
    /// last returned task, or after the last examined entry when the budget ran out, so
    /// paging never repeats or skips a task (a task edited between two pages moves in an
    /// `updated` list: it is listed where it is when each page is read).
    pub fn scan_tasks(
        &self,
        sources: &[TaskIndex],
        order: TaskOrder,
        after: Option<ListPosition>,
        limit: usize,
        budget: usize,
        keep: impl Fn(&Task) -> bool,
    ) -> Result<TaskScan, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(TASKS)?;
        let mut streams: Vec<std::iter::Peekable<Stream>> = Vec::new();
        for source in sources {
            let stream = match order.sort {
                TaskSort::Created => created_stream(&txn, *source, after, order.descending)?,
                _ => Some(sorted_stream(&txn, *source, order, after)?),
            };
            streams.extend(stream.map(Iterator::peekable));
        }
        let mut tasks = Vec::new();
        let mut examined = 0;
        let mut last: Option<ListPosition> = None;
        loop {
            // The next position of the merged streams, in list order.
            let mut best: Option<(usize, ListPosition)> = None;
            for (i, stream) in streams.iter_mut().enumerate() {
                match stream.peek() {
                    Some(Ok(at)) if best.is_none_or(|(_, b)| order.place(*at) < order.place(b)) => {
                        best = Some((i, *at));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) => {
                        return Err(stream
                            .next()
                            .expect("peeked")
                            .expect_err("peeked an error")
                            .into());
                    }
                    None => {}
                }
            }
            let Some((i, at)) = best else {
                return Ok(TaskScan {
                    tasks,
                    next_after: None,
                });
            };
            streams[i].next();
            if last == Some(at) {
                continue;
            }
            last = Some(at);
            examined += 1;
            if let Some(task) = read_row::<Task>(&rows, "tasks", at.id)?.filter(|t| keep(t)) {
                tasks.push(task);
                if tasks.len() > limit {
                    tasks.truncate(limit);
                    let next = tasks.last().map(|t| ListPosition {
                        key: t.sort_key(order.sort),
                        id: t.id.as_u128(),
                    });
                    return Ok(TaskScan {
                        tasks,
                        next_after: next,
                    });
                }
            }
            if examined >= budget {
                return Ok(TaskScan {
                    tasks,
                    next_after: Some(at),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TaskId;
    use crate::domain::task::TaskStatus;

    fn task(creator: UserId, assignee: UserId, done: bool) -> Task {
        Task {
            status: if done {
                TaskStatus::Done
            } else {
                TaskStatus::Todo
            },
            assignee_ids: vec![assignee],
            ..Task::sample(creator)
        }
    }

    /// With a tiny budget, pages come back short but paging still visits every match once.
    #[test]
    fn a_spent_budget_gives_short_pages_never_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (me, other) = (UserId::new(), UserId::new());
        // Two sources that overlap: tasks I created, and tasks assigned to me.
        let tasks: Vec<Task> = (0..40)
            .map(|i| {
                task(
                    if i % 2 == 0 { me } else { other },
                    if i % 3 == 0 { me } else { other },
                    i % 5 == 0,
                )
            })
            .collect();
        store.import_tasks(&tasks).unwrap();
        let expected: Vec<TaskId> = tasks
            .iter()
            .filter(|t| {
                (t.created_by == me || t.is_assigned_to(me)) && t.status == TaskStatus::Done
            })
            .map(|t| t.id)
            .collect();
        let sources = [TaskIndex::Creator(me), TaskIndex::Assignee(me)];
        let mut seen = Vec::new();
        let mut after = None;
        let mut short_pages = 0;
        loop {
            let page = store
                .scan_tasks(&sources, TaskOrder::default(), after, 4, 3, |t| {
                    t.status == TaskStatus::Done
                })
                .unwrap();
            short_pages += usize::from(page.tasks.len() < 4 && page.next_after.is_some());
            seen.extend(page.tasks.iter().map(|t| t.id));
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected);
        assert!(short_pages > 0, "the budget cut some pages short");
    }
}
