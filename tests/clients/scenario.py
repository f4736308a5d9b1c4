"""The product scenario through the Python client generated from the spec, against a live
server: typed calls only (no raw HTTP), and every answer parses into its documented type, with
no field left over in `additional_properties` at any depth (where the client puts fields the
spec does not name). Errors parse into `Problem` (or the 412's `PreconditionFailedTask`) with
the documented code. tests/scenario.rs walks the same path in Rust, with the WebSocket.

Usage: python3 scenario.py BASE_URL   (BASE_URL without `/api`; the package `tasker_client`
must be importable)
"""

import io
import sys
import time
import uuid
from typing import Any, TypeVar

import attrs
from tasker_client import AuthenticatedClient, Client
from tasker_client.api.attachments import download_attachment, upload_attachments
from tasker_client.api.auth import get_profile, logout, register, update_profile
from tasker_client.api.comments import create_comment
from tasker_client.api.invitations import (
    accept_invitation,
    claim_invitation,
    invite_to_team,
    list_my_invitations,
)
from tasker_client.api.notifications import (
    list_notifications,
    read_all_notifications,
    read_notification,
)
from tasker_client.api.projects import create_project
from tasker_client.api.tasks import create_task, get_task, list_tasks, search_tasks, update_task
from tasker_client.api.teams import create_team, list_teams
from tasker_client.models import (
    AuthResponse,
    Comment,
    CommentRequest,
    CreateProjectRequest,
    CreateTaskRequest,
    CreateTeamRequest,
    ErrorCode,
    Invitation,
    InvitationPage,
    InvitationPreview,
    InvitationStatus,
    InvitationTokenRequest,
    InviteRequest,
    IssuedInvitation,
    Notification,
    NotificationKind,
    NotificationPage,
    PatchTaskRequest,
    PreconditionFailedTask,
    Priority,
    Problem,
    Project,
    RegisterRequest,
    SearchPage,
    Task,
    TaskPage,
    TaskStatus,
    Team,
    TeamPage,
    TeamRole,
    UpdateProfileRequest,
    UploadAttachmentsBody,
    UploadedAttachments,
    User,
)
from tasker_client.types import File, Response

T = TypeVar("T")

# How long the search index may take to catch up with a new task.
PATIENCE_SECONDS = 30.0


def leftovers(value: Any, path: str = "") -> list[str]:
    """Fields the spec does not name, anywhere in a parsed answer."""
    found: list[str] = []
    if attrs.has(type(value)):
        extra = getattr(value, "additional_properties", {})
        found += [f"{path}.{name}" if path else name for name in sorted(extra)]
        for field in attrs.fields(type(value)):
            if field.name != "additional_properties":
                inner = f"{path}.{field.name}" if path else field.name
                found += leftovers(getattr(value, field.name), inner)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += leftovers(item, f"{path}[{i}]")
    return found


def expect(step: str, response: Response[Any], kind: type[T], status: int) -> T:
    """The answer of `step` has `status` and parses into `kind`, naming every field."""
    body = response.content[:500]
    assert response.status_code == status, (
        f"{step}: status {response.status_code}, expected {status}: {body!r}"
    )
    assert isinstance(response.parsed, kind), (
        f"{step}: parsed as {type(response.parsed).__name__}, expected {kind.__name__}: {body!r}"
    )
    extra = leftovers(response.parsed)
    assert not extra, f"{step}: fields the spec does not name: {extra}"
    return response.parsed


def problem(step: str, response: Response[Any], status: int, code: ErrorCode) -> Problem:
    """The answer of `step` is a documented Problem with `status` and `code`."""
    found = expect(step, response, Problem, status)
    assert (found.status, found.code) == (status, code), (
        f"{step}: problem {found.status} {found.code}, expected {status} {code}: {found.detail}"
    )
    return found


def check(step: str, condition: bool, detail: object) -> None:
    assert condition, f"{step}: {detail}"


