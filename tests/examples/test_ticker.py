"""The server-push example (``examples/ticker.py``), in process, on asyncio and trio."""

from __future__ import annotations

import time

import anyio
import pytest

from examples.ticker import MAX_EVERY, MIN_EVERY, api
from wsendpoints.exceptions import HandshakeRejected, WebSocketDisconnect
from wsendpoints.testing import connect

pytestmark = pytest.mark.anyio


async def test_ticks_arrive_without_asking_at_the_requested_pace() -> None:
    async with connect(api, "/ticker?every=20") as ws:
        start = time.monotonic()
        ticks = [await ws.receive_json() for _ in range(6)]
        elapsed = time.monotonic() - start
    assert ticks == [{"tick": n, "every": 20} for n in range(1, 7)]
    # The first tick goes at once, then one every 20 ms: at least 100 ms for six.
    assert 0.09 <= elapsed < 3.0


async def test_the_default_pace_is_a_second() -> None:
    async with connect(api, "/ticker") as ws:
        assert await ws.receive_json() == {"tick": 1, "every": 1000}
        with pytest.raises(TimeoutError):
            await ws.receive_json(timeout=0.5)  # the second tick is a second away


async def test_the_client_changes_the_pace_at_once() -> None:
    async with connect(api, "/ticker?every=60000") as ws:
        assert await ws.receive_json() == {"tick": 1, "every": 60000}
        # The loop is sleeping out a minute; the new pace wakes it.
        await ws.send_json({"every": 10})
        assert await ws.receive_json(timeout=2) == {"tick": 2, "every": 10}
        assert await ws.receive_json(timeout=2) == {"tick": 3, "every": 10}


async def test_the_push_task_ends_with_the_connection() -> None:
    async with connect(api, "/ticker?every=10") as ws:
        await ws.receive_json()
        assert api.connection_count == 1
    # Leaving the block waited for the app to return: its task group, and the loop in it, ended.
    assert api.connection_count == 0
    await anyio.sleep(0.05)
    assert api.connection_count == 0


@pytest.mark.parametrize("every", ["0", str(MIN_EVERY - 1), str(MAX_EVERY + 1), "soon", "-5", ""])
async def test_a_bad_pace_refuses_the_handshake(every: str) -> None:
    with pytest.raises(HandshakeRejected) as refused:
        async with connect(api, f"/ticker?every={every}"):
            pass
    assert refused.value.status_code == 403
    assert refused.value.close_code == 1008


@pytest.mark.parametrize("message", [{"every": 1}, {"every": "fast"}, {"every": True}, [10], "10", None])
async def test_a_bad_message_closes_with_1007(message: object) -> None:
    async with connect(api, "/ticker?every=60000") as ws:
        await ws.receive_json()
        await ws.send_json(message)
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json()
    assert closed.value.code == 1007
    assert "expected" in closed.value.reason
