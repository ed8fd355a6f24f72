"""Every code block of the seed README, run as written, with writer and reader in
separate processes (spawn) where the block describes two sides."""

import time

import children
import numpy as np
import pytest
from conftest import SPAWN, join_ok
from flexible_shared_memory import SharedMemory
from records import MathData, SensorData, Tracked


def test_quick_start_writer_and_reader_processes(shm_name: str) -> None:
    written, done, out = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    writer = SPAWN.Process(
        target=children.seed_writer, args=(shm_name, written, done, out), name="writer"
    )
    reader = SPAWN.Process(
        target=children.seed_reader, args=(shm_name, written, done, out), name="reader"
    )
    writer.start()
    reader.start()
    join_ok(reader)
    join_ok(writer)
    got = [out.get(timeout=5) for _ in range(3)]
    assert "Temperature: 23.5°C" in got
    assert (1013.25, "OK", True) in got
    assert "writer done" in got
    # The writer's unlink() removed the segment.
    with pytest.raises(FileNotFoundError, match=shm_name):
        SharedMemory(SensorData, name=shm_name, create=False)


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def error(self, msg: str) -> None:
        self.lines.append("error: " + msg)

    def warning(self, msg: str) -> None:
        self.lines.append("warning: " + msg)


def _status_block(shm: SharedMemory, log: _Log, used: list[object]) -> list[str]:
    """The seed's "Field Status Tracking" block; returns what it printed."""
    printed = []
    data = shm.read()
    pos = data.position

    # Check status
    if pos.valid:  # Exact copy from source (not truncated/unwritten)
        used.append(pos.value)
    else:
        # Data is NOT reliable - handle error
        if pos.truncated:
            log.error("Data truncated - may be unusable!")
        elif pos.unwritten:
            log.warning("No data available yet")

    if pos.modified:  # Changed since last slot/read
        printed.append("Position updated!")
    return printed


def _start_tracked_writer(name: str):  # type: ignore[no-untyped-def]
    steps, acks = SPAWN.Queue(), SPAWN.Queue()
    proc = SPAWN.Process(target=children.tracked_writer, args=(name, steps, acks), name="writer")
    proc.start()
    assert acks.get(timeout=30) == "ready"

    def write(**fields: object) -> None:
        steps.put(fields)
        assert acks.get(timeout=30) == "written"

    def stop() -> None:
        steps.put(None)
        join_ok(proc)

    return write, stop


def test_field_status_tracking_block(shm_name: str) -> None:
    write, stop = _start_tracked_writer(shm_name)
    try:
        shm = SharedMemory(Tracked, name=shm_name, create=False)
        log, used = _Log(), []

        # Nothing written yet: unwritten, not valid, not modified.
        assert _status_block(shm, log, used) == []
        assert log.lines == ["warning: No data available yet"] and used == []

        # Written: valid and modified, exact value.
        write(position=[1.0, 2.0, 3.0])
        assert _status_block(shm, log, used) == ["Position updated!"]
        assert len(used) == 1 and np.array_equal(used[0], [1.0, 2.0, 3.0])

        # Another field written: position still valid, but not modified in this record.
        write(temperature=21.0)
        assert _status_block(shm, log, used) == []
        assert len(used) == 2

        # Too many values: cut to capacity and flagged truncated, so not valid.
        write(position=[4.0, 5.0, 6.0, 7.0])
        assert _status_block(shm, log, used) == ["Position updated!"]
        assert log.lines[-1] == "error: Data truncated - may be unusable!"
        assert len(used) == 2
        pos = shm.read().position
        assert pos.truncated and not pos.valid and not pos.unwritten
        assert np.array_equal(pos.value, [4.0, 5.0, 6.0])
        shm.close()
    finally:
        stop()


def test_fifo_mode_block_as_written(shm_name: str) -> None:
    # Create FIFO with 10 slots
    fifo = SharedMemory(SensorData, name=shm_name, slots=10)

    # Writer: Stage and commit
    fifo.write(temperature=23.5)
    fifo.write(pressure=1013.0)
    fifo.finalize()  # Atomic commit

    # Reader: Read oldest or skip to latest
    data = fifo.read(timeout=1.0, latest=False)  # FIFO order
    assert data.temperature.value == 23.5 and data.pressure.value == 1013.0
    assert data.temperature.modified and data.pressure.modified
    assert data.status_msg.unwritten
    with pytest.raises(TimeoutError, match="no unread record"):
        data = fifo.read(timeout=0.5, latest=True)  # Skip to newest
    fifo.write(temperature=24.0)
    fifo.finalize()
    fifo.write(temperature=25.0)
    fifo.finalize()
    data = fifo.read(timeout=0.5, latest=True)  # Skip to newest
    assert data.temperature.value == 25.0 and data.lost == 0
    # Unchanged fields carry over, not modified.
    assert data.pressure.value == 1013.0 and not data.pressure.modified
    fifo.close()


