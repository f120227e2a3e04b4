"""The guide's "Iterating over received messages", second snippet: the ``while True`` loop.

The guide calls it strictly equivalent to `echo_iteration`. It shows the view
alone; the import, ``api = API()``, the route decorator (at ``/echo``) and the
``__main__`` block are added.
"""

from wsendpoints import API, WebSocket

api = API()


@api.websocket_route("/echo")
async def echo(ws: WebSocket):
    async with ws:
        while True:
            message = await ws.receive()
            await ws.send(f"You said: {message}")


if __name__ == "__main__":
    api.run()
