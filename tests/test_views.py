"""Function views: registration checks, path parameters, and how a view's connection ends."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import anyio
import pytest

from wsendpoints import API, WebSocket, WebSocketDisconnect
from wsendpoints.exceptions import (
    AuthenticationFailed,
    ConfigurationError,
    HandshakeRejected,
    WebSocketStateError,
)
from wsendpoints.testing import ClientWebSocket, connect
from wsendpoints.views import FunctionView
from wsendpoints.websockets import ALL_CODES

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup


async def close_code_from_app(ws: ClientWebSocket) -> int:
    """Wait for the application to close the connection; the code it chose."""
    with pytest.raises(WebSocketDisconnect) as closed:
        await ws.receive_text()
    return closed.value.code


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsendpoints" and r.levelno >= logging.ERROR]


# -- registration --------------------------------------------------------------------------------


def sync_view(ws: WebSocket) -> None:
    pass


def returns_a_coroutine(ws: WebSocket) -> Any:
    async def inner() -> None:
        pass

    return inner()


@pytest.mark.parametrize(
    "view",
    [
        pytest.param(sync_view, id="def"),
        pytest.param(lambda ws: None, id="lambda"),
        pytest.param(returns_a_coroutine, id="def returning a coroutine"),
    ],
)
@pytest.mark.parametrize(
    "register",
    [
        pytest.param(lambda api, view: api.websocket_route("/")(view), id="decorator"),
        pytest.param(lambda api, view: api.add_websocket("/", view), id="add_websocket"),
    ],
)
def test_non_async_view_is_refused_at_registration(view: Any, register: Any) -> None:
    api = API()
    with pytest.raises(ConfigurationError, match="must be an 'async def' function"):
        register(api, view)
    assert api.routes == []


@pytest.mark.parametrize("option", ["value_type", "receive_type", "send_type"])
def test_unknown_type_name_is_refused_at_registration(option: str) -> None:
    api = API()

    async def view(ws: WebSocket) -> None:
        pass

    options: dict[str, Any] = {option: "yaml"}
    with pytest.raises(ConfigurationError, match="unknown message type 'yaml'"):
        api.websocket_route("/", **options)(view)
    assert api.routes == []


async def takes_room(ws: WebSocket, room: str) -> None:
    pass


async def takes_nothing(ws: WebSocket) -> None:
    pass


async def takes_anything(ws: WebSocket, **params: Any) -> None:
    pass


@pytest.mark.parametrize(
    ("path", "view", "refused"),
    [
        ("/rooms/{room}", takes_room, False),
        ("/rooms/{room}", takes_anything, False),
        ("/rooms/{name}", takes_room, True),  # a typo in the pattern or in the argument
        ("/rooms/{room}", takes_nothing, True),
        ("/rooms", takes_room, True),
        ("/rooms/{room}/{seat:int}", takes_room, True),
    ],
)
def test_a_view_that_cannot_take_the_path_parameters_is_refused_at_registration(
    path: str, view: Any, refused: bool
) -> None:
    # Not on the first connection, with a TypeError and 1011.
    api = API()
    if not refused:
        api.add_websocket(path, view)
        assert len(api.routes) == 1
        return
    with pytest.raises(ConfigurationError, match=f"view {view.__qualname__} cannot take the parameters"):
        api.add_websocket(path, view)
    assert api.routes == []


# -- serving --------------------------------------------------------------------------------------


async def test_view_gets_path_params_as_keyword_arguments() -> None:
    api = API()

    @api.websocket_route("/rooms/{room}/seats/{seat:int}", send_type="json")
    async def seat(ws: WebSocket, room: str, seat: int) -> None:
        async with ws:
            await ws.send({"room": room, "seat": seat, "path_params": dict(ws.path_params)})

    async with connect(api, "/rooms/blue/seats/12") as ws:
        assert await ws.receive_json() == {
            "room": "blue",
            "seat": 12,
            "path_params": {"room": "blue", "seat": 12},
        }


async def test_a_function_view_is_an_asgi_app_of_its_own(caplog: pytest.LogCaptureFixture) -> None:
    # The API serves its views' connections in its own frame; a FunctionView used
    # without one (mounted in another framework, say) must serve them alike.
    async def echo(ws: WebSocket) -> None:
        async with ws:
            async for message in ws:
                if message == "fail":
                    raise RuntimeError("view failed")
                await ws.send(f"{message} from {ws.user}")

    async def who(ws: WebSocket) -> str:
        if ws.query_params.get("token") != "s3cret":
            raise AuthenticationFailed(401, "who are you?")
        return "alice"

    for app, user in [(FunctionView(echo), None), (FunctionView(echo, authenticate=who), "alice")]:
        async with connect(app, "/?token=s3cret") as ws:
            await ws.send_text("hi")
            assert await ws.receive_text() == f"hi from {user}"
            await ws.send_text("fail")
            assert await close_code_from_app(ws) == 1011
    assert [str(r.exc_info[1]) for r in error_records(caplog) if r.exc_info] == ["view failed"] * 2
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(FunctionView(echo, authenticate=who), "/?token=guess"):
            pass
    assert (rejected.value.status_code, rejected.value.body) == (401, b"who are you?")


async def test_view_that_returns_without_closing_is_closed_with_1000() -> None:
    api = API()

    @api.websocket_route("/")
    async def hello(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send("hello")

    async with connect(api) as ws:
        assert await ws.receive_text() == "hello"
        assert await close_code_from_app(ws) == 1000


async def test_view_that_returns_without_accepting_refuses_the_handshake() -> None:
    api = API()

    @api.websocket_route("/")
    async def shy(ws: WebSocket) -> None:
        pass

    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api):
            pass
    assert rejected.value.status_code == 403


async def test_exception_in_a_view_closes_with_1011_and_logs_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = API()

    @api.websocket_route("/")
    async def fragile(ws: WebSocket) -> None:
        async with ws:
            if await ws.receive() == "fail":
                raise RuntimeError("boom in view")
            await ws.send("fine")

    async with connect(api) as ws:
        await ws.send_text("fail")
        assert await close_code_from_app(ws) == 1011
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert str(record.exc_info[1]) == "boom in view"

    async with connect(api) as ws:
        await ws.send_text("again")
        assert await ws.receive_text() == "fine"


async def test_exception_in_a_view_before_accepting_refuses_with_http_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = API()

    @api.websocket_route("/")
    async def fragile(ws: WebSocket) -> None:
        raise RuntimeError("boom before accept")

    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api):
            pass
    assert rejected.value.status_code == 500
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "boom before accept"


async def test_exception_before_accepting_closes_when_the_server_cannot_send_http(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = API()

    @api.websocket_route("/")
    async def fragile(ws: WebSocket) -> None:
        raise RuntimeError("boom before accept")

    inbox = [{"type": "websocket.connect"}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    # No websocket.http.response extension: closing before accept is the only refusal left.
    scope = {"type": "websocket", "path": "/", "root_path": "", "query_string": b"", "headers": []}
    with anyio.fail_after(5):
        await api(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1011
    assert len(error_records(caplog)) == 1


# -- catching disconnects -------------------------------------------------------------------------


class _Clean:
    """Codes that cannot be listed, only asked about one by one: the normal ones."""

    def __contains__(self, code: object) -> bool:
        return code in (1000, 1001)


@pytest.mark.parametrize(
    ("options", "client_code", "seen"),
    [
        pytest.param({}, 1001, "after the block", id="default catches every code"),
        pytest.param({"catch_disconnect": False}, 1001, "raised 1001", id="catch_disconnect=False"),
        pytest.param({"caught_close_codes": [1000]}, 1000, "after the block", id="caught code"),
        pytest.param({"caught_close_codes": [1000]}, 1001, "raised 1001", id="code not caught"),
        *[
            pytest.param(
                {"catch_disconnect": False, "caught_close_codes": ALL_CODES},
                code,
                "after the block",
                id=f"ALL_CODES {code}",
            )
            for code in (1000, 1007, 4000)
        ],
        pytest.param({"caught_close_codes": _Clean()}, 1001, "after the block", id="container, caught"),
        pytest.param({"caught_close_codes": _Clean()}, 4000, "raised 4000", id="container, not caught"),
    ],
)
async def test_which_disconnects_async_with_silences(
    options: dict[str, Any], client_code: int, seen: str, caplog: pytest.LogCaptureFixture
) -> None:
    api = API()
    events: list[str] = []

    @api.websocket_route("/", **options)
    async def listener(ws: WebSocket) -> None:
        try:
            async with ws:
                await ws.receive()
                events.append("received")
            events.append("after the block")
        except WebSocketDisconnect as exc:
            events.append(f"raised {exc.code}")

    async with connect(api) as ws:
        await ws.close(client_code)
    assert events == [seen]
    assert error_records(caplog) == []


async def test_uncaught_disconnect_leaving_the_view_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    api = API()
    after_block: list[bool] = []

    @api.websocket_route("/", catch_disconnect=False)
    async def listener(ws: WebSocket) -> None:
        async with ws:
            async for message in ws:
                await ws.send(message)
        after_block.append(True)

    for _ in range(2):
        async with connect(api) as ws:
            await ws.send_text("ping")
            assert await ws.receive_text() == "ping"
    assert after_block == []
    assert error_records(caplog) == []


@pytest.mark.parametrize(
    ("ending", "ran"),
    [("client leaves", ["after the block", "finally"]), ("server shuts down", ["finally"])],
)
async def test_code_after_the_block_runs_on_a_disconnect_and_finally_runs_always(
    ending: str, ran: list[str]
) -> None:
    api = API()
    seen: list[str] = []

    @api.websocket_route("/")
    async def echo(ws: WebSocket) -> None:
        try:
            async with ws:
                async for message in ws:
                    await ws.send(message)
            seen.append("after the block")
        finally:
            seen.append("finally")

    async with connect(api) as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "hi"
        if ending == "server shuts down":
            await api.close_connections(timeout=5)
            assert await close_code_from_app(ws) == 1001
    assert seen == ran


# -- background tasks -------------------------------------------------------------------------------


async def test_tasks_a_view_starts_end_with_its_connection() -> None:
    api = API()
    cancelled: list[str] = []

    async def push(ws: WebSocket) -> None:
        try:
            await ws.send("tick")
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append("push")
            raise

    @api.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        async with ws:
            ws.task_group.start_soon(push, ws)
            # The view returns after one message while push is still running.
            await ws.receive()

    async with connect(api) as ws:
        assert await ws.receive_text() == "tick"
        await ws.send_text("stop")
        assert await close_code_from_app(ws) == 1000
    assert cancelled == ["push"]


async def test_a_send_that_loses_the_race_against_a_background_close_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The countdown above: a task closes the connection while the view answers a message.
    # The view did not close it, so to the view the connection ended under it.
    api = API()
    seen: list[BaseException] = []
    after_block: list[str] = []

    @api.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        closed = anyio.Event()

        async def close_now() -> None:
            await ws.close(4000)
            closed.set()

        async with ws:
            async for message in ws:
                ws.task_group.start_soon(close_now)
                await closed.wait()  # the background close always wins the race
                try:
                    await ws.send(f"you said {message}")
                except BaseException as exc:
                    seen.append(exc)
                    raise
        after_block.append("ran")

    async with connect(api) as ws:
        await ws.send_text("hi")
        assert await close_code_from_app(ws) == 4000
    assert [(type(exc), exc.code) for exc in seen] == [(WebSocketDisconnect, 4000)]  # type: ignore[attr-defined]
    assert after_block == ["ran"]  # silenced by `async with ws`, as a client leaving is
    assert error_records(caplog) == []


async def test_a_send_after_the_views_own_close_is_still_an_error(caplog: pytest.LogCaptureFixture) -> None:
    api = API()

    @api.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4000)
        await ws.send("too late")  # a bug in the view: it closed the connection itself

    async with connect(api) as ws:
        assert await close_code_from_app(ws) == 4000
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], WebSocketStateError)


def room_api(catch: bool) -> API:
    """A hand-made room: each message goes to every connection, the sender's first."""
    api = API()
    room: dict[str, WebSocket] = {}

    @api.websocket_route("/{name}")
    async def member(ws: WebSocket, name: str) -> None:
        room[name] = ws
        async with ws:
            async for message in ws:
                for other, peer in list(room.items()):
                    try:
                        await peer.send(f"{name}: {message}")
                    except WebSocketDisconnect:
                        if not catch:
                            raise
                        del room[other]

    return api


