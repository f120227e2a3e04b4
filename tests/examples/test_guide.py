"""Every example of the seed guide does what the guide says it does (``examples/guide/``)."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import pytest

from examples.guide import (
    basic_echo,
    echo_iteration,
    echo_loop,
    hello_context,
    hello_explicit,
    ping_pong,
    raw_events,
)
from wsendpoints import API, WebSocket
from wsendpoints.exceptions import HandshakeRejected, WebSocketDisconnect
from wsendpoints.testing import connect

pytestmark = pytest.mark.anyio


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


async def serve_departed_client(app: Any, path: str) -> list[dict[str, Any]]:
    """Serve one connection whose client leaves right after the handshake; return what the app sent.

    The test clients cannot leave between the app's accept() and its next send,
    so this plays a server that sees it happen: after the accept, every send
    fails with OSError, as uvicorn's do once the client has gone.
    """
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "subprotocols": [],
    }
    incoming: list[dict[str, Any]] = [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1001},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        # The app never needs more than these two: it must stop at the disconnect.
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        if sent:
            raise OSError("the client has disconnected")
        sent.append(message)

    await app(scope, receive, send)
    return sent


# -- A basic example ---------------------------------------------------------------------


async def test_basic_echo_answers_once_then_closes() -> None:
    async with connect(basic_echo.api, "/echo") as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "You said: hi"
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert closed.value.code == 1000


async def test_basic_echo_client_leaving_first_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    async with connect(basic_echo.api, "/echo") as ws:
        await ws.close()
    assert errors(caplog) == []


async def test_rejecting_by_closing_before_accept() -> None:
    """The guide's tip: close() without accept() rejects the connection request."""
    api = API()

    @api.websocket_route("/members")
    async def members(ws: WebSocket) -> None:
        await ws.close(4001)

    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api, "/members"):
            pass
    assert rejected.value.status_code == 403
    assert rejected.value.close_code == 4001


# -- Automatically accepting and closing connections ------------------------------------------


async def test_hello_context_greets_closes_and_prints(capsys: pytest.CaptureFixture[str]) -> None:
    async with connect(hello_context.api, "/hello") as ws:
        assert await ws.receive_text() == "Hello, world!"
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert closed.value.code == 1000
    assert capsys.readouterr().out == "Connection closed\n"


async def test_hello_explicit_greets_and_closes_without_printing(capsys: pytest.CaptureFixture[str]) -> None:
    # Unlike the context-manager version, it prints only when the send fails.
    async with connect(hello_explicit.api, "/hello") as ws:
        assert await ws.receive_text() == "Hello, world!"
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert closed.value.code == 1000
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("example", [hello_context, hello_explicit], ids=["context", "explicit"])
async def test_hello_client_gone_before_greeting(
    example: ModuleType, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The case the guide describes: the client disconnects first; both versions print, neither crashes."""
    sent = await serve_departed_client(example.api, "/hello")
    assert sent == [{"type": "websocket.accept", "subprotocol": None, "headers": []}]
    assert capsys.readouterr().out == "Connection closed\n"
    assert errors(caplog) == []


# -- Iterating over received messages ----------------------------------------------------------

echo_views = pytest.mark.parametrize("example", [echo_iteration, echo_loop], ids=["async-for", "while-true"])


@echo_views
async def test_echo_answers_every_message_in_order(example: ModuleType) -> None:
    async with connect(example.api, "/echo") as ws:
        for word in ["one", "two", "three"]:
            await ws.send_text(word)
        assert [await ws.receive_text() for _ in range(3)] == [
            "You said: one",
            "You said: two",
            "You said: three",
        ]


@echo_views
async def test_echo_ends_quietly_when_the_client_leaves(
    example: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    async with connect(example.api, "/echo") as ws:
        await ws.send_text("bye")
        assert await ws.receive_text() == "You said: bye"
        await ws.close(4000)
    assert errors(caplog) == []


@echo_views
async def test_echo_closes_with_1003_on_a_binary_frame(example: ModuleType) -> None:
    async with connect(example.api, "/echo") as ws:
        await ws.send_bytes(b"hi")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert closed.value.code == 1003


# -- Decoding and encoding messages ------------------------------------------------------------


async def test_ping_pong() -> None:
    async with connect(ping_pong.api, "/ping-pong") as ws:
        await ws.send_json({"type": "ping"})
        assert await ws.receive_json() == {"type": "pong"}
        await ws.send_json({"type": "pong"})
        assert await ws.receive_json() == {"type": "ping"}


async def test_ping_pong_answers_in_text_frames() -> None:
    async with connect(ping_pong.api, "/ping-pong") as ws:
        await ws.send_text('{"type": "ping"}')
        event = await ws.receive_event()
    assert event["type"] == "websocket.send"
    assert event.get("bytes") is None
    assert event["text"].replace(" ", "") == '{"type":"pong"}'


async def test_ping_pong_closes_with_1007_on_bad_json() -> None:
    async with connect(ping_pong.api, "/ping-pong") as ws:
        await ws.send_text("{not json")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json()
    assert closed.value.code == 1007


# -- Using ASGI events -------------------------------------------------------------------------


async def test_raw_events_echo() -> None:
    async with connect(raw_events.api, "/echo") as ws:
        await ws.send_text("hi")
        assert await ws.receive_event() == {"type": "websocket.send", "text": "You said: hi"}
        assert (await ws.receive_event())["type"] == "websocket.close"
    assert ws.close_code == 1000


# -- Disabling automatic catching of WebSocketDisconnect -----------------------------------------


def echo_api(seen: list[int], **options: Any) -> API:
    """The guide's echo view, with a way to see whether WebSocketDisconnect got out of ``async with``."""
    api = API()

    @api.websocket_route("/echo", **options)
    async def echo(ws: WebSocket) -> None:
        try:
            async with ws:
                async for message in ws:
                    await ws.send(f"You said: {message}")
        except WebSocketDisconnect as exc:
            seen.append(exc.code)

    return api


@pytest.mark.parametrize(("options", "expected"), [({}, []), ({"catch_disconnect": False}, [4000])])
async def test_catch_disconnect(options: dict[str, Any], expected: list[int]) -> None:
    seen: list[int] = []
    async with connect(echo_api(seen, **options), "/echo") as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "You said: hi"
        await ws.close(4000)
    assert seen == expected
