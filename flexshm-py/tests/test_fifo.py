"""FIFO mode: order, latest, loss counts, staging, timeouts."""

import threading

import children
import pytest
from conftest import SPAWN, join_ok
from flexible_shared_memory import SharedMemory
from records import SensorData


def _commit(fifo: SharedMemory, i: int) -> None:
    fifo.write(temperature=float(i))
    fifo.finalize()


def test_records_come_in_commit_order(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=8)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    for i in range(5):
        _commit(fifo, i)
    got = [reader.read(timeout=1).temperature.value for _ in range(5)]
    assert got == [0.0, 1.0, 2.0, 3.0, 4.0]
    with pytest.raises(TimeoutError):
        reader.read(timeout=0)


def test_staged_writes_are_invisible_until_finalize(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    fifo.write(temperature=1.0)
    fifo.write(pressure=2.0)
    with pytest.raises(TimeoutError, match="no unread record arrived"):
        reader.read(timeout=0.05)
    assert fifo.finalize() == 1
    rec = reader.read(timeout=1)
    assert (rec.temperature.value, rec.pressure.value, rec.commit) == (1.0, 2.0, 1)
    # Later records carry fields that were not written, with modified=False.
    fifo.write(status_msg="next")
    fifo.finalize()
    rec = reader.read(timeout=1)
    assert rec.temperature.value == 1.0 and rec.temperature.valid
    assert not rec.temperature.modified and rec.status_msg.modified


def test_latest_skips_older_records_without_counting_them_lost(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=8)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    for i in range(6):
        _commit(fifo, i)
    first = reader.read(timeout=1)
    assert first.temperature.value == 0.0
    newest = reader.read(timeout=1, latest=True)
    assert newest.temperature.value == 5.0 and newest.lost == 0
    with pytest.raises(TimeoutError):
        reader.read(timeout=0, latest=True)
    _commit(fifo, 6)
    assert reader.read(timeout=1).temperature.value == 6.0


def test_lapped_reader_is_told_how_many_records_it_lost(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    _commit(fifo, 0)
    assert reader.read(timeout=1).temperature.value == 0.0
    for i in range(1, 11):  # 10 more records into 4 slots: 6 are overwritten unread
        _commit(fifo, i)
    rec = reader.read(timeout=1)
    assert rec.lost == 6
    assert rec.temperature.value == 7.0  # the oldest record still in the ring
    rest = [reader.read(timeout=1) for _ in range(3)]
    assert [r.temperature.value for r in rest] == [8.0, 9.0, 10.0]
    assert all(r.lost == 0 for r in rest)


def test_a_new_reader_starts_at_the_oldest_record_in_the_ring(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=3)
    for i in range(5):
        _commit(fifo, i)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    got = [reader.read(timeout=1) for _ in range(3)]
    assert [r.temperature.value for r in got] == [2.0, 3.0, 4.0]
    assert [r.lost for r in got] == [0, 0, 0]


def test_blocking_read_waits_with_the_gil_released(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    results: list[object] = []
    waiting = threading.Event()

    def consume() -> None:
        waiting.set()
        try:
            results.append(reader.read(timeout=20).temperature.value)
        except Exception as e:  # reported below
            results.append(e)

    t = threading.Thread(target=consume)
    t.start()
    assert waiting.wait(5)
    # This thread can run Python (and write) while the other one waits inside read().
    _commit(fifo, 42)
    t.join(30)
    assert not t.is_alive() and results == [42.0]


def test_timeout_message_says_what_was_waited_for(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    with pytest.raises(TimeoutError) as info:
        reader.read(timeout=0.05)
    text = str(info.value)
    assert shm_name in text and "after 0.05 s" in text
    assert "no unread record arrived" in text and "writer is alive" in text
    fifo.close()  # the writer is gone: the message says nobody writes
    with pytest.raises(TimeoutError, match="no writer"):
        reader.read(timeout=0.05)
    with pytest.raises(ValueError, match="timeout"):
        reader.read(timeout=-1)
    with pytest.raises(ValueError, match="timeout"):
        reader.read(timeout=float("nan"))
    _commit(fifo_again := SharedMemory(SensorData, name=shm_name, slots=4), 1)
    assert reader.read(timeout=1e300).temperature.value == 1.0  # huge: no limit
    fifo_again.close()


def test_producer_and_two_consumers_in_separate_processes(shm_name: str) -> None:
    count = 50
    ready, go, out = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    attached = [SPAWN.Event(), SPAWN.Event()]
    producer = SPAWN.Process(
        target=children.fifo_producer, args=(shm_name, count, ready, go), name="producer"
    )
    producer.start()
    assert ready.wait(30)
    consumers = [
        SPAWN.Process(
            target=children.fifo_consumer,
            args=(shm_name, count, attached[k], out),
            name=f"consumer-{k}",
        )
        for k in range(2)
    ]
    for c in consumers:
        c.start()
    for a in attached:
        assert a.wait(30)
    go.set()
    seen = [out.get(timeout=60), out.get(timeout=60)]
    for c in consumers:
        join_ok(c)
    join_ok(producer)
    expected = [(i, f"sample {i}", 0) for i in range(count)]
    assert seen == [expected, expected]  # each consumer gets every record, in order


def test_close_from_another_thread_ends_a_blocking_read(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=4)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    results: list[BaseException] = []
    waiting = threading.Event()

    def consume() -> None:
        waiting.set()
        try:
            reader.read()  # no timeout
        except BaseException as e:
            results.append(e)

    t = threading.Thread(target=consume)
    t.start()
    assert waiting.wait(5)
    reader.close()  # returns once the reading thread has let go of the handle
    t.join(30)
    assert not t.is_alive()
    assert len(results) == 1 and isinstance(results[0], ValueError)
    assert "closed" in str(results[0])
    fifo.close()
