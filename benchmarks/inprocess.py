"""In-process benchmark: each ASGI app driven by a synthetic ``receive``/``send``.

No server and no sockets: the harness hands each app a ``websocket.connect``,
then N pre-built ``websocket.receive`` events, then a ``websocket.disconnect``,
and its ``send`` only counts. The harness is the same closure for every app,
so the difference between two apps is the difference between the frameworks.

- With 1 connection ``receive`` never suspends: the loop runs the app's code
  and nothing else, the cleanest measure of what a framework adds per message.
- With 500 connections ``receive`` yields to the event loop before each message
  (as a server's ``receive`` does while it waits for the network), so the
  connections take turns and the per-connection state cycles through the caches.

Only the steady state is timed: from the moment every connection has been
accepted and received one message to the first disconnect, so the
per-connection setup (routing, accept, task groups) is not counted. The clock
is the thread's CPU time, so that time other processes take from a shared
machine is not counted either.
"""

from __future__ import annotations

import gc
import statistics
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from time import perf_counter, thread_time
from typing import Any

import anyio

from wsendpoints.types import ASGIApp, Message, Receive

from .apps import APPS, build, floor, load_candidate, split
from .payloads import PAYLOADS, same_message

BACKENDS = ("asyncio", "uvloop", "trio")
CONNS = (1, 500)

