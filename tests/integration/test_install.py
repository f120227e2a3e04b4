"""What a user installs serves WebSockets: ``pip install wsendpoints``, and with the trio extra.

The suite's own environment has the dev extra, which brings in nearly everything,
so a dependency the package uses but does not declare would never fail there.
Here the project is installed, as a wheel, into an empty virtualenv, and
``wsendpoints run`` serves an app from it to a real client: on uvicorn (asyncio)
after a plain install, on hypercorn (trio) after installing the trio extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from websockets.asyncio.client import connect

from .servers import ROOT, serve

pytestmark = pytest.mark.slow

TIMEOUT = 5.0
INSTALL_TIMEOUT = 600.0

APP = """\
import wsendpoints
from wsendpoints import API, WebSocketEndpoint

api = API()


class Echo(WebSocketEndpoint):
    value_type = "json"

    async def on_receive(self, ws, message):
        await ws.send({"echo": message, "package": wsendpoints.__file__})


api.add_websocket("/echo", Echo)
"""


def install(folder: Path, extra: str = "") -> Path:
    """``folder``, with a new virtualenv in ``folder/venv`` holding the project (and ``extra``)."""
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True, timeout=INSTALL_TIMEOUT)
    pip = [str(folder / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(
        [*pip, "--disable-pip-version-check", f"{ROOT}{extra}"], check=True, timeout=INSTALL_TIMEOUT
    )
    (folder / "app.py").write_text(APP)
    return folder


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install wsendpoints``, nothing else."""
    return install(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def with_trio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install 'wsendpoints[trio]'``."""
    return install(tmp_path_factory.mktemp("with-trio"), "[trio]")


def run_python(folder: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(folder / "venv" / "bin" / "python"), "-c", code],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the client's loop; the server's is `backend`
@pytest.mark.parametrize(("backend", "install_with"), [("asyncio", "plain"), ("trio", "with_trio")])
async def test_wsendpoints_run_serves_an_app_from_the_install(
    backend: str, install_with: str, request: pytest.FixtureRequest
) -> None:
    folder: Path = request.getfixturevalue(install_with)
    venv = folder / "venv"
    with serve(
        f"wsendpoints-{backend}", "app:api", python=str(venv / "bin" / "python"), cwd=folder
    ) as running:
        async with connect(f"{running.url}/echo", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            await ws.send(json.dumps({"n": 1}))
            with anyio.fail_after(TIMEOUT):
                reply = json.loads(await ws.recv())
    assert reply["echo"] == {"n": 1}
    # Served by the installed copy, not by the source tree this test runs from.
    assert Path(reply["package"]).is_relative_to(venv)


def test_a_plain_install_has_no_extra(plain: Path) -> None:
    # What the plain install serves with must not come from an extra: trio and hypercorn are not there.
    result = run_python(plain, "import trio")
    assert result.returncode != 0
    assert "No module named 'trio'" in result.stderr


def test_the_install_ships_the_type_hints(plain: Path) -> None:
    result = run_python(
        plain, "import pathlib, wsendpoints; print(pathlib.Path(wsendpoints.__file__).parent)"
    )
    assert result.returncode == 0, result.stderr
    assert (Path(result.stdout.strip()) / "py.typed").is_file()
