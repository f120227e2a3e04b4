"""The ``redis://`` backend against a real redis-server, on asyncio and trio.

Two `API` objects sharing one Redis stand for two processes. A message that
must *not* arrive is checked the way a user would: a later message on another
group arrives first (Redis keeps the order of one publisher's messages).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import pytest

from wsendpoints import API, WebSocket, WebSocketEndpoint
from wsendpoints.broadcast.redis import RedisBackend
from wsendpoints.exceptions import (
    BroadcastError,
    ConfigurationError,
    LifespanFailed,
    ReceiveTimeout,
    WebSocketDisconnect,
)
from wsendpoints.testing import ClientWebSocket, connect, lifespan

from ..redis_server import RedisServer, free_port

WAIT = 5.0


async def eventually(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``check`` until it holds; fail after ``timeout`` seconds."""
    with anyio.move_on_after(timeout):
        while not check():  # noqa: ASYNC110 (what is checked is in another process, or the logs)
            await anyio.sleep(0.01)
        return
    pytest.fail(f"{what}: still not the case after {timeout} s")


def numsub(redis: RedisServer, channel: str) -> int:
    """How many connections (one per process) Redis delivers ``channel`` to."""
    _, count = redis.command("PUBSUB", "NUMSUB", channel)
    return int(count)


