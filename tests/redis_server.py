"""A real `redis-server` on a free loopback port, for the tests of the ``redis://`` backend.

Redis cannot be told to pick its own port (``--port 0`` turns TCP off), so a
free port is found by binding 127.0.0.1:0 and closing the socket, and Redis is
started on it. It is stopped by PID (SIGTERM, SIGKILL past a timeout) and
reaped; `RedisServer.restart` brings it back on the same port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import IO, Any

import pytest

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def redis_server_path() -> str:
    path = shutil.which("redis-server")
    if path is None:
        pytest.fail(
            "redis-server is not installed, and the tests of the redis:// broadcast backend need it. "
            "CI installs it in .ci/run; locally: apt-get install redis-server",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``with RedisServer() as redis:`` runs one redis-server; ``redis.url`` is its URL (db 0)."""

    def __init__(self) -> None:
        self.executable = redis_server_path()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by __exit__)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            self._log.close()

    def start(self) -> None:
        assert self.process is None, "already running"
        # No --save and no AOF: nothing on disk, and a restart comes back empty.
        command = [self.executable, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate (then kill) the server and reap it."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def command(self, *args: str) -> Any:
        """Run one command (``redis.command("PUBSUB", "NUMSUB", "room")``) on a fresh connection."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=STOP_TIMEOUT) as sock:
            request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
            sock.sendall(request.encode())
            return _read_reply(sock.makefile("rb"))

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer PING within {START_TIMEOUT} s:\n{self.output()}")


def _read_reply(stream: IO[bytes]) -> Any:
    """One RESP2 reply: enough of the protocol for PING and PUBSUB."""
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("redis-server closed the connection")
    kind, rest = line[:1], line[1:-2].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(f"redis-server: {rest}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        return None if rest == "-1" else stream.read(int(rest) + 2)[:-2].decode()
    if kind == b"*":
        return [_read_reply(stream) for _ in range(int(rest))]
    raise RuntimeError(f"unexpected reply from redis-server: {line!r}")
