"""`API`: the ASGI application that holds the WebSocket routes, the mounts and the lifespan hooks."""

from __future__ import annotations

import difflib
import inspect
import logging
import math
import sys
import traceback
from collections.abc import Awaitable, Callable, Container, Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Literal, TypedDict, TypeGuard, TypeVar

import anyio
from anyio.abc import TaskGroup

from ._checks import is_positive_int
from ._dispatch import serving
from ._mounted import MountedConnection
from .broadcast import Broadcast, BroadcastBackend, Overflow
from .codecs import Codec, check_codec_names
from .endpoints import WebSocketEndpoint
from .exceptions import CloseCode, ConfigurationError, WebSocketStateError
from .routing import Mount, Route
from .security import OriginPolicy, origin_of
from .serving import ServerOptions, serve
from .types import ASGIApp, Middleware, Receive, Scope, Send
from .views import FunctionView
from .websockets import WebSocket

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = ["API", "RouteOptions"]

logger = logging.getLogger("wsendpoints")

Handler = TypeVar("Handler", bound=Callable[..., Any])
Hook = Callable[[], Any]
LifespanEvent = Literal["startup", "shutdown"]


class RouteOptions(TypedDict, total=False):
    """What a route may say about its connections.

    - ``value_type`` sets both ``receive_type`` and ``send_type``: a codec name
      (``"text"``, the default, ``"bytes"``, ``"json"``, ``"msgpack"``,
      ``"auto"`` or a registered one) or a codec instance. With None (the
      default), ``receive_type`` and ``send_type`` apply; naming either of
      them beside ``value_type`` is refused.
    - ``catch_disconnect`` (views only, default True): whether ``async with ws``
      silences `WebSocketDisconnect`; ``caught_close_codes`` is the finer form,
      the codes it silences (None: ``catch_disconnect`` decides;
      ``wsendpoints.websockets.ALL_CODES``: every code).
    - ``idle_timeout`` (off by default): when the handler has waited
      that many seconds for the client's next message, the connection is
      closed with 1001. Only that wait is timed: a handler busy in
      ``on_receive``, or a view that only sends, is never closed as idle (for
      dead clients there, see the server's ``ping_interval`` and ``ping_timeout``).
    - ``group_queue_size`` (default 100) and ``group_overflow``
      (``"drop_oldest"``, the default, ``"drop_newest"`` or ``"close"``): how
      many group messages wait for a slow client, and what happens past that.
    - ``allowed_origins``: browser origins allowed besides the server's own,
      overriding the API's (see `wsendpoints.security`); None: the API's.
    - ``authenticate`` (views; endpoints override the method): an async hook run
      before the view; its result is ``ws.user``; raising `AuthenticationFailed`
      refuses the handshake with its HTTP status.
    - ``max_message_size`` (default 1 MiB; characters for text, bytes for
      binary): longer messages close with 1009. ``max_message_rate`` (off by
      default): messages a second, in bursts of up to one second's worth;
      faster closes with 1008.
    """

    value_type: str | Codec | None
    receive_type: str | Codec
    send_type: str | Codec
    catch_disconnect: bool
    caught_close_codes: Iterable[int] | Container[int] | None
    idle_timeout: float | None
    group_queue_size: int
    group_overflow: Overflow
    allowed_origins: Sequence[str] | None
    authenticate: Callable[[WebSocket], Awaitable[Any]] | None
    max_message_size: int | None
    max_message_rate: float | None


