//! Board order: a project's board (its status columns in rank order) and moving a task to a
//! place in a column. Who may move a task is who may edit it (`domain::access`), decided in
//! the write's transaction like an update.

use chrono::Utc;

use super::tasks::{Position, TaskView, store_error, view, view_as, visible_in};
use super::teams::Write;
use super::{AuthUser, Error, Result, Service};
use crate::domain::access;
use crate::domain::scope::{Access, Area};
use crate::domain::task::TaskStatus;
use crate::domain::{ProjectId, TaskId, Validator};
use crate::store::Place;

/// Tasks per board column when the caller does not say.
pub const DEFAULT_PER_COLUMN: u32 = 100;
/// The most tasks per board column one read returns.
pub const MAX_PER_COLUMN: u32 = 500;

/// Where a move puts a task: its new status, and either neighbours in that column or an end.
#[derive(Debug, Clone, Copy)]
pub struct TaskMove {
    pub status: TaskStatus,
    /// The task goes right after this one (in the target column).
    pub after_id: Option<TaskId>,
    /// The task goes right before this one (in the target column).
    pub before_id: Option<TaskId>,
    /// Without neighbours: the top (default) or bottom of the column.
    pub position: Option<Position>,
}

/// A status column of a board: its first tasks in rank order, and whether more follow.
#[derive(Debug, Clone)]
pub struct BoardColumn {
    pub status: TaskStatus,
    pub tasks: Vec<TaskView>,
    pub more: bool,
}

/// A project's board: one column per status, in the order of `TaskStatus::ALL`.
#[derive(Debug, Clone)]
pub struct Board {
    pub project_id: ProjectId,
    pub columns: Vec<BoardColumn>,
}

impl TaskMove {
    /// The place it names; 422 when it names both neighbours and an end.
    fn place(&self) -> Result<Place> {
        match (self.after_id, self.before_id, self.position) {
            (None, None, Some(Position::Bottom)) => Ok(Place::Bottom),
            (None, None, _) => Ok(Place::Top),
            (_, _, Some(_)) => Err(Error::invalid(
                "position",
                "give either position or before_id/after_id, not both",
            )),
            (after, before, None) => Ok(Place::Between { after, before }),
        }
    }
}

impl Service {
    /// Moves a task to a status and a place in that column of its board, in one write: the
    /// task's creator and assignees and its team's owners and admins (404 for who cannot see
    /// it, 403 for who may not edit it, 422 for a neighbour not in the column, then
    /// `Write::Stale` for a stale `expected_version`).
    pub async fn move_task(
        &self,
        auth: &AuthUser,
        id: TaskId,
        to: TaskMove,
        expected_version: Option<u64>,
    ) -> Result<Write<TaskView, TaskView>> {
        auth.allows(Area::Tasks, Access::Write)?;
        let place = to.place()?;
        let (me, reach) = (auth.user_id, auth.reach());
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let (current, role) = visible_in(tx, id, me, &reach, "task")?;
                    if !access::may_edit_task(me, &current, role) {
                        return Err(Error::Forbidden(
                            "only the task's creator and assignees, and the team's owners and admins, may move it".into(),
                        ));
                    }
                    let rank = tx
                        .rank_for_move(&current, to.status, place)?
                        .map_err(|why| Error::invalid(why.field, why.message))?;
                    if expected_version.is_some_and(|v| v != current.version) {
                        return Ok(Write::Stale(view_as(me, current, role)));
                    }
                    let task = tx
                        .move_task(id, me, Utc::now(), to.status, rank)
                        .map_err(store_error)?;
                    Ok(Write::Done(view_as(me, task, role)))
                })
            })
            .await
    }

    /// A project's board for a member of its team (404 for anyone else): each status column
    /// in rank order, at most `per_column` tasks each (default [`DEFAULT_PER_COLUMN`], 1 to
    /// [`MAX_PER_COLUMN`]).
    pub async fn board(
        &self,
        auth: &AuthUser,
        project_id: ProjectId,
        per_column: Option<u32>,
    ) -> Result<Board> {
        auth.allows(Area::Tasks, Access::Read)?;
        let mut v = Validator::default();
        let per_column = v
            .check(
                "per_column",
                match per_column.unwrap_or(DEFAULT_PER_COLUMN) {
                    n @ 1..=MAX_PER_COLUMN => Ok(n as usize),
                    _ => Err(format!("must be between 1 and {MAX_PER_COLUMN}")),
                },
            )
            .unwrap_or_default();
        v.finish().map_err(Error::Validation)?;
        let standing = self.standing(auth).await?;
        self.project_team(&standing, project_id).await?;
        let columns = self
            .store
            .run(move |s| s.board(project_id, per_column))
            .await?;
        Ok(Board {
            project_id,
            columns: columns
                .into_iter()
                .map(|c| BoardColumn {
                    status: c.status,
                    tasks: c.tasks.into_iter().map(|t| view(&standing, t)).collect(),
                    more: c.more,
                })
                .collect(),
        })
    }
}
