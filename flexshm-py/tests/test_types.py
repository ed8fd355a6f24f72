"""Annotations, value conversion and round trips of every type, in one process."""

import dataclasses
import sys
import types
from dataclasses import dataclass, field

import numpy as np
import pytest
from flexible_shared_memory import Field, Record, SharedMemory
from records import SensorData

DTYPES = [
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
]


def _pair(record_type: type, name: str, **kw: object) -> tuple[SharedMemory, SharedMemory]:
    writer = SharedMemory(record_type, name=name, **kw)  # type: ignore[arg-type]
    reader = SharedMemory(record_type, name=name, create=False)
    return writer, reader


def _sample(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    info_max = 1 if dtype == "bool" else 100
    values = (np.arange(int(np.prod(shape))) % (info_max + 1)).reshape(shape)
    if dtype.startswith("int"):
        values = values - 50 if dtype != "bool" else values
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_as_array_and_scalar(shm_name: str, dtype: str) -> None:
    record = dataclasses.make_dataclass(
        "AllOf_" + dtype,
        [
            ("matrix", f"{dtype}[4,3,2]"),
            ("vector", f"{dtype}[5]"),
            ("scalar", dtype),
        ],
    )
    writer, reader = _pair(record, shm_name)
    matrix, vector = _sample(dtype, (4, 3, 2)), _sample(dtype, (5,))
    scalar = np.array(1 if dtype == "bool" else 7, dtype=dtype)[()]
    extreme = {
        "int64": np.iinfo(np.int64).min,
        "uint64": np.iinfo(np.uint64).max,
        "float32": np.float32(3.1415927),
    }
    if dtype in extreme:
        scalar = np.array(extreme[dtype], dtype=dtype)[()]
    writer.write(matrix=matrix, vector=vector, scalar=scalar)
    data = reader.read()
    for fname, sent in [("matrix", matrix), ("vector", vector)]:
        got = data[fname].value
        assert got.dtype == np.dtype(dtype), fname
        assert got.shape == sent.shape, fname
        assert np.array_equal(got, sent), fname
        assert not got.flags.writeable and got.flags.c_contiguous and got.flags.aligned
    got_scalar = data.scalar.value
    # "bool" is Python's bool (the annotation and the dtype name coincide).
    assert type(got_scalar) is (bool if dtype == "bool" else np.dtype(dtype).type)
    assert got_scalar == scalar
    writer.close()
    reader.close()


def test_partial_rows_read_back_exactly(shm_name: str) -> None:
    @dataclass
    class Track:
        points: "float32[10,2]" = None  # type: ignore[assignment]

    writer, reader = _pair(Track, shm_name)
    writer.write(points=[[1, 2], [3, 4], [5, 6]])
    pts = reader.read().points
    assert pts.valid and pts.value.shape == (3, 2) and pts.value.dtype == np.float32
    writer.write(points=np.zeros((0, 2), np.float32))
    pts = reader.read().points
    assert pts.valid and pts.value.shape == (0, 2)
    writer.write(points=np.ones((12, 2)))
    pts = reader.read().points
    assert pts.truncated and not pts.valid and pts.value.shape == (10, 2)


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world",  # ASCII
        "Привет, мир",  # Cyrillic
        "你好，世界",  # Chinese  # noqa: RUF001 (the full-width comma is Chinese text)
        "こんにちは世界、カタカナ",  # Japanese
        "🎉🚀👍🏽🇩🇪",  # emoji (incl. modifiers and flags: several code points each)
        "",
    ],
)
def test_unicode_strings_round_trip_and_truncate_by_characters(shm_name: str, text: str) -> None:
    @dataclass
    class Msg:
        short: "str[5]" = ""
        long: "str[64]" = ""

    writer, reader = _pair(Msg, shm_name)
    writer.write(short=text, long=text)
    data = reader.read()
    assert data.long.value == text and data.long.valid
    assert data.short.value == text[:5]
    assert len(data.short.value) == min(len(text), 5)
    assert data.short.truncated == (len(text) > 5)
    assert data.short.valid == (len(text) <= 5)


def test_str_capacity_is_characters_not_bytes(shm_name: str) -> None:
    @dataclass
    class Msg:
        text: "str[4]" = ""

    writer, reader = _pair(Msg, shm_name)
    writer.write(text="😀😀😀😀")  # 16 bytes of UTF-8, 4 characters: fits
    assert reader.read().text.valid
    writer.write(text="😀😀😀😀x")
    t = reader.read().text
    assert t.truncated and t.value == "😀😀😀😀"


