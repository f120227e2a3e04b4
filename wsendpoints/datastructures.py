"""Read-only views of the handshake request: headers, query parameters, client address."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple
from urllib.parse import parse_qsl

__all__ = ["Address", "Headers", "QueryParams"]


class Address(NamedTuple):
    """The client's address: ``host`` and ``port``."""

    host: str
    port: int


class _MultiMapping(Mapping[str, str]):
    """A read-only mapping that keeps repeated keys; ``[key]`` gives the last value."""

    __slots__ = ("_items", "_last")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = [(self._key(key), value) for key, value in items]
        self._last = dict(self._items)

    def _key(self, key: str) -> str:
        return key

    def __getitem__(self, key: str) -> str:
        return self._last[self._key(key)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._last)

    def __len__(self) -> int:
        return len(self._last)

    def getlist(self, key: str) -> list[str]:
        """Every value of ``key``, in the order the client sent them."""
        key = self._key(key)
        return [value for name, value in self._items if name == key]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(key, value)`` pair, repeated keys included."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


class Headers(_MultiMapping):
    """The handshake's HTTP headers; keys are case-insensitive."""

    __slots__ = ()

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]] | None) -> Headers:
        # HTTP header bytes are latin-1 by definition (RFC 9110, 5.5).
        return cls([(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw or ()])

    def _key(self, key: str) -> str:
        return key.lower() if isinstance(key, str) else key

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._last


class QueryParams(_MultiMapping):
    """The query string's parameters."""

    __slots__ = ()

    @classmethod
    def from_query_string(cls, query_string: bytes) -> QueryParams:
        return cls(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))


def parse_cookies(headers: Iterable[str]) -> dict[str, str]:
    """The cookies of ``Cookie`` header values: ``name=value`` pairs separated by ``;``.

    Lenient as browsers are: a pair without ``=`` or a name is skipped rather than failing
    the rest, as the standard library's strict parser does. A value in double quotes loses
    them (RFC 6265 allows them); nothing is percent-decoded, since cookies are not. A name
    sent twice (two paths) keeps its first value, which browsers send for the most specific
    path.

    The headers are text as ASGI servers decode them, byte for byte (latin-1). Browsers send
    a cookie's characters as UTF-8, so a cookie that is valid UTF-8 is read as such
    (``café``, not ``cafÃ©``); any other stays as it came, and the others in its header
    read as they would without it.
    """
    cookies: dict[str, str] = {}
    for header in headers:
        for pair in header.split(";"):  # a ";" byte is never part of a UTF-8 character
            if not pair.isascii():
                with contextlib.suppress(UnicodeError):
                    pair = pair.encode("latin-1").decode()
            name, equals, value = pair.partition("=")
            name, value = name.strip(), value.strip()
            if not equals or not name:
                continue
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, value)
    return cookies
