"""A chat room app: rooms, nicknames, join/leave notices and a page to chat from.

Run it with ``python -m examples.chat`` (one process, http://127.0.0.1:8000/), or
with ``wsendpoints run examples.chat:api --broadcast redis://127.0.0.1:6379/0``
for several processes sharing rooms through Redis. See `examples.chat.app`.
"""

from .app import api

__all__ = ["api"]
