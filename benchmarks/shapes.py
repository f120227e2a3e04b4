"""wsendpoints' shape with nothing in it: the floor for the API itself.

A framework whose API is ``on_receive(ws, message)`` or ``async for message in
ws``, with ``await ws.send(value)``, cannot cost less per message than the
coroutines that API is made of. These apps have those coroutines and nothing
else: no connection state, no size limit, no check of the frame's kind, no
error handling, the codec called inline exactly as its floor calls it.

- ``shape-endpoint``: the app awaits a receive loop (one coroutine per
  connection, as a router awaiting an endpoint does) that calls
  ``await on_receive(ws, value)``; ``on_receive`` awaits ``ws.send(value)``.
  Per message: two coroutines, ``on_receive``'s and ``send``'s.
- ``shape-view``: the app awaits the view, ``async for value in ws: await
  ws.send(value)``. Per message: two coroutines, the ``__anext__`` that
  ``async for`` awaits and ``send``'s.

The difference between ``raw`` and a shape is the price of the API's shape; the
difference between a shape and the wsendpoints app of the same shape is the
price of what wsendpoints does beyond it (its checks, codec contract and
per-connection task group). They end on the ``KeyError`` of the disconnect
event, which has no payload.

Each codec has its own class so that every call is written out, as in the
floor: a per-message branch or a helper call would make the shape dearer than
it need be, and a lower bound must not be. For the same reason the server's
callables are read from their slots into a local before they are called:
CPython 3.11 does not specialise ``self._send(...)`` on a slot (it looks for a
method), and the generic lookup costs ~100 instructions a call.
"""

from __future__ import annotations

from typing import Any, Literal

import msgpack
import ujson

from wsendpoints.types import ASGIApp, Receive, Scope, Send

SHAPES = ("shape-endpoint", "shape-view")


class _TextSocket:
    __slots__ = ("_receive", "_send")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send

    def __aiter__(self) -> _TextSocket:
        return self

    async def __anext__(self) -> Any:
        receive = self._receive
        return (await receive())["text"]

    async def send(self, value: Any) -> None:
        send = self._send
        await send({"type": "websocket.send", "text": value})

    async def serve(self, on_receive: Any) -> None:
        receive = self._receive
        while True:
            message = await receive()
            await on_receive(self, message["text"])


class _BytesSocket(_TextSocket):
    __slots__ = ()

    async def __anext__(self) -> Any:
        receive = self._receive
        return (await receive())["bytes"]

    async def send(self, value: Any) -> None:
        send = self._send
        await send({"type": "websocket.send", "bytes": value})

    async def serve(self, on_receive: Any) -> None:
        receive = self._receive
        while True:
            message = await receive()
            await on_receive(self, message["bytes"])


class _JSONSocket(_TextSocket):
    __slots__ = ()

    async def __anext__(self) -> Any:
        receive = self._receive
        return ujson.loads((await receive())["text"])

    async def send(self, value: Any) -> None:
        # The flags of the raw+ujson floor (and of wsendpoints' UJSONCodec), by position.
        send = self._send
        await send({"type": "websocket.send", "text": ujson.dumps(value, False, False, False)})

    async def serve(self, on_receive: Any) -> None:
        receive = self._receive
        while True:
            message = await receive()
            await on_receive(self, ujson.loads(message["text"]))


_pack = msgpack.Packer().pack  # as the raw+msgpack floor packs: one Packer, reused


class _MsgPackSocket(_TextSocket):
    __slots__ = ()

    async def __anext__(self) -> Any:
        receive = self._receive
        return msgpack.unpackb((await receive())["bytes"])

    async def send(self, value: Any) -> None:
        send = self._send
        await send({"type": "websocket.send", "bytes": _pack(value)})

    async def serve(self, on_receive: Any) -> None:
        receive = self._receive
        while True:
            message = await receive()
            await on_receive(self, msgpack.unpackb(message["bytes"]))


_SOCKETS: dict[str, type[_TextSocket]] = {
    "text": _TextSocket,
    "bytes": _BytesSocket,
    "json": _JSONSocket,
    "msgpack": _MsgPackSocket,
}


async def _on_receive(ws: _TextSocket, value: Any) -> None:
    await ws.send(value)


async def _view(ws: _TextSocket) -> None:
    async for value in ws:
        await ws.send(value)


def build_shape(shape: Literal["endpoint", "view"], codec: str) -> ASGIApp:
    """The ``shape-<shape>`` echo app for ``codec``."""
    socket = _SOCKETS[codec]
    endpoint = shape == "endpoint"

    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        ws = socket(receive, send)
        try:
            if endpoint:
                await ws.serve(_on_receive)
            else:
                await _view(ws)
        except KeyError:  # the disconnect
            return

    return echo
