"""`vitals rules`: the Faust worker that runs the pure engine over `vitals.readings` and
`vitals.status`.

Faust partitions the work by patient and keeps each patient's engine state in a table
(changelog-backed, so a restarted or rebalanced worker resumes where the state was written).
It batches with `stream.take` and writes each patient's state once per batch. Faust's windowed
tables are not used: they expire windows by the wall clock, and event time is the engine's job.

Order per batch, so that a crash loses nothing and doubles nothing: run the engine
(`stream_rules.batch.judge_batch`, a plain function, tested without Faust), send the alert
events and trend points and wait for Kafka's acknowledgement of every one, and only then write
the states. A crash before the state is written replays the batch from the old state and sends
the same alerts again, under the same stable ids (consumers are idempotent by alert id); a
crash after finds those readings already in the state's sequence sets and sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust

from stream_rules import state as state_io
from stream_rules.batch import Judge, decode_records, judge_batch
from stream_rules.config import RulesFile
from stream_rules.engine import Output
from vitals import topics
from vitals.kafka import KafkaConnection, declare_topics
from vitals.patients import PatientRegistry
from vitals.ready import announce_ready
from vitals.records import encode
from vitals.settings import Settings

log = logging.getLogger(__name__)

APP_ID = "vitals-rules"
TABLE = "patient-state"
CHANGELOG = f"{APP_ID}-{TABLE}-changelog"
BATCH = 2000
BATCH_WITHIN_S = 0.2
SILENCE_CHECK_S = 60.0  # at most; a short no_data.after_min is checked more often
STATS_EVERY_S = 30.0


def silence_check_s(rules: RulesFile) -> float:
    """How often the live no-data check runs: a tenth of `no_data.after_min`, between 1 s
    and `SILENCE_CHECK_S`, so that a page is at most ~10 % late."""
    return max(1.0, min(SILENCE_CHECK_S, rules.rules.no_data.after_min * 60 / 10))

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


def new_app(settings: Settings) -> faust.App:
    """The Faust app and its broker settings."""
    return faust.App(
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
        web_enabled=False,
        table_standby_replicas=0,
        # records are msgspec JSON / msgpack bytes made by the project's own code
        key_serializer="raw",
        value_serializer="raw",
    )


class RulesWorker:
    """The worker's topics, its state table and what it does with them: judge a batch, check
    for live silence, report. `make_app` wires these to Faust's agent and timers."""

    def __init__(self, app: faust.App, partitions: int, judge: Judge) -> None:
        def topic(name: str, count: int = partitions) -> faust.TopicT:
            return app.topic(name, key_type=bytes, value_type=bytes, partitions=count)

        self.judge = judge
        # The agent's batches and the silence timer both load, change and write patients'
        # states across awaits: one at a time, or one would overwrite the other's update.
        self.state_lock = asyncio.Lock()
        # one stream of both, so that a patient's readings and statuses change its state in
        # one agent, never two at once (both are keyed by patient, so co-partitioned)
        self.inputs = app.topic(topics.READINGS.name, topics.STATUS.name, key_type=bytes,
                                value_type=bytes, partitions=partitions)
        self.alerts = topic(topics.ALERTS.name)
        self.trends = topic(topics.TRENDS.name)
        self.rejected = topic(topics.REJECTED.name, 1)
        # use_partitioner: a patient's state goes to the changelog partition its key hashes
        # to, the same partition as its readings (murmur2 in ingest's producer and in
        # aiokafka), even when a batch mixes partitions.
        self.table = app.Table(TABLE, default=None, partitions=partitions, key_type=str,
                               value_type=bytes, use_partitioner=True)

    async def send(self, patient_id: str, out: Output) -> list[asyncio.Future]:
        """Queue a patient's alerts and trends; the futures complete when Kafka has them."""
        key = patient_id.encode()
        for alert in out.alerts:
            log.info("%s %s %s", alert.status, alert.severity, alert.summary)
        return ([await self.alerts.send(key=key, value=encode(alert)) for alert in out.alerts]
                + [await self.trends.send(key=key, value=encode(trend))
                   for trend in out.trends])

    async def judge_batch(self, raw_batch: list[bytes]) -> None:
        """One batch: decode, judge, send (dead letters too), wait for Kafka, then write the
        states (the order in the module docstring)."""
        async with self.state_lock:
            await self._judge_batch(raw_batch)

    async def _judge_batch(self, raw_batch: list[bytes]) -> None:
        started = time.perf_counter()
        records, bad = decode_records(raw_batch, int(time.time() * 1000))
        batch = judge_batch(records, self.table.get, self.judge.engine)
        for patient_id in batch.skipped:
            log.warning("readings of %s, who is not enrolled here: skipped", patient_id)
        sent = [await self.rejected.send(value=encode(dead)) for dead in bad]
        if bad:
            self.judge.bad_records += len(bad)
            log.warning("%d records of %s are not valid readings: sent to %s", len(bad),
                        topics.READINGS.name, topics.REJECTED.name)
        for patient_id, out in batch.outputs:
            sent += await self.send(patient_id, out)
        self.judge.alerts += batch.alerts
        # One wait for the whole batch (not one round trip per patient); the states are
        # written only once Kafka has every alert, so a crash re-judges instead of losing.
        await asyncio.gather(*sent)
        for patient_id, raw_state in batch.states:
            self.table[patient_id] = raw_state
        self.judge.readings += len(raw_batch)
        self.judge.batch_ms.append((time.perf_counter() - started) * 1000)

    async def check_silence(self) -> None:
        """Live "no data": by the wall clock, for the patients this worker holds."""
        async with self.state_lock:
            await self._check_silence()

    async def _check_silence(self) -> None:
        now = int(time.time() * 1000)
        for patient_id, raw_state in list(self.table.items()):
            engine = self.judge.engine(patient_id)
            if engine is None or not raw_state:
                continue
            state = state_io.load(raw_state)
            out = engine.silence(state, now)
            if out.alerts:
                await asyncio.gather(*await self.send(patient_id, out))
                self.table[patient_id] = state_io.dump(state)


