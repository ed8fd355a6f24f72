"""Python benchmarks of flexible_shared_memory against its baselines and peers.

Prints markdown tables: in-process calls (write of 4 fields, read + 4 field values,
image write and read) against ``struct.unpack_from`` and ``np.copyto``; cross-process
one-way latency against a raw shared-memory ping-pong, iceoryx2's Python binding,
``multiprocessing.Queue`` and ``multiprocessing.Pipe``; FIFO throughput (``read()`` and
``for record in shm`` consumers); wake-up latency of ``wait()``, ``wait_async()`` and a
blocking FIFO ``read()`` against a raw futex.

Every comparison interleaves short blocks of all systems in the same process (or the
same pair of processes) and reports the median of per-block ratios: the machine's
vCPUs move between host cores every second or so, which shifts absolute times.

    python bench/python/bench.py [--quick | --smoke]
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing as mp
import os
import struct
import sys
import time
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any, Callable

import numpy as np
from flexible_shared_memory import SharedMemory


@dataclass
class SensorData:
    temperature: float = 0.0
    pressure: float = 0.0
    timestamp: float = 0.0
    status_msg: "str[32]" = ""


@dataclass
class Frame:
    image: "uint8[480,640,3]" = None  # type: ignore[assignment]


# The same record as plain bytes: 3 doubles and the 128 bytes of string room.
SENSOR_FMT = struct.Struct("<ddd128s")
IMG_SHAPE = (480, 640, 3)
PID = os.getpid()
# The CPUs this run may use, taken before any section pins the process to one of them:
# each cross-process section starts from all of them again.
CPUS = sorted(os.sched_getaffinity(0))


def all_cpus() -> list[int]:
    """Undoes the previous section's pinning; returns the CPUs to place processes on."""
    os.sched_setaffinity(0, CPUS)
    return CPUS


