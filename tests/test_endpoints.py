"""WebSocketEndpoint: the hooks, one instance per connection, and how the dispatcher ends a connection."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import MutableMapping
from typing import Any, ClassVar, Literal

import anyio
import anyio.lowlevel
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from wsendpoints import API, CloseCode, WebSocket, WebSocketDisconnect, WebSocketEndpoint
from wsendpoints.codecs import Codec
from wsendpoints.exceptions import ConfigurationError, HandshakeRejected
from wsendpoints.testing import ClientWebSocket, connect
from wsendpoints.types import Message

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup


class Echo(WebSocketEndpoint):
    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        await ws.send(message)


def served(endpoint: type[WebSocketEndpoint]) -> API:
    api = API()
    api.add_websocket("/", endpoint)
    return api


async def close_code_from_app(ws: ClientWebSocket) -> int:
    """Wait for the application to close the connection; the code it chose."""
    with pytest.raises(WebSocketDisconnect) as closed:
        await ws.receive_text()
    return closed.value.code


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsendpoints" and r.levelno >= logging.ERROR]


def websocket_scope(path: str = "/") -> dict[str, Any]:
    """A scope as a server without the websocket.http.response extension builds it."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "subprotocols": [],
    }


# -- on_connect ------------------------------------------------------------------------


async def test_default_on_connect_accepts() -> None:
    async with connect(served(Echo)) as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "hi"


async def test_on_connect_that_returns_without_accepting_is_accepted_for_it() -> None:
    class Quiet(Echo):
        async def on_connect(self, ws: WebSocket) -> None:
            ws.state.ready = True

    async with connect(served(Quiet)) as ws:
        await ws.send_text("still here")
        assert await ws.receive_text() == "still here"


async def test_closing_in_on_connect_refuses_the_handshake() -> None:
    class Bouncer(Echo):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.close(4403)

    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(served(Bouncer)):
            pass
    assert rejected.value.status_code == 403
    assert rejected.value.close_code == 4403


@pytest.mark.parametrize("how", ["close", "raise"])
async def test_a_refusal_in_on_connect_keeps_its_code_and_reason_for_on_disconnect(how: str) -> None:
    seen: list[tuple[int, int | None, str]] = []

    class Bouncer(Echo):
        async def on_connect(self, ws: WebSocket) -> None:
            if how == "close":
                await ws.close(4403, "not today")
            raise WebSocketDisconnect(4403, "not today")

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            seen.append((close_code, ws.close_code, ws.close_reason))

    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(served(Bouncer)):
            pass
    assert rejected.value.status_code == 403
    assert seen == [(4403, 4403, "not today")]


# -- messages, types and per-connection state --------------------------------------------


@pytest.mark.parametrize(
    ("types", "send", "payloads", "expected"),
    [
        pytest.param({}, "send_text", ["a", "b", "c"], ["a", "b", "c"], id="text"),
        pytest.param(
            {"receive_type": "bytes"}, "send_bytes", [b"\x00", b"\x01"], [b"\x00", b"\x01"], id="bytes"
        ),
        pytest.param(
            {"value_type": "json"},
            "send_json",
            [{"n": i} for i in range(20)],
            [{"n": i} for i in range(20)],
            id="json",
        ),
        pytest.param(
            {"value_type": "msgpack"},
            "send_msgpack",
            [[1, 2], {"k": b"v"}],
            [[1, 2], {"k": b"v"}],
            id="msgpack",
        ),
        pytest.param({"receive_type": "auto"}, "send_bytes", [b"raw"], [b"raw"], id="auto"),
    ],
)
async def test_on_receive_gets_decoded_messages_in_order(
    types: dict[str, str], send: str, payloads: list[Any], expected: list[Any]
) -> None:
    received: list[Any] = []

    async def on_receive(self: WebSocketEndpoint, ws: WebSocket, message: Any) -> None:
        received.append(message)

    Recorder = type("Recorder", (WebSocketEndpoint,), {**types, "on_receive": on_receive})
    async with connect(served(Recorder)) as ws:
        for payload in payloads:
            await getattr(ws, send)(payload)
    # Leaving the block waited for the app, so every message has been handled.
    assert received == expected


