"""A Record pickles as its plain values: unpickling gives the record class's instance
(what as_dataclass() gives), so records go through multiprocessing queues."""

import copy
import pickle
from dataclasses import dataclass, field

import children
import numpy as np
import pytest
from conftest import SPAWN, join_ok
from flexible_shared_memory import Record, SharedMemory
from records import SensorData, Tracked


@dataclass
class Mixed:
    temperature: float = 0.0
    count: int = 0
    flag: bool = False
    ratio: "float32" = 0.0
    label: "str[8]" = "none"
    image: "uint8[2,3]" = None  # type: ignore[assignment]
    grid: "int16[2]" = field(default_factory=lambda: np.full(2, 9, np.int16))


def _equal(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and np.array_equal(a, b) and a.dtype == b.dtype  # type: ignore[union-attr]
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_record_unpickles_as_its_dataclass(shm_name: str, protocol: int) -> None:
    shm = SharedMemory(Mixed, name=shm_name)
    shm.write(
        temperature=23.5, count=-4, ratio=0.5, image=np.arange(6, dtype=np.uint8).reshape(2, 3)
    )
    rec = shm.read()
    got = pickle.loads(pickle.dumps(rec, protocol=protocol))
    want = rec.as_dataclass()
    assert type(got) is Mixed
    assert vars(got).keys() == vars(want).keys()
    for name in vars(want):
        assert _equal(getattr(got, name), getattr(want, name)), name
    # Written values, the float32 scalar's NumPy type, unwritten defaults.
    assert got.temperature == 23.5 and got.count == -4 and got.label == "none"
    assert type(got.ratio) is np.float32 and got.grid.tolist() == [9, 9]
    # Arrays arrive as arrays of their own, not views of the record. Protocol 5 keeps
    # NumPy's read-only flag (as for any read-only array); older protocols do not.
    assert got.image.tolist() == [[0, 1, 2], [3, 4, 5]] and got.image.base is not rec
    assert not np.shares_memory(got.image, rec.image.value)
    assert got.image.flags.writeable == (protocol < 5)
    shm.close()


def test_pickle_holds_no_handle_and_no_package_reference(shm_name: str) -> None:
    shm = SharedMemory(SensorData, name=shm_name)
    shm.write(temperature=1.5, status_msg="OK")
    data = pickle.dumps(shm.read())
    assert b"flexible_shared_memory" not in data and shm_name.encode() not in data
    shm.close()
    shm.unlink()
    assert pickle.loads(data) == SensorData(temperature=1.5, status_msg="OK")


def test_copy_of_a_record_is_the_record(shm_name: str) -> None:
    shm = SharedMemory(SensorData, name=shm_name)
    rec = shm.read()
    assert copy.copy(rec) is rec and copy.deepcopy(rec) is rec  # records never change
    assert isinstance(copy.deepcopy([rec])[0], Record)
    shm.close()


def test_records_go_through_a_multiprocessing_queue(shm_name: str) -> None:
    inbox, out = SPAWN.Queue(), SPAWN.Queue()
    proc = SPAWN.Process(target=children.record_consumer, args=(inbox, out), name="consumer")
    proc.start()
    try:
        fifo = SharedMemory(Tracked, name=shm_name, slots=4)
        for i in range(3):
            fifo.write(position=[i, i + 0.5, i + 1.0], temperature=20.0 + i)
            fifo.finalize()
            inbox.put(fifo.read(timeout=1))
        got = [out.get(timeout=30) for _ in range(3)]
        fifo.close()
    finally:
        inbox.put(None)
        join_ok(proc)
    for i, (type_name, values) in enumerate(got):
        assert type_name == "Tracked"
        assert values["temperature"] == 20.0 + i
        assert values["position"] == [i, i + 0.5, i + 1.0]
        assert values["image"] is None  # unwritten: the class's default
