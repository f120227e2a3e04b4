"""A mounted app's WebSocket connection, as the API serves it: counted, and drained at shutdown.

The API cannot close a foreign app's connection the way it closes its own, from
inside the handler. So at a drain it does what a server does when a client
leaves: the client gets a 1001 close frame, and the app's ``receive()`` answers
``websocket.disconnect`` with 1001, whether the app was waiting there (the wait
is cancelled for it) or comes back to it later. An app that only sends learns it
from its next ``send()``, which fails as it would for a client that has gone.
Either way the app ends as it does for any disconnect, its own clean-up included.
"""

from __future__ import annotations

import contextlib

import anyio

from .exceptions import CloseCode
from .types import Message, Receive, Send
from .websockets import _CLOSE_TIMEOUT

_GOING_AWAY: Message = {"type": "websocket.disconnect", "code": CloseCode.GOING_AWAY, "reason": ""}


class MountedConnection:
    """Wraps a mounted app's ``receive`` and ``send`` so that `go_away` can end its connection."""

    __slots__ = ("_accepted", "_going_away", "_left", "_receive", "_send", "_waiting")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._accepted = False
        self._going_away = False
        # Closed with 1001 on the app's behalf (or the connection had ended already).
        self._left = False
        self._waiting: anyio.CancelScope | None = None

    def go_away(self) -> None:
        """End the connection with 1001 at the app's next (or current) receive or send."""
        self._going_away = True
        if self._accepted and self._waiting is not None:
            self._waiting.cancel()

    async def receive(self) -> Message:
        # Before accept() the handshake goes on as usual: the app then gets its 1001.
        if not (self._going_away and self._accepted):
            with anyio.CancelScope() as self._waiting:
                try:
                    message = await self._receive()
                finally:
                    self._waiting = None
                if message["type"] == "websocket.disconnect":
                    self._left = True
                return message
        await self._leave()
        return _GOING_AWAY

    async def send(self, message: Message) -> None:
        if self._going_away and self._accepted:
            await self._leave()
        if self._left and self._going_away:
            if message["type"] == "websocket.close":
                return
            raise OSError("the connection is closed: the server is shutting down")
        await self._send(message)
        kind = message["type"]
        if kind == "websocket.accept":
            self._accepted = True
        elif kind == "websocket.close":
            self._left = True

    async def _leave(self) -> None:
        if self._left:
            return
        self._left = True
        # Shielded: the close frame goes even if the app is being cancelled meanwhile. A
        # failing send means the client has gone already: there is nothing left to close.
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(_CLOSE_TIMEOUT),
            contextlib.suppress(Exception),
        ):
            await self._send({"type": "websocket.close", "code": CloseCode.GOING_AWAY, "reason": ""})
