"""Codecs: the built-in ones, the registry, and custom codecs used end to end."""

from __future__ import annotations

import contextlib
import logging
import threading
import tracemalloc
import uuid
from typing import Any

import msgpack
import pytest

from wsendpoints import API, WebSocket, WebSocketDisconnect, WebSocketEndpoint, register_codec
from wsendpoints import codecs as codecs_module
from wsendpoints.codecs import (
    AutoCodec,
    BytesCodec,
    Codec,
    Frame,
    JSONCodec,
    MsgPackCodec,
    TextCodec,
    codec_names,
    message_codecs,
    resolve_codec,
)
from wsendpoints.exceptions import ConfigurationError
from wsendpoints.testing import connect
from wsendpoints.types import Message

BUILT_IN = ["auto", "bytes", "json", "msgpack", "text"]


def unique_name(prefix: str) -> str:
    # The registry is global to the process and async tests run once per backend.
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def echo_api(**options: Any) -> API:
    api = API()

    @api.websocket_route("/", **options)
    async def echo(ws: WebSocket) -> None:
        async with ws:
            async for message in ws:
                await ws.send(message)

    return api


# -- the built-in codecs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "frame"),
    [("text", "text"), ("bytes", "bytes"), ("json", "text"), ("msgpack", "bytes"), ("auto", "any")],
)
def test_built_in_codec_reads_its_frame_kind(name: str, frame: str) -> None:
    assert resolve_codec(name).frame == frame


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("text", ""),
        ("text", "héllo 🌍 / \\"),
        ("bytes", b""),
        ("bytes", b"\x00\xff binary"),
        ("auto", "a text frame"),
        ("auto", b"\x00a binary frame"),
        ("json", {"list": [1, 2.5, None, True, False], "text": "é/ü", "nested": {"empty": []}}),
        ("json", "a bare string"),
        ("json", 0),
        ("msgpack", {"list": [1, -2, 2.5, None, True], "text": "é", "raw": b"\x00\xff"}),
        ("msgpack", []),
    ],
)
def test_built_in_codec_round_trips(name: str, value: Any) -> None:
    codec = resolve_codec(name)
    assert codec.decode(codec.encode(value)) == value


@pytest.mark.parametrize(
    ("name", "payload_type"),
    [("text", str), ("bytes", bytes), ("json", str), ("msgpack", bytes)],
)
def test_codec_encodes_to_the_payload_of_its_frame(name: str, payload_type: type) -> None:
    value = b"x" if name == "bytes" else "x"
    assert type(resolve_codec(name).encode(value)) is payload_type


@pytest.mark.parametrize("value", [bytearray(b"ab"), memoryview(b"ab")])
@pytest.mark.parametrize("name", ["bytes", "auto"])
def test_bytes_like_values_are_sent_as_bytes(name: str, value: Any) -> None:
    assert resolve_codec(name).encode(value) == b"ab"
    assert type(resolve_codec(name).encode(value)) is bytes


def test_json_codec_does_not_escape_non_ascii_or_slashes() -> None:
    text = resolve_codec("json").encode({"path": "/café/naïve"})
    assert "/café/naïve" in text
    assert "\\u" not in text
    assert "\\/" not in text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("text", b"bytes"),
        ("text", 1),
        ("text", None),
        ("bytes", "text"),
        ("bytes", 1),
        ("bytes", [1, 2]),
        ("auto", 1),
        ("auto", None),
        ("auto", {"a": 1}),
        ("json", object()),
        ("json", {1, 2}),
        ("json", b"bytes"),
        ("msgpack", object()),
        ("msgpack", {1, 2}),
        # msgpack has no integers wider than 64 bits.
        ("msgpack", 2**64),
    ],
)
def test_encode_refuses_a_value_it_cannot_encode_with_type_error(name: str, value: Any) -> None:
    with pytest.raises(TypeError):
        resolve_codec(name).encode(value)


def test_the_text_codec_refusing_a_dict_says_how_to_send_json() -> None:
    # Routes speak text unless they say otherwise: a dict sent there is the usual slip.
    with pytest.raises(
        TypeError, match=r"^the text codec sends str, not dict; to send JSON, set value_type='json'"
    ):
        resolve_codec("text").encode({"hello": "world"})


