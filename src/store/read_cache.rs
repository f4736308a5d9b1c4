//! Decoded task rows and team roles kept in memory, so `GET /tasks/{id}` usually answers
//! without a trip to the blocking pool (that trip, not redb, is most of a read's cost).
//!
//! Coherence rests on one generation counter and a pending mark. A writer records the task
//! ids it wrote and whether it changed a membership in its transaction's `Effects` (see
//! `tx.rs`; `TaskTables` and the membership writes note them). Just before its commit it bumps the generation, drops those entries
//! and marks them pending; while pending they are neither served nor filled, so readers go to
//! redb, which is consistent on its own. Just after the commit it bumps the generation again,
//! drops them again and clears the mark. A reader notes the generation *before* its read
//! transaction and keeps what it read only if the generation is unchanged at insert time
//! (checked under the lock the writer drops entries under). So an entry is either filled from
//! a snapshot no commit has overtaken, or dropped by the commit that overtook it, and no
//! request can see a row in redb and then an older one from here.

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
pub(super) const MAX_PICKED: usize = 1_024;

#[derive(Default)]
struct Tasks {
    rows: HashMap<TaskId, Arc<Task>>,
    bytes: usize,
    /// Tasks a commit in flight is writing (or the whole map, `all`): not served, not filled.
    pending: HashMap<TaskId, u32>,
    all_pending: u32,
}

impl Tasks {
    fn drop_rows(&mut self, ids: &[u128]) {
        if ids.len() > MAX_PICKED {
            self.rows.clear();
            self.bytes = 0;
            return;
        }
        for id in ids {
            if let Some(old) = self.rows.remove(&TaskId::from_u128(*id)) {
                self.bytes -= weight(&old);
            }
        }
    }

    fn is_pending(&self, id: TaskId) -> bool {
        self.all_pending > 0 || self.pending.contains_key(&id)
    }
}

#[derive(Default)]
struct Roles {
    map: HashMap<(TeamId, UserId), Option<TeamRole>>,
    /// Commits in flight that change memberships: roles are not served or filled meanwhile.
    pending: u32,
}

#[derive(Default)]
pub struct ReadCache {
    generation: AtomicU64,
    tasks: RwLock<Tasks>,
    roles: RwLock<Roles>,
}

