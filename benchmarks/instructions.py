"""Loopback, counted: the server's CPU instructions per round trip, under callgrind.

``python -m benchmarks.instructions`` (options: ``--codecs text,json --conns 500
--apps ... --round-trips 20000 --repeats 2``) runs the loopback benchmark's
server (`benchmarks.server`: uvicorn with httptools, websockets-sansio and
uvloop, pinned to core 0) under ``valgrind --tool=callgrind`` and the
loopback's picows client (`benchmarks.client`, core 1), and counts the
instructions the server executes per round trip. Unlike round trips per
second, the count does not depend on what else the machine runs, so it can
settle a 3-5% question on a shared machine.

Only the steady state is counted. The server starts with instrumentation off
(fast); the client connects and warms up, then waits until no message is in
flight; ``callgrind_control`` switches instrumentation on and zeroes the
counters; the client then plays exactly ``--round-trips`` round trips (the
connections stop sending once that many messages have gone out) and waits
for the last echo; ``callgrind_control`` dumps the counters. Startup, imports,
handshakes, warm-up and shutdown are left out.

Work that runs by the clock rather than per message would be ~50x
overrepresented, as the server is ~50x slower: the server runs without
uvicorn's keepalive pings (see `SERVER_OPTIONS`), and the rate of its 0.1 s
tick, counted while idle after each window, is taken out (~0.1%).

The ratio ``floor / app`` of instructions per round trip is the throughput
ratio of a saturated server core, provided a round trip's instructions cost
the same time in both apps. Callgrind counts user-space instructions only
(Python, uvloop/libuv, httptools, libc); the kernel's socket work per round
trip is the same for every app and left out of both counts, so the ratio is
lower (more pessimistic) than the ratio of CPU time would be.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

import uvloop
from picows import WSFrame, WSTransport

from . import client
from .apps import floor
from .report import LOOPBACK_JSON, LOOPBACK_TEXT, _table, shown
from .server import ServerProcess, client_pinned, raise_fd_limit

RESULTS = Path(__file__).resolve().parent / "results"

APPS: dict[str, tuple[str, ...]] = {
    "text": ("raw", "shape-endpoint", "shape-view", "wse-endpoint", "wse-view"),
    "json": ("raw+ujson", "shape-endpoint", "shape-view", "wse-endpoint", "wse-view"),
}
"""codec -> apps counted by default (floors first, then the API's shape with nothing in it)."""

TARGETS = {"text": LOOPBACK_TEXT, "json": LOOPBACK_JSON}
TARGET_CONNS = 500
"""The loopback targets: throughput vs the floor at 500 connections."""

SERVER_OPTIONS = ("--ws-ping-interval", "0")
"""No keepalive pings. They go by the clock (every 20 s per connection), so under
valgrind, ~50x slower, they would come ~50x more often per round trip: 500 pings
every ~35,000 round trips, ~1.4% of the count, common to every app. A real
loopback run never lasts the 20 s to its first ping."""
IDLE_SECONDS = 2.0  # counted idle after each window, for the rate of the server's clock-driven work

_CONTROL_TIMEOUT = 120.0  # s for one callgrind_control command
_START_TIMEOUT = 300.0  # s for the server under valgrind to print its port


@dataclass
class Count:
    """One (codec, app, conns): instructions per round trip, one number per repeat."""

    codec: str
    app: str
    conns: int
    per_trip: list[float] = field(default_factory=list)
    idle: list[float] = field(default_factory=list)  # per round trip, taken out of per_trip (see `count`)
    seconds: list[float] = field(default_factory=list)  # wall time of each counted window
    kernel: list[float] = field(
        default_factory=list
    )  # floors: system / user CPU time, timed (`kernel_share`)
    error: str = ""

    @property
    def mean(self) -> float:
        return statistics.fmean(self.per_trip)

    @property
    def spread(self) -> float:
        """(max - min) / mean of the repeats, in %."""
        return (max(self.per_trip) - min(self.per_trip)) / self.mean * 100


@dataclass
class Options:
    codecs: tuple[str, ...] = ("text", "json")
    conns: tuple[int, ...] = (TARGET_CONNS,)
    apps: tuple[str, ...] | None = None  # None: APPS; the floors always run
    round_trips: int = 20_000
    warmup: int = 10  # round trips per connection before counting (uninstrumented), at least 2,000 in all
    repeats: int = 2  # servers started per app, interleaved with the other apps
    dumps: Path | None = None  # keep callgrind's dumps (and logs) here, for callgrind_annotate
    kernel: bool = True  # also time each floor without valgrind, for its kernel CPU time (`kernel_share`)
    progress: Callable[[str], None] = print


@dataclass
class Budget(client.Tally):
    """A tally that stops the connections once ``budget`` more messages have been sent."""

    budget: int = 0


class BoundedEchoer(client.Echoer):
    """The loopback's `client.Echoer`, but every echo spends one message of the tally's budget.

    When the budget is spent the echo is not answered, so exactly ``budget`` +
    (messages already in flight) round trips complete, and ``drained`` is set
    after the last echo.
    """

    tally: Budget

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        tally = self.tally
        if tally.running and frame.msg_type == self.msg_type:
            if tally.budget > 0:
                tally.budget -= 1
            else:
                tally.running = False
        super().on_ws_frame(transport, frame)


def valgrind_prefix(out_dir: Path) -> list[str]:
    """The command that runs the server under callgrind, not counting (nor instrumenting) until told."""
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_dir}/callgrind.out.%p",
        f"--log-file={out_dir}/valgrind.%p.log",
    ]


