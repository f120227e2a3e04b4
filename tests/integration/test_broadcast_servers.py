"""Two `wsendpoints run --broadcast redis://...` processes sharing one real Redis.

The client (`websockets`) is asyncio-only; the servers cover both event loops
(uvicorn on asyncio, hypercorn on trio).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect

from ..redis_server import RedisServer
from .servers import CLI_SERVERS, serve

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.parametrize("server", list(CLI_SERVERS)),
]

APP = "tests.integration.broadcast_app:api"
TIMEOUT = 5.0
# The default --shutdown-timeout, plus room for the interpreter to start and exit.
EXIT_WITHIN = 10.0 + 5.0


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


async def recv(ws: ClientConnection) -> str | bytes:
    with anyio.fail_after(TIMEOUT):
        return await ws.recv()


async def numsub_becomes(redis: RedisServer, channel: str, expected: int) -> None:
    """Wait until ``expected`` processes are subscribed to ``channel`` in Redis."""
    with anyio.move_on_after(TIMEOUT):
        while (count := redis.command("PUBSUB", "NUMSUB", channel)[1]) != expected:  # noqa: ASYNC110
            await anyio.sleep(0.02)
        return
    pytest.fail(f"{count} process(es) subscribed to {channel!r}, not {expected}, after {TIMEOUT} s")


async def test_two_processes_share_a_room_through_redis(server: str, redis: RedisServer) -> None:
    options = ("--broadcast", redis.url)
    with serve(server, APP, options=options) as one, serve(server, APP, options=options) as two:
        async with (
            connect(f"{one.url}/rooms/lobby", open_timeout=TIMEOUT) as first,
            connect(f"{two.url}/rooms/lobby", open_timeout=TIMEOUT) as second,
        ):
            assert await recv(first) == "joined"
            assert await recv(second) == "joined"
            await numsub_becomes(redis, "room:lobby", 2)

            # A publish in either process reaches both clients.
            await first.send("from one")
            assert await recv(first) == "from one"
            assert await recv(second) == "from one"
            await second.send("from two")
            assert await recv(first) == "from two"
            assert await recv(second) == "from two"

            # Leaving stops delivery: process two is no longer subscribed, and its client gets nothing.
            await second.send("leave")
            assert await recv(second) == "left"
            await numsub_becomes(redis, "room:lobby", 1)
            await first.send("after leaving")
            assert await recv(first) == "after leaving"
            await second.send("ping")
            assert await recv(second) == "pong"

            # Disconnecting leaves automatically.
            async with connect(f"{two.url}/rooms/lobby", open_timeout=TIMEOUT) as third:
                assert await recv(third) == "joined"
                await numsub_becomes(redis, "room:lobby", 2)
                await first.send("to both")
                assert await recv(first) == "to both"
                assert await recv(third) == "to both"
            await numsub_becomes(redis, "room:lobby", 1)
            await first.send("still here")
            assert await recv(first) == "still here"

        # Both stop cleanly, leaving nothing subscribed.
        for running in (one, two):
            running.process.send_signal(signal.SIGTERM)
            running.process.wait(timeout=EXIT_WITHIN)
            assert "Traceback" not in running.output(), running.output()
        await numsub_becomes(redis, "room:lobby", 0)
