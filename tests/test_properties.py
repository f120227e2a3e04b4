"""Property-based tests (hypothesis): the codecs, the router and the dispatcher under arbitrary input.

Each property runs a bounded number of examples. The async ones take the
``anyio_backend`` fixture, so that they run on asyncio and on trio like every
other test; hypothesis runs every example inside that event loop.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from wsendpoints import API, WebSocket, WebSocketEndpoint
from wsendpoints.codecs import resolve_codec
from wsendpoints.exceptions import AuthenticationFailed
from wsendpoints.routing import Route
from wsendpoints.types import Message

pytestmark = pytest.mark.anyio


# Function-scoped fixtures (the anyio_backend name, conftest's log capture) are shared between the
# examples of a test, which is harmless here.
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
BUILT_IN = ["text", "bytes", "auto", "json", "msgpack"]
TEXT_CODECS = ["text", "auto", "json"]
BINARY_CODECS = ["bytes", "auto", "msgpack"]

# -- codecs -----------------------------------------------------------------------------------------

# Strings a WebSocket text frame can carry: UTF-8, so no lone surrogates.
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
texts = st.text(st.characters(exclude_categories=SURROGATES), max_size=30)
integers = st.integers(min_value=-(2**63), max_value=2**64 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | integers | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=30,
)
msgpack_values = st.recursive(
    st.none() | st.booleans() | integers | st.floats(allow_nan=False) | texts | st.binary(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(texts | st.binary(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@PROPERTY
@given(json_values)
def test_json_round_trips(value: Any) -> None:
    codec = resolve_codec("json")
    encoded = codec.encode(value)
    assert isinstance(encoded, str)
    assert codec.decode(encoded) == value


@PROPERTY
@given(msgpack_values)
def test_msgpack_round_trips(value: Any) -> None:
    codec = resolve_codec("msgpack")
    encoded = codec.encode(value)
    assert isinstance(encoded, bytes)
    assert codec.decode(encoded) == value


@PROPERTY
@given(st.text())
def test_text_round_trips(value: str) -> None:
    for name in ("text", "auto"):
        codec = resolve_codec(name)
        assert codec.decode(codec.encode(value)) == value


@PROPERTY
@given(st.binary())
def test_bytes_round_trip(value: bytes) -> None:
    for name in ("bytes", "auto"):
        codec = resolve_codec(name)
        assert codec.decode(codec.encode(value)) == value


def mutated(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid payloads cut short, or with a span replaced: the inputs that get deep into a parser."""

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        payload = draw(valid)
        start = draw(st.integers(0, len(payload)))
        end = draw(st.integers(start, len(payload)))
        filler = draw(st.text(max_size=4) if isinstance(payload, str) else st.binary(max_size=4))
        return payload[:start] + filler + payload[end:] if draw(st.booleans()) else payload[:start]

    return mutate()


json_texts = json_values.map(resolve_codec("json").encode)
json_like = st.text(alphabet='[]{}",:-+.0123456789eEtrufalsn\\ u\x00é', max_size=40)
# Strings a server could hand over, lone surrogates included: decoders must cope with those too.
any_text = st.one_of(st.text(), json_like, json_texts, mutated(json_texts))
msgpack_bytes = msgpack_values.map(resolve_codec("msgpack").encode)
any_bytes = st.one_of(st.binary(), msgpack_bytes, mutated(msgpack_bytes))


def decodes_or_refuses(name: str, payload: str | bytes) -> None:
    """Decoding returns a value or raises ValueError (close 1007); anything else would be a 1011."""
    with contextlib.suppress(ValueError):
        resolve_codec(name).decode(payload)


@PROPERTY
@example("1" * 5000)
@example("[" * 2000)
@example('"\\ud800"')
@example("1e999999")
@given(any_text)
def test_text_payloads_decode_or_raise_value_error(payload: str) -> None:
    for name in TEXT_CODECS:
        decodes_or_refuses(name, payload)


@PROPERTY
@example(b"\x91" * 2000 + b"\xc0")
@example(b"\xdd\xff\xff\xff\xff")
@example(b"\x81\x80\xc0")  # a map as a map key: unhashable
@example(b"\xa1\xff")  # a str that is not UTF-8
@example(b"\xd4\x00")  # an extension type cut short
@example(b"\xd6\xff\x00\x00\x00\x00\x00")  # a timestamp cut short
@given(any_bytes)
def test_binary_payloads_decode_or_raise_value_error(payload: bytes) -> None:
    for name in BINARY_CODECS:
        decodes_or_refuses(name, payload)


