//! Who may see and do what (DESIGN.md section 3): the one place that says it.
//!
//! Every reader of a rule asks here: the service before a read or a write, the WebSocket hub
//! and the replay for each change-log entry, the search index (what it stores as a task's
//! audience and how a query is scoped), and the notification writer. Nothing here reads
//! storage: callers pass the facts (who asks, their role in the team concerned, the entity),
//! so every rule is a pure function covered by the table tests below.
//!
//! The rules, in short:
//! - Server: `admin` accounts run site administration.
//! - Team: visible to its members. Owners and admins manage it (settings, invitations,
//!   members up to their own rank); only owners delete it. Nobody grants a role above their
//!   own; anyone may leave.
//! - Invitation: seen and answered by whoever presents its accept token first (and only by
//!   them from then on), or, once addresses are verified, by the verified holder of its
//!   email. Accepting grants no more than its inviter may still grant.
//! - Project: visible to the team's members, who may create projects and tasks in it; edited,
//!   archived and deleted by its creator and the team's owners and admins.
//! - Task: a team task is visible to the team; a personal task to its creator and assignees.
//!   Edit, comment and attach: creator and assignees, plus the team's owners and admins.
//!   Delete (and move to another project): creator, plus owners and admins. Assignees of a
//!   team task are members of the team; of a personal task, the caller or people who share a
//!   team with the caller.
//! - Comment: visible with its task; edited by its author; deleted by its author, the task's
//!   creator or the team's owners and admins. Attachment: likewise, with the uploader.
//! - Notification: its recipient's only. A notice about a team's task reaches current
//!   members of that team only.
//! - Change-log entry: seen by members of its team (or of the team a task just left), and by
//!   the people of a personal task (its `audience`); invitations never (they name an email).
//!   A reader follows their own memberships entry by entry ([`LogReader`]), and a replay
//!   starts from the teams the reader had then ([`Rewind`]).
//!
//! Not allowed to see: the caller answers 404 (no existence leak). Allowed to see but not to
//! do: 403.

use std::collections::{HashMap, HashSet};

use super::attachment::Attachment;
use super::change::{ChangeAction, EntityKind, NewChange};
use super::comment::Comment;
use super::notification::Notification;
use super::project::Project;
use super::task::Task;
use super::team::{Invitation, TeamRole};
use super::{Email, ProjectId, Role, TeamId, UserId};

// ---------------------------------------------------------------------------------------------
// Who is asking.

/// Where a user stands: their id and their role in each team they belong to. Loaded once per
/// request by the caller; every rule about teams, projects and tasks reads it.
#[derive(Debug, Clone)]
pub struct Standing {
    pub user: UserId,
    teams: Vec<(TeamId, TeamRole)>,
}

impl Standing {
    pub fn new(user: UserId, teams: impl IntoIterator<Item = (TeamId, TeamRole)>) -> Self {
        Self {
            user,
            teams: teams.into_iter().collect(),
        }
    }

    /// The user's role in `team`; `None` when they are not a member.
    pub fn role(&self, team: TeamId) -> Option<TeamRole> {
        self.teams.iter().find(|(t, _)| *t == team).map(|(_, r)| *r)
    }

    /// The teams the user belongs to.
    pub fn team_ids(&self) -> impl Iterator<Item = TeamId> + '_ {
        self.teams.iter().map(|(t, _)| *t)
    }

    /// The user's role in the team of `task` (none for a personal task).
    pub fn role_for(&self, task: &Task) -> Option<TeamRole> {
        task.team_id.and_then(|t| self.role(t))
    }

    pub fn sees_task(&self, task: &Task) -> bool {
        may_see_task(self.user, task, self.role_for(task))
    }

    pub fn may_edit_task(&self, task: &Task) -> bool {
        may_edit_task(self.user, task, self.role_for(task))
    }

    pub fn may_delete_task(&self, task: &Task) -> bool {
        may_delete_task(self.user, task, self.role_for(task))
    }

    pub fn sees_project(&self, project: &Project) -> bool {
        may_see_project(self.role(project.team_id))
    }

    pub fn may_edit_project(&self, project: &Project) -> bool {
        may_edit_project(self.user, project, self.role(project.team_id))
    }

    /// Whether `assignee`, a member of `assignee_teams`, may be assigned to a task of `team`
    /// (`None`: a personal task) by this user.
    pub fn may_assign(
        &self,
        team: Option<TeamId>,
        assignee: UserId,
        assignee_teams: &[TeamId],
    ) -> bool {
        may_be_assigned(self.user, self.team_ids(), team, assignee, assignee_teams)
    }

    /// Whether this user may see a change-log entry (their teams as they are now).
    pub fn sees_change(&self, change: &NewChange) -> bool {
        may_see_change(self.user, |t| self.role(t).is_some(), change)
    }
}

