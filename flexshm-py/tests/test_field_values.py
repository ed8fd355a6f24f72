"""A Field compares and computes like its value (scalars and strings) or refuses to
(arrays), and converts to NumPy without hidden copies when asked not to copy."""

import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from flexible_shared_memory import Record, SharedMemory

NUMPY2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


@dataclass
class Values:
    temperature: float = 0.0
    count: int = 0
    flag: bool = False
    small: "int16" = 0
    ratio: "float32" = 0.0
    label: "str[8]" = ""
    image: "uint8[2,3]" = None  # type: ignore[assignment]
    samples: "float64[4]" = None  # type: ignore[assignment]


@dataclass
class Defaults:
    temperature: float = -273.15
    count: int = 7
    label: "str[8]" = "none"
    image: "uint8[2,3]" = None  # type: ignore[assignment]
    grid: "int16[2]" = None  # type: ignore[assignment]


@pytest.fixture
def rec(shm_name: str) -> Iterator[Record]:
    shm = SharedMemory(Values, name=shm_name)
    shm.write(
        temperature=23.5,
        count=7,
        flag=True,
        small=3,
        ratio=0.5,
        label="OK",
        image=np.arange(6, dtype=np.uint8).reshape(2, 3),
        samples=[1.0, 2.0, 3.0, 4.0],
    )
    yield shm.read()
    shm.close()


def test_scalar_fields_compare_by_value(rec: Record) -> None:
    t = rec.temperature
    assert t == 23.5 and not (t != 23.5)
    assert t != 23.4 and not (t == 23.4)
    assert 23.5 == t and 23.4 != t  # reflected
    assert t < 30 and t <= 23.5 and t > 20 and t >= 23.5
    assert 30 > t and 20 < t  # reflected order comparisons
    assert not (t < 23.5) and not (t > 23.5)
    assert rec.count == 7 and rec.count == 7.0 and rec.flag == True  # noqa: E712
    assert rec.small == 3 and rec.ratio == 0.5
    assert rec.label == "OK" and rec.label != "ok" and rec.label < "P"
    # Two fields compare by their values.
    assert rec.count < rec.temperature and rec.temperature == rec["temperature"]
    assert max([rec.count, rec.temperature]).name == "temperature"
    assert sorted([rec.temperature, rec.count], key=float)[0].name == "count"
    # Comparing with something of another type is what the value does.
    assert t != "23.5" and not (rec.label == 0)
    with pytest.raises(TypeError):
        _ = t < "30"


def test_scalar_fields_hash_like_their_value(rec: Record) -> None:
    assert hash(rec.temperature) == hash(23.5)
    assert hash(rec.label) == hash("OK")
    assert {rec.temperature: "t"}[23.5] == "t"
    assert 7 in {rec.count} and rec.count in {7}
    assert rec.temperature in [1.0, 23.5] and rec.label in ("OK", "x")


ARITHMETIC: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("+", operator.add),
    ("-", operator.sub),
    ("*", operator.mul),
    ("/", operator.truediv),
    ("//", operator.floordiv),
    ("%", operator.mod),
    ("**", operator.pow),
    ("divmod", divmod),
]


@pytest.mark.parametrize(("symbol", "op"), ARITHMETIC)
@pytest.mark.parametrize("other", [2, 0.5, np.float64(3.0), np.int16(3)])
def test_arithmetic_works_on_the_value_both_ways(
    rec: Record, symbol: str, op: Callable[[Any, Any], Any], other: Any
) -> None:
    for name in ["temperature", "count", "small", "ratio"]:
        field, value = rec[name], rec[name].value
        assert op(field, other) == op(value, other), (name, symbol)
        assert op(other, field) == op(other, value), (name, symbol, "reflected")
        assert type(op(field, other)) is type(op(value, other)), (name, symbol)


def test_arithmetic_examples_and_unary_operators(rec: Record) -> None:
    t = rec.temperature
    assert t + 1 == 24.5 and 1 + t == 24.5 and t - 0.5 == 23.0 and 30 - t == 6.5
    assert t * 2 == 47.0 and t / 2 == 11.75 and 47 / t == 2.0
    assert rec.count // 2 == 3 and rec.count % 4 == 3 and 2**rec.count == 128
    assert pow(rec.count, 2, 5) == 4 and divmod(rec.count, 3) == (2, 1)
    assert -t == -23.5 and +t == 23.5 and abs(-t) == 23.5 and abs(rec.count) == 7
    assert round(t) == 24 and round(t, 0) == 24.0 and math.floor(t) == 23
    # Field with field.
    assert t + rec.count == 30.5 and rec.count * rec.count == 49
    # The result is a plain value, not a Field.
    assert type(t + 1) is float and type(rec.count + 1) is int
    assert isinstance(rec.small + 1, np.integer)  # a NumPy scalar field gives NumPy results
    # Strings support what str supports.
    assert rec.label + "!" == "OK!" and "<" + rec.label == "<OK" and rec.label * 2 == "OKOK"
    with pytest.raises(TypeError):
        _ = rec.label - 1
    with pytest.raises(TypeError):
        _ = t + "1"


def test_numpy_operands_on_either_side(rec: Record) -> None:
    t = rec.temperature
    assert np.float64(2.0) * t == 47.0 and t * np.float64(2.0) == 47.0
    assert np.array_equal(np.array([1.0, 2.0]) + t, [24.5, 25.5])
    assert np.array_equal(t + np.array([1.0, 2.0]), [24.5, 25.5])
    assert np.array_equal(np.array([23.5, 1.0]) == t, [True, False])
    assert np.sqrt(rec.count) == math.sqrt(7)  # ufuncs take the value through __array__