def test_python_scalars_map_to_f64_i32_bool(shm_name: str) -> None:
    writer, _reader = _pair(SensorData, shm_name)
    assert writer.layout == {
        "temperature": "float64",
        "pressure": "float64",
        "timestamp": "float64",
        "status_msg": "str[32]",
    }

    @dataclass
    class Mixed:
        i: int = 0
        f: float = 0.0
        b: bool = False

    w2, r2 = _pair(Mixed, shm_name + "-m")
    try:
        assert w2.layout == {"i": "int32", "f": "float64", "b": "bool"}
        w2.write(i=np.int16(-5), f=1, b=np.bool_(True))
        d = r2.read()
        assert (type(d.i.value), type(d.f.value), type(d.b.value)) == (int, float, bool)
        assert (d.i.value, d.f.value, d.b.value) == (-5, 1.0, True)
        w2.write(i=2**31 - 1, f=0.1)
        assert r2.read().i.value == 2**31 - 1 and r2.read().f.value == 0.1
    finally:
        w2.close()
        w2.unlink()


def test_defaults_are_what_unwritten_fields_read_as(shm_name: str) -> None:
    @dataclass
    class Defaults:
        temperature: float = -273.15
        label: "str[8]" = "none"
        coefficients: "float64[5]" = None  # type: ignore[assignment]
        grid: "int16[2,2]" = field(default_factory=lambda: np.full((2, 2), 9, np.int16))
        count: int = 0
        bare: "uint8" = 0

    @dataclass
    class NoDefaults:
        x: float
        n: int
        flag: bool
        s: "str[3]"
        a: "uint8[2,3]"

    _writer, reader = _pair(Defaults, shm_name)
    data = reader.read()
    assert all(f.unwritten and not f.valid and not f.modified for f in data)
    assert data.temperature.value == -273.15
    assert data.label.value == "none"
    assert data.coefficients.value is None
    assert np.array_equal(data.grid.value, np.full((2, 2), 9))
    rebuilt = data.as_dataclass()
    assert isinstance(rebuilt, Defaults) and rebuilt.label == "none" and rebuilt.count == 0
    assert rebuilt.coefficients is None and rebuilt.grid.shape == (2, 2)

    w2, r2 = _pair(NoDefaults, shm_name + "-n")
    try:
        d = r2.read().as_dict()
        assert d["x"] == 0.0 and d["n"] == 0 and d["flag"] is False and d["s"] == ""
        assert d["a"].shape == (2, 3) and d["a"].dtype == np.uint8 and not d["a"].any()
    finally:
        w2.close()
        w2.unlink()


def test_record_access_iteration_and_dataclass(shm_name: str) -> None:
    writer, reader = _pair(SensorData, shm_name)
    writer.write(temperature=23.5, status_msg="OK")
    data = reader.read()
    assert isinstance(data, Record) and isinstance(data.temperature, Field)
    assert [f.name for f in data] == ["temperature", "pressure", "timestamp", "status_msg"]
    assert len(data) == 4 and "pressure" in data and "nope" not in data
    assert data["temperature"].value == 23.5
    assert data.as_dict() == {
        "temperature": 23.5,
        "pressure": 0.0,
        "timestamp": 0.0,
        "status_msg": "OK",
    }
    assert data.as_dataclass() == SensorData(temperature=23.5, status_msg="OK")
    assert data.commit == 1 and data.lost == 0
    with pytest.raises(AttributeError, match="no field 'nope'"):
        _ = data.nope
    with pytest.raises(KeyError):
        _ = data["nope"]
    assert "temperature" in dir(data)


def test_field_magic_conversions(shm_name: str) -> None:
    @dataclass
    class Conv:
        position: float = 0.0
        count: int = 0
        flag: bool = False
        image: "uint8[2,2,3]" = None  # type: ignore[assignment]

    writer, reader = _pair(Conv, shm_name)
    writer.write(position=2.75, count=-3, flag=True, image=np.full((2, 2, 3), 7, np.uint8))
    data = reader.read()
    assert float(data.position) == 2.75 and int(data.position) == 2
    assert int(data.count) == -3 and float(data.count) == -3.0
    assert bool(data.flag) is True
    assert f"{data.position:.1f}" == "2.8" and str(data.count) == "-3"
    arr = np.array(data.image)
    assert arr.shape == (2, 2, 3) and arr.dtype == np.uint8 and arr.flags.writeable
    arr[0, 0, 0] = 1  # a copy: the record is unchanged
    assert data.image.value[0, 0, 0] == 7
    assert np.asarray(data.image, dtype=np.float64).dtype == np.float64
    assert np.array(data.position) == 2.75


