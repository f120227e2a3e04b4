"""`WebSocket`: one connection, over the ASGI WebSocket contract.

The connection moves through four states (`ConnectionState`)::

    CONNECTING --accept()--> CONNECTED --close()--------> CLOSED        (the app closed it)
         |                       |
         |                       +--client leaves--> DISCONNECTED  (the client closed it or went away)
         +--close() before accept()--> CLOSED  (handshake refused: the client sees HTTP 403)

Every call checks the state first and fails at once with a clear error rather
than waiting on a server that will never answer. For receiving and sending
messages, the check costs nothing per message: the callables they await are
swapped on each change of state (see `WebSocket._enter`).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import sys
from collections.abc import Awaitable, Callable, Container, Iterable, Mapping
from enum import Enum
from http import HTTPStatus
from types import MappingProxyType, SimpleNamespace, TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
import anyio.lowlevel

from ._checks import is_finite_number, is_positive_int
from .codecs import (
    _UJSON_ENCODE_ERRORS,
    AutoCodec,
    BytesCodec,
    Codec,
    MsgPackCodec,
    ORJSONCodec,
    TextCodec,
    UJSONCodec,
    _frame,
    _not_json,
    _ujson_dumps,
    resolve_codec,
)
from .datastructures import Address, Headers, QueryParams, parse_cookies
from .exceptions import (
    CloseCode,
    ConfigurationError,
    WebSocketDisconnect,
    WebSocketError,
    WebSocketProtocolError,
    WebSocketStateError,
)
from .types import Message, Receive, Scope, Send

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from .applications import API
    from .broadcast.hub import ConnectionOutbox, Overflow

__all__ = ["ALL_CODES", "ConnectionState", "WebSocket"]

logger = logging.getLogger("wsendpoints")

_TEXT = resolve_codec("text")
_BYTES = resolve_codec("bytes")
_JSON = resolve_codec("json")
_MSGPACK = resolve_codec("msgpack")
_HTTP_RESPONSE = "websocket.http.response"
_HTTP_RESPONSE_START = "websocket.http.response.start"
# Built-in codecs that pass payloads through unchanged: receive() skips their decode call.
_IDENTITY_DECODE = (TextCodec, BytesCodec, AutoCodec)
# The one type a built-in codec sends unchanged: send() skips the encode call for it.
_PLAIN_TYPE: dict[type, type] = {TextCodec: str, BytesCodec: bytes}
# The frame a built-in codec's output always goes in; other codecs' output is looked at.
_SEND_KEY: dict[type, str] = {
    TextCodec: "text",
    UJSONCodec: "text",
    ORJSONCodec: "text",
    BytesCodec: "bytes",
    MsgPackCodec: "bytes",
}
# Errors a server raises for what the app sent (a lone surrogate in text, say),
# not because the client left; they are the app's bug, so they are not hidden.
_APP_ERRORS = (UnicodeError, TypeError)
# What send() lets through rather than reading it as the client having left: the
# app's errors above, and ours (a send in the wrong state).
_NOT_GONE = (*_APP_ERRORS, WebSocketError)
# What the receive wrappers of limited connections return when the client stayed
# silent too long or sent too fast; never sent by a server.
_IDLE = "wsendpoints.idle"
_TOO_FAST = "wsendpoints.too_fast"
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
# A close frame that a stuck client does not take within this is given up on.
_CLOSE_TIMEOUT = 5.0
# What a close frame may carry (RFC 6455, 5.5 and 7.4): 1004 is reserved, 1005, 1006 and
# 1015 only report what happened, 3000-4999 belong to libraries and applications; the
# reason has room for 123 bytes of UTF-8.
_SENDABLE_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)))
_MAX_REASON = 123
# A header name is an HTTP token (RFC 9110, 5.6.2); a value may not break the line.
_HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_BREAK = re.compile(rb"[\r\n\0]")


class ConnectionState(Enum):
    """Where a connection is; see the module docstring for the transitions."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"
    DISCONNECTED = "disconnected"


_CONNECTING = ConnectionState.CONNECTING
_CONNECTED = ConnectionState.CONNECTED
_CLOSED = ConnectionState.CLOSED
_DISCONNECTED = ConnectionState.DISCONNECTED


