"""`WebSocket`: the handshake, closing, codecs, the context manager, scope views and misuse errors.

Most tests serve a function view through `API` and talk to it with the in-process
client; the view writes what it observed into a list the test then checks.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import msgpack
import pytest

from wsendpoints import API, ConnectionState, WebSocket, WebSocketDisconnect, WebSocketEndpoint
from wsendpoints.datastructures import Address
from wsendpoints.exceptions import (
    AuthenticationFailed,
    HandshakeRejected,
    WebSocketProtocolError,
    WebSocketStateError,
)
from wsendpoints.testing import ClientWebSocket, connect
from wsendpoints.views import FunctionView

View = Callable[..., Awaitable[None]]
Call = Callable[[WebSocket], Awaitable[Any]]

SENDS: dict[str, Call] = {
    "send": lambda ws: ws.send("text"),
    "send_text": lambda ws: ws.send_text("text"),
    "send_bytes": lambda ws: ws.send_bytes(b"bytes"),
    "send_json": lambda ws: ws.send_json({"json": True}),
    "send_msgpack": lambda ws: ws.send_msgpack({"msgpack": True}),
    "send_event": lambda ws: ws.send_event({"type": "websocket.send", "text": "event"}),
}
RECEIVES: dict[str, Call] = {
    "receive": lambda ws: ws.receive(),
    "receive_text": lambda ws: ws.receive_text(),
    "receive_bytes": lambda ws: ws.receive_bytes(),
    "receive_json": lambda ws: ws.receive_json(),
    "receive_msgpack": lambda ws: ws.receive_msgpack(),
    "receive_event": lambda ws: ws.receive_event(),
}
each_send = pytest.mark.parametrize("send", SENDS.values(), ids=SENDS.keys())
each_receive = pytest.mark.parametrize("receive", RECEIVES.values(), ids=RECEIVES.keys())


def api_for(view: View, path: str = "/", **options: Any) -> API:
    api = API()
    api.add_websocket(path, view, **options)
    return api


def echo_api(**options: Any) -> API:
    async def echo(ws: WebSocket) -> None:
        async with ws:
            async for message in ws:
                await ws.send(message)

    return api_for(echo, **options)


async def caught(call: Awaitable[Any]) -> Exception | None:
    """The exception ``call`` raised, if any: views report it instead of crashing."""
    try:
        await call
    except Exception as exc:
        return exc
    return None


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsendpoints" and r.levelno == level]


def recording(app: Any, sent: list[dict[str, Any]]) -> Any:
    """ASGI middleware keeping every event the app hands to the server, even refused ones."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        async def record(message: dict[str, Any]) -> None:
            sent.append(message)
            await send(message)

        await app(scope, receive, record)

    return middleware


async def send_frame(client: ClientWebSocket, payload: str | bytes) -> None:
    if isinstance(payload, str):
        await client.send_text(payload)
    else:
        await client.send_bytes(payload)


# -- handshake and closing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"X-Server": "wsendpoints", "Set-Cookie": "a=1"}, [("X-Server", "wsendpoints"), ("Set-Cookie", "a=1")]],
    ids=["mapping", "pairs"],
)
async def test_accept_sends_the_chosen_subprotocol_and_headers(headers: Any) -> None:
    async def view(ws: WebSocket) -> None:
        await ws.accept(subprotocol=ws.subprotocols[-1], headers=headers)
        await ws.close()

    async with connect(api_for(view), "/", subprotocols=["chat.v1", "chat.v2"]) as client:
        assert client.accepted_subprotocol == "chat.v2"
        assert client.response_headers["x-server"] == "wsendpoints"
        assert client.response_headers["set-cookie"] == "a=1"


async def test_accept_can_send_a_header_several_times() -> None:
    async def view(ws: WebSocket) -> None:
        await ws.accept(headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        await ws.close()

    async with connect(api_for(view)) as client:
        assert client.response_headers.getlist("set-cookie") == ["a=1", "b=2"]


async def test_accept_without_arguments_chooses_no_subprotocol() -> None:
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close()

    async with connect(api_for(view), "/", subprotocols=["chat.v1"]) as client:
        assert client.accepted_subprotocol is None
        assert len(client.response_headers) == 0


@pytest.mark.parametrize(
    ("args", "code", "reason"),
    [((), 1000, ""), ((4001,), 4001, ""), ((1008, "policy says no"), 1008, "policy says no")],
)
async def test_close_sends_its_code_and_reason_to_the_client(
    args: tuple[Any, ...], code: int, reason: str
) -> None:
    seen: list[tuple[int | None, str]] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(*args)
        seen.append((ws.close_code, ws.close_reason))

    async with connect(api_for(view)) as client:
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_text()
    assert (info.value.code, info.value.reason) == (code, reason)
    assert seen == [(code, reason)]


async def test_close_before_accept_refuses_the_handshake_with_403() -> None:
    async def view(ws: WebSocket) -> None:
        await ws.close(4403)

    with pytest.raises(HandshakeRejected) as info:
        async with connect(api_for(view)):
            pass
    assert info.value.status_code == 403
    assert info.value.close_code == 4403


_UNSENDABLE_CODE = (
    "close code {} cannot be sent: use 1000-1003, 1007-1014 or 3000-4999 (4000-4999 are the application's)"
)


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [
        *[(code, "", _UNSENDABLE_CODE.format(code)) for code in (999, 1004, 1005, 1006, 1015, 2999, 5000)],
        (
            4000,
            "lone surrogate: \ud800",
            "a close reason must be UTF-8 text; this one has a lone surrogate at character 16",
        ),
    ],
)
async def test_close_with_what_cannot_be_sent_raises_and_the_connection_stays_open(
    code: int, reason: str, message: str
) -> None:
    raised: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        raised.append(await caught(ws.close(code, reason)))
        await ws.send("still open")
        await ws.close(4001)

    async with connect(api_for(view)) as client:
        assert await client.receive_text() == "still open"
        with pytest.raises(WebSocketDisconnect) as closed:
            await client.receive_text()
    assert closed.value.code == 4001
    [error] = raised
    assert isinstance(error, WebSocketProtocolError)
    assert str(error) == message


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1014, 3000, 4999])
async def test_close_sends_every_code_the_protocol_allows(code: int) -> None:
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(code)

    async with connect(api_for(view)) as client:
        with pytest.raises(WebSocketDisconnect) as closed:
            await client.receive_text()
    assert closed.value.code == code