class API:
    """An ASGI 3 application serving WebSocket endpoints.

    WebSocket connections go to the first route whose pattern matches, then to
    the first mount made with ``websocket=True`` whose prefix does; with no
    match the handshake is refused (HTTP 404 where the server can send a
    response, 403 otherwise). HTTP requests go to the mounts; one that no mount
    takes gets 426 (Upgrade Required) on a WebSocket route's path, else 404.

    ``broadcast`` picks the backend of the groups: ``"memory://"`` (one
    process, the default) or ``"redis://host:port/db"`` (every process sharing
    that Redis), or a `BroadcastBackend`. ``max_connections`` caps the open
    WebSocket connections: past it, new handshakes are refused with HTTP 503
    (or accepted and closed with 1013 where the server cannot send a response).

    ``allowed_origins`` lists the browser origins that may connect besides the
    server's own (``["*"]`` for any); handshakes from other pages are refused
    with 403. ``middleware`` wraps the whole app: each item takes an ASGI app
    and returns one (a middleware class, or ``functools.partial`` of one), the
    first item outermost.
    """

    def __init__(
        self,
        *,
        broadcast: str | BroadcastBackend = "memory://",
        max_connections: int | None = None,
        allowed_origins: Sequence[str] = (),
        middleware: Sequence[Middleware] = (),
    ) -> None:
        if max_connections is not None and not is_positive_int(max_connections):
            raise ConfigurationError(
                f"max_connections must be a positive integer or None, not {max_connections!r}"
            )
        self.max_connections = max_connections
        """The cap on open WebSocket connections (None: no cap)."""
        self.broadcast = Broadcast(broadcast)
        """The groups' hub: ``api.broadcast.subscribe(channel)``, ``members(channel)``."""
        self.origins = OriginPolicy(
            [allowed_origins] if isinstance(allowed_origins, str) else allowed_origins
        )
        """The app-wide origin policy (endpoints and routes may override it)."""
        self.routes: list[Route] = []
        """The WebSocket routes, tried in order."""
        self.mounts: list[Mount] = []
        """The mounted ASGI apps, tried in order after the routes."""
        self._hooks: dict[str, list[Hook]] = {"startup": [], "shutdown": []}
        self._task_group: TaskGroup | None = None
        # A task of the app failed while it ran: its task group has ended before the app.
        self._tasks_failed = False
        # Open connections are counted from routing; once served, each is also in
        # `_serving`, and `go_away()` closes it with 1001 after on_disconnect (a
        # drain) by cancelling its own task group: no cancel scope of the API's.
        self._open = 0
        self._serving: set[serving | MountedConnection] = set()
        # The shielded on_disconnect hooks running now: shielded from their
        # connection's end, but cut with it once the shutdown timeout has passed.
        self._cleanups: set[anyio.CancelScope] = set()
        self._draining = False
        self._cut = False
        self._drained: anyio.Event | None = None
        # The middleware wrap a small app that calls this one back to route: see `__call__`.
        stack: ASGIApp | None = None
        if middleware:
            stack = _Routed(self)
            for wrap in reversed(middleware):
                stack = wrap(stack)
        self._middleware = stack

    async def publish(self, group: str, message: Any, *, exclude: WebSocket | None = None) -> None:
        """Send ``message`` to every connection in ``group``, in every process sharing the backend.

        Each member gets it encoded with its own send codec; ``exclude`` leaves
        one connection out (typically the sender). A message msgpack cannot
        serialise raises `BroadcastError` here.
        """
        await self.broadcast.publish(group, message, exclude=exclude)

    @property
    def task_group(self) -> TaskGroup:
        """The app's task group: tasks started here live as long as the app, not a connection.

        For work that belongs to no connection, such as a feed that publishes to a
        group. It opens before the first startup hook and is cancelled when the
        server shuts down, after the connections have closed and before the
        shutdown hooks run. A task that raises is logged with its traceback and
        cancels the app's other tasks, as in any task group; connections go on
        being served, but the group has ended: from then on this raises
        `WebSocketStateError` saying so. Outside that span (a test without
        ``lifespan(api)``, say) it raises `WebSocketStateError` too.
        """
        if self._task_group is None:
            if self._tasks_failed:
                raise WebSocketStateError(
                    "the app's task group has ended: one of its tasks failed (its traceback is in"
                    " the log), which cancelled the others. A task that must survive its own"
                    " errors catches them."
                )
            raise WebSocketStateError(
                "the app's task group is open only while the app runs, from its startup to its"
                " shutdown (in tests: inside `async with lifespan(api)`)"
            )
        return self._task_group

    @property
    def connection_count(self) -> int:
        """How many WebSocket connections are open (or in their handshake) now."""
        return self._open

    # -- registration --------------------------------------------------------------

    def websocket_route(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[Handler], Handler]:
        """Register the decorated view function (or endpoint class) at ``path``; see `add_websocket`."""
        given: object = path  # typed as a path, but untyped code may hand the view here
        if callable(given):
            # ``@api.websocket_route`` without its path: the function would be replaced by
            # the decorator's inner function, and no route registered, without a word.
            raise ConfigurationError(
                f"@api.websocket_route needs the path: write @api.websocket_route('/path') above "
                f"{getattr(given, '__qualname__', given)}"
            )

        def register(handler: Handler) -> Handler:
            self.add_websocket(path, handler, **options)
            return handler

        return register

    def add_websocket(
        self,
        path: str,
        endpoint: type[WebSocketEndpoint] | Callable[..., Awaitable[None]],
        **options: Unpack[RouteOptions],
    ) -> None:
        """Serve ``endpoint``, a `WebSocketEndpoint` subclass or an async view function, at ``path``.

        The options (see `RouteOptions`) override an endpoint's class
        attributes of the same names; for a view, those left out keep their
        defaults. Unknown options and type names, non-async views, views that
        cannot take the path's parameters and malformed paths raise
        `ConfigurationError` here, not on the first connection.
        """
        given: object = path
        if not isinstance(given, str):
            raise ConfigurationError(f"a route's path is a str such as '/echo', not {given!r}")
        _check_option_names(options, path)
        check_codec_names(options, f"the route {path!r}")
        app: ASGIApp
        if isinstance(endpoint, type):
            if not issubclass(endpoint, WebSocketEndpoint):
                raise ConfigurationError(f"{endpoint.__qualname__} is not a WebSocketEndpoint subclass")
            app = _configured(endpoint, options)
        elif callable(endpoint):
            app = FunctionView(endpoint, **options)
        else:
            raise ConfigurationError(
                f"{endpoint!r} is neither a WebSocketEndpoint subclass nor a view function"
            )
        route = Route(path, app)
        if isinstance(app, FunctionView):
            app.check_params(route.param_names, path)
        self.routes.append(route)

    def mount(
        self,
        prefix: str,
        app: ASGIApp,
        *,
        websocket: bool = False,
        allowed_origins: Sequence[str] | None = None,
    ) -> None:
        """Send HTTP requests under ``prefix`` to ``app``.

        With ``websocket=True`` the WebSocket connections under ``prefix`` that
        no route matches go to ``app`` too (for an app with WebSocket routes of
        its own). It is off by default so that an HTTP-only app mounted at
        ``/`` cannot turn unknown WebSocket paths into server errors. Those
        connections get what the API's own get: the origin check
        (``allowed_origins`` overrides the API's for this mount), a place in
        ``max_connections``, and a 1001 close when the server shuts down.

        ``app`` sees the full ``path`` and ``root_path`` extended by ``prefix``
        (the ASGI convention Starlette and FastAPI follow). Its lifespan is not run.
        """
        self.mounts.append(Mount(prefix, app, websocket=websocket, allowed_origins=allowed_origins))

    def on(self, event: LifespanEvent) -> Callable[[Handler], Handler]:
        """Register the decorated function to run at ``"startup"`` or ``"shutdown"``.

        Hooks run in the order they were registered; they may be sync or async.
        A failing startup hook stops the server from starting.
        """
        given: object = event
        if callable(given):
            # ``@api.on`` without its event.
            raise ConfigurationError(
                f"@api.on needs the event: write @api.on('startup') or @api.on('shutdown') above "
                f"{getattr(given, '__qualname__', given)}"
            )
        if event not in self._hooks:
            raise ConfigurationError(f"unknown lifespan event {event!r}; expected 'startup' or 'shutdown'")

        def register(hook: Handler) -> Handler:
            self._hooks[event].append(hook)
            return hook

        return register

    # -- serving ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Routing is written here rather than in a method that this one awaits: each
        # connection then keeps one coroutine frame fewer for its whole life, and
        # every message resumes one fewer. Middleware therefore wrap a `_Routed`,
        # which marks the call back as routed before re-entering.
        if self._middleware is not None:
            if _routing.get() is not self:
                await self._middleware(scope, receive, send)
                return
            # Tasks of this connection must not skip the middleware if they call the app.
            _routing.set(None)
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        path = _route_path(scope)
        if kind == "websocket":
            # A route, or else a mount that takes WebSockets: the same checks and the same
            # count for both, so that a mounted app is no way around them.
            target = _match(self.routes, path, scope) or _mount_for(self.mounts, path, kind)
            if target is not None:
                if isinstance(target, Route):
                    scope["wsendpoints.broadcast"] = self.broadcast
                    scope["wsendpoints.api"] = self
                origins = target.origins or self.origins
                if not origins.allows(scope):
                    # repr(): the header is the client's, and goes into the log as text.
                    reason = f"origin not allowed: {origin_of(scope)!r}"
                    await _refuse(scope, receive, send, 403, reason)
                    return
                if self._draining:
                    await _refuse(scope, receive, send, 503, "shutting down")
                    return
                if self.max_connections is not None and self._open >= self.max_connections:
                    await _refuse(scope, receive, send, 503, "at capacity")
                    return
                self._open += 1
                try:
                    if isinstance(target, Route):
                        app = target.app
                        if type(app) is FunctionView:
                            # FunctionView.__call__ written here: the view's coroutine is then
                            # awaited by this frame, so each connection keeps a coroutine frame
                            # fewer (~0.3 KiB) and every message resumes one fewer.
                            ws = app._connection(scope, receive, send)
                            if await ws._receive_connect():
                                async with serving(ws, app.name):
                                    await app._serve(ws)
                        elif _is_endpoint(app):
                            # Its dispatch() rather than the instance: the wrapper that the
                            # instance's __await__ returns would be kept as long, for nothing.
                            await app(scope, receive, send).dispatch()
                        else:
                            await app(scope, receive, send)
                    else:
                        await self._serve_mounted(target, scope, receive, send)
                finally:
                    self._open -= 1
                    if self._drained is not None and not self._open:
                        self._drained.set()
                return
        else:
            mount = _mount_for(self.mounts, path, kind)
            if mount is not None:
                await mount.app(mount.scope(scope), receive, send)
                return
        if kind == "websocket":
            logger.info("refused WebSocket connection to %s: no route", scope["path"])
            ws = WebSocket(scope, receive, send)
            if await ws._receive_connect():
                await ws._refuse(404, CloseCode.NORMAL_CLOSURE)
        elif kind == "http":
            if _has_route(self.routes, path):
                # A WebSocket route reached without the upgrade (a browser tab, curl, a proxy
                # that drops the Upgrade header): say so, rather than "no such path".
                await _respond(
                    send, 426, _UPGRADE_REQUIRED, (b"upgrade", b"websocket"), (b"connection", b"Upgrade")
                )
            else:
                await _respond(send, 404, b"Not Found")

    async def close_connections(self, timeout: float = math.inf) -> None:
        """Close every open connection with 1001 and refuse new ones; wait until each has ended.

        Each connection's ``on_disconnect`` has run when this returns, unless
        ``timeout`` seconds passed first, or this call was cancelled (as a
        second Ctrl-C does): then the connections still open are cut, their
        ``on_disconnect`` cancelled where it waits. Servers call this on shutdown.
        """
        logger.info("shutting down: closing %d connection(s)", self._open)
        self._draining = True
        self._drained = anyio.Event()
        for connection in list(self._serving):
            connection.go_away()
        waiting = anyio.move_on_after(timeout)
        try:
            if self._open:
                with waiting:
                    await self._drained.wait()
        finally:
            if self._open:
                when = f"after {timeout} s" if waiting.cancelled_caught else "when the wait was cut short"
                logger.warning("cut %d connection(s) still open %s", self._open, when)
                # Past the timeout no clean-up is waited for: the server would wait
                # on a shielded on_disconnect for as long as it takes (trio), or
                # cancel it only after a grace period of its own (uvicorn).
                self._cut = True
                for cleanup in list(self._cleanups):
                    cleanup.cancel()

    async def _serve_mounted(self, mount: Mount, scope: Scope, receive: Receive, send: Send) -> None:
        connection = MountedConnection(receive, send)
        self._served(connection)
        try:
            await mount.app(mount.scope(scope), connection.receive, connection.send)
        finally:
            self._served_no_more(connection)

    def _served(self, connection: serving | MountedConnection) -> None:
        """A connection has started serving: drain it with the others (or now)."""
        self._serving.add(connection)
        if self._draining:
            connection.go_away()

    def _served_no_more(self, connection: serving | MountedConnection) -> None:
        """A connection has left serving: nothing left to drain there."""
        self._serving.discard(connection)

    def _cleaning_up(self, cleanup: anyio.CancelScope) -> None:
        """An ``on_disconnect`` has started, in ``cleanup``: cut it if shutdown runs out of time."""
        self._cleanups.add(cleanup)
        if self._cut:
            cleanup.cancel()

    def _cleaned_up(self, cleanup: anyio.CancelScope) -> None:
        """An ``on_disconnect`` has ended: nothing left to cut there."""
        self._cleanups.discard(cleanup)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        try:
            # The backend runs for the whole life of the app, around the hooks.
            broadcast = await self.broadcast.__aenter__()
        except Exception:
            logger.exception("the broadcast backend %s did not start", self.broadcast.backend.url)
            await send({"type": "lifespan.startup.failed", "message": traceback.format_exc()})
            return
        try:
            started = shutting_down = False
            failure: str | None = None
            try:
                async with anyio.create_task_group() as tasks:
                    self._task_group = tasks
                    failure = await self._run_hooks("startup")
                    if failure is None:
                        await send({"type": "lifespan.startup.complete"})
                        started = True
                        await receive()
                        shutting_down = True
                    tasks.cancel_scope.cancel()
            except Exception as exc:
                # A task failed, and the group cancelled the others and whatever this
                # was waiting for. Before startup completed, startup fails; after, the
                # connections and the shutdown hooks do not depend on the app's tasks.
                logger.error("a task of the app failed; its other tasks were cancelled", exc_info=exc)
                if failure is None:  # else a startup hook's failure comes first
                    failure = "".join(traceback.format_exception(exc))
                self._tasks_failed = started and not shutting_down
            finally:
                self._task_group = None
            if not started:
                await send({"type": "lifespan.startup.failed", "message": failure})
                return
            if not shutting_down:
                await receive()
                self._tasks_failed = False
            failure = await self._run_hooks("shutdown")
        finally:
            await broadcast.__aexit__(None, None, None)
        if failure is not None:
            await send({"type": "lifespan.shutdown.failed", "message": failure})
        else:
            await send({"type": "lifespan.shutdown.complete"})

    async def _run_hooks(self, event: str) -> str | None:
        failure = None
        for hook in self._hooks[event]:
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("%s hook %s failed", event, getattr(hook, "__qualname__", hook))
                failure = traceback.format_exc()
                if event == "startup":
                    # Later startup hooks may rely on this one; shutdown hooks
                    # are independent clean-ups and all get their chance.
                    break
        return failure

    def run(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        backend: Literal["asyncio", "trio"] = "asyncio",
        log_level: str = "info",
        max_message_size: int = ServerOptions.max_message_size,
        ping_interval: float | None = ServerOptions.ping_interval,
        ping_timeout: float | None = ServerOptions.ping_timeout,
        max_queue: int = ServerOptions.max_queue,
        shutdown_timeout: float = ServerOptions.shutdown_timeout,
        compression: bool = ServerOptions.compression,
    ) -> None:
        """Serve until SIGINT or SIGTERM: uvicorn on asyncio, or hypercorn on trio.

        The limits are `ServerOptions`' (see there). On shutdown every connection
        is closed with 1001 and its ``on_disconnect`` runs, then the shutdown hooks.
        """
        options = ServerOptions(
            max_message_size=max_message_size,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_queue=max_queue,
            shutdown_timeout=shutdown_timeout,
            compression=compression,
        )
        serve(self, host=host, port=port, backend=backend, options=options, log_level=log_level)


