"""A team's webhooks in a real browser: an owner opens them from the team page, a private
target is refused with the message on the form, a hook to a receiver on this machine is made
and its secret shown once, a ping is sent with the button and lands in the delivery log with
its status; both pages pass axe and fit a phone.

The server runs with `--webhook-allowed-hosts loopback` so the receiver (Python's http.server
on a thread) may be on 127.0.0.1; private ranges stay refused."""

import http.server
import re
import threading

import pytest
from playwright.sync_api import expect

from harness import PHONE, axe_check, register_user, screenshot, sign_in, unique_email, watch


def _fits_a_phone(page):
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 375, f"{page.url} scrolls sideways at 375 px: {width} px wide"


class _Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        self.server.received.append((self.path, dict(self.headers), body))
        reply = b"thanks"
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 answering 200 "thanks"; `.url`, `.received`."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    httpd.received = []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def hooks_server(start_server):
    return start_server("--webhook-allowed-hosts", "loopback")


def _create_team(page, name):
    page.goto("/teams")
    page.locator("#team-name").fill(name)
    page.get_by_role("button", name="Create team", exact=True).click()
    expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()


def test_an_owner_makes_a_webhook_pings_it_and_reads_the_log(hooks_server, new_context, receiver):
    page = new_context(base_url=hooks_server.url).new_page()
    problems = watch(page)
    email = unique_email("hilde")
    register_user(page, "Hilde", email)
    _create_team(page, "Hook Team")
    team_url = page.url

    page.get_by_role("link", name="Webhooks", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Webhooks")).to_be_visible()
    expect(page.locator("#hooks")).to_contain_text("No webhooks yet")
    axe_check(page)

    # A private target: the form again with the message and what was typed; nothing saved.
    page.locator("#hook-url").fill("http://10.0.0.5/")
    page.get_by_role("button", name="Add webhook", exact=True).click()
    error = page.locator("#hook-url-error")
    expect(error).to_contain_text("private network")
    expect(page.locator("#hook-url")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#hook-url")).to_have_value("http://10.0.0.5/")
    expect(page.locator("#hook-list li")).to_have_count(0)
    axe_check(page)

    # A hook to the receiver: the secret is shown once.
    page.locator("#hook-url").fill(receiver.url)
    page.locator("#hook-events").fill("task.created, comment.*")
    page.get_by_role("button", name="Add webhook", exact=True).click()
    secret = page.locator("#hook-secret")
    expect(secret).to_have_value(re.compile(r"^whsec_\S+$"))
    expect(page.locator("#created-secret")).to_contain_text("Webhook created")
    expect(page.locator("#hook-list li")).to_have_count(1)
    expect(page.locator("#hook-list")).to_contain_text(receiver.url)
    expect(page.locator("#hook-list")).to_contain_text("Events: comment.*, task.created")
    axe_check(page)
    secret_value = secret.input_value()

    page.goto(team_url + "/webhooks")
    expect(page.locator("#hook-list li")).to_have_count(1)
    expect(page.locator("#hook-secret")).to_have_count(0)
    assert secret_value not in page.content()
    screenshot(page, "hooks")
    hooks_url = page.url

    # The hook's page: settings and an empty log; a ping lands in it with the receiver's answer.
    page.get_by_role("link", name=receiver.url).click()
    expect(page.get_by_role("heading", level=1, name=receiver.url)).to_be_visible()
    expect(page.locator("#deliveries")).to_contain_text("Nothing sent yet")
    axe_check(page)
    page.get_by_role("button", name="Send a ping", exact=True).click()
    ping = page.locator("#delivery-list li").filter(has_text="ping")
    expect(ping).to_have_count(1)
    expect(ping.locator(".badge")).to_have_text("ok")
    expect(ping.locator("summary")).to_contain_text("200")
    assert any(b'"type":"ping"' in body for _, _, body in receiver.received), receiver.received
    ping.locator("summary").click()
    expect(ping.locator("pre.delivery-body").nth(1)).to_have_text("thanks")
    axe_check(page)
    hook_url = page.url.split("#", 1)[0]
    problems.assert_clean()

    # Both pages on a phone.
    phone = new_context(base_url=hooks_server.url, **PHONE).new_page()
    phone_problems = watch(phone)
    sign_in(phone, email)
    for url in (hooks_url, hook_url):
        phone.goto(url)
        expect(phone.get_by_role("heading", level=1)).to_be_visible()
        _fits_a_phone(phone)
        axe_check(phone)
    phone_problems.assert_clean()
