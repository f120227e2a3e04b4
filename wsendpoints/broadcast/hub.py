"""The hub: group membership, publishing, and delivery to this process's members.

One message, start to end: ``publish`` serialises it with msgpack (so an
unserialisable message fails there, in the publisher) and hands the bytes to
the backend; the backend brings them to every subscribed process, where
``_deliver`` decodes them once, encodes once per send codec, and offers the
ready ASGI event to each member's bounded queue. Offering never waits, so a
slow member cannot slow the others; each connection drains its own queue in a
task of its own task group.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
import msgpack
from anyio.abc import TaskGroup

from .._checks import is_positive_int
from ..codecs import Codec, _frame
from ..exceptions import (
    BroadcastError,
    CloseCode,
    ConfigurationError,
    WebSocketStateError,
)
from ..websockets import ConnectionState
from ._waiters import NOTHING, Waiter, new_waiter
from .base import BroadcastBackend, backend_from_url

if TYPE_CHECKING:
    from ..types import Message, Send
    from ..websockets import WebSocket

__all__ = ["OVERFLOW_POLICIES", "Broadcast", "Overflow", "Subscription"]

logger = logging.getLogger("wsendpoints")

Overflow = Literal["drop_oldest", "drop_newest", "close"]
"""What a full group queue does with one more message."""
OVERFLOW_POLICIES: tuple[Overflow, ...] = ("drop_oldest", "drop_newest", "close")
"""Every `Overflow` policy."""

_CONNECTED = ConnectionState.CONNECTED
# Tells this process's members apart from other processes' in `exclude`.
_PROCESS = os.urandom(6).hex()
# Numbers each member of this process for `exclude`. Not id(): a publish still at
# the broker when its sender leaves would skip whoever took the sender's address.
_TOKENS = itertools.count()
# A backend that cannot disconnect in this time is left behind at shutdown.
_STOP_TIMEOUT = 10.0
# What wakes a connection's parked drain task when the connection ends, so that it returns
# rather than being cancelled (see `ConnectionOutbox.stop`).
_STOP: Any = object()


def check_queue_options(size: int, overflow: str) -> None:
    if not is_positive_int(size):
        raise ConfigurationError(f"group_queue_size must be a positive integer, not {size!r}")
    if overflow not in OVERFLOW_POLICIES:
        raise ConfigurationError(
            f"unknown group_overflow {overflow!r}; expected one of {', '.join(OVERFLOW_POLICIES)}"
        )


class _Member(Protocol):
    token: str

    def offer(self, message: Any, events: dict[int, Message | None]) -> None: ...


class _Queue:
    """A bounded FIFO filled without waiting and drained by one task."""

    __slots__ = ("_items", "_waiter", "dropped", "maxsize", "overflow")

    def __init__(self, maxsize: int, overflow: Overflow) -> None:
        self._items: deque[Any] = deque()
        self._waiter: Waiter | None = None
        self.maxsize = maxsize
        self.overflow = overflow
        self.dropped = 0

    def put(self, item: Any) -> bool:
        """Queue ``item``; False if the queue is full and the policy is to close."""
        items = self._items
        # An empty queue's consumer may be parked: it gets the item with its wake-up.
        if not items and self._waiter is not None and self._waiter.wake(item):
            return True
        if len(items) >= self.maxsize:
            if self.overflow == "close":
                return False
            self.dropped += 1
            if self.overflow == "drop_newest":
                return True
            items.popleft()
        items.append(item)
        return True

    async def get(self) -> Any:
        items = self._items
        if items:
            return items.popleft()
        waiter = self.waiter()
        try:
            return await waiter.wait()
        except BaseException:
            # Cancelled with an item already handed over: the next get() has it.
            item = waiter.take_back()
            if item is not NOTHING:
                items.appendleft(item)
            raise

    def waiter(self) -> Waiter:
        """What the draining task waits on for the next put; only it may wait."""
        if self._waiter is None:
            self._waiter = new_waiter()
        return self._waiter


class ConnectionOutbox:
    """A connection's group membership and its queue of outgoing group messages."""

    # A fan-out reads each member's outbox once per message: no instance dict to go through.
    __slots__ = (
        "_closing",
        "_codec",
        "_codec_key",
        "_draining",
        "_ended",
        "_hub",
        "_queue",
        "_send",
        "_ws",
        "groups",
        "token",
    )

    def __init__(
        self,
        hub: Broadcast,
        ws: WebSocket,
        send: Send,
        codec: Codec,
        maxsize: int,
        overflow: Overflow,
    ) -> None:
        self.token = f"{_PROCESS}:{next(_TOKENS)}"
        self.groups: set[str] = set()
        self._hub = hub
        # None once the connection has ended (see `leave_all`).
        self._ws: WebSocket | None = ws
        self._send = send
        self._codec = codec
        self._codec_key = id(codec)  # codecs need not be hashable
        self._queue = _Queue(maxsize, overflow)
        self._draining = False
        self._closing = False
        self._ended = False

    @property
    def dropped(self) -> int:
        """How many group messages were dropped because the queue was full."""
        return self._queue.dropped

    def start(self) -> None:
        """Start sending group messages: at the first join after accept(), or at accept()."""
        ws = self._ws
        if not self._draining and ws is not None and ws.connection_state is _CONNECTED:
            ws.task_group.start_soon(self._drain)
            self._draining = True

    async def join(self, group: str) -> None:
        if self._ended:
            raise WebSocketStateError("cannot join a group: the connection has ended")
        self.start()
        if group not in self.groups:
            self.groups.add(group)
            try:
                await self._hub.join(group, self)
            except BaseException:
                # Not a member (the hub has let it go): not in ws.groups, and a later join tries again.
                self.groups.discard(group)
                raise

    async def leave(self, group: str) -> None:
        if group in self.groups:
            self.groups.discard(group)
            await self._hub.leave(group, self)

    def stop(self) -> None:
        """The handler has ended: send no more, and let a parked drain task return.

        Returning beats being cancelled with the connection's task group: on asyncio,
        anyio keeps a cancelled task's traceback, and with it the drain's frame and
        the WebSocket, in a reference cycle until the collector's next full collection.
        """
        self._closing = True
        waiter = self._queue._waiter
        if waiter is not None:
            waiter.wake(_STOP)

    async def leave_all(self) -> None:
        ws, self._ws = self._ws, None  # the WebSocket holds its outbox: no cycle to outlive it
        self._ended = True
        for group in list(self.groups):
            await self.leave(group)
        if self.dropped and ws is not None:
            logger.info("%s missed %d group message(s): it read too slowly", ws.path, self.dropped)

    def offer(self, message: Any, events: dict[int, Message | None]) -> None:
        if self._closing or self._ended:
            return
        key = self._codec_key
        if key in events:
            event = events[key]
        else:
            event = events[key] = _send_event(self._codec, message)
        if event is None:
            return
        queue = self._queue
        dropped = queue.dropped
        if not queue.put(event):
            self._closing = True
            ws = self._connection()
            logger.warning("closing %s with 1008: its queue of group messages is full", ws.path)
            # The client's fault, as a bad message is: the handler's later sends end quietly.
            reason = "too slow to read its group messages"
            ws.task_group.start_soon(ws._close_by_framework, CloseCode.POLICY_VIOLATION, reason)
        elif queue.dropped == 1 and dropped == 0:
            logger.warning(
                "dropping group messages for %s: its queue of %d is full (%s)",
                self._connection().path,
                queue.maxsize,
                queue.overflow,
            )

    async def _drain(self) -> None:
        # The per-member half of a fan-out: everything here runs once per member
        # per message, so it waits on the queue and sends through the server's own
        # send directly (the event is ready-made, and only ever 'websocket.send').
        ws = self._connection()
        send = self._send
        items = self._queue._items
        wait = self._queue.waiter().wait
        try:
            while True:
                # What the queue holds, or else (parked until then) the next put's item.
                event = items.popleft() if items else await wait()
                if ws._state is not _CONNECTED or event is _STOP:
                    return  # closed, gone or ended: what is left in the queue cannot be sent
                try:
                    await send(event)
                except (UnicodeError, TypeError):
                    # The server cannot frame this one message (a custom codec's
                    # output); the connection itself is fine.
                    logger.exception("the server refused a group message for %s", ws.path)
                except Exception:
                    ws._gone()  # the server's way of saying the client has gone
                    return
        finally:
            # Nothing more will be sent: stop queueing (and counting drops) for it.
            self._closing = True

    def _connection(self) -> WebSocket:
        ws = self._ws
        assert ws is not None, "an outbox lets its WebSocket go only once the connection has ended"
        return ws