_routing: ContextVar[API | None] = ContextVar("wsendpoints.routing", default=None)
"""The API a `_Routed` is calling back, so that it routes instead of entering its middleware again."""


class _Routed:
    """The app at the heart of an API's middleware: the API itself, past the middleware.

    A context variable rather than a mark in the scope, so that a middleware
    that builds a scope of its own cannot send the call round the stack again.
    """

    __slots__ = ("_api",)

    def __init__(self, api: API) -> None:
        self._api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _routing.set(self._api)
        try:
            await self._api(scope, receive, send)
        finally:
            _routing.reset(token)


def _match(routes: list[Route], path: str, scope: Scope) -> Route | None:
    """The first route matching ``path``, its parameters added to ``scope["path_params"]``."""
    # Not inline in `API.__call__`: a loop suspended in its body would keep the
    # list's iterator alive for the connection's whole life.
    for route in routes:
        params = route.match(path)
        if params is not None:
            # Added to the server's own scope (one per connection, as Starlette
            # does) rather than to a copy: a dict fewer held by every connection.
            scope["path_params"] = {**scope["path_params"], **params} if "path_params" in scope else params
            return route
    return None


def _is_endpoint(app: object) -> TypeGuard[type[WebSocketEndpoint]]:
    return isinstance(app, type) and issubclass(app, WebSocketEndpoint)


