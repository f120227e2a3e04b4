"""The ticker, trio and Starlette examples behind real servers, seen by a real client (`websockets`).

The client is asyncio-only; the servers cover both event loops: ``wsendpoints run`` on uvicorn
(asyncio) and on hypercorn (trio), and plain uvicorn and hypercorn for the Starlette app.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .servers import CLI_SERVERS, Running, serve

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

TIMEOUT = 5.0


@pytest.fixture(scope="module", params=list(CLI_SERVERS))
def trio_app(request: pytest.FixtureRequest) -> Iterator[tuple[str, Running]]:
    """``examples.trio_app:api`` behind ``wsendpoints run``, on each backend: (backend, server)."""
    with serve(request.param, "examples.trio_app:api") as running:
        yield request.param.removeprefix("wsendpoints-"), running


def open_ws(url: str) -> connect:
    return connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT)


async def receive_json(ws: ClientConnection) -> Any:
    with anyio.fail_after(TIMEOUT):
        message = await ws.recv()
    assert isinstance(message, str)
    return json.loads(message)


async def test_the_same_app_runs_on_the_loop_the_command_picks(trio_app: tuple[str, Running]) -> None:
    backend, running = trio_app
    async with open_ws(f"{running.url}/loop") as ws:
        with anyio.fail_after(TIMEOUT):
            assert await ws.recv() == backend
        with pytest.raises(ConnectionClosed) as closed:
            await receive_json(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000


async def test_the_ticker_pushes_and_changes_pace(trio_app: tuple[str, Running]) -> None:
    _, running = trio_app
    async with open_ws(f"{running.url}/ticker?every=20") as ws:
        assert [await receive_json(ws) for _ in range(3)] == [{"tick": n, "every": 20} for n in (1, 2, 3)]
        await ws.send(json.dumps({"every": 60000}))
        # Ticks sent before the change may still be on their way; then the new pace shows.
        while (tick := await receive_json(ws))["every"] == 20:
            pass
        assert tick["every"] == 60000
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.5):
                await ws.recv()


async def test_many_tickers_end_with_their_clients(trio_app: tuple[str, Running]) -> None:
    _, running = trio_app
    for _ in range(3):
        async with anyio.create_task_group() as tg:
            for _ in range(20):

                async def one() -> None:
                    async with open_ws(f"{running.url}/ticker?every=10") as ws:
                        await receive_json(ws)
                        await receive_json(ws)

                tg.start_soon(one)
    # The server is still serving, and its log holds no error from a loop that outlived its client.
    async with open_ws(f"{running.url}/ticker?every=10") as ws:
        assert (await receive_json(ws))["tick"] == 1
    await anyio.sleep(0.2)
    assert "ERROR" not in running.output()
    assert "Traceback" not in running.output()


async def test_a_bad_pace_is_refused_with_403(trio_app: tuple[str, Running]) -> None:
    _, running = trio_app
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await http.get(
            running.url.replace("ws://", "http://") + "/ticker?every=1",
            headers={
                "connection": "upgrade",
                "upgrade": "websocket",
                "sec-websocket-version": "13",
                "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("server", "target"),
    [
        ("uvicorn-websockets", "examples.starlette_mount:app"),
        ("hypercorn-trio", "examples.starlette_mount:app"),
        ("wsendpoints-asyncio", "examples.starlette_mount:api"),
        ("wsendpoints-trio", "examples.starlette_mount:api"),
    ],
)
async def test_starlette_and_wsendpoints_together(server: str, target: str) -> None:
    with serve(server, target) as running:
        async with open_ws(f"{running.url}/ws/echo") as ws:
            await ws.send(json.dumps({"hi": "there"}))
            assert await receive_json(ws) == {"echo": {"hi": "there"}}
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            health = await http.get(running.url.replace("ws://", "http://") + "/health")
        assert (health.status_code, health.text) == (200, "ok")
