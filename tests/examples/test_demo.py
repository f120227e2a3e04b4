"""The demo app (``examples/demo.py``), in process: each endpoint, the refusals, the page."""

from __future__ import annotations

import logging

import httpx
import msgpack
import pytest

from examples.demo import api
from wsendpoints.exceptions import HandshakeRejected, WebSocketDisconnect
from wsendpoints.testing import TestClient, connect

pytestmark = pytest.mark.anyio


async def test_echo() -> None:
    async with connect(api, "/echo") as ws:
        for word in ["hi", "héllo", ""]:
            await ws.send_text(word)
            assert await ws.receive_text() == f"You said: {word}"


async def test_echo_closes_with_1003_on_a_binary_frame(caplog: pytest.LogCaptureFixture) -> None:
    async with connect(api, "/echo") as ws:
        await ws.send_bytes(b"hi")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert closed.value.code == 1003
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == ["WARNING"]


@pytest.mark.parametrize(
    ("sent", "answer"),
    [({"type": "ping"}, "pong"), ({"type": "pong"}, "ping"), ({}, "ping"), ([1], "ping"), ("ping", "ping")],
)
async def test_json_ping_pong(sent: object, answer: str) -> None:
    async with connect(api, "/json") as ws:
        await ws.send_json(sent)
        assert await ws.receive_json() == {"type": answer}


@pytest.mark.parametrize(("frame", "code"), [("{oops", 1007), (b'{"type": "ping"}', 1003)])
async def test_json_closes_on_a_bad_message(frame: str | bytes, code: int) -> None:
    async with connect(api, "/json") as ws:
        if isinstance(frame, str):
            await ws.send_text(frame)
        else:
            await ws.send_bytes(frame)
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json()
    assert closed.value.code == code


async def test_msgpack_echo() -> None:
    value = {"name": "wsendpoints", "list": [1, 2.5, None, True], "raw": b"\x00\xff"}
    async with connect(api, "/msgpack") as ws:
        await ws.send_msgpack(value)
        reply = await ws.receive_event()
    assert reply["type"] == "websocket.send"
    assert msgpack.unpackb(reply["bytes"]) == value


@pytest.mark.parametrize(("frame", "code"), [(b"\xc1", 1007), ("text", 1003)])
async def test_msgpack_closes_on_a_bad_message(frame: str | bytes, code: int) -> None:
    async with connect(api, "/msgpack") as ws:
        if isinstance(frame, str):
            await ws.send_text(frame)
        else:
            await ws.send_bytes(frame)
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_msgpack()
    assert closed.value.code == code


@pytest.mark.parametrize("query", ["", "?token=guess", "?other=letmein"])
async def test_private_refuses_without_the_token(query: str) -> None:
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api, "/private" + query):
            pass
    assert rejected.value.status_code == 403
    assert rejected.value.close_code == 1008


async def test_private_with_the_token() -> None:
    async with connect(api, "/private?token=letmein") as ws:
        assert await ws.receive_text() == "Welcome!"
        await ws.send_text("hi")
        assert await ws.receive_text() == "Secret: hi"


@pytest.mark.parametrize("path", ["/", "/nowhere", "/echo/more"])
async def test_unknown_websocket_path_is_404(path: str) -> None:
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api, path):
            pass
    assert rejected.value.status_code == 404


async def test_page() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://demo") as http:
        page = await http.get("/")
        missing = await http.get("/missing")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "new WebSocket(" in page.text
    assert "/echo" in page.text
    assert missing.status_code == 404


def test_sync_client(backend: str) -> None:
    """The same app through the blocking TestClient, the app on asyncio and on trio."""
    with TestClient(api, backend=backend) as client:
        with client.websocket_connect("/echo") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "You said: hi"
        with client.websocket_connect("/json") as ws:
            ws.send_json({"type": "ping"})
            assert ws.receive_json() == {"type": "pong"}
        with client.websocket_connect("/msgpack") as ws:
            ws.send_msgpack([1, "two"])
            assert ws.receive_msgpack() == [1, "two"]
