"""Opening: SharedMemory.open() without a record class, read-only readers,
permissions, and waiting for a segment that does not exist yet."""

from __future__ import annotations

import dataclasses
import os
import pickle
import stat
import threading
from dataclasses import dataclass
from typing import Any

import children
import numpy as np
import pytest
from conftest import SPAWN, join_ok
from flexible_shared_memory import SharedMemory
from records import SensorData

WAIT = 30.0


@dataclass
class Mixed:
    temperature: float = 0.0
    count: int = 0
    flag: bool = False
    ratio: "float32" = 0.0
    small: "uint16" = 0
    label: "str[8]" = ""
    image: "uint8[2,3]" = None  # type: ignore[assignment]
    grid: "int16[4,2]" = None  # type: ignore[assignment]


def _mode(name: str) -> int:
    return stat.S_IMODE(os.stat(f"/dev/shm/{name}").st_mode)


# ---------------------------------------------------------------------------------------
# SharedMemory.open()


def test_open_reads_a_segment_without_its_record_class(shm_name: str) -> None:
    writer = SharedMemory(Mixed, name=shm_name)
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    writer.write(temperature=23.5, count=-4, ratio=0.5, small=7, label="OK", image=image)
    shm = SharedMemory.open(shm_name)
    assert (shm.is_writer, shm.mode, shm.slots, shm.name) == (False, "single", 1, shm_name)
    assert shm.layout == writer.layout
    cls = shm.record_type
    assert dataclasses.is_dataclass(cls) and cls.__name__ == shm_name.replace("-", "_")
    # The same annotations a Python writer would use: float, int and bool for the types
    # Python annotations map to, the type's spelling otherwise.
    assert {f.name: f.type for f in dataclasses.fields(cls)} == {
        "temperature": float,
        "count": int,
        "flag": bool,
        "ratio": "float32",
        "small": "uint16",
        "label": "str[8]",
        "image": "uint8[2,3]",
        "grid": "int16[4,2]",
    }
    rec = shm.read()
    assert rec.temperature == 23.5 and rec.count == -4 and rec.label == "OK"
    assert type(rec.ratio.value) is np.float32 and rec.small.value == 7
    assert rec.image.value.tolist() == image.tolist()
    # Unwritten fields read as the type's zero (the generated class's defaults).
    assert rec.flag.unwritten and rec.flag.value is False
    assert rec.grid.unwritten and rec.grid.value.tolist() == np.zeros((4, 2)).tolist()
    data = rec.as_dataclass()
    assert type(data) is cls and data.temperature == 23.5 and data.small == 7
    # A generated class is made once per segment and layout.
    again = SharedMemory.open(shm_name)
    assert again.record_type is cls
    for h in (shm, again, writer):
        h.close()


def test_open_follows_the_segments_mode(shm_name: str) -> None:
    fifo = SharedMemory(SensorData, name=shm_name, slots=8)
    for i in range(3):
        fifo.write(temperature=float(i), status_msg=f"#{i}")
        fifo.finalize()
    shm = SharedMemory.open(shm_name)
    assert (shm.mode, shm.slots) == ("fifo", 8)
    assert [shm.read(timeout=0).status_msg.value for _ in range(3)] == ["#0", "#1", "#2"]
    assert repr(shm).startswith(f"<SharedMemory '{shm_name}' (reader, fifo, slots=8)")
    with pytest.raises(Exception, match="reader"):
        shm.write(temperature=1.0)


def test_records_of_open_pickle_to_a_spawned_process(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name)
    writer.write(temperature=1.5, status_msg="OK")
    shm = SharedMemory.open(shm_name)
    rec = shm.read()
    data = pickle.loads(pickle.dumps(rec))
    assert type(data) is shm.record_type and data.temperature == 1.5
    assert pickle.loads(pickle.dumps(data)) == data
    # In another process the class is generated again from the layout in the pickle.
    inbox, out = SPAWN.Queue(), SPAWN.Queue()
    proc = SPAWN.Process(target=children.record_consumer, args=(inbox, out), name="consumer")
    proc.start()
    try:
        inbox.put(rec)
        type_name, values = out.get(timeout=WAIT)
    finally:
        inbox.put(None)
        join_ok(proc)
    assert type_name == shm.record_type.__name__
    assert values == {"temperature": 1.5, "pressure": 0.0, "timestamp": 0.0, "status_msg": "OK"}


def test_open_missing_segment(shm_name: str) -> None:
    with pytest.raises(FileNotFoundError, match=shm_name):
        SharedMemory.open(shm_name)


# ---------------------------------------------------------------------------------------
# Read-only readers and permissions


def test_permissions_apply_to_a_new_segment(make_name: Any) -> None:
    default, shared = make_name(), make_name()
    SharedMemory(SensorData, name=default).close()
    SharedMemory(SensorData, name=shared, permissions=0o640).close()
    assert _mode(default) == 0o600 and _mode(shared) == 0o640


