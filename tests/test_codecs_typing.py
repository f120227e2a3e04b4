"""A codec written the way the Codecs page writes one type-checks wherever a codec goes, and works.

mypy checks this module (CI runs it over tests/). The page's codec says ``frame = "text"``, which
mypy reads as a plain ``str``, so the `Codec` protocol must not ask for the ``Frame`` literal.
"""

from __future__ import annotations

import uuid

from wsendpoints import API, Codec, WebSocket, WebSocketEndpoint, register_codec
from wsendpoints.codecs import resolve_codec
from wsendpoints.testing import connect


class CSV:
    """docs/codecs.md's codec, as the page writes it: no annotation on ``frame``."""

    frame = "text"

    def decode(self, data: str) -> list[str]:
        if "\n" in data:
            raise ValueError("one line per message")
        return data.split(",")

    def encode(self, value: list[str]) -> str:
        return ",".join(value)


class Columns(WebSocketEndpoint):
    value_type = CSV()

    async def on_receive(self, ws: WebSocket, message: list[str]) -> None:
        await ws.send([cell.upper() for cell in message])


def columns_api() -> API:
    api = API()
    api.add_websocket("/endpoint", Columns)

    @api.websocket_route("/view", value_type=CSV())
    async def columns(ws: WebSocket) -> None:
        async with ws:
            async for row in ws:
                await ws.send([cell.upper() for cell in row])

    return api


def test_the_pages_codec_is_a_codec() -> None:
    codec: Codec = CSV()
    assert isinstance(codec, Codec)
    name = f"csv-{uuid.uuid4().hex[:8]}"  # the registry is global to the process
    register_codec(name, codec)
    assert resolve_codec(name) is codec


async def test_the_pages_codec_serves_an_endpoint_and_a_view() -> None:
    api = columns_api()
    for path in ("/endpoint", "/view"):
        async with connect(api, path) as ws:
            await ws.send_text("a,b")
            assert await ws.receive_text() == "A,B"
