"""Memory benchmark: the server's RSS growth for 2,000 idle connections.

Each server first serves a few connections and closes them, so that imports
done on first use and the allocator's first arenas are not counted. Then the
client opens the connections and sends one text message on each (so that
every app has accepted and sits in its receive loop), waits for the echoes,
lets the server settle, and reads its RSS. The result is the growth per
connection: the server's own per-connection state (uvicorn, websockets) plus
the framework's.

The apps take turns, round after round, each in a fresh server: one sample is
judged at the third decimal against its target, and a round's samples share
whatever the machine was doing, so the report takes the median over rounds of
each app's ratio to raw in the same round.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter

import uvloop

from . import client
from .apps import split
from .server import ServerProcess, client_pinned, raise_fd_limit, wait_for_cpu_idle

APPS = ("raw", "wse-endpoint", "wse-view", "starlette", "fastapi", "litestar")


@dataclass
class Result:
    app: str
    conns: int
    samples: list[float] = field(default_factory=list)  # bytes of RSS per connection, one per round
    error: str = ""

    @property
    def per_conn(self) -> float:
        """Bytes of RSS per idle connection, the median over rounds."""
        return statistics.median(self.samples)


@dataclass
class Options:
    conns: int = 2000
    apps: tuple[str, ...] = APPS
    settle: float = 1.0
    rounds: int = 5
    candidates: dict[str, str] = field(default_factory=dict)  # label -> path of a wsendpoints copy
    progress: Callable[[str], None] = print


async def _open(url: str, conns: int) -> list[client.Echoer]:
    """Open ``conns`` connections and complete one echo on each."""
    tally = client.Tally()
    echoers = await client.connect(url, conns, tally, "text")
    for echoer in echoers:
        echoer.send()
    await client.wait_idle(tally, timeout=20)
    if tally.in_flight:
        raise RuntimeError(f"{tally.in_flight} connections got no echo")
    return echoers


async def _warm_up(url: str) -> None:
    await client.close(await _open(url, 20))


async def _hold(server: ServerProcess, conns: int, settle: float) -> int:
    """Hold ``conns`` idle connections; the server's RSS meanwhile."""
    echoers = await _open(server.url, conns)
    try:
        await asyncio.sleep(settle)
        return server.rss()
    finally:
        await client.close(echoers, timeout=10)


def _measure(app: str, options: Options, server_core: int | None) -> float:
    """Bytes of RSS per idle connection of ``app``, in a server of its own."""
    name, label = split(app)
    candidate = options.candidates[label] if label else None
    with ServerProcess(name, "text", server_core, candidate) as server:
        uvloop.run(_warm_up(server.url))
        wait_for_cpu_idle(server)
        before = server.rss()
        after = uvloop.run(_hold(server, options.conns, options.settle))
    return (after - before) / options.conns


def run(options: Options) -> list[Result]:
    raise_fd_limit()
    apps = list(options.apps)
    apps += [
        f"{app}@{label}" for app in options.apps if app.startswith("wse-") for label in options.candidates
    ]
    results = {app: Result(app, options.conns) for app in apps}
    with client_pinned() as server_core:
        for round_ in range(1, options.rounds + 1):
            for app in apps:
                result = results[app]
                if result.error:
                    continue
                started = perf_counter()
                try:
                    result.samples.append(_measure(app, options, server_core))
                except Exception as exc:
                    result.error = f"{type(exc).__name__}: {exc}"[:160]
                options.progress(f"memory {app}, round {round_}: {perf_counter() - started:.1f} s")
    return list(results.values())
