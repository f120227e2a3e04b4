"""The chat example in a real browser: headless Chromium, two tabs, one room, served by real uvicorn.

Needs Debian's ``chromium`` (``/usr/bin/chromium``), which ``.ci/run`` installs, and the
``playwright`` package, which drives it (``playwright install`` is never run: the browser is the
system's). Without Chromium the test fails, saying so, rather than skipping: a skipped browser
test would look like a passing one.

Each test saves screenshots of its tabs in its temporary folder (``tmp_path``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .servers import Running, serve

CHROMIUM = Path(os.environ.get("WSENDPOINTS_CHROMIUM", "/usr/bin/chromium"))
# Headless, and nothing that reaches out to the network on its own.
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
TIMEOUT_MS = 10_000


MISSING = (
    f"this test needs Chromium at {CHROMIUM}: .ci/run installs it (apt-get install -y chromium), "
    "or set WSENDPOINTS_CHROMIUM to another Chromium binary"
)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """The launched browser, or None if there is none (each test then fails, saying why)."""
    if not CHROMIUM.exists():
        yield None
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("this test needs the 'playwright' package (the dev extra installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        try:
            yield browser
        finally:
            browser.close()


def launched(chromium: Any) -> Any:
    """The browser; called first thing in each test, so that a missing Chromium fails the test itself."""
    if chromium is None:
        pytest.fail(MISSING)
    return chromium


@pytest.fixture(scope="module")
def chat() -> Iterator[Running]:
    with serve("wsendpoints-asyncio", "examples.chat:api") as running:
        yield running


class Tab:
    """One browser tab on the chat page, and what went wrong in it."""

    def __init__(self, context: Any, url: str) -> None:
        self.page = context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console", lambda message: self.errors.append(message.text) if message.type == "error" else None
        )
        self.page.goto(url)

    def join(self, nick: str, room: str) -> None:
        self.page.fill("#nick", nick)
        self.page.fill("#room", room)
        self.page.click("#join")
        self.expect_text("#status", f"in room {room} as {nick}")

    def say(self, text: str) -> None:
        self.page.fill("#message", text)
        self.page.press("#message", "Enter")

    def log(self) -> list[str]:
        return [" ".join(line.split()) for line in self.page.locator("#log li").all_inner_texts()]

    def expect_text(self, selector: str, text: str) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator(selector)).to_have_text(text, timeout=TIMEOUT_MS)

    def expect_log(self, lines: list[str]) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#log li")).to_have_text(lines, timeout=TIMEOUT_MS)


def test_a_message_typed_in_one_tab_appears_in_the_other(
    chromium: Any, chat: Running, tmp_path: Path
) -> None:
    browser = launched(chromium)
    url = chat.url.replace("ws://", "http://") + "/"
    context = browser.new_context(viewport={"width": 800, "height": 700})
    try:
        alice = Tab(context, url)
        bob = Tab(context, url)

        alice.join("alice", "browsers")
        alice.expect_log(["alice joined"])
        bob.join("bob", "browsers")
        # The join notice reaches the one already there, and the newcomer sees its own.
        alice.expect_log(["alice joined", "bob joined"])
        bob.expect_log(["bob joined"])

        alice.say("hello from alice")
        bob.expect_log(["bob joined", "alice: hello from alice"])
        alice.expect_log(["alice joined", "bob joined", "alice: hello from alice"])
        assert alice.page.input_value("#message") == ""

        bob.say("hi alice <b>not bold</b>")
        alice.expect_log(
            ["alice joined", "bob joined", "alice: hello from alice", "bob: hi alice <b>not bold</b>"]
        )
        # Text, not HTML: the page never renders what others type as markup.
        assert alice.page.locator("#log b").count() == 0

        alice.page.screenshot(path=tmp_path / "chat-alice.png", full_page=True)
        bob.page.screenshot(path=tmp_path / "chat-bob.png", full_page=True)

        bob.page.click("#leave")
        bob.expect_text("#status", "disconnected (code 1000)")
        alice.expect_log(
            [
                "alice joined",
                "bob joined",
                "alice: hello from alice",
                "bob: hi alice <b>not bold</b>",
                "bob left",
            ]
        )
        alice.page.screenshot(path=tmp_path / "chat-alice-after-bob-left.png", full_page=True)
        assert alice.errors == []
        assert bob.errors == []
    finally:
        context.close()
    assert (tmp_path / "chat-alice.png").stat().st_size > 0


def test_rooms_are_separate_in_the_browser(chromium: Any, chat: Running, tmp_path: Path) -> None:
    browser = launched(chromium)
    url = chat.url.replace("ws://", "http://") + "/"
    context = browser.new_context()
    try:
        red = Tab(context, url)
        blue = Tab(context, url)
        red.join("ann", "red")
        blue.join("ben", "blue")
        red.say("only red hears this")
        red.expect_log(["ann joined", "ann: only red hears this"])
        blue.say("only blue hears this")
        blue.expect_log(["ben joined", "ben: only blue hears this"])
        assert red.log() == ["ann joined", "ann: only red hears this"]
        blue.page.screenshot(path=tmp_path / "chat-blue.png", full_page=True)
        assert red.errors == []
        assert blue.errors == []
    finally:
        context.close()


# -- the browser console session of docs/getting-started.md --------------------------------------

GETTING_STARTED = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"


def js_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```js\n(.*?)^```$", markdown, re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def echo() -> Iterator[Running]:
    with serve("wsendpoints-asyncio", "examples.echo:api") as running:
        yield running


def test_the_getting_started_console_session(chromium: Any, echo: Running, tmp_path: Path) -> None:
    """Type the page's console snippets into a tab of the server's own origin; each prints what it says."""
    browser = launched(chromium)
    setup, steps = js_blocks(GETTING_STARTED.read_text())
    port = echo.url.rsplit(":", 1)[1]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        printed: list[str] = []
        page.on("console", lambda message: printed.append(message.text) if message.type == "log" else None)

        def wait_for_output(count: int) -> None:
            deadline = time.monotonic() + TIMEOUT_MS / 1000
            while len(printed) < count and time.monotonic() < deadline:
                page.wait_for_timeout(20)

        page.goto(f"http://127.0.0.1:{port}/")
        assert "Not Found" in page.inner_text("body")  # the app serves no pages, as the docs say

        page.add_script_tag(content=setup.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
        expected = ["server: Hello! Everything you send comes back."]
        wait_for_output(len(expected))
        for line in steps.strip().splitlines():
            code, _, comment = line.partition("//")
            expected.append(comment.strip())
            page.add_script_tag(content=code)
            wait_for_output(len(expected))
        assert printed == expected
        page.screenshot(path=tmp_path / "console.png")
    finally:
        context.close()
    assert "a client left with code 1005" in echo.output()


def test_a_page_of_another_origin_is_refused(chromium: Any, echo: Running) -> None:
    """What the getting-started page warns about: a console on another site's page cannot connect."""
    browser = launched(chromium)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto("about:blank")
        outcome = page.evaluate(
            """(url) => new Promise((resolve) => {
                 const ws = new WebSocket(url);
                 ws.onopen = () => resolve("open");
                 ws.onclose = (event) => resolve(`closed with ${event.code}`);
               })""",
            echo.url + "/echo",
        )
    finally:
        context.close()
    assert outcome == "closed with 1006"
