//! Task lists: every list is a merge of bounded range reads over the task indexes, read in
//! one snapshot, with a budget on how many entries one page examines. Sorted by creation a
//! list reads `TASKS_BY_*` (`(source, task id)`: id order is creation order); sorted by
//! `updated_at`, `due_date` or `priority` it reads the same sources' `TASKS_SORTED` ranges
//! (`(source kind, source, sort, key, task id)`), ties broken by id. Tasks without a due date
//! (key `u64::MAX`) come last in both directions: a descending read takes the dated part
//! backwards, then the undated part.
//!
//! A team has no index of its own: its tasks are exactly its projects' (a task has a team
//! when, and only when, it has a project, and takes the project's), so a team source is read
//! as one range per project (`PROJECTS_BY_TEAM`, in the same snapshot). The ranges are merged
//! through a heap (a team of a hundred projects is a hundred ranges), and a position two
//! ranges share (a task that is mine and in my team) is listed once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
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
    /// The tasks of a team's projects (read as its projects' ranges: see the module doc).
    Team(TeamId),
    /// A project's tasks of one status: in creation order, `TASKS_BY_PROJECT_STATUS` holds
    /// exactly those (a page of `status=done` reads no other rows); sorted otherwise, it is
    /// the project's list, which the caller filters by status.
    ProjectStatus(ProjectId, TaskStatus),
}

/// One index range a list reads: a [`TaskIndex`], with a team replaced by its projects.
#[derive(Debug, Clone, Copy)]
enum IndexRange {
    Assignee(u128),
    Creator(u128),
    Project(u128),
    ProjectStatus(u128, TaskStatus),
}

impl IndexRange {
    /// Its source kind in `TASKS_SORTED` keys (see `IndexKeys::of`) and its id.
    fn sorted_prefix(self) -> (u8, u128) {
        match self {
            IndexRange::Assignee(u) => (0, u),
            IndexRange::Creator(u) => (1, u),
            IndexRange::Project(p) | IndexRange::ProjectStatus(p, _) => (2, p),
        }
    }
}

