"""The harness itself: axe finds what it should, works under a strict CSP, and the API helper
and server fixtures do what conftest says."""

import pytest
from playwright.sync_api import expect

from harness import Api, axe_check, register_user, unique_email

STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'"


def serve_html(context, server, path, body):
    """Answer `path` on the test server's origin with `body` under a strict CSP."""
    context.route(server.url + path, lambda route: route.fulfill(
        status=200, body=body, content_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": STRICT_CSP}))


def test_axe_reports_serious_violations_readably(context, page, server):
    serve_html(context, server, "/__harness/bad",
               "<!doctype html><html><head><title>bad</title></head>"
               "<body><main><button></button><img src='/favicon.ico'></main></body></html>")
    page.goto("/__harness/bad")
    with pytest.raises(AssertionError) as failure:
        axe_check(page)
    message = str(failure.value)
    assert "button-name" in message and "image-alt" in message, message
    assert "at button" in message, message


def test_axe_runs_under_a_strict_csp_without_violations(context, page, problems, server):
    serve_html(context, server, "/__harness/good",
               "<!doctype html><html lang='en'><head><title>good</title></head>"
               "<body><main><h1>Fine</h1><button>Press</button></main></body></html>")
    page.goto("/__harness/good")
    assert axe_check(page) == []
    problems.assert_clean()


def test_csp_violations_are_caught(context, page, problems, server):
    serve_html(context, server, "/__harness/inline",
               "<!doctype html><html lang='en'><head><title>inline</title></head>"
               "<body><main><h1>x</h1><script>document.title = 'ran'</script></main></body></html>")
    page.goto("/__harness/inline")
    page.wait_for_load_state("load")
    assert page.title() == "inline"
    assert problems.csp_violations(), problems.all()


def test_api_helper_registers_and_calls_with_a_bearer_token(api):
    email = unique_email("api")
    alice = api.register("Alice", email)
    assert alice.token and alice.user["email"] == email
    assert api.login(email).token
    status, body = Api(api.base).call("GET", "/api/users/me")
    assert status == 401, body
    assert alice.get("/api/users/me")["email"] == email


def test_start_server_gives_a_fresh_server_with_flags(start_server, server):
    closed = start_server("--registration", "closed")
    assert closed.url != server.url
    status, body = Api(closed.url).call(
        "POST", "/api/auth/register",
        {"name": "Nobody", "email": unique_email(), "password": "correct horse battery"})
    assert status == 403, body
    assert body["code"] == "registration_closed", body


def test_register_user_makes_a_signed_in_account(page, api):
    """Through the web form once there is one; until then through the JSON API."""
    email = unique_email("reg")
    user = register_user(page, "Reggie", email)
    if user.via == "api":
        assert user.token
        assert Api(api.base, token=user.token).get("/api/users/me")["email"] == email
    else:
        expect(page.get_by_role("heading", level=1, name="My work")).to_be_visible()
    assert api.login(email).token