def callgrind_control(pid: int, *args: str) -> None:
    """Run ``callgrind_control ARGS PID``; raise if it did not reach the process."""
    command = ["callgrind_control", *args, str(pid)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=_CONTROL_TIMEOUT, check=False)
    if done.returncode != 0 or "OK" not in done.stdout:
        raise RuntimeError(f"{shlex.join(command)} failed: {(done.stdout + done.stderr).strip()[:300]}")


def dump_total(pid: int, out_dir: Path) -> int:
    """Dump the counters of process ``pid``; the instructions (Ir) counted since they were zeroed."""
    before = set(out_dir.glob(f"callgrind.out.{pid}.*"))
    callgrind_control(pid, "--dump")
    new = sorted(set(out_dir.glob(f"callgrind.out.{pid}.*")) - before)
    if len(new) != 1:
        raise RuntimeError(f"expected one new callgrind dump in {out_dir}, found {[p.name for p in new]}")
    text = new[0].read_text(errors="replace")
    events = re.search(r"^events:\s*(.+)$", text, re.MULTILINE)
    totals = re.search(r"^(?:totals|summary):\s*(.+)$", text, re.MULTILINE)
    if events is None or totals is None:
        raise RuntimeError(f"no events/totals line in {new[0]}")
    return int(totals.group(1).split()[events.group(1).split().index("Ir")])


async def _settle(tally: client.Tally, timeout: float) -> None:
    """Wait for the last echo (or raise), then a moment for the server to finish its iteration."""
    if tally.in_flight:
        try:
            await asyncio.wait_for(tally.drained.wait(), timeout)
        except asyncio.TimeoutError:  # not the builtin before Python 3.11
            raise TimeoutError(f"{tally.in_flight} echoes still missing after {timeout:.0f} s") from None
    await asyncio.sleep(0.2)


async def _play(echoers: list[client.Echoer], tally: Budget, trips: int, timeout: float) -> None:
    """Exactly ``trips`` round trips over every connection, from idle back to idle."""
    if trips < len(echoers):
        raise ValueError(f"{trips} round trips cannot keep {len(echoers)} connections busy")
    tally.drained.clear()
    tally.budget = trips - len(echoers)
    tally.running = True
    for echoer in echoers:
        echoer.send()
    await _settle(tally, timeout)
    tally.running = False


@dataclass
class Window:
    """What one counted window measured."""

    per_trip: float  # instructions per round trip, the idle rate's share taken out
    idle: float  # instructions per round trip taken out: the server's timers, by wall time
    seconds: float  # wall time of the window


