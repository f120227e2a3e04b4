"""The ``wsendpoints`` command: ``wsendpoints run module:api``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence

from . import __version__
from .exceptions import ConfigurationError
from .serving import BACKENDS, LOG_LEVELS, ServerOptions, check_serve_arguments, serve

__all__ = ["main"]

_DEFAULTS = ServerOptions()
# The options whose checks (ServerOptions, check_serve_arguments) begin their message with
# the option's Python name; each has a flag of the same name.
_CHECKED = {field.name for field in dataclasses.fields(ServerOptions)} | {"port"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsendpoints", description="Serve a wsendpoints API on uvicorn (asyncio) or hypercorn (trio)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="serve an API",
        description="Serve the API named by APP until SIGINT or SIGTERM, then close every "
        "connection with 1001, run the shutdown hooks and exit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    run.add_argument("app", metavar="APP", help="the API to serve, as module:attribute (e.g. chat:api)")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on")
    run.add_argument("--port", type=int, default=8000, help="port to listen on")
    run.add_argument(
        "--backend", choices=BACKENDS, default="asyncio", help="asyncio runs uvicorn; trio runs hypercorn"
    )
    run.add_argument("--reload", action="store_true", help="restart when the code changes (asyncio only)")
    run.add_argument(
        "--log-level",
        default="info",
        choices=LOG_LEVELS,
        help="the least severe lines printed, the framework's and the server's",
    )
    limits = run.add_argument_group("limits")
    limits.add_argument(
        "--max-message-size", type=int, default=_DEFAULTS.max_message_size, help="bytes; larger closes 1009"
    )
    limits.add_argument(
        "--ping-interval", type=_seconds_or_off, default=_DEFAULTS.ping_interval, help="seconds, or off"
    )
    limits.add_argument(
        "--ping-timeout", type=_seconds_or_off, default=_DEFAULTS.ping_timeout, help="seconds, or off"
    )
    limits.add_argument(
        "--max-queue", type=int, default=_DEFAULTS.max_queue, help="incoming messages buffered per connection"
    )
    limits.add_argument(
        "--shutdown-timeout",
        type=float,
        default=_DEFAULTS.shutdown_timeout,
        help="seconds the connections get to close on shutdown",
    )
    limits.add_argument(
        "--compression",
        type=_on_or_off,
        default="on" if _DEFAULTS.compression else "off",  # converted by type, shown as written
        metavar="{on,off}",
        help="permessage-deflate with clients that offer it (off: uvicorn only)",
    )
    run.add_argument(
        "--broadcast",
        metavar="URL",
        help="the groups' backend, replacing the app's (e.g. redis://127.0.0.1:6379/0)",
    )
    run.add_argument("--fd", type=int, help="serve on this already-bound socket (socket activation)")
    return parser


def _seconds_or_off(text: str) -> float | None:
    """A number of seconds, or ``off`` for None (ServerOptions checks the number)."""
    if text.lower() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        # argparse's own message would name this function: "invalid _seconds_or_off value".
        raise argparse.ArgumentTypeError(f"expected a number of seconds or off, not {text!r}") from None


def _on_or_off(text: str) -> bool:
    if text.lower() not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, not {text!r}")
    return text.lower() == "on"


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    # Like `python -m`, look for the app's module in the current directory.
    sys.path.insert(0, os.getcwd())
    # Checked before serve(), which checks them too: an error here is about a flag, and is
    # named as one; the app's own errors (a route's max_message_size, say) come as they are.
    try:
        options = ServerOptions(
            max_message_size=args.max_message_size,
            ping_interval=args.ping_interval,
            ping_timeout=args.ping_timeout,
            max_queue=args.max_queue,
            shutdown_timeout=args.shutdown_timeout,
            compression=args.compression,
        )
        check_serve_arguments(backend=args.backend, log_level=args.log_level, port=args.port, options=options)
    except ConfigurationError as exc:
        sys.exit(f"wsendpoints: error: {_naming_the_flag(str(exc))}")
    try:
        serve(
            args.app,
            host=args.host,
            port=args.port,
            backend=args.backend,
            options=options,
            log_level=args.log_level,
            reload=args.reload,
            fd=args.fd,
            broadcast=args.broadcast,
        )
    except ConfigurationError as exc:
        sys.exit(f"wsendpoints: error: {exc}")
    except ModuleNotFoundError as exc:
        if not _names_the_app(exc, args.app):
            raise  # an import in the app's own code: its traceback says which line
        sys.exit(f"wsendpoints: error: {exc}")


def _naming_the_flag(message: str) -> str:
    """``max_queue must be ...`` as ``--max-queue must be ...``: the user typed the flag, not the field.

    And ``off`` where Python writes None (the ping options).
    """
    name, space, rest = message.partition(" ")
    if name not in _CHECKED:
        return message
    return f"--{name.replace('_', '-')}{space}{rest.replace(' or None,', ' or off,')}"


def _names_the_app(exc: ModuleNotFoundError, app: str) -> bool:
    """Whether ``exc`` says that APP's module (or a package it is in) is not there."""
    module = app.partition(":")[0]
    return exc.name is not None and (module == exc.name or module.startswith(f"{exc.name}."))
