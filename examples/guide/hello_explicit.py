"""The guide's "Automatically accepting and closing connections", second snippet: by hand.

The guide calls it equivalent to `hello_context`; it differs in one way: it prints
"Connection closed" only when the client has gone before the greeting is sent.
"""

from wsendpoints import API, WebSocket
from wsendpoints.exceptions import WebSocketDisconnect

api = API()


@api.websocket_route("/hello")
async def hello(ws: WebSocket):
    await ws.accept()
    try:
        await ws.send("Hello, world!")
    except WebSocketDisconnect:
        print("Connection closed")
    finally:
        await ws.close()


if __name__ == "__main__":
    api.run()