/// What a commit in flight writes, between [`ReadCache::before_commit`] and
/// [`ReadCache::after_commit`].
pub(super) struct InFlight {
    tasks: Vec<u128>,
    members: bool,
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
            if tasks.is_pending(id) {
                return None;
            }
            Arc::clone(tasks.rows.get(&id)?)
        };
        let role = match task.team_id {
            Some(team) => {
                let roles = self.roles.read().unwrap_or_else(|e| e.into_inner());
                if roles.pending > 0 {
                    return None;
                }
                *roles.map.get(&(team, user))?
            }
            None => None,
        };
        Some((Task::clone(&task), role))
    }

    /// Keeps what a read that started at `ticket` found, unless a commit has happened since.
    pub fn fill(&self, ticket: Ticket, task: &Task, user: UserId, role: Option<TeamRole>) {
        {
            let mut tasks = self.tasks.write().unwrap_or_else(|e| e.into_inner());
            if self.generation.load(Ordering::SeqCst) != ticket.0 || tasks.is_pending(task.id) {
                return;
            }
            let added = weight(task);
            if tasks.bytes + added > MAX_TASK_BYTES {
                tasks.rows.clear();
                tasks.bytes = 0;
            }
            if let Some(old) = tasks.rows.insert(task.id, Arc::new(task.clone())) {
                tasks.bytes -= weight(&old);
            }
            tasks.bytes += added;
        }
        if let Some(team) = task.team_id {
            let mut roles = self.roles.write().unwrap_or_else(|e| e.into_inner());
            if self.generation.load(Ordering::SeqCst) != ticket.0 || roles.pending > 0 {
                return;
            }
            if roles.map.len() >= MAX_ROLES {
                roles.map.clear();
            }
            roles.map.insert((team, user), role);
        }
    }

    /// Called just before a commit becomes visible: what it wrote (`tasks`, and every role
    /// when `members` changed) is dropped and marked pending until
    /// [`ReadCache::after_commit`].
    pub(super) fn before_commit(&self, tasks: Vec<u128>, members: bool) -> InFlight {
        let in_flight = InFlight { tasks, members };
        if in_flight.tasks.is_empty() && !members {
            return in_flight;
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        if !in_flight.tasks.is_empty() {
            let mut tasks = self.tasks.write().unwrap_or_else(|e| e.into_inner());
            tasks.drop_rows(&in_flight.tasks);
            if in_flight.tasks.len() > MAX_PICKED {
                tasks.all_pending += 1;
            } else {
                for id in &in_flight.tasks {
                    *tasks.pending.entry(TaskId::from_u128(*id)).or_default() += 1;
                }
            }
        }
        if members {
            let mut roles = self.roles.write().unwrap_or_else(|e| e.into_inner());
            roles.map.clear();
            roles.pending += 1;
        }
        in_flight
    }

    /// Called once the commit is visible (or failed), before it is acknowledged: drops
    /// whatever was filled meanwhile and clears the pending marks.
    pub(super) fn after_commit(&self, in_flight: InFlight) {
        if in_flight.tasks.is_empty() && !in_flight.members {
            return;
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        if !in_flight.tasks.is_empty() {
            let mut tasks = self.tasks.write().unwrap_or_else(|e| e.into_inner());
            tasks.drop_rows(&in_flight.tasks);
            if in_flight.tasks.len() > MAX_PICKED {
                tasks.all_pending -= 1;
            } else {
                for id in &in_flight.tasks {
                    let id = TaskId::from_u128(*id);
                    if let Some(count) = tasks.pending.get_mut(&id) {
                        *count -= 1;
                        if *count == 0 {
                            tasks.pending.remove(&id);
                        }
                    }
                }
            }
        }
        if in_flight.members {
            let mut roles = self.roles.write().unwrap_or_else(|e| e.into_inner());
            roles.map.clear();
            roles.pending -= 1;
        }
    }

    /// Both halves at once (tests; a commit that is already visible).
    #[cfg(test)]
    fn committed(&self, tasks: Vec<u128>, members: bool) {
        let in_flight = self.before_commit(tasks, members);
        self.after_commit(in_flight);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::TaskTitle;

    fn task(team: Option<TeamId>) -> Task {
        Task {
            team_id: team,
            title: TaskTitle::parse("cached").unwrap(),
            ..Task::sample(UserId::new())
        }
    }

    #[test]
    fn a_fill_overtaken_by_a_commit_is_dropped() {
        let cache = ReadCache::default();
        let (t, user) = (task(None), UserId::new());
        let ticket = cache.ticket();
        cache.committed(vec![t.id.as_u128()], false);
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
        cache.committed(vec![a.id.as_u128()], false);
        assert!(cache.task_for(a.id, user).is_none());
        assert_eq!(
            cache.task_for(b.id, user).map(|(_, role)| role),
            Some(Some(TeamRole::Member))
        );
        cache.committed(vec![], true);
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

    #[test]
    fn nothing_is_served_or_filled_while_a_commit_is_in_flight() {
        let cache = ReadCache::default();
        let (t, user) = (task(None), UserId::new());
        cache.fill(cache.ticket(), &t, user, None);
        let in_flight = cache.before_commit(vec![t.id.as_u128()], false);
        assert!(
            cache.task_for(t.id, user).is_none(),
            "dropped before the commit shows"
        );
        cache.fill(cache.ticket(), &t, user, None);
        assert!(
            cache.task_for(t.id, user).is_none(),
            "not filled while pending"
        );
        cache.after_commit(in_flight);
        cache.fill(cache.ticket(), &t, user, None);
        assert!(cache.task_for(t.id, user).is_some());
    }
}
