"""asyncio glue of ``SharedMemory.wait_async()`` and ``async for record in shm``.

The native module makes the futures and the waiter thread that resolves them (see
``flexshm-py/src/asyncwait.rs``); this module holds the coroutines that await them and
the callbacks the thread schedules on the future's loop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._native import Record, SharedMemory


def set_result(future: asyncio.Future[Any], value: object) -> None:
    """Completes `future` with `value` unless it is done (cancelled, timed out)."""
    if not future.done():
        future.set_result(value)


def set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    """Fails `future` with `exc` unless it is done."""
    if not future.done():
        future.set_exception(exc)


async def wait(shm: SharedMemory[Any], timeout: float | None) -> bool:
    """The coroutine ``shm.wait_async(timeout)`` returns. The future is made when the
    coroutine first runs, so a coroutine that is never awaited registers nothing."""
    result: bool = await shm._wait_future(timeout)
    return result


async def next_record(shm: SharedMemory[Any]) -> Record[Any]:
    """One step of ``async for record in shm``: the next new record, awaited without
    blocking the loop; ``StopAsyncIteration`` once the handle is closed."""
    try:
        while True:
            record = shm._take_new()
            if record is not None:
                return record
            waited = shm._wait_future(None)
            if waited.done():
                # Something is there that could not be read yet (a writer kept
                # overtaking the copy): let the other tasks run before trying again.
                await asyncio.sleep(0)
            await waited
    except ValueError:
        if shm.closed:
            raise StopAsyncIteration from None
        raise
