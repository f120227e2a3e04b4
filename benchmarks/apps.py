"""The echo applications under test, one per (app, codec), all serving ``/ws``.

Every app echoes each message back after decoding and re-encoding it with its
codec, so the work is the same everywhere and only the framework differs:

- ``raw``: a hand-written ASGI loop that echoes the frame untouched: the floor.
- ``raw+ujson``/``raw+orjson``/``raw+msgpack``: the same loop decoding and
  re-encoding with the library: the floor for a codec.
- ``shape-endpoint``/``shape-view``: wsendpoints' API with nothing in it, the
  coroutines an endpoint's or a view's message goes through and nothing else:
  the floor for the API's shape (`benchmarks.shapes`).
- ``wse-endpoint``: a wsendpoints `WebSocketEndpoint` whose ``on_receive`` sends.
- ``wse-view``: a wsendpoints function view, ``async with ws: async for m in ws``.
- ``starlette``/``fastapi``/``litestar``: the peers, written the way their docs
  show. They use their own JSON libraries (the stdlib's; msgspec for Litestar)
  and have no msgpack mode, so their msgpack echo calls msgpack by hand.

A ``+orjson`` suffix on a wsendpoints app means its JSON codec uses orjson.
`build` takes the wsendpoints module to use, so a modified copy of the package
can run beside the installed one: ``wse-endpoint@exp`` is ``wse-endpoint`` served
by the copy labelled ``exp`` (see ``--candidate``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, cast

import msgpack
import orjson
import ujson

from wsendpoints.types import ASGIApp, Receive, Scope, Send

from .payloads import PAYLOADS
from .shapes import SHAPES, build_shape

if TYPE_CHECKING:
    import wsendpoints


PEERS = ("starlette", "fastapi", "litestar")
WSE = ("wse-endpoint", "wse-view")

APPS: dict[str, tuple[str, ...]] = {
    "text": ("raw", *SHAPES, *WSE, *PEERS),
    "bytes": ("raw", *SHAPES, *WSE, *PEERS),
    "json": (
        "raw",
        "raw+ujson",
        "raw+orjson",
        *SHAPES,
        *WSE,
        "wse-endpoint+orjson",
        "wse-view+orjson",
        *PEERS,
    ),
    "msgpack": ("raw", "raw+msgpack", *SHAPES, *WSE, *PEERS),
}
"""codec -> the apps measured for it, floors first."""


def floor(app: str, codec: str) -> str:
    """The app whose cost ``app`` is compared with: raw, or raw with the same codec library."""
    app = split(app)[0]
    if codec == "json" and app != "raw":
        return "raw+orjson" if app.endswith("+orjson") else "raw+ujson"
    if codec == "msgpack" and app != "raw":
        return "raw+msgpack"
    return "raw"


def build(app: str, codec: str, wse: ModuleType | None = None) -> ASGIApp:
    """A fresh ASGI application ``app`` echoing ``codec`` messages at ``/ws``."""
    if wse is None:
        import wsendpoints

        wse = wsendpoints
    base, _, variant = app.partition("+")
    if base == "raw":
        return _raw(codec, variant)
    if base in SHAPES:
        return build_shape("endpoint" if base == "shape-endpoint" else "view", codec)
    if base in WSE:
        value_type = _wse_codec(wse, codec, variant)
        return _wse_endpoint(wse, value_type) if base == "wse-endpoint" else _wse_view(wse, value_type)
    builders = {"starlette": _starlette, "fastapi": _fastapi, "litestar": _litestar}
    return builders[base](codec)


def parse_candidates(specs: list[str] | None) -> dict[str, str]:
    """``[LABEL=]PATH`` options -> {label: path}; the label defaults to the directory's name."""
    candidates = {}
    for spec in specs or []:
        label, _, path = spec.rpartition("=")
        package = _package_dir(path)
        candidates[label or package.parent.name] = str(package)
    return candidates


