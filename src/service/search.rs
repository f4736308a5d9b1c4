//! Task search: the use case (parse, scope to what the caller may see, re-check every hit in
//! the database) and the indexer that keeps the index in step with the change log.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::tasks::{TaskView, parse_statuses, view};
use super::{AuthUser, Error, Result, Service};
use crate::domain::access::Standing;
use crate::domain::change::{ChangeAction, EntityKind};
use crate::domain::page::Page;
use crate::domain::scope::{Access, Area};
use crate::domain::task::TaskFilter;
use crate::domain::{Cursor, PageLimit, ProjectId, TaskId, UserId, Validator};
use crate::search::{MAX_COMMENT_TEXT, SearchError, SearchIndex, SearchRequest};
use crate::store::{Store, StoreError};

/// The deepest a client may page into one result list.
pub const MAX_SEARCH_OFFSET: usize = 10_000;
/// Change-log entries read per step of catching up.
const ENTRIES_PER_READ: usize = 2_000;
/// Entries applied per index commit while catching up from far behind.
const ENTRIES_PER_COMMIT: u64 = 50_000;
/// Tasks read per step of a rebuild.
const REBUILD_BATCH: usize = 1_000;
/// How often the indexer looks at the log even when nothing woke it.
const INDEXER_TICK: Duration = Duration::from_millis(500);
/// The least time between two index commits: under a stream of writes, each commit takes
/// what came in meanwhile, so commits (and the segments they write) stay few while a change
/// is still searchable well within a second.
const MIN_COMMIT_INTERVAL: Duration = Duration::from_millis(100);

/// A search as a client asks for it.
#[derive(Debug, Default)]
pub struct SearchQuery {
    pub q: Option<String>,
    /// Comma-separated statuses.
    pub status: Option<String>,
    pub project_id: Option<ProjectId>,
    pub assignee: Option<UserId>,
    pub label: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// One result: the task, its score, and the matched text marked.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub task: TaskView,
    pub score: f32,
    pub title: Option<String>,
    pub description: Option<String>,
}

/// Where the search index stands, for `/health`.
#[derive(Debug, Clone, Copy)]
pub struct IndexStatus {
    pub ready: bool,
    /// Committed change-log entries the index has not applied yet.
    pub lag: u64,
    /// A running rebuild's progress: tasks done and of how many.
    pub rebuilt: u64,
    pub rebuild_total: u64,
}

/// Why indexing stopped.
#[derive(Debug, thiserror::Error)]
pub enum IndexingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] SearchError),
}

