"""Server fixtures: each app is served once per module by every server in `servers.SERVERS`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from .servers import SERVERS, serve


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> str:
    """The name of the server to run: uvicorn (asyncio) with each WebSocket stack, hypercorn (trio)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def demo_url(server: str) -> Iterator[str]:
    with serve(server, "examples.demo:api") as running:
        yield running.url


@pytest.fixture(scope="module")
def guide_url(server: str) -> Iterator[Callable[[str], str]]:
    """``guide_url("basic_echo")``: the URL of that guide example, served on first use."""
    with ExitStack() as servers:
        urls: dict[str, str] = {}

        def url(example: str) -> str:
            if example not in urls:
                urls[example] = servers.enter_context(serve(server, f"examples.guide.{example}:api")).url
            return urls[example]

        yield url
