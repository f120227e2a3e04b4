"""Serve an ASGI app with a real server in a subprocess, on a loopback port the OS picked.

The test process binds the socket (port 0, so the OS picks a free port) and
hands its file descriptor to the server: no port is guessed, none is raced for.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[2]

# name -> command line; "{fd}" and "{app}" are filled in.
SERVERS = {
    "uvicorn-websockets": "uvicorn --fd {fd} --ws websockets {app}",
    "uvicorn-sansio": "uvicorn --fd {fd} --ws websockets-sansio {app}",
    "uvicorn-wsproto": "uvicorn --fd {fd} --ws wsproto {app}",
    # --workers 0 serves in this process rather than in a worker it spawns, so stopping it stops all.
    "hypercorn-trio": "hypercorn --worker-class trio --workers 0 --bind fd://{fd} {app}",
}

# The `wsendpoints run` command itself, which adds the framework's limits and graceful shutdown.
CLI_SERVERS = {
    "wsendpoints-asyncio": "wsendpoints run --fd {fd} {app}",
    "wsendpoints-trio": "wsendpoints run --backend trio --fd {fd} {app}",
}

START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


class ServerFailed(RuntimeError):
    """The server exited or never answered; the message carries its output."""


@dataclass
class Running:
    """A server process, its URL and its captured output."""

    process: subprocess.Popen[bytes]
    url: str
    log: IO[bytes]

    def output(self) -> str:
        return _output(self.log)


@contextmanager
def serve(
    server: str,
    app: str,
    env: dict[str, str] | None = None,
    options: tuple[str, ...] = (),
    *,
    python: str = sys.executable,
    cwd: Path = ROOT,
) -> Iterator[Running]:
    """Serve ``app`` ("module:attribute") with ``server`` (a name in SERVERS or CLI_SERVERS).

    Yields once the server answers; stops it (SIGTERM, then SIGKILL) and reaps it on exit.
    ``env`` adds environment variables for the server process; ``options`` go on its command line.
    ``python`` is the interpreter it runs in and ``cwd`` the folder it starts in (where ``app`` is found).
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fd = listener.fileno()
    args = [*{**SERVERS, **CLI_SERVERS}[server].format(fd=fd, app=app).split(), *options]
    with tempfile.TemporaryFile() as log:
        try:
            process = subprocess.Popen(
                [python, "-m", *args],
                cwd=cwd,
                env={**os.environ, **(env or {})},
                pass_fds=[fd],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group, so that a stuck server and any child it made can be killed.
                start_new_session=True,
            )
        finally:
            # The server holds its own copy; ours would keep the port open after it exits.
            listener.close()
        try:
            _wait_until_serving(process, port, log)
            yield Running(process, f"ws://127.0.0.1:{port}", log)
        finally:
            _stop(process)


def _wait_until_serving(process: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    """Poll with HTTP requests until the server answers one (any status will do)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"server exited with {process.returncode}:\n{_output(log)}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise ServerFailed(f"server did not answer within {START_TIMEOUT} s:\n{_output(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ask the server to stop (SIGTERM), kill its process group if it does not, and reap it."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


def _output(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")
