"""What ``ws.send`` puts on the wire, behind real servers, seen by a real client (`websockets`).

The client is asyncio-only, so these tests run on asyncio; the server side covers
trio (hypercorn) as well as asyncio (uvicorn's three WebSocket stacks), see `conftest.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK

from .servers import serve

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def url(server: str) -> Iterator[str]:
    with serve(server, "tests.integration.frames_app:api") as running:
        yield running.url


async def frames(ws: ClientConnection) -> list[str | bytes]:
    """Every message until the server closes normally."""
    received = []
    with anyio.fail_after(TIMEOUT):
        for _ in range(10):
            try:
                received.append(await ws.recv())
            except ConnectionClosedOK:
                return received
    raise AssertionError(f"the server never closed; got {received!r}")


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/text", ["red"]), ("/bytes", [b"\x00blob"]), ("/auto", ["red", b"\x00blob"])],
)
async def test_subclasses_of_str_and_bytes_go_out_as_text_and_binary(
    url: str, path: str, expected: list[str | bytes]
) -> None:
    async with connect(url + path, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        received = await frames(ws)
    # recv() gives str for a text frame and bytes for a binary one.
    assert [(type(m), m) for m in received] == [(type(m), m) for m in expected]
