"""The guide's "Decoding and encoding messages": JSON ping-pong with ``value_type="json"``."""

from wsendpoints import API, WebSocket

api = API()


@api.websocket_route("/ping-pong", value_type="json")
async def ping_pong(ws: WebSocket):
    async with ws:
        async for message in ws:
            resp = "pong" if message["type"] == "ping" else "ping"
            await ws.send({"type": resp})


if __name__ == "__main__":
    api.run()
