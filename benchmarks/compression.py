"""Memory per connection with and without permessage-deflate, under ``wsendpoints run``.

``python -m benchmarks.compression`` (``--conns 500`` by default, about half a minute).

Browsers offer permessage-deflate on every connection, and both servers accept it
unless told not to: each such connection then keeps a compressor and a
decompressor. The `websockets` client offers the extension (or not), so that what
is measured is the server's side of what a browser's connection costs. Each case
serves an echo endpoint with ``wsendpoints run`` on one backend, opens 20
connections first (so that imports and the allocator's first arenas are not
counted), then ``--conns`` more, each echoing one message of 68 characters, and
reports the growth of the server's RSS per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from websockets.asyncio.client import ClientConnection, connect

from wsendpoints import API, WebSocket, WebSocketEndpoint

from .payloads import TEXT
from .server import raise_fd_limit

api = API()


@api.websocket_route("/echo")
class Echo(WebSocketEndpoint):
    async def on_receive(self, ws: WebSocket, message: str) -> None:
        await ws.send(message)


CASES = (
    ("asyncio", "on", "deflate"),
    ("asyncio", "off", "deflate"),
    ("asyncio", "on", None),
    ("trio", "on", "deflate"),
    ("trio", "on", None),
)
ROOT = Path(__file__).resolve().parent.parent


async def _open(url: str, count: int, compression: str | None) -> list[ClientConnection]:
    connections = []
    for _ in range(count):
        ws = await connect(url, compression=compression, open_timeout=10)
        await ws.send(TEXT)
        await asyncio.wait_for(ws.recv(), 10)
        connections.append(ws)
    return connections


@contextmanager
def _served(backend: str, compression: str) -> Iterator[tuple[int, psutil.Process]]:
    """``wsendpoints run`` this module's API on a free loopback port; its port and its process."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    command = [sys.executable, "-m", "wsendpoints", "run", "benchmarks.compression:api", "--backend", backend]
    command += ["--compression", compression, "--fd", str(listener.fileno()), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, pass_fds=[listener.fileno()])
    listener.close()
    try:
        yield port, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)


async def measure(port: int, server: psutil.Process, compression: str | None, conns: int) -> str:
    """The KiB per connection, and the extension the server agreed to."""
    url = f"ws://127.0.0.1:{port}/echo"
    connections: list[ClientConnection] = []
    try:
        deadline = time.monotonic() + 20
        while True:  # until the server listens
            try:
                connections += await _open(url, 20, compression)
                break
            except OSError:
                if time.monotonic() > deadline or not server.is_running():
                    raise
                await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        before = server.memory_info().rss
        connections += await _open(url, conns, compression)
        await asyncio.sleep(1)
        after = server.memory_info().rss
        response = connections[-1].response
        agreed = response.headers.get("sec-websocket-extensions") if response is not None else None
        return f"{(after - before) / conns / 1024:.1f} | {agreed or 'none'}"
    finally:
        await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--conns", type=int, default=500)
    args = parser.parse_args(argv)
    raise_fd_limit()
    print("| backend | --compression | client offers | KiB per connection | agreed |")
    print("|---|---|---|---|---|")
    for backend, server_compression, client_compression in CASES:
        with _served(backend, server_compression) as (port, server):
            result = asyncio.run(measure(port, server, client_compression, args.conns))
        offers = "permessage-deflate" if client_compression else "nothing"
        print(f"| {backend} | {server_compression} | {offers} | {result} |", flush=True)


if __name__ == "__main__":
    main()
