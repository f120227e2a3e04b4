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

__all__ = ["AnyOrigin", "OriginPolicy", "origin_policy"]

AnyOrigin = "*"
"""The ``allowed_origins`` entry that lets every origin in."""


class OriginPolicy:
    """Decides whether a handshake's ``Origin`` may connect."""

    __slots__ = ("_allowed", "_anyone")

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        allowed = [origin.rstrip("/").lower() for origin in allowed]
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
        if origin is None or origin in self._allowed:
            return True
        # Same origin: the page's host[:port] is the one the handshake went to.
        # The scheme is left out on purpose: behind a TLS-terminating proxy the
        # page is https while the request reaching us is plain ws.
        return host is not None and urlsplit(origin).netloc == host

    def __repr__(self) -> str:
        return f"OriginPolicy({sorted(self._allowed)!r})"


def origin_policy(allowed: Iterable[str] | None) -> OriginPolicy | None:
    """The policy for a route's ``allowed_origins`` (None: the app's policy applies)."""
    if allowed is None:
        return None
    if isinstance(allowed, str):
        allowed = [allowed]
    return OriginPolicy(allowed)