@pytest.mark.parametrize(
    "payload",
    ["", "{", "[1,]", "{'single': 'quotes'}", "[1] trailing", "nope"],
)
def test_json_decode_of_a_bad_payload_raises_value_error(payload: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the codec protocol's only "cannot decode" signal
        resolve_codec("json").decode(payload)


BAD_MSGPACK = {
    "empty": b"",
    "truncated array": msgpack.packb([1, 2, 3])[:-1],
    "reserved byte 0xc1": b"\xc1",
    "array map key": b"\x81\x91\x01\x01",
    "extra data": msgpack.packb([1]) + b"\x01",
    "invalid utf-8 string": b"\xa2\xff\xfe",
}


def test_msgpack_decodes_integer_map_keys() -> None:
    # Ordinary msgpack (many clients key maps by number); only unhashable keys are refused.
    assert resolve_codec("msgpack").decode(msgpack.packb({1: "one"})) == {1: "one"}


@pytest.mark.parametrize("payload", BAD_MSGPACK.values(), ids=BAD_MSGPACK.keys())
def test_msgpack_decode_of_a_bad_payload_raises_value_error(payload: bytes) -> None:
    with pytest.raises(ValueError, match="invalid msgpack payload"):
        resolve_codec("msgpack").decode(payload)


@pytest.mark.parametrize("payload", BAD_MSGPACK.values(), ids=BAD_MSGPACK.keys())
def test_msgpack_decode_error_says_what_is_wrong(payload: bytes) -> None:
    # The message becomes the close reason the client sees.
    with pytest.raises(ValueError, match="invalid msgpack payload") as info:
        resolve_codec("msgpack").decode(payload)
    assert str(info.value).split(":", 1)[1].strip()


LARGE = b"x" * (8 * 1024 * 1024)


@pytest.mark.parametrize(
    "value", [LARGE, [LARGE, 2**64], [LARGE, {1, 2}]], ids=["sent", "overflow", "unserialisable"]
)
def test_msgpack_encode_keeps_no_buffer_the_size_of_a_large_message(value: Any) -> None:
    # The codec reuses a Packer per thread, whose buffer grows to fit a message and never
    # shrinks: one 8 MiB message, sent or refused half-way, must not keep 8 MiB or more for good.
    codec = resolve_codec("msgpack")
    kept: list[int] = []

    def encode_in_a_new_thread() -> None:  # whose Packer starts afresh
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            with contextlib.suppress(TypeError):
                codec.encode(value)
            kept.append(tracemalloc.get_traced_memory()[0] - before)
        finally:
            tracemalloc.stop()

    thread = threading.Thread(target=encode_in_a_new_thread)
    thread.start()
    thread.join()
    [size] = kept
    assert size < 1024 * 1024
    assert msgpack.unpackb(codec.encode([1, "two"])) == [1, "two"]


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_in_codecs_follow_the_codec_protocol(name: str) -> None:
    assert isinstance(resolve_codec(name), Codec)


# -- the registry ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("text", TextCodec),
        ("bytes", BytesCodec),
        ("auto", AutoCodec),
        ("json", JSONCodec),
        ("msgpack", MsgPackCodec),
    ],
)
def test_resolve_codec_finds_built_ins_by_name(name: str, cls: type) -> None:
    assert type(resolve_codec(name)) is cls


def test_resolve_codec_returns_an_instance_as_given() -> None:
    codec = JSONCodec()
    assert resolve_codec(codec) is codec


def test_codec_names_lists_the_built_ins_sorted() -> None:
    names = codec_names()
    assert set(BUILT_IN) <= set(names)
    assert names == sorted(names)


def test_unknown_codec_name_is_refused_with_the_known_names() -> None:
    with pytest.raises(ConfigurationError, match="yaml") as info:
        resolve_codec("yaml")
    for name in codec_names():
        assert name in str(info.value)


def test_register_codec_makes_the_name_resolvable() -> None:
    name = unique_name("upper")
    codec = UpperCodec()
    register_codec(name, codec)
    assert resolve_codec(name) is codec
    assert name in codec_names()


@pytest.mark.parametrize("name", [*BUILT_IN, "again"])
def test_register_codec_refuses_a_name_already_taken(name: str) -> None:
    if name == "again":
        name = unique_name("again")
        register_codec(name, UpperCodec())
    before = resolve_codec(name)
    with pytest.raises(ConfigurationError, match="already registered"):
        register_codec(name, UpperCodec())
    assert resolve_codec(name) is before


@pytest.mark.parametrize("use", [register_codec, resolve_codec])
def test_a_codec_class_is_refused_in_place_of_an_instance(use: Any) -> None:
    args = (unique_name("class"), JSONCodec) if use is register_codec else (JSONCodec,)
    with pytest.raises(ConfigurationError, match="instance"):
        use(*args)


class NoFrame:
    def decode(self, data: str) -> str:
        return data

    def encode(self, value: str) -> str:
        return value


class NoDecode:
    frame = "text"

    def encode(self, value: str) -> str:
        return value


class NoEncode:
    frame = "text"

    def decode(self, data: str) -> str:
        return data


