"""API tokens in a real browser: a token is made from the profile's tokens page, its secret is
shown once with a copy button and works on the API, then it is revoked after a confirmation;
the page passes axe and fits a phone."""

import datetime
import re
import urllib.error
import urllib.request

from playwright.sync_api import expect

from harness import axe_check, register_user, screenshot, unique_email


def _fits_a_phone(page):
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 375, f"{page.url} scrolls sideways at 375 px: {width} px wide"


def _status_with(base_url, token):
    request = urllib.request.Request(f"{base_url}/api/tasks", headers={"authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_token_is_made_shown_once_and_revoked(page, problems, server):
    register_user(page, "Tokie", unique_email("tokie"))
    page.goto("/profile")
    page.get_by_role("link", name="Manage API tokens").click()
    expect(page.get_by_role("heading", level=1, name="API tokens")).to_be_visible()
    axe_check(page)

    page.locator("#token-name").fill("CI deploy")
    page.locator("#scope-tasks-read").check()
    page.locator("#scope-comments-write").check()
    expires = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    page.locator("#token-expires").fill(expires)
    page.get_by_role("button", name="Create token", exact=True).click()
    secret = page.locator("#token-secret")
    expect(secret).to_have_value(re.compile(r"^tkr_pat_[0-9a-f]{64}$"))
    expect(page.get_by_role("button", name="Copy token")).to_be_visible()
    expect(page.locator("#token-list")).to_contain_text("CI deploy")
    axe_check(page)
    screenshot(page, "tokens")
    token = secret.input_value()
    assert _status_with(server.url, token) == 200

    # Shown once: a reload lists the token without its secret.
    page.goto("/profile/tokens")
    expect(page.locator("#token-secret")).to_have_count(0)
    assert token not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=re.compile("Revoke")).click()
    expect(page.locator("p.notice.saved")).to_contain_text("The token was revoked")
    expect(page.locator("#token-list li")).to_have_count(0)
    assert _status_with(server.url, token) == 401
    problems.assert_clean()


def test_the_tokens_page_fits_a_phone(phone_page):
    register_user(phone_page, "Phoebe", unique_email("phoebe"))
    phone_page.goto("/profile/tokens")
    _fits_a_phone(phone_page)
    axe_check(phone_page)