def test_fifo_mode_block_across_processes(shm_name: str) -> None:
    ready, done = SPAWN.Event(), SPAWN.Event()
    records = [
        [{"temperature": 23.5}, {"pressure": 1013.0}],
        [{"temperature": 24.0}],
        [{"temperature": 25.0, "status_msg": "third"}],
    ]
    proc = SPAWN.Process(
        target=children.fifo_writer, args=(shm_name, 10, records, ready, done), name="writer"
    )
    proc.start()
    try:
        assert ready.wait(30)
        fifo = SharedMemory(SensorData, name=shm_name, create=False)
        assert fifo.mode == "fifo" and fifo.slots == 10
        data = fifo.read(timeout=1.0, latest=False)  # FIFO order
        assert (data.temperature.value, data.pressure.value) == (23.5, 1013.0)
        data = fifo.read(timeout=0.5, latest=True)  # Skip to newest
        assert data.temperature.value == 25.0 and data.status_msg.value == "third"
        with pytest.raises(TimeoutError):
            fifo.read(timeout=0.1)
        fifo.close()
    finally:
        done.set()
        join_ok(proc)


def _polynomial_block(shm: SharedMemory, x: float) -> object:
    """The seed's "Practical Error Handling" block; returns the result or None."""
    data = shm.read()

    coeffs = data.coefficients
    if coeffs.valid:
        # Safe to use - exact copy
        polynomial = np.poly1d(coeffs.value)
        result = polynomial(x)
        return result
    else:
        if coeffs.truncated:
            # CRITICAL ERROR: Incomplete polynomial!
            # [a0, a1, a2] is a completely different polynomial than [a0, a1, a2, a3, a4]
            raise ValueError("Polynomial coefficients incomplete - cannot compute!")
        elif coeffs.unwritten:
            # Use default or skip computation
            pass
    return None


@pytest.mark.parametrize(
    ("written", "expect"),
    [
        (None, "unwritten"),
        ([1.0, 2.0, 3.0, 4.0, 5.0], "valid"),
        ([1.0, 2.0, 3.0], "valid"),
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], "truncated"),
    ],
)
def test_practical_error_handling_block(shm_name: str, written: object, expect: str) -> None:
    ready, done = SPAWN.Event(), SPAWN.Event()
    proc = SPAWN.Process(
        target=children.math_writer, args=(shm_name, written, ready, done), name="writer"
    )
    proc.start()
    try:
        assert ready.wait(30)
        shm = SharedMemory(MathData, name=shm_name, create=False)
        if expect == "unwritten":
            assert _polynomial_block(shm, 2.0) is None
            assert shm.read().coefficients.value is None  # the dataclass default
        elif expect == "valid":
            assert isinstance(written, list)
            assert _polynomial_block(shm, 2.0) == np.poly1d(written)(2.0)
            assert shm.read().coefficients.value.shape == (len(written),)
        else:
            with pytest.raises(ValueError, match="incomplete"):
                _polynomial_block(shm, 2.0)
            coeffs = shm.read().coefficients
            assert coeffs.truncated and not coeffs.valid
            assert list(coeffs.value) == [1.0, 2.0, 3.0, 4.0, 5.0]
        shm.close()
    finally:
        done.set()
        join_ok(proc)


def test_single_reader_change_tracking_two_readers(shm_name: str) -> None:
    write, stop = _start_tracked_writer(shm_name)
    try:
        a = SharedMemory(Tracked, name=shm_name, create=False)
        b = SharedMemory(Tracked, name=shm_name, create=False)

        def changed(shm: SharedMemory) -> bool:
            # Reset modified flags after reading
            data = shm.read(reset_modified=True)
            return bool(data.temperature.modified)

        assert not changed(a)  # never written
        write(temperature=20.0)
        assert changed(a)
        assert not changed(a)  # nothing new since a's previous read
        write(temperature=21.0)
        write(position=[0.0, 0.0, 0.0])  # newer record, temperature not in it
        # Without reset_modified, "modified" means "written in this record".
        assert not a.read().temperature.modified
        assert changed(a)  # but a has not seen 21.0 yet
        # b tracks on its own: its first tracking read sees the written field as changed.
        assert changed(b)
        assert not changed(b)
        write(temperature=22.0)
        assert changed(b)
        assert changed(a)
        assert not changed(a) and not changed(b)
        a.close()
        b.close()
    finally:
        stop()


def test_magic_conversions_block(shm_name: str) -> None:
    ready, done, out = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    image = (np.arange(480 * 640 * 3) % 251).astype(np.uint8).reshape(480, 640, 3)
    writer = SPAWN.Process(
        target=children.scene_writer, args=(shm_name, 1.25, image, ready, done), name="writer"
    )
    reader = SPAWN.Process(
        target=children.scene_reader, args=(shm_name, ready, done, out), name="reader"
    )
    writer.start()
    reader.start()
    join_ok(reader)
    join_ok(writer)
    x, y, dtype, shape, total, same = out.get(timeout=5)
    assert (x, y) == (1.25, 1.25)
    assert (dtype, shape, total, same) == ("|u1", (480, 640, 3), int(image.sum()), True)


def test_quick_start_single_process_timestamp(shm_name: str) -> None:
    # The writer block uses time.time(); the value read back is exactly that float.
    shm = SharedMemory(SensorData, name=shm_name)
    now = time.time()
    shm.write(temperature=23.5, pressure=1013.25, timestamp=now, status_msg="OK")
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    assert reader.read(timeout=1.0).timestamp.value == now
    reader.close()
    shm.close()
    shm.unlink()
