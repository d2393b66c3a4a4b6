"""`vitals rules`: the Faust worker that runs the pure engine over `vitals.readings` and
`vitals.status`.

Faust partitions the work by patient and keeps each patient's engine state in a table
(changelog-backed, so a restarted or rebalanced worker resumes where the state was written).
The input records skip Faust's per-record path: its fetcher puts them in the app's inbox
(`stream_rules.inbox`), which the worker takes a batch at a time. Faust's windowed tables are
not used: they expire windows by the wall clock, and event time is the engine's job.

States live in memory between checkpoints (`stream_rules.checkpoint`): each batch is judged
(`stream_rules.batch.judge_batch`, a plain function, tested without Faust) and its alert
events and trend points sent at once; every `CHECKPOINT_S` (sooner after `CHECKPOINT_INPUTS`
records) the worker waits until Kafka has every output, writes the changed states, waits until
the table's writes are acknowledged, then writes where in the input those states stand
(`stream_rules.positions`), and only then commits those positions as the consumer's offsets.
A crash re-judges from the last checkpoint and sends the same alerts again, under the same
stable ids (consumers are idempotent by alert id). When partitions are revoked or the worker
stops, the states owed and their positions are written without committing.

Where judging resumes is the position written with the states, not Kafka's committed offset:
when partitions are assigned, the worker commits the positions before Faust seeks to the
committed offsets, and drops records fetched under an earlier generation or before the
position. A committed offset cannot be trusted for this: a commit can fail (partitions
moving), and Faust's own commits, while its streams still delivered the inputs, acknowledged
by themselves records skipped around a rebalance, passing records no state had seen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from faust.types import TP, Message
from prometheus_client import CollectorRegistry

from stream_rules.batch import Judge, decode_records, judge_batch
from stream_rules.canary import CanaryRule
from stream_rules.checkpoint import Checkpoints
from stream_rules.config import RulesFile
from stream_rules.engine import Output
from stream_rules.faust_app import CHANGELOG, INPUTS, TABLE, RulesApp, new_app
from stream_rules.lag import JudgedOffsets
from stream_rules.metrics import JudgeCollector
from stream_rules.positions import (
    Positions,
    Verdict,
    decode_position,
    encode_position,
    is_position_key,
    position_key,
)
from vitals import topics
from vitals.health_http import HealthServer
from vitals.kafka import declare_topics
from vitals.patients import PatientRegistry
from vitals.progress import Progress, ProgressCollector
from vitals.ready import announce_ready
from vitals.records import encode
from vitals.settings import Settings, parse_hostport

log = logging.getLogger(__name__)

BATCH = 2000
BATCH_WITHIN_S = 0.05  # waiting longer for a fuller batch only adds latency (0.2 s: +220 ms p50)
# States are written at most this often: a state (~15 KiB with a day of history) costs its
# readings ~26 B each at 20 readings/s per patient (issue #15: <= 64 B). A crash re-judges at
# most this long; the records judged since (kept until then) bound memory sooner.
CHECKPOINT_S = 30.0
CHECKPOINT_INPUTS = 50_000
CHECKPOINT_CHECK_S = 1.0  # how often the timer looks (partitions moving need it at once)
PROGRESS_CHECK_S = 1.0  # how often the records waiting are counted and the loop beats
SILENCE_CHECK_S = 60.0  # at most; a short no_data.after_min is checked more often
STATS_EVERY_S = 30.0
ALERTS, TRENDS = topics.ALERTS.name, topics.TRENDS.name


def silence_check_s(rules: RulesFile) -> float:
    """How often the live no-data check runs: a tenth of `no_data.after_min`, between 1 s
    and `SILENCE_CHECK_S`, so that a page is at most ~10 % late."""
    return max(1.0, min(SILENCE_CHECK_S, rules.rules.no_data.after_min * 60 / 10))



class RulesWorker:
    """The worker's topics, its state table and what it does with them: judge a batch, take
    a checkpoint, check for live silence, report. `make_app` wires these to Faust's tasks and
    timers."""

    def __init__(self, app: RulesApp, partitions: int, judge: Judge,
                 progress: Progress | None = None) -> None:
        def topic(name: str, count: int = partitions) -> faust.TopicT:
            return app.topic(name, key_type=bytes, value_type=bytes, partitions=count)

        self.app = app
        self.judge = judge
        # what waits and what is done, for /metrics and /healthz (`vitals.progress`)
        self.progress = progress or Progress()
        self.offsets = JudgedOffsets(INPUTS)
        self.positions = Positions()
        # Batches, checkpoints and the silence timer all change or read the states across
        # awaits: one at a time.
        self.state_lock = asyncio.Lock()
        # subscribed, not streamed: their records go to `app.inbox` (`stream_rules.fetcher`),
        # readings and statuses in one list, so that one task changes a patient's state
        self.inputs = app.topic(*INPUTS, key_type=bytes, value_type=bytes,
                                partitions=partitions)
        app.topics.add(self.inputs)
        self.rejected = topic(topics.REJECTED.name, 1)
        # use_partitioner: a patient's state goes to the changelog partition its key hashes
        # to, the same partition as its readings (murmur2 in ingest's producer and in
        # aiokafka), even when a checkpoint mixes partitions. That holds only if the key bytes
        # are the same: bytes keys are written raw, where str keys would be JSON ('"S0013"'),
        # which hashes elsewhere, and a restarted worker, restoring only the changelog
        # partitions of its own input partitions, judged such patients from a new state.
        self.table = app.Table(TABLE, default=None, partitions=partitions, key_type=bytes,
                               value_type=bytes, use_partitioner=True)
        # Faust queues a table write in its producer buffer, and its flush() gives up on that
        # buffer after 0.1 s without a send: a checkpoint that trusted it could acknowledge
        # inputs whose states were still queued (lost to a SIGKILL, the chaos run saw it). So
        # each changelog write's future is kept, and a checkpoint awaits them (Kafka's ack).
        self.changelog_sent: list[asyncio.Future] = []
        send_changelog = self.table.send_changelog

        def send_and_keep(*args: Any, **kwargs: Any) -> Any:
            fut = send_changelog(*args, **kwargs)
            self.changelog_sent.append(fut)
            return fut

        self.table.send_changelog = send_and_keep  # type: ignore[method-assign]
        self.checkpoints: Checkpoints[Message] = Checkpoints(
            self.stored, CHECKPOINT_S, CHECKPOINT_INPUTS)
        self.unconfirmed: list[asyncio.Future] = []  # outputs sent since the last checkpoint

    def stored(self, key: str) -> bytes | None:
        """A patient's state, or a position record, as the table holds it."""
        return self.table.get(key.encode())

    async def send(self, patient_id: str, out: Output) -> list[asyncio.Future]:
        """Queue a patient's alerts and trends; the futures complete when Kafka has them.

        Straight to the Kafka producer (partitioned by key, as Faust would): Faust's
        `Topic.send` adds a channel hop and its sensors to every record, and the rules send a
        trend point for every patient-minute."""
        key = patient_id.encode()
        for alert in out.alerts:
            log.info("%s %s %s", alert.status, alert.severity, alert.summary)
        send = self.app.producer.send
        return ([await send(ALERTS, key, encode(alert), None, None, None)
                 for alert in out.alerts]
                + [await send(TRENDS, key, encode(trend), None, None, None)
                   for trend in out.trends])

    async def judge_batch(self, messages: list[Message]) -> None:
        """One batch: decode, judge, send (dead letters too). The inputs wait for the next
        checkpoint to be committed."""
        async with self.state_lock:
            await self._judge_batch(messages)

    async def _judge_batch(self, messages: list[Message]) -> None:
        started = time.perf_counter()
        messages = await self._new(messages)
        if not messages:
            return
        records, bad = decode_records([message.value for message in messages],
                                      int(time.time() * 1000))
        batch = judge_batch(records, self.checkpoints.state, self.judge.engine,
                            self.judge.canary)
        for patient_id in batch.skipped:
            log.warning("readings of %s, who is not enrolled here: skipped", patient_id)
        sent = [await self.rejected.send(value=encode(dead)) for dead in bad]
        if bad:
            self.judge.bad_records += len(bad)
            log.warning("%d records of %s are not valid readings: sent to %s", len(bad),
                        topics.READINGS.name, topics.REJECTED.name)
        for patient_id, out in batch.outputs:
            sent += await self.send(patient_id, out)
        self.unconfirmed += sent
        self.checkpoints.judged(batch.judged, messages)
        self.judge.alerts += batch.alerts
        self.judge.readings += len(messages)
        self.judge.batch_ms.append((time.perf_counter() - started) * 1000)
        self.judge.last_progress = time.time()
        self.offsets.judged(messages)
        self.progress.progressed(self.judge.last_progress)

    async def _new(self, messages: list[Message]) -> list[Message]:
        """The records to judge: not fetched under an earlier generation (a partition kept is
        delivered again from its position; one revoked is another worker's now), and not
        before their partition's position (the states have seen them). Should the consumer
        have resumed past a position, it is sent back there."""
        generation = self.app.consumer_generation_id
        check, now = self.positions.check, time.monotonic()
        fresh = []
        for message in messages:
            if message.generation_id != generation:
                continue
            verdict = check(message.topic, message.partition, message.offset, now)
            if verdict is Verdict.JUDGE:
                fresh.append(message)
            elif verdict is Verdict.SEEK:
                position = self.positions.next_offset(message.topic, message.partition)
                log.warning("rules: %s[%d] resumed at %d, past the position %s of its states: "
                            "reading again from there", message.topic, message.partition,
                            message.offset, position)
                # in the consumer's thread (`seek` would call aiokafka from this one)
                await self.app.consumer.seek_wait({message.tp: position})
        self.judge.redelivered += len(messages) - len(fresh)
        return fresh

    async def resume(self) -> None:
        """Partitions assigned and the table restored: judging resumes at each partition's
        position, committed now so that Faust seeks there next; a partition without one (never
        written) starts from its beginning."""
        async with self.state_lock:
            consumer = self.app.consumer
            assigned = [tp for tp in consumer.assignment() if tp.topic in INPUTS]
            self.positions.forget()
            if not assigned:
                return
            earliest = await consumer.earliest_offsets(*assigned)
            offsets = {}
            for tp in assigned:
                written = decode_position(self.stored(position_key(tp.partition)))
                offset, first = (written or {}).get(tp.topic), earliest.get(tp) or 0
                if offset is not None and offset < first:
                    log.error("rules: %s[%d] no longer holds offsets %d..%d (retention): "
                              "judging resumes at %d without them", tp.topic, tp.partition,
                              offset, first - 1, first)
                offsets[tp] = first if offset is None else max(offset, first)
                self.positions.start(tp.topic, tp.partition, offsets[tp])
            # Should the commit fail (partitions moving again), `_new` seeks back if need be.
            if not await self._commit(offsets):
                log.warning("rules: the positions were not committed (a rebalance?): %s",
                            offsets)
            log.info("rules: judging resumes at %s", ", ".join(
                f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in sorted(offsets.items())))

    async def checkpoint(self) -> None:
        """Write the changed states and commit the input offsets they cover, when due."""
        async with self.state_lock:
            if self.checkpoints.due(time.monotonic()):
                await self._checkpoint()

    async def _checkpoint(self, release: bool = True) -> None:
        # Kafka has every output first: a state written must never cover an alert lost
        await asyncio.gather(*self.unconfirmed)
        self.unconfirmed.clear()
        taken = self.checkpoints.take(time.monotonic())
        for patient_id, raw_state in taken.states:
            self.table[patient_id.encode()] = raw_state
        written, self.changelog_sent = self.changelog_sent, []
        await asyncio.gather(*written)  # the table's writes are acknowledged by Kafka
        moved = self.positions.take_moved(fut.message.partition for fut in written)
        await self._write_positions(moved)
        if release and taken.inputs:
            # a refusal (partitions moving) costs only re-reading records the states have seen
            await self._commit({TP(topic, partition): offset for partition in moved
                                for topic, offset in self.positions.record(partition).items()})
        self.judge.checkpoints += 1
        self.judge.state_bytes += sum(len(raw) for _, raw in taken.states)

    async def _commit(self, offsets: dict[TP, int]) -> bool:
        """Commit these offsets of the input topics; whether Kafka took them.
        `ThreadDelegateConsumer._commit` is Faust's only call that commits given offsets."""
        try:
            return bool(await self.app.consumer._commit(offsets))  # type: ignore[attr-defined]
        except Exception as exc:  # partitions moving, the consumer stopping: a refusal
            log.debug("commit failed: %r", exc)
            return False

    async def _write_positions(self, partitions: list[int]) -> None:
        """Each partition's position, a record of its own after the states written there.
        It is also the end marker a restore needs: tansu reports a partition's end as its
        last batch's first offset + 1, and Faust restores a table up to that end; the
        position, alone in its batch (the states before it are acknowledged), is that end.
        It is kept in the local table too, for a partition this worker keeps across a
        rebalance (Faust need not read the changelog again then)."""
        table = self.table
        sent = []
        for partition in partitions:
            key, value = position_key(partition).encode(), encode_position(
                self.positions.record(partition))
            sent.append(await table.changelog_topic.send(
                key=key, value=value, partition=partition,
                key_serializer=table.key_serializer, value_serializer=table.value_serializer))
            table.data[key] = value  # the store alone: no second changelog write
        await asyncio.gather(*sent)

    async def hand_over(self) -> None:
        """Partitions are revoked (a rebalance, or stopping): write every state owed and its
        position, but commit nothing (the partitions are no longer this consumer's).
        Then read states from the table again: the next owner of a patient, this worker or
        another, reads what was written and resumes at its position."""
        async with self.state_lock:
            if self.checkpoints.owed:
                await self._checkpoint(release=False)
            self.checkpoints.forget()
            self.offsets.forget()
            self.positions.forget()

    async def watch(self) -> None:
        """Say that the event loop turns, and how many records wait (`stream_rules.lag`)."""
        self.progress.beat()
        lag = await self.offsets.lag(self.app.consumer)
        if lag is not None:
            self.progress.waiting(lag, self.offsets.oldest_waiting)

    async def check_silence(self) -> None:
        """Live "no data": by the wall clock, for the patients this worker holds."""
        async with self.state_lock:
            await self._check_silence()

    async def _check_silence(self) -> None:
        now = int(time.time() * 1000)
        key_partition = self.app.consumer.key_partition
        stored = [key.decode(errors="replace") for key in self.table]
        for patient_id in dict.fromkeys([*self.checkpoints.states, *stored]):
            if is_position_key(patient_id):
                continue
            engine = self.judge.engine(patient_id)
            if engine is None or not (patient_id in self.checkpoints.states
                                      or self.stored(patient_id)):
                continue
            # the table also keeps states of partitions revoked from here: their patients
            # are another worker's, whose states this one must not overwrite
            if not self.positions.held(
                    key_partition(topics.READINGS.name, patient_id.encode())):
                continue
            state = self.checkpoints.state(patient_id, engine)
            out = engine.silence(state, now)
            if out.alerts:
                self.unconfirmed += await self.send(patient_id, out)
                self.checkpoints.judged([patient_id], ())


