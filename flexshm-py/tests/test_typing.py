"""Generic classes at run time: subscription works (the static side is typing_check.py,
checked by mypy --strict in `make lint-py`), and typing_check.py runs as written."""

import typing
from typing import Any

import typing_check
from flexible_shared_memory import Field, Record, SharedMemory
from records import SensorData


def test_typing_check_runs(shm_name: str) -> None:
    typing_check.check(shm_name)


def test_classes_subscript_at_run_time() -> None:
    for cls, arg in [(SharedMemory, SensorData), (Record, SensorData), (Field, float)]:
        alias = cls[arg]
        assert typing.get_origin(alias) is cls and typing.get_args(alias) == (arg,)
    assert typing.get_args(Field[Any]) == (Any,)


def test_subscripted_class_constructs_and_checks_like_the_class(shm_name: str) -> None:
    shm = SharedMemory[SensorData](SensorData, name=shm_name)
    assert type(shm) is SharedMemory and shm.record_type is SensorData
    assert isinstance(shm, SharedMemory) and isinstance(shm.read(), Record)
    shm.close()


def test_evaluated_annotations_resolve() -> None:
    def consume(shm: "SharedMemory[SensorData]", rec: "Record[SensorData]") -> "Field[float]":
        return rec.temperature

    hints = typing.get_type_hints(consume)
    assert hints["shm"] == SharedMemory[SensorData]
    assert hints["return"] == Field[float]
