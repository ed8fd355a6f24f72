"""Single-slot reader: prints the latest SensorData from the segment "sensors".

Terminal 1: python examples/python/sensors_writer.py
Terminal 2: python examples/python/sensors_reader.py
"""

import argparse
import time

from flexible_shared_memory import SharedMemory
from records import SensorData

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--name", default="sensors")
parser.add_argument("--count", type=int, default=20, help="records to print (0: forever)")
parser.add_argument("--interval", type=float, default=0.25, help="seconds between reads")
args = parser.parse_args()

# Connect to existing shared memory (start the writer first).
shm = SharedMemory(SensorData, name=args.name, create=False)
print(f"reader: {shm}", flush=True)
shown = 0
last_commit = -1
while args.count == 0 or shown < args.count:
    # Single-slot mode: read() returns the latest record at once.
    data = shm.read(timeout=1.0)
    temp = data.temperature
    if data.commit != last_commit and temp.valid and temp.modified:
        print(
            f"reader: #{data.commit} Temperature: {temp.value:.2f}°C  "
            f"pressure={data.pressure.value:.2f}  status={data.status_msg.value!r}",
            flush=True,
        )
        shown += 1
    elif temp.unwritten:
        print("reader: no data available yet", flush=True)
    last_commit = data.commit
    time.sleep(args.interval)
shm.close()
