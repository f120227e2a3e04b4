"""The chat example (``examples/chat``), in process: rooms, nicknames, notices, bad payloads, the page."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from examples.chat import api
from examples.chat.app import room_group
from wsendpoints.exceptions import HandshakeRejected, WebSocketDisconnect
from wsendpoints.testing import ClientWebSocket, connect

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def chatter(room: str, nick: str) -> AsyncIterator[ClientWebSocket]:
    """A member of ``room``, once its own join notice has come back (so it is in the room)."""
    async with connect(api, f"/rooms/{room}?nick={quote(nick)}") as ws:
        assert await ws.receive_json() == {"type": "join", "nick": nick}
        yield ws


async def test_two_people_in_a_room_see_each_other() -> None:
    async with chatter("lobby", "alice") as alice:
        async with chatter("lobby", "bob") as bob:
            assert await alice.receive_json() == {"type": "join", "nick": "bob"}

            await alice.send_json({"text": "hi bob"})
            # Everyone gets it, the sender too, in the same order.
            for ws in (alice, bob):
                assert await ws.receive_json() == {"type": "message", "nick": "alice", "text": "hi bob"}
            await bob.send_json({"text": "héllo <b>alice</b> 👋"})
            for ws in (alice, bob):
                assert await ws.receive_json() == {
                    "type": "message",
                    "nick": "bob",
                    "text": "héllo <b>alice</b> 👋",
                }

        assert await alice.receive_json() == {"type": "leave", "nick": "bob"}
    assert api.broadcast.members(room_group("lobby")) == 0


async def test_rooms_are_separate() -> None:
    async with chatter("red", "ann") as ann, chatter("blue", "ben") as ben, chatter("red", "cat") as cat:
        assert await ann.receive_json() == {"type": "join", "nick": "cat"}
        await ben.send_json({"text": "anyone in blue?"})
        assert await ben.receive_json() == {"type": "message", "nick": "ben", "text": "anyone in blue?"}
        await cat.send_json({"text": "red only"})
        for ws in (ann, cat):
            assert await ws.receive_json() == {"type": "message", "nick": "cat", "text": "red only"}
        # Nothing from red reached blue: ben's next message is from blue.
        await ben.send_json({"text": "still blue"})
        assert await ben.receive_json() == {"type": "message", "nick": "ben", "text": "still blue"}


async def test_nicknames_come_from_the_query_string() -> None:
    async with chatter("lobby", "zoë z") as zoe:
        await zoe.send_json({"text": "hi"})
        assert await zoe.receive_json() == {"type": "message", "nick": "zoë z", "text": "hi"}


@pytest.mark.parametrize("query", ["", "?nick=", "?nick=%20%20", "?nick=" + "x" * 33])
async def test_a_missing_or_bad_nickname_is_refused(query: str) -> None:
    with pytest.raises(HandshakeRejected) as refused:
        async with connect(api, f"/rooms/lobby{query}"):
            pass
    assert refused.value.status_code == 403


@pytest.mark.parametrize(
    "payload",
    [
        "{not json",
        "[1, 2]",
        '"just a string"',
        "{}",
        '{"text": ""}',
        '{"text": "   "}',
        '{"text": 42}',
        '{"text": "' + "x" * 1001 + '"}',
    ],
)
async def test_a_bad_payload_closes_with_1007_and_the_others_see_the_sender_leave(payload: str) -> None:
    async with chatter("lobby", "alice") as alice, chatter("lobby", "mallory") as mallory:
        assert await alice.receive_json() == {"type": "join", "nick": "mallory"}
        await mallory.send_text(payload)
        with pytest.raises(WebSocketDisconnect) as closed:
            await mallory.receive_json()
        assert closed.value.code == 1007
        assert await alice.receive_json() == {"type": "leave", "nick": "mallory"}


async def test_a_binary_frame_closes_with_1003() -> None:
    async with chatter("lobby", "alice") as alice:
        await alice.send_bytes(b'{"text": "hi"}')
        with pytest.raises(WebSocketDisconnect) as closed:
            await alice.receive_json()
        assert closed.value.code == 1003


async def test_the_page_is_served_at_the_root() -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="http://testserver"
    ) as http:
        page = await http.get("/")
        missing = await http.get("/nope")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    for element in ('id="nick"', 'id="room"', 'id="message"', 'id="log"', "/rooms/"):
        assert element in page.text
    assert missing.status_code == 404
