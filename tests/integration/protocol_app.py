"""The app the real-server protocol tests run: calls the WebSocket protocol does not allow.

Each server answers these in its own way (a dropped connection, a changed code, a
crash), so wsendpoints refuses them before anything reaches the server. `/record` and
`/recorded` report the close codes clients sent; `/cookies` sends back the handshake's cookies.
"""

from __future__ import annotations

from wsendpoints import API, WebSocket, WebSocketEndpoint

api = API()
# The close codes `Recorder.on_disconnect` saw, oldest first; `/recorded` sends and clears them.
recorded: list[int] = []


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


class Recorder(WebSocketEndpoint):
    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        recorded.append(close_code)


api.add_websocket("/record", Recorder)


@api.websocket_route("/recorded", send_type="json")
async def report(ws: WebSocket) -> None:
    async with ws:
        await ws.send(recorded)
        recorded.clear()


@api.websocket_route("/cookies", send_type="json")
async def cookies(ws: WebSocket) -> None:
    async with ws:
        await ws.send(dict(ws.cookies))
