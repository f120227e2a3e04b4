"""Path patterns, converters and matching.

A pattern is a path with ``{name}`` or ``{name:converter}`` segments::

    /rooms/{room}            room: str, one path segment
    /users/{id:int}          id: int
    /files/{rest:path}       rest: str, the rest of the path, slashes included

A converter is an object with a ``regex`` (what it matches) and a
``convert(text)`` that returns the value or raises ``ValueError``; a value
that fails its converter means the route does not match. Built in: ``str``,
``int``, ``float``, ``uuid``, ``path``; `register_converter` adds more.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from .exceptions import ConfigurationError
from .security import origin_policy
from .types import ASGIApp, Scope

__all__ = [
    "Converter",
    "Mount",
    "Route",
    "register_converter",
]


class Converter(Protocol):
    """What ``register_converter`` takes: a ``regex`` and a ``convert`` that may refuse."""

    regex: str

    def convert(self, value: str) -> Any:
        """The value for ``value``; ``ValueError`` if it is not one."""
        ...


class _Converter:
    def __init__(self, regex: str, convert: Callable[[str], Any]) -> None:
        self.regex = regex
        self.convert = convert


_converters: dict[str, Converter] = {
    "str": _Converter(r"[^/]+", str),
    "int": _Converter(r"[0-9]+", int),
    "float": _Converter(r"[0-9]+(?:\.[0-9]+)?", float),
    "uuid": _Converter(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", uuid.UUID
    ),
    "path": _Converter(r"(?s:.*)", str),
}

_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})
_PARAM = re.compile(r"{([^{}:]*)(?::([^{}]*))?}")


def register_converter(name: str, converter: Converter) -> None:
    """Make ``{value:name}`` available in every pattern. Names are global; twice is refused."""
    if name in _converters:
        raise ConfigurationError(f"a path converter named {name!r} is already registered")
    if not isinstance(getattr(converter, "regex", None), str) or not callable(
        getattr(converter, "convert", None)
    ):
        raise ConfigurationError(f"{converter!r} is not a converter: it needs 'regex' and 'convert'")
    try:
        # Compiled inside a group, as routes use it: an inline global flag ("(?i)") or a
        # back-reference to group 1 compiles alone but not there.
        groups = re.compile(f"({converter.regex})").groupindex
    except re.error as exc:
        raise ConfigurationError(
            f"converter {name!r} has an invalid regex {converter.regex!r}: {exc.msg}"
        ) from None
    if groups:
        raise ConfigurationError(f"converter {name!r}: its regex may not have named groups")
    _converters[name] = converter


class Route:
    """A WebSocket route: a compiled pattern and the ASGI app that serves it."""

    def __init__(self, path: str, app: ASGIApp) -> None:
        if not path.startswith("/"):
            raise ConfigurationError(f"route path {path!r} must start with '/'")
        self.path = path
        self.app = app
        # The endpoint's or view's own origin policy; None defers to the API's.
        self.origins = origin_policy(getattr(app, "allowed_origins", None))
        self._regex, self._converters = _compile(path)

    @property
    def param_names(self) -> list[str]:
        """The names of the pattern's parameters, in order."""
        return list(self._converters)

    def match(self, path: str) -> Mapping[str, Any] | None:
        """The converted parameters if ``path`` matches, else None.

        A pattern without parameters gives one shared, read-only empty mapping:
        every connection to it keeps a dict fewer in its scope.
        """
        found = self._regex.match(path)
        if found is None:
            return None
        if not self._converters:
            return _NO_PARAMS
        params = {}
        for name, text in found.groupdict().items():
            try:
                params[name] = self._converters[name].convert(text)
            except ValueError:
                return None
        return params

    def __repr__(self) -> str:
        return f"Route({self.path!r}, {self.app!r})"


class Mount:
    """An ASGI application mounted under a path prefix, for HTTP and optionally WebSocket."""

    def __init__(
        self,
        prefix: str,
        app: ASGIApp,
        *,
        websocket: bool = False,
        allowed_origins: Iterable[str] | None = None,
    ) -> None:
        prefix = prefix.rstrip("/")
        if prefix and not prefix.startswith("/"):
            raise ConfigurationError(f"mount prefix {prefix!r} must start with '/'")
        self.prefix = prefix
        self.app = app
        self.websocket = websocket
        # The mount's own origin policy for its WebSockets; None defers to the API's.
        self.origins = origin_policy(allowed_origins)

    def scope(self, scope: Scope) -> Scope:
        """The scope ``app`` sees: ``root_path`` extended by the prefix (the ASGI convention)."""
        return {**scope, "root_path": scope.get("root_path", "") + self.prefix}

    def match(self, path: str) -> bool:
        """Whether ``path`` is under this mount's prefix."""
        prefix = self.prefix
        return not prefix or path == prefix or path.startswith(prefix + "/")

    def __repr__(self) -> str:
        return f"Mount({self.prefix!r}, {self.app!r})"


def _compile(path: str) -> tuple[re.Pattern[str], dict[str, Converter]]:
    pattern = "^"
    converters: dict[str, Converter] = {}
    end = 0
    for param in _PARAM.finditer(path):
        name, kind = param.group(1), param.group(2)
        if kind is None:
            kind = "str"
        if not name.isidentifier():
            raise ConfigurationError(f"{param.group(0)!r} in {path!r}: {name!r} is not a valid name")
        if name in converters:
            raise ConfigurationError(f"{path!r} uses the parameter {name!r} twice")
        if kind not in _converters:
            raise ConfigurationError(
                f"{path!r}: unknown path converter {kind!r}; expected one of {', '.join(sorted(_converters))}"
            )
        converters[name] = _converters[kind]
        pattern += _literal(path, path[end : param.start()]) + f"(?P<{name}>{converters[name].regex})"
        end = param.end()
    return re.compile(pattern + _literal(path, path[end:]) + r"\Z"), converters


def _literal(path: str, text: str) -> str:
    if "{" in text or "}" in text:
        raise ConfigurationError(f"{path!r} has an unbalanced brace")
    return re.escape(text)
