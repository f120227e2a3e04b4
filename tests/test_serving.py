"""Serving concerns in-process: capacity, idle timeout, draining, the CLI and `api.run` errors.

The same behaviours through real uvicorn and hypercorn processes are in
tests/integration/test_serving.py.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path

import anyio
import pytest

import wsendpoints
from wsendpoints import API, WebSocket, WebSocketEndpoint
from wsendpoints.cli import _parser, main
from wsendpoints.exceptions import ConfigurationError, HandshakeRejected, WebSocketDisconnect
from wsendpoints.serving import ServerOptions, import_app, serve
from wsendpoints.testing import connect
from wsendpoints.types import Message


class Recorder(WebSocketEndpoint):
    closed: list[int]

    async def on_receive(self, ws: WebSocket, message: str) -> None:
        await ws.send(message)

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        self.closed.append(close_code)


def recording_api(**options: object) -> tuple[API, list[int]]:
    closed: list[int] = []
    api = API(**options)  # type: ignore[arg-type]
    api.add_websocket("/echo", type("Echo", (Recorder,), {"closed": closed}))
    return api, closed


async def test_connection_count_follows_open_connections() -> None:
    api, _ = recording_api()
    assert api.connection_count == 0
    async with connect(api, "/echo"), connect(api, "/echo"):
        assert api.connection_count == 2
    assert api.connection_count == 0


async def test_over_max_connections_handshake_is_refused_with_503() -> None:
    api, _ = recording_api(max_connections=2)
    async with connect(api, "/echo"), connect(api, "/echo"):
        with pytest.raises(HandshakeRejected) as refused:
            async with connect(api, "/echo"):
                pass
        assert refused.value.status_code == 503
    # Capacity frees up as connections end.
    async with connect(api, "/echo") as ws:
        await ws.send_text("again")
        assert await ws.receive_text() == "again"


async def test_over_capacity_without_http_response_extension_closes_1013() -> None:
    api, _ = recording_api(max_connections=1)
    async with connect(api, "/echo"):
        client = connect(api, "/echo")
        del client.scope["extensions"]
        async with client as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_text()
            assert closed.value.code == 1013


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), 2.5, True, "10"])
def test_max_connections_must_be_a_positive_integer(value: object) -> None:
    # NaN used to be taken and to lift the cap silently (no count is >= NaN); True meant 1,
    # and a string failed with a bare TypeError.
    message = f"max_connections must be a positive integer or None, not {value!r}"
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        API(max_connections=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("style", ["endpoint", "view"])
async def test_idle_connection_is_closed_with_1001(style: str) -> None:
    api = API()
    if style == "endpoint":

        class Quiet(WebSocketEndpoint):
            idle_timeout = 0.2

        api.add_websocket("/quiet", Quiet)
    else:

        @api.websocket_route("/quiet", idle_timeout=0.2)
        async def quiet(ws: WebSocket) -> None:
            async with ws:
                async for _ in ws:
                    pass

    async with connect(api, "/quiet") as ws:
        silent_since = anyio.current_time()
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text(timeout=5)
        silence = anyio.current_time() - silent_since
        assert closed.value.code == 1001
        assert "idle" in closed.value.reason
    # After the timeout (timed from a little after the server's wait began), and not long
    # after: a client is told within the time it was promised.
    assert 0.15 <= silence < 0.5, silence


@pytest.mark.parametrize("style", ["endpoint", "view"])
async def test_the_idle_clock_starts_with_the_connection_not_before(style: str) -> None:
    # A busy server can hand over 'websocket.connect' late: that is no idle client.
    api, closed = recording_api()
    if style == "endpoint":
        api.add_websocket("/late", type("Late", (Recorder,), {"closed": closed}), idle_timeout=0.05)
    else:

        @api.websocket_route("/late", idle_timeout=0.05)
        async def late(ws: WebSocket) -> None:
            async with ws:
                async for message in ws:
                    await ws.send(message)
            closed.append(ws.close_code or 0)

    events: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "hi"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if events[0]["type"] == "websocket.connect":
            await anyio.sleep(0.2)  # four idle timeouts
        return events.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/late", "headers": [], "query_string": b"", "subprotocols": []}
    with anyio.fail_after(5):
        await api(scope, receive, send)
    assert sent == [
        {"type": "websocket.accept", "subprotocol": None, "headers": []},
        {"type": "websocket.send", "text": "hi"},
    ]
    assert closed == [1000]


async def test_messages_keep_an_idle_timeout_connection_open() -> None:
    api, closed = recording_api()
    api.add_websocket("/slow", type("Slow", (Recorder,), {"closed": closed}), idle_timeout=0.3)
    async with connect(api, "/slow") as ws:
        # Five round trips 0.1 s apart outlast the timeout only if each message resets it.
        for n in range(5):
            await anyio.sleep(0.1)
            await ws.send_text(str(n))
            assert await ws.receive_text() == str(n)
    assert closed == [1000]


# A string (read from the environment or a config file, say) or a bool is no number of seconds.
@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan"), "30", True], ids=repr)
def test_idle_timeout_must_be_positive_and_finite(timeout: float) -> None:
    api = API()
    with pytest.raises(ConfigurationError, match="idle_timeout must be a positive number of seconds"):
        api.add_websocket("/x", Recorder, idle_timeout=timeout)
    with pytest.raises(ConfigurationError, match="idle_timeout must be a positive number of seconds"):
        type("Timed", (Recorder,), {"idle_timeout": timeout})
    assert api.routes == []


async def test_close_connections_drains_with_1001_and_runs_on_disconnect() -> None:
    api, closed = recording_api()
    async with connect(api, "/echo") as first, connect(api, "/echo") as second:
        await api.close_connections(timeout=5)
        for ws in (first, second):
            with pytest.raises(WebSocketDisconnect) as ended:
                await ws.receive_text()
            assert ended.value.code == 1001
        assert sorted(closed) == [1001, 1001]
        assert api.connection_count == 0
        # Draining also refuses newcomers.
        with pytest.raises(HandshakeRejected) as refused:
            async with connect(api, "/echo"):
                pass
        assert refused.value.status_code == 503


@pytest.mark.parametrize("shielded", [True, False])
async def test_a_views_finally_awaits_during_a_drain_only_when_shielded(shielded: bool) -> None:
    # As docs/views.md says: the drain cancels a view, so its clean-up must shield its awaits.
    saved: list[str] = []
    api = API()

    @api.websocket_route("/draft")
    async def draft(ws: WebSocket) -> None:
        try:
            async with ws:
                async for _ in ws:
                    pass
        finally:
            with anyio.move_on_after(5, shield=shielded):
                await anyio.sleep(0.01)  # saving the draft, say
                saved.append("draft")

    with anyio.fail_after(5):
        async with connect(api, "/draft") as ws:
            await api.close_connections(timeout=5)
            with pytest.raises(WebSocketDisconnect) as ended:
                await ws.receive_text()
    assert ended.value.code == 1001
    assert saved == (["draft"] if shielded else [])


@pytest.mark.parametrize("max_connections", [None, 5])
async def test_a_handshake_during_shutdown_is_told_the_server_is_shutting_down(
    max_connections: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    # Clients reconnect on 1001, some to the process still draining: they and the log were
    # told "at capacity", even with no max_connections at all.
    api, _ = recording_api(max_connections=max_connections)
    await api.close_connections(timeout=5)
    client = connect(api, "/echo")
    del client.scope["extensions"]
    async with client as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1013, "server shutting down")
    assert "refused WebSocket connection to /echo: shutting down" in caplog.messages


@pytest.mark.parametrize("cut_by", ["timeout", "cancelling the wait"])
async def test_an_on_disconnect_running_past_the_timeout_is_cut(
    caplog: pytest.LogCaptureFixture, cut_by: str
) -> None:
    """Shielded from the cancellation that ends its connection, not from the shutdown timeout,
    nor from the server cancelling the wait (as on a second Ctrl-C)."""
    cleaning = anyio.Event()
    finished: list[str] = []

    class Stuck(WebSocketEndpoint):
        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            cleaning.set()
            await anyio.sleep(3)  # a flush to a database that no longer answers, say
            finished.append("on_disconnect")

    api = API()
    api.add_websocket("/stuck", Stuck)
    with anyio.fail_after(2):
        async with connect(api, "/stuck") as ws:
            if cut_by == "timeout":
                await api.close_connections(timeout=0.2)
            else:
                with anyio.move_on_after(0.2):
                    await api.close_connections(timeout=5)
            assert cleaning.is_set()
            with pytest.raises(WebSocketDisconnect) as ended:
                await ws.receive_text()
            assert ended.value.code == 1001
    assert api.connection_count == 0
    assert finished == []
    why = "after 0.2 s" if cut_by == "timeout" else "when the wait was cut short"
    assert f"cut 1 connection(s) still open {why}" in caplog.messages


@pytest.mark.parametrize("extension", [True, False], ids=["http-response", "no-http-response"])
async def test_a_handshake_still_in_on_connect_when_draining_is_told_to_come_back(extension: bool) -> None:
    """Not the client's fault: HTTP 503, or 1013 where the server cannot send a status; never a 403."""
    in_on_connect = anyio.Event()
    closed: list[int] = []

    class Slow(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            in_on_connect.set()
            await anyio.sleep_forever()  # a slow database lookup, say

        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            closed.append(close_code)

    api = API()
    api.add_websocket("/slow", Slow)
    client = connect(api, "/slow")
    if not extension:
        del client.scope["extensions"]
    outcome: list[Exception] = []

    async def handshake() -> None:
        try:
            async with client as ws:
                await ws.receive_text()
        except (HandshakeRejected, WebSocketDisconnect) as exc:
            outcome.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(handshake)
            await in_on_connect.wait()
            await api.close_connections(timeout=5)

    [ended] = outcome
    if extension:
        assert isinstance(ended, HandshakeRejected)
        assert ended.status_code == 503
        assert closed == [1001]
    else:
        assert isinstance(ended, WebSocketDisconnect)
        assert (ended.code, ended.reason) == (1013, "server shutting down")
        assert closed == [1013]


async def test_a_handshake_routed_but_not_yet_served_when_draining_is_told_to_come_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Its 'websocket.connect' was still on its way when the drain began: the drain waits
    # for it (it is counted), so it must end it too, not serve it as if nothing happened.
    api, closed = recording_api()
    connect_arrives = anyio.Event()
    sent: list[Message] = []

    async def receive() -> Message:
        if not sent:
            await connect_arrives.wait()
            return {"type": "websocket.connect"}
        await anyio.sleep_forever()  # the client says nothing more
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = connect(api, "/echo").scope
    with anyio.fail_after(4):
        async with anyio.create_task_group() as tg:
            tg.start_soon(api, scope, receive, send)
            await anyio.wait_all_tasks_blocked()
            assert api.connection_count == 1
            tg.start_soon(api.close_connections, 2)
            await anyio.wait_all_tasks_blocked()
            connect_arrives.set()
    # Refused with 503, or (nothing in on_connect waits, so nothing is cancelled there) let in
    # and closed with 1001 at once; either way ended by the drain, which did not wait for it.
    ended = [(m["type"], m.get("status") or m.get("code")) for m in sent]
    refused = [("websocket.http.response.start", 503), ("websocket.http.response.body", None)]
    assert ended in (refused, [("websocket.accept", None), ("websocket.close", 1001)]), ended
    assert closed == ([] if ended == refused else [1001])
    assert api.connection_count == 0
    assert not [message for message in caplog.messages if message.startswith("cut")]


def test_import_app_names_what_is_wrong() -> None:
    with pytest.raises(ConfigurationError, match="module:attribute"):
        import_app("no_colon")
    with pytest.raises(ConfigurationError, match="no attribute 'missing'"):
        import_app("wsendpoints:missing")
    with pytest.raises(ConfigurationError, match="not a wsendpoints API"):
        import_app("wsendpoints:WebSocket")


def test_cli_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--host", "--port", "--backend", "--reload", "--log-level", "--max-message-size"):
        assert option in text


@pytest.mark.parametrize("value", ["off", "OFF"])
def test_cli_pings_can_be_turned_off(value: str) -> None:
    args = _parser().parse_args(["run", "app:api", "--ping-interval", value, "--ping-timeout", value])
    assert (args.ping_interval, args.ping_timeout) == (None, None)
    assert _parser().parse_args(["run", "app:api", "--ping-interval", "2.5"]).ping_interval == 2.5


def test_cli_says_what_a_ping_option_takes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "app:api", "--ping-interval", "never"])
    error = capsys.readouterr().err
    assert "argument --ping-interval: expected a number of seconds or off, not 'never'" in error
    assert "_seconds_or_off" not in error