/// The ranges of `sources`: a team's are its projects', read from `PROJECTS_BY_TEAM` in
/// `txn` (one bounded range per team).
fn ranges(
    txn: &redb::ReadTransaction,
    sources: &[TaskIndex],
) -> Result<Vec<IndexRange>, StoreError> {
    let mut ranges = Vec::with_capacity(sources.len());
    for source in sources {
        match *source {
            TaskIndex::Assignee(u) => ranges.push(IndexRange::Assignee(u.as_u128())),
            TaskIndex::Creator(u) => ranges.push(IndexRange::Creator(u.as_u128())),
            TaskIndex::Project(p) => ranges.push(IndexRange::Project(p.as_u128())),
            TaskIndex::ProjectStatus(p, status) => {
                ranges.push(IndexRange::ProjectStatus(p.as_u128(), status));
            }
            TaskIndex::Team(t) => {
                let t = t.as_u128();
                let projects = txn.open_table(PROJECTS_BY_TEAM)?;
                for entry in projects.range((t, 0)..=(t, u128::MAX))? {
                    ranges.push(IndexRange::Project(entry?.0.value().1));
                }
            }
        }
    }
    Ok(ranges)
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

/// The stream of one range in creation order, after `after`.
fn created_stream(
    txn: &redb::ReadTransaction,
    source: IndexRange,
    after: Option<ListPosition>,
    descending: bool,
) -> Result<Option<Stream>, StoreError> {
    let (table, prefix) = match source {
        IndexRange::Assignee(u) => (TASKS_BY_ASSIGNEE, u),
        IndexRange::Creator(u) => (TASKS_BY_CREATOR, u),
        IndexRange::Project(p) => (TASKS_BY_PROJECT, p),
        IndexRange::ProjectStatus(p, status) => {
            return status_stream(txn, p, status, after, descending);
        }
    };
    let Some((first, last)) = ids_after(after, descending) else {
        return Ok(None);
    };
    let index = txn.open_table(table)?;
    let ids = index.range((prefix, first)..=(prefix, last))?.map(|entry| {
        entry.map(|(key, _)| ListPosition {
            key: 0,
            id: key.value().1,
        })
    });
    Ok(Some(in_order(ids, descending)))
}

/// [`created_stream`] of a project's tasks of one status, from `TASKS_BY_PROJECT_STATUS`.
fn status_stream(
    txn: &redb::ReadTransaction,
    project: u128,
    status: TaskStatus,
    after: Option<ListPosition>,
    descending: bool,
) -> Result<Option<Stream>, StoreError> {
    let Some((first, last)) = ids_after(after, descending) else {
        return Ok(None);
    };
    let (p, s) = (project, status as u8);
    let index = txn.open_table(TASKS_BY_PROJECT_STATUS)?;
    let ids = index.range((p, s, first)..=(p, s, last))?.map(|entry| {
        entry.map(|(key, _)| ListPosition {
            key: 0,
            id: key.value().2,
        })
    });
    Ok(Some(in_order(ids, descending)))
}

/// The ids, first and last, a creation-order list has left after `after`; `None` when none.
fn ids_after(after: Option<ListPosition>, descending: bool) -> Option<(u128, u128)> {
    match (after.map(|a| a.id), descending) {
        (None, _) => Some((0, u128::MAX)),
        (Some(u128::MAX), false) | (Some(0), true) => None,
        (Some(a), false) => Some((a + 1, u128::MAX)),
        (Some(a), true) => Some((0, a - 1)),
    }
}

/// Positions read in id order, as a stream in the list's direction.
fn in_order(
    ids: impl DoubleEndedIterator<Item = Result<ListPosition, redb::StorageError>> + 'static,
    descending: bool,
) -> Stream {
    if descending {
        Box::new(ids.rev())
    } else {
        Box::new(ids)
    }
}

/// The stream of one range in a `TASKS_SORTED` order, after `after`.
fn sorted_stream(
    txn: &redb::ReadTransaction,
    source: IndexRange,
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
        let mut streams: Vec<Stream> = Vec::new();
        for range in ranges(&txn, sources)? {
            let stream = match order.sort {
                TaskSort::Created => created_stream(&txn, range, after, order.descending)?,
                _ => Some(sorted_stream(&txn, range, order, after)?),
            };
            streams.extend(stream);
        }
        // The next position of every stream that has one, smallest (in list order) on top.
        let mut heads = BinaryHeap::with_capacity(streams.len());
        for (i, stream) in streams.iter_mut().enumerate() {
            if let Some(at) = stream.next().transpose()? {
                heads.push(Reverse((order.place(at), i, at.key, at.id)));
            }
        }
        let mut tasks = Vec::new();
        let mut examined = 0;
        let mut last: Option<ListPosition> = None;
        loop {
            let Some(Reverse((_, i, key, id))) = heads.pop() else {
                return Ok(TaskScan {
                    tasks,
                    next_after: None,
                });
            };
            let at = ListPosition { key, id };
            if let Some(next) = streams[i].next().transpose()? {
                heads.push(Reverse((order.place(next), i, next.key, next.id)));
            }
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
pub(crate) mod tests {
    use chrono::{Duration, Utc};

    use super::*;
    use crate::domain::TaskId;
    use crate::domain::task::{Priority, TaskStatus};

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

    /// `n` tasks spread over `projects` (every seventh personal), half of them created by
    /// `me`, with update times, due dates (every fourth none) and priorities that repeat, so
    /// every order has ties for the id to break.
    pub(crate) fn spread_tasks(
        me: UserId,
        other: UserId,
        projects: &[(ProjectId, TeamId)],
        n: usize,
    ) -> Vec<Task> {
        let start = Utc::now();
        (0..n)
            .map(|i| {
                let placed = (i % 7 != 0).then(|| projects[i % projects.len()]);
                let priorities = [
                    Priority::Low,
                    Priority::Medium,
                    Priority::High,
                    Priority::Urgent,
                ];
                Task {
                    project_id: placed.map(|(p, _)| p),
                    team_id: placed.map(|(_, t)| t),
                    updated_at: start + Duration::seconds((i * 37 % 23) as i64),
                    due_date: (i % 4 != 0).then(|| start + Duration::days((i * 13 % 9) as i64)),
                    priority: priorities[i * 5 % 4],
                    ..Task::sample(if i % 2 == 0 { me } else { other })
                }
            })
            .collect()
    }

    /// The tasks `keep` accepts, in `order`, worked out here from their fields.
    fn expected(tasks: &[Task], keep: &dyn Fn(&Task) -> bool, order: TaskOrder) -> Vec<TaskId> {
        let mut list: Vec<&Task> = tasks.iter().filter(|t| keep(t)).collect();
        list.sort_by_key(|t| (t.sort_key(order.sort), t.id.as_u128()));
        if order.descending {
            list.reverse();
            // Undated tasks come last either way (reversed, they came first).
            let (undated, mut dated): (Vec<&Task>, Vec<&Task>) = list
                .into_iter()
                .partition(|t| order.sort == TaskSort::DueDate && t.due_date.is_none());
            dated.extend(undated);
            list = dated;
        }
        list.into_iter().map(|t| t.id).collect()
    }

    /// Pages through `sources` in every order, both ways, with pages of `limit` and a
    /// `budget`, and compares what comes back with [`expected`].
    pub(crate) fn assert_lists(
        store: &Store,
        sources: &[TaskIndex],
        tasks: &[Task],
        keep: &dyn Fn(&Task) -> bool,
        limit: usize,
        budget: usize,
    ) {
        let sorts = [
            TaskSort::Created,
            TaskSort::Updated,
            TaskSort::DueDate,
            TaskSort::Priority,
        ];
        for sort in sorts {
            for descending in [false, true] {
                let order = TaskOrder { sort, descending };
                let mut seen = Vec::new();
                let mut after = None;
                loop {
                    let page = store
                        .scan_tasks(sources, order, after, limit, budget, |_| true)
                        .unwrap();
                    assert!(page.tasks.len() <= limit);
                    seen.extend(page.tasks.iter().map(|t| t.id));
                    match page.next_after {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                assert_eq!(seen, expected(tasks, keep, order), "{order:?}");
            }
        }
    }

    /// A team's lists are its projects' lists merged: the same tasks in the same order as
    /// an index of the team's own would give, in every order and both directions, alone and
    /// merged with the creator's list (a task on both is listed once).
    #[test]
    fn a_team_lists_the_tasks_of_its_projects_in_every_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (team, owner) = crate::store::owned_team(&store);
        let (other_team, other_owner) = crate::store::owned_team(&store);
        let (team, me) = (team.id, owner.user_id);
        let mut projects: Vec<(ProjectId, TeamId)> = crate::store::projects_in(&store, team, me, 5)
            .into_iter()
            .map(|p| (p, team))
            .collect();
        let theirs = crate::store::projects_in(&store, other_team.id, other_owner.user_id, 2);
        projects.extend(theirs.into_iter().map(|p| (p, other_team.id)));
        let tasks = spread_tasks(me, UserId::new(), &projects, 90);
        store.import_tasks(&tasks).unwrap();

        let in_team = |t: &Task| t.team_id == Some(team);
        assert!(tasks.iter().filter(|t| in_team(t)).count() > 40);
        assert_lists(
            &store,
            &[TaskIndex::Team(team)],
            &tasks,
            &in_team,
            7,
            SCAN_BUDGET,
        );
        let mine_or_in_team = |t: &Task| t.team_id == Some(team) || t.created_by == me;
        let sources = [TaskIndex::Team(team), TaskIndex::Creator(me)];
        assert_lists(&store, &sources, &tasks, &mine_or_in_team, 6, SCAN_BUDGET);
        // Short budgets cut pages anywhere in the merge: still no gap, no repeat.
        assert_lists(&store, &sources, &tasks, &mine_or_in_team, 6, 4);
        // A team without projects lists nothing.
        let (empty, _) = crate::store::owned_team(&store);
        assert_lists(
            &store,
            &[TaskIndex::Team(empty.id)],
            &tasks,
            &|_| false,
            5,
            100,
        );
    }
}
