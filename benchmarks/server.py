"""The benchmark server: one echo app under uvicorn, in its own process, pinned to one core.

``python -m benchmarks.server --app wse-endpoint --codec text`` binds
127.0.0.1 on a free port, prints ``PORT <n>`` and serves with uvicorn
(httptools, websockets-sansio, uvloop) until it is terminated.
`ServerProcess` starts it from the parent and always stops it.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import psutil

UVICORN_OPTIONS: dict[str, Any] = {"loop": "uvloop", "http": "httptools", "ws": "websockets-sansio"}
SERVER_CORE, CLIENT_CORE = 0, 1


def raise_fd_limit() -> None:
    """Allow thousands of sockets: the 2,000-connection memory test needs them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextmanager
def client_pinned() -> Iterator[int | None]:
    """Run this process (the client) on the client core; yield the core for the server.

    Yields None (no pinning) on a machine with fewer than two cores.
    """
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        yield None
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {CLIENT_CORE})
    try:
        yield SERVER_CORE
    finally:
        os.sched_setaffinity(0, previous)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", required=True)
    parser.add_argument("--codec", required=True)
    parser.add_argument("--candidate", help="path of a wsendpoints copy to serve instead")
    parser.add_argument(
        "--ws-ping-interval", type=float, default=20.0, help="uvicorn's keepalive pings, in s (0: none)"
    )
    args = parser.parse_args(argv)

    import uvicorn

    from .apps import build, load_candidate

    raise_fd_limit()
    app = build(args.app, args.codec, load_candidate(args.candidate) if args.candidate else None)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)  # the memory test opens 2,000 connections in bursts
    config = uvicorn.Config(
        app,
        lifespan="auto",
        log_level="warning",
        access_log=False,
        ws_ping_interval=args.ws_ping_interval or None,
        **UVICORN_OPTIONS,
    )
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


class ServerProcess:
    """``with ServerProcess(app, codec, core=0) as server:`` a running server; stopped and reaped on exit.

    ``prefix`` runs the server under another program that execs it in the same
    process (``valgrind --tool=callgrind ...``, ``env VAR=...``); ``options`` are
    more options of `main`; ``start_timeout`` bounds the wait for its port (a
    server under valgrind starts slowly).
    """

    def __init__(
        self,
        app: str,
        codec: str,
        core: int | None,
        candidate: str | None = None,
        prefix: Sequence[str] = (),
        options: Sequence[str] = (),
        start_timeout: float = 30,
    ) -> None:
        command = [*prefix, sys.executable, "-m", "benchmarks.server", "--app", app, "--codec", codec]
        if candidate:
            command += ["--candidate", candidate]
        command += options
        if core is not None and shutil.which("taskset"):
            command = ["taskset", "-c", str(core), *command]  # taskset execs: same pid
        self._command = command
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> ServerProcess:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self._proc = subprocess.Popen(self._command, cwd=root, stdout=subprocess.PIPE, text=True)
        try:
            self.port = self._read_port(timeout=self._start_timeout)
            self.process = psutil.Process(self._proc.pid)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _read_port(self, timeout: float) -> int:
        assert self._proc is not None
        assert self._proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise TimeoutError(f"the server did not start within {timeout} s: {self._command}")
        line = self._proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the server failed to start ({self._command}): {line!r}")
        return int(line.split()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def stop(self) -> None:
        """Ask uvicorn to stop, then kill it if it takes too long; always reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                # SIGTERM: uvicorn shuts down gracefully, then dies of the signal it re-raises
                # (SIGINT would end in a KeyboardInterrupt traceback).
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


def wait_for_cpu_idle(server: ServerProcess, timeout: float = 2.0) -> None:
    """Wait until the server stops burning CPU (closing connections), so runs do not overlap."""
    deadline = time.monotonic() + timeout
    last = server.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = server.cpu_seconds()
        if now - last < 0.002:
            return
        last = now


if __name__ == "__main__":
    main()
