"""The app the real-server protocol tests run: calls the WebSocket protocol does not allow.

Each server answers these in its own way (a dropped connection, a changed code, a
crash), so wsendpoints refuses them before anything reaches the server.
"""

from __future__ import annotations

from wsendpoints import API, WebSocket

api = API()


@api.websocket_route("/subprotocol")
async def subprotocol(ws: WebSocket) -> None:
    await ws.accept(subprotocol="not-offered")


@api.websocket_route("/close/{code:int}")
async def close(ws: WebSocket, code: int) -> None:
    await ws.accept()
    await ws.close(code, ws.query_params.get("reason", ""))


@api.websocket_route("/echo")
async def echo(ws: WebSocket) -> None:
    async with ws:
        async for message in ws:
            await ws.send(message)
