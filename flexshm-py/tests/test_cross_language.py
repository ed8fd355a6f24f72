"""Rust and Python share segments: the Rust examples `sensors-writer` / `sensors-reader`
(examples/rust) against this package, in both directions.

The binaries are looked up in $FLEXSHM_EXAMPLES_BIN, else target/debug of the repository
(`make test-py` builds them first). If they are missing, the tests are skipped with the
reason shown in pytest's summary.
"""

import math
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from flexible_shared_memory import SharedMemory
from records import SensorData


@dataclass
class Frame:
    """The Rust examples' `Frame` record (examples/rust/src/lib.rs)."""

    frame: "uint64" = 0
    pixels: "uint8[480,640,3]" = None  # type: ignore[assignment]


def _pattern(n: int) -> np.ndarray:
    """`Frame::pattern` of the Rust examples: (7n + y + 3x + 85c) mod 256."""
    y, x, c = np.ogrid[0:480, 0:640, 0:3]
    return ((n * 7 + y + 3 * x + 85 * c) % 256).astype(np.uint8)


REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("FLEXSHM_EXAMPLES_BIN", REPO / "target" / "debug"))


def _binary(name: str) -> Path:
    path = BIN_DIR / name
    if not path.is_file():
        pytest.skip(
            f"{path} not found: build it with `cargo build -p flexshm-examples --bins` "
            "or set FLEXSHM_EXAMPLES_BIN"
        )
    return path


def test_rust_writer_python_reader(shm_name: str) -> None:
    writer = subprocess.Popen(
        [str(_binary("sensors-writer")), "--name", shm_name, "--count", "0", "--interval-ms", "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        # The writer prints this once the segment exists.
        assert writer.stdout.readline().strip() == f"writer: segment '{shm_name}' ready"
        shm = SharedMemory(SensorData, name=shm_name, create=False)
        checked = 0
        commits = set()
        while checked < 200 or len(commits) < 3:
            assert writer.poll() is None, "sensors-writer exited"
            data = shm.read(timeout=5.0)
            if data.temperature.unwritten:
                continue  # created, nothing written yet
            assert all(f.valid for f in data)
            match = re.fullmatch(r"OK #(\d+)", data.status_msg.value)
            assert match, data.status_msg.value
            n = int(match.group(1))
            # Every field belongs to record n (the writer derives them all from n).
            assert math.isclose(
                data.temperature.value, 20.0 + math.sin(n * 0.3) * 5.0, rel_tol=1e-12
            )
            assert math.isclose(data.pressure.value, 1013.25 + (n % 10) * 0.1, rel_tol=1e-12)
            assert data.timestamp.value > 1.6e9
            commits.add(data.commit)
            checked += 1
        shm.close()
    finally:
        writer.terminate()
        writer.wait(30)


def test_python_writer_rust_reader(shm_name: str) -> None:
    shm = SharedMemory(SensorData, name=shm_name)
    shm.write(temperature=23.5, pressure=1013.25, timestamp=1.7e9, status_msg="from Python ✓")
    result = subprocess.run(
        [
            str(_binary("sensors-reader")),
            "--name",
            shm_name,
            "--count",
            "1",
            "--timeout-ms",
            "5000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Temperature: 23.50°C" in result.stdout, result.stdout
    assert "pressure=1013.25" in result.stdout
    assert "status_msg=from Python ✓" in result.stdout
    shm.close()


def test_rust_image_writer_python_reader(shm_name: str) -> None:
    writer = subprocess.Popen(
        [str(_binary("image-writer")), "--name", shm_name, "--count", "0", "--interval-ms", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().startswith(f"image-writer: segment '{shm_name}' ready")
        shm = SharedMemory(Frame, name=shm_name, create=False)
        frames = set()
        while len(frames) < 5:
            assert writer.poll() is None, "image-writer exited"
            data = shm.read(timeout=5.0)
            if data.pixels.unwritten:
                continue
            n = int(data.frame)
            pixels = data.pixels.value
            assert pixels.shape == (480, 640, 3) and pixels.dtype == np.uint8
            assert np.array_equal(pixels, _pattern(n)), f"frame {n} is not whole"
            frames.add(n)
        shm.close()
    finally:
        writer.terminate()
        writer.wait(30)


def test_python_image_writer_rust_reader(shm_name: str) -> None:
    shm = SharedMemory(Frame, name=shm_name)
    shm.write(frame=41, pixels=_pattern(41))
    result = subprocess.run(
        [str(_binary("image-reader")), "--name", shm_name, "--count", "1", "--timeout-ms", "5000"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "image-reader: frame 41 " in result.stdout and "consistent" in result.stdout, (
        result.stdout
    )
    shm.close()
