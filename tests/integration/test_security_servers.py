"""The origin check and the authentication example through real servers: the HTTP statuses and headers
a refused handshake gets are the ones the in-process tests see (uvicorn and hypercorn both offer the
``websocket.http.response`` extension).

Client side asyncio only; the servers cover both event loops.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response
from websockets.typing import Origin

from .servers import Running, serve

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

TIMEOUT = 5.0


@pytest.fixture(scope="module", params=["uvicorn-sansio", "hypercorn-trio"])
def server(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def echo(server: str) -> Iterator[Running]:
    with serve(server, "tests.integration.hardening_app:api") as running:
        yield running


@pytest.fixture(scope="module")
def authenticated(server: str) -> Iterator[Running]:
    with serve(server, "examples.auth_middleware:api") as running:
        yield running


async def refusal(url: str, **options: Any) -> Response | None:
    """The HTTP response refusing the handshake, or None if the connection opened."""
    try:
        async with connect(url, open_timeout=TIMEOUT, **options):
            return None
    except InvalidStatus as refused:
        return refused.response


async def test_a_foreign_origin_is_refused_with_403(echo: Running) -> None:
    response = await refusal(f"{echo.url}/echo", origin="https://evil.example")
    assert response is not None
    assert response.status_code == 403


async def test_refused_handshakes_leave_no_error_in_the_server_log(echo: Running) -> None:
    # uvicorn's default implementation (websockets-sansio) counts a handshake as done only
    # once the connection is gone: an app returning at once after its HTTP refusal was
    # logged "ERROR: ASGI callable returned without completing handshake." every time.
    foreign = await refusal(f"{echo.url}/echo", origin="https://evil.example")
    unknown = await refusal(f"{echo.url}/no-such-route")
    assert foreign is not None
    assert unknown is not None
    assert (foreign.status_code, unknown.status_code) == (403, 404)
    await anyio.sleep(0.5)  # the server logs after the client has its answer
    assert "ERROR" not in echo.output()
    assert "without completing handshake" not in echo.output()


async def test_authentication_failed_in_on_connect_refuses_with_its_response(echo: Running) -> None:
    response = await refusal(f"{echo.url}/token?token=wrong")
    assert response is not None
    assert (response.status_code, response.body) == (401, b"who are you?")
    assert response.headers["WWW-Authenticate"] == "Token"
    async with connect(f"{echo.url}/token?token=sesame", open_timeout=TIMEOUT) as ws:
        await ws.send("hi")
        assert await ws.recv() == "hi"
    await anyio.sleep(0.5)  # the server logs after the client has its answer
    assert "ERROR" not in echo.output()


async def test_a_client_that_leaves_before_its_refusal_leaves_no_error_in_the_server_log(
    echo: Running,
) -> None:
    # The refusal finds the client gone: uvicorn's send raises, the handshake has ended all
    # the same, and nothing is left to refuse. That is no error of the app's, nor the server's.
    host, port = echo.url.removeprefix("ws://").split(":")
    for path in ["/slow-token?token=wrong", "/slow-token?token=sesame"]:
        stream = await anyio.connect_tcp(host, int(port))
        await stream.send(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await stream.aclose()  # gone before on_connect decides
    await anyio.sleep(1.0)  # on_connect's 0.2 s, then the server logs what became of it
    assert "ERROR" not in echo.output()
    async with connect(f"{echo.url}/token?token=sesame", open_timeout=TIMEOUT) as ws:
        await ws.send("still serving")
        assert await ws.recv() == "still serving"


async def test_the_server_own_origin_and_no_origin_pass(echo: Running) -> None:
    host = echo.url.removeprefix("ws://")
    for origin in [f"http://{host}", f"https://{host}"]:
        async with connect(f"{echo.url}/echo", open_timeout=TIMEOUT, origin=Origin(origin)) as ws:
            await ws.send("same host")
            with anyio.fail_after(TIMEOUT):
                assert await ws.recv() == "same host"
    assert await refusal(f"{echo.url}/echo") is None


async def test_the_auth_middleware_refuses_a_handshake_with_401_and_its_challenge(
    authenticated: Running,
) -> None:
    for headers in [{}, {"Authorization": "Bearer nobody"}]:
        response = await refusal(f"{authenticated.url}/whoami", additional_headers=headers)
        assert response is not None
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="wsendpoints"'
        assert b"Authorization: Bearer" in response.body


async def test_the_auth_middleware_lets_a_known_token_in(authenticated: Running) -> None:
    headers = {"Authorization": "Bearer alice-token"}
    async with connect(f"{authenticated.url}/whoami", open_timeout=TIMEOUT, additional_headers=headers) as ws:
        with anyio.fail_after(TIMEOUT):
            assert await ws.recv() == "Hello, alice"
            await ws.send("hi")
            assert await ws.recv() == "alice said: hi"


async def test_the_auth_middleware_guards_the_mounted_http_app(authenticated: Running) -> None:
    url = authenticated.url.replace("ws://", "http://") + "/api/me"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        refused = await client.get(url)
        allowed = await client.get(url, headers={"Authorization": "Bearer bob-token"})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="wsendpoints"'
    assert allowed.json() == {"user": "bob", "path": "/api/me"}
