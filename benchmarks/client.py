"""The load generator: picows connections playing ping-pong with the echo server.

picows parses frames in Cython and calls ``on_ws_frame`` straight from the
protocol, with no task or queue per message, so one client core keeps a
Python server core saturated. Each connection is a closed loop: it sends the
next message as soon as the echo of the previous one arrives, and records the
round trip's latency.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from time import perf_counter
from typing import cast

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from .payloads import PAYLOADS

_CONNECT_BATCH = 100  # handshakes in flight at once; more only fills the server's backlog


@dataclass
class Tally:
    """What every connection of one run reports into."""

    running: bool = False  # send the next message on each echo
    recording: bool = False  # keep latencies (the timed window only)
    echoes: int = 0
    latencies: list[float] = field(default_factory=list)
    in_flight: int = 0  # messages sent and not echoed yet
    drained: asyncio.Event = field(default_factory=asyncio.Event)  # set when in_flight drops to 0


class Echoer(WSListener):  # type: ignore[misc, unused-ignore]  # untyped without the bench extra
    """One connection: send, wait for the echo, send again while the run lasts."""

    def __init__(self, tally: Tally, codec: str) -> None:
        super().__init__()
        key, payload = PAYLOADS[codec]
        self.tally = tally
        self.msg_type = WSMsgType.TEXT if key == "text" else WSMsgType.BINARY
        self.payload = payload.encode() if isinstance(payload, str) else payload
        self.transport: WSTransport | None = None
        self.sent_at = 0.0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def send(self) -> None:
        """Start the ping-pong (or send one message, if the tally is not running)."""
        assert self.transport is not None
        self.tally.in_flight += 1
        self.sent_at = perf_counter()
        self.transport.send(self.msg_type, self.payload)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != self.msg_type:
            return
        now = perf_counter()
        tally = self.tally
        tally.echoes += 1
        if tally.recording:
            tally.latencies.append(now - self.sent_at)
        if tally.running:
            self.sent_at = now
            transport.send(self.msg_type, self.payload)
        else:
            tally.in_flight -= 1
            if not tally.in_flight:
                tally.drained.set()


async def connect(
    url: str, count: int, tally: Tally, codec: str, echoer: type[Echoer] = Echoer
) -> list[Echoer]:
    """Open ``count`` connections, a batch of handshakes at a time, each with an ``echoer``."""
    echoers: list[Echoer] = []
    while len(echoers) < count:
        batch = min(_CONNECT_BATCH, count - len(echoers))
        pairs = await asyncio.gather(
            *(
                ws_connect(lambda: echoer(tally, codec), url, websocket_handshake_timeout=10)
                for _ in range(batch)
            )
        )
        echoers.extend(cast(Echoer, listener) for _, listener in pairs)  # made by the factory above
    return echoers


async def wait_idle(tally: Tally, timeout: float) -> None:
    """Wait until every sent message has been echoed (or ``timeout``)."""
    if tally.in_flight:
        with contextlib.suppress(asyncio.TimeoutError):  # not the builtin before Python 3.11
            await asyncio.wait_for(tally.drained.wait(), timeout)


async def close(echoers: list[Echoer], timeout: float = 5.0) -> None:
    """Close every connection and wait for the sockets to go (bounded by ``timeout``)."""
    transports = [e.transport for e in echoers if e.transport is not None]
    for transport in transports:
        transport.send_close()  # both do nothing on a transport already gone
        transport.disconnect()
    waits = [transport.wait_disconnected() for transport in transports]
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), timeout)
