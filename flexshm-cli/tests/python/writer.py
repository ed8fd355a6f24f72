"""Fixture for flexshm-cli/tests/cli.rs: Python writes two segments for the CLI to read.

Usage: writer.py SINGLE_NAME FIFO_NAME

Creates SINGLE_NAME (single-slot) and FIFO_NAME (FIFO, 4 slots) with every kind of
annotation, writes them, prints READY and keeps both writer handles until its stdin
closes (the test kills it instead, to leave segments with a dead writer).
"""

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from flexible_shared_memory import SharedMemory


@dataclass
class AllKinds:
    flag: bool = False
    count: int = 0
    temperature: float = 0.0
    small: "uint16" = 0
    ratio: "float32" = 0.0
    label: "str[8]" = ""
    samples: "float32[4]" = None
    image: "uint8[2,3]" = None
    never: "int64" = 0


def main() -> None:
    single_name, fifo_name = sys.argv[1], sys.argv[2]
    handles: list[Any] = []
    single = SharedMemory(AllKinds, name=single_name)
    handles.append(single)
    single.write(
        flag=True,
        count=-42,
        temperature=21.5,
        small=65535,
        ratio=0.25,
        label="a long label",  # 12 characters into str[8]: truncated
        samples=np.array([1.5, -2.0, 3.25], dtype=np.float32),  # 3 of 4 rows
        image=np.arange(6, dtype=np.uint8).reshape(2, 3),
    )
    fifo = SharedMemory(AllKinds, name=fifo_name, slots=4)
    handles.append(fifo)
    for i in range(6):
        fifo.write(count=i)
        fifo.finalize()
    print("READY", flush=True)
    sys.stdin.read()
    for h in handles:
        h.close()


if __name__ == "__main__":
    main()
