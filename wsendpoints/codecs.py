"""Codecs: how a WebSocket message becomes a Python value and back.

A codec is any object with three members (see `Codec`):

- ``frame``: which frame it reads, ``"text"``, ``"bytes"`` or ``"any"``.
  A frame of another kind closes the connection with 1003.
- ``decode(data)``: turns the frame's payload (``str`` for text frames, ``bytes``
  for binary ones) into a value. It raises ``ValueError`` for a payload it cannot
  decode, which closes the connection with 1007. Any other exception is a bug in
  the codec and closes with 1011.
- ``encode(value)``: turns a value into ``str`` (sent as a text frame) or
  ``bytes`` (sent as a binary frame). It raises ``TypeError`` for a value it
  cannot encode; that is the application's error and closes with 1011. So does
  an encode that returns anything else (``bytearray`` and ``memoryview`` go as
  ``bytes``).

Codecs are looked up by name once, when a route is registered, and their
methods are fetched once per connection; nothing is looked up per message. The
built-in codecs' methods are static: fetching them makes no bound method, so a
connection holds no object of its own for them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import msgpack
import ujson

try:
    import orjson
except ImportError:  # the fast extra is not installed: UJSONCodec is the JSON codec
    orjson = None  # type: ignore[assignment]

from .exceptions import ConfigurationError

__all__ = [
    "AutoCodec",
    "BytesCodec",
    "Codec",
    "Frame",
    "JSONCodec",
    "MsgPackCodec",
    "ORJSONCodec",
    "TextCodec",
    "UJSONCodec",
    "codec_names",
    "register_codec",
    "resolve_codec",
]

Frame = Literal["text", "bytes", "any"]
"""The kind of frame a codec reads: text, binary, or either."""
_FRAMES = ("text", "bytes", "any")


@runtime_checkable
class Codec(Protocol):
    """The codec protocol. Any object with these members is a codec."""

    # Read-only and typed `str`, not `Frame`: a codec class that says `frame = "text"`, as
    # the guide's do, is a `str` attribute to a type checker. `_check_codec` checks the value.
    @property
    def frame(self) -> str:
        """Which frames the codec reads: ``"text"``, ``"bytes"`` or ``"any"``.

        Any other value is refused with `ConfigurationError` when the codec is
        registered or a route is given it.
        """
        ...

    def decode(self, data: Any) -> Any:
        """Turn a received payload into a value; raise ``ValueError`` if it cannot."""
        ...

    def encode(self, value: Any) -> str | bytes:
        """Turn a value into a payload: ``str`` for a text frame, ``bytes`` for a binary one."""
        ...


class TextCodec:
    """Text frames as ``str``."""

    frame: Frame = "text"

    @staticmethod
    def decode(data: str) -> str:
        """Turn a received payload into a value; ``ValueError`` if it cannot."""
        return data

    @staticmethod
    def encode(value: Any) -> str:
        """Turn a value into a payload; ``TypeError`` if it cannot."""
        if type(value) is str or isinstance(value, str):
            return value
        # The route's codec is text unless it says otherwise: a dict sent there is the usual
        # slip, so the error names the fix (bytes are the other).
        if isinstance(value, (bytes, bytearray, memoryview)):
            fix = "to send binary frames, set value_type='bytes'"
        else:
            fix = "to send JSON, set value_type='json'"
        raise TypeError(
            f"the text codec sends str, not {type(value).__name__}; {fix} on the route or the endpoint class"
        )


class BytesCodec:
    """Binary frames as ``bytes``."""

    frame: Frame = "bytes"

    @staticmethod
    def decode(data: bytes) -> bytes:
        """Turn a received payload into a value; ``ValueError`` if it cannot."""
        return data

    @staticmethod
    def encode(value: Any) -> bytes:
        """Turn a value into a payload; ``TypeError`` if it cannot."""
        if type(value) is bytes or isinstance(value, bytes):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        raise TypeError(f"the bytes codec sends bytes, not {type(value).__name__}")


class AutoCodec:
    """Text frames as ``str`` and binary frames as ``bytes``, both ways.

    For relays and echo services that pass messages on as they came.
    """

    frame: Frame = "any"

    @staticmethod
    def decode(data: str | bytes) -> str | bytes:
        """Turn a received payload into a value; ``ValueError`` if it cannot."""
        return data

    @staticmethod
    def encode(value: Any) -> str | bytes:
        """Turn a value into a payload; ``TypeError`` if it cannot."""
        if isinstance(value, (str, bytes)):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        raise TypeError(f"the auto codec sends str or bytes, not {type(value).__name__}")


class UJSONCodec:
    """JSON in text frames, with ujson: the ``"json"`` codec unless orjson is installed."""

    frame: Frame = "text"

    # ujson.JSONDecodeError is a ValueError: exactly the "cannot decode" signal.
    # Bound as is, so that receiving calls ujson with no Python frame in between.
    decode = staticmethod(ujson.loads)

    @staticmethod
    def encode(value: Any) -> str:
        """Turn a value into a payload; ``TypeError`` if it cannot."""
        # `WebSocket.send` has this body inline: keep the two in step.
        # Text frames are UTF-8 already, so escaping non-ASCII or "/" only inflates them.
        try:
            # The flags go by position (ensure_ascii, encode_html_chars, escape_forward_slashes):
            # ujson parses keyword arguments slowly, ~0.35 µs a call for these two.
            return _ujson_dumps(value, False, False, False)
        except _UJSON_ENCODE_ERRORS as exc:
            raise _not_json(exc) from exc


_ujson_dumps = ujson.dumps
# What ujson raises for a value it cannot encode besides TypeError: a number too big,
# a structure too deep or circular.
_UJSON_ENCODE_ERRORS = (OverflowError, ValueError)


def _not_json(exc: Exception) -> TypeError:
    return TypeError(f"cannot encode as JSON: {exc}")


# ORJSONCodec's way out: what UJSONCodec does with a value is the reference.
_ujson_encode = UJSONCodec().encode

if orjson is not None:
    _orjson_loads = orjson.loads
    _orjson_dumps = orjson.dumps
    _OrjsonDecodeError = orjson.JSONDecodeError
    _OrjsonEncodeError = orjson.JSONEncodeError
    # ujson refuses datetimes and dataclasses; with these orjson refuses them too, and the
    # refusal goes to ujson like any other. No `default`: what orjson cannot encode must fail.
    _ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class ORJSONCodec:
    """JSON in text frames, with orjson: `UJSONCodec`'s behaviour, two to three times as fast.

    Needs orjson: ``pip install 'wsendpoints[fast]'``. It is the ``"json"`` codec when
    orjson is installed. What orjson refuses (non-string keys, integers wider than 64 bits,
    lone surrogates, NaN or leading zeros in a payload, ...) goes to ujson, so those values
    and payloads give what `UJSONCodec` gives, errors included. What remains different:
    NaN and infinities are sent as ``null``, integers wider than 64 bits are received as
    floats, ``uuid.UUID`` values and plain ``Enum`` members are sent rather than refused,
    and some floats are written differently (``0.00001`` for ``1e-5``), though read back
    the same. The guide's Codecs page has the details, under "Faster JSON".
    """

    frame: Frame = "text"

    def __init__(self) -> None:
        if orjson is None:
            raise ConfigurationError(
                "ORJSONCodec needs orjson, which the fast extra installs: pip install 'wsendpoints[fast]'"
            )

    @staticmethod
    def decode(data: str) -> Any:
        """Turn a received payload into a value; ``ValueError`` if it cannot."""
        try:
            return _orjson_loads(data)
        except _OrjsonDecodeError:
            pass
        # orjson reads strict JSON only; ujson also takes NaN, 01, raw tabs in strings, ...
        # Whatever it makes of the payload, a value or its error, is what UJSONCodec gives.
        # Called outside the except block, so its error does not chain orjson's.
        # (Integers wider than 64 bits never get here: orjson reads them as floats without
        # failing, and looking for them in the payload would cost every message.)
        return ujson.loads(data)

    @staticmethod
    def encode(value: Any) -> str:
        """Turn a value into a payload; ``TypeError`` if it cannot."""
        try:
            return _orjson_dumps(value, option=_ORJSON_OPTIONS).decode()
        except _OrjsonEncodeError:
            pass
        # Only failures pay for this: ujson stringifies non-string keys, writes integers
        # wider than 64 bits, nests deeper than 254, encodes Decimal, namedtuples, objects
        # with toDict or __json__ ... or refuses with its own error. (NaN, UUIDs and Enum
        # members never get here: orjson writes them, with no option to refuse them, and
        # looking for them in the value would cost every message.)
        return _ujson_encode(value)


JSONCodec: type[UJSONCodec] | type[ORJSONCodec] = UJSONCodec if orjson is None else ORJSONCodec
"""The class of the ``"json"`` codec: `ORJSONCodec` when orjson is installed, else `UJSONCodec`."""


class MsgPackCodec:
    """MessagePack in binary frames."""

    frame: Frame = "bytes"

    @staticmethod
    def decode(data: bytes) -> Any:
        """Turn a received payload into a value; ``ValueError`` if it cannot."""
        try:
            # Integer map keys are ordinary msgpack; unhashable ones still fail.
            return msgpack.unpackb(data, strict_map_key=False)
        except Exception as exc:
            # msgpack reports malformed input with several unrelated exception
            # types (ValueError, UnpackException, TypeError for unhashable keys);
            # the codec protocol has a single one for "cannot decode".
            raise ValueError(f"invalid msgpack payload: {str(exc) or type(exc).__name__}") from exc

    @staticmethod
    def encode(value: Any) -> bytes:
        """Turn a value into a payload; ``TypeError`` if it cannot."""
        # msgpack.packb builds a Packer (and its buffer) per call: reuse one per thread
        # (a Packer must not be shared between threads).
        try:
            packer = _packers.packer
        except AttributeError:
            packer = _packers.packer = msgpack.Packer()
        try:
            packed: bytes = packer.pack(value)
        except Exception as exc:
            del _packers.packer  # its buffer may have grown before the failure: see below
            if isinstance(exc, (OverflowError, ValueError)):
                # Out-of-range integers, lone surrogates: values msgpack cannot carry.
                raise TypeError(f"cannot encode as msgpack: {exc}") from exc
            raise
        if len(packed) > _PACKER_BUFFER:
            # The buffer grew to fit this message and a Packer never shrinks it: one large
            # message would keep its size (twice over) for the thread's lifetime. Start afresh.
            del _packers.packer
        return packed


_packers = threading.local()
_PACKER_BUFFER = 256 * 1024  # a Packer's buffer as it starts (msgpack's default buf_size)

_registry: dict[str, Codec] = {
    "text": TextCodec(),
    "bytes": BytesCodec(),
    "auto": AutoCodec(),
    "json": JSONCodec(),
    "msgpack": MsgPackCodec(),
}


def _frame(data: object, codec: Codec) -> tuple[str, str | bytes]:
    """The frame and payload for what ``codec.encode`` returned: ``("text", str)`` or ``("bytes", bytes)``.

    A ``str`` subclass (a StrEnum member) is text too. Servers fail on anything but
    ``str`` and ``bytes`` in their own ways (a TypeError, a connection that hangs,
    ``bytes(42)`` on the wire), so it is refused before it reaches them; ``bytearray``
    and ``memoryview`` go as ``bytes``, as `BytesCodec` sends them.
    """
    if isinstance(data, str):
        return "text", data
    if isinstance(data, bytes):
        return "bytes", data
    if isinstance(data, (bytearray, memoryview)):
        return "bytes", bytes(data)
    raise TypeError(f"{type(codec).__name__}.encode returned {type(data).__name__}, not str or bytes")


def codec_names() -> list[str]:
    """The names of every registered codec, sorted."""
    return sorted(_registry)


def register_codec(name: str, codec: Codec) -> None:
    """Register ``codec`` under ``name``, so routes can say ``value_type=name``.

    Names are global to the process; registering a name twice is refused.
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a codec name must be a non-empty string, not {name!r}")
    _check_codec(codec)
    if name in _registry:
        raise ConfigurationError(f"a codec named {name!r} is already registered")
    _registry[name] = codec


