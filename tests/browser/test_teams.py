"""Teams, projects, notifications and the profile in a real browser: a team is formed by
invitation across two browsers, a project is created and opened, a notification arrives live
and is marked read, the profile changes a name and revokes another session; every screen passes
axe and fits a phone."""

import re

from playwright.sync_api import expect

from harness import axe_check, register_user, screenshot, sign_in, unique_email, watch


def _fits_a_phone(page):
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 375, f"{page.url} scrolls sideways at 375 px: {width} px wide"


def _create_team(page, name):
    page.goto("/teams")
    page.locator("#team-name").fill(name)
    page.get_by_role("button", name="Create team", exact=True).click()
    expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()


def _unread(page):
    return int(page.locator("#unread-count").inner_text())


def test_team_invitation_project_and_live_notification(page, problems, new_context, api):
    alma_email, bruno_email = unique_email("alma"), unique_email("bruno")
    register_user(page, "Alma", alma_email)
    page.goto("/teams")
    axe_check(page)
    _create_team(page, "Ops Team")
    team_url = page.url

    bruno_page = new_context().new_page()
    bruno_problems = watch(bruno_page)
    register_user(bruno_page, "Bruno", bruno_email)

    # Alma invites Bruno; the invitation waits in her team's list, and its link is shown once,
    # as a full address, with a copy button.
    page.locator("#invite-email").fill(bruno_email)
    page.locator("#invite-role").select_option("member")
    page.get_by_role("button", name="Invite", exact=True).click()
    expect(page.locator("#pending-invitations")).to_contain_text(bruno_email)
    link = page.locator("#invite-link")
    expect(link).to_have_value(re.compile(r"^https?://.+/invitations/accept\?token=tki_"))
    expect(page.get_by_role("button", name="Copy link")).to_be_visible()
    axe_check(page)
    invitation_link = link.input_value()

    # Without the link Bruno sees nothing; with it he sees the offer and accepts.
    bruno_page.goto("/teams")
    expect(bruno_page.get_by_role("heading", name=re.compile("Invitations for you"))).to_have_count(0)
    bruno_page.goto(invitation_link)
    expect(bruno_page.get_by_role("heading", level=1, name="Join Ops Team")).to_be_visible()
    axe_check(bruno_page)
    bruno_page.get_by_role("button", name="Accept the invitation to Ops Team").click()
    expect(bruno_page.get_by_role("heading", level=1, name="Ops Team")).to_be_visible()
    expect(bruno_page.locator("#member-list")).to_contain_text("Alma")
    # A member sees no controls.
    expect(bruno_page.get_by_role("button", name="Invite")).to_have_count(0)

    page.goto(team_url)
    expect(page.locator("#member-list")).to_contain_text("Bruno")
    screenshot(page, "teams")

    # Alma creates a project and opens it.
    page.goto("/projects")
    axe_check(page)
    page.locator("#project-team").select_option(label="Ops Team")
    page.locator("#project-name").fill("Launch")
    page.locator("#project-description").fill("Everything for the launch")
    page.get_by_role("button", name="Create project", exact=True).click()
    expect(page).to_have_url(re.compile(r"/projects/[0-9a-f-]{36}$"))
    project_id = page.url.rsplit("/", 1)[1]
    page.goto("/projects")
    expect(page.get_by_role("link", name="Launch", exact=True)).to_have_attribute(
        "href", f"/projects/{project_id}")
    page.get_by_role("link", name="Settings of Launch").click()
    expect(page.get_by_role("heading", level=1, name="Settings of Launch")).to_be_visible()
    axe_check(page)

    # A notification arrives live: Bruno assigns Alma a task through the API.
    page.goto("/notifications")
    expect(page.locator("#inbox")).to_be_visible()
    axe_check(page)
    before = _unread(page)
    page.wait_for_function("() => document.body.dataset.live === 'connected'")
    bruno = api.login(bruno_email)
    alma_id = api.login(alma_email).user["id"]
    bruno.post("/api/tasks", {"title": "Book the venue", "project_id": project_id,
                              "assignee_ids": [alma_id]})
    expect(page.locator("#unread-count")).to_have_text(str(before + 1))
    first = page.locator(".notification").first
    expect(first).to_contain_text("Bruno assigned you to Book the venue")
    expect(first).to_have_class(re.compile(r"\bunread\b"))
    expect(first.get_by_role("link", name="Book the venue")).to_have_attribute(
        "href", re.compile(r"^/tasks/[0-9a-f-]{36}$"))

    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("#unread-count")).to_have_text("0")
    expect(page.locator(".notification.unread")).to_have_count(0)
    page.reload()
    expect(page.locator("#unread-count")).to_have_text("0")

    problems.assert_clean()
    bruno_problems.assert_clean()


def test_profile_changes_the_name_and_revokes_another_session(page, problems, new_context):
    email = unique_email("pia")
    register_user(page, "Pia", email)
    other = new_context().new_page()
    sign_in(other, email)

    page.goto("/profile")
    axe_check(page)
    expect(page.locator("#session-list > li")).to_have_count(2)
    expect(page.locator(".session.current")).to_contain_text("This browser")

    page.locator("#profile-name").fill("Pia Renamed")
    page.get_by_role("button", name="Save name").click()
    expect(page.locator(".notice.saved")).to_have_text("Your name was changed.")
    expect(page.locator(".menu summary")).to_have_text("Pia Renamed")

    # A wrong current password is refused with a message.
    page.locator("#password-current").fill("not my password")
    page.locator("#password-new").fill("a whole new password")
    page.locator("#password-confirm").fill("a whole new password")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-current-error")).to_have_text("Current password is incorrect.")
    axe_check(page)

    # Revoke the other browser's session: it is signed out.
    page.locator(".session:not(.current)").get_by_role("button", name=re.compile("^Revoke")).click()
    expect(page.locator("#session-list > li")).to_have_count(1)
    other.goto("/")
    expect(other).to_have_url(re.compile(r"/signin"))

    # The password failure above answered 422 to a navigation: not a page problem.
    problems.assert_clean()


def test_teams_and_notifications_fit_a_phone(phone_page):
    register_user(phone_page, "Phil", unique_email("phil"))
    _create_team(phone_page, "A team with a rather long name for a small phone screen")
    _fits_a_phone(phone_page)
    for path in ("/teams", "/notifications", "/projects", "/profile"):
        phone_page.goto(path)
        _fits_a_phone(phone_page)
    phone_page.goto("/notifications")
    axe_check(phone_page)
