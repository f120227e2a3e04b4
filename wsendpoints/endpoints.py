"""`WebSocketEndpoint`: a class whose hooks handle one connection each."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Generator, Sequence
from typing import Any, ClassVar

import anyio

from ._dispatch import authenticate, serving
from .broadcast.hub import Overflow
from .codecs import Codec, check_codec_names
from .exceptions import CloseCode, ConfigurationError
from .types import Receive, Scope, Send
from .websockets import DEFAULT_MAX_MESSAGE_SIZE, ConnectionState, WebSocket, connection_options

__all__ = ["WebSocketEndpoint"]

logger = logging.getLogger("wsendpoints")

_CONNECTED = ConnectionState.CONNECTED
# Starlette's WebSocketEndpoint.encoding values that name a codec; value_type takes the same names.
_STARLETTE_ENCODINGS = frozenset({"text", "bytes", "json"})


class WebSocketEndpoint:
    """Subclass and override the hooks; one instance serves one connection.

    - ``on_connect(ws)`` runs first. The default accepts. If an override returns
      having neither accepted nor closed, the connection is accepted for it;
      closing here refuses the handshake.
    - ``on_receive(ws, message)`` runs for each message, in order, decoded with
      ``receive_type``. ``ws.send()`` encodes with ``send_type``.
    - ``on_disconnect(ws, close_code)`` runs exactly once for every connection
      whose ``on_connect`` ran, whatever ended it, shielded from cancellation
      (only a shutdown past its timeout cuts it short).

    The class attributes (``value_type``, ``receive_type``, ``send_type``,
    ``idle_timeout``, ``max_message_size``, ``max_message_rate``,
    ``allowed_origins``, ``group_queue_size``, ``group_overflow``) mean what
    the route options of the same names mean, and a route's options override
    them. Tasks started in ``ws.task_group`` are cancelled when the connection
    ends. An exception in a hook closes the connection with 1011 and is logged
    with its traceback.

    An endpoint class is itself an ASGI application: ``await Endpoint(scope,
    receive, send)`` serves one connection, so it can be mounted in other
    frameworks (a Starlette ``WebSocketRoute``, for instance).
    """

    value_type: ClassVar[str | Codec | None] = None
    """The codec of both directions, a name (``"json"``, ...) or an instance; None: the two below."""
    receive_type: ClassVar[str | Codec] = "text"
    """The codec that decodes what ``on_receive`` gets, when ``value_type`` is None."""
    send_type: ClassVar[str | Codec] = "text"
    """The codec that encodes what ``ws.send()`` sends, when ``value_type`` is None."""
    idle_timeout: ClassVar[float | None] = None
    """Seconds to wait for the client's next message before closing with 1001; None: no limit.

    Each wait is timed on its own: time spent in ``on_receive`` does not count,
    and what the endpoint sends does not restart it.
    """
    group_queue_size: ClassVar[int] = 100
    """Group messages queued for this connection before ``group_overflow`` applies."""
    group_overflow: ClassVar[Overflow] = "drop_oldest"
    """What a full group queue does: ``"drop_oldest"``, ``"drop_newest"`` or ``"close"`` (1008)."""
    allowed_origins: ClassVar[Sequence[str] | None] = None
    """Browser origins allowed besides the server's own (``["*"]``: any); None: the API's setting."""
    max_message_size: ClassVar[int | None] = DEFAULT_MAX_MESSAGE_SIZE
    """Longest message accepted (characters for text, bytes for binary); longer closes with 1009."""
    max_message_rate: ClassVar[float | None] = None
    """Messages a second a client may send, in bursts of up to one second's worth; faster closes 1008."""

    _options: ClassVar[dict[str, Any]] = connection_options()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        encoding = own.get("encoding")
        # Only Starlette's values that change what on_receive gets: ported as it stood, the endpoint
        # would serve text unseen. None is Starlette's default, and a common one for an attribute
        # of the class's own; a list or dict is the class's own too.
        if isinstance(encoding, str) and encoding in _STARLETTE_ENCODINGS:
            raise ConfigurationError(
                f"{cls.__qualname__}.encoding is Starlette's: write value_type = {encoding!r} instead"
            )
        check_codec_names(own, cls.__qualname__)
        if (
            "value_type" not in own
            and cls.value_type is not None
            and own.keys() & {"receive_type", "send_type"}
        ):
            # A subclass naming one direction keeps its parent's value_type for the other only,
            # as a route's option does: the inherited value_type would override both.
            if "receive_type" not in own:
                cls.receive_type = cls.value_type
            if "send_type" not in own:
                cls.send_type = cls.value_type
            cls.value_type = None
        # Resolved when the class is defined, so a bad option fails at import.
        cls._options = connection_options(
            value_type=cls.value_type,
            receive_type=cls.receive_type,
            send_type=cls.send_type,
            idle_timeout=cls.idle_timeout,
            group_queue_size=cls.group_queue_size,
            group_overflow=cls.group_overflow,
            max_message_size=cls.max_message_size,
            max_message_rate=cls.max_message_rate,
        )
        # A forgotten `async` fails here, not on every connection with a TypeError and 1011.
        for hook in ("authenticate", "on_connect", "on_receive", "on_disconnect"):
            if not inspect.iscoroutinefunction(getattr(cls, hook)):
                raise ConfigurationError(f"{cls.__qualname__}.{hook} must be an 'async def' method")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.websocket = WebSocket(scope, receive, send, **self._options)
        """The connection this instance serves: the ``ws`` every hook is given."""

    def __await__(self) -> Generator[Any, None, None]:
        return self.dispatch().__await__()

    async def authenticate(self, ws: WebSocket) -> Any:
        """Check the handshake before ``on_connect``; what it returns becomes ``ws.user``.

        Raise `AuthenticationFailed` to refuse the connection with an HTTP
        status. The default authenticates nobody and refuses nobody.
        """
        return None

    async def on_connect(self, ws: WebSocket) -> None:
        """Decide on the handshake. The default accepts; closing here refuses it."""
        await ws.accept()

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        """Handle one message. The default does nothing."""

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        """Clean up after the connection. The default does nothing."""

    async def dispatch(self) -> None:
        """Serve the connection: the hooks, the receive loop, and the cleanup."""
        ws = self.websocket
        if not await ws._receive_connect():
            return
        connected = False
        try:
            async with serving(ws, type(self).__qualname__):
                if not await authenticate(ws, self.authenticate):
                    return
                connected = True
                await self.on_connect(ws)
                state = ws.connection_state
                if state is ConnectionState.CONNECTING:
                    await ws.accept()
                elif state is not _CONNECTED:
                    return
                # The receive loop, with `WebSocket.receive` written inline (keep the two
                # in step): each message costs one coroutine, on_receive's, and the loop
                # lives in this frame rather than in one of its own, which every
                # connection would keep and every message would resume. `ws._receive`
                # is read for each message: it changes when the connection closes.
                on_receive = self.on_receive
                key = ws._receive_key
                decode = ws._decode
                while True:
                    receive = ws._receive
                    message = await receive()
                    data = message.get(key)
                    if data is None:
                        data = await ws._payload(message, ws._receive_codec)
                    if len(data) > ws._max_size:
                        raise await ws._too_big(data)
                    if decode is not None:
                        try:
                            data = decode(data)
                        except ValueError as exc:
                            raise await ws._reject_message(CloseCode.INVALID_PAYLOAD, str(exc)) from exc
                    await on_receive(ws, data)
        finally:
            if connected:
                await _run_on_disconnect(self, ws)


async def _run_on_disconnect(endpoint: WebSocketEndpoint, ws: WebSocket) -> None:
    # Out of `dispatch`, whose frame every connection keeps: its locals would be kept too.
    # Shielded from whatever ended the connection; only a shutdown that has run out of
    # time cancels the scope itself (API.close_connections).
    api = ws.scope.get("wsendpoints.api")
    with anyio.CancelScope(shield=True) as cleanup:
        if api is not None:
            api._cleaning_up(cleanup)
        try:
            await endpoint.on_disconnect(ws, ws.close_code or CloseCode.ABNORMAL_CLOSURE)
        except Exception:
            logger.exception("error in %s.on_disconnect on %s", type(endpoint).__qualname__, ws.path)
        finally:
            if api is not None:
                api._cleaned_up(cleanup)
