"""The app the real-server frame tests run: what ``ws.send`` puts on the wire.

Subclasses of ``str`` and ``bytes`` are sent as what they are: text and binary.
"""

from __future__ import annotations

import enum

from wsendpoints import API, WebSocket

api = API()


class Color(str, enum.Enum):
    """A str subclass, as every ``StrEnum`` member is."""

    RED = "red"


class Blob(bytes):
    pass


@api.websocket_route("/text")
async def text(ws: WebSocket) -> None:
    async with ws:
        await ws.send(Color.RED)


@api.websocket_route("/bytes", value_type="bytes")
async def binary(ws: WebSocket) -> None:
    async with ws:
        await ws.send(Blob(b"\x00blob"))


@api.websocket_route("/auto", value_type="auto")
async def auto(ws: WebSocket) -> None:
    async with ws:
        await ws.send(Color.RED)
        await ws.send(Blob(b"\x00blob"))