async def test_a_close_reason_of_123_bytes_arrives_whole_and_a_longer_one_raises() -> None:
    fits = "é" * 61 + "!"  # 123 bytes of UTF-8, in 62 characters
    too_long = "é" * 62  # 124 bytes
    raised: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        raised.append(await caught(ws.close(4000, too_long)))
        await ws.close(4001, fits)

    async with connect(api_for(view)) as client:
        with pytest.raises(WebSocketDisconnect) as closed:
            await client.receive_text()
    assert (closed.value.code, closed.value.reason) == (4001, fits)
    [error] = raised
    assert isinstance(error, WebSocketProtocolError)
    assert str(error) == "a close reason holds at most 123 bytes of UTF-8; this one has 124"


async def test_close_before_accept_takes_any_code_since_none_is_sent() -> None:
    async def view(ws: WebSocket) -> None:
        await ws.close(5000, "é" * 100)

    with pytest.raises(HandshakeRejected) as refused:
        async with connect(api_for(view)):
            pass
    assert refused.value.status_code == 403


@pytest.mark.parametrize("style", ["endpoint", "view"])
@pytest.mark.parametrize(
    ("code", "reason"), [(1006, ""), (5000, ""), (4000, "é" * 62), (4000, "not UTF-8: \ud800")]
)
async def test_a_handler_ending_with_a_disconnect_that_cannot_be_sent_closes_with_1011(
    style: str, code: int, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    sockets: list[WebSocket] = []

    class Endpoint(WebSocketEndpoint):
        async def on_receive(self, ws: WebSocket, message: Any) -> None:
            sockets.append(ws)
            raise WebSocketDisconnect(code, reason)

    async def view(ws: WebSocket) -> None:
        sockets.append(ws)
        async with ws:
            await ws.receive()
            raise WebSocketDisconnect(code, reason)

    async with connect(api_for(Endpoint if style == "endpoint" else view)) as client:
        await client.send_text("go")
        with pytest.raises(WebSocketDisconnect) as ended:
            await client.receive_text()
    assert ended.value.code == 1011
    assert sockets[0].close_code == 1011
    [error] = logged(caplog, logging.ERROR)
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], WebSocketProtocolError)


async def test_accept_with_a_subprotocol_the_client_did_not_offer_raises() -> None:
    raised: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        raised.append(await caught(ws.accept(subprotocol="chat.v3")))
        await ws.accept(subprotocol="chat.v1")
        await ws.close()

    async with connect(api_for(view), "/", subprotocols=["chat.v1", "chat.v2"]) as client:
        assert client.accepted_subprotocol == "chat.v1"
    [error] = raised
    assert isinstance(error, WebSocketProtocolError)
    assert str(error) == "cannot accept subprotocol 'chat.v3': the client offered ['chat.v1', 'chat.v2']"


async def test_a_view_accepting_a_subprotocol_not_offered_is_refused_with_500_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def view(ws: WebSocket) -> None:
        await ws.accept(subprotocol="chat")

    with pytest.raises(HandshakeRejected) as refused:
        async with connect(api_for(view)):
            pass
    assert refused.value.status_code == 500
    [error] = logged(caplog, logging.ERROR)
    assert error.getMessage().endswith(".view on /; refusing the handshake")
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], WebSocketProtocolError)


async def refused_then_accepted(accept: Call) -> WebSocketProtocolError:
    """What ``accept`` raised; the connection stays open, and a valid accept() after it goes out."""
    raised: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        raised.append(await caught(accept(ws)))
        await ws.accept(headers={"X-Server": "wsendpoints"})
        await ws.close()

    async with connect(api_for(view)) as client:
        assert client.response_headers["x-server"] == "wsendpoints"
    [error] = raised
    assert isinstance(error, WebSocketProtocolError)
    return error


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X Server": "1"}, "b'x server' is not a valid HTTP header name"),
        ({"X-Server:": "1"}, "b'x-server:' is not a valid HTTP header name"),
        ({"": "1"}, "b'' is not a valid HTTP header name"),
        (
            {"X-Server": "a\r\nSet-Cookie: b=2"},
            "the value of header b'x-server' contains a line break or NUL",
        ),
        ({"X-Server": "a\nb"}, "the value of header b'x-server' contains a line break or NUL"),
        ({"X-Server": "a\0b"}, "the value of header b'x-server' contains a line break or NUL"),
        # HTTP headers are bytes, written as latin-1: a character beyond it has no byte to go as.
        ({"X-Prix": "5 €"}, "the value of header b'x-prix' has a character latin-1 cannot write: '€'"),
        ({"X-Prix-€": "5"}, "'x-prix-€' is not a valid HTTP header name"),
        # ASGI's raw pairs, as Starlette's accept() takes them: not what this one takes.
        ([(b"x-server", b"1")], "header names and values are str, not bytes and bytes: b'x-server': b'1'"),
        ({"X-Count": 1}, "header names and values are str, not str and int: 'X-Count': 1"),
    ],
)
async def test_accept_refuses_headers_that_http_does_not_allow(headers: Any, message: str) -> None:
    error = await refused_then_accepted(lambda ws: ws.accept(headers=headers))
    assert str(error) == message


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            [("x-server", "1")],
            "an ASGI event's headers are (bytes, bytes) pairs, not (str, str): 'x-server': '1'",
        ),
        ([(b"x server", b"1")], "b'x server' is not a valid HTTP header name"),
        ([(b"x-server", b"a\r\nb")], "the value of header b'x-server' contains a line break or NUL"),
    ],
)
async def test_send_event_refuses_headers_that_asgi_or_http_does_not_allow(
    headers: Any, message: str
) -> None:
    error = await refused_then_accepted(
        lambda ws: ws.send_event({"type": "websocket.accept", "headers": headers})
    )
    assert str(error) == message


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"WWW Authenticate": "Bearer"}, "b'www authenticate' is not a valid HTTP header name"),
        (
            {"WWW-Authenticate": 'Bearer realm="café ☕"'},
            "the value of header b'www-authenticate' has a character latin-1 cannot write: '☕'",
        ),
    ],
)
async def test_a_refusal_with_headers_that_http_does_not_allow_is_a_500(
    caplog: pytest.LogCaptureFixture, headers: dict[str, str], message: str
) -> None:
    async def authenticate(ws: WebSocket) -> None:
        raise AuthenticationFailed(401, headers=headers)

    async def view(ws: WebSocket) -> None:
        await ws.accept()

    with pytest.raises(HandshakeRejected) as refused:
        async with connect(api_for(view, authenticate=authenticate)):
            pass
    assert refused.value.status_code == 500
    [error] = logged(caplog, logging.ERROR)
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], WebSocketProtocolError)
    assert str(error.exc_info[1]) == message
    # The 401 never went out, so the log does not say it did.
    assert not [r for r in logged(caplog, logging.INFO) if "refused" in r.getMessage()]


