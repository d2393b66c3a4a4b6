"""Chunked generation: every device of every patient, one slice of simulated time at a time
(10 minutes, less for big cohorts), merged into publish order. Memory is bounded by one chunk,
never by the length of the timeline, and the output is the same whatever the chunk size:
messages are ordered by (publish time, device, per-device order), a total order that does
not depend on where the timeline was cut; the few messages published after their chunk's end
(a delayed duplicate) are carried into the next one.

Two outputs: iterating a `Stream` yields `trafficfile.Message` (to publish); `write()` writes
the traffic file straight from file-line templates (what `trafficfile.write` would write,
byte for byte, only faster).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulators.devices import Columns, DeviceSim
from simulators.plan import MINUTE, Simulation
from vitals.trafficfile import Message

DEFAULT_CHUNK = 10 * MINUTE
LIGHT_CHUNK_READINGS = 20_000  # a light cohort's chunk is longer, up to about this many
MAX_CHUNK = 24 * 60 * MINUTE
CHUNK_READINGS = 300_000  # an automatic chunk holds about this many readings at most


def auto_chunk(sim: Simulation) -> int:
    """10 simulated minutes; longer for a light cohort (up to ~20k readings, at most a day),
    since each chunk costs every device a few dozen numpy calls whatever it holds (the demo's
    20 patients with an oximeter summary a minute hold ~240 readings in 10 minutes: 43 s to
    generate two weeks, 2 s in 14-hour chunks); shorter for a big cohort, so that a chunk
    stays ~300k readings (~200 MB). The output is the same whatever the chunk."""
    per_ms = sum(1 / d.interval for p in sim.patients for d in p.devices) or 1e-9
    chunk = max(DEFAULT_CHUNK, min(MAX_CHUNK, LIGHT_CHUNK_READINGS / per_ms))
    return int(max(MINUTE, min(chunk, CHUNK_READINGS / per_ms)) // 1000 * 1000)


@dataclass(frozen=True)
class Injected:
    """A message-level fault found while generating (malformed, duplicate), for the truth."""

    patient: str
    device: str
    kind: str
    start: int
    end: int
    seq: int
    detail: str


@dataclass
class _Chunk:
    at: list[np.ndarray] = field(default_factory=list)
    dev: list[np.ndarray] = field(default_factory=list)
    ord: list[np.ndarray] = field(default_factory=list)
    n: list[np.ndarray] = field(default_factory=list)  # readings per message
    items: list[str | None] = field(default_factory=list)  # None: a row of `columns`
    src: list[np.ndarray] = field(default_factory=list)  # the row of `columns`, or -1
    columns: list[Columns] = field(default_factory=list)
    rows: int = 0

    def add(self, dev: int, at: np.ndarray, ord_: np.ndarray, items: list[str],
            per_message: int) -> None:
        if len(items):
            self._add(dev, at, ord_, per_message, np.full(len(items), -1, np.int64))
            self.items.extend(items)

    def add_columns(self, dev: int, at: np.ndarray, ord_: np.ndarray, columns: Columns
                    ) -> None:
        n = len(columns.ts)
        if n:
            self._add(dev, at, ord_, 1, np.arange(self.rows, self.rows + n, dtype=np.int64))
            self.items.extend([None] * n)
            self.columns.append(columns)
            self.rows += n

    def _add(self, dev: int, at: np.ndarray, ord_: np.ndarray, per_message: int,
             src: np.ndarray) -> None:
        n = len(src)
        self.at.append(np.asarray(at, np.int64))
        self.dev.append(np.full(n, dev, np.int32))
        self.ord.append(np.asarray(ord_, np.int64))
        self.n.append(np.full(n, per_message, np.int32))
        self.src.append(src)


@dataclass
class Batch:
    """Messages of one chunk in publish order: `items` are file lines or payloads. With
    `Stream(columns=True)` an oximeter's live readings are rows of `columns` instead: their
    item is None and `src` holds the row (-1 for an item)."""

    at: np.ndarray
    dev: np.ndarray
    items: list[str | None]
    readings: int
    until: int  # simulated time covered so far
    src: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    columns: Columns | None = None


class Stream:
    def __init__(self, sim: Simulation, line: bool, chunk: int | None = None,
                 columns: bool = False) -> None:
        """`columns`: oximeters' live readings come as `Batch.columns` rows, not payloads
        (the evaluation's fast path; payload mode only)."""
        if chunk is not None and chunk <= 0:
            raise ValueError("chunk must be positive")
        if columns and line:
            raise ValueError("columns are for payload mode")
        self.sim, self.line = sim, line
        self.chunk_ms = chunk or auto_chunk(sim)
        self.injected: list[Injected] = []
        self.devices: list[DeviceSim] = []
        self.topics: list[str] = []
        n = sum(len(p.devices) for p in sim.patients)
        for p in sim.patients:
            for di in range(len(p.devices)):
                i = len(self.devices)
                self.devices.append(DeviceSim(sim, p, di, i, n + i, line, columns))
        self.topics = [d.topic for d in self.devices] + [d.status_topic for d in self.devices]
        self.messages = 0
        self.readings = 0

    def _recorder(self, ds: DeviceSim) -> Callable[[str, int, int, int, str], None]:
        pid, did = ds.p.id, ds.d.id
        return lambda kind, start, end, seq, detail: self.injected.append(
            Injected(pid, did, kind, start, end, seq, detail))

    def batches(self) -> Iterator[Batch]:
        sim = self.sim
        recorders = [self._recorder(ds) for ds in self.devices]
        carry = _Chunk()
        c0 = sim.start
        while c0 < sim.end:
            c1 = min(c0 + self.chunk_ms, sim.end)
            cur = carry
            for ds, rec in zip(self.devices, recorders, strict=True):
                ds.chunk(c0, c1, cur.add, rec, cur.add_columns)
            out, carry = _split(cur, None if c1 >= sim.end else c1)
            del cur
            out.until = c1
            self.messages += len(out.items)
            self.readings += out.readings
            yield out
            del out  # one chunk in memory at a time: the consumer dropped it too
            c0 = c1

    def __iter__(self) -> Iterator[Message]:
        """The traffic as messages in publish order (payload mode; rows of columns
        rendered)."""
        topics, devices = self.topics, self.devices
        for b in self.batches():
            for at, dev, item, row in zip(b.at.tolist(), b.dev.tolist(), b.items,
                                          b.src.tolist(), strict=True):
                if item is None:
                    assert b.columns is not None
                    item = devices[dev].payload(b.columns, row)
                yield Message(at, topics[dev], item.encode())


def _split(c: _Chunk, before: int | None) -> tuple[Batch, _Chunk]:
    """(messages published before `before`, in order; the rest, carried to the next chunk)."""
    if not c.items:
        return Batch(np.zeros(0, np.int64), np.zeros(0, np.int32), [], 0, 0), _Chunk()
    at, dev, ord_, n, src = (np.concatenate(x) for x in (c.at, c.dev, c.ord, c.n, c.src))
    order = np.lexsort((ord_, dev, at))
    cut = len(order) if before is None else int(np.searchsorted(at[order], before))
    now, later = order[:cut], order[cut:]
    items = c.items
    columns = Columns.concat(c.columns) if c.columns else None
    out = Batch(at[now], dev[now], _placed(items, now, src), int(n[now].sum()), 0, src[now],
                columns)
    rest = _Chunk()
    if len(later):
        rest = _Chunk([at[later]], [dev[later]], [ord_[later]], [n[later]],
                      _placed(items, later, src))
        carried = src[later]
        rows = carried >= 0
        if columns is not None and rows.any():  # rows published after the chunk's end
            rest.columns = [columns.take(carried[rows])]
            carried = carried.copy()
            carried[rows] = np.arange(int(rows.sum()))
            rest.rows = int(rows.sum())
        rest.src = [carried]
    return out, rest


def _placed(items: list[str | None], order: np.ndarray, src: np.ndarray) -> list[str | None]:
    """`[items[i] for i in order]`, written out only for messages: a row of columns (`src`
    >= 0) has None, and rows are most of a chunk (a million a patient in two weeks)."""
    where = np.flatnonzero(src[order] < 0)
    if len(where) == len(order):  # no rows (payload or line mode)
        return [items[i] for i in order.tolist()]
    out: list[str | None] = [None] * len(order)
    for place, i in zip(where.tolist(), order[where].tolist(), strict=True):
        out[place] = items[i]
    return out


@dataclass(frozen=True)
class Written:
    messages: int
    readings: int


def open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "wt", compresslevel=3, encoding="utf-8", newline="")  # type: ignore[return-value]
    return path.open("w", encoding="utf-8", newline="")


def write(stream: Stream, path: Path, progress: Callable[[Batch], None] | None = None
          ) -> Written:
    """Write the traffic file (`vitals.trafficfile` format) chunk by chunk."""
    if not stream.line:
        raise ValueError("write() needs a Stream in line mode")
    with open_text(path) as f:
        for b in stream.batches():
            f.writelines(b.items)
            if progress:
                progress(b)
            del b  # before the next chunk is generated
    return Written(stream.messages, stream.readings)
