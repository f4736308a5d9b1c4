//! Projects (DESIGN.md section 3): a project belongs to one team; who sees, creates, edits,
//! archives and deletes it is `domain::access`'s to say, on the roles read through the write
//! transaction that performs a write. An archived project is read-only until it is
//! reactivated.

use chrono::Utc;

use super::teams::Write;
use super::{AuthUser, Error, Result, Service};
use crate::domain::access;
use crate::domain::page::Page;
use crate::domain::project::{Project, ProjectName, ProjectStatus, parse_project_description};
use crate::domain::scope::{Access, Area};
use crate::domain::team::TeamRole;
use crate::domain::{ProjectId, TeamId, UserId, Validator};
use crate::store::{Created, StoreError, Tx};

pub struct NewProject {
    pub team_id: TeamId,
    pub name: String,
    pub description: Option<String>,
}

#[derive(Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: Option<ProjectStatus>,
}

/// A project and what the caller may do with it.
#[derive(Debug, Clone)]
pub struct ProjectView {
    pub project: Project,
    /// The caller may edit, archive and delete it.
    pub can_edit: bool,
}

fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::NotFound => Error::NotFound("project"),
        StoreError::Archived => Error::ProjectArchived,
        StoreError::IdempotencyKeyReused => Error::IdempotencyKeyReused,
        StoreError::IdempotentResourceGone => Error::IdempotentResourceGone,
        other => Error::Internal(other),
    }
}

/// `user`'s role in `team` as `tx` sees it (`None`: not a member, or no such team).
fn role_in_tx(tx: &Tx<'_>, team: TeamId, user: UserId) -> Result<Option<TeamRole>> {
    if tx.team(team)?.is_none() {
        return Ok(None);
    }
    Ok(tx.membership(team, user)?.map(|m| m.role))
}

/// Creates `project` on its creator's behalf, if `domain::access` allows it on the role `tx`
/// reads (404 `team` otherwise), or replays an earlier create with the same key.
fn create_in(
    tx: &Tx<'_>,
    project: &Project,
    idem: Option<&crate::store::Idempotency>,
) -> Result<ProjectView> {
    let role = role_in_tx(tx, project.team_id, project.created_by)?;
    if !access::may_create_in_team(role) {
        return Err(Error::NotFound("team"));
    }
    let created = tx
        .create_project(project, idem)
        .map_err(|e| super::create_error(e, "team"))?;
    let project = match created {
        Created::New(project) | Created::Replayed(project) => project,
    };
    Ok(ProjectView {
        can_edit: access::may_edit_project(project.created_by, &project, role),
        project,
    })
}

/// Project `id` as `tx` sees it, where `actor` may edit it: 404 when they may not see it,
/// then 403 when they may not change it. Returns it with `actor`'s role in its team.
fn editable_in(tx: &Tx<'_>, id: ProjectId, actor: UserId) -> Result<(Project, Option<TeamRole>)> {
    let Some(project) = tx.project(id)? else {
        return Err(Error::NotFound("project"));
    };
    let role = role_in_tx(tx, project.team_id, actor)?;
    if !access::may_see_project(role) {
        return Err(Error::NotFound("project"));
    }
    if !access::may_edit_project(actor, &project, role) {
        return Err(Error::Forbidden(
            "only the project's creator and the team's owners and admins may change it".into(),
        ));
    }
    Ok((project, role))
}

/// `project` as `actor` (whose role in its team is `role`) sees it.
fn view(actor: UserId, project: Project, role: Option<TeamRole>) -> ProjectView {
    ProjectView {
        can_edit: access::may_edit_project(actor, &project, role),
        project,
    }
}

/// Applies `apply` to project `id` on `actor`'s behalf, if `domain::access` allows it on the
/// role `tx` reads; `valid` is the body's validation, answered after the permission.
fn update_in(
    tx: &Tx<'_>,
    id: ProjectId,
    actor: UserId,
    valid: Result<()>,
    expected_version: Option<u64>,
    apply: impl FnOnce(&mut Project) -> Result<(), StoreError>,
) -> Result<Write<ProjectView, ProjectView>> {
    let (current, role) = editable_in(tx, id, actor)?;
    valid?;
    match tx.update_project(id, expected_version, actor, Utc::now(), apply) {
        Ok(project) => Ok(Write::Done(view(actor, project, role))),
        Err(StoreError::Stale) => Ok(Write::Stale(view(actor, current, role))),
        Err(e) => Err(store_error(e)),
    }
}

/// Deletes project `id` on `actor`'s behalf, if `domain::access` allows it on the role `tx`
/// reads.
fn delete_in(
    tx: &Tx<'_>,
    id: ProjectId,
    actor: UserId,
    expected_version: Option<u64>,
) -> Result<Write<(), ProjectView>> {
    let (current, role) = editable_in(tx, id, actor)?;
    match tx.delete_project(id, expected_version, actor, Utc::now()) {
        Ok(()) => Ok(Write::Done(())),
        Err(StoreError::Stale) => Ok(Write::Stale(view(actor, current, role))),
        Err(e) => Err(store_error(e)),
    }
}

