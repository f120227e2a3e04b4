"""Groups and publish with the memory backend, in process, on asyncio and trio.

Most tests use `make_api`: connections at ``/<codec>/{group}`` join ``group``,
answer ``{"groups": [...]}`` (always as JSON, whatever their send codec) once
they have, and take JSON commands (``{"join": g}``, ``{"leave": g}``,
``{"publish": g, "message": m, "exclude": bool}``, ``{"fail": true}``).
Group messages reach each of them encoded with its own send codec.

Slow consumers. What makes a WebSocket slow is its server's ``send``: a client
that stops reading lets its TCP window close, the server's socket buffer fills,
and ``await send(event)`` stops returning (uvicorn waits for its transport to
drain, hypercorn for ``send_all``). The in-process client queues whatever the
app sends without limit, so it is never slow by itself; the slow-consumer tests
make a connection slow where it really is, with `Stall`, an ASGI middleware
whose ``send`` blocks like a full socket for the connections that ask for it.
The real thing, a client that never reads behind a real server, is in
``tests/integration/test_groups_servers.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import httpx
import pytest
import ujson

from wsendpoints import API, ConnectionState, WebSocket, WebSocketDisconnect, WebSocketEndpoint
from wsendpoints.broadcast import OVERFLOW_POLICIES, Overflow
from wsendpoints.broadcast.base import Deliver
from wsendpoints.broadcast.memory import MemoryBackend
from wsendpoints.codecs import Codec, Frame
from wsendpoints.exceptions import BroadcastError, ConfigurationError, WebSocketStateError
from wsendpoints.testing import ClientWebSocket, connect, lifespan
from wsendpoints.types import Message, Receive, Scope, Send

TIMEOUT = 5.0
QUEUE = 10


class Listener(WebSocketEndpoint):
    """Joins the group its path names, and says so with ``{"groups": [...]}``."""

    value_type: ClassVar[str | Codec | None] = "json"

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.join(ws.path_params["group"])
        await ws.send_json({"groups": sorted(ws.groups)})


def make_api(
    send_codecs: dict[str, Codec] | None = None, backend: MemoryBackend | None = None, **options: Any
) -> API:
    """An API whose connections join groups, publish and leave on command (see the module docstring).

    ``send_codecs`` adds a route ``/<name>/{group}`` for each name, sending with that codec.
    """
    api = API() if backend is None else API(broadcast=backend)

    class Member(Listener):
        value_type = None  # each route names its send codec
        receive_type = "json"

        async def on_receive(self, ws: WebSocket, command: dict[str, Any]) -> None:
            if "join" in command:
                await ws.join(command["join"])
                await ws.send_json({"groups": sorted(ws.groups)})
            elif "leave" in command:
                await ws.leave(command["leave"])
                await ws.send_json({"groups": sorted(ws.groups)})
            elif "publish" in command:
                exclude = ws if command.get("exclude") else None
                await api.publish(command["publish"], command["message"], exclude=exclude)
            elif "fail" in command:
                raise RuntimeError("the handler failed")

    api.add_websocket("/json/{group}", Member, send_type="json", **options)
    api.add_websocket("/msgpack/{group}", Member, send_type="msgpack", **options)
    api.add_websocket("/text/{group}", Member, send_type="text", **options)
    for name, codec in (send_codecs or {}).items():
        api.add_websocket(f"/{name}/{{group}}", Member, send_type=codec, **options)

    @api.websocket_route("/view/{group}", value_type="json", **options)
    async def view(ws: WebSocket, group: str) -> None:
        async with ws:
            await ws.join(group)
            await ws.send_json({"groups": sorted(ws.groups)})
            async for _ in ws:
                pass

    return api


async def joined(ws: ClientWebSocket) -> list[str]:
    """Wait for the connection's ``{"groups": [...]}`` answer."""
    answer = await ws.receive_json()
    assert isinstance(answer, dict)
    assert list(answer) == ["groups"], answer
    return answer["groups"]  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def members(app: Any, *paths: str, timeout: float = TIMEOUT) -> AsyncIterator[list[ClientWebSocket]]:
    """Connect to each of ``paths`` and wait until each connection has joined its group.

    ``timeout`` bounds each wait on those connections.
    """
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for path in paths:
            client = await stack.enter_async_context(connect(app, path, timeout=timeout))
            await joined(client)
            clients.append(client)
        yield clients


async def read_until_closed(ws: ClientWebSocket) -> tuple[list[Any], int]:
    """Every message until the application closes the connection, and the code it closed with."""
    received = []
    for _ in range(1000):
        try:
            received.append(await ws.receive_json())
        except WebSocketDisconnect as closed:
            return received, closed.code
    raise AssertionError("the connection was never closed")


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsendpoints" and r.levelno == level]


# -- join, publish, leave -------------------------------------------------------------------


