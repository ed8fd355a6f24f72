"""Handles as arguments of a `spawn` process pool.

The main process creates a single-slot segment holding a camera frame and writes one.
It then hands its *writer* handle to pool tasks: a handle pickles as "a reader of this
segment" (its record class and name), so each task receives a reader, opened by name
in the worker, and computes the mean brightness of one band of the latest frame. The
workers never copy the frame through the pool's pipes, only the handle.

Run: python examples/python/spawn_pool.py [--workers 4]
"""

import argparse
import multiprocessing as mp
import os

import numpy as np
from flexible_shared_memory import SharedMemory
from records import Frame

BANDS = 8


def band_mean(job: "tuple[SharedMemory[Frame], int]") -> "tuple[int, bool, float, int]":
    """A pool task: the mean of band `k` of the latest frame."""
    shm, k = job
    with shm:  # this task's own reader (write() would raise); closed when the task is done
        frame = shm.read()
        rows = frame.image.value.shape[0] // BANDS
        band = frame.image.value[k * rows : (k + 1) * rows]
        return k, shm.is_writer, float(band.mean()), int(frame.number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="spawn-pool")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    with SharedMemory(Frame, name=args.name) as camera:
        rng = np.random.default_rng(7)
        image = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
        camera.write(number=1, image=image)
        with mp.get_context("spawn").Pool(args.workers) as pool:
            results = pool.map(band_mean, [(camera, k) for k in range(BANDS)])
        rows = image.shape[0] // BANDS
        want = [float(image[k * rows : (k + 1) * rows].mean()) for k in range(BANDS)]
        for k, is_writer, mean, number in results:
            print(
                f"band {k}: mean {mean:.3f} of frame {number} (worker's handle: "
                f"{'writer' if is_writer else 'reader'})",
                flush=True,
            )
        same = [r[2] for r in results] == want
        print(f"spawn_pool: {len(results)} bands, match the main process: {same}", flush=True)
        camera.unlink()
    print(f"spawn_pool: done (main process {os.getpid()})", flush=True)


if __name__ == "__main__":
    main()
