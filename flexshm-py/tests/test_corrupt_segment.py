"""A segment corrupted under a live reader: reads end with a clear error within their
timeout, never spin for ever (issue: a cleared COMMITTED flag once made a FIFO read loop
at full speed, ignoring its timeout and Ctrl-C)."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

import pytest
from flexible_shared_memory import SharedMemory


@dataclass
class Counter:
    n: int = 0


def _poke_u32(name: str, offset: int, value: int) -> None:
    with open(f"/dev/shm/{name}", "r+b") as f:
        f.seek(offset)
        f.write(struct.pack("<I", value))


def _header_u32(name: str, offset: int) -> int:
    with open(f"/dev/shm/{name}", "rb") as f:
        f.seek(offset)
        return int(struct.unpack("<I", f.read(4))[0])


def test_a_cleared_committed_flag_fails_a_fifo_read_within_its_timeout(shm_name: str) -> None:
    writer = SharedMemory(Counter, name=shm_name, slots=4)
    reader = SharedMemory(Counter, name=shm_name, create=False)
    for n in (1, 2, 3):
        writer.write(n=n)
        writer.finalize()
    assert reader.read(timeout=1.0).n.value == 1
    # Record 2's buffer: slots_offset (header byte 28) + 2 * slot_stride (byte 36); its
    # flags word is at buffer offset 8 (docs/PROTOCOL.md §7).
    buffer = _header_u32(shm_name, 28) + 2 * _header_u32(shm_name, 36)
    _poke_u32(shm_name, buffer + 8, 0)
    start = time.monotonic()
    with pytest.raises(ValueError, match="commit 2"):
        reader.read(timeout=0.05)
    # A liveness bound, not a speed check: the 50 ms read ends well under a second.
    assert time.monotonic() - start < 1.0
    # The record is not consumed: the same error again, until the writer laps it.
    with pytest.raises(ValueError, match="not marked committed"):
        reader.read(timeout=0.05)
    for n in range(4, 10):
        writer.write(n=n)
        writer.finalize()
    record = reader.read(timeout=1.0)
    assert (record.n.value, record.lost) == (6, 4)
    writer.close()
    reader.close()


@dataclass
class Labelled:
    n: int = 0
    label: "str[8]" = ""


def test_a_field_whose_bytes_do_not_decode_raises_when_looked_up(shm_name: str) -> None:
    """A string whose stored bytes are not UTF-8 passes the read's checks (lengths and
    status bits are fine): the record is returned and its other fields work; looking up
    the bad field (attribute, item, iteration) is a ValueError naming segment and field."""
    writer = SharedMemory(Labelled, name=shm_name)
    reader = SharedMemory(Labelled, name=shm_name, create=False)
    writer.write(n=3, label="ab")
    # Single-slot: buffer (head mod 2) of slot_stride bytes from slots_offset; 16-byte
    # buffer header, 8 bytes of metadata per field, then n (int32), then label.
    head = _header_u32(shm_name, 48)
    buffer = _header_u32(shm_name, 28) + (head % 2) * _header_u32(shm_name, 36)
    with open(f"/dev/shm/{shm_name}", "r+b") as f:
        f.seek(buffer + 16 + 8 * 2 + 4)
        f.write(b"\xff")
    d = reader.read()
    assert d.n.value == 3 and d.n.valid
    with pytest.raises(ValueError, match=f"segment '{shm_name}'.*label.*UTF-8"):
        _ = d.label
    with pytest.raises(ValueError, match="UTF-8"):
        _ = d["label"]
    with pytest.raises(ValueError, match="UTF-8"):
        list(d)