def _has_route(routes: list[Route], path: str) -> bool:
    # Not a generator expression in `API.__call__`: it would make `path` a cell, one more
    # object that every connection keeps.
    return any(route.match(path) is not None for route in routes)


_UPGRADE_REQUIRED = b"Upgrade Required: this path takes WebSocket connections only"


async def _respond(send: Send, status: int, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    """A plain-text HTTP response, for requests that reach no mount."""
    length = str(len(body)).encode()
    start = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", length), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


def _mount_for(mounts: list[Mount], path: str, kind: str) -> Mount | None:
    for mount in mounts:
        if (kind == "http" or mount.websocket) and mount.match(path):
            return mount
    return None


def _route_path(scope: Scope) -> str:
    """The path below the root path: servers and mounts that prefix ``path`` with it are undone.

    Others (hypercorn's ``--root-path``) leave ``path`` as it is; a path that merely starts
    with the same letters (``/chatroom`` under ``/chat``) is not under it.
    """
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "").rstrip("/")
    if root_path and path.startswith(root_path):
        below = path[len(root_path) :]
        if not below:
            return "/"
        if below[0] == "/":
            return below
    return path


_OPTION_NAMES = sorted(RouteOptions.__optional_keys__)


def _check_option_names(options: Mapping[str, object], path: str) -> None:
    """Refuse a misspelt option: an endpoint would take it as one more class attribute, unread."""
    unknown = sorted(options.keys() - RouteOptions.__optional_keys__)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, _OPTION_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigurationError(
            f"the route {path!r} has no option {name!r}{hint}; the options are {', '.join(_OPTION_NAMES)}"
        )


