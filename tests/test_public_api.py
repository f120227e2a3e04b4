"""The public surface users, docs and checks rely on: names, exceptions, typing marker."""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
import pkgutil
from pathlib import Path

import pytest

import wsendpoints
from wsendpoints import exceptions
from wsendpoints.datastructures import Headers

PUBLIC_NAMES = [
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

EXCEPTIONS = [
    "WebSocketError",
    "ConfigurationError",
    "WebSocketStateError",
    "WebSocketProtocolError",
    "WebSocketDisconnect",
    "HandshakeRejected",
    "ReceiveTimeout",
    "LifespanFailed",
    "AuthenticationFailed",
    "BroadcastError",
]


def test_all_is_pinned() -> None:
    assert sorted(wsendpoints.__all__) == sorted(PUBLIC_NAMES)
    assert len(wsendpoints.__all__) == len(set(wsendpoints.__all__))


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_every_public_name_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from wsendpoints import {name}", namespace)
    assert namespace[name] is getattr(wsendpoints, name)


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from wsendpoints import *", namespace)
    assert sorted(name for name in namespace if name != "__builtins__") == sorted(PUBLIC_NAMES)


# Helpers other modules import, without an underscore (the package's style) but not public: in an
# `__all__`, the reference would render them as API (tests/docs/test_reference.py).
INTERNAL_HELPERS = [
    "wsendpoints.codecs.check_codec_names",
    "wsendpoints.codecs.message_codecs",
    "wsendpoints.security.origin_of",
    "wsendpoints.security.origin_policy",
    "wsendpoints.websockets.connection_options",
]


@pytest.mark.parametrize("path", INTERNAL_HELPERS)
def test_internal_helpers_stay_out_of_their_module_s_all(path: str) -> None:
    module_name, _, name = path.rpartition(".")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, name)), f"{path} is gone: drop it from INTERNAL_HELPERS"
    assert name not in module.__all__


@pytest.mark.parametrize("name", EXCEPTIONS)
def test_exceptions_module_holds_every_exception(name: str) -> None:
    cls = getattr(exceptions, name)
    assert issubclass(cls, exceptions.WebSocketError)
    assert name in exceptions.__all__


def test_every_exception_the_package_defines_lives_in_the_exceptions_module() -> None:
    defined = set()
    for module_info in pkgutil.iter_modules(wsendpoints.__path__, "wsendpoints."):
        if module_info.name.endswith("__main__"):
            continue  # importing it runs the command line
        module = importlib.import_module(module_info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("wsendpoints"):
                defined.add(obj)
    assert {cls.__module__ for cls in defined} == {"wsendpoints.exceptions"}
    assert defined == {getattr(exceptions, name) for name in EXCEPTIONS}


def test_top_level_disconnect_is_the_one_in_exceptions() -> None:
    assert wsendpoints.WebSocketDisconnect is exceptions.WebSocketDisconnect


def test_websocket_disconnect_carries_code_and_reason() -> None:
    error = exceptions.WebSocketDisconnect(4001, "going away")
    assert (error.code, error.reason) == (4001, "going away")
    assert "4001" in str(error)
    assert "going away" in str(error)


def test_websocket_disconnect_defaults_to_a_normal_closure() -> None:
    error = exceptions.WebSocketDisconnect()
    assert (error.code, error.reason) == (1000, "")


def test_websocket_disconnect_code_is_a_plain_int() -> None:
    assert type(exceptions.WebSocketDisconnect(exceptions.CloseCode.GOING_AWAY).code) is int


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("ConfigurationError", ValueError),
        ("WebSocketStateError", RuntimeError),
        ("ReceiveTimeout", TimeoutError),
    ],
)
def test_exceptions_also_derive_from_the_matching_builtin(name: str, builtin: type[Exception]) -> None:
    assert issubclass(getattr(exceptions, name), builtin)


@pytest.mark.parametrize(
    "error",
    [
        exceptions.HandshakeRejected(
            401, close_code=1008, reason="no", body=b"who?", headers=Headers([("www-authenticate", "Token")])
        ),
        exceptions.WebSocketDisconnect(4000, "bye"),
        exceptions.AuthenticationFailed(429, "slow down", {"retry-after": "5"}),
        exceptions.ReceiveTimeout("nothing within 1 s"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_exceptions_survive_copy_and_pickle(error: Exception) -> None:
    for clone in (copy.copy(error), pickle.loads(pickle.dumps(error))):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        assert vars(clone) == vars(error)


def test_handshake_rejected_carries_status_and_close_code() -> None:
    error = exceptions.HandshakeRejected(403, close_code=4403, reason="no")
    assert (error.status_code, error.close_code, error.reason, error.body) == (403, 4403, "no", b"")
    assert len(error.headers) == 0
    assert "403" in str(error)


@pytest.mark.parametrize(
    ("member", "code"),
    [
        ("NORMAL_CLOSURE", 1000),
        ("GOING_AWAY", 1001),
        ("PROTOCOL_ERROR", 1002),
        ("UNSUPPORTED_DATA", 1003),
        ("INVALID_PAYLOAD", 1007),
        ("MANDATORY_EXTENSION", 1010),
        ("INTERNAL_ERROR", 1011),
        ("BAD_GATEWAY", 1014),
    ],
)
def test_close_codes_have_their_rfc_6455_values(member: str, code: int) -> None:
    assert exceptions.CloseCode[member] == code


def test_package_ships_py_typed() -> None:
    assert (Path(wsendpoints.__file__).parent / "py.typed").is_file()


def test_package_has_a_version_string() -> None:
    assert isinstance(wsendpoints.__version__, str)
    assert wsendpoints.__version__.split(".")[0].isdigit()
