"""Wrongly typed arguments of SharedMemory() and read() are TypeErrors naming the
parameter; nothing is created by a constructor call that fails."""

import inspect
from typing import Any

import numpy as np
import pytest
from flexible_shared_memory import SharedMemory
from records import SensorData


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"slots": True}, "slots must be None or an int .* got bool True"),
        ({"slots": False}, "slots must be .* got bool False"),
        ({"slots": np.bool_(True)}, "slots must be"),
        ({"slots": "3"}, "slots must be .* got str '3'"),
        ({"slots": 3.0}, "slots must be .* got float 3.0"),
        ({"slots": [3]}, "slots must be"),
        ({"create": "yes"}, "create must be True or False, got str 'yes'"),
        ({"create": 1}, "create must be True or False, got int 1"),
        ({"create": None}, "create must be True or False, got NoneType None"),
    ],
)
def test_constructor_argument_types(shm_name: str, kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(TypeError, match=needle):
        SharedMemory(SensorData, name=shm_name, **kwargs)
    with pytest.raises(FileNotFoundError):
        SharedMemory(SensorData, name=shm_name, create=False)  # nothing was created


@pytest.mark.parametrize("name", [b"sensors", 3, None])
def test_name_must_be_a_str(name: Any) -> None:
    with pytest.raises(TypeError, match="name must be a str, got"):
        SharedMemory(SensorData, name=name)


def test_well_typed_arguments_are_accepted(shm_name: str) -> None:
    shm = SharedMemory(SensorData, name=shm_name, create=np.bool_(True), slots=np.int64(3))
    assert shm.is_writer and shm.slots == 3
    shm.write(temperature=1.0)
    shm.finalize()
    rec = shm.read(timeout=np.float32(0.5), latest=np.bool_(False), reset_modified=False)
    assert rec.temperature.value == 1.0
    shm.write(temperature=2.0)
    shm.finalize()
    assert shm.read(timeout=1, latest=True).temperature.value == 2.0  # int seconds
    shm.close()


@pytest.mark.parametrize("slots", [0, -1, 2**40, 2**70, -(2**70)])
def test_slot_counts_out_of_range_are_value_errors(shm_name: str, slots: int) -> None:
    with pytest.raises(ValueError, match="slots must be 1"):
        SharedMemory(SensorData, name=shm_name, slots=slots)


@pytest.mark.parametrize(
    ("kwargs", "exc", "needle"),
    [
        ({"timeout": "1"}, TypeError, "timeout must be None or a number of seconds, got str '1'"),
        ({"timeout": b"1"}, TypeError, "timeout must be"),
        ({"timeout": True}, TypeError, "timeout must be .* got bool True"),
        ({"timeout": [1]}, TypeError, "timeout must be"),
        ({"timeout": -1}, ValueError, "timeout must be a finite number >= 0"),
        ({"timeout": float("nan")}, ValueError, "timeout must be a finite number"),
        ({"timeout": 10**400}, ValueError, "timeout must be a finite number"),
        ({"latest": 1}, TypeError, "latest must be True or False, got int 1"),
        ({"latest": "yes"}, TypeError, "latest must be True or False"),
        ({"latest": None}, TypeError, "latest must be True or False"),
        ({"reset_modified": 0}, TypeError, "reset_modified must be True or False, got int 0"),
    ],
)
def test_read_argument_types(
    shm_name: str, kwargs: dict[str, Any], exc: type[Exception], needle: str
) -> None:
    shm = SharedMemory(SensorData, name=shm_name)
    with pytest.raises(exc, match=needle):
        shm.read(**kwargs)
    shm.close()


def test_write_takes_keywords_only(shm_name: str) -> None:
    shm = SharedMemory(SensorData, name=shm_name)
    try:
        with pytest.raises(TypeError, match=r"as keywords .* got 1 positional"):
            shm.write(23.5)  # type: ignore[misc]
        with pytest.raises(TypeError, match=r"as keywords .* got 2 positional"):
            SharedMemory.write(shm, 1, 2)  # type: ignore[misc]
        with pytest.raises(TypeError):
            SharedMemory.write("not a handle", temperature=1.0)  # type: ignore[arg-type]
        assert shm.read().commit == 0  # nothing was written
        assert str(inspect.signature(SharedMemory.write)) == "(self, /, **fields)"
    finally:
        shm.close()
        shm.unlink()


def test_write_finds_fields_by_any_equal_name(shm_name: str) -> None:
    """Field names built at run time (not the interned literals of a call site) and
    `str` subclasses name the same fields."""

    class Name(str):
        pass

    shm = SharedMemory(SensorData, name=shm_name)
    try:
        built = "".join(["temper", "ature"])
        shm.write(**{built: 1.5, Name("pressure"): 2.5})
        d = shm.read()
        assert (d.temperature.value, d.pressure.value) == (1.5, 2.5)
        assert d["".join(["press", "ure"])].value == 2.5
        assert getattr(d, "".join(["temper", "ature"])).value == 1.5
        with pytest.raises(TypeError, match="has no field 'temp'"):
            shm.write(**{"".join(["te", "mp"]): 1.0})
    finally:
        shm.close()
        shm.unlink()