def _send_event(codec: Codec, message: Any) -> Message | None:
    try:
        key, data = _frame(codec.encode(message), codec)
    except TypeError as exc:
        logger.error("a group message cannot be sent with the %s codec: %s", type(codec).__name__, exc)
        return None
    except Exception:
        logger.exception("the %s codec failed to encode a group message", type(codec).__name__)
        return None
    return {"type": "websocket.send", key: data}


class _Subscribing:
    """A first joiner's request for a channel's subscription, which those who join meanwhile wait on."""

    __slots__ = ("done", "retry")

    def __init__(self) -> None:
        self.done = anyio.Event()
        # Those who joined meanwhile, when the first joiner was cancelled: they ask again.
        self.retry: set[_Member] = set()


class Subscription:
    """A low-level subscription to one channel: ``async for message in sub``.

    Messages arrive as published (after the msgpack round trip). The queue
    holds ``max_queue`` messages; past that the oldest are dropped (``dropped``
    counts them).
    """

    def __init__(self, hub: Broadcast, channel: str, max_queue: int) -> None:
        check_queue_options(max_queue, "drop_oldest")
        self.token = f"{_PROCESS}:{next(_TOKENS)}"
        self.channel = channel
        self._hub = hub
        self._queue = _Queue(max_queue, "drop_oldest")

    @property
    def dropped(self) -> int:
        """How many messages were dropped because the queue was full."""
        return self._queue.dropped

    async def __aenter__(self) -> Subscription:
        await self._hub.join(self.channel, self)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with anyio.CancelScope(shield=True):
            await self._hub.leave(self.channel, self)

    def offer(self, message: Any, events: dict[int, Message | None]) -> None:
        """Queue a delivered message (called by the hub)."""
        self._queue.put(message)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        return await self._queue.get()