# -- the router --------------------------------------------------------------------------------------


async def unused(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


PATTERNS = [
    "/",
    "/echo",
    "/rooms/{room}",
    "/users/{id:int}",
    "/v/{x:float}",
    "/u/{u:uuid}",
    "/files/{rest:path}",
    "/a/{a}/b/{b:int}/{c:path}",
]
ROUTES = [Route(pattern, unused) for pattern in PATTERNS]
paths = st.one_of(st.text(), st.text().map(lambda s: "/" + s), st.sampled_from(PATTERNS).map(str.upper))


@PROPERTY
@given(paths)
def test_no_path_crashes_a_route(path: str) -> None:
    for route in ROUTES:
        params = route.match(path)
        assert params is None or set(params) == set(route.param_names)


@PROPERTY
@example("/echo\n")
@given(paths | st.just("/echo"))
def test_a_literal_route_matches_its_path_only(path: str) -> None:
    assert (Route("/echo", unused).match(path) is not None) == (path == "/echo")


@PROPERTY
@example("12\n")
@given(st.text() | st.from_regex(r"\A[0-9]{1,30}\Z"))
def test_the_int_converter_takes_ascii_digits_only(segment: str) -> None:
    params = Route("/users/{id:int}", unused).match(f"/users/{segment}")
    if re.fullmatch(r"[0-9]+", segment, re.ASCII):
        assert params == {"id": int(segment)}
    else:
        assert params is None


@PROPERTY
@example("1.5\n")
@given(st.text() | st.from_regex(r"\A[0-9]{1,10}(\.[0-9]{1,10})?\Z") | st.floats().map(str))
def test_the_float_converter_takes_plain_decimals_only(segment: str) -> None:
    params = Route("/v/{x:float}", unused).match(f"/v/{segment}")
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", segment, re.ASCII):
        assert params == {"x": float(segment)}
    else:
        # No sign, exponent, "inf" or "nan": those are other routes' business.
        assert params is None


CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


@PROPERTY
@example(f"{uuid.UUID(int=0)}\n")
@given(
    st.text()
    | st.uuids().map(str)
    | st.uuids().map(lambda u: str(u).upper())
    | st.uuids().map(lambda u: u.hex)
)
def test_the_uuid_converter_takes_the_canonical_form_only(segment: str) -> None:
    params = Route("/u/{u:uuid}", unused).match(f"/u/{segment}")
    if CANONICAL_UUID.fullmatch(segment):
        assert params == {"u": uuid.UUID(segment)}
    else:
        assert params is None


@PROPERTY
@example("a\nb")
@given(st.text())
def test_the_path_converter_takes_the_rest_of_the_path(rest: str) -> None:
    assert Route("/files/{rest:path}", unused).match(f"/files/{rest}") == {"rest": rest}


@PROPERTY
@given(st.text())
def test_the_str_converter_takes_one_segment(segment: str) -> None:
    params = Route("/rooms/{room}", unused).match(f"/rooms/{segment}")
    assert params == ({"room": segment} if segment and "/" not in segment else None)


def routed_api() -> API:
    async def view(ws: WebSocket, **params: Any) -> None:
        async with ws:
            await ws.send(repr(sorted(params)))

    api = API()
    for pattern in PATTERNS:
        api.add_websocket(pattern, view)
    return api


ROUTED = routed_api()


@PROPERTY
@given(paths)
async def test_no_path_crashes_the_api(anyio_backend: str, path: str) -> None:
    sent: list[Message] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive() -> Message:
        await anyio.lowlevel.checkpoint()
        return inbox.pop() if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": path, "headers": [], "extensions": {"websocket.http.response": {}}}
    with anyio.fail_after(5):
        await ROUTED(scope, receive, send)
    matched = any(route.match(path) is not None for route in ROUTES)
    if matched:
        assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    else:
        assert sent[0]["type"] == "websocket.http.response.start"
        assert sent[0]["status"] == 404


# -- the dispatcher ----------------------------------------------------------------------------------

PAUSE: Message = {"type": "test.pause"}
"""Not an event: the client stays silent for a moment (long enough for an idle timeout)."""

payload_texts = st.sampled_from(
    ["hi", "raise", "close", "join", '"raise"', "[1, 2]", "{", "x" * 20]
) | st.text(max_size=12)
payload_bytes = st.sampled_from(
    [b"hi", b"raise", b"\xa5raise", b"\xa5close", b"\x92\x01\x02", b"\xc1"]
) | st.binary(max_size=12)
client_codes = st.integers(min_value=1000, max_value=4999)
text_frames = st.builds(lambda text: {"type": "websocket.receive", "text": text}, payload_texts)
binary_frames = st.builds(lambda data: {"type": "websocket.receive", "bytes": data}, payload_bytes)
# Frames come up more often than the rest, so that sequences get past their first event.
events = st.one_of(
    text_frames,
    binary_frames,
    text_frames,
    binary_frames,
    st.builds(
        lambda text, data: {"type": "websocket.receive", "text": text, "bytes": data},
        payload_texts,
        payload_bytes,
    ),
    st.just({"type": "websocket.receive"}),
    st.just({"type": "websocket.receive", "text": None, "bytes": None}),
    st.builds(lambda code: {"type": "websocket.disconnect", "code": code}, client_codes),
    st.just({"type": "websocket.disconnect"}),
    st.sampled_from(
        [
            {"type": "websocket.connect"},
            {"type": "websocket.accept"},
            {"type": "http.request", "body": b""},
            {"type": "lifespan.startup"},
            {"type": "websocket.mystery"},
        ]
    ),
    st.just(PAUSE),
)
first_events = st.sampled_from(
    [{"type": "websocket.connect"}] * 9 + [{"type": "websocket.disconnect", "code": 1001}]
)


@dataclass
class Config:
    kind: str
    value_type: str
    on_connect: str
    authenticate: str
    max_message_size: int | None
    max_message_rate: float | None
    idle_timeout: float | None
    http_response: bool
    send_fails_after_disconnect: bool


configs = st.builds(
    Config,
    kind=st.sampled_from(["endpoint", "view"]),
    value_type=st.sampled_from(BUILT_IN),
    on_connect=st.sampled_from(
        ["default", "default", "accept", "accept", "refuse", "raise", "background", "ticker", "send"]
    ),
    authenticate=st.sampled_from(["none", "none", "none", "user", "user", "refuse", "raise"]),
    max_message_size=st.sampled_from([None, 8, 2**20]),
    max_message_rate=st.sampled_from([None, 3.0]),
    idle_timeout=st.sampled_from([None, None, 0.01]),  # PAUSE outlasts it
    http_response=st.booleans(),
    send_fails_after_disconnect=st.booleans(),
)


@dataclass
class Trace:
    calls: list[str] = field(default_factory=list)


def handler_for(config: Config, trace: Trace) -> tuple[Any, dict[str, Any]]:
    """An endpoint or view doing what ``config`` says, noting its hooks in ``trace.calls``."""

    async def authenticate(ws: WebSocket) -> Any:
        if config.authenticate == "refuse":
            raise AuthenticationFailed(401, "no")
        if config.authenticate == "raise":
            raise RuntimeError("authenticate failed unexpectedly")
        return "user"

    async def connect(ws: WebSocket) -> None:
        action = config.on_connect
        if action == "raise":
            raise RuntimeError("on_connect failed")
        if action == "refuse":
            await ws.close()
            return
        if action != "default":
            await ws.accept()
        if action == "background":
            ws.task_group.start_soon(anyio.sleep_forever)
        elif action == "ticker":

            async def tick() -> None:
                while True:
                    await ws.send_text("tick")
                    await anyio.sleep(0.001)

            ws.task_group.start_soon(tick)
        elif action == "send":
            await ws.send_text("welcome")

    async def handle(ws: WebSocket, message: Any) -> None:
        if message in ("raise", b"raise"):
            raise RuntimeError("on_receive failed")
        if message in ("close", b"close"):
            await ws.close()
        else:
            await ws.send(message)

    options: dict[str, Any] = {
        "value_type": config.value_type,
        "max_message_size": config.max_message_size,
        "max_message_rate": config.max_message_rate,
        "idle_timeout": config.idle_timeout,
    }
    if config.kind == "endpoint":

        class Endpoint(WebSocketEndpoint):
            async def authenticate(self, ws: WebSocket) -> Any:
                return None if config.authenticate == "none" else await authenticate(ws)

            async def on_connect(self, ws: WebSocket) -> None:
                trace.calls.append("on_connect")
                await connect(ws)

            async def on_receive(self, ws: WebSocket, message: Any) -> None:
                await handle(ws, message)

            async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
                trace.calls.append("on_disconnect")

        return Endpoint, options

    async def view(ws: WebSocket) -> None:
        trace.calls.append("on_connect")
        try:
            if config.on_connect != "default":
                await connect(ws)
            async with ws:
                async for message in ws:
                    await handle(ws, message)
        finally:
            trace.calls.append("on_disconnect")

    if config.authenticate != "none":
        options["authenticate"] = authenticate
    return view, options


class Server:
    """The server's side of one connection, replaying exactly the given client events.

    Once they run out the client has gone (1006); after the app closes, every
    receive gets the disconnect that answers it, as servers do.
    """

    def __init__(self, client_events: list[Message], send_fails_after_disconnect: bool) -> None:
        self.inbox = list(client_events)
        self.sent: list[Message] = []
        self.client_codes = {e.get("code") for e in client_events if e["type"] == "websocket.disconnect"}
        self.send_fails = send_fails_after_disconnect
        self.client_gone = False
        self.closed_by_app: int | None = None

    async def receive(self) -> Message:
        while self.inbox and self.inbox[0] is PAUSE and self.closed_by_app is None:
            # Sleep before taking the event: a receive cancelled here loses nothing.
            await anyio.sleep(0.03)
            self.inbox.pop(0)
        await anyio.lowlevel.checkpoint()
        if self.closed_by_app is not None:
            return {"type": "websocket.disconnect", "code": self.closed_by_app}
        message = self.inbox.pop(0) if self.inbox else {"type": "websocket.disconnect", "code": 1006}
        if message["type"] == "websocket.disconnect":
            self.client_gone = True
        return message

    async def send(self, message: Message) -> None:
        await anyio.lowlevel.checkpoint()
        if self.client_gone and self.send_fails:
            raise OSError("the client has gone")
        self.sent.append(message)
        if message["type"] == "websocket.close":
            self.closed_by_app = message.get("code", 1000)


DOCUMENTED_CODES = {1000, 1001, 1003, 1007, 1008, 1009, 1011}


def check_protocol(sent: list[Message], allowed_codes: set[Any]) -> None:
    """What the app sent follows the ASGI WebSocket protocol, with documented codes only."""
    state = "connecting"
    for message in sent:
        kind = message["type"]
        if state == "connecting":
            assert kind in ("websocket.accept", "websocket.close", "websocket.http.response.start"), sent
            if kind == "websocket.http.response.start":
                assert message["status"] in (401, 403, 500), sent
                state = "responding"
            else:
                state = "connected" if kind == "websocket.accept" else "closed"
        elif state == "connected":
            assert kind in ("websocket.send", "websocket.close"), sent
            if kind == "websocket.close":
                state = "closed"
        elif state == "responding":
            assert kind == "websocket.http.response.body", sent
            if not message.get("more_body", False):
                state = "done"
        else:
            raise AssertionError(f"{kind!r} sent after the connection ended: {sent}")
        if kind == "websocket.close":
            assert message.get("code", 1000) in allowed_codes, sent


@settings(PROPERTY, max_examples=250)
@given(configs, first_events, st.lists(events, max_size=12))
async def test_any_sequence_of_events_ends_cleanly(
    anyio_backend: str, config: Config, first: Message, rest: list[Message]
) -> None:
    trace = Trace()
    handler, options = handler_for(config, trace)
    api = API()
    api.add_websocket("/", handler, **options)
    server = Server([first, *rest], config.send_fails_after_disconnect)
    scope = {
        "type": "websocket",
        "path": "/",
        "headers": [(b"host", b"testserver")],
        "extensions": {"websocket.http.response": {}} if config.http_response else {},
    }
    tasks_before = len(anyio.get_running_tasks())

    with anyio.fail_after(5):  # never hangs
        await api(scope, server.receive, server.send)

    assert len(anyio.get_running_tasks()) == tasks_before, "a task outlived its connection"
    assert api.connection_count == 0
    # on_disconnect (or the view's end) exactly once for every connection whose on_connect ran.
    assert trace.calls in ([], ["on_connect", "on_disconnect"])
    if trace.calls:
        assert first["type"] == "websocket.connect"
        assert config.authenticate in ("none", "user")
    check_protocol(server.sent, DOCUMENTED_CODES | server.client_codes)
    # What the examples covered: see pytest --hypothesis-show-statistics.
    closes = [m.get("code", 1000) for m in server.sent if m["type"] == "websocket.close"]
    refusals = [m["status"] for m in server.sent if m["type"] == "websocket.http.response.start"]
    event(
        f"app closed with {closes[0]}"
        if closes
        else f"refused with {refusals[0]}"
        if refusals
        else "client left"
    )
    if first["type"] == "websocket.connect" and not server.client_gone:
        # A connection still open from the client's side was answered: refused, or accepted and closed.
        assert server.sent, "the app returned without answering the handshake"
        assert server.sent[-1]["type"] in ("websocket.close", "websocket.http.response.body")


@PROPERTY
@given(st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=30))
async def test_within_its_burst_a_client_is_only_ever_closed_for_size(
    anyio_backend: str, sizes: list[int]
) -> None:
    # A burst of `rate` messages always passes the rate limit; the size limit still applies to each.
    api = API()

    async def echo(ws: WebSocket) -> None:
        async with ws:
            async for message in ws:
                await ws.send(message)

    api.add_websocket("/", echo, max_message_rate=len(sizes), max_message_size=5)
    frames = [{"type": "websocket.receive", "text": "x" * size} for size in sizes]
    server = Server([{"type": "websocket.connect"}, *frames], send_fails_after_disconnect=False)
    with anyio.fail_after(5):
        await api({"type": "websocket", "path": "/", "headers": []}, server.receive, server.send)
    first_big = next((n for n, size in enumerate(sizes) if size > 5), len(sizes))
    echoes = [m["text"] for m in server.sent if m["type"] == "websocket.send"]
    assert echoes == ["x" * size for size in sizes[:first_big]]
    closes = [m["code"] for m in server.sent if m["type"] == "websocket.close"]
    assert closes == ([1009] if first_big < len(sizes) else [])


