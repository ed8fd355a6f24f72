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
import sys
from typing import Any, Callable, Optional

import numpy as np

# One field: (name, spec, python_scalar, has_default, default, default_factory).
FieldSpec = tuple[str, str, bool, bool, Any, Optional[Callable[[], Any]]]

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
    owner: str, name: str, annotation: object, namespace: Optional[dict[str, Any]]
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
