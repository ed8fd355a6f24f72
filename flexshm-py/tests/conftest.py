"""Fixtures: unique segment names that are unlinked after each test, even on failure."""

from __future__ import annotations

import multiprocessing
import os
import signal
import uuid
from collections.abc import Callable, Iterator

import pytest

# Writer and reader run in separate processes started with "spawn", as a user's programs
# would be: nothing is inherited but what is passed explicitly.
SPAWN = multiprocessing.get_context("spawn")


def _unlink_quietly(name: str) -> None:
    # Segments are POSIX shared-memory objects; on Linux they live in /dev/shm.
    path = f"/dev/shm/{name}"
    if os.path.exists(path):
        os.unlink(path)


@pytest.fixture
def shm_name() -> Iterator[str]:
    """A segment name no other test uses; the segment is removed afterwards."""
    name = f"flexshm-pytest-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    yield name
    _unlink_quietly(name)


@pytest.fixture
def make_name() -> Iterator[Callable[[], str]]:
    """A factory of unique segment names, all removed afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"flexshm-pytest-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        made.append(name)
        return name

    yield make
    for name in made:
        _unlink_quietly(name)


def join_ok(proc: multiprocessing.process.BaseProcess, timeout: float = 60.0) -> None:
    """Waits for a child process and fails the test if it failed or hung."""
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail(f"{proc.name} did not finish within {timeout} s")
    assert proc.exitcode == 0, f"{proc.name} exited with {proc.exitcode}"


def default_sigint() -> None:
    """`preexec_fn` for a child the test interrupts with SIGINT: a process started in the
    background by a shell without job control inherits SIGINT ignored, and Python then
    never raises KeyboardInterrupt, so the child would not stop."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
