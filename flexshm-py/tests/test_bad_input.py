"""Bad input raises an exception naming the field, and the write is all-or-nothing:
the segment's contents are unchanged afterwards."""

import io
import warnings
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
    ratio: "float32" = 0.0
    ratios: "float32[2,2]" = None  # type: ignore[assignment]


GOOD: dict[str, Any] = {
    "temperature": 21.5,
    "count": 42,
    "flag": True,
    "small": 200,
    "msg": "before",
    "image": np.full((4, 6, 3), 3, np.uint8),
    "coeffs": [1.0, 2.0, 3.0, 4.0, 5.0],
    "ratio": 0.25,
    "ratios": [[0.5, 1.5], [2.5, 3.5]],
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
    # A finite value that float32 would store as infinity (inf and nan themselves are fine).
    ({"ratio": 1e39}, OverflowError, "'ratio': 1e39 is out of range for float32"),
    ({"ratio": -3.5e38}, OverflowError, "ratio"),
    ({"ratio": np.float64(1e300)}, OverflowError, "ratio"),
    ({"ratio": 10**39}, OverflowError, "ratio"),
    ({"ratios": [[0.0, 1.0], [1e39, 2.0]]}, OverflowError, r"'ratios'.*\(1, 0\) = 1e\+39"),
    ({"ratios": np.array([[np.inf, np.nan], [0.0, -1e300]])}, OverflowError, r"\(1, 1\)"),
    ({"ratios": np.full((3, 2, 2), 4e38)[:, 0]}, OverflowError, "ratios"),
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


def test_bad_value_after_an_array_changes_nothing(shm_name: str) -> None:
    # write() stages scalars and strings on the stack until it meets an array, then
    # stages the whole call again with arrays; an error after the array still comes
    # first-to-last and writes nothing.
    writer = SharedMemory(Everything, name=shm_name)
    reader = SharedMemory(Everything, name=shm_name, create=False)
    writer.write(**GOOD)
    before = _snapshot(reader)
    image = np.zeros((4, 6, 3), np.uint8)
    with pytest.raises(TypeError, match="field 'count'"):
        writer.write(msg="after", image=image, count="3")
    with pytest.raises(TypeError, match="field 'temperature'"):
        writer.write(temperature="hot", image=image, count="3")
    assert _snapshot(reader) == before
    writer.close()


def test_scalars_strings_and_arrays_in_one_call(shm_name: str) -> None:
    writer = SharedMemory(Everything, name=shm_name)
    reader = SharedMemory(Everything, name=shm_name, create=False)
    image = np.arange(72, dtype=np.uint8).reshape(4, 6, 3)
    writer.write(temperature=1.5, image=image, msg="mixed", count=-7)
    rec = reader.read()
    assert rec.temperature.value == 1.5 and rec.count.value == -7
    assert rec.msg.value == "mixed" and np.array_equal(rec.image.value, image)
    assert rec.flag.unwritten and rec.coeffs.unwritten
    # Nine keywords (more than write() stages on the stack), then one.
    writer.write(**GOOD)
    writer.write(msg="é" * 16)
    rec = reader.read()
    assert _snapshot(reader)[1]["count"] == GOOD["count"]
    assert rec.msg.value == "é" * 16 and rec.msg.modified and not rec.count.modified
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


def test_float32_keeps_inf_nan_and_the_largest_finite_values(shm_name: str) -> None:
    writer = SharedMemory(Everything, name=shm_name)
    f32_max = float(np.finfo(np.float32).max)
    for value in [np.inf, -np.inf, f32_max, -f32_max, 3.40282356e38]:  # the last rounds down
        writer.write(ratio=value, ratios=[[value, -value], [np.nan, 0.0]])
        rec = writer.read()
        assert rec.ratio.value == np.float32(value)
        assert rec.ratios.value[0].tolist() == [np.float32(value), -np.float32(value)]
        assert np.isnan(rec.ratios.value[1, 0])
    writer.write(ratio=float("nan"))
    assert np.isnan(writer.read().ratio.value)
    writer.close()


def test_float32_overflow_check_emits_no_numpy_warning(shm_name: str) -> None:
    writer = SharedMemory(Everything, name=shm_name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's "overflow encountered in cast" would raise
        with pytest.raises(OverflowError, match="ratios"):
            writer.write(ratios=[[1e39, 0.0], [0.0, 0.0]])
        writer.write(ratios=np.full((2, 2), 1.5))  # a cast that fits
    assert writer.read().ratios.value.tolist() == [[1.5, 1.5], [1.5, 1.5]]
    writer.close()
