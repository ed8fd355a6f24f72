"""Batches: read_many() (records or a NumPy structured array) and write_many()."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import pytest
from flexible_shared_memory import SharedMemory


@dataclass
class Tick:
    n: int = 0
    x: float = 0.0
    label: "str[4]" = ""
    v: "float32[3]" = None  # type: ignore[assignment]
    ok: bool = False


def _fifo(name: str, slots: int = 8) -> tuple[SharedMemory[Tick], SharedMemory[Tick]]:
    writer = SharedMemory(Tick, name=name, slots=slots)
    reader = SharedMemory(Tick, name=name, create=False)
    return writer, reader


def test_read_many_returns_the_unread_records_in_order(shm_name: str) -> None:
    writer, reader = _fifo(shm_name)
    for n in range(1, 6):
        writer.write(n=n)
        writer.finalize()
    got = reader.read_many(3)
    assert [(r.commit, r.n.value, r.lost) for r in got] == [(1, 1, 0), (2, 2, 0), (3, 3, 0)]
    got = reader.read_many(100, timeout=0)
    assert [r.n.value for r in got] == [4, 5]
    # Nothing left: an empty list at the timeout, not an exception.
    assert reader.read_many(10, timeout=0) == []
    assert reader.read_many(10, timeout=0.01) == []


def test_read_many_counts_losses_per_record(shm_name: str) -> None:
    writer, reader = _fifo(shm_name, slots=4)
    for n in range(1, 11):
        writer.write(n=n)
        writer.finalize()
    got = reader.read_many(10, timeout=0)
    # Ring of 4: records 1..6 were overwritten before the reader's first read.
    assert [(r.n.value, r.lost) for r in got] == [(7, 6), (8, 0), (9, 0), (10, 0)]


def test_read_many_waits_for_the_first_record(shm_name: str) -> None:
    import threading

    writer, reader = _fifo(shm_name)
    started = threading.Event()

    def produce() -> None:
        started.wait()
        writer.write(n=42)
        writer.finalize()

    t = threading.Thread(target=produce)
    t.start()
    started.set()
    got = reader.read_many(5, timeout=10)
    t.join()
    assert [r.n.value for r in got] == [42]


def test_read_many_single_slot_returns_the_newest(shm_name: str) -> None:
    writer = SharedMemory(Tick, name=shm_name)
    reader = SharedMemory(Tick, name=shm_name, create=False)
    writer.write(n=1)
    writer.write(n=2)
    got = reader.read_many(10)
    assert [r.n.value for r in got] == [2]


def test_read_many_as_array(shm_name: str) -> None:
    writer, reader = _fifo(shm_name)
    writer.write(n=1, x=1.5, label="héllo", v=[1, 2, 3], ok=True)
    writer.finalize()
    writer.write(n=2)  # the other fields carry over, not modified
    writer.finalize()
    arr = reader.read_many(10, timeout=0, as_array=True)
    assert isinstance(arr, np.ndarray) and arr.shape == (2,)
    assert arr.dtype.names == (
        "commit",
        "lost",
        "written",
        "truncated",
        "modified",
        "corrupt",
        "n",
        "x",
        "label",
        "v",
        "ok",
    )
    assert list(arr["commit"]) == [1, 2]
    assert list(arr["n"]) == [1, 2]
    assert list(arr["x"]) == [1.5, 1.5]
    assert list(arr["label"]) == ["héll", "héll"]  # str[4]: cut to 4 characters
    assert arr["v"].shape == (2, 3) and arr["v"].dtype == np.float32
    assert arr["v"][1].tolist() == [1.0, 2.0, 3.0]
    assert list(arr["ok"]) == [True, True]
    all_fields = 0b11111
    assert list(arr["written"]) == [all_fields, all_fields]
    assert list(arr["truncated"]) == [0b00100, 0b00100]  # label was truncated
    assert list(arr["modified"]) == [all_fields, 0b00001]
    assert list(arr["corrupt"]) == [0, 0]
    # Nothing new: an empty array of the same dtype.
    empty = reader.read_many(10, timeout=0, as_array=True)
    assert empty.shape == (0,) and empty.dtype == arr.dtype


def test_read_many_as_array_unwritten_fields_are_zero(shm_name: str) -> None:
    writer, reader = _fifo(shm_name)
    writer.write(n=7)
    writer.finalize()
    arr = reader.read_many(1, as_array=True)
    assert arr["written"][0] == 0b00001
    assert arr["x"][0] == 0.0 and arr["label"][0] == "" and arr["v"][0].tolist() == [0, 0, 0]


def test_read_many_as_array_marks_a_corrupt_field_and_keeps_the_rest(shm_name: str) -> None:
    writer, reader = _fifo(shm_name)
    writer.write(n=3, label="ab")
    writer.finalize()
    # The label's bytes in record 1's buffer: not UTF-8 (the layout is docs/PROTOCOL.md's:
    # 16-byte slot header, 8 bytes of metadata per field, then the values).
    with open(f"/dev/shm/{shm_name}", "rb") as f:
        head = f.read(40)
    slots_offset, slot_stride = (
        struct.unpack_from("<I", head, 28)[0],
        struct.unpack_from("<I", head, 36)[0],
    )
    label_at = slots_offset + slot_stride + 16 + 8 * 5 + 8 + 8  # after n (int32+pad), x
    with open(f"/dev/shm/{shm_name}", "r+b") as f:
        f.seek(label_at)
        f.write(b"\xff")
    arr = reader.read_many(1, as_array=True)
    assert arr["n"][0] == 3
    assert arr["corrupt"][0] == 0b00100
    assert arr["written"][0] & 0b00100 == 0
    assert arr["label"][0] == ""


def test_read_many_bad_arguments(shm_name: str) -> None:
    _, reader = _fifo(shm_name)
    with pytest.raises(ValueError, match="max_records must be >= 1"):
        reader.read_many(0)
    with pytest.raises(TypeError, match="max_records"):
        reader.read_many(True)
    with pytest.raises(TypeError, match="as_array"):
        reader.read_many(1, as_array=1)  # type: ignore[call-overload]


def test_read_many_as_array_refuses_a_field_named_like_a_column(shm_name: str) -> None:
    @dataclass
    class Clash:
        commit: int = 0

    w = SharedMemory(Clash, name=shm_name, slots=2)
    w.write(commit=1)
    w.finalize()
    r = SharedMemory(Clash, name=shm_name, create=False)
    with pytest.raises(ValueError, match="'commit'"):
        r.read_many(1, as_array=True)
    assert [rec["commit"].value for rec in r.read_many(1)] == [1]


def test_write_many_commits_one_record_per_item(shm_name: str) -> None:
    writer, reader = _fifo(shm_name, slots=16)
    last = writer.write_many([{"n": 1, "x": 0.5}, {"n": 2}, {"label": "z"}])
    assert last == 3
    got = reader.read_many(10, timeout=0)
    assert [(r.n.value, r.x.value, r.label.value) for r in got] == [
        (1, 0.5, ""),
        (2, 0.5, ""),
        (2, 0.5, "z"),
    ]
    assert [r.n.modified for r in got] == [True, True, False]


def test_write_many_writes_nothing_when_an_item_is_bad(shm_name: str) -> None:
    writer, reader = _fifo(shm_name)
    with pytest.raises(OverflowError, match="record 1"):
        writer.write_many([{"n": 1}, {"n": 2**40}])
    with pytest.raises(TypeError, match=r"record 0.*no field 'nope'"):
        writer.write_many([{"nope": 1}])
    with pytest.raises(TypeError, match="record 0 must be a mapping"):
        writer.write_many([3])  # type: ignore[list-item]
    assert reader.read_many(10, timeout=0) == []


def test_write_many_single_slot_commits_each_item(shm_name: str) -> None:
    writer = SharedMemory(Tick, name=shm_name)
    assert writer.write_many([{"n": 1}, {"n": 2}]) == 2
    reader = SharedMemory(Tick, name=shm_name, create=False)
    assert reader.read().n.value == 2


def test_write_many_on_a_reader_is_refused(shm_name: str) -> None:
    import io

    _, reader = _fifo(shm_name)
    with pytest.raises(io.UnsupportedOperation):
        reader.write_many([{"n": 1}])
