//! What the web app's task page reads beyond the JSON API's calls: what the caller may do with
//! a task (comment, attach: the rules of `domain::access`), and the names of the people a page
//! mentions (authors, actors, assignees).

use std::collections::HashMap;

use super::{AuthUser, Result, Service, TaskView};
use crate::domain::access;
use crate::domain::{TaskId, UserId};

/// A task and everything the caller may do with it.
#[derive(Debug, Clone)]
pub struct TaskAbilities {
    pub view: TaskView,
    pub can_comment: bool,
    pub can_attach: bool,
}

impl Service {
    /// A task the caller can see (404 otherwise), with what they may do with it.
    pub async fn task_abilities(&self, auth: &AuthUser, id: TaskId) -> Result<TaskAbilities> {
        auth.allows(
            crate::domain::scope::Area::Tasks,
            crate::domain::scope::Access::Read,
        )?;
        let (view, role) = self.visible_task(auth, id).await?;
        let me = auth.user_id;
        Ok(TaskAbilities {
            can_comment: access::may_comment(me, &view.task, role),
            can_attach: access::may_attach(me, &view.task, role),
            view,
        })
    }

    /// The names of the people the caller shares a team with, the caller included: whom a page
    /// may name. Anyone else (a former member) goes unnamed.
    pub async fn people_names(&self, auth: &AuthUser) -> Result<HashMap<UserId, String>> {
        auth.allows(
            crate::domain::scope::Area::Teams,
            crate::domain::scope::Access::Read,
        )?;
        let me = auth.user_id;
        let people = self.store.run(move |s| s.teammates_of(me)).await?;
        Ok(people
            .into_iter()
            .map(|u| (u.id, u.name.as_str().to_string()))
            .collect())
    }
}
