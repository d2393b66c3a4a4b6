"""Kafka plumbing shared by the services: declaring the topics, waiting for the broker."""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from vitals.topics import Topic

log = logging.getLogger(__name__)


def declare_topics(bootstrap: str, topics: tuple[Topic, ...], partitions: int,
                   wait_s: float = 300.0) -> dict[str, int]:
    """Create the topics that do not exist yet, waiting (and saying so, once) while the broker
    is unreachable; returns each topic's partition count. Existing topics are left alone, and a
    partition count that differs from the one declared is logged, since keyed consumers such as
    Faust tables depend on it."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + wait_s
    waiting_said = False
    while True:
        try:
            existing = admin.list_topics(timeout=5).topics
            break
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(f"Kafka at {bootstrap} is unreachable: {exc}") from None
            if not waiting_said:
                log.warning("waiting for Kafka at %s ...", bootstrap)
                waiting_said = True
            time.sleep(1)
    wanted = {t.name: (1 if t.single_partition else partitions) for t in topics}
    config = {t.name: {"cleanup.policy": "compact"} if t.compacted else {} for t in topics}
    missing = [NewTopic(name, n, 1, config=config[name]) for name, n in wanted.items()
               if name not in existing]
    if missing:
        for name, fut in admin.create_topics(missing, operation_timeout=10).items():
            try:
                fut.result()
                log.info("created topic %s with %d partitions", name, wanted[name])
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    found = {name: len(md.partitions) for name, md in admin.list_topics(timeout=10).topics.items()
             if name in wanted}
    for name, n in found.items():
        if n != wanted[name]:
            log.warning("topic %s has %d partitions, not the %d declared", name, n, wanted[name])
    return found
