"""Bad clients against real servers: garbage after the handshake, half-closes, clients that vanish
mid-message, floods. Each ends its own connection only: well-behaved clients keep getting their
echoes meanwhile and afterwards, and the server is left tracking no connection.

The bad clients speak raw TCP (the handshake comes from websockets' sans-I/O protocol, everything
after it is hand-made bytes); the good ones use the websockets client. Client side asyncio only;
the servers cover both event loops (uvicorn on asyncio, hypercorn on trio).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from .servers import Running, serve

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

APP = "tests.integration.hardening_app:api"
TIMEOUT = 10.0
# hypercorn drops a connection without a close frame once the app has closed; give it time to notice.
SETTLE_TIMEOUT = 15.0
MASK = b"\x00\x00\x00\x00"  # a zero mask leaves the payload readable


@pytest.fixture(scope="module", params=["uvicorn-sansio", "hypercorn-trio"])
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    with serve(request.param, APP) as server:
        yield server


def frame(opcode: Opcode, payload: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin).serialize(mask=True)


class RawClient:
    """A TCP connection that did a proper WebSocket handshake and may then misbehave."""

    def __init__(self, stream: SocketStream, protocol: ClientProtocol) -> None:
        self.stream = stream
        self.protocol = protocol

    @classmethod
    async def open(cls, url: str) -> RawClient:
        protocol = ClientProtocol(parse_uri(url))
        host, port = url.removeprefix("ws://").split("/")[0].split(":")
        with anyio.fail_after(TIMEOUT):
            stream = await anyio.connect_tcp(host, int(port))
            protocol.send_request(protocol.connect())
            await stream.send(b"".join(protocol.data_to_send()))
            while protocol.state is State.CONNECTING:
                protocol.receive_data(await stream.receive())
        assert protocol.state is State.OPEN, protocol.handshake_exc
        return cls(stream, protocol)

    async def ended(self) -> tuple[list[Frame], Close | None]:
        """Read until the server ends the connection: the data frames it sent and its close frame, if any.

        After a close frame the server is waiting for ours, which a bad client never sends: done.
        """
        frames: list[Frame] = []
        with anyio.fail_after(TIMEOUT):
            while True:
                try:
                    data = await self.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    return frames, None
                self.protocol.receive_data(data)
                for event in self.protocol.events_received():
                    if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                        return frames, Close.parse(event.data)
                    if isinstance(event, Frame):
                        frames.append(event)

    async def reset(self) -> None:
        """Vanish: close the socket with a TCP reset, as a crashed client or a dropped network does."""
        raw = self.stream.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self.stream.aclose()


@asynccontextmanager
async def good_client_meanwhile(url: str) -> AsyncIterator[None]:
    """A well-behaved client echoing one message after another for the length of the block.

    Leaving the block stops it; it must have had every echo right, and at least a few.
    """
    stop = anyio.Event()
    echoed = 0

    async def chat() -> None:
        nonlocal echoed
        async with connect(f"{url}/echo", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            while not stop.is_set() or echoed < 3:
                await ws.send(f"good {echoed}")
                with anyio.fail_after(TIMEOUT):
                    assert await ws.recv() == f"good {echoed}"
                echoed += 1
                await anyio.sleep(0.005)

    async with anyio.create_task_group() as tg:
        tg.start_soon(chat)
        yield
        stop.set()
    assert echoed >= 3


async def echo_works(url: str) -> None:
    async with connect(f"{url}/echo", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        await ws.send("still serving")
        with anyio.fail_after(TIMEOUT):
            assert await ws.recv() == "still serving"


async def settled(running: Running, timeout: float = SETTLE_TIMEOUT) -> dict[str, int]:
    """Wait until the server tracks no connection; then every on_connect had its on_disconnect."""
    http_url = running.url.replace("ws://", "http://") + "/stats"
    stats: dict[str, int]
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        with anyio.move_on_after(timeout):
            while True:
                stats = (await client.get(http_url)).json()
                if stats["connections"] == 0:
                    break
                await anyio.sleep(0.05)
    assert stats["connections"] == 0, f"connections left behind: {stats}\n{running.output()[-3000:]}"
    assert stats["on_connect"] == stats["on_disconnect"], stats
    assert running.process.poll() is None, "the server is still running"
    return stats


async def misbehave(running: Running, count: int, act: object) -> None:
    """Run ``count`` bad clients doing ``act(client)`` at once, next to a good client; then check."""
    async with good_client_meanwhile(running.url):
        clients = [await RawClient.open(f"{running.url}/echo") for _ in range(count)]
        async with anyio.create_task_group() as tg:
            for client in clients:
                tg.start_soon(act, client)  # type: ignore[arg-type]
    await echo_works(running.url)
    await settled(running)


# -- garbage after the handshake --------------------------------------------------------------------

GARBAGE = {
    "random bytes": bytes(range(256)) * 4,
    "an unmasked frame": Frame(Opcode.TEXT, b"hi").serialize(mask=False),
    "a reserved opcode": bytes([0x83, 0x82]) + MASK + b"hi",
    "reserved bits set": bytes([0xF1, 0x82]) + MASK + b"hi",
    "invalid UTF-8 in a text frame": frame(Opcode.TEXT, b"\xff\xfe"),
    "a ping over 125 bytes": bytes([0x89, 0xFE]) + struct.pack("!H", 200) + MASK + b"p" * 200,
    "a fragmented ping": bytes([0x09, 0x82]) + MASK + b"hi",
    "a continuation with nothing to continue": frame(Opcode.CONT, b"x"),
    "an HTTP request": b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_after_the_handshake_ends_that_connection_only(
    running: Running, garbage: bytes
) -> None:
    async def send_garbage(client: RawClient) -> None:
        await client.stream.send(frame(Opcode.TEXT, b"before") + garbage)
        frames, close = await client.ended()
        # The message before the garbage may or may not have been echoed; nothing else was.
        assert [bytes(f.data) for f in frames] in ([], [b"before"])
        # uvicorn sends a close frame (1002 protocol error, 1007 bad UTF-8); hypercorn just drops the TCP.
        assert close is None or close.code in (1002, 1007), close
        await client.stream.aclose()

    await misbehave(running, 3, send_garbage)


async def test_a_plain_http_request_to_a_websocket_path_is_told_to_upgrade(running: Running) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.get(running.url.replace("ws://", "http://") + "/echo")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    await echo_works(running.url)


# -- half-closed and vanishing clients --------------------------------------------------------------


async def test_a_client_that_half_closes_is_let_go(running: Running) -> None:
    async def half_close(client: RawClient) -> None:
        await client.stream.send(frame(Opcode.TEXT, b"bye"))
        await client.stream.send_eof()  # shutdown(SHUT_WR): no more from us, but we still read
        frames, _ = await client.ended()
        assert [bytes(f.data) for f in frames] in ([], [b"bye"])
        await client.stream.aclose()

    await misbehave(running, 5, half_close)


VANISHING = {
    "after a frame header": bytes([0x81, 0xFE]) + struct.pack("!H", 1000) + MASK,
    "mid-payload": (bytes([0x81, 0xFE]) + struct.pack("!H", 1000) + MASK + b"x" * 100),
    "after declaring 2**63 bytes": bytes([0x82, 0xFF]) + struct.pack("!Q", 2**63 - 1) + MASK + b"x" * 100,
    "between fragments": frame(Opcode.TEXT, b"first half ", fin=False),
    "mid-handshake of a close": bytes([0x88, 0x82]) + MASK + b"\x03",
}


@pytest.mark.parametrize("partial", VANISHING.values(), ids=VANISHING.keys())
@pytest.mark.parametrize("how", ["reset", "close"])
async def test_a_client_that_vanishes_mid_message_is_let_go(
    running: Running, partial: bytes, how: str
) -> None:
    async def vanish(client: RawClient) -> None:
        await client.stream.send(partial)
        await anyio.sleep(0.05)  # let the server start on the frame
        if how == "reset":
            await client.reset()
        else:
            await client.stream.aclose()

    await misbehave(running, 3, vanish)


# -- floods --------------------------------------------------------------------------------------------


HYPERCORN_DEADLOCK = (
    "hypercorn 0.18: the app's send fails on the reset socket, and hypercorn delivers the disconnect "
    "from inside that send into the app's full receive queue, which only the app itself could drain: "
    "the handler hangs for good (ws_stream.py app_send -> ... -> handle(StreamClosed) -> app_put)"
)


@pytest.mark.parametrize(
    "server",
    ["uvicorn-sansio", pytest.param("hypercorn-trio", marks=pytest.mark.xfail(reason=HYPERCORN_DEADLOCK))],
)
async def test_a_client_that_floods_and_never_reads_is_let_go(server: str) -> None:
    # Big messages, so that both directions fill up: the server's receive queue and its socket buffers.
    flood = frame(Opcode.BINARY, b"f" * 60_000) * 200

    async def flood_then_vanish(client: RawClient) -> None:
        with anyio.move_on_after(1):  # the server stops reading once its queue is full
            await client.stream.send(flood)
        await anyio.sleep(0.3)  # the server is now stuck sending echoes nobody reads
        await client.reset()

    # A server of its own: a hung connection would stay for the tests after this one.
    with serve(server, APP) as running:
        async with good_client_meanwhile(running.url):
            clients = [await RawClient.open(f"{running.url}/echo") for _ in range(3)]
            async with anyio.create_task_group() as tg:
                for client in clients:
                    tg.start_soon(flood_then_vanish, client)
        await echo_works(running.url)
        try:
            await settled(running, timeout=3.0)
        except AssertionError:
            running.process.kill()  # a hung connection would hold up the graceful stop
            raise


async def test_a_flood_over_max_message_rate_is_closed_with_1008(running: Running) -> None:
    async def flood(client: RawClient) -> None:
        await client.stream.send(frame(Opcode.BINARY, b"x") * 200)
        frames, close = await client.ended()
        # The burst (50 a second) was echoed, then the connection closed for going too fast.
        assert 0 < len(frames) <= 51
        assert close is not None
        assert close.code == 1008
        await client.stream.aclose()

    async with good_client_meanwhile(running.url):
        clients = [await RawClient.open(f"{running.url}/limited") for _ in range(3)]
        async with anyio.create_task_group() as tg:
            for client in clients:
                tg.start_soon(flood, client)
    await settled(running)


async def test_many_connections_that_never_finish_their_handshake(running: Running) -> None:
    host, port = running.url.removeprefix("ws://").split(":")
    stalled: list[SocketStream] = []
    try:
        async with good_client_meanwhile(running.url):
            for _ in range(50):
                stream = await anyio.connect_tcp(host, int(port))
                await stream.send(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
                stalled.append(stream)
            await echo_works(running.url)
    finally:
        for stream in stalled:
            await stream.aclose()
    await settled(running)
