"""Lock-free, typed shared memory between processes, with per-field status.

Define a record as a dataclass, create the segment in the writer process and open it in
readers::

    from dataclasses import dataclass
    from flexible_shared_memory import SharedMemory

    @dataclass
    class SensorData:
        temperature: float = 0.0
        status_msg: "str[32]" = ""

    shm = SharedMemory(SensorData, name="sensors")                 # writer
    shm.write(temperature=23.5, status_msg="OK")

    shm = SharedMemory(SensorData, name="sensors", create=False)   # reader
    data = shm.read(timeout=1.0)
    if data.temperature.valid:
        print(data.temperature.value)

Annotations: ``float`` (64-bit), ``int`` (32-bit), ``bool``, ``"str[N]"`` (up to N
characters), a NumPy dtype name for a scalar of that type (``"uint16"``), and
``"dtype[d0,d1,...]"`` for arrays. See the project README for the full semantics.
"""

from ._native import Field, Record, SharedMemory, __version__

__all__ = ["Field", "Record", "SharedMemory", "__version__"]
