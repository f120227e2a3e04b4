"""`wsendpoints run` on uvicorn (asyncio) and hypercorn (trio): graceful shutdown and limits, for real.

The client (`websockets`) is asyncio-only; the servers cover both event loops.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from .servers import CLI_SERVERS, ServerFailed, serve

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.parametrize("server", list(CLI_SERVERS)),
]

APP = "tests.integration.serving_app:api"
TIMEOUT = 5.0
# The default --shutdown-timeout, plus room for the interpreter to start and exit.
EXIT_WITHIN = 10.0 + 5.0


async def open_ws(url: str) -> ClientConnection:
    return await connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT)


async def close_frame(ws: ClientConnection) -> tuple[int, str]:
    """Wait for the server to close; the code and reason of the close frame it sent."""
    with pytest.raises(ConnectionClosed) as closed, anyio.fail_after(TIMEOUT):
        await ws.recv()
    assert closed.value.rcvd is not None, "the server closed without a close frame (1006)"
    return closed.value.rcvd.code, closed.value.rcvd.reason


@pytest.mark.parametrize(
    ("path", "recorded"), [("/echo", "1001"), ("/mounted/echo", "mounted 1001")], ids=["route", "mount"]
)
async def test_sigterm_closes_every_connection_then_runs_shutdown_hooks(
    server: str, tmp_path: Path, path: str, recorded: str
) -> None:
    # A mounted (Starlette) app's connections are drained as the API's own are.
    log = tmp_path / "events.log"
    with serve(server, APP, env={"WSENDPOINTS_TEST_LOG": str(log)}) as running:
        clients = [await open_ws(f"{running.url}{path}") for _ in range(100)]
        for n, ws in enumerate(clients):
            await ws.send(str(n))
            with anyio.fail_after(TIMEOUT):
                assert await ws.recv() == str(n)

        running.process.send_signal(signal.SIGTERM)
        codes = Counter([(await close_frame(ws))[0] for ws in clients])
        # Bounded by the grace period: the process exits by itself.
        running.process.wait(timeout=EXIT_WITHIN)
        output = running.output()

    assert codes == {1001: 100}
    # Ended by the signal, after the graceful shutdown, as uvicorn ends: one status for both servers.
    assert running.process.returncode == -signal.SIGTERM
    assert "[wsendpoints] shutting down: closing 100 connection(s)" in output
    lines = log.read_text().splitlines()
    assert Counter(lines[:-1]) == {recorded: 100}, "every clean-up ran, having seen 1001"
    assert lines[-1] == "shutdown", "the shutdown hooks ran after every clean-up"


@pytest.mark.parametrize(
    ("path", "presses", "recorded"),
    [("/echo", 1, "1001"), ("/stuck", 2, "stuck")],
    ids=["once", "twice-to-cut-a-stuck-clean-up"],
)
async def test_ctrl_c_shuts_down_without_a_traceback(
    server: str, tmp_path: Path, path: str, presses: int, recorded: str
) -> None:
    log = tmp_path / "events.log"
    with serve(server, APP, env={"WSENDPOINTS_TEST_LOG": str(log)}) as running:
        ws = await open_ws(f"{running.url}{path}")
        running.process.send_signal(signal.SIGINT)
        assert (await close_frame(ws))[0] == 1001
        if presses == 2:
            with anyio.fail_after(TIMEOUT):
                while recorded not in (log.read_text() if log.exists() else ""):  # noqa: ASYNC110 (another process)
                    await anyio.sleep(0.05)
            # The drain would wait --shutdown-timeout (10 s) for on_disconnect: not after a second Ctrl-C.
            running.process.send_signal(signal.SIGINT)
        running.process.wait(timeout=EXIT_WITHIN if presses == 1 else 3.0)
        output = running.output()

    # A second Ctrl-C cuts only the wait for connections short: the shutdown hooks still run.
    assert log.read_text().split() == [recorded, "shutdown"]
    if presses == 2:
        assert "cut 1 connection(s) still open when the wait was cut short" in output
    # Ctrl-C is how a server is stopped by hand: a clean exit, not a crash.
    assert "Traceback" not in output
    assert "KeyboardInterrupt" not in output
    assert running.process.returncode == 0


async def test_a_connection_still_open_after_the_shutdown_timeout_is_cut(server: str, tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    env = {"WSENDPOINTS_TEST_LOG": str(log)}
    with serve(server, APP, env=env, options=("--shutdown-timeout", "1")) as running:
        stuck = await open_ws(f"{running.url}/stuck")
        running.process.send_signal(signal.SIGTERM)
        assert (await close_frame(stuck))[0] == 1001
        # Its on_disconnect would sleep for a minute: the timeout cuts it, and the process exits.
        running.process.wait(timeout=1.0 + 5.0)
        output = running.output()

    assert log.read_text().split() == ["stuck", "shutdown"]
    assert "cut 1 connection(s) still open after 1.0 s" in output
    assert "Traceback" not in output
    assert "ERROR" not in output  # the cut is a warning, and nothing else was cut


async def test_shutdown_takes_the_shutdown_timeout_once_for_connections_and_http_alike(
    server: str, tmp_path: Path
) -> None:
    # A stuck on_disconnect uses up the whole timeout; an HTTP request to a mount still in
    # flight then gets what is left of it (nothing), not a timeout of its own.
    log = tmp_path / "events.log"
    env = {"WSENDPOINTS_TEST_LOG": str(log)}
    with serve(server, APP, env=env, options=("--shutdown-timeout", "3")) as running:
        stuck = await open_ws(f"{running.url}/stuck")
        port = int(running.url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as http:
            await http.send(b"GET /mounted/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            with anyio.fail_after(TIMEOUT):
                while "slow" not in (log.read_text() if log.exists() else ""):  # noqa: ASYNC110 (another process writes it)
                    await anyio.sleep(0.05)
            stopping = time.monotonic()
            running.process.send_signal(signal.SIGTERM)
            assert (await close_frame(stuck))[0] == 1001
            running.process.wait(timeout=3.0 + 2.0)
        took = time.monotonic() - stopping

    assert took < 3.0 + 2.0
    assert log.read_text().split() == ["slow", "stuck", "shutdown"]


async def close_after_ticks(ws: ClientConnection) -> int | None:
    """The code the server closed with (1006: no close frame), after the ticks sent before it."""
    with anyio.fail_after(TIMEOUT):
        async for message in ws:  # ends when the server closes
            assert str(message).startswith("tick ")
    return ws.close_code


async def test_a_task_of_the_app_publishes_until_shutdown_then_the_hooks_run(
    server: str, tmp_path: Path
) -> None:
    log = tmp_path / "events.log"
    with serve(server, APP, env={"WSENDPOINTS_TEST_LOG": str(log), "FEED": "1"}) as running:
        ws = await open_ws(f"{running.url}/ticks")
        with anyio.fail_after(TIMEOUT):
            first = int((await ws.recv()).split()[1])
            assert await ws.recv() == f"tick {first + 1}"
        running.process.send_signal(signal.SIGTERM)
        assert await close_after_ticks(ws) == 1001
        running.process.wait(timeout=EXIT_WITHIN)
        output = running.output()

    # The connections close first, then the app's tasks are cancelled, then the shutdown hooks run.
    assert log.read_text().split("\n")[:-1] == ["1001", "feed ended", "shutdown"]
    assert "ERROR" not in output


async def test_a_task_of_the_app_that_fails_is_logged_and_the_server_goes_on(
    server: str, tmp_path: Path
) -> None:
    log = tmp_path / "events.log"
    with serve(server, APP, env={"WSENDPOINTS_TEST_LOG": str(log), "FEED": "fail"}) as running:
        with anyio.fail_after(TIMEOUT):
            while "feed ended" not in (log.read_text() if log.exists() else ""):  # noqa: ASYNC110 (another process writes it)
                await anyio.sleep(0.05)
        ws = await open_ws(f"{running.url}/echo")
        await ws.send("still serving?")
        with anyio.fail_after(TIMEOUT):
            assert await ws.recv() == "still serving?"
        running.process.send_signal(signal.SIGTERM)
        assert (await close_frame(ws))[0] == 1001
        running.process.wait(timeout=EXIT_WITHIN)
        output = running.output()

    assert output.count("a task of the app failed") == 1
    assert "RuntimeError: the feed broke" in output
    assert log.read_text().split("\n")[:-1] == ["feed ended", "1001", "shutdown"]


async def test_a_failing_startup_hook_stops_the_server_with_its_traceback_only(server: str) -> None:
    with pytest.raises(ServerFailed) as failed, serve(server, APP, env={"FAIL_STARTUP": "1"}):
        pass
    output = str(failed.value)
    # uvicorn's exit status for a failed startup, on both servers.
    assert output.startswith("server exited with 3:")
    assert "startup hook connect_to_the_database failed" in output
    assert "ConnectionRefusedError: the database is down" in output
    # The hook's traceback and a line that says what happens; not a crash in the server's internals.
    assert "Application startup failed. Exiting." in output
    assert "LifespanFailureError" not in output
    assert "Exception Group" not in output


async def test_an_app_with_logging_of_its_own_gets_each_framework_line_once(server: str) -> None:
    # The app's module calls logging.basicConfig when `wsendpoints run` imports it: its root
    # handler prints the framework's lines, in its format, and the command's own handler does not.
    with serve(server, APP, env={"ROOT_LOGGING": "1"}) as running:
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(f"{running.url}/nowhere")
        assert refused.value.response.status_code == 404
        running.process.send_signal(signal.SIGTERM)
        running.process.wait(timeout=EXIT_WITHIN)
        output = running.output()

    lines = [line for line in output.splitlines() if "refused WebSocket connection to /nowhere" in line]
    assert lines == ["app's log: wsendpoints INFO refused WebSocket connection to /nowhere: no route"]
    assert [line for line in output.splitlines() if "shutting down: closing" in line] == [
        "app's log: wsendpoints INFO shutting down: closing 0 connection(s)"
    ]


async def test_over_max_connections_the_handshake_gets_503(server: str) -> None:
    with serve(server, APP, env={"MAX_CONNECTIONS": "2"}) as running:
        first, second = await open_ws(f"{running.url}/echo"), await open_ws(f"{running.url}/echo")
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(f"{running.url}/echo")
        assert refused.value.response.status_code == 503

        # Room again once a connection ends.
        await first.close()
        with anyio.fail_after(TIMEOUT):
            while True:
                try:
                    third = await open_ws(f"{running.url}/echo")
                    break
                except InvalidStatus:
                    await anyio.sleep(0.05)
        await third.send("hello")
        with anyio.fail_after(TIMEOUT):
            assert await third.recv() == "hello"
        await second.close()
        await third.close()


async def test_an_idle_client_is_closed_with_1001(server: str) -> None:
    with serve(server, APP) as running:
        quiet = await open_ws(f"{running.url}/quiet")
        talkative = await open_ws(f"{running.url}/echo")
        code, reason = await close_frame(quiet)
        assert code == 1001
        assert "idle" in reason
        # Only the idle connection was closed.
        await talkative.send("still here")
        with anyio.fail_after(TIMEOUT):
            assert await talkative.recv() == "still here"
        await talkative.close()


async def test_the_cli_serves_the_demo(server: str) -> None:
    with serve(server, "examples.demo:api") as running:
        async with connect(f"{running.url}/echo", open_timeout=TIMEOUT) as ws:
            await ws.send("hi")
            with anyio.fail_after(TIMEOUT):
                assert await ws.recv() == "You said: hi"


async def test_a_message_over_max_message_size_closes_with_1009(server: str) -> None:
    with serve(server, APP, options=("--max-message-size", "1024")) as running:
        async with connect(f"{running.url}/echo", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            await ws.send("x" * 1000)
            with anyio.fail_after(TIMEOUT):
                assert await ws.recv() == "x" * 1000
            await ws.send("x" * 2000)
            code, _ = await close_frame(ws)
            assert code == 1009


def silent_client(url: str, seconds: float) -> tuple[list[Frame], bool]:
    """Connect, then read for up to ``seconds`` without ever answering a ping.

    Returns the frames the server sent and whether it closed the connection. A
    sans-I/O client, because real clients answer pings on their own.
    """
    protocol = ClientProtocol(parse_uri(url))
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        protocol.send_request(protocol.connect())
        sock.sendall(b"".join(protocol.data_to_send()))
        deadline = time.monotonic() + seconds
        frames: list[Frame] = []
        closed = False
        while not closed and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
                closed = True
            frames += [event for event in protocol.events_received() if isinstance(event, Frame)]
            # Pongs the protocol queued are never sent: that is the point.
        return frames, closed or protocol.state is State.CLOSED


async def test_pings_are_sent_and_a_silent_client_is_dropped(server: str) -> None:
    options = ("--ping-interval", "0.2", "--ping-timeout", "1")
    with serve(server, APP, options=options) as running:
        started = time.monotonic()
        frames, closed = await anyio.to_thread.run_sync(silent_client, f"{running.url}/echo", 3.0)
        silent_for = time.monotonic() - started
    assert any(frame.opcode is Opcode.PING for frame in frames)
    if server == "wsendpoints-asyncio":
        assert closed, "uvicorn drops a client that leaves its pings unanswered"
        # Not before the first ping (0.2 s) has gone unanswered for the ping timeout (1 s).
        assert silent_for >= 1.2, silent_for


async def test_pings_can_be_turned_off(server: str) -> None:
    # Off: a silent client gets no ping and is not dropped (the default would ping after 20 s).
    options = ("--ping-interval", "off", "--ping-timeout", "off")
    with serve(server, APP, options=options) as running:
        frames, closed = await anyio.to_thread.run_sync(silent_client, f"{running.url}/echo", 1.0)
    assert not any(frame.opcode is Opcode.PING for frame in frames)
    assert not closed


async def test_compression_is_negotiated_unless_turned_off(server: str) -> None:
    async def echoes(running_url: str) -> str | None:
        """The extension the server agreed to with a client that offers permessage-deflate."""
        async with connect(f"{running_url}/echo", compression="deflate", open_timeout=TIMEOUT) as ws:
            await ws.send("squeeze me " * 20)
            with anyio.fail_after(TIMEOUT):
                assert await ws.recv() == "squeeze me " * 20
            assert ws.response is not None
            return ws.response.headers.get("sec-websocket-extensions")

    with serve(server, APP) as running:
        agreed = await echoes(running.url)
    assert agreed is not None
    assert agreed.startswith("permessage-deflate")

    if server == "wsendpoints-trio":
        with (
            pytest.raises(ServerFailed, match="cannot turn compression off"),
            serve(server, APP, options=("--compression", "off")),
        ):
            pass
    else:
        with serve(server, APP, options=("--compression", "off")) as running:
            assert await echoes(running.url) is None


async def test_the_cli_serves_the_chat_example(server: str) -> None:
    with serve(server, "examples.chat:api") as running:
        url = f"{running.url}/rooms/lobby?nick=ada"
        async with connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            with anyio.fail_after(TIMEOUT):
                assert json.loads(await ws.recv()) == {"type": "join", "nick": "ada"}
                await ws.send(json.dumps({"text": "hello"}))
                assert json.loads(await ws.recv()) == {"type": "message", "nick": "ada", "text": "hello"}