# -- what the dispatcher property found, made deterministic ----------------------------------------------


class SlowToClose(Server):
    """A server that takes a moment to send a close frame, as one with a full socket buffer does."""

    def __init__(self, client_events: list[Message]) -> None:
        super().__init__(client_events, send_fails_after_disconnect=False)
        self.closing = anyio.Event()

    async def send(self, message: Message) -> None:
        if message["type"] == "websocket.close":
            self.closing.set()
            await anyio.sleep(0.05)
        await super().send(message)


async def serve_binary_frame_to_a_racing_endpoint() -> Server:
    """A text endpoint gets a binary frame; its background task sends while the close is on its way."""
    server = SlowToClose([{"type": "websocket.connect"}, {"type": "websocket.receive", "bytes": b"hi"}])

    class Racing(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()

            async def send_once_closing() -> None:
                await server.closing.wait()
                await ws.send("too late")

            ws.task_group.start_soon(send_once_closing)

    api = API()
    api.add_websocket("/", Racing)
    with anyio.fail_after(5):
        await api({"type": "websocket", "path": "/", "headers": []}, server.receive, server.send)
    return server


async def test_a_close_in_progress_is_not_lost_when_a_background_task_fails() -> None:
    # The binary frame makes the framework close with 1003; while the server takes the close
    # frame, the background task's send fails and cancels the connection's task group. The
    # close must still reach the server, or the client never learns why (and how) it ended.
    server = await serve_binary_frame_to_a_racing_endpoint()
    assert [m["type"] for m in server.sent] == ["websocket.accept", "websocket.close"]
    assert server.sent[-1]["code"] == 1003


async def test_a_background_send_after_the_framework_closed_is_not_an_application_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The task could not know the framework had just closed the connection: like receive(),
    # its send should end it quietly (WebSocketDisconnect), not log an error with a traceback.
    await serve_binary_frame_to_a_racing_endpoint()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
