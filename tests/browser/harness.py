"""The browser-test harness: a real tasker process, the distribution's Chromium, and helpers.

Fixtures live in conftest.py; everything here is plain code a test may also import
(`from harness import sign_in, axe_check, ...`; pytest puts this directory on sys.path).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENDOR = HERE / "vendor"
SCREENSHOTS = REPO / "docs" / "screenshots"

CHROMIUM = os.environ.get("TASKER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PASSWORD = "correct horse battery"
PHONE = {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True}

# Server settings a test run must not inherit from the caller's environment (tasker reads these).
_SERVER_ENV_DROP = ("PORT", "JWT_SECRET", "CORS_ORIGINS", "RUST_LOG")


def unique_email(prefix: str = "user") -> str:
    """An address no other test on the shared server uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


# --- the server -------------------------------------------------------------------------------


class TaskerServer:
    """`tasker serve` on 127.0.0.1 with a port the kernel picks and a temporary data directory.

    The address comes from the server's own JSON log line, so there is no race for a port.
    """

    def __init__(self, binary: str, *extra_args: str) -> None:
        self.binary = binary
        self.extra_args = list(extra_args)
        self.tmp = Path(tempfile.mkdtemp(prefix="tasker-browser-"))
        self.data_dir = self.tmp / "data"
        self.log_path = self.tmp / "server.log"
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> "TaskerServer":
        try:
            return self._start(timeout)
        except BaseException:
            self.cleanup()  # the error carries the log
            raise

    def _start(self, timeout: float) -> "TaskerServer":
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TASKER_") and k not in _SERVER_ENV_DROP
        }
        env["LOG_LEVEL"] = "info"  # the "listening" line is at info
        defaults = {
            "--listen": "127.0.0.1:0",
            "--data-dir": str(self.data_dir),
            "--log-format": "json",
            "--bcrypt-cost": "4",  # the lowest allowed: tests hash many passwords
            "--rate-limit": "off",  # every request comes from 127.0.0.1
            "--registration": "open",
        }
        given = {a.split("=", 1)[0] for a in self.extra_args if a.startswith("--")}
        args = [self.binary, "serve"]
        for flag, value in defaults.items():
            if flag not in given:  # extra_args override a default
                args += [flag, value]
        args += self.extra_args
        with open(self.log_path, "wb") as log:
            # cwd: the temp dir, so a developer's ./.env cannot change the server's settings.
            self.process = subprocess.Popen(
                args, cwd=self.tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while not self.url:
            if self.process.poll() is not None:
                raise RuntimeError(f"tasker exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"tasker did not report its address:\n{self.log()}")
            for event in self.events():
                if "address" in event and "listening" in event.get("message", ""):
                    self.url = "http://" + event["address"]
                    break
            else:
                time.sleep(0.05)
        while True:
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=5) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"/api/health did not answer 200:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                out.append(event)
        return out

    def errors(self) -> list[str]:
        """Log lines at ERROR level, and panics: a clean run has none."""
        return [
            line
            for line in self.log().splitlines()
            if '"level":"ERROR"' in line or "panicked" in line
        ]

    def status(self, path: str) -> int:
        """The status `GET path` answers, without following redirects."""

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(self.url + path, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- the JSON API -----------------------------------------------------------------------------


class ApiError(AssertionError):
    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {path} answered {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Api:
    """A small JSON client for setting up data: `api.register(...)` gives a signed-in copy.

    `api.post("/api/teams", {"name": "Ops"})` returns the parsed body and raises ApiError on
    anything but 2xx; `api.call(...)` returns `(status, body)` without raising.
    """

    base: str
    token: str | None = None
    user: dict[str, Any] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, parsed = self.call(method, path, body, **kw)
        if not 200 <= status < 300:
            raise ApiError(method, path, status, parsed)
        return parsed

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, {} if body is None else body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def _signed_in(self, reply: dict[str, Any]) -> "Api":
        return Api(self.base, token=reply["token"], user=reply.get("user", {}))

    def register(self, name: str, email: str, password: str = PASSWORD) -> "Api":
        """A new account (the server's first becomes its admin), as a client signed in as it."""
        return self._signed_in(Api(self.base).post(
            "/api/auth/register", {"name": name, "email": email, "password": password}))

    def login(self, email: str, password: str = PASSWORD) -> "Api":
        return self._signed_in(Api(self.base).post(
            "/api/auth/login", {"email": email, "password": password}))


# --- what a page did wrong --------------------------------------------------------------------


@dataclass
class Problems:
    """Console errors, uncaught exceptions, CSP violations, failed and 4xx/5xx requests.

    A page the test itself opened (a navigation) that answers 4xx/5xx is not counted, nor
    Chromium's console line about it: the test sees that status from `page.goto` and decides.
    """

    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    error_pages: list[str] = field(default_factory=list)  # URLs of navigations that got >= 400

    def _is_error_page_line(self, message: str) -> bool:
        return message.startswith("Failed to load resource: the server responded with") and any(
            message.endswith(f"({url}:0)") for url in self.error_pages)

    def all(self) -> list[str]:
        console = [m for m in self.console if not self._is_error_page_line(m)]
        return [
            *(f"console error: {m}" for m in console),
            *(f"uncaught exception: {m}" for m in self.page_errors),
            *(f"request failed: {m}" for m in self.failed_requests),
            *(f"error response: {m}" for m in self.bad_responses),
        ]

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]

    def assert_clean(self) -> None:
        found = self.all()
        assert not found, "the page had problems:\n  " + "\n  ".join(found)

    def clear(self) -> None:
        for part in (self.console, self.page_errors, self.failed_requests, self.bad_responses,
                     self.error_pages):
            part.clear()


def watch(page: Page) -> Problems:
    """Start collecting a page's problems; the `page` fixture does this already (`problems`).

    Chromium reports CSP violations (and blocked loads) as console errors, so they land in
    `console` too; `csp_violations()` picks them out.
    """
    problems = Problems()

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            loc = msg.location or {}
            where = f" ({loc.get('url')}:{loc.get('lineNumber')})" if loc.get("url") else ""
            problems.console.append(msg.text + where)

    page.on("console", on_console)
    page.on("pageerror", lambda err: problems.page_errors.append(str(err)))
    def on_request_failed(req: Any) -> None:
        # net::ERR_ABORTED is a cancellation, not a failure: a navigation that replaced the
        # page, or a fetch the page aborted itself because a newer one superseded it.
        if "ERR_ABORTED" in (req.failure or ""):
            return
        problems.failed_requests.append(f"{req.method} {req.url}: {req.failure}")

    page.on("requestfailed", on_request_failed)

    def on_response(resp: Any) -> None:
        if resp.status < 400:
            return
        if resp.request.is_navigation_request() and resp.frame == page.main_frame:
            problems.error_pages.append(resp.url)
        else:
            problems.bad_responses.append(f"{resp.request.method} {resp.url}: {resp.status}")

    page.on("response", on_response)
    return problems


# --- accessibility ----------------------------------------------------------------------------

_AXE_SOURCE: str | None = None


def _axe_source() -> str:
    global _AXE_SOURCE
    if _AXE_SOURCE is None:
        _AXE_SOURCE = (VENDOR / "axe.min.js").read_text(encoding="utf-8")
    return _AXE_SOURCE


def axe_check(page: Page, *, include: str | None = None, disable: tuple[str, ...] = (),
              impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Run axe-core on the page; fail on violations of the given impacts, listed readably.

    axe is evaluated through the DevTools protocol, which the page's CSP does not govern, so a
    strict `script-src 'self'` neither blocks it nor logs a violation. Returns all violations
    (the minor and moderate ones too) for a test that wants to look further.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    options = {"resultTypes": ["violations"]}
    if disable:
        options["rules"] = {rule: {"enabled": False} for rule in disable}
    violations = page.evaluate(
        "([context, options]) => axe.run(context || document, options).then(r => r.violations)",
        [include, options],
    )
    serious = [v for v in violations if v.get("impact") in impacts]
    if serious:
        lines = [f"axe found {len(serious)} {'/'.join(impacts)} violation(s) on {page.url}:"]
        for v in serious:
            lines.append(f"- [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
            for node in v["nodes"][:10]:
                target = " ".join(map(str, node.get("target", [])))
                lines.append(f"    at {target}")
                summary = (node.get("failureSummary") or "").strip().replace("\n", "\n      ")
                if summary:
                    lines.append(f"      {summary}")
            if len(v["nodes"]) > 10:
                lines.append(f"    ... and {len(v['nodes']) - 10} more")
        raise AssertionError("\n".join(lines))
    return violations


# --- screenshots ------------------------------------------------------------------------------


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path | None:
    """Save docs/screenshots/NAME.png, only when TASKER_SCREENSHOTS=1 (otherwise a no-op)."""
    if os.environ.get("TASKER_SCREENSHOTS") != "1":
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# --- signing in through the web app's forms ---------------------------------------------------


def _submit(page: Page, fields: dict[str, str], button: str) -> None:
    """Fill the form's fields by name and press its button; callers then wait for the outcome
    with auto-retrying `expect`, which works for a full page load and an htmx swap alike."""
    for name, value in fields.items():
        page.locator(f"form [name='{name}']").fill(value)
    page.get_by_role("button", name=button, exact=True).click()


def expect_signed_in(page: Page) -> None:
    """After sign-in the web app lands on `/`, "My work"."""
    expect(page).to_have_url(_origin(page) + "/")
    expect(page.get_by_role("heading", level=1, name="My work")).to_be_visible()


def _origin(page: Page) -> str:
    return "/".join(page.url.split("/", 3)[:3])


def set_up_admin(page: Page, name: str, email: str, password: str = PASSWORD) -> None:
    """First run: the /setup form creates the admin account and lands on My work."""
    page.goto("/setup")
    _submit(page, {"name": name, "email": email, "password": password}, "Create admin account")
    expect_signed_in(page)


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/signin")
    _submit(page, {"email": email, "password": password}, "Sign in")
    expect_signed_in(page)


def sign_out(page: Page) -> None:
    """Signs out from the account menu in the header (opened first, as a person would)."""
    page.locator("details.menu > summary").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_have_count(0)


@dataclass
class User:
    name: str
    email: str
    password: str
    via: str  # "register", "setup" or "api"
    token: str | None = None  # only when the account was made through the JSON API


def register_user(page: Page, name: str, email: str, password: str = PASSWORD) -> User:
    """Create an account through the web form and leave `page` signed in on My work.

    A server with no account yet sends /register to /setup: the account is then its admin, as
    the JSON API would make it. Until the web app has /register, the account is made with
    `POST /api/auth/register` and signed in through /signin when that exists (else `page` is
    left where it was, signed out).
    """
    response = page.goto("/register")
    if response is not None and response.status != 404:
        if page.url.rstrip("/").endswith("/setup"):
            _submit(page, {"name": name, "email": email, "password": password},
                    "Create admin account")
            via = "setup"
        else:
            _submit(page, {"name": name, "email": email, "password": password},
                    "Create account")
            via = "register"
        expect_signed_in(page)
        return User(name, email, password, via)
    reply = page.request.post(
        "/api/auth/register", data={"name": name, "email": email, "password": password})
    assert reply.status == 201, f"POST /api/auth/register: {reply.status} {reply.text()}"
    user = User(name, email, password, "api", token=reply.json()["token"])
    probe = page.request.get("/signin", max_redirects=0)
    if probe.status != 404:
        sign_in(page, email, password)
    return user


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