def percentile(v: list[float], p: float) -> float:
    s = sorted(v)
    if not s:
        return float("nan")
    k = max(1, min(len(s), int(-(-p * len(s) // 100))))
    return s[k - 1]


def fmt_ns(ns: float) -> str:
    if ns != ns:
        return "–"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:.1f} µs"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def fmt_ratio(r: float) -> str:
    if r != r:
        return "–"
    return f"{r:.0f}" if r >= 100 else f"{r:.1f}" if r >= 10 else f"{r:.2f}"


class Blocks:
    """Samples per system per block; ratios are medians of per-block ratios."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.samples: dict[str, list[list[float]]] = {n: [] for n in names}

    def push(self, name: str, block: list[float]) -> None:
        self.samples[name].append(block)

    def pooled(self, name: str, p: float) -> float:
        return percentile([x for b in self.samples[name] for x in b], p)

    def ratio(self, name: str, base: str) -> str:
        a = [percentile(b, 50) for b in self.samples[name]]
        b = [percentile(b, 50) for b in self.samples[base]]
        r = [x / y for x, y in zip(a, b) if y > 0]
        if not r:
            return "–"
        return (
            f"{fmt_ratio(percentile(r, 50))}× "
            f"({fmt_ratio(percentile(r, 25))}–{fmt_ratio(percentile(r, 75))})"
        )


def table(title: str, header: list[str], rows: list[list[str]], notes: list[str]) -> None:
    print(f"### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if notes:
        print()
        for n in notes:
            print(n)
    print(flush=True)


# ---------------------------------------------------------------------------------------
# In-process


def in_process(blocks: int, reps: int) -> None:
    # Baseline: the same record's bytes in a multiprocessing.shared_memory buffer.
    raw = shared_memory.SharedMemory(create=True, size=4096)
    SENSOR_FMT.pack_into(raw.buf, 0, 23.5, 1013.25, 1.0, b"OK, all sensors nominal")
    buf = raw.buf
    unpack = SENSOR_FMT.unpack_from

    name = f"fxbench-py-{PID}"
    w = SharedMemory(SensorData, name=name, create=True)
    w.write(temperature=23.5, pressure=1013.25, timestamp=1.0, status_msg="OK")
    r = SharedMemory(SensorData, name=name, create=False)

    img_name = f"fxbench-py-img-{PID}"
    iw = SharedMemory(Frame, name=img_name, create=True)
    ir = SharedMemory(Frame, name=img_name, create=False)
    img = (np.arange(np.prod(IMG_SHAPE)) % 251).astype(np.uint8).reshape(IMG_SHAPE)
    dst = np.empty_like(img)
    iw.write(image=img)

    def base_unpack() -> None:
        unpack(buf, 0)

    def fx_read() -> None:
        d = r.read()
        _ = (d.temperature.value, d.pressure.value, d.timestamp.value, d.status_msg.value)

    def fx_write() -> None:
        w.write(temperature=23.5, pressure=1013.25, timestamp=2.0, status_msg="OK")

    def base_copyto() -> None:
        np.copyto(dst, img)

    def fx_img_write() -> None:
        iw.write(image=img)

    def fx_img_read() -> None:
        _ = ir.read().image.value

    def fx_img_read_array() -> None:
        np.asarray(ir.read().image)

    small: list[tuple[str, Callable[[], None]]] = [
        ("baseline: struct.unpack_from of the record", base_unpack),
        ("flexshm read() + 4 field values", fx_read),
        ("flexshm write() of 4 fields", fx_write),
    ]
    image: list[tuple[str, Callable[[], None]]] = [
        ("baseline: np.copyto of the image", base_copyto),
        ("flexshm image write()", fx_img_write),
        ("flexshm image read() + .value", fx_img_read),
        ("flexshm image read() + np.asarray", fx_img_read_array),
    ]
    for title, ops, n in (
        ("Python, in-process calls, SensorData", small, reps),
        ("Python, in-process calls, 640×480×3 uint8 image", image, max(2, reps // 100)),
    ):
        res = Blocks([o[0] for o in ops])
        for b in range(blocks):
            k = b % len(ops)
            for name_, f in ops[k:] + ops[:k]:
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    f()
                res.push(name_, [(time.perf_counter_ns() - t0) / n])
        base = ops[0][0]
        rows = [[o[0], fmt_ns(res.pooled(o[0], 50)), res.ratio(o[0], base)] for o in ops]
        table(
            title,
            ["call", "p50 per call", "ratio to baseline"],
            rows,
            [
                f"{blocks} interleaved blocks of {n} calls each; p50 over blocks of the "
                "mean call time in a block; ratio = median of per-block ratios "
                "(25th–75th percentile)."
            ],
        )
    for h in (w, r, iw, ir):
        h.close()
    w.unlink()
    iw.unlink()
    raw.close()
    raw.unlink()


# ---------------------------------------------------------------------------------------
# Cross-process ping-pong


class SensorC(ctypes.Structure):
    _fields_ = [
        ("temperature", ctypes.c_double),
        ("pressure", ctypes.c_double),
        ("timestamp", ctypes.c_double),
        ("status_msg", ctypes.c_char * 128),
    ]


def load_iceoryx2() -> tuple[Any, str]:
    try:
        import iceoryx2 as iox2

        return iox2, ""
    except Exception as e:
        return None, f"iceoryx2 Python package not importable: {e}"


class RawPing:
    """Raw shared memory: per direction an 8-byte counter and the record's bytes."""

    def __init__(self, shm: shared_memory.SharedMemory, side_a: bool) -> None:
        self.buf = shm.buf
        self.out, self.inn = (0, 256) if side_a else (256, 0)
        self.q = struct.Struct("<Q")

    def send(self, i: int) -> None:
        SENSOR_FMT.pack_into(self.buf, self.out + 64, 23.5, 1013.25, float(i), b"OK")
        self.q.pack_into(self.buf, self.out, i)

    def recv(self, i: int) -> None:
        unpack = self.q.unpack_from
        while unpack(self.buf, self.inn)[0] != i:
            pass
        SENSOR_FMT.unpack_from(self.buf, self.inn + 64)


class FlexPing:
    """flexshm single-slot segments, one per direction; the receiver polls read()."""

    def __init__(self, mine: Any, theirs: Any) -> None:
        self.w = mine
        self.r = theirs
        self.last = self.r.read().commit

    def send(self, i: int) -> None:
        self.w.write(temperature=23.5, pressure=1013.25, timestamp=float(i), status_msg="OK")

    def recv(self, i: int) -> None:
        while True:
            d = self.r.read()
            if d.commit != self.last:
                self.last = d.commit
                if d.timestamp.value == float(i):
                    _ = (d.temperature.value, d.pressure.value, d.status_msg.value)
                    return


class IcePing:
    def __init__(self, iox2: Any, tag: str, side_a: bool) -> None:
        self.node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)

        def open_(d: str) -> Any:
            return (
                self.node.service_builder(iox2.ServiceName.new(f"fxbench/{tag}/{d}"))
                .publish_subscribe(SensorC)
                .history_size(0)
                .subscriber_max_buffer_size(1)
                .enable_safe_overflow(True)
                .open_or_create()
            )

        ab, ba = open_("ab"), open_("ba")
        out, inn = (ab, ba) if side_a else (ba, ab)
        self.pub = out.publisher_builder().create()
        self.sub = inn.subscriber_builder().create()

    def send(self, i: int) -> None:
        s = self.pub.loan_uninit()
        s = s.write_payload(SensorC(23.5, 1013.25, float(i), b"OK"))
        s.send()

    def recv(self, i: int) -> None:
        while True:
            s = self.sub.receive()
            if s is not None:
                p = s.payload().contents
                if p.timestamp == float(i):
                    _ = (p.temperature, p.pressure, p.status_msg)
                    return


class QueuePing:
    def __init__(self, out: Any, inn: Any) -> None:
        self.out, self.inn = out, inn

    def send(self, i: int) -> None:
        self.out.put((23.5, 1013.25, float(i), "OK"))

    def recv(self, i: int) -> None:
        while self.inn.get()[2] != float(i):
            pass


class PipePing:
    def __init__(self, conn: Any) -> None:
        self.c = conn

    def send(self, i: int) -> None:
        self.c.send((23.5, 1013.25, float(i), "OK"))

    def recv(self, i: int) -> None:
        while self.c.recv()[2] != float(i):
            pass


SYSTEMS = [
    "raw shared memory",
    "flexshm",
    "iceoryx2-python",
    "multiprocessing.Pipe",
    "multiprocessing.Queue",
]


def make_systems(side_a: bool, ctx: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    tag = ctx["tag"]
    sys_: dict[str, Any] = {}
    skipped: list[str] = []
    raw = shared_memory.SharedMemory(name=f"fxbench-raw-{tag}", create=False)
    ctx.setdefault("keep", []).append(raw)
    sys_["raw shared memory"] = RawPing(raw, side_a)
    mine_name = f"fxbench-{tag}-{'ab' if side_a else 'ba'}"
    their_name = f"fxbench-{tag}-{'ba' if side_a else 'ab'}"
    mine = SharedMemory(SensorData, name=mine_name, create=True)
    mine.write(temperature=0.0, pressure=0.0, timestamp=-1.0, status_msg="")
    ctx["barrier"].wait()
    theirs = SharedMemory(SensorData, name=their_name, create=False)
    ctx.setdefault("keep", []).extend([mine, theirs])
    sys_["flexshm"] = FlexPing(mine, theirs)
    iox2, why = load_iceoryx2()
    if iox2 is not None:
        try:
            iox2.set_log_level(iox2.LogLevel.Error)
            sys_["iceoryx2-python"] = IcePing(iox2, tag, side_a)
        except Exception as e:
            skipped.append(f"iceoryx2-python: set-up failed: {e}")
    else:
        skipped.append(why)
    sys_["multiprocessing.Pipe"] = PipePing(ctx["pipe"][0 if side_a else 1])
    sys_["multiprocessing.Queue"] = QueuePing(
        ctx["q_ab"] if side_a else ctx["q_ba"], ctx["q_ba"] if side_a else ctx["q_ab"]
    )
    ctx["barrier"].wait()
    return sys_, skipped


def schedule(names: list[str], blocks: int) -> list[str]:
    out = []
    for b in range(blocks):
        k = b % len(names)
        out.extend(names[k:] + names[:k])
    return out


def iters_for(name: str, iters: int) -> int:
    # The kernel-based peers are ~100× slower: fewer round trips keep blocks short.
    return max(3, iters // 20) if name.startswith("multiprocessing") else iters


def child_main(ctx: dict[str, Any], cpu: int, blocks: int, iters: int) -> None:
    os.sched_setaffinity(0, {cpu})
    systems, _ = make_systems(False, ctx)
    names = [n for n in SYSTEMS if n in systems]
    ctx["barrier"].wait()
    i = 1
    for name in schedule(names, blocks):
        s = systems[name]
        for _ in range(iters_for(name, iters) + 2):
            s.recv(i)
            s.send(i)
            i += 1
    ctx["barrier"].wait()


def cross_process(blocks: int, iters: int) -> None:
    cpus = all_cpus()
    two = len(cpus) >= 2
    cpu_a, cpu_b = cpus[0], cpus[1] if two else cpus[0]
    mpctx = mp.get_context("fork")
    tag = f"{PID}"
    raw = shared_memory.SharedMemory(name=f"fxbench-raw-{tag}", create=True, size=4096)
    a, b = mpctx.Pipe()
    ctx = {
        "tag": tag,
        "barrier": mpctx.Barrier(2),
        "pipe": (a, b),
        "q_ab": mpctx.Queue(),
        "q_ba": mpctx.Queue(),
    }
    child = mpctx.Process(target=child_main, args=(ctx, cpu_b, blocks, iters))
    child.start()
    os.sched_setaffinity(0, {cpu_a})
    systems, skipped = make_systems(True, ctx)
    names = [n for n in SYSTEMS if n in systems]
    ctx["barrier"].wait()
    res = Blocks(names)
    i = 1
    clock = time.perf_counter_ns
    for name in schedule(names, blocks):
        s = systems[name]
        s.send(i)  # two warm-up round trips
        s.recv(i)
        s.send(i + 1)
        s.recv(i + 1)
        i += 2
        v = []
        t = clock()
        for _ in range(iters_for(name, iters)):
            s.send(i)
            s.recv(i)
            i += 1
            now = clock()
            v.append((now - t) / 2)
            t = now
        res.push(name, v)
    ctx["barrier"].wait()
    child.join()
    rows = []
    for n in names:
        rows.append(
            [
                n,
                fmt_ns(res.pooled(n, 50)),
                fmt_ns(res.pooled(n, 99)),
                res.ratio(n, "raw shared memory"),
                res.ratio(n, "flexshm") if n != "flexshm" else "–",
            ]
        )
    notes = [
        f"{blocks} interleaved blocks per system ({iters} round trips per block, "
        f"{iters_for('multiprocessing.Queue', iters)} for Queue and Pipe), two processes "
        "pinned to different cores; one-way = round trip / 2. The SensorData record "
        "travels both ways; receivers read its 4 values. flexshm, iceoryx2 and raw "
        "memory receivers busy-poll; Queue and Pipe receivers block in get()/recv(), "
        "their normal use." + ("" if two else " Only one CPU was available."),
    ]
    for s_ in skipped:
        notes.append(f"Not measured: {s_}")
    table(
        "Python, cross-process one-way latency (SensorData)",
        ["system", "p50", "p99", "ratio to raw shared memory", "its time ÷ flexshm's"],
        rows,
        notes,
    )
    for h in ctx.get("keep", []):
        if isinstance(h, SharedMemory):
            h.close()
    for nm in ("ab", "ba"):
        try:
            SharedMemory(SensorData, name=f"fxbench-{tag}-{nm}", create=False).unlink()
        except Exception:
            pass
    raw.close()
    raw.unlink()


# ---------------------------------------------------------------------------------------
# FIFO throughput


def fifo_consumer(name: str, cpu: int, ready: Any, out: Any) -> None:
    """read() until the producer's end marker (timestamp -1)."""
    os.sched_setaffinity(0, {cpu})
    r = SharedMemory(SensorData, name=name, create=False)
    ready.set()
    got = lost = 0
    while True:
        d = r.read(timeout=30)
        lost += d.lost
        if d.timestamp.value < 0:
            break
        got += 1
    out.put((got, lost))
    r.close()


def fifo_iter_consumer(name: str, cpu: int, ready: Any, out: Any) -> None:
    """`for record in shm` until the producer's end marker (timestamp -1)."""
    os.sched_setaffinity(0, {cpu})
    r = SharedMemory(SensorData, name=name, create=False)
    ready.set()
    got = lost = 0
    for d in r:
        lost += d.lost
        if d.timestamp.value < 0:
            break
        got += 1
    out.put((got, lost))
    r.close()


def fifo_many_consumer(name: str, cpu: int, ready: Any, out: Any) -> None:
    """read_many(1024) (a list of records) until the end marker (timestamp -1)."""
    os.sched_setaffinity(0, {cpu})
    r = SharedMemory(SensorData, name=name, create=False)
    ready.set()
    got = lost = 0
    while True:
        done = False
        for d in r.read_many(1024, timeout=30):
            lost += d.lost
            if d.timestamp.value < 0:
                done = True
                break
            got += 1
        if done:
            break
    out.put((got, lost))
    r.close()


def fifo_array_consumer(name: str, cpu: int, ready: Any, out: Any) -> None:
    """read_many(4096, as_array=True) (a structured array) until the end marker."""
    os.sched_setaffinity(0, {cpu})
    r = SharedMemory(SensorData, name=name, create=False)
    ready.set()
    got = lost = 0
    while True:
        a = r.read_many(4096, timeout=30, as_array=True)
        lost += int(a["lost"].sum())
        ends = (a["timestamp"] < 0).nonzero()[0]
        if len(ends):
            got += int(ends[0])
            break
        got += len(a)
    out.put((got, lost))
    r.close()


def fifo_run(consumer: Callable[..., None], seconds: float) -> tuple[int, float, int, int]:
    """One producer (this process) and one consumer process for `seconds`: records
    produced, the time taken, records received and records lost."""
    cpus = all_cpus()
    mpctx = mp.get_context("fork")
    name = f"fxbench-fifo-{PID}"
    w = SharedMemory(SensorData, name=name, create=True, slots=4096)
    ready = mpctx.Event()
    out = mpctx.Queue()
    c = mpctx.Process(target=consumer, args=(name, cpus[-1], ready, out))
    c.start()
    os.sched_setaffinity(0, {cpus[0]})
    ready.wait(30)
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            w.write(timestamp=float(n))
            w.finalize()
            n += 1
    tp = time.perf_counter() - t0
    w.write(timestamp=-1.0)  # the end marker: the newest record, never lapped
    w.finalize()
    got, lost = out.get()
    c.join()
    w.close()
    w.unlink()
    return n, tp, got, lost


def fifo(seconds: float) -> None:
    rows = []
    notes = []
    for label, consumer in (
        ("consumer process: read() + 1 value", fifo_consumer),
        ("consumer process: `for record in shm` + 1 value", fifo_iter_consumer),
        ("consumer process: read_many(1024) + 1 value", fifo_many_consumer),
        ("consumer process: read_many(4096, as_array=True)", fifo_array_consumer),
    ):
        n, tp, got, lost = fifo_run(consumer, seconds)
        if not rows:
            rows.append(["producer: write(1 field) + finalize()", f"{n / tp / 1e6:.2f} M/s", "–"])
        rows.append(
            [label, f"{got / tp / 1e6:.2f} M/s", f"{lost} of {n} ({100 * lost / max(1, n):.1f} %)"]
        )
        notes.append(
            f"{label.split(': ')[1]}: received + lost = produced: "
            f"{'yes' if got + lost == n else 'NO'}."
        )
    # A producer-only measure: the 4-field write + finalize rate.
    name = f"fxbench-fifo-{PID}"
    w = SharedMemory(SensorData, name=name, create=True, slots=4096)
    t0 = time.perf_counter()
    k = 0
    while time.perf_counter() - t0 < seconds / 2:
        for _ in range(100):
            w.write(temperature=23.5, pressure=1013.25, timestamp=float(k), status_msg="OK")
            w.finalize()
            k += 1
    t4 = time.perf_counter() - t0
    w.close()
    w.unlink()
    rows.append(["producer alone: write(4 fields) + finalize()", f"{k / t4 / 1e6:.2f} M/s", "–"])
    # The same records through write_many(), 256 at a time.
    w = SharedMemory(SensorData, name=name, create=True, slots=4096)
    batch = [
        {"temperature": 23.5, "pressure": 1013.25, "timestamp": float(i), "status_msg": "OK"}
        for i in range(256)
    ]
    t0 = time.perf_counter()
    k = 0
    while time.perf_counter() - t0 < seconds / 2:
        w.write_many(batch)
        k += len(batch)
    tm = time.perf_counter() - t0
    w.close()
    w.unlink()
    rows.append(["producer alone: write_many(256 × 4 fields)", f"{k / tm / 1e6:.2f} M/s", "–"])
    table(
        "Python, FIFO throughput (SensorData, 4096 slots)",
        ["what", "records/s", "lost"],
        rows,
        [
            f"One producer and one consumer process on different cores for {seconds:.1f} s "
            "per consumer row (the producer row is from the first run); the producer never "
            "waits (flexshm FIFO semantics), so a slower consumer loses records and is told "
            "how many. `for record in shm` sleeps in the kernel whenever it has caught up.",
            " ".join(notes),
        ],
    )


# ---------------------------------------------------------------------------------------
# Wake-up latency of a sleeping reader: raw futex, wait(), wait_async(), read(timeout)

# SYS_futex by machine; FUTEX_WAIT = 0, FUTEX_WAKE = 1 (shared futexes: no private flag).
SYS_FUTEX = {"x86_64": 202, "aarch64": 98, "riscv64": 98}
WAKE_SYSTEMS = [
    "raw futex (ctypes FUTEX_WAIT / FUTEX_WAKE)",
    "flexshm wait()",
    "flexshm wait_async()",
    "flexshm FIFO read(timeout)",
]
# Layout of the control page: futex word, the raw stamp, the reader's acknowledgements.
W_WORD, W_STAMP, W_ACK = 0, 64, 128


class RawFutex:
    """A counter in shared memory and a shared futex on it, through ctypes."""

    def __init__(self, shm: shared_memory.SharedMemory) -> None:
        self.buf = shm.buf
        self.word = ctypes.c_uint32.from_buffer(shm.buf, W_WORD)
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.nr = SYS_FUTEX[os.uname().machine]

    def post(self) -> None:
        struct.pack_into("<Q", self.buf, W_STAMP, time.monotonic_ns())
        self.word.value += 1
        self.libc.syscall(self.nr, ctypes.byref(self.word), 1, 2**31 - 1, None, None, 0)

    def wait(self, last: int) -> int:
        while self.word.value == last:
            # ctypes releases the GIL around the call, as flexshm's waits do.
            self.libc.syscall(self.nr, ctypes.byref(self.word), 0, last, None, None, 0)
        return int(self.word.value)

    def stamp(self) -> int:
        return int(struct.unpack_from("<Q", self.buf, W_STAMP)[0])


def wake_reader(
    ctl_name: str,
    name: str,
    cpu: int,
    names: list[str],
    blocks: int,
    iters: int,
    ready: Any,
    out: Any,
) -> None:
    """The sleeping side: for each wake-up, the time from the writer's stamp (taken just
    before it committed) to the moment the wait returned."""
    os.sched_setaffinity(0, {cpu})
    ctl = shared_memory.SharedMemory(name=ctl_name)
    raw = RawFutex(ctl)
    shm = SharedMemory(SensorData, name=name, create=False)
    loop = asyncio.new_event_loop()

    async def await_one() -> int:
        await shm.wait_async()
        return time.monotonic_ns()

    last = raw.word.value
    acks = 0
    ready.set()  # set up, and `last` taken before the writer's first post
    for system in schedule(names, blocks):
        block = []
        for _ in range(iters):
            if system == WAKE_SYSTEMS[0]:
                last = raw.wait(last)
                block.append(time.monotonic_ns() - raw.stamp())
            else:
                if system == WAKE_SYSTEMS[1]:
                    shm.wait()
                    now = time.monotonic_ns()
                    rec = shm.read(timeout=0)
                elif system == WAKE_SYSTEMS[2]:
                    now = loop.run_until_complete(await_one())
                    rec = shm.read(timeout=0)
                else:
                    rec = shm.read()
                    now = time.monotonic_ns()
                block.append(now - rec.timestamp.value)
            acks += 1
            struct.pack_into("<Q", ctl.buf, W_ACK, acks)
        out.put((system, block))
    loop.close()
    shm.close()
    del raw
    ctl.close()
    out.put(None)


def wake(blocks: int, iters: int, gap: float) -> None:
    cpus = all_cpus()
    two = len(cpus) >= 2
    names = list(WAKE_SYSTEMS)
    skipped = []
    if os.uname().machine not in SYS_FUTEX:
        names.remove(WAKE_SYSTEMS[0])
        skipped.append(f"raw futex: no SYS_futex number known for {os.uname().machine}")
    ctl = shared_memory.SharedMemory(create=True, size=4096)
    raw = RawFutex(ctl)
    name = f"fxbench-wake-{PID}"
    w = SharedMemory(SensorData, name=name, create=True, slots=64)
    mpctx = mp.get_context("fork")
    out = mpctx.Queue()
    ready = mpctx.Event()
    child = mpctx.Process(
        target=wake_reader,
        args=(ctl.name, name, cpus[-1], names, blocks, iters, ready, out),
    )
    child.start()
    os.sched_setaffinity(0, {cpus[0]})
    if not ready.wait(30):
        raise RuntimeError("the wake-up reader did not start")
    acks = 0
    for system in schedule(names, blocks):
        for _ in range(iters):
            # Long enough for the reader to have finished its spin and to sleep.
            time.sleep(gap)
            if system == WAKE_SYSTEMS[0]:
                raw.post()
            else:
                w.write(timestamp=float(time.monotonic_ns()))
                w.finalize()
            acks += 1
            # The reader acknowledges each wake-up, so none coalesce.
            deadline = time.monotonic() + 10
            while struct.unpack_from("<Q", ctl.buf, W_ACK)[0] != acks:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{system}: the reader did not wake up")
    res = Blocks(names)
    while (item := out.get(timeout=30)) is not None:
        res.push(item[0], item[1])
    child.join()
    w.close()
    w.unlink()
    del raw
    ctl.close()
    ctl.unlink()
    base = names[0]
    rows = [
        [n, fmt_ns(res.pooled(n, 50)), fmt_ns(res.pooled(n, 99)), res.ratio(n, base)] for n in names
    ]
    notes = [
        f"{blocks} interleaved blocks × {iters} wake-ups per system; the writer process "
        f"waits {gap * 1e3:.0f} ms before each commit, so the reader sleeps in the kernel "
        "(after its adaptive spin). Latency = CLOCK_MONOTONIC when the wait returns − the "
        "writer's CLOCK_MONOTONIC just before it committed (FIFO, 64 slots). The reader "
        "acknowledges each wake-up. wait_async() is awaited in an asyncio loop run by "
        "loop.run_until_complete; its time includes the waiter thread's hand-off to the "
        "loop (call_soon_threadsafe) and the task's resumption. The baseline is a Python "
        "process blocked in FUTEX_WAIT through ctypes, woken by the other's FUTEX_WAKE."
        + ("" if two else " Only one CPU was available.")
    ]
    for s_ in skipped:
        notes.append(f"Not measured: {s_}")
    table(
        "Python, wake-up latency of a sleeping reader (commit in another process)",
        ["system", "p50", "p99", "ratio to raw futex"]
        if base == WAKE_SYSTEMS[0]
        else ["system", "p50", "p99", f"ratio to {base}"],
        rows,
        notes,
    )


def main() -> None:
    mode = "full"
    if "--quick" in sys.argv:
        mode = "quick"
    if "--smoke" in sys.argv:
        mode = "smoke"
    blocks, reps, xblocks, xiters, fsec, wblocks, witers = {
        "full": (60, 2000, 40, 300, 2.0, 10, 40),
        "quick": (20, 1000, 10, 200, 1.0, 4, 25),
        "smoke": (3, 50, 2, 10, 0.2, 1, 2),
    }[mode]
    in_process(blocks, reps)
    cross_process(xblocks, xiters)
    fifo(fsec)
    wake(wblocks, witers, 0.002)


if __name__ == "__main__":
    main()
