"""The class-based echo of the getting-started page (``docs/getting-started.md``), as a file.

Run ``python examples/echo.py`` (or ``wsendpoints run examples.echo:api``), then talk to
``ws://127.0.0.1:8000/echo`` from a browser console or from Python as that page shows.
A test checks that the page's code and this file's stay the same.
"""

from wsendpoints import API, WebSocket, WebSocketEndpoint

api = API()


@api.websocket_route("/echo")
class Echo(WebSocketEndpoint):
    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send("Hello! Everything you send comes back.")

    async def on_receive(self, ws: WebSocket, message: str) -> None:
        await ws.send(f"You said: {message}")

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        print(f"a client left with code {close_code}")


if __name__ == "__main__":
    api.run()  # uvicorn on http://127.0.0.1:8000
