//! Comments (DESIGN.md section 3). Anyone who can see a task reads its comments; who may
//! comment, edit and delete is `domain::access`'s to say, asked inside the write transaction
//! that performs the change.

use chrono::Utc;

use super::teams::Write;
use super::{AuthUser, Error, Reach, Result, Service};
use crate::domain::access;
use crate::domain::comment::{Comment, parse_comment_body};
use crate::domain::page::Page;
use crate::domain::scope::{Access, Area};
use crate::domain::task::Task;
use crate::domain::team::TeamRole;
use crate::domain::{CommentId, TaskId, UserId, Validator};
use crate::store::{Created, StoreError, Tx};

/// A comment and what the caller may do with it.
#[derive(Debug, Clone)]
pub struct CommentView {
    pub comment: Comment,
    pub can_edit: bool,
    pub can_delete: bool,
}

/// What `me` may do with a comment on a task they can see.
fn comment_view(me: UserId, comment: Comment, task: &Task, role: Option<TeamRole>) -> CommentView {
    CommentView {
        can_edit: access::may_edit_comment(me, &comment),
        can_delete: access::may_delete_comment(me, &comment, task, role),
        comment,
    }
}

/// A comment `me` can see (they can see its task), its task and their role in the task's
/// team, read in the write's transaction; 404 otherwise.
fn comment_in(
    tx: &Tx<'_>,
    id: CommentId,
    me: UserId,
    reach: &Reach,
) -> Result<(Comment, Task, Option<TeamRole>)> {
    let comment = tx.comment(id)?.ok_or(Error::NotFound("comment"))?;
    let (task, role) = super::tasks::visible_in(tx, comment.task_id, me, reach, "comment")?;
    Ok((comment, task, role))
}

fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::NotFound => Error::NotFound("comment"),
        StoreError::Archived => Error::ProjectArchived,
        other => Error::Internal(other),
    }
}

