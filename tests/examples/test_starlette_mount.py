"""An endpoint inside Starlette, and Starlette inside an API (``examples/starlette_mount.py``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from examples.starlette_mount import api, app
from wsendpoints.exceptions import HandshakeRejected, WebSocketDisconnect
from wsendpoints.testing import connect

pytestmark = pytest.mark.anyio

BOTH = pytest.mark.parametrize("asgi_app", [app, api], ids=["endpoint-in-starlette", "starlette-in-api"])


@BOTH
async def test_the_endpoint_echoes_json(asgi_app: Any) -> None:
    async with connect(asgi_app, "/ws/echo") as ws:
        await ws.send_json({"hi": [1, 2]})
        assert await ws.receive_json() == {"echo": {"hi": [1, 2]}}


@BOTH
async def test_the_endpoint_keeps_its_codec_errors(asgi_app: Any) -> None:
    async with connect(asgi_app, "/ws/echo") as ws:
        await ws.send_text("{not json")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json()
    assert closed.value.code == 1007


@BOTH
async def test_the_http_route_answers(asgi_app: Any) -> None:
    transport = httpx.ASGITransport(app=asgi_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        health = await http.get("/health")
        missing = await http.get("/nope")
    assert (health.status_code, health.text) == (200, "ok")
    assert missing.status_code == 404


async def test_only_the_api_checks_the_origin() -> None:
    foreign = {"origin": "https://evil.example"}
    with pytest.raises(HandshakeRejected) as refused:
        async with connect(api, "/ws/echo", headers=foreign):
            pass
    assert refused.value.status_code == 403
    # Starlette has no origin check: the endpoint alone does not do it.
    async with connect(app, "/ws/echo", headers=foreign) as ws:
        await ws.send_json(1)
        assert await ws.receive_json() == {"echo": 1}
