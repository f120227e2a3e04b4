"""Calls the protocol does not allow, behind real servers, seen by a real client (`websockets`).

Left to the servers, a subprotocol the client did not offer crashed hypercorn on trio
(every client cut off) and failed the handshake with no log elsewhere; a close code
that cannot be sent dropped the connection on uvicorn and went out changed on
hypercorn. wsendpoints refuses them first, so every server answers the same way.
Also here: the client's close codes as each server reports them, and the non-ASCII bytes of a
handshake's cookies as the app reads them.
The client is asyncio-only; the servers cover trio too (see `conftest.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .servers import Running, serve

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def running(server: str) -> Iterator[Running]:
    with serve(server, "tests.integration.protocol_app:api") as running:
        yield running


def open_ws(url: str, subprotocols: list[str] | None = None) -> connect:
    return connect(url, subprotocols=subprotocols, open_timeout=TIMEOUT, close_timeout=TIMEOUT)  # type: ignore[arg-type]


async def closed_with(url: str) -> tuple[int, str]:
    """The code and reason of the close frame the server sends right after the handshake."""
    async with open_ws(url) as ws:
        with anyio.fail_after(TIMEOUT), pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None, "no close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_a_subprotocol_the_client_did_not_offer_is_a_500_and_the_server_goes_on(
    running: Running,
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with open_ws(f"{running.url}/subprotocol", subprotocols=["chat"]):
            pass
    assert refused.value.response.status_code == 500
    async with open_ws(f"{running.url}/echo") as ws:
        await ws.send("still serving")
        with anyio.fail_after(TIMEOUT):
            assert await ws.recv() == "still serving"
    assert "cannot accept subprotocol 'not-offered'" in running.output()


@pytest.mark.parametrize("code", [1005, 1006, 5000])
async def test_a_close_code_that_cannot_be_sent_closes_with_1011(running: Running, code: int) -> None:
    assert await closed_with(f"{running.url}/close/{code}") == (1011, "")


async def test_a_close_reason_over_123_bytes_closes_with_1011(running: Running) -> None:
    assert await closed_with(f"{running.url}/close/4000?reason={quote('é' * 62)}") == (1011, "")


async def test_a_close_reason_of_123_bytes_arrives_whole(running: Running) -> None:
    reason = "é" * 61 + "!"
    assert await closed_with(f"{running.url}/close/4999?reason={quote(reason)}") == (4999, reason)


# What on_disconnect sees when the client closes with a code: the servers read it for the app.
# uvicorn's wsproto stack does not know 1014 and fails the close as a protocol error (1002);
# hypercorn reports 1006 for any close the client starts (docs/close-codes.md says both).
_CLIENT_CODES = [1002, 1010, 1014, 3000, 4000]
_SEEN = {
    "uvicorn-websockets": _CLIENT_CODES,
    "uvicorn-sansio": _CLIENT_CODES,
    "uvicorn-wsproto": [1002, 1010, 1002, 3000, 4000],
    "hypercorn-trio": [1006] * len(_CLIENT_CODES),
}


async def test_a_client_s_close_code_reaches_on_disconnect(running: Running, server: str) -> None:
    for code in _CLIENT_CODES:
        async with open_ws(f"{running.url}/record") as ws:
            await ws.close(code)
    seen: list[int] = []
    with anyio.fail_after(TIMEOUT):
        while len(seen) < len(_CLIENT_CODES):  # on_disconnect may run after the client saw the close
            async with open_ws(f"{running.url}/recorded") as ws:
                seen += json.loads(await ws.recv())
    assert sorted(seen) == sorted(_SEEN[server])


# uvicorn's legacy implementation (0.54) encodes header values as latin-1 when websockets is 17 or
# later, while websockets' legacy parser, which it runs on, still decodes them with surrogate escapes:
# any non-ASCII header byte is a UnicodeEncodeError in uvicorn's process_request, an HTTP 500.
# Documented in docs/deployment.md, Server notes.
UVICORN_LEGACY_NON_ASCII = "uvicorn --ws websockets, websockets >= 17: non-ASCII header bytes give HTTP 500"


async def test_a_utf8_cookie_reads_as_utf8_and_a_legacy_one_as_it_came(
    running: Running, server: str, request: pytest.FixtureRequest
) -> None:
    if server == "uvicorn-websockets":
        request.applymarker(pytest.mark.xfail(reason=UVICORN_LEGACY_NON_ASCII))

    # Browsers send a cookie's characters as UTF-8; servers hand the header over byte for byte.
    # websockets writes header values as ISO-8859-1: each character of these is one byte on the wire.
    def as_utf8(text: str) -> str:
        return text.encode().decode("latin-1")

    legacy = "\xe9t\xe9"  # latin-1 bytes that are not UTF-8
    header = f"name={as_utf8('café')}; legacy={legacy}; emoji={as_utf8('😀')}"
    async with connect(
        f"{running.url}/cookies", additional_headers={"Cookie": header}, open_timeout=TIMEOUT
    ) as ws:
        with anyio.fail_after(TIMEOUT):
            cookies = json.loads(await ws.recv())
    assert cookies == {"name": "café", "legacy": "été", "emoji": "😀"}
