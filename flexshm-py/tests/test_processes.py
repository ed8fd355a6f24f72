"""Handles across processes and threads: fork, pickling (spawn, forkserver, pools),
and threads sharing one handle."""

from __future__ import annotations

import copy
import io
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable
from typing import Any

import children
import numpy as np
import pytest
from conftest import join_ok
from flexible_shared_memory import SharedMemory
from records import Counter, SensorData, counter_values

WAIT = 30.0


# ---------------------------------------------------------------------------------------
# fork


def _in_forked_child(body: Callable[[], str]) -> str:
    """Runs `body` in a forked child and returns what it returned (or its error)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            try:
                out = body()
            except BaseException as e:
                out = f"raised {type(e).__name__}: {e}"
            os.write(w, out.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return b"".join(chunks).decode()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("slots", [None, 4])
def test_writer_handle_refuses_to_write_in_a_forked_child(shm_name: str, slots: Any) -> None:
    writer = SharedMemory(SensorData, name=shm_name, slots=slots)
    writer.write(temperature=1.0)
    writer.finalize()
    parent = os.getpid()

    def child() -> str:
        out = []
        for call in (lambda: writer.write(temperature=2.0), writer.finalize):
            try:
                call()
                out.append("wrote")
            except io.UnsupportedOperation as e:
                out.append(str(e))
        # Reading through the writer's handle still works in the child.
        out.append(str(writer.read(timeout=0, latest=True).temperature.value))
        return "\n".join(out)

    write_err, finalize_err, value = _in_forked_child(child).split("\n")
    for err in (write_err, finalize_err):
        assert f"belongs to process {parent}" in err and shm_name in err
    assert value == "1.0"
    # The parent is still the writer.
    writer.write(temperature=3.0)
    writer.finalize()
    assert writer.read(timeout=0, latest=True).temperature.value == 3.0
    writer.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_reader_handles_keep_working_in_a_forked_child(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name, slots=8)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    writer.write(temperature=1.0)
    writer.finalize()
    assert reader.read(timeout=0).temperature.value == 1.0
    writer.write(temperature=2.0)
    writer.finalize()

    def child() -> str:
        # The child's copy of the handle has the parent's position at fork time.
        got = [reader.read(timeout=0).temperature.value]
        assert reader.wait(0) is False
        opened = SharedMemory.open(shm_name)
        got += [r.temperature.value for r in (opened.read(timeout=0), opened.read(timeout=0))]
        return repr(got)

    assert _in_forked_child(child) == "[2.0, 1.0, 2.0]"
    # The parent's handle did not move.
    assert reader.read(timeout=0).temperature.value == 2.0
    writer.close()


# ---------------------------------------------------------------------------------------
# Pickling


def test_a_handle_pickles_as_a_reader_of_its_segment(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name, slots=4)
    writer.write(temperature=1.5)
    writer.finalize()
    for handle in (writer, SharedMemory(SensorData, name=shm_name, create=False)):
        data = pickle.dumps(handle)
        assert shm_name.encode() in data and b"SensorData" in data
        clone = pickle.loads(data)
        assert type(clone) is SharedMemory and clone is not handle
        assert (clone.name, clone.record_type, clone.is_writer) == (shm_name, SensorData, False)
        assert (clone.mode, clone.slots) == ("fifo", 4)
        # A new reader: its own position, from the oldest record.
        assert clone.read(timeout=0).temperature.value == 1.5
        clone.close()
    # copy.copy goes through the same protocol.
    other = copy.copy(writer)
    assert other.is_writer is False and other.name == shm_name
    other.close()
    # A handle made by open() pickles as open(name).
    opened = SharedMemory.open(shm_name)
    again = pickle.loads(pickle.dumps(opened))
    assert again.layout == writer.layout and again.record_type is opened.record_type
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        pickle.dumps(writer)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_handles_as_process_arguments(shm_name: str, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method")
    ctx = multiprocessing.get_context(method)
    writer = SharedMemory(SensorData, name=shm_name)
    writer.write(temperature=6.5)
    out = ctx.Queue()
    proc = ctx.Process(target=children.handle_reader, args=(writer, out), name=method)
    proc.start()
    try:
        assert out.get(timeout=WAIT) == ("SharedMemory", False, shm_name, 6.5)
    finally:
        join_ok(proc)
    writer.close()


def test_handles_as_spawn_pool_tasks(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name)
    writer.write(temperature=8.5)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        got = pool.map(children.pool_read, [(writer, i) for i in range(4)])
    assert got == [(i, False, 8.5) for i in range(4)]
    writer.close()


# ---------------------------------------------------------------------------------------
# Threads


def test_threads_take_turns_on_one_fifo_handle(shm_name: str) -> None:
    """Consumers sharing one FIFO handle share its position: each record goes to
    exactly one of them."""
    count = 600
    fifo = SharedMemory(SensorData, name=shm_name, slots=2 * count)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    seen: list[list[float]] = [[] for _ in range(3)]
    errors: list[BaseException] = []

    def consume(k: int) -> None:
        try:
            while True:
                rec = reader.read(timeout=WAIT)
                if rec.status_msg.value == "end":
                    return
                seen[k].append(rec.temperature.value)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=consume, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for i in range(count):
        fifo.write(temperature=float(i))
        fifo.finalize()
    for _ in threads:
        fifo.write(status_msg="end")
        fifo.finalize()
    for t in threads:
        t.join(WAIT)
    assert not errors, errors[0]
    got = sorted(v for s in seen for v in s)
    assert got == [float(i) for i in range(count)]  # every record once, none twice
    for s in seen:
        assert s == sorted(s)  # each thread sees its records in commit order


def test_threads_read_one_single_slot_handle_concurrently(shm_name: str) -> None:
    """Reads of one single-slot handle from several threads, while another thread
    writes: every record consistent, and none goes back in time for a thread."""
    writer = SharedMemory(Counter, name=shm_name)
    reader = SharedMemory(Counter, name=shm_name, create=False)
    writer.write(**counter_values(0))
    stop = threading.Event()
    errors: list[BaseException] = []

    def write_loop() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            writer.write(**counter_values(n))

    def read_loop() -> None:
        try:
            last = -1
            for _ in range(1500):
                rec = reader.read(timeout=5)
                n = rec.n.value
                assert rec.neg.value == -n and rec.text.value == f"record {n}"
                assert bool((rec.block.value == n).all())
                assert n >= last
                last = n
        except BaseException as e:
            errors.append(e)

    w = threading.Thread(target=write_loop)
    readers = [threading.Thread(target=read_loop) for _ in range(4)]
    w.start()
    for t in readers:
        t.start()
    for t in readers:
        t.join(120)
    stop.set()
    w.join(WAIT)
    assert not errors, errors[0]


def test_one_thread_waits_while_others_iterate_and_write(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    woke: list[bool] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        woke.append(reader.wait(WAIT))

    t = threading.Thread(target=waiter)
    t.start()
    assert started.wait(WAIT)
    writer.write(temperature=1.0)
    for record in reader:  # this thread takes the record (perhaps before the waiter woke)
        assert record.temperature.value == 1.0
        break
    writer.write(temperature=2.0)  # newer than anything the handle returned: wakes it
    t.join(WAIT)
    assert woke == [True] and not t.is_alive()


def test_large_writes_from_threads(shm_name: str) -> None:
    """Large array writes (GIL held for the caller's arrays, released for arrays the
    write converted itself) from two threads, read back whole."""

    from dataclasses import dataclass

    @dataclass
    class Big:
        block: "float32[256,256]" = None  # type: ignore[assignment]

    writer = SharedMemory(Big, name=shm_name, slots=64)
    reader = SharedMemory(Big, name=shm_name, create=False)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for i in range(10):
                value = k * 100 + i
                # float64 is cast (a private copy); float32 is the caller's own array.
                dtype = np.float64 if i % 2 else np.float32
                with lock:
                    writer.write(block=np.full((256, 256), value, dtype))
                    writer.finalize()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not errors, errors[0]
    values = []
    while reader.wait(0):
        block = reader.read(timeout=0).block.value
        assert (block == block[0, 0]).all()
        values.append(float(block[0, 0]))
    assert sorted(values) == sorted(float(k * 100 + i) for k in range(2) for i in range(10))
