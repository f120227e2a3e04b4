"""The demo app behind real servers, seen by a real client (`websockets`) over loopback.

The client is asyncio-only, so these tests run on asyncio; the server side covers
trio (hypercorn) as well as asyncio (uvicorn), see `conftest.py`.
"""

from __future__ import annotations

import json

import anyio
import httpx
import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

TIMEOUT = 5.0


def open_ws(url: str) -> connect:
    return connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT)


async def recv(ws: ClientConnection) -> str | bytes:
    with anyio.fail_after(TIMEOUT):
        return await ws.recv()


async def close_code_after(ws: ClientConnection, message: str | bytes) -> int:
    """Send ``message`` and return the close code the server answers it with."""
    await ws.send(message)
    with pytest.raises(ConnectionClosed) as closed:
        await recv(ws)
    assert closed.value.rcvd is not None, "the server closed without a close frame"
    return closed.value.rcvd.code


async def test_text_echo(demo_url: str) -> None:
    async with open_ws(f"{demo_url}/echo") as ws:
        for word in ["hi", "héllo wörld"]:
            await ws.send(word)
            assert await recv(ws) == f"You said: {word}"


async def test_json_ping_pong(demo_url: str) -> None:
    async with open_ws(f"{demo_url}/json") as ws:
        await ws.send(json.dumps({"type": "ping"}))
        reply = await recv(ws)
        assert isinstance(reply, str)  # JSON travels in text frames
        assert json.loads(reply) == {"type": "pong"}


async def test_msgpack_echo(demo_url: str) -> None:
    value = {"numbers": [1, 2.5, -3], "raw": b"\x00\xff", "nothing": None}
    async with open_ws(f"{demo_url}/msgpack") as ws:
        await ws.send(msgpack.packb(value))
        reply = await recv(ws)
    assert isinstance(reply, bytes)
    assert msgpack.unpackb(reply) == value


async def test_private_refuses_the_handshake_with_403(demo_url: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with open_ws(f"{demo_url}/private?token=guess"):
            pass
    assert refused.value.response.status_code == 403


async def test_private_with_the_token(demo_url: str) -> None:
    async with open_ws(f"{demo_url}/private?token=letmein") as ws:
        assert await recv(ws) == "Welcome!"
        await ws.send("hi")
        assert await recv(ws) == "Secret: hi"


@pytest.mark.parametrize("path", ["/nowhere", "/echo/more"])
async def test_unknown_path_is_404(demo_url: str, path: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with open_ws(demo_url + path):
            pass
    assert refused.value.response.status_code == 404


@pytest.mark.parametrize(("path", "message"), [("/echo", b"hi"), ("/json", b"{}"), ("/msgpack", "hi")])
async def test_wrong_frame_type_closes_with_1003(demo_url: str, path: str, message: str | bytes) -> None:
    async with open_ws(demo_url + path) as ws:
        assert await close_code_after(ws, message) == 1003


@pytest.mark.parametrize(("path", "message"), [("/json", "{oops"), ("/msgpack", b"\xc1")])
async def test_undecodable_payload_closes_with_1007(demo_url: str, path: str, message: str | bytes) -> None:
    async with open_ws(demo_url + path) as ws:
        assert await close_code_after(ws, message) == 1007


async def test_page(demo_url: str) -> None:
    async with httpx.AsyncClient(base_url=demo_url.replace("ws://", "http://"), timeout=TIMEOUT) as http:
        page = await http.get("/")
        missing = await http.get("/missing")
    assert page.status_code == 200
    assert "new WebSocket(" in page.text
    assert missing.status_code == 404


async def test_server_keeps_serving_after_bad_clients(demo_url: str) -> None:
    with pytest.raises(InvalidStatus):
        async with open_ws(f"{demo_url}/private"):
            pass
    async with open_ws(f"{demo_url}/json") as ws:
        assert await close_code_after(ws, "{oops") == 1007
    async with open_ws(f"{demo_url}/echo") as ws:
        assert await close_code_after(ws, b"binary") == 1003
    # A client that vanishes without a close frame, in the middle of a conversation.
    async with open_ws(f"{demo_url}/echo") as ws:
        await ws.send("hi")
        ws.transport.abort()

    replies: dict[int, str | bytes] = {}

    async def talk(n: int) -> None:
        async with open_ws(f"{demo_url}/echo") as ws:
            await ws.send(str(n))
            replies[n] = await recv(ws)

    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(talk, n)
    assert replies == {n: f"You said: {n}" for n in range(5)}
