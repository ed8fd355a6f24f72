"""A workload over the extension's unsafe code, run under valgrind by test_memcheck.py.

Covers: `write(**fields)` (the extension's own fast-call entry), `read()` and the reuse
of `Record` and `Field` objects (parked and handed out again, or kept by the caller),
`Field.value` (a member read straight from the object), NumPy views of a record's
buffer, batches as lists and as structured arrays, errors that must write nothing,
pickling, a record outliving its closed handle, and a reader opened by name only.

Usage: python memcheck_workload.py SINGLE-SLOT-NAME FIFO-NAME
"""

from __future__ import annotations

import copy
import pickle
import sys
from dataclasses import dataclass

import numpy as np
from flexible_shared_memory import SharedMemory


@dataclass
class Sample:
    temperature: float = 0.0
    count: "int32" = 0
    ratio: "float32" = 0.5
    flag: bool = False
    status_msg: "str[8]" = ""
    img: "uint8[4,5,3]" = None  # type: ignore[assignment]
    hist: "float64[6]" = None  # type: ignore[assignment]


def main(single: str, fifo: str) -> None:
    w = SharedMemory(Sample, name=single, create=True)
    r = SharedMemory(Sample, name=single, create=False)
    kept = []
    for i in range(40):
        w.write(
            temperature=i * 0.5,
            count=i,
            status_msg="é" * (i % 12),
            img=np.full((4, 5, 3), i, np.uint8),
        )
        d = r.read()
        assert d.temperature.value == i * 0.5 and d.count.value == i
        assert int(d.img.value.sum()) == i * 60
        assert d.status_msg.truncated == (i % 12 > 8)
        values = [f.value for f in d]
        assert len(values) == 7
        if i % 7 == 0:
            # Held records and fields must keep their contents while others are reused.
            kept.append((d, d.count, d.img.value, i))
        _ = (repr(d), d.as_dict(), d.as_dataclass(), copy.deepcopy(d))
        _ = (d.temperature + 1, d.count * 2, float(d.ratio), str(d.status_msg))
        assert pickle.loads(pickle.dumps(d)).count == i
    for d, count, img, i in kept:
        assert d.commit > 0 and count.value == i and int(img.sum()) == i * 60
    for bad in ({"count": 2**40}, {"nope": 1}, {"img": np.zeros((2, 2))}):
        commit = r.read().commit
        try:
            w.write(**bad)
        except (TypeError, ValueError, OverflowError):
            pass
        else:
            raise AssertionError(f"write({bad}) was accepted")
        assert r.read().commit == commit, "a rejected write committed"
    w.write(hist=np.arange(9.0))
    assert r.read().hist.truncated

    f = SharedMemory(Sample, name=fifo, create=True, slots=8)
    fr = SharedMemory(Sample, name=fifo, create=False)
    assert (
        f.write_many([{"count": k, "hist": np.arange(k % 7, dtype=np.float64)} for k in range(20)])
        == 20
    )
    records = fr.read_many(100, timeout=1.0)
    assert [x.count.value for x in records] == list(range(12, 20))
    f.write_many([{"count": k} for k in range(5)])
    rows = fr.read_many(100, timeout=1.0, as_array=True)
    assert list(rows["count"]) == list(range(5))
    f.write(count=99)
    f.finalize()
    assert next(iter(fr)).count.value == 99
    assert not fr.wait(timeout=0)

    named = SharedMemory.open(single)
    last = named.read()
    w.close()
    assert last.count.value == 39
    for h in (r, f, fr, named):
        h.close()
    # The last record outlives every handle of its segment.
    assert last.hist.value.shape == (6,) and last.count.value == 39
    for n in (single, fifo):
        SharedMemory(Sample, name=n, create=False).unlink()
    print("workload done")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
