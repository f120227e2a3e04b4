"""The in-process test clients: sync TestClient and async connect(), timeouts, and refusals."""

from __future__ import annotations

import gc
import threading
from typing import Any

import anyio.lowlevel
import pytest

from wsendpoints import API, WebSocket, WebSocketDisconnect, WebSocketEndpoint
from wsendpoints.exceptions import HandshakeRejected, ReceiveTimeout, WebSocketProtocolError
from wsendpoints.testing import TestClient, connect
from wsendpoints.types import Message


def make_api() -> API:
    api = API()

    @api.websocket_route("/hello")
    async def hello(ws: WebSocket) -> None:
        await ws.accept(subprotocol=ws.subprotocols[0], headers={"X-Served-By": "hello"})
        await ws.send_json({"token": ws.headers["x-token"], "offered": ws.subprotocols})
        name = await ws.receive_text()
        await ws.send_text(f"hello {name}")
        await ws.close(4000)

    @api.websocket_route("/echo")
    async def echo(ws: WebSocket) -> None:
        async with ws:
            async for message in ws:
                await ws.send(message)

    @api.websocket_route("/silent")
    async def silent(ws: WebSocket) -> None:
        async with ws:
            await ws.receive()

    @api.websocket_route("/forbidden")
    async def forbidden(ws: WebSocket) -> None:
        await ws.close(4403)

    return api


# -- the sync client ---------------------------------------------------------------------------------


def test_sync_client_talks_to_a_view(backend: str) -> None:
    client = TestClient(make_api(), backend=backend)
    with client.websocket_connect(
        "/hello", subprotocols=["chat.v2", "chat.v1"], headers={"X-Token": "secret"}
    ) as ws:
        assert ws.accepted_subprotocol == "chat.v2"
        assert ws.response_headers["x-served-by"] == "hello"
        assert ws.receive_json() == {"token": "secret", "offered": ["chat.v2", "chat.v1"]}
        ws.send_text("world")
        assert ws.receive_text() == "hello world"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4000
        assert ws.close_code == 4000


def test_sync_client_as_a_context_manager_runs_the_lifespan_hooks(backend: str) -> None:
    events: list[str] = []
    api = make_api()
    api.on("startup")(lambda: events.append("startup"))
    api.on("shutdown")(lambda: events.append("shutdown"))

    with TestClient(api, backend=backend) as client:
        assert events == ["startup"]
        with client.websocket_connect("/echo") as ws:
            ws.send_text("ping")
            assert ws.receive_text() == "ping"
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


