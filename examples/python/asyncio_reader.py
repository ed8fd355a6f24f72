"""asyncio: one coroutine per segment, next to other tasks, on one event loop.

A writer process (started here) fills a FIFO of numbered samples and updates a
single-slot SensorData segment. The event loop runs three tasks at once:

- `consume_fifo`: `async for` over the FIFO, every sample in order;
- `watch_sensors`: `async for` over the single-slot segment, each newer reading;
- `heartbeat`: a ticker, to show that awaiting records never blocks the loop.

The readers are opened before the writer has created anything: `open_timeout` waits for
it (run in a thread with `asyncio.to_thread`, since opening blocks).

Run: python examples/python/asyncio_reader.py [--count 50]
"""

import argparse
import asyncio
import multiprocessing as mp
import time

from flexible_shared_memory import SharedMemory
from records import Sample, SensorData


def writer(fifo_name: str, sensors_name: str, count: int, interval: float) -> None:
    """The writer process: `count` samples into the FIFO, a reading with each."""
    fifo = SharedMemory(Sample, name=fifo_name, slots=64)
    sensors = SharedMemory(SensorData, name=sensors_name)
    for seq in range(1, count + 1):
        fifo.write(seq=seq, value=seq * 0.5, source="writer")
        fifo.finalize()
        sensors.write(temperature=20.0 + seq / 10, timestamp=time.time(), status_msg="OK")
        time.sleep(interval)
    # The segments outlive this process: the readers drain what is left.
    fifo.close()
    sensors.close()


async def consume_fifo(fifo: SharedMemory[Sample], count: int) -> None:
    expected = 1
    async for sample in fifo:  # each record in commit order
        assert sample.seq.value == expected and sample.lost == 0
        expected += 1
        if sample.seq.value == count:
            break
    print(f"fifo: {count} records in order, none lost", flush=True)


async def watch_sensors(sensors: SharedMemory[SensorData], final: float) -> None:
    updates = 0
    async for reading in sensors:  # each newer commit (the latest when it changes)
        updates += 1
        if reading.temperature.value >= final:
            break
    # Readings that came faster than the loop looked are skipped: single-slot mode
    # keeps only the latest.
    print(f"sensors: up to {final:.1f}°C in {updates} newer readings", flush=True)


async def heartbeat(done: asyncio.Event) -> None:
    ticks = 0
    while not done.is_set():
        await asyncio.sleep(0.005)
        ticks += 1
    print(f"heartbeat: {ticks} ticks while the readers waited", flush=True)


async def main(name: str, count: int, interval: float) -> None:
    fifo_name, sensors_name = f"{name}-fifo", f"{name}-sensors"
    proc = mp.get_context("spawn").Process(
        target=writer, args=(fifo_name, sensors_name, count, interval)
    )
    proc.start()
    # Opening waits (in a thread) until the writer has created each segment.
    fifo, sensors = await asyncio.gather(
        asyncio.to_thread(SharedMemory, Sample, fifo_name, create=False, open_timeout=30),
        asyncio.to_thread(SharedMemory, SensorData, sensors_name, create=False, open_timeout=30),
    )
    done = asyncio.Event()
    ticker = asyncio.create_task(heartbeat(done))
    await asyncio.gather(consume_fifo(fifo, count), watch_sensors(sensors, 20.0 + count / 10))
    done.set()
    await ticker
    fifo.close()
    sensors.close()
    await asyncio.to_thread(proc.join)
    for n in (fifo_name, sensors_name):
        SharedMemory.open(n).unlink()
    print("asyncio_reader: done", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="asyncio-demo")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between samples")
    args = parser.parse_args()
    asyncio.run(main(args.name, args.count, args.interval))
