"""Parking one task until another hands it an item, as cheaply as each event loop allows.

A fan-out wakes one send task per member, so the wake-up is most of its cost:
an ``anyio.Event`` per wait costs about three times a bare asyncio future, and
trio's ``Event`` goes through a parking lot. The item travels with the wake-up
(a future's result, trio's ``reschedule`` value), as trio's own memory channels
hand an item to a waiting receiver: nothing goes through a queue that the
waiting task would only take straight back out. These are the one place the
package talks to an event loop directly, each loop with its own, behind one
interface (``wait()`` returns what to await, ``wake(item)`` never blocks), and
every test of groups runs on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import sniffio

if TYPE_CHECKING:
    import trio

__all__ = ["NOTHING", "AsyncioWaiter", "TrioWaiter", "Waiter", "new_waiter"]

NOTHING: Any = object()
"""What ``take_back()`` returns when no item was left behind."""


class AsyncioWaiter:
    """Parks one task on a bare future: the cheapest wake-up asyncio has."""

    __slots__ = ("_future", "_loop")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._future: asyncio.Future[Any] | None = None

    def wait(self) -> Awaitable[Any]:
        # A future cancelled with its task is done, so wake() skips it: nothing to clean up.
        # asyncio.Future directly rather than loop.create_future(): a Python call fewer per
        # member and message (uvloop's own futures are asyncio's too).
        future: asyncio.Future[Any] = asyncio.Future(loop=self._loop)
        self._future = future
        return future

    def wake(self, item: Any) -> bool:
        future = self._future
        if future is not None and not future.done():
            future.set_result(item)
            return True
        return False

    def take_back(self) -> Any:
        # A task cancelled after the wake-up but before it ran never sees its item.
        future = self._future
        if future is not None and future.done() and not future.cancelled():
            self._future = None
            return future.result()
        return NOTHING


class TrioWaiter:
    """Parks one task with trio's low-level reschedule: no parking lot, no event."""

    __slots__ = ("_abort", "_lowlevel", "_task", "_value")

    def __init__(self) -> None:
        # Only ever made on trio, which is an optional dependency (outcome is trio's).
        import outcome
        import trio

        self._lowlevel = trio.lowlevel
        self._task: trio.lowlevel.Task | None = None
        self._abort = self._aborted
        self._value = outcome.Value

    def wait(self) -> Awaitable[Any]:
        lowlevel = self._lowlevel
        self._task = lowlevel.current_task()
        return lowlevel.wait_task_rescheduled(self._abort)  # type: ignore[no-any-return]

    def _aborted(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._task = None
        return self._lowlevel.Abort.SUCCEEDED

    def wake(self, item: Any) -> bool:
        task, self._task = self._task, None
        if task is None:
            return False
        self._lowlevel.reschedule(task, self._value(item))
        return True

    def take_back(self) -> Any:
        # A rescheduled task gets its value even if cancelled meanwhile (trio
        # delivers the cancellation at its next checkpoint): nothing is ever left.
        return NOTHING


Waiter = AsyncioWaiter | TrioWaiter


def new_waiter() -> Waiter:
    # Waking 10,000 members is the whole cost of a fan-out, and an anyio.Event per
    # wait costs three times a bare future (measured: 60 vs 18 ms on asyncio).
    if sniffio.current_async_library() == "trio":
        return TrioWaiter()
    return AsyncioWaiter()
