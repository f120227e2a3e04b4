"""One authentication middleware for HTTP and WebSocket alike, in plain ASGI.

Run ``python examples/auth_middleware.py`` and try it::

    curl -i http://127.0.0.1:8000/api/me                                       # 401
    curl -i -H "Authorization: Bearer alice-token" http://127.0.0.1:8000/api/me  # {"user": "alice"}
    python -m websockets ws://127.0.0.1:8000/whoami                            # refused: HTTP 401

`BearerAuthMiddleware` sits in front of everything the `API` serves, its
WebSocket routes and its mounted HTTP apps alike (``API(middleware=[...])``). It
reads the bearer token of the ``Authorization`` header and looks it up:

- a known token: the user goes into ``scope["user"]`` and the request goes on.
  Starlette's ``request.user`` reads it there; a WebSocket endpoint reads
  ``ws.scope["user"]``, or returns it from its ``authenticate`` method to make it
  ``ws.user`` (as `WhoAmI` below does).
- no token, or an unknown one: HTTP requests get ``401`` with a
  ``WWW-Authenticate`` header. A WebSocket handshake gets the same ``401``
  response through the ASGI ``websocket.http.response`` extension (uvicorn and
  hypercorn support it); a server without it can only refuse with ``403``, which
  is what closing before accepting means. Either way the endpoint never runs.

A middleware or the ``authenticate`` hook? The hook belongs to one WebSocket route
and sees the connection; a middleware covers every route and every mounted app
in one place, which is what a token check usually wants.

Browsers cannot set headers on a WebSocket handshake. For a browser page, read a
session cookie here instead (keep the origin check on: it is what stops another
site from opening a connection with that cookie) or a short-lived token in the
query string.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from wsendpoints import API, WebSocket, WebSocketEndpoint
from wsendpoints.types import ASGIApp, Receive, Scope, Send

TOKENS = {"alice-token": "alice", "bob-token": "bob"}
"""token -> user; a real app asks its session store or verifies a signed token."""


class BearerAuthMiddleware:
    """Let through requests whose ``Authorization: Bearer <token>`` names a user; refuse the others."""

    def __init__(self, app: ASGIApp, tokens: Mapping[str, str], realm: str = "wsendpoints") -> None:
        self.app = app
        self.tokens = tokens
        self.challenge = f'Bearer realm="{realm}"'.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan: nothing to authenticate
            return
        user = self.user_for(scope)
        if user is not None:
            await self.app({**scope, "user": user}, receive, send)
        elif scope["type"] == "http":
            await self.refuse(send, "http.response")
        else:
            await self.refuse_handshake(scope, receive, send)

    def user_for(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    return self.tokens.get(token.strip())
        return None

    async def refuse_handshake(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The server's 'websocket.connect' comes first; a client that left already needs no answer.
        if (await receive())["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            await self.refuse(send, "websocket.http.response")
        else:
            # Closing before accepting: the server answers the handshake with 403.
            await send({"type": "websocket.close", "code": 1008})

    async def refuse(self, send: Send, prefix: str) -> None:
        body = b"401 Unauthorized: send 'Authorization: Bearer <token>'"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", self.challenge),
        ]
        await send({"type": f"{prefix}.start", "status": 401, "headers": headers})
        await send({"type": f"{prefix}.body", "body": body})


api = API(middleware=[functools.partial(BearerAuthMiddleware, tokens=TOKENS)])


@api.websocket_route("/whoami")
class WhoAmI(WebSocketEndpoint):
    """Greets the user the middleware found, then echoes."""

    async def authenticate(self, ws: WebSocket) -> Any:
        # Only authenticated handshakes get here: hand the middleware's user to ws.user.
        return ws.scope["user"]

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(f"Hello, {ws.user}")

    async def on_receive(self, ws: WebSocket, message: str) -> None:
        await ws.send(f"{ws.user} said: {message}")


async def me(scope: Scope, receive: Receive, send: Send) -> None:
    """A plain ASGI HTTP app, mounted at /api: it answers with the user the middleware found."""
    body = json.dumps({"user": scope["user"], "path": scope["path"]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


api.mount("/api", me)


if __name__ == "__main__":
    api.run()