def make_app(settings: Settings, judge: Judge, progress: Progress | None = None) -> faust.App:
    """The Faust app: the judging task (one `judge_batch` per batch of the inbox), the
    wall-clock silence check, the progress report, the stats line, and the ready line once
    partitions are assigned."""
    app = new_app(settings)
    worker = RulesWorker(app, settings.kafka_partitions, judge, progress)

    @app.task
    async def judge_inputs() -> None:
        # an exception here crashes the app (mode's task runner): the next start re-judges
        # from the last checkpoint, which is exact
        while True:
            await worker.judge_batch(await app.inbox.take(BATCH, BATCH_WITHIN_S))
            await worker.checkpoint()

    @app.timer(CHECKPOINT_CHECK_S)
    async def checkpoint() -> None:
        await worker.checkpoint()

    @app.timer(PROGRESS_CHECK_S)
    async def watch() -> None:
        await worker.watch()

    @app.on_partitions_revoked.connect
    async def moved(_app: faust.App, _revoked: object, **_kw: object) -> None:
        await worker.hand_over()

    @app.timer(silence_check_s(judge.rules))
    async def check_silence() -> None:
        await worker.check_silence()

    @app.timer(STATS_EVERY_S)
    async def report() -> None:
        log.info("%s", judge.stats())

    @app.on_rebalance_complete.connect
    async def judging(_app: faust.App, **_kw: object) -> None:
        """Partitions assigned and state recovered: resume at the positions written, and say
        so once (`vitals.ready`)."""
        await worker.resume()
        if not judge.announced:
            judge.announced = True
            announce_ready("rules")

    @app.on_before_shutdown.connect
    async def said_goodbye(_app: faust.App, **_kw: object) -> None:
        try:  # spares the next start re-judging (not needed for exactness: it would)
            await worker.hand_over()
        except Exception:  # stopping anyway; the next start re-judges
            log.exception("rules: the last states were not written; the next start re-judges")
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
    judge = Judge(rules, registry, CanaryRule(settings.canary_patient, time.time))
    progress = Progress("records not yet judged", "rules worker's event loop")
    metrics = CollectorRegistry()
    metrics.register(JudgeCollector(judge))
    metrics.register(ProgressCollector(
        "rules", progress, "Records of vitals.readings and vitals.status on this worker's "
        "partitions not judged yet (Kafka's high watermark minus the next offset to judge)",
        "Kafka time of the last record judged on a partition where records wait: the oldest "
        "waiting is no older (Unix seconds)"))
    host, port = parse_hostport(settings.rules_metrics_addr)
    # serves on its own thread until the process exits, also while the event loop is blocked
    HealthServer(host, port, metrics, lambda: progress.stalled(settings.stall_s))
    app = make_app(settings, judge, progress)
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