async def test_publish_reaches_every_member_of_the_group_and_nobody_else() -> None:
    api = make_api()
    async with members(api, "/json/a", "/json/a", "/view/a", "/json/b") as (*in_a, in_b):
        assert api.broadcast.members("a") == 3
        assert api.broadcast.members("b") == 1

        await api.publish("a", {"to": "a"})
        await api.publish("b", {"to": "b"})

        for ws in in_a:
            assert await ws.receive_json() == {"to": "a"}
        # What was published to "a" never reached b's member: its next message is b's.
        assert await in_b.receive_json() == {"to": "b"}
        await api.publish("a", "again")
        for ws in in_a:
            assert await ws.receive_json() == "again"


async def test_messages_arrive_in_the_order_they_were_published() -> None:
    api = make_api()
    async with members(api, "/json/a", "/view/a") as clients:
        for n in range(QUEUE * 3):
            await api.publish("a", n)
            # Read as they come: the queue of each connection is bounded (100 by default).
            for ws in clients:
                assert await ws.receive_json() == n


async def test_join_and_leave_on_command_and_ws_groups() -> None:
    api = make_api()
    async with members(api, "/json/a") as [ws]:
        await ws.send_json({"join": "b"})
        assert await joined(ws) == ["a", "b"]
        await ws.send_json({"join": "b"})  # joining twice changes nothing
        assert await joined(ws) == ["a", "b"]
        assert api.broadcast.members("b") == 1

        await ws.send_json({"leave": "a"})
        assert await joined(ws) == ["b"]
        await ws.send_json({"leave": "never-joined"})  # leaving a group one is not in does nothing
        assert await joined(ws) == ["b"]
        assert api.broadcast.members("a") == 0

        await api.publish("a", "to a")
        await api.publish("b", "to b")
        assert await ws.receive_json() == "to b"


async def test_each_member_gets_the_message_in_its_own_send_codec() -> None:
    api = make_api()
    async with members(api, "/json/room", "/msgpack/room", "/view/room") as [as_json, as_msgpack, view]:
        message = {"text": "héllo", "numbers": [1, 2.5, None, True], "nested": {"ok": False}}
        await api.publish("room", message)
        assert await as_json.receive_json() == message
        assert await view.receive_json() == message
        # receive_msgpack reads a binary frame: a text frame would fail it.
        assert await as_msgpack.receive_msgpack() == message


async def test_a_member_whose_codec_cannot_send_the_message_gets_nothing_and_it_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = make_api()
    paths = ("/text/room", "/text/room", "/json/room", "/msgpack/room")
    async with members(api, *paths) as [text, other_text, as_json, as_msgpack]:
        await api.publish("room", {"a": "dict"})
        await api.publish("room", "a string")

        # The text members skip the dict and get the string; the others get both.
        assert await text.receive_text() == "a string"
        assert await other_text.receive_text() == "a string"
        assert await as_json.receive_json() == {"a": "dict"}
        assert await as_json.receive_json() == "a string"
        assert await as_msgpack.receive_msgpack() == {"a": "dict"}
        assert await as_msgpack.receive_msgpack() == "a string"

    # Once per publish and codec, however many members use that codec.
    [error] = records(caplog, logging.ERROR)
    assert "TextCodec" in error.getMessage()
    assert "dict" in error.getMessage()


class CountingCodec:
    """JSON in text frames, counting its encodes."""

    frame: Frame = "text"

    def __init__(self) -> None:
        self.encodes = 0

    def decode(self, data: str) -> Any:
        return ujson.loads(data)

    def encode(self, value: Any) -> str:
        self.encodes += 1
        return ujson.dumps(value)


async def test_a_message_is_encoded_once_per_codec_not_once_per_member() -> None:
    codec = CountingCodec()
    api = make_api({"counted": codec, "also-counted": codec})

    @api.websocket_route("/counted-view/{group}", value_type=codec)
    async def view(ws: WebSocket, group: str) -> None:
        async with ws:
            await ws.join(group)
            await ws.send_json({"groups": [group]})
            async for _ in ws:
                pass

    paths = [
        *["/counted/room", "/also-counted/room", "/counted-view/room"] * 4,
        "/json/room",
        "/msgpack/room",
    ]
    async with members(api, *paths) as clients:
        for n in range(3):
            await api.publish("room", {"n": n})
            for ws in clients[:-1]:
                assert await ws.receive_json() == {"n": n}
            assert await clients[-1].receive_msgpack() == {"n": n}
        assert codec.encodes == 3


@dataclasses.dataclass
class DataclassCodec:
    """A codec written as a dataclass, with a setting: equal by value, so unhashable."""

    indent: int = 0
    frame: Frame = "text"

    def decode(self, data: str) -> Any:
        return ujson.loads(data)

    def encode(self, value: Any) -> str:
        return ujson.dumps(value, indent=self.indent)


async def test_a_codec_that_is_not_hashable_can_send_group_messages() -> None:
    api = API()

    @api.websocket_route("/room", value_type=DataclassCodec())
    async def view(ws: WebSocket) -> None:
        async with ws:
            await ws.join("room")
            await ws.send_json({"groups": ["room"]})
            async for _ in ws:
                pass

    async with members(api, "/room", timeout=2) as [ws]:
        await api.publish("room", {"n": 1})
        assert await ws.receive_json() == {"n": 1}


class Markup(str):
    pass


