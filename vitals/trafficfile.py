"""The traffic file: what devices published, in publish order, one JSON object per line.

    {"at": 1795240000000, "topic": "vitals/v1/P001/ox-1", "payload": "{\"ts\":...}"}

`at` is the epoch ms at which the device published (for a buffered upload, later than the
readings' `ts`; with a skewed device clock, unrelated to it). `payload` is the exact text the
device sent; a payload that is not UTF-8 is stored as `payload_b64` instead. A name ending in
`.gz` is gzip-compressed. `vitals simulate --out` writes it, `vitals replay` reads it.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import msgspec


class Message(msgspec.Struct, frozen=True):
    """One MQTT message as published: wall time (epoch ms), topic, payload bytes."""
    at: int
    topic: str
    payload: bytes


class _Line(msgspec.Struct, omit_defaults=True):
    at: int
    topic: str
    payload: str | None = None
    payload_b64: str | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Line).decode


def _open(path: Path, mode: str) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "b", compresslevel=3)  # type: ignore[return-value]
    return path.open(mode + "b")


def encode_line(m: Message) -> bytes:
    """One JSON line; a payload that is not UTF-8 travels as base64."""
    try:
        line = _Line(m.at, m.topic, payload=m.payload.decode("utf-8"))
    except UnicodeDecodeError:
        line = _Line(m.at, m.topic, payload_b64=base64.b64encode(m.payload).decode("ascii"))
    return _encode(line) + b"\n"


def decode_line(raw: bytes) -> Message:
    """The message of one line written by `encode_line`."""
    line = _decode(raw)
    if line.payload is not None:
        return Message(line.at, line.topic, line.payload.encode("utf-8"))
    return Message(line.at, line.topic, base64.b64decode(line.payload_b64 or ""))


def write(path: Path, messages: Iterable[Message]) -> int:
    """Write `messages` (already in publish order); returns how many."""
    n = 0
    with _open(path, "w") as f:
        for m in messages:
            f.write(encode_line(m))
            n += 1
    return n


def read(path: Path) -> Iterator[Message]:
    """The messages of a traffic file (.gz too), in their order."""
    with _open(path, "r") as f:
        for raw in f:
            if raw.strip():
                yield decode_line(raw)
