"""A multi-process application: one producer and two consumers over a FIFO.

Each consumer gets every record, in order, on its own: FIFO cursors are per reader.
Run: python examples/python/multiprocess_app.py
"""

import argparse
import multiprocessing as mp
from typing import Any

from flexible_shared_memory import SharedMemory
from records import Sample


def producer(name: str, count: int, created: Any, consumers_ready: Any) -> None:
    fifo = SharedMemory(Sample, name=name, slots=count)
    created.set()
    consumers_ready.wait()  # both consumers have attached
    for seq in range(1, count + 1):
        fifo.write(seq=seq, value=seq * 0.25, source="producer")
        fifo.finalize()
    fifo.close()


def consumer(name: str, label: str, count: int, created: Any, consumers_ready: Any) -> None:
    created.wait()
    fifo = SharedMemory(Sample, name=name, create=False)
    consumers_ready.wait()
    total = 0.0
    for _ in range(count):
        rec = fifo.read(timeout=10.0)
        assert rec.lost == 0
        total += rec.value.value
    print(f"{label}: {count} records in order, sum of values {total}", flush=True)
    fifo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="mp-app")
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(3)
    created = ctx.Event()
    prod = ctx.Process(target=producer, args=(args.name, args.count, created, ready))
    prod.start()
    cons = [
        ctx.Process(target=consumer, args=(args.name, f"consumer-{k}", args.count, created, ready))
        for k in (1, 2)
    ]
    for c in cons:
        c.start()
    for p in [prod, *cons]:
        p.join()
    SharedMemory(Sample, name=args.name, create=False).unlink()
    failed = [p.exitcode for p in [prod, *cons] if p.exitcode != 0]
    if failed:
        raise SystemExit(f"a process failed: exit codes {failed}")
    print("multiprocess_app: done", flush=True)


if __name__ == "__main__":
    main()
