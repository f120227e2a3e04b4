"""Parking a member's send task until a message is handed to it, on each loop's own primitive.

On trio the waiter yields trio's own trap, made once, and falls back to the
public ``wait_task_rescheduled`` if a trio release moves the trap: every test
here runs on both, so the fallback is known to work before anyone needs it.
"""

from __future__ import annotations

import gc
from typing import Any

import anyio
import pytest
from anyio.abc import TaskGroup

from wsendpoints.broadcast import _waiters
from wsendpoints.broadcast._waiters import NOTHING, Waiter, new_waiter

TIMEOUT = 5.0


@pytest.fixture
def parking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How waiters park: a future on asyncio; trio's trap, or the public call trio falls back to."""
    if request.param == "public":
        monkeypatch.setattr(_waiters, "_trio_trap", lambda: None)
    elif request.param == "trap":
        assert _waiters._trio_trap() is not None, "this trio keeps its trap elsewhere: see _trio_trap"
    return str(request.param)


ON_EACH_LOOP = pytest.mark.parametrize(
    ("anyio_backend", "parking"),
    [("asyncio", "future"), ("trio", "trap"), ("trio", "public")],
    indirect=["parking"],
)


async def park(waiter: Waiter, got: list[Any], rounds: int = 1) -> None:
    for _ in range(rounds):
        got.append(await waiter.wait())


async def start_parked(tg: TaskGroup, waiter: Waiter, got: list[Any], rounds: int = 1) -> None:
    """Start a task that waits on ``waiter`` ``rounds`` times; return once it is parked."""
    tg.start_soon(park, waiter, got, rounds)
    await anyio.wait_all_tasks_blocked()


@ON_EACH_LOOP
async def test_wake_hands_the_item_to_the_parked_task(parking: str) -> None:
    waiter = new_waiter()
    got: list[Any] = []
    async with anyio.create_task_group() as tg:
        await start_parked(tg, waiter, got, 3)
        for item in ("first", {"type": "websocket.send"}, None):
            assert waiter.wake(item)
            await anyio.wait_all_tasks_blocked()
    assert got == ["first", {"type": "websocket.send"}, None]


@ON_EACH_LOOP
async def test_wake_with_nobody_parked_refuses_the_item(parking: str) -> None:
    waiter = new_waiter()
    assert not waiter.wake("nobody")
    got: list[Any] = []
    async with anyio.create_task_group() as tg:
        await start_parked(tg, waiter, got)
        assert waiter.wake("once")
        assert not waiter.wake("twice")  # already handed one; not parked again yet
    assert got == ["once"]


@ON_EACH_LOOP
async def test_a_task_cancelled_while_parked_is_no_longer_woken(parking: str) -> None:
    waiter = new_waiter()
    got: list[Any] = []
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            await start_parked(tg, waiter, got)
            tg.cancel_scope.cancel()
        assert not waiter.wake("too late")
        assert waiter.take_back() is NOTHING
        async with anyio.create_task_group() as tg:  # the same waiter parks the next task
            await start_parked(tg, waiter, got)
            assert waiter.wake("next")
    assert got == ["next"]


@ON_EACH_LOOP
async def test_an_anyio_cancel_after_the_wake_up_still_delivers_the_item(parking: str) -> None:
    # anyio's cancel scopes, like trio's, deliver a cancellation at the next
    # checkpoint, after the task has taken what it was woken with.
    waiter = new_waiter()
    got: list[Any] = []
    async with anyio.create_task_group() as tg:
        await start_parked(tg, waiter, got, 2)
        assert waiter.wake("handed")
        tg.cancel_scope.cancel()
    assert got == ["handed"]
    assert waiter.take_back() is NOTHING


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_tasks_park_leaving_few_objects_for_the_collector() -> None:
    # What makes the fan-out's worst case: per-wait objects that live while
    # 10,000 members are parked, then make the collector walk and promote them.
    members = 1000
    waiters = [new_waiter() for _ in range(members)]
    got: list[Any] = []
    async with anyio.create_task_group() as tg:
        for waiter in waiters:
            tg.start_soon(park, waiter, got, 2)
        await anyio.wait_all_tasks_blocked()
        enabled = gc.isenabled()
        gc.disable()
        try:
            gc.collect()  # what exists now is old; what the round below leaves is young
            for waiter in waiters:
                assert waiter.wake("message")
            await anyio.wait_all_tasks_blocked()  # every member has taken it and parked again
            young = len(gc.get_objects(generation=0))
        finally:
            if enabled:
                gc.enable()
        for waiter in waiters:
            waiter.wake("last")
    assert len(got) == 2 * members
    # one generator per member with trio's trap; trio's public call leaves four (4,000 here)
    assert young < 2 * members, young
