"""The task page in a real browser: edit every field and save, Markdown preview, comments without
a reload, an upload with progress and its download, a conflict made by a second browser and
resolved by "Apply my changes again", accessibility, a phone, and the README's screenshot."""

from __future__ import annotations

from playwright.sync_api import expect

from harness import PHONE, axe_check, register_user, screenshot, sign_in, unique_email, watch

DESCRIPTION = """The public launch of the **spring release**.

Steps:

- freeze the branch on Monday
- run the upgrade test on the staging NAS
- write the release notes ([draft](https://example.com/notes))
"""


def make_task(page, api, name="Rosa Rivera"):
    """A signed-in user on `page` with a team, a project and a task assigned to them."""
    email = unique_email("task")
    register_user(page, name, email)
    me = api.login(email)
    team = me.post("/api/teams", {"name": "Platform"})
    project = me.post("/api/projects", {"team_id": team["id"], "name": "Spring release"})
    task = me.post("/api/tasks", {
        "title": "Ship the spring release",
        "description": DESCRIPTION,
        "project_id": project["id"],
        "priority": "high",
        "labels": ["release", "ops"],
        "assignee_ids": [me.user["id"]],
    })
    return me, email, task


def test_edit_fields_preview_and_save(page, problems, api):
    me, _, task = make_task(page, api)
    page.goto(f"/tasks/{task['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ship the spring release")
    expect(page.locator("#task-description li")).to_have_count(3)
    axe_check(page)

    page.keyboard.press("e")  # the shortcut opens the form in place
    form = page.locator("#task-edit")
    expect(form).to_be_visible()
    expect(page.locator("#f-title")).to_be_focused()
    page.fill("#f-title", "Ship the spring release (RC2)")
    page.select_option("#f-status", "in_progress")
    page.select_option("#f-priority", "urgent")
    page.fill("#f-due", "2026-04-30")
    page.fill("#f-labels", "release, ops, rc")
    page.fill("#f-description", "Now with **bold** and\n\n- a list")
    page.get_by_role("button", name="Preview the description").click()
    preview = page.locator("#description-preview")
    expect(preview.locator("strong")).to_have_text("bold")
    expect(preview.locator("li")).to_have_text("a list")
    axe_check(page)
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Ship the spring release (RC2)")
    expect(page.locator("#task-edit")).to_be_hidden()
    expect(page.locator("#task-view")).to_contain_text("In progress")
    expect(page.locator("#task-view")).to_contain_text("Urgent")
    expect(page.locator("#activity")).to_contain_text("changed status from To do to In progress")
    saved = me.get(f"/api/tasks/{task['id']}")
    assert saved["title"] == "Ship the spring release (RC2)"
    assert saved["status"] == "in_progress" and saved["priority"] == "urgent"
    assert saved["due_date"].startswith("2026-04-30")
    assert saved["labels"] == ["release", "ops", "rc"]
    assert saved["description"] == "Now with **bold** and\n\n- a list"
    problems.assert_clean()


def test_comment_upload_download_and_screenshot(page, problems, api, tmp_path):
    me, _, task = make_task(page, api)
    page.goto(f"/tasks/{task['id']}")
    page.evaluate("() => { window.__notReloaded = true; }")

    for text in ["Staging upgrade passed on the **DS920+**.", "Release notes draft is attached."]:
        page.fill("#comment-body", text)
        page.get_by_role("button", name="Comment", exact=True).click()
        expect(page.locator("#comment-list .comment").last).to_contain_text(text.replace("**", ""))
        expect(page.locator("#comment-body")).to_have_value("")
    expect(page.locator("#comment-list .comment")).to_have_count(2)
    expect(page.locator("#comment-list strong")).to_have_text("DS920+")
    assert page.evaluate("() => window.__notReloaded === true"), "the page reloaded"

    notes = tmp_path / "release-notes.txt"
    content = b"Spring release notes\n" + b"x" * 3_000_000
    notes.write_bytes(content)
    page.set_input_files("#upload-file", str(notes))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("[data-upload-status]")).to_have_text("Uploaded release-notes.txt.")
    assert page.evaluate("() => document.querySelector('.upload-progress').value") == 100
    link = page.get_by_role("link", name="release-notes.txt")
    expect(link).to_be_visible()
    assert page.evaluate("() => window.__notReloaded === true"), "the page reloaded"

    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "release-notes.txt"
    assert open(download.value.path(), "rb").read() == content
    files = me.get(f"/api/tasks/{task['id']}/attachments")["items"]
    assert [f["filename"] for f in files] == ["release-notes.txt"]

    page.reload()
    axe_check(page)
    problems.assert_clean()
    screenshot(page, "task")


def test_a_conflict_from_a_second_browser_is_resolved_by_applying_again(page, problems, api,
                                                                        new_context):
    me, email, task = make_task(page, api)
    url = f"/tasks/{task['id']}"
    page.goto(url)
    page.get_by_role("link", name="Edit").click()
    page.fill("#f-title", "My better title")
    page.fill("#f-description", "My careful rewrite that must not be lost.")

    # Someone (the same person in another browser) saves another change first.
    other = new_context().new_page()
    other_problems = watch(other)
    sign_in(other, email)
    other.goto(url)
    other.get_by_role("link", name="Edit").click()
    other.select_option("#f-priority", "urgent")
    other.get_by_role("button", name="Save").click()
    expect(other.locator("#task-view")).to_contain_text("Urgent")
    other_problems.assert_clean()

    # The open form is not clobbered: a notice says what happened.
    expect(page.locator("#task-notice")).to_be_visible()
    expect(page.locator("#f-title")).to_have_value("My better title")

    page.get_by_role("button", name="Save").click()
    panel = page.locator("#conflict")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Urgent")
    expect(panel).to_contain_text("My better title")
    expect(page.locator("#f-description")).to_have_value("My careful rewrite that must not be lost.")
    assert me.get(f"/api/tasks/{task['id']}")["title"] == "Ship the spring release"
    axe_check(page)

    page.get_by_role("button", name="Apply my changes again").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My better title")
    expect(page.locator("#conflict")).to_have_count(0)
    saved = me.get(f"/api/tasks/{task['id']}")
    assert saved["title"] == "My better title"
    assert saved["priority"] == "urgent", "their change is kept"
    assert saved["description"] == "My careful rewrite that must not be lost."
    problems.assert_clean()


def test_new_task_form_and_the_page_on_a_phone(new_context, api):
    phone = new_context(**PHONE).new_page()
    phone_problems = watch(phone)
    me, _, task = make_task(phone, api, "Pat Phone")
    me.post(f"/api/tasks/{task['id']}/comments", {"body": "A comment with a long-unbroken-word-" * 3})
    phone.goto(f"/tasks/{task['id']}")
    expect(phone.get_by_role("heading", level=1)).to_be_visible()
    width = phone.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 375, f"the task page scrolls sideways at 375 px: {width} px wide"
    axe_check(phone)

    phone.get_by_role("link", name="New task").click()
    expect(phone.get_by_role("heading", level=1, name="New task")).to_be_visible()
    expect(phone.locator("#f-project option:checked")).to_have_text("Platform / Spring release")
    width = phone.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 375, f"the create form scrolls sideways at 375 px: {width} px wide"
    axe_check(phone)
    phone.fill("#f-title", "Book the launch call")
    phone.fill("#f-due", "2026-05-02")
    phone.get_by_role("button", name="Create task").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Book the launch call")
    expect(phone.locator("nav.crumbs")).to_contain_text("Spring release")
    phone_problems.assert_clean()
