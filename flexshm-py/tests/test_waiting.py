"""Waiting for records: wait(), wait_async(), `for record in shm`, `async for`."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import children
import pytest
from conftest import SPAWN, default_sigint, join_ok
from flexible_shared_memory import Record, SharedMemory
from records import SensorData

WAIT = 30.0  # bound on waits that must succeed; reaching it fails the test


def _commit(writer: SharedMemory[SensorData], value: float) -> None:
    writer.write(temperature=value)
    writer.finalize()


def _threads() -> set[str]:
    """The ids of this process's threads (compared as sets: threads that other tests
    left behind may end meanwhile, which must not count)."""
    return set(os.listdir("/proc/self/task"))


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------------------------------
# wait()


def test_wait_single_slot_is_true_for_a_commit_newer_than_the_last_read(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    assert reader.wait(0) is False  # nothing committed yet
    assert reader.wait(timeout=0.02) is False
    writer.write(temperature=1.0)
    assert reader.wait(0) is True and reader.wait() is True  # waiting reads nothing
    assert reader.read().temperature.value == 1.0
    assert reader.wait(0) is False
    writer.write(temperature=2.0)
    writer.write(temperature=3.0)
    assert reader.wait(WAIT) is True
    assert reader.read().temperature.value == 3.0  # read() still gives the latest at once
    assert reader.wait(0) is False
    # Each handle tracks what it returned: the writer's own handle has read nothing yet.
    assert writer.wait(0) is True


def test_wait_fifo_is_true_while_a_record_is_unread(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    assert reader.wait(0) is False
    fifo.write(temperature=1.0)
    assert reader.wait(0) is False  # staged, not committed
    fifo.finalize()
    _commit(fifo, 2.0)
    for want in (1.0, 2.0):
        assert reader.wait(WAIT) is True
        assert reader.read(timeout=0).temperature.value == want
    assert reader.wait(0.02) is False


def test_wait_wakes_for_a_commit_of_another_process(shm_name: str) -> None:
    ready, go, done = SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
    proc = SPAWN.Process(
        target=children.gated_writer, args=(shm_name, 4, ready, go, 1, done), name="writer"
    )
    proc.start()
    try:
        assert ready.wait(WAIT)
        reader = SharedMemory(SensorData, name=shm_name, create=False)
        assert reader.wait(0) is False
        go.set()
        assert reader.wait(WAIT) is True
        assert reader.read(timeout=0).temperature.value == 0.0
        reader.close()
    finally:
        go.set()
        done.set()
        join_ok(proc)


def test_wait_releases_the_gil(shm_name: str) -> None:
    """A thread blocked in wait() lets this thread run Python code and write."""
    writer = SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    result: list[bool] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        result.append(reader.wait(WAIT))

    t = threading.Thread(target=waiter)
    t.start()
    assert started.wait(WAIT)
    _commit(writer, 1.0)  # needs the GIL while the other thread waits
    t.join(WAIT)
    assert result == [True]


def test_a_waiting_thread_does_not_hold_the_handle(shm_name: str) -> None:
    """While one thread sleeps in wait(), another thread reads the same handle."""
    writer = SharedMemory(SensorData, name=shm_name, slots=8)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    _commit(writer, 1.0)
    assert reader.read(timeout=0).temperature.value == 1.0
    result: list[bool] = []
    started = threading.Event()
    t = threading.Thread(target=lambda: (started.set(), result.append(reader.wait(WAIT))))
    t.start()
    assert started.wait(WAIT)
    _commit(writer, 2.0)
    # The read may race the waiting thread's wake-up; either way it gets the record.
    assert reader.read(timeout=WAIT).temperature.value == 2.0
    _commit(writer, 3.0)  # unread by the handle: wakes the waiter in any case
    t.join(WAIT)
    assert not t.is_alive() and result == [True]


def test_close_from_another_thread_ends_a_wait(shm_name: str) -> None:
    SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    errors: list[BaseException] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        try:
            reader.wait()  # no timeout: only close() ends it
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    assert started.wait(WAIT)
    reader.close()
    t.join(WAIT)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
    assert "closed SharedMemory" in str(errors[0])


def test_wait_is_interrupted_by_ctrl_c(shm_name: str) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[2])\n"
        "from flexible_shared_memory import SharedMemory\n"
        "from records import SensorData\n"
        "shm = SharedMemory(SensorData, name=sys.argv[1])\n"
        "try:\n"
        "    print('waiting', flush=True)\n"
        "    shm.wait()  # no timeout: until a commit or Ctrl-C\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, shm_name, os.path.dirname(__file__)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "waiting"
    # Interrupt only once the child sleeps in the kernel.
    for _ in range(100_000):
        with open(f"/proc/{proc.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "S":
                break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert out.strip() == "interrupted" and proc.returncode == 0


@pytest.mark.parametrize("slots", [None, 4])
def test_wait_on_an_unlinked_segment_is_estale(make_name: Callable[[], str], slots: Any) -> None:
    """A reader whose segment's name was unlinked (and given to a new segment) learns it
    while waiting (within about a second) instead of waiting for ever."""
    name = make_name()
    writer = SharedMemory(SensorData, name=name, slots=slots)
    readers = [SharedMemory(SensorData, name=name, create=False) for _ in range(3)]
    writer.unlink()
    SharedMemory(SensorData, name=name, slots=slots).write(temperature=1.0)
    with pytest.raises(OSError) as sync_err:
        readers[0].wait(WAIT)

    async def wait_async() -> None:
        await readers[1].wait_async(WAIT)

    with pytest.raises(OSError) as async_err:
        asyncio.run(wait_async())
    with pytest.raises(OSError) as iter_err:
        next(iter(readers[2]))
    for err in (sync_err, async_err, iter_err):
        assert err.value.errno == errno.ESTALE and "unlinked" in str(err.value)
    writer.close()


@pytest.mark.parametrize("bad", ["1", True, -1.0, float("inf")])
def test_wait_arguments_are_checked(shm_name: str, bad: Any) -> None:
    shm = SharedMemory(SensorData, name=shm_name)
    with pytest.raises((TypeError, ValueError), match="timeout"):
        shm.wait(bad)
    with pytest.raises((TypeError, ValueError), match="timeout"):
        shm.wait_async(bad)
    shm.close()
    with pytest.raises(ValueError, match="closed"):
        shm.wait()
    with pytest.raises(ValueError, match="closed"):
        shm.wait_async()


# ---------------------------------------------------------------------------------------
# wait_async()


def test_wait_async_is_true_on_a_commit(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)

    async def main() -> list[object]:
        task = asyncio.create_task(reader.wait_async())  # a coroutine: create_task works
        await asyncio.sleep(0)  # the task runs up to its await
        assert not task.done()
        _commit(writer, 1.0)
        first = await asyncio.wait_for(task, WAIT)
        # Something unread: the next wait is true at once, as wait(0) is.
        second = await reader.wait_async(timeout=0)
        reader.read(timeout=0)
        third = await reader.wait_async(timeout=0)
        fourth = await reader.wait_async(timeout=0.02)
        return [first, second, third, fourth]

    assert asyncio.run(main()) == [True, True, False, False]


def test_wait_async_wakes_for_a_commit_of_another_process(shm_name: str) -> None:
    ready, go, done = SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
    proc = SPAWN.Process(
        target=children.gated_writer, args=(shm_name, 1, ready, go, 1, done), name="writer"
    )
    proc.start()
    try:
        assert ready.wait(WAIT)
        reader = SharedMemory(SensorData, name=shm_name, create=False)

        async def main() -> bool:
            go.set()
            return await reader.wait_async(WAIT)

        assert asyncio.run(main()) is True
        assert reader.read().temperature.value == 0.0
        reader.close()
    finally:
        go.set()
        done.set()
        join_ok(proc)


def test_many_tasks_await_one_handle(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name)
    reader = SharedMemory(SensorData, name=shm_name, create=False)

    async def main() -> list[bool]:
        tasks = [asyncio.create_task(reader.wait_async(WAIT)) for _ in range(20)]
        await asyncio.sleep(0)
        writer.write(temperature=1.0)
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [True] * 20


def test_wait_async_does_not_block_the_loop(make_name: Callable[[], str]) -> None:
    """With ten handles awaited, a ticker task on the same loop keeps >= 90 % of its
    rate (the one timed assertion of the suite: the issue asks for this bound)."""
    writers, readers = [], []
    for i in range(10):
        name = make_name()
        writers.append(SharedMemory(SensorData, name=name, slots=4 if i % 2 else None))
        readers.append(SharedMemory(SensorData, name=name, create=False))
    for r in readers:
        while r.wait(0):
            r.read(timeout=0)

    async def ticks(seconds: float) -> int:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        n = 0
        while loop.time() < end:
            await asyncio.sleep(0)
            n += 1
        return n

    async def main() -> tuple[int, int]:
        alone, awaited = 0, 0
        # Short interleaved rounds, the best of each: the rate a busy machine lets the
        # loop reach, alike for both (a blocked loop would tick hardly at all).
        for _ in range(30):
            alone = max(alone, await ticks(0.02))
            waits = [asyncio.create_task(r.wait_async()) for r in readers]
            await asyncio.sleep(0)
            awaited = max(awaited, await ticks(0.02))
            assert not any(w.done() for w in waits)
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        return alone, awaited

    # A loop that awaiting blocked would tick hardly at all, every time; a measurement
    # that other load on the machine spoiled is repeated (at most twice).
    for _ in range(3):
        alone, awaited = asyncio.run(main())
        if awaited >= 0.9 * alone:
            break
    assert awaited >= 0.9 * alone, f"{awaited} ticks while awaiting, {alone} alone"
    for h in writers + readers:
        h.close()


def test_cancelled_waits_leak_no_thread_and_no_fd(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name, slots=4)
    threads, fds_without_reader = _threads(), _fds()
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    fds = _fds()

    async def cancel_many() -> None:
        for _ in range(1000):
            task = asyncio.create_task(reader.wait_async())
            await asyncio.sleep(0)  # it registered its future
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    asyncio.run(cancel_many())
    # At most the handle's one waiter thread, idle now; no file descriptor at all.
    assert len(_threads() - threads) <= 1
    assert _fds() <= fds

    async def still_works() -> bool:
        task = asyncio.create_task(reader.wait_async(WAIT))
        await asyncio.sleep(0)
        _commit(writer, 1.0)
        return await task

    assert asyncio.run(still_works()) is True
    reader.close()  # joins the waiter thread and unmaps the segment
    assert not _threads() - threads and _fds() <= fds_without_reader
    writer.close()


def test_close_ends_pending_wait_async(shm_name: str) -> None:
    SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)

    async def main() -> BaseException:
        task = asyncio.create_task(reader.wait_async())
        await asyncio.sleep(0)
        reader.close()
        try:
            await asyncio.wait_for(task, WAIT)
        except ValueError as e:
            return e
        raise AssertionError("the wait did not end with the handle")

    assert "closed SharedMemory" in str(asyncio.run(main()))


def test_wait_async_of_a_coroutine_never_awaited_registers_nothing(shm_name: str) -> None:
    SharedMemory(SensorData, name=shm_name)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    threads = _threads()
    coro = reader.wait_async()
    coro.close()  # never awaited: no future, no waiter thread
    assert not _threads() - threads
    reader.close()


# ---------------------------------------------------------------------------------------
# Iteration


def test_for_yields_each_fifo_record_in_order_until_closed(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=16)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    for i in range(3):
        _commit(fifo, float(i))
    got = []
    for record in reader:
        assert isinstance(record, Record)
        got.append(record.temperature.value)
        if len(got) == 3:
            _commit(fifo, 3.0)  # arrives while iterating
        if len(got) == 4:
            reader.close()
    assert got == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="closed"):
        iter(reader)


def test_for_yields_each_newer_single_slot_commit(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    writer.write(temperature=1.0)
    got = []
    for record in reader:
        got.append((record.commit, record.temperature.value))
        if len(got) == 1:
            writer.write(temperature=2.0)
            writer.write(temperature=3.0)  # only the latest is yielded next
        elif len(got) == 2:
            writer.write(temperature=4.0)
        else:
            break
    assert got == [(1, 1.0), (3, 3.0), (4, 4.0)]
    # read() keeps the seed's semantics: the latest, at once, also when not new.
    assert reader.read().temperature.value == 4.0 and not reader.wait(0)


def test_for_waits_for_records_from_another_thread(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    count = 200
    got: list[float] = []
    # At most three records ahead of the consumer: the four slots are never lapped.
    room = threading.Semaphore(3)
    consumed = threading.Event()

    def consume() -> None:
        for record in reader:  # ends when the main thread closes the handle
            got.append(record.temperature.value)
            room.release()
            if len(got) == count:
                consumed.set()

    t = threading.Thread(target=consume)
    t.start()
    for i in range(count):
        assert room.acquire(timeout=WAIT)
        _commit(fifo, float(i))
    assert consumed.wait(WAIT)
    reader.close()
    t.join(WAIT)
    assert not t.is_alive()
    assert got == [float(i) for i in range(count)]


def test_async_for_yields_records_next_to_other_tasks(make_name: Callable[[], str]) -> None:
    fifo_name, single_name = make_name(), make_name()
    fifo = SharedMemory(SensorData, name=fifo_name, slots=64)
    single = SharedMemory(SensorData, name=single_name)
    fifo_reader = SharedMemory(SensorData, name=fifo_name, create=False)
    single_reader = SharedMemory(SensorData, name=single_name, create=False)

    async def consume(shm: SharedMemory[SensorData], out: list[float], last: float) -> None:
        async for record in shm:
            out.append(record.temperature.value)
            if record.temperature.value == last:
                break

    async def produce() -> None:
        for i in range(1, 21):
            _commit(fifo, float(i))
            single.write(temperature=float(i))
            await asyncio.sleep(0.001)

    async def main() -> tuple[list[float], list[float]]:
        from_fifo: list[float] = []
        from_single: list[float] = []
        await asyncio.wait_for(
            asyncio.gather(
                consume(fifo_reader, from_fifo, 20.0),
                consume(single_reader, from_single, 20.0),
                produce(),
            ),
            WAIT,
        )
        return from_fifo, from_single

    from_fifo, from_single = asyncio.run(main())
    assert from_fifo == [float(i) for i in range(1, 21)]  # every record, in order
    # Single-slot: newer commits only, in increasing order, ending with the latest.
    assert from_single == sorted(set(from_single)) and from_single[-1] == 20.0


def test_async_for_ends_when_the_handle_is_closed(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)

    async def main() -> list[float]:
        got: list[float] = []
        first = asyncio.Event()

        async def consume() -> None:
            async for record in reader:
                got.append(record.temperature.value)
                first.set()

        task = asyncio.create_task(consume())
        _commit(fifo, 1.0)
        await asyncio.wait_for(first.wait(), WAIT)
        reader.close()  # the pending wait ends, and with it the loop
        await asyncio.wait_for(task, WAIT)
        return got

    assert asyncio.run(main()) == [1.0]
