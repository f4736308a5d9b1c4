"""Fixtures for the browser tests: see README.md beside this file for the list.

Needs TASKER_BIN (the built binary; `cargo test --test api -- browser` sets it) and Chromium at
/usr/bin/chromium (or TASKER_CHROMIUM). Never `playwright install`: the distribution's Chromium
is the browser.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

import harness
from harness import PHONE, Api, Problems, TaskerServer

# cargo test runs this suite beside the other integration tests on a small machine: give
# auto-retrying assertions more than the default 5 s before they give up.
expect.set_options(timeout=15_000)


def _tasker_bin() -> str:
    binary = os.environ.get("TASKER_BIN", "")
    if not binary or not Path(binary).is_file():
        pytest.exit(
            "TASKER_BIN must name the built tasker binary (e.g. target/debug/tasker); "
            "`cargo test --test api -- browser` sets it",
            returncode=4,
        )
    return binary


def _start(*extra_args: str) -> TaskerServer:
    return TaskerServer(_tasker_bin(), *extra_args).start()


def _finish(server: TaskerServer) -> None:
    server.stop()
    errors = server.errors()
    log = server.log()
    server.cleanup()
    if errors:
        pytest.fail(
            "the server logged errors:\n" + "\n".join(errors[:20])
            + "\n--- last log lines\n" + "\n".join(log.splitlines()[-40:]),
            pytrace=False,
        )


# --- servers ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server() -> Iterator[TaskerServer]:
    """One tasker for the whole run (`server.url`, `server.data_dir`, `server.log()`).

    Shared: use `harness.unique_email()` for accounts, and do not assume it has no account.
    """
    s = _start()
    yield s
    _finish(s)


@pytest.fixture
def start_server() -> Iterator[Callable[..., TaskerServer]]:
    """A factory for fresh servers with extra `tasker serve` flags, stopped after the test:
    `start_server("--registration", "closed")`."""
    started: list[TaskerServer] = []

    def start(*extra_args: str) -> TaskerServer:
        s = _start(*extra_args)
        started.append(s)
        return s

    yield start
    for s in started:
        _finish(s)


@pytest.fixture
def fresh_server(start_server: Callable[..., TaskerServer]) -> TaskerServer:
    """A new server with no account yet (first-run set-up), for this test only."""
    return start_server()


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(harness.CHROMIUM).exists():
        pytest.exit(f"{harness.CHROMIUM} is missing: apt-get install chromium", returncode=4)
    b = playwright.chromium.launch(
        executable_path=harness.CHROMIUM, headless=True, args=harness.CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def new_context(browser: Browser, server: TaskerServer) -> Iterator[Callable[..., BrowserContext]]:
    """A factory for more browser contexts (separate cookie jars: a second user, live
    two-browser tests), closed after the test. `new_context(base_url=fresh_server.url)` points
    one at another server; other keywords go to `browser.new_context`, e.g. `**harness.PHONE`."""
    contexts: list[BrowserContext] = []

    def make(**options: object) -> BrowserContext:
        options.setdefault("base_url", server.url)
        c = browser.new_context(**options)
        contexts.append(c)
        return c

    yield make
    for c in contexts:
        c.close()


@pytest.fixture
def context(new_context: Callable[..., BrowserContext]) -> BrowserContext:
    """This test's browser context on the shared server (relative URLs work: `page.goto("/")`)."""
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page in `context`; its problems are collected in the `problems` fixture."""
    p = context.new_page()
    p._tasker_problems = harness.watch(p)  # type: ignore[attr-defined]
    return p


@pytest.fixture
def problems(page: Page) -> Problems:
    """Console errors, uncaught exceptions, CSP violations and failed requests of `page`:
    `problems.assert_clean()`."""
    return page._tasker_problems  # type: ignore[attr-defined]


@pytest.fixture
def phone(new_context: Callable[..., BrowserContext]) -> BrowserContext:
    """A 375x812 touch phone context on the shared server."""
    return new_context(**PHONE)


@pytest.fixture
def phone_page(phone: BrowserContext) -> Page:
    return phone.new_page()


# --- helpers as fixtures (the same functions can be imported from harness) --------------------


@pytest.fixture
def api(server: TaskerServer) -> Api:
    """An anonymous JSON client on the shared server: `alice = api.register(...)`,
    then `alice.post("/api/teams", {...})`."""
    return Api(server.url)


@pytest.fixture
def register_user() -> Callable[..., harness.User]:
    return harness.register_user


@pytest.fixture
def sign_in() -> Callable[..., None]:
    return harness.sign_in


@pytest.fixture
def sign_out() -> Callable[..., None]:
    return harness.sign_out


@pytest.fixture
def axe_check() -> Callable[..., list]:
    return harness.axe_check


@pytest.fixture
def screenshot() -> Callable[..., Path | None]:
    return harness.screenshot
