"""The app the real-server group tests run under `wsendpoints run`.

``/rooms/{room}`` joins the room, then says ``joined``. A client that sends
``publish START COUNT SIZE`` makes the server publish COUNT messages to the room,
``"<n> xxx..."`` for n = START, START+1, ..., each padded to SIZE bytes.

GROUP_QUEUE_SIZE and GROUP_OVERFLOW (environment) set the route's
``group_queue_size`` and ``group_overflow``.
"""

from __future__ import annotations

import os
from typing import cast

from wsendpoints import API, WebSocket, WebSocketEndpoint
from wsendpoints.broadcast import Overflow

api = API()


class Room(WebSocketEndpoint):
    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.join(ws.path_params["room"])
        await ws.send("joined")

    async def on_receive(self, ws: WebSocket, message: str) -> None:
        command, start, count, size = message.split()
        assert command == "publish"
        for n in range(int(start), int(start) + int(count)):
            prefix = f"{n} "
            await api.publish(ws.path_params["room"], prefix + "x" * (int(size) - len(prefix)))


api.add_websocket(
    "/rooms/{room}",
    Room,
    group_queue_size=int(os.environ.get("GROUP_QUEUE_SIZE", "100")),
    group_overflow=cast(Overflow, os.environ.get("GROUP_OVERFLOW", "drop_oldest")),
)
