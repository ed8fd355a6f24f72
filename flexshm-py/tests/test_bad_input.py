"""Bad input raises an exception naming the field, and the write is all-or-nothing:
the segment's contents are unchanged afterwards."""

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from flexible_shared_memory import SharedMemory


@dataclass
class Everything:
    temperature: float = 0.0
    count: int = 0
    flag: bool = False
    small: "uint8" = 0
    msg: "str[16]" = ""
    image: "uint8[4,6,3]" = None  # type: ignore[assignment]
    coeffs: "float64[5]" = None  # type: ignore[assignment]


GOOD: dict[str, Any] = {
    "temperature": 21.5,
    "count": 42,
    "flag": True,
    "small": 200,
    "msg": "before",
    "image": np.full((4, 6, 3), 3, np.uint8),
    "coeffs": [1.0, 2.0, 3.0, 4.0, 5.0],
}


def _snapshot(reader: SharedMemory) -> tuple[int, dict[str, Any]]:
    rec = reader.read()
    values = {}
    for f in rec:
        v = f.value
        values[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
    return rec.commit, values


BAD_INPUTS = [
    # (fields, exception, text the message must contain)
    ({"temperature": "hot"}, TypeError, "temperature"),
    ({"temperature": None}, TypeError, "temperature"),
    ({"count": 1.5}, TypeError, "count"),
    ({"count": "3"}, TypeError, "count"),
    ({"flag": 1}, TypeError, "flag"),
    ({"msg": 42}, TypeError, "msg"),
    ({"msg": b"bytes"}, TypeError, "msg"),
    ({"image": "pixels"}, TypeError, "image"),
    ({"nope": 1}, TypeError, "nope"),
    ({"count": 2**31}, OverflowError, "count"),
    ({"count": -(2**31) - 1}, OverflowError, "count"),
    ({"count": 2**70}, OverflowError, "count"),
    ({"small": 256}, OverflowError, "small"),
    ({"small": -1}, OverflowError, "small"),
    ({"temperature": 10**400}, OverflowError, "temperature"),
    ({"image": np.zeros((4, 5, 3), np.uint8)}, ValueError, "image"),
    ({"image": np.zeros((4, 6), np.uint8)}, ValueError, "image"),
    ({"image": np.zeros((4, 6, 3, 1), np.uint8)}, ValueError, "image"),
    ({"image": 7}, ValueError, "image"),
    ({"image": np.zeros((4, 6, 3), np.float64)}, TypeError, "same-kind"),
    ({"coeffs": [[1.0, 2.0]]}, ValueError, "coeffs"),
    ({"coeffs": ["a", "b"]}, TypeError, "coeffs"),
    ({"coeffs": [1.0, [2.0, 3.0]]}, TypeError, "coeffs"),
    ({"msg": "lone \ud800 surrogate"}, ValueError, "msg"),
    ({"msg": "\udcff"}, ValueError, "UTF-8"),
]


@pytest.mark.parametrize(("bad", "exc", "needle"), BAD_INPUTS)
def test_bad_value_raises_and_changes_nothing(
    shm_name: str, bad: dict[str, Any], exc: type, needle: str
) -> None:
    writer = SharedMemory(Everything, name=shm_name)
    reader = SharedMemory(Everything, name=shm_name, create=False)
    writer.write(**GOOD)
    before = _snapshot(reader)
    # A valid value for another field in the same call must not be written either.
    other = {"msg": "after"} if "msg" not in bad else {"temperature": -1.0}
    with pytest.raises(exc, match=needle):
        writer.write(**other, **bad)
    assert _snapshot(reader) == before
    writer.close()


def test_bad_staged_fifo_value_leaves_pending_record_unchanged(shm_name: str) -> None:
    fifo = SharedMemory(Everything, name=shm_name, slots=4)
    fifo.write(temperature=1.0)
    with pytest.raises(OverflowError):
        fifo.write(temperature=2.0, count=2**40)
    fifo.finalize()
    rec = fifo.read(timeout=1)
    assert rec.temperature.value == 1.0 and rec.count.unwritten
    fifo.close()


def test_write_on_reader_handle_says_it_is_a_reader(shm_name: str) -> None:
    writer = SharedMemory(Everything, name=shm_name)
    reader = SharedMemory(Everything, name=shm_name, create=False)
    with pytest.raises(io.UnsupportedOperation, match=r"create=False.*reader"):
        reader.write(temperature=1.0)
    with pytest.raises(io.UnsupportedOperation, match="reader"):
        reader.finalize()
    assert reader.read().temperature.unwritten
    writer.close()
    reader.close()


def test_numpy_same_kind_casting_is_accepted(shm_name: str) -> None:
    writer = SharedMemory(Everything, name=shm_name)
    reader = SharedMemory(Everything, name=shm_name, create=False)
    writer.write(coeffs=np.arange(5, dtype=np.float32), image=np.ones((2, 6, 3), np.uint16))
    rec = reader.read()
    assert rec.coeffs.value.dtype == np.float64 and rec.coeffs.value.tolist() == [0, 1, 2, 3, 4]
    assert rec.image.value.dtype == np.uint8 and rec.image.value.shape == (2, 6, 3)
    # Non-contiguous input is copied into C order first.
    src = np.arange(4 * 6 * 3 * 2, dtype=np.uint8).reshape(4, 6, 3, 2)[..., 0]
    writer.write(image=src)
    assert np.array_equal(reader.read().image.value, src)
    writer.close()