async def count(server: ServerProcess, out_dir: Path, codec: str, conns: int, options: Options) -> Window:
    """Count the server's instructions over ``options.round_trips`` round trips at ``conns`` connections.

    Then count it idle for `IDLE_SECONDS`: uvicorn's 0.1 s tick runs by the clock,
    so under valgrind (~50x slower) a window holds ~50x more ticks per round trip
    than a real run; their rate times the window's duration is taken out.
    """
    pid = server.process.pid
    tally = Budget()
    echoers = await client.connect(server.url, conns, tally, codec, echoer=BoundedEchoer)
    try:
        # Generous: valgrind slows the server ~50-100x; allow ~20 ms per round trip.
        timeout = 120 + options.round_trips * 0.02
        await _play(echoers, tally, max(2_000, options.warmup * conns), timeout)
        callgrind_control(pid, "--instr=on")
        try:
            callgrind_control(pid, "--zero")
            echoes, started = tally.echoes, perf_counter()
            await _play(echoers, tally, options.round_trips, timeout)
            seconds = perf_counter() - started
            if tally.echoes - echoes != options.round_trips:
                raise RuntimeError(f"{tally.echoes - echoes} round trips instead of {options.round_trips}")
            total = dump_total(pid, out_dir)
            callgrind_control(pid, "--zero")
            started = perf_counter()
            await asyncio.sleep(IDLE_SECONDS)
            idle_rate = dump_total(pid, out_dir) / (perf_counter() - started)
        finally:
            callgrind_control(pid, "--instr=off")  # closing and shutting down at full speed
    finally:
        await client.close(echoers, timeout=60)
    idle = idle_rate * seconds / options.round_trips
    return Window(total / options.round_trips - idle, idle, seconds)


async def kernel_share(server: ServerProcess, codec: str, conns: int, windows: int = 5) -> list[float]:
    """The server's system CPU time over its user CPU time, in ``windows`` timed windows of 1 s.

    Run without valgrind, as the loopback benchmark does. Callgrind counts no
    kernel instructions, but the kernel's socket work is part of what a round
    trip costs the server's core (a third of it and more on loopback); it is
    the same for every app (one read and one write per round trip), so the
    floor's share, as instructions at the floor's rate, estimates it for all.
    The share is a ratio of two times measured together, so it drifts less
    with the machine's load than either time.
    """
    tally = client.Tally()
    echoers = await client.connect(server.url, conns, tally, codec)
    shares = []
    try:
        tally.running = True
        for echoer in echoers:
            echoer.send()
        await asyncio.sleep(0.5)
        for _ in range(windows):
            before = server.process.cpu_times()
            await asyncio.sleep(1.0)
            after = server.process.cpu_times()
            shares.append((after.system - before.system) / max(1e-9, after.user - before.user))
        tally.running = False
        await client.wait_idle(tally, timeout=5)
    finally:
        await client.close(echoers)
    return shares


def plan(options: Options) -> list[tuple[str, str]]:
    """(codec, app) of every server to start, floors first."""
    servers = []
    for codec in options.codecs:
        apps = options.apps if options.apps is not None else APPS[codec]
        for app in dict.fromkeys([*(floor(app, codec) for app in apps), *apps]):
            servers.append((codec, app))
    return servers


