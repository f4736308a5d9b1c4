"""My work in a real browser: the open tasks assigned to me across projects, grouped by when
they are due, a new assignment appearing live, the `?` shortcuts dialog, axe and a phone."""

from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from harness import axe_check, screenshot, sign_in, unique_email


def _due(days: int) -> str:
    at = datetime.now(timezone.utc).replace(hour=23, minute=0, second=0, microsecond=0)
    return (at + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_my_work_groups_by_due_date_and_updates_live(page, problems, api, phone):
    email = unique_email("mina")
    mina = api.register("Mina Okafor", email)
    me = mina.user["id"]
    team = mina.post("/api/teams", {"name": "Home lab"})
    nas = mina.post("/api/projects", {"team_id": team["id"], "name": "NAS upgrade"})
    garden = mina.post("/api/projects", {"team_id": team["id"], "name": "Garden"})
    plan = [
        ("Replace the failing disk", nas, -2, "urgent", ["hardware"]),
        ("Renew the TLS certificate", nas, 0, "high", ["ops"]),
        ("Order tomato seedlings", garden, 3, "medium", []),
        ("Test the restore from backup", nas, 20, "high", ["ops", "backup"]),
        ("Sketch the raised beds", garden, None, "low", []),
    ]
    for title, project, days, priority, labels in plan:
        body = {"title": title, "project_id": project["id"], "assignee_ids": [me],
                "priority": priority, "labels": labels}
        if days is not None:
            body["due_date"] = _due(days)
        mina.post("/api/tasks", body)
    # Done work and other people's work stay off the page.
    done = mina.post("/api/tasks", {"title": "Buy a UPS", "project_id": nas["id"],
                                    "assignee_ids": [me], "status": "done"})
    mina.post("/api/tasks", {"title": "Unassigned idea", "project_id": garden["id"]})

    sign_in(page, email)
    main = page.locator("main")
    for heading in ["Overdue", "Today", "This week", "Later", "No date"]:
        expect(main.get_by_role("heading", level=2, name=heading)).to_be_visible()
    expect(page.locator("#group-overdue").locator("xpath=..")).to_contain_text("Replace the failing disk")
    expect(main).not_to_contain_text(done["title"])
    expect(main).not_to_contain_text("Unassigned idea")

    # Someone assigns me something: it appears without a reload.
    mina.post("/api/tasks", {"title": "Update the router firmware", "project_id": nas["id"],
                             "assignee_ids": [me], "due_date": _due(1)})
    expect(main.get_by_role("link", name="Update the router firmware")).to_be_visible(timeout=5000)

    # j/k select, Enter opens; ? lists the shortcuts.
    page.keyboard.press("?")
    dialog = page.locator("#shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Search")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    axe_check(page)
    screenshot(page, "my-work")
    problems.assert_clean()

    phone_page = phone.new_page()
    sign_in(phone_page, email)
    expect(phone_page.get_by_role("heading", level=1, name="My work")).to_be_visible()
    width = phone_page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 375, f"My work scrolls sideways at 375 px: {width} px wide"
    axe_check(phone_page)
