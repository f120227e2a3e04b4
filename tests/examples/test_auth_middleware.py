"""The authentication middleware example (``examples/auth_middleware.py``): HTTP and WebSocket alike."""

from __future__ import annotations

import httpx
import pytest

from examples.auth_middleware import api
from wsendpoints.exceptions import HandshakeRejected
from wsendpoints.testing import TestClient, connect, lifespan

pytestmark = pytest.mark.anyio

CHALLENGE = 'Bearer realm="wsendpoints"'


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://test")


@pytest.mark.parametrize("authorization", [None, "Bearer nobody", "alice-token", "Basic alice-token"])
async def test_http_without_a_known_bearer_token_gets_401(authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization else {}
    async with http_client() as client:
        response = await client.get("/api/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE


@pytest.mark.parametrize(("token", "user"), [("alice-token", "alice"), ("bob-token", "bob")])
async def test_http_with_a_known_token_reaches_the_mounted_app(token: str, user: str) -> None:
    async with http_client() as client:
        response = await client.get("/api/me", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"user": user, "path": "/api/me"}


@pytest.mark.parametrize("authorization", [None, "Bearer nobody"])
async def test_a_websocket_without_a_known_token_is_refused_with_401(authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization else {}
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api, "/whoami", headers=headers):
            pass
    assert rejected.value.status_code == 401
    assert b"Authorization: Bearer" in rejected.value.body


async def test_a_websocket_with_a_known_token_is_greeted_and_echoed() -> None:
    async with lifespan(api), connect(api, "/whoami", headers={"authorization": "bearer bob-token"}) as ws:
        assert await ws.receive_text() == "Hello, bob"
        await ws.send_text("hi")
        assert await ws.receive_text() == "bob said: hi"


def test_the_sync_test_client_goes_through_the_middleware_too(backend: str) -> None:
    with TestClient(api, backend=backend) as client:
        with client.websocket_connect("/whoami", headers={"authorization": "Bearer alice-token"}) as ws:
            assert ws.receive_text() == "Hello, alice"
        with pytest.raises(HandshakeRejected), client.websocket_connect("/whoami"):
            pass