def test_cli_tells_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"wsendpoints {wsendpoints.__version__}\n"


def test_importing_the_main_module_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # Tools that import every module (documentation, coverage) must not start the command.
    import wsendpoints.__main__  # noqa: F401

    assert capsys.readouterr() == ("", "")


def test_cli_reports_a_bad_app_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "nowhere_to_be_found:api"])
    assert "wsendpoints: error:" in str(exited.value.code)
    assert "nowhere_to_be_found" in str(exited.value.code)


def test_cli_reports_a_missing_package_of_the_app_without_a_traceback() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "nowhere_to_be_found.app:api"])
    assert exited.value.code == "wsendpoints: error: No module named 'nowhere_to_be_found'"


def test_cli_shows_where_an_import_inside_the_app_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The app exists but one of its own imports fails: a one-line "No module named 'helper'"
    # would read as wsendpoints missing something, and hide which line of the app imports it.
    (tmp_path / "app_with_a_bad_import.py").write_text("import helper_not_installed\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # main() adds the current directory
    with pytest.raises(ModuleNotFoundError) as failed:
        main(["run", "app_with_a_bad_import:api"])
    assert failed.value.name == "helper_not_installed"
    assert any(Path(entry.path) == tmp_path / "app_with_a_bad_import.py" for entry in failed.traceback)


def test_trio_backend_names_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate an install without the `trio` extra: importing hypercorn.trio fails.
    monkeypatch.setitem(sys.modules, "hypercorn.trio", None)
    with pytest.raises(ConfigurationError, match=r"wsendpoints\[trio\]"):
        API().run(backend="trio")


def test_reload_is_refused_where_it_cannot_work(capsys: pytest.CaptureFixture[str]) -> None:
    # uvicorn's reloader imports the app by name in a child process, on asyncio.
    for argv in (
        ["run", "tests.integration.serving_app:api", "--reload", "--backend", "trio"],
        ["run", "tests.integration.serving_app:api", "--reload", "--broadcast", "memory://"],
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert str(exited.value.code).startswith("wsendpoints: error:")
        assert "reload" in str(exited.value.code)
    with pytest.raises(ConfigurationError, match="'module:attribute'"):
        serve(API(), reload=True)


def test_api_run_takes_every_server_option_by_name() -> None:
    parameters = inspect.signature(API.run).parameters
    for field in dataclasses.fields(ServerOptions):
        assert parameters[field.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[field.name].default == field.default
    # Checked before anything is served, and a misspelt option is named as such.
    with pytest.raises(ConfigurationError, match="max_queue must be a positive integer"):
        API().run(max_queue=0)
    with pytest.raises(TypeError, match=r"run\(\) got an unexpected keyword argument 'max_size'"):
        API().run(max_size=1024)  # type: ignore[call-arg]


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown backend"):
        API().run(backend="gevent")  # type: ignore[arg-type]


def test_an_unknown_log_level_is_refused_before_anything_is_served() -> None:
    # Not logging's "ValueError: Unknown level: 'VERBOSE'" from deep in the set-up.
    with pytest.raises(ConfigurationError, match=r"^unknown log_level 'verbose'; expected one of critical, "):
        API().run(log_level="verbose")


@pytest.mark.parametrize("port", ["8000", 8000.0, True, -1, 65536], ids=repr)
def test_a_port_that_is_no_port_number_is_refused(port: int) -> None:
    # api.run(port=os.environ["PORT"]) gives a string: say so, rather than fail comparing it.
    with pytest.raises(ConfigurationError, match=f"port must be an integer from 0 to 65535, not {port!r}"):
        API().run(port=port)


async def test_normal_traffic_logs_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    api, _ = recording_api()
    async with connect(api, "/echo") as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "hi"
    ours = [record for record in caplog.records if record.name == "wsendpoints"]
    assert [record.getMessage() for record in ours] == ["accepted /echo", "closed /echo with 1000"]
    assert {record.levelname for record in ours} == {"DEBUG"}


def test_no_asyncio_only_code_hides_in_the_package() -> None:
    # anyio only: an asyncio import would make some path work on asyncio and not on trio.
    # The one exception parks a task on each loop's own primitive, with a trio twin
    # beside it, and the group tests run it on both.
    package = Path(wsendpoints.__file__).parent
    waiters = package / "broadcast" / "_waiters.py"
    assert "class AsyncioWaiter" in waiters.read_text()
    assert "class TrioWaiter" in waiters.read_text()
    for module in package.rglob("*.py"):
        if module == waiters:
            continue
        source = module.read_text()
        assert "import asyncio" not in source, module
        assert "from asyncio" not in source, module


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-message-size", "0", "--max-message-size must be a positive integer, not 0"),
        ("--max-message-size", "-5", "--max-message-size must be a positive integer, not -5"),
        ("--max-queue", "0", "--max-queue must be a positive integer, not 0"),
        ("--ping-interval", "-1", "--ping-interval must be a positive number of seconds or off, not -1.0"),
        ("--ping-timeout", "0", "--ping-timeout must be a positive number of seconds or off, not 0.0"),
        ("--shutdown-timeout", "-1", "--shutdown-timeout must be a number of seconds, 0 or more, not -1.0"),
        ("--shutdown-timeout", "nan", "--shutdown-timeout must be a number of seconds, 0 or more, not nan"),
        ("--port", "99999", "--port must be an integer from 0 to 65535, not 99999"),
        (
            "--compression",
            "off --backend trio",
            "the trio backend cannot turn compression off: "
            "hypercorn always negotiates permessage-deflate with clients that offer it",
        ),
    ],
)
def test_cli_refuses_a_bad_server_option_naming_its_flag(option: str, value: str, message: str) -> None:
    # A server would take these without a word and misbehave later (or, for NaN, crash at shutdown).
    # The user typed the flag: the error names it, not the Python name of the option behind it.
    with pytest.raises(SystemExit) as exited:
        main(["run", "wsendpoints.testing:nothing_to_import", option, *value.split()])
    assert exited.value.code == f"wsendpoints: error: {message}"


def test_cli_leaves_the_app_s_own_option_errors_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same words from a route option in the app's code are about the code, not a flag.
    (tmp_path / "app_with_a_bad_route.py").write_text(
        "from wsendpoints import API, WebSocketEndpoint\n"
        "api = API()\n"
        "api.add_websocket('/', WebSocketEndpoint, max_message_size=0)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # main() adds the current directory
    with pytest.raises(SystemExit) as exited:
        main(["run", "app_with_a_bad_route:api"])
    assert exited.value.code == "wsendpoints: error: max_message_size must be a positive integer, not 0"


def test_server_options_in_code_keep_their_python_names() -> None:
    with pytest.raises(ConfigurationError, match=r"^max_queue must be a positive integer, not 0$"):
        ServerOptions(max_queue=0)
    with pytest.raises(
        ConfigurationError, match=r"^ping_timeout must be a positive number of seconds or None, "
    ):
        API().run(ping_timeout=-1)
    with pytest.raises(ConfigurationError, match=r"^port must be an integer from 0 to 65535, not 99999$"):
        API().run(port=99999)


def test_server_options_in_code_are_checked_too() -> None:
    with pytest.raises(ConfigurationError, match="max_queue must be a positive integer, not True"):
        ServerOptions(max_queue=True)
    with pytest.raises(ConfigurationError, match="ping_interval must be a positive number"):
        ServerOptions(ping_interval=float("inf"))
    assert ServerOptions(ping_interval=None, ping_timeout=None, shutdown_timeout=0).shutdown_timeout == 0
    with pytest.raises(ConfigurationError, match="compression must be True or False, not 'off'"):
        ServerOptions(compression="off")  # type: ignore[arg-type]
