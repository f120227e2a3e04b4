"""Running one connection: its task group, and the one place a failure becomes a close code.

Endpoints and function views both run their handler in `serving`. Whatever ends
the handler - it returns, the client leaves, a message is rejected, the handler
or one of the connection's background tasks raises, or the whole connection is
cancelled - the connection leaves `serving` closed, with ``ws.close_code`` saying
how it ended, and every task it started has finished.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from .exceptions import (
    AuthenticationFailed,
    CloseCode,
    WebSocketDisconnect,
    WebSocketProtocolError,
    WebSocketStateError,
)
from .websockets import _CLOSE_TIMEOUT, ConnectionState, WebSocket

if TYPE_CHECKING:
    from .applications import API

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

logger = logging.getLogger("wsendpoints")

_CLOSED = ConnectionState.CLOSED


class serving:
    """``async with serving(ws, name):`` run the block as ``ws``'s handler.

    The block runs inside the connection's task group; whatever ends it, the
    connection leaves closed, with ``ws.close_code`` saying how. A context
    manager rather than a coroutine that awaits the handler: it adds no frame
    between the event loop and the handler, so every message resumes fewer
    frames and each connection keeps two coroutines and a closure fewer.
    """

    __slots__ = ("_api", "_going_away", "_name", "_tg", "_ws")

    def __init__(self, ws: WebSocket, name: str) -> None:
        self._ws = ws
        self._name = name
        self._tg = anyio.create_task_group()
        self._going_away = False
        self._api: API | None = ws.scope.get("wsendpoints.api")

    async def __aenter__(self) -> None:
        await self._tg.__aenter__()
        self._ws._task_group = self._tg
        self._ws._handler_task = anyio.get_current_task().id
        if self._api is not None:
            self._api._served(self)

    def go_away(self) -> None:
        """End the connection with 1001 (the server is going away), on_disconnect included."""
        self._going_away = True
        self._tg.cancel_scope.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        ws, tg = self._ws, self._tg
        handler_error: Exception | None = None
        if isinstance(exc, Exception):
            # Handled here, inside the group, so that the background tasks are
            # cancelled and the traceback is the handler's own.
            handler_error, exc_type, exc, tb = exc, None, None, None
        error: BaseException | None = handler_error
        try:
            if exc is None:
                if ws._outbox is not None:
                    ws._outbox.stop()
                tg.cancel_scope.cancel()
            if not await tg.__aexit__(exc_type, exc, tb) and exc is not None:
                raise exc
        except BaseException as raised:
            leaves = _leaves(raised)
            if not all(isinstance(leaf, Exception) for leaf in leaves):
                # Cancelled (the server is going away), or the process is exiting
                # (SystemExit, KeyboardInterrupt): close properly, then let it go on.
                cancelled = any(isinstance(leaf, anyio.get_cancelled_exc_class()) for leaf in leaves)
                code = CloseCode.GOING_AWAY if cancelled else CloseCode.INTERNAL_ERROR
                with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                    await _end(ws, None, self._name, code)
                raise
            # A background task failed: what is not the end of the connection is an
            # error, logged. A background send that lost the race against the app's
            # own close() is such an end, not an error.
            ended = (
                (WebSocketDisconnect, WebSocketStateError)
                if ws.connection_state is _CLOSED
                else WebSocketDisconnect
            )
            failures = [
                leaf
                for leaf in leaves
                if isinstance(leaf, Exception)
                and (
                    not isinstance(leaf, ended)
                    or (isinstance(leaf, WebSocketDisconnect) and not ws._ends_with(leaf))
                )
            ]
            if handler_error is not None and ws._ending(handler_error) is None:
                # The handler failed too (a task shielded from its cancellation, say):
                # both tracebacks go in the log, the handler's first.
                failures.insert(0, handler_error)
            if len(failures) > 1:
                error = ExceptionGroup(f"{len(failures)} errors in {self._name}", failures)
            elif failures:
                error = failures[0]
            elif error is None:
                error = WebSocketDisconnect(ws.close_code or CloseCode.NORMAL_CLOSURE)
        finally:
            ws._task_group = None
            if self._api is not None:
                self._api._served_no_more(self)
            if self._going_away and error is None:
                error = WebSocketDisconnect(CloseCode.GOING_AWAY)
            if ws._outbox is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                    await ws._outbox.leave_all()
        await _end(ws, error, self._name)
        logger.debug("closed %s with %s", ws.path, ws.close_code)
        return True


async def _end(
    ws: WebSocket, error: BaseException | None, name: str, code: int = CloseCode.NORMAL_CLOSURE
) -> None:
    refusal = _refusal(error)
    if refusal is not None and ws.connection_state is ConnectionState.CONNECTING:
        # Raised before accept, in on_connect or a view's body: the refusal it asks for,
        # as from the authenticate hook. A refusal HTTP cannot carry is the app's 500.
        try:
            await refuse(ws, refusal)
            return
        except WebSocketProtocolError as exc:
            error = exc
    reason = ""
    disconnect = ws._ending(error)
    if disconnect is not None:
        code, reason = disconnect.code, disconnect.reason
    elif error is not None:
        code = CloseCode.INTERNAL_ERROR
        logger.error("error in %s on %s; %s", name, ws.path, _outcome(ws), exc_info=error)
    state = ws.connection_state
    if state is ConnectionState.CONNECTING:
        # Never accepted: refuse the handshake. A failure is the server's (500); going
        # away is not the client's fault, so it is told to come back (503).
        if code == CloseCode.GOING_AWAY:
            await ws._refuse(503, code, reason="server shutting down")
        else:
            status = 500 if error is not None and code == CloseCode.INTERNAL_ERROR else 403
            await ws._refuse(status, code, reason=reason)
    elif state is ConnectionState.CONNECTED:
        try:
            await ws.close(code, reason)
        except WebSocketProtocolError:
            # The handler raised WebSocketDisconnect with a code or reason that cannot be sent.
            logger.exception("error in %s on %s; closing with 1011", name, ws.path)
            await ws.close(CloseCode.INTERNAL_ERROR)


def _outcome(ws: WebSocket) -> str:
    """What became of a connection whose handler raised, for the log line."""
    state = ws.connection_state
    if state is ConnectionState.CONNECTING:
        return "refusing the handshake"
    if state is ConnectionState.CONNECTED:
        return "closing with 1011"
    if state is _CLOSED and ws.close_code == CloseCode.INTERNAL_ERROR:
        return "closed with 1011"  # by ``async with ws``, on its way out with this error
    return "the connection had already ended"


async def authenticate(ws: WebSocket, hook: Callable[[WebSocket], Awaitable[Any]]) -> bool:
    """Run the route's ``authenticate`` hook; on `AuthenticationFailed`, refuse the handshake."""
    try:
        ws.user = await hook(ws)
    except AuthenticationFailed as exc:
        await refuse(ws, exc)
        return False
    return True


async def refuse(ws: WebSocket, exc: AuthenticationFailed) -> None:
    """Refuse the handshake with the HTTP response ``exc`` describes (1008 for ``close_code``)."""
    await ws._refuse(exc.status_code, CloseCode.POLICY_VIOLATION, exc.body, exc.headers.multi_items())
    logger.info("refused WebSocket connection to %s: authentication failed (%d)", ws.path, exc.status_code)


def _refusal(error: BaseException | None) -> AuthenticationFailed | None:
    """The `AuthenticationFailed` that ``error`` is, alone or as all a task group raised (the first)."""
    if error is None:
        return None
    leaves = _leaves(error)
    refusals = [leaf for leaf in leaves if isinstance(leaf, AuthenticationFailed)]
    return refusals[0] if refusals and len(refusals) == len(leaves) else None


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]