class _AllCodes:
    def __contains__(self, code: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "ALL_CODES"


ALL_CODES: Container[int] = _AllCodes()
"""Every close code: what ``async with ws`` silences by default."""


class WebSocket:
    """One WebSocket connection.

    ``receive()`` and ``send()`` go through the connection's codecs (see
    `wsendpoints.codecs`); the ``receive_<type>``/``send_<type>`` methods use a
    given built-in codec instead; ``receive_event()``/``send_event()`` exchange
    raw ASGI events.

    ``async with ws:`` accepts on entry and closes on exit, with 1011 if the
    block raised, and silences `WebSocketDisconnect` whose code is in
    ``caught_close_codes`` (every code by default), also when a task group
    raises it in an exception group holding nothing else. ``async for message in ws``
    is ``while True: message = await ws.receive()``: it ends by raising
    `WebSocketDisconnect`, which that block silences.

    ``ws.api`` is the `API` serving the connection, so that a handler in a module
    of its own publishes with ``await ws.api.publish(...)``, importing no ``api``.
    """

    __slots__ = (
        "_caught",
        "_closed_elsewhere",
        "_connect_received",
        "_decode",
        "_encode",
        "_group_overflow",
        "_group_queue_size",
        "_handler_task",
        "_headers",
        "_idle_timeout",
        "_max_size",
        "_messages",
        "_outbox",
        "_plain",
        "_receive",
        "_receive_codec",
        "_receive_key",
        "_send",
        "_send_codec",
        "_send_data",
        "_send_key",
        "_server_receive",
        "_state",
        "_task_group",
        "_ujson",
        "_user_state",
        "close_code",
        "close_reason",
        "scope",
        "user",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        receive_type: str | Codec = "text",
        send_type: str | Codec = "text",
        caught_close_codes: Container[int] = ALL_CODES,
        idle_timeout: float | None = None,
        group_queue_size: int = 100,
        group_overflow: Overflow = "drop_oldest",
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_message_rate: float | None = None,
    ) -> None:
        if scope["type"] != "websocket":
            raise WebSocketProtocolError(f"a WebSocket needs a 'websocket' scope, not {scope['type']!r}")
        self.scope = scope
        """The ASGI connection scope, as the server gave it (plus ``path_params``)."""
        # The handshake's event comes straight from the server: the limits below are
        # on the client's messages, and a slow 'websocket.connect' is not an idle client.
        self._server_receive = receive
        if idle_timeout is not None:
            receive = _idle_receiver(receive, idle_timeout)
        if max_message_rate is not None:
            receive = _rate_limited_receiver(receive, max_message_rate)
        self._messages = receive
        self._idle_timeout = idle_timeout
        # Text is measured in characters, binary in bytes: no per-message encode.
        self._max_size = max_message_size if max_message_size is not None else sys.maxsize
        self._send = send
        self._receive: Receive
        self._send_data: Send
        self._state: ConnectionState
        self._enter(_CONNECTING)
        self._connect_received = False
        # Closed by the framework or by a task other than the handler: the handler did
        # not close it, so its later sends raise WebSocketDisconnect, not a state error.
        self._closed_elsewhere = False
        # The handler's task (its anyio id), set by the dispatcher that serves the connection.
        self._handler_task: int | None = None
        # Routes hand over codecs they resolved and checked at registration.
        receive_codec = resolve_codec(receive_type) if isinstance(receive_type, str) else receive_type
        self._receive_codec = receive_codec
        # "any" frames look for text first; the slow path takes bytes.
        self._receive_key = "bytes" if receive_codec.frame == "bytes" else "text"
        self._decode = None if type(receive_codec) in _IDENTITY_DECODE else receive_codec.decode
        self._send_codec = resolve_codec(send_type) if isinstance(send_type, str) else send_type
        self._encode = self._send_codec.encode
        self._plain = _PLAIN_TYPE.get(type(self._send_codec))
        # send() runs UJSONCodec's encode inline, not a subclass's.
        self._ujson = type(self._send_codec) is UJSONCodec
        self._send_key = _SEND_KEY.get(type(self._send_codec))
        self._group_queue_size = group_queue_size
        self._group_overflow: Overflow = group_overflow
        self._outbox: ConnectionOutbox | None = None
        self._caught = caught_close_codes
        self._task_group: TaskGroup | None = None
        self._headers: Headers | None = None
        self._user_state: SimpleNamespace | None = None
        self.user: Any = None
        """What the route's ``authenticate`` hook returned (None without one)."""
        self.close_code: int | None = None
        """How the connection ended: the code the app closed with, or the client's."""
        self.close_reason = ""
        """The reason that went with ``close_code``."""

    # -- the handshake request -------------------------------------------------

    @property
    def connection_state(self) -> ConnectionState:
        """Where the connection is: connecting, connected, closed (by the app) or disconnected."""
        return self._state

    @property
    def path(self) -> str:
        """The request path (the full path, including any mount prefix)."""
        return self.scope["path"]  # type: ignore[no-any-return]

    @property
    def path_params(self) -> Mapping[str, Any]:
        """Values captured by the route's ``{name}`` segments, converted."""
        return MappingProxyType(self.scope.get("path_params", {}))

    @property
    def query_params(self) -> QueryParams:
        """The query string's parameters."""
        return QueryParams.from_query_string(self.scope.get("query_string", b""))

    @property
    def headers(self) -> Headers:
        """The handshake's HTTP headers (case-insensitive)."""
        if self._headers is None:
            self._headers = Headers.from_raw(self.scope.get("headers"))
        return self._headers

    @property
    def cookies(self) -> Mapping[str, str]:
        """The cookies the handshake carried, by name, read from its ``Cookie`` headers.

        A name sent twice keeps its first value: browsers send the cookie of the most
        specific path first. Parsed on each access, as it is read once or twice.
        """
        return parse_cookies(self.headers.getlist("cookie"))

    @property
    def client(self) -> Address | None:
        """The client's address, if the server gives it."""
        client = self.scope.get("client")
        return Address(*client) if client else None

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return list(self.scope.get("subprotocols", ()))

    @property
    def url(self) -> str:
        """The URL the client connected to, rebuilt from the scope."""
        scope = self.scope
        host = self.headers.get("host")
        if host is None:
            server = scope.get("server")
            host = f"{server[0]}:{server[1]}" if server else "localhost"
        query = scope.get("query_string", b"")
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        return f"{scope.get('scheme', 'ws')}://{host}{path}" + (
            f"?{query.decode('latin-1')}" if query else ""
        )

    @property
    def state(self) -> SimpleNamespace:
        """A namespace for the application's own per-connection data."""
        if self._user_state is None:
            self._user_state = SimpleNamespace()
        return self._user_state

    @property
    def task_group(self) -> TaskGroup:
        """The connection's task group: tasks started here end with the connection."""
        if self._task_group is None:
            raise WebSocketStateError(
                "this connection has no task group: it is not being served by wsendpoints"
            )
        return self._task_group

    # -- groups ---------------------------------------------------------------------

    @property
    def api(self) -> API:
        """The `API` whose route serves this connection (the innermost, under mounts).

        `WebSocketStateError` when no API does: a view's `FunctionView` or an
        endpoint class served as a bare ASGI app (a Starlette route, say).
        """
        api: API | None = self.scope.get("wsendpoints.api")
        if api is None:
            raise WebSocketStateError(
                "ws.api: no wsendpoints API serves this connection (its scope has no "
                "'wsendpoints.api'); serve the view or endpoint through an API's route"
            )
        return api

    async def join(self, group: str) -> None:
        """Receive what is published to ``group``, until `leave` or the end of the connection.

        Group messages are encoded with the connection's send codec and queue up
        to ``group_queue_size``; past that, ``group_overflow`` decides. Once the
        connection has ended (in ``on_disconnect``, say) it raises `WebSocketStateError`.
        """
        outbox = self._outbox
        if outbox is None:
            from .broadcast.hub import ConnectionOutbox

            hub = self.scope.get("wsendpoints.broadcast")
            if hub is None:
                raise WebSocketStateError("groups need a connection served by a wsendpoints API")
            if self._handler_task is not None and self._task_group is None:
                # Served, and no more (in on_disconnect, or from a task of the app's): the
                # groups were left already, and nothing would leave this one.
                raise WebSocketStateError("cannot join a group: the connection has ended")
            outbox = self._outbox = ConnectionOutbox(
                hub, self, self._send, self._send_codec, self._group_queue_size, self._group_overflow
            )
        await outbox.join(group)

    async def leave(self, group: str) -> None:
        """Stop receiving what is published to ``group``."""
        if self._outbox is not None:
            await self._outbox.leave(group)

    @property
    def groups(self) -> frozenset[str]:
        """The groups this connection is in."""
        return frozenset(self._outbox.groups) if self._outbox is not None else frozenset()

    # -- handshake and closing ---------------------------------------------------

    async def _receive_connect(self) -> bool:
        """Take the server's ``websocket.connect``; False if the client left first."""
        message = await self._server_receive()
        self._connect_received = True
        if message["type"] == "websocket.connect":
            return True
        if message["type"] == "websocket.disconnect":
            self._disconnected(message.get("code", CloseCode.ABNORMAL_CLOSURE), message.get("reason"))
            return False
        raise WebSocketStateError(f"expected 'websocket.connect', got {message['type']!r}")

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Complete the handshake, optionally choosing a subprotocol and adding headers.

        ``subprotocol`` must be one the client offered (see ``subprotocols``);
        otherwise, or for a header HTTP does not allow, `WebSocketProtocolError`.
        """
        raw = [] if headers is None else _raw_headers(headers)
        await self.send_event({"type": "websocket.accept", "subprotocol": subprotocol, "headers": raw})

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection; before ``accept()`` this refuses the handshake (HTTP 403).

        Closing a connection that is already closed, or whose client has gone, does nothing.
        A code that may not be sent (see `CloseCode`; 4000-4999 are yours) or a reason
        over 123 bytes of UTF-8 (or with a lone surrogate, which UTF-8 cannot carry) raises
        `WebSocketProtocolError`, and the connection stays open.
        """
        await self.send_event({"type": "websocket.close", "code": int(code), "reason": reason})

    async def _refuse(
        self,
        status_code: int,
        close_code: int,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        reason: str = "",
    ) -> None:
        """Refuse the handshake with an HTTP status where the server can send one.

        Elsewhere a close before accept reads as 403; "come back later" (503) needs
        a close frame, so it accepts and closes with 1013 and ``reason``. Either
        way ``close_code`` and ``reason`` are what the connection ended with. A
        client that left during the handshake is refused nothing, as `close`
        closes nothing for a client that has gone: that is no error.
        """
        # Checked whether or not the server can send it: a refusal HTTP cannot carry is the
        # app's bug, and it is reported the same on every server.
        _check_status(status_code)
        raw = _raw_headers(headers)
        _check_headers(raw)
        if _HTTP_RESPONSE not in self.scope.get("extensions", {}):
            if status_code == HTTPStatus.SERVICE_UNAVAILABLE:
                try:
                    await self.accept()
                except WebSocketDisconnect:
                    return
                await self.close(CloseCode.TRY_AGAIN_LATER, reason)
            else:
                await self.close(close_code, reason)
            return
        if not body:
            try:
                phrase = HTTPStatus(status_code).phrase
            except ValueError:
                phrase = ""
            body = f"{status_code} {phrase}".strip().encode()
        if not any(name == b"content-type" for name, _ in raw):
            # Only as a default: a second Content-Type makes uvicorn drop the response.
            raw.insert(0, (b"content-type", b"text/plain; charset=utf-8"))
        # Before the response ends the connection (see _enter).
        self.close_code, self.close_reason = close_code, reason
        try:
            await self.send_event(
                {"type": "websocket.http.response.start", "status": status_code, "headers": raw}
            )
            await self.send_event({"type": "websocket.http.response.body", "body": body})
        except WebSocketDisconnect:
            # The server could not send it (uvicorn raises once the client has gone): the
            # handshake ended all the same, with the code the app refused it with.
            return
        # uvicorn's default implementation (websockets-sansio) counts the handshake as done
        # only once the connection is lost, which it schedules on sending the response: an
        # app returning before that runs gets "ERROR: ASGI callable returned without
        # completing handshake." in the log for a normal refusal. One turn of the loop lets it,
        # shielded: the refusal has gone out, and a server (or test client) that cancels the
        # app on sending it must not cut short what follows (the caller logs the refusal).
        await anyio.lowlevel.cancel_shielded_checkpoint()

    # -- receiving -----------------------------------------------------------------

    async def receive(self) -> Any:
        """The next message, decoded with the connection's receive codec."""
        # A callable kept in a slot is read into a local before the call, here and in every
        # per-message call below: CPython 3.11 cannot specialise `self._receive()` (it looks
        # for a method), so each such call would take its slow generic path, ~100 instructions.
        receive = self._receive
        message = await receive()
        data = message.get(self._receive_key)
        if data is None:
            data = await self._payload(message, self._receive_codec)
        if len(data) > self._max_size:
            raise await self._too_big(data)
        decode = self._decode
        if decode is None:
            return data
        try:
            return decode(data)
        except ValueError as exc:
            raise await self._reject_message(CloseCode.INVALID_PAYLOAD, str(exc)) from exc

    # `WebSocketEndpoint.dispatch` has this method's body inline: keep the two in step.
    __anext__ = receive

    def __aiter__(self) -> WebSocket:
        return self

    async def receive_text(self) -> str:
        """The next message, which must be a text frame."""
        return await self._receive_as(_TEXT)  # type: ignore[no-any-return]

    async def receive_bytes(self) -> bytes:
        """The next message, which must be a binary frame."""
        return await self._receive_as(_BYTES)  # type: ignore[no-any-return]

    async def receive_json(self) -> Any:
        """The next message, a text frame decoded as JSON."""
        return await self._receive_as(_JSON)

    async def receive_msgpack(self) -> Any:
        """The next message, a binary frame decoded as msgpack."""
        return await self._receive_as(_MSGPACK)

    async def _receive_as(self, codec: Codec) -> Any:
        receive = self._receive
        message = await receive()
        data = message.get("bytes" if codec.frame == "bytes" else "text")
        if data is None:
            data = await self._payload(message, codec)
        if len(data) > self._max_size:
            raise await self._too_big(data)
        try:
            return codec.decode(data)
        except ValueError as exc:
            raise await self._reject_message(CloseCode.INVALID_PAYLOAD, str(exc)) from exc

    async def receive_event(self) -> dict[str, Any]:
        """The next raw ASGI event, ``websocket.disconnect`` included, as a `dict`.

        A message over ``max_message_size`` closes with 1009, as for `receive`.
        """
        receive = self._receive
        received = await receive()
        # ASGI promises a mapping, servers give dicts: copy only what middleware made otherwise.
        message = received if type(received) is dict else dict(received)
        if message["type"] == "websocket.receive":
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if len(data) > self._max_size:
                raise await self._too_big(data)
        elif message["type"] == "websocket.disconnect":
            self._disconnected(message.get("code", CloseCode.NO_STATUS_RECEIVED), message.get("reason"))
        elif message["type"] in (_IDLE, _TOO_FAST):
            await self._payload(message, self._receive_codec)
        return message

    def _enter(self, state: ConnectionState) -> None:
        """Move to ``state``; messages can be received and sent only when it is CONNECTED.

        Rather than every receive and send checking the state, what they await is
        swapped here: the server's own callables while connected, else ones that
        raise the error this state calls for. Those are made now, from the state,
        code and reason as they are (so set the code first), and hold no reference
        to the WebSocket: a connection that ended is freed as soon as it is
        dropped, not at the garbage collector's next full collection.
        """
        self._state = state
        if state is _CONNECTED:
            self._receive = self._messages
            self._send_data = self._send
        elif state is _CONNECTING:
            # Every connection starts here: shared raisers, nothing made per connection.
            self._receive, self._send_data = _BEFORE_ACCEPT
        else:
            self._receive = _raiser(self._receive_error(), id(self))
            self._send_data = _raiser(self._send_error(), id(self))

    def _receive_error(self) -> Exception:
        if self._state is _CONNECTING:
            return WebSocketStateError(_RECEIVE_BEFORE_ACCEPT)
        return WebSocketDisconnect(self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason)

    async def _payload(self, message: Message, codec: Codec) -> Any:
        """The slow path of receiving: the other frame kind, a disconnect, a stray event."""
        kind = message["type"]
        if kind == "websocket.receive":
            if codec.frame == "any" and message.get("bytes") is not None:
                return message["bytes"]
            got = "binary" if message.get("bytes") is not None else "text"
            want = "binary" if codec.frame == "bytes" else "text"
            raise await self._reject_message(
                CloseCode.UNSUPPORTED_DATA, f"expected a {want} frame, got a {got} frame"
            )
        if kind == "websocket.disconnect":
            self._disconnected(message.get("code", CloseCode.NO_STATUS_RECEIVED), message.get("reason"))
            raise WebSocketDisconnect(self.close_code or CloseCode.NO_STATUS_RECEIVED, self.close_reason)
        if kind == _IDLE:
            await self._idle()
        if kind == _TOO_FAST:
            raise await self._reject_message(CloseCode.POLICY_VIOLATION, "too many messages")
        raise WebSocketStateError(f"unexpected ASGI event {kind!r} while receiving")

    async def _reject_message(self, code: int, reason: str) -> WebSocketDisconnect:
        """Close because of a bad message; return the exception the receiver raises."""
        logger.warning("closing %s with %d: %s", self.path, code, reason)
        # Close frames carry at most 123 bytes of UTF-8; a lone surrogate (a decoder's
        # message may quote what it read) goes as its escape, as in the log line.
        reason = reason.encode(errors="backslashreplace")[:123].decode(errors="ignore")
        await self._close_by_framework(code, reason)
        return WebSocketDisconnect(code, self.close_reason)

    async def _close_by_framework(self, code: int, reason: str) -> None:
        """Close for the client's fault: later sends end quietly with WebSocketDisconnect."""
        if self._state is _CONNECTED:
            self._closed_elsewhere = True
        await self.close(code, reason)

    async def _too_big(self, data: str | bytes) -> WebSocketDisconnect:
        unit = "characters" if isinstance(data, str) else "bytes"
        return await self._reject_message(
            CloseCode.MESSAGE_TOO_BIG,
            f"message of {len(data)} {unit}, over max_message_size ({self._max_size})",
        )

    async def _idle(self) -> None:
        if self._state is _CONNECTED:
            logger.info("closing %s with 1001: idle for %s s", self.path, self._idle_timeout)
            await self._close_by_framework(CloseCode.GOING_AWAY, f"idle for {self._idle_timeout} s")
        # Else a task closed it while the handler waited, and the server has not said so
        # yet (hypercorn waits for the client's answer): the end is that close, not idleness.
        raise WebSocketDisconnect(self.close_code or CloseCode.GOING_AWAY, self.close_reason)

    def _disconnected(self, code: int, reason: str | None) -> None:
        if self._state is not _CLOSED:
            self.close_code = code
            self.close_reason = reason or ""
        self._enter(_DISCONNECTED)

    # -- sending ---------------------------------------------------------------------

    async def send(self, value: Any) -> None:
        """Send ``value``, encoded with the connection's send codec."""
        if type(value) is self._plain:
            data = value
        elif self._ujson:
            # `UJSONCodec.encode` written inline (keep the two in step): the call into it
            # was ~500 instructions a message, a third of what JSON cost beyond the bare API.
            try:
                data = _ujson_dumps(value, False, False, False)
            except _UJSON_ENCODE_ERRORS as exc:
                raise _not_json(exc) from exc
        else:
            encode = self._encode
            data = encode(value)
        key = self._send_key
        if key is None:  # a codec whose output type is not known: auto, or one of the app's
            key, data = _frame(data, self._send_codec)
        send = self._send_data
        try:
            await send({"type": "websocket.send", key: data})
        except _NOT_GONE:
            raise
        except Exception as exc:
            raise self._gone() from exc

    async def send_text(self, value: str) -> None:
        """Send ``value`` as a text frame."""
        try:
            text = _TEXT.encode(value)
        except TypeError:
            # Not the text codec's advice: the route's value_type does not change send_text.
            raise TypeError(
                f"send_text sends str, not {type(value).__name__}: send_json sends a value as JSON, "
                "send_bytes sends bytes"
            ) from None
        await self.send_event({"type": "websocket.send", "text": text})

    async def send_bytes(self, value: bytes) -> None:
        """Send ``value`` as a binary frame."""
        await self.send_event({"type": "websocket.send", "bytes": _BYTES.encode(value)})

    async def send_json(self, value: Any) -> None:
        """Send ``value`` as JSON in a text frame."""
        await self.send_event({"type": "websocket.send", "text": _JSON.encode(value)})

    async def send_msgpack(self, value: Any) -> None:
        """Send ``value`` as msgpack in a binary frame."""
        await self.send_event({"type": "websocket.send", "bytes": _MSGPACK.encode(value)})

    async def send_event(self, event: Message) -> None:
        """Send a raw ASGI event; the connection's state follows what it says."""
        kind = event["type"]
        if self._state is _CONNECTING and not self._connect_received:
            # Used outside the dispatchers (a raw ASGI app): the server's
            # 'websocket.connect' comes before anything the app may send.
            await self._receive_connect()
        state = self._state
        if kind == "websocket.close":
            if state is _CLOSED or state is _DISCONNECTED:
                return
            code = int(event.get("code", CloseCode.NORMAL_CLOSURE))
            reason = event.get("reason") or ""
            if state is _CONNECTED:  # before accept, a close is an HTTP 403: nothing of it is sent
                _check_close(code, reason)
                if self._handler_task is not None and anyio.get_current_task().id != self._handler_task:
                    # One of the connection's tasks closed it while the handler was busy:
                    # to the handler, the connection ended under it, as if the client left.
                    self._closed_elsewhere = True
                    if self._task_group is not None:
                        # The handler may be waiting in the server's receive, which some
                        # servers (hypercorn) answer only once the client answers the close:
                        # one that never does must not keep the connection open for good.
                        self._task_group.start_soon(_end_after_close, self._task_group.cancel_scope)
            self.close_code = code
            self.close_reason = reason
            # Set before awaiting, so that a concurrent close() sends nothing twice.
            self._enter(_CLOSED)
            try:
                # Shielded: a close cancelled half-way would leave the connection open for good.
                with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                    await self._send(event)
            except Exception:
                # The client left first: there is nothing left to close. The
                # code stays the app's: it says why the app was closing.
                self._enter(_DISCONNECTED)
            return
        if kind == "websocket.send":
            if state is not _CONNECTED:
                raise self._send_error()
        elif kind == "websocket.accept":
            if state is not _CONNECTING:
                raise WebSocketStateError(f"cannot accept a connection that is {state.value}")
            subprotocol = event.get("subprotocol")
            if subprotocol is not None and subprotocol not in self.scope.get("subprotocols", ()):
                raise WebSocketProtocolError(
                    f"cannot accept subprotocol {subprotocol!r}: the client offered {self.subprotocols}"
                )
            _check_headers(event.get("headers", ()))
            self._enter(_CONNECTED)
            logger.debug("accepted %s", self.path)
        elif kind.startswith(_HTTP_RESPONSE):
            if state is _CONNECTED:
                raise WebSocketStateError("cannot send an HTTP response after accept()")
            if kind == _HTTP_RESPONSE_START:
                _check_status(event["status"])
            _check_headers(event.get("headers", ()))
            self._enter(_CLOSED)
        send = self._send
        try:
            await send(event)
        except _APP_ERRORS:
            raise
        except Exception as exc:
            raise self._gone() from exc
        if kind == "websocket.accept" and self._outbox is not None:
            # Group messages that arrived before accept() waited; now they can go.
            self._outbox.start()

    def _send_error(self) -> Exception:
        if self._state is _CONNECTING:
            return WebSocketStateError(_SEND_BEFORE_ACCEPT)
        if self._state is _CLOSED and self._closed_elsewhere:
            return WebSocketDisconnect(self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason)
        if self._state is _CLOSED:
            return WebSocketStateError(
                f"cannot send: the application closed the connection (code {self.close_code})"
            )
        return WebSocketDisconnect(self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason)

    def _gone(self) -> WebSocketDisconnect:
        # The server refused a well-formed event: the client has gone. Servers say
        # so in their own ways (uvicorn: OSError; hypercorn: its own exception).
        if self._state is not _DISCONNECTED:
            self._disconnected(CloseCode.ABNORMAL_CLOSURE, "the client went away")
        gone = WebSocketDisconnect(self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason)
        gone._connection = id(self)
        return gone

    # -- context manager ---------------------------------------------------------------

    async def __aenter__(self) -> WebSocket:
        if self._state is _CONNECTING:
            await self.accept()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            await self.close()
            return False
        disconnect = self._ending(exc)
        if disconnect is not None:
            await self.close(disconnect.code, disconnect.reason)
            return disconnect.code in self._caught
        if isinstance(exc, Exception):
            await self.close(CloseCode.INTERNAL_ERROR)
        # Cancellation passes through untouched: the dispatcher closes with 1001.
        return False

    def _ends_with(self, exc: WebSocketDisconnect) -> bool:
        """Whether ``exc`` ends this connection, rather than being another one's news."""
        return exc._connection is None or exc._connection == id(self)

    def _ending(self, exc: BaseException | None) -> WebSocketDisconnect | None:
        """The `WebSocketDisconnect` that ``exc`` ends this connection with, if it is one.

        A task group raises what ended it in an exception group: one holding only
        this connection's disconnects is its end too (the first says how).
        """
        if isinstance(exc, WebSocketDisconnect):
            return exc if self._ends_with(exc) else None
        if isinstance(exc, BaseExceptionGroup):
            first = None
            for inner in exc.exceptions:
                disconnect = self._ending(inner)
                if disconnect is None:
                    return None
                first = first or disconnect
            return first
        return None

    def __repr__(self) -> str:
        return f"<WebSocket {self.path} {self._state.value}>"


async def _end_after_close(connection: anyio.CancelScope) -> None:
    """End a connection closed under its handler, if the handler has not ended it meanwhile."""
    await anyio.sleep(_CLOSE_TIMEOUT)
    connection.cancel()


def _check_close(code: int, reason: str) -> None:
    if code not in _SENDABLE_CODES:
        raise WebSocketProtocolError(
            f"close code {code} cannot be sent: use 1000-1003, 1007-1014 or 3000-4999"
            " (4000-4999 are the application's)"
        )
    try:
        size = len(reason.encode())
    except UnicodeEncodeError as exc:
        # A lone surrogate: a close frame carries UTF-8 only, and the server would fail on it.
        raise WebSocketProtocolError(
            f"a close reason must be UTF-8 text; this one has a lone surrogate at character {exc.start}"
        ) from None
    if size > _MAX_REASON:
        raise WebSocketProtocolError(
            f"a close reason holds at most {_MAX_REASON} bytes of UTF-8; this one has {size}"
        )


def _check_status(status: int) -> None:
    # 1xx would be no refusal at all (uvicorn even opens the connection on 101), and servers
    # answer anything outside 100-599 with a bare 500 of their own.
    if not 200 <= status <= 599:
        raise WebSocketProtocolError(
            f"HTTP status {status} cannot be sent to refuse a handshake: use 200-599"
            " (4000-4999 are close codes, for ws.close() after accept())"
        )


def _raw_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """``headers`` as ASGI events carry them: (name, value) in latin-1 bytes, names in lower case.

    HTTP headers are bytes, written as latin-1: a character beyond it has no byte to go
    as, and is refused like any other header HTTP does not allow (see `_check_headers`).
    """
    raw = []
    for name, value in headers.items() if isinstance(headers, Mapping) else headers:
        if not (isinstance(name, str) and isinstance(value, str)):
            # ASGI's own (bytes, bytes) pairs, say, as Starlette's accept() takes them.
            raise WebSocketProtocolError(
                f"header names and values are str, not {type(name).__name__} and {type(value).__name__}:"
                f" {name!r}: {value!r}"
            )
        try:
            raw_name = name.lower().encode("latin-1")
        except UnicodeEncodeError:
            raise WebSocketProtocolError(f"{name.lower()!r} is not a valid HTTP header name") from None
        try:
            raw_value = value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise WebSocketProtocolError(
                f"the value of header {raw_name!r} has a character latin-1 cannot write: "
                f"{exc.object[exc.start]!r}"
            ) from None
        raw.append((raw_name, raw_value))
    return raw


def _check_headers(headers: Iterable[tuple[bytes, bytes]]) -> None:
    for name, value in headers:
        if not (isinstance(name, bytes) and isinstance(value, bytes)):
            # The inverse of accept(headers=...), which takes str: raw ASGI events carry bytes.
            raise WebSocketProtocolError(
                f"an ASGI event's headers are (bytes, bytes) pairs, not ({type(name).__name__},"
                f" {type(value).__name__}): {name!r}: {value!r}"
            )
        if not _HEADER_NAME.fullmatch(name):
            raise WebSocketProtocolError(f"{name!r} is not a valid HTTP header name")
        if _HEADER_BREAK.search(value):
            raise WebSocketProtocolError(f"the value of header {name!r} contains a line break or NUL")


def _raiser(error: Exception, connection: int | None = None) -> Callable[..., Awaitable[Any]]:
    """An async callable that raises an exception like ``error`` (a new one) when awaited.

    A `WebSocketDisconnect` is marked as ``connection``'s (the id of its WebSocket).
    """
    return functools.partial(_raise, type(error), error.args, connection)


async def _raise(error: type[Exception], args: tuple[Any, ...], connection: int | None, *_: Any) -> NoReturn:
    exc = error(*args)
    if isinstance(exc, WebSocketDisconnect):
        exc._connection = connection
    try:
        raise exc
    finally:
        # The traceback holds this frame: a local holding the exception would be a
        # cycle, keeping every frame it went through (the WebSocket's) until a full collection.
        del exc


_RECEIVE_BEFORE_ACCEPT = "accept() the connection before receiving from it"
_SEND_BEFORE_ACCEPT = "accept() the connection before sending to it"
_BEFORE_ACCEPT = (
    _raiser(WebSocketStateError(_RECEIVE_BEFORE_ACCEPT)),
    _raiser(WebSocketStateError(_SEND_BEFORE_ACCEPT)),
)


def _idle_receiver(receive: Receive, timeout: float) -> Receive:
    """``receive``, giving up after ``timeout`` seconds of silence.

    Only connections with an idle timeout pay for the deadline, once per message.
    """
    idle: Message = {"type": _IDLE}

    async def receive_or_idle() -> Message:
        with anyio.move_on_after(timeout):
            return await receive()
        return idle

    return receive_or_idle


def check_idle_timeout(timeout: float | None) -> None:
    """Refuse an ``idle_timeout`` that is not a finite positive number of seconds."""
    if timeout is not None and not is_finite_number(timeout):
        raise ConfigurationError(f"idle_timeout must be a positive number of seconds, not {timeout!r}")


def _rate_limited_receiver(receive: Receive, rate: float) -> Receive:
    """``receive``, answering a client that sends faster than ``rate`` messages a second.

    A token bucket holding one second's worth: bursts up to ``rate`` messages
    pass, and the long-run average may not exceed it.
    """
    capacity = max(1.0, rate)
    tokens = capacity
    last = -math.inf
    too_fast: Message = {"type": _TOO_FAST}

    async def receive_within_rate() -> Message:
        nonlocal tokens, last
        message = await receive()
        if message["type"] != "websocket.receive":
            return message
        now = anyio.current_time()
        tokens = min(capacity, tokens + (now - last) * rate)
        last = now
        if tokens < 1:
            return too_fast
        tokens -= 1
        return message

    return receive_within_rate


def check_limits(max_message_size: int | None, max_message_rate: float | None) -> None:
    """Refuse limits that are not positive."""
    if max_message_size is not None and not is_positive_int(max_message_size):
        raise ConfigurationError(f"max_message_size must be a positive integer, not {max_message_size!r}")
    if max_message_rate is not None and not is_finite_number(max_message_rate):
        raise ConfigurationError(f"max_message_rate must be a positive number, not {max_message_rate!r}")


def connection_options(
    *,
    value_type: str | Codec | None = None,
    receive_type: str | Codec = "text",
    send_type: str | Codec = "text",
    idle_timeout: float | None = None,
    group_queue_size: int = 100,
    group_overflow: Overflow = "drop_oldest",
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    max_message_rate: float | None = None,
) -> dict[str, Any]:
    """A route's per-connection options, resolved and checked once: `WebSocket`'s keyword arguments.

    Endpoints and views call it at registration, so a bad option fails at
    import time and each connection only passes the result on.
    """
    from .broadcast.hub import check_queue_options
    from .codecs import message_codecs

    check_idle_timeout(idle_timeout)
    check_queue_options(group_queue_size, group_overflow)
    check_limits(max_message_size, max_message_rate)
    receive_codec, send_codec = message_codecs(value_type, receive_type, send_type)
    return {
        "receive_type": receive_codec,
        "send_type": send_codec,
        "idle_timeout": idle_timeout,
        "group_queue_size": group_queue_size,
        "group_overflow": group_overflow,
        "max_message_size": max_message_size,
        "max_message_rate": max_message_rate,
    }