async def test_another_connections_disconnect_is_the_senders_error_not_its_close_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Not caught, the other connection's disconnect (1000: it left normally) must not close
    # the sender's connection with 1000, silently, as if the sender's own client had left.
    api = room_api(catch=False)
    async with connect(api, "/a") as a:
        async with connect(api, "/b") as b:
            await b.send_text("hi")
            assert await b.receive_text() == "b: hi"
            assert await a.receive_text() == "b: hi"
            await b.close(1000)
        await anyio.wait_all_tasks_blocked()
        await a.send_text("anyone?")
        assert await a.receive_text() == "a: anyone?"
        assert await close_code_from_app(a) == 1011
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], WebSocketDisconnect)
    assert record.exc_info[1].code == 1000


async def test_a_room_that_catches_the_disconnect_of_one_that_left_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = room_api(catch=True)
    async with connect(api, "/a") as a:
        async with connect(api, "/b") as b:
            await b.send_text("hi")
            assert await a.receive_text() == "b: hi"
        await anyio.wait_all_tasks_blocked()
        for n in range(2):  # the first send finds b gone and forgets it; the second does not try
            await a.send_text(f"#{n}")
            assert await a.receive_text() == f"a: #{n}"
    assert error_records(caplog) == []


# -- a view's own task group ------------------------------------------------------------------------


