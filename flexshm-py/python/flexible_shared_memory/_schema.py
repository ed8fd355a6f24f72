"""Turns a record class into field specifications for the native module.

A record class is a dataclass (or any class with annotations). Each annotation is one of
``float`` (64-bit float), ``int`` (32-bit signed integer), ``bool``, ``"str[N]"`` (up to
N characters), a NumPy dtype name such as ``"uint16"`` (a scalar of that type), or
``"dtype[d0,d1,...]"`` (an array). Annotations may be strings (as with
``from __future__ import annotations``); a NumPy scalar type such as ``numpy.float32``
works as well.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

# One field: (name, spec, python_scalar, has_default, default, default_factory).
FieldSpec = tuple[str, str, bool, bool, Any, Callable[[], Any] | None]

_PYTHON_SCALARS = {"float": "float64", "int": "int32", "bool": "bool"}
_PYTHON_TYPES = {float: "float64", int: "int32", bool: "bool"}
_DTYPE_NAMES = frozenset(
    [
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float32",
        "float64",
    ]
)


def _spec(
    owner: str, name: str, annotation: object, namespace: dict[str, Any] | None
) -> tuple[str, bool]:
    if isinstance(annotation, type) and annotation in _PYTHON_TYPES:
        return _PYTHON_TYPES[annotation], True
    if isinstance(annotation, str):
        text = annotation.strip()
        # `from __future__ import annotations` keeps a quoted annotation's quotes.
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1].strip()
        if text in _PYTHON_SCALARS:
            return _PYTHON_SCALARS[text], True
        if "[" not in text and text not in _DTYPE_NAMES and namespace is not None:
            # A postponed annotation naming a type, such as "np.float32".
            try:
                resolved = eval(text, dict(namespace))
            except Exception:
                return text, False
            if isinstance(resolved, type):
                return _spec(owner, name, resolved, None)
        return text, False
    if isinstance(annotation, type) and issubclass(annotation, np.generic):
        return np.dtype(annotation).name, False
    raise TypeError(
        f"{owner}.{name}: bad annotation {annotation!r}; use float, int, bool, "
        '"str[N]", a dtype name such as "uint8", or "dtype[d0,d1,...]"'
    )


def describe(record_type: object) -> tuple[str, list[FieldSpec]]:
    """The class name and one ``FieldSpec`` per field, in declaration order."""
    if not isinstance(record_type, type):
        raise TypeError(
            f"SharedMemory needs a record class (a dataclass), got {type(record_type).__name__}"
        )
    owner = record_type.__qualname__
    module = sys.modules.get(record_type.__module__)
    namespace = vars(module) if module is not None else None
    out: list[FieldSpec] = []
    if dataclasses.is_dataclass(record_type):
        for f in dataclasses.fields(record_type):
            spec, py_scalar = _spec(owner, f.name, f.type, namespace)
            has_default = f.default is not dataclasses.MISSING
            factory = None if f.default_factory is dataclasses.MISSING else f.default_factory
            default = f.default if has_default else None
            out.append((f.name, spec, py_scalar, has_default, default, factory))
    else:
        annotations: dict[str, object] = {}
        for klass in reversed(record_type.__mro__):
            annotations.update(getattr(klass, "__annotations__", {}) or {})
        for name, annotation in annotations.items():
            spec, py_scalar = _spec(owner, name, annotation, namespace)
            has_default = hasattr(record_type, name)
            default = getattr(record_type, name) if has_default else None
            out.append((name, spec, py_scalar, has_default, default, None))
    if not out:
        raise TypeError(f"{owner} declares no fields")
    return owner, out


# ---------------------------------------------------------------------------------------
# Record classes generated from a segment's layout (SharedMemory.open)

# The annotation a generated class gives each type: the Python type for the three types
# Python annotations map to, else the type's own spelling ("uint16", "str[32]",
# "uint8[480,640,3]").
_GENERATED_ANNOTATIONS: dict[str, Any] = {"float64": float, "int32": int, "bool": bool}
_generated: dict[tuple[str, tuple[tuple[str, str], ...]], type] = {}


def _class_name(segment: str) -> str:
    """A class name from a segment name: ``sensors`` -> ``sensors``, ``cam-0`` -> ``cam_0``."""
    name = re.sub(r"\W", "_", segment)
    if not name or name[0].isdigit():
        name = "_" + name
    return name


def _default(spec: str) -> Any:
    """What a field of a generated class reads as while unwritten: the type's zero."""
    if spec.startswith("str["):
        return dataclasses.field(default="")
    if "[" in spec:
        dtype, dims = spec[:-1].split("[", 1)
        shape = tuple(int(d) for d in dims.split(","))
        return dataclasses.field(default_factory=lambda: np.zeros(shape, dtype))
    python_type = _GENERATED_ANNOTATIONS.get(spec)
    zero = python_type() if python_type is not None else np.dtype(spec).type(0)
    return dataclasses.field(default=zero)


def dataclass_for(segment: str, fields: list[tuple[str, str]]) -> type:
    """The record class of segment `segment`, whose layout is `fields` (``(name, type)``
    pairs): a dataclass whose annotations are the types, with the type's zero as the
    default. Made once per segment name and layout."""
    key = (segment, tuple((n, s) for n, s in fields))
    cls = _generated.get(key)
    if cls is not None:
        return cls
    for name, _ in fields:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(
                f"segment {segment!r} has a field named {name!r}, which is not a Python "
                "identifier, so no record class can be generated for it; open it with its "
                "record class instead"
            )
    cls = dataclasses.make_dataclass(
        _class_name(segment),
        [(name, _GENERATED_ANNOTATIONS.get(spec, spec), _default(spec)) for name, spec in fields],
        namespace={"__reduce__": _reduce_generated},
    )
    cls.__module__ = __name__
    cls.__doc__ = f"Records of segment {segment!r} (generated from its layout)."
    _generated[key] = cls
    return cls


def _reduce_generated(self: Any) -> tuple[Any, ...]:
    # A generated class cannot be imported by name in another process: its instances
    # pickle as the segment name, the layout and the values, and unpickle as an instance
    # of the same generated class there.
    segment, fields = next(k for k, v in _generated.items() if v is type(self))
    values = tuple(getattr(self, name) for name, _ in fields)
    return (rebuild, (segment, list(fields), values))


def rebuild(segment: str, fields: list[tuple[str, str]], values: tuple[Any, ...]) -> Any:
    """Unpickles an instance of a generated record class."""
    return dataclass_for(segment, fields)(*values)
