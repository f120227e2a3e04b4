"""The same app on trio: hypercorn serves it, and not one line of the endpoints changes.

Run it on trio, from the repository's root, with either of::

    python -m examples.trio_app                              # api.run(backend="trio")
    wsendpoints run examples.trio_app:api --backend trio     # the same, from the command line

and on asyncio with ``wsendpoints run examples.trio_app:api``. Both need the ``trio``
extra only for the trio side (``pip install 'wsendpoints[trio]'``).

- ``/loop``    says which event loop serves it, then closes: ``"trio"`` or ``"asyncio"``
- ``/ticker``  the server-push endpoint of ``examples/ticker.py``, reused as it is

wsendpoints is written against anyio, so an endpoint that uses anyio (or only
wsendpoints) for its waiting - ``anyio.sleep``, ``anyio.Event``, ``ws.task_group`` -
runs on both. What does not carry over is code that calls asyncio or trio directly.
"""

from __future__ import annotations

from wsendpoints import API, WebSocket

from .ticker import Ticker

try:
    from sniffio import current_async_library
except ImportError:  # sniffio comes with trio; without trio, the loop can only be asyncio

    def current_async_library() -> str:
        return "asyncio"


__all__ = ["api"]

api = API()
api.add_websocket("/ticker", Ticker)


@api.websocket_route("/loop")
async def which_loop(ws: WebSocket) -> None:
    async with ws:
        await ws.send(current_async_library())


if __name__ == "__main__":
    api.run(backend="trio")
