"""Fan-out: one publish to N group members, and the time until the last one has it.

``python -m benchmarks.fanout`` (add ``--redis`` to include a Redis backend; it starts
its own ``redis-server`` on a free loopback port).

Each member is a real connection of a wsendpoints endpoint, driven in-process with a
synthetic ASGI receive/send: it joins the group, and its ``send`` notes the time the
message reaches it, which is when the server would write it to the socket. So the
time covers the whole path: serialising, the backend, the hub's delivery (decode
once, encode once per codec), each member's queue, and its drain task.

The ``floor`` rows wake as many bare tasks, each making the same stand-in ``send``,
with no framework at all: what the event loop itself costs for a task per member.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from time import perf_counter
from typing import Any

import anyio

from wsendpoints import API, WebSocket, WebSocketEndpoint
from wsendpoints.testing import lifespan
from wsendpoints.types import Message, Send

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS_MS = {"memory": 50.0, "redis": 150.0}
GROUP = "room"


class Member(WebSocketEndpoint):
    value_type = "json"
    joined: Callable[[], None]

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.join(GROUP)
        type(self).joined()


class Arrivals:
    """Counts members that got the current message; notes when the last one did."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.next_round()

    def next_round(self) -> None:
        self.count = 0
        self.last = 0.0
        self.done = anyio.Event()

    def arrived(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.last = perf_counter()
            self.done.set()


def stand_in_send(arrivals: Arrivals) -> Send:
    """The server's ``send`` as members and floor tasks alike call it: it notes the arrival."""

    async def send(message: Message) -> None:
        if message["type"] == "websocket.send":
            arrivals.arrived()

    return send


def _scope() -> dict[str, Any]:
    return {"type": "websocket", "path": "/member", "headers": [], "query_string": b"", "subprotocols": []}


async def _member(api: API, send: Send, stop: anyio.Event) -> None:
    connected = False

    async def receive() -> dict[str, Any]:
        nonlocal connected
        if not connected:
            connected = True
            return {"type": "websocket.connect"}
        await stop.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    await api(_scope(), receive, send)


async def measure(backend: str, members: int, repeats: int) -> list[float]:
    """Milliseconds from ``publish`` to the last member, ``repeats`` times."""
    ready = Arrivals(members)
    api = API(broadcast=backend)
    api.add_websocket("/member", type("Member", (Member,), {"joined": staticmethod(ready.arrived)}))
    stop = anyio.Event()
    current = Arrivals(members)
    send = stand_in_send(current)
    times: list[float] = []
    async with lifespan(api, timeout=60), anyio.create_task_group() as tg:
        for _ in range(members):
            tg.start_soon(_member, api, send, stop)
        with anyio.fail_after(60):
            await ready.done.wait()
        for n in range(repeats + 1):  # the first round warms up
            current.next_round()
            start = perf_counter()
            await api.publish(GROUP, {"n": n, "text": "hello, everyone"})
            with anyio.fail_after(60):
                await current.done.wait()
            if n:
                times.append((current.last - start) * 1000)
            await anyio.sleep(0.05)
        stop.set()
    return times


async def measure_floor(members: int, repeats: int) -> list[float]:
    """Milliseconds to wake ``members`` parked tasks, each making one stand-in ``send``: the floor.

    No framework at all: each task parks on the loop's cheapest wake-up (a bare
    asyncio future; trio's own trap), which hands it the event,
    and awaits the same ``send`` as a member's. Any fan-out that gives each member a task of its own
    (so that a slow member cannot hold up the others) pays at least this.
    """
    from wsendpoints.broadcast._waiters import new_waiter

    current = Arrivals(members)
    send = stand_in_send(current)

    async def parked(waiter: Any) -> None:
        while True:
            event = await waiter.wait()
            if event is None:
                return
            await send(event)

    times: list[float] = []
    waiters = [new_waiter() for _ in range(members)]
    async with anyio.create_task_group() as tg:
        for waiter in waiters:
            tg.start_soon(parked, waiter)
        await anyio.sleep(0.1)  # every task parked
        for n in range(repeats + 1):
            current.next_round()
            start = perf_counter()
            for waiter in waiters:
                waiter.wake(EVENT)
            with anyio.fail_after(60):
                await current.done.wait()
            if n:
                times.append((current.last - start) * 1000)
            await anyio.sleep(0.05)
        for waiter in waiters:
            waiter.wake(None)
    return times


EVENT = {"type": "websocket.send", "text": '{"n":0,"text":"hello, everyone"}'}


def _run(async_backend: str, coro: Callable[[], Awaitable[list[float]]]) -> list[float]:
    options = {"use_uvloop": True} if async_backend == "uvloop" else {}
    return anyio.run(coro, backend="trio" if async_backend == "trio" else "asyncio", backend_options=options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=lambda s: [int(n) for n in s.split(",")], default=[1000, 10000])
    parser.add_argument("--loops", type=lambda s: s.split(","), default=["asyncio", "uvloop", "trio"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--redis", action="store_true", help="also measure a redis:// backend")
    parser.add_argument("--output", type=Path, default=RESULTS / "fanout.md")
    args = parser.parse_args(argv)

    backends = {"floor": "", "memory": "memory://"}
    redis = None
    if args.redis:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.redis_server import RedisServer  # the test suite's, so there is one way to start it

        redis = RedisServer()
        redis.start()
        backends["redis"] = redis.url
    rows = []
    try:
        for name, url in backends.items():
            for loop in args.loops:
                for members in args.members:
                    if name == "floor":
                        times = _run(loop, lambda: measure_floor(members, args.repeats))  # noqa: B023
                    else:
                        times = _run(loop, lambda: measure(url, members, args.repeats))  # noqa: B023
                    median = statistics.median(times)
                    target = TARGETS_MS.get(name, math.nan) if members == 10000 else math.nan
                    met = "" if math.isnan(target) else (" yes" if median <= target else " **no**")
                    rows.append(
                        f"| {name} | {loop} | {members:,} | {median:.1f} | {max(times):.1f} |"
                        + (f" ≤ {target:.0f}{met} |" if not math.isnan(target) else " |")
                    )
                    print(rows[-1], flush=True)
    finally:
        if redis is not None:
            redis.stop()
    table = [
        "# Fan-out: one publish, time until the last member has it",
        "",
        f"`python -m benchmarks.fanout{' --redis' if args.redis else ''}`: medians of {args.repeats} "
        "publishes after one warm-up, in ms.",
        "",
        "| backend | loop | members | median ms | worst ms | target ms |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(table) + "\n")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
