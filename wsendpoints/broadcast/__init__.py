"""Groups and publish: rooms across connections, processes and machines.

`Broadcast` is the hub; backends (``memory://``, ``redis://``) carry messages
between processes. See `wsendpoints.broadcast.base` for writing another one.
"""

import importlib

from ..exceptions import ConfigurationError
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
        module = importlib.import_module(".redis", __name__)
    except ImportError as exc:
        raise ConfigurationError(
            f"redis:// needs the 'redis' extra ({exc.name} is missing): pip install 'wsendpoints[redis]'"
        ) from None
    backend: BroadcastBackend = module.RedisBackend(url)
    return backend


register_backend("redis", _redis_backend)