class MarkupCodec:
    """A text codec whose encode returns a str subclass, as an HTML-escaping one might."""

    frame: Frame = "text"

    def decode(self, data: str) -> str:
        return data

    def encode(self, value: Any) -> str:
        return Markup(value)


async def test_a_codec_that_encodes_to_a_str_subclass_sends_group_messages_as_text() -> None:
    api = make_api({"markup": MarkupCodec()})
    async with members(api, "/markup/room") as [ws]:
        await api.publish("room", "<b>hi</b>")
        # receive_text fails on a binary frame.
        assert await ws.receive_text() == "<b>hi</b>"


async def test_exclude_leaves_the_sender_out() -> None:
    api = make_api()
    async with members(api, "/json/room", "/json/room", "/msgpack/room") as [sender, other, as_msgpack]:
        await sender.send_json({"publish": "room", "message": "not for me", "exclude": True})
        assert await other.receive_json() == "not for me"
        assert await as_msgpack.receive_msgpack() == "not for me"

        await sender.send_json({"publish": "room", "message": "for all"})
        # The sender's first group message is the one it was not excluded from.
        for ws in (sender, other):
            assert await ws.receive_json() == "for all"


async def test_a_subscription_is_never_excluded() -> None:
    api = make_api()
    async with (
        members(api, "/json/room") as [sender],
        api.broadcast.subscribe("room") as sub,
    ):
        await sender.send_json({"publish": "room", "message": "hi", "exclude": True})
        with anyio.fail_after(TIMEOUT):
            assert await sub.__anext__() == "hi"


# -- leaving when the connection ends ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/json/room", "/view/room"])
async def test_a_connection_that_ends_leaves_all_its_groups(path: str) -> None:
    api = make_api()
    async with connect(api, path) as ws:
        await joined(ws)
        if path.startswith("/json"):
            await ws.send_json({"join": "other"})
            await joined(ws)
        assert api.broadcast.members("room") == 1
    # Leaving the block waited for the application to return.
    assert api.broadcast.members("room") == 0
    assert api.broadcast.members("other") == 0


async def test_a_connection_that_fails_leaves_its_groups() -> None:
    api = make_api()
    async with members(api, "/json/room", "/json/room") as [failing, staying]:
        await failing.send_json({"fail": True})
        with pytest.raises(WebSocketDisconnect) as closed:
            await failing.receive_json()
        assert closed.value.code == 1011
        await failing.close()
        assert api.broadcast.members("room") == 1
        await api.publish("room", "still here")
        assert await staying.receive_json() == "still here"


async def test_a_connection_closed_by_the_server_on_a_bad_message_leaves_its_groups() -> None:
    api = make_api()
    async with members(api, "/json/room") as [ws]:
        await ws.send_text("{not json")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json()
        assert closed.value.code == 1007
        await ws.close()
        assert api.broadcast.members("room") == 0


