"""A real redis-server for the ``redis://`` backend tests, one per session (see `tests.redis_server`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..redis_server import RedisServer


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server
