"""`wsendpoints run --reload`: the app in the reloader's child process, served as without it.

Only uvicorn reloads (the CLI refuses --reload on trio), so these run on one server.
"""

from __future__ import annotations

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .servers import serve

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

APP = "tests.integration.serving_app:api"
SERVER = "wsendpoints-asyncio"
TIMEOUT = 5.0


async def test_reload_serves_on_the_socket_it_is_given() -> None:
    # The helper hands the server a bound socket with --fd: serving anywhere else, it never answers.
    with serve(SERVER, APP, options=("--reload",)) as running:
        async with connect(f"{running.url}/echo", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            await ws.send("reloadable")
            with anyio.fail_after(TIMEOUT):
                assert await ws.recv() == "reloadable"


async def test_reload_prints_the_framework_log() -> None:
    with serve(SERVER, APP, options=("--reload",)) as running:
        with pytest.raises(InvalidStatus):
            await connect(f"{running.url}/nowhere", open_timeout=TIMEOUT)
        # The app runs in the reloader's child process, which logs the refusal before sending it.
        assert "[wsendpoints] refused WebSocket connection to /nowhere: no route" in running.output()


async def test_reload_prints_each_framework_line_once_beside_the_apps_own_logging() -> None:
    # The app's module calls logging.basicConfig in the child process: its root handler prints
    # the framework's lines, and the handler of the command's log config stays silent.
    with serve(SERVER, APP, options=("--reload",), env={"ROOT_LOGGING": "1"}) as running:
        with pytest.raises(InvalidStatus):
            await connect(f"{running.url}/nowhere", open_timeout=TIMEOUT)
        lines = [line for line in running.output().splitlines() if "connection to /nowhere" in line]
    assert lines == ["app's log: wsendpoints INFO refused WebSocket connection to /nowhere: no route"]
