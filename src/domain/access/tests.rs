//! The permission matrix as tables: role x entity x action -> what the API answers (404 when
//! the entity is not visible, 403 when visible but not allowed, allowed), and who sees each
//! kind of change-log entry.

use chrono::Utc;
use uuid::Uuid;

use super::*;
use crate::domain::change::FieldChange;
use crate::domain::project::{ProjectName, ProjectStatus};
use crate::domain::team::InvitationStatus;
use crate::domain::{AttachmentId, CommentId, InvitationId, ProjectId, TaskId};

use TeamRole::{Admin, Member, Owner};

/// What the API answers: hidden (404), forbidden (403) or allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Hidden,
    Forbidden,
    Allowed,
}
use Answer::{Allowed, Forbidden, Hidden};

fn answer(visible: bool, allowed: bool) -> Answer {
    match (visible, allowed) {
        (false, _) => Hidden,
        (true, false) => Forbidden,
        (true, true) => Allowed,
    }
}

/// The people of the scenes below: their relation to the entity and their team role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Created the task / project, or wrote the comment / uploaded the file; a plain member.
    Creator,
    /// Assigned to the task; a plain member.
    Assignee,
    /// The task's creator, for a comment or attachment someone else wrote.
    TaskCreator,
    Owner,
    Admin,
    /// A member with no relation to the entity.
    Member,
    NonMember,
    /// A server admin with no team role: site administration grants nothing on team data.
    ServerAdmin,
    /// The creator after leaving the team.
    FormerMember,
}

struct Cast {
    creator: UserId,
    assignee: UserId,
    task_creator: UserId,
    other: UserId,
}

impl Cast {
    fn new() -> Self {
        Self {
            creator: UserId::new(),
            assignee: UserId::new(),
            task_creator: UserId::new(),
            other: UserId::new(),
        }
    }

    /// The user and their role in the team for `who`.
    fn as_(&self, who: Who) -> (UserId, Option<TeamRole>) {
        match who {
            Who::Creator => (self.creator, Some(Member)),
            Who::Assignee => (self.assignee, Some(Member)),
            Who::TaskCreator => (self.task_creator, Some(Member)),
            Who::Owner => (self.other, Some(Owner)),
            Who::Admin => (self.other, Some(Admin)),
            Who::Member => (self.other, Some(Member)),
            Who::NonMember | Who::ServerAdmin => (self.other, None),
            Who::FormerMember => (self.creator, None),
        }
    }
}

fn task(creator: UserId, assignees: &[UserId], team: Option<TeamId>) -> Task {
    Task {
        project_id: team.map(|_| ProjectId::new()),
        team_id: team,
        assignee_ids: assignees.to_vec(),
        ..Task::sample(creator)
    }
}

#[derive(Debug, Clone, Copy)]
enum TaskAction {
    See,
    Edit,
    Comment,
    Attach,
    Delete,
}

fn on_task(me: UserId, task: &Task, role: Option<TeamRole>, action: TaskAction) -> Answer {
    let allowed = match action {
        TaskAction::See => true,
        TaskAction::Edit => may_edit_task(me, task, role),
        TaskAction::Comment => may_comment(me, task, role),
        TaskAction::Attach => may_attach(me, task, role),
        TaskAction::Delete => may_delete_task(me, task, role),
    };
    answer(may_see_task(me, task, role), allowed)
}

