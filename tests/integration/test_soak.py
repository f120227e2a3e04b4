"""Soak: 10,000 connect/echo/disconnect cycles and 100,000 messages through a real server.

Afterwards the server tracks no connection, every ``on_connect`` had its ``on_disconnect``,
no task is left running beyond the count after a warm-up, and the server process has not
grown by more than `RSS_GROWTH_BOUND`. Run with ``-s`` to see the measured numbers.

Client side asyncio only (the websockets client); the servers cover both event loops.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect

from .servers import Running, serve

pytestmark = [pytest.mark.slow, pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

APP = "tests.integration.hardening_app:api"
CYCLES = 10_000
MESSAGES = 100_000
CONCURRENCY = 32  # clients at a time
CONNECTIONS = 50  # long-lived connections carrying the messages
WARM_UP_CYCLES = 1_000
WARM_UP_MESSAGES = 10_000
RSS_GROWTH_BOUND = 30 * 2**20
TIMEOUT = 10.0
SETTLE_TIMEOUT = 20.0
# No per-connection log lines: the soak measures the framework, not the log writer.
QUIET = {
    "uvicorn-sansio": ("--log-level", "warning", "--no-access-log"),
    "hypercorn-trio": ("--log-level", "warning"),
}


def rss(pid: int) -> int:
    """The resident set size of process ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def cycles(url: str, count: int) -> None:
    """``count`` connect/echo/disconnect cycles, ``CONCURRENCY`` at a time."""
    remaining = count

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with connect(f"{url}/echo", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
                await ws.send("ping")
                with anyio.fail_after(TIMEOUT):
                    assert await ws.recv() == "ping"

    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENCY):
            tg.start_soon(client)


async def messages(url: str, count: int) -> None:
    """``count`` echoed messages over ``CONNECTIONS`` connections, each waiting for its echo."""
    per_connection = count // CONNECTIONS

    async def client(n: int) -> None:
        async with connect(f"{url}/echo", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            for m in range(per_connection):
                message = f"{n}:{m}"
                await ws.send(message)
                with anyio.fail_after(TIMEOUT):
                    assert await ws.recv() == message

    async with anyio.create_task_group() as tg:
        for n in range(CONNECTIONS):
            tg.start_soon(client, n)


async def settled(
    stats: httpx.AsyncClient, running: Running, tasks_at_most: int | None = None
) -> dict[str, Any]:
    """The server's stats once it tracks no connection (and runs at most ``tasks_at_most`` tasks)."""
    with anyio.move_on_after(SETTLE_TIMEOUT):
        while True:
            current = (await stats.get("/stats")).json()
            if current["connections"] == 0 and (tasks_at_most is None or current["tasks"] <= tasks_at_most):
                break
            await anyio.sleep(0.1)
    assert running.process.poll() is None, running.output()[-3000:]
    return current  # type: ignore[no-any-return]


@pytest.mark.parametrize("server", ["uvicorn-sansio", "hypercorn-trio"])
async def test_soak(server: str) -> None:
    with serve(server, APP, options=QUIET[server]) as running:
        http_url = running.url.replace("ws://", "http://")
        async with httpx.AsyncClient(base_url=http_url, timeout=TIMEOUT) as stats:
            await cycles(running.url, WARM_UP_CYCLES)
            await messages(running.url, WARM_UP_MESSAGES)
            before = await settled(stats, running)
            rss_before = rss(running.process.pid)

            started = time.monotonic()
            await cycles(running.url, CYCLES)
            cycled = time.monotonic()
            await messages(running.url, MESSAGES)
            done = time.monotonic()

            after = await settled(stats, running, tasks_at_most=before["tasks"])
            rss_after = rss(running.process.pid)

    growth = rss_after - rss_before
    print(
        f"\n{server}: {CYCLES} cycles in {cycled - started:.1f} s ({CYCLES / (cycled - started):.0f}/s), "
        f"{MESSAGES} messages in {done - cycled:.1f} s ({MESSAGES / (done - cycled):.0f}/s); "
        f"tasks {before['tasks']} -> {after['tasks']}; "
        f"RSS {rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB ({growth / 2**20:+.1f} MiB); "
        f"hooks {after['on_connect']}/{after['on_disconnect']}"
    )
    connections = WARM_UP_CYCLES + CONNECTIONS + CYCLES + CONNECTIONS
    assert after["connections"] == 0
    assert after["on_connect"] == after["on_disconnect"] == connections
    assert after["tasks"] <= before["tasks"], f"tasks left: {before['task_names']} -> {after['task_names']}"
    assert growth < RSS_GROWTH_BOUND, f"the server grew by {growth / 2**20:.1f} MiB"
