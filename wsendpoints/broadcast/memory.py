"""``memory://``: one process, no service. The default."""

from __future__ import annotations

import anyio.lowlevel

from .base import BroadcastBackend, Deliver, register_backend

__all__ = ["MemoryBackend"]


class MemoryBackend(BroadcastBackend):
    """Delivers every publish straight to this process's members.

    It needs no start: an app served without lifespan (or driven by the test
    clients without it) can still publish and join.
    """

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._deliver: Deliver | None = None

    def attach(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def subscribe(self, channel: str) -> None:
        pass

    async def unsubscribe(self, channel: str) -> None:
        pass

    async def publish(self, channel: str, payload: bytes) -> None:
        if self._deliver is not None:
            self._deliver(channel, payload)
        # Yield as a broker round trip would, so that a publishing loop lets the
        # members' send tasks run rather than overflowing every queue.
        await anyio.lowlevel.checkpoint()


register_backend("memory", MemoryBackend)