def run(options: Options) -> list[Count]:
    """Every server of `plan`, ``options.repeats`` times over, each with every connection count."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (it comes with valgrind)")
    raise_fd_limit()
    results: dict[tuple[str, str, int], Count] = {}
    with client_pinned() as server_core, contextlib.ExitStack() as stack:
        if options.dumps is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wse-callgrind-")))
        else:
            root = options.dumps
            root.mkdir(parents=True, exist_ok=True)
        for repeat in range(options.repeats):
            for codec, app in plan(options):
                out_dir = root / f"{codec}-{app}-{repeat + 1}"
                out_dir.mkdir(parents=True, exist_ok=True)
                for conns in options.conns:
                    result = results.setdefault((codec, app, conns), Count(codec, app, conns))
                    if result.error:
                        continue
                    started = perf_counter()
                    try:
                        # One server per connection count: each count starts from a fresh process.
                        with ServerProcess(
                            app,
                            codec,
                            server_core,
                            prefix=valgrind_prefix(out_dir),
                            options=SERVER_OPTIONS,
                            start_timeout=_START_TIMEOUT,
                        ) as server:
                            window = uvloop.run(count(server, out_dir, codec, conns, options))
                    except Exception as exc:
                        result.error = f"{type(exc).__name__}: {exc}"[:300]
                        options.progress(f"instructions {codec} {app} x{conns}: {result.error}")
                        continue
                    result.per_trip.append(window.per_trip)
                    result.idle.append(window.idle)
                    result.seconds.append(window.seconds)
                    options.progress(
                        f"instructions {codec} {app} x{conns} #{repeat + 1}: {window.per_trip:,.0f} "
                        f"per round trip (idle {window.idle:.0f} taken out; window {window.seconds:.1f} s, "
                        f"server {perf_counter() - started:.0f} s)"
                    )
        for result in results.values():
            if not options.kernel or result.error or floor(result.app, result.codec) != result.app:
                continue
            try:
                with ServerProcess(result.app, result.codec, server_core) as server:
                    result.kernel = uvloop.run(kernel_share(server, result.codec, result.conns))
            except Exception as exc:
                options.progress(f"kernel share {result.codec} {result.app}: {type(exc).__name__}: {exc}")
                continue
            shares = ", ".join(f"{share:.2f}" for share in result.kernel)
            options.progress(
                f"kernel share {result.codec} {result.app} x{result.conns}: system / user {shares}"
            )
    return list(results.values())


def _met(ratio: float, pairs: list[float], target: float) -> str:
    """Met when the mean ratio meets the target; "borderline" when the repeats fall on both sides."""
    met = "yes" if ratio >= target else "**no**"
    return f"{met} (borderline)" if min(pairs) < target <= max(pairs) else met


def render(results: list[Count], options: Options, command: str, seconds: float) -> str:
    """The markdown report: one row per (codec, app, conns), ratios to the floor and the targets."""
    found = {(r.codec, r.app, r.conns): r for r in results}
    rows = []
    for r in results:
        if r.error or not r.per_trip:
            rows.append([r.codec, f"`{r.app}`", str(r.conns), f"cannot run: {r.error}", *[""] * 6])
            continue
        base = found.get((r.codec, floor(r.app, r.codec), r.conns))
        ratio_cell = kernel_cell = target_cell = met_cell = "-"
        if base is not None and base is r and r.kernel:
            kernel_cell = f"kernel: {statistics.median(r.kernel) * r.mean:,.0f} (est.)"
        if base is not None and base is not r and base.per_trip:
            ratio = base.mean / r.mean
            pairs = [b / a for a, b in zip(r.per_trip, base.per_trip, strict=False)]
            target = TARGETS.get(r.codec) if r.conns == TARGET_CONNS and r.app.startswith("wse-") else None
            ratio_cell = f"{shown(ratio, target or 0, digits=3)}x ({min(pairs):.3f}-{max(pairs):.3f})"
            if target is not None:
                target_cell = f"≥ {target:.2f}x"
                met_cell = _met(ratio, pairs, target)
            if base.kernel:
                kernel = statistics.median(base.kernel) * base.mean  # instructions' worth per round trip
                with_kernel = (base.mean + kernel) / (r.mean + kernel)
                kernel_cell = f"{shown(with_kernel, target or 0, digits=3)}x"
                if target is not None:
                    met_cell += f"; with kernel: {'yes' if with_kernel >= target else '**no**'}"
        each = ", ".join(f"{n:,.0f}" for n in r.per_trip)
        row = [r.codec, f"`{r.app}`", str(r.conns), f"{r.mean:,.0f}", each, f"{r.spread:.2f}%"]
        rows.append([*row, ratio_cell, kernel_cell, target_cell, met_cell])
    header = ["codec", "app", "conns", "instructions/round trip", "each repeat", "spread"]
    header += ["floor / app", "with kernel", "target", "met"]
    if not options.kernel:
        header, rows = header[:7] + header[8:], [row[:7] + row[8:] for row in rows]
    idle = [i for r in results for i in r.idle]
    windows = [t for r in results for t in r.seconds]
    lines = [
        "# Loopback, counted: server instructions per round trip (callgrind)",
        "",
        f"`{command}`",
        "",
        "The loopback server (uvicorn: httptools, websockets-sansio, uvloop; no keepalive pings) "
        "under `valgrind --tool=callgrind`, the picows client on the other core. Each of "
        f"{options.repeats} repeat(s) starts a fresh server per app and connection count, connects, "
        f"warms up uninstrumented (max(2,000, {options.warmup} x conns) round trips), then counts the "
        f"server's instructions (Ir) over exactly {options.round_trips:,} round trips, from idle to idle, "
        "less the rate of its clock-driven work (uvicorn's 0.1 s tick, counted idle) times the "
        "window's duration. `floor / app` is the floor's count over the app's (means of the repeats; "
        "in brackets each repeat with the floor's same repeat): the throughput ratio of a saturated "
        "server core if an instruction costs the same time in both. A target is met when the mean "
        "meets it (unrounded: a mean that three decimals would round onto the target gets a fourth); "
        "borderline when the paired repeats fall on both sides.",
        "",
        "Callgrind counts user-space instructions only. The kernel's socket work (one read and one "
        "write per round trip, the same for every app) costs the server's core too, so `floor / app` "
        "is a lower bound of the CPU-time ratio. `with kernel` estimates that ratio: the floor, timed "
        "without valgrind, spends `s` s of system CPU time per s of user time, so a round trip's kernel "
        "work is worth `s x floor` instructions, added to both counts (the floor's row shows it). "
        "Only that shared term comes from a clock."
        if options.kernel
        else "Callgrind counts user-space instructions only: the kernel's socket work, the same for "
        "every app, is in neither count, so `floor / app` is a lower bound of the CPU-time ratio.",
        "",
        *_table(header, rows),
        "",
        f"- clock-driven work taken out: {min(idle, default=0):.0f}-{max(idle, default=0):.0f} "
        f"instructions per round trip; counted windows took {min(windows, default=0):.1f}-"
        f"{max(windows, default=0):.1f} s",
        f"- wsendpoints: {_provenance()}",
        f"- {_version(['valgrind', '--version'])}; Python {platform.python_version()}",
        f"- took {seconds:.0f} s",
    ]
    return "\n".join(lines) + "\n"


def _provenance() -> str:
    """The commit of the package measured, and whether it had uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    commit = _version(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    dirty = _version(["git", "-C", str(root), "status", "--porcelain", "--", "wsendpoints"])
    return f"`{commit}`" + (" with uncommitted changes" if dirty else "")


def _version(command: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    return "?"


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--codecs", type=_csv, default=Options.codecs)
    parser.add_argument("--conns", type=lambda s: tuple(int(n) for n in _csv(s)), default=Options.conns)
    parser.add_argument("--apps", type=_csv, help="only these apps (their floors always run)")
    parser.add_argument("--round-trips", type=int, default=Options.round_trips, help="counted per run")
    parser.add_argument("--warmup", type=int, default=Options.warmup, help="round trips per connection")
    parser.add_argument("--repeats", type=int, default=Options.repeats, help="servers per app")
    parser.add_argument("--dumps", type=Path, help="keep callgrind's dumps here (default: a temporary dir)")
    parser.add_argument(
        "--no-kernel",
        action="store_true",
        help="skip the timed runs of the floors (the `with kernel` column)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "instructions.md")
    args = parser.parse_args(argv)
    if args.round_trips < max(args.conns):
        parser.error(f"--round-trips must be at least the largest --conns ({max(args.conns)})")
    started = perf_counter()

    def progress(line: str) -> None:
        print(f"[{perf_counter() - started:6.1f} s] {line}", file=sys.stderr, flush=True)

    options = Options(
        codecs=args.codecs,
        conns=args.conns,
        apps=args.apps,
        round_trips=args.round_trips,
        warmup=args.warmup,
        repeats=args.repeats,
        dumps=args.dumps,
        kernel=not args.no_kernel,
        progress=progress,
    )
    results = run(options)
    command = "python -m benchmarks.instructions " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = render(results, options, command.strip(), perf_counter() - started)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    progress(f"wrote {args.output}")


if __name__ == "__main__":
    main()