@pytest.mark.parametrize(
    ("types", "receive", "expected"),
    [
        pytest.param({"send_type": "json"}, "receive_json", {"got": '"hello"'}, id="json"),
        pytest.param({"send_type": "msgpack"}, "receive_msgpack", {"got": '"hello"'}, id="msgpack"),
        pytest.param({"value_type": "json"}, "receive_json", {"got": "hello"}, id="value_type sets both"),
    ],
)
async def test_send_type_encodes_what_the_endpoint_sends(
    types: dict[str, str], receive: str, expected: dict[str, str]
) -> None:
    async def on_receive(self: WebSocketEndpoint, ws: WebSocket, message: Any) -> None:
        await ws.send({"got": message})

    Replier = type("Replier", (WebSocketEndpoint,), {**types, "on_receive": on_receive})
    async with connect(served(Replier)) as ws:
        await ws.send_text('"hello"')
        assert await getattr(ws, receive)() == expected


async def test_each_connection_gets_its_own_instance() -> None:
    class Counter(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            self.count = 0
            await ws.accept()

        async def on_receive(self, ws: WebSocket, message: Any) -> None:
            self.count += 1
            await ws.send(f"{message} {self.count}")

    api = served(Counter)
    async with connect(api) as first, connect(api) as second:
        await first.send_text("a")
        assert await first.receive_text() == "a 1"
        await first.send_text("a")
        assert await first.receive_text() == "a 2"
        await second.send_text("b")
        assert await second.receive_text() == "b 1"


# -- background tasks ---------------------------------------------------------------------------


class Ticker(WebSocketEndpoint):
    """Pushes a tick from a background task; commands close or crash the connection."""

    cancelled: list[str]

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        ws.task_group.start_soon(self.push, ws)

    async def push(self, ws: WebSocket) -> None:
        try:
            await ws.send("tick")
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled.append("push")
            raise

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        if message == "close":
            await ws.close(4000)
        elif message == "crash":
            raise RuntimeError("crash requested")


@pytest.mark.parametrize(
    "end",
    [
        pytest.param(lambda ws: ws.close(), id="client closes"),
        pytest.param(lambda ws: ws.send_text("close"), id="server closes"),
        pytest.param(lambda ws: ws.send_text("crash"), id="on_receive raises"),
    ],
)
async def test_background_task_is_cancelled_when_the_connection_ends(end: Any) -> None:
    cancelled: list[str] = []
    TrackedTicker = type("TrackedTicker", (Ticker,), {"cancelled": cancelled})
    async with connect(served(TrackedTicker)) as ws:
        assert await ws.receive_text() == "tick"
        await end(ws)
    assert cancelled == ["push"]


# -- failures ----------------------------------------------------------------------------------------


class Fragile(WebSocketEndpoint):
    """Echoes, or fails where the client's message says: in on_receive or in a background task."""

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        if message == "fail in on_receive":
            raise RuntimeError("boom in on_receive")
        if message == "fail in task":
            ws.task_group.start_soon(self.explode)
        else:
            await ws.send(message)

    async def explode(self) -> None:
        raise RuntimeError("boom in task")


@pytest.mark.parametrize("where", ["on_receive", "task"])
async def test_exception_in_a_hook_or_task_closes_with_1011_and_logs_the_traceback(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    api = served(Fragile)
    async with connect(api) as ws:
        await ws.send_text(f"fail in {where}")
        assert await close_code_from_app(ws) == 1011

    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert str(record.exc_info[1]) == f"boom in {where}"

    async with connect(api) as ws:
        await ws.send_text("still serving")
        assert await ws.receive_text() == "still serving"


@pytest.mark.parametrize("task_raises", ["error", "disconnect"])
async def test_a_hook_and_a_task_failing_together_log_both_tracebacks(
    task_raises: str, caplog: pytest.LogCaptureFixture
) -> None:
    class BothFail(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, message: Any) -> None:
            failing = anyio.Event()
            ws.task_group.start_soon(self.fail_after, failing)
            failing.set()
            raise RuntimeError("boom in on_receive")

        async def fail_after(self, failing: anyio.Event) -> None:
            # Shielded, so that it still fails once the hook's error cancels the group.
            with anyio.CancelScope(shield=True):
                await failing.wait()
            if task_raises == "disconnect":
                raise WebSocketDisconnect(1001)
            raise RuntimeError("boom in task")

    async with connect(served(BothFail)) as ws:
        await ws.send_text("go")
        assert await close_code_from_app(ws) == 1011

    [record] = error_records(caplog)
    assert record.exc_info is not None
    logged = record.exc_info[1]
    if task_raises == "disconnect":
        assert isinstance(logged, RuntimeError)
        assert str(logged) == "boom in on_receive"
    else:
        assert isinstance(logged, ExceptionGroup)
        assert [str(exc) for exc in logged.exceptions] == ["boom in on_receive", "boom in task"]


async def test_exception_in_on_connect_after_accepting_closes_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenConnect(Echo):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            if "fail" in ws.query_params:
                raise RuntimeError("boom in on_connect")

    api = served(BrokenConnect)
    async with connect(api, "/?fail") as ws:
        assert await close_code_from_app(ws) == 1011
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "boom in on_connect"

    async with connect(api) as ws:
        await ws.send_text("still serving")
        assert await ws.receive_text() == "still serving"


async def test_exception_in_on_connect_before_accepting_refuses_with_http_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenConnect(Echo):
        async def on_connect(self, ws: WebSocket) -> None:
            raise RuntimeError("boom before accept")

    api = served(BrokenConnect)
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api):
            pass
    assert rejected.value.status_code == 500
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "boom before accept"


async def test_exception_in_on_disconnect_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenCleanup(Echo):
        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            raise RuntimeError("boom in on_disconnect")

    api = served(BrokenCleanup)
    async with connect(api) as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "hi"

    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "boom in on_disconnect"
    async with connect(api) as ws:
        await ws.send_text("again")
        assert await ws.receive_text() == "again"


# -- on_disconnect -----------------------------------------------------------------------------------


class Recorded(WebSocketEndpoint):
    """A JSON endpoint that records its close codes; {"close": code} and {"raise": ...} are commands."""

    value_type = "json"
    codes: list[int]

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        if "close" in message:
            await ws.close(message["close"])
        elif "raise" in message:
            raise RuntimeError(message["raise"])

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        self.codes.append(close_code)


@pytest.mark.parametrize(
    ("end", "expected_code"),
    [
        pytest.param(lambda ws: ws.close(1001), 1001, id="client closes 1001"),
        pytest.param(lambda ws: ws.close(4000), 4000, id="client closes 4000"),
        pytest.param(lambda ws: ws.close(), 1000, id="client closes 1000"),
        pytest.param(lambda ws: ws.send_json({"close": 4321}), 4321, id="server closes in on_receive"),
        pytest.param(lambda ws: ws.send_text("{not json"), 1007, id="payload it cannot decode"),
        pytest.param(lambda ws: ws.send_bytes(b"[]"), 1003, id="frame of the wrong kind"),
        pytest.param(lambda ws: ws.send_json({"raise": "boom"}), 1011, id="exception"),
    ],
)
async def test_on_disconnect_runs_once_with_the_close_code(end: Any, expected_code: int) -> None:
    codes: list[int] = []
    Endpoint = type("Endpoint", (Recorded,), {"codes": codes})
    async with connect(served(Endpoint)) as ws:
        await end(ws)
    assert codes == [expected_code]


@pytest.mark.parametrize(
    ("code", "member"),
    [
        (1002, "PROTOCOL_ERROR"),
        (1010, "MANDATORY_EXTENSION"),
        (1014, "BAD_GATEWAY"),
        (3000, None),
        (4000, None),
    ],
)
async def test_a_client_s_close_code_reaches_on_disconnect_as_sent(code: int, member: str | None) -> None:
    seen: list[tuple[int, int | None]] = []

    class Endpoint(WebSocketEndpoint):
        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            seen.append((close_code, ws.close_code))

    async with connect(served(Endpoint)) as ws:
        await ws.close(code)
    expected = CloseCode[member] if member else code
    assert seen == [(expected, expected)]
    assert all(type(c) is int for c in seen[0])


async def test_cancelled_connection_closes_with_1001_and_still_runs_on_disconnect() -> None:
    codes: list[int] = []
    accepted = anyio.Event()

    class Endpoint(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            accepted.set()

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            # A checkpoint here would raise at once if on_disconnect were not shielded.
            await anyio.lowlevel.checkpoint()
            codes.append(close_code)

    to_app, app_inbox = anyio.create_memory_object_stream[dict[str, Any]](10)
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def serve_connection() -> None:
        await Endpoint(websocket_scope(), app_inbox.receive, send)

    await to_app.send({"type": "websocket.connect"})
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_connection)
            await accepted.wait()
            tg.cancel_scope.cancel()

    assert codes == [1001]
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[-1]["code"] == 1001


async def test_system_exit_in_a_hook_is_not_swallowed() -> None:
    codes: list[int] = []

    class Exiting(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, message: Any) -> None:
            raise SystemExit(3)

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            codes.append(close_code)

    inbox = [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": "bye"}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    # SystemExit and KeyboardInterrupt are not errors to report with 1011: the process
    # is asked to stop, so the connection is closed and the exception goes on to the server.
    with (
        anyio.fail_after(5),
        pytest.RaisesGroup(SystemExit, allow_unwrapped=True, flatten_subgroups=True),
    ):
        await Exiting(websocket_scope(), receive, send)
    assert sent[-1]["type"] == "websocket.close"
    assert len(codes) == 1


# -- class definition and route options ------------------------------------------------------------


@pytest.mark.parametrize("attribute", ["value_type", "receive_type", "send_type"])
def test_unknown_type_name_is_refused_when_the_class_is_defined(attribute: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown message type 'yaml'"):
        type("Typo", (WebSocketEndpoint,), {attribute: "yaml"})


@pytest.mark.parametrize(
    ("encoding", "value_type"), [("json", "'json'"), ("bytes", "'bytes'"), ("text", "'text'")]
)
def test_starlette_s_encoding_attribute_is_refused_naming_value_type(encoding: str, value_type: str) -> None:
    # Ported from Starlette as it stood, the endpoint would have served text, unseen until
    # on_receive got a str where it expected a dict.
    with pytest.raises(
        ConfigurationError, match=f"^Ported.encoding is Starlette's: write value_type = {value_type}"
    ):
        type("Ported", (WebSocketEndpoint,), {"encoding": encoding})


@pytest.mark.parametrize("encoding", ["utf-8", None, ["utf-8", "latin-1"], {"in": "utf-8"}], ids=repr)
def test_an_encoding_attribute_of_another_kind_is_the_endpoint_s_own(encoding: object) -> None:
    # Unhashable ones too: the check must not fail with "unhashable type" at class definition.
    endpoint = type("Own", (Echo,), {"encoding": encoding})
    assert endpoint.encoding == encoding  # type: ignore[attr-defined]


def forgot_async(self: WebSocketEndpoint, ws: WebSocket, *args: Any) -> None:
    pass


@pytest.mark.parametrize("hook", ["on_connect", "on_receive", "on_disconnect"])
def test_a_hook_that_is_not_async_is_refused_when_the_class_is_defined(hook: str) -> None:
    # Not on every connection, as "object NoneType can't be used in 'await' expression" and 1011.
    with pytest.raises(ConfigurationError, match=f"^Sync.{hook} must be an 'async def' method$"):
        type("Sync", (Echo,), {hook: forgot_async})


async def test_route_value_type_overrides_the_class_attributes() -> None:
    api = API()
    api.add_websocket("/json", Echo, value_type="json")
    api.add_websocket("/text", Echo)
    async with connect(api, "/json") as ws:
        await ws.send_json({"a": [1, 2]})
        assert await ws.receive_json() == {"a": [1, 2]}
    # The route got its own configured class; Echo itself still speaks text.
    async with connect(api, "/text") as ws:
        await ws.send_text("not json")
        assert await ws.receive_text() == "not json"


async def test_route_receive_type_keeps_the_class_send_type() -> None:
    class Describe(WebSocketEndpoint):
        value_type = "json"

        async def on_receive(self, ws: WebSocket, message: Any) -> None:
            await ws.send({"type": type(message).__name__, "message": message})

    api = API()
    api.add_websocket("/", Describe, receive_type="text")
    async with connect(api) as ws:
        # Not JSON: the class's receive codec would close with 1007.
        await ws.send_text("plain words")
        assert await ws.receive_json() == {"type": "str", "message": "plain words"}


class Describe(WebSocketEndpoint):
    """JSON both ways: answers with the type of what it received."""

    value_type: ClassVar[str | Codec | None] = "json"

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        await ws.send({"type": type(message).__name__})


class DescribeFromText(Describe):
    receive_type = "text"  # text in; out, still the parent's JSON


class DescribeFromTextToo(DescribeFromText):
    """Names no codec: it keeps its parent's, text in and JSON out."""


class DescribeAsMsgpack(Describe):
    send_type = "msgpack"  # msgpack out; in, still the parent's JSON


@pytest.mark.parametrize("endpoint", [DescribeFromText, DescribeFromTextToo])
async def test_a_subclass_naming_its_receive_type_keeps_the_parents_value_type_for_sending(
    endpoint: type[WebSocketEndpoint],
) -> None:
    # As a route's receive_type does: the parent's value_type no longer overrides it.
    async with connect(served(endpoint)) as ws:
        await ws.send_text("plain words")  # not JSON: the parent's receive codec would close with 1007
        assert await ws.receive_json() == {"type": "str"}


async def test_a_subclass_naming_its_send_type_keeps_the_parents_value_type_for_receiving() -> None:
    async with connect(served(DescribeAsMsgpack)) as ws:
        await ws.send_json([1, 2])
        assert await ws.receive_msgpack() == {"type": "list"}


@pytest.mark.parametrize("direction", ["receive_type", "send_type"])
def test_a_class_naming_value_type_and_one_direction_is_refused(direction: str) -> None:
    # value_type sets both directions: the other name would be silently ignored.
    with pytest.raises(ConfigurationError, match=f"^Both names value_type and {direction}: "):
        type("Both", (WebSocketEndpoint,), {"value_type": "json", direction: "bytes"})


async def silent_view(ws: WebSocket) -> None:
    pass


@pytest.mark.parametrize("handler", [Echo, silent_view], ids=["endpoint", "view"])
@pytest.mark.parametrize("direction", ["receive_type", "send_type"])
def test_a_route_naming_value_type_and_one_direction_is_refused(handler: Any, direction: str) -> None:
    api = API()
    options: dict[str, Any] = {"value_type": "json", direction: "bytes"}
    with pytest.raises(ConfigurationError, match=f"^the route '/' names value_type and {direction}: "):
        api.add_websocket("/", handler, **options)
    assert api.routes == []
    # value_type=None leaves each direction to its own option.
    api.add_websocket("/", handler, **{**options, "value_type": None})


@pytest.mark.parametrize("option", [{"catch_disconnect": False}, {"caught_close_codes": [1000]}])
def test_disconnect_options_are_refused_for_an_endpoint(option: dict[str, Any]) -> None:
    api = API()
    name = next(iter(option))
    expected = f"^{name} applies to function views only: an endpoint learns of disconnects in its on_disc"
    with pytest.raises(ConfigurationError, match=expected):
        api.add_websocket("/", Echo, **option)
    assert api.routes == []


async def allow_anyone(ws: WebSocket) -> None:
    pass


def test_the_authenticate_option_is_refused_for_an_endpoint_which_overrides_the_method() -> None:
    api = API()
    expected = "^authenticate applies to function views only: an endpoint overrides its authenticate method$"
    with pytest.raises(ConfigurationError, match=expected):
        api.add_websocket("/", Echo, authenticate=allow_anyone)
    assert api.routes == []


@pytest.mark.parametrize("handler", [Echo, silent_view], ids=["endpoint", "view"])
def test_a_misspelt_route_option_is_refused_with_the_name_it_resembles(handler: Any) -> None:
    # An endpoint would otherwise take it as one more class attribute, and nobody would read it.
    api = API()
    options: dict[str, Any] = {"value_typ": "json"}
    with pytest.raises(
        ConfigurationError, match=r"^the route '/' has no option 'value_typ' \(did you mean 'value_type'\?\)"
    ):
        api.add_websocket("/", handler, **options)
    assert api.routes == []


# -- an endpoint class as a plain ASGI app --------------------------------------------------------------


class Room(WebSocketEndpoint):
    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(f"welcome to {ws.path_params['room']}")

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        await ws.send(message.upper())


def starlette_app() -> Starlette:
    return Starlette(routes=[WebSocketRoute("/ws/{room}", Room)])


async def test_endpoint_class_mounted_in_starlette_with_the_async_client() -> None:
    async with connect(starlette_app(), "/ws/lobby") as ws:
        assert await ws.receive_text() == "welcome to lobby"
        await ws.send_text("hello")
        assert await ws.receive_text() == "HELLO"


def test_endpoint_class_mounted_in_starlette_with_starlettes_test_client(
    backend: Literal["asyncio", "trio"],
) -> None:
    with warnings.catch_warnings():
        # Starlette 1.x asks for httpx2 at import; the httpx the dev extra installs still works.
        warnings.simplefilter("ignore", UserWarning)
        from starlette.testclient import TestClient

    with (
        TestClient(starlette_app(), backend=backend) as client,
        client.websocket_connect("/ws/lobby") as ws,
    ):
        assert ws.receive_text() == "welcome to lobby"
        ws.send_text("hello")
        assert ws.receive_text() == "HELLO"


async def test_a_background_send_racing_the_apps_own_close_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[int] = []

    class Pusher(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            self.app_closed = anyio.Event()
            ws.task_group.start_soon(self.push_after_close, ws)

        async def push_after_close(self, ws: WebSocket) -> None:
            # Released only once the app has closed: the send always loses the race.
            await self.app_closed.wait()
            await ws.send("too late")

        async def on_receive(self, ws: WebSocket, message: str) -> None:
            await ws.close(4000)
            self.app_closed.set()
            await anyio.sleep(0.05)

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            closed.append(close_code)

    api = API()
    api.add_websocket("/push", Pusher)
    async with connect(api, "/push") as ws:
        await ws.send_text("stop")
        with pytest.raises(WebSocketDisconnect) as ended:
            await ws.receive_text()
        assert ended.value.code == 4000
    assert closed == [4000]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_on_receive_sending_after_a_task_of_the_connection_closed_it_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    codes: list[int] = []

    class Closer(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, message: Any) -> None:
            closed = anyio.Event()

            async def close_now() -> None:
                await ws.close(4000)
                closed.set()

            ws.task_group.start_soon(close_now)
            await closed.wait()
            await ws.send("too late: the task closed it")

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            codes.append(close_code)

    api = API()
    api.add_websocket("/", Closer)
    async with connect(api) as ws:
        await ws.send_text("hi")
        assert await close_code_from_app(ws) == 4000
    assert codes == [4000]
    assert error_records(caplog) == []


async def test_on_receive_whose_own_task_group_finds_the_client_gone_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    codes: list[int] = []

    class FanOut(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, message: Any) -> None:
            # Both sends find the client gone: the task group raises both disconnects in a group.
            async with anyio.create_task_group() as tg:
                tg.start_soon(ws.send, "one")
                tg.start_soon(ws.send, "two")

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            codes.append(close_code)

    async with connect(served(FanOut)) as ws:
        await ws.send_text("hi")
        await ws.close(4000)
    assert codes == [1006]
    assert error_records(caplog) == []


class ClosedByItsTask(WebSocketEndpoint):
    codes: ClassVar[list[int]] = []

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        ws.task_group.start_soon(ws.close, 4001, "closed by a task")

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        self.codes.append(close_code)


async def view_closed_by_its_task(ws: WebSocket) -> None:
    async with ws:
        ws.task_group.start_soon(ws.close, 4001, "closed by a task")
        async for _ in ws:
            pass


async def serve_a_client_that_never_answers(api: API) -> list[Message]:
    """Serve one connection whose client, as hypercorn reports it, says nothing after connecting:
    the server's receive never returns, not even a disconnect after the app's close. What the app sent."""
    connected = False
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal connected
        if not connected:
            connected = True
            return {"type": "websocket.connect"}
        await anyio.sleep_forever()  # a client that says nothing, not even its close frame
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(3):
        await api(websocket_scope(), receive, send)
    return sent


@pytest.mark.parametrize("handler", [ClosedByItsTask, view_closed_by_its_task], ids=["endpoint", "view"])
async def test_a_connection_closed_by_its_task_ends_though_the_client_never_answers_the_close(
    handler: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # hypercorn tells the app that the connection is over only once the client answers the
    # close frame; a client that never does must not keep the handler in receive() for good.
    monkeypatch.setattr("wsendpoints.websockets._CLOSE_TIMEOUT", 0.2)
    ClosedByItsTask.codes = []
    api = API()
    api.add_websocket("/", handler)
    sent = await serve_a_client_that_never_answers(api)
    assert [(m["type"], m.get("code"), m.get("reason")) for m in sent] == [
        ("websocket.accept", None, None),
        ("websocket.close", 4001, "closed by a task"),
    ]
    if handler is ClosedByItsTask:
        assert ClosedByItsTask.codes == [4001]
    assert api.connection_count == 0
    assert error_records(caplog) == []


async def test_a_close_by_a_task_keeps_its_code_when_the_client_answers_with_another(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A client may answer a close frame with a code of its own (RFC 6455, 5.5.1): the app
    # closed the connection, so ws.close_code and on_disconnect keep the app's code.
    ClosedByItsTask.codes = []
    closed = anyio.Event()
    events: list[Message] = [{"type": "websocket.connect"}]

    async def receive() -> Message:
        if events:
            return events.pop(0)
        await closed.wait()
        return {"type": "websocket.disconnect", "code": 1000, "reason": "bye"}

    async def send(message: Message) -> None:
        if message["type"] == "websocket.close":
            closed.set()

    with anyio.fail_after(3):
        await served(ClosedByItsTask)(websocket_scope(), receive, send)
    assert ClosedByItsTask.codes == [4001]
    assert error_records(caplog) == []


async def test_an_idle_timeout_after_a_close_by_a_task_reports_that_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The idle timeout fires first while the client, as above, never answers the task's close.
    caplog.set_level(logging.INFO, logger="wsendpoints")
    ended: list[tuple[int, str]] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        ws.task_group.start_soon(ws.close, 4001, "closed by a task")
        try:
            async for _ in ws:
                pass
        except WebSocketDisconnect as exc:
            ended.append((exc.code, exc.reason))

    api = API()
    api.add_websocket("/", view, idle_timeout=0.1)
    sent = await serve_a_client_that_never_answers(api)
    assert [m.get("code") for m in sent if m["type"] == "websocket.close"] == [4001]
    assert ended == [(4001, "closed by a task")]
    # It was closed, not idle: no "closing ... idle" line.
    assert not [record for record in caplog.records if "idle" in record.getMessage()]
