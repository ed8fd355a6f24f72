"""Image transfer with NumPy: reads the newest frame from "camera" and checks it.

Terminal 1: python examples/python/image_writer.py
Terminal 2: python examples/python/image_reader.py
"""

import argparse
import time

import numpy as np
from flexible_shared_memory import SharedMemory
from records import Frame

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--name", default="camera")
parser.add_argument("--count", type=int, default=20, help="frames to check (0: forever)")
args = parser.parse_args()

shm = SharedMemory(Frame, name=args.name, create=False)
gradient = np.linspace(0, 255, 640, dtype=np.float32)[None, :, None]
checked, last = 0, -1
while args.count == 0 or checked < args.count:
    data = shm.read(timeout=1.0)
    if data.image.unwritten or data.commit == last:
        time.sleep(0.005)
        continue
    last = data.commit
    n = int(data.number)
    image = data.image.value  # a read-only view of the record's copy: no second copy
    expected = ((gradient + n) % 256).astype(np.uint8)
    whole = bool((image == expected).all())
    print(
        f"image-reader: frame {n} {image.shape} {image.dtype} mean={image.mean():.1f} "
        f"{'whole' if whole else 'TORN'}",
        flush=True,
    )
    if not whole:
        raise SystemExit("torn frame")
    checked += 1
shm.close()