def make_app(settings: Settings, judge: Judge) -> faust.App:
    """The Faust app: the judging agent (one `judge_batch` per batch), the wall-clock silence
    check, the stats line, and the ready line once partitions are assigned."""
    app = new_app(settings)
    worker = RulesWorker(app, settings.kafka_partitions, judge)

    @app.agent(worker.inputs)
    async def judge_readings(stream: faust.StreamT[bytes]) -> None:
        async for raw_batch in stream.take(BATCH, within=BATCH_WITHIN_S):
            await worker.judge_batch(raw_batch)

    @app.timer(silence_check_s(judge.rules))
    async def check_silence() -> None:
        await worker.check_silence()

    @app.timer(STATS_EVERY_S)
    async def report() -> None:
        log.info("%s", judge.stats())

    @app.on_rebalance_complete.connect
    async def judging(_app: faust.App, **_kw: object) -> None:
        """Partitions assigned and state recovered: say so once (`vitals.ready`)."""
        if not judge.announced:
            judge.announced = True
            announce_ready("rules")

    @app.on_before_shutdown.connect
    async def said_goodbye(_app: faust.App, **_kw: object) -> None:
        log.info("rules: %s", judge.stats())

    return app


def run(settings: Settings, rules: RulesFile, registry: PatientRegistry,
        loglevel: str = "INFO") -> None:
    """Declare the topics (Faust refuses a changelog whose partitions differ from its source),
    then run the worker until SIGINT or SIGTERM."""
    from vitals.topics import Topic

    declare_topics(settings.kafka,
                   (topics.READINGS, topics.STATUS, topics.REJECTED, topics.ALERTS,
                    topics.TRENDS, Topic(CHANGELOG, compacted=True)), settings.kafka_partitions)
    (settings.state_dir / "rules").mkdir(parents=True, exist_ok=True)
    app = make_app(settings, Judge(rules, registry))
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
