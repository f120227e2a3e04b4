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
import functools
from collections.abc import Awaitable, Callable, Generator
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
    """Parks one task with trio's low-level reschedule: no parking lot, no event.

    Awaiting the waiter yields trio's own trap, made once per waiter, so parking
    allocates one small generator. Trio's public ``wait_task_rescheduled``
    makes four objects per wait (a coroutine, a generator, a trap and its
    dict), alive while the task is parked: with 10,000 members parked between
    two messages, the collector's next young collection walks and promotes
    40,000 of them, and every few fan-outs the promotions add up to a
    full collection of every connection (about 300 ms). The trap's class is
    private to trio, so if a trio release moves it, waiters fall back to the
    public call: correct, just slower.
    """

    __slots__ = ("_abort", "_lowlevel", "_task", "_trap", "_value")

    def __init__(self) -> None:
        # Only ever made on trio, which is an optional dependency (outcome is trio's).
        import outcome
        import trio

        self._lowlevel = trio.lowlevel
        self._task: trio.lowlevel.Task | None = None
        self._abort = self._aborted
        self._value = outcome.Value
        trap = _trio_trap()
        self._trap = None if trap is None else trap(self._abort)

    def wait(self) -> Awaitable[Any]:
        lowlevel = self._lowlevel
        self._task = lowlevel.current_task()
        if self._trap is None:
            return lowlevel.wait_task_rescheduled(self._abort)  # type: ignore[no-any-return]
        return self

    # A hand-written iterator could park with no allocation at all, but the
    # StopIteration it raises per wake-up costs more than the generator (measured:
    # 50 against 47 ms per 10,000 members).
    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self._trap).unwrap()

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


@functools.cache
def _trio_trap() -> Callable[[Callable[[Any], Any]], Any] | None:
    """trio's wait-for-reschedule trap, or None if this trio keeps it elsewhere or in another shape."""
    try:
        from trio._core._traps import WaitTaskRescheduled
    except ImportError:
        return None
    # trio's run loop reads the abort function from the trap's abort_func.
    probe: Any = object()
    try:
        fits = WaitTaskRescheduled(probe).abort_func is probe
    except (TypeError, AttributeError):
        fits = False
    return WaitTaskRescheduled if fits else None


Waiter = AsyncioWaiter | TrioWaiter


def new_waiter() -> Waiter:
    # Waking 10,000 members is the whole cost of a fan-out, and an anyio.Event per
    # wait costs three times a bare future (measured: 60 vs 18 ms on asyncio).
    if sniffio.current_async_library() == "trio":
        return TrioWaiter()
    return AsyncioWaiter()