async def test_a_view_raising_inside_async_with_logs_that_it_closed_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def view(ws: WebSocket) -> None:
        async with ws:
            raise RuntimeError("boom")

    async with connect(api_for(view)) as client:
        with pytest.raises(WebSocketDisconnect) as closed:
            await client.receive_text()
    assert closed.value.code == 1011
    [error] = logged(caplog, logging.ERROR)
    assert error.getMessage().endswith(" on /; closed with 1011")


@pytest.mark.parametrize(
    ("send", "named", "wrong"),
    [
        (lambda ws: ws.send_text({"a": 1}), "send_text sends str, not dict: send_json sends", "value_type"),
        (lambda ws: ws.send(b"raw"), "set value_type='bytes' on the route", "JSON"),
        (lambda ws: ws.send({"a": 1}), "to send JSON, set value_type='json' on the route", "bytes"),
    ],
    ids=["send_text(dict)", "send(bytes)", "send(dict)"],
)
async def test_sending_what_text_cannot_carry_names_the_fix_that_works(
    send: Call, named: str, wrong: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The route's value_type does not change send_text, and bytes are no JSON.
    async def view(ws: WebSocket) -> None:
        async with ws:
            await send(ws)

    async with connect(api_for(view)) as client:
        with pytest.raises(WebSocketDisconnect) as closed:
            await client.receive_text()
    assert closed.value.code == 1011
    [error] = logged(caplog, logging.ERROR)
    assert error.exc_info is not None
    message = str(error.exc_info[1])
    assert named in message
    assert wrong not in message


async def test_connection_state_follows_accept_and_close() -> None:
    states: list[ConnectionState] = []

    async def view(ws: WebSocket) -> None:
        states.append(ws.connection_state)
        await ws.accept()
        states.append(ws.connection_state)
        await ws.close()
        states.append(ws.connection_state)

    async with connect(api_for(view)):
        pass
    assert states == [ConnectionState.CONNECTING, ConnectionState.CONNECTED, ConnectionState.CLOSED]


async def test_connection_state_is_disconnected_once_the_client_has_left() -> None:
    seen: list[Any] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        seen.append(await caught(ws.receive()))
        seen.append((ws.connection_state, ws.close_code, ws.close_reason))

    async with connect(api_for(view)) as client:
        await client.close(4000, "bye")
    assert isinstance(seen[0], WebSocketDisconnect)
    assert seen[1] == (ConnectionState.DISCONNECTED, 4000, "bye")


# -- receiving and sending through codecs -------------------------------------------------------


@pytest.mark.parametrize(
    ("value_type", "client_send", "client_receive", "value"),
    [
        ("text", "send_text", "receive_text", "héllo 🌍"),
        ("bytes", "send_bytes", "receive_bytes", b"\x00\xff"),
        ("json", "send_json", "receive_json", {"list": [1, 2.5, None], "text": "é/"}),
        ("msgpack", "send_msgpack", "receive_msgpack", {"list": [1, 2.5, None], "raw": b"\x00"}),
        ("auto", "send_text", "receive_text", "a text frame"),
        ("auto", "send_bytes", "receive_bytes", b"a binary frame"),
    ],
)
async def test_receive_and_send_go_through_the_route_codecs(
    value_type: str, client_send: str, client_receive: str, value: Any
) -> None:
    async with connect(echo_api(value_type=value_type)) as client:
        await getattr(client, client_send)(value)
        # The client's receive_* fail on a frame of the other kind.
        assert await getattr(client, client_receive)() == value


async def test_receive_type_and_send_type_are_independent() -> None:
    async with connect(echo_api(receive_type="json", send_type="msgpack")) as client:
        await client.send_json({"n": [1, 2]})
        assert await client.receive_msgpack() == {"n": [1, 2]}


async def test_typed_methods_ignore_the_route_codecs() -> None:
    async def view(ws: WebSocket) -> None:
        async with ws:
            await ws.send_text((await ws.receive_text()).upper())
            await ws.send_bytes((await ws.receive_bytes())[::-1])
            await ws.send_json({"json": await ws.receive_json()})
            await ws.send_msgpack({"msgpack": await ws.receive_msgpack()})

    async with connect(api_for(view, value_type="msgpack")) as client:
        await client.send_text("text")
        assert await client.receive_text() == "TEXT"
        await client.send_bytes(b"\x01\x02")
        assert await client.receive_bytes() == b"\x02\x01"
        await client.send_json([1, "é"])
        assert await client.receive_json() == {"json": [1, "é"]}
        await client.send_msgpack({"b": b"\x00"})
        assert await client.receive_msgpack() == {"msgpack": {"b": b"\x00"}}


@pytest.mark.parametrize("use_codec", [True, False], ids=["send", "send_json"])
async def test_json_goes_out_as_text_without_escaping_non_ascii_or_slashes(use_codec: bool) -> None:
    async def view(ws: WebSocket) -> None:
        async with ws:
            value = {"path": "/café/ü"}
            await (ws.send(value) if use_codec else ws.send_json(value))

    async with connect(api_for(view, value_type="json")) as client:
        text = await client.receive_text()
    assert "/café/ü" in text
    assert "\\" not in text


class Color(str, enum.Enum):
    """A str subclass, as every ``StrEnum`` member is."""

    RED = "red"


class Blob(bytes):
    pass


@pytest.mark.parametrize(
    ("value_type", "value", "frame"),
    [
        ("text", Color.RED, "text"),
        ("auto", Color.RED, "text"),
        ("bytes", Blob(b"\x00blob"), "bytes"),
        ("auto", Blob(b"\x00blob"), "bytes"),
    ],
)
async def test_a_subclass_of_str_goes_out_as_text_and_of_bytes_as_binary(
    value_type: str, value: Any, frame: str
) -> None:
    async def view(ws: WebSocket) -> None:
        async with ws:
            await ws.send(value)

    async with connect(api_for(view, value_type=value_type)) as client:
        event = await client.receive_event()
    assert event == {"type": "websocket.send", frame: value}


@pytest.mark.parametrize("use_codec", [True, False], ids=["send", "send_msgpack"])
async def test_msgpack_goes_out_as_binary(use_codec: bool) -> None:
    async def view(ws: WebSocket) -> None:
        async with ws:
            value = {"n": 1}
            await (ws.send(value) if use_codec else ws.send_msgpack(value))

    async with connect(api_for(view, value_type="msgpack")) as client:
        event = await client.receive_event()
    assert msgpack.unpackb(event["bytes"]) == {"n": 1}
    assert event.get("text") is None


async def test_receive_event_and_send_event_exchange_raw_asgi_events() -> None:
    events: list[MutableMapping[str, Any]] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        received = await ws.receive_event()
        events.append(received)
        await ws.send_event({"type": "websocket.send", "bytes": received["text"].encode()})
        # The client leaving is an event too, not an exception.
        events.append(await ws.receive_event())

    async with connect(api_for(view)) as client:
        await client.send_text("hi")
        assert await client.receive_bytes() == b"hi"
        await client.close(4000, "bye")
    assert events[0]["type"] == "websocket.receive"
    assert (events[1]["type"], events[1]["code"], events[1]["reason"]) == (
        "websocket.disconnect",
        4000,
        "bye",
    )


async def test_receive_event_gives_a_dict_even_when_middleware_passes_another_mapping() -> None:
    """The guide writes ``event: dict = await ws.receive_event()``: that holds at run time too."""

    class Event(MutableMapping[str, Any]):
        def __init__(self, message: MutableMapping[str, Any]) -> None:
            self.data = dict(message)

        def __getitem__(self, key: str) -> Any:
            return self.data[key]

        def __setitem__(self, key: str, value: Any) -> None:
            self.data[key] = value

        def __delitem__(self, key: str) -> None:
            del self.data[key]

        def __iter__(self) -> Any:
            return iter(self.data)

        def __len__(self) -> int:
            return len(self.data)

    def wrapping(app: Any) -> Any:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            async def wrapped() -> Event:
                return Event(await receive())

            await app(scope, wrapped, send)

        return middleware

    events: list[dict[str, Any]] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        event: dict[str, Any] = await ws.receive_event()
        events.append(event)
        events.append(await ws.receive_event())

    async with connect(wrapping(api_for(view))) as client:
        await client.send_text("hi")
        await client.close(4000)
    assert [type(event) for event in events] == [dict, dict]
    assert events[0] == {"type": "websocket.receive", "text": "hi"}
    assert (events[1]["type"], events[1]["code"]) == ("websocket.disconnect", 4000)


async def test_send_event_drives_the_connection_state() -> None:
    seen: list[Any] = []

    async def view(ws: WebSocket) -> None:
        await ws.send_event({"type": "websocket.accept"})
        seen.append(ws.connection_state)
        await ws.send_event({"type": "websocket.close", "code": 4002})
        seen.append(ws.connection_state)
        seen.append(await caught(ws.send_text("late")))

    async with connect(api_for(view)) as client:
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_text()
    assert info.value.code == 4002
    assert seen[:2] == [ConnectionState.CONNECTED, ConnectionState.CLOSED]
    assert isinstance(seen[2], WebSocketStateError)


# -- async with and async for --------------------------------------------------------------------


async def test_async_with_accepts_on_enter_and_closes_with_1000_on_exit() -> None:
    async def view(ws: WebSocket) -> None:
        async with ws:
            await ws.send_text("inside")

    async with connect(api_for(view)) as client:
        assert await client.receive_text() == "inside"
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_text()
    assert info.value.code == 1000


async def test_async_with_does_not_accept_an_accepted_connection_again() -> None:
    errors: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept(subprotocol="chat")

        async def block() -> None:
            async with ws:
                await ws.send_text("inside")

        errors.append(await caught(block()))

    async with connect(api_for(view), "/", subprotocols=["chat"]) as client:
        assert client.accepted_subprotocol == "chat"
        assert await client.receive_text() == "inside"
    assert errors == [None]


async def test_async_with_closes_with_1011_and_reraises_when_the_block_raises() -> None:
    escaped: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        async def block() -> None:
            async with ws:
                raise LookupError("boom")

        escaped.append(await caught(block()))

    async with connect(api_for(view)) as client:
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_text()
    assert info.value.code == 1011
    assert [type(e) for e in escaped] == [LookupError]


@pytest.mark.parametrize("code", [1000, 1001, 4000])
async def test_async_with_silences_the_client_leaving_by_default(code: int) -> None:
    after: list[int | None] = []

    async def view(ws: WebSocket) -> None:
        async with ws:
            await ws.receive_text()
        after.append(ws.close_code)

    async with connect(api_for(view)) as client:
        await client.close(code)
    assert after == [code]


async def test_catch_disconnect_false_lets_the_disconnect_propagate() -> None:
    escaped: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        async def block() -> None:
            async with ws:
                await ws.receive_text()

        escaped.append(await caught(block()))

    async with connect(api_for(view, catch_disconnect=False)) as client:
        await client.close(1001)
    assert isinstance(escaped[0], WebSocketDisconnect)
    assert escaped[0].code == 1001


@pytest.mark.parametrize(("code", "silenced"), [(1000, True), (1001, False), (4000, False)])
async def test_caught_close_codes_silences_only_those_codes(code: int, silenced: bool) -> None:
    escaped: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        async def block() -> None:
            async with ws:
                await ws.receive_text()

        escaped.append(await caught(block()))

    async with connect(api_for(view, caught_close_codes=[1000])) as client:
        await client.close(code)
    if silenced:
        assert escaped == [None]
    else:
        assert isinstance(escaped[0], WebSocketDisconnect)
        assert escaped[0].code == code


async def for_loop(ws: WebSocket, got: list[Any]) -> None:
    async for message in ws:
        got.append(message)


async def while_loop(ws: WebSocket, got: list[Any]) -> None:
    while True:
        got.append(await ws.receive())


@pytest.mark.parametrize(("last", "code"), [(None, 4000), (b"binary", 1003), ("{bad json", 1007)])
@pytest.mark.parametrize("loop", [for_loop, while_loop])
async def test_async_for_behaves_like_the_while_true_receive_loop(
    loop: Callable[[WebSocket, list[Any]], Awaitable[None]], last: str | bytes | None, code: int
) -> None:
    got: list[Any] = []
    ended: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        ended.append(await caught(loop(ws, got)))

    async with connect(api_for(view, value_type="json")) as client:
        await client.send_json({"n": 1})
        await client.send_json([2])
        if last is None:
            await client.close(4000)
        else:
            await send_frame(client, last)
    assert got == [{"n": 1}, [2]]
    assert isinstance(ended[0], WebSocketDisconnect)
    assert ended[0].code == code


async def test_breaking_out_of_async_for_loses_no_message_and_warns_of_nothing(
    recwarn: pytest.WarningsRecorder,
) -> None:
    got: list[Any] = []

    async def view(ws: WebSocket) -> None:
        async with ws:
            async for message in ws:
                got.append(message)
                if message == "second":
                    break
            got.append(await ws.receive())  # the message after the break, not one skipped
            async for message in ws:  # a second loop goes on where the first stopped
                got.append(message)
                break
            await ws.send("done")
        # The connection ends with the loop left at a `break`.

    async with connect(api_for(view)) as client:
        for text in ("first", "second", "third", "fourth"):
            await client.send_text(text)
        assert await client.receive_text() == "done"
        with pytest.raises(WebSocketDisconnect) as closed:
            await client.receive_text()
    assert closed.value.code == 1000
    assert got == ["first", "second", "third", "fourth"]
    await anyio.sleep(0.01)  # an abandoned loop would be finalised by the event loop meanwhile
    gc.collect()
    assert [str(w.message) for w in recwarn] == []


# -- lifetime ---------------------------------------------------------------------------------------


async def refused(ws: WebSocket) -> None:
    await ws.close()


async def closes_after_one(ws: WebSocket) -> None:
    async with ws:
        await ws.send(await ws.receive())


class EchoEndpoint(WebSocketEndpoint):
    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        await ws.send(message)


class ClosingEndpoint(WebSocketEndpoint):
    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        await ws.close(4000)  # the receive loop's next receive ends it


@pytest.mark.parametrize(
    ("handler", "options", "sent"),
    [
        (EchoEndpoint, {}, ["hi", "hi"]),
        (None, {}, ["hi", "hi"]),  # the echo view
        (closes_after_one, {}, ["hi"]),
        (refused, {}, []),
        (None, {"value_type": "json"}, ["{not json"]),  # closed by the framework, 1007
        (ClosingEndpoint, {}, ["bye"]),
    ],
    ids=["endpoint", "view", "app-closes", "refused", "bad-payload", "endpoint-closes"],
)
async def test_a_connection_that_ended_is_freed_without_the_garbage_collector(
    handler: Any, options: dict[str, Any], sent: list[str], websockets_alive: Callable[[], int]
) -> None:
    # Freed by reference counting as soon as it ends, rather than left for a full
    # collection: a server with many short connections would otherwise pile them up.
    api = echo_api(**options) if handler is None else api_for(handler, **options)
    before = websockets_alive()
    for _ in range(3):
        with contextlib.suppress(HandshakeRejected, WebSocketDisconnect):
            async with connect(api) as client:
                for text in sent:
                    await client.send_text(text)
                await client.receive_text()
    assert websockets_alive() == before


# -- views of the scope --------------------------------------------------------------------------


async def test_scope_views_describe_the_handshake_request() -> None:
    async def view(ws: WebSocket, room: str) -> None:
        await ws.accept()
        await ws.send_json(
            {
                "path": ws.path,
                "path_params": dict(ws.path_params),
                "user": ws.query_params["user"],
                "tags": ws.query_params.getlist("tag"),
                "token": ws.headers["X-Token"],
                "cookies": dict(ws.cookies),
                "subprotocols": ws.subprotocols,
                "url": ws.url,
                "client": [isinstance(ws.client, Address), list(ws.client or ()), ws.scope["client"]],
            }
        )
        await ws.close()

    api = API()
    api.add_websocket("/rooms/{room}", view)
    async with connect(
        api,
        "/rooms/lobby?user=ann&tag=a&tag=b",
        subprotocols=["chat.v1", "chat.v2"],
        headers=[
            ("X-Token", "secret"),
            ("Host", "chat.example:8080"),
            ("Cookie", 'session="s3cr3t"; theme=dark'),
            ("Cookie", "lang=en"),
        ],
    ) as client:
        report = await client.receive_json()
    client_is_address, client_address, scope_client = report.pop("client")
    assert client_is_address
    assert client_address == list(scope_client)
    assert report == {
        "path": "/rooms/lobby",
        "path_params": {"room": "lobby"},
        "user": "ann",
        "tags": ["a", "b"],
        "token": "secret",
        "cookies": {"session": "s3cr3t", "theme": "dark", "lang": "en"},
        "subprotocols": ["chat.v1", "chat.v2"],
        "url": "ws://chat.example:8080/rooms/lobby?user=ann&tag=a&tag=b",
    }


async def noop_receive() -> dict[str, Any]:
    raise AssertionError("these tests never receive")


async def noop_send(message: MutableMapping[str, Any]) -> None:
    raise AssertionError("these tests never send")


def bare(**scope: Any) -> WebSocket:
    """A WebSocket over a hand-made scope, for the views that need no connection."""
    return WebSocket({"type": "websocket", "path": "/", **scope}, noop_receive, noop_send)


@pytest.mark.parametrize(
    ("scope", "url"),
    [
        ({"server": ("10.0.0.1", 9000), "path": "/x"}, "ws://10.0.0.1:9000/x"),
        ({"scheme": "wss", "server": ("10.0.0.1", 443), "query_string": b"a=1"}, "wss://10.0.0.1:443/?a=1"),
        ({"headers": [(b"host", b"example.com")], "server": ("10.0.0.1", 80)}, "ws://example.com/"),
        ({}, "ws://localhost/"),
    ],
)
def test_url_is_built_from_host_header_or_server(scope: dict[str, Any], url: str) -> None:
    assert bare(**scope).url == url


def test_a_websocket_over_a_scope_that_is_not_a_websocket_s_raises() -> None:
    with pytest.raises(WebSocketProtocolError, match="needs a 'websocket' scope, not 'http'"):
        WebSocket({"type": "http", "path": "/"}, noop_receive, noop_send)


def test_scope_views_have_defaults_for_missing_keys() -> None:
    ws = bare()
    assert ws.client is None
    assert ws.subprotocols == []
    assert dict(ws.path_params) == {}
    assert len(ws.query_params) == 0
    assert len(ws.headers) == 0
    assert dict(ws.cookies) == {}


@pytest.mark.parametrize(
    "attribute", ["path", "path_params", "query_params", "headers", "client", "subprotocols", "url"]
)
def test_scope_views_cannot_be_assigned(attribute: str) -> None:
    with pytest.raises(AttributeError):
        setattr(bare(), attribute, None)


async def test_path_params_are_read_only() -> None:
    seen: list[Any] = []

    async def view(ws: WebSocket, room: str) -> None:
        async with ws:
            try:
                ws.path_params["room"] = "elsewhere"  # type: ignore[index]
            except TypeError as exc:
                seen.append(exc)
            seen.append(dict(ws.path_params))

    api = API()
    api.add_websocket("/rooms/{room}", view)
    async with connect(api, "/rooms/lobby"):
        pass
    assert isinstance(seen[0], TypeError)
    assert seen[1] == {"room": "lobby"}


def test_subprotocols_are_a_copy_of_what_the_client_offered() -> None:
    ws = bare(subprotocols=["chat.v1"])
    ws.subprotocols.append("injected")
    assert ws.subprotocols == ["chat.v1"]


async def test_state_belongs_to_one_connection() -> None:
    async def view(ws: WebSocket) -> None:
        async with ws:
            async for _ in ws:
                ws.state.count = getattr(ws.state, "count", 0) + 1
                await ws.send_json(ws.state.count)

    api = api_for(view)
    async with connect(api) as first, connect(api) as second:
        for client, expected in [(first, 1), (first, 2), (second, 1), (first, 3), (second, 2)]:
            await client.send_text("count")
            assert await client.receive_json() == expected


def test_a_websocket_needs_a_websocket_scope() -> None:
    with pytest.raises(ValueError, match="websocket"):
        WebSocket({"type": "http", "path": "/"}, noop_receive, noop_send)


def test_task_group_is_refused_outside_wsendpoints_dispatch() -> None:
    with pytest.raises(WebSocketStateError, match="task group"):
        _ = bare().task_group


class PublishesWithWsApi(WebSocketEndpoint):
    """Echoes through a group, publishing with ``ws.api``: it never sees the module's ``api``."""

    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.join("echo")

    async def on_receive(self, ws: WebSocket, message: str) -> None:
        await ws.api.publish("echo", f"{type(ws.api).__name__}: {message}")


async def publishes_with_ws_api(ws: WebSocket) -> None:
    async with ws:
        await ws.join("echo")
        async for message in ws:
            await ws.api.publish("echo", f"{type(ws.api).__name__}: {message}")


@pytest.mark.parametrize("handler", [PublishesWithWsApi, publishes_with_ws_api], ids=["endpoint", "view"])
async def test_ws_api_is_the_api_serving_the_connection(handler: Any) -> None:
    api = API()
    api.add_websocket("/", handler)
    async with connect(api) as client:
        await client.send_text("hi")
        assert await client.receive_text() == "API: hi"


async def test_ws_api_under_middleware_that_builds_its_own_scope() -> None:
    def middleware(app: Any) -> Any:
        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            await app({**scope, "tagged": True}, receive, send)

        return wrapped

    api = API(middleware=[middleware])
    seen: list[Any] = []

    @api.websocket_route("/")
    async def view(ws: WebSocket) -> None:
        async with ws:
            seen.append((ws.api, ws.scope["tagged"]))
            await ws.api.publish("nowhere", "nobody listens")

    async with connect(api):
        pass
    assert seen == [(api, True)]


async def test_ws_api_under_a_mount_is_the_api_whose_route_serves_it() -> None:
    inner, outer = API(), API()
    seen: list[API] = []

    @inner.websocket_route("/ws")
    async def view(ws: WebSocket) -> None:
        async with ws:
            seen.append(ws.api)

    outer.mount("/sub", inner, websocket=True)
    async with connect(outer, "/sub/ws"):
        pass
    assert seen == [inner]


@pytest.mark.parametrize("how", ["endpoint", "view"])
async def test_ws_api_is_refused_on_a_connection_no_api_serves(how: str) -> None:
    errors: list[Exception] = []

    def look(ws: WebSocket) -> None:
        try:
            _ = ws.api
        except Exception as exc:
            errors.append(exc)

    async def view(ws: WebSocket) -> None:
        async with ws:
            look(ws)

    class Endpoint(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            look(ws)
            await ws.accept()

    app: Any = Endpoint if how == "endpoint" else FunctionView(view)
    async with connect(app):
        pass
    assert [type(error) for error in errors] == [WebSocketStateError]
    assert "no wsendpoints API serves this connection" in str(errors[0])


def test_ws_api_is_refused_on_a_scope_without_an_api() -> None:
    with pytest.raises(WebSocketStateError, match="API"):
        _ = bare().api


# -- misuse ------------------------------------------------------------------------------------------


@each_receive
async def test_receive_before_accept_says_to_accept_first(receive: Call) -> None:
    errors: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        errors.append(await caught(receive(ws)))
        await ws.accept()
        await ws.close()

    async with connect(api_for(view)):
        pass
    assert isinstance(errors[0], WebSocketStateError)
    assert "accept()" in str(errors[0])


@each_send
async def test_send_before_accept_says_to_accept_first(send: Call) -> None:
    errors: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        errors.append(await caught(send(ws)))
        await ws.accept()
        await ws.close()

    async with connect(api_for(view)):
        pass
    assert isinstance(errors[0], WebSocketStateError)
    assert "accept()" in str(errors[0])


@each_send
async def test_send_after_the_app_closed_says_it_closed(send: Call) -> None:
    errors: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4000)
        errors.append(await caught(send(ws)))

    async with connect(api_for(view)) as client:
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_text()
    assert info.value.code == 4000
    assert isinstance(errors[0], WebSocketStateError)
    assert "closed" in str(errors[0])


@each_receive
async def test_receive_after_the_app_closed_raises_disconnect(receive: Call) -> None:
    errors: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4000)
        errors.append(await caught(receive(ws)))

    async with connect(api_for(view)):
        pass
    assert isinstance(errors[0], WebSocketDisconnect)
    assert errors[0].code == 4000


