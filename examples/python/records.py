"""Record classes shared by the example programs (writer and reader must agree)."""

from dataclasses import dataclass


@dataclass
class SensorData:
    """The seed README's record; the Rust examples use the same layout."""

    temperature: float = 0.0
    pressure: float = 0.0
    timestamp: float = 0.0
    status_msg: "str[32]" = ""


@dataclass
class Frame:
    """One RGB camera frame and its number."""

    number: "uint64" = 0
    image: "uint8[480,640,3]" = None  # type: ignore[assignment]


@dataclass
class Sample:
    """One numbered measurement, for the FIFO examples."""

    seq: int = 0
    value: float = 0.0
    source: "str[16]" = ""