// ---------------------------------------------------------------------------------------------
// Server.

/// Site administration (backups, user management): server admins only.
pub fn may_administer(role: Role) -> bool {
    role == Role::Admin
}

// ---------------------------------------------------------------------------------------------
// Teams, memberships, invitations. `role` is the caller's role in the team, `None` for a
// non-member (to whom the team does not exist).

/// A team, its members and its projects are visible to its members.
pub fn may_see_team(role: Option<TeamRole>) -> bool {
    role.is_some()
}

/// What a member may do to a team beyond seeing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamAction {
    /// Rename or re-describe it, list and revoke its invitations: owners and admins.
    Manage,
    /// Delete it: owners only.
    Delete,
}

impl TeamAction {
    /// The least role that may do it (what a refusal names).
    pub fn needs(self) -> TeamRole {
        match self {
            TeamAction::Manage => TeamRole::Admin,
            TeamAction::Delete => TeamRole::Owner,
        }
    }
}

/// Whether a member with `role` may do `action` to their team.
pub fn may_in_team(role: TeamRole, action: TeamAction) -> bool {
    role >= action.needs()
}

/// Inviting someone with `offered`: owners and admins, never above their own role.
pub fn may_invite(role: TeamRole, offered: TeamRole) -> bool {
    role.can_manage() && role.can_grant(offered)
}

/// Giving `target` (whose role is `target_role`) the role `new`: owners and admins, never
/// above their own role nor on someone who outranks them. (That the last owner stays is a
/// rule of the data, checked where it is written.)
pub fn may_set_role(actor: TeamRole, target_role: TeamRole, new: TeamRole) -> bool {
    actor.can_grant(new) && target_role <= actor
}

/// Removing a member: anyone may leave (`leaving`); owners and admins remove members up to
/// their own rank.
pub fn may_remove_member(actor: TeamRole, target_role: TeamRole, leaving: bool) -> bool {
    leaving || (actor.can_manage() && target_role <= actor)
}

/// Who asks to see or answer an invitation.
#[derive(Debug, Clone, Copy)]
pub struct Invitee<'a> {
    pub user: UserId,
    pub email: &'a Email,
    /// Whether the account's address is verified (none is until email verification exists).
    pub email_verified: bool,
    /// Whether the request carries the invitation's accept token.
    pub presents_token: bool,
}

/// An invitation is seen and answered (accepted, declined) by the account that claimed it
/// (first presented its accept token), and only by them; an unclaimed one by whoever presents
/// the token, or by the verified holder of its email. Holding the email is not enough: anyone
/// can register any address. To anyone else it does not exist.
pub fn may_answer_invitation(invitation: &Invitation, who: &Invitee<'_>) -> bool {
    match invitation.claimed_by {
        Some(holder) => holder == who.user,
        None => who.presents_token || (who.email_verified && invitation.email == *who.email),
    }
}

/// Accepting an invitation grants its role only if its inviter, with the role they hold in
/// the team now (`None`: no longer a member), could still invite with it.
pub fn invitation_still_grants(invitation: &Invitation, inviter_role: Option<TeamRole>) -> bool {
    inviter_role.is_some_and(|role| may_invite(role, invitation.role))
}

// ---------------------------------------------------------------------------------------------
// Projects.

/// A project is visible to its team's members.
pub fn may_see_project(role: Option<TeamRole>) -> bool {
    may_see_team(role)
}

/// Creating a project in a team, or a task in a project: any member of the team.
pub fn may_create_in_team(role: Option<TeamRole>) -> bool {
    may_see_team(role)
}

/// Editing, archiving and deleting a project: its creator and the team's owners and admins.
pub fn may_edit_project(me: UserId, project: &Project, role: Option<TeamRole>) -> bool {
    role.is_some() && (project.created_by == me || role.is_some_and(TeamRole::can_manage))
}

// ---------------------------------------------------------------------------------------------
// Tasks. `role` is the caller's role in the task's team (`None` for a personal task or a
// non-member).

/// Who a task is for: a team task is the team's, a personal task its creator's and assignees'.
/// What the search index stores and what a change of the task names as its audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskAudience {
    Team(TeamId),
    /// Creator and assignees, sorted by id, without duplicates.
    People(Vec<UserId>),
}

pub fn task_audience(task: &Task) -> TaskAudience {
    match task.team_id {
        Some(team) => TaskAudience::Team(team),
        None => TaskAudience::People(task_people(task)),
    }
}

