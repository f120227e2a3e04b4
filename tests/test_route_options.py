"""Route options whose default is None take None, both when run and when type-checked.

mypy checks this module (CI runs it over tests/): each call passes None where `RouteOptions` must
allow it, so the TypedDict cannot go back to rejecting what the routes accept.
"""

from __future__ import annotations

import pytest

from wsendpoints import API, WebSocket, WebSocketEndpoint
from wsendpoints.exceptions import HandshakeRejected, ReceiveTimeout, WebSocketDisconnect
from wsendpoints.testing import connect
from wsendpoints.websockets import DEFAULT_MAX_MESSAGE_SIZE

CLASS_TIMEOUT = 0.05


class Patient(WebSocketEndpoint):
    idle_timeout = CLASS_TIMEOUT
    allowed_origins = ("*",)

    async def on_receive(self, ws: WebSocket, message: str) -> None:
        await ws.send(message)


async def test_idle_timeout_none_on_the_route_switches_off_the_class_timeout() -> None:
    api = API()
    api.add_websocket("/timed", Patient)
    api.add_websocket("/untimed", Patient, idle_timeout=None)
    async with connect(api, "/timed") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text(timeout=5)
        assert closed.value.code == 1001
    async with connect(api, "/untimed") as ws:
        with pytest.raises(ReceiveTimeout):
            await ws.receive_text(timeout=6 * CLASS_TIMEOUT)  # nothing comes, not even a close
        await ws.send_text("still open")
        assert await ws.receive_text() == "still open"


async def test_allowed_origins_none_on_the_route_restores_the_apis_check() -> None:
    api = API()
    api.add_websocket("/anyone", Patient)
    api.add_websocket("/checked", Patient, allowed_origins=None)
    foreign = {"origin": "https://elsewhere.example"}
    async with connect(api, "/anyone", headers=foreign) as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "hi"
    with pytest.raises(HandshakeRejected) as refused:
        async with connect(api, "/checked", headers=foreign):
            pass
    assert refused.value.status_code == 403


async def test_a_view_takes_none_for_each_option_that_defaults_to_it() -> None:
    api = API()

    @api.websocket_route(
        "/echo",
        value_type=None,
        caught_close_codes=None,
        idle_timeout=None,
        allowed_origins=None,
        authenticate=None,
        max_message_size=None,
        max_message_rate=None,
    )
    async def echo(ws: WebSocket) -> None:
        async with ws:
            async for message in ws:
                await ws.send(message)

    big = "x" * (DEFAULT_MAX_MESSAGE_SIZE + 1)  # past the default limit, which None lifts
    async with connect(api, "/echo") as ws:
        await ws.send_text(big)
        assert await ws.receive_text() == big
    with pytest.raises(HandshakeRejected) as refused:
        async with connect(api, "/echo", headers={"origin": "https://elsewhere.example"}):
            pass
    assert refused.value.status_code == 403
