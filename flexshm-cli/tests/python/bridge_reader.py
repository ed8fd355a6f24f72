"""Side B of flexshm-cli/tests/bridge: a Python reader of a segment the bridge mirrors.

Usage: bridge_reader.py NAME fifo|single LAST TIMEOUT_S

Waits for segment NAME to appear, prints OPEN, then reads until it has seen the record
whose `seq` is LAST (or TIMEOUT_S passed) and prints one JSON line saying what it read.
LAST "-": the number comes as a line on stdin, while the reader reads. FIFO: every
record in order. Single-slot: the newest record, whenever it changes.

Every record is checked against what the Rust writer of the test
(`flexshm-cli/tests/bridge/harness.rs`, `write_record`) put into record `seq`: values,
the truncated string of every 97th record and array of every 89th, the array's row
count, the field that is never written and the one written only once.
"""

import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from flexible_shared_memory import SharedMemory


@dataclass
class BridgeSample:
    temperature: float = 0.0
    pressure: float = 0.0  # never written by the test: must arrive unwritten
    timestamp: float = 0.0  # written with the first record only
    status_msg: "str[32]" = ""
    seq: "uint32" = 0
    samples: "int16[4,2]" = None


def expected_message(k: int) -> tuple[str, bool]:
    """The string of record k as a reader sees it, and whether it was truncated."""
    if k % 97 == 0:
        text = f"record {k} " + "x" * 40
        return text[:32], True
    return f"record {k}", False


def problems(rec: Any, k: int) -> list[str]:
    """What is wrong with record `rec`, whose seq is k."""
    out = []
    if rec.temperature.value != k * 0.5 or not rec.temperature.valid:
        out.append(f"seq {k}: temperature {rec.temperature.value!r}")
    if not rec.pressure.unwritten:
        out.append(f"seq {k}: pressure is not unwritten")
    if rec.timestamp.unwritten or rec.timestamp.value != 1.5:
        out.append(f"seq {k}: timestamp {rec.timestamp.value!r}")
    text, cut = expected_message(k)
    msg = rec.status_msg
    if msg.value != text or msg.truncated != cut or msg.unwritten:
        out.append(f"seq {k}: status_msg {msg.value!r} truncated={msg.truncated}")
    # Every 89th record writes 5 rows into the 4 the field holds: cut, flagged truncated.
    written_rows, cut = (5, True) if k % 89 == 0 else (k % 5, False)
    rows = min(written_rows, 4)
    want = ((np.arange(rows * 2) + k) % 65536).astype(np.uint16).astype(np.int16)
    arr = rec.samples.value
    if arr.shape != (rows, 2) or not np.array_equal(arr.reshape(-1), want):
        out.append(f"seq {k}: samples {arr.tolist()!r}")
    if rec.samples.truncated != cut:
        out.append(f"seq {k}: samples truncated={rec.samples.truncated}")
    return out


def open_segment(name: str, deadline: float) -> Any:
    while True:
        try:
            return SharedMemory(BridgeSample, name=name, create=False)
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Last:
    """The seq of the last record to read, given now or later on stdin."""

    def __init__(self, arg: str) -> None:
        self.value: int | None = None if arg == "-" else int(arg)
        if self.value is None:
            threading.Thread(target=self._from_stdin, daemon=True).start()

    def _from_stdin(self) -> None:
        self.value = int(sys.stdin.readline())


def main() -> None:
    name, mode, timeout = sys.argv[1], sys.argv[2], float(sys.argv[4])
    until = Last(sys.argv[3])
    deadline = time.monotonic() + timeout
    shm = open_segment(name, deadline)
    print("OPEN", flush=True)
    seqs: list[int] = []
    bad: list[str] = []
    lost = 0
    truncated = 0
    previous: int | None = None
    while time.monotonic() < deadline:
        if mode == "fifo":
            try:
                rec = shm.read(timeout=0.2)
            except TimeoutError:
                continue
            lost += rec.lost
        else:
            rec = shm.read()
            if rec.commit == previous:
                time.sleep(0.0005)
                continue
            previous = rec.commit
        k = int(rec.seq.value)
        seqs.append(k)
        truncated += bool(rec.status_msg.truncated) + bool(rec.samples.truncated)
        if len(bad) < 10:
            bad.extend(problems(rec, k))
        if k == until.value:
            break
    gaps = []
    out_of_order = 0
    expect = 1
    for k in seqs:
        if k < expect:
            out_of_order += 1
            continue
        if k > expect:
            gaps.append([expect, k - 1])
        expect = k + 1
    last = until.value if until.value is not None else expect - 1
    if expect <= last:
        gaps.append([expect, last])
    report = {
        "records": len(seqs),
        "distinct": len(set(seqs)),
        "first": seqs[0] if seqs else None,
        "last": seqs[-1] if seqs else None,
        "gaps": gaps,
        "out_of_order": out_of_order,
        "lost": lost,
        "truncated": truncated,
        "bad": bad[:10],
        "mode": shm.mode,
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