class BadFrame(NoFrame):
    frame = "binary"


@pytest.mark.parametrize("codec", [NoFrame(), NoDecode(), NoEncode(), None, object()])
@pytest.mark.parametrize("use", [register_codec, resolve_codec])
def test_an_object_missing_codec_members_is_refused(use: Any, codec: Any) -> None:
    args = (unique_name("partial"), codec) if use is register_codec else (codec,)
    with pytest.raises(ConfigurationError, match="not a codec"):
        use(*args)


@pytest.mark.parametrize("use", [register_codec, resolve_codec])
def test_a_codec_with_an_unknown_frame_is_refused(use: Any) -> None:
    args = (unique_name("binary"), BadFrame()) if use is register_codec else (BadFrame(),)
    with pytest.raises(ConfigurationError, match="binary"):
        use(*args)


@pytest.mark.parametrize("name", [3, None])
def test_register_codec_refuses_a_name_that_is_not_a_string(
    name: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Isolated registry: if the name were accepted, it must not leak into other tests.
    monkeypatch.setattr(codecs_module, "_registry", dict(codecs_module._registry))
    with pytest.raises(ConfigurationError):
        register_codec(name, UpperCodec())
    assert codec_names()


def test_message_codecs_value_type_sets_both_directions() -> None:
    assert message_codecs("json", "bytes", "msgpack") == (resolve_codec("json"), resolve_codec("json"))


def test_message_codecs_without_value_type_resolves_each_direction() -> None:
    upper = UpperCodec()
    assert message_codecs(None, "bytes", upper) == (resolve_codec("bytes"), upper)


@pytest.mark.parametrize(
    "options", [("yaml", "text", "text"), (None, "yaml", "text"), (None, "text", "yaml")]
)
def test_message_codecs_refuses_an_unknown_name(options: tuple[Any, Any, Any]) -> None:
    with pytest.raises(ConfigurationError, match="yaml"):
        message_codecs(*options)


def test_a_route_with_an_unknown_codec_is_refused_at_registration() -> None:
    api = API()

    async def view(ws: WebSocket) -> None:
        pass

    with pytest.raises(ConfigurationError, match="yaml"):
        api.add_websocket("/", view, value_type="yaml")


# -- custom codecs end to end -----------------------------------------------------------------


class UpperCodec:
    """Text frames, upper-cased on the way in and lower-cased on the way out."""

    frame: Frame = "text"

    def decode(self, data: str) -> str:
        return data.upper()

    def encode(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"cannot send {type(value).__name__}")
        return value.lower()


class CSVCodec:
    """One CSV row per binary frame: a list of fields."""

    frame: Frame = "bytes"

    def decode(self, data: bytes) -> list[str]:
        text = data.decode()  # UnicodeDecodeError is a ValueError: a bad payload
        if not text:
            raise ValueError("an empty row")
        return text.split(",")

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, list) or not all(isinstance(field, str) for field in value):
            raise TypeError("a row is a list of str")
        return ",".join(value).encode()


class BrokenCodec(UpperCodec):
    """A codec with a bug: decode raises something other than ValueError."""

    def decode(self, data: str) -> str:
        raise KeyError(data)


async def test_a_custom_codec_instance_serves_a_route() -> None:
    api = API()

    @api.websocket_route("/rows", value_type=CSVCodec())
    async def reverse(ws: WebSocket) -> None:
        async with ws:
            async for row in ws:
                await ws.send(row[::-1])

    async with connect(api, "/rows") as client:
        await client.send_bytes(b"a,b,c")
        assert await client.receive_bytes() == b"c,b,a"


async def test_a_registered_codec_serves_a_route_by_name() -> None:
    name = unique_name("upper")
    register_codec(name, UpperCodec())
    api = API()

    @api.websocket_route("/shout", receive_type=name, send_type="json")
    async def shout(ws: WebSocket) -> None:
        async with ws:
            async for message in ws:
                await ws.send({"heard": message})

    async with connect(api, "/shout") as client:
        await client.send_text("hello")
        assert await client.receive_json() == {"heard": "HELLO"}


async def test_a_registered_codec_encodes_what_the_app_sends() -> None:
    name = unique_name("upper")
    register_codec(name, UpperCodec())
    api = echo_api(value_type=name)
    async with connect(api, "/") as client:
        await client.send_text("MiXeD")
        # Decoded to upper case, then encoded to lower case.
        assert await client.receive_text() == "mixed"


