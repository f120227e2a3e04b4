"""The seed guide's examples behind real servers, seen by the `websockets` client."""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

TIMEOUT = 5.0
GuideURL = Callable[[str], str]


async def recv(ws: ClientConnection) -> str | bytes:
    with anyio.fail_after(TIMEOUT):
        return await ws.recv()


async def assert_closed_normally(ws: ClientConnection) -> None:
    with pytest.raises(ConnectionClosedOK) as closed:
        await recv(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000


@pytest.mark.parametrize("example", ["basic_echo", "raw_events"])
async def test_echo_once_then_close(guide_url: GuideURL, example: str) -> None:
    async with connect(f"{guide_url(example)}/echo", open_timeout=TIMEOUT) as ws:
        await ws.send("hi")
        assert await recv(ws) == "You said: hi"
        await assert_closed_normally(ws)


@pytest.mark.parametrize("example", ["hello_context", "hello_explicit"])
async def test_hello(guide_url: GuideURL, example: str) -> None:
    async with connect(f"{guide_url(example)}/hello", open_timeout=TIMEOUT) as ws:
        assert await recv(ws) == "Hello, world!"
        await assert_closed_normally(ws)


async def test_echo_iteration(guide_url: GuideURL) -> None:
    async with connect(f"{guide_url('echo_iteration')}/echo", open_timeout=TIMEOUT) as ws:
        for word in ["one", "two", "three"]:
            await ws.send(word)
            assert await recv(ws) == f"You said: {word}"


async def test_ping_pong(guide_url: GuideURL) -> None:
    async with connect(f"{guide_url('ping_pong')}/ping-pong", open_timeout=TIMEOUT) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await recv(ws)) == {"type": "pong"}
        await ws.send(json.dumps({"type": "pong"}))
        assert json.loads(await recv(ws)) == {"type": "ping"}
