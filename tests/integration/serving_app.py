"""The app the serving tests run under `wsendpoints run`.

It writes each `on_disconnect` close code, and "shutdown" from its shutdown hook,
one per line to the file named by WSENDPOINTS_TEST_LOG, so the test can see what
ran inside the server process ("mounted <code>" for the mounted Starlette app, "slow"
for its slow HTTP route).
MAX_CONNECTIONS caps the open connections, and FAIL_STARTUP makes a startup hook fail.
FEED starts a task of the app publishing "tick <n>" to the "ticks" group (``/ticks``) every
20 ms, which records "feed ended" when it ends; FEED=fail makes it raise after its third tick.
ROOT_LOGGING sets up the app's own logging as many apps do, with ``logging.basicConfig``
(a handler on the root logger), as the module is imported.
"""

from __future__ import annotations

import logging
import os

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket as StarletteWebSocket
from starlette.websockets import WebSocketDisconnect

from wsendpoints import API, WebSocket, WebSocketEndpoint

LOG = os.environ.get("WSENDPOINTS_TEST_LOG", os.devnull)

if os.environ.get("ROOT_LOGGING"):
    logging.basicConfig(level=logging.INFO, format="app's log: %(name)s %(levelname)s %(message)s")

api = API(max_connections=int(os.environ.get("MAX_CONNECTIONS", "0")) or None)


def record(line: str) -> None:
    with open(LOG, "a") as log:
        log.write(f"{line}\n")


@api.websocket_route("/echo")
class Echo(WebSocketEndpoint):
    async def on_receive(self, ws: WebSocket, message: str) -> None:
        await ws.send(message)

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        record(str(close_code))


@api.websocket_route("/quiet", idle_timeout=0.5)
class Quiet(Echo):
    pass


@api.websocket_route("/stuck")
class Stuck(Echo):
    """Its clean-up outlasts any shutdown timeout: shutdown has to cut it."""

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        record("stuck")
        await anyio.sleep(60)
        record("unstuck")


async def starlette_echo(websocket: StarletteWebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect as gone:
        record(f"mounted {gone.code}")


async def starlette_slow(request: Request) -> PlainTextResponse:
    """An HTTP request that outlasts any shutdown timeout."""
    record("slow")
    await anyio.sleep(60)
    return PlainTextResponse("done")


api.mount(
    "/mounted",
    Starlette(routes=[WebSocketRoute("/echo", starlette_echo), Route("/slow", starlette_slow)]),
    websocket=True,
)


@api.on("shutdown")
def shutdown() -> None:
    record("shutdown")


if os.environ.get("FAIL_STARTUP"):

    @api.on("startup")
    def connect_to_the_database() -> None:
        raise ConnectionRefusedError("the database is down")


@api.websocket_route("/ticks")
class Ticks(Echo):
    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.join("ticks")


if os.environ.get("FEED"):

    async def feed() -> None:
        try:
            for n in range(1, 100_000):
                if n == 4 and os.environ["FEED"] == "fail":
                    raise RuntimeError("the feed broke")
                await api.publish("ticks", f"tick {n}")
                await anyio.sleep(0.02)
        finally:
            record("feed ended")

    @api.on("startup")
    def start_the_feed() -> None:
        api.task_group.start_soon(feed)