@each_receive
async def test_receive_after_the_client_left_raises_disconnect_again(receive: Call) -> None:
    errors: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        errors.append(await caught(ws.receive()))
        errors.append(await caught(receive(ws)))

    async with connect(api_for(view)) as client:
        await client.close(4000, "bye")
    assert [type(e) for e in errors] == [WebSocketDisconnect, WebSocketDisconnect]
    assert [(e.code, e.reason) for e in errors if isinstance(e, WebSocketDisconnect)] == [(4000, "bye")] * 2


@pytest.mark.parametrize("close_first", [False, True], ids=["accepted", "closed"])
async def test_accept_is_refused_once_the_handshake_is_done(close_first: bool) -> None:
    errors: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        if close_first:
            await ws.close()
        errors.append(await caught(ws.accept()))

    async with connect(api_for(view)):
        pass
    assert isinstance(errors[0], WebSocketStateError)
    assert "cannot accept" in str(errors[0])


async def test_close_twice_sends_one_close() -> None:
    sent: list[dict[str, Any]] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4000, "first")
        await ws.close(4001, "second")

    async with connect(recording(api_for(view), sent)) as client:
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_text()
    assert (info.value.code, info.value.reason) == (4000, "first")
    assert [m["code"] for m in sent if m["type"] == "websocket.close"] == [4000]


