"""Memory benchmark: the server's RSS growth for 2,000 idle connections.

Each server first serves a few connections and closes them, so that imports
done on first use and the allocator's first arenas are not counted. Then the
client opens the connections and sends one text message on each (so that
every app has accepted and sits in its receive loop), waits for the echoes,
lets the server settle, and reads its RSS. The result is the growth per
connection: the server's own per-connection state (uvicorn, websockets) plus
the framework's.
"""

from __future__ import annotations

import asyncio
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
    rss_before: int = 0
    rss_after: int = 0
    error: str = ""

    @property
    def per_conn(self) -> float:
        """Bytes of RSS per idle connection."""
        return (self.rss_after - self.rss_before) / self.conns


@dataclass
class Options:
    conns: int = 2000
    apps: tuple[str, ...] = APPS
    settle: float = 1.0
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


async def _hold(server: ServerProcess, result: Result, settle: float) -> None:
    echoers = await _open(server.url, result.conns)
    try:
        await asyncio.sleep(settle)
        result.rss_after = server.rss()
    finally:
        await client.close(echoers, timeout=10)


def run(options: Options) -> list[Result]:
    raise_fd_limit()
    results = []
    apps = list(options.apps)
    apps += [
        f"{app}@{label}" for app in options.apps if app.startswith("wse-") for label in options.candidates
    ]
    with client_pinned() as server_core:
        for app in apps:
            started = perf_counter()
            result = Result(app, options.conns)
            name, label = split(app)
            candidate = options.candidates[label] if label else None
            try:
                with ServerProcess(name, "text", server_core, candidate) as server:
                    uvloop.run(_warm_up(server.url))
                    wait_for_cpu_idle(server)
                    result.rss_before = server.rss()
                    uvloop.run(_hold(server, result, options.settle))
            except Exception as exc:
                result.error = f"{type(exc).__name__}: {exc}"[:160]
            results.append(result)
            options.progress(f"memory {app}: {perf_counter() - started:.1f} s")
    return results
