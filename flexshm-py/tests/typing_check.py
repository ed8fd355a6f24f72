"""What a type checker infers for the package's API: `make lint-py` runs
``mypy --strict`` on this file, and test_typing.py runs it, so every line also works at
run time (on Python 3.10 as well).

Lines ending in ``# type: ignore[...]`` must be errors: under ``--strict``
(``warn_unused_ignores``) mypy reports an ignore that is not needed.
"""

import asyncio
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from flexible_shared_memory import Field, Record, SharedMemory

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type


# Annotations a type checker understands too (it would read "str[32]" as a name).
@dataclass
class SensorData:
    temperature: float = 0.0
    count: int = 0


@dataclass
class Level:
    level: int = 0


def celsius(field: Field[float]) -> float:
    """A function taking a field whose value is known to be a float."""
    return field.value


def untyped(shm: SharedMemory, rec: Record, field: Field) -> Any:
    """Unsubscripted annotations mean [Any] (the type variables default to Any)."""
    assert_type(shm, SharedMemory[Any])
    assert_type(rec, Record[Any])
    assert_type(field.value, Any)
    return rec.as_dataclass()


async def consume(shm: SharedMemory[SensorData]) -> bool:
    """wait_async() is awaited; `async for` yields records of the handle's class."""
    coro = assert_type(shm.wait_async(timeout=0), Coroutine[Any, Any, bool])
    waited = await coro
    if waited:
        async for record in shm:
            assert_type(record, Record[SensorData])
            break
    return waited


def check(name: str) -> None:
    """Creates the segment `name`, reads it back and unlinks it."""
    shm = SharedMemory(SensorData, name=name, permissions=0o600)
    assert_type(shm, SharedMemory[SensorData])
    assert_type(shm.record_type, type[SensorData])
    shm.write(temperature=23.5, count=3)
    assert_type(shm.finalize(), int)
    assert_type(shm.write_many([{"temperature": 23.5}]), int)

    with SharedMemory(SensorData, name=name, create=False) as reader:
        assert_type(reader, SharedMemory[SensorData])
        rec = reader.read(timeout=1.0)
        assert_type(rec, Record[SensorData])
        assert_type(rec.as_dataclass(), SensorData)
        assert_type(rec.as_dict(), dict[str, Any])
        assert_type(rec.commit, int)
        assert_type(rec.temperature, Field[Any])
        assert_type(rec["temperature"], Field[Any])
        assert_type(list(rec), list[Field[Any]])
        assert_type(rec.temperature.valid, bool)
        assert_type(celsius(rec.temperature), float)
        assert_type(untyped(reader, rec, rec.temperature), Any)

        # Scalar fields compare and compute like their values.
        assert rec.temperature == 23.5 and rec.temperature + 1 == 24.5
        assert_type(hash(rec.count), int)
        assert_type(rec.temperature.__array__(), np.ndarray[Any, Any])

        # Batches: records of the handle's class, or a structured array.
        assert_type(reader.read_many(4, timeout=0), list[Record[SensorData]])
        assert_type(reader.read_many(4, timeout=0, as_array=True), npt.NDArray[np.void])

        data: SensorData = rec.as_dataclass()
        assert data.temperature == 23.5
        wrong: Level = rec.as_dataclass()  # type: ignore[assignment]
        del wrong

    # Waiting and iteration: records of the handle's class.
    with SharedMemory(SensorData, name=name, create=False, open_timeout=1.0) as waiting:
        assert_type(waiting.wait(timeout=0), bool)
        for record in waiting:  # the writer's record is new to this handle
            assert_type(record, Record[SensorData])
            break
        assert_type(asyncio.run(consume(waiting)), bool)

    # open(): the record class is generated at run time, so statically it is Any.
    opened = SharedMemory.open(name, open_timeout=None)
    assert_type(opened, SharedMemory[Any])
    assert_type(opened.read().as_dataclass(), Any)
    opened.close()

    # Subscripted at run time, with the same static type.
    explicit = SharedMemory[SensorData](SensorData, name=name, create=False)
    assert_type(explicit, SharedMemory[SensorData])
    assert_type(explicit.read(), Record[SensorData])
    explicit.close()

    # A handle of one record class is not a handle of another.
    mismatched: SharedMemory[Level] = shm  # type: ignore[assignment]
    del mismatched
    # Arguments are typed (and checked at run time, see test_arguments.py).
    try:
        shm.read(timeout="1")  # type: ignore[arg-type]
    except TypeError:
        pass
    try:
        shm.wait(timeout="1")  # type: ignore[arg-type]
    except TypeError:
        pass

    shm.close()
    shm.unlink()
