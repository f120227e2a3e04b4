"""API: registering routes, dispatching WebSocket and HTTP scopes, mounted apps, and the lifespan."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket as StarletteWebSocket
from starlette.websockets import WebSocketDisconnect as StarletteDisconnect

from wsendpoints import API, WebSocket, WebSocketDisconnect, WebSocketEndpoint
from wsendpoints.exceptions import ConfigurationError, HandshakeRejected, LifespanFailed, WebSocketStateError
from wsendpoints.testing import TestClient, connect, lifespan
from wsendpoints.types import Message


class Greeter(WebSocketEndpoint):
    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(f"endpoint at {ws.path}")


async def greet(ws: WebSocket, **params: Any) -> None:
    async with ws:
        await ws.send(f"view at {ws.path}")


async def first_text(api: Any, path: str) -> str:
    async with connect(api, path) as ws:
        return await ws.receive_text()


async def raw_call(app: Any, scope: Message, *client_events: Message) -> list[Message]:
    """Call ``app`` as a server would, with scripted client events; what the app sent."""
    inbox = list(client_events)
    sent: list[Message] = []

    async def receive() -> Message:
        if inbox:
            return inbox.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent


# -- registration ------------------------------------------------------------------------------------


def test_websocket_route_decorator_returns_the_handler_unchanged() -> None:
    api = API()
    assert api.websocket_route("/view")(greet) is greet
    assert api.websocket_route("/endpoint")(Greeter) is Greeter


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        pytest.param(Greeter, "endpoint at /here", id="endpoint"),
        pytest.param(greet, "view at /here", id="view"),
    ],
)
async def test_add_websocket_serves_an_endpoint_class_or_a_view(handler: Any, expected: str) -> None:
    api = API()
    api.add_websocket("/here", handler)
    assert await first_text(api, "/here") == expected


@pytest.mark.parametrize("handler", [object(), int], ids=["not callable", "not an endpoint class"])
def test_add_websocket_refuses_what_is_neither_a_view_nor_an_endpoint(handler: Any) -> None:
    with pytest.raises(ConfigurationError):
        API().add_websocket("/", handler)


def test_websocket_route_without_its_path_is_refused_rather_than_registering_nothing() -> None:
    api = API()
    with pytest.raises(ConfigurationError, match=r"write @api.websocket_route\('/path'\) above greet$"):
        api.websocket_route(greet)  # type: ignore[arg-type]
    assert api.routes == []


def test_add_websocket_refuses_a_path_that_is_not_a_str() -> None:
    api = API()
    with pytest.raises(ConfigurationError, match="a route's path is a str such as '/echo'"):
        api.add_websocket(greet, "/")  # type: ignore[arg-type]
    assert api.routes == []


async def test_routes_are_tried_in_registration_order() -> None:
    api = API()

    @api.websocket_route("/items/{item_id:int}")
    async def by_id(ws: WebSocket, item_id: int) -> None:
        async with ws:
            await ws.send(f"id {item_id}")

    @api.websocket_route("/items/{name}")
    async def by_name(ws: WebSocket, name: str) -> None:
        async with ws:
            await ws.send(f"name {name}")

    @api.websocket_route("/items/new")
    async def shadowed(ws: WebSocket) -> None:
        async with ws:
            await ws.send("never chosen")

    assert await first_text(api, "/items/7") == "id 7"
    assert await first_text(api, "/items/new") == "name new"


# -- what nothing serves ---------------------------------------------------------------------------


async def test_unknown_websocket_path_is_refused_with_404() -> None:
    api = API()
    api.add_websocket("/known", Greeter)
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api, "/unknown"):
            pass
    assert rejected.value.status_code == 404
    assert b"Not Found" in rejected.value.body


async def test_unknown_websocket_path_closes_before_accept_without_the_http_response_extension() -> None:
    scope = {"type": "websocket", "path": "/unknown", "root_path": "", "query_string": b"", "headers": []}
    sent = await raw_call(API(), scope, {"type": "websocket.connect"})
    # Servers answer a close before accept with HTTP 403.
    assert [m["type"] for m in sent] == ["websocket.close"]


async def test_http_request_to_an_unmounted_path_gets_404() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=API()), base_url="http://test") as client:
        response = await client.get("/anything")
    assert response.status_code == 404
    assert response.text == "Not Found"


async def test_http_request_to_a_websocket_route_gets_426_upgrade_required() -> None:
    api = API()

    @api.websocket_route("/rooms/{room}")
    async def room(ws: WebSocket, room: str) -> None:
        pass

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://test") as client:
        response = await client.get("/rooms/lobby")
        elsewhere = await client.get("/rooms")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert "WebSocket" in response.text
    assert elsewhere.status_code == 404


# -- mounted applications ------------------------------------------------------------------------


def starlette_app() -> Starlette:
    async def where(request: StarletteRequest) -> JSONResponse:
        return JSONResponse(
            {
                "name": request.path_params["name"],
                "path": request.url.path,
                "root_path": request.scope["root_path"],
            }
        )

    async def hello(websocket: StarletteWebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(f"starlette at {websocket.url.path}")
        await websocket.close()

    return Starlette(routes=[Route("/where/{name}", where), WebSocketRoute("/ws", hello)])


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/where/{name}")
    async def where(name: str, request: Request) -> dict[str, str]:
        return {"name": name, "path": request.url.path, "root_path": request.scope["root_path"]}

    return app


@pytest.mark.parametrize("make_app", [starlette_app, fastapi_app], ids=["starlette", "fastapi"])
async def test_mounted_app_serves_http_under_its_prefix(make_app: Any) -> None:
    api = API()
    api.mount("/sub", make_app())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://test") as client:
        found = await client.get("/sub/where/here")
        missing = await client.get("/sub/nowhere")
        outside = await client.get("/where/here")
    assert found.status_code == 200
    assert found.json() == {"name": "here", "path": "/sub/where/here", "root_path": "/sub"}
    # The mounted app answers its own 404s; paths outside the prefix never reach it.
    assert missing.status_code == 404
    assert outside.status_code == 404


async def test_websocket_under_a_mount_goes_to_the_mounted_app_unless_a_route_matches() -> None:
    api = API()
    api.mount("/sub", starlette_app(), websocket=True)
    api.add_websocket("/sub/mine", Greeter)
    assert await first_text(api, "/sub/ws") == "starlette at /sub/ws"
    assert await first_text(api, "/sub/mine") == "endpoint at /sub/mine"


def starlette_sockets(ended: list[tuple[str, int]]) -> Starlette:
    """An echo that waits in receive, and a ticker that only sends; each notes how it ended."""

    async def echo(websocket: StarletteWebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except StarletteDisconnect as gone:
            ended.append(("echo", gone.code))

    async def ticker(websocket: StarletteWebSocket) -> None:
        await websocket.accept()
        try:
            for _ in range(10_000):
                await websocket.send_text("tick")
                await anyio.sleep(0.005)
        except StarletteDisconnect as gone:
            ended.append(("ticker", gone.code))

    return Starlette(routes=[WebSocketRoute("/echo", echo), WebSocketRoute("/ticker", ticker)])


async def close_code_after_ticks(ws: Any) -> int:
    for _ in range(10_000):
        try:
            assert await ws.receive_text() == "tick"
        except WebSocketDisconnect as closed:
            return closed.code
    raise AssertionError("the ticker was never closed")


async def test_a_mounted_websocket_app_gets_the_origin_check() -> None:
    api = API()
    api.mount("/sub", starlette_app(), websocket=True)
    api.mount("/public", starlette_app(), websocket=True, allowed_origins=["*"])
    with pytest.raises(HandshakeRejected) as refused:
        async with connect(api, "/sub/ws", headers={"origin": "https://evil.example"}):
            pass
    assert refused.value.status_code == 403
    assert await first_text(api, "/sub/ws") == "starlette at /sub/ws"  # no Origin: not a browser
    async with connect(api, "/public/ws", headers={"origin": "https://evil.example"}) as ws:
        assert await ws.receive_text() == "starlette at /public/ws"


async def test_mounted_websocket_connections_count_against_max_connections() -> None:
    api = API(max_connections=1)
    api.mount("/sub", starlette_sockets([]), websocket=True)
    async with connect(api, "/sub/echo") as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "hi"
        assert api.connection_count == 1
        with pytest.raises(HandshakeRejected) as refused:
            async with connect(api, "/sub/echo"):
                pass
        assert refused.value.status_code == 503
    assert api.connection_count == 0


async def test_close_connections_closes_mounted_connections_with_1001(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ended: list[tuple[str, int]] = []
    api = API()
    api.mount("/sub", starlette_sockets(ended), websocket=True)
    async with connect(api, "/sub/echo") as waiting, connect(api, "/sub/ticker") as pushing:
        await waiting.send_text("hi")
        assert await waiting.receive_text() == "hi"
        assert await pushing.receive_text() == "tick"
        await api.close_connections(timeout=5)
        # Both apps ended on their own, as for any disconnect: nothing was cut.
        assert api.connection_count == 0
        assert not [record for record in caplog.records if "cut" in record.getMessage()]
        with pytest.raises(WebSocketDisconnect) as closed:
            await waiting.receive_text()
        assert closed.value.code == 1001
        assert await close_code_after_ticks(pushing) == 1001
        # A newcomer is told the server is going.
        with pytest.raises(HandshakeRejected) as refused:
            async with connect(api, "/sub/echo"):
                pass
        assert refused.value.status_code == 503
    # The waiting app read a 1001 disconnect; the sending one's next send failed (1006 to Starlette).
    assert sorted(ended) == [("echo", 1001), ("ticker", 1006)]


async def test_an_http_mount_does_not_take_websocket_connections() -> None:
    async def http_only(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"the mount was called for a {scope['type']} scope")

    api = API()
    api.mount("/", http_only)
    with pytest.raises(HandshakeRejected) as refused:
        async with connect(api, "/anywhere"):
            pass
    assert refused.value.status_code == 404


async def test_api_mounted_in_starlette_routes_on_the_path_below_the_mount() -> None:
    api = API()

    @api.websocket_route("/rooms/{room}")
    async def room(ws: WebSocket, room: str) -> None:
        async with ws:
            await ws.send(f"room {room} at {ws.path}")

    outer = Starlette(routes=[Mount("/chat", app=api)])
    assert await first_text(outer, "/chat/rooms/blue") == "room blue at /chat/rooms/blue"


async def test_a_root_path_is_taken_off_the_path_on_segment_boundaries_only() -> None:
    # hypercorn --root-path /chat keeps the path as the client sent it (a proxy stripped the
    # prefix already): the path below must not lose its first letters to that root path.
    api = API()
    api.add_websocket("/chatroom", greet)
    api.add_websocket("/rooms", greet)

    async def under_root_path(scope: Message, receive: Any, send: Any) -> None:
        await api({**scope, "root_path": "/chat"}, receive, send)

    assert await first_text(under_root_path, "/chatroom") == "view at /chatroom"
    # A path under the root path (uvicorn's way, and a Starlette mount's) is still cut below it.
    assert await first_text(under_root_path, "/chat/rooms") == "view at /chat/rooms"


# -- lifespan -------------------------------------------------------------------------------------------


def api_with_hooks(events: list[str]) -> API:
    api = API()

    @api.on("startup")
    def open_pool() -> None:
        events.append("startup sync")

    @api.on("startup")
    async def warm_cache() -> None:
        await anyio.lowlevel.checkpoint()
        events.append("startup async")

    @api.on("shutdown")
    async def flush() -> None:
        await anyio.lowlevel.checkpoint()
        events.append("shutdown async")

    @api.on("shutdown")
    def close_pool() -> None:
        events.append("shutdown sync")

    return api


async def test_lifespan_hooks_run_in_registration_order() -> None:
    events: list[str] = []
    async with lifespan(api_with_hooks(events)):
        assert events == ["startup sync", "startup async"]
    assert events == ["startup sync", "startup async", "shutdown async", "shutdown sync"]


def api_failing_at_startup(events: list[str]) -> API:
    api = API()

    @api.on("startup")
    def connect_database() -> None:
        raise RuntimeError("database is down")

    @api.on("startup")
    def after_database() -> None:
        events.append("ran after the failure")

    return api


async def test_failing_startup_hook_reports_lifespan_startup_failed_with_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    sent = await raw_call(
        api_failing_at_startup(events),
        {"type": "lifespan", "asgi": {"version": "3.0"}},
        {"type": "lifespan.startup"},
    )
    [failed] = sent
    assert failed["type"] == "lifespan.startup.failed"
    assert "Traceback" in failed["message"]
    assert "RuntimeError: database is down" in failed["message"]
    # Later startup hooks may depend on the failed one.
    assert events == []
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records if r.name == "wsendpoints")


async def test_failing_startup_hook_raises_lifespan_failed_from_the_async_helper() -> None:
    with pytest.raises(LifespanFailed, match="RuntimeError: database is down"):
        async with lifespan(api_failing_at_startup([])):
            pass


def test_failing_startup_hook_raises_lifespan_failed_from_the_test_client(backend: str) -> None:
    client = TestClient(api_failing_at_startup([]), backend=backend)
    with pytest.raises(LifespanFailed, match="RuntimeError: database is down"):
        client.__enter__()


async def test_failing_shutdown_hook_reports_shutdown_failed_after_every_hook_ran() -> None:
    events: list[str] = []
    api = API()

    @api.on("shutdown")
    def broken() -> None:
        raise RuntimeError("cannot flush")

    @api.on("shutdown")
    def independent() -> None:
        events.append("independent clean-up")

    sent = await raw_call(
        api,
        {"type": "lifespan", "asgi": {"version": "3.0"}},
        {"type": "lifespan.startup"},
        {"type": "lifespan.shutdown"},
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert "RuntimeError: cannot flush" in sent[1]["message"]
    assert events == ["independent clean-up"]


# -- the app's task group ------------------------------------------------------------


def api_with_a_feed(
    events: list[str], fail: anyio.Event | None = None, ended: anyio.Event | None = None
) -> API:
    """Publishes ``tick n`` to the "ticks" group from a task of the app until ``fail`` is set.

    A second task, the bystander, only waits; ``ended`` is set when it has been cancelled.
    """
    api = API()

    async def feed() -> None:
        try:
            for n in range(1, 1000):
                if fail is not None and fail.is_set():
                    raise RuntimeError("the feed broke")
                await api.publish("ticks", f"tick {n}")
                await anyio.sleep(0.01)
        finally:
            events.append("feed ended")

    async def bystander() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            events.append("bystander ended")
            if ended is not None:
                ended.set()

    @api.on("startup")
    def start() -> None:
        api.task_group.start_soon(feed)
        api.task_group.start_soon(bystander)

    @api.on("shutdown")
    def stop() -> None:
        events.append("shutdown hook")

    @api.websocket_route("/ticks")
    async def ticks(ws: WebSocket) -> None:
        async with ws:
            await ws.join("ticks")
            async for message in ws:
                await ws.send(f"echo {message}")

    return api


async def test_a_task_of_the_app_outlives_connections_and_ends_before_the_shutdown_hooks() -> None:
    events: list[str] = []
    api = api_with_a_feed(events)
    async with lifespan(api):
        for _ in range(2):  # one connection after another: the feed is the app's, not theirs
            async with connect(api, "/ticks") as ws:
                assert (await ws.receive_text()).startswith("tick ")
                assert (await ws.receive_text()).startswith("tick ")
        assert events == []
    assert sorted(events[:2]) == ["bystander ended", "feed ended"]
    assert events[2:] == ["shutdown hook"]
    with pytest.raises(WebSocketStateError, match="open only while the app runs"):
        api.task_group  # noqa: B018


async def test_a_task_of_the_app_that_fails_is_logged_and_the_app_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    fail, ended = anyio.Event(), anyio.Event()
    api = api_with_a_feed(events, fail, ended)
    async with lifespan(api):
        async with connect(api, "/ticks") as ws:
            assert (await ws.receive_text()).startswith("tick ")
            fail.set()
            with anyio.fail_after(5):
                await ended.wait()
            # The connection is the server's, not the feed's: it is still served.
            await ws.send_text("still here?")
            assert await ws.receive_text() == "echo still here?"
        [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert "a task of the app failed" in error.getMessage()
        assert error.exc_info is not None
        assert "RuntimeError: the feed broke" in "".join(logging.Formatter().formatException(error.exc_info))
    assert events[-1] == "shutdown hook", "the shutdown hooks run all the same"


async def test_once_a_task_of_the_app_failed_the_task_group_says_so_until_shutdown() -> None:
    # The app runs on, but its task group has ended: "not running" would send one looking
    # for a missing lifespan(api), not for the task's traceback in the log.
    events: list[str] = []
    fail, ended = anyio.Event(), anyio.Event()
    api = api_with_a_feed(events, fail, ended)
    async with lifespan(api):
        api.task_group  # noqa: B018
        fail.set()
        with anyio.fail_after(5):
            await ended.wait()
            while True:  # until the group has ended (its last task was the bystander)
                try:
                    api.task_group  # noqa: B018
                except WebSocketStateError as exc:
                    refusal = str(exc)
                    break
                await anyio.sleep(0.01)
        assert "the app's task group has ended: one of its tasks failed" in refusal
    with pytest.raises(WebSocketStateError, match="open only while the app runs"):
        api.task_group  # noqa: B018
    async with lifespan(api):  # the next run of the app has a task group of its own
        api.task_group  # noqa: B018


async def test_a_task_of_the_app_that_fails_during_startup_fails_the_startup() -> None:
    api = API()

    async def broken() -> None:
        raise RuntimeError("no feed today")

    @api.on("startup")
    async def start() -> None:
        api.task_group.start_soon(broken)
        await anyio.sleep_forever()  # a hook still running when the task fails

    with pytest.raises(LifespanFailed, match="RuntimeError: no feed today"):
        async with lifespan(api):
            pass


async def test_a_failing_startup_hook_is_what_startup_reports_even_if_a_task_fails_as_it_is_cancelled() -> (
    None
):
    api = API()

    async def unruly() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise RuntimeError("the task's own error, while cancelled")

    @api.on("startup")
    async def start() -> None:
        api.task_group.start_soon(unruly)
        await anyio.lowlevel.checkpoint()  # the task is running
        raise ConnectionRefusedError("the database is down")

    with pytest.raises(LifespanFailed, match="ConnectionRefusedError: the database is down"):
        async with lifespan(api):
            pass


def test_the_test_client_runs_the_app_s_tasks(backend: str) -> None:
    events: list[str] = []
    with (
        TestClient(api_with_a_feed(events), backend=backend) as client,
        client.websocket_connect("/ticks") as ws,
    ):
        assert ws.receive_text().startswith("tick ")
    assert events[-1] == "shutdown hook"
    assert "feed ended" in events


async def test_the_app_s_task_group_needs_the_app_running() -> None:
    api = API()
    with pytest.raises(WebSocketStateError, match=r"in tests: inside `async with lifespan\(api\)`"):
        api.task_group  # noqa: B018


def test_unknown_lifespan_event_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown lifespan event 'start'"):
        API().on("start")  # type: ignore[arg-type]


def test_on_without_its_event_says_how_to_write_it() -> None:
    def connect_database() -> None:
        pass

    with pytest.raises(ConfigurationError, match=r"write @api.on\('startup'\) or @api.on\('shutdown'\)"):
        API().on(connect_database)  # type: ignore[arg-type]
