"""Task lists and search in Chromium: the filter bar writes the URL, a reload keeps the view,
sorting, the keyboard, the bulk status change, a live refresh, search as you type with
highlights (reached with `/` from My work), axe on both screens, and a phone's width."""

import re
import time
import urllib.parse

from playwright.sync_api import expect

from harness import axe_check, register_user, screenshot, unique_email


def _person(page, api, name):
    """A user signed in on `page`, and their JSON client for setting up data."""
    email = unique_email(name.lower())
    register_user(page, name, email)
    return api.login(email)


def _project(who, name="Ship"):
    team = who.post("/api/teams", {"name": f"{name} crew"})
    return who.post("/api/projects", {"team_id": team["id"], "name": name})["id"]


def _rows(page):
    return page.locator("#list-results [data-nav-item] .task-title")


def _wait_searchable(who, q, title, timeout=15.0):
    """The index applies a change within a second; wait for it before typing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = who.call("GET", "/api/tasks/search?q=" + urllib.parse.quote(q))
        if status == 200 and any(hit["task"]["title"] == title for hit in body["items"]):
            return
        time.sleep(0.1)
    raise AssertionError(f"{title!r} never became searchable as {q!r}")


def test_filter_bar_writes_the_url_and_a_reload_keeps_the_view(page, problems, api):
    ada = _person(page, api, "Ada")
    project = _project(ada)
    alpha = ada.post("/api/tasks", {"title": "Alpha", "project_id": project, "priority": "low",
                                    "labels": ["x"]})
    ada.post("/api/tasks", {"title": "Bravo", "project_id": project, "priority": "urgent",
                            "status": "in_progress"})
    ada.post("/api/tasks", {"title": "Charlie", "project_id": project, "status": "done",
                            "labels": ["x"]})

    page.goto("/tasks")
    expect(page.get_by_role("heading", level=1, name="All tasks")).to_be_visible()
    expect(_rows(page)).to_have_text(["Charlie", "Bravo", "Alpha"])
    axe_check(page)

    filters = page.locator("form.filters")
    filters.get_by_label("Done").check()
    filters.get_by_label("To do").check()
    filters.get_by_label("Sort").select_option(label="Oldest first")
    filters.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"/tasks\?status=todo&status=done&sort=created$"))
    expect(_rows(page)).to_have_text(["Alpha", "Charlie"])

    page.reload()
    expect(_rows(page)).to_have_text(["Alpha", "Charlie"])
    expect(page.locator("form.filters").get_by_label("Done")).to_be_checked()
    expect(page.locator("form.filters").get_by_label("Sort")).to_have_value("created")

    # Sort by priority, most urgent first, with the label filter typed in.
    filters = page.locator("form.filters")
    filters.get_by_label("Done").uncheck()
    filters.get_by_label("To do").uncheck()
    filters.get_by_label("Label").fill("x")
    filters.get_by_label("Sort").select_option(label="Most urgent first")
    filters.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"/tasks\?label=x&sort=-priority$"))
    expect(_rows(page)).to_have_text(["Charlie", "Alpha"])
    page.locator("form.filters").get_by_role("link", name="Clear filters").click()
    expect(page).to_have_url(re.compile(r"/tasks$"))
    expect(_rows(page)).to_have_count(3)
    screenshot(page, "list")

    # j/k move over the rows; Enter opens the selected one.
    page.locator("h1").click()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(page.locator("[data-nav-item].selected .task-title")).to_have_text("Charlie")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator("[data-nav-item].selected .task-title")).to_have_text("Alpha")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"/tasks/{alpha['id']}$"))
    problems.assert_clean()


def test_bulk_status_change_and_live_refresh(page, problems, api):
    bo = _person(page, api, "Bo")
    project = _project(bo, "Dock")
    first = bo.post("/api/tasks", {"title": "Paint the hull", "project_id": project})
    second = bo.post("/api/tasks", {"title": "Check the sails", "project_id": project})
    bo.post("/api/tasks", {"title": "Leave me", "project_id": project})

    page.goto(f"/projects/{project}/list?sort=created")
    expect(_rows(page)).to_have_text(["Paint the hull", "Check the sails", "Leave me"])
    expect(page.get_by_label("Select all")).to_be_visible()
    page.get_by_label("Select Paint the hull").check()
    page.get_by_label("Select Check the sails").check()
    page.get_by_label("Set status of the selected tasks to").select_option(label="Done")
    page.get_by_role("button", name="Set status").click()

    report = page.locator("#bulk-report")
    expect(report).to_contain_text("2 of 2")
    expect(report.locator(".outcome-done")).to_have_count(2)
    # Done in place (htmx): the address is still the list's, the rows show the change.
    expect(page).to_have_url(re.compile(f"/projects/{project}/list\\?sort=created$"))
    expect(page.locator(f"#row-{first['id']} .status-done")).to_be_visible()
    expect(page.locator(f"#row-{second['id']} .status-done")).to_be_visible()
    expect(page.get_by_label("Select Paint the hull")).not_to_be_checked()
    assert bo.get(f"/api/tasks/{first['id']}")["status"] == "done"
    axe_check(page)

    # Someone else's change shows up without a reload.
    bo.post("/api/tasks", {"title": "Arrived while watching", "project_id": project})
    expect(page.locator("#list-results")).to_contain_text("Arrived while watching")
    problems.assert_clean()


def test_search_as_you_type_from_a_slash(page, problems, api):
    cy = _person(page, api, "Cy")
    project = _project(cy, "Launch")
    cy.post("/api/tasks", {"title": "Deploy the <b>rocket</b>", "project_id": project,
                           "description": "We deploy on Fridays."})
    cy.post("/api/tasks", {"title": "Unrelated chore", "project_id": project})
    _wait_searchable(cy, "deploy", "Deploy the <b>rocket</b>")

    page.goto("/")
    expect(page.get_by_role("heading", level=1, name="My work")).to_be_visible()
    page.keyboard.press("/")
    expect(page).to_have_url(re.compile(r"/search$"))
    search = page.get_by_role("searchbox", name="Search tasks")
    expect(search).to_be_focused()
    axe_check(page)

    page.keyboard.type("depl", delay=60)
    results = page.locator("#search-results")
    # A prefix marks the whole word it matched.
    expect(results.locator(".task-title mark")).to_have_text(["Deploy"])
    # The title's markup is text, never HTML.
    expect(results.locator(".task-title")).to_have_text(["Deploy the <b>rocket</b>"])
    expect(results.locator(".task-title b")).to_have_count(0)
    expect(results.locator(".snippet mark")).to_have_text(["deploy"])
    expect(results).not_to_contain_text("Unrelated chore")
    expect(page).to_have_url(re.compile(r"/search\?q=depl"))
    axe_check(page)
    screenshot(page, "search")

    page.reload()
    expect(page.locator("#search-results .task-title mark")).to_have_text(["Deploy"])

    # A filter narrows the results in place.
    page.locator("form.search-form").get_by_label("Done").check()
    expect(page.locator("#search-results")).to_contain_text("Nothing matches")
    expect(page).to_have_url(re.compile(r"status=done"))

    # A query without a word: a message, not an error.
    search = page.get_by_role("searchbox", name="Search tasks")
    search.fill("!!")
    expect(page.locator("#search-results")).to_contain_text("Type at least one word or number")
    problems.assert_clean()


def test_lists_and_search_fit_a_phone(phone_page, api):
    dee = _person(phone_page, api, "Dee")
    project = _project(dee, "A project with a rather long name to wrap")
    dee.post("/api/tasks", {
        "title": "A long task title that must wrap instead of scrolling sideways on a phone",
        "project_id": project, "labels": ["one-label", "another-label", "third-label"],
        "due_date": "2031-05-04T10:00:00Z", "priority": "urgent"})
    for path in ["/tasks", f"/projects/{project}/list", "/search?q=long"]:
        phone_page.goto(path)
        expect(phone_page.locator("h1")).to_be_visible()
        width = phone_page.evaluate("() => document.scrollingElement.scrollWidth")
        assert width <= 375, f"{path} scrolls sideways at 375 px: {width} px wide"
    phone_page.goto("/tasks")
    screenshot(phone_page, "list-phone")
