"""``redis://host:port/db``: every process sharing one Redis shares the groups, through Redis pub/sub.

The client is coredis because it is built on anyio, so this one implementation
runs on asyncio and trio alike (redis-py's asyncio client runs on asyncio only).

One task, started with the app's lifespan, owns the subscriber connection: it
subscribes to the channels this process has members in, reads what arrives and
hands it to the hub. Publishing uses separate pooled connections. Unlike
``memory://``, this backend needs the lifespan: before it starts, a publish or
a join raises `BroadcastError` (rather than a member that never receives), and
if Redis cannot be reached then, the startup fails.

When Redis goes away:

- ``publish`` raises `BroadcastError` at once (or within ``timeout`` if Redis
  stops answering), so the publisher sees it;
- joining and leaving keep working: the channels are (un)subscribed when the
  connection comes back;
- the reader logs a warning, reconnects with exponential backoff (0.1 s
  doubling to 5 s), subscribes again to every current channel, and logs the
  window in which messages from other processes may have been lost: Redis
  pub/sub keeps nothing for a subscriber that is not connected.

Note that Redis pub/sub ignores the database number: apps that must not see
each other's groups need separate Redis servers (or distinct group names).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from urllib.parse import urlsplit

import anyio
import coredis
from anyio.abc import TaskGroup, TaskStatus
from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.patterns.pubsub import PubSub

from ..exceptions import BroadcastError, ConfigurationError
from .base import BroadcastBackend, Deliver

__all__ = ["RedisBackend"]

logger = logging.getLogger("wsendpoints")

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
NOT_RUNNING = "the Redis backend is not running (it starts and stops with the app's lifespan)"


class RedisBackend(BroadcastBackend):
    """Carries payloads between processes through Redis pub/sub; see the module docstring.

    ``timeout`` bounds connecting and every call to Redis, in seconds.
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port or 6379
            db = int(parts.path.strip("/") or 0)
        except ValueError:
            raise ConfigurationError(f"invalid Redis URL {url!r}; expected redis://host:port/db") from None
        self.url = url
        self.timeout = timeout
        # For messages: where Redis is, without any password in the URL.
        self.where = f"{parts.hostname or 'localhost'}:{port}/{db}"
        self._deliver: Deliver | None = None
        self._client: coredis.Redis[bytes] | None = None
        self._channels: set[str] = set()
        self._pubsub: PubSub[bytes] | None = None
        self._stopping = anyio.Event()
        self._stopped: anyio.Event | None = None
        self._waiting: anyio.CancelScope | None = None

    def attach(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def start(self, task_group: TaskGroup) -> None:
        self._stopping = anyio.Event()
        self._stopped = stopped = anyio.Event()
        client = coredis.Redis.from_url(self.url, connect_timeout=self.timeout, stream_timeout=self.timeout)
        try:
            with anyio.fail_after(self.timeout):
                await task_group.start(self._run, client, stopped)
        except Exception as exc:
            why = f"no answer within {self.timeout} s" if isinstance(exc, TimeoutError) else _why(exc)
            raise BroadcastError(f"cannot connect to Redis at {self.where}: {why}") from exc
        self._client = client

    async def stop(self) -> None:
        self._client = None
        self._stopping.set()
        if self._waiting is not None:
            self._waiting.cancel()
        # The reader unsubscribes and disconnects; past the timeout the hub cancels it.
        if self._stopped is not None:
            with anyio.move_on_after(self.timeout):
                await self._stopped.wait()

    async def subscribe(self, channel: str) -> None:
        if self._client is None:
            raise BroadcastError(f"cannot subscribe to {channel!r}: {NOT_RUNNING}")
        self._channels.add(channel)
        pubsub = self._pubsub
        if pubsub is None:
            return  # reconnecting: the reader subscribes to every channel when it is back
        try:
            with anyio.fail_after(self.timeout):
                await pubsub.subscribe(_wire(channel))
        except Exception as exc:
            # The connection broke under us; the reader reconnects and subscribes again.
            logger.debug("subscribing to %r failed (%s); it is retried on reconnection", channel, _why(exc))

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        pubsub = self._pubsub
        if pubsub is None:
            return
        try:
            with anyio.fail_after(self.timeout):
                await pubsub.unsubscribe(_wire(channel))
        except Exception as exc:
            # A new connection will not subscribe to it again.
            logger.debug("unsubscribing from %r failed (%s)", channel, _why(exc))
        finally:
            _forget(pubsub, _wire(channel))

    async def publish(self, channel: str, payload: bytes) -> None:
        client = self._client
        if client is None:
            raise BroadcastError(f"cannot publish to {channel!r}: {NOT_RUNNING}")
        try:
            with anyio.fail_after(self.timeout):
                await client.publish(_wire(channel), payload)
        except TimeoutError:
            raise BroadcastError(
                f"cannot publish to {channel!r}: Redis at {self.where} did not answer within {self.timeout} s"
            ) from None
        except Exception as exc:
            problem = "is unreachable" if isinstance(exc, (RedisConnectionError, OSError)) else "failed"
            raise BroadcastError(
                f"cannot publish to {channel!r}: Redis at {self.where} {problem} ({_why(exc)})"
            ) from exc

    # -- the reader -----------------------------------------------------------------

    async def _run(
        self, client: coredis.Redis[bytes], stopped: anyio.Event, *, task_status: TaskStatus[None]
    ) -> None:
        """Read until `stop`, reconnecting whenever the connection breaks."""
        started = False
        lost_at: tuple[float, float] | None = None  # (wall clock, monotonic) when delivery stopped
        delay = BACKOFF_FIRST
        try:
            async with client:
                while not self._stopping.is_set():
                    try:
                        async with client.pubsub(ignore_subscribe_messages=True, retry_policy=None) as pubsub:
                            await self._subscribe_all(pubsub)
                            if not started:
                                started = True
                                task_status.started()
                            elif lost_at is not None:
                                self._log_resumed(lost_at)
                                lost_at = None
                            delay = BACKOFF_FIRST
                            with self._interruptible():
                                await self._read(pubsub)
                    except Exception as exc:
                        self._pubsub = None
                        if not started:
                            raise  # `start` says why
                        if self._stopping.is_set():
                            break
                        if lost_at is None:
                            lost_at = self._log_lost(exc)
                        else:
                            logger.debug("Redis at %s is still unreachable (%s)", self.where, _why(exc))
                        with self._interruptible():
                            await anyio.sleep(delay)
                        delay = min(delay * 2, BACKOFF_MAX)
        finally:
            self._pubsub = None
            stopped.set()

    async def _subscribe_all(self, pubsub: PubSub[bytes]) -> None:
        # Published first, so that a join from now on subscribes by itself.
        self._pubsub = pubsub
        channels = set(self._channels)
        if channels:
            await pubsub.subscribe(*map(_wire, channels))
        # Left while we were subscribing: nothing would ever unsubscribe these.
        if gone := channels - self._channels:
            await pubsub.unsubscribe(*map(_wire, gone))
            for channel in gone:
                _forget(pubsub, _wire(channel))

    async def _read(self, pubsub: PubSub[bytes]) -> None:
        deliver = self._deliver
        assert deliver is not None, "the hub attaches itself before starting the backend"
        while True:
            message = await pubsub.get_message()
            if message is None or message["type"] != "message":
                continue
            channel, payload = message["channel"], message["data"]
            if not isinstance(channel, bytes) or not isinstance(payload, bytes):
                continue
            try:
                deliver(channel.decode(errors="surrogatepass"), payload)
            except Exception:
                logger.exception("delivering a group message on %r failed", channel)

    def _log_lost(self, exc: Exception) -> tuple[float, float]:
        logger.warning(
            "lost the connection to Redis at %s (%s): group messages from other processes are not "
            "delivered until it is back; reconnecting",
            self.where,
            _why(exc),
        )
        return time.time(), time.monotonic()

    def _log_resumed(self, lost_at: tuple[float, float]) -> None:
        lost_wall, lost_monotonic = lost_at
        logger.warning(
            "reconnected to Redis at %s: group messages published from %s to %s (%.1f s) may have been lost",
            self.where,
            _clock(lost_wall),
            _clock(time.time()),
            time.monotonic() - lost_monotonic,
        )

    @contextmanager
    def _interruptible(self) -> Iterator[None]:
        """A wait that `stop` ends early, leaving the reader to close the connection cleanly."""
        with anyio.CancelScope() as scope:
            self._waiting = scope
            if self._stopping.is_set():
                scope.cancel()
            try:
                yield
            finally:
                self._waiting = None


def _wire(channel: str) -> bytes:
    """The channel's name in Redis: any str, lone surrogates included, as the memory backend takes.

    A JSON client can send a group name with one (``"\\udcff"``), which strict UTF-8
    cannot encode: such a channel could not be subscribed to, and then failed every
    reconnection, and with it the delivery of every other channel.
    """
    return channel.encode(errors="surrogatepass")


def _forget(pubsub: PubSub[bytes], channel: bytes) -> None:
    """Drop what the client keeps for a channel it has left, once nothing waits on it.

    coredis (6.x) keeps, per channel ever (un)subscribed on a connection, a list of
    waiters in each of two dicts, and never removes the emptied lists: ~270 bytes
    for each distinct group name, for as long as the subscriber connection lives.
    Private attributes, so looked up with care: if coredis moves them, nothing is done.
    """
    for name in ("_subscription_waiters", "_unsubscription_waiters"):
        waiters = getattr(pubsub, name, None)
        if isinstance(waiters, dict) and not waiters.get(channel, True):
            del waiters[channel]


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds")


def _why(exc: BaseException) -> str:
    """The innermost first cause, out of the exception groups the client's task groups raise."""
    while isinstance(inner := getattr(exc, "exceptions", None), tuple) and inner:
        exc = inner[0]
    return str(exc) or type(exc).__name__