/// A task's people: its creator and assignees, sorted by id, without duplicates.
fn task_people(task: &Task) -> Vec<UserId> {
    let mut people: Vec<UserId> = task.assignee_ids.clone();
    people.push(task.created_by);
    people.sort_unstable_by_key(|u| u.as_u128());
    people.dedup();
    people
}

/// Whether `me` may see `task`.
pub fn may_see_task(me: UserId, task: &Task, role: Option<TeamRole>) -> bool {
    match task.team_id {
        Some(_) => role.is_some(),
        None => task.is_involved(me),
    }
}

/// The team's owners and admins, for a team task.
fn manages(task: &Task, role: Option<TeamRole>) -> bool {
    task.team_id.is_some() && role.is_some_and(TeamRole::can_manage)
}

/// Editing a task (the seed's rule): its creator and assignees, plus the team's owners and
/// admins. Assumes `me` may see it.
pub fn may_edit_task(me: UserId, task: &Task, role: Option<TeamRole>) -> bool {
    task.is_involved(me) || manages(task, role)
}

/// Commenting on a task follows editing.
pub fn may_comment(me: UserId, task: &Task, role: Option<TeamRole>) -> bool {
    may_edit_task(me, task, role)
}

/// Attaching files to a task follows editing.
pub fn may_attach(me: UserId, task: &Task, role: Option<TeamRole>) -> bool {
    may_edit_task(me, task, role)
}

/// Deleting a task, or moving it to another project: its creator, plus the team's owners and
/// admins.
pub fn may_delete_task(me: UserId, task: &Task, role: Option<TeamRole>) -> bool {
    task.created_by == me || manages(task, role)
}

/// Whether `assignee` (a member of `assignee_teams`) may be assigned by `me` (a member of
/// `my_teams`) to a task of `team`: a team task's assignees are members of its team; a
/// personal task's are `me` or someone sharing a team with `me`.
pub fn may_be_assigned(
    me: UserId,
    my_teams: impl IntoIterator<Item = TeamId>,
    team: Option<TeamId>,
    assignee: UserId,
    assignee_teams: &[TeamId],
) -> bool {
    match team {
        Some(team) => assignee_teams.contains(&team),
        None => assignee == me || my_teams.into_iter().any(|t| assignee_teams.contains(&t)),
    }
}

// ---------------------------------------------------------------------------------------------
// Comments and attachments: visible with their task (see [`may_see_task`]).

/// Editing a comment: its author only.
pub fn may_edit_comment(me: UserId, comment: &Comment) -> bool {
    comment.author_id == me
}

/// Deleting a comment: its author, the task's creator, or the team's owners and admins.
pub fn may_delete_comment(
    me: UserId,
    comment: &Comment,
    task: &Task,
    role: Option<TeamRole>,
) -> bool {
    comment.author_id == me || task.created_by == me || manages(task, role)
}

/// Deleting an attachment: its uploader, the task's creator, or the team's owners and admins.
pub fn may_delete_attachment(
    me: UserId,
    attachment: &Attachment,
    task: &Task,
    role: Option<TeamRole>,
) -> bool {
    attachment.uploaded_by == me || task.created_by == me || manages(task, role)
}

// ---------------------------------------------------------------------------------------------
// Notifications.

/// A notification is its recipient's only.
pub fn may_read_notification(me: UserId, notification: &Notification) -> bool {
    notification.user_id == me
}

/// Whether a notice about `task` may reach a user whose role in the task's team is `role`:
/// about a team's task only its current members hear (a creator who left the team is told
/// nothing more of its tasks); about a personal task, its people are told.
pub fn hears_about_task(task: &Task, role: Option<TeamRole>) -> bool {
    task.team_id.is_none() || role.is_some()
}

// ---------------------------------------------------------------------------------------------
// The change log.

/// Who, besides a team, sees a change of `task`: for a personal task its creator and
/// assignees, after the change and (`before`) before it, so someone taken off sees the
/// change that took them off; for a team task nobody extra (the team sees it).
pub fn change_audience(before: Option<&Task>, after: &Task) -> Vec<UserId> {
    let mut people = match task_audience(after) {
        TaskAudience::Team(_) => vec![],
        TaskAudience::People(people) => people,
    };
    if let Some(TaskAudience::People(earlier)) = before.map(task_audience) {
        for user in earlier {
            if !people.contains(&user) {
                people.push(user);
            }
        }
    }
    people
}

