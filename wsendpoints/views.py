"""Function views: ``async def view(ws, **path_params)``, the decorator style."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Container, Iterable, Sequence
from typing import Any

from ._dispatch import authenticate, serving
from .broadcast.hub import Overflow
from .codecs import Codec
from .exceptions import ConfigurationError
from .types import Receive, Scope, Send
from .websockets import ALL_CODES, DEFAULT_MAX_MESSAGE_SIZE, WebSocket, connection_options

__all__ = ["FunctionView", "View"]

View = Callable[..., Awaitable[None]]
"""A function view: ``async def view(ws, **path_params) -> None``."""


class FunctionView:
    """The ASGI application that serves a function view, one call per connection.

    The options are those of ``API.websocket_route``. ``caught_close_codes``,
    when given, says which close codes ``async with ws`` silences and overrides
    ``catch_disconnect`` (True: every code; False: none): the codes themselves,
    or a container that answers ``code in it``, such as
    ``wsendpoints.websockets.ALL_CODES`` (every code).
    """

    def __init__(
        self,
        view: View,
        *,
        value_type: str | Codec | None = None,
        receive_type: str | Codec = "text",
        send_type: str | Codec = "text",
        catch_disconnect: bool = True,
        caught_close_codes: Iterable[int] | Container[int] | None = None,
        idle_timeout: float | None = None,
        group_queue_size: int = 100,
        group_overflow: Overflow = "drop_oldest",
        allowed_origins: Sequence[str] | None = None,
        authenticate: Callable[[WebSocket], Awaitable[Any]] | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_message_rate: float | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(view):
            raise ConfigurationError(
                f"WebSocket view {getattr(view, '__qualname__', view)!r} must be an 'async def' function"
            )
        self._options = connection_options(
            value_type=value_type,
            receive_type=receive_type,
            send_type=send_type,
            idle_timeout=idle_timeout,
            group_queue_size=group_queue_size,
            group_overflow=group_overflow,
            max_message_size=max_message_size,
            max_message_rate=max_message_rate,
        )
        if authenticate is not None and not inspect.iscoroutinefunction(authenticate):
            raise ConfigurationError(f"authenticate hook {authenticate!r} must be an 'async def' function")
        self.view = view
        self.allowed_origins = allowed_origins
        self.authenticate = authenticate
        self.name = getattr(view, "__qualname__", repr(view))
        self._caught: Container[int]
        if isinstance(caught_close_codes, Iterable):
            self._caught = frozenset(int(code) for code in caught_close_codes)
        elif caught_close_codes is not None:
            # ALL_CODES, or another container that cannot be listed: asked for each code.
            self._caught = caught_close_codes
        else:
            self._caught = ALL_CODES if catch_disconnect else frozenset()

    def check_params(self, names: list[str], path: str) -> None:
        """Refuse a view that cannot take the path parameters of ``path`` as keyword arguments."""
        try:
            inspect.signature(self.view).bind(None, **dict.fromkeys(names))
        except TypeError as exc:
            raise ConfigurationError(
                f"view {self.name} cannot take the parameters of {path!r} "
                f"({', '.join(names) or 'none'}) after the WebSocket: {exc}"
            ) from None

    def _connection(self, scope: Scope, receive: Receive, send: Send) -> WebSocket:
        """The `WebSocket` of one connection to this view, with the route's options."""
        return WebSocket(scope, receive, send, caught_close_codes=self._caught, **self._options)

    def _serve(self, ws: WebSocket) -> Awaitable[None]:
        """What runs as the connection's handler: the view, after the ``authenticate`` hook if any.

        Without a hook this is the view's own coroutine, with no frame of ours
        around it (the API awaits it straight inside `serving`).
        """
        if self.authenticate is None:
            return self.view(ws, **ws.scope.get("path_params", {}))
        return self._authenticated(ws, self.authenticate)

    async def _authenticated(self, ws: WebSocket, hook: Callable[[WebSocket], Awaitable[Any]]) -> None:
        if await authenticate(ws, hook):
            await self.view(ws, **ws.scope.get("path_params", {}))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # `API.__call__` does the same for its routes, in its own frame: keep the two in step.
        ws = self._connection(scope, receive, send)
        if await ws._receive_connect():
            async with serving(ws, self.name):
                await self._serve(ws)
