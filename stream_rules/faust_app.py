"""The rules worker's Faust app: its name, its topics' names and its broker settings, and the
two changes to Faust's consumer it needs: input records go to the app's inbox
(`stream_rules.fetcher`), and a fetch waits at most `FETCH_MAX_WAIT_MS` for records. The worker
itself, what it does with the app, is `stream_rules.worker`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import faust
from faust.types import ConsumerT, Message

from stream_rules.fetcher import drain_into
from stream_rules.inbox import Inbox
from vitals import topics
from vitals.kafka import KafkaConnection
from vitals.settings import Settings

__all__ = ["APP_ID", "CHANGELOG", "FETCH_MAX_WAIT_MS", "INPUTS", "TABLE", "RulesApp",
           "broker_options", "new_app"]

APP_ID = "vitals-rules"
TABLE = "patient-state"
CHANGELOG = f"{APP_ID}-{TABLE}-changelog"
INPUTS = (topics.READINGS.name, topics.STATUS.name)
# Input records fetched and not yet judged, at most (~1 KB each with Faust's message): the
# fetcher waits beyond it. Ten of the worker's batches.
INBOX_LIMIT = 20_000
# How long the broker may hold a fetch that finds no new record. Faust fixes it at 1,500 ms,
# and tansu does not answer a waiting fetch when records arrive: a reading waited ~400 ms
# (p50; max 740) before the worker saw it. At 100 ms: p50 22 ms, max 52 (a probe every 137 ms
# on one partition). Under load a fetch finds records at once and this never applies; idle, it
# costs ten empty fetches a second.
FETCH_MAX_WAIT_MS = 100


def broker_options(kafka: KafkaConnection) -> dict[str, object]:
    """Faust's broker URLs and credentials for the settings' Kafka (TLS, SASL)."""
    options: dict[str, object] = {
        "broker": [f"kafka://{host}" for host in kafka.bootstrap.split(",")]}
    context = kafka.ssl_context()
    if kafka.username is not None:
        options["broker_credentials"] = faust.SASLCredentials(
            username=kafka.username, password=kafka.password, ssl_context=context,
            mechanism=kafka.mechanism)
    elif context is not None:
        options["broker_credentials"] = faust.SSLCredentials(context)
    return options


class RulesApp(faust.App):
    """Faust's app, whose consumer puts every input record it fetches into `inbox`
    (`stream_rules.fetcher`). That goes in as the consumer is made: a worker with states to
    restore starts Faust's fetcher to read the changelog before its first rebalance completes
    (a change made there was too late on a restart: issue #17)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inbox: Inbox[Message] = Inbox(INPUTS, INBOX_LIMIT)

    def _new_consumer(self) -> ConsumerT:
        consumer = super()._new_consumer()
        consumer._drain_messages = partial(  # type: ignore[attr-defined]
            drain_into, consumer, self.inbox)
        thread: Any = consumer._thread  # type: ignore[attr-defined]
        thread._create_worker_consumer = partial(_short_fetch_wait,
                                                 thread._create_worker_consumer)
        return consumer


def _short_fetch_wait(create: Callable[[Any], Any], transport: Any) -> Any:
    """Faust's aiokafka consumer with `FETCH_MAX_WAIT_MS` (read by its fetcher at start)."""
    consumer = create(transport)
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
    return consumer


def new_app(settings: Settings) -> RulesApp:
    """The Faust app and its broker settings."""
    return RulesApp(
        APP_ID,
        **broker_options(settings.kafka),
        store="memory://",  # the changelog topic is the durable copy
        datadir=str(settings.state_dir / "rules"),  # Faust's own files, not in the cwd
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=1,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10,  # joins take ~max(5 s, timeout / 2) on tansu
        broker_heartbeat_interval=3,
        # Inputs are acknowledged only at checkpoints; a rebalance or a stop does not wait for
        # them (they are delivered again, and are duplicates to the states written).
        stream_wait_empty=False,
        web_enabled=False,
        table_standby_replicas=0,
        # records are msgspec JSON / msgpack bytes made by the project's own code
        key_serializer="raw",
        value_serializer="raw",
    )