def test_connections_of_a_client_not_entered_share_one_event_loop(backend: str) -> None:
    # What an app shares between its connections (its groups, say) lives on one event loop.
    class Room(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            await ws.join("room")
            await ws.send(str(threading.get_ident()))

        async def on_receive(self, ws: WebSocket, message: str) -> None:
            await api.publish("room", message, exclude=ws)

    api = API()
    api.add_websocket("/room", Room)
    client = TestClient(api, backend=backend, timeout=1)
    with client.websocket_connect("/room") as alice, client.websocket_connect("/room") as bob:
        assert alice.receive_text() == bob.receive_text()
        alice.send_text("hello")
        assert bob.receive_text() == "hello"


# -- the async client ---------------------------------------------------------------------------------


async def test_async_client_talks_to_a_view() -> None:
    async with connect(make_api(), "/echo") as ws:
        for text in ["one", "two"]:
            await ws.send_text(text)
            assert await ws.receive_text() == text
        await ws.send_bytes(b"binary")
        # The echo view's text codec refuses a binary frame.
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
        assert closed.value.code == 1003
        with pytest.raises(WebSocketDisconnect):
            await ws.send_text("after the close")


# -- timeouts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_call", [False, True], ids=["connection timeout", "per-call timeout"])
async def test_receive_from_a_silent_app_raises_receive_timeout(per_call: bool) -> None:
    connection_timeout, call_timeout = (5.0, 0.2) if per_call else (0.2, None)
    async with connect(make_api(), "/silent", timeout=connection_timeout) as ws:
        with pytest.raises(ReceiveTimeout, match=r"nothing from the application within 0\.2 s"):
            await ws.receive_text(timeout=call_timeout)


async def test_a_message_already_there_is_received_whatever_the_timeout() -> None:
    api = API()

    @api.websocket_route("/")
    async def two(ws: WebSocket) -> None:
        async with ws:
            await ws.send("one")
            await ws.send("two")  # queued with "one": there as soon as "one" is
            await ws.receive()

    async with connect(api) as ws:
        assert await ws.receive_text() == "one"
        assert await ws.receive_text(timeout=0) == "two"
        with pytest.raises(ReceiveTimeout):
            await ws.receive_text(timeout=0)


def test_sync_client_receive_timeout_is_a_timeout_error(backend: str) -> None:
    client = TestClient(make_api(), backend=backend, timeout=0.2)
    with client.websocket_connect("/silent") as ws, pytest.raises(TimeoutError, match=r"within 0\.2 s"):
        ws.receive_text()


# -- refused handshakes ------------------------------------------------------------------------------


async def test_close_before_accept_raises_handshake_rejected_with_the_close_code() -> None:
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(make_api(), "/forbidden"):
            pass
    assert rejected.value.status_code == 403
    assert rejected.value.close_code == 4403
    assert str(rejected.value) == "handshake rejected with HTTP 403 (close code 4403)"


async def http_refusal(scope: Message, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
    await send({"type": "websocket.http.response.body", "body": b"log in ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"first"})


async def test_http_response_refusal_carries_the_status_and_the_body() -> None:
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(http_refusal):
            pass
    assert rejected.value.status_code == 401
    assert rejected.value.body == b"log in first"
    assert rejected.value.close_code is None


def test_sync_client_raises_handshake_rejected(backend: str) -> None:
    client = TestClient(http_refusal, backend=backend)
    with pytest.raises(HandshakeRejected) as rejected, client.websocket_connect("/"):
        pass
    assert rejected.value.status_code == 401


# -- an application that raises -----------------------------------------------------------------------


async def raises_before_accept(scope: Message, receive: Any, send: Any) -> None:
    await receive()
    raise RuntimeError("broken app")


async def raises_after_a_message(scope: Message, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    raise RuntimeError("broken app")


async def sends_then_raises(scope: Message, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    await send({"type": "websocket.send", "text": "one"})
    await send({"type": "websocket.send", "text": "two"})
    raise RuntimeError("broken app")


async def test_messages_sent_before_an_application_error_are_received_before_it() -> None:
    # As behind a server: the client reads what the app sent, then learns that it failed.
    async with connect(sends_then_raises) as ws:
        await ws.send_text("trigger")
        assert await ws.receive_text() == "one"
        assert await ws.receive_text() == "two"
        with pytest.raises(RuntimeError, match="broken app"):
            await ws.receive_text()


async def test_application_error_before_accept_is_raised_in_the_test() -> None:
    with pytest.raises(RuntimeError, match="broken app"):
        async with connect(raises_before_accept):
            pass


async def test_application_error_after_accept_is_raised_by_the_next_receive() -> None:
    async with connect(raises_after_a_message) as ws:
        await ws.send_text("trigger")
        with pytest.raises(RuntimeError, match="broken app"):
            await ws.receive_text()


def test_application_error_is_raised_in_a_sync_test(backend: str) -> None:
    client = TestClient(raises_after_a_message, backend=backend)
    with client.websocket_connect("/") as ws:
        ws.send_text("trigger")
        with pytest.raises(RuntimeError, match="broken app"):
            ws.receive_text()


async def test_a_receive_after_the_close_raises_at_once_while_the_app_goes_on() -> None:
    # As with a real client: the close frame ends the connection for the client, not the app's return.
    api = API()
    released = anyio.Event()
    closes: list[int] = []

    @api.websocket_route("/")
    async def closes_then_cleans_up(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4000, "bye")
        await released.wait()

    async with connect(api) as ws:
        for _ in range(2):
            with anyio.fail_after(1), pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_text()
            closes.append(closed.value.code)
        with anyio.fail_after(1), pytest.raises(WebSocketDisconnect):
            await ws.receive_event()
        released.set()
    assert closes == [4000, 4000]
    assert ws.close_reason == "bye"


# -- leaving the block -------------------------------------------------------------------------------


def recording_api(codes: list[int]) -> API:
    class Recorded(WebSocketEndpoint):
        async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
            # Yield a few times: the client must wait for this, not merely start it.
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            codes.append(close_code)

    api = API()
    api.add_websocket("/", Recorded)
    return api


async def test_leaving_the_async_block_closes_with_1000_and_waits_for_the_app() -> None:
    codes: list[int] = []
    async with connect(recording_api(codes)) as ws:
        await ws.send_text("hi")
    assert codes == [1000]


def test_leaving_the_sync_block_closes_with_1000_and_waits_for_the_app(backend: str) -> None:
    codes: list[int] = []
    with TestClient(recording_api(codes), backend=backend).websocket_connect("/") as ws:
        ws.send_text("hi")
    assert codes == [1000]


async def test_a_finished_connection_leaves_nothing_to_warn_about(recwarn: pytest.WarningsRecorder) -> None:
    async with connect(make_api(), "/echo") as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "hi"
    del ws
    gc.collect()
    assert [str(w.message) for w in recwarn] == []


# -- the handshake request, as a client sends it ------------------------------------------------------


def handshake_api() -> API:
    api = API()

    @api.websocket_route("/rooms/{room}")
    async def room(ws: WebSocket, room: str) -> None:
        await ws.accept(subprotocol=ws.subprotocols[0] if ws.subprotocols else None)
        await ws.send_json(
            {
                "room": room,
                "path": ws.path,
                "raw_path": ws.scope["raw_path"].decode("ascii"),
                "query": dict(ws.query_params),
                "offered": ws.subprotocols,
            }
        )
        await ws.close()

    return api


async def test_subprotocols_offered_in_a_header_are_the_scope_s_subprotocols() -> None:
    # A server reads the offer from the Sec-WebSocket-Protocol header, however the client sent it.
    headers = {"Sec-WebSocket-Protocol": "chat.v2, chat.v1"}
    async with connect(handshake_api(), "/rooms/a", headers=headers) as ws:
        assert ws.accepted_subprotocol == "chat.v2"
        assert (await ws.receive_json())["offered"] == ["chat.v2", "chat.v1"]


@pytest.mark.parametrize("path", ["/rooms/a#top", "/rooms/a?x=1#top"])
def test_a_path_with_a_fragment_is_refused_as_browsers_refuse_it(path: str) -> None:
    with pytest.raises(WebSocketProtocolError, match="a WebSocket URL has no #fragment"):
        connect(handshake_api(), path)


async def test_a_host_header_the_test_gives_replaces_the_clients_own() -> None:
    api = API(allowed_origins=["https://chat.example"])

    @api.websocket_route("/")
    async def where(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json({"hosts": ws.headers.getlist("host"), "url": ws.url})

    headers = {"Host": "chat.example", "Origin": "https://chat.example"}
    async with connect(api, "/", headers=headers) as ws:
        assert await ws.receive_json() == {"hosts": ["chat.example"], "url": "ws://chat.example/"}


async def test_a_path_and_query_beyond_ascii_go_percent_encoded_as_clients_send_them() -> None:
    async with connect(handshake_api(), "/rooms/日本?nick=太郎&x=a%20b") as ws:
        assert await ws.receive_json() == {
            "room": "日本",
            "path": "/rooms/日本",
            "raw_path": "/rooms/%E6%97%A5%E6%9C%AC",
            "query": {"nick": "太郎", "x": "a b"},
            "offered": [],
        }


async def test_subprotocols_and_a_sec_websocket_protocol_header_are_offered_together() -> None:
    # As a real client sends both (websockets: subprotocols= and additional_headers=), and
    # uvicorn and hypercorn give the app both offers, the argument's first.
    headers = {"Sec-WebSocket-Protocol": "chat.v1"}
    async with connect(handshake_api(), "/rooms/a", subprotocols=["chat.v2"], headers=headers) as ws:
        assert ws.accepted_subprotocol == "chat.v2"
        assert (await ws.receive_json())["offered"] == ["chat.v2", "chat.v1"]