def resolve_codec(codec: str | Codec) -> Codec:
    """Return the codec a route option names: a registered name or a codec instance."""
    if isinstance(codec, str):
        try:
            return _registry[codec]
        except KeyError:
            raise ConfigurationError(
                f"unknown message type {codec!r}; expected one of {', '.join(codec_names())} "
                "or a codec instance"
            ) from None
    _check_codec(codec)
    return codec


def _check_codec(codec: object) -> None:
    if isinstance(codec, type):
        raise ConfigurationError(f"pass a codec instance, not the class {codec.__name__}")
    if not isinstance(codec, Codec):
        raise ConfigurationError(
            f"{codec!r} is not a codec: it needs a 'frame' attribute and 'encode'/'decode' methods"
        )
    if codec.frame not in _FRAMES:
        raise ConfigurationError(
            f"codec {codec!r} has frame {codec.frame!r}; expected one of {', '.join(_FRAMES)}"
        )


def check_codec_names(options: Mapping[str, object], where: str) -> None:
    """Refuse ``value_type`` beside ``receive_type`` or ``send_type`` in one place.

    ``value_type`` sets both directions, so the other would be silently ignored.
    """
    both = sorted(options.keys() & {"receive_type", "send_type"})
    if options.get("value_type") is not None and both:
        raise ConfigurationError(
            f"{where} names value_type and {' and '.join(both)}: value_type sets both directions; "
            "give value_type alone, or receive_type and send_type"
        )


def message_codecs(
    value_type: str | Codec | None, receive_type: str | Codec, send_type: str | Codec
) -> tuple[Codec, Codec]:
    """The (receive, send) codecs that route options name; ``value_type`` sets both."""
    if value_type is not None:
        receive_type = send_type = value_type
    return resolve_codec(receive_type), resolve_codec(send_type)
