"""FIFO mode in one script: staged writes, atomic commits, reading in order, skipping to
the newest, and the loss count of a reader that fell behind.

Run: python examples/python/fifo.py
"""

import argparse

from flexible_shared_memory import SharedMemory
from records import Sample

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--name", default="fifo-demo")
args = parser.parse_args()

# Create a FIFO with 10 slots; this handle is the writer.
with SharedMemory(Sample, name=args.name, slots=10) as fifo:
    # A reader handle; in a real program it lives in another process.
    reader = SharedMemory(Sample, name=args.name, create=False)

    # Stage fields, then commit them atomically: readers see all or nothing.
    fifo.write(seq=1)
    fifo.write(value=0.5, source="demo")
    fifo.finalize()
    for seq in range(2, 6):
        fifo.write(seq=seq, value=seq * 0.5)
        fifo.finalize()

    first = reader.read(timeout=1.0)  # the oldest unread record
    print(f"in order: seq={first.seq.value} value={first.value.value}")
    newest = reader.read(timeout=1.0, latest=True)  # skip to the newest
    print(f"latest:   seq={newest.seq.value} (skipped records are not 'lost')")

    # Fall behind by more than the ring holds: the next read says how many were lost.
    for seq in range(6, 30):
        fifo.write(seq=seq, value=seq * 0.5)
        fifo.finalize()
    behind = reader.read(timeout=1.0)
    print(f"lapped:   seq={behind.seq.value}, lost={behind.lost} records")
    # 'source' was written only once; later records carry it over, not modified.
    print(f"carried:  source={behind.source.value!r} modified={behind.source.modified}")

    try:
        while True:
            reader.read(timeout=0.1)
    except TimeoutError as e:
        print(f"drained:  {e}")
    reader.close()
    fifo.unlink()
