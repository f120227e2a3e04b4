"""Every Python block in the docs (docs/**/*.md and README.md) runs, and the apps they build do what the
pages say they do.

A page's blocks run in order in one namespace, as a reader pasting them would run them. Then:

- the ``test_*`` functions a page defines (the testing page, the README) run, async ones on asyncio
  and trio;
- the page's check below connects to the apps the page built, in-process, on asyncio and trio, and
  asserts what the text around the code promises;
- the getting-started page's Python client talks to its app behind a real uvicorn.

A block may be left out only with a ``<!-- no-run: reason -->`` comment right before it, for code that
needs an outside service; there are at most a few.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn

from wsendpoints import API
from wsendpoints.exceptions import BroadcastError, HandshakeRejected, ReceiveTimeout, WebSocketDisconnect
from wsendpoints.testing import ClientWebSocket, connect, lifespan

from .markdown import DOCS, PAGES, ROOT, blocks, name, python_blocks, run_page

RUNNABLE = [page for page in PAGES if python_blocks(page)]
MAX_NO_RUN = 3

Check = Callable[[dict[str, Any]], Awaitable[None]]
CHECKS: dict[str, Check] = {}


def check(page: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        CHECKS[page] = function
        return function

    return register


# -- the blocks run -----------------------------------------------------------------------------------


def test_there_are_blocks_to_run() -> None:
    assert len(RUNNABLE) >= 10
    assert sum(len(python_blocks(page)) for page in RUNNABLE) >= 40


@pytest.mark.parametrize("page", RUNNABLE, ids=name)
def test_the_python_blocks_of_the_page_run(page: Path) -> None:
    run_page(page)


def test_every_code_block_says_its_language() -> None:
    """A block without a language would escape this test; so would one marked ``py`` or ``python3``."""
    unmarked = [
        block.where for page in PAGES for block in blocks(page) if block.lang in ("", "py", "python3")
    ]
    assert unmarked == []


def test_blocks_left_out_are_few_and_say_why() -> None:
    left_out = [block for page in PAGES for block in python_blocks(page) if block.no_run is not None]
    assert len(left_out) <= MAX_NO_RUN, [block.where for block in left_out]
    assert all(block.no_run for block in left_out)


@pytest.mark.parametrize("page", RUNNABLE, ids=name)
def test_every_page_that_builds_an_app_is_exercised(page: Path) -> None:
    namespace = run_page(page)
    if any(isinstance(value, API) for value in namespace.values()):
        assert name(page) in CHECKS or page_tests(namespace), f"nothing exercises the apps of {name(page)}"


def test_every_check_belongs_to_a_page() -> None:
    assert set(CHECKS) <= {name(page) for page in RUNNABLE}


# -- the tests pages define ------------------------------------------------------------------------------


def page_tests(namespace: dict[str, Any]) -> list[Callable[[], Any]]:
    """The tests a page defines that need no pytest fixture (test_readme.py runs the others)."""
    tests = [value for key, value in namespace.items() if key.startswith("test_") and callable(value)]
    return [test for test in tests if not inspect.signature(test).parameters]


def test_only_pages_run_under_pytest_define_tests_that_take_fixtures() -> None:
    takes_fixtures = {
        page.relative_to(ROOT).as_posix()
        for page in RUNNABLE
        for key, value in run_page(page).items()
        if key.startswith("test_") and callable(value) and inspect.signature(value).parameters
    }
    assert takes_fixtures <= {"README.md", "docs/testing.md"}  # see test_readme.py


@pytest.mark.parametrize("page", [page for page in RUNNABLE if page_tests(run_page(page))], ids=name)
def test_the_tests_a_page_defines_pass(page: Path, backend: str) -> None:
    for test in page_tests(run_page(page)):
        if inspect.iscoroutinefunction(test):
            anyio.run(test, backend=backend)
        elif backend == "asyncio":  # sync tests run once: they pick their own loop
            test()


# -- each page's apps, in process ------------------------------------------------------------------------


async def closed_with(ws: ClientWebSocket) -> WebSocketDisconnect:
    """The app's next event is its close; what the client learns from it."""
    event = await ws.receive_event()
    assert event["type"] == "websocket.close", f"expected a close, got {event}"
    assert ws.close_code is not None
    return WebSocketDisconnect(ws.close_code, ws.close_reason)