async def test_close_after_the_client_left_sends_nothing() -> None:
    sent: list[dict[str, Any]] = []
    errors: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await caught(ws.receive())
        errors.append(await caught(ws.close(4000)))

    async with connect(recording(api_for(view), sent)) as client:
        await client.close()
    assert errors == [None]
    assert [m for m in sent if m["type"] == "websocket.close"] == []


async def test_close_is_harmless_when_the_client_left_unnoticed(caplog: pytest.LogCaptureFixture) -> None:
    errors: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        # The client has left, but the app has not received the disconnect yet.
        errors.append(await caught(ws.close(4000)))

    async with connect(api_for(view)) as client:
        await client.send_text("go")
        await client.close()
    assert errors == [None]
    assert logged(caplog, logging.ERROR) == []


@each_send
async def test_send_after_the_client_left_raises_disconnect_not_a_server_error(
    send: Call, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[Exception | None] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        # The client has left, but the app has not received the disconnect yet.
        errors.append(await caught(send(ws)))

    async with connect(api_for(view)) as client:
        await client.send_text("go")
        await client.close()
    assert isinstance(errors[0], WebSocketDisconnect)
    assert logged(caplog, logging.ERROR) == []


# -- bad messages ----------------------------------------------------------------------------------


async def assert_rejected(
    api: API, payload: str | bytes, code: int, caplog: pytest.LogCaptureFixture, raised: list[Any]
) -> None:
    async with connect(api) as client:
        await send_frame(client, payload)
        event = await client.receive_event()
    assert (event["type"], event["code"]) == ("websocket.close", code)
    assert isinstance(raised[0], WebSocketDisconnect)
    assert raised[0].code == code
    assert len(logged(caplog, logging.WARNING)) == 1
    assert logged(caplog, logging.ERROR) == []


def receiving_view(receive: Call, raised: list[Any]) -> View:
    async def view(ws: WebSocket) -> None:
        await ws.accept()
        raised.append(await caught(receive(ws)))

    return view


@pytest.mark.parametrize(
    ("value_type", "payload"),
    [("text", b"binary"), ("json", b"{}"), ("bytes", "text"), ("msgpack", "\x80")],
)
async def test_a_frame_of_the_wrong_kind_closes_with_1003_and_one_warning(
    value_type: str, payload: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[Any] = []
    view = receiving_view(RECEIVES["receive"], raised)
    await assert_rejected(api_for(view, value_type=value_type), payload, 1003, caplog, raised)


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("receive_text", b"binary"),
        ("receive_json", b"{}"),
        ("receive_bytes", "text"),
        ("receive_msgpack", "x"),
    ],
)
async def test_a_typed_receive_of_the_wrong_frame_kind_closes_with_1003(
    method: str, payload: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[Any] = []
    view = receiving_view(RECEIVES[method], raised)
    await assert_rejected(api_for(view, value_type="auto"), payload, 1003, caplog, raised)


BAD_PAYLOADS = [
    ("json", "{not json"),
    ("json", ""),
    ("msgpack", b"\xc1"),
    ("msgpack", msgpack.packb([1, 2, 3])[:-1]),
    ("msgpack", b"\x81\x91\x01\x01"),  # a map keyed by an array: unhashable
]


@pytest.mark.parametrize(("value_type", "payload"), BAD_PAYLOADS)
async def test_an_undecodable_payload_closes_with_1007_and_one_warning(
    value_type: str, payload: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[Any] = []
    view = receiving_view(RECEIVES["receive"], raised)
    await assert_rejected(api_for(view, value_type=value_type), payload, 1007, caplog, raised)


@pytest.mark.parametrize(("value_type", "payload"), BAD_PAYLOADS)
async def test_a_typed_receive_of_an_undecodable_payload_closes_with_1007(
    value_type: str, payload: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[Any] = []
    view = receiving_view(RECEIVES[f"receive_{value_type}"], raised)
    await assert_rejected(api_for(view), payload, 1007, caplog, raised)


@pytest.mark.parametrize(
    "error",
    [UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), TypeError("no frame for that")],
    ids=["UnicodeEncodeError", "TypeError"],
)
@pytest.mark.parametrize("send", [SENDS["send"], SENDS["send_text"]], ids=["send", "send_text"])
async def test_a_message_the_server_cannot_frame_is_the_apps_error_not_a_client_gone(
    send: Call, error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    # uvicorn raises UnicodeEncodeError for text with a lone surrogate: the app's bug, which
    # closes with 1011 and a logged traceback, rather than a quiet 1006 as if the client left.
    async def view(ws: WebSocket) -> None:
        async with ws:
            await ws.receive()
            await send(ws)

    def app(scope: Any, receive: Any, server_send: Any) -> Any:
        async def refusing_send(event: MutableMapping[str, Any]) -> None:
            if event["type"] == "websocket.send":
                raise error
            await server_send(event)

        return api_for(view)(scope, receive, refusing_send)

    async with connect(app) as client:
        await client.send_text("go")
        event = await client.receive_event()
    assert (event["type"], event["code"]) == ("websocket.close", 1011)
    [record] = logged(caplog, logging.ERROR)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], type(error))


@pytest.mark.parametrize(
    ("options", "payload", "code"),
    [
        ({"value_type": "text"}, b"binary", 1003),
        ({"value_type": "json"}, "{not json", 1007),
        ({"max_message_size": 4}, "too long", 1009),
    ],
)
async def test_a_send_after_the_framework_closed_for_a_bad_message_raises_the_disconnect(
    options: dict[str, Any], payload: str | bytes, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    # The client's fault, as if it had left: the view's own send says so with the code,
    # rather than with a WebSocketStateError that `async with ws` would log as a failure.
    raised: list[Any] = []

    async def view(ws: WebSocket) -> None:
        await ws.accept()
        raised.append(await caught(ws.receive()))
        raised.append(await caught(ws.send("too late")))

    async with connect(api_for(view, **options)) as client:
        await send_frame(client, payload)
        event = await client.receive_event()
    assert (event["type"], event["code"]) == ("websocket.close", code)
    assert [type(exc) for exc in raised] == [WebSocketDisconnect, WebSocketDisconnect]
    assert raised[1].code == code
    assert logged(caplog, logging.ERROR) == []


async def test_a_bad_message_inside_async_with_is_silenced_like_any_disconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with connect(echo_api(value_type="json")) as client:
        await client.send_json({"ok": 1})
        assert await client.receive_json() == {"ok": 1}
        await client.send_text("{bad")
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_json()
    assert info.value.code == 1007
    assert len(logged(caplog, logging.WARNING)) == 1
    assert logged(caplog, logging.ERROR) == []


# -- a WebSocket inside a plain ASGI application -------------------------------------------------------


async def test_a_websocket_in_a_raw_asgi_app_can_accept_and_receive() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        ws = WebSocket(scope, receive, send)
        await ws.accept()
        await ws.send_text(f"echo: {await ws.receive_text()}")
        await ws.close()

    async with connect(app) as client:
        await client.send_text("hi")
        assert await client.receive_text() == "echo: hi"
