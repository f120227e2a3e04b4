"""The guide's "Using ASGI events": the basic example with raw ASGI events only.

As written in the guide, with the slip fixed (one pair of braces around the
``websocket.send`` event); ``api = API()`` and the ``__main__`` block, which the
snippet leaves out, are added.
"""

from wsendpoints import API, WebSocket

api = API()


@api.websocket_route("/echo")
async def echo(ws: WebSocket):
    await ws.send_event({"type": "websocket.accept"})
    event: dict = await ws.receive_event()
    message: str = event["text"]
    await ws.send_event({"type": "websocket.send", "text": f"You said: {message}"})
    await ws.send_event({"type": "websocket.close"})


if __name__ == "__main__":
    api.run()
