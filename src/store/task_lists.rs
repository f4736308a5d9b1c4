//! Task lists: every list is a merge of bounded range reads over the task indexes
//! (`TASKS_BY_*`), read in one snapshot, with a budget on how many entries one page examines.

use redb::ReadableDatabase;

use super::codec::read_row;
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::task::Task;
use crate::domain::{ProjectId, TeamId, UserId};

/// An index a task list can be read from, with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskIndex {
    Assignee(UserId),
    Creator(UserId),
    Project(ProjectId),
    Team(TeamId),
}

/// The most index entries one list request examines before it answers with what it found
/// (and a cursor to continue from).
pub const SCAN_BUDGET: usize = 20_000;

/// Task ids read from one index range, in list order.
type IdStream = Box<dyn Iterator<Item = Result<u128, redb::StorageError>>>;

/// One page of a task list: the matches, and where the next page starts.
#[derive(Debug)]
pub struct TaskScan {
    pub tasks: Vec<Task>,
    pub next_after: Option<u128>,
}

impl Store {
    /// Reads tasks from the union of `sources` in id order (newest first when `descending`),
    /// starting after `after`, keeping those `keep` accepts, until `limit + 1` are found or
    /// `budget` entries were examined (the API uses [`SCAN_BUDGET`]). `next_after` is where the next page starts:
    /// after the last returned task, or after the last examined entry when the budget ran
    /// out, so paging never repeats or skips a task.
    pub fn scan_tasks(
        &self,
        sources: &[TaskIndex],
        after: Option<u128>,
        descending: bool,
        limit: usize,
        budget: usize,
        keep: impl Fn(&Task) -> bool,
    ) -> Result<TaskScan, StoreError> {
        let txn = self.db().begin_read()?;
        let rows = txn.open_table(TASKS)?;
        let mut streams: Vec<std::iter::Peekable<IdStream>> = Vec::new();
        for source in sources {
            let (table, prefix) = match *source {
                TaskIndex::Assignee(u) => (TASKS_BY_ASSIGNEE, u.as_u128()),
                TaskIndex::Creator(u) => (TASKS_BY_CREATOR, u.as_u128()),
                TaskIndex::Project(p) => (TASKS_BY_PROJECT, p.as_u128()),
                TaskIndex::Team(t) => (TASKS_BY_TEAM, t.as_u128()),
            };
            let index = txn.open_table(table)?;
            let range = match (after, descending) {
                (None, _) => index.range((prefix, 0)..=(prefix, u128::MAX))?,
                (Some(a), false) if a == u128::MAX => continue,
                (Some(a), false) => index.range((prefix, a + 1)..=(prefix, u128::MAX))?,
                (Some(0), true) => continue,
                (Some(a), true) => index.range((prefix, 0)..=(prefix, a - 1))?,
            };
            let ids = range.map(|entry| entry.map(|(key, _)| key.value().1));
            let stream: IdStream = if descending {
                Box::new(ids.rev())
            } else {
                Box::new(ids)
            };
            streams.push(stream.peekable());
        }
        let mut tasks = Vec::new();
        let mut examined = 0;
        let mut last: Option<u128> = None;
        loop {
            // The next id of the merged streams (smallest, or largest when descending).
            let mut best: Option<(usize, u128)> = None;
            for (i, stream) in streams.iter_mut().enumerate() {
                match stream.peek() {
                    Some(Ok(id)) => {
                        let better =
                            best.is_none_or(|(_, b)| if descending { *id > b } else { *id < b });
                        if better {
                            best = Some((i, *id));
                        }
                    }
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
            let Some((i, id)) = best else {
                return Ok(TaskScan {
                    tasks,
                    next_after: None,
                });
            };
            streams[i].next();
            if last == Some(id) {
                continue;
            }
            last = Some(id);
            examined += 1;
            if let Some(task) = read_row::<Task>(&rows, "tasks", id)?.filter(|t| keep(t)) {
                tasks.push(task);
                if tasks.len() > limit {
                    tasks.truncate(limit);
                    let next = tasks.last().map(|t| t.id.as_u128());
                    return Ok(TaskScan {
                        tasks,
                        next_after: next,
                    });
                }
            }
            if examined >= budget {
                return Ok(TaskScan {
                    tasks,
                    next_after: Some(id),
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
                .scan_tasks(&sources, after, false, 4, 3, |t| {
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
