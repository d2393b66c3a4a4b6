"""Alerting's consumer when Kafka refuses a commit (real tansu, real consumer): the chaos run's
60 s Kafka cut let the group membership lapse, the next commit failed with UNKNOWN_MEMBER_ID,
and alerting exited, paging the operators. A refused commit is now a warning: the batch is
recorded, read again later (a no-op by alert_id), and paging goes on.

`RefusingCommits` stands in for the broker's refusal only: it hands every call to the real
consumer and raises, for the first commits, the error the broker answered in the chaos run
(a lapsed membership cannot be staged on demand within a test)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from alerting.consumer import AlertConsumer
from harness import servers
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import Clock, build, event, make_settings
from vitals import topics
from vitals.kafka import declare_topics, producer_config


class RefusingCommits:
    """The real consumer, whose first `refusals` commits the broker refuses."""

    def __init__(self, consumer: Consumer, refusals: int) -> None:
        self.consumer = consumer
        self.refusals = refusals

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        if self.refusals > 0:
            self.refusals -= 1
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_MEMBER_ID,
                                            "Commit failed: Broker: Unknown member"))
        return self.consumer.commit(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.consumer, name)


def produce(bootstrap: str, *events: object) -> None:
    producer = Producer(producer_config(bootstrap))
    for e in events:
        producer.produce(topics.ALERTS.name, msgspec.json.encode(e), b"P001")
    assert producer.flush(30) == 0


def test_a_refused_commit_is_a_warning_and_paging_goes_on(
        tmp_path: Path, receiver: PagerDutyStandIn, kafka: servers.Server,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "alerting.consumer")
    bootstrap = f"127.0.0.1:{kafka.port}"
    # as `vitals alerting` does before it consumes: a topic that a producer auto-creates after
    # the consumer's first metadata request stays unseen until its next refresh (5 min)
    declare_topics(bootstrap, (topics.ALERTS, topics.TRENDS, topics.REPORTS, topics.CANARY), 2,
                   wait_s=30)
    core, dispatcher = build(make_settings(tmp_path, receiver), Clock())
    consumer = AlertConsumer(bootstrap, core)
    consumer.consumer = RefusingCommits(consumer.consumer, refusals=1)  # type: ignore[assignment]
    produce(bootstrap, event("P001"))

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        while not core.open_alerts():
            assert not task.done(), task
            await asyncio.sleep(0.1)
        produce(bootstrap, event("P002"))  # after the refused commit: still read and recorded
        while len(core.open_alerts()) < 2:
            assert not task.done(), task
            await asyncio.sleep(0.1)
        stop.set()
        await task
        await dispatcher.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 120))
    finally:
        consumer.consumer.close()
        core.close()
    said = [r.getMessage() for r in caplog.records if r.name == "alerting.consumer"]
    assert any("could not commit Kafka offsets" in line and "Unknown member" in line
               for line in said), said
