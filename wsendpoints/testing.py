"""In-process clients for testing WebSocket applications, on asyncio and trio.

The async client runs the application in the test's own event loop::

    async with connect(api, "/echo") as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "You said: hi"

The sync client runs it in a background event loop (an anyio blocking portal)::

    with TestClient(api) as client, client.websocket_connect("/echo") as ws:
        ws.send_text("hi")

Both play the server's part of the ASGI contract as uvicorn does: a send to a
client that has left raises ``OSError``, and after the application closes, its
next receive gets ``websocket.disconnect``. Every wait is bounded by
``timeout`` (`DEFAULT_TIMEOUT` seconds unless given) and fails with
`ReceiveTimeout` rather than hanging; a refused handshake raises
`HandshakeRejected` with the HTTP status the client would see.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, contextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal, start_blocking_portal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .codecs import resolve_codec
from .datastructures import Headers
from .exceptions import (
    CloseCode,
    HandshakeRejected,
    LifespanFailed,
    ReceiveTimeout,
    WebSocketDisconnect,
    WebSocketProtocolError,
    WebSocketStateError,
)
from .types import ASGIApp, Message

__all__ = ["DEFAULT_TIMEOUT", "ClientWebSocket", "SyncClientWebSocket", "TestClient", "connect", "lifespan"]

DEFAULT_TIMEOUT = 5.0
"""Seconds a test client waits for the application before raising `ReceiveTimeout`."""

_JSON = resolve_codec("json")
_MSGPACK = resolve_codec("msgpack")
_APP_RETURNED: Message = {"type": "app.returned"}


class _AppRunner:
    """Runs an ASGI app in a background task while the test talks to it.

    An async context manager rather than a generator so that an exception in
    the test's ``async with`` block leaves it as it is, not wrapped in the task
    group's ExceptionGroup.
    """

    def __init__(self, app: ASGIApp, scope: dict[str, Any], timeout: float) -> None:
        self.app = app
        self.scope = scope
        self.timeout = timeout
        self._app_error: Exception | None = None
        self._app_done = anyio.Event()
        self._to_app: MemoryObjectSendStream[Message]
        self._app_inbox: MemoryObjectReceiveStream[Message]
        self._to_app, self._app_inbox = anyio.create_memory_object_stream[Message](math.inf)
        self._to_client: MemoryObjectSendStream[Message]
        self._client_inbox: MemoryObjectReceiveStream[Message]
        self._to_client, self._client_inbox = anyio.create_memory_object_stream[Message](math.inf)
        self._task_group: TaskGroup | None = None

    async def _start(self) -> None:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._run_app)

    async def _stop(self) -> None:
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        try:
            await self._task_group.__aexit__(None, None, None)
        finally:
            # Unclosed streams warn when collected (ResourceWarning).
            for stream in (self._to_app, self._app_inbox, self._to_client, self._client_inbox):
                stream.close()

    async def _run_app(self) -> None:
        try:
            await self.app(self.scope, self._app_receive, self._app_send)
        except Exception as exc:
            self._app_error = exc
        finally:
            self._app_done.set()
            self._to_client.send_nowait(_APP_RETURNED)

    async def _app_receive(self) -> Message:
        return await self._app_inbox.receive()

    async def _app_send(self, message: Message) -> None:
        self._to_client.send_nowait(message)

    async def _next(self, timeout: float | None) -> Message:
        """The app's next event; `_APP_RETURNED` once it has returned.

        An error the app raised comes after the events it sent before it, as
        behind a server (it is stored before `_APP_RETURNED` is queued).
        """
        limit = self.timeout if timeout is None else timeout
        # A message already there is taken whatever the deadline: under one of 0, the
        # receive below would be cancelled at its first checkpoint, before it looked.
        await anyio.lowlevel.checkpoint()
        try:
            message = self._client_inbox.receive_nowait()
        except anyio.WouldBlock:
            try:
                with anyio.fail_after(limit):
                    message = await self._client_inbox.receive()
            except TimeoutError:
                raise ReceiveTimeout(f"nothing from the application within {limit} s") from None
        if message is _APP_RETURNED:
            self._to_client.send_nowait(_APP_RETURNED)  # every later wait sees it too
            self._raise_app_error()
        return message

    async def _wait_app_done(self, why: str) -> None:
        try:
            with anyio.fail_after(self.timeout):
                await self._app_done.wait()
        except TimeoutError:
            raise ReceiveTimeout(f"the application did not return within {self.timeout} s {why}") from None
        self._raise_app_error()

    def _raise_app_error(self) -> None:
        if self._app_error is not None:
            error, self._app_error = self._app_error, None
            raise error


class ClientWebSocket(_AppRunner):
    """The client side of an in-process WebSocket connection (see `connect`)."""

    def __init__(self, app: ASGIApp, scope: dict[str, Any], timeout: float) -> None:
        super().__init__(app, scope, timeout)
        self.accepted_subprotocol: str | None = None
        """The subprotocol the application chose in ``accept()``, if any."""
        self.response_headers = Headers([])
        """The headers the application added in ``accept()``."""
        self.close_code: int | None = None
        """The code the application closed with, once it has."""
        self.close_reason = ""
        """The reason the application closed with, once it has."""
        self._client_closed = False
        self._close_read = False
        self._final: Message | None = None

    # -- the server's side of the contract --------------------------------------------

    async def _app_receive(self) -> Message:
        if self._final is not None:
            try:
                return self._app_inbox.receive_nowait()
            except anyio.WouldBlock:
                return self._final
        return await self._app_inbox.receive()

    async def _app_send(self, message: Message) -> None:
        if self._client_closed:
            raise OSError("the client has disconnected")
        if self.close_code is not None:
            raise RuntimeError(f"ASGI event {message['type']!r} sent after 'websocket.close'")
        if message["type"] == "websocket.close":
            self.close_code = int(message.get("code", CloseCode.NORMAL_CLOSURE))
            self.close_reason = message.get("reason") or ""
            # What a server does next: the client answers the close frame.
            self._final = {
                "type": "websocket.disconnect",
                "code": self.close_code,
                "reason": self.close_reason,
            }
            self._to_app.send_nowait(self._final)
        self._to_client.send_nowait(message)

    # -- handshake -----------------------------------------------------------------

    async def __aenter__(self) -> ClientWebSocket:
        await self._start()
        try:
            self._to_app.send_nowait({"type": "websocket.connect"})
            message = await self._next(None)
            kind = message["type"]
            if kind == "websocket.accept":
                self.accepted_subprotocol = message.get("subprotocol")
                self.response_headers = Headers.from_raw(message.get("headers"))
                return self
            if kind == "websocket.close":
                raise HandshakeRejected(403, close_code=self.close_code, reason=self.close_reason)
            if kind == "websocket.http.response.start":
                body = b""
                while True:
                    part = await self._next(None)
                    if part["type"] != "websocket.http.response.body":
                        break
                    body += part.get("body", b"")
                    if not part.get("more_body", False):
                        break
                headers = Headers.from_raw(message.get("headers"))
                raise HandshakeRejected(message["status"], body=body, headers=headers)
            # Servers answer an app that returns without a handshake with 500.
            raise HandshakeRejected(500)
        except BaseException:
            await self._stop()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is None:
                await self.close()
        finally:
            await self._stop()

    # -- sending -------------------------------------------------------------------

    async def send_event(self, event: Message) -> None:
        """Deliver a raw ASGI event to the application's ``receive()``."""
        self._raise_app_error()
        if self.close_code is not None:
            raise WebSocketDisconnect(self.close_code, self.close_reason)
        if self._client_closed:
            raise WebSocketStateError("this client has closed the connection")
        self._to_app.send_nowait(event)

    async def send_text(self, data: str) -> None:
        """Send a text frame to the app."""
        await self.send_event({"type": "websocket.receive", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame to the app."""
        await self.send_event({"type": "websocket.receive", "bytes": data})

    async def send_json(self, value: Any) -> None:
        """Send ``value`` as JSON in a text frame."""
        await self.send_text(_JSON.encode(value))  # type: ignore[arg-type]

    async def send_msgpack(self, value: Any) -> None:
        """Send ``value`` as msgpack in a binary frame."""
        await self.send_bytes(_MSGPACK.encode(value))  # type: ignore[arg-type]

    # -- receiving -----------------------------------------------------------------

    async def receive_event(self, timeout: float | None = None) -> Message:
        """The application's next raw ASGI event (``websocket.send`` or ``websocket.close``)."""
        if self._close_read and self.close_code is not None:
            # Nothing can follow a close frame: a real client does not wait for the app to return.
            raise WebSocketDisconnect(self.close_code, self.close_reason)
        message = await self._next(timeout)
        if message is _APP_RETURNED:
            if self.close_code is not None:
                raise WebSocketDisconnect(self.close_code, self.close_reason)
            raise WebSocketDisconnect(CloseCode.ABNORMAL_CLOSURE, "the application returned without closing")
        if message["type"] == "websocket.close":
            self._close_read = True
        return message

    async def receive_text(self, timeout: float | None = None) -> str:
        """The app's next message, which must be text; `WebSocketDisconnect` if it closed."""
        data = await self._receive_data("text", timeout)
        assert isinstance(data, str)
        return data

    async def receive_bytes(self, timeout: float | None = None) -> bytes:
        """The app's next message, which must be binary; `WebSocketDisconnect` if it closed."""
        data = await self._receive_data("bytes", timeout)
        assert isinstance(data, bytes)
        return data

    async def receive_json(self, timeout: float | None = None) -> Any:
        """The app's next message, a text frame decoded as JSON."""
        return _JSON.decode(await self.receive_text(timeout))

    async def receive_msgpack(self, timeout: float | None = None) -> Any:
        """The app's next message, a binary frame decoded as msgpack."""
        return _MSGPACK.decode(await self.receive_bytes(timeout))

    async def _receive_data(self, key: str, timeout: float | None) -> str | bytes:
        message = await self.receive_event(timeout)
        if message["type"] == "websocket.close":
            raise WebSocketDisconnect(self.close_code or CloseCode.NORMAL_CLOSURE, self.close_reason)
        data = message.get(key)
        if data is None:
            other = "binary" if key == "text" else "text"
            raise TypeError(f"expected a {'text' if key == 'text' else 'binary'} message, got a {other} one")
        return data  # type: ignore[no-any-return]

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close from the client's side and wait until the application has returned."""
        if not self._client_closed and self.close_code is None:
            self._to_app.send_nowait({"type": "websocket.disconnect", "code": int(code), "reason": reason})
        self._client_closed = True
        await self._wait_app_done("after the connection closed")


def connect(
    app: ASGIApp,
    path: str = "/",
    *,
    subprotocols: Iterable[str] | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ClientWebSocket:
    """Open an in-process WebSocket connection to ``app``: ``async with connect(app, path) as ws:``.

    Leaving the block closes the connection (code 1000) and waits for the
    application to return, so that its clean-up has run. The handshake carries
    ``headers`` as a server would pass them on: one given here replaces the
    client's own (``Host: testserver`` and the upgrade headers), and a
    ``Sec-WebSocket-Protocol`` adds to ``subprotocols``. A path beyond ASCII is
    percent-encoded, as clients send it; one with a ``#fragment`` raises
    `WebSocketProtocolError`, as browsers refuse it.
    """
    return ClientWebSocket(app, _scope(path, subprotocols, headers), timeout)


class _Lifespan(_AppRunner):
    async def __aenter__(self) -> None:
        await self._start()
        try:
            await self._exchange("startup")
        except BaseException:
            await self._stop()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self._exchange("shutdown")
        finally:
            await self._stop()

    async def _exchange(self, event: str) -> None:
        if self._app_done.is_set():
            return  # the app does not do lifespan (see below)
        self._to_app.send_nowait({"type": f"lifespan.{event}"})
        message = await self._next(None)
        if message is _APP_RETURNED:
            # An app that returns on a lifespan scope without answering has no
            # lifespan support; servers (uvicorn's "auto" mode) carry on without.
            return
        if message["type"] == f"lifespan.{event}.failed":
            raise LifespanFailed(message.get("message", f"{event} failed"))
        if message["type"] != f"lifespan.{event}.complete":
            raise LifespanFailed(f"expected 'lifespan.{event}.complete', got {message['type']!r}")


def lifespan(app: ASGIApp, *, timeout: float = DEFAULT_TIMEOUT) -> AbstractAsyncContextManager[None]:
    """Run ``app``'s startup hooks on entry and its shutdown hooks on exit."""
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    return _Lifespan(app, scope, timeout)


class SyncClientWebSocket:
    """The blocking face of `ClientWebSocket`, for sync tests (see `TestClient`)."""

    def __init__(self, portal: BlockingPortal, session: ClientWebSocket) -> None:
        self._portal = portal
        self._session = session

    @property
    def accepted_subprotocol(self) -> str | None:
        """The subprotocol the app chose in ``accept()``, if any."""
        return self._session.accepted_subprotocol

    @property
    def response_headers(self) -> Headers:
        """The headers the app added in ``accept()``."""
        return self._session.response_headers

    @property
    def close_code(self) -> int | None:
        """The code the app closed with, once it has."""
        return self._session.close_code

    @property
    def close_reason(self) -> str:
        """The reason the app closed with, once it has."""
        return self._session.close_reason

    def send_text(self, data: str) -> None:
        """Send a text frame to the app."""
        self._portal.call(self._session.send_text, data)

    def send_bytes(self, data: bytes) -> None:
        """Send a binary frame to the app."""
        self._portal.call(self._session.send_bytes, data)

    def send_json(self, value: Any) -> None:
        """Send ``value`` as JSON in a text frame."""
        self._portal.call(self._session.send_json, value)

    def send_msgpack(self, value: Any) -> None:
        """Send ``value`` as msgpack in a binary frame."""
        self._portal.call(self._session.send_msgpack, value)

    def send_event(self, event: Message) -> None:
        """Deliver a raw ASGI event to the app's ``receive()``."""
        self._portal.call(self._session.send_event, event)

    def receive_text(self, timeout: float | None = None) -> str:
        """The app's next message, which must be text; `WebSocketDisconnect` if it closed."""
        return self._portal.call(self._session.receive_text, timeout)

    def receive_bytes(self, timeout: float | None = None) -> bytes:
        """The app's next message, which must be binary; `WebSocketDisconnect` if it closed."""
        return self._portal.call(self._session.receive_bytes, timeout)

    def receive_json(self, timeout: float | None = None) -> Any:
        """The app's next message, a text frame decoded as JSON."""
        return self._portal.call(self._session.receive_json, timeout)

    def receive_msgpack(self, timeout: float | None = None) -> Any:
        """The app's next message, a binary frame decoded as msgpack."""
        return self._portal.call(self._session.receive_msgpack, timeout)

    def receive_event(self, timeout: float | None = None) -> Message:
        """The app's next raw ASGI event."""
        return self._portal.call(self._session.receive_event, timeout)

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close from the client's side and wait until the app has returned."""
        self._portal.call(self._session.close, code, reason)


class TestClient:
    """A blocking client for sync tests; the application runs on ``backend`` in a background thread.

    ``with TestClient(api) as client:`` also runs the startup and shutdown hooks.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self,
        app: ASGIApp,
        *,
        backend: str = "asyncio",
        backend_options: dict[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.app = app
        self.backend = backend
        self.backend_options = backend_options
        self.timeout = timeout
        self._portal: BlockingPortal | None = None
        self._exit_stack: list[Any] = []

    def __enter__(self) -> TestClient:
        portal_cm = start_blocking_portal(self.backend, self.backend_options)
        self._portal = portal_cm.__enter__()
        lifespan_cm = self._portal.wrap_async_context_manager(lifespan(self.app, timeout=self.timeout))
        try:
            lifespan_cm.__enter__()
        except BaseException:
            self._portal = None
            portal_cm.__exit__(None, None, None)
            raise
        self._exit_stack = [lifespan_cm, portal_cm]
        return self

    def __exit__(self, *exc_info: Any) -> None:
        lifespan_cm, portal_cm = self._exit_stack
        try:
            lifespan_cm.__exit__(None, None, None)
        finally:
            self._portal = None
            portal_cm.__exit__(None, None, None)

    @contextmanager
    def websocket_connect(
        self,
        path: str = "/",
        *,
        subprotocols: Iterable[str] | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        timeout: float | None = None,
    ) -> Iterator[SyncClientWebSocket]:
        """Open a connection: ``with client.websocket_connect("/echo") as ws:``."""
        session = connect(
            self.app,
            path,
            subprotocols=subprotocols,
            headers=headers,
            timeout=self.timeout if timeout is None else timeout,
        )
        with self._running_portal() as portal, portal.wrap_async_context_manager(session):
            yield SyncClientWebSocket(portal, session)

    @contextmanager
    def _running_portal(self) -> Iterator[BlockingPortal]:
        if self._portal is not None:
            yield self._portal
        else:
            # Kept while this connection is open, so that the ones opened meanwhile share its
            # event loop: what the app shares between connections (groups) is bound to one.
            with start_blocking_portal(self.backend, self.backend_options) as portal:
                self._portal = portal
                try:
                    yield portal
                finally:
                    self._portal = None


# Characters a URI reserves (RFC 3986, 2.2), and the escapes already there: kept as they are.
_DELIMS = ":/?#[]@!$&'()*+,;=%"


def _scope(
    target: str,
    subprotocols: Iterable[str] | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> dict[str, Any]:
    if "#" in target:
        # RFC 6455 3: no fragment in a WebSocket URI; browsers throw a SyntaxError for one.
        raise WebSocketProtocolError(f"a WebSocket URL has no #fragment: {target!r}")
    # Sent as clients send it: what a URI cannot hold (a space, a character beyond ASCII)
    # percent-encoded, as UTF-8. Servers give the app that in raw_path and query_string.
    target = quote(target, safe=_DELIMS)
    path, _, query = target.partition("?")
    offered = list(subprotocols or ())
    own = [
        (b"host", b"testserver"),
        (b"connection", b"upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    ]
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    given = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs]
    # A header the test gives replaces the client's own (a Host of its choosing, say), as
    # a client sends one Host, not two. The offer of ``subprotocols`` is the test's, not a
    # default: it goes too, before a Sec-WebSocket-Protocol given in ``headers``.
    raw = [(name, value) for name, value in own if all(name != k for k, _ in given)]
    if offered:
        raw.append((b"sec-websocket-protocol", ", ".join(offered).encode("latin-1")))
    raw += given
    # As servers do: the offer is what the handshake's Sec-WebSocket-Protocol headers say,
    # whether it came from ``subprotocols`` or from ``headers``.
    protocols = [
        protocol.strip()
        for name, value in raw
        if name == b"sec-websocket-protocol"
        for protocol in value.decode("latin-1").split(",")
        if protocol.strip()
    ]
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("testserver", 80),
        "client": ("testclient", 50000),
        "root_path": "",
        "path": unquote(path),
        "raw_path": path.encode("ascii"),
        "query_string": query.encode("ascii"),
        "headers": raw,
        "subprotocols": protocols,
        "state": {},
        "extensions": {"websocket.http.response": {}},
    }
