"""The programs in examples/python run and do what their how-to says."""

import signal
import subprocess
import sys
from pathlib import Path

from conftest import default_sigint

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"


def _run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _writer_then_reader(writer: list[str], reader: list[str], ready_prefix: str) -> tuple[str, str]:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / writer[0]), *writer[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(ready_prefix), first + (proc.stderr.read() if proc.stderr else "")
        out = _run(*reader)
    finally:
        # The writers run until interrupted (Ctrl-C), then close and unlink.
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return first + rest, out


def test_fifo_example(shm_name: str) -> None:
    out = _run("fifo.py", "--name", shm_name)
    assert "in order: seq=1 value=0.5" in out
    assert "latest:   seq=5" in out
    assert "lapped:   seq=20, lost=14 records" in out
    assert "drained:  read of" in out


def test_multiprocess_app_example(shm_name: str) -> None:
    out = _run("multiprocess_app.py", "--name", shm_name, "--count", "200")
    assert out.count("200 records in order, sum of values 5025.0") == 2
    assert "multiprocess_app: done" in out


def test_sensors_examples(shm_name: str) -> None:
    writer_out, reader_out = _writer_then_reader(
        ["sensors_writer.py", "--name", shm_name, "--count", "0", "--interval", "0.02"],
        ["sensors_reader.py", "--name", shm_name, "--count", "2", "--interval", "0.02"],
        "writer: <SharedMemory",
    )
    assert reader_out.count("Temperature:") == 2
    assert "closed and unlinked" in writer_out


def test_image_examples(shm_name: str) -> None:
    writer_out, reader_out = _writer_then_reader(
        ["image_writer.py", "--name", shm_name, "--count", "0", "--fps", "100"],
        ["image_reader.py", "--name", shm_name, "--count", "3"],
        "image-writer: <SharedMemory",
    )
    assert reader_out.count("(480, 640, 3) uint8") == 3
    assert "closed and unlinked" in writer_out
    assert "TORN" not in reader_out


def test_asyncio_reader_example(shm_name: str) -> None:
    out = _run("asyncio_reader.py", "--name", shm_name, "--count", "40")
    assert "fifo: 40 records in order, none lost" in out
    assert "sensors: up to 24.0°C in" in out
    assert "heartbeat:" in out and "asyncio_reader: done" in out


def test_spawn_pool_example(shm_name: str) -> None:
    out = _run("spawn_pool.py", "--name", shm_name, "--workers", "2")
    assert out.count("(worker's handle: reader)") == 8
    assert "8 bands, match the main process: True" in out
    assert "spawn_pool: done" in out
