"""The ASGI contract's shapes, for typing apps, middleware and tests.

They are Starlette's shapes too, so what is typed with either fits both. Scopes and messages are
`MutableMapping`s: an app that asks for a `dict` cannot take every scope, so it is no `ASGIApp`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "Message", "Middleware", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
"""What the server says about one request or connection: ``type``, ``path``, ``headers``, ..."""

Message = MutableMapping[str, Any]
"""One ASGI event, received or sent; its ``type`` says which (``"websocket.receive"``, ...)."""

Receive = Callable[[], Awaitable[Message]]
"""What an app awaits for the next event from the server."""

Send = Callable[[Message], Awaitable[None]]
"""What an app awaits to send an event to the server."""

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application, ``await app(scope, receive, send)``: what `API.mount` takes and middleware wraps."""

Middleware = Callable[[ASGIApp], ASGIApp]
"""An item of ``API(middleware=[...])``: takes the app and returns the one wrapping it (a class, or a
``functools.partial`` of one)."""
