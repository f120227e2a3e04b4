"""The app the bad-client and soak tests serve, and a window into the server process.

- ``/echo``     echoes text as text and binary as binary
- ``/limited``  the same, at most 50 messages a second (faster closes with 1008)
- ``/token``    the same for ``?token=sesame``; anyone else is refused in ``on_connect``
  with 401 and a ``WWW-Authenticate`` challenge
- ``/slow-token`` the same, deciding after 0.2 s (a session store's lookup), time for a
  client to leave before its answer
- ``/stats``    HTTP, JSON: the connections the API tracks, the tasks running in the
  server's event loop (and the commonest of their names), and how many times
  ``on_connect`` and ``on_disconnect`` ran
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import MutableMapping
from typing import Any

import anyio

from wsendpoints import API, AuthenticationFailed, WebSocket, WebSocketEndpoint

api = API()
hooks = {"on_connect": 0, "on_disconnect": 0}


@api.websocket_route("/echo")
class Echo(WebSocketEndpoint):
    value_type = "auto"

    async def on_connect(self, ws: WebSocket) -> None:
        hooks["on_connect"] += 1
        await ws.accept()

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        await ws.send(message)

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        hooks["on_disconnect"] += 1


@api.websocket_route("/limited")
class Limited(Echo):
    max_message_rate = 50


@api.websocket_route("/token")
class Token(Echo):
    async def on_connect(self, ws: WebSocket) -> None:
        hooks["on_connect"] += 1  # a refused one too: its on_disconnect runs
        if ws.query_params.get("token") != "sesame":
            raise AuthenticationFailed(401, "who are you?", {"WWW-Authenticate": "Token"})
        await ws.accept()


@api.websocket_route("/slow-token")
class SlowToken(Token):
    async def on_connect(self, ws: WebSocket) -> None:
        await anyio.sleep(0.2)
        await super().on_connect(ws)


async def stats(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    tasks = anyio.get_running_tasks()
    body = json.dumps(
        {
            "connections": api.connection_count,
            "tasks": len(tasks),
            # What the tasks are, for when their number grows.
            "task_names": Counter(task.name for task in tasks).most_common(5),
            **hooks,
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


api.mount("/stats", stats)