def split(app: str) -> tuple[str, str | None]:
    """``"wse-view@exp"`` -> ``("wse-view", "exp")``; ``"raw"`` -> ``("raw", None)``."""
    name, _, label = app.partition("@")
    return name, label or None


def _package_dir(path: str | Path) -> Path:
    package = Path(path).resolve()
    if (package / "wsendpoints" / "__init__.py").exists():
        package = package / "wsendpoints"
    if not (package / "__init__.py").exists():
        raise ImportError(f"no wsendpoints package at {path}")
    return package


def load_candidate(path: str | Path) -> ModuleType:
    """Import the wsendpoints package at ``path`` under a name of its own, beside the installed one.

    The package uses relative imports only, so a copy loads under another name.
    """
    package = _package_dir(path)
    name = "wse_candidate_" + "".join(c if c.isalnum() else "_" for c in str(package))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {package}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- raw ASGI ------------------------------------------------------------------------


def _raw(codec: str, library: str) -> ASGIApp:
    key = PAYLOADS[codec][0]
    if not library:

        async def echo(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "websocket":
                return
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                await send({"type": "websocket.send", key: message[key]})

        return echo
    # Each floor calls its library inline: the plainest, fastest code a hand-written app
    # would have that sends the same frames as the framework's codec. For ujson that means
    # the same flags (no escaping of non-ASCII or "/", passed by position as the codec does:
    # ujson's keyword arguments alone cost ~0.35 µs a call); its defaults would be ~0.07 µs
    # faster and send longer frames. For msgpack it means one Packer per app, as the codec
    # keeps one per thread: `msgpack.packb` builds a Packer and its buffer per call, ~0.25 µs
    # a message more for the same bytes.
    if library == "ujson":

        async def echo_ujson(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "websocket":
                return
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                value = ujson.loads(message["text"])
                await send({"type": "websocket.send", "text": ujson.dumps(value, False, False, False)})

        return echo_ujson
    if library == "orjson":

        async def echo_orjson(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "websocket":
                return
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                value = orjson.loads(message["text"])
                await send({"type": "websocket.send", "text": orjson.dumps(value).decode()})

        return echo_orjson
    if library == "msgpack":
        pack = msgpack.Packer().pack  # an app is served by one thread

        async def echo_msgpack(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "websocket":
                return
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                value = msgpack.unpackb(message["bytes"])
                await send({"type": "websocket.send", "bytes": pack(value)})

        return echo_msgpack
    raise ValueError(f"no raw app with {library!r}")


# -- wsendpoints ---------------------------------------------------------------------


def _wse_codec(wse: ModuleType, codec: str, library: str) -> Any:
    """The value_type for ``codec``: JSON names its library's codec, since "json" may be either."""
    if codec != "json":
        return codec
    codecs = wse.codecs
    if library == "orjson":
        if not hasattr(codecs, "ORJSONCodec"):
            raise ValueError(f"the wsendpoints at {wse.__file__} has no ORJSONCodec: no +orjson apps")
        return codecs.ORJSONCodec()
    # Copies from before ORJSONCodec: their "json" is ujson.
    return codecs.UJSONCodec() if hasattr(codecs, "UJSONCodec") else "json"


def json_codec_names(wse: ModuleType) -> dict[str, str]:
    """Which class each wsendpoints JSON variant ran with, for the report."""
    names = {}
    for library in ("ujson", "orjson"):
        codec = _wse_codec(wse, "json", library)
        codec = wse.codecs.resolve_codec(codec)
        names[library] = f"{type(codec).__module__}.{type(codec).__qualname__}"
    return names


def _wse_endpoint(wse: ModuleType, value_type: Any) -> ASGIApp:
    class Echo(wse.WebSocketEndpoint):  # type: ignore[name-defined,misc]
        async def on_receive(self, ws: Any, message: Any) -> None:
            await ws.send(message)

    api = wse.API()
    api.add_websocket("/ws", Echo, value_type=value_type)
    return api  # type: ignore[no-any-return]


def _wse_view(wse: ModuleType, value_type: Any) -> ASGIApp:
    # A candidate copy's API has the installed one's interface.
    api = cast("wsendpoints.API", wse.API())

    @api.websocket_route("/ws", value_type=value_type)
    async def echo(ws: Any) -> None:
        async with ws:
            async for message in ws:
                await ws.send(message)

    return api


# -- peers ---------------------------------------------------------------------------


def _starlette(codec: str) -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.endpoints import WebSocketEndpoint
    from starlette.routing import WebSocketRoute

    encodings: dict[str, Literal["text", "bytes", "json"]] = {
        "text": "text",
        "bytes": "bytes",
        "json": "json",
        "msgpack": "bytes",
    }

    class Echo(WebSocketEndpoint):
        encoding = encodings[codec]

        async def on_receive(self, websocket: Any, data: Any) -> None:
            if codec == "text":
                await websocket.send_text(data)
            elif codec == "bytes":
                await websocket.send_bytes(data)
            elif codec == "json":
                await websocket.send_json(data)
            else:
                await websocket.send_bytes(msgpack.packb(msgpack.unpackb(data)))

    return Starlette(routes=[WebSocketRoute("/ws", Echo)])


def _fastapi(codec: str) -> ASGIApp:
    from fastapi import FastAPI, WebSocket, WebSocketDisconnect

    app = FastAPI()

    # One handler per codec, as a FastAPI user would write it (no branch per message).
    async def echo_text(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            pass

    async def echo_bytes(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_bytes(await websocket.receive_bytes())
        except WebSocketDisconnect:
            pass

    async def echo_json(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_json(await websocket.receive_json())
        except WebSocketDisconnect:
            pass

    async def echo_msgpack(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                value = msgpack.unpackb(await websocket.receive_bytes())
                await websocket.send_bytes(msgpack.packb(value))
        except WebSocketDisconnect:
            pass

    handler = {"text": echo_text, "bytes": echo_bytes, "json": echo_json, "msgpack": echo_msgpack}[codec]
    # FastAPI injects by annotation, and this module's postponed annotations are strings
    # it cannot resolve for a class imported inside the function: give it the class itself.
    handler.__annotations__["websocket"] = WebSocket
    app.add_api_websocket_route("/ws", handler)
    return app


def _litestar(codec: str) -> ASGIApp:
    from litestar import Litestar
    from litestar.handlers import WebsocketListener

    mode: Literal["text", "binary"] = "text" if PAYLOADS[codec][0] == "text" else "binary"

    # Litestar reads the annotations to pick its decoding, so each codec gets its class.
    # (The ignores are for mypy where the bench extra, and so Litestar, is not installed.)
    class EchoText(WebsocketListener):  # type: ignore[misc, unused-ignore]
        path = "/ws"
        receive_mode = send_mode = mode

        async def on_receive(self, data: str) -> str:
            return data

    class EchoBytes(WebsocketListener):  # type: ignore[misc, unused-ignore]
        path = "/ws"
        receive_mode = send_mode = mode

        async def on_receive(self, data: bytes) -> bytes:
            return data

    class EchoJSON(WebsocketListener):  # type: ignore[misc, unused-ignore]
        path = "/ws"
        receive_mode = send_mode = mode

        async def on_receive(self, data: dict) -> dict:  # type: ignore[type-arg]
            return data

    class EchoMsgPack(WebsocketListener):  # type: ignore[misc, unused-ignore]
        path = "/ws"
        receive_mode = send_mode = mode

        async def on_receive(self, data: bytes) -> bytes:
            return msgpack.packb(msgpack.unpackb(data))  # type: ignore[no-any-return]

    listener = {"text": EchoText, "bytes": EchoBytes, "json": EchoJSON, "msgpack": EchoMsgPack}[codec]
    return cast(ASGIApp, Litestar(route_handlers=[listener], logging_config=None))