async def test_joining_in_on_disconnect_does_not_outlive_the_connection() -> None:
    """The connection has left its groups when on_disconnect runs; a join there must not stick."""
    api = API()

    @api.websocket_route("/late")
    class Late(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            await ws.join("during")
            await ws.send("in")

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            with contextlib.suppress(WebSocketStateError):  # refusing is fine; sticking is not
                await ws.join("after")

    async with connect(api, "/late") as ws:
        assert await ws.receive_text() == "in"
        assert api.broadcast.members("during") == 1
    assert api.broadcast.members("during") == 0
    assert api.broadcast.members("after") == 0


async def test_a_first_join_after_the_connection_ended_is_refused() -> None:
    """As a later one is: nothing would ever leave the group for a connection that has ended."""
    api = API()
    refused: list[str] = []

    @api.websocket_route("/never-joined")
    class NeverJoined(WebSocketEndpoint):
        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            try:
                await ws.join("after")
            except WebSocketStateError as exc:
                refused.append(str(exc))

    async with connect(api, "/never-joined"):
        pass
    assert api.broadcast.members("after") == 0
    assert refused == ["cannot join a group: the connection has ended"]
    await api.publish("after", "nobody gets it")  # and no connection that ended queues it


@pytest.mark.parametrize("path", ["/json/room", "/view/room"])
async def test_a_connection_that_was_in_a_group_is_freed_without_the_garbage_collector(
    path: str, websockets_alive: Callable[[], int]
) -> None:
    # As any other connection (tests/test_websockets.py): a server whose members come and
    # go all day must not keep each one, with its scope and frames, until a full collection.
    api = make_api()
    before = websockets_alive()
    for _ in range(3):
        async with connect(api, path) as ws:
            await joined(ws)
            await api.publish("room", "hi")  # its drain task sent one and waits for the next
            assert await ws.receive_json() == "hi"
    assert api.broadcast.members("room") == 0
    assert websockets_alive() == before


class SlowFirstSubscribe(MemoryBackend):
    """A broker whose first SUBSCRIBE is slow: it waits until `answer` is set; later ones are quick."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.answer: anyio.Event | None = None

    async def subscribe(self, channel: str) -> None:
        self.calls += 1
        if self.calls == 1:
            self.answer = anyio.Event()
            await self.answer.wait()


def watch_api() -> tuple[API, SlowFirstSubscribe]:
    """``/watch/{room}``: the docs' view that forwards a subscription's messages from a background task.

    That task is cancelled when the client leaves, even while its subscription is on its way to
    the broker, here a slow one.
    """
    backend = SlowFirstSubscribe()
    api = API(broadcast=backend)

    @api.websocket_route("/watch/{room}", value_type="json")
    async def watch(ws: WebSocket, room: str) -> None:
        async def forward() -> None:
            async with api.broadcast.subscribe(room) as messages:
                async for message in messages:
                    await ws.send({"seen": message})

        async with ws:
            ws.task_group.start_soon(forward)
            async for _ in ws:
                pass

    return api, backend


async def members_become(api: API, count: int) -> None:
    with anyio.move_on_after(TIMEOUT):
        while api.broadcast.members("room") != count:  # noqa: ASYNC110 (the app's tasks get there)
            await anyio.sleep(0.01)
        return
    pytest.fail(f"the room has {api.broadcast.members('room')} members, not {count}")


async def test_a_first_joiner_cancelled_while_subscribing_does_not_fail_those_joining_with_it() -> None:
    # The others who joined meanwhile must still join, not be closed with 1011.
    api, backend = watch_api()
    async with connect(api, "/watch/room") as leaving:
        await members_become(api, 1)  # its subscription is on its way to the broker
        async with connect(api, "/watch/room") as staying:
            await members_become(api, 2)  # waiting for that subscription to hold
            await leaving.close()
            # The first has gone mid-subscription; the other has subscribed in its place.
            await members_become(api, 1)
            assert backend.calls == 2
            await api.publish("room", "still watched")
            assert await staying.receive_json() == {"seen": "still watched"}


async def test_a_joiner_cancelled_while_waiting_for_the_subscription_leaves_the_group() -> None:
    api, backend = watch_api()
    async with connect(api, "/watch/room") as staying:
        await members_become(api, 1)  # its subscription is on its way to the broker
        async with connect(api, "/watch/room") as leaving:
            await members_become(api, 2)  # waiting for that subscription to hold
            await leaving.close()
        # Gone before it was a member: it is in the group no more.
        await members_become(api, 1)
        assert backend.answer is not None
        backend.answer.set()
        await api.publish("room", "still watched")
        assert await staying.receive_json() == {"seen": "still watched"}
        assert api.broadcast.members("room") == 1
    await members_become(api, 0)


async def test_a_join_that_timed_out_is_not_in_ws_groups_and_can_be_tried_again() -> None:
    api = API(broadcast=SlowFirstSubscribe())

    @api.websocket_route("/patient")
    async def patient(ws: WebSocket) -> None:
        async with ws:
            with anyio.move_on_after(0.05):
                await ws.join("room")
            await ws.send(",".join(ws.groups) or "in no group")
            await ws.join("room")
            await ws.send(",".join(ws.groups))
            async for _ in ws:
                pass

    async with connect(api, "/patient") as ws:
        assert await ws.receive_text() == "in no group"
        assert await ws.receive_text() == "room"
        await api.publish("room", "arrives")
        assert await ws.receive_text() == "arrives"


# -- publishing from outside any connection ------------------------------------------------


async def test_publish_from_a_startup_hook_and_a_background_task() -> None:
    api = make_api()
    started = []

    @api.on("startup")
    async def startup() -> None:
        # Nobody has joined yet: publishing to an empty group does nothing.
        await api.publish("ticks", "before anyone")
        started.append(True)

    async with lifespan(api), members(api, "/json/ticks", "/msgpack/ticks") as [a, b]:
        assert started

        async def ticker() -> None:
            for n in range(3):
                await api.publish("ticks", {"tick": n})
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
        for n in range(3):
            assert await a.receive_json() == {"tick": n}
            assert await b.receive_msgpack() == {"tick": n}


async def test_publish_from_an_http_handler_mounted_on_the_api() -> None:
    api = make_api()

    async def publisher(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        await api.publish("news", ujson.loads(body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    api.mount("/publish", publisher)
    async with (
        members(api, "/json/news", "/text/news") as [reader, text_reader],
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://testserver") as http,
    ):
        response = await http.post("/publish", json={"headline": "groups work"})
        assert response.status_code == 204
        response = await http.post("/publish", json="plain text")
        assert await reader.receive_json() == {"headline": "groups work"}
        assert await reader.receive_json() == "plain text"
        assert await text_reader.receive_text() == "plain text"


@pytest.mark.parametrize(
    "message",
    # A tuple packs as a list, and a list cannot be a dict key at the other end: refused here too.
    [{1, 2}, object(), 2**70, {"nested": {"set": {1}}}, {(1, 2): "cell"}, {"nested": {(0,): 1}}],
)
async def test_an_unserialisable_message_fails_at_publish_and_nobody_receives_it(message: object) -> None:
    api = make_api()
    async with members(api, "/json/room", "/msgpack/room") as [a, b]:
        with pytest.raises(BroadcastError, match="cannot publish to 'room'"):
            await api.publish("room", message)
        await api.publish("room", "fine")
        assert await a.receive_json() == "fine"
        assert await b.receive_msgpack() == "fine"


async def test_messages_cross_as_msgpack_types() -> None:
    """What a member receives is what msgpack carries: tuples become lists, bytes stay bytes."""
    api = make_api()
    async with api.broadcast.subscribe("room") as sub, members(api, "/msgpack/room") as [ws]:
        await api.publish("room", {"tuple": (1, 2), "bytes": b"\x00\xff"})
        assert await ws.receive_msgpack() == {"tuple": [1, 2], "bytes": b"\x00\xff"}
        with anyio.fail_after(TIMEOUT):
            assert await sub.__anext__() == {"tuple": [1, 2], "bytes": b"\x00\xff"}


async def test_a_message_with_integer_keys_is_delivered() -> None:
    """Maps keyed by numbers (scores by user id, say) are JSON-able and msgpack-able: they must arrive."""
    api = make_api()
    async with api.broadcast.subscribe("room") as sub, members(api, "/json/room", timeout=2) as [ws]:
        await api.publish("room", {1: "one", 2: "two"})
        assert await ws.receive_json() == {"1": "one", "2": "two"}
        with anyio.fail_after(TIMEOUT):
            assert await sub.__anext__() == {1: "one", 2: "two"}


class BrokenCodec(CountingCodec):
    """A codec with a bug: it raises something other than TypeError for dicts."""

    def encode(self, value: Any) -> str:
        if isinstance(value, dict):
            raise KeyError("a bug in the codec")
        return super().encode(value)


async def test_a_broken_codec_of_one_member_neither_fails_the_publisher_nor_the_other_members(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = make_api({"broken": BrokenCodec()})
    async with members(api, "/json/room", "/broken/room", "/json/room", timeout=2) as [sender, broken, other]:
        await sender.send_json({"publish": "room", "message": {"hello": "all"}})
        assert await other.receive_json() == {"hello": "all"}
        assert await sender.receive_json() == {"hello": "all"}
        await api.publish("room", "after")
        assert await broken.receive_json() == "after"
        assert await sender.receive_json() == "after"
    [error] = records(caplog, logging.ERROR)
    assert "BrokenCodec" in error.getMessage()


class NoneForDicts(CountingCodec):
    """A codec with a bug: its encode returns None for dicts."""

    def encode(self, value: Any) -> Any:
        return None if isinstance(value, dict) else super().encode(value)


async def test_a_codec_that_encodes_to_neither_str_nor_bytes_sends_that_member_nothing_and_it_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = make_api({"none": NoneForDicts()})
    async with members(api, "/none/room", "/json/room") as [broken, other]:
        await api.publish("room", {"hello": "all"})
        await api.publish("room", "after")
        assert await other.receive_json() == {"hello": "all"}
        assert await other.receive_json() == "after"
        assert await broken.receive_json() == "after"
    [error] = records(caplog, logging.ERROR)
    assert "NoneForDicts.encode returned NoneType, not str or bytes" in error.getMessage()


# -- the low-level subscription -----------------------------------------------------------------


async def test_subscribe_iterates_over_what_is_published() -> None:
    api = API()
    assert api.broadcast.members("chan") == 0
    received = []
    async with api.broadcast.subscribe("chan") as sub:
        assert api.broadcast.members("chan") == 1
        for n in range(3):
            await api.publish("chan", {"n": n})
        await api.publish("elsewhere", "not for this subscription")
        with anyio.fail_after(TIMEOUT):
            async for message in sub:
                received.append(message)
                if len(received) == 3:
                    break
    assert received == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert api.broadcast.members("chan") == 0


async def test_a_subscription_drops_the_oldest_past_its_queue() -> None:
    api = API()
    async with api.broadcast.subscribe("chan", max_queue=3) as sub:
        for n in range(5):
            await api.publish("chan", n)
        assert sub.dropped == 2
        await api.publish("chan", "then")  # one more: the queue is full again, the oldest goes
        assert sub.dropped == 3
        with anyio.fail_after(TIMEOUT):
            assert [await sub.__anext__() for _ in range(3)] == [3, 4, "then"]


async def test_a_subscription_needs_a_positive_queue() -> None:
    api = API()
    with pytest.raises(ConfigurationError):
        api.broadcast.subscribe("chan", max_queue=0)


class RoundTrips(MemoryBackend):
    """The memory backend with a broker's round trip to subscribe and unsubscribe, which it records."""

    def __init__(self) -> None:
        super().__init__()
        self.channels: set[str] = set()

    async def subscribe(self, channel: str) -> None:
        await anyio.lowlevel.checkpoint()
        self.channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        await anyio.lowlevel.checkpoint()
        self.channels.discard(channel)


async def test_a_cancelled_subscription_unsubscribes_the_backend() -> None:
    # How a subscription usually ends: the task reading it is cancelled. Unsubscribing
    # is a round trip to the broker, which that cancellation must not cut short, or
    # the broker goes on sending the channel to this process for good.
    backend = RoundTrips()
    api = API(broadcast=backend)
    with anyio.CancelScope() as reading:
        async with api.broadcast.subscribe("ticker") as subscription:
            assert backend.channels == {"ticker"}
            reading.cancel()
            await subscription.__anext__()
    assert reading.cancelled_caught
    assert api.broadcast.members("ticker") == 0
    assert backend.channels == set()


class DeliverAtOnce(MemoryBackend):
    """The memory backend without its yield after delivering: no receiver has run when publish returns."""

    def attach(self, deliver: Deliver) -> None:
        super().attach(deliver)
        self.deliver = deliver

    async def publish(self, channel: str, payload: bytes) -> None:
        self.deliver(channel, payload)


class Broker(MemoryBackend):
    """The memory backend with a broker's delay: publishes are delivered on `release`."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[str, bytes]] = []
        self.published = anyio.Event()

    async def publish(self, channel: str, payload: bytes) -> None:
        self.held.append((channel, payload))
        self.published.set()

    def release(self) -> None:
        assert self._deliver is not None
        for channel, payload in self.held:
            self._deliver(channel, payload)
        self.held.clear()
        self.published = anyio.Event()


async def test_a_publish_in_flight_excludes_its_sender_and_not_who_joined_after_it_left() -> None:
    # Through a broker, a publish arrives a little later: its sender may have left by
    # then, and a new connection joined the group. Each time, the new one gets it.
    broker = Broker()
    api = make_api(backend=broker)
    for n in range(20):
        async with members(api, "/json/room") as [sender]:
            await sender.send_json({"publish": "room", "message": n, "exclude": True})
            with anyio.fail_after(TIMEOUT):
                await broker.published.wait()
        async with members(api, "/json/room") as [newcomer]:
            broker.release()
            assert await newcomer.receive_json() == n


async def test_a_receive_cancelled_as_its_message_arrives_leaves_the_message_for_the_next() -> None:
    # A parked receiver gets a message with its wake-up. If a timeout cancels it
    # before it runs, the message must stay in the subscription, not vanish.
    api = API(broadcast=DeliverAtOnce())
    got: list[Any] = []
    async with api.broadcast.subscribe("chan") as sub:
        scope = anyio.CancelScope()

        async def receive_once() -> None:
            with scope:
                got.append(await sub.__anext__())

        async with anyio.create_task_group() as tg:
            tg.start_soon(receive_once)
            await anyio.wait_all_tasks_blocked()
            await api.publish("chan", "first")  # handed to the parked receiver...
            scope.cancel()  # ...which is cancelled before it has run
        await api.publish("chan", "second")
        with anyio.fail_after(TIMEOUT):
            while len(got) < 2:
                got.append(await sub.__anext__())
    assert got == ["first", "second"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_asyncio_cancel_as_the_message_arrives_leaves_the_message_for_the_next() -> None:
    # asyncio's own cancellation (Task.cancel, asyncio.timeout) does not wait for
    # a handed-over result to be taken, as anyio's cancel scopes do.
    api = API(broadcast=DeliverAtOnce())
    async with api.broadcast.subscribe("chan") as sub:
        receiving = asyncio.ensure_future(sub.__anext__())
        await anyio.wait_all_tasks_blocked()
        await api.publish("chan", "first")
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        await api.publish("chan", "second")
        with anyio.fail_after(TIMEOUT):
            assert [await sub.__anext__(), await sub.__anext__()] == ["first", "second"]


async def test_two_subscriptions_to_one_channel_each_get_every_message() -> None:
    api = API()
    async with api.broadcast.subscribe("chan") as first, api.broadcast.subscribe("chan") as second:
        assert api.broadcast.members("chan") == 2
        await api.publish("chan", "both")
        with anyio.fail_after(TIMEOUT):
            assert await first.__anext__() == "both"
            assert await second.__anext__() == "both"
        assert api.broadcast.members("chan") == 2
    assert api.broadcast.members("chan") == 0


# -- slow consumers ---------------------------------------------------------------------------


class Stall:
    """ASGI middleware: a full socket for the connections whose query string says ``slow``.

    Until `block` is called their events pass; after it, every event waits,
    in order, until `release`, as a server's ``send`` does while the client is
    not reading. ``waiting`` is set once one is waiting.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.waiting = anyio.Event()
        self._open = anyio.Event()
        self._open.set()
        self._lock = anyio.Lock()

    def block(self) -> None:
        self._open = anyio.Event()

    def release(self) -> None:
        self._open.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or b"slow" not in scope.get("query_string", b""):
            await self.app(scope, receive, send)
            return

        async def full_socket_send(event: Message) -> None:
            async with self._lock:  # one at a time, in order, like bytes into a socket
                if not self._open.is_set():
                    self.waiting.set()
                    await self._open.wait()
                await send(event)

        await self.app(scope, receive, full_socket_send)


class Refuse:
    """ASGI middleware: a server ``send`` that refuses group messages saying ``refuse`` for
    the connections whose query string says ``refuse``, with ``error``, as servers do
    for a message they cannot frame (UnicodeEncodeError) or a client that has gone (OSError)."""

    def __init__(self, app: Any, error: Exception) -> None:
        self.app = app
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or b"refuse" not in scope.get("query_string", b""):
            await self.app(scope, receive, send)
            return

        async def refusing_send(event: Message) -> None:
            if event["type"] == "websocket.send" and "refuse" in (event.get("text") or ""):
                raise self.error
            await send(event)

        await self.app(scope, receive, refusing_send)


async def test_a_group_message_the_server_cannot_frame_is_logged_and_the_next_ones_arrive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = API()
    api.add_websocket("/room/{group}", Listener)
    app = Refuse(api, UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    async with members(app, "/room/lobby?refuse", "/room/lobby") as [refused, other]:
        await api.publish("lobby", "refuse this")
        await api.publish("lobby", "then this")
        assert await refused.receive_json() == "then this"
        assert [await other.receive_json() for _ in range(2)] == ["refuse this", "then this"]
    errors = [r for r in records(caplog, logging.ERROR)]
    assert [r.getMessage() for r in errors] == ["the server refused a group message for /room/lobby"]
    assert errors[0].exc_info is not None, "with the server's traceback"


async def test_a_member_whose_client_has_gone_stops_getting_group_messages_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = API()
    seen: list[tuple[str, int | None]] = []
    heard = anyio.Event()

    class Watcher(Listener):
        group_queue_size = 2

        async def on_receive(self, ws: WebSocket, data: Any) -> None:
            seen.append((ws.connection_state.value, ws.close_code))
            heard.set()

    api.add_websocket("/room/{group}", Watcher)
    app = Refuse(api, OSError("connection reset by peer"))
    async with members(app, "/room/lobby?refuse", "/room/lobby") as [gone, other]:
        await api.publish("lobby", "refuse: the client has gone")
        for n in range(10):
            await api.publish("lobby", n)
        assert [await other.receive_json() for _ in range(11)] == ["refuse: the client has gone", *range(10)]
        await gone.send_json("are you there?")
        with anyio.fail_after(TIMEOUT):
            await heard.wait()
    # The app learns the client has gone (1006); nothing queues up for it, so no drops are reported.
    assert seen == [("disconnected", 1006)]
    assert records(caplog, logging.WARNING) == []
    assert records(caplog, logging.ERROR) == []


def limited_api(where: str, policy: Overflow) -> API:
    """An API whose ``/room/{group}`` connections queue at most QUEUE group messages, under ``policy``."""
    api = API()
    if where == "endpoint":
        # The class attributes: the endpoint's own defaults.
        limited = type("Limited", (Listener,), {"group_queue_size": QUEUE, "group_overflow": policy})
        api.add_websocket("/room/{group}", limited)
    elif where == "route":
        api.add_websocket("/room/{group}", Listener, group_queue_size=QUEUE, group_overflow=policy)
    else:

        @api.websocket_route(
            "/room/{group}", value_type="json", group_queue_size=QUEUE, group_overflow=policy
        )
        async def view(ws: WebSocket, group: str) -> None:
            async with ws:
                await ws.join(group)
                await ws.send_json({"groups": [group]})
                async for _ in ws:
                    pass

    return api


# What the slow member receives of 0..24, published while its send was blocked on 0.
EXPECTED = {
    "drop_oldest": [0, *range(25 - QUEUE, 25)],  # the newest QUEUE
    "drop_newest": [0, *range(1, 1 + QUEUE)],  # the first QUEUE
    "close": [0],  # then closed with 1008
}
WARNINGS = {
    "drop_oldest": f"dropping group messages for /room/lobby: its queue of {QUEUE} is full (drop_oldest)",
    "drop_newest": f"dropping group messages for /room/lobby: its queue of {QUEUE} is full (drop_newest)",
    "close": "closing /room/lobby with 1008: its queue of group messages is full",
}


@pytest.mark.parametrize("where", ["endpoint", "route", "view"])
@pytest.mark.parametrize("policy", OVERFLOW_POLICIES)
async def test_a_slow_member_gets_its_policy_and_never_delays_the_others(
    policy: Overflow, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    api = limited_api(where, policy)
    app = Stall(api)
    async with members(app, "/room/lobby?slow", "/room/lobby", "/room/lobby", "/room/lobby") as clients:
        slow, *fast = clients
        app.block()
        await api.publish("lobby", 0)
        with anyio.fail_after(TIMEOUT):
            await app.waiting.wait()  # the slow member's send is stuck on message 0

        for n in range(25):
            if n:
                await api.publish("lobby", n)
            # Every fast member has each message before the next is published, however stuck the slow one is.
            for ws in fast:
                assert await ws.receive_json() == n

        warnings = [r.getMessage() for r in records(caplog, logging.WARNING)]
        assert warnings == [WARNINGS[policy]], "one warning, on the first message that did not fit"

        app.release()
        received: list[Any] = []
        if policy == "close":
            received, code = await read_until_closed(slow)
            assert code == 1008
            assert slow.close_reason == "too slow to read its group messages"
        else:
            while len(received) < len(EXPECTED[policy]):
                received.append(await slow.receive_json())
            # Once it reads again it gets what is published.
            await api.publish("lobby", "caught up")
            assert await slow.receive_json() == "caught up"
        assert received == EXPECTED[policy]

    if policy != "close":
        missed = [r.getMessage() for r in records(caplog, logging.INFO) if "missed" in r.getMessage()]
        assert missed == ["/room/lobby missed 14 group message(s): it read too slowly"]
    # A policy at work is not an error.
    assert records(caplog, logging.ERROR) == []


async def test_a_handler_busy_when_its_member_is_closed_for_overflow_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The overflow close is the client's fault, as a bad message is: the handler's next send ends it."""
    api = API()
    working = anyio.Event()
    sockets: list[WebSocket] = []
    raised: list[BaseException] = []

    @api.websocket_route("/room/{group}", value_type="json", group_queue_size=QUEUE, group_overflow="close")
    async def view(ws: WebSocket, group: str) -> None:
        sockets.append(ws)
        async with ws:
            await ws.join(group)
            await ws.send_json({"groups": [group]})
            async for message in ws:
                await working.wait()  # busy with the message while its group messages pile up
                try:
                    await ws.send(f"done with {message}")
                except BaseException as exc:
                    raised.append(exc)
                    raise

    app = Stall(api)
    async with members(app, "/room/lobby?slow") as (slow,):
        await slow.send_json("work")
        app.block()
        for n in range(QUEUE + 2):
            await api.publish("lobby", n)
        with anyio.fail_after(TIMEOUT):
            await anyio.wait_all_tasks_blocked()  # the close is under way, stuck on the full socket
        assert sockets[0].connection_state is ConnectionState.CLOSED
        working.set()
        app.release()
        received, code = await read_until_closed(slow)

    assert code == 1008
    assert received == [0]
    assert [type(exc) for exc in raised] == [WebSocketDisconnect]
    assert isinstance(raised[0], WebSocketDisconnect)
    assert raised[0].code == 1008
    assert records(caplog, logging.ERROR) == []


async def test_the_default_queue_holds_100_and_drops_the_oldest(caplog: pytest.LogCaptureFixture) -> None:
    api = API()
    api.add_websocket("/room/{group}", Listener)
    app = Stall(api)
    async with members(app, "/room/lobby?slow") as [slow]:
        app.block()
        await api.publish("lobby", 0)
        with anyio.fail_after(TIMEOUT):
            await app.waiting.wait()  # its send is stuck on message 0
        for n in range(1, 151):
            await api.publish("lobby", n)
        app.release()
        received = [await slow.receive_json() for _ in range(101)]
    assert received == [0, *range(51, 151)]
    assert len(records(caplog, logging.WARNING)) == 1


# -- configuration refused at registration ----------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"group_queue_size": 0},
        {"group_queue_size": -1},
        {"group_queue_size": 1.5},
        {"group_queue_size": "10"},
        {"group_queue_size": True},  # an int to Python, but not a size
        {"group_overflow": "drop"},
        {"group_overflow": "DROP_OLDEST"},
        {"group_overflow": None},
    ],
)
def test_bad_queue_options_are_refused_at_registration(options: dict[str, Any]) -> None:
    api = API()
    with pytest.raises(ConfigurationError):
        api.add_websocket("/endpoint", Listener, **options)

    async def view(ws: WebSocket) -> None:
        pass

    with pytest.raises(ConfigurationError):
        api.add_websocket("/view", view, **options)
    with pytest.raises(ConfigurationError):
        type("Bad", (Listener,), options)
    assert api.routes == []


def test_an_unknown_broadcast_backend_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="nope://"):
        API(broadcast="nope://")
    with pytest.raises(ConfigurationError):
        API(broadcast="not a url")


# -- groups outside an API --------------------------------------------------------------


async def test_join_on_a_websocket_not_served_by_an_api_is_refused() -> None:
    errors: list[Exception] = []

    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send)
        await ws.accept()
        try:
            await ws.join("room")
        except WebSocketStateError as exc:
            errors.append(exc)
        await ws.leave("room")  # leaving what was never joined does nothing
        assert ws.groups == frozenset()
        await ws.close()

    async with connect(raw_app) as ws:
        with pytest.raises(WebSocketDisconnect):
            await ws.receive_text()
    [error] = errors
    assert "API" in str(error)


async def test_an_endpoint_served_without_an_api_cannot_join(caplog: pytest.LogCaptureFixture) -> None:
    # An endpoint class is an ASGI app by itself, but groups need the API's hub.
    class Lonely(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            await ws.join("room")

    async with connect(Lonely, "/") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert closed.value.code == 1011
    [error] = records(caplog, logging.ERROR)
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], WebSocketStateError)


async def test_joining_before_accept_then_accepting_works() -> None:
    """A member may join in on_connect before accepting; what is published meanwhile waits for the accept."""
    api = API()

    @api.websocket_route("/early")
    class Early(WebSocketEndpoint):
        value_type = "json"

        async def on_connect(self, ws: WebSocket) -> None:
            await ws.join("room")
            await api.publish("room", "published before accept")
            await anyio.sleep(0.01)  # a database lookup, say: the connection waits a moment before accept()
            await ws.accept()

    async with connect(api, "/early") as ws:
        assert await ws.receive_json() == "published before accept"
