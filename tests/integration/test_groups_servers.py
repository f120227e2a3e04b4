"""A slow client in a room of 100 fast ones, behind `wsendpoints run` on uvicorn and hypercorn (trio).

What makes a WebSocket client slow is that it stops reading. Its TCP receive
window closes, the server's kernel send buffer fills, and the server's ASGI
``send`` stops returning: uvicorn waits for its transport to drain, hypercorn
for ``send_all`` on the trio socket. From then on the connection's queue of
group messages (``group_queue_size``, 10 here) fills and ``group_overflow``
applies. The slow client here is a real one made as slow as can be: a kernel
receive buffer of a few KiB (``SO_RCVBUF``), a websockets receive queue of one
frame (``max_queue=1``), no compression (or the padding would shrink to nothing),
and messages of 64 KiB, so that a few megabytes fill every buffer on the way.

The publisher asks for messages in bursts smaller than the queue and waits
until every fast client has the burst before asking for the next, so the fast
clients' queues never overflow: what is measured is only whether the slow client
holds them up. It never does, and the test stops as soon as the server says the
slow client's queue overflowed (its log), plus two more bursts.

The client (`websockets`) is asyncio-only; the servers cover both event loops.
"""

from __future__ import annotations

import re
import socket

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .servers import CLI_SERVERS, Running, serve

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.parametrize("server", list(CLI_SERVERS)),
]

APP = "tests.integration.groups_app:api"
TIMEOUT = 10.0
FAST = 100
QUEUE = 10
SIZE = 64 * 1024
BURST = 5  # fewer than QUEUE: a fast client's queue never holds more than one burst
MAX_BURSTS = 30  # 10 MB per client: about three times what the buffers on the way hold (a few MB)
AFTER = 2  # bursts published after the slow client's queue overflowed


async def open_fast(url: str) -> ClientConnection:
    ws = await connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, compression=None)
    with anyio.fail_after(TIMEOUT):
        assert await ws.recv() == "joined"
    return ws


async def open_slow(url: str) -> ClientConnection:
    """A client that will stop reading once it has joined, with as little buffering as it can have."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Set before connecting, so that the window the client advertises is small from the start.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.settimeout(TIMEOUT)
    await anyio.to_thread.run_sync(sock.connect, (host, int(port)))
    ws = await connect(
        url, sock=sock, max_queue=1, open_timeout=TIMEOUT, close_timeout=TIMEOUT, compression=None
    )
    with anyio.fail_after(TIMEOUT):
        assert await ws.recv() == "joined"
    return ws


def number(message: str | bytes) -> int:
    assert isinstance(message, str)
    assert len(message) == SIZE
    return int(message.split(" ", 1)[0])


async def read_until_closed(ws: ClientConnection) -> tuple[list[int], ConnectionClosed]:
    """The numbers of the messages read until the connection closed, and how it closed."""
    received = []
    for _ in range(MAX_BURSTS * BURST + 1):
        try:
            received.append(number(await ws.recv()))
        except ConnectionClosed as closed:
            return received, closed
    raise AssertionError("the connection was never closed")


def overflow_warnings(running: Running, policy: str) -> int:
    """How many times the server has logged that a queue of group messages overflowed."""
    if policy == "close":
        pattern = r"WARNING:.*closing /rooms/lobby with 1008"
    else:
        pattern = (
            rf"WARNING:.*dropping group messages for /rooms/lobby: its queue of {QUEUE} is full \({policy}\)"
        )
    return len(re.findall(pattern, running.output()))


async def publish_until_overflow(running: Running, fast: list[ClientConnection], policy: str) -> int:
    """Publish bursts, each read by every fast client before the next, until the slow one overflows.

    Returns how many messages were published; every fast client has read them all, in order.
    """
    published = 0
    after = None
    for _ in range(MAX_BURSTS):
        await fast[0].send(f"publish {published} {BURST} {SIZE}")
        for ws in fast:
            with anyio.fail_after(TIMEOUT):
                got = [number(await ws.recv()) for _ in range(BURST)]
            assert got == list(range(published, published + BURST)), "a fast client missed a message"
        published += BURST
        if after is None and overflow_warnings(running, policy):
            after = AFTER
        if after is not None:
            if after == 0:
                return published
            after -= 1
    raise AssertionError(
        f"the slow client's queue never overflowed in {published} messages of {SIZE} bytes:\n"
        + running.output()[-2000:]
    )


@pytest.mark.parametrize("policy", ["drop_oldest", "close"])
async def test_a_slow_client_does_not_delay_100_fast_ones(server: str, policy: str) -> None:
    env = {"GROUP_QUEUE_SIZE": str(QUEUE), "GROUP_OVERFLOW": policy}
    with serve(server, APP, env=env) as running:
        url = f"{running.url}/rooms/lobby"
        slow = await open_slow(url)
        fast = [await open_fast(url) for _ in range(FAST)]

        published = await publish_until_overflow(running, fast, policy)

        # Now the slow client reads what reached it.
        received: list[int] = []
        with anyio.fail_after(TIMEOUT):
            if policy == "close":
                received, closed = await read_until_closed(slow)
            else:
                while not received or received[-1] != published - 1:
                    received.append(number(await slow.recv()))

        if policy == "close":
            # What was on its way before the queue overflowed, in order, then the close frame.
            assert closed.rcvd is not None, "the server closed without a close frame"
            assert closed.rcvd.code == 1008
            assert received == list(range(len(received)))
            assert len(received) < published
        else:
            # The first messages were on their way; then the newest QUEUE, in order; a gap between.
            assert received[0] == 0
            assert received == sorted(set(received))
            assert received[-QUEUE:] == list(range(published - QUEUE, published))
            assert len(received) < published, "nothing was dropped"

        for ws in [slow, *fast]:
            await ws.close()
        # An overflow is a policy at work, not a failure: the server says so once, as a warning.
        assert overflow_warnings(running, policy) == 1
        assert "Traceback" not in running.output(), running.output()[-3000:]