impl Service {
    /// 404 for a project outside the teams a token is limited to (a project never changes
    /// team, so this read before the write holds for it). Free for everyone else.
    async fn reach_project(&self, auth: &AuthUser, id: ProjectId) -> Result<()> {
        if !auth.team_limited() {
            return Ok(());
        }
        match self.store.run(move |s| s.project(id)).await? {
            Some(p) if auth.reaches_team(p.team_id) => Ok(()),
            _ => Err(Error::NotFound("project")),
        }
    }

    /// The caller's role in `team` (`None`: not a member).
    /// A token limited to other teams has none.
    async fn role_in(&self, auth: &AuthUser, team: TeamId) -> Result<Option<TeamRole>> {
        if !auth.reaches_team(team) {
            return Ok(None);
        }
        let user = auth.user_id;
        Ok(
            match self.store.run(move |s| s.team_for(team, user)).await? {
                Some((_, membership)) => membership.map(|m| m.role),
                None => None,
            },
        )
    }

    /// Creates a project in one of the caller's teams.
    pub async fn create_project(
        &self,
        auth: &AuthUser,
        input: NewProject,
        idempotency_key: Option<&str>,
    ) -> Result<ProjectView> {
        auth.allows(Area::Projects, Access::Write)?;
        if !auth.reaches_team(input.team_id) {
            return Err(Error::NotFound("team"));
        }
        let content = serde_json::json!([
            "project",
            input.team_id.to_string(),
            input.name,
            input.description
        ]);
        let idem = super::idempotency(auth, idempotency_key, content)?;
        let mut v = Validator::default();
        let name = v.check("name", ProjectName::parse(&input.name));
        let description = v.check(
            "description",
            parse_project_description(input.description.as_deref().unwrap_or("")),
        );
        v.finish().map_err(Error::Validation)?;
        let now = Utc::now();
        let project = Project {
            id: ProjectId::new(),
            team_id: input.team_id,
            name: name.expect("validated"),
            description: description.expect("validated"),
            status: ProjectStatus::Active,
            created_by: auth.user_id,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.store
            .run(move |s| s.write(|tx| create_in(tx, &project, idem.as_ref())))
            .await
    }

    /// Projects of the caller's teams (or of one of them), oldest first.
    pub async fn projects(
        &self,
        auth: &AuthUser,
        team: Option<TeamId>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<ProjectView>> {
        auth.allows(Area::Projects, Access::Read)?;
        let mut v = Validator::default();
        let (after, limit) = super::page_args(cursor, limit, &mut v);
        v.finish().map_err(Error::Validation)?;
        let user = auth.user_id;
        let memberships = self
            .store
            .run(move |s| s.teams_of_user(user, None, usize::MAX))
            .await?;
        let teams: Vec<TeamId> = memberships
            .iter()
            .map(|(t, _)| t.id)
            .filter(|id| team.is_none_or(|wanted| wanted == *id) && auth.reaches_team(*id))
            .collect();
        let rows = self
            .store
            .run(move |s| s.projects_of_teams(&teams, after, limit.get() + 1))
            .await?;
        let page = Page::from_overfetch(rows, limit, |p| p.id.as_u128());
        Ok(page.map(|project| {
            let role = memberships
                .iter()
                .find(|(t, _)| t.id == project.team_id)
                .map(|(_, m)| m.role);
            let can_edit = access::may_edit_project(user, &project, role);
            ProjectView { project, can_edit }
        }))
    }

    /// A project the caller can see (a member of its team); 404 for anyone else.
    pub async fn project(&self, auth: &AuthUser, id: ProjectId) -> Result<ProjectView> {
        auth.allows(Area::Projects, Access::Read)?;
        let Some(project) = self.store.run(move |s| s.project(id)).await? else {
            return Err(Error::NotFound("project"));
        };
        let role = self.role_in(auth, project.team_id).await?;
        if !access::may_see_project(role) {
            return Err(Error::NotFound("project"));
        }
        let can_edit = access::may_edit_project(auth.user_id, &project, role);
        Ok(ProjectView { project, can_edit })
    }

    /// Renames, re-describes, archives or reactivates a project. While archived, only
    /// reactivation is accepted.
    pub async fn update_project(
        &self,
        auth: &AuthUser,
        id: ProjectId,
        patch: ProjectPatch,
        expected_version: Option<u64>,
    ) -> Result<Write<ProjectView, ProjectView>> {
        auth.allows(Area::Projects, Access::Write)?;
        self.reach_project(auth, id).await?;
        let mut v = Validator::default();
        let name = patch
            .name
            .as_deref()
            .and_then(|n| v.check("name", ProjectName::parse(n)));
        let description = patch
            .description
            .as_deref()
            .and_then(|d| v.check("description", parse_project_description(d)));
        let valid = v.finish().map_err(Error::Validation);
        let status = patch.status;
        let changes_content = name.is_some() || description.is_some();
        let apply = move |project: &mut Project| {
            let reactivating = status == Some(ProjectStatus::Active);
            if project.status == ProjectStatus::Archived && changes_content && !reactivating {
                return Err(StoreError::Archived);
            }
            if let Some(name) = name {
                project.name = name;
            }
            if let Some(description) = description {
                project.description = description;
            }
            if let Some(status) = status {
                project.status = status;
            }
            Ok(())
        };
        let actor = auth.user_id;
        self.store
            .run(move |s| s.write(|tx| update_in(tx, id, actor, valid, expected_version, apply)))
            .await
    }

    /// Deletes a project (its creator, or the team's owners and admins).
    pub async fn delete_project(
        &self,
        auth: &AuthUser,
        id: ProjectId,
        expected_version: Option<u64>,
    ) -> Result<Write<(), ProjectView>> {
        auth.allows(Area::Projects, Access::Write)?;
        self.reach_project(auth, id).await?;
        let actor = auth.user_id;
        self.store
            .run(move |s| s.write(|tx| delete_in(tx, id, actor, expected_version)))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::teams::tests::{Fixture, demote_admin, fixture, role_of};

    /// A project of the fixture's team, created by `by` through the service's write.
    fn project_by(f: &Fixture, by: UserId) -> Result<ProjectView> {
        let now = Utc::now();
        let project = Project {
            id: ProjectId::new(),
            team_id: f.team,
            name: ProjectName::parse("P").unwrap(),
            description: String::new(),
            status: ProjectStatus::Active,
            created_by: by,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        f.store.write(|tx| create_in(tx, &project, None))
    }

    fn rename(name: &str) -> impl FnOnce(&mut Project) -> Result<(), StoreError> {
        let name = ProjectName::parse(name).unwrap();
        move |project| {
            project.name = name;
            Ok(())
        }
    }

    fn name_of(f: &Fixture, id: ProjectId) -> String {
        let project = f.store.project(id).unwrap().unwrap();
        project.name.as_str().to_string()
    }

    #[test]
    fn a_project_write_decides_on_the_role_its_transaction_reads() {
        let f = fixture();
        let project = project_by(&f, f.owner).unwrap().project;
        // What a check made before the transaction would have seen: an admin, who may edit a
        // project someone else created.
        let seen = role_of(&f, f.admin);
        assert!(access::may_edit_project(f.admin, &project, seen));

        // A commit in between demotes the admin.
        demote_admin(&f);

        let id = project.id;
        let update = f
            .store
            .write(|tx| update_in(tx, id, f.admin, Ok(()), None, rename("Mine")));
        assert!(matches!(update, Err(Error::Forbidden(_))), "{update:?}");
        let delete = f.store.write(|tx| delete_in(tx, id, f.admin, None));
        assert!(matches!(delete, Err(Error::Forbidden(_))), "{delete:?}");
        assert_eq!(name_of(&f, id), "P");

        // As a member they may still create one, and edit what they created.
        let own = project_by(&f, f.admin).unwrap();
        assert!(own.can_edit);
        let update = f
            .store
            .write(|tx| update_in(tx, own.project.id, f.admin, Ok(()), None, rename("Mine")))
            .unwrap();
        assert!(
            matches!(update, Write::Done(ref v) if v.can_edit),
            "{update:?}"
        );
        assert_eq!(name_of(&f, own.project.id), "Mine");
    }

    #[test]
    fn a_project_write_answers_404_then_403_then_the_body_then_the_version() {
        let f = fixture();
        let project = project_by(&f, f.owner).unwrap().project;
        let id = project.id;
        let invalid = || Err(Error::invalid("name", "bad"));

        // To a non-member the team and its projects do not exist, whatever the request.
        let stranger = UserId::new();
        let create = project_by(&f, stranger);
        assert!(matches!(create, Err(Error::NotFound("team"))), "{create:?}");
        let update = f
            .store
            .write(|tx| update_in(tx, id, stranger, invalid(), Some(9), rename("X")));
        assert!(
            matches!(update, Err(Error::NotFound("project"))),
            "{update:?}"
        );
        let delete = f.store.write(|tx| delete_in(tx, id, stranger, Some(9)));
        assert!(
            matches!(delete, Err(Error::NotFound("project"))),
            "{delete:?}"
        );

        // A member who did not create it: 403 before the body's 422 and the version's 412.
        let update = f
            .store
            .write(|tx| update_in(tx, id, f.member, invalid(), Some(9), rename("X")));
        assert!(matches!(update, Err(Error::Forbidden(_))), "{update:?}");

        // Allowed: the body, then the version, answered with the project this transaction read.
        let update = f
            .store
            .write(|tx| update_in(tx, id, f.admin, invalid(), Some(9), rename("X")));
        assert!(matches!(update, Err(Error::Validation(_))), "{update:?}");
        let update = f
            .store
            .write(|tx| update_in(tx, id, f.admin, Ok(()), Some(9), rename("X")))
            .unwrap();
        assert!(
            matches!(update, Write::Stale(ref v) if v.project.version == 1 && v.can_edit),
            "{update:?}"
        );
        let delete = f
            .store
            .write(|tx| delete_in(tx, id, f.admin, Some(9)))
            .unwrap();
        assert!(matches!(delete, Write::Stale(_)), "{delete:?}");
        assert_eq!(name_of(&f, id), "P");
    }
}
