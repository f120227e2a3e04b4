"""The backend interface: what carries published messages between processes.

A backend moves opaque payloads (msgpack bytes) on named channels. The hub
(`wsendpoints.broadcast.Broadcast`) does everything else: it serialises, keeps
group membership, and delivers to the local members. So a backend for another
broker is small:

- ``attach(deliver)``: the hub hands over its ``deliver(channel, payload)``
  callback once. Call it, synchronously, for every payload received on a
  subscribed channel (from any process, this one included).
- ``async start(task_group)`` / ``async stop()``: connect and disconnect. Run
  long-lived readers in ``task_group``, which ends with the application.
  ``stop`` is given 10 seconds.
- ``async subscribe(channel)`` / ``async unsubscribe(channel)``: the hub calls
  them when the first local member joins a channel and the last one leaves.
  A broker outage is not the caller's problem: remember the channel and
  subscribe when the broker is back, rather than raise into a connection
  handler. Raise `BroadcastError` only for misuse (not started, say).
- ``async publish(channel, payload)``: send to every process subscribed to
  ``channel``; raise `BroadcastError` if the broker cannot take it.

Backends are chosen by URL (`backend_from_url`): ``memory://`` and
``redis://host:port/db`` are built in; `register_backend` adds a scheme.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from urllib.parse import urlsplit

from anyio.abc import TaskGroup

from ..exceptions import ConfigurationError

__all__ = ["BroadcastBackend", "Deliver", "backend_from_url", "register_backend"]

Deliver = Callable[[str, bytes], None]
"""The hub's ``deliver(channel, payload)`` callback, which a backend's ``attach()`` receives."""


class BroadcastBackend(ABC):
    """Carries payloads between processes; see the module docstring."""

    url: str = ""

    @abstractmethod
    def attach(self, deliver: Deliver) -> None:
        """Take the hub's ``deliver(channel, payload)`` callback (called once, before start)."""

    async def start(self, task_group: TaskGroup) -> None:  # noqa: B027 (an optional hook)
        """Connect; the default has nothing to connect to."""

    async def stop(self) -> None:  # noqa: B027 (an optional hook)
        """Disconnect; the default has nothing to disconnect."""

    @abstractmethod
    async def subscribe(self, channel: str) -> None:
        """Start receiving ``channel`` in this process."""

    @abstractmethod
    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel`` in this process."""

    @abstractmethod
    async def publish(self, channel: str, payload: bytes) -> None:
        """Send ``payload`` to every process subscribed to ``channel``."""


_schemes: dict[str, Callable[[str], BroadcastBackend]] = {}


def register_backend(scheme: str, factory: Callable[[str], BroadcastBackend]) -> None:
    """Make ``scheme://...`` URLs build a backend with ``factory(url)``."""
    if scheme in _schemes:
        raise ConfigurationError(f"a broadcast backend for {scheme}:// is already registered")
    _schemes[scheme] = factory


def backend_from_url(url: str) -> BroadcastBackend:
    """The backend for ``url``: ``memory://`` or ``redis://host:port/db`` (or a registered scheme)."""
    scheme = urlsplit(url).scheme
    if scheme not in _schemes:
        raise ConfigurationError(
            f"no broadcast backend for {url!r}; expected one of "
            + ", ".join(f"{name}://" for name in sorted(_schemes))
        )
    return _schemes[scheme](url)
