"""The guide's "A basic example": accept, receive one message, answer it, close.

As written in the guide, with the slip fixed: ``ws.receive()`` is awaited.
"""

from wsendpoints import API, WebSocket

api = API()


@api.websocket_route("/echo")
async def echo(ws: WebSocket):
    await ws.accept()
    message = await ws.receive()
    await ws.send(f"You said: {message}")
    await ws.close()


if __name__ == "__main__":
    api.run()
