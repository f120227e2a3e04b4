"""Every exception wsendpoints raises, and the close codes it sends.

Hierarchy::

    WebSocketError                      base of everything below
    ├── ConfigurationError              a route, codec or option refused at registration
    ├── WebSocketStateError             a call the connection's state does not allow
    ├── WebSocketProtocolError          a close code, reason, subprotocol or header the protocol forbids
    ├── WebSocketDisconnect             the connection is over (client left, or it was closed)
    ├── AuthenticationFailed            raised by an ``authenticate`` hook to refuse the handshake
    ├── HandshakeRejected               test clients: the app refused the handshake
    ├── BroadcastError                  publishing or subscribing failed (unserialisable, broker down)
    ├── ReceiveTimeout                  test clients: nothing arrived in time
    └── LifespanFailed                  test clients: a startup or shutdown hook failed

`CloseCode` is the table that turns a failure into a close code. The framework
decides it in one place (the dispatcher in `wsendpoints._dispatch`) and sends:

=====  =======================================================================
code   sent when
=====  =======================================================================
1000   the handler finished, or closed without giving a code
1001   the server is shutting down, or no message came within ``idle_timeout``
1003   a frame of the wrong kind arrived (binary where text is expected, ...)
1007   a payload the receive codec cannot decode (bad JSON, bad msgpack, ...)
1008   the client sent messages faster than ``max_message_rate``, or read its group
       messages too slowly (``group_overflow="close"``)
1009   a message longer than ``max_message_size``
1011   a handler raised; the traceback is logged under the ``wsendpoints`` logger
1013   the server is at ``max_connections`` or shutting down, on a server that cannot
       refuse a handshake with HTTP 503 (the others get the 503)
=====  =======================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum

from .datastructures import Headers

__all__ = [
    "AuthenticationFailed",
    "BroadcastError",
    "CloseCode",
    "ConfigurationError",
    "HandshakeRejected",
    "LifespanFailed",
    "ReceiveTimeout",
    "WebSocketDisconnect",
    "WebSocketError",
    "WebSocketProtocolError",
    "WebSocketStateError",
]


class CloseCode(IntEnum):
    """The registered WebSocket close codes (RFC 6455, section 7.4) a connection can end with.

    Those wsendpoints sends (the table in `wsendpoints.exceptions`), those a client,
    a server or a proxy can send, and the two that only report an end without a close
    frame (1005, 1006); not 1004 (reserved) nor 1015 (a failed TLS handshake, before
    any WebSocket). A code it does not name, such as 3000-4999, stays a plain int:
    ``close_code`` and ``WebSocketDisconnect.code`` are ints, equal to a member when
    the code is one.
    """

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RECEIVED = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014


class WebSocketError(Exception):
    """Base class of every exception wsendpoints raises."""


class ConfigurationError(WebSocketError, ValueError):
    """A route, codec or option was refused when it was registered.

    Raised at import time rather than on the first connection, so that a typo in
    a type name or a forgotten ``async`` never reaches production.
    """


class WebSocketStateError(WebSocketError, RuntimeError):
    """A call that the connection's current state does not allow.

    For example sending before ``accept()``, or after the application closed
    the connection. Raised immediately instead of waiting on the server. Also
    raised by ``ws.api`` and ``ws.join()`` on a connection no API serves.
    """


class WebSocketProtocolError(WebSocketError, ValueError):
    """An argument the WebSocket protocol does not allow; nothing was sent.

    A close code that may not go in a close frame (only 1000-1003, 1007-1014 and
    3000-4999 may), a close reason over 123 bytes of UTF-8 or with a lone surrogate
    (which UTF-8 cannot carry), a subprotocol the client did not offer, a header
    name or value that HTTP does not allow, or an HTTP status outside 200-599 for
    a refused handshake. Servers answer these in their own ways (a dropped
    connection, a changed code, a crash), so the call fails before anything
    reaches the server.

    Also raised for a `WebSocket` made from a scope that is not a WebSocket
    connection's (an HTTP request's, say).
    """


class WebSocketDisconnect(WebSocketError):
    """The connection is over; nothing more can be received on it.

    Raised by ``receive()`` when the client closed the connection or went away,
    by ``send()`` when the client is gone, and by both after the framework
    closed the connection because of the client. ``code`` then says why: 1003
    (a frame of the wrong kind), 1007 (a payload the codec cannot decode), 1008
    (messages faster than ``max_message_rate``, or group messages read too
    slowly with ``group_overflow="close"``), 1009 (a message longer than
    ``max_message_size``) or 1001 (no message within ``idle_timeout``).
    """

    # id() of the connection that raised it; None when the application raised it. A
    # handler that sends to another connection can get that one's disconnect: it must
    # not end the handler's own connection with the other's code.
    _connection: int | None = None

    def __init__(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = int(code)
        """The close code: the client's, or the one the framework closed with (see above)."""
        self.reason = reason
        """The reason that came with ``code`` (empty if none did)."""

    def __str__(self) -> str:
        return f"WebSocket closed with code {self.code}" + (f": {self.reason}" if self.reason else "")


