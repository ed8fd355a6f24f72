"""`read()` reuses the Record and Field objects nobody holds any more; held ones never change.

The binding hands out a record (or field) object again, with new contents, only when its
own reference is the last one. These tests hold records, fields, values and array views
in every way a program can and check that later reads and look-ups leave them alone, and
that the objects a program dropped are the ones reused (so the fast path is taken).
"""

import gc
import sys
import threading
from dataclasses import dataclass, field

import numpy as np
import pytest
from flexible_shared_memory import Field, SharedMemory
from records import SensorData


@dataclass
class Small:
    n: "int64" = 0
    label: "str[16]" = ""
    vec: "float64[3]" = None  # type: ignore[assignment]


def _pair(name: str, cls: type = SensorData, **kw: object) -> "tuple[SharedMemory, SharedMemory]":
    w = SharedMemory(cls, name=name, **kw)
    return w, SharedMemory(cls, name=name, create=False)


def test_a_held_record_keeps_its_values_across_later_reads(shm_name: str) -> None:
    w, r = _pair(shm_name)
    w.write(temperature=1.0, status_msg="first")
    held = r.read()
    for i in range(2, 50):
        w.write(temperature=float(i), status_msg=f"rec {i}")
        rec = r.read()
        assert rec is not held
        assert rec.temperature.value == float(i) and rec.status_msg.value == f"rec {i}"
        assert held.temperature.value == 1.0 and held.status_msg.value == "first"
        assert held.commit == 1
    w.close(), r.close()


def test_a_dropped_record_object_is_reused_with_the_new_contents(shm_name: str) -> None:
    w, r = _pair(shm_name)
    w.write(temperature=1.0)
    first = id(r.read())  # dropped at once
    w.write(temperature=2.0)
    rec = r.read()
    assert id(rec) == first, "the dropped record was not reused"
    assert rec.temperature.value == 2.0 and rec.commit == 2
    # `rec = r.read()` in a loop: the previous record is still bound to `rec` while the
    # next read runs; the two kept objects take turns, and every record reads right.
    ids = set()
    for i in range(3, 40):
        w.write(temperature=float(i))
        rec = r.read()
        ids.add(id(rec))
        assert rec.temperature.value == float(i) and rec.commit == i
    assert len(ids) == 2, f"{len(ids)} distinct record objects for 37 reads"
    w.close(), r.close()


def test_held_fields_keep_value_status_and_name(shm_name: str) -> None:
    w, r = _pair(shm_name)
    w.write(temperature=5.0, status_msg="x" * 40)  # truncated to 32 characters
    rec = r.read()
    t = rec.temperature
    s = rec.status_msg
    p = rec.pressure  # never written
    assert len({id(t), id(s), id(p)}) == 3
    for i in range(10):
        w.write(temperature=float(i), pressure=float(i), status_msg=f"s{i}")
        other = r.read()
        # Look-ups on other records after the held fields were made.
        assert other.temperature.value == float(i)
        assert other.status_msg.value == f"s{i}" and other.status_msg.valid
        assert other.pressure.valid
    assert (t.value, t.name, t.valid) == (5.0, "temperature", True)
    assert (s.value, s.truncated, s.valid) == ("x" * 32, True, False)
    assert (p.value, p.unwritten, p.valid) == (0.0, True, False)
    assert repr(t) == "<Field temperature=5.0 (modified)>"
    w.close(), r.close()


def test_a_field_outlives_its_record(shm_name: str) -> None:
    w, r = _pair(shm_name)
    w.write(temperature=7.5, status_msg="kept")
    f = r.read().status_msg  # the record is dropped, and reused by the next read
    w.write(status_msg="newer")
    assert r.read().status_msg.value == "newer"
    assert f.value == "kept" and f.modified and f.name == "status_msg"
    w.close(), r.close()


def test_a_dropped_field_object_is_reused(shm_name: str) -> None:
    w, r = _pair(shm_name)
    w.write(temperature=1.0, pressure=2.0)
    rec = r.read()
    first = id(rec.temperature)  # dropped at once
    f = rec.pressure
    assert id(f) == first, "the dropped field was not reused"
    assert f.value == 2.0 and f.name == "pressure"
    w.close(), r.close()


def test_value_is_a_member_read_from_the_field_object(shm_name: str) -> None:
    # `Field.value` is a member descriptor (the interpreter reads the value's pointer
    # from the object, with no call into the extension). A reused field object must
    # give its new value through it, and a kept one its own.
    assert type(Field.__dict__["value"]).__name__ == "member_descriptor"
    assert Field.value.__doc__ and Field.value.__doc__.startswith("The value:")
    w, r = _pair(shm_name)
    w.write(temperature=1.0, pressure=2.0, timestamp=3.0, status_msg="four")
    rec = r.read()
    kept = rec.status_msg
    for _ in range(3):
        assert [rec.temperature.value, rec.pressure.value, rec.timestamp.value] == [1.0, 2.0, 3.0]
    assert kept.value == "four"
    with pytest.raises(AttributeError):
        kept.value = "five"  # type: ignore[misc]
    w.close(), r.close()


def test_fields_from_iteration_are_distinct_and_unchanged_by_lookups(shm_name: str) -> None:
    w, r = _pair(shm_name)
    w.write(temperature=1.0, pressure=2.0, timestamp=3.0, status_msg="four")
    rec = r.read()
    fields = list(rec)
    for _ in range(5):
        assert rec.temperature.value == 1.0 and rec["pressure"].value == 2.0
    assert [f.value for f in fields] == [1.0, 2.0, 3.0, "four"]
    assert len({id(f) for f in fields}) == 4
    w.close(), r.close()


