"""`stream_rules.lag`: the records waiting on a worker's partitions, from what its consumer
knows (high watermarks, positions) and what it judged. The consumer here is a stand-in with
the four answers the count reads; the real one is in tests/stream_rules/test_worker.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from faust.types import TP

from stream_rules.lag import JudgedOffsets

READINGS = TP("vitals.readings", 0)
READINGS_1 = TP("vitals.readings", 1)
STATUS = TP("vitals.status", 0)
CHANGELOG = TP("vitals-rules-patient-state-changelog", 0)


@dataclass
class Message:
    tp: TP
    offset: int
    timestamp: float = 0.0  # Kafka's, in seconds, as Faust gives it


class Consumer:
    def __init__(self, highs: dict[TP, int | None], positions: dict[TP, int]) -> None:
        self.highs = highs
        self.positions = positions
        self.moved = False

    def assignment(self) -> set[TP]:
        return set(self.highs)

    def highwater(self, tp: TP) -> int | None:
        assert not self.moved, "Partition is not assigned"  # as aiokafka says it
        return self.highs[tp]

    async def position(self, tp: TP) -> int:
        return self.positions[tp]


def lag(offsets: JudgedOffsets, consumer: Consumer) -> int | None:
    return asyncio.run(offsets.lag(consumer))  # type: ignore[arg-type]


def offsets() -> JudgedOffsets:
    return JudgedOffsets(("vitals.readings", "vitals.status"))


def test_records_beyond_the_last_judged_and_before_any_the_position() -> None:
    judged = offsets()
    consumer = Consumer({READINGS: 100, READINGS_1: 50, STATUS: 7, CHANGELOG: 900},
                        {READINGS: 0, READINGS_1: 40, STATUS: 7, CHANGELOG: 0})
    judged.judged([Message(READINGS, o) for o in range(60)])
    # readings 0: 100 - 60; readings 1: nothing judged yet, 50 - 40; status: none waiting;
    # the state changelog is not input
    assert lag(judged, consumer) == 40 + 10


def test_the_oldest_waiting_is_the_last_judged_time_where_records_wait() -> None:
    judged = offsets()
    judged.judged([Message(READINGS, o, 1000.0 + o) for o in range(60)])
    judged.judged([Message(READINGS_1, 9, 900.0), Message(STATUS, 6, 500.0)])
    consumer = Consumer({READINGS: 100, READINGS_1: 10, STATUS: 7}, {})
    assert lag(judged, consumer) == 40
    assert judged.oldest_waiting == 1059.0  # readings 1 and status: nothing waits there
    assert lag(judged, Consumer({READINGS: 60, READINGS_1: 10, STATUS: 7}, {})) == 0
    assert judged.oldest_waiting is None


def test_a_partition_whose_watermark_is_unknown_counts_nothing() -> None:
    judged = offsets()
    assert lag(judged, Consumer({READINGS: None}, {READINGS: 0})) == 0


def test_revoked_partitions_resume_from_the_position_again() -> None:
    judged = offsets()
    judged.judged([Message(READINGS, 99)])
    consumer = Consumer({READINGS: 100}, {READINGS: 80})
    assert lag(judged, consumer) == 0
    judged.forget()  # delivered again from the last commit
    assert lag(judged, consumer) == 20


def test_partitions_moving_meanwhile_make_the_count_unknown_not_an_error() -> None:
    consumer = Consumer({READINGS: 100}, {READINGS: 0})
    consumer.moved = True
    assert lag(offsets(), consumer) is None
