"""Process bodies for the multi-process tests (module-level, so spawn can import them).

Each child reports through a queue and waits on events, never on sleeps.
"""

import time
from typing import Any

import numpy as np
from flexible_shared_memory import SharedMemory
from records import Counter, MathData, Scene, SensorData, Tracked, counter_values

WAIT = 30.0  # upper bound on any event wait; a hang fails the test instead of blocking it


def seed_writer(name: str, written: Any, done: Any, out: Any) -> None:
    """The seed's "Writer Process" block, kept alive until the reader is done."""
    # Create shared memory
    shm = SharedMemory(SensorData, name=name)

    # Write data
    shm.write(temperature=23.5, pressure=1013.25, timestamp=time.time(), status_msg="OK")
    written.set()
    assert done.wait(WAIT)

    # Cleanup
    shm.close()
    shm.unlink()
    out.put("writer done")


def seed_reader(name: str, written: Any, done: Any, out: Any) -> None:
    """The seed's "Reader Process" block."""
    assert written.wait(WAIT)
    # Connect to existing shared memory
    shm = SharedMemory(SensorData, name=name, create=False)

    # Read data with status
    data = shm.read(timeout=1.0)

    # Access values with status checking
    temp = data.temperature
    if temp.valid and temp.modified:
        out.put(f"Temperature: {temp.value}°C")
    out.put((data.pressure.value, data.status_msg.value, data.timestamp.valid))
    shm.close()
    done.set()


def tracked_writer(name: str, steps: Any, acks: Any) -> None:
    """Creates a Tracked segment, then performs each write it is sent, acknowledging it."""
    shm = SharedMemory(Tracked, name=name)
    acks.put("ready")
    while True:
        fields = steps.get(timeout=WAIT)
        if fields is None:
            break
        shm.write(**fields)
        acks.put("written")
    shm.close()


def math_writer(name: str, coefficients: Any, ready: Any, done: Any) -> None:
    shm = SharedMemory(MathData, name=name)
    if coefficients is not None:
        shm.write(coefficients=coefficients)
    ready.set()
    assert done.wait(WAIT)
    shm.close()


def fifo_writer(name: str, slots: int, records: Any, ready: Any, done: Any) -> None:
    """Commits each list of staged writes in `records` as one FIFO record."""
    fifo = SharedMemory(SensorData, name=name, slots=slots)
    for stages in records:
        for fields in stages:
            fifo.write(**fields)
        fifo.finalize()
    ready.set()
    assert done.wait(WAIT)
    fifo.close()


def hammer_writer(name: str, started: Any, stop: Any, count: Any) -> None:
    """Writes consistent Counter records as fast as it can until told to stop."""
    shm = SharedMemory(Counter, name=name)
    n = 0
    shm.write(**counter_values(n))
    started.set()
    while not stop.is_set():
        n += 1
        shm.write(**counter_values(n))
    count.put(n)
    shm.close()


def fifo_producer(name: str, count: int, ready: Any, go: Any) -> None:
    """Commits `count` numbered records into a FIFO once both consumers are attached."""
    fifo = SharedMemory(SensorData, name=name, slots=count + 1)
    ready.set()
    assert go.wait(WAIT)
    for i in range(count):
        fifo.write(temperature=float(i), status_msg=f"sample {i}")
        fifo.finalize()
    fifo.close()


def fifo_consumer(name: str, count: int, attached: Any, out: Any) -> None:
    """Reads `count` records in order and reports their sequence numbers."""
    fifo = SharedMemory(SensorData, name=name, create=False)
    attached.set()
    seen = []
    for _ in range(count):
        rec = fifo.read(timeout=WAIT)
        seen.append((int(rec.temperature), rec.status_msg.value, rec.lost))
    out.put(seen)
    fifo.close()


def scene_writer(name: str, position: float, image: Any, ready: Any, done: Any) -> None:
    shm = SharedMemory(Scene, name=name)
    shm.write(position=position, image=image)
    ready.set()
    assert done.wait(WAIT)
    shm.close()


def scene_reader(name: str, ready: Any, done: Any, out: Any) -> None:
    """The seed's "Magic Conversions" block, reporting what it got."""
    assert ready.wait(WAIT)
    shm = SharedMemory(Scene, name=name, create=False)
    data = shm.read(timeout=1.0)
    pos = data.position
    x = float(pos)  # Automatic conversion
    y = pos.value  # Explicit access
    img = data.image
    arr = np.array(img)  # Magic conversion
    arr2 = img.value  # Explicit access
    out.put((x, y, arr.dtype.str, arr.shape, int(arr.sum()), bool((arr == arr2).all())))
    shm.close()
    done.set()


def record_consumer(inbox: Any, out: Any) -> None:
    """Takes pickled records off a queue (no shared memory involved) and reports what
    arrived: the type name and the values."""
    while (item := inbox.get(timeout=WAIT)) is not None:
        values = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in vars(item).items()}
        out.put((type(item).__name__, values))


def gated_writer(name: str, slots: int, ready: Any, go: Any, count: int, done: Any) -> None:
    """Creates a SensorData segment, then on `go` commits `count` records (temperature
    0, 1, ...), and keeps the segment until `done`."""
    shm = SharedMemory(SensorData, name=name, slots=slots)
    ready.set()
    assert go.wait(WAIT)
    for i in range(count):
        shm.write(temperature=float(i))
        shm.finalize()
    assert done.wait(WAIT)
    shm.close()


def late_reader(name: str, started: Any, out: Any) -> None:
    """Opens a segment that may not exist yet (waiting for its writer), then reports the
    first record that arrives."""
    started.set()
    shm = SharedMemory(SensorData, name=name, create=False, open_timeout=WAIT)
    for record in shm:
        out.put((record.temperature.value, record.status_msg.value))
        break
    shm.close()


def handle_reader(shm: Any, out: Any) -> None:
    """Receives a handle as an argument (pickled: a reader) and reports what it reads."""
    record = shm.read(timeout=WAIT)
    out.put((type(shm).__name__, shm.is_writer, shm.name, record.temperature.value))
    shm.close()


def pool_read(job: Any) -> Any:
    """A pool task: reads the handle it was given and returns what it saw."""
    shm, i = job
    with shm:
        return (i, shm.is_writer, shm.read().temperature.value)
