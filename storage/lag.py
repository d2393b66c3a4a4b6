"""What `vitals store` has waiting, for `vitals_store_pending` and `/healthz`
(`vitals.progress`): the records of the batch in hand, not yet written, plus the records Kafka
holds beyond the consumer's position.

Both come from what the consumer already knows (positions, and the high watermarks that every
fetch response carries), so reporting them costs no request to Kafka. A partition whose
position or watermark is not known yet counts nothing: the count errs low, never asking for a
restart over work that may not exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaException, Message


def consumer_lag(consumer: Consumer) -> int:
    """Records on the assigned partitions beyond the consumer's position (as of its last
    fetch)."""
    try:
        parts = consumer.assignment()
        if not parts:
            return 0
        total = 0
        for tp in consumer.position(parts):
            if tp.offset < 0:  # nothing consumed there yet: unknown
                continue
            _low, high = consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                total += max(0, high - tp.offset)
        return total
    except (KafkaException, RuntimeError):  # closed, or partitions moving: unknown now
        return 0


def oldest_timestamp(messages: Sequence[Message]) -> float | None:
    """The oldest Kafka timestamp of a batch (Unix seconds): when the oldest record was
    produced, the event time the store knows without decoding."""
    stamps = [ts for kind, ts in (m.timestamp() for m in messages)
              if kind != TIMESTAMP_NOT_AVAILABLE]
    return min(stamps) / 1000 if stamps else None
