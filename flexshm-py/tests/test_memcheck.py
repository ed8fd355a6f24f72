"""The extension under valgrind's memcheck: no invalid access and no use of uninitialised
memory in the extension, and no invalid access anywhere that its reference counting could
cause (a use after free shows up in the interpreter's own code).

Valgrind reports some errors in every Python process: the dynamic loader's string
functions read whole words past a string's end, and the interpreter's start-up uses a few
values memcheck takes for uninitialised. So an invalid access counts unless its frames are
the loader's, and an uninitialised value counts when the extension's frames are in its
stack.

`make test-py` installs valgrind when it can (root with apt) and sets
FLEXSHM_REQUIRE_VALGRIND=1 when it is there, so the test cannot pass by not running.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

WORKLOAD = Path(__file__).with_name("memcheck_workload.py")

# Frames that mark an invalid access as the dynamic loader's (its string functions read
# whole words past a string's end).
BENIGN = re.compile(r"dl-load\.c|dl-open\.c|_dl_|ld-linux")
# The first line of each kind of error report memcheck makes.
REPORT = re.compile(
    r"Invalid|Conditional jump|Use of uninitialised|Mismatched|Syscall param|Source and destination"
)


def error_blocks(log: str) -> list[str]:
    """Valgrind's error reports in `log`, one string per report."""
    blocks: list[str] = []
    current: list[str] = []
    for line in log.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if not line.startswith("=="):
            continue
        if body == "":
            if current:
                blocks.append("\n".join(current))
            current = []
        elif current or REPORT.match(body):
            current.append(body)
    if current:
        blocks.append("\n".join(current))
    return blocks


def offending(block: str) -> bool:
    """True for a report the extension may have caused."""
    if "_native" in block or "flexshm" in block:
        return True
    return block.startswith("Invalid") and not BENIGN.search(block)


def test_error_blocks_finds_reports() -> None:
    log = "\n".join(
        [
            "==1== Invalid read of size 8",
            "==1==    at 0x1: strncmp (strcmp-sse2.S:160)",
            "==1==    by 0x2: is_dst (dl-load.c:216)",
            "==1== ",
            "==1== Invalid write of size 4",
            "==1==    at 0x3: ??? (in /x/_native.abi3.so)",
            "==1== ",
            "==1== Conditional jump or move depends on uninitialised value(s)",
            "==1==    at 0x4: maybe_small_long (longobject.c:71)",
            "==1==    by 0x5: int_from_bytes (longobject.c.h:389)",
            "==1== ",
            "==1== Invalid read of size 8",
            "==1==    at 0x6: _Py_Dealloc (object.c:2390)",
            "==1== ",
        ]
    )
    blocks = error_blocks(log)
    assert len(blocks) == 4
    assert [offending(b) for b in blocks] == [False, True, False, True]


def test_workload_under_memcheck(make_name: Callable[[], str]) -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        if os.environ.get("FLEXSHM_REQUIRE_VALGRIND") == "1":
            pytest.fail("FLEXSHM_REQUIRE_VALGRIND=1 but valgrind is not on PATH")
        pytest.skip("valgrind is not installed (make valgrind installs it as root)")
    # PYTHONMALLOC=malloc: memcheck sees every object's own allocation.
    env = dict(os.environ, PYTHONMALLOC="malloc")
    names = [make_name(), make_name()]  # removed afterwards, also if the workload fails
    proc = subprocess.run(
        [valgrind, "--num-callers=40", sys.executable, str(WORKLOAD), *names],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    assert "workload done" in proc.stdout
    assert "ERROR SUMMARY" in proc.stderr, proc.stderr[-2000:]
    bad = [b for b in error_blocks(proc.stderr) if offending(b)]
    assert not bad, "\n\n".join(bad)
