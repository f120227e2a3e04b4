"""The same endpoints on either event loop (``examples/trio_app.py``), in process."""

from __future__ import annotations

import pytest

from examples.trio_app import api
from wsendpoints.exceptions import WebSocketDisconnect
from wsendpoints.testing import TestClient, connect

pytestmark = pytest.mark.anyio


async def test_the_app_says_which_loop_serves_it(anyio_backend: str) -> None:
    async with connect(api, "/loop") as ws:
        assert await ws.receive_text() == anyio_backend
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert closed.value.code == 1000


async def test_the_reused_ticker_endpoint_pushes() -> None:
    async with connect(api, "/ticker?every=10") as ws:
        assert [await ws.receive_json() for _ in range(3)] == [{"tick": n, "every": 10} for n in (1, 2, 3)]


def test_the_sync_client_runs_it_on_the_loop_it_is_given(backend: str) -> None:
    with TestClient(api, backend=backend) as client, client.websocket_connect("/loop") as ws:
        assert ws.receive_text() == backend
