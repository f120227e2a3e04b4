"""wsendpoints and Starlette together, both ways round.

1. ``app``: a Starlette application that serves a wsendpoints endpoint among its own routes.
   An endpoint class is an ASGI application, so a ``WebSocketRoute`` takes it as it is::

       uvicorn examples.starlette_mount:app

2. ``api``: a wsendpoints `API` that serves the same endpoint and mounts the same Starlette
   routes for HTTP::

       wsendpoints run examples.starlette_mount:api

Either way ``/ws/echo`` echoes JSON and ``/health`` answers ``ok``. The difference is what
surrounds the endpoint. Inside an `API`, the connection gets what the `API` adds: the origin
check, ``max_connections``, groups (``ws.join``, ``api.publish``) and the graceful drain of
``wsendpoints run``. Inside Starlette, the endpoint keeps what it does itself (its codecs,
hooks, background tasks, limits and ``authenticate``) but not those; a ``ws.join`` there raises
`WebSocketStateError`. So the second form is the one to prefer when you can; the first fits an
existing Starlette or FastAPI app that gains one WebSocket route.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute

from wsendpoints import API, WebSocket, WebSocketEndpoint

__all__ = ["Echo", "api", "app"]


class Echo(WebSocketEndpoint):
    """JSON in, ``{"echo": message}`` out."""

    value_type = "json"

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        await ws.send({"echo": message})


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


# 1. The endpoint inside Starlette.
app = Starlette(routes=[Route("/health", health), WebSocketRoute("/ws/echo", Echo)])

# 2. Starlette's HTTP routes inside an API that serves the endpoint.
api = API()
api.add_websocket("/ws/echo", Echo)
api.mount("/", Starlette(routes=[Route("/health", health)]))


if __name__ == "__main__":
    api.run()
