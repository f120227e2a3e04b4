"""The app the two-process broadcast tests serve with ``wsendpoints run --broadcast redis://...``.

``/rooms/{room}`` joins the group "room:<room>" and says ``joined``. Then each
text message from the client is published to the room (the sender gets it too),
except ``leave``, which leaves the room and answers ``left``, and ``ping``,
answered ``pong`` directly.
"""

from __future__ import annotations

from wsendpoints import API, WebSocket, WebSocketEndpoint

api = API()


@api.websocket_route("/rooms/{room}")
class Room(WebSocketEndpoint):
    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.join(self.group(ws))
        await ws.send("joined")

    async def on_receive(self, ws: WebSocket, message: str) -> None:
        if message == "leave":
            await ws.leave(self.group(ws))
            await ws.send("left")
        elif message == "ping":
            await ws.send("pong")
        else:
            await api.publish(self.group(ws), message)

    @staticmethod
    def group(ws: WebSocket) -> str:
        return f"room:{ws.path_params['room']}"