@pytest.mark.parametrize(
    ("payload", "code"),
    [(b"\xff\xfe", 1007), (b"", 1007), ("a text frame", 1003)],
    ids=["undecodable", "rejected by decode", "wrong frame kind"],
)
async def test_a_custom_codec_gets_the_same_close_codes_as_built_ins(
    payload: str | bytes, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    async with connect(echo_api(value_type=CSVCodec()), "/") as client:
        if isinstance(payload, str):
            await client.send_text(payload)
        else:
            await client.send_bytes(payload)
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_bytes()
    assert info.value.code == code
    warnings = [r for r in caplog.records if r.name == "wsendpoints" and r.levelno == logging.WARNING]
    assert len(warnings) == 1


class CommandCodec:
    """JSON commands, checked as they are decoded: the error names the command it refuses."""

    frame: Frame = "text"

    def decode(self, data: str) -> dict[str, Any]:
        command = JSONCodec().decode(data)
        if command.get("do") not in ("start", "stop"):
            raise ValueError(f"unknown command: {command.get('do')}")
        return command  # type: ignore[no-any-return]

    def encode(self, value: Any) -> str:
        return JSONCodec().encode(value)


@pytest.mark.parametrize("endpoint", [False, True], ids=["view", "endpoint"])
async def test_a_decode_error_naming_a_lone_surrogate_still_closes_with_1007(
    endpoint: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # JSON may escape a lone surrogate, and the codec's message quotes what it read: the
    # client's bad input, so 1007 and a WARNING, not 1011 and a traceback.
    api = API()
    if endpoint:

        class Commands(WebSocketEndpoint):
            value_type = CommandCodec()

        api.add_websocket("/", Commands)
    else:
        api = echo_api(value_type=CommandCodec())
    async with connect(api, "/") as client:
        await client.send_text('{"do": "\\ud800"}')
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_text()
    assert (info.value.code, info.value.reason) == (1007, "unknown command: \\ud800")
    records = [r for r in caplog.records if r.name == "wsendpoints" and r.levelno >= logging.WARNING]
    assert [r.levelno for r in records] == [logging.WARNING]


async def test_a_codec_whose_decode_fails_otherwise_closes_with_1011_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with connect(echo_api(value_type=BrokenCodec()), "/") as client:
        await client.send_text("boom")
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_text()
    assert info.value.code == 1011
    errors = [r for r in caplog.records if r.name == "wsendpoints" and r.levelno == logging.ERROR]
    assert [type(r.exc_info[1]) for r in errors if r.exc_info] == [KeyError]


class ReturnsAsIs:
    """A codec with a bug: its encode returns what it was given, whatever that is."""

    frame: Frame = "bytes"

    def decode(self, data: bytes) -> bytes:
        return data

    def encode(self, value: Any) -> Any:
        return value


async def sent_as_is(value: Any) -> Message:
    """What a view sending ``value`` through `ReturnsAsIs` makes the server get first."""
    api = API()

    @api.websocket_route("/", value_type=ReturnsAsIs())
    async def view(ws: WebSocket) -> None:
        async with ws:
            await ws.send(value)

    async with connect(api, "/") as client:
        return await client.receive_event()


@pytest.mark.parametrize("value", [None, 42, ["a", "list"]], ids=["None", "int", "list"])
async def test_a_codec_whose_encode_returns_neither_str_nor_bytes_closes_with_1011_and_logs_it(
    value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Servers fail on such a frame in their own ways: a TypeError, a connection that hangs
    # (uvicorn's websockets-sansio with None), or 42 zero bytes on the wire (hypercorn with 42).
    event = await sent_as_is(value)
    assert (event["type"], event["code"]) == ("websocket.close", 1011)
    errors = [r for r in caplog.records if r.name == "wsendpoints" and r.levelno == logging.ERROR]
    [error] = [r.exc_info[1] for r in errors if r.exc_info]
    assert isinstance(error, TypeError)
    assert str(error) == f"ReturnsAsIs.encode returned {type(value).__name__}, not str or bytes"


@pytest.mark.parametrize("value", [bytearray(b"ab"), memoryview(b"ab")], ids=["bytearray", "memoryview"])
async def test_bytes_like_output_of_a_codec_is_sent_as_bytes(value: Any) -> None:
    event = await sent_as_is(value)
    assert event["type"] == "websocket.send"
    assert type(event["bytes"]) is bytes
    assert event["bytes"] == b"ab"


@pytest.mark.parametrize(("value_type", "value"), [("json", object()), ("text", 42), ("msgpack", {1, 2})])
async def test_sending_a_value_the_codec_cannot_encode_closes_with_1011(value_type: str, value: Any) -> None:
    api = API()

    @api.websocket_route("/", value_type=value_type)
    async def view(ws: WebSocket) -> None:
        async with ws:
            await ws.send(value)

    async with connect(api, "/") as client:
        event = await client.receive_event()
    assert (event["type"], event["code"]) == ("websocket.close", 1011)
