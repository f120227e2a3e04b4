"""Groups and publish: rooms across connections, processes and machines.

`Broadcast` is the hub; backends (``memory://``, ``redis://``) carry messages
between processes. See `wsendpoints.broadcast.base` for writing another one.
"""

from . import memory as _memory  # registers memory://
from .base import BroadcastBackend, backend_from_url, register_backend
from .hub import OVERFLOW_POLICIES, Broadcast, Overflow, Subscription

__all__ = [
    "OVERFLOW_POLICIES",
    "Broadcast",
    "BroadcastBackend",
    "Overflow",
    "Subscription",
    "backend_from_url",
    "register_backend",
]

del _memory


def _redis_backend(url: str) -> BroadcastBackend:
    # Imported on use, so that only apps on Redis need the `redis` extra.
    try:
        from .redis import RedisBackend
    except ImportError as exc:
        from ..exceptions import ConfigurationError

        raise ConfigurationError(
            f"redis:// needs the 'redis' extra ({exc.name} is missing): pip install 'wsendpoints[redis]'"
        ) from None
    return RedisBackend(url)


register_backend("redis", _redis_backend)