async def refused(app: Any, path: str, **options: Any) -> HandshakeRejected:
    with pytest.raises(HandshakeRejected) as refusal:
        async with connect(app, path, **options):
            pass
    return refusal.value


async def members(api: API, group: str, count: int) -> None:
    """Wait (a bounded time) until ``group`` has ``count`` members in this process."""
    for _ in range(5000):
        if api.broadcast.members(group) >= count:
            return
        await anyio.sleep(0.001)
    raise AssertionError(f"{group} did not get {count} members")


def http(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@check("README.md")
async def check_readme(ns: dict[str, Any]) -> None:
    async with connect(ns["api"], "/rooms/blue") as ws:
        await ws.send_json([1, 2])
        assert await ws.receive_json() == {"room": "blue", "message": [1, 2]}


@check("docs/index.md")
async def check_index(ns: dict[str, Any]) -> None:
    async with connect(ns["api"], "/echo") as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "You said: hi"


@check("docs/getting-started.md")
async def check_getting_started(ns: dict[str, Any]) -> None:
    api = ns["api"]
    async with connect(api, "/echo") as ws:
        assert await ws.receive_text() == "Hello! Everything you send comes back."
        await ws.send_text("hi")
        assert await ws.receive_text() == "You said: hi"
    async with connect(api, "/add") as ws:
        await ws.send_json({"a": 1, "b": 2.5})
        assert await ws.receive_json() == {"sum": 3.5}
        await ws.send_text("{not json")
        assert (await closed_with(ws)).code == 1007
    async with connect(api, "/echo-view") as ws:
        await ws.send_text("hey")
        assert await ws.receive_text() == "You said: hey"


@check("docs/endpoints.md")
async def check_endpoints(ns: dict[str, Any]) -> None:
    api = ns["api"]
    refusal = await refused(api, "/count")
    assert (refusal.status_code, refusal.close_code) == (403, 4403)
    async with connect(api, "/count?token=secret") as ws:
        for count in (1, 2):
            await ws.send_json({"n": count})
            assert await ws.receive_json() == {"count": count, "echo": {"n": count}}
    async with connect(api, "/session", subprotocols=["v1", "v2"], headers={"user-agent": "pytest"}) as ws:
        assert ws.accepted_subprotocol == "v2"
        await ws.send_text("a")
        await ws.send_text("b")
        assert await ws.receive_text() == "1 messages from pytest"
        assert await ws.receive_text() == "2 messages from pytest"
    async with connect(api, "/session") as ws:
        assert ws.accepted_subprotocol is None
    async with connect(api, "/clock") as ws:
        assert await ws.receive_text() == "0"
        with pytest.raises(ReceiveTimeout):
            await ws.receive_text(timeout=0.2)  # the next one is a second away
    async with connect(api, "/bulletin") as ws:
        await ws.send_json({})
        assert await ws.receive_json() == {"ok": True}
    async with connect(api, "/bulletin.msgpack") as ws:
        await ws.send_msgpack({})
        assert await ws.receive_msgpack() == {"ok": True}
    for framework in (ns["app"], ns["fastapi_app"]):  # inside Starlette, inside FastAPI
        async with connect(framework, "/count?token=secret") as ws:
            await ws.send_json("x")
            assert await ws.receive_json() == {"count": 1, "echo": "x"}


@check("docs/views.md")
async def check_views(ns: dict[str, Any]) -> None:
    api = ns["api"]
    async with connect(api, "/rooms/lobby") as ws:
        await ws.send_json({"a": 1})
        assert await ws.receive_json() == {"room": "lobby", "message": {"a": 1}}
    async with connect(api, "/once") as ws:
        await ws.send_text("bob")
        assert await ws.receive_text() == "Hello, bob"
        assert (await closed_with(ws)).code == 1000
    async with connect(api, "/hello") as ws:
        assert await ws.receive_text() == "Hello, world!"
    async with connect(api, "/mixed") as ws:
        await ws.send_json({"b": 1, "a": 2})
        assert await ws.receive_text() == "got ['a', 'b']"
        assert await ws.receive_json() == {"also": "json"}
        assert (await closed_with(ws)).code == 1000
    async with connect(api, "/raw") as ws:
        await ws.send_text("x")
        assert await ws.receive_text() == "raw: x"
        assert (await closed_with(ws)).code == 1000
    async with connect(api, "/upload") as ws:
        await ws.send_bytes(b"abc")
        assert await ws.receive_bytes() == b"3"
        await ws.send_bytes(b"de")
        assert await ws.receive_bytes() == b"5"
    async with connect(api, "/countdown/3") as ws:
        assert [await ws.receive_text() for _ in range(3)] == ["3", "2", "1"]
        assert (await closed_with(ws)).code == 1000


@check("docs/codecs.md")
async def check_codecs(ns: dict[str, Any]) -> None:
    api = ns["api"]
    async with connect(api, "/telemetry") as ws:
        await ws.send_msgpack({"readings": [1.5, 2, 3]})
        assert await ws.receive_json() == {"stored": 3}
        await ws.send_text("{}")  # text to a msgpack endpoint
        assert (await closed_with(ws)).code == 1003
    async with connect(api, "/relay") as ws:
        await ws.send_text("a")
        assert await ws.receive_text() == "a"
        await ws.send_bytes(b"\x00b")
        assert await ws.receive_bytes() == b"\x00b"
    async with connect(api, "/stream") as ws:
        await ws.send_json({"name": "x"})
        assert await ws.receive_json() == {"welcome": "x"}
        await ws.send_bytes(b"abc")
        assert await ws.receive_bytes() == b"cba"
    async with connect(api, "/columns") as ws:
        await ws.send_text("a, b,c")
        assert await ws.receive_text() == "A,B,C"
        await ws.send_text("a\nb")
        closed = await closed_with(ws)
        assert (closed.code, closed.reason) == (1007, "one line per message")
    async with connect(api, "/columns-too") as ws:
        await ws.send_text("x,y")
        assert await ws.receive_text() == "x,y"
    async with connect(api, "/chat-typed") as ws:
        await ws.send_json({"type": "say", "text": "hi"})
        assert await ws.receive_json() == {"type": "said", "room": "lobby", "text": "hi"}
        await ws.send_json({"type": "join", "room": "a"})
        await ws.send_json({"type": "say", "text": "there"})
        assert await ws.receive_json() == {"type": "said", "room": "a", "text": "there"}
        await ws.send_json({"type": "say", "text": "x" * 501})
        closed = await closed_with(ws)
        assert closed.code == 1007
        assert "String should have at most 500 characters" in closed.reason


@check("docs/routing.md")
async def check_routing(ns: dict[str, Any]) -> None:
    api = ns["api"]
    async with connect(api, "/users/7/files/a/b.txt") as ws:
        assert await ws.receive_text() == "user 7 (int) opened a/b.txt"
    assert (await refused(api, "/users/bob/files/x")).status_code == 404
    channel = uuid.uuid4()
    async with connect(api, f"/channels/{channel}") as ws:
        assert await ws.receive_text() == f"channel {channel}"
    assert (await refused(api, "/channels/not-a-uuid")).status_code == 404
    async with connect(api, "/even/4") as ws:
        assert await ws.receive_text() == "4 is even"
    assert (await refused(api, "/even/3")).status_code == 404
    async with http(api) as client:
        status = await client.get("/api/status")
        missing = await client.get("/elsewhere")
    assert status.json() == {"connections": 0}
    assert missing.status_code == 404
    resources = ns["resources"]
    async with lifespan(api):
        assert resources == {"pool": "connected"}
    assert resources == {}


@check("docs/groups.md")
async def check_groups(ns: dict[str, Any]) -> None:
    api = ns["api"]
    async with connect(api, "/rooms/a") as alice, connect(api, "/rooms/a") as bob:
        await members(api, "room:a", 2)
        await alice.send_json({"m": 1})
        assert await bob.receive_json() == {"m": 1}
        with pytest.raises(ReceiveTimeout):
            await alice.receive_json(timeout=0.1)  # excluded
        async with http(api) as client:
            response = await client.post("/admin/announce", json={"room": "a", "text": "hi"})
        assert response.json() == {"sent": True}
        for ws in (alice, bob):
            assert await ws.receive_json() == {"announcement": "hi"}
    with pytest.raises(BroadcastError):
        await api.publish("room:a", {1, 2})
    async with connect(api, "/prices") as ws:
        await members(api, "prices", 1)
        await api.publish("prices", {"eur": (1, 2)})
        assert await ws.receive_json() == {"eur": [1, 2]}  # tuples arrive as lists
    async with connect(api, "/watch/b") as ws:
        await members(api, "room:b", 1)
        await api.publish("room:b", "hello")
        assert await ws.receive_json() == {"room": "b", "seen": "hello"}
    async with lifespan(api), connect(api, "/heartbeat") as ws:  # the startup hook starts the beat
        assert (await ws.receive_json(timeout=5))["beat"] >= 1
    looped = ns["looped"]
    async with looped.broadcast.subscribe("news") as subscription:
        await looped.publish("news", {"n": 1})
        with anyio.fail_after(5):
            assert await subscription.__anext__() == {"n": 1}


@check("docs/security.md")
async def check_security(ns: dict[str, Any]) -> None:
    api = ns["api"]
    evil = {"origin": "https://evil.example"}
    friend = {"origin": "https://app.example.com"}
    async with connect(api, "/public", headers=evil) as ws:
        await ws.send_text("x")
        assert await ws.receive_text() == "x"
    assert (await refused(api, "/echo", headers=friend)).status_code == 403  # the route's own list
    assert (await refused(api, "/private?token=s3cr3t", headers=evil)).status_code == 403
    refusal = await refused(api, "/private", headers=friend)
    assert (refusal.status_code, refusal.body) == (401, b"invalid token")
    async with connect(api, "/private?token=s3cr3t", headers=friend) as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "alice: hi"
    async with connect(api, "/private-view?token=s3cr3t") as ws:
        assert await ws.receive_text() == "hello alice"
    assert (await refused(api, "/private-view?token=nope")).status_code == 401
    async with connect(api, "/chatty") as ws:
        for _ in range(10):
            await ws.send_text("spam")
        assert [await ws.receive_text() for _ in range(5)] == ["ok"] * 5
        assert (await closed_with(ws)).code == 1008
    async with connect(api, "/chatty") as ws:
        await ws.send_text("x" * 5000)
        assert (await closed_with(ws)).code == 1009
    guarded = ns["guarded"]
    assert (await refused(guarded, "/anything")).status_code == 403
    assert (await refused(guarded, "/anything", headers={"x-api-key": "k"})).status_code == 404
    async with http(guarded) as client:
        assert (await client.get("/")).status_code == 403
        assert (await client.get("/", headers={"x-api-key": "k"})).status_code == 404


@check("docs/migrating.md")
async def check_migrating(ns: dict[str, Any]) -> None:
    # The page's last block (the seed guide's) makes an `api` of its own; serve the endpoint on another.
    api = API()
    api.add_websocket("/count", ns["Counter"])
    for app in (ns["starlette_app"], api):
        async with connect(app, "/count") as ws:
            for count in (1, 2):
                await ws.send_json(["x"])
                assert await ws.receive_json() == {"count": count, "echo": ["x"]}
    async with connect(ns["api"], "/hello") as ws:
        assert await ws.receive_text() == "Hello, world!"
        assert (await closed_with(ws)).code == 1000


@pytest.mark.parametrize("page", sorted(CHECKS), ids=str)
async def test_the_page_apps_do_what_the_page_says(page: str) -> None:
    await CHECKS[page](run_page(ROOT / page))


# -- getting started, with a real server ---------------------------------------------------------------


@contextmanager
def uvicorn_in_a_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port, in a thread; yield its ws:// URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
    assert not thread.is_alive(), "uvicorn did not stop"


def test_the_getting_started_client_talks_to_the_getting_started_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace = run_page(DOCS / "getting-started.md")
    with uvicorn_in_a_thread(namespace["api"]) as url:
        replies = asyncio.run(asyncio.wait_for(namespace["main"](f"{url}/echo"), 10))
    assert replies == ["Hello! Everything you send comes back.", "You said: hi from Python"]
    printed = capsys.readouterr().out
    # What the page shows the client printing, and the server's on_disconnect (the client closed with 1000).
    assert "Hello! Everything you send comes back.\nYou said: hi from Python\n" in printed
    assert "a client left with code 1000" in printed


def test_the_getting_started_app_is_the_echo_example() -> None:
    """The page says "save this as app.py"; examples/echo.py is that file, and they must not drift."""
    page_code = python_blocks(DOCS / "getting-started.md")[0].code
    example = (ROOT / "examples" / "echo.py").read_text()
    assert example.endswith(page_code)
