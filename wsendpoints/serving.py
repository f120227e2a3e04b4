"""Serving an `API`: uvicorn on asyncio, hypercorn on trio, with limits and graceful shutdown.

Why the framework drains connections itself rather than leaving it to the
server: uvicorn closes open WebSockets with 1012 at once, while hypercorn keeps
them open until its graceful timeout and then cancels them. Draining first
(`API.close_connections`) gives every client a 1001 close frame and every
endpoint its ``on_disconnect`` on both servers, before the shutdown hooks run.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import logging
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

from ._checks import is_finite_number, is_positive_int
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from .applications import API

__all__ = ["ServerOptions", "import_app", "serve"]

logger = logging.getLogger("wsendpoints")

BACKENDS = ("asyncio", "trio")
# What both servers and the framework's logger take, in any case (``"INFO"`` too).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
# What uvicorn exits with when the app's startup fails; hypercorn's error for it starts so.
_STARTUP_FAILURE = 3
_STARTUP_FAILED = "Lifespan failure in startup."
# The framework's lines, beside uvicorn's "INFO:     ..." ones.
_LOG_FORMAT = "%(levelname)s:     [wsendpoints] %(message)s"


@dataclass(frozen=True)
class ServerOptions:
    """What the server enforces, whichever server runs. The defaults suit a public service.

    - ``max_message_size``: bytes; a larger incoming message closes with 1009.
    - ``ping_interval``/``ping_timeout``: seconds; a client that does not answer
      a ping in time is dropped (hypercorn sends pings but has no timeout).
    - ``max_queue``: incoming messages buffered per connection before the
      server stops reading from it (backpressure).
    - ``shutdown_timeout``: seconds the connections get to close on shutdown.
    - ``compression``: negotiate permessage-deflate with clients that offer it, as
      browsers do. It saves bandwidth and costs memory on every such connection
      (see the deployment guide). Only uvicorn can turn it off: hypercorn always
      negotiates it.
    """

    max_message_size: int = 1024 * 1024
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    max_queue: int = 32
    shutdown_timeout: float = 10.0
    compression: bool = True

    def __post_init__(self) -> None:
        # Checked here, not by the servers: they take 0, negative and NaN values without a
        # word and fail later (a NaN shutdown timeout crashes the shutdown itself).
        for name in ("max_message_size", "max_queue"):
            value = getattr(self, name)
            if not is_positive_int(value):
                raise ConfigurationError(f"{name} must be a positive integer, not {value!r}")
        for name in ("ping_interval", "ping_timeout"):
            value = getattr(self, name)
            if value is not None and not is_finite_number(value):
                raise ConfigurationError(
                    f"{name} must be a positive number of seconds or None, not {value!r}"
                )
        if not is_finite_number(self.shutdown_timeout, zero=True):
            raise ConfigurationError(
                f"shutdown_timeout must be a number of seconds, 0 or more, not {self.shutdown_timeout!r}"
            )
        if not isinstance(self.compression, bool):
            raise ConfigurationError(f"compression must be True or False, not {self.compression!r}")


def check_serve_arguments(*, backend: str, log_level: str, port: int, options: ServerOptions) -> None:
    """The checks `serve` makes first, before it imports the app.

    The command line makes them itself before `serve`, so that it can tell an error in
    its flags (which it names as flags) from one the app raises while it is imported.
    """
    if backend not in BACKENDS:
        raise ConfigurationError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if not isinstance(log_level, str) or log_level.lower() not in LOG_LEVELS:
        raise ConfigurationError(f"unknown log_level {log_level!r}; expected one of {', '.join(LOG_LEVELS)}")
    if type(port) is not int or not 0 <= port <= 65535:
        raise ConfigurationError(f"port must be an integer from 0 to 65535, not {port!r}")
    if backend == "trio" and not options.compression:
        raise ConfigurationError(
            "the trio backend cannot turn compression off: hypercorn always negotiates "
            "permessage-deflate with clients that offer it"
        )


def import_app(target: str) -> API:
    """The `API` that ``"module:attribute"`` names."""
    from .applications import API

    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"expected 'module:attribute', got {target!r}")
    module = importlib.import_module(module_name)
    try:
        app = getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(app, API):
        raise ConfigurationError(f"{target} is a {type(app).__name__}, not a wsendpoints API")
    return app


def serve(
    app: API | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str = "asyncio",
    options: ServerOptions = ServerOptions(),
    log_level: str = "info",
    reload: bool = False,
    fd: int | None = None,
    broadcast: str | None = None,
) -> None:
    """Serve ``app`` (an `API` or its ``"module:attribute"``) until SIGINT or SIGTERM.

    ``broadcast`` replaces the app's broadcast backend (a URL such as
    ``redis://127.0.0.1:6379/0``), so that one app runs alone or as several
    processes sharing a broker without a code change.
    """
    check_serve_arguments(backend=backend, log_level=log_level, port=port, options=options)
    _configure_logging(log_level)
    if reload:
        if broadcast is not None:
            raise ConfigurationError("--broadcast does not combine with --reload")
        if not isinstance(app, str) or backend != "asyncio":
            raise ConfigurationError("reload needs the app as 'module:attribute' and the asyncio backend")
        _serve_uvicorn_reload(app, host, port, options, log_level, fd)
        return
    api = import_app(app) if isinstance(app, str) else app
    if broadcast is not None:
        from .broadcast import Broadcast

        api.broadcast = Broadcast(broadcast)
    if backend == "trio":
        _serve_hypercorn_trio(api, host, port, options, log_level, fd)
    else:
        _serve_uvicorn(api, host, port, options, log_level, fd)


def _uvicorn_options(options: ServerOptions, log_level: str) -> dict[str, Any]:
    return {
        "lifespan": "on",
        "log_level": log_level,
        "ws_max_size": options.max_message_size,
        "ws_ping_interval": options.ping_interval,
        "ws_ping_timeout": options.ping_timeout,
        "ws_max_queue": options.max_queue,
        "timeout_graceful_shutdown": options.shutdown_timeout,
        "ws_per_message_deflate": options.compression,
    }


def _serve_uvicorn(
    api: API, host: str, port: int, options: ServerOptions, log_level: str, fd: int | None
) -> None:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            deadline = anyio.current_time() + options.shutdown_timeout
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._cut_short_when_forced, tg.cancel_scope)
                await api.close_connections(timeout=options.shutdown_timeout)
                tg.cancel_scope.cancel()
            # uvicorn then waits for what is left (HTTP requests to mounts) with a timeout
            # of its own: one shutdown timeout in all, not one each. Never quite 0, which
            # would not even look whether anything is left, and log that it cut something.
            # (uvicorn's hint says int; it hands the value to asyncio.wait_for, which takes floats.)
            remaining = max(deadline - anyio.current_time(), 0.1)
            self.config.timeout_graceful_shutdown = remaining  # type: ignore[assignment]
            await super().shutdown(sockets)
            if self.force_exit:
                # uvicorn skips the shutdown hooks on a forced exit, and its lifespan task then
                # dies at exit with a traceback. Only the wait for connections was cut short:
                # the hooks are the app's own clean-up, and hypercorn runs them too.
                await self.lifespan.shutdown()

        async def _cut_short_when_forced(self, drain: anyio.CancelScope) -> None:
            # uvicorn's signal handler marks a second Ctrl-C in force_exit; it polls the
            # flag during its own waits, and the drain is one of them.
            while not self.force_exit:  # noqa: ASYNC110 (set in a signal handler: no event to wait on)
                await anyio.sleep(0.1)
            drain.cancel()

    config = uvicorn.Config(api, host=host, port=port, fd=fd, **_uvicorn_options(options, log_level))
    server = DrainingServer(config)
    # uvicorn raises the SIGINT it caught again once it has shut down gracefully;
    # uvicorn.run() swallows it in the same way, rather than end with a traceback.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        # The app's startup failed. uvicorn 0.50 and later exit with 3 from run() itself;
        # before, uvicorn.run() did, and Server.run() returned as if all had gone well.
        sys.exit(_STARTUP_FAILURE)


def _serve_uvicorn_reload(
    target: str, host: str, port: int, options: ServerOptions, log_level: str, fd: int | None
) -> None:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    # The reloader runs the app in a child process with uvicorn's own Server,
    # so shutdown there is uvicorn's: open connections are closed with 1012.
    # That process configures logging from uvicorn's config only, not from this
    # one's: the framework's logger goes in that config, or its lines are lost.
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["formatters"]["wsendpoints"] = {"format": _LOG_FORMAT}
    log_config.setdefault("filters", {})["wsendpoints"] = {"()": _UnlessHandledAbove}
    log_config["handlers"]["wsendpoints"] = {
        "class": "logging.StreamHandler",
        "formatter": "wsendpoints",
        "filters": ["wsendpoints"],
        "stream": "ext://sys.stderr",
    }
    log_config["loggers"]["wsendpoints"] = {"handlers": ["wsendpoints"], "level": log_level.upper()}
    uvicorn.run(
        target,
        host=host,
        port=port,
        fd=fd,
        reload=True,
        log_config=log_config,
        **_uvicorn_options(options, log_level),
    )


def _serve_hypercorn_trio(
    api: API, host: str, port: int, options: ServerOptions, log_level: str, fd: int | None
) -> None:
    try:
        import trio
        from hypercorn.config import Config
        from hypercorn.trio import serve as hypercorn_serve
        from hypercorn.utils import LifespanFailureError
    except ImportError as exc:
        raise ConfigurationError(
            f"the trio backend needs the 'trio' extra ({exc.name} is missing): "
            "pip install 'wsendpoints[trio]'"
        ) from None

    config = Config()
    config.bind = [f"fd://{fd}"] if fd is not None else [f"{host}:{port}"]
    config.websocket_max_message_size = options.max_message_size
    config.websocket_ping_interval = options.ping_interval
    config.max_app_queue_size = options.max_queue
    config.graceful_timeout = options.shutdown_timeout
    config.loglevel = log_level.upper()

    received: list[int] = []

    async def shutdown_trigger() -> None:
        forced = False
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                received.append(signum)
                break

            async def cut_short_on_ctrl_c(drain: trio.CancelScope) -> None:
                nonlocal forced
                async for signum in signals:
                    if signum == signal.SIGINT:
                        forced = True
                        drain.cancel()

            # Still listening: a second Ctrl-C cuts the drain short, as on uvicorn.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(cut_short_on_ctrl_c, nursery.cancel_scope)
                await api.close_connections(timeout=options.shutdown_timeout)
                nursery.cancel_scope.cancel()
        # Every connection has closed, or was cut; hypercorn's own grace period now only
        # waits for clients to drop TCP, which they may put off for seconds.
        config.graceful_timeout = 0.0 if forced else min(options.shutdown_timeout, 1.0)

    async def main() -> None:
        await hypercorn_serve(api, config, shutdown_trigger=shutdown_trigger)  # type: ignore[arg-type]

    try:
        trio.run(main)
    except BaseExceptionGroup as group:
        # hypercorn crashes on a failed startup; the hook's traceback is logged
        # already, so exit the way uvicorn does rather than with hypercorn's.
        failed, _ = group.split(
            lambda exc: isinstance(exc, LifespanFailureError) and str(exc).startswith(_STARTUP_FAILED)
        )
        if failed is None:
            raise
        logger.error("Application startup failed. Exiting.")
        sys.exit(_STARTUP_FAILURE)
    if received == [signal.SIGTERM]:
        # Shut down gracefully, then end as SIGTERM would have ended the process, as uvicorn
        # does: a process manager reads the same exit status whichever server ran.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)


def _configure_logging(log_level: str) -> None:
    # Servers configure their own loggers only; without a handler here the
    # framework's INFO lines (refusals, shutdown) would be lost. An app that has
    # logging of its own (a handler on the root logger, as logging.basicConfig
    # adds) prints them already: this handler then stays silent, or each line would
    # show twice. Asked at every line, not once here: `wsendpoints run` imports the
    # app's module, which may set its logging up, after this.
    ours = logging.getLogger("wsendpoints")
    if not ours.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        handler.addFilter(_UnlessHandledAbove())
        ours.addHandler(handler)
        ours.setLevel(log_level.upper())


class _UnlessHandledAbove(logging.Filter):
    """Lets a record through only if no handler above the framework's logger prints it."""

    def filter(self, record: logging.LogRecord) -> bool:
        ours = logging.getLogger("wsendpoints")
        return not (ours.propagate and ours.parent is not None and ours.parent.hasHandlers())