SCOPE: dict[str, Any] = {
    "type": "websocket",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "scheme": "ws",
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "root_path": "",
    "path": "/ws",
    "raw_path": b"/ws",
    "query_string": b"",
    "headers": [
        (b"host", b"127.0.0.1:8000"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-version", b"13"),
    ],
    "subprotocols": [],
    "state": {},
    "extensions": {"websocket.http.response": {}},
}
"""A websocket scope as uvicorn builds it; each connection gets its own copy (`fresh_scope`)."""


def fresh_scope() -> dict[str, Any]:
    """A connection's own scope: apps may write to it and to its ``state``."""
    return {**SCOPE, "state": {}, "extensions": {"websocket.http.response": {}}}


CONNECT = {"type": "websocket.connect"}
DISCONNECT = {"type": "websocket.disconnect", "code": 1000, "reason": ""}


@dataclass
class Result:
    """The µs/message samples of one (codec, app, backend, conns) case."""

    codec: str
    app: str
    backend: str
    conns: int
    samples: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass
class Options:
    codecs: tuple[str, ...] = ("text", "bytes", "json", "msgpack")
    backends: tuple[str, ...] = BACKENDS
    conns: tuple[int, ...] = CONNS
    apps: tuple[str, ...] | None = None  # None: every app of each codec
    repeats: int = 7
    messages: int = 12_000  # per run with 1 connection
    messages_per_conn: int = 20  # per connection with many connections
    candidates: dict[str, str] = field(default_factory=dict)  # label -> path of a wsendpoints copy
    progress: Callable[[str], None] = print


# -- the synthetic server --------------------------------------------------------------


@types.coroutine
def _asyncio_yield() -> Iterator[None]:
    """Yield to the asyncio loop once: what ``asyncio.sleep(0)`` does, minus two calls."""
    yield


def _suspender(backend: str) -> Callable[[], Any]:
    if backend == "trio":
        import trio

        return trio.lowlevel.cancel_shielded_checkpoint
    return _asyncio_yield


async def drive(app: ASGIApp, message: dict[str, Any], conns: int, per_conn: int, suspend: Any) -> float:
    """Serve ``conns`` connections of ``per_conn`` messages each; return the steady-state µs/message."""
    handed = 0  # messages handed out, over every connection
    mark = 2 * conns  # from here on every connection is accepted and busy
    t0 = t1 = 0.0
    at_end = 0
    sent = 0

    def connection() -> Receive:
        left = -1  # -1: not connected yet; then the messages still to hand out

        async def receive() -> dict[str, Any]:
            nonlocal left, handed, t0, t1, at_end
            if left > 0:  # the hot path comes first
                if suspend is not None:
                    await suspend()
                left -= 1
                handed += 1
                if handed == mark:
                    t0 = thread_time()
                return message
            if left < 0:
                left = per_conn
                return CONNECT
            if not t1:
                t1 = thread_time()
                at_end = handed
            return DISCONNECT

        return receive

    async def send(event: Message) -> None:
        nonlocal sent
        sent += 1

    async def serve_one() -> None:
        await app(fresh_scope(), connection(), send)

    if conns == 1:
        await serve_one()
    else:
        async with anyio.create_task_group() as tg:
            for _ in range(conns):
                tg.start_soon(serve_one)
    if sent < handed:
        raise RuntimeError(f"the app echoed {sent} events for {handed} messages")
    return (t1 - t0) / (at_end - mark + 1) * 1e6


def run_on(backend: str, func: Callable[..., Any], *args: Any) -> Any:
    if backend == "trio":
        return anyio.run(func, *args, backend="trio")
    options = {"use_uvloop": True} if backend == "uvloop" else {}
    return anyio.run(func, *args, backend="asyncio", backend_options=options)


def measure(app: ASGIApp, codec: str, conns: int, messages: int, backend: str) -> float:
    """One run: µs per message of ``app`` echoing ``messages`` messages over ``conns`` connections."""
    key, payload = PAYLOADS[codec]
    message = {"type": "websocket.receive", key: payload}
    per_conn = messages if conns == 1 else max(messages // conns, 4)
    suspend = None if conns == 1 else _suspender(backend)
    gc.collect()
    return float(run_on(backend, drive, app, message, conns, per_conn, suspend))


def verify(app: ASGIApp, codec: str, backend: str) -> None:
    """Check that ``app`` accepts and echoes three messages correctly; raise if not."""
    key, payload = PAYLOADS[codec]
    events = [CONNECT] + [{"type": "websocket.receive", key: payload}] * 3 + [DISCONNECT]
    sent: list[Message] = []

    async def receive() -> dict[str, Any]:
        return events.pop(0) if events else DISCONNECT

    async def send(event: Message) -> None:
        sent.append(event)

    async def main() -> None:
        with anyio.fail_after(5):
            await app(fresh_scope(), receive, send)

    run_on(backend, main)
    kinds = [event["type"] for event in sent]
    if kinds[:4] != ["websocket.accept"] + ["websocket.send"] * 3:
        raise AssertionError(f"expected an accept and three echoes, got {kinds}")
    for event in sent[1:4]:
        if not same_message(codec, payload, event.get(key)):
            raise AssertionError(f"bad echo: {event!r}")


# -- the suite ---------------------------------------------------------------------------


def cases(options: Options) -> list[tuple[str, str]]:
    """(codec, app) pairs to measure, candidate apps (``app@label``) beside the installed ones."""
    pairs = []
    for codec in options.codecs:
        for app in APPS[codec]:
            selected = options.apps is None or app in options.apps or floor(app, codec) == app
            if not selected:
                continue
            pairs.append((codec, app))
            if app.startswith("wse-"):
                pairs.extend((codec, f"{app}@{label}") for label in options.candidates)
    return pairs


def _build(app: str, codec: str, options: Options) -> ASGIApp:
    name, label = split(app)
    return build(name, codec, load_candidate(options.candidates[label]) if label else None)


def run(options: Options) -> list[Result]:
    """Measure every case ``options.repeats`` times, interleaved so that drift hits every app alike."""
    results: list[Result] = []
    for backend in options.backends:
        runnable: list[tuple[str, str, ASGIApp]] = []
        for codec, app in cases(options):
            built = _build(app, codec, options)
            try:
                verify(built, codec, backend)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
                for conns in options.conns:
                    results.append(Result(codec, app, backend, conns, error=error))
                continue
            runnable.append((codec, app, built))
        for conns in options.conns:
            batch = [Result(codec, app, backend, conns) for codec, app, _ in runnable]
            messages = options.messages if conns == 1 else options.messages_per_conn * conns
            started = perf_counter()
            # One discarded round first: the first run of each app is slower (cold caches,
            # lazily built middleware, specialising interpreter).
            for codec, _app, built in runnable:
                measure(built, codec, conns, messages // 4, backend)
            for _ in range(options.repeats):
                for result, (codec, _app, built) in zip(batch, runnable, strict=True):
                    result.samples.append(measure(built, codec, conns, messages, backend))
            options.progress(
                f"in-process {backend}, {conns} connection(s): {len(batch)} apps "
                f"x {options.repeats} runs in {perf_counter() - started:.1f} s"
            )
            results.extend(batch)
    return results


def by_key(results: Iterable[Result]) -> dict[tuple[str, str, str, int], Result]:
    return {(r.codec, r.app, r.backend, r.conns): r for r in results}
