//! Decoded task rows and team roles kept in memory, so `GET /tasks/{id}` usually answers
//! without a trip to the blocking pool (that trip, not redb, is most of a read's cost).
//!
//! Coherence rests on one generation counter. A writer records the task ids it wrote and
//! whether it changed a membership (thread-locals set by `TaskTables` and the membership
//! helpers); after its commit is visible it bumps the generation, *then* drops those
//! entries, all before the write is acknowledged. A reader notes the generation *before* its
//! read transaction and keeps what it read only if the generation is unchanged at insert
//! time (checked under the same lock the writer drops entries under). So an entry is either
//! filled from a snapshot no commit has overtaken, or dropped by the commit that overtook it:
//! a hit never returns a row older than an acknowledged write.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::domain::task::Task;
use crate::domain::team::TeamRole;
use crate::domain::{TaskId, TeamId, UserId};

/// Approximate bytes of task text kept before the cache is emptied (it refills on demand).
const MAX_TASK_BYTES: usize = 64 << 20;
/// Roles kept before that map is emptied.
const MAX_ROLES: usize = 200_000;
/// A write that touched more tasks than this empties the task map instead of picking.
const MAX_PICKED: usize = 1_024;

thread_local! {
    /// Task ids written by the write transaction on this thread.
    static TOUCHED_TASKS: RefCell<Vec<u128>> = const { RefCell::new(Vec::new()) };
    /// Whether that transaction added, changed or removed a membership.
    static MEMBERS_CHANGED: Cell<bool> = const { Cell::new(false) };
}

pub(super) fn mark_task_written(id: u128) {
    TOUCHED_TASKS.with(|t| t.borrow_mut().push(id));
}

pub(super) fn mark_members_changed() {
    MEMBERS_CHANGED.with(|c| c.set(true));
}

/// Forgets marks left by a transaction that never committed.
pub(super) fn reset_marks() {
    TOUCHED_TASKS.with(|t| t.borrow_mut().clear());
    MEMBERS_CHANGED.with(|c| c.set(false));
}

#[derive(Default)]
struct Tasks {
    rows: HashMap<TaskId, Arc<Task>>,
    bytes: usize,
}

#[derive(Default)]
pub struct ReadCache {
    generation: AtomicU64,
    tasks: RwLock<Tasks>,
    roles: RwLock<HashMap<(TeamId, UserId), Option<TeamRole>>>,
}

/// The generation a read started at; pass it back when filling.
#[derive(Clone, Copy)]
pub struct Ticket(u64);

fn weight(task: &Task) -> usize {
    let labels: usize = task.labels.iter().map(|l| l.len()).sum();
    256 + task.title.as_str().len() + task.description.len() + labels + 16 * task.assignee_ids.len()
}

impl ReadCache {
    /// Call before opening the read transaction whose results may be cached.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::SeqCst))
    }

    /// The task and `user`'s role in its team, when both are cached.
    pub fn task_for(&self, id: TaskId, user: UserId) -> Option<(Task, Option<TeamRole>)> {
        let task = {
            let tasks = self.tasks.read().unwrap_or_else(|e| e.into_inner());
            Arc::clone(tasks.rows.get(&id)?)
        };
        let role = match task.team_id {
            Some(team) => *self
                .roles
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(team, user))?,
            None => None,
        };
        Some((Task::clone(&task), role))
    }

    /// Keeps what a read that started at `ticket` found, unless a commit has happened since.
    pub fn fill(&self, ticket: Ticket, task: &Task, user: UserId, role: Option<TeamRole>) {
        {
            let mut tasks = self.tasks.write().unwrap_or_else(|e| e.into_inner());
            if self.generation.load(Ordering::SeqCst) != ticket.0 {
                return;
            }
            let added = weight(task);
            if tasks.bytes + added > MAX_TASK_BYTES {
                *tasks = Tasks::default();
            }
            if let Some(old) = tasks.rows.insert(task.id, Arc::new(task.clone())) {
                tasks.bytes -= weight(&old);
            }
            tasks.bytes += added;
        }
        if let Some(team) = task.team_id {
            let mut roles = self.roles.write().unwrap_or_else(|e| e.into_inner());
            if self.generation.load(Ordering::SeqCst) != ticket.0 {
                return;
            }
            if roles.len() >= MAX_ROLES {
                roles.clear();
            }
            roles.insert((team, user), role);
        }
    }

    /// Called after a commit is visible and before it is acknowledged: invalidates what it
    /// wrote (the marks left on this thread).
    pub(super) fn committed(&self) {
        let touched = TOUCHED_TASKS.with(|t| std::mem::take(&mut *t.borrow_mut()));
        let members = MEMBERS_CHANGED.with(|c| c.replace(false));
        if touched.is_empty() && !members {
            return;
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        if !touched.is_empty() {
            let mut tasks = self.tasks.write().unwrap_or_else(|e| e.into_inner());
            if touched.len() > MAX_PICKED {
                *tasks = Tasks::default();
            } else {
                for id in touched {
                    if let Some(old) = tasks.rows.remove(&TaskId::from_u128(id)) {
                        tasks.bytes -= weight(&old);
                    }
                }
            }
        }
        if members {
            self.roles
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::{Priority, TaskStatus, TaskTitle};
    use chrono::Utc;

    fn task(team: Option<TeamId>) -> Task {
        let now = Utc::now();
        Task {
            id: TaskId::new(),
            team_id: team,
            project_id: None,
            title: TaskTitle::parse("cached").unwrap(),
            description: String::new(),
            status: TaskStatus::Todo,
            priority: Priority::Medium,
            due_date: None,
            labels: Vec::new(),
            assignee_ids: Vec::new(),
            created_by: UserId::new(),
            created_at: now,
            updated_at: now,
            version: 1,
            comment_count: 0,
            attachment_count: 0,
        }
    }

    #[test]
    fn a_fill_overtaken_by_a_commit_is_dropped() {
        let cache = ReadCache::default();
        let (t, user) = (task(None), UserId::new());
        let ticket = cache.ticket();
        mark_task_written(t.id.as_u128());
        cache.committed();
        cache.fill(ticket, &t, user, None);
        assert!(cache.task_for(t.id, user).is_none());
        cache.fill(cache.ticket(), &t, user, None);
        assert!(cache.task_for(t.id, user).is_some());
    }

    #[test]
    fn a_commit_drops_the_tasks_it_wrote_and_every_role_when_members_changed() {
        let cache = ReadCache::default();
        let (team, user) = (TeamId::new(), UserId::new());
        let (a, b) = (task(Some(team)), task(Some(team)));
        cache.fill(cache.ticket(), &a, user, Some(TeamRole::Member));
        cache.fill(cache.ticket(), &b, user, Some(TeamRole::Member));
        mark_task_written(a.id.as_u128());
        cache.committed();
        assert!(cache.task_for(a.id, user).is_none());
        assert_eq!(
            cache.task_for(b.id, user).map(|(_, role)| role),
            Some(Some(TeamRole::Member))
        );
        mark_members_changed();
        cache.committed();
        assert!(
            cache.task_for(b.id, user).is_none(),
            "the role must be read again"
        );
    }

    #[test]
    fn a_cached_role_is_per_user() {
        let cache = ReadCache::default();
        let team = TeamId::new();
        let t = task(Some(team));
        cache.fill(cache.ticket(), &t, UserId::new(), Some(TeamRole::Owner));
        assert!(cache.task_for(t.id, UserId::new()).is_none());
    }
}
