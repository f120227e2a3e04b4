"""The guide's "Automatically accepting and closing connections", first snippet: ``async with ws``."""

from wsendpoints import API, WebSocket

api = API()


@api.websocket_route("/hello")
async def hello(ws: WebSocket):
    async with ws:
        await ws.send("Hello, world!")
    print("Connection closed")


if __name__ == "__main__":
    api.run()