/// How many searches run at once: one per core.
pub(super) fn search_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Service {
    /// Ranked search over the tasks the caller may see. The index narrows by team and personal
    /// visibility; every hit is then read from the database and checked again (rights and
    /// filters), so a stale index can hide a task for a moment but never show one it should not.
    pub async fn search_tasks(
        &self,
        auth: &AuthUser,
        query: SearchQuery,
    ) -> Result<Page<SearchHit>> {
        auth.allows(Area::Tasks, Access::Read)?;
        let search = self.search.clone();
        let mut v = Validator::default();
        let parsed = match query.q.as_deref() {
            Some(q) => v.check("q", search.parse(q)),
            None => {
                v.check::<()>("q", Err("is required".into()));
                None
            }
        };
        let limit = v
            .check("limit", PageLimit::parse(query.limit))
            .unwrap_or_default();
        let offset = query
            .cursor
            .as_deref()
            .and_then(|c| v.check("cursor", Cursor::parse(c)))
            .map_or(0, |c| c.key());
        let statuses = query
            .status
            .as_deref()
            .and_then(|s| v.check("status", parse_statuses(s)))
            .unwrap_or_default();
        let offset = v
            .check(
                "cursor",
                usize::try_from(offset)
                    .ok()
                    .filter(|o| *o <= MAX_SEARCH_OFFSET)
                    .ok_or_else(|| "is not a cursor returned by this server".to_string()),
            )
            .unwrap_or_default();
        v.finish().map_err(Error::Validation)?;
        let parsed = parsed.expect("validated");
        if !search.is_ready() {
            let (done, total) = search.rebuild_progress();
            return Err(Error::IndexRebuilding { done, total });
        }
        let (me, reach) = (auth.user_id, auth.reach());
        let (project, assignee, label) = (query.project_id, query.assignee, query.label);
        // Waits in line (first come, first served) rather than running alongside more
        // searches than there are cores.
        let _slot = self
            .searches
            .acquire()
            .await
            .map_err(|_| Error::Search("the server is shutting down".into()))?;
        self.store
            .run::<_, StoreError, _>(move |s| {
                let teams = s.teams_of_user(me, None, usize::MAX)?;
                let standing = Standing::new(
                    me,
                    teams
                        .into_iter()
                        .filter(|(t, _)| reach.covers(Some(t.id)))
                        .map(|(t, m)| (t.id, m.role)),
                );
                if let Some(project) = project {
                    let visible = s
                        .project(project)?
                        .is_some_and(|p| standing.sees_project(&p));
                    if !visible {
                        return Ok(Err(Error::NotFound("project")));
                    }
                }
                let request = SearchRequest {
                    query: parsed,
                    me,
                    teams: standing.team_ids().collect(),
                    filter: TaskFilter {
                        statuses,
                        project,
                        assignee,
                        label,
                    },
                };
                let hits = match search.search(&request, offset, limit.get() + 1) {
                    Ok(hits) => hits,
                    Err(e) => return Ok(Err(Error::Search(e.to_string()))),
                };
                let more = hits.len() > limit.get();
                let ids: Vec<TaskId> = hits.iter().take(limit.get()).map(|h| h.task).collect();
                let mut rows = s.tasks_by_ids(&ids)?.into_iter().peekable();
                let mut items = Vec::with_capacity(ids.len());
                let mut analyzer = crate::search::analyzer();
                for hit in hits.iter().take(limit.get()) {
                    let Some(task) = rows.next_if(|t| t.id == hit.task) else {
                        continue;
                    };
                    let keep = standing.sees_task(&task)
                        && reach.covers(task.team_id)
                        && request.filter.matches(&task);
                    if !keep {
                        continue;
                    }
                    items.push(SearchHit {
                        title: search.highlight_title(
                            &mut analyzer,
                            &request.query,
                            task.title.as_str(),
                        ),
                        description: search.highlight_description(
                            &mut analyzer,
                            &request.query,
                            &task.description,
                        ),
                        score: hit.score,
                        task: view(&standing, task),
                    });
                }
                let next = offset + limit.get();
                Ok(Ok(Page {
                    items,
                    next_cursor: (more && next <= MAX_SEARCH_OFFSET)
                        .then(|| Cursor::after(next as u128)),
                }))
            })
            .await?
    }

    /// Where the search index stands: cheap (no database read), for `/health`.
    pub fn index_status(&self) -> IndexStatus {
        let (rebuilt, rebuild_total) = self.search.rebuild_progress();
        IndexStatus {
            ready: self.search.is_ready(),
            lag: self.store.log_end().saturating_sub(self.search.applied()),
            rebuilt,
            rebuild_total,
        }
    }

    /// The indexer: the one owner of the index writer. Rebuilds the index first when it needs
    /// it (searches answer 503 meanwhile), then applies the change log as it grows, in
    /// batches, until `stop` changes; then applies what is left and commits.
    pub async fn run_indexer(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let search = self.search.clone();
        if search.needs_rebuild() {
            let started = Instant::now();
            let rebuilt = self
                .store
                .run::<_, StoreError, _>({
                    let search = search.clone();
                    move |s| Ok(rebuild_index(s, &search, |_, _| {}))
                })
                .await;
            match rebuilt.map_err(IndexingError::from).and_then(|r| r) {
                Ok(tasks) => {
                    // The rebuild's buffers are free now: the server serves without them.
                    crate::heap::give_back_free_memory();
                    tracing::info!(
                        tasks,
                        seconds = started.elapsed().as_secs_f64(),
                        "rebuilt the search index"
                    );
                }
                Err(e) => {
                    // Searches keep answering 503; the next start tries again.
                    tracing::error!(error = %e, "cannot rebuild the search index");
                    return;
                }
            }
        }
        let mut writes = self.store.writes();
        loop {
            if self.index_pending().await {
                tokio::time::sleep(MIN_COMMIT_INTERVAL).await;
            }
            tokio::select! {
                _ = writes.changed() => {}
                _ = tokio::time::sleep(INDEXER_TICK) => {}
                _ = stop.changed() => break,
            }
        }
        // Stopping: what was acknowledged before the stop is searchable after the restart
        // without a catch-up.
        self.index_pending().await;
    }

    /// Applies what the log has beyond the index, once it is durable. Returns whether there
    /// was anything to apply.
    async fn index_pending(&self) -> bool {
        let end = self.store.log_end();
        if end <= self.search.applied() {
            return false;
        }
        // An entry is indexed only once durable: the index never reflects a write a crash
        // could take back.
        if let Err(e) = self.store.flushed().await {
            tracing::error!(error = %e, "cannot index: the store did not flush");
            return true;
        }
        let search = self.search.clone();
        let applied = self
            .store
            .run::<_, StoreError, _>(move |s| Ok(apply_changes(s, &search, end)))
            .await;
        if let Err(e) = applied.map_err(IndexingError::from).and_then(|r| r) {
            tracing::error!(error = %e, "cannot update the search index");
        }
        true
    }
}

