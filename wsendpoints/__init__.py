"""wsendpoints: WebSocket endpoints on ASGI, for asyncio and trio."""

from .applications import API
from .codecs import Codec, register_codec
from .endpoints import WebSocketEndpoint
from .exceptions import AuthenticationFailed, CloseCode, WebSocketDisconnect
from .routing import register_converter
from .websockets import ConnectionState, WebSocket

__all__ = [
    "API",
    "AuthenticationFailed",
    "CloseCode",
    "Codec",
    "ConnectionState",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketEndpoint",
    "register_codec",
    "register_converter",
]

__version__ = "0.1.0"
