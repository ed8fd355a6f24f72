"""Image transfer with NumPy: publishes 640x480 RGB frames to the segment "camera".

Terminal 1: python examples/python/image_writer.py
Terminal 2: python examples/python/image_reader.py
(the Rust image-reader in examples/rust reads a different record: number + pixels)
"""

import argparse
import time

import numpy as np
from flexible_shared_memory import SharedMemory
from records import Frame

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--name", default="camera")
parser.add_argument("--count", type=int, default=100, help="frames to write (0: forever)")
parser.add_argument("--fps", type=float, default=30.0)
args = parser.parse_args()

shm = SharedMemory(Frame, name=args.name)
print(f"image-writer: {shm}", flush=True)
gradient = np.linspace(0, 255, 640, dtype=np.float32)[None, :, None]
n = 0
try:
    while args.count == 0 or n < args.count:
        n += 1
        # Every pixel of frame n is derived from n, so a reader can check it is whole.
        image = ((gradient + n) % 256).astype(np.uint8) * np.ones((480, 1, 3), np.uint8)
        shm.write(number=n, image=image)
        print(f"image-writer: frame {n}", flush=True)
        time.sleep(1.0 / args.fps)
except KeyboardInterrupt:
    pass
finally:
    shm.close()
    shm.unlink()
    print("image-writer: closed and unlinked", flush=True)