async def listen_while_pushing(ws: WebSocket) -> None:
    """A view with a task group of its own: a pusher beside the receive loop."""
    async with anyio.create_task_group() as tg:

        async def push() -> None:
            await ws.send("tick")
            await anyio.sleep_forever()

        tg.start_soon(push)
        async for message in ws:
            await ws.send(f"you said {message}")


@pytest.mark.parametrize(
    ("ending", "code"),
    [
        pytest.param(lambda ws: ws.close(4000), None, id="client leaves"),
        pytest.param(lambda ws: ws.send_bytes(b"binary"), 1003, id="frame of the wrong kind"),
    ],
)
async def test_a_disconnect_out_of_the_views_own_task_group_ends_it_quietly(
    ending: Any, code: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    # Task groups wrap what ends them in an ExceptionGroup: the disconnect of the
    # view's own connection inside one is still the end of it, not an error.
    api = API()
    after_block: list[str] = []

    @api.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        async with ws:
            await listen_while_pushing(ws)
        after_block.append("ran")

    async with connect(api) as ws:
        assert await ws.receive_text() == "tick"
        await ending(ws)
        if code is not None:
            assert await close_code_from_app(ws) == code
    assert after_block == ["ran"]
    assert error_records(caplog) == []


async def test_a_disconnect_out_of_a_task_group_passes_uncaught_and_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = API()
    seen: list[str] = []

    @api.websocket_route("/", catch_disconnect=False)
    async def view(ws: WebSocket) -> None:
        try:
            async with ws:
                await listen_while_pushing(ws)
        except BaseExceptionGroup as group:
            seen.extend(f"{type(exc).__name__} {getattr(exc, 'code', None)}" for exc in group.exceptions)
            raise

    async with connect(api) as ws:
        assert await ws.receive_text() == "tick"
        await ws.close(4000)
    assert seen == ["WebSocketDisconnect 4000"]
    assert error_records(caplog) == []


async def test_an_error_beside_a_disconnect_in_a_task_group_is_still_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = API()

    @api.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        async with ws, anyio.create_task_group() as tg:

            async def fail() -> None:
                raise RuntimeError("boom beside the disconnect")

            async def leave() -> None:
                raise WebSocketDisconnect(1000)

            tg.start_soon(fail)
            tg.start_soon(leave)

    async with connect(api) as ws:
        assert await close_code_from_app(ws) == 1011
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], BaseExceptionGroup)
