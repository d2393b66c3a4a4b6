"""The rules worker's Faust app: its name, its topics' names and its broker settings, and the
one change to Faust's consumer it needs (`stream_rules.read_offsets`). The worker itself, what
it does with the app, is `stream_rules.worker`."""

from __future__ import annotations

import faust
from faust.types import ConsumerT

from stream_rules.read_offsets import InputsUnfiltered
from vitals import topics
from vitals.kafka import KafkaConnection
from vitals.settings import Settings

__all__ = ["APP_ID", "CHANGELOG", "INPUTS", "TABLE", "RulesApp", "broker_options", "new_app"]

APP_ID = "vitals-rules"
TABLE = "patient-state"
CHANGELOG = f"{APP_ID}-{TABLE}-changelog"
INPUTS = (topics.READINGS.name, topics.STATUS.name)


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
    """Faust's app, whose consumer delivers every input record (`stream_rules.read_offsets`).
    The filter goes in as the consumer is made: Faust's fetcher binds it when it first starts,
    and a worker with states to restore starts the fetcher to read the changelog, before its
    first rebalance completes (installed there, the filter stayed Faust's own on a restart)."""

    def _new_consumer(self) -> ConsumerT:
        consumer = super()._new_consumer()
        consumer._read_offset = InputsUnfiltered(  # type: ignore[attr-defined]
            INPUTS, consumer._read_offset)  # type: ignore[attr-defined]
        return consumer


def new_app(settings: Settings) -> faust.App:
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
