"""The messages every benchmark sends: one small, typical message per codec.

Each codec names the frame it travels in (``"text"`` or ``"bytes"``, the ASGI
key of ``websocket.receive``/``websocket.send``) and the payload sent in it.
"""

from __future__ import annotations

from typing import Any, cast

import msgpack
import ujson

CODECS = ("text", "bytes", "json", "msgpack")

# A chat-like message: the common case for a WebSocket service (~100 bytes of JSON).
VALUE: dict[str, Any] = {
    "type": "message",
    "room": "lobby",
    "user": "alice",
    "text": "hello, world: the quick brown fox",
    "seq": 12345,
    "ok": True,
}

TEXT = "hello, world: the quick brown fox jumps over the lazy dog 0123456789"  # 68 characters
BYTES = TEXT.encode()

PAYLOADS: dict[str, tuple[str, str | bytes]] = {
    "text": ("text", TEXT),
    "bytes": ("bytes", BYTES),
    "json": ("text", ujson.dumps(VALUE)),
    "msgpack": ("bytes", msgpack.packb(VALUE)),
}
"""codec -> (ASGI frame key, payload)."""


def same_message(codec: str, sent: str | bytes, echoed: Any) -> bool:
    """Whether ``echoed`` carries the message ``sent`` (JSON may be re-spaced, so compare values)."""
    if type(echoed) is not type(sent):
        return False
    if codec == "json":
        return bool(ujson.loads(echoed) == ujson.loads(sent))
    if codec == "msgpack":
        # msgpack payloads are bytes, on both sides (their types are the same, checked above).
        return bool(msgpack.unpackb(cast(bytes, echoed)) == msgpack.unpackb(cast(bytes, sent)))
    return bool(echoed == sent)