def test_array_values_view_the_record_without_copy(shm_name: str) -> None:
    @dataclass
    class Img:
        image: "uint8[48,64,3]" = None  # type: ignore[assignment]

    writer, reader = _pair(Img, shm_name)
    writer.write(image=np.full((48, 64, 3), 5, np.uint8))
    data = reader.read()
    a, b = data.image.value, data.image.value
    assert np.shares_memory(a, b)  # both view the record's one copy
    del data
    writer.write(image=np.full((48, 64, 3), 6, np.uint8))
    newer = reader.read().image.value
    assert int(a[0, 0, 0]) == 5 and int(newer[0, 0, 0]) == 6  # a keeps its record alive


def test_reprs_show_name_mode_and_layout(shm_name: str) -> None:
    writer = SharedMemory(SensorData, name=shm_name, slots=4)
    text = repr(writer)
    assert shm_name in text and "writer" in text and "fifo, slots=4" in text
    assert "temperature: float64" in text and "status_msg: str[32]" in text
    writer.write(temperature=1.5)
    writer.finalize()
    rec = writer.read(timeout=1)
    assert "temperature=1.5 (modified)" in repr(rec) and "lost=0" in repr(rec)
    assert "status_msg='' (unwritten)" in repr(rec)
    assert repr(rec.temperature) == "<Field temperature=1.5 (modified)>"
    writer.close()
    assert repr(writer).startswith("<closed SharedMemory")


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ("float16", "unknown type"),
        ("str", "annotation"),
        ("str[0]", "at least 1"),
        ("uint8[2,3", "closing"),
        ("int8[1,2,3,4,5]", "at most 4"),
        (list, "bad annotation"),
        (str, "bad annotation"),
    ],
)
def test_bad_annotation_is_type_error_naming_field(
    shm_name: str, annotation: object, message: str
) -> None:
    record = dataclasses.make_dataclass("Bad", [("ok", float), ("broken", annotation)])
    with pytest.raises(TypeError, match=message) as info:
        SharedMemory(record, name=shm_name)
    assert "broken" in str(info.value)
    with pytest.raises(FileNotFoundError):
        SharedMemory(SensorData, name=shm_name, create=False)  # nothing was created


def test_future_annotations_and_numpy_types_are_understood(
    shm_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("late_module")
    monkeypatch.setitem(sys.modules, "late_module", module)
    namespace = module.__dict__
    exec(
        "from __future__ import annotations\n"
        "from dataclasses import dataclass\n"
        "import numpy as np\n"
        "@dataclass\n"
        "class Late:\n"
        "    a: float = 0.0\n"
        "    b: 'str[4]' = ''\n"
        '    c: "uint8[2]" = None\n'
        "    d: np.float32 = 0.0\n",
        namespace,
    )
    namespace["Late"].__module__ = "late_module"
    shm = SharedMemory(namespace["Late"], name=shm_name)  # type: ignore[arg-type]
    assert shm.layout == {"a": "float64", "b": "str[4]", "c": "uint8[2]", "d": "float32"}
    shm.close()


def test_not_a_record_class() -> None:
    with pytest.raises(TypeError, match="record class"):
        SharedMemory(SensorData(), name="x")  # type: ignore[arg-type]


def test_field_named_like_a_record_attribute_is_an_item(shm_name: str) -> None:
    @dataclass
    class Clash:
        lost: int = 0
        commit: "str[4]" = ""
        value: float = 0.0

    writer = SharedMemory(Clash, name=shm_name)
    writer.write(lost=5, commit="abc", value=1.5)
    rec = writer.read()
    assert rec.lost == 0 and rec.commit == 1  # the record's own attributes
    assert rec["lost"].value == 5 and rec["commit"].value == "abc"
    assert rec.value.value == 1.5  # not a Record attribute: a field
    # Each name once, though `lost` and `commit` are both an attribute and a field.
    names = dir(rec)
    assert names.count("lost") == 1 and names.count("commit") == 1
    assert {"value", "as_dict", "as_dataclass"} <= set(names)
    writer.close()


def test_plain_annotated_class_works_too(shm_name: str) -> None:
    class Plain:
        temperature: float = 1.5
        label: "str[8]"

    shm = SharedMemory(Plain, name=shm_name)
    assert shm.layout == {"temperature": "float64", "label": "str[8]"}
    rec = shm.read()
    assert rec.temperature.value == 1.5 and rec.label.value == ""  # default, zero
    shm.write(label="x")
    assert shm.read().as_dict() == {"temperature": 1.5, "label": "x"}
    shm.close()
