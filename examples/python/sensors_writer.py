"""Single-slot writer: publishes SensorData to the segment "sensors".

Terminal 1: python examples/python/sensors_writer.py
Terminal 2: python examples/python/sensors_reader.py
(or the Rust reader: cargo run -p flexshm-examples --bin sensors-reader)
"""

import argparse
import math
import time

from flexible_shared_memory import SharedMemory
from records import SensorData

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--name", default="sensors")
parser.add_argument("--count", type=int, default=0, help="records to write (0: forever)")
parser.add_argument("--interval", type=float, default=0.1, help="seconds between writes")
args = parser.parse_args()

# Create shared memory (or take it over from a writer that is no longer running).
shm = SharedMemory(SensorData, name=args.name)
print(f"writer: {shm}", flush=True)
n = 0
try:
    while args.count == 0 or n < args.count:
        n += 1
        shm.write(
            temperature=20.0 + math.sin(n * 0.3) * 5.0,
            pressure=1013.25 + (n % 10) * 0.1,
            timestamp=time.time(),
            status_msg=f"OK #{n}",
        )
        print(f"writer: #{n} written", flush=True)
        time.sleep(args.interval)
except KeyboardInterrupt:
    pass
finally:
    # Cleanup: the segment stays until unlinked; readers see the last record until then.
    shm.close()
    shm.unlink()
    print("writer: closed and unlinked", flush=True)
