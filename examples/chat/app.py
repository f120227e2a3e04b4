"""A chat server: rooms from the path, nicknames from the query string, JSON messages, groups.

Connect to ``/rooms/{room}?nick=alice``. Every message is a JSON object.

The client sends::

    {"text": "hello"}

Everyone in the room, the sender included, receives::

    {"type": "join", "nick": "alice"}                 when someone arrives (the newcomer sees its own)
    {"type": "message", "nick": "alice", "text": "hello"}
    {"type": "leave", "nick": "alice"}                when someone leaves

Messages go back to their sender too, rather than being shown by the sender's
page as it sends them: the server decides the order, and every page in the room
shows the same one.

A handshake without a nickname (or with one longer than 32 characters) is
refused (HTTP 403). A message that is not JSON, or not an object with a
non-empty ``"text"`` of at most 1000 characters, closes the connection with 1007.

Rooms are groups (``ws.join``), and messages reach them with ``api.publish``: with
the default ``memory://`` backend that is one process; with
``wsendpoints run examples.chat:api --broadcast redis://127.0.0.1:6379/0`` the
rooms span every process sharing that Redis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsendpoints import API, CloseCode, WebSocket, WebSocketEndpoint
from wsendpoints.types import Receive, Scope, Send

__all__ = ["ChatRoom", "api"]

MAX_NICK = 32
MAX_ROOM = 64
MAX_TEXT = 1000

api = API()


def room_group(room: str) -> str:
    return f"chat:{room}"


@api.websocket_route("/rooms/{room}")
class ChatRoom(WebSocketEndpoint):
    """One member of one room."""

    value_type = "json"
    # A page that falls behind by more than this many messages misses the oldest ones.
    group_queue_size = 256

    async def on_connect(self, ws: WebSocket) -> None:
        nick = ws.query_params.get("nick", "").strip()
        room = ws.path_params["room"]
        if not nick or len(nick) > MAX_NICK or len(room) > MAX_ROOM:
            await ws.close(CloseCode.POLICY_VIOLATION)  # before accept(): the handshake gets 403
            return
        await ws.accept()
        ws.state.nick = nick
        ws.state.group = room_group(room)
        await ws.join(ws.state.group)
        await api.publish(ws.state.group, {"type": "join", "nick": nick})

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        text = message.get("text") if isinstance(message, dict) else None
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            await ws.close(
                CloseCode.INVALID_PAYLOAD, f'expected {{"text": "..."}}, at most {MAX_TEXT} characters'
            )
            return
        await api.publish(ws.state.group, {"type": "message", "nick": ws.state.nick, "text": text})

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        # The connection has left the room already: the notice goes to the others.
        if hasattr(ws.state, "group"):
            await api.publish(ws.state.group, {"type": "leave", "nick": ws.state.nick})


PAGE = (Path(__file__).parent / "index.html").read_bytes()


async def page(scope: Scope, receive: Receive, send: Send) -> None:
    """A raw ASGI app: the chat page at ``/``, 404 for any other HTTP path."""
    found = scope["path"] == "/"
    body = PAGE if found else b"Not Found"
    content_type = b"text/html; charset=utf-8" if found else b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 200 if found else 404,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


api.mount("/", page)