class Broadcast:
    """Groups across connections, processes and machines, over a `BroadcastBackend`.

    ``async with broadcast:`` starts and stops the backend; the `API` does it
    in its lifespan, around the startup and shutdown hooks.
    """

    def __init__(self, backend: str | BroadcastBackend = "memory://") -> None:
        self.backend = backend_from_url(backend) if isinstance(backend, str) else backend
        self.backend.attach(self._deliver)
        self._members: dict[str, set[_Member]] = {}
        # Set when the backend has confirmed the subscription a first joiner asked for.
        self._subscribing: dict[str, _Subscribing] = {}
        self._task_group: TaskGroup | None = None

    async def __aenter__(self) -> Broadcast:
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        try:
            await self.backend.start(task_group)
        except BaseException as exc:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._task_group = task_group
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task_group, self._task_group = self._task_group, None
        assert task_group is not None
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_STOP_TIMEOUT):
                await self.backend.stop()
        finally:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)

    async def publish(self, channel: str, message: Any, *, exclude: WebSocket | None = None) -> None:
        """Send ``message`` to every member of ``channel``, in every process sharing the backend.

        ``exclude`` leaves that connection out (typically the sender).
        """
        outbox = exclude._outbox if exclude is not None else None
        try:
            payload = msgpack.packb((message, outbox.token if outbox is not None else None))
        except (TypeError, ValueError, OverflowError) as exc:
            raise BroadcastError(
                f"cannot publish to {channel!r}: msgpack cannot serialise the message ({exc})"
            ) from None
        try:
            # A tuple as a dict key packs, but arrives as a list, which cannot be a key: every
            # receiver would drop the message. Unpacking once here says so to the publisher.
            msgpack.unpackb(payload, strict_map_key=False)
        except (TypeError, ValueError) as exc:
            raise BroadcastError(
                f"cannot publish to {channel!r}: the message would not arrive, as a dict key that is "
                f"a tuple becomes a list ({exc})"
            ) from None
        await self.backend.publish(channel, payload)

    def subscribe(self, channel: str, *, max_queue: int = 1000) -> Subscription:
        """``async with broadcast.subscribe(channel) as sub: async for message in sub: ...``."""
        return Subscription(self, channel, max_queue)

    def members(self, channel: str) -> int:
        """How many of this process's connections and subscriptions are in ``channel``."""
        return len(self._members.get(channel, ()))

    async def join(self, channel: str, member: _Member) -> None:
        """Add ``member`` to ``channel``, subscribing the backend for its first member."""
        members = self._members.get(channel)
        if members is not None:
            members.add(member)
            subscribing = self._subscribing.get(channel)
            if subscribing is not None:
                # Not a member until the first joiner's subscription holds.
                try:
                    await subscribing.done.wait()
                except BaseException:
                    # Cancelled: a Subscription whose __aenter__ failed is never left.
                    self._drop(channel, member)
                    raise
                if member in subscribing.retry:
                    await self.join(channel, member)
                elif member not in self._members.get(channel, ()):
                    raise BroadcastError(f"could not subscribe to {channel!r}")
            return
        self._members[channel] = {member}
        subscribing = self._subscribing[channel] = _Subscribing()
        try:
            await self.backend.subscribe(channel)
        except BaseException as exc:
            joined = self._members.pop(channel, set())  # everyone who joined meanwhile goes too...
            if not isinstance(exc, Exception):
                # ...unless this joiner was only cancelled (its connection ended, say): that
                # is no answer for the others, so they ask again, the first of them subscribing.
                subscribing.retry = joined - {member}
            raise
        finally:
            del self._subscribing[channel]
            subscribing.done.set()

    async def leave(self, channel: str, member: _Member) -> None:
        """Remove ``member`` from ``channel``, unsubscribing the backend after its last."""
        if self._drop(channel, member):
            await self.backend.unsubscribe(channel)

    def _drop(self, channel: str, member: _Member) -> bool:
        """Remove ``member``; True if that emptied the channel."""
        members = self._members.get(channel)
        if members is None:
            return False
        members.discard(member)
        if members:
            return False
        del self._members[channel]
        return True

    def _deliver(self, channel: str, payload: bytes) -> None:
        members = self._members.get(channel)
        if not members:
            return
        try:
            message, exclude = msgpack.unpackb(payload, strict_map_key=False)
        except Exception:
            logger.warning("ignored an undecodable broadcast payload on %r", channel)
            return
        events: dict[int, Message | None] = {}
        # A snapshot, so that nothing done while offering can change the set under the loop.
        if exclude is None:  # most publishes: no token to compare per member
            for member in tuple(members):
                member.offer(message, events)
        else:
            for member in tuple(members):
                if member.token != exclude:
                    member.offer(message, events)