def test_readers_need_no_write_permission(shm_name: str) -> None:
    # Owner read only: a reader that asked for write access would be refused (as a
    # user other than root; root is never refused, see the next test).
    writer = SharedMemory(SensorData, name=shm_name, permissions=0o400)
    assert _mode(shm_name) == 0o400
    for value, open_reader in (
        (4.5, lambda: SharedMemory(SensorData, name=shm_name, create=False)),
        (6.5, lambda: SharedMemory.open(shm_name)),
    ):
        writer.write(temperature=value)
        reader = open_reader()
        assert reader.read().temperature.value == value
        writer.write(temperature=value + 1)
        assert reader.wait(WAIT) and reader.read().temperature.value == value + 1
        reader.close()
    writer.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_another_user_reads_with_read_permission_only(make_name: Any) -> None:
    """A process of another user opens segments it may only read (mode 0644); one it
    may not read (0640, another group) is a PermissionError."""
    readable, private = make_name(), make_name()
    w1 = SharedMemory(SensorData, name=readable, permissions=0o644)
    w2 = SharedMemory(SensorData, name=private, permissions=0o640)
    w1.write(temperature=7.5)
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become "nobody", then open both segments
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            shm = SharedMemory(SensorData, name=readable, create=False)
            opened = SharedMemory.open(readable)
            ok = shm.read().temperature.value == 7.5 and opened.read().temperature == 7.5
            try:
                SharedMemory(SensorData, name=private, create=False)
                refused = False
            except PermissionError:
                refused = True
            os.write(wfd, b"ok" if ok and refused else b"bad")
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and os.read(r, 16) == b"ok"
    os.close(r)
    w1.close()
    w2.close()


def test_permission_arguments_are_checked(shm_name: str) -> None:
    with pytest.raises(TypeError, match="permissions must be an int"):
        SharedMemory(SensorData, name=shm_name, permissions="0640")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="permissions must be an int"):
        SharedMemory(SensorData, name=shm_name, permissions=True)
    with pytest.raises(ValueError, match="permissions"):
        SharedMemory(SensorData, name=shm_name, permissions=0o1000)
    with pytest.raises(ValueError, match="permissions"):
        SharedMemory(SensorData, name=shm_name, permissions=-1)
    assert not os.path.exists(f"/dev/shm/{shm_name}")
    writer = SharedMemory(SensorData, name=shm_name)
    with pytest.raises(ValueError, match="permissions are set by the writer"):
        SharedMemory(SensorData, name=shm_name, create=False, permissions=0o644)
    writer.close()


# ---------------------------------------------------------------------------------------
# Waiting for a segment to be created


@pytest.mark.parametrize("how", ["create=False", "open()"])
def test_open_timeout_waits_for_the_writer(shm_name: str, how: str) -> None:
    opened: list[SharedMemory[Any]] = []
    errors: list[BaseException] = []
    started = threading.Event()

    def open_early() -> None:
        started.set()
        try:
            if how == "open()":
                opened.append(SharedMemory.open(shm_name, open_timeout=WAIT))
            else:
                opened.append(
                    SharedMemory(SensorData, name=shm_name, create=False, open_timeout=WAIT)
                )
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=open_early)
    t.start()
    assert started.wait(WAIT)
    writer = SharedMemory(SensorData, name=shm_name)  # created after the reader started
    writer.write(temperature=2.5)
    t.join(WAIT)
    assert not errors and len(opened) == 1
    assert opened[0].read().temperature.value == 2.5
    opened[0].close()
    writer.close()


def test_reader_process_started_before_its_writer(shm_name: str) -> None:
    started, out = SPAWN.Event(), SPAWN.Queue()
    proc = SPAWN.Process(target=children.late_reader, args=(shm_name, started, out), name="r")
    proc.start()
    try:
        assert started.wait(WAIT)
        writer = SharedMemory(SensorData, name=shm_name)
        writer.write(temperature=9.0, status_msg="late")
        assert out.get(timeout=WAIT) == (9.0, "late")
    finally:
        join_ok(proc)
    writer.close()


def test_open_timeout_runs_out(shm_name: str) -> None:
    with pytest.raises(FileNotFoundError, match=r"waited 0\.05 s"):
        SharedMemory(SensorData, name=shm_name, create=False, open_timeout=0.05)
    with pytest.raises(FileNotFoundError, match=shm_name):
        SharedMemory.open(shm_name, open_timeout=0.01)


def test_open_timeout_arguments_are_checked(shm_name: str) -> None:
    with pytest.raises(ValueError, match="open_timeout is for readers"):
        SharedMemory(SensorData, name=shm_name, open_timeout=1.0)
    with pytest.raises(TypeError, match="open_timeout must be None or a number"):
        SharedMemory(SensorData, name=shm_name, create=False, open_timeout="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="open_timeout must be a finite number"):
        SharedMemory.open(shm_name, open_timeout=-1)