ARRAY_OPERATIONS: list[Callable[[Any], Any]] = [
    lambda f: f == 1,
    lambda f: f != 1,
    lambda f: f < 1,
    lambda f: f >= 1,
    lambda f: 1 == f,
    lambda f: f + 1,
    lambda f: 1 + f,
    lambda f: f - 1,
    lambda f: f * 2,
    lambda f: 2 * f,
    lambda f: f / 2,
    lambda f: f // 2,
    lambda f: f % 2,
    lambda f: f**2,
    lambda f: 2**f,
    lambda f: -f,
    lambda f: +f,
    lambda f: abs(f),
    lambda f: round(f),
    lambda f: hash(f),
    lambda f: f == f,
    lambda f: np.ones((2, 3)) == f,
    lambda f: np.ones((2, 3)) + f,
    lambda f: np.float64(1.0) + f,
    lambda f: f in [1, 2],
    lambda f: {f},
]


@pytest.mark.parametrize("operation", ARRAY_OPERATIONS)
@pytest.mark.parametrize("name", ["image", "samples"])
def test_array_fields_refuse_comparison_and_arithmetic(
    rec: Record, name: str, operation: Callable[[Any], Any]
) -> None:
    with pytest.raises(TypeError, match=rf"Field '{name}' is an array .*field\.value"):
        operation(rec[name])


def test_array_operand_against_a_scalar_field_is_refused(rec: Record) -> None:
    with pytest.raises(TypeError, match="Field 'image' is an array"):
        _ = rec.temperature == rec.image
    with pytest.raises(TypeError, match="Field 'samples' is an array"):
        _ = rec.count + rec.samples
    with pytest.raises(TypeError, match="Field 'image' is an array"):
        _ = pow(rec.count, 2, rec.image)


def test_array_fields_still_convert_and_index_through_value(rec: Record) -> None:
    image = rec.image
    assert np.array_equal(image.value, [[0, 1, 2], [3, 4, 5]])
    assert (image.value == 1).sum() == 1  # the documented way
    assert np.array_equal(np.asarray(image) + 1, image.value + 1)


def test_bool_keeps_its_behaviour(rec: Record, shm_name: str) -> None:
    assert bool(rec.temperature) and bool(rec.flag) and bool(rec.label)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(rec.image)  # like bool() of a NumPy array of several elements
    reader = SharedMemory(Defaults, name=shm_name + "-b")
    try:
        unwritten = reader.read()
        assert not bool(unwritten.image)  # the default, None
    finally:
        reader.close()
        reader.unlink()


def test_unwritten_fields_compare_by_their_default(shm_name: str) -> None:
    shm = SharedMemory(Defaults, name=shm_name)
    rec = shm.read()
    assert all(f.unwritten for f in rec)
    assert rec.temperature == -273.15 and rec.temperature + 273.15 == 0.0
    assert rec.count == 7 and rec.count > 6 and hash(rec.count) == hash(7)
    assert rec.label == "none"
    # An array field without a default array reads as None, but is still an array field.
    assert rec.image.value is None
    with pytest.raises(TypeError, match="Field 'image' is an array"):
        _ = rec.image == None  # noqa: E711
    with pytest.raises(TypeError, match="Field 'grid' is an array"):
        _ = rec.grid + 1
    shm.write(count=8)
    rec = shm.read()
    assert rec.count == 8 and rec.temperature == -273.15  # the other default is unchanged
    shm.close()


# --- NumPy's array protocol: np.asarray(field, copy=...) ------------------------------


def test_array_protocol_without_copy_gives_the_records_view(rec: Record) -> None:
    image = rec.image
    view = image.__array__(copy=False)
    assert np.shares_memory(view, image.value) and not view.flags.writeable
    assert image.__array__(np.uint8, copy=False).dtype == np.uint8
    with pytest.raises(ValueError, match=r"Field 'image'.*copy=False.*uint8.*float64"):
        image.__array__(np.float64, copy=False)
    with pytest.raises(ValueError, match=r"Field 'temperature'.*copy=False.*float"):
        rec.temperature.__array__(copy=False)
    with pytest.raises(ValueError, match=r"Field 'label'.*copy=False"):
        rec.label.__array__(copy=False)
    # copy=None copies only when it must; copy=True always does.
    assert np.shares_memory(image.__array__(), image.value)
    assert image.__array__(np.float64).dtype == np.float64
    copied = image.__array__(copy=True)
    assert not np.shares_memory(copied, image.value) and copied.flags.writeable
    assert rec.temperature.__array__().shape == ()


@pytest.mark.skipif(not NUMPY2, reason="np.asarray(copy=...) is NumPy 2")
def test_numpy2_asarray_copy_false(rec: Record) -> None:
    image = rec.image
    arr = np.asarray(image, copy=False)
    assert np.shares_memory(arr, image.value) and not arr.flags.writeable
    assert np.shares_memory(np.asarray(image, dtype=np.uint8, copy=False), image.value)
    with pytest.raises(ValueError, match="copy=False"):
        np.asarray(image, dtype=np.float64, copy=False)
    with pytest.raises(ValueError, match="copy=False"):
        np.asarray(rec.temperature, copy=False)
    assert np.shares_memory(np.asarray(image), image.value)  # copy=None: no copy needed
    arr = np.asarray(image, copy=True)
    assert not np.shares_memory(arr, image.value) and arr.flags.writeable
    arr = np.array(image)
    assert not np.shares_memory(arr, image.value) and arr.flags.writeable


def test_asarray_and_array_as_numpy_1_calls_them(rec: Record) -> None:
    image = rec.image
    assert np.shares_memory(np.asarray(image), image.value)
    arr = np.array(image)
    assert not np.shares_memory(arr, image.value) and arr.flags.writeable
    assert np.asarray(image, dtype=np.int64).dtype == np.int64
    assert np.asarray(rec.temperature) == 23.5