def main() -> None:
    api = sys.argv[1] + "/api"
    anonymous = Client(base_url=api)
    run = uuid.uuid4().hex[:8]

    # Two people and an outsider register.
    def join(name: str) -> tuple[AuthResponse, AuthenticatedClient]:
        body = RegisterRequest(
            email=f"{name.lower()}-{run}@example.com", password="correct horse battery", name=name
        )
        auth = expect(
            f"register {name}",
            register.sync_detailed(client=anonymous, body=body),
            AuthResponse,
            201,
        )
        return auth, AuthenticatedClient(base_url=api, token=auth.token)

    ada, a = join("Ada")
    bob, b = join("Bob")
    cy, outsider = join("Cy")

    # Profile: read, then renamed (the version moves on).
    me = expect("get profile", get_profile.sync_detailed(client=a), User, 200)
    check("get profile", me.id == ada.user.id, (me.id, ada.user.id))
    renamed = expect(
        "update profile",
        update_profile.sync_detailed(client=a, body=UpdateProfileRequest(name="Ada Lovelace")),
        User,
        200,
    )
    check(
        "update profile",
        (renamed.name, renamed.version) == ("Ada Lovelace", me.version + 1),
        renamed,
    )

    # A team; Bob is invited by email, and accepts.
    team = expect(
        "create team",
        create_team.sync_detailed(
            client=a, body=CreateTeamRequest(name="Engines", description="Analytical")
        ),
        Team,
        201,
    )
    check("create team", team.my_role == TeamRole.OWNER, team.my_role)
    issued = expect(
        "invite Bob",
        invite_to_team.sync_detailed(
            client=a,
            body=InviteRequest(email=bob.user.email, role=TeamRole.MEMBER, team_id=team.id),
        ),
        IssuedInvitation,
        201,
    )
    check(
        "invite Bob",
        issued.status == InvitationStatus.PENDING and issued.accept_url.endswith(issued.token),
        issued,
    )
    # Addresses are not verified: the invitation is Bob's once he presents its token (the
    # accept link); then it is listed, and answered by id.
    unclaimed = expect(
        "Bob's invitations", list_my_invitations.sync_detailed(client=b), InvitationPage, 200
    )
    check("Bob's invitations before the link", unclaimed.items == [], unclaimed.items)
    offer = expect(
        "claim invitation",
        claim_invitation.sync_detailed(client=b, body=InvitationTokenRequest(token=issued.token)),
        InvitationPreview,
        200,
    )
    check(
        "claim invitation",
        (offer.id, offer.team_name, offer.role) == (issued.id, team.name, TeamRole.MEMBER),
        offer,
    )
    mine = expect(
        "Bob's invitations", list_my_invitations.sync_detailed(client=b), InvitationPage, 200
    )
    check("Bob's invitations", [i.id for i in mine.items] == [issued.id], mine.items)
    accepted = expect(
        "accept invitation",
        accept_invitation.sync_detailed(mine.items[0].id, client=b),
        Invitation,
        200,
    )
    check("accept invitation", accepted.status == InvitationStatus.ACCEPTED, accepted.status)
    teams = expect("Bob's teams", list_teams.sync_detailed(client=b), TeamPage, 200)
    check(
        "Bob's teams",
        [(t.id, t.my_role) for t in teams.items] == [(team.id, TeamRole.MEMBER)],
        teams.items,
    )

    # A project, and a task in it assigned to Bob.
    project = expect(
        "create project",
        create_project.sync_detailed(
            client=a, body=CreateProjectRequest(name="Difference engine", team_id=team.id)
        ),
        Project,
        201,
    )
    created = create_task.sync_detailed(
        client=a,
        body=CreateTaskRequest(
            title="Write the quarterly report",
            description="Numbers for the engine",
            project_id=project.id,
            assignee_ids=[bob.user.id],
            priority=Priority.HIGH,
        ),
    )
    task = expect("create task", created, Task, 201)
    check(
        "create task", created.headers.get("location", "").endswith(str(task.id)), created.headers
    )
    check(
        "create task",
        (task.status, task.assignee_ids, task.project_id)
        == (TaskStatus.TODO, [bob.user.id], project.id),
        task,
    )

    # Filtered by status: Bob's one task to do, none in progress.
    todo = expect("tasks to do", list_tasks.sync_detailed(client=b, status="todo"), TaskPage, 200)
    check("tasks to do", [t.id for t in todo.items] == [task.id], todo.items)
    doing = expect(
        "tasks in progress", list_tasks.sync_detailed(client=b, status="in_progress"), TaskPage, 200
    )
    check("tasks in progress", doing.items == [], doing.items)

    # Update with If-Match from the ETag just read; the same tag again is stale: 412 with the
    # current task. A weak tag never matches (strong comparison).
    read = get_task.sync_detailed(task.id, client=a)
    expect("read task", read, Task, 200)
    etag = read.headers["etag"]
    # Documented on Task.version: `"<version>.<comment_count>.<attachment_count>"`.
    check(
        "read task", etag == f'"{task.version}.{task.comment_count}.{task.attachment_count}"', etag
    )
    updated = expect(
        "update with If-Match",
        update_task.sync_detailed(
            task.id, client=a, body=PatchTaskRequest(status=TaskStatus.IN_PROGRESS), if_match=etag
        ),
        Task,
        200,
    )
    check(
        "update with If-Match",
        (updated.status, updated.version) == (TaskStatus.IN_PROGRESS, task.version + 1),
        updated,
    )
    updated_tag = f'"{updated.version}.{updated.comment_count}.{updated.attachment_count}"'
    for step, tag in (("stale If-Match", etag), ("weak If-Match", "W/" + updated_tag)):
        refused = expect(
            step,
            update_task.sync_detailed(
                task.id, client=a, body=PatchTaskRequest(status=TaskStatus.DONE), if_match=tag
            ),
            PreconditionFailedTask,
            412,
        )
        check(step, (refused.status, refused.code) == (412, ErrorCode.PRECONDITION_FAILED), refused)
        check(step, isinstance(refused.current, Task), type(refused.current))
        check(
            step,
            (refused.current.version, refused.current.status)
            == (updated.version, TaskStatus.IN_PROGRESS),
            refused.current,
        )

    # Search with a typo ("quartely"), once the index has caught up (503 until then).
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        answer = search_tasks.sync_detailed(client=b, q="quartely")
        if answer.status_code == 200:
            page = expect("search with a typo", answer, SearchPage, 200)
            if page.items:
                check(
                    "search with a typo",
                    page.items[0].task.id == task.id and page.items[0].score > 0,
                    page.items[0],
                )
                break
        else:
            late = expect("search with a typo", answer, Problem, 503)
            check(
                "search with a typo",
                late.code in (ErrorCode.INDEX_REBUILDING, ErrorCode.SERVICE_UNAVAILABLE),
                late,
            )
        check("search with a typo", time.monotonic() < deadline, "the typo never found the task")
        time.sleep(0.05)

    # Comments: the assignee may; to an outsider the task does not exist.
    comment = expect(
        "comment as assignee",
        create_comment.sync_detailed(task.id, client=b, body=CommentRequest(body="On it.")),
        Comment,
        201,
    )
    check(
        "comment as assignee",
        (comment.task_id, comment.author_id) == (task.id, bob.user.id),
        comment,
    )
    problem(
        "comment as outsider",
        create_comment.sync_detailed(
            task.id, client=outsider, body=CommentRequest(body="Let me in")
        ),
        404,
        ErrorCode.NOT_FOUND,
    )
    check("outsider", cy.user.id not in (ada.user.id, bob.user.id), cy.user.id)

    # An attachment, uploaded by Ada (multipart) and downloaded by Bob, byte for byte.
    content = b"engine,cogs\n1,42\n" + bytes(range(256))
    uploaded = expect(
        "upload attachment",
        upload_attachments.sync_detailed(
            task.id,
            client=a,
            body=UploadAttachmentsBody(
                file=[File(payload=io.BytesIO(content), file_name="cogs.csv", mime_type="text/csv")]
            ),
        ),
        UploadedAttachments,
        201,
    )
    check("upload attachment", len(uploaded.items) == 1, uploaded.items)
    attachment = uploaded.items[0]
    check(
        "upload attachment",
        (attachment.filename, attachment.size) == ("cogs.csv", len(content)),
        attachment,
    )
    downloaded = expect(
        "download attachment", download_attachment.sync_detailed(attachment.id, client=b), File, 200
    )
    check("download attachment", downloaded.payload.read() == content, "the bytes differ")

    # Notifications: the invitation, the assignment, the update and the attachment; one read,
    # then all.
    inbox = expect(
        "notifications", list_notifications.sync_detailed(client=b), NotificationPage, 200
    )
    kinds = {n.kind for n in inbox.items}
    wanted = {
        NotificationKind.TEAM_INVITED,
        NotificationKind.TASK_ASSIGNED,
        NotificationKind.TASK_UPDATED,
        NotificationKind.ATTACHMENT_ADDED,
    }
    check("notifications", wanted <= kinds, sorted(k.value for k in kinds))
    check(
        "notifications",
        inbox.unread_count == len(inbox.items),
        (inbox.unread_count, len(inbox.items)),
    )
    first = expect(
        "read a notification",
        read_notification.sync_detailed(inbox.items[0].id, client=b),
        Notification,
        200,
    )
    check("read a notification", first.read and first.read_at is not None, first)
    inbox = expect(
        "notifications after one read",
        list_notifications.sync_detailed(client=b),
        NotificationPage,
        200,
    )
    check(
        "notifications after one read",
        inbox.unread_count == len(inbox.items) - 1,
        inbox.unread_count,
    )
    everything = read_all_notifications.sync_detailed(client=b)
    check(
        "read all notifications",
        everything.status_code == 204,
        (everything.status_code, everything.content),
    )
    unread = expect(
        "unread notifications",
        list_notifications.sync_detailed(client=b, unread=True),
        NotificationPage,
        200,
    )
    check("unread notifications", (unread.items, unread.unread_count) == ([], 0), unread)

    # Logout: the token is refused from then on.
    out = logout.sync_detailed(client=b)
    check("logout", out.status_code == 204, (out.status_code, out.content))
    problem(
        "profile after logout", get_profile.sync_detailed(client=b), 401, ErrorCode.SESSION_REVOKED
    )
    print("python client scenario: ok")


if __name__ == "__main__":
    main()