def test_array_views_keep_their_record(shm_name: str) -> None:
    w, r = _pair(shm_name, Small)
    w.write(n=1, vec=np.array([1.0, 2.0, 3.0]))
    view = r.read().vec.value  # the view holds the record: it must not be reused
    arr = np.asarray(r.read().vec)
    for i in range(2, 20):
        w.write(n=i, vec=np.full(3, float(i)))
        rec = r.read()
        assert rec.n.value == i and rec.vec.value.tolist() == [float(i)] * 3
    assert view.tolist() == [1.0, 2.0, 3.0] and not view.flags.writeable
    assert arr.tolist() == [1.0, 2.0, 3.0]
    w.close(), r.close()


def test_a_record_returned_to_a_container_or_copy_is_kept(shm_name: str) -> None:
    import copy

    w, r = _pair(shm_name, Small)
    kept = []
    for i in range(1, 30):
        w.write(n=i, label=f"L{i}")
        rec = r.read()
        if i % 3 == 0:
            kept.append(rec)
        if i % 5 == 0:
            kept.append(copy.copy(rec))  # the same object, now held by the list
    del rec
    gc.collect()
    for rec in kept:
        assert rec.label.value == f"L{rec.n.value}" and rec.commit == rec.n.value
    w.close(), r.close()


def test_fifo_records_and_iteration_keep_held_records(shm_name: str) -> None:
    w, r = _pair(shm_name, Small, slots=64)
    for i in range(1, 41):
        w.write(n=i, label=f"L{i}")
        w.finalize()
    held = [r.read(timeout=5) for _ in range(10)]
    ns = []
    for rec in r:
        ns.append(rec.n.value)
        assert rec.label.value == f"L{rec.n.value}"
        if len(ns) == 30:
            break
    assert ns == list(range(11, 41))
    assert [h.n.value for h in held] == list(range(1, 11))
    assert [h.label.value for h in held] == [f"L{i}" for i in range(1, 11)]
    w.close(), r.close()


def test_threads_never_see_their_records_change(shm_name: str) -> None:
    """Threads share one reader handle; each holds its record while it checks it."""
    w, r = _pair(shm_name, Small)
    w.write(n=0, label="L0", vec=np.zeros(3))
    stop = threading.Event()
    errors: list[str] = []

    def reader() -> None:
        for _ in range(3000):
            rec = r.read()
            n = rec.n.value
            label = rec.label
            # Other threads read (and may be handed reused objects) in between.
            for _ in range(3):
                if rec.n.value != n or label.value != f"L{n}" or rec.commit != n + 1:
                    errors.append(f"record {n} changed under its holder")
                    return

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            w.write(n=i, label=f"L{i}")

    threads = [threading.Thread(target=reader) for _ in range(4)]
    wt = threading.Thread(target=writer)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        wt.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        stop.set()
        wt.join()
        sys.setswitchinterval(old)
    assert not errors, errors[:3]
    w.close(), r.close()


def test_large_records_are_not_kept(shm_name: str) -> None:
    @dataclass
    class Big:
        data: "uint8[100000]" = None  # type: ignore[assignment]

    w, r = _pair(shm_name, Big)
    w.write(data=np.ones(100000, np.uint8))
    first = r.read()
    second = r.read()
    assert first is not second
    del first, second
    gc.collect()
    # Nothing of the handle keeps a 100 kB snapshot alive beyond its one spare buffer:
    # reading again still works and gives the right values.
    assert int(r.read().data.value.sum()) == 100000
    w.close(), r.close()


class _ReprHook:
    """A default value whose repr runs code while a list's repr holds only a borrowed
    reference to the object being shown (CPython's list repr does)."""

    action = None

    def __repr__(self) -> str:
        action, _ReprHook.action = _ReprHook.action, None
        if action is not None:
            action()
        return "hook"


@dataclass
class Hooked:
    n: "int64" = 0
    w: "int64" = field(default_factory=_ReprHook)  # never written: the factory's value
    m: "int64" = 0


def test_a_field_shown_through_a_borrowed_reference_is_not_reused(shm_name: str) -> None:
    w, r = _pair(shm_name, Hooked)
    w.write(n=1, m=2)
    rec = r.read()
    shown = [rec.w]
    looked_up = []

    def drop_and_look_up() -> None:
        shown.clear()  # the list held the only owned reference to the field
        looked_up.extend((rec.n.value, rec.m.value))

    _ReprHook.action = drop_and_look_up
    assert repr(shown) == "[<Field w=hook (unwritten)>]"
    assert looked_up == [1, 2]
    w.close(), r.close()


def test_a_record_shown_through_a_borrowed_reference_is_not_reused(shm_name: str) -> None:
    w, r = _pair(shm_name, Hooked)
    w.write(n=1, m=1)
    r.read()  # park a record
    shown = [r.read()]
    w.write(n=2, m=2)
    w.write(n=3, m=3)
    later = []

    def drop_and_read() -> None:
        shown.clear()  # the list held the only owned reference to the record
        later.extend((r.read(), r.read()))

    _ReprHook.action = drop_and_read
    text = repr(shown)
    assert "#1:" in text and "(3)" not in text, text
    assert [(x.commit, x.n.value) for x in later] == [(3, 3), (3, 3)]
    w.close(), r.close()


def test_close_releases_the_kept_objects(shm_name: str) -> None:
    import weakref

    class Value:
        pass

    @dataclass
    class WithDefault:
        n: "int64" = 0
        v: "int64" = field(default_factory=Value)

    w, r = _pair(shm_name, WithDefault)
    w.write(n=1)
    rec = r.read()
    value = weakref.ref(rec.v.value)
    del rec
    r.read()
    r.close()
    gc.collect()
    assert value() is None, "a default value outlived close()"
    w.close()
