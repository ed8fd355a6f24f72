"""The writer handle: its own reads follow its memory (not the name), and a fork does not
hand its claim to the child."""

from __future__ import annotations

import os

import pytest
from flexible_shared_memory import SharedMemory
from records import SensorData


def test_writer_reads_its_own_segment_after_unlink(shm_name: str) -> None:
    # unlink() says handles that have the segment open keep working: the writer's own
    # read must follow the memory it writes, not whatever the name refers to now.
    w = SharedMemory(SensorData, name=shm_name)
    w.write(temperature=1.5)
    w.unlink()
    assert w.read().temperature.value == 1.5
    w.write(temperature=2.5)
    assert w.read().temperature.value == 2.5
    w.close()


def test_writer_does_not_read_a_new_segment_under_its_old_name(shm_name: str) -> None:
    w = SharedMemory(SensorData, name=shm_name)
    w.write(temperature=1.0)
    w.unlink()
    other = SharedMemory(SensorData, name=shm_name)
    other.write(temperature=99.0)
    assert w.read().temperature.value == 1.0
    other.close()
    w.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_closing_keeps_the_parents_writer_claim(shm_name: str) -> None:
    w = SharedMemory(SensorData, name=shm_name)
    w.write(temperature=3.0)
    pid = os.fork()
    if pid == 0:  # child: drop its copy of the handle, then leave without cleanup
        code = 0
        try:
            w.close()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent is alive and still the writer: nobody else may take over.
    with pytest.raises(FileExistsError, match=str(os.getpid())):
        SharedMemory(SensorData, name=shm_name)
    w.close()
