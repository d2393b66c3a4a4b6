"""`vitals rules`: the Faust worker that runs the pure engine over `vitals.readings`.

Faust partitions the work by patient and keeps each patient's engine state in a table
(changelog-backed, so a restarted or rebalanced worker resumes where the state was written).
It batches with `stream.take` and writes each patient's state once per batch. Faust's windowed
tables are not used: they expire windows by the wall clock, and event time is the engine's job.

Order per batch, so that a crash loses nothing and doubles nothing: run the engine, send the
alert events and trend points and wait for Kafka's acknowledgement, and only then write the
state. A crash before the state is written replays the batch from the old state and sends the
same alerts again, under the same stable ids (consumers are idempotent by alert id); a crash
after finds those readings already in the state's sequence sets and sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque

import faust
import msgspec

from stream_rules import state as state_io
from stream_rules.config import RulesFile
from stream_rules.engine import Engine, Output
from stream_rules.state import PatientState
from vitals import topics
from vitals.kafka import declare_topics
from vitals.patients import PatientRegistry
from vitals.ready import announce_ready
from vitals.records import Reading, encode
from vitals.settings import Settings

log = logging.getLogger(__name__)

APP_ID = "vitals-rules"
TABLE = "patient-state"
CHANGELOG = f"{APP_ID}-{TABLE}-changelog"
BATCH = 2000
BATCH_WITHIN_S = 0.2
SILENCE_CHECK_S = 60.0
STATS_EVERY_S = 30.0

_decode_reading = msgspec.json.Decoder(Reading).decode


class Judge:
    """The engines of the enrolled patients, built once each, and what they have done."""

    def __init__(self, rules: RulesFile, registry: PatientRegistry) -> None:
        self.rules = rules
        self.registry = registry
        self._engines: dict[str, Engine] = {}
        self.readings = 0
        self.alerts = 0
        self.batch_ms: deque[float] = deque(maxlen=2000)
        self.announced = False

    def stats(self) -> str:
        ms = sorted(self.batch_ms)
        p99 = ms[int(len(ms) * 0.99) - 1] if ms else 0.0
        return (f"judged {self.readings} readings, sent {self.alerts} alert events; "
                f"batch p50 {ms[len(ms) // 2] if ms else 0.0:.1f} ms, p99 {p99:.1f} ms")

    def engine(self, patient_id: str) -> Engine | None:
        e = self._engines.get(patient_id)
        if e is None:
            patient = self.registry.get(patient_id)
            if patient is None:
                return None
            e = self._engines[patient_id] = Engine(self.rules, patient)
        return e


def make_app(settings: Settings, judge: Judge) -> faust.App:
    n = settings.kafka_partitions
    app = faust.App(
        APP_ID,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",  # the changelog topic is the durable copy
        datadir=str(settings.state_dir / "rules"),  # Faust's own files, not in the cwd
        topic_partitions=n,
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
    readings = app.topic(topics.READINGS.name, key_type=bytes, value_type=bytes, partitions=n)
    alerts = app.topic(topics.ALERTS.name, key_type=bytes, value_type=bytes, partitions=n)
    trends = app.topic(topics.TRENDS.name, key_type=bytes, value_type=bytes, partitions=n)
    # use_partitioner: a patient's state goes to the changelog partition its key hashes to,
    # the same partition as its readings (murmur2 in ingest's producer and in aiokafka), even
    # when a batch mixes partitions.
    table = app.Table(TABLE, default=None, partitions=n, key_type=str, value_type=bytes,
                      use_partitioner=True)

    async def send(pid: str, out: Output) -> list[asyncio.Future]:
        """Queue a patient's alerts and trends; the futures complete when Kafka has them."""
        key = pid.encode()
        for a in out.alerts:
            log.info("%s %s %s", a.status, a.severity, a.summary)
        return [await alerts.send(key=key, value=encode(a)) for a in out.alerts] + [
            await trends.send(key=key, value=encode(t)) for t in out.trends]

    @app.agent(readings)
    async def judge_readings(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take(BATCH, within=BATCH_WITHIN_S):
            started = time.perf_counter()
            by_patient: dict[str, list[Reading]] = defaultdict(list)
            for raw in batch:
                r = _decode_reading(raw)
                by_patient[r.patient_id].append(r)
            judged: list[tuple[str, PatientState]] = []
            sent: list[asyncio.Future] = []
            for pid, rs in by_patient.items():
                engine = judge.engine(pid)
                if engine is None:
                    log.warning("readings of %s, who is not enrolled here: skipped", pid)
                    continue
                raw_state = table.get(pid)
                s = state_io.load(raw_state) if raw_state else engine.new_state()
                out = engine.process(s, rs)
                sent += await send(pid, out)
                judged.append((pid, s))
                judge.alerts += len(out.alerts)
            # One wait for the whole batch (not one round trip per patient); the states are
            # written only once Kafka has every alert, so a crash re-judges instead of losing.
            await asyncio.gather(*sent)
            for pid, s in judged:
                table[pid] = state_io.dump(s)
            judge.readings += len(batch)
            judge.batch_ms.append((time.perf_counter() - started) * 1000)

    @app.timer(SILENCE_CHECK_S)
    async def check_silence() -> None:
        """Live "no data": by the wall clock, for the patients this worker holds."""
        now = int(time.time() * 1000)
        for pid, raw_state in list(table.items()):
            engine = judge.engine(pid)
            if engine is None or not raw_state:
                continue
            s = state_io.load(raw_state)
            out = engine.silence(s, now)
            if out.alerts:
                await asyncio.gather(*await send(pid, out))
                table[pid] = state_io.dump(s)

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

    declare_topics(settings.kafka_bootstrap,
                   (topics.READINGS, topics.STATUS, topics.REJECTED, topics.ALERTS,
                    topics.TRENDS, Topic(CHANGELOG, compacted=True)), settings.kafka_partitions)
    (settings.state_dir / "rules").mkdir(parents=True, exist_ok=True)
    app = make_app(settings, Judge(rules, registry))
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
