"""Where the rules worker's states stand in its input: per input partition, the next offset to
judge, written to the state changelog with the states it describes (issue #17).

Kafka's committed offsets cannot be trusted to describe the states: Faust acknowledges by
itself the records it skips around a rebalance (fetched under the old generation), so its
commit can pass records that no state has seen, and a worker killed then would never judge
them. So each checkpoint writes, after the states, one position record per changelog
partition: the next offset of `vitals.readings` and `vitals.status` in the same partition
number (a patient's state and its records hash to the same partition). When partitions are
assigned, the worker commits these positions before Faust seeks to the committed offsets, drops
any record before them, and seeks back should the consumer resume past them. The same record
is the end marker a restore needs on tansu (`stream_rules.worker`).

Pure bookkeeping, no Faust: tested on its own.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import msgspec

__all__ = ["Positions", "Verdict", "decode_position", "encode_position", "position_key"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, int]).decode
MAX_OFFSET = 2**63 - 1  # Kafka offsets are signed 64-bit
# A seek back still waited for after this long is asked again: something (Faust's own seek to
# the committed offsets, say) undid it, and waiting longer would stall the partition.
SEEK_AGAIN_S = 10.0
PREFIX = "~position-"  # "~" is in no patient id ([A-Za-z0-9_-]): never a patient's state


def position_key(partition: int) -> str:
    """The changelog key of a partition's position record."""
    return f"{PREFIX}{partition}"


def is_position_key(key: str) -> bool:
    return key.startswith("~")  # also the end markers of earlier versions ("~end")


def encode_position(offsets: Mapping[str, int]) -> bytes:
    """topic -> next offset to judge, as the changelog holds it."""
    return _encode(dict(offsets))


def decode_position(raw: bytes | None) -> dict[str, int] | None:
    """A position record; None if there is none or it cannot be read (then the worker
    starts the partition from the beginning, which is exact but slow)."""
    if not raw:
        return None
    try:
        offsets = _decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if not offsets or not all(0 <= offset <= MAX_OFFSET for offset in offsets.values()):
        return None
    return offsets


class Verdict(enum.Enum):
    """What to do with one input record."""

    JUDGE = "judge"
    SEEN = "seen"  # before the position: the states have seen it
    NOT_HELD = "not held"  # its partition is not assigned here (now)
    SEEK = "seek"  # the consumer resumed past the position: read again from the position
    WAIT = "wait"  # past the position while the consumer goes back to it


class Positions:
    """The next offset to judge per (topic, partition) since partitions were assigned, and
    which partitions moved since their position was last written."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, int], int] = {}
        self._unconfirmed: set[tuple[str, int]] = set()  # no record judged since `start`
        self._seeking: dict[tuple[str, int], float] = {}  # -> when the seek was asked
        self._moved: set[int] = set()

    def start(self, topic: str, partition: int, offset: int) -> None:
        """A partition assigned: judging resumes at `offset`, and the first record judged
        must be the one at `offset` (the commit that makes Faust seek there can fail, or be
        overtaken by Faust's own)."""
        key = (topic, partition)
        self._next[key] = offset
        self._unconfirmed.add(key)
        self._seeking.pop(key, None)

    def check(self, topic: str, partition: int, offset: int, now: float = 0.0) -> Verdict:
        """What to do with the record at `offset`; a record to judge moves the position past
        it. After `start`, a record past the position asks for a seek back to it and waits
        for it, asking again after `SEEK_AGAIN_S` (`now`: monotonic seconds); once judging
        has resumed, a gap in the offsets is allowed (Kafka's control records)."""
        key = (topic, partition)
        nxt = self._next.get(key)
        if nxt is None:
            return Verdict.NOT_HELD
        if offset < nxt:
            return Verdict.SEEN
        if offset > nxt and key in self._unconfirmed:
            asked = self._seeking.get(key)
            if asked is not None and now - asked < SEEK_AGAIN_S:
                return Verdict.WAIT
            self._seeking[key] = now
            return Verdict.SEEK
        self._unconfirmed.discard(key)
        self._seeking.pop(key, None)
        self._next[key] = offset + 1
        self._moved.add(partition)
        return Verdict.JUDGE

    def next_offset(self, topic: str, partition: int) -> int | None:
        return self._next.get((topic, partition))

    def held(self, partition: int) -> bool:
        """Whether any input partition with this number is assigned here."""
        return any(p == partition for _, p in self._next)

    def record(self, partition: int) -> dict[str, int]:
        """The position record of one partition: topic -> next offset."""
        return {topic: offset for (topic, p), offset in self._next.items() if p == partition}

    def take_moved(self, written: Iterable[int | None]) -> list[int]:
        """The partitions whose position must be written now: those judged since the last
        write, and those whose states were just written (their end marker). Resets."""
        moved = sorted({*self._moved, *(p for p in written if p is not None and self.held(p))})
        self._moved.clear()
        return moved

    def forget(self) -> None:
        """Partitions revoked: nothing is judged until they are assigned again."""
        self._next.clear()
        self._unconfirmed.clear()
        self._seeking.clear()
        self._moved.clear()
