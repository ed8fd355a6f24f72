"""Record classes shared by the tests and their child processes (importable by spawn)."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np


# The seed README's record.
@dataclass
class SensorData:
    temperature: float = 0.0
    pressure: float = 0.0
    timestamp: float = 0.0
    status_msg: "str[32]" = ""


@dataclass
class MathData:
    coefficients: "float64[5]" = None  # type: ignore[assignment]


@dataclass
class Tracked:
    position: "float64[3]" = None  # type: ignore[assignment]
    temperature: float = 0.0
    image: "uint8[4,6,3]" = None  # type: ignore[assignment]


@dataclass
class Counter:
    """Every field derives from `n`, so a mixed (torn) record is detectable."""

    n: "int64" = 0
    neg: "int64" = 0
    text: "str[24]" = ""
    block: "uint32[64,16]" = field(default_factory=lambda: np.zeros((64, 16), np.uint32))


def counter_values(n: int) -> "dict[str, Any]":
    """The consistent record for `n`."""
    return {
        "n": n,
        "neg": -n,
        "text": f"record {n}",
        "block": np.full((64, 16), n % 2**32, dtype=np.uint32),
    }


@dataclass
class Scene:
    """The record behind the seed's "Magic Conversions" block."""

    position: float = 0.0
    image: "uint8[480,640,3]" = None  # type: ignore[assignment]
