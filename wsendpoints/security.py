"""The origin policy: which browser pages may open a WebSocket to this server.

Why it matters: browsers send cookies with a WebSocket handshake whatever page
opens it, and WebSockets have no CORS. Without a check, any site a logged-in
user visits can open a connection as that user (cross-site WebSocket hijacking).

The rule, checked before anything else runs:

- a handshake without an ``Origin`` header passes (it is not from a browser page,
  and a non-browser client can send any header it likes anyway);
- a page served from the same host and port as the WebSocket passes;
- ``allowed_origins`` adds more: exact origins such as ``"https://app.example.com"``,
  or ``"*"`` for every origin;
- everything else is refused with HTTP 403.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .exceptions import ConfigurationError

__all__ = ["AnyOrigin", "OriginPolicy"]

AnyOrigin = "*"
"""The ``allowed_origins`` entry that lets every origin in."""


class OriginPolicy:
    """Decides whether a handshake's ``Origin`` may connect."""

    __slots__ = ("_allowed", "_anyone")

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        allowed = [_allowed_origin(origin) for origin in allowed]
        self._anyone = AnyOrigin in allowed
        self._allowed = frozenset(allowed)

    def allows(self, scope: Mapping[str, Any]) -> bool:
        """Whether the handshake in ``scope`` may connect."""
        if self._anyone:
            return True
        origin = host = None
        for name, value in scope.get("headers", ()):
            if name == b"origin":
                origin = value.decode("latin-1").lower()
            elif name == b"host":
                host = value.decode("latin-1").lower()
        if origin is None:
            return True
        scheme, netloc = _split(origin)
        if (f"{scheme}://{netloc}" if netloc else origin) in self._allowed:
            return True
        # Same origin: the page's host[:port] is the one the handshake went to.
        # The scheme is left out on purpose: behind a TLS-terminating proxy the
        # page is https while the request reaching us is plain ws.
        return bool(netloc) and host is not None and _without_default_port(scheme, host) == netloc

    def __repr__(self) -> str:
        return f"OriginPolicy({sorted(self._allowed)!r})"


# Browsers leave the default port out of an origin; a Host header or a configured entry may not.
_DEFAULT_PORTS = {"http": "80", "ws": "80", "https": "443", "wss": "443"}


def _without_default_port(scheme: str, netloc: str) -> str:
    host, colon, port = netloc.rpartition(":")
    return host if colon and port == _DEFAULT_PORTS.get(scheme) else netloc


def _split(origin: str) -> tuple[str, str]:
    """An origin's scheme and host[:port], the port left out if it is the scheme's default."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return "", ""
    return parts.scheme, _without_default_port(parts.scheme, parts.netloc)


def _allowed_origin(entry: str) -> str:
    """An ``allowed_origins`` entry as handshakes' origins are compared with it.

    An entry that is not an origin would never match: it is refused here rather
    than leave every browser page it was meant for refused with 403.
    """
    origin = entry.rstrip("/").lower()
    if origin in (AnyOrigin, "null"):  # "null": pages with an opaque origin (file://, sandboxes)
        return origin
    try:
        parts = urlsplit(origin)
        valid = (
            bool(parts.scheme and parts.hostname)
            and (parts.port is None or parts.port > 0)
            and not (parts.username or parts.path or parts.query or parts.fragment)
        )
    except ValueError:  # a port that is no port
        valid = False
    if not valid:
        raise ConfigurationError(
            f"allowed_origins entry {entry!r} is not an origin: write scheme://host[:port]"
            " (such as 'https://app.example.com'), '*' or 'null'"
        )
    return f"{parts.scheme}://{_without_default_port(parts.scheme, parts.netloc)}"


def origin_of(scope: Mapping[str, Any]) -> str | None:
    """The handshake's ``Origin`` header, as it came (None without one)."""
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def origin_policy(allowed: Iterable[str] | None) -> OriginPolicy | None:
    """The policy for a route's ``allowed_origins`` (None: the app's policy applies)."""
    if allowed is None:
        return None
    if isinstance(allowed, str):
        allowed = [allowed]
    return OriginPolicy(allowed)