def _configured(endpoint: type[WebSocketEndpoint], options: RouteOptions) -> type[WebSocketEndpoint]:
    """``endpoint`` with the route's options in place of its class attributes."""
    view_only = {"catch_disconnect", "caught_close_codes", "authenticate"} & options.keys()
    if view_only:
        instead = []
        if view_only - {"authenticate"}:
            instead.append("learns of disconnects in its on_disconnect method")
        if "authenticate" in view_only:
            instead.append("overrides its authenticate method")
        raise ConfigurationError(
            f"{' and '.join(sorted(view_only))} {'applies' if len(view_only) == 1 else 'apply'} to "
            f"function views only: an endpoint {' and '.join(instead)}"
        )
    attributes: dict[str, Any] = dict(options)
    if "value_type" not in options and ("receive_type" in options or "send_type" in options):
        # A route naming one direction keeps the class's codec for the other.
        current = endpoint._options
        attributes = {
            "receive_type": current["receive_type"],
            "send_type": current["send_type"],
            **attributes,
        }
        attributes["value_type"] = None
    if not attributes:
        return endpoint
    return type(
        endpoint.__name__,
        (endpoint,),
        {**attributes, "__module__": endpoint.__module__, "__qualname__": endpoint.__qualname__},
    )


async def _refuse(scope: Scope, receive: Receive, send: Send, status_code: int, reason: str) -> None:
    logger.info("refused WebSocket connection to %s: %s", scope["path"], reason)
    ws = WebSocket(scope, receive, send)
    if not await ws._receive_connect():
        return
    await ws._refuse(status_code, CloseCode.POLICY_VIOLATION, reason=f"server {reason}")