#[test]
fn tasks_role_by_action() {
    // (who, [see, edit, comment, attach, delete]) for a task in a team project.
    let team_task = [
        (Who::Creator, [Allowed, Allowed, Allowed, Allowed, Allowed]),
        (
            Who::Assignee,
            [Allowed, Allowed, Allowed, Allowed, Forbidden],
        ),
        (Who::Owner, [Allowed, Allowed, Allowed, Allowed, Allowed]),
        (Who::Admin, [Allowed, Allowed, Allowed, Allowed, Allowed]),
        (
            Who::Member,
            [Allowed, Forbidden, Forbidden, Forbidden, Forbidden],
        ),
        (Who::NonMember, [Hidden; 5]),
        (Who::ServerAdmin, [Hidden; 5]),
        (Who::FormerMember, [Hidden; 5]),
    ];
    // The same for a personal task (no team: roles count for nothing).
    let personal_task = [
        (Who::Creator, [Allowed, Allowed, Allowed, Allowed, Allowed]),
        (
            Who::Assignee,
            [Allowed, Allowed, Allowed, Allowed, Forbidden],
        ),
        (Who::Owner, [Hidden; 5]),
        (Who::Admin, [Hidden; 5]),
        (Who::Member, [Hidden; 5]),
        (Who::NonMember, [Hidden; 5]),
        (Who::ServerAdmin, [Hidden; 5]),
    ];
    let actions = [
        TaskAction::See,
        TaskAction::Edit,
        TaskAction::Comment,
        TaskAction::Attach,
        TaskAction::Delete,
    ];
    let cast = Cast::new();
    for (team, table) in [
        (Some(TeamId::new()), &team_task[..]),
        (None, &personal_task[..]),
    ] {
        let t = task(cast.creator, &[cast.assignee], team);
        for (who, expected) in table {
            let (me, role) = cast.as_(*who);
            for (action, want) in actions.iter().zip(expected) {
                assert_eq!(
                    on_task(me, &t, role, *action),
                    *want,
                    "{who:?} {action:?} on a {} task",
                    if team.is_some() { "team" } else { "personal" }
                );
            }
        }
    }
}

#[test]
fn standing_answers_like_the_rules() {
    let (me, other, team) = (UserId::new(), UserId::new(), TeamId::new());
    let standing = Standing::new(me, [(team, Admin)]);
    let theirs = task(other, &[], Some(team));
    assert_eq!(standing.role_for(&theirs), Some(Admin));
    assert!(standing.sees_task(&theirs) && standing.may_edit_task(&theirs));
    assert!(standing.may_delete_task(&theirs));
    let elsewhere = task(other, &[], Some(TeamId::new()));
    assert!(!standing.sees_task(&elsewhere));
    let personal = task(other, &[me], None);
    assert!(standing.sees_task(&personal) && standing.may_edit_task(&personal));
    assert!(!standing.may_delete_task(&personal));
    assert_eq!(standing.team_ids().collect::<Vec<_>>(), [team]);
}