impl Service {
    /// A task's comments, oldest first.
    pub async fn comments(
        &self,
        auth: &AuthUser,
        task: TaskId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<CommentView>> {
        let mut v = Validator::default();
        let (after, limit) = super::page_args(cursor, limit, &mut v);
        v.finish().map_err(Error::Validation)?;
        auth.allows(Area::Comments, Access::Read)?;
        let (current, role) = self.visible_task(auth, task).await?;
        let rows = self
            .store
            .run(move |s| s.comments_of_task(task, after, limit.get() + 1))
            .await?;
        let me = auth.user_id;
        Ok(Page::from_overfetch(rows, limit, |c| c.id.as_u128())
            .map(|c| comment_view(me, c, &current.task, role)))
    }

    /// Comments on a task: its creator and assignees, and the team's owners and admins.
    pub async fn create_comment(
        &self,
        auth: &AuthUser,
        task: TaskId,
        body: &str,
        idempotency_key: Option<&str>,
    ) -> Result<CommentView> {
        auth.allows(Area::Comments, Access::Write)?;
        let mut v = Validator::default();
        let body = v.check("body", parse_comment_body(body));
        v.finish().map_err(Error::Validation)?;
        let body = body.expect("validated");
        let idem = super::idempotency(
            auth,
            idempotency_key,
            serde_json::json!({"comment_on": task, "body": body}),
        )?;
        let (me, reach) = (auth.user_id, auth.reach());
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let (current, role) = super::tasks::visible_in(tx, task, me, &reach, "task")?;
                    if !access::may_comment(me, &current, role) {
                        return Err(Error::Forbidden(
                            "only the task's creator and assignees, and the team's owners and admins, may comment".into(),
                        ));
                    }
                    let now = Utc::now();
                    let comment = Comment {
                        id: CommentId::new(),
                        task_id: task,
                        author_id: me,
                        body,
                        created_at: now,
                        updated_at: now,
                        edited_at: None,
                        version: 1,
                    };
                    match tx
                        .create_comment(&comment, idem.as_ref())
                        .map_err(|e| super::create_error(e, "task"))?
                    {
                        Created::New(c) | Created::Replayed(c) => {
                            Ok(comment_view(me, c, &current, role))
                        }
                    }
                })
            })
            .await
    }

    /// A comment the caller can see (they can see its task), with its task.
    async fn visible_comment(
        &self,
        auth: &AuthUser,
        id: CommentId,
    ) -> Result<(CommentView, Task, Option<TeamRole>)> {
        let me = auth.user_id;
        match self.store.run(move |s| s.comment_for(id, me)).await? {
            Some((comment, task, role))
                if access::may_see_task(me, &task, role) && auth.reaches(task.team_id) =>
            {
                Ok((comment_view(me, comment, &task, role), task, role))
            }
            _ => Err(Error::NotFound("comment")),
        }
    }

    pub async fn comment(&self, auth: &AuthUser, id: CommentId) -> Result<CommentView> {
        auth.allows(Area::Comments, Access::Read)?;
        Ok(self.visible_comment(auth, id).await?.0)
    }

    /// Replaces a comment's body (its author only); sets `edited_at`.
    pub async fn update_comment(
        &self,
        auth: &AuthUser,
        id: CommentId,
        body: &str,
        expected_version: Option<u64>,
    ) -> Result<Write<CommentView, CommentView>> {
        auth.allows(Area::Comments, Access::Write)?;
        let mut v = Validator::default();
        let body = v.check("body", parse_comment_body(body));
        v.finish().map_err(Error::Validation)?;
        let body = body.expect("validated");
        let (me, reach) = (auth.user_id, auth.reach());
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let (comment, task, role) = comment_in(tx, id, me, &reach)?;
                    if !access::may_edit_comment(me, &comment) {
                        return Err(Error::Forbidden(
                            "only the comment's author may edit it".into(),
                        ));
                    }
                    if expected_version.is_some_and(|v| v != comment.version) {
                        return Ok(Write::Stale(comment_view(me, comment, &task, role)));
                    }
                    let comment = tx
                        .update_comment(id, body, me, Utc::now())
                        .map_err(store_error)?;
                    Ok(Write::Done(comment_view(me, comment, &task, role)))
                })
            })
            .await
    }

    /// Deletes a comment: its author, the task's creator, or a team owner or admin.
    pub async fn delete_comment(
        &self,
        auth: &AuthUser,
        id: CommentId,
        expected_version: Option<u64>,
    ) -> Result<Write<(), CommentView>> {
        auth.allows(Area::Comments, Access::Write)?;
        let (me, reach) = (auth.user_id, auth.reach());
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let (comment, task, role) = comment_in(tx, id, me, &reach)?;
                    if !access::may_delete_comment(me, &comment, &task, role) {
                        return Err(Error::Forbidden(
                            "only the comment's author, the task's creator and the team's owners and admins may delete it".into(),
                        ));
                    }
                    if expected_version.is_some_and(|v| v != comment.version) {
                        return Ok(Write::Stale(comment_view(me, comment, &task, role)));
                    }
                    tx.delete_comment(id, me, Utc::now()).map_err(store_error)?;
                    Ok(Write::Done(()))
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(creator: UserId, team: bool) -> Task {
        Task {
            team_id: team.then(crate::domain::TeamId::new),
            ..Task::sample(creator)
        }
    }

    fn comment(author: UserId) -> Comment {
        let now = Utc::now();
        Comment {
            id: CommentId::new(),
            task_id: TaskId::new(),
            author_id: author,
            body: "hi".into(),
            created_at: now,
            updated_at: now,
            edited_at: None,
            version: 1,
        }
    }

    #[test]
    fn who_may_edit_and_delete_a_comment() {
        let (author, creator, admin, member) =
            (UserId::new(), UserId::new(), UserId::new(), UserId::new());
        let t = task(creator, true);
        let by = |me, role| comment_view(me, comment(author), &t, role);
        let author_view = by(author, Some(TeamRole::Member));
        assert!(author_view.can_edit && author_view.can_delete);
        let creator_view = by(creator, Some(TeamRole::Member));
        assert!(!creator_view.can_edit && creator_view.can_delete);
        let admin_view = by(admin, Some(TeamRole::Admin));
        assert!(!admin_view.can_edit && admin_view.can_delete);
        let member_view = by(member, Some(TeamRole::Member));
        assert!(!member_view.can_edit && !member_view.can_delete);
    }
}