/// Rebuilds `index` from the database: empties it, adds every task in id order, and commits
/// as reflecting the log as it was when the rebuild began (entries after that are applied
/// again by the indexer; applying is an upsert from the current row, so that is harmless).
/// `progress` hears tasks done and the total. Returns how many tasks were indexed.
pub fn rebuild_index(
    store: &Store,
    index: &SearchIndex,
    mut progress: impl FnMut(u64, u64),
) -> std::result::Result<u64, IndexingError> {
    let start_seq = store.last_seq()?;
    let total = store.task_count()?;
    index.begin_rebuild(total)?;
    let mut after = None;
    let mut done = 0;
    loop {
        let batch = store.tasks_to_index_after(after, REBUILD_BATCH, MAX_COMMENT_TEXT)?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.id.as_u128());
        for (task, comments) in &batch {
            index.upsert(task, comments)?;
        }
        done += batch.len() as u64;
        index.rebuilt(batch.len() as u64);
        progress(done, total.max(done));
    }
    index.finish_rebuild(start_seq)?;
    Ok(done)
}

/// Applies the change log from the index's position up to `end`: every task a task or
/// comment entry names is re-read and upserted (or removed when gone). Commits every
/// [`ENTRIES_PER_COMMIT`] entries and at the end, with the last applied `seq`.
fn apply_changes(
    store: &Store,
    index: &SearchIndex,
    end: u64,
) -> std::result::Result<(), IndexingError> {
    let mut position = index.applied();
    while position < end {
        let chunk_end = end.min(position + ENTRIES_PER_COMMIT);
        let mut touched = BTreeSet::new();
        let mut at = position;
        while at < chunk_end {
            let entries = store.changes_between(at, chunk_end, ENTRIES_PER_READ)?;
            let Some(last) = entries.last() else { break };
            at = last.seq;
            for entry in &entries {
                let c = &entry.change;
                let task = match c.entity {
                    EntityKind::Task => Some(TaskId::from_uuid(c.entity_id)),
                    EntityKind::Comment => c.task_id.or_else(|| created_comment_task(c)),
                    _ => None,
                };
                touched.extend(task);
            }
        }
        let ids: Vec<TaskId> = touched.into_iter().collect();
        for (id, found) in store.tasks_to_index(&ids, MAX_COMMENT_TEXT)? {
            match found {
                Some((task, comments)) => index.upsert(&task, &comments)?,
                None => index.remove(id),
            }
        }
        index.commit(chunk_end)?;
        position = chunk_end;
    }
    Ok(())
}

/// The task of a comment entry written before entries named it: a creation records it.
fn created_comment_task(change: &crate::domain::change::NewChange) -> Option<TaskId> {
    if change.action != ChangeAction::Created {
        return None;
    }
    change
        .fields
        .iter()
        .find(|f| f.field == "task_id")
        .and_then(|f| serde_json::from_value(f.after.clone()).ok())
}