class HandshakeRejected(WebSocketError):
    """The application refused the handshake (test clients only).

    ``status_code`` is the HTTP status the client would see (403 when the app
    closed before accepting). ``close_code`` is the code the app passed to
    ``close()``, if it did; ``body`` and ``headers`` are the HTTP response's,
    if it sent one (``headers`` is empty otherwise).
    """

    def __init__(
        self,
        status_code: int,
        *,
        close_code: int | None = None,
        reason: str = "",
        body: bytes = b"",
        headers: Headers | None = None,
    ) -> None:
        # Only the positional argument in args: the rest travel in the instance's
        # dict, so that copies and pickles rebuild it (as a test runner's workers do).
        super().__init__(status_code)
        self.status_code = status_code
        self.close_code = close_code
        self.reason = reason
        self.body = body
        self.headers = headers if headers is not None else Headers([])

    def __str__(self) -> str:
        detail = f" (close code {self.close_code})" if self.close_code is not None else ""
        return f"handshake rejected with HTTP {self.status_code}{detail}"


class ReceiveTimeout(WebSocketError, TimeoutError):
    """A test client waited longer than its timeout for the application."""


class LifespanFailed(WebSocketError):
    """The application reported ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``."""


class BroadcastError(WebSocketError):
    """Publishing or subscribing failed.

    Raised by ``publish`` for a message msgpack cannot serialise (so the error
    reaches the publisher, not the receivers), and when the broker is unreachable.
    """


class AuthenticationFailed(WebSocketError):
    """Raise it in an ``authenticate`` hook to refuse the handshake.

    It refuses the same way from ``on_connect`` or a view before the handshake
    is accepted, also from a task group there (an exception group holding only
    refusals refuses with its first). After ``accept()`` there is no HTTP response left to send, so
    there it is an error like any other (1011, logged).

    The client gets an HTTP response with ``status_code``, ``body`` and
    ``headers`` where the server supports the ``websocket.http.response``
    extension (uvicorn and hypercorn do), and HTTP 403 otherwise. A status or
    headers HTTP cannot carry are an error on every server (HTTP 500 where it can
    be sent, logged with the traceback). The body goes
    as ``text/plain; charset=utf-8`` unless ``headers`` has a ``Content-Type``.
    ``headers`` is a mapping or, to send a header more than once (two
    ``WWW-Authenticate`` challenges, say), ``(name, value)`` pairs; it is kept
    as `Headers`.
    """

    def __init__(
        self,
        status_code: int = 401,
        body: str | bytes = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        if not isinstance(status_code, int) or isinstance(status_code, bool):
            # ``AuthenticationFailed("invalid token")``: the message where the status goes, which
            # would otherwise fail only when the refusal is sent, comparing a str with 200.
            raise TypeError(
                f"AuthenticationFailed takes the HTTP status first, then the body: write "
                f"AuthenticationFailed(401, {status_code!r}), not AuthenticationFailed({status_code!r})"
            )
        super().__init__(status_code, body)
        self.status_code = status_code
        self.body = body.encode() if isinstance(body, str) else body
        pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
        self.headers = Headers(list(pairs))

    def __str__(self) -> str:
        return f"authentication failed (HTTP {self.status_code})"
