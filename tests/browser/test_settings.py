"""Notification settings in a real browser: reached from the profile, a time zone, a morning
reminder hour, the daily digest and a per-kind choice are saved and kept across a reload; a
private ntfy URL is refused with the message and nothing is saved; the page passes axe and fits
a phone."""

from playwright.sync_api import expect

from harness import axe_check, register_user, screenshot, unique_email, watch


def _fits_a_phone(page):
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 375, f"{page.url} scrolls sideways at 375 px: {width} px wide"


def _expect_kept(page):
    expect(page.locator("#time-zone")).to_have_value("Europe/Berlin")
    expect(page.locator("#morning-hour")).to_have_value("8")
    expect(page.locator("#digest-hour")).to_have_value("7")
    expect(page.locator("#kind-comment_added")).to_have_value("digest")
    expect(page.locator("#lead-minutes")).to_have_value("15, 60")


def test_settings_are_saved_kept_and_a_bad_value_is_refused(page, problems):
    register_user(page, "Setta", unique_email("setta"))
    page.goto("/profile")
    page.get_by_role("link", name="Notification settings", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Notification settings")).to_be_visible()
    axe_check(page)

    page.locator("#time-zone").select_option("Europe/Berlin")
    page.locator("#morning-hour").select_option(label="08:00")
    page.locator("#lead-minutes").fill("15, 60")
    page.locator("#digest-hour").select_option(label="07:00")
    page.get_by_label("A comment on a task of yours").select_option(label="In the daily digest")
    page.get_by_role("button", name="Save settings", exact=True).click()
    expect(page.locator("p.notice.saved")).to_contain_text("Your notification settings were saved")
    _expect_kept(page)
    axe_check(page)
    screenshot(page, "settings")

    page.reload()
    _expect_kept(page)

    # A private ntfy URL: the message on the field, what was typed kept in the form, and
    # nothing saved (the time zone changed with it is not kept either).
    page.locator("#time-zone").select_option("America/New_York")
    page.locator("#ntfy-url").fill("http://192.168.1.5/topic")
    page.get_by_role("button", name="Save settings", exact=True).click()
    expect(page.locator("#ntfy-url-error")).to_contain_text("private network")
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    expect(page.locator("#ntfy-url")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#ntfy-url")).to_have_value("http://192.168.1.5/topic")
    axe_check(page)

    page.goto("/settings/notifications")
    _expect_kept(page)
    expect(page.locator("#ntfy-url")).to_have_value("")
    problems.assert_clean()


def test_the_settings_page_fits_a_phone(phone_page):
    phone_problems = watch(phone_page)
    register_user(phone_page, "Phyllis", unique_email("phyllis"))
    phone_page.goto("/settings/notifications")
    expect(phone_page.get_by_role("heading", level=1, name="Notification settings")).to_be_visible()
    _fits_a_phone(phone_page)
    axe_check(phone_page)
    phone_problems.assert_clean()
