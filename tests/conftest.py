"""Every async test runs twice, on asyncio and on trio (the anyio pytest plugin)."""

from __future__ import annotations

import gc
import inspect
import logging
from collections.abc import Callable, Iterator

import pytest

from wsendpoints import WebSocket

BACKENDS = ["asyncio", "trio"]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """For sync tests: the event loop the in-process TestClient runs the app on."""
    return request.param  # type: ignore[no-any-return]


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # Marked on the function itself, before collection, so that the anyio
    # plugin parametrizes it like any explicitly marked test.
    if name.startswith("test") and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


@pytest.fixture(autouse=True)
def _wsendpoints_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wsendpoints")


@pytest.fixture
def websockets_alive() -> Iterator[Callable[[], int]]:
    """How many `WebSocket` objects are alive, with the garbage collector off for the test.

    What reference counting alone frees: a server with many short connections must not
    keep each ended one, with its scope and frames, until the next full collection.
    """
    gc.collect()
    gc.disable()
    try:
        yield lambda: sum(1 for o in gc.get_objects() if type(o) is WebSocket)
    finally:
        gc.enable()
