"""Handle life cycle: roles, close, unlink, takeover, mismatches, context managers."""

import subprocess
import sys
from dataclasses import dataclass

import pytest
from flexible_shared_memory import SharedMemory
from records import SensorData


@dataclass
class Other:
    temperature: int = 0


def test_open_missing_segment_is_file_not_found(shm_name: str) -> None:
    with pytest.raises(FileNotFoundError, match=shm_name):
        SharedMemory(SensorData, name=shm_name, create=False)


def test_use_after_close_is_value_error(shm_name: str) -> None:
    shm = SharedMemory(SensorData, name=shm_name)
    shm.close()
    shm.close()  # closing twice is fine
    assert shm.closed
    for call in (lambda: shm.write(temperature=1.0), shm.read, shm.finalize):
        with pytest.raises(ValueError, match="closed SharedMemory"):
            call()
    shm.unlink()  # the name can still be removed


def test_context_manager_closes_but_keeps_the_segment(shm_name: str) -> None:
    with SharedMemory(SensorData, name=shm_name) as shm:
        shm.write(temperature=3.0)
    assert shm.closed
    with SharedMemory(SensorData, name=shm_name, create=False) as reader:
        assert reader.read().temperature.value == 3.0


def test_second_writer_while_first_is_alive_names_its_pid(shm_name: str) -> None:
    first = SharedMemory(SensorData, name=shm_name)
    with pytest.raises(FileExistsError, match=str(__import__("os").getpid())):
        SharedMemory(SensorData, name=shm_name)
    first.close()


def test_restarted_writer_takes_over_and_keeps_the_last_record(shm_name: str) -> None:
    first = SharedMemory(SensorData, name=shm_name)
    first.write(temperature=5.0, status_msg="kept")
    first.close()
    second = SharedMemory(SensorData, name=shm_name)
    rec = second.read()
    assert rec.temperature.value == 5.0 and rec.status_msg.value == "kept"
    second.write(pressure=1.0)
    rec = second.read()
    assert rec.temperature.value == 5.0 and rec.pressure.value == 1.0


def test_layout_mismatch_names_the_field(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name)
    with pytest.raises(ValueError, match="temperature"):
        SharedMemory(Other, name=shm_name, create=False)
    writer.close()
    with pytest.raises(ValueError, match="temperature"):
        SharedMemory(Other, name=shm_name)  # no takeover across layouts


def test_slots_mismatch_and_bad_slots(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name, slots=4)
    with pytest.raises(ValueError, match="slot"):
        SharedMemory(SensorData, name=shm_name, create=False, slots=8)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    assert (reader.mode, reader.slots, reader.is_writer) == ("fifo", 4, False)
    assert (writer.mode, writer.slots, writer.is_writer) == ("fifo", 4, True)
    with pytest.raises(ValueError, match="slots"):
        SharedMemory(SensorData, name=shm_name + "x", slots=0)


def test_unlink_removes_the_name(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    writer.write(temperature=1.0)
    writer.unlink()
    with pytest.raises(FileNotFoundError):
        SharedMemory(SensorData, name=shm_name, create=False)
    assert reader.read().temperature.value == 1.0  # open handles keep working
    with pytest.raises(FileNotFoundError):
        writer.unlink()


def test_invalid_name_is_value_error() -> None:
    with pytest.raises(ValueError, match="name"):
        SharedMemory(SensorData, name="a/b")


def test_segment_survives_interpreter_exit(shm_name: str) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[2])\n"
        "from flexible_shared_memory import SharedMemory\n"
        "from records import SensorData\n"
        "shm = SharedMemory(SensorData, name=sys.argv[1])\n"
        "shm.write(temperature=9.5)\n"
        # Exit without close() or unlink(): nothing may remove the segment behind our back.
    )
    tests_dir = __import__("os").path.dirname(__file__)
    subprocess.run([sys.executable, "-c", code, shm_name, tests_dir], check=True)
    reader = SharedMemory(SensorData, name=shm_name, create=False)
    assert reader.read().temperature.value == 9.5
    # The writer process is gone, so a new writer takes over.
    SharedMemory(SensorData, name=shm_name).close()


def test_write_without_fields_commits_nothing(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name)
    writer.write(temperature=1.0)
    writer.write()
    assert writer.finalize() == 1  # single-slot: nothing to finalize, newest commit
    assert writer.read().commit == 1
    writer.close()