def room_api(url: str) -> API:
    """``/rooms/{room}`` (text) and ``/json/{room}``, ``/msgpack/{room}`` (views) join "room:<room>".

    Every connection is also in "everyone". A text client that sends "leave" leaves its room; anything
    else it sends is published to its room, without the sender.
    """
    api = API(broadcast=url)

    @api.websocket_route("/rooms/{room}")
    class Room(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            await ws.join(f"room:{ws.path_params['room']}")
            await ws.join("everyone")
            await ws.send("joined")

        async def on_receive(self, ws: WebSocket, message: str) -> None:
            room = f"room:{ws.path_params['room']}"
            if message == "leave":
                await ws.leave(room)
                await ws.send("left")
            else:
                await api.publish(room, message, exclude=ws)

    async def member(ws: WebSocket, room: str) -> None:
        async with ws:
            await ws.join(f"room:{room}")
            await ws.join("everyone")
            await ws.send("joined")
            async for _ in ws:
                pass

    api.websocket_route("/json/{room}", value_type="json")(member)
    api.websocket_route("/msgpack/{room}", value_type="msgpack")(member)
    return api


async def joined(client: ClientWebSocket) -> ClientWebSocket:
    """The "joined" every route sends first: as text, JSON or msgpack."""
    event = await client.receive_event()
    assert event.get("text") in ("joined", '"joined"') or event.get("bytes") == b"\xa6joined", event
    return client


# -- the backend on its own -------------------------------------------------------------


async def test_the_backend_carries_bytes_between_processes(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    received: dict[str, list[tuple[str, bytes]]] = {"one": [], "two": []}
    one, two = RedisBackend(redis.url), RedisBackend(redis.url)
    one.attach(lambda channel, payload: received["one"].append((channel, payload)))
    two.attach(lambda channel, payload: received["two"].append((channel, payload)))
    async with anyio.create_task_group() as task_group:
        await one.start(task_group)
        await two.start(task_group)
        try:
            await one.subscribe("news")
            await one.subscribe("control")
            await two.subscribe("news")
            assert numsub(redis, "news") == 2

            await two.publish("news", b"\x00\xffnot utf-8")
            await eventually(lambda: len(received["one"]) == len(received["two"]) == 1, "both received")
            assert received == {
                "one": [("news", b"\x00\xffnot utf-8")],
                "two": [("news", b"\x00\xffnot utf-8")],
            }

            await one.unsubscribe("news")
            assert numsub(redis, "news") == 1
            await two.publish("news", b"after")
            await two.publish("control", b"marker")
            await eventually(lambda: ("control", b"marker") in received["one"], "the marker arrived")
            assert ("news", b"after") not in received["one"]
            await eventually(lambda: ("news", b"after") in received["two"], "two still receives")
        finally:
            with anyio.CancelScope(shield=True):
                await one.stop()
                await two.stop()
        # Stopping unsubscribed and disconnected, quietly.
        assert numsub(redis, "news") == numsub(redis, "control") == 0
        assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
        task_group.cancel_scope.cancel()


async def test_a_bad_url_is_refused_at_once() -> None:
    with pytest.raises(ConfigurationError, match="redis://host:port/db"):
        API(broadcast="redis://127.0.0.1:notaport/0")


# -- through the API ----------------------------------------------------------------------


async def test_a_publish_reaches_every_member_in_every_process_with_its_codec(redis: RedisServer) -> None:
    one, two = room_api(redis.url), room_api(redis.url)
    async with (
        lifespan(one),
        lifespan(two),
        connect(one, "/rooms/1") as text,
        connect(two, "/json/1") as json,
        connect(two, "/msgpack/1") as msgpack,
        connect(one, "/rooms/2") as elsewhere,
    ):
        for client in (text, json, msgpack, elsewhere):
            await joined(client)

        await one.publish("room:1", {"hello": ["world", 1]})
        assert await json.receive_json() == {"hello": ["world", 1]}
        assert await msgpack.receive_msgpack() == {"hello": ["world", 1]}
        # The text codec cannot send a dict: that member is skipped (and it is logged), not crashed.
        await two.publish("room:1", "hi")
        assert await text.receive_text() == "hi"
        assert await json.receive_text() == '"hi"'
        assert await msgpack.receive_msgpack() == "hi"

        # Not in room:1: the next message it gets is the one to everyone.
        await one.publish("everyone", "all")
        assert await elsewhere.receive_text() == "all"


async def test_exclude_leaves_the_sender_out(redis: RedisServer) -> None:
    one, two = room_api(redis.url), room_api(redis.url)
    async with (
        lifespan(one),
        lifespan(two),
        connect(one, "/rooms/1") as sender,
        connect(two, "/rooms/1") as other,
    ):
        await joined(sender)
        await joined(other)
        await sender.send_text("from the sender")
        assert await other.receive_text() == "from the sender"
        await two.publish("everyone", "marker")
        assert await sender.receive_text() == "marker"


async def test_a_foreign_payload_on_a_group_channel_is_ignored_with_a_warning(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Anything else sharing the Redis may publish on a channel named like a group.
    api = room_api(redis.url)
    async with lifespan(api), connect(api, "/rooms/foreign") as member:
        await joined(member)
        redis.command("PUBLISH", "room:foreign", "not one of ours")
        await api.publish("room:foreign", "ours")
        assert await member.receive_text() == "ours"
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == ["ignored an undecodable broadcast payload on 'room:foreign'"]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_leave_stops_delivery_and_disconnecting_leaves_every_group(redis: RedisServer) -> None:
    one, two = room_api(redis.url), room_api(redis.url)
    async with lifespan(one), lifespan(two), connect(one, "/rooms/leaving") as stays:
        await joined(stays)
        async with connect(two, "/rooms/leaving") as leaves:
            await joined(leaves)
            assert numsub(redis, "room:leaving") == 2

            await leaves.send_text("leave")
            assert await leaves.receive_text() == "left"
            assert two.broadcast.members("room:leaving") == 0
            assert numsub(redis, "room:leaving") == 1
            await one.publish("room:leaving", "missed")
            await one.publish("everyone", "marker")
            assert await leaves.receive_text() == "marker"
            assert await stays.receive_text() == "missed"
            assert await stays.receive_text() == "marker"

        async with connect(two, "/json/leaving") as disconnects:
            await joined(disconnects)
            assert numsub(redis, "room:leaving") == 2
        # The connection has ended: its process left both groups, in Redis too.
        assert two.broadcast.members("room:leaving") == two.broadcast.members("everyone") == 0
        await eventually(lambda: numsub(redis, "room:leaving") == 1, "process two unsubscribed")
        assert numsub(redis, "everyone") == 1


async def test_a_low_level_subscription_gets_what_other_processes_publish(redis: RedisServer) -> None:
    one, two = API(broadcast=redis.url), API(broadcast=redis.url)
    async with lifespan(one), lifespan(two):
        async with one.broadcast.subscribe("ticker") as subscription:
            await two.publish("ticker", {"price": 1.5, "tags": ("a", "b")})
            with anyio.fail_after(WAIT):
                assert await subscription.__anext__() == {"price": 1.5, "tags": ["a", "b"]}
        await eventually(lambda: numsub(redis, "ticker") == 0, "the subscription ended in Redis")


async def test_a_cancelled_subscription_ends_in_redis_too(redis: RedisServer) -> None:
    # The way a subscription usually ends: the task reading it is cancelled (its connection
    # ended, the app shuts down). Unsubscribing is itself a round trip to Redis, which that
    # cancellation must not cut short: Redis would go on sending the channel for good.
    api = API(broadcast=redis.url)
    async with lifespan(api):
        with anyio.CancelScope() as reading:
            async with api.broadcast.subscribe("cancelled") as subscription:
                assert numsub(redis, "cancelled") == 1
                reading.cancel()
                await subscription.__anext__()
        assert reading.cancelled_caught
        assert api.broadcast.members("cancelled") == 0
        await eventually(lambda: numsub(redis, "cancelled") == 0, "the subscription ended in Redis")


async def test_group_names_that_were_left_cost_the_process_nothing(redis: RedisServer) -> None:
    # Groups named per user or per conversation: a long-running process goes through
    # names without end, and must not keep anything for those it has left (the Redis
    # client kept two lists per name ever used, for the life of its connection).
    api = API(broadcast=redis.url)

    async def use(names: Iterable[str]) -> None:
        for name in names:
            async with api.broadcast.subscribe(name):
                pass

    def lists() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o) is list)

    async with lifespan(api):
        await use(f"warm-up:{n}" for n in range(100))
        before = lists()
        await use(f"user:{n}" for n in range(1000))
        assert lists() - before < 100
        assert numsub(redis, "user:999") == 0


async def test_an_unserialisable_message_fails_at_publish(redis: RedisServer) -> None:
    api = room_api(redis.url)
    async with lifespan(api), connect(api, "/rooms/1") as member:
        await joined(member)
        with pytest.raises(BroadcastError, match="msgpack cannot serialise"):
            await api.publish("room:1", {"when": object()})
        await api.publish("room:1", "next")
        assert await member.receive_text() == "next"


async def test_redis_unreachable_at_startup_fails_the_startup() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(LifespanFailed, match=r"cannot connect to Redis at 127\.0\.0\.1"):
        async with lifespan(API(broadcast=url)):
            pass


async def test_the_backend_refuses_to_start_without_redis() -> None:
    backend = RedisBackend(f"redis://127.0.0.1:{free_port()}/0", timeout=2.0)
    backend.attach(lambda channel, payload: None)
    async with anyio.create_task_group() as task_group:
        with pytest.raises(BroadcastError, match=r"cannot connect to Redis at 127\.0\.0\.1:\d+/0"):
            await backend.start(task_group)


async def test_publish_and_join_without_the_lifespan_say_why(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    api = room_api(redis.url)
    with pytest.raises(BroadcastError, match=r"not running .*lifespan"):
        await api.publish("room:1", "hi")
    # A join fails loudly rather than leaving a member that never receives anything.
    async with connect(api, "/rooms/1") as member:
        with pytest.raises(WebSocketDisconnect) as closed:
            await member.receive_text()
    assert closed.value.code == 1011
    assert "cannot subscribe to 'room:1': the Redis backend is not running" in caplog.text


# -- Redis going away ---------------------------------------------------------------------


async def test_delivery_resumes_after_redis_restarts(caplog: pytest.LogCaptureFixture) -> None:
    with RedisServer() as redis:
        api = room_api(redis.url)
        async with lifespan(api), connect(api, "/rooms/1") as before:
            await joined(before)
            await api.publish("room:1", "up")
            assert await before.receive_text() == "up"

            await anyio.to_thread.run_sync(redis.stop)
            with pytest.raises(BroadcastError, match="unreachable"), anyio.fail_after(WAIT):
                await api.publish("room:1", "down")
            await eventually(lambda: "lost the connection to Redis" in caplog.text, "the loss was logged")
            # Joining while Redis is away works, and takes effect when it is back.
            async with connect(api, "/rooms/1") as during:
                await joined(during)

                # The reader has tried to reconnect, and failed, at least once.
                await eventually(lambda: "still unreachable" in caplog.text, "a reconnection failed")
                await anyio.to_thread.run_sync(redis.start)
                # Messages published while the reader reconnects are lost: publish until one arrives.
                await publish_until_received(api, "room:1", before)
                await api.publish("room:1", "resumed")
                assert await drain_until(before, "resumed")
                assert await drain_until(during, "resumed")

    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    lost = [message for message in warnings if message.startswith("lost the connection to Redis")]
    resumed = [message for message in warnings if message.startswith("reconnected to Redis")]
    assert len(lost) == len(resumed) == 1, warnings
    assert "may have been lost" in resumed[0]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def publish_until_received(api: API, group: str, client: ClientWebSocket) -> None:
    with anyio.fail_after(3 * WAIT):
        while True:
            try:
                await api.publish(group, "again?")
            except BroadcastError:
                await anyio.sleep(0.05)
                continue
            try:
                assert await client.receive_text(timeout=0.2) == "again?"
                return
            except ReceiveTimeout:
                pass


async def drain_until(client: ClientWebSocket, expected: Any) -> bool:
    """Skip the retries of `publish_until_received` still on their way; True once ``expected`` arrives."""
    with anyio.fail_after(WAIT):
        while (message := await client.receive_text()) != expected:
            assert message == "again?"
    return True


async def test_the_app_shuts_down_cleanly_while_redis_is_away(caplog: pytest.LogCaptureFixture) -> None:
    with RedisServer() as redis:
        api = room_api(redis.url)
        # The lifespan client fails its shutdown if the app does not answer within its timeout.
        async with lifespan(api), connect(api, "/rooms/1") as member:
            await joined(member)
            await anyio.to_thread.run_sync(redis.stop)
            await eventually(lambda: "lost the connection to Redis" in caplog.text, "the loss was logged")
        with pytest.raises(BroadcastError, match="not running"):
            await api.publish("room:1", "after shutdown")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_group_name_that_is_not_utf_8_works_and_survives_a_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # JSON's "\udcff" escape decodes to a lone surrogate, which strict UTF-8 cannot encode:
    # a client can name such a group. It must work as with memory://, and not stop the
    # reconnection of the process's other groups.
    with RedisServer() as redis:
        one, two = API(broadcast=redis.url), API(broadcast=redis.url)

        @one.websocket_route("/join", receive_type="json", send_type="text")
        async def join(ws: WebSocket) -> None:
            async with ws:
                async for group in ws:
                    await ws.join(group)
                    await ws.send("joined")

        async with lifespan(one), lifespan(two), connect(one, "/join") as member:
            await member.send_text('"odd \\udcff"')
            await member.send_text('"plain"')
            assert [await member.receive_text(), await member.receive_text()] == ["joined", "joined"]
            await two.publish("odd \udcff", "odd")
            assert await member.receive_text() == "odd"

            await anyio.to_thread.run_sync(redis.restart)
            await publish_until_received(two, "plain", member)
            await two.publish("odd \udcff", "resumed")
            assert await drain_until(member, "resumed")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
