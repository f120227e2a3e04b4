"""The chat example behind `wsendpoints run` on uvicorn (asyncio) and hypercorn (trio), with real clients.

The client (`websockets`) is asyncio-only; the servers cover both event loops.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .servers import CLI_SERVERS, serve

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

TIMEOUT = 5.0


@pytest.fixture(scope="module", params=list(CLI_SERVERS))
def chat_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with serve(request.param, "examples.chat:api") as running:
        yield running.url


def join(url: str, room: str, nick: str) -> connect:
    return connect(f"{url}/rooms/{room}?nick={nick}", open_timeout=TIMEOUT, close_timeout=TIMEOUT)


async def receive(ws: ClientConnection) -> Any:
    with anyio.fail_after(TIMEOUT):
        message = await ws.recv()
    assert isinstance(message, str), "the chat speaks JSON in text frames"
    return json.loads(message)


async def test_two_clients_in_a_room_chat(chat_url: str) -> None:
    async with join(chat_url, "lobby", "alice") as alice:
        assert await receive(alice) == {"type": "join", "nick": "alice"}
        async with join(chat_url, "lobby", "bob") as bob:
            assert await receive(bob) == {"type": "join", "nick": "bob"}
            assert await receive(alice) == {"type": "join", "nick": "bob"}

            await alice.send(json.dumps({"text": "hi bob"}))
            for ws in (alice, bob):
                assert await receive(ws) == {"type": "message", "nick": "alice", "text": "hi bob"}
            await bob.send(json.dumps({"text": "hi alice"}))
            for ws in (alice, bob):
                assert await receive(ws) == {"type": "message", "nick": "bob", "text": "hi alice"}

        assert await receive(alice) == {"type": "leave", "nick": "bob"}


async def test_rooms_are_separate_behind_a_server(chat_url: str) -> None:
    async with join(chat_url, "red", "ann") as ann, join(chat_url, "blue", "ben") as ben:
        assert await receive(ann) == {"type": "join", "nick": "ann"}
        assert await receive(ben) == {"type": "join", "nick": "ben"}
        await ann.send(json.dumps({"text": "red only"}))
        await ben.send(json.dumps({"text": "blue only"}))
        assert await receive(ann) == {"type": "message", "nick": "ann", "text": "red only"}
        assert await receive(ben) == {"type": "message", "nick": "ben", "text": "blue only"}


async def test_a_bad_payload_closes_with_1007(chat_url: str) -> None:
    async with join(chat_url, "lobby", "mallory") as mallory:
        assert await receive(mallory) == {"type": "join", "nick": "mallory"}
        await mallory.send(json.dumps({"nope": True}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(mallory)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1007


async def test_the_page_is_served(chat_url: str) -> None:
    async with httpx.AsyncClient(base_url=chat_url.replace("ws://", "http://"), timeout=TIMEOUT) as http:
        page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert 'id="message-form"' in page.text
