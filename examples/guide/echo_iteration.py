"""The guide's "Iterating over received messages", first snippet: ``async for message in ws``.

The guide shows the view alone; the import, ``api = API()``, the route decorator
(at ``/echo``, as in the basic example) and the ``__main__`` block are added.
"""

from wsendpoints import API, WebSocket

api = API()


@api.websocket_route("/echo")
async def echo(ws: WebSocket):
    async with ws:
        async for message in ws:
            await ws.send(f"You said: {message}")


if __name__ == "__main__":
    api.run()