#[test]
fn assignees_by_task_kind() {
    let (me, mate, stranger) = (UserId::new(), UserId::new(), UserId::new());
    let (team, other_team) = (TeamId::new(), TeamId::new());
    let mine = [team];
    // (task's team, assignee, assignee's teams, allowed)
    let table: [(Option<TeamId>, UserId, &[TeamId], bool); 8] = [
        (Some(team), mate, &[team], true),
        (Some(team), stranger, &[other_team], false),
        (Some(team), me, &[], false),
        (Some(team), me, &[team], true),
        (None, me, &[], true),
        (None, mate, &[other_team, team], true),
        (None, stranger, &[other_team], false),
        (None, stranger, &[], false),
    ];
    for (task_team, assignee, theirs, allowed) in table {
        assert_eq!(
            may_be_assigned(me, mine, task_team, assignee, theirs),
            allowed,
            "{task_team:?} {assignee:?} {theirs:?}"
        );
        let standing = Standing::new(me, [(team, Member)]);
        assert_eq!(standing.may_assign(task_team, assignee, theirs), allowed);
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

fn attachment(uploader: UserId) -> Attachment {
    Attachment {
        id: AttachmentId::new(),
        task_id: TaskId::new(),
        uploaded_by: uploader,
        filename: "f.txt".into(),
        content_type: "text/plain".into(),
        size: 1,
        sha256: [0; 32],
        created_at: Utc::now(),
    }
}

#[test]
fn comments_and_attachments_role_by_action() {
    // (who, [see, edit comment, delete comment, delete attachment]); `Creator` wrote the
    // comment and uploaded the file, `TaskCreator` created the task, `Assignee` is assigned.
    let team_task = [
        (Who::Creator, [Allowed, Allowed, Allowed, Allowed]),
        (Who::TaskCreator, [Allowed, Forbidden, Allowed, Allowed]),
        (Who::Assignee, [Allowed, Forbidden, Forbidden, Forbidden]),
        (Who::Owner, [Allowed, Forbidden, Allowed, Allowed]),
        (Who::Admin, [Allowed, Forbidden, Allowed, Allowed]),
        (Who::Member, [Allowed, Forbidden, Forbidden, Forbidden]),
        (Who::NonMember, [Hidden; 4]),
        (Who::ServerAdmin, [Hidden; 4]),
    ];
    // A personal task: the writer is an assignee.
    let personal_task = [
        (Who::Creator, [Allowed, Allowed, Allowed, Allowed]),
        (Who::TaskCreator, [Allowed, Forbidden, Allowed, Allowed]),
        (Who::Owner, [Hidden; 4]),
        (Who::Member, [Hidden; 4]),
        (Who::NonMember, [Hidden; 4]),
    ];
    let cast = Cast::new();
    let (c, a) = (comment(cast.creator), attachment(cast.creator));
    for (team, table) in [
        (Some(TeamId::new()), &team_task[..]),
        (None, &personal_task[..]),
    ] {
        let assignees = match team {
            Some(_) => vec![cast.assignee],
            None => vec![cast.creator, cast.assignee],
        };
        let t = task(cast.task_creator, &assignees, team);
        for (who, expected) in table {
            let (me, role) = cast.as_(*who);
            let visible = may_see_task(me, &t, role);
            let got = [
                answer(visible, true),
                answer(visible, may_edit_comment(me, &c)),
                answer(visible, may_delete_comment(me, &c, &t, role)),
                answer(visible, may_delete_attachment(me, &a, &t, role)),
            ];
            assert_eq!(&got, expected, "{who:?} on a {team:?} task");
        }
    }
}

fn project(creator: UserId, team: TeamId) -> Project {
    let now = Utc::now();
    Project {
        id: ProjectId::new(),
        team_id: team,
        name: ProjectName::parse("p").unwrap(),
        description: String::new(),
        status: ProjectStatus::Active,
        created_by: creator,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

#[test]
fn projects_role_by_action() {
    // (who, [see, create a task or project in its team, edit/archive/delete])
    let table = [
        (Who::Creator, [Allowed, Allowed, Allowed]),
        (Who::Owner, [Allowed, Allowed, Allowed]),
        (Who::Admin, [Allowed, Allowed, Allowed]),
        (Who::Member, [Allowed, Allowed, Forbidden]),
        (Who::NonMember, [Hidden; 3]),
        (Who::ServerAdmin, [Hidden; 3]),
        (Who::FormerMember, [Hidden; 3]),
    ];
    let cast = Cast::new();
    let team = TeamId::new();
    let p = project(cast.creator, team);
    for (who, expected) in table {
        let (me, role) = cast.as_(who);
        let visible = may_see_project(role);
        let got = [
            answer(visible, true),
            answer(visible, may_create_in_team(role)),
            answer(visible, may_edit_project(me, &p, role)),
        ];
        assert_eq!(got, expected, "{who:?}");
        let standing = Standing::new(me, role.map(|r| (team, r)));
        assert_eq!(standing.sees_project(&p), visible, "{who:?}");
        assert_eq!(
            standing.may_edit_project(&p),
            expected[2] == Allowed,
            "{who:?}"
        );
    }
}

#[test]
fn teams_role_by_action() {
    // (role, [see and list members, manage (settings, invitations), delete, invite a member,
    // invite an admin, invite an owner])
    let table = [
        (Some(Owner), [Allowed; 6]),
        (
            Some(Admin),
            [Allowed, Allowed, Forbidden, Allowed, Allowed, Forbidden],
        ),
        (
            Some(Member),
            [
                Allowed, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden,
            ],
        ),
        (None, [Hidden; 6]),
    ];
    for (role, expected) in table {
        let visible = may_see_team(role);
        let can = |f: &dyn Fn(TeamRole) -> bool| answer(visible, role.is_some_and(f));
        let got = [
            answer(visible, true),
            can(&|r| may_in_team(r, TeamAction::Manage)),
            can(&|r| may_in_team(r, TeamAction::Delete)),
            can(&|r| may_invite(r, Member)),
            can(&|r| may_invite(r, Admin)),
            can(&|r| may_invite(r, Owner)),
        ];
        assert_eq!(got, expected, "{role:?}");
    }
    assert_eq!(TeamAction::Manage.needs(), Admin);
    assert_eq!(TeamAction::Delete.needs(), Owner);
}

#[test]
fn member_role_changes_and_removals() {
    // (actor, target's role, new role, may set it)
    let set_role = [
        (Owner, Owner, Member, true),
        (Owner, Member, Owner, true),
        (Owner, Admin, Member, true),
        (Admin, Member, Admin, true),
        (Admin, Admin, Member, true),
        (Admin, Member, Owner, false),
        (Admin, Owner, Member, false),
        (Member, Member, Member, false),
        (Member, Member, Admin, false),
    ];
    for (actor, target, new, allowed) in set_role {
        assert_eq!(
            may_set_role(actor, target, new),
            allowed,
            "{actor:?} sets {target:?} to {new:?}"
        );
    }
    // (actor, target's role, the actor is the target, may remove)
    let remove = [
        (Owner, Owner, false, true),
        (Owner, Admin, false, true),
        (Admin, Admin, false, true),
        (Admin, Member, false, true),
        (Admin, Owner, false, false),
        (Member, Member, false, false),
        (Member, Member, true, true),
        (Admin, Admin, true, true),
        (Owner, Owner, true, true),
    ];
    for (actor, target, leaving, allowed) in remove {
        assert_eq!(
            may_remove_member(actor, target, leaving),
            allowed,
            "{actor:?} removes {target:?} (leaving: {leaving})"
        );
    }
}

#[test]
fn invitations_server_admin_and_notifications() {
    let mine = Email::parse("me@example.com").unwrap();
    let now = Utc::now();
    let invitation = Invitation {
        id: InvitationId::new(),
        team_id: TeamId::new(),
        email: mine.clone(),
        role: Member,
        invited_by: UserId::new(),
        created_at: now,
        expires_at: now,
        status: InvitationStatus::Pending,
        secret_hash: None,
        claimed_by: None,
    };
    let me_asking = UserId::new();
    let other = Email::parse("other@example.com").unwrap();
    let asker = |email, email_verified, presents_token| Invitee {
        user: me_asking,
        email,
        email_verified,
        presents_token,
    };
    // Unclaimed: the token, or (once addresses are verified) the verified invited address.
    assert!(!may_answer_invitation(
        &invitation,
        &asker(&mine, false, false)
    ));
    assert!(may_answer_invitation(
        &invitation,
        &asker(&mine, true, false)
    ));
    assert!(!may_answer_invitation(
        &invitation,
        &asker(&other, true, false)
    ));
    assert!(may_answer_invitation(
        &invitation,
        &asker(&other, false, true)
    ));
    // Claimed: its claimant only, token or not.
    let claimed = Invitation {
        claimed_by: Some(me_asking),
        ..invitation.clone()
    };
    assert!(may_answer_invitation(
        &claimed,
        &asker(&other, false, false)
    ));
    let someone_else = Invitee {
        user: UserId::new(),
        ..asker(&mine, true, true)
    };
    assert!(!may_answer_invitation(&claimed, &someone_else));
    // Accepting grants no more than the inviter may still grant.
    let admin_offer = Invitation {
        role: Admin,
        ..invitation.clone()
    };
    assert!(invitation_still_grants(&admin_offer, Some(Admin)));
    assert!(invitation_still_grants(&admin_offer, Some(Owner)));
    assert!(!invitation_still_grants(&admin_offer, Some(Member)));
    assert!(!invitation_still_grants(&admin_offer, None));
    assert!(invitation_still_grants(&invitation, Some(Admin)));

    assert!(may_administer(Role::Admin));
    assert!(!may_administer(Role::User));

    let me = UserId::new();
    let notification = Notification {
        seq: 1,
        user_id: me,
        kind: crate::domain::notification::NotificationKind::TaskAssigned,
        actor_id: UserId::new(),
        created_at: now,
        read_at: None,
        task_id: None,
        team_id: None,
        entity_id: None,
        subject: String::new(),
        fields: vec![],
    };
    assert!(may_read_notification(me, &notification));
    assert!(!may_read_notification(UserId::new(), &notification));

    // (task in a team, recipient's role in it, hears)
    let (creator, team) = (UserId::new(), TeamId::new());
    for (team, role, hears) in [
        (Some(team), Some(Member), true),
        (Some(team), Some(Owner), true),
        (Some(team), None, false),
        (None, None, true),
    ] {
        assert_eq!(
            hears_about_task(&task(creator, &[], team), role),
            hears,
            "{team:?} {role:?}"
        );
    }
}

#[test]
fn a_tasks_audience_is_its_team_or_its_people() {
    let (a, b, team) = (UserId::new(), UserId::new(), TeamId::new());
    assert_eq!(
        task_audience(&task(a, &[b], Some(team))),
        TaskAudience::Team(team)
    );
    let mut people = vec![a, b];
    people.sort_unstable_by_key(|u| u.as_u128());
    assert_eq!(
        task_audience(&task(a, &[b, a, b], None)),
        TaskAudience::People(people.clone())
    );
    // A change's audience: a team task's is empty; a personal one's names its people before
    // and after (someone taken off sees the change that took them off).
    assert!(change_audience(None, &task(a, &[b], Some(team))).is_empty());
    assert_eq!(change_audience(None, &task(a, &[b], None)), people);
    let before = task(a, &[b], None);
    assert_eq!(change_audience(Some(&before), &task(a, &[], None)), [a, b]);
    let moved_in = task(a, &[b], Some(team));
    assert_eq!(change_audience(Some(&before), &moved_in), people);
}

// ---------------------------------------------------------------------------------------------
// The change log.

struct Entry(NewChange);

impl Entry {
    fn of(entity: EntityKind, team: Option<TeamId>) -> Self {
        Self(NewChange {
            at: Utc::now(),
            actor: UserId::new(),
            entity,
            entity_id: Uuid::now_v7(),
            team_id: team,
            project_id: None,
            audience: vec![],
            previous_team_id: None,
            previous_project_id: None,
            task_id: None,
            action: ChangeAction::Updated,
            fields: vec![FieldChange::set("title", &"t")],
        })
    }

    fn audience(mut self, people: &[UserId]) -> Self {
        self.0.audience = people.to_vec();
        self
    }

    fn previous(mut self, team: Option<TeamId>) -> Self {
        self.0.previous_team_id = team;
        self.0.previous_project_id = team.map(|_| ProjectId::new());
        self
    }

    /// `user`'s membership of `team`, created, updated or deleted.
    fn membership(user: UserId, team: TeamId, action: ChangeAction) -> NewChange {
        let mut entry = Self::of(EntityKind::Membership, Some(team)).0;
        entry.entity_id = user.as_uuid();
        entry.action = action;
        entry
    }
}

#[test]
fn who_sees_each_kind_of_change() {
    let (me, other) = (UserId::new(), UserId::new());
    let (mine, theirs) = (TeamId::new(), TeamId::new());
    // (what, the entry, seen by a member of `mine` only)
    let table: Vec<(&str, NewChange, bool)> = vec![
        (
            "team change",
            Entry::of(EntityKind::Team, Some(mine)).0,
            true,
        ),
        (
            "other team's change",
            Entry::of(EntityKind::Team, Some(theirs)).0,
            false,
        ),
        (
            "project of my team",
            Entry::of(EntityKind::Project, Some(mine)).0,
            true,
        ),
        (
            "task of my team",
            Entry::of(EntityKind::Task, Some(mine)).0,
            true,
        ),
        (
            "task of another team",
            Entry::of(EntityKind::Task, Some(theirs)).0,
            false,
        ),
        (
            "comment in my team",
            Entry::of(EntityKind::Comment, Some(mine)).0,
            true,
        ),
        (
            "attachment elsewhere",
            Entry::of(EntityKind::Attachment, Some(theirs)).0,
            false,
        ),
        (
            "personal task I am in",
            Entry::of(EntityKind::Task, None).audience(&[other, me]).0,
            true,
        ),
        (
            "personal task of others",
            Entry::of(EntityKind::Task, None).audience(&[other]).0,
            false,
        ),
        (
            "comment on my personal task",
            Entry::of(EntityKind::Comment, None).audience(&[me]).0,
            true,
        ),
        (
            "task moved out of my team",
            Entry::of(EntityKind::Task, Some(theirs))
                .previous(Some(mine))
                .0,
            true,
        ),
        (
            "task moved into my team",
            Entry::of(EntityKind::Task, Some(mine))
                .previous(Some(theirs))
                .0,
            true,
        ),
        (
            "task moved between other teams",
            Entry::of(EntityKind::Task, Some(theirs))
                .previous(Some(TeamId::new()))
                .0,
            false,
        ),
        (
            "my personal task moved into another team",
            Entry::of(EntityKind::Task, Some(theirs)).audience(&[me]).0,
            true,
        ),
        (
            "invitation to my team",
            Entry::of(EntityKind::Invitation, Some(mine)).0,
            false,
        ),
        (
            "invitation naming me",
            Entry::of(EntityKind::Invitation, None).audience(&[me]).0,
            false,
        ),
        (
            "someone joining my team",
            Entry::membership(other, mine, ChangeAction::Created),
            true,
        ),
        (
            "someone joining another team",
            Entry::membership(other, theirs, ChangeAction::Created),
            false,
        ),
    ];
    let standing = Standing::new(me, [(mine, Member)]);
    let reader = LogReader::new(me, [mine]);
    let outsider = LogReader::new(me, []);
    for (what, entry, seen) in &table {
        assert_eq!(may_see_change(me, |t| t == mine, entry), *seen, "{what}");
        assert_eq!(standing.sees_change(entry), *seen, "{what}");
        assert_eq!(reader.sees(entry), *seen, "{what}");
        let for_outsider = !entry.audience.is_empty() && *seen;
        assert_eq!(outsider.sees(entry), for_outsider, "{what}, no teams");
    }
}

#[test]
fn a_reader_follows_its_own_joins_and_departures() {
    let (me, other, team) = (UserId::new(), UserId::new(), TeamId::new());
    let mut reader = LogReader::new(me, []);
    let task_entry = Entry::of(EntityKind::Task, Some(team)).0;
    assert!(!reader.read(&task_entry), "before joining");
    assert!(
        !reader.read(&Entry::membership(other, team, ChangeAction::Created)),
        "someone else joining is not my join"
    );
    assert!(
        reader.read(&Entry::membership(me, team, ChangeAction::Created)),
        "the join itself is seen"
    );
    assert!(reader.read(&task_entry), "after joining");
    assert!(reader.read(&Entry::membership(me, team, ChangeAction::Updated)));
    assert!(reader.teams.contains(&team), "a role change keeps the team");
    assert!(
        reader.read(&Entry::membership(me, team, ChangeAction::Deleted)),
        "so is the departure"
    );
    assert!(!reader.read(&task_entry), "nothing more of the team");
}

#[test]
fn a_rewind_takes_each_teams_first_own_entry_however_many() {
    let (me, other) = (UserId::new(), UserId::new());
    let (joined, left, churned, stayed, untouched) = (
        TeamId::new(),
        TeamId::new(),
        TeamId::new(),
        TeamId::new(),
        TeamId::new(),
    );
    let mut rewind = Rewind::new(me);
    // Thousands of joins and departures of one team (ending a member), then a join of another:
    // the last entry counts as much as the first.
    for _ in 0..5_000 {
        rewind.entry(&Entry::membership(me, churned, ChangeAction::Created));
        rewind.entry(&Entry::membership(me, churned, ChangeAction::Deleted));
    }
    rewind.entry(&Entry::membership(me, churned, ChangeAction::Created));
    rewind.entry(&Entry::membership(me, left, ChangeAction::Deleted));
    rewind.entry(&Entry::membership(me, stayed, ChangeAction::Updated));
    rewind.entry(&Entry::membership(other, untouched, ChangeAction::Created));
    rewind.entry(&Entry::of(EntityKind::Task, Some(joined)).0);
    rewind.entry(&Entry::membership(me, joined, ChangeAction::Created));
    let now = [joined, churned, stayed, untouched];
    let then = rewind.teams(now);
    assert_eq!(
        then,
        HashSet::from([left, stayed, untouched]),
        "joined and churned were joined since; left was left since"
    );
}