/// The audience rule of the change log: whether `user`, a member of the teams `member_of`
/// says, may see `change`. Members of its team see it, and of the team a task just left
/// (they see it leave); the people it names (`audience`: a personal task's creator and
/// assignees) see it. Invitations are never in the feed: they name the invitee's email, and
/// reach the invitee as a notification and the team's managers through the invitations list.
pub fn may_see_change(
    user: UserId,
    member_of: impl Fn(TeamId) -> bool,
    change: &NewChange,
) -> bool {
    if change.entity == EntityKind::Invitation {
        return false;
    }
    change
        .team_id
        .into_iter()
        .chain(change.previous_team_id)
        .any(member_of)
        || change.audience.contains(&user)
}

/// What a team's webhook sees of the change log: what every member of its team sees (its
/// team's entries, and a task leaving it), never a personal task's nor an invitation; with a
/// project, only that project's entries (and a task leaving it).
pub fn webhook_sees_change(team: TeamId, project: Option<ProjectId>, change: &NewChange) -> bool {
    let in_team = change.entity != EntityKind::Invitation
        && change
            .team_id
            .into_iter()
            .chain(change.previous_team_id)
            .any(|t| t == team);
    in_team
        && project.is_none_or(|p| {
            change
                .project_id
                .into_iter()
                .chain(change.previous_project_id)
                .any(|q| q == p)
        })
}

/// Whether `change` is `user`'s own membership entry (joining, a role change, leaving).
fn own_membership(user: UserId, change: &NewChange) -> bool {
    change.entity == EntityKind::Membership && change.entity_id == user.as_uuid()
}

/// A reader of the change log in order: a user and the teams they belong to at the entry
/// being read, following their own membership entries as they pass. A join counts from the
/// joining entry on (it is seen); a departure after its entry (it is seen, then nothing more
/// of that team). A team's deletion ends with its memberships' entries, so the reader's own
/// membership entry is where the team leaves their view.
#[derive(Debug, Clone)]
pub struct LogReader {
    pub user: UserId,
    pub teams: HashSet<TeamId>,
}

impl LogReader {
    pub fn new(user: UserId, teams: impl IntoIterator<Item = TeamId>) -> Self {
        Self {
            user,
            teams: teams.into_iter().collect(),
        }
    }

    /// Whether the reader, as they stand now, may see `change`.
    pub fn sees(&self, change: &NewChange) -> bool {
        may_see_change(self.user, |t| self.teams.contains(&t), change)
    }

    /// Applies what `change` does to the reader before it is judged (a join).
    pub fn enter(&mut self, change: &NewChange) {
        if own_membership(self.user, change)
            && change.action == ChangeAction::Created
            && let Some(team) = change.team_id
        {
            self.teams.insert(team);
        }
    }

    /// Applies what `change` does to the reader after it was judged (a departure).
    pub fn leave(&mut self, change: &NewChange) {
        if own_membership(self.user, change)
            && change.action == ChangeAction::Deleted
            && let Some(team) = change.team_id
        {
            self.teams.remove(&team);
        }
    }

    /// Reads one entry: enters it, judges it, leaves it. Returns whether it is seen.
    pub fn read(&mut self, change: &NewChange) -> bool {
        self.enter(change);
        let seen = self.sees(change);
        self.leave(change);
        seen
    }
}

/// A user's teams as they were at an earlier point of the log, rebuilt from their teams at a
/// later point and their own membership entries in between, fed oldest first (any number, in
/// any number of pages: nothing is dropped). For each team, the first join or departure in
/// between decides: a join means they were not a member before it, a departure that they were.
/// Teams without such an entry are as they are later.
#[derive(Debug)]
pub struct Rewind {
    user: UserId,
    /// Team -> whether the user was a member at the earlier point.
    first: HashMap<TeamId, bool>,
}

impl Rewind {
    pub fn new(user: UserId) -> Self {
        Self {
            user,
            first: HashMap::new(),
        }
    }

    /// Takes the next entry (oldest first); entries other than the user's own joins and
    /// departures are ignored.
    pub fn entry(&mut self, change: &NewChange) {
        if !own_membership(self.user, change) {
            return;
        }
        let was_member = match change.action {
            ChangeAction::Created => false,
            ChangeAction::Deleted => true,
            ChangeAction::Updated => return,
        };
        if let Some(team) = change.team_id {
            self.first.entry(team).or_insert(was_member);
        }
    }

    /// The user's teams at the earlier point, given `later`, their teams at the later point.
    pub fn teams(self, later: impl IntoIterator<Item = TeamId>) -> HashSet<TeamId> {
        let mut teams: HashSet<TeamId> = later.into_iter().collect();
        for (team, was_member) in self.first {
            if was_member {
                teams.insert(team);
            } else {
                teams.remove(&team);
            }
        }
        teams
    }
}

#[cfg(test)]
mod tests;
