"""Server push: every connection gets its own background task that sends a tick every N milliseconds.

Run ``python examples/ticker.py`` (or ``wsendpoints run examples.ticker:api``) and connect to
``ws://127.0.0.1:8000/ticker?every=500``. The server sends, as JSON::

    {"tick": 1, "every": 500}
    {"tick": 2, "every": 500}
    ...

and the client may change the pace at any time by sending ``{"every": 100}`` (milliseconds,
between `MIN_EVERY` and `MAX_EVERY`); anything else closes the connection with 1007.

The push loop runs in ``ws.task_group``, the connection's own task group: it starts
after the handshake and is cancelled when the connection ends, whoever ends it, so no
loop outlives its client. Meanwhile the endpoint's receive loop keeps reading, which
is how the server learns that the client has gone even on servers where a send to a
departed client does not fail (hypercorn).
"""

from __future__ import annotations

from typing import Any

import anyio

from wsendpoints import API, CloseCode, ConnectionState, WebSocket, WebSocketEndpoint

__all__ = ["MAX_EVERY", "MIN_EVERY", "Ticker", "api"]

MIN_EVERY = 10
MAX_EVERY = 60_000
DEFAULT_EVERY = 1000

api = API()


def parse_every(value: Any) -> int | None:
    """A pace in milliseconds if ``value`` is an acceptable one, else None."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and MIN_EVERY <= value <= MAX_EVERY:
        return value
    return None


@api.websocket_route("/ticker")
class Ticker(WebSocketEndpoint):
    """Pushes ``{"tick": n, "every": ms}`` every ``ms`` milliseconds until the client leaves."""

    value_type = "json"

    async def on_connect(self, ws: WebSocket) -> None:
        every = parse_every(ws.query_params.get("every", str(DEFAULT_EVERY)))
        if every is None:
            await ws.close(CloseCode.POLICY_VIOLATION)  # before accept(): the handshake gets HTTP 403
            return
        self.every = every
        # Set when the pace changes, so that the loop does not sleep out a long old interval.
        self.changed = anyio.Event()
        await ws.accept()
        ws.task_group.start_soon(self.push, ws)

    async def push(self, ws: WebSocket) -> None:
        tick = 0
        # Once on_receive has closed the connection, stop rather than send into a closed socket.
        while ws.connection_state is ConnectionState.CONNECTED:
            tick += 1
            await ws.send({"tick": tick, "every": self.every})
            with anyio.move_on_after(self.every / 1000):
                await self.changed.wait()
            self.changed = anyio.Event()

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        every = parse_every(message.get("every")) if isinstance(message, dict) else None
        if every is None:
            await ws.close(
                CloseCode.INVALID_PAYLOAD, f'expected {{"every": ms}} with {MIN_EVERY} <= ms <= {MAX_EVERY}'
            )
            return
        self.every = every
        self.changed.set()


if __name__ == "__main__":
    api.run()
