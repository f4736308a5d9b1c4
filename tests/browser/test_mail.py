"""The pages behind mailed links in a real browser, with mail received by a small SMTP sink on a
TCP socket: a new account confirms its address from the message, then resets a forgotten
password from the sign-in page's link; every screen passes axe, fits a phone, and runs clean."""

import email
import email.policy
import socketserver
import threading
import time

from playwright.sync_api import expect

from harness import PASSWORD, axe_check, register_user, screenshot, unique_email, watch

SITE = "http://tasker.test"


class _Session(socketserver.StreamRequestHandler):
    """Enough SMTP for lettre: EHLO, MAIL, RCPT, DATA (dot-stuffed), QUIT."""

    def handle(self) -> None:
        self.wfile.write(b"220 sink ESMTP\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.decode().strip().split(" ")[0].split(":")[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go ahead\r\n")
                data = []
                while True:
                    part = self.rfile.readline()
                    if not part or part in (b".\r\n", b".\n"):
                        break
                    data.append(part[1:] if part.startswith(b".") else part)
                self.server.messages.append(b"".join(data))  # type: ignore[attr-defined]
                self.wfile.write(b"250 2.0.0 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


class _Sink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Session)
        self.messages: list[bytes] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout: float = 20.0) -> list[email.message.EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {n} messages arrived"
            time.sleep(0.05)
        return [email.message_from_bytes(m, policy=email.policy.default) for m in self.messages]


def _link(message: email.message.EmailMessage, path: str, base: str) -> str:
    text = message.get_body(("plain",)).get_content()
    start = text.index(SITE + path)
    return base + text[start:].split()[0][len(SITE):]


def _fits_a_phone(page) -> None:
    page.set_viewport_size({"width": 375, "height": 812})
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 375, f"{page.url} scrolls sideways at 375 px: {width} px wide"
    page.set_viewport_size({"width": 1280, "height": 800})


def test_confirm_the_address_then_reset_a_forgotten_password(start_server, new_context):
    sink = _Sink()
    try:
        port = sink.server_address[1]
        server = start_server(
            "--smtp-url", f"smtp://127.0.0.1:{port}?tls=none",
            "--smtp-from", "Tasker <tasker@tasker.test>",
            "--public-url", SITE,
        )
        page = new_context(base_url=server.url).new_page()
        problems = watch(page)
        address = unique_email("mia")
        register_user(page, "Mia", address)

        page.goto("/profile")
        notice = page.locator("#verify-notice")
        expect(notice).to_contain_text("Please confirm your address")
        axe_check(page)
        _fits_a_phone(page)
        page.get_by_role("button", name="Send a new link", exact=True).click()
        expect(page.locator(".notice.saved")).to_contain_text("on its way")

        verify = sink.wait_for(1)[0]
        assert verify["Subject"] == "Confirm your email address for tasker"
        page.goto(_link(verify, "/verify?token=", server.url))
        expect(page.get_by_role("heading", level=1, name="Confirm your email address")).to_be_visible()
        expect(page.locator(".notice.saved")).to_contain_text("is confirmed as your address")
        axe_check(page)
        _fits_a_phone(page)
        screenshot(page, "mail-verified")
        page.goto("/profile")
        expect(page.get_by_text("Your address is confirmed.")).to_be_visible()

        # Another browser, signed out: "forgot your password?" from the sign-in page.
        visitor = new_context(base_url=server.url).new_page()
        visitor_problems = watch(visitor)
        visitor.goto("/signin")
        visitor.get_by_role("link", name="Forgot your password?").click()
        expect(visitor.get_by_role("heading", level=1, name="Forgot your password?")).to_be_visible()
        axe_check(visitor)
        _fits_a_phone(visitor)
        visitor.get_by_label("Email").fill(address)
        visitor.get_by_role("button", name="Send me a reset link", exact=True).click()
        expect(visitor.locator(".notice.saved")).to_contain_text("If an account has this address")
        axe_check(visitor)

        reset = [m for m in sink.wait_for(3) if m["Subject"] == "Reset your tasker password"][0]
        visitor.goto(_link(reset, "/reset-password?token=", server.url))
        expect(visitor.get_by_role("heading", level=1, name="Choose a new password")).to_be_visible()
        axe_check(visitor)
        _fits_a_phone(visitor)
        visitor.get_by_label("New password", exact=True).fill("a fresh password")
        visitor.get_by_label("Confirm new password").fill("a fresh password")
        visitor.get_by_role("button", name="Set the new password", exact=True).click()
        expect(visitor.locator(".notice.saved")).to_contain_text("every session of your account was signed out")
        axe_check(visitor)

        visitor.goto("/signin")
        visitor.locator("form [name='email']").fill(address)
        visitor.locator("form [name='password']").fill(PASSWORD)
        visitor.get_by_role("button", name="Sign in", exact=True).click()
        expect(visitor.get_by_role("alert")).to_contain_text("incorrect")
        visitor.locator("form [name='password']").fill("a fresh password")
        visitor.get_by_role("button", name="Sign in", exact=True).click()
        expect(visitor.get_by_role("heading", level=1, name="My work")).to_be_visible()

        problems.assert_clean()
        visitor_problems.assert_clean()
    finally:
        sink.shutdown()
        sink.server_close()
